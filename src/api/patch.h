/*
 * patch.h — JSON Patch (RFC 6902) and JSON Merge Patch (RFC 7396) applied
 * to request carriers (SPEC §4).
 *
 * Both are lenient about names the way every crmblob request body is:
 * member names (in the patch operations, in paths and in merge patches)
 * match existing members case-insensitively, and an existing member keeps
 * its spelling when its value is replaced. A JSON Patch path may omit the
 * leading '/' ("Description" ≡ "/Description"). Of RFC 6902 only add,
 * replace, remove and test are supported.
 */
#ifndef CB_PATCH_H
#define CB_PATCH_H

#include <stddef.h>

#include <jansson.h>

typedef enum {
    PATCH_OK,
    PATCH_EBAD,  /* malformed patch, or a path that does not apply: 400 */
    PATCH_EOP,   /* move, copy or an unknown op: 400 naming the op */
    PATCH_ETEST, /* a test op failed: 409 */
} patch_status;

/*
 * Applies the RFC 6902 patch ops (an array of operation objects) to the
 * object doc, in place and atomically: unless PATCH_OK is returned, doc is
 * left exactly as it was. The whole patch is checked for form (ops known,
 * "op"/"path"/"value" present, ~ escapes valid) before anything is applied.
 * The path "" is the document itself: add/replace then need an object
 * value, remove is refused. A test of a path that does not exist fails.
 *
 * err (may be NULL when err_cap is 0) receives, for
 *   PATCH_EBAD:  a short English reason ("operation 2: ...");
 *   PATCH_EOP:   the op name as sent (for "JSON Patch operation {0} ...");
 *   PATCH_ETEST: the path as sent (for "JSON Patch test failed at {0}").
 */
patch_status patch_apply(json_t *doc, const json_t *ops, char *err, size_t err_cap);

/*
 * RFC 7396: a new value, target with patch merged into it (neither is
 * changed; target may be NULL, meaning absent). A non-object patch is the
 * result itself; otherwise a null member removes every member of that name
 * and any other value is merged into the member of that name. NULL only
 * when out of memory.
 */
json_t *patch_merge(const json_t *target, const json_t *patch);

#endif
