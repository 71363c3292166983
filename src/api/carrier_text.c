/*
 * carrier_text.c — the BlobEntity carrier written straight to JSON text,
 * for the hot answers (GET ImageInfo, the agent's records): the same
 * members, order and values as json_dumps(carrier_blob(...), JSON_COMPACT),
 * without building a jansson tree of ~90 objects per answer (measured: the
 * tree and its allocations were most of GET ImageInfo's CPU).
 *
 * The parts that depend only on the caller's role (TableRight and
 * FieldProperties) are rendered once per role, through carrier_blob
 * itself, so the two writers cannot disagree on them. Strings are escaped
 * as jansson escapes them; a string that is not valid UTF-8 (which jansson
 * would refuse) makes the caller fall back to the jansson path.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "core/text.h"
#include "core/tz.h"

/* ,"TableRight":...,"FieldProperties":...} per role, and its length. */
static char *role_tail[MODEL_ROLE_ADMIN + 1];
static size_t role_tail_len[MODEL_ROLE_ADMIN + 1];
static pthread_once_t tails_once = PTHREAD_ONCE_INIT;

static void make_tails(void)
{
    for (int r = 0; r <= MODEL_ROLE_ADMIN; r++) {
        api_exchange x = {.user = {.role = (model_role)r}};
        model_blob b;
        model_blob_empty(&b);
        json_t *j = carrier_blob(&x, &b);
        json_t *tail = json_object();
        json_object_set(tail, "TableRight", json_object_get(j, "TableRight"));
        json_object_set(tail, "FieldProperties", json_object_get(j, "FieldProperties"));
        char *text = json_dumps(tail, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(tail);
        json_decref(j);
        if (text != NULL) {
            text[0] = ','; /* "{...}" → ",...}": appended after the last field */
            role_tail_len[r] = strlen(text);
        }
        role_tail[r] = text;
    }
}

/* A JSON string; false when s is not valid UTF-8. */
static bool put_string(buf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF"; /* as jansson writes them */
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), run = 0;
    buf_append(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t len = c < 0x80 ? 1 : text_utf8_seq(p + i, n - i);
        if (len == 0)
            return false;
        if (c >= 0x20 && c != '"' && c != '\\') {
            i += len;
            run += len;
            continue;
        }
        buf_append(b, s + i - run, run);
        run = 0;
        char esc[6] = {'\\', (char)c, 0, 0, 0, 0};
        size_t elen = 2;
        if (c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') {
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : c == '\b' ? 'b' : 'f';
        } else if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            buf_append(b, esc, 4);
            esc[0] = hex[c >> 4];
            esc[1] = hex[c & 15];
        }
        buf_append(b, esc, elen);
        i++;
    }
    buf_append(b, s + n - run, run);
    return buf_append(b, "\"", 1) == CB_EOK;
}

/* "Name":"value" after a comma (first: no comma). */
static bool put_member(buf_t *b, const char *name, const char *value, bool first)
{
    buf_puts(b, first ? "\"" : ",\"");
    buf_puts(b, name);
    buf_puts(b, "\":");
    return put_string(b, value);
}

static void put_date(buf_t *b, const api_exchange *x, const char *name, int64_t ms)
{
    char out[TEXT_DATE_MAX];
    if (x->tz != NULL && x->tz_offset && ms != INT64_MIN)
        tz_format_date(ms, tz_offset_minutes(x->tz, ms), out);
    else
        text_format_date(ms, out);
    buf_puts(b, ",\"");
    buf_puts(b, name);
    buf_puts(b, "\":\"");
    buf_puts(b, out);
    buf_puts(b, "\"");
}

/* The Associate carrier (carrier_associate), or null. */
static bool put_associate(buf_t *b, const model_user *u)
{
    if (u == NULL)
        return buf_puts(b, "null") == CB_EOK;
    const char *full = u->full_name && *u->full_name ? u->full_name : u->name;
    buf_puts(b, "{\"AssociateId\":");
    buf_put_i64(b, u->id);
    bool ok = put_member(b, "Name", u->name, false);
    buf_puts(b, ",\"PersonId\":0,\"Rank\":0");
    ok = ok && put_member(b, "Tooltip", full, false);
    ok = ok && put_member(b, "Type", u->id == 0 ? "SystemAssociate" : "InternalAssociate", false);
    buf_puts(b, ",\"GroupIdx\":0");
    ok = ok && put_member(b, "FullName", full, false) && put_member(b, "FormalName", full, false);
    buf_puts(b, u->disabled ? ",\"Deleted\":true,\"EjUserId\":0" : ",\"Deleted\":false,\"EjUserId\":0");
    ok = ok && put_member(b, "UserName", u->name, false);
    return ok && buf_puts(b, "}") == CB_EOK;
}

/* CreatedBy and UpdatedBy; a record's creator is most often its last
 * writer too (the store then names one user twice): written once, copied. */
static bool put_users(buf_t *o, const model_blob *b)
{
    buf_puts(o, ",\"CreatedBy\":");
    size_t from = o->len;
    if (!put_associate(o, b->created_by))
        return false;
    size_t to = o->len;
    buf_puts(o, ",\"UpdatedBy\":");
    if (b->updated_by != NULL && b->updated_by == b->created_by)
        return buf_append(o, o->data + from, to - from) == CB_EOK;
    return put_associate(o, b->updated_by);
}

/* Room for an answer: its role's tail and the rest, most often < 1 KiB. */
#define ANSWER_ROOM 1024

char *carrier_blob_text(const api_exchange *x, const model_blob *b, size_t *len)
{
    pthread_once(&tails_once, make_tails);
    const char *tail = role_tail[x->user.role];
    size_t tail_len = role_tail_len[x->user.role];
    buf_t o;
    buf_init(&o, 1024 * 1024);
    buf_reserve(&o, tail_len + ANSWER_ROOM);
    buf_puts(&o, "{\"BlobId\":");
    buf_put_i64(&o, b->blob_id);
    buf_puts(&o, ",\"BlobSize\":");
    buf_put_i64(&o, b->blob_size);
    bool ok = tail != NULL && put_member(&o, "Description", b->description, false) &&
              put_member(&o, "ExtraInfo", b->extra_info, false);
    buf_puts(&o, b->is_encrypted ? ",\"IsEncrypted\":true" : ",\"IsEncrypted\":false");
    buf_puts(&o, b->is_zipped ? ",\"IsZipped\":true" : ",\"IsZipped\":false");
    ok = ok && put_member(&o, "MimeType", b->mime_type, false);
    buf_puts(&o, ",\"OriginalSize\":");
    buf_put_i64(&o, b->original_size);
    put_date(&o, x, "CreatedDate", b->created_ms);
    put_date(&o, x, "UpdatedDate", b->updated_ms);
    ok = ok && put_users(&o, b) && put_member(&o, "ConceptualType", b->conceptual_type, false) &&
         buf_append(&o, tail, tail_len) == CB_EOK;
    if (!ok) {
        buf_free(&o);
        return NULL;
    }
    return buf_steal(&o, len);
}

void api_answer_blob(api_exchange *x, const model_blob *b, const char *select)
{
    size_t len = 0;
    if (select != NULL && select[strspn(select, " ,")] != '\0') {
        json_t *j = carrier_select(x, carrier_blob(x, b), select);
        if (j != NULL)
            api_answer_carrier(x, 200, "BlobEntity", j);
        return;
    }
    char *text = repr_answer_is_xml(x) ? NULL : carrier_blob_text(x, b, &len);
    if (text != NULL)
        api_answer_bytes(x, 200, repr_answer_content_type(x), text, len);
    else
        api_answer_carrier(x, 200, "BlobEntity", carrier_blob(x, b));
}
