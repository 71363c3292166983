/*
 * store_int.h — the store's handle and what its parts share (private to
 * src/store).
 *
 * A store_t is generic: store.c makes it around whichever backend
 * (store_backend.h) store_open chose, and every recipe reaches the
 * database through s->be. A view (store_scope_open) is a store_t of its
 * own that points at the root and carries its scope.
 */
#ifndef CB_STORE_INT_H
#define CB_STORE_INT_H

#include <stdatomic.h>

#include "store/store.h"
#include "store/store_backend.h"

struct store_cache;
struct store_touches;

struct store_be;

/* The store itself (the root), or a view of it (store_scope_open): a
 * view points at the root, has its backend and carries its scope; every
 * other member is the root's alone, so code that reaches them from a
 * store_t it was handed goes through `root`. Recipes begin their
 * transactions with the handle's scope (`sc`). */
#define STORE_CODECS_MAX 8 /* key changes of one store_open (the rekey job) */

struct store {
    struct store *root;  /* the store: itself on the root */
    store_scope *sc;     /* a view's scope; NULL on the root */
    struct store_be *be; /* the backend (a view has the root's) */
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
    /* store_variant.c's variant uses not yet written; set by store_open */
    struct store_touches *touches;
    struct store_urefs *urefs; /* store_entity.c's memory of users named by records */
    bool defers;               /* writes may be deferred (store_scope_open) */
    /* store_options.codec (NULL: bytes kept as they are), then what
     * store_set_codec gave; atomic: a rekey swaps it while requests run */
    _Atomic(const codec_t *) codec;
    _Atomic(const codec_t *) decoder; /* codec, or plain_codec: reads what was kept either way */
    codec_t *owned[STORE_CODECS_MAX]; /* store_set_codec's, kept until store_close */
    size_t nowned;
    codec_t *plain_codec;      /* no key, no compression: the store's own */
    const char *spool_dir;     /* store_options.spool_dir, or the backend's hint */
    char *where;               /* store_open's where (malloc'd): store_where */
    /* store_options.metrics, and what store.c counts there (store_run's
     * transactions and errors; the read cache, copied in by a collector) */
    metrics_t *metrics;
    metrics_family *m_tx, *m_errors, *m_cache_hits, *m_cache_misses, *m_cache_bytes;
};

enum { STORE_CHANGES_ALL, STORE_CHANGES_USERS, STORE_CHANGES__COUNT };

/* A view's scope (store_scope_open). The thread using the view alone
 * reads `wrote`, `behind` and `ended`; the other fields belong to the backend's lock
 * once a write was deferred (which sets `wrote` under it too). */
struct store_scope {
    store_t *s;        /* the root */
    arena_t *a;        /* the member records of its writes */
    bool wrote;        /* a write was deferred: reads go through the group too */
    bool behind;       /* a write was refused on a version (STORE_PRECONDITION)
                          that may be the group's, not yet committed: reads go
                          through the group too, so that a retry sees it */
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

/* The user called `name` (case-insensitively) as the database has it now:
 * store_account.c's recipe, which store_user_by_name (store.c) puts in
 * front of the read cache. STORE_ABSENT when there is none. */
store_err store_account_user_by_name(store_t *s, arena_t *a, const char *name, model_user *out);

/* store_variant.c: the batch of variant uses of root store s, made after
 * the backend opened (STORE_INTERNAL: no memory); and, before the backend
 * closes, the pending uses written (waiting for the writer) and the batch
 * freed. */
store_err store_variant_open(store_t *s);
void store_variant_close(store_t *s);

/* ---- records: rules shared with the content recipes (store_entity.c) -----
 * The content recipes (store_pic.c) call these for the record rules, so
 * that each rule lives once. Each runs in the caller's open transaction
 * tx, on s's backend. */

/* The memory of the users that records name (a record names two, and the
 * same few users write most records): one per store, filed under the
 * users change count (users_stamp), so a change by any process is seen on
 * the next read. Made by store_open, gone with store_close. */
struct store_urefs *store_urefs_create(void);
void store_urefs_destroy(struct store_urefs *u);

/* *out := row's record with its users: the user a record names is the
 * server itself for id 0 ("crmblob", admin), NULL when that user is gone,
 * pw_hash "" (they only say who did what); the backend's own when it
 * joined them. */
store_err store_blob_out(store_t *s, store_tx *tx, arena_t *a, const store_blob_row *row,
                         model_blob *out);
/* What a conditional write of record id that matched nothing means:
 * STORE_ABSENT when there is no such record, else STORE_PRECONDITION. */
store_err store_blob_nomatch(store_tx *tx, int32_t id);
/* The start of every write of entity (k, id)'s picture or ImageInfo (R4):
 * locks the entity row (the mutex of its pictures; STORE_ABSENT), checks
 * expect against its record (when check_version, against the record's
 * version; when it has no record, against 0: STORE_PRECONDITION), and
 * gives it a linked record when it has none (ConceptualType the kind's
 * default, made by user at now). ent->image_blob_id names the record. */
store_err store_image_target(store_tx *tx, model_kind k, int32_t id, int32_t user, int64_t now,
                             int64_t expect, bool check_version, store_ent_row *ent);
/* The same for product_id's thumbnail: locks the product (STORE_ABSENT)
 * and gives it a thumbnail record when it has none; *blob_id names it. */
store_err store_thumb_target(store_tx *tx, int32_t product_id, int32_t user, int64_t now,
                             int32_t *blob_id);
/* Deletes the thumbnail record of ent (a product whose image changed: the
 * thumbnail was made from the old one); nothing for other kinds. */
store_err store_thumb_drop(store_tx *tx, const store_ent_row *ent);
/* The record of entity (k, id) with its users, the empty carrier when it
 * has none; STORE_ABSENT: no such entity. */
store_err store_image_record(store_t *s, store_tx *tx, arena_t *a, model_kind k, int32_t id,
                             model_blob *out);
/* The rule that a task's file (store_file.c) is no picture record: a
 * call that names record id by BlobId from outside (reads, writes,
 * deletes, links) answers as if there were none. STORE_ABSENT when id is
 * a batch task's file, STORE_OK otherwise (also when there is no record). */
store_err store_not_file(store_tx *tx, int32_t id);
/* The most parts an output has (4 TiB at STORE_PART_MAX each). */
#define STORE_FILE_PARTS_MAX 4096
/* Deletes the file record id of a batch task (store_file.c) a few pieces
 * per write transaction, then the record: the database's writer is never
 * held for a whole file. Its reader sees it gone (STORE_ABSENT) from the
 * first step on when it was released first (the backend's file_release). */
store_err store_file_purge(store_t *s, int32_t id);
/* The sweep of files (store_blob_sweep) in its two steps, apart for tests
 * to interleave: up to max files unlinked since before cutoff (*n); then
 * one of them released and purged only if it still is (in the release's
 * write transaction): STORE_NOMATCH, left alone, when a task bound it
 * meanwhile. */
store_err store_file_stale(store_t *s, int64_t cutoff, int32_t *ids, int max, int *n);
store_err store_file_sweep(store_t *s, int32_t id, int64_t cutoff);
/* Record id with its users; STORE_ABSENT when there is none, STORE_CORRUPT
 * (logged) when a link names it (linked) and yet it is gone. */
store_err store_blob_record(store_t *s, store_tx *tx, arena_t *a, int32_t id, bool linked,
                            model_blob *out);
/* The record of an image_read row (row->rec) into *out, with its users:
 * the empty carrier when the entity has no image; STORE_CORRUPT (logged)
 * when its link names a record that is gone. */
store_err store_image_row_out(store_t *s, store_tx *tx, arena_t *a, const store_image_row *row,
                              model_blob *out);
/* store_image_info, past the read cache (store.c's). */
store_err store_image_info_read(store_t *s, arena_t *a, model_kind k, int32_t id, model_blob *out);

/* ---- store_pic.c: the picture layer ---------------------------------------
 * The codec is applied here, above the backends: an upload is encoded
 * into a spool before the write transaction, and stored bytes are decoded
 * inside the read transaction into memory or, above STORE_PIC_INLINE, a
 * spool file. The content recipes (store.h's image_put, blob_create,
 * blob_content_put/get, thumbnail_put/get) are store_pic.c's. */

/* The picture of entity (k, id) and its record into *v (the read behind
 * store.c's read cache): memory when inline (or always when !may_spool),
 * else a spool file. */
store_err store_pic_image_read(store_t *s, arena_t *a, model_kind k, int32_t id, bool may_spool,
                               model_blob *out, store_pic_view *v);
/* The view's bytes as the caller's own (malloc'd; the view must be in
 * memory): a read that missed the cache made them so already, a hit is
 * copied. The view is released. rc: the read's outcome, returned. */
store_err store_pic_view_take(store_err rc, store_pic_view *v, void **bytes, size_t *len);

/* A variant's plain bytes encoded by s's codec: *out the meta to keep
 * (flags, original_size), *enc malloc'd or NULL when kept as given. */
store_err store_pic_variant_encode(store_t *s, const store_variant_meta *in, const void *bytes,
                                   size_t len, store_variant_meta *out, void **enc,
                                   size_t *enc_len);
/* Kept variant bytes (taken) as plain bytes (malloc'd) by meta m. */
store_err store_pic_variant_decode(store_t *s, const store_variant_meta *m, void *stored,
                                   size_t n, void **bytes, size_t *len);

/* ---- store_copy.c's data set ends, for store_check.c ---- */
struct store_copy_end;
/* The backend a store_copy_open end drives, and its description (no
 * password) for messages. */
store_be *store_copy_be(struct store_copy_end *e);
const char *store_copy_desc(struct store_copy_end *e);

#endif
