/* test_forwarded.c — the client behind trusted proxies (src/http/forwarded.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "http/forwarded.h"

#define TRUSTED "127.0.0.1/32, 10.0.0.0/8, 2001:db8:1::/48"

/* The client named by header lines "Name: value" (NULL-terminated). */
static fwd_result resolve(const char *const *lines)
{
    static char copies[40][256];
    net_cidr_list l = {0};
    assert_int_equal(net_cidr_list_parse(&l, TRUSTED), CB_EOK);
    fwd_headers h = {0};
    for (size_t i = 0; lines[i] != NULL; i++) {
        const char *colon = strchr(lines[i], ':');
        assert_non_null(colon);
        snprintf(copies[i], sizeof(copies[i]), "%.*s", (int)(colon - lines[i]), lines[i]);
        fwd_headers_add(&h, copies[i], colon + 2);
    }
    fwd_result r;
    fwd_resolve(&l, &h, &r);
    return r;
}

static void want(const char *addr, const char *const *lines)
{
    fwd_result r = resolve(lines);
    if (strcmp(r.addr, addr) != 0)
        fail_msg("%s: got '%s', want '%s'", lines[0], r.addr, addr);
}

#define H(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_xff_chain(void **state)
{
    (void)state;
    want("203.0.113.7", H("X-Forwarded-For: 203.0.113.7"));
    want("203.0.113.7", H("x-forwarded-for: 198.51.100.1, 203.0.113.7"));
    want("203.0.113.7", H("X-Forwarded-For: 203.0.113.7,10.1.2.3 , 127.0.0.1"));
    /* a line the client sent comes first; the proxy's own line is the last */
    want("203.0.113.7", H("X-Forwarded-For: 6.6.6.6", "X-Forwarded-For: 203.0.113.7"));
    want("10.0.0.1", H("X-Forwarded-For: 10.0.0.1, 127.0.0.1")); /* all trusted */
    want("203.0.113.7", H("X-Forwarded-For: unknown, 203.0.113.7"));
    want("203.0.113.7", H("X-Forwarded-For: 203.0.113.7:5555"));
    want("2001:db8::7", H("X-Forwarded-For: [2001:DB8::7]:443"));
    want("2001:db8::7", H("X-Forwarded-For: 2001:db8:0::7, 2001:db8:1::9"));
    want("::ffff:203.0.113.7", H("X-Forwarded-For: ::ffff:203.0.113.7"));
}

static void test_xff_refused(void **state)
{
    (void)state;
    want("", H("X-Forwarded-For: 203.0.113.7, unknown"));
    want("", H("X-Forwarded-For: "));
    want("", H("X-Forwarded-For: 1.2.3.4,,5.6.7.8"));
    want("", H("X-Forwarded-For: 1.2.3.4,"));
    want("", H("X-Forwarded-For: garbage"));
    want("", H("X-Forwarded-For: [203.0.113.7]"));
    want("", H("X-Forwarded-For: 203.0.113.7:99999"));
    want("", H("X-Forwarded-For: 203.0.113.7:"));
    want("", H("X-Forwarded-For: 1.2.3.4 5.6.7.8"));
    want("", H("X-Forwarded-For: [2001:db8::7"));
    char many[1024] = "X-Forwarded-For: 1.1.1.1";
    for (int i = 0; i < FWD_MAX_HOPS; i++)
        strcat(many, ", 2.2.2.2");
    want("", H(many)); /* one hop too many */
    const char *nine[FWD_MAX_LINES + 2];
    for (int i = 0; i <= FWD_MAX_LINES; i++)
        nine[i] = "X-Forwarded-For: 203.0.113.7";
    nine[FWD_MAX_LINES + 1] = NULL;
    want("", nine);
}

static void test_forwarded(void **state)
{
    (void)state;
    fwd_result r = resolve(H("Forwarded: for=192.0.2.60;proto=https;by=203.0.113.43"));
    assert_string_equal(r.addr, "192.0.2.60");
    assert_int_equal(r.proto, FWD_PROTO_HTTPS);
    want("2001:db8:cafe::17", H("Forwarded: For=\"[2001:db8:cafe::17]:4711\""));
    r = resolve(H("Forwarded: for=192.0.2.43, for=10.0.0.5;proto=http"));
    assert_string_equal(r.addr, "192.0.2.43");
    assert_int_equal(r.proto, FWD_PROTO_UNKNOWN); /* the client's element names none */
    want("192.0.2.43", H("Forwarded: for=6.6.6.6", "Forwarded: for=192.0.2.43 ; proto=http"));
    want("192.0.2.43", H("Forwarded: for=\"192.0.2.43:80\";host=\"a\\\"b,c\""));
    want("", H("Forwarded: for=_hidden"));
    want("", H("Forwarded: for=unknown"));
    want("", H("Forwarded: for=1.2.3.4;for=5.6.7.8"));
    want("", H("Forwarded: for=\"1.2.3.4"));
    want("", H("Forwarded: for=[::1]"));
    want("", H("Forwarded: for=1.2.3.4,"));
    want("", H("Forwarded: for"));
    want("", H("Forwarded: proto=https"));
    want("", H("Forwarded: for=1.2.3.4 x"));
    /* X-Forwarded-For wins over Forwarded */
    want("203.0.113.7", H("Forwarded: for=192.0.2.1", "X-Forwarded-For: 203.0.113.7"));
    want("", H("X-Forwarded-Proto: https")); /* a scheme alone names no client */
}

static void test_proto(void **state)
{
    (void)state;
    assert_int_equal(resolve(H("X-Forwarded-Proto: https")).proto, FWD_PROTO_HTTPS);
    assert_int_equal(resolve(H("X-Forwarded-Proto: HTTP")).proto, FWD_PROTO_HTTP);
    assert_int_equal(resolve(H("X-Forwarded-Proto: ftp")).proto, FWD_PROTO_UNKNOWN);
    assert_int_equal(resolve(H("X-Forwarded-Proto: http, https ")).proto, FWD_PROTO_HTTPS);
    assert_int_equal(resolve(H("X-Forwarded-Proto: https", "X-Forwarded-Proto: http")).proto,
                     FWD_PROTO_HTTP);
    fwd_result r = resolve(H("Forwarded: for=192.0.2.60;proto=https", "X-Forwarded-Proto: http"));
    assert_int_equal(r.proto, FWD_PROTO_HTTP);
    assert_int_equal(resolve(H("Other: x")).proto, FWD_PROTO_UNKNOWN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xff_chain),
        cmocka_unit_test(test_xff_refused),
        cmocka_unit_test(test_forwarded),
        cmocka_unit_test(test_proto),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
