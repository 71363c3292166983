/*
 * store_entity.c — the store's rules for entities, their BLOB records, the
 * links between them, the sweep of unlinked records and the user
 * references of records, above the backend interface (store_backend.h):
 * each store.h call here is a recipe run by store_run over the entity and
 * BLOB-record primitives, so that SQLite and PostgreSQL keep the same
 * rules. The content recipes that still run in the backend (image_put,
 * blob_create, blob_content_put, thumbnail_put and the reads of bytes)
 * take their record rules from here (store_int.h).
 *
 * Invariants the recipes keep, whatever the backend's isolation:
 *  - An automatic id (id 0) is max + 1, once the top id is taken the
 *    lowest free one, chosen under xlock(STORE_XLOCK_ENTITY_IDS, kind):
 *    two creates of one kind never pick the same id (R1).
 *  - `expect` is a condition of the write itself (WHERE version = expect),
 *    or is checked under the lock of the row the write then changes;
 *    when a conditional write matched nothing, a read tells STORE_ABSENT
 *    from STORE_PRECONDITION (R2, R3).
 *  - Every write of an entity's picture or ImageInfo starts by locking the
 *    entity's row (ent_read STORE_ROW_UPDATE): the entity row is the mutex
 *    of its pictures, so its record is made once (R4). Lock order: entity
 *    row, record, bytes, variants.
 *  - Linking claims the record (unlinked_ms set -> NULL) in one
 *    conditional write: a record is never the image of two entities, and
 *    linking always writes unlinked_ms, which the sweep re-checks (R5, R6).
 *  - Deleting an entity deletes the records its deleted row linked (its
 *    image, a product's thumbnail): the links come from that very row (R3).
 *  - What the caller is told (versions, dates, the record) is what the row
 *    got (RETURNING), not computed here (R10).
 * A recipe may run more than once (STORE_RETRY): it writes its results
 * into its context only, and the caller copies them out after success.
 */
#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
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
    int32_t asked_id;   /* the id the caller asked for; 0: the next free one */
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
    /* From the asked id on every run: a run store_run repeats (deadlock,
     * serialization failure) must choose a free id again, not insert the one
     * its failed run chose as if the caller had asked for it. */
    e->id = c->asked_id;
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
    create_ctx c = {.row = *e, .asked_id = e->id, .now = text_now_ms()};
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

/* ---- lists ---------------------------------------------------------------
 * The recipe decides what the backend's one statement is given: the keys
 * ending with the id (a total order, so pages never overlap), the prefix
 * lowercased with its upper bound, one row more than the page to tell
 * whether rows follow. */

/* Above every string that starts with a prefix, ASCII case-insensitively:
 * the prefix, then U+10FFFF (the highest UTF-8 sequence). */
#define LIST_UPPER "\xF4\x8F\xBF\xBF"

typedef struct {
    store_list_query q; /* normalized */
    const char *upper;  /* NULL: no filter */
    arena_t *a;
    store_list_item *rows; /* top + 1 of them */
    int n;                 /* out */
} list_ctx;

static bool list_query_valid(const store_list_query *q)
{
    if (q->kind < 0 || q->kind >= MODEL_KIND_COUNT || q->top < 1 || q->top > STORE_LIST_MAX ||
        q->skip < 0 || q->nkeys < 0 || q->nkeys > STORE_LIST_KEYS)
        return false;
    if (q->prefix != NULL && strlen(q->prefix) > MODEL_STRING_MAX)
        return false;
    for (int i = 0; i < q->nkeys; i++)
        if (q->keys[i].field < -1 || q->keys[i].field >= model_entity(q->kind)->nfields)
            return false;
    return true;
}

/* q's keys with the id last (in the last key's direction) when they lack it. */
static void list_keys(store_list_query *q)
{
    for (int i = 0; i < q->nkeys; i++)
        if (q->keys[i].field == -1)
            return;
    bool desc = q->nkeys > 0 && q->keys[q->nkeys - 1].desc;
    q->keys[q->nkeys++] = (store_list_key){.field = -1, .desc = desc};
}

static store_err list_fn(store_tx *tx, void *ctx)
{
    list_ctx *c = ctx;
    c->n = 0;
    return ops(tx)->ent_list(tx, c->a, &c->q, c->upper, c->q.top + 1, c->rows, &c->n);
}

store_err store_entity_list(store_t *s, arena_t *a, const store_list_query *q,
                            store_list_item **items, int *n, bool *more)
{
    assert(a != NULL && q != NULL && items != NULL && n != NULL && more != NULL);
    *items = NULL, *n = 0, *more = false;
    if (!list_query_valid(q))
        return STORE_INVALID;
    list_ctx c = {.q = *q, .a = a};
    list_keys(&c.q);
    if (q->prefix != NULL && q->prefix[0] != '\0') {
        char *low = arena_strdup(a, q->prefix);
        for (char *p = low; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        c.q.prefix = low;
        c.upper = arena_printf(a, "%s" LIST_UPPER, low);
    } else {
        c.q.prefix = NULL;
    }
    c.rows = arena_alloc(a, (size_t)(c.q.top + 1) * sizeof(*c.rows));
    store_err rc = store_run(s, STORE_TX_READ1, list_fn, &c);
    if (rc == STORE_OK) {
        *more = c.n > q->top;
        *n = *more ? q->top : c.n;
        *items = c.rows;
    }
    return rc;
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

/* ---- user references ------------------------------------------------------
 * A record names who made and who last changed it by user id. The memory
 * (store_urefs) keeps users it read, each filed under the users change
 * count the transaction saw before reading it (users_stamp): a change by
 * any process moves the count, so a kept user is never older than what
 * the transaction could read. A transaction without a stamp (users being
 * written) neither uses nor fills it. */

#define UREF_SLOTS 8
#define UREF_TEXT 256 /* longer names are not kept */

struct uref {
    pthread_mutex_t mu;
    uint64_t users; /* the count it was read under */
    int32_t id;     /* 0: empty (the server's own user is not read) */
    model_role role;
    bool disabled;
    int64_t created_ms;
    char name[UREF_TEXT], full_name[UREF_TEXT];
};

struct store_urefs {
    struct uref slot[UREF_SLOTS];
};

struct store_urefs *store_urefs_create(void)
{
    struct store_urefs *u = calloc(1, sizeof(*u));
    for (int i = 0; u != NULL && i < UREF_SLOTS; i++)
        pthread_mutex_init(&u->slot[i].mu, NULL);
    return u;
}

void store_urefs_destroy(struct store_urefs *u)
{
    for (int i = 0; u != NULL && i < UREF_SLOTS; i++)
        pthread_mutex_destroy(&u->slot[i].mu);
    free(u);
}

static struct uref *uref_slot(store_t *s, int32_t id)
{
    struct store_urefs *u = s->root->urefs;
    return u != NULL ? &u->slot[(uint32_t)id % UREF_SLOTS] : NULL;
}

/* *out from the memory of user id, if it was read under count `users`. */
static bool uref_get(store_t *s, arena_t *a, int32_t id, uint64_t users, model_user *out)
{
    struct uref *r = uref_slot(s, id);
    bool hit = false;
    if (r == NULL)
        return false;
    pthread_mutex_lock(&r->mu);
    if (r->id == id && r->users == users) {
        *out = (model_user){.id = id,
                            .name = arena_strdup(a, r->name),
                            .full_name = arena_strdup(a, r->full_name),
                            .role = r->role,
                            .disabled = r->disabled,
                            .pw_hash = "",
                            .created_ms = r->created_ms};
        hit = true;
    }
    pthread_mutex_unlock(&r->mu);
    return hit;
}

static void uref_put(store_t *s, const model_user *u, uint64_t users)
{
    struct uref *r = uref_slot(s, u->id);
    size_t n = strlen(u->name), f = strlen(u->full_name);
    if (r == NULL || n >= UREF_TEXT || f >= UREF_TEXT)
        return;
    pthread_mutex_lock(&r->mu);
    r->users = users;
    r->id = u->id;
    r->role = u->role;
    r->disabled = u->disabled;
    r->created_ms = u->created_ms;
    memcpy(r->name, u->name, n + 1);
    memcpy(r->full_name, u->full_name, f + 1);
    pthread_mutex_unlock(&r->mu);
}

/* The users change count tx sees, when the backend has one to go by. */
static bool uref_stamp(store_tx *tx, uint64_t *users)
{
    return ops(tx)->users_stamp != NULL && ops(tx)->users_stamp(tx, users) == STORE_OK;
}

/* The user `id` of a record into *out: the server itself for 0, NULL when
 * there is no such user (any more). The stamp is taken before the row is
 * read, so a change racing the read leaves a kept user already out of
 * date, never a stale one current. */
static store_err user_ref(store_t *s, store_tx *tx, arena_t *a, int32_t id, model_user **out)
{
    static const model_user server = {.id = 0,
                                      .name = "crmblob",
                                      .full_name = "crmblob server",
                                      .role = MODEL_ROLE_ADMIN,
                                      .pw_hash = ""};
    model_user *u = arena_alloc(a, sizeof(*u));
    uint64_t users = 0;
    bool keep = id != 0 && uref_stamp(tx, &users);
    store_err rc = STORE_OK;
    *out = NULL;
    if (id == 0)
        *u = server;
    else if (!keep || !uref_get(s, a, id, users, u)) {
        if ((rc = ops(tx)->user_read(tx, a, id, NULL, u)) != STORE_OK)
            return rc == STORE_ABSENT ? STORE_OK : rc;
        u->pw_hash = "";
        if (keep)
            uref_put(s, u, users);
    }
    *out = u;
    return rc;
}

store_err store_blob_out(store_t *s, store_tx *tx, arena_t *a, const store_blob_row *row,
                         model_blob *out)
{
    store_err rc = STORE_OK;
    *out = row->b;
    out->created_by = row->created;
    out->updated_by = row->updated;
    if (row->created == NULL &&
        (rc = user_ref(s, tx, a, row->created_by, &out->created_by)) != STORE_OK)
        return rc;
    if (row->updated != NULL)
        return STORE_OK;
    if (row->updated_by == row->created_by && out->created_by != NULL) {
        out->updated_by = out->created_by;
        return STORE_OK;
    }
    return user_ref(s, tx, a, row->updated_by, &out->updated_by);
}

/* ---- records: the rules the content recipes share ------------------------- */

store_err store_blob_nomatch(store_tx *tx, int32_t id)
{
    store_blob_row row;
    store_err rc = ops(tx)->blob_read(tx, NULL, id, STORE_ROW_PLAIN, &row);
    return rc == STORE_OK ? STORE_PRECONDITION : rc;
}

/* `expect` against what a record has (0: there is none). */
static store_err expect_is(int64_t expect, int64_t have)
{
    return expect == STORE_ANY || expect == have ? STORE_OK : STORE_PRECONDITION;
}

/* A new linked record of ConceptualType ct, made by user at now. */
static store_err linked_record(store_tx *tx, const char *ct, int32_t user, int64_t now,
                               int32_t *blob_id)
{
    return ops(tx)->blob_insert(tx, ct, user, now, INT64_MIN, blob_id);
}

/* Record id read in tx under lock l; STORE_CORRUPT when it is gone,
 * although a link names it (its foreign key forbids that). */
static store_err linked_read(store_tx *tx, arena_t *a, int32_t id, store_row_lock l,
                             store_blob_row *row)
{
    store_err rc = ops(tx)->blob_read(tx, a, id, l, row);
    if (rc == STORE_ABSENT) {
        log_error("store: BLOB record %d vanished", id);
        rc = STORE_CORRUPT;
    }
    return rc;
}

store_err store_image_target(store_tx *tx, model_kind k, int32_t id, int32_t user, int64_t now,
                             int64_t expect, bool check_version, store_ent_row *ent)
{
    store_blob_row row;
    store_err rc = ops(tx)->ent_read(tx, NULL, k, id, STORE_ROW_UPDATE, ent);
    if (rc != STORE_OK)
        return rc;
    if (ent->image_blob_id == 0) {
        if ((rc = expect_is(expect, 0)) != STORE_OK ||
            (rc = linked_record(tx, model_entity(k)->default_conceptual_type, user, now,
                                &ent->image_blob_id)) != STORE_OK)
            return rc;
        rc = ops(tx)->ent_set_image(tx, k, id, ent->image_blob_id);
        return rc == STORE_NOMATCH ? STORE_INTERNAL : rc; /* the row is locked */
    }
    if (!check_version || expect == STORE_ANY)
        return STORE_OK;
    rc = linked_read(tx, NULL, ent->image_blob_id, STORE_ROW_UPDATE, &row);
    return rc == STORE_OK ? expect_is(expect, row.b.version) : rc;
}

store_err store_thumb_target(store_tx *tx, int32_t product_id, int32_t user, int64_t now,
                             int32_t *blob_id)
{
    store_ent_row ent;
    store_err rc = ops(tx)->ent_read(tx, NULL, MODEL_PRODUCT, product_id, STORE_ROW_UPDATE, &ent);
    *blob_id = rc == STORE_OK ? ent.thumb_blob_id : 0;
    if (rc != STORE_OK || *blob_id != 0)
        return rc;
    if ((rc = linked_record(tx, MODEL_CT_THUMBNAIL, user, now, blob_id)) != STORE_OK)
        return rc;
    rc = ops(tx)->ent_set_thumb(tx, product_id, *blob_id);
    return rc == STORE_NOMATCH ? STORE_INTERNAL : rc; /* the row is locked */
}

store_err store_thumb_drop(store_tx *tx, const store_ent_row *ent)
{
    return ent->thumb_blob_id != 0 ? ops(tx)->blob_delete(tx, ent->thumb_blob_id) : STORE_OK;
}

store_err store_not_file(store_tx *tx, int32_t id)
{
    store_file_row f;
    store_err rc = ops(tx)->file_read(tx, id, &f);
    return rc == STORE_OK ? STORE_ABSENT : rc == STORE_ABSENT ? STORE_OK : rc;
}

store_err store_blob_record(store_t *s, store_tx *tx, arena_t *a, int32_t id, bool linked,
                            model_blob *out)
{
    store_blob_row row;
    store_err rc = linked ? linked_read(tx, a, id, STORE_ROW_PLAIN, &row)
                          : ops(tx)->blob_read(tx, a, id, STORE_ROW_PLAIN, &row);
    if (rc == STORE_OK && !linked)
        rc = store_not_file(tx, id);
    return rc == STORE_OK ? store_blob_out(s, tx, a, &row, out) : rc;
}

store_err store_image_record(store_t *s, store_tx *tx, arena_t *a, model_kind k, int32_t id,
                             model_blob *out)
{
    store_ent_row ent;
    model_blob_empty(out);
    store_err rc = ops(tx)->ent_read(tx, NULL, k, id, STORE_ROW_PLAIN, &ent);
    if (rc == STORE_OK && ent.image_blob_id != 0)
        rc = store_blob_record(s, tx, a, ent.image_blob_id, true, out);
    return rc;
}

/* ---- the image of an entity: its record ----------------------------------- */

/* The context of the record recipes; each uses the members it names. */
typedef struct {
    store_t *s;
    arena_t *a;
    model_kind k;
    int32_t id, blob_id, user;
    const model_blob_edit *edit;
    int64_t expect, now;
    int64_t cutoff, count; /* the sweep's: in, out */
    model_blob out;
} rec_ctx;

store_err store_image_row_out(store_t *s, store_tx *tx, arena_t *a, const store_image_row *row,
                              model_blob *out)
{
    model_blob_empty(out);
    if (row->ent.image_blob_id == 0)
        return STORE_OK;
    if (row->rec.b.blob_id == 0) {
        log_error("store: BLOB record %d vanished", row->ent.image_blob_id);
        return STORE_CORRUPT;
    }
    return store_blob_out(s, tx, a, &row->rec, out);
}

/* One image_read (no bytes): one statement on PostgreSQL, so READ1. */
static store_err image_info_fn(store_tx *tx, void *ctx)
{
    rec_ctx *c = ctx;
    store_image_row row;
    store_err rc = ops(tx)->image_read(tx, c->a, c->k, c->id, false, &row);
    free(row.bytes); /* none asked for */
    return rc == STORE_OK ? store_image_row_out(c->s, tx, c->a, &row, &c->out) : rc;
}

/* Runs fn over c in mode m; *out := c->out on success (out may be NULL),
 * the empty carrier otherwise. */
static store_err run_rec(store_tx_mode m, store_recipe fn, rec_ctx *c, model_blob *out)
{
    store_err rc = store_run(c->s, m, fn, c);
    if (out != NULL && rc == STORE_OK)
        *out = c->out;
    else if (out != NULL)
        model_blob_empty(out);
    return rc;
}

store_err store_image_info_read(store_t *s, arena_t *a, model_kind k, int32_t id, model_blob *out)
{
    rec_ctx c = {.s = s, .a = a, .k = k, .id = id};
    return run_rec(STORE_TX_READ1, image_info_fn, &c, out);
}

/* R4: under the entity's lock, ensure the record; then the expect is a
 * condition of the write (info_version). */
static store_err image_info_put_fn(store_tx *tx, void *ctx)
{
    rec_ctx *c = ctx;
    store_ent_row ent;
    store_blob_row row;
    store_err rc = store_image_target(tx, c->k, c->id, c->user, c->now, c->expect, false, &ent);
    if (rc != STORE_OK)
        return rc;
    rc = ops(tx)->blob_set_info(tx, c->a, ent.image_blob_id, c->edit, c->user, c->now, c->expect,
                                &row);
    if (rc == STORE_NOMATCH)
        return store_blob_nomatch(tx, ent.image_blob_id);
    return rc == STORE_OK ? store_blob_out(c->s, tx, c->a, &row, &c->out) : rc;
}

store_err store_image_info_put(store_t *s, arena_t *a, model_kind k, int32_t id,
                               const model_blob_edit *edit, int32_t user_id, int64_t expect,
                               model_blob *out)
{
    assert(a != NULL && edit != NULL && out != NULL);
    rec_ctx c = {.s = s,
                 .a = a,
                 .k = k,
                 .id = id,
                 .user = user_id,
                 .edit = edit,
                 .expect = expect,
                 .now = text_now_ms()};
    return run_rec(STORE_TX_WRITE, image_info_put_fn, &c, out);
}

static store_err image_delete_fn(store_tx *tx, void *ctx)
{
    rec_ctx *c = ctx;
    store_ent_row ent;
    store_blob_row row;
    store_err rc = ops(tx)->ent_read(tx, NULL, c->k, c->id, STORE_ROW_UPDATE, &ent);
    if (rc != STORE_OK || ent.image_blob_id == 0)
        return rc == STORE_OK ? expect_is(c->expect, 0) : rc;
    if (c->expect != STORE_ANY &&
        ((rc = linked_read(tx, NULL, ent.image_blob_id, STORE_ROW_UPDATE, &row)) != STORE_OK ||
         (rc = expect_is(c->expect, row.b.version)) != STORE_OK))
        return rc;
    return ops(tx)->blob_delete(tx, ent.image_blob_id); /* the thumbnail stays */
}

store_err store_image_delete(store_t *s, model_kind k, int32_t id, int64_t expect)
{
    rec_ctx c = {.s = s, .k = k, .id = id, .expect = expect};
    return run_rec(STORE_TX_WRITE, image_delete_fn, &c, NULL);
}

/* ---- BLOB records by BlobId ------------------------------------------------ */

static store_err blob_get_fn(store_tx *tx, void *ctx)
{
    rec_ctx *c = ctx;
    return store_blob_record(c->s, tx, c->a, c->blob_id, false, &c->out);
}

store_err store_blob_get(store_t *s, arena_t *a, int32_t blob_id, model_blob *out)
{
    assert(a != NULL && out != NULL);
    rec_ctx c = {.s = s, .a = a, .blob_id = blob_id};
    /* one blob_read: on PostgreSQL one statement (its users joined), so no
     * BEGIN/COMMIT; SQLite reads users it does not remember afterwards,
     * by id (display fields, never older than the record) */
    return run_rec(STORE_TX_READ1, blob_get_fn, &c, out);
}

static store_err blob_info_put_fn(store_tx *tx, void *ctx)
{
    rec_ctx *c = ctx;
    store_blob_row row;
    store_err rc = store_not_file(tx, c->blob_id);
    if (rc == STORE_OK)
        rc = ops(tx)->blob_set_info(tx, c->a, c->blob_id, c->edit, c->user, c->now, STORE_ANY,
                                    &row);
    if (rc == STORE_NOMATCH)
        return STORE_ABSENT;
    return rc == STORE_OK ? store_blob_out(c->s, tx, c->a, &row, &c->out) : rc;
}

store_err store_blob_info_put(store_t *s, arena_t *a, int32_t blob_id, const model_blob_edit *edit,
                              int32_t user_id, model_blob *out)
{
    assert(a != NULL && edit != NULL && out != NULL);
    rec_ctx c = {
        .s = s, .a = a, .blob_id = blob_id, .user = user_id, .edit = edit, .now = text_now_ms()};
    return run_rec(STORE_TX_WRITE, blob_info_put_fn, &c, out);
}

static store_err blob_delete_fn(store_tx *tx, void *ctx)
{
    rec_ctx *c = ctx;
    store_err rc = store_not_file(tx, c->blob_id);
    if (rc == STORE_ABSENT)
        return STORE_OK; /* a task's file is none here: its task deletes it */
    return rc == STORE_OK ? ops(tx)->blob_delete(tx, c->blob_id) : rc; /* none: nothing to do */
}

store_err store_blob_delete(store_t *s, int32_t blob_id)
{
    rec_ctx c = {.s = s, .blob_id = blob_id};
    return run_rec(STORE_TX_WRITE, blob_delete_fn, &c, NULL);
}

/* ---- links and the sweep -------------------------------------------------- */

/* R5: record blob_id becomes linked, or the reason it cannot: INVALID
 * when there is no such record, CONFLICT when it is linked already. The
 * claim is the test-and-set (unlinked <=> unlinked_ms set). */
static store_err claim(store_tx *tx, int32_t blob_id)
{
    store_blob_row row;
    store_err rc = store_not_file(tx, blob_id);
    if (rc == STORE_ABSENT)
        return STORE_INVALID; /* a task's file: no record to link */
    if (rc == STORE_OK)
        rc = ops(tx)->blob_claim(tx, blob_id);
    if (rc != STORE_NOMATCH)
        return rc;
    rc = ops(tx)->blob_read(tx, NULL, blob_id, STORE_ROW_PLAIN, &row);
    return rc == STORE_OK ? STORE_CONFLICT : rc == STORE_ABSENT ? STORE_INVALID : rc;
}

/* The order of checks is store.h's: the entity (ABSENT), the record
 * (INVALID), its links (CONFLICT). Linking always writes unlinked_ms on
 * both records (R6: the sweep re-checks that column after a wait). */
static store_err image_link_fn(store_tx *tx, void *ctx)
{
    rec_ctx *c = ctx;
    store_ent_row ent;
    store_err rc = ops(tx)->ent_read(tx, NULL, c->k, c->id, STORE_ROW_UPDATE, &ent);
    if (rc != STORE_OK)
        return rc;
    int32_t old = ent.image_blob_id;
    if (old == c->blob_id)
        return STORE_OK; /* the image it has already: nothing changes, thumbnail included */
    if (c->blob_id != 0 && (rc = claim(tx, c->blob_id)) != STORE_OK)
        return rc;
    if ((rc = ops(tx)->ent_set_image(tx, c->k, c->id, c->blob_id)) != STORE_OK)
        return rc == STORE_NOMATCH ? STORE_INTERNAL : rc; /* the row is locked */
    if (old != 0 && (rc = ops(tx)->blob_unlink(tx, old, c->now)) == STORE_NOMATCH) {
        log_error("store: BLOB record %d vanished", old); /* its link's key forbids it */
        return STORE_CORRUPT;
    }
    return rc == STORE_OK ? store_thumb_drop(tx, &ent) : rc;
}

/* user_id is not recorded: linking changes no field of the record (its
 * UpdatedBy/UpdatedDate describe the picture, which stays the same). */
store_err store_image_link(store_t *s, model_kind k, int32_t id, int32_t blob_id, int32_t user_id)
{
    (void)user_id;
    rec_ctx c = {.s = s, .k = k, .id = id, .blob_id = blob_id, .now = text_now_ms()};
    return run_rec(STORE_TX_WRITE, image_link_fn, &c, NULL);
}

static store_err sweep_fn(store_tx *tx, void *ctx)
{
    rec_ctx *c = ctx;
    return ops(tx)->blob_sweep(tx, c->cutoff, &c->count);
}

#define STALE_AT_ONCE 16

/* The unlinked files of batch tasks first, a few pieces per transaction
 * (store_file_sweep: each only if it is still unbound and stale, as a task
 * may take an input between the list and its purge): the sweep's one
 * statement would hold the writer while SQLite frees a large value page
 * by page. *count: how many. */
static store_err sweep_files(store_t *s, int64_t cutoff_ms, int64_t *count)
{
    int32_t ids[STALE_AT_ONCE];
    int n = 1, left = 0;
    store_err rc = STORE_OK;
    while (rc == STORE_OK && n > left) { /* until a round sweeps none */
        rc = store_file_stale(s, cutoff_ms, ids, STALE_AT_ONCE, &n);
        left = 0;
        for (int i = 0; rc == STORE_OK && i < n; i++) {
            rc = store_file_sweep(s, ids[i], cutoff_ms);
            *count += rc == STORE_OK;
            left += rc == STORE_NOMATCH;
            rc = rc == STORE_NOMATCH ? STORE_OK : rc;
        }
    }
    return rc;
}

store_err store_blob_sweep(store_t *s, int64_t cutoff_ms, int64_t *count)
{
    assert(count != NULL);
    int64_t files = 0;
    rec_ctx c = {.s = s, .cutoff = cutoff_ms};
    store_err rc = sweep_files(s, cutoff_ms, &files);
    if (rc == STORE_OK)
        rc = run_rec(STORE_TX_WRITE, sweep_fn, &c, NULL);
    *count = rc == STORE_OK ? c.count + files : 0;
    return rc;
}
