/*
 * img_serve.c — the image worker's side of imgw.h: runs each request
 * through the libvips pipeline (img_vips.c) and answers it. Linked only
 * into crmblob-img.
 *
 * Invariant: every request gets exactly one answer, unless the worker
 * dies doing it (the server then sees end of file: 503, not the
 * picture's fault).
 *
 * The CPU limit: a timer on the process's CPU clock (all of libvips'
 * threads count), armed for each request, signals this thread when the
 * request has used up its seconds. The handler, wherever the decoder
 * stands, sends the answer prepared for that case (CB_EWORK, `exiting`)
 * and ends the process with _exit: both async-signal-safe, nothing else
 * is touched. `armed` makes sure that a request already answered is never
 * answered twice.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "img/imgw.h"

static struct {
    int sock;
    int limit_s; /* 0: no limit */
    timer_t timer;
    atomic_int armed; /* 1 while a request runs under the limit */
    imgw_resp over;   /* the answer when the limit is reached */
} budget;

static void on_cpu_limit(int sig)
{
    (void)sig;
    if (atomic_exchange(&budget.armed, 0) == 0)
        return;
    imgw_send(budget.sock, &budget.over, sizeof(budget.over), -1);
    _exit(0);
}

/* Creates the timer, aimed at the calling (serving) thread. */
static bool budget_init(int sock, int limit_s)
{
    struct sigaction sa = {.sa_handler = on_cpu_limit};
    struct sigevent ev = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGXCPU};
    budget.sock = sock;
    budget.limit_s = limit_s;
    if (limit_s <= 0)
        return true;
    ev._sigev_un._tid = (pid_t)syscall(SYS_gettid); /* sigev_notify_thread_id */
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGXCPU, &sa, NULL) != 0 ||
        timer_create(CLOCK_PROCESS_CPUTIME_ID, &ev, &budget.timer) != 0) {
        log_error("image worker: cannot set up the CPU limit");
        return false;
    }
    memset(&budget.over, 0, sizeof(budget.over));
    budget.over.err = CB_EWORK;
    budget.over.exiting = 1;
    snprintf(budget.over.reason, sizeof(budget.over.reason), "decoding needs more than %d s of CPU",
             limit_s);
    return true;
}

/* Arms (seconds > 0) or disarms (0) the timer, relative to the CPU time
 * used so far. */
static void budget_set(int seconds)
{
    struct itimerspec its = {.it_value = {.tv_sec = seconds}};
    if (budget.limit_s <= 0)
        return;
    if (seconds > 0)
        atomic_store(&budget.armed, 1);
    else
        atomic_store(&budget.armed, 0);
    timer_settime(budget.timer, 0, &its, NULL);
}

static void do_validate(const imgw_req *rq, int in, imgw_resp *rs)
{
    rs->err = img_validate_fd(in, rq->size, &rs->info, rs->reason, sizeof(rs->reason));
}

/* Runs a request whose output is bytes; *out malloc'd. */
static void do_bytes(const imgw_req *rq, int in, imgw_resp *rs, void **out, size_t *out_len)
{
    if (rq->op == IMGW_PLACEHOLDER) {
        rs->err = img_placeholder_render((img_blank)rq->blank, rq->w, rq->h, (img_type)rq->type,
                                         out, out_len);
        return;
    }
    void *bytes = rq->size > 0 ? imgw_slurp(in, (size_t)rq->size) : NULL;
    if (bytes == NULL) {
        rs->err = CB_EINTERNAL;
        snprintf(rs->reason, sizeof(rs->reason), "the worker could not read its input");
        return;
    }
    rs->err = img_variant(bytes, (size_t)rq->size, rq->w, rq->h, (img_type)rq->type, out, out_len,
                          rs->reason, sizeof(rs->reason));
    free(bytes);
}

/* Answers one request; false when the answer could not be sent. */
static bool serve_one(int sock, const imgw_req *rq, int in)
{
    imgw_resp rs;
    void *out = NULL;
    size_t out_len = 0;
    int out_fd = -1;
    memset(&rs, 0, sizeof(rs));
    budget_set(budget.limit_s);
    if (rq->op == IMGW_PING)
        rs.err = CB_EOK;
    else if (rq->op == IMGW_VALIDATE)
        do_validate(rq, in, &rs);
    else if (rq->op == IMGW_VARIANT || rq->op == IMGW_PLACEHOLDER)
        do_bytes(rq, in, &rs, &out, &out_len);
    else
        rs.err = CB_EINTERNAL;
    budget_set(0);
    if (rs.err == CB_EOK && out != NULL) {
        out_fd = imgw_memfd(out, out_len);
        rs.out_len = (int64_t)out_len;
        if (out_fd < 0) {
            rs.err = CB_EINTERNAL;
            rs.out_len = 0;
        }
    }
    free(out);
    bool sent = imgw_send(sock, &rs, sizeof(rs), out_fd) == 0;
    if (out_fd >= 0)
        close(out_fd);
    return sent;
}

int imgw_serve(int sock, int cpu_limit_s)
{
    if (!budget_init(sock, cpu_limit_s))
        return 1;
    for (;;) {
        imgw_req rq;
        int in = -1;
        int got = imgw_recv(sock, &rq, sizeof(rq), &in);
        if (got == 0)
            return 0;
        bool ok = got > 0 && serve_one(sock, &rq, in);
        if (in >= 0)
            close(in);
        if (!ok)
            return 1;
    }
}
