/*
 * store_pgmod.c — the table crmblob-pg.so exports (store_pgmod.h): the
 * PostgreSQL backend's entry points, for a program that loads it.
 *
 * Invariant: everything the program asks of PostgreSQL goes through this
 * table, so the program itself never links libpq.
 */
#include "store/store_pgmod.h"

#include "store/pg_conn.h"

/* A source database must hold a crmblob schema already: the copy reads
 * its version on a pool of one before it opens the backend. */
static store_err schema_version(const char *conninfo, int *version)
{
    pgc_options o = {.size = 1, .checkout_wait_ms = 10000, .connect_timeout_s = 5};
    pgc_pool *p = NULL;
    pgc_conn *c = NULL;
    *version = 0;
    pgc_res r = pgc_pool_open(conninfo, &o, &p);
    if (r == PGC_OK && (r = pgc_checkout(p, &c)) == PGC_OK) {
        r = pgc_schema_version(c, version);
        pgc_return(p, c);
    }
    pgc_pool_close(p);
    return r == PGC_OK ? STORE_OK : STORE_UNAVAILABLE;
}

const store_pgmod store_pgmod_v1 = {
    .abi = STORE_PGMOD_ABI,
    .ops_size = sizeof(struct store_be_ops),
    .be_size = sizeof(struct store_be),
    .opt_size = sizeof(store_options),
    .is_pg = pgc_is_pg,
    .describe = pgc_describe,
    .open = store_pg_open,
    .schema_version = schema_version,
};
