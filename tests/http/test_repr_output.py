"""Answers: content negotiation on Accept, the XML carriers and XML errors (SPEC §4, §5)."""
import json
import re

import pytest

from conftest import (ASSOCIATE_ORDER, BLOB_ORDER, CLIENT_BLOB_FIELDS, ENTITY_FIELDS, FIELD_NAMES,
                      KINDS, KIND_NAMES, XSI, assert_error, assert_xml_error, data, media_type,
                      parse_xml_answer, xml_blob_to_json, xml_child, xml_children,
                      xml_entity_to_json, xml_is_nil, xml_local, xml_text)

JSON_TYPES = ("application/json", "text/json")
XML_TYPES = ("application/xml", "text/xml")

# Accept header -> the set of acceptable answer media types
NEGOTIATION = [
    ("application/xml", {"application/xml"}),
    ("text/xml", {"text/xml"}),
    ("application/json", {"application/json"}),
    ("text/json", {"text/json"}),
    ("*/*", {"application/json"}),
    (None, {"application/json"}),
    ("application/*", {"application/json"}),
    ("text/*", {"text/json", "text/xml"}),
    ("application/xml;q=0.9, application/json;q=0.5", {"application/xml"}),
    ("application/json;q=0.1, text/xml", {"text/xml"}),
    ("application/json;q=0, application/xml", {"application/xml"}),
    ("text/html, application/xml;q=0.8, */*;q=0.1", {"application/xml"}),
    ("image/png, application/json;q=0.2", {"application/json"}),
    ("APPLICATION/XML", {"application/xml"}),
    ("*/*;q=0.1, text/xml", {"text/xml"}),
    ("text/xml;q=0.3, application/json;q=0.8", {"application/json"}),
    ("application/json-patch+json", {"application/json", "application/json-patch+json"}),
    ("application/merge-patch+json", {"application/json", "application/merge-patch+json"}),
]
NOT_ACCEPTABLE = ["image/png", "text/html", "application/pdf, image/*",
                  "application/json;q=0", "text/plain"]


def _accept(accept):
    # None removes requests' default "Accept: */*"
    return {"Accept": accept}


def _check_negotiated(r, allowed):
    mt, params = media_type(r)
    assert mt in allowed, f"Content-Type {r.headers.get('Content-Type')!r}, want one of {allowed}"
    if mt in XML_TYPES:
        assert params.get("charset", "").lower() == "utf-8", r.headers.get("Content-Type")
        return "xml", parse_xml_answer(r)
    return "json", json.loads(r.content)


@pytest.fixture(scope="module")
def person(alice):
    pid = alice.create("Person", Firstname="Neg", Lastname="Otiate")
    alice.put_image("Person", pid, data("small.png"))
    r = alice.put_info("Person", pid, {"Description": "d <&> é", "ExtraInfo": "x"})
    assert r.status_code == 200
    return pid


# --------------------------------------------------------------------------
# negotiation


@pytest.mark.parametrize("accept,allowed", NEGOTIATION, ids=[str(a) for a, _ in NEGOTIATION])
def test_get_imageinfo_negotiation(alice, person, accept, allowed):
    r = alice.get(f"/api/v1/Person/{person}/ImageInfo", headers=_accept(accept))
    assert r.status_code == 200, r.text[:300]
    kind, body = _check_negotiated(r, allowed)
    ref = alice.info("Person", person)
    if kind == "xml":
        assert xml_local(body.tag) == "BlobEntity"
        assert xml_blob_to_json(body) == ref
    else:
        assert body == ref


@pytest.mark.parametrize("accept,allowed", NEGOTIATION, ids=[str(a) for a, _ in NEGOTIATION])
def test_put_imageinfo_negotiation(alice, person, accept, allowed):
    r = alice.put(f"/api/v1/Person/{person}/ImageInfo", json={"ExtraInfo": f"acc {accept}"},
                  headers=_accept(accept))
    assert r.status_code == 200, r.text[:300]
    kind, body = _check_negotiated(r, allowed)
    if kind == "xml":
        assert xml_local(body.tag) == "BlobEntity"
        body = xml_blob_to_json(body)
    assert body["ExtraInfo"] == f"acc {accept}"
    assert body == alice.info("Person", person)


@pytest.mark.parametrize("accept,allowed", NEGOTIATION, ids=[str(a) for a, _ in NEGOTIATION])
def test_entity_negotiation(alice, accept, allowed):
    r = alice.post("/api/v1/Product", json={"Name": "Neg <&>", "ERPProductKey": "K"},
                   headers=_accept(accept))
    assert r.status_code == 201, r.text[:300]
    kind, body = _check_negotiated(r, allowed)
    if kind == "xml":
        assert xml_local(body.tag) == "Product"
        body = xml_entity_to_json("Product", body)
    eid = body["ProductId"]
    ref = alice.get(f"/api/v1/Product/{eid}").json()
    assert body == ref
    for method, kw in (("GET", {}), ("PUT", {"json": {"Name": "Neg2"}})):
        r = alice.request(method, f"/api/v1/Product/{eid}", headers=_accept(accept), **kw)
        assert r.status_code == 200, r.text[:300]
        kind, body = _check_negotiated(r, allowed)
        if kind == "xml":
            assert xml_local(body.tag) == "Product"
            body = xml_entity_to_json("Product", body)
        assert body == alice.get(f"/api/v1/Product/{eid}").json()


@pytest.mark.parametrize("accept,allowed", NEGOTIATION, ids=[str(a) for a, _ in NEGOTIATION])
def test_error_negotiation(alice, accept, allowed):
    r = alice.get("/api/v1/Person/1999999901/ImageInfo", headers=_accept(accept))
    assert r.status_code == 404
    mt, _ = media_type(r)
    assert mt in allowed, r.headers.get("Content-Type")
    if mt in XML_TYPES:
        body = assert_xml_error(r, 404, "SoNotFoundException", ctype=mt)
        assert "1999999901" in body["ErrorMessage"]
    else:
        body = json.loads(r.content)
        assert body["Error"] is True and body["ErrorType"] == "SoNotFoundException", body


@pytest.mark.parametrize("accept", NOT_ACCEPTABLE)
def test_not_acceptable_406(alice, person, accept):
    before = alice.info("Person", person)
    h = _accept(accept)
    for r in (
        alice.get(f"/api/v1/Person/{person}/ImageInfo", headers=h),
        alice.put(f"/api/v1/Person/{person}/ImageInfo", json={"Description": "406!"}, headers=h),
        alice.get(f"/api/v1/Person/{person}", headers=h),
        alice.put(f"/api/v1/Person/{person}", json={"Firstname": "406!"}, headers=h),
        alice.post("/api/v1/Contact", json={"Name": "406!"}, headers=h),
    ):
        assert_error(r, 406, "SoNotAcceptableException")
    assert alice.info("Person", person) == before
    assert alice.get(f"/api/v1/Person/{person}").json()["Firstname"] == "Neg"


@pytest.mark.parametrize("accept", ["application/xml", "text/xml", "application/json"])
def test_get_image_ignores_xml_accept(alice, person, accept):
    r = alice.get(f"/api/v1/Person/{person}/Image", headers={"Accept": accept})
    assert r.status_code == 200, r.text[:300]
    assert r.headers.get("Content-Type", "").split(";")[0] == "image/png"
    assert r.content == data("small.png")


@pytest.mark.parametrize("accept", ["application/xml", "text/xml",
                                    "application/json;q=0.5, application/xml"])
@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_put_image_answer_xml_int(alice, accept, method):
    cid = alice.create("Contact")
    r = alice.request(method, f"/api/v1/Contact/{cid}/Image", data=data("small.gif"),
                      headers={"Content-Type": "image/gif", "Accept": accept})
    assert r.status_code == 200, r.text[:300]
    root = parse_xml_answer(r)
    assert xml_local(root.tag) == "int", r.text
    assert len(root) == 0
    assert re.fullmatch(r"\d+", xml_text(root)), r.text
    assert int(xml_text(root)) == alice.info("Contact", cid)["BlobId"] > 0


def test_put_image_answer_json_types(alice):
    cid = alice.create("Contact")
    r = alice.put(f"/api/v1/Contact/{cid}/Image", data=data("small.gif"),
                  headers={"Content-Type": "image/gif", "Accept": "text/json"})
    assert r.status_code == 200
    assert media_type(r)[0] == "text/json"
    assert json.loads(r.content) == alice.info("Contact", cid)["BlobId"]


# --------------------------------------------------------------------------
# XML errors


@pytest.mark.parametrize("ctype", ["application/xml", "text/xml"])
def test_xml_errors(srv, alice, viewer, person, ctype):
    h = {"Accept": ctype}
    assert_xml_error(alice.get("/api/v1/Person/1999999902", headers=h), 404,
                     "SoNotFoundException", ctype=ctype)
    assert_xml_error(alice.get("/api/v1/Person/abc/ImageInfo", headers=h), 400,
                     "SoBadRequestException", ctype=ctype)
    assert_xml_error(srv.anon().get(f"/api/v1/Person/{person}/ImageInfo", headers=h), 401,
                     "SoUnauthorizedException", ctype=ctype)
    assert_xml_error(viewer.put(f"/api/v1/Person/{person}/ImageInfo", json={"Description": "v"},
                                headers=h), 403, "SoAccessDeniedException", ctype=ctype)
    assert_xml_error(alice.put(f"/api/v1/Person/{person}/ImageInfo", data=b"x",
                               headers={"Content-Type": "text/plain", **h}), 415,
                     "SoUnsupportedMediaTypeException", ctype=ctype)
    assert_xml_error(alice.put(f"/api/v1/Person/{person}/ImageInfo", data=b"<a><b></a>",
                               headers={"Content-Type": "application/xml", **h}), 400,
                     "SoBadRequestException", ctype=ctype)
    assert_xml_error(alice.put(f"/api/v1/Person/{person}/Image", data=b"not an image",
                               headers={"Content-Type": "image/png", **h}), 400,
                     "SoBadRequestException", ctype=ctype)


def test_xml_error_document_shape(alice):
    r = alice.get("/api/v1/Contact/1999999903", headers={"Accept": "application/xml"})
    assert r.status_code == 404
    text = r.content.decode("utf-8")
    assert text.lstrip().startswith("<?xml"), text[:200]
    root = parse_xml_answer(r, "application/xml")
    assert xml_local(root.tag) == "Error"
    assert xml_children(root) == ["Error", "ErrorType", "ErrorMessage", "ErrorSource"], \
        xml_children(root)
    body = {n: xml_text(xml_child(root, n)) for n in xml_children(root)}
    j = alice.get("/api/v1/Contact/1999999903").json()
    assert body == {"Error": "true", "ErrorType": j["ErrorType"],
                    "ErrorMessage": j["ErrorMessage"], "ErrorSource": "crmblob"}


# --------------------------------------------------------------------------
# the XML BlobEntity, exactly


def _root_start_tag(text):
    m = re.search(r"<(?!\?|!)[^>]*>", text)
    assert m, text[:300]
    return m.group(0)


def _check_xml_blob(r, ref, writer):
    text = r.content.decode("utf-8")
    assert text.lstrip().startswith("<?xml"), f"no XML declaration: {text[:200]!r}"
    root = parse_xml_answer(r)
    assert xml_local(root.tag) == "BlobEntity", root.tag
    start = _root_start_tag(text)
    assert re.search(r'\bxmlns:i="http://www\.w3\.org/2001/XMLSchema-instance"', start), start
    assert xml_children(root) == BLOB_ORDER, xml_children(root)
    for n in ("IsEncrypted", "IsZipped"):
        assert xml_text(xml_child(root, n)) in ("true", "false")
    for n in ("CreatedBy", "UpdatedBy"):
        el = xml_child(root, n)
        if ref[n] is None:
            assert xml_is_nil(el), f"<{n}> must be i:nil=\"true\": {text[:800]}"
            assert el.get(f"{{{XSI}}}nil") == "true"
            assert len(el) == 0
        else:
            assert not xml_is_nil(el)
            assert sorted(xml_children(el)) == sorted(ASSOCIATE_ORDER), xml_children(el)
            assert len(el) == 12
    tr = xml_child(root, "TableRight")
    assert sorted(xml_children(tr)) == ["Mask", "Reason"], xml_children(tr)
    assert xml_text(xml_child(tr, "Mask")) == ("FULL" if writer else "Select")
    fp = xml_child(root, "FieldProperties")
    assert sorted(xml_children(fp)) == sorted(FIELD_NAMES), xml_children(fp)
    for f in fp:
        assert sorted(xml_children(f)) == ["FieldLength", "FieldRight", "FieldType"]
        fr = xml_child(f, "FieldRight")
        assert sorted(xml_children(fr)) == ["Mask", "Reason"], xml_children(fr)
        name = xml_local(f.tag)
        want = "Update" if (writer and name in CLIENT_BLOB_FIELDS) else "Read"
        assert xml_text(xml_child(fr, "Mask")) == want, (name, xml_text(xml_child(fr, "Mask")))
        assert xml_text(xml_child(fr, "Reason")) == ""
    assert xml_blob_to_json(root) == ref


@pytest.mark.parametrize("user,writer", [("admin", True), ("alice", True), ("victor", False)])
@pytest.mark.parametrize("state", ["empty", "image", "info-only"])
@pytest.mark.parametrize("kind", KIND_NAMES)
def test_xml_blob_entity(srv, admin, kind, state, user, writer):
    eid = admin.create(kind)
    if state == "image":
        admin.put_image(kind, eid, data("small.jpg"))
        admin.put_info(kind, eid, {"Description": "<tag> & \"q\" 'a'", "ExtraInfo": "日本 é"})
    elif state == "info-only":
        admin.put_info(kind, eid, {"Description": "only info"})
    c = srv.client(user)
    ref = c.info(kind, eid)
    if state == "empty":
        assert ref["CreatedBy"] is None
    else:
        assert ref["CreatedBy"] is not None
    r = c.get(f"/api/v1/{kind}/{eid}/ImageInfo", headers={"Accept": "application/xml"})
    assert r.status_code == 200, r.text[:300]
    _check_xml_blob(r, ref, writer)


def test_xml_put_answer_is_exact(admin):
    pid = admin.create("Project")
    admin.put_image("Project", pid, data("small.png"))
    r = admin.put(f"/api/v1/Project/{pid}/ImageInfo", json={"Description": "x"},
                  headers={"Accept": "text/xml"})
    assert r.status_code == 200
    assert media_type(r)[0] == "text/xml"
    _check_xml_blob(r, admin.info("Project", pid), True)


# --------------------------------------------------------------------------
# entity carriers in XML


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_xml_entity_carrier(admin, kind):
    idf = KINDS[kind][0]
    fields = {"Person": {"Firstname": "Å & <b>", "Lastname": "x"},
              "Contact": {"Name": "Acme <&> AS"},
              "Product": {"Name": "W", "ERPProductKey": "'k'"},
              "Project": {"Name": "P", "ProjectNumber": "\"n\""}}[kind]
    eid = admin.create(kind, **fields)
    ref = admin.get(f"/api/v1/{kind}/{eid}").json()
    r = admin.get(f"/api/v1/{kind}/{eid}", headers={"Accept": "application/xml"})
    assert r.status_code == 200
    root = parse_xml_answer(r, "application/xml")
    assert xml_local(root.tag) == kind, root.tag
    order, _ = ENTITY_FIELDS[kind]
    assert sorted(xml_children(root)) == sorted(order), xml_children(root)
    assert xml_entity_to_json(kind, root) == ref
    assert ref[idf] == eid


# --------------------------------------------------------------------------
# rights


@pytest.mark.parametrize("accept", [None, "application/xml"])
def test_viewer_writes_403(srv, admin, viewer, accept):
    pid = admin.create("Person", Firstname="Keep")
    admin.put_image("Person", pid, data("small.png"))
    before = admin.info("Person", pid)
    h = {"Accept": accept} if accept else {}
    attempts = [
        viewer.put(f"/api/v1/Person/{pid}/ImageInfo", json={"Description": "v"}, headers=h),
        viewer.put(f"/api/v1/Person/{pid}/ImageInfo", data=b"<B><Description>v</Description></B>",
                   headers={"Content-Type": "application/xml", **h}),
        viewer.delete(f"/api/v1/Person/{pid}/Image", headers=h),
        viewer.put(f"/api/v1/Person/{pid}/Image", data=data("small.gif"), headers=h),
        viewer.put(f"/api/v1/Person/{pid}", json={"Firstname": "v"}, headers=h),
        viewer.delete(f"/api/v1/Person/{pid}", headers=h),
    ]
    for r in attempts:
        if accept:
            assert_xml_error(r, 403, "SoAccessDeniedException", ctype="application/xml")
        else:
            assert_error(r, 403, "SoAccessDeniedException")
    assert admin.info("Person", pid) == before
    assert admin.get(f"/api/v1/Person/{pid}").json()["Firstname"] == "Keep"
