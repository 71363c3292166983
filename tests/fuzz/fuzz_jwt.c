/*
 * fuzz_jwt.c — JWT verification, jwt_verify(), against two HS256 keys
 * (one with kid "k1", one without) written to temporary files at start,
 * with an issuer and an audience required.
 *
 * Input: byte 0 chooses the mode. Even: the rest is the token as sent.
 * Odd: the rest is a header JSON and a payload JSON separated by a NUL;
 * the harness encodes them and signs them with key A or B (bit 1 of
 * byte 0), so that the claim checks behind the signature are fuzzed too.
 *
 * Invariants beyond "no crash":
 *  - accepted only with a correct signature: the signature part is the
 *    HMAC-SHA256 of "header.payload" under key A (kid "k1" or none) or B
 *    (no kid), computed here independently;
 *  - accepted only with "alg" "HS256", an "exp", the issuer and audience,
 *    and then *user is the "sub" claim (non-empty, no control character);
 *  - refused with a reason and *user NULL.
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include "auth/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define NOW 1800000000 /* 2027-01-15 */
#define ISSUER "https://idp.example"
#define AUDIENCE "crmblob"
#define B64URL sodium_base64_VARIANT_URLSAFE_NO_PADDING

static const char secret_a[] = "crmblob-fuzz-hs256-secret-A-0123456789abcdef";
static const char secret_b[] = "crmblob-fuzz-hs256-secret-B-0123456789abcdef";
static jwt_verifier *verifier;

static void write_key(char *path, const char *secret)
{
    int fd = mkstemp(path);
    assert(fd >= 0 && write(fd, secret, strlen(secret)) == (ssize_t)strlen(secret));
    close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char path_a[] = "/tmp/crmblob-fuzz-jwt-XXXXXX", path_b[] = "/tmp/crmblob-fuzz-jwt-XXXXXX";
    write_key(path_a, secret_a);
    write_key(path_b, secret_b);
    char spec_a[64], spec_b[64], err[256];
    snprintf(spec_a, sizeof(spec_a), "HS256:k1:%s", path_a);
    snprintf(spec_b, sizeof(spec_b), "HS256:%s", path_b);
    const char *keys[] = {spec_a, spec_b};
    jwt_config cfg = {.keys = keys, .nkeys = 2, .issuer = ISSUER, .audience = AUDIENCE};
    if (jwt_create(&cfg, &verifier, err, sizeof(err)) != CB_EOK) {
        fprintf(stderr, "fuzz_jwt: %s\n", err);
        abort();
    }
    unlink(path_a); /* read once by jwt_create */
    unlink(path_b);
    return 0;
}

static void hmac(const char *secret, const char *msg, size_t n, unsigned char out[32])
{
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg, n, out, &len);
    assert(len == 32);
}

/* base64url of p[0..n), malloc'd. */
static char *b64(const void *p, size_t n)
{
    size_t cap = sodium_base64_ENCODED_LEN(n, B64URL);
    char *s = malloc(cap);
    sodium_bin2base64(s, cap, p, n, B64URL);
    return s;
}

/* The JSON object a base64url part decodes to, or NULL. */
static json_t *part_json(const char *s, size_t n)
{
    unsigned char *raw = malloc(n + 1);
    size_t len = 0;
    json_t *j = NULL;
    if (sodium_base642bin(raw, n + 1, s, n, NULL, &len, NULL, B64URL) == 0)
        j = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    return j;
}

static bool aud_ok(const json_t *aud)
{
    size_t i;
    json_t *v;
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), AUDIENCE) == 0;
    json_array_foreach(aud, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), AUDIENCE) == 0)
            return true;
    }
    return false;
}

/* What an accepted token must be (see the invariants above). */
static void check_accepted(const char *token, const char *user)
{
    const char *d1 = strchr(token, '.'), *d2 = d1 != NULL ? strchr(d1 + 1, '.') : NULL;
    assert(d2 != NULL && strchr(d2 + 1, '.') == NULL);
    json_t *hdr = part_json(token, (size_t)(d1 - token));
    json_t *claims = part_json(d1 + 1, (size_t)(d2 - d1 - 1));
    assert(hdr != NULL && claims != NULL);
    assert(strcmp(json_string_value(json_object_get(hdr, "alg")), "HS256") == 0);

    unsigned char sig[64], mac_a[32], mac_b[32];
    size_t sig_len = 0;
    assert(sodium_base642bin(sig, sizeof(sig), d2 + 1, strlen(d2 + 1), NULL, &sig_len, NULL,
                             B64URL) == 0);
    hmac(secret_a, token, (size_t)(d2 - token), mac_a);
    hmac(secret_b, token, (size_t)(d2 - token), mac_b);
    const json_t *kid = json_object_get(hdr, "kid");
    bool by_a = sig_len == 32 && memcmp(sig, mac_a, 32) == 0;
    bool by_b = sig_len == 32 && memcmp(sig, mac_b, 32) == 0;
    if (kid != NULL)
        assert(by_a && strcmp(json_string_value(kid), "k1") == 0);
    else
        assert(by_a || by_b);

    assert(json_is_number(json_object_get(claims, "exp")));
    const json_t *iss = json_object_get(claims, "iss");
    assert(json_is_string(iss) && strcmp(json_string_value(iss), ISSUER) == 0);
    assert(aud_ok(json_object_get(claims, "aud")));
    const json_t *sub = json_object_get(claims, "sub");
    assert(json_is_string(sub) && strcmp(json_string_value(sub), user) == 0 && user[0] != '\0');
    for (const char *p = user; *p; p++)
        assert((unsigned char)*p >= 0x20 && *p != 0x7f);
    json_decref(hdr);
    json_decref(claims);
}

/* "b64(header).b64(payload).b64(HMAC)" of the two JSON texts, malloc'd. */
static char *sign(const char *hdr, size_t hn, const char *pay, size_t pn, const char *secret)
{
    char *h = b64(hdr, hn), *p = b64(pay, pn);
    size_t n = strlen(h) + 1 + strlen(p);
    char *t = malloc(n + 64);
    snprintf(t, n + 64, "%s.%s", h, p);
    unsigned char mac[32];
    hmac(secret, t, n, mac);
    char *s = b64(mac, sizeof(mac));
    snprintf(t + n, 64, ".%s", s);
    free(h);
    free(p);
    free(s);
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    char *token;
    if (data[0] & 1) {
        const char *nul = memchr(rest, '\0', n);
        if (nul == NULL)
            return 0;
        token = sign(rest, (size_t)(nul - rest), nul + 1, n - (size_t)(nul + 1 - rest),
                     data[0] & 2 ? secret_b : secret_a);
    } else {
        token = strndup(rest, n);
    }
    arena_t *a = arena_create();
    const char *user = (const char *)1;
    char reason[256] = "";
    if (jwt_verify(verifier, a, token, NOW, &user, reason, sizeof(reason)) == CB_EOK)
        check_accepted(token, user);
    else
        assert(user == NULL && reason[0] != '\0');
    arena_destroy(a);
    free(token);
    return 0;
}
