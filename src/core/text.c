/*
 * text.c — strict number, case, span and date helpers (see text.h).
 *
 * Date handling uses timegm/gmtime_r so that no process-wide TZ state is
 * touched by request threads.
 */
#include "core/text.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

text_span text_trim(const char *p, size_t n)
{
    while (n > 0 && text_is_ows(*p)) {
        p++;
        n--;
    }
    while (n > 0 && text_is_ows(p[n - 1]))
        n--;
    return (text_span){p, n};
}

int text_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool text_parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool text_parse_pos_i32(const char *s, size_t n, int32_t *out)
{
    uint64_t v;
    if (!text_parse_u64(s, n, &v) || v == 0 || v > INT32_MAX)
        return false;
    *out = (int32_t)v;
    return true;
}

bool text_parse_i32(const char *s, size_t n, int32_t *out)
{
    bool neg = n > 0 && s[0] == '-';
    uint64_t v;
    if (!text_parse_u64(s + neg, n - neg, &v) || v > (uint64_t)INT32_MAX + neg)
        return false;
    *out = neg ? (int32_t)(-(int64_t)v) : (int32_t)v;
    return true;
}

bool text_ieq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

static unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

bool text_span_ieq(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return false;
    for (size_t i = 0; i < an; i++)
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
            return false;
    return true;
}

size_t text_utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

size_t text_utf8_seq(const unsigned char *s, size_t n)
{
    if (n == 0)
        return 0;
    if (s[0] < 0x80)
        return 1;
    size_t len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (len == 0 || s[0] > 0xF4 || n < len)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0) || /* overlong, surrogate */
        (s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))   /* overlong, > U+10FFFF */
        return 0;
    return len;
}

bool text_parse_duration(const char *s, int64_t *seconds)
{
    size_t n = strlen(s);
    int64_t mult = 1;
    if (n > 0 && !isdigit((unsigned char)s[n - 1])) {
        switch (s[n - 1]) {
        case 's': mult = 1; break;
        case 'm': mult = 60; break;
        case 'h': mult = 3600; break;
        case 'd': mult = 86400; break;
        default: return false;
        }
        n--;
    }
    uint64_t v;
    if (!text_parse_u64(s, n, &v) || v == 0 || v > (uint64_t)INT64_MAX / 86400 / 366)
        return false;
    *seconds = (int64_t)v * mult;
    return true;
}

size_t text_format_u64(uint64_t v, char out[TEXT_U64_MAX])
{
    char digits[TEXT_U64_MAX];
    size_t i = sizeof(digits);
    do
        digits[--i] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    size_t n = sizeof(digits) - i;
    memcpy(out, digits + i, n);
    out[n] = '\0';
    return n;
}

/* v (0 <= v < 10^width) in exactly `width` digits at p; returns the end. */
static char *put_digits(char *p, int v, int width)
{
    for (int i = width - 1; i >= 0; i--, v /= 10)
        p[i] = (char)('0' + v % 10);
    return p + width;
}

/* The clock part of a date, "HH:MM:SS", at p; returns the end. */
static char *put_hms(char *p, const struct tm *tm)
{
    p = put_digits(p, tm->tm_hour, 2);
    *p++ = ':';
    p = put_digits(p, tm->tm_min, 2);
    *p++ = ':';
    return put_digits(p, tm->tm_sec, 2);
}

void text_format_date(int64_t ms, char out[TEXT_DATE_MAX])
{
    if (ms == INT64_MIN) {
        snprintf(out, TEXT_DATE_MAX, "0001-01-01T00:00:00Z");
        return;
    }
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)secs * 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    int year = tm.tm_year + 1900;
    if (year < 0 || year > 9999) { /* not strftime's %Y: glibc does not pad years below 1000 */
        int w = snprintf(out, TEXT_DATE_MAX, "%04d-%02d-%02dT%02d:%02d:%02d", year, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        size_t n = w > 0 && w < TEXT_DATE_MAX ? (size_t)w : 0;
        snprintf(out + n, TEXT_DATE_MAX - n, frac != 0 ? ".%03dZ" : "Z", frac);
        return;
    }
    /* the common case by hand: this is written twice into every BlobEntity */
    char *p = out;
    p = put_digits(p, year, 4);
    *p++ = '-';
    p = put_digits(p, tm.tm_mon + 1, 2);
    *p++ = '-';
    p = put_digits(p, tm.tm_mday, 2);
    *p++ = 'T';
    p = put_hms(p, &tm);
    if (frac != 0) {
        *p++ = '.';
        p = put_digits(p, frac, 3);
    }
    *p++ = 'Z';
    *p = '\0';
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static bool parse_zone(const char *p, int *offset_min)
{
    int hh, mm;
    *offset_min = 0;
    if (*p == '\0' || ((*p == 'Z' || *p == 'z') && p[1] == '\0'))
        return true;
    if ((*p != '+' && *p != '-') || strlen(p) != 6 || p[3] != ':' || !digits(p + 1, 2, &hh) ||
        !digits(p + 4, 2, &mm) || hh > 23 || mm > 59)
        return false;
    *offset_min = (*p == '-' ? -1 : 1) * (hh * 60 + mm);
    return true;
}

/* Refusing 2021-02-30 here matters: timegm would silently roll it into March. */
static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

bool text_parse_date(const char *s, int64_t *ms)
{
    int Y, M, D, h = 0, m = 0, sec = 0, off;
    if (strlen(s) < 10 || !digits(s, 4, &Y) || s[4] != '-' || !digits(s + 5, 2, &M) ||
        s[7] != '-' || !digits(s + 8, 2, &D))
        return false;
    const char *p = s + 10;
    int64_t frac_ms = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        if (strlen(p) < 9 || !digits(p + 1, 2, &h) || p[3] != ':' || !digits(p + 4, 2, &m) ||
            p[6] != ':' || !digits(p + 7, 2, &sec))
            return false;
        p += 9;
        if (*p == '.') {
            int scale = 100;
            if (!isdigit((unsigned char)p[1]))
                return false; /* a fraction has at least one digit */
            for (p++; isdigit((unsigned char)*p); p++, scale /= 10)
                frac_ms += (*p - '0') * scale;
        }
    }
    if (M < 1 || M > 12 || D < 1 || D > days_in_month(Y, M) || h > 23 || m > 59 || sec > 60 ||
        !parse_zone(p, &off))
        return false;
    struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D,
                    .tm_hour = h, .tm_min = m, .tm_sec = sec};
    time_t t = timegm(&tm);
    *ms = ((int64_t)t - (int64_t)off * 60) * 1000 + frac_ms;
    return true;
}

void text_format_http_date(int64_t ms, char out[TEXT_DATE_MAX])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mons[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int year = tm.tm_year + 1900;
    if (year < 0 || year > 9999) {
        snprintf(out, TEXT_DATE_MAX, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
                 tm.tm_mday, mons[tm.tm_mon], year, tm.tm_hour, tm.tm_min, tm.tm_sec);
        return;
    }
    char *p = out; /* by hand: Last-Modified goes out with every picture */
    memcpy(p, days[tm.tm_wday], 3);
    p += 3;
    *p++ = ',';
    *p++ = ' ';
    p = put_digits(p, tm.tm_mday, 2);
    *p++ = ' ';
    memcpy(p, mons[tm.tm_mon], 3);
    p += 3;
    *p++ = ' ';
    p = put_digits(p, year, 4);
    *p++ = ' ';
    p = put_hms(p, &tm);
    memcpy(p, " GMT", 5);
}

bool text_parse_http_date(const char *s, int64_t *ms)
{
    struct tm tm = {0};
    const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == NULL || *end != '\0')
        return false;
    *ms = (int64_t)timegm(&tm) * 1000;
    return true;
}

int64_t text_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t text_monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
