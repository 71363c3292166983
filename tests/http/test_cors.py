"""Cross-origin requests from browser pages (--cors-origin): preflights are
answered without authentication for listed origins, normal answers carry
Access-Control-Allow-Origin/-Credentials/-Expose-Headers, other origins get
nothing (and 403 on a preflight); `*` allows any origin without
credentials."""
import pytest
import requests

from conftest import (HTTP_TIMEOUT, NO_LIMITER, assert_error, basic, data, start_arg_server,
                      stop_arg_server)

APP = "https://app.example.com"
APP2 = "http://localhost:5173"
EVIL = "https://evil.example"


def _list(v):
    return {p.strip().lower() for p in (v or "").split(",") if p.strip()}


@pytest.fixture(scope="module")
def csrv(tmp_path_factory):
    s = start_arg_server(tmp_path_factory.mktemp("cors"),
                         ["--cors-origin", APP, "--cors-origin", APP2, *NO_LIMITER])
    yield s
    stop_arg_server(s)


@pytest.fixture(scope="module")
def person(csrv):
    pid = csrv.client("admin").create("Person", Firstname="Cors")
    csrv.client("admin").put_image("Person", pid, data("small.png"), "image/png")
    return pid


def preflight(srv, path, origin, method="PUT", req_headers="authorization, content-type",
              extra=None):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if req_headers is not None:
        h["Access-Control-Request-Headers"] = req_headers
    if extra:
        h.update(extra)
    return requests.options(srv.base + path, headers=h, timeout=HTTP_TIMEOUT)


def check_preflight_ok(r, origin, method, req_headers):
    assert r.status_code == 204, f"{r.status_code}: {r.text[:300]!r}"
    assert r.headers.get("Access-Control-Allow-Origin") == origin, r.headers
    assert method in _list(r.headers.get("Access-Control-Allow-Methods")) or \
        method.lower() in _list(r.headers.get("Access-Control-Allow-Methods")), r.headers
    allowed = _list(r.headers.get("Access-Control-Allow-Headers"))
    for h in _list(req_headers):
        assert h in allowed, f"{h} not in Access-Control-Allow-Headers {allowed}"
    assert r.headers.get("Access-Control-Allow-Credentials") == "true", r.headers
    ma = r.headers.get("Access-Control-Max-Age", "")
    assert ma.isdigit() and int(ma) > 0, f"Access-Control-Max-Age: {ma!r}"
    assert "origin" in _list(r.headers.get("Vary")), f"Vary: {r.headers.get('Vary')!r}"


@pytest.mark.parametrize("path", [
    "/api/v1/Person/1/Image",
    "/api/v1/Person/{pid}/Image",
    "/api/v1/Person/{pid}/ImageInfo",
    "/api/v1/Contact",
    "/api/v1/login",
])
def test_preflight(csrv, person, path):
    r = preflight(csrv, path.format(pid=person), APP)
    check_preflight_ok(r, APP, "put", "authorization, content-type")


@pytest.mark.parametrize("method", ["GET", "PUT", "POST", "DELETE"])
def test_preflight_methods(csrv, person, method):
    r = preflight(csrv, f"/api/v1/Person/{person}/Image", APP, method=method)
    check_preflight_ok(r, APP, method, "authorization, content-type")


def test_preflight_second_origin(csrv, person):
    r = preflight(csrv, f"/api/v1/Person/{person}/Image", APP2)
    check_preflight_ok(r, APP2, "put", "authorization, content-type")


def test_preflight_more_headers(csrv, person):
    req = ("authorization, content-type, so-apptoken, so-language, so-timezone, "
           "if-match, x-xsrf-token, accept-language")
    r = preflight(csrv, f"/api/v1/Person/{person}/ImageInfo", APP, req_headers=req)
    check_preflight_ok(r, APP, "put", req)


def test_preflight_ignores_credentials(csrv, person):
    # a preflight never carries credentials; if one does, bad ones do not matter
    r = preflight(csrv, f"/api/v1/Person/{person}/Image", APP,
                  extra={"Authorization": "Basic !!!"})
    check_preflight_ok(r, APP, "put", "authorization, content-type")


def test_preflight_cors_headers_once(csrv, person):
    """Browsers refuse an answer with two Access-Control-Allow-Origin values."""
    r = preflight(csrv, f"/api/v1/Person/{person}/Image", APP)
    assert r.status_code == 204
    for h in ("Access-Control-Allow-Origin", "Access-Control-Allow-Credentials",
              "Access-Control-Allow-Methods", "Access-Control-Max-Age"):
        got = r.raw.headers.getlist(h)
        assert len(got) == 1, f"{h} sent {len(got)} times: {got}"


def test_normal_answer_cors_headers_once(csrv, person):
    r = requests.get(f"{csrv.base}/api/v1/Person/{person}/ImageInfo",
                     headers={"Origin": APP, "Authorization": basic("alice", "alice-pw-1")},
                     timeout=HTTP_TIMEOUT)
    for h in ("Access-Control-Allow-Origin", "Access-Control-Allow-Credentials",
              "Access-Control-Expose-Headers"):
        got = r.raw.headers.getlist(h)
        assert len(got) == 1, f"{h} sent {len(got)} times: {got}"


def test_preflight_no_body(csrv, person):
    r = preflight(csrv, f"/api/v1/Person/{person}/Image", APP)
    assert r.status_code == 204
    assert r.content == b""


def test_preflight_evil_origin_403(csrv, person):
    r = preflight(csrv, f"/api/v1/Person/{person}/Image", EVIL)
    assert_error(r, 403)
    assert "Access-Control-Allow-Origin" not in r.headers, r.headers
    assert "Access-Control-Allow-Credentials" not in r.headers, r.headers


@pytest.mark.parametrize("origin", [
    "https://app.example.com.evil.example",
    "https://evil-app.example.com",
    "http://app.example.com",
    "https://app.example.com:8443",
    "null",
    "https://app.example.co",
])
def test_preflight_lookalike_origins_403(csrv, person, origin):
    r = preflight(csrv, f"/api/v1/Person/{person}/Image", origin)
    assert_error(r, 403)
    assert "Access-Control-Allow-Origin" not in r.headers, r.headers


def test_get_with_origin(csrv, person):
    r = requests.get(f"{csrv.base}/api/v1/Person/{person}/ImageInfo",
                     headers={"Origin": APP, "Authorization": basic("alice", "alice-pw-1")},
                     timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.headers.get("Access-Control-Allow-Origin") == APP, r.headers
    assert r.headers.get("Access-Control-Allow-Credentials") == "true", r.headers
    expose = _list(r.headers.get("Access-Control-Expose-Headers"))
    assert {"etag", "location"} <= expose, f"Access-Control-Expose-Headers: {expose}"
    assert "origin" in _list(r.headers.get("Vary")), r.headers


def test_image_get_with_origin(csrv, person):
    r = requests.get(f"{csrv.base}/api/v1/Person/{person}/Image",
                     headers={"Origin": APP2, "Authorization": basic("alice", "alice-pw-1")},
                     timeout=HTTP_TIMEOUT)
    assert r.status_code == 200
    assert r.content == data("small.png")
    assert r.headers.get("Access-Control-Allow-Origin") == APP2, r.headers
    assert "etag" in _list(r.headers.get("Access-Control-Expose-Headers")), r.headers


def test_post_with_origin_exposes_location(csrv):
    r = requests.post(f"{csrv.base}/api/v1/Contact", json={"Name": "CORS AS"},
                      headers={"Origin": APP, "Authorization": basic("alice", "alice-pw-1")},
                      timeout=HTTP_TIMEOUT)
    assert r.status_code == 201, r.text
    assert r.headers.get("Location")
    assert r.headers.get("Access-Control-Allow-Origin") == APP, r.headers
    assert "location" in _list(r.headers.get("Access-Control-Expose-Headers")), r.headers


def test_error_with_origin_readable(csrv, person):
    """A page must be able to read the 401/404 the API answers."""
    r = requests.get(f"{csrv.base}/api/v1/Person/{person}/ImageInfo", headers={"Origin": APP},
                     timeout=HTTP_TIMEOUT)
    assert_error(r, 401)
    assert r.headers.get("Access-Control-Allow-Origin") == APP, r.headers
    r = requests.get(f"{csrv.base}/api/v1/Person/2000000000/ImageInfo",
                     headers={"Origin": APP, "Authorization": basic("alice", "alice-pw-1")},
                     timeout=HTTP_TIMEOUT)
    assert_error(r, 404)
    assert r.headers.get("Access-Control-Allow-Origin") == APP, r.headers


def test_get_evil_origin_no_cors_headers(csrv, person):
    r = requests.get(f"{csrv.base}/api/v1/Person/{person}/ImageInfo",
                     headers={"Origin": EVIL, "Authorization": basic("alice", "alice-pw-1")},
                     timeout=HTTP_TIMEOUT)
    assert r.status_code == 200
    for h in ("Access-Control-Allow-Origin", "Access-Control-Allow-Credentials",
              "Access-Control-Expose-Headers"):
        assert h not in r.headers, r.headers


def test_get_without_origin_no_cors_headers(csrv, person):
    r = requests.get(f"{csrv.base}/api/v1/Person/{person}/ImageInfo",
                     headers={"Authorization": basic("alice", "alice-pw-1")},
                     timeout=HTTP_TIMEOUT)
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers, r.headers


def test_options_without_preflight_headers_needs_auth_or_405(csrv, person):
    # a bare OPTIONS is not a preflight: no CORS short cut around authentication
    r = requests.options(f"{csrv.base}/api/v1/Person/{person}/Image", headers={"Origin": EVIL},
                         timeout=HTTP_TIMEOUT)
    assert r.status_code in (200, 204, 401, 405), r.status_code
    assert "Access-Control-Allow-Origin" not in r.headers


# --------------------------------------------------------------------------
# "*"


@pytest.fixture(scope="module")
def star(tmp_path_factory):
    s = start_arg_server(tmp_path_factory.mktemp("cors_star"), ["--cors-origin", "*",
                                                                *NO_LIMITER])
    s.pid = s.client("admin").create("Person")
    yield s
    stop_arg_server(s)


@pytest.mark.parametrize("origin", [APP, EVIL, "http://localhost:3000"])
def test_star_preflight(star, origin):
    r = preflight(star, f"/api/v1/Person/{star.pid}/Image", origin)
    assert r.status_code == 204, r.text
    assert r.headers.get("Access-Control-Allow-Origin") == "*", r.headers
    assert "Access-Control-Allow-Credentials" not in r.headers, r.headers
    assert "put" in _list(r.headers.get("Access-Control-Allow-Methods")), r.headers
    allowed = _list(r.headers.get("Access-Control-Allow-Headers"))
    assert "*" in allowed or {"authorization", "content-type"} <= allowed, allowed


@pytest.mark.parametrize("origin", [APP, EVIL])
def test_star_get(star, origin):
    r = requests.get(f"{star.base}/api/v1/Person/{star.pid}/ImageInfo",
                     headers={"Origin": origin, "Authorization": basic("alice", "alice-pw-1")},
                     timeout=HTTP_TIMEOUT)
    assert r.status_code == 200
    assert r.headers.get("Access-Control-Allow-Origin") == "*", r.headers
    assert "Access-Control-Allow-Credentials" not in r.headers, r.headers
    assert "etag" in _list(r.headers.get("Access-Control-Expose-Headers")), r.headers


# --------------------------------------------------------------------------
# no --cors-origin


def test_no_cors_configured(make_arg_server):
    s = make_arg_server(NO_LIMITER)
    pid = s.client("admin").create("Person")
    r = requests.get(f"{s.base}/api/v1/Person/{pid}/ImageInfo",
                     headers={"Origin": APP, "Authorization": basic("alice", "alice-pw-1")},
                     timeout=HTTP_TIMEOUT)
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers, r.headers
    r = preflight(s, f"/api/v1/Person/{pid}/Image", APP)
    assert r.status_code in (401, 403, 405), r.status_code
    assert "Access-Control-Allow-Origin" not in r.headers, r.headers
