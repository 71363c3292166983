/*
 * job_export.c — the batch job "crmblob.export": every picture (or those
 * of one entity kind: ParameterObject {"Entity": "person"}) as a tar
 * archive, its last member manifest.jsonl, one line per BLOB record
 * exported (bulk_export: the same code as `crmblob export`).
 *
 * Invariants: the archive is written front to back into the runner's
 * output file, the manifest into an unnamed temporary file meanwhile (so
 * nothing grows with the data set in memory); a stopped or failed export
 * leaves the output empty (cut back to 0 bytes), and the runner keeps no
 * output of it.
 */
#include <string.h>
#include <unistd.h>

#include "bulk/bulk.h"
#include "jobs/job.h"

typedef struct {
    job_ctx *ctx;
    int64_t total, done;
    char first[256]; /* the first problem, for the result */
} export_run;

static void on_start(void *c, const char *what, int64_t total)
{
    export_run *x = c;
    (void)what;
    x->total = total;
    job_progress(x->ctx, 0, "exporting pictures");
}

static void on_step(void *c, int64_t items, int64_t bytes)
{
    export_run *x = c;
    char d[96];
    (void)bytes;
    x->done += items;
    if (x->total > 0)
        snprintf(d, sizeof(d), "%lld of %lld BLOB records", (long long)x->done,
                 (long long)x->total);
    else
        snprintf(d, sizeof(d), "%lld BLOB records", (long long)x->done);
    job_progress(x->ctx, x->total > 0 ? (int)(x->done * 99 / x->total) : 0, d);
}

static void on_problem(void *c, const char *line)
{
    export_run *x = c;
    if (x->first[0] == '\0')
        snprintf(x->first, sizeof(x->first), "%s", line);
}

static bool on_cancelled(void *c)
{
    export_run *x = c;
    return job_cancelled(x->ctx);
}

/* The kind ParameterObject's Entity names: 0 and *kind (-1: every one). */
static int kind_of(const json_t *params, int *kind)
{
    const char *e = json_string_value(json_object_get(params, "Entity"));
    *kind = -1;
    if (e == NULL || e[0] == '\0')
        return json_object_get(params, "Entity") == NULL || e != NULL ? 0 : -1;
    *kind = model_kind_from_name(e, strlen(e));
    return *kind >= 0 ? 0 : -1;
}

/* The archive: bulk_export's members, then the manifest. */
static bulk_rc write_archive(export_run *x, store_t *st, int kind, int fd, FILE *manifest,
                             bulk_export_stats *s)
{
    bulk_hooks h = {on_start, on_step, on_problem, NULL, on_cancelled, x};
    bulk_tar_sink ts;
    bulk_sink sink;
    bulk_export_opts eo = {.kind = kind, .manifest = manifest};
    bulk_tar_sink_init(&ts, fd, &sink);
    bulk_rc rc = bulk_export(st, &eo, &sink, &h, s);
    if (rc == BULK_OK || rc == BULK_PROBLEMS) {
        if (bulk_tar_finish(&ts, "manifest.jsonl", fileno(manifest)) != CB_EOK) {
            on_problem(x, "export: cannot write the archive");
            rc = BULK_FAILED;
        }
    }
    return rc;
}

static job_status export_job(job_ctx *ctx, const json_t *params)
{
    export_run x = {.ctx = ctx};
    bulk_export_stats s = {0};
    int kind;
    char res[512];
    FILE *out = job_output(ctx), *manifest = NULL;
    if (kind_of(params, &kind) != 0) {
        job_set_result(ctx, "Entity must be one of person, contact, product, project");
        return JOB_FAILED;
    }
    if ((manifest = tmpfile()) == NULL || fflush(out) != 0) {
        job_set_result(ctx, "cannot make a temporary file for the manifest");
        if (manifest != NULL)
            fclose(manifest);
        return JOB_FAILED;
    }
    bulk_rc rc = write_archive(&x, job_store(ctx), kind, fileno(out), manifest, &s);
    fclose(manifest);
    if (rc == BULK_CANCELLED || rc == BULK_FAILED) {
        /* no half archive left behind (the runner keeps no output either) */
        if (ftruncate(fileno(out), 0) != 0 || lseek(fileno(out), 0, SEEK_SET) != 0)
            on_problem(&x, "export: cannot empty the output");
        snprintf(res, sizeof(res), "%s after %lld BLOB records%s%s",
                 rc == BULK_CANCELLED ? "Stopped" : "Failed", (long long)x.done,
                 x.first[0] ? ": " : "", x.first);
        job_set_result(ctx, res);
        return rc == BULK_CANCELLED ? JOB_CANCELLED : JOB_FAILED;
    }
    snprintf(res, sizeof(res), "%lld pictures (%.1f MiB), %lld BLOB records%s%lld problems%s%s",
             (long long)s.pictures, (double)s.bytes / (1024.0 * 1024.0), (long long)s.records, ", ",
             (long long)s.problems, x.first[0] ? "; first: " : "", x.first);
    job_set_result(ctx, res);
    snprintf(
        res, sizeof(res), "{\"Pictures\":%lld,\"Bytes\":%lld,\"Records\":%lld,\"Problems\":%lld}",
        (long long)s.pictures, (long long)s.bytes, (long long)s.records, (long long)s.problems);
    job_set_response(ctx, res);
    job_progress(ctx, 100, "done");
    job_set_output(ctx, "export.tar", "application/x-tar");
    return JOB_OK;
}

const job_def job_export = {"crmblob.export",
                            "Export every picture (or one entity kind's) as a tar archive "
                            "with a JSON-lines manifest",
                            JOB_RIGHT_ADMIN, export_job, false};
