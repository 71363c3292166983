"""crmblob serve on PostgreSQL (--db postgresql://... or key=value words),
whatever CRMBLOB_TEST_DB says: what only a server on a shared database
has to get right. The Basic credentials a server remembers are dropped
when another process changes the user; while PostgreSQL is down /ready
and every request answer 503 (with Retry-After) and the server comes back
by itself; --db-wait waits for the database at start; without it an
unreachable database is one error naming it without its password. libpq
comes with the module crmblob-pg.so, loaded only for a PostgreSQL --db."""
import os
import subprocess
import threading
import time

import pytest

from conftest import BIN, Server, png_of_size
from conftest import data as data_file


class PgServer(Server):
    """A Server on the schema given (extra: more serve arguments)."""

    def __init__(self, workdir, schema, extra=()):
        super().__init__(workdir)
        self.pg_schema = schema
        self.db = schema.conninfo
        self.extra = list(extra)

    def serve_argv(self):
        return super().serve_argv() + self.extra


@pytest.fixture
def pg_srv(pg_db, tmp_path):
    s = PgServer(tmp_path / "pg", pg_db)
    s.create_users()
    s.start()
    yield s
    if s.alive():
        assert s.stop() == 0, s.log()[-2000:]


def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    return pred()


def test_remembered_basic_sees_another_process_change_the_user(pg_srv):
    admin = pg_srv.client("admin")
    pid = admin.post("/api/v1/Person", json={"Firstname": "P"}).json()["PersonId"]
    carol = pg_srv.client("carol")
    for _ in range(3):  # verified once, then remembered
        assert carol.get(f"/api/v1/Person/{pid}").status_code == 200
    pg_srv.passwd("carol", "carol-pw-2")  # another process: the CLI
    assert pg_srv.client("carol", "carol-pw-1").get(f"/api/v1/Person/{pid}").status_code == 401
    assert pg_srv.client("carol", "carol-pw-2").get(f"/api/v1/Person/{pid}").status_code == 200
    dave = pg_srv.client("dave")
    assert dave.get(f"/api/v1/Person/{pid}").status_code == 200
    pg_srv.cli("user", "disable", "dave", "--db", pg_srv.db, check=True)
    assert dave.get(f"/api/v1/Person/{pid}").status_code == 401


def test_a_password_change_is_seen_by_every_server_at_once(pg_srv, tmp_path):
    """Two servers on one schema both remember carol's Basic value and read
    her picture; once her password has changed (the CLI: the way a
    password changes), the old one is refused by each on its very next
    request, also by the reads that take a single statement."""
    other = PgServer(tmp_path / "other", pg_srv.pg_schema)
    other.users = dict(pg_srv.users)
    other.start()
    try:
        pid = pg_srv.client("admin").post("/api/v1/Person", json={"Firstname": "P"}).json()[
            "PersonId"]
        data = png_of_size(5_000)
        pg_srv.client("admin").put_image("Person", pid, data)
        old = [srv.client("carol", "carol-pw-1") for srv in (pg_srv, other)]
        for c in old * 2:  # verified once, then remembered
            assert c.get_image("Person", pid).content == data
            assert c.info("Person", pid)["BlobSize"] == len(data)
        pg_srv.passwd("carol", "carol-pw-2")
        for c in old:
            assert c.get(f"/api/v1/Person/{pid}/Image").status_code == 401
            assert c.get(f"/api/v1/Person/{pid}/ImageInfo").status_code == 401
        for srv in (pg_srv, other):
            assert srv.client("carol", "carol-pw-2").get_image("Person", pid).content == data
    finally:
        if other.alive():
            assert other.stop() == 0


def test_picture_round_trip(pg_srv):
    admin = pg_srv.client("admin")
    pid = admin.post("/api/v1/Person", json={"Firstname": "P"}).json()["PersonId"]
    for data in (data_file("images/photo_320x240_prog.jpg"), png_of_size(1_500_000)):
        assert admin.put_image("Person", pid, data) > 0  # the second > 1 MiB: read spooled
        r = admin.get_image("Person", pid)
        assert r.status_code == 200 and r.content == data


def test_ready_and_requests_answer_503_while_postgresql_is_down(pg_cluster, pg_srv):
    admin = pg_srv.client("admin")
    anon = pg_srv.anon()
    assert anon.get("/ready").status_code == 200
    pg_cluster.pause()
    try:
        r = wait_for(lambda: (lambda x: x if x.status_code == 503 else None)(anon.get("/ready")))
        assert r is not None and r.status_code == 503
        assert "database" in r.json()["ErrorMessage"]
        r = admin.get("/api/v1/Person/1")
        assert r.status_code == 503, r.text
        assert r.headers.get("Retry-After")
    finally:
        pg_cluster.start()
    assert wait_for(lambda: anon.get("/ready").status_code == 200)
    assert admin.post("/api/v1/Person", json={"Firstname": "after"}).status_code == 201


def test_db_wait_waits_for_postgresql_at_start(pg_cluster, pg_db, tmp_path):
    s = PgServer(tmp_path / "w", pg_db, extra=["--db-wait", "30"])
    s.create_users()
    pg_cluster.pause()
    timer = threading.Timer(1.5, pg_cluster.start)
    timer.start()
    try:
        s.start()  # listening once the database answered
        assert "waiting up to 30 s for database" in s.log()
        assert s.client("admin").get("/api/v1/Person/1").status_code == 404
    finally:
        timer.join()
        if s.alive():
            assert s.stop() == 0


def test_unreachable_database_is_one_error_without_password(tmp_path):
    url = "postgresql://bob:sekrit@127.0.0.1:1/nodb"
    p = subprocess.run([str(BIN), "serve", "--listen", "127.0.0.1:0", "--db", url,
                        "--spool-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    out = p.stdout + p.stderr
    assert "sekrit" not in out
    errors = [l for l in out.splitlines() if " error " in l]
    assert errors and all("dbname=nodb" in l for l in errors), out


def mapped_files(pid):
    """The names of the files mapped into process pid."""
    with open(f"/proc/{pid}/maps") as f:
        return {line.split()[-1].rsplit("/", 1)[-1] for line in f if "/" in line}


def test_libpq_is_loaded_only_for_a_postgresql_database(pg_srv, tmp_path):
    """libpq and what it pulls in (libssl, Kerberos, LDAP, SASL: 1.3 MiB of
    a server's idle RSS) come with crmblob-pg.so, which a server loads only
    when its --db is a PostgreSQL database."""
    sq = Server(tmp_path / "sqlite")
    sq.create_users()
    sq.start()
    try:
        assert sq.client("admin").get("/api/v1/Person/1").status_code == 404
        names = mapped_files(sq.proc.pid)
        assert not any(n.startswith(("libpq.", "crmblob-pg")) for n in names), sorted(names)
    finally:
        assert sq.stop() == 0
    assert pg_srv.client("admin").get("/api/v1/Person/1").status_code == 404
    names = mapped_files(pg_srv.proc.pid)
    assert "crmblob-pg.so" in names and any(n.startswith("libpq.so") for n in names), sorted(names)


def test_missing_postgresql_module_is_one_error_without_password(tmp_path):
    url = "postgresql://bob:sekrit@127.0.0.1:1/nodb"
    env = dict(os.environ, CRMBLOB_PG_MODULE=str(tmp_path / "gone.so"))
    p = subprocess.run([str(BIN), "serve", "--listen", "127.0.0.1:0", "--db", url,
                        "--spool-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode == 1
    out = p.stdout + p.stderr
    assert "sekrit" not in out
    assert "cannot load the PostgreSQL module" in out and "gone.so" in out, out


def test_two_servers_on_one_schema_see_each_others_writes(pg_srv, tmp_path):
    """No read cache on PostgreSQL: what one server wrote is what the other
    reads next, pictures, records and entities alike."""
    other = PgServer(tmp_path / "other", pg_srv.pg_schema)
    other.users = dict(pg_srv.users)
    other.start()
    try:
        a, b = pg_srv.client("admin"), other.client("admin")
        pid = a.post("/api/v1/Person", json={"Firstname": "one"}).json()["PersonId"]
        for n, size in enumerate((30_000, 40_000)):
            data = png_of_size(size)
            (a if n == 0 else b).put_image("Person", pid, data)
            for c in (a, b):
                r = c.get_image("Person", pid)
                assert r.status_code == 200 and r.content == data
            assert a.info("Person", pid)["BlobSize"] == b.info("Person", pid)["BlobSize"] == size
        r = b.put(f"/api/v1/Person/{pid}", json={"Firstname": "two"})
        assert r.status_code == 200, r.text
        assert a.get(f"/api/v1/Person/{pid}").json()["Firstname"] == "two"
    finally:
        if other.alive():
            assert other.stop() == 0
