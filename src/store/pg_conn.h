/*
 * pg_conn.h — the PostgreSQL connection layer the store's PostgreSQL
 * backend sits on: what a --db value means (pgc_is_pg, pgc_describe), a
 * pool of connections, SQLSTATEs reduced to a small vocabulary, named
 * statements prepared on each connection when first used, and the schema
 * (created, migrated, or refused when newer than this binary).
 *
 * Internal to src/store. Invariants:
 *  - a connection handed out by pgc_checkout is connected, set up
 *    (pgc_setup_sql) and not inside a transaction; it belongs to the
 *    caller alone until pgc_return;
 *  - a connection found broken (the server restarted, the backend was
 *    terminated) is replaced at its next checkout, never handed out as it
 *    is; a query on a connection that breaks meanwhile answers
 *    PGC_UNAVAILABLE and marks it so;
 *  - no text this module writes (logs, pgc_describe) holds a password.
 */
#ifndef CB_PG_CONN_H
#define CB_PG_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "core/metrics.h"

/* What a statement came to; the backend maps each 1:1 onto store_err. */
typedef enum {
    PGC_OK,
    PGC_ABSENT,      /* no row (the caller's reading of an empty answer) */
    PGC_CONFLICT,    /* 23505 unique violation; 2200H a sequence exhausted (ids) */
    PGC_INVALID,     /* 23503 foreign key, 23xxx other constraints, 22xxx bad data */
    PGC_TOO_LARGE,   /* 54000 program limit (a value beyond what a row holds) */
    PGC_NO_SPACE,    /* 53100 disk full */
    PGC_UNAVAILABLE, /* class 08, 57P01-57P03, 53300, 57014 timeout, 55P03 lock not available
                        (a transaction that would not wait), no connection, no answer */
    PGC_RETRY,       /* 40001 serialization failure, 40P01 deadlock: run the transaction again */
    PGC_INTERNAL,    /* everything else (a bug in our SQL, a schema we do not know) */
} pgc_res;

const char *pgc_res_name(pgc_res r);
/* The result of a SQLSTATE (five characters); NULL (no answer) -> UNAVAILABLE. */
pgc_res pgc_sqlstate_res(const char *sqlstate);

/* ---- what a --db value names ------------------------------------------ */

/* True when `where` names a PostgreSQL database: a postgresql:// or
 * postgres:// URL, or a libpq key=value string whose first word is a libpq
 * keyword ("host=/run/pg dbname=crm"). Anything else is a SQLite file (a
 * file really named "host=x" is written ./host=x). */
bool pgc_is_pg(const char *where);

/* Renders the conninfo for logs as "key=value ..." (libpq's own parse of
 * URL or key=value, so percent-escapes, quoting and host lists read as the
 * server will) without the password or any other option libpq marks
 * secret. PGPASSWORD and the password file are never read, so never shown.
 * An unparsable conninfo renders as a fixed text, never as itself. */
void pgc_describe(const char *conninfo, char *buf, size_t cap);

/* ---- statements -------------------------------------------------------- */

/* A statement the pool's connections prepare when first asked for it. */
typedef struct {
    const char *name;  /* unique within the table, e.g. "blob_get" */
    const char *sql;   /* $1, $2...; parameter types are inferred */
    int result_format; /* 0: text; 1: binary (bytea as its bytes, not hex) */
} pgc_stmt;

/* ---- the pool ---------------------------------------------------------- */

typedef struct pgc_pool pgc_pool;
typedef struct pgc_conn pgc_conn;

typedef struct {
    int size;                 /* connections (>= 1) */
    int checkout_wait_ms;     /* a checkout waits this long for a free one, then UNAVAILABLE */
    int statement_timeout_ms; /* each statement's limit on the server (0: none) */
    int connect_timeout_s;    /* each connection attempt (0: libpq's default, forever) */
    int start_wait_ms;        /* pgc_pool_open keeps trying to reach the server this long */
    const pgc_stmt *stmts;    /* the statements pgc_run knows; lent for the pool's life */
    int nstmts;
    /* where checkouts that had to wait for a free connection are counted
     * (their wait, and those that waited in vain); NULL: nowhere */
    metrics_t *metrics;
} pgc_options;

/* Connects one connection (the rest come at checkout) and checks that the
 * server answers and its database speaks UTF8. An unreachable server is
 * retried every 200 ms until start_wait_ms have passed, then one line is
 * logged and the result is PGC_UNAVAILABLE. */
pgc_res pgc_pool_open(const char *conninfo, const pgc_options *o, pgc_pool **out);
/* Closes every connection; each must have been returned. */
void pgc_pool_close(pgc_pool *p);

/* A connection for the caller alone: waits up to checkout_wait_ms for a
 * free one; replaces a broken one. PGC_UNAVAILABLE when none came or the
 * server cannot be reached. */
pgc_res pgc_checkout(pgc_pool *p, pgc_conn **out);
/* Gives c back. A connection left inside a transaction is rolled back; one
 * that cannot be is closed and replaced at its next checkout. */
void pgc_return(pgc_pool *p, pgc_conn *c);
/* The libpq connection, for what this layer does not wrap (COPY). */
PGconn *pgc_pg(pgc_conn *c);
/* Marks c broken: replaced at its next checkout (after a COMMIT with no answer). */
void pgc_discard(pgc_conn *c);
/* How many connections the pool has made so far (for tests and logs). */
int64_t pgc_pool_connects(pgc_pool *p);
/* How many times a broken or closed connection was tried again. After a
 * failed try the pool tries no other for PGC_RETRY_PAUSE_US: checkouts
 * meanwhile answer PGC_UNAVAILABLE at once. */
#define PGC_RETRY_PAUSE_US 100000
int64_t pgc_pool_attempts(pgc_pool *p);

/* ---- running statements ------------------------------------------------ */

/* Runs a statement of text SQL with no parameters (BEGIN, COMMIT, DDL).
 * *out gets the result when out != NULL and the statement succeeded. */
pgc_res pgc_exec(pgc_conn *c, const char *sql, PGresult **out);
/* Runs text SQL made for this call (not prepared: Parse, Bind, Execute in
 * one round trip) with n text parameters; text results. *out as for pgc_exec. */
pgc_res pgc_exec_params(pgc_conn *c, const char *sql, int n, const char *const *values,
                        PGresult **out);
/* Runs statement `id` of the pool's table with n text parameters (NULL
 * values are SQL NULL; lengths/formats NULL: all text), preparing it on
 * this connection first when it is not yet. Binary parameters: formats[i]
 * = 1 and lengths[i] set. Results in the statement's result_format.
 * *out as for pgc_exec. */
pgc_res pgc_run(pgc_conn *c, int id, int n, const char *const *values, const int *lengths,
                const int *formats, PGresult **out);
/* pgc_run, sending first the text statements of pre (NULL-terminated, no
 * parameters: BEGIN, SET LOCAL) in one pipeline with it: one round trip
 * for all when the statements need no answer in between. The result is the
 * first failure among them, else statement id's (in *out). */
pgc_res pgc_run_after(pgc_conn *c, const char *const *pre, int id, int n, const char *const *values,
                      const int *lengths, const int *formats, PGresult **out);
/* The SQLSTATE of c's last failure ("" when none or no answer came). */
const char *pgc_last_sqlstate(const pgc_conn *c);

/* ---- the schema -------------------------------------------------------- */

/* The schema version this binary creates and knows (numbered as the
 * SQLite schema's PRAGMA user_version, so one model change is one number
 * on both). */
#define PGC_SCHEMA_VERSION 10
/* The first key of every advisory lock crmblob takes ('crmb'); the second
 * names the subject (PGC_LOCK_SCHEMA here, the store's kinds elsewhere). */
#define PGC_LOCK_SPACE 0x63726d62
#define PGC_LOCK_SCHEMA 1
/* The transaction locks of store_pg.c (xlock) are (PGC_LOCK_SPACE,
 * PGC_LOCK_XLOCK * (subject + 1) + key). Its session lock (store_hold) is
 * in the one-key space: PGC_LOCK_SPACE << 32 | hashtext(schema), so that
 * it is the schema's, as the data is. */
#define PGC_LOCK_XLOCK 0x100
/* The size of one row of picture bytes (blob_piece.bytes). */
#define PGC_PIECE (256 * 1024)

/* Brings the schema of c's search_path to PGC_SCHEMA_VERSION in one
 * transaction under an advisory lock (servers starting together migrate
 * once). A newer schema is refused (PGC_INTERNAL, one line logged).
 * *version gets the version found before (0: a new database). */
pgc_res pgc_schema_migrate(pgc_conn *c, int *version);
/* The schema version recorded in the database (0 when none). */
pgc_res pgc_schema_version(pgc_conn *c, int *version);

#endif
