/*
 * api.h — the WebAPI as seen by the HTTP layer.
 *
 * The HTTP layer turns each request into an api_exchange and drives it
 * through three steps: start (headers known), body (zero or more chunks),
 * finish (body complete). At any step the exchange may already hold its
 * answer (api_exchange_response non-NULL); the HTTP layer then stops
 * feeding the body and sends it. Nothing here knows about the HTTP library:
 * request headers and query arguments are read through the accessors the
 * HTTP layer supplies, valid during each call.
 */
#ifndef CB_API_H
#define CB_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "core/err.h"
#include "core/metrics.h"
#include "store/store.h"

typedef struct api api_t;
typedef struct api_exchange api_exchange;

typedef struct {
    uint64_t image_max;  /* bytes of one image (default 10 MiB) */
    uint64_t json_max;   /* bytes of a carrier body (default 64 KiB) */
    const char *spool_dir; /* where uploads are spooled (default: /tmp) */
    /* bytes the upload spools in flight may hold together (default 256 MiB);
     * never more than half the free space spool_dir's file system would
     * have without them */
    int64_t spool_max;
    /* bytes of an archive uploaded for a batch task (POST
     * /api/v1/BatchTask/Archive; default 256 MiB, at most INT32_MAX); it is
     * spooled apart from spool_max (pictures never wait for archives): one
     * archive at a time (upload and store), within half the free space
     * counting its store copy */
    uint64_t archive_max;
    size_t url_max;        /* request target bytes (default 8 KiB): 414 */
    size_t header_line_max; /* one header line (default 8 KiB): 431 */
    size_t headers_max;     /* all header lines (default 16 KiB): 431 */
    size_t header_count_max; /* header lines (default 100): 431 */
    const char *const *cors_origins; /* allowed Origins ("*" = any), or none */
    size_t ncors;
    int64_t variant_cache_bytes; /* scaled/converted pictures kept (default 256 MiB) */
    bool modern_formats;   /* WebP/AVIF answers when Accept asks and no type= is given */
    metrics_t *metrics;    /* the registry GET /metrics shows (admins); NULL: none */
} api_config;

typedef struct {
    const char *method;
    const char *path;   /* percent-decoded, without query */
    const char *remote; /* the client's address, for logs and the failure limiter: the
                         * peer's, or the one a trusted proxy forwarded */
    bool secure;        /* the client speaks https (a trusted proxy said so): Secure cookies */
    /* Sizes of the request head, measured by the HTTP layer. */
    size_t url_len;          /* request target, query included */
    size_t header_bytes;     /* all header lines */
    size_t header_count;
    size_t header_line_max;  /* the longest header line */
    /* The HTTP layer's verdict on the head's framing (SPEC §10): CB_EOK, or
     * CB_EBADREQ (ambiguous) / CB_ENOTIMPL (a transfer coding it does not
     * speak), with what is wrong in `malformed_why` (English, protocol
     * words). Such a request is answered that error before anything else
     * (no credentials checked, no route) and its connection closed. */
    cb_err malformed;
    const char *malformed_why;
    /* Case-insensitive lookups; NULL when absent. */
    const char *(*header)(void *conn, const char *name);
    const char *(*query)(void *conn, const char *name);
    void *conn;
} api_request;

#define API_MAX_HEADERS 16

typedef struct {
    const char *name;
    const char *value;
} api_header;

/* Who frees a body that is not in the exchange's arena: release(cls),
 * once, when it has been sent or dropped. */
typedef struct {
    void (*release)(void *cls); /* NULL: the body lives in the arena */
    void *cls;
} api_body_owner;

/* A body pulled front to back while it is sent: up to n bytes into buf,
 * answering how many (> 0), or -1 on an error (the connection is then
 * closed: the client, told the length, sees the body cut short). Never 0
 * before the body's length is reached. */
typedef long (*api_pull_fn)(void *ctx, char *buf, size_t n);

typedef struct {
    int status;
    const char *content_type; /* NULL: no body */
    const char *body;
    size_t body_len;
    api_body_owner owner; /* the body's, when it is not the arena's */
    /* from_fd: the body is [body_off, body_off + body_len) of file body_fd
     * (body NULL), which owner closes; whoever takes the body takes the fd */
    bool from_fd;
    int body_fd;
    int64_t body_off;
    /* from_pull: the body is body_len bytes (body NULL) that pull(pull_ctx,
     * ...) hands out; owner releases pull_ctx once sent or dropped */
    bool from_pull;
    api_pull_fn pull;
    void *pull_ctx;
    api_header headers[API_MAX_HEADERS];
    size_t nheaders;
    bool close; /* close the connection after answering */
} api_response;

cb_err api_create(store_t *store, auth_t *auth, const api_config *cfg, api_t **out);
void api_destroy(api_t *api);
/* Puts another list of CORS origins in force (copied; "*" = any), for a
 * reload: requests that have passed their CORS check keep its answer.
 * CB_EOK (*changed: the list differs from the one before), or
 * CB_EINTERNAL (no memory) with the old list in force. */
cb_err api_set_cors(api_t *api, const char *const *origins, size_t n, bool *changed);

/* A picture brought in without HTTP (`crmblob import`): the plain image
 * bytes in fd[0, size), to become the image of entity (kind, id). */
typedef struct {
    model_kind kind;
    int32_t id;
    int fd;
    int64_t size;
    int32_t user_id; /* recorded as UpdatedBy (0: the server) */
    /* Not NULL: the picture becomes a new record no entity links (as
     * SaveProjectImage makes for the project image library), with these
     * client fields; kind and id are then not used. */
    const model_blob_edit *new_blob;
    /* Called once the picture is accepted, just before it is stored (a
     * command creates a missing entity there, so that a refused picture
     * leaves nothing behind); its error is returned as *se, nothing
     * stored. May be NULL. */
    store_err (*accepted)(void *ctx);
    void *ctx;
} api_import;

/* Stores in->fd's picture exactly as PUT Image stores an upload: the same
 * byte limit (api_config.image_max: CB_ETOOLARGE), the same validation by
 * the image pipeline (img_validate_fd: CB_EBADREQ / CB_EWORK with why,
 * CB_EUNAVAILABLE when the worker failed), the same store_image_put (no
 * version expected) and a product's thumbnail. CB_EOK when the picture
 * was accepted: *se then says whether the store kept it (STORE_ABSENT: no
 * such entity), *out the record as stored. Thread-safe; a is the caller's. */
cb_err api_image_import(api_t *api, arena_t *a, const api_import *in, model_blob *out,
                        store_err *se, char *why, size_t cap);
/* api_image_import as bulk's put function (bulk_put_fn; put_ctx: the
 * api_t): what `crmblob import` and the import job store pictures with. */
struct bulk_picture; /* bulk/bulk.h: only its includers call this */
cb_err api_bulk_put(void *api, arena_t *a, const struct bulk_picture *p, model_blob *out,
                    store_err *se, char *why, size_t cap);

api_exchange *api_exchange_start(api_t *api, const api_request *req);
/* Right after the start, instead of serving the request: answers 503 (or
 * keeps an answer the start already made) and closes the connection. */
void api_exchange_unavailable(api_exchange *x);
/* True when the start stopped short of checking credentials that need a
 * password hashed (a Basic value not remembered): the caller runs
 * api_exchange_start_finish where waiting holds up no other client, and
 * only then goes on with the exchange. */
bool api_exchange_start_blocks(const api_exchange *x);
void api_exchange_start_finish(api_exchange *x, const api_request *req);
/* True when what the exchange would run next (its start's rest, or its
 * finish) checks a password: the caller runs it on threads of their own,
 * so that a flood of guesses cannot hold up pictures. */
bool api_exchange_hashes(const api_exchange *x);
/* Instead of that next step, when too many password checks are waiting:
 * answers 503 with Retry-After: retry_after_s, hashing nothing. */
void api_exchange_busy(api_exchange *x, int retry_after_s);
/* Feeds body bytes; once this fails the exchange holds its error answer. */
void api_exchange_body(api_exchange *x, const char *data, size_t n);
void api_exchange_finish(api_exchange *x, const api_request *req);
/* True when api_exchange_finish may take long (it would decode or render a
 * picture, or hash a password): the caller had better run it on a thread
 * that serves no other client. */
bool api_exchange_blocks(const api_exchange *x, const api_request *req);
/* True when finish's writes still have to reach the disk (durable mode):
 * the answer is held until api_exchange_wait lets it go. */
bool api_exchange_held(const api_exchange *x);
/* For a held answer: true when it may go now; else false, and ready(ctx)
 * is called once, from another thread, when it may. Either way the answer
 * is then final (writes whose COMMIT or flush failed made it an error). */
bool api_exchange_wait(api_exchange *x, void (*ready)(void *ctx), void *ctx);
/* The answer, once there is one. */
const api_response *api_exchange_response(const api_exchange *x);
/* Hands the body's owner over to the caller (it will release it); release
 * NULL when the body lives in the exchange's arena. */
api_body_owner api_exchange_take_body(api_exchange *x);
/* For the access log: method, path, and the authenticated user name or "-". */
const char *api_exchange_method(const api_exchange *x);
const char *api_exchange_path(const api_exchange *x);
const char *api_exchange_user(const api_exchange *x);
/* True for a probe whose route is quiet (GET /health, /ready): no access
 * line unless the server is told to log probes. */
bool api_exchange_quiet(const api_exchange *x);
/* The partner application named by SO-AppToken, or NULL. */
const char *api_exchange_app(const api_exchange *x);
void api_exchange_free(api_exchange *x);

/* Route templates, the metrics' labels: a fixed list made from the route
 * table ("/api/v1/{entity}/{id}/Image", one per BLOB agent method, ...),
 * the last one "other" (a path no route has). api_template writes the
 * i-th (i < api_template_count()) into buf[0, cap). */
size_t api_template_count(void);
void api_template(size_t i, char *buf, size_t cap);
/* The template of x's route (also when it was refused before routing). */
size_t api_exchange_template(const api_exchange *x);

/* One method of one path the router answers, {entity} spelled out
 * ("/api/v1/Person/{id}/Image"), as the route table describes it. */
typedef struct {
    const char *path;
    const char *method;
    bool public; /* needs no credentials */
    bool admin;  /* needs the admin role */
    bool writes; /* needs a role that may change data */
} api_route_desc;
/* Calls fn once per path and method of the route table: the table's own
 * description of itself, which the OpenAPI document must match. */
void api_route_walk(void (*fn)(void *ctx, const api_route_desc *d), void *ctx);

/* The OpenAPI document crmblob answers at /api/openapi.json (compiled in
 * from src/api/openapi.json): its bytes, *len of them. */
const char *api_openapi_document(size_t *len);

#endif
