/*
 * test_metrics.c — the registry of core/metrics.h: the page's exact text
 * for counters, gauges and histograms with and without labels, label
 * values escaped, sparse families, collectors, malformed definitions
 * refused, and a NULL registry or family counting nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/metrics.h"

/* The page of m, as a string the caller frees with buf_free(b). */
static const char *page(metrics_t *m, buf_t *b)
{
    buf_init(b, 1 << 20);
    assert_int_equal(metrics_render(m, b), CB_EOK);
    return buf_str(b);
}

static void test_counters_and_gauges(void **state)
{
    (void)state;
    metrics_t *m = metrics_create();
    const char *const kinds[] = {"a", "q\"uo\\te\nx"};
    const char *const outs[] = {"ok", "bad"};
    metrics_label l[2] = {{"kind", kinds, 2}, {"out", outs, 2}};
    metrics_family *c = metrics_register(
        m, &(metrics_def){
               .name = "t_total", .help = "Things.\nDone \\ here", .labels = l, .nlabels = 2});
    metrics_family *g = metrics_register(
        m, &(metrics_def){.name = "t_open", .help = "Open.", .type = METRICS_GAUGE});
    assert_non_null(c);
    assert_non_null(g);
    size_t at[2] = {1, 0};
    metrics_add(c, metrics_index(c, at), 3);
    metrics_add(c, metrics_index(c, (size_t[]){0, 1}), 1);
    metrics_add(g, 0, 5);
    metrics_add(g, 0, -7);
    assert_int_equal(metrics_get(c, 2), 3);
    buf_t b;
    assert_string_equal(page(m, &b), "# HELP t_total Things.\\nDone \\\\ here\n"
                                     "# TYPE t_total counter\n"
                                     "t_total{kind=\"a\",out=\"ok\"} 0\n"
                                     "t_total{kind=\"a\",out=\"bad\"} 1\n"
                                     "t_total{kind=\"q\\\"uo\\\\te\\nx\",out=\"ok\"} 3\n"
                                     "t_total{kind=\"q\\\"uo\\\\te\\nx\",out=\"bad\"} 0\n"
                                     "# HELP t_open Open.\n"
                                     "# TYPE t_open gauge\n"
                                     "t_open -2\n");
    buf_free(&b);
    metrics_destroy(m);
}

static void test_histogram(void **state)
{
    (void)state;
    metrics_t *m = metrics_create();
    const uint64_t us[] = {1000, 500000};
    const char *const routes[] = {"/a", "/b"};
    metrics_label l = {"route", routes, 2};
    metrics_family *h = metrics_register(m, &(metrics_def){.name = "t_seconds",
                                                           .help = "Time.",
                                                           .type = METRICS_HISTOGRAM,
                                                           .labels = &l,
                                                           .nlabels = 1,
                                                           .bounds = us,
                                                           .nbounds = 2,
                                                           .scale = 1e6,
                                                           .sparse = true});
    metrics_observe(h, 1, 1000); /* on a bound: in it */
    metrics_observe(h, 1, 2000);
    metrics_observe(h, 1, 9000000); /* above every bound */
    buf_t b;
    assert_string_equal(page(m, &b), "# HELP t_seconds Time.\n"
                                     "# TYPE t_seconds histogram\n"
                                     "t_seconds_bucket{route=\"/b\",le=\"0.001\"} 1\n"
                                     "t_seconds_bucket{route=\"/b\",le=\"0.5\"} 2\n"
                                     "t_seconds_bucket{route=\"/b\",le=\"+Inf\"} 3\n"
                                     "t_seconds_sum{route=\"/b\"} 9.003\n"
                                     "t_seconds_count{route=\"/b\"} 3\n");
    buf_free(&b);
    metrics_destroy(m);
}

static void test_histogram_without_labels(void **state)
{
    (void)state;
    metrics_t *m = metrics_create();
    const uint64_t n[] = {1, 4};
    metrics_family *h = metrics_register(m, &(metrics_def){.name = "t_writes",
                                                           .help = "W.",
                                                           .type = METRICS_HISTOGRAM,
                                                           .bounds = n,
                                                           .nbounds = 2});
    metrics_observe(h, 0, 3);
    buf_t b;
    assert_string_equal(page(m, &b), "# HELP t_writes W.\n"
                                     "# TYPE t_writes histogram\n"
                                     "t_writes_bucket{le=\"1\"} 0\n"
                                     "t_writes_bucket{le=\"4\"} 1\n"
                                     "t_writes_bucket{le=\"+Inf\"} 1\n"
                                     "t_writes_sum 3\n"
                                     "t_writes_count 1\n");
    buf_free(&b);
    metrics_destroy(m);
}

typedef struct {
    metrics_family *f;
    int64_t v;
    int calls;
} source;

static void copy_in(void *cls)
{
    source *s = cls;
    s->calls++;
    metrics_set(s->f, 0, s->v);
}

static void test_collector(void **state)
{
    (void)state;
    metrics_t *m = metrics_create();
    source s = {.v = 41};
    s.f = metrics_register(m, &(metrics_def){.name = "t_hits_total", .help = "H."});
    assert_int_equal(metrics_collect(m, copy_in, &s), CB_EOK);
    buf_t b;
    assert_non_null(strstr(page(m, &b), "t_hits_total 41\n"));
    buf_free(&b);
    metrics_uncollect(m, copy_in, &s);
    s.v = 99;
    assert_non_null(strstr(page(m, &b), "t_hits_total 41\n"));
    buf_free(&b);
    assert_int_equal(s.calls, 1);
    metrics_destroy(m);
}

static void test_malformed_and_null(void **state)
{
    (void)state;
    metrics_t *m = metrics_create();
    const char *const v[] = {"x"};
    const uint64_t down[] = {5, 2};
    metrics_label le = {"le", v, 1}, bad = {"a-b", v, 1}, none = {"a", v, 0};
    assert_null(metrics_register(m, &(metrics_def){.name = "9x", .help = "h"}));
    assert_null(metrics_register(m, &(metrics_def){.name = "x y", .help = "h"}));
    assert_null(metrics_register(m, &(metrics_def){.name = "x", .help = NULL}));
    assert_null(
        metrics_register(m, &(metrics_def){.name = "x", .help = "h", .labels = &le, .nlabels = 1}));
    assert_null(metrics_register(
        m, &(metrics_def){.name = "x", .help = "h", .labels = &bad, .nlabels = 1}));
    assert_null(metrics_register(
        m, &(metrics_def){.name = "x", .help = "h", .labels = &none, .nlabels = 1}));
    assert_null(metrics_register(
        m, &(metrics_def){
               .name = "x", .help = "h", .type = METRICS_HISTOGRAM, .bounds = down, .nbounds = 2}));
    /* nothing registered, nothing on the page */
    buf_t b;
    assert_string_equal(page(m, &b), "");
    buf_free(&b);
    /* no registry: every call is a no-op */
    assert_null(metrics_register(NULL, &(metrics_def){.name = "x", .help = "h"}));
    metrics_add(NULL, 0, 1);
    metrics_set(NULL, 0, 1);
    metrics_observe(NULL, 0, 1);
    assert_int_equal(metrics_get(NULL, 0), 0);
    assert_int_equal(metrics_collect(NULL, copy_in, NULL), CB_EOK);
    assert_string_equal(page(NULL, &b), "");
    buf_free(&b);
    /* a series out of range is ignored; a name is registered once */
    metrics_family *f = metrics_register(m, &(metrics_def){.name = "t_total", .help = "h"});
    assert_null(metrics_register(m, &(metrics_def){.name = "t_total", .help = "again"}));
    metrics_add(f, 1, 5);
    assert_int_equal(metrics_get(f, 0), 0);
    metrics_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_and_gauges),      cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_histogram_without_labels), cmocka_unit_test(test_collector),
        cmocka_unit_test(test_malformed_and_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
