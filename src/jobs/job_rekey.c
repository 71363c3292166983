/*
 * job_rekey.c — the batch job "crmblob.rekey": every picture and variant
 * re-encrypted under a new key while the server serves (bulk_rekey: the
 * same code as `crmblob rekey`).
 *
 * The key never travels through the API (a ParameterObject is kept in the
 * task's row and shown in BatchTaskInfo): ParameterObject {"NewKeyFile":
 * "/etc/crmblob/new.key"} names a key file the server can read (made with
 * `crmblob keygen`).
 *
 * The server's own codec: before the first picture is rewritten, the store
 * is given a codec of the new key that also decrypts with the current one
 * (codec_create_after, store_set_codec): uploads from then on get the new
 * key, and every picture still decodes, rewritten or not, also after a
 * stop. Once all are rewritten the new key's fingerprint is recorded; the
 * server's configuration must then name the new key file before its next
 * start (it refuses the old key then, saying so). Other servers on the
 * same database know only their own key: see README "Batch tasks".
 */
#include <string.h>

#include "bulk/bulk.h"
#include "jobs/job.h"

typedef struct {
    job_ctx *ctx;
    int64_t done;
} rekey_run;

static void on_step(void *c, int64_t items, int64_t bytes)
{
    rekey_run *x = c;
    char d[96];
    (void)bytes;
    x->done += items;
    snprintf(d, sizeof(d), "%lld pictures and variants rewritten", (long long)x->done);
    job_progress(x->ctx, 0, d); /* no total: the walk does not count first */
}

static void on_problem(void *c, const char *line)
{
    rekey_run *x = c;
    job_set_result(x->ctx, line);
}

static bool on_cancelled(void *c)
{
    rekey_run *x = c;
    return job_cancelled(x->ctx);
}

/* The new key's codecs (new_, new_z) and the serving codec (new key,
 * current one too). 0, or -1 with the result set. */
static int make_codecs(job_ctx *ctx, const char *file, const codec_t *cur, codec_t **new_,
                       codec_t **new_z, codec_t **serving)
{
    bool z = cur != NULL && codec_compresses(cur);
    codec_config nc = {.compress = z, .key_file = file}, zc = {.compress = true, .key_file = file};
    cb_err e = codec_create(&nc, new_);
    if (e == CB_EOK)
        e = codec_create(&zc, new_z);
    if (e == CB_EOK)
        e = cur != NULL ? codec_create_after(&nc, cur, serving) : codec_create(&nc, serving);
    if (e == CB_EOK && !codec_encrypts(*new_))
        e = CB_EBADREQ;
    if (e == CB_EOK)
        return 0;
    job_set_result(ctx, "Failed: NewKeyFile is not a key file the server can read (make one "
                        "with crmblob keygen)");
    return -1;
}

/* Another rekey Started (on any server: the task table is shared): 0
 * none, else its id (-1: the tasks could not be read). Two rekeys started
 * together both see the other and both refuse: never both run. */
static int64_t other_rekey(job_ctx *ctx)
{
    arena_t *a = arena_create();
    store_task *t = NULL;
    size_t n = 0;
    store_task_query q = {.name = "crmblob.rekey", .state = STORE_TASK_STARTED, .associate = -1};
    if (a == NULL || store_task_list(job_store(ctx), a, &q, &t, &n) != STORE_OK) {
        arena_destroy(a);
        return -1;
    }
    int64_t other = 0;
    for (size_t i = 0; i < n && other == 0; i++)
        if (t[i].id != job_task_id(ctx))
            other = t[i].id;
    arena_destroy(a);
    return other;
}

static job_status finish(job_ctx *ctx, bulk_rc rc, int64_t n, const char *file)
{
    char res[512];
    if (rc == BULK_CANCELLED) {
        snprintf(res, sizeof(res),
                 "Stopped after %lld pictures: this server reads both keys; run the rekey "
                 "again to finish before it restarts",
                 (long long)n);
        job_set_result(ctx, res);
        return JOB_CANCELLED;
    }
    if (rc != BULK_OK)
        return JOB_FAILED; /* the result says why (on_problem) */
    snprintf(res, sizeof(res),
             "%lld pictures rewritten; start the server with --encryption-key-file %s from "
             "now on",
             (long long)n, file);
    job_set_result(ctx, res);
    snprintf(res, sizeof(res), "{\"Pictures\":%lld}", (long long)n);
    job_set_response(ctx, res);
    job_progress(ctx, 100, "done");
    return JOB_OK;
}

static job_status rekey_job(job_ctx *ctx, const json_t *params)
{
    rekey_run x = {.ctx = ctx};
    bulk_hooks h = {NULL, on_step, on_problem, NULL, on_cancelled, &x};
    store_t *st = job_store(ctx);
    const codec_t *cur = store_codec(st);
    codec_t *new_ = NULL, *new_z = NULL, *serving = NULL;
    const char *file = json_string_value(json_object_get(params, "NewKeyFile"));
    int64_t n = 0;
    job_status rc = JOB_FAILED;
    if (file == NULL || file[0] != '/') {
        job_set_result(ctx, "Failed: give NewKeyFile, the absolute path of a key file the "
                            "server can read");
        return JOB_FAILED;
    }
    int64_t other = other_rekey(ctx);
    if (other != 0) {
        char res[128];
        snprintf(res, sizeof(res), "Failed: another rekey runs (task %lld)", (long long)other);
        job_set_result(ctx, other < 0 ? "Failed: the tasks cannot be read" : res);
        return JOB_FAILED;
    }
    if (make_codecs(ctx, file, cur, &new_, &new_z, &serving) != 0)
        goto out;
    if (store_set_codec(st, serving) != STORE_OK) {
        job_set_result(ctx, "Failed: too many key changes since the server started: restart it");
        goto out;
    }
    serving = NULL; /* the store's now */
    bulk_rekey_codecs c = {cur, new_, new_z};
    bulk_rc br = bulk_rekey(st, &c, &h, &n);
    rc = finish(ctx, br, n, file);
out:
    codec_destroy(serving);
    codec_destroy(new_);
    codec_destroy(new_z);
    return rc;
}

const job_def job_rekey = {"crmblob.rekey", "Re-encrypt every picture under a new key (NewKeyFile)",
                           JOB_RIGHT_ADMIN, rekey_job, false};
