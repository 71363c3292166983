/*
 * carrier.c — the wire carriers as JSON: BlobEntity with its Associates,
 * TableRight and FieldProperties (SPEC §3, §5), the minimal entity
 * carriers (SPEC §1), and strict reading of request bodies.
 *
 * Field order in answers follows the reference carriers. Request member
 * names match case-insensitively (the official TypeScript client sends
 * camelCase).
 */
#include <string.h>
#include <strings.h>

#include "api/api_int.h"
#include "core/text.h"

/* The BlobEntity fields, in carrier order, with their FieldProperties. */
typedef struct {
    const char *name;
    const char *type;
    int length;
    bool client; /* written by the client */
} blob_field;

static const blob_field blob_fields[] = {
    {"BlobId", "System.Int32", 0, false},
    {"BlobSize", "System.Int32", 0, false},
    {"Description", "System.String", MODEL_STRING_MAX, true},
    {"ExtraInfo", "System.String", MODEL_STRING_MAX, true},
    {"IsEncrypted", "System.Boolean", 0, false},
    {"IsZipped", "System.Boolean", 0, false},
    {"MimeType", "System.String", MODEL_STRING_MAX, false},
    {"OriginalSize", "System.Int32", 0, false},
    {"CreatedDate", "System.DateTime", 0, false},
    {"UpdatedDate", "System.DateTime", 0, false},
    {"CreatedBy", "SuperOffice.CRM.Services.Associate", 0, false},
    {"UpdatedBy", "SuperOffice.CRM.Services.Associate", 0, false},
    {"ConceptualType", "System.String", MODEL_STRING_MAX, true},
};

static json_t *right(const char *mask)
{
    return json_pack("{s:s, s:s}", "Mask", mask, "Reason", "");
}

static json_t *field_properties(model_role caller)
{
    json_t *fp = json_object();
    for (size_t i = 0; i < sizeof(blob_fields) / sizeof(blob_fields[0]); i++) {
        const blob_field *f = &blob_fields[i];
        bool may = f->client && caller >= MODEL_ROLE_EDITOR;
        json_object_set_new(fp, f->name,
                            json_pack("{s:o, s:s, s:i}", "FieldRight", right(may ? "Update" : "Read"),
                                      "FieldType", f->type, "FieldLength", f->length));
    }
    return fp;
}

static json_t *associate(const model_user *u)
{
    if (u == NULL)
        return json_null();
    const char *full = u->full_name && *u->full_name ? u->full_name : u->name;
    json_t *j = json_object();
    json_object_set_new(j, "AssociateId", json_integer(u->id));
    json_object_set_new(j, "Name", json_string(u->name));
    json_object_set_new(j, "PersonId", json_integer(0));
    json_object_set_new(j, "Rank", json_integer(0));
    json_object_set_new(j, "Tooltip", json_string(full));
    json_object_set_new(j, "Type", json_string(u->id == 0 ? "SystemAssociate" : "InternalAssociate"));
    json_object_set_new(j, "GroupIdx", json_integer(0));
    json_object_set_new(j, "FullName", json_string(full));
    json_object_set_new(j, "FormalName", json_string(full));
    json_object_set_new(j, "Deleted", json_boolean(u->disabled));
    json_object_set_new(j, "EjUserId", json_integer(0));
    json_object_set_new(j, "UserName", json_string(u->name));
    return j;
}

static json_t *date(int64_t ms)
{
    char out[TEXT_DATE_MAX];
    text_format_date(ms, out);
    return json_string(out);
}

json_t *carrier_blob(const model_blob *b, model_role caller)
{
    json_t *j = json_object();
    json_object_set_new(j, "BlobId", json_integer(b->blob_id));
    json_object_set_new(j, "BlobSize", json_integer(b->blob_size));
    json_object_set_new(j, "Description", json_string(b->description));
    json_object_set_new(j, "ExtraInfo", json_string(b->extra_info));
    json_object_set_new(j, "IsEncrypted", json_boolean(b->is_encrypted));
    json_object_set_new(j, "IsZipped", json_boolean(b->is_zipped));
    json_object_set_new(j, "MimeType", json_string(b->mime_type));
    json_object_set_new(j, "OriginalSize", json_integer(b->original_size));
    json_object_set_new(j, "CreatedDate", date(b->created_ms));
    json_object_set_new(j, "UpdatedDate", date(b->updated_ms));
    json_object_set_new(j, "CreatedBy", associate(b->created_by));
    json_object_set_new(j, "UpdatedBy", associate(b->updated_by));
    json_object_set_new(j, "ConceptualType", json_string(b->conceptual_type));
    json_object_set_new(j, "TableRight", right(caller >= MODEL_ROLE_EDITOR ? "FULL" : "Select"));
    json_object_set_new(j, "FieldProperties", field_properties(caller));
    return j;
}

json_t *carrier_entity(const model_entity_t *e)
{
    const model_entity_def *def = model_entity(e->kind);
    json_t *j = json_object();
    json_object_set_new(j, def->id_field, json_integer(e->id));
    for (int i = 0; i < def->nfields; i++) {
        const model_field *f = &def->fields[i];
        json_object_set_new(j, f->name, f->type == MODEL_FT_STRING ? json_string(e->v[i].s)
                                                                   : json_integer(e->v[i].i));
    }
    return j;
}

json_t *carrier_get(json_t *obj, const char *name)
{
    const char *key;
    json_t *value, *found = NULL;
    json_object_foreach(obj, key, value)
    {
        if (strcasecmp(key, name) == 0)
            found = value; /* the last spelling wins, as with repeated keys */
    }
    return found;
}

json_t *carrier_parse_body(api_exchange *x)
{
    json_error_t err;
    const char *text = buf_str(&x->body);
    size_t n = x->body.len;
    while (n > 0 && strchr(" \t\r\n", text[n - 1]))
        n--;
    if (n == 0) {
        API_FAIL0(x, CB_EBADREQ, MSG_ENTITY_MISSING);
        return NULL;
    }
    json_t *j = json_loadb(text, x->body.len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (j == NULL) {
        API_FAIL(x, CB_EBADREQ, MSG_BAD_JSON, MSG_N(err.line), MSG_N(err.column),
                 MSG_S(arena_strdup(x->arena, err.text)));
        return NULL;
    }
    if (json_is_null(j))
        API_FAIL0(x, CB_EBADREQ, MSG_ENTITY_MISSING);
    else if (!json_is_object(j))
        API_FAIL0(x, CB_EBADREQ, MSG_JSON_NOT_OBJECT);
    else
        return j;
    json_decref(j);
    return NULL;
}

bool carrier_string(api_exchange *x, json_t *obj, const char *name, const char **out)
{
    json_t *v = carrier_get(obj, name);
    *out = NULL;
    if (v == NULL)
        return true;
    if (json_is_null(v)) {
        *out = "";
        return true;
    }
    if (!json_is_string(v)) {
        API_FAIL(x, CB_EBADREQ, MSG_FIELD_TYPE, MSG_S(name), MSG_S("a string"));
        return false;
    }
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v)) {
        API_FAIL(x, CB_EBADREQ, MSG_FIELD_TYPE, MSG_S(name), MSG_S("a string without NUL"));
        return false;
    }
    if (text_utf8_len(s) > MODEL_STRING_MAX) {
        API_FAIL(x, CB_EBADREQ, MSG_FIELD_TOO_LONG, MSG_S(name), MSG_N(MODEL_STRING_MAX));
        return false;
    }
    *out = arena_strdup(x->arena, s);
    return true;
}

bool carrier_int(api_exchange *x, json_t *obj, const char *name, bool *present, int32_t *out)
{
    json_t *v = carrier_get(obj, name);
    *present = v != NULL && !json_is_null(v);
    if (!*present)
        return true;
    json_int_t i = json_is_integer(v) ? json_integer_value(v) : -1;
    if (!json_is_integer(v) || i < 0 || i > INT32_MAX) {
        API_FAIL(x, CB_EBADREQ, MSG_FIELD_TYPE, MSG_S(name),
                 MSG_S("a non-negative 32-bit integer"));
        return false;
    }
    *out = (int32_t)i;
    return true;
}
