/*
 * meter.c — progress arithmetic and its one-line rendering (meter.h).
 *
 * Rates are averages since the start: a long copy's pace is steady, and
 * an average does not jump about the way a sliding window does on a
 * terminal redrawn ten times a second. Nothing is told before 0.5 s or
 * before the first item: a rate from one sample is noise.
 */
#include "core/meter.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#define METER_SETTLE_S 0.5

void meter_start(meter *m, const char *unit, int64_t total_items, int64_t total_bytes, double now)
{
    *m = (meter){.unit = unit, .total_items = total_items, .total_bytes = total_bytes, .began = now};
}

void meter_add(meter *m, int64_t items, int64_t bytes)
{
    m->items += items;
    m->bytes += bytes;
}

static int percent_of(int64_t done, int64_t total)
{
    if (total == 0)
        return 100;
    int64_t p = done >= total ? 100 : done * 100 / total;
    return (int)(p < 0 ? 0 : p);
}

int meter_percent(const meter *m)
{
    if (m->total_items >= 0)
        return percent_of(m->items, m->total_items);
    if (m->total_bytes > 0)
        return percent_of(m->bytes, m->total_bytes);
    return -1;
}

/* The share done, 0..1, by whichever total is known (bytes first: a
 * picture's size says more about the time it takes than its count). */
static double done_share(const meter *m)
{
    if (m->total_bytes > 0)
        return (double)m->bytes / (double)m->total_bytes;
    if (m->total_items > 0)
        return (double)m->items / (double)m->total_items;
    return -1;
}

double meter_left(const meter *m, double now)
{
    double took = now - m->began, share = done_share(m);
    if (took < METER_SETTLE_S || share <= 0)
        return -1;
    if (share >= 1)
        return 0;
    return took * (1 - share) / share;
}

/* Appends to buf at *at, keeping *at within cap (a sticky cut). */
__attribute__((format(printf, 4, 5))) static void put(char *buf, size_t cap, size_t *at,
                                                   const char *fmt, ...)
{
    if (*at >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *at, cap - *at, fmt, ap);
    va_end(ap);
    *at = n < 0 ? cap : *at + (size_t)n;
}

/* 1234567 -> "1,234,567". */
static void put_count(char *buf, size_t cap, size_t *at, int64_t v)
{
    if (v < 0) {
        put(buf, cap, at, "-");
        v = -v;
    }
    if (v >= 1000) {
        put_count(buf, cap, at, v / 1000);
        put(buf, cap, at, ",%03d", (int)(v % 1000));
    } else {
        put(buf, cap, at, "%d", (int)v);
    }
}

static void put_mib(char *buf, size_t cap, size_t *at, int64_t bytes)
{
    put(buf, cap, at, "%.1f", (double)bytes / (1024.0 * 1024.0));
}

static void put_amounts(const meter *m, char *buf, size_t cap, size_t *at)
{
    put_count(buf, cap, at, m->items);
    if (m->total_items >= 0) {
        put(buf, cap, at, "/");
        put_count(buf, cap, at, m->total_items);
    }
    put(buf, cap, at, " %s", m->unit ? m->unit : "items");
    if (m->bytes == 0 && m->total_bytes <= 0)
        return;
    put(buf, cap, at, ", ");
    put_mib(buf, cap, at, m->bytes);
    if (m->total_bytes >= 0) {
        put(buf, cap, at, "/");
        put_mib(buf, cap, at, m->total_bytes);
    }
    put(buf, cap, at, " MiB");
}

static void put_rate(const meter *m, double took, char *buf, size_t cap, size_t *at)
{
    if (took < METER_SETTLE_S)
        return;
    if (m->bytes > 0) {
        put(buf, cap, at, ", ");
        put_mib(buf, cap, at, (int64_t)((double)m->bytes / took));
        put(buf, cap, at, " MiB/s");
    } else {
        put(buf, cap, at, ", %.0f %s/s", (double)m->items / took, m->unit ? m->unit : "items");
    }
}

void meter_format(const meter *m, double now, char *buf, size_t cap)
{
    size_t at = 0;
    if (cap == 0)
        return;
    buf[0] = '\0';
    put_amounts(m, buf, cap, &at);
    put_rate(m, now - m->began, buf, cap, &at);
    double left = meter_left(m, now);
    if (left > 0) {
        long s = (long)(left + 0.5);
        if (s >= 3600)
            put(buf, cap, &at, ", %ld:%02ld:%02ld left", s / 3600, s / 60 % 60, s % 60);
        else
            put(buf, cap, &at, ", %ld:%02ld left", s / 60, s % 60);
    }
}
