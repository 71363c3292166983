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
#include "api/form.h"
#include "api/patch.h"
#include "api/xml.h"
#include "core/text.h"
#include "core/tz.h"

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

json_t *carrier_associate(const model_user *u)
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

/* UTC (SPEC §3), or the SO-TimeZone's local time with its offset when the
 * caller asked for includeTZOffset. */
static json_t *date(const api_exchange *x, int64_t ms)
{
    char out[TEXT_DATE_MAX];
    if (x->tz != NULL && x->tz_offset && ms != INT64_MIN)
        tz_format_date(ms, tz_offset_minutes(x->tz, ms), out);
    else
        text_format_date(ms, out);
    return json_string(out);
}

json_t *carrier_blob(const api_exchange *x, const model_blob *b)
{
    model_role caller = x->user.role;
    json_t *j = json_object();
    json_object_set_new(j, "BlobId", json_integer(b->blob_id));
    json_object_set_new(j, "BlobSize", json_integer(b->blob_size));
    json_object_set_new(j, "Description", json_string(b->description));
    json_object_set_new(j, "ExtraInfo", json_string(b->extra_info));
    json_object_set_new(j, "IsEncrypted", json_boolean(b->is_encrypted));
    json_object_set_new(j, "IsZipped", json_boolean(b->is_zipped));
    json_object_set_new(j, "MimeType", json_string(b->mime_type));
    json_object_set_new(j, "OriginalSize", json_integer(b->original_size));
    json_object_set_new(j, "CreatedDate", date(x, b->created_ms));
    json_object_set_new(j, "UpdatedDate", date(x, b->updated_ms));
    json_object_set_new(j, "CreatedBy", carrier_associate(b->created_by));
    json_object_set_new(j, "UpdatedBy", carrier_associate(b->updated_by));
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

/* A body that is empty or only white space. */
static bool body_blank(const api_exchange *x)
{
    for (size_t i = 0; i < x->body.len; i++)
        if (!strchr(" \t\r\n", x->body.data[i]))
            return false;
    return true;
}

static json_t *read_json(api_exchange *x)
{
    json_error_t err;
    json_t *j = json_loadb(buf_str(&x->body), x->body.len,
                           JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (j == NULL)
        API_FAIL(x, CB_EBADREQ, MSG_BAD_JSON, MSG_ID(err.line), MSG_ID(err.column),
                 MSG_S(arena_strdup(x->arena, err.text)));
    return j;
}

static json_t *read_xml(api_exchange *x)
{
    char err[256];
    int line = 0;
    json_t *j = xml_parse(buf_str(&x->body), x->body.len, NULL, 0, err, sizeof(err), &line);
    if (j == NULL && line == XML_LINE_REFUSED)
        API_FAIL0(x, CB_EBADREQ, MSG_XML_DTD);
    else if (j == NULL)
        API_FAIL(x, CB_EBADREQ, MSG_BAD_XML, MSG_ID(line), MSG_S(arena_strdup(x->arena, err)));
    x->loose_numbers = true;
    return j;
}

/* A form body that is plainly JSON or XML (its first byte past white
 * space opens an object, an array or an element: no form field name does)
 * was sent with the wrong Content-Type, typically curl's -d default. Read
 * as a form it would be one unknown field, silently an empty change: it is
 * refused (415), saying what was read and what to send. */
static bool form_holds_other(api_exchange *x)
{
    size_t i = 0;
    while (i < x->body.len && x->body.data[i] != '\0' &&
           strchr(" \t\r\n", x->body.data[i]) != NULL)
        i++;
    char c = i < x->body.len ? x->body.data[i] : '\0';
    if (c != '{' && c != '[' && c != '<')
        return false;
    bool xml = c == '<';
    API_FAIL(x, CB_EUNSUPPORTED, MSG_FORM_HOLDS_OTHER, MSG_S("application/x-www-form-urlencoded"),
             MSG_S(xml ? "XML" : "JSON"), MSG_S(xml ? "application/xml" : "application/json"));
    return true;
}

static json_t *read_form(api_exchange *x)
{
    char err[256];
    if (form_holds_other(x))
        return NULL;
    json_t *j = form_parse(buf_str(&x->body), x->body.len, err, sizeof(err));
    if (j == NULL)
        API_FAIL(x, CB_EBADREQ, MSG_BAD_FORM, MSG_S(arena_strdup(x->arena, err)));
    x->loose_numbers = true;
    return j;
}

/* RFC 6902 on a copy of the current carrier. */
static json_t *read_patch(api_exchange *x, json_t *current)
{
    char err[256];
    json_t *ops = read_json(x), *doc = NULL;
    if (ops == NULL)
        return NULL;
    doc = json_deep_copy(current);
    switch (patch_apply(doc, ops, err, sizeof(err))) {
    case PATCH_OK: break;
    case PATCH_EOP:
        API_FAIL(x, CB_EBADREQ, MSG_PATCH_OP_UNSUPPORTED, MSG_S(arena_strdup(x->arena, err)));
        break;
    case PATCH_ETEST:
        API_FAIL(x, CB_ECONFLICT, MSG_PATCH_TEST_FAILED, MSG_S(arena_strdup(x->arena, err)));
        break;
    default: API_FAIL(x, CB_EBADREQ, MSG_BAD_PATCH, MSG_S(arena_strdup(x->arena, err))); break;
    }
    json_decref(ops);
    if (x->answered) {
        json_decref(doc);
        return NULL;
    }
    x->absent_is_empty = true;
    return doc;
}

/* RFC 7396 merged into the current carrier. */
static json_t *read_merge(api_exchange *x, json_t *current)
{
    json_t *patch = read_json(x);
    if (patch == NULL)
        return NULL;
    json_t *doc = patch_merge(current, patch);
    json_decref(patch);
    x->absent_is_empty = true;
    return doc;
}

json_t *carrier_read(api_exchange *x, json_t *current)
{
    json_t *j = NULL;
    if (body_blank(x)) {
        API_FAIL0(x, CB_EBADREQ, MSG_ENTITY_MISSING);
        return NULL;
    }
    switch (x->body_repr) {
    case REPR_XML: j = read_xml(x); break;
    case REPR_FORM: j = read_form(x); break;
    case REPR_PATCH: j = read_patch(x, current); break;
    case REPR_MERGE: j = read_merge(x, current); break;
    default: j = read_json(x); break;
    }
    if (j == NULL || json_is_object(j))
        return j;
    if (json_is_null(j))
        API_FAIL0(x, CB_EBADREQ, MSG_ENTITY_MISSING);
    else
        API_FAIL0(x, CB_EBADREQ, MSG_JSON_NOT_OBJECT);
    json_decref(j);
    return NULL;
}

/* The member of j named name[0..n) in any case, or NULL. */
static const char *member_named(json_t *j, const char *name, size_t n)
{
    const char *key;
    json_t *value;
    json_object_foreach(j, key, value)
    {
        if (text_ieq(name, n, key))
            return key;
    }
    return NULL;
}

/* Marks in `keep` (a set of member names) each name of the list; false
 * answered 400 at the first unknown one. */
static bool select_names(api_exchange *x, json_t *j, const char *list, json_t *keep)
{
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *name = p;
        size_t len = n;
        while (len > 0 && *name == ' ')
            name++, len--;
        while (len > 0 && name[len - 1] == ' ')
            len--;
        const char *key = len > 0 ? member_named(j, name, len) : "";
        if (key == NULL) {
            API_FAIL(x, CB_EBADREQ, MSG_BAD_SELECT, MSG_S(arena_strndup(x->arena, name, len)));
            return false;
        }
        if (*key)
            json_object_set_new(keep, key, json_true());
        p += n + (p[n] == ',');
    }
    return true;
}

json_t *carrier_select(api_exchange *x, json_t *j, const char *select)
{
    json_t *keep = json_object(), *out = NULL;
    if (select_names(x, j, select, keep)) {
        const char *key;
        json_t *value;
        out = json_object();
        json_object_foreach(j, key, value) /* in carrier order */
        {
            if (json_object_get(keep, key) != NULL)
                json_object_set(out, key, value);
        }
    }
    json_decref(keep);
    json_decref(j);
    return out;
}

bool carrier_string(api_exchange *x, json_t *obj, const char *name, const char **out)
{
    json_t *v = carrier_get(obj, name);
    *out = NULL;
    if (v == NULL) {
        if (x->absent_is_empty)
            *out = "";
        return true;
    }
    if (json_is_null(v)) {
        *out = "";
        return true;
    }
    if (!json_is_string(v)) {
        API_FAIL(x, CB_EBADREQ, MSG_FIELD_NOT_STRING, MSG_S(name));
        return false;
    }
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v)) {
        API_FAIL(x, CB_EBADREQ, MSG_FIELD_HAS_NUL, MSG_S(name));
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
    if (!*present) {
        *present = x->absent_is_empty;
        *out = 0;
        return true;
    }
    json_int_t i = -1;
    int32_t parsed;
    if (json_is_integer(v))
        i = json_integer_value(v);
    else if (x->loose_numbers && json_is_string(v) &&
             text_parse_i32(json_string_value(v), json_string_length(v), &parsed))
        i = parsed;
    if (i < 0 || i > INT32_MAX) {
        API_FAIL(x, CB_EBADREQ, MSG_FIELD_NOT_INT, MSG_S(name), MSG_N(INT32_MAX));
        return false;
    }
    *out = (int32_t)i;
    return true;
}

bool carrier_blob_edit(api_exchange *x, json_t *body, model_blob_edit *edit)
{
    *edit = (model_blob_edit){0};
    return carrier_string(x, body, "Description", &edit->description) &&
           carrier_string(x, body, "ExtraInfo", &edit->extra_info) &&
           carrier_string(x, body, "ConceptualType", &edit->conceptual_type);
}

/* ---- BatchTaskInfo (batch.c) ---- */

/* Its fields in carrier order with their FieldProperties types; client:
 * what UpdateBatchTask changes (batch.c), every other one is the job's. */
static const blob_field task_fields[] = {
    {"Id", "System.Int32", 0, false},
    {"Name", "System.String", 0, false},
    {"AssociateId", "System.Int32", 0, false},
    {"DetailsTable", "System.Int32", 0, false},
    {"DetailsRecord", "System.Int32", 0, false},
    {"IsSystemTask", "System.Boolean", 0, false},
    {"IsInternalTask", "System.Boolean", 0, false},
    {"ParameterObject", "System.Object", 0, true},
    {"LastStarted", "System.DateTime", 0, false},
    {"Created", "System.DateTime", 0, false},
    {"StartCount", "System.Int32", 0, false},
    {"DatabaseSerialNumber", "System.String", 0, false},
    {"Context", "System.String", 0, false},
    {"Result", "System.String", 0, false},
    {"State", "SuperOffice.CRM.Services.BatchTaskState", 0, false},
    {"Description", "System.String", MODEL_STRING_MAX, true},
    {"Response", "System.String", 0, false},
    {"Request", "System.String", 0, false},
    {"ProgressDescription", "System.String", 0, false},
    {"ProgressPercent", "System.Int32", 0, false},
    {"FileName", "System.String", 0, false},
    {"CancellationBehaviour", "SuperOffice.CRM.Services.CancellationBehaviour", 0, false},
};

/* Update for what the caller may change in t: Description for its owner
 * (editor or more) or an admin, ParameterObject too while t is New. */
static json_t *task_field_properties(const api_exchange *x, const store_task *t)
{
    bool owner = x->user.role >= MODEL_ROLE_ADMIN ||
                 (x->user.role >= MODEL_ROLE_EDITOR && t->associate_id == x->user.id);
    json_t *fp = json_object();
    for (size_t i = 0; i < sizeof(task_fields) / sizeof(task_fields[0]); i++) {
        const blob_field *f = &task_fields[i];
        bool may = f->client && owner &&
                   (strcmp(f->name, "ParameterObject") != 0 || t->state == STORE_TASK_NEW);
        json_object_set_new(fp, f->name,
                            json_pack("{s:o, s:s, s:i}", "FieldRight", right(may ? "Update" : "Read"),
                                      "FieldType", f->type, "FieldLength", f->length));
    }
    return fp;
}

/* ParameterObject: the object the task was started with (stored as JSON
 * text by batch.c, so it parses; {} if it somehow does not). */
static json_t *task_params(const char *text)
{
    json_t *p = json_loads(text ? text : "{}", 0, NULL);
    if (!json_is_object(p)) {
        json_decref(p);
        p = json_object();
    }
    return p;
}

json_t *carrier_batch_task(const api_exchange *x, const store_task *t)
{
    json_t *j = json_object();
    json_object_set_new(j, "Id", json_integer(t->id));
    json_object_set_new(j, "Name", json_string(t->name));
    json_object_set_new(j, "AssociateId", json_integer(t->associate_id));
    json_object_set_new(j, "DetailsTable", json_integer(0));
    json_object_set_new(j, "DetailsRecord", json_integer(0));
    json_object_set_new(j, "IsSystemTask", json_boolean(t->associate_id == 0));
    json_object_set_new(j, "IsInternalTask", json_false());
    json_object_set_new(j, "ParameterObject", task_params(t->params));
    json_object_set_new(j, "LastStarted", date(x, t->started_ms ? t->started_ms : INT64_MIN));
    json_object_set_new(j, "Created", date(x, t->created_ms));
    json_object_set_new(j, "StartCount", json_integer(t->start_count));
    json_object_set_new(j, "DatabaseSerialNumber", json_string(""));
    json_object_set_new(j, "Context", json_string(""));
    json_object_set_new(j, "Result", json_string(t->result));
    json_object_set_new(j, "State", json_string(batch_state_name(t->state)));
    json_object_set_new(j, "Description", json_string(t->description));
    json_object_set_new(j, "Response", json_string(t->response));
    json_object_set_new(j, "Request", json_string(""));
    json_object_set_new(j, "ProgressDescription", json_string(t->progress));
    json_object_set_new(j, "ProgressPercent", json_integer(t->percent));
    json_object_set_new(j, "FileName", json_string(t->file_name));
    json_object_set_new(j, "CancellationBehaviour", json_string("CanCancel"));
    json_object_set_new(j, "TableRight", right(x->user.role >= MODEL_ROLE_EDITOR ? "FULL" : "Select"));
    json_object_set_new(j, "FieldProperties", task_field_properties(x, t));
    return j;
}
