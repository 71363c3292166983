/*
 * meters.h — what the HTTP server counts (metrics.h), and the listener of
 * --metrics-listen that serves the registry's page.
 *
 * Requests are counted by route template (api.h's fixed list), method (a
 * fixed list: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, else "other")
 * and status (the codes crmblob answers, else "other"; "none" when the
 * connection ended before an answer), with their duration per template,
 * body bytes in and out, connections open and the hostile-client limits'
 * refusals. Nothing a client sends becomes a label value.
 *
 * A NULL http_meters (no registry) counts nothing; every call accepts it.
 */
#ifndef CB_HTTP_METERS_H
#define CB_HTTP_METERS_H

#include <stdint.h>
#include <sys/socket.h>

#include "api/api.h"
#include "core/metrics.h"

typedef struct http_meters http_meters;

/* Why a client was refused or cut by a limit for hostile clients. */
typedef enum {
    HTTP_THROTTLE_SLOW_HEAD,   /* the head took longer than --head-timeout */
    HTTP_THROTTLE_SLOW_BODY,   /* the body came slower than --min-body-rate */
    HTTP_THROTTLE_PER_ADDRESS, /* a connection over --max-conns-per-ip */
    HTTP_THROTTLE_PASSWORDS,   /* too many password checks waiting (503) */
    HTTP_THROTTLES
} http_throttle;

/* NULL without a registry (or out of memory, logged). */
http_meters *http_meters_create(metrics_t *m);
void http_meters_destroy(http_meters *hm);

/* A request that ended: its route template (api_exchange_template), method,
 * status (0: none sent), duration, body bytes received and sent. */
void http_meters_request(http_meters *hm, size_t tmpl, const char *method, int status, uint64_t us,
                         uint64_t bytes_in, uint64_t bytes_out);
/* A connection opened (+1) or closed (-1). */
void http_meters_connection(http_meters *hm, int delta);
void http_meters_throttle(http_meters *hm, http_throttle why, uint64_t n);
/* Counts kept elsewhere, copied in when the page is made (a collector). */
void http_meters_set_in_flight(http_meters *hm, int64_t n);
void http_meters_set_throttled(http_meters *hm, http_throttle why, uint64_t total);

/* The listener of --metrics-listen on the bound socket fd (it becomes the
 * listener's, closed in every case): GET (or HEAD) /metrics answers the
 * page of m, anything else 404; one thread, few connections. NULL when it
 * cannot start (logged). */
typedef struct http_metrics_listener http_metrics_listener;
http_metrics_listener *http_metrics_listen(metrics_t *m, int fd, const char *where);
void http_metrics_stop(http_metrics_listener *l);

#endif
