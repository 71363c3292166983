"""Moving a data set (issue 18): `crmblob migrate --from WHERE --to WHERE
[--force]` and `--verify-only`, between SQLite files and a real PostgreSQL
(the pg_cluster / pg_db fixtures).

One data set is made through a real server once per module: a few
thousand small distinct pictures, compressed and encrypted, on entities of
every kind and on unlinked BLOB records, users, tokens, tickets, sessions
(one logged out: a revoked pair), a partner app, a deleted record at the
top of the id range. It goes SQLite -> PostgreSQL -> SQLite and each copy
is compared with the source through the databases themselves (sqlite3 and
psql), every column of every row and every picture's stored bytes; then a
server on the last file, with the same key, serves the same pictures and
ImageInfo and lets the old passwords, tokens and sessions in. Until the
server itself serves PostgreSQL, the PostgreSQL side is checked through
psql only.
"""
import base64
import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import (BIN, HTTP_TIMEOUT, ArgServer, basic, blob_id_of, picture_of_size, session_headers,
                      start_arg_server, stop_arg_server)

N_REST = 1800      # pictures on entities (PUT Image), 450 of each kind
N_AGENT = 500      # unlinked BLOB records (the agent's SaveImageStream)
KINDS = ["Person", "Contact", "Product", "Project"]
TABLES = ["users", "cred", "app", "meta", "blob", "project_library", "person", "contact",
          "product", "project"]
BYTES_COLS = {("cred", "hash"), ("cred", "xsrf_hash"), ("app", "hash"), ("meta", "value")}
TEXT_COLS = {"name", "full_name", "pw_hash", "label", "description", "extra_info", "mime_type",
             "conceptual_type", "firstname", "lastname", "erp_product_key", "project_number"}
AGENT = "/api/v1/Agents/BLOB/"


def migrate(*args, timeout=300):
    return subprocess.run([str(BIN), "migrate", *args], capture_output=True, text=True,
                          timeout=timeout)


def ok(p):
    assert p.returncode == 0, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


# --------------------------------------------------------------------------
# the data set


def put_picture(c, kind, n):
    eid = c.create(kind, Name=f"{kind} {n}") if kind != "Person" else \
        c.create(kind, Firstname=f"F{n}", Lastname="Ü-Lastname")
    assert c.put_image(kind, eid, picture_of_size(n, 900 + n % 700)) > 0
    return kind, eid


def save_unlinked(c, n):
    img = base64.b64encode(picture_of_size(n, 900 + n % 500)).decode()
    r = c.post(AGENT + "SaveImageStream", json={"Type": "PersonImage", "Image": img})
    return blob_id_of(r)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """The source: a SQLite file written by a real server (compressed and
    encrypted), and what its clients saw; the server is stopped."""
    d = tmp_path_factory.mktemp("migrate")
    key = d / "key"
    subprocess.run([str(BIN), "keygen", str(key)], check=True, capture_output=True)
    args = ["--compress", "--encryption-key-file", str(key), "--auth", "all"]
    s = start_arg_server(d / "src", args)
    try:
        c = s.client("alice")
        mine = threading.local()  # one client (one connection) per thread

        def client():
            if not hasattr(mine, "c"):
                mine.c = s.client("alice")
            return mine.c
        jobs = [(KINDS[n % 4], n) for n in range(N_REST)]
        with ThreadPoolExecutor(2) as ex:
            ents = list(ex.map(lambda j: put_picture(client(), *j), jobs))
            unlinked = list(ex.map(lambda n: save_unlinked(client(), n),
                                   range(N_REST, N_REST + N_AGENT)))
        person = ents[0][1]
        contact = ents[1][1]
        c.put(f"/api/v1/Person/{person}", json={"Firstname": "Ådne", "Lastname": "Ørn",
                                                 "ContactId": contact})
        r = c.put_info("Contact", contact, {"Description": "ein Bild\tmit Tab", "ExtraInfo": "x"})
        assert r.status_code == 200, r.text
        # a deleted record at the top of the ids: its id is never given again
        gone = save_unlinked(c, 99999)
        assert c.post(AGENT + f"DeleteBlobEntity?BlobEntityId={gone}").status_code == 204
        # a picture of the project image library
        library_picture = picture_of_size(5, 1500)
        r = c.post(AGENT + "SaveProjectImage",
                   json={"Description": "library",
                         "Image": base64.b64encode(library_picture).decode()})
        assert r.status_code == 204, r.text
        creds = {
            "token": s.token("alice", label="migrated"),
            "revoked_token": s.token("bob"),
            "ticket": s.ticket("victor"),
            "app": s.apptoken("printer"),
            "session": s.login("carol"),
        }
        s.cli("token", "revoke", creds["revoked_token"], "--db", str(s.db), check=True)
        ended = s.login("dave")  # logged out: its ticket and session are revoked together
        assert requests.post(s.base + "/api/v1/logout", headers=session_headers(ended),
                             timeout=HTTP_TIMEOUT).status_code == 204
        creds["ended_ticket"] = ended["Ticket"]
        sample = ents[::37] + [ents[0], ents[1]]
        seen = {(k, e): (c.get_image(k, e).content, c.info(k, e)) for k, e in sample}
        agent_seen = {b: c.post(AGENT + f"GetBlobEntity?blobEntityId={b}").json()
                      for b in unlinked[::50]}
    finally:
        stop_arg_server(s)
    shutil.copy(s.db, d / "pristine.db")  # the WAL is checkpointed at a clean stop
    return {"dir": d, "db": d / "pristine.db", "key": key, "args": args, "users": s.users,
            "creds": creds, "seen": seen, "agent_seen": agent_seen, "gone": gone,
            "library_picture": library_picture, "pictures": N_REST + N_AGENT + 1}


def fresh_copy(dataset, tmp_path, name="src.db"):
    p = tmp_path / name
    shutil.copy(dataset["db"], p)
    return p


# --------------------------------------------------------------------------
# reading both databases directly


def columns(db, table):
    with sqlite3.connect(db) as con:
        return [r[1] for r in con.execute(f"PRAGMA table_info({table})")]


def expr_sqlite(table, col):
    if (table, col) in BYTES_COLS or col in TEXT_COLS:
        return f"CASE WHEN {col} IS NULL THEN '~' ELSE lower(hex({col})) END"
    return f"coalesce(CAST({col} AS TEXT), '~')"


def expr_pg(table, col):
    if (table, col) in BYTES_COLS:
        return f"coalesce(encode({col}, 'hex'), '~')"
    if col in TEXT_COLS:
        return f"coalesce(encode(convert_to({col}, 'UTF8'), 'hex'), '~')"
    return f"coalesce({col}::text, '~')"


def key_of(table):
    return {"meta": "name", "project_library": "blob_id"}.get(table, "id")


def rows_sqlite(db, table, cols):
    sql = (f"SELECT {' || char(9) || '.join(expr_sqlite(table, c) for c in cols)} FROM {table} "
           f"ORDER BY {key_of(table)}")
    with sqlite3.connect(db) as con:
        return [r[0] for r in con.execute(sql)]


def rows_pg(schema, table, cols):
    sql = (f"SELECT {' || chr(9) || '.join(expr_pg(table, c) for c in cols)} FROM {table} "
           f"ORDER BY {key_of(table)} COLLATE \"C\"" if table == "meta" else
           f"SELECT {' || chr(9) || '.join(expr_pg(table, c) for c in cols)} FROM {table} "
           f"ORDER BY {key_of(table)}")
    out = schema.sql(sql)
    return out.split("\n") if out else []


def pictures_sqlite(db):
    with sqlite3.connect(db) as con:
        return {bid: hashlib.sha256(content).hexdigest()
                for bid, content in con.execute("SELECT blob_id, content FROM blob_data")}


def pictures_pg(schema):
    out = schema.sql("SELECT blob_id || ' ' || encode(sha256(string_agg(bytes, ''::bytea "
                     "ORDER BY n)), 'hex') FROM blob_piece GROUP BY blob_id")
    return {int(l.split()[0]): l.split()[1] for l in out.split("\n") if l}


def same_as_source(src, other_rows, other_pictures):
    """Every row of every table and every picture of src equal in the other."""
    for t in TABLES:
        cols = columns(src, t)
        want = rows_sqlite(src, t, cols)
        got = other_rows(t, cols)
        assert len(got) == len(want), (t, len(want), len(got))
        for w, g in zip(want, got):
            assert w == g, f"{t}: source row {w!r}, copy {g!r}"
    want = pictures_sqlite(src)
    assert other_pictures() == want


# --------------------------------------------------------------------------
# tests


def test_usage_and_help():
    h = subprocess.run([str(BIN), "--help"], capture_output=True, text=True)
    assert "crmblob migrate --from WHERE --to WHERE [--force]" in h.stdout + h.stderr
    p = migrate("--from", "a.db")
    assert p.returncode == 2
    p = migrate("--from", "x.db", "--to", "x.db")
    assert p.returncode == 2 and "same database" in p.stderr


def test_missing_source_is_refused(tmp_path):
    p = migrate("--from", str(tmp_path / "none.db"), "--to", str(tmp_path / "t.db"))
    assert p.returncode == 1 and "cannot open the source" in p.stderr
    assert not (tmp_path / "none.db").exists()


def test_empty_pg_source_is_refused_and_left_empty(pg_db, tmp_path):
    p = migrate("--from", pg_db.conninfo, "--to", str(tmp_path / "t.db"))
    assert p.returncode == 1 and "no crmblob data set" in p.stderr, p.stderr
    assert pg_db.sql("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()") == "0"


def test_sqlite_to_pg_to_sqlite_byte_for_byte(dataset, pg_db, tmp_path):
    src = fresh_copy(dataset, tmp_path)
    before = src.read_bytes()
    p = ok(migrate("--from", str(src), "--to", pg_db.conninfo))
    assert "variants not copied" in p.stdout
    assert f"{dataset['pictures']} pictures" in p.stdout, p.stdout
    assert "verified:" in p.stdout
    assert "migrate:" in p.stderr and "100%" in p.stderr  # the last progress line
    same_as_source(src, lambda t, cols: rows_pg(pg_db, t, cols), lambda: pictures_pg(pg_db))
    # the sequences are past the copied ids, and past the deleted one
    nxt = pg_db.sql("SELECT nextval(pg_get_serial_sequence('blob', 'id'))")
    assert int(nxt) > dataset["gone"]
    assert src.read_bytes() == before  # the source is never written

    final = tmp_path / "final"
    final.mkdir()
    ok(migrate("--from", pg_db.conninfo, "--to", str(final / "crmblob.db")))
    same_as_source(src, lambda t, cols: rows_sqlite(final / "crmblob.db", t, cols),
                   lambda: pictures_sqlite(final / "crmblob.db"))
    serve_and_check(dataset, final)


def serve_and_check(dataset, final):
    """A server on the copy, with the same key: what clients saw before."""
    s = ArgServer(final, users=dataset["users"], serve_args=dataset["args"])
    s.start()
    try:
        c = s.client("alice")
        for (kind, eid), (img, info) in dataset["seen"].items():
            assert c.get_image(kind, eid).content == img, (kind, eid)
            assert c.info(kind, eid) == info, (kind, eid)
        for bid, rec in dataset["agent_seen"].items():
            assert c.post(AGENT + f"GetBlobEntity?blobEntityId={bid}").json() == rec
        library = c.get("/api/v1/ProjectImageLibrary").json()["value"]
        assert [v["Description"] for v in library] == ["library"]
        r = c.get(f"/api/v1/ProjectImageLibrary/{library[0]['BlobId']}")
        assert r.content == dataset["library_picture"]
        kind, eid = next(iter(dataset["seen"]))
        url = f"{s.base}/api/v1/{kind}/{eid}/ImageInfo"
        cr = dataset["creds"]

        def status(headers):
            return requests.get(url, headers=headers, timeout=HTTP_TIMEOUT).status_code
        for user, (_, pw, _) in dataset["users"].items():
            assert status({"Authorization": basic(user, pw)}) == 200, user
        assert status({"Authorization": "Bearer " + cr["token"]}) == 200
        assert status({"Authorization": "Bearer " + cr["revoked_token"]}) == 401
        assert status({"Authorization": "SOTicket " + cr["ticket"]}) == 200
        assert status({"Authorization": "SOTicket " + cr["ended_ticket"]}) == 401
        assert status(session_headers(cr["session"])) == 200
        assert status({"Authorization": basic("alice", dataset["users"]["alice"][1]),
                       "SO-AppToken": cr["app"]}) == 200
        # a new record gets an id past every one the source ever gave
        r = c.post(AGENT + "SaveImageStream",
                   json={"Type": "PersonImage",
                         "Image": base64.b64encode(picture_of_size(7, 900)).decode()})
        assert blob_id_of(r) > dataset["gone"], r.text
    finally:
        stop_arg_server(s)


def test_sqlite_to_sqlite_and_pg_to_pg(dataset, pg_cluster, tmp_path):
    src = fresh_copy(dataset, tmp_path)
    a, b = pg_cluster.new_schema(), pg_cluster.new_schema()
    try:
        ok(migrate("--from", str(src), "--to", str(tmp_path / "copy.db")))
        same_as_source(src, lambda t, cols: rows_sqlite(tmp_path / "copy.db", t, cols),
                       lambda: pictures_sqlite(tmp_path / "copy.db"))
        ok(migrate("--from", str(src), "--to", a.conninfo))
        ok(migrate("--from", a.conninfo, "--to", b.conninfo))
        same_as_source(src, lambda t, cols: rows_pg(b, t, cols), lambda: pictures_pg(b))
    finally:
        a.drop()
        b.drop()


def test_non_empty_target_needs_force(dataset, pg_db, tmp_path):
    src = fresh_copy(dataset, tmp_path)
    s = start_arg_server(tmp_path / "o", users={"zoe": ("admin", "zoe-pw-1", "Zoe")})
    stop_arg_server(s)
    other = tmp_path / "other.db"
    shutil.copy(s.db, other)
    ok(migrate("--from", str(s.db), "--to", pg_db.conninfo))
    for target in (str(other), pg_db.conninfo):
        p = migrate("--from", str(src), "--to", target)
        assert p.returncode == 1, p.stdout + p.stderr
        assert "not empty" in p.stderr and "--force" in p.stderr
        if target == str(other):
            assert rows_sqlite(other, "users", ["name"]) == ["7a6f65"]  # "zoe", untouched
        else:
            assert pg_db.sql("SELECT string_agg(name, ',') FROM users") == "zoe"
        ok(migrate("--from", str(src), "--to", target, "--force"))
    same_as_source(src, lambda t, cols: rows_sqlite(other, t, cols),
                   lambda: pictures_sqlite(other))
    same_as_source(src, lambda t, cols: rows_pg(pg_db, t, cols), lambda: pictures_pg(pg_db))


def test_a_running_server_on_the_target_is_refused(dataset, tmp_path):
    src = fresh_copy(dataset, tmp_path)
    s = start_arg_server(tmp_path / "busy", users={})
    try:
        p = migrate("--from", str(src), "--to", str(s.db))
        assert p.returncode == 1 and "cannot open the target" in p.stderr, p.stderr
    finally:
        stop_arg_server(s)


def test_a_served_source_is_copied_as_of_one_moment(dataset, pg_db, tmp_path):
    """A server goes on writing the source: the copy and its verification
    both see the one snapshot the copy began with."""
    d = tmp_path / "live"
    d.mkdir()
    shutil.copy(dataset["db"], d / "crmblob.db")
    s = ArgServer(d, users=dataset["users"], serve_args=dataset["args"])
    s.start()
    stop = threading.Event()

    def write():
        c, n = s.client("alice"), 0
        while not stop.is_set():
            put_picture(c, KINDS[n % 4], 50000 + n)
            n += 1
        return n
    try:
        with ThreadPoolExecutor(1) as ex:
            written = ex.submit(write)
            try:
                time.sleep(0.3)
                p = ok(migrate("--from", str(s.db), "--to", pg_db.conninfo))
            finally:
                stop.set()
            assert written.result() > 0
        assert "verified:" in p.stdout
    finally:
        stop_arg_server(s)


def test_a_source_written_meanwhile_verifies_against_its_snapshot(dataset, pg_cluster,
                                                                  tmp_path):
    """Rows committed into a PostgreSQL source while it is copied are in
    neither the copy nor its verification (which a fresh look at the
    source would count as a difference)."""
    src = fresh_copy(dataset, tmp_path)
    pg = pg_cluster.new_schema()
    try:
        ok(migrate("--from", str(src), "--to", pg.conninfo))
        env = {**os.environ, **pg_cluster.env, "PGOPTIONS": f"-csearch_path={pg.name}"}
        writer = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"], env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        stop = threading.Event()

        def write():
            n = 0
            while not stop.is_set():
                writer.stdin.write(f"INSERT INTO meta VALUES ('live {n}', '\\x00');\n")
                writer.stdin.flush()
                n += 1
                time.sleep(0.002)
        with ThreadPoolExecutor(1) as ex:
            done = ex.submit(write)
            try:
                p = ok(migrate("--from", pg.conninfo, "--to", str(tmp_path / "copy.db")))
            finally:
                stop.set()
                done.result()
                writer.communicate(timeout=30)
        assert writer.returncode == 0
        assert "verified:" in p.stdout
        copied = rows_sqlite(tmp_path / "copy.db", "meta", ["name"])
        assert len(copied) < int(pg.sql("SELECT count(*) FROM meta")), "nothing written meanwhile"
    finally:
        pg.drop()


def peak_rss_mb(*args):
    """Runs `crmblob migrate args`; its peak resident memory (VmHWM) in MiB,
    as last read while it ran (a child's rusage would count the forking
    Python's memory too)."""
    env = dict(os.environ)
    # ASan keeps freed blocks in a quarantine (256 MB by default): keep it
    # small, so that memory freed is not counted as memory held
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4").lstrip(":")
    proc = subprocess.Popen([str(BIN), "migrate", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    peak = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.002)
    assert proc.returncode == 0, args
    return peak / 1024


def test_memory_stays_bounded_whatever_the_pictures(pg_db, tmp_path):
    """Twelve pictures of 9 MB each (108 MB) both ways: the process holds
    a few pieces of 256 KiB, never a picture (a baseline: an empty copy)."""
    s = start_arg_server(tmp_path / "big", users={"a": ("admin", "a-pw-1", "A")})
    try:
        c = s.client("a")
        for i in range(12):
            c.put_image("Contact", c.create("Contact"), picture_of_size(3 * i + 2, 9_000_000 + i))
    finally:
        stop_arg_server(s)
    empty = tmp_path / "empty.db"
    subprocess.run([str(BIN), "init", "--db", str(empty)], check=True,
                   capture_output=True)
    base = peak_rss_mb("--from", str(empty), "--to", str(tmp_path / "empty2.db"))
    there = peak_rss_mb("--from", str(s.db), "--to", pg_db.conninfo)
    back = peak_rss_mb("--from", pg_db.conninfo, "--to", str(tmp_path / "back.db"))
    assert pictures_sqlite(tmp_path / "back.db") == pictures_sqlite(s.db)
    assert there < base + 8 and back < base + 8, (base, there, back)


def wait_until(pred, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.005)
    return False


def empty_schema(target, tmp_path):
    """target given crmblob's tables and nothing else (a copy of no rows)."""
    empty = tmp_path / "empty.db"
    subprocess.run([str(BIN), "init", "--db", str(empty)], check=True,
                   capture_output=True)
    ok(migrate("--from", str(empty), "--to", target))


class Locker:
    """A psql session holding a table lock until release()."""

    def __init__(self, schema, sql):
        env = {**os.environ, **schema.cluster.env, "PGOPTIONS": f"-csearch_path={schema.name}"}
        self.p = subprocess.Popen(["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1"], env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.p.stdin.write(f"BEGIN; {sql}; SELECT 'locked';\n")
        self.p.stdin.flush()
        assert self.p.stdout.readline().strip() == "locked"

    def release(self):
        self.p.communicate("ROLLBACK;\n", timeout=30)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_copy_into_pg_leaves_it_as_it_was(dataset, pg_db, tmp_path, sig):
    """Cut short with every picture written (the copy waits for a table
    lock held by the test before its last table): the target holds
    nothing, and running again does the whole job."""
    src = fresh_copy(dataset, tmp_path)
    empty_schema(pg_db.conninfo, tmp_path)
    lock = Locker(pg_db, "LOCK TABLE person IN SHARE MODE")  # inserts wait; reads do not
    try:
        proc = subprocess.Popen([str(BIN), "migrate", "--from", str(src), "--to",
                                 pg_db.conninfo], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        waiting = ("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                   "AND query LIKE 'INSERT INTO person%'")
        assert wait_until(lambda: proc.poll() is not None or pg_db.sql(waiting) == "1")
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        proc.communicate(timeout=30)
        assert proc.returncode != 0
    finally:
        lock.release()
    assert wait_until(lambda: pg_db.sql(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == "0", 30)
    for t in TABLES:
        assert pg_db.sql(f"SELECT count(*) FROM {t}") == "0", t
    assert pg_db.sql("SELECT count(*) FROM blob_piece") == "0"
    ok(migrate("--from", str(src), "--to", pg_db.conninfo))
    same_as_source(src, lambda t, cols: rows_pg(pg_db, t, cols), lambda: pictures_pg(pg_db))


def writing(db):
    """True while another connection holds db's write transaction."""
    con = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as e:
        assert "locked" in str(e), e
        return True
    finally:
        con.close()


def test_killed_copy_into_sqlite_leaves_it_empty(dataset, tmp_path):
    """Killed while the copy's write transaction is open (the target's
    tables exist already, so it is the only write): the file holds no row,
    and running again does it all."""
    src = fresh_copy(dataset, tmp_path)
    dst = tmp_path / "dst.db"
    empty_schema(str(dst), tmp_path)
    proc = subprocess.Popen([str(BIN), "migrate", "--from", str(src), "--to", str(dst)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert wait_until(lambda: proc.poll() is not None or writing(dst))
    assert proc.poll() is None, "the copy ended before it could be cut short"
    proc.kill()
    proc.communicate(timeout=30)
    with sqlite3.connect(dst) as con:
        for t in TABLES + ["blob_data"]:
            assert con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] == 0, t
    ok(migrate("--from", str(src), "--to", str(dst)))
    same_as_source(src, lambda t, cols: rows_sqlite(dst, t, cols), lambda: pictures_sqlite(dst))


def test_verification_names_what_differs(dataset, pg_db, tmp_path):
    src = fresh_copy(dataset, tmp_path)
    dst = tmp_path / "dst.db"
    ok(migrate("--from", str(src), "--to", str(dst)))
    ok(migrate("--from", str(src), "--to", pg_db.conninfo))
    assert "verified:" in ok(migrate("--verify-only", "--from", str(src), "--to", str(dst))).stdout
    assert "verified:" in ok(migrate("--verify-only", "--from", str(src),
                                     "--to", pg_db.conninfo)).stdout
    with sqlite3.connect(dst) as con:
        bid, content = con.execute("SELECT blob_id, content FROM blob_data "
                                   "ORDER BY blob_id LIMIT 1 OFFSET 100").fetchone()
        tampered = bytes([content[0] ^ 1]) + content[1:]
        con.execute("UPDATE blob_data SET content = ? WHERE blob_id = ?", (tampered, bid))
        con.execute("UPDATE users SET full_name = 'Someone Else' WHERE name = 'bob'")
        cid = con.execute("SELECT max(id) FROM cred").fetchone()[0]
        con.execute("DELETE FROM cred WHERE id = ?", (cid,))
    p = migrate("--verify-only", "--from", str(src), "--to", str(dst))
    assert p.returncode == 1, p.stdout + p.stderr
    assert f"BLOB {bid}: picture bytes differ" in p.stderr, p.stderr
    assert "users: id" in p.stderr and "differs in column full_name" in p.stderr
    assert f"credentials: id {cid} only in the source" in p.stderr
    assert "credentials: " in p.stderr and "rows in the source" in p.stderr
    assert "verification FAILED: 4 differences" in p.stderr, p.stderr
    # one byte in one piece on PostgreSQL
    pg_db.sql(f"UPDATE blob_piece SET bytes = set_byte(bytes, 5, get_byte(bytes, 5) # 1) "
              f"WHERE blob_id = {bid} AND n = 0")
    p = migrate("--verify-only", "--from", str(src), "--to", pg_db.conninfo)
    assert p.returncode == 1 and f"BLOB {bid}: picture bytes differ" in p.stderr, p.stderr
    assert "verification FAILED: 1 differences" in p.stderr, p.stderr
