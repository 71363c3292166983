/*
 * log.c — timestamped lines on stderr.
 *
 * Diagnostics are written at once, one write(2) per line. Access lines
 * are written at once too until log_buffer_start(); from then on they
 * gather in `pending` and go out together: when it passes PENDING_FLUSH
 * bytes, every FLUSH_MS by the flusher thread, before any diagnostic line
 * (so the order of lines is kept) and at log_buffer_stop(). Whole lines
 * only, under one mutex, so lines of concurrent threads never interleave.
 *
 * The limit on diagnostic lines (log.h) keeps one slot per kind, keyed by
 * the format string's address, in a fixed table of LIMIT_SLOTS: kinds come
 * from the code, never from clients, and should the table ever fill, a
 * new kind shares the slot it lands on (its budget too: still bounded).
 * A slot's interval starts with its first line; a line past the limit
 * only counts (nothing is formatted). The summary of an ended interval is
 * written by the next line of its kind or by the flusher thread, so it
 * comes out within about FLUSH_MS of the interval's end while the server
 * runs. limit_mu is never held while out_mu is taken.
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
#define LIMIT_SLOTS 128

static log_level min_level = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t out_cv = PTHREAD_COND_INITIALIZER;
static char pending[PENDING_CAP];
static size_t pending_len; /* under out_mu */
static bool buffering;     /* under out_mu */
static bool flusher_running;
static pthread_t flusher;

/* One kind of diagnostic line and its current interval. */
typedef struct {
    const char *fmt; /* the kind; NULL: a free slot */
    log_level lvl;   /* of its last line, for the summary */
    uint64_t since_ms;
    unsigned lines;      /* written in this interval */
    uint64_t suppressed; /* counted, not written, in this interval */
} limit_slot;

/* An interval's summary, taken out of its slot to be written. */
typedef struct {
    const char *fmt;
    log_level lvl;
    uint64_t suppressed, ms;
} limit_summary;

static pthread_mutex_t limit_mu = PTHREAD_MUTEX_INITIALIZER;
static limit_slot slots[LIMIT_SLOTS]; /* under limit_mu */
static unsigned limit_lines = LOG_LIMIT_LINES;
static unsigned limit_ms = LOG_LIMIT_MS;

void log_set_level(log_level lvl)
{
    min_level = lvl;
}

void log_set_limit(unsigned lines, unsigned interval_ms)
{
    pthread_mutex_lock(&limit_mu);
    limit_lines = lines;
    limit_ms = interval_ms > 0 ? interval_ms : 1;
    memset(slots, 0, sizeof(slots));
    pthread_mutex_unlock(&limit_mu);
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

/* len without the newlines that end text[0..len). */
static size_t trim_newlines(const char *text, size_t len)
{
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    return len;
}

/* Appends text[0..len) to line (n bytes so far, cap in all) with control
 * characters as \xNN, stopping short of cap - 1; returns the new length. */
static size_t put_escaped(char *line, size_t n, size_t cap, const char *text, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        bool escape = c < 0x20 || c == 0x7f;
        if (n + (escape ? 4 : 1) > cap - 1)
            break;
        if (escape) {
            line[n++] = '\\';
            line[n++] = 'x';
            line[n++] = hex[c >> 4];
            line[n++] = hex[c & 15];
        } else {
            line[n++] = (char)c;
        }
    }
    return n;
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

static uint64_t now_ms(void)
{
    return text_monotonic_us() / 1000u;
}

/* Under limit_mu: fmt's slot, claimed if free (linear probing; a full
 * table gives the home slot, shared). */
static limit_slot *slot_of(const char *fmt)
{
    size_t home = ((uintptr_t)fmt >> 3) * 0x9E3779B97F4A7C15ull >> 57; /* 7 bits */
    for (size_t i = 0; i < LIMIT_SLOTS; i++) {
        limit_slot *sl = &slots[(home + i) % LIMIT_SLOTS];
        if (sl->fmt == fmt)
            return sl;
        if (sl->fmt == NULL) {
            *sl = (limit_slot){.fmt = fmt};
            return sl;
        }
    }
    return &slots[home % LIMIT_SLOTS];
}

/* Under limit_mu: ends sl's interval, its summary into *out if it has
 * one (true then). */
static bool end_interval(limit_slot *sl, uint64_t now, limit_summary *out)
{
    bool any = sl->suppressed > 0;
    if (any)
        *out = (limit_summary){sl->fmt, sl->lvl, sl->suppressed, now - sl->since_ms};
    sl->lines = 0;
    sl->suppressed = 0;
    sl->since_ms = now;
    return any;
}

/* May a line of kind fmt be written now? *sum gets the summary of the
 * kind's interval if this line ended it (*has_sum true). */
static bool limit_admit(const char *fmt, log_level lvl, limit_summary *sum, bool *has_sum)
{
    *has_sum = false;
    pthread_mutex_lock(&limit_mu);
    bool ok = limit_lines == 0;
    if (!ok) {
        uint64_t now = now_ms();
        limit_slot *sl = slot_of(fmt);
        if (sl->lines == 0 && sl->suppressed == 0)
            sl->since_ms = now;
        else if (now - sl->since_ms >= limit_ms)
            *has_sum = end_interval(sl, now, sum);
        sl->lvl = lvl;
        ok = sl->lines < limit_lines;
        if (ok)
            sl->lines++;
        else
            sl->suppressed++;
    }
    pthread_mutex_unlock(&limit_mu);
    return ok;
}

static void write_summary(const limit_summary *m)
{
    char line[LINE_MAX_BYTES];
    size_t n = stamp(line);
    uint64_t secs = (m->ms + 500) / 1000;
    int k =
        snprintf(line + n, sizeof(line) - n,
                 "%s log: %llu similar lines suppressed in the last %llu s: ", level_names[m->lvl],
                 (unsigned long long)m->suppressed, (unsigned long long)(secs > 0 ? secs : 1));
    n += (size_t)(k > 0 ? k : 0);
    n = put_escaped(line, n, sizeof(line), m->fmt, trim_newlines(m->fmt, strlen(m->fmt)));
    emit(line, n, sizeof(line), false);
}

/* Summaries of the kinds whose interval has ended (every kind with
 * lines suppressed when all is true), a few at a time. */
static void summarize(bool all)
{
    limit_summary batch[16];
    size_t start = 0;
    while (start < LIMIT_SLOTS) {
        size_t nb = 0;
        pthread_mutex_lock(&limit_mu);
        uint64_t now = now_ms();
        for (; start < LIMIT_SLOTS && nb < 16; start++) {
            limit_slot *sl = &slots[start];
            if (sl->suppressed > 0 && (all || now - sl->since_ms >= limit_ms))
                nb += end_interval(sl, now, &batch[nb]);
        }
        pthread_mutex_unlock(&limit_mu);
        for (size_t i = 0; i < nb; i++)
            write_summary(&batch[i]);
    }
}

void log_flush_suppressed(void)
{
    summarize(true);
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
        pthread_mutex_unlock(&out_mu); /* summaries take limit_mu, then out_mu */
        summarize(false);
        pthread_mutex_lock(&out_mu);
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
    summarize(true);
    pthread_mutex_lock(&out_mu);
    buffering = false;
    flush_pending();
    pthread_cond_signal(&out_cv);
    pthread_mutex_unlock(&out_mu);
    if (flusher_running)
        pthread_join(flusher, NULL);
    flusher_running = false;
}

void log_vmsg(log_level lvl, const char *prefix, const char *fmt, va_list ap)
{
    if (lvl < min_level)
        return;
    limit_summary sum;
    bool has_sum;
    bool ok = limit_admit(fmt, lvl, &sum, &has_sum);
    if (has_sum)
        write_summary(&sum);
    if (!ok)
        return;
    char text[LINE_MAX_BYTES], line[LINE_MAX_BYTES];
    int m = vsnprintf(text, sizeof(text), fmt, ap);
    size_t len = m < 0 ? 0 : (size_t)m < sizeof(text) ? (size_t)m : sizeof(text) - 1;
    size_t n = stamp(line);
    m = snprintf(line + n, sizeof(line) - n, "%s %s", level_names[lvl], prefix ? prefix : "");
    n += m > 0 ? (size_t)m : 0;
    n = put_escaped(line, n, sizeof(line), text, trim_newlines(text, len));
    emit(line, n, sizeof(line), false);
}

void log_msg(log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(lvl, NULL, fmt, ap);
    va_end(ap);
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
                const char *user, const char *app, const char *client)
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
    if (client && *client) {
        put_str(&b, " from=");
        put_safe(&b, client, 64);
    }
    emit(line, b.n, sizeof(line), true);
}
