/*
 * agent.c — the BLOB agent (SPEC §7): POST /api/v1/Agents/BLOB/{Name},
 * the RPC face of the same store and rules as the REST endpoints, shaped
 * so that the official clients' BLOBAgent works unchanged.
 *
 * Each method reads its request carrier (JSON, XML or form; member names in
 * any case; byte members in base64), calls the store, and answers in one of
 * four shapes: a BlobEntity carrier, nothing (204), a bare BlobId, or
 * picture bytes. Where REST would answer 404 the agent answers 200 with
 * null, as the reference does; a malformed argument or a write naming
 * something that does not exist is a 400.
 *
 * Bytes arguments are decoded into an upload spool and go through the
 * same validation and store call as a REST upload (picture.c), so an agent
 * write can never store what REST would refuse.
 */
#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api_int.h"
#include "core/log.h"
#include "core/text.h"

typedef void (*agent_fn)(api_exchange *x, const api_request *req, json_t *args);

typedef struct {
    const char *name;
    agent_fn fn;
    int kind; /* the model_kind a per-entity method is about, or -1 */
    route_method rm[2];
} agent_def;

/* ---- answers ---- */

static void answer_null(api_exchange *x, const char *root)
{
    api_answer_carrier(x, 200, root, json_null());
}

/* A BlobEntity, with $select applied. */
static void answer_blob(api_exchange *x, const api_request *req, const model_blob *b)
{
    api_answer_blob(x, b, req->query(req->conn, "$select"));
}

/* The outcome e of reading record b: the record, null when there is none
 * (STORE_ABSENT), or the error. */
static void answer_blob_or_null(api_exchange *x, const api_request *req, store_err e,
                                const model_blob *b)
{
    if (e == STORE_OK)
        answer_blob(x, req, b);
    else if (e == STORE_ABSENT)
        answer_null(x, "BlobEntity");
    else
        api_fail_store(x, e, NULL);
}

/* Does Accept prefer the bytes themselves (mime or octet-stream) to a
 * carrier type? No Accept and star/star do. False answered 406 when Accept
 * allows neither. */
static bool wants_raw(api_exchange *x, const char *accept, const char *mime, bool *raw)
{
    int raw_q = repr_accept_q(accept, "application/octet-stream");
    int mime_q = mime != NULL ? repr_accept_q(accept, mime) : 0;
    if (mime_q > raw_q)
        raw_q = mime_q;
    int carrier_q = x->acceptable ? repr_accept_q(accept, repr_answer_mime(x)) : 0;
    *raw = raw_q > 0 && raw_q >= carrier_q;
    if (*raw || x->acceptable)
        return true;
    API_FAIL(x, CB_ENOTACCEPT, MSG_NOT_ACCEPTABLE,
             MSG_S("application/octet-stream, application/json or application/xml"));
    return false;
}

/* bytes (taken; NULL: there are none) as the bytes themselves, or as a
 * base64 string in the negotiated carrier type. */
static void answer_binary(api_exchange *x, const api_request *req, const char *mime, void *bytes,
                          size_t len)
{
    const char *accept = req->header(req->conn, "Accept");
    bool raw;
    if (!wants_raw(x, accept, mime, &raw)) {
        free(bytes);
        return;
    }
    if (raw) {
        bool named = mime != NULL && repr_accept_q(accept, mime) > 0;
        api_answer_bytes(x, 200, named ? mime : "application/octet-stream", bytes, bytes ? len : 0);
        return;
    }
    if (bytes == NULL) {
        answer_null(x, "base64Binary");
        return;
    }
    size_t cap = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc(cap);
    json_t *j = NULL;
    if (b64 != NULL) {
        sodium_bin2base64(b64, cap, bytes, len, sodium_base64_VARIANT_ORIGINAL);
        j = json_stringn_nocheck(b64, cap - 1);
    }
    free(b64);
    free(bytes);
    api_answer_carrier(x, 200, "base64Binary", j);
}

/* ---- arguments ---- */

/* Integer member `name`: required, at least 0 (1 unless zero_ok). */
static bool arg_int(api_exchange *x, json_t *args, const char *name, bool zero_ok, int32_t *out)
{
    bool present;
    if (!carrier_int(x, args, name, &present, out))
        return false;
    if (!present) {
        API_FAIL(x, CB_EBADREQ, MSG_ARG_MISSING, MSG_S(name));
        return false;
    }
    if (*out == 0 && !zero_ok) {
        API_FAIL(x, CB_EBADREQ, MSG_BAD_ID, MSG_S("0"));
        return false;
    }
    return true;
}

/* Optional integer member `name` (absent or null: 0), at least 0. */
static bool arg_opt_int(api_exchange *x, json_t *args, const char *name, int32_t *out)
{
    bool present;
    return carrier_int(x, args, name, &present, out);
}

/* The id query parameter `name` (any case), a positive int32. */
static bool arg_query_id(api_exchange *x, const api_request *req, const char *name, int32_t *out)
{
    const char *v = req->query(req->conn, name);
    if (v == NULL) {
        API_FAIL(x, CB_EBADREQ, MSG_ARG_MISSING, MSG_S(name));
        return false;
    }
    if (!text_parse_pos_i32(v, strlen(v), out)) {
        API_FAIL(x, CB_EBADREQ, MSG_BAD_ID, MSG_S(arena_strdup(x->arena, v)));
        return false;
    }
    return true;
}

/* Base64 text (standard alphabet, padding optional, whitespace ignored)
 * → malloc'd bytes; false when it is not base64. */
static bool base64_decode(const char *s, size_t n, unsigned char **out, size_t *len)
{
    while (n > 0 && strchr("= \t\r\n", s[n - 1]) != NULL)
        n--;
    unsigned char *bin = malloc(n / 4 * 3 + 3);
    const char *end = NULL;
    if (bin == NULL ||
        sodium_base642bin(bin, n / 4 * 3 + 3, s, n, " \t\r\n", len, &end,
                          sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0 ||
        end != s + n) {
        free(bin);
        return false;
    }
    *out = bin;
    return true;
}

/* len bytes (not taken) into x->upload, checked as an upload body (not
 * empty, within the image limit, a picture's signature). False answered. */
static bool upload_bytes(api_exchange *x, const unsigned char *bin, size_t len)
{
    x->upload = upload_create(x, NULL, (int64_t)len);
    cb_err e = x->upload != NULL ? upload_feed(x->upload, (const char *)bin, len) : CB_EINTERNAL;
    if (e == CB_ETOOLARGE)
        API_FAIL(x, CB_ETOOLARGE, MSG_BODY_TOO_LARGE, MSG_N(x->api->cfg.image_max));
    else if (e != CB_EOK && !x->answered)
        upload_fail(x, e);
    return e == CB_EOK && upload_finish(x, x->upload);
}

/* Byte member `name` decoded into x->upload, checked as an upload body
 * (present, not empty, within the image limit, a picture's signature).
 * False answered. */
static bool arg_bytes(api_exchange *x, json_t *args, const char *name)
{
    json_t *v = carrier_get(args, name);
    unsigned char *bin = NULL;
    size_t len = 0;
    if (v == NULL || json_is_null(v)) {
        API_FAIL0(x, CB_EBADREQ, MSG_IMAGE_MISSING);
        return false;
    }
    if (!json_is_string(v)) {
        API_FAIL(x, CB_EBADREQ, MSG_FIELD_NOT_STRING, MSG_S(name));
        return false;
    }
    if (!base64_decode(json_string_value(v), json_string_length(v), &bin, &len)) {
        API_FAIL(x, CB_EBADREQ, MSG_BAD_BASE64, MSG_S(name));
        return false;
    }
    json_string_set(v, ""); /* the base64 text is not needed any more */
    bool ok = upload_bytes(x, bin, len);
    free(bin);
    return ok;
}

/* The id member of entity kind k ("PersonId"). */
static bool arg_entity_id(api_exchange *x, json_t *args, model_kind k, int32_t *out)
{
    return arg_int(x, args, model_entity(k)->id_field, false, out);
}

/* ---- BLOB records ---- */

static void create_default(api_exchange *x, const api_request *req, json_t *args)
{
    (void)args;
    model_blob b;
    model_blob_empty(&b);
    b.conceptual_type = MODEL_CT_PHOTO; /* what a new record gets when none is given */
    answer_blob(x, req, &b);
}

static void save_blob_entity(api_exchange *x, const api_request *req, json_t *args)
{
    model_blob_edit edit;
    model_blob b;
    int32_t id;
    if (!arg_opt_int(x, args, "BlobId", &id) || !carrier_blob_edit(x, args, &edit))
        return;
    store_err e = id == 0 ? store_blob_create(x->store, x->arena, &edit, NULL, x->user.id, &b)
                          : store_blob_info_put(x->store, x->arena, id, &edit, x->user.id, &b);
    answer_blob_or_null(x, req, e, &b);
}

static void get_blob_entity(api_exchange *x, const api_request *req, json_t *args)
{
    (void)args;
    model_blob b;
    int32_t id;
    if (!arg_query_id(x, req, "blobEntityId", &id))
        return;
    store_err e = store_blob_get(x->store, x->arena, id, &b);
    answer_blob_or_null(x, req, e, &b);
}

static void delete_blob_entity(api_exchange *x, const api_request *req, json_t *args)
{
    (void)args;
    int32_t id;
    if (!arg_query_id(x, req, "BlobEntityId", &id))
        return;
    store_err e = store_blob_delete(x->store, id);
    if (e == STORE_OK)
        api_answer_empty(x, 204);
    else
        api_fail_store(x, e, NULL);
}

static void set_blob_stream(api_exchange *x, const api_request *req, json_t *args)
{
    (void)req;
    model_blob b;
    pic_target t = {PIC_TO_BLOB, MODEL_PERSON, 0, NULL};
    if (arg_int(x, args, "BlobEntityId", false, &t.id) && arg_bytes(x, args, "Stream") &&
        pic_store_upload_to(x, &t, &b))
        api_answer_empty(x, 204);
}

/* The plain bytes of record b (taken), answered. */
static void answer_stored(api_exchange *x, const api_request *req, const model_blob *b,
                          void *bytes, size_t len)
{
    answer_binary(x, req, arena_strdup(x->arena, b->mime_type), bytes, len);
}

/* The outcome e of reading the bytes of record b: them, nothing
 * (STORE_ABSENT), or the error. */
static void answer_stored_or_null(api_exchange *x, const api_request *req, store_err e,
                                  const model_blob *b, void *stored, size_t len)
{
    if (e == STORE_OK)
        answer_stored(x, req, b, stored, len);
    else if (e == STORE_ABSENT)
        answer_binary(x, req, NULL, NULL, 0);
    else
        api_fail_store(x, e, NULL);
}

static void get_blob_stream(api_exchange *x, const api_request *req, json_t *args)
{
    model_blob b;
    void *stored = NULL;
    size_t len = 0;
    int32_t id;
    if (!arg_int(x, args, "BlobEntityId", false, &id))
        return;
    store_err e = store_blob_content_get(x->store, x->arena, id, &b, &stored, &len);
    answer_stored_or_null(x, req, e, &b, stored, len);
}

/* ---- batch task outputs (the tasks: batch.c) ---- */

/* Outputs being sent at once: each holds a reader and two buffers of
 * read-ahead in the HTTP layer (about 1 MiB); more are answered 503. */
#define OUTPUT_STREAMS_MAX 16
#define OUTPUT_RETRY_S 5

/* An output being sent: its reader, and the count it holds a place in. */
typedef struct {
    store_reader *r;
    api_t *api;
} output_stream;

/* Pulls an output's bytes for the HTTP layer: -1 on any failure (logged),
 * and the connection is closed, the client seeing the body cut short. */
static long output_pull(void *ctx, char *buf, size_t n)
{
    output_stream *o = ctx;
    size_t got = 0;
    store_err e = store_reader_read(o->r, buf, n, &got);
    if (e == STORE_OK && got > 0)
        return (long)got;
    log_warn("GetOutputFromBatch: the output ended early (%s)",
             e == STORE_OK ? "shorter than announced" : store_err_name(e));
    return -1;
}

static void output_release(void *ctx)
{
    output_stream *o = ctx;
    store_reader_close(o->r);
    atomic_fetch_sub(&o->api->outputs_open, 1);
    free(o);
}

/* Answers r's bytes as the body (r taken), or 503 when too many outputs
 * are being sent already. */
static void output_send(api_exchange *x, store_reader *r, int64_t size)
{
    output_stream *o = NULL;
    if (atomic_fetch_add(&x->api->outputs_open, 1) >= OUTPUT_STREAMS_MAX ||
        (o = malloc(sizeof(*o))) == NULL) {
        atomic_fetch_sub(&x->api->outputs_open, 1);
        store_reader_close(r);
        api_add_header(x, "Retry-After", arena_printf(x->arena, "%d", OUTPUT_RETRY_S));
        API_FAIL(x, CB_EUNAVAILABLE, MSG_DOWNLOADS_BUSY, MSG_N(OUTPUT_RETRY_S));
        return;
    }
    *o = (output_stream){r, x->api};
    api_answer_pull(x, 200, "application/octet-stream", output_pull, o, (uint64_t)size,
                    (api_body_owner){output_release, o});
}

/* An output asked for as base64 in a carrier is read whole: no more than
 * this (the bytes themselves stream at any size). */
#define OUTPUT_CARRIER_MAX ((int64_t)64 << 20)

/* The reader's bytes, all size of them, into memory (taken by *bytes). */
static store_err output_slurp(store_reader *r, int64_t size, void **bytes)
{
    unsigned char *p = malloc(size > 0 ? (size_t)size : 1);
    size_t at = 0, got = 1;
    store_err e = p == NULL ? STORE_INTERNAL : STORE_OK;
    while (e == STORE_OK && got > 0 && at < (size_t)size)
        if ((e = store_reader_read(r, p + at, (size_t)size - at, &got)) == STORE_OK)
            at += got;
    if (e == STORE_OK && at != (size_t)size)
        e = STORE_CORRUPT;
    if (e != STORE_OK)
        free(p);
    *bytes = e == STORE_OK ? p : NULL;
    return e;
}

/* The output of a task the caller may see, as GetBlobStream answers a
 * record's bytes (null/empty when the task has none or is not there):
 * the bytes themselves stream from the store, piece by piece, while they
 * are sent (all its parts, one after another); base64 in a carrier only
 * up to OUTPUT_CARRIER_MAX. */
static void get_output_from_batch(api_exchange *x, const api_request *req, json_t *args)
{
    store_task t;
    store_reader *r = NULL;
    int64_t size = 0;
    int32_t id;
    bool raw = true;
    void *bytes = NULL;
    if (!arg_int(x, args, "BatchTaskId", false, &id))
        return;
    store_err e = batch_task_read(x, id, &t);
    if (e == STORE_OK)
        e = store_task_output_open(x->store, id, &size, &r);
    if (e != STORE_OK) {
        answer_stored_or_null(x, req, e, NULL, NULL, 0);
        return;
    }
    const char *accept = req->header(req->conn, "Accept");
    if (!wants_raw(x, accept, NULL, &raw) || raw) {
        if (raw)
            output_send(x, r, size);
        else
            store_reader_close(r);
        return;
    }
    e = size > OUTPUT_CARRIER_MAX ? STORE_TOO_LARGE : output_slurp(r, size, &bytes);
    store_reader_close(r);
    if (e != STORE_OK)
        api_fail_store(x, e, NULL);
    else
        answer_binary(x, req, NULL, bytes, (size_t)size);
}

/* Deletes the task with its output record (bytes, variants) and link;
 * 204 also when there is no such task (nothing left behind either way). */
static void cleanup_batch_task(api_exchange *x, const api_request *req, json_t *args)
{
    (void)req;
    int32_t id;
    if (!arg_int(x, args, "BatchTaskId", false, &id))
        return;
    store_err e = batch_delete(x, id);
    if (e == STORE_OK || e == STORE_ABSENT)
        api_answer_empty(x, 204);
    else
        api_fail_store(x, e, NULL);
}

/* The BlobLinkTypes, by number - 1, and whether each names a picture
 * (BatchTask, tokens, dashboards and HTML do not). */
static const struct {
    const char *name;
    bool picture;
} link_types[] = {
    {"PersonImage", true},        {"ProjectImage", true},
    {"EventImage", true},         {"Thumbnail", true},
    {"StatusMonitorImage", true}, {"BatchTask", false},
    {"ProductImage", true},       {"ProductThumbnail", true},
    {"QuoteLineImage", true},     {"QuoteLineThumbnail", true},
    {"AccessToken", false},       {"RefreshToken", false},
    {"Dashboard", false},         {"DashboardTile", false},
    {"ChatTopicImage", true},     {"FormsBackgroundImage", true},
    {"ContactImage", true},       {"DashboardHtmlTileData", false},
    {"ExtraTableIcon", false},
};
#define N_LINK_TYPES ((int)(sizeof(link_types) / sizeof(link_types[0])))
#define LINK_PERSON_IMAGE 1

/* The number of a BlobLinkType given as a name (any case) or a number; 0
 * when it is neither. */
static int link_type_number(json_t *v)
{
    int32_t n = 0;
    if (json_is_integer(v))
        return json_integer_value(v) >= 1 && json_integer_value(v) <= N_LINK_TYPES
                   ? (int)json_integer_value(v)
                   : 0;
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    if (text_parse_i32(s, strlen(s), &n))
        return n >= 1 && n <= N_LINK_TYPES ? n : 0;
    for (int i = 0; i < N_LINK_TYPES; i++)
        if (strcasecmp(s, link_types[i].name) == 0)
            return i + 1;
    return 0;
}

/* SaveImageStream's Type → the ConceptualType of the record: a picture
 * type is required. */
static bool link_type(api_exchange *x, json_t *args, const char **conceptual)
{
    json_t *v = carrier_get(args, "Type");
    *conceptual = MODEL_CT_PHOTO;
    if (v == NULL || json_is_null(v))
        return true;
    int n = link_type_number(v);
    if (n > 0 && link_types[n - 1].picture) {
        if (n == LINK_PERSON_IMAGE)
            *conceptual = MODEL_CT_PERSONPHOTO;
        return true;
    }
    char *text = json_dumps(v, JSON_ENCODE_ANY);
    const char *shown = json_is_string(v) ? json_string_value(v) : text ? text : "";
    API_FAIL(x, CB_EBADREQ, MSG_BAD_LINK_TYPE, MSG_S(arena_strdup(x->arena, shown)));
    free(text);
    return false;
}

static void save_image_stream(api_exchange *x, const api_request *req, json_t *args)
{
    (void)req;
    model_blob_edit edit = {0};
    model_blob b;
    pic_target t = {PIC_TO_NEW_BLOB, MODEL_PERSON, 0, &edit};
    if (!link_type(x, args, &edit.conceptual_type) ||
        !carrier_string(x, args, "Description", &edit.description) ||
        !arg_bytes(x, args, "Image") || !pic_store_upload_to(x, &t, &b))
        return;
    api_answer_carrier(x, 200, "int", json_integer(b.blob_id));
}

/* ---- the project image library (library.c has its REST face) ---- */

/* A new record holding the picture (validated as any upload), in the
 * library. A record that could not join is not left behind. */
static void save_project_image(api_exchange *x, const api_request *req, json_t *args)
{
    (void)req;
    model_blob_edit edit = {.conceptual_type = MODEL_CT_PHOTO};
    model_blob b;
    pic_target t = {PIC_TO_NEW_BLOB, MODEL_PROJECT, 0, &edit};
    if (!carrier_string(x, args, "Description", &edit.description) ||
        !arg_bytes(x, args, "Image") || !pic_store_upload_to(x, &t, &b))
        return;
    store_err e = store_library_add(x->store, b.blob_id);
    if (e == STORE_OK) {
        api_answer_empty(x, 204);
        return;
    }
    (void)store_blob_delete(x->store, b.blob_id); /* else the sweep takes it */
    api_fail_store(x, e, NULL);
}

/* Entity (k, id) takes a copy of library record blob_id: its bytes go
 * through the upload path as a new picture of the entity, so the library
 * keeps its record and any number of entities can start from it. */
static void copy_from_library(api_exchange *x, model_kind k, int32_t id, int32_t blob_id)
{
    model_blob b;
    void *bytes = NULL;
    size_t len = 0;
    pic_target t = {PIC_TO_IMAGE, k, id, NULL};
    store_err e = store_blob_content_get(x->store, x->arena, blob_id, &b, &bytes, &len);
    if (e != STORE_OK) {
        free(bytes);
        api_fail_store(x, e == STORE_ABSENT ? STORE_INVALID : e,
                       &(api_subject){.on = API_ON_LINK, .kind = k, .id = id, .blob_id = blob_id});
        return;
    }
    x->route.ent = k; /* picture.c names the entity from the route */
    x->route.id = id;
    bool ok = upload_bytes(x, bytes, len) && pic_store_upload_to(x, &t, &b);
    free(bytes);
    if (ok)
        api_answer_empty(x, 204);
}

/* ---- the picture of an entity ---- */

/* The kind a per-entity method is about. */
static model_kind kind_of(const api_exchange *x);

static void set_image(api_exchange *x, const api_request *req, json_t *args)
{
    (void)req;
    model_blob b;
    model_kind k = kind_of(x);
    pic_target t = {PIC_TO_IMAGE, k, 0, NULL};
    if (!arg_entity_id(x, args, k, &t.id) || !arg_bytes(x, args, "Image"))
        return;
    x->route.ent = k; /* picture.c names the entity from the route */
    x->route.id = t.id;
    if (pic_store_upload_to(x, &t, &b))
        api_answer_empty(x, 204);
}

static void get_image(api_exchange *x, const api_request *req, json_t *args)
{
    model_blob b;
    void *stored = NULL;
    size_t len = 0;
    int32_t id;
    model_kind k = kind_of(x);
    if (!arg_entity_id(x, args, k, &id))
        return;
    store_err e = store_image_get(x->store, x->arena, k, id, &b, &stored, &len);
    answer_stored_or_null(x, req, e, &b, stored, len);
}

static void change_image(api_exchange *x, const api_request *req, json_t *args)
{
    (void)req;
    int32_t id, blob_id;
    model_kind k = kind_of(x);
    if (!arg_entity_id(x, args, k, &id) || !arg_int(x, args, "BlobId", true, &blob_id))
        return;
    store_err e = store_library_has(x->store, blob_id);
    if (e == STORE_OK) {
        copy_from_library(x, k, id, blob_id);
        return;
    }
    if (e == STORE_ABSENT)
        e = store_image_link(x->store, k, id, blob_id, x->user.id);
    if (e == STORE_OK)
        api_answer_empty(x, 204);
    else
        api_fail_store(x, e,
                       &(api_subject){.on = API_ON_LINK, .kind = k, .id = id, .blob_id = blob_id});
}

static void get_blob_entity_on(api_exchange *x, const api_request *req, json_t *args)
{
    model_blob b;
    int32_t id;
    model_kind k = kind_of(x);
    if (!arg_entity_id(x, args, k, &id))
        return;
    store_err e = store_image_info(x->store, x->arena, k, id, &b);
    answer_blob_or_null(x, req, e, &b);
}

/* Variant q of entity (k, id)'s picture answered as bytes; null when it
 * has none. */
static void answer_entity_variant(api_exchange *x, const api_request *req, model_kind k, int32_t id,
                                  const pic_query *q)
{
    model_blob b;
    void *bytes = NULL;
    size_t len = 0;
    const char *mime = NULL;
    store_err e = store_image_info(x->store, x->arena, k, id, &b);
    if (e == STORE_ABSENT || (e == STORE_OK && b.blob_size == 0)) {
        answer_binary(x, req, NULL, NULL, 0);
        return;
    }
    if (e != STORE_OK) {
        api_fail_store(x, e, NULL);
        return;
    }
    x->route.ent = k; /* picture.c names the entity from the route */
    x->route.id = id;
    if (pic_variant_bytes(x, q, &b, &bytes, &len, &mime))
        answer_binary(x, req, mime, bytes, len);
}

static void get_image_with_size(api_exchange *x, const api_request *req, json_t *args)
{
    pic_query q = {0};
    int32_t id;
    model_kind k = kind_of(x);
    if (!arg_entity_id(x, args, k, &id) || !arg_opt_int(x, args, "Width", &q.w) ||
        !arg_opt_int(x, args, "Height", &q.h))
        return;
    q.any = q.w != 0 || q.h != 0;
    if (q.any)
        answer_entity_variant(x, req, k, id, &q);
    else
        get_image(x, req, args);
}

/* ---- a product's thumbnail ---- */

static void set_product_thumbnail(api_exchange *x, const api_request *req, json_t *args)
{
    (void)req;
    model_blob b;
    pic_target t = {PIC_TO_THUMBNAIL, MODEL_PRODUCT, 0, NULL};
    if (arg_entity_id(x, args, MODEL_PRODUCT, &t.id) && arg_bytes(x, args, "Image") &&
        pic_store_upload_to(x, &t, &b))
        api_answer_empty(x, 204);
}

/* The thumbnail set for the product, else one made from its picture (the
 * one kept since upload), else null. */
static void get_product_thumbnail(api_exchange *x, const api_request *req, json_t *args)
{
    model_blob b;
    void *stored = NULL;
    size_t len = 0;
    int32_t id;
    if (!arg_entity_id(x, args, MODEL_PRODUCT, &id))
        return;
    store_err e = store_thumbnail_get(x->store, x->arena, id, &b, &stored, &len);
    if (e == STORE_OK) {
        answer_stored(x, req, &b, stored, len);
    } else if (e == STORE_ABSENT) {
        pic_query q = {.w = PIC_THUMB_SIDE, .h = PIC_THUMB_SIDE, .any = true};
        answer_entity_variant(x, req, MODEL_PRODUCT, id, &q);
    } else {
        api_fail_store(x, e, NULL);
    }
}

/* ---- entities crmblob does not keep ---- */

/* Countries, quote lines and chat topics are none of crmblob's: their
 * methods read their arguments as the reference does and answer as it
 * does for an id it does not know, 200 with null. */

static void get_blob_entity_on_country(api_exchange *x, const api_request *req, json_t *args)
{
    (void)req;
    int32_t id;
    if (arg_int(x, args, "CountryId", false, &id))
        answer_null(x, "BlobEntity");
}

static void get_quote_line_image(api_exchange *x, const api_request *req, json_t *args)
{
    int32_t id;
    if (arg_int(x, args, "QuoteLineId", false, &id))
        answer_binary(x, req, NULL, NULL, 0);
}

static void get_chat_image_with_size(api_exchange *x, const api_request *req, json_t *args)
{
    int32_t id, w, h;
    if (arg_int(x, args, "ChatTopicId", false, &id) && arg_opt_int(x, args, "Width", &w) &&
        arg_opt_int(x, args, "Height", &h))
        answer_binary(x, req, NULL, NULL, 0);
}

/* ---- the table ---- */

#define ROUTE(fn_body, writes, carrier)                                                            \
    {                                                                                              \
        ROUTE_ROW("POST", agent_call, fn_body, writes, carrier,                                    \
                  .blocks = api_route_always_blocks),                                              \
            {0}                                                                                    \
    }
/* reads, answers a carrier */
#define READ(name, fn, kind, body)                                                                 \
    {                                                                                              \
        name, fn, kind, ROUTE(body, false, true)                                                   \
    }
/* reads, answers bytes (Accept decides their form) */
#define READ_BYTES(name, fn, kind)                                                                 \
    {                                                                                              \
        name, fn, kind, ROUTE(BODY_JSON, false, false)                                             \
    }
/* writes: a carrier of arguments (or bytes) in */
#define WRITE(name, fn, kind, body, carrier)                                                       \
    {                                                                                              \
        name, fn, kind, ROUTE(body, true, carrier)                                                 \
    }

static void agent_call(api_exchange *x, const api_request *req);

static const agent_def agents[] = {
    READ("CreateDefaultBlobEntity", create_default, -1, BODY_NONE),
    WRITE("SaveBlobEntity", save_blob_entity, -1, BODY_JSON, true),
    READ("GetBlobEntity", get_blob_entity, -1, BODY_NONE),
    WRITE("DeleteBlobEntity", delete_blob_entity, -1, BODY_NONE, false),
    WRITE("SetBlobStream", set_blob_stream, -1, BODY_BIG_JSON, false),
    READ_BYTES("GetBlobStream", get_blob_stream, -1),
    WRITE("SaveImageStream", save_image_stream, -1, BODY_BIG_JSON, true),
    WRITE("SaveProjectImage", save_project_image, MODEL_PROJECT, BODY_BIG_JSON, false),
    WRITE("SetPersonImage", set_image, MODEL_PERSON, BODY_BIG_JSON, false),
    WRITE("SetContactImage", set_image, MODEL_CONTACT, BODY_BIG_JSON, false),
    WRITE("SetProductImage", set_image, MODEL_PRODUCT, BODY_BIG_JSON, false),
    WRITE("SetProjectImage", set_image, MODEL_PROJECT, BODY_BIG_JSON, false),
    READ_BYTES("GetPersonImage", get_image, MODEL_PERSON),
    READ_BYTES("GetContactImage", get_image, MODEL_CONTACT),
    READ_BYTES("GetProductImage", get_image, MODEL_PRODUCT),
    READ_BYTES("GetProjectImage", get_image, MODEL_PROJECT),
    WRITE("ChangePersonImage", change_image, MODEL_PERSON, BODY_JSON, false),
    WRITE("ChangeContactImage", change_image, MODEL_CONTACT, BODY_JSON, false),
    WRITE("ChangeProductImage", change_image, MODEL_PRODUCT, BODY_JSON, false),
    WRITE("ChangeProjectImage", change_image, MODEL_PROJECT, BODY_JSON, false),
    READ("GetBlobEntityOnPerson", get_blob_entity_on, MODEL_PERSON, BODY_JSON),
    READ("GetBlobEntityOnContact", get_blob_entity_on, MODEL_CONTACT, BODY_JSON),
    READ("GetBlobEntityOnProduct", get_blob_entity_on, MODEL_PRODUCT, BODY_JSON),
    READ("GetBlobEntityOnProject", get_blob_entity_on, MODEL_PROJECT, BODY_JSON),
    READ_BYTES("GetPersonImageWithSize", get_image_with_size, MODEL_PERSON),
    READ_BYTES("GetContactImageWithSize", get_image_with_size, MODEL_CONTACT),
    READ_BYTES("GetProjectImageWithSize", get_image_with_size, MODEL_PROJECT),
    WRITE("SetProductThumbnail", set_product_thumbnail, MODEL_PRODUCT, BODY_BIG_JSON, false),
    READ_BYTES("GetProductThumbnail", get_product_thumbnail, MODEL_PRODUCT),
    READ("GetBlobEntityOnCountry", get_blob_entity_on_country, -1, BODY_JSON),
    READ_BYTES("GetQuoteLineImage", get_quote_line_image, -1),
    READ_BYTES("GetChatImageWithSize", get_chat_image_with_size, -1),
    READ_BYTES("GetOutputFromBatch", get_output_from_batch, -1),
    WRITE("CleanupBatchTask", cleanup_batch_task, -1, BODY_JSON, false),
};
#define N_AGENTS (sizeof(agents) / sizeof(agents[0]))

static model_kind kind_of(const api_exchange *x)
{
    assert(agents[x->route.agent].kind >= 0);
    return (model_kind)agents[x->route.agent].kind;
}

const route_method *agent_find(const char *name, size_t n, int *index)
{
    for (size_t i = 0; i < N_AGENTS; i++) {
        if (text_ieq(name, n, agents[i].name)) {
            *index = (int)i;
            return agents[i].rm;
        }
    }
    return NULL;
}

size_t agent_count(void)
{
    return N_AGENTS;
}

const char *agent_name(int index)
{
    assert(index >= 0 && (size_t)index < N_AGENTS);
    return agents[index].name;
}

const route_method *agent_methods(int index)
{
    assert(index >= 0 && (size_t)index < N_AGENTS);
    return agents[index].rm;
}

/* Reads the request carrier of methods that take one and runs the method. */
static void agent_call(api_exchange *x, const api_request *req)
{
    const agent_def *d = &agents[x->route.agent];
    json_t *args = NULL;
    if (d->rm[0].body != BODY_NONE) {
        if (x->body_repr == REPR_PATCH || x->body_repr == REPR_MERGE) {
            API_FAIL(x, CB_EUNSUPPORTED, MSG_UNSUPPORTED_TYPE,
                     MSG_S(req->header(req->conn, "Content-Type")));
            return;
        }
        if ((args = carrier_read(x, NULL)) == NULL)
            return;
        buf_free(&x->body); /* a body with a picture in it is large */
    }
    d->fn(x, req, args);
    json_decref(args);
}
