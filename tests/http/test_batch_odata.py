"""Batch tasks (issue 21): UpdateBatchTask / PUT /api/v1/BatchTask/{Id}, the
OData options of GET /api/v1/BatchTask and $select on the Batch agent.

Two servers per module, both with CRMBLOB_TEST_JOBS=1 (the job
crmblob.test.sleep, ParameterObject {"Seconds": "N"}, which any editor may
start): `idle` runs no jobs (--batch-jobs 0), so its tasks stay New as long
as a test needs; `busy` runs them (one at a time), for Started and finished
tasks. Lists are read as each user sees them: a user's tasks only.
"""
import os
import shutil
import subprocess
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

from conftest import DEFAULT_USERS, REPO, ArgServer, assert_error

TEST_JOBS = {"CRMBLOB_TEST_JOBS": "1"}
SLEEP = "crmblob.test.sleep"
TASK = "/api/v1/BatchTask"
AGENT = "/api/v1/Agents/Batch"
FINISHED = ("Succeeded", "Failed")


def _server(tmp_path_factory, name, args=()):
    s = ArgServer(tmp_path_factory.mktemp(name), env=TEST_JOBS, serve_args=args)
    s.create_users()
    s.start()
    return s


@pytest.fixture(scope="module")
def idle(tmp_path_factory):
    s = _server(tmp_path_factory, "idle", ["--batch-jobs", "0"])
    yield s
    assert s.stop() == 0, s.log()[-2000:]


@pytest.fixture(scope="module")
def busy(tmp_path_factory):
    s = _server(tmp_path_factory, "busy")
    yield s
    assert s.stop() == 0, s.log()[-2000:]


def start(c, params=None, desc=None, name=SLEEP):
    info = {"Name": name, "ParameterObject": params if params is not None else {"Seconds": "0"}}
    if desc is not None:
        info["Description"] = desc
    r = c.post(TASK, json=info)
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
    return r.json()


def get(c, tid):
    r = c.get(f"{TASK}/{tid}")
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
    return r.json()


def wait_for(c, tid, states, timeout=20.0):
    t0 = time.monotonic()
    while True:
        i = get(c, tid)
        if i["State"] in states:
            return i
        assert time.monotonic() - t0 < timeout, f"task {tid} not {states}: {i}"
        time.sleep(0.05)


def put(c, tid, body, **kw):
    return c.put(f"{TASK}/{tid}", json=body, **kw)


def agent_update(c, info, query=""):
    return c.post(f"{AGENT}/UpdateBatchTask{query}", json={"BatchTaskInfo": info})


def page(c, **opts):
    q = urllib.parse.urlencode(opts)
    r = c.get(f"{TASK}?{q}" if q else TASK)
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
    return r.json()


def ids(c, **opts):
    return [t["Id"] for t in page(c, **opts)["value"]]


def error_text(r):
    return r.json().get("ErrorMessage", "") + " " + r.json().get("Message", "")


# ---- UpdateBatchTask: what changes, what does not ------------------------------

def test_new_task_description_and_parameters_change(idle):
    alice = idle.client("alice")
    tid = start(alice, {"Seconds": "5"}, desc="first")
    r = put(alice, tid, {"Description": "second", "ParameterObject": {"Seconds": "7"}})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["Id"] == tid and got["State"] == "New", got
    assert got["Description"] == "second" and got["ParameterObject"] == {"Seconds": "7"}, got
    assert get(alice, tid) == got
    rights = {k: v["FieldRight"]["Mask"] for k, v in got["FieldProperties"].items()}
    assert rights["Description"] == rights["ParameterObject"] == "Update", rights
    assert {k for k, v in rights.items() if v == "Update"} == {"Description", "ParameterObject"}
    # members left out are kept (as PUT ImageInfo keeps them)
    r = put(alice, tid, {"ParameterObject": {"Seconds": "8"}})
    assert r.status_code == 200 and r.json()["Description"] == "second", r.text
    r = put(alice, tid, {"Description": "third"})
    assert r.status_code == 200 and r.json()["ParameterObject"] == {"Seconds": "8"}, r.text
    # the agent: BatchTaskInfo.Id names the task
    r = agent_update(alice, {"Id": tid, "Description": "by the agent"})
    assert r.status_code == 200 and r.json()["Description"] == "by the agent", r.text
    assert r.json()["ParameterObject"] == {"Seconds": "8"}


def test_server_written_members_are_ignored(idle):
    """As PUT ImageInfo ignores a BlobEntity's server-written fields: State,
    progress, Result/Response, FileName, dates, counts, owner, Name and Id
    in the body change nothing (the task named by the path is changed)."""
    alice = idle.client("alice")
    tid = start(alice, desc="mine")
    other = start(alice)
    before = get(alice, tid)
    body = dict(before)
    body.update({"Id": other, "Name": "crmblob.export", "AssociateId": 1, "State": "Succeeded",
                 "ProgressPercent": 99, "ProgressDescription": "faked", "Result": "faked",
                 "Response": "faked", "Request": "faked", "FileName": "faked.tar",
                 "StartCount": 7, "LastStarted": "2020-01-01T00:00:00Z",
                 "Created": "2020-01-01T00:00:00Z", "IsSystemTask": True,
                 "Description": "changed"})
    r = put(alice, tid, body)
    assert r.status_code == 200, r.text
    want = dict(before, Description="changed")
    assert r.json() == want
    assert get(alice, tid) == want
    assert get(alice, other)["Description"] != "changed"
    # a task sent back as read changes nothing
    r = put(alice, tid, get(alice, tid))
    assert r.status_code == 200 and r.json() == want


def test_started_and_finished_tasks_keep_their_parameters(busy):
    alice = busy.client("alice")
    tid = start(alice, {"Seconds": "60", "Note": "x"})
    try:
        run = wait_for(alice, tid, ("Started",))
        r = put(alice, tid, {"ParameterObject": {"Seconds": "1"}})
        assert_error(r, 400)
        assert "ParameterObject" in error_text(r) and "Started" in error_text(r), r.text
        r = agent_update(alice, {"Id": tid, "ParameterObject": {"Seconds": "1"}})
        assert_error(r, 400)
        # the same object (another order of its members) is no change
        r = put(alice, tid, {"ParameterObject": {"Note": "x", "Seconds": "60"},
                             "Description": "running"})
        assert r.status_code == 200, r.text
        assert r.json()["Description"] == "running" and r.json()["State"] == "Started"
        assert r.json()["StartCount"] == run["StartCount"] == 1
        props = r.json()["FieldProperties"]
        assert props["ParameterObject"]["FieldRight"]["Mask"] == "Read", props
        assert props["Description"]["FieldRight"]["Mask"] == "Update", props
    finally:
        assert alice.post(f"{TASK}/{tid}/Stop").status_code == 200
    done = wait_for(alice, tid, FINISHED)
    assert done["Description"] == "running", done
    r = put(alice, tid, {"Description": "kept for the record"})
    assert r.status_code == 200 and r.json()["Description"] == "kept for the record", r.text
    assert r.json()["State"] == done["State"] and r.json()["Result"] == done["Result"]
    r = put(alice, tid, {"ParameterObject": {"Seconds": "2"}})
    assert_error(r, 400)
    assert get(alice, tid)["ParameterObject"] == {"Seconds": "60", "Note": "x"}


def test_job_runs_with_the_parameters_changed_while_new(busy):
    """The one job slot is taken; the waiting task's parameters change; it
    then runs with them."""
    alice = busy.client("alice")
    blocker = start(alice, {"Seconds": "60"})
    try:
        wait_for(alice, blocker, ("Started",))
        tid = start(alice, {"Seconds": "60"})
        assert get(alice, tid)["State"] == "New"
        r = put(alice, tid, {"ParameterObject": {"Seconds": "0"}})
        assert r.status_code == 200 and r.json()["State"] == "New", r.text
    finally:
        assert alice.post(f"{TASK}/{blocker}/Stop").status_code == 200
    done = wait_for(alice, tid, FINISHED, timeout=15)  # 60 s would still run
    assert done["State"] == "Succeeded" and done["ParameterObject"] == {"Seconds": "0"}, done


def test_bad_update_bodies(idle):
    alice = idle.client("alice")
    tid = start(alice)
    assert_error(put(alice, tid, {"ParameterObject": "Seconds=1"}), 400)
    assert_error(put(alice, tid, {"ParameterObject": {"Seconds": {"deep": 1}}}), 400)
    assert_error(put(alice, tid, {"Description": 5}), 400)
    assert_error(put(alice, tid, {"Description": "x" * 5000}), 400)
    assert_error(agent_update(alice, {"Description": "no id"}), 400)
    assert_error(alice.post(f"{AGENT}/UpdateBatchTask", json={}), 400)
    assert_error(put(alice, "New", {"Description": "a state is no id"}), 400)
    assert get(alice, tid)["Description"] != "x"


def test_update_rights(idle):
    alice, bob, victor, admin = (idle.client(u) for u in ("alice", "bob", "victor", "admin"))
    tid = start(alice, desc="alice's")
    assert_error(put(bob, tid, {"Description": "bob's"}), 404)
    r = agent_update(bob, {"Id": tid, "Description": "bob's"})
    assert r.status_code == 200 and r.json() is None, r.text
    assert_error(put(victor, tid, {"Description": "victor's"}), 403)
    assert_error(agent_update(victor, {"Id": tid, "Description": "victor's"}), 403)
    assert_error(put(alice, 2000000000, {"Description": "none"}), 404)
    r = agent_update(alice, {"Id": 2000000000, "Description": "none"})
    assert r.status_code == 200 and r.json() is None, r.text
    assert get(alice, tid)["Description"] == "alice's"
    r = put(admin, tid, {"Description": "the admin's"})
    assert r.status_code == 200 and r.json()["AssociateId"] == get(alice, tid)["AssociateId"]
    assert get(alice, tid)["Description"] == "the admin's"


def test_update_xml_and_merge_patch(idle):
    alice = idle.client("alice")
    tid = start(alice, {"Seconds": "3"})
    xml = ("<BatchTaskInfo><Description>from XML</Description>"
           "<ParameterObject><Seconds>4</Seconds></ParameterObject></BatchTaskInfo>")
    r = alice.put(f"{TASK}/{tid}", data=xml.encode(),
                  headers={"Content-Type": "application/xml", "Accept": "application/xml"})
    assert r.status_code == 200 and r.text.startswith("<?xml"), r.text[:300]
    root = ET.fromstring(r.content)
    assert root.findtext("Description") == "from XML", r.text
    assert get(alice, tid)["ParameterObject"] == {"Seconds": "4"}
    xml = (f"<UpdateBatchTaskRequest><BatchTaskInfo><Id>{tid}</Id>"
           "<Description>agent XML</Description></BatchTaskInfo></UpdateBatchTaskRequest>")
    r = alice.post(f"{AGENT}/UpdateBatchTask", data=xml.encode(),
                   headers={"Content-Type": "application/xml", "Accept": "application/xml"})
    assert r.status_code == 200 and "<Description>agent XML</Description>" in r.text, r.text
    r = alice.put(f"{TASK}/{tid}", data=b'{"Description": "patched"}',
                  headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200 and r.json()["Description"] == "patched", r.text
    assert r.json()["ParameterObject"] == {"Seconds": "4"}
    r = alice.put(f"{TASK}/{tid}",
                  data=b'[{"op": "replace", "path": "/ParameterObject/Seconds", "value": "9"}]',
                  headers={"Content-Type": "application/json-patch+json"})
    assert r.status_code == 200 and r.json()["ParameterObject"] == {"Seconds": "9"}, r.text


def test_concurrent_updates_through_two_servers(make_cluster):
    """Description and ParameterObject written at once through both servers
    of one data set: every answer 200, none undoes another's field."""
    c = make_cluster(serve_args=["--batch-jobs", "0"], envs=(TEST_JOBS, TEST_JOBS))
    a0, a1 = c.client("alice", server=0), c.client("alice", server=1)
    tid = start(a0, {"Seconds": "0"})
    errors = []

    def writer(client, field, values):
        for v in values:
            body = {"Description": v} if field == "d" else {"ParameterObject": {"Seconds": v}}
            r = put(client, tid, body)
            if r.status_code != 200:
                errors.append((r.status_code, r.text[:200]))

    ds = [f"d{i}" for i in range(40)]
    ps = [str(i) for i in range(40)]
    ts = [threading.Thread(target=writer, args=(a0, "d", ds)),
          threading.Thread(target=writer, args=(a1, "p", ps))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    for cl in (a0, a1):
        final = get(cl, tid)
        assert final["Description"] == ds[-1] and final["ParameterObject"] == {"Seconds": ps[-1]}
        assert final["State"] == "New"


# ---- GET /api/v1/BatchTask: OData options ---------------------------------------

@pytest.fixture(scope="module")
def listed(idle):
    """Tasks of alice (five) and bob (two) on the idle server."""
    alice, bob = idle.client("alice"), idle.client("bob")
    a = [start(alice, desc=f"alpha {i}") for i in range(5)]
    b = [start(bob, desc=f"beta {i}") for i in range(2)]
    return {"alice": a, "bob": b}


def test_top_skip_and_next_link(idle, listed):
    alice = idle.client("alice")
    everything = ids(alice, **{"$top": 500})
    assert set(listed["alice"]) <= set(everything) and not set(listed["bob"]) & set(everything)
    assert everything == sorted(everything)
    got, link = [], f"{TASK}?$top=2"
    while link:
        r = alice.get(link)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["value"]) <= 2
        got += [t["Id"] for t in body["value"]]
        link = body.get("odata.nextLink")
    assert got == everything
    assert ids(alice, **{"$top": 2, "$skip": 1}) == everything[1:3]
    assert ids(alice, **{"$skip": 100000}) == []


def test_orderby(idle, listed):
    alice = idle.client("alice")
    mine = listed["alice"]
    got = ids(alice, **{"$orderby": "Id desc", "$filter": f"Id ge {mine[0]}"})
    assert got == sorted(got, reverse=True) and set(mine) <= set(got)
    rows = page(alice, **{"$orderBy": "Description desc,Id", "$filter": "Description begins 'ALPHA'"})
    assert [t["Description"] for t in rows["value"]] == [f"alpha {i}" for i in range(4, -1, -1)]


def test_filter_comparisons(idle, listed):
    alice, admin = idle.client("alice"), idle.client("admin")
    mine = listed["alice"]
    assert ids(alice, **{"$filter": f"Id eq {mine[2]}"}) == [mine[2]]
    assert ids(alice, **{"$filter": f"Id gt {mine[1]} and Id lt {mine[4]}"}) == mine[2:4]
    assert mine[0] not in ids(alice, **{"$filter": f"Id ne {mine[0]}", "$top": 500})
    assert set(mine) <= set(ids(alice, **{"$filter": f"Name eq '{SLEEP}' and State eq New",
                                           "$top": 500}))
    assert ids(alice, **{"$filter": "State eq Started"}) == []
    assert set(mine) <= set(ids(alice, **{"$filter": "State eq 'new'", "$top": 500}))
    assert ids(alice, **{"$filter": "Name eq 'crmblob.export'"}) == []
    assert ids(alice, **{"$filter": "description EQ 'ALPHA 3'"}) == [mine[3]]
    assert ids(alice, **{"$filter": f"startswith(Description, 'alpha 4') and Id ge {mine[0]}"}) \
        == [mine[4]]
    created = get(alice, mine[0])["Created"]
    assert set(mine) <= set(ids(alice, **{"$filter": f"Created ge '{created}'", "$top": 500}))
    assert ids(alice, **{"$filter": "Created lt '2000-01-01'"}) == []
    assert ids(alice, **{"$filter": "LastStarted gt '2000-01-01T00:00:00Z'"}) == []
    # quotes in a value
    tid = start(alice, desc="it's")
    assert ids(alice, **{"$filter": "Description eq 'it''s'"}) == [tid]
    assert admin.delete(f"{TASK}/{tid}").status_code == 204


def test_a_filter_never_shows_another_users_tasks(idle, listed):
    alice, bob, admin = idle.client("alice"), idle.client("bob"), idle.client("admin")
    bob_id = get(bob, listed["bob"][0])["AssociateId"]
    assert ids(alice, **{"$filter": f"AssociateId eq {bob_id}"}) == []
    assert ids(alice, **{"$filter": f"Id eq {listed['bob'][0]}"}) == []
    assert ids(alice, **{"$filter": "Description begins 'beta'"}) == []
    assert ids(bob, **{"$filter": f"AssociateId eq {bob_id}"}) == listed["bob"]
    assert ids(admin, **{"$filter": f"AssociateId eq {bob_id}"}) == listed["bob"]
    both = ids(admin, **{"$top": 500})
    assert set(listed["alice"]) | set(listed["bob"]) <= set(both)


def test_select_and_ignored_options(idle, listed):
    alice = idle.client("alice")
    rows = page(alice, **{"$select": "Id,state", "$filter": f"Id eq {listed['alice'][0]}"})
    assert rows["value"] == [{"Id": listed["alice"][0], "State": "New"}], rows
    # the reference's other options are ignored, as on the entity lists
    plain = ids(alice, **{"$top": 500})
    assert ids(alice, **{"$top": 500, "$mode": "Full", "$entities": "x", "$options": "GrandTotal=true",
                         "$context": "c", "$jsonSafe": "true", "$output": "Display"}) == plain
    r = alice.get(f"{TASK}?$top=2", headers={"Accept": "application/xml"})
    assert r.status_code == 200 and "<ODataSlimResponse" in r.text, r.text[:300]


@pytest.mark.parametrize("opts, names", [
    ({"$top": "0"}, "$top"),
    ({"$top": "501"}, "$top"),
    ({"$skip": "-1"}, "$skip"),
    ({"$orderby": "Nothing"}, "Nothing"),
    ({"$orderby": "Id sideways"}, "Id sideways"),
    ({"$select": "Id,Nothing"}, "Nothing"),
    ({"$filter": "Nothing eq 1"}, "Nothing eq 1"),
    ({"$filter": "Id eq"}, "$filter"),
    ({"$filter": "Id like 1"}, "like 1"),
    ({"$filter": "Id eq 'one'"}, "'one'"),
    ({"$filter": "State eq Bored"}, "Bored"),
    ({"$filter": "State eq All"}, "All"),
    ({"$filter": "Created gt 'yesterday'"}, "'yesterday'"),
    ({"$filter": "Id begins 1"}, "1"),
    ({"$filter": "Name eq 'open"}, "'open"),
    ({"$filter": "Id eq 1 or Id eq 2"}, "or Id eq 2"),
    ({"$filter": "startswith(Name 'x')"}, "'x')"),
    ({"$filter": "startswith(Name, 'x'"}, "startswith(Name, 'x'"),
    ({"$filter": " and ".join(["Id gt 0"] * 9)}, "Id gt 0"),
])
def test_bad_options_are_400_saying_which(idle, opts, names):
    r = idle.client("alice").get(f"{TASK}?{urllib.parse.urlencode(opts)}")
    assert_error(r, 400)
    assert names in error_text(r), (opts, r.text)


def test_filter_text_is_limited_in_bytes(idle, listed):
    """The store compares text values of at most 254 bytes: 127 'é' (254
    bytes) are a filter that matches nothing, 128 of them (256 bytes, 128
    characters) are 400 saying so -- never 500."""
    alice = idle.client("alice")
    assert ids(alice, **{"$filter": "Description eq '" + "\u00e9" * 127 + "'"}) == []
    for n in (128, 200, 254):
        r = alice.get(f"{TASK}?" + urllib.parse.urlencode(
            {"$filter": "Description eq '" + "\u00e9" * n + "'"}))
        assert_error(r, 400)
        assert "at most 254 bytes" in error_text(r), r.text[:300]
    r = alice.get(f"{TASK}?" + urllib.parse.urlencode({"$filter": "Name eq '" + "x" * 255 + "'"}))
    assert_error(r, 400)


# ---- $select on the Batch agent --------------------------------------------------

def test_select_on_agent_methods(idle, listed):
    alice = idle.client("alice")
    tid = listed["alice"][0]
    me = get(alice, tid)["AssociateId"]
    r = alice.post(f"{AGENT}/GetBatchTaskInfo?$select=Id,Description", json={"Id": tid})
    assert r.status_code == 200 and r.json() == {"Id": tid, "Description": "alpha 0"}, r.text
    calls = [("GetBatchTaskInfosByAssociates", {"AssociateIds": [me]}),
             ("GetBatchTaskInfosByState", {"State": "New"}),
             ("GetBatchTaskInfosByNameAndAssociates", {"Name": SLEEP, "AssociateIds": [me]}),
             ("GetBatchTaskInfosByAssociatesAndState", {"AssociateIds": [me], "State": "New"}),
             ("GetBatchTaskInfosByNameAndState", {"Name": SLEEP, "State": "New"}),
             ("GetAllBatchTaskInfosByName", {"TaskName": SLEEP})]
    for name, args in calls:
        r = alice.post(f"{AGENT}/{name}?$select=Id,State", json=args)
        assert r.status_code == 200, (name, r.text)
        assert r.json() and all(set(t) == {"Id", "State"} for t in r.json()), (name, r.text)
        assert tid in [t["Id"] for t in r.json()], name
    r = agent_update(alice, {"Id": tid, "Description": "alpha 0"}, "?$select=Description")
    assert r.status_code == 200 and r.json() == {"Description": "alpha 0"}, r.text
    # a bad name is refused even where nothing would be answered
    for name, args in [("GetBatchTaskInfo", {"Id": 2000000000}),
                       ("GetSystemBatchTaskInfosByName", {"TaskName": SLEEP}),
                       ("UpdateBatchTask", {"BatchTaskInfo": {"Id": tid}})]:
        r = alice.post(f"{AGENT}/{name}?$select=Id,Nothing", json=args)
        assert_error(r, 400)
        assert "Nothing" in error_text(r), r.text
    # answers that are no carrier ignore it
    r = alice.post(f"{AGENT}/StopBatchJob?$select=Id", json={"Id": 2000000000})
    assert r.status_code == 200 and r.json() is False, r.text


# ---- the official client --------------------------------------------------------------

CLIENT_DIR = REPO / "tests" / "client"
PACKAGE = CLIENT_DIR / "node_modules" / "@superoffice" / "webapi"


def test_official_client_update_batch_task(busy):
    if shutil.which("node") is None or not (PACKAGE / "package.json").is_file():
        if os.environ.get("CRMBLOB_REQUIRE_CLIENT"):
            pytest.fail("CRMBLOB_REQUIRE_CLIENT is set but the official client cannot run")
        pytest.skip("official client not available (bash scripts/client-deps.sh)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMBLOB_")}
    env.update({"CRMBLOB_URL": busy.base, "CRMBLOB_USER": "alice",
                "CRMBLOB_PASSWORD": DEFAULT_USERS["alice"][1]})
    p = subprocess.run(["node", str(CLIENT_DIR / "batch_update.js")], cwd=str(REPO), env=env,
                       capture_output=True, text=True, timeout=120)
    lines = p.stdout.splitlines()
    want = ["updateBatchTask.description", "updateBatchTask.readBack",
            "updateBatchTask.parametersRefused", "updateBatchTask.unknownNull"]
    assert p.returncode == 0 and all(f"ok {w}" in lines for w in want), (
        p.stdout[-3000:] + p.stderr[-2000:])
