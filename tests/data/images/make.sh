#!/usr/bin/env bash
# Regenerates the committed test images of the image-pipeline tests
# (tests/http/test_pipeline_*.py). Run from anywhere:
#
#     bash tests/data/images/make.sh
#
# Needs Debian's libvips-tools (`vips`, `vipsheader`) and python3 (standard
# library only). Pictures are drawn with the vips CLI (fixed noise seeds);
# the files whose bytes matter (EXIF segments, big-endian TIFF, broken and
# hostile files) are written or patched byte by byte in python.
#
# Files (all small; the whole folder stays far below 2 MB):
#   photo_320x240.jpg       320x240 photo-like baseline JPEG (gradient + noise), Q 85
#   photo_320x240_prog.jpg  the same, progressive (SOF2)
#   alpha_48x32.png         48x32 RGBA PNG, alpha ramps 0..255 left to right
#   anim_40x30.gif          40x30 GIF, 3 frames (an animation)
#   cmyk_32x24.jpg          32x24 CMYK JPEG (4 components, no profile)
#   grey_32x24.jpg          32x24 greyscale JPEG (1 component)
#   deep16_32x24.png        32x24 16-bit RGB PNG
#   interlaced_32x24.png    32x24 Adam7-interlaced PNG
#   palette_32x24.png       32x24 palette PNG with tRNS (from the alpha picture)
#   le_24x18.tif            24x18 RGB uncompressed TIFF, little-endian ("II*\0")  (vips tiffsave)
#   be_24x18.tif            the same pixels, big-endian ("MM\0*")  (byte order flipped in python)
#   flat_200x170.tif        200x170 RGB uncompressed TIFF of one flat colour (~100 KB; compresses well)
#   exif_1.jpg..exif_8.jpg  40x20 JPEG with an EXIF APP1 whose Orientation is 1..8 (odd: "II"
#                           TIFF header inside the EXIF, even: "MM"); the stored pixels are the
#                           same quadrants in every file: top-left red, top-right green,
#                           bottom-left blue, bottom-right white
#   truncated.jpg           photo_320x240.jpg cut to its first half
#   corrupt_crc.png         alpha_48x32.png with the IDAT CRC flipped (data intact)
#   corrupt_idat.png        alpha_48x32.png whose IDAT payload is a broken zlib stream (CRC valid)
#   bomb.png                IHDR says 100000x100000 RGB (valid CRCs), a tiny IDAT, IEND
#   one_1x1.png             1x1 RGB PNG
#   wide_4000x2.png         4000x2 grey PNG
#   sq_40x40.png, sq_20x20.png   for --pixel-limit 1000
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
cd "$HERE"

for tool in vips vipsheader python3; do
    command -v "$tool" >/dev/null || { echo "make.sh: $tool is missing (apt-get install libvips-tools python3)" >&2; exit 1; }
done

# ---------------------------------------------------------------- photo
vips xyz "$T/xy.v" 320 240
vips extract_band "$T/xy.v" "$T/x.v" 0
vips extract_band "$T/xy.v" "$T/y.v" 1
vips gaussnoise "$T/n1.v" 320 240 --mean 0 --sigma 18 --seed 11
vips gaussnoise "$T/n2.v" 320 240 --mean 0 --sigma 18 --seed 12
vips gaussnoise "$T/bb.v" 320 240 --mean 120 --sigma 35 --seed 13
vips linear "$T/x.v" "$T/r0.v" 0.7 20
vips linear "$T/y.v" "$T/g0.v" 0.9 15
vips add "$T/r0.v" "$T/n1.v" "$T/r.v"
vips add "$T/g0.v" "$T/n2.v" "$T/g.v"
vips bandjoin "$T/r.v $T/g.v $T/bb.v" "$T/rgbf.v"
vips cast "$T/rgbf.v" "$T/photo.v" uchar
vips copy "$T/photo.v" "$T/photo_srgb.v" --interpretation srgb
vips jpegsave "$T/photo_srgb.v" photo_320x240.jpg --Q 85 --strip
vips jpegsave "$T/photo_srgb.v" photo_320x240_prog.jpg --Q 85 --strip --interlace

# ---------------------------------------------------------------- alpha PNG
vips crop "$T/photo_srgb.v" "$T/c48.v" 100 100 48 32
vips xyz "$T/axy.v" 48 32
vips extract_band "$T/axy.v" "$T/ax.v" 0
vips linear "$T/ax.v" "$T/af.v" 5.426 0          # 0 .. 255 across 48 columns
vips cast "$T/af.v" "$T/a.v" uchar
vips bandjoin "$T/c48.v $T/a.v" "$T/rgba.v"
vips copy "$T/rgba.v" "$T/rgba_srgb.v" --interpretation srgb
vips pngsave "$T/rgba_srgb.v" alpha_48x32.png --strip --compression 9
vips crop "$T/rgba_srgb.v" "$T/rgba32.v" 0 0 32 24
vips pngsave "$T/rgba32.v" palette_32x24.png --palette --strip      # PLTE + tRNS

# ---------------------------------------------------------------- GIF: 3 frames of 40x30
vips crop "$T/photo_srgb.v" "$T/f1.v" 10 20 40 30
vips crop "$T/photo_srgb.v" "$T/f2.v" 100 20 40 30
vips crop "$T/photo_srgb.v" "$T/f3.v" 200 120 40 30
vips join "$T/f1.v" "$T/f2.v" "$T/f12.v" vertical
vips join "$T/f12.v" "$T/f3.v" "$T/f123.v" vertical
vips copy "$T/f123.v" "$T/frames.v" --interpretation srgb
vips gifsave "$T/frames.v" anim_40x30.gif --page-height 30 --strip

# ---------------------------------------------------------------- less common encodings
vips crop "$T/photo_srgb.v" "$T/c32.v" 0 0 32 24
vips colourspace "$T/c32.v" "$T/cmyk.v" cmyk
vips jpegsave "$T/cmyk.v" cmyk_32x24.jpg --strip                     # 4-component CMYK JPEG
vips colourspace "$T/c32.v" "$T/grey.v" b-w
vips jpegsave "$T/grey.v" grey_32x24.jpg --strip                     # 1-component JPEG
vips cast "$T/c32.v" "$T/c16.v" ushort --shift
vips copy "$T/c16.v" "$T/c16s.v" --interpretation rgb16
vips pngsave "$T/c16s.v" deep16_32x24.png --bitdepth 16 --strip      # 16-bit RGB PNG
vips pngsave "$T/c32.v" interlaced_32x24.png --interlace --strip     # Adam7 PNG

# ---------------------------------------------------------------- TIFF
vips crop "$T/photo_srgb.v" "$T/c24.v" 200 50 24 18
vips tiffsave "$T/c24.v" le_24x18.tif --compression none --strip
vips black "$T/k.v" 200 170 --bands 3
vips linear "$T/k.v" "$T/flatf.v" "1 1 1" "200 120 40"
vips cast "$T/flatf.v" "$T/flat.v" uchar
vips copy "$T/flat.v" "$T/flat_srgb.v" --interpretation srgb
vips tiffsave "$T/flat_srgb.v" flat_200x170.tif --compression none --strip

# ---------------------------------------------------------------- small PNGs
vips black "$T/p1.v" 1 1 --bands 3
vips linear "$T/p1.v" "$T/p1f.v" "1 1 1" "10 200 30"
vips cast "$T/p1f.v" "$T/p1u.v" uchar
vips copy "$T/p1u.v" "$T/p1s.v" --interpretation srgb
vips pngsave "$T/p1s.v" one_1x1.png --strip
vips xyz "$T/wxy.v" 4000 2
vips extract_band "$T/wxy.v" "$T/wx.v" 0
vips linear "$T/wx.v" "$T/wxf.v" 0.06375 0      # 0 .. 255 across 4000 columns
vips cast "$T/wxf.v" "$T/wide.v" uchar
vips pngsave "$T/wide.v" wide_4000x2.png --strip --compression 9
vips crop "$T/photo_srgb.v" "$T/s40.v" 0 0 40 40
vips pngsave "$T/s40.v" sq_40x40.png --strip
vips crop "$T/photo_srgb.v" "$T/s20.v" 0 0 20 20
vips pngsave "$T/s20.v" sq_20x20.png --strip

# ---------------------------------------------------------------- EXIF base: 40x20 quadrants
quad() { # name r g b
    vips black "$T/$1_k.v" 20 10 --bands 3
    vips linear "$T/$1_k.v" "$T/$1_f.v" "1 1 1" "$2 $3 $4"
    vips cast "$T/$1_f.v" "$T/$1.v" uchar
}
quad tl 255 0 0
quad tr 0 255 0
quad bl 0 0 255
quad br 255 255 255
vips join "$T/tl.v" "$T/tr.v" "$T/top.v" horizontal
vips join "$T/bl.v" "$T/br.v" "$T/bot.v" horizontal
vips join "$T/top.v" "$T/bot.v" "$T/quad.v" vertical
vips copy "$T/quad.v" "$T/quad_srgb.v" --interpretation srgb
vips jpegsave "$T/quad_srgb.v" "$T/quad.jpg" --Q 95 --strip --subsample-mode off

# ---------------------------------------------------------------- byte-level files
python3 - "$T" <<'PY'
import struct, sys, zlib
from pathlib import Path

T = Path(sys.argv[1])


def chunk(ctype, payload):
    return (struct.pack(">I", len(payload)) + ctype + payload
            + struct.pack(">I", zlib.crc32(ctype + payload) & 0xFFFFFFFF))


def png_chunks(b):
    assert b[:8] == b"\x89PNG\r\n\x1a\n"
    i, out = 8, []
    while i < len(b):
        n = struct.unpack(">I", b[i:i + 4])[0]
        out.append((b[i + 4:i + 8], b[i + 8:i + 8 + n]))
        i += 12 + n
    return out


# -- EXIF orientation JPEGs: drop JFIF APP0, put an Exif APP1 right after SOI
def exif_app1(orientation, big_endian):
    e = ">" if big_endian else "<"
    tiff = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    tiff += struct.pack(e + "H", 1)                                   # one entry
    tiff += struct.pack(e + "HHIHH", 0x0112, 3, 1, orientation, 0)    # Orientation SHORT
    tiff += struct.pack(e + "I", 0)                                   # no next IFD
    payload = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


base = (T / "quad.jpg").read_bytes()
assert base[:2] == b"\xff\xd8"
rest = base[2:]
if rest[:2] == b"\xff\xe0":                      # JFIF APP0
    n = struct.unpack(">H", rest[2:4])[0]
    rest = rest[2 + n:]
for o in range(1, 9):
    Path(f"exif_{o}.jpg").write_bytes(b"\xff\xd8" + exif_app1(o, big_endian=(o % 2 == 0)) + rest)

# -- truncated JPEG
photo = Path("photo_320x240.jpg").read_bytes()
Path("truncated.jpg").write_bytes(photo[:len(photo) // 2])

# -- corrupt PNGs
png = Path("alpha_48x32.png").read_bytes()
chunks = png_chunks(png)
assert [c for c, _ in chunks].count(b"IDAT") >= 1
out_crc, out_data = [b"\x89PNG\r\n\x1a\n"], [b"\x89PNG\r\n\x1a\n"]
for ctype, payload in chunks:
    c = chunk(ctype, payload)
    if ctype == b"IDAT":
        bad = c[:-4] + bytes(x ^ 0xFF for x in c[-4:])          # CRC flipped
        out_crc.append(bad)
        # zlib header, then a deflate block of the reserved type 11 (invalid), then junk;
        # the same length as the original data, CRC valid
        junk = b"\x78\x9c\xff" + bytes((i * 37 + 11) & 0xFF for i in range(max(0, len(payload) - 3)))
        try:
            zlib.decompress(junk)
            raise SystemExit("corrupt_idat.png: the junk inflates?!")
        except zlib.error:
            pass
        out_data.append(chunk(b"IDAT", junk))
    else:
        out_crc.append(c)
        out_data.append(c)
Path("corrupt_crc.png").write_bytes(b"".join(out_crc))
Path("corrupt_idat.png").write_bytes(b"".join(out_data))

# -- decompression-bomb header: 100000 x 100000 RGB, valid CRCs, tiny IDAT
ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
idat = zlib.compress(b"\0" * 301, 9)                                 # one filter byte + 100 px
Path("bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                             + chunk(b"IEND", b""))

# -- big-endian TIFF: the little-endian one with its byte order flipped
SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 4, 6: 1, 7: 1, 8: 2, 9: 4, 10: 4, 11: 4, 12: 8,
         16: 8, 17: 8, 18: 8}
# element size for swapping (RATIONALs are two LONGs)
ELEMS = {1: 1, 2: 1, 3: 2, 4: 4, 5: 4, 6: 1, 7: 1, 8: 2, 9: 4, 10: 4, 11: 4, 12: 8,
         16: 8, 17: 8, 18: 8}
COUNT_MUL = {5: 2, 10: 2}


def swap_elems(b, size):
    if size == 1:
        return b
    return b"".join(b[i:i + size][::-1] for i in range(0, len(b), size))


le = Path("le_24x18.tif").read_bytes()
assert le[:4] == b"II*\0", le[:4]
be = bytearray(le)
be[0:4] = b"MM\0*"
ifd = struct.unpack("<I", le[4:8])[0]
be[4:8] = struct.pack(">I", ifd)
while ifd:
    n = struct.unpack("<H", le[ifd:ifd + 2])[0]
    be[ifd:ifd + 2] = struct.pack(">H", n)
    for k in range(n):
        p = ifd + 2 + 12 * k
        tag, typ, count = struct.unpack("<HHI", le[p:p + 8])
        if tag == 259:   # Compression: pixel bytes are copied as they are, so none
            assert struct.unpack("<H", le[p + 8:p + 10])[0] == 1
        be[p:p + 8] = struct.pack(">HHI", tag, typ, count)
        size = ELEMS[typ]
        nbytes = SIZES[typ] * count * COUNT_MUL.get(typ, 1)
        if nbytes <= 4:
            be[p + 8:p + 8 + nbytes] = swap_elems(le[p + 8:p + 8 + nbytes], size)
        else:
            off = struct.unpack("<I", le[p + 8:p + 12])[0]
            be[p + 8:p + 12] = struct.pack(">I", off)
            be[off:off + nbytes] = swap_elems(le[off:off + nbytes], size)
    q = ifd + 2 + 12 * n
    ifd = struct.unpack("<I", le[q:q + 4])[0]
    be[q:q + 4] = struct.pack(">I", ifd)
Path("be_24x18.tif").write_bytes(bytes(be))
PY

# ---------------------------------------------------------------- checks
fail() { echo "make.sh: $*" >&2; exit 1; }
hdr() { vipsheader "$1" | sed 's/^[^:]*: //'; }
for f in photo_320x240.jpg photo_320x240_prog.jpg alpha_48x32.png anim_40x30.gif le_24x18.tif \
         be_24x18.tif flat_200x170.tif one_1x1.png wide_4000x2.png sq_40x40.png sq_20x20.png \
         exif_{1..8}.jpg cmyk_32x24.jpg grey_32x24.jpg deep16_32x24.png interlaced_32x24.png \
         palette_32x24.png; do
    vips copy "$f[fail=true]" "$T/check.v" >/dev/null 2>&1 || fail "$f does not decode"
    printf '%-24s %7d bytes  %s\n' "$f" "$(stat -c %s "$f")" "$(hdr "$f")"
done
[ "$(head -c 4 le_24x18.tif | od -An -c | tr -d ' ')" = 'II*\0' ] || fail "le_24x18.tif is not II*"
[ "$(head -c 4 be_24x18.tif | od -An -tx1 | tr -d ' ')" = '4d4d002a' ] || fail "be_24x18.tif is not MM*"
# the two TIFFs hold the same pixels
vips subtract le_24x18.tif be_24x18.tif "$T/d.v"
vips abs "$T/d.v" "$T/ad.v"
[ "$(vips max "$T/ad.v" | cut -d. -f1)" = 0 ] || fail "le/be TIFF pixels differ"
for o in 1 2 3 4 5 6 7 8; do
    [ "$(vipsheader -f orientation exif_$o.jpg)" = "$o" ] || fail "exif_$o.jpg orientation"
    vips autorot exif_$o.jpg "$T/rot.v"
    want=40x20; [ "$o" -ge 5 ] && want=20x40
    got="$(vipsheader -f width "$T/rot.v")x$(vipsheader -f height "$T/rot.v")"
    [ "$got" = "$want" ] || fail "exif_$o.jpg autorotates to $got, want $want"
done
for f in truncated.jpg corrupt_idat.png corrupt_crc.png; do
    if vips copy "$f[fail=true]" "$T/check.v" >/dev/null 2>&1; then
        echo "note: $f decodes with vips fail=true" >&2
    else
        printf '%-24s %7d bytes  (refused by vips fail=true, as intended)\n' "$f" "$(stat -c %s "$f")"
    fi
done
printf '%-24s %7d bytes  header says %s\n' bomb.png "$(stat -c %s bomb.png)" \
    "$(vipsheader -f width bomb.png)x$(vipsheader -f height bomb.png)"
du -cb -- *.jpg *.png *.gif *.tif | tail -1
