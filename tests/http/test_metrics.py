"""Metrics and the version (issue 19).

- The page (Prometheus text format 0.0.4) passes `promtool check metrics`
  (Debian package prometheus), on the --metrics-listen listener (no
  credentials, only GET/HEAD /metrics) and at GET /metrics on the main port,
  for admins only (401 without credentials, 403 for other roles).
- Counters move as requests are made: requests by route template, method
  and status, their durations, bytes, a 401 by scheme, the hostile-client
  limits and the failure limits, the read cache, an image job, the store's
  transactions; on PostgreSQL the connection pool's waits.
- Label values come from fixed lists: a client's path never becomes one.
- The version comes from the build: `crmblob --version` (exit 0), /health,
  the start-up line and crmblob_build_info say the same; scripts/version.sh
  gives the VERSION file's text outside a git checkout (a tarball).
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import (BIN, HTTP_TIMEOUT, REPO, TEST_DB, ArgServer, child_pids, free_port, image,
                      sqlite_only, stop_arg_server)

PROMTOOL = shutil.which("promtool")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class MetricsServer(ArgServer):
    """A server with --metrics-listen on a port of its own, picked afresh
    at every start (another test may take the one picked before)."""

    def serve_argv(self):
        self.metrics_port = free_port()
        return super().serve_argv() + ["--metrics-listen", f"127.0.0.1:{self.metrics_port}"]

    @property
    def metrics_url(self):
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def page(self):
        r = requests.get(self.metrics_url, timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"] == CONTENT_TYPE
        return r.text


def start(workdir, *args, users=None, env=None):
    s = MetricsServer(workdir, users=users, serve_args=args)
    s.create_users()
    return s.start(env=env)


def parse(text):
    """{(name, ((label, value), ...)): value} of every sample."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = tuple(sorted(LABEL.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def settled(server, before, name, n, **labels):
    """The page once name{labels} has moved n from `before`: a request is
    counted as it ends, which may be a moment after its client has the
    answer."""
    deadline = time.monotonic() + 5
    while True:
        now = parse(server.page())
        if value(now, name, **labels) - value(before, name, **labels) >= n or \
                time.monotonic() > deadline:
            return now
        time.sleep(0.02)


def promtool_check(text):
    if PROMTOOL is None:
        pytest.skip("promtool not installed (Debian package prometheus: bash scripts/deps.sh)")
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, f"promtool check metrics:\n{p.stdout}{p.stderr}\n{text[:3000]}"


@pytest.fixture(scope="module")
def ms(tmp_path_factory):
    s = start(tmp_path_factory.mktemp("metrics"))
    yield s
    stop_arg_server(s)


IMAGE_INFO = "/api/v1/{entity}/{id}/ImageInfo"
IMAGE = "/api/v1/{entity}/{id}/Image"


def test_page_passes_promtool_and_names_the_build(ms):
    admin = ms.client("admin")
    pid = admin.create("Person")
    assert admin.get(f"/api/v1/Person/{pid}/ImageInfo").status_code in (200, 404)
    text = ms.page()
    promtool_check(text)
    samples = parse(text)
    version = subprocess.run([str(BIN), "--version"], capture_output=True, text=True,
                             check=True).stdout.split()[1]
    assert value(samples, "crmblob_build_info", version=version) == 1
    for family in ("crmblob_http_requests_total", "crmblob_http_request_duration_seconds",
                   "crmblob_http_received_bytes_total", "crmblob_http_sent_bytes_total",
                   "crmblob_http_connections", "crmblob_http_requests_in_flight",
                   "crmblob_http_throttled_total", "crmblob_auth_failures_total",
                   "crmblob_auth_throttled_total", "crmblob_store_transactions_total",
                   "crmblob_store_errors_total", "crmblob_store_cache_hits_total",
                   "crmblob_store_cache_misses_total", "crmblob_image_jobs_total",
                   "crmblob_image_job_failures_total", "crmblob_image_worker_starts_total",
                   "crmblob_image_worker_restarts_total",
                   "crmblob_image_validation_duration_seconds"):
        assert f"# TYPE {family} " in text, family


def test_requests_are_counted_by_route_template(ms):
    admin = ms.client("admin")
    pid = admin.create("Person")
    before = parse(ms.page())
    for _ in range(3):
        r = admin.get(f"/api/v1/Person/{pid}/ImageInfo")
        assert r.status_code in (200, 404), r.text
    status = str(r.status_code)
    r = admin.put(f"/api/v1/Person/{pid}", json={"Firstname": "Moved"})
    assert r.status_code == 200, r.text
    # a client's path is not a label: an unknown one counts as "other"
    assert admin.get("/api/v1/NoSuchThing/%s/x" % ("z" * 40)).status_code == 404
    after = settled(ms, before, "crmblob_http_requests_total", 1, route="other", method="GET",
                    status="404")

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("crmblob_http_requests_total", route=IMAGE_INFO, method="GET",
                 status=status) == 3
    assert moved("crmblob_http_requests_total", route="/api/v1/{entity}/{id}", method="PUT",
                 status="200") == 1
    assert moved("crmblob_http_requests_total", route="other", method="GET", status="404") == 1
    assert moved("crmblob_http_request_duration_seconds_count", route=IMAGE_INFO) == 3
    assert moved("crmblob_http_request_duration_seconds_bucket", route=IMAGE_INFO,
                 le="+Inf") == 3
    assert moved("crmblob_http_received_bytes_total") >= len('{"Firstname": "Moved"}')
    assert moved("crmblob_http_sent_bytes_total") > 0
    assert moved("crmblob_store_transactions_total", mode="write") >= 1
    assert not [k for k in after if "zzzz" in repr(k)]


def test_refusals_are_counted_by_scheme(ms):
    before = parse(ms.page())
    base = ms.base + "/api/v1/Person/1"
    assert requests.get(base, timeout=HTTP_TIMEOUT).status_code == 401
    assert requests.get(base, auth=("admin", "wrong"), timeout=HTTP_TIMEOUT).status_code == 401
    r = requests.get(base, headers={"Authorization": "Bearer 8A:nosuchtoken"},
                     timeout=HTTP_TIMEOUT)
    assert r.status_code == 401
    after = settled(ms, before, "crmblob_http_requests_total", 3, route="/api/v1/{entity}/{id}",
                    method="GET", status="401")
    for scheme in ("none", "basic", "token"):
        assert (value(after, "crmblob_auth_failures_total", scheme=scheme) -
                value(before, "crmblob_auth_failures_total", scheme=scheme)) == 1, scheme
    assert (value(after, "crmblob_http_requests_total", route="/api/v1/{entity}/{id}",
                  method="GET", status="401") -
            value(before, "crmblob_http_requests_total", route="/api/v1/{entity}/{id}",
                  method="GET", status="401")) == 3


def test_image_job_and_read_cache(ms):
    admin = ms.client("admin")
    pid = admin.create("Person")
    body, mime = image("png")
    before = parse(ms.page())
    admin.put_image("Person", pid, body, ctype=mime)
    for _ in range(3):
        r = admin.get_image("Person", pid)
        assert r.status_code == 200 and r.content == body
    after = settled(ms, before, "crmblob_http_requests_total", 3, route=IMAGE, method="GET",
                    status="200")

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("crmblob_image_jobs_total", op="validate") == 1
    assert moved("crmblob_image_validation_duration_seconds_count") == 1
    assert value(after, "crmblob_image_worker_starts_total") >= 1
    assert moved("crmblob_http_requests_total", route=IMAGE, method="GET", status="200") == 3
    if TEST_DB == "pg":  # the read cache is always off on PostgreSQL
        assert moved("crmblob_store_cache_hits_total") == 0
        return
    # the second and third reads of the same picture come from the cache
    assert moved("crmblob_store_cache_hits_total") >= 2
    assert moved("crmblob_store_cache_hits_total") + moved("crmblob_store_cache_misses_total") >= 3


def test_main_port_page_is_for_admins_only(ms):
    url = ms.base + "/metrics"
    assert requests.get(url, timeout=HTTP_TIMEOUT).status_code == 401
    for user in ("alice", "victor"):  # an editor, a viewer
        r = ms.client(user).get("/metrics")
        assert r.status_code == 403, (user, r.status_code, r.text)
        assert "crmblob_" not in r.text
    r = ms.client("admin").get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == CONTENT_TYPE
    assert r.headers["Cache-Control"] == "no-store"
    promtool_check(r.text)
    assert ms.client("admin").head("/metrics").status_code == 200


def test_listener_needs_no_credentials_and_serves_only_the_page(ms):
    base = f"http://127.0.0.1:{ms.metrics_port}"
    r = requests.get(base + "/metrics", timeout=HTTP_TIMEOUT)
    assert r.status_code == 200 and "crmblob_build_info" in r.text
    assert requests.head(base + "/metrics", timeout=HTTP_TIMEOUT).status_code == 200
    for method, path in (("GET", "/"), ("GET", "/api/v1/Person/1"), ("POST", "/metrics"),
                         ("GET", "/health")):
        r = requests.request(method, base + path, timeout=HTTP_TIMEOUT)
        assert r.status_code == 404, (method, path, r.status_code)
        assert "crmblob_" not in r.text


def wait_closed(sock, timeout=5.0):
    """True once the server has closed sock (end of file)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
        return True
    except socket.timeout:
        return False


def test_throttled_clients_are_counted(tmp_path):
    s = start(tmp_path / "t", "--auth-address-limit", "2", "--max-conns-per-ip", "1",
              "--head-timeout", "1")
    try:
        # a head that does not end within --head-timeout is cut
        slow = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        slow.sendall(b"GET /api/v1/TimeZone/base HTTP/1.1\r\n")
        assert wait_closed(slow)
        slow.close()
        settled(s, {}, "crmblob_http_throttled_total", 1, reason="slow_head")
        deadline = time.monotonic() + 5  # its connection is gone: the cap is free again
        while value(parse(s.page()), "crmblob_http_connections") > 0:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        # one connection (the cap is one): its requests, then a second one
        held = requests.Session()
        url = s.base + "/api/v1/Person/1"
        codes = [held.get(url, auth=("alice", "wrong"), timeout=HTTP_TIMEOUT).status_code
                 for _ in range(4)]
        assert codes[:2] == [401, 401] and codes[-1] == 429, codes
        try:
            over = socket.create_connection(("127.0.0.1", s.port), timeout=5)
            assert wait_closed(over)  # closed at once: over the per-address cap
            over.close()
        finally:
            held.close()
        samples = parse(s.page())
        assert value(samples, "crmblob_auth_throttled_total", limit="address") >= 1
        assert value(samples, "crmblob_auth_failures_total", scheme="basic") == 4
        assert value(samples, "crmblob_http_throttled_total", reason="per_address") >= 1
        assert value(samples, "crmblob_http_throttled_total", reason="slow_head") >= 1
    finally:
        stop_arg_server(s)


def is_dead(pid):
    """Gone, or a zombie whose every thread has exited, so that its end of
    the server's socket is closed: the thread group's leader shows as a
    zombie while its other threads (libvips') may still be exiting with
    the descriptors."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                return False
        return os.listdir(f"/proc/{pid}/task") in ([], [str(pid)])
    except OSError:
        return True


def test_image_worker_restart_is_counted(tmp_path):
    s = start(tmp_path / "w")
    try:
        admin = s.client("admin")
        body, mime = image("png")
        pid = admin.create("Person")
        admin.put_image("Person", pid, body, ctype=mime)
        workers = child_pids(s.proc.pid, "crmblob-img")
        assert workers
        before = parse(s.page())
        for w in workers:  # killed while idle: the next call starts another
            os.kill(w, signal.SIGKILL)
        for w in workers:  # dead (a zombie until the server reaps it) before the next call
            deadline = time.monotonic() + 5
            while not is_dead(w):
                assert time.monotonic() < deadline, f"worker {w} still runs"
                time.sleep(0.01)
        admin.put_image("Person", admin.create("Person"), body, ctype=mime)
        after = parse(s.page())
        assert (value(after, "crmblob_image_worker_restarts_total") -
                value(before, "crmblob_image_worker_restarts_total")) >= 1
        assert (value(after, "crmblob_image_jobs_total", op="validate") -
                value(before, "crmblob_image_jobs_total", op="validate")) == 1
        assert value(after, "crmblob_image_job_failures_total", op="validate",
                     cause="worker") == 0
    finally:
        stop_arg_server(s)


@sqlite_only("durable mode's flushes are SQLite's WAL")
def test_durable_flushes_and_group_commits_are_counted(tmp_path):
    s = start(tmp_path / "d", "--durable")
    try:
        admin = s.client("admin")
        ids = [admin.create("Person") for _ in range(3)]

        def writer(i):
            w = s.client("admin")
            for n in range(5):
                r = w.put(f"/api/v1/Person/{ids[i % 3]}", json={"Firstname": f"W{i}-{n}"})
                assert r.status_code in (200, 412), r.text

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        text = s.page()
        promtool_check(text)
        samples = parse(text)
        flushes = value(samples, "crmblob_store_flush_duration_seconds_count")
        groups = value(samples, "crmblob_store_group_commit_writes_count")
        writes = value(samples, "crmblob_store_group_commit_writes_sum")
        assert flushes >= 1 and groups >= 1, text
        # every write of the 33 made (3 creations, 30 changes) went in a group
        assert writes >= 33 and writes >= groups, (writes, groups)
    finally:
        stop_arg_server(s)


@sqlite_only("durable mode's flushes are SQLite's WAL")
def test_database_errors_are_counted(tmp_path):
    """A flush that fails (tests/http/failsync.c, LD_PRELOADed) refuses
    every later write: each is a database error on the page."""
    shim = os.environ.get("CRMBLOB_FAILSYNC")
    if not shim:
        pytest.skip("CRMBLOB_FAILSYNC (the test shim, built by make http) is not set")
    trigger = tmp_path / "disk-fails"
    s = MetricsServer(tmp_path / "e", serve_args=["--durable"])
    s.create_users()
    asan = os.environ.get("ASAN_OPTIONS", "")
    s.start(env={"LD_PRELOAD": shim, "CRMBLOB_FAILSYNC_WHEN": str(trigger),
                 "ASAN_OPTIONS": f"{asan}:verify_asan_link_order=0".lstrip(":")})
    try:
        c = s.client("alice")
        pid = c.create("Person")
        before = parse(s.page())
        assert value(before, "crmblob_store_errors_total", error="unavailable") == 0
        trigger.write_text("")
        r = c.put_info("Person", pid, {"Description": "refused"})
        assert r.status_code == 503, r.text
        for _ in range(2):  # refused until a restart
            assert c.put(f"/api/v1/Person/{pid}", json={"Firstname": "No"}).status_code == 503
        after = parse(s.page())
        assert value(after, "crmblob_store_errors_total", error="unavailable") >= 2
        assert (value(after, "crmblob_store_flush_duration_seconds_count") >
                value(before, "crmblob_store_flush_duration_seconds_count"))
    finally:
        trigger.unlink(missing_ok=True)
        stop_arg_server(s)


def test_on_postgresql_the_pool_waits_are_counted(pg_db, tmp_path):
    # one connection for many writers: checkouts wait for it
    # the first admin's password from the environment (a random one would be
    # written to a file, not the log)
    pw = "metrics-admin-pw-1"
    s = start(tmp_path / "pg", "--db", pg_db.conninfo, "--db-pool", "1", "--cache-mb", "0",
              users={}, env={"CRMBLOB_ADMIN_PASSWORD": pw})
    try:
        c = s.client("admin", pw)
        c.create("Person")  # the password is checked once, then remembered
        stop = time.monotonic() + 10

        def writer():
            w = s.client("admin", pw)
            while time.monotonic() < stop:
                w.create("Person")

        waited = 0
        threads = [threading.Thread(target=writer) for _ in range(6)]
        for t in threads:
            t.start()
        try:
            while time.monotonic() < stop:
                waited = value(parse(s.page()), "crmblob_store_pool_wait_seconds_count")
                if waited > 0:
                    break
                time.sleep(0.1)
        finally:
            stop = 0
            for t in threads:
                t.join()
        text = s.page()
        promtool_check(text)
        assert waited > 0, text
        assert "# TYPE crmblob_store_pool_timeouts_total counter" in text
    finally:
        stop_arg_server(s)


# ---- the version ----------------------------------------------------------


def version_of_bin():
    p = subprocess.run([str(BIN), "--version"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p
    m = re.fullmatch(r"crmblob ([A-Za-z0-9.+~_-]+)\n", p.stdout)
    assert m, p.stdout
    return m.group(1)


def test_version_is_the_builds_everywhere(ms):
    v = version_of_bin()
    tagged = subprocess.run(["git", "-C", str(REPO), "describe", "--tags", "--match", "v[0-9]*"],
                            capture_output=True).returncode == 0
    if not tagged:  # the VERSION file's text, then the commit
        assert v.startswith((REPO / "VERSION").read_text().strip()), v
    r = requests.get(ms.base + "/health", timeout=HTTP_TIMEOUT)
    assert r.status_code == 200 and r.text == f"ok crmblob {v}\n"
    assert f"crmblob {v} listening on http://127.0.0.1:{ms.port} " in ms.log()
    assert value(parse(ms.page()), "crmblob_build_info", version=v) == 1


def test_version_outside_a_checkout(tmp_path):
    """A release tarball has no .git: the VERSION file, else the Makefile's
    default."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "version.sh", tmp_path / "scripts" / "version.sh")
    (tmp_path / "VERSION").write_text("3.1.4\n")
    run = lambda: subprocess.run(["sh", str(tmp_path / "scripts" / "version.sh"), "0.0.9"],
                                 capture_output=True, text=True, check=True).stdout
    assert run() == "3.1.4\n"
    (tmp_path / "VERSION").unlink()
    assert run() == "0.0.9\n"
