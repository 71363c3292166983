"""Ambiguous HTTP framing (SPEC §10): two Host headers, a bare CR, a
Content-Length beside a Transfer-Encoding, a coding other than chunked.

Each case is sent over a raw socket WITHOUT `Connection: close`, while a
bystander (another user's GET ImageInfo and PUT Image) is served. Every
refusal must be exactly one answer, crmblob's own error carrier with the
exact status, and the connection must then be closed: a request that one
parser on the way reads differently from crmblob must not leave a
connection open for a smuggled second request. The controls show that the
same requests, framed plainly, are served and keep their connection.
"""
import json
import socket
import time

import pytest

from conftest import NO_LIMITER, Bystander, basic, start_arg_server, stop_arg_server

TZ = "/api/v1/TimeZone/base"
CONTACT = "/api/v1/Contact"
BODY = b'{"Name": "Framed"}'
CHUNKED = b"%x\r\n" % len(BODY) + BODY + b"\r\n0\r\n\r\n"


@pytest.fixture(scope="module")
def fsrv(tmp_path_factory):
    s = start_arg_server(tmp_path_factory.mktemp("framing"), [*NO_LIMITER])
    yield s
    stop_arg_server(s)


@pytest.fixture(scope="module")
def by(fsrv):
    b = Bystander(fsrv, "bob").start()
    yield b
    b.stop()


def request(srv, method, path, lines, body=b"", version="HTTP/1.1", auth=True):
    head = [f"{method} ".encode() + path + f" {version}".encode()]
    if auth:
        head.append(f"Authorization: {basic('alice', srv.users['alice'][1])}".encode())
    head += lines
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def read_answer(sock, timeout=5.0):
    """One answer: (status, headers, body, bytes after it within 1 s,
    closed: did the server close the connection right after it?)."""
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\r\n\r\n" not in buf:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        assert chunk, f"closed without an answer; got {buf[:300]!r}"
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        assert chunk, f"closed within the body; got {buf[:300]!r}"
        rest += chunk
    body, extra = rest[:n], rest[n:]
    closed = False
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        sock.settimeout(max(0.05, end - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except OSError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        extra += chunk
    return status, headers, body, extra, closed


def exchange(srv, raw):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        s.sendall(raw)
        return read_answer(s)
    finally:
        s.close()


def host(v=b"127.0.0.1"):
    return b"Host: " + v


def te(v):
    return b"Transfer-Encoding: " + v


JSON = b"Content-Type: application/json"

# id -> (method, path, header lines, body, status)
REFUSED = {
    "two-hosts-different": ("GET", TZ, [host(b"a.example"), host(b"b.example")], b"", 400),
    "two-hosts-same": ("GET", TZ, [host(), host()], b"", 400),
    "http11-without-host": ("GET", TZ, [], b"", 400),
    "bare-cr-in-value": ("GET", TZ, [host(), b"X-Note: a\rb"], b"", 400),
    "bare-cr-hides-a-header": ("GET", TZ, [host(), b"X-Note: a\rX-Other: b"], b"", 400),
    "bare-cr-in-name": ("GET", TZ, [host(), b"X-A\rB: c"], b"", 400),
    "bare-cr-in-target": ("GET", b"/api/v1/TimeZone/ba\rse", [host()], b"", 400),
    "space-in-target": ("GET", b"/api/v1/Time Zone/base", [host()], b"", 400),
    "content-length-then-chunked": (
        "POST", CONTACT, [host(), JSON, b"Content-Length: %d" % len(BODY), te(b"chunked")],
        CHUNKED, 400),
    "chunked-then-content-length": (
        "POST", CONTACT, [host(), JSON, te(b"chunked"), b"Content-Length: %d" % len(BODY)],
        CHUNKED, 400),
    "content-length-zero-and-chunked": (
        "POST", CONTACT, [host(), JSON, b"Content-Length: 0", te(b"chunked")], CHUNKED, 400),
    "gzip-then-chunked": ("POST", CONTACT, [host(), JSON, te(b"gzip, chunked")], CHUNKED, 501),
    "chunked-twice-in-one": ("POST", CONTACT, [host(), JSON, te(b"chunked, chunked")], CHUNKED,
                             501),
    "two-transfer-encodings": ("POST", CONTACT, [host(), JSON, te(b"chunked"), te(b"chunked")],
                               CHUNKED, 400),
    "gzip-alone": ("POST", CONTACT, [host(), JSON, te(b"gzip")], BODY, 400),
    "identity": ("POST", CONTACT, [host(), JSON, te(b"identity")], BODY, 400),
    "chunked-then-gzip": ("POST", CONTACT, [host(), JSON, te(b"chunked, gzip")], CHUNKED, 400),
}

# id -> (method, path, header lines, body, status, stays open)
SERVED = {
    "get": ("GET", TZ, [host()], b"", 200, True),
    "http10-without-host": ("GET", TZ, [], b"", 200, False),
    "chunked-post": ("POST", CONTACT, [host(), JSON, te(b"chunked")], CHUNKED, 201, True),
    "chunked-any-case": ("POST", CONTACT, [host(), JSON, te(b"Chunked")], CHUNKED, 201, True),
    "content-length-post": ("POST", CONTACT, [host(), JSON, b"Content-Length: %d" % len(BODY)],
                            BODY, 201, True),
}


@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_ambiguous_framing_refused_and_closed(fsrv, by, case):
    method, path, lines, body, want = REFUSED[case]
    path = path.encode() if isinstance(path, str) else path
    version = "HTTP/1.1"
    status, headers, rbody, extra, closed = exchange(
        fsrv, request(fsrv, method, path, lines, body, version))
    assert status == want, f"[{case}] answered {status}, want {want}: {rbody[:300]!r}"
    assert headers.get("content-type", "").startswith("application/json"), headers
    carrier = json.loads(rbody)
    assert carrier["Error"] is True and carrier["ErrorSource"] == "crmblob", carrier
    assert carrier["ErrorMessage"].strip(), carrier
    assert extra == b"", f"[{case}] more than one answer: {extra[:300]!r}"
    assert closed, f"[{case}] connection left open after the refusal"
    assert headers.get("connection", "").lower() == "close", headers


@pytest.mark.parametrize("case", list(SERVED), ids=list(SERVED))
def test_plain_framing_served(fsrv, by, case):
    method, path, lines, body, want, stays_open = SERVED[case]
    version = "HTTP/1.0" if "http10" in case else "HTTP/1.1"
    status, _, rbody, extra, closed = exchange(
        fsrv, request(fsrv, method, path.encode(), lines, body, version))
    assert status == want, f"[{case}] answered {status}: {rbody[:300]!r}"
    assert extra == b"", extra[:300]
    if stays_open:
        assert not closed, f"[{case}] a plainly framed request lost its connection"


def test_refusal_is_not_followed_by_a_smuggled_request(fsrv, by):
    """A second request hidden in the first one's body is never answered."""
    smuggled = request(fsrv, "GET", TZ.encode(), [host()])
    raw = request(fsrv, "POST", CONTACT.encode(),
                  [host(), JSON, b"Content-Length: %d" % len(smuggled), te(b"chunked")],
                  b"0\r\n\r\n" + smuggled)
    status, _, _, extra, closed = exchange(fsrv, raw)
    assert status == 400
    assert extra == b"" and closed, extra[:300]


def test_refusal_comes_before_credentials_and_is_localised(fsrv, by):
    """A malformed head is refused before anything else is looked at: with
    wrong credentials it is still 400 (not 401: no password checked, no
    failure counted), in the caller's language, as XML when asked."""
    lines = [host(), b"Authorization: " + basic("alice", "wrong-password").encode(),
             b"Accept-Language: de", b"Accept: application/xml", JSON,
             b"Content-Length: %d" % len(BODY), te(b"chunked")]
    raw = request(fsrv, "POST", CONTACT.encode(), lines, CHUNKED, auth=False)
    status, headers, rbody, _, closed = exchange(fsrv, raw)
    assert status == 400, rbody[:300]
    assert headers.get("content-type", "").startswith("application/xml"), headers
    assert b"Fehlerhafte Anfrage" in rbody and b"Transfer-Encoding" in rbody, rbody[:300]
    assert closed
    log = fsrv.log()
    assert "wrong password" not in log and "refused POST /api/v1/Contact" not in log, log[-2000:]


# libmicrohttpd 0.9.75 answers a Content-Length it cannot parse itself,
# before crmblob sees the request, and sends that answer's header block
# twice: parse_connection_headers() queues the error through
# transmit_error_response_len(), which builds the header block and moves
# the connection to HEADERS_SENDING, and then MHD_connection_handle_idle()
# sets the state back to HEADERS_PROCESSED, so the reply path builds the
# block a second time. No callback runs between the two. Kept as strict
# expected failures that report the day the library answers once.
MHD_DOUBLE_HEAD = pytest.mark.xfail(
    reason="libmicrohttpd 0.9.75 sends the header block of its own Content-Length "
           "errors twice", strict=True)

LIBRARY_ANSWERS = {
    "content-length-plus": (b"Content-Length: +2", 400),
    "content-length-overflow": (b"Content-Length: 99999999999999999999999", 413),
}


@MHD_DOUBLE_HEAD
@pytest.mark.parametrize("case", list(LIBRARY_ANSWERS), ids=list(LIBRARY_ANSWERS))
def test_library_content_length_errors_answer_once(fsrv, by, case):
    line, want = LIBRARY_ANSWERS[case]
    status, _, rbody, extra, closed = exchange(
        fsrv, request(fsrv, "POST", CONTACT.encode(), [host(), JSON, line], b"{}"))
    assert status == want
    assert closed
    assert not extra.startswith(b"HTTP/") and not rbody.startswith(b"HTTP/"), \
        f"the answer's header block came twice: {rbody[:200]!r}"


def test_zz_bystander_served(fsrv, by):
    by.stop()
    by.check(max_latency=2.0)
    assert fsrv.alive()
