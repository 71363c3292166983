"""Pictures that cost a decoder far more work than their size suggests, built
by hand so that no large file is committed (issue 17, defects 1 and 4).

- jpeg_scan_bomb(w, h, repeats): a progressive grey JPEG, w x h, all one
  grey, whose AC scan is repeated `repeats` more times before the EOI.
  Every repeat is a legal refinement-free AC first scan of the same band
  (libjpeg does not even warn), costing one pass over every block of the
  picture, yet takes about 40 bytes: the blocks are all-zero runs.
- tiff_pages(n, side): a TIFF of n pages, each a side x side grey image.

Standard library only.
"""
import struct

# ---------------------------------------------------------------- JPEG


class _Bits:
    """An entropy-coded segment: bits MSB first, padded with 1s, 0xFF stuffed."""

    def __init__(self):
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value, length):
        self.acc = (self.acc << length) | (value & ((1 << length) - 1))
        self.n += length
        while self.n >= 8:
            self.n -= 8
            byte = (self.acc >> self.n) & 0xFF
            self.out.append(byte)
            if byte == 0xFF:
                self.out.append(0)
        self.acc &= (1 << self.n) - 1

    def zeros(self, count):
        """count 0 bits, quickly (a DC scan of all-zero differences)."""
        while self.n and count:
            self.put(0, 1)
            count -= 1
        self.out += bytes(count // 8)
        for _ in range(count % 8):
            self.put(0, 1)

    def done(self):
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)
        return bytes(self.out)


def _segment(marker, payload):
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _dht(cls, ident, symbols):
    """A table giving each symbol a code of length 2 (at most 3 symbols, so
    that no code is all ones)."""
    assert 1 <= len(symbols) <= 3
    counts = bytes([0, len(symbols)] + [0] * 14)
    return _segment(0xC4, bytes([(cls << 4) | ident]) + counts + bytes(symbols))


def _eob_runs(blocks):
    """The EOB-run symbols (r, extra) that cover `blocks` all-zero blocks."""
    runs = []
    while blocks:
        n = min(blocks, 32767)
        r = n.bit_length() - 1
        runs.append((r, n - (1 << r)))
        blocks -= n
    return runs


def _sos(ss, se):
    return _segment(0xDA, bytes([1, 1, 0x00, ss, se, 0x00]))


def jpeg_scan_bomb(w, h, repeats):
    """A progressive w x h grey JPEG with 2 + repeats scans (see above)."""
    blocks = ((w + 7) // 8) * ((h + 7) // 8)
    runs = _eob_runs(blocks)
    ac_symbols = sorted({r << 4 for r, _ in runs})
    head = (b"\xff\xd8"
            + _segment(0xDB, bytes([0]) + bytes([1] * 64))
            + _segment(0xC2, struct.pack(">BHHB", 8, h, w, 1) + bytes([1, 0x11, 0]))
            + _dht(0, 0, [0])  # DC: category 0 only (no difference)
            + _dht(1, 0, ac_symbols))
    dc = _Bits()
    dc.zeros(blocks)  # the DC table's code for category 0 is 00
    dc.zeros(blocks)
    ac = _Bits()
    for r, extra in runs:
        ac.put(ac_symbols.index(r << 4), 2)
        if r:
            ac.put(extra, r)
    ac_scan = _sos(1, 63) + ac.done()
    return head + _sos(0, 0) + dc.done() + ac_scan * (1 + repeats) + b"\xff\xd9"


# ---------------------------------------------------------------- TIFF


def tiff_pages(n, side=8):
    """A little-endian TIFF of n uncompressed 8-bit grey pages of side x side."""
    entries = 9
    ifd_size = 2 + 12 * entries + 4
    pixels = side * side
    out = bytearray(b"II*\x00" + struct.pack("<I", 8))
    for i in range(n):
        at = len(out)
        data_at = at + ifd_size
        nxt = data_at + pixels if i + 1 < n else 0
        tags = [(256, 3, side), (257, 3, side), (258, 3, 8), (259, 3, 1), (262, 3, 1),
                (273, 4, data_at), (277, 3, 1), (278, 3, side), (279, 4, pixels)]
        assert len(tags) == entries
        out += struct.pack("<H", entries)
        for tag, typ, value in tags:
            packed = struct.pack("<HI", value, 0)[:4] if typ == 3 else struct.pack("<I", value)
            out += struct.pack("<HHI", tag, typ, 1) + packed
        out += struct.pack("<I", nxt)
        out += bytes([(i * 37) & 0xFF]) * pixels
    return bytes(out)
