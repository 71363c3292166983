"""Pictures are decoded in crmblob-img worker processes, never in the server.

A worker that dies on a picture costs that request only: an upload it was
checking, or a variant it was drawing, answers 503 with Retry-After (the
picture is not known to be at fault), and the next request gets a fresh
worker; a worker killed while idle is replaced without the next request
noticing. An idle server has no worker and maps no
decoder library.
"""
import os
import signal
import time

from conftest import assert_error, child_pids, data


def worker_pids(server_pid):
    return child_pids(server_pid, "crmblob-img")


def maps_of(pid):
    with open(f"/proc/{pid}/maps") as f:
        return f.read()


def test_server_links_no_decoder_and_starts_workers_on_demand(fresh):
    c = fresh.client("alice")
    pid = c.create("Person")
    assert "libvips" not in maps_of(fresh.proc.pid)
    assert worker_pids(fresh.proc.pid) == []          # idle: no worker yet
    c.put_image("Person", pid, data("photo.jpg"))
    kids = worker_pids(fresh.proc.pid)
    assert len(kids) == 1 and "libvips" in maps_of(kids[0])
    assert "libvips" not in maps_of(fresh.proc.pid)   # still none in the server


def threads_gone(pid):
    """The process is gone, or only its (zombie) leader is left."""
    try:
        return os.listdir(f"/proc/{pid}/task") in ([], [str(pid)])
    except OSError:
        return True


def test_killed_worker_is_replaced(fresh):
    c = fresh.client("alice")
    pid = c.create("Person")
    c.put_image("Person", pid, data("photo.jpg"))
    killed = worker_pids(fresh.proc.pid)
    for k in killed:
        os.kill(k, signal.SIGKILL)
    # until its last thread has exited, a killed worker's socket stays open:
    # a call sent into it meanwhile reads end of file, which cannot be told
    # from a worker the picture killed (503). Wait until it is truly dead.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(threads_gone(k) for k in killed):
        time.sleep(0.02)
    # the next call finds the worker dead before it takes the call: a new one
    # does. Should the call still reach the dying worker's socket (its end
    # closes with its last thread, which a loaded machine can delay beyond
    # what /proc shows), it is answered as any killed worker's call: 503 with
    # Retry-After (SPEC 10), and the call after it gets a fresh worker.
    r = c.get_image("Person", pid, params={"w": 40})
    if r.status_code == 503:
        assert int(r.headers["Retry-After"]) >= 1
        r = c.get_image("Person", pid, params={"w": 40})
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/jpeg"
    assert fresh.alive()


def test_worker_that_dies_fails_the_upload_with_503_not_the_server(make_server, tmp_path):
    crash = tmp_path / "crash-img"
    crash.write_text("#!/bin/sh\nexit 3\n")   # a decoder that dies at once
    crash.chmod(0o755)
    s = make_server(env={"CRMBLOB_IMG_WORKER": str(crash)})
    c = s.client("alice")
    pid = c.create("Person")
    r = c.put("/api/v1/Person/%d/Image" % pid, data=data("small.png"),
              headers={"Content-Type": "image/png"})
    body = assert_error(r, 503)
    assert int(r.headers["Retry-After"]) >= 1
    assert "try again" in body["ErrorMessage"]
    assert c.get(f"/api/v1/Person/{pid}/ImageInfo").json()["BlobId"] == 0
    # placeholders are drawn by the worker too: unavailable, not a crash
    r = c.get_image("Person", pid, params={"ifBlank": "SrNoPhoto"})
    assert_error(r, 503)
    assert s.alive()
    assert "image worker" in s.log()


def test_missing_worker_stops_the_start(make_server, tmp_path):
    s = make_server(env={"CRMBLOB_IMG_WORKER": str(tmp_path / "nowhere")}, start=False)
    try:
        s.start()
        started = True
    except AssertionError as e:
        started = False
        assert "image worker" in str(e)
    assert not started
