"""GET/PUT /api/v1/{E}/{id}/ImageInfo: the BlobEntity carrier (SPEC §2, §3, §5)."""
import datetime as dt
import json
import time

import pytest

from conftest import (BLOB_KEYS, DATE_RE, EMPTY_DATE, FIELD_NAMES, KIND_NAMES, assert_error,
                      assert_json_ctype, data, image)

ASSOCIATE_KEYS = {"AssociateId", "Name", "PersonId", "Rank", "Tooltip", "Type", "GroupIdx",
                  "FullName", "FormalName", "Deleted", "EjUserId", "UserName"}
FIELD_TYPES = {
    "BlobId": "System.Int32", "BlobSize": "System.Int32", "OriginalSize": "System.Int32",
    "Description": "System.String", "ExtraInfo": "System.String", "MimeType": "System.String",
    "ConceptualType": "System.String",
    "IsEncrypted": "System.Boolean", "IsZipped": "System.Boolean",
    "CreatedDate": "System.DateTime", "UpdatedDate": "System.DateTime",
    "CreatedBy": "SuperOffice.CRM.Services.Associate",
    "UpdatedBy": "SuperOffice.CRM.Services.Associate",
}
CLIENT_FIELDS = ["Description", "ExtraInfo", "ConceptualType"]


def default_ctype(kind):
    return "PERSONPHOTO" if kind == "Person" else "PHOTO"


def parse_date(s):
    assert DATE_RE.match(s), f"bad date {s!r}"
    base = s[:19]
    return dt.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc)


def check_rights(info, writer):
    assert info["TableRight"] == {"Mask": "FULL" if writer else "Select", "Reason": ""}, \
        info["TableRight"]
    fp = info["FieldProperties"]
    assert isinstance(fp, dict), fp
    assert set(fp) == set(FIELD_NAMES), sorted(fp)
    for name in FIELD_NAMES:
        mask = "Update" if (writer and name in CLIENT_FIELDS) else "Read"
        length = 254 if FIELD_TYPES[name] == "System.String" else 0
        assert fp[name] == {
            "FieldRight": {"Mask": mask, "Reason": ""},
            "FieldType": FIELD_TYPES[name],
            "FieldLength": length,
        }, (name, fp[name])


def check_empty(info, writer=True):
    assert set(info) == BLOB_KEYS, sorted(info)
    assert info["BlobId"] == 0
    assert info["BlobSize"] == 0 and info["OriginalSize"] == 0
    for f in ("Description", "ExtraInfo", "MimeType", "ConceptualType"):
        assert info[f] == "", (f, info[f])
    assert info["IsEncrypted"] is False and info["IsZipped"] is False
    assert info["CreatedDate"] == EMPTY_DATE and info["UpdatedDate"] == EMPTY_DATE
    assert info["CreatedBy"] is None and info["UpdatedBy"] is None
    check_rights(info, writer)


def check_associate(a, srv, user):
    assert isinstance(a, dict), a
    assert set(a) == ASSOCIATE_KEYS, sorted(a)
    assert isinstance(a["AssociateId"], int) and not isinstance(a["AssociateId"], bool)
    assert a["AssociateId"] > 0
    assert a["Name"] == user
    assert a["UserName"] == user
    assert a["FullName"] == srv.users[user][2]
    assert a["PersonId"] == 0 and a["Rank"] == 0 and a["GroupIdx"] == 0 and a["EjUserId"] == 0
    assert isinstance(a["Tooltip"], str) and isinstance(a["FormalName"], str)
    assert a["Type"] == "InternalAssociate"
    assert a["Deleted"] is False


def now_utc():
    return dt.datetime.now(dt.timezone.utc)


def check_recent(s, slack=300):
    d = parse_date(s)
    delta = abs((now_utc() - d).total_seconds())
    assert delta < slack, f"date {s} is {delta:.0f}s away from now (not UTC?)"
    return d


# --------------------------------------------------------------------------
# GET


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_empty_carrier(admin, kind):
    eid = admin.create(kind)
    r = admin.get(f"/api/v1/{kind}/{eid}/ImageInfo")
    assert r.status_code == 200
    assert_json_ctype(r)
    check_empty(r.json(), writer=True)


@pytest.mark.parametrize("user,writer", [("alice", True), ("victor", False)])
def test_empty_carrier_rights_by_role(srv, admin, user, writer):
    pid = admin.create("Person")
    check_empty(srv.client(user).info("Person", pid), writer=writer)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_info_entity_absent_404(admin, kind):
    assert_error(admin.get(f"/api/v1/{kind}/1999999950/ImageInfo"), 404, "SoNotFoundException")
    assert_error(admin.put(f"/api/v1/{kind}/1999999950/ImageInfo", json={"Description": "x"}),
                 404, "SoNotFoundException")


@pytest.mark.parametrize("body", ['{"Description": 5}', '{"Description": "x"',
                                  '[1]', ''])
@pytest.mark.parametrize("headers", [{}, {"If-Match": "*"}])
def test_info_put_refused_body_absent_entity_404(admin, body, headers):
    """The entity's absence outranks a bad body, with or without a precondition."""
    h = {"Content-Type": "application/json", **headers}
    r = admin.put("/api/v1/Person/1999999951/ImageInfo", data=body, headers=h)
    assert_error(r, 404, "SoNotFoundException")
    assert r.headers.get("WWW-Authenticate") is None
    pid = admin.create("Person")
    r = admin.put(f"/api/v1/Person/{pid}/ImageInfo", data=body, headers=h)
    assert r.status_code == 400, r.text
    assert r.json()["ErrorType"] != "SoNotFoundException"


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_info_after_upload(srv, alice, kind):
    eid = alice.create(kind)
    body, mime = image("jpg")
    bid = alice.put_image(kind, eid, body, mime)
    info = alice.info(kind, eid)
    assert set(info) == BLOB_KEYS, sorted(info)
    assert info["BlobId"] == bid
    assert info["BlobSize"] == len(body)
    assert info["OriginalSize"] == len(body)
    assert info["MimeType"] == "image/jpeg"
    assert info["IsEncrypted"] is False and info["IsZipped"] is False
    assert info["Description"] == "" and info["ExtraInfo"] == ""
    assert info["ConceptualType"] == default_ctype(kind)
    c = check_recent(info["CreatedDate"])
    u = check_recent(info["UpdatedDate"])
    assert u >= c
    check_associate(info["CreatedBy"], srv, "alice")
    check_associate(info["UpdatedBy"], srv, "alice")
    check_rights(info, writer=True)


@pytest.mark.parametrize("user,writer", [("admin", True), ("bob", True), ("victor", False)])
def test_rights_by_role_with_image(srv, alice, user, writer):
    pid = alice.create("Contact")
    alice.put_image("Contact", pid, data("small.png"))
    check_rights(srv.client(user).info("Contact", pid), writer)


def test_associate_ids_stable_and_distinct(srv, alice, bob):
    a1 = alice.create("Person")
    a2 = alice.create("Person")
    alice.put_image("Person", a1, data("small.png"))
    alice.put_image("Person", a2, data("small.png"))
    b1 = bob.create("Person")
    bob.put_image("Person", b1, data("small.png"))
    ida1 = alice.info("Person", a1)["CreatedBy"]["AssociateId"]
    ida2 = alice.info("Person", a2)["CreatedBy"]["AssociateId"]
    idb = alice.info("Person", b1)["CreatedBy"]["AssociateId"]
    assert ida1 == ida2
    assert ida1 != idb
    check_associate(alice.info("Person", b1)["CreatedBy"], srv, "bob")


def test_associate_unicode_full_name(make_server):
    s = make_server(users={"ase": ("editor", "pw-ase-1", "Åse Ødegård 日本")})
    c = s.client("ase")
    pid = c.create("Person")
    c.put_image("Person", pid, data("small.png"))
    a = c.info("Person", pid)["CreatedBy"]
    assert a["FullName"] == "Åse Ødegård 日本" and a["UserName"] == "ase"


def test_replacement_by_other_user(srv, alice, bob):
    pid = alice.create("Person")
    bid = alice.put_image("Person", pid, data("small.png"))
    first = alice.info("Person", pid)
    time.sleep(1.1)
    assert bob.put_image("Person", pid, data("small.jpg")) == bid
    info = alice.info("Person", pid)
    check_associate(info["CreatedBy"], srv, "alice")
    check_associate(info["UpdatedBy"], srv, "bob")
    assert info["CreatedDate"] == first["CreatedDate"]
    assert parse_date(info["UpdatedDate"]) > parse_date(first["UpdatedDate"])


def test_put_info_by_other_user_sets_updated_by(srv, alice, bob):
    pid = alice.create("Project")
    alice.put_image("Project", pid, data("small.png"))
    r = bob.put_info("Project", pid, {"Description": "bob was here"})
    assert r.status_code == 200
    check_associate(r.json()["CreatedBy"], srv, "alice")
    check_associate(r.json()["UpdatedBy"], srv, "bob")


# --------------------------------------------------------------------------
# PUT


@pytest.mark.parametrize("ctype", [
    "application/json", "text/json", "application/json; charset=utf-8",
    "application/json;charset=UTF-8", "text/json; charset=utf-8", None,
])
def test_put_info_content_types(admin, ctype):
    pid = admin.create("Person")
    admin.put_image("Person", pid, data("small.png"))
    body = json.dumps({"Description": "ct ok", "ExtraInfo": str(ctype)}).encode()
    headers = {"Content-Type": ctype} if ctype else {}
    r = admin.put(f"/api/v1/Person/{pid}/ImageInfo", data=body, headers=headers)
    assert r.status_code == 200, r.text
    assert_json_ctype(r)
    out = r.json()
    assert out["Description"] == "ct ok" and out["ExtraInfo"] == str(ctype)
    assert admin.info("Person", pid) == out


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_put_info_sets_client_fields(srv, admin, kind):
    eid = admin.create(kind)
    bid = admin.put_image(kind, eid, data("small.gif"))
    r = admin.put_info(kind, eid, {"Description": "D1", "ExtraInfo": "E1", "ConceptualType": "LOGO"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) == BLOB_KEYS
    assert (out["Description"], out["ExtraInfo"], out["ConceptualType"]) == ("D1", "E1", "LOGO")
    assert out["BlobId"] == bid
    assert out["MimeType"] == "image/gif"
    assert out["BlobSize"] == out["OriginalSize"] == len(data("small.gif"))
    check_associate(out["UpdatedBy"], srv, "admin")
    check_rights(out, True)
    assert admin.info(kind, eid) == out
    assert admin.get_image(kind, eid).content == data("small.gif")


def test_server_fields_ignored_plausible_values(admin):
    pid = admin.create("Person")
    bid = admin.put_image("Person", pid, data("small.png"))
    before = admin.info("Person", pid)
    r = admin.put_info("Person", pid, {
        "BlobId": 605, "BlobSize": 432, "Description": "d", "ExtraInfo": "e",
        "IsEncrypted": True, "IsZipped": True, "MimeType": "text/html", "OriginalSize": 244,
        "CreatedDate": "2003-12-07T02:49:51.3078143+01:00",
        "UpdatedDate": "2005-09-08T02:49:51.3078143+02:00",
        "CreatedBy": None, "UpdatedBy": None, "ConceptualType": "c",
        "TableRight": {"Mask": "Delete", "Reason": ""},
        "FieldProperties": {"BlobId": {"FieldRight": None, "FieldType": "x", "FieldLength": 1}},
    })
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["BlobId"] == bid
    assert out["BlobSize"] == out["OriginalSize"] == len(data("small.png"))
    assert out["IsEncrypted"] is False and out["IsZipped"] is False
    assert out["MimeType"] == "image/png"
    assert out["CreatedDate"] == before["CreatedDate"]
    assert not out["UpdatedDate"].startswith("2005")
    assert out["CreatedBy"] == before["CreatedBy"]
    assert out["UpdatedBy"] is not None
    check_rights(out, True)
    assert admin.get_image("Person", pid).content == data("small.png")


def test_server_fields_ignored_weird_types(admin):
    pid = admin.create("Contact")
    bid = admin.put_image("Contact", pid, data("small.jpg"))
    r = admin.put_info("Contact", pid, {
        "BlobId": "not a number", "BlobSize": [1, 2], "IsEncrypted": "yes", "IsZipped": 7,
        "MimeType": 12, "OriginalSize": {"a": 1}, "CreatedDate": 5, "UpdatedDate": False,
        "CreatedBy": "someone", "UpdatedBy": [None], "TableRight": 3, "FieldProperties": "x",
        "Description": "still fine",
    })
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["Description"] == "still fine"
    assert out["BlobId"] == bid and out["MimeType"] == "image/jpeg"
    assert out["IsEncrypted"] is False and out["IsZipped"] is False


def test_unknown_fields_ignored(admin):
    pid = admin.create("Person")
    r = admin.put_info("Person", pid, {"Description": "u", "Whatever": [1, {"x": None}],
                                       "Nested": {"Description": "not me"}, "image": "AAAA"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) == BLOB_KEYS
    assert out["Description"] == "u"


def test_keys_case_insensitive(admin):
    pid = admin.create("Person")
    r = admin.put_info("Person", pid, {"description": "lower", "EXTRAINFO": "upper",
                                       "conceptualType": "camel", "blobId": 0})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["Description"], out["ExtraInfo"], out["ConceptualType"]) == \
        ("lower", "upper", "camel")
    assert "description" not in out


def test_absent_client_fields_keep_value(admin):
    pid = admin.create("Product")
    admin.put_image("Product", pid, data("small.png"))
    r = admin.put_info("Product", pid, {"Description": "D", "ExtraInfo": "E", "ConceptualType": "C"})
    assert r.status_code == 200
    r = admin.put_info("Product", pid, {"ExtraInfo": "E2"})
    assert r.status_code == 200
    out = r.json()
    assert (out["Description"], out["ExtraInfo"], out["ConceptualType"]) == ("D", "E2", "C")
    r = admin.put_info("Product", pid, {})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["Description"], out["ExtraInfo"], out["ConceptualType"]) == ("D", "E2", "C")
    r = admin.put_info("Product", pid, {"Description": ""})
    assert r.json()["Description"] == "" and r.json()["ExtraInfo"] == "E2"


@pytest.mark.parametrize("field", CLIENT_FIELDS)
@pytest.mark.parametrize("value", [5, 1.5, True, [], {}, ["a"]])
def test_client_field_wrong_type_400(admin, field, value):
    pid = admin.create("Person")
    assert admin.put_info("Person", pid, {"Description": "keep"}).status_code == 200
    before = admin.info("Person", pid)
    assert_error(admin.put_info("Person", pid, {field: value}), 400, "SoBadRequestException")
    assert admin.info("Person", pid) == before


@pytest.mark.parametrize("field", CLIENT_FIELDS)
def test_string_length_limit(admin, field):
    pid = admin.create("Person")
    admin.put_image("Person", pid, data("small.png"))
    ok = admin.put_info("Person", pid, {field: "é" * 254})
    assert ok.status_code == 200, ok.text
    assert ok.json()[field] == "é" * 254
    assert admin.info("Person", pid)[field] == "é" * 254
    for bad in ("a" * 255, "é" * 255, "日" * 300):
        body = assert_error(admin.put_info("Person", pid, {field: bad}), 400)
        assert field.lower() in body["ErrorMessage"].lower(), body
    assert admin.info("Person", pid)[field] == "é" * 254


def test_254_ascii_ok(admin):
    pid = admin.create("Person")
    r = admin.put_info("Person", pid, {"Description": "d" * 254, "ExtraInfo": "e" * 254})
    assert r.status_code == 200
    assert r.json()["Description"] == "d" * 254


def test_unicode_roundtrip(admin):
    pid = admin.create("Person")
    text = "Smørbrød – 日本語 – \U0001F600 \"quoted\" \\ back\nline\ttab"
    r = admin.put(f"/api/v1/Person/{pid}/ImageInfo",
                  data=json.dumps({"Description": text}, ensure_ascii=False).encode("utf-8"),
                  headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200, r.text
    assert r.json()["Description"] == text
    assert admin.info("Person", pid)["Description"] == text
    r = admin.put_info("Person", pid, {"ExtraInfo": "\u00e9\u00e8"})  # \\u escapes
    assert r.json()["ExtraInfo"] == "éè"


@pytest.mark.parametrize("body,ctype", [
    (b"", "application/json"), (b"", None), (b"null", "application/json"),
    (b"null", None), (b"  null \n", "application/json; charset=utf-8"), (b"", "text/json"),
])
def test_empty_or_null_body_400(admin, body, ctype):
    pid = admin.create("Person")
    headers = {"Content-Type": ctype} if ctype else {}
    r = admin.put(f"/api/v1/Person/{pid}/ImageInfo", data=body, headers=headers)
    err = assert_error(r, 400, "SoBadRequestException")
    assert "Entity to save is not in request body" in err["ErrorMessage"], err
    check_empty(admin.info("Person", pid))


@pytest.mark.parametrize("body", [
    b"{", b"{\"Description\": }", b"{\"Description\": \"x\",}", b"[]", b"[{\"Description\": \"x\"}]",
    b"42", b"\"Description\"", b"true", b"{\"Description\": \"x\"} trailing",
    b"{'Description': 'x'}", b"\xff\xfe{}",
])
def test_bad_json_400(admin, body):
    pid = admin.create("Person")
    r = admin.put(f"/api/v1/Person/{pid}/ImageInfo", data=body,
                  headers={"Content-Type": "application/json"})
    assert_error(r, 400, "SoBadRequestException")
    check_empty(admin.info("Person", pid))


@pytest.mark.parametrize("ctype", ["text/plain", "application/octet-stream", "image/png",
                                   "application/pdf", "text/html; charset=utf-8"])
def test_unsupported_content_type_415(admin, ctype):
    pid = admin.create("Person")
    r = admin.put(f"/api/v1/Person/{pid}/ImageInfo", data=b'{"Description": "x"}',
                  headers={"Content-Type": ctype})
    assert_error(r, 415, "SoUnsupportedMediaTypeException")
    check_empty(admin.info("Person", pid))


def test_body_over_64k_413(admin):
    pid = admin.create("Person")
    body = json.dumps({"Description": "x", "Padding": "p" * (64 * 1024)}).encode()
    assert len(body) > 65536
    r = admin.put(f"/api/v1/Person/{pid}/ImageInfo", data=body,
                  headers={"Content-Type": "application/json"})
    assert_error(r, 413, "SoTooLargeException")
    check_empty(admin.info("Person", pid))


def _chunks(b, n=1000):
    for i in range(0, len(b), n):
        yield b[i:i + n]


def test_chunked_json_body(admin):
    pid = admin.create("Person")
    body = json.dumps({"Description": "chunked", "ExtraInfo": "x" * 200}).encode()
    r = admin.put(f"/api/v1/Person/{pid}/ImageInfo", data=_chunks(body, 7),
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["Description"] == "chunked"


def test_chunked_json_body_over_64k_413(admin):
    pid = admin.create("Person")
    body = json.dumps({"Description": "x", "Padding": "p" * (80 * 1024)}).encode()
    r = admin.put(f"/api/v1/Person/{pid}/ImageInfo", data=_chunks(body, 4096),
                  headers={"Content-Type": "application/json"})
    assert_error(r, 413, "SoTooLargeException")
    check_empty(admin.info("Person", pid))


def test_body_just_under_64k_ok(admin):
    pid = admin.create("Person")
    pad = 64 * 1024 - len(json.dumps({"Description": "x", "Padding": ""})) - 10
    body = json.dumps({"Description": "x", "Padding": "p" * pad}).encode()
    assert len(body) < 65536
    r = admin.put(f"/api/v1/Person/{pid}/ImageInfo", data=body,
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text


# --------------------------------------------------------------------------
# record life cycle


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_put_info_without_image_creates_record(srv, admin, kind):
    eid = admin.create(kind)
    r = admin.put_info(kind, eid, {"Description": "before bytes", "ExtraInfo": "x"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) == BLOB_KEYS
    assert isinstance(out["BlobId"], int) and out["BlobId"] > 0
    assert out["BlobSize"] == 0 and out["OriginalSize"] == 0
    assert out["MimeType"] == ""
    assert out["Description"] == "before bytes"
    assert out["ConceptualType"] == default_ctype(kind)
    check_recent(out["CreatedDate"])
    check_associate(out["CreatedBy"], srv, "admin")
    assert admin.info(kind, eid) == out
    assert_error(admin.get_image(kind, eid), 404)
    # a later upload fills the same record
    bid = admin.put_image(kind, eid, data("small.png"))
    assert bid == out["BlobId"]
    info = admin.info(kind, eid)
    assert info["BlobId"] == bid
    assert info["Description"] == "before bytes" and info["ExtraInfo"] == "x"
    assert info["MimeType"] == "image/png"
    assert info["BlobSize"] == info["OriginalSize"] == len(data("small.png"))


def test_second_put_info_without_image_keeps_blob_id(admin):
    pid = admin.create("Person")
    b1 = admin.put_info("Person", pid, {"Description": "1"}).json()["BlobId"]
    b2 = admin.put_info("Person", pid, {"Description": "2"}).json()["BlobId"]
    assert b1 == b2


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_replace_keeps_client_fields(admin, kind):
    eid = admin.create(kind)
    png = data("small.png")
    bid = admin.put_image(kind, eid, png)
    r = admin.put_info(kind, eid, {"Description": "keep D", "ExtraInfo": "keep E",
                                   "ConceptualType": "keep C"})
    assert r.status_code == 200
    before = r.json()
    time.sleep(1.1)
    jpg = data("photo.jpg")
    assert admin.put_image(kind, eid, jpg, "image/jpeg", method="POST") == bid
    after = admin.info(kind, eid)
    assert after["BlobId"] == bid
    assert (after["Description"], after["ExtraInfo"], after["ConceptualType"]) == \
        ("keep D", "keep E", "keep C")
    assert after["BlobSize"] == after["OriginalSize"] == len(jpg)
    assert after["MimeType"] == "image/jpeg"
    assert after["CreatedDate"] == before["CreatedDate"]
    assert parse_date(after["UpdatedDate"]) > parse_date(before["UpdatedDate"])
    assert admin.get_image(kind, eid).content == jpg


def test_put_info_does_not_change_bytes(admin):
    pid = admin.create("Person")
    body = data("small_be.tif")
    admin.put_image("Person", pid, body)
    g1 = admin.get_image("Person", pid)
    for i in range(3):
        assert admin.put_info("Person", pid, {"Description": f"v{i}"}).status_code == 200
    g2 = admin.get_image("Person", pid)
    assert g2.content == body
    assert g2.headers["Content-Type"].split(";")[0] == "image/tiff"
    assert g2.headers["Content-Length"] == g1.headers["Content-Length"]
    info = admin.info("Person", pid)
    assert info["BlobSize"] == info["OriginalSize"] == len(body) and info["MimeType"] == "image/tiff"


def test_put_info_updates_updated_date(admin):
    pid = admin.create("Person")
    admin.put_image("Person", pid, data("small.png"))
    before = admin.info("Person", pid)
    time.sleep(1.1)
    out = admin.put_info("Person", pid, {"Description": "later"}).json()
    assert out["CreatedDate"] == before["CreatedDate"]
    assert parse_date(out["UpdatedDate"]) > parse_date(before["UpdatedDate"])


# --------------------------------------------------------------------------
# Project ?projectId=


def test_project_id_query_applies_to_that_project(admin):
    p1 = admin.create("Project")
    p2 = admin.create("Project")
    r = admin.put(f"/api/v1/Project/{p1}/ImageInfo?projectId={p1}", json={"Description": "same"})
    assert r.status_code == 200, r.text
    assert admin.info("Project", p1)["Description"] == "same"
    r = admin.put(f"/api/v1/Project/{p2}/ImageInfo?projectId={p1}", json={"Description": "other"})
    assert_error(r, 400, "SoBadRequestException")
    assert admin.info("Project", p1)["Description"] == "same"
    check_empty(admin.info("Project", p2))


@pytest.mark.parametrize("bad", ["abc", "0", "-1", "2147483648", "1.5"])
def test_project_id_query_invalid_400(admin, bad):
    p = admin.create("Project")
    r = admin.put(f"/api/v1/Project/{p}/ImageInfo?projectId={bad}", json={"Description": "x"})
    assert_error(r, 400, "SoBadRequestException")
    check_empty(admin.info("Project", p))


def test_project_id_query_absent_project_404(admin):
    r = admin.put("/api/v1/Project/1999999940/ImageInfo?projectId=1999999940",
                  json={"Description": "x"})
    assert_error(r, 404)
