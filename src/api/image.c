/*
 * image.c — an entity's picture and its BLOB record (SPEC §2, §3):
 * GET/HEAD/PUT/POST/DELETE .../Image, the legacy Services80 GETs, and
 * GET/PUT .../ImageInfo.
 *
 * Image answers carry a strong ETag naming the BLOB and the version of its
 * bytes, so it changes exactly when the bytes do.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "core/text.h"
#include "img/placeholder.h"

/* "\"<tag><id>.<version>\"", the ETag of a record's bytes or fields;
 * without printf, which was 1.3 % of a durable PUT ImageInfo. */
static const char *record_etag(arena_t *a, const char *tag, int32_t id, int64_t version)
{
    assert(id >= 0 && version >= 0);
    char n1[TEXT_U64_MAX], n2[TEXT_U64_MAX];
    size_t l1 = text_format_u64((uint64_t)id, n1), l2 = text_format_u64((uint64_t)version, n2);
    size_t lt = strlen(tag);
    char *s = arena_alloc(a, lt + l1 + l2 + 4), *p = s;
    *p++ = '"';
    memcpy(p, tag, lt), p += lt;
    memcpy(p, n1, l1), p += l1;
    *p++ = '.';
    memcpy(p, n2, l2), p += l2;
    *p = '"';
    return s;
}

/* Validators of the picture: its bytes' version. */
static cond_state image_cond(api_exchange *x, const model_blob *b)
{
    bool has = b->blob_id != 0 && b->blob_size > 0;
    return (cond_state){has ? record_etag(x->arena, "", b->blob_id, b->version) : NULL,
                        has ? b->updated_ms : INT64_MIN, has};
}

/* Validators of ImageInfo: the record's info_version ("i0": no record). */
static cond_state info_cond(api_exchange *x, const model_blob *b)
{
    return (cond_state){record_etag(x->arena, "i", b->blob_id, b->info_version),
                        b->blob_id ? b->updated_ms : INT64_MIN, true};
}

/* No image (or no entity): a placeholder when ifBlank asks for one, else 404. */
static void answer_blank(api_exchange *x, const api_request *req, img_blank blank,
                         const pic_query *q, bool entity_exists)
{
    const model_entity_def *def = model_entity(x->route.ent);
    if (pic_answer_blank(x, req, blank, q))
        return;
    if (entity_exists)
        API_FAIL(x, CB_ENOTFOUND, MSG_IMAGE_NOT_FOUND, MSG_S(def->name), MSG_ID(x->route.id));
    else
        API_FAIL(x, CB_ENOTFOUND, MSG_ENTITY_NOT_FOUND, MSG_S(def->name), MSG_ID(x->route.id));
}

/* The picture as uploaded: the store hands it plain, from the read
 * cache's own memory, a copy, or (a large one) a spool file. */
static store_err answer_original(api_exchange *x, const api_request *req)
{
    model_blob b;
    store_pic_view v;
    store_err e = store_image_get_shared(x->store, x->arena, x->route.ent, x->route.id, &b, &v);
    if (e != STORE_OK) {
        v.rel.release(v.rel.cls);
        return e;
    }
    cond_state c = image_cond(x, &b);
    api_add_header(x, "Cache-Control", "private, no-cache");
    pic_serve_view(x, req, &c, arena_strdup(x->arena, b.mime_type), &v);
    return STORE_OK;
}

/* A scaled or converted variant of the picture. */
static store_err answer_variant(api_exchange *x, const api_request *req, const pic_query *q)
{
    model_blob b;
    store_err e = store_image_info(x->store, x->arena, x->route.ent, x->route.id, &b);
    if (e == STORE_OK && (b.blob_id == 0 || b.blob_size == 0))
        e = STORE_ABSENT;
    if (e != STORE_OK)
        return e;
    api_add_header(x, "Cache-Control", "private, no-cache");
    pic_answer_variant(x, req, q, &b);
    return STORE_OK;
}

bool image_get_blocks(const api_exchange *x, const api_request *req)
{
    static const char *const args[] = {"w", "h", "type", "ifBlank"};
    for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++)
        if (req->query(req->conn, args[i]) != NULL)
            return true; /* a variant or a placeholder may have to be rendered */
    const char *accept = req->header(req->conn, "Accept");
    return x->api->cfg.modern_formats && accept != NULL &&
           (repr_accept_named(accept, "image/avif") || repr_accept_named(accept, "image/webp"));
}

void image_get(api_exchange *x, const api_request *req)
{
    img_blank blank = IMG_BLANK_DEFAULT;
    pic_query q;
    const char *ib = req->query(req->conn, "ifBlank");
    if (ib != NULL && !img_blank_parse(ib, &blank)) {
        API_FAIL(x, CB_EBADREQ, MSG_BAD_QUERY, MSG_S("ifBlank"), MSG_S(arena_strdup(x->arena, ib)));
        return;
    }
    if (!pic_parse_query(x, req, &q))
        return;
    store_err e = q.any ? answer_variant(x, req, &q) : answer_original(x, req);
    if (e == STORE_ABSENT)
        answer_blank(x, req, blank, &q,
                     store_entity_exists(x->store, x->route.ent, x->route.id) == STORE_OK);
    else if (e != STORE_OK)
        api_fail_store(x, e, NULL);
}

/* The entity's record, checked against the request's preconditions on the
 * picture; sets x->expect. False answered. */
static bool image_precondition(api_exchange *x, const api_request *req)
{
    model_blob b;
    x->expect = STORE_ANY;
    if (!cond_is_conditional(req))
        return true;
    store_err e = store_image_info(x->store, x->arena, x->route.ent, x->route.id, &b);
    if (e != STORE_OK) {
        api_fail_store(x, e, NULL);
        return false;
    }
    cond_state c = image_cond(x, &b);
    x->expect = b.blob_size > 0 ? b.version : 0;
    return cond_write_allowed(x, req, &c);
}

bool image_put_precheck(api_exchange *x, const api_request *req)
{
    store_err e = store_entity_exists(x->store, x->route.ent, x->route.id);
    if (e == STORE_OK)
        return image_precondition(x, req);
    api_fail_store(
        x, e, &(api_subject){.on = API_ON_ARG_ENTITY, .kind = x->route.ent, .id = x->route.id});
    return false;
}

void image_put(api_exchange *x, const api_request *req)
{
    (void)req;
    model_blob b;
    if (pic_store_upload(x, &b))
        api_answer_carrier(x, 200, "int", json_integer(b.blob_id));
}

void image_delete(api_exchange *x, const api_request *req)
{
    if (!image_precondition(x, req))
        return;
    store_err e = store_image_delete(x->store, x->route.ent, x->route.id, x->expect);
    if (e == STORE_OK)
        api_answer_empty(x, 204);
    else
        api_fail_store(x, e, NULL);
}

void image_info_get(api_exchange *x, const api_request *req)
{
    model_blob b;
    store_err e = store_image_info(x->store, x->arena, x->route.ent, x->route.id, &b);
    if (e != STORE_OK) {
        api_fail_store(x, e, NULL);
        return;
    }
    cond_state c = info_cond(x, &b);
    if (cond_not_modified(x, req, &c))
        return;
    cond_headers(x, &c);
    api_answer_blob(x, &b, req->query(req->conn, "$select"));
}

/* PUT Project/{id}/ImageInfo?projectId=N: N must be a valid id equal to {id}. */
static bool project_id_rule(api_exchange *x, const api_request *req)
{
    const char *q = req->query(req->conn, "projectId");
    if (x->route.ent != MODEL_PROJECT || q == NULL)
        return true;
    int32_t pid;
    if (!text_parse_pos_i32(q, strlen(q), &pid)) {
        API_FAIL(x, CB_EBADREQ, MSG_BAD_QUERY, MSG_S("projectId"), MSG_S(arena_strdup(x->arena, q)));
        return false;
    }
    if (pid != x->route.id) {
        API_FAIL(x, CB_EBADREQ, MSG_PROJECT_ID_MISMATCH, MSG_ID(x->route.id), MSG_ID(pid));
        return false;
    }
    return true;
}

/* The record as it is (the base of patches), checked against the
 * request's preconditions; x->expect is its info_version. False answered. */
static bool info_for_write(api_exchange *x, const api_request *req, model_blob *b)
{
    store_err e = store_image_info(x->store, x->arena, x->route.ent, x->route.id, b);
    if (e != STORE_OK) {
        api_fail_store(x, e, NULL);
        return false;
    }
    cond_state c = info_cond(x, b);
    x->expect = b->info_version;
    return cond_write_allowed(x, req, &c);
}

/* A body refused before anything was read (plain PUT): when the entity
 * does not exist, 404 outranks the 400, as on the paths that read first.
 * headers_before: the answer's header count before the refusal. */
static void refused_body_outranked(api_exchange *x, size_t headers_before)
{
    store_err e = store_entity_exists(x->store, x->route.ent, x->route.id);
    if (e != STORE_ABSENT)
        return;
    api_answer_withdraw(x, headers_before);
    api_fail_store(x, e, NULL);
}

/* One attempt at PUT ImageInfo. A plain PUT (not a patch, no
 * precondition) is one write transaction: the write itself finds the
 * record, refuses a missing entity, and keeps the fields not named. A
 * patch needs the record as it is, a precondition its version: both read
 * it first and write on the version read. The write's outcome, unanswered
 * (*b the record as stored); STORE_OK too when answered here. */
static store_err info_put_once(api_exchange *x, const api_request *req, model_blob *b)
{
    model_blob_edit edit;
    store_err e = STORE_OK;
    bool patch = x->body_repr == REPR_PATCH || x->body_repr == REPR_MERGE;
    bool read_first = patch || cond_is_conditional(req);
    if (read_first && !info_for_write(x, req, b))
        return STORE_OK;
    size_t headers_before = x->resp.nheaders;
    json_t *current = patch ? carrier_blob(x, b) : NULL;
    json_t *body = carrier_read(x, current);
    json_decref(current);
    if (body != NULL && carrier_blob_edit(x, body, &edit))
        e = store_image_info_put(x->store, x->arena, x->route.ent, x->route.id, &edit, x->user.id,
                                 x->expect, b);
    else if (!read_first)
        refused_body_outranked(x, headers_before);
    json_decref(body);
    return e;
}

/* A patch without a precondition that finds the record changed under it
 * is applied again to the record as it has become (cond_write_again). */
void image_info_put(api_exchange *x, const api_request *req)
{
    model_blob b;
    store_err e;
    int attempts = 0;
    if (!project_id_rule(x, req))
        return;
    do
        e = info_put_once(x, req, &b);
    while (cond_write_again(req, &e, ++attempts));
    if (x->answered)
        return;
    if (e != STORE_OK) {
        api_fail_store(x, e, NULL);
        return;
    }
    cond_state c = info_cond(x, &b);
    cond_headers(x, &c);
    api_answer_blob(x, &b, NULL);
}
