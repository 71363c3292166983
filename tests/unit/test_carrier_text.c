/*
 * test_carrier_text.c — the directly written BlobEntity JSON
 * (carrier_blob_text) is byte for byte what jansson writes for
 * carrier_blob, for every role, time-zone setting and awkward string;
 * and an answer that outgrows its cap is refused whole, never cut.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/api_int.h"

static void assert_same(const api_exchange *x, const model_blob *b)
{
    json_t *j = carrier_blob(x, b);
    char *want = json_dumps(j, JSON_COMPACT);
    size_t len = 0;
    char *got = carrier_blob_text(x, b, &len);
    assert_non_null(want);
    assert_non_null(got);
    assert_int_equal(len, strlen(want));
    assert_string_equal(got, want);
    free(got);
    free(want);
    json_decref(j);
}

static model_blob sample(model_user *creator, model_user *updater)
{
    model_blob b = {.blob_id = 167,
                    .blob_size = 2048,
                    .original_size = 4096,
                    .is_encrypted = true,
                    .is_zipped = false,
                    .description = "quote \" backslash \\ slash / tab\tnl\ncr\r\b\f\x01\x1f end",
                    .extra_info = "æøå – 日本 😀 \x7f",
                    .mime_type = "image/png",
                    .conceptual_type = "PERSONPHOTO",
                    .created_ms = 1763889245120,
                    .updated_ms = 1763889299000,
                    .created_by = creator,
                    .updated_by = updater};
    return b;
}

static void test_every_role(void **state)
{
    (void)state;
    model_user ada = {.id = 3, .name = "ada", .full_name = "Ada \"the\" Lovelace"};
    model_user sys = {.id = 0, .name = "crmblob", .full_name = "", .disabled = true};
    model_blob b = sample(&ada, &sys);
    for (int r = MODEL_ROLE_VIEWER; r <= MODEL_ROLE_ADMIN; r++) {
        api_exchange x = {.user = {.role = (model_role)r}};
        assert_same(&x, &b);
    }
}

static void test_empty_carrier_and_nulls(void **state)
{
    (void)state;
    model_blob b;
    model_blob_empty(&b);
    api_exchange x = {.user = {.role = MODEL_ROLE_EDITOR}};
    assert_same(&x, &b);
}

static void test_time_zone_offsets(void **state)
{
    (void)state;
    assert_int_equal(tz_init(NULL), CB_EOK);
    const tz_zone *zone = NULL;
    bool offset = false;
    assert_true(tz_parse_header("NO, includeTZOffset", &zone, &offset));
    model_user ada = {.id = 3, .name = "ada", .full_name = "Ada"};
    model_blob b = sample(&ada, &ada);
    api_exchange x = {.user = {.role = MODEL_ROLE_ADMIN}, .tz = zone, .tz_offset = offset};
    assert_same(&x, &b);
}

/* One user who both made and last changed the record: written once and
 * copied, the same text as two separate users'. */
static void test_one_user_twice(void **state)
{
    (void)state;
    model_user ada = {.id = 3, .name = "ada", .full_name = "Ada\tL.", .disabled = true};
    model_user twin = ada;
    api_exchange x = {.user = {.role = MODEL_ROLE_EDITOR}};
    model_blob same = sample(&ada, &ada), apart = sample(&ada, &twin);
    assert_same(&x, &same);
    size_t n1 = 0, n2 = 0;
    char *t1 = carrier_blob_text(&x, &same, &n1), *t2 = carrier_blob_text(&x, &apart, &n2);
    assert_int_equal(n1, n2);
    assert_string_equal(t1, t2);
    free(t1);
    free(t2);
    ada.name = "bad \xc3\x28 name";
    assert_null(carrier_blob_text(&x, &same, &n1));
}

static void test_invalid_utf8_falls_back(void **state)
{
    (void)state;
    model_blob b;
    model_blob_empty(&b);
    b.description = "bad \xc3\x28 byte";
    api_exchange x = {.user = {.role = MODEL_ROLE_EDITOR}};
    size_t len = 0;
    assert_null(carrier_blob_text(&x, &b, &len));
}

/* One user who made and changed the record, with a name long enough that
 * copying the first Associate grows the buffer (the copy's source moves). */
static void test_long_user_copied(void **state)
{
    (void)state;
    char *full = malloc(8001);
    assert_non_null(full);
    memset(full, 'n', 8000);
    full[8000] = '\0';
    model_user ada = {.id = 3, .name = "ada", .full_name = full};
    model_blob b = sample(&ada, &ada);
    api_exchange x = {.user = {.role = MODEL_ROLE_ADMIN}};
    assert_same(&x, &b);
    free(full);
}

/* A description that brings the answer to CARRIER_TEXT_MAX, for every
 * length that makes an append fail somewhere after it (in every later
 * member, the users, the role's tail): the answer is either refused (NULL)
 * or whole, never JSON with a hole where the failed append was. */
static void test_cap_refuses_whole(void **state)
{
    (void)state;
    model_user ada = {.id = 3, .name = "ada", .full_name = "Ada \"the\" Lovelace"};
    model_user sys = {.id = 0, .name = "crmblob", .full_name = ""};
    model_blob b = sample(&ada, &sys);
    api_exchange x = {.user = {.role = MODEL_ROLE_ADMIN}};
    b.description = "";
    size_t rest = 0;
    free(carrier_blob_text(&x, &b, &rest)); /* the answer around an empty description */
    assert_true(rest > 100 && rest < CARRIER_TEXT_MAX);
    char *desc = malloc(CARRIER_TEXT_MAX + 1);
    assert_non_null(desc);
    memset(desc, 'd', CARRIER_TEXT_MAX);
    b.description = desc;
    size_t whole = 0, refused = 0;
    for (size_t n = CARRIER_TEXT_MAX - rest - 8; n <= CARRIER_TEXT_MAX - 8; n++) {
        desc[n] = '\0';
        size_t len = 0;
        char *got = carrier_blob_text(&x, &b, &len);
        if (got == NULL) {
            refused++;
        } else {
            json_t *j = json_loadb(got, len, 0, NULL);
            assert_non_null(j); /* well-formed */
            assert_int_equal(strlen(json_string_value(json_object_get(j, "Description"))), n);
            assert_int_equal(len, rest + n); /* and all of it */
            json_decref(j);
            whole++;
        }
        free(got);
        desc[n] = 'd';
    }
    assert_int_equal(whole, 9);           /* n + rest <= CARRIER_TEXT_MAX */
    assert_int_equal(refused, rest - 8);  /* every other */
    desc[CARRIER_TEXT_MAX - rest] = '\0'; /* the largest that fits: as jansson writes it */
    assert_same(&x, &b);
    free(desc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_role),
        cmocka_unit_test(test_empty_carrier_and_nulls),
        cmocka_unit_test(test_time_zone_offsets),
        cmocka_unit_test(test_one_user_twice),
        cmocka_unit_test(test_invalid_utf8_falls_back),
        cmocka_unit_test(test_long_user_copied),
        cmocka_unit_test(test_cap_refuses_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
