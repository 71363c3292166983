"""`crmblob backup --to FILE` and `crmblob restore --from FILE` (issue 19).

A backup is taken while a client writes continuously (a new entity with its
picture per request), and `crmblob check` runs meanwhile too (it must find
nothing wrong in a data set being written): the backup must be one
snapshot, holding every write answered before it began and none sent after
it ended, whole (check passes). It is restored into a new database and a server there, with the
same key, serves what the backup holds byte for byte. restore refuses a
database a server uses and a non-empty one without --force; backup refuses
to overwrite a file without --force, never creates a missing database, and
says that the key is not in the backup. On PostgreSQL (make http-pg) the
same tests run: the backup is then the verified row copy into a SQLite
file.
"""
import fcntl
import os
import sqlite3
import subprocess
import threading
import time

import pytest

from conftest import (BIN, DEFAULT_USERS, TEST_DB, ArgServer, picture_of_size, start_arg_server,
                      stop_arg_server)


ALICE = {"alice": DEFAULT_USERS["alice"]}  # one user: each costs a password hash


def run(*args, timeout=120):
    return subprocess.run([str(BIN), *[str(a) for a in args]], capture_output=True, text=True,
                          timeout=timeout)


def ok(p):
    assert p.returncode == 0, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


class Writer(threading.Thread):
    """Creates a Person with its picture, again and again, and notes when
    each was answered (monotonic clock)."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.c = server.client("alice")
        self.stop = threading.Event()
        self.done = []  # (sent_at, answered_at, person id, picture)
        self.error = None

    def run(self):
        n = 0
        try:
            while not self.stop.is_set():
                sent = time.monotonic()
                pid = self.c.create("Person", Firstname=f"W{n}")
                pic = picture_of_size(n, 2000 + n % 3000)
                self.c.put_image("Person", pid, pic)
                self.done.append((sent, time.monotonic(), pid, pic))
                n += 1
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    k = tmp_path_factory.mktemp("key") / "key"
    ok(run("keygen", k))
    return k


def persons_in(db):
    with sqlite3.connect(db) as con:
        return {r[0] for r in con.execute("SELECT id FROM person WHERE image_blob_id IS NOT NULL")}


def test_backup_while_a_client_writes_then_restore(tmp_path, key):
    args = ["--compress", "--encryption-key-file", key]
    s = start_arg_server(tmp_path / "src", args, users=ALICE)
    try:
        w = Writer(s)
        w.start()
        while len(w.done) < 30 and w.error is None:  # a data set, and the writes going
            time.sleep(0.02)
        began = time.monotonic()
        p = ok(run("backup", "--db", s.db, "--to", tmp_path / "b.db"))
        ended = time.monotonic()
        # check beside the server as it writes: no problem that is not one
        ok(run("check", "--db", s.db, "--encryption-key-file", key))
        time.sleep(0.3)  # writes go on after it
        w.stop.set()
        w.join(30)
        assert w.error is None, w.error
        # the server answered throughout
        assert any(t > ended for _, t, _, _ in w.done), "no write after the backup"
    finally:
        stop_arg_server(s)
    assert "NOT in the backup" in p.stdout and "fingerprint" in p.stdout, p.stdout
    assert "backup: " in p.stderr  # progress, on a pipe: its last line
    assert oct(os.stat(tmp_path / "b.db").st_mode & 0o777) == "0o600"
    assert not (tmp_path / "b.db.part").exists()
    # one snapshot: everything answered before it began, nothing sent after it ended
    have = persons_in(tmp_path / "b.db")
    before = {pid for _, t, pid, _ in w.done if t < began}
    after = {pid for t, _, pid, _ in w.done if t > ended}
    assert before <= have, sorted(before - have)
    assert not (have & after), sorted(have & after)
    # whole: check reads every picture back
    ok(run("check", "--db", tmp_path / "b.db", "--encryption-key-file", key))
    # restored into a new database, served with the same key
    r = ArgServer(tmp_path / "restored", users=ALICE, serve_args=args)  # users from the backup
    p = ok(run("restore", "--from", tmp_path / "b.db", "--db", r.db, "--force"))
    assert "verified" in p.stdout, p.stdout
    r.start()
    try:
        c = r.client("alice")
        pics = {pid: pic for _, _, pid, pic in w.done}
        for pid in sorted(have):
            got = c.get_image("Person", pid)
            assert got.status_code == 200 and got.content == pics[pid], pid
        assert c.get_image("Person", max(pics) + 1000).status_code == 404
    finally:
        stop_arg_server(r)


def test_backup_refuses_to_overwrite_and_never_creates(tmp_path):
    s = start_arg_server(tmp_path / "src", [], users=ALICE)
    try:
        out = tmp_path / "b.db"
        out.write_bytes(b"precious")
        p = run("backup", "--db", s.db, "--to", out)
        assert p.returncode == 1 and "--force" in p.stderr, p.stderr
        assert out.read_bytes() == b"precious"
        p = ok(run("backup", "--db", s.db, "--to", out, "--force"))
        assert "not encrypted" in p.stdout, p.stdout
        ok(run("check", "--db", out))
    finally:
        stop_arg_server(s)
    missing = tmp_path / "nothing" / "x.db"
    p = run("backup", "--db", missing, "--to", tmp_path / "c.db")
    assert p.returncode == 1
    assert not missing.exists() and not (tmp_path / "c.db").exists()
    assert run("backup", "--db", out).returncode == 2  # no --to
    # a database some server holds (its lock, taken as serve takes it) is never replaced
    with open(f"{out}.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_SH)
        before = out.read_bytes()
        p = run("backup", "--db", s.db, "--to", out, "--force")
        assert p.returncode == 1 and "in use" in p.stderr, p.stderr
        assert out.read_bytes() == before
    # the database itself, however spelt, is never the other side
    (tmp_path / "link.db").symlink_to(out)
    before = out.read_bytes()
    for alias in (f"{tmp_path}/./b.db", tmp_path / "link.db"):
        assert run("backup", "--db", out, "--to", alias, "--force").returncode == 2
        assert run("restore", "--from", alias, "--db", out, "--force").returncode == 2
    assert out.read_bytes() == before


def test_restore_refuses_a_running_server_and_a_non_empty_target(tmp_path):
    s = start_arg_server(tmp_path / "src", [], users=ALICE)
    c = s.client("alice")
    kept = c.create("Contact", Name="in the backup")
    c.put_image("Contact", kept, picture_of_size(1, 1500))
    ok(run("backup", "--db", s.db, "--to", tmp_path / "b.db"))
    later = c.create("Contact", Name="after the backup")
    try:
        p = run("restore", "--from", tmp_path / "b.db", "--db", s.db, "--force")
        assert p.returncode == 1 and "in use" in p.stderr, p.stderr
    finally:
        stop_arg_server(s)
    p = run("restore", "--from", tmp_path / "b.db", "--db", s.db)
    assert p.returncode == 1 and "not empty" in p.stderr, p.stderr
    ok(run("restore", "--from", tmp_path / "b.db", "--db", s.db, "--force"))
    s.start()
    try:
        c = s.client("alice")
        assert c.get_image("Contact", kept).content == picture_of_size(1, 1500)
        assert c.get(f"/api/v1/Contact/{later}").status_code == 404
    finally:
        stop_arg_server(s)


@pytest.mark.skipif(TEST_DB == "pg", reason="SQLite only: the backup of a SQLite file's pages")
def test_a_sqlite_backup_is_a_page_copy(tmp_path):
    s = start_arg_server(tmp_path / "src", [], users=ALICE)
    try:
        p = ok(run("backup", "--db", s.db, "--to", tmp_path / "b.db"))
    finally:
        stop_arg_server(s)
    assert "SQLite online backup" in p.stdout
    with sqlite3.connect(tmp_path / "b.db") as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA user_version").fetchone()[0] == \
            sqlite3.connect(s.db).execute("PRAGMA user_version").fetchone()[0]
