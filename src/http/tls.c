/*
 * tls.c — the TLS certificate and key (tls.h, http.h): read, checked, in
 * force as one set, replaced by a reload without dropping a connection.
 *
 * Invariants: t->current is never NULL once opened; t->mu guards it and
 * every set's pins and retired flag; a set is freed exactly once, when it
 * is retired with no pin left (or, current, at http_tls_free). A set's
 * chain and key never change after loading, so a pinned set is read
 * without the lock.
 *
 * The key is checked against the certificate by comparing their public
 * keys (DER): a mismatch is refused at start and at a reload, where
 * GnuTLS itself would only fail each handshake later.
 */
#include "http/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/io.h"
#include "core/log.h"

#define TLS_CHAIN_MAX 16             /* certificates in a chain */
#define TLS_FILE_MAX (1024 * 1024)   /* bytes of a PEM file */
#define DIGEST_LEN 32                /* SHA-256 of both files: "unchanged" */

struct tls_set {
    gnutls_pcert_st pcerts[TLS_CHAIN_MAX];
    unsigned npcerts;
    gnutls_privkey_t key;
    unsigned char digest[DIGEST_LEN];
    unsigned pins;  /* open connections that use it */
    bool retired;   /* no longer current: freed at its last unpin */
    bool expired;   /* the first certificate's notAfter has passed */
    char summary[320]; /* subject and expiry, for the log */
};

struct http_tls {
    char *cert_file, *key_file;
    pthread_mutex_t mu;
    tls_set *current;
};

/* ---- reading ---- */

/* The whole file into out (malloc'd), at most TLS_FILE_MAX bytes; 0, or
 * -1 with why set. */
static int read_file(const char *path, gnutls_datum_t *out, char *why, size_t cap)
{
    int rc = -1;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not hang the start */
    out->data = NULL;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(why, cap, "cannot read it: %s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size == 0 || st.st_size > TLS_FILE_MAX) {
        snprintf(why, cap, "not a PEM file (%s)",
                 !S_ISREG(st.st_mode) ? "not a regular file"
                 : st.st_size == 0    ? "empty"
                                      : "larger than 1 MiB");
        goto out;
    }
    out->size = (unsigned)st.st_size;
    if ((out->data = gnutls_malloc(out->size + 1)) == NULL ||
        io_pread_full(fd, out->data, out->size, 0) != out->size) {
        snprintf(why, cap, "cannot read it: %s", errno ? strerror(errno) : "it shrank");
        goto out;
    }
    out->data[out->size] = '\0';
    rc = 0;
out:
    if (rc != 0) {
        gnutls_free(out->data);
        out->data = NULL;
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ---- a set ---- */

static void set_free(tls_set *s)
{
    if (s == NULL)
        return;
    for (unsigned i = 0; i < s->npcerts; i++)
        gnutls_pcert_deinit(&s->pcerts[i]);
    gnutls_privkey_deinit(s->key);
    free(s);
}

static int load_chain(tls_set *s, const gnutls_datum_t *pem, char *why, size_t cap)
{
    s->npcerts = TLS_CHAIN_MAX;
    int e = gnutls_pcert_list_import_x509_raw(s->pcerts, &s->npcerts, pem, GNUTLS_X509_FMT_PEM,
                                              GNUTLS_X509_CRT_LIST_SORT);
    if (e < 0 || s->npcerts == 0) {
        s->npcerts = 0;
        snprintf(why, cap, "not a PEM certificate (%s)",
                 e < 0 ? gnutls_strerror(e) : "no certificate in it");
        return -1;
    }
    return 0;
}

static int load_key(tls_set *s, const gnutls_datum_t *pem, char *why, size_t cap)
{
    int e = gnutls_privkey_init(&s->key);
    if (e >= 0)
        e = gnutls_privkey_import_x509_raw(s->key, pem, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (e < 0) {
        snprintf(why, cap, "not a PEM private key, or an encrypted one (%s)", gnutls_strerror(e));
        return -1;
    }
    return 0;
}

/* A public key as DER (gnutls_free it); -1 on failure. */
static int pubkey_der(gnutls_pubkey_t pk, gnutls_datum_t *out)
{
    return gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, out) < 0 ? -1 : 0;
}

/* Is s->key the private key of the chain's first certificate? */
static bool key_matches(const tls_set *s)
{
    gnutls_pubkey_t mine = NULL;
    gnutls_datum_t a = {0}, b = {0};
    bool same = false;
    if (gnutls_pubkey_init(&mine) < 0 || gnutls_pubkey_import_privkey(mine, s->key, 0, 0) < 0 ||
        pubkey_der(mine, &a) != 0 || pubkey_der(s->pcerts[0].pubkey, &b) != 0)
        goto out;
    same = a.size == b.size && memcmp(a.data, b.data, a.size) == 0;
out:
    gnutls_free(a.data);
    gnutls_free(b.data);
    gnutls_pubkey_deinit(mine);
    return same;
}

/* "CN=...,O=..., valid until 2027-01-01 00:00 UTC" (and "EXPIRED" when so). */
static void describe(tls_set *s)
{
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t dn = {0};
    char until[40] = "?";
    if (gnutls_x509_crt_init(&crt) >= 0 &&
        gnutls_x509_crt_import(crt, &s->pcerts[0].cert, GNUTLS_X509_FMT_DER) >= 0) {
        gnutls_x509_crt_get_dn3(crt, &dn, 0);
        time_t t = gnutls_x509_crt_get_expiration_time(crt);
        struct tm tm;
        if (t != (time_t)-1 && gmtime_r(&t, &tm) != NULL)
            strftime(until, sizeof(until), "%Y-%m-%d %H:%M UTC", &tm);
        s->expired = t != (time_t)-1 && t < time(NULL);
        if (s->expired)
            snprintf(until + strlen(until), sizeof(until) - strlen(until), " (EXPIRED)");
    }
    snprintf(s->summary, sizeof(s->summary), "%.200s, valid until %s, %u certificate(s)",
             dn.data != NULL ? (const char *)dn.data : "?", until, s->npcerts);
    gnutls_free(dn.data);
    gnutls_x509_crt_deinit(crt);
}

static void digest_of(const gnutls_datum_t *cert, const gnutls_datum_t *key,
                      unsigned char out[DIGEST_LEN])
{
    gnutls_hash_hd_t h;
    memset(out, 0, DIGEST_LEN);
    if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
        return;
    gnutls_hash(h, cert->data, cert->size);
    gnutls_hash(h, key->data, key->size);
    gnutls_hash_deinit(h, out);
}

/* Reads both files into a new set; NULL with why ("--tls-cert FILE: ...")
 * when one cannot be used. */
static tls_set *set_load(const char *cert_file, const char *key_file, char *why, size_t cap)
{
    gnutls_datum_t cert = {0}, key = {0};
    char reason[256];
    const char *opt = "--tls-cert", *file = cert_file;
    tls_set *s = calloc(1, sizeof(*s));
    bool ok = s != NULL && read_file(cert_file, &cert, reason, sizeof(reason)) == 0 &&
              load_chain(s, &cert, reason, sizeof(reason)) == 0;
    if (ok) {
        opt = "--tls-key", file = key_file;
        ok = read_file(key_file, &key, reason, sizeof(reason)) == 0 &&
             load_key(s, &key, reason, sizeof(reason)) == 0;
    }
    if (ok && !(ok = key_matches(s)))
        snprintf(reason, sizeof(reason), "not the private key of the certificate in --tls-cert %s",
                 cert_file);
    if (ok) {
        digest_of(&cert, &key, s->digest);
        describe(s);
    } else {
        snprintf(why, cap, "%s %s: %s", opt, file, s == NULL ? "out of memory" : reason);
        set_free(s);
        s = NULL;
    }
    gnutls_free(cert.data);
    gnutls_free(key.data);
    return s;
}

/* ---- in force ---- */

cb_err http_tls_open(const char *cert_file, const char *key_file, http_tls **out)
{
    char why[RELOAD_MSG_MAX];
    *out = NULL;
    tls_set *s = set_load(cert_file, key_file, why, sizeof(why));
    if (s == NULL) {
        log_error("%s", why);
        return CB_EBADREQ;
    }
    http_tls *t = calloc(1, sizeof(*t));
    if (t == NULL || (t->cert_file = strdup(cert_file)) == NULL ||
        (t->key_file = strdup(key_file)) == NULL) {
        log_error("out of memory reading the TLS certificate");
        set_free(s);
        http_tls_free(t);
        return CB_EINTERNAL;
    }
    pthread_mutex_init(&t->mu, NULL);
    t->current = s;
    /* served all the same (clients decide), but said louder */
    log_msg(s->expired ? LOG_WARN : LOG_INFO, "TLS certificate %s", s->summary);
    *out = t;
    return CB_EOK;
}

void http_tls_free(http_tls *t)
{
    if (t == NULL)
        return;
    if (t->current != NULL) {
        set_free(t->current);
        pthread_mutex_destroy(&t->mu);
    }
    free(t->cert_file);
    free(t->key_file);
    free(t);
}

tls_set *http_tls_pin(http_tls *t)
{
    pthread_mutex_lock(&t->mu);
    tls_set *s = t->current;
    s->pins++;
    pthread_mutex_unlock(&t->mu);
    return s;
}

void http_tls_unpin(http_tls *t, tls_set *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    bool last = --s->pins == 0 && s->retired;
    pthread_mutex_unlock(&t->mu);
    if (last)
        set_free(s);
}

int http_tls_use(const tls_set *s, gnutls_pcert_st **pcert, unsigned *npcert,
                 gnutls_privkey_t *key)
{
    if (s == NULL)
        return -1;
    *pcert = (gnutls_pcert_st *)s->pcerts; /* GnuTLS only reads them */
    *npcert = s->npcerts;
    *key = s->key;
    return 0;
}

/* Puts s in force; the set it replaces goes when its last connection does. */
static void put_in_force(http_tls *t, tls_set *s)
{
    pthread_mutex_lock(&t->mu);
    tls_set *old = t->current;
    t->current = s;
    old->retired = true;
    bool unused = old->pins == 0;
    pthread_mutex_unlock(&t->mu);
    if (unused)
        set_free(old);
}

/* The reload step (reload.h). Only the main thread replaces current, so
 * reading current->digest here needs no lock. */
static reload_result tls_reload(void *ctx, char *msg, size_t cap)
{
    http_tls *t = ctx;
    tls_set *s = set_load(t->cert_file, t->key_file, msg, cap);
    if (s == NULL)
        return RELOAD_FAILED;
    if (memcmp(s->digest, t->current->digest, DIGEST_LEN) == 0) {
        snprintf(msg, cap, "%s", t->current->summary);
        set_free(s);
        return RELOAD_UNCHANGED;
    }
    snprintf(msg, cap, "%s", s->summary);
    put_in_force(t, s);
    return RELOAD_CHANGED;
}

int http_tls_register(http_tls *t, reload_registry *r)
{
    return reload_add(r, "TLS certificate", tls_reload, t);
}
