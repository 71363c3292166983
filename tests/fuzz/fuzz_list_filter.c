/*
 * fuzz_list_filter.c — the $filter comparison parser of the batch task
 * list (list.c: list_parse_terms), over a small field table.
 *
 * Input: the $filter text (up to the first NUL).
 *
 * Invariants beyond "no crash":
 *  - an accepted filter has 1..MAX_TERMS terms, each a field of the table,
 *    an op of the seven, a value; a bare value is one non-empty word, a
 *    quoted one's `at` points at its opening quote;
 *  - the terms written again (`Field op 'value'` with ' doubled, joined by
 *    " and ") are accepted and give the same terms back;
 *  - a refused filter's *bad points into the text (at most its end).
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "core/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_TERMS 8

static const char *const fields[] = {"Id", "Name", "State", "Created", "AssociateId"};
static const char *const ops[] = {"eq", "ne", "lt", "le", "gt", "ge", "begins"};

static int field(const void *ctx, const char *name, size_t n)
{
    (void)ctx;
    for (int i = 0; i < (int)(sizeof(fields) / sizeof(fields[0])); i++)
        if (text_ieq(name, n, fields[i]))
            return i;
    return -2;
}

/* The terms as text again, every value quoted. */
static char *rewrite(arena_t *a, const list_term *t, int n)
{
    size_t cap = 64;
    for (int i = 0; i < n; i++)
        cap += 2 * strlen(t[i].value) + 40;
    char *out = arena_alloc(a, cap), *o = out;
    for (int i = 0; i < n; i++) {
        o += strlen(strcpy(o, i ? " and " : ""));
        o += strlen(strcpy(o, fields[t[i].field]));
        *o++ = ' ';
        o += strlen(strcpy(o, ops[t[i].op]));
        o += strlen(strcpy(o, " '"));
        for (const char *p = t[i].value; *p; p++) {
            if (*p == '\'')
                *o++ = '\'';
            *o++ = *p;
        }
        *o++ = '\'';
    }
    *o = '\0';
    return out;
}

static void check_accepted(arena_t *a, const char *s, const list_term *t, int n)
{
    assert(n >= 1 && n <= MAX_TERMS);
    for (int i = 0; i < n; i++) {
        assert(t[i].field >= 0 && t[i].field < (int)(sizeof(fields) / sizeof(fields[0])));
        assert(t[i].op >= 0 && t[i].op < (int)(sizeof(ops) / sizeof(ops[0])));
        assert(t[i].value != NULL && t[i].at >= s && t[i].at < s + strlen(s));
        assert(t[i].quoted ? *t[i].at == '\'' : *t[i].value != '\0');
    }
    list_term again[MAX_TERMS];
    int m = 0;
    const char *bad = NULL, *text = rewrite(a, t, n);
    assert(list_parse_terms(a, text, field, NULL, again, MAX_TERMS, &m, &bad));
    assert(m == n);
    for (int i = 0; i < n; i++)
        assert(again[i].field == t[i].field && again[i].op == t[i].op && again[i].quoted &&
               strcmp(again[i].value, t[i].value) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena_t *a = arena_create();
    char *s = arena_alloc(a, size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    list_term t[MAX_TERMS];
    int n = 0;
    const char *bad = NULL;
    if (list_parse_terms(a, s, field, NULL, t, MAX_TERMS, &n, &bad))
        check_accepted(a, s, t, n);
    else
        assert(bad >= s && bad <= s + strlen(s));
    arena_destroy(a);
    return 0;
}
