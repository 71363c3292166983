/*
 * test_store_account.c — the accounts' primitives (store_backend.h's users
 * and credentials/apps sections) on SQLite, plain and durable, and the
 * split of rules between them and store_account.c's recipes:
 *  - a conditional write that matches no row is STORE_NOMATCH at the
 *    primitive (user_set, cred_revoke, app_revoke) and STORE_ABSENT through
 *    store.h; an already revoked credential still matches;
 *  - a taken name (other case) is CONFLICT, an unknown user of a
 *    credential INVALID, both at the primitive;
 *  - the recipe stores a non-session's XSRF hash and pair_id 0 as none
 *    (SQL NULL), and created_ms 0 as now;
 *  - writes of users move the USERS change count, other account writes
 *    move only the ALL count; a rolled-back recipe leaves its rows out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "core/arena.h"
#include "core/text.h"
#include "store/store.h"
#include "store/store_backend.h"
#include "store/store_int.h"
#include "tmpdb.h"

typedef struct {
    tmpdb_store db;
    int32_t uid; /* user "ann" */
} fixture;

static int open_with(void **state, bool durable)
{
    fixture *f = calloc(1, sizeof(*f));
    store_options o = {.durable = durable, .pool_size = 4};
    if (f == NULL || tmpdb_store_open(&f->db, "acct", &o) != 0)
        return -1;
    model_user u = {.name = "ann", .pw_hash = "h"};
    if (store_user_add(f->db.s, &u) != STORE_OK)
        return -1;
    f->uid = u.id;
    *state = f;
    return 0;
}

static int setup_plain(void **state)
{
    return open_with(state, false);
}

static int setup_durable(void **state)
{
    return open_with(state, true);
}

static int teardown(void **state)
{
    fixture *f = *state;
    tmpdb_store_close(&f->db);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------ */

static const struct store_be_ops *ops(fixture *f)
{
    return f->db.s->be->ops;
}

static store_tx *begin(fixture *f, store_tx_mode m)
{
    store_tx *tx = NULL;
    assert_int_equal(ops(f)->begin(f->db.s->be, NULL, m, &tx), STORE_OK);
    return tx;
}

static void fill(unsigned char h[STORE_HASH_BYTES], unsigned char v)
{
    memset(h, v, STORE_HASH_BYTES);
}

/* One integer from the database, by a connection of its own. */
static int64_t raw_int(fixture *f, const char *sql)
{
    return tmpdb_int(f->db.path, sql, 0);
}

/* Change count `which`: the shared counts (SQLite); on PostgreSQL, which
 * keeps only the users' (a row), store_users_changes for USERS. */
static uint64_t count(fixture *f, int which)
{
    uint64_t v = 0;
    if (f->db.s->changes != NULL)
        return atomic_load(&f->db.s->changes[which]);
    assert_int_equal(which, STORE_CHANGES_USERS);
    assert_true(store_users_changes(f->db.s, &v));
    return v;
}

/* A credential of ann's of `kind`, its hash all `h`. */
static store_cred cred_of(fixture *f, store_cred_kind kind, unsigned char h)
{
    store_cred c = {.kind = kind, .user_id = f->uid, .expires_ms = text_now_ms() + 3600000};
    fill(c.hash, h);
    fill(c.xsrf_hash, 0x77);
    return c;
}

/* ---- cases -------------------------------------------------------------- */

/* user_set: one UPDATE by name, NOMATCH when no such user; NULL / -1 keep
 * a column. Through store.h NOMATCH is ABSENT. */
static void test_user_set_nomatch(void **state)
{
    fixture *f = *state;
    store_tx *tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(ops(f)->user_set(tx, "nobody", "x", -1), STORE_NOMATCH);
    assert_int_equal(ops(f)->user_set(tx, "ANN", NULL, 1), STORE_OK); /* any case */
    assert_int_equal(ops(f)->end(tx, STORE_OK), STORE_OK);
    model_user u;
    assert_int_equal(store_user_get(f->db.s, f->db.a, f->uid, &u), STORE_OK);
    assert_true(u.disabled);
    assert_string_equal(u.pw_hash, "h"); /* kept */
    assert_int_equal(store_user_set_password(f->db.s, "nobody", "x"), STORE_ABSENT);
    assert_int_equal(store_user_set_disabled(f->db.s, "nobody", true), STORE_ABSENT);
}

/* A name taken in another case is CONFLICT at the primitive; the failed
 * transaction adds no row. */
static void test_user_insert_conflict(void **state)
{
    fixture *f = *state;
    model_user u = {.name = "Ann", .full_name = "", .pw_hash = ""};
    int32_t id = -1;
    store_tx *tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(ops(f)->user_insert(tx, &u, 5, &id), STORE_CONFLICT);
    assert_int_equal(id, 0);
    assert_int_equal(ops(f)->end(tx, STORE_CONFLICT), STORE_CONFLICT);
    int64_t n = 0;
    assert_int_equal(store_user_count(f->db.s, &n), STORE_OK);
    assert_int_equal(n, 1);
    model_user got;
    assert_int_equal(store_user_by_name(f->db.s, f->db.a, "aNN", &got), STORE_OK);
    assert_int_equal(got.id, f->uid);
}

/* Writes of users move the USERS count (a failed one too, as before,
 * when it ends outside a group commit);
 * credentials, apps and metadata only the ALL count. */
static void test_users_count(void **state)
{
    fixture *f = *state;
    bool shared = f->db.s->changes != NULL; /* PostgreSQL counts users only */
    uint64_t users = count(f, STORE_CHANGES_USERS), all = shared ? count(f, STORE_CHANGES_ALL) : 0;
    store_cred c = cred_of(f, STORE_CRED_TOKEN, 1);
    store_app ap = {.name = "app"};
    fill(ap.hash, 9);
    assert_int_equal(store_cred_add(f->db.s, &c), STORE_OK);
    assert_int_equal(store_app_add(f->db.s, &ap), STORE_OK);
    assert_int_equal(store_meta_put(f->db.s, "k", "v", 1), STORE_OK);
    assert_int_equal(store_cred_revoke_user(f->db.s, "ann"), STORE_OK);
    assert_int_equal(count(f, STORE_CHANGES_USERS), users);
    assert_true(!shared || count(f, STORE_CHANGES_ALL) >= all + 4);

    model_user u = {.name = "bob"};
    assert_int_equal(store_user_add(f->db.s, &u), STORE_OK);
    assert_int_equal(count(f, STORE_CHANGES_USERS), users + 1);
    assert_int_equal(store_user_set_password(f->db.s, "bob", "p"), STORE_OK);
    assert_int_equal(count(f, STORE_CHANGES_USERS), users + 2);
    assert_int_equal(store_user_add(f->db.s, &u), STORE_CONFLICT);
    /* durable: a part rolled back leaves its mark to the group's next
     * commit; PostgreSQL's count is moved in the writer's transaction,
     * rolled back with it */
    if (!f->db.s->defers)
        assert_int_equal(count(f, STORE_CHANGES_USERS), users + (shared ? 3 : 2));
}

/* cred_revoke matches an already revoked credential; another kind or a
 * missing id is NOMATCH, ABSENT through store.h. */
static void test_cred_revoke_nomatch(void **state)
{
    fixture *f = *state;
    store_cred c = cred_of(f, STORE_CRED_TICKET, 2);
    assert_int_equal(store_cred_add(f->db.s, &c), STORE_OK);
    store_tx *tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(ops(f)->cred_revoke(tx, STORE_CRED_TICKET, c.id), STORE_OK);
    assert_int_equal(ops(f)->cred_revoke(tx, STORE_CRED_TICKET, c.id), STORE_OK);
    assert_int_equal(ops(f)->cred_revoke(tx, STORE_CRED_TOKEN, c.id), STORE_NOMATCH);
    assert_int_equal(ops(f)->cred_revoke(tx, STORE_CRED_TICKET, c.id + 100), STORE_NOMATCH);
    assert_int_equal(ops(f)->end(tx, STORE_OK), STORE_OK);
    assert_int_equal(store_cred_revoke(f->db.s, STORE_CRED_SESSION, c.id), STORE_ABSENT);
    assert_int_equal(store_cred_revoke(f->db.s, STORE_CRED_TICKET, c.id), STORE_OK);
    assert_int_equal(store_cred_revoke_user(f->db.s, "nobody"), STORE_ABSENT);
}

/* A recipe that revokes a credential and then fails takes the revocation
 * of its pair back with it: one transaction. */
static store_err revoke_then_fail(store_tx *tx, void *ctx)
{
    int64_t id = *(int64_t *)ctx;
    store_err rc = tx->be->ops->cred_revoke(tx, STORE_CRED_SESSION, id);
    if (rc == STORE_OK)
        rc = tx->be->ops->cred_revoke_pair(tx, id);
    return rc == STORE_OK ? STORE_CONFLICT : rc;
}

static void test_cred_revoke_pair_one_tx(void **state)
{
    fixture *f = *state;
    store_cred t = cred_of(f, STORE_CRED_TICKET, 3);
    assert_int_equal(store_cred_add(f->db.s, &t), STORE_OK);
    store_cred se = cred_of(f, STORE_CRED_SESSION, 4);
    se.pair_id = t.id;
    assert_int_equal(store_cred_add(f->db.s, &se), STORE_OK);
    assert_int_equal(store_run(f->db.s, STORE_TX_WRITE, revoke_then_fail, &se.id), STORE_CONFLICT);
    assert_int_equal(raw_int(f, "SELECT sum(revoked) FROM cred"), 0);
    assert_int_equal(store_cred_revoke(f->db.s, STORE_CRED_SESSION, se.id), STORE_OK);
    assert_int_equal(raw_int(f, "SELECT sum(revoked) FROM cred"), 2);
}

/* The recipe's rules on insert: only sessions keep an XSRF hash, pair_id 0
 * (or below) is none, created_ms 0 is now; the primitive stores none as
 * NULL. An unknown user is INVALID. */
static void test_cred_insert_rules(void **state)
{
    fixture *f = *state;
    int64_t before = text_now_ms();
    store_cred tok = cred_of(f, STORE_CRED_TOKEN, 5);
    tok.pair_id = -3;
    assert_int_equal(store_cred_add(f->db.s, &tok), STORE_OK);
    assert_true(tok.created_ms >= before && tok.created_ms <= text_now_ms());
    assert_int_equal(raw_int(f, "SELECT count(*) FROM cred WHERE xsrf_hash IS NULL AND "
                                "pair_id IS NULL AND kind = 2"),
                     1);
    store_cred se = cred_of(f, STORE_CRED_SESSION, 6);
    se.created_ms = 1234;
    assert_int_equal(store_cred_add(f->db.s, &se), STORE_OK);
    assert_int_equal(se.created_ms, 1234);
    assert_int_equal(raw_int(f, "SELECT length(xsrf_hash) FROM cred WHERE kind = 3"),
                     STORE_HASH_BYTES);
    store_cred bad = cred_of(f, STORE_CRED_TOKEN, 7);
    bad.user_id = f->uid + 50;
    bad.label = "";
    int64_t id = -1;
    store_tx *tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(ops(f)->cred_insert(tx, &bad, 1, &id), STORE_INVALID);
    assert_int_equal(ops(f)->end(tx, STORE_INVALID), STORE_INVALID);
    assert_int_equal(id, 0);
    assert_int_equal(store_cred_add(f->db.s, &bad), STORE_INVALID);
}

/* app_revoke: NOMATCH for no app of that name (any case matches);
 * app_insert: CONFLICT for a name taken in another case. */
static void test_app_nomatch_conflict(void **state)
{
    fixture *f = *state;
    store_app ap = {.name = "Partner"};
    fill(ap.hash, 8);
    assert_int_equal(store_app_add(f->db.s, &ap), STORE_OK);
    store_app again = {.name = "PARTNER"};
    fill(again.hash, 9);
    int64_t id = -1;
    store_tx *tx = begin(f, STORE_TX_WRITE);
    assert_int_equal(ops(f)->app_insert(tx, &again, 1, &id), STORE_CONFLICT);
    assert_int_equal(ops(f)->end(tx, STORE_CONFLICT), STORE_CONFLICT);
    tx = begin(f, STORE_TX_WRITE); /* a failed primitive ends its transaction (PG) */
    assert_int_equal(ops(f)->app_revoke(tx, "nobody"), STORE_NOMATCH);
    assert_int_equal(ops(f)->app_revoke(tx, "partner"), STORE_OK);
    assert_int_equal(ops(f)->end(tx, STORE_OK), STORE_OK);
    assert_int_equal(store_app_revoke(f->db.s, "nobody"), STORE_ABSENT);
    store_app got;
    assert_int_equal(store_app_find(f->db.s, f->db.a, ap.hash, &got), STORE_OK);
    assert_true(got.revoked);
}

/* The lists read inside one transaction, and user_read by id and by name. */
static void test_reads_in_tx(void **state)
{
    fixture *f = *state;
    store_cred c = cred_of(f, STORE_CRED_TOKEN, 10);
    assert_int_equal(store_cred_add(f->db.s, &c), STORE_OK);
    store_tx *tx = begin(f, STORE_TX_READ);
    model_user u;
    assert_int_equal(ops(f)->user_read(tx, f->db.a, f->uid, NULL, &u), STORE_OK);
    assert_string_equal(u.name, "ann");
    assert_int_equal(ops(f)->user_read(tx, f->db.a, 0, "nobody", &u), STORE_ABSENT);
    store_cred *cs = NULL;
    size_t n = 9;
    assert_int_equal(ops(f)->cred_list(tx, f->db.a, STORE_CRED_TOKEN, text_now_ms(), &cs, &n),
                     STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(cs[0].user_name, "ann");
    assert_int_equal(cs[0].pair_id, 0);
    store_app *as = NULL;
    assert_int_equal(ops(f)->app_list(tx, f->db.a, &as, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_non_null(as);
    assert_int_equal(ops(f)->end(tx, STORE_OK), STORE_OK);
}

#define BOTH(t)                                                                                    \
    cmocka_unit_test_setup_teardown(t, setup_plain, teardown),                                     \
        cmocka_unit_test_setup_teardown(t, setup_durable, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_user_set_nomatch),
        BOTH(test_user_insert_conflict),
        BOTH(test_users_count),
        BOTH(test_cred_revoke_nomatch),
        BOTH(test_cred_revoke_pair_one_tx),
        BOTH(test_cred_insert_rules),
        BOTH(test_app_nomatch_conflict),
        BOTH(test_reads_in_tx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
