/*
 * auth.c — who is calling (auth.h): Basic with a verified-credential cache,
 * SOTicket tickets, Bearer access tokens and JWTs, browser sessions with an
 * XSRF token, SO-AppToken partner applications, and the failure limits
 * (auth.h): per (account, address) and per address.
 *
 * Cache invariants: one slot per user id (modulo the table size); a slot
 * holds the tag of the last password verified for that user against the
 * hash stored then, and when that stops being believed. The tag binds the
 * stored hash, so a password change, or another user landing in the slot,
 * can never make a wrong password pass.
 *
 * Header cache invariants: a Basic Authorization value that was verified
 * is remembered as its keyed SipHash-128 (never the value: it holds the
 * password) with the user it named, for as long as the store's users'
 * change count stays what it was then (a password change, a disable, any
 * user written moves it) and at most CACHE_TTL_MS. A hit skips decoding,
 * the user lookup and the credential tag; everything else (the limiter,
 * the app token) runs as for a miss.
 *
 * Secrets: every ticket, token, session id, XSRF token and app token is
 * SECRET_BYTES from randombytes_buf as unpadded base64url (tickets with
 * "7T:", tokens with "8A:" in front). The store sees only BLAKE2b-256 of
 * the secret's full text, so a copy of the database grants nothing; the
 * raw random bytes are wiped once encoded.
 *
 * Failure-limit invariants: two fixed tables of WAYS-entry sets, the set
 * chosen by a keyed SipHash of the address (or of the address and the
 * account name in lower case), so an attacker cannot aim at another
 * client's set; an entry belongs to one key at a time (its tag), and a
 * new key takes the entry of its set that holds the least (a free one,
 * one whose failures are all forgiven, else the nearest to that). The
 * address table is a GCRA: tat_ms is when the address's failures are all
 * forgiven, each failure moves it on by addr_interval_ms, and a failure
 * is allowed while that stays within addr_burst_ms of now. A password
 * attempt spends a failure before Argon2id runs and gets it back when the
 * password is right, so concurrent guesses cannot overrun the budget.
 * Requests that present no credential at all are not counted: they guess
 * nothing, and browsers send them before logging in. `locks_until_ms`
 * is never earlier than the end of any pair's lock, so that the Basic
 * fast path looks at the pair table only while some lock may hold.
 */
#include "auth/auth.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/jwt.h"
#include "core/log.h"
#include "core/net.h"
#include "core/text.h"

#define CACHE_SLOTS 1024
#define CACHE_TTL_MS (10 * 60 * 1000)
#define PW_OPSLIMIT 2
#define PW_MEMLIMIT (19u * 1024u * 1024u) /* OWASP's Argon2id minimum: m=19 MiB, t=2 */

#define SECRET_BYTES 32
#define B64URL sodium_base64_VARIANT_URLSAFE_NO_PADDING
#define SECRET_B64_SIZE sodium_base64_ENCODED_LEN(SECRET_BYTES, B64URL) /* with NUL */
#define TICKET_PREFIX "7T:"
#define TOKEN_PREFIX "8A:"
#define PREFIX_LEN 3

#define DEFAULT_TICKET_TTL_S (6 * 3600)
#define DEFAULT_SESSION_TTL_S (8 * 3600)
#define DEFAULT_TOKEN_TTL_S (30 * 86400)
#define MAX_TTL_S ((int64_t)100 * 365 * 86400) /* keeps expiry arithmetic far from overflow */

#define WAYS 4          /* entries per set of the failure tables */
#define ADDR_SETS 1024  /* 4096 addresses */
#define PAIR_SETS 1024  /* 4096 (account, address) pairs */
#define ADDR_KEY_MAX 72 /* a kind byte, then 4 or 8 address bytes or the text */
#define PAIR_NAME_MAX 256 /* account name bytes that tell pairs apart */
#define DEFAULT_ADDR_LIMIT 30
#define DEFAULT_ADDR_WINDOW_S 60
#define DEFAULT_ACCOUNT_LIMIT 5
#define DEFAULT_ACCOUNT_LOCKOUT_S 300

#define CHALLENGE_MAX 160

/* Reasons the limiter does not count (compared by address). */
static const char WHY_NONE[] = "no credentials";
static const char WHY_APP_MISSING[] = "SO-AppToken missing";

#define TAG_BYTES crypto_shorthash_siphashx24_BYTES

typedef struct {
    int32_t user_id;
    int64_t expires_ms;
    unsigned char tag[TAG_BYTES];
} cache_slot;

#define HEADER_SLOTS 256
#define HEADER_NAME_MAX 64
#define HEADER_FULL_NAME_MAX 128

typedef struct {
    unsigned char tag[TAG_BYTES]; /* of the Authorization value; all 0: empty */
    uint64_t users_changes;
    int64_t expires_ms;
    model_user user; /* name and full_name point nowhere: the arrays below */
    char name[HEADER_NAME_MAX];
    char full_name[HEADER_FULL_NAME_MAX];
} header_slot;

typedef struct {
    uint64_t tag;   /* keyed hash of the address; 0: free */
    int64_t tat_ms; /* monotonic: when its failures are all forgiven */
} addr_slot;

typedef struct {
    uint64_t tag;            /* keyed hash of (address, account); 0: free */
    int64_t since_ms;        /* monotonic: the first wrong password counted */
    int64_t locked_until_ms; /* monotonic: its password attempts refused until then */
    int count;               /* wrong passwords since since_ms */
} pair_slot;

struct auth {
    store_t *store;
    unsigned schemes; /* effective: AUTH_JWT only with a verifier */
    int64_t ticket_ttl_s, session_ttl_s;
    bool require_app;
    int addr_limit;                     /* 0: no address limit */
    int64_t addr_interval_ms, addr_burst_ms;
    int account_limit;                  /* 0: no (account, address) locks */
    int64_t lockout_ms;                 /* a pair's lock, and the window counting to it */
    _Atomic int64_t locks_until_ms;     /* no pair is locked from then on */
    /* The JWT keys in force: read under jwt_lock (shared) by every JWT
     * check, replaced under it (exclusive) by the reload step, which reads
     * the files of jwt_cfg again. */
    jwt_verifier *jwt;
    jwt_config jwt_cfg;
    pthread_rwlock_t jwt_lock;
    char challenge[CHALLENGE_MAX];
    unsigned char tag_key[crypto_shorthash_siphashx24_KEYBYTES]; /* credential tags */
    unsigned char limit_key[crypto_shorthash_KEYBYTES];
    pthread_mutex_t cache_lock;
    pthread_mutex_t hash_lock; /* one Argon2id run at a time */
    pthread_mutex_t limit_lock; /* both failure tables */
    cache_slot cache[CACHE_SLOTS];
    pthread_mutex_t header_lock;
    header_slot headers[HEADER_SLOTS];
    addr_slot addrs[ADDR_SETS * WAYS];
    pair_slot pairs[PAIR_SETS * WAYS];
    char dummy_hash[AUTH_HASH_MAX]; /* verified against for unknown users */
    /* auth_config.metrics: refusals by scheme, and by the failure limits */
    metrics_family *m_failures, *m_throttled;
};

_Static_assert(STORE_HASH_BYTES == crypto_generichash_BYTES, "secret hash is BLAKE2b-256");

/* ---- the store's answers, as auth's outcomes ------------------------------ */

/* What a store failure means here: ABSENT is "no such user / credential /
 * app" (CB_ENOTFOUND, which the callers turn into CB_EUNAUTH where the
 * caller is being authenticated), a taken name CB_ECONFLICT, a database
 * that cannot answer now CB_EUNAVAILABLE or CB_ENOSPACE, anything else
 * ours. */
static cb_err from_store(store_err e)
{
    switch (e) {
    case STORE_OK:
        return CB_EOK;
    case STORE_ABSENT:
        return CB_ENOTFOUND;
    case STORE_CONFLICT:
        return CB_ECONFLICT;
    case STORE_INVALID:
        return CB_EBADREQ;
    case STORE_PRECONDITION:
        return CB_EPRECOND;
    case STORE_TOO_LARGE:
        return CB_ETOOLARGE;
    case STORE_UNAVAILABLE:
        return CB_EUNAVAILABLE;
    case STORE_NO_SPACE:
        return CB_ENOSPACE;
    default: /* CORRUPT, INTERNAL, PENDING */
        return CB_EINTERNAL;
    }
}

/* ---- passwords and the verified-credential cache ------------------------ */

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

/* SipHash-2-4 with a 128-bit output, keyed per process: a PRF whose key
 * never leaves memory, checked against online guesses only, and four
 * times cheaper than the BLAKE2b it replaced (4 % of an authenticated
 * revalidation's CPU). */
static void credential_tag(const auth_t *a, arena_t *arena, const char *pw_hash,
                           const char *password, unsigned char tag[TAG_BYTES])
{
    size_t h = strlen(pw_hash) + 1, p = strlen(password);
    unsigned char local[512];
    unsigned char *in = h + p <= sizeof(local) ? local : arena_alloc(arena, h + p);
    memcpy(in, pw_hash, h);
    memcpy(in + h, password, p);
    crypto_shorthash_siphashx24(tag, in, h + p, a->tag_key);
    sodium_memzero(in, h + p);
}

static bool cache_hit(auth_t *a, int32_t uid, const unsigned char tag[TAG_BYTES])
{
    cache_slot *s = &a->cache[(uint32_t)uid % CACHE_SLOTS];
    pthread_mutex_lock(&a->cache_lock);
    bool hit = s->user_id == uid && s->expires_ms > text_now_ms() &&
               sodium_memcmp(s->tag, tag, TAG_BYTES) == 0;
    pthread_mutex_unlock(&a->cache_lock);
    return hit;
}

static void cache_put(auth_t *a, int32_t uid, const unsigned char tag[TAG_BYTES])
{
    cache_slot *s = &a->cache[(uint32_t)uid % CACHE_SLOTS];
    pthread_mutex_lock(&a->cache_lock);
    s->user_id = uid;
    s->expires_ms = text_now_ms() + CACHE_TTL_MS;
    memcpy(s->tag, tag, TAG_BYTES);
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
    bool ok =
        pw_hash[0] != '\0' && crypto_pwhash_str_verify(pw_hash, password, strlen(password)) == 0;
    pthread_mutex_unlock(&a->hash_lock);
    return ok;
}

/* ---- failure limits ------------------------------------------------------ */

static int64_t mono_ms(void)
{
    return (int64_t)(text_monotonic_us() / 1000);
}

static int retry_seconds(int64_t ms)
{
    int64_t s = (ms + 999) / 1000;
    return s < 1 ? 1 : s > INT32_MAX ? INT32_MAX : (int)s;
}

static bool limit_applies(int limit, const char *remote)
{
    return limit > 0 && remote != NULL && remote[0] != '\0';
}

/* The bytes an address is counted by: net_addr_key_text's (IPv4, IPv6
 * by /64), or for anything else (a forwarded value) a 't' and its text. */
static size_t addr_key(const char *remote, unsigned char out[ADDR_KEY_MAX])
{
    _Static_assert(ADDR_KEY_MAX > NET_ADDR_KEY, "a key fits");
    size_t n = net_addr_key_text(remote, out);
    if (n > 0)
        return n;
    n = strnlen(remote, ADDR_KEY_MAX - 1);
    out[0] = 't';
    memcpy(out + 1, remote, n);
    return n + 1;
}

static uint64_t keyed_tag(const auth_t *a, const unsigned char *in, size_t n)
{
    unsigned char h[crypto_shorthash_BYTES];
    uint64_t t;
    _Static_assert(sizeof(h) == sizeof(t), "SipHash-2-4 gives 64 bits");
    crypto_shorthash(h, in, n, a->limit_key);
    memcpy(&t, h, sizeof(t));
    return t != 0 ? t : 1; /* 0 marks a free entry */
}

static uint64_t addr_tag(const auth_t *a, const char *remote)
{
    unsigned char k[ADDR_KEY_MAX];
    return keyed_tag(a, k, addr_key(remote, k));
}

/* The address's key, a NUL, then the account name in ASCII lower case
 * (names are unique case-insensitively). */
static uint64_t pair_tag(const auth_t *a, const char *remote, const char *name)
{
    unsigned char k[ADDR_KEY_MAX + 1 + PAIR_NAME_MAX];
    size_t n = addr_key(remote, k);
    k[n++] = '\0';
    for (size_t i = 0; name[i] != '\0' && i < PAIR_NAME_MAX; i++) {
        unsigned char c = (unsigned char)name[i];
        k[n++] = c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
    }
    return keyed_tag(a, k, n);
}

/* The address entry of tag: its own, else NULL, or when `take` the
 * entry of its set nearest to forgiving everything, given to tag.
 * Under limit_lock. */
static addr_slot *addr_find(auth_t *a, uint64_t tag, int64_t now, bool take)
{
    addr_slot *set = &a->addrs[(tag % ADDR_SETS) * WAYS], *best = set;
    for (int i = 0; i < WAYS; i++) {
        if (set[i].tag == tag)
            return &set[i];
        if (set[i].tat_ms < best->tat_ms)
            best = &set[i];
    }
    if (!take)
        return NULL;
    *best = (addr_slot){.tag = tag, .tat_ms = now};
    return best;
}

/* How long until the address may fail once more; 0: now. */
static int64_t addr_wait_ms(const auth_t *a, const addr_slot *s, int64_t now)
{
    int64_t tat = s->tat_ms > now ? s->tat_ms : now;
    int64_t over = tat + a->addr_interval_ms - now - a->addr_burst_ms;
    return over > 0 ? over : 0;
}

/* Spends one failure of the address's budget (only looks when `peek`):
 * false, with *t, when the budget is spent. */
static bool addr_spend(auth_t *a, const char *remote, bool peek, auth_throttle *t)
{
    if (!limit_applies(a->addr_limit, remote))
        return true;
    uint64_t tag = addr_tag(a, remote);
    int64_t now = mono_ms(), wait = 0;
    pthread_mutex_lock(&a->limit_lock);
    addr_slot *s = addr_find(a, tag, now, !peek);
    if (s != NULL)
        wait = addr_wait_ms(a, s, now);
    if (s != NULL && wait == 0 && !peek)
        s->tat_ms = (s->tat_ms > now ? s->tat_ms : now) + a->addr_interval_ms;
    pthread_mutex_unlock(&a->limit_lock);
    if (wait > 0)
        *t = (auth_throttle){.retry_after_s = retry_seconds(wait)};
    return wait == 0;
}

/* Gives back a failure spent on a password that turned out right. */
static void addr_refund(auth_t *a, const char *remote)
{
    if (!limit_applies(a->addr_limit, remote))
        return;
    uint64_t tag = addr_tag(a, remote);
    pthread_mutex_lock(&a->limit_lock);
    addr_slot *s = addr_find(a, tag, 0, false);
    if (s != NULL)
        s->tat_ms -= a->addr_interval_ms;
    pthread_mutex_unlock(&a->limit_lock);
}

/* What a pair entry still holds: more for a lock than for a count, more
 * the longer it lasts; 0 when nothing. */
static int64_t pair_worth(const auth_t *a, const pair_slot *s, int64_t now)
{
    if (s->locked_until_ms > now)
        return a->lockout_ms + s->locked_until_ms - now;
    int64_t left = s->since_ms + a->lockout_ms - now;
    return s->count > 0 && left > 0 ? left : 0;
}

/* As addr_find, for pairs. */
static pair_slot *pair_find(auth_t *a, uint64_t tag, int64_t now, bool take)
{
    pair_slot *set = &a->pairs[(tag % PAIR_SETS) * WAYS], *best = set;
    for (int i = 0; i < WAYS; i++) {
        if (set[i].tag == tag)
            return &set[i];
        if (pair_worth(a, &set[i], now) < pair_worth(a, best, now))
            best = &set[i];
    }
    if (!take)
        return NULL;
    *best = (pair_slot){.tag = tag, .since_ms = now};
    return best;
}

/* True, with *t, while account `name` is locked for password attempts
 * from `remote`. */
static bool pair_locked(auth_t *a, const char *remote, const char *name, auth_throttle *t)
{
    int64_t now = mono_ms(), until = 0;
    if (!limit_applies(a->account_limit, remote) ||
        atomic_load_explicit(&a->locks_until_ms, memory_order_relaxed) <= now)
        return false;
    uint64_t tag = pair_tag(a, remote, name);
    pthread_mutex_lock(&a->limit_lock);
    pair_slot *s = pair_find(a, tag, now, false);
    if (s != NULL)
        until = s->locked_until_ms;
    pthread_mutex_unlock(&a->limit_lock);
    if (until <= now)
        return false;
    *t = (auth_throttle){.retry_after_s = retry_seconds(until - now), .account_locked = true};
    return true;
}

/* Counts a wrong password in pair entry s: the account_limit-th within
 * lockout_ms locks the pair for lockout_ms. Under limit_lock; true when
 * it locked. */
static bool pair_count(auth_t *a, pair_slot *s, int64_t now)
{
    if (s->since_ms + a->lockout_ms <= now) {
        s->since_ms = now;
        s->count = 0;
    }
    if (++s->count < a->account_limit)
        return false;
    s->locked_until_ms = now + a->lockout_ms;
    s->since_ms = s->locked_until_ms; /* a fresh count once the lock ends */
    s->count = 0;
    int64_t was = atomic_load(&a->locks_until_ms);
    while (was < s->locked_until_ms &&
           !atomic_compare_exchange_weak(&a->locks_until_ms, &was, s->locked_until_ms))
        ;
    return true;
}

static void pair_fail(auth_t *a, const char *remote, const char *name)
{
    if (!limit_applies(a->account_limit, remote))
        return;
    uint64_t tag = pair_tag(a, remote, name);
    int64_t now = mono_ms();
    pthread_mutex_lock(&a->limit_lock);
    bool locked = pair_count(a, pair_find(a, tag, now, true), now);
    pthread_mutex_unlock(&a->limit_lock);
    if (locked)
        log_warn("auth: password attempts for one account from %s refused for %lld s after %d "
                 "wrong passwords", remote, (long long)(a->lockout_ms / 1000), a->account_limit);
}

/* A right password forgets the pair's wrong ones. */
static void pair_clear(auth_t *a, const char *remote, const char *name)
{
    if (!limit_applies(a->account_limit, remote))
        return;
    uint64_t tag = pair_tag(a, remote, name);
    pthread_mutex_lock(&a->limit_lock);
    pair_slot *s = pair_find(a, tag, 0, false);
    if (s != NULL)
        *s = (pair_slot){0};
    pthread_mutex_unlock(&a->limit_lock);
}

/* ---- password attempts ---------------------------------------------------- */

/* One authentication attempt: where it comes from, and how it fared with
 * the failure limits. */
typedef struct {
    const char *remote;
    bool no_wait;           /* CB_EWOULDBLOCK rather than run Argon2id */
    bool counted;           /* its failure is counted already (a password) */
    auth_throttle throttle; /* with CB_ETOOMANY */
    const char *why;        /* a refusal's reason, for the log */
} attempt;

static const char WHY_ADDR[] = "too many failed attempts from this address";

/* A password not remembered: Argon2id (against a dummy hash for an
 * unknown user, pw_hash NULL), and the address's failure budget. The
 * budget is spent before the hash (concurrent guesses cannot overrun it)
 * and given back when the password is right. An address past its budget
 * still has its passwords checked, so that a right one from another client
 * behind the same address is never refused (SPEC §5); its wrong ones are
 * answered CB_ETOOMANY. What guessing costs in CPU is bounded by the
 * password lane (src/http: two threads, a short queue). */
static cb_err password_slow(auth_t *a, attempt *at, const char *name, const char *pw_hash,
                            const char *password)
{
    if (at->no_wait)
        return CB_EWOULDBLOCK;
    bool within = addr_spend(a, at->remote, false, &at->throttle);
    if (!slow_verify(a, pw_hash, password) || pw_hash == NULL) {
        at->counted = true; /* the failure spent stays spent */
        pair_fail(a, at->remote, name);
        at->why = pw_hash != NULL ? "wrong password" : "unknown user";
        if (within)
            return CB_EUNAUTH;
        at->why = WHY_ADDR;
        return CB_ETOOMANY;
    }
    if (within)
        addr_refund(a, at->remote);
    at->throttle = (auth_throttle){0};
    pair_clear(a, at->remote, name);
    return CB_EOK;
}

/* Name and password against the store (through the cache) and the
 * failure limits: the enabled user; CB_EUNAUTH or CB_ETOOMANY with
 * at->why; CB_EWOULDBLOCK when at->no_wait and Argon2id would run. */
static cb_err password_check(auth_t *a, arena_t *arena, attempt *at, const char *name,
                             const char *password, model_user *out)
{
    unsigned char tag[TAG_BYTES];
    model_user u;
    if (pair_locked(a, at->remote, name, &at->throttle)) {
        at->why = "too many wrong passwords for this account from this address";
        return CB_ETOOMANY;
    }
    cb_err rc = from_store(store_user_by_name(a->store, arena, name, &u));
    if (rc == CB_ENOTFOUND)
        return password_slow(a, at, name, NULL, password);
    if (rc != CB_EOK)
        return rc;
    credential_tag(a, arena, u.pw_hash, password, tag);
    if (!cache_hit(a, u.id, tag)) {
        rc = password_slow(a, at, name, u.pw_hash, password);
        if (rc != CB_EOK)
            goto out;
        cache_put(a, u.id, tag);
    }
    if (u.disabled) {
        at->why = "user disabled";
        rc = CB_EUNAUTH;
        goto out;
    }
    *out = u;
out:
    sodium_memzero(tag, sizeof(tag));
    return rc;
}

/* ---- secrets ------------------------------------------------------------ */

static void secret_hash(const char *text, unsigned char out[STORE_HASH_BYTES])
{
    crypto_generichash(out, STORE_HASH_BYTES, (const unsigned char *)text, strlen(text), NULL, 0);
}

/* A fresh secret `prefix` + base64url(SECRET_BYTES random) in the arena;
 * hash gets its BLAKE2b-256. */
static const char *secret_new(arena_t *arena, const char *prefix,
                              unsigned char hash[STORE_HASH_BYTES])
{
    unsigned char raw[SECRET_BYTES];
    char b64[SECRET_B64_SIZE];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw), B64URL);
    const char *s = arena_printf(arena, "%s%s", prefix, b64);
    sodium_memzero(raw, sizeof(raw));
    sodium_memzero(b64, sizeof(b64));
    secret_hash(s, hash);
    return s;
}

static bool has_prefix(const char *s, const char *prefix)
{
    return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}

static int64_t clamp_ttl(int64_t ttl_s, int64_t dflt)
{
    if (ttl_s <= 0)
        return dflt;
    return ttl_s < MAX_TTL_S ? ttl_s : MAX_TTL_S;
}

/* Stores the new credential c (kind, user_id, and label and pair_id when
 * wanted) through st, valid ttl_s seconds, and returns its secret (and for
 * a session a fresh XSRF token in *xsrf); c->id and c->expires_ms are set. */
static cb_err cred_issue(store_t *st, arena_t *arena, store_cred *c, int64_t ttl_s,
                         const char **secret, const char **xsrf)
{
    const char *prefix = c->kind == STORE_CRED_TICKET  ? TICKET_PREFIX
                         : c->kind == STORE_CRED_TOKEN ? TOKEN_PREFIX
                                                       : "";
    if (c->label == NULL)
        c->label = "";
    c->created_ms = text_now_ms();
    c->expires_ms = c->created_ms + ttl_s * 1000;
    const char *s = secret_new(arena, prefix, c->hash);
    const char *x = c->kind == STORE_CRED_SESSION ? secret_new(arena, "", c->xsrf_hash) : NULL;
    cb_err rc = from_store(store_cred_add(st, c));
    if (rc != CB_EOK)
        return rc;
    *secret = s;
    if (xsrf != NULL)
        *xsrf = x;
    return CB_EOK;
}

/* Why a credential of each kind is refused, for the log. */
static const struct {
    const char *unknown, *revoked, *expired;
} cred_why[] = {
    [STORE_CRED_TICKET] = {"unknown ticket", "ticket revoked", "ticket expired"},
    [STORE_CRED_TOKEN] = {"unknown access token", "access token revoked", "access token expired"},
    [STORE_CRED_SESSION] = {"unknown session", "session revoked", "session expired"},
};

/* The valid credential of `kind` whose secret is `secret`, or CB_EUNAUTH
 * with *why when unknown, revoked or expired. */
static cb_err cred_check(auth_t *a, arena_t *arena, store_cred_kind kind, const char *secret,
                         store_cred *c, const char **why)
{
    unsigned char h[STORE_HASH_BYTES];
    secret_hash(secret, h);
    cb_err rc = from_store(store_cred_find(a->store, arena, kind, h, c));
    if (rc == CB_ENOTFOUND) {
        *why = cred_why[kind].unknown;
        return CB_EUNAUTH;
    }
    if (rc != CB_EOK)
        return rc;
    if (c->revoked) {
        *why = cred_why[kind].revoked;
        return CB_EUNAUTH;
    }
    if (c->expires_ms <= text_now_ms()) {
        *why = cred_why[kind].expired;
        return CB_EUNAUTH;
    }
    return CB_EOK;
}

/* Revokes, through st, the credential of `kind` named by its secret;
 * CB_ENOTFOUND when there is none. */
static cb_err cred_revoke_secret(store_t *st, arena_t *arena, store_cred_kind kind,
                                 const char *secret)
{
    unsigned char h[STORE_HASH_BYTES];
    store_cred c;
    secret_hash(secret, h);
    cb_err rc = from_store(store_cred_find(st, arena, kind, h, &c));
    if (rc == CB_EOK && !c.revoked)
        rc = from_store(store_cred_revoke(st, kind, c.id));
    return rc;
}

/* ---- parsers ------------------------------------------------------------ */

/* True when s[0..n) is non-empty printable ASCII without spaces: what a
 * ticket, token or JWT may contain. */
static bool is_opaque(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* Decodes base64 s[0..n) of `variant` into a NUL-terminated arena buffer. */
static bool b64_decode(arena_t *arena, const char *s, size_t n, int variant, char **raw,
                       size_t *raw_len)
{
    unsigned char *buf = arena_alloc(arena, n + 1);
    if (sodium_base642bin(buf, n, s, n, NULL, raw_len, NULL, variant) != 0)
        return false;
    buf[*raw_len] = '\0';
    *raw = (char *)buf;
    return true;
}

/* "Basic" credentials: base64(user ":" password), user non-empty. */
static cb_err parse_basic(arena_t *arena, const char *b64, size_t n, auth_credentials *out)
{
    char *raw;
    size_t raw_len;
    if (!b64_decode(arena, b64, n, sodium_base64_VARIANT_ORIGINAL, &raw, &raw_len))
        return CB_EUNAUTH;
    char *colon = memchr(raw, ':', raw_len);
    if (colon == NULL || colon == raw || memchr(raw, '\0', raw_len) != NULL)
        return CB_EUNAUTH;
    out->scheme = AUTH_BASIC;
    out->user = arena_strndup(arena, raw, (size_t)(colon - raw));
    out->password = colon + 1;
    return CB_EOK;
}

/* "SOTicket" credentials: "7T:..." as is, or base64 of it (standard or
 * URL-safe alphabet, padding optional). */
static cb_err parse_ticket(arena_t *arena, const char *s, size_t n, auth_credentials *out)
{
    char *raw = NULL;
    size_t raw_len = 0;
    if (n > PREFIX_LEN && strncmp(s, TICKET_PREFIX, PREFIX_LEN) == 0) {
        raw = arena_strndup(arena, s, n);
        raw_len = n;
    } else {
        size_t m = n;
        while (m > 0 && n - m < 2 && s[m - 1] == '=')
            m--;
        if (!b64_decode(arena, s, m, sodium_base64_VARIANT_ORIGINAL_NO_PADDING, &raw, &raw_len) &&
            !b64_decode(arena, s, m, B64URL, &raw, &raw_len))
            return CB_EUNAUTH;
    }
    if (raw_len <= PREFIX_LEN || strncmp(raw, TICKET_PREFIX, PREFIX_LEN) != 0 ||
        !is_opaque(raw, raw_len))
        return CB_EUNAUTH;
    out->scheme = AUTH_TICKET;
    out->secret = raw;
    return CB_EOK;
}

/* "Bearer" credentials: an opaque token or a JWT, told apart by shape. */
static cb_err parse_bearer(arena_t *arena, const char *s, size_t n, auth_credentials *out)
{
    if (!is_opaque(s, n))
        return CB_EUNAUTH;
    out->secret = arena_strndup(arena, s, n);
    out->scheme = jwt_looks_like(out->secret) ? AUTH_JWT : AUTH_TOKEN;
    return CB_EOK;
}

cb_err auth_parse_header(arena_t *arena, const char *authorization, auth_credentials *out)
{
    assert(arena != NULL && out != NULL);
    *out = (auth_credentials){0};
    if (authorization == NULL)
        return CB_EUNAUTH;
    size_t len = strnlen(authorization, AUTH_HEADER_MAX + 1);
    if (len > AUTH_HEADER_MAX)
        return CB_EUNAUTH;
    text_span all = text_trim(authorization, len);
    const char *scheme = all.p;
    size_t slen = 0;
    while (slen < all.n && !text_is_ows(scheme[slen]))
        slen++;
    text_span c = text_trim(scheme + slen, all.n - slen);
    const char *cred = c.p;
    size_t clen = c.n;
    if (clen == 0)
        return CB_EUNAUTH;
    if (text_ieq(scheme, slen, "Basic"))
        return parse_basic(arena, cred, clen, out);
    if (text_ieq(scheme, slen, "SOTicket"))
        return parse_ticket(arena, cred, clen, out);
    if (text_ieq(scheme, slen, "Bearer"))
        return parse_bearer(arena, cred, clen, out);
    return CB_EUNAUTH;
}

/* A cookie value without its optional double quotes (RFC 6265 §4.1.1). */
static const char *cookie_unquote(arena_t *arena, const char *v, size_t n)
{
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        v++;
        n -= 2;
    }
    return arena_strndup(arena, v, n);
}

const char *auth_cookie_value(arena_t *arena, const char *cookie_header, const char *name)
{
    assert(arena != NULL && name != NULL);
    size_t name_len = strlen(name);
    for (const char *p = cookie_header; p != NULL && *p != '\0';) {
        size_t n = strcspn(p, ";");
        const char *eq = memchr(p, '=', n);
        if (eq != NULL) {
            size_t klen = (size_t)(eq - p);
            text_span k = text_trim(p, klen), v = text_trim(eq + 1, n - klen - 1);
            if (k.n == name_len && memcmp(k.p, name, name_len) == 0)
                return cookie_unquote(arena, v.p, v.n);
        }
        p += n + (p[n] == ';');
    }
    return NULL;
}

/* ---- authentication ----------------------------------------------------- */

/* The enabled user `id` (or `name` when not NULL) behind a credential. */
static cb_err user_load(auth_t *a, arena_t *arena, int32_t id, const char *name, model_user *out,
                        const char **why)
{
    cb_err rc = from_store(name != NULL ? store_user_by_name(a->store, arena, name, out)
                                        : store_user_get(a->store, arena, id, out));
    if (rc == CB_ENOTFOUND) {
        *why = "unknown user";
        return CB_EUNAUTH;
    }
    if (rc == CB_EOK && out->disabled) {
        *why = "user disabled";
        return CB_EUNAUTH;
    }
    return rc;
}

/* A ticket or access token: its credential, then its user. */
static cb_err by_secret(auth_t *a, arena_t *arena, store_cred_kind kind, const char *secret,
                        model_user *out, const char **why)
{
    store_cred c;
    cb_err rc = cred_check(a, arena, kind, secret, &c, why);
    if (rc == CB_EOK)
        rc = user_load(a, arena, c.user_id, NULL, out, why);
    return rc;
}

/* A JWT: signature and claims by the verifier, then the user it names. */
static cb_err by_jwt(auth_t *a, arena_t *arena, const char *token, model_user *out,
                     const char **why)
{
    char msg[128] = "";
    const char *name = NULL;
    pthread_rwlock_rdlock(&a->jwt_lock);
    assert(a->jwt != NULL);
    cb_err rc = jwt_verify(a->jwt, arena, token, text_now_ms() / 1000, &name, msg, sizeof(msg));
    pthread_rwlock_unlock(&a->jwt_lock);
    if (rc != CB_EOK) {
        *why = arena_printf(arena, "JWT refused: %s", msg[0] ? msg : err_name(rc));
        return rc;
    }
    return user_load(a, arena, 0, name, out, why);
}

/* Bearer: a JWT when it has the shape and JWTs are accepted, else an
 * access token. */
static cb_err by_bearer(auth_t *a, arena_t *arena, const auth_credentials *cr, auth_result *out,
                        const char **why)
{
    if (cr->scheme == AUTH_JWT && (a->schemes & AUTH_JWT)) {
        out->scheme = AUTH_JWT;
        return by_jwt(a, arena, cr->secret, &out->user, why);
    }
    if (!(a->schemes & AUTH_TOKEN)) {
        *why = "scheme disabled";
        return CB_EUNAUTH;
    }
    out->scheme = AUTH_TOKEN;
    return by_secret(a, arena, STORE_CRED_TOKEN, cr->secret, &out->user, why);
}

/* The schemes that may serve credentials parsed as `scheme`. */
static unsigned scheme_family(auth_scheme scheme)
{
    return scheme == AUTH_TOKEN || scheme == AUTH_JWT ? AUTH_TOKEN | AUTH_JWT : (unsigned)scheme;
}

/* ---- verified Basic values ------------------------------------------------ */

static header_slot *header_slot_of(auth_t *a, const char *header, unsigned char tag[TAG_BYTES])
{
    crypto_shorthash_siphashx24(tag, (const unsigned char *)header, strlen(header), a->tag_key);
    uint32_t i;
    memcpy(&i, tag, sizeof(i));
    return &a->headers[i % HEADER_SLOTS];
}

/* The user a verified Basic value names, if it is still believed. */
static bool header_hit(auth_t *a, arena_t *arena, const char *header, model_user *out)
{
    unsigned char tag[TAG_BYTES];
    uint64_t users;
    if (!store_users_changes(a->store, &users))
        return false;
    header_slot *s = header_slot_of(a, header, tag);
    bool hit = false;
    pthread_mutex_lock(&a->header_lock);
    if (sodium_memcmp(s->tag, tag, TAG_BYTES) == 0 && s->users_changes == users &&
        s->expires_ms > text_now_ms() && !sodium_is_zero(s->tag, TAG_BYTES)) {
        *out = s->user;
        out->name = arena_strdup(arena, s->name);
        out->full_name = arena_strdup(arena, s->full_name);
        out->pw_hash = "";
        hit = true;
    }
    pthread_mutex_unlock(&a->header_lock);
    return hit;
}

/* Remembers a Basic value just verified for u, read under users_changes. */
static void header_put(auth_t *a, const char *header, const model_user *u, uint64_t users)
{
    unsigned char tag[TAG_BYTES];
    size_t n = strlen(u->name), f = u->full_name ? strlen(u->full_name) : 0;
    if (n >= HEADER_NAME_MAX || f >= HEADER_FULL_NAME_MAX)
        return;
    header_slot *s = header_slot_of(a, header, tag);
    pthread_mutex_lock(&a->header_lock);
    memcpy(s->tag, tag, TAG_BYTES);
    s->users_changes = users;
    s->expires_ms = text_now_ms() + CACHE_TTL_MS;
    s->user = *u;
    s->user.name = s->user.full_name = s->user.pw_hash = NULL;
    memcpy(s->name, u->name, n + 1);
    memcpy(s->full_name, f > 0 ? u->full_name : "", f + 1);
    pthread_mutex_unlock(&a->header_lock);
}

/* A Basic value verified before: its user, unless the account is locked
 * for the caller's address (a remembered value is a password too). */
static cb_err by_remembered(auth_t *a, attempt *at, auth_result *out)
{
    if (pair_locked(a, at->remote, out->user.name, &at->throttle)) {
        at->why = "too many wrong passwords for this account from this address";
        return CB_ETOOMANY;
    }
    out->scheme = AUTH_BASIC;
    return CB_EOK;
}

static cb_err by_header(auth_t *a, arena_t *arena, const char *header, attempt *at,
                        auth_result *out)
{
    auth_credentials cr;
    if ((a->schemes & AUTH_BASIC) && header_hit(a, arena, header, &out->user))
        return by_remembered(a, at, out);
    uint64_t users; /* read before the user is */
    bool tracked = store_users_changes(a->store, &users);
    cb_err rc = auth_parse_header(arena, header, &cr);
    if (rc != CB_EOK) {
        at->why = "unsupported or malformed Authorization header";
    } else if (!(a->schemes & scheme_family(cr.scheme))) {
        at->why = "scheme disabled";
        rc = CB_EUNAUTH;
    } else if (cr.scheme == AUTH_BASIC) {
        out->scheme = AUTH_BASIC;
        rc = password_check(a, arena, at, cr.user, cr.password, &out->user);
        if (rc == CB_EOK && tracked)
            header_put(a, header, &out->user, users);
    } else if (cr.scheme == AUTH_TICKET) {
        out->scheme = AUTH_TICKET;
        rc = by_secret(a, arena, STORE_CRED_TICKET, cr.secret, &out->user, &at->why);
    } else {
        rc = by_bearer(a, arena, &cr, out, &at->why);
    }
    if (cr.password != NULL) /* our own arena copy: writable */
        sodium_memzero((char *)cr.password, strlen(cr.password));
    return rc;
}

/* X-XSRF-TOKEN against the session's hash, in constant time. */
static cb_err xsrf_check(const char *xsrf, const unsigned char want[STORE_HASH_BYTES],
                         const char **why)
{
    unsigned char h[STORE_HASH_BYTES];
    if (xsrf == NULL || xsrf[0] == '\0') {
        *why = "XSRF token missing";
        return CB_EUNAUTH;
    }
    secret_hash(xsrf, h);
    if (sodium_memcmp(h, want, STORE_HASH_BYTES) != 0) {
        *why = "XSRF token mismatch";
        return CB_EUNAUTH;
    }
    return CB_EOK;
}

/* No Authorization header: the session cookie with its XSRF token. */
static cb_err by_cookie(auth_t *a, arena_t *arena, const auth_input *in, auth_result *out,
                        const char **why)
{
    const char *sid = NULL;
    store_cred c;
    if (a->schemes & AUTH_COOKIE)
        sid = auth_cookie_value(arena, in->cookie, AUTH_SESSION_COOKIE);
    if (sid == NULL || sid[0] == '\0') {
        *why = WHY_NONE;
        return CB_EUNAUTH;
    }
    cb_err rc = cred_check(a, arena, STORE_CRED_SESSION, sid, &c, why);
    if (rc == CB_EOK)
        rc = xsrf_check(in->xsrf, c.xsrf_hash, why);
    if (rc == CB_EOK) {
        out->scheme = AUTH_COOKIE;
        rc = user_load(a, arena, c.user_id, NULL, &out->user, why);
    }
    return rc;
}

/* SO-AppToken: *app is the partner's name, or NULL when absent or not
 * valid and not required. */
static cb_err app_check(auth_t *a, arena_t *arena, const char *token, const char **app,
                        const char **why)
{
    unsigned char h[STORE_HASH_BYTES];
    store_app ap;
    *app = NULL;
    if (token == NULL || token[0] == '\0') {
        *why = WHY_APP_MISSING;
        return a->require_app ? CB_EUNAUTH : CB_EOK;
    }
    secret_hash(token, h);
    cb_err rc = from_store(store_app_find(a->store, arena, h, &ap));
    if (rc == CB_ENOTFOUND || (rc == CB_EOK && ap.revoked)) {
        *why = rc == CB_EOK ? "SO-AppToken revoked" : "unknown SO-AppToken";
        return a->require_app ? CB_EUNAUTH : CB_EOK;
    }
    if (rc == CB_EOK)
        *app = ap.name;
    return rc;
}

/* A refusal not yet counted against the caller's address is counted;
 * past the address's rate it becomes CB_ETOOMANY. */
static cb_err count_failure(auth_t *a, arena_t *arena, attempt *at, cb_err rc)
{
    if (rc != CB_EUNAUTH || at->counted || at->why == WHY_NONE || at->why == WHY_APP_MISSING)
        return rc;
    at->counted = true;
    if (addr_spend(a, at->remote, false, &at->throttle))
        return rc;
    at->why = arena_printf(arena, "%s, and %s", at->why, WHY_ADDR);
    return CB_ETOOMANY;
}

/* ---- metrics ------------------------------------------------------------ */

/* The label values of crmblob_auth_failures_total, by scheme. */
enum { FAIL_BASIC, FAIL_TICKET, FAIL_TOKEN, FAIL_JWT, FAIL_COOKIE, FAIL_LOGIN, FAIL_NONE,
       FAIL_OTHER, FAIL__COUNT };
static const char *const fail_schemes[FAIL__COUNT] = {
    "basic", "ticket", "token", "jwt", "cookie", "login", "none", "other"};

static void metrics_setup(auth_t *a, metrics_t *m)
{
    static const char *const limits[] = {"address", "account"};
    metrics_label scheme = {"scheme", fail_schemes, FAIL__COUNT};
    metrics_label limit = {"limit", limits, 2};
    a->m_failures = metrics_register(
        m, &(metrics_def){.name = "crmblob_auth_failures_total",
                          .help = "Requests and sign-ins refused for their credentials (401, 429), "
                                  "by scheme (none: no credentials; login: POST /api/v1/login).",
                          .labels = &scheme, .nlabels = 1});
    a->m_throttled = metrics_register(
        m, &(metrics_def){.name = "crmblob_auth_throttled_total",
                          .help = "Refusals (429) by the failure limits: an address's failure "
                                  "rate, or an account locked from an address.",
                          .labels = &limit, .nlabels = 1});
}

/* The scheme a refused request tried: what its parse saw, else the
 * Authorization header's first word. */
static size_t fail_scheme(const auth_input *in, auth_scheme seen)
{
    static const struct {
        const char *word;
        size_t slot;
    } words[] = {{"Basic", FAIL_BASIC}, {"SOTicket", FAIL_TICKET}, {"Bearer", FAIL_TOKEN}};
    switch (seen) {
    case AUTH_BASIC: return FAIL_BASIC;
    case AUTH_TICKET: return FAIL_TICKET;
    case AUTH_TOKEN: return FAIL_TOKEN;
    case AUTH_JWT: return FAIL_JWT;
    case AUTH_COOKIE: return FAIL_COOKIE;
    default: break;
    }
    if (in->authorization == NULL)
        return FAIL_NONE;
    size_t n = strcspn(in->authorization, " \t");
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (text_ieq(in->authorization, n, words[i].word))
            return words[i].slot;
    return FAIL_OTHER;
}

/* A refusal (not an outage: the database's, a password check deferred). */
static void count_refusal(auth_t *a, size_t scheme, cb_err rc, const auth_throttle *t)
{
    if (rc != CB_EUNAUTH && rc != CB_ETOOMANY && rc != CB_EFORBIDDEN)
        return;
    metrics_add(a->m_failures, scheme, 1);
    if (rc == CB_ETOOMANY)
        metrics_add(a->m_throttled, t->account_locked ? 1 : 0, 1);
}

cb_err auth_authenticate(auth_t *a, arena_t *arena, const auth_input *in, auth_result *out,
                         const char **reason)
{
    assert(a != NULL && arena != NULL && in != NULL && out != NULL);
    attempt at = {.remote = in->remote, .no_wait = in->no_wait, .why = ""};
    cb_err rc;
    *out = (auth_result){0};
    if (in->authorization != NULL)
        rc = by_header(a, arena, in->authorization, &at, out);
    else
        rc = by_cookie(a, arena, in, out, &at.why);
    if (rc == CB_EOK)
        rc = app_check(a, arena, in->app_token, &out->app, &at.why);
    rc = count_failure(a, arena, &at, rc);
    if (rc == CB_EUNAVAILABLE && at.why[0] == '\0') /* the store said why in its log */
        at.why = "the database is unavailable";
    if (rc != CB_EOK)
        count_refusal(a, fail_scheme(in, out->scheme), rc, &at.throttle);
    if (rc != CB_EOK)
        *out = (auth_result){.throttle = rc == CB_ETOOMANY ? at.throttle : (auth_throttle){0}};
    if (reason != NULL)
        *reason = rc == CB_EOK ? "" : at.why;
    return rc;
}

/* ---- login, logout and issuers ------------------------------------------ */

/* After a login's credentials are stored, the user once more: a password
 * change or a disable that committed while the login was being checked
 * ended every credential that existed then, but not these (CB_EUNAUTH,
 * and they are revoked). */
static cb_err login_recheck(store_t *st, arena_t *arena, const model_user *u, int64_t ticket_id)
{
    model_user now;
    cb_err rc = from_store(store_user_get(st, arena, u->id, &now));
    if (rc == CB_EOK && (now.disabled || strcmp(now.pw_hash, u->pw_hash) != 0))
        rc = CB_EUNAUTH;
    if (rc != CB_EOK)
        store_cred_revoke(st, STORE_CRED_TICKET, ticket_id); /* and its session */
    return rc == CB_ENOTFOUND ? CB_EUNAUTH : rc;
}

/* A login's ticket and browser session, paired, stored through st. */
static cb_err login_issue(auth_t *a, store_t *st, arena_t *arena, auth_login_result *out)
{
    store_cred t = {.kind = STORE_CRED_TICKET, .user_id = out->user.id};
    store_cred s = {.kind = STORE_CRED_SESSION, .user_id = out->user.id};
    cb_err rc = cred_issue(st, arena, &t, a->ticket_ttl_s, &out->ticket, NULL);
    if (rc != CB_EOK)
        return rc;
    s.pair_id = t.id;
    rc = cred_issue(st, arena, &s, a->session_ttl_s, &out->session, &out->xsrf);
    if (rc == CB_EOK)
        rc = login_recheck(st, arena, &out->user, t.id);
    out->ticket_expires_ms = t.expires_ms;
    out->session_expires_ms = s.expires_ms;
    return rc;
}

cb_err auth_login(auth_t *a, store_t *st, arena_t *arena, const char *user, const char *password,
                  const char *remote, auth_login_result *out)
{
    assert(a != NULL && st != NULL && arena != NULL && out != NULL);
    attempt at = {.remote = remote, .why = "user name or password missing"};
    *out = (auth_login_result){0};
    cb_err rc = CB_EUNAUTH;
    /* the user is read through the store itself: nothing was written
     * through st before, so a view of it would read the same */
    if (user != NULL && user[0] != '\0' && password != NULL)
        rc = password_check(a, arena, &at, user, password, &out->user);
    rc = count_failure(a, arena, &at, rc);
    if (rc == CB_EUNAUTH || rc == CB_ETOOMANY)
        log_info("auth: login refused: %s", at.why);
    count_refusal(a, FAIL_LOGIN, rc, &at.throttle);
    if (rc == CB_EOK)
        rc = login_issue(a, st, arena, out);
    if (rc != CB_EOK)
        *out = (auth_login_result){.throttle = rc == CB_ETOOMANY ? at.throttle : (auth_throttle){0}};
    return rc;
}

/* Revokes, through st, the ticket or access token of an Authorization
 * value, if any. */
static cb_err logout_header(store_t *st, arena_t *arena, const char *header)
{
    auth_credentials cr;
    cb_err rc = CB_EOK;
    if (header == NULL || auth_parse_header(arena, header, &cr) != CB_EOK)
        return CB_EOK;
    if (cr.scheme == AUTH_TICKET)
        rc = cred_revoke_secret(st, arena, STORE_CRED_TICKET, cr.secret);
    else if (cr.scheme == AUTH_TOKEN && has_prefix(cr.secret, TOKEN_PREFIX))
        rc = cred_revoke_secret(st, arena, STORE_CRED_TOKEN, cr.secret);
    if (cr.password != NULL)
        sodium_memzero((char *)cr.password, strlen(cr.password));
    return rc == CB_ENOTFOUND ? CB_EOK : rc;
}

cb_err auth_logout(auth_t *a, store_t *st, arena_t *arena, const auth_input *in)
{
    assert(a != NULL && st != NULL && arena != NULL && in != NULL);
    cb_err rc = CB_EOK;
    const char *sid = auth_cookie_value(arena, in->cookie, AUTH_SESSION_COOKIE);
    if (sid != NULL && sid[0] != '\0')
        rc = cred_revoke_secret(st, arena, STORE_CRED_SESSION, sid);
    if (rc == CB_ENOTFOUND) /* logging out twice is fine */
        rc = CB_EOK;
    if (rc == CB_EOK)
        rc = logout_header(st, arena, in->authorization);
    return rc;
}

/* The user a command-line issuer names: CB_ENOTFOUND when unknown,
 * CB_EFORBIDDEN when disabled (a credential for them would be dead). */
static cb_err issuer_user(auth_t *a, arena_t *arena, const char *name, model_user *u)
{
    if (name == NULL || name[0] == '\0')
        return CB_ENOTFOUND;
    cb_err rc = from_store(store_user_by_name(a->store, arena, name, u));
    if (rc == CB_EOK && u->disabled)
        rc = CB_EFORBIDDEN;
    return rc;
}

cb_err auth_ticket_issue(auth_t *a, arena_t *arena, const char *user, int64_t ttl_s,
                         const char **ticket, int64_t *expires_ms)
{
    assert(a != NULL && arena != NULL && ticket != NULL && expires_ms != NULL);
    model_user u = {0};
    cb_err rc = issuer_user(a, arena, user, &u);
    store_cred c = {.kind = STORE_CRED_TICKET, .user_id = u.id};
    if (rc == CB_EOK)
        rc = cred_issue(a->store, arena, &c, clamp_ttl(ttl_s, a->ticket_ttl_s), ticket, NULL);
    *expires_ms = c.expires_ms;
    return rc;
}

cb_err auth_token_issue(auth_t *a, arena_t *arena, const char *user, int64_t ttl_s,
                        const char *label, const char **token, int64_t *expires_ms)
{
    assert(a != NULL && arena != NULL && token != NULL && expires_ms != NULL);
    model_user u = {0};
    cb_err rc = issuer_user(a, arena, user, &u);
    store_cred c = {.kind = STORE_CRED_TOKEN, .user_id = u.id, .label = label};
    if (rc == CB_EOK)
        rc = cred_issue(a->store, arena, &c, clamp_ttl(ttl_s, DEFAULT_TOKEN_TTL_S), token, NULL);
    *expires_ms = c.expires_ms;
    return rc;
}

cb_err auth_revoke_secret(auth_t *a, const char *secret)
{
    assert(a != NULL && secret != NULL);
    store_cred_kind kind = STORE_CRED_TOKEN;
    if (!has_prefix(secret, TICKET_PREFIX) && !has_prefix(secret, TOKEN_PREFIX)) {
        uint64_t id; /* a token's id, as the token list shows it */
        if (!text_parse_u64(secret, strlen(secret), &id) || id == 0 || id > INT64_MAX)
            return CB_EBADREQ;
        return from_store(store_cred_revoke(a->store, STORE_CRED_TOKEN, (int64_t)id));
    }
    if (has_prefix(secret, TICKET_PREFIX))
        kind = STORE_CRED_TICKET;
    arena_t *arena = arena_create();
    cb_err rc = cred_revoke_secret(a->store, arena, kind, secret);
    arena_destroy(arena);
    return rc;
}

cb_err auth_apptoken_add(auth_t *a, arena_t *arena, const char *name, const char **token)
{
    assert(a != NULL && arena != NULL && token != NULL);
    if (name == NULL || name[0] == '\0')
        return CB_EBADREQ;
    store_app ap = {.name = name};
    const char *t = secret_new(arena, "", ap.hash);
    cb_err rc = from_store(store_app_add(a->store, &ap)); /* CB_ECONFLICT when the name is taken */
    if (rc == CB_EOK)
        *token = t;
    return rc;
}

/* ---- schemes and challenges --------------------------------------------- */

static const struct {
    const char *name;
    unsigned bits;
} scheme_names[] = {
    {"basic", AUTH_BASIC}, {"ticket", AUTH_TICKET}, {"token", AUTH_TOKEN},
    {"jwt", AUTH_JWT},     {"cookie", AUTH_COOKIE}, {"bearer", AUTH_TOKEN | AUTH_JWT},
    {"all", AUTH_ALL},
};

/* The bits of one scheme name (spaces around it allowed), 0 if unknown. */
static unsigned scheme_bits(const char *item, size_t n)
{
    text_span t = text_trim(item, n);
    for (size_t i = 0; i < sizeof(scheme_names) / sizeof(scheme_names[0]); i++)
        if (text_ieq(t.p, t.n, scheme_names[i].name))
            return scheme_names[i].bits;
    return 0;
}

bool auth_parse_schemes(const char *list, unsigned *out)
{
    assert(out != NULL);
    unsigned bits = 0;
    for (const char *p = list; p != NULL;) {
        size_t n = strcspn(p, ",");
        unsigned b = scheme_bits(p, n);
        if (b == 0)
            return false;
        bits |= b;
        p = p[n] == ',' ? p + n + 1 : NULL;
    }
    if (bits == 0)
        return false; /* list was NULL */
    *out = bits;
    return true;
}

unsigned auth_schemes(const auth_t *a)
{
    return a->schemes;
}

const char *auth_challenge(const auth_t *a)
{
    return a->challenge;
}

/* One challenge per enabled header scheme; only the cookie: a Cookie one. */
static void challenge_build(auth_t *a)
{
    const char *parts[3];
    size_t n = 0, used = 0;
    if (a->schemes & AUTH_BASIC)
        parts[n++] = "Basic realm=\"crmblob\", charset=\"UTF-8\"";
    if (a->schemes & AUTH_TICKET)
        parts[n++] = "SOTicket realm=\"crmblob\"";
    if (a->schemes & (AUTH_TOKEN | AUTH_JWT))
        parts[n++] = "Bearer realm=\"crmblob\"";
    if (n == 0)
        parts[n++] = AUTH_COOKIE_CHALLENGE;
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(a->challenge + used, sizeof(a->challenge) - used, "%s%s",
                         i > 0 ? ", " : "", parts[i]);
        assert(w > 0 && (size_t)w < sizeof(a->challenge) - used);
        used += (size_t)w;
    }
}

/* ---- life cycle --------------------------------------------------------- */

/* A limit as configured: 0 the default, below 0 off (0 here). */
static int limit_or(int v, int dflt)
{
    return v > 0 ? v : v < 0 ? 0 : dflt;
}

/* Copies cfg's numbers into a, with the documented defaults. */
static void config_apply(auth_t *a, const auth_config *cfg)
{
    a->schemes = cfg->schemes != 0 ? cfg->schemes & AUTH_ALL : AUTH_ALL;
    a->ticket_ttl_s = clamp_ttl(cfg->ticket_ttl_s, DEFAULT_TICKET_TTL_S);
    a->session_ttl_s = clamp_ttl(cfg->session_ttl_s, DEFAULT_SESSION_TTL_S);
    a->require_app = cfg->require_app_token;
    a->addr_limit = limit_or(cfg->addr_limit, DEFAULT_ADDR_LIMIT);
    int64_t window_ms =
        (int64_t)(cfg->addr_window_s > 0 ? cfg->addr_window_s : DEFAULT_ADDR_WINDOW_S) * 1000;
    a->addr_interval_ms = a->addr_limit > 0 ? window_ms / a->addr_limit : 0;
    if (a->addr_limit > 0 && a->addr_interval_ms < 1)
        a->addr_interval_ms = 1;
    a->addr_burst_ms = a->addr_interval_ms * a->addr_limit;
    a->account_limit = limit_or(cfg->account_limit, DEFAULT_ACCOUNT_LIMIT);
    a->lockout_ms = (int64_t)(cfg->account_lockout_s > 0 ? cfg->account_lockout_s
                                                         : DEFAULT_ACCOUNT_LOCKOUT_S) * 1000;
}

/* The JWT verifier, when keys are configured and JWTs enabled; without
 * one, AUTH_JWT leaves the effective schemes. */
static cb_err jwt_setup(auth_t *a, const auth_config *cfg)
{
    if (cfg->njwt_keys == 0 || !(a->schemes & AUTH_JWT)) {
        if (cfg->njwt_keys == 0 && cfg->schemes != 0 && (cfg->schemes & AUTH_JWT) &&
            cfg->schemes != AUTH_ALL)
            log_warn("auth: JWT enabled but no key configured: JWTs are refused");
        a->schemes &= ~(unsigned)AUTH_JWT;
        return CB_EOK;
    }
    a->jwt_cfg = (jwt_config){.keys = cfg->jwt_keys,
                              .nkeys = cfg->njwt_keys,
                              .issuer = cfg->jwt_issuer,
                              .audience = cfg->jwt_audience,
                              .user_claim = cfg->jwt_user_claim};
    char err[256] = "";
    if (jwt_create(&a->jwt_cfg, &a->jwt, err, sizeof(err)) != CB_EOK) {
        log_error("auth: JWT keys: %s", err[0] ? err : "cannot be loaded");
        return CB_EBADREQ;
    }
    return CB_EOK;
}

cb_err auth_create(store_t *store, const auth_config *cfg, auth_t **out)
{
    static const auth_config defaults = {0};
    assert(store != NULL && out != NULL);
    *out = NULL;
    if (sodium_init() < 0)
        return CB_EINTERNAL;
    auth_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return CB_EINTERNAL;
    a->store = store;
    randombytes_buf(a->tag_key, sizeof(a->tag_key));
    crypto_shorthash_keygen(a->limit_key);
    pthread_mutex_init(&a->cache_lock, NULL);
    pthread_mutex_init(&a->header_lock, NULL);
    pthread_mutex_init(&a->hash_lock, NULL);
    pthread_mutex_init(&a->limit_lock, NULL);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra); /* a reload must not wait behind a stream of JWT checks */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&a->jwt_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    config_apply(a, cfg != NULL ? cfg : &defaults);
    metrics_setup(a, cfg != NULL ? cfg->metrics : NULL);
    cb_err rc = jwt_setup(a, cfg != NULL ? cfg : &defaults);
    if (rc != CB_EOK) {
        auth_destroy(a);
        return rc;
    }
    challenge_build(a);
    *out = a;
    return CB_EOK;
}

void auth_destroy(auth_t *a)
{
    if (a == NULL)
        return;
    if (a->jwt != NULL)
        jwt_destroy(a->jwt);
    pthread_mutex_destroy(&a->cache_lock);
    pthread_mutex_destroy(&a->header_lock);
    pthread_mutex_destroy(&a->hash_lock);
    pthread_mutex_destroy(&a->limit_lock);
    pthread_rwlock_destroy(&a->jwt_lock);
    sodium_memzero(a, sizeof(*a));
    free(a);
}

/* The reload step of the JWT keys (core/reload.h): every file read again
 * into a new verifier, put in force whole; on any error the old one stays. */
static reload_result jwt_reload(void *ctx, char *msg, size_t cap)
{
    auth_t *a = ctx;
    jwt_verifier *v = NULL, *old;
    char err[256] = "";
    if (jwt_create(&a->jwt_cfg, &v, err, sizeof(err)) != CB_EOK) {
        snprintf(msg, cap, "%s", err[0] ? err : "cannot be loaded");
        return RELOAD_FAILED;
    }
    pthread_rwlock_wrlock(&a->jwt_lock);
    old = a->jwt;
    a->jwt = v;
    pthread_rwlock_unlock(&a->jwt_lock);
    jwt_destroy(old); /* no check holds it: they all take the lock */
    snprintf(msg, cap, "%zu key(s) read again", a->jwt_cfg.nkeys);
    return RELOAD_CHANGED;
}

int auth_reload_register(auth_t *a, reload_registry *r)
{
    return a->jwt != NULL ? reload_add(r, "JWT keys", jwt_reload, a) : 0;
}
