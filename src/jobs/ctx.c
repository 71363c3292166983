/*
 * ctx.c — what a running job may call (job.h): progress, the cancel flag,
 * its store, its output and its result texts.
 *
 * Invariant: every text is copied and bounded (JOB_TEXT_MAX, or the field's
 * size), so a job can never grow the runner's memory without bound.
 */
#include <stdlib.h>
#include <string.h>

#include "core/text.h"
#include "jobs/jobs_int.h"

void job_progress(job_ctx *ctx, int percent, const char *description)
{
    percent = percent < 0 ? 0 : percent > 100 ? 100 : percent;
    pthread_mutex_lock(&ctx->mu);
    ctx->percent = percent;
    if (description)
        snprintf(ctx->description, sizeof ctx->description, "%s", description);
    ctx->dirty = true;
    pthread_mutex_unlock(&ctx->mu);
}

bool job_cancelled(const job_ctx *ctx)
{
    return atomic_load(&((job_ctx *)ctx)->cancel);
}

store_t *job_store(job_ctx *ctx)
{
    return ctx->store;
}

int64_t job_owner(const job_ctx *ctx)
{
    return ctx->owner;
}

int64_t job_task_id(const job_ctx *ctx)
{
    return ctx->task_id;
}

int32_t job_input_blob(const job_ctx *ctx)
{
    return ctx->input_blob;
}

cb_err job_import_picture(job_ctx *ctx, arena_t *a, const bulk_picture *p, model_blob *out,
                          store_err *se, char *why, size_t cap)
{
    if (ctx->put == NULL) {
        snprintf(why, cap, "this server stores no pictures for jobs");
        *se = STORE_OK;
        return CB_EUNAVAILABLE;
    }
    return ctx->put(ctx->put_ctx, a, p, out, se, why, cap);
}

FILE *job_output(job_ctx *ctx)
{
    return ctx->out;
}

void job_set_output(job_ctx *ctx, const char *file_name, const char *mime_type)
{
    const char *slash = file_name ? strrchr(file_name, '/') : NULL;
    pthread_mutex_lock(&ctx->mu);
    snprintf(ctx->file_name, sizeof ctx->file_name, "%s",
             slash       ? slash + 1
             : file_name ? file_name
                         : "");
    snprintf(ctx->mime, sizeof ctx->mime, "%s", mime_type ? mime_type : "application/octet-stream");
    pthread_mutex_unlock(&ctx->mu);
}

void job_set_result(job_ctx *ctx, const char *text)
{
    pthread_mutex_lock(&ctx->mu);
    snprintf(ctx->result, sizeof ctx->result, "%s", text ? text : "");
    ctx->dirty = true;
    pthread_mutex_unlock(&ctx->mu);
}

void job_set_response(job_ctx *ctx, const char *text)
{
    char *copy = text ? strndup(text, JOB_TEXT_MAX) : NULL;
    pthread_mutex_lock(&ctx->mu);
    free(ctx->response);
    ctx->response = copy;
    pthread_mutex_unlock(&ctx->mu);
}
