/*
 * auth.h — who is calling (SPEC §5): Basic, SOTicket, Bearer (opaque access
 * tokens and JWTs), browser sessions with an XSRF token, and the partner
 * application named by SO-AppToken.
 *
 * Passwords are stored as Argon2id strings (libsodium). Verifying Argon2id
 * on every request would cost tens of milliseconds, so a successful
 * verification is remembered as a keyed BLAKE2b tag of (stored hash,
 * password) under a per-process random key: a later request with the same
 * password for the same stored hash is accepted after a constant-time
 * compare of tags. Changing a password changes the stored hash, which
 * invalidates the remembered tag at once. Argon2id runs are serialised so
 * that a burst of logins cannot exhaust memory.
 *
 * Tickets (7T:...), access tokens (8A:...), session cookies and XSRF tokens
 * are 256-bit random secrets; the store keeps only their BLAKE2b-256 hash.
 *
 * Failed attempts are throttled by what the attacker controls (SPEC §5),
 * never by refusing a correct credential another client sends:
 *  - an account tried from an address: account_limit wrong passwords for
 *    it from there lock that (account, address) pair for account_lockout_s;
 *    meanwhile its password attempts from there are refused (CB_ETOOMANY)
 *    without being checked, remembered ones included (else a locked pair
 *    would still tell a right guess from a wrong one);
 *  - an address's rate of failures: it may fail addr_limit times in a
 *    burst, then once per addr_window_s / addr_limit seconds. Past that
 *    rate its failing attempts are answered CB_ETOOMANY instead of
 *    CB_EUNAUTH. Its passwords are still checked (a right one may come
 *    from another client behind the same address); what that costs is
 *    bounded by the HTTP layer's password lane. Tickets, tokens,
 *    sessions, JWTs and remembered passwords are accepted from it as from
 *    anyone.
 * Both tables have a fixed size: an attacker rotating addresses or
 * accounts replaces entries, it cannot grow them. IPv6 addresses count by
 * their /64 prefix (what one host is usually given).
 */
#ifndef CB_AUTH_H
#define CB_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/reload.h"
#include "core/metrics.h"
#include "store/model.h"
#include "store/store.h"

#define AUTH_HASH_MAX 128
#define AUTH_HEADER_MAX 8192

/* Schemes an operator may enable (a bit set). */
typedef enum {
    AUTH_BASIC = 1u << 0,
    AUTH_TICKET = 1u << 1,  /* SOTicket 7T:... */
    AUTH_TOKEN = 1u << 2,   /* Bearer 8A:... (opaque access tokens) */
    AUTH_JWT = 1u << 3,     /* Bearer <JWT> signed by a configured key */
    AUTH_COOKIE = 1u << 4,  /* session cookie + X-XSRF-TOKEN */
    AUTH_ALL = (1u << 5) - 1,
} auth_scheme;

typedef struct {
    unsigned schemes;          /* 0 = AUTH_ALL (JWT only counts when keys are given) */
    int64_t ticket_ttl_s;      /* default 6 h */
    int64_t session_ttl_s;     /* default 8 h */
    bool require_app_token;    /* SO-AppToken must name a known, unrevoked app */
    const char *const *jwt_keys; /* "RS256:/path/key.pem", "ES256:...", "HS256:/path/secret" */
    size_t njwt_keys;
    const char *jwt_issuer;    /* required "iss" when set */
    const char *jwt_audience;  /* required in "aud" (string or array) when set */
    const char *jwt_user_claim; /* claim naming the user (default "sub") */
    int addr_limit;            /* failures an address may make in a burst (0: default 30; < 0: off) */
    int addr_window_s;         /* ... and then addr_limit per this many seconds (default 60) */
    int account_limit;         /* wrong passwords locking an (account, address) (0: 5; < 0: off) */
    int account_lockout_s;     /* how long that lock lasts (default 300) */
    metrics_t *metrics;        /* counts refusals by scheme and throttles; NULL: none */
} auth_config;

typedef struct auth auth_t;

/* Initialises libsodium, loads the JWT keys (CB_EBADREQ with log_error
 * for an unreadable or unusable key). The store must outlive the auth_t,
 * and so must the JWT settings' strings (cfg's jwt_* members: the reload
 * step reads the key files again by those names). */
cb_err auth_create(store_t *store, const auth_config *cfg, auth_t **out);
void auth_destroy(auth_t *a);
/* Registers the reload step of the JWT keys (when JWTs are accepted): it
 * reads every key file again and puts the new keys in force together, or
 * keeps the old ones and says why. App tokens need no step: they are
 * looked up in the store on every request. -1 when the registry is full. */
int auth_reload_register(auth_t *a, reload_registry *r);

/* Argon2id hash of a password into out (NUL-terminated). */
cb_err auth_hash_password(const char *password, char out[AUTH_HASH_MAX]);

/* What a request presents. Any member may be NULL. */
typedef struct {
    const char *authorization; /* Authorization header */
    const char *cookie;        /* Cookie header */
    const char *xsrf;          /* X-XSRF-TOKEN header */
    const char *app_token;     /* SO-AppToken header */
    const char *remote;        /* client address, for the failure limits */
    bool no_wait; /* CB_EWOULDBLOCK instead of hashing a password (Basic not remembered) */
} auth_input;

/* Why an attempt was answered CB_ETOOMANY, and when to try again. */
typedef struct {
    int retry_after_s;   /* > 0 */
    bool account_locked; /* the (account, address) lock; else the address's failure rate */
} auth_throttle;

typedef struct {
    model_user user;
    auth_scheme scheme;
    const char *app; /* the partner app's name, or NULL */
    auth_throttle throttle; /* set with CB_ETOOMANY */
} auth_result;

/* Resolves a request to an enabled user.
 * - Authorization "Basic b64(user:pass)", "SOTicket 7T:..." (or the ticket
 *   base64-encoded), "Bearer 8A:..." or "Bearer <JWT>"; scheme names in any
 *   case.
 * - With no Authorization header, the session cookie, honoured only with an
 *   X-XSRF-TOKEN equal to that session's token.
 * Then SO-AppToken: an unknown or revoked token is CB_EUNAUTH when
 * require_app_token, and ignored otherwise (app NULL).
 * CB_EUNAUTH when nothing valid is presented (*reason says why, English, for
 * the log), CB_ETOOMANY when the failure limits refuse it (out->throttle
 * says which and for how long), CB_EWOULDBLOCK (nothing decided, nothing
 * counted) when in->no_wait and a password would have to be hashed. */
cb_err auth_authenticate(auth_t *a, arena_t *arena, const auth_input *in, auth_result *out,
                         const char **reason);

/* The login endpoint: checks user and password (the failure limits apply)
 * and issues a ticket and a browser session, paired: ending either ends
 * both. A password changed (or the user disabled) while the login was
 * being checked leaves nothing issued (CB_EUNAUTH). st is the store handle
 * the credentials are written (and the user read again) through: the
 * auth's store, or a request's view of it (store_scope_open), whose writes
 * the answer then waits for. */
typedef struct {
    model_user user;
    const char *ticket;      /* "7T:..." */
    int64_t ticket_expires_ms;
    const char *session;     /* cookie value */
    const char *xsrf;        /* XSRF token (cookie and header value) */
    int64_t session_expires_ms;
    auth_throttle throttle;  /* set with CB_ETOOMANY */
} auth_login_result;
cb_err auth_login(auth_t *a, store_t *st, arena_t *arena, const char *user, const char *password,
                  const char *remote, auth_login_result *out);
/* Revokes the session named by in->cookie and the ticket or token in
 * in->authorization, if any, each with the credential issued with it at
 * login (a session's ticket, a ticket's session); through st, as
 * auth_login. */
cb_err auth_logout(auth_t *a, store_t *st, arena_t *arena, const auth_input *in);

/* Command-line issuers; the secret is returned once and never stored. */
cb_err auth_ticket_issue(auth_t *a, arena_t *arena, const char *user, int64_t ttl_s,
                         const char **ticket, int64_t *expires_ms);
cb_err auth_token_issue(auth_t *a, arena_t *arena, const char *user, int64_t ttl_s,
                        const char *label, const char **token, int64_t *expires_ms);
/* Revokes a ticket or token given as its secret text, or by id. */
cb_err auth_revoke_secret(auth_t *a, const char *secret);
cb_err auth_apptoken_add(auth_t *a, arena_t *arena, const char *name, const char **token);

/* The pure parsers behind auth_authenticate, exported for tests and
 * fuzzing. auth_parse_header splits an Authorization value: Basic gives
 * user and password; SOTicket gives secret "7T:..." (decoded when sent
 * base64-encoded); Bearer gives secret (an 8A: token or a JWT). CB_EUNAUTH
 * for anything else or malformed. */
typedef struct {
    auth_scheme scheme;
    const char *user;     /* Basic */
    const char *password; /* Basic */
    const char *secret;   /* SOTicket, Bearer */
} auth_credentials;
cb_err auth_parse_header(arena_t *arena, const char *authorization, auth_credentials *out);
/* The value of cookie `name` in a Cookie header, or NULL. */
const char *auth_cookie_value(arena_t *arena, const char *cookie_header, const char *name);

/* Names of the session and XSRF cookies. */
#define AUTH_SESSION_COOKIE "crmblob_session"
#define AUTH_XSRF_COOKIE "XSRF-TOKEN"

/* The WWW-Authenticate value for a 401: one challenge per enabled scheme. */
const char *auth_challenge(const auth_t *a);
/* The challenge of a 401 to a page's script (X-Requested-With:
 * XMLHttpRequest): the cookie session alone, so that no browser opens its
 * own password dialog over the page (it does for a Basic challenge). */
#define AUTH_COOKIE_CHALLENGE "Cookie realm=\"crmblob\""
unsigned auth_schemes(const auth_t *a);
/* Parses "basic,ticket,bearer,jwt,cookie" (any case, "all"); false if unknown. */
bool auth_parse_schemes(const char *list, unsigned *out);

#endif
