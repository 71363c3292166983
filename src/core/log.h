/*
 * log.h — process log: diagnostics and the one-line-per-request access log.
 *
 * Lines go to stderr, each written with a single write so that lines from
 * concurrent threads never interleave.
 */
#ifndef CB_LOG_H
#define CB_LOG_H

#include <stdint.h>

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

void log_set_level(log_level lvl);
void log_msg(log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* method path status bytes micros user [app] */
void log_access(const char *method, const char *path, int status, uint64_t bytes, uint64_t micros,
                const char *user, const char *app);

#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
