/*
 * auth.c — Basic authentication with a verified-credential cache.
 *
 * Cache invariants: one slot per user id (modulo the table size); a slot
 * holds the tag of the last password verified for that user against the
 * hash stored then, and when that stops being believed. The tag binds the
 * stored hash, so a password change, or another user landing in the slot,
 * can never make a wrong password pass.
 */
#include "auth/auth.h"

#include <pthread.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/text.h"

#define CACHE_SLOTS 1024
#define CACHE_TTL_MS (10 * 60 * 1000)
#define PW_OPSLIMIT 2
#define PW_MEMLIMIT (19u * 1024u * 1024u) /* OWASP's Argon2id minimum: m=19 MiB, t=2 */

typedef struct {
    int32_t user_id;
    int64_t expires_ms;
    unsigned char tag[crypto_generichash_BYTES];
} cache_slot;

struct auth {
    store_t *store;
    unsigned char key[crypto_generichash_KEYBYTES];
    pthread_mutex_t cache_lock;
    pthread_mutex_t hash_lock; /* one Argon2id run at a time */
    cache_slot cache[CACHE_SLOTS];
    char dummy_hash[AUTH_HASH_MAX]; /* verified against for unknown users */
};

cb_err auth_hash_password(const char *password, char out[AUTH_HASH_MAX])
{
    _Static_assert(AUTH_HASH_MAX >= crypto_pwhash_STRBYTES, "hash buffer too small");
    if (sodium_init() < 0)
        return CB_EINTERNAL;
    if (crypto_pwhash_str_alg(out, password, strlen(password), PW_OPSLIMIT, PW_MEMLIMIT,
                              crypto_pwhash_ALG_ARGON2ID13) != 0)
        return CB_EINTERNAL;
    return CB_EOK;
}

cb_err auth_create(store_t *store, auth_t **out)
{
    if (sodium_init() < 0)
        return CB_EINTERNAL;
    auth_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return CB_EINTERNAL;
    a->store = store;
    crypto_generichash_keygen(a->key);
    pthread_mutex_init(&a->cache_lock, NULL);
    pthread_mutex_init(&a->hash_lock, NULL);
    *out = a;
    return CB_EOK;
}

void auth_destroy(auth_t *a)
{
    if (a == NULL)
        return;
    pthread_mutex_destroy(&a->cache_lock);
    pthread_mutex_destroy(&a->hash_lock);
    sodium_memzero(a, sizeof(*a));
    free(a);
}

const char *auth_challenge(const auth_t *a)
{
    (void)a;
    return "Basic realm=\"crmblob\", charset=\"UTF-8\"";
}

static void credential_tag(const auth_t *a, const char *pw_hash, const char *password,
                           unsigned char tag[crypto_generichash_BYTES])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, a->key, sizeof(a->key), crypto_generichash_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)pw_hash, strlen(pw_hash) + 1);
    crypto_generichash_update(&st, (const unsigned char *)password, strlen(password));
    crypto_generichash_final(&st, tag, crypto_generichash_BYTES);
}

static bool cache_hit(auth_t *a, int32_t uid, const unsigned char *tag)
{
    cache_slot *s = &a->cache[(uint32_t)uid % CACHE_SLOTS];
    pthread_mutex_lock(&a->cache_lock);
    bool hit = s->user_id == uid && s->expires_ms > text_now_ms() &&
               sodium_memcmp(s->tag, tag, crypto_generichash_BYTES) == 0;
    pthread_mutex_unlock(&a->cache_lock);
    return hit;
}

static void cache_put(auth_t *a, int32_t uid, const unsigned char *tag)
{
    cache_slot *s = &a->cache[(uint32_t)uid % CACHE_SLOTS];
    pthread_mutex_lock(&a->cache_lock);
    s->user_id = uid;
    s->expires_ms = text_now_ms() + CACHE_TTL_MS;
    memcpy(s->tag, tag, crypto_generichash_BYTES);
    pthread_mutex_unlock(&a->cache_lock);
}

/* Argon2id verification, serialised; unknown users verify a dummy hash so
 * that the answer takes as long as for a known user. */
static bool slow_verify(auth_t *a, const char *pw_hash, const char *password)
{
    pthread_mutex_lock(&a->hash_lock);
    if (pw_hash == NULL) {
        if (a->dummy_hash[0] == '\0' && auth_hash_password("crmblob", a->dummy_hash) != CB_EOK)
            a->dummy_hash[0] = '\0';
        pw_hash = a->dummy_hash;
    }
    bool ok = pw_hash[0] != '\0' &&
              crypto_pwhash_str_verify(pw_hash, password, strlen(password)) == 0;
    pthread_mutex_unlock(&a->hash_lock);
    return ok;
}

/* Splits "Basic <base64(user:pass)>" into arena strings. */
static cb_err parse_basic(arena_t *arena, const char *h, char **user, char **pass)
{
    while (*h == ' ')
        h++;
    if (strncasecmp(h, "Basic ", 6) != 0)
        return CB_EUNAUTH;
    const char *b64 = h + 6;
    while (*b64 == ' ')
        b64++;
    size_t n = strlen(b64);
    while (n > 0 && b64[n - 1] == ' ')
        n--;
    if (n == 0 || n > AUTH_HEADER_MAX)
        return CB_EUNAUTH;
    unsigned char *raw = arena_alloc(arena, n + 1);
    size_t raw_len;
    if (sodium_base642bin(raw, n, b64, n, NULL, &raw_len, NULL, sodium_base64_VARIANT_ORIGINAL) !=
        0)
        return CB_EUNAUTH;
    raw[raw_len] = '\0';
    char *colon = memchr(raw, ':', raw_len);
    if (colon == NULL || memchr(raw, '\0', raw_len) != NULL)
        return CB_EUNAUTH;
    *user = arena_strndup(arena, (const char *)raw, (size_t)(colon - (char *)raw));
    *pass = colon + 1;
    return **user ? CB_EOK : CB_EUNAUTH;
}

cb_err auth_authenticate(auth_t *a, arena_t *arena, const char *authorization, model_user *out)
{
    char *name = NULL, *password = NULL;
    if (authorization == NULL || parse_basic(arena, authorization, &name, &password) != CB_EOK)
        return CB_EUNAUTH;
    model_user u;
    cb_err e = store_user_by_name(a->store, arena, name, &u);
    if (e == CB_ENOTFOUND) {
        slow_verify(a, NULL, password);
        return CB_EUNAUTH;
    }
    if (e != CB_EOK)
        return e;
    unsigned char tag[crypto_generichash_BYTES];
    credential_tag(a, u.pw_hash, password, tag);
    if (!cache_hit(a, u.id, tag)) {
        if (!slow_verify(a, u.pw_hash, password))
            return CB_EUNAUTH;
        cache_put(a, u.id, tag);
    }
    if (u.disabled)
        return CB_EUNAUTH;
    *out = u;
    return CB_EOK;
}
