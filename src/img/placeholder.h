/*
 * placeholder.h — the kinds of GET Image?ifBlank=... (SPEC §2), answered
 * when an entity has no image, and the one picture that is a constant.
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
/* The constant picture of kind: ClearPixel's 1×1 transparent PNG; false
 * for every other kind (Default and Null have no picture; the others are
 * drawn by img_placeholder_render, img.h). */
bool img_placeholder(img_blank kind, const unsigned char **bytes, size_t *len,
                     const char **mime);

#endif
