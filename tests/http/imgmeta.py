"""Image metadata without an imaging library: the format from the magic bytes,
width and height from the headers (PNG IHDR, GIF logical screen, JPEG SOFn,
TIFF IFD0, WebP VP8/VP8L/VP8X), the EXIF orientation of a JPEG, and the
pixels of a PNG (8/16-bit, any colour type, non-interlaced) for checks of
what a picture shows.

Standard library only.
"""
import struct
import zlib

PNG_SIG = b"\x89PNG\r\n\x1a\n"

MIME = {
    "png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "tiff": "image/tiff",
    "webp": "image/webp", "avif": "image/avif",
}


class ImageFormatError(ValueError):
    pass


def kind(b):
    """'png', 'jpeg', 'gif', 'tiff', 'webp', 'avif' or None, from the magic bytes."""
    if b.startswith(PNG_SIG):
        return "png"
    if b.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if b.startswith(b"GIF87a") or b.startswith(b"GIF89a"):
        return "gif"
    if b.startswith(b"II*\x00") or b.startswith(b"MM\x00*"):
        return "tiff"
    if len(b) >= 12 and b[:4] == b"RIFF" and b[8:12] == b"WEBP":
        return "webp"
    if len(b) >= 12 and b[4:8] == b"ftyp" and b[8:12] in (b"avif", b"avis"):
        return "avif"
    return None


def mime(b):
    k = kind(b)
    return MIME.get(k) if k else None


# --------------------------------------------------------------------------
# dimensions


def png_dims(b):
    if not b.startswith(PNG_SIG) or b[12:16] != b"IHDR" or len(b) < 24:
        raise ImageFormatError(f"not a PNG with IHDR: {b[:24]!r}")
    return struct.unpack(">II", b[16:24])


def gif_dims(b):
    if kind(b) != "gif" or len(b) < 10:
        raise ImageFormatError(f"not a GIF: {b[:10]!r}")
    return struct.unpack("<HH", b[6:10])


# SOF markers: C0..CF except C4 (DHT), C8 (JPG), CC (DAC)
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_segments(b):
    """Yields (marker, payload) for the header segments up to SOS."""
    if not b.startswith(b"\xff\xd8"):
        raise ImageFormatError(f"not a JPEG: {b[:4]!r}")
    i = 2
    while i < len(b):
        if b[i] != 0xFF:
            raise ImageFormatError(f"JPEG: expected a marker at {i}, got {b[i]:#x}")
        while i < len(b) and b[i] == 0xFF:   # fill bytes
            i += 1
        if i >= len(b):
            break
        m = b[i]
        i += 1
        if m == 0xD8 or m == 0x01 or 0xD0 <= m <= 0xD7:   # no length
            continue
        if m == 0xD9:
            return
        if i + 2 > len(b):
            raise ImageFormatError("JPEG: truncated segment length")
        n = struct.unpack(">H", b[i:i + 2])[0]
        payload = b[i + 2:i + n]
        yield m, payload
        if m == 0xDA:   # start of scan: entropy-coded data follows
            return
        i += n


def jpeg_sof(b):
    """(marker, width, height, components) of the first SOFn."""
    for m, p in jpeg_segments(b):
        if m in _SOF:
            if len(p) < 6:
                raise ImageFormatError("JPEG: short SOF")
            _prec, h, w, nc = struct.unpack(">BHHB", p[:6])
            return m, w, h, nc
    raise ImageFormatError("JPEG: no SOF marker before SOS")


def jpeg_dims(b):
    _, w, h, _ = jpeg_sof(b)
    return w, h


def _tiff_ifd_entries(t, off):
    """Entries of the IFD at off of the TIFF bytes t: {tag: (type, count, values)}."""
    if t[:2] == b"II":
        e = "<"
    elif t[:2] == b"MM":
        e = ">"
    else:
        raise ImageFormatError(f"not a TIFF byte order: {t[:4]!r}")
    n = struct.unpack(e + "H", t[off:off + 2])[0]
    out = {}
    sizes = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 16: 8}
    for k in range(n):
        p = off + 2 + 12 * k
        tag, typ, count = struct.unpack(e + "HHI", t[p:p + 8])
        size = sizes.get(typ, 1) * count
        raw = t[p + 8:p + 8 + size] if size <= 4 else (
            t[struct.unpack(e + "I", t[p + 8:p + 12])[0]:][:size])
        if typ == 3:
            vals = list(struct.unpack(e + "%dH" % count, raw[:2 * count]))
        elif typ == 4:
            vals = list(struct.unpack(e + "%dI" % count, raw[:4 * count]))
        elif typ == 16:
            vals = list(struct.unpack(e + "%dQ" % count, raw[:8 * count]))
        else:
            vals = raw
        out[tag] = (typ, count, vals)
    return out, e


def tiff_tags(b):
    """IFD0 of a TIFF: {tag: (type, count, values)}."""
    if kind(b) != "tiff":
        raise ImageFormatError(f"not a TIFF: {b[:4]!r}")
    e = "<" if b[:2] == b"II" else ">"
    off = struct.unpack(e + "I", b[4:8])[0]
    entries, _ = _tiff_ifd_entries(b, off)
    return entries


def tiff_dims(b):
    tags = tiff_tags(b)
    try:
        return tags[256][2][0], tags[257][2][0]
    except KeyError:
        raise ImageFormatError("TIFF: no ImageWidth/ImageLength in IFD0")


def webp_dims(b):
    if kind(b) != "webp" or len(b) < 30:
        raise ImageFormatError(f"not a WebP: {b[:16]!r}")
    fourcc = b[12:16]
    if fourcc == b"VP8X":
        w = 1 + int.from_bytes(b[24:27], "little")
        h = 1 + int.from_bytes(b[27:30], "little")
        return w, h
    if fourcc == b"VP8 ":
        # chunk payload at 20: 3-byte frame tag, start code 9d 01 2a, 14-bit w/h
        if b[23:26] != b"\x9d\x01\x2a":
            raise ImageFormatError(f"VP8: bad start code {b[23:26]!r}")
        w, h = struct.unpack("<HH", b[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if fourcc == b"VP8L":
        if b[20] != 0x2F:
            raise ImageFormatError(f"VP8L: bad signature {b[20]:#x}")
        bits = int.from_bytes(b[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    raise ImageFormatError(f"WebP: unknown first chunk {fourcc!r}")


def dims(b):
    """(width, height) as stored in the file (before any EXIF orientation)."""
    k = kind(b)
    fn = {"png": png_dims, "gif": gif_dims, "jpeg": jpeg_dims, "tiff": tiff_dims,
          "webp": webp_dims}.get(k)
    if fn is None:
        raise ImageFormatError(f"unknown image format: {b[:16]!r}")
    return tuple(fn(b))


# --------------------------------------------------------------------------
# EXIF


def jpeg_orientation(b):
    """The EXIF Orientation (1..8) of a JPEG, or None when it has none."""
    for m, p in jpeg_segments(b):
        if m == 0xE1 and p.startswith(b"Exif\0\0"):
            t = p[6:]
            if t[:2] not in (b"II", b"MM"):
                return None
            e = "<" if t[:2] == b"II" else ">"
            off = struct.unpack(e + "I", t[4:8])[0]
            entries, _ = _tiff_ifd_entries(t, off)
            if 0x0112 in entries:
                return entries[0x0112][2][0]
            return None
    return None


def display_dims(b):
    """(width, height) as a viewer shows the picture: EXIF orientation 5..8 swaps them."""
    w, h = dims(b)
    if kind(b) == "jpeg" and (jpeg_orientation(b) or 1) >= 5:
        return h, w
    return w, h


def oriented(x, y, w, h, orientation):
    """The stored pixel (sx, sy) a viewer shows at (x, y) of the displayed picture,
    for a stored picture of w x h with EXIF `orientation`."""
    o = orientation
    if o == 1:
        return x, y
    if o == 2:
        return w - 1 - x, y
    if o == 3:
        return w - 1 - x, h - 1 - y
    if o == 4:
        return x, h - 1 - y
    if o == 5:
        return y, x
    if o == 6:
        return y, h - 1 - x
    if o == 7:
        return w - 1 - y, h - 1 - x
    if o == 8:
        return w - 1 - y, x
    raise ValueError(o)


# --------------------------------------------------------------------------
# PNG pixels


def png_chunks(b):
    if not b.startswith(PNG_SIG):
        raise ImageFormatError("not a PNG")
    i, out = 8, []
    while i + 8 <= len(b):
        n = struct.unpack(">I", b[i:i + 4])[0]
        ctype = b[i + 4:i + 8]
        payload = b[i + 8:i + 8 + n]
        crc = struct.unpack(">I", b[i + 8 + n:i + 12 + n])[0]
        if zlib.crc32(ctype + payload) & 0xFFFFFFFF != crc:
            raise ImageFormatError(f"PNG: bad CRC on {ctype!r}")
        out.append((ctype, payload))
        i += 12 + n
        if ctype == b"IEND":
            break
    return out


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


class PngImage:
    """Decoded PNG: .width, .height, .pixel(x, y) -> (r, g, b, a) as 0..255."""

    def __init__(self, b):
        chunks = png_chunks(b)
        ihdr = chunks[0][1]
        (self.width, self.height, self.depth, self.ctype, _cm, _fm,
         self.interlace) = struct.unpack(">IIBBBBB", ihdr)
        if self.interlace:
            raise ImageFormatError("interlaced PNG not supported here")
        self.palette = None
        self.trns = None
        idat = b""
        for ctype, payload in chunks:
            if ctype == b"PLTE":
                self.palette = [tuple(payload[i:i + 3]) for i in range(0, len(payload), 3)]
            elif ctype == b"tRNS":
                self.trns = payload
            elif ctype == b"IDAT":
                idat += payload
        raw = zlib.decompress(idat)
        channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[self.ctype]
        self.channels = channels
        bits = channels * self.depth
        stride = (self.width * bits + 7) // 8
        bpp = max(1, bits // 8)
        rows = []
        prev = bytearray(stride)
        pos = 0
        for _ in range(self.height):
            f = raw[pos]
            line = bytearray(raw[pos + 1:pos + 1 + stride])
            pos += 1 + stride
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                up = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                if f == 1:
                    line[i] = (line[i] + a) & 0xFF
                elif f == 2:
                    line[i] = (line[i] + up) & 0xFF
                elif f == 3:
                    line[i] = (line[i] + ((a + up) >> 1)) & 0xFF
                elif f == 4:
                    line[i] = (line[i] + _paeth(a, up, c)) & 0xFF
                elif f != 0:
                    raise ImageFormatError(f"PNG: filter type {f}")
            rows.append(bytes(line))
            prev = line
        self.rows = rows

    def _samples(self, x, y):
        row = self.rows[y]
        n = self.channels
        if self.depth == 8:
            return list(row[x * n:(x + 1) * n])
        if self.depth == 16:
            return [row[2 * (x * n + k)] for k in range(n)]   # high byte
        # 1, 2, 4 bits: one sample per pixel (grey or palette)
        per = 8 // self.depth
        byte = row[x // per]
        shift = 8 - self.depth * (x % per + 1)
        v = (byte >> shift) & ((1 << self.depth) - 1)
        if self.ctype == 3:
            return [v]
        return [v * 255 // ((1 << self.depth) - 1)]

    def pixel(self, x, y):
        s = self._samples(x, y)
        if self.ctype == 0:
            return (s[0], s[0], s[0], 255)
        if self.ctype == 2:
            return (s[0], s[1], s[2], 255)
        if self.ctype == 3:
            r, g, bl = self.palette[s[0]]
            a = self.trns[s[0]] if self.trns is not None and s[0] < len(self.trns) else 255
            return (r, g, bl, a)
        if self.ctype == 4:
            return (s[0], s[0], s[0], s[1])
        return tuple(s)


def png_pixels(b):
    return PngImage(b)


def nearest(rgb, palette):
    """The name of the colour in palette {name: (r, g, b)} nearest to rgb."""
    return min(palette, key=lambda k: sum((p - q) ** 2 for p, q in zip(rgb[:3], palette[k])))
