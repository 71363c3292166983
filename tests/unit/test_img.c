/*
 * test_img.c — unit tests of the image pipeline (img.h) on libvips.
 *
 * Every test image is made here, with libvips or byte by byte (a big-endian
 * TIFF, a PNG whose header claims 100000 × 100000, BMP/PPM/SVG samples), so
 * the suite needs no files. Outputs are checked by sniffing their bytes and
 * by decoding them back with libvips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <vips/vips.h>

#include "img/img.h"

#define REASON_CAP 200

/* ---- helpers ---- */

/* A w × h sRGB picture of noise (compresses badly, so cuts hit pixel data). */
static VipsImage *noise_rgb(int w, int h)
{
    VipsImage *g = NULL, *rgb = NULL, *u8 = NULL, *out = NULL;
    double a[3] = {1, 0.5, -1}, b[3] = {0, 64, 255};
    assert_int_equal(vips_gaussnoise(&g, w, h, "mean", 128.0, "sigma", 40.0, NULL), 0);
    assert_int_equal(vips_linear(g, &rgb, a, b, 3, NULL), 0);
    assert_int_equal(vips_cast_uchar(rgb, &u8, NULL), 0);
    assert_int_equal(vips_copy(u8, &out, "interpretation", VIPS_INTERPRETATION_sRGB, NULL), 0);
    g_object_unref(g);
    g_object_unref(rgb);
    g_object_unref(u8);
    return out;
}

/* Encodes with libvips directly (not through the module under test). */
static unsigned char *save_as(VipsImage *img, img_type t, size_t *len)
{
    void *buf = NULL;
    int rc = -1;
    switch (t) {
    case IMG_PNG:
        rc = vips_pngsave_buffer(img, &buf, len, NULL);
        break;
    case IMG_JPEG:
        rc = vips_jpegsave_buffer(img, &buf, len, NULL);
        break;
    case IMG_GIF:
        rc = vips_gifsave_buffer(img, &buf, len, NULL);
        break;
    case IMG_TIFF:
        rc = vips_tiffsave_buffer(img, &buf, len, NULL);
        break;
    default:
        break;
    }
    assert_int_equal(rc, 0);
    return buf;
}

static unsigned char *make(int w, int h, img_type t, size_t *len)
{
    VipsImage *img = noise_rgb(w, h);
    unsigned char *buf = save_as(img, t, len);
    g_object_unref(img);
    return buf;
}

/* Decodes bytes back (PNG/JPEG/GIF/TIFF) and checks the size. */
static VipsImage *decode(const void *p, size_t n, int w, int h)
{
    VipsImage *img = vips_image_new_from_buffer(p, n, "", NULL);
    assert_non_null(img);
    assert_int_equal(img->Xsize, w);
    assert_int_equal(img->Ysize, h);
    return img;
}

static void check_dims(const void *p, size_t n, int w, int h)
{
    g_object_unref(decode(p, n, w, h));
}

static void variant_dims(const void *in, size_t n, int w, int h, int want_w, int want_h)
{
    void *out = NULL;
    size_t len = 0;
    char reason[REASON_CAP] = "";
    assert_int_equal(img_variant(in, n, w, h, IMG_PNG, &out, &len, reason, sizeof(reason)), CB_EOK);
    check_dims(out, len, want_w, want_h);
    free(out);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void put32be(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t crc32_png(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

/* Appends one PNG chunk (length, type, data, CRC over type and data). */
static size_t png_chunk(unsigned char *out, const char *type, const unsigned char *data, uint32_t n)
{
    put32be(out, n);
    memcpy(out + 4, type, 4);
    if (n > 0)
        memcpy(out + 8, data, n);
    put32be(out + 8 + n, crc32_png(out + 4, 4 + (size_t)n));
    return 12 + (size_t)n;
}

/* A PNG whose IHDR claims w × h RGB with a token IDAT: a decompression-bomb
 * header that a decoder would only discover to be short far too late. */
static size_t png_claiming(unsigned char *out, uint32_t w, uint32_t h)
{
    static const unsigned char idat[] = {0x78, 0x9c, 0x63, 0x60, 0x00,
                                         0x00, 0x00, 0x02, 0x00, 0x01};
    unsigned char ihdr[13] = {0};
    put32be(ihdr, w);
    put32be(ihdr + 4, h);
    ihdr[8] = 8; /* bit depth */
    ihdr[9] = 2; /* truecolour */
    memcpy(out, "\x89PNG\r\n\x1a\n", 8);
    size_t n = 8;
    n += png_chunk(out + n, "IHDR", ihdr, sizeof(ihdr));
    n += png_chunk(out + n, "IDAT", idat, sizeof(idat));
    n += png_chunk(out + n, "IEND", NULL, 0);
    return n;
}

static void put16be(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

/* A 4 × 3 8-bit greyscale uncompressed big-endian ("MM") TIFF. */
static size_t tiff_be(unsigned char *out)
{
    static const uint16_t tags[9][3] = {
        /* tag, type (3 SHORT, 4 LONG), value */
        {256, 3, 4}, {257, 3, 3}, {258, 3, 8}, {259, 3, 1},  {262, 3, 1},
        {273, 4, 0}, {277, 3, 1}, {278, 3, 3}, {279, 4, 12},
    };
    const uint32_t data_at = 8 + 2 + 9 * 12 + 4;
    memcpy(out, "MM\x00\x2a", 4);
    put32be(out + 4, 8);
    put16be(out + 8, 9);
    for (int i = 0; i < 9; i++) {
        unsigned char *e = out + 10 + 12 * i;
        uint32_t value = tags[i][0] == 273 ? data_at : tags[i][2];
        put16be(e, tags[i][0]);
        put16be(e + 2, tags[i][1]);
        put32be(e + 4, 1);
        if (tags[i][1] == 3) {
            put16be(e + 8, (uint16_t)value);
            put16be(e + 10, 0);
        } else {
            put32be(e + 8, value);
        }
    }
    put32be(out + 10 + 9 * 12, 0); /* no next IFD */
    for (int i = 0; i < 12; i++)
        out[data_at + i] = (unsigned char)(i * 20);
    return data_at + 12;
}

static void expect_bad(const void *p, size_t n, const char *reason_part)
{
    char reason[REASON_CAP] = "";
    img_info info;
    assert_int_equal(img_validate(p, n, &info, reason, sizeof(reason)), CB_EBADREQ);
    if (strstr(reason, reason_part) == NULL)
        fail_msg("reason \"%s\" lacks \"%s\"", reason, reason_part);
}

/* ---- validation ---- */

static void test_validate_each_format(void **state)
{
    (void)state;
    static const img_type types[] = {IMG_PNG, IMG_JPEG, IMG_GIF, IMG_TIFF};
    for (size_t i = 0; i < 4; i++) {
        size_t len;
        unsigned char *buf = make(33, 21, types[i], &len);
        img_info info = {0};
        char reason[REASON_CAP] = "";
        assert_int_equal(img_validate(buf, len, &info, reason, sizeof(reason)), CB_EOK);
        assert_int_equal(info.type, types[i]);
        assert_int_equal(info.width, 33);
        assert_int_equal(info.height, 21);
        assert_int_equal(info.orientation, 1);
        g_free(buf);
    }
}

static void test_validate_big_endian_tiff(void **state)
{
    (void)state;
    unsigned char tif[256];
    size_t n = tiff_be(tif);
    img_info info = {0};
    assert_int_equal(img_validate(tif, n, &info, NULL, 0), CB_EOK);
    assert_int_equal(info.type, IMG_TIFF);
    assert_int_equal(info.width, 4);
    assert_int_equal(info.height, 3);
    variant_dims(tif, n, 0, 0, 4, 3);
    expect_bad(tif, n - 6, "truncated or corrupt"); /* strip cut short */
}

static int spool(const void *p, size_t n)
{
    int fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    return fd; /* offset left at the end, as after spooling an upload */
}

static void test_validate_fd(void **state)
{
    (void)state;
    size_t len;
    unsigned char *jpg = make(120, 80, IMG_JPEG, &len);
    int fd = spool(jpg, len);
    img_info info = {0};
    char reason[REASON_CAP] = "";
    assert_int_equal(img_validate_fd(fd, (int64_t)len, &info, reason, sizeof(reason)), CB_EOK);
    assert_int_equal(info.type, IMG_JPEG);
    assert_int_equal(info.width, 120);
    assert_int_equal(info.height, 80);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)len); /* offset untouched */
    /* Only [0, size) counts: half of the file is a truncated image. */
    assert_int_equal(img_validate_fd(fd, (int64_t)len / 2, &info, reason, sizeof(reason)),
                     CB_EBADREQ);
    assert_string_equal(reason, "image data is truncated or corrupt");
    assert_int_equal(img_validate_fd(fd, 0, &info, reason, sizeof(reason)), CB_EBADREQ);
    assert_string_equal(reason, "not a PNG, JPEG, GIF or TIFF image");
    close(fd);
    g_free(jpg);

    unsigned char tif[256];
    size_t n = tiff_be(tif);
    fd = spool(tif, n);
    assert_int_equal(img_validate_fd(fd, (int64_t)n, &info, reason, sizeof(reason)), CB_EOK);
    assert_int_equal(info.type, IMG_TIFF);
    close(fd);
}

static void test_truncated_jpeg(void **state)
{
    (void)state;
    size_t len;
    unsigned char *jpg = make(200, 150, IMG_JPEG, &len);
    char reason[REASON_CAP] = "";
    assert_int_equal(img_validate(jpg, len / 2, NULL, reason, sizeof(reason)), CB_EBADREQ);
    assert_string_equal(reason, "image data is truncated or corrupt");
    g_free(jpg);
}

static void test_truncated_png_gif_tiff(void **state)
{
    (void)state;
    static const img_type types[] = {IMG_PNG, IMG_GIF, IMG_TIFF};
    for (size_t i = 0; i < 3; i++) {
        size_t len;
        unsigned char *buf = make(200, 150, types[i], &len);
        char reason[REASON_CAP] = "";
        assert_int_equal(img_validate(buf, len / 2, NULL, reason, sizeof(reason)), CB_EBADREQ);
        print_message("type %d cut at half: %s\n", types[i], reason);
        g_free(buf);
    }
}

static void test_garbage_after_png_signature(void **state)
{
    (void)state;
    unsigned char bad[512];
    memcpy(bad, "\x89PNG\r\n\x1a\n", 8);
    for (size_t i = 8; i < sizeof(bad); i++)
        bad[i] = (unsigned char)(i * 7 + 3);
    expect_bad(bad, sizeof(bad), "image header cannot be decoded");
    expect_bad(bad, 8, "image header cannot be decoded");
}

static void test_pixel_limit_from_header(void **state)
{
    (void)state;
    unsigned char png[128];
    size_t n = png_claiming(png, 100000, 100000);
    char reason[REASON_CAP] = "";
    double t0 = now_s();
    assert_int_equal(img_validate(png, n, NULL, reason, sizeof(reason)), CB_EBADREQ);
    assert_string_equal(reason, "image is 100000\u00d7100000 = 10000000000 pixels, more than "
                                "the limit of 50000000");
    void *out = NULL;
    size_t out_len = 0;
    assert_int_equal(img_variant(png, n, 64, 64, IMG_PNG, &out, &out_len, reason, sizeof(reason)),
                     CB_EBADREQ);
    assert_null(out);
    assert_true(now_s() - t0 < 0.5); /* refused from the header: no pixel work */
    /* Just under the limit passes the header check and fails on the data. */
    n = png_claiming(png, 5000, 10000);
    expect_bad(png, n, "truncated or corrupt");
}

static void test_not_an_image(void **state)
{
    (void)state;
    expect_bad("", 0, "not a PNG, JPEG, GIF or TIFF image");
    expect_bad("hello, world", 12, "not a PNG, JPEG, GIF or TIFF image");
    expect_bad("\x89PNG", 4, "not a PNG, JPEG, GIF or TIFF image");
}

static void test_blocked_loaders(void **state)
{
    (void)state;
    static const unsigned char bmp[58] = {'B', 'M', 58, 0, 0, 0, 0, 0, 0, 0, 54, 0,   0, 0,  40,
                                          0,   0,   0,  1, 0, 0, 0, 1, 0, 0, 0,  1,   0, 24, 0,
                                          0,   0,   0,  0, 4, 0, 0, 0, 0, 0, 0,  0,   0, 0,  0,
                                          0,   0,   0,  0, 0, 0, 0, 0, 0, 0, 0,  255, 0};
    static const char ppm[] = "P6\n2 2\n255\n\1\2\3\4\5\6\7\10\11\12\13\14";
    static const char svg[] = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" "
                              "height=\"10\"><rect width=\"10\" height=\"10\"/></svg>";
    expect_bad(bmp, sizeof(bmp), "not a PNG");
    expect_bad(ppm, sizeof(ppm) - 1, "not a PNG");
    expect_bad(svg, sizeof(svg) - 1, "not a PNG");
    void *out = NULL;
    size_t len = 0;
    assert_int_equal(img_variant(ppm, sizeof(ppm) - 1, 0, 0, IMG_PNG, &out, &len, NULL, 0),
                     CB_EBADREQ);

    /* Below the sniff, libvips itself refuses: the loaders are blocked. */
    VipsSource *src = vips_source_new_from_memory(ppm, sizeof(ppm) - 1);
    assert_null(vips_image_new_from_source(src, "", NULL));
    assert_null(vips_image_new_from_buffer(svg, sizeof(svg) - 1, "", NULL));
    assert_null(vips_image_new_from_buffer(bmp, sizeof(bmp), "", NULL));
    /* ... and that is the block, not a bad sample: unblocked, PPM loads. */
    vips_operation_block_set("VipsForeignLoadPpm", FALSE);
    VipsImage *img = vips_image_new_from_source(src, "", NULL);
    vips_operation_block_set("VipsForeignLoadPpm", TRUE);
    assert_non_null(img);
    assert_int_equal(img->Xsize, 2);
    g_object_unref(img);
    g_object_unref(src);
    vips_error_clear();
}

static void test_reason_is_optional_and_bounded(void **state)
{
    (void)state;
    char small[8];
    assert_int_equal(img_validate("nope", 4, NULL, NULL, 0), CB_EBADREQ);
    assert_int_equal(img_validate("nope", 4, NULL, small, sizeof(small)), CB_EBADREQ);
    assert_string_equal(small, "not a P");
}

/* ---- variants ---- */

static void test_tiny_and_extreme_aspect(void **state)
{
    (void)state;
    size_t len;
    unsigned char *one = make(1, 1, IMG_PNG, &len);
    img_info info = {0};
    assert_int_equal(img_validate(one, len, &info, NULL, 0), CB_EOK);
    assert_int_equal(info.width, 1);
    variant_dims(one, len, 256, 256, 1, 1);
    g_free(one);

    unsigned char *wide = make(10000, 1, IMG_PNG, &len);
    assert_int_equal(img_validate(wide, len, &info, NULL, 0), CB_EOK);
    assert_int_equal(info.width, 10000);
    variant_dims(wide, len, 256, 256, 256, 1); /* never 0 high */
    g_free(wide);

    unsigned char *tall = make(1, 10000, IMG_JPEG, &len);
    variant_dims(tall, len, 256, 256, 1, 256);
    g_free(tall);
}

static void test_never_enlarges(void **state)
{
    (void)state;
    size_t len;
    unsigned char *small = make(16, 12, IMG_JPEG, &len);
    variant_dims(small, len, 256, 256, 16, 12);
    variant_dims(small, len, 256, 0, 16, 12);
    g_free(small);
}

static void test_keeps_aspect(void **state)
{
    (void)state;
    size_t len;
    unsigned char *png = make(400, 200, IMG_PNG, &len);
    variant_dims(png, len, 100, 100, 100, 50);
    variant_dims(png, len, 100, 0, 100, 50);
    variant_dims(png, len, 0, 50, 100, 50);
    variant_dims(png, len, 0, 0, 400, 200);
    g_free(png);
    unsigned char *jpg = make(600, 400, IMG_JPEG, &len); /* shrink-on-load path */
    variant_dims(jpg, len, 150, 150, 150, 100);
    variant_dims(jpg, len, 7, 7, 7, 5);
    g_free(jpg);
}

static void test_exif_orientation(void **state)
{
    (void)state;
    VipsImage *img = noise_rgb(40, 20), *tagged = NULL;
    assert_int_equal(vips_copy(img, &tagged, NULL), 0);
    vips_image_set_int(tagged, VIPS_META_ORIENTATION, 6);
    size_t len;
    unsigned char *jpg = save_as(tagged, IMG_JPEG, &len);
    img_info info = {0};
    assert_int_equal(img_validate(jpg, len, &info, NULL, 0), CB_EOK);
    assert_int_equal(info.orientation, 6);
    assert_int_equal(info.width, 40); /* as stored */
    assert_int_equal(info.height, 20);
    variant_dims(jpg, len, 0, 0, 20, 40);
    variant_dims(jpg, len, 256, 256, 20, 40);
    variant_dims(jpg, len, 10, 10, 5, 10);
    /* The variant is upright and carries no orientation any more. */
    void *out = NULL;
    size_t out_len = 0;
    assert_int_equal(img_variant(jpg, len, 0, 0, IMG_JPEG, &out, &out_len, NULL, 0), CB_EOK);
    assert_int_equal(img_validate(out, out_len, &info, NULL, 0), CB_EOK);
    assert_int_equal(info.orientation, 1);
    assert_int_equal(info.width, 20);
    free(out);
    g_free(jpg);
    g_object_unref(tagged);
    g_object_unref(img);
}

static void convert_to(const void *in, size_t n, img_type t, const char *magic, size_t at)
{
    void *out = NULL;
    size_t len = 0;
    char reason[REASON_CAP] = "";
    cb_err e = img_variant(in, n, 50, 50, t, &out, &len, reason, sizeof(reason));
    if (t == IMG_AVIF && e == CB_EUNAVAILABLE)
        return; /* libheif without an AV1 encoder */
    assert_int_equal(e, CB_EOK);
    assert_non_null(out);
    assert_true(len > at + strlen(magic));
    assert_memory_equal((const char *)out + at, magic, strlen(magic));
    if (t != IMG_UNKNOWN && t <= IMG_TIFF)
        assert_int_equal(img_sniff(out, len), t);
    free(out);
}

static void test_type_conversions(void **state)
{
    (void)state;
    size_t len;
    unsigned char *png = make(100, 80, IMG_PNG, &len);
    convert_to(png, len, IMG_JPEG, "\xff\xd8\xff", 0);
    convert_to(png, len, IMG_GIF, "GIF8", 0);
    convert_to(png, len, IMG_PNG, "\x89PNG", 0);
    convert_to(png, len, IMG_TIFF, "II*", 0);
    convert_to(png, len, IMG_WEBP, "WEBP", 8);
    convert_to(png, len, IMG_AVIF, "ftypavif", 4);
    convert_to(png, len, IMG_UNKNOWN, "\x89PNG", 0); /* the input's own type */
    void *out = NULL;
    size_t out_len = 0;
    char reason[REASON_CAP] = "";
    assert_int_equal(
        img_variant(png, len, 0, 0, (img_type)42, &out, &out_len, reason, sizeof(reason)),
        CB_EBADREQ);
    assert_int_equal(img_variant(png, len, -1, 0, IMG_PNG, &out, &out_len, NULL, 0), CB_EBADREQ);
    g_free(png);

    unsigned char *gif = make(60, 40, IMG_GIF, &len);
    convert_to(gif, len, IMG_JPEG, "\xff\xd8\xff", 0);
    convert_to(gif, len, IMG_UNKNOWN, "GIF8", 0);
    g_free(gif);
}

static void test_alpha_flattened_onto_white(void **state)
{
    (void)state;
    VipsImage *clear = NULL, *srgb = NULL;
    assert_int_equal(vips_black(&clear, 30, 30, "bands", 4, NULL), 0);
    assert_int_equal(vips_copy(clear, &srgb, "interpretation", VIPS_INTERPRETATION_sRGB, NULL), 0);
    size_t len;
    unsigned char *png = save_as(srgb, IMG_PNG, &len);
    void *out = NULL;
    size_t out_len = 0;
    assert_int_equal(img_variant(png, len, 0, 0, IMG_JPEG, &out, &out_len, NULL, 0), CB_EOK);
    VipsImage *back = decode(out, out_len, 30, 30);
    double avg = 0;
    assert_int_equal(vips_avg(back, &avg, NULL), 0);
    assert_true(avg > 250); /* white, not black */
    g_object_unref(back);
    free(out);
    g_free(png);
    g_object_unref(srgb);
    g_object_unref(clear);
}

static void test_sixteen_bit_input(void **state)
{
    (void)state;
    VipsImage *img = noise_rgb(64, 48), *wide = NULL;
    assert_int_equal(vips_colourspace(img, &wide, VIPS_INTERPRETATION_RGB16, NULL), 0);
    size_t len;
    unsigned char *png = save_as(wide, IMG_PNG, &len);
    convert_to(png, len, IMG_JPEG, "\xff\xd8\xff", 0);
    convert_to(png, len, IMG_GIF, "GIF8", 0);
    convert_to(png, len, IMG_WEBP, "WEBP", 8);
    void *out = NULL;
    size_t out_len = 0;
    assert_int_equal(img_variant(png, len, 32, 32, IMG_PNG, &out, &out_len, NULL, 0), CB_EOK);
    check_dims(out, out_len, 32, 24);
    free(out);
    g_free(png);
    g_object_unref(wide);
    g_object_unref(img);
}

struct job {
    const unsigned char *jpg;
    size_t len;
    int ok;
};

static void *variant_worker(void *arg)
{
    struct job *j = arg;
    for (int i = 0; i < 8; i++) {
        void *out = NULL;
        size_t len = 0;
        int side = 40 + 10 * i;
        if (img_variant(j->jpg, j->len, side, side, i % 2 ? IMG_PNG : IMG_JPEG, &out, &len, NULL,
                        0) == CB_EOK) {
            VipsImage *back = vips_image_new_from_buffer(out, len, "", NULL);
            j->ok += back != NULL && back->Xsize == side;
            if (back != NULL)
                g_object_unref(back);
        }
        free(out);
    }
    vips_thread_shutdown();
    return NULL;
}

static void test_concurrent_variants(void **state)
{
    (void)state;
    size_t len;
    unsigned char *jpg = make(300, 200, IMG_JPEG, &len);
    pthread_t t[4];
    struct job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct job){jpg, len, 0};
        assert_int_equal(pthread_create(&t[i], NULL, variant_worker, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(jobs[i].ok, 8);
    }
    g_free(jpg);
}

/* ---- placeholders ---- */

static VipsImage *render(img_blank kind, int w, int h, int want_w, int want_h)
{
    void *png = NULL;
    size_t len = 0;
    assert_int_equal(img_placeholder_render(kind, w, h, IMG_UNKNOWN, &png, &len), CB_EOK);
    assert_int_equal(img_sniff(png, len), IMG_PNG);
    VipsImage *lazy = decode(png, len, want_w, want_h);
    VipsImage *img = vips_image_copy_memory(lazy); /* decoded before png is freed */
    assert_non_null(img);
    g_object_unref(lazy);
    free(png);
    return img;
}

static void assert_not_flat(VipsImage *img)
{
    double sd = 0;
    if (vips_deviate(img, &sd, NULL) != 0)
        fail_msg("%s", vips_error_buffer());
    assert_true(sd > 5);
}

static double pixel(VipsImage *img, int x, int y, int band)
{
    double *v = NULL;
    int n = 0;
    assert_int_equal(vips_getpoint(img, &v, &n, x, y, NULL), 0);
    assert_true(band < n);
    double r = v[band];
    g_free(v);
    return r;
}

static void test_placeholders_natural_size(void **state)
{
    (void)state;
    static const img_blank drawn[] = {IMG_BLANK_SR_NO_PHOTO, IMG_BLANK_SR_NO_PHOTO_WITH_BORDER,
                                      IMG_BLANK_GENERIC_FILE_ICON};
    for (size_t i = 0; i < 3; i++) {
        VipsImage *img = render(drawn[i], 0, 0, 128, 128);
        assert_not_flat(img);
        g_object_unref(img);
    }
    VipsImage *plain = render(IMG_BLANK_SR_NO_PHOTO, 0, 0, 128, 128);
    VipsImage *framed = render(IMG_BLANK_SR_NO_PHOTO_WITH_BORDER, 0, 0, 128, 128);
    assert_int_equal(plain->Bands, 3); /* opaque */
    assert_true(pixel(framed, 0, 0, 0) < pixel(plain, 0, 0, 0) - 40);
    assert_true(pixel(framed, 1, 64, 0) < pixel(plain, 1, 64, 0) - 40);
    assert_true(pixel(framed, 64, 64, 0) == pixel(plain, 64, 64, 0));
    assert_true(pixel(plain, 64, 46, 0) < pixel(plain, 5, 5, 0) - 40);  /* head */
    assert_true(pixel(plain, 64, 120, 0) < pixel(plain, 5, 5, 0) - 40); /* shoulders */
    g_object_unref(plain);
    g_object_unref(framed);
    VipsImage *icon = render(IMG_BLANK_GENERIC_FILE_ICON, 0, 0, 128, 128);
    assert_int_equal(icon->Bands, 4);
    assert_true(pixel(icon, 2, 2, 3) == 0);     /* transparent around the page */
    assert_true(pixel(icon, 50, 40, 3) == 255); /* the page */
    assert_true(pixel(icon, 50, 40, 0) > 250);  /* white paper */
    assert_true(pixel(icon, 100, 6, 3) == 0);   /* the cut corner */
    g_object_unref(icon);

    void *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    const unsigned char *constant;
    size_t nc;
    const char *mime;
    assert_int_equal(img_placeholder_render(IMG_BLANK_CLEAR_PIXEL, 0, 0, IMG_UNKNOWN, &a, &na),
                     CB_EOK);
    assert_true(img_placeholder(IMG_BLANK_CLEAR_PIXEL, &constant, &nc, &mime));
    assert_int_equal(na, nc);
    assert_memory_equal(a, constant, nc);
    free(a);
    /* Cached: the same bytes again. */
    assert_int_equal(img_placeholder_render(IMG_BLANK_SR_NO_PHOTO, 0, 0, IMG_PNG, &a, &na), CB_EOK);
    assert_int_equal(img_placeholder_render(IMG_BLANK_SR_NO_PHOTO, 0, 0, IMG_PNG, &b, &nb), CB_EOK);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    free(a);
    free(b);
}

static void test_placeholders_sized(void **state)
{
    (void)state;
    static const img_blank drawn[] = {IMG_BLANK_SR_NO_PHOTO, IMG_BLANK_SR_NO_PHOTO_WITH_BORDER,
                                      IMG_BLANK_GENERIC_FILE_ICON};
    for (size_t i = 0; i < 3; i++) {
        VipsImage *img = render(drawn[i], 64, 64, 64, 64);
        assert_not_flat(img);
        g_object_unref(img);
        g_object_unref(render(drawn[i], 200, 100, 100, 100));
        g_object_unref(render(drawn[i], 0, 48, 48, 48));
        g_object_unref(render(drawn[i], 16, 0, 16, 16));
    }
    VipsImage *clear = render(IMG_BLANK_CLEAR_PIXEL, 10, 7, 10, 7);
    double max = -1;
    assert_int_equal(vips_max(clear, &max, NULL), 0);
    assert_true(max == 0); /* every sample 0: fully transparent */
    assert_int_equal(clear->Bands, 4);
    g_object_unref(clear);
    g_object_unref(render(IMG_BLANK_CLEAR_PIXEL, 5, 0, 5, 5));
}

static void test_placeholder_types_and_kinds(void **state)
{
    (void)state;
    void *out = NULL;
    size_t len = 0;
    assert_int_equal(img_placeholder_render(IMG_BLANK_DEFAULT, 0, 0, IMG_PNG, &out, &len),
                     CB_ENOTFOUND);
    assert_int_equal(img_placeholder_render(IMG_BLANK_NULL, 0, 0, IMG_PNG, &out, &len),
                     CB_ENOTFOUND);
    assert_int_equal(img_placeholder_render(IMG_BLANK_SR_NO_PHOTO, 0, 0, IMG_JPEG, &out, &len),
                     CB_EOK);
    assert_int_equal(img_sniff(out, len), IMG_JPEG);
    check_dims(out, len, 128, 128);
    free(out);
    assert_int_equal(
        img_placeholder_render(IMG_BLANK_GENERIC_FILE_ICON, 32, 32, IMG_GIF, &out, &len), CB_EOK);
    assert_int_equal(img_sniff(out, len), IMG_GIF);
    check_dims(out, len, 32, 32);
    free(out);
    assert_int_equal(img_placeholder_render(IMG_BLANK_CLEAR_PIXEL, 0, 0, IMG_GIF, &out, &len),
                     CB_EOK);
    check_dims(out, len, 1, 1);
    free(out);
}

static void test_mime_any(void **state)
{
    (void)state;
    assert_string_equal(img_mime_any(IMG_WEBP), "image/webp");
    assert_string_equal(img_mime_any(IMG_AVIF), "image/avif");
    assert_string_equal(img_mime_any(IMG_PNG), "image/png");
    assert_string_equal(img_mime_any(IMG_TIFF), "image/tiff");
    assert_null(img_mime_any(IMG_UNKNOWN));
}

/* ---- bounded work ---- */

/* A little-endian TIFF of n pages, each 8 × 8 grey, uncompressed (as
 * tests/http/imgbomb.py's tiff_pages); *len set, malloc'd. */
#define PAGE_SIDE 8
#define PAGE_TAGS 9
#define PAGE_BYTES (2 + 12 * PAGE_TAGS + 4 + PAGE_SIDE * PAGE_SIDE)

static void put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    put16(p, v & 0xFFFF);
    put16(p + 2, v >> 16);
}

static unsigned char *tiff_pages(int n, size_t *len)
{
    *len = 8 + (size_t)n * PAGE_BYTES;
    unsigned char *t = calloc(1, *len), *p = t + 8;
    assert_non_null(t);
    memcpy(t, "II*\0", 4);
    put32(t + 4, 8);
    for (int i = 0; i < n; i++, p += PAGE_BYTES) {
        uint32_t at = (uint32_t)(p - t), data = at + PAGE_BYTES - PAGE_SIDE * PAGE_SIDE;
        const uint32_t tags[PAGE_TAGS][3] = {
            {256, 3, PAGE_SIDE}, {257, 3, PAGE_SIDE}, {258, 3, 8}, {259, 3, 1}, {262, 3, 1},
            {273, 4, data}, {277, 3, 1}, {278, 3, PAGE_SIDE}, {279, 4, PAGE_SIDE * PAGE_SIDE}};
        put16(p, PAGE_TAGS);
        for (int k = 0; k < PAGE_TAGS; k++) {
            put16(p + 2 + 12 * k, tags[k][0]);
            put16(p + 4 + 12 * k, tags[k][1]);
            put32(p + 6 + 12 * k, 1);
            put32(p + 10 + 12 * k, tags[k][2]); /* a SHORT sits in the low half */
        }
        put32(p + 2 + 12 * PAGE_TAGS, i + 1 < n ? at + PAGE_BYTES : 0);
        memset(t + data, i * 37, PAGE_SIDE * PAGE_SIDE);
    }
    return t;
}

static void test_tiff_pages_bounded(void **state)
{
    (void)state;
    char reason[REASON_CAP] = "";
    img_info info;
    size_t len;
    unsigned char *t = tiff_pages(400, &len);
    assert_int_equal(img_validate(t, len, &info, reason, sizeof(reason)), CB_EOK);
    assert_int_equal(info.width, PAGE_SIDE);
    assert_int_equal(info.height, PAGE_SIDE);
    free(t);
    t = tiff_pages(401, &len);
    assert_int_equal(img_validate(t, len, &info, reason, sizeof(reason)), CB_EWORK);
    assert_string_equal(reason, "the TIFF has more than 400 pages");
    int fd = spool(t, len);
    assert_int_equal(img_validate_fd(fd, (int64_t)len, &info, NULL, 0), CB_EWORK);
    close(fd);
    void *out = NULL;
    size_t out_len = 0;
    assert_int_equal(img_variant(t, len, 4, 4, IMG_PNG, &out, &out_len, NULL, 0), CB_EWORK);
    free(t);
}

#define SCAN_BOMB "tests/data/scanbomb.jpg" /* 152 scans, see test_jpegscan.c */

static void test_jpeg_scans_bounded(void **state)
{
    (void)state;
    char reason[REASON_CAP] = "";
    gchar *bomb = NULL;
    gsize len = 0;
    assert_true(g_file_get_contents(SCAN_BOMB, &bomb, &len, NULL));
    assert_int_equal(img_validate(bomb, len, NULL, reason, sizeof(reason)), CB_EWORK);
    assert_string_equal(reason, "the JPEG has more than 100 scans");
    int fd = spool(bomb, len);
    assert_int_equal(img_validate_fd(fd, (int64_t)len, NULL, NULL, 0), CB_EWORK);
    close(fd);
    void *out = NULL;
    size_t out_len = 0;
    assert_int_equal(img_variant(bomb, len, 16, 16, IMG_PNG, &out, &out_len, NULL, 0), CB_EWORK);
    g_free(bomb);
}

/* A worker of the small lane answers CB_ETOOLARGE for a picture over its
 * bound, from the header; the others never do. */
static void test_small_lane(void **state)
{
    (void)state;
    size_t len;
    unsigned char *small = make(40, 40, IMG_PNG, &len);
    size_t big_len;
    unsigned char *big = make(80, 80, IMG_PNG, &big_len);
    img_config lane = {.lane_pixels = 50 * 50};
    assert_int_equal(img_init(&lane), CB_EOK);
    assert_int_equal(img_validate(small, len, NULL, NULL, 0), CB_EOK);
    assert_int_equal(img_validate(big, big_len, NULL, NULL, 0), CB_ETOOLARGE);
    void *out = NULL;
    size_t out_len = 0;
    assert_int_equal(img_variant(big, big_len, 8, 8, IMG_PNG, &out, &out_len, NULL, 0),
                     CB_ETOOLARGE);
    img_config general = {0};
    assert_int_equal(img_init(&general), CB_EOK);
    assert_int_equal(img_validate(big, big_len, NULL, NULL, 0), CB_EOK);
    g_free(small);
    g_free(big);
}

static int setup(void **state)
{
    (void)state;
    img_config cfg = {0};
    return img_init(&cfg) == CB_EOK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    img_shutdown();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate_each_format),
        cmocka_unit_test(test_validate_big_endian_tiff),
        cmocka_unit_test(test_validate_fd),
        cmocka_unit_test(test_truncated_jpeg),
        cmocka_unit_test(test_truncated_png_gif_tiff),
        cmocka_unit_test(test_garbage_after_png_signature),
        cmocka_unit_test(test_pixel_limit_from_header),
        cmocka_unit_test(test_not_an_image),
        cmocka_unit_test(test_blocked_loaders),
        cmocka_unit_test(test_reason_is_optional_and_bounded),
        cmocka_unit_test(test_tiny_and_extreme_aspect),
        cmocka_unit_test(test_never_enlarges),
        cmocka_unit_test(test_keeps_aspect),
        cmocka_unit_test(test_exif_orientation),
        cmocka_unit_test(test_type_conversions),
        cmocka_unit_test(test_alpha_flattened_onto_white),
        cmocka_unit_test(test_sixteen_bit_input),
        cmocka_unit_test(test_concurrent_variants),
        cmocka_unit_test(test_placeholders_natural_size),
        cmocka_unit_test(test_placeholders_sized),
        cmocka_unit_test(test_placeholder_types_and_kinds),
        cmocka_unit_test(test_mime_any),
        cmocka_unit_test(test_tiff_pages_bounded),
        cmocka_unit_test(test_jpeg_scans_bounded),
        cmocka_unit_test(test_small_lane),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
