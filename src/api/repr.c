/*
 * repr.c — representations (SPEC §4): which request body types a carrier
 * may arrive in, which answer type the caller gets, and writing answers
 * as JSON or XML.
 *
 * Negotiation happens once, from the headers, before authentication, so
 * that every answer of the exchange (errors included) comes in the type the
 * caller prefers. Whether "nothing acceptable" is an error (406) depends on
 * the route and is decided after routing.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api_int.h"
#include "api/xml.h"
#include "core/text.h"

/* Answer types, in the order ties are broken. */
static const struct {
    const char *mime;
    const char *content_type;
    bool xml;
} answer_types[] = {
    {"application/json", "application/json; charset=utf-8", false},
    {"text/json", "text/json; charset=utf-8", false},
    {"application/xml", "application/xml; charset=utf-8", true},
    {"text/xml", "text/xml; charset=utf-8", true},
};
#define N_ANSWER_TYPES (sizeof(answer_types) / sizeof(answer_types[0]))

static const struct {
    const char *mime;
    repr_body type;
} body_types[] = {
    {"application/json", REPR_JSON},
    {"text/json", REPR_JSON},
    {"application/xml", REPR_XML},
    {"text/xml", REPR_XML},
    {"application/x-www-form-urlencoded", REPR_FORM},
    {"application/json-patch+json", REPR_PATCH},
    {"application/merge-patch+json", REPR_MERGE},
};

/* The value of parameter `name` in "type; a=b; c="d"" (quotes removed), or
 * an empty text_span. */
static text_span media_param(const char *m, const char *name)
{
    const char *p = strchr(m, ';');
    while (p != NULL) {
        const char *next = strchr(p + 1, ';');
        text_span item = text_trim(p + 1, next ? (size_t)(next - p - 1) : strlen(p + 1));
        const char *eq = memchr(item.p, '=', item.n);
        if (eq != NULL) {
            text_span key = text_trim(item.p, (size_t)(eq - item.p));
            text_span val = text_trim(eq + 1, item.n - (size_t)(eq + 1 - item.p));
            if (val.n >= 2 && val.p[0] == '"' && val.p[val.n - 1] == '"')
                val = (text_span){val.p + 1, val.n - 2};
            if (text_ieq(key.p, key.n, name))
                return val;
        }
        p = next;
    }
    return (text_span){"", 0};
}

static text_span media_type(const char *m)
{
    return text_trim(m, strcspn(m, ";"));
}

bool repr_request_type(api_exchange *x, const char *ct)
{
    if (ct == NULL || text_trim(ct, strlen(ct)).n == 0) {
        x->body_repr = REPR_JSON; /* SPEC §4: no Content-Type is read as JSON */
        return true;
    }
    text_span t = media_type(ct), cs = media_param(ct, "charset");
    for (size_t i = 0; i < sizeof(body_types) / sizeof(body_types[0]); i++) {
        if (!text_ieq(t.p, t.n, body_types[i].mime))
            continue;
        if (cs.n > 0 && !text_ieq(cs.p, cs.n, "utf-8") && !text_ieq(cs.p, cs.n, "utf8")) {
            API_FAIL(x, CB_EUNSUPPORTED, MSG_BAD_CHARSET,
                     MSG_S(arena_strndup(x->arena, cs.p, cs.n)));
            return false;
        }
        x->body_repr = body_types[i].type;
        return true;
    }
    API_FAIL(x, CB_EUNSUPPORTED, MSG_UNSUPPORTED_TYPE, MSG_S(arena_strdup(x->arena, ct)));
    return false;
}

/* q of one Accept element: 1 by default, 0..1 with up to three decimals. */
static int parse_q(const char *elem)
{
    text_span q = media_param(elem, "q");
    if (q.n == 0)
        return 1000;
    int v = 0, digits = 0;
    size_t i = 0;
    for (; i < q.n && q.p[i] >= '0' && q.p[i] <= '9'; i++)
        v = v * 10 + (q.p[i] - '0');
    v *= 1000;
    if (i < q.n && q.p[i] == '.')
        for (i++; i < q.n && digits < 3 && q.p[i] >= '0' && q.p[i] <= '9'; i++, digits++)
            v += (q.p[i] - '0') * (digits == 0 ? 100 : digits == 1 ? 10 : 1);
    return v > 1000 ? 1000 : v;
}

/* How specifically range r covers answer type `mime`: 0 not at all,
 * 1 star/star, 2 type/star, 3 exact. The patch types count as JSON. */
static int specificity(text_span r, const char *mime)
{
    if (text_ieq(r.p, r.n, "*/*"))
        return 1;
    const char *slash = strchr(mime, '/');
    size_t tl = (size_t)(slash - mime);
    if (r.n == tl + 2 && strncasecmp(r.p, mime, tl) == 0 && r.p[tl] == '/' && r.p[tl + 1] == '*')
        return 2;
    if (text_ieq(r.p, r.n, mime))
        return 3;
    if (strcmp(mime, "application/json") == 0 &&
        (text_ieq(r.p, r.n, "application/json-patch+json") ||
         text_ieq(r.p, r.n, "application/merge-patch+json")))
        return 3;
    return 0;
}

/* q of answer type `mime` under the whole Accept value (the most specific
 * matching ranges decide). */
static int type_q(const char *accept, const char *mime)
{
    int best_spec = 0, q = 0;
    const char *p = accept;
    while (*p) {
        size_t n = strcspn(p, ",");
        char elem[256];
        if (n < sizeof(elem)) {
            memcpy(elem, p, n);
            elem[n] = '\0';
            int s = specificity(media_type(elem), mime);
            int eq = parse_q(elem);
            if (s > best_spec || (s == best_spec && s > 0 && eq > q)) {
                best_spec = s;
                q = eq;
            }
        }
        p += n + (p[n] == ',');
    }
    return best_spec ? q : 0;
}

int repr_accept_q(const char *accept, const char *mime)
{
    if (accept == NULL || text_trim(accept, strlen(accept)).n == 0)
        return 1000;
    return type_q(accept, mime);
}

bool repr_accept_named(const char *accept, const char *mime)
{
    const char *p = accept;
    while (*p) {
        size_t n = strcspn(p, ",");
        char elem[256];
        if (n < sizeof(elem)) {
            memcpy(elem, p, n);
            elem[n] = '\0';
            text_span t = media_type(elem);
            if (text_ieq(t.p, t.n, mime) && parse_q(elem) > 0)
                return true;
        }
        p += n + (p[n] == ',');
    }
    return false;
}

void repr_negotiate(api_exchange *x, const char *accept)
{
    x->answer_type = 0;
    x->acceptable = true;
    if (accept == NULL || text_trim(accept, strlen(accept)).n == 0)
        return;
    int best = -1, best_q = 0;
    for (size_t i = 0; i < N_ANSWER_TYPES; i++) {
        int q = type_q(accept, answer_types[i].mime);
        if (q > best_q) {
            best_q = q;
            best = (int)i;
        }
    }
    if (best < 0)
        x->acceptable = false;
    else
        x->answer_type = best;
}

bool repr_require_acceptable(api_exchange *x)
{
    if (x->acceptable)
        return true;
    API_FAIL(x, CB_ENOTACCEPT, MSG_NOT_ACCEPTABLE,
             MSG_S("application/json, text/json, application/xml or text/xml"));
    return false;
}

const char *repr_answer_content_type(const api_exchange *x)
{
    return answer_types[x->answer_type].content_type;
}

const char *repr_answer_mime(const api_exchange *x)
{
    return answer_types[x->answer_type].mime;
}

bool repr_answer_is_xml(const api_exchange *x)
{
    return answer_types[x->answer_type].xml;
}

void api_answer_carrier(api_exchange *x, int status, const char *root, json_t *j)
{
    if (j == NULL) { /* out of memory building it: a fixed error, nothing to write */
        x->answer_type = 0;
        if (status < 500)
            API_FAIL0(x, CB_EINTERNAL, MSG_INTERNAL);
        else
            api_answer_bytes(x, 500, NULL, NULL, 0);
        return;
    }
    buf_t b;
    buf_init(&b, 64u * 1024u * 1024u);
    cb_err e = CB_EOK;
    if (repr_answer_is_xml(x)) {
        e = xml_write(&b, root, j);
    } else {
        char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        e = text != NULL ? buf_puts(&b, text) : CB_EINTERNAL;
        free(text);
    }
    json_decref(j);
    if (e != CB_EOK) {
        buf_free(&b);
        x->answer_type = 0; /* the error itself as JSON */
        API_FAIL0(x, CB_EINTERNAL, MSG_INTERNAL);
        return;
    }
    size_t len;
    char *body = buf_steal(&b, &len);
    api_answer_bytes(x, status, answer_types[x->answer_type].content_type, body, len);
}
