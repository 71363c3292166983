/*
 * guard.c — the connection guard (guard.h): head deadlines, a minimum body
 * rate, and connections per address.
 *
 * Invariants: the list of registered connections and the address table
 * change only under g->mu; an address's slot counts exactly the registered
 * connections with `counted` set, and is emptied (backward shift, so that
 * lookups never meet a hole) when the count drops to zero. The table has
 * at least twice as many slots as connections can be open, so a probe
 * always ends at an empty slot.
 */
#include "http/guard.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/text.h"

/* A phase: its kind in the low bits, a generation counted up by every
 * change above them (the watchdog tells a new body from the old one). */
enum { G_HEAD = 0, G_LINE = 1, G_BODY = 2, G_BUSY = 3, G_CUT = 4 };
#define KIND_MASK 7u
#define GEN_ONE 8u

typedef struct {
    uint8_t key[NET_ADDR_KEY];
    uint32_t count; /* 0: the slot is empty */
} addr_slot;

struct http_guard {
    http_guard_config cfg; /* cfg.exempt points at `exempt` (or is NULL) */
    net_cidr_list exempt;  /* a copy: the caller's list need not outlive g */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    pthread_t thread;
    http_guard_conn *conns; /* registered, under mu */
    addr_slot *slots;
    size_t mask;                       /* slots - 1, a power of two minus one */
    char head_msg[160], body_msg[160]; /* the 408 carriers */
    atomic_ullong heads_cut, bodies_cut, refused;
};

/* ---- connections per address ---- */

static size_t home_of(const http_guard *g, const uint8_t key[NET_ADDR_KEY])
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < NET_ADDR_KEY; i++)
        h = (h ^ key[i]) * 16777619u;
    return h & g->mask;
}

/* The slot of key, or the empty slot where it would go. */
static addr_slot *slot_for(http_guard *g, const uint8_t key[NET_ADDR_KEY])
{
    size_t i = home_of(g, key);
    while (g->slots[i].count != 0 && memcmp(g->slots[i].key, key, NET_ADDR_KEY) != 0)
        i = (i + 1) & g->mask;
    return &g->slots[i];
}

/* Is home h cyclically within (hole, j]? Then the entry at j stays. */
static bool stays(size_t hole, size_t j, size_t h)
{
    return hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
}

/* Empties slot i and moves later entries of its run back into the hole. */
static void slot_remove(http_guard *g, size_t hole)
{
    g->slots[hole].count = 0;
    for (size_t j = (hole + 1) & g->mask; g->slots[j].count != 0; j = (j + 1) & g->mask) {
        if (stays(hole, j, home_of(g, g->slots[j].key)))
            continue;
        g->slots[hole] = g->slots[j];
        g->slots[j].count = 0;
        hole = j;
    }
}

static bool exempt(const http_guard *g, const struct sockaddr *sa)
{
    return g->cfg.per_addr_max == 0 ||
           (g->cfg.exempt != NULL && sa != NULL && net_cidr_list_match(g->cfg.exempt, sa));
}

bool http_guard_admits(http_guard *g, const struct sockaddr *sa)
{
    if (exempt(g, sa))
        return true;
    uint8_t key[NET_ADDR_KEY];
    net_addr_key(sa, key); /* the cap counts an IPv6 peer by its /64 */
    pthread_mutex_lock(&g->mu);
    bool ok = slot_for(g, key)->count < g->cfg.per_addr_max;
    pthread_mutex_unlock(&g->mu);
    if (!ok)
        atomic_fetch_add(&g->refused, 1);
    return ok;
}

/* Counts gc against its address, under g->mu; false: the cap is reached. */
static bool count_in(http_guard *g, http_guard_conn *gc)
{
    addr_slot *s = slot_for(g, gc->key);
    if (s->count >= g->cfg.per_addr_max)
        return false;
    if (s->count++ == 0)
        memcpy(s->key, gc->key, sizeof(s->key));
    gc->counted = true;
    return true;
}

bool http_guard_open(http_guard *g, http_guard_conn *gc, int fd, const struct sockaddr *sa)
{
    gc->fd = fd;
    net_addr_key(sa, gc->key);
    atomic_store(&gc->since_us, text_monotonic_us());
    atomic_store(&gc->phase, G_HEAD);
    bool free_pass = exempt(g, sa);
    pthread_mutex_lock(&g->mu);
    bool ok = free_pass || count_in(g, gc);
    if (ok) {
        gc->next = g->conns;
        if (g->conns != NULL)
            g->conns->prev = gc;
        g->conns = gc;
        gc->registered = true;
    }
    pthread_mutex_unlock(&g->mu);
    if (!ok) {
        atomic_store(&gc->phase, G_CUT);
        shutdown(fd, SHUT_RDWR); /* on libmicrohttpd's thread, before it polls fd */
        atomic_fetch_add(&g->refused, 1);
    }
    return ok;
}

void http_guard_close(http_guard *g, http_guard_conn *gc)
{
    pthread_mutex_lock(&g->mu);
    if (gc->registered) {
        if (gc->prev != NULL)
            gc->prev->next = gc->next;
        else
            g->conns = gc->next;
        if (gc->next != NULL)
            gc->next->prev = gc->prev;
        gc->registered = false;
    }
    if (gc->counted) {
        addr_slot *s = slot_for(g, gc->key);
        if (s->count > 0 && --s->count == 0)
            slot_remove(g, (size_t)(s - g->slots));
        gc->counted = false;
    }
    pthread_mutex_unlock(&g->mu);
}

/* ---- phases ---- */

static bool move(http_guard_conn *gc, uint32_t kind)
{
    uint32_t p = atomic_load_explicit(&gc->phase, memory_order_relaxed);
    do {
        if ((p & KIND_MASK) == G_CUT)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&gc->phase, &p,
                                                    ((p + GEN_ONE) & ~KIND_MASK) | kind,
                                                    memory_order_release, memory_order_relaxed));
    return true;
}

bool http_guard_line(http_guard_conn *gc)
{
    return move(gc, G_LINE);
}

bool http_guard_body(http_guard_conn *gc, uint64_t now)
{
    atomic_store_explicit(&gc->body_bytes, 0, memory_order_relaxed);
    atomic_store_explicit(&gc->since_us, now, memory_order_relaxed);
    return move(gc, G_BODY);
}

bool http_guard_busy(http_guard_conn *gc)
{
    return move(gc, G_BUSY);
}

void http_guard_idle(http_guard_conn *gc, uint64_t now)
{
    atomic_store_explicit(&gc->since_us, now, memory_order_relaxed);
    move(gc, G_HEAD);
}

bool http_guard_cut(const http_guard_conn *gc)
{
    return (atomic_load_explicit(&gc->phase, memory_order_acquire) & KIND_MASK) == G_CUT;
}

/* ---- the watchdog ---- */

/* The 408 in the error carrier; best effort: the socket may be full, and
 * the connection is shut down right after either way. */
static void send_408(int fd, const char *body)
{
    char date[64], out[512];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    int n = snprintf(out, sizeof(out),
                     "HTTP/1.1 %d Request Timeout\r\nDate: %s\r\nConnection: close\r\n"
                     "Content-Type: application/json; charset=utf-8\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     err_status(CB_ETIMEOUT), date, strlen(body), body);
    if (n > 0 && (size_t)n < sizeof(out))
        (void)send(fd, out, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL); /* the shutdown follows */
}

/* The 408 a cut sends: none over TLS (cfg.tls), where bytes in clear
 * text would only break the client's TLS layer; the shutdown alone. */
static const char *carrier(const http_guard *g, const char *msg)
{
    return g->cfg.tls ? NULL : msg;
}

/* Cuts gc if it is still in phase p (one compare-and-swap against the
 * polling thread's next phase change); body: the 408's carrier or NULL. */
static void cut(http_guard_conn *gc, uint32_t p, const char *body, atomic_ullong *counter)
{
    if (!atomic_compare_exchange_strong(&gc->phase, &p, (p & ~KIND_MASK) | G_CUT))
        return;
    if (body != NULL)
        send_408(gc->fd, body);
    shutdown(gc->fd, SHUT_RDWR); /* libmicrohttpd reads end of file and closes */
    atomic_fetch_add(counter, 1);
}

/* A body below the minimum rate over its current window is cut; the next
 * window starts when one ends. */
static void check_body(http_guard *g, http_guard_conn *gc, uint32_t p, uint64_t since, uint64_t now)
{
    uint64_t window_us = (uint64_t)g->cfg.body_window_s * 1000000u;
    if (gc->win_phase != p) { /* a new body: its first window is the grace */
        gc->win_phase = p;
        gc->win_start_us = since;
        gc->win_bytes = 0;
    }
    if (now <= gc->win_start_us || now - gc->win_start_us < window_us)
        return;
    uint64_t got = atomic_load_explicit(&gc->body_bytes, memory_order_relaxed);
    if (got - gc->win_bytes < (uint64_t)g->cfg.body_min_rate * g->cfg.body_window_s) {
        cut(gc, p, carrier(g, g->body_msg), &g->bodies_cut);
        return;
    }
    gc->win_start_us = now;
    gc->win_bytes = got;
}

static void check(http_guard *g, http_guard_conn *gc, uint64_t now)
{
    uint32_t p = atomic_load_explicit(&gc->phase, memory_order_acquire);
    uint64_t since = atomic_load_explicit(&gc->since_us, memory_order_relaxed);
    uint32_t kind = p & KIND_MASK;
    if (kind == G_HEAD || kind == G_LINE) {
        /* no request line yet: nothing to answer, the connection just closes */
        if (now > since && now - since >= (uint64_t)g->cfg.head_timeout_s * 1000000u)
            cut(gc, p, kind == G_LINE ? carrier(g, g->head_msg) : NULL, &g->heads_cut);
    } else if (kind == G_BODY && g->cfg.body_min_rate > 0) {
        check_body(g, gc, p, since, now);
    }
}

static void *watch(void *arg)
{
    http_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += GUARD_TICK_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        uint64_t now = text_monotonic_us();
        for (http_guard_conn *gc = g->conns; gc != NULL; gc = gc->next)
            check(g, gc, now);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* ---- start, stop ---- */

#define CARRIER_408(msg)                                                                           \
    "{\"Error\":true,\"ErrorType\":\"%s\",\"ErrorMessage\":\"" msg "\","                           \
    "\"ErrorSource\":\"crmblob\"}"

static void make_messages(http_guard *g)
{
    snprintf(g->head_msg, sizeof(g->head_msg),
             CARRIER_408("The request head did not arrive within %u seconds"),
             err_type(CB_ETIMEOUT), g->cfg.head_timeout_s);
    snprintf(g->body_msg, sizeof(g->body_msg),
             CARRIER_408("The request body arrived slower than %u bytes per second"),
             err_type(CB_ETIMEOUT), g->cfg.body_min_rate);
}

static bool init_sync(http_guard *g)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return false;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    bool ok = pthread_cond_init(&g->cv, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (ok && pthread_mutex_init(&g->mu, NULL) != 0) {
        pthread_cond_destroy(&g->cv);
        ok = false;
    }
    return ok;
}

cb_err http_guard_start(const http_guard_config *cfg, http_guard **out)
{
    http_guard *g = calloc(1, sizeof(*g));
    size_t slots = 64;
    while (slots < 2 * ((size_t)cfg->max_conns + 64))
        slots *= 2;
    if (g == NULL || (g->slots = calloc(slots, sizeof(addr_slot))) == NULL || !init_sync(g)) {
        if (g != NULL)
            free(g->slots);
        free(g);
        return CB_EINTERNAL;
    }
    g->cfg = *cfg;
    if (cfg->exempt != NULL) {
        g->exempt = *cfg->exempt;
        g->cfg.exempt = &g->exempt;
    }
    g->mask = slots - 1;
    make_messages(g);
    if (pthread_create(&g->thread, NULL, watch, g) != 0) {
        pthread_cond_destroy(&g->cv);
        pthread_mutex_destroy(&g->mu);
        free(g->slots);
        free(g);
        return CB_EINTERNAL;
    }
    *out = g;
    return CB_EOK;
}

void http_guard_counts(http_guard *g, uint64_t *heads_cut, uint64_t *bodies_cut,
                       uint64_t *refused)
{
    *heads_cut = atomic_load(&g->heads_cut);
    *bodies_cut = atomic_load(&g->bodies_cut);
    *refused = atomic_load(&g->refused);
}

void http_guard_stop(http_guard *g)
{
    if (g == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    g->stopping = true;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    unsigned long long h = atomic_load(&g->heads_cut), b = atomic_load(&g->bodies_cut),
                       r = atomic_load(&g->refused);
    if (h + b + r > 0)
        log_info("http: closed %llu slow request head(s) and %llu slow body(ies); refused %llu "
                 "connection(s) over the per-address cap",
                 h, b, r);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g->slots);
    free(g);
}
