/*
 * fuzz_access_log.c — the access line (log_format_access, text and JSON)
 * and the request id a client may send (http_reqid_pick).
 *
 * Input: the fields method, target, user, app, client, X-Request-Id and
 * User-Agent, separated by NUL bytes (missing ones are NULL); two bytes of
 * the first field's tail are not special.
 *
 * Invariants beyond "no crash":
 *  - the id picked is 1..64 bytes that http_reqid_valid accepts, and the
 *    one sent when that was valid;
 *  - each line is shorter than LOG_ACCESS_MAX, ends with its only newline
 *    and holds no other control character;
 *  - the JSON line is one valid JSON object (checked by a strict reader
 *    below: strings valid UTF-8 with valid escapes, values strings,
 *    numbers or null) that ends with "client";
 *  - the text line's only quotes are the two around its User-Agent field
 *    (ua="..."), and it ends with " from=CLIENT" when a client is given.
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/text.h"
#include "http/reqid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- a strict reader of one flat JSON object ---- */

static const char *json_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    while (*p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20)
            return NULL;
        if (c == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (text_hex_value(p[i]) < 0)
                        return NULL;
                p += 5;
            } else if (*p != '\0' && strchr("\"\\/bfnrt", *p) != NULL) {
                p++;
            } else {
                return NULL;
            }
            continue;
        }
        size_t n = text_utf8_seq((const unsigned char *)p, strlen(p));
        if (n == 0)
            return NULL;
        p += n;
    }
    return p + 1;
}

static const char *json_value(const char *p)
{
    if (*p == '"')
        return json_string(p);
    if (strncmp(p, "null", 4) == 0)
        return p + 4;
    const char *start = p;
    while (*p >= '0' && *p <= '9')
        p++;
    return p > start ? p : NULL;
}

static void check_json(const char *line)
{
    const char *p = line;
    assert(*p++ == '{');
    const char *last_key = NULL;
    for (;;) {
        last_key = p;
        p = json_string(p);
        assert(p != NULL && *p++ == ':');
        p = json_value(p);
        assert(p != NULL);
        if (*p != ',')
            break;
        p++;
    }
    assert(strncmp(last_key, "\"client\"", 8) == 0);
    assert(p[0] == '}' && p[1] == '\n' && p[2] == '\0');
}

static void check_line(const char *line, size_t n)
{
    assert(n < LOG_ACCESS_MAX && n > 0 && line[n - 1] == '\n');
    for (size_t i = 0; i + 1 < n; i++)
        assert((unsigned char)line[i] >= 0x20 && line[i] != 0x7f);
}

static void check_text(const char *line, const log_access_fields *f)
{
    const char *q = strchr(line, '"'), *end = q != NULL ? strchr(q + 1, '"') : NULL;
    assert(end != NULL && strchr(end + 1, '"') == NULL); /* the user agent's quotes only */
    assert(q - line >= 4 && strncmp(q - 4, " ua=", 4) == 0);
    assert(end[1] == '\n' || end[1] == ' ');
    if (f->client != NULL && *f->client) {
        const char *from = strrchr(line, ' ');
        assert(strncmp(from, " from=", 6) == 0 && from > end);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    const char *field[7] = {NULL};
    size_t k = 0;
    for (const char *p = text; k < 7 && p <= text + size; p += strlen(p) + 1)
        field[k++] = p;
    char id[HTTP_REQID_MAX];
    http_reqid_gen g;
    http_reqid_init(&g);
    http_reqid_pick(&g, field[5], id);
    assert(http_reqid_valid(id) && strlen(id) >= 1 && strlen(id) < HTTP_REQID_MAX);
    if (field[5] != NULL && http_reqid_valid(field[5]))
        assert(strcmp(id, field[5]) == 0);
    log_access_fields f = {field[0], field[1], 200, 1, 2, field[2], field[3], field[4],
                           field[5], field[6]};
    static char line[LOG_ACCESS_MAX + 1];
    size_t n = log_format_access(LOG_JSON, &f, line);
    line[n] = '\0';
    check_line(line, n);
    check_json(line);
    n = log_format_access(LOG_TEXT, &f, line);
    line[n] = '\0';
    check_line(line, n);
    check_text(line, &f);
    free(text);
    return 0;
}
