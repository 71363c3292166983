"""The BLOB agent's methods about things crmblob does not keep.

GetBlobEntityOnCountry, GetQuoteLineImage and GetChatImageWithSize answer
as the reference does for an id it does not know: 200 with null (an empty
body when the bytes themselves are asked for); their arguments are still
read and checked, and they are reads (viewers may call them).
"""
import pytest

from conftest import assert_error

AGENT = "/api/v1/Agents/BLOB/"
OCTET = {"Accept": "application/octet-stream"}
JSON = {"Accept": "application/json"}
XML = {"Accept": "application/xml"}

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
