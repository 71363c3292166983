"""Refused requests must not fill the log (issue 17, defect 10).

Every request without valid credentials used to write a diagnostic line
("refused GET ... from ...: no credentials") besides its access line: about
180 bytes of log per refused request, 1.8 MB per 10,000. Diagnostic lines
are now limited per kind (format string) to 20 per 10 s by default
(--log-limit); the rest are counted and summarized in one line ("log: N
similar lines suppressed in the last 10 s: refused %s %s from %s: %s").
Access lines stay one per request: they are the operator's record.

The flood is sent over keep-alive sockets (pipelined batches, a few
threads) while a Bystander works; the log's diagnostic lines are counted
(every line that is not an access line).
"""
import re
import socket
import threading
import time

import pytest

from conftest import NO_LIMITER, Bystander, start_arg_server, stop_arg_server

# a Bystander's latency is bounded: alone (conftest: serial)
pytestmark = pytest.mark.serial

FLOOD = 20000
THREADS = 4
BATCH = 50
PATH = "/api/v1/Contact/1/ImageInfo"
SUMMARY = re.compile(r" info log: (\d+) similar lines suppressed in the last (\d+) s: "
                     r"refused %s %s from %s: %s$")


def read_answers(s, buf, want):
    """Reads `want` whole answers (head + Content-Length body) from s."""
    seen = 0
    while seen < want:
        d = s.recv(65536)
        assert d, "connection closed during the flood"
        buf += d
        while True:
            h = buf.find(b"\r\n\r\n")
            if h < 0:
                break
            head = buf[:h].decode("latin-1")
            assert head.startswith("HTTP/1.1 401 "), head[:200]
            m = re.search(r"(?im)^content-length:\s*(\d+)", head)
            end = h + 4 + (int(m.group(1)) if m else 0)
            if len(buf) < end:
                break
            buf = buf[end:]
            seen += 1
    return buf


def flood(port, n, threads=THREADS, path=PATH, extra=b""):
    """n requests without credentials on `threads` keep-alive connections."""
    req = b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n" + extra + b"\r\n"
    errors = []

    def one(count):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                buf, done = b"", 0
                while done < count:
                    k = min(BATCH, count - done)
                    s.sendall(req * k)
                    buf = read_answers(s, buf, k)
                    done += k
        except Exception as e:  # noqa: BLE001 - reported by the test
            errors.append(repr(e))

    ts = [threading.Thread(target=one, args=(n // threads,)) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:3]


def diagnostic_lines(log):
    return [l for l in log.splitlines() if " access " not in l]


def test_refused_requests_do_not_fill_the_log(tmp_path):
    s = start_arg_server(tmp_path / "srv", NO_LIMITER)
    try:
        with Bystander(s) as by:
            before = s.log_path.stat().st_size
            before_diag = len(diagnostic_lines(s.log()))
            t0 = time.monotonic()
            flood(s.port, FLOOD)
            took = time.monotonic() - t0
            time.sleep(0.3)  # the access lines' batch reaches the file
        by.check(max_latency=2.0)
        grown = s.log_path.stat().st_size - before
        diag = diagnostic_lines(s.log())[before_diag:]
        print(f"\n{FLOOD} refused requests in {took:.2f} s: log +{grown} bytes "
              f"({grown * 10000 // FLOOD} per 10,000), {len(diag)} diagnostic lines")
        # one interval of 10 s (two if the flood outlasted one): 20 lines each
        intervals = 1 + int(took // 10)
        assert len(diag) <= 21 * intervals + 2, "\n".join(diag[:30])
        access = [l for l in s.log().splitlines() if f" access GET {PATH} 401 " in l]
        assert len(access) == FLOOD  # every request keeps its access line
    finally:
        stop_arg_server(s)
    # stopping writes the summary of the interval still running
    log = s.log()
    counted = sum(int(m.group(1)) for m in map(SUMMARY.search, log.splitlines()) if m)
    written = sum(1 for l in log.splitlines()
                  if l.endswith(f"refused GET {PATH} from 127.0.0.1: no credentials"))
    assert written <= 20 * intervals, written
    assert counted > 0, "no suppression summary:\n" + "\n".join(diagnostic_lines(log)[-10:])
    assert counted + written == FLOOD, (counted, written)


def test_log_limit_option(tmp_path):
    """--log-limit sets the lines of one kind per 10 s; 0 writes them all."""
    for limit, want in (("5", 5), ("0", 300)):
        s = start_arg_server(tmp_path / f"srv{limit}", [*NO_LIMITER, "--log-limit", limit])
        try:
            flood(s.port, 300, threads=1)
        finally:
            stop_arg_server(s)
        refused = [l for l in s.log().splitlines() if " info refused GET " in l]
        assert len(refused) == want, (limit, len(refused))
        if want < 300:
            assert any(SUMMARY.search(l) and " 295 similar " in l
                       for l in s.log().splitlines()), s.log()[-2000:]


def test_diagnostic_lines_cannot_be_forged(tmp_path):
    """A decoded newline in the path stays inside its diagnostic line."""
    s = start_arg_server(tmp_path / "srv", NO_LIMITER)
    try:
        forged = "/api/v1/Contact/1/ImageInfo%0a2026-01-01T00:00:00.000Z%20info%20forged"
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
            c.sendall(f"GET {forged} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
            while c.recv(65536):
                pass
    finally:
        stop_arg_server(s)
    log = s.log()
    assert not any(l.startswith("2026-01-01T00:00:00.000Z") for l in log.splitlines()), log
    assert "ImageInfo\\x0a2026-01-01T00:00:00.000Z info forged" in log, log[-2000:]


def test_library_messages_are_limited_too(tmp_path):
    """Heads libmicrohttpd refuses itself (a header line larger than the
    connection's memory) made it write its own lines straight to stderr,
    unstamped, two per request: they now go through the log, limited."""
    n = 1000
    s = start_arg_server(tmp_path / "srv", NO_LIMITER)
    head = b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n"
    try:
        with Bystander(s) as by:
            before = len(s.log().splitlines())
            for _ in range(n):
                with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
                    try:
                        c.sendall(head)
                        while c.recv(65536):
                            pass
                    except OSError:
                        pass  # closed while we still sent: refused all the same
            time.sleep(0.3)
        by.check(max_latency=2.0)
        new = s.log().splitlines()[before:]
    finally:
        stop_arg_server(s)
    stamped = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")
    assert all(stamped.match(l) for l in new), [l for l in new if not stamped.match(l)][:5]
    lib = [l for l in new if " warn http: " in l]
    print(f"\n{n} oversized heads: {len(new)} new log lines, {len(lib)} from libmicrohttpd")
    assert 0 < len(lib) <= 2 * 20, "\n".join(lib[:10])
    log = s.log()
    assert re.search(r" warn log: \d+ similar lines suppressed in the last \d+ s: ", log), log[-3000:]
