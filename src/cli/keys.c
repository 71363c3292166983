/*
 * keys.c — the encryption key of the picture store: making one (`keygen`),
 * refusing to serve with a key that does not match the data, and moving
 * everything to another key (`rekey`).
 *
 * The store records the fingerprint of the key its data is encrypted with
 * ("key_fingerprint" in its metadata). serve refuses a different key, and
 * refuses to run without a key while the fingerprint is set, instead of
 * failing later on every picture.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulk/bulk.h"
#include "cli/cli.h"
#include "core/log.h"

int cli_keygen(const cli_opts *o)
{
    if (o->nargs != 1)
        return cli_usage_error(o, o->nargs == 0 ? "needs FILE" : "takes one FILE");
    if (codec_keygen(o->args[0]) != CB_EOK) {
        fprintf(stderr, "crmblob: cannot write a new key to %s (does it exist already?)\n",
                o->args[0]);
        return 1;
    }
    printf("new key written to %s\n", o->args[0]);
    return 0;
}

int cli_make_codec(const cli_opts *o, codec_t **out)
{
    codec_config cc = {.compress = o->compress, .key_file = o->key_file};
    *out = NULL;
    return codec_create(&cc, out) != CB_EOK; /* also without options: reads what was compressed */
}

int cli_check_codec(const cli_opts *o, store_t *st, const codec_t *c)
{
    unsigned char have[CODEC_FINGERPRINT_BYTES], want[CODEC_FINGERPRINT_BYTES];
    int rec = bulk_key_recorded(st, want);
    if (rec < 0)
        return 1;
    if (o->key_file == NULL && rec == 1) {
        log_error("the pictures in this database are encrypted: give --encryption-key-file");
        return 1;
    }
    if (!codec_encrypts(c))
        return 0;
    codec_fingerprint(c, have);
    if (rec == 1 && memcmp(have, want, sizeof(have)) != 0) {
        log_error("--encryption-key-file does not match the key this database's pictures "
                  "are encrypted with (use `crmblob rekey` to change keys)");
        return 1;
    }
    return rec == 0 && bulk_key_record(st, c) != STORE_OK;
}

typedef struct {
    codec_t *old_c;  /* may be NULL: data not encrypted */
    codec_t *new_c;  /* the new key (may be NULL), compressing only with --compress */
    codec_t *new_zc; /* the new key, compressing: for what was compressed before */
    cli_progress progress;
} rekey_ctx;

static void on_start(void *ctx, const char *what, int64_t total)
{
    rekey_ctx *k = ctx;
    cli_progress_start(&k->progress, stderr, what, "pictures and variants", total, -1);
}

static void on_step(void *ctx, int64_t items, int64_t bytes)
{
    rekey_ctx *k = ctx;
    cli_progress_add(&k->progress, items, bytes);
}

static void on_problem(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "crmblob: %s\n", line);
}

/* bulk_rekey with a progress bar. */
static int rekey_run(store_t *st, rekey_ctx *k)
{
    int64_t n = 0;
    bulk_hooks h = {on_start, on_step, on_problem, NULL, NULL, k};
    bulk_rekey_codecs c = {k->old_c, k->new_c, k->new_zc};
    bulk_rc rc = bulk_rekey(st, &c, &h, &n);
    cli_progress_end(&k->progress);
    if (rc != BULK_OK)
        return 1;
    printf("%lld pictures rewritten\n", (long long)n);
    return 0;
}

int cli_rekey(const cli_opts *o)
{
    codec_config oc = {.key_file = o->key_file},
                 nc = {.compress = o->compress, .key_file = o->new_key_file},
                 zc = {.compress = true, .key_file = o->new_key_file};
    rekey_ctx k = {0};
    store_t *st = NULL;
    int rc = 1;
    log_set_level(LOG_WARN);
    if (o->nargs != 0)
        return cli_usage_error(o, "unexpected argument '%s'", o->args[0]);
    /* exclusive: keys are never changed under a running server */
    if (cli_open_existing(o, &st) != 0 || store_hold(st, STORE_HOLD_EXCLUSIVE) != STORE_OK)
        goto out;
    if ((o->key_file != NULL && codec_create(&oc, &k.old_c) != CB_EOK) ||
        ((o->compress || o->new_key_file != NULL) && codec_create(&nc, &k.new_c) != CB_EOK) ||
        codec_create(&zc, &k.new_zc) != CB_EOK)
        goto out;
    rc = rekey_run(st, &k);
out:
    codec_destroy(k.old_c);
    codec_destroy(k.new_c);
    codec_destroy(k.new_zc);
    store_close(st);
    return rc;
}
