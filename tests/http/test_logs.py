"""The process log (issue 19): --log-format text|json, --log-level, --log-file,
access lines (client, method, target with its query, status, bytes, duration,
user, user agent, request id), X-Request-Id taken or made and sent back, no
secret ever in the log (the first admin's password goes to a 0600 file), and
a JSON body sent as a form (curl -d) refused with 415 in the caller's
language on every route that takes a carrier."""
import json
import os
import pty
import re
import secrets
import select
import shutil
import signal
import stat
import subprocess
import time

import pytest
import requests

from conftest import BIN, HTTP_TIMEOUT, START_TIMEOUT, RawConn, basic, free_port

ID_RE = re.compile(r"^[0-9a-f]{16}$")


def wait_for(pred, timeout=3.0):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


def json_lines(text):
    """Every line of a JSON log, parsed: a line that is not JSON fails."""
    out = []
    for n, line in enumerate(text.splitlines()):
        try:
            out.append(json.loads(line))
        except ValueError as e:
            raise AssertionError(f"log line {n + 1} is not JSON ({e}): {line!r}")
    return out


def json_access(s, pred, want=1):
    def found():
        got = [o for o in json_lines(s.log()) if o.get("msg") == "access" and pred(o)]
        return got if len(got) >= want else None
    got = wait_for(found)
    assert got, f"no access line:\n{s.log()[-3000:]}"
    return got


def raw_request(port, head: bytes):
    c = RawConn(port)
    try:
        c.send(head)
        return c.read_response()
    finally:
        c.sock.close()


def test_json_lines_stay_json_whatever_the_client_sends(make_arg_server):
    s = make_arg_server(["--log-format", "json"])
    auth = basic("alice", s.users["alice"][1]).encode()
    hostile_ua = b'ua "quoted" \\back\\ \x01\x1b[31m \xff\xfe \xc3\xa9 }{"x":1}'
    status, h, _ = raw_request(s.port, (
        b'GET /api/v1/Person/77/ImageInfo?q="x"&b=\\&raw=\xff\xc3\xa9&c=%22%0A HTTP/1.1\r\n'
        b"Host: a\r\nAuthorization: " + auth + b"\r\nUser-Agent: " + hostile_ua +
        b'\r\nX-Request-Id: x"}, "forged": {"a\r\nConnection: close\r\n\r\n'))
    assert status == 404
    made = h["x-request-id"]
    assert ID_RE.match(made), made  # the hostile id was replaced, not echoed
    a = json_access(s, lambda o: o.get("request_id") == made)[0]
    assert a["level"] == "info" and a["method"] == "GET" and a["status"] == 404
    assert a["target"].startswith('/api/v1/Person/77/ImageInfo?q="x"&b=\\&raw=')
    assert a["target"].endswith("\ufffd\u00e9&c=%22%0A"), a["target"]
    assert a["user"] == "alice" and a["client"] == "127.0.0.1" and a["app"] is None
    assert a["user_agent"] == 'ua "quoted" \\back\\ \x01\x1b[31m \ufffd\ufffd \u00e9 }{"x":1}'
    assert isinstance(a["bytes"], int) and a["bytes"] > 0 and a["duration_us"] >= 0
    assert "forged" not in a
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", a["time"]), a["time"]
    # diagnostics are JSON too: the refusal of an unknown user names what the client sent
    status, _, _ = raw_request(s.port, (
        b"GET /api/v1/Person/1 HTTP/1.1\r\nHost: a\r\nAuthorization: "
        + basic('no"body\x01', "pw").encode() + b"\r\nConnection: close\r\n\r\n"))
    assert status == 401
    wait_for(lambda: any(o.get("level") == "info" and "refused" in o.get("msg", "")
                         for o in json_lines(s.log())))
    for o in json_lines(s.log()):
        assert set(o) >= {"time", "level", "msg"}, o


def test_text_access_line(make_arg_server):
    s = make_arg_server([])
    c = s.client("alice")
    pid = c.create("Person", Firstname="Txt")
    r = requests.get(f"{s.base}/api/v1/Person/{pid}/ImageInfo?$select=BlobId&x=1",
                     auth=("alice", s.users["alice"][1]), timeout=HTTP_TIMEOUT,
                     headers={"User-Agent": 'probe/1 " from=6.6.6.6', "X-Request-Id": "req-0001"})
    assert r.status_code == 200 and r.headers["X-Request-Id"] == "req-0001"

    def line():
        ls = [l for l in s.log().splitlines() if " id=req-0001 " in l]
        return ls[0] if ls else None
    got = wait_for(line)
    assert got, s.log()[-2000:]
    m = re.fullmatch(r"(\S+) access GET (\S+) 200 (\d+) (\d+)us alice id=req-0001 "
                     r'ua="([^"]*)" from=(\S+)', got)
    assert m, got
    assert m.group(2) == f"/api/v1/Person/{pid}/ImageInfo?$select=BlobId&x=1"
    assert int(m.group(3)) == len(r.content)
    assert m.group(5) == "probe/1 \\x22 from=6.6.6.6"  # the quote cannot end the field
    assert m.group(6) == "127.0.0.1"


def test_request_id_taken_or_made(srv):
    base = srv.base
    ok = "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert requests.get(base + "/health", headers={"X-Request-Id": ok},
                        timeout=HTTP_TIMEOUT).headers["X-Request-Id"] == ok
    seen = set()
    for bad in ["", "a b", "x" * 65, 'q"', "tab\tid", "\u00e9t\u00e9", None]:
        h = {} if bad is None else {"X-Request-Id": bad}
        r = requests.get(base + "/api/v1/Person/1", headers=h, timeout=HTTP_TIMEOUT)
        assert r.status_code == 401
        rid = r.headers["X-Request-Id"]
        assert ID_RE.match(rid), (bad, rid)
        seen.add(rid)
    assert len(seen) == 7  # made ids do not repeat
    assert requests.get(base + "/api/v1/Person/1", headers={"X-Request-Id": "x" * 64},
                        timeout=HTTP_TIMEOUT).headers["X-Request-Id"] == "x" * 64


def test_forwarded_client_in_access_line(make_arg_server):
    s = make_arg_server(["--trusted-proxy", "127.0.0.0/8", "--log-format", "json"])
    r = requests.get(s.base + "/api/v1/Person/1", timeout=HTTP_TIMEOUT,
                     headers={"X-Forwarded-For": "203.0.113.9", "X-Request-Id": "fwd-1"})
    assert r.status_code == 401
    assert json_access(s, lambda o: o["request_id"] == "fwd-1")[0]["client"] == "203.0.113.9"


def own_server(s, args):
    """Starts `serve` with args on s's database (the fixture's start waits for
    a line the given level may hide): up once its own user gets in."""
    for _ in range(5):
        s.port = free_port()
        s._logf = open(s.log_path, "ab")
        s.proc = subprocess.Popen(
            [str(BIN), "serve", "--listen", f"127.0.0.1:{s.port}", "--db", str(s.db),
             *s.spool_args(), *args], stdout=s._logf, stderr=s._logf, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while s.proc.poll() is None and time.monotonic() < deadline:
            try:
                r = requests.get(s.base + "/api/v1/Person/1", timeout=2,
                                 auth=("own", s.users["own"][1]))
                if r.status_code == 404:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        if s.proc.poll() is None:
            s.proc.kill()
        s.proc.wait()
        s._logf.close()
    raise AssertionError(f"serve {args} did not start:\n{s.log()[-2000:]}")


def test_log_level_warn_hides_info_and_access(make_arg_server):
    users = {"own": ("admin", secrets.token_hex(12), "Own")}
    s = make_arg_server([], users=users, start=False)
    own_server(s, ["--log-level", "warn"])
    for _ in range(3):
        requests.get(s.base + "/api/v1/Person/1", timeout=HTTP_TIMEOUT)  # 401: info lines
    raw_request(s.port, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n")
    assert s.stop() == 0
    log = s.log()
    assert " access " not in log and " info " not in log, log[-2000:]


def test_log_file(make_arg_server, tmp_path):
    users = {"own": ("admin", secrets.token_hex(12), "Own")}
    s = make_arg_server([], users=users, start=False)
    path = tmp_path / "logs" / "crmblob.log"
    path.parent.mkdir()
    own_server(s, ["--log-file", str(path), "--log-format", "json"])
    requests.get(s.base + "/api/v1/Person/1", headers={"X-Request-Id": "in-file"},
                 timeout=HTTP_TIMEOUT)
    assert s.stop() == 0
    got = json_lines(path.read_text())
    assert any(o.get("request_id") == "in-file" for o in got)
    assert any("listening on" in o["msg"] for o in got)
    assert "in-file" not in s.log()  # nothing went to stderr
    assert stat.S_IMODE(os.stat(path).st_mode) & 0o007 == 0


def test_bad_log_options_refused(make_arg_server, tmp_path):
    s = make_arg_server([], start=False)
    for args, word in [(["--log-format", "xml"], "xml"), (["--log-level", "loud"], "loud")]:
        p = s.cli("serve", "--db", str(s.db), *args)
        assert p.returncode == 2 and word in p.stderr, p.stderr
    p = s.cli("serve", "--db", str(s.db), "--listen", f"127.0.0.1:{free_port()}",
              "--log-file", str(tmp_path / "no" / "such" / "dir.log"))
    assert p.returncode == 1 and "cannot open the log file" in p.stderr, p.stderr


def test_no_secret_in_the_log(make_arg_server):
    """A whole session at --log-level debug: signing in every way, with right
    and wrong secrets; not one of them appears in the log."""
    s = make_arg_server(["--log-level", "debug", "--cors-origin", "https://app.example"],
                        users={})
    m = wait_for(lambda: re.search(r"its password is in (\S+) \(mode 0600", s.log()))
    assert m, s.log()[-2000:]
    pw_file = m.group(1)
    assert stat.S_IMODE(os.stat(pw_file).st_mode) == 0o600
    admin_pw = open(pw_file).read().strip()
    s.users["admin"] = ("admin", admin_pw, "Administrator")
    base = s.base
    assert requests.get(base + "/api/v1/Person/1", auth=("admin", admin_pw),
                        timeout=HTTP_TIMEOUT).status_code == 404
    login = s.login("admin", admin_pw)
    ticket, xsrf, cookie = login["Ticket"], login["XsrfToken"], login["_session"]
    bearer = s.token("admin")
    app = s.apptoken("partner")
    hdrs = [{"Authorization": f"SOTicket {ticket}"}, {"Authorization": f"Bearer {bearer}"},
            {"Cookie": f"crmblob_session={cookie}; XSRF-TOKEN={xsrf}", "X-XSRF-TOKEN": xsrf},
            {"Authorization": f"Bearer {bearer}", "SO-AppToken": app},
            {"Authorization": "Bearer 8A:wrong-token-value-123456"},
            {"Authorization": basic("admin", "a-wrong-password-987")},
            {"Cookie": "crmblob_session=forged-cookie-value-555"}]
    for h in hdrs:
        requests.get(base + "/api/v1/Person/1", headers=h, timeout=HTTP_TIMEOUT)
    requests.post(base + "/api/v1/login", timeout=HTTP_TIMEOUT,
                  json={"username": "admin", "password": "wrong-login-pw-321"})
    requests.post(base + "/api/v1/logout", timeout=HTTP_TIMEOUT, headers=hdrs[2])
    time.sleep(0.3)
    assert s.stop() == 0
    log = s.log()
    assert " access " in log
    for secret in [admin_pw, ticket, xsrf, cookie, bearer, app, "wrong-token-value-123456",
                   "a-wrong-password-987", "forged-cookie-value-555", "wrong-login-pw-321",
                   basic("admin", admin_pw).split()[1]]:
        assert secret not in log, f"secret {secret[:6]}... in the log"
    assert not re.search(r"(?i)authorization:|cookie:", log)


# -- a JSON body sent as a form (curl -d) ------------------------------------

FORM = "application/x-www-form-urlencoded"


def carrier_routes(c):
    pid = c.create("Person", Firstname="Form")
    return pid, [("POST", "/api/v1/Person", {"Firstname": "Nope"}),
                 ("PUT", f"/api/v1/Person/{pid}", {"Firstname": "Changed"}),
                 ("PUT", f"/api/v1/Person/{pid}/ImageInfo", {"Description": "changed"}),
                 ("POST", "/api/v1/Agents/BLOB/SaveBlobEntity", {"Description": "x"}),
                 ("POST", "/api/v1/Agents/BLOB/GetBlobEntityOnPerson", {"personId": pid})]


def test_json_sent_as_form_is_refused(srv, alice):
    pid, routes = carrier_routes(alice)
    pw = srv.users["alice"][1]
    for method, path, body in routes:
        for text, what, want in [(json.dumps(body), "JSON", "application/json"),
                                 ("  \n" + json.dumps([body]), "JSON", "application/json"),
                                 ("<Person><Firstname>x</Firstname></Person>", "XML",
                                  "application/xml")]:
            r = requests.request(method, srv.base + path, data=text, auth=("alice", pw),
                                 headers={"Content-Type": FORM}, timeout=HTTP_TIMEOUT)
            assert r.status_code == 415, (method, path, r.status_code, r.text)
            msg = r.json()["ErrorMessage"]
            assert FORM in msg and what in msg and want in msg, msg
    info = alice.get(f"/api/v1/Person/{pid}").json()
    assert info["Firstname"] == "Form"
    # a real form still works
    r = requests.put(f"{srv.base}/api/v1/Person/{pid}", data={"Firstname": "Formed"},
                     auth=("alice", pw), timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    assert alice.get(f"/api/v1/Person/{pid}").json()["Firstname"] == "Formed"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_d_json_answers_in_the_callers_language(srv, alice):
    pid = alice.create("Person", Firstname="Curl")
    want = {"en": "holds JSON", "de": "enthält aber JSON", "nl": "maar bevat JSON",
            "da": "men indeholder JSON", "no": "men inneholder JSON", "sv": "men innehåller JSON"}
    for lang, words in want.items():
        p = subprocess.run(
            ["curl", "-s", "-w", "\n%{http_code}", "-X", "PUT", "-u",
             f"alice:{srv.users['alice'][1]}", "-H", f"Accept-Language: {lang}", "-d",
             '{"Firstname":"Lost"}', f"{srv.base}/api/v1/Person/{pid}"],
            capture_output=True, text=True, timeout=30)
        body, _, code = p.stdout.rpartition("\n")
        assert code == "415", (lang, p.stdout)
        msg = json.loads(body)["ErrorMessage"]
        assert words in msg and FORM in msg and "application/json" in msg, (lang, msg)
    assert alice.get(f"/api/v1/Person/{pid}").json()["Firstname"] == "Curl"


def test_login_json_sent_as_form(make_arg_server):
    """From a listed origin a form login is read: JSON in it is refused, not
    taken as a login without a user."""
    s = make_arg_server(["--cors-origin", "https://app.example"])
    r = requests.post(s.base + "/api/v1/login", timeout=HTTP_TIMEOUT,
                      data=json.dumps({"username": "alice", "password": s.users["alice"][1]}),
                      headers={"Content-Type": FORM, "Origin": "https://app.example"})
    assert r.status_code == 415, r.text
    assert FORM in r.json()["ErrorMessage"]


def test_first_password_shown_on_a_terminal_only(make_arg_server, tmp_path):
    """With stderr on a terminal the first admin's password is shown there,
    once, and neither logged (--log-file) nor written to a file."""
    s = make_arg_server([], users={}, start=False)
    logfile = tmp_path / "tty.log"
    master, slave = pty.openpty()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "CRMBLOB_ADMIN_PASSWORD"}
    p = subprocess.Popen([str(BIN), "serve", "--listen", f"127.0.0.1:{port}", "--db", str(s.db),
                          *s.spool_args(), "--log-file", str(logfile)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave,
                         env=env)
    os.close(slave)
    try:
        shown = b""
        deadline = time.monotonic() + START_TIMEOUT
        while b"(shown once" not in shown and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                shown += os.read(master, 4096)
        m = re.search(rb"has the password: (\S+)", shown)
        assert m, shown
        pw = m.group(1).decode()
        assert wait_for(lambda: "its password was shown on the terminal" in logfile.read_text())
        assert wait_for(lambda: "listening on" in logfile.read_text())
        r = requests.get(f"http://127.0.0.1:{port}/api/v1/Person/1", auth=("admin", pw),
                         timeout=HTTP_TIMEOUT)
        assert r.status_code == 404, r.text
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)
        os.close(master)
    assert pw not in logfile.read_text()
    assert not list(s.dir.glob("crmblob-admin-password"))
    assert s.cli("user", "list", "--db", str(s.db)).stdout.count("admin") >= 1
