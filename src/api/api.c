/*
 * api.c — the exchange lifecycle: authenticate, route, check rights and
 * body limits, collect the body, run the handler.
 *
 * Checks that can be made from the headers alone (auth, route, rights,
 * Content-Length over the limit, unsupported Content-Type, a missing
 * entity for an upload) are made before a single body byte is read, so a
 * refused upload costs the server nothing.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api_int.h"
#include "core/log.h"
#include "core/text.h"

#define DEFAULT_IMAGE_MAX (10u * 1024u * 1024u)
#define DEFAULT_ARCHIVE_MAX (1024ull * 1024u * 1024u)
#define DEFAULT_JSON_MAX (64u * 1024u)
#define DEFAULT_SPOOL_MAX (256 * 1024 * 1024) /* upload spools in flight */
#define MULTIPART_OVERHEAD (64u * 1024u)      /* part headers and boundaries */

cb_err api_create(store_t *store, auth_t *auth, const api_config *cfg, api_t **out)
{
    api_t *api = calloc(1, sizeof(*api));
    if (api == NULL)
        return CB_EINTERNAL;
    pthread_mutex_init(&api->spare_mu, NULL);
    api->store = store;
    api->auth = auth;
    api->cfg = *cfg;
    api->started_ms = text_now_ms() / 1000 * 1000;
    health_init(&api->health);
    if (api->cfg.image_max == 0)
        api->cfg.image_max = DEFAULT_IMAGE_MAX;
    if (api->cfg.archive_max == 0 || api->cfg.archive_max > INT32_MAX)
        api->cfg.archive_max = api->cfg.archive_max ? INT32_MAX : DEFAULT_ARCHIVE_MAX;
    if (api->cfg.json_max == 0)
        api->cfg.json_max = DEFAULT_JSON_MAX;
    if (api->cfg.spool_dir == NULL)
        api->cfg.spool_dir = "/tmp";
    if (api->cfg.spool_max <= 0)
        api->cfg.spool_max = DEFAULT_SPOOL_MAX;
    if (api->cfg.url_max == 0)
        api->cfg.url_max = 8192;
    if (api->cfg.header_line_max == 0)
        api->cfg.header_line_max = 8192;
    if (api->cfg.headers_max == 0)
        api->cfg.headers_max = 16384;
    if (api->cfg.header_count_max == 0)
        api->cfg.header_count_max = 100;
    if (api->cfg.variant_cache_bytes <= 0)
        api->cfg.variant_cache_bytes = 256 * 1024 * 1024;
    if (cors_init(api) != CB_EOK) {
        api_destroy(api);
        return CB_EINTERNAL;
    }
    *out = api;
    return CB_EOK;
}

void api_destroy(api_t *api)
{
    if (api == NULL)
        return;
    for (int i = 0; i < api->nspare; i++)
        arena_destroy(api->spare[i]);
    pthread_mutex_destroy(&api->spare_mu);
    health_destroy(&api->health);
    cors_destroy(api);
    free(api);
}

/* A spare arena, or a new one. */
static arena_t *arena_take(api_t *api)
{
    arena_t *a = NULL;
    pthread_mutex_lock(&api->spare_mu);
    if (api->nspare > 0)
        a = api->spare[--api->nspare];
    pthread_mutex_unlock(&api->spare_mu);
    return a != NULL ? a : arena_create();
}

/* Keeps a, emptied, for a later exchange, or destroys it when enough are
 * kept. Nothing allocated in a may be used afterwards. */
static void arena_give(api_t *api, arena_t *a)
{
    arena_reset(a);
    pthread_mutex_lock(&api->spare_mu);
    if (api->nspare < API_SPARE_ARENAS) {
        api->spare[api->nspare++] = a;
        a = NULL;
    }
    pthread_mutex_unlock(&api->spare_mu);
    arena_destroy(a);
}

auth_input api_auth_input(const api_request *req)
{
    return (auth_input){
        .authorization = req->header(req->conn, "Authorization"),
        .cookie = req->header(req->conn, "Cookie"),
        .xsrf = req->header(req->conn, "X-XSRF-TOKEN"),
        .app_token = req->header(req->conn, "SO-AppToken"),
        .remote = req->remote,
    };
}

/* no_wait: on a polling thread, where a password hash would hold up other
 * clients; the exchange is then left start_pending, unanswered. */
static bool check_auth(api_exchange *x, const api_request *req, bool no_wait)
{
    auth_input in = api_auth_input(req);
    auth_result r;
    const char *reason = NULL;
    if (x->public_route)
        return true;
    in.no_wait = no_wait;
    cb_err e = auth_authenticate(x->api->auth, x->arena, &in, &r, &reason);
    if (e == CB_EWOULDBLOCK) {
        x->start_pending = true;
        return false;
    }
    if (e == CB_EOK) {
        x->user = r.user;
        x->app = r.app;
        x->authed = true;
        return true;
    }
    if (reason != NULL)
        log_info("refused %s %s from %s: %s", x->method, x->path, req->remote, reason);
    api_fail_auth(x, e, &r.throttle);
    return false;
}

/* The request head within the configured limits: 414 and 431 otherwise. */
static bool check_head(api_exchange *x, const api_request *req)
{
    const api_config *cfg = &x->api->cfg;
    if (req->malformed != CB_EOK)
        API_FAIL(x, req->malformed, MSG_MALFORMED_REQUEST,
                 MSG_S(arena_strdup(x->arena, req->malformed_why)));
    else if (req->url_len > cfg->url_max)
        API_FAIL(x, CB_EURITOOLONG, MSG_URL_TOO_LONG, MSG_N(cfg->url_max));
    else if (req->header_count > cfg->header_count_max)
        API_FAIL(x, CB_EHDRTOOLARGE, MSG_TOO_MANY_HEADERS, MSG_N(cfg->header_count_max));
    else if (req->header_line_max > cfg->header_line_max)
        API_FAIL(x, CB_EHDRTOOLARGE, MSG_HEADERS_TOO_LARGE, MSG_N(cfg->header_line_max));
    else if (req->header_bytes > cfg->headers_max)
        API_FAIL(x, CB_EHDRTOOLARGE, MSG_HEADERS_TOO_LARGE, MSG_N(cfg->headers_max));
    else
        return true;
    x->resp.close = true;
    return false;
}

/* SO-TimeZone: a code of GET /api/v1/TimeZone, optionally ", includeTZOffset". */
static bool check_timezone(api_exchange *x, const api_request *req)
{
    const char *h = req->header(req->conn, "SO-TimeZone");
    if (h == NULL || h[strspn(h, " \t")] == '\0' || tz_parse_header(h, &x->tz, &x->tz_offset))
        return true; /* an empty header is no header */
    API_FAIL(x, CB_EBADREQ, MSG_BAD_TIMEZONE, MSG_S(arena_strdup(x->arena, h)));
    return false;
}

/* After routing: a route that answers a carrier needs an acceptable type. */
static bool check_accept(api_exchange *x)
{
    return !x->rm->carrier || repr_require_acceptable(x);
}

static bool check_rights(api_exchange *x)
{
    model_role need = x->rm->admin    ? MODEL_ROLE_ADMIN
                      : x->rm->writes ? MODEL_ROLE_EDITOR
                                      : MODEL_ROLE_VIEWER;
    if (x->user.role >= need)
        return true;
    API_FAIL(x, CB_EFORBIDDEN, MSG_FORBIDDEN, MSG_S(x->user.name),
             MSG_S(model_role_name(x->user.role)));
    return false;
}

/* The body's declared length, -1 when none is (chunked) or it is unusable. */
static int64_t declared_length(const api_request *req)
{
    const char *cl = req->header(req->conn, "Content-Length");
    uint64_t n;
    if (cl == NULL || !text_parse_u64(cl, strlen(cl), &n) || n > INT64_MAX)
        return -1;
    return (int64_t)n;
}

/* The limit a too-large body is told: the image's or archive's bytes (not
 * the multipart allowance on top), else the body's. */
static uint64_t shown_max(const api_exchange *x)
{
    return x->rm->body == BODY_IMAGE     ? x->api->cfg.image_max
           : x->rm->body == BODY_ARCHIVE ? x->api->cfg.archive_max
                                         : x->body_max;
}

static bool content_length_ok(api_exchange *x, const api_request *req)
{
    int64_t n = declared_length(req);
    if (n < 0 || (uint64_t)n <= x->body_max)
        return true;
    uint64_t shown = shown_max(x);
    API_FAIL(x, CB_ETOOLARGE, MSG_BODY_TOO_LARGE, MSG_N(shown));
    return false;
}

static bool prepare_body(api_exchange *x, const api_request *req)
{
    const char *ct = req->header(req->conn, "Content-Type");
    const api_config *cfg = &x->api->cfg;
    switch (x->rm->body) {
    case BODY_JSON:
    case BODY_BIG_JSON:
        x->body_max = cfg->json_max;
        if (x->rm->body == BODY_BIG_JSON)
            x->body_max += (cfg->image_max + 2) / 3 * 4;
        buf_init(&x->body, x->body_max);
        return repr_request_type(x, ct) && content_length_ok(x, req);
    case BODY_IMAGE:
        x->body_max = cfg->image_max + MULTIPART_OVERHEAD;
        if (ct == NULL || strncasecmp(ct, "multipart/", 10) != 0)
            x->body_max = cfg->image_max;
        if (!content_length_ok(x, req) || !image_put_precheck(x, req))
            return false;
        x->upload = upload_create(x, ct, declared_length(req));
        return x->upload != NULL;
    case BODY_ARCHIVE:
        x->body_max = cfg->archive_max + MULTIPART_OVERHEAD;
        if (ct == NULL || strncasecmp(ct, "multipart/", 10) != 0)
            x->body_max = cfg->archive_max;
        if (!content_length_ok(x, req))
            return false;
        x->upload = upload_create(x, ct, declared_length(req));
        return x->upload != NULL;
    default:
        x->body_max = cfg->json_max; /* a stray body is read and ignored */
        return content_length_ok(x, req);
    }
}

/* Authentication and what follows it. */
static void start_rest(api_exchange *x, const api_request *req, bool no_wait)
{
    if (check_auth(x, req, no_wait) && check_timezone(x, req) && api_route(x, req) &&
        check_accept(x) && check_rights(x))
        prepare_body(x, req);
}

api_exchange *api_exchange_start(api_t *api, const api_request *req)
{
    arena_t *arena = arena_take(api);
    api_exchange *x = arena_alloc(arena, sizeof(*x));
    x->api = api;
    x->arena = arena;
    x->store = api->store;
    x->method = arena_strdup(arena, req->method);
    x->path = arena_strdup(arena, req->path);
    /* MSG_LOCALE_DEFAULT without language headers; set before anything can
     * fail, so that every error (401 too) is localised */
    x->locale = msg_locale_pick(req->header(req->conn, "Accept-Language"),
                                req->header(req->conn, "SO-Language"),
                                req->header(req->conn, "SO-Culture"));
    x->expect = STORE_ANY;
    const char *xrw = req->header(req->conn, "X-Requested-With");
    x->from_script = xrw != NULL && strcasecmp(xrw, "XMLHttpRequest") == 0;
    const char *origin = req->header(req->conn, "Origin");
    x->origin = origin != NULL ? arena_strdup(arena, origin) : NULL;
    repr_negotiate(x, req->header(req->conn, "Accept"));
    if (!check_head(x, req) || cors_preflight(x, req))
        return x;
    x->public_route = api_route_is_public(req->path, req->method);
    if (strncasecmp(req->path, "/api/", 5) != 0 && !x->public_route &&
        !api_route_exists(req->path)) {
        API_FAIL(x, CB_ENOTFOUND, MSG_ROUTE_NOT_FOUND, MSG_S(x->path));
        return x;
    }
    start_rest(x, req, true);
    return x;
}

void api_exchange_unavailable(api_exchange *x)
{
    x->start_pending = false;
    if (!x->answered)
        API_FAIL0(x, CB_EUNAVAILABLE, MSG_UNAVAILABLE);
    x->resp.close = true;
}

bool api_exchange_start_blocks(const api_exchange *x)
{
    return x->start_pending;
}

void api_exchange_start_finish(api_exchange *x, const api_request *req)
{
    assert(x->start_pending && !x->answered);
    x->start_pending = false;
    start_rest(x, req, false);
}

bool api_exchange_hashes(const api_exchange *x)
{
    return x->start_pending || (!x->answered && x->rm != NULL && x->rm->signs_in);
}

void api_exchange_busy(api_exchange *x, int retry_after_s)
{
    x->start_pending = false;
    if (x->answered)
        return;
    api_add_header(x, "Retry-After", arena_printf(x->arena, "%d", retry_after_s));
    API_FAIL(x, CB_EUNAVAILABLE, MSG_PASSWORD_CHECKS_BUSY, MSG_N(retry_after_s));
}

void api_exchange_body(api_exchange *x, const char *data, size_t n)
{
    if (x->answered)
        return;
    x->body_seen += n;
    cb_err e = CB_EOK;
    if (x->body_seen > x->body_max)
        e = CB_ETOOLARGE;
    else if (x->rm->body == BODY_JSON || x->rm->body == BODY_BIG_JSON)
        e = buf_append(&x->body, data, n);
    else if (x->rm->body == BODY_IMAGE || x->rm->body == BODY_ARCHIVE)
        e = upload_feed(x->upload, data, n);
    if (e == CB_ETOOLARGE) {
        uint64_t shown = shown_max(x);
        API_FAIL(x, CB_ETOOLARGE, MSG_BODY_TOO_LARGE, MSG_N(shown));
    } else if (e == CB_EBADREQ) {
        API_FAIL(x, CB_EBADREQ, MSG_MULTIPART, MSG_S(upload_error(x->upload)));
    } else if (e != CB_EOK) {
        upload_fail(x, e);
    }
    if (e != CB_EOK && x->upload != NULL) { /* answered: its spool is not needed */
        upload_destroy(x->upload);
        x->upload = NULL;
    }
}

void api_exchange_finish(api_exchange *x, const api_request *req)
{
    if (x->answered)
        return;
    if ((x->rm->body == BODY_IMAGE || x->rm->body == BODY_ARCHIVE) && !upload_finish(x, x->upload))
        return;
    x->headers_before_finish = x->resp.nheaders;
    x->store = store_scope_open(x->api->store, x->arena);
    x->rm->fn(x, req);
    if (store_scope_close(x->store))
        x->held = x->store;
    x->store = x->api->store; /* a closed view serves only the wait */
    if (!x->answered)
        API_FAIL0(x, CB_EINTERNAL, MSG_INTERNAL);
}

bool api_exchange_held(const api_exchange *x)
{
    return x->held != NULL;
}

/* The writes an answer waited for failed: it becomes that error. */
static void settle(api_exchange *x, store_err rc)
{
    x->held = NULL;
    if (rc == STORE_OK)
        return;
    if (x->answered)
        api_answer_withdraw(x, x->headers_before_finish);
    api_fail_store(x, rc == STORE_UNAVAILABLE || rc == STORE_NO_SPACE ? rc : STORE_INTERNAL, NULL);
}

/* From the store's committer thread; the exchange's own thread is not
 * using it (its connection is suspended until ready is called). */
static void on_durable(void *ctx, store_err rc)
{
    api_exchange *x = ctx;
    void (*ready)(void *) = x->ready;
    void *ready_ctx = x->ready_ctx;
    settle(x, rc);
    ready(ready_ctx);
}

bool api_exchange_wait(api_exchange *x, void (*ready)(void *ctx), void *ctx)
{
    assert(x->held != NULL && ready != NULL);
    x->ready = ready;
    x->ready_ctx = ctx;
    store_err rc = store_scope_wait(x->held, on_durable, x);
    if (rc == STORE_PENDING)
        return false;
    settle(x, rc);
    return true;
}

bool api_exchange_blocks(const api_exchange *x, const api_request *req)
{
    if (x->answered)
        return false;
    const route_method *rm = x->rm;
    if (rm->body == BODY_IMAGE || rm->body == BODY_BIG_JSON || rm->body == BODY_ARCHIVE ||
        rm->signs_in)
        return true; /* decodes a picture, stores an archive or hashes a password */
    return rm->blocks != NULL && rm->blocks(x, req);
}

bool api_route_always_blocks(const api_exchange *x, const api_request *req)
{
    (void)x, (void)req;
    return true;
}

const api_response *api_exchange_response(const api_exchange *x)
{
    return x->answered ? &x->resp : NULL;
}

api_body_owner api_exchange_take_body(api_exchange *x)
{
    api_body_owner o = x->resp.owner;
    x->resp.owner = (api_body_owner){0};
    return o;
}

const char *api_exchange_method(const api_exchange *x)
{
    return x->method;
}

bool api_exchange_quiet(const api_exchange *x)
{
    return x->rm != NULL && x->rm->quiet;
}

const char *api_exchange_path(const api_exchange *x)
{
    return x->path;
}

const char *api_exchange_app(const api_exchange *x)
{
    return x->app;
}

const char *api_exchange_user(const api_exchange *x)
{
    return x->authed ? x->user.name : "-";
}

void api_exchange_free(api_exchange *x)
{
    if (x == NULL)
        return;
    if (x->upload != NULL)
        upload_destroy(x->upload);
    buf_free(&x->body);
    if (x->resp.owner.release != NULL)
        x->resp.owner.release(x->resp.owner.cls);
    arena_give(x->api, x->arena); /* x itself lives in that arena */
}
