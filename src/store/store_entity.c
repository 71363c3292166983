/*
 * store_entity.c — the store's rules for entities, above the backend
 * interface (store_backend.h): each store.h call here is a recipe run by
 * store_run, over the entity primitives, so that SQLite and PostgreSQL
 * keep the same rules.
 *
 * Invariants the recipes keep, whatever the backend's isolation:
 *  - An automatic id (id 0) is max + 1, once the top id is taken the
 *    lowest free one, chosen under xlock(STORE_XLOCK_ENTITY_IDS, kind):
 *    two creates of one kind never pick the same id (R1).
 *  - `expect` is a condition of the write itself (ent_update/ent_delete
 *    WHERE version = expect), never a read followed by a write; when the
 *    write matched nothing, a read tells STORE_ABSENT from
 *    STORE_PRECONDITION (R2, R3).
 *  - What the caller is told (version, updated_ms) is what the row got
 *    (RETURNING), not computed here (R10).
 *  - Deleting an entity deletes the records its deleted row linked (its
 *    image, a product's thumbnail): the links come from that very row
 *    (R3), so a record linked meanwhile is not left behind.
 * A recipe may run more than once (STORE_RETRY): it writes its results
 * into its context only, and the caller copies them out after success.
 */
#include <assert.h>

#include "core/log.h"
#include "core/text.h"
#include "store/store_backend.h"
#include "store/store_int.h"

/* ---- helpers ------------------------------------------------------------- */

static const struct store_be_ops *ops(store_tx *tx)
{
    return tx->be->ops;
}

/* What a conditional write on entity (k, id) that matched no row means:
 * STORE_ABSENT when there is no such entity, else it was not at the
 * version expected. */
static store_err ent_nomatch(store_tx *tx, model_kind k, int32_t id)
{
    store_ent_row row;
    store_err rc = ops(tx)->ent_read(tx, NULL, k, id, STORE_ROW_PLAIN, &row);
    return rc == STORE_OK ? STORE_PRECONDITION : rc;
}

/* ---- create -------------------------------------------------------------- */

typedef struct {
    model_entity_t row; /* in: the entity; out: with its id, version, updated_ms */
    int64_t now;
} create_ctx;

/* The next free id of kind k into *id, under the kind's id lock. */
static store_err next_id(store_tx *tx, model_kind k, int32_t *id)
{
    store_err rc = ops(tx)->xlock(tx, STORE_XLOCK_ENTITY_IDS, (int64_t)k);
    if (rc == STORE_OK && (rc = ops(tx)->ent_next_id(tx, k, id)) == STORE_ABSENT) {
        log_warn("store: every %s id up to %d is taken", model_entity(k)->name, INT32_MAX);
        rc = STORE_CONFLICT;
    }
    return rc;
}

static store_err create_fn(store_tx *tx, void *ctx)
{
    create_ctx *c = ctx;
    model_entity_t *e = &c->row;
    store_err rc = e->id == 0 ? next_id(tx, e->kind, &e->id) : STORE_OK;
    if (rc == STORE_OK)
        rc = ops(tx)->ent_insert(tx, e, c->now, &e->version, &e->updated_ms);
    return rc;
}

store_err store_entity_create(store_t *s, model_entity_t *e)
{
    assert(e != NULL);
    if (e->id < 0) /* ids are positive */
        return STORE_INVALID;
    create_ctx c = {.row = *e, .now = text_now_ms()};
    store_err rc = store_run(s, STORE_TX_WRITE, create_fn, &c);
    if (rc == STORE_OK) {
        e->id = c.row.id;
        e->version = c.row.version;
        e->updated_ms = c.row.updated_ms;
    }
    return rc;
}

/* ---- reads --------------------------------------------------------------- */

typedef struct {
    arena_t *a; /* NULL: existence only */
    model_kind k;
    int32_t id;
    store_ent_row row;
} read_ctx;

static store_err read_fn(store_tx *tx, void *ctx)
{
    read_ctx *c = ctx;
    return ops(tx)->ent_read(tx, c->a, c->k, c->id, STORE_ROW_PLAIN, &c->row);
}

store_err store_entity_get(store_t *s, arena_t *a, model_kind k, int32_t id, model_entity_t *out)
{
    assert(a != NULL && out != NULL);
    read_ctx c = {.a = a, .k = k, .id = id};
    store_err rc = store_run(s, STORE_TX_READ1, read_fn, &c);
    if (rc == STORE_OK)
        *out = c.row.e;
    return rc;
}

store_err store_entity_exists(store_t *s, model_kind k, int32_t id)
{
    read_ctx c = {.k = k, .id = id};
    return store_run(s, STORE_TX_READ1, read_fn, &c);
}

/* ---- update -------------------------------------------------------------- */

typedef struct {
    const model_entity_t *e;
    int64_t expect, now;
    int64_t version, updated_ms; /* out */
} update_ctx;

static store_err update_fn(store_tx *tx, void *ctx)
{
    update_ctx *c = ctx;
    store_err rc = ops(tx)->ent_update(tx, c->e, c->expect, c->now, &c->version, &c->updated_ms);
    return rc == STORE_NOMATCH ? ent_nomatch(tx, c->e->kind, c->e->id) : rc;
}

store_err store_entity_update(store_t *s, model_entity_t *e, int64_t expect)
{
    assert(e != NULL);
    update_ctx c = {.e = e, .expect = expect, .now = text_now_ms()};
    store_err rc = store_run(s, STORE_TX_WRITE, update_fn, &c);
    if (rc == STORE_OK) {
        e->version = c.version;
        e->updated_ms = c.updated_ms;
    }
    return rc;
}

/* ---- delete -------------------------------------------------------------- */

typedef struct {
    model_kind k;
    int32_t id;
    int64_t expect;
} delete_ctx;

static store_err delete_fn(store_tx *tx, void *ctx)
{
    delete_ctx *c = ctx;
    store_ent_row gone;
    store_err rc = ops(tx)->ent_delete(tx, c->k, c->id, c->expect, &gone);
    if (rc == STORE_NOMATCH)
        return ent_nomatch(tx, c->k, c->id);
    if (rc == STORE_OK && gone.thumb_blob_id != 0) /* made from its image */
        rc = ops(tx)->blob_delete(tx, gone.thumb_blob_id);
    if (rc == STORE_OK && gone.image_blob_id != 0)
        rc = ops(tx)->blob_delete(tx, gone.image_blob_id);
    return rc;
}

store_err store_entity_delete(store_t *s, model_kind k, int32_t id, int64_t expect)
{
    delete_ctx c = {.k = k, .id = id, .expect = expect};
    return store_run(s, STORE_TX_WRITE, delete_fn, &c);
}
