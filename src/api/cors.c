/*
 * cors.c — cross-origin requests from browser pages, for the origins the
 * operator lists (--cors-origin), as the reference configures them.
 *
 * A preflight (OPTIONS with Origin and Access-Control-Request-Method) is
 * answered before authentication: browsers send it without credentials.
 * An origin not on the list gets no CORS headers at all (and 403 for a
 * preflight), so the browser keeps the page out. With "*" any origin is
 * allowed, but then without credentials, as the Fetch standard requires.
 *
 * The list can be replaced while requests run (a SIGHUP reload,
 * api_set_cors): it is one allocation, read under the api's cors_lock
 * (shared; only requests that carry an Origin take it) and swapped whole
 * under it (exclusive; writer-preferring, so a reload never waits behind
 * a stream of readers). A request checks its origin against one list.
 */
#include <stdlib.h>
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

/* The origins and their text in one block (freed with it). */
struct cors_list {
    size_t n;
    char *origin[];
};

static struct cors_list *list_new(const char *const *origins, size_t n)
{
    size_t bytes = sizeof(struct cors_list) + n * sizeof(char *);
    for (size_t i = 0; i < n; i++)
        bytes += strlen(origins[i]) + 1;
    struct cors_list *l = malloc(bytes);
    if (l == NULL)
        return NULL;
    char *text = (char *)&l->origin[n];
    l->n = n;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(origins[i]) + 1;
        l->origin[i] = memcpy(text, origins[i], len);
        text += len;
    }
    return l;
}

static bool list_same(const struct cors_list *l, const char *const *origins, size_t n)
{
    if (l->n != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(l->origin[i], origins[i]) != 0)
            return false;
    return true;
}

cb_err cors_init(api_t *api)
{
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&api->cors_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    api->cors = list_new(api->cfg.cors_origins, api->cfg.ncors);
    return api->cors != NULL ? CB_EOK : CB_EINTERNAL;
}

void cors_destroy(api_t *api)
{
    free(api->cors);
    api->cors = NULL;
    pthread_rwlock_destroy(&api->cors_lock);
}

cb_err api_set_cors(api_t *api, const char *const *origins, size_t n, bool *changed)
{
    pthread_rwlock_rdlock(&api->cors_lock); /* only this thread writes */
    *changed = !list_same(api->cors, origins, n);
    pthread_rwlock_unlock(&api->cors_lock);
    if (!*changed)
        return CB_EOK;
    struct cors_list *l = list_new(origins, n), *old;
    if (l == NULL)
        return CB_EINTERNAL;
    pthread_rwlock_wrlock(&api->cors_lock);
    old = api->cors;
    api->cors = l;
    pthread_rwlock_unlock(&api->cors_lock);
    free(old);
    return CB_EOK;
}

/* 1 the origin is listed, 2 only "*" covers it, 0 not allowed. */
static int origin_allowed(api_t *api, const char *origin)
{
    int how = 0;
    pthread_rwlock_rdlock(&api->cors_lock);
    for (size_t i = 0; i < api->cors->n && how != 1; i++) {
        if (strcasecmp(api->cors->origin[i], origin) == 0)
            how = 1;
        else if (strcmp(api->cors->origin[i], "*") == 0)
            how = 2;
    }
    pthread_rwlock_unlock(&api->cors_lock);
    return how;
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
    int how = origin_allowed(x->api, origin);
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

bool cors_origin_listed(api_t *api, const char *origin)
{
    return origin != NULL && origin_allowed(api, origin) == 1;
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
    int how = origin != NULL ? origin_allowed(x->api, origin) : 0;
    if (how == 0 || x->resp.nheaders + 4 > API_MAX_HEADERS)
        return;
    allow_origin(x, origin, how);
    api_add_header(x, "Access-Control-Expose-Headers", EXPOSE_HEADERS);
}
