"""What an import archive may make on the server's disk, and the import
spool's safety (src/bulk/import.c: unpacking bounds, the private spool
folder).

An archive is untrusted input (an admin imports a file someone handed
them): deep member names (a folder per part), many empty members (an inode
each for 512 bytes of archive) or many folders must fail the import
quickly, naming the member, with the spool staying small while it runs —
and a bystander keeps being served meanwhile. The spool lives in a private
0700 folder of the server's user (crmblob-imports-UID) under the spool
directory; a folder planted there by someone else, or a link inside a
folder left by a killed import, is never followed.
"""
import io
import json
import os
import sqlite3
import subprocess
import tarfile
import threading
import time

import pytest

from conftest import BIN, data, sqlite_only, start_arg_server, stop_arg_server
from test_jobs import USERS, follow, start, upload_archive


def tar_of(members, fmt=tarfile.GNU_FORMAT):
    """A tar (GNU: long names through 'L' members) of (name, bytes)."""
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=fmt) as t:
        for name, body in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(body)
            t.addfile(ti, io.BytesIO(body))
    return b.getvalue()


def count_entries(top):
    n = 0
    for _, dirs, files in os.walk(top):
        n += len(dirs) + len(files)
    return n


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("import_bounds")
    spool = tmp / "spool"
    spool.mkdir()
    s = start_arg_server(tmp / "srv", ["--spool-dir", str(spool)], users=USERS)
    c = s.client("admin")
    pid = c.create("Person")
    assert c.put_image("Person", pid, data("small.jpg")) > 0
    yield s, spool, pid
    stop_arg_server(s)


class Watch(threading.Thread):
    """While it runs: the spool's largest entry count, and a bystander's
    GET Image answers (status, seconds)."""

    def __init__(self, s, spool, pid):
        super().__init__(daemon=True)
        self.c, self.spool, self.pid = s.client("admin"), spool, pid
        self.most, self.answers, self.halt = 0, [], threading.Event()

    def run(self):
        while not self.halt.is_set():
            self.most = max(self.most, count_entries(self.spool))
            t0 = time.time()
            r = self.c.get_image("Person", self.pid)
            self.answers.append((r.status_code, time.time() - t0))
            time.sleep(0.02)


HOSTILE = {
    # 3000 members of a 120-part name each, 0 bytes: ~360,000 folders unbounded
    "deep": ([(f"{i}/" + "a/" * 120 + "f", b"") for i in range(3000)], "too deep"),
    # 5000 empty pictures: 5000 inodes for 2.5 MiB of archive
    "empty": ([(f"person/{i}.jpg", b"") for i in range(1, 5001)],
              "more than 1000 members that are empty"),
    # two folders per member
    "folders": ([(f"d{i}/x/{i}.jpg", b"x") for i in range(2000)], "more than 64 folders"),
    # a name too long for any export
    "long": ([("person/" + "1" * 300 + ".jpg", b"x")], "longer than 255 characters"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_fails_quickly_with_the_spool_bounded(srv, case):
    s, spool, pid = srv
    members, why = HOSTILE[case]
    c = s.client("admin")
    blob = upload_archive(c, tar_of(members))
    w = Watch(s, spool, pid)
    w.start()
    t0 = time.time()
    try:
        t, _ = follow(c, start(c, "crmblob.import", {"BlobId": blob}), timeout=60)
    finally:
        w.halt.set()
        w.join()
    took = time.time() - t0
    assert t["State"] == "Failed" and why in t["Result"], t
    assert took < 20, took
    # the spool never grew past the import's caps: DIRS_MAX (64) folders,
    # the files that went into them (here one per two folders), and a few of
    # the import's own (its private home, its folder, the lock, a file being
    # written). Unbounded, the cases made 58,000 to 360,000 entries; 101 was
    # seen once for "folders" (64 + 32 + 5), which an earlier bound of 100
    # did not allow for.
    assert w.most < 64 + 32 + 16, w.most
    assert count_entries(spool) <= 1, os.listdir(spool)  # only the private folder is left
    assert w.answers and all(st == 200 for st, _ in w.answers), w.answers[:5]
    assert max(d for _, d in w.answers) < 5, max(d for _, d in w.answers)


def test_an_empty_manifest_is_still_unpacked(srv):
    """An empty data set's export: manifest.jsonl of 0 bytes, nothing else."""
    s, _, _ = srv
    c = s.client("admin")
    t, _ = follow(c, start(c, "crmblob.import", {"BlobId": upload_archive(
        c, tar_of([("manifest.jsonl", b"")], tarfile.USTAR_FORMAT))}))
    assert t["State"] == "Succeeded", t


def test_the_spool_home_is_private(srv):
    s, spool, _ = srv
    c = s.client("admin")
    t, _ = follow(c, start(c, "crmblob.import", {"BlobId": upload_archive(
        c, tar_of([("manifest.jsonl", b"")], tarfile.USTAR_FORMAT))}))
    assert t["State"] == "Succeeded", t
    home = spool / f"crmblob-imports-{os.geteuid()}"
    assert home.is_dir() and not home.is_symlink()
    assert (home.stat().st_mode & 0o777) == 0o700


def cli_import(arc, db, spool):
    return subprocess.run([str(BIN), "import", str(arc), "--db", str(db)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "TMPDIR": str(spool)})


@pytest.fixture
def cli(tmp_path):
    """An archive of one picture, a stopped server's database and the spool
    directory `crmblob import` uses for it."""
    from conftest import Server
    arc = tmp_path / "a.tar"
    arc.write_bytes(tar_of([("person/1.jpg", data("small.jpg"))], tarfile.USTAR_FORMAT))
    dst = Server(tmp_path / "dst", users=USERS)
    db = str(dst.db)
    spool = os.path.dirname(db) if db.endswith(".db") else str(tmp_path / "spool")
    os.makedirs(spool, exist_ok=True)
    return arc, db, spool


def test_a_planted_spool_home_is_refused_never_followed(cli, tmp_path):
    arc, db, spool = cli
    victim = tmp_path / "victim"
    (victim / "crmblob-import-old01").mkdir(parents=True)
    (victim / "crmblob-import-old01" / ".crmblob-import-lock").write_text("")
    (victim / "keep.txt").write_text("mine")
    os.symlink(victim, os.path.join(spool, f"crmblob-imports-{os.geteuid()}"))
    p = cli_import(arc, db, spool)
    assert p.returncode != 0, p.stdout + p.stderr
    assert "cannot make a spool folder" in p.stdout + p.stderr, p.stdout + p.stderr
    assert (victim / "keep.txt").read_text() == "mine"
    assert (victim / "crmblob-import-old01" / ".crmblob-import-lock").exists()


def test_a_link_in_a_dead_spool_folder_is_removed_not_followed(cli, tmp_path):
    arc, db, spool = cli
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "data.db").write_text("precious")
    home = os.path.join(spool, f"crmblob-imports-{os.geteuid()}")
    dead = os.path.join(home, "crmblob-import-dead02")
    os.makedirs(os.path.join(dead, "person"), mode=0o700)
    os.chmod(home, 0o700)
    open(os.path.join(dead, ".crmblob-import-lock"), "w").close()
    os.symlink(outside, os.path.join(dead, "person", "link"))
    os.symlink(outside, os.path.join(dead, "top"))
    p = cli_import(arc, db, spool)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"removed {dead}, left by an import that was killed" in p.stderr, p.stderr
    assert not os.path.lexists(dead)
    assert (outside / "data.db").read_text() == "precious"
    assert os.listdir(home) == []


# ---- the archive an import reads is the one bound to its task ----------------


def one_pic(i):
    return tar_of([(f"person/{i}.jpg", data("small.jpg"))], tarfile.USTAR_FORMAT)


@pytest.fixture
def idle(tmp_path):
    """A server that runs no task yet (--batch-jobs 0), with two archives
    uploaded (person 1 in A, person 2 in B) and an import of A added."""
    s = start_arg_server(tmp_path / "idle", ["--batch-jobs", "0"], users=USERS)
    c = s.client("admin")
    a, b = upload_archive(c, one_pic(1)), upload_archive(c, one_pic(2))
    tid = start(c, "crmblob.import", {"BlobId": str(a)})
    yield s, c, tid, a, b
    stop_arg_server(s)


def run_tasks(s):
    """The same data set, now with a runner."""
    s.stop()
    s.serve_args = [a for a in s.serve_args if a not in ("--batch-jobs", "0")]
    s.start()
    return s.client("admin")


def test_an_import_tasks_blob_id_cannot_be_changed(idle):
    s, c, tid, a, b = idle
    r = c.put(f"/api/v1/BatchTask/{tid}", json={"ParameterObject": {"BlobId": "0"}})
    assert r.status_code == 400, r.text[:300]  # not an id at all
    for blob in (str(b), b):
        r = c.put(f"/api/v1/BatchTask/{tid}", json={"ParameterObject": {"BlobId": blob}})
        assert r.status_code == 400 and "BlobId" in r.text, (blob, r.status_code, r.text[:300])
    r = c.put(f"/api/v1/BatchTask/{tid}", json={"ParameterObject": {"TaskId": "1"}})
    assert r.status_code == 400 and "BlobId" in r.text, r.text[:300]
    # the same archive (as a number now) and other members may change
    r = c.put(f"/api/v1/BatchTask/{tid}", json={"Description": "again",
                                              "ParameterObject": {"BlobId": a, "Threads": "1"}})
    assert r.status_code == 200 and r.json()["Description"] == "again", r.text[:300]
    c = run_tasks(s)
    t, _ = follow(c, tid)
    assert t["State"] == "Succeeded" and json.loads(t["Response"])["Imported"] == 1, t
    assert c.get_image("Person", 1).status_code == 200
    assert c.get_image("Person", 2).status_code != 200  # B was never read
    # B is still unbound: another task may take it
    t, _ = follow(c, start(c, "crmblob.import", {"BlobId": str(b)}))
    assert t["State"] == "Succeeded", t


@sqlite_only("edits the task's row behind the API's back")
def test_the_job_reads_only_the_archive_bound_to_its_task(idle):
    s, c, tid, a, b = idle
    with sqlite3.connect(s.db) as db:
        db.execute("UPDATE batch_task SET params = ? WHERE id = ?",
                   (json.dumps({"BlobId": str(b)}), tid))
    c = run_tasks(s)
    t, _ = follow(c, tid)
    assert t["State"] == "Failed" and "not the archive bound to this task" in t["Result"], t
    assert c.get_image("Person", 2).status_code != 200


# ---- archives have a budget of their own ----------------------------------------


def padded_archive(mib):
    """An archive of one picture and mib MiB of random padding."""
    return tar_of([("person/1.jpg", data("small.jpg")),
                   ("blob/pad.bin", os.urandom(int(mib * (1 << 20))))], tarfile.USTAR_FORMAT)


def test_an_archive_within_archive_max_is_taken_whatever_spool_mb(tmp_path):
    """--spool-mb bounds the pictures' spools; an archive up to
    --archive-max-mb is not refused for it (it was 507 after 7/8 of it)."""
    s = start_arg_server(tmp_path / "budget", ["--spool-mb", "8", "--archive-max-mb", "8"],
                         users=USERS)
    try:
        assert upload_archive(s.client("admin"), padded_archive(7.5)) > 0
    finally:
        stop_arg_server(s)


def test_the_default_largest_archive_is_taken(tmp_path):
    """With the defaults (--archive-max-mb 256, --spool-mb 256) an archive
    just under 256 MiB is accepted, and pictures uploaded meanwhile are
    stored and served."""
    s = start_arg_server(tmp_path / "defaults", users=USERS)
    try:
        c = s.client("admin")
        body = tar_of([("person/1.jpg", data("small.jpg")),
                       ("blob/pad.bin", b"\1" * ((256 << 20) - 8192))], tarfile.USTAR_FORMAT)
        assert len(body) <= 256 << 20
        got, done = [], threading.Event()

        def pictures():
            p = s.client("admin")
            while not done.is_set():
                pid = p.create("Person")
                p.put_image("Person", pid, data("small.png"))
                got.append(p.get_image("Person", pid).status_code)
                time.sleep(0.05)

        th = threading.Thread(target=pictures, daemon=True)
        th.start()
        try:
            assert upload_archive(c, body) > 0
        finally:
            done.set()
            th.join()
        assert got and all(st == 200 for st in got), got
    finally:
        stop_arg_server(s)


def test_one_archive_at_a_time_and_pictures_are_not_held_up(tmp_path):
    """While an archive upload is held open (sent slowly), a second archive
    is 503 with Retry-After, pictures are uploaded and served; once the
    first ends, the next is taken."""
    s = start_arg_server(tmp_path / "once", ["--spool-mb", "8", "--archive-max-mb", "8"],
                         users=USERS)
    try:
        c = s.client("admin")
        body, go, sent, res = padded_archive(7), threading.Event(), threading.Event(), {}

        def first():  # the first MiB, then the rest once told
            import base64
            import http.client
            import urllib.parse
            u = urllib.parse.urlsplit(c.base)
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
            conn.putrequest("POST", "/api/v1/BatchTask/Archive")
            conn.putheader("Authorization", "Basic " + base64.b64encode(
                ("%s:%s" % c.s.auth).encode()).decode())
            conn.putheader("Content-Type", "application/x-tar")
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders()
            conn.send(body[:1 << 20])
            sent.set()
            go.wait(30)
            conn.send(body[1 << 20:])
            r = conn.getresponse()
            res["r"] = (r.status, r.read())
            conn.close()

        th = threading.Thread(target=first, daemon=True)
        th.start()
        try:
            assert sent.wait(10)
            time.sleep(0.5)  # the server has the first MiB: the first holds its place
            r = c.post("/api/v1/BatchTask/Archive", data=one_pic(3),
                       headers={"Content-Type": "application/x-tar"})
            assert r.status_code == 503 and r.headers.get("Retry-After"), r.status_code
            pid = c.create("Person")
            assert c.put_image("Person", pid, padded_png()) > 0
            assert c.get_image("Person", pid).status_code == 200
        finally:
            go.set()
            th.join()
        assert res["r"][0] == 200, res["r"]
        assert upload_archive(c, one_pic(4)) > 0
    finally:
        stop_arg_server(s)


def padded_png():
    """A valid PNG of about 2 MiB (noise, stored uncompressed): more than a
    spool step, the size an archive holding 7/8 of the bound shut out."""
    import struct
    import zlib
    w, h = 1024, 700
    raw = b"".join(b"\0" + os.urandom(w * 3) for _ in range(h))

    def chunk(kind, payload):
        return (struct.pack(">I", len(payload)) + kind + payload +
                struct.pack(">I", zlib.crc32(kind + payload) & 0xffffffff))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 0)) + chunk(b"IEND", b""))


# ---- the spool's file system keeps half of what it had free --------------------


@pytest.fixture(params=["bytes", "inodes"])
def small_fs(request, tmp_path):
    """A real small file system (tmpfs: 16 MiB, or 400 inodes) for the
    data set and the import's spool."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    opts = "size=16m,mode=0700" if request.param == "bytes" else "size=64m,nr_inodes=400,mode=0700"
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    try:
        yield request.param, mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_an_archive_that_would_fill_the_spool_disk_fails_leaving_half(small_fs, tmp_path):
    """10 MiB of pictures on a 16 MiB file system, or 500 of them with 400
    inodes: the import fails naming the member that would take it below
    half of what was free, and the data set's disk keeps its room."""
    from conftest import Server
    what, mnt = small_fs
    n, size = (10, 1 << 20) if what == "bytes" else (500, 1)
    arc = tmp_path / "big.tar"
    arc.write_bytes(tar_of([(f"person/{i}.jpg", os.urandom(size)) for i in range(1, n + 1)],
                           tarfile.USTAR_FORMAT))
    dst = Server(mnt / "dst", users=USERS)
    db = str(dst.db)
    spool = os.path.dirname(db) if db.endswith(".db") else str(mnt / "spool")
    os.makedirs(spool, exist_ok=True)
    p = cli_import(arc, db, spool)
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert "would leave less than half of the disk space" in out, out
    st = os.statvfs(mnt)
    if what == "bytes":
        assert st.f_bavail * st.f_frsize > 6 << 20, st
    else:
        assert st.f_favail > 150, st
    assert not [e for e in os.listdir(os.path.join(spool, f"crmblob-imports-{os.geteuid()}"))]
