/*
 * fuzz_locale.c — choosing the language of error messages from the request
 * headers, msg_locale_pick() (Accept-Language with q-values, SO-Language,
 * SO-Culture).
 *
 * Input: Accept-Language, SO-Language and SO-Culture separated by '\n';
 * a header missing from the end is absent (NULL).
 *
 * Invariants beyond "no crash":
 *  - language and culture are supported ones; translation off
 *    (plain_numbers) means English text and culture;
 *  - no headers at all give MSG_LOCALE_DEFAULT;
 *  - SO-Language either overrides Accept-Language completely (the result
 *    does not depend on Accept-Language) or is ignored (the result is as
 *    without it);
 *  - SO-Culture never changes the language, and the culture is either the
 *    language's or the one SO-Culture names alone;
 *  - messages can be formatted in the chosen locale (one picked by the
 *    input's length, and one with a grouped quantity).
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(msg_locale a, msg_locale b)
{
    return a.lang == b.lang && a.culture == b.culture && a.plain_numbers == b.plain_numbers;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = strndup((const char *)data, size);
    const char *h[3] = {NULL, NULL, NULL};
    char *p = text;
    for (int i = 0; i < 3 && p != NULL; i++) {
        h[i] = p;
        p = strchr(p, '\n');
        if (p != NULL)
            *p++ = '\0';
    }
    msg_locale got = msg_locale_pick(h[0], h[1], h[2]);
    assert(got.lang < MSG_LANG__COUNT && got.culture < MSG_LANG__COUNT);
    assert(!got.plain_numbers || (got.lang == MSG_LANG_EN && got.culture == MSG_LANG_EN));
    assert(same(msg_locale_pick(NULL, NULL, NULL), MSG_LOCALE_DEFAULT));

    if (h[1] != NULL)
        assert(same(got, msg_locale_pick("", h[1], h[2])) ||
               same(got, msg_locale_pick(h[0], NULL, h[2])));
    msg_locale no_culture = msg_locale_pick(h[0], h[1], NULL);
    assert(got.lang == no_culture.lang && got.plain_numbers == no_culture.plain_numbers);
    assert(got.culture == got.lang || got.culture == msg_locale_pick(NULL, NULL, h[2]).culture);

    arena_t *a = arena_create();
    msg_arg args[] = {MSG_S("Person"), MSG_N(10485760), MSG_ID(12345), MSG_N(-7)};
    assert(msg_format(a, &got, (msg_id)(size % MSG__COUNT), args, 4) != NULL);
    assert(msg_format(a, &got, MSG_BODY_TOO_LARGE, args + 1, 1) != NULL);
    arena_destroy(a);
    free(text);
    return 0;
}
