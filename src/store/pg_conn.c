/*
 * pg_conn.c — PostgreSQL connections: the meaning of a --db value, its
 * description for logs, the pool, and statements with their results
 * reduced to pgc_res (the schema is pg_schema.c).
 *
 * The pool holds `size` slots. A slot is free or checked out (busy) and
 * holds a connection or none; pool.mu guards only the busy flags, so that
 * connecting (which may take seconds) happens outside it, by the thread
 * that checked the slot out. Each connection runs with application_name
 * crmblob, client_encoding UTF8, synchronous_commit on, READ COMMITTED by
 * default and the pool's statement timeout; its database must be UTF8.
 *
 * A broken connection is found three ways: a statement's answer says so
 * (a class 08 or 57P0x SQLSTATE, or libpq lost the socket), pgc_return
 * finds it in a state it cannot leave, or at checkout its idle socket has
 * been closed by the server (pg_terminate_backend, a restart), which
 * poll() tells without a round trip. Its slot then connects anew at the
 * next checkout, and forgets what it had prepared.
 *
 * pgc_run_after sends text statements (BEGIN) and a prepared one in
 * libpq's pipeline mode and reads every answer and the Sync before it
 * returns: a connection is never left inside a pipeline.
 */
#include "store/pg_conn.h"

#include <assert.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/text.h"

#define PGC_DESC_MAX 256 /* a description in logs */
#define PGC_RETRY_MS 200 /* between attempts while start_wait_ms lasts */

struct pgc_conn {
    PGconn *pg;     /* NULL: not connected */
    bool broken;    /* replace at the next checkout */
    bool busy;      /* checked out (guarded by pool.mu) */
    bool *prepared; /* [nstmts]: prepared on this pg */
    const pgc_pool *pool;
    char sqlstate[6];
};

struct pgc_pool {
    char *conninfo;
    pgc_options o;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a slot became free */
    pgc_conn *slots;   /* [o.size] */
    int64_t connects;  /* guarded by mu */
    int64_t attempts;  /* connections tried by reconnect, guarded by mu */
    uint64_t retry_at_us; /* after a failed attempt: none before this (monotonic); guarded by mu */
    char desc[PGC_DESC_MAX];
    metrics_family *m_wait, *m_timeouts; /* o.metrics: checkouts that waited */
};

/* ---- results ------------------------------------------------------------ */

const char *pgc_res_name(pgc_res r)
{
    static const char *const names[] = {"OK",          "ABSENT",    "CONFLICT",
                                        "INVALID",     "TOO_LARGE", "NO_SPACE",
                                        "UNAVAILABLE", "RETRY",     "INTERNAL"};
    return r >= PGC_OK && r <= PGC_INTERNAL ? names[r] : "?";
}

pgc_res pgc_sqlstate_res(const char *st)
{
    if (st == NULL || strlen(st) != 5)
        return PGC_UNAVAILABLE;
    if (strcmp(st, "23505") == 0 || strcmp(st, "2200H") == 0)
        return PGC_CONFLICT;
    if (strncmp(st, "23", 2) == 0 || strncmp(st, "22", 2) == 0)
        return PGC_INVALID;
    if (strcmp(st, "54000") == 0)
        return PGC_TOO_LARGE;
    if (strcmp(st, "53100") == 0)
        return PGC_NO_SPACE;
    if (strncmp(st, "08", 2) == 0 || strcmp(st, "57P01") == 0 || strcmp(st, "57P02") == 0 ||
        strcmp(st, "57P03") == 0 || strcmp(st, "53300") == 0 || strcmp(st, "57014") == 0 ||
        strcmp(st, "55P03") == 0)
        return PGC_UNAVAILABLE;
    if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0)
        return PGC_RETRY;
    return PGC_INTERNAL;
}

/* ---- what a --db value names -------------------------------------------- */

static bool has_url_prefix(const char *s)
{
    return strncasecmp(s, "postgresql://", 13) == 0 || strncasecmp(s, "postgres://", 11) == 0;
}

/* True when s starts with "<libpq keyword> =" (libpq's parser judges the
 * keyword, so the list is always the linked library's). */
static bool starts_with_keyword(const char *s)
{
    char probe[80];
    size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz_");
    const char *after = s + n + strspn(s + n, " \t\n\r\f\v");
    if (n == 0 || n > 64 || *after != '=')
        return false;
    snprintf(probe, sizeof(probe), "%.*s=''", (int)n, s);
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(probe, &err);
    PQfreemem(err);
    PQconninfoFree(opts);
    return opts != NULL;
}

bool pgc_is_pg(const char *where)
{
    assert(where != NULL);
    return has_url_prefix(where) || starts_with_keyword(where + strspn(where, " \t\n\r\f\v"));
}

/* Appends s[0, n) to buf (cap) at *len, as much as fits; buf stays terminated. */
static void put(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
    size_t room = cap - 1 - *len;
    if (n > room)
        n = room;
    memcpy(buf + *len, s, n);
    *len += n;
    buf[*len] = '\0';
}

/* Appends value v as libpq reads it back: quoted when empty or when it
 * holds a space, a quote or a backslash. */
static void put_value(char *buf, size_t cap, size_t *len, const char *v)
{
    bool quote = *v == '\0' || strpbrk(v, " \t\n\r\f\v'\\") != NULL;
    if (!quote) {
        put(buf, cap, len, v, strlen(v));
        return;
    }
    put(buf, cap, len, "'", 1);
    for (; *v != '\0'; v++) {
        if (*v == '\'' || *v == '\\')
            put(buf, cap, len, "\\", 1);
        put(buf, cap, len, v, 1);
    }
    put(buf, cap, len, "'", 1);
}

/* Options libpq marks secret ("*": password, sslpassword), and the
 * password by name should a libpq ever stop marking it. */
static bool is_secret(const PQconninfoOption *o)
{
    return (o->dispchar != NULL && o->dispchar[0] == '*') || strcmp(o->keyword, "password") == 0;
}

void pgc_describe(const char *conninfo, char *buf, size_t cap)
{
    assert(conninfo != NULL && buf != NULL && cap > 0);
    size_t len = 0;
    char *err = NULL;
    buf[0] = '\0';
    PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
    PQfreemem(err); /* libpq's message may quote the input, password and all */
    if (opts == NULL) {
        snprintf(buf, cap, "(a PostgreSQL conninfo libpq does not understand)");
        return;
    }
    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL || is_secret(o))
            continue;
        if (len > 0)
            put(buf, cap, &len, " ", 1);
        put(buf, cap, &len, o->keyword, strlen(o->keyword));
        put(buf, cap, &len, "=", 1);
        put_value(buf, cap, &len, o->val);
    }
    if (len == 0)
        snprintf(buf, cap, "(libpq's defaults)");
    PQconninfoFree(opts);
}

/* ---- connections -------------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* libpq's message (several lines, "\n\t" between) as one line in out. */
static void one_line(const char *msg, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (const char *p = msg != NULL ? msg : ""; *p != '\0' && len + 1 < cap; p++) {
        if (*p == '\n' || *p == '\t' || *p == '\r') {
            if (len > 0 && out[len - 1] != ' ' && p[strspn(p, "\n\t\r ")] != '\0')
                put(out, cap, &len, " ", 1);
            continue;
        }
        put(out, cap, &len, p, 1);
    }
}

/* Notices (a skipped CREATE ... IF NOT EXISTS, a FATAL that reaches an idle
 * connection) go to the debug log, not to stderr as libpq would. */
static void on_notice(void *arg, const char *msg)
{
    (void)arg;
    char line[512];
    one_line(msg, line, sizeof(line));
    log_msg(LOG_DEBUG, "store: PostgreSQL says: %s", line);
}

/* The session settings of every connection. */
static pgc_res setup(PGconn *pg, const pgc_options *o, char *err, size_t cap)
{
    char sql[256];
    const char *enc = PQparameterStatus(pg, "server_encoding");
    if (enc == NULL || strcmp(enc, "UTF8") != 0) {
        snprintf(err, cap, "the database's encoding is %s, crmblob needs UTF8", enc ? enc : "?");
        return PGC_INTERNAL;
    }
    snprintf(sql, sizeof(sql),
             "SET synchronous_commit = on; SET statement_timeout = %d; "
             "SET default_transaction_isolation = 'read committed'",
             o->statement_timeout_ms > 0 ? o->statement_timeout_ms : 0);
    PGresult *r = PQexec(pg, sql);
    pgc_res rc = PGC_OK;
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        one_line(PQresultErrorMessage(r), err, cap);
        rc = pgc_sqlstate_res(PQresultErrorField(r, PG_DIAG_SQLSTATE));
    }
    PQclear(r);
    return rc;
}

/* One attempt to connect and set up; *out NULL and err filled on failure.
 * Our keywords before dbname are defaults the conninfo may override; those
 * after it are crmblob's own. */
static pgc_res connect_once(const pgc_pool *p, PGconn **out, char *err, size_t cap)
{
    char timeout[16] = ""; /* "": the conninfo's, else PGCONNECT_TIMEOUT's */
    if (p->o.connect_timeout_s > 0)
        snprintf(timeout, sizeof(timeout), "%d", p->o.connect_timeout_s);
    const char *keys[] = {"connect_timeout", "dbname", "application_name", "client_encoding", NULL};
    const char *vals[] = {timeout, p->conninfo, "crmblob", "UTF8", NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    pgc_res rc = PGC_UNAVAILABLE;
    *out = NULL;
    if (pg == NULL) {
        snprintf(err, cap, "out of memory");
        goto out;
    }
    if (PQstatus(pg) != CONNECTION_OK) {
        one_line(PQerrorMessage(pg), err, cap);
        goto out;
    }
    PQsetNoticeProcessor(pg, on_notice, NULL);
    if ((rc = setup(pg, &p->o, err, cap)) != PGC_OK)
        goto out;
    *out = pg;
    pg = NULL;
out:
    PQfinish(pg);
    return rc;
}

/* Replaces c's connection by a new one. */
/* May a connection be tried now? Not within PGC_RETRY_PAUSE_US of a
 * failed attempt: while the server is down, every request would otherwise
 * try (hundreds a second per server); they are answered at once instead. */
static bool may_try(pgc_pool *p)
{
    pthread_mutex_lock(&p->mu);
    bool ok = text_monotonic_us() >= p->retry_at_us;
    if (ok)
        p->attempts++;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

static void tried(pgc_pool *p, bool ok)
{
    pthread_mutex_lock(&p->mu);
    p->retry_at_us = ok ? 0 : text_monotonic_us() + PGC_RETRY_PAUSE_US;
    p->connects += ok;
    pthread_mutex_unlock(&p->mu);
}

static pgc_res reconnect(pgc_pool *p, pgc_conn *c)
{
    char err[512];
    PQfinish(c->pg);
    c->pg = NULL;
    c->broken = false;
    memset(c->prepared, 0, (size_t)p->o.nstmts * sizeof(bool));
    if (!may_try(p))
        return PGC_UNAVAILABLE;
    pgc_res rc = connect_once(p, &c->pg, err, sizeof(err));
    tried(p, rc == PGC_OK);
    if (rc != PGC_OK)
        log_msg(LOG_WARN, "store: PostgreSQL %s: cannot connect: %s", p->desc, err);
    return rc;
}

/* False when the server has closed c's idle connection or said something
 * that ended it. Costs a poll() and, only if data waits, one read. */
static bool still_up(pgc_conn *c)
{
    if (c->pg == NULL || c->broken || PQstatus(c->pg) != CONNECTION_OK)
        return false;
    struct pollfd pfd = {.fd = PQsocket(c->pg), .events = POLLIN | POLLRDHUP};
    if (pfd.fd < 0 || poll(&pfd, 1, 0) < 0)
        return false;
    if (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
        return false;
    if ((pfd.revents & POLLIN) && PQconsumeInput(c->pg) == 0)
        return false;
    return PQstatus(c->pg) == CONNECTION_OK;
}

/* ---- the pool ----------------------------------------------------------- */

static void pool_free(pgc_pool *p)
{
    if (p == NULL)
        return;
    for (int i = 0; p->slots != NULL && i < p->o.size; i++) {
        PQfinish(p->slots[i].pg);
        free(p->slots[i].prepared);
    }
    free(p->slots);
    free(p->conninfo);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static pgc_pool *pool_new(const char *conninfo, const pgc_options *o)
{
    pgc_pool *p = calloc(1, sizeof(*p));
    pthread_condattr_t ca;
    if (p == NULL)
        return NULL;
    p->o = *o;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    p->conninfo = strdup(conninfo);
    p->slots = calloc((size_t)o->size, sizeof(pgc_conn));
    bool ok = p->conninfo != NULL && p->slots != NULL;
    for (int i = 0; ok && i < o->size; i++) {
        p->slots[i].pool = p;
        p->slots[i].prepared = calloc((size_t)o->nstmts + 1, sizeof(bool));
        ok = p->slots[i].prepared != NULL;
    }
    if (!ok) {
        pool_free(p);
        return NULL;
    }
    pgc_describe(conninfo, p->desc, sizeof(p->desc));
    return p;
}

/* The first connection, tried until start_wait_ms have passed. */
static pgc_res first_connect(pgc_pool *p)
{
    char err[512];
    uint64_t deadline = now_ms() + (uint64_t)(p->o.start_wait_ms > 0 ? p->o.start_wait_ms : 0);
    pgc_res rc;
    while ((rc = connect_once(p, &p->slots[0].pg, err, sizeof(err))) == PGC_UNAVAILABLE &&
           now_ms() + PGC_RETRY_MS <= deadline)
        usleep(PGC_RETRY_MS * 1000);
    if (rc != PGC_OK) {
        log_error("store: cannot %s PostgreSQL (%s): %s", rc == PGC_UNAVAILABLE ? "reach" : "use",
                  p->desc, err);
        return rc;
    }
    p->connects = 1;
    return PGC_OK;
}

static void pool_metrics(pgc_pool *p, metrics_t *m)
{
    static const uint64_t wait_us[] = {100,   500,    1000,   5000,   10000,  50000,
                                       100000, 500000, 1000000, 2000000, 5000000};
    p->m_wait = metrics_register(
        m, &(metrics_def){.name = "crmblob_store_pool_wait_seconds",
                          .help = "PostgreSQL: how long checkouts that found every connection "
                                  "busy waited for one.",
                          .type = METRICS_HISTOGRAM, .bounds = wait_us,
                          .nbounds = sizeof(wait_us) / sizeof(wait_us[0]), .scale = 1e6});
    p->m_timeouts = metrics_register(
        m, &(metrics_def){.name = "crmblob_store_pool_timeouts_total",
                          .help = "PostgreSQL: checkouts that found no free connection in time "
                                  "(answered 503).",
                          .type = METRICS_COUNTER});
}

pgc_res pgc_pool_open(const char *conninfo, const pgc_options *o, pgc_pool **out)
{
    assert(conninfo != NULL && o != NULL && out != NULL);
    assert(o->size >= 1 && o->nstmts >= 0 && (o->nstmts == 0 || o->stmts != NULL));
    *out = NULL;
    pgc_pool *p = pool_new(conninfo, o);
    if (p == NULL)
        return PGC_INTERNAL;
    pgc_res rc = first_connect(p);
    if (rc != PGC_OK) {
        pool_free(p);
        return rc;
    }
    pool_metrics(p, o->metrics);
    *out = p;
    return PGC_OK;
}

void pgc_pool_close(pgc_pool *p)
{
    for (int i = 0; p != NULL && i < p->o.size; i++)
        assert(!p->slots[i].busy); /* every connection came back */
    pool_free(p);
}

int64_t pgc_pool_attempts(pgc_pool *p)
{
    pthread_mutex_lock(&p->mu);
    int64_t n = p->attempts;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int64_t pgc_pool_connects(pgc_pool *p)
{
    pthread_mutex_lock(&p->mu);
    int64_t n = p->connects;
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* A free slot, marked busy; NULL when none came free by deadline. Slots
 * that hold a connection are preferred. Called with p->mu held; *waited
 * is set when none was free at first. */
static pgc_conn *take_slot(pgc_pool *p, const struct timespec *deadline, bool *waited)
{
    for (;;) {
        pgc_conn *empty = NULL;
        for (int i = 0; i < p->o.size; i++) {
            pgc_conn *c = &p->slots[i];
            if (!c->busy && c->pg != NULL) {
                c->busy = true;
                return c;
            }
            if (!c->busy && empty == NULL)
                empty = c;
        }
        if (empty != NULL) {
            empty->busy = true;
            return empty;
        }
        *waited = true;
        if (pthread_cond_timedwait(&p->cv, &p->mu, deadline) != 0)
            return NULL;
    }
}

/* Frees slot c (holding a connection or not) for the next checkout. */
static void release_slot(pgc_pool *p, pgc_conn *c)
{
    pthread_mutex_lock(&p->mu);
    c->busy = false;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* The CLOCK_MONOTONIC time ms milliseconds from now (the pool's clock). */
static struct timespec deadline_in(int ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

pgc_res pgc_checkout(pgc_pool *p, pgc_conn **out)
{
    int wait = p->o.checkout_wait_ms > 0 ? p->o.checkout_wait_ms : 0;
    struct timespec deadline = deadline_in(wait);
    *out = NULL;
    bool waited = false;
    uint64_t t0 = text_monotonic_us();
    pthread_mutex_lock(&p->mu);
    pgc_conn *c = take_slot(p, &deadline, &waited);
    pthread_mutex_unlock(&p->mu);
    if (waited)
        metrics_observe(p->m_wait, 0, text_monotonic_us() - t0);
    if (c == NULL)
        metrics_add(p->m_timeouts, 0, 1);
    if (c == NULL) {
        log_msg(LOG_WARN, "store: PostgreSQL: all %d connections busy for %d ms", p->o.size, wait);
        return PGC_UNAVAILABLE;
    }
    c->sqlstate[0] = '\0';
    if (!still_up(c) && reconnect(p, c) != PGC_OK) {
        release_slot(p, c);
        return PGC_UNAVAILABLE;
    }
    *out = c;
    return PGC_OK;
}

void pgc_return(pgc_pool *p, pgc_conn *c)
{
    if (c == NULL)
        return;
    assert(c->pool == p && c->busy);
    PGTransactionStatusType ts = c->pg != NULL ? PQtransactionStatus(c->pg) : PQTRANS_UNKNOWN;
    if (!c->broken && (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR))
        c->broken = pgc_exec(c, "ROLLBACK", NULL) != PGC_OK;
    else if (ts != PQTRANS_IDLE)
        c->broken = true;
    if (c->broken) { /* give the server its connection back now */
        PQfinish(c->pg);
        c->pg = NULL;
    }
    release_slot(p, c);
}

PGconn *pgc_pg(pgc_conn *c)
{
    return c->pg;
}

void pgc_discard(pgc_conn *c)
{
    c->broken = true;
}

const char *pgc_last_sqlstate(const pgc_conn *c)
{
    return c->sqlstate;
}

/* ---- statements --------------------------------------------------------- */

/* The pgc_res of result r (consumed unless OK and kept in *out); marks c
 * broken when the connection is gone. `what` names the statement in logs. */
static pgc_res finish(pgc_conn *c, PGresult *r, const char *what, PGresult **out)
{
    ExecStatusType st = PQresultStatus(r);
    pgc_res rc = PGC_OK;
    if (r == NULL || (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)) {
        const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", state != NULL ? state : "");
        rc = pgc_sqlstate_res(state);
        if (PQstatus(c->pg) != CONNECTION_OK)
            rc = PGC_UNAVAILABLE;
        /* a statement or lock timeout (57014, 55P03) leaves the connection usable */
        if (rc == PGC_UNAVAILABLE && strcmp(c->sqlstate, "57014") != 0 &&
            strcmp(c->sqlstate, "55P03") != 0)
            c->broken = true;
        if (rc == PGC_INTERNAL) {
            char line[512];
            one_line(PQresultErrorMessage(r), line, sizeof(line));
            log_msg(LOG_ERROR, "store: PostgreSQL %s: %s (SQLSTATE %s)", what, line, c->sqlstate);
        }
    }
    if (rc == PGC_OK && out != NULL)
        *out = r;
    else
        PQclear(r);
    return rc;
}

pgc_res pgc_exec(pgc_conn *c, const char *sql, PGresult **out)
{
    assert(c != NULL && c->pg != NULL && sql != NULL);
    if (out != NULL)
        *out = NULL;
    return finish(c, PQexec(c->pg, sql), "statement", out);
}

/* Prepares statement id on c unless it is already. */
static pgc_res prepare(pgc_conn *c, int id)
{
    const pgc_stmt *s = &c->pool->o.stmts[id];
    if (c->prepared[id])
        return PGC_OK;
    pgc_res rc = finish(c, PQprepare(c->pg, s->name, s->sql, 0, NULL), s->name, NULL);
    c->prepared[id] = rc == PGC_OK;
    return rc;
}

pgc_res pgc_run(pgc_conn *c, int id, int n, const char *const *values, const int *lengths,
                const int *formats, PGresult **out)
{
    assert(c != NULL && c->pg != NULL && id >= 0 && id < c->pool->o.nstmts && n >= 0);
    if (out != NULL)
        *out = NULL;
    pgc_res rc = prepare(c, id);
    if (rc != PGC_OK)
        return rc;
    const pgc_stmt *s = &c->pool->o.stmts[id];
    PGresult *r = PQexecPrepared(c->pg, s->name, n, values, lengths, formats, s->result_format);
    return finish(c, r, s->name, out);
}

/* Sends pre's statements, statement id's PREPARE when it is not yet on c,
 * statement id and a Sync, in pipeline mode: false when libpq refused one
 * (the connection is unusable). *nq gets the number of queries sent. */
static bool send_pipeline(pgc_conn *c, const char *const *pre, int id, int n,
                          const char *const *values, const int *lengths, const int *formats,
                          int *nq)
{
    const pgc_stmt *s = &c->pool->o.stmts[id];
    bool ok = PQenterPipelineMode(c->pg) == 1;
    *nq = 0;
    for (int i = 0; ok && pre[i] != NULL; i++, (*nq)++)
        ok = PQsendQueryParams(c->pg, pre[i], 0, NULL, NULL, NULL, NULL, 0) == 1;
    if (ok && !c->prepared[id]) {
        ok = PQsendPrepare(c->pg, s->name, s->sql, 0, NULL) == 1;
        (*nq)++;
    }
    if (ok) {
        ok =
            PQsendQueryPrepared(c->pg, s->name, n, values, lengths, formats, s->result_format) == 1;
        (*nq)++;
    }
    return ok && PQpipelineSync(c->pg) == 1;
}

/* The answer to one query of a pipeline, folded into *rc (the first failure
 * wins; the queries after it answer PIPELINE_ABORTED and are dropped).
 * `last`: the statement's own answer, kept in *out when all went well.
 * False when no answer came (the connection is gone). */
static bool take_answer(pgc_conn *c, const char *what, bool last, pgc_res *rc, PGresult **out)
{
    PGresult *r = PQgetResult(c->pg);
    if (r == NULL)
        return false;
    if (*rc != PGC_OK || PQresultStatus(r) == PGRES_PIPELINE_ABORTED)
        PQclear(r);
    else
        *rc = finish(c, r, what, last ? out : NULL);
    for (PGresult *extra; (extra = PQgetResult(c->pg)) != NULL;) /* the query's end (NULL) */
        PQclear(extra);
    return true;
}

/* Reads the nq answers and the Sync of a pipeline, then leaves pipeline
 * mode; a connection that breaks meanwhile is marked broken. */
static pgc_res take_pipeline(pgc_conn *c, int id, int nq, PGresult **out)
{
    const pgc_stmt *s = &c->pool->o.stmts[id];
    bool prep = !c->prepared[id];
    pgc_res rc = PGC_OK;
    bool up = true;
    for (int q = 0; up && q < nq; q++) {
        up = take_answer(c, q == nq - 1 ? s->name : "statement", q == nq - 1, &rc, out);
        if (up && prep && q == nq - 2)
            c->prepared[id] = rc == PGC_OK;
    }
    PGresult *sync = up ? PQgetResult(c->pg) : NULL;
    up = up && PQresultStatus(sync) == PGRES_PIPELINE_SYNC && PQexitPipelineMode(c->pg) == 1;
    PQclear(sync);
    if (!up) {
        c->broken = true;
        if (out != NULL && *out != NULL) {
            PQclear(*out);
            *out = NULL;
        }
        rc = PGC_UNAVAILABLE;
    }
    return rc;
}

pgc_res pgc_run_after(pgc_conn *c, const char *const *pre, int id, int n, const char *const *values,
                      const int *lengths, const int *formats, PGresult **out)
{
    assert(c != NULL && c->pg != NULL && pre != NULL && id >= 0 && id < c->pool->o.nstmts);
    int nq = 0;
    if (out != NULL)
        *out = NULL;
    if (!send_pipeline(c, pre, id, n, values, lengths, formats, &nq)) {
        c->broken = true;
        c->sqlstate[0] = '\0';
        return PGC_UNAVAILABLE;
    }
    return take_pipeline(c, id, nq, out);
}
