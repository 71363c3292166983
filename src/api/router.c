/*
 * router.c — maps a request path and method to a handler (SPEC §1, §2).
 *
 * Each method of a route carries its properties in its row: the body it
 * takes, whether it writes, answers a carrier, needs no credentials
 * (public) or is a probe kept out of the access log (quiet). Nothing
 * recognises a route by its handler. api_route_walk describes the table
 * (every path and method); the OpenAPI document (openapi.json) is held to
 * that description by test_router.
 *
 * Path literals match case-insensitively; a trailing slash is ignored.
 * A path no API route has may name one of the page's files (asset.c),
 * matched exactly (case-sensitively).
 * Resolution order: unknown path → 404, then bad {id} → 400, then a
 * method the route does not offer → 405 with Allow.
 */
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "api/timezone.h"
#include "core/text.h"

#define MAX_SEGS 8

typedef struct {
    const char *p;
    size_t n;
} seg_t;

/* GET: a page of entities (list.c), for any role. */
static const route_method entity_new_methods[] = {
    ROUTE_ROW("GET", entity_list, BODY_NONE, false, true),
    ROUTE_ROW("POST", entity_create, BODY_JSON, true, true),
    {0},
};
static const route_method entity_methods[] = {
    ROUTE_ROW("GET", entity_get, BODY_NONE, false, true),
    ROUTE_ROW("PUT", entity_put, BODY_JSON, true, true),
    ROUTE_ROW("DELETE", entity_delete, BODY_NONE, true, false),
    {0},
};
static const route_method image_methods[] = {
    ROUTE_ROW("GET", image_get, BODY_NONE, false, false, .blocks = image_get_blocks),
    ROUTE_ROW("HEAD", image_get, BODY_NONE, false, false, .blocks = image_get_blocks),
    ROUTE_ROW("PUT", image_put, BODY_IMAGE, true, true),
    ROUTE_ROW("POST", image_put, BODY_IMAGE, true, true),
    ROUTE_ROW("DELETE", image_delete, BODY_NONE, true, false),
    {0},
};
static const route_method legacy_image_methods[] = {
    ROUTE_ROW("GET", image_get, BODY_NONE, false, false, .blocks = image_get_blocks),
    ROUTE_ROW("HEAD", image_get, BODY_NONE, false, false, .blocks = image_get_blocks),
    {0},
};
static const route_method image_info_methods[] = {
    ROUTE_ROW("GET", image_info_get, BODY_NONE, false, true),
    ROUTE_ROW("PUT", image_info_put, BODY_JSON, true, true),
    {0},
};
/* The project image library: any role reads, editors delete. */
static const route_method library_methods[] = {
    ROUTE_ROW("GET", library_list, BODY_NONE, false, true),
    {0},
};
static const route_method library_item_methods[] = {
    ROUTE_ROW("GET", library_get, BODY_NONE, false, false),
    ROUTE_ROW("DELETE", library_delete, BODY_NONE, true, false),
    {0},
};

static const route_method login_methods[] = {
    ROUTE_ROW("POST", session_login, BODY_JSON, false, true, .public = true, .signs_in = true),
    {0},
};
static const route_method logout_methods[] = {
    ROUTE_ROW("POST", session_logout, BODY_NONE, false, false),
    {0},
};

static const route_method tz_list_methods[] = {
    ROUTE_ROW("GET", timezone_list, BODY_NONE, false, true),
    {0},
};
static const route_method tz_base_methods[] = {
    ROUTE_ROW("GET", timezone_base, BODY_NONE, false, true),
    {0},
};
static const route_method tz_current_methods[] = {
    ROUTE_ROW("GET", timezone_current, BODY_NONE, false, true),
    {0},
};

/* Probes for load balancers (health.c): no credentials, no access line. */
static const route_method health_methods[] = {
    ROUTE_ROW("GET", health_alive, BODY_NONE, false, false, .public = true, .quiet = true),
    ROUTE_ROW("HEAD", health_alive, BODY_NONE, false, false, .public = true, .quiet = true),
    {0},
};
static const route_method ready_methods[] = {
    ROUTE_ROW("GET", health_ready, BODY_NONE, false, false, .public = true, .quiet = true,
              .blocks = health_ready_blocks),
    ROUTE_ROW("HEAD", health_ready, BODY_NONE, false, false, .public = true, .quiet = true,
              .blocks = health_ready_blocks),
    {0},
};

/* The operators' page (health.c): the metrics, for admins. */
static const route_method metrics_methods[] = {
    ROUTE_ROW("GET", health_metrics, BODY_NONE, false, false, .admin = true),
    ROUTE_ROW("HEAD", health_metrics, BODY_NONE, false, false, .admin = true),
    {0},
};

/* The API described (openapi.c): no credentials. */
static const route_method openapi_methods[] = {
    ROUTE_ROW("GET", openapi_get, BODY_NONE, false, false, .public = true),
    ROUTE_ROW("HEAD", openapi_get, BODY_NONE, false, false, .public = true),
    {0},
};

/* The page's static files (asset.c): anyone may read them. */
static const route_method asset_methods[] = {
    ROUTE_ROW("GET", asset_get, BODY_NONE, false, false, .public = true),
    ROUTE_ROW("HEAD", asset_get, BODY_NONE, false, false, .public = true),
    {0},
};

static const route_method *methods_of(const route_t *r)
{
    switch (r->kind) {
    case ROUTE_LOGIN: return login_methods;
    case ROUTE_LOGOUT: return logout_methods;
    case ROUTE_TZ_LIST: return tz_list_methods;
    case ROUTE_TZ_BASE: return tz_base_methods;
    case ROUTE_TZ_CURRENT: return tz_current_methods;
    case ROUTE_ENTITY_NEW: return entity_new_methods;
    case ROUTE_ENTITY: return entity_methods;
    case ROUTE_IMAGE: return r->legacy ? legacy_image_methods : image_methods;
    case ROUTE_IMAGE_INFO: return image_info_methods;
    case ROUTE_LIB: return library_methods;
    case ROUTE_LIB_ITEM: return library_item_methods;
    case ROUTE_AGENT: return agent_methods(r->agent);
    case ROUTE_BATCH_LIST:
    case ROUTE_BATCH:
    case ROUTE_BATCH_STOP:
    case ROUTE_BATCH_ARCHIVE: return batch_route_methods(r->kind);
    case ROUTE_BATCH_AGENT: return batch_agent_methods(r->agent);
    case ROUTE_HEALTH: return health_methods;
    case ROUTE_READY: return ready_methods;
    case ROUTE_METRICS: return metrics_methods;
    case ROUTE_OPENAPI: return openapi_methods;
    case ROUTE_ASSET: return asset_methods;
    default: return NULL;
    }
}

static int split_path(const char *path, seg_t *segs)
{
    int n = 0;
    const char *p = path;
    while (*p == '/')
        p++;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (n == MAX_SEGS)
            return -1;
        segs[n++] = (seg_t){p, len};
        p += len;
        if (*p == '/')
            p++;
    }
    return n;
}

static bool seg_is(seg_t s, const char *lit)
{
    return text_ieq(s.p, s.n, lit);
}

/* /api/v1/TimeZone[/base|/current] */
static bool match_timezone(const seg_t *s, int n, route_t *r)
{
    if (n == 3)
        r->kind = ROUTE_TZ_LIST;
    else if (n == 4 && seg_is(s[3], "base"))
        r->kind = ROUTE_TZ_BASE;
    else if (n == 4 && seg_is(s[3], "current"))
        r->kind = ROUTE_TZ_CURRENT;
    else
        return false;
    return true;
}

/* /api/v1/BatchTask[/{id}[/Stop]], /api/v1/BatchTask/{state},
 * /api/v1/BatchTask/Archive (no state is named so): an {id} that is
 * neither a positive id nor a state name is no resource. */
static bool match_batch(const seg_t *s, int n, route_t *r)
{
    if (n == 3) {
        r->kind = ROUTE_BATCH_LIST;
        return true;
    }
    if (n == 4 && seg_is(s[3], "Archive")) { /* no id, no state name */
        r->kind = ROUTE_BATCH_ARCHIVE;
        return true;
    }
    if (n > 5 || (n == 5 && !seg_is(s[4], "Stop")))
        return false;
    r->kind = n == 5 ? ROUTE_BATCH_STOP : ROUTE_BATCH;
    if (text_parse_pos_i32(s[3].p, s[3].n, &r->id))
        return true;
    r->id = 0;
    return n == 4 && batch_state_parse(s[3].p, s[3].n, &r->batch_state);
}

/* /health, /ready and /metrics, outside /api. */
static bool match_probe(const seg_t *s, int n, route_t *r)
{
    if (n != 1)
        return false;
    if (seg_is(s[0], "health"))
        r->kind = ROUTE_HEALTH;
    else if (seg_is(s[0], "ready"))
        r->kind = ROUTE_READY;
    else if (seg_is(s[0], "metrics"))
        r->kind = ROUTE_METRICS;
    else
        return false;
    return true;
}

/* /api/openapi.json, /api/v1/{E}[/{id}[/Image|/ImageInfo]], /api/Services80/{e}/{id}/image[/content],
 * the time-zone paths and the probes; false when the shape is unknown. */
static bool match_shape(const seg_t *s, int n, route_t *r, seg_t *id_seg)
{
    if (match_probe(s, n, r))
        return true;
    if (n == 2 && seg_is(s[0], "api") && seg_is(s[1], "openapi.json")) {
        r->kind = ROUTE_OPENAPI;
        return true;
    }
    if (n < 3 || !seg_is(s[0], "api"))
        return false;
    if (seg_is(s[1], "v1") && seg_is(s[2], "TimeZone"))
        return match_timezone(s, n, r);
    if (n == 5 && seg_is(s[1], "v1") && seg_is(s[2], "Agents") && seg_is(s[3], "BLOB")) {
        r->kind = ROUTE_AGENT;
        return agent_find(s[4].p, s[4].n, &r->agent) != NULL;
    }
    if ((n == 3 || n == 4) && seg_is(s[1], "v1") && seg_is(s[2], "ProjectImageLibrary")) {
        r->kind = n == 3 ? ROUTE_LIB : ROUTE_LIB_ITEM;
        if (n == 4)
            *id_seg = s[3];
        return true;
    }
    if (n == 5 && seg_is(s[1], "v1") && seg_is(s[2], "Agents") && seg_is(s[3], "Batch")) {
        r->kind = ROUTE_BATCH_AGENT;
        return batch_agent_find(s[4].p, s[4].n, &r->agent) != NULL;
    }
    if (seg_is(s[1], "v1") && seg_is(s[2], "BatchTask"))
        return match_batch(s, n, r);
    if (n == 3 && seg_is(s[1], "v1") && (seg_is(s[2], "login") || seg_is(s[2], "logout"))) {
        r->kind = seg_is(s[2], "login") ? ROUTE_LOGIN : ROUTE_LOGOUT;
        return true;
    }
    int kind = model_kind_from_name(s[2].p, s[2].n);
    if (kind < 0)
        return false;
    r->ent = (model_kind)kind;
    if (n >= 4)
        *id_seg = s[3];
    if (seg_is(s[1], "Services80")) {
        r->legacy = true;
        r->kind = ROUTE_IMAGE;
        return (n == 5 || (n == 6 && seg_is(s[5], "content"))) && seg_is(s[4], "image");
    }
    if (!seg_is(s[1], "v1") || n > 5)
        return false;
    if (n == 3)
        r->kind = ROUTE_ENTITY_NEW;
    else if (n == 4)
        r->kind = ROUTE_ENTITY;
    else if (seg_is(s[4], "Image"))
        r->kind = ROUTE_IMAGE;
    else if (seg_is(s[4], "ImageInfo"))
        r->kind = ROUTE_IMAGE_INFO;
    else
        return false;
    return true;
}

static void fail_method(api_exchange *x, const route_method *ms)
{
    buf_t allow;
    buf_init(&allow, 256);
    buf_writer w = buf_writer_on(&allow); /* (a route's few methods fit) */
    for (const route_method *m = ms; m->method; m++)
        buf_w_printf(&w, "%s%s", allow.len ? ", " : "", m->method);
    api_add_header(x, "Allow", arena_strdup(x->arena, buf_str(&allow)));
    buf_free(&allow);
    API_FAIL(x, CB_EMETHOD, MSG_METHOD_NOT_ALLOWED, MSG_S(x->method), MSG_S(x->path));
}

/* The route of path's shape, its {id} not yet parsed; false when unknown. */
static bool resolve(const char *path, route_t *r, seg_t *id_seg)
{
    seg_t segs[MAX_SEGS];
    int n = split_path(path, segs);
    if (n >= 0 && match_shape(segs, n, r, id_seg))
        return true;
    *r = (route_t){.kind = ROUTE_ASSET, .asset = asset_find(path)};
    return r->asset >= 0;
}

static const route_method *method_of(const route_method *ms, const char *method)
{
    for (const route_method *m = ms; m->method; m++)
        if (strcmp(m->method, method) == 0)
            return m;
    return NULL;
}

bool api_route_exists(const char *path)
{
    route_t r = {0};
    seg_t id_seg = {NULL, 0};
    return resolve(path, &r, &id_seg);
}

bool api_route_is_public(const char *path, const char *method)
{
    route_t r = {0};
    seg_t id_seg = {NULL, 0};
    if (!resolve(path, &r, &id_seg))
        return false;
    const route_method *ms = methods_of(&r), *m = method_of(ms, method);
    if (m != NULL)
        return m->public;
    for (m = ms; m->method; m++)
        if (m->public)
            return true;
    return false;
}

bool api_route(api_exchange *x, const api_request *req)
{
    seg_t id_seg = {NULL, 0};
    route_t r = {0};
    if (!resolve(req->path, &r, &id_seg)) {
        API_FAIL(x, CB_ENOTFOUND, MSG_ROUTE_NOT_FOUND, MSG_S(x->path));
        return false;
    }
    bool has_id = r.kind <= ROUTE_LIB_ITEM && r.kind != ROUTE_ENTITY_NEW;
    if (has_id && !text_parse_pos_i32(id_seg.p, id_seg.n, &r.id)) {
        API_FAIL(x, CB_EBADREQ, MSG_BAD_ID, MSG_S(arena_strndup(x->arena, id_seg.p, id_seg.n)));
        return false;
    }
    x->route = r;
    if ((x->rm = method_of(methods_of(&r), req->method)) != NULL)
        return true;
    fail_method(x, methods_of(&r));
    return false;
}

/* ---- route templates (labels of the metrics) ----
 * One per route kind (its index), then the legacy picture path, then one
 * per agent method, then "other": a path no route has. */

static const char *const kind_templates[ROUTE__COUNT] = {
    [ROUTE_ENTITY_NEW] = "/api/v1/{entity}",
    [ROUTE_ENTITY] = "/api/v1/{entity}/{id}",
    [ROUTE_IMAGE] = "/api/v1/{entity}/{id}/Image",
    [ROUTE_IMAGE_INFO] = "/api/v1/{entity}/{id}/ImageInfo",
    [ROUTE_LIB_ITEM] = "/api/v1/ProjectImageLibrary/{id}",
    [ROUTE_LIB] = "/api/v1/ProjectImageLibrary",
    [ROUTE_TZ_LIST] = "/api/v1/TimeZone",
    [ROUTE_TZ_BASE] = "/api/v1/TimeZone/base",
    [ROUTE_TZ_CURRENT] = "/api/v1/TimeZone/current",
    [ROUTE_LOGIN] = "/api/v1/login",
    [ROUTE_LOGOUT] = "/api/v1/logout",
    [ROUTE_AGENT] = "/api/v1/Agents/BLOB/{method}",
    [ROUTE_BATCH_LIST] = "/api/v1/BatchTask",
    [ROUTE_BATCH] = "/api/v1/BatchTask/{id}",
    [ROUTE_BATCH_STOP] = "/api/v1/BatchTask/{id}/Stop",
    [ROUTE_BATCH_AGENT] = "/api/v1/Agents/Batch/{method}",
    [ROUTE_BATCH_ARCHIVE] = "/api/v1/BatchTask/Archive",
    [ROUTE_HEALTH] = "/health",
    [ROUTE_READY] = "/ready",
    [ROUTE_METRICS] = "/metrics",
    [ROUTE_OPENAPI] = "/api/openapi.json",
    [ROUTE_ASSET] = "/{asset}",
};
#define TEMPLATE_LEGACY ((size_t)ROUTE__COUNT)
#define TEMPLATE_AGENT0 (TEMPLATE_LEGACY + 1)

#define TEMPLATE_BATCH0 (TEMPLATE_AGENT0 + agent_count())

size_t api_template_count(void)
{
    return TEMPLATE_BATCH0 + batch_agent_count() + 1;
}

void api_template(size_t i, char *buf, size_t cap)
{
    if (i < TEMPLATE_LEGACY)
        snprintf(buf, cap, "%s", kind_templates[i]);
    else if (i == TEMPLATE_LEGACY)
        snprintf(buf, cap, "/api/Services80/{entity}/{id}/image");
    else if (i < TEMPLATE_BATCH0)
        snprintf(buf, cap, "/api/v1/Agents/BLOB/%s", agent_name((int)(i - TEMPLATE_AGENT0)));
    else if (i < TEMPLATE_BATCH0 + batch_agent_count())
        snprintf(buf, cap, "/api/v1/Agents/Batch/%s", batch_agent_name((int)(i - TEMPLATE_BATCH0)));
    else
        snprintf(buf, cap, "other");
}

size_t api_exchange_template(const api_exchange *x)
{
    route_t r = x->route;
    seg_t id_seg;
    if (x->rm == NULL && !resolve(x->path, &r, &id_seg))
        return api_template_count() - 1;
    if (r.kind == ROUTE_AGENT)
        return TEMPLATE_AGENT0 + (size_t)r.agent;
    if (r.kind == ROUTE_BATCH_AGENT)
        return TEMPLATE_BATCH0 + (size_t)r.agent;
    return r.legacy ? TEMPLATE_LEGACY : (size_t)r.kind;
}

/* ---- the table described (api_route_walk) ---- */

typedef struct {
    void (*fn)(void *ctx, const api_route_desc *d);
    void *ctx;
} walker;

static void walk_methods(const walker *w, const char *path, const route_method *ms)
{
    for (const route_method *m = ms; m->method; m++) {
        api_route_desc d = {path, m->method, m->public, m->admin, m->writes};
        w->fn(w->ctx, &d);
    }
}

/* tmpl with each entity name for its {entity} (or as it is). */
static void walk_template(const walker *w, const char *tmpl, const route_method *ms)
{
    const char *at = strstr(tmpl, "{entity}");
    if (at == NULL) {
        walk_methods(w, tmpl, ms);
        return;
    }
    for (int k = 0; k < MODEL_KIND_COUNT; k++) {
        char path[128];
        snprintf(path, sizeof path, "%.*s%s%s", (int)(at - tmpl), tmpl,
                 model_entity((model_kind)k)->name, at + strlen("{entity}"));
        walk_methods(w, path, ms);
    }
}

void api_route_walk(void (*fn)(void *ctx, const api_route_desc *d), void *ctx)
{
    walker w = {fn, ctx};
    for (int kind = 0; kind < ROUTE__COUNT; kind++) {
        route_t r = {.kind = (route_kind)kind};
        if (kind != ROUTE_AGENT && kind != ROUTE_BATCH_AGENT)
            walk_template(&w, kind_templates[kind], methods_of(&r));
    }
    route_t legacy = {.kind = ROUTE_IMAGE, .legacy = true};
    walk_template(&w, "/api/Services80/{entity}/{id}/image", methods_of(&legacy));
    walk_template(&w, "/api/Services80/{entity}/{id}/image/content", methods_of(&legacy));
    for (size_t i = 0; i < agent_count(); i++) {
        char path[128];
        snprintf(path, sizeof path, "/api/v1/Agents/BLOB/%s", agent_name((int)i));
        walk_methods(&w, path, agent_methods((int)i));
    }
    for (size_t i = 0; i < batch_agent_count(); i++) {
        char path[128];
        snprintf(path, sizeof path, "/api/v1/Agents/Batch/%s", batch_agent_name((int)i));
        walk_methods(&w, path, batch_agent_methods((int)i));
    }
}
