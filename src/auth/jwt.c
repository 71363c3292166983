/*
 * jwt.c — verification of JWS Compact Serialization tokens (RFC 7515, 7519)
 * for "Authorization: Bearer <JWT>" (SPEC §5), see jwt.h.
 *
 * Invariants:
 *  - a verifier is immutable after jwt_create: request threads share it
 *    without locks (OpenSSL 3 allows concurrent use of an EVP_PKEY that no
 *    thread modifies);
 *  - every key is bound to exactly one algorithm when it is loaded; the
 *    token's "alg" only chooses among the keys of that algorithm and never
 *    changes how a key is used (no RSA public key as an HMAC secret);
 *  - nothing in the payload is looked at before the signature verified;
 *  - every OpenSSL object is freed on every path and the thread's OpenSSL
 *    error queue is left empty, so failures do not pile up in it.
 *
 * Key specifications are "ALG:PATH" or "ALG:KID:PATH". The middle field is
 * taken as a kid only when it is followed by ':' and holds no '/', so that
 * "RS256:/etc/keys/a:b.pem" stays a path; "RS256::a:b.pem" (empty kid)
 * spells a path with a colon and no slash.
 *
 * jwt_config.leeway_s: 0 means the default 60 s; 1..86400 as given; other
 * values are refused by jwt_create. "" for issuer, audience or user_claim
 * counts as unset.
 *
 * Refusal reasons (for the log): "malformed token", "unsupported alg",
 * "unsupported typ", "unsupported crit", "unknown kid", "bad signature",
 * "no exp claim", "expired", "not yet valid", "wrong issuer", "wrong
 * audience", "no user claim", "bad user claim" (control characters).
 */
#include "auth/jwt.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "core/text.h"

#define JWT_TOKEN_MAX 8192                /* longest token accepted, in bytes */
#define JWT_KEYFILE_MAX (64 * 1024)       /* longest key or secret file */
#define JWT_SECRET_MIN 32                 /* HS256 secrets: at least 256 bits */
#define JWT_RSA_MIN_BITS 2048             /* NIST SP 800-131A */
#define JWT_LEEWAY_DEFAULT 60             /* leeway_s == 0 */
#define JWT_LEEWAY_MAX 86400              /* a day of skew is a misconfiguration */
#define JWT_TIME_LIMIT (INT64_C(1) << 62) /* claim times clamped to +-this */
#define JWT_ES256_SIG 64                  /* raw r||s, 32 bytes each */
#define JWT_HS256_SIG 32

#define WHY_MALFORMED "malformed token"

typedef enum { ALG_RS256, ALG_ES256, ALG_HS256, ALG__COUNT } jwt_alg;

static const char *const alg_names[ALG__COUNT] = {"RS256", "ES256", "HS256"};

/* One configured key: pkey for RS256/ES256, secret for HS256. */
struct jwt_key {
    jwt_alg alg;
    char *kid; /* NULL: none */
    EVP_PKEY *pkey;
    unsigned char *secret;
    size_t secret_len;
};

struct jwt_verifier {
    struct jwt_key *keys;
    size_t nkeys;
    char *issuer;     /* NULL: not checked */
    char *audience;   /* NULL: not checked */
    char *user_claim; /* never NULL */
    int64_t leeway_s; /* 0 .. JWT_LEEWAY_MAX */
};

/* The three decoded parts of a token and the bytes the signature covers. */
struct jwt_parts {
    const unsigned char *signed_bytes; /* "header.payload" as sent */
    size_t signed_len;
    unsigned char *part[3]; /* header JSON, payload JSON, signature */
    size_t len[3];
};

/* ---- small helpers ------------------------------------------------------- */

/* Writes a message into a caller's buffer, which may be NULL or empty. */
__attribute__((format(printf, 3, 4))) static void say(char *buf, size_t cap, const char *fmt, ...)
{
    if (buf == NULL || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

/* The base64url alphabet (RFC 4648 §5), without padding. */
static bool b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static int alg_from_name(const char *s, size_t n)
{
    for (int a = 0; a < ALG__COUNT; a++)
        if (strlen(alg_names[a]) == n && memcmp(alg_names[a], s, n) == 0)
            return a;
    return -1;
}

/* NULL for NULL and for "" (an unset option in most configuration files). */
static bool dup_option(const char *s, char **out)
{
    *out = NULL;
    if (s == NULL || *s == '\0')
        return true;
    *out = strdup(s);
    return *out != NULL;
}

/* ---- loading keys -------------------------------------------------------- */

/* Reads a whole file of at most JWT_KEYFILE_MAX bytes (malloc'd). */
static unsigned char *read_file(const char *path, size_t *len, char *err, size_t cap)
{
    unsigned char *data = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        say(err, cap, "JWT key %s: %s", path, strerror(errno));
        goto out;
    }
    data = malloc(JWT_KEYFILE_MAX + 1);
    if (data == NULL) {
        say(err, cap, "JWT key %s: out of memory", path);
        goto out;
    }
    *len = fread(data, 1, JWT_KEYFILE_MAX + 1, f);
    if (ferror(f) || *len > JWT_KEYFILE_MAX) {
        say(err, cap, "JWT key %s: %s", path, ferror(f) ? "read error" : "file too large");
        free(data);
        data = NULL;
    }
out:
    if (f != NULL)
        fclose(f);
    return data;
}

/* Splits "ALG:PATH" / "ALG:KID:PATH" (see the file comment); sets k->alg
 * and k->kid and points *path into spec. */
static cb_err parse_spec(const char *spec, struct jwt_key *k, const char **path, char *err,
                         size_t cap)
{
    const char *colon = strchr(spec, ':');
    int alg = colon != NULL ? alg_from_name(spec, (size_t)(colon - spec)) : -1;
    if (alg < 0) {
        say(err, cap, "JWT key \"%s\": expected RS256:, ES256: or HS256: then a path", spec);
        return CB_EBADREQ;
    }
    k->alg = (jwt_alg)alg;
    const char *rest = colon + 1, *second = strchr(rest, ':');
    *path = rest;
    if (second != NULL && memchr(rest, '/', (size_t)(second - rest)) == NULL) {
        *path = second + 1;
        if (second > rest && (k->kid = strndup(rest, (size_t)(second - rest))) == NULL) {
            say(err, cap, "JWT key \"%s\": out of memory", spec);
            return CB_EINTERNAL;
        }
    }
    if (**path == '\0') {
        say(err, cap, "JWT key \"%s\": no path", spec);
        return CB_EBADREQ;
    }
    return CB_EOK;
}

/* HS256: the file's bytes, one trailing newline ("\n" or "\r\n") dropped. */
static cb_err take_secret(struct jwt_key *k, unsigned char *data, size_t len, const char *path,
                          char *err, size_t cap)
{
    if (len > 0 && data[len - 1] == '\n')
        len--;
    if (len > 0 && data[len - 1] == '\r')
        len--;
    if (len < JWT_SECRET_MIN) {
        say(err, cap, "JWT key %s: HS256 secret shorter than %d bytes", path, JWT_SECRET_MIN);
        return CB_EBADREQ;
    }
    /* a PEM file here is almost surely a public key: a secret anyone has */
    if (len >= 10 && memcmp(data, "-----BEGIN", 10) == 0) {
        say(err, cap, "JWT key %s: HS256 secret is a PEM file", path);
        return CB_EBADREQ;
    }
    k->secret = data;
    k->secret_len = len;
    return CB_EOK;
}

/* The public key of a PEM certificate, NULL when data is not one. */
static EVP_PKEY *key_from_certificate(const unsigned char *data, size_t len)
{
    EVP_PKEY *pkey = NULL;
    X509 *cert = NULL;
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    if (bio == NULL)
        goto out;
    cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (cert != NULL)
        pkey = X509_get_pubkey(cert);
out:
    X509_free(cert);
    BIO_free(bio);
    return pkey;
}

/* A PEM public key ("PUBLIC KEY", "RSA PUBLIC KEY") or certificate. */
static EVP_PKEY *decode_public_key(const unsigned char *data, size_t len)
{
    assert(len <= JWT_KEYFILE_MAX);
    EVP_PKEY *pkey = NULL;
    const unsigned char *p = data;
    size_t left = len;
    OSSL_DECODER_CTX *dctx =
        OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, NULL, EVP_PKEY_PUBLIC_KEY, NULL, NULL);
    if (dctx != NULL && OSSL_DECODER_from_data(dctx, &p, &left) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    OSSL_DECODER_CTX_free(dctx);
    if (pkey == NULL)
        pkey = key_from_certificate(data, len);
    return pkey;
}

/* Why the key does not fit the algorithm, NULL when it does. */
static const char *key_misfit(jwt_alg alg, EVP_PKEY *pkey)
{
    if (alg == ALG_RS256) {
        if (!EVP_PKEY_is_a(pkey, "RSA"))
            return "RS256 needs an RSA key";
        if (EVP_PKEY_get_bits(pkey) < JWT_RSA_MIN_BITS)
            return "RSA key shorter than 2048 bits";
        return NULL;
    }
    assert(alg == ALG_ES256);
    char group[64] = "";
    size_t glen = 0;
    if (!EVP_PKEY_is_a(pkey, "EC") ||
        EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &glen) != 1)
        return "ES256 needs an EC key";
    if (strcmp(group, SN_X9_62_prime256v1) != 0)
        return "ES256 needs a P-256 key";
    return NULL;
}

static cb_err take_public_key(struct jwt_key *k, const unsigned char *data, size_t len,
                              const char *path, char *err, size_t cap)
{
    EVP_PKEY *pkey = decode_public_key(data, len);
    if (pkey == NULL) {
        say(err, cap, "JWT key %s: not a PEM public key or certificate", path);
        return CB_EBADREQ;
    }
    const char *why = key_misfit(k->alg, pkey);
    if (why != NULL) {
        say(err, cap, "JWT key %s: %s", path, why);
        EVP_PKEY_free(pkey);
        return CB_EBADREQ;
    }
    k->pkey = pkey;
    return CB_EOK;
}

static cb_err load_key(const char *spec, struct jwt_key *k, char *err, size_t cap)
{
    const char *path = NULL;
    unsigned char *data = NULL;
    size_t len = 0;
    cb_err rc = parse_spec(spec, k, &path, err, cap);
    if (rc != CB_EOK)
        goto out;
    rc = CB_EBADREQ;
    if ((data = read_file(path, &len, err, cap)) == NULL)
        goto out;
    if (k->alg == ALG_HS256) {
        rc = take_secret(k, data, len, path, err, cap);
        if (rc == CB_EOK)
            data = NULL; /* now k->secret */
    } else {
        rc = take_public_key(k, data, len, path, err, cap);
    }
out:
    if (data != NULL) {
        OPENSSL_cleanse(data, len);
        free(data);
    }
    ERR_clear_error();
    return rc;
}

/* ---- the verifier -------------------------------------------------------- */

static cb_err copy_options(const jwt_config *cfg, jwt_verifier *v, char *err, size_t cap)
{
    v->leeway_s = cfg->leeway_s == 0 ? JWT_LEEWAY_DEFAULT : cfg->leeway_s;
    if (v->leeway_s < 0 || v->leeway_s > JWT_LEEWAY_MAX) {
        say(err, cap, "JWT leeway must be 0 (default %d s) to %d seconds", JWT_LEEWAY_DEFAULT,
            JWT_LEEWAY_MAX);
        return CB_EBADREQ;
    }
    if (!dup_option(cfg->issuer, &v->issuer) || !dup_option(cfg->audience, &v->audience) ||
        !dup_option(cfg->user_claim, &v->user_claim) ||
        (v->user_claim == NULL && (v->user_claim = strdup("sub")) == NULL)) {
        say(err, cap, "JWT: out of memory");
        return CB_EINTERNAL;
    }
    return CB_EOK;
}

cb_err jwt_create(const jwt_config *cfg, jwt_verifier **out, char *err, size_t err_cap)
{
    assert(cfg != NULL && out != NULL);
    assert(cfg->nkeys == 0 || cfg->keys != NULL);
    *out = NULL;
    cb_err rc = CB_EINTERNAL;
    jwt_verifier *v = calloc(1, sizeof(*v));
    if (v == NULL || (v->keys = calloc(cfg->nkeys + 1, sizeof(*v->keys))) == NULL) {
        say(err, err_cap, "JWT: out of memory");
        goto out;
    }
    if ((rc = copy_options(cfg, v, err, err_cap)) != CB_EOK)
        goto out;
    for (; v->nkeys < cfg->nkeys; v->nkeys++) {
        /* counted before loading, so that jwt_destroy frees a partial key */
        rc = load_key(cfg->keys[v->nkeys], &v->keys[v->nkeys], err, err_cap);
        if (rc != CB_EOK) {
            v->nkeys++;
            goto out;
        }
    }
    *out = v;
    v = NULL;
out:
    jwt_destroy(v);
    return rc;
}

void jwt_destroy(jwt_verifier *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->nkeys; i++) {
        struct jwt_key *k = &v->keys[i];
        EVP_PKEY_free(k->pkey);
        if (k->secret != NULL)
            OPENSSL_cleanse(k->secret, k->secret_len);
        free(k->secret);
        free(k->kid);
    }
    free(v->keys);
    free(v->issuer);
    free(v->audience);
    free(v->user_claim);
    free(v);
}

/* ---- the token's shape --------------------------------------------------- */

int jwt_looks_like(const char *text)
{
    if (text == NULL || strncmp(text, "8A:", 3) == 0)
        return 0;
    size_t seg = 0, dots = 0;
    for (const char *c = text;; c++) {
        if (*c != '.' && *c != '\0') {
            if (!b64url_char(*c))
                return 0;
            seg++;
            continue;
        }
        if (seg == 0)
            return 0;
        if (*c == '\0')
            return dots == 2;
        if (++dots > 2)
            return 0;
        seg = 0;
    }
}

/* Strict base64url without padding: the alphabet only, and no length or
 * trailing bits that a canonical encoder would not produce. */
static bool decode_part(arena_t *arena, const char *s, size_t n, unsigned char **out,
                        size_t *out_len)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!b64url_char(s[i]))
            return false;
    size_t cap = n / 4 * 3 + 3;
    *out = arena_alloc(arena, cap);
    return sodium_base642bin(*out, cap, s, n, NULL, out_len, NULL,
                             sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0;
}

/* header.payload.signature: exactly two dots, each part decoded. */
static bool split_token(arena_t *arena, const char *token, struct jwt_parts *p)
{
    if (token == NULL)
        return false;
    size_t len = strnlen(token, JWT_TOKEN_MAX + 1);
    if (len > JWT_TOKEN_MAX)
        return false;
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 =
        dot1 != NULL ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (dot2 == NULL)
        return false;
    const char *start[3] = {token, dot1 + 1, dot2 + 1};
    const char *end[3] = {dot1, dot2, token + len};
    for (int i = 0; i < 3; i++)
        if (!decode_part(arena, start[i], (size_t)(end[i] - start[i]), &p->part[i], &p->len[i]))
            return false; /* a third dot fails here: '.' is not base64url */
    p->signed_bytes = (const unsigned char *)token;
    p->signed_len = (size_t)(dot2 - token);
    return true;
}

/* ---- signatures ---------------------------------------------------------- */

static bool verify_digest(EVP_PKEY *pkey, const unsigned char *sig, size_t sig_len,
                          const struct jwt_parts *p)
{
    bool ok = false;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) != 1)
        goto out;
    ok = EVP_DigestVerify(ctx, sig, sig_len, p->signed_bytes, p->signed_len) == 1;
out:
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* JWS carries ECDSA signatures as raw r||s (RFC 7518 §3.4); OpenSSL wants
 * DER. NULL when raw has the wrong size. */
static unsigned char *es256_der(const unsigned char *raw, size_t raw_len, size_t *der_len)
{
    unsigned char *der = NULL;
    BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG *es = ECDSA_SIG_new();
    if (es == NULL || raw_len != JWT_ES256_SIG)
        goto out;
    r = BN_bin2bn(raw, JWT_ES256_SIG / 2, NULL);
    s = BN_bin2bn(raw + JWT_ES256_SIG / 2, JWT_ES256_SIG / 2, NULL);
    if (r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1)
        goto out;
    r = s = NULL; /* owned by es now */
    int n = i2d_ECDSA_SIG(es, &der);
    if (n <= 0) {
        der = NULL;
        goto out;
    }
    *der_len = (size_t)n;
out:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return der;
}

static bool verify_es256(EVP_PKEY *pkey, const struct jwt_parts *p)
{
    size_t der_len = 0;
    unsigned char *der = es256_der(p->part[2], p->len[2], &der_len);
    bool ok = der != NULL && verify_digest(pkey, der, der_len, p);
    OPENSSL_free(der);
    return ok;
}

static bool verify_hs256(const struct jwt_key *k, const struct jwt_parts *p)
{
    assert(k->secret_len <= JWT_KEYFILE_MAX);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (p->len[2] != JWT_HS256_SIG || HMAC(EVP_sha256(), k->secret, (int)k->secret_len,
                                           p->signed_bytes, p->signed_len, mac, &mac_len) == NULL)
        return false;
    bool ok = mac_len == JWT_HS256_SIG && CRYPTO_memcmp(mac, p->part[2], JWT_HS256_SIG) == 0;
    OPENSSL_cleanse(mac, sizeof mac);
    return ok;
}

static bool verify_with(const struct jwt_key *k, const struct jwt_parts *p)
{
    bool ok;
    switch (k->alg) {
    case ALG_RS256:
        ok = verify_digest(k->pkey, p->part[2], p->len[2], p);
        break;
    case ALG_ES256:
        ok = verify_es256(k->pkey, p);
        break;
    default:
        assert(k->alg == ALG_HS256);
        ok = verify_hs256(k, p);
        break;
    }
    ERR_clear_error();
    return ok;
}

static bool alg_has_kids(const jwt_verifier *v, jwt_alg alg)
{
    for (size_t i = 0; i < v->nkeys; i++)
        if (v->keys[i].alg == alg && v->keys[i].kid != NULL)
            return true;
    return false;
}

/* With a "kid" and keys that carry kids, only the key of that kid is
 * tried; otherwise every key of the algorithm. */
static const char *verify_signature(const jwt_verifier *v, jwt_alg alg, const char *kid,
                                    const struct jwt_parts *p)
{
    bool by_kid = kid != NULL && alg_has_kids(v, alg), tried = false;
    for (size_t i = 0; i < v->nkeys; i++) {
        const struct jwt_key *k = &v->keys[i];
        if (k->alg != alg || (by_kid && (k->kid == NULL || strcmp(k->kid, kid) != 0)))
            continue;
        tried = true;
        if (verify_with(k, p))
            return NULL;
    }
    return tried ? "bad signature" : "unknown kid";
}

/* ---- header -------------------------------------------------------------- */

/* "JWT" (RFC 7519 §5.1) or "at+jwt" (RFC 9068 access tokens), either with
 * the optional "application/" prefix, in any case. */
static bool typ_ok(const json_t *typ)
{
    if (typ == NULL)
        return true;
    if (!json_is_string(typ))
        return false;
    const char *s = json_string_value(typ);
    size_t n = json_string_length(typ);
    if (n > 12 && strncasecmp(s, "application/", 12) == 0) {
        s += 12;
        n -= 12;
    }
    return text_ieq(s, n, "JWT") || text_ieq(s, n, "at+jwt");
}

static const char *check_header(const jwt_verifier *v, const json_t *hdr, jwt_alg *alg,
                                const char **kid)
{
    const json_t *a = json_object_get(hdr, "alg"), *k = json_object_get(hdr, "kid");
    if (!json_is_string(a) || (k != NULL && !json_is_string(k)))
        return WHY_MALFORMED;
    if (!typ_ok(json_object_get(hdr, "typ")))
        return "unsupported typ";
    if (json_object_get(hdr, "crit") != NULL)
        return "unsupported crit";
    int found = alg_from_name(json_string_value(a), json_string_length(a));
    bool configured = false;
    for (size_t i = 0; found >= 0 && i < v->nkeys; i++)
        configured = configured || v->keys[i].alg == (jwt_alg)found;
    if (!configured)
        return "unsupported alg";
    *alg = (jwt_alg)found;
    *kid = k != NULL ? json_string_value(k) : NULL;
    return NULL;
}

static json_t *load_object(const unsigned char *data, size_t len)
{
    json_t *j = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL);
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

static const char *check_header_and_signature(const jwt_verifier *v, const struct jwt_parts *p)
{
    jwt_alg alg = ALG_RS256;
    const char *kid = NULL, *why = WHY_MALFORMED;
    json_t *hdr = load_object(p->part[0], p->len[0]);
    if (hdr == NULL)
        goto out;
    why = check_header(v, hdr, &alg, &kid);
    if (why == NULL)
        why = verify_signature(v, alg, kid, p); /* kid points into hdr */
out:
    json_decref(hdr);
    return why;
}

/* ---- claims -------------------------------------------------------------- */

/* A NumericDate (integer or real) rounded up to whole seconds, which keeps
 * "now < exp" and "now >= nbf" exact for whole-second now, and clamped so
 * that adding the leeway cannot overflow. */
static bool claim_time(const json_t *j, int64_t *out)
{
    if (json_is_integer(j)) {
        json_int_t t = json_integer_value(j);
        *out = t > JWT_TIME_LIMIT ? JWT_TIME_LIMIT : t < -JWT_TIME_LIMIT ? -JWT_TIME_LIMIT : t;
        return true;
    }
    if (!json_is_real(j))
        return false;
    double d = json_real_value(j); /* finite: jansson refuses NaN and overflow */
    if (d >= (double)JWT_TIME_LIMIT || d <= -(double)JWT_TIME_LIMIT) {
        *out = d > 0 ? JWT_TIME_LIMIT : -JWT_TIME_LIMIT;
        return true;
    }
    int64_t t = (int64_t)d; /* toward zero; then up to the ceiling */
    *out = (double)t < d ? t + 1 : t;
    return true;
}

static const char *check_times(const jwt_verifier *v, const json_t *claims, int64_t now_s)
{
    int64_t exp, nbf;
    const json_t *e = json_object_get(claims, "exp"), *n = json_object_get(claims, "nbf");
    if (e == NULL)
        return "no exp claim";
    if (!claim_time(e, &exp) || (n != NULL && !claim_time(n, &nbf)))
        return WHY_MALFORMED;
    if (now_s >= exp + v->leeway_s)
        return "expired";
    if (n != NULL && now_s < nbf - v->leeway_s)
        return "not yet valid";
    return NULL;
}

static bool string_is(const json_t *j, const char *want)
{
    return json_is_string(j) && json_string_length(j) == strlen(want) &&
           memcmp(json_string_value(j), want, strlen(want)) == 0;
}

static const char *check_issuer_audience(const jwt_verifier *v, const json_t *claims)
{
    if (v->issuer != NULL && !string_is(json_object_get(claims, "iss"), v->issuer))
        return "wrong issuer";
    if (v->audience == NULL)
        return NULL;
    const json_t *aud = json_object_get(claims, "aud");
    if (string_is(aud, v->audience))
        return NULL;
    for (size_t i = 0; i < json_array_size(aud); i++)
        if (string_is(json_array_get(aud, i), v->audience))
            return NULL;
    return "wrong audience";
}

/* The user name is copied to the arena; control characters are refused so
 * that the name can be written to the log as it is. */
static const char *take_user(const jwt_verifier *v, const json_t *claims, arena_t *arena,
                             const char **user)
{
    const json_t *u = json_object_get(claims, v->user_claim);
    size_t n = json_string_length(u); /* 0 when not a string */
    if (!json_is_string(u) || n == 0)
        return "no user claim";
    const char *s = json_string_value(u);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return "bad user claim";
    *user = arena_strndup(arena, s, n);
    return NULL;
}

static const char *check_claims(const jwt_verifier *v, const struct jwt_parts *p, arena_t *arena,
                                int64_t now_s, const char **user)
{
    const char *why = WHY_MALFORMED;
    json_t *claims = load_object(p->part[1], p->len[1]);
    if (claims == NULL)
        goto out;
    why = check_times(v, claims, now_s);
    if (why == NULL)
        why = check_issuer_audience(v, claims);
    if (why == NULL)
        why = take_user(v, claims, arena, user);
out:
    json_decref(claims);
    return why;
}

/* ---- verification -------------------------------------------------------- */

cb_err jwt_verify(const jwt_verifier *v, arena_t *arena, const char *token, int64_t now_s,
                  const char **user, char *reason, size_t reason_cap)
{
    assert(v != NULL && arena != NULL && user != NULL);
    *user = NULL;
    struct jwt_parts p = {0};
    const char *why = WHY_MALFORMED;
    if (split_token(arena, token, &p))
        why = check_header_and_signature(v, &p);
    if (why == NULL)
        why = check_claims(v, &p, arena, now_s, user);
    if (why == NULL) {
        assert(*user != NULL && **user != '\0');
        return CB_EOK;
    }
    *user = NULL;
    say(reason, reason_cap, "%s", why);
    return CB_EUNAUTH;
}
