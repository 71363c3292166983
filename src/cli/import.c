/*
 * import.c — `crmblob import DIR|FILE.tar`: pictures from an export (a
 * directory, an export's archive, or a flat folder with --entity) into the
 * data set, each stored exactly as PUT Image stores an upload. The work is
 * bulk_import's (src/bulk/import.c, shared with the job crmblob.import);
 * this file opens the data set and the image worker, hands in
 * api_image_import as the upload path, and draws the progress bar.
 *
 * A missing SQLite database is created (and said to be): an export brought
 * into a new data set. Exit 0, or 1 when any picture could not be imported
 * (each listed, the first MAX_REPORT one by one) or the source not read.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "api/api.h"
#include "bulk/bulk.h"
#include "cli/cli.h"
#include "core/log.h"
#include "img/img.h"

#define MAX_REPORT 100 /* problems printed one by one; then a count */

typedef struct {
    cli_progress prog;
    int64_t problems;
} import_run;

static void on_start(void *c, const char *what, int64_t total)
{
    import_run *r = c;
    cli_progress_start(&r->prog, stderr, what, "pictures", total, -1);
}

static void on_step(void *c, int64_t items, int64_t bytes)
{
    import_run *r = c;
    cli_progress_add(&r->prog, items, bytes);
}

static void on_problem(void *c, const char *line)
{
    import_run *r = c;
    if (r->problems++ < MAX_REPORT)
        fprintf(stderr, "crmblob: import: %s\n", line);
}

static void on_note(void *c, const char *line)
{
    (void)c;
    fprintf(stderr, "crmblob: import: %s\n", line);
}

static int read_file(void *ctx, void *buf, size_t n, size_t *got)
{
    *got = fread(buf, 1, n, (FILE *)ctx);
    return *got == 0 && ferror((FILE *)ctx) ? -1 : 0;
}

static int report(const bulk_import_stats *s, bulk_rc rc)
{
    printf("imported %lld pictures, skipped %lld already there, created %lld entities, "
           "restored the fields of %lld records, %lld into the project image library; "
           "%lld records not imported (thumbnails, unlinked or without bytes); %lld problems\n",
           (long long)s->imported, (long long)s->skipped, (long long)s->created,
           (long long)s->updated, (long long)s->library, (long long)s->left_out,
           (long long)s->problems);
    if (s->problems > MAX_REPORT)
        fprintf(stderr, "crmblob: import: %lld more problems\n",
                (long long)(s->problems - MAX_REPORT));
    return rc == BULK_OK ? 0 : 1;
}

/* The image worker and the API handle the import stores through. */
static int start_pipeline(const cli_opts *o, store_t *st, api_t **api)
{
    char worker_buf[PATH_MAX];
    img_config ic = {.pixel_limit = o->pixel_limit,
                     .cpu_limit_s = o->image_cpu_limit_s,
                     .worker = cli_worker_path(worker_buf, sizeof(worker_buf))};
    if (img_init(&ic) != CB_EOK) {
        fprintf(stderr, "crmblob: cannot use the image worker %s (set CRMBLOB_IMG_WORKER)\n",
                worker_buf);
        return 1;
    }
    api_config ac = {.spool_dir = store_spool_hint(st),
                     .variant_cache_bytes = (int64_t)o->variant_cache_mb * 1024 * 1024};
    return api_create(st, NULL, &ac, api) == CB_EOK ? 0 : 2;
}

/* The source: a directory, or an archive file (opened into *f). */
static int open_source(const char *path, bulk_import_source *src, FILE **f)
{
    struct stat sb;
    *src = (bulk_import_source){0};
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "crmblob: import: %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (S_ISDIR(sb.st_mode)) {
        src->dir = path;
        return 0;
    }
    if ((*f = fopen(path, "rbe")) == NULL) {
        fprintf(stderr, "crmblob: import: %s: %s\n", path, strerror(errno));
        return 1;
    }
    src->read = read_file;
    src->read_ctx = *f;
    return 0;
}

int cli_import(const cli_opts *o)
{
    import_run run = {0};
    bulk_hooks h = {on_start, on_step, on_problem, on_note, NULL, &run};
    bulk_import_source src;
    bulk_import_stats s;
    codec_t *codec = NULL;
    store_t *st = NULL;
    api_t *api = NULL;
    FILE *f = NULL;
    int rc = 1, entity = -1, img = 1;
    if (o->nargs != 1)
        return cli_usage_error(o, "needs one DIR or archive FILE");
    if (o->entity != NULL && (entity = model_kind_from_name(o->entity, strlen(o->entity))) < 0) {
        fprintf(stderr, "crmblob: --entity: '%s' is not person, contact, product or project\n",
                o->entity);
        return 2;
    }
    log_set_level(LOG_WARN);
    if (open_source(o->args[0], &src, &f) != 0 || cli_make_codec(o, &codec) != 0 ||
        cli_open_data_set(o, codec, true, &st) != 0 || (img = start_pipeline(o, st, &api)) != 0)
        goto out;
    bulk_import_opts io = {.entity = entity,
                           .threads = o->threads,
                           .put = api_bulk_put,
                           .put_ctx = api,
                           .spool_dir = store_spool_hint(st)};
    bulk_rc br = bulk_import(st, &src, &io, &h, &s);
    if (run.prog.f != NULL)
        cli_progress_end(&run.prog);
    rc = report(&s, br);
out:
    api_destroy(api);
    if (img != 1)
        img_shutdown();
    store_close(st);
    codec_destroy(codec);
    if (f != NULL)
        fclose(f);
    return rc;
}
