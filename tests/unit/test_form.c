/*
 * test_form.c — unit tests of the application/x-www-form-urlencoded reader.
 *
 * Each accepted body is compared with the JSON object it must give; each
 * refused body must give NULL and a reason, and the reason must never
 * carry the client's bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/form.h"

/* Parses body and checks that the result equals the JSON text want. */
static void expect_n(const char *body, size_t len, const char *want)
{
    char err[128] = "";
    json_t *got = form_parse(body, len, err, sizeof(err));
    json_t *exp = json_loads(want, 0, NULL);
    assert_non_null(exp);
    if (got == NULL)
        fail_msg("form_parse(\"%s\") refused: %s", body, err);
    if (!json_equal(got, exp)) {
        char *dump = json_dumps(got, JSON_SORT_KEYS);
        fail_msg("form_parse(\"%s\") gave %s, want %s", body, dump, want);
    }
    json_decref(got);
    json_decref(exp);
}

static void expect(const char *body, const char *want)
{
    expect_n(body, strlen(body), want);
}

/* Checks that body is refused with a reason that contains needle. */
static void refuse_n(const char *body, size_t len, const char *needle)
{
    char err[128] = "";
    json_t *got = form_parse(body, len, err, sizeof(err));
    if (got != NULL)
        fail_msg("form_parse(\"%s\") accepted", body);
    if (strstr(err, needle) == NULL)
        fail_msg("form_parse(\"%s\"): reason \"%s\" lacks \"%s\"", body, err, needle);
}

static void refuse(const char *body, const char *needle)
{
    refuse_n(body, strlen(body), needle);
}

static void test_form_basic(void **state)
{
    (void)state;
    expect("Description=Front&ExtraInfo=x", "{\"Description\": \"Front\", \"ExtraInfo\": \"x\"}");
    expect("description=a", "{\"description\": \"a\"}"); /* names kept as sent */
    expect("a=b=c", "{\"a\": \"b=c\"}");                 /* only the first '=' splits */
    expect("=v", "{\"\": \"v\"}");
    /* The body need not be NUL-terminated: only len bytes count. */
    expect_n("a=1&b=2", 3, "{\"a\": \"1\"}");
}

static void test_form_plus_and_percent(void **state)
{
    (void)state;
    expect("a=b+c%20d", "{\"a\": \"b c d\"}");
    expect("my+name=1", "{\"my name\": \"1\"}");
    expect("a%3Db=%26%2B%25", "{\"a=b\": \"&+%\"}");
    expect("a=%2b%2B", "{\"a\": \"++\"}");
    expect("a=%C3%A9", "{\"a\": \"\\u00e9\"}");
    expect("a=%c3%a9", "{\"a\": \"\\u00e9\"}");
    expect("a=%E2%82%AC", "{\"a\": \"\\u20ac\"}");
    expect("a=%F0%9F%98%80", "{\"a\": \"\\ud83d\\ude00\"}");
    expect("a=%F4%8F%BF%BF", "{\"a\": \"\\udbff\\udfff\"}"); /* U+10FFFF, the last */
    expect("a=\xc3\xa9", "{\"a\": \"\\u00e9\"}");            /* raw UTF-8 too */
}

static void test_form_bad_escapes(void **state)
{
    (void)state;
    refuse("%4", "escape");
    refuse("a=%4", "escape");
    refuse("a=%", "escape");
    refuse("a=%zz", "escape");
    refuse("a=%g0", "escape");
    refuse("a=%0g", "escape");
    refuse("a=1&b=%4&c=2", "pair 2");
    refuse("a%=1", "escape");
}

static void test_form_bad_utf8(void **state)
{
    (void)state;
    refuse("a=%C3%28", "UTF-8");       /* bad continuation */
    refuse("a=%C0%AF", "UTF-8");       /* overlong '/' */
    refuse("a=%C1%BF", "UTF-8");       /* overlong */
    refuse("a=%E0%80%AF", "UTF-8");    /* overlong, 3 bytes */
    refuse("a=%F0%80%80%AF", "UTF-8"); /* overlong, 4 bytes */
    refuse("a=%ED%A0%80", "UTF-8");    /* surrogate U+D800 */
    refuse("a=%F4%90%80%80", "UTF-8"); /* U+110000 */
    refuse("a=%F5%80%80%80", "UTF-8"); /* lead byte past U+10FFFF */
    refuse("a=%E2%82", "UTF-8");       /* truncated */
    refuse("a=%80", "UTF-8");          /* lone continuation */
    refuse("a=%FF", "UTF-8");
    refuse("%C3%28=1", "UTF-8"); /* names are checked too */
    refuse("a=\xff", "UTF-8");   /* raw bytes too */
}

static void test_form_nul(void **state)
{
    (void)state;
    refuse("a=%00", "NUL");
    refuse("a%00b=1", "NUL");
    refuse_n("a=b\0c", 5, "NUL");
}

static void test_form_reason_never_echoes(void **state)
{
    (void)state;
    char err[128] = "";
    assert_null(form_parse("secret=%C0%AF", 13, err, sizeof(err)));
    assert_null(strstr(err, "secret"));
    assert_null(strstr(err, "%C0"));
    /* No reason buffer at all is fine. */
    assert_null(form_parse("a=%zz", 5, NULL, 0));
}

static void test_form_repeated(void **state)
{
    (void)state;
    expect("a=1&a=2", "{\"a\": \"2\"}");
    expect("a=1&b=x&a=3", "{\"a\": \"3\", \"b\": \"x\"}");
    /* Names that match case-insensitively: only the last pair remains. */
    expect("Description=x&description=y", "{\"description\": \"y\"}");
    expect("Description=x&description=y&DESCRIPTION=z", "{\"DESCRIPTION\": \"z\"}");
}

static void test_form_empty_and_no_equals(void **state)
{
    (void)state;
    expect("", "{}");
    expect("&", "{}");
    expect("&&&", "{}");
    expect("&a=1&&b=2&", "{\"a\": \"1\", \"b\": \"2\"}");
    expect("a", "{\"a\": \"\"}");
    expect("a=", "{\"a\": \"\"}");
    expect("a&b=1", "{\"a\": \"\", \"b\": \"1\"}");
}

/* A body of n pairs "k0=v&k1=v&...", each separated by sep. */
static char *many_pairs(size_t n, const char *sep)
{
    size_t cap = n * (16 + strlen(sep)) + 1, len = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    s[0] = '\0';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%sk%zu=v", i ? sep : "", i);
    return s;
}

static void test_form_pair_limit(void **state)
{
    (void)state;
    char err[128] = "";
    char *ok = many_pairs(FORM_MAX_PAIRS, "&&"); /* empty pairs do not count */
    char *big = many_pairs(FORM_MAX_PAIRS + 1, "&");
    json_t *j = form_parse(ok, strlen(ok), err, sizeof(err));
    assert_non_null(j);
    assert_int_equal(json_object_size(j), FORM_MAX_PAIRS);
    json_decref(j);
    assert_null(form_parse(big, strlen(big), err, sizeof(err)));
    assert_non_null(strstr(err, "256"));
    free(ok);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form_basic),       cmocka_unit_test(test_form_plus_and_percent),
        cmocka_unit_test(test_form_bad_escapes), cmocka_unit_test(test_form_bad_utf8),
        cmocka_unit_test(test_form_nul),         cmocka_unit_test(test_form_reason_never_echoes),
        cmocka_unit_test(test_form_repeated),    cmocka_unit_test(test_form_empty_and_no_equals),
        cmocka_unit_test(test_form_pair_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
