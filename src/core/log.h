/*
 * log.h — process log: diagnostics and the one-line-per-request access log.
 *
 * Lines go to stderr whole, so that lines from concurrent threads never
 * interleave. Access lines may be gathered and written together (the
 * server does, from log_buffer_start to log_buffer_stop): they reach
 * stderr within 50 ms, and before any later diagnostic line.
 *
 * Diagnostic lines are limited per kind — the format string they are
 * written with, so one call site or a few alike — to LOG_LIMIT_LINES per
 * LOG_LIMIT_MS by default (log_set_limit). Lines past the limit are
 * counted, not written; when the kind's interval ends, one line tells how
 * many were suppressed ("log: 1234 similar lines suppressed in the last
 * 10 s: refused %s %s from %s: %s"). No client can then make the log grow
 * faster than (kinds it can reach) x (limit + 1) diagnostic lines per
 * interval; access lines, one per request, are not limited. Control
 * characters in a diagnostic line are written as \xNN (values in it may
 * come from clients), so a line is always one line.
 *
 * Two formats (log_set_format, --log-format): text, as above, and JSON,
 * one object per line ({"time","level","msg"} and, for an access line,
 * msg "access" with its fields). Every JSON line is valid JSON whatever
 * the values hold: strings are escaped, bytes that are not UTF-8 become
 * U+FFFD, and every field has a budget that the line always has room for,
 * so nothing is ever cut mid-string.
 *
 * Levels (log_set_level, --log-level), each including those above it:
 * error (the server or a request could not do its work: start-up
 * failures, database and image worker failures), warn (what the server
 * works around: a failed sweep, libmicrohttpd's refusals, summaries of
 * suppressed lines), info (the default: start, stop, refused credentials,
 * and one access line per request), debug (libvips' and PostgreSQL's own
 * notices). Access lines are written at info and debug only.
 *
 * Lines go to stderr, or to a file (log_open_file, --log-file) that
 * log_reopen opens again after it was moved (a reload, SIGHUP). The level
 * may change while threads log (a reload); the format and the limit are
 * set before they start.
 */
#ifndef CB_LOG_H
#define CB_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;
typedef enum { LOG_TEXT, LOG_JSON } log_format;

#define LOG_LIMIT_LINES 20  /* diagnostic lines of one kind ... */
#define LOG_LIMIT_MS 10000u /* ... per this many milliseconds */

void log_set_level(log_level lvl);
/* "error", "warn", "info", "debug"; false for anything else. */
bool log_parse_level(const char *s, log_level *out);
void log_set_format(log_format f);
/* "text", "json"; false for anything else. */
bool log_parse_format(const char *s, log_format *out);
/* Lines go to the file at path from now on (appended, created 0640; NULL:
 * stderr again): 0, or an errno (lines still go where they went). */
int log_open_file(const char *path);
/* Opens the log file again by its name (it was moved away, e.g. by
 * logrotate): for a reload. 0 (also when lines go to stderr), or an errno
 * (the old file stays in use, and one line says why). */
int log_reopen(void);
/* Diagnostic lines of one kind per interval_ms; lines == 0: no limit.
 * Call before the threads that log start (main sets it from --log-limit). */
void log_set_limit(unsigned lines, unsigned interval_ms);
void log_msg(log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same with a va_list, the line's text after `prefix` (NULL: none); its
 * kind is fmt. Newlines ending the text are dropped (libmicrohttpd's
 * messages end with one). */
void log_vmsg(log_level lvl, const char *prefix, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* One request, as its access line tells it. Values may come from the
 * client, and are escaped. */
typedef struct {
    const char *method;
    const char *target;  /* the request target as received: path and query */
    int status;          /* 0: none was sent */
    uint64_t bytes;      /* of the answer's body */
    uint64_t micros;     /* from the request line to the answer's end */
    const char *user;    /* the authenticated user; NULL, "" or "-": none */
    const char *app;     /* the partner application (SO-AppToken); NULL: none */
    const char *client;  /* the client's address; NULL: unknown */
    const char *request_id; /* NULL: none */
    const char *user_agent; /* NULL: none sent */
} log_access_fields;

/* At level info or debug only. Text: "TIME access METHOD TARGET STATUS
 * BYTES MICROSus USER|- id=ID ua="AGENT" [app=APP] from=CLIENT" (spaces
 * '"' and control characters in the values as \xNN, in AGENT control
 * characters, '"' and '\\': the line's only quotes are AGENT's); JSON: {"time","level":"info","msg":"access",
 * "method","target","status","bytes","duration_us","user","app",
 * "request_id","user_agent","client"} (absent values null). */
void log_access(const log_access_fields *a);
/* The line log_access writes, time stamp and newline included, into out
 * (LOG_ACCESS_MAX bytes); its length. */
#define LOG_ACCESS_MAX 4096
size_t log_format_access(log_format f, const log_access_fields *a, char out[LOG_ACCESS_MAX]);
/* Writes the summary of every kind with lines suppressed so far, ended or
 * not (log_buffer_stop does, and the flusher thread for ended intervals). */
void log_flush_suppressed(void);

/* Access lines are gathered from now on (a flusher thread writes them);
 * false when the thread cannot start (then every line goes out at once). */
bool log_buffer_start(void);
/* Writes what is gathered and goes back to one write per line. */
void log_buffer_stop(void);

#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
