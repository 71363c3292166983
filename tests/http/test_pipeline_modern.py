"""Image pipeline: --modern-formats (WebP/AVIF chosen from Accept when no type is given).

With the flag, `Accept: image/webp` and no `type` gets an image/webp answer;
without the flag, Accept never changes the stored type.
"""
import pytest

import imgmeta
from conftest import (assert_error, assert_fits, assert_image_answer, img, start_arg_server,
                      stop_arg_server)

WEBP = {"Accept": "image/webp"}
BROWSER = {"Accept": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"}


@pytest.fixture(scope="module")
def modern(tmp_path_factory):
    s = start_arg_server(tmp_path_factory.mktemp("modern"), ["--modern-formats"])
    yield s
    stop_arg_server(s)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    s = start_arg_server(tmp_path_factory.mktemp("plainfmt"), [])
    yield s
    stop_arg_server(s)


@pytest.fixture(scope="module")
def mc(modern):
    return modern.client("admin")


@pytest.fixture(scope="module")
def photo_id(mc):
    eid = mc.create("Person")
    mc.put_image("Person", eid, img("photo_320x240.jpg"))
    return eid


def get(c, eid, headers=None, kind="Person", **params):
    return c.get(f"/api/v1/{kind}/{eid}/Image", params=params, headers=headers or {})


def vary_has_accept(r):
    return "accept" in [v.strip().lower() for v in r.headers.get("Vary", "").split(",")]


# --------------------------------------------------------------------------
# with --modern-formats


def test_accept_webp_gives_webp(mc, photo_id):
    r = get(mc, photo_id, WEBP)
    body = assert_image_answer(r, "image/webp")
    assert body[:4] == b"RIFF" and body[8:12] == b"WEBP", body[:16]
    assert imgmeta.dims(body) == (320, 240)


def test_accept_webp_with_size(mc, photo_id):
    body = assert_image_answer(get(mc, photo_id, WEBP, w=100, h=100), "image/webp")
    assert imgmeta.dims(body) == (100, 75)


def test_accept_webp_answer_varies_on_accept(mc, photo_id):
    assert vary_has_accept(get(mc, photo_id, WEBP)), "a negotiated answer needs Vary: Accept"
    assert vary_has_accept(get(mc, photo_id, {"Accept": "image/jpeg"}))


def test_accept_browser_list(mc, photo_id):
    r = get(mc, photo_id, BROWSER)
    body = assert_image_answer(r)
    assert imgmeta.kind(body) in ("webp", "avif", "jpeg"), body[:16]
    assert imgmeta.mime(body) == r.headers["Content-Type"].split(";")[0].strip()


@pytest.mark.parametrize("accept", [None, "*/*", "image/jpeg", "image/*", "image/png",
                                    "image/webp;q=0, */*", "text/html"])
def test_without_webp_in_accept_stored_bytes(mc, photo_id, accept):
    r = mc.get(f"/api/v1/Person/{photo_id}/Image",
               headers={"Accept": accept} if accept else {"Accept": None})
    if accept == "text/html" and r.status_code == 406:
        assert_error(r, 406)
        return
    assert assert_image_answer(r, "image/jpeg") == img("photo_320x240.jpg")


@pytest.mark.parametrize("tname,mime", [("PNG", "image/png"), ("jpeg", "image/jpeg"),
                                         ("GIF", "image/gif")])
def test_explicit_type_wins_over_accept(mc, photo_id, tname, mime):
    body = assert_image_answer(get(mc, photo_id, WEBP, type=tname, w=50), mime)
    assert_fits(imgmeta.dims(body), 320, 240, 50)


def test_webp_etag_differs_from_stored(mc, photo_id):
    j = get(mc, photo_id, {"Accept": "image/jpeg"})
    w = get(mc, photo_id, WEBP)
    assert imgmeta.kind(w.content) == "webp"
    assert j.headers["ETag"] != w.headers["ETag"], "two representations share a strong ETag"
    # If-None-Match with the JPEG's ETag must not give a 304 for the WebP
    r = get(mc, photo_id, {**WEBP, "If-None-Match": j.headers["ETag"]})
    assert r.status_code == 200 and imgmeta.kind(r.content) == "webp"
    r = get(mc, photo_id, {**WEBP, "If-None-Match": w.headers["ETag"]})
    assert r.status_code == 304


def test_webp_cached(mc, photo_id):
    a = get(mc, photo_id, WEBP, w=64)
    b = get(mc, photo_id, WEBP, w=64)
    assert a.content == b.content and a.headers["ETag"] == b.headers["ETag"]


def test_webp_follows_replacement(mc):
    eid = mc.create("Product")
    mc.put_image("Product", eid, img("photo_320x240.jpg"))
    a = get(mc, eid, WEBP, kind="Product")
    assert imgmeta.dims(a.content) == (320, 240)
    mc.put_image("Product", eid, img("alpha_48x32.png"))
    b = assert_image_answer(get(mc, eid, WEBP, kind="Product"), "image/webp")
    assert imgmeta.dims(b) == (48, 32)


@pytest.mark.parametrize("name,dims", [("alpha_48x32.png", (48, 32)), ("anim_40x30.gif", (40, 30)),
                                       ("be_24x18.tif", (24, 18)), ("exif_6.jpg", (20, 40))])
def test_webp_from_every_format(mc, name, dims):
    eid = mc.create("Contact")
    mc.put_image("Contact", eid, img(name))
    body = assert_image_answer(get(mc, eid, WEBP, kind="Contact"), "image/webp")
    assert imgmeta.dims(body) == dims


def test_webp_range_and_head(mc, photo_id):
    full = get(mc, photo_id, WEBP).content
    p = get(mc, photo_id, {**WEBP, "Range": "bytes=0-11"})
    assert p.status_code == 206 and p.content == full[:12]
    h = mc.head(f"/api/v1/Person/{photo_id}/Image", headers=WEBP)
    assert h.headers.get("Content-Type", "").startswith("image/webp")
    assert h.headers.get("Content-Length") == str(len(full))


def test_placeholder_with_accept_webp(mc):
    eid = mc.create("Project")
    r = get(mc, eid, WEBP, kind="Project", ifBlank="SrNoPhoto")
    body = assert_image_answer(r)
    assert imgmeta.kind(body) in ("webp", "png")


# --------------------------------------------------------------------------
# without the flag


@pytest.mark.parametrize("accept", [WEBP, BROWSER, {"Accept": "image/avif"}])
def test_no_flag_accept_webp_gets_stored_type(plain, accept):
    c = plain.client("admin")
    eid = c.create("Person")
    c.put_image("Person", eid, img("photo_320x240.jpg"))
    r = get(c, eid, accept)
    assert assert_image_answer(r, "image/jpeg") == img("photo_320x240.jpg")
    v = assert_image_answer(get(c, eid, accept, w=100), "image/jpeg")
    assert imgmeta.dims(v) == (100, 75)
    eid2 = c.create("Person")
    c.put_image("Person", eid2, img("alpha_48x32.png"))
    assert assert_image_answer(get(c, eid2, accept, w=24), "image/png")
