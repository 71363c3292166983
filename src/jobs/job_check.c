/*
 * job_check.c — the batch job "crmblob.check": the integrity check of the
 * server's data set (bulk_check: the same passes as `crmblob check`), its
 * report as the output, text/plain, one problem a line ("BLOB 12: ...").
 * ParameterObject {"Quick": "true"}: the database's quick check.
 *
 * Invariants: the data set is read through a second handle of the same
 * database (store_copy_open of store_where: held as a server holds it,
 * only read) and served through the server's own store, with its codec,
 * so the pictures are checked with the key the server reads them with.
 * A clean data set gives an empty report (Result says so); a stopped check
 * keeps no report.
 */
#include <string.h>

#include "bulk/bulk.h"
#include "jobs/job.h"

typedef struct {
    job_ctx *ctx;
    int64_t total, done;
    bool write_failed;
} check_run;

static void on_start(void *c, const char *what, int64_t total)
{
    check_run *x = c;
    (void)what;
    x->total = total;
}

static void on_step(void *c, int64_t items, int64_t bytes)
{
    check_run *x = c;
    char d[96];
    (void)bytes;
    x->done += items;
    snprintf(d, sizeof(d), "checked %lld of %lld BLOB records", (long long)x->done,
             (long long)x->total);
    job_progress(x->ctx, x->total > 0 ? (int)(x->done * 99 / x->total) : 0, d);
}

static void on_problem(void *c, const char *line)
{
    check_run *x = c;
    FILE *out = job_output(x->ctx);
    if (fputs(line, out) == EOF || fputc('\n', out) == EOF)
        x->write_failed = true;
}

static bool on_cancelled(void *c)
{
    check_run *x = c;
    return job_cancelled(x->ctx);
}

static job_status finish(job_ctx *ctx, bulk_rc rc, int64_t problems, bool write_failed)
{
    char res[128];
    if (rc == BULK_CANCELLED || write_failed || fflush(job_output(ctx)) != 0) {
        job_set_result(ctx, rc == BULK_CANCELLED ? "Stopped" : "Failed: cannot write the report");
        return rc == BULK_CANCELLED ? JOB_CANCELLED : JOB_FAILED;
    }
    if (problems == 0)
        snprintf(res, sizeof(res), "no problem found");
    else
        snprintf(res, sizeof(res), "%lld problem(s) found", (long long)problems);
    job_set_result(ctx, res);
    snprintf(res, sizeof(res), "{\"Problems\":%lld}", (long long)problems);
    job_set_response(ctx, res);
    job_progress(ctx, 100, "done");
    job_set_output(ctx, "check.txt", "text/plain");
    return JOB_OK;
}

static job_status check_job(job_ctx *ctx, const json_t *params)
{
    check_run x = {.ctx = ctx};
    bulk_hooks h = {on_start, on_step, on_problem, NULL, on_cancelled, &x};
    store_t *st = job_store(ctx);
    store_copy_end *e = NULL;
    codec_t *plain = NULL; /* a store without a codec keeps pictures as they are */
    const codec_t *codec = store_codec(st);
    int64_t problems = 0;
    const char *quick = json_string_value(json_object_get(params, "Quick"));
    if (codec == NULL && codec_create(&(codec_config){0}, &plain) != CB_EOK) {
        job_set_result(ctx, "Failed: out of memory");
        return JOB_FAILED;
    }
    if (codec == NULL)
        codec = plain;
    if (store_copy_open(store_where(st), false, &e) != STORE_OK) {
        codec_destroy(plain);
        job_set_result(ctx, "Failed: cannot open the database for the check");
        return JOB_FAILED;
    }
    job_progress(ctx, 0, "checking the database");
    bulk_rc rc =
        bulk_check(e, st, codec, quick != NULL && strcmp(quick, "true") == 0, &h, &problems);
    store_copy_close(e);
    codec_destroy(plain);
    return finish(ctx, rc, problems, x.write_failed);
}

const job_def job_check = {"crmblob.check",
                           "Check the data set: the report lists one problem a line",
                           JOB_RIGHT_ADMIN, check_job, false};
