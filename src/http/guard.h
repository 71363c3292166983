/*
 * guard.h — what the files of src/http share: the connection guard, which
 * keeps slow or numerous connections from holding the server (SPEC §10),
 * where libmicrohttpd 0.9.75 does not. Its one user is server.c.
 *
 * - A request head must be complete within head_timeout_s of the
 *   connection's opening or of its previous request's end (libmicrohttpd's
 *   own timeout is an idle one, reset by every byte: one byte a second
 *   kept a connection forever).
 * - A body must arrive at body_min_rate bytes/s on average over each
 *   window of body_window_s seconds from the head's end (the first window
 *   is the grace).
 * - One address (an IPv6 peer: its /64) holds at most per_addr_max
 *   connections; peers in `exempt` (trusted reverse proxies, which carry
 *   everybody) are not counted.
 *
 * One watchdog thread walks the open connections every GUARD_TICK_MS and
 * cuts those past a deadline: it sends a 408 when an answer can still be
 * read as one (the request line has come, or the body is streaming) and
 * shuts the socket down both ways, so that libmicrohttpd, reading end of
 * file, closes the connection on its own thread. libmicrohttpd 0.9.75
 * writes nothing while it reads a head or a body, except its own error
 * answer to a malformed head and a 100 Continue before a body, both
 * small and written at once (the error answer then closes): a 408 could
 * only mix with one of them if it sat unsent for the whole deadline (a
 * client that reads nothing), and then only on that client's socket.
 *
 * The socket is only touched under the guard's lock and while the
 * connection is registered:
 * libmicrohttpd reports a connection closed (http_guard_close) before it
 * closes its descriptor, so the number is never another connection's.
 *
 * A connection's phase changes on its polling thread (the http_guard_*
 * phase calls) and, once, on the watchdog's (to CUT); both by
 * compare-and-swap, so that exactly one of them decides: a phase call
 * that finds the connection cut returns false, and the caller drops the
 * connection rather than answer on a socket that already carries a 408.
 */
#ifndef CB_HTTP_GUARD_H
#define CB_HTTP_GUARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/err.h"
#include "core/net.h"

#define GUARD_TICK_MS 100

typedef struct http_guard http_guard;

typedef struct {
    unsigned head_timeout_s;     /* > 0 */
    unsigned body_min_rate;      /* bytes per second; 0: no minimum */
    unsigned body_window_s;      /* > 0 */
    unsigned per_addr_max;       /* 0: no cap */
    unsigned max_conns;          /* connections in all (sizes the address table) */
    const net_cidr_list *exempt; /* NULL: none (copied at start) */
    /* The connections speak TLS: a cut only shuts the socket down (a 408
     * in clear text would be garbage to the client's TLS layer). */
    bool tls;
} http_guard_config;

/* What the guard knows of one connection; lives in the connection's state,
 * zeroed before http_guard_open. */
typedef struct http_guard_conn {
    _Atomic uint32_t phase;      /* G_* kind (guard.c) in the low bits, a generation above */
    _Atomic uint64_t since_us;   /* when the phase began */
    _Atomic uint64_t body_bytes; /* body bytes read in this BODY phase */
    int fd;
    bool registered, counted;
    uint8_t key[NET_ADDR_KEY]; /* the address as the cap counts it (net.h) */
    /* the watchdog's own, under the guard's lock */
    uint32_t win_phase;
    uint64_t win_start_us, win_bytes;
    struct http_guard_conn *prev, *next;
} http_guard_conn;

cb_err http_guard_start(const http_guard_config *cfg, http_guard **out);
/* Stops the watchdog and frees g; after libmicrohttpd has stopped. */
void http_guard_stop(http_guard *g);

/* May a connection from sa be accepted (the cap not yet reached)? */
bool http_guard_admits(http_guard *g, const struct sockaddr *sa);
/* Registers an accepted connection; its head's clock starts. false: over
 * the cap after all (another was accepted meanwhile), the socket is shut
 * down and libmicrohttpd will close it. */
bool http_guard_open(http_guard *g, http_guard_conn *gc, int fd, const struct sockaddr *sa);
/* The connection is closing (its descriptor still open). */
void http_guard_close(http_guard *g, http_guard_conn *gc);

/* Phase changes, on the connection's polling thread; false: it was cut. */
bool http_guard_line(http_guard_conn *gc);               /* the request line came */
bool http_guard_body(http_guard_conn *gc, uint64_t now); /* the head ended, a body follows */
bool http_guard_busy(http_guard_conn *gc);               /* nothing to time */
void http_guard_idle(http_guard_conn *gc, uint64_t now); /* the request ended */
bool http_guard_cut(const http_guard_conn *gc);
/* Since the start: heads and bodies cut for being slow, connections
 * refused over the per-address cap. */
void http_guard_counts(http_guard *g, uint64_t *heads_cut, uint64_t *bodies_cut,
                       uint64_t *refused);

static inline void http_guard_bytes(http_guard_conn *gc, size_t n)
{
    atomic_fetch_add_explicit(&gc->body_bytes, n, memory_order_relaxed);
}

#endif
