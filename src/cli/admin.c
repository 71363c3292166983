/*
 * admin.c — the administration commands: users, tickets, access tokens and
 * partner app tokens, each against the store named by --db.
 *
 * A command prints its result on stdout (a secret alone on its line, so a
 * script can capture it) and problems on stderr. Secrets are shown once:
 * the store keeps only their hashes.
 */
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/io.h"
#include "core/log.h"
#include "core/text.h"
#include "store/store.h"

typedef int (*admin_fn)(store_t *st, auth_t *auth, const cli_opts *o);

int cli_open_existing(const cli_opts *o, store_t **st)
{
    store_options so = {.must_exist = true};
    char where[4096];
    store_err e = store_open(o->db, &so, st);
    if (e == STORE_OK)
        return 0;
    store_describe(o->db, where, sizeof(where));
    if (e == STORE_ABSENT)
        fprintf(stderr,
                "crmblob %s: no database at %s (make one with: crmblob init --db %s; serve "
                "makes one at its first start)\n",
                o->cmd_name, where, where);
    else
        fprintf(stderr, "crmblob %s: cannot open database %s\n", o->cmd_name, where);
    return 1;
}

const char *cli_worker_path(char *buf, size_t cap)
{
    return io_beside_self("CRMBLOB_IMG_WORKER", "crmblob-img", buf, cap);
}

int cli_init(const cli_opts *o)
{
    store_options so = {.must_exist = true};
    store_t *st = NULL;
    char where[4096];
    if (o->nargs != 0)
        return cli_usage_error(o, "unexpected argument '%s'", o->args[0]);
    log_set_level(LOG_WARN);
    store_describe(o->db, where, sizeof(where));
    store_err e = store_open(o->db, &so, &st);
    bool made = e == STORE_ABSENT;
    if (made)
        e = store_open(o->db, NULL, &st);
    store_close(st);
    if (e != STORE_OK) {
        fprintf(stderr, "crmblob init: cannot %s database %s\n", made ? "make" : "open", where);
        return 1;
    }
    printf(made ? "database %s made\n" : "database %s exists: left as it is (its schema current)\n",
           where);
    return 0;
}

/* Opens the store (and an auth_t on it) quietly, runs fn, closes. */
static int with_store(const cli_opts *o, admin_fn fn)
{
    store_t *st = NULL;
    auth_t *auth = NULL;
    auth_config ac = {0};
    int rc = 1;
    log_set_level(LOG_WARN); /* a command prints its result, not the store's chatter */
    if (cli_open_existing(o, &st) != 0)
        goto out;
    if (auth_create(st, &ac, &auth) != CB_EOK)
        goto out;
    rc = fn(st, auth, o);
out:
    auth_destroy(auth);
    store_close(st);
    return rc;
}

/* One line from stdin, without its line ending; an empty one is refused. */
static int read_password(const cli_opts *o, char *out, size_t cap)
{
    if (fgets(out, (int)cap, stdin) == NULL)
        out[0] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    if (out[0] == '\0') {
        fprintf(stderr, "crmblob %s: the password is empty (give it on stdin, one line)\n",
                o->cmd_name);
        return 1;
    }
    return 0;
}

static int hashed_password(const cli_opts *o, char hash[AUTH_HASH_MAX])
{
    char pw[1024];
    if (!o->password_stdin)
        return cli_usage_error(o, "give the password on stdin with --password-stdin");
    int rc = read_password(o, pw, sizeof(pw));
    if (rc == 0 && auth_hash_password(pw, hash) != CB_EOK)
        rc = 1;
    sodium_memzero(pw, sizeof(pw));
    return rc;
}

/* The exit status of an auth call's outcome e about `what` `name`; a
 * failure is told on stderr. */
static int report(cb_err e, const char *what, const char *name)
{
    if (e == CB_ENOTFOUND)
        fprintf(stderr, "crmblob: no %s %s\n", what, name);
    else if (e == CB_ECONFLICT)
        fprintf(stderr, "crmblob: %s %s already exists\n", what, name);
    else if (e != CB_EOK)
        fprintf(stderr, "crmblob: %s %s: %s\n", what, name, err_name(e));
    return e == CB_EOK ? 0 : 1;
}

/* As report, for a store call's outcome. */
static int report_store(store_err e, const char *what, const char *name)
{
    if (e == STORE_ABSENT)
        fprintf(stderr, "crmblob: no %s %s\n", what, name);
    else if (e == STORE_CONFLICT)
        fprintf(stderr, "crmblob: %s %s already exists\n", what, name);
    else if (e != STORE_OK)
        fprintf(stderr, "crmblob: %s %s: %s\n", what, name, store_err_name(e));
    return e == STORE_OK ? 0 : 1;
}

/* ---- users ---- */

static int user_add(store_t *st, auth_t *auth, const cli_opts *o)
{
    (void)auth;
    model_user u = {.name = o->args[1], .full_name = o->full_name ? o->full_name : ""};
    char hash[AUTH_HASH_MAX];
    if (o->role == NULL || !model_role_parse(o->role, &u.role))
        return cli_usage_error(o, "user add needs --role admin|editor|viewer");
    int rc = hashed_password(o, hash);
    if (rc != 0)
        return rc;
    u.pw_hash = hash;
    rc = report_store(store_user_add(st, &u), "user", u.name);
    if (rc == 0)
        printf("user %s added (id %d, role %s)\n", u.name, u.id, model_role_name(u.role));
    return rc;
}

static int user_list(store_t *st, auth_t *auth, const cli_opts *o)
{
    (void)auth;
    (void)o;
    arena_t *a = arena_create();
    model_user *users;
    size_t n;
    store_err e = store_user_list(st, a, &users, &n);
    if (e == STORE_OK) {
        printf("id\tname\trole\tstatus\tfull_name\n");
        for (size_t i = 0; i < n; i++)
            printf("%d\t%s\t%s\t%s\t%s\n", users[i].id, users[i].name,
                   model_role_name(users[i].role), users[i].disabled ? "disabled" : "active",
                   users[i].full_name);
    }
    arena_destroy(a);
    return e == STORE_OK ? 0 : 1;
}

/* After a password change or a disable: the user's tickets, access tokens
 * and sessions end (SPEC §5), unless --keep-sessions. They are ended after
 * the change, so that none issued against the old state survives (a login
 * in progress checks the user again once its credentials are stored). */
static int end_credentials(store_t *st, const cli_opts *o)
{
    if (o->keep_sessions)
        return 0;
    store_err e = store_cred_revoke_user(st, o->args[1]);
    if (e != STORE_OK) {
        fprintf(stderr,
                "crmblob: user %s: changed, but the sessions, tickets and tokens could "
                "not be ended: %s\n",
                o->args[1], store_err_name(e));
        return 1;
    }
    printf("user %s: sessions, tickets and tokens ended\n", o->args[1]);
    return 0;
}

static int user_passwd(store_t *st, auth_t *auth, const cli_opts *o)
{
    (void)auth;
    char hash[AUTH_HASH_MAX];
    int rc = hashed_password(o, hash);
    if (rc == 0)
        rc = report_store(store_user_set_password(st, o->args[1], hash), "user", o->args[1]);
    return rc != 0 ? rc : end_credentials(st, o);
}

static int user_disable(store_t *st, auth_t *auth, const cli_opts *o)
{
    (void)auth;
    bool disable = strcmp(o->args[0], "disable") == 0;
    int rc = report_store(store_user_set_disabled(st, o->args[1], disable), "user", o->args[1]);
    if (rc == 0)
        printf("user %s %s\n", o->args[1], disable ? "disabled" : "enabled");
    return rc != 0 || !disable ? rc : end_credentials(st, o);
}

/* ---- tickets and access tokens ---- */

static int parse_ttl(const cli_opts *o, int64_t dflt, int64_t *secs)
{
    *secs = dflt;
    if (o->ttl != NULL && !text_parse_duration(o->ttl, secs))
        return cli_usage_error(o, "bad value '%s' for --ttl: expected a duration (30s, 15m, 6h, "
                                  "30d)",
                               o->ttl);
    return 0;
}

static void print_secret(const char *secret, int64_t expires_ms)
{
    char when[TEXT_DATE_MAX];
    text_format_date(expires_ms, when);
    printf("%s\n", secret);
    fprintf(stderr, "expires %s\n", when);
}

static int ticket_issue(store_t *st, auth_t *auth, const cli_opts *o)
{
    (void)st;
    arena_t *a = arena_create();
    const char *ticket;
    int64_t ttl, expires;
    int rc = parse_ttl(o, 6 * 3600, &ttl);
    if (rc == 0) {
        rc = report(auth_ticket_issue(auth, a, o->args[1], ttl, &ticket, &expires), "user",
                    o->args[1]);
        if (rc == 0)
            print_secret(ticket, expires);
    }
    arena_destroy(a);
    return rc;
}

static int token_issue(store_t *st, auth_t *auth, const cli_opts *o)
{
    (void)st;
    arena_t *a = arena_create();
    const char *token;
    int64_t ttl, expires;
    int rc = parse_ttl(o, 30 * 86400, &ttl);
    if (rc == 0) {
        rc = report(auth_token_issue(auth, a, o->args[1], ttl, o->label, &token, &expires),
                    "user", o->args[1]);
        if (rc == 0)
            print_secret(token, expires);
    }
    arena_destroy(a);
    return rc;
}

static int secret_revoke(store_t *st, auth_t *auth, const cli_opts *o)
{
    (void)st;
    int rc = report(auth_revoke_secret(auth, o->args[1]), "credential", o->args[1]);
    if (rc == 0)
        printf("revoked\n");
    return rc;
}

static int token_list(store_t *st, auth_t *auth, const cli_opts *o)
{
    (void)auth;
    (void)o;
    arena_t *a = arena_create();
    store_cred *c;
    size_t n;
    char created[TEXT_DATE_MAX], expires[TEXT_DATE_MAX];
    store_err e = store_cred_list(st, a, STORE_CRED_TOKEN, text_now_ms(), &c, &n);
    if (e == STORE_OK) {
        printf("id\tuser\tlabel\tcreated\texpires\n");
        for (size_t i = 0; i < n; i++) {
            text_format_date(c[i].created_ms, created);
            text_format_date(c[i].expires_ms, expires);
            printf("%lld\t%s\t%s\t%s\t%s\n", (long long)c[i].id, c[i].user_name, c[i].label,
                   created, expires);
        }
    }
    arena_destroy(a);
    return e == STORE_OK ? 0 : 1;
}

/* ---- partner app tokens ---- */

static int app_add(store_t *st, auth_t *auth, const cli_opts *o)
{
    (void)st;
    arena_t *a = arena_create();
    const char *token;
    int rc = report(auth_apptoken_add(auth, a, o->args[1], &token), "app", o->args[1]);
    if (rc == 0)
        printf("%s\n", token);
    arena_destroy(a);
    return rc;
}

static int app_list(store_t *st, auth_t *auth, const cli_opts *o)
{
    (void)auth;
    (void)o;
    arena_t *a = arena_create();
    store_app *apps;
    size_t n;
    char created[TEXT_DATE_MAX];
    store_err e = store_app_list(st, a, &apps, &n);
    if (e == STORE_OK) {
        printf("id\tname\tcreated\tstatus\n");
        for (size_t i = 0; i < n; i++) {
            text_format_date(apps[i].created_ms, created);
            printf("%lld\t%s\t%s\t%s\n", (long long)apps[i].id, apps[i].name, created,
                   apps[i].revoked ? "revoked" : "active");
        }
    }
    arena_destroy(a);
    return e == STORE_OK ? 0 : 1;
}

static int app_revoke(store_t *st, auth_t *auth, const cli_opts *o)
{
    (void)auth;
    int rc = report_store(store_app_revoke(st, o->args[1]), "app", o->args[1]);
    if (rc == 0)
        printf("app %s revoked\n", o->args[1]);
    return rc;
}

/* ---- dispatch ---- */

typedef struct {
    const char *sub;
    const char *arg; /* its one positional argument ("NAME"), or NULL for none */
    admin_fn fn;
} subcommand;

/* The subcommand o->args[0] of table, with its argument; else a usage
 * error naming what is wrong. */
static int dispatch(const cli_opts *o, const subcommand *table, size_t n)
{
    char subs[256] = "";
    for (size_t i = 0; i < n; i++) {
        const subcommand *t = &table[i];
        if (o->nargs > 0 && strcmp(o->args[0], t->sub) == 0) {
            int want = t->arg != NULL ? 2 : 1;
            if (o->nargs == want)
                return with_store(o, t->fn);
            if (o->nargs < want)
                return cli_usage_error(o, "%s needs %s", t->sub, t->arg);
            return cli_usage_error(o, "%s: unexpected argument '%s'", t->sub, o->args[want]);
        }
        snprintf(subs + strlen(subs), sizeof(subs) - strlen(subs), "%s%s", i ? ", " : "", t->sub);
    }
    if (o->nargs == 0)
        return cli_usage_error(o, "which one? (%s)", subs);
    return cli_usage_error(o, "unknown subcommand '%s' (%s)", o->args[0], subs);
}

int cli_user(const cli_opts *o)
{
    static const subcommand t[] = {{"add", "NAME", user_add},
                                   {"list", NULL, user_list},
                                   {"passwd", "NAME", user_passwd},
                                   {"disable", "NAME", user_disable},
                                   {"enable", "NAME", user_disable}};
    return dispatch(o, t, sizeof(t) / sizeof(t[0]));
}

int cli_ticket(const cli_opts *o)
{
    static const subcommand t[] = {{"issue", "USER", ticket_issue},
                                   {"revoke", "TICKET", secret_revoke}};
    return dispatch(o, t, sizeof(t) / sizeof(t[0]));
}

int cli_token(const cli_opts *o)
{
    static const subcommand t[] = {{"issue", "USER", token_issue},
                                   {"list", NULL, token_list},
                                   {"revoke", "ID|TOKEN", secret_revoke}};
    return dispatch(o, t, sizeof(t) / sizeof(t[0]));
}

int cli_apptoken(const cli_opts *o)
{
    static const subcommand t[] = {
        {"add", "NAME", app_add}, {"list", NULL, app_list}, {"revoke", "NAME", app_revoke}};
    return dispatch(o, t, sizeof(t) / sizeof(t[0]));
}
