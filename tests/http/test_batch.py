"""Batch tasks (issue 21): the REST BatchTask routes, the Batch agent and the
BLOB agent's GetOutputFromBatch / CleanupBatchTask, the runner behind them.

The servers here run with CRMBLOB_TEST_JOBS=1, which adds the test suite's
job crmblob.test.sleep (ParameterObject {"Seconds": "N"}; any editor may
start it; its output is the line "slept N s"): a job as long as a test
needs, to follow, stop, cut with kill -9 and share between two servers.
The real jobs (crmblob.export, crmblob.check) are started here too; their
own tests are in test_jobs*.py.
"""
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import time

import pytest

from conftest import (DATA, DEFAULT_USERS, REPO, TEST_DB, Server, assert_error)

TEST_JOBS = {"CRMBLOB_TEST_JOBS": "1"}
SLEEP = "crmblob.test.sleep"
TASK = "/api/v1/BatchTask"
AGENT = "/api/v1/Agents/Batch"
BLOB_AGENT = "/api/v1/Agents/BLOB"
FINISHED = ("Succeeded", "Failed")


@pytest.fixture(scope="module")
def bsrv(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("batch"), env=TEST_JOBS)
    s.create_users()
    s.start()
    yield s
    if s.alive():
        assert s.stop() == 0, s.log()[-2000:]


def start(c, name, params=None, via="rest"):
    info = {"Name": name, "ParameterObject": params or {}}
    if via == "rest":
        r = c.post(TASK, json=info)
    else:
        r = c.post(f"{AGENT}/StartBatchJob", json={"BatchTaskInfo": info})
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
    tid = r.json()
    assert isinstance(tid, int) and tid > 0, r.text
    return tid


def info(c, tid, via="rest"):
    if via == "rest":
        r = c.get(f"{TASK}/{tid}")
        assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
    else:
        r = c.post(f"{AGENT}/GetBatchTaskInfo", json={"Id": tid})
        assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
    return r.json()


def wait_for(c, tid, pred, what, timeout=20.0, via="rest", seen=None):
    t0 = time.monotonic()
    while True:
        i = info(c, tid, via)
        if seen is not None:
            seen.append(i)
        if pred(i):
            return i
        assert time.monotonic() - t0 < timeout, f"task {tid} not {what} after {timeout}s: {i}"
        time.sleep(0.05)


def state_is(*states):
    return lambda i: i["State"] in states


def output(c, tid):
    return c.post(f"{BLOB_AGENT}/GetOutputFromBatch", json={"BatchTaskId": tid},
                  headers={"Accept": "application/octet-stream"})


# ---- start, follow, output ---------------------------------------------------

def test_export_started_over_rest_followed_to_succeeded(bsrv):
    """An export of the data set over REST: New/Started with truthful
    progress, Succeeded at 100 %, its tar archive streamed by
    GetOutputFromBatch holding each picture byte for byte and the manifest."""
    admin = bsrv.client("admin")
    pics = {}
    for name in ("small.png", "small.jpg", "small.gif"):
        pid = admin.create("Person")
        body = (DATA / name).read_bytes()
        admin.put_image("Person", pid, body)
        pics[pid] = body
    tid = start(admin, "crmblob.export", {"Entity": "person"})
    seen = []
    done = wait_for(admin, tid, state_is(*FINISHED), "finished", seen=seen)
    assert done["State"] == "Succeeded", done
    assert all(s["State"] in ("New", "Started", "Succeeded") for s in seen), seen
    pcts = [s["ProgressPercent"] for s in seen]
    assert pcts == sorted(pcts) and pcts[-1] == 100, pcts
    assert done["StartCount"] == 1 and done["Name"] == "crmblob.export"
    assert done["LastStarted"] >= done["Created"], done
    assert done["FileName"].endswith(".tar"), done
    r = output(admin, tid)
    assert r.status_code == 200, r.text[:300]
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        names = tar.getnames()
        assert names[-1] == "manifest.jsonl", names
        manifest = [json.loads(line) for line in
                    tar.extractfile("manifest.jsonl").read().decode().splitlines()]
        got = {}
        for m in manifest:
            if m.get("File"):
                got[m["File"]] = tar.extractfile(m["File"]).read()
    for pid, body in pics.items():
        assert any(v == body for k, v in got.items() if re.search(rf"person/{pid}\.", k)), (
            pid, list(got))


def test_check_started_over_the_agent(bsrv):
    """StartBatchJob and GetBatchTaskInfo of the Batch agent; the lists by
    name and state name it."""
    admin = bsrv.client("admin")
    tid = start(admin, "crmblob.check", via="agent")
    done = wait_for(admin, tid, state_is(*FINISHED), "finished", via="agent")
    assert done["State"] == "Succeeded", done
    r = admin.post(f"{AGENT}/GetBatchTaskInfosByNameAndState",
                   json={"Name": "crmblob.check", "State": "Succeeded"})
    assert r.status_code == 200 and tid in [t["Id"] for t in r.json()], r.text[:300]
    r = admin.get(f"{TASK}/Succeeded")
    assert r.status_code == 200 and tid in [t["Id"] for t in r.json()], r.text[:300]
    r = admin.get(TASK)
    assert r.status_code == 200 and tid in [t["Id"] for t in r.json()["value"]], r.text[:300]


def test_xml_carrier(bsrv):
    admin = bsrv.client("admin")
    tid = start(admin, SLEEP, {"Seconds": "0"})
    wait_for(admin, tid, state_is("Succeeded"), "Succeeded")
    r = admin.get(f"{TASK}/{tid}", headers={"Accept": "application/xml"})
    assert r.status_code == 200 and r.text.startswith("<?xml"), r.text[:200]
    assert f"<Id>{tid}</Id>" in r.text and "<State>Succeeded</State>" in r.text, r.text[:600]


def test_unknown_job_and_agent_nulls(bsrv):
    admin = bsrv.client("admin")
    r = admin.post(TASK, json={"Name": "crmblob.nothing"})
    assert_error(r, 400)
    r = admin.post(f"{AGENT}/GetBatchTaskInfo", json={"Id": 2000000000})
    assert r.status_code == 200 and r.json() is None, r.text
    r = admin.get(f"{TASK}/2000000000")
    assert_error(r, 404)
    r = output(admin, 2000000000)
    assert r.status_code == 200 and r.content == b"", r.content[:100]
    r = admin.post(f"{AGENT}/UpdateBatchTask", json={"BatchTaskInfo": {"Id": 2000000000}})
    assert r.status_code == 200 and r.json() is None, r.text


# ---- stop, restart -------------------------------------------------------------

def test_stop_ends_a_running_job(bsrv):
    admin = bsrv.client("admin")
    tid = start(admin, SLEEP, {"Seconds": "60"})
    wait_for(admin, tid, state_is("Started"), "Started")
    t0 = time.monotonic()
    r = admin.post(f"{TASK}/{tid}/Stop")
    assert r.status_code == 200 and r.json() is True, r.text
    done = wait_for(admin, tid, state_is(*FINISHED), "finished", timeout=10)
    assert done["State"] == "Failed" and done["Result"].startswith("Stopped"), done
    assert time.monotonic() - t0 < 5, "a stop took longer than a heartbeat and a poll"
    assert done["FileName"] == "" and output(admin, tid).content == b""
    r = admin.post(f"{TASK}/{tid}/Stop")
    assert r.status_code == 200 and r.json() is False, r.text


def test_kill9_mid_job_then_restart_is_failed(make_server):
    s = make_server(env=TEST_JOBS)
    admin = s.client("admin")
    tid = start(admin, SLEEP, {"Seconds": "120"})
    wait_for(admin, tid, lambda i: i["State"] == "Started" and i["ProgressPercent"] >= 0,
             "Started")
    s.kill9()
    s.start()
    admin = s.client("admin")
    done = wait_for(admin, tid, state_is(*FINISHED), "finished", timeout=15)
    assert done["State"] == "Failed" and "Interrupted" in done["Result"], done
    # the runner is there again: a new task runs
    tid2 = start(admin, SLEEP, {"Seconds": "0"})
    assert wait_for(admin, tid2, state_is(*FINISHED), "finished")["State"] == "Succeeded"


# ---- cleanup -------------------------------------------------------------------

def _count(db, sql, *args):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql, args).fetchone()[0]
    finally:
        con.close()


def test_cleanup_leaves_nothing_behind(bsrv):
    """CleanupBatchTask removes the task, its output BLOB record and its
    bytes (SQLite: looked up in the database file itself)."""
    admin = bsrv.client("admin")
    tid = start(admin, SLEEP, {"Seconds": "0"})
    wait_for(admin, tid, state_is("Succeeded"), "Succeeded")
    assert output(admin, tid).content == b"slept 0 s\n"
    blob = None
    if not bsrv.pg_schema:
        blob = _count(bsrv.db, "SELECT output_blob FROM batch_task WHERE id = ?", tid)
        assert blob and _count(bsrv.db, "SELECT count(*) FROM blob WHERE id = ?", blob) == 1
    r = admin.post(f"{BLOB_AGENT}/CleanupBatchTask", json={"BatchTaskId": tid})
    assert r.status_code == 204, r.text
    assert_error(admin.get(f"{TASK}/{tid}"), 404)
    assert output(admin, tid).content == b""
    if blob:
        assert _count(bsrv.db, "SELECT count(*) FROM batch_task WHERE id = ?", tid) == 0
        assert _count(bsrv.db, "SELECT count(*) FROM blob WHERE id = ?", blob) == 0
        r = admin.get(f"{BLOB_AGENT}/GetBlobEntity", params={"blobEntityId": blob})
        r = admin.post(f"{BLOB_AGENT}/GetBlobEntity?blobEntityId={blob}")
        assert r.status_code == 200 and r.json() is None, r.text


def test_deleting_a_running_task_stops_its_job(bsrv):
    admin = bsrv.client("admin")
    tid = start(admin, SLEEP, {"Seconds": "60"})
    wait_for(admin, tid, state_is("Started"), "Started")
    assert admin.delete(f"{TASK}/{tid}").status_code == 204
    assert_error(admin.get(f"{TASK}/{tid}"), 404)
    t0 = time.monotonic()
    while f"task {tid} (crmblob.test.sleep) ended: stopped" not in bsrv.log():
        assert time.monotonic() - t0 < 5, "the job of a deleted task went on"
        time.sleep(0.05)


def test_delete_batch_tasks(bsrv):
    admin = bsrv.client("admin")
    ids = [start(admin, SLEEP, {"Seconds": "0"}) for _ in range(2)]
    for t in ids:
        wait_for(admin, t, state_is("Succeeded"), "Succeeded")
    r = admin.post(f"{AGENT}/DeleteBatchTasks", json={"BatchTaskIds": ids})
    assert r.status_code == 204, r.text
    for t in ids:
        assert_error(admin.get(f"{TASK}/{t}"), 404)


# ---- rights --------------------------------------------------------------------

def test_viewer_and_editor_refused(bsrv):
    victor, alice = bsrv.client("victor"), bsrv.client("alice")
    for c in (victor, alice):
        for job in ("crmblob.export", "crmblob.check", "crmblob.rekey"):
            assert_error(c.post(TASK, json={"Name": job}), 403)
            assert_error(c.post(f"{AGENT}/StartBatchJob",
                                json={"BatchTaskInfo": {"Name": job}}), 403)
    # a viewer starts nothing, not even what an editor may
    assert_error(victor.post(TASK, json={"Name": SLEEP}), 403)


def test_users_see_only_their_own_tasks(bsrv):
    admin, alice, bob, victor = (bsrv.client(u) for u in ("admin", "alice", "bob", "victor"))
    mine = start(alice, SLEEP, {"Seconds": "60"})
    theirs = start(admin, SLEEP, {"Seconds": "0"})
    try:
        assert info(alice, mine)["AssociateId"] > 0
        assert_error(alice.get(f"{TASK}/{theirs}"), 404)
        assert_error(bob.get(f"{TASK}/{mine}"), 404)
        r = bob.post(f"{AGENT}/GetBatchTaskInfo", json={"Id": mine})
        assert r.status_code == 200 and r.json() is None
        ids = [t["Id"] for t in alice.get(TASK).json()["value"]]
        assert mine in ids and theirs not in ids, ids
        assert mine not in [t["Id"] for t in bob.get(f"{TASK}/All").json()]
        assert {mine, theirs} <= {t["Id"] for t in admin.get(TASK).json()["value"]}
        assert_error(bob.post(f"{TASK}/{mine}/Stop"), 404)
        assert_error(victor.post(f"{TASK}/{mine}/Stop"), 403)
        assert_error(bob.delete(f"{TASK}/{mine}"), 404)
    finally:
        r = alice.post(f"{TASK}/{mine}/Stop")
        assert r.status_code == 200, r.text
    assert wait_for(alice, mine, state_is(*FINISHED), "finished")["State"] == "Failed"


# ---- two servers on one data set --------------------------------------------------

def _ran_on(cluster, tid):
    pat = re.compile(rf"batch: task {tid} \(")
    return [i for i, s in enumerate(cluster.servers) if pat.search(s.log())]


def test_two_servers_claim_once_and_stop_through_the_other(make_cluster):
    c = make_cluster(serve_args=["--batch-jobs", "2"], envs=(TEST_JOBS, TEST_JOBS))
    admin = c.client("admin", server=0)
    ids = [start(admin, SLEEP, {"Seconds": "1"}) for _ in range(6)]
    for t in ids:
        done = wait_for(admin, t, state_is(*FINISHED), "finished", timeout=30)
        assert done["State"] == "Succeeded" and done["StartCount"] == 1, done
        assert len(_ran_on(c, t)) == 1, (t, _ran_on(c, t))
    long = start(admin, SLEEP, {"Seconds": "60"})
    wait_for(admin, long, state_is("Started"), "Started")
    t0 = time.monotonic()
    while not _ran_on(c, long):
        assert time.monotonic() - t0 < 5
        time.sleep(0.05)
    runner = _ran_on(c, long)[0]
    other = c.client("admin", server=1 - runner)
    assert info(other, long)["State"] == "Started"
    r = other.post(f"{TASK}/{long}/Stop")
    assert r.status_code == 200 and r.json() is True, r.text
    done = wait_for(other, long, state_is(*FINISHED), "finished", timeout=10)
    assert done["State"] == "Failed" and done["Result"].startswith("Stopped"), done


# ---- the official client ----------------------------------------------------------

CLIENT_DIR = REPO / "tests" / "client"
PACKAGE = CLIENT_DIR / "node_modules" / "@superoffice" / "webapi"


def test_official_client_batch_agent(bsrv):
    if shutil.which("node") is None or not (PACKAGE / "package.json").is_file():
        if os.environ.get("CRMBLOB_REQUIRE_CLIENT"):
            pytest.fail("CRMBLOB_REQUIRE_CLIENT is set but the official client cannot run")
        pytest.skip("official client not available (bash scripts/client-deps.sh)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMBLOB_")}
    env.update({"CRMBLOB_URL": bsrv.base, "CRMBLOB_USER": "admin",
                "CRMBLOB_PASSWORD": DEFAULT_USERS["admin"][1]})
    p = subprocess.run(["node", str(CLIENT_DIR / "batch_agent.js")], cwd=str(REPO), env=env,
                       capture_output=True, text=True, timeout=120)
    lines = p.stdout.splitlines()
    want = ["startBatchJob", "getBatchTaskInfo.started", "stopBatchJob", "stopBatchJob.ended",
            "getBatchTaskInfo.succeeded", "getOutputFromBatch", "cleanupBatchTask"]
    assert p.returncode == 0 and all(f"ok {w}" in lines for w in want), (
        p.stdout[-3000:] + p.stderr[-2000:])
