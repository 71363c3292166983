/*
 * placeholder.c — the ifBlank names and the one constant picture.
 *
 * ClearPixel at its natural size is this file's 1×1 fully transparent RGBA
 * PNG. Every other picture (ClearPixel at another size, SrNoPhoto,
 * SrNoPhotoWithBorder, GenericFileIcon) is drawn by the image pipeline
 * (img_placeholder_render in img_vips.c); Default and Null have none.
 */
#include "img/placeholder.h"

#include <string.h>
#include <strings.h>

#include "core/text.h"

static const char *const blank_names[IMG_BLANK__COUNT] = {
    "Default", "Null", "ClearPixel", "SrNoPhoto", "SrNoPhotoWithBorder", "GenericFileIcon",
};

static const unsigned char clear_pixel_png[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
    0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00,
    0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0b, 0x49, 0x44, 0x41, 0x54, 0x78,
    0xda, 0x63, 0x60, 0x00, 0x02, 0x00, 0x00, 0x05, 0x00, 0x01, 0xe9, 0xfa, 0xdc, 0xd8,
    0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
};

bool img_blank_parse(const char *s, img_blank *out)
{
    int32_t n;
    if (text_parse_i32(s, strlen(s), &n)) {
        if (n < 0 || n >= IMG_BLANK__COUNT)
            return false;
        *out = (img_blank)n;
        return true;
    }
    for (int i = 0; i < IMG_BLANK__COUNT; i++) {
        if (strcasecmp(s, blank_names[i]) == 0) {
            *out = (img_blank)i;
            return true;
        }
    }
    return false;
}

bool img_placeholder(img_blank kind, const unsigned char **bytes, size_t *len, const char **mime)
{
    if (kind != IMG_BLANK_CLEAR_PIXEL)
        return false;
    *bytes = clear_pixel_png;
    *len = sizeof(clear_pixel_png);
    *mime = "image/png";
    return true;
}
