/*
 * pgtmp.h — a fresh PostgreSQL schema per test fixture, in the cluster
 * that PGHOST/PGPORT/PGUSER/PGDATABASE name (scripts/pg-cluster.sh prints
 * them): pgtmp_make runs CREATE SCHEMA t_<pid>_<n> and gives a conninfo
 * whose search_path is that schema alone; pgtmp_drop runs DROP SCHEMA ...
 * CASCADE (about 10 ms, against 100-300 ms for a database of its own).
 * Also the white-box statements a test runs beside the code under test
 * (pgtmp_exec, pgtmp_int), on a connection of their own.
 *
 * A test that stops and restarts its server runs a throwaway cluster of
 * its own: pgtmp_cluster runs scripts/pg-cluster.sh (path in
 * $CRMBLOB_PG_CLUSTER, which the Makefile sets) and takes the PG*
 * variables it prints; pgtmp_cluster_setup/teardown start and stop it
 * around a cmocka group, in pgtmp_cluster_dir().
 *
 * Header-only (static inline): each test program is one file.
 */
#ifndef CB_TEST_PGTMP_H
#define CB_TEST_PGTMP_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

typedef struct {
    char schema[64];
    char conninfo[1024]; /* for the code under test: the cluster, search_path = schema */
} pgtmp;

/* True when the environment names a cluster (pg-cluster.sh env). */
static inline bool pgtmp_available(void)
{
    return getenv("PGHOST") != NULL && getenv("PGDATABASE") != NULL;
}

/* Runs "pg-cluster.sh VERB DIR" (for start, the PG* variables it prints go
 * into the environment); its exit status. */
static inline int pgtmp_cluster(const char *verb, const char *dir)
{
    const char *script = getenv("CRMBLOB_PG_CLUSTER");
    char cmd[512], line[512];
    snprintf(cmd, sizeof(cmd), "bash %s %s %s %s", script ? script : "scripts/pg-cluster.sh", verb,
             strcmp(verb, "start") == 0 ? "--fast" : "", dir);
    FILE *f = popen(cmd, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *save = NULL;
        for (char *w = strtok_r(line, " \n", &save); w; w = strtok_r(NULL, " \n", &save)) {
            char *eq = strchr(w, '=');
            if (strncmp(w, "PG", 2) == 0 && eq != NULL) {
                *eq = '\0';
                setenv(w, eq + 1, 1);
            }
        }
    }
    return pclose(f);
}

/* The directory of the program's own cluster (pgtmp_cluster_setup). */
static inline char *pgtmp_cluster_dir(void)
{
    static char dir[64];
    return dir;
}

/* cmocka group setup: starts a throwaway cluster of the program's own and
 * points the PG* variables at it. */
static inline int pgtmp_cluster_setup(void **state)
{
    (void)state;
    char *dir = pgtmp_cluster_dir();
    snprintf(dir, 64, "/tmp/crmblob-pgcluster-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    rmdir(dir); /* pg-cluster.sh makes it, marked as its own */
    unsetenv("PGPASSWORD");
    return pgtmp_cluster("start", dir) == 0 && pgtmp_available() ? 0 : -1;
}

/* cmocka group teardown: stops the cluster of pgtmp_cluster_setup. */
static inline int pgtmp_cluster_teardown(void **state)
{
    (void)state;
    return pgtmp_cluster("stop", pgtmp_cluster_dir());
}

/* Value v quoted for a libpq key=value string. */
static inline void pgtmp_quote(char *out, size_t cap, const char *v)
{
    size_t n = 0;
    out[n++] = '\'';
    for (; *v != '\0' && n + 3 < cap; v++) {
        if (*v == '\'' || *v == '\\')
            out[n++] = '\\';
        out[n++] = *v;
    }
    out[n++] = '\'';
    out[n] = '\0';
}

/* The conninfo of the environment's cluster, with `extra` appended. */
static inline void pgtmp_conninfo(char *out, size_t cap, const char *extra)
{
    char host[512], user[128], db[128];
    const char *port = getenv("PGPORT");
    pgtmp_quote(host, sizeof(host), getenv("PGHOST"));
    pgtmp_quote(user, sizeof(user), getenv("PGUSER") ? getenv("PGUSER") : "");
    pgtmp_quote(db, sizeof(db), getenv("PGDATABASE"));
    snprintf(out, cap, "host=%s port=%s user=%s dbname=%s %s", host, port ? port : "5432", user, db,
             extra);
}

static inline void pgtmp_quiet(void *arg, const char *msg)
{
    (void)arg, (void)msg; /* "drop cascades to ...": nothing a test reader needs */
}

/* Runs sql (one or more statements) on a connection of its own, in search
 * path `schema` (NULL: the default); 0 or -1 (the error is printed). With
 * out != NULL, *out gets the integer in the first row's first column. */
static inline int pgtmp_run(const char *schema, const char *sql, long long *out)
{
    char ci[1024], opt[128];
    snprintf(opt, sizeof(opt), "options='-csearch_path=%s'", schema ? schema : "public");
    pgtmp_conninfo(ci, sizeof(ci), opt);
    PGconn *pg = PQconnectdb(ci);
    PQsetNoticeProcessor(pg, pgtmp_quiet, NULL);
    PGresult *r = PQstatus(pg) == CONNECTION_OK ? PQexec(pg, sql) : NULL;
    ExecStatusType st = PQresultStatus(r);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
    if (rc != 0)
        fprintf(stderr, "pgtmp: %s: %s", sql, r ? PQresultErrorMessage(r) : PQerrorMessage(pg));
    if (rc == 0 && out != NULL)
        *out = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    PQfinish(pg);
    return rc;
}

static inline int pgtmp_exec(const pgtmp *t, const char *sql)
{
    return pgtmp_run(t->schema, sql, NULL);
}

/* The integer sql answers (first row, first column; -1 for none or an error). */
static inline long long pgtmp_int(const pgtmp *t, const char *sql)
{
    long long v = -1;
    return pgtmp_run(t->schema, sql, &v) == 0 ? v : -1;
}

/* Makes a new schema t_<pid>_<n>; -1 on failure. */
static inline int pgtmp_make(pgtmp *t)
{
    static int n;
    char sql[128], opt[128];
    snprintf(t->schema, sizeof(t->schema), "t_%ld_%d", (long)getpid(), ++n);
    snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", t->schema);
    if (pgtmp_run(NULL, sql, NULL) != 0)
        return -1;
    snprintf(opt, sizeof(opt), "options='-csearch_path=%s'", t->schema);
    pgtmp_conninfo(t->conninfo, sizeof(t->conninfo), opt);
    return 0;
}

static inline void pgtmp_drop(const pgtmp *t)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", t->schema);
    pgtmp_run(NULL, sql, NULL);
}

#endif
