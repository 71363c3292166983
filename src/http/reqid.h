/*
 * reqid.h — request ids (X-Request-Id): the one a client or a proxy in
 * front sent, when it is acceptable, else one made here. The id is in the
 * answer's X-Request-Id and in the request's access line, so that a
 * client's report, a proxy's log and crmblob's log can be matched.
 *
 * An id sent is taken only when it is 1..HTTP_REQID_MAX-1 bytes of
 * letters, digits and "-._:+/=@" (UUIDs, hex, base64, haproxy's and
 * nginx's ids): anything else — too long, spaces, quotes, control
 * characters, other bytes — is replaced by a made one, so the id is
 * always safe in a header, a text log line and a JSON string.
 *
 * Made ids are 16 lowercase hex digits: a bijective mix (splitmix64's
 * finalizer) of a per-server random seed plus a counter, so they never
 * repeat within one server's life and look unrelated to each other.
 */
#ifndef CB_HTTP_REQID_H
#define CB_HTTP_REQID_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define HTTP_REQID_MAX 65 /* 64 bytes and the NUL */

typedef struct {
    uint64_t seed;
    atomic_uint_fast64_t next;
} http_reqid_gen;

/* Seeds g from the system's random source (a fixed seed if it fails). */
void http_reqid_init(http_reqid_gen *g);
/* Is v (NUL-terminated) acceptable as a request id? */
bool http_reqid_valid(const char *v);
/* The request's id into out: sent when http_reqid_valid, else a new one. */
void http_reqid_pick(http_reqid_gen *g, const char *sent, char out[HTTP_REQID_MAX]);

#endif
