/*
 * fuzz_route.c — request routing: api_route() with a fuzzed method and path
 * (the path as the HTTP layer hands it over: percent-decoded, no query).
 *
 * Input: byte 0 picks the method (% 8: a real one, a lower-case one or an
 * unknown one) and the answer type (/ 8 % 4: JSON or XML errors); the
 * rest is the path.
 *
 * Invariants beyond "no crash":
 *  - true exactly when no answer was made; then the route kind is valid,
 *    the method is one the route offers, and entity routes have an id > 0;
 *  - false answers 400 (bad id), 404 (unknown path) or 405 (with an Allow
 *    header naming the route's methods), never anything else (a 500 would
 *    mean the error answer itself could not be built: tests/fuzz/corpus/
 *    route holds the non-UTF-8 paths that once did, and aborted the server
 *    with an XML answer);
 *  - api_route_is_public() agrees: it is true exactly for the login route;
 *  - the answer is the SPEC §4 error carrier, well formed in its type.
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Methods routes offer, and ones none does. */
static const char *const methods[] = {
    "GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "get", "OPTIONS",
};

static const char *no_value(void *conn, const char *name)
{
    (void)conn;
    (void)name;
    return NULL;
}

/* The error answer parses in its own type and carries a message. */
static void check_error_answer(const api_exchange *x)
{
    json_t *j;
    if (repr_answer_is_xml(x)) {
        char root[32];
        j = xml_parse(x->resp.body, x->resp.body_len, root, sizeof(root), NULL, 0, NULL);
        assert(j != NULL && strcmp(root, "Error") == 0);
    } else {
        j = json_loadb(x->resp.body, x->resp.body_len, 0, NULL);
        assert(j != NULL && json_is_true(json_object_get(j, "Error")));
    }
    assert(json_is_string(json_object_get(j, "ErrorMessage")));
    json_decref(j);
}

/* Allow lists the route's methods ("GET, HEAD, PUT"): some, and not the
 * one that was refused. */
static void check_allow(const char *allow, const char *method)
{
    assert(*allow != '\0');
    for (const char *p = allow; *p;) {
        size_t n = strcspn(p, ",");
        assert(!(n == strlen(method) && memcmp(p, method, n) == 0));
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *method = methods[data[0] % (sizeof(methods) / sizeof(methods[0]))];
    char *path = strndup((const char *)data + 1, size - 1); /* stops at a NUL, as C strings do */
    api_t api;
    api_exchange x;
    memset(&api, 0, sizeof(api));
    memset(&x, 0, sizeof(x));
    x.api = &api;
    x.arena = arena_create();
    x.method = method;
    x.path = path;
    x.answer_type = data[0] / 8 % 4;
    api_request req = {.method = method, .path = path, .header = no_value, .query = no_value};

    bool ok = api_route(&x, &req);
    assert(ok == !x.answered);
    if (ok) {
        assert(x.route.kind < ROUTE__COUNT && x.rm != NULL && strcmp(x.rm->method, method) == 0);
        if (x.route.kind <= ROUTE_IMAGE_INFO && x.route.kind != ROUTE_ENTITY_NEW)
            assert(x.route.id > 0);
        /* public: the login and the probes, and it is what the row says */
        bool pub = x.route.kind == ROUTE_LOGIN || x.route.kind == ROUTE_HEALTH ||
                   x.route.kind == ROUTE_READY;
        assert(api_route_is_public(path, method) == pub && x.rm->public == pub);
    } else {
        int st = x.resp.status;
        assert(st == 400 || st == 404 || st == 405);
        if (st == 405) {
            assert(x.resp.nheaders >= 1 && strcmp(x.resp.headers[0].name, "Allow") == 0);
            check_allow(x.resp.headers[0].value, method);
        }
        check_error_answer(&x);
    }
    if (x.resp.owner.release != NULL)
        x.resp.owner.release(x.resp.owner.cls);
    arena_destroy(x.arena);
    free(path);
    return 0;
}
