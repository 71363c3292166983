/*
 * metrics.c — the registry of metrics.h and its exposition page.
 *
 * A family holds one array of cells: for a counter or gauge one cell per
 * series; for a histogram, per series, one cell per bucket (the +Inf one
 * included), not cumulative, then the sum. Label values are escaped once,
 * at registration. Families live until metrics_destroy, so the handles
 * the layers keep stay valid as long as the registry.
 */
#include "core/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define MAX_COLLECTORS 16

struct metrics_family {
    metrics_family *next;
    char *name, *help;
    metrics_type type;
    size_t nlabels;
    char *label_names[METRICS_MAX_LABELS];
    char **values[METRICS_MAX_LABELS]; /* escaped for the page */
    size_t nvalues[METRICS_MAX_LABELS];
    size_t nseries;
    uint64_t bounds[METRICS_MAX_BOUNDS];
    size_t nbounds;
    double scale;
    bool sparse;
    size_t stride; /* cells per series */
    _Atomic int64_t *cells;
};

typedef struct {
    void (*fn)(void *cls);
    void *cls;
} collector;

struct metrics {
    pthread_mutex_t mu;
    metrics_family *head, *tail;
    collector coll[MAX_COLLECTORS];
    size_t ncoll;
};

metrics_t *metrics_create(void)
{
    metrics_t *m = calloc(1, sizeof(*m));
    if (m != NULL)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

static void family_free(metrics_family *f)
{
    for (size_t i = 0; i < f->nlabels; i++) {
        for (size_t j = 0; f->values[i] != NULL && j < f->nvalues[i]; j++)
            free(f->values[i][j]);
        free(f->values[i]);
        free(f->label_names[i]);
    }
    free(f->name);
    free(f->help);
    free(f->cells);
    free(f);
}

void metrics_destroy(metrics_t *m)
{
    if (m == NULL)
        return;
    for (metrics_family *f = m->head, *next; f != NULL; f = next) {
        next = f->next;
        family_free(f);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* (colons only when colon_ok). */
static bool valid_name(const char *s, bool colon_ok)
{
    if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || (colon_ok && c == ':');
        if (!ok)
            return false;
    }
    return true;
}

/* A label value as the page writes it: \ " and newline escaped. */
static char *escape(const char *s, bool quote)
{
    size_t n = strlen(s);
    char *out = malloc(2 * n + 1), *w = out;
    if (out == NULL)
        return NULL;
    for (; *s; s++) {
        if (*s == '\\' || (quote && *s == '"') || *s == '\n')
            *w++ = '\\';
        *w++ = *s == '\n' ? 'n' : *s;
    }
    *w = '\0';
    return out;
}

static bool def_ok(const metrics_def *d)
{
    if (!valid_name(d->name, true) || d->help == NULL || d->nlabels > METRICS_MAX_LABELS ||
        (d->nlabels > 0 && d->labels == NULL))
        return false;
    for (size_t i = 0; i < d->nlabels; i++)
        if (!valid_name(d->labels[i].name, false) || d->labels[i].n == 0 ||
            strcmp(d->labels[i].name, "le") == 0)
            return false;
    if (d->type != METRICS_HISTOGRAM)
        return true;
    if (d->nbounds == 0 || d->nbounds > METRICS_MAX_BOUNDS || d->bounds == NULL)
        return false;
    for (size_t i = 1; i < d->nbounds; i++)
        if (d->bounds[i] <= d->bounds[i - 1])
            return false;
    return true;
}

/* The family's labels, copied and escaped; false when out of memory. */
static bool copy_labels(metrics_family *f, const metrics_def *d)
{
    f->nseries = 1;
    for (size_t i = 0; i < d->nlabels; i++, f->nlabels++) {
        const metrics_label *l = &d->labels[i];
        f->label_names[i] = strdup(l->name);
        f->values[i] = calloc(l->n, sizeof(char *));
        if (f->label_names[i] == NULL || f->values[i] == NULL)
            return false;
        f->nvalues[i] = l->n;
        for (size_t j = 0; j < l->n; j++)
            if ((f->values[i][j] = escape(l->values[j] != NULL ? l->values[j] : "", true)) == NULL)
                return false;
        f->nseries *= l->n;
    }
    return true;
}

static metrics_family *family_make(const metrics_def *d)
{
    metrics_family *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->type = d->type;
    f->sparse = d->sparse;
    f->scale = d->scale > 0 ? d->scale : 1;
    f->nbounds = d->type == METRICS_HISTOGRAM ? d->nbounds : 0;
    if (f->nbounds > 0)
        memcpy(f->bounds, d->bounds, f->nbounds * sizeof(uint64_t));
    f->stride = d->type == METRICS_HISTOGRAM ? f->nbounds + 2 : 1;
    f->name = strdup(d->name);
    f->help = escape(d->help, false);
    if (f->name == NULL || f->help == NULL || !copy_labels(f, d) ||
        (f->cells = calloc(f->nseries * f->stride, sizeof(*f->cells))) == NULL) {
        family_free(f);
        return NULL;
    }
    return f;
}

metrics_family *metrics_register(metrics_t *m, const metrics_def *d)
{
    if (m == NULL)
        return NULL;
    if (!def_ok(d)) {
        log_error("metrics: malformed definition of %s", d->name != NULL ? d->name : "?");
        return NULL;
    }
    metrics_family *f = family_make(d);
    if (f == NULL) {
        log_error("metrics: out of memory for %s", d->name);
        return NULL;
    }
    pthread_mutex_lock(&m->mu);
    bool taken = false;
    for (const metrics_family *o = m->head; o != NULL && !taken; o = o->next)
        taken = strcmp(o->name, f->name) == 0;
    if (!taken) {
        if (m->tail != NULL)
            m->tail->next = f;
        else
            m->head = f;
        m->tail = f;
    }
    pthread_mutex_unlock(&m->mu);
    if (taken) { /* a page may name a family once */
        log_error("metrics: %s is registered already", f->name);
        family_free(f);
        return NULL;
    }
    return f;
}

size_t metrics_index(const metrics_family *f, const size_t *coords)
{
    size_t s = 0;
    if (f == NULL)
        return 0;
    for (size_t i = 0; i < f->nlabels; i++)
        s = s * f->nvalues[i] + (coords[i] < f->nvalues[i] ? coords[i] : f->nvalues[i] - 1);
    return s;
}

void metrics_add(metrics_family *f, size_t series, int64_t n)
{
    if (f != NULL && series < f->nseries)
        atomic_fetch_add_explicit(&f->cells[series * f->stride], n, memory_order_relaxed);
}

void metrics_set(metrics_family *f, size_t series, int64_t v)
{
    if (f != NULL && series < f->nseries)
        atomic_store_explicit(&f->cells[series * f->stride], v, memory_order_relaxed);
}

int64_t metrics_get(const metrics_family *f, size_t series)
{
    if (f == NULL || series >= f->nseries)
        return 0;
    return atomic_load_explicit(&f->cells[series * f->stride], memory_order_relaxed);
}

void metrics_observe(metrics_family *f, size_t series, uint64_t v)
{
    if (f == NULL || series >= f->nseries || f->type != METRICS_HISTOGRAM)
        return;
    _Atomic int64_t *c = &f->cells[series * f->stride];
    size_t b = 0;
    while (b < f->nbounds && v > f->bounds[b])
        b++;
    atomic_fetch_add_explicit(&c[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c[f->nbounds + 1], (int64_t)v, memory_order_relaxed);
}

cb_err metrics_collect(metrics_t *m, void (*fn)(void *cls), void *cls)
{
    if (m == NULL)
        return CB_EOK;
    cb_err rc = CB_EINTERNAL;
    pthread_mutex_lock(&m->mu);
    if (m->ncoll < MAX_COLLECTORS) {
        m->coll[m->ncoll++] = (collector){fn, cls};
        rc = CB_EOK;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

void metrics_uncollect(metrics_t *m, void (*fn)(void *cls), void *cls)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->ncoll; i++)
        if (m->coll[i].fn == fn && m->coll[i].cls == cls) {
            m->coll[i] = m->coll[--m->ncoll];
            break;
        }
    pthread_mutex_unlock(&m->mu);
}

/* ---- the page ---------------------------------------------------------- */

/* `{a="x",b="y"` of series s, without the closing brace; "" without
 * labels. */
static void put_labels(buf_writer *w, const metrics_family *f, size_t s)
{
    size_t idx[METRICS_MAX_LABELS];
    for (size_t i = f->nlabels; i-- > 0;) {
        idx[i] = s % f->nvalues[i];
        s /= f->nvalues[i];
    }
    for (size_t i = 0; i < f->nlabels; i++)
        buf_w_printf(w, "%c%s=\"%s\"", i == 0 ? '{' : ',', f->label_names[i], f->values[i][idx[i]]);
}

static void put_sample(buf_writer *w, const metrics_family *f, size_t s, int64_t v)
{
    buf_w_puts(w, f->name);
    put_labels(w, f, s);
    buf_w_puts(w, f->nlabels > 0 ? "} " : " ");
    buf_w_put_i64(w, v);
    buf_w_puts(w, "\n");
}

/* name_suffix{labels[,le="bound"]} */
static void put_hist_head(buf_writer *w, const metrics_family *f, size_t s, const char *suffix,
                          const char *le)
{
    buf_w_printf(w, "%s%s", f->name, suffix);
    put_labels(w, f, s);
    if (le != NULL)
        buf_w_printf(w, "%sle=\"%s\"", f->nlabels > 0 ? "," : "{", le);
    buf_w_puts(w, le != NULL || f->nlabels > 0 ? "} " : " ");
}

static void put_histogram(buf_writer *w, const metrics_family *f, size_t s,
                          const _Atomic int64_t *c)
{
    int64_t cum = 0;
    char le[32];
    for (size_t b = 0; b <= f->nbounds; b++) {
        cum += atomic_load_explicit(&c[b], memory_order_relaxed);
        if (b < f->nbounds)
            snprintf(le, sizeof(le), "%g", (double)f->bounds[b] / f->scale);
        put_hist_head(w, f, s, "_bucket", b < f->nbounds ? le : "+Inf");
        buf_w_put_i64(w, cum);
        buf_w_puts(w, "\n");
    }
    put_hist_head(w, f, s, "_sum", NULL);
    int64_t sum = atomic_load_explicit(&c[f->nbounds + 1], memory_order_relaxed);
    if (f->scale == 1)
        buf_w_put_i64(w, sum);
    else
        buf_w_printf(w, "%.9g", (double)sum / f->scale);
    buf_w_puts(w, "\n");
    put_hist_head(w, f, s, "_count", NULL);
    buf_w_put_i64(w, cum);
    buf_w_puts(w, "\n");
}

/* Is every cell of series s zero? */
static bool series_zero(const metrics_family *f, size_t s)
{
    for (size_t i = 0; i < f->stride; i++)
        if (atomic_load_explicit(&f->cells[s * f->stride + i], memory_order_relaxed) != 0)
            return false;
    return true;
}

static void put_family(buf_writer *w, const metrics_family *f)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    buf_w_printf(w, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, types[f->type]);
    for (size_t s = 0; s < f->nseries; s++) {
        if (f->sparse && series_zero(f, s))
            continue;
        if (f->type == METRICS_HISTOGRAM)
            put_histogram(w, f, s, &f->cells[s * f->stride]);
        else
            put_sample(w, f, s, atomic_load_explicit(&f->cells[s], memory_order_relaxed));
    }
}

cb_err metrics_render(metrics_t *m, buf_t *out)
{
    buf_writer w = buf_writer_on(out);
    if (m == NULL)
        return CB_EOK;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->ncoll; i++)
        m->coll[i].fn(m->coll[i].cls);
    for (const metrics_family *f = m->head; f != NULL && w.err == CB_EOK; f = f->next)
        put_family(&w, f);
    pthread_mutex_unlock(&m->mu);
    return w.err;
}
