/*
 * store_variant.c — the variant cache's rules (store.h "variants"), above
 * the backend interface (store_backend.h): reads of a variant and the
 * batching of their uses, puts with the LRU eviction of unpinned ones,
 * and the running total.
 *
 * Invariants:
 *  - A variant is read only at, and stored only for, its BLOB's current
 *    version. A put first reads the BLOB row with STORE_ROW_SHARE, which
 *    conflicts with a content write's update of it: the version cannot move
 *    until the put commits, so the content write's var_delete_stale comes
 *    after and sees the new row. A pinned variant (a product's thumbnail),
 *    which eviction never takes, thus never outlives a content change (R7).
 *  - Puts and evictions are serialised by STORE_XLOCK_VARIANT_CACHE: the
 *    total a put reads is the one it cuts down, so two servers never both
 *    evict for the same excess. They are rare: a put follows a cache miss
 *    that just rendered a picture.
 *  - A read does not write its variant's last_used_ms: that would put
 *    every GET Image?w=... behind the writer. The use is kept in the
 *    store's batch (struct store_touches, at most TOUCH_MAX; a later use of
 *    a pending variant replaces it, a full batch drops its oldest use) and
 *    written with var_touch: by the next put, in its transaction before
 *    it evicts (so eviction sees every use), by a reader once
 *    TOUCH_FLUSH_AT are pending and the writer is free, and at close. Uses
 *    lost to a crash or a failed write only make eviction less exact.
 */
#include "store/store.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/log.h"
#include "core/text.h"
#include "store/store_backend.h"
#include "store/store_int.h"

#define TOUCH_MAX 256     /* variant uses remembered between writes */
#define TOUCH_FLUSH_AT 64 /* a reader writes them from this many on */

/* The uses of variants not yet written; one per store (its root). */
struct store_touches {
    pthread_mutex_t mu; /* guards n and t */
    int n;
    store_touch t[TOUCH_MAX];
};

/* ---- the batch of uses ---------------------------------------------------- */

/* Remembers a use of variant id at ms. True when enough are pending to be
 * worth a write. */
static bool touch_add(struct store_touches *b, int64_t id, int64_t ms)
{
    int slot = -1, oldest = 0;
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < b->n && slot < 0; i++) {
        if (b->t[i].id == id)
            slot = i;
        else if (b->t[i].ms < b->t[oldest].ms)
            oldest = i;
    }
    if (slot < 0)
        slot = b->n < TOUCH_MAX ? b->n++ : oldest;
    b->t[slot] = (store_touch){.id = id, .ms = ms};
    bool flush = b->n >= TOUCH_FLUSH_AT;
    pthread_mutex_unlock(&b->mu);
    return flush;
}

/* The pending uses of a store, taken out of its batch by the first run of
 * a recipe inside its transaction (so that a reader that finds the writer
 * busy leaves them pending), and kept for the recipe's re-runs. */
typedef struct {
    store_t *s;
    bool taken;
    int n;
    store_touch t[TOUCH_MAX];
} touch_batch;

/* Writes the pending uses in tx. */
static store_err touch_write(store_tx *tx, touch_batch *tb)
{
    if (!tb->taken) {
        struct store_touches *b = tb->s->root->touches;
        pthread_mutex_lock(&b->mu);
        tb->n = b->n;
        memcpy(tb->t, b->t, (size_t)b->n * sizeof(tb->t[0]));
        b->n = 0;
        pthread_mutex_unlock(&b->mu);
        tb->taken = true;
    }
    return tb->n > 0 ? tx->be->ops->var_touch(tx, tb->t, tb->n) : STORE_OK;
}

static store_err touch_recipe(store_tx *tx, void *ctx)
{
    return touch_write(tx, ctx);
}

/* Writes the pending uses in a transaction of their own through h (a
 * reader's handle: in its scope, when it is a view): `wait` for the writer
 * (close), or only when it is free (a reader). */
static void touch_flush(store_t *h, bool wait)
{
    touch_batch tb = {.s = h};
    store_err rc = store_run(h, wait ? STORE_TX_WRITE : STORE_TX_TRY_WRITE, touch_recipe, &tb);
    if (rc != STORE_OK && (wait || rc != STORE_UNAVAILABLE))
        log_warn("store: variant uses not recorded: %s", store_err_name(rc));
}

store_err store_variant_open(store_t *s)
{
    assert(s != NULL && s->root == s && s->touches == NULL);
    struct store_touches *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        log_error("store: no memory for the variant uses");
        return STORE_INTERNAL;
    }
    pthread_mutex_init(&b->mu, NULL);
    s->touches = b;
    return STORE_OK;
}

void store_variant_close(store_t *s)
{
    struct store_touches *b = s->touches;
    if (b == NULL)
        return;
    if (b->n > 0) /* no call is in progress: n is stable */
        touch_flush(s, true);
    pthread_mutex_destroy(&b->mu);
    free(b);
    s->touches = NULL;
}

/* ---- reads ------------------------------------------------------------------ */

typedef struct {
    arena_t *a;
    int32_t blob_id;
    int64_t version;
    const char *key;
    store_variant_meta *m;
    void **bytes;
    size_t *len;
    int64_t vid; /* out: the variant read */
} get_ctx;

static store_err get_recipe(store_tx *tx, void *ctx)
{
    get_ctx *g = ctx;
    free(*g->bytes); /* an earlier run's */
    *g->bytes = NULL;
    return tx->be->ops->var_read(tx, g->a, g->blob_id, g->version, g->key, g->m, g->bytes, g->len,
                                 &g->vid);
}

store_err store_variant_get(store_t *s, arena_t *a, int32_t blob_id, int64_t version,
                            const char *key, store_variant_meta *meta, void **bytes, size_t *len)
{
    assert(a != NULL && key != NULL && meta != NULL && bytes != NULL && len != NULL);
    get_ctx g = {.a = a,
                 .blob_id = blob_id,
                 .version = version,
                 .key = key,
                 .m = meta,
                 .bytes = bytes,
                 .len = len};
    *bytes = NULL;
    *len = 0;
    void *stored = NULL;
    size_t n = 0;
    g.bytes = &stored;
    g.len = &n;
    store_err rc = store_run(s, STORE_TX_READ1, get_recipe, &g); /* one statement */
    if (rc != STORE_OK) {
        free(stored);
        return rc;
    }
    if (touch_add(s->root->touches, g.vid, text_now_ms()))
        touch_flush(s, false); /* in s's scope, as the read */
    return store_pic_variant_decode(s, meta, stored, n, bytes, len); /* takes stored */
}

/* var_totals' answer, a missing totals row made an internal error. */
static store_err totals(store_tx *tx, int64_t *bytes, int64_t *count)
{
    store_err rc = tx->be->ops->var_totals(tx, bytes, count);
    if (rc == STORE_ABSENT) {
        log_error("store: the variants' running total is missing");
        rc = STORE_INTERNAL;
    }
    return rc;
}

static store_err total_recipe(store_tx *tx, void *ctx)
{
    int64_t *v = ctx;
    return totals(tx, &v[0], &v[1]);
}

store_err store_variant_total(store_t *s, int64_t *bytes, int64_t *count)
{
    assert(bytes != NULL && count != NULL);
    int64_t v[2] = {0, 0};
    store_err rc = store_run(s, STORE_TX_READ1, total_recipe, v);
    *bytes = rc == STORE_OK ? v[0] : 0;
    *count = rc == STORE_OK ? v[1] : 0;
    return rc;
}

/* ---- puts and eviction -------------------------------------------------- */

typedef struct {
    int32_t blob_id;
    int64_t version;
    const char *key;
    const store_variant_meta *m;
    const void *bytes;
    size_t len;
    bool pinned;
    int64_t max;      /* the unpinned variants' bound, in bytes */
    arena_t *a;       /* for the BLOB row */
    touch_batch uses; /* written before eviction */
} put_ctx;

/* STORE_ABSENT unless BLOB p->blob_id is at p->version; its row then
 * stays share-locked until the end of tx (R7). */
static store_err hold_version(store_tx *tx, const put_ctx *p)
{
    store_blob_row row;
    arena_reset(p->a);
    store_err rc = tx->be->ops->blob_read(tx, p->a, p->blob_id, STORE_ROW_SHARE, &row);
    if (rc == STORE_OK && row.b.version != p->version)
        rc = STORE_ABSENT;
    return rc;
}

/* Deletes the least recently used unpinned variants other than p's own
 * until the unpinned ones total at most p->max bytes: one indexed lookup
 * and one delete per evicted row. A single variant larger than max stays
 * (alone) until the next put. */
static store_err evict(store_tx *tx, const put_ctx *p)
{
    const struct store_be_ops *be = tx->be->ops;
    int64_t total = 0, count = 0, vid = 0, size = 0;
    store_err rc = totals(tx, &total, &count);
    while (rc == STORE_OK && total > p->max &&
           (rc = be->var_lru(tx, p->blob_id, p->key, &vid, &size)) == STORE_OK) {
        total -= size;
        rc = be->var_delete(tx, vid);
    }
    return rc == STORE_ABSENT ? STORE_OK : rc; /* nothing else left to evict */
}

static store_err put_recipe(store_tx *tx, void *ctx)
{
    put_ctx *p = ctx;
    const struct store_be_ops *be = tx->be->ops;
    int64_t vid = 0;
    store_err rc = hold_version(tx, p);
    if (rc != STORE_OK || (rc = be->xlock(tx, STORE_XLOCK_VARIANT_CACHE, 0)) != STORE_OK ||
        (rc = touch_write(tx, &p->uses)) != STORE_OK ||
        (rc = be->var_upsert(tx, p->blob_id, p->version, p->key, p->m, p->bytes, p->len, p->pinned,
                             text_now_ms(), &vid)) != STORE_OK)
        return rc;
    return p->pinned ? STORE_OK : evict(tx, p); /* a pinned one adds nothing to the total */
}

store_err store_variant_put(store_t *s, int32_t blob_id, int64_t version, const char *key,
                            const store_variant_meta *meta, const void *bytes, size_t len,
                            bool pinned, int64_t cache_max_bytes)
{
    assert(key != NULL && meta != NULL && meta->mime != NULL && (bytes != NULL || len == 0));
    store_variant_meta m;
    void *enc = NULL;
    size_t enc_len = 0;
    store_err rc = store_pic_variant_encode(s, meta, bytes, len, &m, &enc, &enc_len);
    if (rc != STORE_OK)
        return rc;
    put_ctx *p = malloc(sizeof(*p)); /* the batch of uses is 4 KB */
    arena_t *a = arena_create();     /* aborts when out of memory */
    rc = STORE_INTERNAL;
    if (p == NULL) {
        log_error("store: no memory for a variant put");
        goto out;
    }
    *p = (put_ctx){.blob_id = blob_id,
                   .version = version,
                   .key = key,
                   .m = &m,
                   .bytes = enc != NULL ? enc : bytes,
                   .len = enc != NULL ? enc_len : len,
                   .pinned = pinned,
                   .max = cache_max_bytes,
                   .a = a,
                   .uses = {.s = s}};
    rc = store_run(s, STORE_TX_WRITE, put_recipe, p);
out:
    arena_destroy(a);
    free(p);
    free(enc);
    return rc;
}
