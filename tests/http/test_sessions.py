"""Signing in over HTTP (SPEC §5): POST /api/v1/login issues a ticket and a
browser session (HttpOnly session cookie + readable XSRF-TOKEN cookie); the
cookie is honoured only with a matching X-XSRF-TOKEN header; POST
/api/v1/logout ends the session and the ticket of the same login (and a
ticket sent to it). A login must be one a cross-site page cannot forge: a
JSON (or XML) body, or a form from an origin on the --cors-origin list.
`user passwd` and `user disable` end the user's sessions, tickets and tokens
(unless --keep-sessions)."""
import time
from datetime import datetime, timezone
from urllib.parse import urlencode

import pytest
import requests

from conftest import (DATE_RE, HTTP_TIMEOUT, NO_LIMITER, assert_error, basic, session_headers,
                      start_arg_server, stop_arg_server)


APP_ORIGIN = "https://app.example"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def ssrv(tmp_path_factory):
    s = start_arg_server(tmp_path_factory.mktemp("sessions"),
                         ["--auth", "all", "--cors-origin", APP_ORIGIN, *NO_LIMITER])
    yield s
    stop_arg_server(s)


@pytest.fixture(scope="module")
def person(ssrv):
    return ssrv.client("admin").create("Person", Firstname="Session", Lastname="Target")


def login(srv, **kw):
    kw.setdefault("timeout", HTTP_TIMEOUT)
    return requests.post(srv.base + "/api/v1/login", **kw)


def set_cookies(r):
    """Every Set-Cookie header of the answer (not merged)."""
    return r.raw.headers.getlist("Set-Cookie")


def cookie_parts(sc):
    """'name=value; A; B=c' -> (name, value, {attr lower: value})."""
    parts = [p.strip() for p in sc.split(";")]
    name, _, value = parts[0].partition("=")
    attrs = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        attrs[k.strip().lower()] = v.strip()
    return name.strip(), value.strip(), attrs


def cookies_by_name(r):
    out = {}
    for sc in set_cookies(r):
        name, value, attrs = cookie_parts(sc)
        assert name not in out, f"cookie {name} set twice: {set_cookies(r)}"
        out[name] = (value, attrs)
    return out


def get_info(srv, pid, headers):
    return requests.get(f"{srv.base}/api/v1/Person/{pid}/ImageInfo", headers=headers,
                        timeout=HTTP_TIMEOUT)


def parse_date(s):
    assert DATE_RE.match(s), f"not a date: {s!r}"
    return datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)


# --------------------------------------------------------------------------
# login


def test_login_answer(ssrv):
    r = login(ssrv, json={"username": "alice", "password": ssrv.users["alice"][1]})
    assert r.status_code == 200, r.text
    ctype = r.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip().lower() == "application/json", ctype
    b = r.json()
    assert isinstance(b.get("Ticket"), str) and b["Ticket"].startswith("7T:"), b
    assert isinstance(b.get("XsrfToken"), str) and len(b["XsrfToken"]) >= 16, b
    exp = parse_date(b["TicketExpires"])
    left = (exp - datetime.now(timezone.utc)).total_seconds()
    assert 6 * 3600 - 120 <= left <= 6 * 3600 + 120, f"TicketExpires {b['TicketExpires']}"
    a = b.get("Associate")
    assert isinstance(a, dict), b
    assert a.get("Name") == "alice", a
    assert isinstance(a.get("AssociateId"), int) and a["AssociateId"] > 0, a
    assert a.get("FullName") == "Alice Editor", a


def test_login_associate_is_the_associate_carrier(ssrv, person):
    """The Associate in the login answer is the same carrier as UpdatedBy (SPEC §3)."""
    b = ssrv.login("alice")
    r = requests.put(f"{ssrv.base}/api/v1/Person/{person}/ImageInfo",
                     json={"ExtraInfo": "who"},
                     headers={"Authorization": "SOTicket " + b["Ticket"]}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    assert b["Associate"] == r.json()["UpdatedBy"], (b["Associate"], r.json()["UpdatedBy"])


def test_login_cookies(ssrv):
    r = login(ssrv, json={"username": "alice", "password": ssrv.users["alice"][1]})
    assert r.status_code == 200, r.text
    c = cookies_by_name(r)
    assert set(c) == {"crmblob_session", "XSRF-TOKEN"}, set_cookies(r)
    sess, sattrs = c["crmblob_session"]
    assert len(sess) >= 16, sess
    assert sattrs.get("path") == "/", sattrs
    assert "httponly" in sattrs, sattrs
    assert sattrs.get("samesite", "").lower() == "strict", sattrs
    xsrf, xattrs = c["XSRF-TOKEN"]
    assert xsrf == r.json()["XsrfToken"], (xsrf, r.json()["XsrfToken"])
    assert xattrs.get("path") == "/", xattrs
    assert "httponly" not in xattrs, "XSRF-TOKEN must be readable by the page"
    assert xattrs.get("samesite", "").lower() == "strict", xattrs
    assert sess != xsrf
    assert r.json()["Ticket"] not in (sess, xsrf)


def test_login_answer_not_cached(ssrv):
    r = login(ssrv, json={"username": "alice", "password": ssrv.users["alice"][1]})
    assert r.status_code == 200
    cc = r.headers.get("Cache-Control", "").lower()
    assert "no-store" in cc, f"Cache-Control: {cc!r}"


def test_logins_are_distinct(ssrv):
    a = ssrv.login("alice")
    b = ssrv.login("alice")
    assert a["Ticket"] != b["Ticket"]
    assert a["XsrfToken"] != b["XsrfToken"]
    assert a["_session"] != b["_session"]


@pytest.mark.parametrize("body", [
    {"username": "alice", "password": "alice-pw-1"},
    {"UserName": "alice", "Password": "alice-pw-1"},
    {"userName": "alice", "password": "alice-pw-1"},
    {"USERNAME": "alice", "PASSWORD": "alice-pw-1"},
    {"User": "alice", "Password": "alice-pw-1"},
    {"user": "alice", "password": "alice-pw-1"},
    {"Name": "alice", "Password": "alice-pw-1"},
    {"username": "ALICE", "password": "alice-pw-1"},
], ids=lambda b: "-".join(b))
def test_login_field_names(ssrv, body):
    r = login(ssrv, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["Associate"]["Name"] in ("alice",), r.json()


def test_login_form_from_allowed_origin(ssrv):
    r = login(ssrv, data=urlencode({"username": "alice", "password": "alice-pw-1"}),
              headers={**FORM, "Origin": APP_ORIGIN})
    assert r.status_code == 200, r.text
    assert r.json()["Ticket"].startswith("7T:")


@pytest.mark.parametrize("origin", [None, "https://evil.example", "null"])
@pytest.mark.parametrize("ctype", ["application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", "text/plain",
                                   "Application/X-WWW-Form-Urlencoded ; charset=utf-8", None])
def test_login_cross_site_forms_403(ssrv, origin, ctype):
    """What a page on another site can send without a CORS preflight (a form,
    a no-cors fetch) cannot sign in, even with the right password: 403 with a
    clear message, no cookie, no ticket."""
    h = {"Origin": origin} if origin else {}
    if ctype is None:  # a body of no type, as fetch sends a Blob
        body = b'{"username":"alice","password":"alice-pw-1"}'
        r = requests.Request("POST", ssrv.base + "/api/v1/login", data=body, headers=h).prepare()
        r.headers.pop("Content-Type", None)
        r = requests.Session().send(r, timeout=HTTP_TIMEOUT)
    else:
        body = urlencode({"username": "alice", "password": "alice-pw-1"})
        r = login(ssrv, data=body, headers={**h, "Content-Type": ctype})
    assert not set_cookies(r), set_cookies(r)
    if ctype is not None and ctype.startswith(("multipart", "text/plain")):
        assert_error(r, 415)  # not a type a login is read from at all
        return
    assert_error(r, 403, "SoAccessDeniedException")
    assert "JSON" in r.json()["ErrorMessage"] and "origin" in r.json()["ErrorMessage"]


@pytest.mark.parametrize("ctype", ["application/json", "text/json", "application/xml"])
def test_login_typed_bodies_need_no_origin(ssrv, ctype):
    if "xml" in ctype:
        body = b"<Login><UserName>alice</UserName><Password>alice-pw-1</Password></Login>"
    else:
        body = b'{"username":"alice","password":"alice-pw-1"}'
    r = login(ssrv, data=body, headers={"Content-Type": ctype, "Origin": "https://other.example"})
    assert r.status_code == 200, r.text


def test_login_form_with_special_characters(make_arg_server):
    s = make_arg_server([*NO_LIMITER, "--cors-origin", APP_ORIGIN],
                        users={"special": ("editor", "p&ss=wörd +%;", "S")})
    r = requests.post(s.base + "/api/v1/login",
                      data=urlencode({"username": "special", "password": "p&ss=wörd +%;"}),
                      headers={**FORM, "Origin": APP_ORIGIN}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    r = requests.post(s.base + "/api/v1/login",
                      json={"username": "special", "password": "p&ss=wörd +%;"},
                      timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text


def test_login_json_charset(ssrv):
    r = login(ssrv, data=b'{"username":"alice","password":"alice-pw-1"}',
              headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("body", [
    {"username": "alice", "password": "wrong"},
    {"username": "alice", "password": ""},
    {"username": "alice", "password": "ALICE-PW-1"},
    {"username": "nosuchuser", "password": "alice-pw-1"},
    {"username": "victor", "password": "alice-pw-1"},
])
def test_login_wrong_password_401(ssrv, body):
    r = login(ssrv, json=body)
    assert_error(r, 401, "SoUnauthorizedException")
    assert not set_cookies(r), set_cookies(r)


def test_login_disabled_user_401(ssrv):
    ssrv.add_user("ldis", "editor", "ldis-pw-1")
    assert login(ssrv, json={"username": "ldis", "password": "ldis-pw-1"}).status_code == 200
    ssrv.cli("user", "disable", "ldis", "--db", str(ssrv.db), check=True)
    assert_error(login(ssrv, json={"username": "ldis", "password": "ldis-pw-1"}), 401)


@pytest.mark.parametrize("body", [
    {},
    {"username": "alice"},
    {"password": "alice-pw-1"},
    {"username": "", "password": "alice-pw-1"},
    {"username": "alice", "password": None},
    {"username": "alice", "password": 12345},
    {"username": ["alice"], "password": "alice-pw-1"},
], ids=str)
def test_login_missing_fields_400(ssrv, body):
    assert_error(login(ssrv, json=body), 400, "SoBadRequestException")


@pytest.mark.parametrize("raw,ctype", [
    (b"", "application/json"),
    (b"null", "application/json"),
    (b'{"username": "alice", "password": ', "application/json"),
    (b"[1,2,3]", "application/json"),
    (b"password=alice-pw-1", "application/x-www-form-urlencoded"),
])
def test_login_bad_body_400(ssrv, raw, ctype):
    h = {"Content-Type": ctype, "Origin": APP_ORIGIN}
    assert_error(login(ssrv, data=raw, headers=h), 400)


def test_login_get_405(ssrv):
    r = requests.get(ssrv.base + "/api/v1/login", timeout=HTTP_TIMEOUT)
    assert r.status_code in (401, 405), r.status_code
    assert r.status_code < 500


def test_login_path_case_insensitive(ssrv):
    r = requests.post(ssrv.base + "/api/v1/Login",
                      json={"username": "alice", "password": "alice-pw-1"}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text


# --------------------------------------------------------------------------
# the ticket of a login


def test_login_ticket_works(ssrv, person):
    b = ssrv.login("alice")
    r = get_info(ssrv, person, {"Authorization": "SOTicket " + b["Ticket"]})
    assert r.status_code == 200, r.text


def test_login_ticket_keeps_role(ssrv, person):
    b = ssrv.login("victor")
    h = {"Authorization": "SOTicket " + b["Ticket"]}
    assert get_info(ssrv, person, h).status_code == 200
    r = requests.put(f"{ssrv.base}/api/v1/Person/{person}/ImageInfo", json={"Description": "v"},
                     headers=h, timeout=HTTP_TIMEOUT)
    assert_error(r, 403, "SoAccessDeniedException")


def test_ticket_ttl_flag(make_arg_server):
    s = make_arg_server(["--ticket-ttl", "2s", *NO_LIMITER])
    pid = s.client("admin").create("Person")
    b = s.login("alice")
    left = (parse_date(b["TicketExpires"]) - datetime.now(timezone.utc)).total_seconds()
    assert -2 <= left <= 4, b["TicketExpires"]
    h = {"Authorization": "SOTicket " + b["Ticket"]}
    assert get_info(s, pid, h).status_code == 200
    time.sleep(3.5)
    assert_error(get_info(s, pid, h), 401)


# --------------------------------------------------------------------------
# the session cookie and XSRF


def test_cookie_with_xsrf_200(ssrv, person):
    b = ssrv.login("alice")
    r = get_info(ssrv, person, session_headers(b))
    assert r.status_code == 200, r.text


def test_cookie_session_names_user_and_writes(ssrv, person):
    b = ssrv.login("bob")
    r = requests.put(f"{ssrv.base}/api/v1/Person/{person}/ImageInfo",
                     json={"Description": "by cookie"}, headers=session_headers(b),
                     timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json()["UpdatedBy"]["Name"] == "bob"


def test_cookie_session_viewer_cannot_write(ssrv, person):
    b = ssrv.login("victor")
    r = requests.put(f"{ssrv.base}/api/v1/Person/{person}/ImageInfo",
                     json={"Description": "nope"}, headers=session_headers(b),
                     timeout=HTTP_TIMEOUT)
    assert_error(r, 403, "SoAccessDeniedException")


def test_cookie_without_xsrf_401(ssrv, person):
    b = ssrv.login("alice")
    r = get_info(ssrv, person, session_headers(b, xsrf=False))
    assert_error(r, 401, "SoUnauthorizedException")
    r = requests.put(f"{ssrv.base}/api/v1/Person/{person}/ImageInfo",
                     json={"Description": "csrf"}, headers=session_headers(b, xsrf=False),
                     timeout=HTTP_TIMEOUT)
    assert_error(r, 401, "SoUnauthorizedException")


@pytest.mark.parametrize("bad", ["", "wrong", "x" * 64, "other-session"])
def test_cookie_with_wrong_xsrf_401(ssrv, person, bad):
    b = ssrv.login("alice")
    h = session_headers(b)
    if bad == "other-session":
        bad = ssrv.login("alice")["XsrfToken"]
    h["X-XSRF-TOKEN"] = bad
    assert_error(get_info(ssrv, person, h), 401, "SoUnauthorizedException")


def test_xsrf_alone_401(ssrv, person):
    b = ssrv.login("alice")
    r = get_info(ssrv, person, {"X-XSRF-TOKEN": b["XsrfToken"],
                                "Cookie": f"XSRF-TOKEN={b['XsrfToken']}"})
    assert_error(r, 401, "SoUnauthorizedException")


@pytest.mark.parametrize("cookie", ["", "garbage", "x" * 300, "%00", "a;b=c"])
def test_bad_session_cookie_401(ssrv, person, cookie):
    b = ssrv.login("alice")
    h = {"Cookie": f"crmblob_session={cookie}; XSRF-TOKEN={b['XsrfToken']}",
         "X-XSRF-TOKEN": b["XsrfToken"]}
    assert_error(get_info(ssrv, person, h), 401, "SoUnauthorizedException")


def test_session_cookie_among_other_cookies(ssrv, person):
    b = ssrv.login("alice")
    h = {"Cookie": f"foo=bar; crmblob_session={b['_session']}; theme=dark; "
                   f"XSRF-TOKEN={b['XsrfToken']}",
         "X-XSRF-TOKEN": b["XsrfToken"]}
    assert get_info(ssrv, person, h).status_code == 200


def test_session_cookie_is_not_a_ticket(ssrv, person):
    b = ssrv.login("alice")
    assert_error(get_info(ssrv, person, {"Authorization": "SOTicket " + b["_session"]}), 401)
    assert_error(get_info(ssrv, person, {"Authorization": "Bearer " + b["_session"]}), 401)


def test_session_of_disabled_user_401(ssrv, person):
    ssrv.add_user("sdis", "editor", "sdis-pw-1")
    b = ssrv.login("sdis")
    assert get_info(ssrv, person, session_headers(b)).status_code == 200
    ssrv.cli("user", "disable", "sdis", "--db", str(ssrv.db), check=True)
    assert_error(get_info(ssrv, person, session_headers(b)), 401)


def test_cookie_session_with_requests_session(ssrv, person):
    """A browser-like client: cookies from the jar, XSRF header from the cookie."""
    s = requests.Session()
    r = s.post(ssrv.base + "/api/v1/login", json={"username": "alice", "password": "alice-pw-1"},
               timeout=HTTP_TIMEOUT)
    assert r.status_code == 200
    xsrf = s.cookies.get("XSRF-TOKEN")
    assert xsrf == r.json()["XsrfToken"]
    r = s.get(f"{ssrv.base}/api/v1/Person/{person}/ImageInfo", headers={"X-XSRF-TOKEN": xsrf},
              timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    r = s.get(f"{ssrv.base}/api/v1/Person/{person}/ImageInfo", timeout=HTTP_TIMEOUT)
    assert_error(r, 401)


# --------------------------------------------------------------------------
# logout


def _logout(srv, headers):
    return requests.post(srv.base + "/api/v1/logout", headers=headers, timeout=HTTP_TIMEOUT)


def test_logout_with_cookie(ssrv, person):
    b = ssrv.login("alice")
    h = session_headers(b)
    assert get_info(ssrv, person, h).status_code == 200
    r = _logout(ssrv, h)
    assert r.status_code == 204, r.text
    assert r.content == b""
    c = cookies_by_name(r)
    assert set(c) == {"crmblob_session", "XSRF-TOKEN"}, set_cookies(r)
    for name, (value, attrs) in c.items():
        assert attrs.get("max-age") == "0", (name, attrs)
        assert attrs.get("path") == "/", (name, attrs)
    assert_error(get_info(ssrv, person, h), 401, "SoUnauthorizedException")


def test_logout_with_ticket(ssrv, person):
    b = ssrv.login("alice")
    h = {"Authorization": "SOTicket " + b["Ticket"]}
    assert get_info(ssrv, person, h).status_code == 200
    r = _logout(ssrv, h)
    assert r.status_code == 204, r.text
    assert_error(get_info(ssrv, person, h), 401, "SoUnauthorizedException")


def test_logout_with_cli_ticket(ssrv, person):
    t = ssrv.ticket("alice")
    h = {"Authorization": "SOTicket " + t}
    assert get_info(ssrv, person, h).status_code == 200
    assert _logout(ssrv, h).status_code == 204
    assert_error(get_info(ssrv, person, h), 401)


def test_logout_leaves_other_sessions(ssrv, person):
    a = ssrv.login("alice")
    b = ssrv.login("alice")
    assert _logout(ssrv, session_headers(a)).status_code == 204
    assert get_info(ssrv, person, session_headers(b)).status_code == 200
    assert get_info(ssrv, person, {"Authorization": "SOTicket " + b["Ticket"]}).status_code == 200


def test_logout_needs_xsrf(ssrv, person):
    """A cross-site POST carrying only the cookie must not end the session."""
    b = ssrv.login("alice")
    r = _logout(ssrv, session_headers(b, xsrf=False))
    assert r.status_code < 500
    assert get_info(ssrv, person, session_headers(b)).status_code == 200, \
        f"logout without X-XSRF-TOKEN ended the session (logout answered {r.status_code})"
    r = _logout(ssrv, {**session_headers(b), "X-XSRF-TOKEN": "wrong"})
    assert r.status_code < 500
    assert get_info(ssrv, person, session_headers(b)).status_code == 200, \
        f"logout with a wrong X-XSRF-TOKEN ended the session (logout answered {r.status_code})"


def test_logout_twice(ssrv):
    b = ssrv.login("alice")
    h = {"Authorization": "SOTicket " + b["Ticket"]}
    assert _logout(ssrv, h).status_code == 204
    r = _logout(ssrv, h)
    assert r.status_code in (204, 401), r.status_code
    if r.status_code == 401:
        assert_error(r, 401)


# --------------------------------------------------------------------------
# the limiter on login


def test_login_failures_lock_out(make_arg_server):
    """Wrong passwords lock the account for the address they came from; the
    other users of that address still sign in."""
    s = make_arg_server(["--auth-account-limit", "3", "--auth-account-lockout", "2",
                         "--auth-address-limit", "0"])
    for _ in range(3):
        assert_error(requests.post(s.base + "/api/v1/login",
                                   json={"username": "alice", "password": "bad"},
                                   timeout=HTTP_TIMEOUT), 401)
    r = requests.post(s.base + "/api/v1/login",
                      json={"username": "alice", "password": "alice-pw-1"}, timeout=HTTP_TIMEOUT)
    assert_error(r, 429, "SoUnauthorizedException")
    assert r.headers.get("Retry-After", "").strip().isdigit(), r.headers
    assert not set_cookies(r)
    r = requests.post(s.base + "/api/v1/login",
                      json={"username": "bob", "password": s.users["bob"][1]},
                      timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    time.sleep(2.6)
    r = requests.post(s.base + "/api/v1/login",
                      json={"username": "alice", "password": "alice-pw-1"}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text


# --------------------------------------------------------------------------
# a login's ticket ends with its session (and the other way round)


def test_logout_with_cookie_ends_the_logins_ticket(ssrv, person):
    a = ssrv.login("alice")
    b = ssrv.login("alice")
    ta = {"Authorization": "SOTicket " + a["Ticket"]}
    tb = {"Authorization": "SOTicket " + b["Ticket"]}
    assert get_info(ssrv, person, ta).status_code == 200
    assert _logout(ssrv, session_headers(a)).status_code == 204
    assert_error(get_info(ssrv, person, ta), 401, "SoUnauthorizedException")
    assert get_info(ssrv, person, tb).status_code == 200  # another login's
    assert get_info(ssrv, person, session_headers(b)).status_code == 200


def test_logout_with_ticket_ends_the_logins_session(ssrv, person):
    a = ssrv.login("alice")
    assert _logout(ssrv, {"Authorization": "SOTicket " + a["Ticket"]}).status_code == 204
    assert_error(get_info(ssrv, person, session_headers(a)), 401)


# --------------------------------------------------------------------------
# user passwd / user disable end the user's credentials (SPEC §5)


def _credentials(s, user):
    """A login (session + its ticket), a CLI ticket and a CLI token of user,
    as request headers, each checked to work."""
    b = s.login(user)
    out = {"session": session_headers(b),
           "login ticket": {"Authorization": "SOTicket " + b["Ticket"]},
           "ticket": {"Authorization": "SOTicket " + s.ticket(user)},
           "token": {"Authorization": "Bearer " + s.token(user)}}
    return out


def _statuses(s, pid, creds):
    return {k: get_info(s, pid, h).status_code for k, h in creds.items()}


def test_passwd_ends_sessions_tickets_tokens(make_arg_server):
    s = make_arg_server(NO_LIMITER)
    pid = s.client("admin").create("Person")
    creds = _credentials(s, "carol")
    others = _credentials(s, "alice")
    old_basic = {"Authorization": basic("carol", "carol-pw-1")}
    assert set(_statuses(s, pid, {**creds, "basic": old_basic}).values()) == {200}
    p = s.passwd("carol", "carol-pw-2")  # the server keeps running
    assert "ended" in p.stdout, p.stdout
    assert set(_statuses(s, pid, {**creds, "basic": old_basic}).values()) == {401}
    assert set(_statuses(s, pid, others).values()) == {200}
    new_basic = {"Authorization": basic("carol", "carol-pw-2")}
    assert get_info(s, pid, new_basic).status_code == 200


def test_passwd_keep_sessions(make_arg_server):
    s = make_arg_server(NO_LIMITER)
    pid = s.client("admin").create("Person")
    creds = _credentials(s, "carol")
    s.cli("user", "passwd", "carol", "--password-stdin", "--keep-sessions", "--db", str(s.db),
          stdin="carol-pw-3\n", check=True)
    assert set(_statuses(s, pid, creds).values()) == {200}
    assert_error(get_info(s, pid, {"Authorization": basic("carol", "carol-pw-1")}), 401)


def test_disable_ends_credentials_for_good(make_arg_server):
    """Disabled, then enabled again: the credentials from before stay ended."""
    s = make_arg_server(NO_LIMITER)
    pid = s.client("admin").create("Person")
    creds = _credentials(s, "dave")
    kept = _credentials(s, "carol")
    s.cli("user", "disable", "dave", "--db", str(s.db), check=True)
    assert set(_statuses(s, pid, creds).values()) == {401}
    s.cli("user", "disable", "carol", "--keep-sessions", "--db", str(s.db), check=True)
    s.cli("user", "enable", "dave", "--db", str(s.db), check=True)
    s.cli("user", "enable", "carol", "--db", str(s.db), check=True)
    assert set(_statuses(s, pid, creds).values()) == {401}
    assert set(_statuses(s, pid, kept).values()) == {200}
    assert get_info(s, pid, {"Authorization": basic("dave", "dave-pw-1")}).status_code == 200
