/*
 * test_store_pg.c — the PostgreSQL backend (store_pg.c) driven directly
 * through its store_be_ops against a real throwaway cluster: every
 * primitive with its NOMATCH / ABSENT paths and RETURNING values, the
 * transaction modes (READ snapshot, rollback, the first failure as the
 * outcome), row locks and advisory xlocks that make a second connection
 * wait (and TRY_WRITE that refuses to), a deadlock as STORE_RETRY,
 * picture bytes of 0, 1, PIECE-1, PIECE, PIECE+1 and 10 MB in and out
 * with bounded memory, a terminated backend (UNAVAILABLE, then OK; a
 * COMMIT without answer), and store_hold across two stores.
 *
 * The test starts a cluster of its own (scripts/pg-cluster.sh, as
 * test_pg_conn); each test works in a fresh schema (pgtmp.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/arena.h"
#include "store/pg_conn.h"
#include "store/store_backend.h"

#include "pgtmp.h"

typedef struct {
    pgtmp t;
    store_be *b;
    arena_t *a;
    int64_t version, updated_ms; /* what the last insert or update of an entity returned */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    store_options o = {.pool_size = 4};
    if (f == NULL || pgtmp_make(&f->t) != 0 || store_pg_open(f->t.conninfo, &o, &f->b) != STORE_OK)
        return -1;
    f->a = arena_create();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    f->b->ops->close(f->b);
    pgtmp_drop(&f->t);
    arena_destroy(f->a);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------ */

#define OPS (f->b->ops)

static store_tx *begin(fixture *f, store_tx_mode m)
{
    store_tx *tx = NULL;
    assert_int_equal(OPS->begin(f->b, NULL, m, &tx), STORE_OK);
    assert_non_null(tx);
    return tx;
}

static void commit(fixture *f, store_tx *tx)
{
    assert_int_equal(OPS->end(tx, STORE_OK), STORE_OK);
}

static long long sql_int(fixture *f, const char *sql)
{
    return pgtmp_int(&f->t, sql);
}

static model_user user_of(const char *name)
{
    return (model_user){
        .name = name, .full_name = "Full", .role = MODEL_ROLE_EDITOR, .pw_hash = "$argon2id$x"};
}

/* A user committed; its id. */
static int32_t add_user(fixture *f, const char *name)
{
    model_user u = user_of(name);
    int32_t id = 0;
    store_tx *tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->user_insert(tx, &u, 1000, &id), STORE_OK);
    commit(f, tx);
    return id;
}

static model_entity_t contact(int32_t id, const char *name)
{
    model_entity_t e = {.kind = MODEL_CONTACT, .id = id};
    e.v[0].s = name;
    return e;
}

static model_entity_t product(int32_t id, const char *name)
{
    model_entity_t e = {.kind = MODEL_PRODUCT, .id = id};
    e.v[0].s = name;
    e.v[1].s = "ERP-1";
    return e;
}

static void add_entity(fixture *f, const model_entity_t *e)
{
    store_tx *tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->ent_insert(tx, e, 5000, &f->version, &f->updated_ms), STORE_OK);
    commit(f, tx);
}

/* A new BLOB record, committed: linked (unlinked_ms INT64_MIN) or not. */
static int32_t add_blob(fixture *f, int32_t user, int64_t unlinked_ms)
{
    int32_t id = 0;
    store_tx *tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->blob_insert(tx, "PHOTO", user, 7000, unlinked_ms, &id), STORE_OK);
    commit(f, tx);
    assert_true(id > 0);
    return id;
}

/* ---- life ---------------------------------------------------------------- */

static void test_open(void **state)
{
    fixture *f = *state;
    char buf[512], why[256] = "";
    assert_int_equal(sql_int(f, "SELECT version FROM schema_version"), PGC_SCHEMA_VERSION);
    assert_int_equal(sql_int(f, "SELECT n FROM counters WHERE name = 'users'"), 0);
    OPS->describe(f->b, buf, sizeof(buf));
    assert_non_null(strstr(buf, "dbname="));
    assert_null(OPS->spool_hint(f->b));
    assert_null(OPS->counts(f->b));
    assert_false(OPS->counts_check(f->b));
    assert_null(OPS->scope_wait);
    assert_int_equal(OPS->ping(f->b, why, sizeof(why)), STORE_OK);
    /* a second store on the same schema finds it migrated */
    store_be *b2 = NULL;
    store_options o = {0};
    assert_int_equal(store_pg_open(f->t.conninfo, &o, &b2), STORE_OK);
    b2->ops->close(b2);
    /* a schema newer than this binary is refused */
    assert_int_equal(pgtmp_exec(&f->t, "UPDATE schema_version SET version = 99"), 0);
    assert_int_equal(store_pg_open(f->t.conninfo, &o, &b2), STORE_INTERNAL);
    assert_null(b2);
    assert_int_equal(pgtmp_exec(&f->t, "UPDATE schema_version SET version = 9"), 0);
}

/* ---- users -------------------------------------------------------------- */

static void test_users(void **state)
{
    fixture *f = *state;
    model_user u = user_of("Alice"), got;
    int32_t id = add_user(f, "Alice"), id2 = 0;
    int32_t bob = add_user(f, "bob");
    assert_true(bob > id);
    store_tx *tx = begin(f, STORE_TX_WRITE);
    u.name = "ALICE";
    assert_int_equal(OPS->user_insert(tx, &u, 1, &id2), STORE_CONFLICT); /* names ignore case */
    assert_int_equal(OPS->end(tx, STORE_OK), STORE_CONFLICT); /* the failure is the outcome */

    tx = begin(f, STORE_TX_READ);
    assert_int_equal(OPS->user_read(tx, f->a, id, NULL, &got), STORE_OK);
    assert_string_equal(got.name, "Alice");
    assert_string_equal(got.full_name, "Full");
    assert_int_equal(got.role, MODEL_ROLE_EDITOR);
    assert_string_equal(got.pw_hash, "$argon2id$x");
    assert_int_equal(got.created_ms, 1000);
    assert_false(got.disabled);
    assert_int_equal(OPS->user_read(tx, f->a, 0, "aLiCe", &got), STORE_OK);
    assert_int_equal(got.id, id);
    assert_int_equal(OPS->user_read(tx, f->a, 0, "carol", &got), STORE_ABSENT);
    assert_int_equal(OPS->user_read(tx, f->a, 999, NULL, &got), STORE_ABSENT);
    model_user *list = NULL;
    size_t n = 0;
    int64_t count = 0;
    assert_int_equal(OPS->user_list(tx, f->a, &list, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, id);
    assert_string_equal(list[1].name, "bob");
    assert_int_equal(OPS->user_count(tx, &count), STORE_OK);
    assert_int_equal(count, 2);
    commit(f, tx);

    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->user_set(tx, "ALICE", "newhash", -1), STORE_OK);
    assert_int_equal(OPS->user_set(tx, "bob", NULL, 1), STORE_OK);
    assert_int_equal(OPS->user_set(tx, "nobody", "x", 0), STORE_NOMATCH);
    commit(f, tx);
    tx = begin(f, STORE_TX_READ1);
    assert_int_equal(OPS->user_read(tx, f->a, id, NULL, &got), STORE_OK);
    assert_string_equal(got.pw_hash, "newhash");
    assert_false(got.disabled);
    commit(f, tx);
    tx = begin(f, STORE_TX_READ1);
    assert_int_equal(OPS->user_read(tx, f->a, bob, NULL, &got), STORE_OK);
    assert_string_equal(got.pw_hash, "$argon2id$x");
    assert_true(got.disabled);
    commit(f, tx);
}

static void test_users_stamp(void **state)
{
    fixture *f = *state;
    uint64_t s0 = 99, s1 = 0, s2 = 0;
    store_tx *tx = begin(f, STORE_TX_READ1);
    assert_int_equal(OPS->users_stamp(tx, &s0), STORE_OK);
    commit(f, tx);
    assert_int_equal(s0, 0);
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->users_bump(tx), STORE_OK);
    commit(f, tx);
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->users_bump(tx), STORE_OK);
    assert_int_equal(OPS->end(tx, STORE_CONFLICT), STORE_CONFLICT); /* rolled back */
    tx = begin(f, STORE_TX_READ1);
    assert_int_equal(OPS->users_stamp(tx, &s1), STORE_OK);
    commit(f, tx);
    assert_int_equal(s1, 1);
    assert_int_equal(pgtmp_exec(&f->t, "DELETE FROM counters"), 0);
    tx = begin(f, STORE_TX_READ1);
    assert_int_equal(OPS->users_stamp(tx, &s2), STORE_INTERNAL);
    OPS->end(tx, STORE_INTERNAL);
}

/* ---- credentials, apps, meta ----------------------------------------------- */

static store_cred cred_of(store_cred_kind k, int32_t user, unsigned char tag, int64_t expires)
{
    store_cred c = {.kind = k, .user_id = user, .expires_ms = expires, .label = "lbl"};
    memset(c.hash, tag, sizeof(c.hash));
    memset(c.xsrf_hash, tag + 1, sizeof(c.xsrf_hash));
    return c;
}

static void test_creds(void **state)
{
    fixture *f = *state;
    int32_t uid = add_user(f, "alice"), other = add_user(f, "bob");
    store_cred t = cred_of(STORE_CRED_TICKET, uid, 1, 10000);
    store_cred s = cred_of(STORE_CRED_SESSION, uid, 3, 10000), got;
    store_cred old = cred_of(STORE_CRED_TICKET, uid, 5, 50); /* expired at 100 */
    store_cred bobs = cred_of(STORE_CRED_TICKET, other, 7, 10000);
    int64_t tid = 0, sid = 0, oid = 0, bid = 0, xid = 0;
    store_tx *tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->cred_insert(tx, &t, 11, &tid), STORE_OK);
    s.pair_id = tid;
    assert_int_equal(OPS->cred_insert(tx, &s, 12, &sid), STORE_OK);
    assert_int_equal(OPS->cred_insert(tx, &old, 13, &oid), STORE_OK);
    assert_int_equal(OPS->cred_insert(tx, &bobs, 14, &bid), STORE_OK);
    commit(f, tx);
    assert_true(tid > 0 && sid > tid && oid > sid);
    store_cred nouser = cred_of(STORE_CRED_TICKET, 9999, 9, 1);
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->cred_insert(tx, &nouser, 1, &xid), STORE_INVALID);
    OPS->end(tx, STORE_INVALID);

    tx = begin(f, STORE_TX_READ);
    assert_int_equal(OPS->cred_find(tx, f->a, STORE_CRED_SESSION, s.hash, &got), STORE_OK);
    assert_int_equal(got.id, sid);
    assert_string_equal(got.user_name, "alice");
    assert_memory_equal(got.xsrf_hash, s.xsrf_hash, STORE_HASH_BYTES);
    assert_int_equal(got.pair_id, tid);
    assert_int_equal(got.created_ms, 12);
    assert_string_equal(got.label, "lbl");
    assert_int_equal(OPS->cred_find(tx, f->a, STORE_CRED_TICKET, t.hash, &got), STORE_OK);
    static const unsigned char zero[STORE_HASH_BYTES];
    assert_memory_equal(got.xsrf_hash, zero, STORE_HASH_BYTES); /* tickets keep none */
    assert_int_equal(got.pair_id, 0);
    assert_int_equal(OPS->cred_find(tx, f->a, STORE_CRED_TOKEN, t.hash, &got), STORE_ABSENT);
    store_cred *list = NULL;
    size_t n = 0;
    assert_int_equal(OPS->cred_list(tx, f->a, STORE_CRED_TICKET, 100, &list, &n), STORE_OK);
    assert_int_equal(n, 2); /* not the expired one */
    assert_int_equal(list[0].id, tid);
    assert_int_equal(list[1].id, bid);
    commit(f, tx);

    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->cred_revoke(tx, STORE_CRED_TOKEN, tid), STORE_NOMATCH); /* wrong kind */
    assert_int_equal(OPS->cred_revoke(tx, STORE_CRED_SESSION, sid), STORE_OK);
    assert_int_equal(OPS->cred_revoke_pair(tx, sid), STORE_OK);
    commit(f, tx);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM cred WHERE revoked = 1"), 2); /* pair */
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->cred_revoke(tx, STORE_CRED_SESSION, sid), STORE_OK); /* again: a match */
    assert_int_equal(OPS->cred_revoke_user(tx, other), STORE_OK);
    commit(f, tx);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM cred WHERE revoked = 0"), 1); /* old */
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->cred_purge(tx, 100), STORE_OK);
    commit(f, tx);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM cred"), 0);
}

static void test_apps_meta(void **state)
{
    fixture *f = *state;
    store_app ap = {.name = "Partner", .created_ms = 0}, got;
    int64_t id = 0, id2 = 0;
    memset(ap.hash, 0xab, sizeof(ap.hash));
    store_tx *tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->app_insert(tx, &ap, 42, &id), STORE_OK);
    commit(f, tx);
    ap.name = "PARTNER";
    ap.hash[0] = 1;
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->app_insert(tx, &ap, 43, &id2), STORE_CONFLICT);
    OPS->end(tx, STORE_CONFLICT);
    tx = begin(f, STORE_TX_READ);
    memset(ap.hash, 0xab, sizeof(ap.hash));
    assert_int_equal(OPS->app_find(tx, f->a, ap.hash, &got), STORE_OK);
    assert_int_equal(got.id, id);
    assert_string_equal(got.name, "Partner");
    assert_int_equal(got.created_ms, 42);
    assert_false(got.revoked);
    ap.hash[1] = 0;
    assert_int_equal(OPS->app_find(tx, f->a, ap.hash, &got), STORE_ABSENT);
    store_app *list = NULL;
    size_t n = 0;
    assert_int_equal(OPS->app_list(tx, f->a, &list, &n), STORE_OK);
    assert_int_equal(n, 1);
    commit(f, tx);
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->app_revoke(tx, "partner"), STORE_OK);
    assert_int_equal(OPS->app_revoke(tx, "nobody"), STORE_NOMATCH);
    commit(f, tx);
    assert_int_equal(sql_int(f, "SELECT revoked FROM app"), 1);

    void *v = NULL;
    size_t len = 0;
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->meta_get(tx, f->a, "k", &v, &len), STORE_ABSENT);
    assert_int_equal(OPS->meta_put(tx, "k", "\0\1\2", 3), STORE_OK);
    assert_int_equal(OPS->meta_put(tx, "k", "\0\1\2\3", 4), STORE_OK); /* upsert */
    assert_int_equal(OPS->meta_put(tx, "empty", NULL, 0), STORE_OK);
    commit(f, tx);
    tx = begin(f, STORE_TX_READ1);
    assert_int_equal(OPS->meta_get(tx, f->a, "k", &v, &len), STORE_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(v, "\0\1\2\3", 4);
    assert_int_equal(OPS->meta_get(tx, f->a, "empty", &v, &len), STORE_OK);
    assert_int_equal(len, 0);
    commit(f, tx);
}

/* ---- entities ------------------------------------------------------------ */

static void test_entities(void **state)
{
    fixture *f = *state;
    int32_t id = 0;
    int64_t version = 0;
    store_ent_row row, gone;
    store_tx *tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->xlock(tx, STORE_XLOCK_ENTITY_IDS, MODEL_CONTACT), STORE_OK);
    assert_int_equal(OPS->ent_next_id(tx, MODEL_CONTACT, &id), STORE_OK);
    assert_int_equal(id, 1);
    model_entity_t c = contact(id, "Acme");
    assert_int_equal(OPS->ent_insert(tx, &c, 5000, &f->version, &f->updated_ms), STORE_OK);
    assert_int_equal(OPS->ent_next_id(tx, MODEL_CONTACT, &id), STORE_OK);
    assert_int_equal(id, 2);
    commit(f, tx);
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->ent_insert(tx, &c, 5000, &f->version, &f->updated_ms),
                     STORE_CONFLICT); /* id taken */
    OPS->end(tx, STORE_CONFLICT);
    model_entity_t p = {.kind = MODEL_PERSON, .id = 1};
    p.v[0].s = "Ann";
    p.v[1].s = "Lee";
    p.v[2].i = 77; /* no contact 77 */
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->ent_insert(tx, &p, 5000, &f->version, &f->updated_ms), STORE_INVALID);
    OPS->end(tx, STORE_INVALID);
    p.v[2].i = 1;
    add_entity(f, &p);

    tx = begin(f, STORE_TX_READ);
    assert_int_equal(OPS->ent_read(tx, f->a, MODEL_PERSON, 1, STORE_ROW_PLAIN, &row), STORE_OK);
    assert_string_equal(row.e.v[0].s, "Ann");
    assert_int_equal(row.e.v[2].i, 1);
    assert_int_equal(row.e.version, 1);
    assert_int_equal(row.e.updated_ms, 5000);
    assert_int_equal(row.image_blob_id, 0);
    assert_int_equal(row.thumb_blob_id, 0);
    assert_int_equal(OPS->ent_read(tx, f->a, MODEL_PERSON, 2, STORE_ROW_SHARE, &row), STORE_ABSENT);
    commit(f, tx);

    tx = begin(f, STORE_TX_WRITE);
    p.v[0].s = "Anne";
    p.v[2].i = 0; /* no contact */
    assert_int_equal(OPS->ent_update(tx, &p, 1, 6000, &version, &f->updated_ms), STORE_OK);
    assert_int_equal(version, 2); /* RETURNING */
    assert_int_equal(f->updated_ms, 6000);
    assert_int_equal(OPS->ent_update(tx, &p, 1, 6001, &version, &f->updated_ms), STORE_NOMATCH); /* moved on */
    assert_int_equal(OPS->ent_update(tx, &p, STORE_ANY, 6002, &version, &f->updated_ms), STORE_OK);
    assert_int_equal(version, 3);
    model_entity_t nobody = contact(55, "x");
    assert_int_equal(OPS->ent_update(tx, &nobody, STORE_ANY, 1, &version, &f->updated_ms), STORE_NOMATCH);
    assert_int_equal(OPS->ent_read(tx, f->a, MODEL_PERSON, 1, STORE_ROW_UPDATE, &row), STORE_OK);
    assert_string_equal(row.e.v[0].s, "Anne");
    assert_int_equal(row.e.v[2].i, 0);
    assert_int_equal(row.e.updated_ms, 6002);
    commit(f, tx);

    /* links come back from the deleted row itself */
    model_entity_t pr = product(3, "Widget");
    add_entity(f, &pr);
    int32_t img = add_blob(f, 0, INT64_MIN), th = add_blob(f, 0, INT64_MIN);
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->ent_set_image(tx, MODEL_PRODUCT, 3, img), STORE_OK);
    assert_int_equal(OPS->ent_set_thumb(tx, 3, th), STORE_OK);
    assert_int_equal(OPS->ent_set_image(tx, MODEL_PRODUCT, 4, img), STORE_NOMATCH);
    assert_int_equal(OPS->ent_set_thumb(tx, 4, th), STORE_NOMATCH);
    commit(f, tx);
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->ent_delete(tx, MODEL_PRODUCT, 3, 7, &gone), STORE_NOMATCH);
    assert_int_equal(OPS->ent_delete(tx, MODEL_PRODUCT, 3, 1, &gone), STORE_OK);
    assert_int_equal(gone.e.id, 3);
    assert_int_equal(gone.image_blob_id, img);
    assert_int_equal(gone.thumb_blob_id, th);
    assert_int_equal(gone.e.version, 1);
    assert_int_equal(OPS->ent_delete(tx, MODEL_PRODUCT, 3, STORE_ANY, &gone), STORE_NOMATCH);
    commit(f, tx);
    /* deleting a contact clears its persons' reference */
    assert_int_equal(pgtmp_exec(&f->t, "UPDATE person SET contact_id = 1"), 0);
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->ent_delete(tx, MODEL_CONTACT, 1, STORE_ANY, &gone), STORE_OK);
    commit(f, tx);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM person WHERE contact_id IS NULL"), 1);
}

static void test_next_id_rules(void **state)
{
    fixture *f = *state;
    int32_t id = 0;
    model_entity_t top = contact(INT32_MAX, "top");
    add_entity(f, &top);
    store_tx *tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->ent_next_id(tx, MODEL_CONTACT, &id), STORE_OK);
    assert_int_equal(id, 1); /* the top id taken: the lowest free */
    commit(f, tx);
    model_entity_t one = contact(1, "one"), two = contact(2, "two");
    add_entity(f, &one);
    add_entity(f, &two);
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->ent_next_id(tx, MODEL_CONTACT, &id), STORE_OK);
    assert_int_equal(id, 3);
    commit(f, tx);
    /* (every id taken, CONFLICT, would need 2^31 rows: not tried) */
    assert_int_equal(sql_int(f, "SELECT count(*) FROM contact"), 3);
}

/* Creates contacts with automatic ids: xlock, next id, insert. */
typedef struct {
    fixture *f;
    int n;
    int ok;
} creator;

static void *creator_main(void *arg)
{
    creator *c = arg;
    fixture *f = c->f;
    for (int i = 0; i < c->n; i++) {
        store_tx *tx = NULL;
        int32_t id = 0;
        int64_t version = 0, updated_ms = 0;
        store_err rc = OPS->begin(f->b, NULL, STORE_TX_WRITE, &tx);
        if (rc != STORE_OK)
            continue;
        rc = OPS->xlock(tx, STORE_XLOCK_ENTITY_IDS, MODEL_CONTACT);
        if (rc == STORE_OK)
            rc = OPS->ent_next_id(tx, MODEL_CONTACT, &id);
        model_entity_t e = contact(id, "auto");
        if (rc == STORE_OK)
            rc = OPS->ent_insert(tx, &e, 1, &version, &updated_ms);
        if (OPS->end(tx, rc) == STORE_OK)
            c->ok++;
    }
    return NULL;
}

/* R1: under the kind's xlock, creators racing on max + 1 never collide. */
static void test_next_id_xlock(void **state)
{
    fixture *f = *state;
    creator c[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        c[i] = (creator){.f = f, .n = 10};
        pthread_create(&th[i], NULL, creator_main, &c[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++)
        assert_int_equal(c[i].ok, 10); /* without the xlock: CONFLICTs */
    assert_int_equal(sql_int(f, "SELECT count(*) FROM contact"), 40);
    assert_int_equal(sql_int(f, "SELECT max(id) FROM contact"), 40);
}

/* ---- BLOB records --------------------------------------------------------- */

static void test_blobs(void **state)
{
    fixture *f = *state;
    int32_t alice = add_user(f, "alice"), bob = add_user(f, "bob");
    store_blob_row row;
    int32_t linked = add_blob(f, alice, INT64_MIN), loose = add_blob(f, 0, 100);
    assert_true(loose > linked);
    store_tx *tx = begin(f, STORE_TX_READ);
    assert_int_equal(OPS->blob_read(tx, f->a, linked, STORE_ROW_PLAIN, &row), STORE_OK);
    assert_int_equal(row.b.blob_id, linked);
    assert_string_equal(row.b.conceptual_type, "PHOTO");
    assert_string_equal(row.b.description, "");
    assert_int_equal(row.b.created_ms, 7000);
    assert_int_equal(row.b.version, 0);
    assert_int_equal(row.b.info_version, 0);
    assert_int_equal(row.created_by, alice);
    assert_non_null(row.created);
    assert_string_equal(row.created->name, "alice");
    assert_string_equal(row.created->pw_hash, "");
    assert_int_equal(row.unlinked_ms, INT64_MIN);
    assert_int_equal(OPS->blob_read(tx, f->a, loose, STORE_ROW_PLAIN, &row), STORE_OK);
    assert_int_equal(row.unlinked_ms, 100);
    assert_int_equal(row.created_by, 0);
    assert_null(row.created); /* the server: no user row to join */
    assert_int_equal(OPS->blob_read(tx, f->a, 9999, STORE_ROW_PLAIN, &row), STORE_ABSENT);
    /* without an arena (the recipes' locks and checks): numbers only */
    assert_int_equal(OPS->blob_read(tx, NULL, linked, STORE_ROW_PLAIN, &row), STORE_OK);
    assert_int_equal(row.b.blob_id, linked);
    assert_int_equal(row.created_by, alice);
    assert_int_equal(row.unlinked_ms, INT64_MIN);
    assert_null(row.b.description);
    assert_null(row.created);
    commit(f, tx);

    model_blob_edit ed = {.description = "desc", .extra_info = NULL, .conceptual_type = NULL};
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->blob_read(tx, f->a, linked, STORE_ROW_UPDATE, &row), STORE_OK);
    assert_int_equal(OPS->blob_set_info(tx, f->a, linked, &ed, bob, 8000, 0, &row), STORE_OK);
    assert_string_equal(row.b.description, "desc");
    assert_string_equal(row.b.conceptual_type, "PHOTO"); /* kept */
    assert_int_equal(row.b.info_version, 1);
    assert_int_equal(row.b.updated_ms, 8000);
    assert_int_equal(row.updated_by, bob);
    assert_string_equal(row.updated->name, "bob");
    assert_string_equal(row.created->name, "alice");
    assert_int_equal(OPS->blob_set_info(tx, f->a, linked, &ed, bob, 8001, 0, &row), STORE_NOMATCH);
    assert_int_equal(OPS->blob_set_info(tx, f->a, 9999, &ed, bob, 8001, STORE_ANY, &row),
                     STORE_NOMATCH);
    store_pic_meta m = {.mime = "image/png", .size = 10, .original_size = 12, .zipped = true};
    assert_int_equal(OPS->blob_set_content(tx, f->a, linked, &m, alice, 9000, 1, &row),
                     STORE_NOMATCH); /* version is 0 */
    assert_int_equal(OPS->blob_set_content(tx, f->a, linked, &m, alice, 9000, 0, &row), STORE_OK);
    assert_int_equal(row.b.version, 1);
    assert_int_equal(row.b.info_version, 2);
    assert_int_equal(row.b.blob_size, 10);
    assert_int_equal(row.b.original_size, 12);
    assert_true(row.b.is_zipped);
    assert_false(row.b.is_encrypted);
    assert_string_equal(row.b.mime_type, "image/png");
    assert_string_equal(row.b.description, "desc");
    assert_int_equal(OPS->blob_set_stored(tx, linked, 11, false, true), STORE_OK);
    assert_int_equal(OPS->blob_set_stored(tx, 9999, 11, false, true), STORE_NOMATCH);
    assert_int_equal(OPS->blob_read(tx, f->a, linked, STORE_ROW_SHARE, &row), STORE_OK);
    assert_int_equal(row.b.version, 1); /* kept by a rekey */
    assert_int_equal(row.b.info_version, 3);
    assert_int_equal(row.b.blob_size, 11);
    assert_true(row.b.is_encrypted);
    commit(f, tx);

    /* the users gone: ids kept, nothing joined */
    assert_int_equal(pgtmp_exec(&f->t, "DELETE FROM users"), 0);
    tx = begin(f, STORE_TX_READ1);
    assert_int_equal(OPS->blob_read(tx, f->a, linked, STORE_ROW_PLAIN, &row), STORE_OK);
    commit(f, tx);
    assert_int_equal(row.created_by, alice);
    assert_int_equal(row.updated_by, alice); /* the content put's */
    assert_null(row.created);
    assert_null(row.updated);

    /* claim, unlink, sweep, delete */
    model_entity_t c = contact(1, "Acme");
    add_entity(f, &c);
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->blob_claim(tx, loose), STORE_OK);
    assert_int_equal(OPS->blob_claim(tx, loose), STORE_NOMATCH); /* linked now */
    assert_int_equal(OPS->blob_claim(tx, 9999), STORE_NOMATCH);
    assert_int_equal(OPS->ent_set_image(tx, MODEL_CONTACT, 1, loose), STORE_OK);
    assert_int_equal(OPS->blob_unlink(tx, linked, 200), STORE_OK);
    assert_int_equal(OPS->blob_unlink(tx, 9999, 200), STORE_NOMATCH);
    commit(f, tx);
    int32_t stale = add_blob(f, 0, 150), fresh = add_blob(f, 0, 300);
    int64_t n = -1;
    int32_t next = 0;
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->blob_sweep(tx, 300, &n), STORE_OK);
    assert_int_equal(n, 2); /* linked (200) and stale (150); fresh (300) stays */
    assert_int_equal(OPS->blob_read(tx, f->a, stale, STORE_ROW_PLAIN, &row), STORE_ABSENT);
    assert_int_equal(OPS->blob_read(tx, f->a, fresh, STORE_ROW_PLAIN, &row), STORE_OK);
    assert_int_equal(OPS->blob_next_stored(tx, 0, &next), STORE_ABSENT); /* none has bytes */
    commit(f, tx);
    /* a record marked unlinked but linked all the same is not swept */
    assert_int_equal(pgtmp_exec(&f->t, "UPDATE blob SET unlinked_ms = 1, blob_size = 5"), 0);
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->blob_sweep(tx, 300, &n), STORE_OK);
    assert_int_equal(n, 1); /* fresh */
    assert_int_equal(OPS->blob_next_stored(tx, 0, &next), STORE_OK);
    assert_int_equal(next, loose);
    assert_int_equal(OPS->blob_next_stored(tx, loose, &next), STORE_ABSENT);
    assert_int_equal(OPS->blob_delete(tx, loose), STORE_OK); /* the link goes NULL */
    assert_int_equal(OPS->blob_delete(tx, loose), STORE_OK); /* none: nothing to do */
    commit(f, tx);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM contact WHERE image_blob_id IS NULL"), 1);
}

/* ---- picture bytes -------------------------------------------------------- */

/* Byte i of the test picture with seed s. */
static unsigned char pic_byte(int64_t i, unsigned s)
{
    uint64_t x = (uint64_t)i * 2654435761u + s;
    return (unsigned char)(x >> 13 ^ x);
}

/* Writes `size` bytes of seed s into blob_id in writes of `chunk` bytes. */
static void pic_put(fixture *f, int32_t blob_id, int64_t size, size_t chunk, unsigned s)
{
    unsigned char *buf = malloc(chunk > 0 ? chunk : 1);
    store_pic_w *w = NULL;
    store_tx *tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->pic_write_open(tx, blob_id, size, &w), STORE_OK);
    for (int64_t off = 0; off < size; off += (int64_t)chunk) {
        size_t n = size - off < (int64_t)chunk ? (size_t)(size - off) : chunk;
        for (size_t i = 0; i < n; i++)
            buf[i] = pic_byte(off + (int64_t)i, s);
        assert_int_equal(OPS->pic_write(w, buf, n), STORE_OK);
    }
    assert_int_equal(OPS->pic_write_close(w, STORE_OK), STORE_OK);
    commit(f, tx);
    free(buf);
}

/* Reads [off, off + n) and checks it against seed s. */
static void pic_check_range(fixture *f, store_pic_r *r, int64_t off, size_t n, unsigned s)
{
    unsigned char *buf = malloc(n > 0 ? n : 1);
    assert_int_equal(OPS->pic_read(r, off, buf, n), STORE_OK);
    for (size_t i = 0; i < n; i++)
        if (buf[i] != pic_byte(off + (int64_t)i, s))
            fail_msg("byte %lld differs", (long long)(off + (int64_t)i));
    free(buf);
}

/* The whole picture in reads of `chunk`, plus reads across piece ends. */
static void pic_check(fixture *f, int32_t blob_id, int64_t size, size_t chunk, unsigned s)
{
    store_pic_r *r = NULL;
    int64_t got = -1;
    store_tx *tx = begin(f, STORE_TX_READ);
    assert_int_equal(OPS->pic_read_open(tx, blob_id, &got, &r), STORE_OK);
    assert_int_equal(got, size);
    for (int64_t off = 0; off < size; off += (int64_t)chunk)
        pic_check_range(f, r, off, size - off < (int64_t)chunk ? (size_t)(size - off) : chunk, s);
    if (size > STORE_PIECE) /* the end of piece 0 and the start of piece 1 */
        pic_check_range(f, r, STORE_PIECE - 7,
                        size - (STORE_PIECE - 7) < STORE_PIECE ? (size_t)(size - (STORE_PIECE - 7))
                                                               : STORE_PIECE,
                        s);
    unsigned char b;
    assert_int_equal(OPS->pic_read(r, size, &b, 1), STORE_INTERNAL); /* beyond the end */
    OPS->pic_read_close(r);
    OPS->end(tx, STORE_OK);
}

static void test_pic_sizes(void **state)
{
    fixture *f = *state;
    static const int64_t sizes[] = {0, 1, STORE_PIECE - 1, STORE_PIECE, STORE_PIECE + 1};
    static const size_t chunks[] = {STORE_PIECE, 100000, 1};
    int32_t id = add_blob(f, 0, INT64_MIN);
    store_pic_r *r = NULL;
    int64_t size = -1;
    store_tx *tx = begin(f, STORE_TX_READ1);
    assert_int_equal(OPS->pic_read_open(tx, id, &size, &r), STORE_ABSENT); /* no bytes yet */
    commit(f, tx);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
            if (chunks[c] == 1 && sizes[i] > 70000)
                continue; /* a byte per write: only the small ones */
            unsigned seed = (unsigned)(i * 10 + c + 1);
            pic_put(f, id, sizes[i], chunks[c], seed);
            pic_check(f, id, sizes[i], chunks[c] == 1 ? 4096 : chunks[c], seed);
            long long want = sizes[i] == 0 ? 1 : (sizes[i] + STORE_PIECE - 1) / STORE_PIECE;
            assert_int_equal(sql_int(f, "SELECT count(*) FROM blob_piece"), want);
        }
    }
    /* a short write is refused, and so is a long one */
    store_pic_w *w = NULL;
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->pic_write_open(tx, id, 5, &w), STORE_OK);
    assert_int_equal(OPS->pic_write(w, "abc", 3), STORE_OK);
    assert_int_equal(OPS->pic_write_close(w, STORE_OK), STORE_INTERNAL);
    OPS->end(tx, STORE_INTERNAL);
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->pic_write_open(tx, id, 2, &w), STORE_OK);
    assert_int_equal(OPS->pic_write(w, "abc", 3), STORE_INTERNAL);
    assert_int_equal(OPS->pic_write_close(w, STORE_INTERNAL), STORE_INTERNAL);
    OPS->end(tx, STORE_INTERNAL);
    /* a write of no record's bytes: INVALID (the piece's foreign key) */
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->pic_write_open(tx, 9999, 1, &w), STORE_OK);
    assert_int_equal(OPS->pic_write(w, "a", 1), STORE_OK);
    assert_int_equal(OPS->pic_write_close(w, STORE_OK), STORE_INVALID);
    OPS->end(tx, STORE_INVALID);
    pic_check(f, id, STORE_PIECE + 1, STORE_PIECE, 42); /* the last written (4, 100000): kept */
    /* the pieces go with their record */
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->blob_delete(tx, id), STORE_OK);
    commit(f, tx);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM blob_piece"), 0);
}

/* This process's peak resident size (kB). */
static long peak_rss_kb(void)
{
    char line[256];
    long kb = -1;
    FILE *st = fopen("/proc/self/status", "r");
    while (st != NULL && fgets(line, sizeof(line), st) != NULL)
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = atol(line + 6);
    if (st != NULL)
        fclose(st);
    return kb;
}

#if defined(__SANITIZE_ADDRESS__)
#define RSS_MEASURED 0 /* ASan keeps freed memory in quarantine */
#else
#define RSS_MEASURED 1
#endif

static void test_pic_10mb(void **state)
{
    fixture *f = *state;
    const int64_t size = 10 * 1024 * 1024 + 12345;
    int32_t id = add_blob(f, 0, INT64_MIN);
    pic_put(f, id, 1, 1, 1); /* warm: statements prepared, buffers grown */
    pic_check(f, id, 1, 1, 1);
    long before = peak_rss_kb();
    struct timespec t0, t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pic_put(f, id, size, STORE_PIECE, 7);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pic_check(f, id, size, STORE_PIECE, 7);
    clock_gettime(CLOCK_MONOTONIC, &t2);
    pic_check(f, id, size, 200000, 7); /* unaligned reads: some span two pieces */
    long grew = peak_rss_kb() - before;
    fprintf(stderr, "10 MB picture: written in %.0f ms, read in %.0f ms; peak RSS grew by %ld kB\n",
            (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
            (double)(t2.tv_sec - t1.tv_sec) * 1e3 + (double)(t2.tv_nsec - t1.tv_nsec) / 1e6, grew);
    if (RSS_MEASURED)
        assert_true(grew < 4 * 1024); /* far below the picture's 10 MB */
    assert_int_equal(sql_int(f, "SELECT count(*) FROM blob_piece"), 41);
    assert_int_equal(sql_int(f, "SELECT max(length(bytes)) FROM blob_piece"), STORE_PIECE);
}

/* ---- variants ------------------------------------------------------------- */

static int64_t var_put(fixture *f, int32_t blob, int64_t version, const char *key, size_t len,
                       bool pinned, int64_t now)
{
    store_variant_meta m = {.mime = "image/png", .is_zipped = true, .original_size = 99};
    char *bytes = malloc(len + 1);
    int64_t vid = 0;
    memset(bytes, key[0], len);
    store_tx *tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->var_upsert(tx, blob, version, key, &m, bytes, len, pinned, now, &vid),
                     STORE_OK);
    commit(f, tx);
    free(bytes);
    return vid;
}

static void test_variants(void **state)
{
    fixture *f = *state;
    int32_t blob = add_blob(f, 0, INT64_MIN), other = add_blob(f, 0, INT64_MIN);
    int64_t a = var_put(f, blob, 0, "a", 100, false, 10);
    int64_t b = var_put(f, blob, 0, "b", 200, false, 20);
    int64_t c = var_put(f, other, 0, "c", 300, true, 5);
    int64_t a2 = var_put(f, blob, 0, "a", 150, false, 30); /* replaces a */
    assert_int_equal(a2, a);
    store_variant_meta m;
    void *bytes = NULL;
    size_t len = 0;
    int64_t vid = 0, total = 0, count = 0, size = 0;
    store_tx *tx = begin(f, STORE_TX_READ1);
    assert_int_equal(OPS->var_read(tx, f->a, blob, 0, "a", &m, &bytes, &len, &vid), STORE_OK);
    commit(f, tx);
    assert_int_equal(vid, a);
    assert_int_equal(len, 150);
    assert_int_equal(((unsigned char *)bytes)[149], 'a');
    free(bytes); /* var_read's bytes are malloc'd */
    assert_string_equal(m.mime, "image/png");
    assert_true(m.is_zipped);
    assert_false(m.is_encrypted);
    assert_int_equal(m.original_size, 99);
    tx = begin(f, STORE_TX_READ);
    assert_int_equal(OPS->var_read(tx, f->a, blob, 1, "a", &m, &bytes, &len, &vid), STORE_ABSENT);
    assert_int_equal(OPS->var_read(tx, f->a, blob, 0, "z", &m, &bytes, &len, &vid), STORE_ABSENT);
    assert_int_equal(OPS->var_totals(tx, &total, &count), STORE_OK);
    assert_int_equal(total, 350); /* the pinned one is not counted */
    assert_int_equal(count, 2);
    commit(f, tx);

    /* touches move last_used_ms forward only; the LRU skips pinned and (blob, key) */
    store_touch t[] = {{a, 5}, {b, 50}, {b, 40}, {999, 60}};
    tx = begin(f, STORE_TX_TRY_WRITE);
    assert_int_equal(OPS->var_touch(tx, t, 4), STORE_OK);
    assert_int_equal(OPS->var_touch(tx, t, 0), STORE_OK);
    commit(f, tx);
    assert_int_equal(sql_int(f, "SELECT last_used_ms FROM variant WHERE key = 'a'"), 30);
    assert_int_equal(sql_int(f, "SELECT last_used_ms FROM variant WHERE key = 'b'"), 50);
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->xlock(tx, STORE_XLOCK_VARIANT_CACHE, 0), STORE_OK);
    assert_int_equal(OPS->var_lru(tx, 0, "", &vid, &size), STORE_OK);
    assert_int_equal(vid, a);
    assert_int_equal(size, 150);
    assert_int_equal(OPS->var_lru(tx, blob, "a", &vid, &size), STORE_OK);
    assert_int_equal(vid, b);
    assert_int_equal(OPS->var_delete(tx, b), STORE_OK);
    assert_int_equal(OPS->var_delete(tx, b), STORE_OK);
    assert_int_equal(OPS->var_lru(tx, blob, "a", &vid, &size), STORE_ABSENT);
    commit(f, tx);

    /* the rekey walk and its rewrite */
    tx = begin(f, STORE_TX_WRITE);
    bool z = false, e = false;
    assert_int_equal(OPS->var_next(tx, f->a, other, 0, &vid, &bytes, &len, &z, &e), STORE_OK);
    assert_int_equal(vid, c);
    assert_int_equal(len, 300);
    assert_true(z);
    assert_int_equal(OPS->var_next(tx, f->a, other, c, &vid, &bytes, &len, &z, &e), STORE_ABSENT);
    assert_int_equal(OPS->var_set_stored(tx, a, "xyz", 3, false, true), STORE_OK);
    assert_int_equal(OPS->var_set_stored(tx, 9999, "xyz", 3, false, true), STORE_NOMATCH);
    assert_int_equal(OPS->var_totals(tx, &total, &count), STORE_OK);
    assert_int_equal(total, 3);
    commit(f, tx);
    tx = begin(f, STORE_TX_READ1);
    assert_int_equal(OPS->var_read(tx, f->a, blob, 0, "a", &m, &bytes, &len, &vid), STORE_OK);
    commit(f, tx);
    assert_int_equal(len, 3);
    assert_memory_equal(bytes, "xyz", 3);
    free(bytes);
    assert_true(m.is_encrypted);

    /* new bytes: the variants of the old version are no longer served, then go */
    store_pic_meta pm = {.mime = "image/jpeg", .size = 1, .original_size = 1};
    store_blob_row row;
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->blob_set_content(tx, f->a, blob, &pm, 0, 1, STORE_ANY, &row), STORE_OK);
    assert_int_equal(OPS->var_read(tx, f->a, blob, 0, "a", &m, &bytes, &len, &vid), STORE_ABSENT);
    assert_int_equal(OPS->var_delete_stale(tx, blob), STORE_OK);
    commit(f, tx);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM variant"), 1); /* other's */
    /* a variant of no record: INVALID */
    store_variant_meta vm = {.mime = "image/png"};
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->var_upsert(tx, 9999, 0, "k", &vm, "x", 1, false, 1, &vid), STORE_INVALID);
    OPS->end(tx, STORE_INVALID);
}

/* ---- transactions ----------------------------------------------------------- */

static const char *meta_text(fixture *f, store_tx *tx, const char *name)
{
    void *v = NULL;
    size_t n = 0;
    store_err rc = OPS->meta_get(tx, f->a, name, &v, &n);
    if (rc == STORE_ABSENT)
        return "(none)";
    assert_int_equal(rc, STORE_OK);
    return arena_printf(f->a, "%.*s", (int)n, (const char *)v);
}

static void meta_set(fixture *f, const char *name, const char *value)
{
    store_tx *tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->meta_put(tx, name, value, strlen(value)), STORE_OK);
    commit(f, tx);
}

static void test_tx_modes(void **state)
{
    fixture *f = *state;
    meta_set(f, "k", "one");
    store_tx *r = begin(f, STORE_TX_READ);
    assert_string_equal(meta_text(f, r, "k"), "one");
    meta_set(f, "k", "two"); /* committed meanwhile: not in r's snapshot */
    assert_string_equal(meta_text(f, r, "k"), "one");
    assert_int_equal(OPS->meta_put(r, "k", "x", 1), STORE_INTERNAL); /* READ ONLY */
    assert_int_equal(OPS->end(r, STORE_OK), STORE_INTERNAL);
    r = begin(f, STORE_TX_READ1);
    assert_string_equal(meta_text(f, r, "k"), "two");
    commit(f, r);
    /* not OK: rolled back */
    store_tx *w = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->meta_put(w, "k", "three", 5), STORE_OK);
    assert_int_equal(OPS->end(w, STORE_PRECONDITION), STORE_PRECONDITION);
    /* a failed statement is the outcome, even when the recipe says OK */
    w = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->meta_put(w, "k", "four", 4), STORE_OK);
    model_entity_t p = {.kind = MODEL_PERSON, .id = 1};
    p.v[0].s = p.v[1].s = "";
    p.v[2].i = 5; /* no such contact */
    assert_int_equal(OPS->ent_insert(w, &p, 1, &f->version, &f->updated_ms), STORE_INVALID);
    assert_int_equal(OPS->meta_put(w, "k", "five", 4), STORE_INVALID); /* not even sent */
    assert_int_equal(OPS->end(w, STORE_OK), STORE_INVALID);
    r = begin(f, STORE_TX_READ1);
    assert_string_equal(meta_text(f, r, "k"), "two");
    commit(f, r);
}

/* Another thread's transaction: it takes a lock while the main thread
 * holds one, and says whether it was done before the main thread ended. */
typedef struct {
    fixture *f;
    store_tx_mode mode;
    int what; /* 0: entity FOR UPDATE, 1: blob FOR UPDATE, 2: xlock, 3: entity FOR SHARE */
    int32_t id;
    store_err rc;
    atomic_bool done;
} locker;

static void *locker_main(void *arg)
{
    locker *l = arg;
    fixture *f = l->f;
    arena_t *a = arena_create();
    store_tx *tx = NULL;
    store_ent_row er;
    store_blob_row br;
    l->rc = OPS->begin(f->b, NULL, l->mode, &tx);
    if (l->rc == STORE_OK) {
        if (l->what == 0 || l->what == 3)
            l->rc = OPS->ent_read(tx, a, MODEL_CONTACT, l->id,
                                  l->what == 0 ? STORE_ROW_UPDATE : STORE_ROW_SHARE, &er);
        else if (l->what == 1)
            l->rc = OPS->blob_read(tx, a, l->id, STORE_ROW_UPDATE, &br);
        else
            l->rc = OPS->xlock(tx, STORE_XLOCK_ENTITY_IDS, l->id);
        l->rc = OPS->end(tx, l->rc);
    }
    arena_destroy(a);
    atomic_store(&l->done, true);
    return NULL;
}

/* True once a crmblob backend waits for a lock (the server's own view), or
 * once l is done; false after 10 s of neither. */
static bool blocked_or_done(fixture *f, locker *l, bool want_blocked)
{
    for (int i = 0; i < 1000; i++) {
        if (atomic_load(&l->done))
            return !want_blocked;
        if (want_blocked && sql_int(f, "SELECT count(*) FROM pg_stat_activity WHERE "
                                       "application_name = 'crmblob' AND "
                                       "wait_event_type = 'Lock'") > 0)
            return true;
        usleep(10 * 1000);
    }
    return false;
}

/* Runs a locker while the main thread holds tx: with `waits`, the locker
 * must be seen waiting for a lock and finish only after tx ends; without,
 * it must finish while tx still holds. Its outcome. */
static store_err contend(fixture *f, store_tx *tx, store_tx_mode mode, int what, int32_t id,
                         bool waits)
{
    locker l = {.f = f, .mode = mode, .what = what, .id = id};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, locker_main, &l), 0);
    bool as_expected = blocked_or_done(f, &l, waits);
    bool done_before = atomic_load(&l.done);
    commit(f, tx);
    pthread_join(th, NULL);
    assert_true(as_expected);
    assert_int_equal(done_before, !waits);
    return l.rc;
}

static void test_row_locks(void **state)
{
    fixture *f = *state;
    model_entity_t c1 = contact(1, "one"), c2 = contact(2, "two");
    store_ent_row row;
    store_blob_row br;
    add_entity(f, &c1);
    add_entity(f, &c2);
    int32_t blob = add_blob(f, 0, INT64_MIN);

    store_tx *tx = begin(f, STORE_TX_WRITE); /* FOR UPDATE makes another FOR UPDATE wait */
    assert_int_equal(OPS->ent_read(tx, f->a, MODEL_CONTACT, 1, STORE_ROW_UPDATE, &row), STORE_OK);
    assert_int_equal(contend(f, tx, STORE_TX_WRITE, 0, 1, true), STORE_OK);

    tx = begin(f, STORE_TX_WRITE); /* ... but not on another row */
    assert_int_equal(OPS->ent_read(tx, f->a, MODEL_CONTACT, 1, STORE_ROW_UPDATE, &row), STORE_OK);
    assert_int_equal(contend(f, tx, STORE_TX_WRITE, 0, 2, false), STORE_OK);

    tx = begin(f, STORE_TX_WRITE); /* two FOR SHARE do not wait for each other */
    assert_int_equal(OPS->ent_read(tx, f->a, MODEL_CONTACT, 1, STORE_ROW_SHARE, &row), STORE_OK);
    assert_int_equal(contend(f, tx, STORE_TX_WRITE, 3, 1, false), STORE_OK);

    tx = begin(f, STORE_TX_WRITE); /* FOR SHARE makes FOR UPDATE wait */
    assert_int_equal(OPS->ent_read(tx, f->a, MODEL_CONTACT, 1, STORE_ROW_SHARE, &row), STORE_OK);
    assert_int_equal(contend(f, tx, STORE_TX_WRITE, 0, 1, true), STORE_OK);

    tx = begin(f, STORE_TX_WRITE); /* a content write (FOR UPDATE) waits for a FOR SHARE */
    assert_int_equal(OPS->blob_read(tx, f->a, blob, STORE_ROW_SHARE, &br), STORE_OK);
    assert_int_equal(contend(f, tx, STORE_TX_WRITE, 1, blob, true), STORE_OK);

    tx = begin(f, STORE_TX_WRITE); /* TRY_WRITE does not wait: UNAVAILABLE */
    assert_int_equal(OPS->blob_read(tx, f->a, blob, STORE_ROW_UPDATE, &br), STORE_OK);
    assert_int_equal(contend(f, tx, STORE_TX_TRY_WRITE, 1, blob, false), STORE_UNAVAILABLE);

    tx = begin(f, STORE_TX_READ); /* a READ snapshot takes no lock */
    assert_int_equal(OPS->ent_read(tx, f->a, MODEL_CONTACT, 1, STORE_ROW_UPDATE, &row), STORE_OK);
    assert_int_equal(contend(f, tx, STORE_TX_TRY_WRITE, 0, 1, false), STORE_OK);
}

static void test_xlock(void **state)
{
    fixture *f = *state;
    store_tx *tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->xlock(tx, STORE_XLOCK_ENTITY_IDS, MODEL_CONTACT), STORE_OK);
    assert_int_equal(contend(f, tx, STORE_TX_WRITE, 2, MODEL_CONTACT, true), STORE_OK);

    tx = begin(f, STORE_TX_WRITE); /* another key: no wait */
    assert_int_equal(OPS->xlock(tx, STORE_XLOCK_ENTITY_IDS, MODEL_CONTACT), STORE_OK);
    assert_int_equal(contend(f, tx, STORE_TX_WRITE, 2, MODEL_PERSON, false), STORE_OK);

    tx = begin(f, STORE_TX_WRITE); /* another subject, same key: no wait */
    assert_int_equal(OPS->xlock(tx, STORE_XLOCK_VARIANT_CACHE, MODEL_CONTACT), STORE_OK);
    assert_int_equal(contend(f, tx, STORE_TX_WRITE, 2, MODEL_CONTACT, false), STORE_OK);

    tx = begin(f, STORE_TX_WRITE); /* TRY_WRITE: UNAVAILABLE at once */
    assert_int_equal(OPS->xlock(tx, STORE_XLOCK_ENTITY_IDS, MODEL_CONTACT), STORE_OK);
    assert_int_equal(contend(f, tx, STORE_TX_TRY_WRITE, 2, MODEL_CONTACT, false),
                     STORE_UNAVAILABLE);

    tx = begin(f, STORE_TX_WRITE); /* released at the end of the transaction */
    assert_int_equal(OPS->xlock(tx, STORE_XLOCK_ENTITY_IDS, MODEL_CONTACT), STORE_OK);
    assert_int_equal(OPS->end(tx, STORE_CONFLICT), STORE_CONFLICT);
    tx = begin(f, STORE_TX_TRY_WRITE);
    assert_int_equal(OPS->xlock(tx, STORE_XLOCK_ENTITY_IDS, MODEL_CONTACT), STORE_OK);
    commit(f, tx);
}

/* Two transactions lock contacts 1 and 2 in opposite orders. */
typedef struct {
    fixture *f;
    int32_t first, second;
    pthread_barrier_t *bar;
    store_err rc;
} crosser;

static void *crosser_main(void *arg)
{
    crosser *x = arg;
    fixture *f = x->f;
    arena_t *a = arena_create();
    store_tx *tx = NULL;
    store_ent_row row;
    x->rc = OPS->begin(f->b, NULL, STORE_TX_WRITE, &tx);
    if (x->rc == STORE_OK) {
        x->rc = OPS->ent_read(tx, a, MODEL_CONTACT, x->first, STORE_ROW_UPDATE, &row);
        pthread_barrier_wait(x->bar);
        if (x->rc == STORE_OK)
            x->rc = OPS->ent_read(tx, a, MODEL_CONTACT, x->second, STORE_ROW_UPDATE, &row);
        x->rc = OPS->end(tx, x->rc);
    } else {
        pthread_barrier_wait(x->bar);
    }
    arena_destroy(a);
    return NULL;
}

static void test_deadlock_retry(void **state)
{
    fixture *f = *state;
    model_entity_t c1 = contact(1, "one"), c2 = contact(2, "two");
    add_entity(f, &c1);
    add_entity(f, &c2);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    crosser x = {.f = f, .first = 1, .second = 2, .bar = &bar};
    crosser y = {.f = f, .first = 2, .second = 1, .bar = &bar};
    pthread_t tx, ty;
    pthread_create(&tx, NULL, crosser_main, &x);
    pthread_create(&ty, NULL, crosser_main, &y);
    pthread_join(tx, NULL);
    pthread_join(ty, NULL);
    pthread_barrier_destroy(&bar);
    /* one is chosen as the deadlock's victim (40P01): run it again */
    assert_true((x.rc == STORE_RETRY && y.rc == STORE_OK) ||
                (x.rc == STORE_OK && y.rc == STORE_RETRY));
}

/* ---- a terminated backend --------------------------------------------------- */

/* Ends every crmblob backend of the cluster in state `state`, and waits
 * until they are gone. */
static void terminate(fixture *f, const char *state)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) "
             "FROM pg_stat_activity WHERE application_name = 'crmblob' AND state = '%s'",
             state);
    assert_true(sql_int(f, sql) >= 1); /* each gone before the answer (the 10 s wait) */
}

static void test_terminate(void **state)
{
    fixture *f = *state;
    meta_set(f, "k", "kept");
    /* in a transaction: the next statement is UNAVAILABLE, so is its end */
    store_tx *tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->meta_put(tx, "k", "lost", 4), STORE_OK);
    terminate(f, "idle in transaction");
    assert_int_equal(OPS->meta_put(tx, "k", "lost2", 5), STORE_UNAVAILABLE);
    assert_int_equal(OPS->end(tx, STORE_OK), STORE_UNAVAILABLE);
    tx = begin(f, STORE_TX_READ1); /* then OK, on a new connection */
    assert_string_equal(meta_text(f, tx, "k"), "kept");
    commit(f, tx);
    /* a COMMIT that gets no answer: UNAVAILABLE, never OK */
    tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(OPS->meta_put(tx, "k", "lost", 4), STORE_OK);
    terminate(f, "idle in transaction");
    assert_int_equal(OPS->end(tx, STORE_OK), STORE_UNAVAILABLE);
    tx = begin(f, STORE_TX_READ);
    assert_string_equal(meta_text(f, tx, "k"), "kept");
    commit(f, tx);
    /* idle connections ended: the next transaction does not notice */
    terminate(f, "idle");
    char why[256];
    assert_int_equal(OPS->ping(f->b, why, sizeof(why)), STORE_OK);
    meta_set(f, "k", "after");
    tx = begin(f, STORE_TX_READ1);
    assert_string_equal(meta_text(f, tx, "k"), "after");
    commit(f, tx);
}

/* ---- store_hold ------------------------------------------------------------- */

static store_be *open_other(fixture *f)
{
    store_be *b = NULL;
    store_options o = {.pool_size = 1};
    assert_int_equal(store_pg_open(f->t.conninfo, &o, &b), STORE_OK);
    return b;
}

/* hold(b, mode) once the holds of connections just closed are gone:
 * PostgreSQL releases a session's advisory locks when its backend has
 * ended, a moment after the client closed the connection. */
static store_err hold_after_close(store_be *b, store_hold_mode mode)
{
    store_err rc = STORE_UNAVAILABLE;
    for (int i = 0; i < 200 && (rc = b->ops->hold(b, mode)) == STORE_UNAVAILABLE; i++)
        usleep(10000);
    return rc;
}

static void test_hold(void **state)
{
    fixture *f = *state;
    store_be *b2 = open_other(f), *b3 = open_other(f);
    assert_int_equal(OPS->hold(f->b, STORE_HOLD_SERVE), STORE_OK);
    assert_int_equal(b2->ops->hold(b2, STORE_HOLD_SERVE), STORE_OK); /* shared */
    assert_int_equal(b3->ops->hold(b3, STORE_HOLD_EXCLUSIVE), STORE_UNAVAILABLE);
    b2->ops->close(b2);
    assert_int_equal(b3->ops->hold(b3, STORE_HOLD_EXCLUSIVE), STORE_UNAVAILABLE); /* f still */
    f->b->ops->close(f->b);
    f->b = open_other(f);
    assert_int_equal(hold_after_close(b3, STORE_HOLD_EXCLUSIVE), STORE_OK);
    assert_int_equal(OPS->hold(f->b, STORE_HOLD_SERVE), STORE_UNAVAILABLE); /* rekey runs */
    b2 = open_other(f);
    assert_int_equal(b2->ops->hold(b2, STORE_HOLD_EXCLUSIVE), STORE_UNAVAILABLE);
    b2->ops->close(b2);
    b3->ops->close(b3); /* released with its connection */
    assert_int_equal(hold_after_close(f->b, STORE_HOLD_SERVE), STORE_OK);
    /* the hold is the schema's: another schema of the database is free */
    pgtmp other;
    store_options o = {.pool_size = 1};
    assert_int_equal(pgtmp_make(&other), 0);
    assert_int_equal(store_pg_open(other.conninfo, &o, &b2), STORE_OK);
    assert_int_equal(b2->ops->hold(b2, STORE_HOLD_EXCLUSIVE), STORE_OK);
    b3 = open_other(f);
    assert_int_equal(b3->ops->hold(b3, STORE_HOLD_EXCLUSIVE), STORE_UNAVAILABLE); /* f serves */
    b3->ops->close(b3);
    b2->ops->close(b2);
    pgtmp_drop(&other);
}

int main(void)
{
    if (getenv("CRMBLOB_PG_CLUSTER") == NULL && access("scripts/pg-cluster.sh", R_OK) != 0) {
        fprintf(stderr, "test_store_pg: no scripts/pg-cluster.sh: run from the repository\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users_stamp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_creds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apps_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_next_id_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_next_id_xlock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pic_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pic_10mb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_variants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_row_locks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_xlock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadlock_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_terminate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hold, setup, teardown),
    };
    return cmocka_run_group_tests(tests, pgtmp_cluster_setup, pgtmp_cluster_teardown);
}
