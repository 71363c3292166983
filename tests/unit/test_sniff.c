/*
 * test_sniff.c — unit tests of image format recognition by magic bytes.
 *
 * Each accepted signature is recognised with and without trailing data; any
 * shorter prefix, and every near miss, is IMG_UNKNOWN.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "img/sniff.h"

struct sample {
    const char *bytes;
    size_t len; /* signature length */
    img_type type;
    const char *mime;
};

static const struct sample samples[] = {
    {"\x89PNG\r\n\x1a\n", 8, IMG_PNG, "image/png"},
    {"\xff\xd8\xff", 3, IMG_JPEG, "image/jpeg"},
    {"GIF87a", 6, IMG_GIF, "image/gif"},
    {"GIF89a", 6, IMG_GIF, "image/gif"},
    {"II\x2a\x00", 4, IMG_TIFF, "image/tiff"},
    {"MM\x00\x2a", 4, IMG_TIFF, "image/tiff"},
};

#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

static void test_each_format(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSAMPLES; i++) {
        const struct sample *s = &samples[i];
        unsigned char data[64];
        memset(data, 0xAB, sizeof(data));
        memcpy(data, s->bytes, s->len);
        assert_int_equal(img_sniff(s->bytes, s->len), s->type);
        assert_int_equal(img_sniff(data, IMG_SNIFF_BYTES), s->type);
        assert_int_equal(img_sniff(data, sizeof(data)), s->type);
        assert_string_equal(img_mime(s->type), s->mime);
        assert_true(s->len <= IMG_SNIFF_BYTES);
    }
}

static void test_real_headers(void **state)
{
    (void)state;
    static const unsigned char jfif[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F'};
    static const unsigned char exif[] = {0xFF, 0xD8, 0xFF, 0xE1, 0x12, 0x34, 'E', 'x', 'i', 'f'};
    static const unsigned char tiff_le[] = {'I', 'I', 42, 0, 8, 0, 0, 0};
    static const unsigned char tiff_be[] = {'M', 'M', 0, 42, 0, 0, 0, 8};
    assert_int_equal(img_sniff(jfif, sizeof(jfif)), IMG_JPEG);
    assert_int_equal(img_sniff(exif, sizeof(exif)), IMG_JPEG);
    assert_int_equal(img_sniff(tiff_le, sizeof(tiff_le)), IMG_TIFF);
    assert_int_equal(img_sniff(tiff_be, sizeof(tiff_be)), IMG_TIFF);
}

/* Every proper prefix of a signature is inconclusive. */
static void test_short_inputs(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSAMPLES; i++)
        for (size_t n = 0; n < samples[i].len; n++)
            assert_int_equal(img_sniff(samples[i].bytes, n), IMG_UNKNOWN);
    assert_int_equal(img_sniff(NULL, 0), IMG_UNKNOWN);
    assert_int_equal(img_sniff("", 0), IMG_UNKNOWN);
}

/* Flipping any single byte of a signature makes it unknown. */
static void test_every_byte_matters(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSAMPLES; i++) {
        for (size_t k = 0; k < samples[i].len; k++) {
            unsigned char data[IMG_SNIFF_BYTES];
            memset(data, 0, sizeof(data));
            memcpy(data, samples[i].bytes, samples[i].len);
            data[k] ^= 0x01;
            assert_int_equal(img_sniff(data, sizeof(data)), IMG_UNKNOWN);
        }
    }
}

static void test_near_misses(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
    } misses[] = {
        {"GIF88a", 6},
        {"GIF89b", 6},
        {"gif89a", 6},
        {"GIF8", 4},
        {"II*\x01", 4},
        {"II\x00*", 4},
        {"MM*\x00", 4},
        {"IM*\x00", 4},
        {"\xff\xd8\x00", 3},
        {"\xff\xd9\xff", 3},
        {"\x89PNG\r\n\x1a\x00", 8},
        {"\x89PNG\n\r\x1a\n", 8},
        {"\x89png\r\n\x1a\n", 8},
        {"BM6\x00\x00\x00\x00\x00", 8},       /* BMP */
        {"RIFF\x10\x00\x00\x00WEBPVP8 ", 16}, /* WebP */
        {"\x00\x00\x00\x0c"
         "jP  \r\n\x87\n",
         12},                                              /* JPEG 2000 */
        {"<svg xmlns=\"http://www.w3.org/2000/svg\"", 39}, /* SVG */
        {"%PDF-1.7", 8},
        {"\x00\x00\x01\x00", 4}, /* ICO */
    };
    for (size_t i = 0; i < sizeof(misses) / sizeof(misses[0]); i++)
        assert_int_equal(img_sniff(misses[i].bytes, misses[i].len), IMG_UNKNOWN);
}

static void test_mime_unknown(void **state)
{
    (void)state;
    assert_null(img_mime(IMG_UNKNOWN));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_format),  cmocka_unit_test(test_real_headers),
        cmocka_unit_test(test_short_inputs), cmocka_unit_test(test_every_byte_matters),
        cmocka_unit_test(test_near_misses),  cmocka_unit_test(test_mime_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
