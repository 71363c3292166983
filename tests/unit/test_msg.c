/*
 * test_msg.c — the message catalogues (SPEC §6): every message in every
 * language with English's placeholders, the locale a request's
 * Accept-Language / SO-Language / SO-Culture headers pick, and quantities
 * written per culture while identifiers never are grouped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "api/msg.h"
#include "core/text.h"

/* Bit k set for each {k}; *count the number of placeholders. */
static unsigned placeholders(const char *t, int *count)
{
    unsigned mask = 0;
    *count = 0;
    for (; *t; t++) {
        if (t[0] == '{' && t[1] >= '0' && t[1] <= '9' && t[2] == '}') {
            mask |= 1u << (t[1] - '0');
            (*count)++;
        }
    }
    return mask;
}

static void test_every_message_in_every_language(void **state)
{
    (void)state;
    assert_int_equal(msg_catalog_warnings(), 0);
    for (int l = 0; l < MSG_LANG__COUNT; l++) {
        for (int i = 0; i < MSG__COUNT; i++) {
            const char *t = msg_template((msg_lang)l, (msg_id)i);
            if (t == NULL || t[0] == '\0')
                fail_msg("%s.msg has no text for %s", msg_lang_code((msg_lang)l),
                         msg_id_name((msg_id)i));
        }
    }
}

static void test_same_placeholders_as_english(void **state)
{
    (void)state;
    for (int i = 0; i < MSG__COUNT; i++) {
        int n_en, n;
        unsigned en = placeholders(msg_template(MSG_LANG_EN, (msg_id)i), &n_en);
        for (int l = 1; l < MSG_LANG__COUNT; l++) {
            const char *t = msg_template((msg_lang)l, (msg_id)i);
            if (placeholders(t, &n) != en || n != n_en)
                fail_msg("%s.msg: %s has other placeholders than en.msg: %s",
                         msg_lang_code((msg_lang)l), msg_id_name((msg_id)i), t);
        }
    }
}

static void test_translations(void **state)
{
    (void)state;
    static const struct {
        msg_lang lang;
        const char *want;
    } cases[] = {
        {MSG_LANG_EN, "Person id 99 not found"},
        {MSG_LANG_NO, "Person med id 99 ble ikke funnet"},
        {MSG_LANG_SV, "Person med id 99 hittades inte"},
        {MSG_LANG_DA, "Person med id 99 blev ikke fundet"},
        {MSG_LANG_DE, "Person-ID 99 nicht gefunden"},
        {MSG_LANG_NL, "Person met id 99 niet gevonden"},
    };
    arena_t *a = arena_create();
    msg_arg args[] = {MSG_S("Person"), MSG_ID(99)};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msg_locale loc = {cases[i].lang, cases[i].lang, false};
        assert_string_equal(msg_format(a, &loc, MSG_ENTITY_NOT_FOUND, args, 2), cases[i].want);
    }
    /* no locale: English; a placeholder without an argument stays visible */
    assert_string_equal(msg_format(a, NULL, MSG_ENTITY_NOT_FOUND, args, 2),
                        "Person id 99 not found");
    assert_string_equal(msg_format(a, NULL, MSG_ENTITY_NOT_FOUND, args, 1),
                        "Person id {1} not found");
    msg_arg none[] = {MSG_S(NULL)};
    assert_string_equal(msg_format(a, NULL, MSG_MULTIPART, none, 1), "Malformed multipart body: ");
    arena_destroy(a);
}

typedef struct {
    const char *accept, *so_language, *so_culture;
    msg_lang lang, culture;
    bool plain;
} pick_case;

static void check_picks(const pick_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const pick_case *c = &cases[i];
        msg_locale got = msg_locale_pick(c->accept, c->so_language, c->so_culture);
        if (got.lang != c->lang || got.culture != c->culture || got.plain_numbers != c->plain)
            fail_msg("Accept-Language %s, SO-Language %s, SO-Culture %s: got %s/%s/%d, want "
                     "%s/%s/%d",
                     c->accept ? c->accept : "-", c->so_language ? c->so_language : "-",
                     c->so_culture ? c->so_culture : "-", msg_lang_code(got.lang),
                     msg_lang_code(got.culture), got.plain_numbers, msg_lang_code(c->lang),
                     msg_lang_code(c->culture), c->plain);
    }
}

static void test_pick_accept_language(void **state)
{
    (void)state;
    static const pick_case cases[] = {
        {NULL, NULL, NULL, MSG_LANG_EN, MSG_LANG_EN, false},
        {"", NULL, NULL, MSG_LANG_EN, MSG_LANG_EN, false},
        {"de-DE,de;q=0.9,en;q=0.5", NULL, NULL, MSG_LANG_DE, MSG_LANG_DE, false},
        {"en;q=0.5, sv;q=0.8, da;q=0.8", NULL, NULL, MSG_LANG_SV, MSG_LANG_SV, false},
        {"da;q=0.8, sv;q=0.8", NULL, NULL, MSG_LANG_DA, MSG_LANG_DA, false},
        {"fr-FR, nl;q=0.3", NULL, NULL, MSG_LANG_NL, MSG_LANG_NL, false},
        {"nb-NO", NULL, NULL, MSG_LANG_NO, MSG_LANG_NO, false},
        {"nn", NULL, NULL, MSG_LANG_NO, MSG_LANG_NO, false},
        {"NO", NULL, NULL, MSG_LANG_NO, MSG_LANG_NO, false},
        {"DE-ch", NULL, NULL, MSG_LANG_DE, MSG_LANG_DE, false},
        {"de;q=0, sv;q=0.1", NULL, NULL, MSG_LANG_SV, MSG_LANG_SV, false},
        {"de;Q=0.000", NULL, NULL, MSG_LANG_EN, MSG_LANG_EN, false},
        {"sv;q=abc, da", NULL, NULL, MSG_LANG_DA, MSG_LANG_DA, false},
        {"sv;q=1.5, da;q=0.2", NULL, NULL, MSG_LANG_DA, MSG_LANG_DA, false},
        {"fr", NULL, NULL, MSG_LANG_EN, MSG_LANG_EN, false},
        {"fr, *;q=0.5", NULL, NULL, MSG_LANG_EN, MSG_LANG_EN, false},
        {"de, *", NULL, NULL, MSG_LANG_DE, MSG_LANG_DE, false},
        {"*;q=0.1, nl;q=0.5", NULL, NULL, MSG_LANG_NL, MSG_LANG_NL, false},
        /* "*" alone admits any language: English, written the English way */
        {"*", NULL, NULL, MSG_LANG_EN, MSG_LANG_EN, false},
        {" *;q=0.5 ", NULL, NULL, MSG_LANG_EN, MSG_LANG_EN, false},
    };
    check_picks(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_pick_so_language(void **state)
{
    (void)state;
    static const pick_case cases[] = {
        {"de", "sv", NULL, MSG_LANG_SV, MSG_LANG_SV, false},
        {NULL, "nb-NO", NULL, MSG_LANG_NO, MSG_LANG_NO, false},
        {"de", "", NULL, MSG_LANG_DE, MSG_LANG_DE, false},
        {"de", "fr", NULL, MSG_LANG_EN, MSG_LANG_EN, false},
        /* translation off: English, plain numbers, SO-Culture ignored */
        {"de", "*", NULL, MSG_LANG_EN, MSG_LANG_EN, true},
        {"de", "x", "de", MSG_LANG_EN, MSG_LANG_EN, true},
        {NULL, "X", NULL, MSG_LANG_EN, MSG_LANG_EN, true},
        {"sv", " - ", "sv", MSG_LANG_EN, MSG_LANG_EN, true},
    };
    check_picks(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_pick_so_culture(void **state)
{
    (void)state;
    static const pick_case cases[] = {
        {"en", NULL, "de-DE", MSG_LANG_EN, MSG_LANG_DE, false},
        {NULL, "sv", "nb-NO", MSG_LANG_SV, MSG_LANG_NO, false},
        {"da", NULL, "sv", MSG_LANG_DA, MSG_LANG_SV, false},
        {"de", NULL, "fr-FR", MSG_LANG_DE, MSG_LANG_DE, false},
        {"nl", NULL, "", MSG_LANG_NL, MSG_LANG_NL, false},
        {NULL, NULL, "de", MSG_LANG_EN, MSG_LANG_DE, false},
        {"*", NULL, "de", MSG_LANG_EN, MSG_LANG_DE, false},
    };
    check_picks(cases, sizeof(cases) / sizeof(cases[0]));
}

/* The English BODY_TOO_LARGE text with n written in culture c. */
static const char *limit(arena_t *a, msg_lang c, bool plain, int64_t n)
{
    msg_locale loc = {MSG_LANG_EN, c, plain};
    msg_arg arg = MSG_N(n);
    const char *t = msg_format(a, &loc, MSG_BODY_TOO_LARGE, &arg, 1);
    const char *prefix = "The request body is larger than the limit of ";
    assert_memory_equal(t, prefix, strlen(prefix));
    return t + strlen(prefix);
}

static void test_numbers_per_culture(void **state)
{
    (void)state;
    arena_t *a = arena_create();
    assert_string_equal(limit(a, MSG_LANG_EN, false, 10485760), "10,485,760 bytes");
    assert_string_equal(limit(a, MSG_LANG_NO, false, 10485760), "10 485 760 bytes");
    assert_string_equal(limit(a, MSG_LANG_SV, false, 10485760), "10 485 760 bytes");
    assert_string_equal(limit(a, MSG_LANG_DA, false, 10485760), "10.485.760 bytes");
    assert_string_equal(limit(a, MSG_LANG_DE, false, 10485760), "10.485.760 bytes");
    assert_string_equal(limit(a, MSG_LANG_NL, false, 10485760), "10.485.760 bytes");
    assert_string_equal(limit(a, MSG_LANG_DE, true, 10485760), "10485760 bytes");
    assert_string_equal(limit(a, MSG_LANG_EN, false, 0), "0 bytes");
    assert_string_equal(limit(a, MSG_LANG_EN, false, 999), "999 bytes");
    assert_string_equal(limit(a, MSG_LANG_EN, false, 1000), "1,000 bytes");
    assert_string_equal(limit(a, MSG_LANG_EN, false, 65536), "65,536 bytes");
    assert_string_equal(limit(a, MSG_LANG_DE, false, -1234567), "-1.234.567 bytes");
    assert_string_equal(limit(a, MSG_LANG_EN, false, -999), "-999 bytes");
    assert_string_equal(limit(a, MSG_LANG_EN, false, INT64_MIN),
                        "-9,223,372,036,854,775,808 bytes");
    assert_string_equal(limit(a, MSG_LANG_EN, false, INT64_MAX), "9,223,372,036,854,775,807 bytes");
    arena_destroy(a);
}

static void test_ids_never_grouped(void **state)
{
    (void)state;
    arena_t *a = arena_create();
    msg_arg id[] = {MSG_S("Person"), MSG_ID(12345)};
    msg_arg qty[] = {MSG_S("Person"), MSG_N(12345)};
    msg_locale de = {MSG_LANG_DE, MSG_LANG_DE, false};
    msg_locale en = MSG_LOCALE_DEFAULT;
    assert_string_equal(msg_format(a, &en, MSG_ENTITY_NOT_FOUND, id, 2),
                        "Person id 12345 not found");
    assert_string_equal(msg_format(a, &de, MSG_ENTITY_NOT_FOUND, id, 2),
                        "Person-ID 12345 nicht gefunden");
    assert_string_equal(msg_format(a, &en, MSG_ENTITY_NOT_FOUND, qty, 2),
                        "Person id 12,345 not found");
    msg_arg neg[] = {MSG_S("Person"), MSG_ID(-12345)};
    assert_string_equal(msg_format(a, &en, MSG_ENTITY_NOT_FOUND, neg, 2),
                        "Person id -12345 not found");
    arena_destroy(a);
}

/* Arguments taken from a request may be any bytes: the message stays valid
 * UTF-8 (each invalid byte becomes U+FFFD), valid text passes unchanged. */
static void test_invalid_utf8_arguments(void **state)
{
    (void)state;
    arena_t *a = arena_create();
    msg_arg bad[] = {MSG_S("/x\xff\xc3")};
    assert_string_equal(msg_format(a, NULL, MSG_ROUTE_NOT_FOUND, bad, 1),
                        "There is no resource at /x\xEF\xBF\xBD\xEF\xBF\xBD");
    msg_arg surrogate[] = {MSG_S("\xed\xa0\x80"), MSG_S("x")};
    assert_string_equal(msg_format(a, NULL, MSG_BAD_QUERY, surrogate, 2),
                        "Query parameter \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD has an invalid value 'x'");
    msg_arg good[] = {MSG_S("/\xc3\xa9\xf0\x9f\x98\x80")};
    assert_string_equal(msg_format(a, NULL, MSG_ROUTE_NOT_FOUND, good, 1),
                        "There is no resource at /\xc3\xa9\xf0\x9f\x98\x80");
    arena_destroy(a);
}

/* A message cut at its cap (4096 bytes) is cut between characters, also
 * when the cut falls in a non-ASCII character of the template ("på"). */
static void test_cut_between_characters(void **state)
{
    (void)state;
    arena_t *a = arena_create();
    msg_locale da = {MSG_LANG_DA, MSG_LANG_DA, false};
    char method[4200];
    for (size_t k = 4000; k < sizeof(method); k++) {
        memset(method, 'M', k);
        method[k] = '\0';
        msg_arg args[] = {MSG_S(method), MSG_S("/x")};
        const char *t = msg_format(a, &da, MSG_METHOD_NOT_ALLOWED, args, 2);
        size_t n = strlen(t), i = 0, len;
        assert_true(n <= 4096 && n > 4000);
        while (i < n && (len = text_utf8_seq((const unsigned char *)t + i, n - i)) > 0)
            i += len;
        assert_int_equal(i, n); /* valid UTF-8 to the end */
        arena_reset(a);
    }
    arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_message_in_every_language),
        cmocka_unit_test(test_same_placeholders_as_english),
        cmocka_unit_test(test_translations),
        cmocka_unit_test(test_pick_accept_language),
        cmocka_unit_test(test_pick_so_language),
        cmocka_unit_test(test_pick_so_culture),
        cmocka_unit_test(test_numbers_per_culture),
        cmocka_unit_test(test_ids_never_grouped),
        cmocka_unit_test(test_invalid_utf8_arguments),
        cmocka_unit_test(test_cut_between_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
