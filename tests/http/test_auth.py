"""Basic authentication, roles, and user changes seen by a running server."""
import base64

import pytest
import requests

from conftest import HTTP_TIMEOUT, KIND_NAMES, assert_error, data

ROUTES = [
    ("GET", "/api/v1/Person/1"),
    ("POST", "/api/v1/Person"),
    ("PUT", "/api/v1/Person/1"),
    ("DELETE", "/api/v1/Person/1"),
    ("GET", "/api/v1/Person/1/Image"),
    ("HEAD", "/api/v1/Person/1/Image"),
    ("PUT", "/api/v1/Person/1/Image"),
    ("POST", "/api/v1/Contact/1/Image"),
    ("DELETE", "/api/v1/Product/1/Image"),
    ("GET", "/api/v1/Project/1/ImageInfo"),
    ("PUT", "/api/v1/Person/1/ImageInfo"),
    ("GET", "/api/Services80/person/1/image"),
    ("GET", "/api/Services80/person/1/image/content"),
    ("GET", "/api/v1/NoSuchThing"),
]


def _body_for(method, path):
    if method not in ("PUT", "POST"):
        return {}
    if path.endswith("/Image"):
        return {"data": data("small.png"), "headers": {"Content-Type": "image/png"}}
    return {"json": {"Description": "x", "Firstname": "x"}}


def _check_401(resp):
    if resp.request.method == "HEAD":
        assert resp.status_code == 401
    else:
        assert_error(resp, 401, "SoUnauthorizedException")
    www = resp.headers.get("WWW-Authenticate", "")
    assert "basic" in www.lower(), f"WWW-Authenticate: {www!r}"


@pytest.fixture(scope="module")
def person(admin):
    pid = admin.create("Person", Firstname="Auth", Lastname="Target")
    admin.put_image("Person", pid, data("small.png"), "image/png")
    return pid


@pytest.mark.parametrize("method,path", ROUTES)
def test_no_credentials_401(srv, person, method, path):
    r = srv.anon().request(method, path, **_body_for(method, path))
    _check_401(r)


@pytest.mark.parametrize("user,password", [
    ("admin", "wrong-password"),
    ("admin", ""),
    ("nosuchuser", "whatever"),
    ("", ""),
    ("victor", "admin-pw-1"),
])
def test_bad_credentials_401(srv, person, user, password):
    r = srv.client(user, password).get(f"/api/v1/Person/{person}")
    _check_401(r)
    r = srv.client(user, password).put(f"/api/v1/Person/{person}/Image",
                                       data=data("small.jpg"))
    _check_401(r)


@pytest.mark.parametrize("header", [
    "Basic !!!not-base64!!!",
    "Basic " + base64.b64encode(b"no-colon-here").decode(),
    "Basic",
    "Digest username=admin",
    "Bearer",
    "SOTicket",
    "",
])
def test_malformed_authorization_401(srv, person, header):
    r = requests.get(f"{srv.base}/api/v1/Person/{person}", headers={"Authorization": header},
                     timeout=HTTP_TIMEOUT)
    _check_401(r)


@pytest.mark.parametrize("scheme", ["Basic", "basic", "BASIC"])
def test_scheme_name_case_insensitive(srv, person, scheme):
    cred = base64.b64encode(b"alice:" + srv.users["alice"][1].encode()).decode()
    r = requests.get(f"{srv.base}/api/v1/Person/{person}",
                     headers={"Authorization": f"{scheme} {cred}"}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text


def test_401_on_head_has_no_body(srv, person):
    r = srv.anon().head(f"/api/v1/Person/{person}/Image")
    assert r.status_code == 401
    assert r.content == b""
    assert "basic" in r.headers.get("WWW-Authenticate", "").lower()


def test_password_with_colon_and_unicode(make_server):
    s = make_server(users={"colon": ("editor", "pa:ss word:", "C O"),
                           "uni": ("editor", "pä:ss wörd ✓", "Ü Ni")})
    r = s.client("colon").post("/api/v1/Contact", json={"Name": "x"})
    assert r.status_code == 201, r.text
    # RFC 7617: user-pass in UTF-8 (requests would send latin-1 for str, so pass bytes)
    r = s.client("uni", "pä:ss wörd ✓".encode("utf-8")).post("/api/v1/Contact", json={"Name": "y"})
    assert r.status_code == 201, r.text
    assert_error(s.client("colon", "pa:ss word").get("/api/v1/Contact/1"), 401)


# --------------------------------------------------------------------------
# roles


@pytest.mark.parametrize("user", ["admin", "alice"])
def test_admin_and_editor_may_write(srv, user):
    c = srv.client(user)
    for kind in KIND_NAMES:
        eid = c.create(kind)
        r = c.put(f"/api/v1/{kind}/{eid}", json={})
        assert r.status_code == 200, r.text
        c.put_image(kind, eid, data("small.png"), "image/png")
        c.put_image(kind, eid, data("small.jpg"), "image/jpeg", method="POST")
        r = c.put_info(kind, eid, {"Description": f"by {user}"})
        assert r.status_code == 200, r.text
        r = c.delete(f"/api/v1/{kind}/{eid}/Image")
        assert r.status_code == 204, r.text
        r = c.delete(f"/api/v1/{kind}/{eid}")
        assert r.status_code == 204, r.text


@pytest.fixture(scope="module")
def viewer_targets(admin):
    out = {}
    for kind in KIND_NAMES:
        eid = admin.create(kind)
        admin.put_image(kind, eid, data("small.png"), "image/png")
        r = admin.put_info(kind, eid, {"Description": "orig"})
        assert r.status_code == 200
        out[kind] = eid
    return out


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_viewer_may_read(viewer, viewer_targets, kind):
    eid = viewer_targets[kind]
    assert viewer.get(f"/api/v1/{kind}/{eid}").status_code == 200
    r = viewer.get(f"/api/v1/{kind}/{eid}/Image")
    assert r.status_code == 200 and r.content == data("small.png")
    assert viewer.head(f"/api/v1/{kind}/{eid}/Image").status_code == 200
    info = viewer.info(kind, eid)
    assert info["Description"] == "orig"
    r = viewer.get(f"/api/Services80/{kind.lower()}/{eid}/image")
    assert r.status_code == 200 and r.content == data("small.png")


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_viewer_may_not_write(viewer, admin, viewer_targets, kind):
    eid = viewer_targets[kind]
    before_entity = admin.get(f"/api/v1/{kind}/{eid}").json()
    before_info = admin.info(kind, eid)
    attempts = [
        viewer.post(f"/api/v1/{kind}", json={}),
        viewer.put(f"/api/v1/{kind}/{eid}", json={"Name": "hacked", "Firstname": "hacked"}),
        viewer.put(f"/api/v1/{kind}/{eid}/Image", data=data("small.jpg"),
                   headers={"Content-Type": "image/jpeg"}),
        viewer.post(f"/api/v1/{kind}/{eid}/Image", data=data("small.jpg"),
                    headers={"Content-Type": "image/jpeg"}),
        viewer.put(f"/api/v1/{kind}/{eid}/ImageInfo", json={"Description": "hacked"}),
        viewer.delete(f"/api/v1/{kind}/{eid}/Image"),
        viewer.delete(f"/api/v1/{kind}/{eid}"),
    ]
    for r in attempts:
        assert_error(r, 403, "SoAccessDeniedException")
    assert admin.get(f"/api/v1/{kind}/{eid}").json() == before_entity
    assert admin.info(kind, eid) == before_info
    assert admin.get_image(kind, eid).content == data("small.png")


def test_viewer_post_image_as_multipart_403(viewer, viewer_targets):
    eid = viewer_targets["Person"]
    r = viewer.post(f"/api/v1/Person/{eid}/Image",
                    files={"file": ("a.png", data("small.png"), "image/png")})
    assert_error(r, 403, "SoAccessDeniedException")


# --------------------------------------------------------------------------
# user changes while the server runs


def test_passwd_while_running(srv, person):
    old = srv.users["carol"][1]
    c_old = srv.client("carol", old)
    for _ in range(2):  # warms the caches (the second answer comes from them)
        assert c_old.get(f"/api/v1/Person/{person}").status_code == 200
    srv.passwd("carol", "carol-new-pw")
    assert_error(srv.client("carol", old).get(f"/api/v1/Person/{person}"), 401)
    assert_error(c_old.get(f"/api/v1/Person/{person}"), 401)
    r = srv.client("carol", "carol-new-pw").get(f"/api/v1/Person/{person}")
    assert r.status_code == 200, r.text
    r = srv.client("carol", "carol-new-pw").put_info("Person", person, {"ExtraInfo": "carol"})
    assert r.status_code == 200, r.text


def test_disable_and_enable_while_running(srv, person):
    c = srv.client("dave")
    for _ in range(2):  # warms the caches (the second answer comes from them)
        assert c.get(f"/api/v1/Person/{person}").status_code == 200
    srv.cli("user", "disable", "dave", "--db", str(srv.db), check=True)
    assert_error(c.get(f"/api/v1/Person/{person}"), 401)
    assert_error(srv.client("dave").put(f"/api/v1/Person/{person}/Image",
                                        data=data("small.gif")), 401)
    srv.cli("user", "enable", "dave", "--db", str(srv.db), check=True)
    assert srv.client("dave").get(f"/api/v1/Person/{person}").status_code == 200
