/*
 * keys.c — the encryption key of a data set (bulk.h): the fingerprint the
 * store records of the key its pictures are encrypted with, and moving
 * every picture and variant to another key (`crmblob rekey`, the rekey
 * job).
 *
 * Invariants: the fingerprint is recorded only once every value is
 * rewritten (a stopped or failed rekey leaves the old one: the server and
 * `crmblob rekey` then still take the old key, and a run again finishes);
 * an empty record means "not encrypted" (a rekey to no key).
 */
#include <string.h>

#include "bulk/bulk.h"

#define FINGERPRINT_META "key_fingerprint"

int bulk_key_recorded(store_t *st, unsigned char fp[CODEC_FINGERPRINT_BYTES])
{
    arena_t *a = arena_create();
    void *v = NULL;
    size_t n = 0;
    if (a == NULL)
        return -1;
    store_err e = store_meta_get(st, a, FINGERPRINT_META, &v, &n);
    int rc = e == STORE_ABSENT || (e == STORE_OK && n == 0)  ? 0 /* none, or removed by rekey */
             : e != STORE_OK || n != CODEC_FINGERPRINT_BYTES ? -1
                                                             : 1;
    if (rc == 1)
        memcpy(fp, v, CODEC_FINGERPRINT_BYTES);
    arena_destroy(a);
    return rc;
}

store_err bulk_key_record(store_t *st, const codec_t *c)
{
    unsigned char fp[CODEC_FINGERPRINT_BYTES] = {0};
    size_t n = 0;
    if (c != NULL && codec_encrypts(c)) {
        codec_fingerprint(c, fp);
        n = sizeof(fp);
    }
    return store_meta_put(st, FINGERPRINT_META, fp, n);
}

typedef struct {
    const bulk_hooks *h;
    bool stopped;
} rekey_run;

static void on_value(void *ctx, int64_t bytes)
{
    rekey_run *k = ctx;
    if (k->h->step != NULL)
        k->h->step(k->h->ctx, 1, bytes);
}

static bool on_stop(void *ctx)
{
    rekey_run *k = ctx;
    if (k->h->cancelled != NULL && k->h->cancelled(k->h->ctx))
        k->stopped = true;
    return k->stopped;
}

bulk_rc bulk_rekey(store_t *st, const bulk_rekey_codecs *c, const bulk_hooks *h, int64_t *count)
{
    rekey_run k = {.h = h};
    char line[160];
    *count = 0;
    if (h->start != NULL)
        h->start(h->ctx, "rekey", -1);
    store_recode how = {.old = c->old,
                        .new_ = c->new_,
                        .new_z = c->new_z,
                        .progress = on_value,
                        .stop = on_stop,
                        .ctx = &k};
    store_err e = store_recode_all(st, &how, count);
    if (k.stopped)
        return BULK_CANCELLED;
    if (e == STORE_OK && (e = bulk_key_record(st, c->new_)) == STORE_OK)
        return BULK_OK;
    snprintf(line, sizeof(line), "rekey stopped after %lld pictures: %s (run it again to finish)",
             (long long)*count, store_err_name(e));
    if (h->problem != NULL)
        h->problem(h->ctx, line);
    return BULK_FAILED;
}
