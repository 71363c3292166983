/*
 * img_remote.c — img.h as the server sees it: every call is handed to a
 * crmblob-img worker process (imgw.h). The server links no decoder at all,
 * so a hostile picture that crashes, hangs or bloats a decoder costs one
 * worker, never the server or its memory.
 *
 * IMG_WORKERS workers, each serving one call at a time, started on first
 * need (an idle server carries none) and kept for the next call. Two are
 * general; the third is the small lane: it answers, from the header, that
 * a picture of more than IMG_LANE_PIXELS is not for it (CB_ETOOLARGE), and
 * such a call then waits for a general worker. So pictures that may take
 * seconds (at most two at a time, which also bounds the workers' memory)
 * never keep a small one waiting for more than a header's read.
 *
 * Calls wait in two first-come-first-served queues (tickets): calls for
 * any worker, and calls sent back by the small lane, which take the next
 * general worker before any newer call. A call takes a general worker
 * when one is free, else the small one. At most IMG_GENERAL_WAIT_MAX calls
 * wait for a general worker; one more is answered CB_EUNAVAILABLE at once
 * (503, try again): a waiting call holds one of the server's offload
 * threads, which everybody's uploads need.
 *
 * Every call runs within the CPU limit (img_config.cpu_limit_s), enforced
 * by the worker itself: over it, the worker answers CB_EWORK and exits
 * (the picture is at fault: 400). A worker that dies, or does not answer
 * within call_timeout_s of wall-clock time, is killed and reaped; its call
 * fails with CB_EUNAVAILABLE (the picture is not known to be at fault:
 * 503, try again) and the next call starts a fresh worker. A worker found
 * dead before it got its call (killed while idle) is replaced and the call
 * sent again, once.
 *
 * GET /ready pings a worker (img_ping): a free one that runs, else it
 * starts one in a free slot and keeps it, as a call would, so a load
 * balancer probing every second costs one empty message per probe, not a
 * process. The first probe therefore gives an idle server its first
 * worker: readiness means a picture could be served now, which a worker
 * that cannot even be started would deny. A ping takes no ticket and
 * never waits: with every worker taken by a call, or calls waiting, the
 * workers are answering and the ping says so without asking them.
 *
 * Counted (img_config.metrics): calls by operation, failures by cause
 * (the picture's, or the worker's: none answered), workers started and
 * restarted (started in a slot whose worker had ended), the time of each
 * validation.
 *
 * Invariants: a slot with pid 0 has no process and no socket; a slot is
 * used by at most one thread at a time (busy, under mu); queue heads only
 * move forward, under mu, and every change is broadcast on cv.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/text.h"
#include "img/imgw.h"

extern char **environ;

#define IMG_GENERAL 2 /* workers for any picture */
#define IMG_WORKERS 3 /* the general ones and the small lane's */
#define IMG_SMALL (IMG_WORKERS - 1)
#define IMG_LANE_PIXELS 4000000 /* the small lane's pictures: 4 MP at most */
#define IMG_GENERAL_WAIT_MAX 1  /* calls that may wait for a general worker */
#define IMG_WALL_MARGIN_S 10    /* wall clock beyond twice the CPU limit */

typedef struct {
    pid_t pid;
    int sock;
    bool busy;
    bool ran; /* a worker was started in this slot before */
} worker;

/* The operations, as the metrics name them. */
enum { OP_VALIDATE, OP_VARIANT, OP_PLACEHOLDER, OPS };

/* A first-come-first-served queue of waiting calls. */
typedef struct {
    uint64_t next, head;
} queue;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    worker w[IMG_WORKERS];
    queue any, general;
    img_config cfg;
    int call_timeout_s;
    char path[PATH_MAX];
    char limit[24], threads[24], cache[24], cpu[24], lane[24]; /* the worker's options */
    metrics_family *m_jobs, *m_failures, *m_starts, *m_restarts, *m_validate;
} R = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void metrics_setup(metrics_t *m)
{
    static const char *const ops[OPS] = {"validate", "variant", "placeholder"};
    static const char *const causes[] = {"picture", "worker"};
    static const uint64_t us[] = {1000,   2500,   5000,    10000,   25000,   50000,  100000,
                                  250000, 500000, 1000000, 2500000, 5000000, 10000000};
    metrics_label op[2] = {{"op", ops, OPS}, {"cause", causes, 2}};
    R.m_jobs = metrics_register(
        m, &(metrics_def){.name = "crmblob_image_jobs_total",
                          .help = "Calls to the image workers, by operation.",
                          .labels = op, .nlabels = 1});
    R.m_failures = metrics_register(
        m, &(metrics_def){.name = "crmblob_image_job_failures_total",
                          .help = "Image worker calls that failed, by operation and cause "
                                  "(picture: refused or over its limits; worker: none could "
                                  "answer).",
                          .labels = op, .nlabels = 2});
    R.m_starts = metrics_register(m, &(metrics_def){.name = "crmblob_image_worker_starts_total",
                                                    .help = "Image worker processes started."});
    R.m_restarts = metrics_register(
        m, &(metrics_def){.name = "crmblob_image_worker_restarts_total",
                          .help = "Image workers started in place of one that had ended (killed, "
                                  "crashed, over a limit)."});
    R.m_validate = metrics_register(
        m, &(metrics_def){.name = "crmblob_image_validation_duration_seconds",
                          .help = "Time to validate an uploaded picture in a worker.",
                          .type = METRICS_HISTOGRAM, .bounds = us,
                          .nbounds = sizeof(us) / sizeof(us[0]), .scale = 1e6});
}

cb_err img_init(const img_config *cfg)
{
    img_config c = cfg != NULL ? *cfg : (img_config){0};
    if (c.pixel_limit < 0 || c.cache_mb < 0 || c.threads < 0 || c.cpu_limit_s < 0 ||
        c.worker == NULL)
        return CB_EINTERNAL;
    if (c.cpu_limit_s == 0)
        c.cpu_limit_s = IMG_DEFAULT_CPU_LIMIT_S;
    R.call_timeout_s = 2 * c.cpu_limit_s + IMG_WALL_MARGIN_S;
    if ((size_t)snprintf(R.path, sizeof(R.path), "%s", c.worker) >= sizeof(R.path) ||
        access(R.path, X_OK) != 0) {
        log_error("image worker %s is missing or not executable", c.worker);
        return CB_EINTERNAL;
    }
    c.worker = R.path;
    R.cfg = c;
    snprintf(R.limit, sizeof(R.limit), "%lld", (long long)c.pixel_limit);
    snprintf(R.threads, sizeof(R.threads), "%d", c.threads);
    snprintf(R.cache, sizeof(R.cache), "%d", c.cache_mb);
    snprintf(R.cpu, sizeof(R.cpu), "%d", c.cpu_limit_s);
    snprintf(R.lane, sizeof(R.lane), "%d", IMG_LANE_PIXELS);
    metrics_setup(c.metrics);
    return CB_EOK;
}

/* Ends a worker: closes its socket (it exits at end of file), then kills
 * it if asked, and reaps it. */
static void stop_worker(worker *w, bool kill_it)
{
    if (w->pid == 0)
        return;
    close(w->sock);
    if (kill_it)
        kill(w->pid, SIGKILL);
    int status = 0;
    while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (kill_it || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        log_warn("image worker %d ended (%s %d)", (int)w->pid,
                 WIFSIGNALED(status) ? "signal" : "exit",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    w->pid = 0;
    w->sock = -1;
}

void img_shutdown(void)
{
    pthread_mutex_lock(&R.mu);
    for (int i = 0; i < IMG_WORKERS; i++) {
        while (R.w[i].busy)
            pthread_cond_wait(&R.cv, &R.mu);
        stop_worker(&R.w[i], false);
    }
    pthread_mutex_unlock(&R.mu);
}

/* Starts crmblob-img with its end of a new socket pair on IMGW_FD and no
 * other descriptor of ours, signals unblocked; the small lane's with its
 * pixel bound. */
static cb_err start_worker(worker *w)
{
    bool small = w == &R.w[IMG_SMALL];
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        log_error("image worker: socketpair: %s", strerror(errno));
        return CB_EUNAVAILABLE;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, dflt;
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], IMGW_FD);
    posix_spawn_file_actions_addclosefrom_np(&fa, IMGW_FD + 1);
    posix_spawnattr_init(&at);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dflt);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    /* the small lane's bound ends the list early for the others */
    char *lane = small ? "--lane-pixels" : NULL;
    char *argv[] = {R.path,  "--pixel-limit", R.limit, "--threads", R.threads, "--cache-mb",
                    R.cache, "--cpu-limit",   R.cpu,   lane,        R.lane,    NULL};
    pid_t pid = 0;
    int rc = posix_spawn(&pid, R.path, &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(sv[1]);
    if (rc != 0) {
        log_error("image worker: cannot start %s: %s", R.path, strerror(rc));
        close(sv[0]);
        return CB_EUNAVAILABLE;
    }
    struct timeval tv = {.tv_sec = R.call_timeout_s};
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    w->pid = pid;
    w->sock = sv[0];
    metrics_add(R.m_starts, 0, 1);
    if (w->ran)
        metrics_add(R.m_restarts, 0, 1);
    w->ran = true;
    return CB_EOK;
}

/* A free worker for a call: a general one unless calls sent back by the
 * small lane wait for it (they come first), else the small one, unless
 * general_only. NULL when none may be taken. Under mu. */
static worker *pick(bool general_only)
{
    bool general_waits = R.general.next != R.general.head;
    for (int i = 0; i < IMG_GENERAL; i++)
        if (!R.w[i].busy && (general_only || !general_waits))
            return &R.w[i];
    if (!general_only && !R.w[IMG_SMALL].busy)
        return &R.w[IMG_SMALL];
    return NULL;
}

/* Waits its turn in its queue, then for a worker it may take; NULL when
 * too many calls wait for a general worker already. */
static worker *acquire(bool general_only)
{
    queue *q = general_only ? &R.general : &R.any;
    pthread_mutex_lock(&R.mu);
    if (general_only && q->next - q->head >= IMG_GENERAL_WAIT_MAX && pick(true) == NULL) {
        pthread_mutex_unlock(&R.mu);
        return NULL;
    }
    uint64_t ticket = q->next++;
    worker *w;
    while (ticket != q->head || (w = pick(general_only)) == NULL)
        pthread_cond_wait(&R.cv, &R.mu);
    w->busy = true;
    q->head++;
    pthread_cond_broadcast(&R.cv);
    pthread_mutex_unlock(&R.mu);
    return w;
}

static void release(worker *w)
{
    pthread_mutex_lock(&R.mu);
    w->busy = false;
    pthread_cond_broadcast(&R.cv);
    pthread_mutex_unlock(&R.mu);
}

/* Answers a call that no worker could finish: CB_EUNAVAILABLE, why. */
static int unavailable(imgw_resp *rs, const char *why)
{
    memset(rs, 0, sizeof(*rs));
    rs->err = CB_EUNAVAILABLE;
    snprintf(rs->reason, sizeof(rs->reason), "%s", why);
    return -1;
}

/* Sends rq with input descriptor in (or -1) to w and reads the answer into
 * rs, its output descriptor into *out_fd (or -1). 1: answered (a worker
 * that said it exits has been reaped); 0: the worker was dead before it
 * took the call (it has been reaped; the call may be sent again); -1: no
 * worker could be started, or it died or stalled on the call (it has been
 * stopped; rs says CB_EUNAVAILABLE and why). */
static int exchange(worker *w, const imgw_req *rq, int in, imgw_resp *rs, int *out_fd)
{
    *out_fd = -1;
    if (w->pid == 0 && start_worker(w) != CB_EOK)
        return unavailable(rs, "no image worker could be started");
    if (imgw_send(w->sock, rq, sizeof(*rq), in) != 0) {
        stop_worker(w, true);
        return 0;
    }
    int got = imgw_recv(w->sock, rs, sizeof(*rs), out_fd);
    if (got == 1 && (rs->out_len == 0) == (*out_fd < 0)) {
        rs->reason[sizeof(rs->reason) - 1] = '\0';
        if (rs->exiting) {
            log_warn("image worker %d: %s", (int)w->pid, rs->reason);
            stop_worker(w, false);
        }
        return 1;
    }
    bool timed_out = got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    if (*out_fd >= 0)
        close(*out_fd);
    *out_fd = -1;
    stop_worker(w, true);
    return unavailable(rs, timed_out ? "the image worker did not answer in time"
                                     : "the image worker stopped on this call");
}

/* Runs the call on a worker: sent on to a general worker when the small
 * lane says the picture is not for it, and sent again, once, when the
 * worker was found dead before it took it. 1 or -1 as exchange. */
static int run(const imgw_req *rq, int in, imgw_resp *rs, int *out_fd)
{
    bool general_only = false, resent = false;
    for (;;) {
        worker *w = acquire(general_only);
        if (w == NULL)
            return unavailable(rs, "the image workers are busy with large pictures");
        int got = exchange(w, rq, in, rs, out_fd);
        bool small = w == &R.w[IMG_SMALL];
        release(w);
        if (got == 0 && !resent) {
            resent = true;
            continue;
        }
        if (got == 0)
            return unavailable(rs, "the image worker stopped");
        if (got < 0 || !small || rs->err != CB_ETOOLARGE)
            return got;
        if (*out_fd >= 0)
            close(*out_fd);
        *out_fd = -1;
        general_only = true;
    }
}

/* ---- GET /ready ---- */

/* A free worker for a ping, without a ticket: one that runs rather than
 * an empty slot, and none while calls wait (they come first). Under mu. */
static worker *pick_for_ping(void)
{
    if (R.any.next != R.any.head || R.general.next != R.general.head)
        return NULL;
    for (int i = 0; i < IMG_WORKERS; i++)
        if (!R.w[i].busy && R.w[i].pid != 0)
            return &R.w[i];
    for (int i = 0; i < IMG_WORKERS; i++)
        if (!R.w[i].busy)
            return &R.w[i];
    return NULL;
}

/* Sends a ping to w (started when it has no process) and waits for its
 * answer; 1 answered, 0 dead before it took the ping (reaped), -1 it could
 * not be started or did not answer (stopped), with why. */
static int ping_one(worker *w, char *why, size_t cap)
{
    imgw_req rq = {.op = IMGW_PING};
    imgw_resp rs;
    int fd = -1;
    if (w->pid == 0 && start_worker(w) != CB_EOK) {
        snprintf(why, cap, "no image worker could be started (%s)", R.path);
        return -1;
    }
    if (imgw_send(w->sock, &rq, sizeof(rq), -1) != 0) {
        stop_worker(w, true);
        return 0;
    }
    struct pollfd p = {.fd = w->sock, .events = POLLIN};
    int ready = poll(&p, 1, IMG_PING_TIMEOUT_MS);
    int got = ready == 1 ? imgw_recv(w->sock, &rs, sizeof(rs), &fd) : -1;
    if (fd >= 0)
        close(fd);
    if (got == 1 && rs.err == CB_EOK)
        return 1;
    snprintf(why, cap, "%s", ready == 0  ? "the image worker did not answer in time"
                             : got == 0  ? "the image worker exited"
                                         : "the image worker answered wrongly");
    stop_worker(w, true);
    return -1;
}

cb_err img_ping(char *why, size_t why_cap)
{
    pthread_mutex_lock(&R.mu);
    worker *w = pick_for_ping();
    if (w != NULL)
        w->busy = true;
    pthread_mutex_unlock(&R.mu);
    if (w == NULL)
        return CB_EOK; /* every worker is taken by a call, or calls wait for one */
    int got = ping_one(w, why, why_cap);
    if (got == 0) /* killed while idle: a fresh one, as a call would get */
        got = ping_one(w, why, why_cap);
    if (got == 0)
        snprintf(why, why_cap, "the image worker exited");
    release(w);
    return got == 1 ? CB_EOK : CB_EUNAVAILABLE;
}

/* One call; on success *out (malloc'd) holds the output bytes when the
 * call has some. */
/* A call's outcome, counted. */
static cb_err counted(int op, cb_err e)
{
    metrics_add(R.m_jobs, (size_t)op, 1);
    if (e != CB_EOK)
        metrics_add(R.m_failures, (size_t)op * 2 + (e == CB_EUNAVAILABLE ? 1 : 0), 1);
    return e;
}

static cb_err call(const imgw_req *rq, int in, imgw_resp *rs, void **out, size_t *out_len)
{
    int out_fd = -1;
    memset(rs, 0, sizeof(*rs));
    if (run(rq, in, rs, &out_fd) < 0)
        return rs->err;
    if (out_fd >= 0) {
        void *bytes = out != NULL ? imgw_slurp(out_fd, (size_t)rs->out_len) : NULL;
        close(out_fd);
        if (bytes == NULL)
            return CB_EINTERNAL;
        *out = bytes;
        *out_len = (size_t)rs->out_len;
    }
    return (cb_err)rs->err;
}

static void copy_reason(const imgw_resp *rs, char *reason, size_t cap)
{
    if (reason != NULL && cap > 0)
        snprintf(reason, cap, "%s", rs->reason);
}

cb_err img_validate_fd(int fd, int64_t size, img_info *out, char *reason, size_t reason_cap)
{
    imgw_req rq = {.op = IMGW_VALIDATE, .size = size};
    imgw_resp rs;
    uint64_t t0 = text_monotonic_us();
    cb_err e = counted(OP_VALIDATE, call(&rq, fd, &rs, NULL, NULL));
    metrics_observe(R.m_validate, 0, text_monotonic_us() - t0);
    copy_reason(&rs, reason, reason_cap);
    if (e == CB_EOK && out != NULL)
        *out = rs.info;
    return e;
}

cb_err img_validate(const void *bytes, size_t len, img_info *out, char *reason, size_t reason_cap)
{
    int fd = imgw_memfd(bytes, len);
    if (fd < 0)
        return CB_EINTERNAL;
    cb_err e = img_validate_fd(fd, (int64_t)len, out, reason, reason_cap);
    close(fd);
    return e;
}

cb_err img_variant(const void *bytes, size_t len, int w, int h, img_type out_type, void **out,
                   size_t *out_len, char *reason, size_t reason_cap)
{
    imgw_req rq = {.op = IMGW_VARIANT, .w = w, .h = h, .type = out_type, .size = (int64_t)len};
    imgw_resp rs;
    int fd = imgw_memfd(bytes, len);
    if (fd < 0)
        return CB_EINTERNAL;
    cb_err e = counted(OP_VARIANT, call(&rq, fd, &rs, out, out_len));
    close(fd);
    copy_reason(&rs, reason, reason_cap);
    return e;
}

cb_err img_placeholder_render(img_blank kind, int w, int h, img_type type, void **out,
                              size_t *out_len)
{
    imgw_req rq = {.op = IMGW_PLACEHOLDER, .w = w, .h = h, .type = type, .blank = kind};
    imgw_resp rs;
    return counted(OP_PLACEHOLDER, call(&rq, -1, &rs, out, out_len));
}
