/*
 * img_remote.c — img.h as the server sees it: every call is handed to a
 * crmblob-img worker process (imgw.h). The server links no decoder at all,
 * so a hostile picture that crashes, hangs or bloats a decoder costs one
 * worker, never the server or its memory.
 *
 * Up to IMG_WORKERS workers, each serving one call at a time, started on
 * first need (an idle server carries none) and kept for the next call. A
 * worker that dies, or takes longer than IMG_CALL_TIMEOUT_S, is killed and
 * reaped; its call fails (validation: the picture is refused, since it is
 * what broke the decoder) and the next call starts a fresh worker.
 *
 * Invariants: a slot with pid 0 has no process and no socket; a slot is
 * used by at most one thread at a time (busy, under mu).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "img/imgw.h"

extern char **environ;

#define IMG_WORKERS 2
#define IMG_CALL_TIMEOUT_S 120

typedef struct {
    pid_t pid;
    int sock;
    bool busy;
} worker;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    worker w[IMG_WORKERS];
    img_config cfg;
    char path[PATH_MAX];
    char limit[24], threads[24], cache[24]; /* the worker's options */
} R = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

cb_err img_init(const img_config *cfg)
{
    img_config c = cfg != NULL ? *cfg : (img_config){0};
    if (c.pixel_limit < 0 || c.cache_mb < 0 || c.threads < 0 || c.worker == NULL)
        return CB_EINTERNAL;
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
 * other descriptor of ours, signals unblocked. */
static cb_err start_worker(worker *w)
{
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
    char *argv[] = {R.path, "--pixel-limit", R.limit, "--threads", R.threads,
                    "--cache-mb", R.cache, NULL};
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
    struct timeval tv = {.tv_sec = IMG_CALL_TIMEOUT_S};
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    w->pid = pid;
    w->sock = sv[0];
    return CB_EOK;
}

static worker *acquire(void)
{
    pthread_mutex_lock(&R.mu);
    for (;;) {
        for (int i = 0; i < IMG_WORKERS; i++) {
            if (!R.w[i].busy) {
                R.w[i].busy = true;
                pthread_mutex_unlock(&R.mu);
                return &R.w[i];
            }
        }
        pthread_cond_wait(&R.cv, &R.mu);
    }
}

static void release(worker *w)
{
    pthread_mutex_lock(&R.mu);
    w->busy = false;
    pthread_cond_signal(&R.cv);
    pthread_mutex_unlock(&R.mu);
}

/* Sends rq with input descriptor in (or -1) and reads the answer; *out_fd
 * is the output descriptor (or -1). False when there was no worker
 * (rs->err CB_EUNAVAILABLE) or it failed on this input: it has been
 * stopped, rs->err is died_err and rs->reason says why. */
static bool exchange(worker *w, const imgw_req *rq, int in, cb_err died_err, imgw_resp *rs,
                     int *out_fd)
{
    *out_fd = -1;
    if (w->pid == 0 && start_worker(w) != CB_EOK) {
        rs->err = CB_EUNAVAILABLE;
        snprintf(rs->reason, sizeof(rs->reason), "no image worker could be started");
        return false;
    }
    int got = 0;
    if (imgw_send(w->sock, rq, sizeof(*rq), in) == 0)
        got = imgw_recv(w->sock, rs, sizeof(*rs), out_fd);
    if (got == 1 && (rs->out_len == 0) == (*out_fd < 0)) {
        rs->reason[sizeof(rs->reason) - 1] = '\0';
        return true;
    }
    bool timed_out = got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    if (*out_fd >= 0)
        close(*out_fd);
    *out_fd = -1;
    stop_worker(w, true);
    memset(rs, 0, sizeof(*rs));
    rs->err = died_err;
    snprintf(rs->reason, sizeof(rs->reason), "%s",
             timed_out ? "decoding took too long" : "the decoder failed on this picture");
    return false;
}

/* One call on a worker (died_err: the result when the worker dies on it);
 * on success *out (malloc'd) holds the output bytes when the call has
 * some. */
static cb_err call(const imgw_req *rq, int in, cb_err died_err, imgw_resp *rs, void **out,
                   size_t *out_len)
{
    worker *w = acquire();
    int out_fd = -1;
    memset(rs, 0, sizeof(*rs));
    bool ok = exchange(w, rq, in, died_err, rs, &out_fd);
    release(w);
    if (!ok)
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
    /* a picture that kills or stalls the decoder is refused */
    cb_err e = call(&rq, fd, CB_EBADREQ, &rs, NULL, NULL);
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
    cb_err e = call(&rq, fd, CB_EUNAVAILABLE, &rs, out, out_len);
    close(fd);
    copy_reason(&rs, reason, reason_cap);
    return e;
}

cb_err img_placeholder_render(img_blank kind, int w, int h, img_type type, void **out,
                              size_t *out_len)
{
    imgw_req rq = {.op = IMGW_PLACEHOLDER, .w = w, .h = h, .type = type, .blank = kind};
    imgw_resp rs;
    return call(&rq, -1, CB_EUNAVAILABLE, &rs, out, out_len);
}
