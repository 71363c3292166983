/*
 * forwarded.h — the client behind a trusted reverse proxy (--trusted-proxy):
 * its address from X-Forwarded-For or Forwarded (RFC 7239, for=), its
 * scheme from X-Forwarded-Proto or Forwarded (proto=). Text only: the
 * caller (server.c) collects the header lines, and only for a request
 * whose peer is itself a trusted proxy; from any other peer they are
 * never looked at.
 *
 * The client is the right-most address of the chain that is not itself a
 * trusted proxy (each proxy appends the address it received from; the
 * ones further left were written by whoever sent them, the client
 * included); the left-most when every address is trusted. X-Forwarded-For
 * is used when present, else Forwarded. Anything malformed, an "unknown"
 * or obfuscated node where the client should be, or more than
 * FWD_MAX_LINES lines or FWD_MAX_HOPS addresses: no forwarded client (the
 * peer's address stands).
 */
#ifndef CB_FORWARDED_H
#define CB_FORWARDED_H

#include <stdbool.h>
#include <stddef.h>

#include "core/net.h"

#define FWD_MAX_LINES 8 /* lines of one header */
#define FWD_MAX_HOPS 32 /* addresses in one chain */
#define FWD_ADDR_MAX 64 /* an address as text, NUL included */

typedef enum { FWD_PROTO_UNKNOWN, FWD_PROTO_HTTP, FWD_PROTO_HTTPS } fwd_proto;

/* The header lines of a request, in the order received. */
typedef struct {
    const char *xff[FWD_MAX_LINES]; /* X-Forwarded-For */
    size_t nxff;
    const char *fwd[FWD_MAX_LINES]; /* Forwarded */
    size_t nfwd;
    const char *xfp[FWD_MAX_LINES]; /* X-Forwarded-Proto */
    size_t nxfp;
    bool overflow; /* a header had more than FWD_MAX_LINES lines */
} fwd_headers;

typedef struct {
    char addr[FWD_ADDR_MAX]; /* the client's address, normalized; "" when none */
    fwd_proto proto;         /* the client's scheme, when a header names it */
} fwd_result;

/* Adds one header line to h when its name is one of the three (any case). */
void fwd_headers_add(fwd_headers *h, const char *name, const char *value);
/* The client that h names, trusted being the proxies' ranges. The scheme:
 * the right-most X-Forwarded-Proto value, else the proto= of the
 * Forwarded element that names the client. */
void fwd_resolve(const net_cidr_list *trusted, const fwd_headers *h, fwd_result *out);

#endif
