/*
 * store_pgload.c — finding and loading crmblob-pg.so, the PostgreSQL
 * backend (store_pgmod.h), so that a server on SQLite never maps libpq.
 *
 * The module is $CRMBLOB_PG_MODULE, else crmblob-pg.so beside the program
 * (the two are built together, as crmblob-img is). It is opened once, with
 * every symbol bound at once (RTLD_NOW: a module that does not fit this
 * program fails here, not at its first call), and never closed.
 *
 * A program that links the backend objects (the unit tests) defines
 * store_pgmod_v1 itself; the weak reference below then finds it and
 * nothing is loaded. In crmblob it is undefined, so NULL.
 */
#include "store/store_pgmod.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/io.h"
#include "core/log.h"

#pragma weak store_pgmod_v1

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const store_pgmod *loaded; /* set once, under load_once */

/* $CRMBLOB_PG_MODULE, else crmblob-pg.so beside this program. */
static void module_path(char *buf, size_t cap)
{
    io_beside_self("CRMBLOB_PG_MODULE", "crmblob-pg.so", buf, cap);
}

/* The table of a module from this build, else NULL (said why). */
static const store_pgmod *checked(const store_pgmod *m, const char *path)
{
    if (m->abi == STORE_PGMOD_ABI && m->ops_size == sizeof(struct store_be_ops) &&
        m->be_size == sizeof(struct store_be) && m->opt_size == sizeof(store_options))
        return m;
    log_error("store: %s is a PostgreSQL module of another crmblob build (rebuild both)", path);
    return NULL;
}

static void load(void)
{
    char path[PATH_MAX + 32];
    if (&store_pgmod_v1 != NULL) { /* linked in */
        loaded = &store_pgmod_v1;
        return;
    }
    module_path(path, sizeof(path));
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    const store_pgmod *m = h != NULL ? dlsym(h, "store_pgmod_v1") : NULL;
    if (m == NULL) {
        log_error("store: cannot load the PostgreSQL module: %s (it is installed beside "
                  "crmblob, or named by CRMBLOB_PG_MODULE)",
                  dlerror());
        if (h != NULL)
            dlclose(h);
        return;
    }
    if ((loaded = checked(m, path)) == NULL)
        dlclose(h);
}

const store_pgmod *store_pgmod_get(void)
{
    pthread_once(&load_once, load);
    return loaded;
}

/* Could `s` be a postgres[ql]:// URL or a libpq "keyword = ..." string?
 * (the module judges the keyword) */
static bool pg_shape(const char *s)
{
    if (strncasecmp(s, "postgresql://", 13) == 0 || strncasecmp(s, "postgres://", 11) == 0)
        return true;
    s += strspn(s, " \t\n\r\f\v");
    size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz_");
    return n > 0 && s[n + strspn(s + n, " \t\n\r\f\v")] == '=';
}

bool store_pgmod_is_pg(const char *where)
{
    if (!pg_shape(where))
        return false;
    const store_pgmod *m = store_pgmod_get();
    return m == NULL || m->is_pg(where);
}
