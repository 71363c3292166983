/*
 * fuzz_date.c — the date parsers: text_parse_date (ISO 8601, carriers) and
 * text_parse_http_date (IMF-fixdate, If-Modified-Since and friends).
 *
 * Input: the date text (up to the first NUL). Its first ten bytes also
 * make an instant and a UTC offset for the writer → reader checks.
 *
 * Invariants beyond "no crash" (for instants in years 0000..9999, which
 * the writers can express in four digits; 0001..9999 for tz_format_date,
 * which clamps to .NET's DateTime range):
 *  - parse → write → parse: what text_parse_date accepts, written by
 *    text_format_date, reads back to the same millisecond; likewise
 *    text_parse_http_date → text_format_http_date, whose instants are
 *    whole seconds;
 *  - write → parse: text_format_date(ms) and tz_format_date(ms, offset)
 *    (local time with an explicit offset, as SO-TimeZone answers are
 *    written) both read back to ms.
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/text.h"
#include "core/tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MIN_MS INT64_C(-62167219200000)    /* 0000-01-01T00:00:00Z */
#define MAX_MS INT64_C(253402300799999)    /* 9999-12-31T23:59:59.999Z */
#define MIN_TZ_MS INT64_C(-62135596800000) /* 0001-01-01: tz_format_date clamps there */

static bool in_range(int64_t ms)
{
    return ms >= MIN_MS && ms <= MAX_MS;
}

static void round_trip(int64_t ms)
{
    char out[TEXT_DATE_MAX];
    int64_t back = 0;
    text_format_date(ms, out);
    assert(text_parse_date(out, &back) && back == ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = strndup((const char *)data, size);
    int64_t ms;
    if (text_parse_date(s, &ms) && in_range(ms))
        round_trip(ms);
    if (text_parse_http_date(s, &ms) && in_range(ms)) {
        char out[TEXT_DATE_MAX];
        int64_t back = 0;
        assert(ms % 1000 == 0);
        text_format_http_date(ms, out);
        assert(text_parse_http_date(out, &back) && back == ms);
    }
    free(s);

    if (size >= 10) {
        uint64_t u = 0;
        for (int i = 0; i < 8; i++)
            u = u << 8 | data[i];
        int64_t span = MAX_MS - MIN_TZ_MS - 2 * 86400000;
        ms = MIN_TZ_MS + 86400000 + (int64_t)(u % (uint64_t)span); /* a day's margin for offsets */
        int off = (int)((data[8] << 8 | data[9]) % (2 * 1439 + 1)) - 1439; /* -23:59..+23:59 */
        round_trip(ms);
        char out[TEXT_DATE_MAX];
        int64_t back = 0;
        tz_format_date(ms, off, out);
        assert(text_parse_date(out, &back) && back == ms);
    }
    return 0;
}
