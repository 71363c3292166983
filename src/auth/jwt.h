/*
 * jwt.h — verifying JSON Web Tokens (RFC 7519) signed with keys the operator
 * configures: RS256 (RSA public key, PEM), ES256 (P-256 public key, PEM) and
 * HS256 (shared secret file). OpenSSL 3 does the cryptography.
 *
 * A token is accepted only when its header's "alg" is the algorithm of a
 * configured key (never "none", never an algorithm picked by the token
 * alone: an RS256 public key is never used as an HS256 secret), its
 * signature verifies with that key, "exp" (required) is in the future and
 * "nbf" (if present) is not, allowing `leeway_s` of clock skew, and "iss" /
 * "aud" match when configured ("aud" may be a string or an array). A "kid"
 * in the header, when keys carry one ("RS256:kid:/path"), selects the key.
 */
#ifndef CB_JWT_H
#define CB_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"

typedef struct jwt_verifier jwt_verifier;

typedef struct {
    const char *const *keys; /* "ALG:PATH" or "ALG:KID:PATH" */
    size_t nkeys;
    const char *issuer;     /* NULL: not checked */
    const char *audience;   /* NULL: not checked */
    const char *user_claim; /* NULL: "sub" */
    int64_t leeway_s;       /* clock skew allowed on exp/nbf (default 60) */
} jwt_config;

/* CB_EBADREQ with a reason in err when a key cannot be loaded or its
 * algorithm is unknown or does not fit the key. */
cb_err jwt_create(const jwt_config *cfg, jwt_verifier **out, char *err, size_t err_cap);
void jwt_destroy(jwt_verifier *v);

/* True when text has the shape header.payload.signature (base64url parts). */
int jwt_looks_like(const char *text);

/* Verifies token at time now_s; on success *user is the user claim's value
 * (arena). CB_EUNAUTH with an English reason for the log otherwise. */
cb_err jwt_verify(const jwt_verifier *v, arena_t *arena, const char *token, int64_t now_s,
                  const char **user, char *reason, size_t reason_cap);

#endif
