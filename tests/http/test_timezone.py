"""SO-TimeZone and GET /api/v1/TimeZone (SPEC §2, §6)."""
import datetime as dt
import re

import pytest

from conftest import (assert_error, assert_xml_error, data, parse_xml_answer, xml_blob_to_json,
                      xml_local)

try:
    from zoneinfo import ZoneInfo
    ZONES = {"NO": ZoneInfo("Europe/Oslo"), "US-NY": ZoneInfo("America/New_York")}
except Exception:  # no tz database on this machine: only the offset ranges are checked
    ZONES = {}

TZ_KEYS = {"TZLocationID", "Name", "TZLocationCode", "TZLocationCities", "IsoNumber"}
Z_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
OFFSET_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)$")
OFFSETS = {"NO": {"+01:00", "+02:00"}, "US-NY": {"-05:00", "-04:00"}, "UTC": {"+00:00", "Z"}}
DATES = ("CreatedDate", "UpdatedDate")


def parse(s):
    return dt.datetime.fromisoformat(s)


def offset_of(s):
    m = OFFSET_DATE.match(s)
    assert m, f"bad date {s!r}"
    return m.group(2)


@pytest.fixture(scope="module")
def zones(admin):
    r = admin.get("/api/v1/TimeZone")
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert isinstance(body, dict) and isinstance(body.get("value"), list), str(body)[:300]
    return body["value"]


@pytest.fixture(scope="module")
def person(admin):
    pid = admin.create("Person")
    admin.put_image("Person", pid, data("small.png"))
    assert admin.put_info("Person", pid, {"Description": "tz"}).status_code == 200
    return pid


def test_list_shape(zones):
    assert len(zones) >= 3
    codes = []
    for z in zones:
        assert isinstance(z, dict), z
        assert TZ_KEYS <= set(z), (sorted(z), z)
        assert isinstance(z["TZLocationID"], int) and not isinstance(z["TZLocationID"], bool)
        assert isinstance(z["IsoNumber"], int) and not isinstance(z["IsoNumber"], bool)
        for k in ("Name", "TZLocationCode", "TZLocationCities"):
            assert isinstance(z[k], str), (k, z)
        assert z["TZLocationCode"], z
        codes.append(z["TZLocationCode"])
    assert len(set(codes)) == len(codes), "codes are not unique"
    assert len({z["TZLocationID"] for z in zones}) == len(zones), "ids are not unique"
    for c in ("UTC", "NO", "US-NY"):
        assert c in codes, codes
    no = next(z for z in zones if z["TZLocationCode"] == "NO")
    assert no["IsoNumber"] == 578, no


def test_every_code_accepted(srv, admin, zones, person):
    bad = []
    for z in zones:
        code = z["TZLocationCode"]
        for h in (code, f"{code}, includeTZOffset"):
            r = admin.get(f"/api/v1/Person/{person}/ImageInfo", headers={"SO-TimeZone": h})
            if r.status_code != 200:
                bad.append((h, r.status_code, r.text[:120]))
    assert not bad, bad[:20]


@pytest.mark.parametrize("value", ["XX-NOPE", "XX-NOPE, includeTZOffset", "NOPE", "U TC"])
def test_unknown_code_400(admin, person, value):
    h = {"SO-TimeZone": value}
    before = admin.info("Person", person)
    for r in (
        admin.get(f"/api/v1/Person/{person}/ImageInfo", headers=h),
        admin.put(f"/api/v1/Person/{person}/ImageInfo", json={"Description": "no!"}, headers=h),
        admin.get(f"/api/v1/Person/{person}", headers=h),
        admin.get(f"/api/v1/Person/{person}/Image", headers=h),
        admin.post("/api/v1/Contact", json={"Name": "no!"}, headers=h),
        admin.get("/api/v1/TimeZone", headers=h),
        admin.get("/api/v1/Person/1999999911", headers=h),
    ):
        body = assert_error(r, 400, "SoBadRequestException")
        assert value.split(",")[0] in body["ErrorMessage"], body
    assert admin.info("Person", person) == before
    r = admin.get(f"/api/v1/Person/{person}", headers={**h, "Accept": "application/xml"})
    assert_xml_error(r, 400, "SoBadRequestException")


@pytest.mark.parametrize("code", ["UTC", "NO", "US-NY"])
def test_without_include_dates_stay_utc(admin, person, code):
    plain = admin.info("Person", person)
    r = admin.get(f"/api/v1/Person/{person}/ImageInfo", headers={"SO-TimeZone": code})
    assert r.status_code == 200
    got = r.json()
    for f in DATES:
        assert Z_DATE.match(got[f]), got[f]
    assert got == plain


def _check_offsets(got, plain, code):
    for f in DATES:
        off = offset_of(got[f])
        assert off in OFFSETS[code], f"{code}: {f} = {got[f]!r}"
        assert parse(got[f]) == parse(plain[f]), f"{f}: {got[f]} is not the instant {plain[f]}"
        if code in ZONES:
            want = parse(plain[f]).astimezone(ZONES[code]).utcoffset()
            assert parse(got[f]).utcoffset() == want, (f, got[f], want)


@pytest.mark.parametrize("code", ["UTC", "NO", "US-NY"])
def test_include_tz_offset(admin, person, code):
    plain = admin.info("Person", person)
    h = {"SO-TimeZone": f"{code}, includeTZOffset"}
    r = admin.get(f"/api/v1/Person/{person}/ImageInfo", headers=h)
    assert r.status_code == 200, r.text[:300]
    got = r.json()
    _check_offsets(got, plain, code)
    for k in got:
        if k not in DATES:
            assert got[k] == plain[k], k
    # the same in XML
    r = admin.get(f"/api/v1/Person/{person}/ImageInfo", headers={**h, "Accept": "application/xml"})
    root = parse_xml_answer(r)
    assert xml_local(root.tag) == "BlobEntity"
    _check_offsets(xml_blob_to_json(root), plain, code)
    # and in the answer of a PUT
    r = admin.put(f"/api/v1/Person/{person}/ImageInfo", json={"ExtraInfo": code}, headers=h)
    assert r.status_code == 200, r.text[:300]
    _check_offsets(r.json(), admin.info("Person", person), code)


def test_base_time_zone(admin, zones):
    r = admin.get("/api/v1/TimeZone/base")
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert isinstance(body, dict) and TZ_KEYS <= set(body), body
    assert body["TZLocationCode"] == "UTC", body
    utc = next(z for z in zones if z["TZLocationCode"] == "UTC")
    for k in TZ_KEYS:
        assert body[k] == utc[k], (k, body[k], utc[k])


@pytest.mark.parametrize("query,slc", [
    ("$top=3", slice(0, 3)),
    ("$skip=2", slice(2, None)),
    ("$skip=2&$top=2", slice(2, 4)),
    ("$top=0", slice(0, 0)),
    ("$skip=100000", slice(100000, None)),
    ("%24top=1&%24skip=1", slice(1, 2)),
])
def test_top_skip(admin, zones, query, slc):
    r = admin.get(f"/api/v1/TimeZone?{query}")
    assert r.status_code == 200, r.text[:300]
    assert r.json()["value"] == zones[slc]


@pytest.mark.parametrize("query", ["$top=-1", "$top=abc", "$skip=-3", "$skip=1.5"])
def test_top_skip_bad_400(admin, query):
    assert_error(admin.get(f"/api/v1/TimeZone?{query}"), 400, "SoBadRequestException")


def test_list_in_xml(admin, zones):
    r = admin.get("/api/v1/TimeZone", headers={"Accept": "application/xml"})
    assert r.status_code == 200, r.text[:300]
    root = parse_xml_answer(r)
    text = r.content.decode("utf-8")
    for c in ("UTC", "NO", "US-NY"):
        assert f">{c}<" in text, c
    assert root is not None


def test_timezone_needs_auth(srv):
    assert_error(srv.anon().get("/api/v1/TimeZone"), 401)
