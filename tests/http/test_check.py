"""`crmblob check` (issue 19): the database's own check, every link, every
picture read back, decrypted and decoded, and every BLOB record's BlobSize,
OriginalSize, MimeType, IsZipped and IsEncrypted against its bytes.

A small data set is made through a real server (compressed and encrypted,
pictures on entities of every kind, a product thumbnail, an unlinked
record, a record without bytes) on whatever backend the suite runs on, and
taken out as a SQLite file with `crmblob backup`. Copies of that file are
damaged in one way each with sqlite3 (a truncated picture, flipped bytes,
a wrong BlobSize, MimeType, OriginalSize or flag, a dangling link, a
damaged page of the file) and check must name each problem's record and
exit 1; the clean copy, and the server's own database (PostgreSQL in the
PostgreSQL run), pass with exit 0.
"""
import base64
import os
import pty
import shutil
import sqlite3
import subprocess

import pytest

from conftest import (BIN, DEFAULT_USERS, TEST_DB, blob_id_of, picture_of_size,
                      start_arg_server, stop_arg_server)

KINDS = ["Person", "Contact", "Product", "Project"]
AGENT = "/api/v1/Agents/BLOB/"


def b64(b):
    return base64.b64encode(b).decode()


ALICE = {"alice": DEFAULT_USERS["alice"]}  # one user: each costs a password hash


def run(*args, timeout=120, **kw):
    return subprocess.run([str(BIN), *[str(a) for a in args]], capture_output=True, text=True,
                          timeout=timeout, **kw)


def make_dataset(d, serve_args):
    """A data set written by a real server; returns (server, {kind: [(id, blob)]},
    unlinked blob id, info-only blob id). The server is stopped."""
    s = start_arg_server(d, serve_args, users=ALICE)
    try:
        c = s.client("alice")
        ents = {}
        for i, kind in enumerate(KINDS * 2):
            eid = c.create(kind)
            ents.setdefault(kind, []).append((eid, c.put_image(kind, eid,
                                                               picture_of_size(i, 3000 + 50 * i))))
        pid = ents["Product"][0][0]
        r = c.post(AGENT + "SetProductThumbnail",
                   json={"productId": pid, "image": b64(picture_of_size(77, 900))})
        assert r.status_code == 204, r.text
        unlinked = blob_id_of(c.post(AGENT + "SaveImageStream",
                                     json={"Type": "PersonImage",
                                           "Image": b64(picture_of_size(50, 1200))}))
        r = c.post(AGENT + "SaveProjectImage",  # the library's records are linked by it
                   json={"Description": "library", "Image": b64(picture_of_size(51, 1100))})
        assert r.status_code == 204, r.text
        eid = c.create("Person")
        r = c.put_info("Person", eid, {"Description": "no picture yet"})
        assert r.status_code == 200, r.text
        info_only = r.json()["BlobId"]
    finally:
        stop_arg_server(s)
    return s, ents, unlinked, info_only


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The encrypted data set as a SQLite file (a backup of the server's
    database, whichever backend), with its key and what is in it."""
    d = tmp_path_factory.mktemp("check")
    key = d / "key"
    assert run("keygen", key).returncode == 0
    s, ents, unlinked, info_only = make_dataset(
        d / "srv", ["--compress", "--encryption-key-file", key])
    out = d / "clean.db"
    p = run("backup", "--db", s.db, "--to", out)
    assert p.returncode == 0, p.stderr
    return {"db": out, "key": key, "ents": ents, "server": s, "info_only": info_only}


def check(db, key=None, *extra):
    args = ["check", "--db", db, *extra]
    if key is not None:
        args += ["--encryption-key-file", key]
    return run(*args)


def damaged(clean, tmp_path, sql, params=()):
    p = tmp_path / "damaged.db"
    shutil.copy(clean["db"], p)
    with sqlite3.connect(p) as con:  # foreign keys off: as a damaged file would be
        con.execute(sql, params)
    return p


def picture_blob(clean, kind="Person", n=0):
    return clean["ents"][kind][n][1]


def problems(p):
    assert p.returncode == 1, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    assert lines, p.stderr
    return lines


def test_clean_data_set_passes(clean):
    p = check(clean["db"], clean["key"])
    assert p.returncode == 0, f"stdout: {p.stdout}\nstderr: {p.stderr}"
    assert "no problem found" in p.stdout
    assert "check: 100%" in p.stderr  # the progress line, on a pipe


def test_the_servers_own_database_passes(clean):
    """On whatever backend the suite runs (PostgreSQL in make http-pg)."""
    p = check(clean["server"].db, clean["key"])
    assert p.returncode == 0, f"stdout: {p.stdout}\nstderr: {p.stderr}"


def test_encrypted_data_needs_its_key(clean, tmp_path):
    p = check(clean["db"])
    assert p.returncode == 1 and "--encryption-key-file" in p.stderr
    other = tmp_path / "other.key"
    assert run("keygen", other).returncode == 0
    p = check(clean["db"], other)
    assert p.returncode == 1 and "not the key" in p.stderr


def test_truncated_picture(clean, tmp_path):
    b = picture_blob(clean)
    db = damaged(clean, tmp_path, "UPDATE blob_data SET content = substr(content, 1, "
                 "length(content) / 2) WHERE blob_id = ?", (b,))
    lines = problems(check(db, clean["key"]))
    assert any(l.startswith(f"BLOB {b}: BlobSize") for l in lines), lines
    assert any(l.startswith(f"BLOB {b}: ") and "do not decode" in l for l in lines), lines


def test_flipped_bytes(clean, tmp_path):
    b = picture_blob(clean, "Contact")
    with sqlite3.connect(clean["db"]) as con:
        content = bytearray(con.execute("SELECT content FROM blob_data WHERE blob_id = ?",
                                        (b,)).fetchone()[0])
    for i in range(len(content) // 2, len(content) // 2 + 4):
        content[i] ^= 0x5A
    db = damaged(clean, tmp_path, "UPDATE blob_data SET content = ? WHERE blob_id = ?",
                 (bytes(content), b))
    lines = problems(check(db, clean["key"]))
    assert lines == [f"BLOB {b}: its {len(content)} stored bytes do not decode to a picture "
                     f"(damaged, or encrypted with another key)"], lines


@pytest.mark.parametrize("sql,word", [
    ("UPDATE blob SET blob_size = blob_size + 7 WHERE id = ?", "BlobSize"),
    ("UPDATE blob SET original_size = original_size - 1 WHERE id = ?", "OriginalSize"),
    ("UPDATE blob SET mime_type = 'image/gif' WHERE id = ?", "MimeType 'image/gif'"),
    ("UPDATE blob SET is_encrypted = 0 WHERE id = ?", "IsEncrypted 0"),
    ("UPDATE blob SET is_zipped = 1 - is_zipped WHERE id = ?", "IsZipped"),
])
def test_record_that_does_not_match_its_bytes(clean, tmp_path, sql, word):
    b = picture_blob(clean, "Project", 1)
    lines = problems(check(damaged(clean, tmp_path, sql, (b,)), clean["key"]))
    assert len(lines) == 1 and lines[0].startswith(f"BLOB {b}: ") and word in lines[0], lines


def test_dangling_link(clean, tmp_path):
    eid, b = clean["ents"]["Person"][1]
    db = damaged(clean, tmp_path, "UPDATE person SET image_blob_id = 999999 WHERE id = ?", (eid,))
    lines = problems(check(db, clean["key"]))
    assert f"Person {eid}: its image names BLOB 999999, which does not exist" in lines, lines
    assert f"BLOB {b}: marked linked, yet nothing links it (it is never swept)" in lines, lines
    # SQLite's own foreign_key_check names it too
    assert any(l.startswith(f"database: a reference: person {eid}: image_blob_id") for l in lines)


def test_record_linked_twice(clean, tmp_path):
    """The unique indexes keep one kind from sharing a record; across kinds
    only the store's rules do."""
    pid, b = clean["ents"]["Person"][0]
    cid, old = clean["ents"]["Contact"][0]
    db = damaged(clean, tmp_path, "UPDATE contact SET image_blob_id = ? WHERE id = ?", (b, cid))
    lines = problems(check(db, clean["key"]))
    assert sorted(lines) == sorted([
        f"BLOB {b}: linked twice, by Person {pid} (image) and Contact {cid} (image)",
        f"BLOB {old}: marked linked, yet nothing links it (it is never swept)"]), lines


def test_record_gone_under_its_links(clean, tmp_path):
    """A BLOB row deleted with foreign keys off: the entity's link, the
    bytes and the variants all dangle."""
    eid, b = clean["ents"]["Contact"][1]
    db = damaged(clean, tmp_path, "DELETE FROM blob WHERE id = ?", (b,))
    lines = problems(check(db, clean["key"]))
    assert f"Contact {eid}: its image names BLOB {b}, which does not exist" in lines, lines
    assert any(l.startswith("database: a reference: blob_data") for l in lines), lines


def test_unlinked_mark_on_a_linked_record(clean, tmp_path):
    eid, b = clean["ents"]["Product"][0]
    db = damaged(clean, tmp_path, "UPDATE blob SET unlinked_ms = 1 WHERE id = ?", (b,))
    lines = problems(check(db, clean["key"]))
    assert lines == [f"BLOB {b}: marked unlinked, yet Product {eid} links it as its image"]


def test_info_only_record_with_a_size(clean, tmp_path):
    b = clean["info_only"]
    db = damaged(clean, tmp_path, "UPDATE blob SET blob_size = 10 WHERE id = ?", (b,))
    lines = problems(check(db, clean["key"]))
    assert lines == [f"BLOB {b}: BlobSize 10, but no bytes are stored"], lines


def test_damaged_page(clean, tmp_path):
    p = tmp_path / "page.db"
    shutil.copy(clean["db"], p)
    with sqlite3.connect(p) as con:
        page = con.execute("PRAGMA page_size").fetchone()[0]
        root = con.execute("SELECT rootpage FROM sqlite_master WHERE name = "
                           "'person_image_blob_id'").fetchone()[0]
    with open(p, "r+b") as f:
        f.seek((root - 1) * page + 8)
        f.write(os.urandom(page - 8))
    lines = problems(check(p, clean["key"]))
    assert any(l.startswith("database: integrity_check") for l in lines), lines
    assert any(l.startswith("database: quick_check")
               for l in problems(check(p, clean["key"], "--quick")))


def test_picture_that_no_longer_decodes(tmp_path):
    """Stored as it is (no key, no compression): bytes that are still a PNG
    by their first bytes, sizes that agree, and yet no picture."""
    s, ents, _, _ = make_dataset(tmp_path / "plain", [])
    out = tmp_path / "plain.db"
    assert run("backup", "--db", s.db, "--to", out).returncode == 0
    b = ents["Person"][0][1]
    with sqlite3.connect(out) as con:
        content = con.execute("SELECT content FROM blob_data WHERE blob_id = ?",
                              (b,)).fetchone()[0]
        cut = content[:len(content) * 2 // 3]
        con.execute("UPDATE blob_data SET content = ? WHERE blob_id = ?", (cut, b))
        con.execute("UPDATE blob SET blob_size = ?, original_size = ? WHERE id = ?",
                    (len(cut), len(cut), b))
    lines = problems(check(out))
    assert len(lines) == 1 and lines[0].startswith(f"BLOB {b}: its picture is not valid"), \
        lines
    assert check(tmp_path / "missing.db").returncode == 1
    assert not (tmp_path / "missing.db").exists()  # never created


def test_the_image_workers_limits_are_serves(clean):
    """A picture beyond --pixel-limit is one serve would refuse: named."""
    lines = problems(check(clean["db"], clean["key"], "--pixel-limit", "1"))
    with sqlite3.connect(clean["db"]) as con:
        stored = con.execute("SELECT count(*) FROM blob_data").fetchone()[0]
    assert len(lines) == stored, lines
    assert all("its picture is not valid" in l for l in lines), lines


def test_progress_bar_on_a_terminal(clean):
    master, slave = pty.openpty()
    try:
        p = subprocess.run([str(BIN), "check", "--db", str(clean["db"]),
                            "--encryption-key-file", str(clean["key"])],
                           stdout=subprocess.PIPE, stderr=slave, timeout=120)
        os.close(slave)
        slave = None
        out = b""
        try:
            while True:
                chunk = os.read(master, 65536)
                if not chunk:
                    break
                out += chunk
        except OSError:
            pass
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    assert p.returncode == 0, p.stdout
    assert b"\r\x1b[Kcheck: [" in out and b"100%" in out, out


@pytest.mark.skipif(TEST_DB != "pg", reason="the PostgreSQL run checks a damaged data set there")
def test_damaged_data_set_on_postgresql(clean, tmp_path):
    """A record that does not match its bytes, restored into PostgreSQL:
    check finds it there too."""
    b = picture_blob(clean, "Person", 1)
    db = damaged(clean, tmp_path, "UPDATE blob SET blob_size = blob_size + 1 WHERE id = ?", (b,))
    target = clean["server"].db
    p = run("restore", "--from", db, "--db", target, "--force")
    assert p.returncode == 0, p.stderr
    try:
        lines = problems(check(target, clean["key"]))
        assert len(lines) == 1 and lines[0].startswith(f"BLOB {b}: BlobSize"), lines
    finally:
        assert run("restore", "--from", clean["db"], "--db", target, "--force").returncode == 0


@pytest.mark.skipif(TEST_DB != "pg", reason="PostgreSQL's amcheck")
def test_postgresql_indexes_checked_by_amcheck(clean):
    """With amcheck in the database, check runs bt_index_check on every
    index of the schema (it is schema-qualified: crmblob's search path
    holds its own schema alone); without it, a note says so."""
    schema = clean["server"].pg_schema
    p = check(schema.conninfo, clean["key"])
    assert p.returncode == 0, p.stdout + p.stderr
    try:
        schema.cluster.psql("CREATE EXTENSION IF NOT EXISTS amcheck")
    except Exception:  # noqa: BLE001 - another worker made it meanwhile
        pass
    p = check(schema.conninfo, clean["key"])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "amcheck" not in p.stderr, p.stderr
