/*
 * store_task.c — the recipes of batch tasks (store.h, "batch tasks"), above
 * the backend's task primitives.
 *
 * Invariants: a task is claimed by exactly one server (next New task, then
 * a conditional write that only a New row matches: a second claimant gets
 * NOMATCH and tries the next); only the server that claimed a task writes
 * its progress and its end (every such write is conditional on server and
 * State Started, so a task reaped or deleted meanwhile is left alone); a
 * task's output parts are linked (never swept as unlinked) from the moment
 * its task names its first one, and are deleted with its task and its input
 * (linked when the task took it), in one transaction.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/text.h"
#include "store/store_backend.h"
#include "store/store_int.h"

#define FILES_AT_ONCE 64 /* files of a task read by one file_list */
#define CLAIM_TRIES 8 /* New tasks another server took first, before giving up for now */

static const struct store_be_ops *ops(store_tx *tx)
{
    return tx->be->ops;
}

static store_err nomatch_absent(store_err rc)
{
    return rc == STORE_NOMATCH ? STORE_ABSENT : rc;
}

struct task_call {
    store_task *t;
    const store_task *ct;
    const store_task_query *q;
    arena_t *a;
    int64_t id, now, lease, *n, **ids;
    const char *server, *progress;
    int percent, max;
    bool *stop;
    store_task **list;
    size_t *count;
};

/* Binds input record blob_id to task (and links it: never swept): ABSENT
 * when it is no input written whole, CONFLICT when a task has it. */
static store_err bind_input(store_tx *tx, int32_t blob_id, int64_t task)
{
    store_file_row f;
    store_err rc = ops(tx)->file_bind(tx, blob_id, task);
    if (rc == STORE_NOMATCH) {
        rc = ops(tx)->file_read(tx, blob_id, &f);
        if (rc != STORE_OK)
            return rc;
        return f.kind == STORE_FILE_INPUT && f.done && f.task != 0 ? STORE_CONFLICT : STORE_ABSENT;
    }
    if (rc == STORE_OK)
        rc = ops(tx)->blob_claim(tx, blob_id);
    return rc == STORE_NOMATCH ? STORE_ABSENT : rc;
}

static store_err add_run(store_tx *tx, void *ctx)
{
    struct task_call *x = ctx;
    store_err rc = ops(tx)->task_insert(tx, x->t, &x->t->id);
    if (rc == STORE_OK && x->t->input_blob > 0)
        rc = bind_input(tx, x->t->input_blob, x->t->id);
    return rc;
}

store_err store_task_add(store_t *s, store_task *t)
{
    assert(t != NULL && t->name != NULL);
    t->state = STORE_TASK_NEW;
    t->created_ms = t->created_ms ? t->created_ms : text_now_ms();
    return store_run(s, STORE_TX_WRITE, add_run, &(struct task_call){.t = t});
}

static store_err get_run(store_tx *tx, void *ctx)
{
    struct task_call *x = ctx;
    return ops(tx)->task_read(tx, x->a, x->id, x->t);
}

store_err store_task_get(store_t *s, arena_t *a, int64_t id, store_task *out)
{
    return store_run(s, STORE_TX_READ1, get_run, &(struct task_call){.t = out, .a = a, .id = id});
}

static store_err list_run(store_tx *tx, void *ctx)
{
    struct task_call *x = ctx;
    return ops(tx)->task_list(tx, x->a, x->q, x->list, x->count);
}

store_err store_task_list(store_t *s, arena_t *a, const store_task_query *q, store_task **out,
                          size_t *n)
{
    *out = NULL;
    *n = 0;
    return store_run(s, STORE_TX_READ1, list_run,
                     &(struct task_call){.a = a, .q = q, .list = out, .count = n});
}

/* One claim: the next New task, taken if still New. NOMATCH: another
 * server took it between the read and the write. */
static store_err claim_run(store_tx *tx, void *ctx)
{
    struct task_call *x = ctx;
    store_err rc = ops(tx)->task_next_new(tx, &x->id);
    if (rc == STORE_OK)
        rc = ops(tx)->task_claim(tx, x->id, x->server, x->now, x->lease);
    if (rc == STORE_OK)
        rc = ops(tx)->task_read(tx, x->a, x->id, x->t);
    return rc == STORE_NOMATCH ? STORE_CONFLICT : rc;
}

/* Is there a New task? A plain read, so that an idle runner's polls
 * never take the writer (SQLite) or a row lock (PostgreSQL). */
static store_err any_new_run(store_tx *tx, void *ctx)
{
    struct task_call *x = ctx;
    store_task_query q = {NULL, STORE_TASK_NEW, -1};
    return ops(tx)->task_list(tx, x->a, &q, x->list, x->count);
}

store_err store_task_claim(store_t *s, arena_t *a, const char *server, int64_t now_ms,
                           int64_t lease_ms, store_task *out)
{
    store_task *news = NULL;
    size_t n = 0;
    store_err rc = store_run(s, STORE_TX_READ1, any_new_run,
                             &(struct task_call){.a = a, .list = &news, .count = &n});
    if (rc != STORE_OK || n == 0)
        return rc == STORE_OK ? STORE_ABSENT : rc;
    struct task_call x = {.a = a, .t = out, .server = server, .now = now_ms, .lease = lease_ms};
    rc = STORE_ABSENT;
    for (int i = 0; i < CLAIM_TRIES; i++)
        if ((rc = store_run(s, STORE_TX_WRITE, claim_run, &x)) != STORE_CONFLICT)
            break;
    return rc == STORE_CONFLICT ? STORE_ABSENT : rc;
}

static store_err beat_run(store_tx *tx, void *ctx)
{
    struct task_call *x = ctx;
    return nomatch_absent(
        ops(tx)->task_beat(tx, x->id, x->server, x->lease, x->percent, x->progress, x->stop));
}

store_err store_task_beat(store_t *s, int64_t id, const char *server, int64_t lease_ms, int percent,
                          const char *progress, bool *stop)
{
    struct task_call x = {.id = id,
                          .server = server,
                          .lease = lease_ms,
                          .percent = percent,
                          .progress = progress ? progress : "",
                          .stop = stop};
    return store_run(s, STORE_TX_WRITE, beat_run, &x);
}

/* The end, and the output record linked (so the sweep of unlinked records
 * never takes it). ABSENT: the task is not this run's any more (the caller
 * deletes the output it made). */
static store_err finish_run(store_tx *tx, void *ctx)
{
    struct task_call *x = ctx;
    int n = 0;
    store_file_row *parts = NULL;
    store_err rc = ops(tx)->task_finish(tx, x->ct, x->server, x->now);
    if (rc == STORE_OK && x->ct->output_blob > 0 &&
        (parts = malloc(STORE_FILE_PARTS_MAX * sizeof(*parts))) == NULL)
        rc = STORE_INTERNAL;
    if (parts != NULL)
        rc = ops(tx)->file_list(tx, x->ct->id, STORE_FILE_OUTPUT, parts, STORE_FILE_PARTS_MAX, &n);
    for (int i = 0; rc == STORE_OK && i < n; i++)
        rc = ops(tx)->blob_claim(tx, parts[i].blob_id);
    free(parts);
    return nomatch_absent(rc);
}

store_err store_task_finish(store_t *s, const store_task *t, const char *server, int64_t now_ms)
{
    struct task_call x = {.ct = t, .server = server, .now = now_ms};
    return store_run(s, STORE_TX_WRITE, finish_run, &x);
}

static store_err stop_run(store_tx *tx, void *ctx)
{
    struct task_call *x = ctx;
    store_err rc = ops(tx)->task_fail_new(tx, x->id, "Stopped before it started", x->now);
    if (rc == STORE_NOMATCH)
        rc = ops(tx)->task_set_stop(tx, x->id);
    return nomatch_absent(rc);
}

store_err store_task_stop(store_t *s, int64_t id, int64_t now_ms)
{
    return store_run(s, STORE_TX_WRITE, stop_run, &(struct task_call){.id = id, .now = now_ms});
}

/* The files a delete let go of (their pieces are deleted afterwards). */
typedef struct {
    arena_t *a;
    int64_t id;
    int32_t *gone;
    size_t n, cap;
} delete_call;

static store_err gone_add(delete_call *d, int32_t blob_id)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 16;
        int32_t *g = realloc(d->gone, cap * sizeof(*g));
        if (g == NULL)
            return STORE_INTERNAL;
        d->gone = g;
        d->cap = cap;
    }
    d->gone[d->n++] = blob_id;
    return STORE_OK;
}

/* Lets go of every file of kind of task d->id: unbound, unusable, and
 * unlinked since ever (the sweep would take it should this process die
 * before store_file_purge does). */
static store_err release_files(store_tx *tx, delete_call *d, int kind)
{
    store_file_row f[FILES_AT_ONCE];
    int n = FILES_AT_ONCE;
    store_err rc = STORE_OK;
    while (rc == STORE_OK && n > 0) {
        rc = ops(tx)->file_list(tx, d->id, kind, f, FILES_AT_ONCE, &n);
        for (int i = 0; rc == STORE_OK && i < n; i++)
            if ((rc = ops(tx)->file_release(tx, f[i].blob_id)) == STORE_OK &&
                (rc = ops(tx)->blob_unlink(tx, f[i].blob_id, 0)) == STORE_OK)
                rc = gone_add(d, f[i].blob_id);
    }
    return rc == STORE_NOMATCH ? STORE_INTERNAL : rc; /* read just now */
}

static store_err delete_run(store_tx *tx, void *ctx)
{
    delete_call *d = ctx;
    store_task t;
    d->n = 0; /* a run again starts over */
    store_err rc = ops(tx)->task_read(tx, d->a, d->id, &t);
    if (rc == STORE_OK)
        rc = release_files(tx, d, STORE_FILE_OUTPUT);
    if (rc == STORE_OK)
        rc = release_files(tx, d, STORE_FILE_INPUT);
    if (rc == STORE_OK)
        rc = nomatch_absent(ops(tx)->task_delete(tx, d->id));
    if (rc == STORE_OK && t.output_blob > 0 && store_not_file(tx, t.output_blob) == STORE_OK)
        rc = ops(tx)->blob_delete(tx, t.output_blob); /* an output of before parts */
    return rc;
}

/* The task goes in one transaction, its files' records are unusable from
 * then on; their bytes go after it, a few pieces per transaction. */
store_err store_task_delete(store_t *s, int64_t id)
{
    delete_call d = {.a = arena_create(), .id = id};
    if (d.a == NULL)
        return STORE_INTERNAL;
    store_err rc = store_run(s, STORE_TX_WRITE, delete_run, &d), prc = STORE_OK;
    for (size_t i = 0; rc == STORE_OK && prc == STORE_OK && i < d.n; i++)
        prc = store_file_purge(s, d.gone[i]);
    if (prc != STORE_OK) /* the task is gone all the same */
        log_warn("store: task %lld deleted, its files are left to the sweep (%s)", (long long)id,
                 store_err_name(prc));
    arena_destroy(d.a);
    free(d.gone);
    return rc;
}

static store_err reap_run(store_tx *tx, void *ctx)
{
    struct task_call *x = ctx;
    return ops(tx)->task_reap(tx, x->now, "Interrupted: the server running it stopped", x->n);
}

/* Is a Started task's lease over? A plain read first, as for claims. */
static store_err any_lapsed_run(store_tx *tx, void *ctx)
{
    struct task_call *x = ctx;
    store_task_query q = {NULL, STORE_TASK_STARTED, -1};
    store_task *ts = NULL;
    size_t n = 0;
    store_err rc = ops(tx)->task_list(tx, x->a, &q, &ts, &n);
    *x->n = 0;
    for (size_t i = 0; rc == STORE_OK && i < n; i++)
        *x->n += ts[i].lease_ms < x->now;
    return rc;
}

store_err store_task_reap(store_t *s, int64_t now_ms, int64_t *n)
{
    *n = 0;
    arena_t *a = arena_create();
    if (a == NULL)
        return STORE_INTERNAL;
    int64_t lapsed = 0;
    store_err rc = store_run(s, STORE_TX_READ1, any_lapsed_run,
                             &(struct task_call){.a = a, .now = now_ms, .n = &lapsed});
    arena_destroy(a);
    if (rc != STORE_OK || lapsed == 0)
        return rc;
    return store_run(s, STORE_TX_WRITE, reap_run, &(struct task_call){.now = now_ms, .n = n});
}

static store_err expired_run(store_tx *tx, void *ctx)
{
    struct task_call *x = ctx;
    return ops(tx)->task_expired(tx, x->a, x->now, x->max, x->ids, x->count);
}

store_err store_task_expired(store_t *s, arena_t *a, int64_t cutoff_ms, int max, int64_t **ids,
                             size_t *n)
{
    *ids = NULL;
    *n = 0;
    struct task_call x = {.a = a, .now = cutoff_ms, .max = max, .ids = ids, .count = n};
    return store_run(s, STORE_TX_READ1, expired_run, &x);
}

/* ---- UpdateBatchTask ------------------------------------------------------
 * The row is read, the edit decided on it, and written on the condition
 * that the row is still as read: a claim (New -> Started), a stop or
 * another server's update in between makes the write match nothing, and
 * the recipe runs again on the row as it has become (STORE_RETRY). */

struct update_call {
    int64_t id;
    const store_task_edit *e;
    arena_t *a;
    store_task *out;
};

static store_err update_run(store_tx *tx, void *ctx)
{
    struct update_call *x = ctx;
    store_task was;
    store_err rc = ops(tx)->task_read(tx, x->a, x->id, &was);
    if (rc != STORE_OK)
        return nomatch_absent(rc);
    if (x->e->params != NULL && was.state != STORE_TASK_NEW) {
        *x->out = was;
        return STORE_CONFLICT;
    }
    rc = ops(tx)->task_update(tx, &was, x->e->description ? x->e->description : was.description,
                              x->e->params ? x->e->params : was.params);
    if (rc == STORE_NOMATCH) /* changed since read: read and decide again */
        return STORE_RETRY;
    if (rc == STORE_OK)
        rc = nomatch_absent(ops(tx)->task_read(tx, x->a, x->id, x->out));
    return rc;
}

store_err store_task_update(store_t *s, arena_t *a, int64_t id, const store_task_edit *e,
                            store_task *out)
{
    assert(a != NULL && e != NULL && out != NULL);
    struct update_call x = {.id = id, .e = e, .a = a, .out = out};
    return store_run(s, STORE_TX_WRITE, update_run, &x);
}

/* ---- a page of tasks ------------------------------------------------------ */

static const struct {
    const char *column;
    bool text;
} task_fields[STORE_TF_COUNT] = {
    [STORE_TF_ID] = {"id", false},
    [STORE_TF_NAME] = {"name", true},
    [STORE_TF_DESCRIPTION] = {"description", true},
    [STORE_TF_ASSOCIATE] = {"associate_id", false},
    [STORE_TF_STATE] = {"state", false},
    [STORE_TF_PERCENT] = {"percent", false},
    [STORE_TF_PROGRESS] = {"progress", true},
    [STORE_TF_RESULT] = {"result", true},
    [STORE_TF_RESPONSE] = {"response", true},
    [STORE_TF_FILE_NAME] = {"file_name", true},
    [STORE_TF_CREATED] = {"created_ms", false},
    [STORE_TF_STARTED] = {"coalesce(started_ms, 0)", false},
    [STORE_TF_START_COUNT] = {"start_count", false},
};

const char *store_task_column(store_task_field f)
{
    assert(f >= 0 && f < STORE_TF_COUNT);
    return task_fields[f].column;
}

bool store_task_field_is_text(store_task_field f)
{
    return f >= 0 && f < STORE_TF_COUNT && task_fields[f].text;
}

static bool page_valid(const store_task_page_query *q)
{
    if (q->top < 1 || q->top > STORE_LIST_MAX || q->skip < 0 || q->nkeys < 0 ||
        q->nkeys > STORE_LIST_KEYS || q->nterms < 0 || q->nterms > STORE_TASK_TERMS)
        return false;
    for (int i = 0; i < q->nkeys; i++)
        if (q->keys[i].field < 0 || q->keys[i].field >= STORE_TF_COUNT)
            return false;
    for (int i = 0; i < q->nterms; i++) {
        const store_task_term *t = &q->terms[i];
        bool text = store_task_field_is_text(t->field);
        if (t->field < 0 || t->field >= STORE_TF_COUNT || t->op < STORE_CMP_EQ ||
            t->op > STORE_CMP_BEGINS ||
            (text && (t->text == NULL || strlen(t->text) > MODEL_STRING_MAX)) ||
            (!text && t->op == STORE_CMP_BEGINS))
            return false;
    }
    return true;
}

struct page_call {
    store_task_page_query q; /* keys ending with the id */
    arena_t *a;
    store_task *rows; /* top + 1 of them */
    int n;
};

static store_err page_run(store_tx *tx, void *ctx)
{
    struct page_call *x = ctx;
    x->n = 0;
    return ops(tx)->task_page(tx, x->a, &x->q, x->q.top + 1, x->rows, &x->n);
}

store_err store_task_page(store_t *s, arena_t *a, const store_task_page_query *q, store_task **out,
                          int *n, bool *more)
{
    assert(a != NULL && q != NULL && out != NULL && n != NULL && more != NULL);
    *out = NULL, *n = 0, *more = false;
    if (!page_valid(q))
        return STORE_INVALID;
    struct page_call x = {.q = *q, .a = a};
    bool has_id = false;
    for (int i = 0; i < q->nkeys; i++)
        has_id = has_id || q->keys[i].field == STORE_TF_ID;
    if (!has_id) /* a total order, so that pages never overlap */
        x.q.keys[x.q.nkeys++] =
            (store_list_key){STORE_TF_ID, q->nkeys > 0 && q->keys[q->nkeys - 1].desc};
    x.rows = arena_alloc(a, (size_t)(q->top + 1) * sizeof(*x.rows));
    store_err rc = store_run(s, STORE_TX_READ1, page_run, &x);
    if (rc == STORE_OK) {
        *more = x.n > q->top;
        *n = *more ? q->top : x.n;
        *out = x.rows;
    }
    return rc;
}
