/*
 * fuzz_form.c — application/x-www-form-urlencoded bodies, form_parse().
 *
 * Invariants beyond "no crash":
 *  - an accepted body is an object of at most FORM_MAX_PAIRS strings, no
 *    two of whose names match case-insensitively, with no NUL in names or
 *    values;
 *  - parse → encode → parse round trip: the object percent-encoded again
 *    (every byte but unreserved ones as %XX, space as '+') reads back equal;
 *  - a refused body gives a reason.
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/form.h"
#include "core/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void encode(buf_writer *w, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~", c) != NULL)
            buf_w_append(w, &s[i], 1);
        else if (c == ' ')
            buf_w_append(w, "+", 1);
        else
            buf_w_printf(w, "%%%02X", c);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    json_t *j = form_parse((const char *)data, size, err, sizeof(err));
    if (j == NULL) {
        assert(err[0] != '\0');
        return 0;
    }
    assert(json_is_object(j) && json_object_size(j) <= FORM_MAX_PAIRS);
    buf_t b;
    buf_init(&b, 1u << 24);
    buf_writer w = buf_writer_on(&b);
    const char *k, *k2;
    json_t *v, *v2;
    json_object_foreach(j, k, v)
    {
        assert(json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v));
        json_object_foreach(j, k2, v2) assert(k == k2 || strcasecmp(k, k2) != 0);
        if (b.len > 0)
            buf_w_append(&w, "&", 1);
        encode(&w, k, strlen(k));
        buf_w_append(&w, "=", 1);
        encode(&w, json_string_value(v), json_string_length(v));
    }
    assert(w.err == CB_EOK); /* a parsed form encodes within 16 MiB */
    json_t *again = form_parse(b.data != NULL ? b.data : "", b.len, err, sizeof(err));
    assert(again != NULL && json_equal(j, again));
    json_decref(again);
    buf_free(&b);
    json_decref(j);
    return 0;
}
