/*
 * test_core.c — unit tests of src/core: arena, buf, text, io, err and log.
 *
 * These pin down the contracts that every other layer relies on: the buf cap
 * (CB_ETOOLARGE, contents untouched), the strict number and date parsers,
 * and the one code → status/ErrorType table.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/io.h"
#include "core/log.h"
#include "core/meter.h"
#include "core/text.h"

/* ---- arena --------------------------------------------------------------- */

static void test_arena_many_small(void **state)
{
    (void)state;
    arena_t *a = arena_create();
    unsigned char *prev[3000];
    for (size_t i = 0; i < 3000; i++) {
        size_t n = 1 + i % 40;
        unsigned char *p = arena_alloc(a, n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
        for (size_t k = 0; k < n; k++)
            assert_int_equal(p[k], 0); /* zeroed */
        memset(p, (int)(i & 0xFF), n);
        prev[i] = p;
    }
    /* earlier allocations were not overwritten by later ones */
    for (size_t i = 0; i < 3000; i++)
        for (size_t k = 0; k < 1 + i % 40; k++)
            assert_int_equal(prev[i][k], i & 0xFF);
    assert_true(arena_used(a) >= 3000);
    arena_destroy(a);
}

static void test_arena_big_and_zero(void **state)
{
    (void)state;
    arena_t *a = arena_create();
    char *small = arena_strdup(a, "before");
    unsigned char *big = arena_alloc(a, 1 << 20);
    for (size_t i = 0; i < (1u << 20); i += 4096)
        assert_int_equal(big[i], 0);
    memset(big, 0xEE, 1 << 20);
    char *after = arena_strdup(a, "after");
    assert_string_equal(small, "before");
    assert_string_equal(after, "after");
    void *z1 = arena_alloc(a, 0), *z2 = arena_alloc(a, 0);
    assert_non_null(z1);
    assert_ptr_not_equal(z1, z2);
    assert_true(arena_used(a) >= (1u << 20));
    arena_destroy(a);
    arena_destroy(NULL);
}

static void test_arena_reset(void **state)
{
    (void)state;
    arena_t *a = arena_create();
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 500; i++)
            assert_non_null(arena_alloc(a, 100));
        assert_non_null(arena_alloc(a, 100000));
        assert_true(arena_used(a) >= 150000);
        arena_reset(a);
        assert_int_equal(arena_used(a), 0);
        char *s = arena_strdup(a, "fresh");
        assert_string_equal(s, "fresh");
    }
    arena_destroy(a);
}

static void test_arena_strings(void **state)
{
    (void)state;
    arena_t *a = arena_create();
    assert_string_equal(arena_strdup(a, ""), "");
    assert_string_equal(arena_strndup(a, "abcdef", 3), "abc");
    char *p = arena_printf(a, "%s-%d-%05.1f", "x", 42, 3.14159);
    assert_string_equal(p, "x-42-003.1");
    char long_s[20000];
    memset(long_s, 'q', sizeof(long_s) - 1);
    long_s[sizeof(long_s) - 1] = '\0';
    char *q = arena_printf(a, "<%s>", long_s);
    assert_int_equal(strlen(q), sizeof(long_s) + 1);
    assert_int_equal(q[0], '<');
    assert_int_equal(q[sizeof(long_s)], '>');
    arena_destroy(a);
}

/* ---- buf ----------------------------------------------------------------- */

static void test_buf_cap(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 10);
    assert_string_equal(buf_str(&b), "");
    assert_int_equal(buf_append(&b, "hello", 5), CB_EOK);
    assert_int_equal(buf_append(&b, "world!", 6), CB_ETOOLARGE);
    assert_int_equal(b.len, 5);
    assert_string_equal(buf_str(&b), "hello");
    assert_int_equal(buf_printf(&b, "%d", 123456), CB_ETOOLARGE);
    assert_string_equal(buf_str(&b), "hello");
    assert_int_equal(buf_puts(&b, "world"), CB_EOK); /* exactly at the cap */
    assert_int_equal(b.len, 10);
    assert_string_equal(buf_str(&b), "helloworld");
    assert_int_equal(buf_append(&b, "x", 1), CB_ETOOLARGE);
    assert_int_equal(buf_append(&b, "", 0), CB_EOK);
    assert_string_equal(buf_str(&b), "helloworld");
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(buf_str(&b), "");
    assert_int_equal(buf_puts(&b, "again"), CB_EOK);
    assert_string_equal(buf_str(&b), "again");
    buf_free(&b);
    assert_string_equal(buf_str(&b), "");
}

static void test_buf_growth_and_printf(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 1 << 20);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(buf_printf(&b, "%d,", i % 10), CB_EOK);
    assert_int_equal(b.len, 20000);
    assert_int_equal(b.data[b.len], '\0');
    assert_memory_equal(b.data, "0,1,2,", 6);
    assert_int_equal(buf_append(&b, "\0x", 2), CB_EOK); /* binary is fine */
    assert_int_equal(b.len, 20002);
    buf_free(&b);

    /* no practical cap: SIZE_MAX must not wrap the growth arithmetic */
    buf_init(&b, SIZE_MAX);
    assert_int_equal(buf_puts(&b, "hello"), CB_EOK);
    assert_int_equal(buf_puts(&b, " world"), CB_EOK);
    assert_string_equal(buf_str(&b), "hello world");
    buf_free(&b);

    buf_init(&b, 0);
    assert_int_equal(buf_append(&b, "", 0), CB_EOK);
    assert_int_equal(buf_append(&b, "x", 1), CB_ETOOLARGE);
    assert_string_equal(buf_str(&b), "");
    buf_free(&b);

    /* printf that fits the room, that needs growth, and that hits the cap */
    buf_init(&b, 300);
    assert_int_equal(buf_puts(&b, "ab"), CB_EOK); /* 256 bytes allocated */
    assert_int_equal(buf_printf(&b, "%s-%d", "x", 42), CB_EOK);
    assert_string_equal(buf_str(&b), "abx-42");
    assert_int_equal(buf_printf(&b, "%295s", "y"), CB_ETOOLARGE); /* 6 + 295 > 300 */
    assert_string_equal(buf_str(&b), "abx-42"); /* left as it was */
    assert_int_equal(buf_printf(&b, "%250s", "z"), CB_EOK);
    assert_int_equal(b.len, 256);
    assert_int_equal(b.data[255], 'z');
    assert_int_equal(b.data[256], '\0');
    buf_free(&b);

    buf_init(&b, 100);
    const int64_t nums[] = {0, 7, -7, 1234567890123, INT64_MAX, INT64_MIN};
    const char *want = "0,7,-7,1234567890123,9223372036854775807,-9223372036854775808,";
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        assert_int_equal(buf_put_i64(&b, nums[i]), CB_EOK);
        assert_int_equal(buf_puts(&b, ","), CB_EOK);
    }
    assert_string_equal(buf_str(&b), want);
    buf_free(&b);
}

static void test_buf_steal(void **state)
{
    (void)state;
    buf_t b;
    size_t len = 99;
    buf_init(&b, 100);
    char *empty = buf_steal(&b, &len);
    assert_non_null(empty);
    assert_int_equal(len, 0);
    assert_string_equal(empty, "");
    free(empty);

    assert_int_equal(buf_printf(&b, "id=%d", 167), CB_EOK);
    char *s = buf_steal(&b, &len);
    assert_string_equal(s, "id=167");
    assert_int_equal(len, 6);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_string_equal(buf_str(&b), "");
    assert_int_equal(buf_puts(&b, "reuse"), CB_EOK); /* still usable, same cap */
    assert_string_equal(buf_str(&b), "reuse");
    free(s);
    s = buf_steal(&b, NULL);
    assert_string_equal(s, "reuse");
    free(s);
    buf_free(&b);
}

/* The writer: an append that fails makes every later one fail, even one
 * that would fit, so the buffer holds a prefix of the text. */
static void test_buf_writer_sticky(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 12);
    buf_writer w = buf_writer_on(&b);
    buf_w_puts(&w, "{\"a\":");
    buf_w_put_i64(&w, -12);
    assert_int_equal(w.err, CB_EOK);
    buf_w_puts(&w, ",\"long\":1"); /* past the cap */
    assert_int_equal(w.err, CB_ETOOLARGE);
    buf_w_puts(&w, "}"); /* would fit: skipped */
    buf_w_append(&w, "x", 1);
    buf_w_printf(&w, "%d", 1);
    buf_w_put_i64(&w, 2);
    buf_w_repeat(&w, 0, 1);
    assert_int_equal(w.err, CB_ETOOLARGE);
    assert_string_equal(buf_str(&b), "{\"a\":-12");
    buf_free(&b);

    buf_init(&b, 64);
    w = buf_writer_on(&b);
    buf_w_printf(&w, "%s=%d;", "n", 7);
    buf_w_repeat(&w, 0, b.len);
    assert_int_equal(w.err, CB_EOK);
    assert_string_equal(buf_str(&b), "n=7;n=7;");
    buf_free(&b);
}

/* buf_repeat copies bytes the buffer holds even when growing moves them. */
static void test_buf_repeat_grows(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 1 << 20);
    for (int i = 0; i < 255; i++)
        assert_int_equal(buf_append(&b, &"abcdefgh"[i % 8], 1), CB_EOK);
    assert_int_equal(b.alloc, 256); /* full: the next append grows it */
    assert_int_equal(buf_repeat(&b, 10, 200), CB_EOK);
    assert_int_equal(b.len, 455);
    assert_memory_equal(b.data + 255, b.data + 10, 200);
    assert_int_equal(buf_repeat(&b, 0, 455), CB_EOK);
    assert_memory_equal(b.data + 455, b.data, 455);
    buf_free(&b);
    buf_init(&b, 4);
    assert_int_equal(buf_puts(&b, "abc"), CB_EOK);
    assert_int_equal(buf_repeat(&b, 0, 2), CB_ETOOLARGE);
    assert_string_equal(buf_str(&b), "abc");
    buf_free(&b);
}

/* ---- text: numbers and strings ------------------------------------------- */

static void assert_trim(const char *in, const char *want)
{
    text_span t = text_trim(in, strlen(in));
    assert_int_equal(t.n, strlen(want));
    assert_memory_equal(t.p, want, t.n);
    assert_true(t.p >= in && t.p + t.n <= in + strlen(in)); /* a piece of in */
}

/* Spaces and tabs only (HTTP's OWS): other white space is kept. */
static void test_text_trim_and_hex(void **state)
{
    (void)state;
    assert_trim("  a b\t ", "a b");
    assert_trim("\t\tx", "x");
    assert_trim("x", "x");
    assert_trim(" \t \t", "");
    assert_trim("", "");
    assert_trim("\r\n a\n", "\r\n a\n");
    assert_trim("\va\f", "\va\f");
    text_span t = text_trim("  ab  ", 3); /* only n bytes are looked at */
    assert_int_equal(t.n, 1);
    assert_int_equal(t.p[0], 'a');
    assert_true(text_is_ows(' ') && text_is_ows('\t'));
    assert_false(text_is_ows('\n') || text_is_ows('\r') || text_is_ows('\0') || text_is_ows('x'));

    const char *digits = "0123456789abcdefABCDEF";
    for (int i = 0; digits[i]; i++)
        assert_int_equal(text_hex_value(digits[i]), i < 16 ? i : i - 6);
    for (int c = -128; c < 128; c++)
        if (strchr(digits, c) == NULL || c == 0)
            assert_int_equal(text_hex_value((char)c), -1);
}

/* ---- io ------------------------------------------------------------------ */

static void test_io_pread(void **state)
{
    (void)state;
    char path[] = "/tmp/crmblob-test-io-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    char data[100000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(i * 7);
    assert_int_equal(write(fd, data, sizeof(data)), sizeof(data));

    char got[sizeof(data)];
    assert_int_equal(io_pread_full(fd, got, sizeof(got), 0), sizeof(got));
    assert_memory_equal(got, data, sizeof(data));
    assert_int_equal(io_pread_full(fd, got, 10, 500), 10);
    assert_memory_equal(got, data + 500, 10);
    errno = EINVAL;
    assert_int_equal(io_pread_full(fd, got, 50, sizeof(data) - 20), 20); /* ends early */
    assert_int_equal(errno, 0);
    assert_memory_equal(got, data + sizeof(data) - 20, 20);
    assert_int_equal(io_pread_full(fd, got, 0, 0), 0);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), sizeof(data)); /* the offset is left alone */

    assert_int_equal(io_pread(fd, got, 5, 3), 5);
    assert_memory_equal(got, data + 3, 5);
    assert_int_equal(io_pread(fd, got, 5, sizeof(data)), 0);
    close(fd);

    assert_int_equal(io_pread_full(fd, got, 5, 0), 0); /* closed: the error is said */
    assert_int_equal(errno, EBADF);
    assert_int_equal(io_pread(fd, got, 5, 0), -1);
    assert_int_equal(errno, EBADF);
}

static bool pos_i32(const char *s, int32_t *v)
{
    return text_parse_pos_i32(s, strlen(s), v);
}

static void test_text_parse_pos_i32(void **state)
{
    (void)state;
    int32_t v = 0;
    assert_true(pos_i32("1", &v));
    assert_int_equal(v, 1);
    assert_true(pos_i32("2147483647", &v));
    assert_int_equal(v, INT32_MAX);
    assert_true(pos_i32("007", &v));
    assert_int_equal(v, 7);
    static const char *const bad[] = {"0",  "-1",  "2147483648", "abc",
                                      "",   "1a",  "+1",         " 1",
                                      "1 ", "0x1", "1.0",        "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = -5;
        if (pos_i32(bad[i], &v))
            fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(v, -5); /* untouched on failure */
    }
    /* the length bounds the parse: "12" of "123" */
    assert_true(text_parse_pos_i32("123", 2, &v));
    assert_int_equal(v, 12);
}

static void test_text_parse_i32(void **state)
{
    (void)state;
    int32_t v = 0;
    static const struct {
        const char *s;
        int32_t want;
    } ok[] = {
        {"0", 0}, {"-1", -1}, {"42", 42}, {"-2147483648", INT32_MIN}, {"2147483647", INT32_MAX}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_true(text_parse_i32(ok[i].s, strlen(ok[i].s), &v));
        assert_int_equal(v, ok[i].want);
    }
    static const char *const bad[] = {"", "-", "--1", "+1", "2147483648", "-2147483649", "1-", "a"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (text_parse_i32(bad[i], strlen(bad[i]), &v))
            fail_msg("accepted \"%s\"", bad[i]);
}

static void test_text_parse_u64(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_true(text_parse_u64("0", 1, &v));
    assert_int_equal(v, 0);
    assert_true(text_parse_u64("18446744073709551615", 20, &v));
    assert_true(v == UINT64_MAX);
    assert_false(text_parse_u64("18446744073709551616", 20, &v));
    assert_false(text_parse_u64("", 0, &v));
    assert_false(text_parse_u64("-1", 2, &v));
}

static void test_text_ieq_utf8(void **state)
{
    (void)state;
    assert_true(text_ieq("ImageInfo", 9, "imageinfo"));
    assert_true(text_ieq("IMAGE/x", 5, "image"));
    assert_false(text_ieq("Image", 5, "Images"));
    assert_false(text_ieq("Images", 6, "Image"));
    assert_false(text_ieq("Imagf", 5, "Image"));
    assert_true(text_ieq("", 0, ""));
    assert_int_equal(text_utf8_len(""), 0);
    assert_int_equal(text_utf8_len("abc"), 3);
    assert_int_equal(text_utf8_len("h\xc3\xa9llo"), 5);             /* héllo */
    assert_int_equal(text_utf8_len("\xe6\x97\xa5\xe6\x9c\xac"), 2); /* two CJK */
    assert_int_equal(text_utf8_len("\xf0\x9f\x98\x80!"), 2);        /* emoji + ! */
}

static void test_text_parse_duration(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t want;
    } ok[] = {{"30d", 30 * 86400}, {"6h", 6 * 3600}, {"15m", 15 * 60}, {"10", 10}, {"45s", 45}};
    int64_t v;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_true(text_parse_duration(ok[i].s, &v));
        assert_int_equal(v, ok[i].want);
    }
    static const char *const bad[] = {
        "0", "5x", "", "d", "-5m", "0h", "1.5h", "h5", "99999999999999999999d"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (text_parse_duration(bad[i], &v))
            fail_msg("accepted \"%s\"", bad[i]);
}

/* ---- text: dates --------------------------------------------------------- */

static void check_date(const char *in, const char *want)
{
    int64_t ms = 0;
    char out[TEXT_DATE_MAX];
    if (!text_parse_date(in, &ms))
        fail_msg("refused \"%s\"", in);
    text_format_date(ms, out);
    assert_string_equal(out, want);
    /* the formatted form parses back to the same instant */
    int64_t back = 1;
    assert_true(text_parse_date(out, &back));
    assert_true(back == ms);
}

static void test_text_dates(void **state)
{
    (void)state;
    check_date("2003-12-07T02:49:51.3078143+01:00", "2003-12-07T01:49:51.307Z");
    check_date("2026-11-23T09:14:05Z", "2026-11-23T09:14:05Z");
    check_date("2026-11-23T09:14:05", "2026-11-23T09:14:05Z"); /* no zone = UTC */
    check_date("2026-11-23t09:14:05z", "2026-11-23T09:14:05Z");
    check_date("2026-11-23 09:14:05", "2026-11-23T09:14:05Z");
    check_date("2026-11-23", "2026-11-23T00:00:00Z");
    check_date("2026-11-23T09:14:05.5-05:30", "2026-11-23T14:44:05.500Z");
    check_date("2026-11-23T09:14:05.000Z", "2026-11-23T09:14:05Z");
    check_date("2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z");
    check_date("2000-02-29T00:00:00Z", "2000-02-29T00:00:00Z");
    check_date("1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999Z");
    check_date("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z");
    check_date("0999-06-15T12:00:00Z", "0999-06-15T12:00:00Z");
    check_date("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z");
    check_date("2026-01-01T00:30:00+01:00", "2025-12-31T23:30:00Z");

    char out[TEXT_DATE_MAX];
    text_format_date(INT64_MIN, out);
    assert_string_equal(out, "0001-01-01T00:00:00Z");
    text_format_date(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    text_format_date(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59.999Z");
    text_format_date(1764700000007, out);
    assert_string_equal(out, "2025-12-02T18:26:40.007Z");
    text_format_date(-62135596800000 + 86400000, out); /* year 1: padded, by snprintf */
    assert_string_equal(out, "0001-01-02T00:00:00Z");
    text_format_date(253402300800000, out); /* year 10000 */
    assert_string_equal(out, "10000-01-01T00:00:00Z");
    int64_t ms;
    assert_true(text_parse_date("1970-01-01T00:00:00Z", &ms));
    assert_int_equal(ms, 0);
}

static void test_text_bad_dates(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "2026",
        "2026-11",
        "26-11-23",
        "2026-1-23",
        "2026/11/23",
        "2026-13-01",
        "2026-00-10",
        "2026-11-00",
        "2026-11-32",
        "2021-02-29", /* not a leap year */
        "1900-02-29",
        "2026-04-31",
        "2026-11-23T",
        "2026-11-23T24:00:00",
        "2026-11-23T09:60:00",
        "2026-11-23T09:14",
        "2026-11-23T09:14:05.",
        "2026-11-23T09:14:05.Z",
        "2026-11-23T09:14:05+01",
        "2026-11-23T09:14:05+0100",
        "2026-11-23T09:14:05+24:00",
        "2026-11-23T09:14:05ZZ",
        "2026-11-23T09:14:05 ",
        "2026-11-23X09:14:05",
        "tomorrow",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 12345;
        if (text_parse_date(bad[i], &ms))
            fail_msg("accepted \"%s\"", bad[i]);
    }
}

static void test_text_http_date(void **state)
{
    (void)state;
    char out[TEXT_DATE_MAX];
    int64_t ms = 0;
    text_format_http_date(784111777000, out);
    assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_true(text_parse_http_date(out, &ms));
    assert_int_equal(ms, 784111777000);
    /* sub-second precision is dropped, as HTTP dates have none */
    text_format_http_date(1700000000123, out);
    assert_string_equal(out, "Tue, 14 Nov 2023 22:13:20 GMT");
    assert_true(text_parse_http_date(out, &ms));
    assert_int_equal(ms, 1700000000000);
    static const char *const bad[] = {"", "Sunday, 06-Nov-94 08:49:37 GMT",
                                      "Sun, 06 Nov 1994 08:49:37", "Sun, 06 Nov 1994 08:49:37 GMTx",
                                      "2026-11-23T09:14:05Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (text_parse_http_date(bad[i], &ms))
            fail_msg("accepted \"%s\"", bad[i]);
}

static void test_text_clocks(void **state)
{
    (void)state;
    assert_true(text_now_ms() > 1577836800000); /* after 2020 */
    uint64_t a = text_monotonic_us();
    uint64_t b = text_monotonic_us();
    assert_true(b >= a);
}

/* ---- err ----------------------------------------------------------------- */

static void test_err_table(void **state)
{
    (void)state;
    static const struct {
        cb_err e;
        int status;
        const char *type;
        const char *name;
    } want[] = {
        {CB_EOK, 200, "", "OK"},
        {CB_EBADREQ, 400, "SoBadRequestException", "BADREQ"},
        {CB_EWORK, 400, "SoBadRequestException", "WORK"},
        {CB_EUNAUTH, 401, "SoUnauthorizedException", "UNAUTH"},
        {CB_EFORBIDDEN, 403, "SoAccessDeniedException", "FORBIDDEN"},
        {CB_ENOTFOUND, 404, "SoNotFoundException", "NOTFOUND"},
        {CB_EMETHOD, 405, "SoBadRequestException", "METHOD"},
        {CB_ENOTACCEPT, 406, "SoNotAcceptableException", "NOTACCEPT"},
        {CB_ETIMEOUT, 408, "SoBadRequestException", "TIMEOUT"},
        {CB_ECONFLICT, 409, "SoConflictException", "CONFLICT"},
        {CB_EPRECOND, 412, "SoPreconditionFailedException", "PRECOND"},
        {CB_ETOOLARGE, 413, "SoTooLargeException", "TOOLARGE"},
        {CB_EURITOOLONG, 414, "SoTooLargeException", "URITOOLONG"},
        {CB_EUNSUPPORTED, 415, "SoUnsupportedMediaTypeException", "UNSUPPORTED"},
        {CB_ERANGE, 416, "SoBadRequestException", "RANGE"},
        {CB_ETOOMANY, 429, "SoUnauthorizedException", "TOOMANY"},
        {CB_EHDRTOOLARGE, 431, "SoTooLargeException", "HDRTOOLARGE"},
        {CB_EINTERNAL, 500, "SoInternalException", "INTERNAL"},
        {CB_ENOTIMPL, 501, "SoBadRequestException", "NOTIMPL"},
        {CB_EUNAVAILABLE, 503, "SoInternalException", "UNAVAILABLE"},
        {CB_ENOSPACE, 507, "SoInternalException", "NOSPACE"},
        {CB_EWOULDBLOCK, 500, "SoInternalException", "WOULDBLOCK"},
    };
    assert_int_equal(sizeof(want) / sizeof(want[0]), CB_ERR__COUNT);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(err_status(want[i].e), want[i].status);
        assert_string_equal(err_type(want[i].e), want[i].type);
        assert_string_equal(err_name(want[i].e), want[i].name);
    }
}

/* ---- log ----------------------------------------------------------------- */

/* Runs fn with stderr redirected into a pipe and returns what it wrote. */
static size_t capture_stderr(void (*fn)(void), char *out, size_t cap)
{
    int fds[2], saved = dup(STDERR_FILENO);
    assert_int_equal(pipe(fds), 0);
    assert_true(saved >= 0);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    size_t n = 0;
    ssize_t r;
    while (n < cap - 1 && (r = read(fds[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    close(fds[0]);
    out[n] = '\0';
    return n;
}

static void log_long_line(void)
{
    static char big[5000];
    memset(big, 'L', sizeof(big) - 1);
    log_set_level(LOG_INFO);
    log_debug("hidden %d", 1); /* below the level: nothing */
    log_info("%s", big);
    log_access(&(log_access_fields){"GET", "/api/v1/Person/1/Image", 200, 1234, 56, "admin", "app1",
                                    "192.0.2.7", "r1", "curl/8"});
}

static void test_log_lines(void **state)
{
    (void)state;
    static char got[8192];
    size_t n = capture_stderr(log_long_line, got, sizeof(got));
    char *nl = strchr(got, '\n');
    assert_non_null(nl);
    size_t first = (size_t)(nl - got) + 1;
    assert_true(first <= 2047); /* one truncated line, newline-terminated */
    assert_non_null(strstr(got, " info LLLL"));
    assert_null(strstr(got, "hidden"));
    assert_non_null(
        strstr(got + first,
               "access GET /api/v1/Person/1/Image 200 1234 56us admin id=r1 "
               "ua=\"curl/8\" app=app1 from=192.0.2.7\n"));
    assert_int_equal(got[n - 1], '\n');
}

static void log_buffered_lines(void)
{
    assert_true(log_buffer_start());
    log_access(&(log_access_fields){"GET", "/a", 200, 1, 2, "u", .user_agent = NULL});
    log_access(&(log_access_fields){"GET", "/b", 404, 0, 3, NULL, .user_agent = NULL});
    log_warn("diagnostic");
    log_access(&(log_access_fields){"PUT", "/c d", 200, 5, 4, "u", .user_agent = NULL});
    log_buffer_stop();
    log_access(&(log_access_fields){"GET", "/after", 200, 0, 1, "u", .user_agent = NULL});
}

/* Gathered access lines come out whole, in order, before a later
 * diagnostic; stopping writes what waits. */
static void test_log_buffered_order(void **state)
{
    (void)state;
    static char got[8192];
    capture_stderr(log_buffered_lines, got, sizeof(got));
    const char *want[] = {"access GET /a 200 1 2us u ua=\"\"\n", "access GET /b 404 0 3us - ua=\"\"\n",
                          " warn diagnostic\n", "access PUT /c\\x20d 200 5 4us u ua=\"\"\n",
                          "access GET /after 200 0 1us u ua=\"\"\n"};
    const char *at = got;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const char *hit = strstr(at, want[i]);
        assert_non_null(hit);
        at = hit + strlen(want[i]);
    }
    /* each line starts with its time stamp, 2026-11-23T09:14:05.120Z */
    for (const char *line = got; *line; line = strchr(line, '\n') + 1) {
        assert_true(strlen(line) > 25);
        assert_true(line[4] == '-' && line[10] == 'T' && line[19] == '.' && line[23] == 'Z');
        assert_true(line[20] >= '0' && line[20] <= '9' && line[22] >= '0' && line[22] <= '9');
    }
}

/* Without a stop, the flusher writes gathered lines within moments. */
static void test_log_flusher_writes(void **state)
{
    (void)state;
    int fds[2], saved = dup(STDERR_FILENO);
    assert_int_equal(pipe(fds), 0);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    assert_true(log_buffer_start());
    log_access(&(log_access_fields){"GET", "/flushed", 200, 0, 1, "u", .user_agent = NULL});
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    int ready = poll(&p, 1, 2000);
    char got[512] = {0};
    ssize_t n = ready == 1 ? read(fds[0], got, sizeof(got) - 1) : -1;
    log_buffer_stop();
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[0]);
    assert_int_equal(ready, 1);
    assert_true(n > 0);
    assert_non_null(strstr(got, "access GET /flushed 200 0 1us u ua=\"\"\n"));
}

/* JSON access lines: every value escaped (quotes, backslashes, control
 * characters, bytes that are not UTF-8), valid UTF-8 kept, absent values
 * null, an overlong value cut within its budget and the line still closed. */
static void test_log_access_json(void **state)
{
    (void)state;
    static char big[6000], out[LOG_ACCESS_MAX];
    memset(big, 'A', sizeof(big) - 1);
    big[100] = '"';
    log_access_fields f = {.method = "GET",
                           .target = "/p?q=\"x\"&b=\\\x01",
                           .status = 200,
                           .bytes = 7,
                           .micros = 9,
                           .user = "-",
                           .client = "192.0.2.1",
                           .request_id = "id-1",
                           .user_agent = "a\xff\xc3\xa9\x1b[31m\x7f\n"};
    size_t n = log_format_access(LOG_JSON, &f, out);
    out[n] = '\0';
    assert_int_equal(out[0], '{');
    assert_non_null(strstr(out, "\"msg\":\"access\",\"method\":\"GET\","
                                "\"target\":\"/p?q=\\\"x\\\"&b=\\\\\\u0001\",\"status\":200,"
                                "\"bytes\":7,\"duration_us\":9,\"user\":null,\"app\":null,"
                                "\"request_id\":\"id-1\","
                                "\"user_agent\":\"a\\ufffd\xc3\xa9\\u001b[31m\\u007f\\n\","
                                "\"client\":\"192.0.2.1\"}\n"));
    f.target = big;
    f.user_agent = big;
    f.user = big;
    f.app = big;
    n = log_format_access(LOG_JSON, &f, out);
    assert_true(n < LOG_ACCESS_MAX);
    assert_memory_equal(out + n - 3, "\"}\n", 3);
    assert_non_null(strstr(out, "\"user_agent\":\"AAA"));
    assert_non_null(strstr(out, "\"client\":\"192.0.2.1\"}"));
    n = log_format_access(LOG_TEXT, &f, out);
    assert_true(n < LOG_ACCESS_MAX);
    assert_non_null(strstr(out, " from=192.0.2.1\n"));
    assert_non_null(strstr(out, "AAA\\x22AAA"));
}

static void log_json_diag(void)
{
    static char quotes[3000];
    memset(quotes, '"', sizeof(quotes) - 1);
    log_set_format(LOG_JSON);
    log_warn("long %s", quotes); /* cut, still closed */
    memset(quotes, 'L', sizeof(quotes) - 1);
    log_warn("%s", quotes); /* fills the line exactly */
    log_warn("say \"%s\"", "x\ny\xff");
    log_set_level(LOG_WARN);
    log_info("hidden");
    log_access(&(log_access_fields){"GET", "/hidden", 200, 0, 1, "u", .user_agent = NULL});
    log_set_level(LOG_INFO);
    log_set_format(LOG_TEXT);
}

/* A JSON diagnostic line; below the level, nothing (access lines are info). */
static void test_log_json_diag(void **state)
{
    (void)state;
    static char got[16384];
    capture_stderr(log_json_diag, got, sizeof(got));
    assert_non_null(strstr(got, "\",\"level\":\"warn\",\"msg\":\"say \\\"x\\ny\\ufffd\\\"\"}\n"));
    assert_true(strncmp(got, "{\"time\":\"20", 11) == 0);
    const char *nl = strchr(got, '\n');
    assert_non_null(nl);
    assert_true(nl - got < 2048);
    assert_memory_equal(nl - 4, "\\\"\"}", 4); /* the last escaped quote, the closing one, the brace */
    const char *nl2 = strchr(nl + 1, '\n');
    assert_non_null(nl2);
    assert_true(nl2 - nl - 1 < 2048);
    assert_memory_equal(nl2 - 3, "L\"}", 3);
    assert_null(strstr(got, "hidden"));
}

/* --log-file: lines go to the file; after it is moved away, log_reopen
 * makes a new one by the name (what a reload does for logrotate); a file
 * that cannot be opened leaves lines where they went. */
static void test_log_file_reopen(void **state)
{
    (void)state;
    char dir[] = "/tmp/crmblob-logtest-XXXXXX", path[128], moved[128], got[4096];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/a.log", dir);
    snprintf(moved, sizeof(moved), "%s/a.log.1", dir);
    assert_int_equal(log_reopen(), 0); /* stderr: nothing to do */
    assert_int_equal(log_open_file(path), 0);
    log_info("first %d", 1);
    assert_int_equal(rename(path, moved), 0);
    log_info("second %d", 2); /* still the moved file */
    assert_int_equal(log_reopen(), 0);
    log_info("third %d", 3);
    char bad[160];
    snprintf(bad, sizeof(bad), "%s/no/such/dir.log", dir);
    assert_int_equal(log_open_file(bad), ENOENT);
    log_info("fourth %d", 4);
    int fd = open(moved, O_RDONLY);
    ssize_t n = read(fd, got, sizeof(got) - 1);
    close(fd);
    got[n > 0 ? n : 0] = '\0';
    assert_non_null(strstr(got, " info first 1\n"));
    assert_non_null(strstr(got, " info second 2\n"));
    assert_null(strstr(got, "third"));
    fd = open(path, O_RDONLY);
    n = read(fd, got, sizeof(got) - 1);
    close(fd);
    got[n > 0 ? n : 0] = '\0';
    assert_non_null(strstr(got, " info third 3\n"));
    assert_non_null(strstr(got, " info fourth 4\n"));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0007, 0);
    unlink(path);
    unlink(moved);
    rmdir(dir);
    assert_int_equal(log_open_file(NULL), 0); /* stderr again, for the other tests */
}

/* Lines of one kind past the limit are counted, and the next line of the
 * kind after the interval tells how many; other kinds keep their own
 * budget. Control characters come out escaped. */
static void log_limited_lines(void)
{
    log_set_limit(3, 150);
    for (int i = 0; i < 10; i++)
        log_warn("same kind %d", i);
    log_info("another kind");
    log_info("%s", "forged\n2026-01-01T00:00:00.000Z info line\rx");
    log_info("ends with a newline, dropped\n");
    usleep(200 * 1000);
    log_warn("same kind %d", 99);
    log_set_limit(LOG_LIMIT_LINES, LOG_LIMIT_MS);
}

static void test_log_limit(void **state)
{
    (void)state;
    static char got[8192];
    capture_stderr(log_limited_lines, got, sizeof(got));
    assert_non_null(strstr(got, " warn same kind 0\n"));
    assert_non_null(strstr(got, " warn same kind 2\n"));
    assert_null(strstr(got, "same kind 3\n"));
    assert_null(strstr(got, "same kind 9\n"));
    assert_non_null(strstr(got, " info another kind\n"));
    assert_non_null(strstr(got, " info forged\\x0a2026-01-01T00:00:00.000Z info line\\x0dx\n"));
    assert_non_null(strstr(got, " info ends with a newline, dropped\n2"));
    const char *sum =
        strstr(got, " warn log: 7 similar lines suppressed in the last 1 s: same kind %d\n");
    assert_non_null(sum);
    const char *next = strstr(got, " warn same kind 99\n");
    assert_non_null(next);
    assert_true(sum < next);
    size_t lines = 0;
    for (const char *c = got; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, 3 + 1 + 1 + 1 + 1 + 1);
}

/* With nothing more logged, the flusher thread writes the summary once the
 * interval has ended; a stop writes one for an interval still running. */
static void test_log_limit_summary_unprompted(void **state)
{
    (void)state;
    int fds[2], saved = dup(STDERR_FILENO);
    assert_int_equal(pipe(fds), 0);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    log_set_limit(1, 100);
    assert_true(log_buffer_start());
    for (int i = 0; i < 5; i++)
        log_warn("flood %d", i);
    char got[2048] = {0};
    size_t n = 0;
    uint64_t until = text_monotonic_us() + 2000000;
    while (strstr(got, "suppressed") == NULL && text_monotonic_us() < until) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        if (poll(&p, 1, 100) == 1 && n < sizeof(got) - 1) {
            ssize_t r = read(fds[0], got + n, sizeof(got) - 1 - n);
            n += r > 0 ? (size_t)r : 0;
        }
    }
    log_set_limit(100, 60000);
    for (int i = 0; i < 105; i++)
        log_info("later %d", i);
    log_buffer_stop();
    log_set_limit(LOG_LIMIT_LINES, LOG_LIMIT_MS);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char rest[16384] = {0};
    ssize_t r = read(fds[0], rest, sizeof(rest) - 1);
    close(fds[0]);
    assert_non_null(strstr(got, " warn flood 0\n"));
    assert_null(strstr(got, "flood 1"));
    assert_non_null(strstr(got, " warn log: 4 similar lines suppressed in the last "));
    assert_true(r > 0);
    assert_non_null(strstr(rest, " info later 99\n"));
    assert_null(strstr(rest, "later 100"));
    assert_non_null(
        strstr(rest, " info log: 5 similar lines suppressed in the last 1 s: later %d\n"));
}

/* A meter's line: counts with thousands separators, MiB, the average
 * rate and the time left; nothing guessed before 0.5 s or without totals. */
static void test_meter_line(void **state)
{
    (void)state;
    meter m;
    char line[160];
    meter_start(&m, "records", 5000, 400 * 1048576LL, 100.0);
    meter_format(&m, 100.0, line, sizeof line);
    assert_string_equal(line, "0/5,000 records, 0.0/400.0 MiB");
    assert_int_equal(meter_percent(&m), 0);
    meter_add(&m, 1234, 100 * 1048576LL);
    meter_format(&m, 110.0, line, sizeof line);
    assert_string_equal(line, "1,234/5,000 records, 100.0/400.0 MiB, 10.0 MiB/s, 0:30 left");
    assert_int_equal(meter_percent(&m), 24);
    meter_add(&m, 3766, 300 * 1048576LL);
    assert_int_equal(meter_percent(&m), 100);
    assert_true(meter_left(&m, 140.0) == 0);
    meter_format(&m, 100.2, line, sizeof line); /* too early for a rate */
    assert_string_equal(line, "5,000/5,000 records, 400.0/400.0 MiB");
}

static void test_meter_unknown_totals(void **state)
{
    (void)state;
    meter m;
    char line[160];
    meter_start(&m, "pictures", -1, -1, 0.0);
    meter_add(&m, 1234567, 0);
    assert_int_equal(meter_percent(&m), -1);
    assert_true(meter_left(&m, 10.0) < 0);
    meter_format(&m, 10.0, line, sizeof line);
    assert_string_equal(line, "1,234,567 pictures, 123457 pictures/s");
    meter_start(&m, "pictures", 10, -1, 0.0); /* items only: hours */
    meter_add(&m, 1, 0);
    meter_format(&m, 3600.0, line, sizeof line);
    assert_string_equal(line, "1/10 pictures, 0 pictures/s, 9:00:00 left");
    char small[8]; /* cut short, still terminated */
    meter_format(&m, 3600.0, small, sizeof small);
    assert_string_equal(small, "1/10 pi");
    meter_start(&m, "pictures", 0, 0, 0.0); /* nothing to do is done */
    assert_int_equal(meter_percent(&m), 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_many_small), cmocka_unit_test(test_arena_big_and_zero),
        cmocka_unit_test(test_arena_reset),      cmocka_unit_test(test_arena_strings),
        cmocka_unit_test(test_buf_cap),          cmocka_unit_test(test_buf_growth_and_printf),
        cmocka_unit_test(test_buf_steal),        cmocka_unit_test(test_buf_writer_sticky),
        cmocka_unit_test(test_buf_repeat_grows), cmocka_unit_test(test_text_trim_and_hex),
        cmocka_unit_test(test_io_pread),         cmocka_unit_test(test_text_parse_pos_i32),
        cmocka_unit_test(test_text_parse_i32),   cmocka_unit_test(test_text_parse_u64),
        cmocka_unit_test(test_text_ieq_utf8),    cmocka_unit_test(test_text_parse_duration),
        cmocka_unit_test(test_text_dates),       cmocka_unit_test(test_text_bad_dates),
        cmocka_unit_test(test_text_http_date),   cmocka_unit_test(test_text_clocks),
        cmocka_unit_test(test_err_table),        cmocka_unit_test(test_log_lines),
        cmocka_unit_test(test_log_buffered_order), cmocka_unit_test(test_log_access_json),
        cmocka_unit_test(test_log_json_diag), cmocka_unit_test(test_log_file_reopen), cmocka_unit_test(test_log_flusher_writes),
        cmocka_unit_test(test_log_limit), cmocka_unit_test(test_meter_line),
        cmocka_unit_test(test_meter_unknown_totals),        cmocka_unit_test(test_log_limit_summary_unprompted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
