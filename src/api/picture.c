/*
 * picture.c — pictures on the wire (SPEC §2, §8): the stored bytes, scaled
 * and converted variants (GET Image?w=&h=&type=), placeholders for
 * ifBlank, HTTP caching and byte ranges, and the way an upload is checked
 * and kept at rest.
 *
 * Invariants: a variant is named by a key derived only from what it is
 * (size bounds and output type), and looked up for the BLOB's current
 * version of bytes, so a changed picture never serves an old variant.
 * The store keeps pictures and variants at rest through its codec and
 * hands back plain bytes, so clients always get exactly what was uploaded
 * (OriginalSize bytes).
 * A product's 200×200 thumbnail is a pinned variant made at upload.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api/api_int.h"
#include "core/io.h"
#include "core/log.h"
#include "core/text.h"
#include "img/img.h"

/* Variants never enlarge, so any positive int32 is a valid bound; past
 * libvips' largest coordinate it means the same as that. */
#define VARIANT_MAX_SIDE 10000000
/* ---- query ---- */

static bool parse_side(api_exchange *x, const api_request *req, const char *name, int *out)
{
    const char *v = req->query(req->conn, name);
    uint64_t n;
    *out = 0;
    if (v == NULL || *v == '\0')
        return true;
    if (!text_parse_u64(v, strlen(v), &n) || n == 0 || n > INT32_MAX) {
        API_FAIL(x, CB_EBADREQ, MSG_BAD_QUERY, MSG_S(name), MSG_S(arena_strdup(x->arena, v)));
        return false;
    }
    *out = n > VARIANT_MAX_SIDE ? VARIANT_MAX_SIDE : (int)n;
    return true;
}

static bool parse_type(api_exchange *x, const char *v, img_type *out)
{
    static const struct {
        const char *name;
        img_type t;
    } types[] = {{"JPEG", IMG_JPEG}, {"JPG", IMG_JPEG}, {"PNG", IMG_PNG}, {"GIF", IMG_GIF}};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcasecmp(v, types[i].name) == 0) {
            *out = types[i].t;
            return true;
        }
    }
    API_FAIL(x, CB_EBADREQ, MSG_BAD_QUERY, MSG_S("type"), MSG_S(arena_strdup(x->arena, v)));
    return false;
}

/* With --modern-formats and no type=, an Accept naming AVIF or WebP. */
static img_type modern_type(api_exchange *x, const api_request *req)
{
    const char *accept = req->header(req->conn, "Accept");
    if (!x->api->cfg.modern_formats || accept == NULL)
        return IMG_UNKNOWN;
    api_add_header(x, "Vary", "Accept");
    if (repr_accept_named(accept, "image/avif"))
        return IMG_AVIF;
    if (repr_accept_named(accept, "image/webp"))
        return IMG_WEBP;
    return IMG_UNKNOWN;
}

bool pic_parse_query(api_exchange *x, const api_request *req, pic_query *q)
{
    const char *type = req->query(req->conn, "type");
    *q = (pic_query){0};
    if (!parse_side(x, req, "w", &q->w) || !parse_side(x, req, "h", &q->h))
        return false;
    if (type != NULL && *type != '\0' && !parse_type(x, type, &q->type))
        return false;
    if (q->type == IMG_UNKNOWN)
        q->type = modern_type(x, req);
    q->any = q->w != 0 || q->h != 0 || q->type != IMG_UNKNOWN;
    return true;
}

/* ---- serving bytes: caching headers and ranges ---- */

/* "bytes=a-b", "bytes=a-", "bytes=-n" (one range). 1 satisfiable, 0 not
 * satisfiable, -1 not a single range we serve (then: the whole). */
static int parse_range(const char *h, size_t len, size_t *from, size_t *to)
{
    uint64_t a = 0, b = 0;
    if (h == NULL || strncmp(h, "bytes=", 6) != 0 || strchr(h, ',') != NULL)
        return -1;
    const char *r = h + 6, *dash = strchr(r, '-');
    if (dash == NULL)
        return -1;
    bool has_a = dash > r, has_b = dash[1] != '\0';
    if ((has_a && !text_parse_u64(r, (size_t)(dash - r), &a)) ||
        (has_b && !text_parse_u64(dash + 1, strlen(dash + 1), &b)) || (!has_a && !has_b))
        return -1;
    if (!has_a) { /* suffix: the last b bytes */
        if (b == 0 || len == 0)
            return 0;
        a = b >= len ? 0 : len - b;
        b = len - 1;
    } else if (!has_b || b >= len) {
        b = len - 1;
    }
    if (a >= len || (has_a && has_b && a > b))
        return a >= len ? 0 : -1;
    *from = (size_t)a;
    *to = (size_t)b;
    return 1;
}

void pic_serve(api_exchange *x, const api_request *req, const cond_state *c, const char *mime,
               void *bytes, size_t len)
{
    pic_serve_lent(x, req, c, mime, bytes, len, (api_body_owner){free, bytes});
}

/* What a picture answer sends: bytes in memory, or a file (fd >= 0). */
typedef struct {
    const void *bytes;
    int fd;
    size_t len;
    api_body_owner owner;
} pic_body;

/* [from, from + n) of b, as the answer. */
static void answer_part(api_exchange *x, int status, const char *mime, const pic_body *b,
                        size_t from, size_t n)
{
    if (b->fd >= 0)
        api_answer_fd(x, status, mime, b->fd, (int64_t)from, n, b->owner);
    else
        api_answer_lent(x, status, mime, (const char *)b->bytes + from, n, b->owner);
}

static void serve_body(api_exchange *x, const api_request *req, const cond_state *c,
                       const char *mime, const pic_body *b)
{
    size_t from, to, len = b->len;
    api_body_owner owner = b->owner;
    if (cond_not_modified(x, req, c)) {
        owner.release(owner.cls);
        return;
    }
    cond_headers(x, c);
    api_add_header(x, "Accept-Ranges", "bytes");
    const char *if_range = req->header(req->conn, "If-Range");
    bool range_ok = if_range == NULL || (c->etag != NULL && strcmp(if_range, c->etag) == 0);
    int r = range_ok ? parse_range(req->header(req->conn, "Range"), len, &from, &to) : -1;
    if (r == 0) {
        owner.release(owner.cls);
        api_add_header(x, "Content-Range", arena_printf(x->arena, "bytes */%zu", len));
        API_FAIL(x, CB_ERANGE, MSG_RANGE_NOT_SATISFIABLE, MSG_N(len));
        return;
    }
    if (r == 1) {
        api_add_header(x, "Content-Range",
                       arena_printf(x->arena, "bytes %zu-%zu/%zu", from, to, len));
        answer_part(x, 206, mime, b, from, to - from + 1);
        return;
    }
    answer_part(x, 200, mime, b, 0, len);
}

void pic_serve_lent(api_exchange *x, const api_request *req, const cond_state *c,
                    const char *mime, const void *bytes, size_t len, api_body_owner owner)
{
    pic_body b = {bytes, -1, len, owner};
    serve_body(x, req, c, mime, &b);
}

void pic_serve_view(api_exchange *x, const api_request *req, const cond_state *c,
                    const char *mime, store_pic_view *v)
{
    pic_body b = {v->bytes, v->fd, v->len, {v->rel.release, v->rel.cls}};
    serve_body(x, req, c, mime, &b);
}

/* ---- variants ---- */

static img_type stored_type(const model_blob *b)
{
    static const img_type all[] = {IMG_PNG, IMG_JPEG, IMG_GIF, IMG_TIFF};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (strcmp(b->mime_type, img_mime(all[i])) == 0)
            return all[i];
    return IMG_UNKNOWN;
}

static const char *type_name(img_type t)
{
    const char *mime = img_mime_any(t);
    return mime != NULL ? mime + 6 : "same"; /* after "image/" */
}

static const char *variant_key_in(arena_t *a, int w, int h, img_type t)
{
    return arena_printf(a, "w=%d,h=%d,t=%s", w, h, type_name(t));
}

static const char *variant_key(api_exchange *x, int w, int h, img_type t)
{
    return variant_key_in(x->arena, w, h, t);
}

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static cond_state variant_cond(api_exchange *x, const model_blob *b, const char *key)
{
    return (cond_state){
        arena_printf(x->arena, "\"%d.%lld.%08x\"", b->blob_id, (long long)b->version, fnv1a(key)),
        b->updated_ms, true};
}

/* Keeps a variant in st (the store encodes it) under a variant cache of
 * cache_bytes; failures only cost the cache. */
static void keep_variant_in(store_t *st, int64_t cache_bytes, const model_blob *b, const char *key,
                            img_type t, const void *bytes, size_t len, bool pinned)
{
    store_variant_meta m = {.mime = img_mime_any(t)};
    store_err e =
        store_variant_put(st, b->blob_id, b->version, key, &m, bytes, len, pinned, cache_bytes);
    if (e != STORE_OK && e != STORE_ABSENT)
        log_warn("variant %s of BLOB %d not kept: %s", key, b->blob_id, store_err_name(e));
}

static void keep_variant(api_exchange *x, const model_blob *b, const char *key, img_type t,
                         const void *bytes, size_t len, bool pinned)
{
    keep_variant_in(x->store, x->api->cfg.variant_cache_bytes, b, key, t, bytes, len, pinned);
}

/* Renders a variant from the original; *out malloc'd. False answered. */
static bool render_variant(api_exchange *x, const pic_query *q, model_blob *b, void **out,
                           size_t *out_len, img_type *t)
{
    void *orig = NULL;
    size_t orig_len = 0;
    char reason[256];
    store_err se = store_blob_content_get(x->store, x->arena, b->blob_id, b, &orig, &orig_len);
    if (se != STORE_OK) {
        api_fail_store(x, se, NULL);
        return false;
    }
    *t = q->type != IMG_UNKNOWN ? q->type : stored_type(b);
    cb_err e = img_variant(orig, orig_len, q->w, q->h, *t, out, out_len, reason, sizeof(reason));
    free(orig);
    if (e != CB_EOK) {
        log_warn("variant of BLOB %d failed: %s", b->blob_id, reason);
        api_fail_image(x, e, reason, false);
        return false;
    }
    return true;
}

bool pic_variant_bytes(api_exchange *x, const pic_query *q, model_blob *b, void **out,
                       size_t *out_len, const char **mime)
{
    img_type t = q->type != IMG_UNKNOWN ? q->type : stored_type(b);
    const char *key = variant_key(x, q->w, q->h, t);
    store_variant_meta m;
    store_err e = store_variant_get(x->store, x->arena, b->blob_id, b->version, key, &m, out,
                                    out_len);
    if (e == STORE_OK) {
        *mime = arena_strdup(x->arena, m.mime);
        return true;
    }
    if (e != STORE_ABSENT) {
        api_fail_store(x, e, NULL);
        return false;
    }
    if (!render_variant(x, q, b, out, out_len, &t))
        return false;
    keep_variant(x, b, variant_key(x, q->w, q->h, t), t, *out, *out_len, false);
    *mime = img_mime_any(t);
    return true;
}

void pic_answer_variant(api_exchange *x, const api_request *req, const pic_query *q,
                        const model_blob *cur)
{
    model_blob b = *cur;
    img_type t = q->type != IMG_UNKNOWN ? q->type : stored_type(&b);
    const char *key = variant_key(x, q->w, q->h, t);
    cond_state c = variant_cond(x, &b, key);
    void *bytes = NULL;
    size_t len = 0;
    const char *mime = NULL;
    if (cond_not_modified(x, req, &c))
        return;
    if (!pic_variant_bytes(x, q, &b, &bytes, &len, &mime))
        return;
    c = variant_cond(x, &b, key); /* rendering read the record again */
    pic_serve(x, req, &c, mime, bytes, len);
}

/* ---- placeholders ---- */

bool pic_answer_blank(api_exchange *x, const api_request *req, img_blank kind, const pic_query *q)
{
    void *bytes = NULL;
    size_t len = 0;
    img_type t = q->type != IMG_UNKNOWN ? q->type : IMG_PNG;
    cb_err e = img_placeholder_render(kind, q->w, q->h, t, &bytes, &len);
    if (e == CB_ENOTFOUND) /* Default, Null: no picture */
        return false;
    if (e != CB_EOK) {
        API_FAIL0(x, CB_EUNAVAILABLE, MSG_UNAVAILABLE);
        return true;
    }
    const char *key = variant_key(x, q->w, q->h, t);
    api_add_header(x, "Cache-Control", "private, no-cache"); /* until a picture is uploaded */
    cond_state c = {arena_printf(x->arena, "\"blank.%d.%08x\"", (int)kind, fnv1a(key)),
                    x->api->started_ms, true};
    pic_serve(x, req, &c, img_mime_any(t), bytes, len);
    return true;
}

/* ---- uploads ---- */

/* The picture in fd[0, size) scaled to fit PIC_THUMB_SIDE ×
 * PIC_THUMB_SIDE as type t, into a malloc'd *thumb: the pipeline's result
 * and reason, or, when fd cannot be read back, CB_EINTERNAL with
 * *unreadable set. */
static cb_err upload_thumbnail(int fd, int64_t size, img_type t, void **thumb, size_t *len,
                               bool *unreadable, char *reason, size_t cap)
{
    void *orig = malloc((size_t)size);
    cb_err e = CB_EINTERNAL;
    *unreadable = orig == NULL || io_pread_full(fd, orig, (size_t)size, 0) != (size_t)size;
    snprintf(reason, cap, "the upload could not be read back");
    if (!*unreadable)
        e = img_variant(orig, (size_t)size, PIC_THUMB_SIDE, PIC_THUMB_SIDE, t, thumb, len, reason,
                        cap);
    free(orig);
    return e;
}

/* Where a picture goes, and who stores it: an exchange's, or a command's
 * (api_image_import). */
typedef struct {
    store_t *st;
    arena_t *a;
    int64_t cache_bytes; /* the variant cache's bound */
    int32_t user_id;
    int64_t expect;
} pic_keeper;

/* The 200×200 thumbnail kept beside product picture b, made from fd[0, size). */
static void product_thumbnail(const pic_keeper *k, int fd, int64_t size, const model_blob *b)
{
    void *thumb = NULL;
    size_t thumb_len = 0;
    char reason[256];
    bool unreadable;
    img_type t = stored_type(b);
    if (upload_thumbnail(fd, size, t, &thumb, &thumb_len, &unreadable, reason, sizeof(reason)) !=
        CB_EOK)
        log_warn("product thumbnail of BLOB %d failed: %s", b->blob_id, reason);
    else
        keep_variant_in(k->st, k->cache_bytes, b,
                        variant_key_in(k->a, PIC_THUMB_SIDE, PIC_THUMB_SIDE, t), t, thumb,
                        thumb_len, true);
    free(thumb);
}

/* A thumbnail upload larger than PIC_THUMB_SIDE on a side is replaced by its
 * scaled-down copy, in a spool of its own. False answered. */
static bool shrink_to_thumbnail(api_exchange *x, const img_info *info)
{
    if (info->width <= PIC_THUMB_SIDE && info->height <= PIC_THUMB_SIDE)
        return true;
    void *thumb = NULL;
    size_t thumb_len = 0;
    char reason[256];
    upload_t *u = NULL;
    bool ok = false, unreadable;
    cb_err e = upload_thumbnail(upload_fd(x->upload), upload_size(x->upload), info->type, &thumb,
                                &thumb_len, &unreadable, reason, sizeof(reason));
    if (e != CB_EOK) {
        if (unreadable)
            API_FAIL0(x, CB_EINTERNAL, MSG_UPLOAD_FAILED);
        else
            api_fail_image(x, e, reason, true);
        goto out;
    }
    if ((u = upload_create(x, NULL, (int64_t)thumb_len)) == NULL)
        goto out;
    e = upload_feed(u, thumb, thumb_len);
    if (e != CB_EOK || !upload_finish(x, u)) {
        if (!x->answered)
            upload_fail(x, e);
        goto out;
    }
    upload_destroy(x->upload);
    x->upload = u;
    u = NULL;
    ok = true;
out:
    upload_destroy(u);
    free(thumb);
    return ok;
}

/* Stores content c where t says; a product's image gets its thumbnail. */
static store_err store_to(const pic_keeper *k, const pic_target *t, const store_content *c,
                          model_blob *out)
{
    store_err se;
    switch (t->kind) {
    case PIC_TO_BLOB:
        return store_blob_content_put(k->st, k->a, t->id, c, k->user_id, out);
    case PIC_TO_NEW_BLOB:
        return store_blob_create(k->st, k->a, t->edit, c, k->user_id, out);
    case PIC_TO_THUMBNAIL:
        return store_thumbnail_put(k->st, k->a, t->id, c, k->user_id, out);
    default:
        se = store_image_put(k->st, k->a, t->ent, t->id, c, k->user_id, k->expect, out);
        if (se == STORE_OK && t->ent == MODEL_PRODUCT)
            product_thumbnail(k, c->fd, c->size, out);
        return se;
    }
}

/* What a store_to addressed: a target that went away (or never was) is,
 * for a write, a bad request. */
static api_subject target_subject(const pic_target *t)
{
    if (t->kind == PIC_TO_BLOB)
        return (api_subject){.on = API_ON_ARG_BLOB, .id = t->id};
    return (api_subject){.on = API_ON_ARG_ENTITY, .kind = t->ent, .id = t->id};
}

bool pic_store_upload_to(api_exchange *x, const pic_target *t, model_blob *out)
{
    img_info info;
    char reason[256];
    cb_err e = img_validate_fd(upload_fd(x->upload), upload_size(x->upload), &info, reason,
                               sizeof(reason));
    if (e != CB_EOK) {
        api_fail_image(x, e, reason, true);
        return false;
    }
    if (t->kind == PIC_TO_THUMBNAIL && !shrink_to_thumbnail(x, &info))
        return false;
    store_content c = {.fd = upload_fd(x->upload),
                       .size = upload_size(x->upload),
                       .mime_type = img_mime(info.type)};
    pic_keeper k = {x->store, x->arena, x->api->cfg.variant_cache_bytes, x->user.id, x->expect};
    store_err se = store_to(&k, t, &c, out); /* NO_SPACE: 507 for a full disk */
    if (se != STORE_OK) {
        api_subject what = target_subject(t);
        api_fail_store(x, se, &what);
    }
    return se == STORE_OK;
}

bool pic_store_upload(api_exchange *x, model_blob *out)
{
    pic_target t = {PIC_TO_IMAGE, x->route.ent, x->route.id, NULL};
    return pic_store_upload_to(x, &t, out);
}

cb_err api_image_import(api_t *api, arena_t *a, const api_import *in, model_blob *out,
                        store_err *se, char *why, size_t cap)
{
    img_info info;
    pic_target t = {PIC_TO_IMAGE, in->kind, in->id, NULL};
    if (in->new_blob != NULL)
        t = (pic_target){PIC_TO_NEW_BLOB, MODEL_PROJECT, 0, in->new_blob};
    pic_keeper k = {api->store, a, api->cfg.variant_cache_bytes, in->user_id, STORE_ANY};
    *se = STORE_OK;
    if (in->size > (int64_t)api->cfg.image_max) {
        snprintf(why, cap, "%lld bytes, more than the image limit of %llu bytes",
                 (long long)in->size, (unsigned long long)api->cfg.image_max);
        return CB_ETOOLARGE;
    }
    cb_err e = img_validate_fd(in->fd, in->size, &info, why, cap); /* as pic_store_upload_to */
    if (e != CB_EOK)
        return e;
    store_content c = {.fd = in->fd, .size = in->size, .mime_type = img_mime(info.type)};
    if (in->accepted != NULL && (*se = in->accepted(in->ctx)) != STORE_OK)
        return CB_EOK;
    *se = store_to(&k, &t, &c, out);
    return CB_EOK;
}

cb_err api_bulk_put(void *api, arena_t *a, const bulk_picture *p, model_blob *out,
                    store_err *se, char *why, size_t cap)
{
    model_blob_edit ed = {p->description, p->extra_info,
                          p->conceptual_type ? p->conceptual_type : MODEL_CT_PHOTO};
    api_import in = {.kind = p->kind, .id = p->id, .fd = p->fd, .size = p->size,
                     .new_blob = p->library ? &ed : NULL, .accepted = p->accepted, .ctx = p->ctx};
    return api_image_import(api, a, &in, out, se, why, cap);
}
