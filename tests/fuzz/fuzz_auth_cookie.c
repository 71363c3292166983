/*
 * fuzz_auth_cookie.c — the Cookie header parser, auth_cookie_value(), for
 * the session and XSRF cookie names and for a fuzzed name.
 *
 * Input: a cookie name, '\n', the Cookie header (without '\n': the whole
 * input is the header and only the fixed names are looked up).
 *
 * Invariants beyond "no crash":
 *  - a value found holds no ';' (values end there);
 *  - round trip: the value written back quoted into another header
 *    ("a=b; NAME=\"value\"; c=d") is found again unchanged;
 *  - a header that does not contain the name is never found to hold it.
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(arena_t *a, const char *header, const char *name)
{
    const char *v = auth_cookie_value(a, header, name);
    if (name[0] != '\0' && strstr(header, name) == NULL)
        assert(v == NULL);
    if (v == NULL)
        return;
    assert(strchr(v, ';') == NULL);
    /* a name with ';' '=' or edge spaces cannot be written back as one */
    if (strpbrk(name, ";= \t") != NULL || strcmp(name, "a") == 0) /* "a=b" comes first */
        return;
    const char *again = arena_printf(a, "a=b; %s=\"%s\"; c=d", name, v);
    const char *w = auth_cookie_value(a, again, name);
    assert(w != NULL && strcmp(w, v) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = strndup((const char *)data, size);
    char *nl = strchr(text, '\n');
    const char *header = nl != NULL ? nl + 1 : text;
    arena_t *a = arena_create();
    if (nl != NULL) {
        *nl = '\0';
        check(a, header, text);
    }
    check(a, header, AUTH_SESSION_COOKIE);
    check(a, header, AUTH_XSRF_COOKIE);
    arena_destroy(a);
    free(text);
    return 0;
}
