/*
 * export.c — `crmblob export DIR`: every picture as a file and every BLOB
 * record as a line of DIR/manifest.jsonl.
 *
 * Layout: an entity's image is DIR/{entity}/{id}.{ext} (entity person,
 * contact, product or project; id the entity's id; ext from the record's
 * MimeType), a product's thumbnail record DIR/product/{id}.thumbnail.{ext},
 * a record no entity links (made through the BLOB agent, not attached yet)
 * DIR/blob/{BlobId}.{ext}. The bytes are the plain picture as the client
 * uploaded it (decrypted and unzipped by the store's codec). Each manifest
 * line is one record with every field, the entity it belongs to, its file
 * and the file's SHA-256 (so `sha256sum` can check a copy).
 *
 * Invariants: the whole export is one read snapshot of the database
 * (store_export.h), so a server may keep serving and writing meanwhile;
 * a picture goes to disk a piece at a time (never whole in memory); a file
 * appears under its name only once all its bytes are written (".part"
 * until then), and the manifest likewise only at the end, so an export cut
 * short is recognisable by its missing manifest. A picture that cannot be
 * read is reported and left out (its record's line says "File": null and
 * "Problem"); the export goes on and exits 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/cli.h"
#include "core/io.h"
#include "core/log.h"
#include "core/text.h"
#include "store/store_export.h"
#include "store/store_pgmod.h"

#define MAX_REPORT 50 /* problems printed one by one; then a count */

typedef struct {
    const char *dir;
    FILE *manifest;
    cli_progress prog;
    int fd;                        /* the picture being written; -1: none */
    char part[PATH_MAX + 64];      /* its ".part" name */
    char rel[64];                  /* its final name, relative to dir */
    crypto_hash_sha256_state sha;  /* of its bytes */
    int64_t pictures, bytes, records, problems;
} exporter;

const char *cli_ext_of_mime(const char *mime)
{
    static const char *const map[][2] = {
        {"image/jpeg", "jpg"}, {"image/png", "png"}, {"image/gif", "gif"}, {"image/tiff", "tiff"}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(mime, map[i][0]) == 0)
            return map[i][1];
    return "bin";
}

/* "what: why" on stderr, the first MAX_REPORT of them; all counted. */
static void problem(exporter *x, const char *what, const char *why)
{
    if (x->problems++ < MAX_REPORT)
        fprintf(stderr, "crmblob: export: %s: %s\n", what, why);
}

/* The file a record's picture goes to, relative to the export's DIR. */
static void rel_name(const store_export_rec *r, char *out, size_t cap)
{
    const char *ext = cli_ext_of_mime(r->b.mime_type);
    if (r->kind < 0)
        snprintf(out, cap, "blob/%d.%s", r->b.blob_id, ext);
    else
        snprintf(out, cap, "%s/%d%s.%s", model_entity((model_kind)r->kind)->table, r->entity_id,
                 r->thumbnail ? ".thumbnail" : "", ext);
}

static store_err on_record(void *ctx, const store_export_rec *r, bool *want)
{
    exporter *x = ctx;
    char path[sizeof(x->part)];
    rel_name(r, x->rel, sizeof(x->rel));
    snprintf(x->part, sizeof(x->part), "%s/%s.part", x->dir, x->rel);
    snprintf(path, sizeof(path), "%s", x->part);
    *strrchr(path, '/') = '\0';
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        problem(x, path, strerror(errno));
        return STORE_INTERNAL;
    }
    x->fd = open(x->part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (x->fd < 0) {
        problem(x, x->part, strerror(errno));
        return errno == ENOSPC ? STORE_NO_SPACE : STORE_INTERNAL;
    }
    crypto_hash_sha256_init(&x->sha);
    *want = true;
    return STORE_OK;
}

static cb_err on_bytes(void *ctx, const void *p, size_t n)
{
    exporter *x = ctx;
    crypto_hash_sha256_update(&x->sha, p, n);
    if (io_write_full(x->fd, p, n) == 0)
        return CB_EOK;
    return errno == ENOSPC || errno == EDQUOT ? CB_ENOSPACE : CB_EINTERNAL;
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
static int manifest_line(exporter *x, const store_export_rec *r, const char *file,
                         const char *sha_hex, const char *why)
{
    const model_blob *b = &r->b;
    json_t *o = json_object();
    json_object_set_new(o, "BlobId", json_integer(b->blob_id));
    json_object_set_new(o, "Entity", r->kind >= 0 ? json_string(model_entity(r->kind)->table)
                                                   : json_null());
    json_object_set_new(o, "EntityId", r->kind >= 0 ? json_integer(r->entity_id) : json_null());
    json_object_set_new(o, "Role", json_string(r->kind < 0     ? "unlinked"
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
    int rc = json_dumpf(o, x->manifest, JSON_COMPACT | JSON_ENSURE_ASCII) == 0 &&
                     fputc('\n', x->manifest) != EOF
                 ? 0
                 : -1;
    json_decref(o);
    x->records++;
    return rc;
}

/* The picture is written: named, hashed into its line. */
static store_err picture_done(exporter *x, const store_export_rec *r)
{
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[2 * sizeof(h) + 1], path[sizeof(x->part)];
    crypto_hash_sha256_final(&x->sha, h);
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    snprintf(path, sizeof(path), "%s/%s", x->dir, x->rel);
    if (rename(x->part, path) != 0) {
        problem(x, path, strerror(errno));
        return STORE_INTERNAL;
    }
    x->pictures++;
    x->bytes += r->b.original_size;
    return manifest_line(x, r, x->rel, hex, NULL) == 0 ? STORE_OK : STORE_INTERNAL;
}

static store_err on_end(void *ctx, const store_export_rec *r, store_err rc)
{
    exporter *x = ctx;
    int closed = close(x->fd);
    x->fd = -1;
    cli_progress_add(&x->prog, 1, r->b.original_size);
    if (rc == STORE_OK && closed != 0)
        rc = errno == ENOSPC ? STORE_NO_SPACE : STORE_INTERNAL;
    if (rc == STORE_OK)
        return picture_done(x, r);
    unlink(x->part);
    if (rc == STORE_NO_SPACE || rc == STORE_INTERNAL) { /* the export's disk: stop */
        problem(x, x->rel, rc == STORE_NO_SPACE ? "disk full" : "cannot write");
        return rc;
    }
    const char *why = rc == STORE_UNAVAILABLE ? "encrypted, and no --encryption-key-file given"
                                              : "the stored bytes do not decode or match the "
                                                "record (damaged, or another key's)";
    char what[64];
    snprintf(what, sizeof(what), "BLOB %d", r->b.blob_id);
    problem(x, what, why);
    return manifest_line(x, r, NULL, NULL, why) == 0 ? STORE_OK : STORE_INTERNAL;
}

/* A record without bytes: only its line (on_record is not asked). */
static store_err on_record_any(void *ctx, const store_export_rec *r, bool *want)
{
    exporter *x = ctx;
    if (r->b.blob_size > 0)
        return on_record(ctx, r, want);
    cli_progress_add(&x->prog, 1, 0);
    return manifest_line(x, r, NULL, NULL, NULL) == 0 ? STORE_OK : STORE_INTERNAL;
}

static void on_total(void *ctx, int64_t records)
{
    exporter *x = ctx;
    cli_progress_start(&x->prog, stderr, "export", "records", records, -1);
}

/* DIR made when missing; refused when it holds anything (two exports
 * mixed would be neither). */
static int prepare_dir(const char *dir)
{
    if (strlen(dir) > PATH_MAX - 128) { /* room for "/product/{id}.thumbnail.tiff.part" */
        fprintf(stderr, "crmblob: export: the directory's name is too long\n");
        return 1;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "crmblob: export: cannot make %s: %s\n", dir, strerror(errno));
        return 1;
    }
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = d == NULL ? 1 : 0;
    while (d != NULL && (e = readdir(d)) != NULL && rc == 0)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            rc = 1;
    if (d != NULL)
        closedir(d);
    if (rc != 0)
        fprintf(stderr, "crmblob: export: %s is not an empty directory\n", dir);
    return rc;
}

int cli_open_data_set(const cli_opts *o, const codec_t *codec, bool may_create, store_t **st)
{
    char where[4096];
    store_describe(o->db, where, sizeof(where));
    store_options so = {.codec = codec, .spool_dir = o->spool_dir, .must_exist = !may_create};
    if (may_create && !store_pgmod_is_pg(o->db) && access(o->db, F_OK) != 0)
        fprintf(stderr, "crmblob: creating a new database at %s\n", where);
    store_err e = store_open(o->db, &so, st);
    if (e == STORE_ABSENT) {
        fprintf(stderr,
                "crmblob %s: no database at %s (make one with: crmblob init --db %s; serve "
                "makes one at its first start)\n",
                o->cmd_name, where, where);
        return 1;
    }
    if (e != STORE_OK) {
        fprintf(stderr, "crmblob %s: cannot open database %s\n", o->cmd_name, where);
        return 1;
    }
    /* held as a server holds it: no rekey rewrites the pictures meanwhile
     * (an import writing with the old key behind it would leave some) */
    if (store_hold(*st, STORE_HOLD_SERVE) != STORE_OK) /* why is logged */
        return 1;
    return cli_check_codec(o, *st, codec);
}

/* The walk into x, the manifest written to its ".part" name. */
static int run(exporter *x, store_t *st, const char *mpart)
{
    store_export_fns f = {on_total, on_record_any, on_bytes, on_end, x};
    store_err e = store_export_walk(st, &f);
    cli_progress_end(&x->prog);
    if (x->fd >= 0) {
        close(x->fd);
        unlink(x->part);
    }
    if (fclose(x->manifest) != 0 && e == STORE_OK)
        e = STORE_INTERNAL;
    x->manifest = NULL;
    if (e != STORE_OK) {
        fprintf(stderr, "crmblob: export stopped: %s (no manifest written)\n",
                store_err_name(e));
        unlink(mpart);
        return 1;
    }
    return 0;
}

int cli_export(const cli_opts *o)
{
    codec_t *codec = NULL;
    store_t *st = NULL;
    char mpart[PATH_MAX], mfinal[PATH_MAX];
    exporter x = {.fd = -1};
    int rc = 1;
    if (o->nargs != 1)
        return cli_usage_error(o, "needs one DIR");
    x.dir = o->args[0];
    log_set_level(LOG_WARN);
    if (prepare_dir(x.dir) != 0 || cli_make_codec(o, &codec) != 0 ||
        cli_open_data_set(o, codec, false, &st) != 0)
        goto out;
    snprintf(mpart, sizeof(mpart), "%s/manifest.jsonl.part", x.dir);
    snprintf(mfinal, sizeof(mfinal), "%s/manifest.jsonl", x.dir);
    if ((x.manifest = fopen(mpart, "we")) == NULL) {
        fprintf(stderr, "crmblob: export: %s: %s\n", mpart, strerror(errno));
        goto out;
    }
    if (run(&x, st, mpart) != 0 || rename(mpart, mfinal) != 0)
        goto out;
    printf("exported %lld pictures (%.1f MiB) and %lld BLOB records to %s\n",
           (long long)x.pictures, (double)x.bytes / (1024.0 * 1024.0), (long long)x.records,
           x.dir);
    if (x.problems > MAX_REPORT)
        fprintf(stderr, "crmblob: export: %lld more problems\n",
                (long long)(x.problems - MAX_REPORT));
    rc = x.problems > 0 ? 1 : 0;
out:
    store_close(st);
    codec_destroy(codec);
    return rc;
}
