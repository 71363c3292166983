/*
 * store_library.c — the project image library (store.h): the pictures
 * offered when choosing a project's image, as recipes over the backend's
 * lib_add/lib_next primitives and the BLOB-record ones.
 *
 * Invariants: a record in the library is linked (unlinked_ms NULL), so the
 * sweep never takes it and no entity can link it (claim fails: CONFLICT);
 * its membership row goes with the record by cascade, whoever deletes it.
 */
#include <assert.h>

#include "core/text.h"
#include "store/store_int.h"

typedef struct {
    store_t *s;
    arena_t *a;
    int32_t blob_id;
    int64_t now;
    size_t max, n;
    bool more;
    model_blob *out;
} lib_ctx;

static const struct store_be_ops *ops(store_tx *tx)
{
    return tx->be->ops;
}

/* Is record id in the library? OK or ABSENT. */
static store_err member(store_tx *tx, int32_t id)
{
    int32_t next = 0;
    store_err rc = ops(tx)->lib_next(tx, id - 1, &next);
    return rc == STORE_OK && next != id ? STORE_ABSENT : rc;
}

/* The claim is the test-and-set: a record linked anywhere (the library
 * included) cannot join. */
static store_err add_fn(store_tx *tx, void *ctx)
{
    lib_ctx *c = ctx;
    store_blob_row row;
    store_err rc = store_not_file(tx, c->blob_id);
    if (rc == STORE_ABSENT)
        return STORE_INVALID; /* a task's file is no picture */
    if (rc == STORE_OK)
        rc = ops(tx)->blob_claim(tx, c->blob_id);
    if (rc == STORE_NOMATCH) {
        rc = ops(tx)->blob_read(tx, NULL, c->blob_id, STORE_ROW_PLAIN, &row);
        return rc == STORE_OK ? STORE_CONFLICT : rc == STORE_ABSENT ? STORE_INVALID : rc;
    }
    return rc == STORE_OK ? ops(tx)->lib_add(tx, c->blob_id, c->now) : rc;
}

store_err store_library_add(store_t *s, int32_t blob_id)
{
    lib_ctx c = {.s = s, .blob_id = blob_id, .now = text_now_ms()};
    return store_run(s, STORE_TX_WRITE, add_fn, &c);
}

/* One snapshot: the walk by id and each record's read. */
static store_err list_fn(store_tx *tx, void *ctx)
{
    lib_ctx *c = ctx;
    int32_t id = c->blob_id;
    store_err rc = STORE_OK;
    c->n = 0;
    c->more = false;
    while ((rc = ops(tx)->lib_next(tx, id, &id)) == STORE_OK) {
        if (c->n == c->max) {
            c->more = true;
            break;
        }
        rc = store_blob_record(c->s, tx, c->a, id, true, &c->out[c->n]);
        if (rc != STORE_OK)
            return rc;
        c->n++;
    }
    return rc == STORE_ABSENT ? STORE_OK : rc;
}

store_err store_library_list(store_t *s, arena_t *a, int32_t after, size_t max, model_blob **out,
                             size_t *n, bool *more)
{
    assert(a != NULL && out != NULL && n != NULL && more != NULL);
    lib_ctx c = {.s = s, .a = a, .blob_id = after, .max = max};
    c.out = arena_alloc(a, (max > 0 ? max : 1) * sizeof(*c.out));
    if (c.out == NULL)
        return STORE_INTERNAL;
    store_err rc = store_run(s, STORE_TX_READ, list_fn, &c);
    *out = c.out;
    *n = rc == STORE_OK ? c.n : 0;
    *more = rc == STORE_OK && c.more;
    return rc;
}

static store_err has_fn(store_tx *tx, void *ctx)
{
    return member(tx, ((lib_ctx *)ctx)->blob_id);
}

store_err store_library_has(store_t *s, int32_t blob_id)
{
    lib_ctx c = {.s = s, .blob_id = blob_id};
    return blob_id > 0 ? store_run(s, STORE_TX_READ1, has_fn, &c) : STORE_ABSENT;
}

static store_err delete_fn(store_tx *tx, void *ctx)
{
    lib_ctx *c = ctx;
    store_err rc = member(tx, c->blob_id);
    return rc == STORE_OK ? ops(tx)->blob_delete(tx, c->blob_id) : rc;
}

store_err store_library_delete(store_t *s, int32_t blob_id)
{
    lib_ctx c = {.s = s, .blob_id = blob_id};
    return blob_id > 0 ? store_run(s, STORE_TX_WRITE, delete_fn, &c) : STORE_ABSENT;
}
