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
    if (o->nargs != 1) {
        cli_usage(stderr);
        return 2;
    }
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

/* Decodes with the old key, or (a run interrupted earlier) the new one. */
static cb_err decode_any(rekey_ctx *k, const void *in, size_t len, bool zipped, bool encrypted,
                         void **out, size_t *out_len)
{
    if (!zipped && !encrypted) {
        *out = malloc(len ? len : 1);
        if (*out == NULL)
            return CB_EINTERNAL;
        memcpy(*out, in, len);
        *out_len = len;
        return CB_EOK;
    }
    cb_err e = CB_EUNAVAILABLE;
    if (k->old_c != NULL)
        e = codec_decode(k->old_c, in, len, zipped, encrypted, out, out_len);
    if (e != CB_EOK && k->new_c != NULL)
        e = codec_decode(k->new_c, in, len, zipped, encrypted, out, out_len);
    return e;
}

/* What a codec failure tells the store about one picture: a full disk or
 * our own failure as such; bytes that decode with neither key are not
 * what the store should hold. */
static store_err rekey_failure(cb_err e)
{
    switch (e) {
    case CB_EOK:
        return STORE_OK;
    case CB_ENOSPACE:
        return STORE_NO_SPACE;
    case CB_ETOOLARGE:
        return STORE_TOO_LARGE;
    case CB_EINTERNAL:
        return STORE_INTERNAL;
    default:
        return STORE_CORRUPT;
    }
}

static store_err rekey_one(void *ctx, const void *in, size_t len, bool zipped, bool encrypted,
                           void **out, size_t *out_len, bool *out_zipped, bool *out_encrypted)
{
    rekey_ctx *k = ctx;
    void *plain = NULL;
    size_t plain_len = 0;
    cli_progress_add(&k->progress, 1, (int64_t)len);
    cb_err e = decode_any(k, in, len, zipped, encrypted, &plain, &plain_len);
    if (e != CB_EOK)
        return rekey_failure(e);
    *out_zipped = *out_encrypted = false;
    *out = NULL;
    codec_t *enc = zipped ? k->new_zc : k->new_c; /* compression stays where it was */
    if (enc != NULL)
        e = codec_encode(enc, plain, plain_len, out, out_len, out_zipped, out_encrypted);
    if (e == CB_EOK && *out == NULL) { /* stored as it is */
        *out = plain;
        *out_len = plain_len;
        plain = NULL;
    }
    free(plain);
    return rekey_failure(e);
}

static int rekey_run(store_t *st, rekey_ctx *k)
{
    int64_t n = 0;
    cli_progress_start(&k->progress, stderr, "rekey", "pictures and variants", -1, -1);
    store_err e = store_rewrite_all(st, rekey_one, k, &n);
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
    if (o->nargs != 0) {
        cli_usage(stderr);
        return 2;
    }
    /* exclusive: keys are never changed under a running server */
    if (store_open(o->db, NULL, &st) != STORE_OK ||
        store_hold(st, STORE_HOLD_EXCLUSIVE) != STORE_OK)
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
