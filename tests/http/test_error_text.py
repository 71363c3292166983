"""Error answers stay well-formed whatever bytes the request carried.

Parts of a request end up in ErrorMessage (the path, a parser's complaint
about the body, a patch path); invalid UTF-8 there must not turn a 4xx
into a 500 or into an unparseable carrier. Found by fuzzing
(tests/fuzz/crashes: route-1, carrier-1, carrier-2)."""
import json

from conftest import assert_error

NON_UTF8_PATHS = [("/api/v1/x%FF", 404, "SoNotFoundException"),
                  ("/api/v1/%ED%A0%80", 404, "SoNotFoundException"),
                  ("/api/v1/Person/%C3", 400, "SoBadRequestException")]


def test_non_utf8_path_is_a_4xx_carrier(admin):
    for p, status, kind in NON_UTF8_PATHS:
        r = admin.get(p)
        b = assert_error(r, status, kind)
        assert "\ufffd" in b["ErrorMessage"], b


def test_bad_escape_before_non_ascii_is_400(admin):
    pid = admin.create("Person")
    r = admin.put(f"/api/v1/Person/{pid}/ImageInfo", data='{"Description": "\\é"}'.encode(),
                  headers={"Content-Type": "application/json"})
    assert_error(r, 400, "SoBadRequestException")


def test_login_with_bad_escape_is_400(srv):
    r = srv.anon().post("/api/v1/login", data='{"username": "\\é"}'.encode(),
                        headers={"Content-Type": "application/json"})
    assert_error(r, 400, "SoBadRequestException")


def test_failed_patch_test_on_long_non_ascii_path_is_409(admin):
    pid = admin.create("Person")
    admin.put(f"/api/v1/Person/{pid}/ImageInfo", json={"Description": "x"})
    ops = [{"op": "test", "path": "/a" + "é" * 300, "value": 1}]
    r = admin.put(f"/api/v1/Person/{pid}/ImageInfo", data=json.dumps(ops).encode(),
                  headers={"Content-Type": "application/json-patch+json"})
    assert_error(r, 409, "SoConflictException")
