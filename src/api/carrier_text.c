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
 * would refuse) makes the caller fall back to the jansson path, and so does
 * an answer past CARRIER_TEXT_MAX: every append goes through one buf_writer,
 * checked once at the end, so a failed append is never followed by text.
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
static bool put_string(buf_writer *w, const char *s)
{
    static const char hex[] = "0123456789ABCDEF"; /* as jansson writes them */
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), run = 0;
    buf_w_append(w, "\"", 1);
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
        buf_w_append(w, s + i - run, run);
        run = 0;
        char esc[6] = {'\\', (char)c, 0, 0, 0, 0};
        size_t elen = 2;
        if (c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') {
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : c == '\b' ? 'b' : 'f';
        } else if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            buf_w_append(w, esc, 4);
            esc[0] = hex[c >> 4];
            esc[1] = hex[c & 15];
        }
        buf_w_append(w, esc, elen);
        i++;
    }
    buf_w_append(w, s + n - run, run);
    buf_w_append(w, "\"", 1);
    return true;
}

/* ,"Name":"value" */
static bool put_member(buf_writer *w, const char *name, const char *value)
{
    buf_w_puts(w, ",\"");
    buf_w_puts(w, name);
    buf_w_puts(w, "\":");
    return put_string(w, value);
}

static void put_date(buf_writer *w, const api_exchange *x, const char *name, int64_t ms)
{
    char out[TEXT_DATE_MAX];
    if (x->tz != NULL && x->tz_offset && ms != INT64_MIN)
        tz_format_date(ms, tz_offset_minutes(x->tz, ms), out);
    else
        text_format_date(ms, out);
    buf_w_puts(w, ",\"");
    buf_w_puts(w, name);
    buf_w_puts(w, "\":\"");
    buf_w_puts(w, out);
    buf_w_puts(w, "\"");
}

/* The Associate carrier (carrier_associate), or null. */
static bool put_associate(buf_writer *w, const model_user *u)
{
    if (u == NULL) {
        buf_w_puts(w, "null");
        return true;
    }
    const char *full = u->full_name && *u->full_name ? u->full_name : u->name;
    buf_w_puts(w, "{\"AssociateId\":");
    buf_w_put_i64(w, u->id);
    bool ok = put_member(w, "Name", u->name);
    buf_w_puts(w, ",\"PersonId\":0,\"Rank\":0");
    ok = ok && put_member(w, "Tooltip", full);
    ok = ok && put_member(w, "Type", u->id == 0 ? "SystemAssociate" : "InternalAssociate");
    buf_w_puts(w, ",\"GroupIdx\":0");
    ok = ok && put_member(w, "FullName", full) && put_member(w, "FormalName", full);
    buf_w_puts(w, u->disabled ? ",\"Deleted\":true,\"EjUserId\":0"
                              : ",\"Deleted\":false,\"EjUserId\":0");
    ok = ok && put_member(w, "UserName", u->name);
    buf_w_puts(w, "}");
    return ok;
}

/* CreatedBy and UpdatedBy; a record's creator is most often its last
 * writer too (the store then names one user twice): written once, copied. */
static bool put_users(buf_writer *w, const model_blob *b)
{
    buf_w_puts(w, ",\"CreatedBy\":");
    size_t from = w->b->len;
    if (!put_associate(w, b->created_by))
        return false;
    size_t to = w->b->len;
    buf_w_puts(w, ",\"UpdatedBy\":");
    if (b->updated_by != NULL && b->updated_by == b->created_by) {
        buf_w_repeat(w, from, to - from);
        return true;
    }
    return put_associate(w, b->updated_by);
}

/* Room for an answer: its role's tail and the rest, most often < 1 KiB. */
#define ANSWER_ROOM 1024

char *carrier_blob_text(const api_exchange *x, const model_blob *b, size_t *len)
{
    pthread_once(&tails_once, make_tails);
    const char *tail = role_tail[x->user.role];
    size_t tail_len = role_tail_len[x->user.role];
    buf_t o;
    buf_init(&o, CARRIER_TEXT_MAX);
    buf_writer w = buf_writer_on(&o);
    w.err = buf_reserve(&o, tail_len + ANSWER_ROOM);
    buf_w_puts(&w, "{\"BlobId\":");
    buf_w_put_i64(&w, b->blob_id);
    buf_w_puts(&w, ",\"BlobSize\":");
    buf_w_put_i64(&w, b->blob_size);
    bool ok = tail != NULL && put_member(&w, "Description", b->description) &&
              put_member(&w, "ExtraInfo", b->extra_info);
    buf_w_puts(&w, b->is_encrypted ? ",\"IsEncrypted\":true" : ",\"IsEncrypted\":false");
    buf_w_puts(&w, b->is_zipped ? ",\"IsZipped\":true" : ",\"IsZipped\":false");
    ok = ok && put_member(&w, "MimeType", b->mime_type);
    buf_w_puts(&w, ",\"OriginalSize\":");
    buf_w_put_i64(&w, b->original_size);
    put_date(&w, x, "CreatedDate", b->created_ms);
    put_date(&w, x, "UpdatedDate", b->updated_ms);
    ok = ok && put_users(&w, b) && put_member(&w, "ConceptualType", b->conceptual_type);
    if (ok)
        buf_w_append(&w, tail, tail_len);
    if (!ok || w.err != CB_EOK) { /* the jansson path writes it, or refuses it whole */
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
