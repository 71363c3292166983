/*
 * codec.c — image bytes at rest: zstd compression and XChaCha20-Poly1305
 * encryption (see codec.h for the contract).
 *
 * Pipeline. Encoding compresses first, then encrypts (ciphertext does not
 * compress). Compression is kept only when the zstd frame is at most 90 %
 * of the input (10 * compressed <= 9 * original); the sink refuses to grow
 * past that bound, so an incompressible photo is abandoned as soon as its
 * frame gets too big instead of being compressed to the end. The fd path
 * streams: the input spool is read with pread in 64 KiB chunks (its offset
 * is left alone), the zstd frame goes to one unnamed temporary file and the
 * ciphertext to another, so memory stays bounded whatever the image size.
 * The memory path (variants) runs the same stages over fixed buffers.
 *
 * Stored formats (the BLOB record's IsZipped/IsEncrypted say which apply;
 * there is no other header):
 *   zipped     one zstd frame (content size and checksum included), nothing
 *              before or after it.
 *   encrypted  version byte 0x01, then the 24-byte secretstream header, then
 *              the plaintext (the zstd frame when also zipped) cut into
 *              64 KiB chunks, each sealed with crypto_secretstream_
 *              xchacha20poly1305 (+17 bytes). Every chunk but the last is
 *              exactly 64 KiB of plaintext and tagged MESSAGE; the last
 *              (possibly empty, never absent) is tagged FINAL. A later
 *              format gets a new version byte; 0x01 must stay readable.
 *
 * Decoding streams too (codec_dec: stored bytes in, in pieces of any size;
 * plain bytes out to a sink), and trusts nothing: every chunk must
 * authenticate, the FINAL tag must be on the last chunk and only there
 * (truncation and extension are both errors), and no more than 64 MiB ever
 * comes out (a frame declaring more than that is refused before anything
 * is decompressed). Encoding refuses inputs over the same cap, so
 * everything encoded can be decoded. codec_decode (memory) and
 * codec_decode_fd (a file) are the decoder with a sink each.
 *
 * The key lives in sodium_malloc'd memory (guard pages, mlock'd where the
 * system allows) and is wiped by sodium_free. A codec_t is read-only after
 * codec_create: encode and decode keep all their state on the call, so
 * threads may share one codec.
 */
#include "store/codec.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <zstd.h>

#include "core/io.h"
#include "core/log.h"
#include "store/store_int.h"

#define CHUNK_BYTES ((size_t)64 * 1024) /* plaintext per sealed chunk, and read size */
#define SEAL_ABYTES ((size_t)crypto_secretstream_xchacha20poly1305_ABYTES)
#define SEALED_CHUNK_BYTES (CHUNK_BYTES + SEAL_ABYTES)
#define FORMAT_V1 0x01
#define PREFIX_BYTES ((size_t)1 + crypto_secretstream_xchacha20poly1305_HEADERBYTES)
#define TAG_MESSAGE crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
#define TAG_FINAL crypto_secretstream_xchacha20poly1305_TAG_FINAL
/* No compressed value decodes to more (a decompression bomb's guard; a
 * picture's OriginalSize is far less): compression is tried up to it.
 * What is not compressed is bounded by its stored size instead. */
#define DECODED_MAX ((size_t)64 << 20)
#define PLAIN_MAX ((uint64_t)INT64_MAX) /* a value neither compressed nor over int64 */
#define WINDOW_LOG_MAX 26              /* log2(DECODED_MAX): encoders pledge the size */
#define DEFAULT_LEVEL 3
#define KEY_CONTEXT "crmblob-key-v1"
#define KEY_HEX_DIGITS (2 * CODEC_KEY_BYTES)
#define KEY_FILE_MAX (KEY_HEX_DIGITS + 1) /* 64 hex digits and a newline */
#define DECRYPT_FAILED "image bytes cannot be decrypted: wrong encryption key or damaged data"

struct codec {
    bool compress;
    int level;
    unsigned char *key; /* CODEC_KEY_BYTES, sodium_malloc'd; NULL: no encryption */
    /* codec_create_after: the previous key, tried when key does not open a
     * value's first chunk (decrypts only); NULL: none */
    unsigned char *prev_key;
};

/* Where the bytes to encode come from: an fd read with pread, or memory. */
typedef struct {
    int fd;                   /* >= 0: read [0, size) with pread */
    const unsigned char *mem; /* fd < 0: the bytes (NULL when size is 0) */
    int64_t size;
    int64_t pos;
} source_t;

/* Where encoded bytes go: an fd, or a fixed buffer of cap bytes. */
typedef struct {
    int fd;             /* >= 0: write here */
    unsigned char *mem; /* fd < 0 */
    int64_t cap;        /* putting more fails with CB_ETOOLARGE */
    int64_t len;
} sink_t;

/* Per-call buffers of the encoder (heap: too big for a thread's stack). */
typedef struct {
    unsigned char in[CHUNK_BYTES];
    unsigned char out[SEALED_CHUNK_BYTES];
} scratch_t;

/* ---- small helpers ------------------------------------------------------ */

static cb_err out_of_memory(void)
{
    log_error("codec: out of memory");
    return CB_EINTERNAL;
}

static cb_err too_big_input(int64_t size)
{
    log_error("image of %lld bytes is over the codec's limit of %zu bytes", (long long)size,
              DECODED_MAX);
    return CB_ETOOLARGE;
}

static cb_err decrypt_failed(void)
{
    log_error(DECRYPT_FAILED);
    return CB_EINTERNAL;
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

static cb_err write_full(int fd, const void *p, size_t n)
{
    if (io_write_full(fd, p, n) == 0)
        return CB_EOK;
    bool full = errno == ENOSPC || errno == EDQUOT;
    log_error("codec: write failed: %s", strerror(errno));
    return full ? CB_ENOSPACE : CB_EINTERNAL;
}

static cb_err pread_full(int fd, unsigned char *p, size_t n, int64_t off)
{
    size_t got = io_pread_full(fd, p, n, off);
    if (got == n)
        return CB_EOK;
    log_error("codec: image spool unreadable at byte %lld: %s", (long long)(off + (int64_t)got),
              errno != 0 ? strerror(errno) : "ends early");
    return CB_EINTERNAL;
}

/* ---- sources and sinks -------------------------------------------------- */

/* The next chunk (at most CHUNK_BYTES; 0 bytes only at the end). */
static cb_err source_next(source_t *s, unsigned char *scratch, const unsigned char **p, size_t *n)
{
    assert(s->pos <= s->size && (s->fd >= 0 || s->mem != NULL || s->size == 0));
    size_t want = min_size(CHUNK_BYTES, (size_t)(s->size - s->pos));
    cb_err e = CB_EOK;
    if (s->fd >= 0 || s->mem == NULL) {
        e = want > 0 ? pread_full(s->fd, scratch, want, s->pos) : CB_EOK;
        *p = scratch;
    } else {
        *p = s->mem + s->pos;
    }
    s->pos += (int64_t)want;
    *n = want;
    return e;
}

static cb_err sink_put(sink_t *s, const unsigned char *p, size_t n)
{
    if ((int64_t)n > s->cap - s->len)
        return CB_ETOOLARGE;
    if (n == 0)
        return CB_EOK;
    cb_err e = CB_EOK;
    if (s->fd >= 0)
        e = write_full(s->fd, p, n);
    else
        memcpy(s->mem + s->len, p, n);
    if (e == CB_EOK)
        s->len += (int64_t)n;
    return e;
}

/* ---- compression -------------------------------------------------------- */

static bool zstd_ok(size_t r, const char *what)
{
    if (!ZSTD_isError(r))
        return true;
    log_error("zstd %s failed: %s", what, ZSTD_getErrorName(r));
    return false;
}

/* The pledged size puts it in the frame header and shrinks the window to
 * the input, which keeps every frame within the decoder's window limit. */
static bool compressor_setup(ZSTD_CCtx *z, int level, int64_t size)
{
    return zstd_ok(ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, level), "setup") &&
           zstd_ok(ZSTD_CCtx_setParameter(z, ZSTD_c_checksumFlag, 1), "setup") &&
           zstd_ok(ZSTD_CCtx_setPledgedSrcSize(z, (unsigned long long)size), "setup");
}

/* Feeds one input chunk (the last one ends the frame) and drains the output. */
static cb_err compress_chunk(ZSTD_CCtx *z, const unsigned char *p, size_t n, bool last, sink_t *dst,
                             unsigned char *obuf)
{
    ZSTD_inBuffer in = {p, n, 0};
    ZSTD_EndDirective mode = last ? ZSTD_e_end : ZSTD_e_continue;
    for (;;) {
        ZSTD_outBuffer out = {obuf, SEALED_CHUNK_BYTES, 0};
        size_t left = ZSTD_compressStream2(z, &out, &in, mode);
        if (!zstd_ok(left, "compression"))
            return CB_EINTERNAL;
        cb_err e = sink_put(dst, obuf, out.pos);
        if (e != CB_EOK)
            return e;
        if (last ? left == 0 : in.pos == in.size)
            return CB_EOK;
    }
}

/* One zstd frame of src into dst; CB_ETOOLARGE when dst's cap is exceeded. */
static cb_err compress_stream(const codec_t *c, source_t *src, sink_t *dst, scratch_t *sc)
{
    cb_err e = CB_EINTERNAL;
    ZSTD_CCtx *z = ZSTD_createCCtx();
    if (z == NULL || !compressor_setup(z, c->level, src->size))
        goto out;
    do {
        const unsigned char *p;
        size_t n;
        e = source_next(src, sc->in, &p, &n);
        if (e == CB_EOK)
            e = compress_chunk(z, p, n, src->pos == src->size, dst, sc->out);
    } while (e == CB_EOK && src->pos < src->size);
out:
    ZSTD_freeCCtx(z);
    return e;
}

/* The most a kept frame may take: 90 % of the input, rounded down. */
static int64_t worth_limit(int64_t size)
{
    assert(size >= 0 && (size_t)size <= DECODED_MAX);
    return size * 9 / 10;
}

/* ---- encryption --------------------------------------------------------- */

static int64_t sealed_size(int64_t plain)
{
    int64_t chunks = plain == 0 ? 1 : (plain + (int64_t)CHUNK_BYTES - 1) / (int64_t)CHUNK_BYTES;
    return (int64_t)PREFIX_BYTES + chunks * (int64_t)SEAL_ABYTES + plain;
}

/* Version byte, secretstream header, then src in sealed chunks. */
static cb_err seal_stream(const codec_t *c, source_t *src, sink_t *dst, scratch_t *sc)
{
    crypto_secretstream_xchacha20poly1305_state st;
    unsigned char prefix[PREFIX_BYTES];
    prefix[0] = FORMAT_V1;
    crypto_secretstream_xchacha20poly1305_init_push(&st, prefix + 1, c->key);
    cb_err e = sink_put(dst, prefix, sizeof(prefix));
    bool last = false;
    while (e == CB_EOK && !last) {
        const unsigned char *p;
        size_t n;
        unsigned long long clen = 0;
        e = source_next(src, sc->in, &p, &n);
        last = src->pos == src->size;
        if (e == CB_EOK)
            crypto_secretstream_xchacha20poly1305_push(&st, sc->out, &clen, p, n, NULL, 0,
                                                       last ? TAG_FINAL : TAG_MESSAGE);
        if (e == CB_EOK)
            e = sink_put(dst, sc->out, (size_t)clen);
    }
    sodium_memzero(&st, sizeof(st));
    return e;
}

/* ---- the streaming decoder ---------------------------------------------- */

/* Stored bytes go in by codec_dec_feed in pieces of any size; the sealed
 * stream is cut back into its chunks (a prefix, then SEALED_CHUNK_BYTES
 * each, the last one shorter or not), each opened as soon as it is whole;
 * the plaintext goes through ZSTD_decompressStream when zipped, and what
 * comes out is handed to the sink in pieces of at most INFLATE_BYTES. */
#define INFLATE_BYTES ((size_t)128 * 1024)
#define HEADER_MAX ((size_t)18) /* ZSTD_FRAMEHEADERSIZE_MAX: a frame header's most bytes */

struct codec_dec {
    const codec_t *c;
    bool zipped, encrypted;
    codec_sink_fn sink;
    void *ctx;
    cb_err failed; /* the first error: sticky */
    int64_t out_len; /* handed to the sink so far */
    /* decryption */
    crypto_secretstream_xchacha20poly1305_state st;
    size_t prefix_len, sealed_len;
    bool final; /* the FINAL chunk was opened: nothing may follow */
    bool opened; /* a chunk was opened: the key is known (no other is tried) */
    /* decompression */
    ZSTD_DStream *z;
    bool header_checked, frame_done;
    size_t header_len;                 /* bytes gathered in header[] */
    unsigned long long declared;       /* the frame's content size; UNKNOWN: none */
    unsigned char header[HEADER_MAX]; /* the frame's first bytes, until its size is known */
    /* buffers (from here on, not zeroed at open) */
    unsigned char prefix[PREFIX_BYTES];
    unsigned char sealed[SEALED_CHUNK_BYTES];
    unsigned char plain[CHUNK_BYTES];
    unsigned char inflated[INFLATE_BYTES];
};

static cb_err too_much_output(void)
{
    log_error("stored image bytes decode to more than %zu bytes: refused as damaged data",
              DECODED_MAX);
    return CB_EINTERNAL;
}

static cb_err dec_emit(codec_dec *d, const unsigned char *p, size_t n)
{
    uint64_t cap = d->z != NULL ? DECODED_MAX : PLAIN_MAX; /* unzipped: as long as stored */
    if ((uint64_t)n > cap - (uint64_t)d->out_len)
        return too_much_output();
    d->out_len += (int64_t)n;
    return n > 0 ? d->sink(d->ctx, p, n) : CB_EOK;
}

/* Gathers the frame header from the plaintext's first bytes, however they
 * are cut, and reads the size it declares once it is whole (or the input
 * ended: end). A frame announcing more than the cap is refused before it
 * yields anything; the size declared is checked at the end (zstd's
 * streaming decoder does not check it for every frame shape). */
static cb_err dec_header(codec_dec *d, const unsigned char *p, size_t n, bool end)
{
    static const unsigned char magic[4] = {0x28, 0xb5, 0x2f, 0xfd}; /* ZSTD_MAGICNUMBER */
    if (d->header_checked)
        return CB_EOK;
    size_t had = d->header_len, take = min_size(n, HEADER_MAX - d->header_len);
    if (take > 0)
        memcpy(d->header + d->header_len, p, take);
    d->header_len += take;
    if ((had < sizeof(magic) && d->header_len >= sizeof(magic)) || end) {
        if (d->header_len < sizeof(magic) || memcmp(d->header, magic, sizeof(magic)) != 0) {
            /* legacy and skippable frames too: what we store is one current frame */
            log_error("stored image bytes cannot be decompressed: not a zstd frame");
            return CB_EINTERNAL;
        }
    }
    if (d->header_len < HEADER_MAX && !end)
        return CB_EOK;
    d->header_checked = true;
    unsigned long long declared = ZSTD_getFrameContentSize(d->header, d->header_len);
    if (declared == ZSTD_CONTENTSIZE_UNKNOWN || declared == ZSTD_CONTENTSIZE_ERROR)
        return CB_EOK; /* no size given, or a bad header the decoder reports */
    if (declared > DECODED_MAX) {
        log_error("stored image bytes declare %llu bytes once decompressed, over the limit of "
                  "%zu: refused as damaged data",
                  declared, DECODED_MAX);
        return CB_EINTERNAL;
    }
    d->declared = declared;
    return CB_EOK;
}

/* One ZSTD_decompressStream call; *made: bytes it produced. */
static cb_err dec_inflate_step(codec_dec *d, ZSTD_inBuffer *in, size_t *made)
{
    if (d->frame_done) {
        log_error("stored image bytes cannot be decompressed: data after the zstd frame");
        return CB_EINTERNAL;
    }
    ZSTD_outBuffer out = {d->inflated, sizeof(d->inflated), 0};
    size_t r = ZSTD_decompressStream(d->z, &out, in);
    if (ZSTD_isError(r)) {
        log_error("stored image bytes cannot be decompressed: %s", ZSTD_getErrorName(r));
        return CB_EINTERNAL;
    }
    d->frame_done = r == 0;
    *made = out.pos;
    return dec_emit(d, d->inflated, out.pos);
}

/* Plaintext (the zstd frame when zipped) on to the sink. */
static cb_err dec_plain(codec_dec *d, const unsigned char *p, size_t n)
{
    if (d->z == NULL)
        return dec_emit(d, p, n);
    cb_err e = dec_header(d, p, n, false);
    ZSTD_inBuffer in = {p, n, 0};
    size_t made;
    while (e == CB_EOK && in.pos < in.size)
        e = dec_inflate_step(d, &in, &made);
    return e;
}

/* Decrypts one sealed chunk; only MESSAGE and FINAL tags are valid. */
static bool open_chunk(crypto_secretstream_xchacha20poly1305_state *st, const unsigned char *c,
                       size_t n, unsigned char *plain, size_t *plain_len, bool *final)
{
    unsigned long long m = 0;
    unsigned char tag = 0;
    if (n < SEAL_ABYTES ||
        crypto_secretstream_xchacha20poly1305_pull(st, plain, &m, &tag, c, n, NULL, 0) != 0)
        return false;
    *final = tag == TAG_FINAL;
    *plain_len = (size_t)m;
    return tag == TAG_FINAL || tag == TAG_MESSAGE;
}

/* Opens the chunk gathered in d->sealed: damaged, a wrong key, or a chunk
 * after FINAL never yields bytes. */
static cb_err dec_open_sealed(codec_dec *d)
{
    size_t m = 0;
    size_t n = d->sealed_len;
    d->sealed_len = 0;
    if (d->final)
        return decrypt_failed();
    bool ok = open_chunk(&d->st, d->sealed, n, d->plain, &m, &d->final);
    /* the first chunk tells the key: the previous one when the current fails */
    if (!ok && !d->opened && d->c->key != NULL && d->c->prev_key != NULL &&
        crypto_secretstream_xchacha20poly1305_init_pull(&d->st, d->prefix + 1, d->c->prev_key) ==
            0)
        ok = open_chunk(&d->st, d->sealed, n, d->plain, &m, &d->final);
    if (!ok)
        return decrypt_failed();
    d->opened = true;
    return dec_plain(d, d->plain, m);
}

/* The key a value is opened with first: the codec's, else (a codec after
 * an encrypting one, without a key itself) the previous one. */
static const unsigned char *first_key(const codec_t *c)
{
    return c->key != NULL ? c->key : c->prev_key;
}

/* The version byte and secretstream header, once whole. */
static cb_err dec_prefix(codec_dec *d)
{
    if (d->prefix[0] != FORMAT_V1 ||
        crypto_secretstream_xchacha20poly1305_init_pull(&d->st, d->prefix + 1, first_key(d->c)) != 0)
        return decrypt_failed();
    return CB_EOK;
}

/* Takes up to n sealed bytes from p into the prefix or the chunk being
 * gathered; *used: how many. */
static cb_err dec_sealed(codec_dec *d, const unsigned char *p, size_t n, size_t *used)
{
    if (d->prefix_len < PREFIX_BYTES) {
        *used = min_size(n, PREFIX_BYTES - d->prefix_len);
        memcpy(d->prefix + d->prefix_len, p, *used);
        d->prefix_len += *used;
        return d->prefix_len == PREFIX_BYTES ? dec_prefix(d) : CB_EOK;
    }
    if (d->final)
        return decrypt_failed(); /* bytes after the FINAL chunk */
    *used = min_size(n, SEALED_CHUNK_BYTES - d->sealed_len);
    memcpy(d->sealed + d->sealed_len, p, *used);
    d->sealed_len += *used;
    return d->sealed_len == SEALED_CHUNK_BYTES ? dec_open_sealed(d) : CB_EOK;
}

cb_err codec_dec_open(const codec_t *c, bool zipped, bool encrypted, codec_sink_fn sink,
                      void *ctx, codec_dec **out)
{
    assert(c != NULL && sink != NULL && out != NULL);
    *out = NULL;
    if (encrypted && first_key(c) == NULL) {
        log_error("image bytes are stored encrypted but no encryption key is configured");
        return CB_EUNAVAILABLE;
    }
    codec_dec *d = malloc(sizeof(*d));
    if (d == NULL)
        return out_of_memory();
    memset(d, 0, offsetof(codec_dec, prefix)); /* the buffers need no zeroing */
    d->c = c;
    d->zipped = zipped;
    d->encrypted = encrypted;
    d->sink = sink;
    d->ctx = ctx;
    d->declared = ZSTD_CONTENTSIZE_UNKNOWN;
    if (zipped && ((d->z = ZSTD_createDStream()) == NULL ||
                   !zstd_ok(ZSTD_DCtx_setParameter(d->z, ZSTD_d_windowLogMax, WINDOW_LOG_MAX),
                            "setup"))) {
        codec_dec_close(d);
        return CB_EINTERNAL;
    }
    *out = d;
    return CB_EOK;
}

cb_err codec_dec_feed(codec_dec *d, const void *p, size_t n)
{
    assert(d != NULL && (p != NULL || n == 0));
    const unsigned char *b = p;
    if (d->failed == CB_EOK && !d->encrypted)
        d->failed = dec_plain(d, b, n);
    for (size_t used = 0; d->failed == CB_EOK && d->encrypted && n > 0; b += used, n -= used)
        d->failed = dec_sealed(d, b, n, &used);
    return d->failed;
}

/* The stored bytes ended: the last chunk is opened (it must be FINAL) and
 * zstd flushed (its frame must end exactly here). */
cb_err codec_dec_finish(codec_dec *d, int64_t *plain_len)
{
    assert(d != NULL);
    cb_err e = d->failed;
    if (e == CB_EOK && d->encrypted && d->prefix_len == PREFIX_BYTES && d->sealed_len > 0)
        e = dec_open_sealed(d);
    if (e == CB_EOK && d->encrypted && !d->final)
        e = decrypt_failed(); /* truncated: the FINAL chunk is missing */
    while (e == CB_EOK && d->z != NULL && !d->frame_done) {
        ZSTD_inBuffer none = {"", 0, 0};
        size_t made = 0;
        e = dec_inflate_step(d, &none, &made);
        if (e == CB_EOK && !d->frame_done && made == 0) {
            log_error("stored image bytes cannot be decompressed: the zstd frame is incomplete");
            e = CB_EINTERNAL;
        }
    }
    if (e == CB_EOK && d->z != NULL)
        e = dec_header(d, NULL, 0, true);
    if (e == CB_EOK && d->z != NULL && d->declared != ZSTD_CONTENTSIZE_UNKNOWN &&
        (uint64_t)d->out_len != d->declared) {
        log_error("stored image bytes cannot be decompressed: the zstd frame declares %llu "
                  "bytes, %lld came out",
                  d->declared, (long long)d->out_len);
        e = CB_EINTERNAL;
    }
    d->failed = e != CB_EOK ? e : CB_EINTERNAL; /* nothing more may be fed */
    if (e == CB_EOK && plain_len != NULL)
        *plain_len = d->out_len;
    return e;
}

void codec_dec_close(codec_dec *d)
{
    if (d == NULL)
        return;
    ZSTD_freeDStream(d->z);
    sodium_memzero(d, sizeof(*d)); /* the key stream state and plaintext */
    free(d);
}

/* ---- decoding into memory and into a file -------------------------------- */

/* A growing buffer, never more than DECODED_MAX (the decoder's own cap). */
typedef struct {
    unsigned char *data;
    size_t len, cap;
} mem_sink;

static cb_err mem_sink_put(void *ctx, const void *p, size_t n)
{
    mem_sink *m = ctx;
    if (n > m->cap - m->len) {
        size_t cap = m->cap;
        while (n > cap - m->len)
            cap = cap > DECODED_MAX / 2 ? DECODED_MAX : 2 * cap;
        unsigned char *q = realloc(m->data, cap);
        if (q == NULL)
            return out_of_memory();
        m->data = q;
        m->cap = cap;
    }
    memcpy(m->data + m->len, p, n);
    m->len += n;
    return CB_EOK;
}

/* Runs the decoder over [in, in + len) into sink. */
static cb_err decode_all(const codec_t *c, const void *in, size_t len, bool zipped,
                         bool encrypted, codec_sink_fn sink, void *ctx)
{
    codec_dec *d = NULL;
    cb_err e = codec_dec_open(c, zipped, encrypted, sink, ctx, &d);
    if (e == CB_EOK)
        e = codec_dec_feed(d, in, len);
    if (e == CB_EOK)
        e = codec_dec_finish(d, NULL);
    codec_dec_close(d);
    return e;
}

typedef struct {
    int fd;
} fd_sink;

static cb_err fd_sink_put(void *ctx, const void *p, size_t n)
{
    return write_full(((fd_sink *)ctx)->fd, p, n);
}

/* ---- key file ----------------------------------------------------------- */

/* Reads until end of file or cap bytes, whichever comes first. */
static bool read_upto(int fd, unsigned char *buf, size_t cap, size_t *n)
{
    *n = 0;
    while (*n < cap) {
        ssize_t r = read(fd, buf + *n, cap - *n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return false;
        if (r == 0)
            break;
        *n += (size_t)r;
    }
    return true;
}

static cb_err read_key_file(const char *path, unsigned char *buf, size_t cap, size_t *n)
{
    cb_err e = CB_EBADREQ;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 || fstat(fd, &st) != 0) {
        log_error("cannot read the encryption key file %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        log_error("encryption key file %s is not a regular file", path);
        goto out;
    }
    if ((st.st_mode & 077) != 0)
        log_warn("encryption key file %s is accessible to other users (chmod 600 it)", path);
    if (!read_upto(fd, buf, cap, n)) {
        log_error("cannot read the encryption key file %s: %s", path, strerror(errno));
        goto out;
    }
    e = CB_EOK;
out:
    if (fd >= 0)
        close(fd);
    return e;
}

static size_t hex_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] != '\0' && strchr("0123456789abcdefABCDEF", s[i]) != NULL)
        i++;
    return i;
}

/* 32 raw bytes, or 64 hex digits (either case) and an optional newline. */
static cb_err parse_key(const char *path, const unsigned char *raw, size_t n, unsigned char *key)
{
    if (n == CODEC_KEY_BYTES) {
        if (hex_prefix(raw, n) == n)
            log_warn("encryption key file %s holds 32 hex digits: read as 32 raw bytes "
                     "(a key in hex needs 64 digits)",
                     path);
        memcpy(key, raw, CODEC_KEY_BYTES);
        return CB_EOK;
    }
    size_t digits = n == KEY_FILE_MAX && raw[KEY_HEX_DIGITS] == '\n' ? KEY_HEX_DIGITS : n;
    if (digits != KEY_HEX_DIGITS) {
        log_error("encryption key file %s: expected 32 raw bytes or 64 hex digits (and an optional "
                  "newline), found %s%zu bytes",
                  path, n > KEY_FILE_MAX ? "more than " : "", n > KEY_FILE_MAX ? KEY_FILE_MAX : n);
        return CB_EBADREQ;
    }
    size_t good = hex_prefix(raw, digits), bin_len = 0;
    if (good < digits) {
        log_error("encryption key file %s: character %zu is not a hex digit", path, good + 1);
        return CB_EBADREQ;
    }
    int r = sodium_hex2bin(key, CODEC_KEY_BYTES, (const char *)raw, digits, NULL, &bin_len, NULL);
    assert(r == 0 && bin_len == CODEC_KEY_BYTES);
    (void)r;
    return CB_EOK;
}

static cb_err load_key(codec_t *c, const char *path)
{
    unsigned char raw[KEY_FILE_MAX + 1]; /* one more than allowed: too long shows */
    size_t n = 0;
    c->key = sodium_malloc(CODEC_KEY_BYTES);
    cb_err e = c->key == NULL ? out_of_memory() : read_key_file(path, raw, sizeof(raw), &n);
    if (e == CB_EOK)
        e = parse_key(path, raw, n, c->key);
    sodium_memzero(raw, sizeof(raw));
    return e;
}

/* ---- the codec ---------------------------------------------------------- */

cb_err codec_create(const codec_config *cfg, codec_t **out)
{
    assert(cfg != NULL && out != NULL);
    *out = NULL;
    if (sodium_init() < 0) {
        log_error("libsodium cannot be initialised");
        return CB_EINTERNAL;
    }
    int level = cfg->zstd_level == 0 ? DEFAULT_LEVEL : cfg->zstd_level;
    if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel()) {
        log_error("zstd level %d is out of range (%d to %d)", level, ZSTD_minCLevel(),
                  ZSTD_maxCLevel());
        return CB_EBADREQ;
    }
    codec_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return out_of_memory();
    c->compress = cfg->compress;
    c->level = level;
    cb_err e = cfg->key_file != NULL ? load_key(c, cfg->key_file) : CB_EOK;
    if (e != CB_EOK)
        codec_destroy(c);
    else
        *out = c;
    return e;
}

cb_err codec_create_after(const codec_config *cfg, const codec_t *prev, codec_t **out)
{
    cb_err e = codec_create(cfg, out);
    if (e != CB_EOK || prev->key == NULL)
        return e;
    if (((*out)->prev_key = sodium_malloc(CODEC_KEY_BYTES)) == NULL) {
        codec_destroy(*out);
        *out = NULL;
        return out_of_memory();
    }
    memcpy((*out)->prev_key, prev->key, CODEC_KEY_BYTES);
    return CB_EOK;
}

bool codec_compresses(const codec_t *c)
{
    return c->compress;
}

void codec_destroy(codec_t *c)
{
    if (c == NULL)
        return;
    sodium_free(c->prev_key);
    sodium_free(c->key); /* wipes it; NULL is fine */
    free(c);
}

bool codec_encrypts(const codec_t *c)
{
    return c->key != NULL;
}

/* BLAKE2b-128 of "crmblob-key-v1" || key; all zeros when there is no key. */
void codec_fingerprint(const codec_t *c, unsigned char out[CODEC_FINGERPRINT_BYTES])
{
    crypto_generichash_state st;
    memset(out, 0, CODEC_FINGERPRINT_BYTES);
    if (c->key == NULL)
        return;
    crypto_generichash_init(&st, NULL, 0, CODEC_FINGERPRINT_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)KEY_CONTEXT, strlen(KEY_CONTEXT));
    crypto_generichash_update(&st, c->key, CODEC_KEY_BYTES);
    crypto_generichash_final(&st, out, CODEC_FINGERPRINT_BYTES);
    sodium_memzero(&st, sizeof(st));
}

/* ---- encoding, fd path -------------------------------------------------- */

/* The caller reads the result from its start. */
static cb_err rewind_fd(int fd)
{
    if (lseek(fd, 0, SEEK_SET) == 0)
        return CB_EOK;
    log_error("codec: cannot rewind a temporary file: %s", strerror(errno));
    return CB_EINTERNAL;
}

/* Compresses fd into a new temporary file; *zfd stays -1 when that does
 * not save 10 %. */
static cb_err compress_fd(const codec_t *c, int fd, int64_t size, const char *tmpdir, scratch_t *sc,
                          int *zfd, int64_t *zlen)
{
    if (worth_limit(size) == 0)
        return CB_EOK; /* no frame is that small */
    int t = io_open_tmp(tmpdir);
    if (t < 0)
        return CB_EINTERNAL;
    source_t src = {.fd = fd, .size = size};
    sink_t dst = {.fd = t, .cap = worth_limit(size)};
    cb_err e = compress_stream(c, &src, &dst, sc);
    if (e == CB_EOK)
        e = rewind_fd(t);
    if (e == CB_EOK) {
        *zfd = t;
        *zlen = dst.len;
        return CB_EOK;
    }
    close(t);
    return e == CB_ETOOLARGE ? CB_EOK : e; /* too big: store uncompressed */
}

static cb_err seal_fd(const codec_t *c, int fd, int64_t size, const char *tmpdir, scratch_t *sc,
                      int *efd, int64_t *elen)
{
    int t = io_open_tmp(tmpdir);
    if (t < 0)
        return CB_EINTERNAL;
    source_t src = {.fd = fd, .size = size};
    sink_t dst = {.fd = t, .cap = INT64_MAX};
    cb_err e = seal_stream(c, &src, &dst, sc);
    assert(e != CB_EOK || dst.len == sealed_size(size));
    if (e == CB_EOK)
        e = rewind_fd(t);
    if (e != CB_EOK) {
        close(t);
        return e;
    }
    *efd = t;
    *elen = dst.len;
    return CB_EOK;
}

cb_err codec_encode_fd(const codec_t *c, int fd, int64_t size, const char *tmpdir, int *out_fd,
                       int64_t *out_size, bool *zipped, bool *encrypted)
{
    assert(c != NULL && fd >= 0 && size >= 0 && tmpdir != NULL);
    assert(out_fd != NULL && out_size != NULL && zipped != NULL && encrypted != NULL);
    *out_fd = -1;
    *out_size = size;
    *zipped = *encrypted = false;
    int zfd = -1, efd = -1;
    int64_t zlen = 0, elen = 0;
    scratch_t *sc = malloc(sizeof(*sc));
    cb_err e = sc == NULL ? out_of_memory() : CB_EOK;
    if (e == CB_EOK && c->compress && (uint64_t)size <= DECODED_MAX)
        e = compress_fd(c, fd, size, tmpdir, sc, &zfd, &zlen); /* larger: never compressed */
    if (e == CB_EOK && c->key != NULL)
        e = seal_fd(c, zfd >= 0 ? zfd : fd, zfd >= 0 ? zlen : size, tmpdir, sc, &efd, &elen);
    int result = efd >= 0 ? efd : zfd;
    if (e == CB_EOK && result >= 0) {
        *out_fd = result;
        *out_size = efd >= 0 ? elen : zlen;
        *zipped = zfd >= 0;
        *encrypted = efd >= 0;
    }
    if (zfd >= 0 && zfd != *out_fd)
        close(zfd);
    if (efd >= 0 && efd != *out_fd)
        close(efd);
    free(sc);
    return e;
}

/* ---- encoding, memory path ---------------------------------------------- */

/* *z stays NULL when compression does not save 10 %. */
static cb_err compress_mem(const codec_t *c, const unsigned char *in, size_t len, scratch_t *sc,
                           unsigned char **z, size_t *zlen)
{
    int64_t limit = worth_limit((int64_t)len);
    if (limit == 0)
        return CB_EOK; /* no frame is that small */
    unsigned char *buf = malloc((size_t)limit);
    if (buf == NULL)
        return out_of_memory();
    source_t src = {.fd = -1, .mem = in, .size = (int64_t)len};
    sink_t dst = {.fd = -1, .mem = buf, .cap = limit};
    cb_err e = compress_stream(c, &src, &dst, sc);
    if (e != CB_EOK) {
        free(buf);
        return e == CB_ETOOLARGE ? CB_EOK : e;
    }
    *z = buf;
    *zlen = (size_t)dst.len;
    return CB_EOK;
}

static cb_err seal_mem(const codec_t *c, const unsigned char *in, size_t len, scratch_t *sc,
                       void **out, size_t *out_len)
{
    int64_t size = sealed_size((int64_t)len);
    unsigned char *buf = malloc((size_t)size);
    if (buf == NULL)
        return out_of_memory();
    source_t src = {.fd = -1, .mem = in, .size = (int64_t)len};
    sink_t dst = {.fd = -1, .mem = buf, .cap = size};
    cb_err e = seal_stream(c, &src, &dst, sc);
    assert(e == CB_EOK && dst.len == size); /* memory sinks of the exact size cannot fail */
    *out = buf;
    *out_len = (size_t)size;
    return e;
}

cb_err codec_encode(const codec_t *c, const void *in, size_t len, void **out, size_t *out_len,
                    bool *zipped, bool *encrypted)
{
    assert(c != NULL && (in != NULL || len == 0) && out != NULL && out_len != NULL);
    assert(zipped != NULL && encrypted != NULL);
    *out = NULL;
    *out_len = len;
    *zipped = *encrypted = false;
    if (len > DECODED_MAX)
        return too_big_input((int64_t)len);
    unsigned char *z = NULL;
    size_t zlen = 0;
    scratch_t *sc = malloc(sizeof(*sc));
    cb_err e = sc == NULL ? out_of_memory() : CB_EOK;
    if (e == CB_EOK && c->compress)
        e = compress_mem(c, in, len, sc, &z, &zlen);
    if (e == CB_EOK && c->key != NULL)
        e = seal_mem(c, z != NULL ? z : in, z != NULL ? zlen : len, sc, out, out_len);
    else if (e == CB_EOK && z != NULL) {
        *out = z;
        *out_len = zlen;
    }
    if (e == CB_EOK) {
        *zipped = z != NULL;
        *encrypted = c->key != NULL;
    }
    if (z != *out)
        free(z);
    free(sc);
    return e;
}

/* ---- decoding ----------------------------------------------------------- */

cb_err codec_decode(const codec_t *c, const void *in, size_t len, bool zipped, bool encrypted,
                    void **out, size_t *out_len)
{
    assert(c != NULL && (in != NULL || len == 0) && out != NULL && out_len != NULL);
    *out = NULL;
    *out_len = 0;
    /* the plaintext is never longer than the stored bytes unless zipped */
    mem_sink m = {.cap = zipped ? min_size(2 * len + CHUNK_BYTES, DECODED_MAX) : len};
    cb_err e = (m.data = malloc(m.cap > 0 ? m.cap : 1)) == NULL ? out_of_memory() : CB_EOK;
    if (e == CB_EOK)
        e = decode_all(c, in, len, zipped, encrypted, mem_sink_put, &m);
    unsigned char *p = e == CB_EOK ? realloc(m.data, m.len > 0 ? m.len : 1) : NULL;
    if (e == CB_EOK && p == NULL)
        e = out_of_memory();
    if (e != CB_EOK) {
        free(m.data);
        return e;
    }
    *out = p;
    *out_len = m.len;
    return CB_EOK;
}

/* Reads fd[0, size) with pread in CHUNK_BYTES pieces into the decoder. */
static cb_err feed_fd(codec_dec *d, int fd, int64_t size, unsigned char *buf)
{
    cb_err e = CB_EOK;
    for (int64_t off = 0; e == CB_EOK && off < size; off += (int64_t)CHUNK_BYTES) {
        size_t n = min_size(CHUNK_BYTES, (size_t)(size - off));
        e = pread_full(fd, buf, n, off);
        if (e == CB_EOK)
            e = codec_dec_feed(d, buf, n);
    }
    return e;
}

cb_err codec_decode_fd(const codec_t *c, int fd, int64_t size, bool zipped, bool encrypted,
                       const char *tmpdir, int *out_fd, int64_t *out_size)
{
    assert(c != NULL && fd >= 0 && size >= 0 && tmpdir != NULL);
    assert(out_fd != NULL && out_size != NULL);
    *out_fd = -1;
    *out_size = 0;
    fd_sink sink = {.fd = io_open_tmp(tmpdir)};
    unsigned char *buf = malloc(CHUNK_BYTES);
    codec_dec *d = NULL;
    cb_err e = sink.fd < 0 ? CB_EINTERNAL : buf == NULL ? out_of_memory() : CB_EOK;
    if (e == CB_EOK)
        e = codec_dec_open(c, zipped, encrypted, fd_sink_put, &sink, &d);
    if (e == CB_EOK)
        e = feed_fd(d, fd, size, buf);
    if (e == CB_EOK)
        e = codec_dec_finish(d, out_size);
    if (e == CB_EOK)
        e = rewind_fd(sink.fd);
    codec_dec_close(d);
    free(buf);
    if (e == CB_EOK)
        *out_fd = sink.fd;
    else if (sink.fd >= 0)
        close(sink.fd);
    return e;
}

/* ---- key generation ----------------------------------------------------- */

static cb_err write_key_file(int fd, const char *path, const char *text, size_t n)
{
    cb_err e = fchmod(fd, 0600) == 0 ? write_full(fd, text, n) : CB_EINTERNAL;
    if (e == CB_EOK && fsync(fd) != 0)
        e = CB_EINTERNAL;
    if (close(fd) != 0 && e == CB_EOK)
        e = CB_EINTERNAL;
    if (e != CB_EOK)
        log_error("cannot write the key file %s: %s", path, strerror(errno));
    if (e == CB_EOK && store_sync_parent(path) != STORE_OK) /* losing the key file loses the data */
        e = CB_EINTERNAL;
    return e;
}

cb_err codec_keygen(const char *path)
{
    assert(path != NULL);
    unsigned char key[CODEC_KEY_BYTES];
    char hex[KEY_HEX_DIGITS + 2]; /* digits, newline, NUL */
    cb_err e = CB_EINTERNAL;
    if (sodium_init() < 0) {
        log_error("libsodium cannot be initialised");
        return CB_EINTERNAL;
    }
    randombytes_buf(key, sizeof(key));
    sodium_bin2hex(hex, KEY_HEX_DIGITS + 1, key, sizeof(key));
    hex[KEY_HEX_DIGITS] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_error("cannot create the key file %s: %s", path, strerror(errno));
        e = CB_EBADREQ;
        goto out;
    }
    e = write_key_file(fd, path, hex, KEY_FILE_MAX);
    if (e != CB_EOK)
        unlink(path); /* ours (O_EXCL): never leave a partial key behind */
out:
    sodium_memzero(key, sizeof(key));
    sodium_memzero(hex, sizeof(hex));
    return e;
}
