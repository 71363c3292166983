/*
 * fuzz_carrier.c — every carrier body parser as crmblob uses it:
 * carrier_read() over JSON, XML, form, JSON Patch and merge patch bodies
 * (the patches applied to a fixed "current" BlobEntity carrier), then
 * carrier_string()/carrier_int() on the fields the handlers read.
 *
 * Input: byte 0 chooses the body representation (% 5), the answer type
 * (/ 5 % 4: JSON or XML errors) and the language of error messages
 * (/ 20 % 6); the rest is the request body.
 *
 * Invariants beyond "no crash":
 *  - carrier_read gives an object and no answer, or NULL and an answer of
 *    400 or 409 (a patch test that failed) — never 500 (the corpus keeps
 *    the bodies whose error text once was not UTF-8 and made one);
 *  - an error answer is well formed in its type: JSON with "Error": true,
 *    or XML that xml_parse reads back with an ErrorMessage;
 *  - the "current" carrier is never modified;
 *  - carrier_string either fails with 400 or gives a NUL-free string of
 *    at most MODEL_STRING_MAX characters; carrier_int fails with 400 or
 *    gives a value in 0..INT32_MAX.
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/xml.h"
#include "core/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The carrier a PUT ImageInfo would patch, as carrier_blob writes it. */
static const char current_text[] =
    "{\"BlobId\": 12, \"BlobSize\": 4711, \"Description\": \"Front view\", \"ExtraInfo\": \"\","
    " \"IsEncrypted\": false, \"IsZipped\": false, \"MimeType\": \"image/png\","
    " \"OriginalSize\": 4711, \"CreatedDate\": \"2026-11-23T09:14:05Z\","
    " \"UpdatedDate\": \"2026-11-23T09:14:05.123Z\", \"CreatedBy\": {\"AssociateId\": 1,"
    " \"Name\": \"admin\", \"PersonId\": 0, \"Rank\": 0, \"Tooltip\": \"Admin\","
    " \"Type\": \"InternalAssociate\", \"GroupIdx\": 0, \"FullName\": \"Admin\","
    " \"FormalName\": \"Admin\", \"Deleted\": false, \"EjUserId\": 0, \"UserName\": \"admin\"},"
    " \"UpdatedBy\": null, \"ConceptualType\": \"PHOTO\","
    " \"TableRight\": {\"Mask\": \"FULL\", \"Reason\": \"\"},"
    " \"FieldProperties\": {\"Description\": {\"FieldRight\": {\"Mask\": \"Update\","
    " \"Reason\": \"\"}, \"FieldType\": \"System.String\", \"FieldLength\": 2047}}}";

static json_t *current, *pristine;

static const char *const string_fields[] = {"Description", "ExtraInfo", "ConceptualType",
                                            "MimeType"};
static const char *const int_fields[] = {"BlobId", "BlobSize", "OriginalSize"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    current = json_loads(current_text, 0, NULL);
    pristine = json_deep_copy(current);
    assert(current != NULL && pristine != NULL);
    return 0;
}

/* The error answer parses in its own type and carries a message. */
static void check_error_answer(const api_exchange *x)
{
    const char *body = x->resp.body;
    size_t len = x->resp.body_len;
    json_t *j;
    if (repr_answer_is_xml(x)) {
        char root[32];
        j = xml_parse(body, len, root, sizeof(root), NULL, 0, NULL);
        assert(j != NULL && strcmp(root, "Error") == 0);
    } else {
        j = json_loadb(body, len, 0, NULL);
        assert(j != NULL && json_is_true(json_object_get(j, "Error")));
    }
    assert(json_is_string(json_object_get(j, "ErrorMessage")));
    json_decref(j);
}

/* Reads the fields as the ImageInfo handlers do, stopping at the first
 * refusal (which must be a 400). */
static void read_fields(api_exchange *x, json_t *obj)
{
    for (size_t i = 0; i < sizeof(string_fields) / sizeof(string_fields[0]); i++) {
        const char *s = NULL;
        if (!carrier_string(x, obj, string_fields[i], &s)) {
            assert(x->answered && x->resp.status == 400);
            return;
        }
        assert(!x->answered);
        if (s != NULL)
            assert(text_utf8_len(s) <= MODEL_STRING_MAX);
    }
    for (size_t i = 0; i < sizeof(int_fields) / sizeof(int_fields[0]); i++) {
        bool present = false;
        int32_t v = -1;
        if (!carrier_int(x, obj, int_fields[i], &present, &v)) {
            assert(x->answered && x->resp.status == 400);
            return;
        }
        assert(!x->answered && v >= 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    api_t api;
    api_exchange x;
    memset(&api, 0, sizeof(api));
    memset(&x, 0, sizeof(x));
    x.api = &api;
    x.arena = arena_create();
    x.method = "PUT";
    x.path = "/api/v1/Person/1/ImageInfo";
    x.body_repr = (repr_body)(data[0] % 5);
    x.answer_type = data[0] / 5 % 4;
    x.locale.lang = x.locale.culture = (msg_lang)(data[0] / 20 % MSG_LANG__COUNT);
    buf_init(&x.body, 64 * 1024);
    if (buf_append(&x.body, data + 1, size - 1) != CB_EOK)
        goto out; /* larger than crmblob takes */

    json_t *j = carrier_read(&x, current);
    if (j == NULL) {
        /* 415: JSON or XML sent as a form (issue 19's refusal of curl -d) */
        assert(x.answered &&
               (x.resp.status == 400 || x.resp.status == 409 || x.resp.status == 415));
        check_error_answer(&x);
    } else {
        assert(!x.answered && json_is_object(j));
        read_fields(&x, j);
        if (x.answered)
            check_error_answer(&x);
        json_decref(j);
    }
    assert(json_equal(current, pristine));
out:
    if (x.resp.owner.release != NULL)
        x.resp.owner.release(x.resp.owner.cls);
    buf_free(&x.body);
    arena_destroy(x.arena);
    return 0;
}
