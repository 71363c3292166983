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

#include "api/api.h"
#include "api/msg.h"
#include "core/arena.h"
#include "core/buf.h"
#include "img/sniff.h"

struct api {
    store_t *store;
    auth_t *auth;
    api_config cfg;
};

typedef enum {
    ROUTE_ENTITY_NEW,  /* /api/v1/{E} */
    ROUTE_ENTITY,      /* /api/v1/{E}/{id} */
    ROUTE_IMAGE,       /* /api/v1/{E}/{id}/Image, /api/Services80/{e}/{id}/image[/content] */
    ROUTE_IMAGE_INFO,  /* /api/v1/{E}/{id}/ImageInfo */
    ROUTE__COUNT
} route_kind;

typedef enum { BODY_NONE, BODY_JSON, BODY_IMAGE } body_kind;

typedef struct api_exchange api_exchange;
typedef void (*api_handler)(api_exchange *x, const api_request *req);

typedef struct {
    const char *method;
    api_handler fn;
    body_kind body;
    bool writes; /* needs a role that may change data */
} route_method;

typedef struct {
    route_kind kind;
    model_kind ent;
    int32_t id;
    bool legacy; /* /api/Services80: GET only */
} route_t;

typedef struct upload upload_t;

struct api_exchange {
    api_t *api;
    arena_t *arena;
    const char *method;
    const char *path;
    model_user user;
    bool authed;
    route_t route;
    const route_method *rm;
    buf_t body;        /* BODY_JSON */
    upload_t *upload;  /* BODY_IMAGE */
    uint64_t body_seen;
    uint64_t body_max;
    bool answered;
    api_response resp;
};

/* ---- routing (router.c) ---- */
/* Resolves path+method; on failure the exchange holds the error answer. */
bool api_route(api_exchange *x, const api_request *req);

/* ---- answers (answer.c) ---- */
void api_fail(api_exchange *x, cb_err e, msg_id id, const msg_arg *args, int nargs);
#define API_FAIL(x, e, id, ...)                                                                    \
    api_fail((x), (e), (id), (const msg_arg[]){__VA_ARGS__},                                        \
             (int)(sizeof((const msg_arg[]){__VA_ARGS__}) / sizeof(msg_arg)))
#define API_FAIL0(x, e, id) api_fail((x), (e), (id), NULL, 0)
/* Maps a store error to an answer (NOTFOUND names the entity). */
void api_fail_store(api_exchange *x, cb_err e);
/* JSON answer; takes a reference of j. */
void api_answer_json(api_exchange *x, int status, json_t *j);
void api_answer_bytes(api_exchange *x, int status, const char *type, void *owned, size_t len);
void api_answer_empty(api_exchange *x, int status);
void api_add_header(api_exchange *x, const char *name, const char *value);

/* ---- carriers (carrier.c) ---- */
json_t *carrier_blob(const model_blob *b, model_role caller);
json_t *carrier_entity(const model_entity_t *e);
/* Case-insensitive member lookup. */
json_t *carrier_get(json_t *obj, const char *name);
/* Parses a JSON body: NULL answered (x holds the error) unless ok. `null`
 * and empty bodies answer ENTITY_MISSING. */
json_t *carrier_parse_body(api_exchange *x);
/* Reads a client string field: true when usable (present or absent: *out
 * NULL when absent); false answered with 400. */
bool carrier_string(api_exchange *x, json_t *obj, const char *name, const char **out);
bool carrier_int(api_exchange *x, json_t *obj, const char *name, bool *present, int32_t *out);

/* ---- handlers ---- */
void entity_create(api_exchange *x, const api_request *req);
void entity_get(api_exchange *x, const api_request *req);
void entity_put(api_exchange *x, const api_request *req);
void entity_delete(api_exchange *x, const api_request *req);
void image_get(api_exchange *x, const api_request *req);
void image_put(api_exchange *x, const api_request *req);
void image_delete(api_exchange *x, const api_request *req);
void image_info_get(api_exchange *x, const api_request *req);
void image_info_put(api_exchange *x, const api_request *req);
/* Checks that the upload may start (entity exists); answered if not. */
bool image_put_precheck(api_exchange *x, const api_request *req);

/* ---- upload spool (upload.c) ---- */
/* Raw bytes, or multipart/form-data when content_type says so. NULL when
 * the spool cannot be made or the multipart header is unusable (answered). */
upload_t *upload_create(api_exchange *x, const char *content_type);
cb_err upload_feed(upload_t *u, const char *data, size_t n);
/* Completes the spool; answered when the body is unusable. */
bool upload_finish(api_exchange *x, upload_t *u);
int upload_fd(const upload_t *u);
int64_t upload_size(const upload_t *u);
img_type upload_type(const upload_t *u);
void upload_destroy(upload_t *u);
/* The reason of the last feed error (multipart), for the answer. */
const char *upload_error(const upload_t *u);

#endif
