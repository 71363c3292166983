"""What a hostile picture costs (issue 17, defects 1 and 4): worker CPU and
wall time per attack, and the worst latency of another user (Bystander)
meanwhile. Measures any crmblob binary, so a build of an older commit can be
compared with this one:

    /usr/bin/python3 bench/img_attacks.py BIN DIR [--store-bomb]

DIR keeps the database between runs: with --store-bomb (for a binary that
still accepts it) a scan bomb is stored, and every later run on DIR asks for
a new variant of it. Worker CPU is utime + stime of the server's crmblob-img
children (/proc). Needs tests/http on the path (conftest, imgbomb).
"""
import os
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "http"))
os.environ["CRMBLOB_BIN"] = str(Path(sys.argv[1]).resolve())

import requests  # noqa: E402

from conftest import NO_LIMITER, ArgServer, Bystander, data  # noqa: E402
from imgbomb import jpeg_scan_bomb, tiff_pages  # noqa: E402
from test_img_budget import rgb_png, workers_cpu  # noqa: E402

TIMEOUT = 600  # the old binary takes minutes on some of these


def put(srv, eid, body):
    return requests.put(f"{srv.base}/api/v1/Person/{eid}/Image", data=body,
                        headers={"Content-Type": "application/octet-stream"},
                        auth=("alice", srv.users["alice"][1]), timeout=TIMEOUT)


def get(srv, eid, **params):
    return requests.get(f"{srv.base}/api/v1/Person/{eid}/Image", params=params,
                        auth=("alice", srv.users["alice"][1]), timeout=TIMEOUT)


def status(r):
    return r.status_code if hasattr(r, "status_code") else repr(r)[:60]


def concurrently(fn, args):
    out = [None] * len(args)

    def one(i, a):
        t0 = time.monotonic()
        try:
            r = fn(a)
        except Exception as e:  # noqa: BLE001 - reported
            r = e
        out[i] = (status(r), round(time.monotonic() - t0, 2))

    ts = [threading.Thread(target=one, args=(i, a)) for i, a in enumerate(args)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def timed(srv, what, fn):
    c0, t0 = workers_cpu(srv), time.monotonic()
    r = fn()
    print(f"{what}: status {status(r)}, {time.monotonic() - t0:.2f} s, "
          f"worker CPU {workers_cpu(srv) - c0:.2f} s", flush=True)
    return r


def under_attack(srv, what, fn, args):
    with Bystander(srv, "bob") as by:
        got = concurrently(fn, args)
    print(f"{what}: {got}; bystander worst {by.worst():.2f} s, "
          f"{len(by.failures())} of {len(by.results)} failed", flush=True)


def main():
    work = Path(sys.argv[2])
    fresh = not (work / "crmblob.db").exists()
    s = ArgServer(work, serve_args=NO_LIMITER)
    if fresh:
        s.create_users()
    s.start()
    try:
        a = s.client("alice")
        pid = a.create("Person")
        put(s, pid, data("small.png"))  # the workers are up
        for n in (1000, 10000):
            b = jpeg_scan_bomb(7000, 7000, n)
            timed(s, f"scan bomb N={n} ({len(b)} B)", lambda: put(s, pid, b))
        bomb = jpeg_scan_bomb(7000, 7000, 10000)
        under_attack(s, "2 scan bombs N=10000 at once", lambda e: put(s, e, bomb),
                     [a.create("Person") for _ in range(2)])
        for n in (400, 2000):
            t = tiff_pages(n)
            timed(s, f"TIFF of {n} pages", lambda: put(s, pid, t))
        big = a.create("Person")
        put(s, big, rgb_png(7000))
        under_attack(s, "3 whole-size GIFs of a 49 MP PNG at once",
                     lambda t: get(s, big, type=t), ["GIF", "gif", "Gif"])
        if "--store-bomb" in sys.argv:
            sid = a.create("Person", Firstname="StoredBomb")
            print("stored bomb:", status(put(s, sid, jpeg_scan_bomb(7000, 7000, 1000))))
            (work / "stored_bomb").write_text(str(sid))
        if (work / "stored_bomb").exists():
            sid = int((work / "stored_bomb").read_text())
            w = 100 + int(time.time()) % 1000  # a width not asked before
            timed(s, f"new variant w={w} of the stored bomb", lambda: get(s, sid, w=w))
    finally:
        s.stop()


if __name__ == "__main__":
    main()
