/*
 * net.h — network address helpers shared by the layers: lists of CIDR
 * ranges (for --trusted-proxy and anything else that names peers), matched
 * against a socket address or an address written as text.
 *
 * IPv4 ranges match IPv4 peers and IPv4-mapped IPv6 peers (::ffff:a.b.c.d);
 * IPv6 ranges match IPv6 peers. A bare address is a /32 or /128.
 */
#ifndef CB_NET_H
#define CB_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/err.h"

typedef struct {
    uint8_t addr[16]; /* network byte order; IPv4 in the first 4 bytes */
    uint8_t bits;     /* prefix length: <= 32 for IPv4, <= 128 for IPv6 */
    bool v4;
} net_cidr;

/* At most NET_CIDR_MAX ranges: a configuration list, not a data set. */
#define NET_CIDR_MAX 64

typedef struct {
    net_cidr v[NET_CIDR_MAX];
    size_t n;
} net_cidr_list;

/* Appends the ranges of `text` ("10.0.0.0/8, ::1 192.168.1.7", commas or
 * spaces between) to l. CB_EBADREQ on a malformed range or a full list;
 * l is then unchanged. */
cb_err net_cidr_list_parse(net_cidr_list *l, const char *text);
/* Does an address in one of l's ranges? Unknown families never match. */
bool net_cidr_list_match(const net_cidr_list *l, const struct sockaddr *sa);
/* The same for an address written as text ("192.0.2.1", "2001:db8::1"). */
bool net_cidr_list_match_text(const net_cidr_list *l, const char *addr);
/* Parses an address written as text into 16 bytes (IPv4 in the first 4). */
bool net_parse_addr(const char *text, uint8_t out[16], bool *v4);

/* A listening address "host:port": an IPv4 address, "[IPv6]", "localhost",
 * "*" or nothing (every IPv4 address); port 0-65535. false when malformed. */
struct sockaddr_storage;
bool net_parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len);
/* A socket listening on `text` (close-on-exec, SO_REUSEADDR), so that a
 * server knows it can listen before it creates anything. CB_EBADREQ when
 * `text` is malformed, CB_EUNAVAILABLE when the address cannot be bound
 * (*err: the errno, e.g. EADDRINUSE). */
cb_err net_listen(const char *text, int backlog, int *fd, int *err);

/* The bytes a peer is counted by wherever crmblob counts per address (the
 * connection cap, the failure limits, the password lane): a kind byte,
 * then an IPv4 address whole (IPv4-mapped IPv6 too) or an IPv6 address's
 * /64 (one host commonly holds a whole /64); unused bytes are 0. Returns
 * the bytes used, 0 for anything else (key all zero). */
#define NET_ADDR_KEY 9
size_t net_addr_key(const struct sockaddr *sa, uint8_t key[NET_ADDR_KEY]);
size_t net_addr_key_text(const char *text, uint8_t key[NET_ADDR_KEY]);

#endif
