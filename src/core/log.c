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
 *
 * Lines are written to out_fd (stderr, or the --log-file), swapped under
 * out_mu by log_reopen. An access line is built field by field, each
 * within its budget (ACCESS_BUDGETS), whose sum with the fixed text fits
 * LOG_ACCESS_MAX: no line is ever cut, so a JSON line always closes.
 */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/text.h"

#define PENDING_CAP (64u * 1024u)
#define PENDING_FLUSH (48u * 1024u)
#define FLUSH_MS 50
#define LINE_MAX_BYTES 2048
#define LIMIT_SLOTS 128

static atomic_int min_level = LOG_INFO; /* a reload may change it while threads log */
static log_format format = LOG_TEXT;
static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const format_names[] = {"text", "json"};

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t out_cv = PTHREAD_COND_INITIALIZER;
static char pending[PENDING_CAP];
static size_t pending_len; /* under out_mu */
static bool buffering;     /* under out_mu */
static bool flusher_running;
static pthread_t flusher;
static int out_fd = STDERR_FILENO; /* under out_mu */
static char *out_path;             /* the --log-file, or NULL; under out_mu */

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
    atomic_store_explicit(&min_level, (int)lvl, memory_order_relaxed);
}

static bool level_shown(log_level lvl)
{
    return (int)lvl >= atomic_load_explicit(&min_level, memory_order_relaxed);
}

bool log_parse_level(const char *s, log_level *out)
{
    for (int i = LOG_DEBUG; i <= LOG_ERROR; i++)
        if (strcmp(s, level_names[i]) == 0) {
            *out = (log_level)i;
            return true;
        }
    return false;
}

void log_set_format(log_format f)
{
    format = f;
}

bool log_parse_format(const char *s, log_format *out)
{
    for (int i = LOG_TEXT; i <= LOG_JSON; i++)
        if (strcmp(s, format_names[i]) == 0) {
            *out = (log_format)i;
            return true;
        }
    return false;
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
        ssize_t w = write(out_fd, p, n);
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

/* ---- the log file ---- */

static int open_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    return fd >= 0 ? fd : -errno;
}

/* Lines go to fd from now on (path: its name, NULL for stderr); what
 * waits goes to the old one first. */
static void swap_out(int fd, char *path)
{
    pthread_mutex_lock(&out_mu);
    flush_pending();
    int old = out_fd;
    char *old_path = out_path;
    out_fd = fd;
    out_path = path;
    pthread_mutex_unlock(&out_mu);
    if (old != STDERR_FILENO)
        close(old);
    free(old_path);
}

int log_open_file(const char *path)
{
    if (path == NULL) {
        swap_out(STDERR_FILENO, NULL);
        return 0;
    }
    char *copy = strdup(path);
    int fd = copy != NULL ? open_log(path) : -ENOMEM;
    if (fd < 0) {
        free(copy);
        return -fd;
    }
    swap_out(fd, copy);
    return 0;
}

int log_reopen(void)
{
    pthread_mutex_lock(&out_mu);
    char *path = out_path != NULL ? strdup(out_path) : NULL;
    bool none = out_path == NULL;
    pthread_mutex_unlock(&out_mu);
    if (none)
        return 0;
    int fd = path != NULL ? open_log(path) : -ENOMEM;
    if (fd < 0) {
        log_error("cannot open the log file %s again: %s (still writing to the old one)",
                  path != NULL ? path : "", strerror(-fd));
        free(path);
        return -fd;
    }
    swap_out(fd, path);
    return 0;
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

static void write_summary(const limit_summary *m);

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

/* ---- building lines ---- */

/* A line being put together; n stops short of cap (room for the newline). */
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
    char digits[TEXT_U64_MAX];
    text_format_u64(v, digits);
    put_str(b, digits);
}

/* The time stamp: "2026-11-23T09:14:05.120Z " in text, "{"time":"...Z"," in JSON. */
static void put_stamp(line_buf *b, log_format f)
{
    char t[32];
    size_t k = stamp(t);
    if (f == LOG_JSON) {
        t[k - 1] = '\0'; /* no space */
        put_str(b, "{\"time\":\"");
        put_str(b, t);
        put_str(b, "\",");
    } else {
        t[k] = '\0';
        put_str(b, t);
    }
}

/* What put_hexed writes as \xNN besides control characters: nothing (a
 * diagnostic's text), spaces and '"' (a field of an access line: the only
 * quotes of a text access line are those around its user agent), '"' and
 * '\\' (that quoted field). */
typedef enum { HEX_CTL, HEX_SPACE, HEX_QUOTED } hex_set;

/* s[0..len) with control characters and those of `set` as \xNN, stopping
 * before field bytes are out (each field has its budget) or the line is
 * full. In text, values from clients must not be able to start a forged
 * line or shift the fields. */
static bool hex_escaped(unsigned char c, hex_set set)
{
    return c < 0x20 || c == 0x7f || (set == HEX_SPACE && (c == ' ' || c == '"')) ||
           (set == HEX_QUOTED && (c == '"' || c == '\\'));
}

/* Appends s[0..n) as it is, within the line. */
static void put_run(line_buf *b, const char *s, size_t n)
{
    if (n > b->cap - 1 - b->n)
        n = b->cap - 1 - b->n;
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void put_hexed(line_buf *b, const char *s, size_t len, size_t field, hex_set set)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0, k = 0; i < len;) {
        size_t run = 0; /* bytes written as they are: copied together */
        while (i + run < len && k + run < field && !hex_escaped((unsigned char)s[i + run], set))
            run++;
        put_run(b, s + i, run);
        i += run;
        k += run;
        if (i == len || k + 4 > field || b->n + 4 > b->cap - 1)
            return;
        unsigned char c = (unsigned char)s[i++];
        char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
        put_run(b, esc, 4);
        k += 4;
    }
}

/* One character of s[0..len) at s as JSON: its escape in esc (*elen
 * bytes), or none (*elen 0: copy the *used bytes as they are). */
static size_t json_char(const unsigned char *s, size_t len, char esc[8], size_t *elen)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = s[0];
    size_t seq = c < 0x80 ? 1 : text_utf8_seq(s, len);
    *elen = 0;
    if (seq == 0) { /* not UTF-8: U+FFFD, one byte at a time */
        memcpy(esc, "\\ufffd", 6);
        *elen = 6;
        return 1;
    }
    if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t') {
        esc[0] = '\\';
        esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : (char)c;
        *elen = 2;
    } else if (c < 0x20 || c == 0x7f) {
        memcpy(esc, "\\u00", 4);
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 15];
        *elen = 6;
    }
    return seq;
}

/* s[0..len) as a JSON string, its content within field bytes. */
static void put_json_chars(line_buf *b, const char *s, size_t len, size_t field)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t room = b->cap - 1 - b->n;
    if (room < 2)
        return;
    room -= 2; /* the quotes */
    if (field > room)
        field = room;
    b->p[b->n++] = '"';
    for (size_t i = 0, k = 0; i < len;) {
        size_t run = 0; /* printable ASCII but '"' and '\\': copied together */
        while (i + run < len && k + run < field && u[i + run] >= 0x20 && u[i + run] < 0x7f &&
               u[i + run] != '"' && u[i + run] != '\\')
            run++;
        memcpy(b->p + b->n, s + i, run);
        b->n += run;
        k += run;
        i += run;
        if (i == len)
            break;
        char esc[8];
        size_t elen, used = json_char(u + i, len - i, esc, &elen);
        size_t w = elen > 0 ? elen : used;
        if (k + w > field)
            break;
        memcpy(b->p + b->n, elen > 0 ? esc : s + i, w);
        b->n += w;
        k += w;
        i += used;
    }
    b->p[b->n++] = '"';
}

static void put_json_str(line_buf *b, const char *s, size_t field)
{
    if (s == NULL)
        put_str(b, "null");
    else
        put_json_chars(b, s, strlen(s), field);
}

/* Ends the line with a newline and writes it, or, for an access line
 * while buffering, queues it. */
static void emit_line(line_buf *b, bool access)
{
    emit(b->p, b->n, b->cap, access);
}

/* ---- diagnostics ---- */

/* One diagnostic line: head (crmblob's own words, NULL: none) and text
 * (may hold values from clients). */
static void write_diag(log_level lvl, const char *head, const char *text, size_t len)
{
    char line[LINE_MAX_BYTES];
    line_buf b = {line, 0, sizeof(line)};
    put_stamp(&b, format);
    if (format == LOG_JSON) {
        char msg[LINE_MAX_BYTES];
        int m = snprintf(msg, sizeof(msg), "%s%.*s", head ? head : "", (int)len, text);
        size_t mlen = m < 0 ? 0 : (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1;
        put_str(&b, "\"level\":\"");
        put_str(&b, level_names[lvl]);
        put_str(&b, "\",\"msg\":");
        b.cap -= 2; /* room for the closing brace (emit keeps one byte for the newline) */
        put_json_chars(&b, msg, mlen, SIZE_MAX);
        b.cap += 2;
        put_str(&b, "}");
    } else {
        put_str(&b, level_names[lvl]);
        put_str(&b, " ");
        put_str(&b, head ? head : "");
        put_hexed(&b, text, len, SIZE_MAX, HEX_CTL);
    }
    emit_line(&b, false);
}

static void write_summary(const limit_summary *m)
{
    char head[160];
    uint64_t secs = (m->ms + 500) / 1000;
    snprintf(head, sizeof(head), "log: %llu similar lines suppressed in the last %llu s: ",
             (unsigned long long)m->suppressed, (unsigned long long)(secs > 0 ? secs : 1));
    write_diag(m->lvl, head, m->fmt, trim_newlines(m->fmt, strlen(m->fmt)));
}

void log_vmsg(log_level lvl, const char *prefix, const char *fmt, va_list ap)
{
    if (!level_shown(lvl))
        return;
    limit_summary sum;
    bool has_sum;
    bool ok = limit_admit(fmt, lvl, &sum, &has_sum);
    if (has_sum)
        write_summary(&sum);
    if (!ok)
        return;
    char text[LINE_MAX_BYTES];
    int m = vsnprintf(text, sizeof(text), fmt, ap);
    size_t len = m < 0 ? 0 : (size_t)m < sizeof(text) ? (size_t)m : sizeof(text) - 1;
    write_diag(lvl, prefix, text, trim_newlines(text, len));
}

void log_msg(log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(lvl, NULL, fmt, ap);
    va_end(ap);
}

/* ---- access lines ---- */

/* Budgets of the fields (bytes as written, escapes included), and room for
 * everything else of the line (the time stamp, names, numbers). */
enum {
    B_METHOD = 64, B_TARGET = 2048, B_USER = 256, B_APP = 256, B_CLIENT = 64, B_ID = 128,
    B_AGENT = 512, B_FIXED = 512,
};
_Static_assert(B_METHOD + B_TARGET + B_USER + B_APP + B_CLIENT + B_ID + B_AGENT + B_FIXED <
                   LOG_ACCESS_MAX,
               "an access line always has room for all of its fields");

static bool no_user(const char *user)
{
    return user == NULL || *user == '\0' || strcmp(user, "-") == 0;
}

static void access_text(line_buf *b, const log_access_fields *a)
{
    put_str(b, "access ");
    put_hexed(b, a->method ? a->method : "-", strlen(a->method ? a->method : "-"), B_METHOD, HEX_SPACE);
    put_str(b, " ");
    put_hexed(b, a->target ? a->target : "-", strlen(a->target ? a->target : "-"), B_TARGET, HEX_SPACE);
    put_str(b, " ");
    put_u64(b, a->status > 0 ? (uint64_t)a->status : 0);
    put_str(b, " ");
    put_u64(b, a->bytes);
    put_str(b, " ");
    put_u64(b, a->micros);
    put_str(b, "us ");
    const char *user = no_user(a->user) ? "-" : a->user;
    put_hexed(b, user, strlen(user), B_USER, HEX_SPACE);
    if (a->request_id != NULL) {
        put_str(b, " id=");
        put_hexed(b, a->request_id, strlen(a->request_id), B_ID, HEX_SPACE);
    }
    put_str(b, " ua=\"");
    if (a->user_agent != NULL)
        put_hexed(b, a->user_agent, strlen(a->user_agent), B_AGENT, HEX_QUOTED);
    put_str(b, "\"");
    if (a->app != NULL && *a->app) {
        put_str(b, " app=");
        put_hexed(b, a->app, strlen(a->app), B_APP, HEX_SPACE);
    }
    if (a->client != NULL && *a->client) {
        put_str(b, " from=");
        put_hexed(b, a->client, strlen(a->client), B_CLIENT, HEX_SPACE);
    }
}

static void json_field(line_buf *b, const char *name, const char *value, size_t field)
{
    put_str(b, ",\"");
    put_str(b, name);
    put_str(b, "\":");
    put_json_str(b, value, field);
}

static void json_number(line_buf *b, const char *name, uint64_t v)
{
    put_str(b, ",\"");
    put_str(b, name);
    put_str(b, "\":");
    put_u64(b, v);
}

static void access_json(line_buf *b, const log_access_fields *a)
{
    put_str(b, "\"level\":\"info\",\"msg\":\"access\"");
    json_field(b, "method", a->method, B_METHOD);
    json_field(b, "target", a->target, B_TARGET);
    json_number(b, "status", a->status > 0 ? (uint64_t)a->status : 0);
    json_number(b, "bytes", a->bytes);
    json_number(b, "duration_us", a->micros);
    json_field(b, "user", no_user(a->user) ? NULL : a->user, B_USER);
    json_field(b, "app", a->app != NULL && *a->app ? a->app : NULL, B_APP);
    json_field(b, "request_id", a->request_id, B_ID);
    json_field(b, "user_agent", a->user_agent, B_AGENT);
    json_field(b, "client", a->client != NULL && *a->client ? a->client : NULL, B_CLIENT);
    put_str(b, "}");
}

size_t log_format_access(log_format f, const log_access_fields *a, char out[LOG_ACCESS_MAX])
{
    line_buf b = {out, 0, LOG_ACCESS_MAX};
    put_stamp(&b, f);
    if (f == LOG_JSON)
        access_json(&b, a);
    else
        access_text(&b, a);
    out[b.n++] = '\n';
    return b.n;
}

void log_access(const log_access_fields *a)
{
    if (!level_shown(LOG_INFO))
        return;
    char line[LOG_ACCESS_MAX];
    size_t n = log_format_access(format, a, line);
    emit(line, n - 1, sizeof(line), true);
}
