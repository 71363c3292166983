"""SIGHUP reloads what can be reloaded, and never stops the server.

The reload steps other than the TLS certificate (test_tls.py): the JWT
keys are read again from their files (a key rotated in place is in force
after the SIGHUP, the old one no longer is); a file that cannot be used
keeps the old keys and the log says why. App tokens need no reload: they
are looked up in the store on every request (a token added with the CLI
while the server runs works at once, without a SIGHUP).
"""
import base64
import hashlib
import hmac
import json
import signal
import time

import pytest
import requests

from conftest import HTTP_TIMEOUT, NO_LIMITER, start_arg_server, stop_arg_server

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
