"""systemd's readiness protocol (sd_notify), spoken to a real socket.

Each test binds an AF_UNIX datagram socket, as systemd does for a
Type=notify service, names it in NOTIFY_SOCKET for the server and reads
what arrives, with the sender's credentials (SO_PASSCRED: systemd takes
messages from the main process only). READY=1 must come once the server
listens and its store is open (a request made the moment it arrives is
answered), RELOADING=1 with MONOTONIC_USEC (the CLOCK_MONOTONIC time the
reload began) then READY=1 around each SIGHUP, a failed reload included,
and STOPPING=1 on SIGTERM, before the drain. A NOTIFY_SOCKET nobody
listens on costs one warning, never the start.

The shipped unit (dist/systemd/crmblob.service) is checked with
`systemd-analyze verify` where that program is.
"""
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time

import pytest
import requests

from conftest import BIN, HTTP_TIMEOUT, NO_LIMITER, REPO, ArgServer

RECV_TIMEOUT = 10.0


class Notifications:
    """The socket the server notifies: messages as (pid, {key: value})."""

    def __init__(self, addr):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(addr)
        self.env = "@" + addr[1:].decode() if isinstance(addr, bytes) else addr

    def next(self, timeout=RECV_TIMEOUT):
        self.sock.settimeout(timeout)
        data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
        fields = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
        return pid, fields

    def nothing_within(self, seconds):
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return True
        raise AssertionError(f"unexpected notification {data!r}")

    def close(self):
        self.sock.close()


def monotonic_us():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


@pytest.fixture
def notify(tmp_path):
    n = Notifications(str(tmp_path / "notify.sock"))
    yield n
    n.close()


def start_notified(tmp_path, env, serve_args=()):
    s = ArgServer(tmp_path / "srv", env=env, serve_args=[*NO_LIMITER, *serve_args])
    s.create_users()
    return s


def ready_of(srv, notify):
    pid, msg = notify.next()
    assert msg.get("READY") == "1", msg
    assert pid == srv.proc.pid, f"sent by {pid}, not the server {srv.proc.pid}"
    return msg


def test_ready_once_listening_and_the_store_open(tmp_path, notify):
    srv = start_notified(tmp_path, {"NOTIFY_SOCKET": notify.env})
    try:
        srv.start()
        msg = ready_of(srv, notify)
        assert f"listening on http://127.0.0.1:{srv.port} " in msg["STATUS"], msg
        r = requests.get(f"{srv.base}/health", timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, r.text
        r = srv.client("admin").get("/api/v1/Person/1/ImageInfo")
        assert r.status_code in (200, 404), r.text
        notify.nothing_within(0.3)  # once, not per request
    finally:
        assert srv.stop() == 0


def test_reload_and_stop(tmp_path, notify):
    key = tmp_path / "hs.secret"
    key.write_bytes(b"K" * 40)
    srv = start_notified(tmp_path, {"NOTIFY_SOCKET": notify.env},
                         ["--auth", "all", "--jwt-key", f"HS256:{key}"])
    try:
        srv.start()
        ready = ready_of(srv, notify)
        for broken in (False, True):
            if broken:
                key.unlink()  # the JWT step fails: the old keys stay, still READY
            before = monotonic_us()
            srv.proc.send_signal(signal.SIGHUP)
            pid, msg = notify.next()
            after = monotonic_us()
            assert pid == srv.proc.pid
            assert msg.get("RELOADING") == "1", msg
            assert before <= int(msg["MONOTONIC_USEC"]) <= after, (before, msg, after)
            again = ready_of(srv, notify)
            assert again["STATUS"] == ready["STATUS"]
            assert srv.alive()
            assert requests.get(f"{srv.base}/health", timeout=HTTP_TIMEOUT).status_code == 200
        assert "reload: done, 1 step(s) failed" in srv.log()
        srv._close_clients()
        srv.proc.send_signal(signal.SIGTERM)
        pid, msg = notify.next()
        assert pid == srv.proc.pid
        assert msg.get("STOPPING") == "1", msg
        assert srv.proc.wait(timeout=10) == 0
    finally:
        srv.stop()


def test_abstract_socket(tmp_path):
    name = f"\0crmblob-test-{os.getpid()}-{time.monotonic_ns()}".encode()
    n = Notifications(name)
    srv = start_notified(tmp_path, {"NOTIFY_SOCKET": n.env})
    try:
        srv.start()
        ready_of(srv, n)
        srv.proc.send_signal(signal.SIGTERM)
        assert n.next()[1].get("STOPPING") == "1"
    finally:
        srv.stop()
        n.close()


@pytest.mark.parametrize("where", ["nobody", "relative"])
def test_a_socket_nobody_reads_costs_a_warning_only(tmp_path, where):
    env = str(tmp_path / "nobody.sock") if where == "nobody" else "notify.sock"
    srv = start_notified(tmp_path, {"NOTIFY_SOCKET": env})
    try:
        srv.start()
        assert requests.get(f"{srv.base}/health", timeout=HTTP_TIMEOUT).status_code == 200
        srv.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "reload: done" not in srv.log():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        warn = [l for l in srv.log().splitlines() if "notify the service manager" in l]
        assert len(warn) == 1 and env in warn[0], srv.log()
    finally:
        assert srv.stop() == 0


def installed_unit(tmp_path):
    """The unit as `make install` writes it, its ExecStart pointed at the
    staged tree (verify checks that the program exists)."""
    root = tmp_path / "root"
    p = subprocess.run(["make", "-s", "-C", str(REPO), "-o", "all", f"BUILD={BIN.parent}",
                        f"DESTDIR={root}", "PREFIX=/usr/local", "install"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    text = (root / "usr/local/lib/systemd/system/crmblob.service").read_text()
    unit = tmp_path / "crmblob.service"
    unit.write_text(text.replace("=/usr/local/bin/", f"={root}/usr/local/bin/"))
    return unit


def systemd_analyze():
    sa = shutil.which("systemd-analyze")
    if sa is None:
        pytest.skip("systemd-analyze is not installed (Debian: systemd)")
    return sa


def test_unit_verifies(tmp_path):
    """`systemd-analyze verify`: no unknown key, no bad value, ExecStart
    names an executable (it says nothing at all when all is well)."""
    sa = systemd_analyze()
    unit = installed_unit(tmp_path)
    p = subprocess.run([sa, "verify", "--man=no", str(unit)], capture_output=True, text=True,
                       timeout=60)
    out = (p.stdout + p.stderr).strip()
    assert p.returncode == 0 and out == "", out


def test_unit_is_hardened(tmp_path):
    """systemd's own exposure score of the unit (0 best, 10 worst): the
    hardening options are there and understood (1.4 when written)."""
    sa = systemd_analyze()
    unit = installed_unit(tmp_path)
    p = subprocess.run([sa, "security", "--offline=true", "--no-pager", str(unit)],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for crmblob.service: ([0-9.]+)", p.stdout)
    assert m, p.stdout + p.stderr
    assert float(m.group(1)) <= 2.0, p.stdout
    for key in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp",
                "PrivateDevices", "RestrictAddressFamilies", "MemoryDenyWriteExecute",
                "SystemCallFilter", "DynamicUser", "StateDirectory"):
        assert re.search(rf"^{key}=", unit.read_text(), re.M), key
