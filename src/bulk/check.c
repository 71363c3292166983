/*
 * check.c — the integrity check (bulk.h): is the data set whole? Three
 * passes over a data set held as a server holds it (servers may go on):
 *  1. the database's own check (store_check_db);
 *  2. every link in one snapshot (store_check_links);
 *  3. every BLOB record with its stored bytes (store_blob_walk): BlobSize
 *     against the bytes kept, the bytes decoded with the record's
 *     IsZipped/IsEncrypted and the key (other flags tried when they fail,
 *     to say which flag is wrong), OriginalSize against the plain bytes,
 *     MimeType against what the bytes are, the whole picture decoded by
 *     the image worker, as an upload is validated, and the picture as the
 *     server reads it (the store's read path) the same bytes.
 *
 * Each problem is one line naming the record ("BLOB 12: ...", "Person 3:
 * ...", "database: ..."), through the caller's hooks: `crmblob check`
 * prints them, the check job writes them to its report. The log level is
 * the caller's: the command silences the codec's lines of failed decoding
 * tries (its findings say it); a server keeps them in its log.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bulk/bulk.h"
#include "img/img.h"
#include "store/store_check.h"

typedef struct {
    const codec_t *codec;
    store_t *st; /* the data set as serve opens it: its picture read path */
    const bulk_hooks *h;
    bool cancelled;
    int64_t problems;
} check_job;

static void say(void *ctx, bool problem, const char *line)
{
    check_job *j = ctx;
    if (problem) {
        j->problems++;
        if (j->h->problem != NULL)
            j->h->problem(j->h->ctx, line);
    } else if (j->h->note != NULL) {
        j->h->note(j->h->ctx, line);
    }
}

static void problem(check_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(check_job *j, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    say(j, true, line);
}

/* in decoded with flags (z, e) into a known picture type: *out malloc'd. */
static img_type decode_as(const check_job *j, const store_walk_item *it, bool z, bool e, void **out,
                          size_t *len)
{
    *out = NULL;
    cb_err rc = codec_decode(j->codec, it->stored, it->len, z, e, out, len);
    img_type t = rc == CB_EOK ? img_sniff(*out, *len) : IMG_UNKNOWN;
    if (t == IMG_UNKNOWN) {
        free(*out);
        *out = NULL;
    }
    return t;
}

/* The plain picture of it: with the record's flags, else with the flags
 * the bytes answer to (a problem). IMG_UNKNOWN: none gives a picture. */
static img_type plain_of(check_job *j, const store_walk_item *it, void **out, size_t *len)
{
    const model_blob *r = it->rec;
    img_type t = decode_as(j, it, r->is_zipped, r->is_encrypted, out, len);
    for (int f = 0; f < 4 && t == IMG_UNKNOWN; f++) {
        bool z = f & 1, e = f & 2;
        if ((z == r->is_zipped && e == r->is_encrypted) ||
            (t = decode_as(j, it, z, e, out, len)) == IMG_UNKNOWN)
            continue;
        problem(j, "BLOB %d: IsZipped %d, IsEncrypted %d, but its bytes are stored %s, %s",
                r->blob_id, r->is_zipped, r->is_encrypted, z ? "compressed" : "not compressed",
                e ? "encrypted" : "not encrypted");
    }
    if (t == IMG_UNKNOWN)
        problem(j,
                "BLOB %d: its %zu stored bytes do not decode to a picture (damaged, or "
                "encrypted with another key)",
                r->blob_id, it->len);
    return t;
}

/* The plain picture against the record, and decoded whole. */
static void check_plain(check_job *j, const model_blob *r, img_type t, const void *p, size_t len)
{
    char reason[256];
    img_info info;
    if ((int64_t)len != r->original_size)
        problem(j, "BLOB %d: OriginalSize %d, but its picture has %zu bytes", r->blob_id,
                r->original_size, len);
    if (r->mime_type == NULL || strcasecmp(r->mime_type, img_mime(t)) != 0)
        problem(j, "BLOB %d: MimeType '%s', but its picture is %s", r->blob_id,
                r->mime_type ? r->mime_type : "", img_mime(t));
    cb_err e = img_validate(p, len, &info, reason, sizeof(reason));
    if (e == CB_EBADREQ)
        problem(j, "BLOB %d: its picture is not valid: %s", r->blob_id, reason);
    else if (e != CB_EOK)
        say(j, false, "a picture could not be decoded by the image worker (not checked)");
}

/* The picture as the server reads it (store_blob_content_get: its read
 * transaction, codec and size checks) must be the plain picture decoded
 * here, unless the record changed since the walk read it (a server writes). */
static void check_served(check_job *j, const model_blob *r, const void *plain, size_t plen)
{
    arena_t *a = arena_create();
    model_blob now = {0};
    void *bytes = NULL;
    size_t len = 0;
    if (a == NULL)
        return;
    store_err rc = store_blob_content_get(j->st, a, r->blob_id, &now, &bytes, &len);
    bool same = now.blob_id == r->blob_id && now.version == r->version;
    if (rc == STORE_OK && same && (len != plen || memcmp(bytes, plain, len) != 0))
        problem(j, "BLOB %d: the server reads other bytes than are stored", r->blob_id);
    else if (rc != STORE_OK && rc != STORE_ABSENT)
        problem(j, "BLOB %d: the server's read of its picture fails: %s", r->blob_id,
                store_err_name(rc));
    free(bytes);
    arena_destroy(a);
}

static store_err check_record(void *ctx, const store_walk_item *it)
{
    check_job *j = ctx;
    const model_blob *r = it->rec;
    void *plain = NULL;
    size_t plen = 0;
    if (j->h->cancelled != NULL && j->h->cancelled(j->h->ctx)) {
        j->cancelled = true;
        return STORE_UNAVAILABLE;
    }
    if (j->h->step != NULL)
        j->h->step(j->h->ctx, 1, (int64_t)it->len);
    if (it->read_rc != STORE_OK) {
        problem(j, "BLOB %d: cannot be read: %s", r->blob_id, store_err_name(it->read_rc));
        return STORE_OK;
    }
    if (!it->has_bytes) {
        if (r->blob_size != 0)
            problem(j, "BLOB %d: BlobSize %d, but no bytes are stored", r->blob_id, r->blob_size);
        return STORE_OK;
    }
    int64_t before = j->problems;
    if ((int64_t)it->len != r->blob_size)
        problem(j, "BLOB %d: BlobSize %d, but %zu bytes are stored", r->blob_id, r->blob_size,
                it->len);
    img_type t = plain_of(j, it, &plain, &plen);
    if (t != IMG_UNKNOWN)
        check_plain(j, r, t, plain, plen);
    if (j->problems == before) /* else the server's read fails for the reason given */
        check_served(j, r, plain, plen);
    free(plain);
    return STORE_OK;
}

/* Pass 3: every record with its bytes. */
static store_err check_pictures(check_job *j, store_copy_end *e)
{
    int64_t records = 0, bytes = 0;
    store_err rc = store_walk_size(e, &records, &bytes);
    if (rc != STORE_OK)
        return rc;
    if (j->h->start != NULL)
        j->h->start(j->h->ctx, "check", records);
    return store_blob_walk(e, check_record, j);
}

bulk_rc bulk_check(store_copy_end *e, store_t *st, const codec_t *codec, bool quick,
                   const bulk_hooks *h, int64_t *problems)
{
    check_job j = {.codec = codec, .st = st, .h = h};
    int64_t links = 0;
    store_err rc = store_check_db(e, quick, say, &j);
    if (rc != STORE_OK)
        problem(&j, "database: its own check could not run: %s", store_err_name(rc));
    if ((rc = store_check_links(e, say, &j, &links)) != STORE_OK)
        problem(&j, "database: the links could not be read: %s", store_err_name(rc));
    if ((rc = check_pictures(&j, e)) != STORE_OK && !j.cancelled)
        problem(&j, "database: the BLOB records could not be read: %s", store_err_name(rc));
    *problems = j.problems;
    return j.cancelled ? BULK_CANCELLED : j.problems > 0 ? BULK_PROBLEMS : BULK_OK;
}
