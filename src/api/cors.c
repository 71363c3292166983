/*
 * cors.c — cross-origin requests from browser pages, for the origins the
 * operator lists (--cors-origin), as the reference configures them.
 *
 * A preflight (OPTIONS with Origin and Access-Control-Request-Method) is
 * answered before authentication: browsers send it without credentials.
 * An origin not on the list gets no CORS headers at all (and 403 for a
 * preflight), so the browser keeps the page out. With "*" any origin is
 * allowed, but then without credentials, as the Fetch standard requires.
 */
#include <string.h>
#include <strings.h>

#include "api/api_int.h"

#define ALLOW_METHODS "GET, HEAD, PUT, POST, DELETE, OPTIONS"
#define ALLOW_HEADERS                                                                              \
    "Authorization, Content-Type, Accept, Accept-Language, If-Match, If-None-Match, "              \
    "If-Modified-Since, If-Unmodified-Since, SO-Language, SO-Culture, SO-TimeZone, "               \
    "SO-AppToken, X-XSRF-TOKEN, X-Requested-With"
#define EXPOSE_HEADERS \
    "ETag, Last-Modified, Location, WWW-Authenticate, Retry-After, Allow, X-Request-Id"

/* 1 the origin is listed, 2 only "*" covers it, 0 not allowed. */
static int origin_allowed(const api_config *cfg, const char *origin)
{
    int star = 0;
    for (size_t i = 0; i < cfg->ncors; i++) {
        if (strcasecmp(cfg->cors_origins[i], origin) == 0)
            return 1;
        if (strcmp(cfg->cors_origins[i], "*") == 0)
            star = 2;
    }
    return star;
}

/* The Allow-Origin (and Credentials) headers for an allowed origin. */
static void allow_origin(api_exchange *x, const char *origin, int how)
{
    if (how == 2) {
        api_add_header(x, "Access-Control-Allow-Origin", "*");
        return;
    }
    api_add_header(x, "Access-Control-Allow-Origin", arena_strdup(x->arena, origin));
    api_add_header(x, "Access-Control-Allow-Credentials", "true");
    api_add_header(x, "Vary", "Origin");
}

bool cors_preflight(api_exchange *x, const api_request *req)
{
    const char *origin = req->header(req->conn, "Origin");
    if (strcmp(req->method, "OPTIONS") != 0 || origin == NULL ||
        req->header(req->conn, "Access-Control-Request-Method") == NULL)
        return false;
    int how = origin_allowed(&x->api->cfg, origin);
    if (how == 0) {
        API_FAIL(x, CB_EFORBIDDEN, MSG_CORS_ORIGIN, MSG_S(arena_strdup(x->arena, origin)));
        return true;
    }
    /* Allow-Origin and the rest come with every answer (cors_answer_headers) */
    api_add_header(x, "Access-Control-Allow-Methods", ALLOW_METHODS);
    api_add_header(x, "Access-Control-Allow-Headers", ALLOW_HEADERS);
    api_add_header(x, "Access-Control-Max-Age", "600");
    api_answer_empty(x, 204);
    return true;
}

bool cors_origin_listed(const api_config *cfg, const char *origin)
{
    return origin != NULL && origin_allowed(cfg, origin) == 1;
}

bool cors_type_is_simple(const char *content_type)
{
    static const char *const simple[] = {"application/x-www-form-urlencoded",
                                         "multipart/form-data", "text/plain"};
    if (content_type == NULL)
        return true; /* fetch sends a body of no type without a preflight */
    text_span t = text_trim(content_type, strcspn(content_type, ";"));
    for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
        if (text_ieq(t.p, t.n, simple[i]))
            return true;
    return false;
}

void cors_answer_headers(api_exchange *x)
{
    const char *origin = x->origin;
    int how = origin != NULL ? origin_allowed(&x->api->cfg, origin) : 0;
    if (how == 0 || x->resp.nheaders + 4 > API_MAX_HEADERS)
        return;
    allow_origin(x, origin, how);
    api_add_header(x, "Access-Control-Expose-Headers", EXPOSE_HEADERS);
}
