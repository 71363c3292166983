"""SIGHUP reloads what can be reloaded, and never stops the server.

The reload steps other than the TLS certificate (test_tls.py): the JWT
keys are read again from their files (a key rotated in place is in force
after the SIGHUP, the old one no longer is); a file that cannot be used
keeps the old keys and the log says why. App tokens need no reload: they
are looked up in the store on every request (a token added with the CLI
while the server runs works at once, without a SIGHUP).
"""
import base64
import os
import subprocess
import hashlib
import hmac
import json
import signal
import socket
import time

import pytest
import requests

from conftest import HTTP_TIMEOUT, NO_LIMITER, ArgServer, free_port, start_arg_server, stop_arg_server

SECRET_A = b"A" * 40
SECRET_B = b"B" * 40


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def hs256(secret, sub="alice"):
    now = int(time.time())
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"sub": sub, "iat": now, "exp": now + 600}).encode())
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


def status_with(srv, token):
    r = requests.get(f"{srv.base}/api/v1/Person/{srv.pid}/ImageInfo",
                     headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT)
    return r.status_code


def hup_and_wait(srv):
    mark = len(srv.log())
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "reload: done" not in srv.log()[mark:]:
        assert time.monotonic() < deadline, srv.log()[mark:]
        time.sleep(0.02)
    assert srv.alive()
    return srv.log()[mark:]


@pytest.fixture
def jwt_srv(tmp_path):
    key = tmp_path / "hs.secret"
    key.write_bytes(SECRET_A)
    s = start_arg_server(tmp_path / "srv", ["--auth", "all", "--jwt-key", f"HS256:{key}",
                                            *NO_LIMITER])
    s.key = key
    s.pid = s.client("admin").create("Person", Firstname="Reload", Lastname="Target")
    yield s
    stop_arg_server(s)


def test_jwt_key_rotated_in_place(jwt_srv):
    ok = status_with(jwt_srv, hs256(SECRET_A))
    assert ok != 401
    assert status_with(jwt_srv, hs256(SECRET_B)) == 401
    jwt_srv.key.write_bytes(SECRET_B)
    log = hup_and_wait(jwt_srv)
    assert "reload: JWT keys reloaded" in log, log
    assert status_with(jwt_srv, hs256(SECRET_B)) == ok
    assert status_with(jwt_srv, hs256(SECRET_A)) == 401


@pytest.mark.parametrize("bad", ["short", "missing"])
def test_bad_jwt_key_keeps_the_old_one(jwt_srv, bad):
    ok = status_with(jwt_srv, hs256(SECRET_A))
    assert ok != 401
    if bad == "short":
        jwt_srv.key.write_bytes(b"too-short")
    else:
        jwt_srv.key.unlink()
    log = hup_and_wait(jwt_srv)
    line = [l for l in log.splitlines() if "reload: JWT keys" in l]
    assert len(line) == 1 and "not reloaded" in line[0] and str(jwt_srv.key) in line[0], log
    assert status_with(jwt_srv, hs256(SECRET_A)) == ok


def test_app_token_added_while_running_needs_no_reload(tmp_path):
    s = start_arg_server(tmp_path / "srv", ["--require-app-token"])
    try:
        url = f"{s.base}/api/v1/Person/1/ImageInfo"
        auth = ("admin", s.users["admin"][1])
        r = requests.get(url, auth=auth, headers={"SO-AppToken": "nope"}, timeout=HTTP_TIMEOUT)
        assert r.status_code == 401, r.text
        tok = s.apptoken("partner")
        r = requests.get(url, auth=auth, headers={"SO-AppToken": tok}, timeout=HTTP_TIMEOUT)
        assert r.status_code != 401, r.text
    finally:
        stop_arg_server(s)


# --------------------------------------------------------------------------
# the configuration read again: CORS origins and the log level from the
# --config file, and the log file opened again or anew


A_SITE = "https://a.example"
B_SITE = "https://b.example"


def preflight(srv, origin):
    r = requests.options(f"{srv.base}/api/v1/Person/1/Image",
                         headers={"Origin": origin, "Access-Control-Request-Method": "PUT"},
                         timeout=HTTP_TIMEOUT)
    return r.status_code


def conf_srv(tmp_path, lines, extra=()):
    conf = tmp_path / "crmblob.conf"
    conf.write_text("".join(f"{l}\n" for l in lines))
    s = start_arg_server(tmp_path / "srv", ["--config", conf, *NO_LIMITER, *extra])
    s.conf = conf
    return s


def step_line(log, step):
    lines = [l for l in log.splitlines() if f"reload: {step} " in l]
    assert len(lines) == 1, log
    return lines[0]


def test_cors_origins_reloaded_from_the_config_file(tmp_path):
    s = conf_srv(tmp_path, [f"cors-origin = {A_SITE}"])
    try:
        assert (preflight(s, A_SITE), preflight(s, B_SITE)) == (204, 403)
        s.conf.write_text(f"cors-origin = {B_SITE}\ncors-origin = {A_SITE}/x\n")
        line = step_line(hup_and_wait(s), "configuration")
        assert "reloaded" in line and f"CORS origins {B_SITE}, {A_SITE}/x (changed)" in line
        assert (preflight(s, A_SITE), preflight(s, B_SITE)) == (403, 204)
        r = requests.get(f"{s.base}/health", headers={"Origin": B_SITE}, timeout=HTTP_TIMEOUT)
        assert r.headers.get("Access-Control-Allow-Origin") == B_SITE
        line = step_line(hup_and_wait(s), "configuration")  # the same file again
        assert "unchanged" in line and "(changed)" not in line
        s.conf.write_text("")  # no origin at all: every preflight refused
        assert "CORS origins none (changed)" in step_line(hup_and_wait(s), "configuration")
        assert preflight(s, B_SITE) == 403
    finally:
        stop_arg_server(s)


@pytest.mark.parametrize("bad", ["cors-origin = https://c.example\nfrobnicate = 1\n",
                                 "log-level = loud\ncors-origin = https://c.example\n",
                                 None])
def test_bad_configuration_keeps_the_old_one(tmp_path, bad):
    s = conf_srv(tmp_path, [f"cors-origin = {A_SITE}", "log-level = info"])
    try:
        if bad is None:
            s.conf.unlink()
        else:
            s.conf.write_text(bad)
        log = hup_and_wait(s)
        line = step_line(log, "configuration")
        assert "warn" in line and "not reloaded, the old configuration stays in force" in line
        assert str(s.conf) in line or "frobnicate" in line or "loud" in line, line
        assert (preflight(s, A_SITE), preflight(s, "https://c.example")) == (204, 403)
        # the log level stayed info: an access line is still written
        mark = len(s.log())
        s.client("admin").get("/api/v1/Person/1/ImageInfo")
        wait_for(s, " access GET /api/v1/Person/1/ImageInfo", mark)
        assert s.alive()
    finally:
        stop_arg_server(s)


def wait_for(s, text, mark, read=None):
    read = read or s.log
    deadline = time.monotonic() + 5
    while text not in read()[mark:]:
        assert time.monotonic() < deadline, read()[mark:]
        time.sleep(0.02)


def start_notified(tmp_path, serve_args):
    """A server whose start and reloads are known from systemd's notify
    socket (READY=1), not from its log: at --log-level warn the reload's
    lines are not written, with --log-file not to stderr."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(10)
    s = ArgServer(tmp_path / "srv", env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock")},
                  serve_args=[*serve_args, *NO_LIMITER])
    s.create_users()
    s.port = free_port()
    s._logf = open(s.log_path, "ab")
    s.proc = subprocess.Popen(s.serve_argv(), stdout=s._logf, stderr=s._logf,
                              stdin=subprocess.DEVNULL, env={**os.environ, **s.env})
    assert b"READY=1" in sock.recv(4096), s.log()
    s.sock = sock
    return s


def hup_notified(s):
    s.proc.send_signal(signal.SIGHUP)
    assert b"RELOADING=1" in s.sock.recv(4096)
    assert b"READY=1" in s.sock.recv(4096)


def test_log_level_reloaded(tmp_path):
    conf = tmp_path / "crmblob.conf"
    conf.write_text("log-level = info\n")
    s = start_notified(tmp_path, ["--config", conf])
    try:
        admin = s.client("admin")
        conf.write_text("log-level = warn\n")
        hup_notified(s)
        mark = len(s.log())
        admin.get("/api/v1/Person/1/ImageInfo?quiet=1")
        # its access line would be written when libmicrohttpd reports the
        # request complete, just after the answer went out: let that pass
        # before the level comes back
        time.sleep(0.5)
        conf.write_text("log-level = info\n")
        log = hup_and_wait(s)  # written at info: after the level came back
        assert "log level info (was warn)" in step_line(log, "configuration")
        admin.get("/api/v1/Person/1/ImageInfo?loud=1")
        wait_for(s, "?loud=1", mark)
        assert "?quiet=1" not in s.log()[mark:]
    finally:
        stop_arg_server(s)
        s.sock.close()


def test_command_line_log_level_is_not_changed_by_the_file(tmp_path):
    s = conf_srv(tmp_path, ["log-level = info"], ["--log-level", "info"])
    try:
        s.conf.write_text("log-level = error\n")
        line = step_line(hup_and_wait(s), "configuration")
        assert "unchanged" in line and "log level info" in line, line
    finally:
        stop_arg_server(s)


def test_log_file_opened_again_after_a_move(tmp_path):
    logf = tmp_path / "crmblob.log"
    conf = tmp_path / "crmblob.conf"
    conf.write_text(f"log-file = {logf}\n")
    s = start_notified(tmp_path, ["--config", conf])
    read = lambda: logf.read_text(errors="replace") if logf.exists() else ""
    try:
        admin = s.client("admin")
        admin.get("/api/v1/Person/1/ImageInfo?before=1")
        wait_for(s, "?before=1", 0, read)
        moved = tmp_path / "crmblob.log.1"
        logf.rename(moved)  # logrotate
        hup_notified(s)
        wait_for(s, "reload: done", 0, read)
        assert f"reload: log file unchanged: opened again: {logf}" in read()
        admin.get("/api/v1/Person/1/ImageInfo?after=1")
        wait_for(s, "?after=1", 0, read)
        old = moved.read_text(errors="replace")
        assert "?before=1" in old and "?after=1" not in old
        # a new name that cannot be opened: the file in use stays
        conf.write_text(f"log-file = {tmp_path}/no/such/dir/x.log\n")
        mark = len(read())
        hup_notified(s)
        wait_for(s, "reload: done", mark, read)
        line = step_line(read()[mark:], "log file")
        assert "not reloaded" in line and "no/such/dir/x.log" in line and str(logf) in line
        # another name: lines go there from now on
        other = tmp_path / "other.log"
        conf.write_text(f"log-file = {other}\n")
        hup_notified(s)
        wait_for(s, "reload: done", 0, lambda: other.read_text() if other.exists() else "")
        assert f"reload: log file reloaded: now writing to {other}" in other.read_text()
        assert s.alive() and s.log() == ""  # nothing went to stderr
    finally:
        stop_arg_server(s)
        s.sock.close()


def test_settings_that_need_a_restart_are_named(tmp_path):
    s = conf_srv(tmp_path, [f"cors-origin = {A_SITE}"])
    try:
        s.conf.write_text(f"cors-origin = {A_SITE}\nthreads = 7\nlog-format = json\n"
                          "timeout = 30\ndurable = no\nlisten = 0.0.0.0:9\n")
        line = step_line(hup_and_wait(s), "configuration")
        # timeout and durable as they were (their defaults); listen is the
        # command line's, which wins over the file
        assert line.endswith("unchanged: log level info, CORS origins https://a.example; "
                             "at the next start: threads, log-format"), line
        s.conf.write_text(f"cors-origin = {A_SITE}\n")
        line = step_line(hup_and_wait(s), "configuration")
        assert "next start" not in line, line
    finally:
        stop_arg_server(s)
