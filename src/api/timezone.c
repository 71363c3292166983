/*
 * timezone.c — GET /api/v1/TimeZone, /TimeZone/base and /TimeZone/current
 * (SPEC §2, §6): the built-in locations of core/tz as TimeZoneData.
 *
 * TimeZoneSTDRules and TimeZoneDSTRules each hold at most one entry, keyed
 * by the current UTC year ("2026"), describing the period of that year
 * (see tz_year_rules):
 *   - StartDay/StartMonth: local date the period begins ("1"/"1" when it
 *     is in force on 1 January and nothing starts it that year);
 *   - EndDay/EndMonth: local date it gives way to the other period, which
 *     may fall in the next year (a northern standard period runs from
 *     October to March; "31"/"12" when nothing ends it);
 *   - TZOffset: minutes east of UTC during the period (DST included);
 *   - StartRulePattern/EndRulePattern: how those changes recur, as POSIX TZ
 *     rule dates ("M3.5.0/2" = last Sunday of March at 02:00 local; "" for
 *     no change).
 * Zones without daylight saving have an empty TimeZoneDSTRules.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/api_int.h"
#include "api/timezone.h"
#include "core/text.h"
#include "core/tz.h"

static json_t *rule_json(const tz_rule *r)
{
    return json_pack("{s:i, s:i, s:i, s:i, s:i, s:s, s:s}", "StartDay", r->start_day, "StartMonth",
                     r->start_month, "EndDay", r->end_day, "EndMonth", r->end_month, "TZOffset",
                     r->offset_minutes, "StartRulePattern", r->start_pattern, "EndRulePattern",
                     r->end_pattern);
}

/* {"2026": rule}, or {} without a rule. */
static json_t *rules_json(const tz_rule *r, int year)
{
    json_t *j = json_object();
    char key[16];
    snprintf(key, sizeof key, "%d", year);
    if (r != NULL)
        json_object_set_new(j, key, rule_json(r));
    return j;
}

static json_t *timezone_data(const tz_zone *z, int year)
{
    tz_year y;
    tz_year_rules(z, year, &y);
    json_t *j = json_object();
    json_object_set_new(j, "TZLocationID", json_integer(tz_id(z)));
    json_object_set_new(j, "Name", json_string(tz_name(z)));
    json_object_set_new(j, "TZLocationCode", json_string(tz_code(z)));
    json_object_set_new(j, "TZLocationCities", json_string(tz_cities(z)));
    json_object_set_new(j, "IsoNumber", json_integer(tz_iso(z)));
    json_object_set_new(j, "TimeZoneSTDRules", rules_json(&y.std, year));
    json_object_set_new(j, "TimeZoneDSTRules", rules_json(y.has_dst ? &y.dst : NULL, year));
    return j;
}

static int current_year(void)
{
    time_t now = (time_t)(text_now_ms() / 1000);
    struct tm tm;
    gmtime_r(&now, &tm); /* UTC: no process time zone involved */
    return tm.tm_year + 1900;
}

/* A non-negative int32 query parameter; absent keeps *out. False answered 400. */
static bool query_count(api_exchange *x, const api_request *req, const char *name, size_t *out)
{
    const char *v = req->query(req->conn, name);
    uint64_t n;
    if (v == NULL)
        return true;
    if (!text_parse_u64(v, strlen(v), &n) || n > INT32_MAX) {
        API_FAIL(x, CB_EBADREQ, MSG_BAD_QUERY, MSG_S(name), MSG_S(arena_strdup(x->arena, v)));
        return false;
    }
    *out = (size_t)n;
    return true;
}

void timezone_list(api_exchange *x, const api_request *req)
{
    size_t skip = 0, top = SIZE_MAX, count = tz_count();
    if (!query_count(x, req, "$skip", &skip) || !query_count(x, req, "$top", &top))
        return;
    int year = current_year();
    json_t *value = json_array();
    for (size_t i = skip; i < count && i - skip < top; i++)
        json_array_append_new(value, timezone_data(tz_at(i), year));
    json_t *j = json_object();
    json_object_set_new(j, "odata.metadata", json_string("/api/v1/$metadata#TimeZone"));
    json_object_set_new(j, "odata.nextLink", json_string(""));
    json_object_set_new(j, "value", value);
    api_answer_carrier(x, 200, "ODataSlimResponse", j);
}

void timezone_base(api_exchange *x, const api_request *req)
{
    (void)req;
    api_answer_carrier(x, 200, "TimeZoneData", timezone_data(tz_utc(), current_year()));
}

void timezone_current(api_exchange *x, const api_request *req)
{
    const char *h = req->header(req->conn, "SO-TimeZone");
    const tz_zone *z = tz_utc();
    bool with_offset;
    if (h != NULL && !tz_parse_header(h, &z, &with_offset)) {
        API_FAIL(x, CB_EBADREQ, MSG_BAD_TIMEZONE, MSG_S(arena_strdup(x->arena, h)));
        return;
    }
    api_answer_carrier(x, 200, "TimeZoneData", timezone_data(z, current_year()));
}
