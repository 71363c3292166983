"""Entity lists (SPEC §11): GET /api/v1/{E} with $top, $skip, $select,
$orderby, $filter=name begins '...', a `value` array and odata.nextLink.

Each test makes entities whose names start with a prefix of its own and
filters on it, so tests sharing a server (xdist workers, other modules'
entities) never see each other's rows."""
import uuid
from urllib.parse import quote

import pytest

from conftest import (assert_error, assert_json_ctype, image, parse_xml_answer, xml_child,
                      xml_local, xml_text)

NAME_FIELD = {"Person": "Lastname", "Contact": "Name", "Product": "Name", "Project": "Name"}
ID_FIELD = {"Person": "PersonId", "Contact": "ContactId", "Product": "ProductId",
            "Project": "ProjectId"}


def tag():
    """A prefix of letters only, unique to the caller."""
    return "L" + uuid.uuid4().hex[:10].translate(str.maketrans("0123456789", "ghijklmnop"))


def make(client, kind, names):
    ids = []
    for n in names:
        r = client.post(f"/api/v1/{kind}", json={NAME_FIELD[kind]: n})
        assert r.status_code == 201, r.text
        ids.append(r.json()[ID_FIELD[kind]])
    return ids


def flt(prefix):
    return quote(f"name begins '{prefix}'")


def walk(client, first):
    """Every page from first by its next links: (items, pages)."""
    items, pages, url = [], 0, first
    while url:
        r = client.get(url)
        assert r.status_code == 200, r.text
        assert_json_ctype(r)
        body = r.json()
        items += body["value"]
        pages += 1
        url = body.get("odata.nextLink")
        assert pages < 100
    return items, pages


@pytest.mark.parametrize("kind", ["Person", "Contact", "Product", "Project"])
def test_pages_followed_to_the_end(admin, kind):
    p = tag()
    ids = make(admin, kind, [f"{p}{i:02d}" for i in range(7)])
    items, pages = walk(admin, f"/api/v1/{kind}?$top=3&$filter={flt(p)}")
    assert pages == 3
    assert [it[ID_FIELD[kind]] for it in items] == ids  # by id by default
    one = admin.get(f"/api/v1/{kind}/{ids[0]}").json()
    assert {k: items[0][k] for k in one} == one  # each item is the carrier
    assert items[0]["ImageBlobId"] == 0 and items[0]["ImageVersion"] == 0


def test_skip_and_last_page_has_no_link(admin):
    p = tag()
    ids = make(admin, "Contact", [p + c for c in "abcde"])
    r = admin.get(f"/api/v1/Contact?$top=2&$skip=3&$filter={flt(p)}").json()
    assert [it["ContactId"] for it in r["value"]] == ids[3:]
    assert "odata.nextLink" not in r
    r = admin.get(f"/api/v1/Contact?$top=2&$skip=1&$filter={flt(p)}").json()
    assert [it["ContactId"] for it in r["value"]] == ids[1:3]
    assert "$skip=3" in r["odata.nextLink"] and "$top=2" in r["odata.nextLink"]
    empty = admin.get(f"/api/v1/Contact?$skip=9&$filter={flt(p)}").json()
    assert empty == {"odata.metadata": "/api/v1/$metadata#Contact", "value": []}


def test_default_top_is_50(admin):
    p = tag()
    make(admin, "Project", [f"{p}{i:02d}" for i in range(51)])
    r = admin.get(f"/api/v1/Project?$filter={flt(p)}").json()
    assert len(r["value"]) == 50 and "odata.nextLink" in r
    items, pages = walk(admin, f"/api/v1/Project?$top=500&$filter={flt(p)}")
    assert len(items) == 51 and pages == 1


def test_orderby_both_ways_and_several_keys(admin):
    p = tag()
    names = [p + s for s in ["b", "A", "c", "a"]]  # "A" and "a" tie case-insensitively
    ids = make(admin, "Contact", names)
    asc = admin.get(f"/api/v1/Contact?$orderby=Name&$filter={flt(p)}").json()["value"]
    assert [it["ContactId"] for it in asc] == [ids[1], ids[3], ids[0], ids[2]]
    desc = admin.get(f"/api/v1/Contact?$orderBy=name%20desc&$filter={flt(p)}").json()["value"]
    assert [it["ContactId"] for it in desc] == [ids[2], ids[0], ids[3], ids[1]]
    two = admin.get(f"/api/v1/Contact?$orderby=Name%20asc,ContactId%20desc&$filter={flt(p)}")
    assert [it["ContactId"] for it in two.json()["value"]] == [ids[3], ids[1], ids[0], ids[2]]
    # pages of an ordered list are its slices, next links keep the order
    items, pages = walk(admin, f"/api/v1/Contact?$top=1&$orderby=Name%20desc&$filter={flt(p)}")
    assert pages == 4 and items == desc


def test_filter_is_a_case_insensitive_prefix_of_person_names(admin):
    p = tag()
    a = admin.post("/api/v1/Person", json={"Firstname": p + "Ann", "Lastname": "X"}).json()
    b = admin.post("/api/v1/Person", json={"Firstname": "Y", "Lastname": p.lower() + "bo"}).json()
    admin.post("/api/v1/Person", json={"Firstname": "Z" + p, "Lastname": "Z" + p})
    r = admin.get(f"/api/v1/Person?$filter={flt(p.upper())}").json()["value"]
    assert [it["PersonId"] for it in r] == [a["PersonId"], b["PersonId"]]
    r = admin.get(f"/api/v1/Person?$filter={flt(p + 'a')}").json()["value"]
    assert [it["PersonId"] for it in r] == [a["PersonId"]]
    q = quote(f"Name  BEGINS  '{p}''s' ")  # keywords any case; '' is a quote
    admin.post("/api/v1/Contact", json={"Name": p + "'s shop"})
    assert len(admin.get(f"/api/v1/Contact?$filter={q}").json()["value"]) == 1


def test_select(admin):
    p = tag()
    make(admin, "Product", [p + "1", p + "2"])
    r = admin.get(f"/api/v1/Product?$select=name,ImageVersion&$filter={flt(p)}")
    assert r.status_code == 200
    assert r.json()["value"] == [{"Name": p + "1", "ImageVersion": 0},
                                 {"Name": p + "2", "ImageVersion": 0}]
    # an unknown field is refused even when the page is empty
    body = assert_error(admin.get("/api/v1/Product?$select=Name,Colour&$filter=name%20begins%20'zzq'"),
                        400)
    assert "Colour" in body["ErrorMessage"]


def test_image_version_follows_the_picture(admin):
    p = tag()
    [pid] = make(admin, "Person", [p])
    body, mime = image("png")
    r = admin.put(f"/api/v1/Person/{pid}/Image", data=body, headers={"Content-Type": mime})
    assert r.status_code in (200, 201, 204), r.text
    it = admin.get(f"/api/v1/Person?$filter={flt(p)}").json()["value"][0]
    assert it["ImageBlobId"] > 0 and it["ImageVersion"] >= 1
    g = admin.get(f"/api/v1/Person/{pid}/Image?w=32&h=32")
    assert g.status_code == 200
    assert g.headers["ETag"].startswith(f'"{it["ImageBlobId"]}.{it["ImageVersion"]}')


@pytest.mark.parametrize("query,names", [
    ("$top=0", "$top"), ("$top=501", "$top"), ("$top=x", "$top"), ("$top=-1", "$top"),
    ("$skip=-1", "$skip"), ("$skip=1e3", "$skip"),
    ("$orderby=Colour", "Colour"), ("$orderby=Name%20sideways", "Name sideways"),
    ("$orderby=Name,Name,Name,Name,Name", "Name"),
    ("$filter=name%20eq%20'x'", "name eq 'x'"), ("$filter=name%20begins%20'x", "name begins 'x"),
])
def test_bad_arguments_400_with_the_reason(admin, query, names):
    body = assert_error(admin.get(f"/api/v1/Contact?{query}"), 400)
    assert names in body["ErrorMessage"], body


def test_bad_argument_reason_in_german(admin):
    r = admin.get("/api/v1/Contact?$top=900", headers={"Accept-Language": "de"})
    body = assert_error(r, 400)
    assert "ganze Zahl" in body["ErrorMessage"] and "900" in body["ErrorMessage"], body
    r = admin.get("/api/v1/Contact?$top=900", headers={"Accept-Language": "sv"})
    assert "heltal" in assert_error(r, 400)["ErrorMessage"]


def test_viewer_lists_and_credentials_needed(srv, admin, viewer):
    p = tag()
    make(admin, "Contact", [p])
    r = viewer.get(f"/api/v1/Contact?$filter={flt(p)}")
    assert r.status_code == 200 and len(r.json()["value"]) == 1
    assert srv.anon().get("/api/v1/Contact").status_code == 401


def test_xml(admin):
    p = tag()
    ids = make(admin, "Project", [p + "1", p + "2", p + "3"])
    r = admin.get(f"/api/v1/Project?$top=2&$filter={flt(p)}",
                  headers={"Accept": "application/xml"})
    assert r.status_code == 200
    root = parse_xml_answer(r)
    assert xml_local(root.tag) == "ODataSlimResponse"
    items = list(xml_child(root, "value"))
    assert len(items) == 2
    got = [int(xml_text(xml_child(it, "ProjectId"))) for it in items]
    assert got == ids[:2]
    assert "$skip=2" in xml_text(xml_child(root, "odata.nextLink"))
