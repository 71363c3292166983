/*
 * sniff.h — recognise an image format from its first bytes.
 *
 * The bytes decide the type, never a client's Content-Type (SPEC §2, §8).
 * Only the four formats crmblob accepts are recognised; anything else is
 * IMG_UNKNOWN. IMG_SNIFF_BYTES leading bytes always suffice.
 */
#ifndef CB_IMG_SNIFF_H
#define CB_IMG_SNIFF_H

#include <stddef.h>

#define IMG_SNIFF_BYTES 8

typedef enum { IMG_UNKNOWN, IMG_PNG, IMG_JPEG, IMG_GIF, IMG_TIFF } img_type;

/* Looks at p[0..n); n may be shorter than IMG_SNIFF_BYTES (then IMG_UNKNOWN
 * unless the prefix is already conclusive). */
img_type img_sniff(const void *p, size_t n);
/* "image/png", ...; NULL for IMG_UNKNOWN. */
const char *img_mime(img_type t);

#endif
