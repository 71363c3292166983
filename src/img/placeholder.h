/*
 * placeholder.h — built-in pictures served by GET Image?ifBlank=... when an
 * entity has no image (SPEC §2).
 */
#ifndef CB_IMG_PLACEHOLDER_H
#define CB_IMG_PLACEHOLDER_H

#include <stdbool.h>
#include <stddef.h>

/* In the order of the reference's numbering (0..5). */
typedef enum {
    IMG_BLANK_DEFAULT,
    IMG_BLANK_NULL,
    IMG_BLANK_CLEAR_PIXEL,
    IMG_BLANK_SR_NO_PHOTO,
    IMG_BLANK_SR_NO_PHOTO_WITH_BORDER,
    IMG_BLANK_GENERIC_FILE_ICON,
    IMG_BLANK__COUNT
} img_blank;

/* A name (any case) or number 0..5; false when neither. */
bool img_blank_parse(const char *s, img_blank *out);
/* The picture for a blank kind, or false when that kind answers 404
 * (Default, Null, and the kinds whose pictures are not built in yet). */
bool img_placeholder(img_blank kind, const unsigned char **bytes, size_t *len,
                     const char **mime);

#endif
