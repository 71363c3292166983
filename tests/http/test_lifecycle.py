"""Access log, graceful shutdown on SIGTERM/SIGINT."""
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import BIN, RawConn, basic, blob_id_of, data

ACCESS_RE = re.compile(
    r"^(?P<ts>\S+.*?)\s+access\s+(?P<method>[A-Z]+)\s+(?P<path>\S+)\s+(?P<status>\d{3})\s+"
    r"(?P<bytes>\d+)\s+(?P<dur>\d+)us(?:\s+(?P<user>\S+))?"
    r"(?:\s+id=(?P<id>\S+))?(?:\s+ua=\"(?P<ua>[^\"]*)\")?(?:\s+app=(?P<app>\S+))?"
    r"\s+from=(?P<client>\S+)\s*$")


def access_lines(s, pred=lambda m: True, want=None, timeout=3.0):
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for line in s.log().splitlines():
            m = ACCESS_RE.match(line.strip())
            if m and pred(m):
                found.append(m)
        if want is None or len(found) >= want or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_access_log_line_per_request(srv, alice):
    pid = alice.create("Person", Firstname="Logged")
    g = alice.get(f"/api/v1/Person/{pid}")
    assert g.status_code == 200
    path = f"/api/v1/Person/{pid}"
    lines = access_lines(srv, lambda m: m["path"] == path and m["method"] == "GET", want=1)
    assert len(lines) == 1, f"expected one access line for GET {path}:\n{srv.log()[-2000:]}"
    m = lines[0]
    assert m["status"] == "200"
    assert int(m["bytes"]) == len(g.content), (m["bytes"], len(g.content))
    assert m["user"] == "alice"
    assert m["client"] == "127.0.0.1"
    assert int(m["dur"]) >= 0
    # the timestamp looks like a timestamp
    assert re.search(r"\d{4}-\d\d-\d\d", m["ts"]) or re.search(r"\d\d:\d\d:\d\d", m["ts"]), m["ts"]


def test_access_log_counts_and_statuses(srv, alice):
    pid = alice.create("Person")
    n = 5
    for _ in range(n):
        assert alice.get(f"/api/v1/Person/{pid}/ImageInfo").status_code == 200
    put_resp = alice.put(f"/api/v1/Person/{pid}/Image", data=data("small.png"))
    blob_id_of(put_resp)
    assert alice.get(f"/api/v1/Person/{pid}/Image").status_code == 200
    assert alice.head(f"/api/v1/Person/{pid}/Image").status_code == 200
    assert alice.get(f"/api/v1/Person/{pid}/nope").status_code == 404
    assert alice.delete(f"/api/v1/Person/{pid}/Image").status_code == 204
    assert srv.anon().get(f"/api/v1/Person/{pid}").status_code == 401

    info = access_lines(srv, lambda m: m["path"] == f"/api/v1/Person/{pid}/ImageInfo", want=n)
    assert len(info) == n, [m.group(0) for m in info]
    assert all(m["status"] == "200" and m["user"] == "alice" for m in info)

    def one(method, path, status):
        ls = access_lines(srv, lambda m: m["method"] == method and m["path"] == path, want=1)
        ls = [m for m in ls if m["status"] == str(status)]
        assert len(ls) == 1, (method, path, status, srv.log()[-3000:])
        return ls[0]

    put = one("PUT", f"/api/v1/Person/{pid}/Image", 200)
    assert int(put["bytes"]) == len(put_resp.content)
    get = one("GET", f"/api/v1/Person/{pid}/Image", 200)
    assert int(get["bytes"]) == len(data("small.png"))
    one("HEAD", f"/api/v1/Person/{pid}/Image", 200)
    one("GET", f"/api/v1/Person/{pid}/nope", 404)
    d = one("DELETE", f"/api/v1/Person/{pid}/Image", 204)
    assert d["bytes"] == "0"
    one("GET", f"/api/v1/Person/{pid}", 401)


def test_access_log_does_not_leak_credentials(srv, alice):
    alice.get("/api/v1/Person/1")
    srv.client("alice", "a-wrong-secret-pw").get("/api/v1/Person/1")
    time.sleep(0.2)
    log = srv.log()
    assert srv.users["alice"][1] not in log
    assert "a-wrong-secret-pw" not in log


def test_sigterm_finishes_inflight_upload(fresh):
    s = fresh
    c = s.client("alice")
    pid = c.create("Person")
    body = data("medium.jpg")
    conn = RawConn(s.port)
    conn.send_head("PUT", f"/api/v1/Person/{pid}/Image", {
        "Authorization": basic("alice", s.users["alice"][1]),
        "Content-Type": "image/jpeg",
        "Content-Length": str(len(body)),
    })
    half = len(body) // 2
    conn.send(body[:half])
    time.sleep(0.3)
    c.close()
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert s.proc.poll() is None, "server exited while an upload was in flight"
    conn.send(body[half:])
    status, headers, rb = conn.read_response(timeout=10)
    conn.close()
    assert status == 200, (status, rb[:300])
    assert re.fullmatch(rb"\s*\d+\s*", rb), rb
    rc = s.proc.wait(timeout=10)
    assert rc == 0, f"exit code {rc}"
    # the upload was committed
    s.start()
    c = s.client("alice")
    assert c.get_image("Person", pid).content == body
    assert c.info("Person", pid)["BlobId"] == int(rb)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_zero(fresh, sig):
    s = fresh
    c = s.client("admin")
    pid = c.create("Person")
    c.put_image("Person", pid, data("small.png"))
    rc = s.stop(sig=sig)
    assert rc == 0, f"exit code on {sig.name}: {rc}\n{s.log()[-2000:]}"


def test_idle_keepalive_connection_does_not_block_shutdown(fresh):
    s = fresh
    c = s.client("admin")
    pid = c.create("Person")
    idle = RawConn(s.port)
    idle.send_head("GET", f"/api/v1/Person/{pid}",
                   {"Authorization": basic("admin", s.users["admin"][1])})
    status, _, _ = idle.read_response()
    assert status == 200
    silent = RawConn(s.port)  # connected, never sends anything
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    try:
        rc = s.proc.wait(timeout=10)
    finally:
        idle.close()
        silent.close()
    assert rc == 0
    assert time.monotonic() - t0 < 10


def test_restart_fixture(fresh):
    s = fresh
    c = s.client("admin")
    pid = c.create("Contact", Name="Before restart")
    s.restart()
    c = s.client("admin")
    assert c.get(f"/api/v1/Contact/{pid}").json()["Name"] == "Before restart"


def test_second_server_on_busy_port_fails(fresh):
    """A second instance must not silently share the port (e.g. via SO_REUSEPORT):
    clients would be load-balanced between two databases."""
    s = fresh
    env = dict(os.environ, CRMBLOB_ADMIN_PASSWORD="x-pw-12345")
    p = subprocess.Popen([str(BIN), "serve", "--listen", f"127.0.0.1:{s.port}", "--db",
                          str(s.dir / "other.db")], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=env)
    try:
        rc = p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        out = p.communicate()[0].decode(errors="replace")
        pytest.fail("a second server started on a port already in use and kept running:\n"
                    + out[-1000:])
    assert rc != 0
    assert s.alive()


def test_early_answers_keep_the_connection(make_arg_server):
    """A 401, a 404 and a CORS preflight, answered from the headers alone,
    leave a keep-alive connection open for the next request (an answer
    queued before a body would have closed it)."""
    s = make_arg_server(["--cors-origin", "http://app.example"])
    conn = RawConn(s.port)
    auth = {"Authorization": basic("alice", s.users["alice"][1])}
    requests_in_turn = [
        ("GET", "/api/v1/TimeZone/base", {}, 401),
        ("GET", "/api/v1/Nowhere", auth, 404),
        ("OPTIONS", "/api/v1/TimeZone/base",
         {"Origin": "http://app.example", "Access-Control-Request-Method": "GET"}, 204),
        ("GET", "/api/v1/TimeZone/base", auth, 200),
    ]
    for method, path, headers, status in requests_in_turn:
        conn.send_head(method, path, headers)
        got, h, _ = conn.read_response()
        assert got == status, (method, path, got)
        assert h.get("connection", "").lower() != "close", (method, path, h)
    conn.sock.close()


def test_request_after_sigterm_is_answered_503(fresh):
    """Once stopping, a request that arrives on an open connection while
    another is still in flight is not served: 503 with the error carrier,
    and the connection is closed; the one in flight completes."""
    s = fresh
    c = s.client("alice")
    pid = c.create("Person")
    auth = {"Authorization": basic("alice", s.users["alice"][1])}
    body = data("medium.jpg")
    up = RawConn(s.port)
    up.send_head("PUT", f"/api/v1/Person/{pid}/Image",
                 {**auth, "Content-Type": "image/jpeg", "Content-Length": str(len(body)),
                  "Expect": "100-continue"})
    # the 100 Continue says the server has the upload's head: it is in flight
    # (on a loaded machine the SIGTERM below could otherwise come first)
    status, _, _ = up.read_response()
    assert status == 100
    up.send(body[:1000])
    kept = RawConn(s.port)
    kept.send_head("GET", f"/api/v1/Person/{pid}", auth)
    status, _, _ = kept.read_response()
    assert status == 200
    c.close()
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    kept.send_head("GET", f"/api/v1/Person/{pid}", auth)
    status, headers, rb = kept.read_response()
    kept.close()
    assert status == 503, (status, rb[:300])
    assert headers.get("connection", "").lower() == "close", headers
    assert b'"Error":true' in rb.replace(b" ", b""), rb[:300]
    up.send(body[1000:])
    status, _, rb = up.read_response(timeout=10)
    up.close()
    assert status == 200, (status, rb[:300])
    assert s.proc.wait(timeout=10) == 0


def test_start_logs_no_warning(fresh):
    """A server started as documented on a fresh database says nothing to
    worry about (libmicrohttpd warned at every start when its logger was not
    the first option it was given)."""
    s = fresh
    assert s.client("alice").get("/api/v1/TimeZone").status_code == 200
    warnings = [l for l in s.log().splitlines() if " warn " in l or " error " in l]
    assert not warnings, warnings
