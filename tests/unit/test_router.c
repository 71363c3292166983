/*
 * test_router.c — path and method resolution (SPEC §2): case-insensitive
 * literals, id validation, legacy paths, 404/400/405 and the Allow header;
 * the properties route rows carry (public, quiet); and the message
 * catalogue's placeholder filling; the OpenAPI document against the route
 * table, both ways.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <strings.h>

#include "api/api_int.h"

static const char *no_value(void *conn, const char *name)
{
    (void)conn;
    (void)name;
    return NULL;
}

typedef struct {
    api_t api;
    api_exchange x;
} fixture;

static bool route(fixture *f, const char *method, const char *path)
{
    memset(f, 0, sizeof(*f));
    f->x.api = &f->api;
    f->x.arena = arena_create();
    f->x.method = method;
    f->x.path = path;
    api_request req = {.method = method, .path = path, .header = no_value, .query = no_value};
    return api_route(&f->x, &req);
}

static void done(fixture *f)
{
    if (f->x.resp.owner.release != NULL)
        f->x.resp.owner.release(f->x.resp.owner.cls);
    arena_destroy(f->x.arena);
}

static void test_entity_shapes(void **state)
{
    (void)state;
    fixture f;
    assert_true(route(&f, "POST", "/api/v1/Person"));
    assert_int_equal(f.x.route.kind, ROUTE_ENTITY_NEW);
    assert_int_equal(f.x.route.ent, MODEL_PERSON);
    done(&f);
    assert_true(route(&f, "GET", "/api/v1/contact/42"));
    assert_int_equal(f.x.route.kind, ROUTE_ENTITY);
    assert_int_equal(f.x.route.ent, MODEL_CONTACT);
    assert_int_equal(f.x.route.id, 42);
    done(&f);
    assert_true(route(&f, "PUT", "/API/V1/PROJECT/7/IMAGEINFO"));
    assert_int_equal(f.x.route.kind, ROUTE_IMAGE_INFO);
    assert_int_equal(f.x.route.ent, MODEL_PROJECT);
    done(&f);
    assert_true(route(&f, "GET", "/api/v1/Contact/123/Imageinfo/"));
    assert_int_equal(f.x.route.kind, ROUTE_IMAGE_INFO);
    done(&f);
    assert_true(route(&f, "DELETE", "/api/v1/product/2147483647/image"));
    assert_int_equal(f.x.route.kind, ROUTE_IMAGE);
    assert_int_equal(f.x.route.id, 2147483647);
    done(&f);
}

static void test_legacy(void **state)
{
    (void)state;
    fixture f;
    assert_true(route(&f, "GET", "/api/Services80/person/123/image/content"));
    assert_int_equal(f.x.route.kind, ROUTE_IMAGE);
    assert_true(f.x.route.legacy);
    done(&f);
    assert_true(route(&f, "GET", "/api/services80/PROJECT/5/Image"));
    done(&f);
    assert_false(route(&f, "PUT", "/api/Services80/person/123/image"));
    assert_int_equal(f.x.resp.status, 405);
    done(&f);
    assert_false(route(&f, "GET", "/api/Services80/person/123/image/other"));
    assert_int_equal(f.x.resp.status, 404);
    done(&f);
}

static void test_bad_ids(void **state)
{
    (void)state;
    const char *bad[] = {"abc", "0", "-1", "2147483648", "1.5", "+1", "1a"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fixture f;
        char path[64];
        snprintf(path, sizeof(path), "/api/v1/Person/%s/Image", bad[i]);
        assert_false(route(&f, "GET", path));
        assert_int_equal(f.x.resp.status, 400);
        assert_non_null(strstr(f.x.resp.body, "SoBadRequestException"));
        done(&f);
    }
}

static void test_unknown_and_method(void **state)
{
    (void)state;
    fixture f;
    const char *unknown[] = {"/api/v1/Appointment/1", "/api/v2/Person/1", "/api/v1/Person/1/Photo",
                             "/api/v1/Person/1/Image/x", "/api"};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        assert_false(route(&f, "GET", unknown[i]));
        assert_int_equal(f.x.resp.status, 404);
        assert_non_null(strstr(f.x.resp.body, "SoNotFoundException"));
        done(&f);
    }
    assert_false(route(&f, "PATCH", "/api/v1/Person/1/Image"));
    assert_int_equal(f.x.resp.status, 405);
    assert_string_equal(f.x.resp.headers[0].name, "Allow");
    assert_string_equal(f.x.resp.headers[0].value, "GET, HEAD, PUT, POST, DELETE");
    done(&f);
}

/* The probes resolve outside /api, and their rows say public and quiet;
 * the API's routes are neither, but for the login's POST (public). */
static void test_probe_properties(void **state)
{
    (void)state;
    fixture f;
    const char *probes[] = {"/health", "/ready", "/HEALTH/", "/Ready"};
    for (size_t i = 0; i < sizeof(probes) / sizeof(*probes); i++) {
        for (int head = 0; head < 2; head++) {
            const char *m = head ? "HEAD" : "GET";
            assert_true(route(&f, m, probes[i]));
            assert_true(f.x.route.kind == ROUTE_HEALTH || f.x.route.kind == ROUTE_READY);
            assert_true(f.x.rm->public && f.x.rm->quiet && !f.x.rm->writes);
            assert_true(api_route_is_public(probes[i], m));
            done(&f);
        }
    }
    assert_true(route(&f, "GET", "/ready"));
    assert_non_null(f.x.rm->blocks); /* may make a verdict: off the polling thread */
    done(&f);
    assert_false(route(&f, "POST", "/health")); /* 405, still without credentials */
    assert_int_equal(f.x.resp.status, 405);
    assert_true(api_route_is_public("/health", "POST"));
    done(&f);
    assert_false(route(&f, "GET", "/health/x"));
    assert_int_equal(f.x.resp.status, 404);
    done(&f);
    assert_false(api_route_is_public("/health/x", "GET"));
    assert_false(api_route_is_public("/api/v1/health", "GET"));
    assert_false(api_route_is_public("/api/v1/Person/1/Image", "GET"));
    assert_true(api_route_is_public("/api/v1/login", "POST"));
    assert_true(route(&f, "GET", "/api/v1/Person/1/Image"));
    assert_false(f.x.rm->public || f.x.rm->quiet);
    done(&f);
}

/* What may take long, and the login, are said by the rows too: nothing
 * recognises a route by its handler. */
static void test_work_properties(void **state)
{
    (void)state;
    fixture f;
    assert_true(route(&f, "POST", "/api/v1/login"));
    assert_true(f.x.rm->signs_in && f.x.rm->public);
    done(&f);
    const char *images[] = {"/api/v1/Person/1/Image", "/api/Services80/person/1/image"};
    for (size_t i = 0; i < sizeof(images) / sizeof(*images); i++) {
        assert_true(route(&f, "GET", images[i]));
        assert_non_null(f.x.rm->blocks); /* a variant may be drawn */
        assert_false(f.x.rm->signs_in);
        done(&f);
    }
    assert_true(route(&f, "POST", "/api/v1/Agents/BLOB/GetBlobEntity"));
    assert_non_null(f.x.rm->blocks);
    assert_true(f.x.rm->blocks(&f.x, NULL));
    done(&f);
    assert_true(route(&f, "GET", "/api/v1/Person/1/ImageInfo"));
    assert_true(f.x.rm->blocks == NULL && !f.x.rm->signs_in);
    done(&f);
}

/* /metrics is for admins (its rows say so); the metrics' route templates
 * are a fixed list, and every request maps to one of them, a path no
 * route has to the last ("other"). */
static void test_metrics_route_and_templates(void **state)
{
    (void)state;
    fixture f;
    char t[160];
    assert_true(route(&f, "GET", "/metrics"));
    assert_int_equal(f.x.route.kind, ROUTE_METRICS);
    assert_true(f.x.rm->admin && !f.x.rm->public && !f.x.rm->quiet);
    done(&f);
    assert_true(api_route_exists("/metrics") && api_route_exists("/Metrics/"));
    assert_false(api_route_exists("/metricsx") || api_route_is_public("/metrics", "GET"));
    size_t n = api_template_count();
    const struct {
        const char *method, *path, *template;
    } cases[] = {
        {"GET", "/api/v1/Person/7/Image", "/api/v1/{entity}/{id}/Image"},
        {"GET", "/api/v1/contact/7/imageinfo", "/api/v1/{entity}/{id}/ImageInfo"},
        {"GET", "/api/Services80/person/7/image", "/api/Services80/{entity}/{id}/image"},
        {"POST", "/api/v1/Agents/BLOB/GetBlobEntity", "/api/v1/Agents/BLOB/GetBlobEntity"},
        {"DELETE", "/health", "/health"}, /* a 405: the template still */
        {"GET", "/metrics", "/metrics"},
        {"GET", "/api/v1/Nothing/1", "other"},
        {"GET", "/etc/passwd", "other"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        route(&f, cases[i].method, cases[i].path);
        size_t k = api_exchange_template(&f.x);
        assert_true(k < n);
        api_template(k, t, sizeof(t));
        assert_string_equal(t, cases[i].template);
        done(&f);
    }
    api_template(n - 1, t, sizeof(t));
    assert_string_equal(t, "other");
    for (size_t i = 0; i + 1 < n; i++) { /* every one distinct, none "other" */
        char u[160];
        api_template(i, t, sizeof(t));
        assert_true(t[0] == '/');
        for (size_t j = i + 1; j < n; j++) {
            api_template(j, u, sizeof(u));
            assert_string_not_equal(t, u);
        }
    }
}

static void test_msg_format(void **state)
{
    (void)state;
    arena_t *a = arena_create();
    const msg_locale en = MSG_LOCALE_DEFAULT;
    msg_arg args[] = {MSG_S("Person"), MSG_ID(99)};
    assert_string_equal(msg_format(a, &en, MSG_ENTITY_NOT_FOUND, args, 2),
                        "Person id 99 not found");
    /* a placeholder without an argument stays visible */
    assert_string_equal(msg_format(a, &en, MSG_ENTITY_NOT_FOUND, args, 1),
                        "Person id {1} not found");
    arena_destroy(a);
}

/* ---- the OpenAPI document (src/api/openapi.json) against the table ---- */

typedef struct {
    json_t *paths;
    size_t rows;
} doc_walk;

/* Each method of each path the table has is in the document, with
 * `security: []` exactly when the row is public, and the router answers it
 * (not 404, not 405). */
static void row_documented(void *ctx, const api_route_desc *d)
{
    doc_walk *w = ctx;
    char lower[16];
    size_t i = 0;
    for (; d->method[i] && i + 1 < sizeof lower; i++)
        lower[i] = (char)(d->method[i] | 0x20);
    lower[i] = '\0';
    json_t *op = json_object_get(json_object_get(w->paths, d->path), lower);
    if (op == NULL)
        fail_msg("the route table answers %s %s, the OpenAPI document lacks it", d->method,
                 d->path);
    json_t *sec = json_object_get(op, "security");
    if (!json_is_array(sec) || (json_array_size(sec) == 0) != d->public)
        fail_msg("%s %s: its security must be [] exactly when its row is public", d->method,
                 d->path);
    char path[160];
    snprintf(path, sizeof path, "%s", d->path);
    char *brace = strstr(path, "{id}");
    if (brace != NULL) { /* a path with an id: 7 for it */
        brace[0] = '7';
        memmove(brace + 1, brace + 4, strlen(brace + 4) + 1);
    }
    if (strcmp(path, "/{asset}") == 0) /* the page's files: the page */
        path[1] = '\0';
    fixture f;
    if (!route(&f, d->method, path))
        fail_msg("%s %s: the router refuses it", d->method, path);
    done(&f);
    w->rows++;
}

static void test_openapi_matches_table(void **state)
{
    (void)state;
    size_t len;
    const char *text = api_openapi_document(&len);
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, 0, &jerr);
    if (doc == NULL)
        fail_msg("src/api/openapi.json: line %d: %s", jerr.line, jerr.text);
    assert_string_equal(json_string_value(json_object_get(doc, "swagger")), "2.0");
    doc_walk w = {json_object_get(doc, "paths"), 0};
    assert_non_null(w.paths);
    api_route_walk(row_documented, &w);
    /* ... and the document names nothing more: as many operations */
    size_t ops = 0;
    const char *path, *method;
    json_t *item, *op;
    json_object_foreach(w.paths, path, item)
    {
        json_object_foreach(item, method, op)
        {
            static const char *const verbs[] = {"get",    "head",  "put",    "post",
                                                "delete", "patch", "options"};
            for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
                ops += strcmp(method, verbs[i]) == 0;
        }
    }
    if (ops != w.rows)
        fail_msg("the OpenAPI document has %zu operations, the route table %zu", ops, w.rows);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entity_shapes), cmocka_unit_test(test_legacy),
        cmocka_unit_test(test_bad_ids),       cmocka_unit_test(test_unknown_and_method),
        cmocka_unit_test(test_probe_properties),
        cmocka_unit_test(test_work_properties),
        cmocka_unit_test(test_metrics_route_and_templates),
        cmocka_unit_test(test_msg_format),
        cmocka_unit_test(test_openapi_matches_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
