/*
 * fuzz_login_type.c — cors_type_is_simple(), which decides whether a login
 * could have been sent by a page of another site without a preflight (a
 * Content-Type value as the client sent it).
 *
 * Invariants beyond "no crash":
 *  - the answer depends on the media type alone: appending a parameter
 *    ("; charset=utf-8") never changes it;
 *  - a value whose type is JSON or XML (the types a login is read from
 *    without an Origin) is never simple.
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *v = malloc(size + 32);
    memcpy(v, data, size);
    v[size] = '\0';
    bool simple = cors_type_is_simple(v);
    if (strchr(v, ';') == NULL) {
        strcat(v, "; charset=utf-8");
        assert(cors_type_is_simple(v) == simple);
        v[strlen(v) - strlen("; charset=utf-8")] = '\0';
    }
    size_t lead = strspn(v, " \t");
    if (strncasecmp(v + lead, "application/json", 16) == 0 ||
        strncasecmp(v + lead, "application/xml", 15) == 0)
        assert(!simple);
    free(v);
    return 0;
}
