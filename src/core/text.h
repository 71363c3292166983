/*
 * text.h — small string and number helpers shared by every layer.
 *
 * Parsers here are strict: they accept exactly the documented form and
 * report failure rather than guessing (no atoi).
 */
#ifndef CB_TEXT_H
#define CB_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A piece of a longer string, not NUL-terminated. */
typedef struct {
    const char *p;
    size_t n;
} text_span;

/* HTTP's optional white space (RFC 9110 OWS): a space or a tab. */
static inline bool text_is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* p[0..n) without the spaces and tabs at either end. */
text_span text_trim(const char *p, size_t n);
/* The value of one hex digit (0-9, a-f, A-F), or -1. */
int text_hex_value(char c);

/* "1".."2147483647", digits only (leading zeros allowed). */
bool text_parse_pos_i32(const char *s, size_t n, int32_t *out);
/* Optional leading '-', digits, within int32. */
bool text_parse_i32(const char *s, size_t n, int32_t *out);
/* Digits only, within uint64. */
bool text_parse_u64(const char *s, size_t n, uint64_t *out);
/* Case-insensitive ASCII equality of s[0..n) with the NUL-terminated lit. */
bool text_ieq(const char *s, size_t n, const char *lit);
/* ASCII case-insensitive equality of two byte spans (a NUL is a byte). */
bool text_span_ieq(const char *a, size_t an, const char *b, size_t bn);
/* Number of code points of valid UTF-8 (bytes >= 0x80 that start a sequence). */
size_t text_utf8_len(const char *s);
/* Length of the valid UTF-8 sequence (1..4 bytes, no overlongs, no
 * surrogates, at most U+10FFFF) starting at s[0..n), or 0 when invalid. */
size_t text_utf8_seq(const unsigned char *s, size_t n);
/* Parses a duration such as "30s", "15m", "6h", "30d" (plain number = seconds). */
bool text_parse_duration(const char *s, int64_t *seconds);

/* Dates: milliseconds since the Unix epoch, UTC. */
#define TEXT_DATE_MAX 40
/* "2026-11-23T09:14:05Z", with ".123" when ms is not whole; ms == INT64_MIN
 * gives the empty-carrier date "0001-01-01T00:00:00Z". */
void text_format_date(int64_t ms, char out[TEXT_DATE_MAX]);
/* v in decimal, NUL-terminated, into out; its length. */
#define TEXT_U64_MAX 21
size_t text_format_u64(uint64_t v, char out[TEXT_U64_MAX]);
/* ISO 8601 with optional fraction and optional Z/±hh:mm; no zone = UTC. */
bool text_parse_date(const char *s, int64_t *ms);
/* RFC 7231 IMF-fixdate, for Last-Modified. */
void text_format_http_date(int64_t ms, char out[TEXT_DATE_MAX]);
bool text_parse_http_date(const char *s, int64_t *ms);
int64_t text_now_ms(void);
uint64_t text_monotonic_us(void);

#endif
