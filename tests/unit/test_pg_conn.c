/*
 * test_pg_conn.c — unit tests of src/store/pg_conn.h against a real
 * PostgreSQL: conninfo recognition and description (no password ever),
 * SQLSTATE results, the pool under threads and its bounded wait, session
 * settings, prepared statements, reconnection after pg_terminate_backend
 * and after a restart, an unreachable server at start (at once and with a
 * deadline), and the schema (created, reopened, refused when newer,
 * migrated once by two at the same time, and how its tables behave).
 *
 * The test starts a cluster of its own (scripts/pg-cluster.sh, path in
 * $CRMBLOB_PG_CLUSTER, which the Makefile sets) because it stops and
 * restarts it; each schema test works in a fresh schema (pgtmp.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"
#include "store/pg_conn.h"
#include "store/store_pgmod.h"

#include "pgtmp.h"

/* The conninfo of the test cluster (search_path public). */
static const char *cluster_conninfo(void)
{
    static char ci[1024];
    pgtmp_conninfo(ci, sizeof(ci), "");
    return ci;
}

static const pgc_options base_opts = {
    .size = 4, .checkout_wait_ms = 2000, .statement_timeout_ms = 5000, .connect_timeout_s = 5};

/* ---- what a --db value names -------------------------------------------- */

/* pgc_is_pg's answer, which the server's test before it loads the module
 * (store_pgmod_is_pg, store_pgload.c) must give too. */
static bool is_pg(const char *where)
{
    bool pg = pgc_is_pg(where);
    assert_int_equal(store_pgmod_is_pg(where), pg);
    return pg;
}

static void test_is_pg(void **state)
{
    (void)state;
    assert_true(is_pg("postgresql://db.example/crm"));
    assert_true(is_pg("postgres://u@h/d"));
    assert_true(is_pg("PostgreSQL://h/d"));
    assert_true(is_pg("postgresql://"));
    assert_true(is_pg("host=/run/postgresql dbname=crm"));
    assert_true(is_pg("  dbname = crm"));
    assert_true(is_pg("service=crmblob"));
    assert_false(is_pg("./data/crmblob.db"));
    assert_false(is_pg("crmblob.db"));
    assert_false(is_pg("./host=x.db")); /* how a file named host=... is given */
    assert_false(is_pg("a=b.db"));      /* not a libpq keyword */
    assert_false(is_pg("hots=x dbname=y"));
    assert_false(is_pg("postgresql:/x"));
    assert_false(is_pg(""));
    assert_false(is_pg("/var/lib/crmblob/postgres://x.db"));
}

/* describe(in) must equal want and hold no "secret". */
static void check_describe(const char *in, const char *want)
{
    char buf[512];
    pgc_describe(in, buf, sizeof(buf));
    if (strcmp(buf, want) != 0)
        fprintf(stderr, "describe(%s)\n  = %s\n want %s\n", in, buf, want);
    assert_string_equal(buf, want);
    assert_null(strstr(buf, "secret"));
    assert_null(strstr(buf, "s3cr"));
}

static void test_describe(void **state)
{
    (void)state;
    setenv("PGPASSWORD", "secret-from-env", 1);
    check_describe("postgresql://alice:s3cr%40t@db.example:5433/crm?sslmode=require",
                   "user=alice dbname=crm host=db.example port=5433 sslmode=require");
    /* a password in the query, several hosts, percent-escapes in the path */
    check_describe("postgres://bob@h1:5432,h2:5433/my%20db?password=secret&application_name=x",
                   "user=bob dbname='my db' host=h1,h2 port=5432,5433 application_name=x");
    check_describe("postgresql://%2Frun%2Fpostgresql/crm", "dbname=crm host=/run/postgresql");
    check_describe("postgresql://carol:secret@/crm?host=/tmp/pg",
                   "user=carol dbname=crm host=/tmp/pg");
    check_describe("postgresql://:secret@h/d", "dbname=d host=h");
    /* key=value: quoting with escapes, the password anywhere */
    check_describe("host=/tmp/pg password='it\\'s a secret' dbname='a b'",
                   "dbname='a b' host=/tmp/pg");
    check_describe("password=secret", "(libpq's defaults)");
    check_describe("user=o\\'neil password = secret sslpassword=secret2 options='-c x=1'",
                   "user='o\\'neil' options='-c x=1'");
    check_describe("dbname='a\\\\b'", "dbname='a\\\\b'");
    /* not understood: a fixed text, never the input */
    check_describe("host=x password=secret dbname",
                   "(a PostgreSQL conninfo libpq does not understand)");
    check_describe("host=x nosuch=secret", "(a PostgreSQL conninfo libpq does not understand)");
    check_describe("password='secret", "(a PostgreSQL conninfo libpq does not understand)");
    /* a small buffer: cut, terminated */
    char small[8];
    pgc_describe("host=abcdefghijklmnop password=secret", small, sizeof(small));
    assert_string_equal(small, "host=ab");
    unsetenv("PGPASSWORD");
}

static void test_sqlstate(void **state)
{
    (void)state;
    static const struct {
        const char *st;
        pgc_res want;
    } cases[] = {
        {"23505", PGC_CONFLICT},    {"2200H", PGC_CONFLICT},    {"23503", PGC_INVALID},
        {"23502", PGC_INVALID},     {"22001", PGC_INVALID},     {"22P02", PGC_INVALID},
        {"54000", PGC_TOO_LARGE},   {"53100", PGC_NO_SPACE},    {"08006", PGC_UNAVAILABLE},
        {"08001", PGC_UNAVAILABLE}, {"57P01", PGC_UNAVAILABLE}, {"57P02", PGC_UNAVAILABLE},
        {"57P03", PGC_UNAVAILABLE}, {"53300", PGC_UNAVAILABLE}, {"57014", PGC_UNAVAILABLE},
        {"55P03", PGC_UNAVAILABLE}, {"40001", PGC_RETRY},       {"40P01", PGC_RETRY},
        {"42P01", PGC_INTERNAL},    {"42601", PGC_INTERNAL},    {"53200", PGC_INTERNAL},
        {"XX000", PGC_INTERNAL},    {"", PGC_UNAVAILABLE},      {NULL, PGC_UNAVAILABLE},
        {"2350", PGC_UNAVAILABLE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pgc_res got = pgc_sqlstate_res(cases[i].st);
        if (got != cases[i].want)
            fprintf(stderr, "%s -> %s\n", cases[i].st ? cases[i].st : "NULL", pgc_res_name(got));
        assert_int_equal(got, cases[i].want);
    }
    assert_string_equal(pgc_res_name(PGC_RETRY), "RETRY");
}

/* ---- the pool ----------------------------------------------------------- */

/* The text of a one-value query on c (into buf). */
static void query_text(pgc_conn *c, const char *sql, char *buf, size_t cap)
{
    PGresult *r = NULL;
    assert_int_equal(pgc_exec(c, sql, &r), PGC_OK);
    snprintf(buf, cap, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
}

static long backend_pid(pgc_conn *c)
{
    char buf[32];
    query_text(c, "SELECT pg_backend_pid()", buf, sizeof(buf));
    return atol(buf);
}

static void test_session_settings(void **state)
{
    (void)state;
    pgc_pool *p = NULL;
    pgc_conn *c = NULL;
    char v[64];
    pgc_options o = base_opts;
    o.statement_timeout_ms = 1234;
    assert_int_equal(pgc_pool_open(cluster_conninfo(), &o, &p), PGC_OK);
    assert_int_equal(pgc_checkout(p, &c), PGC_OK);
    query_text(c, "SHOW synchronous_commit", v, sizeof(v));
    assert_string_equal(v, "on");
    query_text(c, "SHOW application_name", v, sizeof(v));
    assert_string_equal(v, "crmblob");
    query_text(c, "SHOW statement_timeout", v, sizeof(v));
    assert_string_equal(v, "1234ms");
    query_text(c, "SHOW client_encoding", v, sizeof(v));
    assert_string_equal(v, "UTF8");
    query_text(c, "SHOW transaction_isolation", v, sizeof(v));
    assert_string_equal(v, "read committed");
    pgc_return(p, c);
    pgc_pool_close(p);
}

typedef struct {
    pgc_pool *p;
    atomic_int out;  /* checked out now */
    atomic_int peak; /* most at once */
    atomic_int fails;
} pool_run;

static void *pool_worker(void *arg)
{
    pool_run *r = arg;
    for (int i = 0; i < 40; i++) {
        pgc_conn *c = NULL;
        if (pgc_checkout(r->p, &c) != PGC_OK) {
            atomic_fetch_add(&r->fails, 1);
            continue;
        }
        int now = atomic_fetch_add(&r->out, 1) + 1;
        for (int peak = atomic_load(&r->peak); now > peak;)
            if (atomic_compare_exchange_weak(&r->peak, &peak, now))
                break;
        if (pgc_exec(c, "SELECT pg_sleep(0.001)", NULL) != PGC_OK)
            atomic_fetch_add(&r->fails, 1);
        atomic_fetch_sub(&r->out, 1);
        pgc_return(r->p, c);
    }
    return NULL;
}

static void test_pool_threads(void **state)
{
    (void)state;
    pool_run r = {0};
    pthread_t th[10];
    assert_int_equal(pgc_pool_open(cluster_conninfo(), &base_opts, &r.p), PGC_OK);
    for (int i = 0; i < 10; i++)
        assert_int_equal(pthread_create(&th[i], NULL, pool_worker, &r), 0);
    for (int i = 0; i < 10; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&r.fails), 0);
    assert_true(atomic_load(&r.peak) <= 4);
    assert_true(atomic_load(&r.peak) >= 2); /* ten threads did share it */
    assert_true(pgc_pool_connects(r.p) <= 4);
    pgc_pool_close(r.p);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void test_checkout_wait_bounded(void **state)
{
    (void)state;
    pgc_pool *p = NULL;
    pgc_conn *c = NULL, *c2 = NULL;
    pgc_options o = base_opts;
    o.size = 1;
    o.checkout_wait_ms = 300;
    assert_int_equal(pgc_pool_open(cluster_conninfo(), &o, &p), PGC_OK);
    assert_int_equal(pgc_checkout(p, &c), PGC_OK);
    uint64_t t0 = mono_ms();
    assert_int_equal(pgc_checkout(p, &c2), PGC_UNAVAILABLE);
    uint64_t waited = mono_ms() - t0;
    assert_null(c2);
    assert_true(waited >= 290 && waited < 3000);
    pgc_return(p, c);
    assert_int_equal(pgc_checkout(p, &c2), PGC_OK);
    assert_ptr_equal(c2, c);
    pgc_return(p, c2);
    pgc_pool_close(p);
}

/* A connection returned inside a transaction (or a failed one) comes back
 * out of it. */
static void test_return_rolls_back(void **state)
{
    (void)state;
    pgc_pool *p = NULL;
    pgc_conn *c = NULL;
    pgc_options o = base_opts;
    o.size = 1;
    assert_int_equal(pgc_pool_open(cluster_conninfo(), &o, &p), PGC_OK);
    assert_int_equal(pgc_checkout(p, &c), PGC_OK);
    assert_int_equal(pgc_exec(c, "BEGIN", NULL), PGC_OK);
    assert_int_equal(pgc_exec(c, "SELECT 1/0", NULL), PGC_INVALID);
    assert_string_equal(pgc_last_sqlstate(c), "22012");
    pgc_return(p, c);
    assert_int_equal(pgc_checkout(p, &c), PGC_OK);
    assert_int_equal(PQtransactionStatus(pgc_pg(c)), PQTRANS_IDLE);
    assert_int_equal(pgc_exec(c, "SELECT 1", NULL), PGC_OK);
    assert_int_equal(pgc_pool_connects(p), 1); /* the same connection */
    pgc_return(p, c);
    pgc_pool_close(p);
}

static void test_statement_timeout(void **state)
{
    (void)state;
    pgc_pool *p = NULL;
    pgc_conn *c = NULL;
    pgc_options o = base_opts;
    o.size = 1;
    o.statement_timeout_ms = 100;
    assert_int_equal(pgc_pool_open(cluster_conninfo(), &o, &p), PGC_OK);
    assert_int_equal(pgc_checkout(p, &c), PGC_OK);
    assert_int_equal(pgc_exec(c, "SELECT pg_sleep(5)", NULL), PGC_UNAVAILABLE);
    assert_string_equal(pgc_last_sqlstate(c), "57014");
    pgc_return(p, c);
    assert_int_equal(pgc_checkout(p, &c), PGC_OK);
    assert_int_equal(pgc_exec(c, "SELECT 1", NULL), PGC_OK);
    assert_int_equal(pgc_pool_connects(p), 1); /* a timeout breaks no connection */
    pgc_return(p, c);
    pgc_pool_close(p);
}

static const pgc_stmt stmts[] = {
    {"add", "SELECT $1::int + $2::int", 0},
    {"pid", "SELECT pg_backend_pid()", 0},
};

static int run_add(pgc_conn *c, const char *x, const char *y, int *sum)
{
    const char *vals[] = {x, y};
    PGresult *r = NULL;
    pgc_res rc = pgc_run(c, 0, 2, vals, NULL, NULL, &r);
    if (rc == PGC_OK)
        *sum = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

/* Terminates backend pid from another connection and waits until it is gone. */
static void terminate(long pid)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%ld, 5000)::int", pid);
    long long ended = 0;
    assert_int_equal(pgtmp_run(NULL, sql, &ended), 0);
    assert_int_equal(ended, 1);
}

static void test_prepared_and_terminate(void **state)
{
    (void)state;
    pgc_pool *p = NULL;
    pgc_conn *c = NULL;
    int sum = 0;
    pgc_options o = base_opts;
    o.size = 1;
    o.stmts = stmts;
    o.nstmts = 2;
    assert_int_equal(pgc_pool_open(cluster_conninfo(), &o, &p), PGC_OK);
    assert_int_equal(pgc_checkout(p, &c), PGC_OK);
    assert_int_equal(run_add(c, "2", "3", &sum), PGC_OK);
    assert_int_equal(sum, 5);
    assert_int_equal(run_add(c, "x", "3", &sum), PGC_INVALID); /* 22P02 */
    assert_int_equal(run_add(c, "40", "2", &sum), PGC_OK);     /* still prepared */
    assert_int_equal(sum, 42);
    long pid = backend_pid(c);
    pgc_return(p, c);

    /* terminated while idle in the pool: the next checkout replaces it */
    terminate(pid);
    assert_int_equal(pgc_checkout(p, &c), PGC_OK);
    assert_int_not_equal(backend_pid(c), pid);
    assert_int_equal(pgc_pool_connects(p), 2);
    assert_int_equal(run_add(c, "1", "1", &sum), PGC_OK); /* prepared again */
    assert_int_equal(sum, 2);

    /* terminated while checked out: the statement says so, no crash */
    pid = backend_pid(c);
    terminate(pid);
    assert_int_equal(run_add(c, "1", "2", &sum), PGC_UNAVAILABLE);
    pgc_return(p, c);
    assert_int_equal(pgc_checkout(p, &c), PGC_OK);
    assert_int_equal(run_add(c, "1", "2", &sum), PGC_OK);
    assert_int_equal(sum, 3);
    assert_int_equal(pgc_pool_connects(p), 3);
    pgc_return(p, c);
    pgc_pool_close(p);
}

/* pgc_run_after: statement id after text statements, in one pipeline. */
static pgc_res run_add_after(pgc_conn *c, const char *const *pre, const char *x, int *sum)
{
    const char *vals[] = {x, "1"};
    PGresult *r = NULL;
    pgc_res rc = pgc_run_after(c, pre, 0, 2, vals, NULL, NULL, &r);
    if (rc == PGC_OK)
        *sum = atoi(PQgetvalue(r, 0, 0));
    else
        assert_null(r);
    PQclear(r);
    return rc;
}

/* The statement runs inside what pre began; the first failure is the
 * answer (a failed pre statement: the statement is not run, nor marked
 * prepared); the connection stays in step and usable; a terminated
 * backend is UNAVAILABLE and replaced. */
static void test_run_after(void **state)
{
    (void)state;
    static const char *const begin[] = {"BEGIN ISOLATION LEVEL READ COMMITTED",
                                        "SET LOCAL lock_timeout = 1", NULL};
    static const char *const bad[] = {"BEGIN", "SELECT 1/0", NULL};
    pgc_pool *p = NULL;
    pgc_conn *c = NULL;
    PGresult *r = NULL;
    int sum = 0;
    pgc_options o = base_opts;
    o.size = 1;
    o.stmts = stmts;
    o.nstmts = 2;
    assert_int_equal(pgc_pool_open(cluster_conninfo(), &o, &p), PGC_OK);
    assert_int_equal(pgc_checkout(p, &c), PGC_OK);
    /* a failed pre statement: its SQLSTATE, nothing after it ran */
    assert_int_equal(run_add_after(c, bad, "2", &sum), PGC_INVALID);
    assert_string_equal(pgc_last_sqlstate(c), "22012");
    assert_int_equal(PQtransactionStatus(pgc_pg(c)), PQTRANS_INERROR);
    assert_int_equal(pgc_exec(c, "ROLLBACK", NULL), PGC_OK);
    /* BEGIN and SET LOCAL, then the statement (prepared in the pipeline) */
    assert_int_equal(run_add_after(c, begin, "2", &sum), PGC_OK);
    assert_int_equal(sum, 3);
    assert_int_equal(PQtransactionStatus(pgc_pg(c)), PQTRANS_INTRANS);
    assert_int_equal(pgc_exec(c, "SHOW lock_timeout", &r), PGC_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "1ms");
    PQclear(r);
    assert_int_equal(run_add(c, "40", "2", &sum), PGC_OK); /* prepared, in step */
    assert_int_equal(sum, 42);
    assert_int_equal(pgc_exec(c, "COMMIT", NULL), PGC_OK);
    /* the statement fails after BEGIN: its failure, the transaction failed */
    assert_int_equal(run_add_after(c, begin, "x", &sum), PGC_INVALID); /* 22P02 */
    assert_int_equal(PQtransactionStatus(pgc_pg(c)), PQTRANS_INERROR);
    pgc_return(p, c); /* rolled back */
    assert_int_equal(pgc_checkout(p, &c), PGC_OK);
    assert_int_equal(pgc_pool_connects(p), 1);
    /* terminated while checked out: UNAVAILABLE, then a new connection */
    terminate(backend_pid(c));
    assert_int_equal(run_add_after(c, begin, "1", &sum), PGC_UNAVAILABLE);
    pgc_return(p, c);
    assert_int_equal(pgc_checkout(p, &c), PGC_OK);
    assert_int_equal(run_add_after(c, begin, "5", &sum), PGC_OK);
    assert_int_equal(sum, 6);
    assert_int_equal(pgc_pool_connects(p), 2);
    pgc_return(p, c);
    pgc_pool_close(p);
}

static void test_server_down_and_back(void **state)
{
    (void)state;
    pgc_pool *p = NULL, *p2 = NULL;
    pgc_conn *c = NULL;
    pgc_options o = base_opts;
    o.size = 2;
    assert_int_equal(pgc_pool_open(cluster_conninfo(), &o, &p), PGC_OK);
    assert_int_equal(pgtmp_cluster("pause", pgtmp_cluster_dir()), 0);
    /* the idle connection is found closed; a new one cannot be made */
    uint64_t t0 = mono_ms();
    assert_int_equal(pgc_checkout(p, &c), PGC_UNAVAILABLE);
    assert_int_equal(pgc_checkout(p, &c), PGC_UNAVAILABLE); /* the slot came back */
    assert_true(mono_ms() - t0 < 2000);
    /* a burst of requests while it is down tries one connection per pause */
    int64_t tries = pgc_pool_attempts(p);
    uint64_t t1 = mono_ms();
    for (int i = 0; i < 500; i++)
        assert_int_equal(pgc_checkout(p, &c), PGC_UNAVAILABLE);
    int64_t pauses = (int64_t)((mono_ms() - t1) * 1000 / PGC_RETRY_PAUSE_US);
    assert_true(pgc_pool_attempts(p) - tries <= pauses + 1);
    /* a server started while nothing answers: one line, at once */
    assert_int_equal(pgc_pool_open(cluster_conninfo(), &o, &p2), PGC_UNAVAILABLE);
    assert_null(p2);
    assert_int_equal(pgtmp_cluster("start", pgtmp_cluster_dir()), 0);
    usleep(PGC_RETRY_PAUSE_US); /* the pause after the last failed try */
    assert_int_equal(pgc_checkout(p, &c), PGC_OK);
    assert_int_equal(pgc_exec(c, "SELECT 1", NULL), PGC_OK);
    pgc_return(p, c);
    pgc_pool_close(p);
}

static void *start_later(void *arg)
{
    (void)arg;
    usleep(1000 * 1000);
    return (void *)(intptr_t)pgtmp_cluster("start", pgtmp_cluster_dir());
}

/* With start_wait_ms the pool waits for a server that comes up meanwhile. */
static void test_start_wait(void **state)
{
    (void)state;
    pgc_pool *p = NULL;
    pthread_t th;
    void *started = NULL;
    pgc_options o = base_opts;
    o.start_wait_ms = 20000;
    assert_int_equal(pgtmp_cluster("pause", pgtmp_cluster_dir()), 0);
    assert_int_equal(pthread_create(&th, NULL, start_later, NULL), 0);
    uint64_t t0 = mono_ms();
    assert_int_equal(pgc_pool_open(cluster_conninfo(), &o, &p), PGC_OK);
    assert_true(mono_ms() - t0 >= 900);
    pthread_join(th, &started);
    assert_int_equal((intptr_t)started, 0);
    pgc_pool_close(p);
    /* and gives up at its deadline */
    assert_int_equal(pgtmp_cluster("pause", pgtmp_cluster_dir()), 0);
    o.start_wait_ms = 600;
    t0 = mono_ms();
    assert_int_equal(pgc_pool_open(cluster_conninfo(), &o, &p), PGC_UNAVAILABLE);
    uint64_t waited = mono_ms() - t0;
    assert_true(waited >= 400 && waited < 3000);
    assert_int_equal(pgtmp_cluster("start", pgtmp_cluster_dir()), 0);
}

static void test_wrong_database(void **state)
{
    (void)state;
    pgc_pool *p = NULL;
    char ci[1200];
    pgtmp_conninfo(ci, sizeof(ci), "dbname=no_such_db");
    assert_int_equal(pgc_pool_open(ci, &base_opts, &p), PGC_UNAVAILABLE);
    assert_null(p);
}

/* The start-up error is one line that names the server, never its password. */
static void test_error_line_without_password(void **state)
{
    (void)state;
    pgc_pool *p = NULL;
    char url[1024], log[4096] = "";
    snprintf(url, sizeof(url), "postgresql://%s:secretpw@/no_such_db?host=%s&port=%s",
             getenv("PGUSER"), getenv("PGHOST"), getenv("PGPORT"));
    setenv("PGPASSWORD", "envsecret", 1);
    FILE *tmp = tmpfile();
    int saved = dup(2);
    fflush(stderr);
    dup2(fileno(tmp), 2);
    pgc_res rc = pgc_pool_open(url, &base_opts, &p);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    unsetenv("PGPASSWORD");
    rewind(tmp);
    size_t n = fread(log, 1, sizeof(log) - 1, tmp);
    log[n] = '\0';
    fclose(tmp);
    assert_int_equal(rc, PGC_UNAVAILABLE);
    assert_non_null(strstr(log, "cannot reach PostgreSQL (user="));
    assert_non_null(strstr(log, "dbname=no_such_db"));
    assert_null(strstr(log, "secretpw"));
    assert_null(strstr(log, "envsecret"));
    assert_int_equal(strchr(log, '\n') - log, (long)n - 1); /* one line */
}

/* A database that does not speak UTF8 is refused at open, not at the first
 * name with an accent. */
static void test_database_not_utf8(void **state)
{
    (void)state;
    pgc_pool *p = NULL;
    char ci[1200];
    assert_int_equal(pgtmp_run(NULL,
                               "CREATE DATABASE ascii_db "
                               "ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' "
                               "TEMPLATE template0",
                               NULL),
                     0);
    pgtmp_conninfo(ci, sizeof(ci), "dbname=ascii_db");
    assert_int_equal(pgc_pool_open(ci, &base_opts, &p), PGC_INTERNAL);
    assert_null(p);
}

/* ---- the schema --------------------------------------------------------- */

typedef struct {
    pgtmp t;
    pgc_pool *p;
    pgc_conn *c;
} schema_fx;

static int schema_setup(void **state)
{
    schema_fx *f = calloc(1, sizeof(*f));
    if (f == NULL || pgtmp_make(&f->t) != 0)
        return -1;
    if (pgc_pool_open(f->t.conninfo, &base_opts, &f->p) != PGC_OK ||
        pgc_checkout(f->p, &f->c) != PGC_OK)
        return -1;
    *state = f;
    return 0;
}

static int schema_teardown(void **state)
{
    schema_fx *f = *state;
    pgc_return(f->p, f->c);
    pgc_pool_close(f->p);
    pgtmp_drop(&f->t);
    free(f);
    return 0;
}

/* A BLOB record; answers its id. */
#define BLOB_INSERT                                                                                \
    "INSERT INTO blob(description, extra_info, mime_type, conceptual_type, blob_size, "            \
    "original_size, is_zipped, is_encrypted, created_ms, updated_ms, created_by, updated_by, "     \
    "version, info_version) VALUES ('', '', 'image/png', 'PHOTO', 3, 3, 0, 0, 1, 1, 0, 0, 1, 1) "  \
    "RETURNING id"

/* The tables of schema t, as "a,b,c". */
static void table_list(const pgtmp *t, char *out, size_t cap)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables "
             "WHERE schemaname = '%s'",
             t->schema);
    char ci[1200];
    pgtmp_conninfo(ci, sizeof(ci), "");
    PGconn *pg = PQconnectdb(ci);
    PGresult *r = PQexec(pg, sql);
    snprintf(out, cap, "%s", PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : "?");
    PQclear(r);
    PQfinish(pg);
}

static void test_schema_create_reopen(void **state)
{
    schema_fx *f = *state;
    int found = -1, v = -1;
    char tables[512];
    assert_int_equal(pgc_schema_version(f->c, &v), PGC_OK);
    assert_int_equal(v, 0);
    assert_int_equal(pgc_schema_migrate(f->c, &found), PGC_OK);
    assert_int_equal(found, 0);
    assert_int_equal(pgc_schema_version(f->c, &v), PGC_OK);
    assert_int_equal(v, PGC_SCHEMA_VERSION);
    table_list(&f->t, tables, sizeof(tables));
    assert_string_equal(tables, "app,batch_file,batch_task,blob,blob_piece,contact,counters,cred,meta,person,product,"
                                "project,project_library,schema_version,users,variant,"
                                "variant_data,variant_total");
    /* the same schema opened again: nothing to do, nothing lost */
    assert_int_equal(pgtmp_exec(&f->t, "INSERT INTO meta VALUES ('k', 'v')"), 0);
    assert_int_equal(pgc_schema_migrate(f->c, &found), PGC_OK);
    assert_int_equal(found, PGC_SCHEMA_VERSION);
    assert_int_equal(pgtmp_int(&f->t, "SELECT count(*) FROM meta"), 1);
    assert_int_equal(pgtmp_int(&f->t, "SELECT count(*) FROM schema_version"), 1);
    assert_int_equal(PQtransactionStatus(pgc_pg(f->c)), PQTRANS_IDLE);
}

static void test_schema_newer_refused(void **state)
{
    schema_fx *f = *state;
    int found = -1, v = -1;
    assert_int_equal(pgc_schema_migrate(f->c, &found), PGC_OK);
    assert_int_equal(pgtmp_exec(&f->t, "UPDATE schema_version SET version = 99"), 0);
    assert_int_equal(pgc_schema_migrate(f->c, &found), PGC_INTERNAL);
    assert_int_equal(found, 99);
    assert_int_equal(pgc_schema_version(f->c, &v), PGC_OK);
    assert_int_equal(v, 99); /* untouched */
    assert_int_equal(PQtransactionStatus(pgc_pg(f->c)), PQTRANS_IDLE);
}

typedef struct {
    const char *conninfo;
    int found;
    pgc_res rc;
} migrate_run;

static void *migrate_worker(void *arg)
{
    migrate_run *m = arg;
    pgc_pool *p = NULL;
    pgc_conn *c = NULL;
    m->rc = pgc_pool_open(m->conninfo, &base_opts, &p);
    if (m->rc == PGC_OK && (m->rc = pgc_checkout(p, &c)) == PGC_OK) {
        m->rc = pgc_schema_migrate(c, &m->found);
        pgc_return(p, c);
    }
    pgc_pool_close(p);
    return NULL;
}

/* Servers starting together on a new database: one migrates, the others
 * wait for it and find the work done. */
static void test_schema_concurrent(void **state)
{
    schema_fx *f = *state;
    migrate_run m[4];
    pthread_t th[4];
    int fresh = 0;
    for (int i = 0; i < 4; i++) {
        m[i] = (migrate_run){.conninfo = f->t.conninfo, .found = -1};
        assert_int_equal(pthread_create(&th[i], NULL, migrate_worker, &m[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(m[i].rc, PGC_OK);
        assert_true(m[i].found == 0 || m[i].found == PGC_SCHEMA_VERSION);
        fresh += m[i].found == 0;
    }
    assert_int_equal(fresh, 1);
}

/* The rules the tables themselves keep. */
static void test_schema_rules(void **state)
{
    schema_fx *f = *state;
    const pgtmp *t = &f->t;
    assert_int_equal(pgc_schema_migrate(f->c, NULL), PGC_OK);
    /* user names unique whatever their case */
    assert_int_equal(
        pgc_exec(f->c, "INSERT INTO users(name, created_ms) VALUES ('Alice', 1)", NULL), PGC_OK);
    assert_int_equal(
        pgc_exec(f->c, "INSERT INTO users(name, created_ms) VALUES ('aLICE', 1)", NULL),
        PGC_CONFLICT);
    assert_int_equal(
        pgc_exec(f->c, "INSERT INTO app(name, hash, created_ms) VALUES ('A', 'h', 1)", NULL),
        PGC_OK);
    assert_int_equal(
        pgc_exec(f->c, "INSERT INTO app(name, hash, created_ms) VALUES ('a', 'i', 1)", NULL),
        PGC_CONFLICT);
    /* BlobIds from a sequence: a deleted top id is not handed out again */
    const char *blob = BLOB_INSERT;
    assert_int_equal(pgtmp_int(t, blob), 1);
    assert_int_equal(pgtmp_exec(t, "DELETE FROM blob WHERE id = 1"), 0);
    assert_int_equal(pgtmp_int(t, blob), 2);
    /* pieces go with their record; an entity's link is cleared */
    assert_int_equal(pgtmp_exec(t,
                                "INSERT INTO blob_piece VALUES (2, 0, 'ab'), (2, 1, 'c');"
                                "INSERT INTO contact(id, name, image_blob_id) VALUES (7, 'x', 2);"
                                "INSERT INTO person(id, contact_id) VALUES (1, 7)"),
                     0);
    assert_int_equal(pgtmp_int(t, "SELECT sum(length(bytes)) FROM blob_piece"), 3);
    assert_int_equal(pgtmp_exec(t, "DELETE FROM blob WHERE id = 2"), 0);
    assert_int_equal(pgtmp_int(t, "SELECT count(*) FROM blob_piece"), 0);
    assert_int_equal(pgtmp_int(t, "SELECT count(*) FROM contact WHERE image_blob_id IS NULL"), 1);
    /* entity references: to a missing entity refused, a deleted one cleared */
    assert_int_equal(pgc_exec(f->c, "INSERT INTO person(id, contact_id) VALUES (2, 99)", NULL),
                     PGC_INVALID);
    assert_string_equal(pgc_last_sqlstate(f->c), "23503");
    assert_int_equal(pgtmp_exec(t, "DELETE FROM contact WHERE id = 7"), 0);
    assert_int_equal(pgtmp_int(t, "SELECT count(*) FROM person WHERE contact_id IS NULL"), 1);
    assert_int_equal(pgtmp_int(t, "SELECT version FROM person WHERE id = 1"), 1);
}

/* variant_total follows inserts, pinning, resizing and deletes of variants. */
static void test_schema_variant_total(void **state)
{
    schema_fx *f = *state;
    const pgtmp *t = &f->t;
    const char *total = "SELECT bytes * 1000 + count FROM variant_total";
    assert_int_equal(pgc_schema_migrate(f->c, NULL), PGC_OK);
    assert_int_equal(pgtmp_int(t, BLOB_INSERT), 1);
    const char *add = "INSERT INTO variant(blob_id, version, key, mime, is_zipped, is_encrypted, "
                      "original_size, size, pinned, last_used_ms) VALUES "
                      "(1, 1, 'a', 'image/png', 0, 0, 10, 10, 0, 1), "
                      "(1, 1, 'b', 'image/png', 0, 0, 20, 20, 0, 1), "
                      "(1, 1, 'c', 'image/png', 0, 0, 40, 40, 1, 1)";
    assert_int_equal(pgtmp_exec(t, add), 0);
    assert_int_equal(pgtmp_int(t, total), 30 * 1000 + 2);
    assert_int_equal(pgtmp_exec(t, "UPDATE variant SET pinned = 1 WHERE key = 'a'"), 0);
    assert_int_equal(pgtmp_int(t, total), 20 * 1000 + 1);
    assert_int_equal(pgtmp_exec(t, "UPDATE variant SET pinned = 0, size = 5 WHERE key = 'c'"), 0);
    assert_int_equal(pgtmp_int(t, total), 25 * 1000 + 2);
    assert_int_equal(pgtmp_exec(t, "UPDATE variant SET last_used_ms = 9"), 0);
    assert_int_equal(pgtmp_int(t, total), 25 * 1000 + 2);
    assert_int_equal(pgtmp_exec(t, "DELETE FROM variant WHERE key = 'b'"), 0);
    assert_int_equal(pgtmp_int(t, total), 5 * 1000 + 1);
    assert_int_equal(pgtmp_exec(t, "DELETE FROM blob"), 0); /* cascades */
    assert_int_equal(pgtmp_int(t, total), 0);
}

/* A whole piece of picture bytes goes in and comes back as bytes (binary
 * parameter and result), zero bytes and all. */
static void test_schema_piece_binary(void **state)
{
    schema_fx *f = *state;
    static const pgc_stmt piece_stmts[] = {
        {"piece_put", "INSERT INTO blob_piece(blob_id, n, bytes) VALUES ($1, $2, $3)", 0},
        {"piece_get", "SELECT bytes FROM blob_piece WHERE blob_id = $1 AND n = $2", 1},
    };
    pgc_pool *p = NULL;
    pgc_conn *c = NULL;
    PGresult *r = NULL;
    unsigned char *bytes = malloc(PGC_PIECE);
    for (size_t i = 0; i < PGC_PIECE; i++)
        bytes[i] = (unsigned char)(i * 7 + (i >> 11));
    assert_int_equal(pgc_schema_migrate(f->c, NULL), PGC_OK);
    assert_int_equal(pgtmp_int(&f->t, BLOB_INSERT), 1);
    pgc_options o = base_opts;
    o.stmts = piece_stmts;
    o.nstmts = 2;
    assert_int_equal(pgc_pool_open(f->t.conninfo, &o, &p), PGC_OK);
    assert_int_equal(pgc_checkout(p, &c), PGC_OK);
    const char *put[] = {"1", "0", (const char *)bytes};
    const int lens[] = {0, 0, PGC_PIECE}, fmts[] = {0, 0, 1};
    assert_int_equal(pgc_run(c, 0, 3, put, lens, fmts, NULL), PGC_OK);
    assert_int_equal(pgc_run(c, 0, 3, put, lens, fmts, NULL), PGC_CONFLICT); /* (blob_id, n) */
    const char *get[] = {"1", "0"};
    assert_int_equal(pgc_run(c, 1, 2, get, NULL, NULL, &r), PGC_OK);
    assert_int_equal(PQgetlength(r, 0, 0), PGC_PIECE);
    assert_memory_equal(PQgetvalue(r, 0, 0), bytes, PGC_PIECE);
    PQclear(r);
    pgc_return(p, c);
    pgc_pool_close(p);
    free(bytes);
}

int main(void)
{
    log_set_level(LOG_ERROR);
#define S(fn) cmocka_unit_test_setup_teardown(fn, schema_setup, schema_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_pg),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_sqlstate),
        cmocka_unit_test(test_session_settings),
        cmocka_unit_test(test_pool_threads),
        cmocka_unit_test(test_checkout_wait_bounded),
        cmocka_unit_test(test_return_rolls_back),
        cmocka_unit_test(test_statement_timeout),
        cmocka_unit_test(test_prepared_and_terminate),
        cmocka_unit_test(test_run_after),
        cmocka_unit_test(test_wrong_database),
        cmocka_unit_test(test_database_not_utf8),
        cmocka_unit_test(test_error_line_without_password),
        S(test_schema_create_reopen),
        S(test_schema_newer_refused),
        S(test_schema_concurrent),
        S(test_schema_rules),
        S(test_schema_variant_total),
        S(test_schema_piece_binary),
        cmocka_unit_test(test_server_down_and_back),
        cmocka_unit_test(test_start_wait),
    };
#undef S
    return cmocka_run_group_tests(tests, pgtmp_cluster_setup, pgtmp_cluster_teardown);
}
