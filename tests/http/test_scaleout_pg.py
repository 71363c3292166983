"""PostgreSQL restarted under load (issue 18): two crmblob servers on one
PostgreSQL database behind haproxy (conftest: Cluster), 16 writers on the
servers' own ports and 4 readers through haproxy, while the database is
restarted twice: `pg_ctl restart -m fast`, then an immediate stop (as a
crash) held down for OUTAGE seconds and started again (crash recovery).

- Every answer is the one wanted or a 503 with Retry-After (haproxy's own
  503 too, when neither server is up): never a 500, never a dropped
  connection from crmblob, and neither server exits. (haproxy closes a
  kept-alive connection without an answer when it was retrying a GET as
  the last server went DOWN; that, and only then, is allowed.)
- While the database is down, /ready answers 503 and says the database is
  why.
- Both servers recover by themselves (the same processes: no restart):
  /ready 200 again, haproxy has both UP, and each serves writes again.
- No acknowledged write is lost: for every entity the stored picture and
  Description are the last ones answered 2xx, or a later one the client
  sent and got no 2xx for (a write whose COMMIT went out before the
  connection died may be in); every Person answered 201 is there.

The database cluster is this module's own: restarting the session's
cluster (or PG_CLUSTER_DIR's, shared by xdist workers) would break other
tests' servers.
"""
import functools
import glob
import os
import tempfile
import threading
import time

import pytest
import requests

from conftest import (HTTP_TIMEOUT, Cluster, PgCluster, need_haproxy, picture_of_size,
                      post_person_under_load)

ENTITY = "Contact"
PICTURE_BYTES = 2000  # + n: a picture's size names it
WRITERS = 16  # 8 on each server's own port
READERS = 4  # through haproxy
ENTITIES_PER_WRITER = 4
SERVE_SECONDS = 1.5  # of load before, between and after the restarts
OUTAGE = 1.5  # seconds the database stays down after the immediate stop
RECOVER_WITHIN = 15.0


@pytest.fixture(scope="module")
def own_pg():
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        pytest.skip("no PostgreSQL server programs (Debian package postgresql)")
    d = tempfile.mkdtemp(prefix="crmblob-pgrestart-")
    os.rmdir(d)  # pg-cluster.sh makes it, marked as its own
    c = PgCluster(d, owned=True)
    c.start()
    yield c
    c.stop()


@pytest.fixture
def pg_cluster_pair(own_pg, tmp_path):
    need_haproxy()
    schema = own_pg.new_schema()
    cl = Cluster(tmp_path / "cluster", schema.conninfo)
    yield cl
    cl.stop()
    schema.drop()


class Traffic:
    """Every answer kept: (monotonic time, server index or 'proxy', what,
    status or the exception's repr). An answer other than the one wanted
    is a failure unless it is a 503 with Retry-After."""

    def __init__(self):
        self.lock = threading.Lock()
        self.answers = []
        self.failures = []
        self.stop = threading.Event()

    def call(self, sess, where, what, method, u, want=200, also=(), **kw):
        """The answer when it is `want`, None for a 503 or a status in
        `also` (kept), and a failure kept for anything else."""
        try:
            r = sess.request(method, u, timeout=HTTP_TIMEOUT, **kw)
            status = r.status_code
        except requests.RequestException as e:
            r, status = None, repr(e)
        rec = (time.monotonic(), where, what, status)
        with self.lock:
            self.answers.append(rec)
            if status == 503 and not r.headers.get("Retry-After"):
                self.failures.append(rec + ("503 without Retry-After", r.text[:200]))
            elif status not in (want, 503, *also):
                self.failures.append(rec + ((r.text[:200] if r is not None else ""),))
        return r if status == want else None


def summary(failures):
    """{(where, what, status or exception name, note): count}"""
    out = {}
    for f in failures:
        key = (f[1], f[2], str(f[3])[:40], f[4] if len(f) > 5 else "")
        out[key] = out.get(key, 0) + 1
    return out


def url(base, eid, what="Image"):
    return f"{base}/api/v1/{ENTITY}/{eid}/{what}"


def test_postgresql_restarted_under_load(own_pg, pg_cluster_pair):
    cl = pg_cluster_pair
    a, b = cl.servers
    pids = [s.proc.pid for s in cl.servers]
    auth = {u: (u, cl.users[u][1]) for u in ("alice", "bob")}
    setup = requests.Session()
    setup.auth = auth["alice"]
    owned = [[setup.post(f"{cl.base}/api/v1/{ENTITY}", json={"Name": f"w{i} {j}"},
                         timeout=HTTP_TIMEOUT).json()["ContactId"]
              for j in range(ENTITIES_PER_WRITER)] for i in range(WRITERS)]
    t = Traffic()
    # eid -> [(n, acknowledged)] of its PUT Image / PUT ImageInfo, in order
    pics = {eid: [] for row in owned for eid in row}
    descs = {eid: [] for row in owned for eid in row}
    created = []
    counter = iter(range(1, 10 ** 7))
    state = threading.Lock()

    def writer(i):
        srv = cl.servers[i % 2]
        sess = requests.Session()
        sess.auth = auth[("alice", "bob")[i % 2]]
        k = 0
        while not t.stop.is_set():
            k += 1
            if k % 10 == 0:
                post_person_under_load(functools.partial(t.call, sess, i % 2), srv.base, f"w{i}",
                                       f"k{k}", state, created)
                continue
            eid = owned[i][k % ENTITIES_PER_WRITER]
            with state:
                n = next(counter)
            pic = picture_of_size(n, PICTURE_BYTES + n)
            pics[eid].append([n, False])  # sent: it may be in whatever the answer
            if t.call(sess, i % 2, "PUT Image", "PUT", url(srv.base, eid), data=pic) is None:
                continue
            pics[eid][-1][1] = True
            descs[eid].append([n, False])
            if t.call(sess, i % 2, "PUT ImageInfo", "PUT", url(srv.base, eid, "ImageInfo"),
                      json={"Description": f"write {n}"}) is None:
                continue
            descs[eid][-1][1] = True
            r = t.call(sess, i % 2, "GET Image", "GET", url(srv.base, eid))
            assert r is None or r.content == pic, f"write {n} not read back at once"
        sess.close()

    def reader(i):
        sess = requests.Session()
        sess.auth = auth["bob"]
        k = 0
        while not t.stop.is_set():
            k += 1
            eid = owned[(i * 7 + k) % WRITERS][k % ENTITIES_PER_WRITER]
            # 404 while no picture of it is acknowledged
            none_yet = not any(p[1] for p in pics[eid])
            r = t.call(sess, "proxy", "GET Image", "GET", url(cl.base, eid),
                       also=(404,) if none_yet else ())
            if r is not None and r.content:
                n = len(r.content) - PICTURE_BYTES
                assert n in {p[0] for p in pics[eid]}, f"{eid}: a picture never sent ({n})"
        sess.close()

    ready = []  # (time, server, status, ErrorMessage)

    def ready_poll():
        anon = requests.Session()
        while not t.stop.is_set():
            for j, srv in enumerate(cl.servers):
                try:
                    r = anon.get(f"{srv.base}/ready", timeout=HTTP_TIMEOUT)
                    why = r.json().get("ErrorMessage", "") if r.status_code != 200 else ""
                    ready.append((time.monotonic(), j, r.status_code, why))
                except (requests.RequestException, ValueError) as e:
                    ready.append((time.monotonic(), j, repr(e), ""))
            time.sleep(0.05)
        anon.close()

    def wait_ready(since):
        """Seconds from `since` until both servers answered /ready 200."""
        deadline = since + RECOVER_WITHIN
        while time.monotonic() < deadline:
            back = [any(r[0] > since and r[1] == j and r[2] == 200 for r in list(ready))
                    for j in range(2)]
            if all(back):
                return time.monotonic() - since
            time.sleep(0.05)
        raise AssertionError(f"not ready {RECOVER_WITHIN} s after the restart: "
                             f"{[r for r in ready if r[0] > since][-6:]}")

    threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(WRITERS)]
    threads += [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(READERS)]
    threads.append(threading.Thread(target=ready_poll, daemon=True))
    for th in threads:
        th.start()
    try:
        time.sleep(SERVE_SECONDS)
        t_fast = time.monotonic()
        own_pg.restart("fast")
        fast_back = wait_ready(time.monotonic())
        t_fast_back = time.monotonic()
        time.sleep(SERVE_SECONDS)
        t_down = time.monotonic()
        own_pg.pause("immediate")
        time.sleep(OUTAGE)
        t_start = time.monotonic()
        own_pg.start()
        imm_back = wait_ready(time.monotonic())
        t_back = time.monotonic()
        time.sleep(SERVE_SECONDS)
    finally:
        t.stop.set()
        for th in threads:
            th.join(timeout=HTTP_TIMEOUT + 5)

    # haproxy, not crmblob: a GET it was retrying (after a crmblob 503) when
    # both servers went DOWN ends as "SC" with no server left, and haproxy
    # closes that kept-alive client connection without an answer, for the
    # client to retry (its log: 503 0 bytes, <NOSRV>). Only then, and only
    # through haproxy.
    def haproxy_closed(f):
        return (f[1] == "proxy" and "RemoteDisconnected" in str(f[3])
                and (t_fast <= f[0] <= t_fast_back or t_down <= f[0] <= t_back))
    closed = [f for f in t.failures if haproxy_closed(f)]
    failures = [f for f in t.failures if not haproxy_closed(f)]
    assert not failures, (summary(failures), failures[:6])
    assert len(closed) <= 2 * READERS, closed
    assert [s.proc.pid for s in cl.servers] == pids and all(s.alive() for s in cl.servers)
    # the outage was met: writes answered 503, /ready said why
    during = [x for x in t.answers if t_down <= x[0] <= t_start and x[1] != "proxy"]
    assert any(x[3] == 503 for x in during), "no request met the outage"
    why = [r for r in ready if t_down <= r[0] <= t_start + 0.1 and r[2] == 503]
    assert {r[1] for r in why} == {0, 1}, ready[-10:]
    assert all("database" in r[3].lower() for r in why), why[:4]
    # both serve writes again, and haproxy sends to both
    for j in range(2):
        after = [x for x in t.answers
                 if x[0] > t_back and x[1] == j and x[2] == "PUT Image" and x[3] == 200]
        assert len(after) > 10, (j, len(after))
    for j in range(2):
        cl.wait_status(j, "UP")
    # no acknowledged write lost, through both servers
    check = requests.Session()
    check.auth = auth["alice"]
    acked = 0
    for eid in pics:
        last_pic = max((k for k, p in enumerate(pics[eid]) if p[1]), default=None)
        last_desc = max((k for k, d in enumerate(descs[eid]) if d[1]), default=None)
        acked += sum(p[1] for p in pics[eid]) + sum(d[1] for d in descs[eid])
        for srv in cl.servers:
            img = check.get(url(srv.base, eid), timeout=HTTP_TIMEOUT)
            info = check.get(url(srv.base, eid, "ImageInfo"), timeout=HTTP_TIMEOUT)
            assert img.status_code == 200 and info.status_code == 200, (eid, srv.port)
            n = len(img.content) - PICTURE_BYTES
            sent = [p[0] for p in pics[eid]]
            assert n in sent, (eid, n)
            if last_pic is not None:
                assert sent.index(n) >= last_pic, f"{eid}: acknowledged picture lost"
                assert img.content == picture_of_size(n, PICTURE_BYTES + n)
            assert info.json()["BlobSize"] == len(img.content)
            d = info.json()["Description"]
            if last_desc is not None:
                dsent = [f"write {x[0]}" for x in descs[eid]]
                assert d in dsent and dsent.index(d) >= last_desc, \
                    f"{eid}: acknowledged Description lost ({d})"
    assert len(set(created)) == len(created) > 0, created
    for pid in created:
        for srv in cl.servers:
            assert check.get(f"{srv.base}/api/v1/Person/{pid}",
                             timeout=HTTP_TIMEOUT).status_code == 200, (pid, srv.port)
    n503 = sum(1 for x in t.answers if x[3] == 503)
    print(f"\nPostgreSQL restarts: fast restart, both ready {fast_back:.2f} s after pg_ctl "
          f"returned ({time.monotonic() - t_fast:.0f} s ago); immediate stop held "
          f"{OUTAGE} s, both ready {imm_back:.2f} s after the start; "
          f"{len(t.answers)} answers, {n503} were 503; {acked} writes acknowledged, "
          f"{len(created)} Persons created; {len(closed)} reads through haproxy closed "
          f"without an answer while no server was up")
