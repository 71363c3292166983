/*
 * test_store_cred.c — unit tests of the credential and partner-application
 * parts of store.h (tickets, access tokens, sessions, SO-AppToken apps)
 * against the SQLite backend, including schema migration v3.
 *
 * Every test gets a fresh database in its own temporary directory. Hashes
 * are made up: the store never looks inside them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/log.h"
#include "core/text.h"
#include "store/store.h"

#include "tmpdb.h"

typedef struct {
    char dir[64];
    char path[512];
    store_t *s;
    arena_t *a;
    int32_t uid;  /* user "alice" */
    int32_t uid2; /* user "bob" */
} fixture;

/* ---- fixture ----------------------------------------------------------- */

static int32_t add_user(store_t *s, const char *name)
{
    model_user u = {.name = name, .full_name = "", .pw_hash = "$argon2id$x"};
    if (store_user_add(s, &u) != STORE_OK)
        return -1;
    return u.id;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (tmpdb_make(f->dir, sizeof(f->dir), f->path, sizeof(f->path), "cred",
                   "crmblob.db") != 0)
        return -1;
    if (store_open(f->path, NULL, &f->s) != STORE_OK)
        return -1;
    f->a = arena_create();
    f->uid = add_user(f->s, "alice");
    f->uid2 = add_user(f->s, "bob");
    *state = f;
    return f->uid > 0 && f->uid2 > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_close(f->s);
    arena_destroy(f->a);
    tmpdb_remove(f->dir);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------ */

/* A made-up hash: every byte `b`. */
static void fill(unsigned char h[STORE_HASH_BYTES], unsigned char b)
{
    memset(h, b, STORE_HASH_BYTES);
}

/* Adds a credential of `kind` for uid with hash byte hb; returns its id. */
static int64_t add_cred(fixture *f, store_cred_kind kind, int32_t uid, unsigned char hb,
                        int64_t expires_ms)
{
    store_cred c = {.kind = kind, .user_id = uid, .expires_ms = expires_ms, .label = "lbl"};
    fill(c.hash, hb);
    fill(c.xsrf_hash, (unsigned char)(hb + 1));
    assert_int_equal(store_cred_add(f->s, &c), STORE_OK);
    assert_true(c.id > 0);
    assert_true(c.created_ms > 0);
    return c.id;
}

static int64_t future(void)
{
    return text_now_ms() + 3600 * 1000;
}

/* ---- credentials --------------------------------------------------------- */

static void test_schema_v3(void **state)
{
    fixture *f = *state;
    assert_true(tmpdb_schema_version(f->path) >= 3); /* later migrations add to it */
}

static void test_cred_add_find(void **state)
{
    fixture *f = *state;
    int64_t exp = future();
    store_cred c = {.kind = STORE_CRED_SESSION, .user_id = f->uid, .expires_ms = exp};
    fill(c.hash, 0x11);
    fill(c.xsrf_hash, 0x22);
    assert_int_equal(store_cred_add(f->s, &c), STORE_OK);

    unsigned char h[STORE_HASH_BYTES], x[STORE_HASH_BYTES];
    fill(h, 0x11);
    fill(x, 0x22);
    store_cred got;
    assert_int_equal(store_cred_find(f->s, f->a, STORE_CRED_SESSION, h, &got), STORE_OK);
    assert_int_equal(got.id, c.id);
    assert_int_equal(got.kind, STORE_CRED_SESSION);
    assert_int_equal(got.user_id, f->uid);
    assert_string_equal(got.user_name, "alice");
    assert_int_equal(got.created_ms, c.created_ms);
    assert_int_equal(got.expires_ms, exp);
    assert_false(got.revoked);
    assert_memory_equal(got.hash, h, STORE_HASH_BYTES);
    assert_memory_equal(got.xsrf_hash, x, STORE_HASH_BYTES);
    assert_string_equal(got.label, ""); /* NULL label stored as "" */
}

static void test_cred_ticket_has_no_xsrf(void **state)
{
    fixture *f = *state;
    add_cred(f, STORE_CRED_TOKEN, f->uid2, 0x33, future());
    unsigned char h[STORE_HASH_BYTES], zero[STORE_HASH_BYTES] = {0};
    fill(h, 0x33);
    store_cred got;
    assert_int_equal(store_cred_find(f->s, f->a, STORE_CRED_TOKEN, h, &got), STORE_OK);
    assert_memory_equal(got.xsrf_hash, zero, STORE_HASH_BYTES);
    assert_string_equal(got.label, "lbl");
    assert_string_equal(got.user_name, "bob");
}

static void test_cred_find_kind_and_hash(void **state)
{
    fixture *f = *state;
    add_cred(f, STORE_CRED_TICKET, f->uid, 0x44, future());
    unsigned char h[STORE_HASH_BYTES];
    store_cred got;
    fill(h, 0x44);
    assert_int_equal(store_cred_find(f->s, f->a, STORE_CRED_TOKEN, h, &got), STORE_ABSENT);
    assert_int_equal(store_cred_find(f->s, f->a, STORE_CRED_SESSION, h, &got), STORE_ABSENT);
    fill(h, 0x45);
    assert_int_equal(store_cred_find(f->s, f->a, STORE_CRED_TICKET, h, &got), STORE_ABSENT);
}

static void test_cred_unique_and_fk(void **state)
{
    fixture *f = *state;
    add_cred(f, STORE_CRED_TICKET, f->uid, 0x55, future());
    store_cred dup = {.kind = STORE_CRED_TICKET, .user_id = f->uid2, .expires_ms = future()};
    fill(dup.hash, 0x55);
    assert_int_equal(store_cred_add(f->s, &dup), STORE_CONFLICT);
    dup.kind = STORE_CRED_TOKEN; /* the same hash under another kind is another secret */
    assert_int_equal(store_cred_add(f->s, &dup), STORE_OK);
    store_cred orphan = {.kind = STORE_CRED_TICKET, .user_id = 9999, .expires_ms = future()};
    fill(orphan.hash, 0x56);
    assert_int_equal(store_cred_add(f->s, &orphan), STORE_INVALID);
}

static void test_cred_list(void **state)
{
    fixture *f = *state;
    int64_t now = text_now_ms();
    int64_t a = add_cred(f, STORE_CRED_TOKEN, f->uid, 0x01, future());
    add_cred(f, STORE_CRED_TOKEN, f->uid, 0x02, now - 1000); /* expired */
    int64_t r = add_cred(f, STORE_CRED_TOKEN, f->uid2, 0x03, future());
    add_cred(f, STORE_CRED_TICKET, f->uid, 0x04, future()); /* other kind */
    int64_t b = add_cred(f, STORE_CRED_TOKEN, f->uid2, 0x05, future());
    assert_int_equal(store_cred_revoke(f->s, STORE_CRED_TOKEN, r), STORE_OK);

    store_cred *v = NULL;
    size_t n = 99;
    assert_int_equal(store_cred_list(f->s, f->a, STORE_CRED_TOKEN, now, &v, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].id, a);
    assert_string_equal(v[0].user_name, "alice");
    assert_int_equal(v[1].id, b);
    assert_string_equal(v[1].user_name, "bob");
    assert_int_equal(store_cred_list(f->s, f->a, STORE_CRED_SESSION, now, &v, &n), STORE_OK);
    assert_int_equal(n, 0);
}

static void test_cred_list_many(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 40; i++) /* past the first growth of the result array */
        add_cred(f, STORE_CRED_TICKET, f->uid, (unsigned char)(0x80 + i), future());
    store_cred *v = NULL;
    size_t n = 0;
    assert_int_equal(store_cred_list(f->s, f->a, STORE_CRED_TICKET, text_now_ms(), &v, &n),
                     STORE_OK);
    assert_int_equal(n, 40);
    for (size_t i = 1; i < n; i++)
        assert_true(v[i - 1].id < v[i].id);
    assert_int_equal(v[39].hash[0], 0x80 + 39);
}

static void test_cred_revoke(void **state)
{
    fixture *f = *state;
    int64_t id = add_cred(f, STORE_CRED_TICKET, f->uid, 0x66, future());
    assert_int_equal(store_cred_revoke(f->s, STORE_CRED_TOKEN, id), STORE_ABSENT);
    assert_int_equal(store_cred_revoke(f->s, STORE_CRED_TICKET, id + 100), STORE_ABSENT);
    assert_int_equal(store_cred_revoke(f->s, STORE_CRED_TICKET, id), STORE_OK);
    assert_int_equal(store_cred_revoke(f->s, STORE_CRED_TICKET, id), STORE_OK); /* idempotent */
    unsigned char h[STORE_HASH_BYTES];
    fill(h, 0x66);
    store_cred got;
    assert_int_equal(store_cred_find(f->s, f->a, STORE_CRED_TICKET, h, &got), STORE_OK);
    assert_true(got.revoked); /* find still returns it: the caller decides */
}

/* A login's session names its ticket: revoking either revokes both, and
 * only those; a token id of another kind names nothing. */
static void test_cred_revoke_pair(void **state)
{
    fixture *f = *state;
    int64_t t1 = add_cred(f, STORE_CRED_TICKET, f->uid, 0x70, future());
    int64_t t2 = add_cred(f, STORE_CRED_TICKET, f->uid, 0x71, future());
    store_cred s = {.kind = STORE_CRED_SESSION, .user_id = f->uid, .expires_ms = future(),
                    .pair_id = t1};
    fill(s.hash, 0x72);
    assert_int_equal(store_cred_add(f->s, &s), STORE_OK);
    store_cred got;
    assert_int_equal(store_cred_find(f->s, f->a, STORE_CRED_SESSION, s.hash, &got), STORE_OK);
    assert_int_equal(got.pair_id, t1);
    assert_int_equal(store_cred_revoke(f->s, STORE_CRED_TOKEN, t1), STORE_ABSENT);
    assert_int_equal(store_cred_find(f->s, f->a, STORE_CRED_SESSION, s.hash, &got), STORE_OK);
    assert_false(got.revoked);
    assert_int_equal(store_cred_revoke(f->s, STORE_CRED_SESSION, s.id), STORE_OK);
    unsigned char h[STORE_HASH_BYTES];
    fill(h, 0x70);
    assert_int_equal(store_cred_find(f->s, f->a, STORE_CRED_TICKET, h, &got), STORE_OK);
    assert_true(got.revoked);
    fill(h, 0x71);
    assert_int_equal(store_cred_find(f->s, f->a, STORE_CRED_TICKET, h, &got), STORE_OK);
    assert_false(got.revoked);
    /* the other way round */
    store_cred s2 = {.kind = STORE_CRED_SESSION, .user_id = f->uid, .expires_ms = future(),
                     .pair_id = t2};
    fill(s2.hash, 0x73);
    assert_int_equal(store_cred_add(f->s, &s2), STORE_OK);
    assert_int_equal(store_cred_revoke(f->s, STORE_CRED_TICKET, t2), STORE_OK);
    assert_int_equal(store_cred_find(f->s, f->a, STORE_CRED_SESSION, s2.hash, &got), STORE_OK);
    assert_true(got.revoked);
}

static void test_cred_revoke_user(void **state)
{
    fixture *f = *state;
    add_cred(f, STORE_CRED_TICKET, f->uid, 0x74, future());
    add_cred(f, STORE_CRED_TOKEN, f->uid, 0x75, future());
    add_cred(f, STORE_CRED_SESSION, f->uid, 0x76, future());
    add_cred(f, STORE_CRED_TOKEN, f->uid2, 0x77, future());
    assert_int_equal(store_cred_revoke_user(f->s, "Alice"), STORE_OK);
    assert_int_equal(store_cred_revoke_user(f->s, "nobody"), STORE_ABSENT);
    static const struct {
        store_cred_kind kind;
        unsigned char b;
        bool revoked;
    } want[] = {{STORE_CRED_TICKET, 0x74, true}, {STORE_CRED_TOKEN, 0x75, true},
                {STORE_CRED_SESSION, 0x76, true}, {STORE_CRED_TOKEN, 0x77, false}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        unsigned char h[STORE_HASH_BYTES];
        store_cred got;
        fill(h, want[i].b);
        assert_int_equal(store_cred_find(f->s, f->a, want[i].kind, h, &got), STORE_OK);
        assert_int_equal(got.revoked, want[i].revoked);
    }
}

static void test_cred_purge(void **state)
{
    fixture *f = *state;
    int64_t now = text_now_ms();
    add_cred(f, STORE_CRED_TICKET, f->uid, 0x71, now - 1); /* expired */
    int64_t r = add_cred(f, STORE_CRED_TOKEN, f->uid, 0x72, future());
    add_cred(f, STORE_CRED_SESSION, f->uid, 0x73, future()); /* kept */
    assert_int_equal(store_cred_revoke(f->s, STORE_CRED_TOKEN, r), STORE_OK);
    assert_int_equal(store_cred_purge(f->s, now), STORE_OK);
    unsigned char h[STORE_HASH_BYTES];
    store_cred got;
    fill(h, 0x71);
    assert_int_equal(store_cred_find(f->s, f->a, STORE_CRED_TICKET, h, &got), STORE_ABSENT);
    fill(h, 0x72);
    assert_int_equal(store_cred_find(f->s, f->a, STORE_CRED_TOKEN, h, &got), STORE_ABSENT);
    fill(h, 0x73);
    assert_int_equal(store_cred_find(f->s, f->a, STORE_CRED_SESSION, h, &got), STORE_OK);
}

static void test_cred_ids_not_reused(void **state)
{
    fixture *f = *state;
    int64_t id = add_cred(f, STORE_CRED_TOKEN, f->uid, 0x74, future());
    assert_int_equal(store_cred_revoke(f->s, STORE_CRED_TOKEN, id), STORE_OK);
    assert_int_equal(store_cred_purge(f->s, text_now_ms()), STORE_OK);
    assert_true(add_cred(f, STORE_CRED_TOKEN, f->uid, 0x75, future()) > id);
}

static void test_cred_user_cascade(void **state)
{
    TMPDB_SQLITE_ONLY("PRAGMA foreign_keys in the test's own SQL");
    fixture *f = *state;
    add_cred(f, STORE_CRED_TICKET, f->uid2, 0x76, future());
    tmpdb_exec(f->path, "PRAGMA foreign_keys = ON; DELETE FROM users WHERE name = 'bob'");
    unsigned char h[STORE_HASH_BYTES];
    store_cred got;
    fill(h, 0x76);
    assert_int_equal(store_cred_find(f->s, f->a, STORE_CRED_TICKET, h, &got), STORE_ABSENT);
}

static void test_cred_survives_reopen(void **state)
{
    fixture *f = *state;
    int64_t id = add_cred(f, STORE_CRED_TOKEN, f->uid, 0x77, future());
    store_close(f->s);
    assert_int_equal(store_open(f->path, NULL, &f->s), STORE_OK);
    unsigned char h[STORE_HASH_BYTES];
    store_cred got;
    fill(h, 0x77);
    assert_int_equal(store_cred_find(f->s, f->a, STORE_CRED_TOKEN, h, &got), STORE_OK);
    assert_int_equal(got.id, id);
}

/* A database left at version 2 (before credentials) is migrated on open. */
static void test_migrate_from_v2(void **state)
{
    TMPDB_SQLITE_ONLY("an older SQLite schema made by hand (PostgreSQL starts at its own version)");
    fixture *f = *state;
    int current = tmpdb_schema_version(f->path);
    store_close(f->s);
    f->s = NULL;
    /* what v3 and later versions (v4: variants, meta; v5: the BLOB agent's
     * columns) created goes too */
    tmpdb_undo_v7_v10(f->path);
    tmpdb_exec(f->path, "DROP TABLE cred; DROP TABLE app; DROP TABLE variant_data; DROP TABLE variant; "
                "DROP TABLE variant_total; DROP TABLE meta; DROP INDEX blob_unlinked_ms; "
                "ALTER TABLE blob DROP COLUMN unlinked_ms; DROP INDEX product_thumb_blob_id; "
                "ALTER TABLE product DROP COLUMN thumb_blob_id; PRAGMA user_version = 2");
    assert_int_equal(tmpdb_schema_version(f->path), 2);
    assert_int_equal(store_open(f->path, NULL, &f->s), STORE_OK);
    assert_int_equal(tmpdb_schema_version(f->path), current);
    add_cred(f, STORE_CRED_TICKET, f->uid, 0x78, future());
    model_user u;
    assert_int_equal(store_user_by_name(f->s, f->a, "alice", &u), STORE_OK); /* data kept */
}

/* ---- partner applications ------------------------------------------------ */

static int64_t add_app(fixture *f, const char *name, unsigned char hb)
{
    store_app ap = {.name = name};
    fill(ap.hash, hb);
    assert_int_equal(store_app_add(f->s, &ap), STORE_OK);
    assert_true(ap.id > 0);
    assert_true(ap.created_ms > 0);
    return ap.id;
}

static void test_app_add_find(void **state)
{
    fixture *f = *state;
    int64_t id = add_app(f, "Partner One", 0x91);
    unsigned char h[STORE_HASH_BYTES];
    store_app got;
    fill(h, 0x91);
    assert_int_equal(store_app_find(f->s, f->a, h, &got), STORE_OK);
    assert_int_equal(got.id, id);
    assert_string_equal(got.name, "Partner One");
    assert_memory_equal(got.hash, h, STORE_HASH_BYTES);
    assert_false(got.revoked);
    fill(h, 0x92);
    assert_int_equal(store_app_find(f->s, f->a, h, &got), STORE_ABSENT);
}

static void test_app_conflicts(void **state)
{
    fixture *f = *state;
    add_app(f, "Partner", 0x93);
    store_app ap = {.name = "PARTNER"};
    fill(ap.hash, 0x94);
    assert_int_equal(store_app_add(f->s, &ap), STORE_CONFLICT); /* name, any case */
    ap.name = "other";
    fill(ap.hash, 0x93);
    assert_int_equal(store_app_add(f->s, &ap), STORE_CONFLICT); /* the same token */
    assert_int_equal(store_app_revoke(f->s, "partner"), STORE_OK);
    ap.name = "Partner";
    fill(ap.hash, 0x95);
    assert_int_equal(store_app_add(f->s, &ap), STORE_CONFLICT); /* revoked names stay taken */
}

static void test_app_revoke_list(void **state)
{
    fixture *f = *state;
    add_app(f, "a1", 0xa1);
    add_app(f, "a2", 0xa2);
    assert_int_equal(store_app_revoke(f->s, "A2"), STORE_OK);
    assert_int_equal(store_app_revoke(f->s, "nope"), STORE_ABSENT);
    store_app *v = NULL;
    size_t n = 0;
    assert_int_equal(store_app_list(f->s, f->a, &v, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].name, "a1");
    assert_false(v[0].revoked);
    assert_string_equal(v[1].name, "a2");
    assert_true(v[1].revoked);
    unsigned char h[STORE_HASH_BYTES];
    store_app got;
    fill(h, 0xa2);
    assert_int_equal(store_app_find(f->s, f->a, h, &got), STORE_OK);
    assert_true(got.revoked);
}

static void test_app_list_empty(void **state)
{
    fixture *f = *state;
    store_app *v = NULL;
    size_t n = 7;
    assert_int_equal(store_app_list(f->s, f->a, &v, &n), STORE_OK);
    assert_int_equal(n, 0);
}

int main(void)
{
    log_set_level(LOG_WARN);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_schema_v3),
        T(test_cred_add_find),
        T(test_cred_ticket_has_no_xsrf),
        T(test_cred_find_kind_and_hash),
        T(test_cred_unique_and_fk),
        T(test_cred_list),
        T(test_cred_list_many),
        T(test_cred_revoke),
        T(test_cred_revoke_pair),
        T(test_cred_revoke_user),
        T(test_cred_purge),
        T(test_cred_ids_not_reused),
        T(test_cred_user_cascade),
        T(test_cred_survives_reopen),
        T(test_migrate_from_v2),
        T(test_app_add_find),
        T(test_app_conflicts),
        T(test_app_revoke_list),
        T(test_app_list_empty),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
