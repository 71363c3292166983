"""An acknowledged write survives kill -9; a half-sent upload never becomes visible."""
import signal
import socket
import struct
import time

import pytest

from conftest import RawConn, assert_error, basic, data, start_with_failing_disk, sqlite_only


def snapshot(c, kind, eid):
    r = c.get_image(kind, eid)
    return (r.status_code, r.content if r.status_code == 200 else None,
            r.headers.get("Content-Type") if r.status_code == 200 else None,
            c.info(kind, eid))


def start_partial_upload(s, kind, eid, body, fraction=0.5):
    conn = RawConn(s.port)
    conn.send_head("PUT", f"/api/v1/{kind}/{eid}/Image", {
        "Authorization": basic("alice", s.users["alice"][1]),
        "Content-Type": "image/jpeg",
        "Content-Length": str(len(body)),
    })
    conn.send(body[:int(len(body) * fraction)])
    return conn


def test_acknowledged_writes_survive_kill9(fresh):
    s = fresh
    c = s.client("alice")
    pid = c.create("Person", Firstname="Durable")
    prod = c.create("Product", Name="Durable product")
    bid = c.put_image("Person", pid, data("photo.jpg"), "image/jpeg")
    c.put_image("Product", prod, data("small_be.tif"))
    assert c.put_info("Person", pid, {"Description": "survives", "ExtraInfo": "kill -9"}
                      ).status_code == 200
    before_p = snapshot(c, "Person", pid)
    before_q = snapshot(c, "Product", prod)
    entity = c.get(f"/api/v1/Person/{pid}").json()

    s.kill9()
    s.start()
    c = s.client("alice")
    assert c.get(f"/api/v1/Person/{pid}").json() == entity
    after_p = snapshot(c, "Person", pid)
    assert after_p == before_p
    assert after_p[3]["BlobId"] == bid
    assert snapshot(c, "Product", prod) == before_q
    # still writable, BlobIds stay unique after restart
    other = c.create("Person")
    assert c.put_image("Person", other, data("small.png")) not in (bid, before_q[3]["BlobId"])


def test_deletes_survive_kill9(fresh):
    s = fresh
    c = s.client("admin")
    p1 = c.create("Person")
    p2 = c.create("Contact")
    c.put_image("Person", p1, data("small.png"))
    c.put_image("Contact", p2, data("small.png"))
    assert c.delete(f"/api/v1/Person/{p1}/Image").status_code == 204
    assert c.delete(f"/api/v1/Contact/{p2}").status_code == 204
    s.kill9()
    s.start()
    c = s.client("admin")
    assert_error(c.get_image("Person", p1), 404)
    assert c.info("Person", p1)["BlobId"] == 0
    assert_error(c.get(f"/api/v1/Contact/{p2}"), 404)


@pytest.mark.parametrize("had_image", [True, False])
def test_kill9_during_upload_leaves_no_partial_image(fresh, had_image):
    s = fresh
    c = s.client("alice")
    pid = c.create("Person")
    if had_image:
        c.put_image("Person", pid, data("small.png"))
        c.put_info("Person", pid, {"Description": "previous"})
    before = snapshot(c, "Person", pid)
    big = data("medium.jpg")
    assert len(big) > 150_000
    conn = start_partial_upload(s, "Person", pid, big)
    time.sleep(0.5)
    s.kill9()
    conn.close()
    s.start()
    c = s.client("alice")
    after = snapshot(c, "Person", pid)
    assert after == before, "a half-sent upload must not change the stored image"
    if not had_image:
        assert after[0] == 404 and after[3]["BlobId"] == 0
    # and the full upload works afterwards
    c.put_image("Person", pid, big, "image/jpeg")
    assert c.get_image("Person", pid).content == big


def test_client_disconnect_mid_upload(fresh):
    s = fresh
    c = s.client("alice")
    pid = c.create("Person")
    c.put_image("Person", pid, data("small.gif"))
    before = snapshot(c, "Person", pid)
    for fraction in (0.1, 0.5, 0.99):
        conn = start_partial_upload(s, "Person", pid, data("medium.jpg"), fraction)
        time.sleep(0.2)
        conn.close()
        time.sleep(0.2)
        assert s.alive()
        assert snapshot(c, "Person", pid) == before
    # abrupt reset (RST instead of FIN)
    conn = start_partial_upload(s, "Person", pid, data("medium.jpg"), 0.5)
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    time.sleep(0.3)
    assert s.alive()
    assert snapshot(c, "Person", pid) == before
    # the server keeps serving and accepting uploads
    c.put_image("Person", pid, data("small.png"))
    assert c.get_image("Person", pid).content == data("small.png")


def test_client_disconnect_mid_multipart(fresh):
    s = fresh
    c = s.client("alice")
    pid = c.create("Project")
    c.put_image("Project", pid, data("small.jpg"))
    before = snapshot(c, "Project", pid)
    boundary = "XyZ123"
    img = data("medium.jpg")
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"projectimg\"; "
            f"filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode() + img + \
        f"\r\n--{boundary}--\r\n".encode()
    conn = RawConn(s.port)
    conn.send_head("POST", f"/api/v1/Project/{pid}/Image", {
        "Authorization": basic("alice", s.users["alice"][1]),
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(body)),
    })
    conn.send(body[:len(body) - 1000])
    time.sleep(0.3)
    conn.close()
    time.sleep(0.3)
    assert s.alive()
    assert snapshot(c, "Project", pid) == before


def test_restart_keeps_data_and_users(fresh):
    s = fresh
    c = s.client("bob")
    pid = c.create("Person")
    c.put_image("Person", pid, data("small_le.tif"))
    before = snapshot(c, "Person", pid)
    s.restart()
    c = s.client("bob")
    assert snapshot(c, "Person", pid) == before
    assert_error(s.client("bob", "wrong").get(f"/api/v1/Person/{pid}"), 401)


def write_concurrently(s, people, writes, word):
    """One client per person PUTs ImageInfo `writes` times, all at once;
    answers {pid: last Description acknowledged}. Every answer must be 200."""
    import threading
    last = {}
    errors = []

    def writer(pid):
        w = s.client("alice")
        for n in range(writes):
            r = w.put_info("Person", pid, {"Description": f"{word} {n}"})
            if r.status_code != 200:
                errors.append(r.status_code)
                return
            last[pid] = r.json()["Description"]

    threads = [threading.Thread(target=writer, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return last


@sqlite_only("--durable's group commit and its log line (on PostgreSQL every commit is synchronous and its own)")
def test_durable_group_commits_survive_kill9(make_arg_server):
    """--durable: concurrent writers share commits, yet every acknowledged
    write is on disk when it is answered."""
    s = make_arg_server(["--durable", "--threads", "16"])
    c = s.client("alice")
    people = [c.create("Person", Firstname=f"G{i}") for i in range(12)]
    last = write_concurrently(s, people, 15, "write")
    assert "group commit" in s.log()
    s.kill9()
    s.start()
    c = s.client("alice")
    for pid in people:
        assert c.info("Person", pid)["Description"] == last[pid] == "write 14"


@sqlite_only("--durable's group commits counted in the log (on PostgreSQL every commit is synchronous and its own)")
def test_durable_writes_wait_for_the_disk_without_a_thread(make_arg_server):
    """--durable with a single polling thread: an answer waiting for its
    flush does not keep that thread, so the writes of the other clients go
    on meanwhile and share the next flush (with the thread waiting, every
    group would hold one write)."""
    import re
    s = make_arg_server(["--durable", "--threads", "1"])
    c = s.client("alice")
    people = [c.create("Person", Firstname=f"H{i}") for i in range(16)]
    last = write_concurrently(s, people, 20, "held")
    assert s.stop() == 0
    m = re.findall(r"store: (\d+) writes in (\d+) group commits", s.log())
    assert m, s.log()[-2000:]
    writes, commits = (int(v) for v in m[-1])
    assert writes > commits, (writes, commits)  # some flush served several
    s.start()
    c = s.client("alice")
    for pid in people:
        assert c.info("Person", pid)["Description"] == last[pid] == "held 19"


@sqlite_only("failsync fails crmblob's fdatasync of the WAL (PostgreSQL flushes in its own server)")
def test_durable_write_the_disk_refuses_answers_503(make_arg_server, tmp_path):
    """--durable: a write whose flush fails is not acknowledged: the answer
    it was holding becomes 503 with the error carrier; reads go on, and
    writes are refused until a restart (whose recovery decides what the
    disk kept)."""
    s, trigger = start_with_failing_disk(make_arg_server, tmp_path, ["--durable", "--threads", "1"])
    c = s.client("alice")
    pid = c.create("Person", Firstname="Disk")
    assert c.put_info("Person", pid, {"Description": "kept"}).status_code == 200
    trigger.write_text("")
    assert_error(c.put_info("Person", pid, {"Description": "refused"}), 503)
    assert_error(c.put_info("Person", pid, {"Description": "later"}), 503)
    r = c.get(f"/api/v1/Person/{pid}")
    assert r.status_code == 200
    assert "failed" in s.log() and "refused until a restart" in s.log()
    trigger.unlink()
    s.stop()
    s.start()
    c = s.client("alice")
    assert c.info("Person", pid)["Description"] in ("kept", "refused")
    assert c.put_info("Person", pid, {"Description": "again"}).status_code == 200


def test_durable_sigterm_while_answers_wait_for_the_disk(make_arg_server):
    """--durable: SIGTERM while writes are waiting for their flush: the
    server answers them, exits 0 (no connection is left suspended), and
    every acknowledged write is there after the restart (a write sent as
    the server stopped may be kept without its answer arriving)."""
    import threading
    s = make_arg_server(["--durable", "--threads", "1"])
    c = s.client("alice")
    people = [c.create("Person", Firstname=f"T{i}") for i in range(8)]
    acked = {}

    def writer(pid):
        w = s.client("alice")
        n = 0
        while True:
            try:
                r = w.put_info("Person", pid, {"Description": f"w {n}"})
            except Exception:
                return  # the server has stopped
            if r.status_code != 200:
                return
            acked[pid] = n
            n += 1

    threads = [threading.Thread(target=writer, args=(p,)) for p in people]
    for t in threads:
        t.start()
    time.sleep(0.5)
    s.proc.send_signal(signal.SIGTERM)
    rc = s.proc.wait(timeout=20)
    for t in threads:
        t.join()
    assert rc == 0, (rc, s.log()[-600:])
    s.start()
    c = s.client("alice")
    for pid in people:
        kept = int(c.info("Person", pid)["Description"].split()[1])
        assert acked[pid] <= kept <= acked[pid] + 1, (pid, acked[pid], kept)
