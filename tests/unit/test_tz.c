/*
 * test_tz.c — unit tests of src/core/tz: the TZif and POSIX TZ parsers,
 * offsets at known instants (from Python's zoneinfo on the same tzdata),
 * the year rules of TimeZoneData, tz_format_date, the SO-TimeZone header
 * and the built-in location table.
 *
 * The zone tests read the installed tzdata (/usr/share/zoneinfo, Debian
 * package tzdata), as the server does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"
#include "core/tz.h"

#define ZONEINFO "/usr/share/zoneinfo"

/* ---- helpers ------------------------------------------------------------- */

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static tz_rules *load(const char *iana)
{
    char path[256];
    size_t len;
    snprintf(path, sizeof path, "%s/%s", ZONEINFO, iana);
    unsigned char *data = slurp(path, &len);
    tz_rules *r = NULL;
    assert_int_equal(tz_rules_parse(data, len, &r), CB_EOK);
    free(data);
    return r;
}

/* The file's footer TZ string (its last line). */
static void footer_of(const char *iana, char *out, size_t cap)
{
    char path[256];
    size_t len;
    snprintf(path, sizeof path, "%s/%s", ZONEINFO, iana);
    unsigned char *data = slurp(path, &len);
    assert_true(len > 2 && data[len - 1] == '\n');
    size_t start = len - 1;
    while (start > 0 && data[start - 1] != '\n')
        start--;
    assert_true(len - 1 - start < cap);
    memcpy(out, data + start, len - 1 - start);
    out[len - 1 - start] = '\0';
    free(data);
}

static int32_t off_at(const tz_rules *r, int64_t ms, bool *isdst)
{
    return tz_rules_offset(r, ms / 1000, isdst);
}

/* 2026-01-15T12:00Z, 2026-07-15T12:00Z, 2040-01-15T12:00Z, 2040-07-15T12:00Z */
#define JAN26 INT64_C(1768478400000)
#define JUL26 INT64_C(1784116800000)
#define JAN40 INT64_C(2210241600000)
#define JUL40 INT64_C(2225966400000)

static void expect_offsets(const char *iana, int32_t winter, int32_t summer)
{
    tz_rules *r = load(iana);
    assert_int_equal(off_at(r, JAN26, NULL), winter);
    assert_int_equal(off_at(r, JUL26, NULL), summer);
    /* after 2037, where zic stops writing transitions: the footer answers */
    assert_int_equal(off_at(r, JAN40, NULL), winter);
    assert_int_equal(off_at(r, JUL40, NULL), summer);
    tz_rules_free(r);
}

/* A change at ms: one second before has `from`, the instant itself `to`. */
static void expect_switch(const tz_rules *r, int64_t ms, int32_t from, int32_t to)
{
    assert_int_equal(off_at(r, ms - 1000, NULL), from);
    assert_int_equal(off_at(r, ms, NULL), to);
}

/* ---- TZif files of tzdata ------------------------------------------------ */

static void test_tzif_offsets(void **state)
{
    (void)state;
    expect_offsets("Europe/Oslo", 3600, 7200);
    expect_offsets("America/New_York", -18000, -14400);
    expect_offsets("Australia/Adelaide", 37800, 34200); /* +10:30 in January */
    expect_offsets("Asia/Kolkata", 19800, 19800);
    expect_offsets("Asia/Kathmandu", 20700, 20700);
    expect_offsets("America/St_Johns", -12600, -9000);
    expect_offsets("Etc/UTC", 0, 0);
}

static void test_tzif_dst_flags(void **state)
{
    (void)state;
    bool dst = true;
    tz_rules *r = load("Europe/Oslo");
    off_at(r, JAN26, &dst);
    assert_false(dst);
    off_at(r, JUL40, &dst);
    assert_true(dst);
    tz_rules_free(r);
    r = load("Australia/Adelaide");
    off_at(r, JAN26, &dst);
    assert_true(dst);
    off_at(r, JUL26, &dst);
    assert_false(dst);
    tz_rules_free(r);
}

static void test_tzif_switches_2026(void **state)
{
    (void)state;
    tz_rules *r = load("Europe/Oslo");
    expect_switch(r, INT64_C(1774746000000), 3600, 7200); /* 2026-03-29T01:00Z */
    expect_switch(r, INT64_C(1792890000000), 7200, 3600); /* 2026-10-25T01:00Z */
    tz_rules_free(r);
    r = load("America/New_York");
    expect_switch(r, INT64_C(1772953200000), -18000, -14400); /* 2026-03-08T07:00Z */
    expect_switch(r, INT64_C(1793512800000), -14400, -18000); /* 2026-11-01T06:00Z */
    tz_rules_free(r);
    r = load("Australia/Adelaide");
    expect_switch(r, INT64_C(1775320200000), 37800, 34200); /* 2026-04-04T16:30Z */
    expect_switch(r, INT64_C(1791045000000), 34200, 37800); /* 2026-10-03T16:30Z */
    tz_rules_free(r);
    r = load("America/St_Johns");
    expect_switch(r, INT64_C(1772947800000), -12600, -9000); /* 2026-03-08T05:30Z */
    expect_switch(r, INT64_C(1793507400000), -9000, -12600); /* 2026-11-01T04:30Z */
    tz_rules_free(r);
}

/* 2040 lies past the files' transitions: only the footer rule knows. */
static void test_tzif_switches_2040(void **state)
{
    (void)state;
    tz_rules *r = load("Europe/Oslo");
    expect_switch(r, INT64_C(2216250000000), 3600, 7200); /* 2040-03-25T01:00Z */
    expect_switch(r, INT64_C(2234998800000), 7200, 3600); /* 2040-10-28T01:00Z */
    tz_rules_free(r);
    r = load("America/New_York");
    expect_switch(r, INT64_C(2215062000000), -18000, -14400); /* 2040-03-11T07:00Z */
    expect_switch(r, INT64_C(2235621600000), -14400, -18000); /* 2040-11-04T06:00Z */
    tz_rules_free(r);
    r = load("Australia/Adelaide");
    expect_switch(r, INT64_C(2216824200000), 37800, 34200); /* 2040-03-31T16:30Z */
    expect_switch(r, INT64_C(2233153800000), 34200, 37800); /* 2040-10-06T16:30Z */
    tz_rules_free(r);
}

/* tzdata's transition table (to 2037) and its own footer rule must agree
 * on every instant where both apply: a check of the POSIX evaluator
 * against zic on awkward rules (26:00, negative times, 45-minute zones,
 * southern hemisphere, negative DST). */
static void test_tzif_table_matches_footer(void **state)
{
    (void)state;
    static const char *const zs[] = {
        "Europe/Oslo",     "America/New_York",    "Australia/Adelaide", "America/St_Johns",
        "Asia/Jerusalem",  "America/Nuuk",        "America/Santiago",   "Pacific/Auckland",
        "Pacific/Chatham", "Australia/Lord_Howe", "Europe/Dublin",      "Africa/Cairo",
    };
    for (size_t i = 0; i < sizeof zs / sizeof zs[0]; i++) {
        char footer[128];
        tz_posix p;
        footer_of(zs[i], footer, sizeof footer);
        assert_true(tz_posix_parse(footer, strlen(footer), &p));
        tz_rules *r = load(zs[i]);
        /* 2026-01-01 .. 2037-06-01 every 3h07m */
        for (int64_t t = INT64_C(1767225600); t < INT64_C(2127600000); t += 11220) {
            bool d1, d2;
            int32_t a = tz_rules_offset(r, t, &d1), b = tz_posix_offset(&p, t, &d2);
            if (a != b || d1 != d2)
                fail_msg("%s at %lld: table %d/%d, footer %d/%d", zs[i], (long long)t, a, d1, b,
                         d2);
        }
        tz_rules_free(r);
    }
}

/* ---- synthetic TZif files ------------------------------------------------ */

typedef struct {
    unsigned char b[1024];
    size_t n;
} wbuf;

static void put(wbuf *w, const void *p, size_t n)
{
    assert_true(w->n + n <= sizeof w->b);
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void put32(wbuf *w, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    put(w, b, 4);
}

static void put64(wbuf *w, int64_t v)
{
    put32(w, (uint32_t)((uint64_t)v >> 32));
    put32(w, (uint32_t)v);
}

static void put_header(wbuf *w, unsigned char version, uint32_t timecnt, uint32_t typecnt,
                       uint32_t charcnt)
{
    static const unsigned char zero[15];
    put(w, "TZif", 4);
    put(w, &version, 1);
    put(w, zero, 15);
    put32(w, 0); /* isutcnt */
    put32(w, 0); /* isstdcnt */
    put32(w, 0); /* leapcnt */
    put32(w, timecnt);
    put32(w, typecnt);
    put32(w, charcnt);
}

static void put_type(wbuf *w, int32_t utoff, unsigned char isdst, unsigned char idx)
{
    put32(w, (uint32_t)utoff);
    put(w, &isdst, 1);
    put(w, &idx, 1);
}

/* v1: +01 until 1e9, +02 (DST) until 1.1e9, then +01 again; no footer. */
static void build_v1(wbuf *w)
{
    w->n = 0;
    put_header(w, 0, 2, 2, 8);
    put32(w, 1000000000);
    put32(w, 1100000000);
    put(w, "\x01\x00", 2);
    put_type(w, 3600, 0, 0);
    put_type(w, 7200, 1, 4);
    put(w, "AAA\0BBB\0", 8);
}

/* v2 whose 32-bit block is empty and whose 64-bit block has one
 * transition beyond 2038, followed by a footer. */
static void build_v2(wbuf *w, const char *footer)
{
    w->n = 0;
    put_header(w, '2', 0, 1, 4);
    put_type(w, 0, 0, 0);
    put(w, "UTC\0", 4);
    put_header(w, '2', 1, 2, 8);
    put64(w, INT64_C(5000000000));
    put(w, "\x01", 1);
    put_type(w, -18000, 0, 0);
    put_type(w, 19800, 0, 4);
    put(w, "AAA\0BBB\0", 8);
    put(w, footer, strlen(footer));
}

static void test_tzif_v1_only(void **state)
{
    (void)state;
    wbuf w;
    tz_rules *r;
    build_v1(&w);
    assert_int_equal(tz_rules_parse(w.b, w.n, &r), CB_EOK);
    bool dst;
    assert_int_equal(tz_rules_offset(r, 0, &dst), 3600); /* type 0 before the first */
    assert_false(dst);
    assert_int_equal(tz_rules_offset(r, 999999999, NULL), 3600);
    assert_int_equal(tz_rules_offset(r, 1000000000, &dst), 7200);
    assert_true(dst);
    assert_int_equal(tz_rules_offset(r, 1099999999, NULL), 7200);
    assert_int_equal(tz_rules_offset(r, 1100000000, NULL), 3600);
    assert_int_equal(tz_rules_offset(r, INT64_C(4000000000), NULL), 3600); /* last type */
    tz_rules_free(r);
}

static void test_tzif_v2_block_and_footer(void **state)
{
    (void)state;
    wbuf w;
    tz_rules *r;
    build_v2(&w, "\n<+0530>-5:30\n");
    assert_int_equal(tz_rules_parse(w.b, w.n, &r), CB_EOK);
    /* the 64-bit block is the one read: -05 before 2128, then the footer */
    assert_int_equal(tz_rules_offset(r, 0, NULL), -18000);
    assert_int_equal(tz_rules_offset(r, INT64_C(4999999999), NULL), -18000);
    assert_int_equal(tz_rules_offset(r, INT64_C(5000000000), NULL), 19800);
    assert_int_equal(tz_rules_offset(r, INT64_MAX, NULL), 19800);
    assert_int_equal(tz_rules_offset(r, INT64_MIN, NULL), -18000);
    tz_rules_free(r);

    build_v2(&w, "\n\n"); /* empty footer: the last type goes on */
    assert_int_equal(tz_rules_parse(w.b, w.n, &r), CB_EOK);
    assert_int_equal(tz_rules_offset(r, INT64_C(6000000000), NULL), 19800);
    tz_rules_free(r);
}

static void test_tzif_footer_only(void **state)
{
    (void)state;
    wbuf w = {.n = 0};
    tz_rules *r;
    for (int block = 0; block < 2; block++) {
        put_header(&w, '3', 0, 1, 4);
        put_type(&w, 3600, 0, 0);
        put(&w, "CET\0", 4);
    }
    put(&w, "\nCET-1CEST,M3.5.0,M10.5.0/3\n", 28);
    assert_int_equal(tz_rules_parse(w.b, w.n, &r), CB_EOK);
    /* no transitions at all: the footer governs every instant */
    expect_switch(r, INT64_C(1774746000000), 3600, 7200);
    expect_switch(r, INT64_C(2234998800000), 7200, 3600);
    tz_rules_free(r);
}

static void expect_bad(const wbuf *w)
{
    tz_rules *r = NULL;
    assert_int_equal(tz_rules_parse(w->b, w->n, &r), CB_EBADREQ);
    assert_null(r);
}

static void test_tzif_malformed(void **state)
{
    (void)state;
    wbuf w;
    build_v1(&w);
    w.b[0] = 'X'; /* magic */
    expect_bad(&w);
    build_v1(&w);
    w.b[4] = '1'; /* no such version */
    expect_bad(&w);
    build_v1(&w);
    w.n--; /* truncated */
    expect_bad(&w);
    build_v1(&w);
    w.b[44 + 8] = 2; /* type index out of range */
    expect_bad(&w);
    build_v1(&w);
    memcpy(w.b + 44 + 4, w.b + 44, 4); /* not ascending */
    expect_bad(&w);
    build_v1(&w);
    w.b[44 + 10 + 4] = 2; /* isdst neither 0 nor 1 */
    expect_bad(&w);
    build_v1(&w);
    w.b[44 + 10 + 5] = 8; /* designation beyond the characters */
    expect_bad(&w);
    build_v1(&w);
    memcpy(w.b + 44 + 10, "\x7f\xff\xff\xff", 4); /* absurd offset */
    expect_bad(&w);
    build_v1(&w);
    w.b[39] = 0; /* typecnt 0 */
    expect_bad(&w);
    build_v2(&w, "\nCET-1CEST,M3\n"); /* footer not a TZ string */
    expect_bad(&w);
    build_v2(&w, "\nCET-1"); /* footer not closed */
    expect_bad(&w);
    build_v2(&w, "CET-1\n"); /* footer not opened */
    expect_bad(&w);
    expect_bad(&(wbuf){.n = 0});
}

/* Every prefix of a real file parses or fails cleanly (ASan watches). */
static void test_tzif_prefixes(void **state)
{
    (void)state;
    size_t len;
    unsigned char *data = slurp(ZONEINFO "/Europe/Oslo", &len);
    size_t ok = 0;
    for (size_t n = 0; n < len; n++) {
        tz_rules *r = NULL;
        if (tz_rules_parse(data, n, &r) == CB_EOK) {
            ok++;
            tz_rules_free(r);
        }
    }
    assert_true(ok <= 1); /* only the one that stops right before the footer */
    free(data);
}

/* ---- POSIX TZ strings ---------------------------------------------------- */

static tz_posix posix(const char *s)
{
    tz_posix p;
    if (!tz_posix_parse(s, strlen(s), &p))
        fail_msg("'%s' refused", s);
    return p;
}

static void test_posix_fields(void **state)
{
    (void)state;
    tz_posix p = posix("CET-1CEST,M3.5.0,M10.5.0/3");
    assert_int_equal(p.std_off, 3600);
    assert_int_equal(p.dst_off, 7200);
    assert_true(p.has_dst);
    assert_int_equal(p.start.kind, 'M');
    assert_int_equal(p.start.month, 3);
    assert_int_equal(p.start.week, 5);
    assert_int_equal(p.start.day, 0);
    assert_int_equal(p.start.secs, 7200); /* default 02:00 */
    assert_int_equal(p.end.secs, 10800);
    assert_string_equal(p.start.text, "M3.5.0");
    assert_string_equal(p.end.text, "M10.5.0/3");

    p = posix("<+0545>-5:45");
    assert_int_equal(p.std_off, 20700);
    assert_false(p.has_dst);
    assert_int_equal(tz_posix_offset(&p, JUL26 / 1000, NULL), 20700);

    p = posix("<-03>3<-02>,M3.5.0/-2,M10.5.0/-1");
    assert_int_equal(p.std_off, -10800);
    assert_int_equal(p.dst_off, -7200); /* default: one hour ahead */
    assert_int_equal(p.start.secs, -7200);

    p = posix("EST5EDT"); /* no rules: the US ones */
    assert_string_equal(p.start.text, "M3.2.0");
    assert_string_equal(p.end.text, "M11.1.0");
    assert_int_equal(tz_posix_offset(&p, JUL26 / 1000, NULL), -14400);

    p = posix("<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45");
    assert_int_equal(p.std_off, 45900);
    assert_int_equal(p.end.secs, 13500);
    p = posix("AAA+1:02:03BBB-4:05:06,J1/167,J365/-167:59:59");
    assert_int_equal(p.std_off, -3723);
    assert_int_equal(p.dst_off, 14706);
    assert_int_equal(p.end.secs, -(167 * 3600 + 59 * 60 + 59));
}

/* Southern hemisphere: daylight from October to April, across New Year. */
static void test_posix_southern(void **state)
{
    (void)state;
    tz_posix p = posix("ACST-9:30ACDT,M10.1.0,M4.1.0/3");
    bool dst;
    assert_int_equal(tz_posix_offset(&p, JAN26 / 1000, &dst), 37800);
    assert_true(dst);
    assert_int_equal(tz_posix_offset(&p, JUL26 / 1000, &dst), 34200);
    assert_false(dst);
    /* 2026-04-04T16:30Z and 2026-10-03T16:30Z */
    assert_int_equal(tz_posix_offset(&p, 1775320199, NULL), 37800);
    assert_int_equal(tz_posix_offset(&p, 1775320200, NULL), 34200);
    assert_int_equal(tz_posix_offset(&p, 1791044999, NULL), 34200);
    assert_int_equal(tz_posix_offset(&p, 1791045000, NULL), 37800);
    /* New Year's Eve 2026 is summer */
    assert_int_equal(tz_posix_offset(&p, 1798761600, NULL), 37800);
}

/* Jn never counts 29 February; n does. */
static void test_posix_julian(void **state)
{
    (void)state;
    tz_posix j = posix("AAA0BBB,J60/0,J300/0"), n = posix("AAA0BBB,59/0,300/0");
    /* 2024 is a leap year: J60 = 1 March, 59 = 29 February */
    assert_int_equal(tz_posix_offset(&j, 1709164800, NULL), 0);    /* 2024-02-29 */
    assert_int_equal(tz_posix_offset(&j, 1709251200, NULL), 3600); /* 2024-03-01 */
    assert_int_equal(tz_posix_offset(&n, 1709164799, NULL), 0);
    assert_int_equal(tz_posix_offset(&n, 1709164800, NULL), 3600);
    /* 2023: both are 1 March */
    assert_int_equal(tz_posix_offset(&j, 1677628799, NULL), 0);
    assert_int_equal(tz_posix_offset(&j, 1677628800, NULL), 3600);
    assert_int_equal(tz_posix_offset(&n, 1677542400, NULL), 0); /* 2023-02-28 */
    assert_int_equal(tz_posix_offset(&n, 1677628800, NULL), 3600);
}

/* tzdata's all-year daylight idiom, and Israel's Thursday 26:00. */
static void test_posix_odd_rules(void **state)
{
    (void)state;
    tz_posix p = posix("EST5EDT,0/0,J365/25");
    for (int64_t t = 1767225600 - 86400; t < 1767225600 + 86400; t += 1800)
        assert_int_equal(tz_posix_offset(&p, t, NULL), -14400);
    p = posix("IST-2IDT,M3.4.4/26,M10.5.0");
    /* 2026: Friday 27 March 02:00 local = 00:00Z */
    assert_int_equal(tz_posix_offset(&p, 1774569599, NULL), 7200);
    assert_int_equal(tz_posix_offset(&p, 1774569600, NULL), 10800);
    /* Nuuk: last Sunday of March at -1:00, i.e. Saturday 23:00 local */
    p = posix("<-02>2<-01>,M3.5.0/-1,M10.5.0/0");
    assert_int_equal(tz_posix_offset(&p, 1774746000 - 1, NULL), -7200); /* 2026-03-29T01:00Z */
    assert_int_equal(tz_posix_offset(&p, 1774746000, NULL), -3600);
}

static void test_posix_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "CE-1",
        "CET",
        "CET-",
        "CET-1 ",
        "CET25",
        "CET-1:60",
        "CET-1CEST,M3.5.0",
        "CET-1CEST,M13.1.0,M10.5.0",
        "CET-1CEST,M3.6.0,M10.5.0",
        "CET-1CEST,M3.0.0,M10.5.0",
        "CET-1CEST,M3.5.7,M10.5.0",
        "CET-1CEST,M3.5.0,M10.5.0/168",
        "CET-1CEST,J0,J300",
        "CET-1CEST,J366,J300",
        "CET-1CEST,366,300",
        "CET-1CEST,M3.5.0,M10.5.0,",
        "CET-1CEST;M3.5.0,M10.5.0",
        "<+0545",
        "<ab>1",
        "<a b>1",
        "1CET",
        "CET-0001",
        "CET-1CEST,M003.5.0,M10.5.0",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tz_posix p;
        if (tz_posix_parse(bad[i], strlen(bad[i]), &p))
            fail_msg("'%s' accepted", bad[i]);
    }
    tz_posix p;
    assert_false(tz_posix_parse("CET-1\0X", 7, &p)); /* length, not NUL, ends it */
    assert_true(tz_posix_parse("CET-1XYZ", 5, &p));
}

/* ---- locations ----------------------------------------------------------- */

static int setup_zones(void **state)
{
    (void)state;
    return tz_init(NULL) == CB_EOK ? 0 : -1;
}

static int teardown_zones(void **state)
{
    (void)state;
    tz_shutdown();
    return 0;
}

static bool code_shape(const char *c)
{
    size_t n = strlen(c), i = 0;
    while (i < n && c[i] >= 'A' && c[i] <= 'Z')
        i++;
    if (i < 2 || i > 3)
        return false;
    if (i == n)
        return true;
    size_t dash = i++;
    while (i < n && c[i] >= 'A' && c[i] <= 'Z')
        i++;
    return i == n && n - dash - 1 >= 1 && n - dash - 1 <= 3;
}

static void test_table_loads_and_is_unique(void **state)
{
    (void)state;
    size_t n = tz_count();
    assert_int_equal(n, tz_table_size()); /* every row loaded on this machine */
    assert_true(n >= 200);
    assert_string_equal(tz_code(tz_at(0)), "UTC");
    assert_ptr_equal(tz_utc(), tz_at(0));
    for (size_t i = 0; i < n; i++) {
        const tz_zone *a = tz_at(i);
        if (!code_shape(tz_code(a)))
            fail_msg("code '%s' has the wrong shape", tz_code(a));
        assert_true(tz_id(a) > 0);
        assert_true(tz_iso(a) >= 0 && tz_iso(a) <= 999);
        assert_true(*tz_name(a) != '\0' && *tz_iana(a) != '\0');
        assert_ptr_equal(tz_find(tz_code(a)), a);
        for (size_t k = i + 1; k < n; k++) {
            const tz_zone *b = tz_at(k);
            if (tz_id(a) == tz_id(b) || strcasecmp(tz_code(a), tz_code(b)) == 0)
                fail_msg("rows %s and %s share an id or code", tz_code(a), tz_code(b));
        }
    }
}

static void test_find_and_offsets(void **state)
{
    (void)state;
    const tz_zone *z = tz_find("us-ny");
    assert_non_null(z);
    assert_string_equal(tz_iana(z), "America/New_York");
    assert_string_equal(tz_name(z), "United States - New York");
    assert_int_equal(tz_iso(z), 840);
    assert_int_equal(tz_offset_minutes(z, JAN26), -300);
    assert_int_equal(tz_offset_minutes(z, JUL40), -240);
    z = tz_find("NO");
    assert_string_equal(tz_cities(z), "Oslo");
    assert_int_equal(tz_iso(z), 578);
    assert_int_equal(tz_offset_minutes(z, JUL26), 120);
    assert_int_equal(tz_offset_minutes(tz_find("AU-SA"), JAN26), 630);
    assert_int_equal(tz_offset_minutes(tz_find("NP"), JAN26), 345);
    assert_int_equal(tz_offset_minutes(tz_find("CA-NL"), JAN26), -210);
    assert_int_equal(tz_offset_minutes(tz_find("UTC"), JUL26), 0);
    assert_null(tz_find("XX"));
    assert_null(tz_find(""));
    assert_null(tz_find(NULL));
    /* a negative instant is floored to its second, not truncated */
    assert_int_equal(tz_offset_minutes(tz_find("NO"), -1), 60);
}

static void expect_rule(const tz_rule *r, int sd, int sm, int ed, int em, int off, const char *sp,
                        const char *ep)
{
    assert_int_equal(r->start_day, sd);
    assert_int_equal(r->start_month, sm);
    assert_int_equal(r->end_day, ed);
    assert_int_equal(r->end_month, em);
    assert_int_equal(r->offset_minutes, off);
    assert_string_equal(r->start_pattern, sp);
    assert_string_equal(r->end_pattern, ep);
}

static void test_year_rules(void **state)
{
    (void)state;
    tz_year y;
    tz_year_rules(tz_find("NO"), 2026, &y);
    assert_true(y.has_dst);
    expect_rule(&y.dst, 29, 3, 25, 10, 120, "M3.5.0", "M10.5.0/3");
    expect_rule(&y.std, 25, 10, 28, 3, 60, "M10.5.0/3", "M3.5.0"); /* ends March 2027 */
    tz_year_rules(tz_find("AU-SA"), 2026, &y);
    expect_rule(&y.std, 5, 4, 4, 10, 570, "M4.1.0/3", "M10.1.0");
    expect_rule(&y.dst, 4, 10, 4, 4, 630, "M10.1.0", "M4.1.0/3");
    tz_year_rules(tz_find("IN"), 2026, &y);
    assert_false(y.has_dst);
    expect_rule(&y.std, 1, 1, 31, 12, 330, "", "");
    tz_year_rules(tz_find("UTC"), 2026, &y);
    assert_false(y.has_dst);
    expect_rule(&y.std, 1, 1, 31, 12, 0, "", "");
    /* Ireland's tzdata has winter as "negative DST": still GMT standard */
    tz_year_rules(tz_find("IE"), 2026, &y);
    expect_rule(&y.std, 25, 10, 28, 3, 0, "M10.5.0", "M3.5.0/1");
    expect_rule(&y.dst, 29, 3, 25, 10, 60, "M3.5.0/1", "M10.5.0");
    /* 2045, from the footer alone */
    tz_year_rules(tz_find("US-NY"), 2045, &y);
    expect_rule(&y.dst, 12, 3, 5, 11, -240, "M3.2.0", "M11.1.0");
}

static void test_init_partial_and_missing(void **state)
{
    (void)state;
    char dir[] = "/tmp/crmblob-tz-XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/Europe", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/America", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/Europe/Oslo", dir);
    assert_int_equal(symlink(ZONEINFO "/Europe/Oslo", path), 0);
    snprintf(path, sizeof path, "%s/America/New_York", dir);
    FILE *f = fopen(path, "w");
    fputs("not a TZif file", f);
    fclose(f);

    log_set_level(LOG_ERROR); /* one warning per missing row otherwise */
    assert_int_equal(tz_init(dir), CB_EOK);
    assert_int_equal(tz_count(), 2); /* UTC (kept without its file) and NO */
    assert_int_equal(tz_offset_minutes(tz_find("UTC"), JUL26), 0);
    assert_int_equal(tz_offset_minutes(tz_find("no"), JUL26), 120);
    assert_null(tz_find("US-NY"));

    assert_int_equal(tz_init("/nonexistent/zoneinfo"), CB_EINTERNAL);
    assert_int_equal(tz_count(), 1);
    assert_non_null(tz_find("utc"));
    assert_null(tz_find("NO"));
    log_set_level(LOG_INFO);

    unlink(path);
    snprintf(path, sizeof path, "%s/Europe/Oslo", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/Europe", dir);
    rmdir(path);
    snprintf(path, sizeof path, "%s/America", dir);
    rmdir(path);
    rmdir(dir);
    assert_int_equal(tz_init(NULL), CB_EOK); /* back for the other tests */
}

/* ---- SO-TimeZone and dates ----------------------------------------------- */

static void expect_header(const char *h, const char *code, bool offset)
{
    const tz_zone *z = NULL;
    bool inc = !offset;
    if (!tz_parse_header(h, &z, &inc))
        fail_msg("header '%s' refused", h);
    assert_string_equal(tz_code(z), code);
    assert_int_equal(inc, offset);
}

static void test_header(void **state)
{
    (void)state;
    expect_header("NO", "NO", false);
    expect_header("no, includeTZOffset", "NO", true);
    expect_header("US-NY,includetzoffset", "US-NY", true);
    expect_header("  utc  ,  INCLUDETZOFFSET  ", "UTC", true);
    expect_header("\tAU-QLD", "AU-QLD", false);
    static const char *const bad[] = {
        "XX",
        "",
        " ",
        "NO,",
        "NO, ",
        ",includeTZOffset",
        "NO includeTZOffset",
        "NO, includeTZOffset, x",
        "NO,, includeTZOffset",
        "N O",
        "NO, offset",
        "AVERYLONGCODEINDEEDTHATISNOTACODE",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const tz_zone *z = NULL;
        bool inc = false;
        if (tz_parse_header(bad[i], &z, &inc))
            fail_msg("header '%s' accepted", bad[i]);
        assert_null(z);
    }
    const tz_zone *z = NULL;
    bool inc;
    assert_false(tz_parse_header(NULL, &z, &inc));
}

static void expect_date(int64_t ms, int off, const char *want)
{
    char out[TEXT_DATE_MAX];
    tz_format_date(ms, off, out);
    assert_string_equal(out, want);
}

static void test_format_date(void **state)
{
    (void)state;
    int64_t t = INT64_C(1795425245000); /* 2026-11-23T09:14:05Z */
    expect_date(t, 60, "2026-11-23T10:14:05+01:00");
    expect_date(t + 123, 60, "2026-11-23T10:14:05.123+01:00");
    expect_date(t + 7, 0, "2026-11-23T09:14:05.007+00:00");
    expect_date(t, -210, "2026-11-23T05:44:05-03:30");
    expect_date(t, 345, "2026-11-23T14:59:05+05:45");
    expect_date(t, -1559, "2026-11-22T07:15:05-25:59"); /* the widest TZif offset */
    expect_date(INT64_C(1767229200000), -300, "2025-12-31T20:00:00-05:00"); /* across New Year */
    expect_date(INT64_C(1709164800000), 0, "2024-02-29T00:00:00+00:00");
    expect_date(-1, 0, "1969-12-31T23:59:59.999+00:00");
    expect_date(INT64_MIN, 60, "0001-01-01T00:00:00Z");         /* the empty-carrier date */
    expect_date(INT64_MAX, 0, "9999-12-31T23:59:59.999+00:00"); /* clamped */
    expect_date(INT64_MIN + 1, 0, "0001-01-01T00:00:00+00:00");
    /* the same instant as text_format_date, written in local time */
    char utc[TEXT_DATE_MAX];
    text_format_date(t, utc);
    assert_string_equal(utc, "2026-11-23T09:14:05Z");
    int64_t back;
    assert_true(text_parse_date("2026-11-23T10:14:05+01:00", &back));
    assert_int_equal(back, t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tzif_offsets),
        cmocka_unit_test(test_tzif_dst_flags),
        cmocka_unit_test(test_tzif_switches_2026),
        cmocka_unit_test(test_tzif_switches_2040),
        cmocka_unit_test(test_tzif_table_matches_footer),
        cmocka_unit_test(test_tzif_v1_only),
        cmocka_unit_test(test_tzif_v2_block_and_footer),
        cmocka_unit_test(test_tzif_footer_only),
        cmocka_unit_test(test_tzif_malformed),
        cmocka_unit_test(test_tzif_prefixes),
        cmocka_unit_test(test_posix_fields),
        cmocka_unit_test(test_posix_southern),
        cmocka_unit_test(test_posix_julian),
        cmocka_unit_test(test_posix_odd_rules),
        cmocka_unit_test(test_posix_refused),
        cmocka_unit_test(test_table_loads_and_is_unique),
        cmocka_unit_test(test_find_and_offsets),
        cmocka_unit_test(test_year_rules),
        cmocka_unit_test(test_init_partial_and_missing),
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_format_date),
    };
    return cmocka_run_group_tests(tests, setup_zones, teardown_zones);
}
