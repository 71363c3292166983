/*
 * api_int.h — what the files of src/api share: the exchange, routes,
 * answer builders and the upload spool.
 *
 * An exchange owns an arena for everything it allocates; its answer
 * (resp) is set exactly once, by api_answer_* or api_fail, and from then
 * on the exchange ignores further body bytes.
 */
#ifndef CB_API_INT_H
#define CB_API_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#include "api/api.h"
#include "api/msg.h"
#include "bulk/bulk.h" /* tar sniffing (upload.c), bulk_picture (picture.c) */
#include "core/arena.h"
#include "core/metrics.h"
#include "core/buf.h"
#include "core/tz.h"
#include "img/placeholder.h"
#include "img/sniff.h"

/* Arenas of finished exchanges kept for the next ones (reset, one chunk
 * each): a fresh arena per request was ~2 % of a GET in malloc/free.
 * None under AddressSanitizer, which then still sees a use of an
 * exchange's memory after its end. */
#if defined(__SANITIZE_ADDRESS__)
#define API_SPARE_ARENAS 0
#else
#define API_SPARE_ARENAS 16
#endif

/* GET /ready's verdict (health.c): the last one is answered while it is
 * less than a second old, or while another probe makes the next one, so
 * that a flood of probes costs the database and the image worker at most
 * one check at a time and one a second. Under mu. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;    /* a check ended */
    bool checking;        /* a probe is making the next verdict */
    uint64_t at_us;       /* when the last verdict was made; 0: none yet */
    int failed;           /* 0 ready, else the msg_id of what does not answer */
    char why[160];        /* ... and why, in English, for the operator */
    char alive[96];       /* GET /health's body: "ok crmblob VERSION\n" */
    size_t alive_len;
} health_state;

struct api {
    store_t *store;
    auth_t *auth;
    api_config cfg;
    int64_t started_ms; /* Last-Modified of the built-in pictures */
    pthread_mutex_t spare_mu;
    arena_t *spare[API_SPARE_ARENAS + 1];
    int nspare;
    /* the upload spools in flight (upload.c): bytes reserved, bytes written */
    _Atomic int64_t spool_reserved, spool_written;
    atomic_int outputs_open; /* task outputs being sent (agent.c) */
    health_state health;
    /* the CORS origins in force (cors.c): cfg's at start, a reload's after
     * (api_set_cors); read under cors_lock, replaced whole under it */
    pthread_rwlock_t cors_lock;
    struct cors_list *cors;
    atomic_int archives; /* archive uploads in flight, upload and store (upload.c) */
};

typedef enum {
    ROUTE_ENTITY_NEW,  /* /api/v1/{E} */
    ROUTE_ENTITY,      /* /api/v1/{E}/{id} */
    ROUTE_IMAGE,       /* /api/v1/{E}/{id}/Image, /api/Services80/{e}/{id}/image[/content] */
    ROUTE_IMAGE_INFO,  /* /api/v1/{E}/{id}/ImageInfo */
    ROUTE_LIB_ITEM,    /* /api/v1/ProjectImageLibrary/{id} (the last with an {id}) */
    ROUTE_LIB,         /* /api/v1/ProjectImageLibrary */
    ROUTE_TZ_LIST,     /* /api/v1/TimeZone */
    ROUTE_TZ_BASE,     /* /api/v1/TimeZone/base */
    ROUTE_TZ_CURRENT,  /* /api/v1/TimeZone/current */
    ROUTE_LOGIN,       /* /api/v1/login */
    ROUTE_LOGOUT,      /* /api/v1/logout */
    ROUTE_AGENT,       /* /api/v1/Agents/BLOB/{Name} */
    ROUTE_BATCH_LIST,  /* /api/v1/BatchTask */
    ROUTE_BATCH,       /* /api/v1/BatchTask/{id} or /{state} */
    ROUTE_BATCH_STOP,  /* /api/v1/BatchTask/{id}/Stop */
    ROUTE_BATCH_AGENT, /* /api/v1/Agents/Batch/{Name} */
    ROUTE_BATCH_ARCHIVE, /* /api/v1/BatchTask/Archive: an archive for an import task */
    ROUTE_HEALTH,      /* /health */
    ROUTE_READY,       /* /ready */
    ROUTE_METRICS,     /* /metrics */
    ROUTE_OPENAPI,     /* /api/openapi.json */
    ROUTE_ASSET,       /* a static file of the page (asset.c): /, /app.js, ... */
    ROUTE__COUNT
} route_kind;

/* BODY_BIG_JSON: a request carrier with picture bytes in base64, so its
 * cap is that of an image in base64 plus that of a carrier. */
/* BODY_ARCHIVE: an archive for a batch task, spooled as an image is but
 * within api_config.archive_max, and checked to start like a tar. */
typedef enum { BODY_NONE, BODY_JSON, BODY_BIG_JSON, BODY_IMAGE, BODY_ARCHIVE } body_kind;

/* The representation a carrier body arrived in (SPEC §4). */
typedef enum { REPR_JSON, REPR_XML, REPR_FORM, REPR_PATCH, REPR_MERGE } repr_body;

typedef struct api_exchange api_exchange;
typedef void (*api_handler)(api_exchange *x, const api_request *req);

typedef struct {
    const char *method;
    api_handler fn;
    body_kind body;
    bool writes;  /* needs a role that may change data */
    bool carrier; /* answers a carrier, so Accept must allow JSON or XML */
    bool public;  /* needs no credentials (none are checked, no failure is counted) */
    bool quiet;   /* a probe: no access line unless --log-probes */
    bool admin;   /* needs the admin role (operators' pages: GET /metrics) */
    bool signs_in; /* checks a user name and password itself (a login): it
                    * hashes a password, and its refusal says sign-in failed */
    /* NULL, or: may the finish take long now (then it runs on an offload
     * thread)? */
    bool (*blocks)(const api_exchange *x, const api_request *req);
} route_method;
/* A row of a route table: method, handler, body, writes, carrier, then any
 * of the other properties by name (.public = true, ...); `{0}` ends a table. */
#define ROUTE_ROW(m, f, b, w, c, ...)                                                               \
    {.method = (m), .fn = (f), .body = (b), .writes = (w), .carrier = (c), __VA_ARGS__}

typedef struct {
    route_kind kind;
    model_kind ent;
    int32_t id;
    bool legacy; /* /api/Services80: GET only */
    int agent;   /* ROUTE_AGENT: which method (agent.c's table); ROUTE_BATCH_AGENT: batch.c's */
    int batch_state; /* ROUTE_BATCH with a state for {id} (id 0): the state, -1 All */
    int asset;   /* ROUTE_ASSET: which file (asset_table.h's index) */
} route_t;

typedef struct upload upload_t;

struct api_exchange {
    api_t *api;
    arena_t *arena;
    /* The store handle for this request's reads and writes: api->store,
     * but during the finish (the route's fn) a scope's view of it, so that
     * in durable mode the writes do not hold the thread (api_exchange_held) */
    store_t *store;
    const char *method;
    const char *path;
    bool public_route; /* its route needs no credentials (api_route_is_public) */
    bool from_script;  /* X-Requested-With: XMLHttpRequest (a page's script): a 401
                        * challenges for the cookie session only */
    model_user user;
    bool start_pending; /* the credentials need a password hashed: api_exchange_start_finish */
    bool authed;
    route_t route;
    const route_method *rm;
    buf_t body;        /* BODY_JSON */
    upload_t *upload;  /* BODY_IMAGE */
    uint64_t body_seen;
    uint64_t body_max;
    repr_body body_repr;
    int answer_type;     /* index into repr.c's answer types */
    bool acceptable;     /* Accept allows one of them */
    bool loose_numbers;  /* XML and form bodies carry numbers as text */
    bool absent_is_empty; /* patched bodies: a field left out was removed */
    int64_t expect;      /* version a conditional write rests on, or STORE_ANY */
    msg_locale locale;   /* ErrorMessage language and culture (SPEC §6) */
    const char *origin;  /* Origin header, for CORS */
    const char *app;     /* partner app named by SO-AppToken, or NULL */
    const tz_zone *tz;   /* SO-TimeZone, or NULL */
    bool tz_offset;      /* ... with includeTZOffset */
    bool answered;
    api_response resp;
    /* Durable mode: the view finish wrote through while the answer waits
     * for its writes to be on disk (api_exchange_held), and whom to tell. */
    store_t *held;
    size_t headers_before_finish; /* a failed flush drops the later ones */
    void (*ready)(void *ctx);
    void *ready_ctx;
};

/* ---- routing (router.c) ---- */
/* The OpenAPI document (openapi.c): GET and HEAD of /api/openapi.json. */
void openapi_get(api_exchange *x, const api_request *req);
/* Resolves path+method; on failure the exchange holds the error answer. */
bool api_route(api_exchange *x, const api_request *req);
/* True when the route of path and method needs no principal (its table
 * says `public`); a method the route does not offer counts as public when
 * another of its methods is, so that its 405 needs no credentials either. */
bool api_route_is_public(const char *path, const char *method);
/* True when path is one of a route's (whatever its method). */
bool api_route_exists(const char *path);

/* ---- the page's static files (asset.c) ---- */
/* The index of the file path names (exactly, or the index.html of the
 * directory it names), -1 when none. */
int asset_find(const char *path);
void asset_get(api_exchange *x, const api_request *req);

/* ---- CORS (cors.c) ---- */
/* The list of cfg->cors_origins (copied) in force, and its end. */
cb_err cors_init(api_t *api);
void cors_destroy(api_t *api);
/* True when the request is a CORS preflight, which is then answered. */
bool cors_preflight(api_exchange *x, const api_request *req);
/* Adds the CORS headers of an allowed Origin to the answer. */
void cors_answer_headers(api_exchange *x);
/* Is the origin named by --cors-origin itself ("*" does not count)? */
bool cors_origin_listed(api_t *api, const char *origin);
/* Could a cross-site page send this Content-Type without a preflight (a
 * form's types and text/plain; a missing one too)? */
bool cors_type_is_simple(const char *content_type);

/* ---- sign-in (session.c) ---- */
void session_login(api_exchange *x, const api_request *req);
void session_logout(api_exchange *x, const api_request *req);
/* What the request presents to auth_authenticate. */
auth_input api_auth_input(const api_request *req);
/* 401 (with WWW-Authenticate) or 429 (with Retry-After from t) for an
 * auth error. */
void api_fail_auth(api_exchange *x, cb_err e, const auth_throttle *t);

/* ---- representations (repr.c) ---- */
/* Content-Type of a carrier body → x->body_repr; false answered 415. */
bool repr_request_type(api_exchange *x, const char *content_type);
/* Accept → x->answer_type and x->acceptable. */
void repr_negotiate(api_exchange *x, const char *accept);
/* False answered 406 when Accept allows no answer type. */
bool repr_require_acceptable(api_exchange *x);
bool repr_answer_is_xml(const api_exchange *x);
/* The negotiated answer type ("application/json", ...). */
const char *repr_answer_mime(const api_exchange *x);
/* Its Content-Type ("application/json; charset=utf-8", ...). */
const char *repr_answer_content_type(const api_exchange *x);
/* q (0..1000) that Accept gives to `mime`; 1000 when there is no Accept. */
int repr_accept_q(const char *accept, const char *mime);
/* Does Accept name `mime` itself (no wildcard) with a q above 0? */
bool repr_accept_named(const char *accept, const char *mime);
/* A carrier (or any JSON value) in the negotiated type, XML root `root`;
 * takes the reference of j. */
void api_answer_carrier(api_exchange *x, int status, const char *root, json_t *j);

/* ---- conditional requests (cond.c) ---- */
typedef struct {
    const char *etag;    /* quoted strong tag, or NULL when none */
    int64_t modified_ms; /* Last-Modified, or INT64_MIN when none */
    bool exists;         /* for "*" */
} cond_state;
/* Adds ETag and Last-Modified to the answer. */
void cond_headers(api_exchange *x, const cond_state *c);
/* GET/HEAD: true when answered 304 (If-None-Match, If-Modified-Since). */
bool cond_not_modified(api_exchange *x, const api_request *req, const cond_state *c);
/* Does the request carry If-Match or If-Unmodified-Since? */
bool cond_is_conditional(const api_request *req);
/* PUT/POST/DELETE: false when answered 412 (If-Match, If-Unmodified-Since). */
bool cond_write_allowed(api_exchange *x, const api_request *req, const cond_state *c);
/* A write that rests on the record it read (a patch, a PUT of some of an
 * entity's fields) writes with the version read as x->expect. Without a
 * precondition of the client's, STORE_PRECONDITION means that another write
 * came in between: the request is read and applied again, at most
 * COND_REWRITES times, and then answered as a busy store (503). */
#define COND_REWRITES 3
/* After attempt number `attempts` (1: the first) of such a write ended in
 * *e: true to make it again; else *e is the outcome to answer. */
bool cond_write_again(const api_request *req, store_err *e, int attempts);

/* ---- answers (answer.c) ---- */
/* Seconds a 503 asks the client to wait (Retry-After): what is missing
 * (an image worker, the database) comes back at once or not soon. */
#define API_RETRY_UNAVAILABLE_S 2
/* The error carrier for e; a 503 also carries Retry-After. */
void api_fail(api_exchange *x, cb_err e, msg_id id, const msg_arg *args, int nargs);
#define API_FAIL(x, e, id, ...)                                                                    \
    api_fail((x), (e), (id), (const msg_arg[]){__VA_ARGS__},                                        \
             (int)(sizeof((const msg_arg[]){__VA_ARGS__}) / sizeof(msg_arg)))
#define API_FAIL0(x, e, id) api_fail((x), (e), (id), NULL, 0)
/* What a failed store call addressed, for the answer to name it. */
typedef enum {
    API_ON_ROUTE,        /* the route's entity (x->route): ABSENT is 404 */
    API_ON_ENTITY_WRITE, /* entity: CONFLICT its id is taken, INVALID a reference dangles */
    API_ON_ARG_ENTITY,   /* entity (kind, id) a write targets: ABSENT is 400 */
    API_ON_ARG_BLOB,     /* record id a write targets: ABSENT is 400 */
    API_ON_LINK,         /* record blob_id to become entity (kind, id)'s image: ABSENT
                            (entity) and INVALID (record) are 400, CONFLICT (linked) 409 */
    API_ON_LIBRARY,      /* record id of the project image library: ABSENT is 404 */
    API_ON_BATCH_TASK,   /* batch task task_id (the caller's to see): ABSENT is 404 */
    API_ON_BATCH_INPUT,  /* archive blob_id a new task is to read: ABSENT (no unbound
                            input of that id) and CONFLICT (another task's) are 400 */
    API_ON_BATCH_EDIT,   /* batch task task_id updated: ABSENT is 404, CONFLICT (its
                            parameters are fixed since it started; state) 400 */
} api_subject_on;
typedef struct {
    api_subject_on on;
    model_kind kind;
    int32_t id;
    int32_t blob_id;              /* API_ON_LINK */
    const model_entity_t *entity; /* API_ON_ENTITY_WRITE */
    int64_t task_id;              /* API_ON_BATCH_TASK, API_ON_BATCH_EDIT */
    const char *state;            /* API_ON_BATCH_EDIT: the task's state by name */
} api_subject;
/* The one mapping of a store error to an answer (status, ErrorType and
 * message). what NULL: the route's entity. Whatever the subject has no
 * answer of its own for is answered as for the route: ABSENT 404 naming
 * the entity, PRECONDITION 412, TOO_LARGE 413, UNAVAILABLE 503 (with
 * Retry-After), NO_SPACE 507, anything else 500. */
void api_fail_store(api_exchange *x, store_err e, const api_subject *what);
/* As api_fail_store for the route, of a status a layer between has
 * already mapped a store error to (auth: logging out failed to revoke). */
void api_fail_below(api_exchange *x, cb_err status);
/* Maps an image pipeline (img.h) error to an answer: the picture needs
 * too much work → 400, no worker could finish → 503, any other refusal
 * → 400 with the reason when the picture is the client's (an upload),
 * else 500 (a stored picture that cannot be read). */
void api_fail_image(api_exchange *x, cb_err e, const char *reason, bool uploaded);
void api_answer_bytes(api_exchange *x, int status, const char *type, void *owned, size_t len);
/* body stays owner's: released once sent (answers taken from the cache). */
void api_answer_lent(api_exchange *x, int status, const char *type, const void *body, size_t len,
                     api_body_owner owner);
/* The body is [off, off + len) of file fd, closed by owner (a picture
 * spooled by the store): sent from the file, never read into memory. */
void api_answer_fd(api_exchange *x, int status, const char *type, int fd, int64_t off, size_t len,
                   api_body_owner owner);
/* The body is len bytes pull(ctx, ...) hands out while it is sent (an
 * output streamed from the store), ctx released by owner. */
void api_answer_pull(api_exchange *x, int status, const char *type, api_pull_fn pull, void *ctx,
                     uint64_t len, api_body_owner owner);
void api_answer_empty(api_exchange *x, int status);
/* Takes back the answer given (an error a later finding outranks), with
 * the headers added since there were headers_before of them. */
void api_answer_withdraw(api_exchange *x, size_t headers_before);
void api_add_header(api_exchange *x, const char *name, const char *value);

/* ---- carriers (carrier.c) ---- */
json_t *carrier_blob(const api_exchange *x, const model_blob *b);
json_t *carrier_entity(const model_entity_t *e);
/* The Associate carrier of a user (null for NULL). */
json_t *carrier_associate(const model_user *u);
/* Case-insensitive member lookup. */
json_t *carrier_get(json_t *obj, const char *name);
/* Reads the carrier body in whichever representation it came (JSON, XML,
 * form, JSON Patch or merge patch applied to `current`, the carrier as it
 * is now, borrowed). NULL answered (x holds the error) unless ok. `null`
 * and empty bodies answer ENTITY_MISSING. */
json_t *carrier_read(api_exchange *x, json_t *current);
/* Keeps only the members $select names (comma-separated, any case);
 * NULL answered 400 for an unknown name. Takes the reference of j. */
json_t *carrier_select(api_exchange *x, json_t *j, const char *select);
/* Reads a client string field: true when usable (present or absent: *out
 * NULL when absent); false answered with 400. */
bool carrier_string(api_exchange *x, json_t *obj, const char *name, const char **out);
bool carrier_int(api_exchange *x, json_t *obj, const char *name, bool *present, int32_t *out);
/* The BlobEntity as compact JSON text, written directly (carrier_text.c):
 * exactly json_dumps of carrier_blob. NULL when a string is not UTF-8 or
 * the text would pass CARRIER_TEXT_MAX bytes (the caller then writes it
 * through jansson), never a text cut short. */
#define CARRIER_TEXT_MAX (1024 * 1024)
char *carrier_blob_text(const api_exchange *x, const model_blob *b, size_t *len);
/* Answers the BlobEntity b (status 200) in the negotiated type, with only
 * the members $select names when select is not empty (400 for an unknown
 * one). */
void api_answer_blob(api_exchange *x, const model_blob *b, const char *select);
/* The client-written fields of a BlobEntity body (SPEC §3); false answered. */
bool carrier_blob_edit(api_exchange *x, json_t *body, model_blob_edit *edit);

/* ---- batch tasks (batch.c) ---- */
/* The BatchTaskInfo carrier of t. */
json_t *carrier_batch_task(const api_exchange *x, const store_task *t);
const char *batch_state_name(int state);
/* A BatchTaskState by name (any case) or number; All is -1. */
bool batch_state_parse(const char *s, size_t n, int *state);
/* Task id as the caller may see it (an admin every task, anyone else their
 * own): STORE_ABSENT for none or another's. */
store_err batch_task_read(api_exchange *x, int64_t id, store_task *t);
/* Deletes the caller's task id (as batch_task_read sees it) with its output. */
store_err batch_delete(api_exchange *x, int64_t id);
/* The methods of the REST routes ROUTE_BATCH_LIST, ROUTE_BATCH, ROUTE_BATCH_STOP,
 * ROUTE_BATCH_ARCHIVE. */
const route_method *batch_route_methods(route_kind k);
/* The Batch agent's methods, as the BLOB agent's below. */
const route_method *batch_agent_find(const char *name, size_t n, int *index);
size_t batch_agent_count(void);
const char *batch_agent_name(int index);
const route_method *batch_agent_methods(int index);

/* ---- the BLOB agent (agent.c) ---- */
/* The methods of agent method name[0..n) (its index in *index), or NULL
 * when there is no such agent method. */
const route_method *agent_find(const char *name, size_t n, int *index);
const route_method *agent_methods(int index);
/* The agent methods (their indexes run from 0 to agent_count() - 1). */
size_t agent_count(void);
const char *agent_name(int index);

/* ---- handlers ---- */
void entity_create(api_exchange *x, const api_request *req);
void entity_get(api_exchange *x, const api_request *req);
/* GET /api/v1/{E}: a page of entities (list.c). */
void entity_list(api_exchange *x, const api_request *req);
/* library.c: the project image library (GET list; GET, DELETE one) */
void library_list(api_exchange *x, const api_request *req);
void library_get(api_exchange *x, const api_request *req);
void library_delete(api_exchange *x, const api_request *req);
/* ---- OData list options, shared by entity and task lists (list.c) ---- */
#define LIST_TOP 50             /* rows of a page unless $top says */
#define LIST_SKIP_MAX 100000000 /* far past any page a client walks to */
/* A field table's lookup: the field named name[0..n) (any case), -1 for
 * the id where the table has one, -2 when none. */
typedef int (*list_field_fn)(const void *ctx, const char *name, size_t n);
/* Parameter name as a whole number in [lo, hi] into *out (absent: kept);
 * false answered 400. */
bool list_param_number(api_exchange *x, const api_request *req, const char *name, int64_t lo,
                       int64_t hi, int64_t *out);
/* "Field [asc|desc], ..." into keys (at most STORE_LIST_KEYS); false with
 * the bad element at *bad (*badn bytes). */
bool list_parse_keys(const char *s, list_field_fn field, const void *ctx, store_list_key *keys,
                     int *nkeys, const char **bad, size_t *badn);
/* One comparison of a $filter. */
typedef struct {
    int field;         /* as the lookup answered */
    int op;            /* store_cmp: eq ne lt le gt ge begins */
    const char *value; /* the text ('' undone when quoted) */
    const char *at;    /* where the value starts in the $filter text */
    bool quoted;
} list_term;
/* "Field op value [and Field op value]..." into terms (at most max); false
 * with *bad at the element at fault (in s). */
bool list_parse_terms(arena_t *a, const char *s, list_field_fn field, const void *ctx,
                      list_term *terms, int max, int *n, const char **bad);
/* The link to the page after rows skip .. skip + top - 1 of path: the
 * request's $select, $orderby, $filter kept; NULL when too long. */
const char *list_next_link(api_exchange *x, const api_request *req, const char *path, int top,
                           int64_t skip);
/* $orderby into q's keys; false with the bad element at *bad (*badn bytes). */
bool list_parse_orderby(const model_entity_def *def, const char *s, store_list_query *q,
                        const char **bad, size_t *badn);
/* The text of a $filter "name begins 'text'" (in a), or NULL when s is not one. */
const char *list_parse_filter(arena_t *a, const char *s);
void entity_put(api_exchange *x, const api_request *req);
void entity_delete(api_exchange *x, const api_request *req);
void image_get(api_exchange *x, const api_request *req);
/* True when image_get may render (a variant, a placeholder, a modern format). */
bool image_get_blocks(const api_exchange *x, const api_request *req);
/* A route's `blocks` for what may always take long (the BLOB agent's calls,
 * which may decode a picture or hash nothing). */
bool api_route_always_blocks(const api_exchange *x, const api_request *req);
void image_put(api_exchange *x, const api_request *req);
void image_delete(api_exchange *x, const api_request *req);
void image_info_get(api_exchange *x, const api_request *req);
void image_info_put(api_exchange *x, const api_request *req);
/* Checks that the upload may start (entity exists); answered if not. */
bool image_put_precheck(api_exchange *x, const api_request *req);

/* ---- health, for load balancers (health.c) ---- */
void health_init(health_state *h);
void health_destroy(health_state *h);
/* GET|HEAD /health: the process is alive (200 "ok"; nothing else touched). */
void health_alive(api_exchange *x, const api_request *req);
/* GET|HEAD /ready: 200 "ok" when the database and an image worker answer,
 * else 503 naming the part that does not (a verdict at most 1 s old). */
void health_ready(api_exchange *x, const api_request *req);
/* True when health_ready would make a new verdict rather than answer one. */
bool health_ready_blocks(const api_exchange *x, const api_request *req);
/* GET /metrics for admins: the registry's page (metrics.h). */
void health_metrics(api_exchange *x, const api_request *req);

/* ---- pictures (picture.c) ---- */
/* A product's thumbnail fits inside this many pixels on each side. */
#define PIC_THUMB_SIDE 200
typedef struct {
    int w, h;      /* bounds; 0 = none */
    img_type type; /* IMG_UNKNOWN = as stored */
    bool any;      /* a variant is asked for */
} pic_query;
/* w, h, type (and Accept with --modern-formats); false answered 400. */
bool pic_parse_query(api_exchange *x, const api_request *req, pic_query *q);
/* Answers bytes with the validators in c: 304, Range (206/416) or 200.
 * The bytes are owner's, released once answered (a range is a slice of
 * them, not a copy). */
void pic_serve_lent(api_exchange *x, const api_request *req, const cond_state *c,
                    const char *mime, const void *bytes, size_t len, api_body_owner owner);
/* The same for malloc'd bytes (taken). */
void pic_serve(api_exchange *x, const api_request *req, const cond_state *c, const char *mime,
               void *bytes, size_t len);
/* The same for a picture the store lent (memory or a spool file; taken). */
void pic_serve_view(api_exchange *x, const api_request *req, const cond_state *c,
                    const char *mime, store_pic_view *v);
/* The variant q of the current record cur, from the cache or rendered. */
void pic_answer_variant(api_exchange *x, const api_request *req, const pic_query *q,
                        const model_blob *cur);
/* A placeholder for ifBlank; false when that kind answers 404 (a placeholder
 * that cannot be drawn answers 503). */
bool pic_answer_blank(api_exchange *x, const api_request *req, img_blank kind, const pic_query *q);
/* Where an upload is stored. */
typedef enum {
    PIC_TO_IMAGE,     /* the image of entity (ent, id) */
    PIC_TO_BLOB,      /* the bytes of BLOB record id */
    PIC_TO_NEW_BLOB,  /* a new unlinked record with the client fields of edit */
    PIC_TO_THUMBNAIL, /* product id's thumbnail, scaled down to 200×200 first */
} pic_target_kind;
typedef struct {
    pic_target_kind kind;
    model_kind ent;
    int32_t id;
    const model_blob_edit *edit;
} pic_target;
/* Validates x->upload, hands it to the store (which keeps it at rest
 * through its codec) where t says,
 * and (a product's image) makes its thumbnail; false answered (a target
 * that does not exist is a 400). */
bool pic_store_upload_to(api_exchange *x, const pic_target *t, model_blob *out);
/* pic_store_upload_to the image of the route's entity. */
bool pic_store_upload(api_exchange *x, model_blob *out);
/* Variant q of record b, from the cache or rendered (b is then read
 * again); *out malloc'd, *mime its type. False answered. */
bool pic_variant_bytes(api_exchange *x, const pic_query *q, model_blob *b, void **out,
                       size_t *out_len, const char **mime);


/* ---- upload spool (upload.c) ---- */
/* Raw bytes, or multipart/form-data when content_type says so; `expect`
 * bytes will come (reserved at once from the spools' bound), or -1 when
 * unknown (reserved as they come). NULL when the spool cannot be made, the
 * bound leaves no room, or the multipart header is unusable (answered). */
upload_t *upload_create(api_exchange *x, const char *content_type, int64_t expect);
/* CB_ETOOLARGE over the image cap, CB_EBADREQ a bad multipart body,
 * CB_EUNAVAILABLE the spools' bound is reached for now, CB_ENOSPACE the
 * disk is full (or this upload alone exceeds the bound), CB_EINTERNAL. */
cb_err upload_feed(upload_t *u, const char *data, size_t n);
/* Answers a failure of upload_feed other than CB_ETOOLARGE/CB_EBADREQ. */
void upload_fail(api_exchange *x, cb_err e);
/* Completes the spool; answered when the body is unusable. */
bool upload_finish(api_exchange *x, upload_t *u);
int upload_fd(const upload_t *u);
int64_t upload_size(const upload_t *u);
img_type upload_type(const upload_t *u);
void upload_destroy(upload_t *u);
/* The reason of the last feed error (multipart), for the answer. */
const char *upload_error(const upload_t *u);

#endif
