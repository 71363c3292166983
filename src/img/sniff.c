/*
 * sniff.c — image format recognition by magic bytes (see sniff.h).
 *
 * One table row per accepted signature. A type is reported only when the
 * whole signature is present and matches byte for byte, so a short or
 * near-miss prefix is always IMG_UNKNOWN. Invariant: no signature is longer
 * than IMG_SNIFF_BYTES, which is what makes that many bytes sufficient.
 */
#include "img/sniff.h"

#include "img/img.h"

#include <assert.h>
#include <string.h>

struct signature {
    img_type type;
    size_t len;
    const char *magic;
};

static const struct signature signatures[] = {
    {IMG_PNG, 8, "\x89PNG\r\n\x1a\n"},
    {IMG_JPEG, 3, "\xff\xd8\xff"},
    {IMG_GIF, 6, "GIF87a"},
    {IMG_GIF, 6, "GIF89a"},
    {IMG_TIFF, 4, "II\x2a\x00"}, /* little-endian */
    {IMG_TIFF, 4, "MM\x00\x2a"}, /* big-endian */
};

img_type img_sniff(const void *p, size_t n)
{
    assert(p != NULL || n == 0);
    for (size_t i = 0; i < sizeof(signatures) / sizeof(signatures[0]); i++) {
        const struct signature *s = &signatures[i];
        assert(s->len <= IMG_SNIFF_BYTES);
        if (n >= s->len && memcmp(p, s->magic, s->len) == 0)
            return s->type;
    }
    return IMG_UNKNOWN;
}

const char *img_mime(img_type t)
{
    switch (t) {
    case IMG_PNG:
        return "image/png";
    case IMG_JPEG:
        return "image/jpeg";
    case IMG_GIF:
        return "image/gif";
    case IMG_TIFF:
        return "image/tiff";
    case IMG_UNKNOWN:
        break;
    }
    return NULL;
}

const char *img_mime_any(img_type t)
{
    if (t == IMG_WEBP)
        return "image/webp";
    if (t == IMG_AVIF)
        return "image/avif";
    return img_mime(t);
}
