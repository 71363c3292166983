#!/usr/bin/env python3
"""Regenerate the committed test images in tests/data.

Run once by hand (needs Pillow: apt-get install python3-pil):

    python3 tests/data/make_images.py

The HTTP tests never import Pillow; they only read the files written here.
The output is deterministic (fixed random seed), so re-running it gives the
same bytes with the same Pillow version.

Files:
  small.png      16x12 RGBA PNG
  small.jpg      32x24 RGB baseline JPEG
  small.gif      16x16 palette GIF
  small_le.tif   8x6 RGB uncompressed TIFF, little-endian ("II*\\0")
  small_be.tif   8x6 RGB uncompressed TIFF, big-endian    ("MM\\0*")
  photo.jpg      ~25 KB photo-like JPEG (gradient + noise)
  medium.jpg     ~200 KB JPEG (for mid-upload kill / disconnect tests)
  big.jpg        ~2-3 MB JPEG (large real upload)
"""
import io
import random
import struct
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent


def gradient_noise(w, h, noise, seed):
    rnd = random.Random(seed)
    img = Image.new("RGB", (w, h))
    px = []
    for y in range(h):
        for x in range(w):
            r = (x * 255 // max(1, w - 1))
            g = (y * 255 // max(1, h - 1))
            b = ((x + y) * 255 // max(1, w + h - 2))
            if noise:
                r = min(255, max(0, r + rnd.randint(-noise, noise)))
                g = min(255, max(0, g + rnd.randint(-noise, noise)))
                b = min(255, max(0, b + rnd.randint(-noise, noise)))
            px.append((r, g, b))
    img.putdata(px)
    return img


def tiff_rgb(w, h, pixels, big_endian):
    """A minimal baseline TIFF: one strip, uncompressed 8-bit RGB."""
    e = ">" if big_endian else "<"
    header = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    strip = bytes(c for p in pixels for c in p)
    entries = [
        # tag, type, count, value
        (256, 3, 1, w),            # ImageWidth (SHORT)
        (257, 3, 1, h),            # ImageLength
        (258, 3, 3, None),         # BitsPerSample -> offset
        (259, 3, 1, 1),            # Compression none
        (262, 3, 1, 2),            # Photometric RGB
        (273, 4, 1, None),         # StripOffsets
        (277, 3, 1, 3),            # SamplesPerPixel
        (278, 3, 1, h),            # RowsPerStrip
        (279, 4, 1, len(strip)),   # StripByteCounts
        (284, 3, 1, 1),            # PlanarConfiguration chunky
    ]
    ifd_size = 2 + 12 * len(entries) + 4
    bps_off = 8 + ifd_size
    strip_off = bps_off + 6
    out = bytearray(header)
    out += struct.pack(e + "H", len(entries))
    for tag, typ, count, value in entries:
        if tag == 258:
            out += struct.pack(e + "HHII", tag, typ, count, bps_off)
        elif tag == 273:
            out += struct.pack(e + "HHII", tag, typ, count, strip_off)
        elif typ == 3:
            # SHORT value left-justified in the 4-byte field
            out += struct.pack(e + "HHIHH", tag, typ, count, value, 0)
        else:
            out += struct.pack(e + "HHII", tag, typ, count, value)
    out += struct.pack(e + "I", 0)  # no next IFD
    out += struct.pack(e + "HHH", 8, 8, 8)
    out += strip
    return bytes(out)


def save(name, data):
    (HERE / name).write_bytes(data)
    print(f"{name:14s} {len(data):8d} bytes  {data[:8]!r}")


def to_bytes(img, fmt, **kw):
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


def main():
    # small.png: 16x12 RGBA with a transparent corner
    png = Image.new("RGBA", (16, 12), (200, 30, 30, 255))
    for x in range(4):
        for y in range(4):
            png.putpixel((x, y), (0, 0, 0, 0))
    save("small.png", to_bytes(png, "PNG"))

    save("small.jpg", to_bytes(gradient_noise(32, 24, 0, 1), "JPEG", quality=85))

    gif = gradient_noise(16, 16, 0, 2).convert("P", palette=Image.ADAPTIVE, colors=16)
    save("small.gif", to_bytes(gif, "GIF"))

    tif_img = gradient_noise(8, 6, 0, 3)
    px = list(tif_img.getdata())
    save("small_le.tif", tiff_rgb(8, 6, px, big_endian=False))
    save("small_be.tif", tiff_rgb(8, 6, px, big_endian=True))

    save("photo.jpg", to_bytes(gradient_noise(200, 150, 60, 4), "JPEG", quality=90))
    save("medium.jpg", to_bytes(gradient_noise(480, 360, 110, 5), "JPEG", quality=96))
    save("big.jpg", to_bytes(gradient_noise(1500, 1100, 127, 6), "JPEG", quality=97))

    # Sanity: every file decodes and has the expected format/size.
    for name, fmt in [("small.png", "PNG"), ("small.jpg", "JPEG"), ("small.gif", "GIF"),
                      ("small_le.tif", "TIFF"), ("small_be.tif", "TIFF"),
                      ("photo.jpg", "JPEG"), ("medium.jpg", "JPEG"), ("big.jpg", "JPEG")]:
        with Image.open(HERE / name) as im:
            im.load()
            assert im.format == fmt, (name, im.format)
            print(f"  ok {name}: {im.format} {im.size} {im.mode}")


if __name__ == "__main__":
    main()
