/*
 * sdnotify.h — telling systemd (a Type=notify service) where the server
 * is in its life: ready, reloading, stopping (the sd_notify protocol).
 *
 * Without $NOTIFY_SOCKET (not started by systemd, or by a unit of
 * another type) every call does nothing. A message that cannot be sent
 * is logged once as a warning and never stops the server: systemd then
 * times the start out itself, which says more than we could.
 */
#ifndef CB_SDNOTIFY_H
#define CB_SDNOTIFY_H

/* READY=1 with a STATUS= line: the server listens and its store is open. */
void sdnotify_ready(const char *status);
/* RELOADING=1 with MONOTONIC_USEC= (now): a SIGHUP reload begins; then
 * sdnotify_ready when it is over, whatever its steps gave. */
void sdnotify_reloading(void);
/* STOPPING=1: a SIGTERM or SIGINT drain begins. */
void sdnotify_stopping(void);

#endif
