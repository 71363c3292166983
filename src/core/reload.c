/*
 * reload.c — the registry of reload steps (reload.h): run in order, one
 * log line each, a failure logged as a warning with the step's reason.
 */
#include "core/reload.h"

#include "core/log.h"

int reload_add(reload_registry *r, const char *name, reload_fn fn, void *ctx)
{
    if (r->n >= RELOAD_MAX_STEPS) {
        log_error("reload: no room for the step '%s'", name);
        return -1;
    }
    r->steps[r->n++] = (reload_step){.name = name, .fn = fn, .ctx = ctx};
    return 0;
}

static int run_step(const reload_step *s)
{
    char msg[RELOAD_MSG_MAX] = "";
    reload_result rc = s->fn(s->ctx, msg, sizeof(msg));
    const char *sep = msg[0] != '\0' ? ": " : "";
    if (rc == RELOAD_FAILED) {
        log_warn("reload: %s not reloaded, the old configuration stays in force%s%s", s->name, sep, msg);
        return 1;
    }
    log_info("reload: %s %s%s%s", s->name, rc == RELOAD_CHANGED ? "reloaded" : "unchanged",
             sep, msg);
    return 0;
}

int reload_run(reload_registry *r)
{
    int failed = 0;
    log_info("reload: SIGHUP received, %zu step(s)", r->n);
    for (size_t i = 0; i < r->n; i++)
        failed += run_step(&r->steps[i]);
    log_info("reload: done, %d step(s) failed", failed);
    return failed;
}
