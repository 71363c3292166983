"""The project image library and the BLOB agent's methods about things
crmblob does not keep.

SaveProjectImage (Description + Image, 204) puts a picture in the library,
checked as any upload; GET /api/v1/ProjectImageLibrary lists it, GET
/api/v1/ProjectImageLibrary/{id} gives its bytes, ChangeProjectImage with its
BlobId gives a project a copy, DELETE removes it. Editors write, viewers read.

GetBlobEntityOnCountry, GetQuoteLineImage and GetChatImageWithSize answer
as the reference does for an id it does not know: 200 with null (an empty
body when the bytes themselves are asked for); their arguments are still
read and checked, and they are reads (viewers may call them).
"""
import base64

import pytest

from conftest import assert_error, data, xml_body

AGENT = "/api/v1/Agents/BLOB/"
OCTET = {"Accept": "application/octet-stream"}
JSON = {"Accept": "application/json"}
XML = {"Accept": "application/xml"}

LIBRARY = "/api/v1/ProjectImageLibrary"


def b64(b):
    return base64.b64encode(b).decode()


def library_ids(c):
    """Every BlobId in the library, following odata.nextLink."""
    ids, url = [], LIBRARY
    while url:
        r = c.get(url, headers=JSON)
        assert r.status_code == 200, f"{r.status_code} {r.text[:300]!r}"
        j = r.json()
        ids += [v["BlobId"] for v in j["value"]]
        url = j.get("odata.nextLink")
    return ids


def save(c, description, picture, xml=False):
    """SaveProjectImage; the BlobId it added to the library."""
    before = set(library_ids(c))
    if xml:
        body = xml_body({"Description": description, "Image": b64(picture)},
                        root="SaveProjectImageRequest")
        r = c.post(AGENT + "SaveProjectImage", data=body,
                   headers={"Content-Type": "application/xml"})
    else:
        r = c.post(AGENT + "SaveProjectImage", json={"description": description,
                                                      "image": b64(picture)})
    assert r.status_code == 204 and r.content == b"", f"{r.status_code} {r.text[:300]!r}"
    added = set(library_ids(c)) - before
    assert len(added) == 1, added
    return added.pop()


def test_save_list_fetch_and_delete(alice, viewer):
    jpeg, png = data("small.jpg"), data("small.png")
    a = save(alice, "sunrise", jpeg)
    b = save(alice, "harbour", png, xml=True)
    r = viewer.get(LIBRARY, headers=JSON)  # viewers read
    assert r.status_code == 200
    recs = {v["BlobId"]: v for v in r.json()["value"]}
    assert recs[a]["Description"] == "sunrise" and recs[a]["MimeType"] == "image/jpeg"
    assert recs[b]["Description"] == "harbour" and recs[b]["MimeType"] == "image/png"
    assert recs[a]["ConceptualType"] == "PHOTO"
    r = alice.get(LIBRARY, headers=XML)
    assert r.status_code == 200 and f"<BlobId>{a}</BlobId>" in r.text.replace("a:BlobId", "BlobId")
    for bid, pic, mime in ((a, jpeg, "image/jpeg"), (b, png, "image/png")):
        r = viewer.get(f"{LIBRARY}/{bid}")
        assert r.status_code == 200 and r.content == pic  # byte for byte
        assert r.headers["Content-Type"].startswith(mime)
    r = alice.post(AGENT + "GetBlobStream", json={"BlobEntityId": a}, headers=OCTET)
    assert r.status_code == 200 and r.content == jpeg
    assert_error(viewer.delete(f"{LIBRARY}/{a}"), 403)
    r = alice.delete(f"{LIBRARY}/{a}")
    assert r.status_code == 204
    assert a not in library_ids(alice) and b in library_ids(alice)
    assert_error(alice.get(f"{LIBRARY}/{a}"), 404)
    assert_error(alice.delete(f"{LIBRARY}/{a}"), 404)
    r = alice.post(AGENT + "GetBlobEntity?blobEntityId=%d" % a, headers=JSON)
    assert r.status_code == 200 and r.text.strip() == "null"  # the record went with it
    assert_error(alice.delete(f"{LIBRARY}/0"), 400)
    assert_error(alice.get(f"{LIBRARY}/x"), 400)
    assert_error(alice.get(LIBRARY + "?after=-1"), 400)
    # DeleteBlobEntity on a library record takes it out of the library too
    r = alice.post(AGENT + "DeleteBlobEntity?BlobEntityId=%d" % b)
    assert r.status_code == 204 and b not in library_ids(alice)


def test_a_record_not_in_the_library_is_not_found_there(alice):
    r = alice.post(AGENT + "SaveImageStream", json={"Image": b64(data("small.png"))})
    bid = r.json()
    assert bid not in library_ids(alice)
    assert_error(alice.get(f"{LIBRARY}/{bid}"), 404)
    assert_error(alice.delete(f"{LIBRARY}/{bid}"), 404)
    assert alice.post(AGENT + "GetBlobEntity?blobEntityId=%d" % bid,
                      headers=JSON).json()["BlobId"] == bid  # still there


def test_projects_take_copies_of_a_library_picture(alice):
    jpeg = data("small.jpg")
    lib = save(alice, "logo", jpeg)
    p1, p2 = alice.create("Project"), alice.create("Project")
    for pid in (p1, p2):
        r = alice.post(AGENT + "ChangeProjectImage", json={"ProjectId": pid, "BlobId": lib})
        assert r.status_code == 204, f"{r.status_code} {r.text[:300]!r}"
        r = alice.get_image("Project", pid)
        assert r.status_code == 200 and r.content == jpeg
        r = alice.post(AGENT + "GetProjectImage", json={"ProjectId": pid}, headers=OCTET)
        assert r.status_code == 200 and r.content == jpeg
    info = [alice.get(f"/api/v1/Project/{pid}/ImageInfo", headers=JSON).json()["BlobId"]
            for pid in (p1, p2)]
    assert lib not in info and info[0] != info[1]  # each a record of its own
    assert lib in library_ids(alice)
    r = alice.delete(f"{LIBRARY}/{lib}")
    assert r.status_code == 204
    assert alice.get_image("Project", p1).content == jpeg  # the copies stay
    r = alice.post(AGENT + "ChangeProjectImage", json={"ProjectId": 987654, "BlobId": lib})
    assert_error(r, 400)


def test_a_library_picture_for_a_project_that_does_not_exist(alice):
    lib = save(alice, "x", data("small.png"))
    r = alice.post(AGENT + "ChangeProjectImage", json={"ProjectId": 987654, "BlobId": lib})
    assert_error(r, 400)
    assert lib in library_ids(alice)


@pytest.mark.parametrize("bad", [b"not a picture at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_a_bad_picture_is_refused(alice, bad):
    before = library_ids(alice)
    r = alice.post(AGENT + "SaveProjectImage", json={"Description": "bad", "Image": b64(bad)})
    assert_error(r, 400)
    assert library_ids(alice) == before


def test_arguments_and_rights(alice, viewer):
    before = library_ids(alice)
    assert_error(alice.post(AGENT + "SaveProjectImage", json={"Description": "none"}), 400)
    assert_error(alice.post(AGENT + "SaveProjectImage", json={"Image": "***"}), 400)
    r = viewer.post(AGENT + "SaveProjectImage", json={"Image": b64(data("small.png"))})
    assert_error(r, 403)
    assert library_ids(alice) == before


NULL_METHODS = [("GetBlobEntityOnCountry", {"CountryId": 1}),
                ("GetQuoteLineImage", {"QuoteLineId": 1}),
                ("GetChatImageWithSize", {"ChatTopicId": 1, "Width": 64, "Height": 64})]


def ok_null(r):
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]!r}"
    assert r.text.strip() == "null", r.text[:200]


@pytest.mark.parametrize("name,body", NULL_METHODS)
def test_methods_about_what_crmblob_does_not_keep_answer_null(alice, viewer, name, body):
    ok_null(alice.post(AGENT + name, json=body, headers=JSON))
    ok_null(viewer.post(AGENT + name, json=body, headers=JSON))
    r = alice.post(AGENT + name, json=body, headers=XML)
    assert r.status_code == 200 and "nil" in r.text, r.text[:200]
    if name != "GetBlobEntityOnCountry":  # bytes: raw, an empty body
        r = alice.post(AGENT + name, json=body, headers=OCTET)
        assert r.status_code == 200 and r.content == b""
    id_field = next(iter(body))
    assert_error(alice.post(AGENT + name, json={}, headers=JSON), 400)
    assert_error(alice.post(AGENT + name, json={id_field: "x"}, headers=JSON), 400)
    assert_error(alice.post(AGENT + name, json={id_field: 0}, headers=JSON), 400)
    assert_error(alice.post(AGENT + name, json=body.copy() | {"Width": -1}
                            if "Width" in body else {id_field: -3}, headers=JSON), 400)
    assert_error(alice.post(AGENT + name, json=body, headers={"Accept": "text/html"}), 406)
