"""Image pipeline: scaled and converted variants (GET Image?w=&h=&type=, SPEC §2, §8).

Variants fit inside w x h keeping the aspect ratio, are never enlarged, apply
the EXIF orientation, convert with type=JPEG/PNG/GIF (any case), and are
cached (same bytes and ETag twice) until the image changes. No parameters:
the stored bytes exactly.
"""
import threading

import pytest

import imgmeta
from conftest import (KIND_NAMES, assert_error, assert_fits, assert_image_answer, data,
                      img, make_png)

TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif"}

SOURCES = {
    # name -> (file, mime, dims)
    "jpeg": ("photo_320x240.jpg", "image/jpeg", (320, 240)),
    "jpeg-progressive": ("photo_320x240_prog.jpg", "image/jpeg", (320, 240)),
    "png-alpha": ("alpha_48x32.png", "image/png", (48, 32)),
    "gif": ("anim_40x30.gif", "image/gif", (40, 30)),
    "tiff-le": ("le_24x18.tif", "image/tiff", (24, 18)),
    "tiff-be": ("be_24x18.tif", "image/tiff", (24, 18)),
}

QUAD = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "white": (255, 255, 255)}


def stored_quadrant(sx, sy):
    """The colour of the stored 40x20 exif_N.jpg pixels at (sx, sy)."""
    return ("red", "green", "blue", "white")[(sx >= 20) + 2 * (sy >= 10)]


def get(c, kind, eid, **params):
    return c.get(f"/api/v1/{kind}/{eid}/Image", params=params)


def put_new(c, kind, name):
    eid = c.create(kind)
    c.put_image(kind, eid, img(name) if isinstance(name, str) else name)
    return eid


@pytest.fixture(scope="module")
def photo(admin):
    """kind -> id of an entity holding photo_320x240.jpg."""
    return {k: put_new(admin, k, "photo_320x240.jpg") for k in KIND_NAMES}


# --------------------------------------------------------------------------
# scaling


BOXES = [
    # params, expected box for fit_dims
    ({"w": 100, "h": 100}, (100, 100)),
    ({"w": 64}, (64, None)),
    ({"h": 60}, (None, 60)),
    ({"w": 100, "h": 10}, (100, 10)),
    ({"w": 10, "h": 100}, (10, 100)),
    ({"w": 200, "h": 200}, (200, 200)),
    ({"w": 319}, (319, None)),
    ({"w": 1, "h": 1}, (1, 1)),
]


@pytest.mark.parametrize("kind", KIND_NAMES)
@pytest.mark.parametrize("params,box", BOXES, ids=[str(b[0]) for b in BOXES])
def test_scale_to_fit_keeps_aspect(admin, photo, kind, params, box):
    r = get(admin, kind, photo[kind], **params)
    body = assert_image_answer(r, "image/jpeg")
    assert_fits(imgmeta.dims(body), 320, 240, *box)


def test_exact_fit_on_the_limiting_side(admin, photo):
    body = get(admin, "Person", photo["Person"], w=200, h=200).content
    assert imgmeta.dims(body) == (200, 150)
    body = get(admin, "Person", photo["Person"], w=64).content
    assert imgmeta.dims(body) == (64, 48)
    body = get(admin, "Person", photo["Person"], h=60).content
    assert imgmeta.dims(body) == (80, 60)


@pytest.mark.parametrize("params", [{"w": 256, "h": 256}, {"w": 16, "h": 12}, {"w": 1000},
                                    {"h": 5000}, {"w": 10000, "h": 10000}])
def test_never_enlarged(admin, params):
    pid = put_new(admin, "Person", data("small.png"))    # 16 x 12
    body = assert_image_answer(get(admin, "Person", pid, **params), "image/png")
    assert imgmeta.dims(body) == (16, 12)


@pytest.mark.parametrize("params", [{"w": 100000, "h": 100000}, {"w": 2147483647}])
def test_huge_box_is_a_positive_integer_not_an_error(admin, params):
    """w/h are rejected only when they are not positive integers; a box larger
    than the picture just gives the picture (never enlarged)."""
    pid = put_new(admin, "Person", data("small.png"))
    body = assert_image_answer(get(admin, "Person", pid, **params), "image/png")
    assert imgmeta.dims(body) == (16, 12)


def test_never_enlarged_photo(admin, photo):
    body = assert_image_answer(get(admin, "Contact", photo["Contact"], w=640, h=480))
    assert imgmeta.dims(body) == (320, 240)


@pytest.mark.parametrize("src", list(SOURCES))
def test_scale_every_source_format_keeps_its_type(admin, src):
    name, mime, (w, h) = SOURCES[src]
    pid = put_new(admin, "Project", name)
    for params, box in (({"w": 12}, (12, None)), ({"h": 9}, (None, 9)),
                        ({"w": 10, "h": 10}, (10, 10))):
        body = assert_image_answer(get(admin, "Project", pid, **params), mime)
        assert_fits(imgmeta.dims(body), w, h, *box)


@pytest.mark.parametrize("params,want", [
    ({"w": 100}, (100, 1)),
    ({"w": 1}, (1, 1)),
    ({"w": 3}, (3, 1)),
    ({"h": 1}, (2000, 1)),
    ({"w": 100, "h": 100}, (100, 1)),
    ({"w": 100, "type": "PNG"}, (100, 1)),
    ({"w": 100, "type": "JPEG"}, (100, 1)),
    ({"w": 100, "type": "GIF"}, (100, 1)),
])
def test_very_wide_never_zero(admin, params, want):
    pid = put_new(admin, "Product", "wide_4000x2.png")
    r = get(admin, "Product", pid, **params)
    body = assert_image_answer(r, TYPES.get(params.get("type"), "image/png"))
    gw, gh = imgmeta.dims(body)
    assert gh >= 1 and gw >= 1, (gw, gh)
    assert (gw, gh) == want or (abs(gw - want[0]) <= 1 and gh == want[1]), (gw, gh, want)


@pytest.mark.parametrize("params", [{"w": 256, "h": 256}, {"w": 1}, {"type": "JPEG"},
                                    {"type": "GIF", "w": 5}])
def test_one_pixel_image(admin, params):
    pid = put_new(admin, "Person", "one_1x1.png")
    body = assert_image_answer(get(admin, "Person", pid, **params))
    assert imgmeta.dims(body) == (1, 1)


def test_big_jpeg_scaled(admin):
    pid = put_new(admin, "Product", data("big.jpg"))     # 1500 x 1100
    body = assert_image_answer(get(admin, "Product", pid, w=256, h=256), "image/jpeg")
    assert_fits(imgmeta.dims(body), 1500, 1100, 256, 256)


# --------------------------------------------------------------------------
# conversion


@pytest.mark.parametrize("src", list(SOURCES))
@pytest.mark.parametrize("tname", ["JPEG", "png", "Gif", "jpeg", "PNG", "gif"])
def test_convert_type_any_case(admin, src, tname):
    name, _mime, (w, h) = SOURCES[src]
    pid = put_new(admin, "Contact", name)
    want = TYPES[tname.upper()]
    body = assert_image_answer(get(admin, "Contact", pid, type=tname), want)
    assert imgmeta.kind(body) == want.split("/")[1]
    assert imgmeta.dims(body) == (w, h)
    body = assert_image_answer(get(admin, "Contact", pid, type=tname, w=12), want)
    assert_fits(imgmeta.dims(body), w, h, 12)


def test_convert_png_with_alpha_to_png_keeps_alpha(admin):
    pid = put_new(admin, "Person", "alpha_48x32.png")
    body = assert_image_answer(get(admin, "Person", pid, type="PNG", w=24), "image/png")
    im = imgmeta.png_pixels(body)
    assert (im.width, im.height) == (24, 16)
    assert im.pixel(0, 8)[3] < 40, f"left edge should stay (nearly) transparent: {im.pixel(0, 8)}"
    assert im.pixel(23, 8)[3] > 215, f"right edge should stay opaque: {im.pixel(23, 8)}"


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_convert_every_kind(admin, photo, kind):
    for tname, mime in TYPES.items():
        body = assert_image_answer(get(admin, kind, photo[kind], type=tname, w=50, h=50), mime)
        assert_fits(imgmeta.dims(body), 320, 240, 50, 50)


# --------------------------------------------------------------------------
# no parameters: the stored bytes


@pytest.mark.parametrize("name", ["photo_320x240.jpg", "alpha_48x32.png", "anim_40x30.gif",
                                  "le_24x18.tif", "be_24x18.tif", "exif_6.jpg",
                                  "wide_4000x2.png", "flat_200x170.tif"])
def test_no_parameters_exact_bytes(admin, name):
    body = img(name)
    pid = put_new(admin, "Person", body)
    r = get(admin, "Person", pid)
    assert assert_image_answer(r, imgmeta.mime(body)) == body
    # a variant asked first must not replace what plain GET answers
    get(admin, "Person", pid, w=7)
    assert get(admin, "Person", pid).content == body


def test_unknown_params_alone_give_exact_bytes(admin, photo):
    r = get(admin, "Project", photo["Project"], foo="bar", size="10")
    assert r.content == img("photo_320x240.jpg")


# --------------------------------------------------------------------------
# EXIF orientation


@pytest.mark.parametrize("o", range(1, 9))
def test_exif_orientation_applied_in_variants(admin, o):
    pid = put_new(admin, "Person", f"exif_{o}.jpg")
    disp = (40, 20) if o <= 4 else (20, 40)
    # never enlarged: w=100 gives the displayed size
    body = assert_image_answer(get(admin, "Person", pid, w=100), "image/jpeg")
    assert imgmeta.display_dims(body) == disp, (o, imgmeta.dims(body),
                                                imgmeta.jpeg_orientation(body))
    # scaled: w=10 gives 10 x 5 (landscape) or 10 x 20 (portrait)
    body = get(admin, "Person", pid, w=10).content
    assert imgmeta.display_dims(body) == ((10, 5) if o <= 4 else (10, 20)), (
        o, imgmeta.dims(body), imgmeta.jpeg_orientation(body))


@pytest.mark.parametrize("o", range(1, 9))
def test_exif_orientation_pixels_rotated(admin, o):
    """The variant's pixels are turned (not just the tag copied): the PNG shows
    each stored quadrant in the corner the orientation puts it."""
    pid = put_new(admin, "Contact", f"exif_{o}.jpg")
    body = assert_image_answer(get(admin, "Contact", pid, type="PNG"), "image/png")
    im = imgmeta.png_pixels(body)
    W, H = (40, 20) if o <= 4 else (20, 40)
    assert (im.width, im.height) == (W, H), f"orientation {o}: PNG is {im.width}x{im.height}"
    got, want = {}, {}
    for x, y in ((2, 2), (W - 3, 2), (2, H - 3), (W - 3, H - 3)):
        got[(x, y)] = imgmeta.nearest(im.pixel(x, y), QUAD)
        want[(x, y)] = stored_quadrant(*imgmeta.oriented(x, y, 40, 20, o))
    assert got == want, f"orientation {o}: corners {got}, want {want}"


@pytest.mark.parametrize("o", [3, 6, 8])
def test_exif_variant_jpeg_not_rotated_twice(admin, o):
    """A JPEG variant whose pixels were turned must not keep the old tag
    (a viewer would turn it again)."""
    pid = put_new(admin, "Project", f"exif_{o}.jpg")
    body = get(admin, "Project", pid, w=30).content
    assert imgmeta.jpeg_orientation(body) in (None, 1), imgmeta.jpeg_orientation(body)
    if o <= 4:
        assert imgmeta.dims(body) == (30, 15)
    else:
        assert imgmeta.dims(body) == (20, 40), imgmeta.dims(body)   # never enlarged


def test_exif_original_bytes_untouched(admin):
    body = img("exif_6.jpg")
    pid = put_new(admin, "Person", body)
    r = get(admin, "Person", pid)
    assert r.content == body
    assert imgmeta.jpeg_orientation(r.content) == 6


# --------------------------------------------------------------------------
# bad parameters


@pytest.mark.parametrize("param,value", [
    ("w", "0"), ("w", "-5"), ("w", "abc"), ("w", "1.5"), ("w", "10px"), ("w", "0x10"),
    ("h", "0"), ("h", "-1"), ("h", "x"), ("h", "2.0"), ("h", "1e3"),
    ("type", "BMP"), ("type", "x"), ("type", "SVG"), ("type", "PDF"), ("type", "JPEGX"),
])
@pytest.mark.parametrize("kind", ["Person", "Product"])
def test_bad_params_400(admin, photo, kind, param, value):
    r = get(admin, kind, photo[kind], **{param: value})
    body = assert_error(r, 400, "SoBadRequestException")
    assert body["ErrorMessage"]


def test_bad_params_400_on_head(admin, photo):
    r = admin.head(f"/api/v1/Person/{photo['Person']}/Image", params={"w": "-1"})
    assert r.status_code == 400 and r.content == b""


def test_bad_params_do_not_break_later_gets(admin, photo):
    for v in ("0", "-1", "abc"):
        get(admin, "Person", photo["Person"], w=v)
    assert get(admin, "Person", photo["Person"]).content == img("photo_320x240.jpg")
    assert imgmeta.dims(get(admin, "Person", photo["Person"], w=32).content) == (32, 24)


# --------------------------------------------------------------------------
# variant cache


def test_variant_cached_same_bytes_and_etag(admin, photo):
    kind, eid = "Contact", photo["Contact"]
    for params in ({"w": 77, "h": 77}, {"type": "PNG"}, {"w": 33, "type": "gif"}):
        a = get(admin, kind, eid, **params)
        b = get(admin, kind, eid, **params)
        assert_image_answer(a)
        assert_image_answer(b)
        assert a.content == b.content, params
        assert a.headers["ETag"] == b.headers["ETag"], params
        assert a.headers["Last-Modified"] == b.headers["Last-Modified"], params


def test_variant_etags_differ_per_parameters(admin, photo):
    kind, eid = "Project", photo["Project"]
    answers = {
        "orig": get(admin, kind, eid),
        "w100": get(admin, kind, eid, w=100),
        "w50": get(admin, kind, eid, w=50),
        "h50": get(admin, kind, eid, h=50),
        "png": get(admin, kind, eid, type="PNG"),
        "gif": get(admin, kind, eid, type="GIF"),
        "w50png": get(admin, kind, eid, w=50, type="PNG"),
    }
    etags = {k: r.headers.get("ETag") for k, r in answers.items()}
    bodies = {k: r.content for k, r in answers.items()}
    # different bytes must never share a strong ETag
    for a in answers:
        for b in answers:
            if a < b and bodies[a] != bodies[b]:
                assert etags[a] != etags[b], (a, b, etags[a])


def test_variant_changes_after_new_image(admin):
    pid = put_new(admin, "Person", "photo_320x240.jpg")
    v1 = get(admin, "Person", pid, w=100, h=100)
    assert imgmeta.dims(v1.content) == (100, 75)
    admin.put_image("Person", pid, img("alpha_48x32.png"))
    v2 = get(admin, "Person", pid, w=100, h=100)
    assert assert_image_answer(v2, "image/png")
    assert imgmeta.dims(v2.content) == (48, 32)
    assert v2.headers["ETag"] != v1.headers["ETag"]
    assert v2.content != v1.content
    # and a same-type, same-size replacement still changes the variant
    admin.put_image("Person", pid, img("photo_320x240.jpg"))
    v3 = get(admin, "Person", pid, w=100, h=100)
    assert imgmeta.dims(v3.content) == (100, 75)
    admin.put_image("Person", pid, img("photo_320x240_prog.jpg"))
    v4 = get(admin, "Person", pid, w=100, h=100)
    assert imgmeta.dims(v4.content) == (100, 75)
    assert v4.headers["ETag"] != v3.headers["ETag"] or v4.content == v3.content


def test_variant_changes_after_new_image_same_dims(admin):
    a = make_png(30, 20, (250, 10, 10))
    b = make_png(30, 20, (10, 10, 250))
    pid = put_new(admin, "Product", a)
    v1 = get(admin, "Product", pid, w=15, type="PNG")
    assert imgmeta.nearest(imgmeta.png_pixels(v1.content).pixel(5, 5), QUAD) == "red"
    admin.put_image("Product", pid, b)
    v2 = get(admin, "Product", pid, w=15, type="PNG")
    assert imgmeta.nearest(imgmeta.png_pixels(v2.content).pixel(5, 5), QUAD) == "blue", \
        "the cached variant of the old image was served"
    assert v2.headers["ETag"] != v1.headers["ETag"]


def test_variant_gone_after_delete(admin):
    pid = put_new(admin, "Contact", "photo_320x240.jpg")
    assert get(admin, "Contact", pid, w=50).status_code == 200
    assert admin.delete(f"/api/v1/Contact/{pid}/Image").status_code == 204
    assert_error(get(admin, "Contact", pid, w=50), 404)
    assert_error(get(admin, "Contact", pid, type="PNG"), 404)


def test_variant_of_failed_upload_unchanged(admin):
    pid = put_new(admin, "Project", "photo_320x240.jpg")
    v1 = get(admin, "Project", pid, w=40)
    r = admin.put(f"/api/v1/Project/{pid}/Image", data=img("truncated.jpg"))
    assert_error(r, 400)
    v2 = get(admin, "Project", pid, w=40)
    assert v2.content == v1.content and v2.headers["ETag"] == v1.headers["ETag"]


def test_concurrent_first_requests_for_one_variant(srv, admin):
    pid = put_new(admin, "Person", data("big.jpg"))
    out = []

    def one():
        c = srv.client("admin")
        r = get(c, "Person", pid, w=123, h=123)
        out.append((r.status_code, r.headers.get("ETag"), r.content))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(out) == 8
    assert {s for s, _, _ in out} == {200}, [s for s, _, _ in out]
    assert len({e for _, e, _ in out}) == 1, "one variant, one ETag"
    assert len({b for _, _, b in out}) == 1, "one variant, one set of bytes"
    assert_fits(imgmeta.dims(out[0][2]), 1500, 1100, 123, 123)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_head_of_variant(admin, photo, kind):
    g = get(admin, kind, photo[kind], w=90, type="PNG")
    h = admin.head(f"/api/v1/{kind}/{photo[kind]}/Image", params={"w": 90, "type": "PNG"})
    assert h.status_code == 200 and h.content == b""
    for k in ("Content-Type", "Content-Length", "ETag", "Last-Modified"):
        assert h.headers.get(k) == g.headers.get(k), k


# --------------------------------------------------------------------------
# product thumbnail


def test_product_thumbnail_200(admin):
    pid = put_new(admin, "Product", "photo_320x240.jpg")
    r = get(admin, "Product", pid, w=200, h=200)
    body = assert_image_answer(r, "image/jpeg")
    assert imgmeta.dims(body) == (200, 150)
    again = get(admin, "Product", pid, w=200, h=200)
    assert again.content == body and again.headers["ETag"] == r.headers["ETag"]


def test_product_thumbnail_follows_replacement(admin):
    pid = put_new(admin, "Product", "photo_320x240.jpg")
    t1 = get(admin, "Product", pid, w=200, h=200)
    assert imgmeta.dims(t1.content) == (200, 150)
    admin.put_image("Product", pid, data("medium.jpg"))             # 480 x 360
    t2 = get(admin, "Product", pid, w=200, h=200)
    assert imgmeta.dims(t2.content) == (200, 150)
    assert t2.content != t1.content and t2.headers["ETag"] != t1.headers["ETag"]
    admin.put_image("Product", pid, img("anim_40x30.gif"))
    t3 = assert_image_answer(get(admin, "Product", pid, w=200, h=200), "image/gif")
    assert imgmeta.dims(t3) == (40, 30)
    admin.put_image("Product", pid, make_png(300, 600))
    t4 = assert_image_answer(get(admin, "Product", pid, w=200, h=200), "image/png")
    assert imgmeta.dims(t4) == (100, 200)


def test_product_thumbnail_gone_with_image(admin):
    pid = put_new(admin, "Product", "photo_320x240.jpg")
    assert get(admin, "Product", pid, w=200, h=200).status_code == 200
    assert admin.delete(f"/api/v1/Product/{pid}/Image").status_code == 204
    assert_error(get(admin, "Product", pid, w=200, h=200), 404)
    admin.put_image("Product", pid, make_png(50, 400))
    assert imgmeta.dims(get(admin, "Product", pid, w=200, h=200).content) == (25, 200)


# --------------------------------------------------------------------------
# rights, cache bounds, races


def test_viewer_gets_variants(srv, admin):
    pid = put_new(admin, "Person", "photo_320x240.jpg")
    v = srv.client("victor")
    body = assert_image_answer(get(v, "Person", pid, w=40, type="PNG"), "image/png")
    assert imgmeta.dims(body) == (40, 30)
    assert_fits(imgmeta.dims(get(v, "Person", pid, w=41).content), 320, 240, 41)


def test_anonymous_cannot_get_variants(srv, admin):
    pid = put_new(admin, "Person", "photo_320x240.jpg")
    assert_error(get(srv.anon(), "Person", pid, w=40), 401)


def test_small_variant_cache_still_correct(make_arg_server):
    """With a 1 MB variant cache, many variants evict each other; every answer
    is still right, and a re-rendered variant has the same bytes and ETag."""
    s = make_arg_server(["--variant-cache-mb", "1"])
    c = s.client("admin")
    pid = put_new(c, "Product", data("big.jpg"))          # 1500 x 1100
    first = get(c, "Product", pid, w=700, type="PNG")
    body = assert_image_answer(first, "image/png")
    assert_fits(imgmeta.dims(body), 1500, 1100, 700)
    total = len(body)
    for w in range(600, 700, 5):
        r = get(c, "Product", pid, w=w, type="PNG")
        assert_fits(imgmeta.dims(assert_image_answer(r, "image/png")), 1500, 1100, w)
        total += len(r.content)
    assert total > 2 * 1024 * 1024, f"only {total} bytes of variants; the test needs more"
    again = get(c, "Product", pid, w=700, type="PNG")
    assert again.content == first.content
    assert again.headers["ETag"] == first.headers["ETag"]
    assert s.alive()


def test_replacement_race_never_serves_stale_variant(srv, admin):
    """While other clients keep asking for a variant, every GET made after a
    PUT Image has returned shows the new picture."""
    red = make_png(64, 32, (250, 10, 10))
    blue = make_png(64, 32, (10, 10, 250))
    pid = put_new(admin, "Contact", red)
    stop = threading.Event()
    errors = []

    def hammer():
        c = srv.client("admin")
        while not stop.is_set():
            r = get(c, "Contact", pid, w=16, type="PNG")
            if r.status_code != 200:
                errors.append(r.status_code)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(20):
            pic, want = (blue, "blue") if i % 2 == 0 else (red, "red")
            admin.put_image("Contact", pid, pic)
            r = get(admin, "Contact", pid, w=16, type="PNG")
            got = imgmeta.nearest(imgmeta.png_pixels(
                assert_image_answer(r, "image/png")).pixel(8, 4), QUAD)
            assert got == want, f"round {i}: the variant shows {got} after uploading {want}"
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors[:10]


# --------------------------------------------------------------------------
# less common encodings


ENCODINGS = {
    "cmyk_32x24.jpg": "image/jpeg",
    "grey_32x24.jpg": "image/jpeg",
    "deep16_32x24.png": "image/png",
    "interlaced_32x24.png": "image/png",
    "palette_32x24.png": "image/png",
}


@pytest.mark.parametrize("name", list(ENCODINGS))
def test_variants_of_less_common_encodings(admin, name):
    pid = put_new(admin, "Contact", name)
    body = assert_image_answer(get(admin, "Contact", pid, w=16), ENCODINGS[name])
    assert imgmeta.dims(body) == (16, 12)
    for tname, mime in TYPES.items():
        body = assert_image_answer(get(admin, "Contact", pid, type=tname), mime)
        assert imgmeta.dims(body) == (32, 24), (tname, imgmeta.dims(body))
        body = assert_image_answer(get(admin, "Contact", pid, type=tname, h=6), mime)
        assert imgmeta.dims(body) == (8, 6), (tname, imgmeta.dims(body))


def test_cmyk_to_png_is_rgb(admin):
    pid = put_new(admin, "Person", "cmyk_32x24.jpg")
    im = imgmeta.png_pixels(assert_image_answer(get(admin, "Person", pid, type="PNG"),
                                                "image/png"))
    assert im.ctype in (0, 2, 4, 6), f"PNG colour type {im.ctype}"
    assert im.depth == 8, im.depth


@pytest.mark.parametrize("params,want", [
    ({"type": "GIF"}, (40, 30)),
    ({"type": "PNG"}, (40, 30)),
    ({"type": "JPEG"}, (40, 30)),
    ({"w": 20}, (20, 15)),
    ({"w": 20, "type": "PNG"}, (20, 15)),
    ({"h": 90}, (40, 30)),
])
def test_animated_gif_variants_are_one_frame_tall(admin, params, want):
    """A 3-frame 40x30 GIF is 40x30, not a 40x90 strip of its frames."""
    pid = put_new(admin, "Product", "anim_40x30.gif")
    body = assert_image_answer(get(admin, "Product", pid, **params))
    assert imgmeta.dims(body) == want, imgmeta.dims(body)
