/*
 * store_pic.c — the picture layer: the at-rest codec (codec.h) applied by
 * the store, so that its callers hand it plain pictures and get plain
 * bytes back.
 *
 * Writes: the plain upload is encoded into a spool file in the store's
 * spool directory *before* the write transaction begins (no lock is held
 * while zstd and the cipher work); the backend then streams that file
 * into the record in STORE_PIECE pieces.
 *
 * Reads: inside the read transaction that found the record, its stored
 * bytes are read piece by piece (store_backend.h's pic_read_*) and, when
 * zipped or encrypted, run through the streaming decoder. The plain bytes
 * go to memory when there are at most STORE_PIC_INLINE of them (or when
 * the caller needs them whole in memory anyway), else into an unnamed
 * spool file, so that a reader of a large picture holds one piece and the
 * decoder's buffers, never the picture. The transaction ends right after.
 *
 * Variants are small and whole: encoded and decoded in memory around the
 * backend's variant calls. store_recode_all (rekey) decodes every stored
 * value with the old key (or the new one, for what an interrupted run
 * already did) and encodes it with the new one, over store_rewrite_all.
 *
 * Invariants: a view handed out holds exactly the record's OriginalSize
 * plain bytes (BlobSize stored ones were read: anything else is
 * STORE_CORRUPT); on any error nothing is handed out (no memory, no fd).
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/io.h"
#include "core/log.h"
#include "store/store_backend.h"
#include "store/store_int.h"

/* ---- writes ---------------------------------------------------------------- */

static store_err encode_err(cb_err e)
{
    switch (e) {
    case CB_ETOOLARGE:
        return STORE_TOO_LARGE;
    case CB_ENOSPACE:
        return STORE_NO_SPACE;
    default:
        return STORE_INTERNAL; /* logged by the codec */
    }
}

store_err store_pic_encode(store_t *s, const store_content *c, store_content *enc, int *efd)
{
    assert(c != NULL && enc != NULL && efd != NULL && c->size >= 0);
    const codec_t *codec = s->root->codec;
    int64_t size = c->size;
    *efd = -1;
    *enc = *c;
    enc->original_size = c->size;
    enc->is_zipped = enc->is_encrypted = false;
    if (codec == NULL || c->size > INT32_MAX) /* too large: the backend says so */
        return STORE_OK;
    cb_err e = codec_encode_fd(codec, c->fd, c->size, s->root->spool_dir, efd, &size,
                               &enc->is_zipped, &enc->is_encrypted);
    if (e != CB_EOK)
        return encode_err(e);
    if (*efd >= 0) {
        enc->fd = *efd;
        enc->size = size;
    }
    return STORE_OK;
}

/* ---- reads ----------------------------------------------------------------- */

/* Where a read's plain bytes go: memory of exactly `want` bytes, or a
 * spool file. */
typedef struct {
    store_t *s;
    bool may_spool;
    unsigned char *mem; /* NULL: to fd */
    int fd;
    size_t len, want;
} pic_dst;

static store_err dst_open(pic_dst *d, size_t want)
{
    d->want = want;
    d->len = 0;
    if (!d->may_spool || want <= STORE_PIC_INLINE) {
        if ((d->mem = malloc(want > 0 ? want : 1)) != NULL)
            return STORE_OK;
        log_error("store: no memory for a picture of %zu bytes", want);
        return STORE_INTERNAL;
    }
    d->fd = io_open_tmp(d->s->root->spool_dir);
    return d->fd >= 0 ? STORE_OK : errno == ENOSPC ? STORE_NO_SPACE : STORE_INTERNAL;
}

static void dst_drop(pic_dst *d)
{
    free(d->mem);
    d->mem = NULL;
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
}

/* The decoder's sink: never more than the record's OriginalSize. */
static cb_err dst_put(void *ctx, const void *p, size_t n)
{
    pic_dst *d = ctx;
    if (n > d->want - d->len) {
        log_error("store: picture bytes decode to more than OriginalSize (%zu)", d->want);
        return CB_EINTERNAL;
    }
    if (d->mem != NULL)
        memcpy(d->mem + d->len, p, n);
    else if (io_write_full(d->fd, p, n) != 0) {
        log_error("store: cannot spool a picture: %s", strerror(errno));
        return errno == ENOSPC || errno == EDQUOT ? CB_ENOSPACE : CB_EINTERNAL;
    }
    d->len += n;
    return CB_EOK;
}

static store_err decode_err(cb_err e)
{
    switch (e) {
    case CB_ENOSPACE:
        return STORE_NO_SPACE;
    case CB_EUNAVAILABLE: /* encrypted, and no key given */
        return STORE_UNAVAILABLE;
    default:
        return STORE_CORRUPT; /* damaged, or another key's: logged */
    }
}

/* Copies stored bytes as they are: straight into memory, or through one
 * piece of buf into the spool. */
static store_err copy_plain(const struct store_be_ops *ops, store_pic_r *r, int64_t size,
                            pic_dst *d, unsigned char *buf)
{
    store_err rc = STORE_OK;
    for (int64_t off = 0; rc == STORE_OK && off < size; off += STORE_PIECE) {
        size_t n = size - off < STORE_PIECE ? (size_t)(size - off) : STORE_PIECE;
        rc = ops->pic_read(r, off, d->mem != NULL ? d->mem + off : buf, n);
        cb_err e = rc == STORE_OK && d->mem == NULL ? dst_put(d, buf, n) : CB_EOK;
        if (e != CB_EOK)
            rc = e == CB_ENOSPACE ? STORE_NO_SPACE : STORE_INTERNAL;
        else if (rc == STORE_OK && d->mem != NULL)
            d->len += n;
    }
    return rc;
}

/* Feeds the stored bytes, piece by piece through buf, to the decoder. */
static store_err copy_decoded(const struct store_be_ops *ops, store_pic_r *r, int64_t size,
                              const model_blob *b, pic_dst *d, unsigned char *buf)
{
    codec_dec *dec = NULL;
    store_err rc = STORE_OK;
    cb_err e = codec_dec_open(d->s->root->decoder, b->is_zipped, b->is_encrypted, dst_put, d,
                              &dec);
    for (int64_t off = 0; e == CB_EOK && rc == STORE_OK && off < size; off += STORE_PIECE) {
        size_t n = size - off < STORE_PIECE ? (size_t)(size - off) : STORE_PIECE;
        if ((rc = ops->pic_read(r, off, buf, n)) == STORE_OK)
            e = codec_dec_feed(dec, buf, n);
    }
    if (e == CB_EOK && rc == STORE_OK)
        e = codec_dec_finish(dec, NULL);
    codec_dec_close(dec);
    return rc != STORE_OK ? rc : e != CB_EOK ? decode_err(e) : STORE_OK;
}

/* store_pic_fill_fn: the record's bytes, plain, into the pic_dst ctx. */
static store_err pic_fill(void *ctx, store_tx *tx, const model_blob *b)
{
    pic_dst *d = ctx;
    const struct store_be_ops *ops = d->s->root->be->ops;
    bool coded = b->is_zipped || b->is_encrypted;
    store_pic_r *r = NULL;
    unsigned char *buf = NULL;
    int64_t size = 0;
    store_err rc = ops->pic_read_open(tx, b->blob_id, &size, &r);
    if (rc == STORE_ABSENT || (rc == STORE_OK && size != b->blob_size) ||
        (rc == STORE_OK && b->original_size < 0) ||
        (rc == STORE_OK && !coded && b->original_size != size)) {
        log_error("store: BLOB %d holds %lld bytes, its record says %d (served: %d)", b->blob_id,
                  (long long)size, b->blob_size, b->original_size);
        rc = STORE_CORRUPT;
    }
    if (rc == STORE_OK)
        rc = dst_open(d, (size_t)b->original_size);
    if (rc == STORE_OK && (coded || d->mem == NULL) &&
        (buf = malloc(size < STORE_PIECE ? (size_t)size + 1 : STORE_PIECE)) == NULL)
        rc = STORE_INTERNAL;
    if (rc == STORE_OK)
        rc = coded ? copy_decoded(ops, r, size, b, d, buf) : copy_plain(ops, r, size, d, buf);
    if (rc == STORE_OK && d->len != d->want) {
        log_error("store: BLOB %d decodes to %zu bytes, its record says %zu", b->blob_id, d->len,
                  d->want);
        rc = STORE_CORRUPT;
    }
    if (r != NULL)
        ops->pic_read_close(r);
    free(buf);
    if (rc != STORE_OK)
        dst_drop(d);
    return rc;
}

static void fd_release(void *cls)
{
    close((int)(intptr_t)cls);
}

static void nothing_release(void *cls)
{
    (void)cls;
}

store_err store_pic_read(store_t *s, store_pic_get_fn get, void *args, bool may_spool,
                         model_blob *out, store_pic_view *v)
{
    pic_dst d = {.s = s, .may_spool = may_spool, .fd = -1};
    *v = (store_pic_view){.fd = -1, .rel = {nothing_release, NULL}};
    store_err rc = get(args, out, pic_fill, &d);
    if (rc != STORE_OK) { /* also a COMMIT that failed after the bytes were read */
        dst_drop(&d);
        return rc;
    }
    v->len = d.len;
    if (d.mem != NULL) {
        v->bytes = d.mem;
        v->rel = (store_release){free, d.mem};
    } else {
        v->fd = d.fd;
        v->rel = (store_release){fd_release, (void *)(intptr_t)d.fd};
    }
    return STORE_OK;
}

/* ---- variants (small: whole values in memory) ------------------------------ */

store_err store_pic_variant_encode(store_t *s, const store_variant_meta *in, const void *bytes,
                                   size_t len, store_variant_meta *out, void **enc,
                                   size_t *enc_len)
{
    const codec_t *codec = s->root->codec;
    *out = *in;
    out->original_size = (int64_t)len;
    out->is_zipped = out->is_encrypted = false;
    *enc = NULL;
    *enc_len = len;
    if (codec == NULL)
        return STORE_OK;
    cb_err e = codec_encode(codec, bytes, len, enc, enc_len, &out->is_zipped, &out->is_encrypted);
    return e == CB_EOK ? STORE_OK : encode_err(e);
}

store_err store_pic_variant_decode(store_t *s, const store_variant_meta *m, void *stored,
                                   size_t n, void **bytes, size_t *len)
{
    *bytes = NULL;
    *len = 0;
    if (!m->is_zipped && !m->is_encrypted) {
        *bytes = stored;
        *len = n;
        return STORE_OK;
    }
    cb_err e = codec_decode(s->root->decoder, stored, n, m->is_zipped, m->is_encrypted, bytes, len);
    free(stored);
    return e == CB_EOK ? STORE_OK : decode_err(e);
}

/* ---- re-encoding (rekey) ----------------------------------------------------- */

/* Decodes with the old key, or (a run interrupted earlier) the new one. */
static cb_err recode_decode(const store_recode *how, const void *in, size_t len, bool zipped,
                            bool encrypted, void **out, size_t *out_len)
{
    if (!zipped && !encrypted) {
        if ((*out = malloc(len ? len : 1)) == NULL)
            return CB_EINTERNAL;
        memcpy(*out, in, len);
        *out_len = len;
        return CB_EOK;
    }
    cb_err e = CB_EUNAVAILABLE;
    if (how->old != NULL)
        e = codec_decode(how->old, in, len, zipped, encrypted, out, out_len);
    if (e != CB_EOK && how->new_ != NULL)
        e = codec_decode(how->new_, in, len, zipped, encrypted, out, out_len);
    return e;
}

/* What a codec failure means for one value: a full disk or our own
 * failure as such; bytes that decode with neither key are not what the
 * store should hold. */
static store_err recode_err(cb_err e)
{
    switch (e) {
    case CB_EOK:
        return STORE_OK;
    case CB_ENOSPACE:
        return STORE_NO_SPACE;
    case CB_ETOOLARGE:
        return STORE_TOO_LARGE;
    case CB_EINTERNAL:
        return STORE_INTERNAL;
    default:
        return STORE_CORRUPT;
    }
}

/* store_rewrite_fn: one stored value, decoded and encoded again. */
static store_err recode_one(void *ctx, const void *in, size_t len, bool zipped, bool encrypted,
                            void **out, size_t *out_len, bool *out_zipped, bool *out_encrypted)
{
    const store_recode *how = ctx;
    void *plain = NULL;
    size_t plain_len = 0;
    if (how->progress != NULL)
        how->progress(how->ctx, (int64_t)len);
    cb_err e = recode_decode(how, in, len, zipped, encrypted, &plain, &plain_len);
    if (e != CB_EOK)
        return recode_err(e);
    *out_zipped = *out_encrypted = false;
    *out = NULL;
    const codec_t *enc = zipped ? how->new_z : how->new_; /* compression stays where it was */
    if (enc != NULL)
        e = codec_encode(enc, plain, plain_len, out, out_len, out_zipped, out_encrypted);
    if (e == CB_EOK && *out == NULL) { /* kept as it is */
        *out = plain;
        *out_len = plain_len;
        plain = NULL;
    }
    free(plain);
    return recode_err(e);
}

store_err store_recode_all(store_t *s, const store_recode *how, int64_t *count)
{
    assert(how != NULL && how->new_z != NULL && count != NULL);
    return store_rewrite_all(s, recode_one, (void *)how, count);
}
