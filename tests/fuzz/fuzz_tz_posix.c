/*
 * fuzz_tz_posix.c — the POSIX TZ rule parser ("CET-1CEST,M3.5.0,M10.5.0/3",
 * "<+0545>-5:45", "EST5EDT"), tz_posix_parse(), and tz_posix_offset().
 *
 * Input: the rule text (its length, not a NUL, ends it).
 *
 * Invariants beyond "no crash":
 *  - accepted offsets lie within -24:59:59 .. +25:59:59 (RFC 8536);
 *  - a rule without DST has std_off == dst_off; with DST, both rule dates
 *    are well formed (kind J/N/M with their ranges, time within +-167:59:59,
 *    text as written, NUL-terminated and shorter than TZ_PATTERN_MAX);
 *  - tz_posix_offset gives std_off or dst_off at any instant (int64 ends
 *    included), dst_off exactly when it says isdst;
 *  - parsing is by length: the same text followed by junk the length
 *    excludes parses the same.
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* RFC 8536 §3.3.1: rule times have hours -167..167, then minutes and seconds. */
#define HMS_MAX (167 * 3600 + 59 * 60 + 59)

static void check_date(const tz_posix_date *d)
{
    size_t n = strnlen(d->text, TZ_PATTERN_MAX);
    assert(n > 0 && n < TZ_PATTERN_MAX);
    assert(d->secs >= -HMS_MAX && d->secs <= HMS_MAX);
    switch (d->kind) {
    case 'J':
        assert(d->day >= 1 && d->day <= 365);
        break;
    case 'N':
        assert(d->day >= 0 && d->day <= 365);
        break;
    case 'M':
        assert(d->month >= 1 && d->month <= 12 && d->week >= 1 && d->week <= 5);
        assert(d->day >= 0 && d->day <= 6);
        break;
    default:
        assert(!"bad kind");
    }
}

static bool same_date(const tz_posix_date *a, const tz_posix_date *b)
{
    return a->kind == b->kind && a->day == b->day && a->month == b->month && a->week == b->week &&
           a->secs == b->secs && strcmp(a->text, b->text) == 0;
}

static bool same(const tz_posix *a, const tz_posix *b)
{
    return a->std_off == b->std_off && a->dst_off == b->dst_off && a->has_dst == b->has_dst &&
           (!a->has_dst || (same_date(&a->start, &b->start) && same_date(&a->end, &b->end)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tz_posix p;
    if (!tz_posix_parse((const char *)data, size, &p))
        return 0;
    assert(p.std_off >= -89999 && p.std_off <= 93599);
    assert(p.dst_off >= -89999 && p.dst_off <= 93599);
    if (p.has_dst) {
        check_date(&p.start);
        check_date(&p.end);
    } else {
        assert(p.std_off == p.dst_off);
    }
    static const int64_t at[] = {
        INT64_MIN,  -(INT64_C(1) << 40), -86400 * 365,       -1,       0, 1711846800,
        1729990800, 1800000000,          (INT64_C(1) << 40), INT64_MAX};
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        bool dst;
        int32_t off = tz_posix_offset(&p, at[i], &dst);
        assert(off == (dst ? p.dst_off : p.std_off));
        assert(p.has_dst || !dst);
    }
    /* the length, not a terminator, ends the text */
    char *padded = malloc(size + 4);
    memcpy(padded, data, size);
    memcpy(padded + size, ",X9\0", 4);
    tz_posix q;
    assert(tz_posix_parse(padded, size, &q) && same(&p, &q));
    free(padded);
    return 0;
}
