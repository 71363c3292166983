/*
 * meters.c — the HTTP server's metrics (meters.h) and the --metrics-listen
 * listener.
 *
 * The families are registered once, at start, with every label value
 * they will ever carry; a request's series is found by table (status) and
 * by a short scan (method), never by text built per request. The request
 * counts and durations are sparse: only the combinations that happened
 * appear on the page.
 */
#include "http/meters.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define N_METHODS 8
static const char *const method_names[N_METHODS] = {"GET",   "HEAD",   "POST",    "PUT",
                                                    "PATCH", "DELETE", "OPTIONS", "other"};

/* The statuses crmblob answers (err.h's table and the successes). */
static const int status_codes[] = {200, 201, 204, 206, 304, 400, 401, 403, 404, 405, 406, 408, 409,
                                   411, 412, 413, 414, 415, 416, 429, 431, 500, 501, 503, 507};
#define N_CODES (sizeof(status_codes) / sizeof(status_codes[0]))
#define STATUS_OTHER N_CODES
#define STATUS_NONE (N_CODES + 1)
#define N_STATUS (N_CODES + 2)
#define STATUS_TABLE 600

/* Request durations: 100 us to 10 s. */
static const uint64_t duration_us[] = {100,     250,     500,     1000,    2500,   5000,
                                       10000,   25000,   50000,   100000,  250000, 500000,
                                       1000000, 2500000, 5000000, 10000000};

struct http_meters {
    metrics_family *requests, *duration, *received, *sent, *connections, *in_flight, *throttled;
    uint8_t status_slot[STATUS_TABLE]; /* status -> its label value's index */
    char status_text[N_STATUS][8];
    const char *status_values[N_STATUS];
    char **templates; /* api_template's text, api_template_count() of them */
    size_t ntemplates;
};

static void status_table(http_meters *hm)
{
    for (size_t i = 0; i < STATUS_TABLE; i++)
        hm->status_slot[i] = (uint8_t)STATUS_OTHER;
    for (size_t i = 0; i < N_CODES; i++) {
        hm->status_slot[status_codes[i]] = (uint8_t)i;
        snprintf(hm->status_text[i], sizeof(hm->status_text[i]), "%d", status_codes[i]);
    }
    snprintf(hm->status_text[STATUS_OTHER], sizeof(hm->status_text[0]), "other");
    snprintf(hm->status_text[STATUS_NONE], sizeof(hm->status_text[0]), "none");
    for (size_t i = 0; i < N_STATUS; i++)
        hm->status_values[i] = hm->status_text[i];
}

static bool templates_make(http_meters *hm)
{
    hm->ntemplates = api_template_count();
    hm->templates = calloc(hm->ntemplates, sizeof(char *));
    if (hm->templates == NULL)
        return false;
    for (size_t i = 0; i < hm->ntemplates; i++) {
        char t[160];
        api_template(i, t, sizeof(t));
        if ((hm->templates[i] = strdup(t)) == NULL)
            return false;
    }
    return true;
}

static metrics_family *simple(metrics_t *m, const char *name, const char *help, metrics_type t)
{
    return metrics_register(m, &(metrics_def){.name = name, .help = help, .type = t});
}

static void register_all(http_meters *hm, metrics_t *m)
{
    metrics_label by_request[3] = {{"route", (const char *const *)hm->templates, hm->ntemplates},
                                   {"method", method_names, N_METHODS},
                                   {"status", hm->status_values, N_STATUS}};
    static const char *const throttles[HTTP_THROTTLES] = {"slow_head", "slow_body", "per_address",
                                                          "password_checks"};
    metrics_label why = {"reason", throttles, HTTP_THROTTLES};
    hm->requests = metrics_register(
        m, &(metrics_def){.name = "crmblob_http_requests_total",
                          .help = "Requests answered, by route template, method and status.",
                          .labels = by_request,
                          .nlabels = 3,
                          .sparse = true});
    hm->duration = metrics_register(
        m,
        &(metrics_def){.name = "crmblob_http_request_duration_seconds",
                       .help = "Time from a request's head to its answer's end, by route template.",
                       .type = METRICS_HISTOGRAM,
                       .labels = by_request,
                       .nlabels = 1,
                       .bounds = duration_us,
                       .nbounds = sizeof(duration_us) / sizeof(duration_us[0]),
                       .scale = 1e6,
                       .sparse = true});
    hm->received = simple(m, "crmblob_http_received_bytes_total", "Request body bytes received.",
                          METRICS_COUNTER);
    hm->sent = simple(m, "crmblob_http_sent_bytes_total",
                      "Answer body bytes sent (answers sent whole).", METRICS_COUNTER);
    hm->connections =
        simple(m, "crmblob_http_connections", "Client connections open.", METRICS_GAUGE);
    hm->in_flight = simple(m, "crmblob_http_requests_in_flight",
                           "Requests begun and not yet ended.", METRICS_GAUGE);
    hm->throttled = metrics_register(
        m, &(metrics_def){.name = "crmblob_http_throttled_total",
                          .help = "Clients cut or refused by the limits for hostile clients.",
                          .labels = &why,
                          .nlabels = 1});
}

http_meters *http_meters_create(metrics_t *m)
{
    if (m == NULL)
        return NULL;
    http_meters *hm = calloc(1, sizeof(*hm));
    if (hm == NULL || !templates_make(hm)) {
        log_error("http: out of memory for the metrics");
        http_meters_destroy(hm);
        return NULL;
    }
    status_table(hm);
    register_all(hm, m);
    return hm;
}

void http_meters_destroy(http_meters *hm)
{
    if (hm == NULL)
        return;
    for (size_t i = 0; hm->templates != NULL && i < hm->ntemplates; i++)
        free(hm->templates[i]);
    free(hm->templates);
    free(hm);
}

static size_t method_slot(const char *method)
{
    for (size_t i = 0; i < N_METHODS - 1; i++)
        if (strcmp(method, method_names[i]) == 0)
            return i;
    return N_METHODS - 1;
}

void http_meters_request(http_meters *hm, size_t tmpl, const char *method, int status, uint64_t us,
                         uint64_t bytes_in, uint64_t bytes_out)
{
    if (hm == NULL)
        return;
    size_t coords[3] = {tmpl, method_slot(method),
                        status == 0                           ? STATUS_NONE
                        : status > 0 && status < STATUS_TABLE ? hm->status_slot[status]
                                                              : STATUS_OTHER};
    metrics_add(hm->requests, metrics_index(hm->requests, coords), 1);
    metrics_observe(hm->duration, tmpl, us);
    if (bytes_in > 0)
        metrics_add(hm->received, 0, (int64_t)bytes_in);
    if (bytes_out > 0)
        metrics_add(hm->sent, 0, (int64_t)bytes_out);
}

void http_meters_connection(http_meters *hm, int delta)
{
    if (hm != NULL)
        metrics_add(hm->connections, 0, delta);
}

void http_meters_throttle(http_meters *hm, http_throttle why, uint64_t n)
{
    if (hm != NULL)
        metrics_add(hm->throttled, (size_t)why, (int64_t)n);
}

void http_meters_set_in_flight(http_meters *hm, int64_t n)
{
    if (hm != NULL)
        metrics_set(hm->in_flight, 0, n);
}

void http_meters_set_throttled(http_meters *hm, http_throttle why, uint64_t total)
{
    if (hm != NULL)
        metrics_set(hm->throttled, (size_t)why, (int64_t)total);
}

/* ---- the listener of --metrics-listen ---- */

#define LISTENER_CONNS 16
#define LISTENER_TIMEOUT_S 10
#define PAGE_MAX (8u << 20)
#define NOT_FOUND "not found: the metrics are at GET /metrics\n"

struct http_metrics_listener {
    struct MHD_Daemon *d;
    metrics_t *m;
};

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *type,
                              struct MHD_Response *r)
{
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result page(struct MHD_Connection *c, metrics_t *m)
{
    buf_t b;
    buf_init(&b, PAGE_MAX);
    if (metrics_render(m, &b) != CB_EOK) {
        buf_free(&b);
        return MHD_NO;
    }
    size_t len = 0;
    char *body = buf_steal(&b, &len);
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(
        len, body != NULL ? body : (char *)"", body != NULL ? free : NULL);
    if (r == NULL)
        free(body);
    return answer(c, MHD_HTTP_OK, METRICS_CONTENT_TYPE, r);
}

/* Bodies are not read: a request with one is answered (and closed) at
 * its head. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version, (void)upload;
    http_metrics_listener *l = cls;
    if (*con_cls == NULL) { /* the head: answer at the next call */
        *con_cls = l;
        return MHD_YES;
    }
    *upload_size = 0;
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (get && strcmp(url, "/metrics") == 0)
        return page(c, l->m);
    return answer(c, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8",
                  MHD_create_response_from_buffer(sizeof(NOT_FOUND) - 1, (void *)NOT_FOUND,
                                                  MHD_RESPMEM_PERSISTENT));
}

__attribute__((format(printf, 2, 0))) static void listener_log(void *cls, const char *fmt,
                                                               va_list ap)
{
    (void)cls;
    log_vmsg(LOG_WARN, "metrics listener: ", fmt, ap);
}

http_metrics_listener *http_metrics_listen(metrics_t *m, int fd, const char *where)
{
    http_metrics_listener *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        close(fd);
        return NULL;
    }
    l->m = m;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;
    l->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, l, MHD_OPTION_EXTERNAL_LOGGER, listener_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)LISTENER_CONNS, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)LISTENER_TIMEOUT_S,
        MHD_OPTION_END);
    if (l->d == NULL) {
        log_error("cannot serve the metrics on %s (--metrics-listen)", where);
        close(fd);
        free(l);
        return NULL;
    }
    return l;
}

void http_metrics_stop(http_metrics_listener *l)
{
    if (l == NULL)
        return;
    MHD_stop_daemon(l->d);
    free(l);
}
