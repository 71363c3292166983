/*
 * store_account.c — users, credentials, partner apps and server metadata:
 * the store.h calls of those sections as recipes over the primitives of
 * store_backend.h (its users and credentials/apps sections).
 *
 * The rules live here, once for every backend:
 *  - created_ms defaults to now when the caller leaves it 0;
 *  - a missing full name, password hash or label is stored as "";
 *  - only sessions keep an XSRF hash (zero, i.e. none, for the others);
 *    pair_id 0 (or below) is none;
 *  - a write of users is signalled: on a backend with users_bump (PG) in
 *    the same transaction; on SQLite the commit that ends a transaction that
 *    wrote users moves the shared USERS count (<db>-changes), which the read
 *    cache and auth's Basic memory key on;
 *  - a conditional write that matched no row (NOMATCH) is ABSENT: no such
 *    user, credential of that kind, or app;
 *  - revoking a credential revokes the one paired with it in the same
 *    transaction; revoking a user's credentials finds the user by name
 *    first (ABSENT), then writes.
 * The backend answers CONFLICT for a name taken (case-insensitively) and
 * INVALID for a credential whose user does not exist.
 *
 * store_user_by_name's read cache stays in store.c, in front of
 * store_account_user_by_name.
 */
#include <assert.h>
#include <string.h>

#include "core/text.h"
#include "store/store_backend.h"
#include "store/store_int.h"

/* The backend's primitives, from a recipe's transaction. */
static const struct store_be_ops *ops(store_tx *tx)
{
    return tx->be->ops;
}

/* created, or now when the caller left it 0. */
static int64_t created_or_now(int64_t created)
{
    return created != 0 ? created : text_now_ms();
}

/* A conditional write's NOMATCH as "the subject does not exist". */
static store_err absent_if_nomatch(store_err rc)
{
    return rc == STORE_NOMATCH ? STORE_ABSENT : rc;
}

/* Users were written in tx: the backends with a users counter row move it
 * here; SQLite's counts move when tx ends. */
static store_err users_bumped(store_tx *tx, store_err rc)
{
    if (rc == STORE_OK && ops(tx)->users_bump != NULL)
        rc = ops(tx)->users_bump(tx);
    return rc;
}

/* ---- recipes of one primitive ------------------------------------------------
 * Most calls here are one primitive in one transaction: the call names the
 * primitive (one_prim) and fills the members of one_call its arguments
 * take; one_run is the recipe of them all. */

typedef enum {
    ONE_USER_READ,
    ONE_USER_LIST,
    ONE_USER_COUNT,
    ONE_CRED_INSERT,
    ONE_CRED_FIND,
    ONE_CRED_LIST,
    ONE_CRED_PURGE,
    ONE_APP_INSERT,
    ONE_APP_FIND,
    ONE_APP_LIST,
    ONE_APP_REVOKE,
    ONE_META_GET,
    ONE_META_PUT,
} one_prim;

typedef struct {
    one_prim prim;
    arena_t *a;                /* reads: where the answer lives */
    const char *name;          /* a user's (NULL: by id), an app's, meta's */
    int32_t id;                /* a user's */
    store_cred_kind kind;      /* a credential's */
    const unsigned char *hash; /* a credential's, an app's */
    int64_t ms;                /* inserts: created; cred_list, cred_purge: now */
    const void *in;            /* inserts: the row; meta_put: the value */
    size_t len;                /* meta_put: the value's length */
    void *out;                 /* the row read, the count; lists, meta_get: where to put them */
    size_t *n;                 /* lists: how many; meta_get: the value's length */
    int64_t new_id;            /* inserts: the new row's id */
} one_call;

static store_err one_run(store_tx *tx, void *ctx)
{
    one_call *x = ctx;
    const struct store_be_ops *o = ops(tx);
    switch (x->prim) {
    case ONE_USER_READ:
        return o->user_read(tx, x->a, x->id, x->name, x->out);
    case ONE_USER_LIST:
        return o->user_list(tx, x->a, x->out, x->n);
    case ONE_USER_COUNT:
        return o->user_count(tx, x->out);
    case ONE_CRED_INSERT:
        return o->cred_insert(tx, x->in, x->ms, &x->new_id);
    case ONE_CRED_FIND:
        return o->cred_find(tx, x->a, x->kind, x->hash, x->out);
    case ONE_CRED_LIST:
        return o->cred_list(tx, x->a, x->kind, x->ms, x->out, x->n);
    case ONE_CRED_PURGE:
        return o->cred_purge(tx, x->ms);
    case ONE_APP_INSERT:
        return o->app_insert(tx, x->in, x->ms, &x->new_id);
    case ONE_APP_FIND:
        return o->app_find(tx, x->a, x->hash, x->out);
    case ONE_APP_LIST:
        return o->app_list(tx, x->a, x->out, x->n);
    case ONE_APP_REVOKE:
        return absent_if_nomatch(o->app_revoke(tx, x->name));
    case ONE_META_GET:
        return o->meta_get(tx, x->a, x->name, x->out, x->n);
    case ONE_META_PUT:
        return o->meta_put(tx, x->name, x->in, x->len);
    }
    return STORE_INTERNAL;
}

/* Runs x's primitive in a transaction of mode m. */
static store_err one(store_t *s, store_tx_mode m, one_call *x)
{
    return store_run(s, m, one_run, x);
}

/* Inserts row (created at `created`) through prim; *id := its id on success. */
static store_err one_insert(store_t *s, one_prim prim, const void *row, int64_t created,
                            int64_t *id)
{
    one_call x = {prim, .in = row, .ms = created};
    store_err rc = one(s, STORE_TX_WRITE, &x);
    if (rc == STORE_OK)
        *id = x.new_id;
    return rc;
}

/* ---- users ---------------------------------------------------------------- */

struct user_add {
    model_user row; /* what is inserted: defaults applied */
    int32_t id;
};

static store_err user_add_run(store_tx *tx, void *ctx)
{
    struct user_add *x = ctx;
    return users_bumped(tx, ops(tx)->user_insert(tx, &x->row, x->row.created_ms, &x->id));
}

store_err store_user_add(store_t *s, model_user *u)
{
    assert(u != NULL && u->name != NULL);
    struct user_add x = {.row = *u};
    x.row.full_name = u->full_name != NULL ? u->full_name : "";
    x.row.pw_hash = u->pw_hash != NULL ? u->pw_hash : "";
    x.row.created_ms = created_or_now(u->created_ms);
    store_err rc = store_run(s, STORE_TX_WRITE, user_add_run, &x);
    if (rc == STORE_OK) {
        u->id = x.id;
        u->created_ms = x.row.created_ms;
    }
    return rc;
}

store_err store_user_get(store_t *s, arena_t *a, int32_t id, model_user *out)
{
    return one(s, STORE_TX_READ1, &(one_call){ONE_USER_READ, .a = a, .id = id, .out = out});
}

store_err store_account_user_by_name(store_t *s, arena_t *a, const char *name, model_user *out)
{
    assert(name != NULL);
    return one(s, STORE_TX_READ1, &(one_call){ONE_USER_READ, .a = a, .name = name, .out = out});
}

store_err store_user_list(store_t *s, arena_t *a, model_user **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    return one(s, STORE_TX_READ1, &(one_call){ONE_USER_LIST, .a = a, .out = out, .n = n});
}

store_err store_user_count(store_t *s, int64_t *n)
{
    *n = 0;
    return one(s, STORE_TX_READ1, &(one_call){ONE_USER_COUNT, .out = n});
}

/* user_set's arguments: pw_hash NULL and disabled -1 keep the column. */
struct user_set {
    const char *name, *pw_hash;
    int disabled;
};

static store_err user_set_run(store_tx *tx, void *ctx)
{
    struct user_set *x = ctx;
    store_err rc = ops(tx)->user_set(tx, x->name, x->pw_hash, x->disabled);
    return users_bumped(tx, absent_if_nomatch(rc));
}

store_err store_user_set_password(store_t *s, const char *name, const char *pw_hash)
{
    assert(name != NULL && pw_hash != NULL);
    struct user_set x = {.name = name, .pw_hash = pw_hash, .disabled = -1};
    return store_run(s, STORE_TX_WRITE, user_set_run, &x);
}

store_err store_user_set_disabled(store_t *s, const char *name, bool disabled)
{
    assert(name != NULL);
    struct user_set x = {.name = name, .disabled = disabled ? 1 : 0};
    return store_run(s, STORE_TX_WRITE, user_set_run, &x);
}

/* ---- credentials ---------------------------------------------------------- */

static bool cred_kind_ok(store_cred_kind kind)
{
    return kind == STORE_CRED_TICKET || kind == STORE_CRED_TOKEN || kind == STORE_CRED_SESSION;
}

store_err store_cred_add(store_t *s, store_cred *c)
{
    assert(c != NULL && cred_kind_ok(c->kind));
    store_cred row = *c; /* what is inserted: defaults applied */
    if (c->kind != STORE_CRED_SESSION)
        memset(row.xsrf_hash, 0, sizeof(row.xsrf_hash));
    if (c->pair_id < 0)
        row.pair_id = 0;
    row.label = c->label != NULL ? c->label : "";
    row.created_ms = created_or_now(c->created_ms);
    store_err rc = one_insert(s, ONE_CRED_INSERT, &row, row.created_ms, &c->id);
    if (rc == STORE_OK)
        c->created_ms = row.created_ms;
    return rc;
}

store_err store_cred_find(store_t *s, arena_t *a, store_cred_kind kind,
                          const unsigned char hash[STORE_HASH_BYTES], store_cred *out)
{
    assert(cred_kind_ok(kind) && hash != NULL);
    return one(s, STORE_TX_READ1,
               &(one_call){ONE_CRED_FIND, .a = a, .kind = kind, .hash = hash, .out = out});
}

store_err store_cred_list(store_t *s, arena_t *a, store_cred_kind kind, int64_t now_ms,
                          store_cred **out, size_t *n)
{
    assert(cred_kind_ok(kind));
    *out = NULL;
    *n = 0;
    return one(s, STORE_TX_READ1,
               &(one_call){ONE_CRED_LIST, .a = a, .kind = kind, .ms = now_ms, .out = out, .n = n});
}

struct cred_revoke {
    store_cred_kind kind;
    int64_t id;
};

/* The credential (NOMATCH: none of that kind), then its pair either way. */
static store_err cred_revoke_run(store_tx *tx, void *ctx)
{
    struct cred_revoke *x = ctx;
    store_err rc = absent_if_nomatch(ops(tx)->cred_revoke(tx, x->kind, x->id));
    return rc == STORE_OK ? ops(tx)->cred_revoke_pair(tx, x->id) : rc;
}

store_err store_cred_revoke(store_t *s, store_cred_kind kind, int64_t id)
{
    assert(cred_kind_ok(kind));
    struct cred_revoke x = {.kind = kind, .id = id};
    return store_run(s, STORE_TX_WRITE, cred_revoke_run, &x);
}

struct cred_revoke_user {
    const char *name;
    arena_t *a; /* the user row read on the way */
};

/* A read of the user's id (it never changes), then the write. */
static store_err cred_revoke_user_run(store_tx *tx, void *ctx)
{
    struct cred_revoke_user *x = ctx;
    model_user u;
    store_err rc = ops(tx)->user_read(tx, x->a, 0, x->name, &u);
    return rc == STORE_OK ? ops(tx)->cred_revoke_user(tx, u.id) : rc;
}

store_err store_cred_revoke_user(store_t *s, const char *name)
{
    assert(name != NULL);
    arena_t *a = arena_create();
    if (a == NULL)
        return STORE_INTERNAL;
    struct cred_revoke_user x = {.name = name, .a = a};
    store_err rc = store_run(s, STORE_TX_WRITE, cred_revoke_user_run, &x);
    arena_destroy(a);
    return rc;
}

store_err store_cred_purge(store_t *s, int64_t now_ms)
{
    return one(s, STORE_TX_WRITE, &(one_call){ONE_CRED_PURGE, .ms = now_ms});
}

/* ---- partner applications ------------------------------------------------- */

store_err store_app_add(store_t *s, store_app *a)
{
    assert(a != NULL && a->name != NULL);
    store_app row = *a; /* what is inserted: defaults applied */
    row.created_ms = created_or_now(a->created_ms);
    store_err rc = one_insert(s, ONE_APP_INSERT, &row, row.created_ms, &a->id);
    if (rc == STORE_OK)
        a->created_ms = row.created_ms;
    return rc;
}

store_err store_app_find(store_t *s, arena_t *a, const unsigned char hash[STORE_HASH_BYTES],
                         store_app *out)
{
    assert(hash != NULL);
    return one(s, STORE_TX_READ1, &(one_call){ONE_APP_FIND, .a = a, .hash = hash, .out = out});
}

store_err store_app_list(store_t *s, arena_t *a, store_app **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    return one(s, STORE_TX_READ1, &(one_call){ONE_APP_LIST, .a = a, .out = out, .n = n});
}

store_err store_app_revoke(store_t *s, const char *name)
{
    assert(name != NULL);
    return one(s, STORE_TX_WRITE, &(one_call){ONE_APP_REVOKE, .name = name});
}

/* ---- server metadata ------------------------------------------------------ */

store_err store_meta_get(store_t *s, arena_t *a, const char *name, void **value, size_t *len)
{
    assert(a != NULL && name != NULL && value != NULL && len != NULL);
    *value = NULL;
    *len = 0;
    return one(s, STORE_TX_READ1,
               &(one_call){ONE_META_GET, .a = a, .name = name, .out = value, .n = len});
}

store_err store_meta_put(store_t *s, const char *name, const void *value, size_t len)
{
    assert(name != NULL && (value != NULL || len == 0));
    return one(s, STORE_TX_WRITE, &(one_call){ONE_META_PUT, .name = name, .in = value, .len = len});
}
