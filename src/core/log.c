/*
 * log.c — timestamped lines on stderr, one write(2) per line.
 */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static log_level min_level = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(log_level lvl)
{
    min_level = lvl;
}

static size_t stamp(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    int m = snprintf(out + n, cap - n, ".%03ldZ ", ts.tv_nsec / 1000000);
    return n + (m > 0 ? (size_t)m : 0);
}

static void emit(char *line, size_t n, size_t cap)
{
    if (n >= cap - 1)
        n = cap - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

void log_msg(log_level lvl, const char *fmt, ...)
{
    if (lvl < min_level)
        return;
    char line[2048];
    size_t n = stamp(line, sizeof(line));
    int m = snprintf(line + n, sizeof(line) - n, "%s ", level_names[lvl]);
    n += (size_t)m;
    va_list ap;
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    n = m < 0 ? n : n + (size_t)m;
    emit(line, n, sizeof(line));
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

void log_access(const char *method, const char *path, int status, uint64_t bytes, uint64_t micros,
                const char *user, const char *app)
{
    char line[2048], safe_method[64], safe_path[1024], safe_user[256], safe_app[256];
    method = log_safe(method, safe_method, sizeof(safe_method));
    path = log_safe(path, safe_path, sizeof(safe_path));
    user = log_safe(user, safe_user, sizeof(safe_user));
    app = app != NULL ? log_safe(app, safe_app, sizeof(safe_app)) : NULL;
    size_t n = stamp(line, sizeof(line));
    int m = snprintf(line + n, sizeof(line) - n, "access %s %s %d %llu %lluus %s%s%s", method,
                     path, status, (unsigned long long)bytes, (unsigned long long)micros,
                     user && *user ? user : "-", app && *app ? " app=" : "", app ? app : "");
    n = m < 0 ? n : n + (size_t)m;
    emit(line, n, sizeof(line));
}
