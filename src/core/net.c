/*
 * net.c — CIDR lists (net.h).
 *
 * Invariant: every stored range has its host bits cleared, so a match is
 * a byte compare of the whole bytes of the prefix and one masked byte.
 */
#include "core/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/text.h"

/* ::ffff:0:0/96, the IPv4-mapped IPv6 addresses */
static const uint8_t MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool net_parse_addr(const char *text, uint8_t out[16], bool *v4)
{
    memset(out, 0, 16);
    if (inet_pton(AF_INET, text, out) == 1) {
        *v4 = true;
        return true;
    }
    *v4 = false;
    return inet_pton(AF_INET6, text, out) == 1;
}

bool net_parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(text, ':');
    int32_t port;
    if (colon == NULL || (size_t)(colon - text) >= sizeof(host) ||
        !text_parse_i32(colon + 1, strlen(colon + 1), &port) || port < 0 || port > 65535)
        return false;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*v6);
        return inet_pton(AF_INET6, host + 1, &v6->sin6_addr) == 1;
    }
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    *len = sizeof(*v4);
    if (hl == 0 || strcmp(host, "*") == 0) {
        v4->sin_addr.s_addr = htonl(INADDR_ANY);
        return true;
    }
    if (strcmp(host, "localhost") == 0)
        return inet_pton(AF_INET, "127.0.0.1", &v4->sin_addr) == 1;
    return inet_pton(AF_INET, host, &v4->sin_addr) == 1;
}

cb_err net_listen(const char *text, int backlog, int *fd, int *err)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1;
    *fd = -1;
    *err = 0;
    if (!net_parse_listen(text, &ss, &len))
        return CB_EBADREQ;
    int s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s >= 0 && ss.ss_family == AF_INET6) /* [::] is IPv6 only, as it was */
        setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(s, (struct sockaddr *)&ss, len) != 0 || listen(s, backlog) != 0) {
        *err = errno;
        if (s >= 0)
            close(s);
        return CB_EUNAVAILABLE;
    }
    *fd = s;
    return CB_EOK;
}

static bool prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

static void clear_host_bits(net_cidr *c)
{
    unsigned len = c->v4 ? 4 : 16;
    for (unsigned i = 0; i < len; i++) {
        unsigned first = i * 8;
        if (first >= c->bits)
            c->addr[i] = 0;
        else if (first + 8 > c->bits)
            c->addr[i] &= (uint8_t)(0xffu << (8 - (c->bits - first)));
    }
}

/* One range "ADDR" or "ADDR/BITS" of n bytes. */
static bool parse_one(const char *s, size_t n, net_cidr *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *slash = strchr(buf, '/');
    int32_t bits = -1;
    if (slash != NULL) {
        *slash = '\0';
        if (!text_parse_i32(slash + 1, strlen(slash + 1), &bits) || bits < 0)
            return false;
    }
    if (!net_parse_addr(buf, out->addr, &out->v4))
        return false;
    int32_t max = out->v4 ? 32 : 128;
    if (bits > max)
        return false;
    out->bits = (uint8_t)(bits < 0 ? max : bits);
    clear_host_bits(out);
    return true;
}

cb_err net_cidr_list_parse(net_cidr_list *l, const char *text)
{
    net_cidr_list tmp = *l;
    const char *p = text;
    while (*p != '\0') {
        size_t skip = strspn(p, ", \t");
        p += skip;
        size_t n = strcspn(p, ", \t");
        if (n == 0)
            break;
        if (tmp.n == NET_CIDR_MAX || !parse_one(p, n, &tmp.v[tmp.n]))
            return CB_EBADREQ;
        tmp.n++;
        p += n;
    }
    *l = tmp;
    return CB_EOK;
}

static bool match_bytes(const net_cidr_list *l, const uint8_t *addr, bool v4)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].v4 == v4 && prefix_eq(l->v[i].addr, addr, l->v[i].bits))
            return true;
    return false;
}

bool net_cidr_list_match(const net_cidr_list *l, const struct sockaddr *sa)
{
    if (l == NULL || sa == NULL)
        return false;
    if (sa->sa_family == AF_INET)
        return match_bytes(l, (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr, true);
    if (sa->sa_family != AF_INET6)
        return false;
    const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    if (memcmp(a, MAPPED, sizeof(MAPPED)) == 0 && match_bytes(l, a + 12, true))
        return true;
    return match_bytes(l, a, false);
}

bool net_cidr_list_match_text(const net_cidr_list *l, const char *addr)
{
    uint8_t b[16];
    bool v4;
    if (l == NULL || addr == NULL || !net_parse_addr(addr, b, &v4))
        return false;
    if (!v4 && memcmp(b, MAPPED, sizeof(MAPPED)) == 0 && match_bytes(l, b + 12, true))
        return true;
    return match_bytes(l, b, v4);
}

/* The key of 16 address bytes (v4: the first 4). */
static size_t key_of(const uint8_t *a, bool v4, uint8_t key[NET_ADDR_KEY])
{
    memset(key, 0, NET_ADDR_KEY);
    bool mapped = !v4 && memcmp(a, MAPPED, sizeof(MAPPED)) == 0;
    key[0] = v4 || mapped ? 4 : 6;
    memcpy(key + 1, mapped ? a + 12 : a, v4 || mapped ? 4 : 8);
    return v4 || mapped ? 5 : 9;
}

size_t net_addr_key(const struct sockaddr *sa, uint8_t key[NET_ADDR_KEY])
{
    memset(key, 0, NET_ADDR_KEY);
    if (sa != NULL && sa->sa_family == AF_INET)
        return key_of((const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr, true, key);
    if (sa != NULL && sa->sa_family == AF_INET6)
        return key_of(((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr, false, key);
    return 0;
}

size_t net_addr_key_text(const char *text, uint8_t key[NET_ADDR_KEY])
{
    uint8_t b[16];
    bool v4;
    memset(key, 0, NET_ADDR_KEY);
    if (text == NULL || !net_parse_addr(text, b, &v4))
        return 0;
    return key_of(b, v4, key);
}
