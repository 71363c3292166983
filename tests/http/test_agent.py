"""The BLOB agent (SPEC §7): POST /api/v1/Agents/BLOB/{Name}.

Drives every method over the wire as the official clients do (camelCase
carriers, base64 byte fields, Accept: application/octet-stream for bytes),
and checks that the agent and the REST endpoints are one store with one set
of rules. The official npm client itself is driven by test_agent_client.py.
"""
import base64
import time

import pytest

from conftest import (EMPTY_DATE, FIELD_NAMES, assert_error, blob_id_of, data, image,
                      png_with_text, start_arg_server, stop_arg_server)
import imgmeta

AGENT = "/api/v1/Agents/BLOB/"
ENTITIES = ["Person", "Contact", "Product", "Project"]
ID_FIELD = {"Person": "personId", "Contact": "contactId", "Product": "productId",
            "Project": "projectId"}
OCTET = {"Accept": "application/octet-stream"}
JSON = {"Accept": "application/json"}


def b64(b):
    return base64.b64encode(b).decode()


def call(c, name, body=None, **kw):
    if body is not None:
        kw["json"] = body
    return c.post(AGENT + name, **kw)


def ok_blob(r):
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]!r}"
    j = r.json()
    assert isinstance(j, dict) and set(FIELD_NAMES) <= set(j), j
    return j


def ok_null(r):
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]!r}"
    assert r.text.strip() == "null", r.text[:200]


def ok_empty(r):
    assert r.status_code == 204, f"{r.status_code} {r.text[:300]!r}"
    assert r.content == b""


def photo():
    return data("images/photo_320x240.jpg")


@pytest.fixture(scope="module")
def ents(alice):
    return {k: alice.create(k) for k in ENTITIES}


# --------------------------------------------------------------------------
# BLOB records


def test_create_default_is_an_unsaved_carrier(alice):
    j = ok_blob(call(alice, "CreateDefaultBlobEntity"))
    assert j["BlobId"] == 0 and j["BlobSize"] == 0 and j["MimeType"] == ""
    assert j["CreatedDate"] == EMPTY_DATE and j["CreatedBy"] is None
    assert j["ConceptualType"] == "PHOTO"


def test_save_new_then_update_then_get(alice, bob):
    j = ok_blob(call(alice, "SaveBlobEntity",
                     {"blobId": 0, "description": "logo", "extraInfo": "x1",
                      "blobSize": 999, "mimeType": "text/evil", "createdBy": {"name": "eve"}}))
    bid = j["BlobId"]
    assert bid > 0 and j["Description"] == "logo" and j["ExtraInfo"] == "x1"
    assert j["BlobSize"] == 0 and j["MimeType"] == ""  # server fields are the server's
    assert j["ConceptualType"] == "PHOTO" and j["CreatedBy"]["Name"] == "alice"
    j2 = ok_blob(call(bob, "SaveBlobEntity", {"BlobId": bid, "Description": "logo 2"}))
    assert j2["BlobId"] == bid and j2["Description"] == "logo 2" and j2["ExtraInfo"] == "x1"
    assert j2["UpdatedBy"]["Name"] == "bob" and j2["CreatedBy"]["Name"] == "alice"
    got = ok_blob(call(alice, f"GetBlobEntity?blobEntityId={bid}"))
    assert got["Description"] == "logo 2"
    got = ok_blob(call(alice, f"GetBlobEntity?BLOBENTITYID={bid}"))  # any case
    assert got["BlobId"] == bid


def test_missing_records_answer_null(alice):
    ok_null(call(alice, "GetBlobEntity?blobEntityId=987654"))
    ok_null(call(alice, "SaveBlobEntity", {"BlobId": 987654, "Description": "x"}))


def test_select_on_agent_carriers(alice):
    bid = ok_blob(call(alice, "SaveBlobEntity", {"Description": "sel"}))["BlobId"]
    r = call(alice, f"GetBlobEntity?blobEntityId={bid}&$select=BlobId,Description")
    assert r.status_code == 200 and r.json() == {"BlobId": bid, "Description": "sel"}


def test_stream_round_trip_and_delete(alice):
    bid = ok_blob(call(alice, "SaveBlobEntity", {"description": "s"}))["BlobId"]
    png = png_with_text("stream")
    ok_empty(call(alice, "SetBlobStream", {"blobEntityId": bid, "stream": b64(png)}))
    r = call(alice, "GetBlobStream", {"blobEntityId": bid}, headers=OCTET)
    assert r.status_code == 200 and r.content == png
    assert r.headers["Content-Type"] == "application/octet-stream"
    j = ok_blob(call(alice, f"GetBlobEntity?blobEntityId={bid}"))
    assert j["MimeType"] == "image/png" and j["OriginalSize"] == len(png)
    assert j["Description"] == "s"
    ok_empty(call(alice, f"DeleteBlobEntity?BlobEntityId={bid}"))
    ok_null(call(alice, f"GetBlobEntity?blobEntityId={bid}"))
    r = call(alice, "GetBlobStream", {"blobEntityId": bid}, headers=OCTET)
    assert r.status_code == 200 and r.content == b""
    ok_empty(call(alice, f"DeleteBlobEntity?BlobEntityId={bid}"))  # again: still 204


@pytest.mark.parametrize("accept,form", [
    (None, "raw-mime"), ("*/*", "raw-mime"), ("image/*", "raw-mime"),
    ("application/octet-stream", "raw-octet"), ("application/json", "json"),
    ("text/json", "json"), ("application/xml", "xml"),
    ("application/json, application/octet-stream;q=0.5", "json"),
    ("application/json;q=0.4, application/octet-stream", "raw-octet"),
])
def test_bytes_answer_follows_accept(alice, accept, form):
    png = png_with_text("accept")
    sid = blob_id_of(call(alice, "SaveImageStream", {"type": "PersonImage", "image": b64(png)}))
    headers = {"Accept": accept} if accept else {"Accept": None}
    r = call(alice, "GetBlobStream", {"BlobEntityId": sid}, headers=headers)
    assert r.status_code == 200, r.text[:200]
    ctype = r.headers["Content-Type"].split(";")[0]
    if form == "raw-mime":
        assert ctype == "image/png" and r.content == png
    elif form == "raw-octet":
        assert ctype == "application/octet-stream" and r.content == png
    elif form == "json":
        assert ctype == accept.split(",")[0].split(";")[0] and base64.b64decode(r.json()) == png
    else:
        assert ctype == "application/xml" and b"<base64Binary>" in r.content
        text = r.text.split("<base64Binary>")[1].split("</base64Binary>")[0]
        assert base64.b64decode(text) == png


def test_bytes_answer_null_forms(alice):
    r = call(alice, "GetBlobStream", {"BlobEntityId": 987654},
             headers={"Accept": "application/json"})
    ok_null(r)
    r = call(alice, "GetBlobStream", {"BlobEntityId": 987654}, headers=OCTET)
    assert r.status_code == 200 and r.content == b""


def test_nothing_acceptable_is_406(alice):
    r = call(alice, "GetBlobStream", {"BlobEntityId": 1}, headers={"Accept": "text/csv"})
    assert_error(r, 406, "SoNotAcceptableException")
    r = call(alice, "CreateDefaultBlobEntity", headers={"Accept": "text/csv"})
    assert_error(r, 406, "SoNotAcceptableException")


def test_save_image_stream_types(alice):
    jpg, _ = image("jpg")
    for typ, concept in [("PersonImage", "PERSONPHOTO"), ("projectimage", "PHOTO"),
                         (17, "PHOTO"), ("1", "PERSONPHOTO"), (None, "PHOTO")]:
        body = {"Image": b64(jpg), "Description": f"t {typ}"}
        if typ is not None:
            body["Type"] = typ
        bid = blob_id_of(call(alice, "SaveImageStream", body))
        j = ok_blob(call(alice, f"GetBlobEntity?blobEntityId={bid}"))
        assert j["ConceptualType"] == concept and j["MimeType"] == "image/jpeg"
        assert j["Description"] == f"t {typ}" and j["OriginalSize"] == len(jpg)
    for bad in ["BatchTask", "AccessToken", "Nonsense", 6, 99, 0]:
        r = call(alice, "SaveImageStream", {"Type": bad, "Image": b64(jpg)})
        assert_error(r, 400)


# --------------------------------------------------------------------------
# an entity's picture: agent and REST are one


@pytest.mark.parametrize("kind", ENTITIES)
def test_set_get_image_is_rest_image(alice, ents, kind):
    eid = ents[kind]
    png = png_with_text(f"set {kind}")
    ok_empty(call(alice, f"Set{kind}Image", {ID_FIELD[kind]: eid, "image": b64(png)}))
    r = alice.get_image(kind, eid)
    assert r.status_code == 200 and r.content == png
    info = alice.info(kind, eid)
    r = call(alice, f"Get{kind}Image", {ID_FIELD[kind]: eid}, headers=OCTET)
    assert r.status_code == 200 and r.content == png
    on = ok_blob(call(alice, f"GetBlobEntityOn{kind}", {ID_FIELD[kind]: eid}))
    assert on["BlobId"] == info["BlobId"] and on["OriginalSize"] == len(png)
    # REST replaces: the agent sees the new bytes under the same BlobId
    jpg, _ = image("jpg")
    assert alice.put_image(kind, eid, jpg) == info["BlobId"]
    r = call(alice, f"Get{kind}Image", {ID_FIELD[kind]: eid}, headers=OCTET)
    assert r.content == jpg
    # the agent replaces: REST keeps BlobId and client fields
    alice.put_info(kind, eid, {"Description": "kept"})
    ok_empty(call(alice, f"Set{kind}Image", {ID_FIELD[kind]: eid, "image": b64(png)}))
    after = alice.info(kind, eid)
    assert after["BlobId"] == info["BlobId"] and after["Description"] == "kept"
    assert after["MimeType"] == "image/png"


@pytest.mark.parametrize("kind", ENTITIES)
def test_entity_without_image_or_missing(alice, kind):
    eid = alice.create(kind)
    on = ok_blob(call(alice, f"GetBlobEntityOn{kind}", {ID_FIELD[kind]: eid}))
    assert on["BlobId"] == 0
    ok_null(call(alice, f"GetBlobEntityOn{kind}", {ID_FIELD[kind]: 987654}))
    r = call(alice, f"Get{kind}Image", {ID_FIELD[kind]: eid}, headers=OCTET)
    assert r.status_code == 200 and r.content == b""
    ok_null(call(alice, f"Get{kind}Image", {ID_FIELD[kind]: eid}, headers=JSON))
    r = call(alice, f"Set{kind}Image", {ID_FIELD[kind]: 987654, "image": b64(data("small.png"))})
    assert_error(r, 400)


@pytest.mark.parametrize("kind", ENTITIES)
def test_change_links_and_unlinks(alice, kind):
    eid = alice.create(kind)
    gif, _ = image("gif")
    sid = blob_id_of(call(alice, "SaveImageStream", {"Type": f"{kind}Image", "Image": b64(gif)}))
    ok_empty(call(alice, f"Change{kind}Image", {ID_FIELD[kind]: eid, "blobId": sid}))
    assert alice.info(kind, eid)["BlobId"] == sid
    r = alice.get_image(kind, eid)
    assert r.status_code == 200 and r.content == gif
    # linked to one entity: not to a second one
    other = alice.create(kind)
    r = call(alice, f"Change{kind}Image", {ID_FIELD[kind]: other, "blobId": sid})
    assert_error(r, 409, "SoConflictException")
    # BlobId 0 removes the link; the record stays (unlinked) and can be linked again
    ok_empty(call(alice, f"Change{kind}Image", {ID_FIELD[kind]: eid, "blobId": 0}))
    assert_error(alice.get_image(kind, eid), 404)
    assert alice.info(kind, eid)["BlobId"] == 0
    ok_blob(call(alice, f"GetBlobEntity?blobEntityId={sid}"))
    ok_empty(call(alice, f"Change{kind}Image", {ID_FIELD[kind]: other, "blobId": sid}))
    assert alice.get_image(kind, other).content == gif
    # bad targets
    assert_error(call(alice, f"Change{kind}Image", {ID_FIELD[kind]: eid, "blobId": 987654}), 400)
    assert_error(call(alice, f"Change{kind}Image", {ID_FIELD[kind]: 987654, "blobId": sid}), 400)


def test_delete_blob_entity_removes_the_entity_image(alice):
    pid = alice.create("Person")
    bid = alice.put_image("Person", pid, data("small.png"))
    ok_empty(call(alice, f"DeleteBlobEntity?BlobEntityId={bid}"))
    assert_error(alice.get_image("Person", pid), 404)
    assert alice.info("Person", pid)["BlobId"] == 0


def test_rest_delete_removes_the_agent_record(alice):
    pid = alice.create("Person")
    bid = alice.put_image("Person", pid, data("small.png"))
    assert alice.delete(f"/api/v1/Person/{pid}/Image").status_code == 204
    ok_null(call(alice, f"GetBlobEntity?blobEntityId={bid}"))


def test_set_blob_stream_on_an_entity_image_is_seen_by_rest(alice):
    pid = alice.create("Person")
    bid = alice.put_image("Person", pid, data("small.png"))
    jpg, _ = image("jpg")
    ok_empty(call(alice, "SetBlobStream", {"BlobEntityId": bid, "Stream": b64(jpg)}))
    r = alice.get_image("Person", pid)
    assert r.content == jpg and r.headers["Content-Type"] == "image/jpeg"


@pytest.mark.parametrize("kind", ["Person", "Contact", "Project"])
def test_image_with_size(alice, kind):
    eid = alice.create(kind)
    alice.put_image(kind, eid, photo())
    r = call(alice, f"Get{kind}ImageWithSize",
             {ID_FIELD[kind]: eid, "width": 64, "height": 64}, headers=OCTET)
    assert r.status_code == 200
    assert imgmeta.kind(r.content) == "jpeg" and imgmeta.dims(r.content) == (64, 48)
    r = call(alice, f"Get{kind}ImageWithSize", {ID_FIELD[kind]: eid, "width": 100},
             headers={"Accept": "application/json"})
    assert imgmeta.dims(base64.b64decode(r.json())) == (100, 75)
    r = call(alice, f"Get{kind}ImageWithSize",  # never enlarged
             {ID_FIELD[kind]: eid, "width": 5000, "height": 5000}, headers=OCTET)
    assert imgmeta.dims(r.content) == (320, 240)
    r = call(alice, f"Get{kind}ImageWithSize", {ID_FIELD[kind]: eid}, headers=OCTET)
    assert r.content == photo()  # no bounds: the picture as stored
    bare = alice.create(kind)
    r = call(alice, f"Get{kind}ImageWithSize", {ID_FIELD[kind]: bare, "width": 9}, headers=OCTET)
    assert r.status_code == 200 and r.content == b""
    assert_error(call(alice, f"Get{kind}ImageWithSize", {ID_FIELD[kind]: eid, "width": -1}), 400)


# --------------------------------------------------------------------------
# product thumbnails


def test_product_thumbnail_made_from_the_picture(alice):
    pid = alice.create("Product")
    ok_null(call(alice, "GetProductThumbnail", {"productId": pid}, headers=JSON))
    alice.put_image("Product", pid, photo())
    r = call(alice, "GetProductThumbnail", {"productId": pid}, headers=OCTET)
    assert r.status_code == 200 and imgmeta.dims(r.content) == (200, 150)
    ok_null(call(alice, "GetProductThumbnail", {"productId": 987654}, headers=JSON))


def test_set_product_thumbnail_scales_and_wins_until_a_new_picture(alice):
    pid = alice.create("Product")
    alice.put_image("Product", pid, data("small.png"))
    ok_empty(call(alice, "SetProductThumbnail", {"productId": pid, "image": b64(photo())}))
    r = call(alice, "GetProductThumbnail", {"productId": pid}, headers=OCTET)
    assert imgmeta.kind(r.content) == "jpeg" and imgmeta.dims(r.content) == (200, 150)
    small = png_with_text("thumb")
    ok_empty(call(alice, "SetProductThumbnail", {"productId": pid, "image": b64(small)}))
    r = call(alice, "GetProductThumbnail", {"productId": pid}, headers=OCTET)
    assert r.content == small  # small enough: kept as given
    assert alice.get_image("Product", pid).content == data("small.png")  # picture untouched
    # a new picture retires the thumbnail made for the old one
    alice.put_image("Product", pid, photo())
    r = call(alice, "GetProductThumbnail", {"productId": pid}, headers=OCTET)
    assert imgmeta.dims(r.content) == (200, 150)
    assert_error(call(alice, "SetProductThumbnail",
                      {"productId": 987654, "image": b64(small)}), 400)


# --------------------------------------------------------------------------
# request forms and bad input


def test_xml_and_form_request_carriers(alice):
    pid = alice.create("Person")
    png = png_with_text("xml")
    xml = ('<SetPersonImage xmlns="urn:x"><PersonId>%d</PersonId><Image>%s</Image>'
           '</SetPersonImage>' % (pid, b64(png)))
    r = alice.post(AGENT + "SetPersonImage", data=xml,
                   headers={"Content-Type": "application/xml"})
    ok_empty(r)
    assert alice.get_image("Person", pid).content == png
    r = alice.post(AGENT + "GetBlobEntityOnPerson", data=f"PersonId={pid}",
                   headers={"Content-Type": "application/x-www-form-urlencoded",
                            "Accept": "application/xml"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/xml")
    assert "<BlobEntity" in r.text and "<MimeType>image/png</MimeType>" in r.text
    r = alice.post(AGENT + "GetBlobEntity?blobEntityId=987654", headers={"Accept": "text/xml"})
    assert r.status_code == 200 and 'i:nil="true"' in r.text
    r = alice.post(AGENT + "SaveImageStream",
                   data=f"<x><Image>{b64(png)}</Image></x>", headers={"Content-Type": "text/xml",
                                                                     "Accept": "text/xml"})
    assert r.status_code == 200 and r.text.split("<int>")[1].split("</int>")[0].isdigit()


def test_bad_arguments(alice, ents):
    pid = ents["Person"]
    cases = [
        ("SetPersonImage", {"personId": pid, "image": "***not base64***"}, 400),
        ("SetPersonImage", {"personId": pid, "image": b64(b"hello, not a picture")}, 400),
        ("SetPersonImage", {"personId": pid, "image": ""}, 400),
        ("SetPersonImage", {"personId": pid}, 400),
        ("SetPersonImage", {"image": b64(data("small.png"))}, 400),
        ("SetPersonImage", {"personId": "abc", "image": b64(data("small.png"))}, 400),
        ("SetPersonImage", {"personId": -3, "image": b64(data("small.png"))}, 400),
        ("SetPersonImage", {"personId": pid, "image": 12}, 400),
        ("GetPersonImage", {"personId": 0}, 400),
        ("ChangePersonImage", {"personId": pid}, 400),
        ("SetBlobStream", {"blobEntityId": 987654, "stream": b64(data("small.png"))}, 400),
        ("SaveBlobEntity", {"description": "x" * 255}, 400),
        ("GetBlobEntityOnPerson", None, 400),
    ]
    for name, body, status in cases:
        r = call(alice, name, body) if body is not None else alice.post(AGENT + name)
        assert_error(r, status)
    assert_error(call(alice, "GetBlobEntity"), 400)  # no blobEntityId
    assert_error(call(alice, "GetBlobEntity?blobEntityId=x"), 400)
    r = alice.post(AGENT + "GetBlobEntityOnPerson", data='[{"op":"add"}]',
                   headers={"Content-Type": "application/json-patch+json"})
    assert_error(r, 415)
    r = alice.post(AGENT + "GetBlobEntityOnPerson", data="x",
                   headers={"Content-Type": "text/plain"})
    assert_error(r, 415)


def test_names_methods_and_paths(alice, ents):
    r = call(alice, "getblobentityonperson", {"PERSONID": ents["Person"]})
    ok_blob(r)
    assert_error(call(alice, "NoSuchMethod"), 404)
    r = alice.get(AGENT + "GetBlobEntity?blobEntityId=1")
    assert_error(r, 405)
    assert r.headers["Allow"] == "POST"


def test_rights(srv, viewer, ents):
    anon = srv.anon()
    assert_error(call(anon, "CreateDefaultBlobEntity"), 401)
    ok_blob(call(viewer, "CreateDefaultBlobEntity"))
    ok_blob(call(viewer, "GetBlobEntityOnPerson", {"PersonId": ents["Person"]}))
    assert call(viewer, "GetPersonImage", {"PersonId": ents["Person"]},
                headers=OCTET).status_code == 200
    png = b64(data("small.png"))
    for name, body in [("SaveBlobEntity", {"Description": "v"}),
                       ("SetPersonImage", {"PersonId": ents["Person"], "Image": png}),
                       ("SaveImageStream", {"Image": png}),
                       ("ChangePersonImage", {"PersonId": ents["Person"], "BlobId": 0}),
                       ("SetProductThumbnail", {"ProductId": ents["Product"], "Image": png}),
                       ("SetBlobStream", {"BlobEntityId": 1, "Stream": png})]:
        assert_error(call(viewer, name, body), 403)
    assert_error(call(viewer, "DeleteBlobEntity?BlobEntityId=1"), 403)


def test_body_limit(alice, ents):
    big = b"\xff\xd8\xff" + b"\0" * (10 * 1024 * 1024 + 10)
    r = call(alice, "SetPersonImage", {"PersonId": ents["Person"], "Image": b64(big)})
    assert_error(r, 413)
    r = alice.post(AGENT + "GetBlobEntityOnPerson", data=b" " * (65 * 1024),
                   headers={"Content-Type": "application/json"})
    assert_error(r, 413)


def test_localised_agent_errors(alice):
    r = call(alice, "SaveImageStream", {"Type": "Nonsense", "Image": b64(data("small.png"))},
             headers={"Accept-Language": "de"})
    assert "BlobLinkType" in assert_error(r, 400)["ErrorMessage"]
    assert "Bilder" in r.json()["ErrorMessage"]


# --------------------------------------------------------------------------
# unlinked records are swept after the grace period


def test_unlinked_records_are_swept_after_grace(tmp_path):
    s = start_arg_server(tmp_path / "grace", ["--blob-grace", "2s"])
    try:
        c = s.client("alice")
        pid = c.create("Person")
        png = b64(data("small.png"))
        orphan = blob_id_of(call(c, "SaveImageStream", {"Type": "PersonImage", "Image": png}))
        linked = blob_id_of(call(c, "SaveImageStream", {"Type": "PersonImage", "Image": png}))
        ok_empty(call(c, "ChangePersonImage", {"PersonId": pid, "BlobId": linked}))
        rest = c.put_image("Contact", c.create("Contact"), data("small.png"))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if call(c, f"GetBlobEntity?blobEntityId={orphan}").text.strip() == "null":
                break
            time.sleep(0.25)
        ok_null(call(c, f"GetBlobEntity?blobEntityId={orphan}"))
        ok_blob(call(c, f"GetBlobEntity?blobEntityId={linked}"))
        ok_blob(call(c, f"GetBlobEntity?blobEntityId={rest}"))
        assert c.get_image("Person", pid).status_code == 200
        # unlinking starts the grace period again
        ok_empty(call(c, "ChangePersonImage", {"PersonId": pid, "BlobId": 0}))
        ok_blob(call(c, f"GetBlobEntity?blobEntityId={linked}"))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if call(c, f"GetBlobEntity?blobEntityId={linked}").text.strip() == "null":
                break
            time.sleep(0.25)
        ok_null(call(c, f"GetBlobEntity?blobEntityId={linked}"))
        assert "unlinked" in s.log()
    finally:
        stop_arg_server(s)


def test_grace_option_is_checked(tmp_path):
    s = start_arg_server(tmp_path / "g2", start=False)
    for bad in ["0s", "soon", "-1"]:
        r = s.cli("serve", "--blob-grace", bad, "--listen", "127.0.0.1:1")
        assert r.returncode == 2, (bad, r.returncode)
