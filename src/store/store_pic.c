/*
 * store_pic.c — the picture layer: the at-rest codec (codec.h) applied by
 * the store, so that its callers hand it plain pictures and get plain
 * bytes back.
 *
 * The content recipes live here, above store_backend.h: the writes of an
 * entity's picture, a BLOB record's bytes and a product's thumbnail, and
 * the reads of them.
 *
 * Writes: the plain upload is encoded into a spool file in the store's
 * spool directory *before* the write transaction begins (no lock is held
 * while zstd and the cipher work); the recipe then streams that file into
 * the record with pic_write_* in STORE_PIECE pieces. Lock order (R4):
 * the entity row (ent_read UPDATE), its record ensured (blob_insert +
 * ent_set_image) and read UPDATE, the bytes, the record's system fields
 * (blob_set_content, conditional on the expected version), the variants
 * of the old bytes (var_delete_stale), then a product's thumbnail, made
 * from the bytes replaced.
 *
 * Reads: inside the read transaction that found the record, its stored
 * bytes are read piece by piece (store_backend.h's pic_read_*) and, when
 * zipped or encrypted, run through the streaming decoder. The plain bytes
 * go to memory when there are at most STORE_PIC_INLINE of them (or when
 * the caller needs them whole in memory anyway), else into an unnamed
 * spool file, so that a reader of a large picture holds one piece and the
 * decoder's buffers, never the picture. The transaction ends right after.
 * An entity's picture of at most one piece comes with its record from one
 * image_read (PostgreSQL: one statement, no BEGIN/COMMIT: READ1), is
 * checked against the record as above and decoded from memory; a larger
 * one is found so and read again, record and bytes, in a READ transaction.
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
#include "core/text.h"
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

/* c encoded by s's codec into *enc (enc->fd a new spool in *efd, closed
 * by the caller; -1 when stored as given). */
static store_err pic_encode(store_t *s, const store_content *c, store_content *enc, int *efd)
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

/* Reads exactly n bytes of fd at off. */
static store_err read_at(int fd, unsigned char *buf, size_t n, int64_t off)
{
    size_t got = io_pread_full(fd, buf, n, off);
    if (got == n)
        return STORE_OK;
    char eb[128];
    log_error("store: reading image content at %lld: %s", (long long)(off + (int64_t)got),
              errno == 0 ? "file shorter than announced" : strerror_r(errno, eb, sizeof(eb)));
    return STORE_INTERNAL;
}

/* Streams [0, size) of fd into the picture being written, one piece of
 * buf at a time. */
static store_err copy_into(const struct store_be_ops *ops, store_pic_w *w, unsigned char *buf,
                           int fd, int64_t size)
{
    store_err rc = STORE_OK;
    for (int64_t off = 0; rc == STORE_OK && off < size; off += STORE_PIECE) {
        size_t n = size - off < STORE_PIECE ? (size_t)(size - off) : STORE_PIECE;
        if ((rc = read_at(fd, buf, n, off)) == STORE_OK)
            rc = ops->pic_write(w, buf, n);
    }
    return rc;
}

/* A content write's context: the call's arguments, the encoded content
 * and the record it leaves. */
typedef struct {
    store_t *s;
    arena_t *a;
    model_kind k;
    int32_t id; /* entity, BlobId or product */
    int32_t user;
    int64_t expect, now;
    const model_blob_edit *edit;
    const store_content *c; /* encoded; NULL: a record without bytes (blob_create) */
    unsigned char *buf;     /* one piece */
    model_blob out;
} put_ctx;

/* Replaces the bytes of record blob_id with p's content, then its system
 * fields when it is at version `expect` (STORE_ANY: any); *row is the
 * record as stored. NOMATCH as blob_set_content. The variants of the old
 * bytes go. */
static store_err content_put(store_tx *tx, put_ctx *p, int32_t blob_id, int64_t expect,
                             store_blob_row *row)
{
    const struct store_be_ops *ops = tx->be->ops;
    const store_content *sc = p->c;
    store_pic_w *w = NULL;
    store_err rc = ops->pic_write_open(tx, blob_id, sc->size, &w);
    if (rc == STORE_OK)
        rc = ops->pic_write_close(w, copy_into(ops, w, p->buf, sc->fd, sc->size));
    if (rc != STORE_OK)
        return rc;
    store_pic_meta m = {.mime = sc->mime_type,
                        .size = sc->size,
                        .original_size = sc->original_size,
                        .zipped = sc->is_zipped,
                        .encrypted = sc->is_encrypted};
    if ((rc = ops->blob_set_content(tx, p->a, blob_id, &m, p->user, p->now, expect, row)) !=
        STORE_OK)
        return rc;
    return ops->var_delete_stale(tx, blob_id); /* they were made from the old bytes */
}

/* content_put of record blob_id, read UPDATE first (STORE_ABSENT), and
 * the record told to the caller. */
static store_err record_put(store_tx *tx, put_ctx *p, int32_t blob_id, int64_t expect)
{
    store_blob_row row;
    store_err rc = tx->be->ops->blob_read(tx, NULL, blob_id, STORE_ROW_UPDATE, &row);
    if (rc == STORE_OK && (rc = content_put(tx, p, blob_id, expect, &row)) == STORE_NOMATCH)
        rc = store_blob_nomatch(tx, blob_id);
    return rc == STORE_OK ? store_blob_out(p->s, tx, p->a, &row, &p->out) : rc;
}

/* R4: the entity's row is locked first, the record ensured, the expect
 * checked before any byte is copied and again by the write itself; the
 * product's thumbnail goes after (it was made from the bytes replaced). */
static store_err image_put_fn(store_tx *tx, void *ctx)
{
    put_ctx *p = ctx;
    store_ent_row ent;
    store_err rc = store_image_target(tx, p->k, p->id, p->user, p->now, p->expect, true, &ent);
    if (rc == STORE_OK && (rc = record_put(tx, p, ent.image_blob_id, p->expect)) == STORE_OK)
        rc = store_thumb_drop(tx, &ent);
    return rc;
}

static store_err blob_create_fn(store_tx *tx, void *ctx)
{
    static const model_blob_edit none = {0};
    put_ctx *p = ctx;
    const struct store_be_ops *ops = tx->be->ops;
    store_blob_row row;
    int32_t blob_id;
    store_err rc = ops->blob_insert(tx, MODEL_CT_PHOTO, p->user, p->now, p->now, &blob_id);
    if (rc == STORE_OK)
        rc = ops->blob_set_info(tx, p->a, blob_id, p->edit != NULL ? p->edit : &none, p->user,
                                p->now, STORE_ANY, &row);
    if (rc == STORE_OK && p->c != NULL)
        rc = content_put(tx, p, blob_id, STORE_ANY, &row);
    if (rc == STORE_OK)
        rc = store_blob_out(p->s, tx, p->a, &row, &p->out);
    return rc == STORE_NOMATCH ? STORE_INTERNAL : rc; /* inserted just now */
}

static store_err blob_content_put_fn(store_tx *tx, void *ctx)
{
    put_ctx *p = ctx;
    store_err rc = store_not_file(tx, p->id);
    return rc == STORE_OK ? record_put(tx, p, p->id, STORE_ANY) : rc;
}

static store_err thumbnail_put_fn(store_tx *tx, void *ctx)
{
    put_ctx *p = ctx;
    int32_t blob_id;
    store_err rc = store_thumb_target(tx, p->id, p->user, p->now, &blob_id);
    return rc == STORE_OK ? record_put(tx, p, blob_id, STORE_ANY) : rc;
}

/* STORE_TOO_LARGE when the content's sizes do not fit the record's int32
 * BlobSize/OriginalSize. */
static store_err content_check(const store_content *sc)
{
    assert(sc->size >= 0);
    return sc->size > INT32_MAX || sc->original_size > INT32_MAX ? STORE_TOO_LARGE : STORE_OK;
}

/* Encodes c (when there is one) into a spool, then runs fn in a write
 * transaction; *out the record it left. */
static store_err write_content(put_ctx *p, const store_content *c, store_recipe fn, model_blob *out)
{
    store_content enc;
    int efd = -1;
    store_err rc = STORE_OK;
    model_blob_empty(out);
    p->now = text_now_ms();
    if (c != NULL && (rc = pic_encode(p->s, c, &enc, &efd)) == STORE_OK &&
        (rc = content_check(&enc)) == STORE_OK && (p->buf = malloc(STORE_PIECE)) == NULL) {
        log_error("store: no memory for a piece of picture");
        rc = STORE_INTERNAL;
    }
    p->c = c != NULL ? &enc : NULL;
    if (rc == STORE_OK)
        rc = store_run(p->s, STORE_TX_WRITE, fn, p);
    if (rc == STORE_OK)
        *out = p->out;
    free(p->buf);
    if (efd >= 0)
        close(efd);
    return rc;
}

store_err store_image_put(store_t *s, arena_t *a, model_kind k, int32_t id, const store_content *c,
                          int32_t user_id, int64_t expect, model_blob *out)
{
    assert(a != NULL && c != NULL && out != NULL);
    put_ctx p = {.s = s, .a = a, .k = k, .id = id, .user = user_id, .expect = expect};
    return write_content(&p, c, image_put_fn, out);
}

store_err store_blob_create(store_t *s, arena_t *a, const model_blob_edit *edit,
                            const store_content *c, int32_t user_id, model_blob *out)
{
    assert(a != NULL && out != NULL);
    put_ctx p = {.s = s, .a = a, .user = user_id, .edit = edit};
    return write_content(&p, c, blob_create_fn, out);
}

store_err store_blob_content_put(store_t *s, arena_t *a, int32_t blob_id, const store_content *c,
                                 int32_t user_id, model_blob *out)
{
    assert(a != NULL && c != NULL && out != NULL);
    put_ctx p = {.s = s, .a = a, .id = blob_id, .user = user_id};
    return write_content(&p, c, blob_content_put_fn, out);
}

store_err store_thumbnail_put(store_t *s, arena_t *a, int32_t product_id, const store_content *c,
                              int32_t user_id, model_blob *out)
{
    assert(a != NULL && c != NULL && out != NULL);
    put_ctx p = {.s = s, .a = a, .id = product_id, .user = user_id};
    return write_content(&p, c, thumbnail_put_fn, out);
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

/* The bytes of record b (read in tx), plain, into d. */
static store_err pic_fill(pic_dst *d, store_tx *tx, const model_blob *b)
{
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

/* The plain bytes of record b from `stored`, its n stored bytes (taken:
 * handed on as d's memory when plain, else freed), into d. */
static store_err pic_fill_mem(pic_dst *d, const model_blob *b, void *stored, size_t n)
{
    bool coded = b->is_zipped || b->is_encrypted;
    store_err rc = STORE_OK;
    cb_err e = CB_EOK;
    codec_dec *dec = NULL;
    if ((int64_t)n != b->blob_size || b->original_size < 0 ||
        (!coded && (size_t)b->original_size != n)) {
        log_error("store: BLOB %d holds %zu bytes, its record says %d (served: %d)", b->blob_id, n,
                  b->blob_size, b->original_size);
        rc = STORE_CORRUPT;
    } else if (!coded && (!d->may_spool || n <= STORE_PIC_INLINE)) {
        *d = (pic_dst){
            .s = d->s, .may_spool = d->may_spool, .mem = stored, .fd = -1, .len = n, .want = n};
        return STORE_OK;
    }
    if (rc == STORE_OK)
        rc = dst_open(d, (size_t)b->original_size);
    if (rc == STORE_OK && coded)
        e = codec_dec_open(d->s->root->decoder, b->is_zipped, b->is_encrypted, dst_put, d, &dec);
    if (rc == STORE_OK && e == CB_EOK)
        e = coded ? codec_dec_feed(dec, stored, n) : dst_put(d, stored, n);
    if (rc == STORE_OK && e == CB_EOK && coded)
        e = codec_dec_finish(dec, NULL);
    codec_dec_close(dec);
    free(stored);
    if (rc == STORE_OK && e != CB_EOK)
        rc = coded ? decode_err(e) : e == CB_ENOSPACE ? STORE_NO_SPACE : STORE_INTERNAL;
    if (rc == STORE_OK && d->len != d->want) {
        log_error("store: BLOB %d decodes to %zu bytes, its record says %zu", b->blob_id, d->len,
                  d->want);
        rc = STORE_CORRUPT;
    }
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

/* A read's context: the call's arguments, where the bytes go and the
 * record found. */
typedef struct {
    store_t *s;
    arena_t *a;
    model_kind k;
    int32_t id; /* entity, BlobId or product */
    pic_dst d;
    model_blob out;
    bool big; /* image_get1_fn: more than one piece, left to image_get_fn */
} get_ctx;

/* The bytes of the record found (g->out): STORE_ABSENT when there is no
 * record (blob_id 0) or it holds none. */
static store_err record_bytes(store_tx *tx, get_ctx *g)
{
    if (g->out.blob_id == 0 || g->out.blob_size == 0)
        return STORE_ABSENT;
    return pic_fill(&g->d, tx, &g->out);
}

static store_err image_get_fn(store_tx *tx, void *ctx)
{
    get_ctx *g = ctx;
    dst_drop(&g->d); /* an earlier run's */
    store_err rc = store_image_record(g->s, tx, g->a, g->k, g->id, &g->out);
    return rc == STORE_OK ? record_bytes(tx, g) : rc;
}

/* A picture of at most one piece, from one image_read (one statement on
 * PostgreSQL, so READ1); a larger one is only found (g->big). */
static store_err image_get1_fn(store_tx *tx, void *ctx)
{
    get_ctx *g = ctx;
    store_image_row row;
    dst_drop(&g->d);
    g->big = false;
    store_err rc = tx->be->ops->image_read(tx, g->a, g->k, g->id, true, &row);
    if (rc == STORE_OK)
        rc = store_image_row_out(g->s, tx, g->a, &row, &g->out);
    if (rc == STORE_OK && (g->out.blob_id == 0 || g->out.blob_size == 0))
        rc = STORE_ABSENT;
    else if (rc == STORE_OK && g->out.blob_size > STORE_PIECE)
        g->big = true;
    else if (rc == STORE_OK && !row.has_bytes) {
        log_error("store: BLOB %d holds no bytes, its record says %d", g->out.blob_id,
                  g->out.blob_size);
        rc = STORE_CORRUPT;
    } else if (rc == STORE_OK) {
        rc = pic_fill_mem(&g->d, &g->out, row.bytes, row.len);
        row.bytes = NULL; /* taken */
    }
    free(row.bytes);
    return rc;
}

static store_err blob_get_fn(store_tx *tx, void *ctx)
{
    get_ctx *g = ctx;
    dst_drop(&g->d);
    model_blob_empty(&g->out); /* blob_id 0 when there is no record */
    store_err rc = store_blob_record(g->s, tx, g->a, g->id, false, &g->out);
    return rc == STORE_OK ? record_bytes(tx, g) : rc;
}

static store_err thumb_get_fn(store_tx *tx, void *ctx)
{
    get_ctx *g = ctx;
    store_ent_row ent;
    dst_drop(&g->d);
    model_blob_empty(&g->out);
    store_err rc = tx->be->ops->ent_read(tx, NULL, MODEL_PRODUCT, g->id, STORE_ROW_PLAIN, &ent);
    if (rc == STORE_OK && ent.thumb_blob_id != 0)
        rc = store_blob_record(g->s, tx, g->a, ent.thumb_blob_id, true, &g->out);
    return rc == STORE_OK ? record_bytes(tx, g) : rc;
}

/* Runs read recipe fn over g in one transaction of mode m (READ, or
 * READ1 for image_get1_fn): *out the record it found (also when it holds
 * no bytes), *v its plain bytes. */
static store_err read_run_in(get_ctx *g, store_tx_mode m, store_recipe fn, bool may_spool,
                             model_blob *out, store_pic_view *v)
{
    g->d = (pic_dst){.s = g->s, .may_spool = may_spool, .fd = -1};
    model_blob_empty(&g->out);
    *v = (store_pic_view){.fd = -1, .rel = {nothing_release, NULL}};
    store_err rc = store_run(g->s, m, fn, g);
    *out = g->out;
    if (rc != STORE_OK) { /* also a COMMIT that failed after the bytes were read */
        dst_drop(&g->d);
        return rc;
    }
    v->len = g->d.len;
    if (g->d.mem != NULL) {
        v->bytes = g->d.mem;
        v->rel = (store_release){free, g->d.mem};
    } else {
        v->fd = g->d.fd;
        v->rel = (store_release){fd_release, (void *)(intptr_t)g->d.fd};
    }
    return STORE_OK;
}

static store_err read_run(get_ctx *g, store_recipe fn, bool may_spool, model_blob *out,
                          store_pic_view *v)
{
    return read_run_in(g, STORE_TX_READ, fn, may_spool, out, v);
}

/* A picture of one piece is one image_read; a larger one is read again,
 * record and bytes, in one READ transaction. */
store_err store_pic_image_read(store_t *s, arena_t *a, model_kind k, int32_t id, bool may_spool,
                               model_blob *out, store_pic_view *v)
{
    get_ctx g = {.s = s, .a = a, .k = k, .id = id};
    store_err rc = read_run_in(&g, STORE_TX_READ1, image_get1_fn, may_spool, out, v);
    if (rc == STORE_OK && g.big)
        rc = read_run(&g, image_get_fn, may_spool, out, v);
    return rc;
}

store_err store_pic_view_take(store_err rc, store_pic_view *v, void **bytes, size_t *len)
{
    *bytes = NULL;
    *len = rc == STORE_OK ? v->len : 0;
    assert(rc != STORE_OK || v->fd < 0);
    if (rc != STORE_OK)
        return rc;
    if (v->rel.release == free) {
        *bytes = v->rel.cls;
        return rc;
    }
    if ((*bytes = malloc(v->len > 0 ? v->len : 1)) == NULL)
        rc = STORE_INTERNAL;
    if (*bytes != NULL)
        memcpy(*bytes, v->bytes, v->len);
    v->rel.release(v->rel.cls);
    return rc;
}

store_err store_blob_content_get(store_t *s, arena_t *a, int32_t blob_id, model_blob *out,
                                 void **bytes, size_t *len)
{
    assert(a != NULL && out != NULL && bytes != NULL && len != NULL);
    store_pic_view v;
    get_ctx g = {.s = s, .a = a, .id = blob_id};
    store_err rc = read_run(&g, blob_get_fn, false, out, &v);
    return store_pic_view_take(rc, &v, bytes, len);
}

store_err store_thumbnail_get(store_t *s, arena_t *a, int32_t product_id, model_blob *out,
                              void **bytes, size_t *len)
{
    assert(a != NULL && out != NULL && bytes != NULL && len != NULL);
    store_pic_view v;
    get_ctx g = {.s = s, .a = a, .id = product_id};
    store_err rc = read_run(&g, thumb_get_fn, false, out, &v);
    return store_pic_view_take(rc, &v, bytes, len);
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

/* ---- the rewrite walk (rekey) -----------------------------------------------
 * One BLOB and its variants per write transaction, so that readers and
 * writers get their turn between BLOBs: blob_next_stored, the record read
 * UPDATE, its bytes read whole (pic_read_*), passed through fn, written
 * back (pic_write_*) with blob_set_stored; then its variants (var_next,
 * var_set_stored). fn runs inside that transaction: it must not call the
 * store. */

/* fn's replacement of a stored value; bytes NULL: keep it. */
typedef struct {
    void *bytes;
    size_t len;
    bool zipped, encrypted;
} rewritten;

typedef struct {
    store_rewrite_fn fn;
    void *ctx;
    arena_t *a;
    int32_t after, id; /* the last BLOB done; the one of this run */
    bool done, changed;
} walk_ctx;

/* Passes a stored value (its is_zipped, is_encrypted) through w->fn. */
static store_err walk_apply(walk_ctx *w, const void *in, size_t len, bool zipped, bool encrypted,
                            rewritten *out)
{
    *out = (rewritten){0};
    store_err rc = w->fn(w->ctx, in != NULL ? in : "", len, zipped, encrypted, &out->bytes,
                         &out->len, &out->zipped, &out->encrypted);
    if (rc == STORE_OK && out->bytes != NULL && out->len > INT32_MAX)
        rc = STORE_TOO_LARGE; /* blob_size is an int32 */
    if (rc != STORE_OK) {
        free(out->bytes);
        out->bytes = NULL;
    }
    return rc;
}

/* The stored bytes of BLOB id, whole, into *buf (malloc'd). */
static store_err stored_read(store_tx *tx, int32_t id, unsigned char **buf, int64_t *size)
{
    const struct store_be_ops *ops = tx->be->ops;
    store_pic_r *r = NULL;
    *buf = NULL;
    store_err rc = ops->pic_read_open(tx, id, size, &r);
    if (rc == STORE_ABSENT) {
        log_error("store: BLOB %d has a size but no bytes", id); /* see the invariants */
        return STORE_INTERNAL;
    }
    if (rc != STORE_OK)
        return rc;
    if ((*buf = malloc(*size > 0 ? (size_t)*size : 1)) == NULL) {
        log_error("store: no memory for %lld picture bytes", (long long)*size);
        rc = STORE_INTERNAL;
    }
    for (int64_t off = 0; rc == STORE_OK && off < *size; off += STORE_PIECE) {
        size_t n = *size - off < STORE_PIECE ? (size_t)(*size - off) : STORE_PIECE;
        rc = ops->pic_read(r, off, *buf + off, n);
    }
    ops->pic_read_close(r);
    return rc;
}

/* Replaces the stored bytes of BLOB id with v, in pieces. */
static store_err stored_write(store_tx *tx, int32_t id, const rewritten *v)
{
    const struct store_be_ops *ops = tx->be->ops;
    const unsigned char *p = v->bytes;
    store_pic_w *w = NULL;
    store_err rc = ops->pic_write_open(tx, id, (int64_t)v->len, &w);
    if (rc != STORE_OK)
        return rc;
    store_err wrc = STORE_OK;
    for (size_t off = 0; wrc == STORE_OK && off < v->len; off += STORE_PIECE) {
        size_t n = v->len - off < STORE_PIECE ? v->len - off : STORE_PIECE;
        wrc = ops->pic_write(w, p + off, n);
    }
    rc = ops->pic_write_close(w, wrc);
    if (rc == STORE_OK)
        rc = ops->blob_set_stored(tx, id, (int64_t)v->len, v->zipped, v->encrypted);
    return rc == STORE_NOMATCH ? STORE_INTERNAL : rc; /* the row is locked */
}

/* Rewrites the bytes of BLOB w->id; w->changed when fn replaced them. */
static store_err walk_blob(store_tx *tx, walk_ctx *w)
{
    store_blob_row row;
    unsigned char *buf = NULL;
    int64_t size = 0;
    rewritten v = {0};
    store_err rc = tx->be->ops->blob_read(tx, NULL, w->id, STORE_ROW_UPDATE, &row);
    if (rc == STORE_OK && (rc = stored_read(tx, w->id, &buf, &size)) == STORE_OK)
        rc = walk_apply(w, buf, (size_t)size, row.b.is_zipped, row.b.is_encrypted, &v);
    free(buf);
    if (rc == STORE_OK && v.bytes != NULL && (rc = stored_write(tx, w->id, &v)) == STORE_OK)
        w->changed = true;
    free(v.bytes);
    return rc;
}

/* Rewrites every variant of BLOB w->id, in id order. */
static store_err walk_variants(store_tx *tx, walk_ctx *w)
{
    const struct store_be_ops *ops = tx->be->ops;
    int64_t vid = 0;
    store_err rc = STORE_OK;
    while (rc == STORE_OK) {
        rewritten r = {0};
        void *in = NULL;
        size_t len = 0;
        bool zipped = false, encrypted = false;
        arena_reset(w->a);
        rc = ops->var_next(tx, w->a, w->id, vid, &vid, &in, &len, &zipped, &encrypted);
        if (rc == STORE_OK && (rc = walk_apply(w, in, len, zipped, encrypted, &r)) == STORE_OK &&
            r.bytes != NULL)
            rc = ops->var_set_stored(tx, vid, r.bytes, r.len, r.zipped, r.encrypted);
        free(r.bytes);
    }
    return rc == STORE_ABSENT ? STORE_OK : rc; /* past the last one */
}

/* The recipe of one step: the BLOB after w->after and its variants. */
static store_err walk_step(store_tx *tx, void *ctx)
{
    walk_ctx *w = ctx;
    w->changed = w->done = false;
    store_err rc = tx->be->ops->blob_next_stored(tx, w->after, &w->id);
    if (rc == STORE_ABSENT) {
        w->done = true;
        return STORE_OK;
    }
    if (rc == STORE_OK && (rc = walk_blob(tx, w)) == STORE_OK)
        rc = walk_variants(tx, w);
    return rc;
}

store_err store_rewrite_all(store_t *s, store_rewrite_fn fn, void *ctx, int64_t *count)
{
    assert(fn != NULL && count != NULL);
    walk_ctx w = {.fn = fn, .ctx = ctx, .a = arena_create()};
    store_err rc = STORE_OK;
    *count = 0;
    while (rc == STORE_OK && !w.done) {
        rc = store_run(s, STORE_TX_WRITE, walk_step, &w);
        if (rc == STORE_OK && w.changed)
            (*count)++;
        w.after = w.id;
    }
    arena_destroy(w.a);
    return rc;
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
    if (how->stop != NULL && how->stop(how->ctx))
        return STORE_UNAVAILABLE;
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
