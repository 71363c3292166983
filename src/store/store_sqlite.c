/*
 * store_sqlite.c — the embedded SQLite backend of store.h.
 *
 * Layout: a fixed pool of connections, each with every statement prepared
 * once at open; a call borrows one connection, runs one transaction on it
 * and hands it back. Writes take BEGIN IMMEDIATE under `write_mu`, so the
 * writers of this process queue on a mutex instead of polling SQLite's busy
 * handler (which still covers other processes, for up to BUSY_TIMEOUT_MS).
 * Reads that need two statements to agree use a deferred BEGIN (one WAL
 * snapshot); single-statement reads run in autocommit.
 *
 * Schema: users; cred (tickets, access tokens and sessions, as hashes of
 * their secrets; a login's session names its ticket in pair_id) and app
 * (partner applications); one table per entity
 * kind, generated from the model descriptors (model_entity()) like every
 * entity statement here; blob (the BLOB records, AUTOINCREMENT so ids are
 * never reused) and blob_data (the bytes, apart so that record reads stay
 * small). A blob row is linked (some entity's image_blob_id, or a product's
 * thumb_blob_id, names it) or unlinked (made by the BLOB agent, or detached
 * by store_image_link): blob.unlinked_ms says since when, NULL while
 * linked, so that store_blob_sweep finds the old ones through an index.
 * variant (and variant_data, their bytes, apart for the same
 * reason) holds the scaled/converted pictures of a BLOB's current bytes;
 * variant_total is its one-row running total of unpinned bytes and
 * rows, kept by triggers so that every path that adds, resizes, pins or
 * deletes a variant (cascades included) keeps it exact; meta holds small
 * named values. PRAGMA user_version counts the applied entries of
 * `migrations`.
 *
 * Invariants:
 *  - a connection outside tx_begin/tx_end has no open transaction and no
 *    statement in progress;
 *  - entity.image_blob_id is NULL or names that entity's own blob row
 *    (unique index); deleting a blob row clears it (ON DELETE SET NULL) and
 *    its blob_data row (ON DELETE CASCADE);
 *  - product.thumb_blob_id is NULL or names that product's own thumbnail
 *    row (unique index, ON DELETE SET NULL); no blob row is both an image
 *    and a thumbnail, nor the image of two entities of different kinds;
 *  - blob.unlinked_ms is NULL exactly when the row is linked; the sweep
 *    still checks the links before deleting (a row it deletes by mistake
 *    would be a lost picture);
 *  - blob.blob_size == length(blob_data.content), both written in the same
 *    transaction; a record created by PUT ImageInfo has no blob_data row
 *    and blob_size 0;
 *  - a reference field (ref >= 0) holds NULL for "none" (0 in the model), so
 *    its foreign key both rejects missing targets and resets on delete;
 *  - every variant row has the version of its blob row: a write of new bytes
 *    deletes the others in its transaction, deleting a blob row cascades;
 *  - every variant row has exactly one variant_data row, written in the
 *    same transaction and deleted with it by cascade;
 *  - variant_total = (sum(size), count(*)) of the unpinned variant rows.
 *
 * Uses of variants (last_used_ms) are remembered in memory and written in
 * batches (store_variant.c), so that the hot read path takes no write lock.
 */
#include "store/store_int.h"
#include "store/store_backend.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/io.h"
#include "core/log.h"
#include "core/text.h"

#define DEFAULT_POOL_SIZE 8
#define BUSY_TIMEOUT_MS 10000

/* ---- statements --------------------------------------------------------- */

/* Fixed statements, then E_COUNT generated ones per entity kind. */
enum {
    Q_BEGIN,
    Q_BEGIN_IMMEDIATE,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_SAVEPOINT,
    Q_RELEASE,
    Q_ROLLBACK_TO,
    Q_USER_ADD,
    Q_USER_GET,
    Q_USER_BY_NAME,
    Q_USER_LIST,
    Q_USER_COUNT,
    Q_PING,
    Q_USER_SET,
    Q_CRED_ADD,
    Q_CRED_FIND,
    Q_CRED_LIST,
    Q_CRED_REVOKE,
    Q_CRED_REVOKE_PAIR,
    Q_CRED_REVOKE_USER,
    Q_CRED_PURGE,
    Q_APP_ADD,
    Q_APP_FIND,
    Q_APP_LIST,
    Q_APP_REVOKE,
    Q_BLOB_GET,
    Q_BLOB_NEW,
    Q_BLOB_SET_INFO,
    Q_BLOB_SET_CONTENT,
    Q_BLOB_DELETE,
    Q_BLOB_CLAIM,
    Q_BLOB_UNLINK,
    Q_THUMB_SET,
    Q_DATA_PUT,
    Q_VARIANT_GET,
    Q_VARIANT_TOUCH,
    Q_VARIANT_PUT,
    Q_VARIANT_DATA_PUT,
    Q_VARIANT_LRU,
    Q_VARIANT_EVICT,
    Q_VARIANT_TOTAL,
    Q_VARIANT_INVALIDATE,
    Q_META_GET,
    Q_META_PUT,
    Q_REWRITE_NEXT,
    Q_LIB_ADD,
    Q_LIB_NEXT,
    Q_REWRITE_BLOB,
    Q_REWRITE_VNEXT,
    Q_REWRITE_VSET,
    Q_TASK_ADD,
    Q_TASK_GET,
    Q_TASK_LIST,
    Q_TASK_NEXT_NEW,
    Q_TASK_CLAIM,
    Q_TASK_BEAT,
    Q_TASK_FINISH,
    Q_TASK_FAIL_NEW,
    Q_TASK_SET_STOP,
    Q_TASK_DELETE,
    Q_TASK_REAP,
    Q_TASK_EXPIRED,
    Q_TASK_UPDATE,
    Q_FILE_INSERT,
    Q_FILE_READ,
    Q_FILE_LIST,
    Q_FILE_DONE,
    Q_FILE_BIND,
    Q_PIECE_PUT,
    Q_PIECE_GET,
    Q_FILE_RELEASE,
    Q_FILE_STALE,
    Q_FILE_RELEASE_STALE,
    Q_PIECE_DROP,
    Q_FIXED_COUNT
};

enum { E_GET, E_INSERT, E_UPDATE, E_DELETE, E_NEXT_ID, E_SET_BLOB, E_COUNT };

/* Then G_COUNT generated ones that look at every entity kind at once. */
enum { G_BLOB_SWEEP, G_COUNT };

#define Q_COUNT (Q_FIXED_COUNT + MODEL_KIND_COUNT * E_COUNT + G_COUNT)

#define USER_COLS "id, name, full_name, role, disabled, pw_hash, created_ms"
/* c: cred, u: its user (the join fills user_name) */
#define CRED_COLS                                                                                  \
    "c.id, c.kind, c.user_id, u.name, c.created_ms, c.expires_ms, c.revoked, c.hash, "             \
    "c.xsrf_hash, c.label, c.pair_id"
#define CRED_FROM " FROM cred c JOIN users u ON u.id = c.user_id "
#define APP_COLS "id, name, hash, created_ms, revoked"
/* The columns of a task, in store_task's order (read_task). */
#define TASK_COLS                                                                                  \
    "id, name, description, params, associate_id, state, percent, progress, result, response, "   \
    "file_name, created_ms, started_ms, finished_ms, start_count, server, lease_ms, stop, "        \
    "output_blob, (SELECT f.blob_id FROM batch_file f WHERE f.task_id = batch_task.id "             \
    "AND f.kind = 2)"
/* The columns of a batch file with its record's (read_file). */
#define FILE_COLS                                                                                  \
    "f.blob_id, coalesce(f.task_id, 0), f.kind, f.part, f.done, b.blob_size, b.original_size, "  \
    "b.is_zipped, b.is_encrypted, b.version FROM batch_file f JOIN blob b ON b.id = f.blob_id "
/* The positions of USER_COLS, CRED_COLS and APP_COLS, in their orders;
 * the name tables below must agree with both (checked when the
 * statements are prepared, as for BLOB_COLS). */
enum {
    UCOL_ID,
    UCOL_NAME,
    UCOL_FULL_NAME,
    UCOL_ROLE,
    UCOL_DISABLED,
    UCOL_PW_HASH,
    UCOL_CREATED_MS,
    UCOL__COUNT
};
static const char *const user_col_names[UCOL__COUNT] = {
    [UCOL_ID] = "id",
    [UCOL_NAME] = "name",
    [UCOL_FULL_NAME] = "full_name",
    [UCOL_ROLE] = "role",
    [UCOL_DISABLED] = "disabled",
    [UCOL_PW_HASH] = "pw_hash",
    [UCOL_CREATED_MS] = "created_ms",
};
enum {
    CCOL_ID,
    CCOL_KIND,
    CCOL_USER_ID,
    CCOL_USER_NAME,
    CCOL_CREATED_MS,
    CCOL_EXPIRES_MS,
    CCOL_REVOKED,
    CCOL_HASH,
    CCOL_XSRF_HASH,
    CCOL_LABEL,
    CCOL_PAIR_ID,
    CCOL__COUNT
};
static const char *const cred_col_names[CCOL__COUNT] = {
    [CCOL_ID] = "id",
    [CCOL_KIND] = "kind",
    [CCOL_USER_ID] = "user_id",
    [CCOL_USER_NAME] = "name", /* u.name */
    [CCOL_CREATED_MS] = "created_ms",
    [CCOL_EXPIRES_MS] = "expires_ms",
    [CCOL_REVOKED] = "revoked",
    [CCOL_HASH] = "hash",
    [CCOL_XSRF_HASH] = "xsrf_hash",
    [CCOL_LABEL] = "label",
    [CCOL_PAIR_ID] = "pair_id",
};
enum { ACOL_ID, ACOL_NAME, ACOL_HASH, ACOL_CREATED_MS, ACOL_REVOKED, ACOL__COUNT };
static const char *const app_col_names[ACOL__COUNT] = {
    [ACOL_ID] = "id",           [ACOL_NAME] = "name",
    [ACOL_HASH] = "hash",       [ACOL_CREATED_MS] = "created_ms",
    [ACOL_REVOKED] = "revoked",
};
#define BLOB_COLS                                                                                  \
    "id, description, extra_info, mime_type, conceptual_type, blob_size, original_size, "          \
    "is_zipped, is_encrypted, created_ms, updated_ms, created_by, updated_by, version, "           \
    "info_version, unlinked_ms"
/* The positions of BLOB_COLS, in its order; blob_col_names must agree with
 * both (checked when Q_BLOB_GET is prepared), so that a column added to or
 * moved in the list cannot go unnoticed. */
enum {
    BCOL_ID,
    BCOL_DESCRIPTION,
    BCOL_EXTRA_INFO,
    BCOL_MIME_TYPE,
    BCOL_CONCEPTUAL_TYPE,
    BCOL_BLOB_SIZE,
    BCOL_ORIGINAL_SIZE,
    BCOL_IS_ZIPPED,
    BCOL_IS_ENCRYPTED,
    BCOL_CREATED_MS,
    BCOL_UPDATED_MS,
    BCOL_CREATED_BY,
    BCOL_UPDATED_BY,
    BCOL_VERSION,
    BCOL_INFO_VERSION,
    BCOL_UNLINKED_MS,
    BCOL__COUNT
};
static const char *const blob_col_names[BCOL__COUNT] = {
    [BCOL_ID] = "id",
    [BCOL_DESCRIPTION] = "description",
    [BCOL_EXTRA_INFO] = "extra_info",
    [BCOL_MIME_TYPE] = "mime_type",
    [BCOL_CONCEPTUAL_TYPE] = "conceptual_type",
    [BCOL_BLOB_SIZE] = "blob_size",
    [BCOL_ORIGINAL_SIZE] = "original_size",
    [BCOL_IS_ZIPPED] = "is_zipped",
    [BCOL_IS_ENCRYPTED] = "is_encrypted",
    [BCOL_CREATED_MS] = "created_ms",
    [BCOL_UPDATED_MS] = "updated_ms",
    [BCOL_CREATED_BY] = "created_by",
    [BCOL_UPDATED_BY] = "updated_by",
    [BCOL_VERSION] = "version",
    [BCOL_INFO_VERSION] = "info_version",
    [BCOL_UNLINKED_MS] = "unlinked_ms",
};

static const char *const fixed_sql[Q_FIXED_COUNT] = {
    [Q_BEGIN] = "BEGIN",
    [Q_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    /* one writer's part of a group transaction (durable mode) */
    [Q_SAVEPOINT] = "SAVEPOINT w",
    [Q_RELEASE] = "RELEASE w",
    [Q_ROLLBACK_TO] = "ROLLBACK TO w",
    [Q_USER_ADD] = "INSERT INTO users(name, full_name, role, disabled, pw_hash, created_ms) "
                   "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_USER_GET] = "SELECT " USER_COLS " FROM users WHERE id = ?1",
    [Q_USER_BY_NAME] = "SELECT " USER_COLS " FROM users WHERE name = ?1",
    [Q_USER_LIST] = "SELECT " USER_COLS " FROM users ORDER BY id",
    [Q_USER_COUNT] = "SELECT count(*) FROM users",
    [Q_PING] = "PRAGMA schema_version",
    /* NULL ?2 or ?3: that column kept */
    [Q_USER_SET] = "UPDATE users SET pw_hash = coalesce(?2, pw_hash), "
                   "disabled = coalesce(?3, disabled) WHERE name = ?1",
    [Q_CRED_ADD] = "INSERT INTO cred(kind, hash, user_id, created_ms, expires_ms, revoked, "
                   "xsrf_hash, label, pair_id) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [Q_CRED_FIND] = "SELECT " CRED_COLS CRED_FROM "WHERE c.kind = ?1 AND c.hash = ?2",
    [Q_CRED_LIST] = "SELECT " CRED_COLS CRED_FROM
                    "WHERE c.kind = ?1 AND c.revoked = 0 AND c.expires_ms > ?2 ORDER BY c.id",
    [Q_CRED_REVOKE] = "UPDATE cred SET revoked = 1 WHERE kind = ?1 AND id = ?2",
    /* what was issued with ?1 at login, either way round */
    [Q_CRED_REVOKE_PAIR] = "UPDATE cred SET revoked = 1 WHERE pair_id = ?1 "
                           "OR id = (SELECT pair_id FROM cred WHERE id = ?1)",
    [Q_CRED_REVOKE_USER] = "UPDATE cred SET revoked = 1 WHERE user_id = ?1",
    [Q_CRED_PURGE] = "DELETE FROM cred WHERE revoked <> 0 OR expires_ms < ?1",
    [Q_APP_ADD] = "INSERT INTO app(name, hash, created_ms, revoked) VALUES(?1, ?2, ?3, ?4)",
    [Q_APP_FIND] = "SELECT " APP_COLS " FROM app WHERE hash = ?1",
    [Q_APP_LIST] = "SELECT " APP_COLS " FROM app ORDER BY id",
    [Q_APP_REVOKE] = "UPDATE app SET revoked = 1 WHERE name = ?1",
    [Q_BLOB_GET] = "SELECT " BLOB_COLS " FROM blob WHERE id = ?1",
    /* an empty record; the caller then links it (?4 NULL) or leaves it
     * unlinked since ?4, and applies the info or the content */
    [Q_BLOB_NEW] = "INSERT INTO blob(description, extra_info, mime_type, conceptual_type, "
                   "blob_size, original_size, is_zipped, is_encrypted, created_ms, updated_ms, "
                   "created_by, updated_by, version, info_version, unlinked_ms) "
                   "VALUES('', '', '', ?1, 0, 0, 0, 0, ?2, ?2, ?3, ?3, 0, 0, ?4)",
    /* NULL leaves a client field unchanged; ?7: the info_version expected,
     * -1 (STORE_ANY) for any. The record is read back with Q_BLOB_GET:
     * SQLite's RETURNING costs more than that read (1.4 us of 10 for PUT
     * ImageInfo), and the write transaction holds the database between. */
    [Q_BLOB_SET_INFO] = "UPDATE blob SET description = coalesce(?2, description), "
                        "extra_info = coalesce(?3, extra_info), "
                        "conceptual_type = coalesce(?4, conceptual_type), "
                        "updated_ms = ?5, updated_by = ?6, info_version = info_version + 1 "
                        "WHERE id = ?1 AND (?7 = -1 OR info_version = ?7)",
    /* ?9: the version expected, -1 (STORE_ANY) for any; read back as
     * Q_BLOB_SET_INFO's */
    [Q_BLOB_SET_CONTENT] = "UPDATE blob SET mime_type = ?2, blob_size = ?3, original_size = ?4, "
                           "is_zipped = ?5, is_encrypted = ?6, updated_ms = ?7, updated_by = ?8, "
                           "version = version + 1, info_version = info_version + 1 "
                           "WHERE id = ?1 AND (?9 = -1 OR version = ?9)",
    [Q_BLOB_DELETE] = "DELETE FROM blob WHERE id = ?1",
    /* the test-and-set of linking; the record's fields stay: being
     * attached is not a change of the picture */
    [Q_BLOB_CLAIM] = "UPDATE blob SET unlinked_ms = NULL WHERE id = ?1 AND unlinked_ms IS NOT NULL",
    [Q_BLOB_UNLINK] = "UPDATE blob SET unlinked_ms = ?2 WHERE id = ?1",
    /* thumbnails are products' only (migrate_v5): the table is named here */
    [Q_THUMB_SET] = "UPDATE product SET thumb_blob_id = ?2 WHERE id = ?1",
    /* room for the bytes, filled through sqlite3_blob_write */
    [Q_DATA_PUT] = "INSERT INTO blob_data(blob_id, content) VALUES(?1, zeroblob(?2)) "
                   "ON CONFLICT(blob_id) DO UPDATE SET content = excluded.content",
    /* only while the BLOB's bytes are still of that version */
    [Q_VARIANT_GET] = "SELECT v.id, v.mime, v.is_zipped, v.is_encrypted, v.original_size, "
                      "d.bytes FROM variant v JOIN blob b ON b.id = v.blob_id "
                      "JOIN variant_data d ON d.variant_id = v.id "
                      "WHERE v.blob_id = ?1 AND v.key = ?2 AND v.version = ?3 AND b.version = ?3",
    /* a use recorded earlier than one already written changes nothing */
    [Q_VARIANT_TOUCH] = "UPDATE variant SET last_used_ms = ?2 WHERE id = ?1 AND last_used_ms < ?2",
    [Q_VARIANT_PUT] = "INSERT INTO variant(blob_id, version, key, mime, is_zipped, is_encrypted, "
                      "original_size, size, pinned, last_used_ms) "
                      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
                      "ON CONFLICT(blob_id, key) DO UPDATE SET version = excluded.version, "
                      "mime = excluded.mime, is_zipped = excluded.is_zipped, "
                      "is_encrypted = excluded.is_encrypted, "
                      "original_size = excluded.original_size, size = excluded.size, "
                      "pinned = excluded.pinned, last_used_ms = excluded.last_used_ms "
                      "RETURNING id",
    [Q_VARIANT_DATA_PUT] = "INSERT INTO variant_data(variant_id, bytes) VALUES(?1, ?2) "
                           "ON CONFLICT(variant_id) DO UPDATE SET bytes = excluded.bytes",
    /* the least recently used unpinned variant but (?1, ?2), from variant_lru */
    [Q_VARIANT_LRU] = "SELECT id, size FROM variant WHERE pinned = 0 "
                      "AND NOT (blob_id = ?1 AND key = ?2) ORDER BY last_used_ms, id LIMIT 1",
    /* its bytes go by cascade */
    [Q_VARIANT_EVICT] = "DELETE FROM variant WHERE id = ?1",
    [Q_VARIANT_TOTAL] = "SELECT bytes, count FROM variant_total",
    /* after a change of the bytes: the variants of older versions go */
    [Q_VARIANT_INVALIDATE] = "DELETE FROM variant WHERE blob_id = ?1 "
                             "AND version <> (SELECT version FROM blob WHERE id = ?1)",
    /* be_blob_read's, until the BLOB-records section brings its own */
    [Q_META_GET] = "SELECT value FROM meta WHERE name = ?1",
    [Q_META_PUT] = "INSERT INTO meta(name, value) VALUES(?1, ?2) "
                   "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
    /* a task's file is no picture: the rekey leaves it (see store.h) */
    [Q_REWRITE_NEXT] = "SELECT id FROM blob WHERE id > ?1 AND blob_size > 0 AND NOT EXISTS "
                       "(SELECT 1 FROM batch_file f WHERE f.blob_id = blob.id) ORDER BY id LIMIT 1",
    [Q_LIB_ADD] = "INSERT INTO project_library(blob_id, added_ms) VALUES(?1, ?2)",
    [Q_LIB_NEXT] = "SELECT blob_id FROM project_library WHERE blob_id > ?1 ORDER BY blob_id LIMIT 1",
    /* the record changed (sizes, flags), the served bytes did not: version stays */
    [Q_REWRITE_BLOB] = "UPDATE blob SET blob_size = ?2, is_zipped = ?3, is_encrypted = ?4, "
                       "info_version = info_version + 1 WHERE id = ?1",
    [Q_REWRITE_VNEXT] = "SELECT v.id, d.bytes, v.is_zipped, v.is_encrypted FROM variant v "
                        "JOIN variant_data d ON d.variant_id = v.id "
                        "WHERE v.blob_id = ?1 AND v.id > ?2 ORDER BY v.id LIMIT 1",
    /* the bytes are written with Q_VARIANT_DATA_PUT */
    [Q_REWRITE_VSET] = "UPDATE variant SET size = ?2, is_zipped = ?3, is_encrypted = ?4 "
                       "WHERE id = ?1",
    [Q_TASK_ADD] = "INSERT INTO batch_task(name, description, params, associate_id, state, "
                   "created_ms) VALUES(?1, ?2, ?3, ?4, 1, ?5)",
    [Q_TASK_GET] = "SELECT " TASK_COLS " FROM batch_task WHERE id = ?1",
    [Q_TASK_LIST] = "SELECT " TASK_COLS " FROM batch_task WHERE (?1 IS NULL OR name = ?1) "
                    "AND (?2 < 0 OR state = ?2) AND (?3 < 0 OR associate_id = ?3) ORDER BY id",
    [Q_TASK_NEXT_NEW] = "SELECT id FROM batch_task WHERE state = 1 ORDER BY id LIMIT 1",
    [Q_TASK_CLAIM] = "UPDATE batch_task SET state = 3, server = ?2, started_ms = ?3, lease_ms = ?4, "
                     "start_count = start_count + 1, percent = 0, progress = '' "
                     "WHERE id = ?1 AND state = 1",
    [Q_TASK_BEAT] = "UPDATE batch_task SET lease_ms = ?3, percent = ?4, progress = ?5 "
                    "WHERE id = ?1 AND server = ?2 AND state = 3 RETURNING stop",
    [Q_TASK_FINISH] = "UPDATE batch_task SET state = ?3, percent = ?4, progress = ?5, result = ?6, "
                      "response = ?7, file_name = ?8, output_blob = ?9, finished_ms = ?10 "
                      "WHERE id = ?1 AND server = ?2 AND state = 3",
    [Q_TASK_FAIL_NEW] = "UPDATE batch_task SET state = 5, result = ?2, finished_ms = ?3, stop = 1 "
                        "WHERE id = ?1 AND state = 1",
    [Q_TASK_SET_STOP] = "UPDATE batch_task SET stop = 1 WHERE id = ?1",
    [Q_TASK_DELETE] = "DELETE FROM batch_task WHERE id = ?1",
    [Q_TASK_REAP] = "UPDATE batch_task SET state = 5, result = ?2, finished_ms = ?1 "
                    "WHERE state = 3 AND lease_ms < ?1",
    [Q_TASK_EXPIRED] = "SELECT id FROM batch_task WHERE finished_ms IS NOT NULL AND finished_ms < ?1 "
                       "ORDER BY id LIMIT ?2",
    [Q_TASK_UPDATE] = "UPDATE batch_task SET description = ?5, params = ?6 WHERE id = ?1 AND "
                      "state = ?2 AND description = ?3 AND params = ?4",
    [Q_FILE_INSERT] = "INSERT INTO batch_file(blob_id, task_id, kind, part, done) "
                      "VALUES(?1, ?2, ?3, ?4, 0)",
    [Q_FILE_READ] = "SELECT " FILE_COLS "WHERE f.blob_id = ?1",
    [Q_FILE_LIST] = "SELECT " FILE_COLS "WHERE f.task_id = ?1 AND f.kind = ?2 "
                    "ORDER BY f.part LIMIT ?3",
    [Q_FILE_DONE] = "UPDATE batch_file SET done = 1 WHERE blob_id = ?1",
    [Q_FILE_BIND] = "UPDATE batch_file SET task_id = ?2 WHERE blob_id = ?1 AND task_id IS NULL "
                    "AND kind = 2 AND done = 1",
    [Q_PIECE_PUT] = "INSERT INTO blob_piece(blob_id, n, bytes) VALUES(?1, ?2, ?3)",
    [Q_PIECE_GET] = "SELECT bytes FROM blob_piece WHERE blob_id = ?1 AND n = ?2",
    [Q_FILE_RELEASE] = "UPDATE batch_file SET task_id = NULL, done = 0 WHERE blob_id = ?1",
    [Q_FILE_STALE] = "SELECT f.blob_id FROM batch_file f JOIN blob b ON b.id = f.blob_id "
                     "WHERE b.unlinked_ms < ?1 ORDER BY f.blob_id LIMIT ?2",
    [Q_FILE_RELEASE_STALE] = "UPDATE batch_file SET task_id = NULL, done = 0 WHERE blob_id = ?1 "
                             "AND EXISTS (SELECT 1 FROM blob b WHERE b.id = ?1 "
                             "AND b.unlinked_ms < ?2)",
    [Q_PIECE_DROP] = "DELETE FROM blob_piece WHERE id IN (SELECT id FROM blob_piece "
                     "WHERE blob_id = ?1 ORDER BY n LIMIT ?2)",
};

static int q_ent(model_kind k, int e)
{
    assert(k >= 0 && k < MODEL_KIND_COUNT && e >= 0 && e < E_COUNT);
    return Q_FIXED_COUNT + (int)k * E_COUNT + e;
}

static int q_gen(int g)
{
    assert(g >= 0 && g < G_COUNT);
    return Q_FIXED_COUNT + MODEL_KIND_COUNT * E_COUNT + g;
}

/* ---- state -------------------------------------------------------------- */

typedef enum { TX_NONE, TX_READ, TX_WRITE } tx_mode;

struct sq_store;

#define USED_MAX 16

/* store_backend.h's picture handles. A connection has one of each: its
 * transaction has at most one picture open for writing and one for
 * reading at a time (the recipes open, stream and close in turn). */
struct store_pic_w {
    struct conn *c;
    sqlite3_blob *h;      /* NULL for an empty picture */
    int64_t off, size;    /* written so far, and the size announced at open */
    bool open;
};
struct store_pic_r {
    struct conn *c;
    sqlite3_blob *h;
    int64_t size;
    bool open;
};

struct conn {
    struct sq_store *owner;
    sqlite3 *db;
    sqlite3_stmt *q[Q_COUNT];
    sqlite3_stmt *used[USED_MAX]; /* handed out by query() since reset_all */
    int nused;
    struct store_pic_w pw; /* the picture being written in this transaction */
    struct store_pic_r pr; /* the picture being read in this transaction */
    tx_mode mode;         /* of the transaction in progress */
    struct store_tx tx;   /* that transaction as store_backend.h's begin hands it out */
    store_scope *sc;      /* the group's connection: the scope of the part on it */
    struct conn *next;    /* free list link */
};

struct sq_store {
    struct store_be be; /* the narrow interface (store_backend.h): be_sq() */
    /* the database's change counts (store_int.h), mapped from
     * "<path>-changes"; NULL without */
    _Atomic uint64_t *changes;
    arena_t *sql_arena; /* the generated SQL texts */
    const char *sql[Q_COUNT];
    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;
    pthread_mutex_t write_mu; /* held from BEGIN IMMEDIATE to its end */
    struct conn *conns;       /* nconns opened of capacity */
    int nconns, capacity;
    struct conn *idle; /* connections not lent out */
    int nidle;
    struct group *group;     /* writers commit together */
    struct walsync *walsync; /* durable mode: answered writes are on disk */
    /* store_options.metrics: each WAL flush's time, each group COMMIT's
     * writes (NULL: not counted) */
    metrics_family *m_flush, *m_group;
    /* A write transaction in progress (or in the open group) wrote users:
     * set inside it, taken by the COMMIT that ends it. */
    atomic_bool users_written;
    /* "<path>-changes" (see "the change counts"): its name, the descriptor
     * of the file mapped at changes (-1 without), whether its loss was
     * logged; changes_mu serialises the checks */
    char *changes_path;
    int changes_fd;
    bool changes_lost;
    pthread_mutex_t changes_mu;
    /* the counts at the last check: a count found below (the file copied
     * over in place from a backup) has gone back */
    uint64_t changes_seen[STORE_CHANGES__COUNT];
    char *path;  /* the database file, as opened */
    char *dir;   /* its directory: store_spool_hint */
    int hold_fd; /* "<path>.lock" while a store_hold is held; -1 without */
};

#define CHANGES_MAP_BYTES 4096 /* the mapping's length (one page) */

/* The state behind the backend interface's handle. */
static struct sq_store *be_sq(store_be *b)
{
    assert(b != NULL);
    return (struct sq_store *)((char *)b - offsetof(struct sq_store, be));
}

/* ---- errors ------------------------------------------------------------- */

/* Maps a failed SQLite call of c (rc: extended result code) to a store_err. */
static store_err sql_err(struct conn *c, int rc, const char *what)
{
    switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return STORE_CONFLICT;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return STORE_INVALID; /* only client-given references can dangle */
    case SQLITE_TOOBIG:
        return STORE_TOO_LARGE;
    default:
        break;
    }
    if ((rc & 0xff) == SQLITE_FULL) {
        log_warn("sqlite: %s: %s", what, sqlite3_errmsg(c->db));
        return STORE_NO_SPACE;
    }
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
        log_warn("sqlite: %s: database busy: %s", what, sqlite3_errmsg(c->db));
        return STORE_UNAVAILABLE;
    }
    log_error("sqlite: %s: %s (%d)", what, sqlite3_errmsg(c->db), rc);
    return STORE_INTERNAL;
}

/* ---- statement helpers -------------------------------------------------- */

/* Statement `id` of c, reset and unbound, ready to bind. */
static sqlite3_stmt *query(struct conn *c, int id)
{
    assert(id >= 0 && id < Q_COUNT && c->q[id] != NULL);
    sqlite3_stmt *st = c->q[id];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (c->nused < USED_MAX)
        c->used[c->nused] = st;
    c->nused++; /* past USED_MAX: reset_all looks at every statement */
    return st;
}

/* Binding fails only on programming errors (index, misuse): assert. Strings
 * are bound SQLITE_STATIC: they outlive the step that reads them. */
static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    int rc = v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
    assert(rc == SQLITE_OK);
    (void)rc;
}

static void bind_int(sqlite3_stmt *st, int i, int64_t v)
{
    int rc = sqlite3_bind_int64(st, i, v);
    assert(rc == SQLITE_OK);
    (void)rc;
}

/* A reference id: 0 ("none") is bound as NULL. */
static void bind_ref(sqlite3_stmt *st, int i, int64_t v)
{
    int rc = v != 0 ? sqlite3_bind_int64(st, i, v) : sqlite3_bind_null(st, i);
    assert(rc == SQLITE_OK);
    (void)rc;
}

/* A secret's hash; NULL binds SQL NULL. */
static void bind_hash(sqlite3_stmt *st, int i, const unsigned char *h)
{
    int rc =
        h ? sqlite3_bind_blob(st, i, h, STORE_HASH_BYTES, SQLITE_STATIC) : sqlite3_bind_null(st, i);
    assert(rc == SQLITE_OK);
    (void)rc;
}

/* One step: STORE_OK with a row to read, STORE_ABSENT past the last one. */
static store_err step_row(struct conn *c, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return STORE_OK;
    if (rc == SQLITE_DONE)
        return STORE_ABSENT;
    return sql_err(c, rc, sqlite3_sql(st));
}

/* Runs a statement that returns no rows. */
static store_err step_done(struct conn *c, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    assert(rc != SQLITE_ROW);
    return rc == SQLITE_DONE ? STORE_OK : sql_err(c, rc, sqlite3_sql(st));
}

/* Runs a conditional write of a primitive; STORE_NOMATCH when it matched
 * no row (the recipe says what that means). */
static store_err step_match(struct conn *c, sqlite3_stmt *st)
{
    store_err rc = step_done(c, st);
    if (rc == STORE_OK && sqlite3_changes(c->db) == 0)
        rc = STORE_NOMATCH;
    return rc;
}

/* Column i as an arena string, "" for NULL. */
static const char *col_str(arena_t *a, sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return arena_strndup(a, t ? (const char *)t : "", (size_t)sqlite3_column_bytes(st, i));
}

static int32_t col_i32(sqlite3_stmt *st, int i)
{
    return (int32_t)sqlite3_column_int64(st, i);
}

/* Column i as a hash; all zero for NULL (or, defensively, a wrong size). */
static void col_hash(sqlite3_stmt *st, int i, unsigned char out[STORE_HASH_BYTES])
{
    const void *b = sqlite3_column_blob(st, i);
    if (b != NULL && sqlite3_column_bytes(st, i) == STORE_HASH_BYTES)
        memcpy(out, b, STORE_HASH_BYTES);
    else
        memset(out, 0, STORE_HASH_BYTES);
}

/* Makes room for one more element of `size` bytes in the arena array *v of
 * *len used / *cap slots and returns it (zeroed). */
static void *arr_slot(arena_t *a, void **v, size_t size, size_t *len, size_t *cap)
{
    if (*len == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        void *nv = arena_alloc(a, ncap * size);
        if (*len > 0)
            memcpy(nv, *v, *len * size);
        *v = nv;
        *cap = ncap;
    }
    return (char *)*v + (*len)++ * size;
}

/* ---- pool and transactions ---------------------------------------------- */

static struct conn *pool_get(struct sq_store *s)
{
    pthread_mutex_lock(&s->pool_mu);
    while (s->idle == NULL)
        pthread_cond_wait(&s->pool_cv, &s->pool_mu);
    struct conn *c = s->idle;
    s->idle = c->next;
    s->nidle--;
    pthread_mutex_unlock(&s->pool_mu);
    c->next = NULL;
    return c;
}

static void pool_put(struct sq_store *s, struct conn *c)
{
    pthread_mutex_lock(&s->pool_mu);
    c->next = s->idle;
    s->idle = c;
    s->nidle++;
    pthread_cond_signal(&s->pool_cv);
    pthread_mutex_unlock(&s->pool_mu);
}

/* Resets every statement left mid-way, so that no read snapshot stays open:
 * those query() handed out since the last call, or, when there were more
 * than it remembers, all of the connection's (over a hundred). */
static void reset_all(struct conn *c)
{
    if (c->nused <= USED_MAX) {
        for (int i = 0; i < c->nused; i++)
            sqlite3_reset(c->used[i]);
    } else {
        for (sqlite3_stmt *st = sqlite3_next_stmt(c->db, NULL); st;
             st = sqlite3_next_stmt(c->db, st))
            if (sqlite3_stmt_busy(st))
                sqlite3_reset(st);
    }
    c->nused = 0;
}

/* Runs BEGIN/COMMIT/ROLLBACK. */
static store_err exec_q(struct conn *c, int id)
{
    return step_done(c, query(c, id));
}

/* ---- durable mode: group flush of the WAL --------------------------------
 * Every connection runs synchronous=NORMAL: a COMMIT appends its frames to
 * the WAL without waiting for the disk. In durable mode the writers of a
 * COMMIT are answered only after an fdatasync of the WAL that started after
 * the COMMIT ended, and the next group's writes go on while the
 * disk works, instead of waiting behind the write lock as with
 * synchronous=FULL.
 *
 * Why this is as safe as FULL for an answered write: the WAL is only
 * appended to, a frame is valid only with the checksums of every frame
 * before it, and a flush covers the whole file, so once the flush after a
 * COMMIT has ended, that COMMIT survives power loss. Frames leave the WAL
 * only through a checkpoint, which in NORMAL mode syncs the WAL before and
 * the database file after it copies them, and the WAL is reused or removed
 * only after a complete checkpoint.
 *
 * The difference from FULL: other readers may see a write up to one flush
 * before it is on disk (its writers are not answered yet). A failed flush
 * is sticky: every later write is refused (STORE_UNAVAILABLE) until a
 * restart, whose WAL recovery decides what survived. */
struct walsync {
    char path[4096]; /* "<db>-wal" */
    /* Of path. SQLite keeps that file while any connection has the
     * database open (ours stay open until store_close), and resets it by
     * overwriting or truncating, so the descriptor stays right. It is not
     * checked against the path: a stat() on every flush makes the kernel
     * give the next write a fine-grained mtime, and fdatasync then writes
     * the inode too (one more disk write per flush). */
    int fd;
    atomic_int failed;    /* errno of a failed flush: sticky */
    atomic_llong flushes; /* for the log at close */
};

/* Durable mode, after a flush that served several writers: the next flush
 * starts no sooner than this after the last one started, so that under
 * load a flush serves many writers (each costs the disk's time and a CPU's,
 * whatever it carries). A lone writer never waits for it, and the writers
 * a flush served have their answers before the wait, so that their next
 * writes can join the next flush. Measured (PUT ImageInfo, 64 connections,
 * one CPU, mean of 5): 650 us 41.6k writes/s, 800 us 43.1k (p99 2.4-4.0
 * ms), 1 ms 43.0k, 1.6 ms 37.0k; 350 us 36.2k (more flushes: 26 us of CPU
 * per write instead of 22). Before the answers went out ahead of the
 * wait, the best gap was 500 us, at 39.2k: an answered client's next write
 * came too late for the next flush and waited for the one after. */
#define FLUSH_GAP_US 800u

/* Durable mode: puts every COMMIT that has ended on disk. One caller at a
 * time (the group's committer, or the single connection's writer). */
static store_err wal_flush(struct sq_store *s)
{
    struct walsync *w = s->walsync;
    if (atomic_load(&w->failed) != 0)
        return STORE_UNAVAILABLE;
    uint64_t t0 = text_monotonic_us();
    int e = fdatasync(w->fd) == 0 ? 0 : errno;
    atomic_fetch_add(&w->flushes, 1);
    metrics_observe(s->m_flush, 0, text_monotonic_us() - t0);
    if (e == 0)
        return STORE_OK;
    atomic_store(&w->failed, e);
    log_error("store: fdatasync of %s failed: %s; writes are refused until a restart", w->path,
              strerror(e));
    return STORE_UNAVAILABLE;
}

/* After a flush that served several writers, once they have their
 * answers: the next flush starts no sooner than FLUSH_GAP_US after this
 * one started (text_monotonic_us). The answered clients' next writes join
 * the open group meanwhile. */
static void flush_pace(uint64_t started)
{
    uint64_t spent = text_monotonic_us() - started;
    if (spent < FLUSH_GAP_US)
        nanosleep(&(struct timespec){0, (long)(FLUSH_GAP_US - spent) * 1000}, NULL);
}

/* Durable mode after a failed flush: no more writes. */
static bool wal_failed(struct sq_store *s)
{
    return s->walsync != NULL && atomic_load(&s->walsync->failed) != 0;
}

static store_err walsync_create(struct sq_store *s, const char *path)
{
    struct walsync *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return STORE_INTERNAL;
    w->fd = -1;
    int n = snprintf(w->path, sizeof(w->path), "%s-wal", path);
    if (n > 0 && (size_t)n < sizeof(w->path))
        w->fd = open(w->path, O_RDONLY | O_CLOEXEC);
    else
        errno = ENAMETOOLONG;
    if (w->fd < 0)
        log_error("store: durable mode: cannot open %s-wal: %s", path, strerror(errno));
    else if (store_sync_parent(w->path) == STORE_OK) { /* the WAL's name is durable too */
        s->walsync = w;
        return STORE_OK;
    }
    if (w->fd >= 0)
        close(w->fd);
    free(w);
    return STORE_UNAVAILABLE;
}

static void walsync_destroy(struct sq_store *s)
{
    struct walsync *w = s->walsync;
    if (w == NULL)
        return;
    close(w->fd);
    free(w);
    s->walsync = NULL;
}

/* ---- group commit -----------------------------------------------------------
 * Writers that arrive together commit together: they share one connection
 * and one transaction, each runs its part inside a SAVEPOINT (a failing
 * part undoes only itself), and the committer thread COMMITs whatever
 * parts the open transaction holds, then flushes the WAL (wal_flush). A
 * group shares its pages, too: a page that many parts change goes to the
 * WAL once. Parts go on while the disk works, into the next group: the
 * slower the disk, the larger the groups. A writer learns its result only
 * once the COMMIT holding its part has ended and been flushed, so an
 * answered write is kept exactly as without grouping.
 *
 * A writer either waits for that (its thread sleeps on its own condition
 * variable), or, writing through a scope's view (store_scope_open),
 * leaves a record of its part in the scope's arena and returns at once;
 * the committer then counts the scope's parts down and calls its function
 * when the last is on disk. The view's later reads run as parts too, on
 * the group's connection, so they see its uncommitted writes; so do they
 * once a write of the view was refused on a version (STORE_PRECONDITION),
 * which may be an uncommitted one of the group's: the caller's retry reads
 * it, and its answer, resting on it, waits for its COMMIT. The scope
 * comes with the handle each call is given (tx_begin), and rides on the
 * connection (conn.sc) from its part's start to its end.
 *
 * Invariants (under mu): busy while one writer uses c for its part, or
 * the committer for the COMMIT; open while a transaction is open on c;
 * `members` are the parts released into the open transaction; `want`
 * while the committer waits for c (writers then let it go first, so that
 * a steady stream of parts cannot hold a group open for ever).
 *
 * Wake-ups are aimed: a writer waiting for its turn on c is woken alone
 * (turn), a waiting member only when its own COMMIT has ended (its cv).
 * With all of them on one condition variable, every part's end woke every
 * thread, and on one core the switching cost more than the writes. */
struct member {
    store_err rc;
    bool done;
    pthread_cond_t *cv; /* a waiting writer's; NULL for a deferred part */
    store_scope *d;     /* a deferred part's scope */
    struct member *next;
};

struct group {
    pthread_mutex_t mu;
    pthread_cond_t turn; /* c is free for a writer */
    pthread_cond_t work; /* for the committer: a part ended, or stop */
    struct conn *c;      /* the writers' connection, kept out of the pool */
    bool busy, open, want, stopping;
    int waiting; /* writers queued for c */
    struct member *members;
    pthread_t committer;
    int64_t commits, parts; /* for the log at close */
};

/* Something to COMMIT: parts, or a transaction whose parts all failed
 * (it would hold the write lock until the next write). Under mu. */
static bool commit_due(const struct group *g)
{
    return g->open && (g->members != NULL || (!g->busy && g->waiting == 0));
}

/* c is free: lets the committer have it when it waits for it, else the
 * next writer queued, and wakes the committer when there is work. Under
 * mu. */
static void hand_on(struct group *g)
{
    if (g->want) {
        pthread_cond_signal(&g->work);
        return;
    }
    if (g->waiting > 0)
        pthread_cond_signal(&g->turn);
    if (commit_due(g))
        pthread_cond_signal(&g->work);
}

/* Takes the writers' connection (at once or STORE_UNAVAILABLE when `now`)
 * and opens the caller's part, of scope sc (NULL: none). */
static store_err group_begin(struct sq_store *s, store_scope *sc, bool now, struct conn **out)
{
    struct group *g = s->group;
    store_err rc = STORE_OK;
    pthread_mutex_lock(&g->mu);
    if (now && (g->busy || g->want || g->waiting > 0)) {
        pthread_mutex_unlock(&g->mu);
        return STORE_UNAVAILABLE;
    }
    g->waiting++;
    while (g->busy || g->want)
        pthread_cond_wait(&g->turn, &g->mu);
    g->waiting--;
    g->busy = true;
    bool open = g->open;
    pthread_mutex_unlock(&g->mu);
    g->c->mode = TX_WRITE;
    g->c->sc = sc;
    if (!open && (rc = exec_q(g->c, Q_BEGIN_IMMEDIATE)) == STORE_OK)
        open = true;
    if (rc == STORE_OK)
        rc = exec_q(g->c, Q_SAVEPOINT);
    pthread_mutex_lock(&g->mu);
    g->open = open;
    if (rc != STORE_OK) {
        g->busy = false;
        hand_on(g);
    }
    pthread_mutex_unlock(&g->mu);
    *out = rc == STORE_OK ? g->c : NULL;
    return rc;
}

/* Ends the caller's part: keeps it (rc STORE_OK) or undoes it. */
static store_err part_end(struct conn *c, store_err rc)
{
    reset_all(c);
    if (rc == STORE_OK && (rc = exec_q(c, Q_RELEASE)) == STORE_OK)
        return STORE_OK;
    /* some errors (disk full, I/O) have rolled the whole transaction back */
    if (!sqlite3_get_autocommit(c->db) &&
        (exec_q(c, Q_ROLLBACK_TO) != STORE_OK || exec_q(c, Q_RELEASE) != STORE_OK))
        log_error("sqlite: rollback to savepoint failed");
    return rc;
}

/* A write transaction has ended: the change counts move (store_int.h). */
static void changed(struct sq_store *s)
{
    bool users = atomic_exchange(&s->users_written, false);
    if (s->changes == NULL)
        return;
    if (users)
        atomic_fetch_add_explicit(&s->changes[STORE_CHANGES_USERS], 1, memory_order_release);
    atomic_fetch_add_explicit(&s->changes[STORE_CHANGES_ALL], 1, memory_order_release);
}

/* Ends every member's wait with rc. Under mu. Returns the scopes whose
 * last part this was and that wait for it, for scopes_call once mu is
 * released (their functions may take other locks). */
static store_scope *members_end(struct member *m, store_err rc)
{
    store_scope *ready = NULL;
    for (struct member *next; m != NULL; m = next) {
        next = m->next; /* a woken writer's member is gone at once */
        if (m->cv != NULL) {
            m->rc = rc;
            m->done = true;
            pthread_cond_signal(m->cv);
            continue;
        }
        store_scope *d = m->d;
        if (rc != STORE_OK && d->rc == STORE_OK)
            d->rc = rc;
        if (--d->pending == 0 && d->fn != NULL) {
            d->next_ready = ready;
            ready = d;
        }
    }
    return ready;
}

static void scopes_call(store_scope *d)
{
    for (store_scope *next; d != NULL; d = next) {
        next = d->next_ready;
        store_scope_fn fn = d->fn;
        void *ctx = d->ctx;
        store_err rc = d->rc;
        fn(ctx, rc); /* d may be gone after this */
    }
}

/* Ends the caller's part. A waiting writer returns once the COMMIT
 * holding it has ended (and been flushed); in a scope, at once. */
static store_err group_end(struct conn *c, store_err rc)
{
    struct group *g = c->owner->group;
    store_scope *d = c->sc;
    c->sc = NULL;
    pthread_cond_t cv;
    struct member self = {.rc = STORE_OK, .cv = &cv};
    rc = part_end(c, rc);
    if (rc == STORE_PRECONDITION && d != NULL)
        d->behind = true; /* what refused it may not be committed yet */
    struct member *m = rc == STORE_OK && d != NULL ? arena_alloc(d->a, sizeof(*m)) : NULL;
    if (m != NULL) { /* deferred: the record outlives this call */
        *m = (struct member){.d = d};
    } else {
        m = &self;
        pthread_cond_init(&cv, NULL);
    }
    store_scope *ready = NULL;
    pthread_mutex_lock(&g->mu);
    if (g->open && sqlite3_get_autocommit(c->db)) { /* an error ended it */
        g->open = false;
        ready = members_end(g->members, STORE_INTERNAL);
        g->members = NULL;
    }
    if (rc == STORE_OK) {
        m->next = g->members;
        g->members = m;
        g->parts++;
        if (m != &self) {
            d->pending++;
            d->wrote = true;
        }
    }
    g->busy = false;
    hand_on(g);
    while (rc == STORE_OK && m == &self && !self.done)
        pthread_cond_wait(&cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    if (m == &self)
        pthread_cond_destroy(&cv);
    scopes_call(ready);
    return rc == STORE_OK && m == &self ? self.rc : rc;
}

/* The committer's turn: COMMITs the open transaction, flushes the WAL
 * when a member waits for it, and ends the members' waits. Under mu, with
 * c taken (busy); mu is released meanwhile. */
static void group_commit(struct group *g)
{
    struct sq_store *s = g->c->owner;
    struct member *batch = g->members;
    g->members = NULL;
    pthread_mutex_unlock(&g->mu);
    uint64_t writes = 0;
    for (const struct member *m = batch; m != NULL; m = m->next)
        writes++;
    metrics_observe(s->m_group, 0, writes);
    store_err rc = exec_q(g->c, Q_COMMIT);
    if (rc != STORE_OK && !sqlite3_get_autocommit(g->c->db) && exec_q(g->c, Q_ROLLBACK) != STORE_OK)
        log_error("sqlite: rollback failed");
    changed(s);
    pthread_mutex_lock(&g->mu);
    g->open = false;
    g->busy = false;
    g->commits++;
    hand_on(g); /* the next group's parts go on during the flush */
    uint64_t shared_at = 0; /* when a flush for several writers started */
    if (rc == STORE_OK && s->walsync != NULL && batch != NULL) {
        pthread_mutex_unlock(&g->mu);
        if (batch->next != NULL)
            shared_at = text_monotonic_us();
        rc = wal_flush(s);
        pthread_mutex_lock(&g->mu);
    }
    store_scope *ready = members_end(batch, rc);
    pthread_mutex_unlock(&g->mu);
    scopes_call(ready);
    if (shared_at != 0)
        flush_pace(shared_at);
    pthread_mutex_lock(&g->mu);
}

static void *committer_main(void *arg)
{
    struct group *g = arg;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        while (!commit_due(g) && !g->stopping)
            pthread_cond_wait(&g->work, &g->mu);
        if (!commit_due(g))
            break; /* stopping, and nothing open */
        g->want = true;
        while (g->busy)
            pthread_cond_wait(&g->work, &g->mu);
        g->want = false;
        g->busy = true;
        group_commit(g);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

static store_err group_scope_wait(store_scope *d, store_scope_fn fn, void *ctx)
{
    struct group *g = be_sq(d->s->be)->group;
    store_err rc = STORE_PENDING;
    pthread_mutex_lock(&g->mu);
    if (d->pending == 0)
        rc = d->rc;
    else
        d->fn = fn, d->ctx = ctx;
    pthread_mutex_unlock(&g->mu);
    return rc;
}

/* Durable mode: the last connection of the pool becomes the writers'. */
static store_err group_create(struct sq_store *s)
{
    struct group *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return STORE_INTERNAL;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->turn, NULL);
    pthread_cond_init(&g->work, NULL);
    g->c = pool_get(s);
    if (pthread_create(&g->committer, NULL, committer_main, g) != 0) {
        log_error("store: cannot start the committer thread");
        pool_put(s, g->c);
        pthread_cond_destroy(&g->work);
        pthread_cond_destroy(&g->turn);
        pthread_mutex_destroy(&g->mu);
        free(g);
        return STORE_INTERNAL;
    }
    s->group = g;
    s->be.defers = true;
    return STORE_OK;
}

static void group_destroy(struct sq_store *s)
{
    struct group *g = s->group;
    if (g == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    g->stopping = true;
    pthread_cond_signal(&g->work);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->committer, NULL); /* it commits what is open first */
    assert(!g->busy && !g->open && g->members == NULL);
    if (g->commits > 0)
        log_info("store: %lld writes in %lld group commits, %lld WAL flushes", (long long)g->parts,
                 (long long)g->commits,
                 s->walsync ? (long long)atomic_load(&s->walsync->flushes) : 0LL);
    pool_put(s, g->c);
    pthread_cond_destroy(&g->work);
    pthread_cond_destroy(&g->turn);
    pthread_mutex_destroy(&g->mu);
    free(g);
    s->group = NULL;
    s->be.defers = false;
}

/* Ends c's transaction (COMMIT when rc is STORE_OK, else ROLLBACK) and gives c
 * back to the pool. Returns the call's final result. c may be NULL. */
static store_err tx_end(struct conn *c, store_err rc)
{
    if (c == NULL)
        return rc;
    if (c->mode == TX_WRITE && c->owner->group != NULL)
        return group_end(c, rc);
    struct sq_store *s = c->owner;
    bool wrote = c->mode == TX_WRITE;
    reset_all(c);
    if (c->mode != TX_NONE && !sqlite3_get_autocommit(c->db)) {
        if (rc == STORE_OK)
            rc = exec_q(c, Q_COMMIT);
        /* some errors (disk full, I/O) have rolled back already */
        if (rc != STORE_OK && !sqlite3_get_autocommit(c->db) && exec_q(c, Q_ROLLBACK) != STORE_OK)
            log_error("sqlite: rollback failed");
    }
    assert(sqlite3_get_autocommit(c->db));
    if (wrote && rc == STORE_OK && s->walsync != NULL)
        rc = wal_flush(s); /* one connection: the writers take turns anyway */
    if (wrote) {
        changed(s);
        pthread_mutex_unlock(&s->write_mu);
    }
    pool_put(s, c);
    return rc;
}

/* Borrows a connection and starts a transaction of `mode` on it, for a
 * call of scope sc (NULL: none); on success the caller must end it with
 * tx_end. */
static store_err tx_open(struct sq_store *s, store_scope *sc, tx_mode mode, struct conn **out)
{
    *out = NULL;
    assert(sc == NULL || !sc->ended);
    if (mode == TX_WRITE && wal_failed(s))
        return STORE_UNAVAILABLE;
    if (s->group != NULL && (mode == TX_WRITE || (sc != NULL && (sc->wrote || sc->behind))))
        return group_begin(s, sc, false, out); /* a scope's reads see its writes */
    struct conn *c = pool_get(s);
    store_err rc = STORE_OK;
    c->mode = mode;
    if (mode == TX_WRITE)
        pthread_mutex_lock(&s->write_mu);
    if (mode != TX_NONE)
        rc = exec_q(c, mode == TX_WRITE ? Q_BEGIN_IMMEDIATE : Q_BEGIN);
    if (rc != STORE_OK) {
        tx_end(c, rc);
        c = NULL;
    }
    *out = c;
    return rc;
}

/* Like tx_begin(TX_WRITE), but STORE_UNAVAILABLE at once instead of waiting
 * while another thread of this process writes. The connection is taken
 * first, as in tx_begin, so that the two lock orders agree. */
static store_err tx_try_open(struct sq_store *s, store_scope *sc, struct conn **out)
{
    *out = NULL;
    assert(sc == NULL || !sc->ended);
    if (wal_failed(s))
        return STORE_UNAVAILABLE;
    if (s->group != NULL)
        return group_begin(s, sc, true, out);
    struct conn *c = pool_get(s);
    store_err rc = STORE_OK;
    *out = NULL;
    if (pthread_mutex_trylock(&s->write_mu) != 0) {
        pool_put(s, c);
        return STORE_UNAVAILABLE;
    }
    c->mode = TX_WRITE;
    if ((rc = exec_q(c, Q_BEGIN_IMMEDIATE)) != STORE_OK)
        return tx_end(c, rc);
    *out = c;
    return STORE_OK;
}

/* ---- transactions of the backend interface (store_backend.h) -------------
 * A store_tx is the connection's own (struct conn.tx): one transaction at a
 * time per connection, the group's connection included (its writers take
 * turns). The modes map onto tx_begin's: READ1 is autocommit (no BEGIN),
 * READ a deferred BEGIN (one snapshot from the first read on), WRITE and
 * TRY_WRITE BEGIN IMMEDIATE under write_mu, or a part of the group commit
 * in durable mode. */

static struct conn *tx_conn(store_tx *tx)
{
    assert(tx != NULL);
    return (struct conn *)((char *)tx - offsetof(struct conn, tx));
}

static tx_mode tx_mode_of(store_tx_mode m)
{
    switch (m) {
    case STORE_TX_READ1:
        return TX_NONE;
    case STORE_TX_READ:
        return TX_READ;
    default:
        return TX_WRITE;
    }
}

static store_err be_begin(store_be *b, store_scope *sc, store_tx_mode m, store_tx **out)
{
    struct sq_store *s = be_sq(b);
    struct conn *c = NULL;
    store_err rc = m == STORE_TX_TRY_WRITE ? tx_try_open(s, sc, &c) : tx_open(s, sc, tx_mode_of(m), &c);
    *out = NULL;
    if (rc == STORE_OK) {
        c->tx = (struct store_tx){.be = b, .mode = m};
        *out = &c->tx;
    }
    return rc;
}

static store_err be_end(store_tx *tx, store_err rc)
{
    return tx_end(tx_conn(tx), rc);
}

/* Nothing to take: a WRITE transaction holds the whole database (BEGIN
 * IMMEDIATE, and write_mu or the group's turn in this process). */
static store_err be_xlock(store_tx *tx, store_xlock what, int64_t key)
{
    (void)key;
    assert(tx->mode == STORE_TX_WRITE || tx->mode == STORE_TX_TRY_WRITE);
    assert(what == STORE_XLOCK_ENTITY_IDS || what == STORE_XLOCK_VARIANT_CACHE);
    (void)what;
    assert(tx_conn(tx)->mode == TX_WRITE);
    return STORE_OK;
}

/* ---- rows to model structs ---------------------------------------------- */

/* Reads a USER_COLS row into a model_user (row_reader). */
static void read_user(arena_t *a, sqlite3_stmt *st, void *row)
{
    model_user *out = row;
    out->id = col_i32(st, UCOL_ID);
    out->name = col_str(a, st, UCOL_NAME);
    out->full_name = col_str(a, st, UCOL_FULL_NAME);
    out->role = (model_role)sqlite3_column_int(st, UCOL_ROLE);
    out->disabled = sqlite3_column_int(st, UCOL_DISABLED) != 0;
    out->pw_hash = col_str(a, st, UCOL_PW_HASH);
    out->created_ms = sqlite3_column_int64(st, UCOL_CREATED_MS);
}

/* The columns of an E_GET row: id, the fields, then these (d: the kind's
 * descriptor); and E_UPDATE's parameter of `expect`, after the change time. */
#define ECOL_IMAGE(d) (1 + (d)->nfields)
#define ECOL_VERSION(d) (2 + (d)->nfields)
#define ECOL_UPDATED_MS(d) (3 + (d)->nfields)
#define ECOL_THUMB(d) (4 + (d)->nfields) /* NULL but for products */
#define ECOL_EXPECT_PARAM(d) (3 + (d)->nfields)

/* Reads an E_GET row; a == NULL: not its strings. */
static void read_ent_row(arena_t *a, sqlite3_stmt *st, model_kind k, store_ent_row *out)
{
    const model_entity_def *d = model_entity(k);
    model_entity_t *e = &out->e;
    *out = (store_ent_row){.e = {.kind = k, .id = col_i32(st, 0)}};
    for (int i = 0; i < d->nfields; i++) {
        if (d->fields[i].type == MODEL_FT_INT)
            e->v[i].i = col_i32(st, 1 + i); /* NULL reference -> 0 */
        else if (a != NULL)
            e->v[i].s = col_str(a, st, 1 + i);
    }
    out->image_blob_id = col_i32(st, ECOL_IMAGE(d));
    e->version = sqlite3_column_int64(st, ECOL_VERSION(d));
    e->updated_ms = sqlite3_column_int64(st, ECOL_UPDATED_MS(d));
    out->thumb_blob_id = col_i32(st, ECOL_THUMB(d));
}

/* ---- users -------------------------------------------------------------- */

/* A read transaction that reads the schema cookie (the file's first page
 * and the WAL index, under their locks), then a check that the file is
 * still the one at its path: moved or deleted under the server, SQLite
 * would refuse every write (SQLITE_READONLY_DBMOVED). A failed flush in
 * durable mode refuses every write until a restart: not answering either. */
static store_err sq_ping(struct sq_store *s, char *why, size_t why_cap)
{
    struct conn *c = NULL;
    int moved = 0;
    if (wal_failed(s)) {
        snprintf(why, why_cap, "a flush of the WAL failed: writes are refused until a restart");
        return STORE_UNAVAILABLE;
    }
    store_err rc = tx_open(s, NULL, TX_READ, &c);
    if (rc == STORE_OK)
        rc = step_row(c, query(c, Q_PING));
    if (rc != STORE_OK) {
        snprintf(why, why_cap, "%s", c != NULL ? sqlite3_errmsg(c->db) : store_err_name(rc));
        goto out;
    }
    if (sqlite3_file_control(c->db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK &&
        moved) {
        snprintf(why, why_cap, "the database file was moved or deleted while open");
        rc = STORE_UNAVAILABLE;
    }
out:
    return tx_end(c, rc);
}

/* ---- accounts: the primitives of store_backend.h's users and
 * credentials/apps sections ---------------------------------------------------
 * One statement each; store_account.c holds the rules. A transaction that
 * writes users sets users_written first (as before, even when the write then
 * fails): the commit or rollback that ends it moves the USERS count. */

/* Reads a CRED_COLS row into a store_cred (row_reader). */
static void read_cred(arena_t *a, sqlite3_stmt *st, void *row)
{
    store_cred *out = row;
    out->id = sqlite3_column_int64(st, CCOL_ID);
    out->kind = (store_cred_kind)sqlite3_column_int(st, CCOL_KIND);
    out->user_id = col_i32(st, CCOL_USER_ID);
    out->user_name = col_str(a, st, CCOL_USER_NAME);
    out->created_ms = sqlite3_column_int64(st, CCOL_CREATED_MS);
    out->expires_ms = sqlite3_column_int64(st, CCOL_EXPIRES_MS);
    out->revoked = sqlite3_column_int(st, CCOL_REVOKED) != 0;
    col_hash(st, CCOL_HASH, out->hash);
    col_hash(st, CCOL_XSRF_HASH, out->xsrf_hash);
    out->label = col_str(a, st, CCOL_LABEL);
    out->pair_id = sqlite3_column_int64(st, CCOL_PAIR_ID); /* NULL -> 0 */
}

/* Reads an APP_COLS row into a store_app (row_reader). */
static void read_app(arena_t *a, sqlite3_stmt *st, void *row)
{
    store_app *out = row;
    out->id = sqlite3_column_int64(st, ACOL_ID);
    out->name = col_str(a, st, ACOL_NAME);
    col_hash(st, ACOL_HASH, out->hash);
    out->created_ms = sqlite3_column_int64(st, ACOL_CREATED_MS);
    out->revoked = sqlite3_column_int(st, ACOL_REVOKED) != 0;
}

/* Reads one row of a list into its element. */
typedef void (*row_reader)(arena_t *a, sqlite3_stmt *st, void *row);

/* A list primitive's rows: every row st answers, read by `read` into the
 * next `size`-byte element of an arena array, which is returned; *n
 * elements, 0 when the walk failed (*rc says how). */
static void *read_rows(struct conn *c, arena_t *a, sqlite3_stmt *st, size_t size, row_reader read,
                       size_t *n, store_err *rc)
{
    void *v = arena_alloc(a, 0);
    size_t len = 0, cap = 0;
    while ((*rc = step_row(c, st)) == STORE_OK)
        read(a, st, arr_slot(a, &v, size, &len, &cap));
    if (*rc == STORE_ABSENT) /* the rows ended */
        *rc = STORE_OK;
    *n = *rc == STORE_OK ? len : 0;
    return v;
}

static store_err be_user_insert(store_tx *tx, const model_user *u, int64_t created, int32_t *id)
{
    struct conn *c = tx_conn(tx);
    assert(u->name != NULL && u->full_name != NULL && u->pw_hash != NULL);
    atomic_store(&c->owner->users_written, true);
    sqlite3_stmt *st = query(c, Q_USER_ADD);
    bind_text(st, 1, u->name);
    bind_text(st, 2, u->full_name);
    bind_int(st, 3, u->role);
    bind_int(st, 4, u->disabled);
    bind_text(st, 5, u->pw_hash);
    bind_int(st, 6, created);
    store_err rc = step_done(c, st); /* name taken: STORE_CONFLICT */
    int64_t rowid = sqlite3_last_insert_rowid(c->db);
    assert(rc != STORE_OK || (rowid > 0 && rowid <= INT32_MAX));
    *id = rc == STORE_OK ? (int32_t)rowid : 0;
    return rc;
}

static store_err be_user_read(store_tx *tx, arena_t *a, int32_t id, const char *name,
                              model_user *out)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, name != NULL ? Q_USER_BY_NAME : Q_USER_GET);
    if (name != NULL)
        bind_text(st, 1, name);
    else
        bind_int(st, 1, id);
    store_err rc = step_row(c, st);
    if (rc == STORE_OK)
        read_user(a, st, out);
    return rc;
}

static store_err be_user_list(store_tx *tx, arena_t *a, model_user **out, size_t *n)
{
    struct conn *c = tx_conn(tx);
    store_err rc;
    *out = read_rows(c, a, query(c, Q_USER_LIST), sizeof(**out), read_user, n, &rc);
    return rc;
}

static store_err be_user_count(store_tx *tx, int64_t *n)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_USER_COUNT);
    store_err rc = step_row(c, st);
    *n = rc == STORE_OK ? sqlite3_column_int64(st, 0) : 0;
    return rc;
}

static store_err be_user_set(store_tx *tx, const char *name, const char *pw_hash, int disabled)
{
    struct conn *c = tx_conn(tx);
    atomic_store(&c->owner->users_written, true);
    sqlite3_stmt *st = query(c, Q_USER_SET);
    bind_text(st, 1, name);
    bind_text(st, 2, pw_hash); /* NULL: kept */
    if (disabled >= 0)
        bind_int(st, 3, disabled); /* else NULL: kept */
    return step_match(c, st);
}

/* Binds Q_CRED_ADD: a zero XSRF hash and pair_id 0 are stored as none (NULL). */
static void bind_cred(sqlite3_stmt *st, const store_cred *c, int64_t created)
{
    static const unsigned char zero[STORE_HASH_BYTES];
    bool xsrf = memcmp(c->xsrf_hash, zero, STORE_HASH_BYTES) != 0;
    bind_int(st, 1, c->kind);
    bind_hash(st, 2, c->hash);
    bind_int(st, 3, c->user_id);
    bind_int(st, 4, created);
    bind_int(st, 5, c->expires_ms);
    bind_int(st, 6, c->revoked);
    bind_hash(st, 7, xsrf ? c->xsrf_hash : NULL);
    bind_text(st, 8, c->label);
    bind_ref(st, 9, c->pair_id);
}

static store_err be_cred_insert(store_tx *tx, const store_cred *cr, int64_t created, int64_t *id)
{
    struct conn *c = tx_conn(tx);
    assert(cr->label != NULL);
    sqlite3_stmt *st = query(c, Q_CRED_ADD);
    bind_cred(st, cr, created);
    store_err rc = step_done(c, st); /* an unknown user_id: STORE_INVALID (foreign key) */
    *id = rc == STORE_OK ? sqlite3_last_insert_rowid(c->db) : 0;
    assert(rc != STORE_OK || *id > 0);
    return rc;
}

static store_err be_cred_find(store_tx *tx, arena_t *a, store_cred_kind k,
                              const unsigned char hash[STORE_HASH_BYTES], store_cred *out)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_CRED_FIND);
    bind_int(st, 1, k);
    bind_hash(st, 2, hash);
    store_err rc = step_row(c, st);
    if (rc == STORE_OK)
        read_cred(a, st, out);
    return rc;
}

static store_err be_cred_list(store_tx *tx, arena_t *a, store_cred_kind k, int64_t now,
                              store_cred **out, size_t *n)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_CRED_LIST);
    bind_int(st, 1, k);
    bind_int(st, 2, now);
    store_err rc;
    *out = read_rows(c, a, st, sizeof(**out), read_cred, n, &rc);
    return rc;
}

static store_err be_cred_revoke(store_tx *tx, store_cred_kind k, int64_t id)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_CRED_REVOKE);
    bind_int(st, 1, k);
    bind_int(st, 2, id);
    return step_match(c, st); /* a matched row counts even when already revoked */
}

static store_err be_cred_revoke_pair(store_tx *tx, int64_t id)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_CRED_REVOKE_PAIR);
    bind_int(st, 1, id);
    return step_done(c, st);
}

static store_err be_cred_revoke_user(store_tx *tx, int32_t user_id)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_CRED_REVOKE_USER);
    bind_int(st, 1, user_id);
    return step_done(c, st);
}

static store_err be_cred_purge(store_tx *tx, int64_t now)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_CRED_PURGE);
    bind_int(st, 1, now);
    return step_done(c, st);
}

static store_err be_app_insert(store_tx *tx, const store_app *ap, int64_t created, int64_t *id)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_APP_ADD);
    bind_text(st, 1, ap->name);
    bind_hash(st, 2, ap->hash);
    bind_int(st, 3, created);
    bind_int(st, 4, ap->revoked);
    store_err rc = step_done(c, st); /* name or hash taken: STORE_CONFLICT */
    *id = rc == STORE_OK ? sqlite3_last_insert_rowid(c->db) : 0;
    assert(rc != STORE_OK || *id > 0);
    return rc;
}

static store_err be_app_find(store_tx *tx, arena_t *a, const unsigned char hash[STORE_HASH_BYTES],
                             store_app *out)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_APP_FIND);
    bind_hash(st, 1, hash);
    store_err rc = step_row(c, st);
    if (rc == STORE_OK)
        read_app(a, st, out);
    return rc;
}

static store_err be_app_list(store_tx *tx, arena_t *a, store_app **out, size_t *n)
{
    struct conn *c = tx_conn(tx);
    store_err rc;
    *out = read_rows(c, a, query(c, Q_APP_LIST), sizeof(**out), read_app, n, &rc);
    return rc;
}

static store_err be_app_revoke(store_tx *tx, const char *name)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_APP_REVOKE);
    bind_text(st, 1, name);
    return step_match(c, st);
}

/* ---- batch tasks (store_task.c's recipes) -------------------------------- */

static void read_task(arena_t *a, sqlite3_stmt *st, void *row)
{
    store_task *t = row;
    t->id = sqlite3_column_int64(st, 0);
    t->name = col_str(a, st, 1);
    t->description = col_str(a, st, 2);
    t->params = col_str(a, st, 3);
    t->associate_id = (int32_t)sqlite3_column_int64(st, 4);
    t->state = sqlite3_column_int(st, 5);
    t->percent = sqlite3_column_int(st, 6);
    t->progress = col_str(a, st, 7);
    t->result = col_str(a, st, 8);
    t->response = col_str(a, st, 9);
    t->file_name = col_str(a, st, 10);
    t->created_ms = sqlite3_column_int64(st, 11);
    t->started_ms = sqlite3_column_int64(st, 12);
    t->finished_ms = sqlite3_column_int64(st, 13);
    t->start_count = sqlite3_column_int(st, 14);
    t->server = col_str(a, st, 15);
    t->lease_ms = sqlite3_column_int64(st, 16);
    t->stop = sqlite3_column_int(st, 17) != 0;
    t->output_blob = (int32_t)sqlite3_column_int64(st, 18);
    t->input_blob = (int32_t)sqlite3_column_int64(st, 19);
}

static store_err be_task_insert(store_tx *tx, const store_task *t, int64_t *id)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_TASK_ADD);
    bind_text(st, 1, t->name);
    bind_text(st, 2, t->description ? t->description : "");
    bind_text(st, 3, t->params ? t->params : "{}");
    bind_int(st, 4, t->associate_id);
    bind_int(st, 5, t->created_ms);
    store_err rc = step_done(c, st);
    *id = rc == STORE_OK ? sqlite3_last_insert_rowid(c->db) : 0;
    return rc;
}

static store_err be_task_read(store_tx *tx, arena_t *a, int64_t id, store_task *out)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_TASK_GET);
    bind_int(st, 1, id);
    store_err rc = step_row(c, st);
    if (rc == STORE_OK)
        read_task(a, st, out);
    return rc;
}

static store_err be_task_list(store_tx *tx, arena_t *a, const store_task_query *q,
                              store_task **out, size_t *n)
{
    struct conn *c = tx_conn(tx);
    store_err rc;
    sqlite3_stmt *st = query(c, Q_TASK_LIST);
    bind_text(st, 1, q->name);
    bind_int(st, 2, q->state);
    bind_int(st, 3, q->associate);
    *out = read_rows(c, a, st, sizeof(**out), read_task, n, &rc);
    return rc;
}

static store_err be_task_next_new(store_tx *tx, int64_t *id)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_TASK_NEXT_NEW);
    store_err rc = step_row(c, st);
    *id = rc == STORE_OK ? sqlite3_column_int64(st, 0) : 0;
    return rc;
}

static store_err be_task_claim(store_tx *tx, int64_t id, const char *server, int64_t now,
                               int64_t lease)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_TASK_CLAIM);
    bind_int(st, 1, id);
    bind_text(st, 2, server);
    bind_int(st, 3, now);
    bind_int(st, 4, lease);
    return step_match(c, st);
}

static store_err be_task_beat(store_tx *tx, int64_t id, const char *server, int64_t lease,
                              int percent, const char *progress, bool *stop)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_TASK_BEAT);
    bind_int(st, 1, id);
    bind_text(st, 2, server);
    bind_int(st, 3, lease);
    bind_int(st, 4, percent);
    bind_text(st, 5, progress);
    store_err rc = step_row(c, st);
    if (rc == STORE_OK) /* RETURNING: the change is done by this step */
        *stop = sqlite3_column_int(st, 0) != 0;
    return rc == STORE_ABSENT ? STORE_NOMATCH : rc;
}

static store_err be_task_finish(store_tx *tx, const store_task *t, const char *server, int64_t now)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_TASK_FINISH);
    bind_int(st, 1, t->id);
    bind_text(st, 2, server);
    bind_int(st, 3, t->state);
    bind_int(st, 4, t->percent);
    bind_text(st, 5, t->progress ? t->progress : "");
    bind_text(st, 6, t->result ? t->result : "");
    bind_text(st, 7, t->response ? t->response : "");
    bind_text(st, 8, t->file_name ? t->file_name : "");
    if (t->output_blob > 0)
        bind_int(st, 9, t->output_blob);
    else
        sqlite3_bind_null(st, 9);
    bind_int(st, 10, now);
    return step_match(c, st);
}

static store_err be_task_fail_new(store_tx *tx, int64_t id, const char *result, int64_t now)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_TASK_FAIL_NEW);
    bind_int(st, 1, id);
    bind_text(st, 2, result);
    bind_int(st, 3, now);
    return step_match(c, st);
}

static store_err be_task_set_stop(store_tx *tx, int64_t id)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_TASK_SET_STOP);
    bind_int(st, 1, id);
    return step_match(c, st);
}

static store_err be_task_delete(store_tx *tx, int64_t id)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_TASK_DELETE);
    bind_int(st, 1, id);
    return step_match(c, st);
}

static store_err be_task_reap(store_tx *tx, int64_t now, const char *result, int64_t *n)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_TASK_REAP);
    bind_int(st, 1, now);
    bind_text(st, 2, result);
    store_err rc = step_done(c, st);
    *n = rc == STORE_OK ? sqlite3_changes(c->db) : 0;
    return rc;
}

static void read_id64(arena_t *a, sqlite3_stmt *st, void *row)
{
    (void)a;
    *(int64_t *)row = sqlite3_column_int64(st, 0);
}

static store_err be_task_expired(store_tx *tx, arena_t *a, int64_t cutoff, int max, int64_t **ids,
                                 size_t *n)
{
    struct conn *c = tx_conn(tx);
    store_err rc;
    sqlite3_stmt *st = query(c, Q_TASK_EXPIRED);
    bind_int(st, 1, cutoff);
    bind_int(st, 2, max);
    *ids = read_rows(c, a, st, sizeof(**ids), read_id64, n, &rc);
    return rc;
}

/* ---- entities ------------------------------------------------------------
 * The primitives of store_backend.h's entity section (the recipes are in
 * store_entity.c), over the statements generated per kind (entity_sql).
 * The lock modes of ent_read are plain reads: a write transaction holds
 * the whole database. */

/* Binds ?1 = id, ?2.. = the fields and then the change time, as E_INSERT
 * and E_UPDATE expect. */
static void bind_entity(sqlite3_stmt *st, const model_entity_t *e, int64_t now)
{
    const model_entity_def *d = model_entity(e->kind);
    bind_int(st, 1, e->id);
    bind_int(st, 2 + d->nfields, now);
    for (int i = 0; i < d->nfields; i++) {
        const model_field *f = &d->fields[i];
        if (f->type == MODEL_FT_STRING)
            bind_text(st, 2 + i, e->v[i].s ? e->v[i].s : "");
        else if (f->ref >= 0)
            bind_ref(st, 2 + i, e->v[i].i);
        else
            bind_int(st, 2 + i, e->v[i].i);
    }
}

/* Looks up entity (k, id): STORE_ABSENT when absent; *st is left on its
 * E_GET row (read it before the next use of that statement). */
static store_err entity_row(struct conn *c, model_kind k, int32_t id, sqlite3_stmt **st)
{
    *st = query(c, q_ent(k, E_GET));
    bind_int(*st, 1, id);
    return step_row(c, *st);
}

static store_err be_ent_read(store_tx *tx, arena_t *a, model_kind k, int32_t id, store_row_lock l,
                             store_ent_row *out)
{
    (void)l; /* the write transaction holds the database */
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st;
    store_err rc = entity_row(c, k, id, &st);
    if (rc == STORE_OK)
        read_ent_row(a, st, k, out);
    return rc;
}

/* ---- entity lists: one statement made for the query (its keys and
 * filter vary), over the list indexes of migrate_v7: (string field
 * COLLATE NOCASE, id) serves ORDER BY that field and the prefix range;
 * the primary key serves the order by id. */

/* "e.col COLLATE NOCASE" for a string field, "e.col" for an int, "e.id". */
static const char *list_col(arena_t *a, const model_entity_def *d, int field)
{
    if (field < 0)
        return "e.id";
    const model_field *f = &d->fields[field];
    return arena_printf(a, "e.%s%s", f->column, f->type == MODEL_FT_STRING ? " COLLATE NOCASE" : "");
}

/* The statement of q: ?1 limit, ?2 offset, ?3 prefix, ?4 its upper bound. */
static const char *list_sql(arena_t *a, const store_list_query *q)
{
    const model_entity_def *d = model_entity(q->kind);
    const char *cols = "", *where = "", *order = "";
    for (int i = 0; i < d->nfields; i++)
        cols = arena_printf(a, "%s%se.%s", cols, i ? ", " : "", d->fields[i].column);
    for (int i = 0; q->prefix != NULL && i < d->nnames; i++) {
        const char *col = list_col(a, d, i);
        where = arena_printf(a, "%s%s(%s >= ?3 AND %s < ?4)", where, i ? " OR " : " WHERE ", col,
                             col);
    }
    for (int i = 0; i < q->nkeys; i++)
        order = arena_printf(a, "%s%s%s %s", order, i ? ", " : "", list_col(a, d, q->keys[i].field),
                             q->keys[i].desc ? "DESC" : "ASC");
    return arena_printf(a,
                        "SELECT e.id, %s, e.image_blob_id, e.version, e.updated_ms, NULL, "
                        "coalesce(b.version, 0) FROM %s AS e LEFT JOIN blob AS b ON b.id = "
                        "e.image_blob_id%s ORDER BY %s LIMIT ?1 OFFSET ?2",
                        cols, d->table, where, order);
}

static store_err be_ent_list(store_tx *tx, arena_t *a, const store_list_query *q,
                             const char *upper, int limit, store_list_item *rows, int *n)
{
    struct conn *c = tx_conn(tx);
    const model_entity_def *d = model_entity(q->kind);
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(c->db, list_sql(a, q), -1, &st, NULL);
    store_err rc = src == SQLITE_OK ? STORE_OK : sql_err(c, src, "entity list");
    *n = 0;
    if (rc == STORE_OK) {
        bind_int(st, 1, limit);
        bind_int(st, 2, q->skip);
        if (q->prefix != NULL) {
            bind_text(st, 3, q->prefix);
            bind_text(st, 4, upper);
        }
    }
    while (rc == STORE_OK && *n < limit && (rc = step_row(c, st)) == STORE_OK) {
        store_ent_row row;
        read_ent_row(a, st, q->kind, &row);
        rows[*n] = (store_list_item){.e = row.e, .image_blob_id = row.image_blob_id,
                                     .image_version = sqlite3_column_int64(st, 5 + d->nfields)};
        (*n)++;
    }
    sqlite3_finalize(st);
    return rc == STORE_ABSENT ? STORE_OK : rc;
}

static store_err be_ent_next_id(store_tx *tx, model_kind k, int32_t *id)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, q_ent(k, E_NEXT_ID));
    store_err rc = step_row(c, st);
    if (rc != STORE_OK) /* an aggregate without GROUP BY has one row */
        return rc == STORE_ABSENT ? STORE_INTERNAL : rc;
    int64_t next = sqlite3_column_int64(st, 0);
    if (sqlite3_column_type(st, 0) == SQLITE_NULL || next > INT32_MAX)
        return STORE_ABSENT;
    *id = (int32_t)next;
    return STORE_OK;
}

/* Steps a RETURNING version, updated_ms statement; NOMATCH without a row. */
static store_err step_versioned(struct conn *c, sqlite3_stmt *st, int64_t *version,
                                int64_t *updated_ms)
{
    store_err rc = step_row(c, st);
    if (rc != STORE_OK)
        return rc == STORE_ABSENT ? STORE_NOMATCH : rc;
    *version = sqlite3_column_int64(st, 0);
    *updated_ms = sqlite3_column_int64(st, 1);
    return STORE_OK;
}

static store_err be_ent_insert(store_tx *tx, const model_entity_t *e, int64_t now,
                               int64_t *version, int64_t *updated_ms)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, q_ent(e->kind, E_INSERT));
    bind_entity(st, e, now);
    store_err rc = step_versioned(c, st, version, updated_ms);
    return rc == STORE_NOMATCH ? STORE_INTERNAL : rc; /* an INSERT that ran has its row */
}

static store_err be_ent_update(store_tx *tx, const model_entity_t *e, int64_t expect, int64_t now,
                               int64_t *version, int64_t *updated_ms)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, q_ent(e->kind, E_UPDATE));
    bind_entity(st, e, now);
    bind_int(st, ECOL_EXPECT_PARAM(model_entity(e->kind)), expect);
    return step_versioned(c, st, version, updated_ms);
}

static store_err be_ent_delete(store_tx *tx, model_kind k, int32_t id, int64_t expect,
                               store_ent_row *gone)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, q_ent(k, E_DELETE));
    bind_int(st, 1, id);
    bind_int(st, 2, expect);
    store_err rc = step_row(c, st);
    if (rc != STORE_OK)
        return rc == STORE_ABSENT ? STORE_NOMATCH : rc;
    *gone = (store_ent_row){.e = {.kind = k, .id = id},
                            .image_blob_id = col_i32(st, 0), /* NULL -> 0 */
                            .thumb_blob_id = col_i32(st, 1)};
    return STORE_OK;
}

/* Deletes BLOB record `blob_id` (0: none); its bytes and variants go by
 * cascade and the image_blob_id (thumb_blob_id) naming it becomes NULL. */
static store_err blob_delete(struct conn *c, int32_t blob_id)
{
    if (blob_id == 0)
        return STORE_OK;
    sqlite3_stmt *st = query(c, Q_BLOB_DELETE);
    bind_int(st, 1, blob_id);
    return step_done(c, st);
}

static store_err be_blob_delete(store_tx *tx, int32_t id)
{
    return blob_delete(tx_conn(tx), id);
}

/* ---- BLOB records -----------------------------------------------------------
 * The primitives of store_backend.h's BLOB-record section (the recipes are
 * in store_entity.c). A record's users are not joined: store_entity.c
 * resolves them (user_read, with its memory). */

/* The shared users count, unless a write transaction in progress (or in
 * the open group, whose parts read each other's writes) wrote users: the
 * count moves only when it ends. */
static store_err be_users_stamp(store_tx *tx, uint64_t *out)
{
    struct sq_store *s = tx_conn(tx)->owner;
    if (atomic_load(&s->users_written) || s->changes == NULL)
        return STORE_ABSENT;
    *out = atomic_load_explicit(&s->changes[STORE_CHANGES_USERS], memory_order_acquire);
    return STORE_OK;
}

/* Reads a BLOB_COLS row (who wrote it by user id). */
static void read_blob(arena_t *a, sqlite3_stmt *st, store_blob_row *out)
{
    model_blob *b = &out->b;
    *out = (store_blob_row){0};
    b->blob_id = col_i32(st, BCOL_ID);
    if (a != NULL) {
        b->description = col_str(a, st, BCOL_DESCRIPTION);
        b->extra_info = col_str(a, st, BCOL_EXTRA_INFO);
        b->mime_type = col_str(a, st, BCOL_MIME_TYPE);
        b->conceptual_type = col_str(a, st, BCOL_CONCEPTUAL_TYPE);
    }
    b->blob_size = col_i32(st, BCOL_BLOB_SIZE);
    b->original_size = col_i32(st, BCOL_ORIGINAL_SIZE);
    b->is_zipped = sqlite3_column_int(st, BCOL_IS_ZIPPED) != 0;
    b->is_encrypted = sqlite3_column_int(st, BCOL_IS_ENCRYPTED) != 0;
    b->created_ms = sqlite3_column_int64(st, BCOL_CREATED_MS);
    b->updated_ms = sqlite3_column_int64(st, BCOL_UPDATED_MS);
    out->created_by = col_i32(st, BCOL_CREATED_BY);
    out->updated_by = col_i32(st, BCOL_UPDATED_BY);
    b->version = sqlite3_column_int64(st, BCOL_VERSION);
    b->info_version = sqlite3_column_int64(st, BCOL_INFO_VERSION);
    out->unlinked_ms = sqlite3_column_type(st, BCOL_UNLINKED_MS) == SQLITE_NULL
                           ? INT64_MIN
                           : sqlite3_column_int64(st, BCOL_UNLINKED_MS);
}

/* Steps a statement that answers one BLOB_COLS row into *out; ABSENT
 * without one. */
static store_err step_blob(struct conn *c, sqlite3_stmt *st, arena_t *a, store_blob_row *out)
{
    store_err rc = step_row(c, st);
    if (rc == STORE_OK)
        read_blob(a, st, out);
    return rc;
}

/* Runs the UPDATE st of record id, then reads the record as it now is
 * into *out (the RETURNING of the primitive); NOMATCH when st matched no
 * row. */
static store_err update_blob(struct conn *c, sqlite3_stmt *st, arena_t *a, int32_t id,
                             store_blob_row *out)
{
    store_err rc = step_match(c, st);
    if (rc != STORE_OK)
        return rc;
    st = query(c, Q_BLOB_GET);
    bind_int(st, 1, id);
    rc = step_blob(c, st, a, out);
    return rc == STORE_ABSENT ? STORE_INTERNAL : rc; /* just updated */
}

static store_err be_ent_set_image(store_tx *tx, model_kind k, int32_t id, int32_t blob_id)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, q_ent(k, E_SET_BLOB));
    bind_int(st, 1, id);
    bind_ref(st, 2, blob_id); /* 0: no image */
    return step_match(c, st);
}

static store_err be_ent_set_thumb(store_tx *tx, int32_t product_id, int32_t blob_id)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_THUMB_SET);
    bind_int(st, 1, product_id);
    bind_ref(st, 2, blob_id);
    return step_match(c, st);
}

static store_err be_blob_read(store_tx *tx, arena_t *a, int32_t id, store_row_lock l,
                              store_blob_row *out)
{
    (void)l; /* the write transaction holds the database */
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_BLOB_GET);
    bind_int(st, 1, id);
    return step_blob(c, st, a, out);
}

static store_err be_pic_read_open(store_tx *tx, int32_t blob_id, int64_t *size, store_pic_r **out);
static store_err be_pic_read(store_pic_r *r, int64_t off, void *buf, size_t n);
static void be_pic_read_close(store_pic_r *r);

/* The stored bytes of record blob_id, when it holds at most a piece of
 * them, into a malloc'd out->bytes. */
static store_err image_bytes(store_tx *tx, int32_t blob_id, store_image_row *out)
{
    store_pic_r *r = NULL;
    int64_t size = 0;
    store_err rc = be_pic_read_open(tx, blob_id, &size, &r);
    if (rc != STORE_OK)
        return rc == STORE_ABSENT ? STORE_OK : rc;
    if (size > STORE_PIECE) {
        be_pic_read_close(r);
        return STORE_OK;
    }
    if ((out->bytes = malloc(size > 0 ? (size_t)size : 1)) == NULL)
        rc = STORE_INTERNAL;
    if (rc == STORE_OK)
        rc = be_pic_read(r, 0, out->bytes, (size_t)size);
    be_pic_read_close(r);
    out->len = (size_t)size;
    out->has_bytes = rc == STORE_OK;
    if (rc != STORE_OK) {
        free(out->bytes);
        out->bytes = NULL;
    }
    return rc;
}

/* The entity, its record, their bytes: in READ1 (autocommit) a deferred
 * transaction of its own holds them to one snapshot. */
static store_err image_reads(store_tx *tx, arena_t *a, model_kind k, int32_t id, bool with_bytes,
                             store_image_row *out)
{
    int32_t blob_id;
    store_err rc = be_ent_read(tx, NULL, k, id, STORE_ROW_PLAIN, &out->ent);
    if (rc != STORE_OK || (blob_id = out->ent.image_blob_id) == 0)
        return rc;
    rc = be_blob_read(tx, a, blob_id, STORE_ROW_PLAIN, &out->rec);
    if (rc == STORE_ABSENT) { /* the record is missing: rec.b.blob_id 0 */
        memset(&out->rec, 0, sizeof(out->rec));
        return STORE_OK;
    }
    if (rc == STORE_OK && with_bytes && out->rec.b.blob_size <= STORE_PIECE)
        rc = image_bytes(tx, blob_id, out);
    return rc;
}

static store_err be_image_read(store_tx *tx, arena_t *a, model_kind k, int32_t id, bool with_bytes,
                               store_image_row *out)
{
    struct conn *c = tx_conn(tx);
    bool own = c->mode == TX_NONE;
    memset(out, 0, sizeof(*out));
    store_err rc = own ? exec_q(c, Q_BEGIN) : STORE_OK;
    if (rc != STORE_OK)
        return rc;
    rc = image_reads(tx, a, k, id, with_bytes, out);
    if (!own)
        return rc;
    reset_all(c);
    store_err end = exec_q(c, rc == STORE_OK ? Q_COMMIT : Q_ROLLBACK);
    if (!sqlite3_get_autocommit(c->db) && exec_q(c, Q_ROLLBACK) != STORE_OK)
        log_error("sqlite: rollback failed"); /* the connection goes back in autocommit */
    if (rc == STORE_OK && end != STORE_OK) {
        free(out->bytes);
        out->bytes = NULL;
        out->has_bytes = false;
        rc = end;
    }
    return rc;
}

static store_err be_blob_insert(store_tx *tx, const char *ct, int32_t user, int64_t now,
                                int64_t unlinked_ms, int32_t *id)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_BLOB_NEW);
    bind_text(st, 1, ct);
    bind_int(st, 2, now);
    bind_int(st, 3, user);
    if (unlinked_ms != INT64_MIN)
        bind_int(st, 4, unlinked_ms); /* else NULL: linked */
    store_err rc = step_done(c, st);
    if (rc != STORE_OK)
        return rc;
    int64_t rowid = sqlite3_last_insert_rowid(c->db);
    if (rowid > INT32_MAX) {
        log_error("store: BlobId space exhausted");
        return STORE_INTERNAL;
    }
    *id = (int32_t)rowid;
    return STORE_OK;
}

static store_err be_blob_set_info(store_tx *tx, arena_t *a, int32_t id, const model_blob_edit *ed,
                                  int32_t user, int64_t now, int64_t expect_info,
                                  store_blob_row *out)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_BLOB_SET_INFO);
    bind_int(st, 1, id);
    bind_text(st, 2, ed->description);
    bind_text(st, 3, ed->extra_info);
    bind_text(st, 4, ed->conceptual_type);
    bind_int(st, 5, now);
    bind_int(st, 6, user);
    bind_int(st, 7, expect_info);
    return update_blob(c, st, a, id, out);
}

static store_err be_blob_set_content(store_tx *tx, arena_t *a, int32_t id, const store_pic_meta *m,
                                     int32_t user, int64_t now, int64_t expect_version,
                                     store_blob_row *out)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_BLOB_SET_CONTENT);
    bind_int(st, 1, id);
    bind_text(st, 2, m->mime ? m->mime : "");
    bind_int(st, 3, m->size);
    bind_int(st, 4, m->original_size);
    bind_int(st, 5, m->zipped);
    bind_int(st, 6, m->encrypted);
    bind_int(st, 7, now);
    bind_int(st, 8, user);
    bind_int(st, 9, expect_version);
    return update_blob(c, st, a, id, out);
}

static store_err be_blob_claim(store_tx *tx, int32_t id)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_BLOB_CLAIM);
    bind_int(st, 1, id);
    return step_match(c, st);
}

static store_err be_blob_unlink(store_tx *tx, int32_t id, int64_t since)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_BLOB_UNLINK);
    bind_int(st, 1, id);
    bind_int(st, 2, since);
    return step_match(c, st);
}

static store_err be_blob_sweep(store_tx *tx, int64_t cutoff, int64_t *n)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, q_gen(G_BLOB_SWEEP));
    bind_int(st, 1, cutoff);
    store_err rc = step_done(c, st);
    *n = rc == STORE_OK ? sqlite3_changes(c->db) : 0; /* the blob rows, not their cascades */
    return rc;
}

/* ---- the files of batch tasks: the primitives (store_backend.h) ----------
 * batch_file rows and their pieces in blob_piece (schema v10). */

static store_err be_file_insert(store_tx *tx, int32_t blob_id, int64_t task, int kind, int part)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_FILE_INSERT);
    bind_int(st, 1, blob_id);
    bind_ref(st, 2, task);
    bind_int(st, 3, kind);
    bind_int(st, 4, part);
    return step_done(c, st);
}

static void read_file(arena_t *a, sqlite3_stmt *st, void *row)
{
    store_file_row *f = row;
    (void)a;
    f->blob_id = (int32_t)sqlite3_column_int64(st, 0);
    f->task = sqlite3_column_int64(st, 1);
    f->kind = sqlite3_column_int(st, 2);
    f->part = sqlite3_column_int(st, 3);
    f->done = sqlite3_column_int(st, 4) != 0;
    f->size = sqlite3_column_int64(st, 5);
    f->original_size = sqlite3_column_int64(st, 6);
    f->zipped = sqlite3_column_int(st, 7) != 0;
    f->encrypted = sqlite3_column_int(st, 8) != 0;
    f->version = sqlite3_column_int64(st, 9);
}

static store_err be_file_read(store_tx *tx, int32_t blob_id, store_file_row *out)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_FILE_READ);
    bind_int(st, 1, blob_id);
    store_err rc = step_row(c, st);
    if (rc == STORE_OK)
        read_file(NULL, st, out);
    return rc;
}

static store_err be_file_list(store_tx *tx, int64_t task, int kind, store_file_row *rows, int max,
                              int *n)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_FILE_LIST);
    bind_int(st, 1, task);
    bind_int(st, 2, kind);
    bind_int(st, 3, max);
    store_err rc = STORE_OK;
    *n = 0;
    while (*n < max && (rc = step_row(c, st)) == STORE_OK)
        read_file(NULL, st, &rows[(*n)++]);
    return rc == STORE_ABSENT || rc == STORE_OK ? STORE_OK : rc;
}

static store_err be_file_done(store_tx *tx, int32_t blob_id)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_FILE_DONE);
    bind_int(st, 1, blob_id);
    return step_match(c, st);
}

static store_err be_file_bind(store_tx *tx, int32_t blob_id, int64_t task)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_FILE_BIND);
    bind_int(st, 1, blob_id);
    bind_int(st, 2, task);
    return step_match(c, st);
}

static store_err bind_bytes(sqlite3_stmt *st, int i, const void *v, size_t n);

static store_err be_file_release(store_tx *tx, int32_t blob_id)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_FILE_RELEASE);
    bind_int(st, 1, blob_id);
    return step_match(c, st);
}

static store_err be_file_stale(store_tx *tx, int64_t cutoff, int32_t *ids, int max, int *n)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_FILE_STALE);
    bind_int(st, 1, cutoff);
    bind_int(st, 2, max);
    store_err rc = STORE_OK;
    *n = 0;
    while (*n < max && (rc = step_row(c, st)) == STORE_OK)
        ids[(*n)++] = (int32_t)sqlite3_column_int64(st, 0);
    return rc == STORE_ABSENT ? STORE_OK : rc;
}

static store_err be_file_release_stale(store_tx *tx, int32_t blob_id, int64_t cutoff)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_FILE_RELEASE_STALE);
    bind_int(st, 1, blob_id);
    bind_int(st, 2, cutoff);
    return step_match(c, st);
}

static store_err be_piece_drop(store_tx *tx, int32_t blob_id, int max, int64_t *n)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_PIECE_DROP);
    bind_int(st, 1, blob_id);
    bind_int(st, 2, max);
    store_err rc = step_done(c, st);
    *n = rc == STORE_OK ? sqlite3_changes(c->db) : 0;
    return rc;
}

static store_err be_piece_put(store_tx *tx, int32_t blob_id, int64_t n, const void *p, size_t len)
{
    struct conn *c = tx_conn(tx);
    assert(len <= STORE_PIECE);
    sqlite3_stmt *st = query(c, Q_PIECE_PUT);
    bind_int(st, 1, blob_id);
    bind_int(st, 2, n);
    store_err rc = bind_bytes(st, 3, p, len);
    return rc == STORE_OK ? step_done(c, st) : rc;
}

static store_err be_piece_get(store_tx *tx, int32_t blob_id, int64_t n, void *buf, size_t cap,
                              size_t *len)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_PIECE_GET);
    bind_int(st, 1, blob_id);
    bind_int(st, 2, n);
    *len = 0;
    store_err rc = step_row(c, st);
    size_t got = rc == STORE_OK ? (size_t)sqlite3_column_bytes(st, 0) : 0;
    if (rc == STORE_OK && got > cap) {
        log_error("store: piece %lld of BLOB %d holds %zu bytes", (long long)n, blob_id, got);
        rc = STORE_CORRUPT;
    }
    if (rc == STORE_OK && got > 0)
        memcpy(buf, sqlite3_column_blob(st, 0), got);
    if (rc == STORE_OK)
        *len = got;
    sqlite3_reset(st); /* the row's bytes are not held past the call */
    return rc;
}

/* ---- picture bytes: the primitives (store_backend.h) ----------------------
 * One BLOB's stored bytes, streamed in pieces of at most STORE_PIECE over
 * sqlite3_blob_* (no statement holds the whole picture). Writing first
 * makes a blob_data row of zeroblob(size), then fills it in order; the
 * handles live in the transaction's connection. They decide nothing: the
 * recipes check sizes against the record. */

static store_err be_pic_write_open(store_tx *tx, int32_t blob_id, int64_t size, store_pic_w **out)
{
    struct conn *c = tx_conn(tx);
    store_pic_w *w = &c->pw;
    assert(!w->open && size >= 0);
    *out = NULL;
    if (size > INT32_MAX)
        return STORE_TOO_LARGE;
    sqlite3_stmt *st = query(c, Q_DATA_PUT);
    bind_int(st, 1, blob_id);
    bind_int(st, 2, size);
    store_err rc = step_done(c, st);
    *w = (store_pic_w){.c = c, .size = size};
    int src = SQLITE_OK;
    if (rc == STORE_OK && size > 0 &&
        (src = sqlite3_blob_open(c->db, "main", "blob_data", "content", blob_id, 1, &w->h)) !=
            SQLITE_OK)
        rc = sql_err(c, src, "blob_open for write");
    if (rc != STORE_OK) {
        sqlite3_blob_close(w->h); /* NULL after a failed open: no-op */
        w->h = NULL;
        return rc;
    }
    w->open = true;
    *out = w;
    return STORE_OK;
}

static store_err be_pic_write(store_pic_w *w, const void *p, size_t n)
{
    assert(w->open && n <= STORE_PIECE && (int64_t)n <= w->size - w->off);
    if (n == 0)
        return STORE_OK;
    int src = sqlite3_blob_write(w->h, p, (int)n, (int)w->off);
    if (src != SQLITE_OK)
        return sql_err(w->c, src, "blob_write");
    w->off += (int64_t)n;
    return STORE_OK;
}

/* rc: the writer's outcome so far; a picture not written to its announced
 * size is an error of the caller's (STORE_INTERNAL). */
static store_err be_pic_write_close(store_pic_w *w, store_err rc)
{
    assert(w->open);
    sqlite3_blob_close(w->h); /* no commit happens here: we are inside BEGIN */
    if (rc == STORE_OK && w->off != w->size) {
        log_error("store: picture closed at %lld of %lld bytes", (long long)w->off,
                  (long long)w->size);
        rc = STORE_INTERNAL;
    }
    *w = (store_pic_w){0};
    return rc;
}

/* STORE_ABSENT when record blob_id holds no bytes (no blob_data row). */
static store_err be_pic_read_open(store_tx *tx, int32_t blob_id, int64_t *size, store_pic_r **out)
{
    struct conn *c = tx_conn(tx);
    store_pic_r *r = &c->pr;
    assert(!r->open);
    *out = NULL;
    *size = 0;
    *r = (store_pic_r){.c = c};
    int src = sqlite3_blob_open(c->db, "main", "blob_data", "content", blob_id, 0, &r->h);
    if (src == SQLITE_ERROR && strncmp(sqlite3_errmsg(c->db), "no such rowid", 13) == 0)
        return STORE_ABSENT;
    if (src != SQLITE_OK) {
        sqlite3_blob_close(r->h);
        r->h = NULL;
        return sql_err(c, src, "blob_open for read");
    }
    r->size = sqlite3_blob_bytes(r->h);
    r->open = true;
    *size = r->size;
    *out = r;
    return STORE_OK;
}

static store_err be_pic_read(store_pic_r *r, int64_t off, void *buf, size_t n)
{
    assert(r->open && n <= STORE_PIECE && off >= 0 && (int64_t)n <= r->size - off);
    int src = n > 0 ? sqlite3_blob_read(r->h, buf, (int)n, (int)off) : SQLITE_OK;
    return src == SQLITE_OK ? STORE_OK : sql_err(r->c, src, "blob_read");
}

static void be_pic_read_close(store_pic_r *r)
{
    assert(r->open);
    sqlite3_blob_close(r->h);
    *r = (store_pic_r){0};
}

/* ---- variants: the primitives of store_backend.h ------------------------
 * The rules (the version check under the BLOB row, the touch batching,
 * eviction) are store_variant.c's; these are its statements. */

/* Bytes bound SQLITE_STATIC; an empty value binds an empty BLOB, not NULL. */
static store_err bind_bytes(sqlite3_stmt *st, int i, const void *v, size_t n)
{
    int rc =
        n > 0 ? sqlite3_bind_blob64(st, i, v, n, SQLITE_STATIC) : sqlite3_bind_zeroblob(st, i, 0);
    assert(rc == SQLITE_OK || rc == SQLITE_TOOBIG);
    return rc == SQLITE_OK ? STORE_OK : STORE_TOO_LARGE;
}

/* Column i (a BLOB) copied into malloc'd *out of *len bytes. */
static store_err col_bytes(sqlite3_stmt *st, int i, void **out, size_t *len)
{
    const void *b = sqlite3_column_blob(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    void *copy = malloc(n > 0 ? n : 1);
    if (copy == NULL) {
        log_error("store: no memory for %zu variant bytes", n);
        return STORE_INTERNAL;
    }
    if (n > 0)
        memcpy(copy, b, n);
    *out = copy;
    *len = n;
    return STORE_OK;
}

static store_err be_var_read(store_tx *tx, arena_t *a, int32_t blob_id, int64_t version,
                             const char *key, store_variant_meta *m, void **bytes, size_t *len,
                             int64_t *vid)
{
    struct conn *c = tx_conn(tx);
    *bytes = NULL;
    *len = 0;
    sqlite3_stmt *st = query(c, Q_VARIANT_GET);
    bind_int(st, 1, blob_id);
    bind_text(st, 2, key);
    bind_int(st, 3, version);
    store_err rc = step_row(c, st);
    if (rc != STORE_OK || (rc = col_bytes(st, 5, bytes, len)) != STORE_OK)
        return rc;
    *vid = sqlite3_column_int64(st, 0);
    m->mime = col_str(a, st, 1);
    m->is_zipped = sqlite3_column_int(st, 2) != 0;
    m->is_encrypted = sqlite3_column_int(st, 3) != 0;
    m->original_size = sqlite3_column_int64(st, 4);
    return STORE_OK;
}

/* Inserts or replaces the bytes of variant `id`. */
static store_err variant_data_put(struct conn *c, int64_t id, const void *bytes, size_t len)
{
    sqlite3_stmt *st = query(c, Q_VARIANT_DATA_PUT);
    bind_int(st, 1, id);
    store_err rc = bind_bytes(st, 2, bytes, len);
    return rc == STORE_OK ? step_done(c, st) : rc;
}

static store_err be_var_upsert(store_tx *tx, int32_t blob_id, int64_t version, const char *key,
                               const store_variant_meta *m, const void *bytes, size_t len,
                               bool pinned, int64_t now, int64_t *vid)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_VARIANT_PUT);
    bind_int(st, 1, blob_id);
    bind_int(st, 2, version);
    bind_text(st, 3, key);
    bind_text(st, 4, m->mime);
    bind_int(st, 5, m->is_zipped);
    bind_int(st, 6, m->is_encrypted);
    bind_int(st, 7, m->original_size);
    bind_int(st, 8, (int64_t)len);
    bind_int(st, 9, pinned);
    bind_int(st, 10, now);
    store_err rc = step_row(c, st); /* RETURNING id: the change is done by this step */
    if (rc == STORE_ABSENT)
        rc = STORE_INTERNAL;
    if (rc != STORE_OK)
        return rc;
    *vid = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return variant_data_put(c, *vid, bytes, len);
}

static store_err be_var_touch(store_tx *tx, const store_touch *t, int n)
{
    struct conn *c = tx_conn(tx);
    store_err rc = STORE_OK;
    for (int i = 0; i < n && rc == STORE_OK; i++) {
        sqlite3_stmt *st = query(c, Q_VARIANT_TOUCH);
        bind_int(st, 1, t[i].id);
        bind_int(st, 2, t[i].ms);
        rc = step_done(c, st);
    }
    return rc;
}

static store_err be_var_totals(store_tx *tx, int64_t *bytes, int64_t *count)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_VARIANT_TOTAL);
    store_err rc = step_row(c, st);
    if (rc == STORE_OK) {
        *bytes = sqlite3_column_int64(st, 0);
        *count = sqlite3_column_int64(st, 1);
    }
    return rc;
}

static store_err be_var_lru(store_tx *tx, int32_t not_blob, const char *not_key, int64_t *vid,
                            int64_t *size)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_VARIANT_LRU);
    bind_int(st, 1, not_blob);
    bind_text(st, 2, not_key);
    store_err rc = step_row(c, st);
    if (rc == STORE_OK) {
        *vid = sqlite3_column_int64(st, 0);
        *size = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st); /* done reading before the table changes */
    return rc;
}

static store_err be_var_delete(store_tx *tx, int64_t vid)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_VARIANT_EVICT);
    bind_int(st, 1, vid);
    return step_done(c, st);
}

static store_err be_var_delete_stale(store_tx *tx, int32_t blob_id)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_VARIANT_INVALIDATE);
    bind_int(st, 1, blob_id);
    return step_done(c, st);
}

static store_err be_var_next(store_tx *tx, arena_t *a, int32_t blob_id, int64_t after, int64_t *vid,
                             void **bytes, size_t *len, bool *z, bool *e)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_REWRITE_VNEXT);
    bind_int(st, 1, blob_id);
    bind_int(st, 2, after);
    store_err rc = step_row(c, st);
    if (rc != STORE_OK)
        return rc;
    size_t n = (size_t)sqlite3_column_bytes(st, 1);
    void *p = arena_alloc(a, n > 0 ? n : 1);
    if (n > 0)
        memcpy(p, sqlite3_column_blob(st, 1), n);
    *vid = sqlite3_column_int64(st, 0);
    *bytes = p;
    *len = n;
    *z = sqlite3_column_int(st, 2) != 0;
    *e = sqlite3_column_int(st, 3) != 0;
    sqlite3_reset(st);
    return STORE_OK;
}

static store_err be_var_set_stored(store_tx *tx, int64_t vid, const void *bytes, size_t len, bool z,
                                   bool e)
{
    struct conn *c = tx_conn(tx);
    store_err rc = variant_data_put(c, vid, bytes, len);
    if (rc != STORE_OK)
        return rc;
    sqlite3_stmt *st = query(c, Q_REWRITE_VSET);
    bind_int(st, 1, vid);
    bind_int(st, 2, (int64_t)len);
    bind_int(st, 3, z);
    bind_int(st, 4, e);
    return step_done(c, st);
}

/* ---- server metadata ------------------------------------------------------ */

static store_err be_meta_get(store_tx *tx, arena_t *a, const char *name, void **value, size_t *len)
{
    struct conn *c = tx_conn(tx);
    *value = NULL;
    *len = 0;
    sqlite3_stmt *st = query(c, Q_META_GET);
    bind_text(st, 1, name);
    store_err rc = step_row(c, st);
    if (rc != STORE_OK)
        return rc;
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    *value = arena_alloc(a, n);
    if (n > 0)
        memcpy(*value, sqlite3_column_blob(st, 0), n);
    *len = n;
    return STORE_OK;
}

static store_err be_meta_put(store_tx *tx, const char *name, const void *value, size_t len)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_META_PUT);
    bind_text(st, 1, name);
    store_err rc = bind_bytes(st, 2, value, len);
    return rc == STORE_OK ? step_done(c, st) : rc;
}

/* ---- the rekey walk: its BLOB primitives ---------------------------------- */

static store_err be_blob_next_stored(store_tx *tx, int32_t after, int32_t *id)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_REWRITE_NEXT);
    bind_int(st, 1, after);
    store_err rc = step_row(c, st);
    *id = rc == STORE_OK ? col_i32(st, 0) : 0;
    return rc;
}

static store_err be_blob_set_stored(store_tx *tx, int32_t id, int64_t size, bool z, bool e)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_REWRITE_BLOB);
    bind_int(st, 1, id);
    bind_int(st, 2, size);
    bind_int(st, 3, z);
    bind_int(st, 4, e);
    return step_match(c, st);
}

/* ---- the project image library ------------------------------------------ */

static store_err be_lib_add(store_tx *tx, int32_t blob_id, int64_t now)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_LIB_ADD);
    bind_int(st, 1, blob_id);
    bind_int(st, 2, now);
    return step_done(c, st);
}

static store_err be_lib_next(store_tx *tx, int32_t after, int32_t *id)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_LIB_NEXT);
    bind_int(st, 1, after);
    store_err rc = step_row(c, st);
    *id = rc == STORE_OK ? col_i32(st, 0) : 0;
    return rc;
}

/* ---- SQL generation from the entity descriptors ------------------------- */

typedef enum { F_NAMES, F_PARAMS, F_ASSIGN, F_DDL } field_form;

/* The column declaration of field f. */
static const char *column_ddl(arena_t *a, const model_field *f)
{
    if (f->type == MODEL_FT_STRING)
        return "TEXT NOT NULL DEFAULT ''";
    if (f->ref >= 0) /* NULL = none, so the foreign key can hold */
        return arena_printf(a, "INTEGER REFERENCES %s(id) ON DELETE SET NULL",
                            model_entity((model_kind)f->ref)->table);
    return "INTEGER NOT NULL DEFAULT 0";
}

/* The fields of d joined by ", " in one form: "a, b", "?2, ?3",
 * "a = ?2, b = ?3" or column declarations. Field i is parameter ?(i + 2). */
static const char *field_list(arena_t *a, const model_entity_def *d, field_form form)
{
    const char *acc = "";
    for (int i = 0; i < d->nfields; i++) {
        const model_field *f = &d->fields[i];
        const char *sep = i > 0 ? ", " : "";
        switch (form) {
        case F_NAMES:
            acc = arena_printf(a, "%s%s%s", acc, sep, f->column);
            break;
        case F_PARAMS:
            acc = arena_printf(a, "%s%s?%d", acc, sep, i + 2);
            break;
        case F_ASSIGN:
            acc = arena_printf(a, "%s%s%s = ?%d", acc, sep, f->column, i + 2);
            break;
        case F_DDL:
            acc = arena_printf(a, "%s%s%s %s", acc, sep, f->column, column_ddl(a, f));
            break;
        }
    }
    return acc;
}

/* Fills the E_COUNT statements of kind k into sql[]. */
static void entity_sql(arena_t *a, model_kind k, const char **sql)
{
    const model_entity_def *d = model_entity(k);
    const char *t = d->table;
    assert(d->nfields >= 1);
    int now = d->nfields + 2; /* parameter number of the change time */
    /* a product's thumbnail link is in its own table (migrate_v5) */
    const char *thumb = k == MODEL_PRODUCT ? "thumb_blob_id" : "NULL";
    sql[E_GET] = arena_printf(
        a, "SELECT id, %s, image_blob_id, version, updated_ms, %s FROM %s WHERE id = ?1",
        field_list(a, d, F_NAMES), thumb, t);
    sql[E_INSERT] = arena_printf(a,
                                 "INSERT INTO %s(id, %s, version, updated_ms) VALUES(?1, %s, 1, ?%d) "
                                 "RETURNING version, updated_ms",
                                 t, field_list(a, d, F_NAMES), field_list(a, d, F_PARAMS), now);
    /* ?(now + 1): the version expected, -1 (STORE_ANY) for any */
    sql[E_UPDATE] = arena_printf(a,
                                 "UPDATE %s SET %s, version = version + 1, updated_ms = ?%d "
                                 "WHERE id = ?1 AND (?%d = -1 OR version = ?%d) "
                                 "RETURNING version, updated_ms",
                                 t, field_list(a, d, F_ASSIGN), now, now + 1, now + 1);
    sql[E_DELETE] = arena_printf(a,
                                 "DELETE FROM %s WHERE id = ?1 AND (?2 = -1 OR version = ?2) "
                                 "RETURNING image_blob_id, %s",
                                 t, thumb);
    /* max + 1; once the top id is taken, the lowest free one */
    sql[E_NEXT_ID] = arena_printf(
        a,
        "SELECT CASE WHEN coalesce(max(id), 0) < 2147483647 THEN coalesce(max(id), 0) + 1 "
        "WHEN NOT EXISTS (SELECT 1 FROM %s WHERE id = 1) THEN 1 "
        "ELSE (SELECT min(x.id) + 1 FROM %s x WHERE x.id < 2147483647 AND NOT EXISTS "
        "(SELECT 1 FROM %s y WHERE y.id = x.id + 1)) END FROM %s",
        t, t, t, t);
    sql[E_SET_BLOB] = arena_printf(a, "UPDATE %s SET image_blob_id = ?2 WHERE id = ?1", t);
}

/* The SQL condition "record x is linked": some entity's image, or a
 * product's thumbnail, is x. Each test is one lookup in a unique index. */
static const char *linked_cond(arena_t *a, const char *x)
{
    const char *acc = arena_printf(a, "EXISTS (SELECT 1 FROM product WHERE thumb_blob_id = %s)", x);
    for (int k = 0; k < MODEL_KIND_COUNT; k++)
        acc = arena_printf(a, "%s OR EXISTS (SELECT 1 FROM %s WHERE image_blob_id = %s)", acc,
                           model_entity((model_kind)k)->table, x);
    return acc;
}

/* Fills the G_COUNT statements into sql[]. */
static void blob_sql(arena_t *a, const char **sql)
{
    /* through the partial index blob_unlinked_ms; unlinked_ms alone would
     * do (see the invariants), the links are checked all the same. Bytes
     * and variants go by cascade. */
    sql[G_BLOB_SWEEP] = arena_printf(a, "DELETE FROM blob WHERE unlinked_ms < ?1 AND NOT (%s)",
                                     linked_cond(a, "blob.id"));
}

/* CREATE TABLE and indexes of kind k. */
static const char *entity_ddl(arena_t *a, model_kind k)
{
    const model_entity_def *d = model_entity(k);
    const char *t = d->table;
    const char *ddl =
        arena_printf(a,
                     "CREATE TABLE %s (id INTEGER PRIMARY KEY, %s, "
                     "image_blob_id INTEGER REFERENCES blob(id) ON DELETE SET NULL);\n"
                     "CREATE UNIQUE INDEX %s_image_blob_id ON %s(image_blob_id);\n",
                     t, field_list(a, d, F_DDL), t, t);
    for (int i = 0; i < d->nfields; i++) /* foreign keys want an index on the child */
        if (d->fields[i].type == MODEL_FT_INT && d->fields[i].ref >= 0)
            ddl = arena_printf(a, "%sCREATE INDEX %s_%s ON %s(%s);\n", ddl, t, d->fields[i].column,
                               t, d->fields[i].column);
    return ddl;
}

/* ---- schema migrations -------------------------------------------------- */

/* Version 1: the initial schema. Entity tables are derived from today's
 * descriptors; a later change to a descriptor needs a migration of its own
 * (ALTER TABLE), never an edit of this one. */
static store_err migrate_v1(struct conn *c, arena_t *a)
{
    const char *ddl =
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE, "
        "full_name TEXT NOT NULL DEFAULT '', role INTEGER NOT NULL DEFAULT 0, "
        "disabled INTEGER NOT NULL DEFAULT 0, pw_hash TEXT NOT NULL DEFAULT '', "
        "created_ms INTEGER NOT NULL);\n"
        "CREATE TABLE blob (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "description TEXT NOT NULL, extra_info TEXT NOT NULL, mime_type TEXT NOT NULL, "
        "conceptual_type TEXT NOT NULL, blob_size INTEGER NOT NULL, "
        "original_size INTEGER NOT NULL, is_zipped INTEGER NOT NULL, "
        "is_encrypted INTEGER NOT NULL, created_ms INTEGER NOT NULL, "
        "updated_ms INTEGER NOT NULL, created_by INTEGER NOT NULL, "
        "updated_by INTEGER NOT NULL, version INTEGER NOT NULL, "
        "info_version INTEGER NOT NULL);\n"
        "CREATE TABLE blob_data (blob_id INTEGER PRIMARY KEY "
        "REFERENCES blob(id) ON DELETE CASCADE, content BLOB NOT NULL);\n";
    for (int k = 0; k < MODEL_KIND_COUNT; k++)
        ddl = arena_printf(a, "%s%s", ddl, entity_ddl(a, (model_kind)k));
    int rc = sqlite3_exec(c->db, ddl, NULL, NULL, NULL);
    return rc == SQLITE_OK ? STORE_OK : sql_err(c, rc, "schema v1");
}

/* Version 2: entities carry a version and a change time, for ETag and
 * Last-Modified and conditional writes. */
static store_err migrate_v2(struct conn *c, arena_t *a)
{
    const char *ddl = "";
    for (int k = 0; k < MODEL_KIND_COUNT; k++) {
        const char *t = model_entity((model_kind)k)->table;
        ddl = arena_printf(a,
                           "%sALTER TABLE %s ADD COLUMN version INTEGER NOT NULL DEFAULT 1;\n"
                           "ALTER TABLE %s ADD COLUMN updated_ms INTEGER NOT NULL DEFAULT 0;\n",
                           ddl, t, t);
    }
    int rc = sqlite3_exec(c->db, ddl, NULL, NULL, NULL);
    return rc == SQLITE_OK ? STORE_OK : sql_err(c, rc, "schema v2");
}

/* Version 3: credentials (tickets, access tokens, sessions) and partner
 * applications, each kept as the hash of its secret. cred ids are
 * AUTOINCREMENT so that an id revoked by an operator is never handed to a
 * later token after a purge. */
static store_err migrate_v3(struct conn *c, arena_t *a)
{
    (void)a;
    const char *ddl =
        "CREATE TABLE cred (id INTEGER PRIMARY KEY AUTOINCREMENT, kind INTEGER NOT NULL, "
        "hash BLOB NOT NULL, "
        "user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, "
        "created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, "
        "revoked INTEGER NOT NULL DEFAULT 0, xsrf_hash BLOB, label TEXT NOT NULL DEFAULT '');\n"
        "CREATE UNIQUE INDEX cred_kind_hash ON cred(kind, hash);\n"
        "CREATE INDEX cred_user_id ON cred(user_id);\n"
        "CREATE TABLE app (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE, "
        "hash BLOB NOT NULL UNIQUE, created_ms INTEGER NOT NULL, "
        "revoked INTEGER NOT NULL DEFAULT 0);\n";
    int rc = sqlite3_exec(c->db, ddl, NULL, NULL, NULL);
    return rc == SQLITE_OK ? STORE_OK : sql_err(c, rc, "schema v3");
}

/* Version 4: variants (scaled/converted pictures, thumbnails) and server
 * metadata. A variant's bytes live apart in variant_data (as blob_data
 * does for blob): writing a use (last_used_ms) then rewrites a narrow row
 * instead of one carrying kilobytes -- measured 3-7 us per use instead of
 * 22-64 us for 2-20 KB variants. variant_lru serves eviction (pinned = 0,
 * oldest use first); the triggers keep variant_total, so that a put costs
 * O(evicted) rather than a SUM over every variant (0.25 ms at 1000). */
static store_err migrate_v4(struct conn *c, arena_t *a)
{
    (void)a;
    const char *ddl =
        "CREATE TABLE variant (id INTEGER PRIMARY KEY, "
        "blob_id INTEGER NOT NULL REFERENCES blob(id) ON DELETE CASCADE, "
        "version INTEGER NOT NULL, key TEXT NOT NULL, mime TEXT NOT NULL, "
        "is_zipped INTEGER NOT NULL, is_encrypted INTEGER NOT NULL, "
        "original_size INTEGER NOT NULL, size INTEGER NOT NULL, pinned INTEGER NOT NULL, "
        "last_used_ms INTEGER NOT NULL, UNIQUE(blob_id, key));\n"
        "CREATE INDEX variant_lru ON variant(pinned, last_used_ms);\n"
        "CREATE TABLE variant_data (variant_id INTEGER PRIMARY KEY "
        "REFERENCES variant(id) ON DELETE CASCADE, bytes BLOB NOT NULL);\n"
        "CREATE TABLE variant_total (id INTEGER PRIMARY KEY CHECK (id = 1), "
        "bytes INTEGER NOT NULL, count INTEGER NOT NULL);\n"
        "INSERT INTO variant_total(id, bytes, count) VALUES(1, 0, 0);\n"
        "CREATE TRIGGER variant_total_insert AFTER INSERT ON variant WHEN new.pinned = 0 "
        "BEGIN UPDATE variant_total SET bytes = bytes + new.size, count = count + 1; END;\n"
        "CREATE TRIGGER variant_total_delete AFTER DELETE ON variant WHEN old.pinned = 0 "
        "BEGIN UPDATE variant_total SET bytes = bytes - old.size, count = count - 1; END;\n"
        "CREATE TRIGGER variant_total_update AFTER UPDATE OF size, pinned ON variant "
        "BEGIN UPDATE variant_total SET "
        "bytes = bytes - (old.pinned = 0) * old.size + (new.pinned = 0) * new.size, "
        "count = count - (old.pinned = 0) + (new.pinned = 0); END;\n"
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB);\n";
    int rc = sqlite3_exec(c->db, ddl, NULL, NULL, NULL);
    return rc == SQLITE_OK ? STORE_OK : sql_err(c, rc, "schema v4");
}

/* Version 5: the BLOB agent. A record made through it stays unlinked until
 * an entity takes it; unlinked_ms says since when (NULL: linked, as every
 * record before this version is), and the partial index finds the ones to
 * sweep without reading the linked majority. A product may hold a
 * thumbnail record of its own: thumbnails are products' alone, hence the
 * table named here. Both references are to blob rows, so their foreign
 * keys need foreign_keys=ON (conn_open checks it). */
static store_err migrate_v5(struct conn *c, arena_t *a)
{
    (void)a;
    const char *ddl =
        "ALTER TABLE blob ADD COLUMN unlinked_ms INTEGER;\n"
        "CREATE INDEX blob_unlinked_ms ON blob(unlinked_ms) WHERE unlinked_ms IS NOT NULL;\n"
        "ALTER TABLE product ADD COLUMN thumb_blob_id INTEGER "
        "REFERENCES blob(id) ON DELETE SET NULL;\n"
        "CREATE UNIQUE INDEX product_thumb_blob_id ON product(thumb_blob_id);\n";
    int rc = sqlite3_exec(c->db, ddl, NULL, NULL, NULL);
    return rc == SQLITE_OK ? STORE_OK : sql_err(c, rc, "schema v5");
}

/* Version 6: a login issues a ticket and a session together, and ending
 * one ends the other (logout): the session names its ticket. Credentials
 * of earlier versions are paired with nothing. */
static store_err migrate_v6(struct conn *c, arena_t *a)
{
    (void)a;
    const char *ddl = "ALTER TABLE cred ADD COLUMN pair_id INTEGER;\n"
                      "CREATE INDEX cred_pair_id ON cred(pair_id) WHERE pair_id IS NOT NULL;\n";
    int rc = sqlite3_exec(c->db, ddl, NULL, NULL, NULL);
    return rc == SQLITE_OK ? STORE_OK : sql_err(c, rc, "schema v6");
}

/* Version 7: the indexes of entity lists (be_ent_list): each string
 * field with the id, case-insensitively, for ORDER BY it and the name
 * filter's prefix range. */
static store_err migrate_v7(struct conn *c, arena_t *a)
{
    const char *ddl = "";
    for (int k = 0; k < MODEL_KIND_COUNT; k++) {
        const model_entity_def *d = model_entity((model_kind)k);
        for (int i = 0; i < d->nfields; i++) {
            const char *col = d->fields[i].column;
            if (d->fields[i].type == MODEL_FT_STRING)
                ddl = arena_printf(a, "%sCREATE INDEX %s_%s_list ON %s(%s COLLATE NOCASE, id);\n",
                                   ddl, d->table, col, d->table, col);
        }
    }
    int rc = sqlite3_exec(c->db, ddl, NULL, NULL, NULL);
    return rc == SQLITE_OK ? STORE_OK : sql_err(c, rc, "schema v7");
}

/* Version 8: the project image library (store_library.c): the records
 * offered when choosing a project's image, each row going with its record. */
static store_err migrate_v8(struct conn *c, arena_t *a)
{
    (void)a;
    const char *ddl = "CREATE TABLE project_library (blob_id INTEGER PRIMARY KEY "
                      "REFERENCES blob(id) ON DELETE CASCADE, added_ms INTEGER NOT NULL);\n";
    int rc = sqlite3_exec(c->db, ddl, NULL, NULL, NULL);
    return rc == SQLITE_OK ? STORE_OK : sql_err(c, rc, "schema v8");
}

/* Version 9: batch tasks (store.h): what BatchTaskInfo shows, the claim
 * of the server running one (server, lease_ms), its stop flag and its
 * output record (linked; deleted with the task by store_task.c). */
static store_err migrate_v9(struct conn *c, arena_t *a)
{
    (void)a;
    const char *ddl =
        "CREATE TABLE batch_task (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "description TEXT NOT NULL DEFAULT '', params TEXT NOT NULL DEFAULT '{}', "
        "associate_id INTEGER NOT NULL, state INTEGER NOT NULL, "
        "percent INTEGER NOT NULL DEFAULT 0, progress TEXT NOT NULL DEFAULT '', "
        "result TEXT NOT NULL DEFAULT '', response TEXT NOT NULL DEFAULT '', "
        "file_name TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL, started_ms INTEGER, "
        "finished_ms INTEGER, start_count INTEGER NOT NULL DEFAULT 0, "
        "server TEXT NOT NULL DEFAULT '', lease_ms INTEGER NOT NULL DEFAULT 0, "
        "stop INTEGER NOT NULL DEFAULT 0, "
        "output_blob INTEGER REFERENCES blob(id) ON DELETE SET NULL);\n"
        "CREATE INDEX batch_task_state ON batch_task(state, id);\n";
    int rc = sqlite3_exec(c->db, ddl, NULL, NULL, NULL);
    return rc == SQLITE_OK ? STORE_OK : sql_err(c, rc, "schema v9");
}

/* Version 10: the files of batch tasks (store.h, store_file.c): an
 * output's parts and an import's input, each a blob row whose bytes are
 * pieces in blob_piece (blob_data holds at most SQLite's 1e9-byte value);
 * task_id NULL: an input no task has taken yet. A task's files are
 * deleted with it by the recipe (the reference keeps that from being
 * forgotten). batch_task is made again with AUTOINCREMENT, its rows
 * kept: a deleted task's id is never given to another (a client's stale
 * id must not reach another task's output), as on PostgreSQL. */
static store_err migrate_v10(struct conn *c, arena_t *a)
{
    (void)a;
    const char *ddl =
        "CREATE TABLE batch_task_v10 (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, "
        "description TEXT NOT NULL DEFAULT '', params TEXT NOT NULL DEFAULT '{}', "
        "associate_id INTEGER NOT NULL, state INTEGER NOT NULL, "
        "percent INTEGER NOT NULL DEFAULT 0, progress TEXT NOT NULL DEFAULT '', "
        "result TEXT NOT NULL DEFAULT '', response TEXT NOT NULL DEFAULT '', "
        "file_name TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL, started_ms INTEGER, "
        "finished_ms INTEGER, start_count INTEGER NOT NULL DEFAULT 0, "
        "server TEXT NOT NULL DEFAULT '', lease_ms INTEGER NOT NULL DEFAULT 0, "
        "stop INTEGER NOT NULL DEFAULT 0, "
        "output_blob INTEGER REFERENCES blob(id) ON DELETE SET NULL);\n"
        "INSERT INTO batch_task_v10 SELECT id, name, description, params, associate_id, state, "
        "percent, progress, result, response, file_name, created_ms, started_ms, finished_ms, "
        "start_count, server, lease_ms, stop, output_blob FROM batch_task;\n"
        "DROP TABLE batch_task;\n"
        "ALTER TABLE batch_task_v10 RENAME TO batch_task;\n"
        "CREATE INDEX batch_task_state ON batch_task(state, id);\n"
        "CREATE TABLE batch_file (blob_id INTEGER PRIMARY KEY REFERENCES blob(id) "
        "ON DELETE CASCADE, task_id INTEGER REFERENCES batch_task(id), "
        "kind INTEGER NOT NULL, part INTEGER NOT NULL, done INTEGER NOT NULL);\n"
        "CREATE INDEX batch_file_task ON batch_file(task_id, kind, part);\n"
        "CREATE TABLE blob_piece (id INTEGER PRIMARY KEY, blob_id INTEGER NOT NULL "
        "REFERENCES blob(id) ON DELETE CASCADE, n INTEGER NOT NULL, bytes BLOB NOT NULL);\n"
        "CREATE UNIQUE INDEX blob_piece_n ON blob_piece(blob_id, n);\n";
    int rc = sqlite3_exec(c->db, ddl, NULL, NULL, NULL);
    return rc == SQLITE_OK ? STORE_OK : sql_err(c, rc, "schema v10");
}

typedef store_err (*migration_fn)(struct conn *c, arena_t *a);

/* migrations[i] takes the schema from version i to i + 1. Append only. */
static const migration_fn migrations[] = {migrate_v1, migrate_v2, migrate_v3, migrate_v4,
                                          migrate_v5, migrate_v6, migrate_v7, migrate_v8,
                                          migrate_v9, migrate_v10};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* The value of a pragma that reads one integer ("PRAGMA user_version"). */
static store_err pragma_int(struct conn *c, const char *pragma, int *value)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, pragma, -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *value = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? STORE_OK : sql_err(c, rc, pragma);
}

/* Runs migration `v` and records version v + 1, in the caller's transaction. */
static store_err migrate_one(struct conn *c, arena_t *a, int v)
{
    char pragma[64];
    store_err rc = migrations[v](c, a);
    if (rc != STORE_OK)
        return rc;
    snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v + 1);
    int src = sqlite3_exec(c->db, pragma, NULL, NULL, NULL);
    if (src != SQLITE_OK)
        return sql_err(c, src, pragma);
    log_info("store: database schema migrated to version %d", v + 1);
    return STORE_OK;
}

/* Brings the schema to SCHEMA_VERSION in one write transaction (so that two
 * processes opening a new file at once do not both migrate). Runs before
 * any statement is prepared, hence sqlite3_exec. */
static store_err migrate(struct conn *c, arena_t *a)
{
    int version = 0;
    store_err rc = STORE_OK;
    int src = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (src != SQLITE_OK)
        return sql_err(c, src, "BEGIN IMMEDIATE for migration");
    if ((rc = pragma_int(c, "PRAGMA user_version", &version)) != STORE_OK)
        goto out;
    if (version > SCHEMA_VERSION) {
        log_error("store: database schema version %d is newer than this server's (%d)", version,
                  SCHEMA_VERSION);
        rc = STORE_INTERNAL;
        goto out;
    }
    for (int v = version; v < SCHEMA_VERSION && rc == STORE_OK; v++)
        rc = migrate_one(c, a, v);
out:
    src = sqlite3_exec(c->db, rc == STORE_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    if (rc == STORE_OK && src != SQLITE_OK)
        rc = sql_err(c, src, "COMMIT of migration");
    return rc;
}

/* ---- open and close ----------------------------------------------------- */

/* journal_mode=WAL persists in the file; a file system that refuses it
 * (no shared memory) cannot give our concurrency, so it is an error. */
static store_err set_wal(struct conn *c)
{
    sqlite3_stmt *st = NULL;
    store_err rc = STORE_OK;
    int src = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        if (mode == NULL || strcmp(mode, "wal") != 0) {
            log_error("store: journal_mode=WAL refused (mode %s)", mode ? mode : "?");
            rc = STORE_INTERNAL;
        }
    } else {
        rc = sql_err(c, src, "PRAGMA journal_mode");
    }
    sqlite3_finalize(st);
    return rc;
}

/* Opens c's database handle with the per-connection settings. */
static store_err conn_open(struct conn *c, const char *path)
{
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    static const char pragmas[] = "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";
    int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        log_error("store: cannot open %s: %s", path,
                  c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        return STORE_UNAVAILABLE;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    rc = sqlite3_exec(c->db, pragmas, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sql_err(c, rc, pragmas);
    /* a build without foreign keys would ignore the pragma, and deleting a
     * blob row would then leave links to it and its bytes behind */
    int fk = 0;
    store_err err = pragma_int(c, "PRAGMA foreign_keys", &fk);
    if (err != STORE_OK)
        return err;
    if (fk != 1) {
        log_error("store: this SQLite does not enforce foreign keys");
        return STORE_INTERNAL;
    }
    return STORE_OK;
}

/* The columns of a BLOB_COLS statement are blob_col_names, in order. */
/* STORE_INTERNAL (logged) unless the columns of st are `names`, in order. */
static store_err check_cols(sqlite3_stmt *st, const char *const *names, int count, const char *what)
{
    int n = sqlite3_column_count(st);
    for (int i = 0; i < count || i < n; i++) {
        const char *name = i < n ? sqlite3_column_name(st, i) : "(none)";
        if (i >= count || strcmp(name, names[i]) != 0) {
            log_error("store: %s column %d is %s, not %s", what, i, name,
                      i < count ? names[i] : "(none)");
            return STORE_INTERNAL;
        }
    }
    return STORE_OK;
}

/* Prepares every statement of c, once for the connection's lifetime. */
static store_err conn_prepare(struct conn *c)
{
    for (int i = 0; i < Q_COUNT; i++) {
        int rc = sqlite3_prepare_v3(c->db, c->owner->sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                    &c->q[i], NULL);
        if (rc != SQLITE_OK)
            return sql_err(c, rc, c->owner->sql[i]);
    }
    store_err rc = check_cols(c->q[Q_BLOB_GET], blob_col_names, BCOL__COUNT, "BLOB_COLS");
    if (rc == STORE_OK)
        rc = check_cols(c->q[Q_USER_GET], user_col_names, UCOL__COUNT, "USER_COLS");
    if (rc == STORE_OK)
        rc = check_cols(c->q[Q_CRED_FIND], cred_col_names, CCOL__COUNT, "CRED_COLS");
    if (rc == STORE_OK)
        rc = check_cols(c->q[Q_APP_FIND], app_col_names, ACOL__COUNT, "APP_COLS");
    return rc;
}

static void conn_close(struct conn *c)
{
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(c->q[i]);
    if (sqlite3_close(c->db) != SQLITE_OK)
        log_error("sqlite: close: %s", sqlite3_errmsg(c->db));
    *c = (struct conn){0};
}

static void sq_close(struct sq_store *s)
{
    assert(s->nidle + (s->group != NULL) == s->nconns); /* no call in progress */
    group_destroy(s);
    walsync_destroy(s);
    for (int i = 0; i < s->nconns; i++)
        conn_close(&s->conns[i]);
    free(s->conns);
    arena_destroy(s->sql_arena);
    pthread_cond_destroy(&s->pool_cv);
    pthread_mutex_destroy(&s->pool_mu);
    pthread_mutex_destroy(&s->write_mu);
    if (s->changes != NULL) /* the mapping of "<path>-changes" */
        munmap((void *)s->changes, CHANGES_MAP_BYTES);
    if (s->changes_fd >= 0)
        close(s->changes_fd);
    pthread_mutex_destroy(&s->changes_mu);
    free(s->changes_path);
    if (s->hold_fd >= 0)
        close(s->hold_fd);
    free(s->path);
    free(s->dir);
    free(s);
}

static bool sq_changes_check(struct sq_store *s);
static const char *sq_spool_hint(struct sq_store *s);
static store_err sq_hold(struct sq_store *s, store_hold_mode h);

/* ---- the backend interface's table (store_backend.h) --------------------- */

static void be_close(store_be *b)
{
    sq_close(be_sq(b));
}

static store_err be_ping(store_be *b, char *why, size_t cap)
{
    return sq_ping(be_sq(b), why, cap);
}

static void be_describe(store_be *b, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", be_sq(b)->path);
}

static const char *be_spool_hint(store_be *b)
{
    return sq_spool_hint(be_sq(b));
}

static store_err be_hold(store_be *b, store_hold_mode h)
{
    return sq_hold(be_sq(b), h);
}

static _Atomic uint64_t *be_counts(store_be *b)
{
    return be_sq(b)->changes;
}

static bool be_counts_check(store_be *b)
{
    return sq_changes_check(be_sq(b));
}

/* ---- copying a data set (store_copy.c) -----------------------------------
 * Statements generated from store_copy_def's column lists, prepared for
 * the call and finalized after it (a copy runs each a few thousand times:
 * the preparing is noise beside the rows). Picture bytes go through
 * sqlite3_blob a piece at a time, as content_put/content_get do; these six
 * stand in for the picture-bytes section's pic_* until SQLite has them. */

/* "a, b, c" or "?1, ?2, ?3" for d's columns into buf. */
static void copy_list(const store_copy_def *d, bool params, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < d->ncols && used < cap; i++) {
        int n = params ? snprintf(buf + used, cap - used, "%s?%d", i ? ", " : "", i + 1)
                       : snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", d->col[i]);
        used += n > 0 ? (size_t)n : 0;
    }
    assert(used < cap);
}

/* sql prepared on c for this call (finalized by the caller). */
static store_err copy_prepare(struct conn *c, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(c->db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? STORE_OK : sql_err(c, rc, sql);
}

/* The one integer sql answers. */
static store_err copy_int(struct conn *c, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    store_err rc = copy_prepare(c, sql, &st);
    if (rc == STORE_OK && (rc = step_row(c, st)) == STORE_OK)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc;
}

static store_err be_copy_count(store_tx *tx, store_copy_table t, int64_t *n)
{
    const store_copy_def *d = store_copy_def_of(t);
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE %s", d->name,
             d->only ? d->only : "1");
    return copy_int(tx_conn(tx), sql, n);
}

/* Value v bound as parameter i of kind k. */
static void copy_bind(sqlite3_stmt *st, int i, store_col_kind k, const store_copy_val *v)
{
    int rc = SQLITE_OK;
    if (v->null)
        rc = sqlite3_bind_null(st, i);
    else if (k == STORE_COL_INT)
        rc = sqlite3_bind_int64(st, i, v->i);
    else if (k == STORE_COL_TEXT)
        rc = sqlite3_bind_text(st, i, v->p ? v->p : "", (int)v->n, SQLITE_STATIC);
    else
        rc = sqlite3_bind_blob(st, i, v->p ? v->p : "", (int)v->n, SQLITE_STATIC);
    assert(rc == SQLITE_OK);
    (void)rc;
}

/* Column i of st as a value of kind k, strings and bytes copied into a. */
static void copy_col(arena_t *a, sqlite3_stmt *st, int i, store_col_kind k, store_copy_val *v)
{
    *v = (store_copy_val){.null = sqlite3_column_type(st, i) == SQLITE_NULL};
    if (v->null)
        return;
    if (k == STORE_COL_INT) {
        v->i = sqlite3_column_int64(st, i);
        return;
    }
    const void *p =
        k == STORE_COL_TEXT ? (const void *)sqlite3_column_text(st, i) : sqlite3_column_blob(st, i);
    v->n = (size_t)sqlite3_column_bytes(st, i);
    char *copy = arena_alloc(a, v->n + 1);
    if (v->n > 0)
        memcpy(copy, p, v->n);
    copy[v->n] = '\0';
    v->p = copy;
}

static store_err be_copy_next(store_tx *tx, store_copy_table t, const store_copy_val *after,
                              arena_t *a, store_copy_row *rows, int max, int *n)
{
    const store_copy_def *d = store_copy_def_of(t);
    struct conn *c = tx_conn(tx);
    char cols[1024], sql[1600];
    sqlite3_stmt *st = NULL;
    const char *only = d->only ? d->only : "1";
    *n = 0;
    copy_list(d, false, cols, sizeof(cols));
    if (after != NULL)
        snprintf(sql, sizeof(sql), "SELECT %s FROM %s WHERE %s > ?1 AND %s ORDER BY %s LIMIT ?2",
                 cols, d->name, d->col[0], only, d->col[0]);
    else
        snprintf(sql, sizeof(sql), "SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT ?2", cols, d->name,
                 only, d->col[0]);
    store_err rc = copy_prepare(c, sql, &st);
    if (rc == STORE_OK && after != NULL)
        copy_bind(st, 1, d->kind[0], after);
    if (rc == STORE_OK)
        bind_int(st, 2, max);
    while (rc == STORE_OK && *n < max && (rc = step_row(c, st)) == STORE_OK) {
        for (int i = 0; i < d->ncols; i++)
            copy_col(a, st, i, d->kind[i], &rows[*n].v[i]);
        (*n)++;
    }
    sqlite3_finalize(st);
    return rc == STORE_ABSENT ? STORE_OK : rc;
}

static store_err be_copy_put(store_tx *tx, store_copy_table t, const store_copy_row *rows, int n)
{
    const store_copy_def *d = store_copy_def_of(t);
    struct conn *c = tx_conn(tx);
    char cols[1024], params[256], sql[1400];
    sqlite3_stmt *st = NULL;
    copy_list(d, false, cols, sizeof(cols));
    copy_list(d, true, params, sizeof(params));
    snprintf(sql, sizeof(sql), "INSERT INTO %s(%s) VALUES(%s)", d->name, cols, params);
    store_err rc = copy_prepare(c, sql, &st);
    for (int r = 0; r < n && rc == STORE_OK; r++) {
        sqlite3_reset(st);
        for (int i = 0; i < d->ncols; i++)
            copy_bind(st, i + 1, d->kind[i], &rows[r].v[i]);
        rc = step_done(c, st);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Variants first (their totals follow by trigger), the target's batch
 * tasks (a copy carries none: they are the jobs of the servers that ran
 * them), entities before the records they link, credentials before their
 * users. */
static store_err be_copy_clear(store_tx *tx)
{
    struct conn *c = tx_conn(tx);
    char sql[1024] = "DELETE FROM variant; DELETE FROM batch_file; DELETE FROM batch_task;";
    size_t used = strlen(sql);
    for (int k = 0; k < MODEL_KIND_COUNT && used < sizeof(sql); k++)
        used += (size_t)snprintf(sql + used, sizeof(sql) - used, "DELETE FROM %s;",
                                 model_entity((model_kind)k)->table);
    snprintf(sql + used, sizeof(sql) - used,
             "DELETE FROM blob; DELETE FROM cred; DELETE FROM app; DELETE FROM users; "
             "DELETE FROM meta; DELETE FROM sqlite_sequence WHERE name IN ('blob', 'cred');");
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? STORE_OK : sql_err(c, rc, "copy_clear");
}

/* blob and cred are AUTOINCREMENT: sqlite_sequence keeps their high mark. */
static bool copy_autoinc(store_copy_table t)
{
    return t == STORE_COPY_BLOB || t == STORE_COPY_CRED;
}

static store_err be_ids_high(store_tx *tx, store_copy_table t, int64_t *hw)
{
    const char *name = store_copy_def_of(t)->name;
    char sql[256];
    if (copy_autoinc(t))
        snprintf(sql, sizeof(sql),
                 "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = '%s'), 0), "
                 "coalesce((SELECT max(id) FROM %s), 0))",
                 name, name);
    else
        snprintf(sql, sizeof(sql), "SELECT coalesce(max(id), 0) FROM %s", name);
    return copy_int(tx_conn(tx), sql, hw);
}

static store_err be_ids_settle(store_tx *tx, store_copy_table t, int64_t hw)
{
    const char *name = store_copy_def_of(t)->name;
    struct conn *c = tx_conn(tx);
    char sql[384];
    if (!copy_autoinc(t))
        return STORE_OK; /* the next rowid is max(id) + 1 */
    snprintf(sql, sizeof(sql),
             "UPDATE sqlite_sequence SET seq = max(seq, %lld) WHERE name = '%s';"
             "INSERT INTO sqlite_sequence(name, seq) SELECT '%s', %lld "
             "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = '%s');",
             (long long)hw, name, name, (long long)hw, name);
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? STORE_OK : sql_err(c, rc, "ids_settle");
}

/* ---- backup and check ------------------------------------------------------
 * The online backup API copies pages from tx's connection, which holds a
 * read transaction for the whole copy: every step reads the same WAL
 * snapshot (a step never restarts because a server wrote meanwhile, and
 * the server's writers are never blocked: WAL readers do not block them). */

#define BACKUP_STEP_PAGES 256 /* 1 MiB at 4 KiB pages; a progress step */

/* The error of a backup's destination connection, logged. */
static store_err backup_err(sqlite3 *dst, int rc, const char *path)
{
    log_error("backup: %s: %s (%d)", path, dst != NULL ? sqlite3_errmsg(dst) : "", rc);
    return (rc & 0xff) == SQLITE_FULL ? STORE_NO_SPACE : STORE_INTERNAL;
}

/* Every step of the copy of c's database into dst. */
static int backup_steps(struct conn *c, sqlite3 *dst, void (*fn)(void *, int64_t, int64_t),
                        void *ctx)
{
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", c->db, "main");
    if (b == NULL)
        return sqlite3_errcode(dst);
    int rc;
    do {
        rc = sqlite3_backup_step(b, BACKUP_STEP_PAGES);
        int total = sqlite3_backup_pagecount(b);
        if (fn != NULL)
            fn(ctx, total - sqlite3_backup_remaining(b), total);
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
            sqlite3_sleep(10);
    } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
    int fin = sqlite3_backup_finish(b);
    return rc == SQLITE_DONE ? fin : rc;
}

/* PRAGMA quick_check of the copy answers "ok". */
static int backup_checked(sqlite3 *dst)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(dst, "PRAGMA quick_check", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        rc = t != NULL && strcmp(t, "ok") == 0 ? SQLITE_OK : SQLITE_CORRUPT;
    }
    sqlite3_finalize(st);
    return rc;
}

static store_err be_backup_to(store_tx *tx, const char *path,
                              void (*fn)(void *ctx, int64_t done, int64_t total), void *ctx)
{
    struct conn *c = tx_conn(tx);
    sqlite3 *dst = NULL;
    int64_t n = 0;
    /* a first read fixes the snapshot every step copies */
    store_err rc = copy_int(c, "SELECT count(*) FROM sqlite_master", &n);
    if (rc != STORE_OK)
        return rc;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600); /* the owner's alone */
    if (fd < 0) {
        log_error("backup: cannot create %s: %s", path, strerror(errno));
        return errno == ENOSPC ? STORE_NO_SPACE : STORE_INTERNAL;
    }
    close(fd);
    int r = sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE, NULL);
    if (r == SQLITE_OK)
        r = backup_steps(c, dst, fn, ctx);
    if (r == SQLITE_OK)
        r = backup_checked(dst);
    if (r != SQLITE_OK)
        rc = backup_err(dst, r, path);
    if (sqlite3_close(dst) != SQLITE_OK && rc == STORE_OK)
        rc = STORE_INTERNAL;
    if (rc == STORE_OK && io_fsync_path(path) != 0) {
        log_error("backup: cannot flush %s to disk: %s", path, strerror(errno));
        rc = STORE_INTERNAL;
    }
    return rc;
}

/* Each row of sql's first column that is not "ok", said as a problem;
 * an error of the statement itself (a page too damaged to walk) too. */
static store_err check_rows(struct conn *c, const char *sql, const char *label,
                            void (*say)(void *, bool, const char *), void *ctx)
{
    sqlite3_stmt *st = NULL;
    char line[1024];
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        while (t != NULL && *t != '\0' && strcmp(t, "ok") != 0) { /* a row may hold lines */
            size_t n = strcspn(t, "\n");
            snprintf(line, sizeof(line), "database: %s: %.*s", label, (int)n, t);
            if (strncmp(t, "*** in database", 15) != 0) /* a heading, not a finding */
                say(ctx, true, line);
            t += n + (t[n] == '\n');
        }
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_DONE) {
        snprintf(line, sizeof(line), "database: %s stopped: %s", label, sqlite3_errmsg(c->db));
        say(ctx, true, line);
    }
    sqlite3_finalize(st);
    return STORE_OK;
}

/* PRAGMA foreign_key_check: every reference (a link to a BLOB record, a
 * picture's bytes to their record, a variant to its BLOB, a credential to
 * its user, a reference field) that names a missing row. */
static store_err check_references(struct conn *c, void (*say)(void *, bool, const char *),
                                  void *ctx)
{
    static const char sql[] =
        "SELECT f.\"table\" || ' ' || coalesce(f.rowid, '?') || ': ' || l.\"from\" || ' names "
        "a row of ' || f.parent || ' that does not exist' FROM pragma_foreign_key_check f "
        "JOIN pragma_foreign_key_list(f.\"table\") l ON l.id = f.fkid";
    return check_rows(c, sql, "a reference", say, ctx);
}

static store_err be_integrity(store_tx *tx, bool quick,
                              void (*say)(void *ctx, bool problem, const char *line), void *ctx)
{
    struct conn *c = tx_conn(tx);
    check_rows(c, quick ? "PRAGMA quick_check(100)" : "PRAGMA integrity_check(100)",
               quick ? "quick_check" : "integrity_check", say, ctx);
    return check_references(c, say, ctx);
}

static store_err be_task_update(store_tx *tx, const store_task *was, const char *description,
                                const char *params)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = query(c, Q_TASK_UPDATE);
    bind_int(st, 1, was->id);
    bind_int(st, 2, was->state);
    bind_text(st, 3, was->description);
    bind_text(st, 4, was->params);
    bind_text(st, 5, description);
    bind_text(st, 6, params);
    return step_match(c, st);
}

/* A page of tasks: one statement made for the query (its terms and keys
 * vary). ?1 limit, ?2 offset, ?3 the owner (< 0: any), ?4.. the terms'
 * values. Text compares and sorts with NOCASE (ASCII). */
static const char *const task_cmp_sql[] = {"=", "<>", "<", "<=", ">", ">="};

static const char *task_page_sql(arena_t *a, const store_task_page_query *q)
{
    const char *where = "", *order = "";
    for (int i = 0; i < q->nterms; i++) {
        const store_task_term *t = &q->terms[i];
        const char *col = store_task_column(t->field);
        if (t->op == STORE_CMP_BEGINS)
            where = arena_printf(a, "%s AND substr(%s, 1, length(?%d)) = ?%d COLLATE NOCASE", where,
                                 col, i + 4, i + 4);
        else
            where = arena_printf(a, "%s AND %s%s %s ?%d", where, col,
                                 store_task_field_is_text(t->field) ? " COLLATE NOCASE" : "",
                                 task_cmp_sql[t->op], i + 4);
    }
    for (int i = 0; i < q->nkeys; i++) {
        store_task_field f = (store_task_field)q->keys[i].field;
        order = arena_printf(a, "%s%s%s%s %s", order, i ? ", " : "", store_task_column(f),
                             store_task_field_is_text(f) ? " COLLATE NOCASE" : "",
                             q->keys[i].desc ? "DESC" : "ASC");
    }
    return arena_printf(a,
                        "SELECT " TASK_COLS
                        " FROM batch_task WHERE (?3 < 0 OR associate_id = ?3)%s "
                        "ORDER BY %s LIMIT ?1 OFFSET ?2",
                        where, order);
}

static store_err be_task_page(store_tx *tx, arena_t *a, const store_task_page_query *q, int limit,
                              store_task *rows, int *n)
{
    struct conn *c = tx_conn(tx);
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(c->db, task_page_sql(a, q), -1, &st, NULL);
    store_err rc = src == SQLITE_OK ? STORE_OK : sql_err(c, src, "task page");
    *n = 0;
    if (rc == STORE_OK) {
        bind_int(st, 1, limit);
        bind_int(st, 2, q->skip);
        bind_int(st, 3, q->associate);
        for (int i = 0; i < q->nterms; i++)
            if (store_task_field_is_text(q->terms[i].field))
                bind_text(st, i + 4, q->terms[i].text);
            else
                bind_int(st, i + 4, q->terms[i].num);
    }
    while (rc == STORE_OK && *n < limit && (rc = step_row(c, st)) == STORE_OK)
        read_task(a, st, &rows[(*n)++]);
    sqlite3_finalize(st);
    return rc == STORE_ABSENT ? STORE_OK : rc;
}

static const struct store_be_ops sqlite_be_ops = {
    /* ---- life, health, identity ---- */
    .close = be_close,
    .ping = be_ping,
    .describe = be_describe,
    .spool_hint = be_spool_hint,
    .hold = be_hold,

    /* ---- transactions ---- */
    .begin = be_begin,
    .end = be_end,
    .xlock = be_xlock,
    .scope_wait = group_scope_wait,

    /* ---- change notification ---- */
    .counts = be_counts,
    .counts_check = be_counts_check,
    .users_stamp = be_users_stamp,
    /* users_bump: none (the counts file moves instead) */

    /* ---- users ---- */
    .user_insert = be_user_insert,
    .user_read = be_user_read,
    .user_list = be_user_list,
    .user_count = be_user_count,
    .user_set = be_user_set,

    /* ---- credentials, partner apps, metadata ---- */
    .cred_insert = be_cred_insert,
    .cred_find = be_cred_find,
    .cred_list = be_cred_list,
    .cred_revoke = be_cred_revoke,
    .cred_revoke_pair = be_cred_revoke_pair,
    .cred_revoke_user = be_cred_revoke_user,
    .cred_purge = be_cred_purge,
    .app_insert = be_app_insert,
    .app_find = be_app_find,
    .app_list = be_app_list,
    .app_revoke = be_app_revoke,
    .meta_get = be_meta_get,
    .meta_put = be_meta_put,

    /* ---- entities ---- */
    .ent_read = be_ent_read,
    .ent_list = be_ent_list,
    .ent_next_id = be_ent_next_id,
    .ent_insert = be_ent_insert,
    .ent_update = be_ent_update,
    .ent_delete = be_ent_delete,
    .ent_set_image = be_ent_set_image,
    .ent_set_thumb = be_ent_set_thumb,

    /* ---- BLOB records ---- */
    .image_read = be_image_read,
    .blob_read = be_blob_read,
    .blob_insert = be_blob_insert,
    .blob_set_info = be_blob_set_info,
    .blob_set_content = be_blob_set_content,
    .blob_claim = be_blob_claim,
    .blob_unlink = be_blob_unlink,
    .blob_delete = be_blob_delete,
    .blob_sweep = be_blob_sweep,
    .blob_set_stored = be_blob_set_stored,
    .blob_next_stored = be_blob_next_stored,
    .lib_add = be_lib_add,
    .lib_next = be_lib_next,

    /* ---- picture bytes ---- */
    .file_insert = be_file_insert,
    .file_read = be_file_read,
    .file_list = be_file_list,
    .file_done = be_file_done,
    .file_bind = be_file_bind,
    .file_release = be_file_release,
    .file_stale = be_file_stale,
    .file_release_stale = be_file_release_stale,
    .piece_drop = be_piece_drop,
    .piece_put = be_piece_put,
    .piece_get = be_piece_get,
    .pic_write_open = be_pic_write_open,
    .pic_write = be_pic_write,
    .pic_write_close = be_pic_write_close,
    .pic_read_open = be_pic_read_open,
    .pic_read = be_pic_read,
    .pic_read_close = be_pic_read_close,

    /* ---- variants ---- */
    .var_read = be_var_read,
    .var_upsert = be_var_upsert,
    .var_touch = be_var_touch,
    .var_totals = be_var_totals,
    .var_lru = be_var_lru,
    .var_delete = be_var_delete,
    .var_delete_stale = be_var_delete_stale,
    .var_next = be_var_next,
    .var_set_stored = be_var_set_stored,

    /* copying a data set */
    .copy_count = be_copy_count,
    .copy_next = be_copy_next,
    .copy_put = be_copy_put,
    .copy_clear = be_copy_clear,
    .ids_high = be_ids_high,
    .ids_settle = be_ids_settle,

    /* backup and check */
    .backup_to = be_backup_to,
    .integrity = be_integrity,
    .task_insert = be_task_insert,
    .task_read = be_task_read,
    .task_list = be_task_list,
    .task_next_new = be_task_next_new,
    .task_claim = be_task_claim,
    .task_beat = be_task_beat,
    .task_finish = be_task_finish,
    .task_fail_new = be_task_fail_new,
    .task_set_stop = be_task_set_stop,
    .task_delete = be_task_delete,
    .task_reap = be_task_reap,
    .task_expired = be_task_expired,
    .task_update = be_task_update,
    .task_page = be_task_page,
};

/* A store with no connection yet and every SQL text generated. */
static struct sq_store *sq_new(int pool_size)
{
    struct sq_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->conns = calloc((size_t)pool_size, sizeof(*s->conns));
    if (s->conns == NULL) {
        free(s);
        return NULL;
    }
    s->be.ops = &sqlite_be_ops;
    s->capacity = pool_size;
    s->sql_arena = arena_create();
    pthread_mutex_init(&s->pool_mu, NULL);
    pthread_cond_init(&s->pool_cv, NULL);
    pthread_mutex_init(&s->write_mu, NULL);
    pthread_mutex_init(&s->changes_mu, NULL);
    s->changes_fd = -1;
    s->hold_fd = -1;
    for (int i = 0; i < Q_FIXED_COUNT; i++)
        s->sql[i] = fixed_sql[i];
    for (int k = 0; k < MODEL_KIND_COUNT; k++)
        entity_sql(s->sql_arena, (model_kind)k, &s->sql[q_ent((model_kind)k, 0)]);
    blob_sql(s->sql_arena, &s->sql[q_gen(0)]);
    return s;
}

/* ---- the change counts -----------------------------------------------------
 * "<path>-changes" holds the database's change counts (store_int.h) at its
 * start, mapped shared by every process that opens the database. Their
 * values mean nothing by themselves: readers only compare them with the
 * ones they saw before. When it cannot be made (a read-only directory), the
 * store works without it and nothing is cached.
 *
 * The file may be removed or replaced under a running process (by hand, a
 * backup restore): the counts of the one still mapped would then move for
 * no other process. So the mapped file is compared with the name's now and
 * then (sq_changes_check); when they differ, the current file (made when
 * missing) is mapped at the same address, and every count is moved past
 * the old file's, so that no count read before is ever seen again. */

/* Opens (or makes, owner-only) the counts file `name`: its first
 * CHANGES_MAP_BYTES allocated, not a hole, as a store into a hole of a full
 * file system would raise SIGBUS. Making it twice at once is harmless: the
 * size only grows, zeros are valid counts. -1 and errno when it fails. */
static int changes_file_open(const char *name)
{
    int fd = open(name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        goto fail;
    if (st.st_size < CHANGES_MAP_BYTES || (int64_t)st.st_blocks * 512 < CHANGES_MAP_BYTES) {
        int e = posix_fallocate(fd, 0, CHANGES_MAP_BYTES);
        if (e != 0) {
            errno = e;
            goto fail;
        }
    }
    return fd;
fail:
    if (fd >= 0) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return -1;
}

static void changes_open(struct sq_store *s, const char *path)
{
    _Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "the shared counts need lock-free atomics");
    _Static_assert(STORE_CHANGES__COUNT * sizeof(uint64_t) <= CHANGES_MAP_BYTES, "counts fit");
    size_t n = strlen(path) + sizeof("-changes");
    s->changes_path = malloc(n);
    int fd = -1;
    void *map = MAP_FAILED;
    if (s->changes_path != NULL) {
        snprintf(s->changes_path, n, "%s-changes", path);
        fd = changes_file_open(s->changes_path);
    }
    if (fd >= 0)
        map = mmap(NULL, CHANGES_MAP_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        log_warn("store: no change count (%s-changes: %s): reads are not cached", path,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    s->changes = map;
    s->changes_fd = fd;
}

/* The file mapped is still the one named changes_path. */
static bool changes_same_file(const struct sq_store *s)
{
    struct stat mapped, named;
    return fstat(s->changes_fd, &mapped) == 0 && mapped.st_nlink > 0 &&
           stat(s->changes_path, &named) == 0 && mapped.st_dev == named.st_dev &&
           mapped.st_ino == named.st_ino;
}

/* Moves count *c to above `past`, and by one at least. */
static void changes_move_past(_Atomic uint64_t *c, uint64_t past)
{
    uint64_t cur = atomic_fetch_add(c, 1) + 1;
    while (cur <= past && !atomic_compare_exchange_weak(c, &cur, past + 1))
        ;
}

/* Maps the file now named changes_path over the old one's mapping (an
 * atomic replacement: a concurrent reader sees the one or the other) and
 * moves its counts past the old file's last ones. False when no file can
 * be had: the old one stays mapped. */
static bool changes_remap(struct sq_store *s)
{
    uint64_t old[STORE_CHANGES__COUNT], last[STORE_CHANGES__COUNT];
    int fd = changes_file_open(s->changes_path);
    if (fd < 0)
        return false;
    for (int i = 0; i < STORE_CHANGES__COUNT; i++)
        old[i] = atomic_load(&s->changes[i]);
    void *map = mmap((void *)s->changes, CHANGES_MAP_BYTES, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_FIXED, fd, 0);
    if (map == MAP_FAILED) {
        close(fd);
        return false;
    }
    /* adds made to the old file while it was being replaced: through its
     * descriptor (a MAP_SHARED store is in the file at once) */
    if (io_pread(s->changes_fd, last, sizeof(last), 0) == (ssize_t)sizeof(last))
        for (int i = 0; i < STORE_CHANGES__COUNT; i++)
            old[i] = last[i] > old[i] ? last[i] : old[i];
    for (int i = 0; i < STORE_CHANGES__COUNT; i++)
        changes_move_past(&s->changes[i], old[i]);
    close(s->changes_fd);
    s->changes_fd = fd;
    return true;
}

/* Counts never go down; one found below what the last check saw means the
 * file was overwritten in place (a backup copied over it), and values seen
 * before could come round again: every count is moved well past what was
 * seen (the margin covers the writes of one check interval). Under
 * changes_mu; true when it moved them. */
#define CHANGES_REWIND_MARGIN (1ull << 32)
static bool changes_rewound(struct sq_store *s)
{
    bool back = false;
    uint64_t now[STORE_CHANGES__COUNT];
    for (int i = 0; i < STORE_CHANGES__COUNT; i++) {
        now[i] = atomic_load(&s->changes[i]);
        back = back || now[i] < s->changes_seen[i];
    }
    if (back) {
        log_info("store: %s went back (copied over?): counting on past it", s->changes_path);
        for (int i = 0; i < STORE_CHANGES__COUNT; i++) {
            changes_move_past(&s->changes[i], s->changes_seen[i] + CHANGES_REWIND_MARGIN);
            now[i] = atomic_load(&s->changes[i]);
        }
    }
    memcpy(s->changes_seen, now, sizeof(now));
    return back;
}

static bool sq_changes_check(struct sq_store *s)
{
    bool moved = false;
    if (s->changes == NULL || pthread_mutex_trylock(&s->changes_mu) != 0)
        return false; /* no counts, or another thread checks */
    if (!changes_same_file(s)) {
        moved = true;
        if (changes_remap(s)) {
            log_info("store: %s was removed or replaced: now counting in the new one",
                     s->changes_path);
            s->changes_lost = false;
        } else {
            /* unseen writes may have been made: nothing cached survives a check */
            if (!s->changes_lost)
                log_warn("store: %s is gone and cannot be made again (%s): cached reads are "
                         "dropped every %u ms",
                         s->changes_path, strerror(errno), STORE_CHANGES_CHECK_US / 1000);
            s->changes_lost = true;
            for (int i = 0; i < STORE_CHANGES__COUNT; i++)
                atomic_fetch_add(&s->changes[i], 1);
        }
    }
    if (changes_rewound(s))
        moved = true;
    pthread_mutex_unlock(&s->changes_mu);
    return moved;
}

/* ---- the file, its directory and its hold --------------------------------
 * Everything that knows the database is a file: the directories made for
 * it, the durability of names in its directory, the directory offered for
 * the upload spool, and "<path>.lock", which serving processes flock shared
 * and `crmblob rekey` exclusively (store_hold). */

/* mkdir -p of the directory part of `path` ("a/b/c.db" -> a, a/b); the
 * directories it makes are the owner's only (0700). */
static store_err make_parent_dirs(const char *path)
{
    char dir[PATH_MAX];
    int n = snprintf(dir, sizeof(dir), "%s", path);
    if (n < 0 || (size_t)n >= sizeof(dir)) {
        log_error("store: database path too long: %s", path);
        return STORE_INTERNAL;
    }
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return STORE_OK; /* the current directory */
    *slash = '\0';
    for (char *p = dir + 1; p <= slash; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            log_error("store: cannot create directory %s: %s", dir, strerror(errno));
            return STORE_INTERNAL;
        }
        *p = saved;
    }
    return STORE_OK;
}

store_err store_sync_parent(const char *path)
{
    char *copy = strdup(path);
    int fd = copy != NULL ? open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    store_err e = STORE_OK;
    if (fd < 0 || fsync(fd) != 0) {
        log_error("cannot sync the directory of %s: %s", path, strerror(errno));
        e = STORE_INTERNAL;
    }
    if (fd >= 0)
        close(fd);
    free(copy);
    return e;
}

static const char *sq_spool_hint(struct sq_store *s)
{
    return s->dir;
}

static store_err sq_hold(struct sq_store *s, store_hold_mode h)
{
    bool exclusive = h == STORE_HOLD_EXCLUSIVE;
    char name[4096];
    assert(s->hold_fd < 0); /* once per open store */
    snprintf(name, sizeof(name), "%s.lock", s->path);
    int fd = open(name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_error("cannot open %s: %s", name, strerror(errno));
        return STORE_INTERNAL;
    }
    if (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
        log_error(exclusive ? "a crmblob server is using %s: stop it first"
                            : "%s is being rekeyed: wait until `crmblob rekey` has finished",
                  s->path);
        close(fd);
        return STORE_UNAVAILABLE;
    }
    s->hold_fd = fd; /* released by sq_close */
    return STORE_OK;
}

bool store_sqlite_in_use(const char *path)
{
    char name[4096];
    snprintf(name, sizeof(name), "%s.lock", path);
    int fd = open(name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false; /* never held, or not a database */
    bool held = flock(fd, LOCK_EX | LOCK_NB) != 0;
    close(fd); /* releases what this open took */
    return held;
}

void store_sqlite_remove(const char *path, bool database)
{
    static const char *const side[] = {"-changes", ".lock", "-wal", "-shm", "-journal", ""};
    char name[4096];
    size_t n = database ? sizeof(side) / sizeof(side[0]) : 2;
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "%s%s", path, side[i]);
        unlink(name);
    }
}

/* ---- owner-only files ----------------------------------------------------
 * The database holds every password hash and picture: its files are the
 * owner's alone. A new database file is made 0600 before SQLite opens it
 * (SQLite gives -wal and -shm the database file's mode); one found readable
 * or writable by others, or its -wal, -shm or -changes, is narrowed to the
 * owner's bits, with a warning. */

static void file_make_private(const char *name)
{
    struct stat st;
    if (stat(name, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) == 0)
        return;
    mode_t mode = st.st_mode & 0700;
    if (chmod(name, mode) == 0)
        log_warn("store: %s was open to other users (mode %04o): now %04o", name,
                 (unsigned)(st.st_mode & 07777), (unsigned)mode);
    else
        log_warn("store: %s is open to other users (mode %04o) and cannot be changed: %s", name,
                 (unsigned)(st.st_mode & 07777), strerror(errno));
}

static store_err db_files_private(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-changes"};
    char name[4096];
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        int n = snprintf(name, sizeof(name), "%s%s", path, suffixes[i]);
        if (n > 0 && (size_t)n < sizeof(name))
            file_make_private(name);
    }
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close(fd); /* an empty file is a new database to SQLite */
    } else if (errno != EEXIST) {
        log_error("store: cannot create %s: %s", path, strerror(errno));
        return STORE_UNAVAILABLE;
    }
    return STORE_OK;
}

/* Opens connection i of s; the first one also sets WAL and migrates. */
static store_err sq_add_conn(struct sq_store *s, const char *path)
{
    assert(s->nconns < s->capacity);
    struct conn *c = &s->conns[s->nconns++];
    c->owner = s;
    store_err rc = conn_open(c, path);
    if (rc == STORE_OK && s->nconns == 1 && (rc = set_wal(c)) == STORE_OK)
        rc = migrate(c, s->sql_arena);
    if (rc == STORE_OK)
        rc = conn_prepare(c);
    pool_put(s, c); /* also on failure: sq_close closes what is pooled */
    return rc;
}

/* Keeps path and its directory in s (freed by sq_close). */
static store_err sq_set_path(struct sq_store *s, const char *path)
{
    s->path = strdup(path);
    char *copy = strdup(path);
    s->dir = copy != NULL ? strdup(dirname(copy)) : NULL;
    free(copy);
    if (s->path != NULL && s->dir != NULL)
        return STORE_OK;
    log_error("store: out of memory");
    return STORE_INTERNAL;
}

/* The flushes' and group commits' histograms (metrics.h). */
static void sq_metrics(struct sq_store *s, metrics_t *m)
{
    static const uint64_t flush_us[] = {50,    100,   250,    500,    1000,   2500,  5000,
                                        10000, 25000, 50000, 100000, 250000, 1000000};
    static const uint64_t writes[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
    s->m_flush = metrics_register(
        m, &(metrics_def){.name = "crmblob_store_flush_duration_seconds",
                          .help = "Durable mode: the time of each flush (fdatasync) of the WAL.",
                          .type = METRICS_HISTOGRAM, .bounds = flush_us,
                          .nbounds = sizeof(flush_us) / sizeof(flush_us[0]), .scale = 1e6});
    s->m_group = metrics_register(
        m, &(metrics_def){.name = "crmblob_store_group_commit_writes",
                          .help = "Durable mode: the writes each group COMMIT carried.",
                          .type = METRICS_HISTOGRAM, .bounds = writes,
                          .nbounds = sizeof(writes) / sizeof(writes[0])});
}

store_err store_sqlite_open(const char *path, const store_options *opt, store_be **out)
{
    assert(path != NULL && opt != NULL && out != NULL);
    int pool_size = opt->pool_size > 0 ? opt->pool_size : DEFAULT_POOL_SIZE;
    store_err rc = STORE_OK;
    struct stat st;
    *out = NULL;
    if (opt->must_exist && stat(path, &st) != 0 && errno == ENOENT)
        return STORE_ABSENT; /* the caller says how to make one */
    struct sq_store *s = sq_new(pool_size);
    if (s == NULL) {
        log_error("store: out of memory");
        return STORE_INTERNAL;
    }
    rc = sq_set_path(s, path);
    if (rc == STORE_OK)
        rc = make_parent_dirs(path);
    if (rc == STORE_OK)
        rc = db_files_private(path);
    for (int i = 0; i < pool_size && rc == STORE_OK; i++)
        rc = sq_add_conn(s, path);
    if (rc == STORE_OK && opt->durable) {
        sq_metrics(s, opt->metrics);
        rc = walsync_create(s, path);
    }
    if (rc == STORE_OK && opt->durable && pool_size > 1)
        rc = group_create(s);
    if (rc == STORE_OK)
        changes_open(s, path);
    if (rc != STORE_OK) {
        sq_close(s);
        return rc;
    }
    log_info("store: SQLite %s, %d connections%s%s", path, pool_size,
             s->group ? ", group commit" : "",
             s->walsync ? ", durable: writes answered after a flush of the WAL" : "");
    *out = &s->be;
    return STORE_OK;
}
