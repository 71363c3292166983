/*
 * server.c — libmicrohttpd glue.
 *
 * Per request, MHD calls on_request several times: once with the headers,
 * once per body chunk, and once with an empty chunk at the end. The
 * request's req_state is part of its connection's state (HTTP/1.1 serves
 * one request at a time per connection), made when the connection opens
 * and freed when it closes: libmicrohttpd does not call the completion
 * callback for a request it refuses itself after the target was logged
 * (e.g. a head that outgrows the connection's memory), so nothing of a
 * request may need that callback to be freed. A request counts as in
 * flight from the handler's first call to its completion callback, which
 * libmicrohttpd then always calls.
 *
 * Percent-decoding of the path and query is ours (unescape): it never
 * produces a NUL byte, so "/Person/2%00/Image" cannot turn into
 * "/Person/2" on its way to the router; "%00" stays as it is and fails
 * there. Parsing is strict, and crmblob's own, answered in the error
 * carrier (SPEC §10): an HTTP/1.1 request without Host or with more than
 * one, a space or a bare CR in the target, a NUL or a bare CR in a header,
 * conflicting Content-Length headers, Content-Length with
 * Transfer-Encoding, two Transfer-Encodings or one not ending in chunked
 * are 400; another coding before chunked is 501. Each closes the
 * connection. libmicrohttpd runs in its lax mode: its strict mode only
 * adds the Host and target-space checks, which crmblob makes itself,
 * and its own 400 for them sends its header block twice.
 *
 * Slow clients and many connections are the guard's (guard.h): a request
 * head within --head-timeout, a body at --min-body-rate, at most
 * --max-conns-per-ip connections from one address. The handler tells it
 * where each request is (head, body, busy); its watchdog cuts the late.
 *
 * A request's client is its peer, unless the peer is a trusted proxy
 * (--trusted-proxy): then it is the client its X-Forwarded-For / Forwarded
 * / X-Forwarded-Proto name (forwarded.h), resolved once per request in
 * make_request. The api (failure limiter, Secure cookies) and the access
 * line see that client. libmicrohttpd's own messages go through the log.
 * A request whose route is quiet (a load balancer's probe) writes no
 * access line unless --log-probes. The access line shows the request
 * target as received (path and query, percent-encoding as sent, its first
 * TARGET_LOG_MAX bytes, copied before libmicrohttpd splits and decodes it
 * in place), the User-Agent and the request id (reqid.h), which every
 * answer carries in X-Request-Id.
 *
 * Every request that reached the handler is counted when it ends
 * (meters.h: by route template, method and status, its duration and
 * bytes); the counts kept elsewhere (requests in flight, the guard's
 * cuts) are copied in when the page is made. --metrics-listen is a
 * second, small daemon that serves only that page.
 *
 * An answer decided from the headers alone is queued at once: MHD then
 * sends it without reading the body and closes the connection. An error
 * found while reading the body (libmicrohttpd 0.9.75 cannot answer
 * mid-body) is sent when the body ends; the rest of the body is read and
 * dropped, up to DISCARD_MAX bytes, past which the connection is cut.
 *
 * On the pool of polling threads, an exchange whose finishing may take
 * long (api_exchange_blocks: decoding an upload, rendering a variant,
 * hashing a password) is finished on an offload thread while its
 * connection is suspended, so that the other connections of its polling
 * thread are not kept waiting; when it is resumed, the polling thread
 * queues the answer. So is the start of one whose credentials need a
 * password hashed (api_exchange_start_blocks); libmicrohttpd then makes
 * the handler's first call again. Password checks (the start of an
 * unremembered Basic value, the finish of a login) go to threads of their
 * own, PASSWORD_THREADS of them with at most PASSWORD_QUEUE_MAX waiting;
 * past that a check is answered 503 at once (api_exchange_busy), so that
 * guesses at any rate can neither hold up pictures nor queue without
 * bound. In durable mode an answer whose writes
 * are not yet on disk (api_exchange_held) waits suspended too, and the
 * store's committer resumes its connection after the flush: no thread
 * waits for the disk. Suspended connections are all resumed before the
 * daemon stops (libmicrohttpd aborts otherwise): the offload threads
 * finish every exchange handed to them before they exit, and http_stop
 * waits for the held answers.
 */
#include "http/http.h"

#include <assert.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/text.h"
#include "http/forwarded.h"
#include "http/guard.h"
#include "http/tls.h"
#include "http/reqid.h"
#include "http/meters.h"

#define DISCARD_MAX (16u * 1024u * 1024u)
#define DEFAULT_THREADS 4
#define DEFAULT_TIMEOUT_S 30
#define DEFAULT_HEAD_TIMEOUT_S 10
#define DEFAULT_MAX_CONNS 8192
/* Connections from one address: a sixty-fourth of the total, so that it
 * takes 64 addresses to fill the server; enough for a NAT of a few dozen
 * browsers (6 connections each). A reverse proxy is exempt (trusted). */
#define DEFAULT_MAX_CONNS_PER_IP 128
/* The body's minimum rate is averaged over windows of this length (the
 * first one is the grace): a phone's upload may stall for seconds. */
#define BODY_WINDOW_S 10
/* Per-connection memory for the request head and body buffers: above the
 * API's own head limits (so that it answers 414/431 with its carrier),
 * small enough for thousands of connections. libmicrohttpd 0.9.75 zeroes
 * the whole of it before every keep-alive request: at 128 KiB that was
 * a third of a GET's CPU (35k -> 56k req/s for GET Image at 32 KiB). The
 * price: a query of more than a few hundred arguments outgrows it, and
 * libmicrohttpd then closes the connection without an answer. */
#define CONN_MEMORY (32u * 1024u)
/* Bytes of the request target kept for the access line: a longer one is
 * logged cut (the API refuses targets over 8 KiB with 414 anyway). */
#define TARGET_LOG_MAX 1024

/* Offload threads for pictures: enough for the image workers; more
 * would only queue on them. */
#define OFFLOAD_THREADS 4
/* Threads for password checks: Argon2id runs one at a time (auth.h), the
 * second serves remembered passwords meanwhile. Measured with 32 clients
 * guessing passwords (tests/http/test_auth_throttle.py, two shared CPUs):
 * another user's small upload had a median of 13-18 ms (1 ms unattacked),
 * worst request 72-144 ms; with the checks on the picture threads,
 * 513-641 ms and 731-1243 ms. */
#define PASSWORD_THREADS 2
/* Checks waiting; more are answered 503. Room for a burst of clients
 * starting together (20 connections of two users, none remembered yet:
 * test_concurrency.py; with 16 the last two got 503), and at most a few
 * seconds of Argon2id for the last one. */
#define PASSWORD_QUEUE_MAX 64
/* Once the queue is half full, one address may have at most this many
 * checks waiting: guesses from one address (random user names, never
 * locked, never remembered) cannot keep everybody else's sign-ins out. */
#define PASSWORD_PER_ADDRESS 8
#define PASSWORD_RETRY_S 1 /* their Retry-After */

typedef struct req_state req_state;
typedef struct puller puller; /* the download threads */

/* One queue of exchanges, first come first served, and its threads. */
enum { LANE_WORK, LANE_PASSWORD, LANES };
typedef struct {
    req_state *head, *tail;
    int waiting;
    int max_waiting; /* 0: no limit */
    pthread_cond_t cv;
} lane_t;

typedef struct offload offload_t;
typedef struct {
    offload_t *o;
    int lane;
    pthread_t thread;
} offload_thread;

/* Exchanges waiting for an offload thread, in their lanes. */
struct offload {
    pthread_mutex_t mu; /* the lanes */
    lane_t lanes[LANES];
    bool stopping; /* the threads exit once their lane is empty */
    offload_thread threads[OFFLOAD_THREADS + PASSWORD_THREADS];
    int nthreads;
    http_server *server;
};

struct http_server {
    struct MHD_Daemon *d;
    api_t *api;
    atomic_int in_flight;
    atomic_bool stopping; /* new connections are refused */
    offload_t *offload;
    puller *puller;    /* reads pulled bodies ahead */
    atomic_int held; /* answers waiting for their writes' flush */
    net_cidr_list trusted; /* --trusted-proxy: peers whose forwarded headers count */
    bool log_probes;       /* --log-probes: access lines for quiet routes too */
    http_guard *guard; /* head deadline, body rate, connections per address */
    http_tls *tls;     /* https: the certificates; NULL: plain http */
    http_reqid_gen reqids;
    metrics_t *metrics;    /* http_config.metrics: NULL, or where meters count */
    http_meters *meters;   /* NULL: nothing is counted */
    http_metrics_listener *metrics_listener; /* --metrics-listen, or NULL */
};

struct req_state {
    api_exchange *x;       /* NULL until the handler's first call */
    size_t raw_target_len; /* strlen of the request target as received */
    const char *remote;    /* the client's address: the peer's, or client[] */
    char client[FWD_ADDR_MAX]; /* the client a trusted proxy named */
    bool resolved;             /* remote and secure are final */
    bool secure;               /* https: over TLS, or a trusted proxy said so */
    bool target_bad;       /* a space or a CR in the target as received */
    bool has_body;         /* Content-Length above 0, or a Transfer-Encoding */
    const char *target;    /* as received, for the access line (its conn_state's) */
    const char *agent;     /* User-Agent, or NULL */
    char reqid[HTTP_REQID_MAX]; /* sent in X-Request-Id if acceptable, else made */
    http_guard_conn *guard; /* its connection's */
    uint64_t start_us;
    uint64_t discarded;
    uint64_t received;     /* body bytes */
    uint64_t sent_bytes;
    int status;
    bool queued;
    /* Why the connection is (was) suspended: nothing, its start (a
     * password to hash) or its finish on an offload thread, or its
     * finished answer held for the disk (JOB_FINISH too). Cleared when
     * the start's resumption has been handled. */
    enum { JOB_NONE, JOB_START, JOB_FINISH } job;
    http_server *server;
    struct MHD_Connection *conn; /* suspended: the connection */
    api_request req;             /* offloaded: the request as the handler saw it */
    req_state *next;             /* in the offload queue */
};

/* What lives as long as a connection: its current request, and the
 * peer's address as text (made once: inet_ntop per request was ~2 % of
 * a GET). */
typedef struct {
    req_state req;
    char remote[64];
    char target[TARGET_LOG_MAX + 1]; /* the current request's, NUL-terminated */
    http_guard_conn guard;
    tls_set *tls; /* https: the certificates its handshake uses (pinned) */
} conn_state;

static const char *lookup_header(void *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

static const char *lookup_query(void *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

/* Decodes %HH in place, except %00 and malformed escapes, kept as sent. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    char *w = s;
    for (const char *r = s; *r; r++) {
        int hi = r[0] == '%' ? text_hex_value(r[1]) : -1;
        int lo = hi >= 0 ? text_hex_value(r[2]) : -1;
        if (lo >= 0 && (hi | lo) != 0) {
            *w++ = (char)(hi * 16 + lo);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

typedef struct {
    api_request *r;
    const char *content_length; /* the first one seen */
    const char *bad;            /* why the head is refused with 400, or NULL */
    unsigned hosts;             /* Host headers */
    unsigned codings;           /* Transfer-Encoding headers */
    const char *coding;         /* the first one's value */
    const char *agent;          /* User-Agent, the last one */
    const char *request_id;     /* X-Request-Id, the last one */
} head_scan;

/* Notes one header that decides how the request is framed or addressed,
 * or that its access line shows. Dispatched on the name's length first:
 * this runs for every header of every request. */
static void frame_header(head_scan *h, const char *key, size_t key_size, const char *value)
{
    if (key_size == 10 && strcasecmp(key, "User-Agent") == 0) {
        h->agent = value;
    } else if (key_size == 12 && strcasecmp(key, "X-Request-Id") == 0) {
        h->request_id = value;
    } else if (key_size == 4 && strcasecmp(key, "Host") == 0) {
        h->hosts++;
    } else if (key_size == 14 && strcasecmp(key, "Content-Length") == 0) {
        if (h->content_length != NULL && strcmp(h->content_length, value) != 0)
            h->bad = "Conflicting Content-Length headers";
        h->content_length = value;
    } else if (key_size == 17 && strcasecmp(key, "Transfer-Encoding") == 0) {
        if (h->codings++ == 0)
            h->coding = value;
    }
}

/* Adds one header or query argument to the head's measurements. */
static enum MHD_Result measure(void *cls, enum MHD_ValueKind kind, const char *key,
                               size_t key_size, const char *value, size_t value_size)
{
    head_scan *h = cls;
    size_t line = key_size + value_size + 4; /* "k: v\r\n" */
    if (kind == MHD_GET_ARGUMENT_KIND) {
        h->r->url_len += key_size + value_size + 2;
        return MHD_YES;
    }
    if (value == NULL)
        value = "";
    if (memchr(value, '\0', value_size) != NULL)
        h->bad = "NUL byte in a header";
    /* libmicrohttpd ends a line at CR LF or a bare LF; a bare CR stays in
     * the line, where another parser on the way may end it */
    if (memchr(value, '\r', value_size) != NULL || memchr(key, '\r', key_size) != NULL)
        h->bad = "Bare CR in a header";
    frame_header(h, key, key_size, value);
    h->r->header_bytes += line;
    h->r->header_count++;
    if (line > h->r->header_line_max)
        h->r->header_line_max = line;
    return MHD_YES;
}

/* HTTP/1.1 and later need Host (HTTP/1.0 may omit it). */
static bool needs_host(const char *version)
{
    return strncmp(version, "HTTP/1.", 7) == 0 && strcmp(version, "HTTP/1.0") != 0;
}

/* Is the last coding of a Transfer-Encoding list "chunked"? */
static bool ends_chunked(const char *list)
{
    const char *last = strrchr(list, ',');
    last = last != NULL ? last + 1 : list;
    last += strspn(last, " \t");
    size_t n = strcspn(last, " \t");
    return n == 7 && strncasecmp(last, "chunked", 7) == 0 && last[n + strspn(last + n, " \t")] == 0;
}

/* How a Transfer-Encoding frames the body (RFC 9112 §6.3): one header
 * saying "chunked" is what crmblob reads; a list not ending in chunked
 * leaves the body's end unknown (400); other codings before chunked
 * (gzip, chunked) are not implemented (501). */
static cb_err judge_coding(const head_scan *h, const char **why)
{
    if (h->codings > 1)
        *why = "More than one Transfer-Encoding header";
    else if (h->codings == 0 || strcasecmp(h->coding, "chunked") == 0)
        return CB_EOK;
    else if (!ends_chunked(h->coding))
        *why = "Transfer-Encoding does not end with chunked";
    if (*why != NULL)
        return CB_EBADREQ;
    *why = "Unsupported Transfer-Encoding (only chunked is)";
    return CB_ENOTIMPL;
}

/* The head's verdict once every header is seen (SPEC §10): ambiguous
 * framing or addressing is 400, a transfer coding other than chunked is
 * 501; *why is set for either. CB_EOK: the head may go on. */
static cb_err judge_head(const head_scan *h, const char *version, const char **why)
{
    *why = h->bad;
    if (h->hosts > 1)
        *why = "More than one Host header";
    else if (h->hosts == 0 && needs_host(version))
        *why = "HTTP/1.1 request without Host";
    else if (h->codings > 0 && h->content_length != NULL)
        *why = "Content-Length with Transfer-Encoding";
    if (*why != NULL)
        return CB_EBADREQ;
    return judge_coding(h, why);
}

static void peer_address(struct MHD_Connection *c, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    out[0] = '\0';
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)cap);
}

static enum MHD_Result collect_forwarded(void *cls, enum MHD_ValueKind kind, const char *key,
                                         const char *value)
{
    (void)kind;
    fwd_headers_add(cls, key, value);
    return MHD_YES;
}

/* From a trusted proxy only: the client (address, scheme) its forwarded
 * headers name; else, or when they name none, the peer stands (and it
 * speaks https when the connection is TLS). Once per request. */
static void resolve_client(const http_server *s, struct MHD_Connection *c, req_state *st)
{
    st->resolved = true;
    st->secure = s->tls != NULL;
    if (s->trusted.n == 0 || !net_cidr_list_match_text(&s->trusted, st->remote))
        return;
    fwd_headers h = {0};
    fwd_result r;
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_forwarded, &h);
    fwd_resolve(&s->trusted, &h, &r);
    if (r.addr[0] != '\0') {
        memcpy(st->client, r.addr, sizeof(st->client));
        st->remote = st->client;
    }
    if (r.proto != FWD_PROTO_UNKNOWN) /* the scheme between the client and the proxy */
        st->secure = r.proto == FWD_PROTO_HTTPS;
}

static api_request make_request(const http_server *s, struct MHD_Connection *c, const char *url,
                                const char *method, req_state *st)
{
    if (!st->resolved)
        resolve_client(s, c, st);
    return (api_request){
        .method = method,
        .path = url,
        .remote = st->remote,
        .secure = st->secure,
        .header = lookup_header,
        .query = lookup_query,
        .conn = c,
    };
}

/* ---- pulled bodies, read ahead off the polling threads ----
 *
 * A pulled body (api_response.from_pull) is read from the store, which
 * may wait (a PostgreSQL round trip, a pooled connection), so never on a
 * polling thread: PULL_THREADS threads of their own read it ahead, one
 * PULL_BUF at a time, into the body's back buffer while libmicrohttpd
 * sends its front one. libmicrohttpd's content reader (pull_read) only
 * copies from the front; when nothing is ready it suspends the
 * connection and answers 0 (libmicrohttpd 0.9.75 allows the suspension
 * from a content reader, and then calls it again once resumed), and the
 * read's end resumes it. So a download holds at most two buffers, a
 * thread only for one read at a time (a client that stops reading holds
 * none: its connection times out as any other), and a connection is
 * suspended only while a read for it is under way (it cannot close
 * then). A body dropped by libmicrohttpd (sent, cut, timed out) while a
 * read is under way is freed by that read's end. The threads finish
 * every read queued before they stop, so every suspended connection is
 * resumed before the daemon stops; a read wanted after that fails the
 * body (the connection is closed). */
#define PULL_BLOCK (64 * 1024) /* the most MHD asks for at once */
#define PULL_BUF (256 * 1024)  /* read ahead at once: a store piece */
#define PULL_THREADS 2

typedef struct pull_body pull_body;

struct pull_body {
    api_pull_fn pull;
    void *ctx;
    api_body_owner owner;
    struct MHD_Connection *conn;
    puller *pl;
    /* under pl->mu: */
    char *front, *back;
    size_t front_off, front_len; /* being sent */
    size_t back_len;             /* read ahead, ready unless fetching */
    uint64_t left;               /* bytes not read yet */
    bool fetching;               /* queued or being read */
    bool waiting;                /* suspended until the read ends */
    bool failed;                 /* a read failed: the body ends with an error */
    bool dropped;                /* libmicrohttpd is done with it */
    pull_body *next;             /* in the queue */
};

struct puller {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pull_body *head, *tail;
    bool stopping; /* the threads exit once the queue is empty */
    pthread_t threads[PULL_THREADS];
    int nthreads;
};

static void pull_destroy(pull_body *p)
{
    if (p->owner.release != NULL)
        p->owner.release(p->owner.cls);
    free(p->front);
    free(p->back);
    free(p);
}

/* Queues the next read of p (under pl->mu); false once stopping. */
static bool pull_fetch(pull_body *p)
{
    puller *pl = p->pl;
    if (pl->stopping)
        return false;
    p->fetching = true;
    p->next = NULL;
    if (pl->tail != NULL)
        pl->tail->next = p;
    else
        pl->head = p;
    pl->tail = p;
    pthread_cond_signal(&pl->cv);
    return true;
}

/* Fills p's back buffer (on a pull thread, outside the lock): false on
 * an error, or a body shorter than announced. */
static bool pull_fill(pull_body *p, size_t want)
{
    size_t got = 0;
    while (got < want) {
        long n = p->pull(p->ctx, p->back + got, want - got);
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    p->back_len = got;
    return true;
}

/* One read of p taken from the queue, then its connection resumed, or
 * the body freed when libmicrohttpd dropped it meanwhile. */
static void pull_serve(puller *pl, pull_body *p)
{
    pthread_mutex_lock(&pl->mu);
    bool dropped = p->dropped;
    size_t want = p->left < PULL_BUF ? (size_t)p->left : PULL_BUF;
    pthread_mutex_unlock(&pl->mu);
    bool ok = dropped || pull_fill(p, want); /* back is the thread's while fetching */
    pthread_mutex_lock(&pl->mu);
    p->fetching = false;
    if (ok)
        p->left -= want;
    p->failed |= !ok;
    bool resume = p->waiting;
    p->waiting = false;
    dropped = p->dropped;
    pthread_mutex_unlock(&pl->mu);
    if (dropped)
        pull_destroy(p);
    else if (resume)
        MHD_resume_connection(p->conn);
}

static void *puller_main(void *arg)
{
    puller *pl = arg;
    pthread_mutex_lock(&pl->mu);
    for (;;) {
        while (pl->head == NULL && !pl->stopping)
            pthread_cond_wait(&pl->cv, &pl->mu);
        pull_body *p = pl->head;
        if (p == NULL)
            break; /* stopping, and nothing left */
        if ((pl->head = p->next) == NULL)
            pl->tail = NULL;
        pthread_mutex_unlock(&pl->mu);
        pull_serve(pl, p);
        pthread_mutex_lock(&pl->mu);
    }
    pthread_mutex_unlock(&pl->mu);
    return NULL;
}

/* The threads finish the reads queued and exit; pl stays, for the
 * bodies libmicrohttpd has yet to drop (their next read fails). */
static void puller_stop(puller *pl)
{
    if (pl == NULL)
        return;
    pthread_mutex_lock(&pl->mu);
    pl->stopping = true;
    pthread_cond_broadcast(&pl->cv);
    pthread_mutex_unlock(&pl->mu);
    for (int i = 0; i < pl->nthreads; i++)
        pthread_join(pl->threads[i], NULL);
    pl->nthreads = 0;
}

/* Once no body can use pl any more: stopped, and the daemon too. */
static void puller_free(puller *pl)
{
    if (pl == NULL)
        return;
    puller_stop(pl);
    pthread_cond_destroy(&pl->cv);
    pthread_mutex_destroy(&pl->mu);
    free(pl);
}

static puller *puller_start(void)
{
    puller *pl = calloc(1, sizeof(*pl));
    if (pl == NULL)
        return NULL;
    pthread_mutex_init(&pl->mu, NULL);
    pthread_cond_init(&pl->cv, NULL);
    for (; pl->nthreads < PULL_THREADS; pl->nthreads++)
        if (pthread_create(&pl->threads[pl->nthreads], NULL, puller_main, pl) != 0) {
            log_error("cannot start the download threads");
            puller_free(pl);
            return NULL;
        }
    return pl;
}

/* Copies what the front buffer holds (swapping in the back one when it
 * is ready) and queues the next read; under pl->mu. 0: nothing ready. */
static size_t pull_take(pull_body *p, char *buf, size_t max)
{
    if (p->front_off == p->front_len && !p->fetching && p->back_len > 0) {
        char *t = p->front;
        p->front = p->back;
        p->back = t;
        p->front_len = p->back_len;
        p->front_off = p->back_len = 0;
    }
    size_t n = p->front_len - p->front_off < max ? p->front_len - p->front_off : max;
    memcpy(buf, p->front + p->front_off, n);
    p->front_off += n;
    if (!p->fetching && !p->failed && p->back_len == 0 && p->left > 0 && !pull_fetch(p))
        p->failed = true;
    return n;
}

/* libmicrohttpd's content reader, on a polling thread: front to back
 * (pos is the end of what was answered), never waiting for the store. */
static ssize_t pull_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    pull_body *p = cls;
    (void)pos;
    pthread_mutex_lock(&p->pl->mu);
    size_t n = pull_take(p, buf, max);
    bool failed = n == 0 && p->failed && !p->fetching;
    if (n == 0 && !failed && !p->waiting) { /* a read is under way: wait for it */
        p->waiting = true;
        MHD_suspend_connection(p->conn); /* before its read's end can resume it */
    }
    pthread_mutex_unlock(&p->pl->mu);
    if (failed)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    return (ssize_t)n; /* 0 while suspended: called again once resumed */
}

/* libmicrohttpd is done with the body (sent, or the connection closed). */
static void pull_free(void *cls)
{
    pull_body *p = cls;
    pthread_mutex_lock(&p->pl->mu);
    p->dropped = true;
    bool busy = p->fetching; /* then the read's end frees it */
    pthread_mutex_unlock(&p->pl->mu);
    if (!busy)
        pull_destroy(p);
}

static struct MHD_Response *pull_response(puller *pl, struct MHD_Connection *c,
                                          const api_response *r, api_body_owner owner)
{
    pull_body *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        if (owner.release != NULL)
            owner.release(owner.cls);
        return NULL;
    }
    *p = (pull_body){.pull = r->pull, .ctx = r->pull_ctx, .owner = owner, .conn = c, .pl = pl,
                     .left = r->body_len};
    p->front = malloc(PULL_BUF);
    p->back = malloc(PULL_BUF);
    struct MHD_Response *resp = NULL;
    if (p->front != NULL && p->back != NULL)
        resp = MHD_create_response_from_callback((uint64_t)r->body_len, PULL_BLOCK, pull_read, p,
                                                 pull_free);
    if (resp == NULL)
        pull_destroy(p);
    return resp;
}

/* The answer's headers on resp (NULL: none made). */
static struct MHD_Response *answer_headers(req_state *st, const api_response *r,
                                         struct MHD_Response *resp)
{
    if (resp == NULL)
        return NULL;
    if (r->content_type != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    for (size_t i = 0; i < r->nheaders; i++)
        MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
    if (r->close)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    MHD_add_response_header(resp, "X-Request-Id", st->reqid);
    return resp;
}

static struct MHD_Response *build_response(http_server *s, struct MHD_Connection *c,
                                           req_state *st, const api_response *r)
{
    struct MHD_Response *resp;
    api_body_owner owner = api_exchange_take_body(st->x);
    if (r->from_pull) /* pull_free releases the owner's, now or once sent */
        return answer_headers(st, r, pull_response(s->puller, c, r, owner));
    if (r->from_fd) /* MHD closes the fd (owner's) when done, or we do now */
        resp = MHD_create_response_from_fd_at_offset64(r->body_len, r->body_fd,
                                                       (uint64_t)r->body_off);
    else if (owner.release != NULL) /* sent from where it is, released by MHD when done */
        resp = MHD_create_response_from_buffer_with_free_callback_cls(
            r->body_len, (void *)r->body, owner.release, owner.cls);
    else
        resp = MHD_create_response_from_buffer(r->body_len, (void *)r->body, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL) {
        if (owner.release != NULL)
            owner.release(owner.cls);
        return NULL;
    }
    return answer_headers(st, r, resp);
}

static enum MHD_Result queue(struct MHD_Connection *c, req_state *st)
{
    const api_response *r = api_exchange_response(st->x);
    struct MHD_Response *resp = build_response(st->server, c, st, r);
    if (resp == NULL)
        return MHD_NO;
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    if (ok == MHD_YES) {
        st->queued = true;
        st->status = r->status;
        st->sent_bytes = r->body_len;
    }
    return ok;
}

/* Registers a new connection with the guard (over the per-address cap,
 * the guard shuts its socket down and libmicrohttpd closes it). */
static void guard_open(http_server *s, struct MHD_Connection *c, http_guard_conn *gc)
{
    const union MHD_ConnectionInfo *fd =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    const union MHD_ConnectionInfo *ad =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    http_guard_open(s->guard, gc, fd != NULL ? fd->connect_fd : -1,
                    ad != NULL ? ad->client_addr : NULL);
}

/* ---- TLS ---- */

/* The GnuTLS session of an https connection; NULL over plain http. */
static gnutls_session_t tls_session(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    return ci != NULL ? (gnutls_session_t)ci->tls_session : NULL;
}

/* An https connection opens: it pins the certificates in force. Its
 * handshake finds them through the session's pointer, which
 * libmicrohttpd 0.9.75 sets to the connection; checked here, so that the
 * callback never takes something else for a connection. */
static void tls_open(http_server *s, struct MHD_Connection *c, conn_state *cs)
{
    gnutls_session_t sess = tls_session(c);
    if (sess == NULL || gnutls_session_get_ptr(sess) != c) {
        log_error("https: a connection without its TLS session; refused");
        return; /* no pin: its handshake fails */
    }
    cs->tls = http_tls_pin(s->tls);
}

/* The handshake's certificate callback (gnutls_certificate_retrieve_function2):
 * the chain and key its connection pinned; -1 (the handshake fails)
 * without them. */
static int tls_certificate(gnutls_session_t sess, const gnutls_datum_t *req_ca_rdn, int nreqs,
                           const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                           gnutls_pcert_st **pcert, unsigned *npcert, gnutls_privkey_t *key)
{
    (void)req_ca_rdn, (void)nreqs, (void)pk_algos, (void)pk_algos_length;
    struct MHD_Connection *c = gnutls_session_get_ptr(sess);
    const union MHD_ConnectionInfo *ci =
        c != NULL ? MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT) : NULL;
    const conn_state *cs = ci != NULL ? ci->socket_context : NULL;
    return http_tls_use(cs != NULL ? cs->tls : NULL, pcert, npcert, key);
}

/* A connection opens (its state is made) or closes (freed). */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    http_server *s = cls;
    http_meters_connection(s->meters, code == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_state *cs = calloc(1, sizeof(conn_state));
        if (cs != NULL) {
            peer_address(c, cs->remote, sizeof(cs->remote));
            guard_open(s, c, &cs->guard);
            if (s->tls != NULL)
                tls_open(s, c, cs);
        }
        *socket_context = cs;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn_state *cs = *socket_context;
        if (cs != NULL && cs->req.x != NULL) /* never completed: cannot happen, but no leak */
            api_exchange_free(cs->req.x);
        if (cs != NULL) { /* before libmicrohttpd closes the descriptor */
            http_guard_close(s->guard, &cs->guard);
            http_tls_unpin(s->tls, cs->tls);
        }
        free(cs);
        *socket_context = NULL;
    }
}

/* Called by MHD with the request target as received, before it splits off
 * the query and decodes it: the request's state starts here, fresh. */
static void *uri_logged(void *cls, const char *uri, struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_state *cs = ci != NULL ? ci->socket_context : NULL;
    if (cs == NULL)
        return NULL;
    if (cs->req.x != NULL) /* the last request was refused by MHD unseen */
        api_exchange_free(cs->req.x);
    size_t len = strlen(uri), keep = len < TARGET_LOG_MAX ? len : TARGET_LOG_MAX;
    memcpy(cs->target, uri, keep);
    cs->target[keep] = '\0';
    cs->req = (req_state){
        .server = cls,
        .start_us = text_monotonic_us(),
        .raw_target_len = len,
        .target = cs->target,
        .target_bad = strpbrk(uri, " \r") != NULL, /* libmicrohttpd's lax mode lets them by */
        .remote = cs->remote,
        .guard = &cs->guard};
    http_guard_line(&cs->guard); /* cut already: libmicrohttpd reads end of file next */
    return &cs->req;
}

/* libmicrohttpd 0.9.75 hands the target over as a C string: a raw NUL in
 * it would silently cut "/Person/2\0/Image" down to "/Person/2". The
 * target ends where the version begins (both point into the request
 * line), so a shorter string means a NUL inside. */
static bool target_has_nul(const req_state *st, const char *url, const char *version)
{
    if (version <= url || (size_t)(version - url) > CONN_MEMORY)
        return false; /* no version on the line (HTTP/0.9): MHD refuses it anyway */
    return st->raw_target_len + 1 != (size_t)(version - url);
}

/* The end of the handler's first call, once the exchange has started.
 * libmicrohttpd closes the connection after an answer queued before the
 * request's end; without a body the end is the very next call, so an
 * early answer (401, 404, a CORS preflight) waits for it and the
 * connection stays open. */
static enum MHD_Result started(struct MHD_Connection *c, req_state *st)
{
    if (api_exchange_response(st->x) != NULL && st->has_body)
        return queue(c, st);
    if (st->has_body && !http_guard_body(st->guard, text_monotonic_us()))
        return MHD_NO; /* too slow already: closed */
    return MHD_YES;
}

static enum MHD_Result offload_push(offload_t *o, struct MHD_Connection *c, req_state *st,
                                    const api_request *req, int job);

static enum MHD_Result first_call(req_state *st, http_server *s, struct MHD_Connection *c,
                                  const char *url, const char *method, const char *version)
{
    if (!http_guard_busy(st->guard))
        return MHD_NO; /* the head came too late: a 408 is on its way */
    api_request req = make_request(s, c, url, method, st);
    head_scan scan = {.r = &req};
    req.url_len = strlen(url);
    MHD_get_connection_values_n(c, MHD_HEADER_KIND | MHD_GET_ARGUMENT_KIND, measure, &scan);
    st->agent = scan.agent;
    http_reqid_pick(&s->reqids, scan.request_id, st->reqid);
    st->has_body = scan.codings > 0 ||
                   (scan.content_length != NULL && strcmp(scan.content_length, "0") != 0);
    req.malformed = judge_head(&scan, version, &req.malformed_why);
    if (req.malformed == CB_EOK && (st->target_bad || target_has_nul(st, url, version))) {
        req.malformed = CB_EBADREQ;
        req.malformed_why = "Malformed request target";
    }
    st->x = api_exchange_start(s->api, &req); /* a malformed head: answered, nothing else */
    atomic_fetch_add(&s->in_flight, 1); /* MHD calls on_completed from now on */
    /* Counted first, then the check: http_stop sets `stopping` before it
     * waits for in_flight to drop, so a request it does not wait for is
     * one that sees `stopping` here, and is never suspended (with a
     * connection suspended, libmicrohttpd aborts at stop). */
    if (atomic_load(&s->stopping))
        api_exchange_unavailable(st->x);
    if (req.malformed != CB_EOK) /* queued now: libmicrohttpd reads no body, closes */
        return queue(c, st);
    if (api_exchange_start_blocks(st->x))
        return offload_push(s->offload, c, st, &req, JOB_START);
    return started(c, st);
}

/* ---- answers held for the disk ---- */

static void held_ready(void *ctx)
{
    req_state *st = ctx;
    http_server *s = st->server;
    MHD_resume_connection(st->conn); /* st belongs to the polling thread again */
    atomic_fetch_sub(&s->held, 1);
}

/* After the exchange's finish, with c suspended: resumes c now when its
 * answer may go, else once its writes are on disk. */
static void hold_or_resume(http_server *s, struct MHD_Connection *c, req_state *st)
{
    st->job = JOB_FINISH;
    st->server = s;
    st->conn = c;
    atomic_fetch_add(&s->held, 1);
    if (!api_exchange_held(st->x) || api_exchange_wait(st->x, held_ready, st))
        held_ready(st);
}

/* ---- offload threads ---- */

static void *offload_main(void *arg)
{
    offload_thread *t = arg;
    offload_t *o = t->o;
    lane_t *l = &o->lanes[t->lane];
    pthread_mutex_lock(&o->mu);
    for (;;) {
        while (l->head == NULL && !o->stopping)
            pthread_cond_wait(&l->cv, &o->mu);
        req_state *st = l->head;
        if (st == NULL)
            break; /* stopping, and nothing left */
        l->head = st->next;
        if (l->head == NULL)
            l->tail = NULL;
        l->waiting--;
        pthread_mutex_unlock(&o->mu);
        if (st->job == JOB_START) {
            api_exchange_start_finish(st->x, &st->req);
            MHD_resume_connection(st->conn); /* st belongs to the polling thread again */
        } else {
            api_exchange_finish(st->x, &st->req);
            hold_or_resume(o->server, st->conn, st);
        }
        pthread_mutex_lock(&o->mu);
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

static void offload_stop(offload_t *o)
{
    if (o == NULL)
        return;
    pthread_mutex_lock(&o->mu);
    o->stopping = true;
    for (int i = 0; i < LANES; i++)
        pthread_cond_broadcast(&o->lanes[i].cv);
    pthread_mutex_unlock(&o->mu);
    for (int i = 0; i < o->nthreads; i++)
        pthread_join(o->threads[i].thread, NULL);
    for (int i = 0; i < LANES; i++)
        pthread_cond_destroy(&o->lanes[i].cv);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

static offload_t *offload_start(http_server *s)
{
    offload_t *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return NULL;
    o->server = s;
    pthread_mutex_init(&o->mu, NULL);
    for (int i = 0; i < LANES; i++)
        pthread_cond_init(&o->lanes[i].cv, NULL);
    o->lanes[LANE_PASSWORD].max_waiting = PASSWORD_QUEUE_MAX;
    for (; o->nthreads < OFFLOAD_THREADS + PASSWORD_THREADS; o->nthreads++) {
        offload_thread *t = &o->threads[o->nthreads];
        *t = (offload_thread){.o = o,
                              .lane = o->nthreads < OFFLOAD_THREADS ? LANE_WORK : LANE_PASSWORD};
        if (pthread_create(&t->thread, NULL, offload_main, t) != 0) {
            log_error("cannot start the offload threads");
            offload_stop(o);
            return NULL;
        }
    }
    return o;
}

/* Is the lane at least half full with `remote` already holding its share
 * of it (PASSWORD_PER_ADDRESS)? Under the offload lock. */
static bool over_share(const lane_t *l, const char *remote)
{
    uint8_t key[NET_ADDR_KEY], other[NET_ADDR_KEY];
    if (l->waiting < l->max_waiting / 2 || net_addr_key_text(remote, key) == 0)
        return false;
    int n = 0;
    for (const req_state *q = l->head; q != NULL; q = q->next)
        if (net_addr_key_text(q->remote, other) > 0 && memcmp(key, other, sizeof(key)) == 0)
            n++;
    return n >= PASSWORD_PER_ADDRESS;
}

/* A password check that finds its lane full: answered at once (503,
 * Retry-After), as the start or the finish it stands for would be. */
static enum MHD_Result offload_refuse(offload_t *o, struct MHD_Connection *c, req_state *st,
                                      int job)
{
    http_meters_throttle(o->server->meters, HTTP_THROTTLE_PASSWORDS, 1);
    api_exchange_busy(st->x, PASSWORD_RETRY_S);
    return job == JOB_START ? started(c, st) : queue(c, st);
}

/* Suspends c and hands its exchange's start or finish to an offload
 * thread of its lane. libmicrohttpd calls the handler again once c is
 * resumed: for a start, as its first call again. */
static enum MHD_Result offload_push(offload_t *o, struct MHD_Connection *c, req_state *st,
                                    const api_request *req, int job)
{
    lane_t *l = &o->lanes[api_exchange_hashes(st->x) ? LANE_PASSWORD : LANE_WORK];
    pthread_mutex_lock(&o->mu);
    bool full = l->max_waiting > 0 &&
                (l->waiting >= l->max_waiting || over_share(l, st->remote));
    if (!full) {
        st->job = job;
        st->conn = c;
        st->req = *req;
        st->next = NULL;
        MHD_suspend_connection(c); /* before a thread can resume it */
        if (l->tail != NULL)
            l->tail->next = st;
        else
            l->head = st;
        l->tail = st;
        l->waiting++;
        pthread_cond_signal(&l->cv);
    }
    pthread_mutex_unlock(&o->mu);
    return full ? offload_refuse(o, c, st, job) : MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    http_server *s = cls;
    req_state *st = *con_cls;
    if (st == NULL)
        return MHD_NO; /* out of memory in uri_logged */
    if (st->x == NULL)
        return first_call(st, s, c, url, method, version);
    if (st->job == JOB_START) { /* resumed: the first call again */
        st->job = JOB_NONE;
        return started(c, st);
    }
    if (st->queued)
        return MHD_YES;
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        http_guard_bytes(st->guard, n);
        st->received += n;
        if (api_exchange_response(st->x) == NULL) {
            api_exchange_body(st->x, upload_data, n);
            return MHD_YES;
        }
        st->discarded += n;
        return st->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    if (st->job == JOB_FINISH) /* resumed: finished elsewhere, or its writes are on disk */
        return queue(c, st);
    if (!http_guard_busy(st->guard))
        return MHD_NO; /* the body was too slow: a 408 is on its way */
    api_request req = make_request(s, c, url, method, st);
    if (api_exchange_blocks(st->x, &req))
        return offload_push(s->offload, c, st, &req, JOB_FINISH);
    api_exchange_finish(st->x, &req);
    if (!api_exchange_held(st->x))
        return queue(c, st);
    MHD_suspend_connection(c);
    hold_or_resume(s, c, st);
    return MHD_YES;
}

/* Every YIELD_EVERY requests a pool thread lets another runnable thread
 * of its CPU go first. There are more pool threads than CPUs (one waits
 * while another works), and under load the scheduler would otherwise
 * let each run for milliseconds while the requests of the others wait:
 * on one core, 2 threads gave GET Image a p99 of 4.5 ms, against 1 ms for
 * one thread; yielding every 8 requests gives 1.0 ms (every 16: 1.1-1.2,
 * every 64: 1.7) for about 3 % of the throughput. With no other thread
 * waiting the call returns at once. */
#define YIELD_EVERY 8

static void take_turns(void)
{
    static __thread unsigned served;
    if (++served % YIELD_EVERY == 0)
        sched_yield();
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    http_server *s = cls;
    req_state *st = *con_cls;
    *con_cls = NULL;
    if (st == NULL)
        return;
    uint64_t now = text_monotonic_us();
    http_guard_idle(st->guard, now); /* the next head's clock starts */
    if (st->x == NULL) /* refused by MHD before the handler saw it */
        return;
    int status = st->queued ? st->status : http_guard_cut(st->guard) ? err_status(CB_ETIMEOUT) : 0;
    uint64_t bytes = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? st->sent_bytes : 0;
    const api_exchange *x = st->x;
    if (s->log_probes || !api_exchange_quiet(x))
        log_access(&(log_access_fields){.method = api_exchange_method(x),
                                        .target = st->target,
                                        .status = status,
                                        .bytes = bytes,
                                        .micros = now - st->start_us,
                                        .user = api_exchange_user(x),
                                        .app = api_exchange_app(x),
                                        .client = st->remote,
                                        .request_id = st->reqid,
                                        .user_agent = st->agent});
    if (s->meters != NULL)
        http_meters_request(s->meters, api_exchange_template(x), api_exchange_method(x), status,
                            now - st->start_us, st->received, bytes);
    api_exchange_free(st->x);
    st->x = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
    take_turns();
}

/* libmicrohttpd's own messages (a head it refuses itself, a client gone
 * mid-request) go through the log, stamped and limited per kind like
 * every diagnostic: written straight to stderr they were a line or two
 * per malformed request, as many as any client cared to send. */
__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt,
                                                           va_list ap)
{
    (void)cls;
    log_vmsg(LOG_WARN, "http: ", fmt, ap);
}

/* Once stopping, or with its address at the cap, a new connection is
 * closed at once. (Not
 * MHD_quiesce_daemon: in a thread pool with epoll it races with the
 * worker threads removing the listening socket themselves, and libmicrohttpd
 * 0.9.75 aborts the process when it loses.) */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t len)
{
    (void)len;
    http_server *s = cls;
    return atomic_load(&s->stopping) || !http_guard_admits(s->guard, addr) ? MHD_NO : MHD_YES;
}

static unsigned or_default(unsigned v, unsigned dflt)
{
    return v != 0 ? v : dflt;
}

static cb_err guard_start(const http_config *cfg, http_guard **out)
{
    http_guard_config gc = {
        .tls = cfg->tls != NULL,
        .head_timeout_s = or_default(cfg->head_timeout_s, DEFAULT_HEAD_TIMEOUT_S),
        .body_min_rate = cfg->body_min_rate,
        .body_window_s = BODY_WINDOW_S,
        .per_addr_max = or_default(cfg->max_conns_per_ip, DEFAULT_MAX_CONNS_PER_IP),
        .max_conns = or_default(cfg->max_conns, DEFAULT_MAX_CONNS),
        .exempt = cfg->trusted_proxies,
    };
    return http_guard_start(&gc, out);
}

/* Copies the counts kept elsewhere onto the page (metrics_collect). */
static void collect(void *cls)
{
    http_server *s = cls;
    uint64_t heads, bodies, refused;
    http_meters_set_in_flight(s->meters, atomic_load(&s->in_flight));
    http_guard_counts(s->guard, &heads, &bodies, &refused);
    http_meters_set_throttled(s->meters, HTTP_THROTTLE_SLOW_HEAD, heads);
    http_meters_set_throttled(s->meters, HTTP_THROTTLE_SLOW_BODY, bodies);
    http_meters_set_throttled(s->meters, HTTP_THROTTLE_PER_ADDRESS, refused);
}

static void metrics_stop(http_server *s)
{
    http_metrics_stop(s->metrics_listener);
    if (s->meters != NULL)
        metrics_uncollect(s->metrics, collect, s);
    http_meters_destroy(s->meters);
}

/* The server's meters, and the listener of --metrics-listen (which takes
 * cfg->metrics_fd, whatever this answers). */
static cb_err metrics_start(http_server *s, const http_config *cfg)
{
    if ((s->metrics = cfg->metrics) == NULL)
        return CB_EOK;
    if ((s->meters = http_meters_create(cfg->metrics)) == NULL ||
        metrics_collect(cfg->metrics, collect, s) != CB_EOK) {
        if (cfg->metrics_fd >= 0)
            close(cfg->metrics_fd);
        return CB_EINTERNAL;
    }
    if (cfg->metrics_fd < 0)
        return CB_EOK;
    s->metrics_listener = http_metrics_listen(cfg->metrics, cfg->metrics_fd, cfg->metrics_listen);
    return s->metrics_listener != NULL ? CB_EOK : CB_EUNAVAILABLE;
}

/* The sockets http_start was given, closed when it fails before their
 * listeners have them. */
static void close_sockets(const http_config *cfg)
{
    close(cfg->listen_fd);
    if (cfg->metrics_fd >= 0)
        close(cfg->metrics_fd);
}

cb_err http_start(api_t *api, const http_config *cfg, http_server **out)
{
    assert(cfg->listen_fd >= 0);
    http_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        close_sockets(cfg);
        return CB_EINTERNAL;
    }
    s->api = api;
    s->log_probes = cfg->log_probes;
    s->tls = cfg->tls;
    http_reqid_init(&s->reqids);
    if (cfg->trusted_proxies != NULL)
        s->trusted = *cfg->trusted_proxies;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
                     MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    if ((s->offload = offload_start(s)) == NULL || (s->puller = puller_start()) == NULL) {
        offload_stop(s->offload);
        free(s);
        close_sockets(cfg);
        return CB_EINTERNAL;
    }
    if (guard_start(cfg, &s->guard) != CB_EOK) {
        offload_stop(s->offload);
        puller_free(s->puller);
        free(s);
        close_sockets(cfg);
        return CB_EINTERNAL;
    }
    cb_err rc = metrics_start(s, cfg);
    if (rc != CB_EOK) {
        close(cfg->listen_fd);
        metrics_stop(s);
        offload_stop(s->offload);
        puller_free(s->puller);
        http_guard_stop(s->guard);
        free(s);
        return rc;
    }
    unsigned pool = cfg->threads ? cfg->threads : DEFAULT_THREADS;
    if (s->tls != NULL)
        flags |= MHD_USE_TLS;
    s->d = MHD_start_daemon(
        /* the logger first: libmicrohttpd warns about it otherwise */
        flags, 0, accept_policy, s, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, cfg->listen_fd, MHD_OPTION_THREAD_POOL_SIZE, pool,
        MHD_OPTION_CONNECTION_TIMEOUT, or_default(cfg->timeout_s, DEFAULT_TIMEOUT_S),
        MHD_OPTION_CONNECTION_LIMIT, or_default(cfg->max_conns, DEFAULT_MAX_CONNS),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
        MHD_OPTION_STRICT_FOR_CLIENT, 0, MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
        MHD_OPTION_URI_LOG_CALLBACK, uri_logged, s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, s,
        /* over plain http these two are left out: MHD_OPTION_END ends the list there */
        s->tls != NULL ? MHD_OPTION_HTTPS_PRIORITIES : MHD_OPTION_END, HTTP_TLS_PRIORITIES,
        MHD_OPTION_HTTPS_CERT_CALLBACK, tls_certificate, MHD_OPTION_END);
    if (s->d == NULL) {
        log_error("cannot serve on %s", cfg->listen); /* the socket: libmicrohttpd's */
        metrics_stop(s);
        offload_stop(s->offload);
        puller_free(s->puller);
        http_guard_stop(s->guard);
        free(s);
        return CB_EUNAVAILABLE;
    }
    *out = s;
    return CB_EOK;
}

void http_stop(http_server *s, unsigned grace_s)
{
    if (s == NULL)
        return;
    atomic_store(&s->stopping, true);
    uint64_t deadline = text_monotonic_us() + (uint64_t)grace_s * 1000000u;
    while (atomic_load(&s->in_flight) > 0 && text_monotonic_us() < deadline)
        usleep(10000);
    offload_stop(s->offload);
    puller_stop(s->puller); /* every download waiting for a read resumed */
    while (atomic_load(&s->held) > 0) /* a flush ends, or fails, soon */
        usleep(1000);
    MHD_stop_daemon(s->d); /* every suspended connection resumed */
    puller_free(s->puller); /* every body dropped */
    metrics_stop(s);
    http_guard_stop(s->guard); /* every connection closed */
    free(s);
}

int http_reload_register(http_server *s, reload_registry *r)
{
    return s->tls != NULL ? http_tls_register(s->tls, r) : 0;
}
