/* test_net.c — CIDR lists and listening addresses (src/core/net.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/net.h"

static struct sockaddr_in v4(const char *a)
{
    struct sockaddr_in s = {.sin_family = AF_INET};
    assert_int_equal(inet_pton(AF_INET, a, &s.sin_addr), 1);
    return s;
}

static struct sockaddr_in6 v6(const char *a)
{
    struct sockaddr_in6 s = {.sin6_family = AF_INET6};
    assert_int_equal(inet_pton(AF_INET6, a, &s.sin6_addr), 1);
    return s;
}

static void test_parse_and_match_v4(void **state)
{
    (void)state;
    net_cidr_list l = {0};
    assert_int_equal(net_cidr_list_parse(&l, "10.0.0.0/8, 192.168.1.7 172.16.5.9/12"), CB_EOK);
    assert_int_equal(l.n, 3);
    struct sockaddr_in a = v4("10.200.3.4"), b = v4("11.0.0.1"), c = v4("192.168.1.7"),
                       d = v4("192.168.1.8"), e = v4("172.31.255.255"), f = v4("172.32.0.0");
    assert_true(net_cidr_list_match(&l, (struct sockaddr *)&a));
    assert_false(net_cidr_list_match(&l, (struct sockaddr *)&b));
    assert_true(net_cidr_list_match(&l, (struct sockaddr *)&c));
    assert_false(net_cidr_list_match(&l, (struct sockaddr *)&d));
    assert_true(net_cidr_list_match(&l, (struct sockaddr *)&e)); /* host bits cleared */
    assert_false(net_cidr_list_match(&l, (struct sockaddr *)&f));
    assert_true(net_cidr_list_match_text(&l, "10.1.1.1"));
    assert_false(net_cidr_list_match_text(&l, "9.1.1.1"));
    assert_false(net_cidr_list_match_text(&l, "not an address"));
}

static void test_parse_and_match_v6(void **state)
{
    (void)state;
    net_cidr_list l = {0};
    assert_int_equal(net_cidr_list_parse(&l, "2001:db8::/32,::1,127.0.0.1"), CB_EOK);
    struct sockaddr_in6 a = v6("2001:db8:1::5"), b = v6("2001:db9::1"), c = v6("::1"),
                        m = v6("::ffff:127.0.0.1"), n = v6("::ffff:127.0.0.2");
    assert_true(net_cidr_list_match(&l, (struct sockaddr *)&a));
    assert_false(net_cidr_list_match(&l, (struct sockaddr *)&b));
    assert_true(net_cidr_list_match(&l, (struct sockaddr *)&c));
    assert_true(net_cidr_list_match(&l, (struct sockaddr *)&m)); /* IPv4-mapped */
    assert_false(net_cidr_list_match(&l, (struct sockaddr *)&n));
    assert_true(net_cidr_list_match_text(&l, "::ffff:127.0.0.1"));
    assert_true(net_cidr_list_match_text(&l, "2001:db8:ffff::"));
}

static void test_parse_refuses(void **state)
{
    (void)state;
    net_cidr_list l = {0};
    const char *bad[] = {"10.0.0.0/33", "::/129", "10.0.0.0/-1", "10.0.0/8", "1.2.3.4/",
                         "1.2.3.4/x", "example.com", "1.2.3.4/8/8"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(net_cidr_list_parse(&l, bad[i]), CB_EBADREQ);
        assert_int_equal(l.n, 0);
    }
    assert_int_equal(net_cidr_list_parse(&l, "1.1.1.1, bad"), CB_EBADREQ);
    assert_int_equal(l.n, 0); /* unchanged on failure */
    for (int i = 0; i < NET_CIDR_MAX; i++)
        assert_int_equal(net_cidr_list_parse(&l, "10.0.0.1"), CB_EOK);
    assert_int_equal(net_cidr_list_parse(&l, "10.0.0.1"), CB_EBADREQ); /* full */
    net_cidr_list z = {0};
    assert_int_equal(net_cidr_list_parse(&z, "0.0.0.0/0"), CB_EOK);
    assert_true(net_cidr_list_match_text(&z, "203.0.113.9"));
    assert_false(net_cidr_list_match_text(&z, "2001:db8::1")); /* v4 range, v6 peer */
}

static void test_addr_key(void **state)
{
    (void)state;
    uint8_t a[NET_ADDR_KEY], b[NET_ADDR_KEY];
    assert_int_equal(net_addr_key_text("192.0.2.7", a), 5);
    struct sockaddr_in s4 = v4("192.0.2.7");
    assert_int_equal(net_addr_key((struct sockaddr *)&s4, b), 5);
    assert_memory_equal(a, b, NET_ADDR_KEY);
    assert_int_equal(net_addr_key_text("::ffff:192.0.2.7", b), 5); /* mapped = IPv4 */
    assert_memory_equal(a, b, NET_ADDR_KEY);
    /* IPv6 by its /64 */
    assert_int_equal(net_addr_key_text("2001:db8:1:2::5", a), 9);
    struct sockaddr_in6 s6 = v6("2001:db8:1:2:ffff::9");
    assert_int_equal(net_addr_key((struct sockaddr *)&s6, b), 9);
    assert_memory_equal(a, b, NET_ADDR_KEY);
    assert_int_equal(net_addr_key_text("2001:db8:1:3::5", b), 9);
    assert_memory_not_equal(a, b, NET_ADDR_KEY);
    assert_int_equal(net_addr_key_text("not an address", a), 0);
    assert_int_equal(net_addr_key(NULL, a), 0);
}

static void test_parse_listen(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len;
    assert_true(net_parse_listen("127.0.0.1:8080", &ss, &len));
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8080);
    assert_true(net_parse_listen("[::1]:0", &ss, &len));
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    assert_true(net_parse_listen("*:80", &ss, &len));
    assert_int_equal(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(INADDR_ANY));
    assert_true(net_parse_listen(":80", &ss, &len));
    assert_true(net_parse_listen("localhost:80", &ss, &len));
    static const char *const bad[] = {"", "8080", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
                                      "127.0.0.1:-1", "[::1:80", "::1:80", "host.example:80",
                                      "127.0.0.1:80x", "1.2.3.4.5:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(net_parse_listen(bad[i], &ss, &len));
}

/* A port taken is refused with EADDRINUSE; the socket is close-on-exec. */
static void test_listen(void **state)
{
    (void)state;
    int fd = -1, fd2 = -1, err = 0;
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    char where[64];
    assert_int_equal(net_listen("127.0.0.1:0", 16, &fd, &err), CB_EOK);
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    snprintf(where, sizeof(where), "127.0.0.1:%d", ntohs(a.sin_port));
    assert_int_equal(net_listen(where, 16, &fd2, &err), CB_EUNAVAILABLE);
    assert_int_equal(err, EADDRINUSE);
    assert_int_equal(fd2, -1);
    assert_int_equal(net_listen("nowhere", 16, &fd2, &err), CB_EBADREQ);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_match_v4),
        cmocka_unit_test(test_parse_and_match_v6),
        cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test(test_addr_key),
        cmocka_unit_test(test_parse_listen),
        cmocka_unit_test(test_listen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
