/*
 * cli.h — crmblob's command line: its commands, their options (one table
 * in opts.c: the command line, the CRMBLOB_<OPTION> environment variables,
 * the --config file, --print-config and the help all come from it) and the
 * administration commands (users, tickets, access tokens, app tokens).
 * `serve` lives in main.c. Exit codes: 0 success, 1 the operation failed,
 * 2 bad usage or configuration (an unknown command or option, a bad value,
 * a bad config file line).
 */
#ifndef CB_CLI_H
#define CB_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "auth/auth.h"
#include "core/arena.h"
#include "core/log.h"
#include "core/meter.h"
#include "core/net.h"
#include "store/codec.h"
#include "store/store.h"

#define CLI_MAX_LIST 32
#define CLI_ERR_MAX 1024 /* an error message of cli_load */

typedef enum {
    CLI_SERVE, CLI_INIT, CLI_USER, CLI_TICKET, CLI_TOKEN, CLI_APPTOKEN, CLI_KEYGEN, CLI_REKEY,
    CLI_MIGRATE, CLI_BACKUP, CLI_RESTORE, CLI_CHECK, CLI_EXPORT, CLI_IMPORT, CLI_HELP, CLI_NCMD
} cli_cmd;

/* Where a setting came from, lowest precedence first. */
typedef enum { CLI_FROM_DEFAULT, CLI_FROM_FILE, CLI_FROM_ENV, CLI_FROM_ARGV } cli_source;

/* One value given for an option (an index into opts.c's table). */
typedef struct {
    int opt;
    const char *value;
    cli_source from;
    const char *file; /* CLI_FROM_FILE: the file and its line */
    int line;
} cli_setting;

typedef struct {
    arena_t *arena; /* every string and array below that is not argv's */
    cli_cmd cmd;
    const char *cmd_name;
    bool help;         /* --help: print the command's help */
    bool print_config; /* serve --print-config */
    const char *config; /* --config FILE, or $CRMBLOB_CONFIG */
    const char *admin_password; /* CRMBLOB_ADMIN_PASSWORD (not on the command line) */
    const char *db;
    const char *listen;
    const char *role;
    const char *full_name;
    const char *ttl;   /* --ttl / --expires */
    const char *label;
    const char *key_file;     /* --encryption-key-file */
    const char *new_key_file; /* --new-key-file (rekey) */
    bool compress;            /* --compress */
    bool modern_formats;      /* --modern-formats */
    int64_t pixel_limit;      /* --pixel-limit */
    int image_cpu_limit_s;    /* --image-cpu-limit: CPU seconds per image call; 0 = default */
    unsigned variant_cache_mb; /* --variant-cache-mb */
    unsigned cache_mb;         /* --cache-mb: the store's read cache; 0 = none */
    unsigned spool_mb;         /* --spool-mb: upload spools in flight, together */
    int blob_grace_s;          /* --blob-grace: unlinked BLOBs are kept this long */
    unsigned batch_jobs;       /* --batch-jobs: batch tasks run at once (0: none) */
    int batch_keep_s;          /* --batch-keep: finished tasks and outputs kept this long */
    unsigned archive_max_mb;   /* --archive-max-mb: an archive uploaded for an import task */
    unsigned threads;
    unsigned timeout_s;
    unsigned head_timeout_s;   /* --head-timeout (0: the server's default) */
    unsigned min_body_rate;    /* --min-body-rate, bytes/s; 0 = no minimum */
    unsigned max_conns;        /* --max-conns (0: the server's default) */
    unsigned max_conns_per_ip;
    net_cidr_list trusted_proxies; /* --trusted-proxy, repeatable, commas or spaces */
    unsigned log_limit;            /* --log-limit: diagnostic lines of a kind per 10 s; 0 = all */
    bool log_probes;               /* --log-probes: access lines for GET /health, /ready */
    log_format log_format;         /* --log-format: text or json */
    log_level log_level;           /* --log-level: the least serious lines written */
    const char *log_file;          /* --log-file: lines go there; NULL = stderr */
    const char *metrics_listen;    /* --metrics-listen: the metrics page without credentials */
    const char *spool_dir;         /* --spool-dir: upload spools; NULL = the database's directory */
    const char *tls_cert;          /* --tls-cert: PEM chain; with tls_key, serve speaks https */
    const char *tls_key;           /* --tls-key: its PEM private key */
    unsigned db_pool;              /* --db-pool: database connections; 0 = the backend's default */
    int db_wait_s;                 /* --db-wait: seconds to keep trying to reach the database */
    const char *from, *to;         /* migrate --from, --to: a SQLite file or PostgreSQL conninfo;
                                      backup --to FILE, restore --from FILE */
    bool force;                    /* migrate, restore --force: replace what the target holds;
                                      backup --force: replace FILE */
    bool verify_only;              /* migrate --verify-only: compare, copy nothing */
    bool quick;                    /* check --quick: the database's quick check */
    const char *entity;            /* import --entity: the kind of a flat folder's ids */
    bool durable;
    bool password_stdin;
    bool keep_sessions; /* user passwd/disable: the user's credentials stay valid */
    auth_config auth;  /* serve's authentication settings */
    const char *jwt_keys[CLI_MAX_LIST];
    const char *cors[CLI_MAX_LIST];
    size_t ncors;
    int nargs;
    char **args; /* positional arguments after the command */
    cli_setting *settings; /* every value given, in order (ARGV, ENV, FILE) */
    size_t nsettings, capsettings;
} cli_opts;

/* The configuration of one run: argv (argv[0] is the command), then the
 * environment envp (CRMBLOB_<OPTION>), then the --config file, each for
 * the options the command takes; a source wins over those after it, and
 * all win over the defaults. 0, or 2 with one line in err, ready to print
 * ("crmblob serve: unknown option --lisen (see: crmblob help serve)"). Touches no global state: it may be called again (a reload) for
 * a new cli_opts. Free o with cli_opts_free in either case. */
int cli_load(int argc, char **argv, char *const *envp, cli_opts *o, char err[CLI_ERR_MAX]);
void cli_opts_free(cli_opts *o);
/* cli_load's steps, for the config file's fuzz target: an empty o for the
 * command; the settings of a config file's text (0, or 2 with err naming
 * file:line); the settings resolved into o's fields (0 or 2). */
int cli_opts_init(cli_opts *o, const char *cmd, char err[CLI_ERR_MAX]);
int cli_conf_parse(cli_opts *o, const char *file, const char *text, size_t n,
                   char err[CLI_ERR_MAX]);
int cli_resolve(cli_opts *o, char err[CLI_ERR_MAX]);

/* The help of a command (its synopsis, every option with its meaning and
 * default, the exit codes), or with cmd NULL the list of commands. */
void cli_help(FILE *f, const char *cmd);
/* serve --print-config: every option of serve with its effective value
 * and where it came from, secrets masked, as config file lines. */
void cli_print_config(const cli_opts *o, FILE *f);
/* The settings of serve whose values differ between a and b (the names
 * in skip, NULL-terminated, left out), named in out ("listen, threads",
 * cut at cap): how many. For a reload, which cannot apply them all. */
size_t cli_changed(const cli_opts *a, const cli_opts *b, const char *const *skip, char *out,
                   size_t cap);
/* A command other than serve and help. */
int cli_run(const cli_opts *o);
/* A usage error of the command o runs: one line on stderr, naming the
 * command and what is wrong, and where its help is; returns 2. */
int cli_usage_error(const cli_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* store_open of --db for a command that must not create one: 0, or 1
 * with a line on stderr (a missing database: how to make one). */
int cli_open_existing(const cli_opts *o, store_t **st);
/* crmblob init: makes the database --db names (the only command besides
 * serve that does), or says that it exists. */
int cli_init(const cli_opts *o);
int cli_user(const cli_opts *o);
int cli_ticket(const cli_opts *o);
int cli_token(const cli_opts *o);
int cli_apptoken(const cli_opts *o);
int cli_keygen(const cli_opts *o);
int cli_rekey(const cli_opts *o);
/* The codec serve hands the store (it also reads compressed data when
 * --compress is off); 0, or 1 (logged). */
int cli_make_codec(const cli_opts *o, codec_t **out);
/* Checks c's key against the fingerprint recorded in the store (records
 * it when there is none yet); 0, or 1 (logged). */
int cli_check_codec(const cli_opts *o, store_t *st, const codec_t *c);
int cli_migrate(const cli_opts *o);
int cli_backup(const cli_opts *o);
int cli_restore(const cli_opts *o);
int cli_check(const cli_opts *o);

/* A whole data set copied from `from` into `to` (store_copy_run: one
 * transaction of the target; force replaces what it holds), with a
 * progress display labelled `what`, the summary on stdout and the
 * verification; fd, td describe both for messages. 0 when done and
 * verified, else 1 (said why on stderr). */
struct store_copy_end;
int cli_copy(struct store_copy_end *from, struct store_copy_end *to, bool force, const char *what,
             const char *fd, const char *td);

/* `crmblob export DIR` and `crmblob import DIR|FILE.tar` (export.c, import.c). */
int cli_export(const cli_opts *o);
int cli_import(const cli_opts *o);
/* The file extension of a picture of MIME type mime ("jpg"; "bin" when
 * it is none of the four stored types). */
const char *cli_ext_of_mime(const char *mime);
/* Opens --db with codec for a command that works on an existing data set:
 * a SQLite file that does not exist is refused (1, said why) unless
 * may_create, and then said to be created; it is held as serve holds it
 * (a running rekey refuses it, and it refuses a rekey); the key is checked
 * against the data set's (cli_check_codec). 0 or 1. */
int cli_open_data_set(const cli_opts *o, const codec_t *codec, bool may_create, store_t **st);
/* The image worker program: $CRMBLOB_IMG_WORKER, else crmblob-img beside
 * this program (both are built together); into buf. */
const char *cli_worker_path(char *buf, size_t cap);

/* A long command's progress on a stream (stderr): a bar redrawn in place
 * on a terminal, else a plain line every CLI_PROGRESS_LINE_S seconds; and
 * a last line with the totals at cli_progress_end. */
#define CLI_PROGRESS_LINE_S 10.0
typedef struct {
    FILE *f;
    const char *what; /* "migrate", "rekey"... */
    bool tty, ended;
    double every, last; /* seconds between drawings; the last one */
    meter m;
} cli_progress;
void cli_progress_start(cli_progress *p, FILE *f, const char *what, const char *unit,
                        int64_t total_items, int64_t total_bytes);
void cli_progress_add(cli_progress *p, int64_t items, int64_t bytes);
void cli_progress_end(cli_progress *p);

#endif
