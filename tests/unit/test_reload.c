/*
 * test_reload.c — unit tests of the reload registry (src/core/reload.h):
 * every step runs once per reload, in the order registered, with its own
 * handle; a failing step neither stops the ones after it nor hides its
 * reason (the count of failures is returned, the log line carries the
 * step's message); a full registry refuses a step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/reload.h"

/* A step's handle: what it answers, and when it ran (a shared clock). */
typedef struct {
    reload_result answer;
    const char *msg;
    int runs;
    int ran_at;
    int *clock;
} fake_layer;

static reload_result step(void *ctx, char *msg, size_t cap)
{
    fake_layer *l = ctx;
    l->runs++;
    l->ran_at = (*l->clock)++;
    assert_string_equal(msg, ""); /* each step starts with an empty message */
    snprintf(msg, cap, "%s", l->msg);
    return l->answer;
}

static void test_steps_run_in_order_failures_counted(void **state)
{
    (void)state;
    int clock = 0;
    fake_layer a = {RELOAD_CHANGED, "new", 0, -1, &clock};
    fake_layer b = {RELOAD_FAILED, "bad file", 0, -1, &clock};
    fake_layer c = {RELOAD_UNCHANGED, "", 0, -1, &clock};
    reload_registry r = {0};
    assert_int_equal(reload_add(&r, "a", step, &a), 0);
    assert_int_equal(reload_add(&r, "b", step, &b), 0);
    assert_int_equal(reload_add(&r, "c", step, &c), 0);
    assert_int_equal(reload_run(&r), 1);
    assert_int_equal(a.ran_at, 0);
    assert_int_equal(b.ran_at, 1);
    assert_int_equal(c.ran_at, 2); /* after the failure too */
    b.answer = RELOAD_CHANGED;
    assert_int_equal(reload_run(&r), 0);
    assert_int_equal(a.runs, 2);
    assert_int_equal(b.runs, 2);
    assert_int_equal(c.runs, 2);
}

static void test_empty_registry(void **state)
{
    (void)state;
    reload_registry r = {0};
    assert_int_equal(reload_run(&r), 0);
}

static void test_full_registry_refuses(void **state)
{
    (void)state;
    int clock = 0;
    fake_layer l = {RELOAD_UNCHANGED, "", 0, -1, &clock};
    reload_registry r = {0};
    for (int i = 0; i < RELOAD_MAX_STEPS; i++)
        assert_int_equal(reload_add(&r, "step", step, &l), 0);
    assert_int_equal(reload_add(&r, "one too many", step, &l), -1);
    assert_int_equal(reload_run(&r), 0);
    assert_int_equal(l.runs, RELOAD_MAX_STEPS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps_run_in_order_failures_counted),
        cmocka_unit_test(test_empty_registry),
        cmocka_unit_test(test_full_registry_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
