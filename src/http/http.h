/*
 * http.h — the HTTP server: libmicrohttpd (epoll and a thread pool)
 * driving api exchanges. This is the only module that sees libmicrohttpd.
 */
#ifndef CB_HTTP_H
#define CB_HTTP_H

#include <stdbool.h>

#include "api/api.h"
#include "core/err.h"
#include "core/net.h"

typedef struct http_server http_server;

typedef struct {
    const char *listen; /* "host:port", IPv4 or [IPv6]:port */
    unsigned threads;   /* worker threads (0 = default) */
    unsigned timeout_s;        /* idle connection timeout (0 = 30 s) */
    /* A request head must be complete within this of the connection's
     * opening or of the previous request's end (0 = 10 s). */
    unsigned head_timeout_s;
    /* A body must arrive at this many bytes/s on average over each 10 s
     * from the head's end; 0: no minimum. */
    unsigned body_min_rate;
    unsigned max_conns;        /* connections in all (0 = 8192) */
    /* connections from one address, an IPv6 peer's /64 (0 = 128); the
     * trusted proxies are not counted */
    unsigned max_conns_per_ip;
    /* Peers whose Forwarded / X-Forwarded-For / X-Forwarded-Proto name the
     * client (--trusted-proxy); NULL or empty: none. */
    const net_cidr_list *trusted_proxies;
    /* --log-probes: an access line for the quiet routes (GET /health,
     * /ready) too; without it a load balancer's probes are not logged. */
    bool log_probes;
    /* Where the server counts requests, bytes, connections and throttles
     * (metrics.h; NULL: nowhere), and "host:port" for a listener of its
     * own serving that registry's page at GET /metrics without
     * credentials (NULL: none). */
    metrics_t *metrics;
    const char *metrics_listen;
} http_config;

cb_err http_start(api_t *api, const http_config *cfg, http_server **out);
/* Stops accepting, lets requests in flight finish (up to grace_s), stops. */
void http_stop(http_server *s, unsigned grace_s);

#endif
