/*
 * check.c — `crmblob check`: is the data set whole? bulk_check's three
 * passes (src/bulk/check.c, shared with the check job) over a data set
 * held as a server holds it (servers may go on):
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

#include "bulk/bulk.h"
#include "cli/cli.h"
#include "core/log.h"
#include "img/img.h"
#include "store/store_check.h"

/* The command's side of bulk_check: problems on stdout, notes and the
 * progress on stderr (a progress bar on a terminal is cleared before a
 * line, so that it is redrawn below). */
typedef struct {
    cli_progress p;
    bool progress_on;
    int64_t notes;
} check_job;

static void clear_bar(check_job *j)
{
    if (j->progress_on && j->p.tty)
        fputs("\r\033[K", stderr);
}

static void on_problem(void *ctx, const char *line)
{
    clear_bar(ctx);
    printf("%s\n", line);
    fflush(stdout);
}

static void on_note(void *ctx, const char *line)
{
    check_job *j = ctx;
    clear_bar(j);
    fprintf(stderr, "note: %s\n", line);
    j->notes++;
}

static void on_start(void *ctx, const char *what, int64_t total)
{
    check_job *j = ctx;
    cli_progress_start(&j->p, stderr, what, "BLOB records", total, -1);
    j->progress_on = true;
}

static void on_step(void *ctx, int64_t items, int64_t bytes)
{
    check_job *j = ctx;
    cli_progress_add(&j->p, items, bytes);
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

int cli_check(const cli_opts *o)
{
    store_copy_end *e = NULL;
    codec_t *codec = NULL;
    check_job j = {0};
    store_t *st = NULL;
    int64_t problems = 0;
    bulk_hooks h = {on_start, on_step, on_problem, on_note, NULL, &j};
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
    if (store_open(o->db, &(store_options){.codec = codec, .pool_size = 2}, &st) != STORE_OK) {
        fprintf(stderr, "crmblob: cannot open the database %s\n", where);
        img_shutdown();
        goto out;
    }
    log_set_level((log_level)(LOG_ERROR + 1)); /* a failed decoding try is not news */
    bulk_check(e, st, codec, o->quick, &h, &problems);
    log_set_level(LOG_WARN);
    if (j.progress_on)
        cli_progress_end(&j.p);
    img_shutdown();
    if (problems == 0)
        printf("%s: no problem found\n", where);
    else
        fprintf(stderr, "crmblob: %lld problem(s) found in %s\n", (long long)problems, where);
    rc = problems == 0 ? 0 : 1;
out:
    store_close(st); /* it borrows the codec */
    codec_destroy(codec);
    store_copy_close(e);
    return rc;
}
