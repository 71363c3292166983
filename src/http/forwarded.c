/*
 * forwarded.c — X-Forwarded-For, Forwarded and X-Forwarded-Proto read
 * into the client behind trusted proxies (forwarded.h).
 *
 * Each header is first read whole into a chain of hops, left to right
 * (the order the proxies appended them), then walked from the right. A
 * hop whose node is not an address ("unknown", "_hidden", garbage) stays
 * in the chain as invalid: reaching it on the walk gives no client, since
 * whatever is left of it cannot be vouched for. Forwarded is parsed to
 * RFC 7239's grammar (pairs token=token or token="quoted", ';' between
 * pairs, ',' between elements, a parameter at most once per element);
 * X-Forwarded-For is a comma-separated list of nodes. A node is an IPv4
 * or IPv6 address, bracketed IPv6 and a ":port" allowed (the port is
 * dropped). Every copy is bounded by FWD_ADDR_MAX or VALUE_MAX.
 */
#include "http/forwarded.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "core/text.h"

#define VALUE_MAX 96 /* a Forwarded value, unquoted: longer is no node */

typedef struct {
    uint8_t addr[16];
    bool v4;
    bool valid;      /* the node is an address */
    fwd_proto proto; /* Forwarded: its element's proto= */
} hop;

typedef struct {
    hop v[FWD_MAX_HOPS];
    size_t n;
    bool bad; /* malformed, or too many hops */
} chain;

void fwd_headers_add(fwd_headers *h, const char *name, const char *value)
{
    const char **lines;
    size_t *n;
    if (strcasecmp(name, "X-Forwarded-For") == 0)
        lines = h->xff, n = &h->nxff;
    else if (strcasecmp(name, "Forwarded") == 0)
        lines = h->fwd, n = &h->nfwd;
    else if (strcasecmp(name, "X-Forwarded-Proto") == 0)
        lines = h->xfp, n = &h->nxfp;
    else
        return;
    if (value == NULL)
        return;
    if (*n == FWD_MAX_LINES)
        h->overflow = true;
    else
        lines[(*n)++] = value;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* ":8080" (up to 65535) or RFC 7239's obfuscated port ":_abc" (n bytes,
 * colon included). */
static bool valid_port(const char *s, size_t n)
{
    if (n < 2 || n > 17 || s[0] != ':')
        return false;
    bool obf = s[1] == '_';
    unsigned long port = 0;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (obf) {
            bool alnum = is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
            if (!alnum && c != '_' && c != '.' && c != '-')
                return false;
        } else if (!is_digit(c) || (port = port * 10 + (unsigned long)(c - '0')) > 65535) {
            return false;
        }
    }
    return true;
}

/* One node of n bytes: "192.0.2.1", "192.0.2.1:80", "2001:db8::1",
 * "[2001:db8::1]", "[2001:db8::1]:443". */
static bool parse_node(const char *s, size_t n, hop *h)
{
    char buf[FWD_ADDR_MAX];
    const char *a = s;
    size_t an = n;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL)
            return false;
        a = s + 1;
        an = (size_t)(close - a);
        size_t rest = n - (size_t)(close + 1 - s);
        if (rest > 0 && !valid_port(close + 1, rest))
            return false;
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon != NULL && memchr(colon + 1, ':', n - (size_t)(colon + 1 - s)) == NULL) {
            an = (size_t)(colon - s); /* one colon: IPv4 and a port */
            if (!valid_port(colon, n - an))
                return false;
        }
    }
    if (an == 0 || an >= sizeof(buf))
        return false;
    memcpy(buf, a, an);
    buf[an] = '\0';
    if (!net_parse_addr(buf, h->addr, &h->v4))
        return false;
    return !(s[0] == '[' && h->v4);
}

static hop *chain_add(chain *c)
{
    if (c->n == FWD_MAX_HOPS) {
        c->bad = true;
        return NULL;
    }
    hop *h = &c->v[c->n++];
    *h = (hop){0};
    return h;
}

/* ---- X-Forwarded-For ---- */

static void xff_line(chain *c, const char *p)
{
    for (;;) {
        size_t n = strcspn(p, ",");
        text_span node = text_trim(p, n);
        hop *h = node.n > 0 ? chain_add(c) : NULL;
        if (h == NULL) {
            c->bad = true; /* an empty element, or too many */
            return;
        }
        h->valid = parse_node(node.p, node.n, h);
        if (p[n] == '\0')
            return;
        p += n + 1;
    }
}

/* ---- Forwarded ---- */

static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A value at *pp (token or quoted-string) into out, unquoted; *len its
 * length, or VALUE_MAX when it did not fit. False when malformed. */
static bool fwd_value(const char **pp, char out[VALUE_MAX], size_t *len)
{
    const char *p = *pp;
    size_t n = 0;
    if (*p == '"') {
        for (p++; *p != '"'; p++) {
            if (*p == '\\' && p[1] != '\0')
                p++;
            else if (*p == '\0' || *p == '\\')
                return false;
            if (n < VALUE_MAX - 1)
                out[n] = *p;
            n += n < VALUE_MAX;
        }
        p++;
    } else {
        for (; is_tchar(*p); p++) {
            if (n < VALUE_MAX - 1)
                out[n] = *p;
            n += n < VALUE_MAX;
        }
        if (n == 0)
            return false;
    }
    *pp = p;
    *len = n;
    return true;
}

static fwd_proto proto_of(const char *s, size_t n)
{
    if (text_ieq(s, n, "https"))
        return FWD_PROTO_HTTPS;
    return text_ieq(s, n, "http") ? FWD_PROTO_HTTP : FWD_PROTO_UNKNOWN;
}

/* One pair name=value of the element h; seen: the parameters so far. */
static bool fwd_pair(const char **pp, hop *h, unsigned *seen)
{
    const char *p = *pp, *name = p;
    while (is_tchar(*p))
        p++;
    size_t nn = (size_t)(p - name);
    char v[VALUE_MAX];
    size_t vn;
    if (nn == 0 || *p++ != '=' || !fwd_value(&p, v, &vn))
        return false;
    unsigned bit = text_ieq(name, nn, "for") ? 1u : text_ieq(name, nn, "proto") ? 2u : 0u;
    if (bit & *seen)
        return false; /* a parameter at most once per element */
    *seen |= bit;
    if (bit == 1u)
        h->valid = vn < VALUE_MAX && parse_node(v, vn, h);
    else if (bit == 2u)
        h->proto = vn < VALUE_MAX ? proto_of(v, vn) : FWD_PROTO_UNKNOWN;
    *pp = p;
    return true;
}

static void skip_ows(const char **pp)
{
    while (text_is_ows(**pp))
        (*pp)++;
}

/* One Forwarded line: elements of pairs. */
static void fwd_line(chain *c, const char *p)
{
    for (;;) {
        hop *h = chain_add(c);
        unsigned seen = 0;
        if (h == NULL)
            return;
        for (;;) {
            skip_ows(&p);
            if (!fwd_pair(&p, h, &seen)) {
                c->bad = true;
                return;
            }
            skip_ows(&p);
            if (*p != ';')
                break;
            p++;
        }
        if (*p == '\0')
            return;
        if (*p++ != ',') {
            c->bad = true;
            return;
        }
    }
}

/* ---- the client ---- */

static bool hop_trusted(const net_cidr_list *trusted, const hop *h)
{
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    if (h->v4) {
        memcpy(&v4.sin_addr, h->addr, 4);
        return net_cidr_list_match(trusted, (const struct sockaddr *)&v4);
    }
    memcpy(&v6.sin6_addr, h->addr, 16);
    return net_cidr_list_match(trusted, (const struct sockaddr *)&v6);
}

/* The hop naming the client, or NULL. */
static const hop *pick(const net_cidr_list *trusted, const chain *c)
{
    if (c->bad || c->n == 0)
        return NULL;
    for (size_t i = c->n; i-- > 0;) {
        if (!c->v[i].valid)
            return NULL;
        if (!hop_trusted(trusted, &c->v[i]))
            return &c->v[i];
    }
    return &c->v[0]; /* every hop a trusted proxy: the first one */
}

/* The right-most X-Forwarded-Proto value. */
static fwd_proto xfp_proto(const fwd_headers *h)
{
    const char *line = h->xfp[h->nxfp - 1];
    const char *comma = strrchr(line, ',');
    const char *b = comma != NULL ? comma + 1 : line;
    text_span v = text_trim(b, strlen(b));
    return proto_of(v.p, v.n);
}

void fwd_resolve(const net_cidr_list *trusted, const fwd_headers *h, fwd_result *out)
{
    chain c = {.bad = h->overflow};
    const hop *client = NULL;
    *out = (fwd_result){0};
    for (size_t i = 0; i < h->nxff; i++)
        xff_line(&c, h->xff[i]);
    if (h->nxff == 0)
        for (size_t i = 0; i < h->nfwd; i++)
            fwd_line(&c, h->fwd[i]);
    if (h->nxff > 0 || h->nfwd > 0)
        client = pick(trusted, &c);
    if (client != NULL && inet_ntop(client->v4 ? AF_INET : AF_INET6, client->addr, out->addr,
                                    sizeof(out->addr)) == NULL)
        out->addr[0] = '\0';
    if (h->nxfp > 0 && !h->overflow)
        out->proto = xfp_proto(h);
    else if (client != NULL && h->nxff == 0)
        out->proto = client->proto;
}
