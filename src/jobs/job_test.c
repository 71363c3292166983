/*
 * job_test.c — the test suite's job "crmblob.test.sleep": it sleeps
 * ParameterObject {"Seconds": "N"} (0..600, in steps of 50 ms, reporting
 * progress and polling Stop at each), then writes a one-line text output.
 * It lets the tests follow a job that runs as long as they need (Stop,
 * kill -9 of its server, claims by several servers) without a data set.
 *
 * Invariant: it exists only in a server started with CRMBLOB_TEST_JOBS=1
 * in its environment (main.c calls job_enable_test_jobs once, before any
 * thread): job_find never answers it otherwise, so no production server
 * can run it. Any user who may write (editor) may start it, so that the
 * tests see tasks of users who are not admins.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobs/job.h"

#define STEP_MS 50

static bool enabled;

void job_enable_test_jobs(void)
{
    enabled = true;
}

static job_status sleep_run(job_ctx *ctx, const json_t *params)
{
    json_t *v = json_object_get(params, "Seconds");
    const char *s = json_is_string(v) ? json_string_value(v) : "1";
    long secs = strtol(s, NULL, 10);
    if (secs < 0 || secs > 600) {
        job_set_result(ctx, "Seconds must be from 0 to 600");
        return JOB_FAILED;
    }
    long steps = secs * 1000 / STEP_MS;
    for (long i = 0; i < steps; i++) {
        if (job_cancelled(ctx))
            return JOB_CANCELLED;
        job_progress(ctx, (int)(i * 100 / steps), "sleeping");
        nanosleep(&(struct timespec){0, STEP_MS * 1000000L}, NULL);
    }
    fprintf(job_output(ctx), "slept %ld s\n", secs);
    job_set_output(ctx, "sleep.txt", "text/plain");
    job_set_result(ctx, "slept");
    job_set_response(ctx, "{\"Seconds\":\"ok\"}");
    return JOB_OK;
}

static const job_def job_test_sleep = {"crmblob.test.sleep", "Sleep (test suite only)",
                                       JOB_RIGHT_USER, sleep_run, false};

const job_def *job_test_find(const char *name)
{
    return enabled && name && strcmp(name, job_test_sleep.name) == 0 ? &job_test_sleep : NULL;
}
