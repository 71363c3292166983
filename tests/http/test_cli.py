"""The command line: `crmblob user ...`, the first-admin bootstrap, the
configuration (command line, CRMBLOB_<OPTION>, --config FILE, --print-config),
help and usage errors, no database made by an administration command, and a
port in use."""
import os
import re
import socket
import stat
import subprocess

import pytest

from conftest import BIN, Server, assert_error


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


# --------------------------------------------------------------------------
# configuration: the command line, CRMBLOB_<OPTION>, --config FILE


def run(*args, env=None, stdin=None, timeout=30):
    """crmblob with an environment holding no CRMBLOB_ setting but `env`."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("CRMBLOB_")}
    e.update(env or {})
    return subprocess.run([str(BIN), *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout, env=e)


def settings(out):
    """--print-config's lines as {option: [(value, source), ...]}."""
    got = {}
    for line in out.splitlines():
        m = re.match(r"^([a-z-]+) = (.*?)\s+# (.*)$", line)
        if m:
            got.setdefault(m.group(1), []).append((m.group(2), m.group(3)))
    return got


def test_precedence_command_line_environment_file_default(tmp_path):
    conf = tmp_path / "crmblob.conf"
    conf.write_text("# a comment\n\n  threads = 2\ncache-mb=7\nspool-mb = 9 \n")
    env = {"CRMBLOB_THREADS": "3", "CRMBLOB_CACHE_MB": "8"}
    p = run("serve", "--config", str(conf), "--threads", "4", "--print-config", env=env)
    assert p.returncode == 0, p.stderr
    s = settings(p.stdout)
    assert s["threads"] == [("4", "command line")], s["threads"]
    assert s["cache-mb"] == [("8", "environment CRMBLOB_CACHE_MB")], s["cache-mb"]
    assert s["spool-mb"] == [("9", f"{conf}:5")], s["spool-mb"]
    assert s["max-conns"] == [("8192", "default")], s["max-conns"]
    # without the command line, the environment; without it, the file
    s = settings(run("serve", "--config", str(conf), "--print-config", env=env).stdout)
    assert s["threads"] == [("3", "environment CRMBLOB_THREADS")]
    s = settings(run("serve", "--config", str(conf), "--print-config").stdout)
    assert s["threads"] == [("2", f"{conf}:3")] and s["cache-mb"] == [("7", f"{conf}:4")]
    # CRMBLOB_CONFIG names the file too
    s = settings(run("serve", "--print-config", env={"CRMBLOB_CONFIG": str(conf)}).stdout)
    assert s["threads"] == [("2", f"{conf}:3")]


def test_lists_and_flags_from_every_source(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("cors-origin = https://a.example\ncors-origin = https://b.example\n"
                    "durable = yes\nlog-probes = off\r\n\tjwt-issuer\t=  https://i.example/#x \n")
    s = settings(run("serve", "--config", str(conf), "--print-config").stdout)
    assert s["cors-origin"] == [("https://a.example", f"{conf}:1"),
                                ("https://b.example", f"{conf}:2")]
    assert s["durable"] == [("yes", f"{conf}:3")] and s["log-probes"] == [("off", f"{conf}:4")]
    # a '#' after the '=' is part of the value (a password is never cut short)
    assert s["jwt-issuer"] == [("https://i.example/#x", f"{conf}:5")], s["jwt-issuer"]
    # a higher source replaces the whole list
    env = {"CRMBLOB_CORS_ORIGIN": "https://c.example https://d.example", "CRMBLOB_DURABLE": "no"}
    s = settings(run("serve", "--config", str(conf), "--print-config", env=env).stdout)
    assert [v for v, _ in s["cors-origin"]] == ["https://c.example", "https://d.example"]
    assert s["durable"] == [("no", "environment CRMBLOB_DURABLE")]
    s = settings(run("serve", "--config", str(conf), "--cors-origin", "https://e.example",
                     "--print-config", env=env).stdout)
    assert s["cors-origin"] == [("https://e.example", "command line")]
    # --no-FLAG: the command line turns off what a lower source turned on
    s = settings(run("serve", "--config", str(conf), "--no-durable", "--print-config").stdout)
    assert s["durable"] == [("no", "command line")], s["durable"]
    # an option of one value given twice: the last one is in effect, and shown
    s = settings(run("serve", "--durable", "--no-durable", "--threads", "2", "--threads", "3",
                     "--print-config").stdout)
    assert s["durable"] == [("no", "command line")] and s["threads"] == [("3", "command line")]
    for bad in ["--no-threads", "--no-password-stdin", "--no-such"]:
        p = run("serve", bad, "--print-config")
        assert p.returncode == 2 and f"unknown option {bad}" in p.stderr, (bad, p.stderr)
    p = run("serve", "--print-config", env={"CRMBLOB_DURABLE": "maybe"})
    assert p.returncode == 2 and "CRMBLOB_DURABLE" in p.stderr and "maybe" in p.stderr, p.stderr


def test_print_config_masks_secrets(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("admin-password = file-pw-Secret1\n")
    env = {"CRMBLOB_DB": "postgresql://crmblob:Pg-Secret2@db.example/crmblob"}
    p = run("serve", "--config", str(conf), "--print-config", env=env)
    assert p.returncode == 0, p.stderr
    assert "Secret1" not in p.stdout and "Secret2" not in p.stdout, p.stdout
    s = settings(p.stdout)
    assert s["admin-password"] == [("********", f"{conf}:1")], s
    (db, src), = s["db"]
    assert "db.example" in db and src.startswith("environment CRMBLOB_DB"), s["db"]
    # a password is not an option of the command line (ps would show it)
    p = run("serve", "--admin-password", "x", "--print-config")
    assert p.returncode == 2 and "--admin-password" in p.stderr


@pytest.mark.parametrize("line, problem", [
    ("listen 127.0.0.1:1", "expected `option = value`"),
    ("lisen = 127.0.0.1:1", "unknown option 'lisen'"),
    ("threads = many", "bad value 'many' for threads"),
    ("password-stdin = yes", "password-stdin is for the command line"),
    ("blob-grace = 0s", "bad value '0s' for blob-grace"),
])
def test_bad_config_line_stops_the_start(tmp_path, line, problem):
    conf = tmp_path / "bad.conf"
    conf.write_text(f"# ok so far\ncache-mb = 4\n{line}\n")
    db = tmp_path / "never" / "x.db"
    p = run("serve", "--config", str(conf), "--db", str(db), "--listen", "127.0.0.1:0")
    assert p.returncode == 2, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert f"{conf}:3" in lines[0] and problem in lines[0], lines[0]
    assert not db.parent.exists(), "a refused start must not create the database"


def test_missing_config_file_is_named(tmp_path):
    p = run("serve", "--config", str(tmp_path / "none.conf"), "--print-config")
    assert p.returncode == 2 and "none.conf" in p.stderr, p.stderr


def test_config_file_reaches_the_server(make_arg_server, tmp_path):
    conf = tmp_path / "first.conf"
    conf.write_text("admin-password = from-the-file-9\n")
    s = make_arg_server(["--config", str(conf)], users={}, start=False)
    s.start(env={"CRMBLOB_ADMIN_PASSWORD": None})
    r = s.client("admin", "from-the-file-9").post("/api/v1/Person", json={"Firstname": "F"})
    assert r.status_code == 201, r.text
    assert "from-the-file-9" not in s.log()


def test_admin_commands_read_the_database_from_the_environment(cli):
    cli.add_user("envy", "viewer", "pw")
    p = run("user", "list", env={"CRMBLOB_DB": str(cli.db)})
    assert p.returncode == 0 and "envy" in p.stdout, p.stderr
    # serve's other settings in the file are not the business of `user`
    conf = cli.dir / "serve.conf"
    conf.write_text(f"db = {cli.db}\nlisten = 127.0.0.1:1\nthreads = 2\n")
    p = run("user", "list", "--config", str(conf))
    assert p.returncode == 0 and "envy" in p.stdout, p.stderr


# --------------------------------------------------------------------------
# help, unknown commands and options, bad values

COMMANDS = ["serve", "init", "user", "ticket", "token", "apptoken", "keygen", "rekey", "migrate",
            "help"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_for_every_command(cmd):
    a = run("help", cmd)
    b = run(cmd, "--help")
    assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
    assert a.stdout == b.stdout and a.stdout.startswith("usage: crmblob " if cmd != "help"
                                                        else "usage: crmblob COMMAND")
    assert "exit codes: 0" in a.stdout and "2 usage" in a.stdout
    assert max(len(line) for line in a.stdout.splitlines()) <= 79, a.stdout


def test_serve_help_has_every_option_with_its_default():
    h = " ".join(run("serve", "--help").stdout.split())  # lines are wrapped
    conf = settings(run("serve", "--print-config").stdout)
    assert len(conf) > 20
    for name, [(value, src)] in conf.items():
        assert src == "default"
        if name == "admin-password":
            continue
        assert f"--{name}" in h, name
        if value != "no":
            assert f"(default: {value})" in h, (name, value)
    for name in ["threads", "spool-dir", "trusted-proxy", "jwt-key", "cors-origin", "durable"]:
        assert f"--{name}" in h, name
    assert "CRMBLOB_ADMIN_PASSWORD" in h and "CRMBLOB_<OPTION>" in h


def test_overview_and_usage_errors():
    p = run("--help")
    assert p.returncode == 0 and all(f"crmblob {c}" in p.stdout for c in COMMANDS), p.stdout
    p = run()
    assert p.returncode == 2 and "usage: crmblob" in p.stderr
    p = run("frobnicate")
    assert p.returncode == 2 and "unknown command 'frobnicate'" in p.stderr, p.stderr
    p = run("help", "frobnicate")
    assert p.returncode == 2 and "frobnicate" in p.stderr, p.stderr
    p = run("serve", "--lisen", "127.0.0.1:1")
    assert p.returncode == 2 and "unknown option --lisen" in p.stderr, p.stderr
    p = run("serve", "-x")
    assert p.returncode == 2 and "unknown option -x" in p.stderr, p.stderr
    p = run("user", "list", "--listen", "127.0.0.1:1")
    assert p.returncode == 2 and "--listen is not an option of user" in p.stderr, p.stderr
    p = run("serve", "--threads")
    assert p.returncode == 2 and "--threads needs a value" in p.stderr, p.stderr
    p = run("serve", "--durable=yes")
    assert p.returncode == 2 and "--durable takes no value" in p.stderr, p.stderr
    p = run("serve", "extra")
    assert p.returncode == 2 and "'extra'" in p.stderr, p.stderr
    p = run("user", "frob", "--db", "/nonexistent/x.db")
    assert p.returncode == 2 and "unknown subcommand 'frob'" in p.stderr, p.stderr
    p = run("user", "add", "--db", "/nonexistent/x.db")
    assert p.returncode == 2 and "add needs NAME" in p.stderr, p.stderr


@pytest.mark.parametrize("opt, bad", [
    ("--threads", "0"), ("--threads", "4x"), ("--threads", "-1"), ("--max-conns", "99999999999"),
    ("--cache-mb", "lots"), ("--spool-mb", ""), ("--variant-cache-mb", "1.5"),
    ("--blob-grace", "soon"), ("--ticket-ttl", "6y"), ("--db-wait", "-3"),
    ("--image-cpu-limit", "2h"), ("--auth-address-window", "0"),
    ("--listen", "nowhere"), ("--listen", "127.0.0.1:70000"), ("--listen", "[::1:80"),
    ("--auth", "basic,magic"), ("--trusted-proxy", "10.0.0.0/33"), ("--pixel-limit", "0"),
])
def test_bad_value_names_its_option(opt, bad):
    p = run("serve", opt, bad, "--print-config")
    assert p.returncode == 2, (opt, bad, p.stdout)
    assert f"bad value '{bad}' for {opt}" in p.stderr and "expected" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_bad_value_from_the_environment_names_the_variable():
    p = run("serve", "--print-config", env={"CRMBLOB_MAX_CONNS_PER_IP": "many"})
    assert p.returncode == 2, p.stdout
    assert "'many' for --max-conns-per-ip (environment CRMBLOB_MAX_CONNS_PER_IP)" in p.stderr


# --------------------------------------------------------------------------
# no silent database, no empty password, a port in use


@pytest.mark.parametrize("args", [["user", "list"], ["token", "list"], ["apptoken", "list"],
                                  ["ticket", "revoke", "7T:x"], ["rekey"]])
def test_admin_commands_never_create_a_database(tmp_path, args):
    db = tmp_path / "nonexistent" / "dir" / "x.db"
    p = run(*args, "--db", str(db))
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert f"no database at {db}" in p.stderr and "crmblob init" in p.stderr, p.stderr
    assert not (tmp_path / "nonexistent").exists(), "the directory was created"


def test_init_makes_a_database_once(tmp_path):
    db = tmp_path / "new" / "x.db"
    p = run("init", "--db", str(db))
    assert p.returncode == 0 and db.exists() and "made" in p.stdout, p.stderr
    assert oct(db.stat().st_mode & 0o777) == oct(0o600)
    p = run("user", "add", "first", "--role", "admin", "--password-stdin", "--db", str(db),
            stdin="pw-1\n")
    assert p.returncode == 0, p.stderr
    p = run("init", "--db", str(db))
    assert p.returncode == 0 and "left as it is" in p.stdout, p.stdout
    assert "first" in run("user", "list", "--db", str(db)).stdout


@pytest.mark.parametrize("stdin", ["\n", "", "\r\n"])
def test_empty_password_is_refused(cli, stdin):
    cli.init_db()
    p = run("user", "add", "nopw", "--role", "editor", "--password-stdin", "--db", str(cli.db),
            stdin=stdin)
    assert p.returncode == 1 and "password is empty" in p.stderr, (p.returncode, p.stderr)
    assert "nopw" not in cli.user_list()
    cli.add_user("haspw", "editor", "pw")
    p = run("user", "passwd", "haspw", "--password-stdin", "--db", str(cli.db), stdin=stdin)
    assert p.returncode == 1 and "password is empty" in p.stderr, p.stderr


def test_port_in_use_is_told_before_anything_is_created(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        db = tmp_path / "fresh" / "crmblob.db"
        p = run("serve", "--listen", f"127.0.0.1:{port}", "--db", str(db), timeout=20)
    assert p.returncode == 1, (p.returncode, p.stderr)
    out = p.stdout + p.stderr
    assert f"cannot listen on 127.0.0.1:{port} (--listen): Address already in use" in out, out
    assert "password" not in out.lower(), out
    assert not db.parent.exists(), "the database was created"


def test_admin_commands_never_create_a_schema_on_postgresql(pg_db):
    for args in (["user", "list"], ["apptoken", "list"]):
        p = run(*args, "--db", pg_db.conninfo)
        assert p.returncode == 1 and "no database at" in p.stderr, (p.returncode, p.stderr)
    # nothing was made by those: the schema is still empty, so init makes it
    p = run("init", "--db", pg_db.conninfo)
    assert p.returncode == 0 and "made" in p.stdout, (p.stdout, p.stderr)
    p = run("user", "list", "--db", pg_db.conninfo)
    assert p.returncode == 0 and p.stdout.startswith("id\t"), p.stderr
