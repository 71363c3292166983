/*
 * job_test.c — the test suite's jobs. "crmblob.test.sleep" sleeps
 * ParameterObject {"Seconds": "N"} (0..600, in steps of 50 ms, reporting
 * progress and polling Stop at each), then writes a one-line text output.
 * It lets the tests follow a job that runs as long as they need (Stop,
 * kill -9 of its server, claims by several servers) without a data set.
 * "crmblob.test.output" makes an output of {"Bytes": "N"} bytes at once
 * (a sparse file: zeros, but for the 8-byte big-endian offset written at
 * every 64 KiB), so that the tests store and download outputs of hundreds
 * of MiB, in parts, without a data set that large.
 *
 * Invariant: it exists only in a server started with CRMBLOB_TEST_JOBS=1
 * in its environment (main.c calls job_enable_test_jobs once, before any
 * thread): job_find never answers it otherwise, so no production server
 * can run it. Any user who may write (editor) may start it, so that the
 * tests see tasks of users who are not admins.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

#define MARK_EVERY 65536
#define BYTES_MAX ((long long)8 << 30)

/* The offset as 8 big-endian bytes at every MARK_EVERY of the output. */
static bool write_marks(int fd, long long n)
{
    for (long long off = 0; off + 8 <= n; off += MARK_EVERY) {
        unsigned char b[8];
        for (int i = 0; i < 8; i++)
            b[i] = (unsigned char)((uint64_t)off >> (56 - 8 * i));
        if (pwrite(fd, b, sizeof b, (off_t)off) != (ssize_t)sizeof b)
            return false;
    }
    return true;
}

static job_status output_run(job_ctx *ctx, const json_t *params)
{
    json_t *v = json_object_get(params, "Bytes");
    long long n = json_is_string(v) ? strtoll(json_string_value(v), NULL, 10) : -1;
    FILE *out = job_output(ctx);
    if (n < 0 || n > BYTES_MAX) {
        job_set_result(ctx, "Bytes must be from 0 to 8 GiB");
        return JOB_FAILED;
    }
    if (fflush(out) != 0 || ftruncate(fileno(out), (off_t)n) != 0 || !write_marks(fileno(out), n)) {
        job_set_result(ctx, "The output could not be written");
        return JOB_FAILED;
    }
    job_set_output(ctx, "output.bin", "application/octet-stream");
    job_set_result(ctx, "written");
    return JOB_OK;
}

static const job_def job_test_output = {
    "crmblob.test.output", "An output of N bytes (test suite only)", JOB_RIGHT_USER, output_run, false};

const job_def *job_test_find(const char *name)
{
    if (!enabled || name == NULL)
        return NULL;
    if (strcmp(name, job_test_sleep.name) == 0)
        return &job_test_sleep;
    return strcmp(name, job_test_output.name) == 0 ? &job_test_output : NULL;
}
