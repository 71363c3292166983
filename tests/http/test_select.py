"""$select on GET ImageInfo."""
import pytest

from conftest import (BLOB_ORDER, assert_error, assert_xml_error, data, parse_xml_answer,
                      xml_blob_to_json, xml_children, xml_local)


@pytest.fixture(scope="module")
def person(admin):
    pid = admin.create("Person")
    admin.put_image("Person", pid, data("small.png"))
    assert admin.put_info("Person", pid, {"Description": "sel", "ExtraInfo": "x"}).status_code == 200
    return pid


def _url(pid, q):
    return f"/api/v1/Person/{pid}/ImageInfo?{q}"


@pytest.mark.parametrize("q,keys", [
    ("$select=Description,BlobId", {"Description", "BlobId"}),
    ("$select=description", {"Description"}),
    ("$select=DESCRIPTION,blobid,mimeType", {"Description", "BlobId", "MimeType"}),
    ("%24select=ExtraInfo", {"ExtraInfo"}),
    ("$select=Description,%20BlobId", {"Description", "BlobId"}),
    ("$select=CreatedBy,TableRight,FieldProperties", {"CreatedBy", "TableRight", "FieldProperties"}),
    ("$select=Description,Description", {"Description"}),
], ids=["two", "lower", "mixed", "percent-dollar", "space", "objects", "twice"])
def test_select_json(admin, person, q, keys):
    full = admin.info("Person", person)
    r = admin.get(_url(person, q))
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert set(body) == keys, sorted(body)
    for k in keys:
        assert body[k] == full[k], k


def test_select_params_encoded_by_client(admin, person):
    r = admin.get(f"/api/v1/Person/{person}/ImageInfo",
                  params={"$select": "Description,BlobId"})
    assert r.status_code == 200, r.text[:300]
    assert set(r.json()) == {"Description", "BlobId"}


@pytest.mark.parametrize("q", ["$select=Nope", "$select=Description,Nope", "$select=Mask",
                               "$select=Description/Length"])
def test_select_unknown_400(admin, person, q):
    body = assert_error(admin.get(_url(person, q)), 400, "SoBadRequestException")
    assert body["ErrorMessage"].strip()
    assert_xml_error(admin.get(_url(person, q), headers={"Accept": "application/xml"}), 400,
                     "SoBadRequestException")


@pytest.mark.parametrize("q,names", [
    ("$select=Description,BlobId", ["BlobId", "Description"]),
    ("$select=updatedby,IsZipped", ["IsZipped", "UpdatedBy"]),
])
def test_select_xml(admin, person, q, names):
    full = admin.info("Person", person)
    r = admin.get(_url(person, q), headers={"Accept": "application/xml"})
    assert r.status_code == 200, r.text[:300]
    root = parse_xml_answer(r)
    assert xml_local(root.tag) == "BlobEntity"
    children = xml_children(root)
    assert sorted(children) == sorted(names), children
    # kept in carrier order
    assert children == [n for n in BLOB_ORDER if n in names], children
    got = xml_blob_to_json(root)
    for n in names:
        assert got[n] == full[n], n


def test_select_empty_carrier(admin):
    cid = admin.create("Contact")
    r = admin.get(f"/api/v1/Contact/{cid}/ImageInfo?$select=BlobId,CreatedBy")
    assert r.status_code == 200, r.text[:300]
    assert r.json() == {"BlobId": 0, "CreatedBy": None}

