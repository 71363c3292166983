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
import time

import pytest
import requests

from conftest import (HTTP_TIMEOUT, NO_LIMITER, ArgServer, Bystander, assert_error, basic, png_with_text,
                      start_arg_server, stop_arg_server)

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
    print(f"\n{how}: old password refused after {t_pw:.3f}s, disabled user after {t_dis:.3f}s")
    assert changes.exists(), "the change count's file was not made again"
    assert "removed or replaced" in s.log()


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
        # the bystander on b: its writes, which a sees too, must not be what
        # makes a drop its cached record
        with Bystander(b, "bob") as by:
            cb = b.client("admin")
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
    from conftest import RawConn
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
            fds = f"/proc/{s.proc.pid}/fd"
            for fd in os.listdir(fds):
                try:
                    target = os.readlink(f"{fds}/{fd}")
                except OSError:
                    continue
                if target.startswith(str(s.dir)) and "(deleted)" in target:
                    spools.append(f"{fds}/{fd}")
            time.sleep(0.05)
        assert spools, "no spool of the upload in flight found"
        for p in spools:
            assert_private(p, "upload spool")
        rc.close()
    finally:
        stop_arg_server(s)
