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

#include "cli/cli.h"
#include "core/log.h"

#define FINGERPRINT_META "key_fingerprint"

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

/* 1 the store names a key (its fingerprint in fp), 0 none, -1 error. */
static int recorded_key(store_t *st, unsigned char fp[CODEC_FINGERPRINT_BYTES])
{
    arena_t *a = arena_create();
    void *v = NULL;
    size_t n = 0;
    store_err e = store_meta_get(st, a, FINGERPRINT_META, &v, &n);
    int rc = e == STORE_ABSENT || (e == STORE_OK && n == 0)  ? 0 /* none, or removed by rekey */
             : e != STORE_OK || n != CODEC_FINGERPRINT_BYTES ? -1
                                                             : 1;
    if (rc == 1)
        memcpy(fp, v, CODEC_FINGERPRINT_BYTES);
    arena_destroy(a);
    return rc;
}

static store_err record_key(store_t *st, const codec_t *c)
{
    unsigned char fp[CODEC_FINGERPRINT_BYTES] = {0};
    size_t n = 0;
    if (c != NULL && codec_encrypts(c)) {
        codec_fingerprint(c, fp);
        n = sizeof(fp);
    }
    return store_meta_put(st, FINGERPRINT_META, fp, n);
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
    int rec = recorded_key(st, want);
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
    return rec == 0 && record_key(st, c) != STORE_OK;
}

typedef struct {
    codec_t *old_c;  /* may be NULL: data not encrypted */
    codec_t *new_c;  /* the new key (may be NULL), compressing only with --compress */
    codec_t *new_zc; /* the new key, compressing: for what was compressed before */
    cli_progress progress;
} rekey_ctx;

static void rekey_progress(void *ctx, int64_t bytes)
{
    cli_progress_add(ctx, 1, bytes);
}

static int rekey_run(store_t *st, rekey_ctx *k)
{
    int64_t n = 0;
    cli_progress_start(&k->progress, stderr, "rekey", "pictures and variants", -1, -1);
    store_recode how = {.old = k->old_c,
                        .new_ = k->new_c,
                        .new_z = k->new_zc,
                        .progress = rekey_progress,
                        .ctx = &k->progress};
    store_err e = store_recode_all(st, &how, &n);
    cli_progress_end(&k->progress);
    if (e != STORE_OK) {
        fprintf(stderr, "crmblob: rekey stopped after %lld pictures: %s (run it again to finish)\n",
                (long long)n, store_err_name(e));
        return 1;
    }
    if (record_key(st, k->new_c) != STORE_OK)
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
