/*
 * log.h — process log: diagnostics and the one-line-per-request access log.
 *
 * Lines go to stderr whole, so that lines from concurrent threads never
 * interleave. Access lines may be gathered and written together (the
 * server does, from log_buffer_start to log_buffer_stop): they reach
 * stderr within 50 ms, and before any later diagnostic line.
 */
#ifndef CB_LOG_H
#define CB_LOG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

void log_set_level(log_level lvl);
void log_msg(log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* method path status bytes micros user [app] */
void log_access(const char *method, const char *path, int status, uint64_t bytes, uint64_t micros,
                const char *user, const char *app);

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
