/*
 * manifest.c — reading what an import (`crmblob import`, the import job) is given: a line of an
 * export's manifest.jsonl, and a file name {id}.{ext} (bulk.h). No state:
 * its fuzz target is tests/fuzz/fuzz_import_manifest.c.
 *
 * Invariants: a line is read by jansson as it is (any bytes; a line longer
 * than BULK_MANIFEST_LINE_MAX is refused unread); what it names is checked
 * before it is used: a known entity kind, an id in 1..INT32_MAX, a File
 * inside the export (relative, no "..", no empty or "." part).
 */
#include <string.h>

#include "bulk/bulk.h"
#include "core/text.h"

/* The id as written in decimal, without a leading zero: "06.jpg" and
 * "6.jpg" would both name entity 6, and which one wins would depend on
 * the order the threads took them. */
bool bulk_id_of_name(const char *name, int32_t *id)
{
    const char *dot = strchr(name, '.');
    return dot != NULL && dot > name && name[0] != '0' && dot[1] != '\0' &&
           strchr(dot + 1, '.') == NULL && text_parse_pos_i32(name, (size_t)(dot - name), id) &&
           *id > 0;
}

/* A path relative to the export, each part a plain name. */
static bool inside(const char *file)
{
    size_t n = strlen(file);
    if (n == 0 || file[0] == '/' || file[n - 1] == '/')
        return false;
    for (const char *p = file; *p; p = strchr(p, '/') ? strchr(p, '/') + 1 : p + strlen(p)) {
        size_t len = strcspn(p, "/");
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return false;
    }
    return strlen(file) < BULK_MANIFEST_FILE_MAX;
}

static const char *str_of(json_t *o, const char *name)
{
    return json_string_value(json_object_get(o, name));
}

/* The record's client fields and file, once its role and entity are known. */
static bulk_manifest_kind image_of(json_t *o, bulk_manifest_rec *r, const char **why)
{
    r->file = str_of(o, "File");
    if (r->file == NULL)
        return BULK_MANIFEST_SKIP; /* no bytes, or the export could not read them */
    if (!inside(r->file)) {
        *why = "its File is not a name inside the export";
        return BULK_MANIFEST_BAD;
    }
    r->sha256 = str_of(o, "Sha256");
    r->desc = str_of(o, "Description");
    r->extra = str_of(o, "ExtraInfo");
    r->ct = str_of(o, "ConceptualType");
    return BULK_MANIFEST_IMAGE;
}

bulk_manifest_kind bulk_manifest_parse(const char *line, size_t len, json_t **hold,
                                       bulk_manifest_rec *r, const char **why)
{
    json_error_t err;
    *hold = NULL;
    *r = (bulk_manifest_rec){0};
    *why = "not a JSON object";
    if (len > BULK_MANIFEST_LINE_MAX) {
        *why = "longer than a record's line can be";
        return BULK_MANIFEST_BAD;
    }
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(o)) {
        json_decref(o);
        return BULK_MANIFEST_BAD;
    }
    *hold = o;
    const char *role = str_of(o, "Role"), *ent = str_of(o, "Entity");
    json_t *idv = json_object_get(o, "EntityId");
    json_int_t id = json_integer_value(idv);
    if (role != NULL && strcmp(role, "library") == 0) {
        bulk_manifest_kind lk = image_of(o, r, why);
        return lk == BULK_MANIFEST_IMAGE ? BULK_MANIFEST_LIBRARY : lk;
    }
    if (role != NULL && strcmp(role, "image") != 0)
        return BULK_MANIFEST_SKIP; /* a thumbnail or an unlinked record */
    int k = ent != NULL ? model_kind_from_name(ent, strlen(ent)) : -1;
    if (role == NULL || k < 0 || !json_is_integer(idv) || id <= 0 || id > INT32_MAX) {
        *why = "not a record of an entity's image (Role, Entity, EntityId)";
        return BULK_MANIFEST_BAD;
    }
    r->kind = (model_kind)k;
    r->id = (int32_t)id;
    return image_of(o, r, why);
}
