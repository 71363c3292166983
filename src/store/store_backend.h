/*
 * store_backend.h — what a database gives the store (private to src/store).
 *
 * The store's rules (recipes) live once, in store.c and its siblings, above
 * this narrow interface; SQLite (store_sqlite.c) and PostgreSQL implement
 * it. The recipes are its only callers.
 *
 * Invariants every backend keeps:
 *  - Every primitive runs on an open transaction (store_tx, from begin) and
 *    is one statement or one byte-stream operation. It decides nothing: no
 *    `if` on a value it read, no default values. The recipes decide.
 *  - What must hold when two servers race is a conditional write
 *    (`WHERE ... = expect`, RETURNING the values the row got; 0 rows is
 *    STORE_NOMATCH) or a locking read (store_row_lock). SQLite implements
 *    the lock modes as plain reads: BEGIN IMMEDIATE already holds the
 *    whole database. PostgreSQL writes at READ COMMITTED.
 *  - STORE_NOMATCH and STORE_RETRY never leave src/store: a recipe turns
 *    NOMATCH into ABSENT, PRECONDITION or CONFLICT; store_run re-runs a
 *    recipe that met RETRY (serialization failure, deadlock).
 *  - A primitive's results come from the arena it is given; picture bytes
 *    go in and out in pieces of at most STORE_PIECE.
 *  - A primitive that fails (any error; NOMATCH and ABSENT are answers, not
 *    failures) ends what its transaction can do: PostgreSQL refuses every
 *    later statement of it. A recipe returns that failure (or its own
 *    reading of it) and never carries on in the same transaction; the
 *    PostgreSQL backend answers later primitives, and end, with it.
 *
 * Every recipe lives above this interface: store.c makes a store_t (a
 * generic handle, store_int.h) around whichever store_be its open made.
 */
#ifndef CB_STORE_BACKEND_H
#define CB_STORE_BACKEND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

typedef struct store_be store_be;       /* a backend instance */
typedef struct store_tx store_tx;       /* one transaction on one connection */
typedef struct store_pic_w store_pic_w; /* a picture being written, in pieces */
typedef struct store_pic_r store_pic_r; /* a picture being read, in pieces */
typedef struct store_scope store_scope; /* a scope of deferred writes (store.h) */

/* Outcomes beyond store.h's, internal to src/store (never returned by a
 * store.h function). */
#define STORE_NOMATCH ((store_err)100) /* a conditional write matched no row */
#define STORE_RETRY ((store_err)101)   /* serialization failure / deadlock: run the recipe again */

/* Times store_run runs a recipe that keeps meeting STORE_RETRY; then
 * STORE_UNAVAILABLE (the client may try again). */
#define STORE_RUN_TRIES 3

/* One piece of picture bytes: one sqlite3_blob_write, one PG chunk row. */
#define STORE_PIECE (256 * 1024)

typedef enum {
    STORE_TX_READ1,     /* one statement, no snapshot kept (SQLite autocommit; PG implicit) */
    STORE_TX_READ,      /* several statements, one snapshot (SQLite BEGIN; PG REPEATABLE READ
                           READ ONLY) */
    STORE_TX_WRITE,     /* SQLite BEGIN IMMEDIATE (one writer); PG READ COMMITTED */
    STORE_TX_TRY_WRITE, /* WRITE, or STORE_UNAVAILABLE at once if it would wait (touch flush) */
} store_tx_mode;

/* How a read locks the rows it returns, until the transaction ends. */
typedef enum { STORE_ROW_PLAIN, STORE_ROW_SHARE, STORE_ROW_UPDATE } store_row_lock;

/* Transaction-scoped named locks, for what no row can lock (PG:
 * pg_advisory_xact_lock(what, key); SQLite: its single writer holds them
 * all). Taken in a WRITE transaction only. */
typedef enum {
    STORE_XLOCK_ENTITY_IDS,    /* key: the model_kind whose next id is chosen */
    STORE_XLOCK_VARIANT_CACHE, /* key: 0; the unpinned variants' total and eviction */
} store_xlock;

/* The part of a transaction every backend has; a backend embeds it in its
 * own transaction state and hands out its address. */
struct store_tx {
    store_be *be;
    store_tx_mode mode;
};

/* An entity row with its links. */
typedef struct {
    model_entity_t e;      /* fields, version, updated_ms */
    int32_t image_blob_id; /* 0: none */
    int32_t thumb_blob_id; /* products only; 0: none */
} store_ent_row;

/* A BLOB record as stored; who wrote it by user id. */
typedef struct {
    model_blob b;                   /* created_by/updated_by left NULL */
    int32_t created_by, updated_by; /* user ids (0: the server) */
    model_user *created, *updated;  /* filled when the backend joined them (PG); else NULL */
    int64_t unlinked_ms;            /* INT64_MIN while linked */
} store_blob_row;

/* An entity's image as image_read gives it, all of one snapshot. */
typedef struct {
    store_ent_row ent;  /* its links (no field values) */
    store_blob_row rec; /* the record ent.image_blob_id names (as blob_read with an arena);
                           rec.b.blob_id 0: none (no link, or the record is missing) */
    bool has_bytes;     /* the stored bytes came (asked, at most one piece, present) */
    void *bytes;        /* then: len of them, malloc'd (the caller frees them) */
    size_t len;
} store_image_row;

/* What a content write sets on the record. */
typedef struct {
    const char *mime;
    int64_t size, original_size;
    bool zipped, encrypted;
} store_pic_meta;

/* A file of a batch task (schema v10: batch_file) with its record's sizes. */
typedef enum { STORE_FILE_OUTPUT = 1, STORE_FILE_INPUT = 2 } store_file_kind;
typedef struct {
    int32_t blob_id;
    int64_t task; /* 0: bound to none (an input not taken yet) */
    int kind;     /* store_file_kind */
    int part;     /* an output's parts: 0, 1, ... */
    bool done;    /* its last piece is written: readable */
    int64_t size, original_size; /* the record's BlobSize, OriginalSize */
    bool zipped, encrypted;
    int64_t version; /* the record's bytes version */
} store_file_row;

/* A use of variant id at ms, batched (store_variant.c). */
typedef struct {
    int64_t id, ms;
} store_touch;

/* ---- copying a data set (store_copy.c, `crmblob migrate`) ----
 * A copy moves the tables below row by row, raw: every column as stored
 * (ids, versions, dates, NULLs), no rule applied. A table's columns have
 * the same names and kinds on every backend; store_copy_def says which
 * (store_copy.c, from the model's descriptors), so each backend generates
 * its statements from one list. Variants are not copied: they are a cache,
 * made again on use. */
typedef enum {
    STORE_COPY_USERS,
    STORE_COPY_CRED,
    STORE_COPY_APP,
    STORE_COPY_META,
    STORE_COPY_BLOB,
    STORE_COPY_LIBRARY, /* the project image library (schema v8) */
    STORE_COPY_ENTITY, /* + model_kind: one table per entity kind */
    STORE_COPY_TABLES = STORE_COPY_ENTITY + MODEL_KIND_COUNT
} store_copy_table;

typedef enum { STORE_COL_INT, STORE_COL_TEXT, STORE_COL_BYTES } store_col_kind;

#define STORE_COPY_MAXCOLS 16

/* One column's value: INT in i; TEXT (NUL-terminated) and BYTES in p, n. */
typedef struct {
    bool null;
    int64_t i;
    const void *p;
    size_t n;
} store_copy_val;

typedef struct {
    store_copy_val v[STORE_COPY_MAXCOLS];
} store_copy_row;

typedef struct {
    const char *name; /* the table's name on every backend */
    int ncols;        /* the first is the key: rows are walked in its order */
    const char *col[STORE_COPY_MAXCOLS];
    store_col_kind kind[STORE_COPY_MAXCOLS];
    bool seq; /* its ids come from a sequence (ids_high, ids_settle apply) */
    /* The rows a copy takes: an SQL condition on the table's row, the same
     * on every backend (the BLOB table: not the files of batch tasks, which
     * go with their tasks, never copied); NULL: every row. copy_count and
     * copy_next apply it. */
    const char *only;
} store_copy_def;

/* The definition of table t (store_copy.c); valid for the process's life. */
const store_copy_def *store_copy_def_of(store_copy_table t);

struct store_be_ops {
    /* ---- life, health, identity ---- */
    void (*close)(store_be *b);
    store_err (*ping)(store_be *b, char *why, size_t cap);
    void (*describe)(store_be *b, char *buf, size_t cap); /* for logs: no password */
    const char *(*spool_hint)(store_be *b); /* default spool dir (SQLite: the db's); NULL: none */
    store_err (*hold)(store_be *b, store_hold_mode h); /* without waiting; held until close */

    /* ---- transactions ---- */
    /* sc: the scope the transaction belongs to (its reads see its deferred
     * writes); NULL: the calling thread's, until scopes are handles. */
    store_err (*begin)(store_be *b, store_scope *sc, store_tx_mode m, store_tx **out);
    /* COMMIT when rc is STORE_OK, else ROLLBACK; the call's final result
     * (a failed COMMIT, a failed flush). tx is gone afterwards. */
    store_err (*end)(store_tx *tx, store_err rc);
    store_err (*xlock)(store_tx *tx, store_xlock what, int64_t key);
    /* After a scope ended with deferred writes: STORE_OK or their error now,
     * or STORE_PENDING and fn(ctx, rc) later, once. NULL: never defers. */
    store_err (*scope_wait)(store_scope *sc, void (*fn)(void *ctx, store_err rc), void *ctx);

    /* ---- change notification ---- */
    _Atomic uint64_t *(*counts)(store_be *b);              /* shared counts, or NULL */
    bool (*counts_check)(store_be *b);                     /* file replaced/rewound: true = moved */
    /* The users change count as this transaction sees users (PG: the
     * counter row; SQLite: the shared count); ABSENT: none to go by (no
     * counts, or users are being written in this transaction or its group):
     * nothing read of users may then be kept for later */
    store_err (*users_stamp)(store_tx *tx, uint64_t *out);
    store_err (*users_bump)(store_tx *tx); /* PG: +1 in the writer's tx; NULL on SQLite */

    /* ---- users ----
     * The recipes are store_account.c's. A name is unique case-insensitively:
     * a taken one is CONFLICT. A backend without users_bump (SQLite) marks a
     * transaction that calls user_insert or user_set, even when the
     * statement then fails, and moves the shared USERS count when it ends. */
    /* u's fields as given (no NULL strings); *id from the rowid/sequence */
    store_err (*user_insert)(store_tx *tx, const model_user *u, int64_t created, int32_t *id);
    /* by id, or by name (case-insensitively) when name != NULL; ABSENT */
    store_err (*user_read)(store_tx *tx, arena_t *a, int32_t id, const char *name, model_user *out);
    /* ordered by id; *out always an arena array (empty on failure) */
    store_err (*user_list)(store_tx *tx, arena_t *a, model_user **out, size_t *n);
    store_err (*user_count)(store_tx *tx, int64_t *n);
    /* one UPDATE by name; pw_hash NULL: kept; disabled -1: kept; NOMATCH
     * when no such user */
    store_err (*user_set)(store_tx *tx, const char *name, const char *pw_hash, int disabled);

    /* ---- credentials, partner apps, metadata ----
     * Reads join the credential's user for user_name. Hashes are
     * STORE_HASH_BYTES; an all-zero xsrf_hash and pair_id 0 are stored as
     * none (NULL) and read back as zero. */
    /* c as given (label not NULL); INVALID: c->user_id names no user */
    store_err (*cred_insert)(store_tx *tx, const store_cred *c, int64_t created, int64_t *id);
    /* by kind and hash, revoked and expired ones too; ABSENT */
    store_err (*cred_find)(store_tx *tx, arena_t *a, store_cred_kind k,
                           const unsigned char hash[STORE_HASH_BYTES], store_cred *out);
    /* not revoked and expires_ms > now, ordered by id */
    store_err (*cred_list)(store_tx *tx, arena_t *a, store_cred_kind k, int64_t now,
                           store_cred **out, size_t *n);
    /* revoked = 1 WHERE kind AND id (a revoked one matches too); NOMATCH */
    store_err (*cred_revoke)(store_tx *tx, store_cred_kind k, int64_t id);
    /* revokes what was paired with id, either way round; 0 rows is OK */
    store_err (*cred_revoke_pair)(store_tx *tx, int64_t id);
    /* every credential of the user; 0 rows is OK */
    store_err (*cred_revoke_user)(store_tx *tx, int32_t user_id);
    /* deletes the revoked ones and those with expires_ms < now */
    store_err (*cred_purge)(store_tx *tx, int64_t now);
    /* CONFLICT: the name (case-insensitively) or the hash is taken */
    store_err (*app_insert)(store_tx *tx, const store_app *ap, int64_t created, int64_t *id);
    /* by hash, revoked ones too; ABSENT */
    store_err (*app_find)(store_tx *tx, arena_t *a, const unsigned char hash[STORE_HASH_BYTES],
                          store_app *out);
    /* ordered by id */
    store_err (*app_list)(store_tx *tx, arena_t *a, store_app **out, size_t *n);
    /* revoked = 1 WHERE name (case-insensitively); NOMATCH */
    store_err (*app_revoke)(store_tx *tx, const char *name);
    store_err (*meta_get)(store_tx *tx, arena_t *a, const char *name, void **v, size_t *n);
    store_err (*meta_put)(store_tx *tx, const char *name, const void *v, size_t n); /* upsert */

    /* ---- entities ---- */
    /* Entity (k, id) with its links; a == NULL: its string fields are not
     * read (a lock, an existence check). l SHARE/UPDATE locks the row until
     * the transaction ends (PG FOR SHARE / FOR UPDATE; SQLite: a plain
     * read, its writer holds the database). ABSENT */
    store_err (*ent_read)(store_tx *tx, arena_t *a, model_kind k, int32_t id, store_row_lock l,
                          store_ent_row *out);
    /* max(id) + 1, once the top id is taken the lowest free one; ABSENT:
     * every id is taken. Locks nothing: the caller holds
     * xlock(STORE_XLOCK_ENTITY_IDS, k) */
    store_err (*ent_next_id)(store_tx *tx, model_kind k, int32_t *id);
    /* INSERT with version 1, updated_ms now, RETURNING version, updated_ms;
     * CONFLICT: id taken; INVALID: a reference names nothing */
    store_err (*ent_insert)(store_tx *tx, const model_entity_t *e, int64_t now, int64_t *version,
                            int64_t *updated_ms);
    /* UPDATE the fields, version + 1, updated_ms now WHERE id = e->id AND
     * (expect = STORE_ANY OR version = expect) RETURNING version,
     * updated_ms; NOMATCH: no such row, or not at that version; INVALID: a
     * reference names nothing */
    store_err (*ent_update)(store_tx *tx, const model_entity_t *e, int64_t expect, int64_t now,
                            int64_t *version, int64_t *updated_ms);
    /* DELETE WHERE id = ? AND (expect = STORE_ANY OR version = expect)
     * RETURNING its links, from the very row deleted (gone: kind, id,
     * image_blob_id, thumb_blob_id only); NOMATCH. The records stay */
    store_err (*ent_delete)(store_tx *tx, model_kind k, int32_t id, int64_t expect,
                            store_ent_row *gone);
    /* image_blob_id := blob_id (0: none); NOMATCH: no such entity;
     * CONFLICT: another entity of kind k has that image; INVALID: no such
     * record. unlinked_ms is the caller's (blob_claim, blob_unlink) */
    store_err (*ent_set_image)(store_tx *tx, model_kind k, int32_t id, int32_t blob_id);
    /* a product's thumb_blob_id := blob_id (0: none); NOMATCH: no such product */
    store_err (*ent_set_thumb)(store_tx *tx, int32_t product_id, int32_t blob_id);

    /* Entity (k, id)'s links, the image record they name and, when
     * with_bytes and that record's stored size is at most STORE_PIECE, its
     * stored bytes: one snapshot, so one request needs no BEGIN/COMMIT
     * (PG: one statement, fit for STORE_TX_READ1; SQLite: in READ1 a
     * deferred transaction of its own for the call). ABSENT: no such
     * entity. Locks nothing; decides nothing: the size test only says
     * which bytes come along (a larger picture's are the recipe's to read
     * in a READ transaction, its record tells it so). */
    store_err (*image_read)(store_tx *tx, arena_t *a, model_kind k, int32_t id, bool with_bytes,
                            store_image_row *out);

    /* Up to limit entities of q->kind as store_entity_list orders them
     * (keys as given: the recipe adds the id), the first q->skip left out;
     * with q->prefix (lowercase, not empty), those whose name field is >=
     * it and < upper, ASCII case-insensitively (SQLite NOCASE; PG lower()
     * in the "C" collation), served by the list indexes (schema v7). Each
     * with its image record's version. One statement; rows: limit of them. */
    store_err (*ent_list)(store_tx *tx, arena_t *a, const store_list_query *q, const char *upper,
                          int limit, store_list_item *rows, int *n);

    /* ---- BLOB records ---- */
    /* l as in ent_read; a == NULL: its strings and users are not read
     * (a lock, a check of versions); ABSENT */
    store_err (*blob_read)(store_tx *tx, arena_t *a, int32_t id, store_row_lock l,
                           store_blob_row *out);
    /* a record with no bytes (version 0, info_version 0) and empty client
     * fields but ct, made by user at now; unlinked since unlinked_ms, or
     * linked (INT64_MIN: the caller links it in this transaction); id from
     * the sequence, never reused. INTERNAL: past INT32_MAX */
    store_err (*blob_insert)(store_tx *tx, const char *ct, int32_t user, int64_t now,
                             int64_t unlinked_ms, int32_t *id);
    /* client fields (NULL members kept), UpdatedBy/Date, info_version + 1
     * WHERE id = ? AND (expect_info = STORE_ANY OR info_version =
     * expect_info) RETURNING the record (SQLite: the UPDATE, then a read
     * of the row, cheaper there than RETURNING; its writer holds the
     * database between the two); NOMATCH */
    store_err (*blob_set_info)(store_tx *tx, arena_t *a, int32_t id, const model_blob_edit *ed,
                               int32_t user, int64_t now, int64_t expect_info, store_blob_row *out);
    /* system fields, UpdatedBy/Date, version + 1, info_version + 1 WHERE
     * id = ? AND (expect_version = STORE_ANY OR version = expect_version)
     * RETURNING the record (SQLite as blob_set_info); NOMATCH. The bytes
     * are the caller's */
    store_err (*blob_set_content)(store_tx *tx, arena_t *a, int32_t id, const store_pic_meta *m,
                                  int32_t user, int64_t now, int64_t expect_version,
                                  store_blob_row *out);
    /* rekey: stored size and flags, info_version + 1, version kept */
    store_err (*blob_set_stored)(store_tx *tx, int32_t id, int64_t size, bool z, bool e);
    /* SET unlinked_ms = NULL WHERE id = ? AND unlinked_ms IS NOT NULL: the
     * test-and-set of linking (unlinked <=> unlinked_ms set); NOMATCH: no
     * such record, or linked already. PG: a second claimant waits on the
     * row lock and then sees the first one's claim */
    store_err (*blob_claim)(store_tx *tx, int32_t id);
    /* SET unlinked_ms = since; NOMATCH: no such record */
    store_err (*blob_unlink)(store_tx *tx, int32_t id, int64_t since);
    /* links to it become NULL; bytes and variants go by cascade; no such
     * record: nothing done (STORE_OK) */
    store_err (*blob_delete)(store_tx *tx, int32_t id);
    /* DELETE the records with unlinked_ms < cutoff that nothing links;
     * *n of them (not their cascades) */
    store_err (*blob_sweep)(store_tx *tx, int64_t cutoff, int64_t *n);
    /* rewrite walk: the next record with bytes after `after`, a task's file
     * (batch_file) left out; ABSENT past the end */
    store_err (*blob_next_stored)(store_tx *tx, int32_t after, int32_t *id);

    /* ---- the project image library (schema v8: project_library) ---- */
    /* INSERT its row for record blob_id (linked by the caller in this
     * transaction), added at now; a record's row goes with it by cascade */
    store_err (*lib_add)(store_tx *tx, int32_t blob_id, int64_t now);
    /* the next record of the library after `after`, by id; ABSENT past the end */
    store_err (*lib_next)(store_tx *tx, int32_t after, int32_t *id);

    /* ---- the files of batch tasks (schema v10: batch_file; store_file.c) ----
     * A file's stored bytes are pieces (blob_id, n) of at most STORE_PIECE
     * (PG: blob_piece, as pictures; SQLite: its own blob_piece table, as
     * blob_data could not hold INT32_MAX bytes), each put and got by one
     * statement, so a file is written and read over many transactions. */
    /* INSERT the file row of record blob_id (task 0: NULL), not done */
    store_err (*file_insert)(store_tx *tx, int32_t blob_id, int64_t task, int kind, int part);
    /* the file row of record blob_id with its record's sizes; ABSENT: none */
    store_err (*file_read)(store_tx *tx, int32_t blob_id, store_file_row *out);
    /* the files of task of kind, by part, up to max (*n of them) */
    store_err (*file_list)(store_tx *tx, int64_t task, int kind, store_file_row *rows, int max,
                           int *n);
    /* done := 1 WHERE blob_id; NOMATCH */
    store_err (*file_done)(store_tx *tx, int32_t blob_id);
    /* task := task WHERE blob_id AND no task AND kind input AND done; NOMATCH */
    store_err (*file_bind)(store_tx *tx, int32_t blob_id, int64_t task);
    /* task := NULL, done := 0 WHERE blob_id: a file being deleted (its
     * pieces go in short transactions: a large value's delete is slow on
     * SQLite, which walks every overflow page); NOMATCH */
    store_err (*file_release)(store_tx *tx, int32_t blob_id);
    /* up to max files whose record is unlinked since before cutoff */
    store_err (*file_stale)(store_tx *tx, int64_t cutoff, int32_t *ids, int max, int *n);
    /* file_release WHERE blob_id AND its record is still unlinked since
     * before cutoff (the sweep's go: a task binding the input links it, so
     * one bound since the stale list is left alone); NOMATCH */
    store_err (*file_release_stale)(store_tx *tx, int32_t blob_id, int64_t cutoff);
    /* DELETE up to max pieces of record blob_id (the first ones); *n of them */
    store_err (*piece_drop)(store_tx *tx, int32_t blob_id, int max, int64_t *n);
    /* INSERT piece n of record blob_id's bytes (n <= STORE_PIECE of them);
     * INVALID: no such record */
    store_err (*piece_put)(store_tx *tx, int32_t blob_id, int64_t n, const void *p, size_t len);
    /* piece n into buf (cap >= STORE_PIECE), *len its bytes; ABSENT: none */
    store_err (*piece_get)(store_tx *tx, int32_t blob_id, int64_t n, void *buf, size_t cap,
                           size_t *len);

    /* ---- picture bytes (one BLOB's stored bytes; never decoded here) ---- */
    store_err (*pic_write_open)(store_tx *tx, int32_t blob_id, int64_t size, store_pic_w **out);
    store_err (*pic_write)(store_pic_w *w, const void *p, size_t n); /* in order; n <= PIECE */
    store_err (*pic_write_close)(store_pic_w *w, store_err rc);
    /* ABSENT: the record holds no bytes */
    store_err (*pic_read_open)(store_tx *tx, int32_t blob_id, int64_t *size, store_pic_r **out);
    store_err (*pic_read)(store_pic_r *r, int64_t off, void *buf, size_t n); /* n <= PIECE */
    void (*pic_read_close)(store_pic_r *r);

    /* ---- variants (small: whole values) ---- */
    /* Variant (blob_id, key) of `version` while that is still the BLOB's
     * current version: meta (strings from a), *bytes malloc'd (the caller
     * frees them; NULL on failure), *vid its id for var_touch. ABSENT: no
     * such variant, or the BLOB's bytes are of another version. Locks
     * nothing. */
    store_err (*var_read)(store_tx *tx, arena_t *a, int32_t blob_id, int64_t version,
                          const char *key, store_variant_meta *m, void **bytes, size_t *len,
                          int64_t *vid);
    /* INSERT or replace variant (blob_id, key) with version, meta, bytes,
     * pinned, last used `now`; *vid its id (RETURNING). Checks nothing of
     * the BLOB's version: the recipe holds blob_read(SHARE) of it. The
     * totals follow (SQLite: triggers). */
    store_err (*var_upsert)(store_tx *tx, int32_t blob_id, int64_t version, const char *key,
                            const store_variant_meta *m, const void *bytes, size_t len, bool pinned,
                            int64_t now, int64_t *vid);
    /* last_used_ms = t[i].ms where it is older, for each of the n uses; a
     * variant gone since matches nothing (no error). */
    store_err (*var_touch)(store_tx *tx, const store_touch *t, int n);
    /* (sum of size, count) of the unpinned variants; ABSENT: the totals
     * row is missing (the recipe calls that corrupt). */
    store_err (*var_totals)(store_tx *tx, int64_t *bytes, int64_t *count);
    /* the least recently used unpinned variant but (not_blob, not_key)
     * (oldest last_used_ms, then lowest id): its id and size; ABSENT */
    store_err (*var_lru)(store_tx *tx, int32_t not_blob, const char *not_key, int64_t *vid,
                         int64_t *size);
    /* deletes variant vid and its bytes; one already gone is no error */
    store_err (*var_delete)(store_tx *tx, int64_t vid);
    /* deletes blob_id's variants whose version <> the BLOB's current one
     * (after a content write, in its transaction) */
    store_err (*var_delete_stale)(store_tx *tx, int32_t blob_id);
    /* rekey walk: the next variant of blob_id after `after` (by id), its
     * stored bytes (in a) and flags; ABSENT past the end */
    store_err (*var_next)(store_tx *tx, arena_t *a, int32_t blob_id, int64_t after, int64_t *vid,
                          void **bytes, size_t *len, bool *z, bool *e);
    /* rekey: replaces variant vid's stored bytes, size and flags (version,
     * meta, last use kept); one gone is no error */
    store_err (*var_set_stored)(store_tx *tx, int64_t vid, const void *bytes, size_t len, bool z,
                                bool e);

    /* ---- copying a data set (store_copy.c) ----
     * Raw rows of the store_copy_table tables, keyed by their first
     * column (an id; meta: its name, ordered bytewise). No rule is applied
     * and nothing is decided: the copy recipe does that. */
    /* count(*) of table t's rows (store_copy_def.only) */
    store_err (*copy_count)(store_tx *tx, store_copy_table t, int64_t *n);
    /* up to max rows of t whose key is above after's (NULL: from the
     * first), in key order, their values in a; *n < max: the last ones */
    store_err (*copy_next)(store_tx *tx, store_copy_table t, const store_copy_val *after,
                           arena_t *a, store_copy_row *rows, int max, int *n);
    /* inserts the n rows as they are, ids included; CONFLICT: a key is
     * taken; INVALID: a reference names no row */
    store_err (*copy_put)(store_tx *tx, store_copy_table t, const store_copy_row *rows, int n);
    /* deletes every row of every store_copy_table table and every variant
     * (WRITE transaction; the variants' totals follow) */
    store_err (*copy_clear)(store_tx *tx);
    /* the highest id a seq table ever gave (a deleted one's too, where the
     * backend keeps it: SQLite's AUTOINCREMENT tables, PG's sequences),
     * else its max(id); 0: none */
    store_err (*ids_high)(store_tx *tx, store_copy_table t, int64_t *hw);
    /* the next id seq table t gives is above both hw and its max(id) (PG:
     * setval; SQLite: sqlite_sequence of the AUTOINCREMENT tables, nothing
     * for the others, whose next id is max(id) + 1 anyway) */
    store_err (*ids_settle)(store_tx *tx, store_copy_table t, int64_t hw);

    /* ---- backup and check (store_check.c: `crmblob backup`, `check`) ---- */
    /* The whole database as tx (a READ transaction) sees it, copied page
     * by page into a new SQLite file at path, in steps (a server goes on
     * writing meanwhile), with fn(ctx, pages done, pages in all) after
     * each; the copy is then quick_check'ed and flushed to disk. NULL: the
     * backend has no such copy (PostgreSQL: rows are copied instead). */
    store_err (*backup_to)(store_tx *tx, const char *path,
                           void (*fn)(void *ctx, int64_t done, int64_t total), void *ctx);
    /* The database's own check of what it stores, on a READ transaction:
     * each finding goes to say(ctx, problem, line) -- problem true for
     * damage, false for a note on what could not be checked. STORE_OK
     * when it ran (findings or not); an error when it could not run. */
    store_err (*integrity)(store_tx *tx, bool quick,
                           void (*say)(void *ctx, bool problem, const char *line), void *ctx);
    /* batch tasks (store_task.c's recipes; store.h) */
    store_err (*task_insert)(store_tx *tx, const store_task *t, int64_t *id);
    store_err (*task_read)(store_tx *tx, arena_t *a, int64_t id, store_task *out);
    store_err (*task_list)(store_tx *tx, arena_t *a, const store_task_query *q, store_task **out,
                           size_t *n);
    /* the oldest New task (PG: FOR UPDATE SKIP LOCKED); ABSENT: none */
    store_err (*task_next_new)(store_tx *tx, int64_t *id);
    /* WHERE id AND state New: Started by server; NOMATCH: taken */
    store_err (*task_claim)(store_tx *tx, int64_t id, const char *server, int64_t now,
                            int64_t lease);
    /* WHERE id AND server AND state Started, RETURNING stop; NOMATCH */
    store_err (*task_beat)(store_tx *tx, int64_t id, const char *server, int64_t lease,
                           int percent, const char *progress, bool *stop);
    /* WHERE id AND server AND state Started; NOMATCH */
    store_err (*task_finish)(store_tx *tx, const store_task *t, const char *server, int64_t now);
    /* WHERE id AND state New: Failed with result; NOMATCH */
    store_err (*task_fail_new)(store_tx *tx, int64_t id, const char *result, int64_t now);
    /* stop := 1 WHERE id; NOMATCH */
    store_err (*task_set_stop)(store_tx *tx, int64_t id);
    store_err (*task_delete)(store_tx *tx, int64_t id); /* NOMATCH */
    /* Started AND lease < now: Failed with result; *n rows */
    store_err (*task_reap)(store_tx *tx, int64_t now, const char *result, int64_t *n);
    store_err (*task_expired)(store_tx *tx, arena_t *a, int64_t cutoff, int max, int64_t **ids,
                              size_t *n);
    /* description, params := the given WHERE id AND state, description
     * and params are was's; NOMATCH */
    store_err (*task_update)(store_tx *tx, const store_task *was, const char *description,
                             const char *params);
    /* Up to limit rows of q (keys ending with the id, as store_task_page
     * normalizes them) into rows; store_task_column names the columns. */
    store_err (*task_page)(store_tx *tx, arena_t *a, const store_task_page_query *q, int limit,
                           store_task *rows, int *n);
};

struct store_be {
    const struct store_be_ops *ops;
    /* writes may be deferred (durable mode's group commit): scope_wait
     * then answers for them; set by the backend's open */
    bool defers;
};

/* A recipe: the body of one transaction. It returns STORE_OK to commit,
 * anything else to roll back (STORE_RETRY: to be run again). */
typedef store_err (*store_recipe)(store_tx *tx, void *ctx);

/* Runs fn in a transaction of mode m on s's backend: begin, fn, end
 * (COMMIT on STORE_OK). A run that meets STORE_RETRY (from begin, fn or
 * end) is rolled back and run again, up to STORE_RUN_TRIES times in all;
 * then STORE_UNAVAILABLE. fn may run more than once, so it must not keep
 * anything of a failed run. Never answers NOMATCH or RETRY. */
store_err store_run(store_t *s, store_tx_mode m, store_recipe fn, void *ctx);

/* The PostgreSQL backend (store_pg.c) on conninfo: a pool of o->pool_size
 * connections (0: 16), the schema migrated (created, or refused when newer
 * than this binary). Closed by its ops' close. store_open dispatches a
 * PostgreSQL `where` to it through crmblob-pg.so (store_pgmod.h); its
 * tests link it and drive it through its ops. */
store_err store_pg_open(const char *conninfo, const store_options *o, store_be **out);

/* The SQLite backend (store_sqlite.c) on the database file at `path`
 * (its directory made when missing), creating and migrating the schema. */
store_err store_sqlite_open(const char *path, const store_options *o, store_be **out);

/* Removes the files a SQLite store keeps beside its closed database at
 * path (the change counts, the lock file); with `database`, the database
 * and its journals too (a copy cut short). */
void store_sqlite_remove(const char *path, bool database);
/* Does a process hold the SQLite database at path (store_hold: a server,
 * a rekey, a copy)? Asked without waiting. */
bool store_sqlite_in_use(const char *path);

/* The column of task field f (store_task.c): one name on every backend. */
const char *store_task_column(store_task_field f);

#endif
