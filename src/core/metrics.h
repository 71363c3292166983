/*
 * metrics.h — a registry of counters, gauges and histograms, and their
 * page in the Prometheus text exposition format (version 0.0.4).
 *
 * The process makes one registry at start and hands it to each layer,
 * which registers the families it counts and keeps the handles. A
 * family's label values are all known when it is registered (route
 * templates from the route table, fixed lists of outcomes): nothing a
 * client sends becomes a label value, so the page is bounded. A series
 * is addressed by its index in the cross product of the label values,
 * the first label varying slowest (metrics_index).
 *
 * Counting is a relaxed atomic add on the series' cell: no lock and no
 * allocation on the hot path. A NULL family ignores every count, so code
 * given no registry (the command-line tools, unit tests) counts nothing
 * and behaves the same. Registering and rendering take the registry's
 * lock; families are never removed before metrics_destroy.
 *
 * Histograms take whole numbers (microseconds, counts) and say how many
 * of them make the page's unit (`scale`: 1e6 for seconds); their buckets
 * are counted apart and summed when the page is made, so a bucket's count
 * and `_count` always agree.
 */
#ifndef CB_METRICS_H
#define CB_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

typedef struct metrics metrics_t;
typedef struct metrics_family metrics_family;

typedef enum { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM } metrics_type;

#define METRICS_MAX_LABELS 4
#define METRICS_MAX_BOUNDS 24

typedef struct {
    const char *name;          /* a label name */
    const char *const *values; /* every value it takes (copied) */
    size_t n;                  /* >= 1 */
} metrics_label;

typedef struct {
    const char *name; /* [a-z_:][a-z0-9_:]*; a counter's ends in _total */
    const char *help;
    metrics_type type;
    const metrics_label *labels;
    size_t nlabels; /* <= METRICS_MAX_LABELS */
    /* histograms: upper bounds, increasing, in the observed unit */
    const uint64_t *bounds;
    size_t nbounds; /* <= METRICS_MAX_BOUNDS */
    double scale;   /* observed units per page unit (0: 1) */
    /* series still zero (never observed) are left off the page: for large
     * cross products such as route x method x status */
    bool sparse;
} metrics_def;

/* NULL when out of memory. */
metrics_t *metrics_create(void);
void metrics_destroy(metrics_t *m);

/* A new family; NULL when m is NULL, the definition is malformed or its
 * name is taken (logged), or out of memory. */
metrics_family *metrics_register(metrics_t *m, const metrics_def *d);

/* The series of label value indexes coords[0..nlabels) (each below its
 * label's n). */
size_t metrics_index(const metrics_family *f, const size_t *coords);

/* Counters and gauges: adds n (may be negative for gauges). */
void metrics_add(metrics_family *f, size_t series, int64_t n);
/* Gauges, and counters kept elsewhere (copied in by a collector). */
void metrics_set(metrics_family *f, size_t series, int64_t v);
int64_t metrics_get(const metrics_family *f, size_t series);
/* Histograms: one observation of v (in the observed unit). */
void metrics_observe(metrics_family *f, size_t series, uint64_t v);

/* fn(cls) runs, under the registry's lock, before each page is made: it
 * copies counts kept elsewhere in with metrics_set. Removed by
 * metrics_uncollect(m, fn, cls) before cls goes away. */
cb_err metrics_collect(metrics_t *m, void (*fn)(void *cls), void *cls);
void metrics_uncollect(metrics_t *m, void (*fn)(void *cls), void *cls);

/* The page (text format 0.0.4), appended to out. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
cb_err metrics_render(metrics_t *m, buf_t *out);

#endif
