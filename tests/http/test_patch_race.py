"""Writes that rest on what they read, racing (doc/store-reshaping.md R11).

A patch of ImageInfo or of an entity, and a PUT of some of an entity's
fields, read the record, apply the body and write the whole. Many clients
change one field each, at once, without If-Match: no acknowledged change may
be overwritten by a write that read the record before it.

Every write moves the record's version up by one and its answer carries the
record as written and its version (ETag). With every write acknowledged, the
answers, ordered by version, are the record's whole history: each must be its
predecessor with exactly the one field its request set. A lost update shows
as an answer that brings back a field's older value."""
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import HTTP_TIMEOUT, data

THREADS = 8
WRITES = 25  # per thread
BUSY_RETRIES = 200  # 503s a client takes (retrying at once) before the test fails

INFO_FIELDS = ["Description", "ExtraInfo", "ConceptualType"]
PERSON_FIELDS = ["Firstname", "Lastname"]

JSON = "application/json"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"


def _body(ctype, field, value):
    if ctype == JSON_PATCH:
        return [{"op": "replace", "path": "/" + field, "value": value}]
    return {field: value}


class Info:
    """Person/{id}/ImageInfo: ETag "i<BlobId>.<info version>"."""
    fields = INFO_FIELDS
    tag = re.compile(r'^"i\d+\.(\d+)"$')

    def __init__(self, admin):
        pid = admin.create("Person")
        admin.put_image("Person", pid, data("small.png"))
        r = admin.put_info("Person", pid, {f: f + " at start" for f in INFO_FIELDS})
        assert r.status_code == 200, r.text
        self.path = f"/api/v1/Person/{pid}/ImageInfo"


class Person:
    """Person/{id}: ETag "e<version>"."""
    fields = PERSON_FIELDS
    tag = re.compile(r'^"e(\d+)"$')

    def __init__(self, admin):
        self.path = f"/api/v1/Person/{admin.create('Person')}"


def _version(target, r):
    m = target.tag.match(r.headers.get("ETag", ""))
    assert m, f"{r.request.method} {r.url}: ETag {r.headers.get('ETag')!r}"
    return int(m.group(1))


def _state(target, r):
    j = r.json()
    return {f: j[f] for f in target.fields}


def _write(srv, target, ctype, t, busy):
    """Thread t's writes, each answered 200 in the end: [(version, state, field, value)]."""
    s = requests.Session()
    s.auth = ("admin", srv.users["admin"][1])
    field = target.fields[t % len(target.fields)]
    out = []
    try:
        for k in range(WRITES):
            value = f"t{t}.{k}"
            payload = json.dumps(_body(ctype, field, value)).encode()
            for _ in range(BUSY_RETRIES):
                r = s.put(srv.base + target.path, data=payload,
                          headers={"Content-Type": ctype}, timeout=HTTP_TIMEOUT)
                if r.status_code != 503:
                    break
                assert r.headers.get("Retry-After"), "a 503 must say when to retry"
                busy[t] += 1
                time.sleep(0.002)
            assert r.status_code == 200, f"{ctype} #{k} of thread {t}: {r.status_code} {r.text[:300]}"
            assert _state(target, r)[field] == value, r.text
            out.append((_version(target, r), _state(target, r), field, value))
    finally:
        s.close()
    return out


def _race(srv, target, ctype):
    busy = [0] * THREADS
    barrier = threading.Barrier(THREADS)

    def run(t):
        barrier.wait(timeout=30)
        return _write(srv, target, ctype, t, busy)

    with ThreadPoolExecutor(max_workers=THREADS) as ex:
        return [w for ws in ex.map(run, range(THREADS)) for w in ws], sum(busy)


@pytest.mark.parametrize("target,ctype", [
    (Info, JSON_PATCH), (Info, MERGE_PATCH), (Info, JSON),
    (Person, JSON_PATCH), (Person, MERGE_PATCH), (Person, JSON),
], ids=["info-json-patch", "info-merge-patch", "info-put", "entity-json-patch",
        "entity-merge-patch", "entity-put"])
def test_concurrent_writes_lose_nothing(srv, admin, target, ctype):
    target = target(admin)
    r = admin.get(target.path)
    assert r.status_code == 200, r.text
    start, state = _version(target, r), _state(target, r)
    writes, busy = _race(srv, target, ctype)
    writes.sort(key=lambda w: w[0])
    versions = [w[0] for w in writes]
    assert versions == list(range(start + 1, start + 1 + THREADS * WRITES)), \
        f"every write one version, none other: {versions[:10]}... ({busy} answers were 503)"
    for version, written, field, value in writes:
        state = dict(state, **{field: value})
        assert written == state, \
            f"version {version} ({field} := {value}) lost a change: {written} != {state}"
    r = admin.get(target.path)
    assert _version(target, r) == versions[-1] and _state(target, r) == state


@pytest.mark.parametrize("ctype", [JSON_PATCH, MERGE_PATCH])
def test_patch_with_if_match_on_a_stale_tag_is_still_412(admin, ctype):
    target = Info(admin)
    stale = admin.get(target.path).headers["ETag"]
    r = admin.put(target.path, data=json.dumps(_body(ctype, "Description", "first")),
                  headers={"Content-Type": ctype, "If-Match": stale})
    assert r.status_code == 200, r.text
    r = admin.put(target.path, data=json.dumps(_body(ctype, "ExtraInfo", "second")),
                  headers={"Content-Type": ctype, "If-Match": stale})
    assert r.status_code == 412, r.text
    assert admin.get(target.path).json()["ExtraInfo"] == "ExtraInfo at start"
