/*
 * job_import.c — the batch job "crmblob.import": an export's tar archive
 * into this data set (bulk_import: the same code as `crmblob import`),
 * each picture stored through the server's upload path
 * (job_import_picture: PUT Image's limits, validation and store).
 *
 * ParameterObject: {"BlobId": "N"} — an archive uploaded for it (POST
 * /api/v1/BatchTask/Archive; the API binds it to the task, so it goes with
 * the task; the job reads the archive bound, job_input_blob, and fails
 * when BlobId names another: UpdateBatchTask refuses such an edit) — or
 * {"TaskId": "N"}, a finished task's output on this data set
 * (an export's); "Entity": a kind, for an archive of {id}.{ext} files
 * without a manifest; "Threads": pictures stored at a time (1..8, default 2).
 *
 * Invariants: the archive is read front to back through a store_reader (a
 * piece at a time; unpacked to a spool folder under the server's spool
 * directory, removed at the end); progress per picture; a stop ends the run
 * between pictures (those stored stay: a rerun skips them); every problem
 * is a line of the output import.txt, the first few also in Response, the
 * first in Result; a bad archive (truncated, a member named with '..')
 * imports nothing and fails naming why.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulk/bulk.h"
#include "core/text.h"
#include "jobs/job.h"

#define RESPONSE_PROBLEMS 20 /* problems listed in Response (all in import.txt) */
#define MAX_THREADS 8

typedef struct {
    job_ctx *ctx;
    int64_t total, done;
    char first[512];  /* the first problem, for the result */
    json_t *problems; /* the first RESPONSE_PROBLEMS */
    store_reader *r;
    store_err read_err;
    int64_t size, read, shown; /* the archive's bytes: all, read, at the last progress */
} import_run;

#define READ_SHARE 10 /* percent of the progress bar for reading the archive */

static void on_start(void *c, const char *what, int64_t total)
{
    import_run *x = c;
    (void)what;
    x->total = total;
    job_progress(x->ctx, READ_SHARE, "importing pictures");
}

static void on_step(void *c, int64_t items, int64_t bytes)
{
    import_run *x = c;
    char d[96];
    (void)bytes;
    x->done += items;
    snprintf(d, sizeof(d), "%lld of %lld pictures", (long long)x->done, (long long)x->total);
    job_progress(
        x->ctx, READ_SHARE + (x->total > 0 ? (int)(x->done * (99 - READ_SHARE) / x->total) : 0), d);
}

static void on_problem(void *c, const char *line)
{
    import_run *x = c;
    FILE *out = job_output(x->ctx);
    fprintf(out, "%s\n", line);
    if (x->first[0] == '\0')
        snprintf(x->first, sizeof(x->first), "%s", line);
    if (json_array_size(x->problems) < RESPONSE_PROBLEMS)
        json_array_append_new(x->problems, json_string(line));
}

static void on_note(void *c, const char *line)
{
    import_run *x = c;
    fprintf(job_output(x->ctx), "note: %s\n", line);
}

static bool on_cancelled(void *c)
{
    import_run *x = c;
    return job_cancelled(x->ctx);
}

static int read_archive(void *c, void *buf, size_t n, size_t *got)
{
    import_run *x = c;
    char d[96];
    x->read_err = store_reader_read(x->r, buf, n, got);
    x->read += (int64_t)*got;
    if (x->read - x->shown >= (1 << 20) || (*got == 0 && x->read > x->shown)) {
        x->shown = x->read;
        snprintf(d, sizeof(d), "reading the archive: %.1f MiB", (double)x->read / (1 << 20));
        job_progress(x->ctx, x->size > 0 ? (int)(x->read * READ_SHARE / x->size) : 0, d);
    }
    return x->read_err == STORE_OK ? 0 : -1;
}

static cb_err put(void *c, arena_t *a, const bulk_picture *p, model_blob *out, store_err *se,
                  char *why, size_t cap)
{
    return job_import_picture(c, a, p, out, se, why, cap);
}

/* A positive id given as a string of digits or a number; 0: absent, -1: bad. */
static int64_t param_id(const json_t *params, const char *name)
{
    json_t *v = json_object_get(params, name);
    uint64_t u = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_integer(v))
        return json_integer_value(v) > 0 ? json_integer_value(v) : -1;
    if (!json_is_string(v) || !text_parse_u64(json_string_value(v), json_string_length(v), &u) ||
        u > INT64_MAX)
        return -1;
    return u > 0 ? (int64_t)u : -1;
}

/* The options of params: 0, or -1 with the result set. */
static int read_params(job_ctx *ctx, const json_t *params, int64_t *blob, int64_t *task,
                       bulk_import_opts *o)
{
    const char *e = json_string_value(json_object_get(params, "Entity"));
    json_t *th = json_object_get(params, "Threads");
    int64_t threads = 2;
    uint64_t u = 0;
    *blob = param_id(params, "BlobId");
    *task = param_id(params, "TaskId");
    o->entity = e != NULL && e[0] ? model_kind_from_name(e, strlen(e)) : -1;
    if (th != NULL && json_is_string(th))
        threads = text_parse_u64(json_string_value(th), json_string_length(th), &u) && u <= 64
                      ? (int64_t)u
                      : -1;
    else if (th != NULL)
        threads = json_is_integer(th) ? json_integer_value(th) : -1;
    o->threads = (unsigned)threads;
    if (*blob < 0 || *task < 0 || (*blob > 0) == (*task > 0))
        job_set_result(ctx, "ParameterObject needs BlobId (an archive uploaded to "
                            "/api/v1/BatchTask/Archive) or TaskId (a finished export task)");
    else if (*blob != job_input_blob(ctx))
        job_set_result(ctx, "BlobId is not the archive bound to this task when it was added");
    else if (e != NULL && e[0] && o->entity < 0)
        job_set_result(ctx, "Entity must be one of person, contact, product, project");
    else if (threads < 1 || threads > MAX_THREADS)
        job_set_result(ctx, "Threads must be 1 to 8");
    else
        return 0;
    return -1;
}

/* The reader of the archive: 0, or -1 with the result set. */
static int open_archive(import_run *x, int64_t blob, int64_t task)
{
    store_t *st = job_store(x->ctx);
    model_blob rec = {0};
    char res[160];
    arena_t *a = arena_create();
    store_err e = a == NULL ? STORE_INTERNAL
                  : blob > 0 && blob <= INT32_MAX
                      ? store_blob_reader_open(st, a, (int32_t)blob, &rec, &x->r)
                  : task > 0 ? store_task_output_open(st, task, &x->size, &x->r)
                             : STORE_ABSENT;
    if (blob > 0)
        x->size = rec.original_size;
    arena_destroy(a);
    if (e == STORE_OK)
        return 0;
    if (e == STORE_ABSENT && blob > 0)
        snprintf(res, sizeof(res), "There is no archive BLOB %lld", (long long)blob);
    else if (e == STORE_ABSENT)
        snprintf(res, sizeof(res), "Task %lld has no output", (long long)task);
    else
        snprintf(res, sizeof(res), "The archive cannot be read: %s", store_err_name(e));
    job_set_result(x->ctx, res);
    return -1;
}

static void set_response(import_run *x, const bulk_import_stats *s)
{
    json_t *o = json_pack("{sIsIsIsIsIsIsIsO}", "Pictures", (json_int_t)s->pictures, "Imported",
                          (json_int_t)s->imported, "Skipped", (json_int_t)s->skipped, "Created",
                          (json_int_t)s->created, "Library", (json_int_t)s->library, "LeftOut",
                          (json_int_t)s->left_out, "ProblemCount", (json_int_t)s->problems,
                          "Problems", x->problems);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    /* too long for Response (4000 bytes): the counts only, import.txt has all */
    if (text != NULL && strlen(text) > 4000) {
        json_object_del(o, "Problems");
        free(text);
        text = json_dumps(o, JSON_COMPACT);
    }
    job_set_response(x->ctx, text);
    free(text);
    json_decref(o);
}

static job_status finish(import_run *x, bulk_rc rc, const bulk_import_stats *s)
{
    char res[1024];
    const char *how = rc == BULK_CANCELLED ? "Stopped after"
                      : rc == BULK_FAILED  ? "Failed after"
                                           : "Done:";
    if (rc == BULK_FAILED && x->read_err != STORE_OK && x->read_err != STORE_ABSENT)
        snprintf(x->first, sizeof(x->first), "the archive cannot be read (%s)",
                 store_err_name(x->read_err));
    else if (rc == BULK_FAILED && x->read_err == STORE_ABSENT)
        snprintf(x->first, sizeof(x->first), "the archive was deleted meanwhile");
    snprintf(res, sizeof(res),
             "%s %lld of %lld pictures: imported %lld, skipped %lld already there, %lld into "
             "the library, created %lld entities; %lld problems%s%s",
             how, (long long)x->done, (long long)s->pictures, (long long)s->imported,
             (long long)s->skipped, (long long)s->library, (long long)s->created,
             (long long)s->problems, x->first[0] ? "; first: " : "", x->first);
    job_set_result(x->ctx, res);
    set_response(x, s);
    if (rc == BULK_CANCELLED)
        return JOB_CANCELLED;
    if (rc == BULK_FAILED)
        return JOB_FAILED;
    job_progress(x->ctx, 100, "done");
    job_set_output(x->ctx, "import.txt", "text/plain");
    return JOB_OK;
}

static job_status import_job(job_ctx *ctx, const json_t *params)
{
    import_run x = {.ctx = ctx, .problems = json_array()};
    bulk_import_opts o = {
        .put = put, .put_ctx = ctx, .spool_dir = store_spool_hint(job_store(ctx))};
    bulk_hooks h = {on_start, on_step, on_problem, on_note, on_cancelled, &x};
    bulk_import_stats s = {0};
    int64_t blob, task;
    job_status st = JOB_FAILED;
    if (x.problems == NULL || read_params(ctx, params, &blob, &task, &o) != 0 ||
        open_archive(&x, blob, task) != 0)
        goto out;
    job_progress(ctx, 0, "reading the archive");
    bulk_import_source src = {.read = read_archive, .read_ctx = &x};
    st = finish(&x, bulk_import(job_store(ctx), &src, &o, &h, &s), &s);
out:
    store_reader_close(x.r);
    json_decref(x.problems);
    return st;
}

const job_def job_import = {"crmblob.import",
                            "Import an export's archive (pictures, their fields, the project "
                            "image library) through the upload path",
                            JOB_RIGHT_ADMIN, import_job, true};
