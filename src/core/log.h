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
 */
#ifndef CB_LOG_H
#define CB_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

#define LOG_LIMIT_LINES 20  /* diagnostic lines of one kind ... */
#define LOG_LIMIT_MS 10000u /* ... per this many milliseconds */

void log_set_level(log_level lvl);
/* Diagnostic lines of one kind per interval_ms; lines == 0: no limit.
 * Call before the threads that log start (main sets it from --log-limit). */
void log_set_limit(unsigned lines, unsigned interval_ms);
void log_msg(log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same with a va_list, the line's text after `prefix` (NULL: none); its
 * kind is fmt. Newlines ending the text are dropped (libmicrohttpd's
 * messages end with one). */
void log_vmsg(log_level lvl, const char *prefix, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* "access METHOD PATH STATUS BYTES MICROSus USER|- [app=APP] [from=CLIENT]" */
void log_access(const char *method, const char *path, int status, uint64_t bytes, uint64_t micros,
                const char *user, const char *app, const char *client);
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
