"""Image pipeline: what PUT/POST Image accepts (SPEC §2, §8).

An upload must be a PNG/JPEG/GIF/TIFF whose header decodes, whose pixels
decode, and whose width x height is within the pixel limit (checked from the
header, before decoding: a "decompression bomb" header is refused at once).
A refused upload stores nothing: the previous image is still served.
"""
import struct
import threading
import time

import pytest

import imgmeta
from conftest import (KIND_NAMES, assert_error, assert_fits, assert_image_answer, blob_id_of,
                      img, make_png)

VALID = [
    # file, mime, (width, height)
    ("photo_320x240.jpg", "image/jpeg", (320, 240)),
    ("photo_320x240_prog.jpg", "image/jpeg", (320, 240)),
    ("alpha_48x32.png", "image/png", (48, 32)),
    ("anim_40x30.gif", "image/gif", (40, 30)),
    ("le_24x18.tif", "image/tiff", (24, 18)),
    ("be_24x18.tif", "image/tiff", (24, 18)),
    ("flat_200x170.tif", "image/tiff", (200, 170)),
    ("one_1x1.png", "image/png", (1, 1)),
    ("wide_4000x2.png", "image/png", (4000, 2)),
    ("exif_1.jpg", "image/jpeg", (40, 20)),
    ("exif_6.jpg", "image/jpeg", (40, 20)),
    ("exif_8.jpg", "image/jpeg", (40, 20)),
    ("sq_40x40.png", "image/png", (40, 40)),
    ("cmyk_32x24.jpg", "image/jpeg", (32, 24)),
    ("grey_32x24.jpg", "image/jpeg", (32, 24)),
    ("deep16_32x24.png", "image/png", (32, 24)),
    ("interlaced_32x24.png", "image/png", (32, 24)),
    ("palette_32x24.png", "image/png", (32, 24)),
]

PNG_SIG = b"\x89PNG\r\n\x1a\n"


def junk(n=600):
    return bytes((i * 131 + 7) & 0xFF for i in range(n))


def bad_signature_bodies():
    return {
        "png-sig-junk": PNG_SIG + junk(),
        "png-sig-only": PNG_SIG,
        "png-ihdr-only": PNG_SIG + make_png(8, 8)[8:8 + 25],   # IHDR, no IDAT/IEND
        "jpeg-soi-junk": b"\xff\xd8\xff\xe0" + junk(),
        "gif-sig-junk": b"GIF89a" + junk(),
        "tiff-le-junk": b"II*\x00" + junk(),
        "tiff-be-junk": b"MM\x00*" + junk(),
        "tiff-le-bad-ifd": b"II*\x00" + struct.pack("<I", 0x7FFFFFF0) + junk(40),
    }


BROKEN = {
    "truncated.jpg": lambda: img("truncated.jpg"),
    "corrupt_idat.png": lambda: img("corrupt_idat.png"),
    "corrupt_crc.png": lambda: img("corrupt_crc.png"),
    "truncated.png": lambda: img("alpha_48x32.png")[:len(img("alpha_48x32.png")) // 2],
    # anim_40x30.gif has 3 frames: cut inside the first one, and inside the second one
    "truncated-frame1.gif": lambda: img("anim_40x30.gif")[:len(img("anim_40x30.gif")) // 5],
    "truncated-frame2.gif": lambda: img("anim_40x30.gif")[:len(img("anim_40x30.gif")) // 2],
    "truncated.tif": lambda: img("flat_200x170.tif")[:len(img("flat_200x170.tif")) // 2],
}


# ---- hostile headers in each format, patched from committed images


def jpeg_with_sof(b, w, h):
    out = bytearray(b)
    i = 2
    while True:
        assert out[i] == 0xFF
        m = out[i + 1]
        n = struct.unpack(">H", out[i + 2:i + 4])[0]
        if m in (0xC0, 0xC1, 0xC2):
            out[i + 5:i + 9] = struct.pack(">HH", h, w)
            return bytes(out)
        i += 2 + n


def gif_with_screen(b, w, h):
    # logical screen and the first image descriptor
    out = bytearray(b)
    out[6:10] = struct.pack("<HH", w, h)
    flags = out[10]
    i = 13 + (3 * (1 << ((flags & 7) + 1)) if flags & 0x80 else 0)
    while out[i] == 0x21:   # extensions
        i += 2
        while out[i]:
            i += out[i] + 1
        i += 1
    assert out[i] == 0x2C, out[i]
    out[i + 5:i + 9] = struct.pack("<HH", w, h)
    return bytes(out)


def tiff_with_dims(b, w, h):
    out = bytearray(b)
    e = "<" if b[:2] == b"II" else ">"
    off = struct.unpack(e + "I", b[4:8])[0]
    n = struct.unpack(e + "H", b[off:off + 2])[0]
    for k in range(n):
        p = off + 2 + 12 * k
        tag, typ = struct.unpack(e + "HH", b[p:p + 4])
        if tag in (256, 257):
            v = w if tag == 256 else h
            if typ == 3:
                out[p + 8:p + 12] = struct.pack(e + "HH", v, 0)
            else:
                out[p + 8:p + 12] = struct.pack(e + "I", v)
    return bytes(out)


def hostile_headers():
    return {
        "bomb.png": img("bomb.png"),
        "png-65535x65535": _png_huge(),
        "jpeg-60000x60000": jpeg_with_sof(img("photo_320x240.jpg"), 60000, 60000),
        "gif-65535x65535": gif_with_screen(img("anim_40x30.gif"), 65535, 65535),
        "tiff-le-65535x65535": tiff_with_dims(img("le_24x18.tif"), 65535, 65535),
        "tiff-be-65535x65535": tiff_with_dims(img("be_24x18.tif"), 65535, 65535),
    }


def _png_huge():
    import zlib
    from conftest import png_chunk
    ihdr = struct.pack(">IIBBBBB", 65535, 65535, 8, 6, 0, 0, 0)
    return (PNG_SIG + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + png_chunk(b"IEND", b""))


def test_hostile_headers_are_what_we_think():
    for name, b in hostile_headers().items():
        w, h = imgmeta.dims(b)
        assert w * h > 50_000_000, (name, w, h)
    assert imgmeta.dims(img("bomb.png")) == (100000, 100000)


# --------------------------------------------------------------------------
# helpers


def upload(c, kind, eid, body, method="PUT", ctype="application/octet-stream"):
    return c.request(method, f"/api/v1/{kind}/{eid}/Image", data=body,
                     headers={"Content-Type": ctype})


def snapshot(c, kind, eid):
    info = c.info(kind, eid)
    return {k: info[k] for k in ("BlobId", "BlobSize", "OriginalSize", "MimeType",
                                 "UpdatedDate", "IsZipped", "IsEncrypted")}


def assert_unchanged(c, kind, eid, before, body, mime, dims):
    """Nothing was stored: the same record, bytes and variants as before."""
    assert snapshot(c, kind, eid) == before
    r = c.get_image(kind, eid)
    assert assert_image_answer(r, mime) == body, "the previous image must still be served"
    v = c.get_image(kind, eid, params={"w": 10})
    assert_fits(imgmeta.dims(assert_image_answer(v)), *dims, bw=10)


# --------------------------------------------------------------------------
# valid images


@pytest.mark.parametrize("method", ["PUT", "POST"])
@pytest.mark.parametrize("name,mime,size", VALID, ids=[v[0] for v in VALID])
def test_valid_formats_accepted(admin, name, mime, size, method):
    body = img(name)
    pid = admin.create("Person")
    bid = blob_id_of(upload(admin, "Person", pid, body, method))
    assert assert_image_answer(admin.get_image("Person", pid), mime) == body
    info = admin.info("Person", pid)
    assert info["BlobId"] == bid and info["MimeType"] == mime
    assert info["OriginalSize"] == len(body)


@pytest.mark.parametrize("kind", KIND_NAMES)
@pytest.mark.parametrize("name", ["photo_320x240.jpg", "alpha_48x32.png", "anim_40x30.gif",
                                  "be_24x18.tif"])
def test_valid_formats_every_kind(admin, kind, name):
    body = img(name)
    eid = admin.create(kind)
    admin.put_image(kind, eid, body)
    assert admin.get_image(kind, eid).content == body


def test_valid_multipart(admin):
    pid = admin.create("Project")
    body = img("le_24x18.tif")
    blob_id_of(admin.post(f"/api/v1/Project/{pid}/Image",
                          files={"projectimg": ("x.tif", body, "image/tiff")}))
    assert admin.get_image("Project", pid).content == body


# --------------------------------------------------------------------------
# broken images


@pytest.mark.parametrize("method", ["PUT", "POST"])
@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_image_400_and_nothing_stored(admin, name, method):
    pid = admin.create("Person")
    prev = img("sq_20x20.png")
    admin.put_image("Person", pid, prev)
    before = snapshot(admin, "Person", pid)
    r = upload(admin, "Person", pid, BROKEN[name](), method, ctype="image/png")
    assert_error(r, 400, "SoBadRequestException")
    assert_unchanged(admin, "Person", pid, before, prev, "image/png", (20, 20))


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_image_on_fresh_entity_stores_nothing(admin, name):
    cid = admin.create("Contact")
    assert_error(upload(admin, "Contact", cid, BROKEN[name]()), 400)
    assert_error(admin.get_image("Contact", cid), 404)
    assert admin.info("Contact", cid)["BlobId"] == 0


@pytest.mark.parametrize("name", list(bad_signature_bodies()))
def test_signature_then_junk_400(admin, name):
    pid = admin.create("Product")
    prev = img("anim_40x30.gif")
    admin.put_image("Product", pid, prev)
    before = snapshot(admin, "Product", pid)
    r = upload(admin, "Product", pid, bad_signature_bodies()[name])
    assert_error(r, 400, "SoBadRequestException")
    assert_unchanged(admin, "Product", pid, before, prev, "image/gif", (40, 30))


def test_broken_multipart_file_400(admin):
    pid = admin.create("Person")
    r = admin.post(f"/api/v1/Person/{pid}/Image",
                   files={"file": ("t.jpg", img("truncated.jpg"), "image/jpeg")})
    assert_error(r, 400)
    assert_error(admin.get_image("Person", pid), 404)


# --------------------------------------------------------------------------
# the pixel limit (default 50 megapixels)


def test_bomb_png_refused_quickly_with_pixel_message(admin):
    pid = admin.create("Person")
    prev = img("photo_320x240.jpg")
    admin.put_image("Person", pid, prev)
    before = snapshot(admin, "Person", pid)
    t0 = time.monotonic()
    r = upload(admin, "Person", pid, img("bomb.png"), ctype="image/png")
    elapsed = time.monotonic() - t0
    body = assert_error(r, 400, "SoBadRequestException")
    assert elapsed < 2.0, f"the bomb took {elapsed:.2f}s to refuse"
    msg = body["ErrorMessage"]
    assert "pixel" in msg.lower(), f"message does not mention the pixel limit: {msg!r}"
    assert_unchanged(admin, "Person", pid, before, prev, "image/jpeg", (320, 240))


@pytest.mark.parametrize("name", list(hostile_headers()))
def test_huge_header_every_format_refused_quickly(admin, name):
    pid = admin.create("Project")
    t0 = time.monotonic()
    r = upload(admin, "Project", pid, hostile_headers()[name])
    elapsed = time.monotonic() - t0
    body = assert_error(r, 400, "SoBadRequestException")
    assert elapsed < 2.0, f"{name} took {elapsed:.2f}s to refuse"
    assert "pixel" in body["ErrorMessage"].lower(), body
    assert_error(admin.get_image("Project", pid), 404)


def test_bomb_via_multipart_and_post(admin):
    pid = admin.create("Contact")
    t0 = time.monotonic()
    r = admin.post(f"/api/v1/Contact/{pid}/Image",
                   files={"file": ("b.png", img("bomb.png"), "image/png")})
    assert_error(r, 400)
    assert time.monotonic() - t0 < 2.0


def test_parallel_bombs_leave_server_serving(srv, admin):
    results = []

    def one():
        c = srv.client("admin")
        eid = c.create("Person")
        t0 = time.monotonic()
        r = upload(c, "Person", eid, img("bomb.png"))
        results.append((r.status_code, time.monotonic() - t0))

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 6
    assert all(s == 400 for s, _ in results), results
    assert max(t for _, t in results) < 5.0, results
    assert srv.alive()
    pid = admin.create("Person")
    admin.put_image("Person", pid, img("sq_20x20.png"))
    assert admin.get_image("Person", pid, params={"w": 10}).status_code == 200


# -- a configured limit


@pytest.fixture
def limited(make_arg_server):
    s = make_arg_server(["--pixel-limit", "1000"])
    return s, s.client("admin")


def test_pixel_limit_flag(limited):
    s, c = limited
    pid = c.create("Person")
    blob_id_of(upload(c, "Person", pid, img("sq_20x20.png")))              # 400 px
    before = snapshot(c, "Person", pid)
    r = upload(c, "Person", pid, img("sq_40x40.png"))                      # 1600 px
    body = assert_error(r, 400, "SoBadRequestException")
    assert "pixel" in body["ErrorMessage"].lower(), body
    assert_unchanged(c, "Person", pid, before, img("sq_20x20.png"), "image/png", (20, 20))


@pytest.mark.parametrize("w,h,ok", [
    (40, 25, True),      # exactly 1000
    (1000, 1, True),
    (41, 25, False),     # 1025
    (1001, 1, False),
    (1, 1001, False),
    (32, 32, False),     # 1024
])
def test_pixel_limit_boundary(limited, w, h, ok):
    s, c = limited
    pid = c.create("Project")
    r = upload(c, "Project", pid, make_png(w, h))
    if ok:
        blob_id_of(r)
        assert imgmeta.dims(c.get_image("Project", pid).content) == (w, h)
    else:
        body = assert_error(r, 400)
        assert "pixel" in body["ErrorMessage"].lower(), body
        assert_error(c.get_image("Project", pid), 404)


def test_pixel_limit_applies_to_every_format(limited):
    s, c = limited
    for name in ("photo_320x240.jpg", "anim_40x30.gif", "flat_200x170.tif"):
        pid = c.create("Contact")
        assert_error(upload(c, "Contact", pid, img(name)), 400)
    for name in ("exif_3.jpg", "le_24x18.tif", "be_24x18.tif", "one_1x1.png"):
        pid = c.create("Contact")
        blob_id_of(upload(c, "Contact", pid, img(name)))
