/*
 * tz.h — the time-zone locations that SO-TimeZone accepts (SPEC §6) and the
 * zone arithmetic behind them.
 *
 * A location is a row of a built-in table (code such as "NO" or "US-NY",
 * display name, cities, ISO 3166 number) bound to an IANA zone. tz_init
 * reads each zone's TZif file once at startup; afterwards every function
 * here only reads shared state, so request threads may call them
 * concurrently. Nothing here touches the process-wide TZ (no setenv, tzset
 * or localtime).
 *
 * Offsets are east of UTC: +60 minutes for Oslo in winter, -300 for New
 * York. The TZif and POSIX TZ parsers are exported for tests and fuzzing.
 */
#ifndef CB_TZ_H
#define CB_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/text.h"

#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"

/* ---- locations ---- */

typedef struct tz_zone tz_zone;

/* Loads every row's zone from zoneinfo_dir (NULL: TZ_DEFAULT_DIR). Rows
 * whose file is missing or malformed are dropped with a warning; UTC is
 * always kept. CB_EINTERNAL when the directory cannot be read (only UTC is
 * then available). Call once at startup, before any reader; calling it
 * again replaces the previous set (tests). */
cb_err tz_init(const char *zoneinfo_dir);
/* Frees what tz_init loaded; afterwards only UTC is known. */
void tz_shutdown(void);

/* Case-insensitive lookup of a location code; NULL when unknown. */
const tz_zone *tz_find(const char *code);
/* The UTC location; never NULL, also before tz_init. */
const tz_zone *tz_utc(void);
/* The loaded locations in table order: 0 <= i < tz_count(). */
size_t tz_count(void);
const tz_zone *tz_at(size_t i);
/* Rows of the built-in table, loaded or not (tz_count() <= this). */
size_t tz_table_size(void);

int tz_id(const tz_zone *z);             /* TZLocationID, stable across releases */
const char *tz_code(const tz_zone *z);   /* TZLocationCode: "NO", "US-NY" */
const char *tz_name(const tz_zone *z);   /* Name: "Norway" */
const char *tz_cities(const tz_zone *z); /* TZLocationCities: "Oslo" */
int tz_iso(const tz_zone *z);            /* IsoNumber: 578 (0: none) */
const char *tz_iana(const tz_zone *z);   /* "Europe/Oslo" */

/* UTC offset in minutes at that instant, daylight saving included
 * (seconds of historical offsets are truncated toward zero). */
int tz_offset_minutes(const tz_zone *z, int64_t utc_ms);

/* ---- a year's rules, for the TimeZoneData carrier ---- */

#define TZ_PATTERN_MAX 24

/* One period of a year: when it starts and ends (local dates, in the
 * offset in force just before the change) and its offset. The patterns
 * say how the change recurs, in POSIX TZ rule form ("M3.5.0/2" = last
 * Sunday of March, 02:00 local); "" when the period has no start or end in
 * that year. */
typedef struct {
    int start_day, start_month;
    int end_day, end_month;
    int offset_minutes;
    char start_pattern[TZ_PATTERN_MAX];
    char end_pattern[TZ_PATTERN_MAX];
} tz_rule;

typedef struct {
    tz_rule std;
    bool has_dst;
    tz_rule dst; /* valid when has_dst */
} tz_year;

/* The standard and daylight periods that begin in `year` (see tz.c). */
void tz_year_rules(const tz_zone *z, int year, tz_year *out);

/* ---- dates and the SO-TimeZone header ---- */

/* "2026-11-23T10:14:05+01:00": local time with an explicit offset (also
 * "+00:00"), ".123" when ms is not whole; ms == INT64_MIN gives the
 * empty-carrier date of text_format_date. |offset_minutes| < 26 h, which
 * holds for every offset tz_offset_minutes returns (RFC 8536 bounds). */
#define TZ_OFFSET_LIMIT (26 * 60)
void tz_format_date(int64_t ms, int offset_minutes, char out[TEXT_DATE_MAX]);
/* "CODE" or "CODE, includeTZOffset" (keyword in any case, spaces
 * optional). False for an unknown code or anything else. */
bool tz_parse_header(const char *so_timezone, const tz_zone **zone, bool *include_offset);

/* ---- parsers, exported for tests and fuzzing ---- */

/* One POSIX TZ rule date: Jn (1..365, no Feb 29), n (0..365), Mm.w.d. */
typedef struct {
    char kind;                 /* 'J', 'N' (plain n) or 'M' */
    int16_t day;               /* Jn/n: the day number; M: weekday 0 (Sunday) .. 6 */
    int8_t month, week;        /* M only */
    int32_t secs;              /* local time of the change, -167h..167h */
    char text[TZ_PATTERN_MAX]; /* as written, with its "/time" if any */
} tz_posix_date;

typedef struct {
    int32_t std_off, dst_off; /* seconds east of UTC */
    bool has_dst;
    tz_posix_date start, end; /* valid when has_dst */
} tz_posix;

/* "CET-1CEST,M3.5.0,M10.5.0/3", "<+0545>-5:45", "EST5EDT" (US rules). */
bool tz_posix_parse(const char *s, size_t n, tz_posix *out);
int32_t tz_posix_offset(const tz_posix *p, int64_t utc_s, bool *isdst);

typedef struct tz_rules tz_rules;

/* A TZif file (RFC 8536, versions 1 to 4) in memory. */
cb_err tz_rules_parse(const unsigned char *data, size_t len, tz_rules **out);
void tz_rules_free(tz_rules *r);
/* Offset in seconds east of UTC; isdst may be NULL. */
int32_t tz_rules_offset(const tz_rules *r, int64_t utc_s, bool *isdst);

#endif
