/*
 * test_guard.c — unit tests of the connection guard (src/http/guard.h):
 * the per-address cap (IPv4, IPv6 by /64, IPv4-mapped, trusted peers
 * exempt, the address table under churn) and the watchdog's deadlines,
 * on socket pairs standing in for connections.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/net.h"
#include "core/text.h"
#include "http/guard.h"

static struct sockaddr_storage addr(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, text, &v4->sin_addr) == 1)
        v4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1)
        v6->sin6_family = AF_INET6;
    else
        fail_msg("bad address %s", text);
    return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static http_guard *start(unsigned per_addr, const net_cidr_list *exempt, unsigned head_s,
                         unsigned rate, unsigned window_s)
{
    http_guard_config cfg = {.head_timeout_s = head_s,
                             .body_min_rate = rate,
                             .body_window_s = window_s,
                             .per_addr_max = per_addr,
                             .max_conns = 4096,
                             .exempt = exempt};
    http_guard *g = NULL;
    assert_int_equal(http_guard_start(&cfg, &g), CB_EOK);
    return g;
}

/* A connection: the guard's end of a socket pair; peer is the client's. */
typedef struct {
    http_guard_conn gc;
    int fd, peer;
} conn;

static bool open_conn(http_guard *g, conn *c, const char *from)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    memset(&c->gc, 0, sizeof(c->gc));
    c->fd = sv[0];
    c->peer = sv[1];
    struct sockaddr_storage ss = addr(from);
    return http_guard_open(g, &c->gc, c->fd, SA(ss));
}

static void close_conn(http_guard *g, conn *c)
{
    http_guard_close(g, &c->gc);
    close(c->fd);
    close(c->peer);
}

/* What the client end reads within a second: its bytes, or "" at EOF. */
static ssize_t peer_read(conn *c, char *buf, size_t cap)
{
    struct timeval tv = {.tv_sec = 1};
    setsockopt(c->peer, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return recv(c->peer, buf, cap, 0);
}

static bool admits(http_guard *g, const char *from)
{
    struct sockaddr_storage ss = addr(from);
    return http_guard_admits(g, SA(ss));
}

static void test_cap_per_address(void **state)
{
    (void)state;
    http_guard *g = start(3, NULL, 10, 0, 10);
    conn c[5];
    for (int i = 0; i < 3; i++)
        assert_true(open_conn(g, &c[i], "192.0.2.1"));
    assert_false(admits(g, "192.0.2.1"));
    assert_true(admits(g, "192.0.2.2"));
    /* over the cap after all (a race past admits): refused, shut down */
    assert_false(open_conn(g, &c[3], "192.0.2.1"));
    char buf[16];
    assert_int_equal(peer_read(&c[3], buf, sizeof(buf)), 0);
    assert_false(http_guard_busy(&c[3].gc)); /* its phase calls say so */
    close_conn(g, &c[3]);
    close_conn(g, &c[0]);
    assert_true(admits(g, "192.0.2.1"));
    assert_true(open_conn(g, &c[4], "192.0.2.1"));
    assert_false(admits(g, "192.0.2.1"));
    close_conn(g, &c[1]);
    close_conn(g, &c[2]);
    close_conn(g, &c[4]);
    http_guard_stop(g);
}

static void test_ipv6_counts_by_64_and_mapped_as_ipv4(void **state)
{
    (void)state;
    http_guard *g = start(2, NULL, 10, 0, 10);
    conn a, b, m;
    assert_true(open_conn(g, &a, "2001:db8::1"));
    assert_true(open_conn(g, &b, "2001:db8::ffff:2")); /* same /64 */
    assert_false(admits(g, "2001:db8::3"));
    assert_true(admits(g, "2001:db8:0:1::1")); /* another /64 */
    assert_true(open_conn(g, &m, "::ffff:192.0.2.9"));
    assert_true(admits(g, "192.0.2.9"));
    conn v4;
    assert_true(open_conn(g, &v4, "192.0.2.9"));
    assert_false(admits(g, "192.0.2.9")); /* mapped and plain are one address */
    close_conn(g, &a);
    close_conn(g, &b);
    close_conn(g, &m);
    close_conn(g, &v4);
    http_guard_stop(g);
}

static void test_trusted_peers_are_exempt(void **state)
{
    (void)state;
    net_cidr_list proxies = {0};
    assert_int_equal(net_cidr_list_parse(&proxies, "10.0.0.0/8, ::1"), CB_EOK);
    http_guard *g = start(2, &proxies, 10, 0, 10);
    conn c[8];
    for (int i = 0; i < 6; i++)
        assert_true(open_conn(g, &c[i], i % 2 ? "10.1.2.3" : "::1"));
    assert_true(admits(g, "10.1.2.3"));
    assert_true(open_conn(g, &c[6], "192.0.2.1"));
    assert_true(open_conn(g, &c[7], "192.0.2.1"));
    assert_false(admits(g, "192.0.2.1")); /* others still capped */
    for (int i = 0; i < 8; i++)
        close_conn(g, &c[i]);
    http_guard_stop(g);
}

/* Many addresses opened and closed in a scrambled order: every count
 * stays right (the table's backward-shift removal keeps runs whole). */
static void test_table_churn(void **state)
{
    (void)state;
    enum { N = 1500 };
    http_guard *g = start(1, NULL, 10, 0, 10);
    static conn c[N];
    static char name[N][32];
    for (int i = 0; i < N; i++) {
        snprintf(name[i], sizeof(name[i]), "198.%d.%d.%d", (i * 7919) % 256, i / 256, i % 256);
        assert_true(open_conn(g, &c[i], name[i]));
    }
    for (int i = 0; i < N; i += 3)
        close_conn(g, &c[(i * 611) % N]);
    for (int i = 0; i < N; i++) {
        bool closed = false;
        for (int k = 0; k < N; k += 3)
            closed = closed || (k * 611) % N == i;
        assert_int_equal(admits(g, name[i]), closed);
    }
    for (int i = 0; i < N; i++) {
        bool closed = false;
        for (int k = 0; k < N; k += 3)
            closed = closed || (k * 611) % N == i;
        if (!closed)
            close_conn(g, &c[i]);
    }
    for (int i = 0; i < N; i++)
        assert_true(admits(g, name[i]));
    http_guard_stop(g);
}

static void test_head_deadline(void **state)
{
    (void)state;
    http_guard *g = start(0, NULL, 1, 0, 10);
    conn line, idle, busy;
    assert_true(open_conn(g, &line, "192.0.2.1"));
    assert_true(open_conn(g, &idle, "192.0.2.1"));
    assert_true(open_conn(g, &busy, "192.0.2.1"));
    assert_true(http_guard_line(&line.gc));
    assert_true(http_guard_line(&busy.gc));
    assert_true(http_guard_busy(&busy.gc)); /* its head ended in time */
    usleep(1300 * 1000);
    char buf[512];
    ssize_t n = peer_read(&line, buf, sizeof(buf) - 1);
    assert_true(n > 0);
    buf[n] = 0;
    assert_non_null(strstr(buf, "HTTP/1.1 408 Request Timeout\r\n"));
    assert_non_null(strstr(buf, "\"ErrorSource\":\"crmblob\""));
    assert_int_equal(peer_read(&line, buf, sizeof(buf)), 0);
    assert_int_equal(peer_read(&idle, buf, sizeof(buf)), 0); /* no request line: just closed */
    assert_true(http_guard_cut(&line.gc));
    assert_false(http_guard_busy(&line.gc)); /* the polling thread learns it was cut */
    assert_false(http_guard_cut(&busy.gc));
    assert_true(peer_read(&busy, buf, sizeof(buf)) < 0); /* still open, nothing sent */
    close_conn(g, &line);
    close_conn(g, &idle);
    close_conn(g, &busy);
    http_guard_stop(g);
}

static void test_body_rate(void **state)
{
    (void)state;
    http_guard *g = start(0, NULL, 10, 100, 1); /* 100 bytes/s over each second */
    conn slow, fast;
    assert_true(open_conn(g, &slow, "192.0.2.1"));
    assert_true(open_conn(g, &fast, "192.0.2.2"));
    assert_true(http_guard_body(&slow.gc, text_monotonic_us()));
    assert_true(http_guard_body(&fast.gc, text_monotonic_us()));
    for (int i = 0; i < 25; i++) { /* 2.5 s: fast sends 150 bytes/s, slow 20 */
        http_guard_bytes(&fast.gc, 15);
        http_guard_bytes(&slow.gc, 2);
        usleep(100 * 1000);
    }
    assert_true(http_guard_cut(&slow.gc));
    assert_false(http_guard_cut(&fast.gc));
    assert_true(http_guard_busy(&fast.gc));
    char buf[512];
    ssize_t n = peer_read(&slow, buf, sizeof(buf) - 1);
    assert_true(n > 0);
    buf[n] = 0;
    assert_non_null(strstr(buf, "408"));
    close_conn(g, &slow);
    close_conn(g, &fast);
    http_guard_stop(g);
}

/* Over TLS a cut sends no 408 (clear text would break the client's TLS
 * layer): the connection is shut down, the client reads end of file. */
static void test_tls_cut_sends_nothing(void **state)
{
    (void)state;
    http_guard_config cfg = {.head_timeout_s = 1, .body_min_rate = 100, .body_window_s = 1,
                             .max_conns = 4096, .tls = true};
    http_guard *g = NULL;
    assert_int_equal(http_guard_start(&cfg, &g), CB_EOK);
    conn line, body;
    assert_true(open_conn(g, &line, "192.0.2.1"));
    assert_true(open_conn(g, &body, "192.0.2.2"));
    assert_true(http_guard_line(&line.gc));
    assert_true(http_guard_body(&body.gc, text_monotonic_us()));
    usleep(2300 * 1000); /* past the head deadline and a whole body window */
    char buf[512];
    assert_true(http_guard_cut(&line.gc));
    assert_true(http_guard_cut(&body.gc));
    assert_int_equal(peer_read(&line, buf, sizeof(buf)), 0);
    assert_int_equal(peer_read(&body, buf, sizeof(buf)), 0);
    close_conn(g, &line);
    close_conn(g, &body);
    http_guard_stop(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap_per_address),
        cmocka_unit_test(test_ipv6_counts_by_64_and_mapped_as_ipv4),
        cmocka_unit_test(test_trusted_peers_are_exempt),
        cmocka_unit_test(test_table_churn),
        cmocka_unit_test(test_head_deadline),
        cmocka_unit_test(test_body_rate),
        cmocka_unit_test(test_tls_cut_sends_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
