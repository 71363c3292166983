"""Health for a load balancer (SPEC §11, issue 18): GET /health and GET /ready.

- /health: the process is alive; 200 "ok crmblob VERSION" (the version
  `crmblob --version` prints) without credentials, touching nothing else.
- /ready: the database and an image worker answer: 200 "ok", else 503 with
  Retry-After and the part that does not answer in the error carrier; 200
  again once it is mended. Its verdict is at most a second old.
- Both need no credentials, are not counted by the failure limiter, need
  no Host beyond HTTP/1.1's rule, and write no access line unless the
  server runs with --log-probes.
- A flood of probes is answered at once, without a worker per probe.
- --spool-dir: where upload spools are made (default: beside the database).
"""
import os
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import (BIN, HTTP_TIMEOUT, NO_LIMITER, ArgServer, RawConn, assert_error, basic,
                      child_pids, start_arg_server, start_with_failing_disk, stop_arg_server,
                      unlinked_files, sqlite_only)

FRESH_S = 1.2  # a /ready verdict is kept for 1 s


def ok_body(path):
    """What a probe of path answers: /health says the version too."""
    if path.strip("/").lower() != "health":
        return "ok\n"
    out = subprocess.run([str(BIN), "--version"], capture_output=True, text=True, check=True)
    return "ok " + out.stdout


def probe(s, path, method="GET", **kw):
    return requests.request(method, s.base + path, timeout=HTTP_TIMEOUT, **kw)


def wait_ready(s, status, timeout=6.0):
    """Probes /ready until it answers `status`; returns that answer."""
    deadline = time.monotonic() + timeout
    while True:
        r = probe(s, "/ready")
        if r.status_code == status or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def access_lines(s, path):
    return [l for l in s.log().splitlines() if " access " in l and path in l.split()]


def test_probes_answer_without_credentials(tmp_path):
    s = start_arg_server(tmp_path / "p", NO_LIMITER)
    try:
        for path in ("/health", "/ready", "/HEALTH/"):
            r = probe(s, path)
            assert r.status_code == 200, (path, r.status_code, r.text)
            assert r.text == ok_body(path)
            assert r.headers["Content-Type"].startswith("text/plain")
            assert r.headers["Cache-Control"] == "no-store"
            h = probe(s, path, "HEAD")
            assert h.status_code == 200 and h.content == b""
        # credentials, even wrong ones, change nothing
        r = probe(s, "/ready", headers={"Authorization": basic("admin", "wrong")})
        assert r.status_code == 200
        # another method: 405 with Allow, still without credentials
        r = probe(s, "/health", "POST")
        assert_error(r, 405)
        assert r.headers["Allow"] == "GET, HEAD"
        # the API still wants them
        assert probe(s, "/api/v1/Person/1").status_code == 401
    finally:
        stop_arg_server(s)


def test_probes_are_not_counted_by_the_failure_limiter(tmp_path):
    """With the default limits (30 failures of an address in a burst), 100
    probes carrying a wrong password leave the address unthrottled."""
    s = start_arg_server(tmp_path / "l")   # the failure limits on
    try:
        bad = {"Authorization": basic("admin", "wrong")}
        with requests.Session() as sess:
            for _ in range(50):
                assert sess.get(s.base + "/health", headers=bad, timeout=HTTP_TIMEOUT).status_code == 200
                assert sess.get(s.base + "/ready", headers=bad, timeout=HTTP_TIMEOUT).status_code == 200
        r = s.client("admin").get("/api/v1/Person/1")
        assert r.status_code == 404, (r.status_code, r.text)   # signed in: not 429
    finally:
        stop_arg_server(s)


def test_probes_need_no_host_beyond_http11(tmp_path):
    s = start_arg_server(tmp_path / "h", NO_LIMITER)
    try:
        for path in ("/health", "/ready"):
            c = RawConn(s.port)
            c.send(f"GET {path} HTTP/1.0\r\n\r\n".encode())
            status, _, body = c.read_response()
            c.close()
            assert status == 200 and body == ok_body(path).encode()
        c = RawConn(s.port)   # HTTP/1.1 without Host: 400, as for every path
        c.send(b"GET /health HTTP/1.1\r\n\r\n")
        status, _, _ = c.read_response()
        c.close()
        assert status == 400
    finally:
        stop_arg_server(s)


def test_no_access_line_for_probes_unless_asked(tmp_path):
    quiet = start_arg_server(tmp_path / "q", NO_LIMITER)
    loud = start_arg_server(tmp_path / "v", NO_LIMITER + ["--log-probes"])
    try:
        for s in (quiet, loud):
            for path in ("/health", "/ready"):
                assert probe(s, path).status_code == 200
                assert probe(s, path, "HEAD").status_code == 200
            probe(s, "/api/v1/Person/1")   # an access line after the probes'
        for s in (quiet, loud):
            deadline = time.monotonic() + 3
            while not access_lines(s, "/api/v1/Person/1") and time.monotonic() < deadline:
                time.sleep(0.05)
            assert access_lines(s, "/api/v1/Person/1"), s.log()[-2000:]
        assert access_lines(quiet, "/health") == [] and access_lines(quiet, "/ready") == []
        assert len(access_lines(loud, "/health")) == 2, loud.log()[-2000:]
        assert len(access_lines(loud, "/ready")) == 2
    finally:
        stop_arg_server(quiet)
        stop_arg_server(loud)


@sqlite_only('the database file moved away under the server')
def test_ready_503_while_the_database_file_is_gone(tmp_path):
    """The database file moved away under the running server (SQLite would
    refuse every write): /ready says so, and is 200 again once it is back."""
    s = start_arg_server(tmp_path / "d", NO_LIMITER)
    try:
        assert probe(s, "/ready").status_code == 200
        moved = s.db.with_name("moved.db")
        os.rename(s.db, moved)
        try:
            r = wait_ready(s, 503)
            body = assert_error(r, 503)
            assert int(r.headers["Retry-After"]) >= 1
            assert "database" in body["ErrorMessage"] and "moved" in body["ErrorMessage"], body
            assert probe(s, "/health").status_code == 200   # alive all the same
        finally:
            os.rename(moved, s.db)
        time.sleep(FRESH_S)
        r = probe(s, "/ready")
        assert r.status_code == 200, r.text
        assert "not ready" in s.log() and "ready again" in s.log()
    finally:
        stop_arg_server(s)


def test_ready_503_while_no_image_worker_can_start(tmp_path):
    """CRMBLOB_IMG_WORKER runs the real worker unless a flag file exists,
    when it exits at once: /ready is 503 naming the image worker while the
    flag is there (on an idle server, and after the running worker was
    killed), 200 again once it is gone; probes start one worker and keep it."""
    flag = tmp_path / "broken"
    wrapper = tmp_path / "img-worker"
    real = BIN.parent / "crmblob-img"
    wrapper.write_text(f'#!/bin/sh\n[ -e "{flag}" ] && exit 3\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    s = ArgServer(tmp_path / "w", env={"CRMBLOB_IMG_WORKER": str(wrapper)}, serve_args=NO_LIMITER)
    s.create_users()
    s.start()
    try:
        flag.touch()   # idle server: no worker yet, and none can start
        r = probe(s, "/ready")
        body = assert_error(r, 503)
        assert int(r.headers["Retry-After"]) >= 1
        assert "image worker" in body["ErrorMessage"], body
        flag.unlink()
        time.sleep(FRESH_S)
        assert probe(s, "/ready").status_code == 200
        kids = child_pids(s.proc.pid)
        assert len(kids) == 1, kids                   # started once ...
        for _ in range(3):
            time.sleep(FRESH_S)
            assert probe(s, "/ready").status_code == 200
        assert child_pids(s.proc.pid) == kids        # ... and kept
        flag.touch()   # the running worker dies, and no other can start
        os.kill(kids[0], signal.SIGKILL)
        time.sleep(FRESH_S)
        body = assert_error(probe(s, "/ready"), 503)
        assert "image worker" in body["ErrorMessage"], body
        flag.unlink()
        time.sleep(FRESH_S)
        assert probe(s, "/ready").status_code == 200
        assert s.alive()
    finally:
        stop_arg_server(s)


def test_a_flood_of_probes_is_answered_at_once(tmp_path):
    """200 probes on 200 connections at once (half /ready on a fresh
    server): all 200, within a few seconds, one worker started in all."""
    s = start_arg_server(tmp_path / "f", NO_LIMITER + ["--max-conns-per-ip", "512"])
    try:
        conns = [socket.create_connection(("127.0.0.1", s.port), timeout=15) for _ in range(200)]
        t0 = time.monotonic()
        for i, c in enumerate(conns):
            path = "/ready" if i % 2 else "/health"
            c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        statuses = []

        def read_all(c):
            data = b""
            while True:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
            statuses.append(int(data.split()[1]))

        threads = [threading.Thread(target=read_all, args=(c,)) for c in conns]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        for c in conns:
            c.close()
        assert statuses.count(200) == 200, statuses
        assert elapsed < 5.0, f"200 probes took {elapsed:.2f}s"
        assert len(child_pids(s.proc.pid)) == 1
    finally:
        stop_arg_server(s)


def test_spool_dir_holds_the_upload_spools(tmp_path):
    spools = tmp_path / "spools"
    spools.mkdir()
    s = start_arg_server(tmp_path / "s", NO_LIMITER + ["--spool-dir", str(spools)])
    try:
        pid = s.client("admin").create("Person", Firstname="Spooled")
        rc = RawConn(s.port)
        rc.send_head("PUT", f"/api/v1/Person/{pid}/Image", {
            "Authorization": basic("admin", s.users["admin"][1]),
            "Content-Type": "image/png", "Content-Length": "100000"})
        rc.send(b"\x89PNG\r\n\x1a\n" + b"\0" * 5000)
        found, beside_db = [], []
        deadline = time.monotonic() + 5
        while not found and time.monotonic() < deadline:
            for _, target in unlinked_files(s.proc.pid):
                if target.startswith(str(spools) + "/"):
                    found.append(target)
                elif target.startswith(str(s.dir) + "/"):
                    beside_db.append(target)
            time.sleep(0.05)
        rc.close()
        assert found, "no spool of the upload in flight under --spool-dir"
        assert beside_db == [], beside_db
    finally:
        stop_arg_server(s)


def test_unusable_spool_dir_stops_the_start(tmp_path):
    s = ArgServer(tmp_path / "n", serve_args=["--spool-dir", str(tmp_path / "nowhere")])
    s.create_users()
    rc = s.try_start()
    assert rc not in (None, 0)
    assert "cannot spool uploads in" in s.refusal, s.refusal


@sqlite_only("failsync fails crmblob's fdatasync of the WAL (PostgreSQL flushes in its own server)")
def test_ready_503_after_a_durable_flush_failed(make_arg_server, tmp_path):
    """--durable: once a flush of the WAL has failed every write is refused
    until a restart; /ready says so (the database does not answer writes)
    while /health stays 200."""
    s, trigger = start_with_failing_disk(make_arg_server, tmp_path, ["--durable", "--threads", "1"])
    c = s.client("alice")
    pid = c.create("Person", Firstname="Disk")
    assert probe(s, "/ready").status_code == 200
    trigger.write_text("")
    assert_error(c.put_info("Person", pid, {"Description": "refused"}), 503)
    trigger.unlink()
    time.sleep(FRESH_S)
    body = assert_error(probe(s, "/ready"), 503)
    assert "database" in body["ErrorMessage"] and "restart" in body["ErrorMessage"], body
    assert probe(s, "/health").status_code == 200
