"""crmblob's OpenAPI document at /api/openapi.json and Swagger UI at /api/docs
(issue 20; src/api/openapi.json, src/api/openapi.c, web-vendor/swagger-ui).

- The document is answered without credentials, as compiled in from
  src/api/openapi.json, and is a well-formed OpenAPI 2.0 document: the
  required keys, every $ref resolves, parameters well formed (path
  parameters match the path's braces, one body at most, no body with a
  form), security names defined, operationIds unique.
- Every operation it names is answered (an entity of each kind exists, so
  no 404 for want of one; never 405, never "There is no resource"), and for
  every path the methods the router offers (its 405's Allow) are exactly the
  documented ones. The unit test test_router.c walks the route table itself
  against the document, both ways.
- The reference's carriers (BlobEntity, Associate, TableRight,
  FieldProperty, ...) are the reference's definitions, member for member;
  what crmblob answers has the members its schema names.
- Swagger UI: /api/docs answers its page, which loads the vendored files and
  the initializer from the server itself (no inline script: the page's CSP).
"""
import base64
import json
import re
from pathlib import Path

import pytest
import requests

from conftest import HTTP_TIMEOUT, KINDS, REPO, assert_error, png_of_size

SOURCE = REPO / "src" / "api" / "openapi.json"
REFERENCE = REPO.parent / "shared" / "reference" / "superoffice-image-blob-openapi.json"
if not REFERENCE.exists():  # worktrees live one level deeper than the checkout
    REFERENCE = Path("/work/shared/reference/superoffice-image-blob-openapi.json")
# the Batch agent, the BatchTask routes and BatchTaskInfo (issue 21)
BATCH_REFERENCE = REFERENCE.with_name("superoffice-batch-openapi.json")
METHODS = ("get", "head", "put", "post", "delete", "patch", "options")
PARAM_IN = ("query", "header", "path", "formData", "body")
ROUTE_NOT_FOUND = "There is no resource"


@pytest.fixture(scope="module")
def doc(srv):
    r = requests.get(srv.base + "/api/openapi.json", timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


def operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def test_served_without_credentials_as_compiled_in(srv, doc):
    assert doc == json.loads(SOURCE.read_text())
    # a wrong password changes nothing: the route is public, decided first
    r = requests.get(srv.base + "/api/openapi.json", auth=("nobody", "wrong"), timeout=HTTP_TIMEOUT)
    assert r.status_code == 200
    h = requests.head(srv.base + "/api/openapi.json", timeout=HTTP_TIMEOUT)
    assert h.status_code == 200 and h.content == b""
    assert int(h.headers["Content-Length"]) == len(r.content)


# ---- the document's structure (OpenAPI 2.0) ----


def resolve(doc, ref):
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"$ref {ref} does not resolve"
        node = node[part]
    return node


def all_refs(node, where="#"):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield where, v
            else:
                yield from all_refs(v, f"{where}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from all_refs(v, f"{where}/{i}")


def test_required_keys(doc):
    assert doc["swagger"] == "2.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert isinstance(doc["paths"], dict) and doc["paths"]
    for name, scheme in doc["securityDefinitions"].items():
        assert scheme["type"] in ("basic", "apiKey", "oauth2"), name
        if scheme["type"] == "apiKey":
            assert scheme["in"] in ("header", "query") and scheme["name"], name


def test_every_ref_resolves(doc):
    refs = list(all_refs(doc))
    assert len(refs) > 100
    for where, ref in refs:
        assert isinstance(resolve(doc, ref), dict), f"{where}: {ref}"


def test_operations_well_formed(doc):
    seen_ids = set()
    for path, method, op in operations(doc):
        where = f"{method.upper()} {path}"
        assert path.startswith("/"), where
        assert op["operationId"] not in seen_ids, f"{where}: operationId {op['operationId']} twice"
        seen_ids.add(op["operationId"])
        assert op["responses"], where
        for code, resp in op["responses"].items():
            assert code == "default" or re.fullmatch(r"[1-5]\d\d", code), f"{where}: {code}"
            resp = resolve(doc, resp["$ref"]) if "$ref" in resp else resp
            assert isinstance(resp.get("description"), str), f"{where} {code}: no description"
        for req in op["security"]:
            for name in req:
                assert name in doc["securityDefinitions"], f"{where}: security {name}"
        params = [resolve(doc, p["$ref"]) if "$ref" in p else p for p in op.get("parameters", [])]
        keys = [(p["name"], p["in"]) for p in params]
        assert len(keys) == len(set(keys)), f"{where}: a parameter twice"
        for p in params:
            assert p["in"] in PARAM_IN, f"{where}: {p}"
            if p["in"] == "body":
                assert "schema" in p, f"{where}: body without schema"
            else:
                assert p.get("type") in ("string", "integer", "number", "boolean", "array", "file"), \
                    f"{where}: {p['name']} has no simple type"
            if p["in"] == "path":
                assert p.get("required") is True, f"{where}: path parameter {p['name']} not required"
        ins = [p["in"] for p in params]
        assert ins.count("body") <= 1 and not ("body" in ins and "formData" in ins), where
        braces = set(re.findall(r"\{([^}]+)\}", path))
        assert braces == {p["name"] for p in params if p["in"] == "path"}, where


# ---- the document against what the server answers ----


@pytest.fixture
def ids(srv):
    """An entity of each kind, with a picture."""
    admin = srv.client("admin")
    made = {kind: admin.create(kind) for kind in KINDS}
    for kind, eid in made.items():
        admin.put_image(kind, eid, png_of_size(300), "image/png")
    # and a picture of the project image library
    r = admin.post("/api/v1/Agents/BLOB/SaveProjectImage",
                   json={"Image": base64.b64encode(png_of_size(300)).decode()})
    assert r.status_code == 204, r.text
    made["ProjectImageLibrary"] = admin.get("/api/v1/ProjectImageLibrary").json()["value"][-1]["BlobId"]
    return made


def concrete(path, ids):
    m = re.match(r"/api/(?:v1|Services80)/(Person|Contact|Product|Project|ProjectImageLibrary)/"
                 r"\{id\}", path)
    if m:
        path = path.replace("{id}", str(ids[m.group(1)]))
    path = path.replace("/api/v1/BatchTask/{id}", "/api/v1/BatchTask/2000000000")  # no such task
    return path.replace("{asset}", "")


def test_every_documented_operation_is_answered(srv, doc, ids):
    admin = srv.client("admin")
    # deletes last, the entity's after its picture's
    ops = sorted(operations(doc), key=lambda o: (o[1] == "delete", -len(o[0])))
    assert len(ops) > 90
    for path, method, op in ops:
        r = admin.request(method.upper(), concrete(path, ids), data=b"")
        where = f"{method.upper()} {path}: {r.status_code} {r.text[:200]!r}"
        assert r.status_code != 405, where
        assert ROUTE_NOT_FOUND not in r.text, where
        if r.status_code == 404:  # only the agents and a task's id may say "no such thing"
            assert path.startswith(("/api/v1/Agents/", "/api/v1/BatchTask/{id}")), where
        assert str(r.status_code) in op["responses"], f"undocumented answer: {where}"


def test_each_path_offers_the_documented_methods(srv, doc, ids):
    """PATCH is no method of crmblob's: its 405 lists what the path offers."""
    admin = srv.client("admin")
    for path, item in doc["paths"].items():
        documented = {m.upper() for m in item if m in METHODS}
        r = admin.request("PATCH", concrete(path, ids), data=b"")
        assert r.status_code == 405, f"{path}: {r.status_code}"
        allow = {m.strip() for m in r.headers["Allow"].split(",")}
        assert allow == documented, f"{path}: the router offers {allow}, the document {documented}"


def test_a_path_not_documented_is_not_answered(srv, doc):
    admin = srv.client("admin")
    for path in ("/api/v1/Person/1/Thumbnail", "/api/v1/Agents/BLOB/NoSuchMethod",
                 "/api/openapi.yaml", "/api/v2/Person"):
        assert path not in doc["paths"]
        assert_error(admin.get(path), 404)


# ---- carriers ----

REFERENCE_CARRIERS = ("SuperOffice.CRM.Services.BlobEntity", "SuperOffice.CRM.Services.Associate",
                      "SuperOffice.CRM.Security.TableRight", "SuperOffice.CRM.Security.FieldProperty",
                      "SuperOffice.CRM.Security.FieldRight", "SuperOffice.CRM.TimeZoneData")


def test_carriers_equal_the_reference(doc):
    reference = json.loads(REFERENCE.read_text())
    batch = json.loads(BATCH_REFERENCE.read_text())
    ref = {**reference["definitions"], **batch["definitions"]}
    for name in REFERENCE_CARRIERS:
        assert name in doc["definitions"], name
    for name, schema in doc["definitions"].items():
        if name.startswith("SuperOffice."):
            assert schema == ref[name], f"{name} differs from the reference's definition"
    # every agent method takes and answers the reference's carriers
    for path, method, op in operations(doc):
        if path.startswith(("/api/v1/Agents/BLOB/", "/api/v1/Agents/Batch/")):
            theirs = (reference if "/BLOB/" in path else batch)["paths"][path][method]
            bodies = [[p["schema"] for p in o["parameters"] if p.get("in") == "body"] for o in (op, theirs)]
            assert bodies[0] == bodies[1], path
            for code, answer in theirs["responses"].items():
                if code.startswith("2"):
                    assert op["responses"][code] == answer, f"{path} {code}"


def props(doc, name):
    return set(doc["definitions"][name]["properties"])


def test_answers_have_the_schemas_members(srv, doc, ids):
    admin = srv.client("admin")
    info = admin.info("Person", ids["Person"])
    assert set(info) == props(doc, "SuperOffice.CRM.Services.BlobEntity")
    assert set(info["CreatedBy"]) <= props(doc, "SuperOffice.CRM.Services.Associate")
    assert set(info["TableRight"]) <= props(doc, "SuperOffice.CRM.Security.TableRight")
    for fp in info["FieldProperties"].values():
        assert set(fp) <= props(doc, "SuperOffice.CRM.Security.FieldProperty")
    for kind in KINDS:
        r = admin.get(f"/api/v1/{kind}/{ids[kind]}")
        assert set(r.json()) == props(doc, "crmblob." + kind), kind
        admin.create(kind)
        page = admin.get(f"/api/v1/{kind}?$top=1").json()
        assert set(page) == props(doc, f"crmblob.{kind}List"), kind  # a next link: rows follow
        extra = doc["definitions"][f"crmblob.{kind}List"]["properties"]["value"]["items"]["allOf"][1]
        assert set(page["value"][0]) == props(doc, "crmblob." + kind) | set(extra["properties"]), kind
    r = requests.post(srv.base + "/api/v1/login", json={"username": "admin", "password": "admin-pw-1"},
                      timeout=HTTP_TIMEOUT)
    assert set(r.json()) == props(doc, "crmblob.LoginResult")
    assert set(admin.get("/api/v1/Person/2147483000").json()) == props(doc, "crmblob.Error")


# ---- Swagger UI ----


def test_swagger_ui_page(srv):
    r = requests.get(srv.base + "/api/docs", timeout=HTTP_TIMEOUT)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    csp = r.headers["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]*)", csp).group(1)
    assert "unsafe-inline" not in script_src and "unsafe-eval" not in script_src
    assert "frame-ancestors 'none'" in csp
    html = r.text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline script"
    srcs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert set(srcs) == {"/api/docs/swagger-ui.css", "/api/docs/swagger-ui-bundle.js",
                         "/api/docs/swagger-initializer.js"}
    for s in srcs:
        f = requests.get(srv.base + s, timeout=HTTP_TIMEOUT)
        assert f.status_code == 200 and len(f.content) > 100, s
    init = requests.get(srv.base + "/api/docs/swagger-initializer.js", timeout=HTTP_TIMEOUT).text
    assert 'url: "/api/openapi.json"' in init and "X-XSRF-TOKEN" in init
    # the files are npm's swagger-ui-dist, as committed
    bundle = requests.get(srv.base + "/api/docs/swagger-ui-bundle.js", timeout=HTTP_TIMEOUT).content
    assert bundle == (REPO / "web-vendor" / "swagger-ui" / "swagger-ui-bundle.js").read_bytes()
