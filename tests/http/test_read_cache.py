"""The store's read cache (`serve --cache-mb`, 16 by default): answers that
come from it are never older than the last write, whoever made it. Users
changed from the command line while the server runs are in test_auth.py."""
import re

import pytest

from conftest import assert_error, data, start_arg_server, stop_arg_server, sqlite_only


@pytest.fixture(scope="module", params=[[], ["--cache-mb", "0"]], ids=["cache", "no-cache"])
def csrv(tmp_path_factory, request):
    s = start_arg_server(tmp_path_factory.mktemp("cache"), request.param)
    yield s
    stop_arg_server(s)


def get_twice(c, path):
    """Two reads in a row: the second is the one a cache would answer."""
    first = c.get(path)
    second = c.get(path)
    assert first.status_code == second.status_code
    assert first.content == second.content
    return second


def test_image_writes_are_seen_at_once(csrv):
    c = csrv.client("admin")
    pid = c.create("Person", Firstname="Cached")
    img = f"/api/v1/Person/{pid}/Image"
    c.put_image("Person", pid, data("small.png"), "image/png")
    r = get_twice(c, img)
    assert r.status_code == 200 and r.content == data("small.png")
    etag = r.headers["ETag"]
    c.put_image("Person", pid, data("small.gif"), "image/gif")
    r = get_twice(c, img)
    assert r.status_code == 200 and r.content == data("small.gif")
    assert r.headers["ETag"] != etag
    assert c.delete(img).status_code in (200, 204)
    assert_error(get_twice(c, img), 404)


def test_info_writes_are_seen_at_once(csrv):
    c = csrv.client("admin")
    pid = c.create("Person", Firstname="Cached")
    info = f"/api/v1/Person/{pid}/ImageInfo"
    c.put_image("Person", pid, data("small.png"), "image/png")
    for text in ("first", "second", "third"):
        assert c.put_info("Person", pid, {"Description": text}).status_code == 200
        r = get_twice(c, info)
        assert r.status_code == 200 and r.json()["Description"] == text
    # another user's write shows who made it
    e = csrv.client("alice")
    assert e.put_info("Person", pid, {"ExtraInfo": "by alice"}).status_code == 200
    r = get_twice(c, info)
    assert r.json()["ExtraInfo"] == "by alice" and r.json()["Description"] == "third"


@sqlite_only("the read cache, which runs on SQLite's <db>-changes (off on PostgreSQL: README, --cache-mb)")
def test_cache_answers_repeated_reads(tmp_path):
    s = start_arg_server(tmp_path / "stats")
    try:
        c = s.client("admin")
        pid = c.create("Person", Firstname="Hot")
        c.put_image("Person", pid, data("small.png"), "image/png")
        for _ in range(10):
            assert c.get(f"/api/v1/Person/{pid}/Image").content == data("small.png")
    finally:
        stop_arg_server(s)
    m = re.search(r"read cache: (\d+) hits, (\d+) misses", s.log())
    assert m, s.log()[-2000:]
    # the picture from the second read on (the caller's Basic value is
    # remembered by authentication itself, before the store is asked)
    assert int(m.group(1)) >= 9


def test_cache_option_is_checked(tmp_path):
    s = start_arg_server(tmp_path / "opt", start=False)
    for bad in ["-1", "lots", "65537", ""]:
        r = s.cli("serve", "--cache-mb", bad, "--listen", "127.0.0.1:1")
        assert r.returncode == 2, (bad, r.returncode)


def test_ranges_leave_the_cached_picture_whole(csrv):
    """Slices are answered from the cached picture itself: they must never
    change it (the next full answer is the picture as uploaded)."""
    c = csrv.client("admin")
    pid = c.create("Person", Firstname="Sliced")
    body = data("small.jpg")
    assert len(body) > 300
    c.put_image("Person", pid, body, "image/jpeg")
    img = f"/api/v1/Person/{pid}/Image"
    assert get_twice(c, img).content == body
    for first, last in ((100, 199), (0, 9), (len(body) - 10, len(body) - 1)):
        for _ in range(2):
            r = c.get(img, headers={"Range": f"bytes={first}-{last}"})
            assert r.status_code == 206, r.text
            assert r.content == body[first:last + 1]
    r = c.get(img, headers={"Range": "bytes=-5"})
    assert r.status_code == 206 and r.content == body[-5:]
    assert get_twice(c, img).content == body


@sqlite_only("<db>-changes, the file the read cache's change count lives in")
def test_without_a_change_count_nothing_is_cached(tmp_path):
    """When `<db>-changes` cannot be made, the server works uncached, says
    so, and user changes from the command line still act at once."""
    s = start_arg_server(tmp_path / "nocount", start=False)
    changes = s.dir / "crmblob.db-changes"  # made by the user setup above
    changes.unlink()
    changes.mkdir()  # a directory where the file would go
    s.start()
    try:
        assert "reads are not cached" in s.log()
        c = s.client("admin")
        pid = c.create("Person", Firstname="Uncached")
        c.put_image("Person", pid, data("small.jpg"), "image/jpeg")
        img = f"/api/v1/Person/{pid}/Image"
        assert get_twice(c, img).content == data("small.jpg")
        alice = s.client("alice")
        for _ in range(2):
            assert alice.get(img).status_code == 200
        s.cli("user", "disable", "alice", "--db", str(s.db), check=True)
        assert_error(s.client("alice").get(img), 401)
    finally:
        stop_arg_server(s)
    assert "read cache:" not in s.log()
