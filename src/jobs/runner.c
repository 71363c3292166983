/*
 * runner.c — the batch-task runner (runner.h): one scheduler thread that
 * claims, watches and cleans, and one thread per running job.
 *
 * Invariants: the scheduler alone writes a running task's lease and
 * progress (store_task_beat) and reaps tasks of servers gone; a job's
 * thread alone ends its task (store_task_finish, after storing the output
 * in parts bound to the task, store_task_output_put); a slot is reused only after its thread was joined.
 * Job threads run at nice JOBS_NICE, so that request threads get the CPU
 * first when both want it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/arena.h"
#include "core/log.h"
#include "core/text.h"
#include "jobs/jobs_int.h"
#include "jobs/runner.h"

#define POLL_MS 250      /* how often the scheduler looks for New tasks */
#define CLEANUP_MS 10000 /* how often it looks for finished tasks to delete */
#define CLEANUP_BATCH 64 /* tasks deleted per look */
#define JOBS_NICE 10
#define MAX_SLOTS 64

typedef struct slot {
    struct jobs_runner *r;
    bool used;
    atomic_bool done;
    pthread_t th;
    arena_t *a;      /* the task's texts */
    store_task task; /* as claimed */
    job_ctx ctx;
    int64_t last_beat;
} slot;

struct jobs_runner {
    store_t *s;
    jobs_config cfg;
    char server[96]; /* this process's claim id: host, pid and a random part */
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool quit;
    int64_t last_cleanup;
    slot slots[MAX_SLOTS];
};

/* ---- a job's thread ----------------------------------------------------- */

/* The output file as the task's output, in parts (store_task_output_put):
 * the BlobId of its first; 0 when there is none (no job_set_output) or it
 * could not be stored (logged, and why in the task's result). */
static int32_t store_output(slot *sl)
{
    job_ctx *c = &sl->ctx;
    if (c->file_name[0] == '\0' || fflush(c->out) != 0)
        return 0;
    off_t size = lseek(fileno(c->out), 0, SEEK_END);
    int32_t first = 0;
    store_content content = {.fd = fileno(c->out), .size = size, .mime_type = c->mime};
    store_err rc = size < 0 ? STORE_INTERNAL
                            : store_task_output_put(sl->r->s, sl->task.id, &content,
                                                    sl->r->cfg.part_bytes, &first);
    if (rc != STORE_OK) {
        log_error("batch: task %lld: its output could not be stored (%s)", (long long)sl->task.id,
                  store_err_name(rc));
        snprintf(c->result, sizeof c->result, "The output (%lld bytes) could not be stored%s",
                 (long long)size, rc == STORE_NO_SPACE ? ": the disk is full" : "");
        return 0;
    }
    return first;
}

/* The task's end as the job left it. */
static job_status finish(slot *sl, job_status st)
{
    job_ctx *c = &sl->ctx;
    store_task t = sl->task;
    t.output_blob = st == JOB_OK ? store_output(sl) : 0;
    if (st == JOB_OK && c->file_name[0] != '\0' && t.output_blob == 0)
        st = JOB_FAILED; /* store_output said why */
    pthread_mutex_lock(&c->mu);
    t.state = st == JOB_OK ? STORE_TASK_SUCCEEDED : STORE_TASK_FAILED;
    t.percent = st == JOB_OK ? 100 : c->percent;
    t.progress = arena_strdup(sl->a, c->description);
    if (st == JOB_CANCELLED)
        t.result = arena_printf(sl->a, "Stopped%s%s", c->result[0] ? ": " : "", c->result);
    else
        t.result = arena_strdup(sl->a, c->result);
    t.response = arena_strdup(sl->a, c->response ? c->response : "");
    t.file_name = arena_strdup(sl->a, t.output_blob ? c->file_name : "");
    pthread_mutex_unlock(&c->mu);
    /* when the task was deleted meanwhile its parts went with it; when it
     * was reaped they stay unlinked, swept after the grace period or
     * deleted with the task, whichever comes first */
    store_err rc = store_task_finish(sl->r->s, &t, sl->r->server, text_now_ms());
    if (rc != STORE_OK)
        log_warn("batch: task %lld ended, but is no longer this server's (%s)", (long long)t.id,
                 store_err_name(rc));
    return st;
}

/* Runs the claimed job; a job not known here, or parameters that are not
 * a JSON object, fail the task. */
static job_status run_job(slot *sl)
{
    const job_def *def = job_find(sl->task.name);
    json_t *params = json_loads(sl->task.params, 0, NULL);
    job_status st = JOB_FAILED;
    if (def == NULL)
        job_set_result(&sl->ctx, "No such job on this server");
    else if (!json_is_object(params))
        job_set_result(&sl->ctx, "ParameterObject is not an object");
    else if (sl->ctx.out == NULL)
        job_set_result(&sl->ctx, "No room for the output");
    else
        st = def->run(&sl->ctx, params);
    json_decref(params);
    return st;
}

static void *job_thread(void *arg)
{
    slot *sl = arg;
    /* Linux: the nice value is per thread */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), JOBS_NICE) != 0)
        log_debug("batch: nice %d refused (%s)", JOBS_NICE, strerror(errno));
    log_info("batch: task %lld (%s) started", (long long)sl->task.id, sl->task.name);
    job_status st = finish(sl, run_job(sl));
    log_info("batch: task %lld (%s) ended: %s", (long long)sl->task.id, sl->task.name,
             st == JOB_OK          ? "Succeeded"
             : st == JOB_CANCELLED ? "stopped"
                                   : "Failed");
    atomic_store(&sl->done, true);
    return NULL;
}

/* ---- the scheduler ------------------------------------------------------ */

static void slot_free(slot *sl)
{
    pthread_join(sl->th, NULL);
    if (sl->ctx.out)
        fclose(sl->ctx.out);
    free(sl->ctx.response);
    pthread_mutex_destroy(&sl->ctx.mu);
    arena_destroy(sl->a);
    sl->used = false;
}

static bool slot_start(jobs_runner *r, slot *sl, arena_t *a, const store_task *t)
{
    memset(sl, 0, sizeof *sl);
    sl->r = r;
    sl->a = a;
    sl->task = *t;
    sl->ctx = (job_ctx){.store = r->s, .task_id = t->id, .owner = t->associate_id,
                        .input_blob = t->input_blob,
                        .put = r->cfg.put_picture, .put_ctx = r->cfg.put_ctx};
    pthread_mutex_init(&sl->ctx.mu, NULL);
    sl->ctx.out = tmpfile();
    sl->last_beat = text_now_ms();
    sl->used = true;
    if (pthread_create(&sl->th, NULL, job_thread, sl) == 0)
        return true;
    log_error("batch: no thread for task %lld", (long long)t->id);
    job_set_result(&sl->ctx, "No thread to run it");
    finish(sl, JOB_FAILED); /* on this thread: nothing else runs it */
    if (sl->ctx.out)
        fclose(sl->ctx.out);
    pthread_mutex_destroy(&sl->ctx.mu);
    arena_destroy(a);
    sl->used = false;
    return false;
}

/* Claims New tasks while a slot is free. */
static void claim(jobs_runner *r)
{
    for (int i = 0; i < r->cfg.max_running && i < MAX_SLOTS; i++) {
        if (r->slots[i].used)
            continue;
        arena_t *a = arena_create();
        store_task t;
        int64_t now = text_now_ms();
        store_err rc =
            a ? store_task_claim(r->s, a, r->server, now, now + JOBS_LEASE_MS, &t) : STORE_INTERNAL;
        if (rc != STORE_OK) {
            arena_destroy(a);
            return;
        }
        slot_start(r, &r->slots[i], a, &t);
    }
}

/* The heartbeat of a running slot: lease, progress, stop flag. */
static void beat(jobs_runner *r, slot *sl, int64_t now)
{
    char desc[sizeof sl->ctx.description];
    pthread_mutex_lock(&sl->ctx.mu);
    int percent = sl->ctx.percent;
    memcpy(desc, sl->ctx.description, sizeof desc);
    pthread_mutex_unlock(&sl->ctx.mu);
    bool stop = false;
    store_err rc =
        store_task_beat(r->s, sl->task.id, r->server, now + JOBS_LEASE_MS, percent, desc, &stop);
    if (rc == STORE_ABSENT || stop)
        atomic_store(&sl->ctx.cancel, true); /* deleted, reaped, or asked to stop */
    if (rc == STORE_OK || rc == STORE_ABSENT)
        sl->last_beat = now;
}

static void watch(jobs_runner *r)
{
    int64_t now = text_now_ms();
    for (int i = 0; i < MAX_SLOTS; i++) {
        slot *sl = &r->slots[i];
        if (!sl->used)
            continue;
        if (atomic_load(&sl->done))
            slot_free(sl);
        else if (now - sl->last_beat >= JOBS_BEAT_MS)
            beat(r, sl, now);
    }
    int64_t n = 0;
    if (store_task_reap(r->s, now, &n) == STORE_OK && n > 0)
        log_warn("batch: %lld task(s) of a server that stopped marked Failed", (long long)n);
}

/* Deletes tasks that finished more than keep_ms ago, with their outputs. */
static void cleanup(jobs_runner *r)
{
    int64_t now = text_now_ms();
    if (now - r->last_cleanup < CLEANUP_MS || r->cfg.keep_ms <= 0)
        return;
    r->last_cleanup = now;
    arena_t *a = arena_create();
    int64_t *ids = NULL;
    size_t n = 0;
    if (a && store_task_expired(r->s, a, now - r->cfg.keep_ms, CLEANUP_BATCH, &ids, &n) == STORE_OK)
        for (size_t i = 0; i < n; i++)
            store_task_delete(r->s, ids[i]);
    if (n > 0)
        log_info("batch: %zu finished task(s) deleted after their keep time", n);
    arena_destroy(a);
}

static void *scheduler(void *arg)
{
    jobs_runner *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->quit) {
        pthread_mutex_unlock(&r->mu);
        watch(r);
        claim(r);
        cleanup(r);
        pthread_mutex_lock(&r->mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += POLL_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        if (!r->quit)
            pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

cb_err jobs_runner_start(store_t *s, const jobs_config *cfg, jobs_runner **out)
{
    *out = NULL;
    if (cfg->max_running <= 0)
        return CB_EOK;
    jobs_runner *r = calloc(1, sizeof *r);
    if (r == NULL)
        return CB_EINTERNAL;
    r->s = s;
    r->cfg = *cfg;
    if (r->cfg.max_running > MAX_SLOTS)
        r->cfg.max_running = MAX_SLOTS;
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    snprintf(r->server, sizeof r->server, "%s:%ld:%08x", host, (long)getpid(),
             randombytes_random());
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->th, NULL, scheduler, r) != 0) {
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free(r);
        return CB_EINTERNAL;
    }
    log_info("batch: runner %s, %d job(s) at once", r->server, r->cfg.max_running);
    *out = r;
    return CB_EOK;
}

void jobs_runner_stop(jobs_runner *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->quit = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->th, NULL);
    for (int i = 0; i < MAX_SLOTS; i++)
        if (r->slots[i].used) {
            job_set_result(&r->slots[i].ctx, "the server shut down");
            atomic_store(&r->slots[i].ctx.cancel, true);
        }
    for (int i = 0; i < MAX_SLOTS; i++)
        if (r->slots[i].used)
            slot_free(&r->slots[i]);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
