"""PUT/POST/GET/HEAD/DELETE /api/v1/{E}/{id}/Image and the legacy Services80 paths."""
import datetime as dt
import email.utils
import hashlib
import re
import time

import pytest
import requests

from conftest import (IMAGES, KIND_NAMES, MAX_IMAGE, MIB, RawConn, assert_error, basic, blob_id_of,
                      data, error_body, image, png_of_size, png_size, png_with_text)

CTYPES = ["image/png", "image/jpeg", "application/octet-stream", None]


def check_image_response(r, body, mime):
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]!r}"
    assert r.content == body, f"got {len(r.content)} bytes, want {len(body)}"
    assert r.headers.get("Content-Type", "").split(";")[0].strip() == mime, r.headers
    assert r.headers.get("Content-Length") == str(len(body)), r.headers
    etag = r.headers.get("ETag", "")
    assert re.fullmatch(r'"[^"]+"', etag), f"ETag must be strong and quoted: {etag!r}"
    lm = r.headers.get("Last-Modified", "")
    assert lm and email.utils.parsedate_to_datetime(lm) is not None, f"Last-Modified: {lm!r}"
    assert lm.endswith("GMT"), lm


# --------------------------------------------------------------------------
# upload


@pytest.mark.parametrize("method", ["PUT", "POST"])
@pytest.mark.parametrize("kind", KIND_NAMES)
def test_upload_raw_any_content_type(admin, kind, method):
    eid = admin.create(kind)
    png = data("small.png")
    ids = set()
    for ctype in CTYPES:
        headers = {"Content-Type": ctype} if ctype else {}
        r = admin.request(method, f"/api/v1/{kind}/{eid}/Image", data=png, headers=headers)
        ids.add(blob_id_of(r))
        check_image_response(admin.get_image(kind, eid), png, "image/png")
    assert len(ids) == 1, f"re-uploads must keep the BlobId: {ids}"
    info = admin.info(kind, eid)
    assert info["BlobId"] in ids
    assert info["MimeType"] == "image/png"


@pytest.mark.parametrize("fmt", list(IMAGES))
@pytest.mark.parametrize("kind", KIND_NAMES)
def test_all_formats_roundtrip(admin, kind, fmt):
    body, mime = image(fmt)
    eid = admin.create(kind)
    bid = admin.put_image(kind, eid, body, mime)
    check_image_response(admin.get_image(kind, eid), body, mime)
    info = admin.info(kind, eid)
    assert info["BlobId"] == bid
    assert info["MimeType"] == mime
    assert info["BlobSize"] == info["OriginalSize"] == len(body)


def test_tiff_byte_orders_are_the_files_we_think(admin):
    assert data("small_le.tif")[:4] == b"II*\x00"
    assert data("small_be.tif")[:4] == b"MM\x00*"


@pytest.mark.parametrize("fmt,declared", [
    ("png", "image/jpeg"), ("jpg", "image/png"), ("gif", "image/tiff"),
    ("tif_le", "image/gif"), ("tif_be", "image/png"), ("png", "text/plain"),
    ("jpg", "application/json"),
])
def test_mime_type_comes_from_bytes(admin, fmt, declared):
    body, mime = image(fmt)
    pid = admin.create("Person")
    admin.put_image("Person", pid, body, declared)
    check_image_response(admin.get_image("Person", pid), body, mime)
    assert admin.info("Person", pid)["MimeType"] == mime


def test_photo_and_big_jpeg_roundtrip(admin):
    for name in ("photo.jpg", "medium.jpg", "big.jpg"):
        body = data(name)
        pid = admin.create("Product")
        admin.put_image("Product", pid, body, "image/jpeg")
        check_image_response(admin.get_image("Product", pid), body, "image/jpeg")


# -- multipart


@pytest.mark.parametrize("field", ["projectimg", "file", "image", "x"])
@pytest.mark.parametrize("kind", KIND_NAMES)
def test_multipart_any_field_name(admin, kind, field):
    eid = admin.create(kind)
    body = data("small.gif")
    r = admin.post(f"/api/v1/{kind}/{eid}/Image",
                   files={field: ("pic.gif", body, "image/gif")})
    bid = blob_id_of(r)
    check_image_response(admin.get_image(kind, eid), body, "image/gif")
    assert admin.info(kind, eid)["BlobId"] == bid


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_multipart_text_field_before_file(admin, method):
    pid = admin.create("Project")
    body = data("small.jpg")
    files = [
        ("note", (None, "some text that is not a file")),
        ("projectimg", ("photo.jpg", body, "image/jpeg")),
    ]
    r = admin.request(method, f"/api/v1/Project/{pid}/Image", files=files)
    blob_id_of(r)
    check_image_response(admin.get_image("Project", pid), body, "image/jpeg")


def test_multipart_first_file_part_wins(admin):
    pid = admin.create("Person")
    files = [
        ("description", (None, "hello")),
        ("first", ("a.png", data("small.png"), "image/png")),
        ("second", ("b.jpg", data("small.jpg"), "image/jpeg")),
    ]
    blob_id_of(admin.post(f"/api/v1/Person/{pid}/Image", files=files))
    check_image_response(admin.get_image("Person", pid), data("small.png"), "image/png")


def test_multipart_part_type_is_not_trusted(admin):
    pid = admin.create("Person")
    body = data("small_be.tif")
    files = {"file": ("x.bin", body, "application/octet-stream")}
    blob_id_of(admin.post(f"/api/v1/Person/{pid}/Image", files=files))
    check_image_response(admin.get_image("Person", pid), body, "image/tiff")
    files = {"file": ("x.jpg", data("small.png"), "image/jpeg")}
    blob_id_of(admin.put(f"/api/v1/Person/{pid}/Image", files=files))
    assert admin.info("Person", pid)["MimeType"] == "image/png"


def test_multipart_binary_bytes_preserved(admin):
    # bytes that look like CRLF and boundary fragments must survive
    body = png_with_text(b"\r\n--\r\n--boundary\r\n\r\n\x00\xff" * 50)
    pid = admin.create("Contact")
    blob_id_of(admin.post(f"/api/v1/Contact/{pid}/Image",
                          files={"file": ("a.png", body, "image/png")}))
    check_image_response(admin.get_image("Contact", pid), body, "image/png")


def test_multipart_without_file_part_400(admin):
    pid = admin.create("Person")
    admin.put_image("Person", pid, data("small.png"))
    r = admin.post(f"/api/v1/Person/{pid}/Image",
                   files=[("a", (None, "text")), ("b", (None, "more text"))])
    assert_error(r, 400, "SoBadRequestException")
    assert admin.get_image("Person", pid).content == data("small.png")


def test_multipart_with_non_image_file_400(admin):
    pid = admin.create("Person")
    r = admin.post(f"/api/v1/Person/{pid}/Image",
                   files={"file": ("a.txt", b"just some text\n", "text/plain")})
    assert_error(r, 400)


def test_malformed_multipart_400(admin):
    pid = admin.create("Person")
    r = admin.post(f"/api/v1/Person/{pid}/Image", data=b"--xyz\r\nContent-Disposition: form",
                   headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert_error(r, 400)
    r = admin.post(f"/api/v1/Person/{pid}/Image", data=data("small.png"),
                   headers={"Content-Type": "multipart/form-data"})
    assert_error(r, 400)


# -- bad uploads


@pytest.mark.parametrize("method", ["PUT", "POST"])
@pytest.mark.parametrize("ctype", ["image/png", "application/octet-stream", None])
def test_empty_body_400(admin, method, ctype):
    pid = admin.create("Person")
    headers = {"Content-Type": ctype} if ctype else {}
    assert_error(admin.request(method, f"/api/v1/Person/{pid}/Image", data=b"",
                               headers=headers), 400, "SoBadRequestException")
    assert_error(admin.get_image("Person", pid), 404)


@pytest.mark.parametrize("body", [
    b"this is not an image",
    b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n",
    b"BM\x36\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00",  # BMP
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"\x00" * 100,
    b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    b"\x89PNG",  # truncated signature
])
def test_non_image_400(admin, body):
    pid = admin.create("Person")
    prev = data("small.jpg")
    admin.put_image("Person", pid, prev, "image/jpeg")
    r = admin.put(f"/api/v1/Person/{pid}/Image", data=body, headers={"Content-Type": "image/png"})
    assert_error(r, 400, "SoBadRequestException")
    check_image_response(admin.get_image("Person", pid), prev, "image/jpeg")


@pytest.mark.parametrize("method", ["PUT", "POST"])
@pytest.mark.parametrize("kind", KIND_NAMES)
def test_upload_entity_absent_400(admin, kind, method):
    r = admin.request(method, f"/api/v1/{kind}/1999999990/Image", data=data("small.png"),
                      headers={"Content-Type": "image/png"})
    assert_error(r, 400, "SoBadRequestException")


# -- size limits


def _auth(srv):
    return basic("admin", srv.users["admin"][1])


@pytest.mark.parametrize("expect", [False, True])
def test_content_length_over_limit_413_without_reading_body(srv, admin, expect):
    pid = admin.create("Person")
    admin.put_image("Person", pid, data("small.png"))
    conn = RawConn(srv.port)
    try:
        headers = {"Authorization": _auth(srv), "Content-Type": "image/png",
                   "Content-Length": str(MAX_IMAGE + 1)}
        if expect:
            headers["Expect"] = "100-continue"
        t0 = time.monotonic()
        conn.send_head("PUT", f"/api/v1/Person/{pid}/Image", headers)
        if not expect:
            conn.send(png_with_text(b"y" * 60000))
        status, hdrs, body = conn.read_response(timeout=10)
        elapsed = time.monotonic() - t0
        if status == 100:
            pytest.fail("server sent 100 Continue for a body over the limit")
        assert status == 413, (status, body[:300])
        assert elapsed < 5, f"413 took {elapsed:.1f}s"
        assert hdrs.get("content-type", "").startswith("application/json")
        assert error_body(body)["ErrorType"] == "SoTooLargeException"
    finally:
        conn.close()
    assert admin.get_image("Person", pid).content == data("small.png")


def test_content_length_way_over_limit_413(srv, admin):
    pid = admin.create("Person")
    conn = RawConn(srv.port)
    try:
        conn.send_head("POST", f"/api/v1/Person/{pid}/Image",
                       {"Authorization": _auth(srv), "Content-Type": "application/octet-stream",
                        "Content-Length": str(5 * 1024 ** 3)})
        conn.send(data("small.png"))
        status, _, body = conn.read_response(timeout=10)
        assert status == 413, (status, body[:200])
        assert error_body(body)["ErrorType"] == "SoTooLargeException"
    finally:
        conn.close()


def test_chunked_over_limit_413(srv, admin):
    pid = admin.create("Person")
    admin.put_image("Person", pid, data("small.gif"))
    conn = RawConn(srv.port)
    answered_early = False
    try:
        conn.send_head("PUT", f"/api/v1/Person/{pid}/Image",
                       {"Authorization": _auth(srv), "Content-Type": "image/png",
                        "Transfer-Encoding": "chunked"})
        first = data("small.png")
        conn.send(b"%x\r\n%s\r\n" % (len(first), first))
        sent = len(first)
        filler = b"z" * 65536
        chunk = b"%x\r\n%s\r\n" % (len(filler), filler)
        try:
            while sent <= MAX_IMAGE + 65536:
                if conn.readable(0):
                    answered_early = True
                    break
                conn.send(chunk)
                sent += len(filler)
            if not answered_early:
                conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, _, body = conn.read_response(timeout=10)
        assert status == 413, (status, body[:300])
        assert error_body(body)["ErrorType"] == "SoTooLargeException"
    finally:
        conn.close()
    assert admin.get_image("Person", pid).content == data("small.gif")


def test_chunked_upload_accepted(admin):
    pid = admin.create("Project")
    body = data("photo.jpg")

    def gen():
        for i in range(0, len(body), 1000):
            yield body[i:i + 1000]

    r = admin.put(f"/api/v1/Project/{pid}/Image", data=gen(), headers={"Content-Type": "image/jpeg"})
    blob_id_of(r)
    check_image_response(admin.get_image("Project", pid), body, "image/jpeg")


def test_chunked_over_limit_413_with_requests(admin):
    """The same with a requests generator body (as a client library would send it)."""
    pid = admin.create("Person")

    def gen():
        yield data("small.png")
        block = b"q" * 262144
        for _ in range(MAX_IMAGE // len(block) + 2):
            yield block

    try:
        r = admin.put(f"/api/v1/Person/{pid}/Image", data=gen(),
                      headers={"Content-Type": "image/png"})
    except requests.exceptions.ConnectionError as e:
        pytest.fail(f"server dropped the connection instead of answering 413: {e}")
    assert_error(r, 413, "SoTooLargeException")


def test_exactly_limit_accepted(admin):
    body = png_of_size(MAX_IMAGE)
    assert len(body) == 10485760
    pid = admin.create("Person")
    bid = admin.put_image("Person", pid, body, "image/png")
    r = admin.get_image("Person", pid)
    assert r.status_code == 200
    assert len(r.content) == MAX_IMAGE
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(body).digest()
    info = admin.info("Person", pid)
    assert info["BlobId"] == bid
    assert info["OriginalSize"] == MAX_IMAGE and info["BlobSize"] == MAX_IMAGE
    assert info["MimeType"] == "image/png"


def test_one_over_limit_413_full_body(admin):
    body = png_of_size(MAX_IMAGE + 1)
    pid = admin.create("Person")
    try:
        r = admin.put(f"/api/v1/Person/{pid}/Image", data=body, headers={"Content-Type": "image/png"})
    except requests.exceptions.ConnectionError as e:
        pytest.fail(f"server dropped the connection instead of answering 413: {e}")
    assert_error(r, 413, "SoTooLargeException")
    assert_error(admin.get_image("Person", pid), 404)


def test_server_serves_after_limits(srv, admin):
    pid = admin.create("Person")
    admin.put_image("Person", pid, data("small.png"))
    assert admin.get_image("Person", pid).status_code == 200
    assert srv.alive()


# --------------------------------------------------------------------------
# GET / HEAD


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_head_matches_get(admin, kind):
    eid = admin.create(kind)
    body = data("photo.jpg")
    admin.put_image(kind, eid, body, "image/jpeg")
    g = admin.get_image(kind, eid)
    check_image_response(g, body, "image/jpeg")
    h = admin.head(f"/api/v1/{kind}/{eid}/Image")
    assert h.status_code == 200
    assert h.content == b""
    for k in ("Content-Type", "Content-Length", "ETag", "Last-Modified"):
        assert h.headers.get(k) == g.headers.get(k), (k, h.headers, g.headers)


def test_etag_stable_and_changes_with_bytes(admin):
    pid = admin.create("Person")
    admin.put_image("Person", pid, data("small.png"))
    e1 = admin.get_image("Person", pid).headers["ETag"]
    assert admin.get_image("Person", pid).headers["ETag"] == e1
    admin.put_image("Person", pid, data("small.jpg"))
    e2 = admin.get_image("Person", pid).headers["ETag"]
    assert e2 != e1, "a strong ETag must change when the bytes change"
    # Another entity with the same bytes gets its own representation; etag may
    # match, but replacing back must again differ from the jpeg one.
    admin.put_image("Person", pid, data("small.png"))
    assert admin.get_image("Person", pid).headers["ETag"] != e2


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_get_no_image_404(admin, kind):
    eid = admin.create(kind)
    assert_error(admin.get_image(kind, eid), 404, "SoNotFoundException")
    h = admin.head(f"/api/v1/{kind}/{eid}/Image")
    assert h.status_code == 404 and h.content == b""


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_get_entity_absent_404(admin, kind):
    assert_error(admin.get_image(kind, 1999999980), 404, "SoNotFoundException")
    assert admin.head(f"/api/v1/{kind}/1999999980/Image").status_code == 404


@pytest.mark.parametrize("value", ["Null", "Default", "0", "1"])
def test_ifblank_404_values(admin, value):
    pid = admin.create("Person")
    assert_error(admin.get(f"/api/v1/Person/{pid}/Image?ifBlank={value}"), 404)


@pytest.mark.parametrize("kind", KIND_NAMES)
@pytest.mark.parametrize("value", ["ClearPixel", "2"])
def test_ifblank_clear_pixel(admin, kind, value):
    eid = admin.create(kind)
    r = admin.get(f"/api/v1/{kind}/{eid}/Image?ifBlank={value}")
    assert r.status_code == 200, r.text
    assert r.headers.get("Content-Type", "").split(";")[0] == "image/png"
    assert png_size(r.content) == (1, 1)
    assert r.headers.get("Content-Length") == str(len(r.content))


def test_ifblank_with_image_returns_image(admin):
    pid = admin.create("Person")
    admin.put_image("Person", pid, data("small.jpg"))
    for v in ("ClearPixel", "2", "Null", "Default", "0", "1"):
        r = admin.get(f"/api/v1/Person/{pid}/Image?ifBlank={v}")
        check_image_response(r, data("small.jpg"), "image/jpeg")


@pytest.mark.parametrize("value", ["bogus", "6", "-1", "ClearPixels"])
def test_ifblank_unknown_400(admin, value):
    pid = admin.create("Person")
    assert_error(admin.get(f"/api/v1/Person/{pid}/Image?ifBlank={value}"), 400,
                 "SoBadRequestException")


def test_unknown_query_params_ignored(admin):
    pid = admin.create("Person")
    admin.put_image("Person", pid, data("small.png"))
    r = admin.get(f"/api/v1/Person/{pid}/Image?foo=bar&_=123")
    check_image_response(r, data("small.png"), "image/png")


# --------------------------------------------------------------------------
# DELETE


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_delete_image(admin, kind):
    eid = admin.create(kind)
    admin.put_image(kind, eid, data("small.png"))
    assert admin.put_info(kind, eid, {"Description": "gone soon"}).status_code == 200
    r = admin.delete(f"/api/v1/{kind}/{eid}/Image")
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_error(admin.get_image(kind, eid), 404)
    info = admin.info(kind, eid)
    assert info["BlobId"] == 0 and info["Description"] == "" and info["MimeType"] == ""
    assert info["BlobSize"] == 0 and info["OriginalSize"] == 0
    assert admin.get(f"/api/v1/{kind}/{eid}").status_code == 200, "entity must survive"
    # deleting again is fine
    assert admin.delete(f"/api/v1/{kind}/{eid}/Image").status_code == 204


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_delete_image_when_none(admin, kind):
    eid = admin.create(kind)
    assert admin.delete(f"/api/v1/{kind}/{eid}/Image").status_code == 204
    assert_error(admin.get_image(kind, eid), 404)
    assert admin.info(kind, eid)["BlobId"] == 0


def test_delete_image_with_only_info(admin):
    pid = admin.create("Person")
    assert admin.put_info("Person", pid, {"Description": "meta only"}).status_code == 200
    assert admin.delete(f"/api/v1/Person/{pid}/Image").status_code == 204
    info = admin.info("Person", pid)
    assert info["BlobId"] == 0 and info["Description"] == ""


def test_upload_after_delete(admin):
    pid = admin.create("Person")
    admin.put_image("Person", pid, data("small.png"))
    assert admin.delete(f"/api/v1/Person/{pid}/Image").status_code == 204
    bid = admin.put_image("Person", pid, data("small.gif"))
    check_image_response(admin.get_image("Person", pid), data("small.gif"), "image/gif")
    info = admin.info("Person", pid)
    assert info["BlobId"] == bid and info["MimeType"] == "image/gif"
    assert info["ConceptualType"] == "PERSONPHOTO"


def test_delete_image_entity_absent(admin):
    r = admin.delete("/api/v1/Person/1999999970/Image")
    assert r.status_code in (204, 404), r.status_code
    if r.status_code == 404:
        assert_error(r, 404)


# --------------------------------------------------------------------------
# path spelling and legacy paths


def test_path_literals_case_insensitive(admin):
    pid = admin.create("Person")
    cid = admin.create("Contact")
    png, jpg = data("small.png"), data("small.jpg")
    blob_id_of(admin.put(f"/API/V1/PERSON/{pid}/IMAGE", data=png))
    blob_id_of(admin.put(f"/api/v1/contact/{cid}/image", data=jpg))
    check_image_response(admin.get(f"/api/v1/person/{pid}/image"), png, "image/png")
    check_image_response(admin.get(f"/api/v1/contact/{cid}/image"), jpg, "image/jpeg")
    check_image_response(admin.get(f"/Api/V1/Contact/{cid}/IMAGE"), jpg, "image/jpeg")
    for p in (f"/API/V1/PERSON/{pid}/IMAGEINFO", f"/api/v1/person/{pid}/imageinfo",
              f"/api/v1/Person/{pid}/Imageinfo"):
        r = admin.get(p)
        assert r.status_code == 200, (p, r.status_code)
        assert r.json()["MimeType"] == "image/png"
    for p in (f"/api/v1/Contact/{cid}/Imageinfo", f"/api/v1/contact/{cid}/IMAGEINFO"):
        r = admin.get(p)
        assert r.status_code == 200 and r.json()["MimeType"] == "image/jpeg", p
    r = admin.put(f"/api/v1/contact/{cid}/imageinfo", json={"Description": "ci"})
    assert r.status_code == 200 and r.json()["Description"] == "ci"
    assert admin.delete(f"/API/V1/CONTACT/{cid}/IMAGE").status_code == 204
    assert_error(admin.get(f"/api/v1/Contact/{cid}/Image"), 404)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_legacy_services80_paths(admin, kind):
    eid = admin.create(kind)
    body = data("small_le.tif")
    admin.put_image(kind, eid, body, "image/tiff")
    for ent in (kind.lower(), kind, kind.upper()):
        for suffix in ("image", "image/content", "Image", "Image/Content"):
            r = admin.get(f"/api/Services80/{ent}/{eid}/{suffix}")
            assert r.status_code == 200, (ent, suffix, r.status_code, r.text[:200])
            assert r.content == body
            assert r.headers.get("Content-Type", "").split(";")[0] == "image/tiff"
    r = admin.get(f"/api/services80/{kind.lower()}/{eid}/image/content")
    assert r.status_code == 200 and r.content == body


def test_legacy_paths_missing(admin):
    pid = admin.create("Person")
    assert_error(admin.get(f"/api/Services80/person/{pid}/image"), 404)
    assert_error(admin.get("/api/Services80/person/1999999960/image/content"), 404)
    assert_error(admin.get("/api/Services80/person/abc/image"), 400)


# --------------------------------------------------------------------------
# BlobIds


def test_blob_ids_unique_across_entities(admin):
    a = admin.create("Person")
    b = admin.create("Person")
    p = admin.create("Product")
    c = admin.create("Contact")
    j = admin.create("Project")
    ids = [
        admin.put_image("Person", a, data("small.png")),
        admin.put_image("Person", b, data("small.png")),
        admin.put_image("Product", p, data("small.png")),
        admin.put_image("Contact", c, data("small.png")),
        admin.put_image("Project", j, data("small.png")),
    ]
    assert len(set(ids)) == len(ids), ids


def test_same_bytes_on_two_entities_are_independent(admin):
    a = admin.create("Person")
    b = admin.create("Person")
    admin.put_image("Person", a, data("small.png"))
    admin.put_image("Person", b, data("small.png"))
    assert admin.delete(f"/api/v1/Person/{a}/Image").status_code == 204
    check_image_response(admin.get_image("Person", b), data("small.png"), "image/png")


def test_upload_on_keepalive_connection_sequence(admin):
    """Several uploads and reads on one kept-alive connection."""
    pid = admin.create("Person")
    for name in ("small.png", "small.jpg", "small.gif", "photo.jpg", "small_be.tif"):
        body = data(name)
        admin.put_image("Person", pid, body)
        assert admin.get_image("Person", pid).content == body


# --------------------------------------------------------------------------
# more transfer shapes


def test_expect_100_continue_upload(srv, admin):
    """curl sends `Expect: 100-continue` for bodies over 1 MB."""
    pid = admin.create("Person")
    body = data("big.jpg")
    conn = RawConn(srv.port)
    try:
        conn.send_head("PUT", f"/api/v1/Person/{pid}/Image", {
            "Authorization": _auth(srv), "Content-Type": "image/jpeg",
            "Content-Length": str(len(body)), "Expect": "100-continue"})
        status, _, _ = conn.read_response(timeout=5)
        assert status == 100, status
        conn.send(body)
        status, hdrs, rb = conn.read_response(timeout=15)
        assert status == 200, (status, rb[:300])
        assert re.fullmatch(rb"\s*\d+\s*", rb), rb
    finally:
        conn.close()
    check_image_response(admin.get_image("Person", pid), body, "image/jpeg")


def _multipart(parts, boundary, preamble=b"", epilogue=b""):
    out = preamble
    for headers, content in parts:
        out += b"--" + boundary + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n"
        out += content + b"\r\n"
    return out + b"--" + boundary + b"--\r\n" + epilogue


@pytest.mark.parametrize("variant", ["quoted-boundary", "preamble-epilogue", "header-case",
                                     "no-part-content-type", "extra-params"])
def test_multipart_variants(admin, variant):
    pid = admin.create("Person")
    img = data("small_le.tif")
    b = b"----WebKitFormBoundary7MA4YWxkTrZu0gW"
    ctype = "multipart/form-data; boundary=" + b.decode()
    file_headers = [b'Content-Disposition: form-data; name="file"; filename="a.tif"',
                    b"Content-Type: image/tiff"]
    text_part = ([b'Content-Disposition: form-data; name="note"'], b"hello")
    pre, epi = b"", b""
    if variant == "quoted-boundary":
        ctype = f'multipart/form-data; boundary="{b.decode()}"'
    elif variant == "preamble-epilogue":
        pre, epi = b"This is a preamble.\r\n", b"This is an epilogue.\r\n"
    elif variant == "header-case":
        file_headers = [b'content-disposition: Form-Data; NAME="file"; FileName="a.tif"',
                        b"content-type: image/tiff"]
    elif variant == "no-part-content-type":
        file_headers = file_headers[:1]
    elif variant == "extra-params":
        ctype = "multipart/form-data; charset=utf-8; boundary=" + b.decode()
        file_headers = [b'Content-Disposition: form-data; name="file"; filename="a.tif"; '
                        b"filename*=UTF-8''%C3%A5.tif"]
    body = _multipart([text_part, (file_headers, img)], b, pre, epi)
    r = admin.post(f"/api/v1/Person/{pid}/Image", data=body, headers={"Content-Type": ctype})
    blob_id_of(r)
    check_image_response(admin.get_image("Person", pid), img, "image/tiff")


def test_multipart_empty_file_part_400(admin):
    pid = admin.create("Person")
    r = admin.post(f"/api/v1/Person/{pid}/Image",
                   files={"file": ("empty.png", b"", "image/png")})
    assert_error(r, 400)
    assert_error(admin.get_image("Person", pid), 404)


def test_multipart_over_limit_413(srv, admin):
    """A multipart body whose file part is larger than 10 MiB."""
    pid = admin.create("Person")
    admin.put_image("Person", pid, data("small.jpg"))
    head = (b'--zz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n") + data("small.png")
    tail = b"\r\n--zz--\r\n"
    filler_len = MAX_IMAGE + MIB - len(data("small.png"))
    total = len(head) + filler_len + len(tail)
    conn = RawConn(srv.port)
    try:
        conn.send_head("POST", f"/api/v1/Person/{pid}/Image", {
            "Authorization": _auth(srv), "Content-Type": "multipart/form-data; boundary=zz",
            "Content-Length": str(total)})
        conn.send(head)
        block = b"f" * 65536
        left = filler_len
        try:
            while left > 0 and not conn.readable(0):
                n = min(left, len(block))
                conn.send(block[:n])
                left -= n
            if left == 0 and not conn.readable(0):
                conn.send(tail)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, _, body = conn.read_response(timeout=10)
        assert status == 413, (status, body[:300])
        assert error_body(body)["ErrorType"] == "SoTooLargeException"
    finally:
        conn.close()
    assert admin.get_image("Person", pid).content == data("small.jpg")


def test_last_modified_matches_updated_date(admin):
    pid = admin.create("Person")
    admin.put_image("Person", pid, data("small.png"))
    r = admin.get_image("Person", pid)
    lm = email.utils.parsedate_to_datetime(r.headers["Last-Modified"])
    upd = admin.info("Person", pid)["UpdatedDate"]
    u = dt.datetime.strptime(upd[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc)
    assert abs((lm - u).total_seconds()) <= 1, (r.headers["Last-Modified"], upd)


def test_etag_differs_after_delete_and_reupload(admin):
    """A cached ETag of a deleted image must never validate a different new image."""
    pid = admin.create("Person")
    admin.put_image("Person", pid, data("small.png"))
    old = admin.get_image("Person", pid).headers["ETag"]
    assert admin.delete(f"/api/v1/Person/{pid}/Image").status_code == 204
    admin.put_image("Person", pid, data("small.jpg"))
    r = admin.get_image("Person", pid)
    assert r.headers["ETag"] != old, f"same ETag {old} for different bytes"
    r = admin.get_image("Person", pid, headers={"If-None-Match": old})
    assert r.status_code == 200 and r.content == data("small.jpg"), r.status_code


def test_etag_differs_after_entity_delete_and_recreate(admin):
    pid = admin.create("Contact")
    admin.put_image("Contact", pid, data("small.png"))
    old = admin.get_image("Contact", pid).headers["ETag"]
    assert admin.delete(f"/api/v1/Contact/{pid}").status_code == 204
    assert admin.post("/api/v1/Contact", json={"ContactId": pid}).status_code == 201
    admin.put_image("Contact", pid, data("small.gif"))
    r = admin.get_image("Contact", pid, headers={"If-None-Match": old})
    assert r.status_code == 200 and r.content == data("small.gif"), r.status_code
    assert r.headers["ETag"] != old
