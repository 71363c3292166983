/*
 * store_int.h — the backend interface behind store.h (private to src/store).
 *
 * A backend embeds `struct store` as the first member of its own state,
 * points `ops` at its static ops table and `root` at that member; store.c
 * dispatches every public call through that table, passing the handle it
 * was given (the store or a view of it: the backend finds its state
 * through `root`). Each ops member has exactly the contract of the
 * store.h function of the same name, so a new backend (PostgreSQL next) is
 * one more table and one more open function.
 */
#ifndef CB_STORE_INT_H
#define CB_STORE_INT_H

#include <stdatomic.h>

#include "store/store.h"

struct store_tx;

/* A read of picture bytes hands the record it found to fill, inside its
 * transaction and only when the record holds bytes: fill reads them
 * (store_pic.c, over store_backend.h's pic_read_*) and its result is the
 * read's. */
typedef store_err (*store_pic_fill_fn)(void *ctx, struct store_tx *tx, const model_blob *b);

struct store_ops {
    void (*close)(store_t *s);
    store_err (*ping)(store_t *s, char *why, size_t why_cap);
    const char *(*spool_hint)(store_t *s); /* NULL when it has none */
    store_err (*hold)(store_t *s, store_hold_mode h);

    store_err (*user_add)(store_t *s, model_user *u);
    store_err (*user_get)(store_t *s, arena_t *a, int32_t id, model_user *out);
    store_err (*user_by_name)(store_t *s, arena_t *a, const char *name, model_user *out);
    store_err (*user_list)(store_t *s, arena_t *a, model_user **out, size_t *n);
    store_err (*user_count)(store_t *s, int64_t *n);
    store_err (*user_set_password)(store_t *s, const char *name, const char *pw_hash);
    store_err (*user_set_disabled)(store_t *s, const char *name, bool disabled);

    store_err (*cred_add)(store_t *s, store_cred *c);
    store_err (*cred_find)(store_t *s, arena_t *a, store_cred_kind kind,
                           const unsigned char hash[STORE_HASH_BYTES], store_cred *out);
    store_err (*cred_list)(store_t *s, arena_t *a, store_cred_kind kind, int64_t now_ms,
                           store_cred **out, size_t *n);
    store_err (*cred_revoke)(store_t *s, store_cred_kind kind, int64_t id);
    store_err (*cred_revoke_user)(store_t *s, const char *name);
    store_err (*cred_purge)(store_t *s, int64_t now_ms);

    store_err (*app_add)(store_t *s, store_app *a);
    store_err (*app_find)(store_t *s, arena_t *a, const unsigned char hash[STORE_HASH_BYTES],
                          store_app *out);
    store_err (*app_list)(store_t *s, arena_t *a, store_app **out, size_t *n);
    store_err (*app_revoke)(store_t *s, const char *name);

    store_err (*entity_create)(store_t *s, model_entity_t *e);
    store_err (*entity_get)(store_t *s, arena_t *a, model_kind k, int32_t id, model_entity_t *out);
    store_err (*entity_exists)(store_t *s, model_kind k, int32_t id);
    store_err (*entity_update)(store_t *s, model_entity_t *e, int64_t expect);
    store_err (*entity_delete)(store_t *s, model_kind k, int32_t id, int64_t expect);

    store_err (*image_info)(store_t *s, arena_t *a, model_kind k, int32_t id, model_blob *out);
    store_err (*image_info_put)(store_t *s, arena_t *a, model_kind k, int32_t id,
                                const model_blob_edit *edit, int32_t user_id, int64_t expect,
                                model_blob *out);
    store_err (*image_put)(store_t *s, arena_t *a, model_kind k, int32_t id, const store_content *c,
                           int32_t user_id, int64_t expect, model_blob *out);
    /* store_image_get's record; fill(ctx, tx, out) for its bytes */
    store_err (*image_get)(store_t *s, arena_t *a, model_kind k, int32_t id, model_blob *out,
                           store_pic_fill_fn fill, void *ctx);
    store_err (*image_delete)(store_t *s, model_kind k, int32_t id, int64_t expect);

    store_err (*blob_create)(store_t *s, arena_t *a, const model_blob_edit *edit,
                             const store_content *c, int32_t user_id, model_blob *out);
    store_err (*blob_get)(store_t *s, arena_t *a, int32_t blob_id, model_blob *out);
    store_err (*blob_info_put)(store_t *s, arena_t *a, int32_t blob_id, const model_blob_edit *edit,
                               int32_t user_id, model_blob *out);
    store_err (*blob_content_put)(store_t *s, arena_t *a, int32_t blob_id, const store_content *c,
                                  int32_t user_id, model_blob *out);
    store_err (*blob_content_get)(store_t *s, arena_t *a, int32_t blob_id, model_blob *out,
                                  store_pic_fill_fn fill, void *ctx);
    store_err (*blob_delete)(store_t *s, int32_t blob_id);
    store_err (*image_link)(store_t *s, model_kind k, int32_t id, int32_t blob_id, int32_t user_id);
    store_err (*blob_sweep)(store_t *s, int64_t cutoff_ms, int64_t *count);
    store_err (*thumbnail_put)(store_t *s, arena_t *a, int32_t product_id, const store_content *c,
                               int32_t user_id, model_blob *out);
    store_err (*thumbnail_get)(store_t *s, arena_t *a, int32_t product_id, model_blob *out,
                               store_pic_fill_fn fill, void *ctx);

    store_err (*variant_get)(store_t *s, arena_t *a, int32_t blob_id, int64_t version,
                             const char *key, store_variant_meta *meta, void **bytes, size_t *len);
    store_err (*variant_put)(store_t *s, int32_t blob_id, int64_t version, const char *key,
                             const store_variant_meta *meta, const void *bytes, size_t len,
                             bool pinned, int64_t cache_max_bytes);
    store_err (*variant_total)(store_t *s, int64_t *bytes, int64_t *count);

    store_err (*meta_get)(store_t *s, arena_t *a, const char *name, void **value, size_t *len);
    store_err (*meta_put)(store_t *s, const char *name, const void *value, size_t len);
    store_err (*rewrite_all)(store_t *s, store_rewrite_fn fn, void *ctx, int64_t *count);
    /* store_scope_wait, for a scope with deferred writes */
    store_err (*scope_wait)(store_scope *sc, store_scope_fn fn, void *ctx);
    /* Makes sure `changes` is still the database's shared count (the file
     * holding it was not removed or replaced); when it was not, maps the
     * current one at the same address and moves every count past any value
     * read before. True when it did: everything filed under an earlier
     * count is dead. NULL when the backend's counts cannot be lost. */
    bool (*changes_check)(store_t *s);
};

struct store_cache;

struct store_be;

/* The store itself (the root), or a view of it (store_scope_open): a
 * view has the root's ops, points at the root and carries its scope; every
 * other member is the root's alone, so code that reaches them from a
 * store_t it was handed goes through `root`. A backend's ops get the
 * handle the caller passed, and read its scope from `sc`. */
struct store {
    const struct store_ops *ops;
    struct store *root; /* the store: itself on the root */
    store_scope *sc;    /* a view's scope; NULL on the root */
    /* The same backend behind the narrow interface of store_backend.h,
     * which the recipes move onto section by section; set by its open
     * (a view has the root's). */
    struct store_be *be;
    /* The database's change counts, in memory shared by every process that
     * has it open (the server, `crmblob user ...`): each adds one to
     * changes[STORE_CHANGES_ALL] after every write transaction it ends,
     * and to changes[STORE_CHANGES_USERS] too when it wrote users. NULL
     * when the backend has none; then nothing is cached. Set by the
     * backend's open. */
    _Atomic uint64_t *changes;
    /* when the last changes_check ran (store_changes_watch's clock, in us) */
    _Atomic uint64_t changes_checked_us;
    struct store_cache *cache; /* store.c's read cache; NULL when off */
    bool defers;               /* writes may be deferred (store_scope_open) */
    const codec_t *codec;      /* store_options.codec; NULL: bytes kept as they are */
    const codec_t *decoder;    /* codec, or plain_codec: reads what was kept either way */
    codec_t *plain_codec;      /* no key, no compression: the store's own */
    const char *spool_dir;     /* store_options.spool_dir, or the backend's hint */
};

enum { STORE_CHANGES_ALL, STORE_CHANGES_USERS, STORE_CHANGES__COUNT };

/* A view's scope (store_scope_open). The thread using the view alone
 * reads `wrote` and `ended`; the other fields belong to the backend's lock
 * once a write was deferred (which sets `wrote` under it too). */
struct store_scope {
    store_t *s;        /* the root */
    arena_t *a;        /* the member records of its writes */
    bool wrote;        /* a write was deferred: reads go through the group too */
    bool ended;        /* store_scope_close was called */
    int pending;       /* deferred parts not yet on disk (or failed) */
    store_err rc;         /* the first failure among them */
    store_scope_fn fn; /* set by scope_wait while pending */
    void *ctx;
    store_scope *next_ready; /* the backend's list of scopes to call */
};

/* fsync of the directory holding `path`: makes a new name in it durable.
 * Logs and answers STORE_INTERNAL when it cannot. In store_sqlite.c (with
 * everything else that knows the database is a file); codec.c also uses
 * it for the key file. */
store_err store_sync_parent(const char *path);

/* How stale the shared counts may get when their file is removed or
 * replaced under a running process: they are checked (two stat calls) at
 * most this often, on the next read or write after it has passed. */
#define STORE_CHANGES_CHECK_US 100000u

/* Runs the backend's changes_check when `force` or when the last one is
 * STORE_CHANGES_CHECK_US old (one thread at a time), and empties the read
 * cache when the counts had to be moved. */
void store_changes_watch(store_t *s, bool force);

/* Called by a backend after each write transaction has ended (committed
 * or not), before the caller learns the outcome; users: it wrote users.
 * A count added to a file no longer the database's is made up for by the
 * watch, which moves the counts of the current one. */
static inline void store_changed(store_t *s, bool users)
{
    if (s->changes == NULL)
        return;
    if (users)
        atomic_fetch_add_explicit(&s->changes[STORE_CHANGES_USERS], 1, memory_order_release);
    atomic_fetch_add_explicit(&s->changes[STORE_CHANGES_ALL], 1, memory_order_release);
    store_changes_watch(s, false);
}

/* ---- store_pic.c: the picture layer ---------------------------------------
 * The codec is applied here, above the backends: an upload is encoded
 * into a spool before the write transaction, and stored bytes are decoded
 * inside the read transaction into memory or, above STORE_PIC_INLINE, a
 * spool file. */

/* c encoded by s's codec into *enc (enc->fd a new spool in *efd, closed
 * by the caller; -1 when stored as given). */
store_err store_pic_encode(store_t *s, const store_content *c, store_content *enc, int *efd);

/* The picture read by get (a backend's image_get, blob_content_get or
 * thumbnail_get, already bound to its arguments) into *v: memory when
 * inline (or always when !may_spool), else a spool file. */
typedef store_err (*store_pic_get_fn)(void *args, model_blob *out, store_pic_fill_fn fill,
                                      void *ctx);
store_err store_pic_read(store_t *s, store_pic_get_fn get, void *args, bool may_spool,
                         model_blob *out, store_pic_view *v);

/* A variant's plain bytes encoded by s's codec: *out the meta to keep
 * (flags, original_size), *enc malloc'd or NULL when kept as given. */
store_err store_pic_variant_encode(store_t *s, const store_variant_meta *in, const void *bytes,
                                   size_t len, store_variant_meta *out, void **enc,
                                   size_t *enc_len);
/* Kept variant bytes (taken) as plain bytes (malloc'd) by meta m. */
store_err store_pic_variant_decode(store_t *s, const store_variant_meta *m, void *stored,
                                   size_t n, void **bytes, size_t *len);

/* Opens the SQLite database file at `path` (its directory must exist),
 * creating and migrating the schema. opt is never NULL here. */
store_err store_sqlite_open(const char *path, const store_options *opt, store_t **out);

#endif
