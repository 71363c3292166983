"""Task outputs of any size (issue 21): stored in parts bound to their task,
streamed by GetOutputFromBatch (the parts one after another, never the whole
output in the server's memory), deleted with every part by each way a task
goes, and cut short -- the connection closed -- when the output goes while it
is being sent.

The servers run with CRMBLOB_TEST_JOBS=1, whose job crmblob.test.output
makes an output of {"Bytes": "N"} at once: zeros but for the offset as 8
big-endian bytes at every 64 KiB. CRMBLOB_TEST_PART_BYTES makes parts small,
so that parts are shown without gigabytes.
"""
import base64
import io
import json
import os
import sqlite3
import tarfile
import time

import pytest
import requests

from conftest import DATA, Server, assert_error

OUTPUT = "crmblob.test.output"
TASK = "/api/v1/BatchTask"
BLOB_AGENT = "/api/v1/Agents/BLOB"
AGENT = "/api/v1/Agents/Batch"
PART = 1000003  # odd: parts end inside a store piece
MARK = 65536
MiB = 1 << 20


@pytest.fixture(scope="module")
def osrv(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("batch_output"),
               env={"CRMBLOB_TEST_JOBS": "1", "CRMBLOB_TEST_PART_BYTES": str(PART)})
    s.create_users()
    s.start()
    yield s
    if s.alive():
        assert s.stop() == 0, s.log()[-2000:]


@pytest.fixture(scope="module")
def bigsrv(tmp_path_factory):
    """Parts of the default size (1 GiB): an output of 150 MiB is one record.
    ASan keeps freed blocks in a quarantine (256 MB by default): kept small,
    so that memory freed is not counted as memory held (VmHWM)."""
    asan = (os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4").lstrip(":")
    s = Server(tmp_path_factory.mktemp("batch_big"),
               env={"CRMBLOB_TEST_JOBS": "1", "ASAN_OPTIONS": asan})
    s.create_users()
    s.start()
    yield s
    if s.alive():
        assert s.stop() == 0, s.log()[-2000:]


def count(srv, sql):
    """One number from the server's database, SQLite or PostgreSQL."""
    if srv.pg_schema:
        return int(srv.pg_schema.sql(sql) or 0)
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def make_output(c, n):
    r = c.post(TASK, json={"Name": OUTPUT, "ParameterObject": {"Bytes": str(n)}})
    assert r.status_code == 200, r.text[:300]
    tid = r.json()
    t0 = time.monotonic()
    while True:
        t = c.get(f"{TASK}/{tid}").json()
        if t["State"] in ("Succeeded", "Failed"):
            assert t["State"] == "Succeeded", t
            return tid, t
        assert time.monotonic() - t0 < 60, t
        time.sleep(0.05)


def check_marks(data, start=0):
    """The offsets the job wrote, where data begins at byte `start`."""
    first = -(-start // MARK) * MARK
    for off in range(first, start + len(data) - 7, MARK):
        got = data[off - start:off - start + 8]
        assert got == off.to_bytes(8, "big"), f"at {off}: {got!r}"


def download(srv, user, tid, **kw):
    return srv.client(user).post(f"{BLOB_AGENT}/GetOutputFromBatch", json={"BatchTaskId": tid},
                                 headers={"Accept": "application/octet-stream"}, timeout=60, **kw)


def files_of(srv, tid):
    return count(srv, f"SELECT count(*) FROM batch_file WHERE task_id = {tid}")


def leftovers(srv):
    """Records, pieces and file rows of tasks still in the database."""
    return (count(srv, "SELECT count(*) FROM batch_file"),
            count(srv, "SELECT count(*) FROM blob WHERE conceptual_type = 'BATCHFILE'"),
            count(srv, "SELECT count(*) FROM blob_piece WHERE blob_id IN "
                       "(SELECT id FROM blob WHERE conceptual_type = 'BATCHFILE')"))


def test_output_in_parts_is_one_download(osrv):
    """5 parts and a bit: bound to the task, one FileName, downloaded as
    their concatenation; CleanupBatchTask leaves no part, piece or row."""
    admin = osrv.client("admin")
    n = 5 * PART + 12345
    tid, t = make_output(admin, n)
    assert t["FileName"] == "output.bin"
    assert files_of(osrv, tid) == 6
    r = download(osrv, "admin", tid)
    assert r.status_code == 200, r.text[:300]
    assert int(r.headers["Content-Length"]) == n
    assert len(r.content) == n
    check_marks(r.content)
    # base64 in a carrier, as the reference answers bytes to JSON
    r = admin.post(f"{BLOB_AGENT}/GetOutputFromBatch", json={"BatchTaskId": tid},
                   headers={"Accept": "application/json"})
    assert r.status_code == 200 and base64.b64decode(r.json()) == download(osrv, "admin", tid).content
    r = admin.post(f"{BLOB_AGENT}/CleanupBatchTask", json={"BatchTaskId": tid})
    assert r.status_code == 204, r.text
    assert files_of(osrv, tid) == 0
    assert leftovers(osrv) == (0, 0, 0)
    assert download(osrv, "admin", tid).content == b""


def test_every_way_a_task_goes_takes_its_parts(osrv):
    """DELETE, DeleteBatchTask and DeleteBatchTasks delete every part."""
    admin = osrv.client("admin")
    ids = [make_output(admin, 2 * PART + 1)[0] for _ in range(4)]
    assert all(files_of(osrv, t) == 3 for t in ids)
    assert admin.delete(f"{TASK}/{ids[0]}").status_code == 204
    r = admin.post(f"{AGENT}/DeleteBatchTask", json={"BatchTaskId": ids[1]})
    assert r.status_code in (200, 204), r.text[:300]
    r = admin.post(f"{AGENT}/DeleteBatchTasks", json={"BatchTaskIds": ids[2:]})
    assert r.status_code in (200, 204), r.text[:300]
    for t in ids:
        assert_error(admin.get(f"{TASK}/{t}"), 404)
    assert leftovers(osrv) == (0, 0, 0)


def test_parts_are_no_pictures(osrv):
    """A part's BlobId is no BLOB record to the image routes, the sweep
    leaves it (it is linked to its task), and it is not exported."""
    admin = osrv.client("admin")
    tid, t = make_output(admin, PART + 7)
    if osrv.pg_schema:
        first = int(osrv.pg_schema.sql(f"SELECT output_blob FROM batch_task WHERE id = {tid}"))
    else:
        first = count(osrv, f"SELECT output_blob FROM batch_task WHERE id = {tid}")
    assert first > 0
    r = admin.post(f"{BLOB_AGENT}/GetBlobEntity?blobEntityId={first}")
    assert r.status_code == 200 and r.json() is None, r.text[:300]
    r = admin.post(f"{BLOB_AGENT}/GetBlobStream", json={"BlobEntityId": first},
                   headers={"Accept": "application/octet-stream"})
    assert r.status_code == 200 and r.content == b"", r.content[:100]
    # not linked to an entity, not changed nor deleted by BlobId
    pid = admin.create("Person")
    r = admin.post(f"{BLOB_AGENT}/ChangePersonImage", json={"PersonId": pid, "blobId": first})
    assert_error(r, 400)
    r = admin.post(f"{BLOB_AGENT}/DeleteBlobEntity?blobEntityId={first}")
    assert r.status_code == 204, r.text[:300]
    assert count(osrv, f"SELECT count(*) FROM blob WHERE id = {first}") == 1
    assert len(download(osrv, "admin", tid).content) == PART + 7
    # an export holds no earlier output (its own neither)
    r = admin.post(TASK, json={"Name": "crmblob.export", "ParameterObject": {}})
    eid = r.json()
    t0 = time.monotonic()
    while admin.get(f"{TASK}/{eid}").json()["State"] not in ("Succeeded", "Failed"):
        assert time.monotonic() - t0 < 30
        time.sleep(0.05)
    with tarfile.open(fileobj=io.BytesIO(download(osrv, "admin", eid).content)) as tar:
        names = tar.getnames()
        manifest = tar.extractfile("manifest.jsonl").read().decode()
    assert names == ["manifest.jsonl"], names
    assert all(json.loads(line)["BlobId"] != first for line in manifest.splitlines()), manifest
    for t in (tid, eid):
        admin.post(f"{BLOB_AGENT}/CleanupBatchTask", json={"BatchTaskId": t})


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_large_output_streams_with_low_memory(bigsrv):
    """150 MiB (over the codec's 64 MiB, one record) downloaded while the
    server's peak resident memory grows by far less than the output."""
    admin = bigsrv.client("admin")
    n = 150 * MiB + 3
    tid, _ = make_output(admin, n)
    r = admin.post(f"{BLOB_AGENT}/GetOutputFromBatch", json={"BatchTaskId": tid},
                   headers={"Accept": "application/json"})
    assert_error(r, 413)  # base64 in a carrier: 64 MiB at most
    before = vm_hwm_kib(bigsrv.proc.pid)
    got, head = 0, b""
    with download(bigsrv, "admin", tid, stream=True) as r:
        assert r.status_code == 200
        assert int(r.headers["Content-Length"]) == n
        for chunk in r.iter_content(MiB):
            if got < 4 * MiB:
                head += chunk
            if got % (16 * MiB) < MiB:  # a mark now and then, where it lies
                check_marks(chunk[:MARK * 2], got)
            got += len(chunk)
    assert got == n
    check_marks(head)
    after = vm_hwm_kib(bigsrv.proc.pid)
    assert after - before < 32 * 1024, f"VmHWM {before} -> {after} KiB"
    admin.post(f"{BLOB_AGENT}/CleanupBatchTask", json={"BatchTaskId": tid})


def test_output_deleted_while_sent_cuts_the_connection(bigsrv):
    """The task goes while its output is sent: the client gets fewer bytes
    than Content-Length (the connection is closed), never other bytes."""
    admin = bigsrv.client("admin")
    n = 150 * MiB
    tid, _ = make_output(admin, n)
    got = 0
    try:  # urllib3 1.x hands a cut body out as it is; 2.x raises
        with download(bigsrv, "admin", tid, stream=True) as r:
            assert int(r.headers["Content-Length"]) == n
            for chunk in r.iter_content(MiB):
                if got == 0:
                    assert admin.delete(f"{TASK}/{tid}").status_code == 204
                got += len(chunk)
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError):
        pass
    assert got < n
    assert leftovers(bigsrv) == (0, 0, 0)
    assert "GetOutputFromBatch: the output ended early (ABSENT)" in bigsrv.log()


class GraceServer(Server):
    """A server that sweeps unlinked records after 1 s (every 0.5 s)."""

    def serve_argv(self):
        return [*super().serve_argv(), "--blob-grace", "1s"]


def test_a_writer_killed_leaves_nothing(tmp_path):
    """kill -9 while an output is being stored: after a restart the sweep
    deletes the part begun (unlinked since its last piece) and the reaper
    fails the task; a finished output stays through many sweeps."""
    s = GraceServer(tmp_path, env={"CRMBLOB_TEST_JOBS": "1"})
    s.create_users()
    s.start()
    admin = s.client("admin")
    kept, _ = make_output(admin, 3 * MiB)
    r = admin.post(TASK, json={"Name": OUTPUT, "ParameterObject": {"Bytes": str(400 * MiB)}})
    tid = r.json()
    t0 = time.monotonic()
    while count(s, f"SELECT count(*) FROM batch_file WHERE task_id = {tid} AND done = 0") == 0:
        assert time.monotonic() - t0 < 30, "no part begun"
        time.sleep(0.01)
    s.kill9()
    assert count(s, f"SELECT count(*) FROM batch_file WHERE task_id = {tid}") > 0
    s.start()
    admin = s.client("admin")
    t0 = time.monotonic()
    while (count(s, f"SELECT count(*) FROM batch_file WHERE task_id = {tid}") > 0
           or admin.get(f"{TASK}/{tid}").json()["State"] != "Failed"):
        assert time.monotonic() - t0 < 20, "the part begun is still there"
        time.sleep(0.2)
    assert count(s, "SELECT count(*) FROM blob_piece WHERE blob_id NOT IN "
                    "(SELECT blob_id FROM batch_file)") == 0
    r = download(s, "admin", kept)  # swept many times over meanwhile
    assert len(r.content) == 3 * MiB
    check_marks(r.content)
    assert s.stop() == 0, s.log()[-2000:]


def test_migrate_and_check_leave_task_files_out(tmp_path):
    """`crmblob migrate` copies the pictures, not the tasks' files (nor the
    tasks); `crmblob check` of the source and of the copy finds nothing."""
    s = Server(tmp_path / "src", env={"CRMBLOB_TEST_JOBS": "1"})
    s.create_users()
    s.start()
    admin = s.client("admin")
    pid = admin.create("Person")
    png = (DATA / "small.png").read_bytes()
    admin.put_image("Person", pid, png)
    make_output(admin, 2 * MiB)
    assert s.stop() == 0, s.log()[-2000:]
    copy = tmp_path / "copy.db"
    p = s.cli("migrate", "--from", str(s.db), "--to", str(copy))
    assert p.returncode == 0, p.stderr
    for db in (str(s.db), str(copy)):
        p = s.cli("check", "--db", db)
        assert p.returncode == 0 and "no problem found" in p.stdout, p.stdout + p.stderr
    con = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    try:
        assert con.execute("SELECT count(*) FROM blob").fetchone()[0] == 1
        assert con.execute("SELECT count(*) FROM batch_file").fetchone()[0] == 0
    finally:
        con.close()
    c = Server(tmp_path / "dst")
    c.db = copy
    c.start()
    assert c.client("admin").get_image("Person", pid).content == png
    assert c.stop() == 0


# ---- downloads read ahead off the polling threads ----

class OneThreadServer(Server):
    """One HTTP polling thread: anything it waits for, every connection waits for."""

    def serve_argv(self):
        return [*super().serve_argv(), "--threads", "1"]


@pytest.fixture(scope="module")
def onesrv(tmp_path_factory):
    s = OneThreadServer(tmp_path_factory.mktemp("batch_one"), env={"CRMBLOB_TEST_JOBS": "1"})
    s.create_users()
    s.start()
    yield s
    if s.alive():
        assert s.stop() == 0, s.log()[-2000:]


def hold_pieces(srv, seconds):
    """A psql session holding blob_piece locked (ACCESS EXCLUSIVE) for
    `seconds`: every read of a piece waits for it (PostgreSQL)."""
    import subprocess
    cl = srv.pg_schema.cluster
    env = {**os.environ, **cl.env, "PGOPTIONS": f"-csearch_path={srv.pg_schema.name}"}
    sql = (f"BEGIN; LOCK TABLE blob_piece IN ACCESS EXCLUSIVE MODE; "
           f"SELECT pg_sleep({seconds}); COMMIT;")
    p = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.monotonic()
    while count(srv, "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                     "WHERE c.relname = 'blob_piece' AND l.mode = 'AccessExclusiveLock' "
                     "AND l.granted") == 0:
        assert time.monotonic() - t0 < 10 and p.poll() is None, p.stderr.read()
        time.sleep(0.02)
    return p


def slow_reader(r, out):
    """Reads r's body slowly (64 KiB every 10 ms), counting into out[0]."""
    try:
        for chunk in r.iter_content(MARK):
            out[0] += len(chunk)
            time.sleep(0.01)
    except Exception as e:  # noqa: BLE001 - counted as what arrived
        out[1] = repr(e)


def latencies(srv, seconds):
    """GET /health and a user's GET BatchTask (the store, not its pieces),
    one after another for `seconds`."""
    out = []
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        for url in ("/health", TASK):
            t0 = time.monotonic()
            r = requests.get(srv.base + url, auth=("bob", srv.users["bob"][1]), timeout=30)
            out.append((url, r.status_code, time.monotonic() - t0))
        time.sleep(0.05)
    return out


@pytest.mark.skipif(os.environ.get("CRMBLOB_TEST_DB", "sqlite") != "pg",
                    reason="PostgreSQL only: a table lock makes the store's reads wait")
def test_a_download_waiting_for_the_store_holds_nobody_up(onesrv):
    """A slow download whose reads wait for the store (blob_piece locked
    for 3 s) while other requests go on, on a server with one polling
    thread: they answer at once (before the read-ahead they waited the
    3 s), and the download ends whole."""
    import threading
    admin = onesrv.client("admin")
    n = 48 * MiB
    tid, _ = make_output(admin, n)
    got = [0, None]
    with download(onesrv, "admin", tid, stream=True) as r:
        assert r.status_code == 200
        t = threading.Thread(target=slow_reader, args=(r, got), daemon=True)
        t.start()
        while got[0] < MiB:
            time.sleep(0.01)
        lock = hold_pieces(onesrv, 3)
        lat = latencies(onesrv, 2)
        lock.wait(timeout=30)
        t.join(timeout=60)
    assert got == [n, None]
    assert all(s == 200 for _, s, _ in lat), lat
    worst = max(d for _, _, d in lat)
    assert worst < 1.0, f"worst {worst:.3f} s: {lat}"  # 2.7-3 s before the read-ahead
    admin.post(f"{BLOB_AGENT}/CleanupBatchTask", json={"BatchTaskId": tid})


def proc_counts(pid):
    """(open descriptors, threads) of a process."""
    with open(f"/proc/{pid}/status") as f:
        threads = next(int(x.split()[1]) for x in f if x.startswith("Threads:"))
    return len(os.listdir(f"/proc/{pid}/fd")), threads


def cut_downloads(srv, tid, n):
    """OUTPUT_STREAMS_MAX downloads of tid open at once, the next one 503;
    then all cut by their clients, unread: a download goes through again."""
    open_ = [download(srv, "admin", tid, stream=True) for _ in range(16)]
    assert all(r.status_code == 200 for r in open_)
    r = download(srv, "admin", tid)
    assert_error(r, 503)
    assert r.headers["Retry-After"] == "5"
    for r in open_:
        r.close()  # cut: the client goes, unread
    t0 = time.monotonic()
    while True:
        r = download(srv, "admin", tid)
        if r.status_code == 200:
            break
        assert time.monotonic() - t0 < 10, r.text[:200]
        time.sleep(0.1)
    assert len(r.content) == n
    check_marks(r.content)


def test_downloads_cut_free_their_places(onesrv):
    """OUTPUT_STREAMS_MAX (16) outputs are sent at once, the next is 503
    with Retry-After; downloads the clients cut (unread) free their places,
    descriptors and threads. (Twice: the first time may grow the database
    pool.)"""
    admin = onesrv.client("admin")
    n = 8 * MiB
    tid, _ = make_output(admin, n)
    cut_downloads(onesrv, tid, n)
    before = proc_counts(onesrv.proc.pid)
    cut_downloads(onesrv, tid, n)
    t0 = time.monotonic()
    while True:  # descriptors: no more (the pool may close idle connections meanwhile)
        fds, threads = proc_counts(onesrv.proc.pid)
        if fds <= before[0] and threads == before[1]:
            break
        assert time.monotonic() - t0 < 10, (before, (fds, threads))
        time.sleep(0.1)
    admin.post(f"{BLOB_AGENT}/CleanupBatchTask", json={"BatchTaskId": tid})
