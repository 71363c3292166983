/*
 * test_store_task.c — the batch-task recipes (store_task.c) on the backend
 * under test (SQLite, or PostgreSQL with CRMBLOB_TEST_DB=pg): a New task is
 * claimed once, only its server beats and ends it, Stop and the reaper tell
 * the truth, and a deleted task takes its output record with it.
 */
#include "tmpdb.h"

static int64_t add(tmpdb_store *f, const char *name)
{
    store_task t = {.name = name, .params = "{}", .associate_id = 7};
    assert_int_equal(store_task_add(f->s, &t), STORE_OK);
    assert_true(t.id > 0);
    return t.id;
}

static store_task get(tmpdb_store *f, int64_t id)
{
    store_task t;
    assert_int_equal(store_task_get(f->s, f->a, id, &t), STORE_OK);
    return t;
}

static void test_claimed_once(void **state)
{
    tmpdb_store *f = *state;
    int64_t one = add(f, "j"), two = add(f, "j");
    store_task t;
    assert_int_equal(store_task_claim(f->s, f->a, "a", 1000, 6000, &t), STORE_OK);
    assert_int_equal(t.id, one);
    assert_int_equal(t.state, STORE_TASK_STARTED);
    assert_int_equal(t.start_count, 1);
    assert_string_equal(t.server, "a");
    assert_int_equal(store_task_claim(f->s, f->a, "b", 1000, 6000, &t), STORE_OK);
    assert_int_equal(t.id, two);
    assert_int_equal(store_task_claim(f->s, f->a, "c", 1000, 6000, &t), STORE_ABSENT);
    bool stop = true;
    assert_int_equal(store_task_beat(f->s, one, "b", 7000, 50, "half", &stop), STORE_ABSENT);
    assert_int_equal(store_task_beat(f->s, one, "a", 7000, 50, "half", &stop), STORE_OK);
    assert_false(stop);
    assert_int_equal(get(f, one).percent, 50);
    assert_string_equal(get(f, one).progress, "half");
}

static void test_stop_and_finish(void **state)
{
    tmpdb_store *f = *state;
    int64_t run = add(f, "j"), waiting;
    store_task t;
    assert_int_equal(store_task_claim(f->s, f->a, "a", 1000, 6000, &t), STORE_OK);
    waiting = add(f, "j");
    assert_int_equal(store_task_stop(f->s, waiting, 1500), STORE_OK); /* New: Failed at once */
    assert_int_equal(get(f, waiting).state, STORE_TASK_FAILED);
    assert_int_equal(store_task_stop(f->s, run, 1500), STORE_OK); /* Started: the flag */
    bool stop = false;
    assert_int_equal(store_task_beat(f->s, run, "a", 7000, 10, "", &stop), STORE_OK);
    assert_true(stop);
    t = get(f, run);
    t.state = STORE_TASK_FAILED;
    t.result = "Stopped";
    assert_int_equal(store_task_finish(f->s, &t, "b", 2000), STORE_ABSENT); /* not b's */
    assert_int_equal(store_task_finish(f->s, &t, "a", 2000), STORE_OK);
    assert_int_equal(get(f, run).state, STORE_TASK_FAILED);
    assert_string_equal(get(f, run).result, "Stopped");
    assert_int_equal(store_task_stop(f->s, 999999, 1), STORE_ABSENT);
}

static void test_reap_lapsed_only(void **state)
{
    tmpdb_store *f = *state;
    int64_t a = add(f, "j"), b = add(f, "j"), n = -1;
    store_task t;
    assert_int_equal(store_task_claim(f->s, f->a, "gone", 1000, 5000, &t), STORE_OK);
    assert_int_equal(store_task_claim(f->s, f->a, "alive", 1000, 9000, &t), STORE_OK);
    assert_int_equal(store_task_reap(f->s, 6000, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(get(f, a).state, STORE_TASK_FAILED);
    assert_int_equal(get(f, b).state, STORE_TASK_STARTED);
    assert_int_equal(store_task_reap(f->s, 6000, &n), STORE_OK);
    assert_int_equal(n, 0);
}

static void test_delete_takes_the_output(void **state)
{
    tmpdb_store *f = *state;
    int64_t id = add(f, "j");
    store_task t;
    model_blob b;
    assert_int_equal(store_task_claim(f->s, f->a, "a", 1000, 6000, &t), STORE_OK);
    assert_int_equal(store_blob_create(f->s, f->a, NULL, NULL, 7, &b), STORE_OK);
    t.state = STORE_TASK_SUCCEEDED;
    t.output_blob = b.blob_id;
    assert_int_equal(store_task_finish(f->s, &t, "a", 2000), STORE_OK);
    assert_int_equal(get(f, id).output_blob, b.blob_id);
    int64_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(store_task_expired(f->s, f->a, 3000, 10, &ids, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], id);
    assert_int_equal(store_task_delete(f->s, id), STORE_OK);
    assert_int_equal(store_task_get(f->s, f->a, id, &t), STORE_ABSENT);
    assert_int_equal(store_blob_get(f->s, f->a, b.blob_id, &b), STORE_ABSENT);
    assert_int_equal(store_task_delete(f->s, id), STORE_ABSENT);
}

/* A deleted task's id is never given to another, the newest one's
 * either (SQLite: AUTOINCREMENT since schema v10; PostgreSQL: a
 * sequence): a client's stale id must not reach another task. */
static void test_ids_never_reused(void **state)
{
    tmpdb_store *f = *state;
    int64_t one = add(f, "j"), two = add(f, "j");
    assert_int_equal(store_task_delete(f->s, two), STORE_OK);
    int64_t three = add(f, "j");
    assert_true(three > two);
    assert_int_equal(store_task_delete(f->s, three), STORE_OK);
    assert_int_equal(store_task_delete(f->s, one), STORE_OK);
    assert_true(add(f, "j") > three);
}

/* A schema v9 file (batch_task without AUTOINCREMENT) migrated to v10
 * keeps its tasks, and gives no deleted id again from then on. */
static void test_v9_tasks_kept_by_v10(void **state)
{
    TMPDB_SQLITE_ONLY("an older SQLite schema made by hand (PostgreSQL starts at its own version)");
    tmpdb_store *f = *state;
    int64_t one = add(f, "j"), two = add(f, "k");
    int64_t current = tmpdb_schema_version(f->path);
    store_close(f->s);
    f->s = NULL;
    tmpdb_exec(f->path,
               "DROP TABLE blob_piece; DROP TABLE batch_file; "
               "CREATE TABLE t9 AS SELECT * FROM batch_task; DROP TABLE batch_task; "
               "CREATE TABLE batch_task (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
               "description TEXT NOT NULL DEFAULT '', params TEXT NOT NULL DEFAULT '{}', "
               "associate_id INTEGER NOT NULL, state INTEGER NOT NULL, "
               "percent INTEGER NOT NULL DEFAULT 0, progress TEXT NOT NULL DEFAULT '', "
               "result TEXT NOT NULL DEFAULT '', response TEXT NOT NULL DEFAULT '', "
               "file_name TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL, "
               "started_ms INTEGER, finished_ms INTEGER, "
               "start_count INTEGER NOT NULL DEFAULT 0, server TEXT NOT NULL DEFAULT '', "
               "lease_ms INTEGER NOT NULL DEFAULT 0, stop INTEGER NOT NULL DEFAULT 0, "
               "output_blob INTEGER REFERENCES blob(id) ON DELETE SET NULL); "
               "INSERT INTO batch_task SELECT * FROM t9; DROP TABLE t9; "
               "CREATE INDEX batch_task_state ON batch_task(state, id); "
               "PRAGMA user_version = 9");
    assert_int_equal(store_open(f->path, NULL, &f->s), STORE_OK);
    assert_int_equal(tmpdb_schema_version(f->path), current);
    assert_string_equal(get(f, one).name, "j");
    assert_string_equal(get(f, two).name, "k");
    assert_int_equal(get(f, two).associate_id, 7);
    assert_int_equal(store_task_delete(f->s, two), STORE_OK);
    assert_true(add(f, "j") > two);
}

#define CASE(t) cmocka_unit_test_setup_teardown(t, tmpdb_setup_plain, tmpdb_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        CASE(test_claimed_once),
        CASE(test_stop_and_finish),
        CASE(test_reap_lapsed_only),
        CASE(test_delete_takes_the_output),
        CASE(test_ids_never_reused),
        CASE(test_v9_tasks_kept_by_v10),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
