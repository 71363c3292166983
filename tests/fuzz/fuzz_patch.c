/*
 * fuzz_patch.c — JSON Patch (patch_apply) and JSON Merge Patch
 * (patch_merge) on arbitrary documents and patches.
 *
 * Input: a JSON document and a JSON patch separated by a NUL byte; without
 * a NUL, the whole input is the patch and the document a fixed BlobEntity
 * carrier. The patch is applied both as RFC 6902 operations and as an
 * RFC 7396 merge patch.
 *
 * Invariants beyond "no crash":
 *  - patch_apply is atomic: unless PATCH_OK the document is unchanged; on
 *    PATCH_OK an object stays an object; the operations are never changed;
 *    PATCH_EBAD comes with a reason;
 *  - patch_merge changes neither input and is idempotent:
 *    merge(merge(t, p), p) equals merge(t, p).
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "api/patch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char carrier[] =
    "{\"BlobId\": 12, \"Description\": \"Front view\", \"ExtraInfo\": \"\", \"MimeType\":"
    " \"image/png\", \"CreatedBy\": {\"AssociateId\": 1, \"Name\": \"admin\"}, \"UpdatedBy\": null,"
    " \"ConceptualType\": \"PHOTO\","
    " \"FieldProperties\": {\"Description\": {\"FieldLength\": 2047}},"
    " \"Tags\": [\"a\", \"b\"]}";

static json_t *load(const char *p, size_t n)
{
    return json_loadb(p, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
}

static void check_apply(const json_t *doc, const json_t *ops)
{
    json_t *d = json_deep_copy(doc), *o = json_deep_copy(ops);
    char err[256] = "";
    patch_status st = patch_apply(d, o, err, sizeof(err));
    assert(st == PATCH_OK || st == PATCH_EBAD || st == PATCH_EOP || st == PATCH_ETEST);
    assert(json_equal(o, ops));
    if (st == PATCH_OK)
        assert(json_is_object(d));
    else
        assert(json_equal(d, doc) && (st != PATCH_EBAD || err[0] != '\0'));
    json_decref(d);
    json_decref(o);
}

static void check_merge(const json_t *doc, const json_t *patch)
{
    json_t *t = json_deep_copy(doc), *p = json_deep_copy(patch);
    json_t *once = patch_merge(t, p);
    assert(once != NULL && json_equal(t, doc) && json_equal(p, patch));
    json_t *twice = patch_merge(once, p);
    assert(twice != NULL && json_equal(once, twice));
    json_decref(twice);
    json_decref(once);
    json_decref(t);
    json_decref(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nul = memchr(text, '\0', size);
    json_t *doc = nul != NULL ? load(text, (size_t)(nul - text)) : json_loads(carrier, 0, NULL);
    json_t *patch = nul != NULL ? load(nul + 1, size - (size_t)(nul + 1 - text)) : load(text, size);
    if (doc != NULL && patch != NULL) {
        if (json_is_object(doc)) /* crmblob only patches carriers */
            check_apply(doc, patch);
        check_merge(doc, patch);
    }
    json_decref(doc);
    json_decref(patch);
    return 0;
}
