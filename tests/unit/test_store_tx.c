/*
 * test_store_tx.c — the transactions of the backend interface
 * (store_backend.h) on SQLite, plain and durable (group commit): begin/end
 * commit a recipe's writes on STORE_OK and roll them back otherwise, READ
 * keeps one snapshot while READ1 does not, WRITE holds the database (so
 * xlock has nothing to take) and TRY_WRITE refuses to wait for it, and
 * store_run re-runs a recipe that met STORE_RETRY, up to STORE_RUN_TRIES
 * times, keeping nothing of the runs it gave up.
 *
 * The writes inside the transactions are the metadata primitives
 * (meta_get/meta_put), read back through store.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "core/arena.h"
#include "store/store.h"
#include "store/store_backend.h"
#include "store/store_int.h"
#include "tmpdb.h"

typedef tmpdb_store fixture;

/* ---- helpers ------------------------------------------------------------ */

static const struct store_be_ops *ops(fixture *f)
{
    return f->s->be->ops;
}

/* The value of meta `name` as store.h reads it; NULL when absent. */
static const char *meta(fixture *f, const char *name)
{
    void *v = NULL;
    size_t n = 0;
    store_err rc = store_meta_get(f->s, f->a, name, &v, &n);
    if (rc == STORE_ABSENT)
        return NULL;
    assert_int_equal(rc, STORE_OK);
    return arena_printf(f->a, "%.*s", (int)n, (const char *)v);
}

/* The value of meta `name` read inside tx. */
static const char *meta_in(fixture *f, store_tx *tx, const char *name)
{
    void *v = NULL;
    size_t n = 0;
    assert_int_equal(ops(f)->meta_get(tx, f->a, name, &v, &n), STORE_OK);
    return arena_printf(f->a, "%.*s", (int)n, (const char *)v);
}

static void put_in(fixture *f, store_tx *tx, const char *name, const char *value)
{
    assert_int_equal(ops(f)->meta_put(tx, name, value, strlen(value)), STORE_OK);
}

/* A recipe: writes meta[name] = value, then answers rc. */
typedef struct {
    fixture *f;
    const char *name, *value;
    store_err rc;
    int calls;
    int retries; /* answer STORE_RETRY on this many first calls */
} put_recipe;

static store_err put_then(store_tx *tx, void *ctx)
{
    put_recipe *r = ctx;
    r->calls++;
    const char *name = arena_printf(r->f->a, "%s%d", r->name, r->calls);
    put_in(r->f, tx, name, r->value);
    return r->calls <= r->retries ? STORE_RETRY : r->rc;
}

/* ---- cases -------------------------------------------------------------- */

/* end commits on STORE_OK and rolls back on anything else, both through
 * store_run and called directly. */
static void test_commit_and_rollback(void **state)
{
    fixture *f = *state;
    put_recipe ok = {.f = f, .name = "k", .value = "v1", .rc = STORE_OK};
    assert_int_equal(store_run(f->s, STORE_TX_WRITE, put_then, &ok), STORE_OK);
    assert_string_equal(meta(f, "k1"), "v1");

    put_recipe refused = {.f = f, .name = "r", .value = "v2", .rc = STORE_CONFLICT};
    assert_int_equal(store_run(f->s, STORE_TX_WRITE, put_then, &refused), STORE_CONFLICT);
    assert_int_equal(refused.calls, 1);
    assert_null(meta(f, "r1"));

    store_tx *tx = NULL;
    assert_int_equal(ops(f)->begin(f->s->be, NULL, STORE_TX_WRITE, &tx), STORE_OK);
    assert_non_null(tx);
    assert_int_equal(tx->mode, STORE_TX_WRITE);
    put_in(f, tx, "k1", "v3");
    assert_string_equal(meta_in(f, tx, "k1"), "v3"); /* the transaction sees its own write */
    assert_int_equal(ops(f)->end(tx, STORE_PRECONDITION), STORE_PRECONDITION);
    assert_string_equal(meta(f, "k1"), "v1");
    assert_true(tmpdb_write_lock_freed(f->path)); /* nothing left open */
}

/* READ reads one snapshot; READ1 and later transactions see the write. */
static void test_read_snapshot(void **state)
{
    fixture *f = *state;
    assert_int_equal(store_meta_put(f->s, "k", "old", 3), STORE_OK);
    store_tx *tx = NULL;
    assert_int_equal(ops(f)->begin(f->s->be, NULL, STORE_TX_READ, &tx), STORE_OK);
    assert_string_equal(meta_in(f, tx, "k"), "old");
    assert_int_equal(store_meta_put(f->s, "k", "new", 3), STORE_OK); /* another connection */
    assert_string_equal(meta_in(f, tx, "k"), "old");
    assert_int_equal(ops(f)->end(tx, STORE_OK), STORE_OK);

    assert_int_equal(ops(f)->begin(f->s->be, NULL, STORE_TX_READ1, &tx), STORE_OK);
    assert_string_equal(meta_in(f, tx, "k"), "new");
    void *v = NULL;
    size_t n = 0;
    assert_int_equal(ops(f)->meta_get(tx, f->a, "none", &v, &n), STORE_ABSENT);
    assert_int_equal(ops(f)->end(tx, STORE_ABSENT), STORE_ABSENT); /* the recipe's answer */
}

/* A WRITE transaction holds the database: another connection cannot take
 * its write lock, a TRY_WRITE is refused at once, and the named locks are
 * held with it. */
static void test_write_holds_database(void **state)
{
    fixture *f = *state;
    store_tx *tx = NULL, *other = NULL;
    assert_int_equal(ops(f)->begin(f->s->be, NULL, STORE_TX_WRITE, &tx), STORE_OK);
    put_in(f, tx, "held", "1");
    assert_false(tmpdb_write_lock_free(f->path));
    assert_int_equal(ops(f)->xlock(tx, STORE_XLOCK_ENTITY_IDS, MODEL_PERSON), STORE_OK);
    assert_int_equal(ops(f)->xlock(tx, STORE_XLOCK_VARIANT_CACHE, 0), STORE_OK);
    assert_int_equal(ops(f)->begin(f->s->be, NULL, STORE_TX_TRY_WRITE, &other), STORE_UNAVAILABLE);
    assert_null(other);
    assert_int_equal(ops(f)->end(tx, STORE_OK), STORE_OK);
    assert_true(tmpdb_write_lock_free(f->path));

    assert_int_equal(ops(f)->begin(f->s->be, NULL, STORE_TX_TRY_WRITE, &other), STORE_OK);
    assert_int_equal(other->mode, STORE_TX_TRY_WRITE);
    assert_int_equal(ops(f)->xlock(other, STORE_XLOCK_ENTITY_IDS, MODEL_CONTACT), STORE_OK);
    put_in(f, other, "held", "2");
    assert_int_equal(ops(f)->end(other, STORE_OK), STORE_OK);
    assert_string_equal(meta(f, "held"), "2");
}

/* STORE_RETRY runs the recipe again from a new transaction: what the
 * retried runs wrote is gone, the last run's stays. */
static void test_retry(void **state)
{
    fixture *f = *state;
    put_recipe twice = {.f = f, .name = "t", .value = "x", .rc = STORE_OK, .retries = 2};
    assert_int_equal(store_run(f->s, STORE_TX_WRITE, put_then, &twice), STORE_OK);
    assert_int_equal(twice.calls, 3);
    assert_null(meta(f, "t1"));
    assert_null(meta(f, "t2"));
    assert_string_equal(meta(f, "t3"), "x");

    put_recipe always = {.f = f, .name = "a", .value = "x", .rc = STORE_OK, .retries = 1000};
    assert_int_equal(store_run(f->s, STORE_TX_WRITE, put_then, &always), STORE_UNAVAILABLE);
    assert_int_equal(always.calls, STORE_RUN_TRIES);
    for (int i = 1; i <= STORE_RUN_TRIES; i++)
        assert_null(meta(f, arena_printf(f->a, "a%d", i)));
    assert_true(tmpdb_write_lock_freed(f->path));
}

/* NOMATCH is the recipe's to translate: passed on, it is a bug of ours. */
static void test_nomatch_stays_inside(void **state)
{
    fixture *f = *state;
    put_recipe r = {.f = f, .name = "n", .value = "x", .rc = STORE_NOMATCH};
    assert_int_equal(store_run(f->s, STORE_TX_WRITE, put_then, &r), STORE_INTERNAL);
    assert_null(meta(f, "n1"));
    assert_string_equal(store_err_name(STORE_NOMATCH), "NOMATCH");
    assert_string_equal(store_err_name(STORE_RETRY), "RETRY");
}

/* The life entries answer for the same database as store.h. */
static void test_life(void **state)
{
    fixture *f = *state;
    char why[128] = "", buf[600];
    assert_int_equal(ops(f)->ping(f->s->be, why, sizeof(why)), STORE_OK);
    ops(f)->describe(f->s->be, buf, sizeof(buf));
    assert_string_equal(buf, f->path);
    assert_string_equal(ops(f)->spool_hint(f->s->be), store_spool_hint(f->s));
    assert_int_equal(ops(f)->hold(f->s->be, STORE_HOLD_SERVE), STORE_OK);
    assert_true(ops(f)->counts(f->s->be) == f->s->changes);
    assert_false(ops(f)->counts_check(f->s->be));
}

#define BOTH(t)                                                                                    \
    cmocka_unit_test_setup_teardown(t, tmpdb_setup_plain, tmpdb_teardown),                         \
        cmocka_unit_test_setup_teardown(t, tmpdb_setup_durable, tmpdb_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_commit_and_rollback),  BOTH(test_read_snapshot),
        BOTH(test_write_holds_database), BOTH(test_retry),
        BOTH(test_nomatch_stays_inside), BOTH(test_life),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
