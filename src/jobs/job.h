/*
 * job.h — the contract between crmblob's batch-task runner (src/jobs/runner.c)
 * and the jobs it runs (export, import, check, rekey: one file each below
 * src/jobs, reusing the shared code the CLI also calls).
 *
 * A job is a job_def in the table of src/jobs/registry.c. The runner calls
 * def->run on a thread of its own (never a request's), with a job_ctx that
 * lives for that call only. The job:
 *   - reports progress with job_progress (cheap; call it as often as you
 *     like: the runner writes it to the task's row at most once a second);
 *   - polls job_cancelled between units of work (at least every ~200 ms of
 *     work) and, once it answers true, stops soon and returns JOB_CANCELLED;
 *   - writes its output (a tar archive, a report...) to job_output(ctx), a
 *     FILE* on a temporary file the runner owns (do not fclose it), and names
 *     it with job_set_output (FileName and MIME type of the BLOB record the
 *     runner makes of it once run returns JOB_OK; no output = no call);
 *   - sets a short human result with job_set_result (BatchTaskInfo.Result,
 *     e.g. "1234 pictures, 56 MB"; also on failure: why) and, if it has one,
 *     a machine answer with job_set_response (BatchTaskInfo.Response, text,
 *     e.g. a JSON object).
 * Invariants: a job touches nothing but what ctx gives (the store handle,
 * the image module, the output); it never exits the process nor logs a
 * secret; params is the task's ParameterObject (a JSON object, never NULL:
 * {} when none was given) and belongs to the runner.
 */
#ifndef CRMBLOB_JOBS_JOB_H
#define CRMBLOB_JOBS_JOB_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "bulk/bulk.h"
#include "store/store.h"

typedef struct job_ctx job_ctx;

typedef enum {
    JOB_OK = 0,    /* State Succeeded; the output (if any) becomes a BLOB */
    JOB_FAILED,    /* State Failed; job_set_result says why */
    JOB_CANCELLED, /* State Cancelled: job_cancelled answered true */
} job_status;

/* Who may start a job (viewers and editors never start one; every job of
 * issue 21 is JOB_RIGHT_ADMIN). */
typedef enum { JOB_RIGHT_ADMIN = 0, JOB_RIGHT_USER = 1 } job_right;

typedef struct {
    const char *name;        /* BatchTaskInfo.Name that picks it, e.g. "crmblob.export" */
    const char *description; /* BatchTaskInfo.Description of a new task */
    job_right right;
    job_status (*run)(job_ctx *ctx, const json_t *params);
    /* The job reads an archive uploaded for it (POST
     * /api/v1/BatchTask/Archive): the API binds ParameterObject's BlobId
     * to the task when it starts (store_task.input_blob), so the record
     * lives as long as the task and goes with it. */
    bool input;
} job_def;

/* Percent 0..100 (clamped) and a short description (copied; NULL keeps the
 * last one) of where the job is. */
void job_progress(job_ctx *ctx, int percent, const char *description);
/* Has Stop been asked for this task (through any server)? */
bool job_cancelled(const job_ctx *ctx);
/* The server's store (shared, thread-safe like every store call). */
store_t *job_store(job_ctx *ctx);
/* The associate id of the user who started the task. */
int64_t job_owner(const job_ctx *ctx);
/* The task's id (BatchTaskInfo.Id), for names and logs. */
int64_t job_task_id(const job_ctx *ctx);
/* The record bound to the task as its input when it was added
 * (store_task.input_blob; 0: none): what a def->input job reads, whatever
 * its params say now. */
int32_t job_input_blob(const job_ctx *ctx);
/* One picture stored through the server's upload path (PUT Image's
 * limits, validation by the image worker, store and product thumbnail),
 * as bulk_put_fn says; handed to the runner by the layer above
 * (jobs_config.put_picture). CB_EUNAVAILABLE when the server gave none. */
cb_err job_import_picture(job_ctx *ctx, arena_t *a, const bulk_picture *p, model_blob *out,
                          store_err *se, char *why, size_t cap);
/* The output file, opened "w+b", positioned at 0, owned by the runner. */
FILE *job_output(job_ctx *ctx);
/* Name (BatchTaskInfo.FileName; no '/') and MIME type of the output. */
void job_set_output(job_ctx *ctx, const char *file_name, const char *mime_type);
/* BatchTaskInfo.Result and .Response (copied, truncated at 4000 bytes). */
void job_set_result(job_ctx *ctx, const char *text);
void job_set_response(job_ctx *ctx, const char *text);

/* The registry (src/jobs/registry.c): NULL-terminated. */
extern const job_def *const job_registry[];
/* The job named name (case-sensitive), or NULL. */
const job_def *job_find(const char *name);

/* The test suite's jobs (job_test.c): job_find knows them only after this
 * was called, once, before any thread (main.c: CRMBLOB_TEST_JOBS=1). */
void job_enable_test_jobs(void);
const job_def *job_test_find(const char *name);

#endif
