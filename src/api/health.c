/*
 * health.c — GET /health and GET /ready, for load balancers (SPEC §11).
 *
 * /health says the process is alive and serving: it answers 200 "ok",
 * then the program and its version ("ok crmblob 1.2.0"), touching
 * nothing (no database, no worker, no lock), so a probe every second from
 * several balancers costs next to nothing. /ready says a
 * request could be served now: the database answers (store_ping) and an
 * image worker answers (img_ping, which starts one on an idle server and
 * keeps it); 503 with Retry-After and the part that does not answer in
 * the error carrier otherwise. Both need no credentials and write no
 * access line (their route table says so: public, quiet).
 *
 * GET /metrics (admins; its route table says so) is the registry's page
 * (metrics.h) on the main port; --metrics-listen serves the same page
 * on a listener of its own without credentials (src/http).
 *
 * A flood of /ready must not pile onto the database or the worker: one
 * probe at a time makes a verdict (single flight), and it is answered to
 * every probe for a second (READY_FRESH_US); while the next one is being
 * made the last one is answered, so no probe waits for a check but those
 * that come before the very first verdict. A change of verdict is logged
 * once (not ready, and why; ready again), not per probe.
 */
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "core/log.h"
#include "core/text.h"
#include "core/version.h"
#include "img/img.h"

#define READY_FRESH_US 1000000u
#define OK_BODY "ok\n"
#define METRICS_PAGE_MAX (8u << 20) /* far above any page: the label sets are fixed */

void health_init(health_state *h)
{
    *h = (health_state){0};
    int n = snprintf(h->alive, sizeof(h->alive), "ok crmblob %s\n", version_string());
    h->alive_len = n > 0 && (size_t)n < sizeof(h->alive) ? (size_t)n : 0;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
}

void health_destroy(health_state *h)
{
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
}

/* A probe's 200: a tiny text body, never cached on the way. */
static void answer_text(api_exchange *x, const char *body, size_t len)
{
    api_add_header(x, "Cache-Control", "no-store");
    api_answer_lent(x, 200, "text/plain; charset=utf-8", body, len, (api_body_owner){0});
}

static void answer_ok(api_exchange *x)
{
    answer_text(x, OK_BODY, sizeof(OK_BODY) - 1);
}

void health_alive(api_exchange *x, const api_request *req)
{
    (void)req;
    const health_state *h = &x->api->health;
    if (h->alive_len > 0)
        answer_text(x, h->alive, h->alive_len);
    else
        answer_ok(x);
}

void health_metrics(api_exchange *x, const api_request *req)
{
    (void)req;
    buf_t page;
    buf_init(&page, METRICS_PAGE_MAX);
    if (metrics_render(x->api->cfg.metrics, &page) != CB_EOK) {
        buf_free(&page);
        API_FAIL0(x, CB_EINTERNAL, MSG_INTERNAL);
        return;
    }
    size_t len = 0;
    char *body = buf_steal(&page, &len);
    api_add_header(x, "Cache-Control", "no-store");
    api_answer_bytes(x, 200, METRICS_CONTENT_TYPE, body, len);
}

/* The last verdict may be answered without a new check. Under mu. */
static bool verdict_usable(const health_state *h, uint64_t now)
{
    return h->at_us != 0 && (h->checking || now - h->at_us < READY_FRESH_US);
}

bool health_ready_blocks(const api_exchange *x, const api_request *req)
{
    (void)req;
    health_state *h = &x->api->health;
    pthread_mutex_lock(&h->mu);
    bool usable = verdict_usable(h, text_monotonic_us());
    pthread_mutex_unlock(&h->mu);
    return !usable;
}

/* Asks the database, then an image worker: 0 when both answer, else the
 * message of the first that does not, and why. */
static int check_parts(api_t *api, char *why, size_t cap)
{
    if (store_ping(api->store, why, cap) != STORE_OK)
        return MSG_NOT_READY_DATABASE;
    if (img_ping(why, cap) != CB_EOK)
        return MSG_NOT_READY_IMAGE_WORKER;
    return 0;
}

/* Stores a new verdict; logs when it differs from the last one. Under mu. */
static void keep_verdict(health_state *h, int failed, const char *why)
{
    if (failed != 0 && (h->failed != failed || strcmp(h->why, why) != 0))
        log_warn("not ready: the %s does not answer: %s",
                 failed == MSG_NOT_READY_DATABASE ? "database" : "image worker", why);
    else if (failed == 0 && h->failed != 0)
        log_info("ready again");
    h->failed = failed;
    snprintf(h->why, sizeof(h->why), "%s", why);
    h->at_us = text_monotonic_us();
}

/* The verdict to answer (copied out): the last one while usable, else a
 * new one made by this probe. */
static int ready_verdict(api_t *api, char *why, size_t cap)
{
    health_state *h = &api->health;
    pthread_mutex_lock(&h->mu);
    while (h->checking && h->at_us == 0) /* the first verdict is being made */
        pthread_cond_wait(&h->cv, &h->mu);
    if (!verdict_usable(h, text_monotonic_us())) {
        h->checking = true;
        pthread_mutex_unlock(&h->mu);
        char found[sizeof(h->why)] = "";
        int failed = check_parts(api, found, sizeof(found));
        pthread_mutex_lock(&h->mu);
        keep_verdict(h, failed, found);
        h->checking = false;
        pthread_cond_broadcast(&h->cv);
    }
    int failed = h->failed;
    snprintf(why, cap, "%s", h->why);
    pthread_mutex_unlock(&h->mu);
    return failed;
}

void health_ready(api_exchange *x, const api_request *req)
{
    (void)req;
    char why[sizeof(x->api->health.why)];
    int failed = ready_verdict(x->api, why, sizeof(why));
    if (failed == 0) {
        answer_ok(x);
        return;
    }
    api_add_header(x, "Cache-Control", "no-store");
    API_FAIL(x, CB_EUNAVAILABLE, (msg_id)failed, MSG_S(arena_strdup(x->arena, why)));
}
