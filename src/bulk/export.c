/*
 * export.c — the picture export (bulk.h): every BLOB record of one
 * snapshot (store_export_walk), its picture into a sink and its record as
 * one line of a JSON-lines manifest.
 *
 * Invariants: a picture that cannot be read is a problem, its member is
 * dropped and its line says "File": null and "Problem"; the run goes on.
 * A sink or manifest that fails, or a cancel, stops the run (no member is
 * left half written: the sink drops the open one).
 */
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "bulk/bulk.h"
#include "core/text.h"

typedef struct {
    const bulk_export_opts *o;
    const bulk_sink *sink;
    const bulk_hooks *h;
    bulk_export_stats *s;
    bool open, cancelled;
    char rel[64];
    crypto_hash_sha256_state sha;
} exporter;

const char *bulk_ext_of_mime(const char *mime)
{
    static const char *const map[][2] = {
        {"image/jpeg", "jpg"}, {"image/png", "png"}, {"image/gif", "gif"}, {"image/tiff", "tiff"}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(mime, map[i][0]) == 0)
            return map[i][1];
    return "bin";
}

static void problem(exporter *x, const char *line)
{
    x->s->problems++;
    if (x->h->problem != NULL)
        x->h->problem(x->h->ctx, line);
}

static void step(exporter *x, int64_t bytes)
{
    if (x->h->step != NULL)
        x->h->step(x->h->ctx, 1, bytes);
}

static void rel_name(const store_export_rec *r, char *out, size_t cap)
{
    const char *ext = bulk_ext_of_mime(r->b.mime_type);
    if (r->library)
        snprintf(out, cap, "library/%d.%s", r->b.blob_id, ext);
    else if (r->kind < 0)
        snprintf(out, cap, "blob/%d.%s", r->b.blob_id, ext);
    else
        snprintf(out, cap, "%s/%d%s.%s", model_entity((model_kind)r->kind)->table, r->entity_id,
                 r->thumbnail ? ".thumbnail" : "", ext);
}

static void set_date(json_t *o, const char *name, int64_t ms)
{
    char d[TEXT_DATE_MAX];
    text_format_date(ms, d);
    json_object_set_new(o, name, ms == INT64_MIN ? json_null() : json_string(d));
}

static void set_user(json_t *o, const char *name, const char *id_name, const model_user *u,
                     int32_t id)
{
    json_object_set_new(o, name, u != NULL ? json_string(u->name) : json_null());
    json_object_set_new(o, id_name, id >= 0 ? json_integer(id) : json_null());
}

/* The record's manifest line; file NULL: no file (no bytes, or a problem). */
static store_err manifest_line(exporter *x, const store_export_rec *r, const char *file,
                               const char *sha_hex, const char *why)
{
    const model_blob *b = &r->b;
    json_t *o = json_object();
    json_object_set_new(o, "BlobId", json_integer(b->blob_id));
    json_object_set_new(o, "Entity",
                        r->kind >= 0 ? json_string(model_entity(r->kind)->table) : json_null());
    json_object_set_new(o, "EntityId", r->kind >= 0 ? json_integer(r->entity_id) : json_null());
    json_object_set_new(o, "Role",
                        json_string(r->library     ? "library"
                                    : r->kind < 0  ? "unlinked"
                                    : r->thumbnail ? "thumbnail"
                                                   : "image"));
    json_object_set_new(o, "File", file ? json_string(file) : json_null());
    json_object_set_new(o, "Sha256", sha_hex ? json_string(sha_hex) : json_null());
    json_object_set_new(o, "Description", json_string(b->description));
    json_object_set_new(o, "ExtraInfo", json_string(b->extra_info));
    json_object_set_new(o, "MimeType", json_string(b->mime_type));
    json_object_set_new(o, "ConceptualType", json_string(b->conceptual_type));
    json_object_set_new(o, "BlobSize", json_integer(b->blob_size));
    json_object_set_new(o, "OriginalSize", json_integer(b->original_size));
    json_object_set_new(o, "IsZipped", json_boolean(b->is_zipped));
    json_object_set_new(o, "IsEncrypted", json_boolean(b->is_encrypted));
    set_date(o, "CreatedDate", b->created_ms);
    set_date(o, "UpdatedDate", b->updated_ms);
    set_user(o, "CreatedBy", "CreatedById", b->created_by, r->created_by);
    set_user(o, "UpdatedBy", "UpdatedById", b->updated_by, r->updated_by);
    json_object_set_new(o, "Version", json_integer(b->version));
    json_object_set_new(o, "InfoVersion", json_integer(b->info_version));
    set_date(o, "UnlinkedDate", r->unlinked_ms);
    if (why != NULL)
        json_object_set_new(o, "Problem", json_string(why));
    bool ok = json_dumpf(o, x->o->manifest, JSON_COMPACT | JSON_ENSURE_ASCII) == 0 &&
              fputc('\n', x->o->manifest) != EOF;
    json_decref(o);
    x->s->records++;
    return ok ? STORE_OK : STORE_NO_SPACE;
}

static bool wanted(const exporter *x, const store_export_rec *r)
{
    return x->o->kind < 0 || r->kind == x->o->kind;
}

static store_err on_record(void *ctx, const store_export_rec *r, bool *want)
{
    exporter *x = ctx;
    if (x->h->cancelled != NULL && x->h->cancelled(x->h->ctx)) {
        x->cancelled = true;
        return STORE_UNAVAILABLE;
    }
    if (!wanted(x, r))
        return STORE_OK;
    if (r->b.blob_size <= 0) {
        step(x, 0);
        return manifest_line(x, r, NULL, NULL, NULL);
    }
    rel_name(r, x->rel, sizeof(x->rel));
    store_err e = x->sink->open(x->sink->s, x->rel, r->b.original_size);
    if (e != STORE_OK) {
        problem(x, e == STORE_NO_SPACE ? "export: the output is full" : "export: cannot write");
        return e;
    }
    x->open = true;
    crypto_hash_sha256_init(&x->sha);
    *want = true;
    return STORE_OK;
}

static cb_err on_bytes(void *ctx, const void *p, size_t n)
{
    exporter *x = ctx;
    crypto_hash_sha256_update(&x->sha, p, n);
    return x->sink->write(x->sink->s, p, n);
}

/* The picture is written: kept, hashed into its line. */
static store_err picture_done(exporter *x, const store_export_rec *r)
{
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[2 * sizeof(h) + 1];
    crypto_hash_sha256_final(&x->sha, h);
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    store_err e = x->sink->close(x->sink->s, true);
    x->open = false;
    if (e != STORE_OK) {
        problem(x, "export: cannot write");
        return e;
    }
    x->s->pictures++;
    x->s->bytes += r->b.original_size;
    return manifest_line(x, r, x->rel, hex, NULL);
}

static store_err on_end(void *ctx, const store_export_rec *r, store_err rc)
{
    exporter *x = ctx;
    step(x, r->b.original_size);
    if (rc == STORE_OK)
        return picture_done(x, r);
    x->sink->close(x->sink->s, false);
    x->open = false;
    if (rc == STORE_NO_SPACE || rc == STORE_INTERNAL) { /* the output: stop */
        problem(x, rc == STORE_NO_SPACE ? "export: the output is full" : "export: cannot write");
        return rc;
    }
    const char *why = rc == STORE_UNAVAILABLE ? "encrypted, and no encryption key given"
                                              : "the stored bytes do not decode or match the "
                                                "record (damaged, or another key's)";
    char line[256];
    snprintf(line, sizeof(line), "BLOB %d: %s", r->b.blob_id, why);
    problem(x, line);
    return manifest_line(x, r, NULL, NULL, why);
}

static void on_total(void *ctx, int64_t records)
{
    exporter *x = ctx;
    if (x->h->start != NULL)
        x->h->start(x->h->ctx, "export", x->o->kind < 0 ? records : -1);
}

bulk_rc bulk_export(store_t *st, const bulk_export_opts *o, const bulk_sink *sink,
                    const bulk_hooks *h, bulk_export_stats *stats)
{
    exporter x = {.o = o, .sink = sink, .h = h, .s = stats};
    *stats = (bulk_export_stats){0};
    store_export_fns f = {on_total, on_record, on_bytes, on_end, &x};
    store_err e = store_export_walk(st, &f);
    if (x.open)
        sink->close(sink->s, false);
    if (fflush(o->manifest) != 0 && e == STORE_OK) {
        problem(&x, "export: cannot write the manifest");
        e = STORE_NO_SPACE;
    }
    if (x.cancelled)
        return BULK_CANCELLED;
    if (e != STORE_OK) {
        char line[128];
        snprintf(line, sizeof(line), "export stopped: %s", store_err_name(e));
        problem(&x, line);
        return BULK_FAILED;
    }
    return stats->problems > 0 ? BULK_PROBLEMS : BULK_OK;
}
