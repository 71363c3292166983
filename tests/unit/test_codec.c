/*
 * test_codec.c — unit tests of src/store/codec.c: how image bytes are kept
 * at rest.
 *
 * They pin down the contract of codec.h and the stored format documented in
 * codec.c: every combination of compression and encryption round-trips on
 * both the fd and the memory path (and both paths agree on flags and
 * sizes); compression is dropped when it saves less than 10 %; the sealed
 * stream is a version byte, the secretstream header and 64 KiB chunks with
 * FINAL on the last one only; a wrong key, a flipped byte, a dropped chunk
 * or appended bytes never yield bytes; zstd bombs are refused; key files
 * are parsed strictly; the fingerprint and keygen behave as documented.
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <zstd.h>

#include "core/err.h"
#include "core/log.h"
#include "store/codec.h"

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)
#define PREFIX 25 /* version byte and secretstream header */
#define ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
#define SEALED_CHUNK (64 * KIB + ABYTES)
#define DECRYPT_MSG "image bytes cannot be decrypted: wrong encryption key or damaged data"

static char dir[] = "/tmp/crmblob-test-codec-XXXXXX";
static unsigned char key1[CODEC_KEY_BYTES], key2[CODEC_KEY_BYTES];
/* codecs[compress | key << 1]: every combination with key1 */
static codec_t *codecs[4];
static codec_t *other_key; /* key2, no compression */

/* ---- helpers ------------------------------------------------------------ */

static void path_of(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static void write_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
}

/* Writes bytes under name in the test directory and returns its path. */
static const char *key_file(const char *name, const void *p, size_t n)
{
    static char path[512];
    path_of(path, sizeof(path), name);
    unlink(path);
    write_file(path, p, n);
    return path;
}

/* 64 hex digits of key (upper or lower case), with the given tail. */
static size_t hex_of(const unsigned char *key, bool upper, const char *tail, char *out, size_t cap)
{
    assert_true(cap > 2 * CODEC_KEY_BYTES + strlen(tail));
    sodium_bin2hex(out, cap, key, CODEC_KEY_BYTES);
    for (size_t i = 0; upper && out[i] != '\0'; i++)
        out[i] = (char)toupper((unsigned char)out[i]);
    memcpy(out + 2 * CODEC_KEY_BYTES, tail, strlen(tail) + 1);
    return strlen(out);
}

static codec_t *new_codec(bool compress, const char *key_path)
{
    codec_config cfg = {.compress = compress, .zstd_level = 0, .key_file = key_path};
    codec_t *c = NULL;
    assert_int_equal(codec_create(&cfg, &c), CB_EOK);
    assert_non_null(c);
    return c;
}

static cb_err try_codec(const char *key_path, codec_t **c)
{
    codec_config cfg = {.compress = false, .key_file = key_path};
    return codec_create(&cfg, c);
}

static void fill_random(unsigned char *p, size_t n)
{
    randombytes_buf(p, n);
}

/* A TIFF header and smooth 16-bit gradients: compresses well, like scans. */
static void fill_tiff_like(unsigned char *p, size_t n)
{
    static const unsigned char hdr[8] = {'I', 'I', 42, 0, 8, 0, 0, 0};
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)((i / 2 % 512) / 2 + (i / 4096) % 3);
    memcpy(p, hdr, n < sizeof(hdr) ? n : sizeof(hdr));
}

static unsigned char *make_data(char kind, size_t n)
{
    unsigned char *p = malloc(n > 0 ? n : 1);
    assert_non_null(p);
    if (kind == 'r')
        fill_random(p, n);
    else if (kind == 't')
        fill_tiff_like(p, n);
    else
        memset(p, 0, n);
    return p;
}

/* An unnamed file holding the bytes, its offset left at the end (as the
 * upload spool leaves it). */
static int spool(const void *p, size_t n)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    if (n > 0)
        assert_int_equal(write(fd, p, n), (ssize_t)n);
    return fd;
}

/* Reads an encode_fd result from its current offset (which must be 0). */
static unsigned char *slurp(int fd, size_t n)
{
    unsigned char *p = malloc(n + 1);
    assert_non_null(p);
    size_t got = 0;
    for (ssize_t r; got <= n && (r = read(fd, p + got, n + 1 - got)) > 0;)
        got += (size_t)r;
    assert_int_equal(got, n); /* exactly out_size bytes, from the start */
    return p;
}

static size_t sealed_size(size_t plain)
{
    size_t chunks = plain == 0 ? 1 : (plain + 64 * KIB - 1) / (64 * KIB);
    return PREFIX + chunks * ABYTES + plain;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

/* stderr goes to a file between capture_begin and capture_end. */
static int saved_stderr = -1, capture_fd = -1;

static void capture_begin(void)
{
    fflush(stderr);
    capture_fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    saved_stderr = dup(STDERR_FILENO);
    assert_true(capture_fd >= 0 && saved_stderr >= 0);
    dup2(capture_fd, STDERR_FILENO);
}

static const char *capture_end(void)
{
    static char text[16384];
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    ssize_t n = pread(capture_fd, text, sizeof(text) - 1, 0);
    close(capture_fd);
    text[n > 0 ? n : 0] = '\0';
    return text;
}

/* Decoding must fail with CB_EINTERNAL, give no bytes and log `msg`. */
static void expect_decode_error(const codec_t *c, const void *p, size_t n, bool zipped,
                                bool encrypted, const char *msg)
{
    void *out = (void *)1;
    size_t out_len = 99;
    capture_begin();
    cb_err e = codec_decode(c, p, n, zipped, encrypted, &out, &out_len);
    const char *log = capture_end();
    assert_int_equal(e, CB_EINTERNAL);
    assert_null(out);
    assert_int_equal(out_len, 0);
    if (msg != NULL && strstr(log, msg) == NULL)
        fail_msg("log lacks \"%s\": %s", msg, log);
}

static void expect_decodes_to(const codec_t *c, const void *p, size_t n, bool zipped,
                              bool encrypted, const unsigned char *want, size_t want_len)
{
    void *out = NULL;
    size_t out_len = 0;
    assert_int_equal(codec_decode(c, p, n, zipped, encrypted, &out, &out_len), CB_EOK);
    assert_non_null(out);
    assert_int_equal(out_len, want_len);
    if (want_len > 0)
        assert_memory_equal(out, want, want_len);
    free(out);
}

/* ---- round trips -------------------------------------------------------- */

typedef struct {
    bool zipped, encrypted;
    size_t len; /* stored size */
} outcome;

static outcome roundtrip_mem(const codec_t *c, const unsigned char *data, size_t n)
{
    void *out = (void *)1;
    outcome o = {0};
    assert_int_equal(codec_encode(c, data, n, &out, &o.len, &o.zipped, &o.encrypted), CB_EOK);
    if (out == NULL) { /* stored as given */
        assert_false(o.zipped || o.encrypted);
        assert_int_equal(o.len, n);
        expect_decodes_to(c, data, n, false, false, data, n);
    } else {
        assert_true(o.zipped || o.encrypted);
        expect_decodes_to(c, out, o.len, o.zipped, o.encrypted, data, n);
    }
    free(out);
    return o;
}

static outcome roundtrip_fd(const codec_t *c, const unsigned char *data, size_t n)
{
    int in = spool(data, n), out_fd = -2;
    int64_t out_size = -1;
    outcome o = {0};
    assert_int_equal(
        codec_encode_fd(c, in, (int64_t)n, dir, &out_fd, &out_size, &o.zipped, &o.encrypted),
        CB_EOK);
    assert_int_equal(lseek(in, 0, SEEK_CUR), (off_t)n); /* the spool's offset is untouched */
    o.len = (size_t)out_size;
    if (out_fd < 0) {
        assert_int_equal(out_fd, -1);
        assert_false(o.zipped || o.encrypted);
        assert_int_equal(out_size, (int64_t)n);
    } else {
        struct stat st;
        assert_int_equal(fstat(out_fd, &st), 0);
        assert_int_equal(st.st_nlink, 0); /* unnamed */
        assert_int_equal(st.st_size, out_size);
        unsigned char *stored = slurp(out_fd, o.len);
        expect_decodes_to(c, stored, o.len, o.zipped, o.encrypted, data, n);
        free(stored);
        close(out_fd);
    }
    close(in);
    return o;
}

/* Both paths on every codec; zip: 1 compression must apply (when asked
 * for), 0 it must not, -1 either. */
static void check_all(const unsigned char *data, size_t n, int zip)
{
    for (int i = 0; i < 4; i++) {
        bool compress = i & 1, key = i & 2;
        outcome m = roundtrip_mem(codecs[i], data, n);
        outcome f = roundtrip_fd(codecs[i], data, n);
        assert_int_equal(m.zipped, f.zipped); /* both paths decide alike */
        assert_int_equal(m.encrypted, f.encrypted);
        assert_int_equal(m.len, f.len);
        assert_int_equal(m.encrypted, key);
        if (!compress || zip == 0)
            assert_false(m.zipped);
        else if (zip == 1)
            assert_true(m.zipped);
        if (m.zipped && !key)
            assert_true(10 * m.len <= 9 * n); /* saves at least 10 % */
        if (key && !m.zipped)
            assert_int_equal(m.len, sealed_size(n));
        if (!key && !m.zipped)
            assert_int_equal(m.len, n);
    }
}

static void test_roundtrip_compressible(void **state)
{
    (void)state;
    unsigned char *zeros = make_data('0', MIB), *tiff = make_data('t', 300001);
    check_all(zeros, MIB, 1);
    check_all(tiff, 300001, 1);
    outcome o = roundtrip_mem(codecs[1], zeros, MIB);
    assert_true(o.len < 1000); /* really compressed */
    free(zeros);
    free(tiff);
}

static void test_roundtrip_incompressible(void **state)
{
    (void)state;
    unsigned char *rnd = make_data('r', 200000);
    check_all(rnd, 200000, 0);
    free(rnd);
}

static void test_roundtrip_tiny(void **state)
{
    (void)state;
    unsigned char one[1] = {0x42};
    check_all(NULL, 0, 0);
    check_all(one, 1, 0);
    check_all(one, 0, 0); /* a non-NULL pointer with no bytes */
    outcome o = roundtrip_mem(codecs[2], NULL, 0);
    assert_int_equal(o.len, PREFIX + ABYTES); /* one empty FINAL chunk */
}

static void test_roundtrip_chunk_boundaries(void **state)
{
    (void)state;
    static const size_t sizes[] = {65535, 65536, 65537, 131071, 131072, 131073, 196608};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char *rnd = make_data('r', sizes[i]), *tiff = make_data('t', sizes[i]);
        check_all(rnd, sizes[i], 0);
        check_all(tiff, sizes[i], 1);
        free(rnd);
        free(tiff);
    }
}

/* Compression saving a little under 10 % is dropped, a little over kept. */
static void test_threshold(void **state)
{
    (void)state;
    size_t n = 400000;
    unsigned char *p = make_data('r', n);
    memset(p, 0, n * 7 / 100); /* saves about 7 %: not worth it */
    assert_false(roundtrip_mem(codecs[1], p, n).zipped);
    assert_false(roundtrip_fd(codecs[1], p, n).zipped);
    memset(p, 0, n * 13 / 100); /* saves about 13 % */
    outcome o = roundtrip_fd(codecs[1], p, n);
    assert_true(o.zipped);
    assert_true(10 * o.len <= 9 * n);
    free(p);
}

/* Stored zstd frames decode whatever the reader's compress setting. */
static void test_decode_ignores_config(void **state)
{
    (void)state;
    unsigned char *tiff = make_data('t', 100000);
    void *out = NULL;
    size_t len = 0;
    bool zipped = false, encrypted = false;
    assert_int_equal(codec_encode(codecs[3], tiff, 100000, &out, &len, &zipped, &encrypted),
                     CB_EOK);
    assert_true(zipped && encrypted);
    expect_decodes_to(codecs[2], out, len, true, true, tiff, 100000);
    free(out);
    assert_int_equal(codec_encode(codecs[1], tiff, 100000, &out, &len, &zipped, &encrypted),
                     CB_EOK);
    expect_decodes_to(codecs[0], out, len, true, false, tiff, 100000);
    free(out);
    free(tiff);
}

/* The documented layout: 0x01, header, MESSAGE chunks of 64 KiB, FINAL last. */
static void test_sealed_layout(void **state)
{
    (void)state;
    size_t n = 2 * 64 * KIB + 10;
    unsigned char *data = make_data('r', n), *plain = malloc(64 * KIB);
    void *out = NULL;
    size_t len = 0;
    bool zipped, encrypted;
    assert_int_equal(codec_encode(codecs[2], data, n, &out, &len, &zipped, &encrypted), CB_EOK);
    const unsigned char *c = out;
    assert_int_equal(len, PREFIX + 3 * ABYTES + n);
    assert_int_equal(c[0], 0x01);
    crypto_secretstream_xchacha20poly1305_state st;
    assert_int_equal(crypto_secretstream_xchacha20poly1305_init_pull(&st, c + 1, key1), 0);
    static const size_t sizes[] = {64 * KIB, 64 * KIB, 10};
    size_t pos = PREFIX;
    for (int i = 0; i < 3; i++) {
        unsigned long long m;
        unsigned char tag;
        assert_int_equal(crypto_secretstream_xchacha20poly1305_pull(&st, plain, &m, &tag, c + pos,
                                                                    sizes[i] + ABYTES, NULL, 0),
                         0);
        assert_int_equal(m, sizes[i]);
        assert_memory_equal(plain, data + i * 64 * KIB, sizes[i]);
        assert_int_equal(tag, i == 2 ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
                                     : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
        pos += sizes[i] + ABYTES;
    }
    free(out);
    free(plain);
    free(data);
}

static void test_fd_path_resources(void **state)
{
    (void)state;
    int before = count_fds();
    unsigned char *tiff = make_data('t', 300000), *rnd = make_data('r', 300000);
    for (int i = 0; i < 4; i++) {
        roundtrip_fd(codecs[i], tiff, 300000);
        roundtrip_fd(codecs[i], rnd, 300000);
    }
    assert_int_equal(count_fds(), before);
    /* a spool shorter than announced: an error, and no descriptor left */
    int in = spool(rnd, 1000), out_fd = -2;
    int64_t out_size;
    bool zipped, encrypted;
    for (int i = 1; i < 4; i++) {
        capture_begin();
        cb_err e =
            codec_encode_fd(codecs[i], in, 5000, dir, &out_fd, &out_size, &zipped, &encrypted);
        capture_end();
        assert_int_equal(e, CB_EINTERNAL);
        assert_int_equal(out_fd, -1);
    }
    close(in);
    assert_int_equal(count_fds(), before);
    free(tiff);
    free(rnd);
}

/* Inputs over the 64 MiB decode cap are never compressed (the decoder
 * would refuse them) but still encrypted, and decode again. */
static void test_encode_over_zip_cap(void **state)
{
    (void)state;
    int in = spool(NULL, 0), out_fd = -2;
    assert_int_equal(ftruncate(in, (off_t)(64 * MIB + 1)), 0); /* sparse zeros: would zip well */
    int64_t out_size;
    bool zipped, encrypted;
    cb_err e = codec_encode_fd(codecs[3], in, (int64_t)(64 * MIB + 1), dir, &out_fd, &out_size,
                               &zipped, &encrypted);
    assert_int_equal(e, CB_EOK);
    assert_false(zipped);
    assert_int_equal(encrypted, codec_encrypts(codecs[3]));
    if (out_fd >= 0) {
        int dfd = -1;
        int64_t dsize = 0;
        assert_int_equal(codec_decode_fd(codecs[3], out_fd, out_size, zipped, encrypted, dir, &dfd,
                                         &dsize),
                         CB_EOK);
        assert_int_equal(dsize, (int64_t)(64 * MIB + 1));
        close(dfd);
        close(out_fd);
    }
    close(in);
}

/* ---- damaged or foreign ciphertext -------------------------------------- */

typedef struct {
    unsigned char *p;
    size_t len;
    bool zipped;
} sealed;

static sealed seal(const codec_t *c, const unsigned char *data, size_t n)
{
    sealed s = {0};
    void *out = NULL;
    bool encrypted = false;
    assert_int_equal(codec_encode(c, data, n, &out, &s.len, &s.zipped, &encrypted), CB_EOK);
    assert_true(encrypted);
    s.p = realloc(out, 2 * s.len + SEALED_CHUNK); /* room for appending */
    assert_non_null(s.p);
    return s;
}

static void test_wrong_key(void **state)
{
    (void)state;
    unsigned char *data = make_data('t', 150000);
    for (int i = 2; i < 4; i++) {
        sealed s = seal(codecs[i], data, 150000);
        expect_decode_error(other_key, s.p, s.len, s.zipped, true, DECRYPT_MSG);
        free(s.p);
    }
    free(data);
}

static void test_flipped_bytes(void **state)
{
    (void)state;
    unsigned char *data = make_data('r', 150000);
    sealed s = seal(codecs[2], data, 150000); /* 3 chunks */
    size_t at[] = {0,
                   1,
                   24,
                   PREFIX,
                   PREFIX + 1000,
                   PREFIX + SEALED_CHUNK - 1,
                   PREFIX + SEALED_CHUNK,
                   s.len / 2,
                   s.len - ABYTES,
                   s.len - 1};
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        s.p[at[i]] ^= 0x01;
        expect_decode_error(codecs[2], s.p, s.len, false, true, DECRYPT_MSG);
        s.p[at[i]] ^= 0x01;
    }
    expect_decodes_to(codecs[2], s.p, s.len, false, true, data, 150000); /* intact again */
    free(s.p);
    free(data);
}

static void test_truncated(void **state)
{
    (void)state;
    unsigned char *data = make_data('r', 150000);
    sealed s = seal(codecs[2], data, 150000);
    size_t last = s.len - 2 * SEALED_CHUNK - PREFIX; /* the FINAL chunk */
    size_t keep[] = {s.len - last, PREFIX + SEALED_CHUNK, s.len - 1, PREFIX + 1, PREFIX, 10, 1, 0};
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        expect_decode_error(codecs[2], s.p, keep[i], false, true, DECRYPT_MSG);
    /* chunks in the wrong order */
    unsigned char *swapped = malloc(s.len);
    memcpy(swapped, s.p, s.len);
    memcpy(swapped + PREFIX, s.p + PREFIX + SEALED_CHUNK, SEALED_CHUNK);
    memcpy(swapped + PREFIX + SEALED_CHUNK, s.p + PREFIX, SEALED_CHUNK);
    expect_decode_error(codecs[2], swapped, s.len, false, true, DECRYPT_MSG);
    free(swapped);
    free(s.p);
    free(data);
}

static void test_appended(void **state)
{
    (void)state;
    /* 150000: a short FINAL chunk; 65536: a full one, garbage then starts a new chunk */
    static const size_t sizes[] = {150000, 65536, 0};
    for (size_t k = 0; k < 3; k++) {
        unsigned char *data = make_data('r', sizes[k]);
        sealed s = seal(codecs[2], data, sizes[k]);
        size_t extra[] = {1, ABYTES, ABYTES + 1, SEALED_CHUNK};
        for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
            fill_random(s.p + s.len, extra[i]);
            expect_decode_error(codecs[2], s.p, s.len + extra[i], false, true, DECRYPT_MSG);
        }
        /* every chunk once more after FINAL */
        memcpy(s.p + s.len, s.p + PREFIX, s.len - PREFIX);
        expect_decode_error(codecs[2], s.p, 2 * s.len - PREFIX, false, true, DECRYPT_MSG);
        free(s.p);
        free(data);
    }
}

/* Streams sealed with key1 by hand: tags and chunk sizes as given. */
static size_t forge(unsigned char version, const unsigned char *tags, const size_t *sizes, int n,
                    unsigned char *out)
{
    static unsigned char plain[64 * 1024];
    crypto_secretstream_xchacha20poly1305_state st;
    out[0] = version;
    crypto_secretstream_xchacha20poly1305_init_push(&st, out + 1, key1);
    size_t pos = PREFIX;
    for (int i = 0; i < n; i++) {
        unsigned long long clen;
        memset(plain, 'a' + i, sizes[i]);
        crypto_secretstream_xchacha20poly1305_push(&st, out + pos, &clen, plain, sizes[i], NULL, 0,
                                                   tags[i]);
        pos += (size_t)clen;
    }
    return pos;
}

static void test_forged_streams(void **state)
{
    (void)state;
    enum {
        M = crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
        F = crypto_secretstream_xchacha20poly1305_TAG_FINAL,
        P = crypto_secretstream_xchacha20poly1305_TAG_PUSH
    };
    unsigned char *buf = malloc(4 * SEALED_CHUNK), *want = malloc(64 * KIB + 10);
    const size_t full_short[] = {64 * KIB, 10}, short_short[] = {10, 10};
    memset(want, 'a', 64 * KIB);
    memset(want + 64 * KIB, 'b', 10);
    size_t n = forge(1, (const unsigned char[]){M, F}, full_short, 2, buf);
    expect_decodes_to(codecs[2], buf, n, false, true, want, 64 * KIB + 10); /* the real form */
    n = forge(2, (const unsigned char[]){M, F}, full_short, 2, buf);
    expect_decode_error(codecs[2], buf, n, false, true, DECRYPT_MSG); /* unknown version */
    n = forge(1, (const unsigned char[]){F, M}, full_short, 2, buf);
    expect_decode_error(codecs[2], buf, n, false, true, DECRYPT_MSG); /* FINAL not last */
    n = forge(1, (const unsigned char[]){F, F}, full_short, 2, buf);
    expect_decode_error(codecs[2], buf, n, false, true, DECRYPT_MSG); /* FINAL twice */
    n = forge(1, (const unsigned char[]){M, M}, full_short, 2, buf);
    expect_decode_error(codecs[2], buf, n, false, true, DECRYPT_MSG); /* no FINAL */
    n = forge(1, (const unsigned char[]){P, F}, full_short, 2, buf);
    expect_decode_error(codecs[2], buf, n, false, true, DECRYPT_MSG); /* foreign tag */
    n = forge(1, (const unsigned char[]){M, F}, short_short, 2, buf);
    expect_decode_error(codecs[2], buf, n, false, true, DECRYPT_MSG); /* short inner chunk */
    free(buf);
    free(want);
}

static void test_encrypted_without_key(void **state)
{
    (void)state;
    unsigned char *data = make_data('t', 100000);
    sealed s = seal(codecs[3], data, 100000);
    void *out = (void *)1;
    size_t len = 5;
    capture_begin();
    cb_err e = codec_decode(codecs[0], s.p, s.len, s.zipped, true, &out, &len);
    capture_end();
    assert_int_equal(e, CB_EUNAVAILABLE);
    assert_null(out);
    assert_int_equal(len, 0);
    free(s.p);
    free(data);
}

/* ---- damaged zstd frames and bombs -------------------------------------- */

/* A frame of n zeros; pledged: the size is declared in the header. */
static unsigned char *zero_frame(size_t n, bool pledged, size_t *len)
{
    ZSTD_CCtx *z = ZSTD_createCCtx();
    size_t cap = 64 * KIB + n / 1000, chunk = MIB;
    unsigned char *out = malloc(cap), *zeros = calloc(1, chunk);
    assert_true(out != NULL && zeros != NULL);
    ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, 1);
    if (pledged)
        ZSTD_CCtx_setPledgedSrcSize(z, n);
    ZSTD_outBuffer ob = {out, cap, 0};
    for (size_t done = 0; done < n;) {
        size_t k = n - done < chunk ? n - done : chunk;
        ZSTD_inBuffer ib = {zeros, k, 0};
        while (ib.pos < ib.size)
            assert_false(ZSTD_isError(ZSTD_compressStream2(z, &ob, &ib, ZSTD_e_continue)));
        done += k;
    }
    ZSTD_inBuffer none = {zeros, 0, 0};
    size_t left;
    do
        assert_false(ZSTD_isError(left = ZSTD_compressStream2(z, &ob, &none, ZSTD_e_end)));
    while (left != 0);
    ZSTD_freeCCtx(z);
    free(zeros);
    *len = ob.pos;
    return out;
}

static void test_zstd_bombs(void **state)
{
    (void)state;
    size_t len;
    unsigned char *f = zero_frame(64 * MIB + 1, true, &len);
    assert_true(len < 64 * KIB);
    assert_int_equal(ZSTD_getFrameContentSize(f, len), 64 * MIB + 1);
    expect_decode_error(codecs[0], f, len, true, false, "declare");
    free(f);
    f = zero_frame(64 * MIB + 1, false, &len); /* size not declared: caught while inflating */
    assert_int_equal(ZSTD_getFrameContentSize(f, len), ZSTD_CONTENTSIZE_UNKNOWN);
    expect_decode_error(codecs[0], f, len, true, false, "more than");
    free(f);
    f = zero_frame(64 * MIB, false, &len); /* exactly the cap is fine */
    void *out = NULL;
    size_t out_len = 0;
    assert_int_equal(codec_decode(codecs[0], f, len, true, false, &out, &out_len), CB_EOK);
    assert_int_equal(out_len, 64 * MIB);
    assert_int_equal(((unsigned char *)out)[64 * MIB - 1], 0);
    free(out);
    free(f);
}

/* Hand-made frames: one raw block "A" behind a given window descriptor. */
static void test_zstd_window_limit(void **state)
{
    (void)state;
    unsigned char frame[] = {0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x80, 0x09, 0x00, 0x00, 'A'};
    expect_decodes_to(codecs[0], frame, sizeof(frame), true, false, (const unsigned char *)"A",
                      1); /* 0x80: a 64 MiB window */
    frame[5] = 0x88;      /* a 128 MiB window: refused */
    expect_decode_error(codecs[0], frame, sizeof(frame), true, false, "cannot be decompressed");
}

static void test_zstd_damage(void **state)
{
    (void)state;
    unsigned char *tiff = make_data('t', 200000);
    void *out = NULL;
    size_t len = 0;
    bool zipped, encrypted;
    assert_int_equal(codec_encode(codecs[1], tiff, 200000, &out, &len, &zipped, &encrypted),
                     CB_EOK);
    assert_true(zipped);
    unsigned char *f = realloc(out, 2 * len);
    const char *bad = "cannot be decompressed";
    expect_decode_error(codecs[0], f, len - 1, true, false, bad);     /* truncated */
    expect_decode_error(codecs[0], f, len / 2, true, false, bad);     /* truncated */
    expect_decode_error(codecs[0], f, 0, true, false, bad);           /* empty */
    f[len] = 0;                                                       /* one byte more */
    expect_decode_error(codecs[0], f, len + 1, true, false, "after"); /* trailing byte */
    memcpy(f + len, f, len);                                          /* two frames */
    expect_decode_error(codecs[0], f, 2 * len, true, false, "after");
    f[len / 2] ^= 0x10; /* damaged middle: the checksum or the decoder tells */
    expect_decode_error(codecs[0], f, len, true, false, bad);
    expect_decode_error(codecs[0], tiff, 200000, true, false, bad); /* not zstd at all */
    free(f);
    free(tiff);
}

/* ---- key files, fingerprint, keygen ------------------------------------- */

static void expected_fingerprint(const unsigned char *key, unsigned char out[16])
{
    unsigned char msg[14 + CODEC_KEY_BYTES];
    memcpy(msg, "crmblob-key-v1", 14);
    memcpy(msg + 14, key, CODEC_KEY_BYTES);
    crypto_generichash(out, 16, msg, sizeof(msg), NULL, 0);
}

static void check_key_file(const void *content, size_t n, const unsigned char *key)
{
    codec_t *c = NULL;
    unsigned char got[CODEC_FINGERPRINT_BYTES], want[CODEC_FINGERPRINT_BYTES];
    assert_int_equal(try_codec(key_file("k", content, n), &c), CB_EOK);
    assert_true(codec_encrypts(c));
    codec_fingerprint(c, got);
    expected_fingerprint(key, want);
    assert_memory_equal(got, want, sizeof(got));
    codec_destroy(c);
}

static void test_key_file_forms(void **state)
{
    (void)state;
    char hex[80];
    check_key_file(key1, CODEC_KEY_BYTES, key1);
    check_key_file(hex, hex_of(key1, false, "", hex, sizeof(hex)), key1);
    check_key_file(hex, hex_of(key1, false, "\n", hex, sizeof(hex)), key1);
    check_key_file(hex, hex_of(key1, true, "", hex, sizeof(hex)), key1);
    check_key_file(hex, hex_of(key1, true, "\n", hex, sizeof(hex)), key1);
    /* mixed case is hex too */
    size_t n = hex_of(key1, false, "\n", hex, sizeof(hex));
    for (size_t i = 0; i < n; i += 3)
        hex[i] = (char)toupper((unsigned char)hex[i]);
    check_key_file(hex, n, key1);
}

static void expect_bad_key(const void *content, size_t n, const char *msg)
{
    codec_t *c = (codec_t *)1;
    const char *path = key_file("bad", content, n);
    capture_begin();
    cb_err e = try_codec(path, &c);
    const char *log = capture_end();
    assert_int_equal(e, CB_EBADREQ);
    assert_null(c);
    if (strstr(log, msg) == NULL)
        fail_msg("log lacks \"%s\": %s", msg, log);
}

static void test_key_file_bad(void **state)
{
    (void)state;
    char hex[160];
    unsigned char raw[40];
    const char *size_msg = "expected 32 raw bytes or 64 hex digits";
    fill_random(raw, sizeof(raw));
    size_t n = hex_of(key1, false, "", hex, sizeof(hex));
    expect_bad_key(hex, 63, size_msg); /* 63 digits */
    hex[63] = '\n';                    /* 63 digits and a newline */
    expect_bad_key(hex, 64, "character 64 is not a hex digit");
    n = hex_of(key1, false, "", hex, sizeof(hex));
    hex[10] = 'g';
    expect_bad_key(hex, n, "character 11 is not a hex digit");
    hex[10] = ' ';
    expect_bad_key(hex, n, "character 11 is not a hex digit");
    expect_bad_key(hex, hex_of(key1, false, "\r\n", hex, sizeof(hex)), size_msg);
    expect_bad_key(hex, hex_of(key1, false, "\n\n", hex, sizeof(hex)), size_msg);
    expect_bad_key(hex, hex_of(key1, false, "0", hex, sizeof(hex)), size_msg); /* 65 digits */
    n = hex_of(key1, false, "", hex, sizeof(hex));
    memcpy(hex + n, hex, n);
    expect_bad_key(hex, 2 * n, "more than 65 bytes"); /* 128 digits */
    expect_bad_key(raw, 33, size_msg);
    expect_bad_key(raw, 31, size_msg);
    memcpy(raw + 32, "\n", 1);
    expect_bad_key(raw, 33, size_msg); /* raw bytes take no newline */
    expect_bad_key(raw, 0, "found 0 bytes");
    hex[64] = '\0';
    hex[5] = '\0';
    expect_bad_key(hex, 64, "character 6 is not a hex digit"); /* NUL inside */
}

static void test_key_file_unreadable(void **state)
{
    (void)state;
    char path[512];
    codec_t *c = (codec_t *)1;
    path_of(path, sizeof(path), "missing");
    capture_begin();
    assert_int_equal(try_codec(path, &c), CB_EBADREQ);
    assert_null(c);
    assert_int_equal(try_codec(dir, &c), CB_EBADREQ); /* a directory */
    const char *log = capture_end();
    assert_non_null(strstr(log, "cannot read the encryption key file"));
    assert_non_null(strstr(log, "not a regular file"));
    codec_config cfg = {.compress = true, .zstd_level = 99};
    capture_begin();
    assert_int_equal(codec_create(&cfg, &c), CB_EBADREQ);
    capture_end();
    cfg.zstd_level = 19;
    assert_int_equal(codec_create(&cfg, &c), CB_EOK);
    assert_false(codec_encrypts(c));
    codec_destroy(c);
    codec_destroy(NULL);
}

static void test_fingerprint(void **state)
{
    (void)state;
    unsigned char a[16], b[16], a2[16], none[16], zero[16] = {0};
    codec_fingerprint(codecs[2], a);
    codec_fingerprint(codecs[3], a2);
    codec_fingerprint(other_key, b);
    assert_memory_equal(a, a2, 16); /* same key, another codec */
    assert_memory_not_equal(a, b, 16);
    codec_t *again = new_codec(false, key_file("k1again", key1, sizeof(key1)));
    codec_fingerprint(again, a2);
    codec_destroy(again);
    assert_memory_equal(a, a2, 16); /* stable across loads */
    expected_fingerprint(key2, a2);
    assert_memory_equal(b, a2, 16);
    codec_fingerprint(codecs[0], none);
    assert_memory_equal(none, zero, 16); /* no key: all zeros */
}

static void test_keygen(void **state)
{
    (void)state;
    char p1[512], p2[512], text[100], before[100];
    path_of(p1, sizeof(p1), "gen1.key");
    path_of(p2, sizeof(p2), "gen2.key");
    mode_t old = umask(0);
    assert_int_equal(codec_keygen(p1), CB_EOK);
    umask(old);
    assert_int_equal(codec_keygen(p2), CB_EOK);
    struct stat st;
    assert_int_equal(stat(p1, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, 65);
    int fd = open(p1, O_RDONLY);
    assert_int_equal(read(fd, text, sizeof(text)), 65);
    close(fd);
    for (int i = 0; i < 64; i++)
        assert_non_null(strchr("0123456789abcdef", text[i]));
    assert_int_equal(text[64], '\n');
    memcpy(before, text, 65);
    capture_begin();
    cb_err e = codec_keygen(p1); /* O_EXCL: never replaces a key */
    codec_keygen("/nonexistent-dir/x.key");
    const char *log = capture_end();
    assert_int_equal(e, CB_EBADREQ);
    assert_non_null(strstr(log, "cannot create the key file"));
    fd = open(p1, O_RDONLY);
    assert_int_equal(read(fd, text, sizeof(text)), 65);
    close(fd);
    assert_memory_equal(text, before, 65);
    codec_t *c1 = new_codec(true, p1), *c2 = new_codec(true, p2);
    unsigned char f1[16], f2[16];
    codec_fingerprint(c1, f1);
    codec_fingerprint(c2, f2);
    assert_memory_not_equal(f1, f2, 16); /* random keys */
    unsigned char *tiff = make_data('t', 70000);
    roundtrip_fd(c1, tiff, 70000);
    sealed s = seal(c1, tiff, 70000);
    expect_decode_error(c2, s.p, s.len, s.zipped, true, DECRYPT_MSG);
    free(s.p);
    free(tiff);
    codec_destroy(c1);
    codec_destroy(c2);
}

/* ---- fixture ------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0 || mkdtemp(dir) == NULL)
        return -1;
    char path1[512], path2[512], hex[80];
    fill_random(key1, sizeof(key1));
    fill_random(key2, sizeof(key2));
    path_of(path1, sizeof(path1), "key1");
    path_of(path2, sizeof(path2), "key2");
    write_file(path1, hex, hex_of(key1, false, "\n", hex, sizeof(hex)));
    write_file(path2, key2, sizeof(key2));
    for (int i = 0; i < 4; i++)
        codecs[i] = new_codec(i & 1, i & 2 ? path1 : NULL);
    other_key = new_codec(false, path2);
    return 0;
}

/* ---- the streaming decoder ---------------------------------------------- */

typedef struct {
    unsigned char *p;
    size_t len, cap;
    int calls;
} collected;

static cb_err collect(void *ctx, const void *p, size_t n)
{
    collected *c = ctx;
    assert_true(n > 0);
    if (c->len + n > c->cap) {
        c->cap = 2 * (c->len + n);
        c->p = realloc(c->p, c->cap);
        assert_non_null(c->p);
    }
    memcpy(c->p + c->len, p, n);
    c->len += n;
    c->calls++;
    return CB_EOK;
}

/* Feeds [p, p + n) in pieces of `piece` bytes; the decoder's result. */
static cb_err stream_decode(const codec_t *c, const unsigned char *p, size_t n, bool zipped,
                            bool encrypted, size_t piece, collected *out)
{
    codec_dec *d = NULL;
    int64_t plain = -1;
    *out = (collected){0};
    cb_err e = codec_dec_open(c, zipped, encrypted, collect, out, &d);
    for (size_t off = 0; e == CB_EOK && off < n; off += piece)
        e = codec_dec_feed(d, p + off, n - off < piece ? n - off : piece);
    if (e == CB_EOK && (e = codec_dec_finish(d, &plain)) == CB_EOK)
        assert_int_equal(plain, (int64_t)out->len);
    codec_dec_close(d);
    return e;
}

/* codec_decode_fd of [p, p + n): the result, the file checked against want. */
static cb_err fd_decode(const codec_t *c, const unsigned char *p, size_t n, bool zipped,
                        bool encrypted, const unsigned char *want, size_t want_len)
{
    int in = spool(p, n), out_fd = -2;
    int64_t out_size = -1;
    cb_err e = codec_decode_fd(c, in, (int64_t)n, zipped, encrypted, dir, &out_fd, &out_size);
    close(in);
    if (e != CB_EOK) {
        assert_int_equal(out_fd, -1);
        return e;
    }
    struct stat st;
    assert_int_equal(fstat(out_fd, &st), 0);
    assert_int_equal(st.st_nlink, 0); /* unnamed */
    assert_int_equal(out_size, (int64_t)want_len);
    unsigned char *got = slurp(out_fd, want_len); /* from offset 0 */
    if (want_len > 0)
        assert_memory_equal(got, want, want_len);
    free(got);
    close(out_fd);
    return e;
}

/* Every codec, sizes around the 64 KiB chunk and 128 KiB inflate
 * boundaries, pieces from 1 byte to more than a sealed chunk. */
static void test_stream_roundtrip(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 65535, 65536, 65537, 131072, 131073, 300001};
    static const size_t pieces[] = {1, 17, 4096, 64 * KIB + 17, 256 * KIB};
    int before = count_fds();
    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        for (int kind = 0; kind < 2; kind++) {
            unsigned char *data = make_data(kind ? 't' : 'r', sizes[si]);
            for (int i = 0; i < 4; i++) {
                void *enc = NULL;
                size_t len = 0;
                bool z, e;
                assert_int_equal(codec_encode(codecs[i], data, sizes[si], &enc, &len, &z, &e),
                                 CB_EOK);
                const unsigned char *stored = enc != NULL ? enc : data;
                for (size_t pi = 0; pi < sizeof(pieces) / sizeof(pieces[0]); pi++) {
                    if (pieces[pi] == 1 && sizes[si] > 70000)
                        continue; /* byte by byte only where it is quick */
                    collected got;
                    assert_int_equal(stream_decode(codecs[i], stored, len, z, e, pieces[pi], &got),
                                     CB_EOK);
                    assert_int_equal(got.len, sizes[si]);
                    if (sizes[si] > 0)
                        assert_memory_equal(got.p, data, sizes[si]);
                    free(got.p);
                }
                assert_int_equal(fd_decode(codecs[i], stored, len, z, e, data, sizes[si]), CB_EOK);
                free(enc);
            }
            free(data);
        }
    }
    assert_int_equal(count_fds(), before);
}

/* Damage found through the stream and the fd path, in any piece size:
 * never CB_EOK, and the fd path leaves no file. */
static void expect_stream_error(const codec_t *c, const unsigned char *p, size_t n, bool zipped,
                                bool encrypted)
{
    static const size_t pieces[] = {1, 1000, 64 * KIB + 17, 1 << 20};
    capture_begin();
    for (size_t pi = 0; pi < sizeof(pieces) / sizeof(pieces[0]); pi++) {
        collected got;
        cb_err e = stream_decode(c, p, n, zipped, encrypted, pieces[pi], &got);
        free(got.p);
        if (e != CB_EINTERNAL) {
            capture_end();
            fail_msg("piece %zu: %d", pieces[pi], (int)e);
        }
    }
    cb_err e = fd_decode(c, p, n, zipped, encrypted, NULL, 0);
    capture_end();
    assert_int_equal(e, CB_EINTERNAL);
}

typedef struct {
    unsigned char *p;
    size_t len;
    bool zipped, encrypted;
} stored_t;

/* data encoded by c, with room for appending; it must be encoded. */
static stored_t stored_of(const codec_t *c, const unsigned char *data, size_t n)
{
    stored_t s = {0};
    void *out = NULL;
    assert_int_equal(codec_encode(c, data, n, &out, &s.len, &s.zipped, &s.encrypted), CB_EOK);
    assert_true(s.zipped || s.encrypted);
    s.p = realloc(out, 2 * s.len + SEALED_CHUNK);
    assert_non_null(s.p);
    return s;
}

static void test_stream_errors(void **state)
{
    (void)state;
    int before = count_fds();
    unsigned char *data = make_data('t', 150000);
    for (int i = 1; i < 4; i++) { /* zipped, encrypted, both */
        stored_t s = stored_of(codecs[i], data, 150000);
        expect_stream_error(codecs[i], s.p, s.len - 1, s.zipped, s.encrypted); /* truncated */
        expect_stream_error(codecs[i], s.p, s.len / 2, s.zipped, s.encrypted);
        s.p[s.len] = 0x55; /* one byte more */
        expect_stream_error(codecs[i], s.p, s.len + 1, s.zipped, s.encrypted);
        s.p[s.len / 2] ^= 0x10; /* corrupted */
        expect_stream_error(codecs[i], s.p, s.len, s.zipped, s.encrypted);
        s.p[s.len / 2] ^= 0x10;
        if (s.encrypted) /* a wrong key */
            expect_stream_error(other_key, s.p, s.len, s.zipped, true);
        collected got; /* intact, it decodes */
        assert_int_equal(stream_decode(codecs[i], s.p, s.len, s.zipped, s.encrypted, 999, &got),
                         CB_EOK);
        assert_int_equal(got.len, 150000);
        free(got.p);
        free(s.p);
    }
    free(data);
    assert_int_equal(count_fds(), before);
}

/* A frame declaring 65276 bytes and holding an empty last raw block, and a
 * legacy (v0.5) frame: errors whatever the pieces (zstd's streaming decoder
 * alone let the first pass when its header and block came in separate
 * pieces, and decoded the second only in one piece; found by
 * fuzz_codec_dec). */
static void test_stream_declared_size(void **state)
{
    (void)state;
    static const unsigned char frame[] = {0x28, 0xb5, 0x2f, 0xfd, 0x40, 0x04,
                                          0xfc, 0xfd, 0x01, 0x00, 0x00};
    expect_stream_error(codecs[0], frame, sizeof(frame), true, false);
    static const unsigned char legacy[] = {0x25, 0xb5, 0x2f, 0xfd, 0x01, 0x00, 0x00, 0x00};
    expect_stream_error(codecs[0], legacy, sizeof(legacy), true, false); /* a v0.5 frame */
    static const size_t pieces[] = {2, 3, 4, 5, 8};
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        collected got;
        capture_begin();
        cb_err e = stream_decode(codecs[0], frame, sizeof(frame), true, false, pieces[i], &got);
        const char *log = capture_end();
        free(got.p);
        assert_int_equal(e, CB_EINTERNAL);
        assert_non_null(strstr(log, "cannot be decompressed"));
    }
}

/* A sink's error stops the decoder and comes back as it is. */
static cb_err refuse(void *ctx, const void *p, size_t n)
{
    (void)p;
    (void)n;
    (*(int *)ctx)++;
    return CB_ENOSPACE;
}

static void test_stream_sink_error(void **state)
{
    (void)state;
    unsigned char *data = make_data('r', 200000);
    int calls = 0;
    codec_dec *d = NULL;
    assert_int_equal(codec_dec_open(codecs[0], false, false, refuse, &calls, &d), CB_EOK);
    assert_int_equal(codec_dec_feed(d, data, 1000), CB_ENOSPACE);
    assert_int_equal(codec_dec_feed(d, data, 1000), CB_ENOSPACE); /* sticky, sink not called */
    assert_int_equal(codec_dec_finish(d, NULL), CB_ENOSPACE);
    assert_int_equal(calls, 1);
    codec_dec_close(d);
    free(data);
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++)
        codec_destroy(codecs[i]);
    codec_destroy(other_key);
    DIR *d = opendir(dir);
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.')
            unlinkat(dirfd(d), e->d_name, 0);
    if (d != NULL)
        closedir(d);
    return rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_compressible),
        cmocka_unit_test(test_roundtrip_incompressible),
        cmocka_unit_test(test_roundtrip_tiny),
        cmocka_unit_test(test_roundtrip_chunk_boundaries),
        cmocka_unit_test(test_threshold),
        cmocka_unit_test(test_decode_ignores_config),
        cmocka_unit_test(test_sealed_layout),
        cmocka_unit_test(test_fd_path_resources),
        cmocka_unit_test(test_encode_over_zip_cap),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_flipped_bytes),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_appended),
        cmocka_unit_test(test_forged_streams),
        cmocka_unit_test(test_encrypted_without_key),
        cmocka_unit_test(test_zstd_bombs),
        cmocka_unit_test(test_zstd_window_limit),
        cmocka_unit_test(test_zstd_damage),
        cmocka_unit_test(test_key_file_forms),
        cmocka_unit_test(test_key_file_bad),
        cmocka_unit_test(test_key_file_unreadable),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_keygen),
        cmocka_unit_test(test_stream_roundtrip),
        cmocka_unit_test(test_stream_errors),
        cmocka_unit_test(test_stream_sink_error),
        cmocka_unit_test(test_stream_declared_size),
    };
    /* every decoding error is expected in the log, the hundredth too */
    log_set_limit(0, 0);
    return cmocka_run_group_tests(tests, setup, teardown);
}
