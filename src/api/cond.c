/*
 * cond.c — conditional requests (SPEC §6, RFC 9110 §13): ETag and
 * Last-Modified on answers, 304 for GETs whose copy is current, 412 for
 * writes based on a stale copy, and the retries of writes whose copy
 * went stale without the client asking about it.
 *
 * Tags are strong and name a version of the record, not of one
 * representation: a JSON and an XML answer of the same version share the
 * tag, so a client may send back the tag it got in either form. Dates
 * compare at whole seconds, as HTTP dates carry no more.
 */
#include <string.h>

#include "api/api_int.h"
#include "core/text.h"

void cond_headers(api_exchange *x, const cond_state *c)
{
    if (c->etag != NULL)
        api_add_header(x, "ETag", c->etag);
    if (c->modified_ms != INT64_MIN) {
        char *lm = arena_alloc(x->arena, TEXT_DATE_MAX);
        text_format_http_date(c->modified_ms, lm);
        api_add_header(x, "Last-Modified", lm);
    }
}

/* Does the If-Match / If-None-Match list `h` name tag? `weak` allows W/
 * tags to match (If-None-Match); "*" matches any existing record. */
static bool tag_listed(const char *h, const cond_state *c, bool weak)
{
    const char *p = h;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '*')
            return c->exists;
        bool is_weak = strncmp(p, "W/", 2) == 0;
        const char *t = is_weak ? p + 2 : p;
        size_t n = strcspn(t, ",");
        while (n > 0 && t[n - 1] == ' ')
            n--;
        if ((weak || !is_weak) && c->etag != NULL && strlen(c->etag) == n &&
            memcmp(t, c->etag, n) == 0)
            return true;
        p = t + strcspn(t, ",");
    }
    return false;
}

/* Seconds of an HTTP-date header, or false when absent or unreadable
 * (an unreadable date is ignored, as RFC 9110 asks). */
static bool header_date(const api_request *req, const char *name, int64_t *secs)
{
    const char *h = req->header(req->conn, name);
    int64_t ms;
    if (h == NULL || !text_parse_http_date(h, &ms))
        return false;
    *secs = ms / 1000;
    return true;
}

bool cond_not_modified(api_exchange *x, const api_request *req, const cond_state *c)
{
    const char *inm = req->header(req->conn, "If-None-Match");
    int64_t since;
    bool fresh;
    if (inm != NULL)
        fresh = tag_listed(inm, c, true);
    else if (header_date(req, "If-Modified-Since", &since) && c->modified_ms != INT64_MIN)
        fresh = c->modified_ms / 1000 <= since;
    else
        return false;
    if (!fresh)
        return false;
    cond_headers(x, c);
    api_answer_empty(x, 304);
    return true;
}

bool cond_is_conditional(const api_request *req)
{
    return req->header(req->conn, "If-Match") != NULL ||
           req->header(req->conn, "If-Unmodified-Since") != NULL;
}

bool cond_write_allowed(api_exchange *x, const api_request *req, const cond_state *c)
{
    const char *im = req->header(req->conn, "If-Match");
    int64_t since;
    bool ok = true;
    if (im != NULL)
        ok = tag_listed(im, c, false);
    else if (header_date(req, "If-Unmodified-Since", &since) && c->modified_ms != INT64_MIN)
        ok = c->modified_ms / 1000 <= since;
    if (!ok)
        API_FAIL(x, CB_EPRECOND, MSG_PRECONDITION_FAILED,
                 MSG_S(model_entity(x->route.ent)->name), MSG_ID(x->route.id));
    return ok;
}

bool cond_write_again(const api_request *req, store_err *e, int attempts)
{
    if (*e != STORE_PRECONDITION || cond_is_conditional(req))
        return false; /* a 412 the client asked for stays one */
    if (attempts <= COND_REWRITES)
        return true;
    *e = STORE_UNAVAILABLE; /* the record changes faster than we can apply */
    return false;
}
