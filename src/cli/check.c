/*
 * check.c — `crmblob check`: is the data set whole? Three passes over a
 * data set held as a server holds it (servers may go on):
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
 * Each problem is one line on stdout naming the record ("BLOB 12: ...",
 * "Person 3: ...", "database: ..."); notes on what could not be checked
 * go to stderr, with the progress (a bar on a terminal). Exit codes: 0
 * clean, 1 problems found (or the check could not run), 2 usage.
 */
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/log.h"
#include "img/img.h"
#include "store/store_check.h"

typedef struct {
    const codec_t *codec;
    store_t *st; /* the data set as serve opens it: its picture read path */
    cli_progress p;
    bool progress_on;
    int64_t problems, notes;
} check_job;

/* A finding: a problem on stdout, a note on stderr; a progress bar on a
 * terminal is cleared first, so that it is redrawn below. */
static void say(void *ctx, bool problem, const char *line)
{
    check_job *j = ctx;
    if (j->progress_on && j->p.tty)
        fputs("\r\033[K", stderr);
    if (problem) {
        printf("%s\n", line);
        fflush(stdout);
        j->problems++;
    } else {
        fprintf(stderr, "note: %s\n", line);
        j->notes++;
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
    log_set_level((log_level)(LOG_ERROR + 1)); /* a failed try is not news: the result says */
    cb_err rc = codec_decode(j->codec, it->stored, it->len, z, e, out, len);
    log_set_level(LOG_WARN);
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
    log_set_level((log_level)(LOG_ERROR + 1)); /* the finding below says it */
    store_err rc = store_blob_content_get(j->st, a, r->blob_id, &now, &bytes, &len);
    log_set_level(LOG_WARN);
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
    if (j->progress_on)
        cli_progress_add(&j->p, 1, (int64_t)it->len);
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

/* Pass 3: every record with its bytes, with a progress display. */
static store_err check_pictures(check_job *j, store_copy_end *e)
{
    int64_t records = 0, bytes = 0;
    store_err rc = store_walk_size(e, &records, &bytes);
    if (rc != STORE_OK)
        return rc;
    cli_progress_start(&j->p, stderr, "check", "BLOB records", records, bytes);
    j->progress_on = true;
    rc = store_blob_walk(e, check_record, j);
    cli_progress_end(&j->p);
    j->progress_on = false;
    return rc;
}

/* The key as serve would take it: the data's recorded fingerprint must
 * match --encryption-key-file (read only: nothing is recorded here). */
static int check_key(const cli_opts *o, store_copy_end *e, const codec_t *c)
{
    unsigned char want[CODEC_FINGERPRINT_BYTES], have[CODEC_FINGERPRINT_BYTES];
    bool has = false;
    if (store_check_key(e, want, &has) != STORE_OK)
        return 1;
    if (has && o->key_file == NULL) {
        fprintf(stderr, "crmblob: the pictures are encrypted: give --encryption-key-file\n");
        return 1;
    }
    if (!has || !codec_encrypts(c))
        return 0;
    codec_fingerprint(c, have);
    if (memcmp(want, have, sizeof(want)) == 0)
        return 0;
    fprintf(stderr, "crmblob: --encryption-key-file is not the key the pictures are encrypted "
                    "with\n");
    return 1;
}

/* The image worker with serve's limits (--pixel-limit, --image-cpu-limit):
 * a picture serve accepted must pass here too. */
static int start_images(const cli_opts *o)
{
    char worker[PATH_MAX];
    img_config ic = {.pixel_limit = o->pixel_limit,
                     .cpu_limit_s = o->image_cpu_limit_s,
                     .worker = cli_worker_path(worker, sizeof(worker))};
    if (img_init(&ic) == CB_EOK)
        return 0;
    fprintf(stderr, "crmblob: cannot use the image worker %s (set CRMBLOB_IMG_WORKER)\n", worker);
    return 1;
}

/* The three passes; a pass that cannot run is a problem, and the others
 * still run. */
static void check_all(check_job *j, store_copy_end *e, bool quick)
{
    int64_t links = 0;
    store_err rc = store_check_db(e, quick, say, j);
    if (rc != STORE_OK)
        problem(j, "database: its own check could not run: %s", store_err_name(rc));
    if ((rc = store_check_links(e, say, j, &links)) != STORE_OK)
        problem(j, "database: the links could not be read: %s", store_err_name(rc));
    if ((rc = check_pictures(j, e)) != STORE_OK)
        problem(j, "database: the BLOB records could not be read: %s", store_err_name(rc));
}

int cli_check(const cli_opts *o)
{
    store_copy_end *e = NULL;
    codec_t *codec = NULL;
    check_job j = {0};
    char where[512];
    int rc = 1;
    if (o->nargs != 0)
        return cli_usage_error(o, "unexpected argument '%s'", o->args[0]);
    log_set_level(LOG_WARN);
    store_describe(o->db, where, sizeof(where));
    if (store_copy_open(o->db, false, &e) != STORE_OK) {
        fprintf(stderr, "crmblob: cannot open the database %s\n", where);
        return 1;
    }
    if (cli_make_codec(o, &codec) != 0 || check_key(o, e, codec) != 0 || start_images(o) != 0)
        goto out;
    /* it exists (opened above): this open creates nothing */
    if (store_open(o->db, &(store_options){.codec = codec, .pool_size = 2}, &j.st) != STORE_OK) {
        fprintf(stderr, "crmblob: cannot open the database %s\n", where);
        img_shutdown();
        goto out;
    }
    j.codec = codec;
    check_all(&j, e, o->quick);
    img_shutdown();
    if (j.problems == 0)
        printf("%s: no problem found\n", where);
    else
        fprintf(stderr, "crmblob: %lld problem(s) found in %s\n", (long long)j.problems, where);
    rc = j.problems == 0 ? 0 : 1;
out:
    store_close(j.st); /* it borrows the codec */
    codec_destroy(codec);
    store_copy_close(e);
    return rc;
}
