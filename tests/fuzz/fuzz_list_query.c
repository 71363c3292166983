/*
 * fuzz_list_query.c — the query parsers of entity lists (list.c):
 * $orderby (list_parse_orderby) and $filter (list_parse_filter).
 *
 * Input: byte 0 picks the entity kind; the rest, up to the first NUL, is
 * the $orderby text, and what follows that NUL the $filter text.
 *
 * Invariants beyond "no crash":
 *  - an accepted $orderby has 1..STORE_LIST_KEYS keys (0 for ""), each
 *    the id (-1) or a field of the kind; a refused one points at a piece
 *    of the text (its bad element);
 *  - an accepted $filter gives at most MODEL_STRING_MAX bytes, and that
 *    text quoted again (' doubled) is accepted and gives it back.
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_orderby(model_kind k, const char *s)
{
    const model_entity_def *def = model_entity(k);
    store_list_query q = {.kind = k};
    const char *bad = NULL;
    size_t badn = 0;
    if (list_parse_orderby(def, s, &q, &bad, &badn)) {
        assert(q.nkeys >= 0 && q.nkeys <= STORE_LIST_KEYS);
        assert(*s == '\0' || q.nkeys > 0);
        for (int i = 0; i < q.nkeys; i++)
            assert(q.keys[i].field >= -1 && q.keys[i].field < def->nfields);
    } else {
        assert(bad >= s && bad + badn <= s + strlen(s));
    }
}

static void check_filter(const char *s)
{
    arena_t *a = arena_create();
    const char *got = list_parse_filter(a, s);
    if (got != NULL) {
        size_t n = strlen(got);
        assert(n <= MODEL_STRING_MAX);
        char *again = arena_alloc(a, 2 * n + 32), *o = again;
        o += strlen(strcpy(o, "name begins '"));
        for (const char *p = got; *p; p++) {
            if (*p == '\'')
                *o++ = '\'';
            *o++ = *p;
        }
        strcpy(o, "'");
        const char *back = list_parse_filter(a, again);
        assert(back != NULL && strcmp(back, got) == 0);
    }
    arena_destroy(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    model_kind k = (model_kind)(data[0] % MODEL_KIND_COUNT);
    char *text = malloc(size + 1);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    text[size] = '\0';
    size_t first = strlen(text);
    check_orderby(k, text);
    check_filter(first < size - 1 ? text + first + 1 : "");
    free(text);
    return 0;
}
