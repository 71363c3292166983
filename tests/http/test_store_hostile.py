"""The database's files against a hostile or careless neighbour (issue 17):

- the change-count file `<db>-changes` removed or replaced under a running
  server: changes made from the command line (or by another server on the
  same database) are still seen within a bounded time;
- the database's files are the owner's alone (0600, the directory crmblob
  makes 0700), and looser ones found at start are narrowed;
- upload spools in flight are bounded (503 with Retry-After beyond it) and
  a full disk is answered 507, never 500, while reads go on being served.

Each attack runs while a `Bystander` (another user's GET ImageInfo and small
PUT Image) is served.
"""
import os
import stat
import subprocess
import threading
import time

import pytest
import requests

from conftest import (HTTP_TIMEOUT, NO_LIMITER, ArgServer, Bystander, RawConn, assert_error, basic,
                      png_of_size, png_with_text, start_arg_server, stop_arg_server,
                      unlinked_files, sqlite_only)

KIB = 1024
MIB = 1024 * KIB
SEEN_WITHIN = 2.0  # seconds a change may take to be seen after its file went


def wait_status(url, auth, want, within):
    """Seconds until GET url with auth answers `want` (polled), or fails."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < within:
        last = requests.get(url, auth=auth, timeout=HTTP_TIMEOUT).status_code
        if last == want:
            return time.monotonic() - t0
        time.sleep(0.02)
    pytest.fail(f"GET {url} as {auth[0]} still answered {last} after {within}s (wanted {want})")


# --------------------------------------------------------------------------
# 5: the change count's file removed or replaced


@pytest.fixture
def csrv(tmp_path):
    s = start_arg_server(tmp_path / "changes", NO_LIMITER)
    yield s
    stop_arg_server(s)


def remembered(s, user, url):
    """Basic requests of user answered 200, twice: remembered by the server."""
    for _ in range(2):
        r = requests.get(url, auth=(user, s.users[user][1]), timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, (user, r.status_code, r.text[:200])


@sqlite_only('<db>-changes removed or replaced under a running server')
@pytest.mark.parametrize("how", ["removed", "replaced"])
def test_cli_user_changes_seen_after_change_count_file_goes(csrv, how):
    """rm (or replace) <db>-changes, then `user passwd carol` and `user
    disable dave`: the old password and the disabled user are refused within
    SEEN_WITHIN seconds, the new password accepted."""
    s = csrv
    pid = s.client("admin").create("Person", Firstname="Watched")
    url = f"{s.base}/api/v1/Person/{pid}/ImageInfo"
    changes = s.dir / "crmblob.db-changes"
    with Bystander(s, "bob") as by:
        remembered(s, "carol", url)
        remembered(s, "dave", url)
        old_carol = s.users["carol"][1]
        changes.unlink()
        if how == "replaced":
            changes.write_bytes(b"\0" * 4096)
        s.passwd("carol", "carol-new-pw-2")
        s.cli("user", "disable", "dave", "--db", str(s.db), check=True)
        t_pw = wait_status(url, ("carol", old_carol), 401, SEEN_WITHIN)
        t_dis = wait_status(url, ("dave", s.users["dave"][1]), 401, SEEN_WITHIN)
        assert requests.get(url, auth=("carol", "carol-new-pw-2"),
                            timeout=HTTP_TIMEOUT).status_code == 200
    by.check(max_latency=2.0)
    print(f"\n{how}: old password refused after {t_pw:.3f}s, disabled user after {t_dis:.3f}s; "
          f"bystander worst {by.worst():.3f}s of {len(by.results)}")
    assert changes.exists(), "the change count's file was not made again"
    assert "removed or replaced" in s.log()


@sqlite_only('<db>-changes removed or replaced under a running server')
def test_other_server_writes_seen_after_change_count_file_goes(csrv):
    """The file goes; a second server started on the same database then
    makes a new one and writes a record: the first server, whose read cache
    held the old record, answers the new one within SEEN_WITHIN seconds."""
    a = csrv
    ca = a.client("admin")
    pid = ca.create("Person", Firstname="Shared")
    assert ca.put_info("Person", pid, {"Description": "first"}).status_code == 200
    for _ in range(2):  # now in a's read cache
        assert ca.info("Person", pid)["Description"] == "first"
    (a.dir / "crmblob.db-changes").unlink()
    b = ArgServer(a.dir, serve_args=NO_LIMITER).start()
    try:
        cb = b.client("admin")
        warm = cb.create("Person", Firstname="Warm")  # b's image workers started
        cb.put_image("Person", warm, png_with_text(b"warm"), "image/png")
        # the bystander on b: its writes, which a sees too, must not be what
        # makes a drop its cached record
        with Bystander(b, "bob") as by:
            assert cb.put_info("Person", pid, {"Description": "second"}).status_code == 200
            t0 = time.monotonic()
            while ca.info("Person", pid)["Description"] != "second":
                assert time.monotonic() - t0 < SEEN_WITHIN, "a still answers the old record"
                time.sleep(0.02)
        by.check(max_latency=2.0)
    finally:
        stop_arg_server(b)


# --------------------------------------------------------------------------
# 8: owner-only files


def assert_private(path, what):
    m = stat.S_IMODE(os.stat(path).st_mode)
    assert m & 0o077 == 0, f"{what} {path} has mode {m:04o}: open to other users"
    return m


def db_files(db):
    return [db] + [db.with_name(db.name + s) for s in ("-wal", "-shm", "-changes")]


def test_database_files_are_owner_only(tmp_path):
    """A fresh server makes its directory 0700 and the database, -wal, -shm
    and -changes 0600; so does `crmblob user add` while it runs."""
    os.umask(0o022)
    s = ArgServer(tmp_path / "perm", users={}, serve_args=NO_LIMITER)
    s.db = s.dir / "data" / "crmblob.db"  # a directory crmblob makes
    s.start()
    try:
        s.add_user("ann", "editor", "ann-pw-1")
        c = s.client("ann")
        pid = c.create("Person", Firstname="Private")
        c.put_image("Person", pid, png_with_text(b"private"), "image/png")
        assert stat.S_IMODE(os.stat(s.db.parent).st_mode) == 0o700
        for f in db_files(s.db):
            assert f.exists(), f"{f} missing"
            assert_private(f, "file")
        s.add_user("eve", "viewer", "eve-pw-1")
        for f in db_files(s.db):
            assert_private(f, "after user add:")
    finally:
        stop_arg_server(s)


@sqlite_only("the modes of the database's files (-wal, -shm, -changes)")
def test_loose_database_files_are_narrowed_at_start(tmp_path):
    """Files left 0644/0666 by an older crmblob are narrowed at the next
    start, with a log line each."""
    s = start_arg_server(tmp_path / "loose", NO_LIMITER)
    s.client("admin").create("Person", Firstname="Loose")
    s.stop()
    present = [f for f in db_files(s.db) if f.exists()]
    for f in present:
        os.chmod(f, 0o666)
    s.start()
    try:
        for f in db_files(s.db):
            if f.exists():
                assert_private(f, "file")
        for f in present:
            assert f"{f} was open to other users (mode 0666): now 0600" in s.log()
    finally:
        stop_arg_server(s)


def test_upload_spool_is_owner_only(tmp_path):
    """The unnamed spool of an upload in flight is 0600 (seen through
    /proc/PID/fd while its body trickles)."""
    s = start_arg_server(tmp_path / "spool", NO_LIMITER)
    try:
        pid = s.client("admin").create("Person", Firstname="Spooled")
        rc = RawConn(s.port)
        rc.send_head("PUT", f"/api/v1/Person/{pid}/Image", {
            "Authorization": basic("admin", s.users["admin"][1]),
            "Content-Type": "image/png", "Content-Length": "100000"})
        rc.send(b"\x89PNG\r\n\x1a\n" + b"\0" * 5000)
        spools = []
        deadline = time.monotonic() + 5
        while not spools and time.monotonic() < deadline:
            spools = [fd for fd, target in unlinked_files(s.proc.pid)
                      if target.startswith(str(s.dir))]
            time.sleep(0.05)
        assert spools, "no spool of the upload in flight found"
        for p in spools:
            assert_private(p, "upload spool")
        rc.close()
    finally:
        stop_arg_server(s)


# --------------------------------------------------------------------------
# 6: upload spools on a small volume


@pytest.fixture
def tiny(tmp_path):
    """A real 16 MiB file system (tmpfs) for the database and its spools."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a 16 MiB tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.fixture
def tsrv(tiny):
    s = start_arg_server(tiny / "srv", ["--timeout", "4", *NO_LIMITER])
    yield s
    stop_arg_server(s)


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class Uploader:
    """A PUT Image over a raw socket: declared length (or chunked), a burst
    of `burst` body bytes, then a trickle of one byte every `every` s."""

    def __init__(self, s, pid, length=None, burst=0):
        self.rc = RawConn(s.port, timeout=20)
        head = {"Authorization": basic("alice", s.users["alice"][1]),
                "Content-Type": "image/png"}
        if length is None:
            head["Transfer-Encoding"] = "chunked"
        else:
            head["Content-Length"] = str(length)
        self.chunked = length is None
        self.rc.send_head("PUT", f"/api/v1/Person/{pid}/Image", head)
        self.burst = burst
        self.sent = 0
        self.broken = False
        self.got = None

    def poll(self, wait=0.0):
        """Reads the server's answer once there is one (kept in self.got)."""
        if self.got is None and self.rc.readable(wait):
            try:
                self.got = self.rc.read_response(timeout=5)
            except (OSError, TimeoutError, ConnectionError) as e:
                self.got = ("closed", {}, repr(e).encode())
        return self.got

    def _send(self, b):
        if self.poll() is not None or self.broken:
            return
        try:
            if self.chunked:
                b = f"{len(b):x}\r\n".encode() + b + b"\r\n"
            self.rc.send(b)
            self.sent += len(b)
        except OSError:
            self.broken = True  # closed: the server wants no more
            self.poll(1.0)

    def run_burst(self):
        self._send(b"\x89PNG\r\n\x1a\n")
        block = b"\0" * (256 * KIB)
        while self.sent < self.burst and not self.broken and self.got is None:
            self._send(block[:self.burst - self.sent])

    def trickle(self):
        self._send(b"\0")

    def end(self):
        """Ends a chunked body (libmicrohttpd answers only once the body
        has ended, or cuts the connection past 16 MiB of it)."""
        if self.chunked and self.got is None and not self.broken:
            try:
                self.rc.send(b"0\r\n\r\n")
            except OSError:
                pass
            self.poll(5.0)


def test_half_sent_uploads_cannot_fill_the_disk(tsrv, tiny):
    """On a 16 MiB volume: three uploads declared 3 MiB and held open (the
    spools' bound admits some), three declared 10 MiB (more than the volume
    can take beside the database) and two chunked ones streamed as fast as
    the server reads. None is answered 500, the refused ones 503 with
    Retry-After or 507; the volume never fills; another user's uploads and
    reads are served throughout."""
    s = tsrv
    pid = s.client("alice").create("Person", Firstname="Target")
    lowest = [free_bytes(tiny)]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            lowest[0] = min(lowest[0], free_bytes(tiny))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    ups = []
    with Bystander(s, "bob") as by:
        for length, burst in [(3 * MIB, 3 * MIB - 64 * KIB)] * 3 + [(10 * MIB - 1, 6 * MIB)] * 3 + \
                [(None, 12 * MIB)] * 2:
            u = Uploader(s, pid, length, burst)
            u.run_burst()
            ups.append(u)
        for _ in range(6):  # held open, a byte at a time
            for u in ups:
                u.trickle()
            time.sleep(0.5)
        for u in ups:
            u.end()
        answers = [u.poll(0.5) for u in ups]
        for u in ups:
            u.rc.close()
        # the server goes on taking pictures once the spools are gone
        c = s.client("bob")
        other = c.create("Person", Firstname="After")
        c.put_image("Person", other, png_with_text(b"after the attack"), "image/png")
    stop.set()
    sampler.join()
    by.check(max_latency=2.0)
    got = [a[0] if a else None for a in answers]  # None: still held open
    print(f"\nattack answers {got}; lowest free space {lowest[0] / MIB:.1f} MiB; "
          f"bystander worst {by.worst():.3f}s of {len(by.results)}")
    assert 500 not in got, f"answered 500: {got}\n{s.log()[-2000:]}"
    for a in answers:
        if a is None:
            continue
        st, hd, body = a
        assert st in (503, 507), (st, body[:300])
        if st == 503:
            assert hd.get("retry-after", "").isdigit(), hd
            assert b"uploads" in body
        if st == 507:
            assert b"Insufficient storage" in body
    assert any(a and a[0] in (503, 507) for a in answers), f"no upload was refused: {got}"
    assert all(got[i] is not None for i in (3, 4, 5, 6, 7)), f"unanswered: {got}"
    assert lowest[0] >= 2 * MIB, f"the volume went down to {lowest[0]} bytes free"


@pytest.fixture(params=[[], ["--compress"]], ids=["plain", "compress"])
def fsrv(tiny, request):
    s = start_arg_server(tiny / "srv", [*request.param, *NO_LIMITER])
    yield s
    stop_arg_server(s)


def test_full_disk_is_507_and_reads_go_on(fsrv, tiny):
    """The volume filled by something else: uploads are answered 507 (never
    500), reads 200; once room is made, uploads succeed again."""
    s = fsrv
    c = s.client("alice")
    pid = c.create("Person", Firstname="Full")
    c.put_image("Person", pid, png_with_text(b"before"), "image/png")
    with Bystander(s, "bob") as by:
        time.sleep(0.5)
    by.check(max_latency=2.0)
    filler = tiny / "filler"
    with open(filler, "wb") as f:  # every byte of the volume but 8 KiB
        try:
            f.write(b"\xff" * max(0, free_bytes(tiny) - 8 * KIB))
            f.flush()
        except OSError:
            pass
    statuses = []
    for size in (1 * KIB, 8 * KIB, 20 * KIB, 64 * KIB, 256 * KIB):
        r = c.put(f"/api/v1/Person/{pid}/Image", data=png_of_size(size),
                  headers={"Content-Type": "image/png"})
        statuses.append(r.status_code)
        assert r.status_code in (200, 503, 507), (size, r.status_code, r.text[:300])
        if r.status_code == 507:
            assert_error(r, 507, "SoInternalException")
            assert "Insufficient storage" in r.json()["ErrorMessage"]
        assert c.get(f"/api/v1/Person/{pid}/ImageInfo").status_code == 200
        assert c.get(f"/api/v1/Person/{pid}/Image").status_code == 200
    print(f"\nuploads on a full volume: {statuses}")
    assert 507 in statuses, statuses
    filler.unlink()
    assert c.put(f"/api/v1/Person/{pid}/Image", data=png_of_size(256 * KIB),
                 headers={"Content-Type": "image/png"}).status_code == 200


def test_announced_lengths_do_not_hold_the_bound(tmp_path):
    """Six uploads announcing 7 MiB each, sending 64 KiB and then nothing
    (as slowly as the body rate allows), on a bound of 8 MiB: an upload
    holds what it has sent plus a 1 MiB step, not what it announced, so
    all six stay open and others' pictures (the bystander's, and a 900 KB
    one) are still taken. Before, the second announcement was refused and
    six of them could have held the bound for hours."""
    s = start_arg_server(tmp_path / "announce", [*NO_LIMITER, "--spool-mb", "8"])
    held = []
    try:
        pid = s.client("admin").create("Person", Firstname="Announcer")
        other = s.client("bob").create("Person", Firstname="Other")
        with Bystander(s, "bob") as by:
            for _ in range(6):
                u = Uploader(s, pid, length=7 * MIB, burst=64 * KIB)
                u.run_burst()
                held.append(u)
            time.sleep(0.5)
            answered = [u.poll() for u in held if u.poll() is not None]
            assert not answered, [a[:2] for a in answered]
            r = s.client("bob").put(f"/api/v1/Person/{other}/Image", data=png_of_size(900 * KIB),
                                    headers={"Content-Type": "image/png"})
            assert r.status_code == 200, r.text
        by.check(max_latency=2.0)
        rc = RawConn(s.port)
        rc.send_head("PUT", f"/api/v1/Person/{other}/Image", {
            "Authorization": basic("bob", s.users["bob"][1]), "Content-Type": "image/png",
            "Content-Length": str(9 * MIB)})
        status, _, body = rc.read_response()  # could never fit: refused before the body
        rc.close()
        assert status == 507, body[:300]
    finally:
        for u in held:
            u.rc.close()
        stop_arg_server(s)
