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

#include "core/text.h"

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

/* s with control characters and spaces written as \xNN, stopping once
 * field - 5 bytes are out (each field has its budget): the path and names
 * come from clients and must not be able to start a forged log line or
 * shift the fields. */
static void put_safe(line_buf *b, const char *s, size_t field)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t k = 0; s != NULL && *s && k + 5 < field; s++) {
        unsigned char c = (unsigned char)*s;
        bool escape = c <= 0x20 || c == 0x7f;
        size_t w = escape ? 4 : 1;
        if (b->n + w > b->cap - 1)
            return;
        if (escape) {
            b->p[b->n++] = '\\';
            b->p[b->n++] = 'x';
            b->p[b->n++] = hex[c >> 4];
            b->p[b->n++] = hex[c & 15];
        } else {
            b->p[b->n++] = (char)c;
        }
        k += w;
    }
}

static void put_u64(line_buf *b, uint64_t v)
{
    char digits[TEXT_U64_MAX];
    text_format_u64(v, digits);
    put_str(b, digits);
}

void log_access(const char *method, const char *path, int status, uint64_t bytes, uint64_t micros,
                const char *user, const char *app)
{
    char line[LINE_MAX_BYTES];
    line_buf b = {line, stamp(line), sizeof(line)};
    put_str(&b, "access ");
    put_safe(&b, method, 64);
    put_str(&b, " ");
    put_safe(&b, path, 1024);
    put_str(&b, " ");
    put_u64(&b, status > 0 ? (uint64_t)status : 0);
    put_str(&b, " ");
    put_u64(&b, bytes);
    put_str(&b, " ");
    put_u64(&b, micros);
    put_str(&b, "us ");
    if (user != NULL && *user)
        put_safe(&b, user, 256);
    else
        put_str(&b, "-");
    if (app && *app) {
        put_str(&b, " app=");
        put_safe(&b, app, 256);
    }
    emit(line, b.n, sizeof(line), true);
}
