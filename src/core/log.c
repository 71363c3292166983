/*
 * log.c — timestamped lines on stderr.
 *
 * Diagnostics are written at once, one write(2) per line. Access lines
 * are written at once too until log_buffer_start(); from then on they
 * gather in `pending` and go out together: when it passes PENDING_FLUSH
 * bytes, every FLUSH_MS by the flusher thread, before any diagnostic line
 * (so the order of lines is kept) and at log_buffer_stop(). Whole lines
 * only, under one mutex, so lines of concurrent threads never interleave.
 */
#include "core/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PENDING_CAP (64u * 1024u)
#define PENDING_FLUSH (48u * 1024u)
#define FLUSH_MS 50
#define LINE_MAX_BYTES 2048

static log_level min_level = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t out_cv = PTHREAD_COND_INITIALIZER;
static char pending[PENDING_CAP];
static size_t pending_len; /* under out_mu */
static bool buffering;     /* under out_mu */
static bool flusher_running;
static pthread_t flusher;

void log_set_level(log_level lvl)
{
    min_level = lvl;
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w <= 0)
            return; /* nowhere to report it */
        p += w;
        n -= (size_t)w;
    }
}

/* Under out_mu. */
static void flush_pending(void)
{
    write_all(pending, pending_len);
    pending_len = 0;
}

/* "2026-11-23T09:14:05.120Z " into out (at least 32 bytes); the part up to
 * the seconds is made once per second and thread. */
static size_t stamp(char *out)
{
    static __thread time_t last_sec = -1;
    static __thread char last[24];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != last_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        if (strftime(last, sizeof(last), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
            last[0] = '\0';
        last_sec = ts.tv_sec;
    }
    size_t n = strlen(last);
    memcpy(out, last, n);
    long ms = ts.tv_nsec / 1000000;
    out[n++] = '.';
    out[n++] = (char)('0' + ms / 100);
    out[n++] = (char)('0' + ms / 10 % 10);
    out[n++] = (char)('0' + ms % 10);
    out[n++] = 'Z';
    out[n++] = ' ';
    return n;
}

/* Ends line (cut to cap) with a newline and writes it, or, for an access
 * line while buffering, queues it. */
static void emit(char *line, size_t n, size_t cap, bool access)
{
    if (n >= cap - 1)
        n = cap - 2;
    line[n++] = '\n';
    pthread_mutex_lock(&out_mu);
    if (access && buffering) {
        if (pending_len + n > PENDING_CAP)
            flush_pending();
        memcpy(pending + pending_len, line, n);
        pending_len += n;
        if (pending_len >= PENDING_FLUSH)
            flush_pending();
    } else {
        flush_pending();
        write_all(line, n);
    }
    pthread_mutex_unlock(&out_mu);
}

static void *flusher_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&out_mu);
    while (buffering) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += FLUSH_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&out_cv, &out_mu, &until);
        flush_pending();
    }
    pthread_mutex_unlock(&out_mu);
    return NULL;
}

bool log_buffer_start(void)
{
    pthread_mutex_lock(&out_mu);
    buffering = true;
    pthread_mutex_unlock(&out_mu);
    flusher_running = pthread_create(&flusher, NULL, flusher_main, NULL) == 0;
    if (!flusher_running) {
        pthread_mutex_lock(&out_mu);
        buffering = false;
        pthread_mutex_unlock(&out_mu);
    }
    return flusher_running;
}

void log_buffer_stop(void)
{
    pthread_mutex_lock(&out_mu);
    buffering = false;
    flush_pending();
    pthread_cond_signal(&out_cv);
    pthread_mutex_unlock(&out_mu);
    if (flusher_running)
        pthread_join(flusher, NULL);
    flusher_running = false;
}

void log_msg(log_level lvl, const char *fmt, ...)
{
    if (lvl < min_level)
        return;
    char line[LINE_MAX_BYTES];
    size_t n = stamp(line);
    int m = snprintf(line + n, sizeof(line) - n, "%s ", level_names[lvl]);
    n += (size_t)m;
    va_list ap;
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    n = m < 0 ? n : n + (size_t)m;
    emit(line, n, sizeof(line), false);
}

/* A copy of s (cut to cap) in which control characters and spaces are
 * written as \xNN: the path and names come from clients and must not be
 * able to start a forged log line or shift the fields. */
static const char *log_safe(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (; s != NULL && *s && n + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c == 0x7f) {
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
    return out;
}

/* An access line being put together; n stops short of cap. */
typedef struct {
    char *p;
    size_t n, cap;
} line_buf;

static void put_str(line_buf *b, const char *str)
{
    size_t k = strlen(str);
    if (k > b->cap - 1 - b->n)
        k = b->cap - 1 - b->n;
    memcpy(b->p + b->n, str, k);
    b->n += k;
}

static void put_u64(line_buf *b, uint64_t v)
{
    char digits[24];
    size_t i = sizeof(digits) - 1;
    digits[i] = '\0';
    do
        digits[--i] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    put_str(b, digits + i);
}

void log_access(const char *method, const char *path, int status, uint64_t bytes, uint64_t micros,
                const char *user, const char *app)
{
    char line[LINE_MAX_BYTES], safe_method[64], safe_path[1024], safe_user[256], safe_app[256];
    method = log_safe(method, safe_method, sizeof(safe_method));
    path = log_safe(path, safe_path, sizeof(safe_path));
    user = log_safe(user, safe_user, sizeof(safe_user));
    app = app != NULL ? log_safe(app, safe_app, sizeof(safe_app)) : NULL;
    line_buf b = {line, stamp(line), sizeof(line)};
    put_str(&b, "access ");
    put_str(&b, method);
    put_str(&b, " ");
    put_str(&b, path);
    put_str(&b, " ");
    put_u64(&b, status > 0 ? (uint64_t)status : 0);
    put_str(&b, " ");
    put_u64(&b, bytes);
    put_str(&b, " ");
    put_u64(&b, micros);
    put_str(&b, "us ");
    put_str(&b, user && *user ? user : "-");
    if (app && *app) {
        put_str(&b, " app=");
        put_str(&b, app);
    }
    emit(line, b.n, sizeof(line), true);
}
