"""Request bodies in every accepted representation (SPEC §4): JSON, XML, form, JSON Patch,
merge patch, their charsets, and what is refused (415, 400, 409)."""
import json
import re
import time

import pytest

from conftest import (CLIENT_BLOB_FIELDS, DC_NS, KINDS, KIND_NAMES, REQUEST_TYPES, XSI,
                      assert_error, body_as, data, xml_body)

ENTITY_MISSING = "Entity to save is not in request body"

# a change with characters every representation must carry faithfully
CHANGE = {"Description": "Ærø & <b>\"quoted\"</b> 'x' 1+1=2 50% ~/", "ExtraInfo": "e\u00e9\u65e5 ; ="}

CHARSETS = ["", "; charset=utf-8", ";charset=UTF-8", '; charset="utf-8"']

# entity kind -> a change of its string fields
ENTITY_CHANGE = {
    "Person": {"Firstname": "Bjørn & <Co>", "Lastname": "O'Neil \"+\" 100%"},
    "Contact": {"Name": "Åse & Ærlig <AS> 'x' +%"},
    "Product": {"Name": "Gizmo <&>", "ERPProductKey": "K+1 %20"},
    "Project": {"Name": "Moon \"shot\"", "ProjectNumber": "2026/001 & co"},
}


def _headers(ctype):
    return {"Content-Type": ctype} if ctype is not None else {}


def _fresh(admin, kind="Person", with_image=True):
    eid = admin.create(kind)
    if with_image:
        admin.put_image(kind, eid, data("small.png"))
    return eid


def _info_url(kind, eid):
    return f"/api/v1/{kind}/{eid}/ImageInfo"


def _put_info_raw(admin, kind, eid, body, ctype):
    return admin.put(_info_url(kind, eid), data=body, headers=_headers(ctype))


# --------------------------------------------------------------------------
# every accepted type, with and without charset


@pytest.mark.parametrize("charset", CHARSETS, ids=["plain", "utf-8", "UTF-8", "quoted"])
@pytest.mark.parametrize("ctype", REQUEST_TYPES)
def test_put_info_each_type(admin, ctype, charset):
    pid = _fresh(admin)
    r = _put_info_raw(admin, "Person", pid, body_as(ctype, CHANGE), ctype + charset)
    assert r.status_code == 200, f"{ctype}{charset}: {r.status_code} {r.text[:400]!r}"
    out = r.json()
    assert out["Description"] == CHANGE["Description"], out
    assert out["ExtraInfo"] == CHANGE["ExtraInfo"], out
    assert out["ConceptualType"] == "PERSONPHOTO", out
    assert admin.info("Person", pid) == out


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_same_change_same_result_in_every_type(admin, kind):
    """One entity; reset, apply the change in each type, compare GET ImageInfo."""
    eid = _fresh(admin, kind)
    seen = {}
    for ctype in REQUEST_TYPES + [None]:
        reset = admin.put_info(kind, eid, {"Description": "reset", "ExtraInfo": "reset",
                                           "ConceptualType": "RESET"})
        assert reset.status_code == 200, reset.text
        change = dict(CHANGE, ConceptualType="LOGO")
        body = body_as(ctype or "application/json", change)
        r = _put_info_raw(admin, kind, eid, body, ctype)
        assert r.status_code == 200, f"{ctype}: {r.status_code} {r.text[:400]!r}"
        info = admin.info(kind, eid)
        info.pop("UpdatedDate")
        seen[ctype] = info
    first = seen["application/json"]
    assert (first["Description"], first["ExtraInfo"], first["ConceptualType"]) == \
        (CHANGE["Description"], CHANGE["ExtraInfo"], "LOGO")
    for ctype, info in seen.items():
        assert info == first, f"{ctype} stored something else:\n{info}\nvs json:\n{first}"


@pytest.mark.parametrize("ctype", REQUEST_TYPES)
def test_iso_8859_1_charset_415(admin, ctype):
    pid = _fresh(admin)
    before = admin.info("Person", pid)
    body = body_as(ctype, {"Description": "latin"})
    r = _put_info_raw(admin, "Person", pid, body, ctype + "; charset=iso-8859-1")
    assert_error(r, 415, "SoUnsupportedMediaTypeException")
    assert admin.info("Person", pid) == before


@pytest.mark.parametrize("ctype", ["text/plain", "application/octet-stream", "image/png",
                                   "text/html", "multipart/form-data; boundary=x"])
def test_other_types_415(admin, ctype):
    pid = _fresh(admin)
    before = admin.info("Person", pid)
    r = _put_info_raw(admin, "Person", pid, b'{"Description": "nope"}', ctype)
    assert_error(r, 415, "SoUnsupportedMediaTypeException")
    assert admin.info("Person", pid) == before
    r = admin.put(f"/api/v1/Person/{pid}", data=b'{"Firstname": "nope"}',
                  headers={"Content-Type": ctype})
    assert_error(r, 415, "SoUnsupportedMediaTypeException")
    r = admin.post("/api/v1/Person", data=b'{"Firstname": "nope"}',
                   headers={"Content-Type": ctype})
    assert_error(r, 415, "SoUnsupportedMediaTypeException")


@pytest.mark.parametrize("ctype", ["APPLICATION/JSON", "Text/Json", "Application/XML",
                                   "TEXT/XML; CHARSET=UTF-8", "Application/X-WWW-Form-Urlencoded",
                                   "application/merge-patch+JSON"])
def test_media_type_case_insensitive(admin, ctype):
    pid = _fresh(admin)
    r = _put_info_raw(admin, "Person", pid, body_as(ctype, CHANGE), ctype)
    assert r.status_code == 200, f"{ctype}: {r.status_code} {r.text[:300]!r}"
    assert r.json()["Description"] == CHANGE["Description"]


def test_no_content_type_is_json(admin):
    pid = _fresh(admin)
    r = _put_info_raw(admin, "Person", pid, json.dumps(CHANGE).encode(), None)
    assert r.status_code == 200, r.text
    assert r.json()["Description"] == CHANGE["Description"]
    r = admin.post("/api/v1/Contact", data=b'{"Name": "no ctype"}')
    assert r.status_code == 201, r.text
    assert r.json()["Name"] == "no ctype"


# --------------------------------------------------------------------------
# entity endpoints: POST and PUT in every type


@pytest.mark.parametrize("ctype", REQUEST_TYPES + ["application/xml; charset=utf-8",
                                                   "application/x-www-form-urlencoded; charset=UTF-8"])
@pytest.mark.parametrize("kind", KIND_NAMES)
def test_entity_post_put_each_type(admin, kind, ctype):
    idf = KINDS[kind][0]
    change = ENTITY_CHANGE[kind]
    r = admin.post(f"/api/v1/{kind}", data=body_as(ctype, change, root=kind),
                   headers={"Content-Type": ctype})
    assert r.status_code == 201, f"POST {kind} as {ctype}: {r.status_code} {r.text[:400]!r}"
    body = r.json()
    for k, v in change.items():
        assert body[k] == v, (k, body)
    eid = body[idf]
    assert admin.get(f"/api/v1/{kind}/{eid}").json() == body
    # PUT: change the first field only
    first = next(iter(change))
    upd = {first: change[first] + " v2"}
    r = admin.put(f"/api/v1/{kind}/{eid}", data=body_as(ctype, upd, root=kind),
                  headers={"Content-Type": ctype})
    assert r.status_code == 200, f"PUT {kind} as {ctype}: {r.status_code} {r.text[:400]!r}"
    want = dict(body, **upd)
    assert r.json() == want
    assert admin.get(f"/api/v1/{kind}/{eid}").json() == want


@pytest.mark.parametrize("ctype", REQUEST_TYPES)
def test_entity_iso_8859_1_415(admin, ctype):
    cid = admin.create("Contact", Name="keep")
    r = admin.put(f"/api/v1/Contact/{cid}", data=body_as(ctype, {"Name": "x"}, root="Contact"),
                  headers={"Content-Type": ctype + "; charset=iso-8859-1"})
    assert_error(r, 415, "SoUnsupportedMediaTypeException")
    assert admin.get(f"/api/v1/Contact/{cid}").json()["Name"] == "keep"


# --------------------------------------------------------------------------
# XML input


XML_INPUTS = {
    "datacontract": (
        f'<BlobEntity xmlns="{DC_NS}" xmlns:i="{XSI}"><Description>x1</Description>'
        f'<ExtraInfo>y1</ExtraInfo><CreatedBy i:nil="true"/><BlobId>99</BlobId></BlobEntity>',
        {"Description": "x1", "ExtraInfo": "y1"}),
    "no namespace": (
        "<BlobEntity><Description>x2</Description></BlobEntity>", {"Description": "x2"}),
    "other root": (
        "<Whatever><Description>x3</Description><ExtraInfo>y3</ExtraInfo></Whatever>",
        {"Description": "x3", "ExtraInfo": "y3"}),
    "prefixed": (
        '<a:BlobEntity xmlns:a="urn:some:thing"><a:Description>x4</a:Description>'
        '<a:ConceptualType>LOGO</a:ConceptualType></a:BlobEntity>',
        {"Description": "x4", "ConceptualType": "LOGO"}),
    "prefixed children only": (
        f'<BlobEntity xmlns:a="{DC_NS}"><a:Description>x5</a:Description></BlobEntity>',
        {"Description": "x5"}),
    "lower-case names": (
        "<blobentity><description>x6</description><EXTRAINFO>y6</EXTRAINFO>"
        "<conceptualType>c6</conceptualType></blobentity>",
        {"Description": "x6", "ExtraInfo": "y6", "ConceptualType": "c6"}),
    "declaration and whitespace": (
        '<?xml version="1.0" encoding="UTF-8"?>\n<BlobEntity>\n  <Description>x7</Description>\n'
        '  <!-- a comment -->\n</BlobEntity>\n', {"Description": "x7"}),
    "escapes and cdata": (
        "<BlobEntity><Description>a &amp; b &lt;c&gt; &#x00C6;&#248;</Description>"
        "<ExtraInfo><![CDATA[<raw> & stuff]]></ExtraInfo></BlobEntity>",
        {"Description": "a & b <c> Æø", "ExtraInfo": "<raw> & stuff"}),
    "server fields and nil ignored": (
        f'<BlobEntity xmlns:i="{XSI}"><BlobSize>5</BlobSize><IsZipped>true</IsZipped>'
        f'<MimeType>text/html</MimeType><UpdatedBy i:nil="true"/>'
        f'<TableRight><Mask>Delete</Mask><Reason/></TableRight>'
        f'<Description>x9</Description></BlobEntity>', {"Description": "x9"}),
    "nested unknown ignored": (
        "<BlobEntity><Other><Description>not me</Description></Other>"
        "<ExtraInfo a=\"1\" xml:space=\"preserve\"> y10 </ExtraInfo></BlobEntity>",
        {"ExtraInfo": " y10 "}),
    "byte order mark": (
        "\ufeff<?xml version=\"1.0\" encoding=\"utf-8\"?><BlobEntity><Description>x11"
        "</Description></BlobEntity>", {"Description": "x11"}),
    "empty element sets empty": (
        "<BlobEntity><Description/><ExtraInfo></ExtraInfo></BlobEntity>",
        {"Description": "", "ExtraInfo": ""}),
}


@pytest.mark.parametrize("ctype", ["application/xml", "text/xml; charset=utf-8"])
@pytest.mark.parametrize("name", list(XML_INPUTS))
def test_xml_input_forms(admin, name, ctype):
    text, want = XML_INPUTS[name]
    pid = _fresh(admin)
    ok = admin.put_info("Person", pid, {"Description": "D0", "ExtraInfo": "E0"})
    assert ok.status_code == 200
    before = ok.json()
    r = _put_info_raw(admin, "Person", pid, text.encode("utf-8"), ctype)
    assert r.status_code == 200, f"{name}: {r.status_code} {r.text[:400]!r}"
    out = r.json()
    expect = {f: want.get(f, before[f]) for f in CLIENT_BLOB_FIELDS}
    assert {f: out[f] for f in CLIENT_BLOB_FIELDS} == expect, out
    for f in ("BlobId", "BlobSize", "MimeType", "IsZipped", "CreatedBy", "TableRight"):
        assert out[f] == before[f], (f, out[f], before[f])
    assert admin.info("Person", pid) == out


def test_xml_feed_back_own_answer(admin):
    """The server's own XML carrier, edited, is a valid request body."""
    pid = _fresh(admin)
    r = admin.get(f"/api/v1/Person/{pid}/ImageInfo", headers={"Accept": "application/xml"})
    assert r.status_code == 200, r.text
    text = r.content.decode("utf-8")
    assert "<Description" in text, text[:500]
    text2 = re.sub(r"<Description\s*/>|<Description>[^<]*</Description>",
                   "<Description>fed back</Description>", text, count=1)
    assert text2 != text
    r = _put_info_raw(admin, "Person", pid, text2.encode("utf-8"), "application/xml")
    assert r.status_code == 200, r.text[:400]
    assert admin.info("Person", pid)["Description"] == "fed back"


def test_xml_person_contact_id_as_text(admin):
    cid = admin.create("Contact", Name="Employer")
    body = (f'<Person xmlns="{DC_NS}"><Firstname>X</Firstname><Lastname>Y</Lastname>'
            f'<ContactId>{cid}</ContactId></Person>').encode()
    r = admin.post("/api/v1/Person", data=body, headers={"Content-Type": "application/xml"})
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["Firstname"], out["Lastname"], out["ContactId"]) == ("X", "Y", cid)
    pid = out["PersonId"]
    r = admin.put(f"/api/v1/Person/{pid}", data=b"<anything><contactid>0</contactid></anything>",
                  headers={"Content-Type": "text/xml"})
    assert r.status_code == 200, r.text
    assert r.json()["ContactId"] == 0 and r.json()["Firstname"] == "X"


def test_xml_person_contact_id_not_a_number_400(admin):
    pid = admin.create("Person", Firstname="keep")
    r = admin.put(f"/api/v1/Person/{pid}", data=b"<Person><ContactId>five</ContactId></Person>",
                  headers={"Content-Type": "application/xml"})
    assert_error(r, 400, "SoBadRequestException")
    assert admin.get(f"/api/v1/Person/{pid}").json()["Firstname"] == "keep"


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
    '<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">'
    '<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">'
    '<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">'
    '<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">'
    '<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">'
    '<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">'
    ']><BlobEntity><Description>&lol9;</Description></BlobEntity>')

DTD_INPUTS = {
    "billion laughs": BILLION_LAUGHS,
    "external entity": ('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM '
                        '"file:///etc/passwd">]><BlobEntity><Description>&xxe;</Description>'
                        '</BlobEntity>'),
    "external dtd": ('<!DOCTYPE BlobEntity SYSTEM "http://127.0.0.1:1/evil.dtd">'
                     '<BlobEntity><Description>dtd</Description></BlobEntity>'),
    "plain doctype": "<!DOCTYPE BlobEntity><BlobEntity><Description>dt</Description></BlobEntity>",
    "internal entity": ('<!DOCTYPE BlobEntity [<!ENTITY e "expanded">]>'
                        '<BlobEntity><Description>&e;</Description></BlobEntity>'),
    "parameter entity": ('<!DOCTYPE d [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'
                         '<BlobEntity><Description>pe</Description></BlobEntity>'),
}


@pytest.mark.parametrize("name", list(DTD_INPUTS))
def test_xml_doctype_and_entities_400(srv, admin, name):
    pid = _fresh(admin)
    assert admin.put_info("Person", pid, {"Description": "safe"}).status_code == 200
    before = admin.info("Person", pid)
    t0 = time.monotonic()
    r = _put_info_raw(admin, "Person", pid, DTD_INPUTS[name].encode(), "application/xml")
    assert time.monotonic() - t0 < 5
    body = assert_error(r, 400, "SoBadRequestException")
    assert "root:" not in body["ErrorMessage"]
    assert admin.info("Person", pid) == before
    assert srv.alive()
    r = admin.put(f"/api/v1/Person/{pid}", data=DTD_INPUTS[name].encode(),
                  headers={"Content-Type": "text/xml"})
    assert_error(r, 400, "SoBadRequestException")


MALFORMED_XML = {
    "unclosed": "<BlobEntity><Description>x</BlobEntity>",
    "truncated": "<BlobEntity><Description>x</Descr",
    "two roots": "<BlobEntity/><BlobEntity/>",
    "text only": "just text",
    "bad entity ref": "<BlobEntity><Description>&nope;</Description></BlobEntity>",
    "unescaped amp": "<BlobEntity><Description>a & b</Description></BlobEntity>",
    "bad utf-8": b"<BlobEntity><Description>caf\xe9</Description></BlobEntity>",
    "json sent as xml": '{"Description": "x"}',
}


@pytest.mark.parametrize("name", list(MALFORMED_XML))
def test_xml_malformed_400_with_reason(admin, name):
    pid = _fresh(admin)
    assert admin.put_info("Person", pid, {"Description": "safe"}).status_code == 200
    before = admin.info("Person", pid)
    text = MALFORMED_XML[name]
    r = _put_info_raw(admin, "Person", pid,
                      text if isinstance(text, bytes) else text.encode(), "application/xml")
    body = assert_error(r, 400, "SoBadRequestException")
    assert "XML" in body["ErrorMessage"], body
    assert admin.info("Person", pid) == before


def test_xml_string_too_long_400(admin):
    pid = _fresh(admin)
    before = admin.info("Person", pid)
    r = _put_info_raw(admin, "Person", pid, xml_body({"Description": "z" * 255}),
                      "application/xml")
    body = assert_error(r, 400, "SoBadRequestException")
    assert "description" in body["ErrorMessage"].lower(), body
    assert admin.info("Person", pid) == before
    r = _put_info_raw(admin, "Person", pid, xml_body({"Description": "ü" * 254}),
                      "application/xml")
    assert r.status_code == 200 and r.json()["Description"] == "ü" * 254, r.text[:300]


# --------------------------------------------------------------------------
# form input


@pytest.mark.parametrize("body,want", [
    ("Description=a+b&ExtraInfo=c%26d", {"Description": "a b", "ExtraInfo": "c&d"}),
    ("description=%C3%86r%C3%B8+%3D+%2B&EXTRAINFO=100%25", {"Description": "Ærø = +",
                                                           "ExtraInfo": "100%"}),
    ("conceptualType=LOGO", {"ConceptualType": "LOGO"}),
    ("Description=&ExtraInfo=x", {"Description": "", "ExtraInfo": "x"}),
    ("Unknown=1&Description=u&BlobId=77&MimeType=text%2Fhtml", {"Description": "u"}),
    ("Description=%e6%97%a5%E6%9C%AC", {"Description": "日本"}),
], ids=["plus-and-amp", "case-and-utf8", "camel", "empty-value", "unknown-and-server", "lowerhex"])
def test_form_input(admin, body, want):
    pid = _fresh(admin)
    before = admin.put_info("Person", pid, {"Description": "D0", "ExtraInfo": "E0"}).json()
    r = _put_info_raw(admin, "Person", pid, body.encode(), "application/x-www-form-urlencoded")
    assert r.status_code == 200, f"{body}: {r.status_code} {r.text[:300]!r}"
    out = r.json()
    expect = {f: want.get(f, before[f]) for f in CLIENT_BLOB_FIELDS}
    assert {f: out[f] for f in CLIENT_BLOB_FIELDS} == expect
    assert out["BlobId"] == before["BlobId"] and out["MimeType"] == "image/png"


@pytest.mark.parametrize("body", ["Description=%zz", "Description=%4", "Description=abc%",
                                  "Description=%C3", "Description=%FF%FE"],
                         ids=["non-hex", "short", "trailing", "cut-utf8", "bad-utf8"])
def test_form_bad_escape_400(admin, body):
    pid = _fresh(admin)
    before = admin.info("Person", pid)
    r = _put_info_raw(admin, "Person", pid, body.encode(), "application/x-www-form-urlencoded")
    body_ = assert_error(r, 400, "SoBadRequestException")
    assert body_["ErrorMessage"].strip()
    assert admin.info("Person", pid) == before


def test_form_person_contact_id(admin):
    cid = admin.create("Contact")
    r = admin.post("/api/v1/Person", data=f"Firstname=Form+Ann&contactid={cid}".encode(),
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 201, r.text
    assert r.json()["ContactId"] == cid and r.json()["Firstname"] == "Form Ann"
    pid = r.json()["PersonId"]
    r = admin.put(f"/api/v1/Person/{pid}", data=b"ContactId=abc",
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(r, 400, "SoBadRequestException")
    assert admin.get(f"/api/v1/Person/{pid}").json()["ContactId"] == cid


def test_form_too_long_400(admin):
    pid = _fresh(admin)
    r = _put_info_raw(admin, "Person", pid, ("ExtraInfo=" + "q" * 255).encode(),
                      "application/x-www-form-urlencoded")
    body = assert_error(r, 400)
    assert "extrainfo" in body["ErrorMessage"].lower()


# --------------------------------------------------------------------------
# JSON Patch (RFC 6902)

PATCH = "application/json-patch+json"


def _patch(admin, kind, eid, ops, ctype=PATCH):
    body = ops if isinstance(ops, (bytes, str)) else json.dumps(ops)
    if isinstance(body, str):
        body = body.encode()
    return _put_info_raw(admin, kind, eid, body, ctype)


@pytest.mark.parametrize("path", ["/Description", "/description", "Description", "/DESCRIPTION",
                                  "description"])
@pytest.mark.parametrize("op", ["replace", "add"])
def test_patch_set_paths(admin, op, path):
    pid = _fresh(admin)
    r = _patch(admin, "Person", pid, [{"op": op, "path": path, "value": f"{op} {path}"}])
    assert r.status_code == 200, f"{op} {path}: {r.status_code} {r.text[:300]!r}"
    assert r.json()["Description"] == f"{op} {path}"
    assert admin.info("Person", pid)["Description"] == f"{op} {path}"


def test_patch_several_ops_in_order(admin):
    pid = _fresh(admin)
    admin.put_info("Person", pid, {"Description": "d", "ExtraInfo": "e", "ConceptualType": "c"})
    ops = [
        {"op": "test", "path": "/Description", "value": "d"},
        {"op": "replace", "path": "/Description", "value": "d2"},
        {"op": "test", "path": "/description", "value": "d2"},
        {"op": "remove", "path": "/ExtraInfo"},
        {"op": "add", "path": "conceptualtype", "value": "LOGO"},
    ]
    r = _patch(admin, "Person", pid, ops)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["Description"], out["ExtraInfo"], out["ConceptualType"]) == ("d2", "", "LOGO")
    assert admin.info("Person", pid) == out


@pytest.mark.parametrize("field", CLIENT_BLOB_FIELDS)
def test_patch_remove_client_field(admin, field):
    pid = _fresh(admin)
    admin.put_info("Person", pid, {field: "something"})
    r = _patch(admin, "Person", pid, [{"op": "remove", "path": "/" + field}])
    assert r.status_code == 200, r.text
    assert r.json()[field] == ""
    assert admin.info("Person", pid)[field] == ""


def test_patch_on_record_not_yet_there(admin):
    pid = _fresh(admin, with_image=False)
    r = _patch(admin, "Person", pid, [{"op": "replace", "path": "/Description", "value": "new"}])
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["Description"] == "new" and out["BlobSize"] == 0 and out["MimeType"] == ""
    assert out["BlobId"] > 0
    assert admin.info("Person", pid) == out


def test_patch_failed_test_409_nothing_stored(admin):
    pid = _fresh(admin)
    admin.put_info("Person", pid, {"Description": "orig", "ExtraInfo": "orig-e"})
    before = admin.info("Person", pid)
    ops = [
        {"op": "replace", "path": "/Description", "value": "changed"},
        {"op": "remove", "path": "/ExtraInfo"},
        {"op": "test", "path": "/ExtraInfo", "value": "something else"},
    ]
    r = _patch(admin, "Person", pid, ops)
    assert_error(r, 409, "SoConflictException")
    assert admin.info("Person", pid) == before
    r = _patch(admin, "Person", pid, [{"op": "test", "path": "/Description", "value": "ORIG"}])
    assert_error(r, 409, "SoConflictException")
    assert admin.info("Person", pid) == before


def test_patch_test_on_server_field(admin):
    pid = _fresh(admin)
    info = admin.info("Person", pid)
    ok = [{"op": "test", "path": "/BlobId", "value": info["BlobId"]},
          {"op": "test", "path": "/MimeType", "value": "image/png"},
          {"op": "replace", "path": "/Description", "value": "tested"}]
    r = _patch(admin, "Person", pid, ok)
    assert r.status_code == 200, r.text
    assert r.json()["Description"] == "tested"
    bad = [{"op": "test", "path": "/BlobId", "value": info["BlobId"] + 1},
           {"op": "replace", "path": "/Description", "value": "not stored"}]
    assert_error(_patch(admin, "Person", pid, bad), 409, "SoConflictException")
    assert admin.info("Person", pid)["Description"] == "tested"


@pytest.mark.parametrize("op", [
    {"op": "replace", "path": "/BlobSize", "value": 12345},
    {"op": "replace", "path": "/MimeType", "value": "text/html"},
    {"op": "replace", "path": "/IsZipped", "value": True},
    {"op": "replace", "path": "/BlobId", "value": 424242},
    {"op": "remove", "path": "/CreatedBy"},
], ids=["BlobSize", "MimeType", "IsZipped", "BlobId", "remove-CreatedBy"])
def test_patch_server_field_no_effect(admin, op):
    pid = _fresh(admin)
    before = admin.info("Person", pid)
    r = _patch(admin, "Person", pid, [op, {"op": "replace", "path": "/Description",
                                           "value": "with server op"}])
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["Description"] == "with server op"
    for f in ("BlobId", "BlobSize", "MimeType", "IsZipped", "OriginalSize", "CreatedBy",
              "CreatedDate"):
        assert out[f] == before[f], (f, out[f], before[f])


@pytest.mark.parametrize("ops", [
    [{"op": "move", "from": "/Description", "path": "/ExtraInfo"}],
    [{"op": "copy", "from": "/Description", "path": "/ExtraInfo"}],
], ids=["move", "copy"])
def test_patch_move_copy_400(admin, ops):
    pid = _fresh(admin)
    admin.put_info("Person", pid, {"Description": "d", "ExtraInfo": "e"})
    before = admin.info("Person", pid)
    body = assert_error(_patch(admin, "Person", pid, ops), 400, "SoBadRequestException")
    assert ops[0]["op"] in body["ErrorMessage"], body
    assert admin.info("Person", pid) == before


@pytest.mark.parametrize("body", [
    b'{"op": "replace", "path": "/Description", "value": "x"}',
    b'[{"path": "/Description", "value": "x"}]',
    b'[{"op": "replace", "value": "x"}]',
    b'[{"op": "replace", "path": "/Description"}]',
    b'[{"op": "add", "path": "/Description"}]',
    b'[{"op": "test", "path": "/Description"}]',
    b'[{"op": "frobnicate", "path": "/Description", "value": "x"}]',
    b'[{"op": 5, "path": "/Description", "value": "x"}]',
    b'[{"op": "replace", "path": 7, "value": "x"}]',
    b'["replace"]',
    b'[{"op": "replace", "path": "/Description", "value": "x"}',
    b'[{"op": "replace", "path": "/Description", "value": 5}]',
], ids=["object", "no-op", "no-path", "replace-no-value", "add-no-value", "test-no-value",
        "unknown-op", "op-not-string", "path-not-string", "not-objects", "truncated",
        "wrong-value-type"])
def test_patch_malformed_400(admin, body):
    pid = _fresh(admin)
    admin.put_info("Person", pid, {"Description": "keep"})
    before = admin.info("Person", pid)
    assert_error(_patch(admin, "Person", pid, body), 400, "SoBadRequestException")
    assert admin.info("Person", pid) == before


def test_patch_empty_list_changes_nothing(admin):
    pid = _fresh(admin)
    admin.put_info("Person", pid, {"Description": "same"})
    before = admin.info("Person", pid)
    r = _patch(admin, "Person", pid, [])
    assert r.status_code == 200, r.text
    out = r.json()
    for f in CLIENT_BLOB_FIELDS + ["BlobId", "BlobSize", "MimeType", "CreatedBy"]:
        assert out[f] == before[f], f


def test_patch_entity(admin):
    cid = admin.create("Contact", Name="Before")
    r = admin.put(f"/api/v1/Contact/{cid}", headers={"Content-Type": PATCH},
                  data=json.dumps([{"op": "test", "path": "/name", "value": "Before"},
                                   {"op": "replace", "path": "Name", "value": "After"}]))
    assert r.status_code == 200, r.text
    assert r.json() == {"ContactId": cid, "Name": "After"}
    r = admin.put(f"/api/v1/Contact/{cid}", headers={"Content-Type": PATCH},
                  data=json.dumps([{"op": "test", "path": "/Name", "value": "Nope"},
                                   {"op": "replace", "path": "/Name", "value": "Lost"}]))
    assert_error(r, 409, "SoConflictException")
    r = admin.put(f"/api/v1/Contact/{cid}", headers={"Content-Type": PATCH},
                  data=json.dumps([{"op": "remove", "path": "/Name"}]))
    assert r.status_code == 200, r.text
    assert admin.get(f"/api/v1/Contact/{cid}").json() == {"ContactId": cid, "Name": ""}


# --------------------------------------------------------------------------
# merge patch (RFC 7396)

MERGE = "application/merge-patch+json"


def test_merge_patch(admin):
    pid = _fresh(admin)
    admin.put_info("Person", pid, {"Description": "d", "ExtraInfo": "e", "ConceptualType": "c"})
    r = _put_info_raw(admin, "Person", pid, b'{"Description": "x"}', MERGE)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["Description"], out["ExtraInfo"], out["ConceptualType"]) == ("x", "e", "c")
    r = _put_info_raw(admin, "Person", pid, b'{"ExtraInfo": null}', MERGE)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["Description"], out["ExtraInfo"], out["ConceptualType"]) == ("x", "", "c")
    r = _put_info_raw(admin, "Person", pid,
                      b'{"conceptualtype": "LOGO", "DESCRIPTION": null, "BlobSize": 1}', MERGE)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["Description"], out["ExtraInfo"], out["ConceptualType"]) == ("", "", "LOGO")
    assert out["BlobSize"] == len(data("small.png"))
    assert admin.info("Person", pid) == out


def test_merge_patch_empty_and_server_fields(admin):
    pid = _fresh(admin)
    admin.put_info("Person", pid, {"Description": "same"})
    before = admin.info("Person", pid)
    for body in (b"{}", b'{"TableRight": {"Mask": "Delete"}, "MimeType": "text/html"}'):
        r = _put_info_raw(admin, "Person", pid, body, MERGE)
        assert r.status_code == 200, r.text
        out = r.json()
        for f in CLIENT_BLOB_FIELDS + ["BlobId", "MimeType", "TableRight", "CreatedBy"]:
            assert out[f] == before[f], f


def test_merge_patch_wrong_type_400(admin):
    pid = _fresh(admin)
    before = admin.info("Person", pid)
    assert_error(_put_info_raw(admin, "Person", pid, b'{"Description": 5}', MERGE), 400)
    assert_error(_put_info_raw(admin, "Person", pid, b'{"Description": ', MERGE), 400)
    assert admin.info("Person", pid) == before


def test_merge_patch_entity(admin):
    pid = admin.create("Person", Firstname="F", Lastname="L")
    r = admin.put(f"/api/v1/Person/{pid}", data=b'{"lastname": null, "Firstname": "G"}',
                  headers={"Content-Type": MERGE})
    assert r.status_code == 200, r.text
    assert r.json() == {"PersonId": pid, "Firstname": "G", "Lastname": "", "ContactId": 0}


# --------------------------------------------------------------------------
# no entity in the body


@pytest.mark.parametrize("body,ctype", [
    (b"", None),
    (b"", "application/json"),
    (b"null", "application/json"),
    (b"null", None),
    (b"  null  ", "text/json; charset=utf-8"),
    (b"", "application/xml"),
    (b"", "text/xml"),
    (b"  \n ", "application/xml"),
], ids=["empty-none", "empty-json", "null-json", "null-none", "null-textjson", "empty-xml",
        "empty-textxml", "blank-xml"])
def test_no_entity_400(admin, body, ctype):
    pid = _fresh(admin)
    admin.put_info("Person", pid, {"Description": "keep"})
    before = admin.info("Person", pid)
    r = _put_info_raw(admin, "Person", pid, body, ctype)
    err = assert_error(r, 400, "SoBadRequestException")
    assert ENTITY_MISSING in err["ErrorMessage"], err
    assert admin.info("Person", pid) == before
    # the same for entity PUT and POST
    r = admin.put(f"/api/v1/Person/{pid}", data=body, headers=_headers(ctype))
    err = assert_error(r, 400, "SoBadRequestException")
    assert ENTITY_MISSING in err["ErrorMessage"], err
    r = admin.post("/api/v1/Person", data=body, headers=_headers(ctype))
    err = assert_error(r, 400, "SoBadRequestException")
    assert ENTITY_MISSING in err["ErrorMessage"], err
