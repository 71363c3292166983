/*
 * test_auth.c — unit tests of auth.h against a temporary SQLite store:
 * Basic and its cache, tickets, access tokens, browser sessions with XSRF,
 * JWTs (HS256), partner app tokens, enabled schemes, the failure limits,
 * login pairs and ending a user's credentials,
 * and the pure parsers (Authorization, Cookie, scheme lists).
 *
 * Password hashes are computed once for the whole run (Argon2id is slow on
 * purpose); every test gets a fresh database and its own auth_t.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include "auth/auth.h"
#include "core/arena.h"
#include "core/log.h"
#include "core/text.h"
#include "store/store.h"

#include "tmpdb.h"

#define PW_ALICE "alice-pw-1"
#define PW_BOB "bob-pw-1"
#define PW_DAVE "dave-pw-1"
#define HS256_SECRET "0123456789abcdef0123456789abcdef-test-secret"

static char hash_alice[AUTH_HASH_MAX], hash_bob[AUTH_HASH_MAX], hash_dave[AUTH_HASH_MAX];

typedef struct {
    char dir[64];
    char path[128];
    store_t *s;
    arena_t *a;
    auth_t *auth;
} fixture;

/* ---- fixture ----------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    return auth_hash_password(PW_ALICE, hash_alice) == CB_EOK &&
                   auth_hash_password(PW_BOB, hash_bob) == CB_EOK &&
                   auth_hash_password(PW_DAVE, hash_dave) == CB_EOK
               ? 0
               : -1;
}

static int add_user(store_t *s, const char *name, const char *hash, bool disabled)
{
    model_user u = {.name = name,
                    .full_name = name,
                    .role = MODEL_ROLE_EDITOR,
                    .pw_hash = hash,
                    .disabled = disabled};
    return store_user_add(s, &u) == STORE_OK ? 0 : -1;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    if (tmpdb_make(f->dir, sizeof(f->dir), f->path, sizeof(f->path), "auth",
                   "crmblob.db") != 0)
        return -1;
    if (store_open(f->path, NULL, &f->s) != STORE_OK)
        return -1;
    f->a = arena_create();
    *state = f;
    if (add_user(f->s, "alice", hash_alice, false) || add_user(f->s, "bob", hash_bob, false) ||
        add_user(f->s, "dave", hash_dave, true))
        return -1;
    return auth_create(f->s, NULL, &f->auth) == CB_EOK ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    auth_destroy(f->auth);
    store_close(f->s);
    arena_destroy(f->a);
    tmpdb_remove(f->dir);
    free(f);
    return 0;
}

/* Replaces the fixture's auth_t with one built from cfg. */
static void reconfigure(fixture *f, const auth_config *cfg)
{
    auth_destroy(f->auth);
    f->auth = NULL;
    assert_int_equal(auth_create(f->s, cfg, &f->auth), CB_EOK);
}

/* ---- helpers ------------------------------------------------------------ */

/* "Basic base64(user:pass)" */
static const char *basic(fixture *f, const char *user, const char *pass)
{
    const char *plain = arena_printf(f->a, "%s:%s", user, pass);
    size_t n = strlen(plain);
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = arena_alloc(f->a, cap);
    sodium_bin2base64(b64, cap, (const unsigned char *)plain, n, sodium_base64_VARIANT_ORIGINAL);
    return arena_printf(f->a, "Basic %s", b64);
}

static const char *b64(fixture *f, const char *text, int variant)
{
    size_t n = strlen(text);
    size_t cap = sodium_base64_ENCODED_LEN(n, variant);
    char *out = arena_alloc(f->a, cap);
    sodium_bin2base64(out, cap, (const unsigned char *)text, n, variant);
    return out;
}

/* auth_authenticate with only an Authorization header. */
static cb_err auth_hdr(fixture *f, const char *authorization, const char *remote, auth_result *r,
                       const char **why)
{
    auth_input in = {.authorization = authorization, .remote = remote};
    return auth_authenticate(f->auth, f->a, &in, r, why);
}

static cb_err auth_in(fixture *f, const auth_input *in, auth_result *r, const char **why)
{
    return auth_authenticate(f->auth, f->a, in, r, why);
}

static void secret_hash(const char *text, unsigned char out[STORE_HASH_BYTES])
{
    crypto_generichash(out, STORE_HASH_BYTES, (const unsigned char *)text, strlen(text), NULL, 0);
}

static int32_t user_id(fixture *f, const char *name)
{
    model_user u;
    assert_int_equal(store_user_by_name(f->s, f->a, name, &u), STORE_OK);
    return u.id;
}

/* ---- Basic --------------------------------------------------------------- */

static void test_basic(void **state)
{
    fixture *f = *state;
    auth_result r;
    const char *why = NULL;
    assert_int_equal(auth_hdr(f, basic(f, "alice", PW_ALICE), NULL, &r, &why), CB_EOK);
    assert_string_equal(r.user.name, "alice");
    assert_int_equal(r.scheme, AUTH_BASIC);
    assert_null(r.app);
    assert_string_equal(why, "");
    assert_int_equal(auth_hdr(f, basic(f, "ALICE", PW_ALICE), NULL, &r, &why), CB_EOK);
    assert_int_equal(auth_hdr(f, basic(f, "alice", "nope"), NULL, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "wrong password");
    assert_null(r.user.name);
    assert_int_equal(auth_hdr(f, basic(f, "nobody", "x"), NULL, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "unknown user");
    assert_int_equal(auth_hdr(f, basic(f, "dave", PW_DAVE), NULL, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "user disabled");
    assert_int_equal(auth_hdr(f, "Basic", NULL, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "unsupported or malformed Authorization header");
}

static void test_basic_cache_password_change(void **state)
{
    fixture *f = *state;
    auth_result r;
    const char *why;
    char h[AUTH_HASH_MAX];
    assert_int_equal(auth_hdr(f, basic(f, "bob", PW_BOB), NULL, &r, &why), CB_EOK);
    assert_int_equal(auth_hdr(f, basic(f, "bob", PW_BOB), NULL, &r, &why), CB_EOK); /* cached */
    assert_int_equal(auth_hash_password("bob-new", h), CB_EOK);
    assert_int_equal(store_user_set_password(f->s, "bob", h), STORE_OK);
    assert_int_equal(auth_hdr(f, basic(f, "bob", PW_BOB), NULL, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "wrong password");
    assert_int_equal(auth_hdr(f, basic(f, "bob", "bob-new"), NULL, &r, &why), CB_EOK);
    /* disabling is seen at once, cache or not */
    assert_int_equal(store_user_set_disabled(f->s, "bob", true), STORE_OK);
    assert_int_equal(auth_hdr(f, basic(f, "bob", "bob-new"), NULL, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "user disabled");
}

/* A Basic value verified once is remembered (not the value: its keyed
 * hash) until users change, in this process or another (`crmblob user
 * ...` from a shell); the remembered answer is the whole user. */
static void test_basic_remembered_until_users_change(void **state)
{
    fixture *f = *state;
    auth_result first, r;
    const char *why;
    store_t *other = NULL; /* another process's handle on the database */
    assert_int_equal(store_open(f->path, NULL, &other), STORE_OK);
    const char *hdr = basic(f, "alice", PW_ALICE);
    assert_int_equal(auth_hdr(f, hdr, NULL, &first, &why), CB_EOK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(auth_hdr(f, hdr, NULL, &r, &why), CB_EOK);
        assert_int_equal(r.user.id, first.user.id);
        assert_string_equal(r.user.name, "alice");
        assert_string_equal(r.user.full_name, first.user.full_name);
        assert_int_equal(r.user.role, first.user.role);
        assert_int_equal(r.scheme, AUTH_BASIC);
    }
    assert_int_equal(auth_hdr(f, basic(f, "alice", "nope"), NULL, &r, &why), CB_EUNAUTH);
    assert_int_equal(store_user_set_disabled(other, "alice", true), STORE_OK);
    assert_int_equal(auth_hdr(f, hdr, NULL, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "user disabled");
    assert_int_equal(store_user_set_disabled(other, "alice", false), STORE_OK);
    assert_int_equal(auth_hdr(f, hdr, NULL, &r, &why), CB_EOK);
    char h[AUTH_HASH_MAX];
    assert_int_equal(auth_hash_password("alice-new", h), CB_EOK);
    assert_int_equal(store_user_set_password(other, "alice", h), STORE_OK);
    assert_int_equal(auth_hdr(f, hdr, NULL, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "wrong password");
    store_close(other);
}

/* ---- tickets -------------------------------------------------------------- */

static void test_ticket(void **state)
{
    fixture *f = *state;
    const char *t = NULL, *why;
    int64_t exp = 0, now = text_now_ms();
    auth_result r;
    assert_int_equal(auth_ticket_issue(f->auth, f->a, "alice", 0, &t, &exp), CB_EOK);
    assert_int_equal(strncmp(t, "7T:", 3), 0);
    assert_int_equal(strlen(t), 3 + 43);
    assert_true(exp >= now + 6 * 3600 * 1000 - 5000 && exp <= now + 6 * 3600 * 1000 + 5000);
    assert_int_equal(auth_hdr(f, arena_printf(f->a, "SOTicket %s", t), NULL, &r, &why), CB_EOK);
    assert_string_equal(r.user.name, "alice");
    assert_int_equal(r.scheme, AUTH_TICKET);
    assert_int_equal(auth_hdr(f, arena_printf(f->a, "soticket\t%s ", t), NULL, &r, &why), CB_EOK);
    /* an explicit ttl */
    assert_int_equal(auth_ticket_issue(f->auth, f->a, "bob", 60, &t, &exp), CB_EOK);
    assert_true(exp <= text_now_ms() + 60 * 1000 && exp > now);
    /* two tickets differ */
    const char *t2;
    assert_int_equal(auth_ticket_issue(f->auth, f->a, "bob", 60, &t2, &exp), CB_EOK);
    assert_string_not_equal(t, t2);
}

static void test_ticket_base64(void **state)
{
    fixture *f = *state;
    const char *t, *why;
    int64_t exp;
    auth_result r;
    assert_int_equal(auth_ticket_issue(f->auth, f->a, "alice", 0, &t, &exp), CB_EOK);
    static const int variants[] = {
        sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
        sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING};
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        const char *h = arena_printf(f->a, "SOTicket %s", b64(f, t, variants[i]));
        assert_int_equal(auth_hdr(f, h, NULL, &r, &why), CB_EOK);
        assert_string_equal(r.user.name, "alice");
    }
    /* base64 of a wrong ticket */
    const char *bad =
        arena_printf(f->a, "SOTicket %s", b64(f, "7T:nope", sodium_base64_VARIANT_ORIGINAL));
    assert_int_equal(auth_hdr(f, bad, NULL, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "unknown ticket");
}

static void test_ticket_expired(void **state)
{
    fixture *f = *state;
    const char *secret = "7T:expired-ticket-for-the-test", *why;
    store_cred c = {.kind = STORE_CRED_TICKET,
                    .user_id = user_id(f, "alice"),
                    .expires_ms = text_now_ms() - 1000};
    secret_hash(secret, c.hash);
    assert_int_equal(store_cred_add(f->s, &c), STORE_OK);
    auth_result r;
    assert_int_equal(auth_hdr(f, arena_printf(f->a, "SOTicket %s", secret), NULL, &r, &why),
                     CB_EUNAUTH);
    assert_string_equal(why, "ticket expired");
    /* and one that expires by itself */
    const char *t;
    int64_t exp;
    assert_int_equal(auth_ticket_issue(f->auth, f->a, "alice", 1, &t, &exp), CB_EOK);
    const char *h = arena_printf(f->a, "SOTicket %s", t);
    assert_int_equal(auth_hdr(f, h, NULL, &r, &why), CB_EOK);
    struct timespec ts = {1, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_int_equal(auth_hdr(f, h, NULL, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "ticket expired");
}

static void test_ticket_revoke(void **state)
{
    fixture *f = *state;
    const char *t, *why;
    int64_t exp;
    auth_result r;
    assert_int_equal(auth_ticket_issue(f->auth, f->a, "alice", 0, &t, &exp), CB_EOK);
    const char *h = arena_printf(f->a, "SOTicket %s", t);
    assert_int_equal(auth_hdr(f, h, NULL, &r, &why), CB_EOK);
    assert_int_equal(auth_revoke_secret(f->auth, t), CB_EOK);
    assert_int_equal(auth_hdr(f, h, NULL, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "ticket revoked");
    assert_int_equal(auth_revoke_secret(f->auth, t), CB_EOK); /* again: nothing to do */
    assert_int_equal(auth_revoke_secret(f->auth, "7T:unknown"), CB_ENOTFOUND);
    assert_int_equal(auth_revoke_secret(f->auth, "8A:unknown"), CB_ENOTFOUND);
    assert_int_equal(auth_revoke_secret(f->auth, "garbage"), CB_EBADREQ);
    assert_int_equal(auth_revoke_secret(f->auth, "0"), CB_EBADREQ);
    assert_int_equal(auth_revoke_secret(f->auth, "12345"), CB_ENOTFOUND);
}

static void test_ticket_users(void **state)
{
    fixture *f = *state;
    const char *t, *why;
    int64_t exp;
    auth_result r;
    assert_int_equal(auth_ticket_issue(f->auth, f->a, "nobody", 0, &t, &exp), CB_ENOTFOUND);
    assert_int_equal(auth_ticket_issue(f->auth, f->a, "dave", 0, &t, &exp), CB_EFORBIDDEN);
    assert_int_equal(auth_ticket_issue(f->auth, f->a, "bob", 0, &t, &exp), CB_EOK);
    assert_int_equal(store_user_set_disabled(f->s, "bob", true), STORE_OK);
    assert_int_equal(auth_hdr(f, arena_printf(f->a, "SOTicket %s", t), NULL, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "user disabled");
}

static void test_ticket_ttl_config(void **state)
{
    fixture *f = *state;
    auth_config cfg = {.ticket_ttl_s = 120};
    reconfigure(f, &cfg);
    const char *t;
    int64_t exp, now = text_now_ms();
    assert_int_equal(auth_ticket_issue(f->auth, f->a, "alice", 0, &t, &exp), CB_EOK);
    assert_true(exp >= now + 119 * 1000 && exp <= now + 125 * 1000);
}

/* ---- access tokens ----------------------------------------------------- */

static void test_token(void **state)
{
    fixture *f = *state;
    const char *t, *why;
    int64_t exp, now = text_now_ms();
    auth_result r;
    assert_int_equal(auth_token_issue(f->auth, f->a, "bob", 3600, "ci job", &t, &exp), CB_EOK);
    assert_int_equal(strncmp(t, "8A:", 3), 0);
    assert_int_equal(strlen(t), 3 + 43);
    assert_true(exp >= now + 3599 * 1000);
    const char *h = arena_printf(f->a, "Bearer %s", t);
    assert_int_equal(auth_hdr(f, h, NULL, &r, &why), CB_EOK);
    assert_string_equal(r.user.name, "bob");
    assert_int_equal(r.scheme, AUTH_TOKEN);
    assert_int_equal(auth_hdr(f, arena_printf(f->a, "BEARER  %s", t), NULL, &r, &why), CB_EOK);

    store_cred *v;
    size_t n;
    assert_int_equal(store_cred_list(f->s, f->a, STORE_CRED_TOKEN, now, &v, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].label, "ci job");
    assert_string_equal(v[0].user_name, "bob");

    /* revoke by id */
    assert_int_equal(auth_revoke_secret(f->auth, arena_printf(f->a, "%lld", (long long)v[0].id)),
                     CB_EOK);
    assert_int_equal(auth_hdr(f, h, NULL, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "access token revoked");
    assert_int_equal(auth_hdr(f, "Bearer 8A:nope", NULL, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "unknown access token");
}

static void test_token_revoke_by_secret(void **state)
{
    fixture *f = *state;
    const char *t, *why;
    int64_t exp, now = text_now_ms();
    auth_result r;
    assert_int_equal(auth_token_issue(f->auth, f->a, "alice", 0, NULL, &t, &exp), CB_EOK);
    assert_true(exp > now + 86400 * 1000); /* the default lasts days */
    assert_int_equal(auth_revoke_secret(f->auth, t), CB_EOK);
    assert_int_equal(auth_hdr(f, arena_printf(f->a, "Bearer %s", t), NULL, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "access token revoked");
}

static void test_token_is_not_ticket(void **state)
{
    fixture *f = *state;
    const char *t, *why;
    int64_t exp;
    auth_result r;
    assert_int_equal(auth_ticket_issue(f->auth, f->a, "alice", 0, &t, &exp), CB_EOK);
    assert_int_equal(auth_hdr(f, arena_printf(f->a, "Bearer %s", t), NULL, &r, &why), CB_EUNAUTH);
    assert_int_equal(auth_token_issue(f->auth, f->a, "alice", 0, "", &t, &exp), CB_EOK);
    assert_int_equal(auth_hdr(f, arena_printf(f->a, "SOTicket %s", t), NULL, &r, &why),
                     CB_EUNAUTH); /* not even parsed: no 7T: */
}

/* ---- sessions ----------------------------------------------------------- */

static void test_session_login(void **state)
{
    fixture *f = *state;
    auth_login_result lr;
    auth_result r;
    const char *why;
    int64_t now = text_now_ms();
    assert_int_equal(auth_login(f->auth, f->s, f->a, "alice", PW_ALICE, "10.1.1.1", &lr), CB_EOK);
    assert_string_equal(lr.user.name, "alice");
    assert_int_equal(strncmp(lr.ticket, "7T:", 3), 0);
    assert_int_equal(strlen(lr.session), 43);
    assert_int_equal(strlen(lr.xsrf), 43);
    assert_string_not_equal(lr.session, lr.xsrf);
    assert_true(lr.session_expires_ms >= now + 8 * 3600 * 1000 - 5000);
    assert_true(lr.ticket_expires_ms >= now + 6 * 3600 * 1000 - 5000);

    auth_input in = {.cookie = arena_printf(f->a, "a=1; %s=%s; XSRF-TOKEN=%s", AUTH_SESSION_COOKIE,
                                            lr.session, lr.xsrf),
                     .xsrf = lr.xsrf};
    assert_int_equal(auth_in(f, &in, &r, &why), CB_EOK);
    assert_string_equal(r.user.name, "alice");
    assert_int_equal(r.scheme, AUTH_COOKIE);
    in.cookie = arena_printf(f->a, "%s=\"%s\"", AUTH_SESSION_COOKIE, lr.session); /* quoted */
    assert_int_equal(auth_in(f, &in, &r, &why), CB_EOK);

    in.xsrf = NULL;
    assert_int_equal(auth_in(f, &in, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "XSRF token missing");
    in.xsrf = "";
    assert_int_equal(auth_in(f, &in, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "XSRF token missing");
    in.xsrf = lr.session; /* the cookie itself is not the XSRF token */
    assert_int_equal(auth_in(f, &in, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "XSRF token mismatch");

    /* the login's ticket works too */
    assert_int_equal(auth_hdr(f, arena_printf(f->a, "SOTicket %s", lr.ticket), NULL, &r, &why),
                     CB_EOK);
}

static void test_session_logout(void **state)
{
    fixture *f = *state;
    auth_login_result lr;
    auth_result r;
    const char *why;
    assert_int_equal(auth_login(f->auth, f->s, f->a, "alice", PW_ALICE, NULL, &lr), CB_EOK);
    auth_input in = {.cookie = arena_printf(f->a, "%s=%s", AUTH_SESSION_COOKIE, lr.session),
                     .xsrf = lr.xsrf};
    auth_input tin = {.authorization = arena_printf(f->a, "SOTicket %s", lr.ticket)};
    assert_int_equal(auth_in(f, &in, &r, &why), CB_EOK);
    auth_input out = {.cookie = in.cookie, .authorization = tin.authorization};
    assert_int_equal(auth_logout(f->auth, f->s, f->a, &out), CB_EOK);
    assert_int_equal(auth_in(f, &in, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "session revoked");
    assert_int_equal(auth_in(f, &tin, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "ticket revoked");
    assert_int_equal(auth_logout(f->auth, f->s, f->a, &out), CB_EOK); /* twice is fine */
    auth_input none = {0};
    assert_int_equal(auth_logout(f->auth, f->s, f->a, &none), CB_EOK);
}

static void test_logout_token(void **state)
{
    fixture *f = *state;
    const char *t, *why;
    int64_t exp;
    auth_result r;
    assert_int_equal(auth_token_issue(f->auth, f->a, "alice", 0, "x", &t, &exp), CB_EOK);
    auth_input in = {.authorization = arena_printf(f->a, "Bearer %s", t)};
    assert_int_equal(auth_logout(f->auth, f->s, f->a, &in), CB_EOK);
    assert_int_equal(auth_in(f, &in, &r, &why), CB_EUNAUTH);
    in.authorization = basic(f, "alice", PW_ALICE); /* nothing to revoke */
    assert_int_equal(auth_logout(f->auth, f->s, f->a, &in), CB_EOK);
}

static void test_session_expired_and_unknown(void **state)
{
    fixture *f = *state;
    const char *sid = "expired-session-id", *xsrf = "xsrf-of-expired", *why;
    store_cred c = {.kind = STORE_CRED_SESSION,
                    .user_id = user_id(f, "alice"),
                    .expires_ms = text_now_ms() - 1};
    secret_hash(sid, c.hash);
    secret_hash(xsrf, c.xsrf_hash);
    assert_int_equal(store_cred_add(f->s, &c), STORE_OK);
    auth_result r;
    auth_input in = {.cookie = arena_printf(f->a, "%s=%s", AUTH_SESSION_COOKIE, sid), .xsrf = xsrf};
    assert_int_equal(auth_in(f, &in, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "session expired");
    in.cookie = arena_printf(f->a, "%s=nope", AUTH_SESSION_COOKIE);
    assert_int_equal(auth_in(f, &in, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "unknown session");
    in.cookie = "other=1";
    assert_int_equal(auth_in(f, &in, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "no credentials");
}

static void test_login_refused(void **state)
{
    fixture *f = *state;
    auth_login_result lr;
    assert_int_equal(auth_login(f->auth, f->s, f->a, "alice", "wrong", NULL, &lr), CB_EUNAUTH);
    assert_null(lr.ticket);
    assert_null(lr.session);
    assert_int_equal(auth_login(f->auth, f->s, f->a, "dave", PW_DAVE, NULL, &lr), CB_EUNAUTH);
    assert_int_equal(auth_login(f->auth, f->s, f->a, "nobody", "x", NULL, &lr), CB_EUNAUTH);
    assert_int_equal(auth_login(f->auth, f->s, f->a, "", "x", NULL, &lr), CB_EUNAUTH);
    assert_int_equal(auth_login(f->auth, f->s, f->a, NULL, NULL, NULL, &lr), CB_EUNAUTH);
}

/* ---- partner applications ------------------------------------------------ */

static void test_app_optional(void **state)
{
    fixture *f = *state;
    const char *tok, *why;
    auth_result r;
    assert_int_equal(auth_apptoken_add(f->auth, f->a, "Partner", &tok), CB_EOK);
    assert_int_equal(strlen(tok), 43);
    assert_int_equal(auth_apptoken_add(f->auth, f->a, "partner", &tok), CB_ECONFLICT);
    assert_int_equal(auth_apptoken_add(f->auth, f->a, "", &tok), CB_EBADREQ);
    assert_int_equal(auth_apptoken_add(f->auth, f->a, "Other", &tok), CB_EOK);
    auth_input in = {.authorization = basic(f, "alice", PW_ALICE), .app_token = tok};
    assert_int_equal(auth_in(f, &in, &r, &why), CB_EOK);
    assert_string_equal(r.app, "Other");
    in.app_token = "unknown-app-token";
    assert_int_equal(auth_in(f, &in, &r, &why), CB_EOK);
    assert_null(r.app);
    in.app_token = NULL;
    assert_int_equal(auth_in(f, &in, &r, &why), CB_EOK);
    assert_null(r.app);
    assert_int_equal(store_app_revoke(f->s, "Other"), STORE_OK);
    in.app_token = tok;
    assert_int_equal(auth_in(f, &in, &r, &why), CB_EOK);
    assert_null(r.app);
}

static void test_app_required(void **state)
{
    fixture *f = *state;
    auth_config cfg = {.require_app_token = true};
    reconfigure(f, &cfg);
    const char *tok, *why;
    auth_result r;
    assert_int_equal(auth_apptoken_add(f->auth, f->a, "Partner", &tok), CB_EOK);
    auth_input in = {.authorization = basic(f, "alice", PW_ALICE), .app_token = tok};
    assert_int_equal(auth_in(f, &in, &r, &why), CB_EOK);
    assert_string_equal(r.app, "Partner");
    assert_string_equal(r.user.name, "alice");
    in.app_token = NULL;
    assert_int_equal(auth_in(f, &in, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "SO-AppToken missing");
    assert_null(r.user.name);
    in.app_token = "";
    assert_int_equal(auth_in(f, &in, &r, &why), CB_EUNAUTH);
    in.app_token = "unknown-app-token";
    assert_int_equal(auth_in(f, &in, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "unknown SO-AppToken");
    assert_int_equal(store_app_revoke(f->s, "partner"), STORE_OK);
    in.app_token = tok;
    assert_int_equal(auth_in(f, &in, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "SO-AppToken revoked");
    /* a bad principal is reported first */
    in.authorization = basic(f, "alice", "wrong");
    assert_int_equal(auth_in(f, &in, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "wrong password");
}

/* ---- schemes ------------------------------------------------------------- */

static void test_scheme_disabled(void **state)
{
    fixture *f = *state;
    const char *t, *tok, *why;
    int64_t exp;
    auth_result r;
    auth_login_result lr;
    assert_int_equal(auth_ticket_issue(f->auth, f->a, "alice", 0, &t, &exp), CB_EOK);
    assert_int_equal(auth_token_issue(f->auth, f->a, "alice", 0, NULL, &tok, &exp), CB_EOK);
    assert_int_equal(auth_login(f->auth, f->s, f->a, "alice", PW_ALICE, NULL, &lr), CB_EOK);
    const char *th = arena_printf(f->a, "SOTicket %s", t);
    const char *bh = arena_printf(f->a, "Bearer %s", tok);
    auth_input ci = {.cookie = arena_printf(f->a, "%s=%s", AUTH_SESSION_COOKIE, lr.session),
                     .xsrf = lr.xsrf};

    auth_config cfg = {.schemes = AUTH_BASIC};
    reconfigure(f, &cfg);
    assert_int_equal(auth_schemes(f->auth), AUTH_BASIC);
    assert_int_equal(auth_hdr(f, basic(f, "alice", PW_ALICE), NULL, &r, &why), CB_EOK);
    assert_int_equal(auth_hdr(f, th, NULL, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "scheme disabled");
    assert_int_equal(auth_hdr(f, bh, NULL, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "scheme disabled");
    assert_int_equal(auth_in(f, &ci, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "no credentials");

    cfg.schemes = AUTH_TICKET | AUTH_TOKEN | AUTH_COOKIE;
    reconfigure(f, &cfg);
    assert_int_equal(auth_hdr(f, basic(f, "alice", PW_ALICE), NULL, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "scheme disabled");
    assert_int_equal(auth_hdr(f, th, NULL, &r, &why), CB_EOK);
    assert_int_equal(auth_hdr(f, bh, NULL, &r, &why), CB_EOK);
    assert_int_equal(auth_in(f, &ci, &r, &why), CB_EOK);
}

static void test_default_schemes(void **state)
{
    fixture *f = *state;
    /* no JWT keys: JWT is not among the effective schemes */
    assert_int_equal(auth_schemes(f->auth), AUTH_ALL & ~(unsigned)AUTH_JWT);
    auth_config cfg = {.schemes = AUTH_JWT | AUTH_BASIC};
    reconfigure(f, &cfg);
    assert_int_equal(auth_schemes(f->auth), AUTH_BASIC);
}

/* ---- JWT ---------------------------------------------------------------- */

static const char *b64url(fixture *f, const unsigned char *data, size_t n)
{
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = arena_alloc(f->a, cap);
    sodium_bin2base64(out, cap, data, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

/* An HS256 JWT over claims (JSON text) with HS256_SECRET. */
static const char *make_jwt(fixture *f, const char *claims, const char *secret)
{
    const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    const char *input =
        arena_printf(f->a, "%s.%s", b64url(f, (const unsigned char *)hdr, strlen(hdr)),
                     b64url(f, (const unsigned char *)claims, strlen(claims)));
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    assert_non_null(HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)input,
                         strlen(input), mac, &mac_len));
    return arena_printf(f->a, "%s.%s", input, b64url(f, mac, mac_len));
}

/* Writes HS256_SECRET to a key file and configures it. */
static void jwt_configure(fixture *f, const char **key_spec, auth_config *cfg)
{
    const char *path = arena_printf(f->a, "%s/hs256.key", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(HS256_SECRET "\n", fp);
    fclose(fp);
    *key_spec = arena_printf(f->a, "HS256:%s", path);
    cfg->jwt_keys = key_spec;
    cfg->njwt_keys = 1;
    reconfigure(f, cfg);
}

static void test_jwt(void **state)
{
    fixture *f = *state;
    const char *spec, *why;
    auth_config cfg = {.jwt_issuer = "https://idp.example"};
    jwt_configure(f, &spec, &cfg);
    assert_int_equal(auth_schemes(f->auth), AUTH_ALL);
    long long exp = (long long)time(NULL) + 300;
    auth_result r;
    const char *ok = make_jwt(
        f,
        arena_printf(f->a, "{\"sub\":\"alice\",\"iss\":\"https://idp.example\",\"exp\":%lld}", exp),
        HS256_SECRET);
    assert_int_equal(auth_hdr(f, arena_printf(f->a, "Bearer %s", ok), NULL, &r, &why), CB_EOK);
    assert_string_equal(r.user.name, "alice");
    assert_int_equal(r.scheme, AUTH_JWT);

    const char *who = make_jwt(
        f,
        arena_printf(f->a, "{\"sub\":\"nobody\",\"iss\":\"https://idp.example\",\"exp\":%lld}",
                     exp),
        HS256_SECRET);
    assert_int_equal(auth_hdr(f, arena_printf(f->a, "Bearer %s", who), NULL, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "unknown user");
    const char *dave = make_jwt(
        f,
        arena_printf(f->a, "{\"sub\":\"dave\",\"iss\":\"https://idp.example\",\"exp\":%lld}", exp),
        HS256_SECRET);
    assert_int_equal(auth_hdr(f, arena_printf(f->a, "Bearer %s", dave), NULL, &r, &why),
                     CB_EUNAUTH);
    assert_string_equal(why, "user disabled");
    const char *forged = make_jwt(
        f,
        arena_printf(f->a, "{\"sub\":\"alice\",\"iss\":\"https://idp.example\",\"exp\":%lld}", exp),
        "another-secret-another-secret-another-secret");
    assert_int_equal(auth_hdr(f, arena_printf(f->a, "Bearer %s", forged), NULL, &r, &why),
                     CB_EUNAUTH);
    assert_true(strncmp(why, "JWT refused", 11) == 0);
    const char *wrong_iss =
        make_jwt(f, arena_printf(f->a, "{\"sub\":\"alice\",\"iss\":\"evil\",\"exp\":%lld}", exp),
                 HS256_SECRET);
    assert_int_equal(auth_hdr(f, arena_printf(f->a, "Bearer %s", wrong_iss), NULL, &r, &why),
                     CB_EUNAUTH);

    /* JWT disabled: the same token is just an unknown access token */
    cfg.schemes = AUTH_TOKEN;
    reconfigure(f, &cfg);
    assert_int_equal(auth_hdr(f, arena_printf(f->a, "Bearer %s", ok), NULL, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "unknown access token");
}

static void test_jwt_bad_key(void **state)
{
    fixture *f = *state;
    const char *spec = "HS256:/nonexistent/key/file";
    auth_config cfg = {.jwt_keys = &spec, .njwt_keys = 1};
    auth_t *a = NULL;
    assert_int_equal(auth_create(f->s, &cfg, &a), CB_EBADREQ);
    assert_null(a);
}

/* ---- limiter -------------------------------------------------------------- */

static void test_account_lock(void **state)
{
    fixture *f = *state;
    auth_config cfg = {.account_limit = 3, .account_lockout_s = 1, .addr_limit = -1};
    reconfigure(f, &cfg);
    auth_result r;
    const char *why;
    const char *good = basic(f, "alice", PW_ALICE), *bad = basic(f, "alice", "x");
    const char *bob = basic(f, "bob", PW_BOB);
    assert_int_equal(auth_hdr(f, good, "10.0.0.1", &r, &why), CB_EOK); /* remembered */
    for (int i = 0; i < 3; i++)
        assert_int_equal(auth_hdr(f, bad, "10.0.0.1", &r, &why), CB_EUNAUTH);
    /* locked for alice's passwords from there, the remembered one too */
    assert_int_equal(auth_hdr(f, good, "10.0.0.1", &r, &why), CB_ETOOMANY);
    assert_true(r.throttle.account_locked);
    assert_int_equal(r.throttle.retry_after_s, 1);
    assert_int_equal(auth_hdr(f, basic(f, "ALICE", PW_ALICE), "10.0.0.1", &r, &why), CB_ETOOMANY);
    auth_login_result lr;
    assert_int_equal(auth_login(f->auth, f->s, f->a, "alice", PW_ALICE, "10.0.0.1", &lr),
                     CB_ETOOMANY);
    assert_true(lr.throttle.account_locked);
    /* not for other accounts, other addresses, or alice's tickets */
    assert_int_equal(auth_hdr(f, bob, "10.0.0.1", &r, &why), CB_EOK);
    assert_int_equal(auth_hdr(f, good, "10.0.0.2", &r, &why), CB_EOK);
    assert_int_equal(auth_hdr(f, good, NULL, &r, &why), CB_EOK);
    const char *t;
    int64_t exp;
    assert_int_equal(auth_ticket_issue(f->auth, f->a, "alice", 0, &t, &exp), CB_EOK);
    assert_int_equal(auth_hdr(f, arena_printf(f->a, "SOTicket %s", t), "10.0.0.1", &r, &why),
                     CB_EOK);
    struct timespec ts = {1, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_int_equal(auth_hdr(f, good, "10.0.0.1", &r, &why), CB_EOK);
    /* a fresh count: two more wrong ones do not lock */
    assert_int_equal(auth_hdr(f, bad, "10.0.0.1", &r, &why), CB_EUNAUTH);
    assert_int_equal(auth_hdr(f, bad, "10.0.0.1", &r, &why), CB_EUNAUTH);
    assert_int_equal(auth_hdr(f, good, "10.0.0.1", &r, &why), CB_EOK);
}

static void test_address_rate(void **state)
{
    fixture *f = *state;
    auth_config cfg = {.addr_limit = 3, .addr_window_s = 60, .account_limit = -1};
    reconfigure(f, &cfg);
    auth_result r;
    const char *why, *t;
    int64_t exp;
    const char *alice = basic(f, "alice", PW_ALICE);
    assert_int_equal(auth_hdr(f, alice, "10.0.0.3", &r, &why), CB_EOK); /* remembered */
    assert_int_equal(auth_hdr(f, "Bearer 8A:guess", "10.0.0.3", &r, &why), CB_EUNAUTH);
    assert_int_equal(auth_hdr(f, "SOTicket 7T:guess", "10.0.0.3", &r, &why), CB_EUNAUTH);
    assert_int_equal(auth_hdr(f, basic(f, "nobody", "x"), "10.0.0.3", &r, &why), CB_EUNAUTH);
    assert_int_equal(auth_hdr(f, "Bearer 8A:guess", "10.0.0.3", &r, &why), CB_ETOOMANY);
    assert_false(r.throttle.account_locked);
    assert_in_range(r.throttle.retry_after_s, 1, 20); /* one failure forgiven per 20 s */
    /* valid credentials pass, a right password never verified too (another
     * client of the address); a wrong one is refused as too many */
    assert_int_equal(auth_hdr(f, alice, "10.0.0.3", &r, &why), CB_EOK);
    assert_int_equal(auth_token_issue(f->auth, f->a, "bob", 0, "x", &t, &exp), CB_EOK);
    assert_int_equal(auth_hdr(f, arena_printf(f->a, "Bearer %s", t), "10.0.0.3", &r, &why),
                     CB_EOK);
    auth_input poll = {.authorization = basic(f, "bob", PW_BOB), .remote = "10.0.0.3",
                       .no_wait = true};
    assert_int_equal(auth_in(f, &poll, &r, &why), CB_EWOULDBLOCK); /* it needs Argon2id */
    assert_int_equal(auth_hdr(f, basic(f, "bob", PW_BOB), "10.0.0.3", &r, &why), CB_EOK);
    assert_int_equal(auth_hdr(f, basic(f, "dave", "wrong"), "10.0.0.3", &r, &why), CB_ETOOMANY);
    assert_string_equal(why, "too many failed attempts from this address");
    /* other addresses; IPv6 counts by /64 */
    assert_int_equal(auth_hdr(f, basic(f, "bob", PW_BOB), "10.0.0.4", &r, &why), CB_EOK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(auth_hdr(f, "Bearer 8A:x", "2001:db8::1", &r, &why), CB_EUNAUTH);
    assert_int_equal(auth_hdr(f, "Bearer 8A:x", "2001:db8::ffff:2", &r, &why), CB_ETOOMANY);
    assert_int_equal(auth_hdr(f, "Bearer 8A:x", "2001:db8:0:1::1", &r, &why), CB_EUNAUTH);
}

static void test_login_throttled_and_anonymous(void **state)
{
    fixture *f = *state;
    auth_config cfg = {.addr_limit = 3, .account_limit = -1};
    reconfigure(f, &cfg);
    auth_result r;
    auth_login_result lr;
    const char *why;
    auth_input anon = {.remote = "10.0.0.5"};
    for (int i = 0; i < 10; i++) /* presenting nothing guesses nothing */
        assert_int_equal(auth_in(f, &anon, &r, &why), CB_EUNAUTH);
    for (int i = 0; i < 3; i++)
        assert_int_equal(auth_login(f->auth, f->s, f->a, "alice", "bad", "10.0.0.5", &lr),
                         CB_EUNAUTH);
    assert_int_equal(auth_login(f->auth, f->s, f->a, "bob", "bad", "10.0.0.5", &lr), CB_ETOOMANY);
    assert_null(lr.ticket);
    assert_true(lr.throttle.retry_after_s > 0);
    /* a right password is still signed in (another client of the address) */
    assert_int_equal(auth_login(f->auth, f->s, f->a, "bob", PW_BOB, "10.0.0.5", &lr), CB_EOK);
    assert_non_null(lr.ticket);
    assert_int_equal(auth_in(f, &anon, &r, &why), CB_EUNAUTH); /* still not counted */
}

static void test_limits_off(void **state)
{
    fixture *f = *state;
    auth_config cfg = {.addr_limit = -1, .account_limit = -1};
    reconfigure(f, &cfg);
    auth_result r;
    const char *why;
    for (int i = 0; i < 40; i++)
        assert_int_equal(auth_hdr(f, "Bearer 8A:guess", "10.0.0.6", &r, &why), CB_EUNAUTH);
    for (int i = 0; i < 6; i++)
        assert_int_equal(auth_hdr(f, basic(f, "alice", "x"), "10.0.0.6", &r, &why), CB_EUNAUTH);
    assert_int_equal(auth_hdr(f, basic(f, "alice", PW_ALICE), "10.0.0.6", &r, &why), CB_EOK);
}

static void test_limits_default(void **state)
{
    fixture *f = *state;
    auth_result r;
    const char *why;
    for (int i = 0; i < 4; i++)
        assert_int_equal(auth_hdr(f, basic(f, "alice", "x"), "10.0.0.7", &r, &why), CB_EUNAUTH);
    assert_int_equal(auth_hdr(f, basic(f, "alice", PW_ALICE), "10.0.0.7", &r, &why), CB_EOK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(auth_hdr(f, basic(f, "alice", "x"), "10.0.0.7", &r, &why), CB_EUNAUTH);
    assert_int_equal(auth_hdr(f, basic(f, "alice", PW_ALICE), "10.0.0.7", &r, &why), CB_ETOOMANY);
    assert_int_equal(r.throttle.retry_after_s, 300);
    for (int i = 0; i < 21; i++) /* 9 spent, 30 in a burst */
        assert_int_equal(auth_hdr(f, "Bearer 8A:guess", "10.0.0.7", &r, &why), CB_EUNAUTH);
    assert_int_equal(auth_hdr(f, "Bearer 8A:guess", "10.0.0.7", &r, &why), CB_ETOOMANY);
}

/* An attacker rotating accounts and addresses replaces entries: memory stays
 * what it was, and a fresh pair is still counted and locked. */
static void test_limits_bounded(void **state)
{
    fixture *f = *state;
    auth_config cfg = {.addr_limit = 2, .account_limit = 2};
    reconfigure(f, &cfg);
    auth_login_result lr;
    for (int i = 0; i < 20000; i++) {
        const char *addr = arena_printf(f->a, "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
        auth_result r;
        const char *why;
        auth_hdr(f, "Bearer 8A:guess", addr, &r, &why);
    }
    assert_int_equal(auth_login(f->auth, f->s, f->a, "bob", "x", "10.200.0.1", &lr), CB_EUNAUTH);
    assert_int_equal(auth_login(f->auth, f->s, f->a, "bob", "y", "10.200.0.1", &lr), CB_EUNAUTH);
    assert_int_equal(auth_login(f->auth, f->s, f->a, "bob", PW_BOB, "10.200.0.1", &lr),
                     CB_ETOOMANY);
    assert_true(lr.throttle.account_locked);
}

/* A login's ticket and session end together, either way round. */
static void test_login_pair(void **state)
{
    fixture *f = *state;
    auth_login_result a, b;
    auth_result r;
    const char *why;
    assert_int_equal(auth_login(f->auth, f->s, f->a, "alice", PW_ALICE, NULL, &a), CB_EOK);
    assert_int_equal(auth_login(f->auth, f->s, f->a, "alice", PW_ALICE, NULL, &b), CB_EOK);
    auth_input sa = {.cookie = arena_printf(f->a, "%s=%s", AUTH_SESSION_COOKIE, a.session),
                     .xsrf = a.xsrf};
    auth_input ta = {.authorization = arena_printf(f->a, "SOTicket %s", a.ticket)};
    auth_input sb = {.cookie = arena_printf(f->a, "%s=%s", AUTH_SESSION_COOKIE, b.session),
                     .xsrf = b.xsrf};
    auth_input tb = {.authorization = arena_printf(f->a, "SOTicket %s", b.ticket)};
    assert_int_equal(auth_logout(f->auth, f->s, f->a, &sa), CB_EOK); /* the cookie alone */
    assert_int_equal(auth_in(f, &ta, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "ticket revoked");
    assert_int_equal(auth_in(f, &sb, &r, &why), CB_EOK); /* the other login stays */
    assert_int_equal(auth_logout(f->auth, f->s, f->a, &tb), CB_EOK); /* the ticket alone */
    assert_int_equal(auth_in(f, &sb, &r, &why), CB_EUNAUTH);
    assert_string_equal(why, "session revoked");
}

/* What user passwd / disable do (store_cred_revoke_user) ends them all. */
static void test_end_credentials(void **state)
{
    fixture *f = *state;
    auth_login_result lr;
    auth_result r;
    const char *why, *t, *k, *bt;
    int64_t exp;
    assert_int_equal(auth_login(f->auth, f->s, f->a, "alice", PW_ALICE, NULL, &lr), CB_EOK);
    assert_int_equal(auth_ticket_issue(f->auth, f->a, "alice", 0, &t, &exp), CB_EOK);
    assert_int_equal(auth_token_issue(f->auth, f->a, "alice", 0, "x", &k, &exp), CB_EOK);
    assert_int_equal(auth_token_issue(f->auth, f->a, "bob", 0, "x", &bt, &exp), CB_EOK);
    assert_int_equal(store_cred_revoke_user(f->s, "ALICE"), STORE_OK);
    assert_int_equal(store_cred_revoke_user(f->s, "nobody"), STORE_ABSENT);
    auth_input in = {.cookie = arena_printf(f->a, "%s=%s", AUTH_SESSION_COOKIE, lr.session),
                     .xsrf = lr.xsrf};
    assert_int_equal(auth_in(f, &in, &r, &why), CB_EUNAUTH);
    assert_int_equal(auth_hdr(f, arena_printf(f->a, "SOTicket %s", lr.ticket), NULL, &r, &why),
                     CB_EUNAUTH);
    assert_int_equal(auth_hdr(f, arena_printf(f->a, "SOTicket %s", t), NULL, &r, &why),
                     CB_EUNAUTH);
    assert_int_equal(auth_hdr(f, arena_printf(f->a, "Bearer %s", k), NULL, &r, &why), CB_EUNAUTH);
    assert_int_equal(auth_hdr(f, arena_printf(f->a, "Bearer %s", bt), NULL, &r, &why), CB_EOK);
}

/* ---- parsers ------------------------------------------------------------ */

typedef struct {
    const char *header;
    cb_err rc;
    auth_scheme scheme;
    const char *user, *password, *secret;
} header_case;

static const header_case header_cases[] = {
    {"Basic YWxpY2U6cHc=", CB_EOK, AUTH_BASIC, "alice", "pw", NULL},
    {"basic YWxpY2U6cHc=", CB_EOK, AUTH_BASIC, "alice", "pw", NULL},
    {"BASIC YWxpY2U6cHc=", CB_EOK, AUTH_BASIC, "alice", "pw", NULL},
    {"  Basic   YWxpY2U6cHc=  ", CB_EOK, AUTH_BASIC, "alice", "pw", NULL},
    {"Basic\tYWxpY2U6cHc=", CB_EOK, AUTH_BASIC, "alice", "pw", NULL},
    {"\tBasic YWxpY2U6cHc=\t", CB_EOK, AUTH_BASIC, "alice", "pw", NULL},
    {"Basic YWxpY2U6", CB_EOK, AUTH_BASIC, "alice", "", NULL},
    {"Basic YTpiOmM=", CB_EOK, AUTH_BASIC, "a", "b:c", NULL},
    {"Basic OnB3", CB_EUNAUTH, 0, NULL, NULL, NULL},     /* empty user */
    {"Basic YWxpY2U=", CB_EUNAUTH, 0, NULL, NULL, NULL}, /* no colon */
    {"Basic YQBiOmM=", CB_EUNAUTH, 0, NULL, NULL, NULL}, /* NUL inside */
    {"Basic !!!not-base64!!!", CB_EUNAUTH, 0, NULL, NULL, NULL},
    {"Basic YWxpY2U6cHc", CB_EUNAUTH, 0, NULL, NULL, NULL},   /* padding missing */
    {"Basic YWxp Y2U6cHc=", CB_EUNAUTH, 0, NULL, NULL, NULL}, /* space inside */
    {"Basic YWxpY2U6cHc=extra", CB_EUNAUTH, 0, NULL, NULL, NULL},
    {"Basic", CB_EUNAUTH, 0, NULL, NULL, NULL},
    {"Basic    ", CB_EUNAUTH, 0, NULL, NULL, NULL},
    {"", CB_EUNAUTH, 0, NULL, NULL, NULL},
    {"   ", CB_EUNAUTH, 0, NULL, NULL, NULL},
    {"Digest username=admin", CB_EUNAUTH, 0, NULL, NULL, NULL},
    {"BasicYWxpY2U6cHc=", CB_EUNAUTH, 0, NULL, NULL, NULL},
    {"SOTicket 7T:abc", CB_EOK, AUTH_TICKET, NULL, NULL, "7T:abc"},
    {"soticket 7T:abc", CB_EOK, AUTH_TICKET, NULL, NULL, "7T:abc"},
    {"SOTicket\t7T:abc ", CB_EOK, AUTH_TICKET, NULL, NULL, "7T:abc"},
    {"SOTicket N1Q6YWJj", CB_EOK, AUTH_TICKET, NULL, NULL, "7T:abc"},
    {"SOTicket N1Q6YWJjZA==", CB_EOK, AUTH_TICKET, NULL, NULL, "7T:abcd"},
    {"SOTicket N1Q6YWJjZA", CB_EOK, AUTH_TICKET, NULL, NULL, "7T:abcd"},
    {"SOTicket N1Q6YX5+Pg==", CB_EOK, AUTH_TICKET, NULL, NULL, "7T:a~~>"},
    {"SOTicket N1Q6YX5-Pg==", CB_EOK, AUTH_TICKET, NULL, NULL, "7T:a~~>"},
    {"SOTicket N1Q6YX5-Pg", CB_EOK, AUTH_TICKET, NULL, NULL, "7T:a~~>"},
    {"SOTicket N1Q6-_8=", CB_EUNAUTH, 0, NULL, NULL, NULL}, /* decodes to non-ASCII */
    {"SOTicket YWJj", CB_EUNAUTH, 0, NULL, NULL, NULL},     /* "abc": no 7T: */
    {"SOTicket 7T:", CB_EUNAUTH, 0, NULL, NULL, NULL},
    {"SOTicket 7T:a b", CB_EUNAUTH, 0, NULL, NULL, NULL},
    {"SOTicket @@@", CB_EUNAUTH, 0, NULL, NULL, NULL},
    {"SOTicket", CB_EUNAUTH, 0, NULL, NULL, NULL},
    {"SOTicket 8A:abc", CB_EUNAUTH, 0, NULL, NULL, NULL},
    {"Bearer 8A:xyz", CB_EOK, AUTH_TOKEN, NULL, NULL, "8A:xyz"},
    {"bearer 8A:xyz", CB_EOK, AUTH_TOKEN, NULL, NULL, "8A:xyz"},
    {"Bearer\t8A:xyz\t", CB_EOK, AUTH_TOKEN, NULL, NULL, "8A:xyz"},
    {"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln", CB_EOK, AUTH_JWT, NULL, NULL,
     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"},
    {"Bearer", CB_EUNAUTH, 0, NULL, NULL, NULL},
    {"Bearer 8A:x y", CB_EUNAUTH, 0, NULL, NULL, NULL},
    {"Bearer 8A:x\x01y", CB_EUNAUTH, 0, NULL, NULL, NULL},
    {"BearerX 8A:xyz", CB_EUNAUTH, 0, NULL, NULL, NULL},
};

static void check_header_case(fixture *f, const header_case *c)
{
    auth_credentials cr;
    cb_err rc = auth_parse_header(f->a, c->header, &cr);
    if (rc != c->rc)
        fail_msg("\"%s\": %s, want %s", c->header, err_name(rc), err_name(c->rc));
    if (rc != CB_EOK)
        return;
    assert_int_equal(cr.scheme, c->scheme);
    if (c->user != NULL) {
        assert_string_equal(cr.user, c->user);
        assert_string_equal(cr.password, c->password);
    }
    if (c->secret != NULL)
        assert_string_equal(cr.secret, c->secret);
}

static void test_parse_header(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < sizeof(header_cases) / sizeof(header_cases[0]); i++)
        check_header_case(f, &header_cases[i]);
    auth_credentials cr;
    assert_int_equal(auth_parse_header(f->a, NULL, &cr), CB_EUNAUTH);
    /* exactly at the limit, then one over */
    size_t pre = strlen("Bearer 8A:");
    char *h = arena_alloc(f->a, AUTH_HEADER_MAX + 2);
    memcpy(h, "Bearer 8A:", pre);
    memset(h + pre, 'x', AUTH_HEADER_MAX - pre);
    assert_int_equal(auth_parse_header(f->a, h, &cr), CB_EOK);
    h[AUTH_HEADER_MAX] = 'x';
    assert_int_equal(auth_parse_header(f->a, h, &cr), CB_EUNAUTH);
    char *big = arena_alloc(f->a, 3 * AUTH_HEADER_MAX);
    memcpy(big, "Basic ", 6);
    memset(big + 6, 'A', 3 * AUTH_HEADER_MAX - 8);
    assert_int_equal(auth_parse_header(f->a, big, &cr), CB_EUNAUTH);
}

static void test_cookie_value(void **state)
{
    fixture *f = *state;
    arena_t *a = f->a;
    assert_string_equal(auth_cookie_value(a, "a=b; c=d", "a"), "b");
    assert_string_equal(auth_cookie_value(a, "a=b; c=d", "c"), "d");
    assert_string_equal(auth_cookie_value(a, "a=b;c=d", "c"), "d");
    assert_string_equal(auth_cookie_value(a, "  a = b ;  c=d  ", "a"), "b");
    assert_string_equal(auth_cookie_value(a, "a=\"quoted\"", "a"), "quoted");
    assert_string_equal(auth_cookie_value(a, "a=\"", "a"), "\"");
    assert_string_equal(auth_cookie_value(a, "a=1; a=2", "a"), "1"); /* first wins */
    assert_string_equal(auth_cookie_value(a, "a=", "a"), "");
    assert_string_equal(auth_cookie_value(a, "a=x=y", "a"), "x=y");
    assert_string_equal(auth_cookie_value(a, "ab=1; a=2", "a"), "2");
    assert_null(auth_cookie_value(a, "A=1", "a")); /* names are case-sensitive */
    assert_null(auth_cookie_value(a, "a", "a"));
    assert_null(auth_cookie_value(a, "", "a"));
    assert_null(auth_cookie_value(a, ";;;", "a"));
    assert_null(auth_cookie_value(a, NULL, "a"));
    assert_null(auth_cookie_value(a, "b=1", "a"));
    assert_string_equal(
        auth_cookie_value(a, "x=1; crmblob_session=abc; XSRF-TOKEN=def", AUTH_SESSION_COOKIE),
        "abc");
    assert_string_equal(
        auth_cookie_value(a, "x=1; crmblob_session=abc; XSRF-TOKEN=def", AUTH_XSRF_COOKIE), "def");
}

static void expect_challenge(fixture *f, unsigned schemes, const char *want)
{
    auth_config cfg = {.schemes = schemes};
    reconfigure(f, &cfg);
    assert_string_equal(auth_challenge(f->auth), want);
}

static void test_challenge(void **state)
{
    fixture *f = *state;
    assert_string_equal(auth_challenge(f->auth),
                        "Basic realm=\"crmblob\", charset=\"UTF-8\", SOTicket realm=\"crmblob\", "
                        "Bearer realm=\"crmblob\"");
    expect_challenge(f, AUTH_BASIC, "Basic realm=\"crmblob\", charset=\"UTF-8\"");
    expect_challenge(f, AUTH_TICKET, "SOTicket realm=\"crmblob\"");
    expect_challenge(f, AUTH_TOKEN, "Bearer realm=\"crmblob\"");
    expect_challenge(f, AUTH_TOKEN | AUTH_COOKIE, "Bearer realm=\"crmblob\"");
    expect_challenge(f, AUTH_COOKIE, "Cookie realm=\"crmblob\"");
    expect_challenge(f, AUTH_JWT | AUTH_COOKIE, "Cookie realm=\"crmblob\""); /* no keys */
    expect_challenge(f, AUTH_BASIC | AUTH_TOKEN,
                     "Basic realm=\"crmblob\", charset=\"UTF-8\", Bearer realm=\"crmblob\"");
    const char *spec;
    auth_config cfg = {.schemes = AUTH_JWT};
    jwt_configure(f, &spec, &cfg);
    assert_string_equal(auth_challenge(f->auth), "Bearer realm=\"crmblob\"");
}

static void test_parse_schemes(void **state)
{
    (void)state;
    unsigned s = 0;
    assert_true(auth_parse_schemes("basic", &s));
    assert_int_equal(s, AUTH_BASIC);
    assert_true(auth_parse_schemes("basic,ticket,token,jwt,cookie", &s));
    assert_int_equal(s, AUTH_ALL);
    assert_true(auth_parse_schemes(" Basic , TICKET ", &s));
    assert_int_equal(s, AUTH_BASIC | AUTH_TICKET);
    assert_true(auth_parse_schemes("bearer", &s));
    assert_int_equal(s, AUTH_TOKEN | AUTH_JWT);
    assert_true(auth_parse_schemes("ALL", &s));
    assert_int_equal(s, AUTH_ALL);
    assert_true(auth_parse_schemes("cookie,\ttoken", &s));
    assert_int_equal(s, AUTH_COOKIE | AUTH_TOKEN);
    s = 12345;
    assert_false(auth_parse_schemes("basic,digest", &s));
    assert_int_equal(s, 12345); /* untouched on failure */
    assert_false(auth_parse_schemes("", &s));
    assert_false(auth_parse_schemes("basic,", &s));
    assert_false(auth_parse_schemes(",basic", &s));
    assert_false(auth_parse_schemes("basic,,ticket", &s));
    assert_false(auth_parse_schemes("bas ic", &s));
    assert_false(auth_parse_schemes(NULL, &s));
}

int main(void)
{
    log_set_level(LOG_ERROR);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_basic),
        T(test_basic_cache_password_change),
        T(test_basic_remembered_until_users_change),
        T(test_ticket),
        T(test_ticket_base64),
        T(test_ticket_expired),
        T(test_ticket_revoke),
        T(test_ticket_users),
        T(test_ticket_ttl_config),
        T(test_token),
        T(test_token_revoke_by_secret),
        T(test_token_is_not_ticket),
        T(test_session_login),
        T(test_session_logout),
        T(test_logout_token),
        T(test_session_expired_and_unknown),
        T(test_login_refused),
        T(test_app_optional),
        T(test_app_required),
        T(test_scheme_disabled),
        T(test_default_schemes),
        T(test_jwt),
        T(test_jwt_bad_key),
        T(test_account_lock),
        T(test_address_rate),
        T(test_login_throttled_and_anonymous),
        T(test_limits_off),
        T(test_limits_default),
        T(test_limits_bounded),
        T(test_login_pair),
        T(test_end_credentials),
        T(test_parse_header),
        T(test_cookie_value),
        T(test_challenge),
        T(test_parse_schemes),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
