"""Round trip: a carrier written in one representation reads back the same in another (§4)."""
import json
import random

import pytest

from conftest import (BLOB_KEYS, CLIENT_BLOB_FIELDS, KIND_NAMES, body_as, data, media_type,
                      parse_xml_answer, xml_blob_to_json, xml_local)

WRITE = {
    "json": "application/json",
    "textjson": "text/json; charset=utf-8",
    "xml": "application/xml",
    "textxml": "text/xml; charset=utf-8",
    "form": "application/x-www-form-urlencoded",
    "merge": "application/merge-patch+json",
    "patch": "application/json-patch+json",
}
READ = {"json": "application/json", "xml": "application/xml"}

ALPHABET = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    + list(" <>&\"'%+=;/\\?#[]{}:,.-_~!@$^*()|`")
    + list("æøåÆØÅéüßñçÉ€£¥©")
    + list("日本語中文한국어Ωπж")
    + ["\U0001F600", "\U0001F4A9", "\t", "\n", "\u00a0", "\u200b"]
)


def _rand_string(rng):
    n = rng.choice([0, 1, 2, 5, 17, 60, 128, 253, 254, rng.randint(0, 254)])
    return "".join(rng.choice(ALPHABET) for _ in range(n))


def _cases():
    rng = random.Random(20261123)
    out = []
    for i in range(22):
        fields = {f: _rand_string(rng) for f in CLIENT_BLOB_FIELDS}
        # sometimes send only some of the fields
        if i % 4 == 3:
            fields.pop(rng.choice(CLIENT_BLOB_FIELDS))
        out.append(pytest.param(
            i, rng.choice(KIND_NAMES), rng.random() < 0.6, fields,
            list(WRITE)[i % len(WRITE)], rng.choice(list(READ)),
            id=f"{i}-{list(WRITE)[i % len(WRITE)]}"))
    return out


def _read(r, accept):
    assert r.status_code == 200, f"{r.status_code}: {r.text[:400]!r}"
    if accept == "xml":
        root = parse_xml_answer(r, "application/xml")
        assert xml_local(root.tag) == "BlobEntity"
        return xml_blob_to_json(root)
    assert media_type(r)[0] == "application/json", r.headers.get("Content-Type")
    return json.loads(r.content)


@pytest.mark.parametrize("i,kind,with_image,fields,write,read", _cases())
def test_roundtrip(admin, i, kind, with_image, fields, write, read):
    eid = admin.create(kind)
    if with_image:
        admin.put_image(kind, eid, data("small.png" if i % 2 else "small.gif"))
    before = admin.info(kind, eid)
    url = f"/api/v1/{kind}/{eid}/ImageInfo"
    r = admin.put(url, data=body_as(WRITE[write], fields),
                  headers={"Content-Type": WRITE[write], "Accept": READ[read]})
    answer = _read(r, read)
    assert set(answer) == BLOB_KEYS, sorted(answer)
    for f in CLIENT_BLOB_FIELDS:
        if f in fields:
            want = fields[f]
        elif before["BlobId"]:
            want = before[f]
        else:
            want = "PERSONPHOTO" if (f == "ConceptualType" and kind == "Person") else \
                "PHOTO" if f == "ConceptualType" else ""
        assert answer[f] == want, f"{f}: sent {want!r}, answer has {answer[f]!r}"
    other = "json" if read == "xml" else "xml"
    for acc in (read, other):
        got = _read(admin.get(url, headers={"Accept": READ[acc]}), acc)
        for k in sorted(BLOB_KEYS):
            assert got[k] == answer[k], f"{k} read as {acc}: {got[k]!r} != {answer[k]!r}"
