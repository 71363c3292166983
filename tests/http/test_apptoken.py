"""Partner applications (SPEC §5): `crmblob apptoken add|list|revoke`, the
SO-AppToken header, --require-app-token, and the app's name in the access
log."""
import time

import pytest
import requests

from conftest import (HTTP_TIMEOUT, NO_LIMITER, assert_error, basic, session_headers,
                      start_arg_server, stop_arg_server)


def _rows(srv):
    p = srv.cli("apptoken", "list", "--db", str(srv.db), check=True)
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    assert lines, "apptoken list printed nothing"
    rows = {}
    for line in lines[1:]:
        cols = line.split("\t")
        assert len(cols) >= 4, f"bad apptoken list row: {line!r}"
        rows[cols[1]] = {"id": cols[0], "name": cols[1], "created": cols[2], "status": cols[3]}
    return p.stdout, rows


def _get(srv, pid, auth, app=None, extra=None):
    h = {"Authorization": auth} if auth else {}
    if app is not None:
        h["SO-AppToken"] = app
    if extra:
        h.update(extra)
    return requests.get(f"{srv.base}/api/v1/Person/{pid}/ImageInfo", headers=h,
                        timeout=HTTP_TIMEOUT)


def _log_line(srv, path, timeout=3.0):
    """The last access-log line for `path` (the log is the server's stderr)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [l for l in srv.log().splitlines() if " access " in l and path in l.split()]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert lines, f"no access line for {path} in:\n{srv.log()[-2000:]}"
    return lines[-1].rstrip()


# --------------------------------------------------------------------------
# without --require-app-token


@pytest.fixture(scope="module")
def osrv(tmp_path_factory):
    s = start_arg_server(tmp_path_factory.mktemp("apptoken_opt"), NO_LIMITER)
    yield s
    stop_arg_server(s)


def test_add_prints_token_alone(osrv):
    p = osrv.cli("apptoken", "add", "printer", "--db", str(osrv.db), check=True)
    lines = p.stdout.splitlines()
    assert len(lines) == 1 and len(lines[0].strip()) >= 16, p.stdout
    assert " " not in lines[0].strip()


def test_add_duplicate_name_fails(osrv):
    osrv.apptoken("dup-app")
    p = osrv.cli("apptoken", "add", "dup-app", "--db", str(osrv.db))
    assert p.returncode != 0, p.stdout


def test_tokens_distinct(osrv):
    assert osrv.apptoken("app-one") != osrv.apptoken("app-two")


def test_list_and_revoke(osrv):
    tok = osrv.apptoken("listed-app")
    out, rows = _rows(osrv)
    assert tok not in out, "apptoken list prints the secret"
    assert "listed-app" in rows, out
    row = rows["listed-app"]
    assert row["id"].strip() and row["created"].strip(), row
    active = row["status"]
    osrv.cli("apptoken", "revoke", "listed-app", "--db", str(osrv.db), check=True)
    _, rows = _rows(osrv)
    assert rows["listed-app"]["status"] != active, rows["listed-app"]
    assert "revoked" in rows["listed-app"]["status"].lower(), rows["listed-app"]


def test_revoke_unknown_fails(osrv):
    p = osrv.cli("apptoken", "revoke", "no-such-app", "--db", str(osrv.db))
    assert p.returncode != 0


def test_optional_missing_or_unknown_ignored(osrv):
    pid = osrv.client("admin").create("Person")
    auth = basic("alice", osrv.users["alice"][1])
    for app in (None, "", "unknown-app-token", "x" * 500):
        r = _get(osrv, pid, auth, app)
        assert r.status_code == 200, (app, r.status_code, r.text)


def test_optional_revoked_ignored(osrv):
    tok = osrv.apptoken("revoked-optional")
    osrv.cli("apptoken", "revoke", "revoked-optional", "--db", str(osrv.db), check=True)
    pid = osrv.client("admin").create("Person")
    r = _get(osrv, pid, basic("alice", osrv.users["alice"][1]), tok)
    assert r.status_code == 200, r.text
    assert "app=revoked-optional" not in _log_line(osrv, f"/api/v1/Person/{pid}/ImageInfo")


def test_optional_app_still_needs_user(osrv):
    tok = osrv.apptoken("no-user-app")
    pid = osrv.client("admin").create("Person")
    assert_error(_get(osrv, pid, None, tok), 401, "SoUnauthorizedException")


def test_optional_valid_app_logged(osrv):
    tok = osrv.apptoken("crm-mobile")
    pid = osrv.client("admin").create("Person")
    r = _get(osrv, pid, basic("alice", osrv.users["alice"][1]), tok)
    assert r.status_code == 200, r.text
    line = _log_line(osrv, f"/api/v1/Person/{pid}/ImageInfo")
    assert line.endswith(" app=crm-mobile from=127.0.0.1"), line


def test_no_app_not_logged(osrv):
    pid = osrv.client("admin").create("Person")
    assert _get(osrv, pid, basic("alice", osrv.users["alice"][1])).status_code == 200
    line = _log_line(osrv, f"/api/v1/Person/{pid}/ImageInfo")
    assert "app=" not in line, line


# --------------------------------------------------------------------------
# with --require-app-token


@pytest.fixture(scope="module")
def rsrv(tmp_path_factory):
    s = start_arg_server(tmp_path_factory.mktemp("apptoken_req"),
                         ["--require-app-token", *NO_LIMITER])
    s.app = s.apptoken("partner-one")
    yield s
    stop_arg_server(s)


@pytest.fixture(scope="module")
def rpid(rsrv):
    r = requests.post(f"{rsrv.base}/api/v1/Person", json={"Firstname": "App"},
                      headers={"Authorization": basic("admin", rsrv.users["admin"][1]),
                               "SO-AppToken": rsrv.app}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 201, r.text
    return r.json()["PersonId"]


def test_required_valid_200(rsrv, rpid):
    r = _get(rsrv, rpid, basic("alice", rsrv.users["alice"][1]), rsrv.app)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("app", [None, "", "unknown-app-token", "x" * 2000, "partner-one"])
def test_required_missing_or_unknown_401(rsrv, rpid, app):
    r = _get(rsrv, rpid, basic("alice", rsrv.users["alice"][1]), app)
    assert_error(r, 401, "SoUnauthorizedException")


def test_required_token_is_case_sensitive(rsrv, rpid):
    app = rsrv.app
    flipped = app.swapcase()
    if flipped == app:
        pytest.skip("token has no letters")
    assert_error(_get(rsrv, rpid, basic("alice", rsrv.users["alice"][1]), flipped), 401)


def test_required_revoked_401_while_running(rsrv, rpid):
    tok = rsrv.apptoken("short-lived")
    auth = basic("alice", rsrv.users["alice"][1])
    assert _get(rsrv, rpid, auth, tok).status_code == 200  # warms any cache
    rsrv.cli("apptoken", "revoke", "short-lived", "--db", str(rsrv.db), check=True)
    assert_error(_get(rsrv, rpid, auth, tok), 401, "SoUnauthorizedException")
    assert _get(rsrv, rpid, auth, rsrv.app).status_code == 200


def test_required_added_while_running(rsrv, rpid):
    tok = rsrv.apptoken("late-comer")
    assert _get(rsrv, rpid, basic("bob", rsrv.users["bob"][1]), tok).status_code == 200


def test_required_valid_app_bad_user_401(rsrv, rpid):
    assert_error(_get(rsrv, rpid, basic("alice", "wrong"), rsrv.app), 401)
    assert_error(_get(rsrv, rpid, None, rsrv.app), 401)


def test_required_with_every_scheme(rsrv, rpid):
    t = rsrv.ticket("alice")
    k = rsrv.token("alice")
    b = requests.post(rsrv.base + "/api/v1/login",
                      json={"username": "alice", "password": rsrv.users["alice"][1]},
                      headers={"SO-AppToken": rsrv.app}, timeout=HTTP_TIMEOUT)
    assert b.status_code == 200, b.text
    sess = dict(b.json(), _session=b.cookies.get("crmblob_session"))
    for auth, extra in ((f"SOTicket {t}", None), (f"Bearer {k}", None),
                        (None, session_headers(sess))):
        assert _get(rsrv, rpid, auth, rsrv.app, extra).status_code == 200, auth
        assert_error(_get(rsrv, rpid, auth, None, extra), 401)
        assert_error(_get(rsrv, rpid, auth, "bogus", extra), 401)


def test_required_writes_need_app_too(rsrv, rpid):
    auth = basic("alice", rsrv.users["alice"][1])
    url = f"{rsrv.base}/api/v1/Person/{rpid}/ImageInfo"
    r = requests.put(url, json={"Description": "no app"}, headers={"Authorization": auth},
                     timeout=HTTP_TIMEOUT)
    assert_error(r, 401)
    r = requests.put(url, json={"Description": "with app"},
                     headers={"Authorization": auth, "SO-AppToken": rsrv.app},
                     timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json()["Description"] == "with app"


def test_required_401_names_challenges(rsrv, rpid):
    r = _get(rsrv, rpid, basic("alice", rsrv.users["alice"][1]))
    assert_error(r, 401)
    assert r.headers.get("WWW-Authenticate"), r.headers


def test_required_app_logged(rsrv, rpid):
    pid = requests.post(f"{rsrv.base}/api/v1/Person", json={"Firstname": "Log"},
                        headers={"Authorization": basic("admin", rsrv.users["admin"][1]),
                                 "SO-AppToken": rsrv.app}, timeout=HTTP_TIMEOUT).json()["PersonId"]
    r = _get(rsrv, pid, basic("alice", rsrv.users["alice"][1]), rsrv.app)
    assert r.status_code == 200
    line = _log_line(rsrv, f"/api/v1/Person/{pid}/ImageInfo")
    assert line.endswith(" app=partner-one from=127.0.0.1"), line
