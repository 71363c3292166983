/*
 * store_pgmod.h — the PostgreSQL backend as a module the server loads only
 * when a --db value names a PostgreSQL database (private to src/store).
 *
 * Why: libpq and what it pulls in (libssl, Kerberos, LDAP, SASL, ...) cost
 * a server about 1.3 MiB of resident memory once mapped, and a server on
 * SQLite never calls them. So crmblob does not link them: the PostgreSQL
 * backend (store_pg.c, pg_conn.c, pg_schema.c and this table,
 * store_pgmod.c) is built as crmblob-pg.so beside the program, with libpq,
 * and store_pgload.c opens it the first time a --db value may name
 * PostgreSQL.
 *
 * Invariants:
 *  - the module exports one symbol, store_pgmod_v1 (its linker map);
 *    everything else it needs from the program (arena, log, model, ...)
 *    the program exports for it by name (the Makefile's dynamic list);
 *  - program and module are built together: the table carries the sizes
 *    of the structures they share, and a module from another build is
 *    refused, not called;
 *  - a program that links the backend's objects itself (the unit tests)
 *    uses its own store_pgmod_v1 and loads nothing;
 *  - once loaded, the module stays (libpq keeps per-process state).
 */
#ifndef CB_STORE_PGMOD_H
#define CB_STORE_PGMOD_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store_backend.h"

#define STORE_PGMOD_ABI 1 /* raise when store_pgmod's members change */

typedef struct {
    unsigned abi;      /* STORE_PGMOD_ABI */
    size_t ops_size;   /* sizeof(struct store_be_ops) */
    size_t be_size;    /* sizeof(struct store_be) */
    size_t opt_size;   /* sizeof(store_options) */
    bool (*is_pg)(const char *where);                            /* pgc_is_pg */
    void (*describe)(const char *conninfo, char *buf, size_t cap); /* pgc_describe */
    store_err (*open)(const char *conninfo, const store_options *o, store_be **out);
    /* The crmblob schema version in conninfo's database (0: none there);
     * STORE_UNAVAILABLE when it cannot be read. */
    store_err (*schema_version)(const char *conninfo, int *version);
} store_pgmod;

/* The module's table (store_pgmod.c). */
extern const store_pgmod store_pgmod_v1;

/* True when `where` names a PostgreSQL database (pgc_is_pg's rule). A
 * value that cannot be one (a file path that is neither a postgres[ql]://
 * URL nor starts with "word =") answers false without loading the module;
 * any other is judged by the module. A module that cannot be loaded leaves
 * such a value to PostgreSQL, whose open then fails saying why. */
bool store_pgmod_is_pg(const char *where);

/* The module's table, loaded on first use; NULL when it cannot be (said
 * once in the log: which file, and why). Thread-safe. */
const store_pgmod *store_pgmod_get(void);

#endif
