"""Many clients at once."""
import struct
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import (HTTP_TIMEOUT, KINDS, RawConn, basic, data, png_chunk, png_with_text,
                      sniff)

# races between connections, timed in milliseconds: alone (conftest: serial)
pytestmark = pytest.mark.serial

N = 20


def variants(n):
    """n distinct valid images of several formats."""
    out = []
    jpg, gif = data("small.jpg"), data("small.gif")
    for i in range(n):
        if i % 3 == 0:
            out.append(png_with_text(f"variant {i} " * (i + 1)))
        elif i % 3 == 1:
            # JPEG with a COM segment right after SOI
            com = f"variant {i}".encode() * (i + 1)
            out.append(jpg[:2] + b"\xff\xfe" + (len(com) + 2).to_bytes(2, "big") + com + jpg[2:])
        else:
            # bytes after the GIF trailer are ignored by decoders
            out.append(gif + f"variant {i}".encode())
    assert len(set(out)) == n
    return out


def run_parallel(fn, args):
    barrier = threading.Barrier(len(args))

    def wrapped(a):
        barrier.wait(timeout=30)
        return fn(a)

    with ThreadPoolExecutor(max_workers=len(args)) as ex:
        return list(ex.map(wrapped, args))


def session(srv, user):
    s = requests.Session()
    s.auth = (user, srv.users[user][1])
    return s


def test_parallel_uploads_same_person(srv, admin):
    pid = admin.create("Person")
    uploads = variants(N)

    def put(i):
        s = session(srv, "alice" if i % 2 else "bob")
        try:
            r = s.put(f"{srv.base}/api/v1/Person/{pid}/Image", data=uploads[i],
                      headers={"Content-Type": "application/octet-stream"}, timeout=HTTP_TIMEOUT)
            return r.status_code, r.text
        finally:
            s.close()

    results = run_parallel(put, list(range(N)))
    statuses = [st for st, _ in results]
    assert statuses == [200] * N, results
    ids = {int(t) for _, t in results}
    assert len(ids) == 1, f"all uploads to one person must share one BlobId: {ids}"
    r = admin.get_image("Person", pid)
    assert r.status_code == 200
    assert r.content in uploads, "stored bytes must be exactly one of the uploads"
    info = admin.info("Person", pid)
    assert info["BlobId"] in ids
    assert info["BlobSize"] == info["OriginalSize"] == len(r.content)
    assert info["MimeType"] == sniff(r.content)
    assert r.headers["Content-Type"].split(";")[0] == info["MimeType"]
    assert info["UpdatedBy"]["UserName"] in ("alice", "bob")


def test_parallel_uploads_and_reads(srv, admin):
    """Readers never see a mix of two uploads."""
    pid = admin.create("Product")
    uploads = variants(10)
    admin.put_image("Product", pid, uploads[0])

    def work(i):
        s = session(srv, "alice")
        try:
            if i % 2:
                r = s.put(f"{srv.base}/api/v1/Product/{pid}/Image", data=uploads[i % 10],
                          timeout=HTTP_TIMEOUT)
                return ("put", r.status_code, None, None)
            r = s.get(f"{srv.base}/api/v1/Product/{pid}/Image", timeout=HTTP_TIMEOUT)
            return ("get", r.status_code, r.content, r.headers.get("Content-Type"))
        finally:
            s.close()

    for kind, status, body, ctype in run_parallel(work, list(range(N))):
        assert status == 200, (kind, status)
        if kind == "get":
            assert body in uploads
            assert ctype.split(";")[0] == sniff(body)


def test_parallel_creates_get_distinct_ids(srv):
    def post(i):
        s = session(srv, "admin")
        try:
            kind = list(KINDS)[i % 4]
            r = s.post(f"{srv.base}/api/v1/{kind}", json={}, timeout=HTTP_TIMEOUT)
            return kind, r.status_code, r.json()
        finally:
            s.close()

    res = run_parallel(post, list(range(N)))
    assert all(st == 201 for _, st, _ in res), res
    for kind in KINDS:
        ids = [b[KINDS[kind][0]] for k, _, b in res if k == kind]
        assert len(ids) == len(set(ids)), (kind, ids)


def test_parallel_uploads_distinct_entities_unique_blob_ids(srv, admin):
    targets = [(list(KINDS)[i % 4], admin.create(list(KINDS)[i % 4])) for i in range(N)]
    uploads = variants(N)

    def put(i):
        kind, eid = targets[i]
        s = session(srv, "bob")
        try:
            r = s.post(f"{srv.base}/api/v1/{kind}/{eid}/Image", data=uploads[i],
                       timeout=HTTP_TIMEOUT)
            return r.status_code, r.text
        finally:
            s.close()

    res = run_parallel(put, list(range(N)))
    assert all(st == 200 for st, _ in res), res
    ids = [int(t) for _, t in res]
    assert len(set(ids)) == N, f"BlobIds must be unique across entities: {sorted(ids)}"
    for i, (kind, eid) in enumerate(targets):
        assert admin.get_image(kind, eid).content == uploads[i]
        assert admin.info(kind, eid)["BlobId"] == ids[i]


def test_parallel_put_imageinfo_same_entity(srv, admin):
    pid = admin.create("Contact")

    def put(i):
        s = session(srv, "alice")
        try:
            r = s.put(f"{srv.base}/api/v1/Contact/{pid}/ImageInfo",
                      json={"Description": f"d{i}", "ExtraInfo": f"e{i}"}, timeout=HTTP_TIMEOUT)
            return r.status_code, r.json()
        finally:
            s.close()

    res = run_parallel(put, list(range(N)))
    assert all(st == 200 for st, _ in res), res
    assert len({b["BlobId"] for _, b in res}) == 1, "one record per entity"
    info = admin.info("Contact", pid)
    i = info["Description"][1:]
    assert info["ExtraInfo"] == f"e{i}", "Description and ExtraInfo must come from one request"


def test_server_alive_after_concurrency(srv, admin):
    assert srv.alive()
    pid = admin.create("Person")
    assert admin.get(f"/api/v1/Person/{pid}").status_code == 200


def test_race_first_imageinfo_and_first_image(srv, admin):
    """The first PUT ImageInfo and the first PUT Image racing on one entity: one record."""
    for _ in range(3):
        pid = admin.create("Person")
        png = data("small.png")

        def work(i):
            s = session(srv, "alice")
            try:
                if i % 2:
                    r = s.put(f"{srv.base}/api/v1/Person/{pid}/Image", data=png,
                              timeout=HTTP_TIMEOUT)
                    return r.status_code, int(r.text) if r.status_code == 200 else r.text
                r = s.put(f"{srv.base}/api/v1/Person/{pid}/ImageInfo",
                          json={"Description": "race"}, timeout=HTTP_TIMEOUT)
                return r.status_code, r.json()["BlobId"] if r.status_code == 200 else r.text
            finally:
                s.close()

        res = run_parallel(work, list(range(10)))
        assert all(st == 200 for st, _ in res), res
        ids = {b for _, b in res}
        assert len(ids) == 1, f"one BlobId per entity, got {ids}"
        info = admin.info("Person", pid)
        assert info["BlobId"] in ids
        assert info["Description"] == "race"
        assert info["MimeType"] == "image/png"
        assert admin.get_image("Person", pid).content == png


def test_cli_user_changes_while_server_is_busy(srv, admin):
    """`crmblob user ...` on the live database must not fail with a lock error under load."""
    pid = admin.create("Person")
    stop = threading.Event()
    errors = []

    def load():
        s = session(srv, "alice")
        try:
            i = 0
            while not stop.is_set():
                body = png_with_text(f"load {i}")
                r = s.put(f"{srv.base}/api/v1/Person/{pid}/Image", data=body,
                          timeout=HTTP_TIMEOUT)
                if r.status_code != 200:
                    errors.append((r.status_code, r.text[:200]))
                r = s.put(f"{srv.base}/api/v1/Person/{pid}/ImageInfo",
                          json={"Description": f"d{i}"}, timeout=HTTP_TIMEOUT)
                if r.status_code != 200:
                    errors.append((r.status_code, r.text[:200]))
                i += 1
        finally:
            s.close()

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(5):
            p = srv.add_user(f"busy{i}", "viewer", f"busy-pw-{i}", f"Busy {i}", check=False)
            assert p.returncode == 0, p.stderr
            p = srv.cli("user", "disable", f"busy{i}", "--db", str(srv.db))
            assert p.returncode == 0, p.stderr
            p = srv.cli("user", "list", "--db", str(srv.db))
            assert p.returncode == 0, p.stderr
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors[:5]
    rows = srv.user_list()
    assert all(rows[f"busy{i}"]["status"] == "disabled" for i in range(5))


def slow_png():
    """A 7000x7000 PNG (49 megapixels, under the default limit) of ~150 KB:
    checking that every pixel decodes takes the image worker a few hundred
    milliseconds."""
    w = h = 7000
    rows = (b"\x00" + b"\x80" * (w * 3)) * h
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(rows, 6)) + png_chunk(b"IEND", b""))


def test_upload_being_decoded_does_not_hold_up_other_clients(make_arg_server):
    """With a single polling thread, a read on another connection is answered
    while an upload is still being decoded: decoding runs off that thread."""
    s = make_arg_server(["--threads", "1"])
    pid = s.client("alice").create("Person")
    auth = {"Authorization": basic("alice", s.users["alice"][1])}
    body = slow_png()
    up, rd = RawConn(s.port, timeout=60), RawConn(s.port)
    info = f"/api/v1/Person/{pid}/ImageInfo"
    rd.send_head("GET", info, auth)  # credentials checked and remembered
    assert rd.read_response()[0] == 200
    up.send_head("PUT", f"/api/v1/Person/{pid}/Image",
                 {**auth, "Content-Type": "image/png", "Content-Length": str(len(body))})
    up.send(body)
    time.sleep(0.02)  # the server has the body: the worker is decoding it
    t0 = time.monotonic()
    rd.send_head("GET", info, auth)
    status = rd.read_response(timeout=30)[0]
    read_s = time.monotonic() - t0
    upload_pending = not up.readable()
    assert status == 200
    up_status, _, up_body = up.read_response(timeout=60)
    assert up_status == 200, up_body[:300]
    assert upload_pending, f"the read waited {read_s:.3f} s, until the upload was answered"


def test_password_being_checked_does_not_hold_up_other_clients(make_arg_server):
    """With a single polling thread, a request whose Basic credentials must
    first be hashed (Argon2id, tens of milliseconds) does not hold up a
    request on another connection whose credentials are already known."""
    s = make_arg_server(["--threads", "1"])
    pid = s.client("alice").create("Person")
    info = f"/api/v1/Person/{pid}/ImageInfo"
    alice = {"Authorization": basic("alice", s.users["alice"][1])}
    fresh = {"Authorization": basic("bob", s.users["bob"][1])}  # never used yet
    known, new = RawConn(s.port), RawConn(s.port)
    known.send_head("GET", info, alice)
    assert known.read_response()[0] == 200  # alice's value is remembered now
    new.send_head("GET", info, fresh)
    time.sleep(0.005)  # the server has bob's request: his password is being hashed
    known.send_head("GET", info, alice)
    status = known.read_response(timeout=30)[0]
    new_pending = not new.readable()
    assert status == 200
    assert new.read_response(timeout=30)[0] == 200
    assert new_pending, "alice's read waited until bob's password was checked"
