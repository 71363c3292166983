/*
 * fuzz_pg_conninfo.c — what a --db value names and how logs show it:
 * pgc_is_pg() and pgc_describe() (src/store/pg_conn.h).
 *
 * Input: the --db value (bytes up to the first NUL).
 *
 * Invariants beyond "no crash":
 *  - a value libpq parses is described as a conninfo that libpq parses
 *    back to the same options, less every secret one (password,
 *    sslpassword): nothing lost, nothing added, no password;
 *  - a value libpq does not parse is described by a fixed text;
 *  - a description cut by a small buffer is a prefix of the whole one;
 *  - a postgresql:// or postgres:// value always names PostgreSQL;
 *  - the server's own test (store_pgmod_is_pg, which loads the module only
 *    for a value shaped like a conninfo) answers as pgc_is_pg does.
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#include "store/pg_conn.h"
#include "store/store_pgmod.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The value of keyword k in opts (NULL when unset). */
static const char *value_of(const PQconninfoOption *opts, const char *k)
{
    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
        if (strcmp(o->keyword, k) == 0)
            return o->val;
    return NULL;
}

/* The description parses back to the input's options without secrets. */
static void check_round_trip(const PQconninfoOption *in, const char *desc)
{
    if (strcmp(desc, "(libpq's defaults)") == 0) {
        for (const PQconninfoOption *o = in; o->keyword != NULL; o++)
            assert(o->val == NULL || (o->dispchar != NULL && o->dispchar[0] == '*'));
        return;
    }
    char *err = NULL;
    PQconninfoOption *out = PQconninfoParse(desc, &err);
    PQfreemem(err);
    assert(out != NULL);
    for (const PQconninfoOption *o = in; o->keyword != NULL; o++) {
        const char *back = value_of(out, o->keyword);
        bool secret = o->dispchar != NULL && o->dispchar[0] == '*';
        if (secret || o->val == NULL)
            assert(back == NULL);
        else
            assert(back != NULL && strcmp(back, o->val) == 0);
    }
    PQconninfoFree(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    size_t cap = 4 * strlen(s) + 4096; /* keywords, quotes and escapes */
    char *desc = malloc(cap), small[24];

    bool pg = pgc_is_pg(s);
    assert(store_pgmod_is_pg(s) == pg);
    if (strncasecmp(s, "postgresql://", 13) == 0 || strncasecmp(s, "postgres://", 11) == 0)
        assert(pg);
    pgc_describe(s, desc, cap);
    assert(strlen(desc) < cap);
    char *err = NULL;
    PQconninfoOption *in = PQconninfoParse(s, &err);
    PQfreemem(err);
    if (in != NULL)
        check_round_trip(in, desc);
    else
        assert(strcmp(desc, "(a PostgreSQL conninfo libpq does not understand)") == 0);
    PQconninfoFree(in);
    pgc_describe(s, small, sizeof(small));
    assert(strncmp(small, desc, strlen(small)) == 0);
    free(desc);
    free(s);
    return 0;
}
