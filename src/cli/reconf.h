/*
 * reconf.h — serve's configuration read again on SIGHUP (cli_load: the
 * same command line, the environment, the --config file as it is now),
 * and what of it can change while the server runs put in force, as two
 * reload steps (core/reload.h):
 *
 *   "configuration": the log level and the CORS origins;
 *   "log file":      the --log-file opened again by its name (after
 *                    logrotate moved it), or the new one it names.
 *
 * A configuration that cannot be read (a bad line, a bad value) keeps
 * everything as it was, and the step's line says why; the log file is
 * then still opened again by its old name. A setting given on the command
 * line or in the environment cannot change (they win over the file, and
 * are the same as at start). Other settings changed in the file take
 * effect at the next start: the configuration step's line names them.
 */
#ifndef CB_RECONF_H
#define CB_RECONF_H

#include "api/api.h"
#include "cli/cli.h"
#include "core/log.h"
#include "core/reload.h"

typedef struct {
    int argc; /* serve's arguments, after the program's name */
    char **argv;
    const cli_opts *start; /* what serve started with (outlives the registry) */
    api_t *api;
    log_level level; /* in force */
    char *log_file;  /* in force (owned), NULL: stderr */
} reconf;

/* Registers both steps for c (which must outlive the registry's use),
 * whose level and log_file are what serve started with. -1 on no memory
 * or a full registry. */
int reconf_register(reconf *c, const char *log_file, reload_registry *r);
void reconf_free(reconf *c);

#endif
