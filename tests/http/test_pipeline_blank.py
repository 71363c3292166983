"""Image pipeline: GET Image?ifBlank=... when the entity has no image (SPEC §2).

ClearPixel/2: a 1x1 transparent PNG (w x h when asked). SrNoPhoto/3,
SrNoPhotoWithBorder/4, GenericFileIcon/5: built-in placeholder pictures,
128x128 PNG by default, scaled by w/h and converted by type. Default/0 and
Null/1: 404. Names any case.
"""
import pytest

import imgmeta
from conftest import KIND_NAMES, assert_error, assert_image_answer, img

PICTURES = {
    "SrNoPhoto": "3",
    "SrNoPhotoWithBorder": "4",
    "GenericFileIcon": "5",
}


def spellings(name):
    return [name, name.lower(), name.upper(), name[0].lower() + name[1:]]


def blank(c, kind, eid, **params):
    return c.get(f"/api/v1/{kind}/{eid}/Image", params=params)


@pytest.fixture(scope="module")
def empty(admin):
    """kind -> id of an entity without an image."""
    return {k: admin.create(k) for k in KIND_NAMES}


# --------------------------------------------------------------------------
# ClearPixel


@pytest.mark.parametrize("kind", KIND_NAMES)
@pytest.mark.parametrize("value", spellings("ClearPixel") + ["2"])
def test_clear_pixel(admin, empty, kind, value):
    body = assert_image_answer(blank(admin, kind, empty[kind], ifBlank=value), "image/png")
    im = imgmeta.png_pixels(body)
    assert (im.width, im.height) == (1, 1)
    assert im.pixel(0, 0)[3] == 0, f"the pixel must be transparent: {im.pixel(0, 0)}"


@pytest.mark.parametrize("w,h", [(5, 5), (16, 9), (1, 30)])
def test_clear_pixel_w_h(admin, empty, w, h):
    body = assert_image_answer(blank(admin, "Person", empty["Person"], ifBlank="ClearPixel",
                                     w=w, h=h), "image/png")
    im = imgmeta.png_pixels(body)
    assert (im.width, im.height) == (w, h)
    assert all(im.pixel(x, y)[3] == 0 for x in range(w) for y in range(h))


def test_clear_pixel_name_and_number_same(admin, empty):
    a = blank(admin, "Contact", empty["Contact"], ifBlank="ClearPixel")
    b = blank(admin, "Contact", empty["Contact"], ifBlank="2")
    assert_image_answer(a, "image/png")
    assert a.content == b.content


# --------------------------------------------------------------------------
# placeholder pictures


@pytest.mark.parametrize("kind", KIND_NAMES)
@pytest.mark.parametrize("name", list(PICTURES))
def test_placeholder_default_png_128(admin, empty, kind, name):
    for value in spellings(name) + [PICTURES[name]]:
        body = assert_image_answer(blank(admin, kind, empty[kind], ifBlank=value), "image/png")
        assert imgmeta.dims(body) == (128, 128), (value, imgmeta.dims(body))


@pytest.mark.parametrize("name", list(PICTURES))
def test_placeholder_name_and_number_same_picture(admin, empty, name):
    a = blank(admin, "Person", empty["Person"], ifBlank=name)
    b = blank(admin, "Person", empty["Person"], ifBlank=PICTURES[name])
    c = blank(admin, "Person", empty["Person"], ifBlank=name.upper())
    assert_image_answer(a, "image/png")
    assert a.content == b.content == c.content


def test_placeholders_differ(admin, empty):
    bodies = {n: assert_image_answer(blank(admin, "Project", empty["Project"], ifBlank=n))
              for n in list(PICTURES) + ["ClearPixel"]}
    names = list(bodies)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert bodies[a] != bodies[b], f"{a} and {b} are the same picture"
    # and they differ as pictures, not only as files
    px = {n: imgmeta.png_pixels(bodies[n]) for n in PICTURES}
    sig = {n: tuple(px[n].pixel(x, y) for x in range(0, 128, 8) for y in range(0, 128, 8))
           for n in PICTURES}
    assert len(set(sig.values())) == 3, "the three placeholders show the same pixels"


def test_placeholder_is_not_blank(admin, empty):
    for n in PICTURES:
        im = imgmeta.png_pixels(assert_image_answer(
            blank(admin, "Person", empty["Person"], ifBlank=n), "image/png"))
        colours = {im.pixel(x, y) for x in range(0, 128, 4) for y in range(0, 128, 4)}
        assert len(colours) > 1, f"{n} is one flat colour"


@pytest.mark.parametrize("name", list(PICTURES))
@pytest.mark.parametrize("params,box", [
    ({"w": 64, "h": 64}, (64, 64)),
    ({"w": 32}, (32, None)),
    ({"h": 50}, (None, 50)),
    ({"w": 100, "h": 40}, (100, 40)),
])
def test_placeholder_scaled(admin, empty, name, params, box):
    body = assert_image_answer(blank(admin, "Contact", empty["Contact"], ifBlank=name, **params),
                               "image/png")
    w, h = imgmeta.dims(body)
    bw, bh = box
    assert w >= 1 and h >= 1
    if bw:
        assert w <= bw, (w, h, box)
    if bh:
        assert h <= bh, (w, h, box)
    # fits: touches the box on the limiting side
    assert (bw and w == bw) or (bh and h == bh), (w, h, box)


@pytest.mark.parametrize("name", list(PICTURES))
@pytest.mark.parametrize("tname,mime", [("JPEG", "image/jpeg"), ("jpeg", "image/jpeg"),
                                         ("GIF", "image/gif"), ("png", "image/png")])
def test_placeholder_type(admin, empty, name, tname, mime):
    body = assert_image_answer(blank(admin, "Product", empty["Product"], ifBlank=name,
                                     type=tname), mime)
    assert imgmeta.dims(body) == (128, 128)
    body = assert_image_answer(blank(admin, "Product", empty["Product"], ifBlank=name,
                                     type=tname, w=64, h=64), mime)
    assert imgmeta.dims(body) == (64, 64)


def test_clear_pixel_type_jpeg(admin, empty):
    r = blank(admin, "Person", empty["Person"], ifBlank="ClearPixel", type="JPEG")
    # a JPEG cannot be transparent; whatever it is, type and bytes agree and it is 1x1
    body = assert_image_answer(r)
    assert imgmeta.dims(body) == (1, 1)


def test_placeholder_with_only_imageinfo(admin):
    pid = admin.create("Person")
    assert admin.put_info("Person", pid, {"Description": "no bytes yet"}).status_code == 200
    assert_error(blank(admin, "Person", pid), 404)
    body = assert_image_answer(blank(admin, "Person", pid, ifBlank="SrNoPhoto"), "image/png")
    assert imgmeta.dims(body) == (128, 128)
    assert_error(blank(admin, "Person", pid, ifBlank="Null"), 404)


def test_placeholder_after_delete(admin):
    pid = admin.create("Project")
    admin.put_image("Project", pid, img("photo_320x240.jpg"))
    assert blank(admin, "Project", pid, ifBlank="GenericFileIcon").content == \
        img("photo_320x240.jpg")
    assert admin.delete(f"/api/v1/Project/{pid}/Image").status_code == 204
    body = assert_image_answer(blank(admin, "Project", pid, ifBlank="GenericFileIcon"),
                               "image/png")
    assert imgmeta.dims(body) == (128, 128)


def test_image_present_wins_over_placeholder_with_params(admin):
    pid = admin.create("Person")
    admin.put_image("Person", pid, img("photo_320x240.jpg"))
    body = assert_image_answer(blank(admin, "Person", pid, ifBlank="SrNoPhoto", w=64, h=64),
                               "image/jpeg")
    assert imgmeta.dims(body) == (64, 48)


# --------------------------------------------------------------------------
# 404 kinds and bad values


@pytest.mark.parametrize("kind", KIND_NAMES)
@pytest.mark.parametrize("value", spellings("Default") + spellings("Null") + ["0", "1"])
def test_default_and_null_404(admin, empty, kind, value):
    assert_error(blank(admin, kind, empty[kind], ifBlank=value), 404, "SoNotFoundException")


@pytest.mark.parametrize("value", ["Null", "0"])
def test_default_null_404_with_params(admin, empty, value):
    assert_error(blank(admin, "Person", empty["Person"], ifBlank=value, w=10, type="PNG"), 404)


@pytest.mark.parametrize("value", ["SrNoPhotos", "7", "-3", "Photo", ""])
def test_unknown_ifblank_400(admin, empty, value):
    r = blank(admin, "Person", empty["Person"], ifBlank=value)
    if value == "" and r.status_code == 404:
        return  # an empty ifBlank may be read as absent
    assert_error(r, 400, "SoBadRequestException")


@pytest.mark.parametrize("param,value", [("w", "0"), ("h", "-2"), ("w", "z"), ("type", "BMP")])
def test_placeholder_bad_params_400(admin, empty, param, value):
    r = blank(admin, "Person", empty["Person"], ifBlank="SrNoPhoto", **{param: value})
    assert_error(r, 400, "SoBadRequestException")


def test_placeholder_head(admin, empty):
    g = blank(admin, "Contact", empty["Contact"], ifBlank="SrNoPhotoWithBorder", w=64)
    assert_image_answer(g, "image/png")
    h = admin.head(f"/api/v1/Contact/{empty['Contact']}/Image",
                   params={"ifBlank": "SrNoPhotoWithBorder", "w": 64})
    assert h.status_code == 200 and h.content == b""
    for k in ("Content-Type", "Content-Length", "ETag", "Last-Modified"):
        assert h.headers.get(k) == g.headers.get(k), k


def test_placeholder_stable(admin, empty):
    a = blank(admin, "Person", empty["Person"], ifBlank="SrNoPhoto", w=48)
    b = blank(admin, "Person", empty["Person"], ifBlank="SrNoPhoto", w=48)
    assert_image_answer(a, "image/png")
    assert a.content == b.content and a.headers["ETag"] == b.headers["ETag"]


@pytest.mark.parametrize("value", ["ClearPixel", "SrNoPhoto", "GenericFileIcon"])
def test_huge_placeholder_box_is_bounded(admin, empty, value):
    """Placeholders are drawn at the asked size: a huge box must not make the
    server draw a huge picture (a cheap request must stay cheap)."""
    import time
    t0 = time.monotonic()
    r = blank(admin, "Product", empty["Product"], ifBlank=value, w=100000, h=100000)
    elapsed = time.monotonic() - t0
    assert elapsed < 5, f"{elapsed:.1f}s for one placeholder"
    if r.status_code == 400:
        assert_error(r, 400)
        return
    w, h = imgmeta.dims(assert_image_answer(r, "image/png"))
    assert w * h <= 4096 * 4096, (w, h)
