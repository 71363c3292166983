"""Replay the sample requests of the five documentation pages (shared/reference/seeds,
copied to tests/data/seeds).

The samples' Authorization header is `Basic dGplMDpUamUw` (tje0:Tje0), so this
module's server has that user and the samples are sent verbatim.
"""
import base64
import json
import re
from pathlib import Path

import pytest

from conftest import DEFAULT_USERS, KINDS, RawConn, blob_id_of, data

# A copy of shared/reference/seeds, so that the suite runs on a clean clone.
SEEDS = Path(__file__).resolve().parents[1] / "data" / "seeds"

SAMPLE_AUTH = "Basic dGplMDpUamUw"
SAMPLE_USER, SAMPLE_PW = base64.b64decode(SAMPLE_AUTH.split()[1]).decode().split(":", 1)

FENCE_RE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.S | re.M)


def parse_http_block(text):
    """'METHOD path' or 'HTTP/1.1 200 OK' line, headers, blank line, body."""
    head, _, body = text.partition("\n\n")
    lines = head.strip("\n").split("\n")
    start = lines[0].strip()
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip()] = v.strip()
    return start, headers, body.strip()


def imageinfo_seeds():
    out = []
    for f in sorted(SEEDS.glob("*.txt")):
        text = f.read_text()
        fences = FENCE_RE.findall(text)
        req_i = next((i for i, (lang, _) in enumerate(fences) if lang.strip() == "http!"), None)
        if req_i is None:
            continue
        req = parse_http_block(fences[req_i][1])
        resp = parse_http_block(fences[req_i + 1][1])
        out.append(pytest.param(f.name, req, resp, id=f.name[:3]))
    return out


SEED_CASES = imageinfo_seeds()


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from conftest import Server
    users = dict(DEFAULT_USERS)
    users[SAMPLE_USER] = ("editor", SAMPLE_PW, "Tje Null")
    s = Server(tmp_path_factory.mktemp("seeds"), users=users)
    s.create_users()
    s.start()
    yield s
    rc = s.stop()
    assert rc == 0, f"server did not exit 0 on SIGTERM (rc={rc})"


def test_seed_files_parsed():
    assert SEEDS.is_dir(), SEEDS
    assert len(SEED_CASES) == 4, [p.id for p in SEED_CASES]
    assert (SAMPLE_USER, SAMPLE_PW) == ("tje0", "Tje0")


@pytest.mark.parametrize("name,req,resp", SEED_CASES)
def test_seed_put_imageinfo(srv, name, req, resp):
    start, headers, body = req
    method, path = start.split()[:2]
    assert method == "PUT"
    kind = path.split("/")[3]
    assert kind in KINDS, path
    sample_in = json.loads(body)
    sample_out = json.loads(resp[2])
    assert resp[0].startswith("HTTP/1.1 200")

    admin = srv.client("admin")
    eid = admin.create(kind)
    real_path = re.sub(r"\{[^}]+\}", str(eid), path)
    assert "Authorization" in headers and headers["Authorization"] == SAMPLE_AUTH

    # Send the request exactly as documented: headers and body bytes verbatim.
    conn = RawConn(srv.port)
    try:
        raw = body.encode("utf-8")
        hdrs = dict(headers)
        hdrs["Content-Length"] = str(len(raw))
        conn.send_head(method, real_path, hdrs)
        conn.send(raw)
        status, rh, rb = conn.read_response()
    finally:
        conn.close()
    assert status == 200, (status, rb[:500])
    assert rh.get("content-type", "").split(";")[0].strip() == "application/json", rh
    out = json.loads(rb)
    assert set(out) == set(sample_out), sorted(set(out) ^ set(sample_out))
    for f in ("Description", "ExtraInfo", "ConceptualType"):
        assert out[f] == sample_in[f], (f, out[f])
    assert isinstance(out["BlobId"], int) and out["BlobId"] > 0
    assert out["BlobId"] != sample_in["BlobId"] or sample_in["BlobId"] == 0
    assert out["MimeType"] == "", "no bytes uploaded yet: MimeType must be empty"
    assert out["BlobSize"] == 0 and out["OriginalSize"] == 0
    assert out["IsEncrypted"] is False and out["IsZipped"] is False
    assert isinstance(out["TableRight"], dict) and isinstance(out["FieldProperties"], dict)
    for who in ("CreatedBy", "UpdatedBy"):
        a = out[who]
        assert isinstance(a, dict), (who, a)
        assert a["UserName"] == SAMPLE_USER and a["Type"] == "InternalAssociate", a
    assert out["CreatedDate"] != sample_in["CreatedDate"]

    # the same through requests, and GET agrees
    info = admin.info(kind, eid)
    assert {f: info[f] for f in ("BlobId", "Description", "ExtraInfo", "ConceptualType")} == \
        {f: out[f] for f in ("BlobId", "Description", "ExtraInfo", "ConceptualType")}


def test_seed_project_query_form(srv):
    """The Project page's second form: PUT /api/v1/Project/{id}/ImageInfo?projectId=654."""
    admin = srv.client("admin")
    pid = admin.create("Project")
    r = admin.put(f"/api/v1/Project/{pid}/ImageInfo?projectId={pid}",
                  json={"Description": "via query"},
                  headers={"Accept": "application/json; charset=utf-8", "Accept-Language": "en"})
    assert r.status_code == 200, r.text
    assert r.json()["Description"] == "via query"


def _seed_004():
    text = (SEEDS / "004_68e25bcfed0a315b.txt").read_text()
    req = text.split("Sample request", 1)[1].split("Sample response", 1)[0]
    lines = [l.strip() for l in req.strip().splitlines() if l.strip()]
    method, path = lines[0].split()[:2]
    headers = dict((k.strip(), v.strip()) for k, _, v in (l.partition(":") for l in lines[1:]))
    resp = text.split("Sample response", 1)[1].strip().splitlines()
    return method, path, headers, resp


def test_seed_put_person_image(srv):
    method, path, headers, resp = _seed_004()
    assert (method, path) == ("PUT", "/api/v1/Person/{personId}/Image")
    assert headers["Accept"] == "application/json; charset=utf-8"
    assert headers["Accept-Language"] == "en"
    assert resp[-1].strip() == "167"
    admin = srv.client("admin")
    pid = admin.create("Person")
    body = data("small.png")
    conn = RawConn(srv.port)
    try:
        hdrs = dict(headers)
        hdrs["Content-Type"] = "image/png"
        hdrs["Content-Length"] = str(len(body))
        conn.send_head(method, path.replace("{personId}", str(pid)), hdrs)
        conn.send(body)
        status, rh, rb = conn.read_response()
    finally:
        conn.close()
    assert status == 200, (status, rb[:300])
    assert rh.get("content-type", "").split(";")[0] == "application/json"
    assert re.fullmatch(rb"\s*\d+\s*", rb), rb
    bid = int(rb)
    assert bid > 0
    assert admin.info("Person", pid)["BlobId"] == bid
    assert admin.get_image("Person", pid).content == body
    # and with the sample's headers but no Content-Type at all (raw bytes)
    r = srv.client(SAMPLE_USER, SAMPLE_PW).put(
        f"/api/v1/Person/{pid}/Image", data=data("small.jpg"),
        headers={"Accept": "application/json; charset=utf-8", "Accept-Language": "en"})
    assert blob_id_of(r) == bid


def test_seed_documented_bitmap_paths(srv):
    """The pages say the bitmap is at /api/Services80/person/123/image(/content)
    and /api/v1/contact/123/image."""
    admin = srv.client("admin")
    pid = admin.create("Person")
    cid = admin.create("Contact")
    prj = admin.create("Project")
    admin.put_image("Person", pid, data("small.png"))
    admin.put_image("Contact", cid, data("small.jpg"))
    admin.put_image("Project", prj, data("small.gif"))
    assert admin.get(f"/api/Services80/person/{pid}/image/content").content == data("small.png")
    assert admin.get(f"/api/Services80/person/{pid}/image").content == data("small.png")
    assert admin.get(f"/api/v1/contact/{cid}/image").content == data("small.jpg")
    assert admin.get(f"/api/Services80/project/{prj}/image/content").content == data("small.gif")
