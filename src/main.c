/*
 * main.c — crmblob's entry point: `serve`, and dispatch of the
 * administration commands (src/cli).
 *
 * The configuration comes from cli_load (src/cli/opts.c: the command line,
 * CRMBLOB_<OPTION>, a --config file). serve binds its port before anything
 * else, so a port in use is told before a database or a password is made.
 *
 * Signals: SIGTERM, SIGINT and SIGHUP are blocked in every thread and
 * taken by sigwait here, so a stop always runs the orderly shutdown (stop
 * accepting, finish requests in flight, close the store), and a SIGHUP
 * runs the reload steps the layers registered (core/reload.h) on this
 * thread, between two waits: it never stops the server.
 */
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
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
#include "cli/reconf.h"
#include "cli/sdnotify.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/net.h"
#include "core/reload.h"
#include "core/text.h"
#include "core/tz.h"
#include "core/version.h"
#include "http/http.h"
#include "img/img.h"
#include "jobs/job.h"
#include "jobs/runner.h"
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

/* Where the first admin's random password goes when stderr is not a
 * terminal: this file, in the directory where uploads are spooled. */
#define ADMIN_PW_FILE "crmblob-admin-password"

/* Writes pw to dir/ADMIN_PW_FILE, a new file only its owner may read (an
 * old one is replaced); its path into path. 0, or an errno. */
static int write_pw_file(const char *dir, const char *pw, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, ADMIN_PW_FILE);
    if (unlink(path) != 0 && errno != ENOENT)
        return errno;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno;
    size_t n = strlen(pw);
    int err = 0;
    if (write(fd, pw, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || fsync(fd) != 0)
        err = errno != 0 ? errno : EIO;
    if (close(fd) != 0 && err == 0)
        err = errno;
    if (err != 0)
        unlink(path);
    return err;
}

/* Tells the first admin's random password once, never through the log:
 * on stderr when it is a terminal, else in a file (write_pw_file) whose
 * path is logged. path gets that path ("" for the terminal). 0 or 1. */
static int tell_admin_password(store_t *st, const char *pw, char *path, size_t cap)
{
    path[0] = '\0';
    if (isatty(STDERR_FILENO)) {
        fprintf(stderr,
                "\ncrmblob: the first user 'admin' (role admin) has the password: %s\n"
                "  (shown once; change it with: crmblob user passwd admin --password-stdin)\n\n",
                pw);
        return 0;
    }
    int err = write_pw_file(store_spool_hint(st), pw, path, cap);
    if (err != 0)
        log_error("cannot write the first admin's password to %s: %s", path, strerror(err));
    return err != 0;
}

/* The first user's password: admin-password (CRMBLOB_ADMIN_PASSWORD or the
 * config file), or a random one
 * (told by tell_admin_password). */
static void admin_password(const cli_opts *o, char *pw, size_t cap, bool *from_env)
{
    const char *env = o->admin_password; /* CRMBLOB_ADMIN_PASSWORD, or the config file */
    unsigned char rnd[15];
    *from_env = env != NULL && *env;
    if (*from_env) {
        snprintf(pw, cap, "%s", env);
        return;
    }
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2base64(pw, cap, rnd, sizeof(rnd), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* With no user at all, creates "admin" so that a new server can be used.
 * Its password is never logged: the line says where it went. */
static int bootstrap_admin(store_t *st, const cli_opts *o)
{
    int64_t count;
    if (store_user_count(st, &count) != STORE_OK)
        return 1;
    if (count > 0)
        return 0;
    char pw[64], hash[AUTH_HASH_MAX], path[PATH_MAX + 64] = "";
    bool from_env;
    int rc = 1;
    admin_password(o, pw, sizeof(pw), &from_env);
    model_user u = {.name = "admin", .full_name = "Administrator", .role = MODEL_ROLE_ADMIN};
    if (auth_hash_password(pw, hash) != CB_EOK)
        goto out;
    u.pw_hash = hash;
    if (!from_env && tell_admin_password(st, pw, path, sizeof(path)) != 0)
        goto out;
    if (store_user_add(st, &u) != STORE_OK) {
        if (path[0] != '\0')
            unlink(path);
        goto out;
    }
    rc = 0;
    if (from_env)
        log_info("created the first user 'admin' (role admin) with the password from "
                 "CRMBLOB_ADMIN_PASSWORD or admin-password");
    else if (path[0] == '\0')
        log_info("created the first user 'admin' (role admin); its password was shown on the "
                 "terminal");
    else
        log_info("created the first user 'admin' (role admin); its password is in %s (mode "
                 "0600: read it, delete it, change it with: crmblob user passwd admin "
                 "--password-stdin)",
                 path);
out:
    sodium_memzero(pw, sizeof(pw));
    return rc;
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

static int serve_until_signal(api_t *api, const cli_opts *o, int fd[2], http_tls *tls,
                              reload_registry *reg, const sigset_t *sigs, metrics_t *metrics)
{
    http_server *srv = NULL;
    http_config hc = {.listen = o->listen,
                      .listen_fd = fd[0],
                      .threads = o->threads ? o->threads : default_threads(),
                      .timeout_s = o->timeout_s,
                      .head_timeout_s = o->head_timeout_s,
                      .body_min_rate = o->min_body_rate,
                      .max_conns = o->max_conns,
                      .max_conns_per_ip = o->max_conns_per_ip,
                      .trusted_proxies = &o->trusted_proxies,
                      .log_probes = o->log_probes,
                      .tls = tls,
                      .metrics = metrics,
                      .metrics_listen = o->metrics_listen,
                      .metrics_fd = fd[1]};
    raise_fd_limit();
    fd[0] = fd[1] = -1; /* http_start's now, whatever it answers */
    if (http_start(api, &hc, &srv) != CB_EOK)
        return 1;
    http_reload_register(srv, reg);
    char where[4096];
    store_describe(o->db, where, sizeof(where));
    char extra[300] = "";
    if (o->metrics_listen != NULL)
        snprintf(extra, sizeof(extra), "; metrics on http://%s/metrics", o->metrics_listen);
    log_info("crmblob %s listening on %s://%s (database %s, %u threads%s)", version_string(),
             tls ? "https" : "http", o->listen, where, hc.threads, extra);
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

/* One listening socket into *fd; 0, or 1 (logged, naming the option). */
static int listen_on(const char *where, const char *option, int backlog, int *fd)
{
    int err = 0;
    if (net_listen(where, backlog, fd, &err) == CB_EOK)
        return 0;
    log_error("cannot listen on %s (%s): %s", where, option, strerror(err));
    return 1;
}

/* The listening sockets (fd[0] --listen; fd[1] --metrics-listen, or -1),
 * before anything is created: a port in use is told before a database is
 * made or a first password printed. */
static int listen_first(const cli_opts *o, int fd[2])
{
    if (listen_on(o->listen, "--listen", SOMAXCONN, &fd[0]) != 0)
        return 1;
    return o->metrics_listen == NULL ? 0
                                     : listen_on(o->metrics_listen, "--metrics-listen", 16, &fd[1]);
}

/* The build's version as a metric: crmblob_build_info{version="..."} 1. */
static void build_info(metrics_t *m)
{
    const char *v = version_string();
    metrics_label l = {"version", &v, 1};
    metrics_family *f = metrics_register(
        m, &(metrics_def){.name = "crmblob_build_info",
                          .help = "The version crmblob was built as (the value is always 1).",
                          .type = METRICS_GAUGE,
                          .labels = &l,
                          .nlabels = 1});
    metrics_set(f, 0, 1);
}

/* serve; argc and argv (after the program's name) are read again by the
 * configuration's reload steps (cli/reconf.h). */
static int cmd_serve(const cli_opts *o, int argc, char **argv)
{
    store_t *st = NULL;
    http_tls *tls = NULL;
    reload_registry reg = {0};
    reconf conf = {.argc = argc, .argv = argv, .start = o, .level = o->log_level};
    auth_t *auth = NULL;
    api_t *api = NULL;
    jobs_runner *runner = NULL;
    codec_t *codec = NULL;
    metrics_t *metrics = NULL;
    int rc = 1, fd[2] = {-1, -1};
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* before any thread starts */
    signal(SIGPIPE, SIG_IGN);
    if (o->nargs != 0)
        return cli_usage_error(o, "unexpected argument '%s'", o->args[0]);
    if (o->print_config) {
        cli_print_config(o, stdout);
        return 0;
    }
    if (listen_first(o, fd) != 0)
        goto out;
    log_set_limit(o->log_limit, LOG_LIMIT_MS);
    log_set_format(o->log_format);
    log_set_level(o->log_level);
    int err = o->log_file != NULL ? log_open_file(o->log_file) : 0;
    if (err != 0) {
        fprintf(stderr, "crmblob: cannot open the log file %s: %s\n", o->log_file, strerror(err));
        goto out;
    }
    if ((rc = open_tls(o, &tls)) != 0)
        goto out;
    rc = 1;
    if (tz_init(NULL) != CB_EOK)
        log_warn("no time-zone data: SO-TimeZone accepts only UTC (install tzdata)");
    if ((metrics = metrics_create()) == NULL || cli_make_codec(o, &codec) != 0)
        goto out;
    build_info(metrics);
    store_options so = {.durable = o->durable,
                        .cache_bytes = (size_t)o->cache_mb << 20,
                        .codec = codec,
                        .spool_dir = o->spool_dir,
                        .pool_size = (int)o->db_pool,
                        .metrics = metrics};
    if (open_waiting(o, &so, &st) != 0)
        goto out;
    auth_config acfg = o->auth;
    acfg.metrics = metrics;
    if (bootstrap_admin(st, o) != 0 || auth_create(st, &acfg, &auth) != CB_EOK ||
        cli_check_codec(o, st, codec) != 0)
        goto out;
    auth_reload_register(auth, &reg);
    char worker[PATH_MAX];
    img_config ic = {.pixel_limit = o->pixel_limit,
                     .cpu_limit_s = o->image_cpu_limit_s,
                     .worker = cli_worker_path(worker, sizeof(worker)),
                     .metrics = metrics};
    if (img_init(&ic) != CB_EOK) {
        log_error("cannot use the image worker %s (set CRMBLOB_IMG_WORKER to its path)", worker);
        goto out;
    }
    api_config ac = {.spool_dir = spool_dir(st),
                     .spool_max = (int64_t)o->spool_mb * 1024 * 1024,
                     .archive_max = (uint64_t)o->archive_max_mb * 1024 * 1024,
                     .cors_origins = o->cors,
                     .ncors = o->ncors,
                     .variant_cache_bytes = (int64_t)o->variant_cache_mb * 1024 * 1024,
                     .modern_formats = o->modern_formats,
                     .metrics = metrics};
    if (ac.spool_dir == NULL || api_create(st, auth, &ac, &api) != CB_EOK)
        goto out;
    conf.api = api;
    if (reconf_register(&conf, o->log_file, &reg) != 0)
        goto out;
    sweeper sw;
    if (!sweeper_start(&sw, st, o->blob_grace_s)) {
        log_error("cannot start the BLOB sweeper");
        goto out;
    }
    jobs_config jc = {.max_running = (int)o->batch_jobs,
                      .keep_ms = (int64_t)o->batch_keep_s * 1000,
                      .put_picture = api_bulk_put, /* the import job's upload path */
                      .put_ctx = api};
    if (getenv("CRMBLOB_TEST_JOBS") != NULL && strcmp(getenv("CRMBLOB_TEST_JOBS"), "1") == 0) {
        log_warn("batch: the test suite's jobs are enabled (CRMBLOB_TEST_JOBS=1)");
        job_enable_test_jobs();
        const char *pb = getenv("CRMBLOB_TEST_PART_BYTES"); /* outputs in small parts */
        jc.part_bytes = pb != NULL ? strtoll(pb, NULL, 10) : 0;
    }
    if (jobs_runner_start(st, &jc, &runner) != CB_EOK) {
        log_error("cannot start the batch-task runner");
        sweeper_stop(&sw);
        goto out;
    }
    rc = serve_until_signal(api, o, fd, tls, &reg, &sigs, metrics);
    jobs_runner_stop(runner); /* its jobs stop, their tasks end Failed */
    sweeper_stop(&sw);
    img_shutdown(); /* no request is in flight: the workers can go */
out:
    reconf_free(&conf);
    api_destroy(api);
    auth_destroy(auth);
    store_close(st); /* it borrows the codec */
    codec_destroy(codec);
    http_tls_free(tls); /* the server has stopped: no connection pins a set */
    for (int i = 0; i < 2; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    metrics_destroy(metrics); /* every layer that counted has ended */
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("crmblob %s\n", version_string());
        return 0;
    }
    cli_opts o;
    char err[CLI_ERR_MAX];
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cli_help(argc < 2 ? stderr : stdout, NULL);
        return argc < 2 ? 2 : 0;
    }
    /* the configuration: argv, the environment, a --config file */
    int rc = cli_load(argc - 1, argv + 1, environ, &o, err);
    if (rc != 0)
        fprintf(stderr, "%s\n", err);
    else if (o.help)
        cli_help(stdout, o.cmd_name);
    else if (sodium_init() < 0)
        rc = 1;
    else {
        /* whatever a command ends with, lines it suppressed are counted in
         * one last summary (the server's flusher has stopped by then too) */
        atexit(log_flush_suppressed);
        rc = o.cmd == CLI_SERVE ? cmd_serve(&o, argc - 1, argv + 1) : cli_run(&o);
    }
    cli_opts_free(&o);
    return rc;
}
