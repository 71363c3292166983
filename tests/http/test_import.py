"""Importing an export's tar archive (issue 21): `crmblob import FILE.tar`
and the tar reader's refusals.

The archive is made from `crmblob export DIR` of a data set served with
--compress and a key (test_export.py's fixtures), laid out as the export
job writes it: the pictures, then manifest.jsonl LAST. Imported into an
empty data set, the new server must serve the same bytes and client
fields; a rerun skips everything. Bad archives (a member named with '..',
an absolute name, a truncated archive, a wrong checksum) import nothing
and say why, naming the member. Runs on PostgreSQL too (CRMBLOB_TEST_DB=pg).
"""
import io
import subprocess
import tarfile

from conftest import BIN, Server
from test_export import USERS, CLIENT_FIELDS, exported, manifest, ok, run, source  # noqa: F401

KINDS = {"person": "Person", "contact": "Contact", "product": "Product", "project": "Project"}


def tar_of(d, path, fmt=tarfile.USTAR_FORMAT, extra=()):
    """The export directory d as an archive, manifest.jsonl last."""
    with tarfile.open(path, "w", format=fmt) as t:
        for f in sorted(p for p in d.rglob("*") if p.is_file() and p.name != "manifest.jsonl"):
            t.add(f, arcname=str(f.relative_to(d)))
        for name, body in extra:
            ti = tarfile.TarInfo(name)
            ti.size = len(body)
            t.addfile(ti, io.BytesIO(body))
        t.add(d / "manifest.jsonl", arcname="manifest.jsonl")
    return path


def test_import_archive_file_into_an_empty_data_set(source, exported, tmp_path):
    arc = tar_of(exported, tmp_path / "export.tar", fmt=tarfile.GNU_FORMAT)
    dst = Server(tmp_path / "dst", users=USERS)
    p = ok(run("import", arc, "--db", dst.db))
    assert "imported 5 pictures" in p.stdout and "created 5 entities" in p.stdout, p.stdout
    again = ok(run("import", arc, "--db", dst.db))
    assert "imported 0 pictures, skipped 5" in again.stdout, again.stdout
    dst.create_users()
    dst.start()
    try:
        c = dst.client("admin")
        for (t, eid), (body, info) in source["pics"].items():
            r = c.get_image(KINDS[t], eid)
            assert r.status_code == 200 and r.content == body, (t, eid)
            got = c.info(KINDS[t], eid)
            for f in CLIENT_FIELDS + ("MimeType", "OriginalSize"):
                assert got[f] == info[f], (t, eid, f)
    finally:
        assert dst.stop() == 0
    assert not list((tmp_path / "dst").rglob("crmblob-import-*"))  # the spool is gone


def test_pax_archive_and_skipped_member_types(exported, tmp_path):
    arc = tmp_path / "pax.tar"
    with tarfile.open(arc, "w", format=tarfile.PAX_FORMAT) as t:
        for f in sorted(p for p in exported.rglob("*") if p.is_file()
                        and p.name != "manifest.jsonl"):
            t.add(f, arcname=str(f.relative_to(exported)))
        ln = tarfile.TarInfo("person/link")
        ln.type, ln.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(ln)
        t.add(exported / "manifest.jsonl", arcname="manifest.jsonl")
    dst = Server(tmp_path / "dst", users=USERS)
    p = ok(run("import", arc, "--db", dst.db))
    assert "imported 5 pictures" in p.stdout, p.stdout
    assert "archive member person/link: of type '2', skipped" in p.stderr, p.stderr


def bad(tmp_path, name, body):
    dst = Server(tmp_path / name, users=USERS)
    (tmp_path / f"{name}.tar").write_bytes(body)
    p = run("import", tmp_path / f"{name}.tar", "--db", dst.db)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "imported 0 pictures" in p.stdout, p.stdout
    return p.stderr


def raw_member(name, body, typ=b"0"):
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = b"0000644\0"
    h[124:136] = b"%011o\0" % len(body)
    h[156:157] = typ
    h[257:265] = b"ustar\x0000"
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h) + body + b"\0" * (-len(body) % 512)


def test_bad_archives_import_nothing_and_say_why(exported, tmp_path):
    good = tar_of(exported, tmp_path / "good.tar").read_bytes()
    png = (exported / "person").glob("*.png").__next__().read_bytes()
    err = bad(tmp_path, "dotdot", raw_member(b"../evil.png", png) + b"\0" * 1024)
    assert "member ../evil.png: not a name inside the archive" in err, err
    err = bad(tmp_path, "abs", raw_member(b"/tmp/evil.png", png) + b"\0" * 1024)
    assert "member /tmp/evil.png: not a name inside the archive" in err, err
    err = bad(tmp_path, "inner", raw_member(b"person/../../x.png", png) + b"\0" * 1024)
    assert "not a name inside the archive" in err, err
    # cut inside the manifest's bytes: nothing of it is applied
    with tarfile.open(tmp_path / "good.tar") as t:
        m = t.getmember("manifest.jsonl")
    err = bad(tmp_path, "trunc", good[:m.offset_data + 10])
    assert "member manifest.jsonl: the archive ends inside it (truncated)" in err, err
    end = m.offset_data + m.size + (-m.size % 512)  # the end marker cut off
    err = bad(tmp_path, "nomarker", good[:end])
    assert "ends without its end marker (truncated after manifest.jsonl)" in err, err
    broken = bytearray(raw_member(b"person/1.png", png))
    broken[0] ^= 1  # the checksum no longer matches
    err = bad(tmp_path, "sum", bytes(broken) + b"\0" * 1024)
    assert "wrong checksum" in err, err
    err = bad(tmp_path, "notar", b"PK\x03\x04" + b"x" * 2000)
    assert "not a ustar or GNU tar header" in err or "wrong checksum" in err, err
    # a NUL trick: a name with bytes after its NUL
    err = bad(tmp_path, "nul", raw_member(b"person/1.png\0/../../x", png) + b"\0" * 1024)
    assert "whose name has bytes after its end" in err, err


def test_library_round_trip_through_an_archive(tmp_path):
    """Pictures of the project image library are exported with Role
    "library" and imported back into the library (not as plain records)."""
    import base64
    from conftest import data
    src = Server(tmp_path / "src", users=USERS)
    src.create_users()
    src.start()
    try:
        c = src.client("admin")
        for desc, name in (("sunrise", "small.jpg"), ("harbour", "small.png")):
            r = c.post("/api/v1/Agents/BLOB/SaveProjectImage",
                       json={"Description": desc, "Image": base64.b64encode(data(name)).decode()})
            assert r.status_code == 204, r.text
    finally:
        assert src.stop() == 0
    out = tmp_path / "out"
    ok(run("export", out, "--db", src.db))
    lines = [l for l in manifest(out) if l["Role"] == "library"]
    assert len(lines) == 2 and all(l["File"].startswith("library/") for l in lines), lines
    arc = tar_of(out, tmp_path / "lib.tar")
    dst = Server(tmp_path / "dst", users=USERS)
    p = ok(run("import", arc, "--db", dst.db))
    assert "2 into the project image library" in p.stdout, p.stdout
    again = ok(run("import", arc, "--db", dst.db))  # a rerun adds nothing
    assert "0 into the project image library" in again.stdout and "skipped 2" in again.stdout
    dst.create_users()
    dst.start()
    try:
        c = dst.client("admin")
        r = c.get("/api/v1/ProjectImageLibrary", headers={"Accept": "application/json"})
        got = {v["Description"]: v["BlobId"] for v in r.json()["value"]}
        assert set(got) == {"sunrise", "harbour"}, got
        for desc, name in (("sunrise", "small.jpg"), ("harbour", "small.png")):
            r = c.get(f"/api/v1/ProjectImageLibrary/{got[desc]}")
            assert r.status_code == 200 and r.content == data(name)
    finally:
        assert dst.stop() == 0


def test_a_killed_imports_spool_folder_is_removed_by_the_next(exported, tmp_path):
    """An import holds a lock on its spool folder; a folder whose lock can
    be taken was left by an import that was killed (kill -9), and the next
    import removes it. One whose import still runs is left alone."""
    import fcntl
    import os
    arc = tar_of(exported, tmp_path / "export.tar")
    dst = Server(tmp_path / "dst", users=USERS)
    db = str(dst.db)
    spool = os.path.dirname(db) if db.endswith(".db") else str(tmp_path / "spool")
    os.makedirs(spool, exist_ok=True)
    home = os.path.join(spool, f"crmblob-imports-{os.geteuid()}")  # the imports' own folder
    dead, alive = os.path.join(home, "crmblob-import-dead01"), os.path.join(home,
                                                                          "crmblob-import-live01")
    for d in (dead, alive):
        os.makedirs(os.path.join(d, "person"))
        open(os.path.join(d, "person", "1.jpg"), "wb").write(b"x" * 1000)
        open(os.path.join(d, ".crmblob-import-lock"), "w").close()
    held = open(os.path.join(alive, ".crmblob-import-lock"))
    fcntl.flock(held, fcntl.LOCK_EX)  # as a running import holds it
    try:
        p = subprocess.run([str(BIN), "import", str(arc), "--db", db], capture_output=True,
                           text=True, timeout=120, env={**os.environ, "TMPDIR": spool})
        assert p.returncode == 0, p.stdout + p.stderr
        assert f"removed {dead}, left by an import that was killed" in p.stderr, p.stderr
        assert not os.path.exists(dead) and os.path.exists(alive)
        assert "imported 5 pictures" in p.stdout, p.stdout
        left = [n for n in os.listdir(home) if n.startswith("crmblob-import-")]
        assert left == ["crmblob-import-live01"], left  # its own is gone too
    finally:
        held.close()


def test_a_nul_in_a_too_long_manifest_line_hides_no_record(exported, tmp_path):
    """A manifest line longer than a record's (64 KiB) is one refused line
    however it is made: a NUL early in it does not make the rest of the
    physical line be read as further records (the record hidden there is
    not imported)."""
    import shutil
    d = tmp_path / "exp"
    shutil.copytree(exported, d)
    lines = (d / "manifest.jsonl").read_bytes().splitlines(keepends=True)
    hidden = next(l for l in lines if b'"Role":"image"' in l.replace(b" ", b""))
    head = b'{"x":"\0'
    long_line = head + b"a" * (65537 - len(head)) + hidden  # the record begins at byte 65537
    (d / "manifest.jsonl").write_bytes(b"".join(l for l in lines if l != hidden) + long_line)
    dst = Server(tmp_path / "dst", users=USERS)
    p = run("import", d, "--db", dst.db)
    assert "imported 4 pictures" in p.stdout, p.stdout + p.stderr


def test_an_archive_without_manifest_is_listed_within_a_bound(tmp_path):
    """An archive's pictures without a manifest are listed whole (an entry
    each): past 50,000 the import stops before storing any, so a large
    archive of tiny members cannot grow the server's memory with it."""
    arc = tmp_path / "flat.tar"
    with tarfile.open(arc, "w", format=tarfile.USTAR_FORMAT) as t:
        for i in range(1, 50002):
            ti = tarfile.TarInfo(f"person/{i}.jpg")
            ti.size = 1
            t.addfile(ti, io.BytesIO(b"x"))
    dst = Server(tmp_path / "dst", users=USERS)
    p = run("import", arc, "--db", dst.db)
    assert p.returncode != 0, p.stdout
    assert "more than 50000 pictures without a manifest.jsonl" in p.stdout + p.stderr, p.stderr
    assert "imported 0 pictures" in p.stdout, p.stdout
