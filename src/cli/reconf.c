/*
 * reconf.c — the reload steps that read serve's configuration again
 * (reconf.h). Each step calls cli_load itself: the steps stay
 * independent (a log file is opened again even when the file holds a bad
 * line), and reading a configuration is cheap. Main thread only.
 */
#include "cli/reconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

extern char **environ;

static const char *level_name(log_level l)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    return (unsigned)l < 4 ? names[l] : "?";
}

static bool same_path(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* "a, b, c" (at most cap bytes), or "none". */
static void origins_text(const cli_opts *o, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < o->ncors && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? ", " : "", o->cors[i]);
    if (o->ncors == 0)
        snprintf(out, cap, "none");
}

/* The log level and the CORS origins: the CORS list first (the only
 * change that can fail), so a failure leaves both as they were. */
static reload_result config_step(void *ctx, char *msg, size_t cap)
{
    reconf *c = ctx;
    cli_opts o;
    char err[CLI_ERR_MAX], origins[256];
    bool cors_changed = false;
    reload_result rc = RELOAD_FAILED;
    if (cli_load(c->argc, c->argv, environ, &o, err) != 0) {
        snprintf(msg, cap, "%s", err);
        goto out;
    }
    if (api_set_cors(c->api, (const char *const *)o.cors, o.ncors, &cors_changed) != CB_EOK) {
        snprintf(msg, cap, "no memory for the CORS origins");
        goto out;
    }
    bool level_changed = o.log_level != c->level;
    log_set_level(o.log_level);
    char was[32] = "";
    if (level_changed)
        snprintf(was, sizeof(was), " (was %s)", level_name(c->level));
    origins_text(&o, origins, sizeof(origins));
    static const char *const in_force[] = {"log-level", "cors-origin", "log-file", NULL};
    char later[200];
    size_t nlater = cli_changed(c->start, &o, in_force, later, sizeof(later));
    snprintf(msg, cap, "log level %s%s, CORS origins %s%s%s%s", level_name(o.log_level), was,
             origins, cors_changed ? " (changed)" : "", nlater ? "; at the next start: " : "",
             nlater ? later : "");
    c->level = o.log_level;
    rc = level_changed || cors_changed ? RELOAD_CHANGED : RELOAD_UNCHANGED;
out:
    cli_opts_free(&o);
    return rc;
}

/* The log file: a new name opened (the old file kept when it cannot be),
 * the same name opened again, or stderr when none is named any more. */
static reload_result file_step(void *ctx, char *msg, size_t cap)
{
    reconf *c = ctx;
    cli_opts o;
    char err[CLI_ERR_MAX];
    bool loaded = cli_load(c->argc, c->argv, environ, &o, err) == 0;
    const char *want = loaded ? o.log_file : c->log_file;
    reload_result rc = RELOAD_FAILED;
    char *copy = want != NULL ? strdup(want) : NULL;
    if (want != NULL && copy == NULL) {
        snprintf(msg, cap, "no memory");
        goto out;
    }
    int e = same_path(want, c->log_file) ? log_reopen() : log_open_file(want);
    if (e != 0) {
        snprintf(msg, cap, "cannot open %s: %s (still writing to %s)", want, strerror(e),
                 c->log_file != NULL ? c->log_file : "stderr");
        free(copy);
        goto out;
    }
    rc = same_path(want, c->log_file) ? RELOAD_UNCHANGED : RELOAD_CHANGED;
    snprintf(msg, cap, "%s %s%s", rc == RELOAD_CHANGED ? "now writing to" : "opened again:",
             want != NULL ? want : "stderr",
             loaded ? "" : " (the configuration could not be read: its old name kept)");
    free(c->log_file);
    c->log_file = copy;
out:
    cli_opts_free(&o);
    return rc;
}

int reconf_register(reconf *c, const char *log_file, reload_registry *r)
{
    c->log_file = log_file != NULL ? strdup(log_file) : NULL;
    if (log_file != NULL && c->log_file == NULL)
        return -1;
    if (reload_add(r, "configuration", config_step, c) != 0)
        return -1;
    return reload_add(r, "log file", file_step, c);
}

void reconf_free(reconf *c)
{
    free(c->log_file);
    c->log_file = NULL;
}
