/*
 * jobs_int.h — the job_ctx the runner (runner.c) fills and ctx.c reads;
 * private to src/jobs.
 *
 * Invariant: progress, result and response are written by the job's thread
 * and read by the runner's heartbeat under mu; cancel is set by the runner
 * (from the task's stop flag) and read by the job without a lock.
 */
#ifndef CRMBLOB_JOBS_INT_H
#define CRMBLOB_JOBS_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "jobs/job.h"

#define JOB_TEXT_MAX 4000

struct job_ctx {
    store_t *store;
    int64_t task_id, owner;
    int32_t input_blob; /* store_task.input_blob as claimed */
    FILE *out;
    bulk_put_fn put; /* jobs_config.put_picture */
    void *put_ctx;
    atomic_bool cancel;
    pthread_mutex_t mu;
    int percent;
    bool dirty; /* progress changed since the runner last wrote it */
    char description[256];
    char file_name[256], mime[128];
    char result[JOB_TEXT_MAX + 1];
    char *response; /* malloc'd or NULL */
};

#endif
