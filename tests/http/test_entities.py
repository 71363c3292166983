"""Entity endpoints (SPEC §1): POST/GET/PUT/DELETE /api/v1/{Person,Contact,Product,Project}."""
import pytest

from conftest import KINDS, KIND_NAMES, assert_error, assert_json_ctype, data, path_of

# kind -> (id field, full carrier keys, string fields, int fields)
CARRIER = {
    "Person": ("PersonId", {"PersonId", "Firstname", "Lastname", "ContactId"},
               ["Firstname", "Lastname"], ["ContactId"]),
    "Contact": ("ContactId", {"ContactId", "Name"}, ["Name"], []),
    "Product": ("ProductId", {"ProductId", "Name", "ERPProductKey"}, ["Name", "ERPProductKey"], []),
    "Project": ("ProjectId", {"ProjectId", "Name", "ProjectNumber"}, ["Name", "ProjectNumber"], []),
}

SAMPLE = {
    "Person": {"Firstname": "Kari", "Lastname": "Nordmann", "ContactId": 0},
    "Contact": {"Name": "SuperOffice AS"},
    "Product": {"Name": "Gizmo", "ERPProductKey": "GZ-9"},
    "Project": {"Name": "Moonshot", "ProjectNumber": "2026-001"},
}


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_create_minimal(admin, kind):
    idf, keys, _, _ = CARRIER[kind]
    r = admin.post(f"/api/v1/{kind}", json=SAMPLE[kind])
    assert r.status_code == 201, r.text
    assert_json_ctype(r)
    body = r.json()
    assert set(body) == keys, body
    eid = body[idf]
    assert isinstance(eid, int) and 0 < eid <= 2**31 - 1
    for k, v in SAMPLE[kind].items():
        assert body[k] == v, (k, body)
    assert path_of(r.headers.get("Location", "")) == f"/api/v1/{kind}/{eid}", r.headers
    g = admin.get(f"/api/v1/{kind}/{eid}")
    assert g.status_code == 200
    assert_json_ctype(g)
    assert g.json() == body


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_create_empty_body_defaults(admin, kind):
    idf, keys, strs, ints = CARRIER[kind]
    r = admin.post(f"/api/v1/{kind}", json={})
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == keys
    for f in strs:
        assert body[f] == "", (f, body)
    for f in ints:
        assert body[f] == 0, (f, body)
    assert body[idf] > 0


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_ids_are_distinct(admin, kind):
    idf = KINDS[kind][0]
    ids = [admin.post(f"/api/v1/{kind}", json={}).json()[idf] for _ in range(5)]
    assert len(set(ids)) == 5, ids


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_create_with_given_free_id(admin, kind):
    idf = KINDS[kind][0]
    want = 1_000_000 + KIND_NAMES.index(kind) * 17
    r = admin.post(f"/api/v1/{kind}", json={idf: want, **SAMPLE[kind]})
    assert r.status_code == 201, r.text
    assert r.json()[idf] == want
    assert path_of(r.headers.get("Location", "")) == f"/api/v1/{kind}/{want}"
    assert admin.get(f"/api/v1/{kind}/{want}").json()[idf] == want


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_create_with_taken_id_409(admin, kind):
    idf = KINDS[kind][0]
    eid = admin.create(kind, **SAMPLE[kind])
    before = admin.get(f"/api/v1/{kind}/{eid}").json()
    r = admin.post(f"/api/v1/{kind}", json={idf: eid})
    assert_error(r, 409, "SoConflictException")
    assert admin.get(f"/api/v1/{kind}/{eid}").json() == before


def test_assigned_id_skips_given_ones(admin):
    # an id given explicitly must not be handed out again later
    r = admin.post("/api/v1/Contact", json={"ContactId": 5_000_000, "Name": "high"})
    assert r.status_code == 201
    ids = {admin.create("Contact") for _ in range(3)}
    assert 5_000_000 not in ids


def test_camelcase_request_fields(admin):
    cid = admin.create("Contact", Name="Camel Co")
    r = admin.post("/api/v1/Person",
                   json={"firstname": "camel", "LASTNAME": "Case", "contactId": cid})
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"PersonId", "Firstname", "Lastname", "ContactId"}, body
    assert (body["Firstname"], body["Lastname"], body["ContactId"]) == ("camel", "Case", cid)
    r = admin.post("/api/v1/Product", json={"name": "p", "erpProductKey": "k"})
    assert r.status_code == 201 and r.json()["ERPProductKey"] == "k", r.text
    r = admin.post("/api/v1/Project", json={"name": "p", "projectnumber": "n"})
    assert r.status_code == 201 and r.json()["ProjectNumber"] == "n", r.text
    r = admin.put(f"/api/v1/Contact/{cid}", json={"name": "renamed"})
    assert r.status_code == 200 and r.json()["Name"] == "renamed", r.text


def test_unicode_roundtrip(admin):
    r = admin.post("/api/v1/Person", json={"Firstname": "Bjørn Ærlig", "Lastname": "Østby 日本"})
    assert r.status_code == 201
    pid = r.json()["PersonId"]
    body = admin.get(f"/api/v1/Person/{pid}").json()
    assert body["Firstname"] == "Bjørn Ærlig" and body["Lastname"] == "Østby 日本"


def test_unknown_fields_ignored(admin):
    r = admin.post("/api/v1/Contact", json={"Name": "x", "Department": "Sales", "Extra": [1, 2]})
    assert r.status_code == 201, r.text
    assert set(r.json()) == {"ContactId", "Name"}


@pytest.mark.parametrize("kind,body", [
    ("Person", {"Firstname": 5}),
    ("Person", {"Lastname": ["a"]}),
    ("Person", {"ContactId": "abc"}),
    ("Person", {"ContactId": 1.5}),
    ("Person", {"ContactId": True}),
    ("Person", {"PersonId": "7"}),
    ("Contact", {"Name": {"x": 1}}),
    ("Contact", {"Name": True}),
    ("Product", {"ERPProductKey": 12}),
    ("Project", {"ProjectNumber": 12}),
    ("Project", {"ProjectId": -5}),
])
def test_create_wrong_type_400(admin, kind, body):
    assert_error(admin.post(f"/api/v1/{kind}", json=body), 400, "SoBadRequestException")


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b"[{}]", b"42", b'"str"', b"nul", b"{\"Name\": \"x\",}"])
def test_create_bad_json_400(admin, body):
    r = admin.post("/api/v1/Contact", data=body, headers={"Content-Type": "application/json"})
    assert_error(r, 400, "SoBadRequestException")


@pytest.mark.parametrize("kind,field", [
    ("Person", "Firstname"), ("Person", "Lastname"), ("Contact", "Name"),
    ("Product", "Name"), ("Product", "ERPProductKey"), ("Project", "Name"),
    ("Project", "ProjectNumber"),
])
def test_string_length_limit(admin, kind, field):
    ok = admin.post(f"/api/v1/{kind}", json={field: "é" * 254})
    assert ok.status_code == 201, ok.text
    assert ok.json()[field] == "é" * 254
    body = assert_error(admin.post(f"/api/v1/{kind}", json={field: "a" * 255}), 400)
    assert field.lower() in body["ErrorMessage"].lower(), body
    eid = ok.json()[KINDS[kind][0]]
    body = assert_error(admin.put(f"/api/v1/{kind}/{eid}", json={field: "b" * 255}), 400)
    assert field.lower() in body["ErrorMessage"].lower(), body
    assert admin.get(f"/api/v1/{kind}/{eid}").json()[field] == "é" * 254


def test_person_contact_must_exist(admin):
    assert_error(admin.post("/api/v1/Person", json={"ContactId": 987654321}), 400)
    pid = admin.create("Person")
    assert_error(admin.put(f"/api/v1/Person/{pid}", json={"ContactId": 987654321}), 400)
    assert admin.get(f"/api/v1/Person/{pid}").json()["ContactId"] == 0


def test_person_with_contact(admin):
    cid = admin.create("Contact", Name="Employer")
    r = admin.post("/api/v1/Person", json={"Firstname": "E", "ContactId": cid})
    assert r.status_code == 201 and r.json()["ContactId"] == cid


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_get_absent_404(admin, kind):
    assert_error(admin.get(f"/api/v1/{kind}/1999999999"), 404, "SoNotFoundException")


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_update(admin, kind):
    idf, keys, strs, _ = CARRIER[kind]
    eid = admin.create(kind, **SAMPLE[kind])
    first = strs[0]
    r = admin.put(f"/api/v1/{kind}/{eid}", json={first: "changed"})
    assert r.status_code == 200, r.text
    assert_json_ctype(r)
    body = r.json()
    assert set(body) == keys
    assert body[idf] == eid
    assert body[first] == "changed"
    for k, v in SAMPLE[kind].items():
        if k != first:
            assert body[k] == v, f"absent field {k} must keep its value: {body}"
    assert admin.get(f"/api/v1/{kind}/{eid}").json() == body


def test_update_all_person_fields(admin):
    c1 = admin.create("Contact")
    c2 = admin.create("Contact")
    pid = admin.create("Person", Firstname="A", Lastname="B", ContactId=c1)
    r = admin.put(f"/api/v1/Person/{pid}", json={"Firstname": "C", "Lastname": "D", "ContactId": c2})
    assert r.json() == {"PersonId": pid, "Firstname": "C", "Lastname": "D", "ContactId": c2}
    r = admin.put(f"/api/v1/Person/{pid}", json={"ContactId": 0})
    assert r.status_code == 200 and r.json()["ContactId"] == 0
    assert r.json()["Firstname"] == "C"


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_update_absent_404(admin, kind):
    assert_error(admin.put(f"/api/v1/{kind}/1999999998", json={"Name": "x"}), 404)
    assert_error(admin.get(f"/api/v1/{kind}/1999999998"), 404)


@pytest.mark.parametrize("body", [b"{", b"[]", b"5", b"\"x\""])
def test_update_bad_json_400(admin, body):
    pid = admin.create("Person")
    r = admin.put(f"/api/v1/Person/{pid}", data=body, headers={"Content-Type": "application/json"})
    assert_error(r, 400)


def test_update_wrong_type_400(admin):
    pid = admin.create("Person", Firstname="Keep")
    assert_error(admin.put(f"/api/v1/Person/{pid}", json={"Firstname": 1}), 400)
    assert admin.get(f"/api/v1/Person/{pid}").json()["Firstname"] == "Keep"


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_delete_removes_entity_and_image(admin, kind):
    eid = admin.create(kind, **SAMPLE[kind])
    admin.put_image(kind, eid, data("small.png"), "image/png")
    assert admin.put_info(kind, eid, {"Description": "doomed"}).status_code == 200
    r = admin.delete(f"/api/v1/{kind}/{eid}")
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_error(admin.get(f"/api/v1/{kind}/{eid}"), 404)
    assert_error(admin.get(f"/api/v1/{kind}/{eid}/ImageInfo"), 404)
    assert_error(admin.get(f"/api/v1/{kind}/{eid}/Image"), 404)
    assert_error(admin.get(f"/api/v1/{kind}/{eid}/Image?ifBlank=Null"), 404)
    # PUT Image on the deleted entity: entity absent -> 400
    assert_error(admin.put(f"/api/v1/{kind}/{eid}/Image", data=data("small.png")), 400)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_recreate_with_same_id_after_delete_has_no_image(admin, kind):
    idf = KINDS[kind][0]
    eid = admin.create(kind)
    admin.put_image(kind, eid, data("small.gif"), "image/gif")
    assert admin.delete(f"/api/v1/{kind}/{eid}").status_code == 204
    r = admin.post(f"/api/v1/{kind}", json={idf: eid})
    assert r.status_code == 201, r.text
    assert_error(admin.get(f"/api/v1/{kind}/{eid}/Image"), 404)
    info = admin.info(kind, eid)
    assert info["BlobId"] == 0 and info["Description"] == ""


def test_delete_contact_clears_person_contact(admin):
    cid = admin.create("Contact", Name="Closing down")
    p1 = admin.create("Person", Firstname="One", ContactId=cid)
    p2 = admin.create("Person", Firstname="Two", ContactId=cid)
    other = admin.create("Contact")
    p3 = admin.create("Person", Firstname="Three", ContactId=other)
    assert admin.delete(f"/api/v1/Contact/{cid}").status_code == 204
    for pid, name in ((p1, "One"), (p2, "Two")):
        body = admin.get(f"/api/v1/Person/{pid}").json()
        assert body["ContactId"] == 0, body
        assert body["Firstname"] == name
    assert admin.get(f"/api/v1/Person/{p3}").json()["ContactId"] == other


def test_delete_does_not_touch_other_entities(admin):
    a = admin.create("Person")
    b = admin.create("Person")
    admin.put_image("Person", a, data("small.png"))
    bid_b = admin.put_image("Person", b, data("small.jpg"))
    assert admin.delete(f"/api/v1/Person/{a}").status_code == 204
    assert admin.get_image("Person", b).content == data("small.jpg")
    assert admin.info("Person", b)["BlobId"] == bid_b


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_delete_absent_is_404_or_204(admin, kind):
    r = admin.delete(f"/api/v1/{kind}/1999999997")
    assert r.status_code in (204, 404), r.status_code
    if r.status_code == 404:
        assert_error(r, 404)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_ids_still_assigned_after_max_int32_id_taken(make_server, kind):
    """Importing an entity with id 2147483647 must not make creation impossible."""
    s = make_server()
    c = s.client("admin")
    idf = KINDS[kind][0]
    first = c.create(kind)
    r = c.post(f"/api/v1/{kind}", json={idf: 2147483647})
    assert r.status_code == 201, r.text
    r = c.post(f"/api/v1/{kind}", json={})
    assert r.status_code == 201, f"no id assigned after id 2147483647 was taken: {r.text}"
    new = r.json()[idf]
    assert 0 < new < 2147483647 and new != first, new
    assert c.get(f"/api/v1/{kind}/{new}").status_code == 200


def test_nul_in_string_rejected_or_kept(admin):
    r = admin.post("/api/v1/Contact", data=b'{"Name": "a\\u0000b"}',
                   headers={"Content-Type": "application/json"})
    if r.status_code == 201:
        assert r.json()["Name"] == "a\x00b", "a string with NUL must not be truncated"
    else:
        assert_error(r, 400)


@pytest.mark.parametrize("body", [b"[" * 60000, b'{"a":' * 10000 + b"1" + b"}" * 10000],
                         ids=["arrays", "objects"])
def test_deeply_nested_json_400(srv, admin, body):
    r = admin.post("/api/v1/Person", data=body, headers={"Content-Type": "application/json"})
    assert_error(r, 400)
    assert srv.alive()


def test_invalid_utf8_in_string_400(admin):
    r = admin.post("/api/v1/Contact", data=b'{"Name": "caf\xe9"}',
                   headers={"Content-Type": "application/json"})
    assert_error(r, 400)


def test_length_counts_characters_not_bytes(admin):
    ok = admin.post("/api/v1/Contact", json={"Name": "\U0001F600" * 254})
    assert ok.status_code == 201, ok.text
    assert ok.json()["Name"] == "\U0001F600" * 254
    body = assert_error(admin.post("/api/v1/Contact", json={"Name": "\U0001F600" * 255}), 400)
    assert "name" in body["ErrorMessage"].lower()
