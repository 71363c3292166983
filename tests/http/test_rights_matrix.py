"""Rights on every write endpoint (SPEC §5): viewer, editor and admin, for the
four entity kinds, through each authentication scheme (Basic, SOTicket,
Bearer access token, session cookie + XSRF). A viewer gets 403
SoAccessDeniedException and changes nothing; an editor or admin gets 2xx and
is recorded as the one who made the change."""
import pytest
import requests

from conftest import (HTTP_TIMEOUT, KIND_NAMES, KINDS, NO_LIMITER, assert_error, basic, data,
                      session_headers, start_arg_server, stop_arg_server)

ROLES = {"viewer": "victor", "editor": "alice", "admin": "admin"}
SCHEMES = ["basic", "ticket", "token", "session"]
ENDPOINTS = ["POST entity", "PUT entity", "DELETE entity", "PUT Image", "POST Image",
             "DELETE Image", "PUT ImageInfo"]
EXPECTED = {"POST entity": 201, "PUT entity": 200, "DELETE entity": 204, "PUT Image": 200,
            "POST Image": 200, "DELETE Image": 204, "PUT ImageInfo": 200}


@pytest.fixture(scope="module")
def msrv(tmp_path_factory):
    s = start_arg_server(tmp_path_factory.mktemp("rights"), ["--auth", "all", *NO_LIMITER])
    yield s
    stop_arg_server(s)


@pytest.fixture(scope="module")
def creds(msrv):
    """(role, scheme) -> headers authenticating that role's user that way."""
    out = {}
    for role, user in ROLES.items():
        out[(role, "basic")] = {"Authorization": basic(user, msrv.users[user][1])}
        out[(role, "ticket")] = {"Authorization": "SOTicket " + msrv.ticket(user)}
        out[(role, "token")] = {"Authorization": "Bearer " + msrv.token(user, label="matrix")}
        out[(role, "session")] = session_headers(msrv.login(user))
    return out


@pytest.fixture(scope="module")
def adm(msrv):
    return msrv.client("admin")


def _target(adm, kind):
    eid = adm.create(kind)
    adm.put_image(kind, eid, data("small.png"), "image/png")
    r = adm.put_info(kind, eid, {"Description": "original"})
    assert r.status_code == 200, r.text
    return eid


def _state(adm, kind, eid):
    e = adm.get(f"/api/v1/{kind}/{eid}")
    info = adm.get(f"/api/v1/{kind}/{eid}/ImageInfo")
    img = adm.get(f"/api/v1/{kind}/{eid}/Image")
    return (e.status_code, e.text, info.status_code, info.text, img.status_code, img.content)


def _do(srv, headers, endpoint, kind, eid):
    idf, defaults = KINDS[kind]
    method, what = endpoint.split()
    h = dict(headers)
    kw = {}
    if what == "entity":
        url = f"/api/v1/{kind}" if method == "POST" else f"/api/v1/{kind}/{eid}"
        if method == "POST":
            kw["json"] = dict(defaults)
        elif method == "PUT":
            body = dict(defaults)
            body[idf] = eid
            for k in body:
                if isinstance(body[k], str):
                    body[k] = body[k] + " changed"
            kw["json"] = body
    elif what == "Image":
        url = f"/api/v1/{kind}/{eid}/Image"
        if method in ("PUT", "POST"):
            kw["data"] = data("small.jpg")
            h["Content-Type"] = "image/jpeg"
    else:
        url = f"/api/v1/{kind}/{eid}/ImageInfo"
        kw["json"] = {"Description": "changed", "ExtraInfo": "matrix"}
    return requests.request(method, srv.base + url, headers=h, timeout=HTTP_TIMEOUT, **kw)


def _ids(role, scheme, kind, endpoint):
    return f"{role}-{scheme}-{kind}-{endpoint.replace(' ', '_')}"


CASES = [(role, scheme, kind, ep) for role in ROLES for scheme in SCHEMES
         for kind in KIND_NAMES for ep in ENDPOINTS]


@pytest.fixture(scope="module")
def viewer_targets(adm):
    return {kind: _target(adm, kind) for kind in KIND_NAMES}


@pytest.mark.parametrize("role,scheme,kind,endpoint", CASES, ids=[_ids(*c) for c in CASES])
def test_rights(msrv, creds, adm, viewer_targets, role, scheme, kind, endpoint):
    headers = creds[(role, scheme)]
    user = ROLES[role]
    if role == "viewer":
        eid = viewer_targets[kind]
        before = _state(adm, kind, eid)
        r = _do(msrv, headers, endpoint, kind, eid)
        assert_error(r, 403, "SoAccessDeniedException")
        assert _state(adm, kind, eid) == before, "a refused write changed something"
        return
    eid = _target(adm, kind)
    r = _do(msrv, headers, endpoint, kind, eid)
    want = EXPECTED[endpoint]
    assert r.status_code == want, f"{endpoint} as {user} via {scheme}: {r.status_code} " \
        f"{r.text[:300]!r}"
    idf, _ = KINDS[kind]
    if endpoint == "POST entity":
        new = r.json()[idf]
        assert adm.get(f"/api/v1/{kind}/{new}").status_code == 200
    elif endpoint == "DELETE entity":
        assert adm.get(f"/api/v1/{kind}/{eid}").status_code == 404
    elif endpoint == "DELETE Image":
        assert adm.get(f"/api/v1/{kind}/{eid}/Image").status_code == 404
    elif endpoint == "PUT entity":
        assert adm.get(f"/api/v1/{kind}/{eid}").json() == r.json()
    else:
        info = adm.info(kind, eid)
        assert info["UpdatedBy"] and info["UpdatedBy"]["Name"] == user, info["UpdatedBy"]
        if endpoint.endswith("Image"):
            assert adm.get_image(kind, eid).content == data("small.jpg")
        else:
            assert info["Description"] == "changed"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_viewer_table_right_is_select(msrv, creds, viewer_targets, scheme):
    eid = viewer_targets["Person"]
    r = requests.get(f"{msrv.base}/api/v1/Person/{eid}/ImageInfo",
                     headers=creds[("viewer", scheme)], timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json()["TableRight"]["Mask"] == "Select", r.json()["TableRight"]
    assert r.json()["FieldProperties"]["Description"]["FieldRight"]["Mask"] == "Read"


@pytest.mark.parametrize("role", ["editor", "admin"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_writer_table_right_is_full(msrv, creds, viewer_targets, role, scheme):
    eid = viewer_targets["Contact"]
    r = requests.get(f"{msrv.base}/api/v1/Contact/{eid}/ImageInfo",
                     headers=creds[(role, scheme)], timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json()["TableRight"]["Mask"] == "FULL", r.json()["TableRight"]
    assert r.json()["FieldProperties"]["Description"]["FieldRight"]["Mask"] == "Update"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_viewer_multipart_and_project_query_403(msrv, creds, viewer_targets, scheme):
    eid = viewer_targets["Project"]
    h = creds[("viewer", scheme)]
    r = requests.post(f"{msrv.base}/api/v1/Project/{eid}/Image", headers=h,
                      files={"file": ("a.png", data("small.png"), "image/png")},
                      timeout=HTTP_TIMEOUT)
    assert_error(r, 403, "SoAccessDeniedException")
    r = requests.put(f"{msrv.base}/api/v1/Project/{eid}/ImageInfo?projectId={eid}", headers=h,
                     json={"Description": "x"}, timeout=HTTP_TIMEOUT)
    assert_error(r, 403, "SoAccessDeniedException")
