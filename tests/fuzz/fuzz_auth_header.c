/*
 * fuzz_auth_header.c — the Authorization header parser, auth_parse_header()
 * (Basic, SOTicket as is or base64-encoded, Bearer opaque tokens and JWTs).
 *
 * Invariants beyond "no crash":
 *  - accepted Basic credentials have a non-empty user without ':' and no
 *    NUL in user or password, and round trip: "Basic " + base64(user ":"
 *    password) parses to the same user and password;
 *  - an accepted ticket is "7T:..." printable ASCII, and round trips both
 *    as is and base64-encoded ("SOTicket " + base64(secret));
 *  - a Bearer secret is printable ASCII, classed as a JWT exactly when
 *    jwt_looks_like() says so, and round trips as "Bearer " + secret;
 *  - a refused header leaves the result zeroed.
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth/auth.h"
#include "auth/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

/* "scheme " + base64(raw[0..n)) in the arena. */
static const char *b64_header(arena_t *a, const char *scheme, const char *raw, size_t n)
{
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = arena_alloc(a, cap);
    sodium_bin2base64(b64, cap, (const unsigned char *)raw, n, sodium_base64_VARIANT_ORIGINAL);
    return arena_printf(a, "%s %s", scheme, b64);
}

static void same(arena_t *a, const char *header, const auth_credentials *want)
{
    auth_credentials got;
    assert(auth_parse_header(a, header, &got) == CB_EOK);
    assert(got.scheme == want->scheme);
    if (want->scheme == AUTH_BASIC)
        assert(strcmp(got.user, want->user) == 0 && strcmp(got.password, want->password) == 0);
    else
        assert(strcmp(got.secret, want->secret) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *header = strndup((const char *)data, size);
    arena_t *a = arena_create();
    auth_credentials c;
    if (auth_parse_header(a, header, &c) != CB_EOK) {
        assert(c.scheme == 0 && c.user == NULL && c.password == NULL && c.secret == NULL);
        goto out;
    }
    switch (c.scheme) {
    case AUTH_BASIC:
        assert(c.user != NULL && c.password != NULL && c.secret == NULL);
        assert(c.user[0] != '\0' && strchr(c.user, ':') == NULL);
        const char *raw = arena_printf(a, "%s:%s", c.user, c.password);
        same(a, b64_header(a, "Basic", raw, strlen(raw)), &c);
        break;
    case AUTH_TICKET:
        assert(c.secret != NULL && strncmp(c.secret, "7T:", 3) == 0 && printable(c.secret));
        same(a, arena_printf(a, "SOTicket %s", c.secret), &c);
        same(a, b64_header(a, "SOTicket", c.secret, strlen(c.secret)), &c);
        break;
    case AUTH_TOKEN:
    case AUTH_JWT:
        assert(c.secret != NULL && c.secret[0] != '\0' && printable(c.secret));
        assert((c.scheme == AUTH_JWT) == (jwt_looks_like(c.secret) != 0));
        same(a, arena_printf(a, "Bearer %s", c.secret), &c);
        break;
    default:
        assert(!"unknown scheme");
    }
out:
    arena_destroy(a);
    free(header);
    return 0;
}
