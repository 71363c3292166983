/*
 * store.c — the public store API: picks a backend at open, then forwards
 * every call through the backend's ops table (store_int.h).
 *
 * Nothing here knows about SQL; argument checks that every backend needs
 * (non-NULL store, the PostgreSQL prefix, parent directories of a database
 * file) live here so that backends do not repeat them.
 */
#include "store/store.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/log.h"
#include "store/store_int.h"

static bool is_postgres_url(const char *where)
{
    return strncasecmp(where, "postgres://", 11) == 0 ||
           strncasecmp(where, "postgresql://", 13) == 0;
}

/* mkdir -p of the directory part of `path` ("a/b/c.db" -> a, a/b). */
static cb_err make_parent_dirs(const char *path)
{
    char dir[PATH_MAX];
    int n = snprintf(dir, sizeof(dir), "%s", path);
    if (n < 0 || (size_t)n >= sizeof(dir)) {
        log_error("store: database path too long: %s", path);
        return CB_EINTERNAL;
    }
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return CB_EOK; /* the current directory */
    *slash = '\0';
    for (char *p = dir + 1; p <= slash; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            log_error("store: cannot create directory %s: %s", dir, strerror(errno));
            return CB_EINTERNAL;
        }
        *p = saved;
    }
    return CB_EOK;
}

cb_err store_open(const char *where, const store_options *opt, store_t **out)
{
    assert(where != NULL && out != NULL);
    static const store_options defaults = {0};
    *out = NULL;
    if (opt == NULL)
        opt = &defaults;
    if (is_postgres_url(where)) {
        log_error("PostgreSQL backend not built yet");
        return CB_EUNAVAILABLE;
    }
    cb_err rc = make_parent_dirs(where);
    if (rc != CB_EOK)
        return rc;
    return store_sqlite_open(where, opt, out);
}

void store_close(store_t *s)
{
    if (s != NULL)
        s->ops->close(s);
}

/* ---- dispatch ---------------------------------------------------------- */

cb_err store_user_add(store_t *s, model_user *u)
{
    return s->ops->user_add(s, u);
}

cb_err store_user_get(store_t *s, arena_t *a, int32_t id, model_user *out)
{
    return s->ops->user_get(s, a, id, out);
}

cb_err store_user_by_name(store_t *s, arena_t *a, const char *name, model_user *out)
{
    return s->ops->user_by_name(s, a, name, out);
}

cb_err store_user_list(store_t *s, arena_t *a, model_user **out, size_t *n)
{
    return s->ops->user_list(s, a, out, n);
}

cb_err store_user_count(store_t *s, int64_t *n)
{
    return s->ops->user_count(s, n);
}

cb_err store_user_set_password(store_t *s, const char *name, const char *pw_hash)
{
    return s->ops->user_set_password(s, name, pw_hash);
}

cb_err store_user_set_disabled(store_t *s, const char *name, bool disabled)
{
    return s->ops->user_set_disabled(s, name, disabled);
}

static bool cred_kind_ok(store_cred_kind kind)
{
    return kind == STORE_CRED_TICKET || kind == STORE_CRED_TOKEN || kind == STORE_CRED_SESSION;
}

cb_err store_cred_add(store_t *s, store_cred *c)
{
    assert(c != NULL && cred_kind_ok(c->kind));
    return s->ops->cred_add(s, c);
}

cb_err store_cred_find(store_t *s, arena_t *a, store_cred_kind kind,
                       const unsigned char hash[STORE_HASH_BYTES], store_cred *out)
{
    assert(cred_kind_ok(kind) && hash != NULL);
    return s->ops->cred_find(s, a, kind, hash, out);
}

cb_err store_cred_list(store_t *s, arena_t *a, store_cred_kind kind, int64_t now_ms,
                       store_cred **out, size_t *n)
{
    assert(cred_kind_ok(kind));
    return s->ops->cred_list(s, a, kind, now_ms, out, n);
}

cb_err store_cred_revoke(store_t *s, store_cred_kind kind, int64_t id)
{
    assert(cred_kind_ok(kind));
    return s->ops->cred_revoke(s, kind, id);
}

cb_err store_cred_purge(store_t *s, int64_t now_ms)
{
    return s->ops->cred_purge(s, now_ms);
}

cb_err store_app_add(store_t *s, store_app *a)
{
    assert(a != NULL && a->name != NULL);
    return s->ops->app_add(s, a);
}

cb_err store_app_find(store_t *s, arena_t *a, const unsigned char hash[STORE_HASH_BYTES],
                      store_app *out)
{
    assert(hash != NULL);
    return s->ops->app_find(s, a, hash, out);
}

cb_err store_app_list(store_t *s, arena_t *a, store_app **out, size_t *n)
{
    return s->ops->app_list(s, a, out, n);
}

cb_err store_app_revoke(store_t *s, const char *name)
{
    assert(name != NULL);
    return s->ops->app_revoke(s, name);
}

cb_err store_entity_create(store_t *s, model_entity_t *e)
{
    return s->ops->entity_create(s, e);
}

cb_err store_entity_get(store_t *s, arena_t *a, model_kind k, int32_t id, model_entity_t *out)
{
    return s->ops->entity_get(s, a, k, id, out);
}

cb_err store_entity_exists(store_t *s, model_kind k, int32_t id)
{
    return s->ops->entity_exists(s, k, id);
}

cb_err store_entity_update(store_t *s, model_entity_t *e, int64_t expect)
{
    return s->ops->entity_update(s, e, expect);
}

cb_err store_entity_delete(store_t *s, model_kind k, int32_t id, int64_t expect)
{
    return s->ops->entity_delete(s, k, id, expect);
}

cb_err store_image_info(store_t *s, arena_t *a, model_kind k, int32_t id, model_blob *out)
{
    return s->ops->image_info(s, a, k, id, out);
}

cb_err store_image_info_put(store_t *s, arena_t *a, model_kind k, int32_t id,
                            const model_blob_edit *edit, int32_t user_id, int64_t expect,
                            model_blob *out)
{
    return s->ops->image_info_put(s, a, k, id, edit, user_id, expect, out);
}

cb_err store_image_put(store_t *s, arena_t *a, model_kind k, int32_t id, const store_content *c,
                       int32_t user_id, int64_t expect, model_blob *out)
{
    return s->ops->image_put(s, a, k, id, c, user_id, expect, out);
}

cb_err store_image_get(store_t *s, arena_t *a, model_kind k, int32_t id, model_blob *out,
                       void **bytes, size_t *len)
{
    return s->ops->image_get(s, a, k, id, out, bytes, len);
}

cb_err store_image_delete(store_t *s, model_kind k, int32_t id, int64_t expect)
{
    return s->ops->image_delete(s, k, id, expect);
}

cb_err store_blob_create(store_t *s, arena_t *a, const model_blob_edit *edit,
                         const store_content *c, int32_t user_id, model_blob *out)
{
    assert(a != NULL && out != NULL);
    return s->ops->blob_create(s, a, edit, c, user_id, out);
}

cb_err store_blob_get(store_t *s, arena_t *a, int32_t blob_id, model_blob *out)
{
    assert(a != NULL && out != NULL);
    return s->ops->blob_get(s, a, blob_id, out);
}

cb_err store_blob_info_put(store_t *s, arena_t *a, int32_t blob_id, const model_blob_edit *edit,
                           int32_t user_id, model_blob *out)
{
    assert(a != NULL && edit != NULL && out != NULL);
    return s->ops->blob_info_put(s, a, blob_id, edit, user_id, out);
}

cb_err store_blob_content_put(store_t *s, arena_t *a, int32_t blob_id, const store_content *c,
                              int32_t user_id, model_blob *out)
{
    assert(a != NULL && c != NULL && out != NULL);
    return s->ops->blob_content_put(s, a, blob_id, c, user_id, out);
}

cb_err store_blob_content_get(store_t *s, arena_t *a, int32_t blob_id, model_blob *out,
                              void **bytes, size_t *len)
{
    assert(a != NULL && out != NULL && bytes != NULL && len != NULL);
    return s->ops->blob_content_get(s, a, blob_id, out, bytes, len);
}

cb_err store_blob_delete(store_t *s, int32_t blob_id)
{
    return s->ops->blob_delete(s, blob_id);
}

cb_err store_image_link(store_t *s, model_kind k, int32_t id, int32_t blob_id, int32_t user_id)
{
    return s->ops->image_link(s, k, id, blob_id, user_id);
}

cb_err store_blob_sweep(store_t *s, int64_t cutoff_ms, int64_t *count)
{
    assert(count != NULL);
    return s->ops->blob_sweep(s, cutoff_ms, count);
}

cb_err store_thumbnail_put(store_t *s, arena_t *a, int32_t product_id, const store_content *c,
                           int32_t user_id, model_blob *out)
{
    assert(a != NULL && c != NULL && out != NULL);
    return s->ops->thumbnail_put(s, a, product_id, c, user_id, out);
}

cb_err store_thumbnail_get(store_t *s, arena_t *a, int32_t product_id, model_blob *out,
                           void **bytes, size_t *len)
{
    assert(a != NULL && out != NULL && bytes != NULL && len != NULL);
    return s->ops->thumbnail_get(s, a, product_id, out, bytes, len);
}

cb_err store_variant_get(store_t *s, arena_t *a, int32_t blob_id, int64_t version, const char *key,
                         store_variant_meta *meta, void **bytes, size_t *len)
{
    assert(a != NULL && key != NULL && meta != NULL && bytes != NULL && len != NULL);
    return s->ops->variant_get(s, a, blob_id, version, key, meta, bytes, len);
}

cb_err store_variant_put(store_t *s, int32_t blob_id, int64_t version, const char *key,
                         const store_variant_meta *meta, const void *bytes, size_t len, bool pinned,
                         int64_t cache_max_bytes)
{
    assert(key != NULL && meta != NULL && meta->mime != NULL && (bytes != NULL || len == 0));
    return s->ops->variant_put(s, blob_id, version, key, meta, bytes, len, pinned, cache_max_bytes);
}

cb_err store_variant_total(store_t *s, int64_t *bytes, int64_t *count)
{
    assert(bytes != NULL && count != NULL);
    return s->ops->variant_total(s, bytes, count);
}

cb_err store_meta_get(store_t *s, arena_t *a, const char *name, void **value, size_t *len)
{
    assert(a != NULL && name != NULL && value != NULL && len != NULL);
    return s->ops->meta_get(s, a, name, value, len);
}

cb_err store_meta_put(store_t *s, const char *name, const void *value, size_t len)
{
    assert(name != NULL && (value != NULL || len == 0));
    return s->ops->meta_put(s, name, value, len);
}

cb_err store_rewrite_all(store_t *s, store_rewrite_fn fn, void *ctx, int64_t *count)
{
    assert(fn != NULL && count != NULL);
    return s->ops->rewrite_all(s, fn, ctx, count);
}
