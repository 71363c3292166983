/*
 * test_store_durable.c — durable mode's promise: a write is answered only
 * after a flush of the WAL that began after it, concurrent writers share
 * flushes, a failed flush refuses every later write, and a write that
 * fails during another's flush leaves nothing open. Writes through a
 * scope's view (store_scope_open) return before their flush, are seen by
 * the view's own later reads at once and through other handles (the store
 * itself, another view) only once committed, and report their flush, or
 * its failure, through the scope's function.
 *
 * The store's fdatasync calls are wrapped (-Wl,--wrap=fdatasync, see the
 * Makefile): the wrapper counts them, can make them slow (so that writers
 * pile up as behind a real disk) or fail, then calls the real one. SQLite's
 * own syncs (checkpoints) happen inside libsqlite3 and are not seen.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "core/arena.h"
#include "store/store.h"
#include "tmpdb.h"

int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);

static atomic_int g_started;  /* flushes begun */
static atomic_int g_ended;    /* flushes ended */
static atomic_int g_fail;     /* errno to fail with, 0 = the real call */
static atomic_int g_delay_us; /* a slow disk */

int __wrap_fdatasync(int fd)
{
    atomic_fetch_add(&g_started, 1);
    int delay = atomic_load(&g_delay_us);
    if (delay > 0)
        nanosleep(&(struct timespec){0, (long)delay * 1000}, NULL);
    int e = atomic_load(&g_fail);
    int rc = e != 0 ? (errno = e, -1) : __real_fdatasync(fd);
    atomic_fetch_add(&g_ended, 1);
    return rc;
}

typedef tmpdb_store fixture;

static int open_with(void **state, int pool_size)
{
    fixture *f = calloc(1, sizeof(*f));
    store_options opt = {.durable = true, .pool_size = pool_size};
    if (f == NULL || tmpdb_store_open(f, "durable", &opt) != 0)
        return -1;
    atomic_store(&g_fail, 0);
    atomic_store(&g_delay_us, 0);
    *state = f;
    return 0;
}

static int setup_pool(void **state)
{
    return open_with(state, 4);
}

static int setup_single(void **state)
{
    return open_with(state, 1);
}

static int teardown(void **state)
{
    tmpdb_teardown(state);
    atomic_store(&g_fail, 0);
    return 0;
}

/* A write returns after a flush that began after the write was asked for;
 * a read flushes nothing. */
static void test_write_answered_after_flush(void **state)
{
    fixture *f = *state;
    int before = atomic_load(&g_started);
    int32_t id = 0;
    assert_int_equal(tmpdb_entity(f->s, MODEL_PERSON, &id), STORE_OK);
    assert_true(atomic_load(&g_started) > before);
    assert_int_equal(atomic_load(&g_ended), atomic_load(&g_started));

    int flushed = atomic_load(&g_started);
    model_entity_t got;
    assert_int_equal(store_entity_get(f->s, f->a, MODEL_PERSON, id, &got), STORE_OK);
    assert_int_equal(atomic_load(&g_started), flushed);
}

/* A failed flush answers the write with an error, and refuses the writes
 * after it without trying the disk again; reads go on. */
static void test_failed_flush_is_sticky(void **state)
{
    fixture *f = *state;
    int32_t id = 0;
    assert_int_equal(tmpdb_entity(f->s, MODEL_PERSON, &id), STORE_OK);
    atomic_store(&g_fail, EIO);
    int32_t other = 0;
    assert_int_equal(tmpdb_entity(f->s, MODEL_PERSON, &other), STORE_UNAVAILABLE);
    atomic_store(&g_fail, 0); /* the disk "recovers": too late to trust it */
    int tried = atomic_load(&g_started);
    assert_int_equal(tmpdb_entity(f->s, MODEL_PERSON, &other), STORE_UNAVAILABLE);
    model_blob_edit edit = {.description = "after the failure"};
    model_blob b;
    assert_int_equal(store_image_info_put(f->s, f->a, MODEL_PERSON, id, &edit, 0, STORE_ANY, &b),
                     STORE_UNAVAILABLE);
    assert_int_equal(atomic_load(&g_started), tried);
    model_entity_t got;
    assert_int_equal(store_entity_get(f->s, f->a, MODEL_PERSON, id, &got), STORE_OK);
}

#define WRITERS 8
#define WRITES 25

typedef struct {
    fixture *f;
    int late; /* writes answered before any flush ended after they began */
    int failed;
} writer;

static void *write_many(void *arg)
{
    writer *w = arg;
    for (int i = 0; i < WRITES; i++) {
        int ended_before = atomic_load(&g_ended);
        int32_t id = 0;
        if (tmpdb_entity(w->f->s, MODEL_CONTACT, &id) != STORE_OK)
            w->failed++;
        else if (atomic_load(&g_ended) <= ended_before)
            w->late++;
    }
    return NULL;
}

/* Behind a slow disk, concurrent writers share flushes, and each is
 * answered only once a flush has ended after it began. */
static void test_writers_share_flushes(void **state)
{
    fixture *f = *state;
    atomic_store(&g_delay_us, 2000);
    int before = atomic_load(&g_started);
    pthread_t th[WRITERS];
    writer w[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (writer){.f = f};
        assert_int_equal(pthread_create(&th[i], NULL, write_many, &w[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].failed, 0);
        assert_int_equal(w[i].late, 0);
    }
    int flushes = atomic_load(&g_started) - before;
    assert_true(flushes >= 1);
    assert_true(flushes < WRITERS * WRITES / 2);
    /* every write is there after a reopen */
    store_close(f->s);
    store_options opt = {.durable = true, .pool_size = 4};
    assert_int_equal(store_open(f->path, &opt, &f->s), STORE_OK);
    model_entity_t got;
    for (int32_t id = 1; id <= WRITERS * WRITES; id++)
        assert_int_equal(store_entity_get(f->s, f->a, MODEL_CONTACT, id, &got), STORE_OK);
}

static void *write_one(void *arg)
{
    fixture *f = arg;
    int32_t id = 0;
    return tmpdb_entity(f->s, MODEL_PERSON, &id) == STORE_OK ? NULL : arg;
}

/* A write that fails while another write's flush runs leaves no
 * transaction open behind it: the database is not kept locked, and the
 * store closes cleanly. */
static void test_failed_write_during_flush(void **state)
{
    fixture *f = *state;
    atomic_store(&g_delay_us, 100000);
    int before = atomic_load(&g_started);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, write_one, f), 0);
    while (atomic_load(&g_started) == before)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    model_blob_edit edit = {.description = "nobody"};
    model_blob b;
    assert_int_equal(
        store_image_info_put(f->s, f->a, MODEL_PERSON, 1999999, &edit, 0, STORE_ANY, &b),
        STORE_ABSENT);
    void *failed = NULL;
    assert_int_equal(pthread_join(th, &failed), 0);
    assert_null(failed);
    atomic_store(&g_delay_us, 0);
    assert_true(tmpdb_write_lock_freed(f->path));
}

/* ---- deferred writes ---- */

typedef struct {
    atomic_int calls;
    atomic_int rc;
} waited;

static void on_flushed(void *ctx, store_err rc)
{
    waited *w = ctx;
    atomic_store(&w->rc, rc);
    atomic_fetch_add(&w->calls, 1);
}

/* The scope's result: at once, or through on_flushed. */
static store_err scope_result(store_t *view, waited *w)
{
    store_err rc = store_scope_wait(view, on_flushed, w);
    if (rc != STORE_PENDING)
        return rc;
    while (atomic_load(&w->calls) == 0)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    return (store_err)atomic_load(&w->rc);
}

/* Starts a write on another thread and returns once its flush has begun
 * (a slow one: g_delay_us): until it ends, nothing else is committed. */
static void flush_running(fixture *f, pthread_t *th)
{
    int before = atomic_load(&g_started);
    assert_int_equal(pthread_create(th, NULL, write_one, f), 0);
    while (atomic_load(&g_started) == before)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
}

/* A deferred write returns while another group's flush runs; the view's
 * own read sees it, a read through the store does not until its COMMIT;
 * its function is called once, after a flush that began after it. */
static void test_deferred_write_waits_without_thread(void **state)
{
    fixture *f = *state;
    int32_t id = 0;
    assert_int_equal(tmpdb_entity(f->s, MODEL_PERSON, &id), STORE_OK);
    atomic_store(&g_delay_us, 200000);
    pthread_t th;
    flush_running(f, &th);
    int ended = atomic_load(&g_ended);

    store_t *v = store_scope_open(f->s, f->a);
    assert_non_null(v);
    assert_ptr_not_equal(v, f->s);
    model_blob_edit edit = {.description = "deferred"};
    model_blob b;
    assert_int_equal(store_image_info_put(v, f->a, MODEL_PERSON, id, &edit, 0, STORE_ANY, &b),
                     STORE_OK);
    assert_int_equal(atomic_load(&g_ended), ended); /* returned during the flush */
    model_blob seen;
    assert_int_equal(store_image_info(v, f->a, MODEL_PERSON, id, &seen), STORE_OK);
    assert_string_equal(seen.description, "deferred");
    model_blob other; /* this thread, through the store: the committed state */
    assert_int_equal(store_image_info(f->s, f->a, MODEL_PERSON, id, &other), STORE_OK);
    assert_string_equal(other.description, "");
    assert_true(store_scope_close(v));

    assert_int_equal(store_image_info(f->s, f->a, MODEL_PERSON, id, &other), STORE_OK);
    assert_string_equal(other.description, "");
    assert_int_equal(atomic_load(&g_ended), ended);

    waited w = {0};
    assert_int_equal(store_scope_wait(v, on_flushed, &w), STORE_PENDING);
    while (atomic_load(&w.calls) == 0)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    assert_int_equal(atomic_load(&w.rc), STORE_OK);
    assert_true(atomic_load(&g_ended) >= ended + 2); /* the running flush, then its own */
    assert_int_equal(store_image_info(f->s, f->a, MODEL_PERSON, id, &other), STORE_OK);
    assert_string_equal(other.description, "deferred");
    assert_int_equal(pthread_join(th, NULL), 0);
    nanosleep(&(struct timespec){0, 50000000}, NULL);
    assert_int_equal(atomic_load(&w.calls), 1);
}

/* Two views open at once on one thread are two scopes: what one wrote
 * and has not committed, the other does not read, and only the view that
 * wrote has something to wait for. */
static void test_views_are_independent(void **state)
{
    fixture *f = *state;
    int32_t id = 0;
    assert_int_equal(tmpdb_entity(f->s, MODEL_PERSON, &id), STORE_OK);
    atomic_store(&g_delay_us, 200000);
    pthread_t th;
    flush_running(f, &th);

    store_t *wrote = store_scope_open(f->s, f->a);
    store_t *read = store_scope_open(f->s, f->a);
    assert_ptr_not_equal(wrote, read);
    model_blob_edit edit = {.description = "one view"};
    model_blob b;
    assert_int_equal(store_image_info_put(wrote, f->a, MODEL_PERSON, id, &edit, 0, STORE_ANY, &b),
                     STORE_OK);
    assert_int_equal(store_image_info(read, f->a, MODEL_PERSON, id, &b), STORE_OK);
    assert_string_equal(b.description, "");
    assert_int_equal(store_image_info(wrote, f->a, MODEL_PERSON, id, &b), STORE_OK);
    assert_string_equal(b.description, "one view");
    assert_false(store_scope_close(read));
    assert_true(store_scope_close(wrote));
    waited w = {0};
    assert_int_equal(scope_result(wrote, &w), STORE_OK);
    assert_int_equal(store_image_info(f->s, f->a, MODEL_PERSON, id, &b), STORE_OK);
    assert_string_equal(b.description, "one view");
    assert_int_equal(pthread_join(th, NULL), 0);
}

/* A view whose write is refused on a version another view wrote and has
 * not committed reads that version from then on (a retry would read the
 * committed one again and again while groups follow each other), and its
 * retry, resting on the uncommitted write, waits for its COMMIT. */
static void test_refused_view_reads_the_group(void **state)
{
    fixture *f = *state;
    int32_t id = 0;
    assert_int_equal(tmpdb_entity(f->s, MODEL_PERSON, &id), STORE_OK);
    atomic_store(&g_delay_us, 200000);
    pthread_t th;
    flush_running(f, &th);

    store_t *first = store_scope_open(f->s, f->a);
    store_t *late = store_scope_open(f->s, f->a);
    model_blob_edit edit = {.description = "first"}, mine = {.extra_info = "late"};
    model_blob b, seen;
    assert_int_equal(store_image_info(late, f->a, MODEL_PERSON, id, &seen), STORE_OK);
    assert_int_equal(store_image_info_put(first, f->a, MODEL_PERSON, id, &edit, 0, STORE_ANY, &b),
                     STORE_OK);
    assert_int_equal(
        store_image_info_put(late, f->a, MODEL_PERSON, id, &mine, 0, seen.info_version, &b),
        STORE_PRECONDITION);
    assert_int_equal(store_image_info(late, f->a, MODEL_PERSON, id, &seen), STORE_OK);
    assert_string_equal(seen.description, "first");
    assert_int_equal(
        store_image_info_put(late, f->a, MODEL_PERSON, id, &mine, 0, seen.info_version, &b),
        STORE_OK);
    assert_true(store_scope_close(first));
    assert_true(store_scope_close(late));
    waited w1 = {0}, w2 = {0};
    assert_int_equal(scope_result(first, &w1), STORE_OK);
    assert_int_equal(scope_result(late, &w2), STORE_OK);
    assert_int_equal(store_image_info(f->s, f->a, MODEL_PERSON, id, &b), STORE_OK);
    assert_string_equal(b.description, "first");
    assert_string_equal(b.extra_info, "late");
    assert_int_equal(pthread_join(th, NULL), 0);
}

/* A scope whose flush fails reports the failure; a scope that wrote
 * nothing has nothing to wait for; a refused deferred write is refused at
 * once and leaves the scope nothing to wait for. */
static void test_deferred_failures(void **state)
{
    fixture *f = *state;
    int32_t id = 0;
    assert_int_equal(tmpdb_entity(f->s, MODEL_PERSON, &id), STORE_OK);
    model_blob b;
    store_t *v = store_scope_open(f->s, f->a);
    assert_int_equal(store_image_info(v, f->a, MODEL_PERSON, id, &b), STORE_OK);
    assert_false(store_scope_close(v));

    v = store_scope_open(f->s, f->a);
    model_blob_edit edit = {.description = "x"};
    assert_int_equal(store_image_info_put(v, f->a, MODEL_PERSON, 1999999, &edit, 0, STORE_ANY, &b),
                     STORE_ABSENT);
    assert_false(store_scope_close(v));

    atomic_store(&g_fail, EIO);
    v = store_scope_open(f->s, f->a);
    assert_int_equal(store_image_info_put(v, f->a, MODEL_PERSON, id, &edit, 0, STORE_ANY, &b),
                     STORE_OK);
    assert_true(store_scope_close(v));
    waited w = {0};
    assert_int_equal(scope_result(v, &w), STORE_UNAVAILABLE);
}

/* Without durable mode there is nothing to defer: the view is the store
 * itself, and closing it leaves nothing to wait for. */
static void test_no_scope_without_durable(void **state)
{
    fixture *f = *state;
    store_t *plain = NULL;
    char path[600];
    snprintf(path, sizeof(path), "%s.plain", f->path);
    assert_int_equal(store_open(path, &(store_options){0}, &plain), STORE_OK);
    store_t *v = store_scope_open(plain, f->a);
    assert_ptr_equal(v, plain);
    int32_t id = 0;
    assert_int_equal(tmpdb_entity(v, MODEL_PERSON, &id), STORE_OK);
    assert_false(store_scope_close(v));
    store_close(plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_answered_after_flush, setup_pool, teardown),
        cmocka_unit_test_setup_teardown(test_write_answered_after_flush, setup_single, teardown),
        cmocka_unit_test_setup_teardown(test_failed_flush_is_sticky, setup_pool, teardown),
        cmocka_unit_test_setup_teardown(test_failed_flush_is_sticky, setup_single, teardown),
        cmocka_unit_test_setup_teardown(test_writers_share_flushes, setup_pool, teardown),
        cmocka_unit_test_setup_teardown(test_failed_write_during_flush, setup_pool, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_write_waits_without_thread, setup_pool,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_views_are_independent, setup_pool, teardown),
        cmocka_unit_test_setup_teardown(test_refused_view_reads_the_group, setup_pool, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_failures, setup_pool, teardown),
        cmocka_unit_test_setup_teardown(test_no_scope_without_durable, setup_pool, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
