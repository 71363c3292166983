/*
 * store.h — crmblob's persistence contract.
 *
 * One store_t serves the whole process and is safe to use from any number of
 * threads at once. Its rules (store_account.c, store_entity.c, store_pic.c,
 * store_variant.c) run over the narrow interface of store_backend.h, which
 * two backends implement: the embedded SQLite database (default,
 * "path/to/file.db") and PostgreSQL ("postgresql://...", "postgres://..."
 * or a libpq key=value string: several servers on one data set).
 *
 * Guarantees every backend gives:
 *  - Each call is one transaction: when it returns STORE_OK the change is
 *    committed and survives a kill -9 of the process (with `durable`, also
 *    a power loss); when it returns an error nothing of it is visible --
 *    but for a durable write whose flush to disk failed (STORE_UNAVAILABLE):
 *    it may be visible and may not survive a power loss, and every write
 *    after it is refused until the store is opened again. Through a scope's
 *    view (store_scope_open, durable mode) a write returns before its
 *    COMMIT: store_scope_wait tells the outcome.
 *  - Image bytes are copied from the caller's file descriptor inside the
 *    same transaction that updates the BLOB record, so a reader never sees
 *    a record whose sizes do not match its bytes.
 *  - BlobIds are unique across all entities and never reused.
 *
 * Results are allocated from the arena passed in (strings, model_user
 * pointers); image bytes are malloc'd and released with free().
 *
 * Writes take `expect`: the version of the record the caller's decision is
 * based on (entity version; for an image its bytes' version, for ImageInfo
 * the record's info_version; 0 = "there is no record"), or STORE_ANY. It
 * is compared inside the write's transaction: STORE_PRECONDITION when the record
 * has moved on, so that a conditional request can never overwrite a change
 * it has not seen.
 */
#ifndef CB_STORE_H
#define CB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/metrics.h"
#include "store/codec.h"
#include "store/model.h"

typedef struct store store_t;

/* What a store call answers: the store's own vocabulary (src/api maps it to
 * HTTP status and ErrorType in one place; auth and the CLI to their own
 * outcomes). */
typedef enum {
    STORE_OK = 0,
    STORE_ABSENT,       /* the subject of the call does not exist (entity, record, credential...) */
    STORE_CONFLICT,     /* a unique name/id is taken; a BLOB linked elsewhere; ids exhausted */
    STORE_PRECONDITION, /* expect did not match */
    STORE_INVALID,      /* an argument names nothing (reference field, BlobId to link, a
                           credential's user) or is out of range */
    STORE_TOO_LARGE,    /* beyond int32 BlobSize / the value limit */
    STORE_UNAVAILABLE,  /* busy, failed flush, database moved: try again (or reopen) */
    STORE_NO_SPACE,     /* the disk (or quota) is full */
    STORE_CORRUPT,      /* the data contradicts itself (size != bytes, record vanished) */
    STORE_INTERNAL,     /* anything else (logged where it happened) */
    STORE_PENDING,      /* store_scope_wait: the answer comes through the callback */
} store_err;

/* Short symbolic name for logs, e.g. "ABSENT". */
const char *store_err_name(store_err e);

#define STORE_ANY ((int64_t)-1)

typedef struct {
    bool durable;  /* answer a write only once it is flushed to disk */
    int pool_size; /* connections kept open (0 = default) */
    /* Budget of the read cache (users by name, entities' BLOB records and
     * image bytes); 0 = no cache. A cached read is never older than the
     * last write, by any process, that ended before the read began. */
    size_t cache_bytes;
    /* How picture bytes are kept at rest (codec.h); NULL: as they are. The
     * store applies it: writes take plain content and reads return plain
     * bytes. Borrowed: it must outlive the store. */
    const codec_t *codec;
    /* Where the store makes its temporary files (encoded uploads, large
     * pictures read for an answer); NULL: the database file's directory,
     * else $TMPDIR or /tmp (store_spool_hint). */
    const char *spool_dir;
    /* Open a database that exists, never make one: a SQLite file that is
     * not there, or a PostgreSQL database without crmblob's schema, is
     * STORE_ABSENT, and nothing is created (the administration commands;
     * only serve and init make a new database). */
    bool must_exist;
    /* Where the store counts transactions, errors, its read cache, group
     * commits and flushes, pool waits (metrics.h); NULL: nowhere. */
    metrics_t *metrics;
} store_options;

/* Opens (creating if needed, with parent directories, unless must_exist)
 * and migrates. */
store_err store_open(const char *where, const store_options *opt, store_t **out);
void store_close(store_t *s);

/* The database s was opened on (store_open's where: a path or a conninfo,
 * a secret: never log it, store_describe it), for a second handle of the
 * same data set (store_copy_open: the batch jobs' check); and the codec
 * it writes pictures with (NULL: kept as they are). Valid until store_close. */
const char *store_where(const store_t *s);
const codec_t *store_codec(const store_t *s);

/* From now on s keeps new pictures with c and reads with it (c owns, and
 * is destroyed at store_close; the codec it replaces stays its owner's and
 * must live until store_close too: requests in flight may still use it).
 * For the rekey job: c is codec_create_after the current codec, so what is
 * not rewritten yet still decodes. STORE_CONFLICT after STORE_CODECS_MAX
 * changes (restart the server). */
store_err store_set_codec(store_t *s, codec_t *c);

/* `where` as it may appear in a log line, into buf[0, cap): a file path
 * as it is; a PostgreSQL URL without its password (user:secret@ ->
 * user@). Needs no open store, so that a failed open can be reported. */
void store_describe(const char *where, char *buf, size_t cap);

/* The directory the store makes its temporary files in, and uploads are
 * spooled in: store_options.spool_dir (--spool-dir), else for a database
 * file its directory, else (PostgreSQL) $TMPDIR or /tmp. Never NULL; valid
 * until store_close. */
const char *store_spool_hint(store_t *s);

/* What a process holds of the database until store_close: serving
 * processes share it, and a command that rewrites every picture (rekey)
 * holds it alone. SQLite: a flock of "<db>.lock". */
typedef enum { STORE_HOLD_SERVE, STORE_HOLD_EXCLUSIVE } store_hold_mode;

/* Takes hold h without waiting: STORE_OK, else STORE_UNAVAILABLE when another
 * process holds it in a way that excludes h (logged as the reason, for
 * the operator), STORE_INTERNAL when it cannot be taken at all. */
store_err store_hold(store_t *s, store_hold_mode h);

/* Does the database answer? A cheap read of it that bypasses the read
 * cache (for GET /ready, at most about once a second): STORE_OK, else
 * STORE_UNAVAILABLE (busy, or it cannot be used now) or STORE_INTERNAL, with
 * why (English, for an operator) written into why[0, why_cap). */
store_err store_ping(store_t *s, char *why, size_t why_cap);

/* *out: a number that moves whenever users are written, by any process;
 * false when the store keeps no change counts (then nothing may be kept
 * on the strength of it). */
bool store_users_changes(store_t *s, uint64_t *out);

/* How the read cache fares (all zero without one). */
typedef struct {
    uint64_t hits, misses;
    size_t bytes, entries;
} store_cache_stats;
void store_stats(store_t *s, store_cache_stats *out);

/* ---- users -------------------------------------------------------------
 * Names are unique case-insensitively. */
/* u->id is ignored and set on success; STORE_CONFLICT when the name exists. */
store_err store_user_add(store_t *s, model_user *u);
store_err store_user_get(store_t *s, arena_t *a, int32_t id, model_user *out);
store_err store_user_by_name(store_t *s, arena_t *a, const char *name, model_user *out);
/* All users ordered by id; *out is an arena array of *n users. */
store_err store_user_list(store_t *s, arena_t *a, model_user **out, size_t *n);
store_err store_user_count(store_t *s, int64_t *n);
store_err store_user_set_password(store_t *s, const char *name, const char *pw_hash);
store_err store_user_set_disabled(store_t *s, const char *name, bool disabled);

/* ---- credentials: tickets, access tokens, browser sessions ------------
 * Only a hash of each secret is kept (BLAKE2b-256 of the secret's text);
 * a secret is found by its hash. A credential is valid while it is not
 * revoked, not expired and its user is enabled (the caller checks the
 * user). */
#define STORE_HASH_BYTES 32

typedef enum {
    STORE_CRED_TICKET = 1,  /* SOTicket 7T:... */
    STORE_CRED_TOKEN = 2,   /* Bearer 8A:... */
    STORE_CRED_SESSION = 3, /* browser session cookie, with its XSRF token */
} store_cred_kind;

typedef struct {
    int64_t id;
    store_cred_kind kind;
    int32_t user_id;
    const char *user_name; /* filled by find/list */
    int64_t created_ms;
    int64_t expires_ms;
    bool revoked;
    unsigned char hash[STORE_HASH_BYTES];
    unsigned char xsrf_hash[STORE_HASH_BYTES]; /* sessions; zero otherwise */
    const char *label;                         /* tokens: what it is for; "" otherwise */
    int64_t pair_id; /* a login's session: the ticket issued with it; 0: none */
} store_cred;

/* c->id is set on success. */
store_err store_cred_add(store_t *s, store_cred *c);
/* By kind and hash, revoked or expired ones included (the caller decides). */
store_err store_cred_find(store_t *s, arena_t *a, store_cred_kind kind,
                          const unsigned char hash[STORE_HASH_BYTES], store_cred *out);
/* All of a kind (not revoked, not expired at now_ms), ordered by id. */
store_err store_cred_list(store_t *s, arena_t *a, store_cred_kind kind, int64_t now_ms,
                          store_cred **out, size_t *n);
/* Revokes it and the credential paired with it (a login's ticket and
 * session end together), in one transaction. STORE_ABSENT when no such
 * credential of that kind. */
store_err store_cred_revoke(store_t *s, store_cred_kind kind, int64_t id);
/* Revokes every credential of user `name` (a password change or a
 * disable); STORE_ABSENT when there is no such user. */
store_err store_cred_revoke_user(store_t *s, const char *name);
/* Deletes credentials that expired before now_ms or were revoked. */
store_err store_cred_purge(store_t *s, int64_t now_ms);

/* ---- partner application tokens (SO-AppToken) ----------------------------
 * Names are unique case-insensitively; the token is kept as its hash. */
typedef struct {
    int64_t id;
    const char *name;
    unsigned char hash[STORE_HASH_BYTES];
    int64_t created_ms;
    bool revoked;
} store_app;

/* STORE_CONFLICT when the name exists (revoked or not). a->id is set. */
store_err store_app_add(store_t *s, store_app *a);
store_err store_app_find(store_t *s, arena_t *a, const unsigned char hash[STORE_HASH_BYTES],
                         store_app *out);
store_err store_app_list(store_t *s, arena_t *a, store_app **out, size_t *n);
/* STORE_ABSENT when no app of that name. */
store_err store_app_revoke(store_t *s, const char *name);

/* ---- entities ----------------------------------------------------------
 * Strings are stored as given (the API checks lengths). A reference field
 * (Person.ContactId) must name an existing entity of its kind or be 0:
 * STORE_INVALID otherwise. Deleting a contact sets ContactId of its persons
 * to 0. */
/* e->id == 0: a new id is assigned (max + 1); an id given and taken:
 * STORE_CONFLICT. On success e->id holds the id. */
store_err store_entity_create(store_t *s, model_entity_t *e);
store_err store_entity_get(store_t *s, arena_t *a, model_kind k, int32_t id, model_entity_t *out);
store_err store_entity_exists(store_t *s, model_kind k, int32_t id);

/* ---- entity lists (GET /api/v1/{E}) ------------------------------------
 * A page of one kind's entities: ordered by keys (string fields ASCII
 * case-insensitively, a reference of none as 0; the id last, in the last
 * key's direction, when the keys do not name it), filtered by a prefix of
 * its name fields (model_entity_def.nnames: any of them starts with it,
 * ASCII case-insensitively), rows skip .. skip + top - 1. */
#define STORE_LIST_MAX 500 /* rows of one page at most */
#define STORE_LIST_KEYS 4  /* sort keys a query names at most */

typedef struct {
    int field; /* index of the descriptor's field; -1: the id */
    bool desc;
} store_list_key;

typedef struct {
    model_kind kind;
    const char *prefix; /* NULL or "": no filter; at most MODEL_STRING_MAX bytes */
    store_list_key keys[STORE_LIST_KEYS + 1]; /* + 1: room for the id the store adds */
    int nkeys; /* 0: by id; at most STORE_LIST_KEYS */
    int64_t skip; /* >= 0 */
    int top;      /* 1 .. STORE_LIST_MAX */
} store_list_query;

typedef struct {
    model_entity_t e;
    int32_t image_blob_id; /* 0: none */
    int64_t image_version; /* that record's bytes version (0: none stored yet) */
} store_list_item;

/* The page q asks for: *items (an arena array of *n <= top), *more when
 * rows follow it. One statement (one round trip on PostgreSQL).
 * STORE_INVALID: q out of the bounds above. */
store_err store_entity_list(store_t *s, arena_t *a, const store_list_query *q,
                            store_list_item **items, int *n, bool *more);
/* STORE_ABSENT when absent. On success e->version/updated_ms are the new ones. */
store_err store_entity_update(store_t *s, model_entity_t *e, int64_t expect);
/* Deletes the entity, its image bytes and its BLOB record (a product: its
 * thumbnail record too). STORE_ABSENT when absent. */
store_err store_entity_delete(store_t *s, model_kind k, int32_t id, int64_t expect);

/* ---- the image of an entity --------------------------------------------
 * All return STORE_ABSENT when the entity does not exist. */

/* The entity's BLOB record, or the empty carrier (blob_id 0) if none. */
store_err store_image_info(store_t *s, arena_t *a, model_kind k, int32_t id, model_blob *out);

/* Applies the client fields of `edit` (NULL members unchanged). Creates the
 * BLOB record when the entity has none (BlobSize 0, MimeType "",
 * ConceptualType default of the kind unless given). Sets UpdatedBy/
 * UpdatedDate (and CreatedBy/CreatedDate when creating) to user_id/now.
 * *out is the record as stored. */
store_err store_image_info_put(store_t *s, arena_t *a, model_kind k, int32_t id,
                               const model_blob_edit *edit, int32_t user_id, int64_t expect,
                               model_blob *out);

/* The plain picture to store, read with pread from fd at [0, size). The
 * store encodes it with its codec (store_options) before its write
 * transaction begins: BlobSize, IsZipped and IsEncrypted say what was
 * kept, OriginalSize is size. The last three members are the store's own
 * (what its backend is handed): callers leave them zero. */
typedef struct {
    int fd;
    int64_t size; /* plain bytes (OriginalSize) */
    const char *mime_type;
    int64_t original_size;
    bool is_zipped;
    bool is_encrypted;
} store_content;

/* Replaces (or creates) the entity's image: keeps BlobId, Description,
 * ExtraInfo and ConceptualType of an existing record, updates every system
 * field (sizes, flags, MimeType, UpdatedBy/UpdatedDate, version). A
 * product's thumbnail record is deleted in the same transaction. *out is
 * the record as stored. */
store_err store_image_put(store_t *s, arena_t *a, model_kind k, int32_t id, const store_content *c,
                          int32_t user_id, int64_t expect, model_blob *out);

/* The record and its plain bytes (decoded by the store's codec), read in
 * one transaction. When the entity has no record or the record has no
 * bytes (BlobSize 0 after a PUT ImageInfo), STORE_ABSENT with out->blob_id
 * telling which (0 = none). *bytes is malloc'd (free()), *len ==
 * out->original_size. STORE_CORRUPT when the stored bytes do not decode
 * (damaged, or another key's), STORE_UNAVAILABLE when they are encrypted
 * and the store has no key. */
store_err store_image_get(store_t *s, arena_t *a, model_kind k, int32_t id, model_blob *out,
                          void **bytes, size_t *len);

/* Who frees bytes a read lends out: release(cls), exactly once. */
typedef struct {
    void (*release)(void *cls);
    void *cls;
} store_release;

/* Plain picture bytes lent out by a read: in memory (bytes), or, for a
 * picture larger than STORE_PIC_INLINE, in an unnamed temporary file
 * (fd >= 0, bytes NULL) it was decoded into piece by piece inside the
 * read's transaction, so that no reader holds a large picture in memory.
 * Either way [0, len) and read-only; rel.release(rel.cls) once gives it
 * back (closing the fd). */
typedef struct {
    const void *bytes;
    int fd; /* -1: in memory */
    size_t len;
    store_release rel;
} store_pic_view;

/* Pictures up to this many plain bytes are read into memory (and kept by
 * the read cache); larger ones into a file (measured: doc/... notes). */
#ifndef STORE_PIC_INLINE /* a build may set it (for measuring) */
#define STORE_PIC_INLINE ((size_t)1 << 20)
#endif

/* As store_image_get, into a view: the memory may be the read cache's own,
 * shared with other readers, and valid (unchanged, whatever is written
 * meanwhile) until released. v->rel is set on every answer (NULL-safe to
 * release when there are no bytes). */
store_err store_image_get_shared(store_t *s, arena_t *a, model_kind k, int32_t id, model_blob *out,
                                 store_pic_view *v);

/* Removes the entity's image bytes and BLOB record; STORE_OK when there was
 * none. A product's thumbnail record stays. */
store_err store_image_delete(store_t *s, model_kind k, int32_t id, int64_t expect);

/* ---- BLOB records by BlobId (the BLOB agent, SPEC §7) ----------------
 * A record is linked (the image of one entity, or a product's thumbnail)
 * or unlinked (made through the agent and not attached yet, or detached by
 * store_image_link). An unlinked record remembers since when it is
 * unlinked; store_blob_sweep deletes those unlinked for longer than a grace
 * period. Linking makes a record linked again. The API only ever stores
 * validated pictures as bytes. */

/* A new unlinked record: the client fields of edit (NULL, or NULL members:
 * "", and ConceptualType "PHOTO"), bytes from c (NULL: none, BlobSize 0,
 * version 0), CreatedBy/UpdatedBy user_id. info_version is at least 1. */
store_err store_blob_create(store_t *s, arena_t *a, const model_blob_edit *edit,
                            const store_content *c, int32_t user_id, model_blob *out);
/* STORE_ABSENT when there is no record blob_id. */
store_err store_blob_get(store_t *s, arena_t *a, int32_t blob_id, model_blob *out);
/* As store_image_info_put, by BlobId; STORE_ABSENT when there is no record. */
store_err store_blob_info_put(store_t *s, arena_t *a, int32_t blob_id, const model_blob_edit *edit,
                              int32_t user_id, model_blob *out);
/* As store_image_put, by BlobId (keeps every client field, updates every
 * system field, retires the variants); STORE_ABSENT when there is no record.
 * The record may be an entity's image: a product's thumbnail is not
 * deleted here (only store_image_put/store_image_link do that). */
store_err store_blob_content_put(store_t *s, arena_t *a, int32_t blob_id, const store_content *c,
                                 int32_t user_id, model_blob *out);
/* As store_image_get, by BlobId: STORE_ABSENT with out->blob_id 0 when
 * there is no record, with out->blob_id set when it has no bytes. */
store_err store_blob_content_get(store_t *s, arena_t *a, int32_t blob_id, model_blob *out,
                                 void **bytes, size_t *len);
/* Deletes the record with its bytes and variants; the entity it was linked
 * to has no image (or thumbnail) afterwards. STORE_OK when there was none
 * (a batch task's file counts as none: its task deletes it). */
store_err store_blob_delete(store_t *s, int32_t blob_id);
/* ---- the project image library (store_library.c) ----
 * Pictures offered when choosing a project's image: BLOB records kept
 * linked (never swept) by their membership, each deleted with its record.
 * An entity takes a copy of one (its own record), never the record. */
/* Record blob_id joins the library: STORE_INVALID when there is no such
 * record, STORE_CONFLICT when it is linked already (an entity's image, a
 * thumbnail, or in the library). */
store_err store_library_add(store_t *s, int32_t blob_id);
/* The library's records with a BlobId above `after`, by BlobId, at most
 * max of them (*more: there are others after them); *out from a. */
store_err store_library_list(store_t *s, arena_t *a, int32_t after, size_t max, model_blob **out,
                             size_t *n, bool *more);
/* STORE_OK when record blob_id is in the library, else STORE_ABSENT. */
store_err store_library_has(store_t *s, int32_t blob_id);
/* Deletes record blob_id, bytes and variants with it, when it is in the
 * library; STORE_ABSENT when it is not. */
store_err store_library_delete(store_t *s, int32_t blob_id);
/* Makes record blob_id the image of entity (k, id); blob_id 0 leaves the
 * entity without image. The record the entity had before, if another,
 * becomes unlinked (kept for the grace period, then swept). Linking the
 * record the entity already has changes nothing. A product's thumbnail
 * record is deleted when its image changes (it was made for the old one),
 * unlinking included. No field of either record changes (not UpdatedBy,
 * dates nor versions: the pictures are the same), nor the entity's
 * version; user_id (who asks) is not recorded.
 * Checked in this order: STORE_ABSENT: no entity (k, id); STORE_INVALID: no
 * record blob_id; STORE_CONFLICT: blob_id is linked elsewhere (another
 * entity's image, of any kind, or any product's thumbnail, the entity's
 * own included). */
store_err store_image_link(store_t *s, model_kind k, int32_t id, int32_t blob_id, int32_t user_id);
/* Deletes, with their bytes and variants, the records unlinked since
 * strictly before cutoff_ms (a record unlinked at cutoff_ms stays);
 * *count of them. A linked record is never deleted. The files of batch
 * tasks among them (an input no task took, the part a killed server was
 * writing) go first, a few pieces per transaction. */
store_err store_blob_sweep(store_t *s, int64_t cutoff_ms, int64_t *count);

/* ---- a product's thumbnail (SetProductThumbnail) ----------------------
 * A product may hold a thumbnail record of its own beside its image
 * (linked through the product, not through image). Storing one replaces
 * the bytes of the existing one (keeping its BlobId and client fields;
 * ConceptualType "THUMBNAIL" when new). store_image_put and
 * store_image_link of a product delete it, in the same transaction;
 * deleting the product deletes it; store_image_info_put and
 * store_image_delete leave it. A thumbnail record is linked (never swept)
 * and can be read, changed and deleted by BlobId like any record. */
/* Stores c as the thumbnail's bytes as store_image_put does (sizes, flags,
 * MimeType, UpdatedBy/UpdatedDate, version); CreatedBy is user_id when
 * the record is new. STORE_ABSENT when there is no product product_id. */
store_err store_thumbnail_put(store_t *s, arena_t *a, int32_t product_id, const store_content *c,
                              int32_t user_id, model_blob *out);
/* As store_image_get, for the thumbnail: STORE_ABSENT when there is no
 * product or it has no thumbnail record (out->blob_id 0 then), or the
 * record holds no bytes (out->blob_id set). */
store_err store_thumbnail_get(store_t *s, arena_t *a, int32_t product_id, model_blob *out,
                              void **bytes, size_t *len);

/* ---- variants: scaled/converted pictures, and product thumbnails -------
 * A variant belongs to one version of one BLOB's bytes and is named by a
 * key describing how it was made ("w=256,h=256,type=PNG"). Variants of an
 * older version are never returned and are deleted when the bytes change
 * or the BLOB goes (in the same transaction). Unpinned variants form a
 * cache bounded in total stored bytes: adding one evicts the least
 * recently used unpinned ones until the total fits. Pinned ones (a
 * product's 200×200 thumbnail) are kept until their version is replaced.
 * Bytes are stored as given (the caller applies the codec). */
typedef struct {
    const char *mime;
    bool is_zipped;
    bool is_encrypted;
    int64_t original_size; /* bytes once decoded */
} store_variant_meta;

/* STORE_ABSENT when there is no such variant for that version. Marks it used. */
store_err store_variant_get(store_t *s, arena_t *a, int32_t blob_id, int64_t version,
                            const char *key, store_variant_meta *meta, void **bytes, size_t *len);
/* Adds (or replaces) a variant of (blob_id, version); STORE_ABSENT (and
 * nothing stored) when that is no longer the BLOB's current version. */
store_err store_variant_put(store_t *s, int32_t blob_id, int64_t version, const char *key,
                            const store_variant_meta *meta, const void *bytes, size_t len,
                            bool pinned, int64_t cache_max_bytes);
/* Total bytes of unpinned variants (for tests and the operator). */
store_err store_variant_total(store_t *s, int64_t *bytes, int64_t *count);

/* ---- writes whose answer waits without a thread (durable mode) ----------
 * In durable mode a write returns only once its COMMIT is on disk, so the
 * calling thread waits for the disk. A caller that can hold its answer
 * instead opens a scope: a view of the store, a store_t of its own that
 * every store call accepts. The writes made through the view return as
 * soon as their part of a group commit is made (their result, and what
 * they read, as the COMMIT will keep them), and the later reads through
 * the view go through the same group, so they see those writes. Calls
 * through the store itself are untouched by any scope. The writes are
 * final only once store_scope_wait says so: their COMMIT and its flush may
 * still fail, and then none of the group is kept. Without durable mode
 * there is nothing to defer and the view is the store itself. A view is
 * used by one thread at a time (its calls one after another), and after
 * store_scope_close only by store_scope_wait. */
typedef struct store_scope store_scope;
typedef void (*store_scope_fn)(void *ctx, store_err rc);
/* A view of root that defers its writes, or root itself when root never
 * defers (or when a has no room for the view: its writes then wait where
 * they are). The view lives in a, which must outlive the wait. */
store_t *store_scope_open(store_t *root, arena_t *a);
/* Ends the view's calls; true when a write through it is still to be
 * waited for (store_scope_wait). False for the store itself. */
bool store_scope_close(store_t *view);
/* After store_scope_close: the view's writes are on disk (STORE_OK) or
 * failed (the error), known now; or STORE_PENDING, and fn(ctx, rc) is
 * then called once, from another thread, when they are. */
store_err store_scope_wait(store_t *view, store_scope_fn fn, void *ctx);

/* ---- server metadata and whole-store maintenance ---------------------- */
/* Small named values (e.g. the encryption key's fingerprint). */
store_err store_meta_get(store_t *s, arena_t *a, const char *name, void **value, size_t *len);
store_err store_meta_put(store_t *s, const char *name, const void *value, size_t len);
/* Calls fn for every BLOB with stored bytes, in id order, each in a
 * transaction of its own: fn receives the stored bytes and flags and
 * returns replacement bytes (malloc'd, or NULL to keep them) with their new
 * flags and size; the record's sizes/flags are updated to match, its
 * version and dates are not. Variants are re-encoded the same way. Stops
 * at the first error. (Used by `crmblob rekey`.)
 * *count: BLOBs whose bytes fn replaced. info_version moves for those (the
 * ImageInfo fields BlobSize/IsZipped/IsEncrypted changed); version does
 * not (the served bytes are the same). On an error, the BLOBs before the
 * failing one stay rewritten and that one (with its variants) is
 * untouched; running again completes the work, so fn is then handed
 * values it already rewrote and must recognise them (rekey: try the new
 * key first) and keep them. fn runs inside the write transaction: it must
 * not call the store. */
typedef store_err (*store_rewrite_fn)(void *ctx, const void *in, size_t len, bool zipped,
                                      bool encrypted, void **out, size_t *out_len, bool *out_zipped,
                                      bool *out_encrypted);
store_err store_rewrite_all(store_t *s, store_rewrite_fn fn, void *ctx, int64_t *count);

/* How store_recode_all re-encodes (`crmblob rekey`). */
typedef struct {
    const codec_t *old;   /* the key the pictures are kept with; NULL: none */
    const codec_t *new_;  /* what to keep them with (compressing only when asked); NULL: as
                             they are */
    const codec_t *new_z; /* the new key, compressing: for what was compressed before (so
                             compression stays where it was); never NULL */
    void (*progress)(void *ctx, int64_t stored_bytes); /* per value read; may be NULL */
    /* asked before each value; true stops the run there with
     * STORE_UNAVAILABLE (what is rewritten stays so; a run again finishes).
     * May be NULL. */
    bool (*stop)(void *ctx);
    void *ctx;
} store_recode;

/* Re-encodes every picture and variant with how->new_ (how->new_z for what
 * was compressed), over store_rewrite_all (its transactions, its count and
 * its resumption): a value is decoded with how->old, or, when a run was
 * interrupted after it, with how->new_. STORE_CORRUPT for a value neither
 * key decodes; nothing after it is rewritten. */
store_err store_recode_all(store_t *s, const store_recode *how, int64_t *count);


/* ---- batch tasks (store_task.c; the runner is src/jobs/runner.c) ----------
 * A task row is what BatchTaskInfo shows plus the runner's claim: the server
 * running it (`server`, a per-process id) and its lease (lease_ms: the task
 * is that server's until then; the server renews it while the job runs), the
 * stop flag any server may set (the running server polls it), and the BLOB
 * record of its output. With several servers, a New task is claimed by
 * exactly one (a conditional write); a Started task whose lease ran out is
 * one whose server is gone: store_task_reap marks it Failed. */
typedef enum {
    STORE_TASK_UNKNOWN = 0,
    STORE_TASK_NEW = 1,
    STORE_TASK_AQUIRED = 2,
    STORE_TASK_STARTED = 3,
    STORE_TASK_SUCCEEDED = 4,
    STORE_TASK_FAILED = 5,
    STORE_TASK_SUCCEEDED_MANUAL_CLEANUP = 6,
} store_task_state;

typedef struct {
    int64_t id;
    const char *name, *description, *params; /* params: ParameterObject as JSON text */
    int32_t associate_id;
    int state; /* store_task_state */
    int percent;
    const char *progress, *result, *response, *file_name; /* "" when none */
    int64_t created_ms, started_ms, finished_ms; /* 0: never */
    int32_t start_count;
    const char *server; /* "" when none claimed it */
    int64_t lease_ms;
    bool stop;
    int32_t output_blob; /* the output's first part; 0: none */
    /* An input record (store_batch_input_create) bound to the task by
     * store_task_add; 0: none. */
    int32_t input_blob;
} store_task;

/* A list's filter: name NULL = any, state < 0 = any, associate < 0 = any. */
typedef struct {
    const char *name;
    int state;
    int32_t associate;
} store_task_query;

/* A New task (t->name, description, params, associate_id, input_blob);
 * t->id and t->created_ms are set. An input_blob is bound to the task in
 * the same transaction: STORE_ABSENT when it is not an unbound input
 * record (no record, not an input, not written whole), STORE_CONFLICT
 * when another task has it. */
store_err store_task_add(store_t *s, store_task *t);
/* STORE_ABSENT when there is no task id. */
store_err store_task_get(store_t *s, arena_t *a, int64_t id, store_task *out);
store_err store_task_list(store_t *s, arena_t *a, const store_task_query *q, store_task **out,
                          size_t *n);
/* Claims the oldest New task for server until lease_ms: State Started,
 * StartCount + 1, LastStarted now. STORE_ABSENT when there is none (or
 * another server took it first). */
store_err store_task_claim(store_t *s, arena_t *a, const char *server, int64_t now_ms,
                           int64_t lease_ms, store_task *out);
/* The running server's heartbeat: renews the lease and writes the progress
 * (and result so far); *stop := the stop flag. STORE_ABSENT when the task
 * is not server's and Started any more (reaped, deleted). */
store_err store_task_beat(store_t *s, int64_t id, const char *server, int64_t lease_ms,
                          int percent, const char *progress, bool *stop);
/* The end of server's run: state (Succeeded or Failed), texts, output. */
store_err store_task_finish(store_t *s, const store_task *t, const char *server, int64_t now_ms);
/* Asks the task to stop: a New task is Failed at once ("Stopped before it
 * started"), a Started one gets its stop flag. STORE_ABSENT: no task. */
store_err store_task_stop(store_t *s, int64_t id, int64_t now_ms);
/* Deletes task id with its files: every part of its output and its
 * input (records and bytes). STORE_ABSENT: no task. */
store_err store_task_delete(store_t *s, int64_t id);
/* Started tasks whose lease ended before now_ms are Failed ("Interrupted:
 * the server running it stopped"); *n := how many. */
store_err store_task_reap(store_t *s, int64_t now_ms, int64_t *n);
/* Finished tasks (finished_ms before cutoff_ms), up to max of them: their
 * ids (the timed cleanup deletes them with their outputs). */
store_err store_task_expired(store_t *s, arena_t *a, int64_t cutoff_ms, int max, int64_t **ids,
                             size_t *n);

/* What UpdateBatchTask changes; NULL keeps the field. */
typedef struct {
    const char *description;
    const char *params; /* ParameterObject as JSON text */
} store_task_edit;

/* Changes task id by e in one write conditional on the row as read (so a
 * claim, a stop or another update meanwhile is never overwritten): params
 * only while the task is New. *out := the task as stored, or as it is
 * when refused. STORE_ABSENT: no task; STORE_CONFLICT: e->params given and
 * the task is not New any more. */
store_err store_task_update(store_t *s, arena_t *a, int64_t id, const store_task_edit *e,
                            store_task *out);

/* ---- a page of tasks (GET /api/v1/BatchTask and its OData options) ------
 * Filtered by terms (all hold) and the owner, ordered by keys (the id last
 * when they lack it), rows skip .. skip + top - 1: one statement. Text
 * fields compare and sort ASCII case-insensitively; LastStarted of a task
 * never started is 0. */
typedef enum {
    STORE_TF_ID,
    STORE_TF_NAME,
    STORE_TF_DESCRIPTION,
    STORE_TF_ASSOCIATE,
    STORE_TF_STATE,
    STORE_TF_PERCENT,
    STORE_TF_PROGRESS,
    STORE_TF_RESULT,
    STORE_TF_RESPONSE,
    STORE_TF_FILE_NAME,
    STORE_TF_CREATED, /* ms since the epoch */
    STORE_TF_STARTED, /* LastStarted; ms */
    STORE_TF_START_COUNT,
    STORE_TF_COUNT
} store_task_field;

typedef enum {
    STORE_CMP_EQ,
    STORE_CMP_NE,
    STORE_CMP_LT,
    STORE_CMP_LE,
    STORE_CMP_GT,
    STORE_CMP_GE,
    STORE_CMP_BEGINS, /* text fields only */
} store_cmp;

#define STORE_TASK_TERMS 8 /* terms of one filter at most */

typedef struct {
    store_task_field field;
    store_cmp op;
    const char *text; /* the value of a text field (at most MODEL_STRING_MAX bytes) */
    int64_t num;      /* the value of the others */
} store_task_term;

typedef struct {
    store_task_term terms[STORE_TASK_TERMS];
    int nterms;
    store_list_key keys[STORE_LIST_KEYS + 1]; /* field: a store_task_field; + 1: the id */
    int nkeys;
    int32_t associate; /* < 0: everyone's */
    int64_t skip;      /* >= 0 */
    int top;           /* 1 .. STORE_LIST_MAX */
} store_task_page_query;

/* True for the fields holding text (compared as text). */
bool store_task_field_is_text(store_task_field f);
/* The page q asks for: *out (an arena array of *n <= top), *more when rows
 * follow. STORE_INVALID: q out of the bounds above. */
store_err store_task_page(store_t *s, arena_t *a, const store_task_page_query *q, store_task **out,
                          int *n, bool *more);
/* ---- the files of batch tasks (store_file.c) --------------------------------
 * A task's output (in parts) and an import's input are BLOB records that
 * are not pictures: the check, the export, the sweep of linked records
 * and the image routes leave them alone (store_blob_get and the other
 * reads by BlobId answer STORE_ABSENT for them). Their bytes are kept in
 * pieces (STORE_PIECE each), written in several short write transactions
 * (the write lock is never held for a whole file), the record unusable
 * until the last one commits; a writer that dies leaves a record unlinked
 * since its last piece, which the sweep of unlinked records deletes after
 * its grace period. They are never compressed above 64 MiB (the codec's
 * cap); a file is at most INT32_MAX stored bytes (BlobSize). */

/* A front-to-back reader of plain bytes (decrypted, unzipped) with bounded
 * memory: one STORE_PIECE (or codec chunk) at a time, each piece read in a
 * short transaction of its own. */
typedef struct store_reader store_reader;
/* The BLOB record blob_id (*rec filled from a, may be NULL): a picture or
 * a task's file. STORE_ABSENT: no record, or a file not written whole. */
store_err store_blob_reader_open(store_t *s, arena_t *a, int32_t blob_id, model_blob *rec,
                                 store_reader **out);
/* The output of task id, its parts one after another; *size the total plain
 * bytes. STORE_ABSENT: no task, or no output. */
store_err store_task_output_open(store_t *s, int64_t task_id, int64_t *size, store_reader **out);
/* Up to n bytes into buf; *got 0 at the end. STORE_CORRUPT when the bytes do
 * not decode or do not match the record (wrong key, damaged), STORE_ABSENT
 * when the record went meanwhile (deleted by a cleanup, or its bytes
 * replaced). */
store_err store_reader_read(store_reader *r, void *buf, size_t n, size_t *got);
void store_reader_close(store_reader *r); /* NULL is fine */
/* An archive uploaded for an import task: a BLOB record (MimeType as given)
 * that is NOT a picture (check, export, the image routes leave it alone),
 * bound to no task yet (swept --blob-grace after its upload if no task takes
 * it). Created in one go from c (c->fd, c->size: any size up to INT32_MAX). */
store_err store_batch_input_create(store_t *s, arena_t *a, const store_content *c,
                                   int32_t associate_id, model_blob *out);

/* Parts of an output hold at most this many plain bytes (1 GiB); a test
 * may set a smaller size (store_task_output_put's part_max). */
#define STORE_PART_MAX ((int64_t)1 << 30)
/* Stores c (plain bytes, any size) as the output of Started task task_id,
 * in parts of at most part_max plain bytes (0: STORE_PART_MAX) bound to it,
 * each part written in short transactions. They stay unlinked (swept if
 * this process dies) until store_task_finish names the first one in
 * output_blob: *first its BlobId. On an error nothing is left. */
store_err store_task_output_put(store_t *s, int64_t task_id, const store_content *c,
                                int64_t part_max, int32_t *first);

#endif
