/*
 * test_task_edit.c — UpdateBatchTask's and the task list's recipes
 * (store_task.c: store_task_update, store_task_page) on the backend under
 * test (SQLite, or PostgreSQL with CRMBLOB_TEST_DB=pg): ParameterObject
 * changes only while New (a claim first makes it a conflict that names the
 * state), Description in any state, nothing of the job's is touched; a
 * page is filtered by its terms and the owner, ordered with the id last,
 * bounded by top, and says whether rows follow.
 */
#include "tmpdb.h"

static int64_t add(tmpdb_store *f, const char *name, const char *desc, int32_t owner)
{
    store_task t = {
        .name = name, .description = desc, .params = "{\"n\":\"1\"}", .associate_id = owner};
    assert_int_equal(store_task_add(f->s, &t), STORE_OK);
    return t.id;
}

static void test_update_new_started_finished(void **state)
{
    tmpdb_store *f = *state;
    int64_t id = add(f, "j", "first", 7);
    store_task t, run;
    store_task_edit both = {.description = "second", .params = "{\"n\":\"2\"}"};
    assert_int_equal(store_task_update(f->s, f->a, id, &both, &t), STORE_OK);
    assert_string_equal(t.description, "second");
    assert_string_equal(t.params, "{\"n\":\"2\"}");
    assert_int_equal(t.state, STORE_TASK_NEW);
    /* the job reads what the update wrote */
    assert_int_equal(store_task_claim(f->s, f->a, "a", 1000, 6000, &run), STORE_OK);
    assert_int_equal(run.id, id);
    assert_string_equal(run.params, "{\"n\":\"2\"}");
    store_task_edit params = {.params = "{\"n\":\"3\"}"};
    assert_int_equal(store_task_update(f->s, f->a, id, &params, &t), STORE_CONFLICT);
    assert_int_equal(t.state, STORE_TASK_STARTED); /* as it is, for the answer */
    store_task_edit desc = {.description = "third"};
    assert_int_equal(store_task_update(f->s, f->a, id, &desc, &t), STORE_OK);
    assert_string_equal(t.description, "third");
    assert_string_equal(t.params, "{\"n\":\"2\"}");
    assert_string_equal(t.server, "a"); /* the claim is intact */
    bool stop = true;
    assert_int_equal(store_task_beat(f->s, id, "a", 7000, 40, "on", &stop), STORE_OK);
    run.state = STORE_TASK_SUCCEEDED;
    run.result = "done";
    assert_int_equal(store_task_finish(f->s, &run, "a", 2000), STORE_OK);
    desc.description = "fourth";
    assert_int_equal(store_task_update(f->s, f->a, id, &desc, &t), STORE_OK);
    assert_int_equal(t.state, STORE_TASK_SUCCEEDED);
    assert_string_equal(t.result, "done");
    assert_string_equal(t.description, "fourth");
    assert_int_equal(store_task_update(f->s, f->a, id, &params, &t), STORE_CONFLICT);
    assert_int_equal(store_task_delete(f->s, id), STORE_OK);
    assert_int_equal(store_task_update(f->s, f->a, id, &desc, &t), STORE_ABSENT);
}

static store_task *page(tmpdb_store *f, store_task_page_query *q, int *n, bool *more)
{
    store_task *ts = NULL;
    assert_int_equal(store_task_page(f->s, f->a, q, &ts, n, more), STORE_OK);
    return ts;
}

static void test_page(void **state)
{
    tmpdb_store *f = *state;
    int64_t ids[6];
    const char *descs[] = {"beta", "Alpha", "gamma", "alpha two", "delta", "it's"};
    for (int i = 0; i < 6; i++)
        ids[i] = add(f, i < 4 ? "j" : "k", descs[i], i % 2 ? 8 : 7);
    int n;
    bool more;
    store_task_page_query q = {.associate = -1, .top = 4};
    store_task *ts = page(f, &q, &n, &more);
    assert_int_equal(n, 4);
    assert_true(more);
    assert_int_equal(ts[0].id, ids[0]);
    q.skip = 4;
    ts = page(f, &q, &n, &more);
    assert_int_equal(n, 2);
    assert_false(more);
    assert_int_equal(ts[1].id, ids[5]);
    /* text: ASCII case-insensitive, begins; the owner always applies */
    q = (store_task_page_query){.associate = 7, .top = 10, .nterms = 1, .nkeys = 1};
    q.terms[0] = (store_task_term){STORE_TF_DESCRIPTION, STORE_CMP_BEGINS, "ALPHA", 0};
    q.keys[0] = (store_list_key){STORE_TF_DESCRIPTION, true};
    ts = page(f, &q, &n, &more);
    assert_int_equal(n, 0); /* alice's (7) hold none: "Alpha" and "alpha two" are 8's */
    q.associate = -1;
    ts = page(f, &q, &n, &more);
    assert_int_equal(n, 2);
    assert_int_equal(ts[0].id, ids[3]); /* "alpha two" before "Alpha", descending */
    assert_int_equal(ts[1].id, ids[1]);
    /* numbers, ranges, several terms */
    q = (store_task_page_query){.associate = -1, .top = 10, .nterms = 2};
    q.terms[0] = (store_task_term){STORE_TF_ID, STORE_CMP_GT, NULL, ids[0]};
    q.terms[1] = (store_task_term){STORE_TF_NAME, STORE_CMP_EQ, "K", 0};
    ts = page(f, &q, &n, &more);
    assert_int_equal(n, 2);
    assert_int_equal(ts[0].id, ids[4]);
    q.terms[1] = (store_task_term){STORE_TF_DESCRIPTION, STORE_CMP_EQ, "it's", 0};
    ts = page(f, &q, &n, &more);
    assert_int_equal(n, 1);
    assert_int_equal(ts[0].id, ids[5]);
    q.terms[1] = (store_task_term){STORE_TF_STARTED, STORE_CMP_GT, NULL, 0};
    page(f, &q, &n, &more);
    assert_int_equal(n, 0); /* never started: 0 */
    /* out of bounds */
    q.top = STORE_LIST_MAX + 1;
    assert_int_equal(store_task_page(f->s, f->a, &q, &ts, &n, &more), STORE_INVALID);
    q.top = 1;
    q.terms[1] = (store_task_term){STORE_TF_ID, STORE_CMP_BEGINS, NULL, 1};
    assert_int_equal(store_task_page(f->s, f->a, &q, &ts, &n, &more), STORE_INVALID);
}

#define CASE(t) cmocka_unit_test_setup_teardown(t, tmpdb_setup_plain, tmpdb_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        CASE(test_update_new_started_finished),
        CASE(test_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
