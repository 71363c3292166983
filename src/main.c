/*
 * main.c — the crmblob command line: `serve` and the user administration
 * commands, all against the same --db.
 *
 * Exit codes: 0 success, 1 the operation failed, 2 bad usage.
 */
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "auth/auth.h"
#include "core/log.h"
#include "core/text.h"
#include "core/tz.h"
#include "http/http.h"
#include "store/store.h"

#define DEFAULT_DB "./data/crmblob.db"
#define DEFAULT_LISTEN "127.0.0.1:8080"
#define SHUTDOWN_GRACE_S 30

typedef struct {
    const char *db;
    const char *listen;
    const char *role;
    const char *full_name;
    unsigned threads;
    bool durable;
    bool password_stdin;
    int nargs;
    char **args; /* positional arguments after the options */
} cli_opts;

static void usage(FILE *f)
{
    fputs("usage:\n"
          "  crmblob serve [--listen HOST:PORT] [--db PATH] [--threads N] [--durable]\n"
          "  crmblob user add NAME --role admin|editor|viewer [--full-name TEXT] "
          "--password-stdin [--db PATH]\n"
          "  crmblob user list [--db PATH]\n"
          "  crmblob user passwd NAME --password-stdin [--db PATH]\n"
          "  crmblob user disable|enable NAME [--db PATH]\n"
          "defaults: --listen " DEFAULT_LISTEN " --db " DEFAULT_DB "\n",
          f);
}

static int parse_opts(int argc, char **argv, cli_opts *o)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},       {"listen", required_argument, NULL, 'l'},
        {"role", required_argument, NULL, 'r'},     {"full-name", required_argument, NULL, 'f'},
        {"threads", required_argument, NULL, 't'},  {"durable", no_argument, NULL, 'D'},
        {"password-stdin", no_argument, NULL, 'p'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int32_t n;
    int c;
    *o = (cli_opts){.db = DEFAULT_DB, .listen = DEFAULT_LISTEN};
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': o->db = optarg; break;
        case 'l': o->listen = optarg; break;
        case 'r': o->role = optarg; break;
        case 'f': o->full_name = optarg; break;
        case 'D': o->durable = true; break;
        case 'p': o->password_stdin = true; break;
        case 't':
            if (!text_parse_pos_i32(optarg, strlen(optarg), &n) || n > 256)
                return 2;
            o->threads = (unsigned)n;
            break;
        default: return 2;
        }
    }
    o->nargs = argc - optind;
    o->args = argv + optind;
    return 0;
}

static int open_store(const cli_opts *o, store_t **st)
{
    store_options so = {.durable = o->durable};
    if (store_open(o->db, &so, st) != CB_EOK) {
        fprintf(stderr, "crmblob: cannot open database %s\n", o->db);
        return 1;
    }
    return 0;
}

/* One line from stdin, without its line ending. */
static int read_password(char *out, size_t cap)
{
    if (fgets(out, (int)cap, stdin) == NULL)
        return 1;
    out[strcspn(out, "\r\n")] = '\0';
    if (out[0] == '\0') {
        fputs("crmblob: the password is empty\n", stderr);
        return 1;
    }
    return 0;
}

static int user_add(store_t *st, const cli_opts *o)
{
    model_user u = {.name = o->args[1], .full_name = o->full_name ? o->full_name : ""};
    char pw[1024], hash[AUTH_HASH_MAX];
    if (o->role == NULL || !model_role_parse(o->role, &u.role) || !o->password_stdin) {
        fputs("crmblob: user add needs --role admin|editor|viewer and --password-stdin\n", stderr);
        return 2;
    }
    if (read_password(pw, sizeof(pw)) != 0 || auth_hash_password(pw, hash) != CB_EOK)
        return 1;
    sodium_memzero(pw, sizeof(pw));
    u.pw_hash = hash;
    cb_err e = store_user_add(st, &u);
    if (e == CB_ECONFLICT)
        fprintf(stderr, "crmblob: user %s already exists\n", u.name);
    else if (e == CB_EOK)
        printf("user %s added (id %d, role %s)\n", u.name, u.id, model_role_name(u.role));
    return e == CB_EOK ? 0 : 1;
}

static int user_list(store_t *st)
{
    arena_t *a = arena_create();
    model_user *users;
    size_t n;
    cb_err e = store_user_list(st, a, &users, &n);
    if (e == CB_EOK) {
        printf("id\tname\trole\tstatus\tfull_name\n");
        for (size_t i = 0; i < n; i++)
            printf("%d\t%s\t%s\t%s\t%s\n", users[i].id, users[i].name,
                   model_role_name(users[i].role), users[i].disabled ? "disabled" : "active",
                   users[i].full_name);
    }
    arena_destroy(a);
    return e == CB_EOK ? 0 : 1;
}

static int user_passwd(store_t *st, const cli_opts *o)
{
    char pw[1024], hash[AUTH_HASH_MAX];
    if (!o->password_stdin) {
        fputs("crmblob: user passwd needs --password-stdin\n", stderr);
        return 2;
    }
    if (read_password(pw, sizeof(pw)) != 0 || auth_hash_password(pw, hash) != CB_EOK)
        return 1;
    sodium_memzero(pw, sizeof(pw));
    cb_err e = store_user_set_password(st, o->args[1], hash);
    if (e == CB_ENOTFOUND)
        fprintf(stderr, "crmblob: no user %s\n", o->args[1]);
    return e == CB_EOK ? 0 : 1;
}

static int user_set_disabled(store_t *st, const cli_opts *o, bool disabled)
{
    cb_err e = store_user_set_disabled(st, o->args[1], disabled);
    if (e == CB_ENOTFOUND)
        fprintf(stderr, "crmblob: no user %s\n", o->args[1]);
    else if (e == CB_EOK)
        printf("user %s %s\n", o->args[1], disabled ? "disabled" : "enabled");
    return e == CB_EOK ? 0 : 1;
}

static int cmd_user(const cli_opts *o)
{
    const char *sub = o->nargs > 0 ? o->args[0] : "";
    bool needs_name = strcmp(sub, "list") != 0;
    if (o->nargs != (needs_name ? 2 : 1)) {
        usage(stderr);
        return 2;
    }
    store_t *st = NULL;
    log_set_level(LOG_WARN); /* a command prints its result, not the store's chatter */
    int rc = open_store(o, &st);
    if (rc != 0)
        return rc;
    if (strcmp(sub, "add") == 0)
        rc = user_add(st, o);
    else if (strcmp(sub, "list") == 0)
        rc = user_list(st);
    else if (strcmp(sub, "passwd") == 0)
        rc = user_passwd(st, o);
    else if (strcmp(sub, "disable") == 0 || strcmp(sub, "enable") == 0)
        rc = user_set_disabled(st, o, sub[0] == 'd');
    else {
        usage(stderr);
        rc = 2;
    }
    store_close(st);
    return rc;
}

/* With no user at all, creates "admin" so that a new server can be used. */
static int bootstrap_admin(store_t *st)
{
    int64_t count;
    if (store_user_count(st, &count) != CB_EOK)
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
        sodium_bin2base64(pw, sizeof(pw), rnd, sizeof(rnd), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    }
    model_user u = {.name = "admin", .full_name = "Administrator", .role = MODEL_ROLE_ADMIN};
    if (auth_hash_password(pw, hash) != CB_EOK)
        return 1;
    u.pw_hash = hash;
    if (store_user_add(st, &u) != CB_EOK)
        return 1;
    if (env != NULL && *env)
        log_info("created the first user 'admin' (role admin) with the password from "
                 "CRMBLOB_ADMIN_PASSWORD");
    else
        log_info("created the first user 'admin' (role admin) with password: %s "
                 "(change it with: crmblob user passwd admin --password-stdin)", pw);
    sodium_memzero(pw, sizeof(pw));
    return 0;
}

static int serve_until_signal(api_t *api, const cli_opts *o, const sigset_t *sigs)
{
    http_server *srv = NULL;
    http_config hc = {.listen = o->listen, .threads = o->threads};
    if (http_start(api, &hc, &srv) != CB_EOK)
        return 1;
    log_info("crmblob listening on http://%s (database %s)", o->listen, o->db);
    int sig = 0;
    sigwait(sigs, &sig);
    log_info("received %s: finishing requests in flight", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    http_stop(srv, SHUTDOWN_GRACE_S);
    log_info("stopped");
    return 0;
}

static int cmd_serve(const cli_opts *o)
{
    store_t *st = NULL;
    auth_t *auth = NULL;
    api_t *api = NULL;
    int rc = 1;
    char dbcopy[4096];
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* before any thread starts */
    signal(SIGPIPE, SIG_IGN);
    if (o->nargs != 0) {
        usage(stderr);
        return 2;
    }
    snprintf(dbcopy, sizeof(dbcopy), "%s", o->db);
    if (tz_init(NULL) != CB_EOK)
        log_warn("no time-zone data: SO-TimeZone accepts only UTC (install tzdata)");
    if (open_store(o, &st) != 0 || bootstrap_admin(st) != 0 || auth_create(st, &auth) != CB_EOK)
        goto out;
    api_config ac = {.spool_dir = dirname(dbcopy)};
    if (api_create(st, auth, &ac, &api) != CB_EOK)
        goto out;
    rc = serve_until_signal(api, o, &sigs);
out:
    api_destroy(api);
    auth_destroy(auth);
    store_close(st);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    cli_opts o;
    if (parse_opts(argc - 1, argv + 1, &o) != 0) {
        usage(stderr);
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    if (strcmp(argv[1], "serve") == 0)
        return cmd_serve(&o);
    if (strcmp(argv[1], "user") == 0)
        return cmd_user(&o);
    usage(stderr);
    return 2;
}
