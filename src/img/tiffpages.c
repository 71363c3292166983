/*
 * tiffpages.c — the IFD chain walk of tiffpages.h.
 *
 * Invariants: every read is bounds-checked against len before it is made
 * (offsets are 32-bit, compared as size_t); at most stop_after + 1 IFDs are
 * visited, and each is compared with those before it to end a loop.
 */
#include "img/tiffpages.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#define IFD_ENTRY 12 /* tag, type, count, value or offset */

struct tiff {
    const unsigned char *b;
    size_t len;
    bool big_endian;
};

static uint32_t rd16(const struct tiff *t, size_t at)
{
    const unsigned char *p = t->b + at;
    return t->big_endian ? (uint32_t)p[0] << 8 | p[1] : (uint32_t)p[1] << 8 | p[0];
}

static uint32_t rd32(const struct tiff *t, size_t at)
{
    uint32_t hi = rd16(t, t->big_endian ? at : at + 2), lo = rd16(t, t->big_endian ? at + 2 : at);
    return hi << 16 | lo;
}

/* Where the next-IFD offset of the IFD at off is, or 0 when that IFD
 * (entry count, entries, next offset) does not fit in the bytes. */
static size_t ifd_tail(const struct tiff *t, size_t off)
{
    if (off < 8 || off > t->len || t->len - off < 2)
        return 0;
    size_t end = off + 2 + IFD_ENTRY * (size_t)rd16(t, off);
    return end <= t->len && t->len - end >= 4 ? end : 0;
}

static bool seen(const size_t *offs, int n, size_t off)
{
    for (int i = 0; i < n; i++)
        if (offs[i] == off)
            return true;
    return false;
}

int tiffpages_count(const void *bytes, size_t len, int stop_after)
{
    struct tiff t = {bytes, len, false};
    const unsigned char *b = bytes;
    if (len < 8 || stop_after < 0)
        return 0;
    if (b[0] == 'M' && b[1] == 'M')
        t.big_endian = true;
    else if (b[0] != 'I' || b[1] != 'I')
        return 0;
    if (rd16(&t, 2) != 42)
        return 0;
    size_t *offs = malloc(((size_t)stop_after + 1) * sizeof(*offs));
    if (offs == NULL)
        return stop_after + 1; /* cannot tell: judged as too many */
    int n = 0;
    size_t off = rd32(&t, 4), tail;
    while (n <= stop_after && (tail = ifd_tail(&t, off)) != 0 && !seen(offs, n, off)) {
        offs[n++] = off;
        off = rd32(&t, tail);
    }
    free(offs);
    return n;
}
