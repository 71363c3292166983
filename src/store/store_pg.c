/*
 * store_pg.c — the PostgreSQL backend of store_backend.h, on pg_conn's
 * pool, prepared statements and schema.
 *
 * A transaction is one pooled connection from begin to end: READ1 runs its
 * one statement outside any BEGIN; READ is REPEATABLE READ READ ONLY (one
 * snapshot); WRITE is READ COMMITTED, whose races the recipes close with
 * row locks (FOR SHARE / FOR UPDATE), conditional writes (RETURNING; 0
 * rows = STORE_NOMATCH) and transaction advisory locks (xlock);
 * TRY_WRITE is WRITE with a lock_timeout of 1 ms, so that it gives
 * STORE_UNAVAILABLE rather than wait. The BEGIN of a mode is sent in one
 * pipeline with the transaction's first statement (pgc_run_after: one
 * round trip fewer per transaction). store_hold is a session advisory
 * lock of the schema (shared to serve, exclusive to rekey) on a connection
 * of its own.
 *
 * Invariants:
 *  - every primitive is one statement (pic_read: one per piece it
 *    touches) and maps pgc_res 1:1 onto store_err; none decides anything;
 *  - on PostgreSQL a statement that fails ends what its transaction can
 *    do: the first failure is remembered, later primitives return it
 *    without asking the server, and it is the transaction's outcome at
 *    end (never a COMMIT);
 *  - a COMMIT that got no answer is STORE_UNAVAILABLE (its outcome is
 *    unknown) and its connection is not used again;
 *  - picture bytes are rows of PGC_PIECE bytes in blob_piece (n = 0, 1,
 *    ...), every row full but the last; a picture of 0 bytes is one empty
 *    row, so "no bytes" (no row) differs from "0 bytes". Neither side holds
 *    more than one piece: writes buffer at most one, reads fetch the part
 *    of at most two pieces they need (substring on uncompressed storage);
 *  - results are copied into the caller's arena; PGresults never outlive
 *    the primitive.
 *
 * PostgreSQL keeps no shared counts file (counts is NULL): the read cache
 * validates by version there. The users change count is the counters row
 * 'users', moved by users_bump in the writer's transaction.
 */
#include "store/store_backend.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/log.h"
#include "store/pg_conn.h"

#define PG_POOL_DEFAULT 16
#define PG_CHECKOUT_WAIT_MS 10000     /* as SQLite's busy timeout */
#define PG_STATEMENT_TIMEOUT_MS 60000 /* a statement running longer is stuck */
#define PG_CONNECT_TIMEOUT_S 5
#define PG_MAXP 16 /* parameters of one statement */

_Static_assert(STORE_PIECE == PGC_PIECE, "a store piece is one blob_piece row");

/* ---- statements --------------------------------------------------------- */

enum {
    S_PING,
    S_USERS_STAMP,
    S_USERS_BUMP,
    S_XLOCK,
    S_TRY_XLOCK,
    S_USER_INSERT,
    S_USER_BY_ID,
    S_USER_BY_NAME,
    S_USER_LIST,
    S_USER_COUNT,
    S_USER_SET,
    S_CRED_INSERT,
    S_CRED_FIND,
    S_CRED_LIST,
    S_CRED_REVOKE,
    S_CRED_REVOKE_PAIR,
    S_CRED_REVOKE_USER,
    S_CRED_PURGE,
    S_APP_INSERT,
    S_APP_FIND,
    S_APP_LIST,
    S_APP_REVOKE,
    S_META_GET,
    S_META_PUT,
    S_THUMB_SET,
    S_BLOB_READ, /* + store_row_lock */
    S_BLOB_READ_SHARE,
    S_BLOB_READ_UPDATE,
    S_BLOB_INSERT,
    S_BLOB_SET_INFO,
    S_BLOB_SET_CONTENT,
    S_BLOB_SET_STORED,
    S_BLOB_CLAIM,
    S_BLOB_UNLINK,
    S_BLOB_DELETE,
    S_BLOB_NEXT_STORED,
    S_LIB_ADD,
    S_LIB_NEXT,
    S_PIC_CLEAR,
    S_PIC_PUT,
    S_PIC_SIZE,
    S_PIC_GET,
    S_VAR_READ,
    S_VAR_UPSERT,
    S_VAR_TOUCH,
    S_VAR_TOTALS,
    S_VAR_LRU,
    S_VAR_DELETE,
    S_VAR_DELETE_STALE,
    S_VAR_NEXT,
    S_VAR_SET_STORED,
    S_TASK_INSERT,
    S_TASK_READ,
    S_TASK_LIST,
    S_TASK_NEXT_NEW,
    S_TASK_CLAIM,
    S_TASK_BEAT,
    S_TASK_FINISH,
    S_TASK_FAIL_NEW,
    S_TASK_SET_STOP,
    S_TASK_DELETE,
    S_TASK_REAP,
    S_TASK_EXPIRED,
    S_TASK_UPDATE,
    S_FILE_INSERT,
    S_FILE_READ,
    S_FILE_LIST,
    S_FILE_DONE,
    S_FILE_BIND,
    S_PIECE_GET,
    S_FILE_RELEASE,
    S_FILE_STALE,
    S_FILE_RELEASE_STALE,
    S_PIECE_DROP,
    S_FIXED
};

/* Per entity kind (kind_stmt), then the generated ones of every kind. */
enum {
    K_READ,
    K_READ_SHARE,
    K_READ_UPDATE,
    K_NEXT_ID,
    K_INSERT,
    K_UPDATE,
    K_DELETE,
    K_SET_IMAGE,
    K_IMAGE, /* image_read */
    K_COUNT
};
/* Per copy table (copy_stmt): its count, first batch, next batch, insert,
 * and sequence's high mark and settling. */
enum { C_ROWS, C_FIRST, C_AFTER, C_PUT, C_HIGH, C_SETTLE, C_COUNT };
enum {
    G_SWEEP = S_FIXED + MODEL_KIND_COUNT * K_COUNT,
    G_COPY_CLEAR,
    G_COPY_TOTALS,
    G_COPY,
    S_TOTAL = G_COPY + STORE_COPY_TABLES * C_COUNT
};

#define USER_COLS "id, name, full_name, role, disabled, pw_hash, created_ms"
#define CRED_COLS                                                                                  \
    "c.id, c.kind, c.user_id, u.name, c.created_ms, c.expires_ms, c.revoked, c.hash, "             \
    "c.xsrf_hash, c.label, c.pair_id FROM cred c JOIN users u ON u.id = c.user_id "
#define APP_COLS "id, name, hash, created_ms, revoked"
/* The columns of a task, in store_task's order (read_task). */
#define TASK_COLS                                                                                  \
    "id, name, description, params, associate_id, state, percent, progress, result, response, "   \
    "file_name, created_ms, coalesce(started_ms, 0), coalesce(finished_ms, 0), start_count, "     \
    "server, lease_ms, stop, coalesce(output_blob, 0), "                                          \
    "coalesce((SELECT f.blob_id FROM batch_file f WHERE f.task_id = batch_task.id "               \
    "AND f.kind = 2), 0)"
/* The columns of a batch file with its record's (read_file). */
#define FILE_COLS                                                                                  \
    "f.blob_id, coalesce(f.task_id, 0), f.kind, f.part, f.done, b.blob_size, b.original_size, "  \
    "b.is_zipped, b.is_encrypted, b.version FROM batch_file f JOIN blob b ON b.id = f.blob_id "
/* A blob row b with the users who made and last changed it (NULL when gone
 * or the server); read by read_blob_row in this order. */
#define BLOB_COLS                                                                                  \
    "b.id, b.description, b.extra_info, b.mime_type, b.conceptual_type, b.blob_size, "             \
    "b.original_size, b.is_zipped, b.is_encrypted, b.created_ms, b.updated_ms, b.created_by, "     \
    "b.updated_by, b.version, b.info_version, b.unlinked_ms, "                                     \
    "cu.id, cu.name, cu.full_name, cu.role, cu.disabled, cu.created_ms, "                          \
    "uu.id, uu.name, uu.full_name, uu.role, uu.disabled, uu.created_ms"
#define BLOB_NCOLS 28 /* the columns of BLOB_COLS */
#define BLOB_SELECT "SELECT " BLOB_COLS " FROM "
#define BLOB_JOIN                                                                                  \
    " b LEFT JOIN users cu ON cu.id = b.created_by LEFT JOIN users uu ON uu.id = b.updated_by "
#define BLOB_WHERE "blob" BLOB_JOIN "WHERE b.id = $1"
#define VAR_COLS "v.id, v.mime, v.is_zipped, v.is_encrypted, v.original_size, d.bytes "

static const pgc_stmt fixed[S_FIXED] = {
    [S_PING] = {"ping", "SELECT version FROM schema_version", 0},
    [S_USERS_STAMP] = {"users_stamp", "SELECT n FROM counters WHERE name = 'users'", 0},
    [S_USERS_BUMP] = {"users_bump", "UPDATE counters SET n = n + 1 WHERE name = 'users'", 0},
    [S_XLOCK] = {"xlock", "SELECT pg_advisory_xact_lock($1::int, $2::int)", 0},
    [S_TRY_XLOCK] = {"try_xlock", "SELECT pg_try_advisory_xact_lock($1::int, $2::int)", 0},
    [S_USER_INSERT] = {"user_insert",
                       "INSERT INTO users(name, full_name, role, disabled, pw_hash, created_ms) "
                       "VALUES($1, $2, $3, $4, $5, $6) RETURNING id",
                       0},
    [S_USER_BY_ID] = {"user_by_id", "SELECT " USER_COLS " FROM users WHERE id = $1", 0},
    [S_USER_BY_NAME] = {"user_by_name",
                        "SELECT " USER_COLS " FROM users WHERE lower(name) = lower($1)", 0},
    [S_USER_LIST] = {"user_list", "SELECT " USER_COLS " FROM users ORDER BY id", 0},
    [S_USER_COUNT] = {"user_count", "SELECT count(*) FROM users", 0},
    /* NULL pw_hash, disabled < 0: kept */
    [S_USER_SET] = {"user_set",
                    "UPDATE users SET pw_hash = coalesce($2, pw_hash), disabled = CASE WHEN "
                    "$3::int < 0 THEN disabled ELSE $3::int END WHERE lower(name) = lower($1)",
                    0},
    [S_CRED_INSERT] = {"cred_insert",
                       "INSERT INTO cred(kind, hash, user_id, created_ms, expires_ms, revoked, "
                       "xsrf_hash, label, pair_id) VALUES($1, $2::bytea, $3, $4, $5, $6, "
                       "$7::bytea, $8, $9) RETURNING id",
                       0},
    [S_CRED_FIND] = {"cred_find", "SELECT " CRED_COLS "WHERE c.kind = $1 AND c.hash = $2::bytea",
                     0},
    [S_CRED_LIST] = {"cred_list",
                     "SELECT " CRED_COLS
                     "WHERE c.kind = $1 AND c.revoked = 0 AND c.expires_ms > $2 ORDER BY c.id",
                     0},
    [S_CRED_REVOKE] = {"cred_revoke", "UPDATE cred SET revoked = 1 WHERE kind = $1 AND id = $2", 0},
    /* what was issued with $1 at login, either way round */
    [S_CRED_REVOKE_PAIR] = {"cred_revoke_pair",
                            "UPDATE cred SET revoked = 1 WHERE pair_id = $1 "
                            "OR id = (SELECT pair_id FROM cred WHERE id = $1)",
                            0},
    [S_CRED_REVOKE_USER] = {"cred_revoke_user", "UPDATE cred SET revoked = 1 WHERE user_id = $1",
                            0},
    [S_CRED_PURGE] = {"cred_purge", "DELETE FROM cred WHERE revoked <> 0 OR expires_ms < $1", 0},
    [S_APP_INSERT] = {"app_insert",
                      "INSERT INTO app(name, hash, created_ms, revoked) "
                      "VALUES($1, $2::bytea, $3, $4) RETURNING id",
                      0},
    [S_APP_FIND] = {"app_find", "SELECT " APP_COLS " FROM app WHERE hash = $1::bytea", 0},
    [S_APP_LIST] = {"app_list", "SELECT " APP_COLS " FROM app ORDER BY id", 0},
    [S_APP_REVOKE] = {"app_revoke", "UPDATE app SET revoked = 1 WHERE lower(name) = lower($1)", 0},
    [S_META_GET] = {"meta_get", "SELECT value FROM meta WHERE name = $1", 1},
    [S_META_PUT] = {"meta_put",
                    "INSERT INTO meta(name, value) VALUES($1, $2::bytea) "
                    "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                    0},
    [S_THUMB_SET] = {"thumb_set", "UPDATE product SET thumb_blob_id = $2 WHERE id = $1", 0},
    [S_BLOB_READ] = {"blob_read", BLOB_SELECT BLOB_WHERE, 0},
    [S_BLOB_READ_SHARE] = {"blob_read_share", BLOB_SELECT BLOB_WHERE " FOR SHARE OF b", 0},
    [S_BLOB_READ_UPDATE] = {"blob_read_update", BLOB_SELECT BLOB_WHERE " FOR UPDATE OF b", 0},
    [S_BLOB_INSERT] = {"blob_insert",
                       "INSERT INTO blob(description, extra_info, mime_type, conceptual_type, "
                       "blob_size, original_size, is_zipped, is_encrypted, created_ms, "
                       "updated_ms, created_by, updated_by, version, info_version, unlinked_ms) "
                       "VALUES('', '', '', $1, 0, 0, 0, 0, $2, $2, $3, $3, 0, 0, $4) RETURNING id",
                       0},
    /* NULL leaves a client field unchanged */
    [S_BLOB_SET_INFO] = {"blob_set_info",
                         "WITH b AS (UPDATE blob SET description = coalesce($2, description), "
                         "extra_info = coalesce($3, extra_info), "
                         "conceptual_type = coalesce($4, conceptual_type), updated_ms = $5, "
                         "updated_by = $6, info_version = info_version + 1 WHERE id = $1 AND "
                         "($7::bigint = -1 OR info_version = $7) RETURNING *) " BLOB_SELECT
                         "b" BLOB_JOIN,
                         0},
    [S_BLOB_SET_CONTENT] = {"blob_set_content",
                            "WITH b AS (UPDATE blob SET mime_type = $2, blob_size = $3, "
                            "original_size = $4, is_zipped = $5, is_encrypted = $6, "
                            "updated_ms = $7, updated_by = $8, version = version + 1, "
                            "info_version = info_version + 1 WHERE id = $1 AND "
                            "($9::bigint = -1 OR version = $9) RETURNING *) " BLOB_SELECT
                            "b" BLOB_JOIN,
                            0},
    /* the record changed (sizes, flags), the served bytes did not: version stays */
    [S_BLOB_SET_STORED] = {"blob_set_stored",
                           "UPDATE blob SET blob_size = $2, is_zipped = $3, is_encrypted = $4, "
                           "info_version = info_version + 1 WHERE id = $1",
                           0},
    [S_BLOB_CLAIM] =
        {"blob_claim",
         "UPDATE blob SET unlinked_ms = NULL WHERE id = $1 AND unlinked_ms IS NOT NULL", 0},
    [S_BLOB_UNLINK] = {"blob_unlink", "UPDATE blob SET unlinked_ms = $2 WHERE id = $1", 0},
    [S_BLOB_DELETE] = {"blob_delete", "DELETE FROM blob WHERE id = $1", 0},
    [S_BLOB_NEXT_STORED] =
        {"blob_next_stored",
         "SELECT id FROM blob WHERE id > $1 AND blob_size > 0 AND NOT EXISTS "
         "(SELECT 1 FROM batch_file f WHERE f.blob_id = blob.id) ORDER BY id LIMIT 1",
         0},
    [S_LIB_ADD] = {"lib_add", "INSERT INTO project_library(blob_id, added_ms) VALUES($1, $2)", 0},
    [S_LIB_NEXT] = {"lib_next",
                    "SELECT blob_id FROM project_library WHERE blob_id > $1 ORDER BY blob_id "
                    "LIMIT 1",
                    0},
    [S_PIC_CLEAR] = {"pic_clear", "DELETE FROM blob_piece WHERE blob_id = $1", 0},
    [S_PIC_PUT] = {"pic_put", "INSERT INTO blob_piece(blob_id, n, bytes) VALUES($1, $2, $3::bytea)",
                   0},
    /* length() of a stored bytea reads its header, not its bytes */
    [S_PIC_SIZE] = {"pic_size",
                    "SELECT count(*), coalesce(sum(length(bytes)), 0) FROM blob_piece "
                    "WHERE blob_id = $1",
                    0},
    [S_PIC_GET] = {"pic_get",
                   "SELECT substring(bytes FROM $3::int FOR $4::int) FROM blob_piece "
                   "WHERE blob_id = $1 AND n = $2",
                   1},
    /* only while the BLOB's bytes are still of that version */
    [S_VAR_READ] = {"var_read",
                    "SELECT " VAR_COLS "FROM variant v JOIN blob b ON b.id = v.blob_id "
                    "JOIN variant_data d ON d.variant_id = v.id WHERE v.blob_id = $1 "
                    "AND v.key = $2 AND v.version = $3 AND b.version = $3",
                    1},
    [S_VAR_UPSERT] = {"var_upsert",
                      "WITH v AS (INSERT INTO variant(blob_id, version, key, mime, is_zipped, "
                      "is_encrypted, original_size, size, pinned, last_used_ms) "
                      "VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
                      "ON CONFLICT(blob_id, key) DO UPDATE SET version = excluded.version, "
                      "mime = excluded.mime, is_zipped = excluded.is_zipped, "
                      "is_encrypted = excluded.is_encrypted, "
                      "original_size = excluded.original_size, size = excluded.size, "
                      "pinned = excluded.pinned, last_used_ms = excluded.last_used_ms "
                      "RETURNING id) INSERT INTO variant_data(variant_id, bytes) "
                      "SELECT id, $11::bytea FROM v ON CONFLICT(variant_id) "
                      "DO UPDATE SET bytes = excluded.bytes RETURNING variant_id",
                      0},
    /* a use recorded earlier than one already written changes nothing */
    [S_VAR_TOUCH] = {"var_touch",
                     "UPDATE variant v SET last_used_ms = t.ms FROM (SELECT id, max(ms) AS ms "
                     "FROM unnest($1::bigint[], $2::bigint[]) AS u(id, ms) GROUP BY id) t "
                     "WHERE v.id = t.id AND v.last_used_ms < t.ms",
                     0},
    [S_VAR_TOTALS] = {"var_totals", "SELECT bytes, count FROM variant_total", 0},
    [S_VAR_LRU] = {"var_lru",
                   "SELECT id, size FROM variant WHERE pinned = 0 AND NOT (blob_id = $1 AND "
                   "key = $2) ORDER BY last_used_ms, id LIMIT 1",
                   0},
    [S_VAR_DELETE] = {"var_delete", "DELETE FROM variant WHERE id = $1", 0},
    [S_VAR_DELETE_STALE] = {"var_delete_stale",
                            "DELETE FROM variant WHERE blob_id = $1 "
                            "AND version <> (SELECT version FROM blob WHERE id = $1)",
                            0},
    [S_VAR_NEXT] = {"var_next",
                    "SELECT v.id, d.bytes, v.is_zipped, v.is_encrypted FROM variant v "
                    "JOIN variant_data d ON d.variant_id = v.id "
                    "WHERE v.blob_id = $1 AND v.id > $2 ORDER BY v.id LIMIT 1",
                    1},
    [S_VAR_SET_STORED] = {"var_set_stored",
                          "WITH d AS (UPDATE variant_data SET bytes = $2::bytea "
                          "WHERE variant_id = $1 RETURNING variant_id) UPDATE variant "
                          "SET size = $3, is_zipped = $4, is_encrypted = $5 "
                          "WHERE id IN (SELECT variant_id FROM d)",
                          0},
    [S_TASK_INSERT] = {"task_insert",
                       "INSERT INTO batch_task(name, description, params, associate_id, state, "
                       "created_ms) VALUES($1, $2, $3, $4, 1, $5) RETURNING id",
                       0},
    [S_TASK_READ] = {"task_read", "SELECT " TASK_COLS " FROM batch_task WHERE id = $1", 0},
    [S_TASK_LIST] = {"task_list",
                     "SELECT " TASK_COLS " FROM batch_task WHERE ($1::text IS NULL OR name = $1) "
                     "AND ($2::integer < 0 OR state = $2) AND ($3::integer < 0 OR associate_id = $3) "
                     "ORDER BY id",
                     0},
    /* another server's claim in progress is skipped, not waited for */
    [S_TASK_NEXT_NEW] = {"task_next_new",
                         "SELECT id FROM batch_task WHERE state = 1 ORDER BY id LIMIT 1 "
                         "FOR UPDATE SKIP LOCKED",
                         0},
    [S_TASK_CLAIM] = {"task_claim",
                      "UPDATE batch_task SET state = 3, server = $2, started_ms = $3, lease_ms = $4, "
                      "start_count = start_count + 1, percent = 0, progress = '' "
                      "WHERE id = $1 AND state = 1",
                      0},
    [S_TASK_BEAT] = {"task_beat",
                     "UPDATE batch_task SET lease_ms = $3, percent = $4, progress = $5 "
                     "WHERE id = $1 AND server = $2 AND state = 3 RETURNING stop",
                     0},
    [S_TASK_FINISH] = {"task_finish",
                       "UPDATE batch_task SET state = $3, percent = $4, progress = $5, result = $6, "
                       "response = $7, file_name = $8, output_blob = $9, finished_ms = $10 "
                       "WHERE id = $1 AND server = $2 AND state = 3",
                       0},
    [S_TASK_FAIL_NEW] = {"task_fail_new",
                         "UPDATE batch_task SET state = 5, result = $2, finished_ms = $3, stop = 1 "
                         "WHERE id = $1 AND state = 1",
                         0},
    [S_TASK_SET_STOP] = {"task_set_stop", "UPDATE batch_task SET stop = 1 WHERE id = $1", 0},
    [S_TASK_DELETE] = {"task_delete", "DELETE FROM batch_task WHERE id = $1", 0},
    [S_TASK_REAP] = {"task_reap",
                     "UPDATE batch_task SET state = 5, result = $2, finished_ms = $1 "
                     "WHERE state = 3 AND lease_ms < $1",
                     0},
    [S_TASK_EXPIRED] = {"task_expired",
                        "SELECT id FROM batch_task WHERE finished_ms IS NOT NULL "
                        "AND finished_ms < $1 ORDER BY id LIMIT $2",
                        0},
    [S_TASK_UPDATE] = {"task_update",
                       "UPDATE batch_task SET description = $5, params = $6 WHERE id = $1 AND "
                       "state = $2 AND description = $3 AND params = $4",
                       0},
    [S_FILE_INSERT] = {"file_insert",
                       "INSERT INTO batch_file(blob_id, task_id, kind, part, done) "
                       "VALUES($1, $2, $3, $4, 0)",
                       0},
    [S_FILE_READ] = {"file_read", "SELECT " FILE_COLS "WHERE f.blob_id = $1", 0},
    [S_FILE_LIST] = {"file_list",
                     "SELECT " FILE_COLS "WHERE f.task_id = $1 AND f.kind = $2 "
                     "ORDER BY f.part LIMIT $3",
                     0},
    [S_FILE_DONE] = {"file_done", "UPDATE batch_file SET done = 1 WHERE blob_id = $1", 0},
    [S_FILE_BIND] = {"file_bind",
                     "UPDATE batch_file SET task_id = $2 WHERE blob_id = $1 AND task_id IS NULL "
                     "AND kind = 2 AND done = 1",
                     0},
    [S_PIECE_GET] = {"piece_get", "SELECT bytes FROM blob_piece WHERE blob_id = $1 AND n = $2", 1},
    [S_FILE_RELEASE] = {"file_release",
                        "UPDATE batch_file SET task_id = NULL, done = 0 WHERE blob_id = $1", 0},
    [S_FILE_STALE] = {"file_stale",
                      "SELECT f.blob_id FROM batch_file f JOIN blob b ON b.id = f.blob_id "
                      "WHERE b.unlinked_ms < $1 ORDER BY f.blob_id LIMIT $2",
                      0},
    [S_FILE_RELEASE_STALE] = {"file_release_stale",
                              "UPDATE batch_file SET task_id = NULL, done = 0 WHERE blob_id = $1 "
                              "AND EXISTS (SELECT 1 FROM blob b WHERE b.id = $1 "
                              "AND b.unlinked_ms < $2)",
                              0},
    [S_PIECE_DROP] = {"piece_drop",
                      "DELETE FROM blob_piece WHERE blob_id = $1 AND n IN (SELECT n FROM blob_piece "
                      "WHERE blob_id = $1 ORDER BY n LIMIT $2)",
                      0},
};

static int kind_stmt(model_kind k, int e)
{
    assert(k >= 0 && k < MODEL_KIND_COUNT && e >= 0 && e < K_COUNT);
    return S_FIXED + (int)k * K_COUNT + e;
}

/* ---- state -------------------------------------------------------------- */

typedef struct {
    store_be base; /* first: what the recipes hold */
    pgc_pool *pool;
    pgc_pool *hold_pool; /* store_hold's connection, kept until close */
    pgc_conn *hold_conn;
    char *conninfo;
    arena_t *sql; /* the generated statements' text */
    pgc_stmt stmts[S_TOTAL];
    char desc[256];
} pg_be;

typedef struct {
    store_tx base; /* first: what begin hands out */
    pgc_conn *c;
    store_err failed; /* the first failure of a statement (the server ended the transaction) */
    const char *const *begin; /* BEGIN not yet sent: it goes with the first statement */
} pg_tx;

struct store_pic_w {
    pg_tx *t;
    int32_t blob_id;
    int32_t next; /* the next piece's n */
    int64_t size, done;
    unsigned char *buf; /* a piece being filled (allocated when first needed, at most size) */
    size_t fill;
};

struct store_pic_r {
    pg_tx *t;
    int32_t blob_id;
    int64_t size;
};

static pg_be *be_of(store_be *b)
{
    assert(b != NULL);
    return (pg_be *)b;
}

static pg_tx *tx_of(store_tx *tx)
{
    assert(tx != NULL);
    return (pg_tx *)tx;
}

/* pgc_res onto store_err, one to one. */
static store_err res_err(pgc_res r)
{
    switch (r) {
    case PGC_OK:
        return STORE_OK;
    case PGC_ABSENT:
        return STORE_ABSENT;
    case PGC_CONFLICT:
        return STORE_CONFLICT;
    case PGC_INVALID:
        return STORE_INVALID;
    case PGC_TOO_LARGE:
        return STORE_TOO_LARGE;
    case PGC_NO_SPACE:
        return STORE_NO_SPACE;
    case PGC_UNAVAILABLE:
        return STORE_UNAVAILABLE;
    case PGC_RETRY:
        return STORE_RETRY;
    case PGC_INTERNAL:
        break;
    }
    return STORE_INTERNAL;
}

/* ---- parameters and columns --------------------------------------------- */

typedef struct {
    int n;
    const char *v[PG_MAXP];
    int len[PG_MAXP], fmt[PG_MAXP];
    char num[PG_MAXP][24];
} params;

static void p_i64(params *p, int64_t x)
{
    assert(p->n < PG_MAXP);
    snprintf(p->num[p->n], sizeof(p->num[0]), "%lld", (long long)x);
    p->v[p->n] = p->num[p->n];
    p->n++;
}

/* Text, or SQL NULL for NULL. */
static void p_text(params *p, const char *s)
{
    assert(p->n < PG_MAXP);
    p->v[p->n++] = s;
}

/* A reference: 0 is none (NULL). */
static void p_ref(params *p, int64_t x)
{
    if (x == 0)
        p_text(p, NULL);
    else
        p_i64(p, x);
}

/* Bytes, sent as they are (binary); NULL b with n 0 is empty, not NULL. */
static void p_bytes(params *p, const void *b, size_t n)
{
    assert(p->n < PG_MAXP && n <= INT_MAX);
    p->len[p->n] = (int)n;
    p->fmt[p->n] = 1;
    p->v[p->n++] = b != NULL ? b : "";
}

/* Integer column (text or binary result; NULL is 0). */
static int64_t col_i64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    const char *v = PQgetvalue(r, row, col);
    if (PQfformat(r, col) == 0)
        return strtoll(v, NULL, 10);
    int len = PQgetlength(r, row, col);
    uint64_t x = 0;
    for (int i = 0; i < len; i++)
        x = x << 8 | (unsigned char)v[i];
    if (len > 0 && len < 8 && (v[0] & 0x80))
        x |= ~UINT64_C(0) << (8 * len); /* sign */
    return (int64_t)x;
}

static int32_t col_i32(const PGresult *r, int row, int col)
{
    return (int32_t)col_i64(r, row, col);
}

static bool col_bool(const PGresult *r, int row, int col)
{
    if (PQftype(r, col) == 16 /* boolean */)
        return PQfformat(r, col) == 0 ? PQgetvalue(r, row, col)[0] == 't'
                                      : PQgetvalue(r, row, col)[0] != 0;
    return col_i64(r, row, col) != 0;
}

/* Text column as an arena string; "" for NULL. */
static const char *col_str(arena_t *a, const PGresult *r, int row, int col)
{
    return arena_strndup(a, PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

/* bytea column into the arena (*n bytes); text results come as hex. */
static store_err col_bytes(arena_t *a, const PGresult *r, int row, int col, void **out, size_t *n)
{
    const char *v = PQgetvalue(r, row, col);
    if (PQfformat(r, col) == 1) {
        *n = (size_t)PQgetlength(r, row, col);
        *out = arena_alloc(a, *n);
        if (*n > 0)
            memcpy(*out, v, *n);
        return STORE_OK;
    }
    size_t len = 0;
    unsigned char *raw = PQunescapeBytea((const unsigned char *)v, &len);
    if (raw == NULL)
        return STORE_INTERNAL;
    *out = arena_alloc(a, len);
    if (len > 0)
        memcpy(*out, raw, len);
    *n = len;
    PQfreemem(raw);
    return STORE_OK;
}

/* A hash column into out (zeros for NULL or a wrong length). */
static void col_hash(const PGresult *r, int row, int col, unsigned char out[STORE_HASH_BYTES])
{
    size_t len = 0;
    unsigned char *raw = NULL;
    memset(out, 0, STORE_HASH_BYTES);
    if (PQgetisnull(r, row, col))
        return;
    raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &len);
    if (raw != NULL && len == STORE_HASH_BYTES)
        memcpy(out, raw, STORE_HASH_BYTES);
    PQfreemem(raw);
}

/* ---- running statements ------------------------------------------------- */

/* Runs statement id with p in t; *out (when not NULL) the result. Once a
 * statement failed, the server refuses the rest of the transaction: the
 * failure is answered again without asking. */
static store_err run(pg_tx *t, int id, const params *p, PGresult **out)
{
    static const params none;
    if (out != NULL)
        *out = NULL;
    if (t->failed != STORE_OK)
        return t->failed;
    if (p == NULL)
        p = &none;
    store_err rc;
    if (t->begin != NULL)
        rc = res_err(pgc_run_after(t->c, t->begin, id, p->n, p->v, p->len, p->fmt, out));
    else
        rc = res_err(pgc_run(t->c, id, p->n, p->v, p->len, p->fmt, out));
    t->begin = NULL;
    if (rc != STORE_OK && t->base.mode != STORE_TX_READ1)
        t->failed = rc;
    return rc;
}

/* run, then STORE_ABSENT (result cleared) when no row came. */
static store_err run_row(pg_tx *t, int id, const params *p, PGresult **out)
{
    store_err rc = run(t, id, p, out);
    if (rc == STORE_OK && PQntuples(*out) == 0) {
        PQclear(*out);
        *out = NULL;
        rc = STORE_ABSENT;
    }
    return rc;
}

/* run a statement that changes rows; *rows of them. */
static store_err run_rows(pg_tx *t, int id, const params *p, int64_t *rows)
{
    PGresult *r = NULL;
    store_err rc = run(t, id, p, &r);
    *rows = rc == STORE_OK ? strtoll(PQcmdTuples(r), NULL, 10) : 0;
    PQclear(r);
    return rc;
}

/* run a conditional write: STORE_NOMATCH when it changed no row. */
static store_err run_match(pg_tx *t, int id, const params *p)
{
    int64_t rows = 0;
    store_err rc = run_rows(t, id, p, &rows);
    return rc == STORE_OK && rows == 0 ? STORE_NOMATCH : rc;
}

/* run a statement whose answer is one integer into *v (ABSENT: no row). */
static store_err run_i64(pg_tx *t, int id, const params *p, int64_t *v)
{
    PGresult *r = NULL;
    store_err rc = run_row(t, id, p, &r);
    if (rc == STORE_OK)
        *v = col_i64(r, 0, 0);
    PQclear(r);
    return rc;
}

/* ---- life, health, identity --------------------------------------------- */

static void pg_close(store_be *b)
{
    pg_be *p = be_of(b);
    if (p->hold_conn != NULL)
        pgc_return(p->hold_pool, p->hold_conn); /* closing it releases the hold */
    pgc_pool_close(p->hold_pool);
    pgc_pool_close(p->pool);
    arena_destroy(p->sql);
    free(p->conninfo);
    free(p);
}

/* A read of the schema's version on a pooled connection. */
static store_err pg_ping(store_be *b, char *why, size_t cap)
{
    pg_be *p = be_of(b);
    pgc_conn *c = NULL;
    PGresult *r = NULL;
    store_err rc = res_err(pgc_checkout(p->pool, &c));
    if (rc != STORE_OK) {
        snprintf(why, cap, "no connection to PostgreSQL (%s)", p->desc);
        return rc;
    }
    rc = res_err(pgc_run(c, S_PING, 0, NULL, NULL, NULL, &r));
    if (rc != STORE_OK)
        snprintf(why, cap, "PostgreSQL (%s): %s, SQLSTATE %s", p->desc, store_err_name(rc),
                 pgc_last_sqlstate(c));
    PQclear(r);
    pgc_return(p->pool, c);
    return rc;
}

static void pg_describe(store_be *b, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", be_of(b)->desc);
}

static const char *pg_spool_hint(store_be *b)
{
    (void)b;
    return NULL; /* no directory of its own */
}

/* The "try" answer of a session advisory lock taken on the hold connection. */
static store_err hold_try(pg_be *p, bool exclusive)
{
    char sql[128];
    PGresult *r = NULL;
    snprintf(sql, sizeof(sql),
             "SELECT pg_try_advisory_lock%s((%d::bigint << 32) | "
             "(hashtext(current_schema())::bigint & 4294967295))",
             exclusive ? "" : "_shared", PGC_LOCK_SPACE);
    store_err rc = res_err(pgc_exec(p->hold_conn, sql, &r));
    if (rc == STORE_OK && !col_bool(r, 0, 0)) {
        log_error(exclusive ? "a crmblob server is using %s: stop it first"
                            : "%s is being rekeyed: wait until `crmblob rekey` has finished",
                  p->desc);
        rc = STORE_UNAVAILABLE;
    }
    PQclear(r);
    return rc;
}

/* A connection of its own holds a session advisory lock until close:
 * shared by serving processes, alone by rekey. The lock is the schema's
 * (pg_conn.h): stores in other schemas of the database are not held off. */
static store_err pg_hold(store_be *b, store_hold_mode h)
{
    pg_be *p = be_of(b);
    pgc_options o = {.size = 1, .connect_timeout_s = PG_CONNECT_TIMEOUT_S};
    assert(p->hold_pool == NULL); /* once per open store */
    store_err rc = res_err(pgc_pool_open(p->conninfo, &o, &p->hold_pool));
    if (rc == STORE_OK)
        rc = res_err(pgc_checkout(p->hold_pool, &p->hold_conn));
    if (rc == STORE_OK)
        rc = hold_try(p, h == STORE_HOLD_EXCLUSIVE);
    if (rc != STORE_OK && p->hold_pool != NULL) {
        pgc_return(p->hold_pool, p->hold_conn);
        pgc_pool_close(p->hold_pool);
        p->hold_pool = NULL;
        p->hold_conn = NULL;
    }
    return rc;
}

/* ---- transactions ------------------------------------------------------- */

/* The statements that open a transaction of each mode; they are sent in
 * one pipeline with the transaction's first statement (a round trip saved
 * per transaction), so a transaction that runs none never begins. */
static const char *const begin_read[] = {"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL};
static const char *const begin_write[] = {"BEGIN ISOLATION LEVEL READ COMMITTED", NULL};
/* a row lock it would wait for fails at once (55P03: UNAVAILABLE) */
static const char *const begin_try[] = {"BEGIN ISOLATION LEVEL READ COMMITTED",
                                        "SET LOCAL lock_timeout = 1", NULL};
static const char *const *const begin_sql[] = {
    [STORE_TX_READ1] = NULL,
    [STORE_TX_READ] = begin_read,
    [STORE_TX_WRITE] = begin_write,
    [STORE_TX_TRY_WRITE] = begin_try,
};

/* sc: PostgreSQL never defers a write, so a scope's transactions are the
 * store's own. */
static store_err pg_begin(store_be *b, store_scope *sc, store_tx_mode m, store_tx **out)
{
    pg_be *p = be_of(b);
    pg_tx *t = calloc(1, sizeof(*t));
    (void)sc;
    *out = NULL;
    if (t == NULL)
        return STORE_INTERNAL;
    t->base = (store_tx){.be = b, .mode = m};
    t->begin = begin_sql[m];
    store_err rc = res_err(pgc_checkout(p->pool, &t->c));
    if (rc != STORE_OK) {
        free(t);
        return rc;
    }
    *out = &t->base;
    return STORE_OK;
}

/* COMMIT: its answer, or STORE_UNAVAILABLE when none came (the outcome is
 * unknown; the connection is not used again). */
static store_err commit(pg_tx *t)
{
    PGresult *r = NULL;
    pgc_res res = pgc_exec(t->c, "COMMIT", &r);
    store_err rc = res_err(res);
    if (res == PGC_UNAVAILABLE) {
        pgc_discard(t->c);
        log_warn("store: PostgreSQL: a COMMIT got no answer (SQLSTATE '%s'); its outcome is "
                 "unknown",
                 pgc_last_sqlstate(t->c));
    } else if (rc == STORE_OK && strcmp(PQcmdStatus(r), "COMMIT") != 0) {
        log_error("store: PostgreSQL rolled back a transaction asked to commit");
        rc = STORE_INTERNAL;
    }
    PQclear(r);
    return rc;
}

/* A transaction not committed is rolled back by pgc_return. */
static store_err pg_end(store_tx *tx, store_err rc)
{
    pg_tx *t = tx_of(tx);
    if (rc == STORE_OK)
        rc = t->failed;
    if (rc == STORE_OK && tx->mode != STORE_TX_READ1 && t->begin == NULL)
        rc = commit(t); /* (a transaction whose BEGIN was never sent has nothing to commit) */
    pgc_return(be_of(tx->be)->pool, t->c);
    free(t);
    return rc;
}

/* pg_advisory_xact_lock(PGC_LOCK_SPACE, PGC_LOCK_XLOCK * (what + 1) + key);
 * in TRY_WRITE, STORE_UNAVAILABLE rather than wait for it. */
static store_err pg_xlock(store_tx *tx, store_xlock what, int64_t key)
{
    pg_tx *t = tx_of(tx);
    params p = {0};
    assert(tx->mode == STORE_TX_WRITE || tx->mode == STORE_TX_TRY_WRITE);
    assert(key >= 0 && key < PGC_LOCK_XLOCK);
    p_i64(&p, PGC_LOCK_SPACE);
    p_i64(&p, PGC_LOCK_XLOCK * ((int64_t)what + 1) + key);
    if (tx->mode == STORE_TX_WRITE)
        return run(t, S_XLOCK, &p, NULL);
    PGresult *r = NULL;
    store_err rc = run_row(t, S_TRY_XLOCK, &p, &r);
    bool got = rc == STORE_OK && col_bool(r, 0, 0);
    PQclear(r);
    return rc == STORE_OK && !got ? STORE_UNAVAILABLE : rc;
}

/* ---- change notification ------------------------------------------------ */

static _Atomic uint64_t *pg_counts(store_be *b)
{
    (void)b;
    return NULL; /* no shared counts: the read cache validates by version */
}

static bool pg_counts_check(store_be *b)
{
    (void)b;
    return false;
}

static store_err pg_users_stamp(store_tx *tx, uint64_t *out)
{
    int64_t n = 0;
    store_err rc = run_i64(tx_of(tx), S_USERS_STAMP, NULL, &n);
    if (rc == STORE_ABSENT) {
        log_error("store: the counters row 'users' is missing");
        rc = STORE_INTERNAL;
    }
    *out = (uint64_t)n;
    return rc;
}

static store_err pg_users_bump(store_tx *tx)
{
    return run(tx_of(tx), S_USERS_BUMP, NULL, NULL);
}

/* ---- users -------------------------------------------------------------- */

/* A USER_COLS row. */
static void read_user(arena_t *a, const PGresult *r, int row, model_user *out)
{
    out->id = col_i32(r, row, 0);
    out->name = col_str(a, r, row, 1);
    out->full_name = col_str(a, r, row, 2);
    out->role = (model_role)col_i64(r, row, 3);
    out->disabled = col_bool(r, row, 4);
    out->pw_hash = col_str(a, r, row, 5);
    out->created_ms = col_i64(r, row, 6);
}

static store_err pg_user_insert(store_tx *tx, const model_user *u, int64_t created, int32_t *id)
{
    params p = {0};
    int64_t v = 0;
    p_text(&p, u->name);
    p_text(&p, u->full_name != NULL ? u->full_name : "");
    p_i64(&p, u->role);
    p_i64(&p, u->disabled);
    p_text(&p, u->pw_hash != NULL ? u->pw_hash : "");
    p_i64(&p, created);
    store_err rc = run_i64(tx_of(tx), S_USER_INSERT, &p, &v);
    *id = (int32_t)v;
    return rc;
}

static store_err pg_user_read(store_tx *tx, arena_t *a, int32_t id, const char *name,
                              model_user *out)
{
    params p = {0};
    PGresult *r = NULL;
    if (name != NULL)
        p_text(&p, name);
    else
        p_i64(&p, id);
    store_err rc = run_row(tx_of(tx), name != NULL ? S_USER_BY_NAME : S_USER_BY_ID, &p, &r);
    if (rc == STORE_OK)
        read_user(a, r, 0, out);
    PQclear(r);
    return rc;
}

static store_err pg_user_list(store_tx *tx, arena_t *a, model_user **out, size_t *n)
{
    PGresult *r = NULL;
    store_err rc = run(tx_of(tx), S_USER_LIST, NULL, &r);
    size_t rows = rc == STORE_OK ? (size_t)PQntuples(r) : 0;
    *out = arena_alloc(a, rows * sizeof(model_user));
    for (size_t i = 0; i < rows; i++)
        read_user(a, r, (int)i, &(*out)[i]);
    *n = rows;
    PQclear(r);
    return rc;
}

static store_err pg_user_count(store_tx *tx, int64_t *n)
{
    *n = 0;
    return run_i64(tx_of(tx), S_USER_COUNT, NULL, n);
}

static store_err pg_user_set(store_tx *tx, const char *name, const char *pw_hash, int disabled)
{
    params p = {0};
    p_text(&p, name);
    p_text(&p, pw_hash);
    p_i64(&p, disabled);
    return run_match(tx_of(tx), S_USER_SET, &p);
}

/* ---- credentials, partner apps, metadata -------------------------------- */

/* A CRED_COLS row. */
static void read_cred(arena_t *a, const PGresult *r, int row, store_cred *out)
{
    out->id = col_i64(r, row, 0);
    out->kind = (store_cred_kind)col_i64(r, row, 1);
    out->user_id = col_i32(r, row, 2);
    out->user_name = col_str(a, r, row, 3);
    out->created_ms = col_i64(r, row, 4);
    out->expires_ms = col_i64(r, row, 5);
    out->revoked = col_bool(r, row, 6);
    col_hash(r, row, 7, out->hash);
    col_hash(r, row, 8, out->xsrf_hash);
    out->label = col_str(a, r, row, 9);
    out->pair_id = col_i64(r, row, 10);
}

/* Only sessions keep an XSRF hash (NULL otherwise); pair_id 0 is none. */
static store_err pg_cred_insert(store_tx *tx, const store_cred *c, int64_t created, int64_t *id)
{
    params p = {0};
    p_i64(&p, c->kind);
    p_bytes(&p, c->hash, STORE_HASH_BYTES);
    p_i64(&p, c->user_id);
    p_i64(&p, created);
    p_i64(&p, c->expires_ms);
    p_i64(&p, c->revoked);
    if (c->kind == STORE_CRED_SESSION)
        p_bytes(&p, c->xsrf_hash, STORE_HASH_BYTES);
    else
        p_text(&p, NULL);
    p_text(&p, c->label != NULL ? c->label : "");
    p_ref(&p, c->pair_id > 0 ? c->pair_id : 0);
    *id = 0; /* as SQLite's: none unless inserted */
    return run_i64(tx_of(tx), S_CRED_INSERT, &p, id);
}

static store_err pg_cred_find(store_tx *tx, arena_t *a, store_cred_kind k,
                              const unsigned char hash[STORE_HASH_BYTES], store_cred *out)
{
    params p = {0};
    PGresult *r = NULL;
    p_i64(&p, k);
    p_bytes(&p, hash, STORE_HASH_BYTES);
    store_err rc = run_row(tx_of(tx), S_CRED_FIND, &p, &r);
    if (rc == STORE_OK)
        read_cred(a, r, 0, out);
    PQclear(r);
    return rc;
}

static store_err pg_cred_list(store_tx *tx, arena_t *a, store_cred_kind k, int64_t now,
                              store_cred **out, size_t *n)
{
    params p = {0};
    PGresult *r = NULL;
    p_i64(&p, k);
    p_i64(&p, now);
    store_err rc = run(tx_of(tx), S_CRED_LIST, &p, &r);
    size_t rows = rc == STORE_OK ? (size_t)PQntuples(r) : 0;
    *out = arena_alloc(a, rows * sizeof(store_cred));
    for (size_t i = 0; i < rows; i++)
        read_cred(a, r, (int)i, &(*out)[i]);
    *n = rows;
    PQclear(r);
    return rc;
}

static store_err pg_cred_revoke(store_tx *tx, store_cred_kind k, int64_t id)
{
    params p = {0};
    p_i64(&p, k);
    p_i64(&p, id);
    return run_match(tx_of(tx), S_CRED_REVOKE, &p); /* a revoked one matches too */
}

static store_err pg_cred_revoke_pair(store_tx *tx, int64_t id)
{
    params p = {0};
    p_i64(&p, id);
    return run(tx_of(tx), S_CRED_REVOKE_PAIR, &p, NULL);
}

static store_err pg_cred_revoke_user(store_tx *tx, int32_t user_id)
{
    params p = {0};
    p_i64(&p, user_id);
    return run(tx_of(tx), S_CRED_REVOKE_USER, &p, NULL);
}

static store_err pg_cred_purge(store_tx *tx, int64_t now)
{
    params p = {0};
    p_i64(&p, now);
    return run(tx_of(tx), S_CRED_PURGE, &p, NULL);
}

/* An APP_COLS row. */
static void read_app(arena_t *a, const PGresult *r, int row, store_app *out)
{
    out->id = col_i64(r, row, 0);
    out->name = col_str(a, r, row, 1);
    col_hash(r, row, 2, out->hash);
    out->created_ms = col_i64(r, row, 3);
    out->revoked = col_bool(r, row, 4);
}

static store_err pg_app_insert(store_tx *tx, const store_app *ap, int64_t created, int64_t *id)
{
    params p = {0};
    p_text(&p, ap->name);
    p_bytes(&p, ap->hash, STORE_HASH_BYTES);
    p_i64(&p, created);
    p_i64(&p, ap->revoked);
    return run_i64(tx_of(tx), S_APP_INSERT, &p, id);
}

static store_err pg_app_find(store_tx *tx, arena_t *a, const unsigned char hash[STORE_HASH_BYTES],
                             store_app *out)
{
    params p = {0};
    PGresult *r = NULL;
    p_bytes(&p, hash, STORE_HASH_BYTES);
    store_err rc = run_row(tx_of(tx), S_APP_FIND, &p, &r);
    if (rc == STORE_OK)
        read_app(a, r, 0, out);
    PQclear(r);
    return rc;
}

static store_err pg_app_list(store_tx *tx, arena_t *a, store_app **out, size_t *n)
{
    PGresult *r = NULL;
    store_err rc = run(tx_of(tx), S_APP_LIST, NULL, &r);
    size_t rows = rc == STORE_OK ? (size_t)PQntuples(r) : 0;
    *out = arena_alloc(a, rows * sizeof(store_app));
    for (size_t i = 0; i < rows; i++)
        read_app(a, r, (int)i, &(*out)[i]);
    *n = rows;
    PQclear(r);
    return rc;
}

static store_err pg_app_revoke(store_tx *tx, const char *name)
{
    params p = {0};
    p_text(&p, name);
    return run_match(tx_of(tx), S_APP_REVOKE, &p);
}

/* ---- batch tasks (store_task.c's recipes) -------------------------------- */

static void read_task(arena_t *a, const PGresult *r, int row, store_task *t)
{
    t->id = col_i64(r, row, 0);
    t->name = col_str(a, r, row, 1);
    t->description = col_str(a, r, row, 2);
    t->params = col_str(a, r, row, 3);
    t->associate_id = col_i32(r, row, 4);
    t->state = col_i32(r, row, 5);
    t->percent = col_i32(r, row, 6);
    t->progress = col_str(a, r, row, 7);
    t->result = col_str(a, r, row, 8);
    t->response = col_str(a, r, row, 9);
    t->file_name = col_str(a, r, row, 10);
    t->created_ms = col_i64(r, row, 11);
    t->started_ms = col_i64(r, row, 12);
    t->finished_ms = col_i64(r, row, 13);
    t->start_count = col_i32(r, row, 14);
    t->server = col_str(a, r, row, 15);
    t->lease_ms = col_i64(r, row, 16);
    t->stop = col_i64(r, row, 17) != 0;
    t->output_blob = col_i32(r, row, 18);
    t->input_blob = col_i32(r, row, 19);
}

static store_err pg_task_insert(store_tx *tx, const store_task *t, int64_t *id)
{
    params p = {0};
    p_text(&p, t->name);
    p_text(&p, t->description ? t->description : "");
    p_text(&p, t->params ? t->params : "{}");
    p_i64(&p, t->associate_id);
    p_i64(&p, t->created_ms);
    return run_i64(tx_of(tx), S_TASK_INSERT, &p, id);
}

static store_err pg_task_read(store_tx *tx, arena_t *a, int64_t id, store_task *out)
{
    params p = {0};
    PGresult *r = NULL;
    p_i64(&p, id);
    store_err rc = run_row(tx_of(tx), S_TASK_READ, &p, &r);
    if (rc == STORE_OK)
        read_task(a, r, 0, out);
    PQclear(r);
    return rc;
}

static store_err pg_task_list(store_tx *tx, arena_t *a, const store_task_query *q,
                              store_task **out, size_t *n)
{
    params p = {0};
    PGresult *r = NULL;
    p_text(&p, q->name);
    p_i64(&p, q->state);
    p_i64(&p, q->associate);
    store_err rc = run(tx_of(tx), S_TASK_LIST, &p, &r);
    size_t rows = rc == STORE_OK ? (size_t)PQntuples(r) : 0;
    *out = arena_alloc(a, rows * sizeof(store_task));
    for (size_t i = 0; i < rows; i++)
        read_task(a, r, (int)i, &(*out)[i]);
    *n = rows;
    PQclear(r);
    return rc;
}

static store_err pg_task_next_new(store_tx *tx, int64_t *id)
{
    *id = 0;
    return run_i64(tx_of(tx), S_TASK_NEXT_NEW, NULL, id);
}

static store_err pg_task_claim(store_tx *tx, int64_t id, const char *server, int64_t now,
                               int64_t lease)
{
    params p = {0};
    p_i64(&p, id);
    p_text(&p, server);
    p_i64(&p, now);
    p_i64(&p, lease);
    return run_match(tx_of(tx), S_TASK_CLAIM, &p);
}

static store_err pg_task_beat(store_tx *tx, int64_t id, const char *server, int64_t lease,
                              int percent, const char *progress, bool *stop)
{
    params p = {0};
    int64_t v = 0;
    p_i64(&p, id);
    p_text(&p, server);
    p_i64(&p, lease);
    p_i64(&p, percent);
    p_text(&p, progress);
    store_err rc = run_i64(tx_of(tx), S_TASK_BEAT, &p, &v);
    if (rc == STORE_OK)
        *stop = v != 0;
    return rc == STORE_ABSENT ? STORE_NOMATCH : rc;
}

static store_err pg_task_finish(store_tx *tx, const store_task *t, const char *server, int64_t now)
{
    params p = {0};
    p_i64(&p, t->id);
    p_text(&p, server);
    p_i64(&p, t->state);
    p_i64(&p, t->percent);
    p_text(&p, t->progress ? t->progress : "");
    p_text(&p, t->result ? t->result : "");
    p_text(&p, t->response ? t->response : "");
    p_text(&p, t->file_name ? t->file_name : "");
    p_ref(&p, t->output_blob);
    p_i64(&p, now);
    return run_match(tx_of(tx), S_TASK_FINISH, &p);
}

static store_err pg_task_fail_new(store_tx *tx, int64_t id, const char *result, int64_t now)
{
    params p = {0};
    p_i64(&p, id);
    p_text(&p, result);
    p_i64(&p, now);
    return run_match(tx_of(tx), S_TASK_FAIL_NEW, &p);
}

static store_err pg_task_set_stop(store_tx *tx, int64_t id)
{
    params p = {0};
    p_i64(&p, id);
    return run_match(tx_of(tx), S_TASK_SET_STOP, &p);
}

static store_err pg_task_delete(store_tx *tx, int64_t id)
{
    params p = {0};
    p_i64(&p, id);
    return run_match(tx_of(tx), S_TASK_DELETE, &p);
}

static store_err pg_task_reap(store_tx *tx, int64_t now, const char *result, int64_t *n)
{
    params p = {0};
    p_i64(&p, now);
    p_text(&p, result);
    return run_rows(tx_of(tx), S_TASK_REAP, &p, n);
}

static store_err pg_task_expired(store_tx *tx, arena_t *a, int64_t cutoff, int max, int64_t **ids,
                                 size_t *n)
{
    params p = {0};
    PGresult *r = NULL;
    p_i64(&p, cutoff);
    p_i64(&p, max);
    store_err rc = run(tx_of(tx), S_TASK_EXPIRED, &p, &r);
    size_t rows = rc == STORE_OK ? (size_t)PQntuples(r) : 0;
    *ids = arena_alloc(a, rows * sizeof(int64_t));
    for (size_t i = 0; i < rows; i++)
        (*ids)[i] = col_i64(r, (int)i, 0);
    *n = rows;
    PQclear(r);
    return rc;
}

static store_err pg_meta_get(store_tx *tx, arena_t *a, const char *name, void **v, size_t *n)
{
    params p = {0};
    PGresult *r = NULL;
    *v = NULL;
    *n = 0;
    p_text(&p, name);
    store_err rc = run_row(tx_of(tx), S_META_GET, &p, &r);
    if (rc == STORE_OK)
        rc = col_bytes(a, r, 0, 0, v, n);
    PQclear(r);
    return rc;
}

static store_err pg_meta_put(store_tx *tx, const char *name, const void *v, size_t n)
{
    params p = {0};
    if (n > INT_MAX)
        return STORE_TOO_LARGE;
    p_text(&p, name);
    p_bytes(&p, v, n);
    return run(tx_of(tx), S_META_PUT, &p, NULL);
}

/* ---- entities ------------------------------------------------------------
 * Every entity statement's row is (id, fields..., image_blob_id, version,
 * updated_ms, thumb_blob_id); the thumbnail column is a product's only. */

/* Binds $1 = id, $2.. = the fields (a reference of 0 is NULL). */
static void p_entity(params *p, const model_entity_t *e)
{
    const model_entity_def *d = model_entity(e->kind);
    p_i64(p, e->id);
    for (int i = 0; i < d->nfields; i++) {
        const model_field *f = &d->fields[i];
        if (f->type == MODEL_FT_STRING)
            p_text(p, e->v[i].s != NULL ? e->v[i].s : "");
        else if (f->ref >= 0)
            p_ref(p, e->v[i].i);
        else
            p_i64(p, e->v[i].i);
    }
}

/* Entity row `row` of r into *out; field values only when a != NULL. */
static void read_entity_at(arena_t *a, const PGresult *r, int row, model_kind k,
                           store_ent_row *out)
{
    const model_entity_def *d = model_entity(k);
    int n = d->nfields;
    memset(out, 0, sizeof(*out));
    out->e.kind = k;
    out->e.id = col_i32(r, row, 0);
    for (int i = 0; a != NULL && i < n; i++) {
        if (d->fields[i].type == MODEL_FT_STRING)
            out->e.v[i].s = col_str(a, r, row, 1 + i);
        else
            out->e.v[i].i = col_i32(r, row, 1 + i); /* NULL reference -> 0 */
    }
    out->image_blob_id = col_i32(r, row, 1 + n);
    out->e.version = col_i64(r, row, 2 + n);
    out->e.updated_ms = col_i64(r, row, 3 + n);
    out->thumb_blob_id = col_i32(r, row, 4 + n);
}

static void read_entity(arena_t *a, const PGresult *r, model_kind k, store_ent_row *out)
{
    read_entity_at(a, r, 0, k, out);
}

/* Locks apply in write transactions only: a READ snapshot cannot lock
 * (PostgreSQL refuses FOR SHARE in READ ONLY), and SQLite's reads never do. */
static int lock_of(const store_tx *tx, store_row_lock l)
{
    bool writes = tx->mode == STORE_TX_WRITE || tx->mode == STORE_TX_TRY_WRITE;
    return !writes || l == STORE_ROW_PLAIN ? 0 : l == STORE_ROW_SHARE ? 1 : 2;
}

static store_err pg_ent_read(store_tx *tx, arena_t *a, model_kind k, int32_t id, store_row_lock l,
                             store_ent_row *out)
{
    params p = {0};
    PGresult *r = NULL;
    p_i64(&p, id);
    store_err rc = run_row(tx_of(tx), kind_stmt(k, K_READ + lock_of(tx, l)), &p, &r);
    if (rc == STORE_OK)
        read_entity(a, r, k, out);
    PQclear(r);
    return rc;
}

/* ---- entity lists: one statement made for the query (its keys and
 * filter vary), sent unprepared (Parse, Bind, Execute: one round trip),
 * over the list indexes of schema v7: (lower(field) COLLATE "C", id)
 * serves ORDER BY that field and the prefix range; the primary key the
 * order by id. NULL references sort as 0 would (first ascending). */

/* The sort expression of a field: lower(e.col) COLLATE "C", e.col, e.id. */
static const char *list_col(arena_t *a, const model_entity_def *d, int field)
{
    if (field < 0)
        return "e.id";
    const model_field *f = &d->fields[field];
    return f->type == MODEL_FT_STRING ? arena_printf(a, "lower(e.%s) COLLATE \"C\"", f->column)
                                      : arena_printf(a, "e.%s", f->column);
}

static const char *list_dir(const model_entity_def *d, const store_list_key *k)
{
    bool nullable = k->field >= 0 && d->fields[k->field].type == MODEL_FT_INT;
    if (!nullable)
        return k->desc ? "DESC" : "ASC";
    return k->desc ? "DESC NULLS LAST" : "ASC NULLS FIRST";
}

/* The statement of q: $1 limit, $2 offset, $3 prefix, $4 its upper bound. */
static const char *list_sql(arena_t *a, const store_list_query *q)
{
    const model_entity_def *d = model_entity(q->kind);
    const char *cols = "", *where = "", *order = "";
    for (int i = 0; i < d->nfields; i++)
        cols = arena_printf(a, "%s%se.%s", cols, i ? ", " : "", d->fields[i].column);
    for (int i = 0; q->prefix != NULL && i < d->nnames; i++) {
        const char *col = list_col(a, d, i);
        where = arena_printf(a, "%s%s(%s >= $3 AND %s < $4)", where, i ? " OR " : " WHERE ", col,
                             col);
    }
    for (int i = 0; i < q->nkeys; i++)
        order = arena_printf(a, "%s%s%s %s", order, i ? ", " : "", list_col(a, d, q->keys[i].field),
                             list_dir(d, &q->keys[i]));
    return arena_printf(a,
                        "SELECT e.id, %s, e.image_blob_id, e.version, e.updated_ms, NULL::integer, "
                        "coalesce(b.version, 0) FROM %s AS e LEFT JOIN blob AS b ON b.id = "
                        "e.image_blob_id%s ORDER BY %s LIMIT $1 OFFSET $2",
                        cols, d->table, where, order);
}

/* Runs text sql in t (after t's BEGIN, when it has one still to send). */
static store_err run_sql(pg_tx *t, const char *sql, const params *p, PGresult **out)
{
    *out = NULL;
    if (t->failed != STORE_OK)
        return t->failed;
    store_err rc = STORE_OK;
    for (int i = 0; t->begin != NULL && t->begin[i] != NULL && rc == STORE_OK; i++)
        rc = res_err(pgc_exec(t->c, t->begin[i], NULL));
    t->begin = NULL;
    if (rc == STORE_OK)
        rc = res_err(pgc_exec_params(t->c, sql, p->n, p->v, out));
    if (rc != STORE_OK && t->base.mode != STORE_TX_READ1)
        t->failed = rc;
    return rc;
}

static store_err pg_ent_list(store_tx *tx, arena_t *a, const store_list_query *q,
                             const char *upper, int limit, store_list_item *rows, int *n)
{
    const model_entity_def *d = model_entity(q->kind);
    params p = {0};
    PGresult *r = NULL;
    *n = 0;
    p_i64(&p, limit);
    p_i64(&p, q->skip);
    if (q->prefix != NULL) {
        p_text(&p, q->prefix);
        p_text(&p, upper);
    }
    store_err rc = run_sql(tx_of(tx), list_sql(a, q), &p, &r);
    for (int row = 0; rc == STORE_OK && row < PQntuples(r) && row < limit; row++) {
        store_ent_row e;
        read_entity_at(a, r, row, q->kind, &e);
        rows[row] = (store_list_item){.e = e.e, .image_blob_id = e.image_blob_id,
                                      .image_version = col_i64(r, row, 5 + d->nfields)};
        (*n)++;
    }
    PQclear(r);
    return rc;
}

/* NULL (every id taken) or beyond int32: CONFLICT. */
static store_err pg_ent_next_id(store_tx *tx, model_kind k, int32_t *id)
{
    PGresult *r = NULL;
    store_err rc = run_row(tx_of(tx), kind_stmt(k, K_NEXT_ID), NULL, &r);
    if (rc == STORE_ABSENT)
        rc = STORE_INTERNAL; /* an aggregate has a row */
    if (rc == STORE_OK && (PQgetisnull(r, 0, 0) || col_i64(r, 0, 0) > INT32_MAX)) {
        log_warn("store: every %s id up to %d is taken", model_entity(k)->name, INT32_MAX);
        rc = STORE_CONFLICT;
    }
    if (rc == STORE_OK)
        *id = col_i32(r, 0, 0);
    PQclear(r);
    return rc;
}

/* Reads "version, updated_ms" of a RETURNING answer. */
static store_err run_stamp(pg_tx *t, int id, const params *p, int64_t *version, int64_t *updated_ms)
{
    PGresult *r = NULL;
    store_err rc = run_row(t, id, p, &r);
    if (rc == STORE_OK) {
        *version = col_i64(r, 0, 0);
        *updated_ms = col_i64(r, 0, 1);
    }
    PQclear(r);
    return rc;
}

static store_err pg_ent_insert(store_tx *tx, const model_entity_t *e, int64_t now, int64_t *version,
                               int64_t *updated_ms)
{
    params p = {0};
    p_entity(&p, e);
    p_i64(&p, now);
    store_err rc = run_stamp(tx_of(tx), kind_stmt(e->kind, K_INSERT), &p, version, updated_ms);
    return rc == STORE_ABSENT ? STORE_INTERNAL : rc; /* an INSERT ... RETURNING has its row */
}

static store_err pg_ent_update(store_tx *tx, const model_entity_t *e, int64_t expect, int64_t now,
                               int64_t *version, int64_t *updated_ms)
{
    params p = {0};
    p_entity(&p, e);
    p_i64(&p, now);
    p_i64(&p, expect);
    store_err rc = run_stamp(tx_of(tx), kind_stmt(e->kind, K_UPDATE), &p, version, updated_ms);
    return rc == STORE_ABSENT ? STORE_NOMATCH : rc;
}

/* gone: the deleted row's id, links, version and time (no field values:
 * there is no arena for them). */
static store_err pg_ent_delete(store_tx *tx, model_kind k, int32_t id, int64_t expect,
                               store_ent_row *gone)
{
    params p = {0};
    PGresult *r = NULL;
    p_i64(&p, id);
    p_i64(&p, expect);
    store_err rc = run_row(tx_of(tx), kind_stmt(k, K_DELETE), &p, &r);
    if (rc == STORE_OK && gone != NULL)
        read_entity(NULL, r, k, gone);
    PQclear(r);
    return rc == STORE_ABSENT ? STORE_NOMATCH : rc;
}

/* NOMATCH: no such entity. blob_id 0: none. */
static store_err pg_ent_set_image(store_tx *tx, model_kind k, int32_t id, int32_t blob_id)
{
    params p = {0};
    p_i64(&p, id);
    p_ref(&p, blob_id);
    return run_match(tx_of(tx), kind_stmt(k, K_SET_IMAGE), &p);
}

static store_err pg_ent_set_thumb(store_tx *tx, int32_t product_id, int32_t blob_id)
{
    params p = {0};
    p_i64(&p, product_id);
    p_ref(&p, blob_id);
    return run_match(tx_of(tx), S_THUMB_SET, &p);
}

/* ---- BLOB records ------------------------------------------------------- */

/* The user in columns [c, c + 6) of a BLOB_SELECT row (NULL when the join
 * found none); pw_hash is not read. */
static model_user *read_ref(arena_t *a, const PGresult *r, int c)
{
    if (a == NULL || PQgetisnull(r, 0, c))
        return NULL;
    model_user *u = arena_alloc(a, sizeof(*u));
    *u = (model_user){.id = col_i32(r, 0, c),
                      .name = col_str(a, r, 0, c + 1),
                      .full_name = col_str(a, r, 0, c + 2),
                      .role = (model_role)col_i64(r, 0, c + 3),
                      .disabled = col_bool(r, 0, c + 4),
                      .pw_hash = "",
                      .created_ms = col_i64(r, 0, c + 5)};
    return u;
}

/* A text column of a BLOB_SELECT row; NULL when a is NULL (a lock, a
 * check of versions: the strings are not wanted). */
static const char *blob_str(arena_t *a, const PGresult *r, int col)
{
    return a != NULL ? col_str(a, r, 0, col) : NULL;
}

/* A BLOB_SELECT row; a == NULL: no strings, no users. */
static void read_blob_row(arena_t *a, const PGresult *r, store_blob_row *out)
{
    model_blob *b = &out->b;
    memset(out, 0, sizeof(*out));
    b->blob_id = col_i32(r, 0, 0);
    b->description = blob_str(a, r, 1);
    b->extra_info = blob_str(a, r, 2);
    b->mime_type = blob_str(a, r, 3);
    b->conceptual_type = blob_str(a, r, 4);
    b->blob_size = col_i32(r, 0, 5);
    b->original_size = col_i32(r, 0, 6);
    b->is_zipped = col_bool(r, 0, 7);
    b->is_encrypted = col_bool(r, 0, 8);
    b->created_ms = col_i64(r, 0, 9);
    b->updated_ms = col_i64(r, 0, 10);
    out->created_by = col_i32(r, 0, 11);
    out->updated_by = col_i32(r, 0, 12);
    b->version = col_i64(r, 0, 13);
    b->info_version = col_i64(r, 0, 14);
    out->unlinked_ms = PQgetisnull(r, 0, 15) ? INT64_MIN : col_i64(r, 0, 15);
    out->created = read_ref(a, r, 16);
    out->updated = read_ref(a, r, 22);
}

/* Runs a statement answering a BLOB_SELECT row into *out; `none` for no row. */
static store_err blob_row(pg_tx *t, arena_t *a, int id, const params *p, store_err none,
                          store_blob_row *out)
{
    PGresult *r = NULL;
    store_err rc = run_row(t, id, p, &r);
    if (rc == STORE_OK)
        read_blob_row(a, r, out);
    PQclear(r);
    return rc == STORE_ABSENT ? none : rc;
}

static store_err pg_blob_read(store_tx *tx, arena_t *a, int32_t id, store_row_lock l,
                              store_blob_row *out)
{
    params p = {0};
    p_i64(&p, id);
    return blob_row(tx_of(tx), a, S_BLOB_READ + lock_of(tx, l), &p, STORE_ABSENT, out);
}

/* One K_IMAGE row: BLOB_SELECT's columns, then the entity's id, image and
 * thumbnail links and the piece's bytes (NULL: not asked, larger, or none). */
static store_err pg_image_read(store_tx *tx, arena_t *a, model_kind k, int32_t id, bool with_bytes,
                               store_image_row *out)
{
    params p = {0};
    PGresult *r = NULL;
    memset(out, 0, sizeof(*out));
    p_i64(&p, id);
    p_i64(&p, with_bytes ? 1 : 0);
    store_err rc = run_row(tx_of(tx), kind_stmt(k, K_IMAGE), &p, &r);
    if (rc != STORE_OK)
        return rc;
    if (!PQgetisnull(r, 0, 0))
        read_blob_row(a, r, &out->rec);
    out->ent.e = (model_entity_t){.kind = k, .id = col_i32(r, 0, BLOB_NCOLS)};
    out->ent.image_blob_id = col_i32(r, 0, BLOB_NCOLS + 1);
    out->ent.thumb_blob_id = col_i32(r, 0, BLOB_NCOLS + 2);
    if (!PQgetisnull(r, 0, BLOB_NCOLS + 3)) { /* binary results: the bytes as they are */
        out->len = (size_t)PQgetlength(r, 0, BLOB_NCOLS + 3);
        if ((out->bytes = malloc(out->len > 0 ? out->len : 1)) == NULL)
            rc = STORE_INTERNAL;
        else
            memcpy(out->bytes, PQgetvalue(r, 0, BLOB_NCOLS + 3), out->len);
        out->has_bytes = rc == STORE_OK;
    }
    PQclear(r);
    return rc;
}

static store_err pg_blob_insert(store_tx *tx, const char *ct, int32_t user, int64_t now,
                                int64_t unlinked_ms, int32_t *id)
{
    params p = {0};
    int64_t v = 0;
    p_text(&p, ct);
    p_i64(&p, now);
    p_i64(&p, user);
    if (unlinked_ms == INT64_MIN)
        p_text(&p, NULL); /* linked */
    else
        p_i64(&p, unlinked_ms);
    store_err rc = run_i64(tx_of(tx), S_BLOB_INSERT, &p, &v);
    *id = (int32_t)v;
    return rc;
}

static store_err pg_blob_set_info(store_tx *tx, arena_t *a, int32_t id, const model_blob_edit *ed,
                                  int32_t user, int64_t now, int64_t expect_info,
                                  store_blob_row *out)
{
    static const model_blob_edit keep;
    params p = {0};
    if (ed == NULL)
        ed = &keep;
    p_i64(&p, id);
    p_text(&p, ed->description);
    p_text(&p, ed->extra_info);
    p_text(&p, ed->conceptual_type);
    p_i64(&p, now);
    p_i64(&p, user);
    p_i64(&p, expect_info);
    return blob_row(tx_of(tx), a, S_BLOB_SET_INFO, &p, STORE_NOMATCH, out);
}

static store_err pg_blob_set_content(store_tx *tx, arena_t *a, int32_t id, const store_pic_meta *m,
                                     int32_t user, int64_t now, int64_t expect_version,
                                     store_blob_row *out)
{
    params p = {0};
    p_i64(&p, id);
    p_text(&p, m->mime != NULL ? m->mime : "");
    p_i64(&p, m->size);
    p_i64(&p, m->original_size);
    p_i64(&p, m->zipped);
    p_i64(&p, m->encrypted);
    p_i64(&p, now);
    p_i64(&p, user);
    p_i64(&p, expect_version);
    return blob_row(tx_of(tx), a, S_BLOB_SET_CONTENT, &p, STORE_NOMATCH, out);
}

/* NOMATCH: no such record. */
static store_err pg_blob_set_stored(store_tx *tx, int32_t id, int64_t size, bool z, bool e)
{
    params p = {0};
    p_i64(&p, id);
    p_i64(&p, size);
    p_i64(&p, z);
    p_i64(&p, e);
    return run_match(tx_of(tx), S_BLOB_SET_STORED, &p);
}

static store_err pg_blob_claim(store_tx *tx, int32_t id)
{
    params p = {0};
    p_i64(&p, id);
    return run_match(tx_of(tx), S_BLOB_CLAIM, &p);
}

/* NOMATCH: no such record. */
static store_err pg_blob_unlink(store_tx *tx, int32_t id, int64_t since)
{
    params p = {0};
    p_i64(&p, id);
    p_i64(&p, since);
    return run_match(tx_of(tx), S_BLOB_UNLINK, &p);
}

/* STORE_OK when there was none. */
static store_err pg_blob_delete(store_tx *tx, int32_t id)
{
    params p = {0};
    p_i64(&p, id);
    return run(tx_of(tx), S_BLOB_DELETE, &p, NULL);
}

static store_err pg_blob_sweep(store_tx *tx, int64_t cutoff, int64_t *n)
{
    params p = {0};
    p_i64(&p, cutoff);
    return run_rows(tx_of(tx), G_SWEEP, &p, n); /* the blob rows, not their cascades */
}

static store_err pg_blob_next_stored(store_tx *tx, int32_t after, int32_t *id)
{
    params p = {0};
    int64_t v = 0;
    p_i64(&p, after);
    store_err rc = run_i64(tx_of(tx), S_BLOB_NEXT_STORED, &p, &v);
    *id = (int32_t)v;
    return rc;
}

/* ---- the project image library ------------------------------------------ */

static store_err pg_lib_add(store_tx *tx, int32_t blob_id, int64_t now)
{
    params p = {0};
    p_i64(&p, blob_id);
    p_i64(&p, now);
    return run(tx_of(tx), S_LIB_ADD, &p, NULL);
}

static store_err pg_lib_next(store_tx *tx, int32_t after, int32_t *id)
{
    params p = {0};
    int64_t v = 0;
    p_i64(&p, after);
    store_err rc = run_i64(tx_of(tx), S_LIB_NEXT, &p, &v);
    *id = (int32_t)v;
    return rc;
}

/* ---- the files of batch tasks (batch_file; bytes in blob_piece) ---------- */

static store_err pg_file_insert(store_tx *tx, int32_t blob_id, int64_t task, int kind, int part)
{
    params p = {0};
    p_i64(&p, blob_id);
    p_ref(&p, task);
    p_i64(&p, kind);
    p_i64(&p, part);
    return run(tx_of(tx), S_FILE_INSERT, &p, NULL);
}

static void read_file(const PGresult *r, int row, store_file_row *f)
{
    f->blob_id = col_i32(r, row, 0);
    f->task = col_i64(r, row, 1);
    f->kind = col_i32(r, row, 2);
    f->part = col_i32(r, row, 3);
    f->done = col_i64(r, row, 4) != 0;
    f->size = col_i64(r, row, 5);
    f->original_size = col_i64(r, row, 6);
    f->zipped = col_i64(r, row, 7) != 0;
    f->encrypted = col_i64(r, row, 8) != 0;
    f->version = col_i64(r, row, 9);
}

static store_err pg_file_read(store_tx *tx, int32_t blob_id, store_file_row *out)
{
    params p = {0};
    PGresult *r = NULL;
    p_i64(&p, blob_id);
    store_err rc = run_row(tx_of(tx), S_FILE_READ, &p, &r);
    if (rc == STORE_OK)
        read_file(r, 0, out);
    PQclear(r);
    return rc;
}

static store_err pg_file_list(store_tx *tx, int64_t task, int kind, store_file_row *rows, int max,
                              int *n)
{
    params p = {0};
    PGresult *r = NULL;
    p_i64(&p, task);
    p_i64(&p, kind);
    p_i64(&p, max);
    store_err rc = run(tx_of(tx), S_FILE_LIST, &p, &r);
    *n = rc == STORE_OK ? PQntuples(r) : 0;
    if (*n > max)
        *n = max;
    for (int i = 0; i < *n; i++)
        read_file(r, i, &rows[i]);
    PQclear(r);
    return rc;
}

static store_err pg_file_done(store_tx *tx, int32_t blob_id)
{
    params p = {0};
    p_i64(&p, blob_id);
    return run_match(tx_of(tx), S_FILE_DONE, &p);
}

static store_err pg_file_bind(store_tx *tx, int32_t blob_id, int64_t task)
{
    params p = {0};
    p_i64(&p, blob_id);
    p_i64(&p, task);
    return run_match(tx_of(tx), S_FILE_BIND, &p);
}

static store_err pg_piece_put(store_tx *tx, int32_t blob_id, int64_t n, const void *bytes,
                              size_t len)
{
    params p = {0};
    assert(len <= STORE_PIECE);
    p_i64(&p, blob_id);
    p_i64(&p, n);
    p_bytes(&p, bytes, len);
    return run(tx_of(tx), S_PIC_PUT, &p, NULL);
}

static store_err pg_file_release(store_tx *tx, int32_t blob_id)
{
    params p = {0};
    p_i64(&p, blob_id);
    return run_match(tx_of(tx), S_FILE_RELEASE, &p);
}

static store_err pg_file_stale(store_tx *tx, int64_t cutoff, int32_t *ids, int max, int *n)
{
    params p = {0};
    PGresult *r = NULL;
    p_i64(&p, cutoff);
    p_i64(&p, max);
    store_err rc = run(tx_of(tx), S_FILE_STALE, &p, &r);
    *n = rc == STORE_OK ? PQntuples(r) : 0;
    if (*n > max)
        *n = max;
    for (int i = 0; i < *n; i++)
        ids[i] = col_i32(r, i, 0);
    PQclear(r);
    return rc;
}

static store_err pg_file_release_stale(store_tx *tx, int32_t blob_id, int64_t cutoff)
{
    params p = {0};
    p_i64(&p, blob_id);
    p_i64(&p, cutoff);
    return run_match(tx_of(tx), S_FILE_RELEASE_STALE, &p);
}

static store_err pg_piece_drop(store_tx *tx, int32_t blob_id, int max, int64_t *n)
{
    params p = {0};
    p_i64(&p, blob_id);
    p_i64(&p, max);
    return run_rows(tx_of(tx), S_PIECE_DROP, &p, n);
}

static store_err pg_piece_get(store_tx *tx, int32_t blob_id, int64_t n, void *buf, size_t cap,
                              size_t *len)
{
    params p = {0};
    PGresult *r = NULL;
    p_i64(&p, blob_id);
    p_i64(&p, n);
    *len = 0;
    store_err rc = run_row(tx_of(tx), S_PIECE_GET, &p, &r);
    size_t got = rc == STORE_OK ? (size_t)PQgetlength(r, 0, 0) : 0;
    if (rc == STORE_OK && got > cap) {
        log_error("store: piece %lld of BLOB %d holds %zu bytes", (long long)n, blob_id, got);
        rc = STORE_CORRUPT;
    }
    if (rc == STORE_OK) {
        memcpy(buf, PQgetvalue(r, 0, 0), got);
        *len = got;
    }
    PQclear(r);
    return rc;
}

/* ---- picture bytes ------------------------------------------------------ */

/* The bytes before any written so far go: a picture is replaced whole. */
static store_err pg_pic_write_open(store_tx *tx, int32_t blob_id, int64_t size, store_pic_w **out)
{
    params p = {0};
    assert(size >= 0);
    *out = NULL;
    p_i64(&p, blob_id);
    store_err rc = run(tx_of(tx), S_PIC_CLEAR, &p, NULL);
    if (rc != STORE_OK)
        return rc;
    store_pic_w *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return STORE_INTERNAL;
    *w = (store_pic_w){.t = tx_of(tx), .blob_id = blob_id, .size = size};
    *out = w;
    return STORE_OK;
}

/* Inserts the next piece: bytes [0, n). */
static store_err piece_put(store_pic_w *w, const void *bytes, size_t n)
{
    params p = {0};
    p_i64(&p, w->blob_id);
    p_i64(&p, w->next);
    p_bytes(&p, bytes, n);
    store_err rc = run(w->t, S_PIC_PUT, &p, NULL);
    w->next++;
    return rc;
}

/* A whole piece at a piece boundary goes as it is; anything else is
 * gathered into w->buf until a piece is full. */
static store_err pg_pic_write(store_pic_w *w, const void *src, size_t n)
{
    const unsigned char *s = src;
    store_err rc = STORE_OK;
    assert(n <= STORE_PIECE);
    if (w->done + (int64_t)n > w->size) {
        log_error("store: %lld picture bytes written of %lld announced",
                  (long long)(w->done + (int64_t)n), (long long)w->size);
        return STORE_INTERNAL;
    }
    w->done += (int64_t)n;
    if (w->fill == 0 && n == STORE_PIECE)
        return piece_put(w, s, n);
    if (w->buf == NULL && n > 0 &&
        (w->buf = malloc(w->size < STORE_PIECE ? (size_t)w->size : STORE_PIECE)) == NULL)
        return STORE_INTERNAL; /* no more than the picture needs */
    while (n > 0 && rc == STORE_OK) {
        size_t take = STORE_PIECE - w->fill < n ? STORE_PIECE - w->fill : n;
        memcpy(w->buf + w->fill, s, take);
        w->fill += take;
        s += take;
        n -= take;
        if (w->fill == STORE_PIECE) {
            rc = piece_put(w, w->buf, STORE_PIECE);
            w->fill = 0;
        }
    }
    return rc;
}

/* The last piece (an empty one for a picture of 0 bytes), and the check
 * that exactly the size announced came. */
static store_err pg_pic_write_close(store_pic_w *w, store_err rc)
{
    if (rc == STORE_OK && w->done != w->size) {
        log_error("store: %lld picture bytes written of %lld announced", (long long)w->done,
                  (long long)w->size);
        rc = STORE_INTERNAL;
    }
    if (rc == STORE_OK && (w->fill > 0 || w->next == 0))
        rc = piece_put(w, w->buf, w->fill);
    free(w->buf);
    free(w);
    return rc;
}

/* ABSENT: no piece, the record holds no bytes. */
static store_err pg_pic_read_open(store_tx *tx, int32_t blob_id, int64_t *size, store_pic_r **out)
{
    params p = {0};
    PGresult *r = NULL;
    *out = NULL;
    p_i64(&p, blob_id);
    store_err rc = run_row(tx_of(tx), S_PIC_SIZE, &p, &r);
    if (rc == STORE_OK && col_i64(r, 0, 0) == 0)
        rc = STORE_ABSENT;
    int64_t n = rc == STORE_OK ? col_i64(r, 0, 1) : 0;
    PQclear(r);
    if (rc != STORE_OK)
        return rc;
    store_pic_r *pr = calloc(1, sizeof(*pr));
    if (pr == NULL)
        return STORE_INTERNAL;
    *pr = (store_pic_r){.t = tx_of(tx), .blob_id = blob_id, .size = n};
    *size = n;
    *out = pr;
    return STORE_OK;
}

/* Bytes [within, within + n) of piece `piece` into buf. */
static store_err piece_get(store_pic_r *pr, int64_t piece, int64_t within, void *buf, size_t n)
{
    params p = {0};
    PGresult *r = NULL;
    p_i64(&p, pr->blob_id);
    p_i64(&p, piece);
    p_i64(&p, within + 1); /* substring counts from 1 */
    p_i64(&p, (int64_t)n);
    store_err rc = run_row(pr->t, S_PIC_GET, &p, &r);
    if (rc == STORE_OK && (size_t)PQgetlength(r, 0, 0) != n)
        rc = STORE_ABSENT;
    if (rc == STORE_OK)
        memcpy(buf, PQgetvalue(r, 0, 0), n);
    PQclear(r);
    if (rc == STORE_ABSENT) {
        log_error("store: BLOB %d lacks bytes of its piece %lld", pr->blob_id, (long long)piece);
        rc = STORE_CORRUPT;
    }
    return rc;
}

/* One piece or the end of one and the start of the next. */
static store_err pg_pic_read(store_pic_r *pr, int64_t off, void *buf, size_t n)
{
    unsigned char *out = buf;
    store_err rc = STORE_OK;
    assert(n <= STORE_PIECE);
    if (off < 0 || off + (int64_t)n > pr->size) {
        log_error("store: a read of picture bytes beyond their end");
        return STORE_INTERNAL;
    }
    while (n > 0 && rc == STORE_OK) {
        int64_t within = off % STORE_PIECE;
        size_t take = (size_t)(STORE_PIECE - within) < n ? (size_t)(STORE_PIECE - within) : n;
        rc = piece_get(pr, off / STORE_PIECE, within, out, take);
        off += (int64_t)take;
        out += take;
        n -= take;
    }
    return rc;
}

static void pg_pic_read_close(store_pic_r *pr)
{
    free(pr);
}

/* ---- variants ----------------------------------------------------------- */

/* Bytes malloc'd, as the interface says (the recipe hands them on). */
static store_err pg_var_read(store_tx *tx, arena_t *a, int32_t blob_id, int64_t version,
                             const char *key, store_variant_meta *m, void **bytes, size_t *len,
                             int64_t *vid)
{
    params p = {0};
    PGresult *r = NULL;
    *bytes = NULL;
    *len = 0;
    p_i64(&p, blob_id);
    p_text(&p, key);
    p_i64(&p, version);
    store_err rc = run_row(tx_of(tx), S_VAR_READ, &p, &r);
    if (rc == STORE_OK) {
        *vid = col_i64(r, 0, 0);
        m->mime = col_str(a, r, 0, 1);
        m->is_zipped = col_bool(r, 0, 2);
        m->is_encrypted = col_bool(r, 0, 3);
        m->original_size = col_i64(r, 0, 4);
        void *in_arena = NULL;
        rc = col_bytes(a, r, 0, 5, &in_arena, len);
        if (rc == STORE_OK && (*bytes = malloc(*len > 0 ? *len : 1)) == NULL)
            rc = STORE_INTERNAL;
        if (rc == STORE_OK && *len > 0)
            memcpy(*bytes, in_arena, *len);
    }
    PQclear(r);
    return rc;
}

static store_err pg_var_upsert(store_tx *tx, int32_t blob_id, int64_t version, const char *key,
                               const store_variant_meta *m, const void *bytes, size_t len,
                               bool pinned, int64_t now, int64_t *vid)
{
    params p = {0};
    if (len > INT_MAX)
        return STORE_TOO_LARGE;
    p_i64(&p, blob_id);
    p_i64(&p, version);
    p_text(&p, key);
    p_text(&p, m->mime != NULL ? m->mime : "");
    p_i64(&p, m->is_zipped);
    p_i64(&p, m->is_encrypted);
    p_i64(&p, m->original_size);
    p_i64(&p, (int64_t)len);
    p_i64(&p, pinned);
    p_i64(&p, now);
    p_bytes(&p, bytes, len);
    store_err rc = run_i64(tx_of(tx), S_VAR_UPSERT, &p, vid);
    return rc == STORE_ABSENT ? STORE_INTERNAL : rc; /* an upsert has a row */
}

/* "{a,b,...}" of field `ms` (or id) of t[0, n), malloc'd. */
static char *touch_array(const store_touch *t, int n, bool ms)
{
    size_t cap = (size_t)n * 21 + 3, len = 0;
    char *s = malloc(cap);
    if (s == NULL)
        return NULL;
    s[len++] = '{';
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s%lld", i > 0 ? "," : "",
                                (long long)(ms ? t[i].ms : t[i].id));
    snprintf(s + len, cap - len, "}");
    return s;
}

/* One statement for the batch; a variant gone since matches nothing. */
static store_err pg_var_touch(store_tx *tx, const store_touch *t, int n)
{
    params p = {0};
    if (n <= 0)
        return STORE_OK;
    char *ids = touch_array(t, n, false), *ms = touch_array(t, n, true);
    store_err rc = STORE_INTERNAL;
    if (ids != NULL && ms != NULL) {
        p_text(&p, ids);
        p_text(&p, ms);
        rc = run(tx_of(tx), S_VAR_TOUCH, &p, NULL);
    }
    free(ids);
    free(ms);
    return rc;
}

static store_err pg_var_totals(store_tx *tx, int64_t *bytes, int64_t *count)
{
    PGresult *r = NULL;
    store_err rc = run_row(tx_of(tx), S_VAR_TOTALS, NULL, &r);
    if (rc == STORE_ABSENT) {
        log_error("store: the variant_total row is missing");
        rc = STORE_INTERNAL;
    }
    *bytes = rc == STORE_OK ? col_i64(r, 0, 0) : 0;
    *count = rc == STORE_OK ? col_i64(r, 0, 1) : 0;
    PQclear(r);
    return rc;
}

static store_err pg_var_lru(store_tx *tx, int32_t not_blob, const char *not_key, int64_t *vid,
                            int64_t *size)
{
    params p = {0};
    PGresult *r = NULL;
    p_i64(&p, not_blob);
    p_text(&p, not_key != NULL ? not_key : "");
    store_err rc = run_row(tx_of(tx), S_VAR_LRU, &p, &r);
    if (rc == STORE_OK) {
        *vid = col_i64(r, 0, 0);
        *size = col_i64(r, 0, 1);
    }
    PQclear(r);
    return rc;
}

/* STORE_OK when it was gone already. */
static store_err pg_var_delete(store_tx *tx, int64_t vid)
{
    params p = {0};
    p_i64(&p, vid);
    return run(tx_of(tx), S_VAR_DELETE, &p, NULL);
}

static store_err pg_var_delete_stale(store_tx *tx, int32_t blob_id)
{
    params p = {0};
    p_i64(&p, blob_id);
    return run(tx_of(tx), S_VAR_DELETE_STALE, &p, NULL);
}

static store_err pg_var_next(store_tx *tx, arena_t *a, int32_t blob_id, int64_t after, int64_t *vid,
                             void **bytes, size_t *len, bool *z, bool *e)
{
    params p = {0};
    PGresult *r = NULL;
    p_i64(&p, blob_id);
    p_i64(&p, after);
    store_err rc = run_row(tx_of(tx), S_VAR_NEXT, &p, &r);
    if (rc == STORE_OK) {
        *vid = col_i64(r, 0, 0);
        *z = col_bool(r, 0, 2);
        *e = col_bool(r, 0, 3);
        rc = col_bytes(a, r, 0, 1, bytes, len);
    }
    PQclear(r);
    return rc;
}

/* NOMATCH: no such variant. */
static store_err pg_var_set_stored(store_tx *tx, int64_t vid, const void *bytes, size_t len, bool z,
                                   bool e)
{
    params p = {0};
    if (len > INT_MAX)
        return STORE_TOO_LARGE;
    p_i64(&p, vid);
    p_bytes(&p, bytes, len);
    p_i64(&p, (int64_t)len);
    p_i64(&p, z);
    p_i64(&p, e);
    return run_match(tx_of(tx), S_VAR_SET_STORED, &p);
}

/* ---- copying a data set (store_copy.c) ----------------------------------
 * Each table's statements come from store_copy_def's column list (see
 * copy_sql); rows are read in binary, so bytea, text and integers come as
 * they are stored. Picture bytes go through pic_* itself. */

static int copy_stmt(store_copy_table t, int e)
{
    assert(t >= 0 && t < STORE_COPY_TABLES && e >= 0 && e < C_COUNT);
    return G_COPY + (int)t * C_COUNT + e;
}

static store_err pg_copy_count(store_tx *tx, store_copy_table t, int64_t *n)
{
    return run_i64(tx_of(tx), copy_stmt(t, C_ROWS), NULL, n);
}

/* Value v of kind k as the next parameter (bytes binary; NULL as NULL). */
static void p_val(params *p, store_col_kind k, const store_copy_val *v)
{
    if (v->null)
        p_text(p, NULL);
    else if (k == STORE_COL_INT)
        p_i64(p, v->i);
    else if (k == STORE_COL_TEXT)
        p_text(p, v->p != NULL ? v->p : "");
    else
        p_bytes(p, v->p, v->n);
}

/* Row `row`, column i of r as a value of kind k (strings and bytes into a,
 * NUL-terminated). */
static void copy_col(arena_t *a, const PGresult *r, int row, int i, store_col_kind k,
                     store_copy_val *v)
{
    *v = (store_copy_val){.null = PQgetisnull(r, row, i) != 0};
    if (v->null)
        return;
    if (k == STORE_COL_INT) {
        v->i = col_i64(r, row, i);
        return;
    }
    v->n = (size_t)PQgetlength(r, row, i);
    char *copy = arena_alloc(a, v->n + 1);
    memcpy(copy, PQgetvalue(r, row, i), v->n);
    copy[v->n] = '\0';
    v->p = copy;
}

static store_err pg_copy_next(store_tx *tx, store_copy_table t, const store_copy_val *after,
                              arena_t *a, store_copy_row *rows, int max, int *n)
{
    const store_copy_def *d = store_copy_def_of(t);
    params p = {0};
    PGresult *r = NULL;
    *n = 0;
    if (after != NULL)
        p_val(&p, d->kind[0], after);
    p_i64(&p, max);
    store_err rc = run(tx_of(tx), copy_stmt(t, after != NULL ? C_AFTER : C_FIRST), &p, &r);
    for (int row = 0; rc == STORE_OK && row < PQntuples(r) && row < max; row++) {
        for (int i = 0; i < d->ncols; i++)
            copy_col(a, r, row, i, d->kind[i], &rows[row].v[i]);
        (*n)++;
    }
    PQclear(r);
    return rc;
}

static store_err pg_copy_put(store_tx *tx, store_copy_table t, const store_copy_row *rows, int n)
{
    const store_copy_def *d = store_copy_def_of(t);
    store_err rc = STORE_OK;
    for (int r = 0; r < n && rc == STORE_OK; r++) {
        params p = {0};
        for (int i = 0; i < d->ncols; i++)
            p_val(&p, d->kind[i], &rows[r].v[i]);
        rc = run(tx_of(tx), copy_stmt(t, C_PUT), &p, NULL);
    }
    return rc;
}

/* TRUNCATE fires no row trigger: the variants' totals are set to zero. */
static store_err pg_copy_clear(store_tx *tx)
{
    store_err rc = run(tx_of(tx), G_COPY_CLEAR, NULL, NULL);
    return rc == STORE_OK ? run(tx_of(tx), G_COPY_TOTALS, NULL, NULL) : rc;
}

static store_err pg_ids_high(store_tx *tx, store_copy_table t, int64_t *hw)
{
    return run_i64(tx_of(tx), copy_stmt(t, C_HIGH), NULL, hw);
}

static store_err pg_ids_settle(store_tx *tx, store_copy_table t, int64_t hw)
{
    params p = {0};
    p_i64(&p, hw);
    return run(tx_of(tx), copy_stmt(t, C_SETTLE), &p, NULL);
}

/* ---- check (store_check.c) ---------------------------------------------
 * What PostgreSQL can say of its own storage: a damaged heap page fails
 * the read that meets it (with data checksums on: any damage), and the
 * check reads every row and picture chunk above this; amcheck, when the
 * database has it, verifies every B-tree index of the schema and that
 * each holds every heap row. */

/* The one text sql answers on t, "" when it failed (t fails from then on). */
static store_err pg_text(pg_tx *t, const char *sql, char *out, size_t cap)
{
    PGresult *r = NULL;
    out[0] = '\0';
    store_err rc = t->failed != STORE_OK ? t->failed : res_err(pgc_exec(t->c, sql, &r));
    if (rc != STORE_OK && t->failed == STORE_OK)
        t->failed = rc;
    if (rc == STORE_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

static store_err pg_integrity(store_tx *tx, bool quick,
                              void (*say)(void *ctx, bool problem, const char *line), void *ctx)
{
    pg_tx *t = tx_of(tx);
    char v[64], line[768];
    store_err rc = pg_text(t, "SELECT current_setting('data_checksums')", v, sizeof(v));
    if (rc == STORE_OK && strcmp(v, "on") != 0)
        say(ctx, false,
            "PostgreSQL: data checksums are off (initdb --data-checksums): a "
            "damaged page is found only where it breaks a read");
    char nsp[200];
    if (rc == STORE_OK) /* its schema: crmblob's search path holds only its own */
        rc = pg_text(t,
                     "SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n "
                     "ON n.oid = e.extnamespace WHERE e.extname = 'amcheck'",
                     nsp, sizeof(nsp));
    if (rc != STORE_OK)
        return rc;
    if (nsp[0] == '\0') {
        say(ctx, false,
            "PostgreSQL: amcheck is not installed in this database: its indexes "
            "were not checked (CREATE EXTENSION amcheck, or run pg_amcheck)");
        return STORE_OK;
    }
    snprintf(line, sizeof(line),
             "SELECT count(%s.bt_index_check(c.oid, %s)) FROM pg_index i "
             "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am m ON m.oid = c.relam "
             "WHERE m.amname = 'btree' AND c.relnamespace = current_schema()::regnamespace",
             nsp, quick ? "false" : "true");
    if (pg_text(t, line, v, sizeof(v)) == STORE_OK)
        return STORE_OK;
    const char *state = pgc_last_sqlstate(t->c);
    bool damage = strncmp(state, "XX00", 4) == 0; /* data_corrupted, index_corrupted */
    snprintf(line, sizeof(line),
             damage ? "database: amcheck found a damaged index (SQLSTATE %s; pg_amcheck names it)"
                    : "PostgreSQL: amcheck could not run (SQLSTATE %s): indexes not checked",
             state);
    say(ctx, damage, line); /* the transaction is over, the check is not */
    return STORE_OK;
}

/* ---- the table ---------------------------------------------------------- */

static store_err pg_task_update(store_tx *tx, const store_task *was, const char *description,
                                const char *params_)
{
    params p = {0};
    p_i64(&p, was->id);
    p_i64(&p, was->state);
    p_text(&p, was->description);
    p_text(&p, was->params);
    p_text(&p, description);
    p_text(&p, params_);
    return run_match(tx_of(tx), S_TASK_UPDATE, &p);
}

/* A page of tasks: one statement made for the query, sent unprepared (one
 * round trip). $1 limit, $2 offset, $3 the owner (< 0: any), $4.. the
 * terms' values. Text compares and sorts as lower(...) COLLATE "C", as the
 * entity lists do. */
static const char *const task_cmp_sql[] = {"=", "<>", "<", "<=", ">", ">="};

static const char *task_sort_col(arena_t *a, store_task_field f)
{
    return store_task_field_is_text(f)
               ? arena_printf(a, "lower(%s) COLLATE \"C\"", store_task_column(f))
               : store_task_column(f);
}

/* pg_task_page binds limit, offset, owner and one value per term. */
_Static_assert(3 + STORE_TASK_TERMS <= PG_MAXP, "a task page's parameters fit one statement");

static const char *task_page_sql(arena_t *a, const store_task_page_query *q)
{
    const char *where = "", *order = "";
    for (int i = 0; i < q->nterms; i++) {
        const store_task_term *t = &q->terms[i];
        const char *col = store_task_column(t->field);
        if (t->op == STORE_CMP_BEGINS)
            where = arena_printf(a,
                                 "%s AND lower(substr(%s, 1, length($%d::text))) COLLATE \"C\" "
                                 "= lower($%d::text) COLLATE \"C\"",
                                 where, col, i + 4, i + 4);
        else if (store_task_field_is_text(t->field))
            where = arena_printf(a, "%s AND %s %s lower($%d::text) COLLATE \"C\"", where,
                                 task_sort_col(a, t->field), task_cmp_sql[t->op], i + 4);
        else
            where =
                arena_printf(a, "%s AND %s %s $%d::bigint", where, col, task_cmp_sql[t->op], i + 4);
    }
    for (int i = 0; i < q->nkeys; i++)
        order = arena_printf(a, "%s%s%s %s", order, i ? ", " : "",
                             task_sort_col(a, (store_task_field)q->keys[i].field),
                             q->keys[i].desc ? "DESC" : "ASC");
    return arena_printf(a,
                        "SELECT " TASK_COLS " FROM batch_task WHERE ($3::integer < 0 OR "
                        "associate_id = $3)%s ORDER BY %s LIMIT $1 OFFSET $2",
                        where, order);
}

static store_err pg_task_page(store_tx *tx, arena_t *a, const store_task_page_query *q, int limit,
                              store_task *rows, int *n)
{
    params p = {0};
    PGresult *r = NULL;
    *n = 0;
    p_i64(&p, limit);
    p_i64(&p, q->skip);
    p_i64(&p, q->associate);
    for (int i = 0; i < q->nterms; i++)
        if (store_task_field_is_text(q->terms[i].field))
            p_text(&p, q->terms[i].text);
        else
            p_i64(&p, q->terms[i].num);
    store_err rc = run_sql(tx_of(tx), task_page_sql(a, q), &p, &r);
    for (int row = 0; rc == STORE_OK && row < PQntuples(r) && row < limit; row++)
        read_task(a, r, row, &rows[(*n)++]);
    PQclear(r);
    return rc;
}

static const struct store_be_ops pg_be_ops = {
    .close = pg_close,
    .ping = pg_ping,
    .describe = pg_describe,
    .spool_hint = pg_spool_hint,
    .hold = pg_hold,

    .begin = pg_begin,
    .end = pg_end,
    .xlock = pg_xlock,
    .scope_wait = NULL, /* never defers */

    .counts = pg_counts,
    .counts_check = pg_counts_check,
    .users_stamp = pg_users_stamp,
    .users_bump = pg_users_bump,

    .user_insert = pg_user_insert,
    .user_read = pg_user_read,
    .user_list = pg_user_list,
    .user_count = pg_user_count,
    .user_set = pg_user_set,

    .cred_insert = pg_cred_insert,
    .cred_find = pg_cred_find,
    .cred_list = pg_cred_list,
    .cred_revoke = pg_cred_revoke,
    .cred_revoke_pair = pg_cred_revoke_pair,
    .cred_revoke_user = pg_cred_revoke_user,
    .cred_purge = pg_cred_purge,
    .app_insert = pg_app_insert,
    .app_find = pg_app_find,
    .app_list = pg_app_list,
    .app_revoke = pg_app_revoke,
    .meta_get = pg_meta_get,
    .meta_put = pg_meta_put,

    .ent_read = pg_ent_read,
    .ent_list = pg_ent_list,
    .ent_next_id = pg_ent_next_id,
    .ent_insert = pg_ent_insert,
    .ent_update = pg_ent_update,
    .ent_delete = pg_ent_delete,
    .ent_set_image = pg_ent_set_image,
    .ent_set_thumb = pg_ent_set_thumb,

    .image_read = pg_image_read,
    .blob_read = pg_blob_read,
    .blob_insert = pg_blob_insert,
    .blob_set_info = pg_blob_set_info,
    .blob_set_content = pg_blob_set_content,
    .blob_set_stored = pg_blob_set_stored,
    .blob_claim = pg_blob_claim,
    .blob_unlink = pg_blob_unlink,
    .blob_delete = pg_blob_delete,
    .blob_sweep = pg_blob_sweep,
    .blob_next_stored = pg_blob_next_stored,
    .lib_add = pg_lib_add,
    .lib_next = pg_lib_next,

    .file_insert = pg_file_insert,
    .file_read = pg_file_read,
    .file_list = pg_file_list,
    .file_done = pg_file_done,
    .file_bind = pg_file_bind,
    .file_release = pg_file_release,
    .file_stale = pg_file_stale,
    .file_release_stale = pg_file_release_stale,
    .piece_drop = pg_piece_drop,
    .piece_put = pg_piece_put,
    .piece_get = pg_piece_get,
    .pic_write_open = pg_pic_write_open,
    .pic_write = pg_pic_write,
    .pic_write_close = pg_pic_write_close,
    .pic_read_open = pg_pic_read_open,
    .pic_read = pg_pic_read,
    .pic_read_close = pg_pic_read_close,

    .var_read = pg_var_read,
    .var_upsert = pg_var_upsert,
    .var_touch = pg_var_touch,
    .var_totals = pg_var_totals,
    .var_lru = pg_var_lru,
    .var_delete = pg_var_delete,
    .var_delete_stale = pg_var_delete_stale,
    .var_next = pg_var_next,
    .var_set_stored = pg_var_set_stored,

    .copy_count = pg_copy_count,
    .copy_next = pg_copy_next,
    .copy_put = pg_copy_put,
    .copy_clear = pg_copy_clear,
    .ids_high = pg_ids_high,
    .ids_settle = pg_ids_settle,

    .backup_to = NULL, /* rows are copied into a SQLite file instead (store_check.c) */
    .integrity = pg_integrity,
    .task_insert = pg_task_insert,
    .task_read = pg_task_read,
    .task_list = pg_task_list,
    .task_next_new = pg_task_next_new,
    .task_claim = pg_task_claim,
    .task_beat = pg_task_beat,
    .task_finish = pg_task_finish,
    .task_fail_new = pg_task_fail_new,
    .task_set_stop = pg_task_set_stop,
    .task_delete = pg_task_delete,
    .task_reap = pg_task_reap,
    .task_expired = pg_task_expired,
    .task_update = pg_task_update,
    .task_page = pg_task_page,
};

/* ---- SQL generated from the entity descriptors -------------------------- */

/* The fields of d joined by ", ": "a, b", "$2, $3" or "a = $2, b = $3". */
static const char *field_list(arena_t *a, const model_entity_def *d, int form)
{
    const char *acc = "";
    for (int i = 0; i < d->nfields; i++) {
        const char *sep = i > 0 ? ", " : "", *col = d->fields[i].column;
        if (form == 0)
            acc = arena_printf(a, "%s%s%s", acc, sep, col);
        else if (form == 1)
            acc = arena_printf(a, "%s%s$%d", acc, sep, i + 2);
        else
            acc = arena_printf(a, "%s%s%s = $%d", acc, sep, col, i + 2);
    }
    return acc;
}

/* Fills the K_COUNT statements of kind k (names "<table>_<what>"). */
static void entity_sql(arena_t *a, model_kind k, pgc_stmt *st)
{
    static const char *const what[K_COUNT] = {"read",    "read_share", "read_update",
                                              "next_id", "insert",     "update",
                                              "delete",  "set_image",  "image"};
    const model_entity_def *d = model_entity(k);
    const char *t = d->table, *names = field_list(a, d, 0);
    int now = d->nfields + 2; /* parameter number of the change time */
    const char *cols = arena_printf(a, "id, %s, image_blob_id, version, updated_ms, %s", names,
                                    k == MODEL_PRODUCT ? "thumb_blob_id" : "NULL::integer");
    const char *sql[K_COUNT] = {
        [K_READ] = arena_printf(a, "SELECT %s FROM %s WHERE id = $1", cols, t),
        [K_READ_SHARE] = arena_printf(a, "SELECT %s FROM %s WHERE id = $1 FOR SHARE", cols, t),
        [K_READ_UPDATE] = arena_printf(a, "SELECT %s FROM %s WHERE id = $1 FOR UPDATE", cols, t),
        /* max + 1; once the top id is taken, the lowest free one */
        [K_NEXT_ID] = arena_printf(
            a,
            "SELECT CASE WHEN coalesce(max(id), 0) < 2147483647 THEN coalesce(max(id), 0)::bigint "
            "+ 1 WHEN NOT EXISTS (SELECT 1 FROM %s WHERE id = 1) THEN 1 ELSE (SELECT "
            "min(x.id)::bigint + 1 FROM %s x WHERE x.id < 2147483647 AND NOT EXISTS (SELECT 1 "
            "FROM %s y WHERE y.id = x.id + 1)) END FROM %s",
            t, t, t, t),
        [K_INSERT] =
            arena_printf(a, "INSERT INTO %s(id, %s, version, updated_ms) VALUES($1, %s, 1, $%d) "
                         "RETURNING version, updated_ms", t,
                         names, field_list(a, d, 1), now),
        [K_UPDATE] = arena_printf(a,
                                  "UPDATE %s SET %s, version = version + 1, updated_ms = $%d "
                                  "WHERE id = $1 AND ($%d::bigint = -1 OR version = $%d) "
                                  "RETURNING version, updated_ms",
                                  t, field_list(a, d, 2), now, now + 1, now + 1),
        [K_DELETE] = arena_printf(a,
                                  "DELETE FROM %s WHERE id = $1 AND ($2::bigint = -1 OR "
                                  "version = $2) RETURNING %s",
                                  t, cols),
        [K_SET_IMAGE] = arena_printf(a, "UPDATE %s SET image_blob_id = $2 WHERE id = $1", t),
        /* BLOB_SELECT's columns, the links, and the one piece of a picture
         * of at most one piece when $2 asks for bytes */
        [K_IMAGE] = arena_printf(
            a,
            "SELECT " BLOB_COLS ", e.id, e.image_blob_id, %s, p.bytes FROM %s e "
            "LEFT JOIN blob b ON b.id = e.image_blob_id "
            "LEFT JOIN users cu ON cu.id = b.created_by LEFT JOIN users uu ON uu.id = b.updated_by "
            "LEFT JOIN blob_piece p ON $2::boolean AND p.blob_id = b.id AND p.n = 0 "
            "AND b.blob_size <= %d WHERE e.id = $1",
            k == MODEL_PRODUCT ? "e.thumb_blob_id" : "NULL::integer", t, STORE_PIECE),
    };
    for (int e = 0; e < K_COUNT; e++)
        st[e] = (pgc_stmt){arena_printf(a, "%s_%s", t, what[e]), sql[e], e == K_IMAGE};
}

/* The sweep: unlinked since before $1 and linked nowhere (the links are
 * checked all the same: a record deleted by mistake is a lost picture). */
static pgc_stmt sweep_sql(arena_t *a)
{
    const char *linked = "EXISTS (SELECT 1 FROM product WHERE thumb_blob_id = blob.id)";
    for (int k = 0; k < MODEL_KIND_COUNT; k++)
        linked = arena_printf(a, "%s OR EXISTS (SELECT 1 FROM %s WHERE image_blob_id = blob.id)",
                              linked, model_entity((model_kind)k)->table);
    return (pgc_stmt){
        "blob_sweep",
        arena_printf(a, "DELETE FROM blob WHERE unlinked_ms < $1 AND NOT (%s)", linked), 0};
}

/* The C_COUNT statements of copy table t (names "copy_<table>_<what>"). A
 * text key (meta's name) is ordered bytewise (COLLATE "C"), as SQLite's. */
static void copy_sql(arena_t *a, store_copy_table t, pgc_stmt *st)
{
    static const char *const what[C_COUNT] = {"rows", "first", "after", "put", "high", "settle"};
    const store_copy_def *d = store_copy_def_of(t);
    const char *cols = "", *vals = "", *n = d->name;
    const char *key =
        arena_printf(a, "%s%s", d->col[0], d->kind[0] == STORE_COL_TEXT ? " COLLATE \"C\"" : "");
    for (int i = 0; i < d->ncols; i++) {
        cols = arena_printf(a, "%s%s%s", cols, i ? ", " : "", d->col[i]);
        vals = arena_printf(a, "%s%s$%d", vals, i ? ", " : "", i + 1);
    }
    const char *seq = arena_printf(a, "pg_get_serial_sequence('%s', 'id')", n);
    const char *only = d->only ? d->only : "true";
    const char *sql[C_COUNT] = {
        [C_ROWS] = arena_printf(a, "SELECT count(*) FROM %s WHERE %s", n, only),
        [C_FIRST] =
            arena_printf(a, "SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT $1", cols, n, only, key),
        [C_AFTER] = arena_printf(a, "SELECT %s FROM %s WHERE %s > $1 AND %s ORDER BY %s LIMIT $2",
                                 cols, n, key, only, key),
        [C_PUT] = arena_printf(a, "INSERT INTO %s(%s) VALUES(%s)", n, cols, vals),
        /* the sequence's last value (NULL until it gave one) */
        [C_HIGH] = d->seq ? arena_printf(
                                a, "SELECT coalesce(pg_sequence_last_value(%s::regclass), 0)", seq)
                          : "SELECT 0::bigint",
        /* is_called false: the next id is 1 itself */
        [C_SETTLE] = d->seq ? arena_printf(a,
                                           "SELECT setval(%s, greatest(coalesce(max(id), 0), "
                                           "$1::bigint, 1), greatest(coalesce(max(id), 0), "
                                           "$1::bigint) >= 1) FROM %s",
                                           seq, n)
                            : "SELECT $1::bigint",
    };
    for (int e = 0; e < C_COUNT; e++)
        st[e] = (pgc_stmt){arena_printf(a, "copy_%s_%s", n, what[e]), sql[e],
                           e == C_FIRST || e == C_AFTER ? 1 : 0};
}

/* Every table copied, and the variants (a cache, not copied), emptied. */
static pgc_stmt copy_clear_sql(arena_t *a)
{
    const char *ents = "";
    for (int k = 0; k < MODEL_KIND_COUNT; k++)
        ents = arena_printf(a, "%s, %s", ents, model_entity((model_kind)k)->table);
    return (pgc_stmt){"copy_clear",
                      arena_printf(a,
                                   "TRUNCATE variant_data, variant, blob_piece%s, project_library, "
                                   "batch_file, batch_task, blob, cred, app, users, meta",
                                   ents),
                      0};
}

/* ---- open --------------------------------------------------------------- */

static pg_be *pg_new(const char *conninfo)
{
    pg_be *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->base.ops = &pg_be_ops;
    p->sql = arena_create();
    p->conninfo = strdup(conninfo);
    if (p->conninfo == NULL) {
        arena_destroy(p->sql);
        free(p);
        return NULL;
    }
    memcpy(p->stmts, fixed, sizeof(fixed));
    for (int k = 0; k < MODEL_KIND_COUNT; k++)
        entity_sql(p->sql, (model_kind)k, &p->stmts[kind_stmt((model_kind)k, 0)]);
    p->stmts[G_SWEEP] = sweep_sql(p->sql);
    p->stmts[G_COPY_CLEAR] = copy_clear_sql(p->sql);
    p->stmts[G_COPY_TOTALS] =
        (pgc_stmt){"copy_totals", "UPDATE variant_total SET bytes = 0, count = 0", 0};
    for (int t = 0; t < STORE_COPY_TABLES; t++)
        copy_sql(p->sql, (store_copy_table)t, &p->stmts[copy_stmt((store_copy_table)t, 0)]);
    pgc_describe(conninfo, p->desc, sizeof(p->desc));
    return p;
}

/* Migrates the schema on one connection of the pool. */
/* The schema made or brought up to date; with must_exist, a database
 * without crmblob's schema is STORE_ABSENT and left untouched. */
static store_err migrate(pg_be *p, bool must_exist)
{
    pgc_conn *c = NULL;
    int found = 0;
    store_err rc = res_err(pgc_checkout(p->pool, &c));
    if (rc == STORE_OK && must_exist && (rc = res_err(pgc_schema_version(c, &found))) == STORE_OK &&
        found == 0)
        rc = STORE_ABSENT;
    if (rc == STORE_OK)
        rc = res_err(pgc_schema_migrate(c, &found));
    pgc_return(p->pool, c);
    return rc;
}

store_err store_pg_open(const char *conninfo, const store_options *o, store_be **out)
{
    assert(conninfo != NULL && o != NULL && out != NULL);
    *out = NULL;
    pg_be *p = pg_new(conninfo);
    if (p == NULL)
        return STORE_INTERNAL;
    pgc_options po = {.size = o->pool_size > 0 ? o->pool_size : PG_POOL_DEFAULT,
                      .checkout_wait_ms = PG_CHECKOUT_WAIT_MS,
                      .statement_timeout_ms = PG_STATEMENT_TIMEOUT_MS,
                      .connect_timeout_s = PG_CONNECT_TIMEOUT_S,
                      .stmts = p->stmts,
                      .nstmts = S_TOTAL,
                      .metrics = o->metrics};
    store_err rc = res_err(pgc_pool_open(conninfo, &po, &p->pool));
    if (rc == STORE_OK)
        rc = migrate(p, o->must_exist);
    if (rc != STORE_OK) {
        pg_close(&p->base);
        return rc;
    }
    *out = &p->base;
    return STORE_OK;
}
