"""The error carrier, routing errors and {id} validation."""
import pytest

from conftest import KIND_NAMES, assert_error, data

BAD_IDS = ["abc", "0", "-1", "2147483648", "1.5", "99999999999999999999", "1e3", "0x10", "%20"]

# (method, path template, request kwargs)
SHAPES = [
    ("GET", "/api/v1/{kind}/{id}", {}),
    ("PUT", "/api/v1/{kind}/{id}", {"json": {"Name": "x"}}),
    ("DELETE", "/api/v1/{kind}/{id}", {}),
    ("GET", "/api/v1/{kind}/{id}/Image", {}),
    ("HEAD", "/api/v1/{kind}/{id}/Image", {}),
    ("PUT", "/api/v1/{kind}/{id}/Image", {"data": "png"}),
    ("POST", "/api/v1/{kind}/{id}/Image", {"data": "png"}),
    ("DELETE", "/api/v1/{kind}/{id}/Image", {}),
    ("GET", "/api/v1/{kind}/{id}/ImageInfo", {}),
    ("PUT", "/api/v1/{kind}/{id}/ImageInfo", {"json": {"Description": "x"}}),
]


def _kw(kw):
    if kw.get("data") == "png":
        return {"data": data("small.png"), "headers": {"Content-Type": "image/png"}}
    return dict(kw)


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize("method,tmpl,kw", SHAPES, ids=[f"{m} {t}" for m, t, _ in SHAPES])
def test_bad_id_400(admin, method, tmpl, kw, bad):
    for kind in ("Person", "Project"):
        r = admin.request(method, tmpl.format(kind=kind, id=bad), **_kw(kw))
        if method == "HEAD":
            assert r.status_code == 400, (kind, bad, r.status_code)
        else:
            assert_error(r, 400, "SoBadRequestException")


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_bad_id_every_kind(admin, kind):
    for bad in ("abc", "0", "-1", "2147483648", "1.5"):
        assert_error(admin.get(f"/api/v1/{kind}/{bad}"), 400)
        assert_error(admin.get(f"/api/v1/{kind}/{bad}/Image"), 400)
        assert_error(admin.get(f"/api/v1/{kind}/{bad}/ImageInfo"), 400)
        assert_error(admin.put(f"/api/v1/{kind}/{bad}/Image", data=data("small.png")), 400)
        assert_error(admin.put(f"/api/v1/{kind}/{bad}/ImageInfo", json={}), 400)


def test_max_int32_id_is_valid(admin):
    big = 2147483647
    assert_error(admin.get(f"/api/v1/Person/{big}"), 404)
    assert_error(admin.get(f"/api/v1/Person/{big}/ImageInfo"), 404)
    assert_error(admin.get(f"/api/v1/Person/{big}/Image"), 404)


def test_bad_project_id_query_400(admin):
    pid = admin.create("Project")
    for bad in ("abc", "0", "-1", "2147483648", "1.5", ""):
        r = admin.put(f"/api/v1/Project/{pid}/ImageInfo?projectId={bad}", json={"Description": "q"})
        assert_error(r, 400, "SoBadRequestException")


@pytest.mark.parametrize("path", [
    "/api/v1/NoSuchThing",
    "/api/v1/Person/1/Nope",
    "/api/v1/Person/1/Image/extra",
    "/api/v1/Widget/1/Image",
    "/api/v2/Person/1",
    "/api/",
    "/api/v1/Person/1/ImageInfo/x",
])
def test_unknown_path_404(admin, path):
    assert_error(admin.get(path), 404, "SoNotFoundException")


@pytest.mark.parametrize("method,path", [
    ("PATCH", "/api/v1/Person/{id}/Image"),
    ("PATCH", "/api/v1/Contact/{id}/Image"),
    ("POST", "/api/v1/Person/{id}/ImageInfo"),
    ("POST", "/api/v1/Person/{id}"),
    ("DELETE", "/api/v1/Person"),
    ("PUT", "/api/v1/Person"),
])
def test_wrong_method_405(admin, method, path):
    pid = admin.create("Person")
    cid = admin.create("Contact")
    p = path.format(id=pid if "Person" in path else cid)
    r = admin.request(method, p, data=b"{}", headers={"Content-Type": "application/json"})
    assert_error(r, 405)
    # RFC 9110 15.5.6: a 405 answer lists the allowed methods
    allow = {m.strip().upper() for m in r.headers.get("Allow", "").split(",") if m.strip()}
    assert allow and method not in allow, r.headers
    if p.endswith("/Image"):
        assert {"GET", "PUT", "POST", "DELETE"} <= allow, allow


def test_404_entity_messages(admin):
    body = assert_error(admin.get("/api/v1/Person/123456789"), 404, "SoNotFoundException")
    assert body["ErrorMessage"].strip()


def test_409_carrier(admin):
    pid = admin.create("Person")
    r = admin.post("/api/v1/Person", json={"PersonId": pid, "Firstname": "dup"})
    assert_error(r, 409, "SoConflictException")


def test_415_carrier(admin):
    pid = admin.create("Person")
    r = admin.put(f"/api/v1/Person/{pid}/ImageInfo", data=b"Description=x",
                  headers={"Content-Type": "text/plain"})
    assert_error(r, 415, "SoUnsupportedMediaTypeException")


def test_errors_leave_server_serving(srv, admin):
    for _ in range(3):
        assert_error(admin.get("/api/v1/Person/abc"), 400)
        assert_error(admin.get("/api/v1/Nope"), 404)
    pid = admin.create("Person")
    assert admin.get(f"/api/v1/Person/{pid}").status_code == 200
    assert srv.alive()
