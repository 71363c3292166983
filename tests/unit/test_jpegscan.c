/*
 * test_jpegscan.c — unit tests of the JPEG data check (jpegscan.h).
 *
 * The check replaced a full-size libvips decode at upload, so its verdict
 * must be that decode's: every damaged JPEG made here (cut at many
 * lengths, bytes changed at random) is judged by both, from memory and
 * from a descriptor, and they must agree. The JPEGs are made with libvips
 * (baseline, progressive, grey, restart markers, 4:4:4); one committed
 * photo (run from the repository's root, as `make unit` does) gives a
 * damage that warns for every block.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <unistd.h>

#include <vips/vips.h>

#include "img/jpegscan.h"

#define CUTS 150
#define FLIPS 150

/* Noise (always the same) compresses badly: cuts and changes land in the
 * scan data. */
static VipsImage *noise(int w, int h, int bands)
{
    VipsImage *g = NULL, *u8 = NULL, *joined = NULL;
    assert_int_equal(vips_gaussnoise(&g, w, h, "mean", 128.0, "sigma", 50.0, "seed", 7, NULL), 0);
    assert_int_equal(vips_cast_uchar(g, &u8, NULL), 0);
    g_object_unref(g);
    if (bands == 1)
        return u8;
    VipsImage *in[3] = {u8, u8, u8};
    assert_int_equal(vips_bandjoin(in, &joined, 3, NULL), 0);
    g_object_unref(u8);
    VipsImage *out = NULL;
    assert_int_equal(vips_copy(joined, &out, "interpretation", VIPS_INTERPRETATION_sRGB, NULL), 0);
    g_object_unref(joined);
    return out;
}

struct kind {
    const char *name;
    int w, h, bands;
    gboolean progressive;
    int restart;
    VipsForeignSubsample subsample;
};

static const struct kind kinds[] = {
    {"baseline", 96, 64, 3, FALSE, 0, VIPS_FOREIGN_SUBSAMPLE_AUTO},
    {"progressive", 96, 64, 3, TRUE, 0, VIPS_FOREIGN_SUBSAMPLE_AUTO},
    {"grey", 96, 64, 1, FALSE, 0, VIPS_FOREIGN_SUBSAMPLE_AUTO},
    {"restart markers", 96, 64, 3, FALSE, 2, VIPS_FOREIGN_SUBSAMPLE_AUTO},
    {"4:4:4", 96, 64, 3, FALSE, 0, VIPS_FOREIGN_SUBSAMPLE_OFF},
};

static unsigned char *make_jpeg(const struct kind *k, size_t *len)
{
    VipsImage *img = noise(k->w, k->h, k->bands);
    void *buf = NULL;
    assert_int_equal(vips_jpegsave_buffer(img, &buf, len, "Q", 90, "interlace", k->progressive,
                                          "restart_interval", k->restart, "subsample_mode",
                                          k->subsample, NULL),
                     0);
    g_object_unref(img);
    return buf;
}

/* The reference: what the image worker did before jpegscan, a libvips
 * decode of every full-size pixel with fail_on=truncated. */
static int discard(VipsRegion *region, VipsRect *area, void *user)
{
    (void)region;
    (void)area;
    (void)user;
    return 0;
}

static bool libvips_decodes(const unsigned char *p, size_t n)
{
    VipsSource *src = vips_source_new_from_memory(p, n);
    VipsImage *img = NULL;
    bool ok = false;
    if (vips_jpegload_source(src, &img, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                             VIPS_FAIL_ON_TRUNCATED, NULL) == 0) {
        ok = vips_sink_disc(img, discard, NULL) == 0;
        g_object_unref(img);
    }
    vips_error_clear();
    g_object_unref(src);
    return ok;
}

static int spool(const void *p, size_t n)
{
    int fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    return fd;
}

struct tally {
    int accepted, refused;
};

/* Judges p[0, n) both ways and checks the verdicts agree. */
static void judge(const char *what, const unsigned char *p, size_t n, struct tally *t)
{
    bool want = libvips_decodes(p, n);
    int fd = spool(p, n);
    bool from_fd = jpegscan_fd(fd, (int64_t)n);
    bool from_mem = jpegscan_mem(p, n);
    close(fd);
    if (from_fd != want || from_mem != want)
        fail_msg("%s: libvips %s, jpegscan from fd %s, from memory %s", what,
                 want ? "decodes" : "refuses", from_fd ? "accepts" : "refuses",
                 from_mem ? "accepts" : "refuses");
    if (want)
        t->accepted++;
    else
        t->refused++;
}

static void test_agrees_with_libvips(void **state)
{
    (void)state;
    struct tally cuts = {0}, flips = {0};
    unsigned seed = 1;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        size_t len;
        unsigned char *jpg = make_jpeg(&kinds[i], &len);
        unsigned char *m = malloc(len);
        char what[128];
        assert_non_null(m);
        snprintf(what, sizeof(what), "%s, whole", kinds[i].name);
        judge(what, jpg, len, &cuts);
        for (int c = 0; c < CUTS; c++) {
            size_t n = len * (size_t)c / CUTS;
            snprintf(what, sizeof(what), "%s cut at %zu of %zu", kinds[i].name, n, len);
            judge(what, jpg, n, &cuts);
        }
        for (int f = 0; f < FLIPS; f++) {
            memcpy(m, jpg, len);
            int changes = 1 + (int)(rand_r(&seed) % 3);
            for (int j = 0; j < changes; j++)
                m[(size_t)rand_r(&seed) % len] ^= (unsigned char)(1 + rand_r(&seed) % 255);
            snprintf(what, sizeof(what), "%s with changed bytes, seed run %d", kinds[i].name, f);
            judge(what, m, len, &flips);
        }
        free(m);
        g_free(jpg);
    }
    print_message("cuts: %d accepted, %d refused; changed bytes: %d accepted, %d refused\n",
                  cuts.accepted, cuts.refused, flips.accepted, flips.refused);
    /* Both verdicts occur often in each family, or the agreement says little. */
    assert_true(cuts.accepted >= 5 && cuts.refused > 100);
    assert_true(flips.accepted > 50 && flips.refused > 50);
}

/* One changed byte in a refinement scan of the committed progressive
 * photo makes libjpeg warn for block after block (about 2,800 times);
 * libvips gives up at the hundredth warning, and so must the check. */
#define PHOTO "tests/data/images/photo_320x240_prog.jpg"
#define PHOTO_DAMAGE_AT 14018

static void test_agrees_on_many_warnings(void **state)
{
    (void)state;
    gchar *photo = NULL;
    gsize len = 0;
    assert_true(g_file_get_contents(PHOTO, &photo, &len, NULL));
    struct tally t = {0};
    judge("the photo", (unsigned char *)photo, len, &t);
    assert_int_equal(t.accepted, 1);
    assert_true(len > PHOTO_DAMAGE_AT);
    photo[PHOTO_DAMAGE_AT] ^= 0x23;
    judge("the photo with one changed byte", (unsigned char *)photo, len, &t);
    assert_int_equal(t.refused, 1);
    g_free(photo);
}

static void test_whole_cut_and_tail(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        size_t len;
        unsigned char *jpg = make_jpeg(&kinds[i], &len);
        assert_true(jpegscan_mem(jpg, len));
        assert_false(jpegscan_mem(jpg, len / 2));
        assert_false(jpegscan_mem(jpg, 2)); /* the start-of-image marker alone */
        assert_false(jpegscan_mem(jpg, 0));
        /* Cut just before its end-of-image marker: refused, as the full
         * libvips decode refused it. */
        assert_int_equal(jpg[len - 2], 0xFF);
        assert_int_equal(jpg[len - 1], 0xD9);
        assert_false(jpegscan_mem(jpg, len - 2));
        assert_false(libvips_decodes(jpg, len - 2));
        g_free(jpg);
    }
}

static void test_descriptor_range(void **state)
{
    (void)state;
    size_t len;
    unsigned char *jpg = make_jpeg(&kinds[0], &len);
    unsigned char *twice = malloc(2 * len);
    assert_non_null(twice);
    memcpy(twice, jpg, len / 2); /* a cut picture, then a whole one */
    memcpy(twice + len / 2, jpg, len);
    int fd = spool(twice, len / 2 + len);
    off_t end = lseek(fd, 0, SEEK_CUR);
    /* Only [0, size) is read: the whole picture after the cut is not seen. */
    assert_false(jpegscan_fd(fd, (int64_t)(len / 2)));
    assert_int_equal(lseek(fd, 0, SEEK_CUR), end); /* offset untouched */
    close(fd);

    fd = spool(jpg, len);
    assert_true(jpegscan_fd(fd, (int64_t)len));
    close(fd);
    assert_false(jpegscan_fd(fd, (int64_t)len)); /* a read error is no picture */
    assert_false(jpegscan_fd(-1, (int64_t)len));
    free(twice);
    g_free(jpg);
}

/* ---- the scan limit ---- */

/* 64 × 64 grey, progressive: a DC scan and an AC scan repeated 151 times
 * (tests/http/imgbomb.py, jpeg_scan_bomb(64, 64, 150)): 152 scans, each a
 * legal pass over every block, that libjpeg does not even warn about. */
#define SCAN_BOMB "tests/data/scanbomb.jpg"
#define SCAN_BOMB_SCANS 152

static void test_counts_scans_from_markers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        size_t len;
        unsigned char *jpg = make_jpeg(&kinds[i], &len);
        int n = jpegscan_count_scans(jpg, len, JPEGSCAN_MAX_SCANS);
        if (kinds[i].progressive)
            assert_true(n > 1 && n <= 12); /* libjpeg's script: 10 */
        else
            assert_int_equal(n, 1);
        assert_int_equal(jpegscan_count_scans(jpg, 2, 100), 0);
        assert_int_equal(jpegscan_count_scans(jpg + 1, len - 1, 100), 0); /* no SOI */
        g_free(jpg);
    }
    gchar *bomb = NULL;
    gsize len = 0;
    assert_true(g_file_get_contents(SCAN_BOMB, &bomb, &len, NULL));
    assert_int_equal(jpegscan_count_scans(bomb, len, 1000), SCAN_BOMB_SCANS);
    assert_int_equal(jpegscan_count_scans(bomb, len, 100), 101); /* counting stops */
    assert_int_equal(jpegscan_count_scans(bomb, len, 0), 1);
    g_free(bomb);
}

/* Offset of the n-th (0-based) SOS marker in p[0, len). */
static size_t nth_sos(const unsigned char *p, size_t len, int n)
{
    for (size_t i = 0; i + 1 < len; i++)
        if (p[i] == 0xFF && p[i + 1] == 0xDA && n-- == 0)
            return i;
    fail_msg("no SOS number %d", n);
    return 0;
}

/* The decoder itself stops at scan 101 (libjpeg's progress monitor): the
 * bomb is refused from memory and from a descriptor, with no marker count
 * before it, while the same picture cut to 100 scans (an EOI after them)
 * decodes. */
static void test_decoder_stops_at_the_scan_limit(void **state)
{
    (void)state;
    gchar *bomb = NULL;
    gsize len = 0;
    assert_true(g_file_get_contents(SCAN_BOMB, &bomb, &len, NULL));
    assert_false(jpegscan_mem(bomb, len));
    int fd = spool(bomb, len);
    assert_false(jpegscan_fd(fd, (int64_t)len));
    close(fd);
    size_t cut = nth_sos((unsigned char *)bomb, len, JPEGSCAN_MAX_SCANS);
    bomb[cut + 1] = 0xD9; /* scan 101 becomes the end of the picture */
    assert_int_equal(jpegscan_count_scans(bomb, cut + 2, 1000), JPEGSCAN_MAX_SCANS);
    assert_true(jpegscan_mem(bomb, cut + 2));
    assert_true(libvips_decodes((unsigned char *)bomb, cut + 2));
    g_free(bomb);
}

static int setup(void **state)
{
    (void)state;
    if (VIPS_INIT("test_jpegscan") != 0)
        return -1;
    vips_concurrency_set(1); /* as the image worker runs libvips (img_init) */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    vips_shutdown();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agrees_with_libvips),
        cmocka_unit_test(test_agrees_on_many_warnings),
        cmocka_unit_test(test_whole_cut_and_tail),
        cmocka_unit_test(test_descriptor_range),
        cmocka_unit_test(test_counts_scans_from_markers),
        cmocka_unit_test(test_decoder_stops_at_the_scan_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
