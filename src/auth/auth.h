/*
 * auth.h — who is calling: password hashing and the Authorization header.
 *
 * Passwords are stored as Argon2id strings (libsodium). Verifying Argon2id
 * on every request would cost tens of milliseconds, so a successful
 * verification is remembered as a keyed BLAKE2b tag of (stored hash,
 * password) under a per-process random key: a later request with the same
 * password for the same stored hash is accepted after a constant-time
 * compare of tags. Changing a password changes the stored hash, which
 * invalidates the remembered tag at once. Argon2id runs are serialised so
 * that a burst of logins cannot exhaust memory.
 */
#ifndef CB_AUTH_H
#define CB_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/err.h"
#include "store/model.h"
#include "store/store.h"

#define AUTH_HASH_MAX 128
#define AUTH_HEADER_MAX 4096

typedef struct auth auth_t;

/* Initialises libsodium; the store must outlive the auth_t. */
cb_err auth_create(store_t *store, auth_t **out);
void auth_destroy(auth_t *a);

/* Argon2id hash of a password into out (NUL-terminated). */
cb_err auth_hash_password(const char *password, char out[AUTH_HASH_MAX]);

/* Resolves an Authorization header value to an enabled user.
 * CB_EUNAUTH when absent, malformed, unknown, disabled or wrong. */
cb_err auth_authenticate(auth_t *a, arena_t *arena, const char *authorization, model_user *out);

/* The WWW-Authenticate value for a 401. */
const char *auth_challenge(const auth_t *a);

#endif
