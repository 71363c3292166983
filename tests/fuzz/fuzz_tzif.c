/*
 * fuzz_tzif.c — the TZif parser (RFC 8536, versions 1 to 4, with the POSIX
 * TZ footer), tz_rules_parse(), and offsets looked up in what it accepts.
 *
 * Invariants beyond "no crash":
 *  - an accepted file answers tz_rules_offset() at any instant (the epoch,
 *    the ends of int64, instants taken from the input) with an offset
 *    within RFC 8536's -24:59:59 .. +25:59:59, so that tz_format_date's
 *    limit of 26 h holds for every offset crmblob writes;
 *  - lookups are pure: the same instant gives the same offset twice.
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "core/tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_at(const tz_rules *r, int64_t t)
{
    bool dst1, dst2;
    int32_t off = tz_rules_offset(r, t, &dst1);
    assert(off >= -89999 && off <= 93599);
    assert(tz_rules_offset(r, t, &dst2) == off && dst1 == dst2);
    assert(tz_rules_offset(r, t, NULL) == off);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tz_rules *r = NULL;
    if (tz_rules_parse(data, size, &r) != CB_EOK)
        return 0;
    assert(r != NULL);
    static const int64_t fixed[] = {
        INT64_MIN,  INT64_MIN + 1, -(INT64_C(1) << 59), -2208988800,   -1,       0, 1,
        1800000000, INT32_MAX,     (INT64_C(1) << 59),  INT64_MAX - 1, INT64_MAX};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        check_at(r, fixed[i]);
    /* instants from the input's own bytes: near its transition times */
    for (size_t i = 0; i + 8 <= size && i < 64 * 8; i += 8) {
        int64_t t = 0;
        for (int k = 0; k < 8; k++)
            t = (int64_t)((uint64_t)t << 8 | data[i + k]);
        check_at(r, t);
        check_at(r, (int32_t)(uint32_t)t); /* the v1 block's 32-bit times */
    }
    tz_rules_free(r);
    return 0;
}
