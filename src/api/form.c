/*
 * form.c — application/x-www-form-urlencoded reader (see form.h).
 *
 * The body is cut at '&' into pairs and each pair at its first '=' into a
 * name and a value; both are decoded ('+' and %XX) into one scratch buffer
 * and then checked before they reach jansson.
 *
 * Invariants:
 * - Decoding never grows a span, so the scratch buffer of len + 2 bytes
 *   holds any decoded name and value side by side.
 * - Every string handed to jansson is valid UTF-8 (Unicode table 3-7: no
 *   overlongs, no surrogates, nothing above U+10FFFF) without NUL, so the
 *   nocheck setters are safe.
 * - The result never holds two names that match case-insensitively.
 * - Error reasons are static English text plus a pair number: the client's
 *   bytes are never echoed (they may not even be UTF-8).
 */
#include "api/form.h"

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/text.h"

static void set_err(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t cap, const char *fmt, ...)
{
    if (err == NULL || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* Decodes src[0..n) into dst ('+' → space, %XX → byte); false on a bad
 * escape. dst has room for n bytes. */
static bool url_decode(const char *src, size_t n, char *dst, size_t *out_n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '+') {
            dst[o++] = ' ';
        } else if (src[i] != '%') {
            dst[o++] = src[i];
        } else {
            int hi = i + 2 < n ? text_hex_value(src[i + 1]) : -1;
            int lo = i + 2 < n ? text_hex_value(src[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return false;
            dst[o++] = (char)(hi << 4 | lo);
            i += 2;
        }
    }
    assert(o <= n);
    *out_n = o;
    return true;
}


/* What is wrong with decoded text for a JSON string, or NULL. */
static const char *text_problem(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (u[i] == 0)
            return "contains a NUL character";
        size_t k = text_utf8_seq(u + i, n - i);
        if (k == 0)
            return "is not valid UTF-8";
        i += k;
    }
    return NULL;
}



/* Sets name (kept as sent) to value after dropping every member whose name
 * matches case-insensitively: the last pair wins. */
static bool put_pair(json_t *obj, text_span name, text_span value)
{
    const char *key;
    size_t key_len;
    json_t *v;
    void *tmp;
    json_object_keylen_foreach_safe(obj, tmp, key, key_len, v)
    {
        if (text_span_ieq(key, key_len, name.p, name.n))
            json_object_deln(obj, key, key_len);
    }
    json_t *str = json_stringn_nocheck(value.p, value.n);
    return str != NULL && json_object_setn_new_nocheck(obj, name.p, name.n, str) == 0;
}

/* Decodes and checks one non-empty pair raw[0..n), the number-th. */
static bool parse_pair(json_t *obj, const char *raw, size_t n, char *scratch, size_t number,
                       char *err, size_t cap)
{
    const char *eq = memchr(raw, '=', n);
    size_t name_raw = eq != NULL ? (size_t)(eq - raw) : n;
    char *name_out = scratch, *value_out = scratch + name_raw + 1; /* decoded here */
    text_span name = {name_out, 0}, value = {value_out, 0};
    const char *why;
    if (!url_decode(raw, name_raw, name_out, &name.n) ||
        (eq != NULL && !url_decode(eq + 1, n - name_raw - 1, value_out, &value.n))) {
        set_err(err, cap, "pair %zu: invalid %%-escape (%%XX with two hex digits expected)",
                number);
        return false;
    }
    if ((why = text_problem(name.p, name.n)) != NULL ||
        (why = text_problem(value.p, value.n)) != NULL) {
        set_err(err, cap, "pair %zu: the decoded text %s", number, why);
        return false;
    }
    if (!put_pair(obj, name, value)) {
        set_err(err, cap, "out of memory");
        return false;
    }
    return true;
}

json_t *form_parse(const char *data, size_t len, char *err, size_t err_cap)
{
    json_t *obj = json_object();
    char *scratch = malloc(len + 2);
    size_t npairs = 0;
    if (obj == NULL || scratch == NULL) {
        set_err(err, err_cap, "out of memory");
        goto fail;
    }
    for (size_t pos = 0; pos < len;) {
        const char *amp = memchr(data + pos, '&', len - pos);
        size_t end = amp != NULL ? (size_t)(amp - data) : len;
        if (end > pos && ++npairs > FORM_MAX_PAIRS) {
            set_err(err, err_cap, "more than %d name=value pairs", FORM_MAX_PAIRS);
            goto fail;
        }
        if (end > pos && !parse_pair(obj, data + pos, end - pos, scratch, npairs, err, err_cap))
            goto fail;
        pos = end + 1;
    }
    free(scratch);
    return obj;
fail:
    free(scratch);
    json_decref(obj);
    return NULL;
}
