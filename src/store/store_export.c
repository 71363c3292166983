/*
 * store_export.c — the export walk (store_export.h): every BLOB record in
 * BlobId order with what links it and its plain bytes, in one READ
 * transaction.
 *
 * It reads through the copy primitives of store_backend.h (raw rows in key
 * order, in batches; picture bytes a piece at a time), so both backends
 * serve it without a primitive of its own. First the entity tables give
 * the map of links (BlobId -> entity), then the BLOB records are walked
 * and each picture is decoded by the store's codec on its way to the
 * caller's sink.
 *
 * The files of batch tasks (outputs, import inputs: store_file.c) are not
 * pictures: the BLOB table's copy rows leave them out (store_copy_def.only).
 *
 * Invariants: one batch of rows, the map of links and one piece buffer in
 * memory; nothing is written; a database error ends the walk (PostgreSQL
 * refuses every later statement of the transaction), a picture that does
 * not decode does not.
 */
#include "store/store_export.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "store/store_backend.h"
#include "store/store_copy.h"
#include "store/store_int.h"

/* The columns of the BLOB table (store_copy.c's fixed_defs order). */
enum {
    B_ID, B_DESC, B_EXTRA, B_MIME, B_CT, B_SIZE, B_ORIG, B_ZIP, B_ENC, B_CREATED, B_UPDATED,
    B_CBY, B_UBY, B_VERSION, B_INFO_VERSION, B_UNLINKED, B_NCOLS
};

typedef struct {
    int32_t blob_id, entity_id;
    int16_t kind;      /* -1: the project image library's */
    int16_t thumbnail;
} link;

typedef struct {
    store_t *s;
    store_tx *tx;
    const store_export_fns *f;
    link *links;
    size_t nlinks, cap;
    unsigned char *buf; /* one piece */
    arena_t *a;
    store_export_rec rec;
    cb_err sink_err; /* the caller's sink failed */
} walk;

static store_err link_add(walk *w, int32_t blob_id, int kind, int32_t id, bool thumb)
{
    if (blob_id == 0)
        return STORE_OK;
    if (w->nlinks == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1024;
        link *l = realloc(w->links, cap * sizeof(*l));
        if (l == NULL)
            return STORE_INTERNAL;
        w->links = l;
        w->cap = cap;
    }
    w->links[w->nlinks++] = (link){blob_id, id, (int16_t)kind, thumb};
    return STORE_OK;
}

/* The index of column name in def d, or -1. */
static int col_of(const store_copy_def *d, const char *name)
{
    for (int i = 0; i < d->ncols; i++)
        if (strcmp(d->col[i], name) == 0)
            return i;
    return -1;
}

/* Calls fn(w, row) for every row of table t, in key order, a batch at a time. */
typedef store_err (*row_fn)(walk *w, const store_copy_def *d, const store_copy_row *r, int k);

static store_err each_row(walk *w, store_copy_table t, row_fn fn, int k)
{
    const store_copy_def *d = store_copy_def_of(t);
    store_copy_row *rows = calloc(STORE_COPY_BATCH, sizeof(*rows));
    store_copy_val after = {0};
    bool first = true;
    int n = STORE_COPY_BATCH;
    store_err rc = rows == NULL ? STORE_INTERNAL : STORE_OK;
    while (rc == STORE_OK && n == STORE_COPY_BATCH) {
        arena_reset(w->a);
        rc = w->tx->be->ops->copy_next(w->tx, t, first ? NULL : &after, w->a, rows,
                                       STORE_COPY_BATCH, &n);
        for (int i = 0; rc == STORE_OK && i < n; i++)
            rc = fn(w, d, &rows[i], k);
        if (rc == STORE_OK && n > 0)
            after = (store_copy_val){.i = rows[n - 1].v[0].i}; /* the keys are ids */
        first = false;
    }
    free(rows);
    return rc;
}

static store_err entity_links(walk *w, const store_copy_def *d, const store_copy_row *r, int k)
{
    int img = col_of(d, "image_blob_id"), th = col_of(d, "thumb_blob_id");
    int32_t id = (int32_t)r->v[0].i;
    store_err rc = STORE_OK;
    if (img >= 0 && !r->v[img].null)
        rc = link_add(w, (int32_t)r->v[img].i, k, id, false);
    if (rc == STORE_OK && th >= 0 && !r->v[th].null)
        rc = link_add(w, (int32_t)r->v[th].i, k, id, true);
    return rc;
}

/* A record of the project image library: linked by no entity. */
static store_err library_links(walk *w, const store_copy_def *d, const store_copy_row *r, int k)
{
    (void)d, (void)k;
    return link_add(w, (int32_t)r->v[0].i, -1, 0, false);
}

static int link_cmp(const void *a, const void *b)
{
    const link *x = a, *y = b;
    return (x->blob_id > y->blob_id) - (x->blob_id < y->blob_id);
}

static const link *link_find(const walk *w, int32_t blob_id)
{
    link key = {.blob_id = blob_id};
    return w->nlinks ? bsearch(&key, w->links, w->nlinks, sizeof(key), link_cmp) : NULL;
}

/* ---- one record --------------------------------------------------------- */

static const char *text_of(const store_copy_val *v)
{
    return v->null || v->p == NULL ? "" : v->p;
}

static int64_t int_or(const store_copy_val *v, int64_t none)
{
    return v->null ? none : v->i;
}

/* The raw row as a store_blob_row, its users resolved into w->rec. */
static store_err record_of(walk *w, const store_copy_row *r)
{
    const store_copy_val *v = r->v;
    store_blob_row row = {
        .b = {.blob_id = (int32_t)v[B_ID].i,
              .description = text_of(&v[B_DESC]),
              .extra_info = text_of(&v[B_EXTRA]),
              .mime_type = text_of(&v[B_MIME]),
              .conceptual_type = text_of(&v[B_CT]),
              .blob_size = (int32_t)int_or(&v[B_SIZE], 0),
              .original_size = (int32_t)int_or(&v[B_ORIG], 0),
              .is_zipped = int_or(&v[B_ZIP], 0) != 0,
              .is_encrypted = int_or(&v[B_ENC], 0) != 0,
              .created_ms = int_or(&v[B_CREATED], INT64_MIN),
              .updated_ms = int_or(&v[B_UPDATED], INT64_MIN),
              .version = int_or(&v[B_VERSION], 0),
              .info_version = int_or(&v[B_INFO_VERSION], 0)},
        .created_by = (int32_t)int_or(&v[B_CBY], -1),
        .updated_by = (int32_t)int_or(&v[B_UBY], -1),
        .unlinked_ms = int_or(&v[B_UNLINKED], INT64_MIN)};
    store_export_rec *e = &w->rec;
    *e = (store_export_rec){.created_by = row.created_by,
                            .updated_by = row.updated_by,
                            .unlinked_ms = row.unlinked_ms,
                            .kind = -1};
    const link *l = link_find(w, row.b.blob_id);
    if (l != NULL && l->kind < 0)
        e->library = true;
    else if (l != NULL) {
        e->kind = l->kind;
        e->entity_id = l->entity_id;
        e->thumbnail = l->thumbnail != 0;
    }
    store_err rc = store_blob_out(w->s, w->tx, w->a, &row, &e->b);
    if (rc == STORE_OK && row.created_by < 0)
        e->b.created_by = NULL;
    if (rc == STORE_OK && row.updated_by < 0)
        e->b.updated_by = NULL;
    return rc;
}

/* The decoder's sink: the caller's, its failure remembered. */
static cb_err sink(void *ctx, const void *p, size_t n)
{
    walk *w = ctx;
    cb_err e = w->f->bytes(w->f->ctx, p, n);
    if (e != CB_EOK)
        w->sink_err = e;
    return e;
}

/* The record's stored bytes through the codec to the sink. A database
 * error is returned as it is; a decoding one as *pic. */
static store_err picture(walk *w, store_err *pic)
{
    const struct store_be_ops *ops = w->tx->be->ops;
    const model_blob *b = &w->rec.b;
    store_pic_r *r = NULL;
    codec_dec *dec = NULL;
    int64_t size = 0, plain = 0;
    store_err rc = ops->pic_read_open(w->tx, b->blob_id, &size, &r);
    cb_err e = CB_EOK;
    *pic = STORE_OK;
    w->sink_err = CB_EOK;
    if (rc == STORE_ABSENT || (rc == STORE_OK && size != b->blob_size)) {
        log_error("export: BLOB %d holds %lld bytes, its record says %d", b->blob_id,
                  (long long)size, b->blob_size);
        *pic = STORE_CORRUPT;
        rc = STORE_OK;
        goto out;
    }
    if (rc != STORE_OK)
        goto out;
    e = codec_dec_open(w->s->root->decoder, b->is_zipped, b->is_encrypted, sink, w, &dec);
    for (int64_t off = 0; e == CB_EOK && rc == STORE_OK && off < size; off += STORE_PIECE) {
        size_t n = size - off < STORE_PIECE ? (size_t)(size - off) : STORE_PIECE;
        if ((rc = ops->pic_read(r, off, w->buf, n)) == STORE_OK)
            e = codec_dec_feed(dec, w->buf, n);
    }
    if (e == CB_EOK && rc == STORE_OK)
        e = codec_dec_finish(dec, &plain);
    if (rc == STORE_OK && e == CB_EOK && plain != b->original_size) {
        log_error("export: BLOB %d decodes to %lld bytes, its record says %d", b->blob_id,
                  (long long)plain, b->original_size);
        *pic = STORE_CORRUPT;
    } else if (rc == STORE_OK && e != CB_EOK)
        *pic = w->sink_err != CB_EOK       ? (w->sink_err == CB_ENOSPACE ? STORE_NO_SPACE
                                                                         : STORE_INTERNAL)
               : e == CB_EUNAVAILABLE ? STORE_UNAVAILABLE
                                      : STORE_CORRUPT;
out:
    codec_dec_close(dec);
    if (r != NULL)
        ops->pic_read_close(r);
    return rc;
}

static store_err blob_step(walk *w, const store_copy_def *d, const store_copy_row *r, int k)
{
    (void)d;
    (void)k;
    bool want = false;
    store_err pic = STORE_OK, rc = record_of(w, r);
    if (rc == STORE_OK)
        rc = w->f->record(w->f->ctx, &w->rec, &want);
    if (rc != STORE_OK || !want || w->rec.b.blob_size <= 0)
        return rc;
    if ((rc = picture(w, &pic)) != STORE_OK)
        return rc;
    return w->f->end(w->f->ctx, &w->rec, pic);
}

static store_err walk_fn(store_tx *tx, void *ctx)
{
    walk *w = ctx;
    int64_t n = 0;
    store_err rc = STORE_OK;
    w->tx = tx;
    w->nlinks = 0;
    for (int k = 0; rc == STORE_OK && k < MODEL_KIND_COUNT; k++)
        rc = each_row(w, STORE_COPY_ENTITY + k, entity_links, k);
    if (rc == STORE_OK)
        rc = each_row(w, STORE_COPY_LIBRARY, library_links, 0);
    if (rc != STORE_OK)
        return rc;
    if (w->nlinks > 0) /* links is NULL without any: qsort wants an array */
        qsort(w->links, w->nlinks, sizeof(*w->links), link_cmp);
    if ((rc = tx->be->ops->copy_count(tx, STORE_COPY_BLOB, &n)) != STORE_OK)
        return rc;
    if (w->f->total != NULL)
        w->f->total(w->f->ctx, n);
    return each_row(w, STORE_COPY_BLOB, blob_step, 0);
}

store_err store_export_walk(store_t *s, const store_export_fns *f)
{
    _Static_assert(B_NCOLS == 16, "the BLOB table's columns (store_copy.c)");
    walk w = {.s = s, .f = f, .buf = malloc(STORE_PIECE), .a = arena_create()};
    store_err rc = STORE_INTERNAL;
    if (w.buf != NULL && w.a != NULL)
        rc = store_run(s, STORE_TX_READ, walk_fn, &w);
    free(w.links);
    free(w.buf);
    arena_destroy(w.a);
    return rc;
}
