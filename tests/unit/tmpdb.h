/*
 * tmpdb.h — what the database-backed unit tests share: a fresh temporary
 * directory per test with a database path in it, its removal, deterministic
 * payloads, picture contents handed over as unlinked files in that
 * directory (as the API's upload spool hands them to the store), and new
 * entities to hang pictures on, and white-box reads and writes of the
 * database beside the store (row counts, one integer, one statement, the
 * schema version) so that no test opens the database itself.
 *
 * One source, two backends: with CRMBLOB_TEST_DB=pg (and the cluster that
 * PGHOST/PGPORT/PGUSER/PGDATABASE name, pgtmp.h), tmpdb_make gives a fresh
 * schema's conninfo as the "path" (the directory is still made, for
 * contents and spools), the white-box helpers run their SQL through libpq
 * on it, and tmpdb_remove drops the schema. A case that only SQLite can
 * run says so with TMPDB_SQLITE_ONLY(reason): skipped on PostgreSQL.
 *
 * The store fixture of the backend tests (tmpdb_store): such a database
 * opened through store_open, plain or durable, with an arena; cmocka
 * setups/teardown for it (tmpdb_setup_plain, tmpdb_setup_durable,
 * tmpdb_teardown) and the open/close a fixture of more fields builds on.
 *
 * Header-only (static inline): each test program is one file.
 */
#ifndef CB_TEST_TMPDB_H
#define CB_TEST_TMPDB_H

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "pgtmp.h"

#include "core/arena.h"
#include "store/store.h"

/* The backend under test: CRMBLOB_TEST_DB=pg, else SQLite. */
static inline bool tmpdb_pg(void)
{
    const char *b = getenv("CRMBLOB_TEST_DB");
    return b != NULL && strcmp(b, "pg") == 0;
}

/* Skips the running case on PostgreSQL, saying why. */
#define TMPDB_SQLITE_ONLY(why)                                                                     \
    do {                                                                                           \
        if (tmpdb_pg()) {                                                                          \
            fprintf(stderr, "[ SKIPPED  ] on PostgreSQL: %s\n", why);                              \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* The schemas made by tmpdb_make, by directory, for tmpdb_remove. */
#define TMPDB_SCHEMAS 64
static struct {
    char dir[256];
    pgtmp t;
} tmpdb_schemas[TMPDB_SCHEMAS];

/* Makes /tmp/crmblob-<tag>-XXXXXX into dir and sets path to dir/<db> (db
 * may name subdirectories, which store_open creates); on PostgreSQL, path
 * is a new schema's conninfo (path_cap: at least 512). -1 on failure. */
static inline int tmpdb_make(char *dir, size_t dir_cap, char *path, size_t path_cap,
                             const char *tag, const char *db)
{
    snprintf(dir, dir_cap, "/tmp/crmblob-%s-XXXXXX", tag);
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, path_cap, "%s/%s", dir, db);
    if (!tmpdb_pg())
        return 0;
    for (int i = 0; i < TMPDB_SCHEMAS; i++) {
        if (tmpdb_schemas[i].dir[0] != '\0')
            continue;
        if (!pgtmp_available() || pgtmp_make(&tmpdb_schemas[i].t) != 0)
            return -1;
        snprintf(tmpdb_schemas[i].dir, sizeof(tmpdb_schemas[i].dir), "%s", dir);
        return (size_t)snprintf(path, path_cap, "%s", tmpdb_schemas[i].t.conninfo) < path_cap ? 0
                                                                                            : -1;
    }
    return -1;
}

static inline int tmpdb_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* Removes dir and everything in it (and its schema). */
static inline void tmpdb_remove(const char *dir)
{
    for (int i = 0; i < TMPDB_SCHEMAS; i++) {
        if (strcmp(tmpdb_schemas[i].dir, dir) != 0)
            continue;
        pgtmp_drop(&tmpdb_schemas[i].t);
        tmpdb_schemas[i].dir[0] = '\0';
    }
    nftw(dir, tmpdb_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* A store on a fresh database (tmpdb_make) and an arena for its reads. */
typedef struct {
    char dir[256], path[512];
    store_t *s;
    arena_t *a;
} tmpdb_store;

/* Makes f's database (directory /tmp/crmblob-<tag>-XXXXXX) and opens it
 * with options o (NULL: the defaults); -1 on failure. */
static inline int tmpdb_store_open(tmpdb_store *f, const char *tag, const store_options *o)
{
    if (tmpdb_make(f->dir, sizeof(f->dir), f->path, sizeof(f->path), tag, "crmblob.db") != 0)
        return -1;
    if (store_open(f->path, o, &f->s) != STORE_OK)
        return -1;
    f->a = arena_create();
    return 0;
}

/* Closes f's store, frees its arena, removes its database and directory. */
static inline void tmpdb_store_close(tmpdb_store *f)
{
    store_close(f->s);
    arena_destroy(f->a);
    tmpdb_remove(f->dir);
}

/* cmocka setup: *state a tmpdb_store opened durable or not, pool of 4. */
static inline int tmpdb_setup_with(void **state, bool durable)
{
    tmpdb_store *f = calloc(1, sizeof(*f));
    store_options o = {.durable = durable, .pool_size = 4};
    if (f == NULL || tmpdb_store_open(f, "store", &o) != 0)
        return -1;
    *state = f;
    return 0;
}

static inline int tmpdb_setup_plain(void **state)
{
    return tmpdb_setup_with(state, false);
}

static inline int tmpdb_setup_durable(void **state)
{
    return tmpdb_setup_with(state, true);
}

/* cmocka teardown of tmpdb_setup_plain/tmpdb_setup_durable. */
static inline int tmpdb_teardown(void **state)
{
    tmpdb_store_close(*state);
    free(*state);
    return 0;
}

/* PostgreSQL: sql on the conninfo `where`, its result (binary when
 * binary); fails the test when it does not run. */
static inline PGresult *tmpdb_pg_run(const char *where, const char *sql, bool binary)
{
    PGconn *pg = PQconnectdb(where);
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    PQsetNoticeProcessor(pg, pgtmp_quiet, NULL);
    PGresult *r = binary ? PQexecParams(pg, sql, 0, NULL, NULL, NULL, NULL, 1) : PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fprintf(stderr, "tmpdb: %s: %s", sql, PQresultErrorMessage(r));
    assert_true(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
    PQfinish(pg);
    return r;
}

/* Deterministic bytes of payload number `seed` (malloc'd; n may be 0). */
static inline unsigned char *tmpdb_payload(int seed, size_t n)
{
    unsigned char *p = malloc(n > 0 ? n : 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 9));
    return p;
}

/* An unlinked temporary file in dir holding bytes[0, n), or -1. */
static inline int tmpdb_content_fd(const char *dir, const void *bytes, size_t n)
{
    char tmpl[300];
    snprintf(tmpl, sizeof(tmpl), "%s/content-XXXXXX", dir);
    int fd = mkstemp(tmpl);
    if (fd < 0)
        return -1;
    unlink(tmpl);
    if (write(fd, bytes, n) != (ssize_t)n) {
        close(fd);
        return -1;
    }
    return fd;
}

/* tmpdb_payload(seed, n) as a store_content of type mime, from an
 * unlinked file in dir; fd -1 on failure. The caller closes c.fd. */
static inline store_content tmpdb_content(const char *dir, int seed, size_t n, const char *mime)
{
    unsigned char *bytes = tmpdb_payload(seed, n);
    int fd = tmpdb_content_fd(dir, bytes, n);
    free(bytes);
    return (store_content){
        .fd = fd, .size = (int64_t)n, .original_size = (int64_t)n, .mime_type = mime};
}

/* A new entity of kind k, every string field "name", its id assigned. */
static inline store_err tmpdb_entity(store_t *s, model_kind k, int32_t *id)
{
    model_entity_t e = {.kind = k};
    const model_entity_def *d = model_entity(k);
    for (int i = 0; i < d->nfields; i++)
        if (d->fields[i].type == MODEL_FT_STRING)
            e.v[i].s = "name";
    store_err rc = store_entity_create(s, &e);
    *id = e.id;
    return rc;
}

/* White-box: one integer from the database at path, read beside the store
 * (the statement's first column of its first row); if_null when that value
 * is SQL NULL, -1 when there is no row. Fails the test when the statement
 * cannot run. */
static inline int64_t tmpdb_int(const char *path, const char *sql, int64_t if_null)
{
    if (tmpdb_pg()) {
        PGresult *r = tmpdb_pg_run(path, sql, false);
        int64_t pv = PQntuples(r) == 0      ? -1
                     : PQgetisnull(r, 0, 0) ? if_null
                                            : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        return pv;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int rc = sqlite3_step(st);
    assert_true(rc == SQLITE_ROW || rc == SQLITE_DONE);
    if (rc == SQLITE_ROW)
        v = sqlite3_column_type(st, 0) == SQLITE_NULL ? if_null : sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* White-box: the bytes of the first column of the first row of sql
 * (malloc'd, *len of them; NULL when there is no row). */
static inline void *tmpdb_bytes(const char *path, const char *sql, size_t *len)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    void *v = NULL;
    *len = 0;
    if (tmpdb_pg()) {
        PGresult *r = tmpdb_pg_run(path, sql, true);
        if (PQntuples(r) > 0) {
            *len = (size_t)PQgetlength(r, 0, 0);
            v = malloc(*len + 1);
            assert_non_null(v);
            memcpy(v, PQgetvalue(r, 0, 0), *len);
        }
        PQclear(r);
        return v;
    }
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int rc = sqlite3_step(st);
    assert_true(rc == SQLITE_ROW || rc == SQLITE_DONE);
    if (rc == SQLITE_ROW) {
        *len = (size_t)sqlite3_column_bytes(st, 0);
        v = malloc(*len + 1);
        assert_non_null(v);
        if (*len > 0)
            memcpy(v, sqlite3_column_blob(st, 0), *len);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* White-box: into sql, the statement answering BLOB blob_id's stored
 * bytes, for tmpdb_bytes (SQLite: one blob_data row; PostgreSQL: its
 * blob_piece rows in order). */
static inline void tmpdb_stored_sql(char *sql, size_t cap, int32_t blob_id)
{
    if (tmpdb_pg())
        snprintf(sql, cap,
                 "SELECT string_agg(bytes, ''::bytea ORDER BY n) FROM blob_piece WHERE blob_id = %d",
                 blob_id);
    else
        snprintf(sql, cap, "SELECT content FROM blob_data WHERE blob_id = %d", blob_id);
}

/* White-box: the BLOBs whose bytes are stored (SQLite: blob_data rows;
 * PostgreSQL: BLOBs with pieces in blob_piece). */
static inline int64_t tmpdb_count_stored(const char *path)
{
    return tmpdb_int(path,
                     tmpdb_pg() ? "SELECT count(DISTINCT blob_id) FROM blob_piece"
                                : "SELECT count(*) FROM blob_data",
                     0);
}

/* White-box: rows of `table` in the database at path. */
static inline int64_t tmpdb_count(const char *path, const char *table)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    return tmpdb_int(path, sql, 0);
}

/* White-box: runs sql (one or more statements) on the database at path;
 * fails the test when it does not succeed. */
static inline void tmpdb_exec(const char *path, const char *sql)
{
    if (tmpdb_pg()) {
        PQclear(tmpdb_pg_run(path, sql, false));
        return;
    }
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* Undoes schema v7 (the entity lists' indexes), v8 (the project image
 * library), v9 (batch tasks) and v10 (their files) of the SQLite database
 * at path, for a test that rewinds user_version to an older schema and
 * migrates again. */
static inline void tmpdb_undo_v7_v10(const char *path)
{
    char sql[2048] = "DROP TABLE blob_piece; DROP TABLE batch_file; DROP TABLE batch_task; "
                     "DROP TABLE project_library;";
    size_t used = strlen(sql);
    for (int k = 0; k < MODEL_KIND_COUNT; k++) {
        const model_entity_def *d = model_entity((model_kind)k);
        for (int i = 0; i < d->nfields; i++)
            if (d->fields[i].type == MODEL_FT_STRING)
                used += (size_t)snprintf(sql + used, sizeof(sql) - used, "DROP INDEX %s_%s_list;",
                                         d->table, d->fields[i].column);
    }
    assert_true(used < sizeof(sql));
    tmpdb_exec(path, sql);
}

/* The schema version the database at path carries (SQLite: user_version). */
static inline int64_t tmpdb_schema_version(const char *path)
{
    if (tmpdb_pg())
        return tmpdb_int(path, "SELECT version FROM schema_version", -1);
    return tmpdb_int(path, "PRAGMA user_version", -1);
}

/* Can another connection (another process: the CLI) take the database's
 * write lock at once? */
static inline bool tmpdb_write_lock_free(const char *path)
{
    sqlite3 *db = NULL;
    bool ok = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
              sqlite3_exec(db, "BEGIN IMMEDIATE; ROLLBACK", NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_close(db);
    return ok;
}

/* The write lock is free, or becomes free within 2 s: in durable mode a
 * part rolled back leaves the group's transaction to its committer, which
 * ends it on its own (a COMMIT of what the other parts kept). */
static inline bool tmpdb_write_lock_freed(const char *path)
{
    for (int i = 0; i < 400; i++) {
        if (tmpdb_write_lock_free(path))
            return true;
        nanosleep(&(struct timespec){0, 5000000}, NULL);
    }
    return false;
}

#endif
