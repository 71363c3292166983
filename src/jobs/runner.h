/*
 * runner.h — the batch-task runner of a server: claims New tasks from the
 * store and runs their jobs (job.h) on threads of its own, at most
 * max_running at once, at a lower CPU priority than request serving.
 *
 * Invariants: a task runs on exactly one server (store_task_claim); while
 * it runs, the runner renews its lease and writes its progress every
 * JOBS_BEAT_MS and passes the task's stop flag (set through any server) to
 * the job; a task whose server is gone (lease ended) is marked Failed by
 * whichever runner notices first; a finished task's output is a linked
 * BLOB record, deleted with the task (CleanupBatchTask, or keep_ms after it
 * finished).
 */
#ifndef CRMBLOB_JOBS_RUNNER_H
#define CRMBLOB_JOBS_RUNNER_H

#include <stdint.h>

#include "bulk/bulk.h"
#include "core/err.h"
#include "store/store.h"

#define JOBS_BEAT_MS 1000
#define JOBS_LEASE_MS 5000 /* a task's lease: 5 beats; after it, its server counts as gone */

typedef struct {
    int max_running; /* jobs at once on this server (>= 1); 0: no runner */
    int64_t keep_ms; /* finished tasks and their outputs are deleted this long after */
    /* The server's upload path (PUT Image's: api_bulk_put on its api_t),
     * filled by the layer above (main, src/api) so that the import job
     * stores pictures as an upload would without src/jobs depending on
     * src/api. NULL: job_import_picture answers CB_EUNAVAILABLE. */
    bulk_put_fn put_picture;
    void *put_ctx;
    /* An output is stored in parts of at most this many bytes; 0:
     * STORE_PART_MAX (1 GiB). Smaller only in the test suite's servers
     * (CRMBLOB_TEST_PART_BYTES with CRMBLOB_TEST_JOBS=1), so that a test
     * shows parts without writing gigabytes. */
    int64_t part_bytes;
} jobs_config;

typedef struct jobs_runner jobs_runner;

/* Starts the runner on s (which must outlive it). CB_ENOMEM/CB_EINTERNAL. */
cb_err jobs_runner_start(store_t *s, const jobs_config *cfg, jobs_runner **out);
/* Asks running jobs to stop, waits for them (their tasks end Failed,
 * "Stopped: the server shut down") and frees r. NULL: nothing. */
void jobs_runner_stop(jobs_runner *r);

#endif
