/*
 * store_copy.c — moving a data set between databases (store_copy.h): the
 * tables' column lists every backend's copy primitives are generated
 * from, the copy recipe and the verification pass.
 *
 * The copy works at the backend level (store_backend.h's "copying a data
 * set" section): raw rows in key order, in batches, and picture bytes a
 * piece at a time, from one READ transaction of the source into one WRITE
 * transaction of the target. Tables go in the order their references
 * need (users before credentials, BLOB records before the entities that
 * link them, a referenced entity kind before the kinds referring to it).
 *
 * Invariants: memory is two batches of rows (STORE_COPY_BATCH each, in two
 * arenas that take turns, so the last key read survives the next batch)
 * and one piece buffer, whatever the data set; the source is never
 * written; a failure anywhere ends the target's transaction without a
 * COMMIT.
 */
#include "store/store_copy.h"

#include <assert.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "core/arena.h"
#include "core/log.h"
#include "store/store_backend.h"
#include "store/store_int.h"
#include "store/store_pgmod.h"

_Static_assert(STORE_COPY_NTABLES == STORE_COPY_TABLES, "store_copy.h counts every table");

/* ---- the tables --------------------------------------------------------- */

static store_copy_def defs[STORE_COPY_TABLES];
static pthread_once_t defs_once = PTHREAD_ONCE_INIT;

#define I STORE_COL_INT
#define T STORE_COL_TEXT
#define B STORE_COL_BYTES

static const store_copy_def fixed_defs[] = {
    [STORE_COPY_USERS] = {"users",
                          7,
                          {"id", "name", "full_name", "role", "disabled", "pw_hash", "created_ms"},
                          {I, T, T, I, I, T, I},
                          true,
                          NULL},
    [STORE_COPY_CRED] = {"cred",
                         10,
                         {"id", "kind", "hash", "user_id", "created_ms", "expires_ms", "revoked",
                          "xsrf_hash", "label", "pair_id"},
                         {I, I, B, I, I, I, I, B, T, I},
                         true,
                         NULL},
    [STORE_COPY_APP] =
        {"app", 5, {"id", "name", "hash", "created_ms", "revoked"}, {I, T, B, I, I}, true, NULL},
    [STORE_COPY_META] = {"meta", 2, {"name", "value"}, {T, B}, false, NULL},
    [STORE_COPY_BLOB] = {"blob",
                         16,
                         {"id", "description", "extra_info", "mime_type", "conceptual_type",
                          "blob_size", "original_size", "is_zipped", "is_encrypted", "created_ms",
                          "updated_ms", "created_by", "updated_by", "version", "info_version",
                          "unlinked_ms"},
                         {I, T, T, T, T, I, I, I, I, I, I, I, I, I, I, I},
                         true,
                         "NOT EXISTS (SELECT 1 FROM batch_file f WHERE f.blob_id = blob.id)"},
    [STORE_COPY_LIBRARY] = {"project_library", 2, {"blob_id", "added_ms"}, {I, I}, false, NULL},
};

/* id, the descriptor's fields, the links, version and change time. */
static void entity_def(model_kind k, store_copy_def *d)
{
    const model_entity_def *m = model_entity(k);
    int n = 0;
    d->name = m->table;
    d->col[n] = "id";
    d->kind[n++] = I;
    for (int i = 0; i < m->nfields; i++) {
        d->col[n] = m->fields[i].column;
        d->kind[n++] = m->fields[i].type == MODEL_FT_STRING ? T : I;
    }
    static const char *const tail[] = {"image_blob_id", "version", "updated_ms"};
    for (size_t i = 0; i < sizeof(tail) / sizeof(tail[0]); i++) {
        d->col[n] = tail[i];
        d->kind[n++] = I;
    }
    if (k == MODEL_PRODUCT) { /* thumbnails are products' alone (schema v5) */
        d->col[n] = "thumb_blob_id";
        d->kind[n++] = I;
    }
    d->ncols = n;
}

#undef I
#undef T
#undef B

static void defs_make(void)
{
    memcpy(defs, fixed_defs, sizeof(fixed_defs));
    for (int k = 0; k < MODEL_KIND_COUNT; k++)
        entity_def((model_kind)k, &defs[STORE_COPY_ENTITY + k]);
}

const store_copy_def *store_copy_def_of(store_copy_table t)
{
    assert(t >= 0 && t < STORE_COPY_TABLES);
    pthread_once(&defs_once, defs_make);
    return &defs[t];
}

const char *store_copy_table_name(int t)
{
    static const char *const names[] = {"users",        "credentials",  "partner apps",
                                        "metadata",     "BLOB records", "project image library"};
    assert(t >= 0 && t < STORE_COPY_TABLES);
    return t < STORE_COPY_ENTITY ? names[t]
                                 : model_entity((model_kind)(t - STORE_COPY_ENTITY))->name;
}

/* The tables in the order their references need: accounts, BLOB records,
 * then entity kinds, each after the kinds it refers to. */
static int table_order(store_copy_table out[STORE_COPY_TABLES])
{
    bool placed[MODEL_KIND_COUNT] = {false};
    int n = 0;
    for (int t = 0; t < STORE_COPY_ENTITY; t++)
        out[n++] = (store_copy_table)t;
    for (int round = 0; round < MODEL_KIND_COUNT; round++)
        for (int k = 0; k < MODEL_KIND_COUNT; k++) {
            const model_entity_def *m = model_entity((model_kind)k);
            bool ready = !placed[k];
            for (int i = 0; i < m->nfields && ready; i++)
                if (m->fields[i].ref >= 0 && m->fields[i].ref != k && !placed[m->fields[i].ref])
                    ready = false;
            if (ready) {
                placed[k] = true;
                out[n++] = (store_copy_table)(STORE_COPY_ENTITY + k);
            }
        }
    assert(n == STORE_COPY_TABLES); /* the model's references have no cycle */
    return n;
}

/* ---- the two ends ------------------------------------------------------- */

struct store_copy_end {
    store_t *st;  /* SQLite: the store that embeds be */
    store_be *be; /* what the copy drives */
    char desc[256];
};

/* A PostgreSQL source must hold a crmblob schema already: opening the
 * backend would otherwise create one in it (a source is never written). */
static store_err pg_source_exists(const store_pgmod *pg, const char *where, const char *desc)
{
    int version = 0;
    store_err rc = pg->schema_version(where, &version);
    if (rc == STORE_OK && version == 0) {
        log_error("no crmblob data set in %s", desc);
        return STORE_ABSENT;
    }
    return rc;
}

static store_err end_backend(store_copy_end *e, const char *where, bool target)
{
    store_err rc = STORE_OK;
    if (store_pgmod_is_pg(where)) {
        const store_pgmod *pg = store_pgmod_get();
        if (pg == NULL)
            return STORE_INTERNAL;
        if (!target && (rc = pg_source_exists(pg, where, e->desc)) != STORE_OK)
            return rc;
        return pg->open(where, &(store_options){.pool_size = 2}, &e->be);
    }
    if (!target && access(where, F_OK) != 0) {
        log_error("no database at %s", where);
        return STORE_ABSENT;
    }
    if ((rc = store_open(where, NULL, &e->st)) == STORE_OK)
        e->be = e->st->be;
    return rc;
}

store_err store_copy_open(const char *where, bool target, store_copy_end **out)
{
    *out = NULL;
    store_copy_end *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return STORE_INTERNAL;
    store_describe(where, e->desc, sizeof(e->desc));
    store_err rc = end_backend(e, where, target);
    if (rc == STORE_OK)
        rc = e->be->ops->hold(e->be, target ? STORE_HOLD_EXCLUSIVE : STORE_HOLD_SERVE);
    if (rc != STORE_OK) {
        store_copy_close(e);
        return rc;
    }
    *out = e;
    return STORE_OK;
}

store_be *store_copy_be(store_copy_end *e)
{
    return e->be;
}

const char *store_copy_desc(store_copy_end *e)
{
    return e->desc;
}

void store_copy_close(store_copy_end *e)
{
    if (e == NULL)
        return;
    if (e->st != NULL)
        store_close(e->st);
    else if (e->be != NULL)
        e->be->ops->close(e->be);
    free(e);
}

/* ---- walking a table ---------------------------------------------------- */

/* A table read in key order, a batch at a time. */
typedef struct {
    store_tx *tx;
    store_copy_table t;
    arena_t *a[2]; /* take turns: the previous batch's last key stays valid */
    int turn;
    store_copy_row *rows;
    int n, i;
    bool last; /* the batch in rows is the table's last */
    store_err rc;
} cursor;

static store_err cursor_open(cursor *c, store_tx *tx, store_copy_table t)
{
    *c = (cursor){.tx = tx, .t = t, .last = false};
    c->a[0] = arena_create();
    c->a[1] = arena_create();
    return STORE_OK; /* rows come with the first batch */
}

static void cursor_close(cursor *c)
{
    arena_destroy(c->a[0]);
    arena_destroy(c->a[1]);
    free(c->rows);
}

/* The next row, or NULL at the end or on failure (c->rc). */
static const store_copy_row *cursor_next(cursor *c)
{
    if (c->i < c->n)
        return &c->rows[c->i++];
    if (c->last || c->rc != STORE_OK)
        return NULL;
    const store_copy_val *after = c->n > 0 ? &c->rows[c->n - 1].v[0] : NULL;
    arena_t *a = c->a[c->turn ^= 1];
    arena_reset(a);
    store_copy_row *batch = calloc(STORE_COPY_BATCH, sizeof(*batch));
    int n = 0;
    if (batch == NULL)
        c->rc = STORE_INTERNAL;
    else
        c->rc = c->tx->be->ops->copy_next(c->tx, c->t, after, a, batch, STORE_COPY_BATCH, &n);
    if (c->rc == STORE_OK) { /* after pointed into the old batch: swap only now */
        free(c->rows);
        c->rows = batch;
        c->n = n;
        c->i = 0;
        c->last = n < STORE_COPY_BATCH;
        return cursor_next(c);
    }
    free(batch);
    return NULL;
}

/* ---- pictures ----------------------------------------------------------- */

/* Picture blob_id's bytes from tx `from` into tx `to`, a piece at a time;
 * *bytes what moved (0: the record holds none). */
static store_err pic_copy(store_tx *from, store_tx *to, int32_t blob_id, unsigned char *buf,
                          int64_t *bytes)
{
    const struct store_be_ops *fo = from->be->ops, *to_ops = to->be->ops;
    store_pic_r *r = NULL;
    store_pic_w *w = NULL;
    int64_t size = 0;
    *bytes = 0;
    store_err rc = fo->pic_read_open(from, blob_id, &size, &r);
    if (rc == STORE_ABSENT)
        return STORE_OK;
    if (rc != STORE_OK)
        return rc;
    rc = to_ops->pic_write_open(to, blob_id, size, &w);
    for (int64_t off = 0; rc == STORE_OK && off < size; off += STORE_PIECE) {
        size_t n = size - off < STORE_PIECE ? (size_t)(size - off) : STORE_PIECE;
        if ((rc = fo->pic_read(r, off, buf, n)) == STORE_OK)
            rc = to_ops->pic_write(w, buf, n);
    }
    if (w != NULL)
        rc = to_ops->pic_write_close(w, rc);
    fo->pic_read_close(r);
    if (rc == STORE_OK)
        *bytes = size;
    return rc;
}

/* SHA-256 of picture blob_id's stored bytes; *has false when it has none. */
static store_err pic_hash(store_tx *tx, int32_t blob_id, unsigned char *buf,
                          unsigned char out[crypto_hash_sha256_BYTES], bool *has, int64_t *size)
{
    const struct store_be_ops *o = tx->be->ops;
    crypto_hash_sha256_state h;
    store_pic_r *r = NULL;
    *size = 0;
    *has = false;
    store_err rc = o->pic_read_open(tx, blob_id, size, &r);
    if (rc == STORE_ABSENT)
        return STORE_OK;
    if (rc != STORE_OK)
        return rc;
    *has = true;
    crypto_hash_sha256_init(&h);
    for (int64_t off = 0; rc == STORE_OK && off < *size; off += STORE_PIECE) {
        size_t n = *size - off < STORE_PIECE ? (size_t)(*size - off) : STORE_PIECE;
        if ((rc = o->pic_read(r, off, buf, n)) == STORE_OK)
            crypto_hash_sha256_update(&h, buf, n);
    }
    crypto_hash_sha256_final(&h, out);
    o->pic_read_close(r);
    return rc;
}

/* ---- the copy ----------------------------------------------------------- */

typedef struct {
    store_tx *from, *to;
    store_copy_progress fn;
    void *ctx;
    unsigned char *piece;
    store_copy_counts *done;
} copy_job;

/* The pictures of a batch of BLOB records just put; the progress moves by
 * record as each one's bytes are in (pictures are most of the time). */
static store_err batch_pictures(copy_job *j, const store_copy_row *rows, int n)
{
    store_err rc = STORE_OK;
    for (int i = 0; i < n && rc == STORE_OK; i++) {
        int64_t bytes = 0;
        rc = pic_copy(j->from, j->to, (int32_t)rows[i].v[0].i, j->piece, &bytes);
        if (rc == STORE_OK && bytes > 0) {
            j->done->pictures++;
            j->done->bytes += bytes;
        }
        if (rc == STORE_OK && j->fn != NULL)
            j->fn(j->ctx, 1, bytes);
    }
    return rc;
}

/* Table t, batch by batch (rows put, then a BLOB batch's pictures). */
static store_err copy_table(copy_job *j, store_copy_table t)
{
    cursor c;
    store_err rc = cursor_open(&c, j->from, t);
    while (rc == STORE_OK) {
        if (cursor_next(&c) == NULL) { /* loads the next batch into c.rows */
            rc = c.rc;
            break;
        }
        int n = c.n;
        c.i = n; /* the whole batch is taken here */
        if ((rc = j->to->be->ops->copy_put(j->to, t, c.rows, n)) == STORE_OK &&
            t == STORE_COPY_BLOB)
            rc = batch_pictures(j, c.rows, n);
        j->done->rows[t] += n;
        if (rc == STORE_OK && j->fn != NULL && t != STORE_COPY_BLOB)
            j->fn(j->ctx, n, 0);
    }
    cursor_close(&c);
    if (rc != STORE_OK)
        log_error("migrate: copying %s: %s", store_copy_table_name(t), store_err_name(rc));
    return rc;
}

/* Counts of every table of tx; *total their sum. */
static store_err count_all(store_tx *tx, int64_t rows[STORE_COPY_TABLES], int64_t *total)
{
    store_err rc = STORE_OK;
    *total = 0;
    for (int t = 0; t < STORE_COPY_TABLES && rc == STORE_OK; t++) {
        rc = tx->be->ops->copy_count(tx, (store_copy_table)t, &rows[t]);
        *total += rows[t];
    }
    return rc;
}

/* Refuses a target that holds anything, unless force: then empties it. */
static store_err target_ready(store_tx *to, const char *desc, bool force)
{
    int64_t rows[STORE_COPY_TABLES], total = 0;
    store_err rc = count_all(to, rows, &total);
    if (rc != STORE_OK || total == 0)
        return rc;
    if (!force) {
        log_error("migrate: %s is not empty (%lld users, %lld BLOB records, %lld rows in all): "
                  "give --force to replace what it holds",
                  desc, (long long)rows[STORE_COPY_USERS], (long long)rows[STORE_COPY_BLOB],
                  (long long)total);
        return STORE_CONFLICT;
    }
    log_warn("migrate: --force: the %lld rows %s holds are replaced", (long long)total, desc);
    return to->be->ops->copy_clear(to);
}

/* Every sequence table's next id goes past the source's highest. */
static store_err settle_ids(copy_job *j)
{
    store_err rc = STORE_OK;
    for (int t = 0; t < STORE_COPY_TABLES && rc == STORE_OK; t++) {
        int64_t hw = 0;
        if (!store_copy_def_of((store_copy_table)t)->seq)
            continue;
        if ((rc = j->from->be->ops->ids_high(j->from, (store_copy_table)t, &hw)) == STORE_OK)
            rc = j->to->be->ops->ids_settle(j->to, (store_copy_table)t, hw);
    }
    if (rc == STORE_OK && j->to->be->ops->users_bump != NULL)
        rc = j->to->be->ops->users_bump(j->to); /* cached users elsewhere are stale */
    return rc;
}

static store_err copy_all(copy_job *j)
{
    store_copy_table order[STORE_COPY_TABLES];
    int n = table_order(order);
    store_err rc = STORE_OK;
    for (int i = 0; i < n && rc == STORE_OK; i++)
        rc = copy_table(j, order[i]);
    return rc == STORE_OK ? settle_ids(j) : rc;
}

static store_err verify_txs(store_copy_check *c, store_tx *ta, store_tx *tb);

/* Verification after the commit: the source in the snapshot it was copied
 * from (a server may go on writing it meanwhile), the target anew. */
static store_err check_copy(store_copy_end *to, store_tx *from, store_copy_check *check)
{
    store_tx *tb = NULL;
    store_err rc = to->be->ops->begin(to->be, NULL, STORE_TX_READ, &tb);
    if (rc != STORE_OK)
        return rc;
    rc = verify_txs(check, from, tb);
    (void)to->be->ops->end(tb, STORE_ABSENT); /* read only: never a COMMIT */
    return rc;
}

store_err store_copy_run(store_copy_end *from, store_copy_end *to, bool force,
                         store_copy_progress fn, void *ctx, store_copy_counts *done,
                         store_copy_check *check)
{
    copy_job j = {.fn = fn, .ctx = ctx, .done = done};
    *done = (store_copy_counts){0};
    store_err rc = to->be->ops->begin(to->be, NULL, STORE_TX_WRITE, &j.to);
    if (rc != STORE_OK)
        return rc;
    if ((rc = from->be->ops->begin(from->be, NULL, STORE_TX_READ, &j.from)) != STORE_OK)
        return to->be->ops->end(j.to, rc);
    if ((j.piece = malloc(STORE_PIECE)) == NULL)
        rc = STORE_INTERNAL;
    if (rc == STORE_OK)
        rc = target_ready(j.to, to->desc, force);
    if (rc == STORE_OK)
        rc = copy_all(&j);
    free(j.piece);
    rc = to->be->ops->end(j.to, rc);
    done->committed = rc == STORE_OK;
    if (rc == STORE_OK && check != NULL)
        rc = check_copy(to, j.from, check);
    (void)from->be->ops->end(j.from, STORE_ABSENT);
    return rc;
}

store_err store_copy_size(store_copy_end *from, int64_t *rows, int64_t *bytes)
{
    int64_t counts[STORE_COPY_TABLES];
    store_tx *tx = NULL;
    cursor c = {0};
    *bytes = 0;
    store_err rc = from->be->ops->begin(from->be, NULL, STORE_TX_READ, &tx);
    if (rc != STORE_OK)
        return rc;
    if ((rc = count_all(tx, counts, rows)) == STORE_OK &&
        (rc = cursor_open(&c, tx, STORE_COPY_BLOB)) == STORE_OK) {
        for (const store_copy_row *r; (r = cursor_next(&c)) != NULL;)
            *bytes += r->v[5].i; /* blob_size: the bytes as stored */
        rc = c.rc;
    }
    cursor_close(&c);
    (void)from->be->ops->end(tx, STORE_ABSENT);
    return rc;
}

/* ---- verification ------------------------------------------------------- */

typedef struct {
    store_copy_check *c;
    unsigned char *piece;
} verify_job;

static void differ(verify_job *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void differ(verify_job *v, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    if (v->c->differences++ >= v->c->max_report)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    v->c->say(v->c->ctx, line);
}

/* <0, 0, >0 as key a sorts before, with, after key b. */
static int key_cmp(const store_copy_def *d, const store_copy_val *a, const store_copy_val *b)
{
    if (d->kind[0] == STORE_COL_INT)
        return a->i < b->i ? -1 : a->i > b->i;
    size_t n = a->n < b->n ? a->n : b->n;
    int c = memcmp(a->p, b->p, n);
    return c != 0 ? c : (a->n > b->n) - (a->n < b->n);
}

/* The first column where rows a and b differ, or -1. */
static int row_diff(const store_copy_def *d, const store_copy_row *a, const store_copy_row *b)
{
    for (int i = 0; i < d->ncols; i++) {
        const store_copy_val *x = &a->v[i], *y = &b->v[i];
        if (x->null != y->null)
            return i;
        if (x->null)
            continue;
        if (d->kind[i] == STORE_COL_INT ? x->i != y->i
                                        : x->n != y->n || (x->n > 0 && memcmp(x->p, y->p, x->n)))
            return i;
    }
    return -1;
}

/* "id 17" or "name \"key_fingerprint\"" for a row's key. */
static void key_text(const store_copy_def *d, const store_copy_val *k, char *buf, size_t cap)
{
    if (d->kind[0] == STORE_COL_INT)
        snprintf(buf, cap, "%s %lld", d->col[0], (long long)k->i);
    else
        snprintf(buf, cap, "%s \"%.*s\"", d->col[0], (int)(k->n > 64 ? 64 : k->n),
                 (const char *)k->p);
}

static void hex(const unsigned char *h, char out[17])
{
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* The pictures of BLOB record id on both sides: same SHA-256, or said. */
static store_err verify_picture(verify_job *v, store_tx *ta, store_tx *tb, int32_t id)
{
    unsigned char ha[crypto_hash_sha256_BYTES], hb[crypto_hash_sha256_BYTES];
    bool has_a = false, has_b = false;
    int64_t na = 0, nb = 0;
    store_err rc = pic_hash(ta, id, v->piece, ha, &has_a, &na);
    if (rc == STORE_OK)
        rc = pic_hash(tb, id, v->piece, hb, &has_b, &nb);
    if (rc != STORE_OK)
        return rc;
    if (has_a != has_b)
        differ(v, "BLOB %d: picture bytes only in the %s", id, has_a ? "source" : "target");
    else if (has_a && (na != nb || memcmp(ha, hb, sizeof(ha)) != 0)) {
        char xa[17], xb[17];
        hex(ha, xa);
        hex(hb, xb);
        differ(v,
               "BLOB %d: picture bytes differ (%lld bytes, SHA-256 %s... in the source; "
               "%lld bytes, %s... in the target)",
               id, (long long)na, xa, (long long)nb, xb);
    }
    if (has_a) {
        v->c->seen.pictures++;
        v->c->seen.bytes += na;
    }
    return STORE_OK;
}

/* Both walks of table t side by side, merged by key. */
static store_err verify_table(verify_job *v, store_tx *ta, store_tx *tb, store_copy_table t)
{
    const store_copy_def *d = store_copy_def_of(t);
    const char *name = store_copy_table_name(t);
    char key[128];
    cursor ca = {0}, cb = {0};
    store_err rc = cursor_open(&ca, ta, t);
    if (rc == STORE_OK)
        rc = cursor_open(&cb, tb, t);
    const store_copy_row *ra = NULL, *rb = NULL;
    if (rc == STORE_OK) {
        ra = cursor_next(&ca);
        rb = cursor_next(&cb);
    }
    while (rc == STORE_OK && (ra != NULL || rb != NULL)) {
        int c = ra == NULL ? 1 : rb == NULL ? -1 : key_cmp(d, &ra->v[0], &rb->v[0]);
        key_text(d, c <= 0 ? &ra->v[0] : &rb->v[0], key, sizeof(key));
        if (c != 0)
            differ(v, "%s: %s only in the %s", name, key, c < 0 ? "source" : "target");
        else {
            int col = row_diff(d, ra, rb);
            if (col >= 0)
                differ(v, "%s: %s differs in column %s", name, key, d->col[col]);
            if (t == STORE_COPY_BLOB)
                rc = verify_picture(v, ta, tb, (int32_t)ra->v[0].i);
        }
        if (c <= 0) {
            v->c->seen.rows[t]++;
            ra = cursor_next(&ca);
        }
        if (c >= 0)
            rb = cursor_next(&cb);
    }
    if (rc == STORE_OK)
        rc = ca.rc != STORE_OK ? ca.rc : cb.rc;
    cursor_close(&ca);
    cursor_close(&cb);
    return rc;
}

/* The counts of both sides, said where they differ. */
static store_err verify_counts(verify_job *v, store_tx *ta, store_tx *tb)
{
    int64_t a[STORE_COPY_TABLES], b[STORE_COPY_TABLES], na = 0, nb = 0;
    store_err rc = count_all(ta, a, &na);
    if (rc == STORE_OK)
        rc = count_all(tb, b, &nb);
    for (int t = 0; t < STORE_COPY_TABLES && rc == STORE_OK; t++)
        if (a[t] != b[t])
            differ(v, "%s: %lld rows in the source, %lld in the target", store_copy_table_name(t),
                   (long long)a[t], (long long)b[t]);
    return rc;
}

/* Both sides compared in the transactions given. */
static store_err verify_txs(store_copy_check *c, store_tx *ta, store_tx *tb)
{
    verify_job v = {.c = c, .piece = malloc(STORE_PIECE)};
    store_err rc = v.piece != NULL ? STORE_OK : STORE_INTERNAL;
    c->differences = 0;
    c->seen = (store_copy_counts){0};
    if (rc == STORE_OK)
        rc = verify_counts(&v, ta, tb);
    for (int t = 0; t < STORE_COPY_TABLES && rc == STORE_OK; t++)
        rc = verify_table(&v, ta, tb, (store_copy_table)t);
    if (rc == STORE_OK && c->differences > c->max_report) {
        char line[96];
        snprintf(line, sizeof(line), "... and %lld more differences",
                 (long long)(c->differences - c->max_report));
        c->say(c->ctx, line);
    }
    free(v.piece);
    return rc;
}

store_err store_copy_verify(store_copy_end *a, store_copy_end *b, store_copy_check *c)
{
    store_tx *ta = NULL, *tb = NULL;
    store_err rc = a->be->ops->begin(a->be, NULL, STORE_TX_READ, &ta);
    if (rc != STORE_OK)
        return rc;
    if ((rc = b->be->ops->begin(b->be, NULL, STORE_TX_READ, &tb)) == STORE_OK) {
        rc = verify_txs(c, ta, tb);
        (void)b->be->ops->end(tb, STORE_ABSENT);
    }
    (void)a->be->ops->end(ta, STORE_ABSENT);
    return rc;
}
