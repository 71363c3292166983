"""Several servers, one data set (issue 18): two crmblob servers on the
data set of `scaleout_backend` (SQLite: one file both open), behind a real
haproxy running dist/haproxy/crmblob.cfg (conftest: Cluster).

- A write through one server is read back through the other at once:
  picture bytes, ImageInfo, ETags (and a tag of one server is honoured by
  the other), with each reader's cache warm with what came before; also
  through haproxy, which sends consecutive requests to both.
- 16 writers spread over both servers change the picture and the
  ImageInfo of one entity for 20 s, and create entities and pictures of
  their own meanwhile: no failure, one BlobId for the entity, unique ids
  where new ones are made, every ImageInfo answered agrees with one of the
  pictures, and at the end ImageInfo agrees with the stored picture
  (BlobSize, OriginalSize, MimeType; ETags) through both servers.
- kill -9 of one server while clients write through haproxy (durable
  mode): haproxy marks it down, no client sees a failed request (before it
  is marked down either: conn-failure and empty-response retries on the
  other server), every acknowledged write is read back with its bytes, and
  the restarted server is back in rotation.
- /ready is haproxy's health check: a server alive but not ready leaves
  the rotation, and its 503s meanwhile are replayed on the other server.
- A rolling restart (SIGTERM, start): drained through haproxy's admin
  socket first, no request fails; not drained, only a POST may.
"""
import functools
import os
import signal
import threading
import time

import pytest
import requests

from conftest import (BIN, HTTP_TIMEOUT, blob_id_of, child_pids, picture_of_size,
                      post_person_under_load, sniff)

ENTITY = "Contact"
PICTURE_BYTES = 2000  # + n: a picture's size names it; far below haproxy's buffer


def picture(n):
    return picture_of_size(n, PICTURE_BYTES + n)


def url(base, eid, what="Image"):
    return f"{base}/api/v1/{ENTITY}/{eid}/{what}"


def session(cl, user):
    s = requests.Session()
    s.auth = (user, cl.users[user][1])
    return s


def ok(r, status=200):
    assert r.status_code == status, (
        f"{r.request.method} {r.url}: {r.status_code} {r.text[:300]!r}")
    return r


def read_all(s, base, eid):
    """(picture answer, ImageInfo answer) of eid through base."""
    return ok(s.get(url(base, eid), timeout=HTTP_TIMEOUT)), \
        ok(s.get(url(base, eid, "ImageInfo"), timeout=HTTP_TIMEOUT))


def assert_info_matches(info, pic, mime):
    assert info["BlobSize"] == len(pic), info
    assert info["OriginalSize"] == len(pic), info
    assert info["MimeType"] == mime == sniff(pic), info


def assert_same_everywhere(cl, s, eid):
    """Both servers answer the same picture, ImageInfo and ETags, which
    agree with each other; a tag from one is current on the other (304).
    Returns (picture bytes, ImageInfo)."""
    seen = []
    for srv in cl.servers:
        img, info = read_all(s, srv.base, eid)
        mime = img.headers["Content-Type"].split(";")[0]
        assert_info_matches(info.json(), img.content, mime)
        seen.append((img.content, mime, img.headers["ETag"], info.json(), info.headers["ETag"]))
    assert seen[0] == seen[1], f"the servers disagree:\n{seen[0][1:]}\n{seen[1][1:]}"
    for srv in cl.servers:
        for what, tag in (("Image", seen[0][2]), ("ImageInfo", seen[0][4])):
            r = s.get(url(srv.base, eid, what), headers={"If-None-Match": tag},
                      timeout=HTTP_TIMEOUT)
            assert r.status_code == 304, (srv.base, what, tag, r.status_code)
    return seen[0][0], seen[0][3]


def access_count(srv, path):
    time.sleep(0.2)  # access lines go out within 50 ms
    return sum(1 for l in srv.log().splitlines() if " access " in l and f" {path} " in l)


# --------------------------------------------------------------------------
# a write through one server, read back through the other at once


def test_write_through_one_read_through_the_other(make_cluster):
    cl = make_cluster()
    a, b = cl.servers
    s = session(cl, "alice")
    eid = ok(s.post(f"{a.base}/api/v1/{ENTITY}", json={"Name": "Shared"},
                    timeout=HTTP_TIMEOUT), 201).json()["ContactId"]
    ok(s.get(f"{b.base}/api/v1/{ENTITY}/{eid}", timeout=HTTP_TIMEOUT))
    blob = None
    for n in range(60):
        w, r = (a, b) if n % 2 == 0 else (b, a)
        # the reader's cache holds what was there before
        old_img, old_info = read_all(s, r.base, eid) if n else (None, None)
        pic = picture(n)
        got = blob_id_of(s.put(url(w.base, eid), data=pic, timeout=HTTP_TIMEOUT))
        assert blob in (None, got), (blob, got)
        blob = got
        img, info = read_all(s, r.base, eid)
        assert img.content == pic, f"write {n} through {w.port}, read through {r.port}: old bytes"
        assert_info_matches(info.json(), pic, img.headers["Content-Type"].split(";")[0])
        wimg, winfo = read_all(s, w.base, eid)
        assert (img.headers["ETag"], info.headers["ETag"]) == \
            (wimg.headers["ETag"], winfo.headers["ETag"])
        assert info.json() == winfo.json()
        if old_img is not None:
            assert img.headers["ETag"] != old_img.headers["ETag"]
            # the reader's old tags are stale on the writer too
            assert s.get(url(w.base, eid), headers={"If-None-Match": old_img.headers["ETag"]},
                         timeout=HTTP_TIMEOUT).status_code == 200
        # ImageInfo the other way round; a stale If-Match is refused there
        put = ok(s.put(url(r.base, eid, "ImageInfo"), json={"Description": f"d{n}"},
                       timeout=HTTP_TIMEOUT))
        back = ok(s.get(url(w.base, eid, "ImageInfo"), timeout=HTTP_TIMEOUT))
        assert back.json()["Description"] == f"d{n}" and back.json() == put.json()
        assert back.headers["ETag"] == put.headers["ETag"] != info.headers["ETag"]
        r412 = s.put(url(w.base, eid, "ImageInfo"), json={"Description": "stale"},
                     headers={"If-Match": info.headers["ETag"]}, timeout=HTTP_TIMEOUT)
        assert r412.status_code == 412, (n, r412.status_code, r412.text[:200])
    assert_same_everywhere(cl, s, eid)


def test_write_read_through_haproxy_reaches_both(make_cluster):
    """haproxy balances each request: a write and the next read usually
    land on different servers; every read sees the write before it."""
    cl = make_cluster()
    s = session(cl, "bob")
    eid = ok(s.post(f"{cl.base}/api/v1/{ENTITY}", json={"Name": "Proxied"},
                    timeout=HTTP_TIMEOUT), 201).json()["ContactId"]
    for n in range(60):
        pic = picture(n)
        blob_id_of(s.put(url(cl.base, eid), data=pic, timeout=HTTP_TIMEOUT))
        img, info = read_all(s, cl.base, eid)
        assert img.content == pic, n
        assert_info_matches(info.json(), pic, img.headers["Content-Type"].split(";")[0])
        ok(s.put(url(cl.base, eid, "ImageInfo"), json={"Description": f"p{n}"},
                 timeout=HTTP_TIMEOUT))
        assert ok(s.get(url(cl.base, eid, "ImageInfo"),
                        timeout=HTTP_TIMEOUT)).json()["Description"] == f"p{n}"
    path = f"/api/v1/{ENTITY}/{eid}/Image"
    counts = [access_count(srv, path) for srv in cl.servers]
    assert sum(counts) == 120 and min(counts) >= 30, counts
    assert_same_everywhere(cl, s, eid)


# --------------------------------------------------------------------------
# 16 writers on one entity, through both servers


class Load:
    """n clients, each in a thread of its own running step(i, k)
    for k = 0, 1, ... until stopped. A step makes its requests through
    `call`, which keeps every answer: (monotonic start, end, client, what,
    status or the exception's repr)."""

    def __init__(self, cl, n, step, users=("alice", "bob")):
        self.cl = cl
        self.step = step
        self.results = []
        self.failures = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sessions = []
        for i in range(n):
            user = users[i % len(users)]
            self._sessions.append(requests.Session())
            self._sessions[-1].auth = (user, cl.users[user][1])
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(n)]

    def call(self, i, what, method, u, want=200, **kw):
        """One request; its answer, or None when it failed (kept)."""
        t0 = time.monotonic()
        try:
            r = self._sessions[i].request(method, u, timeout=HTTP_TIMEOUT, **kw)
            status = r.status_code
        except requests.RequestException as e:
            r, status = None, repr(e)
        rec = (t0, time.monotonic(), i, what, status)
        with self._lock:
            self.results.append(rec)
            if status != want:
                self.failures.append(rec + ((r.text[:200] if r is not None else ""),))
        return r if status == want else None

    def _run(self, i):
        k = 0
        while not self._stop.is_set():
            try:
                self.step(i, k)
            except Exception as e:  # noqa: BLE001 - a step's surprise is a finding
                with self._lock:
                    self.failures.append((time.monotonic(), 0, i, "step", repr(e)))
            k += 1

    def run(self, seconds):
        self.start()
        time.sleep(seconds)
        self.stop()
        return self

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=HTTP_TIMEOUT + 5)
        for s in self._sessions:
            s.close()


WRITERS = 16
WRITE_SECONDS = 20.0


def test_16_writers_on_one_entity_through_both_servers(make_cluster):
    cl = make_cluster()
    s = session(cl, "alice")
    eid = ok(s.post(f"{cl.servers[0].base}/api/v1/{ENTITY}", json={"Name": "Contended"},
                    timeout=HTTP_TIMEOUT), 201).json()["ContactId"]
    uploads = {}     # size -> picture (a size names its picture)
    put_ids = []     # BlobIds answered to PUT Image and PUT ImageInfo
    infos = []       # ImageInfo answered to PUT ImageInfo
    made = []        # (entity id, BlobId, picture) of entities the writers made
    lock = threading.Lock()
    counter = iter(range(1, 10 ** 6))

    def step(i, k):
        base = cl.servers[i % 2].base
        if k % 20 == 19:  # a new entity and its first picture
            r = load.call(i, "POST Person", "POST", f"{base}/api/v1/Person",
                          json={"Firstname": f"w{i}", "Lastname": f"k{k}"}, want=201)
            if r is None:
                return
            pid = r.json()["PersonId"]
            with lock:
                n = next(counter)
            pic = picture(n)
            r = load.call(i, "POST Image", "POST", f"{base}/api/v1/Person/{pid}/Image", data=pic)
            if r is not None:
                with lock:
                    made.append((pid, int(r.text), pic))
        elif k % 3 == 0:
            with lock:
                n = next(counter)
                uploads[PICTURE_BYTES + n] = pic = picture(n)
            r = load.call(i, "PUT Image", "PUT", url(base, eid), data=pic)
            if r is not None:
                with lock:
                    put_ids.append(int(r.text))
        elif k % 3 == 1:
            tag = f"w{i}k{k}"
            r = load.call(i, "PUT ImageInfo", "PUT", url(base, eid, "ImageInfo"),
                          json={"Description": tag, "ExtraInfo": tag})
            if r is not None:
                with lock:
                    put_ids.append(r.json()["BlobId"])
                    infos.append(r.json())
        else:
            r = load.call(i, "GET Image", "GET", url(base, eid))
            if r is not None:
                with lock:
                    assert r.content in uploads.values(), "a picture nobody sent"
                assert r.headers["Content-Type"].split(";")[0] == sniff(r.content)

    load = Load(cl, WRITERS, step)
    load.run(WRITE_SECONDS)
    assert not load.failures, (f"{len(load.failures)} of {len(load.results)} failed: "
                               f"{load.failures[:10]}")
    kinds = {}
    for rec in load.results:
        kinds[rec[3]] = kinds.get(rec[3], 0) + 1
    assert kinds.get("PUT Image", 0) >= 100 and kinds.get("PUT ImageInfo", 0) >= 100, kinds
    # one record for the entity, whoever wrote it through which server
    assert len(set(put_ids)) == 1, sorted(set(put_ids))
    # every ImageInfo answered was one picture's, never a mix of two
    for info in infos:
        assert info["BlobSize"] == info["OriginalSize"], info
        assert info["MimeType"] == sniff(uploads[info["BlobSize"]]), info
        assert info["Description"] == info["ExtraInfo"], info
    # new ids are unique across both servers
    pids = [m[0] for m in made]
    blobs = [m[1] for m in made] + put_ids[:1]
    assert len(made) >= 20, len(made)
    assert len(set(pids)) == len(pids), sorted(pids)
    assert len(set(blobs)) == len(blobs), sorted(blobs)
    # at the end: the same everywhere, and ImageInfo agrees with the picture
    pic, info = assert_same_everywhere(cl, s, eid)
    assert uploads[len(pic)] == pic
    assert info["BlobId"] == put_ids[0]
    assert info["Description"] == info["ExtraInfo"]
    for pid, blob, want in made[:: max(1, len(made) // 20)]:
        for srv in cl.servers:
            r = ok(s.get(f"{srv.base}/api/v1/Person/{pid}/Image", timeout=HTTP_TIMEOUT))
            assert r.content == want
            assert ok(s.get(f"{srv.base}/api/v1/Person/{pid}/ImageInfo",
                            timeout=HTTP_TIMEOUT)).json()["BlobId"] == blob
    print(f"\n16 writers, {WRITE_SECONDS:.0f} s: {kinds}")


# --------------------------------------------------------------------------
# kill -9 of one server under load


CLIENTS = 8
ENTITIES_PER_CLIENT = 25


def test_kill9_of_one_server_under_load(make_cluster):
    cl = make_cluster(["--durable"])
    a, b = cl.servers
    s = session(cl, "alice")
    owned = [[ok(s.post(f"{cl.base}/api/v1/{ENTITY}", json={"Name": f"c{i} {j}"},
                        timeout=HTTP_TIMEOUT), 201).json()["ContactId"]
              for j in range(ENTITIES_PER_CLIENT)] for i in range(CLIENTS)]
    last = {}  # entity -> (picture, description) of its last acknowledged write
    acked = [0]
    created = []  # ids answered to POST Person
    lock = threading.Lock()
    counter = iter(range(1, 10 ** 6))

    def step(i, k):
        if k % 10 == 9:  # not replayed by haproxy (dist/haproxy/crmblob.cfg)
            post_person_under_load(functools.partial(load.call, i), cl.base, f"c{i}", f"k{k}",
                                   lock, created)
            return
        eid = owned[i][k % ENTITIES_PER_CLIENT]
        with lock:
            n = next(counter)
        pic, desc = picture(n), f"write {n}"
        if load.call(i, "PUT Image", "PUT", url(cl.base, eid), data=pic) is None:
            return
        if load.call(i, "PUT ImageInfo", "PUT", url(cl.base, eid, "ImageInfo"),
                     json={"Description": desc}) is None:
            return
        with lock:
            last[eid] = (pic, desc)
            acked[0] += 1
        r = load.call(i, "GET Image", "GET", url(cl.base, eid))  # read back at once
        assert r is None or r.content == pic, f"write {n} not read back at once"

    load = Load(cl, CLIENTS, step)
    load.start()
    try:
        time.sleep(1.5)
        a_before = int(cl.stat(0)["stot"])
        t_kill = time.monotonic()
        a.kill9()
        down_after = cl.wait_status(0, "DOWN")
        t_down = time.monotonic()
        time.sleep(2.0)
        a.start()  # the same port: haproxy's configuration names it
        t_start = time.monotonic()
        up_after = cl.wait_status(0, "UP")
        a_back = int(cl.stat(0)["stot"])
        time.sleep(2.0)
        a_served = int(cl.stat(0)["stot"]) - a_back
    finally:
        load.stop()
    backend = cl.admin.stat("crmblob", "BACKEND")
    failed_after_down = [f for f in load.failures if f[1] >= t_down]
    assert not failed_after_down, failed_after_down[:10]
    # before it was marked down too, but for a POST in flight on the server
    # killed: haproxy replays what could not be sent and idempotent requests
    # (retry-on conn-failure empty-response, redispatch), not a POST
    not_post = [f for f in load.failures if not f[3].startswith("POST")]
    assert not not_post, not_post[:10]
    assert len(load.failures) <= CLIENTS, load.failures
    assert len(set(created)) == len(created) > 10, created
    assert a_before > 0 and a_served > 0, (a_before, a_served)
    retried = int(backend["wretr"]) + int(backend["wredis"])
    assert retried > 0, "no request met the dead server: the test proved nothing"
    # every acknowledged write is there, with its bytes, through both servers
    assert acked[0] >= 100, acked[0]
    for eid, (pic, desc) in last.items():
        for srv in cl.servers:
            img, info = read_all(s, srv.base, eid)
            assert img.content == pic, f"acknowledged write lost on {eid} through {srv.port}"
            assert info.json()["Description"] == desc
            assert_info_matches(info.json(), pic, img.headers["Content-Type"].split(";")[0])
    print(f"\nkill -9: marked down after {down_after:.2f} s, up {up_after:.2f} s after restart "
          f"({t_start - t_kill:.1f} s after the kill); {len(load.results)} requests, "
          f"{acked[0]} writes acknowledged, {retried} retried/redispatched, "
          f"{a_served} sessions to the restarted server in 2 s; POSTs failed: "
          f"{[f[4] for f in load.failures]}")


# --------------------------------------------------------------------------
# haproxy's health check is /ready


def test_a_server_not_ready_leaves_the_rotation(make_cluster, tmp_path):
    """A server alive, its port open, but not ready (no image worker can
    start: CRMBLOB_IMG_WORKER exits at once while a flag file exists) is
    taken out of rotation by its /ready checks; clients writing pictures
    meanwhile see no failure (its 503s are replayed on the other server);
    mended, it is back in rotation."""
    flag = tmp_path / "broken"
    wrapper = tmp_path / "img-worker"
    wrapper.write_text(f'#!/bin/sh\n[ -e "{flag}" ] && exit 3\nexec "{BIN.parent / "crmblob-img"}" "$@"\n')
    wrapper.chmod(0o755)
    cl = make_cluster(envs=({}, {"CRMBLOB_IMG_WORKER": str(wrapper)}))
    b = cl.servers[1]
    s = session(cl, "alice")
    eids = [ok(s.post(f"{cl.base}/api/v1/{ENTITY}", json={"Name": f"r{i}"},
                      timeout=HTTP_TIMEOUT), 201).json()["ContactId"] for i in range(4)]
    last = {}
    counter = iter(range(1, 10 ** 6))
    lock = threading.Lock()

    def step(i, k):
        with lock:
            n = next(counter)
        pic = picture(n)
        if load.call(i, "PUT Image", "PUT", url(cl.base, eids[i]), data=pic) is not None:
            last[eids[i]] = pic
            r = load.call(i, "GET Image", "GET", url(cl.base, eids[i]))
            assert r is None or r.content == pic, f"picture {n} not read back at once"
        time.sleep(0.01)

    load = Load(cl, len(eids), step)
    load.start()
    try:
        time.sleep(1.0)
        flag.touch()
        for pid in child_pids(b.proc.pid):  # its worker dies; none can start
            os.kill(pid, signal.SIGKILL)
        down_after = cl.wait_status(1, "DOWN")
        row = cl.stat(1)
        assert (row["check_status"], row["check_code"]) == ("L7STS", "503"), row
        assert b.alive()
        served_down = int(row["stot"])
        time.sleep(1.0)
        assert int(cl.stat(1)["stot"]) == served_down, "a server marked down was sent requests"
        flag.unlink()
        up_after = cl.wait_status(1, "UP")
        back = int(cl.stat(1)["stot"])
        time.sleep(1.0)
        served_up = int(cl.stat(1)["stot"]) - back
    finally:
        load.stop()
    assert not load.failures, load.failures[:10]
    assert served_up > 0
    assert len(load.results) > 100, len(load.results)
    for eid, pic in last.items():
        for srv in cl.servers:
            assert ok(s.get(url(srv.base, eid), timeout=HTTP_TIMEOUT)).content == pic
    print(f"\nnot ready: out of rotation after {down_after:.2f} s, back {up_after:.2f} s after "
          f"mended; {len(load.results)} requests, {served_up} to it in the next second")


# --------------------------------------------------------------------------
# a rolling restart


@pytest.mark.parametrize("drain", [True, False], ids=["drained", "not-drained"])
def test_rolling_restart(make_cluster, drain):
    """Each server in turn is stopped with SIGTERM (exit 0), left down a
    moment and started again, while clients create entities (POST) and
    write pictures (PUT) through haproxy; every acknowledged write is there.
    Drained first through haproxy's admin socket (no new requests; those in
    flight end) and made ready after: no request fails. Not drained: no PUT
    fails (what meets the server stopping, its 503 or its closed connection,
    is replayed on the other one); a POST may, as it is never replayed."""
    cl = make_cluster()
    s = session(cl, "alice")
    eids = [ok(s.post(f"{cl.base}/api/v1/{ENTITY}", json={"Name": f"r{i}"},
                      timeout=HTTP_TIMEOUT), 201).json()["ContactId"] for i in range(CLIENTS)]
    last, created = {}, []
    counter = iter(range(1, 10 ** 6))
    lock = threading.Lock()

    def step(i, k):
        if k % 5 == 4:
            post_person_under_load(functools.partial(load.call, i), cl.base, f"c{i}", f"k{k}",
                                   lock, created)
            return
        with lock:
            n = next(counter)
        pic = picture(n)
        if load.call(i, "PUT Image", "PUT", url(cl.base, eids[i]), data=pic) is not None:
            last[eids[i]] = pic

    load = Load(cl, CLIENTS, step)
    load.start()
    try:
        for i, srv in enumerate(cl.servers):
            time.sleep(0.5)
            name = f"{cl.BACKEND}/s{i + 1}"
            if drain:
                cl.admin.command(f"set server {name} state drain")
                deadline = time.monotonic() + 10
                while int(cl.stat(i)["scur"]) > 0:
                    assert time.monotonic() < deadline, cl.stat(i)
                    time.sleep(0.01)
            rc = srv.stop()
            assert rc == 0, f"exit {rc} on SIGTERM:\n{srv.log()[-2000:]}"
            time.sleep(0.5)
            srv.start()
            if drain:
                cl.admin.command(f"set server {name} state ready")
            cl.wait_status(i, "UP")
        time.sleep(0.5)
    finally:
        load.stop()
    failed = load.failures if drain else [f for f in load.failures if f[3] != "POST Person"]
    assert not failed, failed[:10]
    assert len(set(created)) == len(created) > 10, created
    for eid, pic in last.items():
        for srv in cl.servers:
            assert ok(s.get(url(srv.base, eid), timeout=HTTP_TIMEOUT)).content == pic
    print(f"\nrolling restart, {'drained' if drain else 'not drained'}: {len(load.results)} "
          f"requests, POSTs failed: {[f[4] for f in load.failures]}")
