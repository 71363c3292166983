"""`crmblob export DIR` and `crmblob import DIR` (issue 19).

One data set is made through a real server with --compress and an
encryption key: a picture of each stored type on an entity of each kind
(client fields set on some), a picture larger than the store's in-memory
limit, and a record without bytes (PUT ImageInfo only). It is exported
while the server runs; the files must be the uploaded bytes (decrypted,
unzipped) and the manifest every record's fields. Then it is imported into
an empty data set, which must serve the same pictures byte for byte with
the same client fields; a rerun skips everything; a bad file among good
ones is reported and the others imported; a flat folder named by ids is
imported with --entity. Runs on PostgreSQL too (CRMBLOB_TEST_DB=pg: every
Server's --db is a schema of its own).
"""
import fcntl
import hashlib
import json
import shutil
import sqlite3
import subprocess

import pytest

from conftest import (BIN, Server, data, picture_of_size, sqlite_only, start_arg_server,
                      stop_arg_server)

BIG = 1536 * 1024  # above STORE_PIC_INLINE (1 MiB): read through a spool file
USERS = {"admin": ("admin", "admin-pw-1", "Ada Admin")}
CLIENT_FIELDS = ("Description", "ExtraInfo", "ConceptualType")


def run(*args, timeout=120):
    return subprocess.run([str(BIN), *[str(a) for a in args]], capture_output=True, text=True,
                          timeout=timeout)


def ok(p):
    assert p.returncode == 0, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


def manifest(d):
    return [json.loads(l) for l in (d / "manifest.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """The running source server and what it holds: {(table, id): (bytes, info)}."""
    tmp = tmp_path_factory.mktemp("export_src")
    key = tmp / "key"
    ok(run("keygen", key))
    s = start_arg_server(tmp / "srv", ["--compress", "--encryption-key-file", key], users=USERS)
    c = s.client("admin")
    pics = {
        ("person", c.create("Person", Firstname="Ann")): data("small.png"),
        ("contact", c.create("Contact")): data("small.jpg"),
        ("product", c.create("Product")): data("small.gif"),
        ("project", c.create("Project")): data("small_le.tif"),
        ("person", c.create("Person", Firstname="Big")): picture_of_size(3, BIG),
    }
    kinds = {"person": "Person", "contact": "Contact", "product": "Product", "project": "Project"}
    for (t, eid), body in pics.items():
        assert c.put_image(kinds[t], eid, body) > 0
    (t0, e0), (t1, e1) = list(pics)[:2]
    assert c.put_info(kinds[t0], e0, {"Description": "Ann's \"face\" ü",
                                      "ExtraInfo": "x=1"}).status_code == 200
    assert c.put_info(kinds[t1], e1, {"ConceptualType": "LOGO"}).status_code == 200
    bare = c.create("Project", Name="no picture")
    assert c.put_info("Project", bare, {"Description": "fields only"}).status_code == 200
    held = {k: (v, c.info(kinds[k[0]], k[1])) for k, v in pics.items()}
    yield {"srv": s, "key": key, "pics": held, "bare": bare, "tmp": tmp}
    stop_arg_server(s)


@pytest.fixture(scope="module")
def exported(source):
    d = source["tmp"] / "out"
    p = ok(run("export", d, "--db", source["srv"].db, "--encryption-key-file", source["key"]))
    assert "exported 5 pictures" in p.stdout, p.stdout
    return d


def test_export_files_are_the_uploaded_bytes(source, exported):
    for (t, eid), (body, info) in source["pics"].items():
        ext = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif",
               "image/tiff": "tiff"}[info["MimeType"]]
        f = exported / t / f"{eid}.{ext}"
        assert f.read_bytes() == body, f
    # the server kept them compressed or encrypted: the export undid that
    assert any(i["IsEncrypted"] for _, i in source["pics"].values())
    assert not list(exported.rglob("*.part"))


def test_manifest_has_every_record_and_field(source, exported):
    lines = manifest(exported)
    assert len(lines) == len(source["pics"]) + 1  # + the record without bytes
    by_entity = {(l["Entity"], l["EntityId"]): l for l in lines}
    for key, (body, info) in source["pics"].items():
        l = by_entity[key]
        for f in ("BlobId", "Description", "ExtraInfo", "MimeType", "ConceptualType", "BlobSize",
                  "OriginalSize", "IsZipped", "IsEncrypted", "CreatedDate", "UpdatedDate"):
            assert l[f] == info[f], (key, f, l[f], info[f])
        assert l["UpdatedBy"] == "admin" and l["Role"] == "image"
        assert l["Sha256"] == hashlib.sha256(body).hexdigest()
        assert (exported / l["File"]).read_bytes() == body
    bare = by_entity[("project", source["bare"])]
    assert bare["File"] is None and bare["BlobSize"] == 0
    assert bare["Description"] == "fields only"


def test_export_refuses_a_used_dir_and_a_missing_database(source, exported, tmp_path):
    p = run("export", exported, "--db", source["srv"].db, "--encryption-key-file",
            source["key"])
    assert p.returncode == 1 and "not an empty directory" in p.stderr, p.stderr
    p = run("export", tmp_path / "o", "--db", tmp_path / "none.db")
    assert p.returncode == 1 and "no database" in p.stderr, p.stderr
    assert not (tmp_path / "none.db").exists()


def test_import_into_an_empty_data_set_and_rerun(source, exported, tmp_path):
    dst = Server(tmp_path / "dst", users=USERS)
    p = ok(run("import", exported, "--db", dst.db))
    assert "imported 5 pictures" in p.stdout and "created 5 entities" in p.stdout, p.stdout
    again = ok(run("import", exported, "--db", dst.db))
    assert "imported 0 pictures, skipped 5" in again.stdout, again.stdout
    dst.create_users()
    dst.start()
    try:
        c = dst.client("admin")
        kinds = {"person": "Person", "contact": "Contact", "product": "Product",
                 "project": "Project"}
        for (t, eid), (body, info) in source["pics"].items():
            r = c.get_image(kinds[t], eid)
            assert r.status_code == 200 and r.content == body, (t, eid)
            got = c.info(kinds[t], eid)
            for f in CLIENT_FIELDS + ("MimeType", "OriginalSize"):
                assert got[f] == info[f], (t, eid, f)
    finally:
        assert dst.stop() == 0
    # the second export of the copy: the same pictures and client fields
    out2 = tmp_path / "out2"
    ok(run("export", out2, "--db", dst.db))
    a = {(l["Entity"], l["EntityId"]): l for l in manifest(exported) if l["File"]}
    b = {(l["Entity"], l["EntityId"]): l for l in manifest(out2)}
    assert a.keys() == b.keys()
    for k in a:
        for f in CLIENT_FIELDS + ("Sha256", "MimeType", "OriginalSize", "File"):
            assert a[k][f] == b[k][f], (k, f)


def test_bad_files_reported_the_others_imported(exported, tmp_path):
    d = tmp_path / "copy"
    shutil.copytree(exported, d)
    lines = manifest(d)
    damaged = d / lines[0]["File"]
    damaged.write_bytes(damaged.read_bytes()[:-10])  # no longer the manifest's SHA-256
    (d / lines[1]["File"]).unlink()
    with open(d / "manifest.jsonl", "a") as m:  # not a record; a line too long to be one
        m.write('{"Role": "image"}\n' + '{"Description": "' + "x" * 100000 + '"}\n')
    db = Server(tmp_path / "dst").db
    p = run("import", d, "--db", db)
    assert p.returncode == 1, p.stdout + p.stderr
    assert f"{lines[0]['File']}: its SHA-256 is not the manifest's" in p.stderr, p.stderr
    assert f"{lines[1]['File']}: cannot open" in p.stderr, p.stderr
    assert "not a record of an entity's image" in p.stderr, p.stderr
    assert "longer than a record's line can be" in p.stderr, p.stderr
    assert "imported 3 pictures" in p.stdout and "4 problems" in p.stdout, p.stdout


def test_flat_folder_with_entity(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    good = {7: data("small.png"), 8: data("small.jpg"), 9: picture_of_size(2, 4000)}
    for i, b in good.items():
        (flat / f"{i}.img").write_bytes(b)
    (flat / "10.jpg").write_bytes(b"not a picture at all")
    (flat / "11.png").write_bytes(data("small.png")[:40])  # truncated
    (flat / "photo.png").write_bytes(data("small.png"))    # not named by an id
    (flat / "07.png").write_bytes(data("small.png"))       # 7 again, written another way
    db = Server(tmp_path / "dst").db
    p = run("import", flat, "--entity", "contact", "--db", db, "--threads", "3")
    assert p.returncode == 1, p.stdout + p.stderr
    for name in ("10.jpg", "11.png", "photo.png", "07.png"):
        assert f"{name}:" in p.stderr, (name, p.stderr)
    assert "imported 3 pictures" in p.stdout and "created 3 entities" in p.stdout, p.stdout
    out = tmp_path / "out"
    ok(run("export", out, "--db", db))
    got = {l["EntityId"]: (out / l["File"]).read_bytes() for l in manifest(out)}
    assert got == good  # the refused pictures left no entity or record behind
    assert all(l["Entity"] == "contact" for l in manifest(out))
    p = run("import", flat, "--entity", "contact", "--db", db)
    assert "imported 0 pictures, skipped 3" in p.stdout, p.stdout


def test_layout_without_manifest_and_twins(exported, tmp_path):
    d = tmp_path / "layout"
    shutil.copytree(exported, d)
    (d / "manifest.jsonl").unlink()
    lines = manifest(exported)
    first = [l for l in lines if l["File"]][0]
    twin = d / first["Entity"] / f"{first['EntityId']}.other"
    twin.write_bytes(data("small.gif"))  # a second file for the same entity
    db = Server(tmp_path / "dst").db
    p = run("import", d, "--db", db)
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stderr.count("2 files name") == 2, p.stderr
    assert "imported 4 pictures" in p.stdout, p.stdout


def test_import_usage(tmp_path):
    p = run("import", tmp_path, "--entity", "nobody", "--db", tmp_path / "x.db")
    assert p.returncode == 2 and "--entity" in p.stderr
    p = run("import", tmp_path, "--db", tmp_path / "x.db")
    assert p.returncode == 1 and "no manifest.jsonl" in p.stderr, p.stderr


@sqlite_only("damages the SQLite file directly")
def test_export_reports_unreadable_pictures_and_goes_on(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    good = {1: data("small.png"), 2: data("small.jpg"), 3: data("small.gif")}
    for i, b in good.items():
        (flat / f"{i}.x").write_bytes(b)
    db = tmp_path / "d.db"
    ok(run("import", flat, "--entity", "project", "--db", db))
    with sqlite3.connect(db) as c:  # 1: bytes gone; 2: said to be zipped, and they are not
        c.execute("DELETE FROM blob_data WHERE blob_id = (SELECT image_blob_id FROM project "
                  "WHERE id = 1)")
        c.execute("UPDATE blob SET is_zipped = 1 WHERE id = (SELECT image_blob_id FROM project "
                  "WHERE id = 2)")
    out = tmp_path / "out"
    p = run("export", out, "--db", db)
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stderr.count("crmblob: export: BLOB") == 2, p.stderr
    lines = {l["EntityId"]: l for l in manifest(out)}
    assert lines[1]["File"] is None and lines[2]["File"] is None and lines[1]["Problem"]
    assert (out / lines[3]["File"]).read_bytes() == good[3]
    assert not list(out.rglob("*.part"))


@sqlite_only("holds the SQLite file's lock as `crmblob rekey` does")
def test_import_refused_while_a_rekey_holds_the_data_set(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "1.png").write_bytes(data("small.png"))
    db = tmp_path / "d.db"
    ok(run("import", flat, "--entity", "person", "--db", db))
    (flat / "2.png").write_bytes(data("small.png"))
    with open(f"{db}.lock", "a+") as lock:  # what rekey holds: the database alone
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        p = run("import", flat, "--entity", "person", "--db", db)
        assert p.returncode == 1 and "imported" not in p.stdout, p.stdout + p.stderr
        p = run("export", tmp_path / "out", "--db", db)
        assert p.returncode == 1, p.stdout + p.stderr
    p = ok(run("import", flat, "--entity", "person", "--db", db))
    assert "imported 1 pictures, skipped 1" in p.stdout, p.stdout
