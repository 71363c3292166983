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

#include "bulk/bulk.h"
#include "cli/cli.h"
#include "core/io.h"
#include "core/log.h"
#include "core/text.h"
#include "store/store_export.h"
#include "store/store_pgmod.h"

#define MAX_REPORT 50 /* problems printed one by one; then a count */

/* The command's side of bulk_export: a progress bar, problems on stderr. */
typedef struct {
    cli_progress prog;
    bool started;
    int64_t said;
} exporter;

const char *cli_ext_of_mime(const char *mime)
{
    return bulk_ext_of_mime(mime);
}

static void on_start(void *ctx, const char *what, int64_t total)
{
    exporter *x = ctx;
    cli_progress_start(&x->prog, stderr, what, "records", total, -1);
    x->started = true;
}

static void on_step(void *ctx, int64_t items, int64_t bytes)
{
    exporter *x = ctx;
    cli_progress_add(&x->prog, items, bytes);
}

/* "crmblob: export: ..." on stderr, the first MAX_REPORT of them. */
static void on_problem(void *ctx, const char *line)
{
    exporter *x = ctx;
    if (x->said++ < MAX_REPORT)
        fprintf(stderr, "crmblob: %s%s\n", strncmp(line, "export", 6) == 0 ? "" : "export: ",
                line);
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

int cli_export(const cli_opts *o)
{
    codec_t *codec = NULL;
    store_t *st = NULL;
    char mpart[PATH_MAX], mfinal[PATH_MAX];
    exporter x = {0};
    bulk_hooks h = {on_start, on_step, on_problem, NULL, NULL, &x};
    bulk_dir_sink ds;
    bulk_sink sink;
    bulk_export_stats s;
    bulk_export_opts eo = {.kind = -1};
    int rc = 1;
    if (o->nargs != 1)
        return cli_usage_error(o, "needs one DIR");
    const char *dir = o->args[0];
    log_set_level(LOG_WARN);
    if (prepare_dir(dir) != 0 || cli_make_codec(o, &codec) != 0 ||
        cli_open_data_set(o, codec, false, &st) != 0)
        goto out;
    snprintf(mpart, sizeof(mpart), "%s/manifest.jsonl.part", dir);
    snprintf(mfinal, sizeof(mfinal), "%s/manifest.jsonl", dir);
    if ((eo.manifest = fopen(mpart, "we")) == NULL) {
        fprintf(stderr, "crmblob: export: %s: %s\n", mpart, strerror(errno));
        goto out;
    }
    bulk_dir_sink_init(&ds, dir, &sink);
    bulk_rc br = bulk_export(st, &eo, &sink, &h, &s);
    if (x.started)
        cli_progress_end(&x.prog);
    if (fclose(eo.manifest) != 0 && br != BULK_FAILED)
        br = BULK_FAILED;
    if (br == BULK_FAILED || rename(mpart, mfinal) != 0) {
        fprintf(stderr, "crmblob: export stopped (no manifest written)\n");
        unlink(mpart);
        goto out;
    }
    printf("exported %lld pictures (%.1f MiB) and %lld BLOB records to %s\n",
           (long long)s.pictures, (double)s.bytes / (1024.0 * 1024.0), (long long)s.records, dir);
    if (s.problems > MAX_REPORT)
        fprintf(stderr, "crmblob: export: %lld more problems\n",
                (long long)(s.problems - MAX_REPORT));
    rc = s.problems > 0 ? 1 : 0;
out:
    store_close(st);
    codec_destroy(codec);
    return rc;
}
