/*
 * meter.h — how far a long job is: items and bytes done out of a total,
 * the rate since it began and the time left, and one line that says so.
 *
 * Shared by the command line's progress display (`crmblob migrate`,
 * rekey) and by jobs that report progress to their callers. A meter is
 * plain data: the caller passes the time (seconds on any monotonic
 * clock), so a meter is deterministic to test and costs nothing to
 * update. Totals may be unknown (negative): the line then says what is
 * done and how fast, without a percentage or time left.
 */
#ifndef CB_METER_H
#define CB_METER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *unit;    /* what an item is, plural ("records", "pictures") */
    int64_t items, total_items; /* total < 0: unknown */
    int64_t bytes, total_bytes; /* total < 0: unknown; both 0: bytes not shown */
    double began;        /* seconds, the caller's monotonic clock */
} meter;

void meter_start(meter *m, const char *unit, int64_t total_items, int64_t total_bytes, double now);
void meter_add(meter *m, int64_t items, int64_t bytes);
/* 0-100 from the items (the bytes when items have no total); -1: unknown. */
int meter_percent(const meter *m);
/* Seconds left at the rate so far; -1 when it cannot be told yet. */
double meter_left(const meter *m, double now);
/* "1,234/5,000 records, 120.5/400.0 MiB, 12.3 MiB/s, 0:42 left" into
 * buf[0, cap), always NUL-terminated (cut short when cap is too small). */
void meter_format(const meter *m, double now, char *buf, size_t cap);

#endif
