"""The `crmblob user ...` command line and the first-admin bootstrap."""
import os
import re
import stat

import pytest

from conftest import Server, assert_error


@pytest.fixture
def cli(tmp_path):
    """A Server object with no users and no running process: CLI only."""
    return Server(tmp_path / "cli", users={})


def test_user_add_and_list(cli):
    cli.add_user("ann", "admin", "pw-ann", "Ann Admin")
    cli.add_user("ed", "editor", "pw-ed", "Ed Editor")
    cli.add_user("vi", "viewer", "pw-vi", "Vi Viewer")
    p = cli.cli("user", "list", "--db", str(cli.db), check=True)
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    assert len(lines) == 4, f"expected a header and 3 rows:\n{p.stdout}"
    assert not re.match(r"^\d+\t", lines[0]), f"first line must be a header: {lines[0]!r}"
    rows = cli.user_list()
    assert set(rows) == {"ann", "ed", "vi"}
    for name, role, full in [("ann", "admin", "Ann Admin"), ("ed", "editor", "Ed Editor"),
                             ("vi", "viewer", "Vi Viewer")]:
        r = rows[name]
        assert re.fullmatch(r"\d+", r["id"]) and int(r["id"]) > 0, r
        assert r["role"] == role, r
        assert r["status"] == "active", r
        assert r["full_name"] == full, r
    assert len({r["id"] for r in rows.values()}) == 3, "user ids must be distinct"


def test_user_add_without_full_name(cli):
    cli.add_user("plain", "editor", "pw")
    rows = cli.user_list()
    assert rows["plain"]["role"] == "editor"
    assert rows["plain"]["status"] == "active"


def test_duplicate_user_is_refused(cli):
    cli.add_user("dup", "editor", "pw1", "First")
    p = cli.add_user("dup", "viewer", "pw2", "Second", check=False)
    assert p.returncode != 0, "adding an existing user name must fail"
    rows = cli.user_list()
    assert rows["dup"]["role"] == "editor"
    assert rows["dup"]["full_name"] == "First"


@pytest.mark.parametrize("role", ["root", "Admin2", "", "superuser"])
def test_bad_role_is_refused(cli, role):
    p = cli.add_user("weird", role, "pw", check=False)
    assert p.returncode != 0, f"--role {role!r} must be refused"
    p = cli.cli("user", "list", "--db", str(cli.db))
    assert "weird" not in p.stdout


def test_disable_enable_shows_in_list(cli):
    cli.add_user("dd", "editor", "pw", "D D")
    cli.cli("user", "disable", "dd", "--db", str(cli.db), check=True)
    assert cli.user_list()["dd"]["status"] == "disabled"
    cli.cli("user", "enable", "dd", "--db", str(cli.db), check=True)
    assert cli.user_list()["dd"]["status"] == "active"


def test_commands_on_unknown_user_fail(cli):
    cli.add_user("someone", "editor", "pw")
    assert cli.cli("user", "disable", "nobody", "--db", str(cli.db)).returncode != 0
    assert cli.cli("user", "enable", "nobody", "--db", str(cli.db)).returncode != 0
    p = cli.cli("user", "passwd", "nobody", "--password-stdin", "--db", str(cli.db),
                stdin="x\n")
    assert p.returncode != 0


def test_passwd_and_login(make_server):
    s = make_server(users={"pat": ("editor", "old-pw", "Pat P")}, start=False)
    s.passwd("pat", "new-pw")
    s.start()
    r = s.client("pat", "new-pw").post("/api/v1/Contact", json={"Name": "x"})
    assert r.status_code == 201, r.text
    assert_error(s.client("pat", "old-pw").post("/api/v1/Contact", json={"Name": "x"}), 401)


def test_user_added_while_server_runs_can_log_in(make_server):
    s = make_server(users={"first": ("admin", "pw-first", "First")})
    s.add_user("later", "editor", "pw-later", "Later User")
    r = s.client("later").post("/api/v1/Contact", json={"Name": "by later"})
    assert r.status_code == 201, r.text


def test_disabled_user_cannot_log_in_after_restart(make_server):
    s = make_server(users={"ok": ("admin", "pw-ok", "O K"), "gone": ("editor", "pw-g", "G")},
                    start=False)
    s.cli("user", "disable", "gone", "--db", str(s.db), check=True)
    s.start()
    assert_error(s.client("gone").get("/api/v1/Contact/1"), 401)
    s.cli("user", "enable", "gone", "--db", str(s.db), check=True)
    r = s.client("gone").post("/api/v1/Contact", json={"Name": "back"})
    assert r.status_code == 201, r.text


def test_bootstrap_admin_from_env(make_server):
    s = make_server(users={}, start=False)
    s.start(env={"CRMBLOB_ADMIN_PASSWORD": "boot-pw-123"})
    c = s.client("admin", "boot-pw-123")
    r = c.post("/api/v1/Person", json={"Firstname": "Boot"})
    assert r.status_code == 201, r.text
    assert_error(s.client("admin", "wrong").get(f"/api/v1/Person/{r.json()['PersonId']}"), 401)
    rows = s.user_list()
    assert "admin" in rows and rows["admin"]["role"] == "admin", rows


def test_bootstrap_admin_not_created_when_users_exist(make_server):
    s = make_server(users={"owner": ("admin", "pw-owner", "Owner")}, start=False)
    s.start(env={"CRMBLOB_ADMIN_PASSWORD": "boot-pw-123"})
    assert_error(s.client("admin", "boot-pw-123").get("/api/v1/Person/1"), 401)
    assert "admin" not in s.user_list()


def test_bootstrap_admin_random_password_in_file(make_server):
    """Without a terminal, the random password goes to a file only its owner
    may read, beside the database; the log names the file, never the password."""
    s = make_server(users={}, start=False)
    env = {"CRMBLOB_ADMIN_PASSWORD": None}  # unset
    s.start(env=env)
    rows = s.user_list()
    assert "admin" in rows and rows["admin"]["role"] == "admin", rows
    log = s.log()
    m = re.search(r"its password is in (\S+) \(mode 0600", log)
    assert m, f"no line naming the password file:\n{log[-2000:]}"
    path = m.group(1)
    assert s.pg_schema or os.path.dirname(path) == str(s.db.parent), path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    pw = open(path).read().strip()
    assert len(pw) >= 16
    assert pw not in log
    assert s.client("admin", pw).get("/api/v1/Person/1").status_code != 401
