/*
 * main.c — crmblob's entry point: `serve`, and dispatch of the
 * administration commands (src/cli).
 *
 * Signals: SIGTERM, SIGINT and SIGHUP are blocked in every thread and
 * taken by sigwait here, so a stop always runs the orderly shutdown (stop
 * accepting, finish requests in flight, close the store), and a SIGHUP
 * runs the reload steps the layers registered (core/reload.h) on this
 * thread, between two waits: it never stops the server.
 */
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <errno.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "auth/auth.h"
#include "cli/cli.h"
#include "cli/sdnotify.h"
#include "core/log.h"
#include "core/reload.h"
#include "core/text.h"
#include "core/tz.h"
#include "http/http.h"
#include "img/img.h"
#include "store/store.h"

#define SHUTDOWN_GRACE_S 30
#define SWEEP_EVERY_MS 60000 /* at most this long between sweeps */

/* The sweeper: one thread that deletes BLOB records left unlinked for
 * longer than the grace period (SPEC §7), at start and then every
 * grace/2 (at most SWEEP_EVERY_MS), until stopped. */
typedef struct {
    store_t *st;
    int grace_s;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    pthread_t thread;
} sweeper;

static void sweep_once(sweeper *sw)
{
    int64_t n = 0;
    store_err e = store_blob_sweep(sw->st, text_now_ms() - (int64_t)sw->grace_s * 1000, &n);
    if (e != STORE_OK)
        log_warn("sweeping unlinked BLOBs failed: %s", store_err_name(e));
    else if (n > 0)
        log_info("deleted %lld BLOB record(s) unlinked for more than %d s", (long long)n,
                 sw->grace_s);
}

static void *sweep_loop(void *arg)
{
    sweeper *sw = arg;
    int64_t every_ms = (int64_t)sw->grace_s * 500;
    if (every_ms > SWEEP_EVERY_MS)
        every_ms = SWEEP_EVERY_MS;
    pthread_mutex_lock(&sw->mu);
    while (!sw->stop) {
        pthread_mutex_unlock(&sw->mu);
        sweep_once(sw);
        pthread_mutex_lock(&sw->mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (every_ms % 1000) * 1000000;
        ts.tv_sec += (time_t)(every_ms / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        while (!sw->stop && pthread_cond_timedwait(&sw->cv, &sw->mu, &ts) == 0)
            ;
    }
    pthread_mutex_unlock(&sw->mu);
    return NULL;
}

static bool sweeper_start(sweeper *sw, store_t *st, int grace_s)
{
    *sw = (sweeper){.st = st, .grace_s = grace_s};
    pthread_mutex_init(&sw->mu, NULL);
    pthread_cond_init(&sw->cv, NULL);
    return pthread_create(&sw->thread, NULL, sweep_loop, sw) == 0;
}

static void sweeper_stop(sweeper *sw)
{
    pthread_mutex_lock(&sw->mu);
    sw->stop = true;
    pthread_cond_signal(&sw->cv);
    pthread_mutex_unlock(&sw->mu);
    pthread_join(sw->thread, NULL);
    pthread_cond_destroy(&sw->cv);
    pthread_mutex_destroy(&sw->mu);
}

/* With no user at all, creates "admin" so that a new server can be used. */
static int bootstrap_admin(store_t *st)
{
    int64_t count;
    if (store_user_count(st, &count) != STORE_OK)
        return 1;
    if (count > 0)
        return 0;
    const char *env = getenv("CRMBLOB_ADMIN_PASSWORD");
    char pw[64], hash[AUTH_HASH_MAX];
    unsigned char rnd[15];
    if (env != NULL && *env) {
        snprintf(pw, sizeof(pw), "%s", env);
    } else {
        randombytes_buf(rnd, sizeof(rnd));
        sodium_bin2base64(pw, sizeof(pw), rnd, sizeof(rnd),
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    }
    model_user u = {.name = "admin", .full_name = "Administrator", .role = MODEL_ROLE_ADMIN};
    if (auth_hash_password(pw, hash) != CB_EOK)
        return 1;
    u.pw_hash = hash;
    if (store_user_add(st, &u) != STORE_OK)
        return 1;
    if (env != NULL && *env)
        log_info("created the first user 'admin' (role admin) with the password from "
                 "CRMBLOB_ADMIN_PASSWORD");
    else
        log_info("created the first user 'admin' (role admin) with password: %s "
                 "(change it with: crmblob user passwd admin --password-stdin)",
                 pw);
    sodium_memzero(pw, sizeof(pw));
    return 0;
}

/* The image worker: $CRMBLOB_IMG_WORKER, else crmblob-img beside this
 * program (both are built together). */
static const char *worker_path(char *buf, size_t cap)
{
    const char *env = getenv("CRMBLOB_IMG_WORKER");
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (env != NULL && *env)
        snprintf(buf, cap, "%s", env);
    else if (n > 0) {
        self[n] = '\0';
        snprintf(buf, cap, "%s/crmblob-img", dirname(self));
    } else
        snprintf(buf, cap, "crmblob-img");
    return buf;
}

/* Connections are file descriptors: allow as many as the hard limit does. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* --threads by default: one per CPU this process may run on, plus one, so
 * that a thread can go on while another waits its turn on the writers'
 * connection or is held up by its CPU. Measured with one CPU and 64
 * connections, 1 thread against 2: on a quiet machine 1 was a little
 * faster (GET Image 91.4k vs 88.1k req/s, durable PUT ImageInfo 46.3k vs
 * 43.9k), but while the host was busy it was much slower (durable PUT
 * ImageInfo 23.1k vs 26.6k and 25.8k vs 32.8k, in two series of three
 * alternated runs), so the spare thread stays. Earlier, 4 threads gave GET
 * p99 20 ms where 2 gave 5.5 ms. */
static unsigned default_threads(void)
{
    cpu_set_t set;
    int cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
    unsigned n = (unsigned)(cpus > 0 ? cpus : 1) + 1;
    return n > 64 ? 64 : n;
}

/* Uploads are spooled where the store makes its temporary files
 * (--spool-dir, else beside a database file, else $TMPDIR or /tmp): a
 * directory the server may create files in, checked at start rather than
 * at the first upload. */
static const char *spool_dir(store_t *store)
{
    const char *dir = store_spool_hint(store);
    struct stat st;
    int err = stat(dir, &st) != 0                ? errno
              : !S_ISDIR(st.st_mode)             ? ENOTDIR
              : access(dir, W_OK | X_OK) != 0    ? errno
                                                 : 0;
    if (err != 0) {
        log_error("cannot spool uploads in %s: %s", dir, strerror(err));
        return NULL;
    }
    return dir;
}

/* store_open of --db, tried again every second for --db-wait seconds
 * while the database cannot be reached (STORE_UNAVAILABLE: PostgreSQL not
 * up yet), then the SERVE hold. 0, or 1 with one line naming the database
 * (without its password) after the store's own reason. */
static int open_waiting(const cli_opts *o, const store_options *so, store_t **st)
{
    char where[4096];
    store_describe(o->db, where, sizeof(where));
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    store_err rc;
    bool told = false;
    while ((rc = store_open(o->db, so, st)) == STORE_UNAVAILABLE && o->db_wait_s > 0) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec >= o->db_wait_s)
            break;
        if (!told)
            log_info("waiting up to %d s for database %s", o->db_wait_s, where);
        told = true;
        sleep(1);
    }
    if (rc == STORE_OK && (rc = store_hold(*st, STORE_HOLD_SERVE)) == STORE_OK)
        return 0;
    log_error("cannot open database %s%s", where,
              rc == STORE_UNAVAILABLE ? ": it cannot be reached or is in use" : "");
    return 1;
}

/* Waits for SIGTERM or SIGINT, running the reload steps on each SIGHUP
 * (systemd is told RELOADING, then READY again whatever the steps gave:
 * a failed step leaves the old configuration serving). */
static int wait_for_stop(const sigset_t *sigs, reload_registry *reg, const char *status)
{
    int sig = 0;
    while (sigwait(sigs, &sig) == 0 && sig == SIGHUP) {
        sdnotify_reloading();
        reload_run(reg);
        sdnotify_ready(status);
    }
    sdnotify_stopping();
    return sig;
}

static int serve_until_signal(api_t *api, const cli_opts *o, http_tls *tls, reload_registry *reg,
                              const sigset_t *sigs)
{
    http_server *srv = NULL;
    http_config hc = {.listen = o->listen,
                      .threads = o->threads ? o->threads : default_threads(),
                      .timeout_s = o->timeout_s,
                      .head_timeout_s = o->head_timeout_s,
                      .body_min_rate = o->min_body_rate,
                      .max_conns = o->max_conns,
                      .max_conns_per_ip = o->max_conns_per_ip,
                      .trusted_proxies = &o->trusted_proxies,
                      .log_probes = o->log_probes,
                      .tls = tls};
    raise_fd_limit();
    if (http_start(api, &hc, &srv) != CB_EOK)
        return 1;
    http_reload_register(srv, reg);
    char where[4096];
    store_describe(o->db, where, sizeof(where));
    log_info("crmblob listening on %s://%s (database %s, %u threads)", tls ? "https" : "http",
             o->listen, where, hc.threads);
    char status[4200]; /* systemctl status shows it */
    snprintf(status, sizeof(status), "listening on %s://%s (database %s)", tls ? "https" : "http",
             o->listen, where);
    log_buffer_start(); /* access lines in batches: one write(2) per line was 5 % of a GET */
    sdnotify_ready(status);
    int sig = wait_for_stop(sigs, reg, status);
    log_info("received %s: finishing requests in flight", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    http_stop(srv, SHUTDOWN_GRACE_S);
    log_buffer_stop();
    log_info("stopped");
    return 0;
}

/* --tls-cert and --tls-key: both (read and checked now, before anything
 * is created: a bad file stops the start with one line), or neither. 0,
 * 1 (a bad file) or 2 (one without the other). */
static int open_tls(const cli_opts *o, http_tls **tls)
{
    *tls = NULL;
    if (o->tls_cert == NULL && o->tls_key == NULL)
        return 0;
    if (o->tls_cert == NULL || o->tls_key == NULL) {
        log_error("%s needs %s too", o->tls_cert ? "--tls-cert" : "--tls-key",
                  o->tls_cert ? "--tls-key" : "--tls-cert");
        return 2;
    }
    return http_tls_open(o->tls_cert, o->tls_key, tls) == CB_EOK ? 0 : 1;
}

static int cmd_serve(const cli_opts *o)
{
    store_t *st = NULL;
    http_tls *tls = NULL;
    reload_registry reg = {0};
    auth_t *auth = NULL;
    api_t *api = NULL;
    codec_t *codec = NULL;
    int rc = 1;
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* before any thread starts */
    signal(SIGPIPE, SIG_IGN);
    if (o->nargs != 0) {
        cli_usage(stderr);
        return 2;
    }
    log_set_limit(o->log_limit, LOG_LIMIT_MS);
    if ((rc = open_tls(o, &tls)) != 0)
        return rc;
    rc = 1;
    if (tz_init(NULL) != CB_EOK)
        log_warn("no time-zone data: SO-TimeZone accepts only UTC (install tzdata)");
    if (cli_make_codec(o, &codec) != 0)
        goto out;
    store_options so = {.durable = o->durable,
                        .cache_bytes = (size_t)o->cache_mb << 20,
                        .codec = codec,
                        .spool_dir = o->spool_dir,
                        .pool_size = (int)o->db_pool};
    if (open_waiting(o, &so, &st) != 0)
        goto out;
    if (bootstrap_admin(st) != 0 || auth_create(st, &o->auth, &auth) != CB_EOK ||
        cli_check_codec(o, st, codec) != 0)
        goto out;
    auth_reload_register(auth, &reg);
    char worker[PATH_MAX];
    img_config ic = {.pixel_limit = o->pixel_limit,
                     .cpu_limit_s = o->image_cpu_limit_s,
                     .worker = worker_path(worker, sizeof(worker))};
    if (img_init(&ic) != CB_EOK) {
        log_error("cannot use the image worker %s (set CRMBLOB_IMG_WORKER to its path)", worker);
        goto out;
    }
    api_config ac = {.spool_dir = spool_dir(st),
                     .spool_max = (int64_t)o->spool_mb * 1024 * 1024,
                     .cors_origins = o->cors,
                     .ncors = o->ncors,
                     .variant_cache_bytes = (int64_t)o->variant_cache_mb * 1024 * 1024,
                     .modern_formats = o->modern_formats};
    if (ac.spool_dir == NULL || api_create(st, auth, &ac, &api) != CB_EOK)
        goto out;
    sweeper sw;
    if (!sweeper_start(&sw, st, o->blob_grace_s)) {
        log_error("cannot start the BLOB sweeper");
        goto out;
    }
    rc = serve_until_signal(api, o, tls, &reg, &sigs);
    sweeper_stop(&sw);
    img_shutdown(); /* no request is in flight: the workers can go */
out:
    api_destroy(api);
    auth_destroy(auth);
    store_close(st); /* it borrows the codec */
    codec_destroy(codec);
    http_tls_free(tls); /* the server has stopped: no connection pins a set */
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cli_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    cli_opts o;
    if (cli_parse(argc - 1, argv + 1, &o) != 0) {
        cli_usage(stderr);
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    /* whatever a command ends with, lines it suppressed are counted in one
     * last summary (the server's flusher has stopped by then too) */
    atexit(log_flush_suppressed);
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(&o);
    if (strcmp(cmd, "user") == 0)
        return cli_user(&o);
    if (strcmp(cmd, "ticket") == 0)
        return cli_ticket(&o);
    if (strcmp(cmd, "token") == 0)
        return cli_token(&o);
    if (strcmp(cmd, "apptoken") == 0)
        return cli_apptoken(&o);
    if (strcmp(cmd, "keygen") == 0)
        return cli_keygen(&o);
    if (strcmp(cmd, "rekey") == 0)
        return cli_rekey(&o);
    if (strcmp(cmd, "migrate") == 0)
        return cli_migrate(&o);
    cli_usage(stderr);
    return 2;
}
