/*
 * fuzz_import_manifest.c — what `crmblob import` reads from its directory
 * (src/bulk/manifest.c): a manifest.jsonl line (bulk_manifest_parse) and a
 * file name {id}.{ext} (bulk_id_of_name).
 *
 * Input: the line (any bytes); up to its first NUL, also the file name.
 *
 * Invariants beyond "no crash":
 *  - an IMAGE names a known kind, an id in 1..INT32_MAX and a File that
 *    stays inside the export: relative, no empty, "." or ".." part;
 *  - a name bulk_id_of_name accepts is digits, one dot and a non-empty
 *    extension, and its id printed back is its first part.
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulk/bulk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_file(const char *f)
{
    assert(f[0] != '\0' && f[0] != '/' && strlen(f) < BULK_MANIFEST_FILE_MAX);
    char *copy = strdup(f), *save = NULL;
    assert(copy != NULL);
    for (char *p = strtok_r(copy, "/", &save); p != NULL; p = strtok_r(NULL, "/", &save))
        assert(strcmp(p, ".") != 0 && strcmp(p, "..") != 0);
    assert(strstr(f, "//") == NULL && f[strlen(f) - 1] != '/');
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *hold = NULL;
    bulk_manifest_rec r;
    const char *why = NULL;
    bulk_manifest_kind k = bulk_manifest_parse((const char *)data, size, &hold, &r, &why);
    if (k == BULK_MANIFEST_IMAGE) {
        assert(r.kind >= 0 && r.kind < MODEL_KIND_COUNT && r.id > 0);
        check_file(r.file);
    } else if (k == BULK_MANIFEST_LIBRARY)
        check_file(r.file);
    else if (k == BULK_MANIFEST_BAD)
        assert(why != NULL);
    json_decref(hold);

    char *name = strndup((const char *)data, size);
    int32_t id;
    if (name != NULL && bulk_id_of_name(name, &id)) {
        char back[16];
        const char *dot = strchr(name, '.');
        snprintf(back, sizeof(back), "%d", id);
        assert(id > 0 && dot != NULL && dot[1] != '\0' && strchr(dot + 1, '.') == NULL);
        assert(strlen(back) == (size_t)(dot - name) && memcmp(back, name, strlen(back)) == 0);
    }
    free(name);
    return 0;
}
