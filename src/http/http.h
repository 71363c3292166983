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
#include "core/reload.h"

typedef struct http_server http_server;

/* The TLS certificate and key (--tls-cert, --tls-key), read and checked
 * at start and again by the reload step. */
typedef struct http_tls http_tls;

/* Reads cert_file (a PEM chain, the server's certificate first) and
 * key_file (its PEM private key, unencrypted) and checks that the key is
 * the certificate's. CB_EOK, or an error after one log line naming the
 * option and the file at fault and why. */
cb_err http_tls_open(const char *cert_file, const char *key_file, http_tls **out);
/* After http_stop (no connection left). NULL: nothing. */
void http_tls_free(http_tls *t);

typedef struct {
    const char *listen; /* "host:port", IPv4 or [IPv6]:port, for the log */
    /* The socket listening on it (net_listen), bound before anything else
     * is made. http_start takes it: the server closes it when it stops,
     * and http_start when it fails before libmicrohttpd has it. */
    int listen_fd;
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
    /* https: the certificates (http_tls_open; the caller's, outliving the
     * server); NULL: plain http. */
    http_tls *tls;
    /* Where the server counts requests, bytes, connections and throttles
     * (metrics.h; NULL: nowhere), and a listener of its own serving that
     * registry's page at GET /metrics without credentials: metrics_fd, the
     * socket bound on "host:port" metrics_listen (net_listen; -1: none),
     * taken like listen_fd. */
    metrics_t *metrics;
    const char *metrics_listen;
    int metrics_fd;
} http_config;

cb_err http_start(api_t *api, const http_config *cfg, http_server **out);
/* Stops accepting, lets requests in flight finish (up to grace_s), stops. */
void http_stop(http_server *s, unsigned grace_s);
/* Registers the server's reload steps (its TLS certificates; none over
 * plain http): -1 when the registry is full. */
int http_reload_register(http_server *s, reload_registry *r);

#endif
