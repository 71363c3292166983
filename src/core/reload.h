/*
 * reload.h — what SIGHUP reloads: a registry of reload steps, each
 * registered by the layer that owns what it reloads (the HTTP server its
 * TLS certificates; the log, the authentication settings... theirs),
 * with that layer's handle. The server's main thread runs them all, in
 * the order registered, on every SIGHUP.
 *
 * Contract of a step: it either puts the new configuration in force
 * whole or leaves the old one untouched, and says in `msg` what it did
 * or why it could not. A failed step never stops the server nor the
 * steps after it. reload_run writes one log line per step.
 *
 * Invariant: steps are added and run from one thread (the main thread:
 * registration at start, runs from its signal loop), so the registry
 * needs no lock; a step that changes what other threads read makes that
 * change safe itself.
 */
#ifndef CB_RELOAD_H
#define CB_RELOAD_H

#include <stddef.h>

#define RELOAD_MAX_STEPS 16
#define RELOAD_MSG_MAX 512

typedef enum {
    RELOAD_CHANGED,   /* the new configuration is in force */
    RELOAD_UNCHANGED, /* read again: nothing had changed */
    RELOAD_FAILED,    /* the old configuration stays; msg says why */
} reload_result;

/* One step: reloads what ctx owns; msg (cap bytes, "" on entry) says what
 * happened, e.g. "certificate CN=example.org, valid until ...". */
typedef reload_result (*reload_fn)(void *ctx, char *msg, size_t cap);

typedef struct {
    const char *name; /* what the step reloads, for the log: "TLS certificate" */
    reload_fn fn;
    void *ctx;
} reload_step;

typedef struct {
    reload_step steps[RELOAD_MAX_STEPS];
    size_t n;
} reload_registry;

/* Adds a step (name and ctx must outlive the registry's use); -1 when the
 * registry is full (a programming error: RELOAD_MAX_STEPS is too small). */
int reload_add(reload_registry *r, const char *name, reload_fn fn, void *ctx);
/* Runs every step once, logging one line each: the number that failed. */
int reload_run(reload_registry *r);

#endif
