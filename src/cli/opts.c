/*
 * opts.c — crmblob's commands and options: one table (OPTS) from which the
 * command line, the CRMBLOB_<OPTION> environment variables, the --config
 * file, --print-config and the help all come. Adding an option is one entry
 * there (and the cli_opts field it fills).
 *
 * Invariants: a value is parsed strictly by its option's kind (no atoi): a
 * malformed one is a usage error naming the option and its source, never a
 * silent default. The options of `serve` are its configuration: they come
 * from the command line, the environment and the config file, in that
 * precedence, over the default (a default given as a value is applied by the
 * same parser, so the help cannot disagree with it). A source that gives an
 * option replaces what lower ones gave, a repeatable option's list too.
 * Every other option (a user's role, a migration's target) is for the
 * command line only. Nothing here writes global state: cli_load can run
 * again for a reload.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/net.h"
#include "core/text.h"

#define CONF_MAX_BYTES (1 << 20) /* a config file larger than this is a mistake */
#define MAX_SETTINGS 4096        /* values of one run, all sources */
#define ENV_PREFIX "CRMBLOB_"

/* ---- commands ---- */

#define C(x) (1u << (x))
#define C_SERVE C(CLI_SERVE)
#define C_ADMIN (C(CLI_USER) | C(CLI_TICKET) | C(CLI_TOKEN) | C(CLI_APPTOKEN))
#define C_DB (C_SERVE | C(CLI_INIT) | C_ADMIN | C(CLI_REKEY) | C(CLI_BACKUP) | C(CLI_RESTORE) | \
              C(CLI_CHECK) | C(CLI_EXPORT) | C(CLI_IMPORT)) /* the commands that open --db */
#define C_ALL ((1u << CLI_NCMD) - 1)

typedef struct {
    const char *name;
    const char *synopsis; /* after "usage: " (lines after the first indented) */
    const char *about;
} command;

static const command CMDS[CLI_NCMD] = {
    [CLI_SERVE] = {"serve", "crmblob serve [OPTIONS]",
                   "Serves the API. It creates the database (SQLite: the file and its\n"
                   "directory) at its first start, and a first user 'admin' when there is none\n"
                   "(its password from admin-password, else made at random and shown on a\n"
                   "terminal or written to crmblob-admin-password where uploads are spooled).\n"
                   "It stops on SIGTERM or SIGINT, letting requests in flight finish (exit 0).\n"
                   "SIGHUP reloads what can be reloaded (the TLS certificate and key, the\n"
                   "--jwt-key files, the log level and the CORS origins of the config file)\n"
                   "and opens the log file again; an item that fails keeps its old\n"
                   "configuration and the log says why."},
    [CLI_INIT] = {"init", "crmblob init [--db PATH|URL]",
                  "Makes a new, empty database (SQLite: the file and its directory, the owner's\n"
                  "only; PostgreSQL: the schema, in a database that must exist), so that users\n"
                  "and tokens can be added before the first start of serve. The other commands\n"
                  "never make one. A database that exists is left as it is (exit 0)."},
    [CLI_USER] = {"user",
                  "crmblob user add NAME --role admin|editor|viewer [--full-name TEXT]\n"
                  "                        --password-stdin\n"
                  "       crmblob user list\n"
                  "       crmblob user passwd NAME --password-stdin [--keep-sessions]\n"
                  "       crmblob user disable NAME [--keep-sessions] | enable NAME",
                  "Manages users. passwd and disable end the user's sessions, tickets and\n"
                  "tokens unless --keep-sessions. The password is read from stdin (one line);\n"
                  "an empty one is refused."},
    [CLI_TICKET] = {"ticket", "crmblob ticket issue USER [--ttl 6h] | revoke TICKET",
                    "Issues a ticket (printed on stdout, its expiry on stderr) or revokes one."},
    [CLI_TOKEN] = {"token",
                   "crmblob token issue USER [--expires 30d] [--label TEXT]\n"
                   "       crmblob token list | revoke ID|TOKEN",
                   "Issues, lists or revokes access tokens (Bearer 8A:...)."},
    [CLI_APPTOKEN] = {"apptoken", "crmblob apptoken add NAME | list | revoke NAME",
                      "Adds, lists or revokes partner app tokens (SO-AppToken)."},
    [CLI_KEYGEN] = {"keygen", "crmblob keygen FILE",
                    "Writes a new encryption key for --encryption-key-file (it refuses to\n"
                    "replace a file)."},
    [CLI_REKEY] = {"rekey",
                   "crmblob rekey [--encryption-key-file OLD] [--new-key-file NEW]\n"
                   "                     [--compress]",
                   "Rewrites every picture with the new key (none: not encrypted), with no\n"
                   "server running on the database. Interrupted, run it again."},
    [CLI_MIGRATE] = {"migrate", "crmblob migrate --from WHERE --to WHERE [--force] | --verify-only",
                     "Copies a whole data set between a SQLite file and PostgreSQL (either way)\n"
                     "in one transaction of the target, then compares both sides (every row,\n"
                     "the SHA-256 of every picture). Variants are a cache and not copied."},
    [CLI_BACKUP] = {"backup", "crmblob backup --to FILE [--force]",
                    "Writes a consistent copy of --db (one snapshot; servers go on) as a new\n"
                    "SQLite file (0600). From SQLite: the online backup API's page copy; from\n"
                    "PostgreSQL: migrate's row copy, verified. The encryption key file is NOT in\n"
                    "the backup: keep it apart."},
    [CLI_RESTORE] = {"restore", "crmblob restore --from FILE [--force]",
                     "Copies a backup into --db, verified; refused while a server uses it, and\n"
                     "into a data set holding anything unless --force."},
    [CLI_CHECK] = {"check",
                   "crmblob check [--quick] [--encryption-key-file FILE] [--pixel-limit N]\n"
                   "                     [--image-cpu-limit 20s]",
                   "Reads the whole data set: the database's own check, every link, every\n"
                   "picture read back, decrypted and decoded, and every BLOB record's BlobSize,\n"
                   "OriginalSize, MimeType, IsZipped and IsEncrypted against its bytes (give\n"
                   "serve's --pixel-limit and --image-cpu-limit when set). Exit 0 when clean, 1\n"
                   "with the problems on stdout, one a line."},
    [CLI_EXPORT] = {"export", "crmblob export DIR [--encryption-key-file FILE]",
                    "Writes every picture, as uploaded (decrypted, unzipped), to\n"
                    "DIR/{entity}/{id}.{ext} (a product's thumbnail record\n"
                    "product/{id}.thumbnail.{ext}, a record no entity links blob/{BlobId}.{ext})\n"
                    "and every BLOB record, with every field, its entity, file and SHA-256, as a\n"
                    "line of DIR/manifest.jsonl; from one read snapshot, while serve runs. DIR\n"
                    "must be empty or missing. Exit 1 when a picture could not be read (listed)."},
    [CLI_IMPORT] = {"import",
                    "crmblob import DIR|FILE.tar [--entity person|contact|product|project]\n"
                    "                      [--threads N]\n"
                    "                      [--encryption-key-file FILE] [--compress] [--pixel-limit N]",
                    "Stores each picture of DIR, or of an export's tar archive FILE (read front\n"
                    "to back, unpacked to the spool directory), as PUT Image would (same size,\n"
                    "pixel and work limits, same image worker): an export (manifest.jsonl: the\n"
                    "records' Description, ExtraInfo and ConceptualType restored; BlobIds, dates\n"
                    "and users are the new data set's; library pictures go back into the project\n"
                    "image library), its layout without manifest, or with --entity KIND a flat\n"
                    "folder of {id}.{ext} files. A missing entity is created with that id and\n"
                    "empty fields. A picture the entity already has (same size and SHA-256) is\n"
                    "skipped, so a rerun finishes the job. A missing SQLite database is\n"
                    "created (said on stderr). Problems are listed; exit 1 if any."},
    [CLI_HELP] = {"help", "crmblob help [COMMAND]", "Shows the commands, or a command's options."},
};

/* ---- the option table ---- */

typedef enum {
    K_FLAG,    /* bool; true on the command line; yes/no elsewhere */
    K_TEXT,    /* const char *, not empty */
    K_ANYTEXT, /* const char *, may be empty */
    K_ADDR,    /* const char *, host:port (net_parse_listen) */
    K_CHOICE,  /* const char *, one of `choices` ("text|json") */
    K_COUNT,   /* unsigned, a whole number in [min, max] */
    K_SECONDS, /* int, a duration (30s, 15m, 6h, 7d; a number: seconds) in [min, max] */
    K_FN,      /* set(o, value); `expect` says what it takes */
} kind;

enum {
    OF_SECRET = 1 << 0,  /* shown masked */
    OF_DSN = 1 << 1,     /* a database URL or conninfo: shown without its password */
    OF_REPEAT = 1 << 2,  /* a list: repeatable; in the environment separated by spaces */
    OF_NO_ARGV = 1 << 3, /* not on the command line (ps shows it): environment and file */
    OF_ARGV = 1 << 4,    /* on the command line only (not a setting of serve) */
};

typedef struct optdef {
    const char *name;
    const char *arg; /* the value's name in the help; NULL for a flag */
    unsigned cmds;   /* C_* of the commands that take it */
    unsigned flags;  /* OF_* */
    kind k;
    size_t off; /* offsetof(cli_opts, field) */
    long long min, max;
    const char *choices;                     /* K_CHOICE */
    bool (*set)(cli_opts *o, const char *v); /* K_FN */
    const char *expect;                      /* K_FN: what a value looks like, for an error */
    const char *dflt;                        /* a value applied before any source, or NULL */
    const char *dflt_text;                   /* the default in words, when it is not a value */
    const char *help;
} optdef;

static bool set_auth(cli_opts *o, const char *v);
static bool set_jwt_key(cli_opts *o, const char *v);
static bool set_cors(cli_opts *o, const char *v);
static bool set_proxy(cli_opts *o, const char *v);
static bool set_ticket_ttl(cli_opts *o, const char *v);
static bool set_addr_limit(cli_opts *o, const char *v);
static bool set_account_limit(cli_opts *o, const char *v);
static bool set_pixel_limit(cli_opts *o, const char *v);
static bool set_log_format(cli_opts *o, const char *v);
static bool set_log_level(cli_opts *o, const char *v);

#define F(field) offsetof(cli_opts, field)
#define DAY 86400
#define YEAR (365 * DAY)
#define LIMIT_EXPECT "a whole number from 1 to 1000000, or 0 (off)"

/* serve's options, in the order of its help; then the other commands'. */
static const optdef OPTS[] = {
    {"config", "FILE", C_DB, OF_ARGV, K_TEXT, F(config), .dflt_text = "none",
     .help = "read settings from FILE: `option = value` lines and # comment lines "
             "(also $CRMBLOB_CONFIG)"},
    {"print-config", NULL, C_SERVE, OF_ARGV, K_FLAG, F(print_config),
     .help = "print every setting, its value and where it came from (secrets masked), "
             "and exit"},
    {"listen", "HOST:PORT", C_SERVE, 0, K_ADDR, F(listen), .dflt = "127.0.0.1:8080",
     .help = "address to listen on (0.0.0.0:8080, [::1]:8080, *:8080)"},
    {"tls-cert", "FILE", C_SERVE, 0, K_TEXT, F(tls_cert), .dflt_text = "none: plain HTTP",
     .help = "serve HTTPS only (TLS 1.2 and 1.3) with this certificate chain (PEM: the "
             "certificate, then its chain); with --tls-key; read at start and on SIGHUP"},
    {"tls-key", "FILE", C_SERVE, 0, K_TEXT, F(tls_key), .dflt_text = "none",
     .help = "the unencrypted PEM private key of --tls-cert; read at start and on SIGHUP"},
    {"db", "PATH|URL", C_DB, OF_DSN, K_TEXT, F(db), .dflt = "./data/crmblob.db",
     .help = "SQLite database file, or a PostgreSQL URL (postgresql://user@host/db) or "
             "libpq conninfo"},
    {"db-pool", "N", C_SERVE, 0, K_COUNT, F(db_pool), 1, 1024,
     .dflt_text = "8 (SQLite), 16 (PostgreSQL)", .help = "connections to the database"},
    {"db-wait", "SECONDS", C_SERVE, 0, K_SECONDS, F(db_wait_s), 0, YEAR, .dflt = "0",
     .help = "keep trying to reach PostgreSQL this long at start (0: exit 1 at once)"},
    {"threads", "N", C_SERVE | C(CLI_IMPORT), 0, K_COUNT, F(threads), 1, 256,
     .dflt_text = "serve: CPUs + 1; import: 2",
     .help = "serve: HTTP worker threads; import: files stored at a time"},
    {"durable", NULL, C_SERVE, 0, K_FLAG, F(durable), .dflt_text = "off",
     .help = "answer a write only once it is flushed to disk (survives power loss)"},
    {"auth", "LIST", C_SERVE, 0, K_FN, .set = set_auth,
     .expect = "a comma-separated list of basic, ticket, token, jwt, cookie",
     .dflt_text = "basic,ticket,token,jwt,cookie (jwt with --jwt-key)",
     .help = "authentication schemes accepted"},
    {"jwt-key", "ALG:FILE", C_SERVE, OF_REPEAT, K_FN, .set = set_jwt_key,
     .expect = "ALG:FILE or ALG:KID:FILE (at most 32)", .dflt_text = "none",
     .help = "a key JWTs are verified with: RS256:pub.pem, ES256:pub.pem, HS256:secret-file "
             "(repeatable)"},
    {"jwt-issuer", "S", C_SERVE, 0, K_TEXT, F(auth.jwt_issuer), .dflt_text = "not checked",
     .help = "the \"iss\" a JWT must carry"},
    {"jwt-audience", "S", C_SERVE, 0, K_TEXT, F(auth.jwt_audience), .dflt_text = "not checked",
     .help = "a value a JWT's \"aud\" must contain"},
    {"jwt-user-claim", "NAME", C_SERVE, 0, K_TEXT, F(auth.jwt_user_claim), .dflt = "sub",
     .help = "the JWT claim naming the crmblob user"},
    {"require-app-token", NULL, C_SERVE, 0, K_FLAG, F(auth.require_app_token), .dflt_text = "off",
     .help = "refuse requests without a known SO-AppToken"},
    {"cors-origin", "ORIGIN", C_SERVE, OF_REPEAT, K_FN, .set = set_cors,
     .expect = "an origin (https://app.example; at most 32)", .dflt_text = "none",
     .help = "a browser origin allowed to call the API (repeatable)"},
    {"ticket-ttl", "DURATION", C_SERVE, 0, K_FN, .set = set_ticket_ttl,
     .expect = "a duration from 1s to 365d (30s, 15m, 6h, 7d)", .dflt = "6h",
     .help = "how long a ticket from POST /api/v1/login is valid"},
    {"timeout", "SECONDS", C_SERVE, 0, K_COUNT, F(timeout_s), 1, DAY, .dflt = "30",
     .help = "seconds a connection may go without a byte either way"},
    {"head-timeout", "SECONDS", C_SERVE, 0, K_COUNT, F(head_timeout_s), 1, 3600, .dflt = "10",
     .help = "seconds for a whole request head"},
    {"min-body-rate", "BYTES", C_SERVE, 0, K_COUNT, F(min_body_rate), 0, 1u << 30, .dflt = "1024",
     .help = "bytes/s a body must average over each 10 s (0: no minimum)"},
    {"max-conns", "N", C_SERVE, 0, K_COUNT, F(max_conns), 1, 1u << 20, .dflt = "8192",
     .help = "connections in all"},
    {"max-conns-per-ip", "N", C_SERVE, 0, K_COUNT, F(max_conns_per_ip), 1, 65536, .dflt = "128",
     .help = "connections from one address (an IPv6 /64)"},
    {"auth-address-limit", "N", C_SERVE, 0, K_FN, .set = set_addr_limit, .expect = LIMIT_EXPECT,
     .dflt = "30", .help = "failed sign-ins an address may make in a burst (0: off)"},
    {"auth-address-window", "DURATION", C_SERVE, 0, K_SECONDS, F(auth.addr_window_s), 1, YEAR,
     .dflt = "60s", .help = "... and then that many per this window"},
    {"auth-account-limit", "N", C_SERVE, 0, K_FN, .set = set_account_limit, .expect = LIMIT_EXPECT,
     .dflt = "5",
     .help = "wrong passwords for one user from one address that lock it there (0: off)"},
    {"auth-account-lockout", "DURATION", C_SERVE, 0, K_SECONDS, F(auth.account_lockout_s), 1, YEAR,
     .dflt = "5m", .help = "how long such a lock lasts"},
    {"compress", NULL, C_SERVE | C(CLI_REKEY) | C(CLI_IMPORT), 0, K_FLAG, F(compress), .dflt_text = "off",
     .help = "compress pictures at rest (rekey: the new data)"},
    {"encryption-key-file", "FILE",
     C_SERVE | C(CLI_REKEY) | C(CLI_CHECK) | C(CLI_EXPORT) | C(CLI_IMPORT), 0, K_TEXT, F(key_file),
     .dflt_text = "none: not encrypted",
     .help = "encrypt pictures at rest with this key (crmblob keygen; rekey: the old key)"},
    {"pixel-limit", "N", C_SERVE | C(CLI_CHECK) | C(CLI_IMPORT), 0, K_FN, .set = set_pixel_limit,
     .expect = "a whole number from 1 to 2000000000", .dflt = "50000000",
     .help = "largest picture accepted, width x height"},
    {"image-cpu-limit", "DURATION", C_SERVE | C(CLI_CHECK), 0, K_SECONDS, F(image_cpu_limit_s), 1, 3600,
     .dflt = "20s", .help = "CPU time one call of an image worker may use (at most 1h)"},
    {"variant-cache-mb", "N", C_SERVE, 0, K_COUNT, F(variant_cache_mb), 1, 1u << 20, .dflt = "256",
     .help = "MiB of scaled and converted pictures kept"},
    {"modern-formats", NULL, C_SERVE, 0, K_FLAG, F(modern_formats), .dflt_text = "off",
     .help = "keep WebP and AVIF uploads as they are (else converted)"},
    {"blob-grace", "DURATION", C_SERVE, 0, K_SECONDS, F(blob_grace_s), 1, YEAR, .dflt = "24h",
     .help = "how long a BLOB record no entity uses is kept"},
    {"batch-jobs", "N", C_SERVE, 0, K_COUNT, F(batch_jobs), 0, 64, .dflt = "1",
     .help = "batch tasks (export, import, check, rekey) this server runs at once (0: none)"},
    {"archive-max-mb", "N", C_SERVE, 0, K_COUNT, F(archive_max_mb), 1, 2047, .dflt = "256",
     .help = "MiB of an archive uploaded for an import task (one at a time, apart from "
             "--spool-mb)"},
    {"batch-keep", "DURATION", C_SERVE, 0, K_SECONDS, F(batch_keep_s), 1, YEAR, .dflt = "7d",
     .help = "how long a finished batch task and its output are kept"},
    {"cache-mb", "N", C_SERVE, 0, K_COUNT, F(cache_mb), 0, 1u << 16, .dflt = "16",
     .help = "MiB of the read cache (0: off; always off on PostgreSQL)"},
    {"spool-mb", "N", C_SERVE, 0, K_COUNT, F(spool_mb), 1, 1u << 20, .dflt = "256",
     .help = "MiB the uploads in flight may hold together in their spools"},
    {"spool-dir", "DIR", C_SERVE, 0, K_TEXT, F(spool_dir),
     .dflt_text = "the database's directory; on PostgreSQL $TMPDIR, else /tmp",
     .help = "where uploads are spooled"},
    {"trusted-proxy", "CIDR[,CIDR...]", C_SERVE, OF_REPEAT, K_FN, .set = set_proxy,
     .expect = "address ranges (10.0.0.0/8, ::1; at most 64)", .dflt_text = "none",
     .help = "reverse proxies whose Forwarded / X-Forwarded-* name the client (repeatable)"},
    {"log-limit", "N", C_SERVE, 0, K_COUNT, F(log_limit), 0, 1000000, .dflt = "20",
     .help = "diagnostic lines of one kind per 10 s (0: no limit)"},
    {"log-probes", NULL, C_SERVE, 0, K_FLAG, F(log_probes), .dflt_text = "off",
     .help = "access lines for GET /health and /ready too"},
    {"log-format", "FORMAT", C_SERVE, 0, K_FN, .set = set_log_format,
     .expect = "text or json", .dflt = "text",
     .help = "log lines as text, or as one JSON object per line"},
    {"log-level", "LEVEL", C_SERVE, 0, K_FN, .set = set_log_level,
     .expect = "one of error, warn, info, debug", .dflt = "info",
     .help = "the least serious lines written: error; warn; info (also start, stop, refused "
             "credentials and one access line per request); debug (also libvips' and "
             "PostgreSQL's notices)"},
    {"log-file", "FILE", C_SERVE, 0, K_TEXT, F(log_file), .dflt_text = "stderr",
     .help = "append the log to FILE (made 0640) instead of stderr"},
    {"metrics-listen", "HOST:PORT", C_SERVE, 0, K_ADDR, F(metrics_listen), .dflt_text = "none",
     .help = "serve the metrics page (Prometheus text format; also GET /metrics on the main "
             "port, for admins) without credentials on a listener of its own: bind it where only "
             "the monitoring can reach it"},
    {"admin-password", "PASSWORD", C_SERVE, OF_SECRET | OF_NO_ARGV, K_TEXT, F(admin_password),
     .dflt_text = "made at random, shown on a terminal or written to crmblob-admin-password",
     .help = "the password of the first user 'admin', made when there is no user"},
    /* the other commands' */
    {"role", "ROLE", C(CLI_USER), OF_ARGV, K_CHOICE, F(role), .choices = "admin|editor|viewer",
     .help = "the new user's role"},
    {"full-name", "TEXT", C(CLI_USER), OF_ARGV, K_ANYTEXT, F(full_name), .dflt_text = "empty",
     .help = "the new user's full name"},
    {"password-stdin", NULL, C(CLI_USER), OF_ARGV, K_FLAG, F(password_stdin),
     .help = "read the password from stdin, one line (required)"},
    {"keep-sessions", NULL, C(CLI_USER), OF_ARGV, K_FLAG, F(keep_sessions),
     .help = "passwd, disable: the user's sessions, tickets and tokens stay valid"},
    {"ttl", "DURATION", C(CLI_TICKET) | C(CLI_TOKEN), OF_ARGV, K_TEXT, F(ttl),
     .dflt_text = "6h for a ticket, 30d for a token", .help = "how long it is valid"},
    {"label", "TEXT", C(CLI_TOKEN), OF_ARGV, K_ANYTEXT, F(label),
     .help = "a note shown by token list"},
    {"new-key-file", "FILE", C(CLI_REKEY), OF_ARGV, K_TEXT, F(new_key_file),
     .dflt_text = "none: decrypt", .help = "the new key"},
    {"from", "WHERE", C(CLI_MIGRATE) | C(CLI_RESTORE), OF_ARGV, K_TEXT, F(from),
     .help = "the data set to copy: a SQLite file (which must exist; restore: a backup) or a "
             "PostgreSQL URL"},
    {"to", "WHERE", C(CLI_MIGRATE) | C(CLI_BACKUP), OF_ARGV, K_TEXT, F(to),
     .help = "where it goes: a SQLite file (created) or a PostgreSQL URL (backup: a new file)"},
    {"force", NULL, C(CLI_MIGRATE) | C(CLI_BACKUP) | C(CLI_RESTORE), OF_ARGV, K_FLAG, F(force),
     .help = "replace what the target holds (else a target holding anything is refused)"},
    {"entity", "KIND", C(CLI_IMPORT), OF_ARGV, K_CHOICE, F(entity),
     .choices = "person|contact|product|project",
     .help = "the kind of entity a flat folder's {id}.{ext} files belong to"},
    {"quick", NULL, C(CLI_CHECK), OF_ARGV, K_FLAG, F(quick),
     .help = "the database's quicker check (SQLite: quick_check instead of integrity_check)"},
    {"verify-only", NULL, C(CLI_MIGRATE), OF_ARGV, K_FLAG, F(verify_only),
     .help = "copy nothing: compare the two (exit 1 when they differ)"},
    {"help", NULL, C_ALL, OF_ARGV, K_FLAG, F(help), .help = "show this help and exit"},
};
#define NOPTS (sizeof(OPTS) / sizeof(OPTS[0]))

/* Older names still accepted on the command line and in the config file. */
static const struct {
    const char *alias, *name;
} ALIASES[] = {
    {"expires", "ttl"},
    /* the names before the limits were split (an address was locked out) */
    {"auth-fail-limit", "auth-address-limit"},
    {"auth-fail-window", "auth-address-window"},
    {"auth-lockout", "auth-account-lockout"},
};

static int find_opt(const char *name, size_t n)
{
    for (size_t i = 0; i < sizeof(ALIASES) / sizeof(ALIASES[0]); i++)
        if (strlen(ALIASES[i].alias) == n && memcmp(ALIASES[i].alias, name, n) == 0)
            name = ALIASES[i].name, n = strlen(name);
    for (size_t i = 0; i < NOPTS; i++)
        if (strlen(OPTS[i].name) == n && memcmp(OPTS[i].name, name, n) == 0)
            return (int)i;
    return -1;
}

static bool takes(const cli_opts *o, const optdef *d)
{
    return (d->cmds & C(o->cmd)) != 0;
}

/* A setting of serve: from the environment and the config file too. */
static bool is_setting(const optdef *d)
{
    return (d->cmds & C_SERVE) && !(d->flags & OF_ARGV);
}

/* ---- parsing values ---- */

static bool parse_whole(const char *v, long long min, long long max, long long *out)
{
    uint64_t n;
    if (!text_parse_u64(v, strlen(v), &n) || n < (uint64_t)min || n > (uint64_t)max)
        return false;
    *out = (long long)n;
    return true;
}

/* A duration, or "0" where 0 is allowed. */
static bool parse_secs(const char *v, long long min, long long max, long long *out)
{
    int64_t s = 0;
    if (!(strcmp(v, "0") == 0 || text_parse_duration(v, &s)) || s < min || s > max)
        return false;
    *out = s;
    return true;
}

static bool parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"1", "yes", "true", "on"}, *const no[] = {"0", "no", "false",
                                                                                "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0 || strcasecmp(v, no[i]) == 0) {
            *out = strcasecmp(v, yes[i]) == 0;
            return true;
        }
    }
    return false;
}

static bool is_choice(const char *choices, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = choices; n > 0 && *p;) {
        size_t m = strcspn(p, "|");
        if (m == n && memcmp(p, v, n) == 0)
            return true;
        p += m + (p[m] == '|');
    }
    return false;
}

/* Stores v into o's field of d; false when v is not a value of d's kind. */
static bool set_value(cli_opts *o, const optdef *d, const char *v)
{
    char *field = (char *)o + d->off;
    long long n;
    switch (d->k) {
    case K_FLAG:
        return parse_bool(v, (bool *)field);
    case K_ANYTEXT:
        *(const char **)field = v;
        return true;
    case K_TEXT:
        *(const char **)field = v;
        return *v != '\0';
    case K_CHOICE:
        *(const char **)field = v;
        return is_choice(d->choices, v);
    case K_ADDR: {
        struct sockaddr_storage ss;
        socklen_t len;
        *(const char **)field = v;
        return net_parse_listen(v, &ss, &len);
    }
    case K_COUNT:
        if (!parse_whole(v, d->min, d->max, &n))
            return false;
        *(unsigned *)field = (unsigned)n;
        return true;
    case K_SECONDS:
        if (!parse_secs(v, d->min, d->max, &n))
            return false;
        *(int *)field = (int)n;
        return true;
    case K_FN:
        return d->set(o, v);
    }
    return false;
}

/* What a value of d looks like, for an error message. */
static const char *expected(const optdef *d, char *buf, size_t cap)
{
    switch (d->k) {
    case K_FLAG:
        return "yes or no (true/false, on/off, 1/0)";
    case K_TEXT:
        return "a value that is not empty";
    case K_ANYTEXT:
        return "text";
    case K_ADDR:
        return "HOST:PORT (127.0.0.1:8080, [::1]:8080, *:8080)";
    case K_CHOICE:
        snprintf(buf, cap, "one of %s", d->choices);
        return buf;
    case K_COUNT:
        snprintf(buf, cap, "a whole number from %lld to %lld", d->min, d->max);
        return buf;
    case K_SECONDS:
        snprintf(buf, cap, "a duration from %llds to %llds (30s, 15m, 6h, 7d)%s", d->min, d->max,
                 d->min == 0 ? ", or 0" : "");
        return buf;
    case K_FN:
        return d->expect;
    }
    return "?";
}

static bool add_to(const char **list, size_t *n, const char *v)
{
    if (*n >= CLI_MAX_LIST || *v == '\0')
        return false;
    list[(*n)++] = v;
    return true;
}

static bool set_auth(cli_opts *o, const char *v)
{
    return auth_parse_schemes(v, &o->auth.schemes);
}

static bool set_jwt_key(cli_opts *o, const char *v)
{
    return strchr(v, ':') != NULL && add_to(o->jwt_keys, &o->auth.njwt_keys, v);
}

static bool set_cors(cli_opts *o, const char *v)
{
    return add_to(o->cors, &o->ncors, v);
}

/* At least one range (an empty value is a mistake, not "none"). */
static bool set_proxy(cli_opts *o, const char *v)
{
    size_t before = o->trusted_proxies.n;
    return net_cidr_list_parse(&o->trusted_proxies, v) == CB_EOK && o->trusted_proxies.n > before;
}

static bool set_ticket_ttl(cli_opts *o, const char *v)
{
    long long s;
    if (!parse_secs(v, 1, YEAR, &s))
        return false;
    o->auth.ticket_ttl_s = s;
    return true;
}

/* A failure limit: a count, or 0 for none (auth_config's -1). */
static bool parse_limit(const char *v, int *out)
{
    long long n;
    if (!parse_whole(v, 0, 1000000, &n))
        return false;
    *out = n == 0 ? -1 : (int)n;
    return true;
}

static bool set_addr_limit(cli_opts *o, const char *v)
{
    return parse_limit(v, &o->auth.addr_limit);
}

static bool set_account_limit(cli_opts *o, const char *v)
{
    return parse_limit(v, &o->auth.account_limit);
}

static bool set_log_format(cli_opts *o, const char *v)
{
    return log_parse_format(v, &o->log_format);
}

static bool set_log_level(cli_opts *o, const char *v)
{
    return log_parse_level(v, &o->log_level);
}

static bool set_pixel_limit(cli_opts *o, const char *v)
{
    long long n;
    if (!parse_whole(v, 1, 2000000000, &n))
        return false;
    o->pixel_limit = n;
    return true;
}

/* ---- errors ---- */

__attribute__((format(printf, 2, 3))) static int fail(char err[CLI_ERR_MAX], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, CLI_ERR_MAX, fmt, ap);
    va_end(ap);
    return 2;
}

int cli_usage_error(const cli_opts *o, const char *fmt, ...)
{
    char msg[CLI_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "crmblob %s: %s (see: crmblob help %s)\n", o->cmd_name, msg, o->cmd_name);
    return 2;
}

/* CRMBLOB_<NAME>: upper case, dashes as underscores. */
static const char *env_name(const char *name, char buf[128])
{
    size_t n = (size_t)snprintf(buf, 128, ENV_PREFIX "%s", name);
    for (size_t i = strlen(ENV_PREFIX); i < n && i < 128; i++)
        buf[i] = buf[i] == '-' ? '_' : (char)toupper((unsigned char)buf[i]);
    return buf;
}

/* Where setting s came from, as an error or --print-config says it. */
static void source_text(const cli_setting *s, char *buf, size_t cap)
{
    char env[128];
    env_name(OPTS[s->opt].name, env);
    switch (s->from) {
    case CLI_FROM_ARGV:
        snprintf(buf, cap, "command line");
        break;
    case CLI_FROM_ENV:
        snprintf(buf, cap, "environment %s", env);
        break;
    case CLI_FROM_FILE:
        snprintf(buf, cap, "%s:%d", s->file, s->line);
        break;
    case CLI_FROM_DEFAULT:
        snprintf(buf, cap, "default");
        break;
    }
}

/* ---- settings ---- */

static int add_setting(cli_opts *o, int opt, const char *v, cli_source from, const char *file,
                       int line, char err[CLI_ERR_MAX])
{
    if (o->nsettings == o->capsettings) {
        size_t cap = o->capsettings ? o->capsettings * 2 : 32;
        if (cap > MAX_SETTINGS)
            return fail(err, "more than %d settings", MAX_SETTINGS);
        cli_setting *n = arena_alloc(o->arena, cap * sizeof(*n));
        if (o->nsettings > 0)
            memcpy(n, o->settings, o->nsettings * sizeof(*n));
        o->settings = n;
        o->capsettings = cap;
    }
    o->settings[o->nsettings++] =
        (cli_setting){.opt = opt, .value = v, .from = from, .file = file, .line = line};
    return 0;
}

int cli_opts_init(cli_opts *o, const char *cmd, char err[CLI_ERR_MAX])
{
    *o = (cli_opts){.arena = arena_create(), .cmd = CLI_NCMD, .cmd_name = cmd};
    o->auth.jwt_keys = o->jwt_keys;
    for (int c = 0; c < CLI_NCMD; c++)
        if (strcmp(cmd, CMDS[c].name) == 0)
            o->cmd = (cli_cmd)c;
    if (o->arena == NULL)
        return fail(err, "out of memory");
    if (o->cmd == CLI_NCMD)
        return fail(err,
                    "unknown command '%s' (commands: serve, init, user, ticket, token, "
                    "apptoken, keygen, rekey, migrate, help)",
                    cmd);
    return 0;
}

void cli_opts_free(cli_opts *o)
{
    arena_destroy(o->arena);
    o->arena = NULL;
}

/* ---- the command line ---- */

static int argv_option(cli_opts *o, int argc, char **argv, int *i, char err[CLI_ERR_MAX])
{
    const char *a = argv[*i] + 2, *eq = strchr(a, '=');
    size_t n = eq ? (size_t)(eq - a) : strlen(a);
    int k = strcmp(argv[*i], "-h") == 0 ? find_opt("help", 4) : find_opt(a, n);
    bool off = k < 0 && n > 3 && strncmp(a, "no-", 3) == 0; /* --no-durable */
    if (off)
        k = find_opt(a + 3, n - 3);
    const optdef *d = k >= 0 ? &OPTS[k] : NULL;
    if (d == NULL || (d->flags & OF_NO_ARGV) || (off && (d->k != K_FLAG || !is_setting(d))))
        return fail(err, "unknown option %.*s (see: crmblob help %s)",
                    (int)(eq ? (size_t)(eq - argv[*i]) : strlen(argv[*i])), argv[*i], o->cmd_name);
    if (!takes(o, d))
        return fail(err, "--%s is not an option of %s (see: crmblob help %s)", d->name, o->cmd_name,
                    o->cmd_name);
    if (d->k == K_FLAG && eq != NULL)
        return fail(err, "--%s takes no value", d->name);
    const char *v = d->k == K_FLAG  ? (off ? "no" : "yes")
                    : eq            ? eq + 1
                    : *i + 1 < argc ? argv[++*i]
                                    : NULL;
    if (v == NULL)
        return fail(err, "--%s needs a value (%s)", d->name, d->arg);
    return add_setting(o, k, v, CLI_FROM_ARGV, NULL, 0, err);
}

static int parse_argv(cli_opts *o, int argc, char **argv, char err[CLI_ERR_MAX])
{
    bool options = true;
    o->args = arena_alloc(o->arena, (size_t)argc * sizeof(char *) + 1);
    for (int i = 1; i < argc; i++) {
        int rc = 0;
        if (options && strcmp(argv[i], "--") == 0)
            options = false;
        else if (options && argv[i][0] == '-' && argv[i][1] != '\0')
            rc = argv[i][1] == '-' || strcmp(argv[i], "-h") == 0
                     ? argv_option(o, argc, argv, &i, err)
                     : fail(err, "unknown option %s (see: crmblob help %s)", argv[i], o->cmd_name);
        else
            o->args[o->nargs++] = argv[i];
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- the config file ---- */

static int conf_line(cli_opts *o, const char *file, int line, const char *p, size_t n,
                     char err[CLI_ERR_MAX])
{
    if (n > 0 && p[n - 1] == '\r') /* a file written on Windows */
        n--;
    text_span t = text_trim(p, n);
    if (t.n == 0 || t.p[0] == '#')
        return 0;
    const char *eq = memchr(t.p, '=', t.n);
    if (eq == NULL)
        return fail(err, "%s:%d: expected `option = value`, found '%.*s'", file, line,
                    (int)(t.n > 80 ? 80 : t.n), t.p);
    text_span name = text_trim(t.p, (size_t)(eq - t.p));
    text_span val = text_trim(eq + 1, (size_t)(t.p + t.n - eq - 1));
    int k = find_opt(name.p, name.n);
    if (k < 0)
        return fail(err, "%s:%d: unknown option '%.*s'", file, line,
                    (int)(name.n > 80 ? 80 : name.n), name.p);
    if (!is_setting(&OPTS[k]))
        return fail(err, "%s:%d: %s is for the command line, not the config file", file, line,
                    OPTS[k].name);
    if (memchr(val.p, '\0', val.n) != NULL)
        return fail(err, "%s:%d: a NUL byte in the value of %s", file, line, OPTS[k].name);
    if (!takes(o, &OPTS[k]))
        return 0; /* serve's setting, read by another command: not its business */
    return add_setting(o, k, arena_strndup(o->arena, val.p, val.n), CLI_FROM_FILE, file, line, err);
}

int cli_conf_parse(cli_opts *o, const char *file, const char *text, size_t n, char err[CLI_ERR_MAX])
{
    int line = 1;
    for (size_t at = 0; at < n; line++) {
        const char *nl = memchr(text + at, '\n', n - at);
        size_t len = nl ? (size_t)(nl - text - at) : n - at;
        int rc = conf_line(o, file, line, text + at, len, err);
        if (rc != 0)
            return rc;
        at += len + 1;
    }
    return 0;
}

static int read_conf(cli_opts *o, char err[CLI_ERR_MAX])
{
    FILE *f = fopen(o->config, "r");
    if (f == NULL)
        return fail(err, "cannot read the config file %s: %s", o->config, strerror(errno));
    char *buf = arena_alloc(o->arena, CONF_MAX_BYTES + 1);
    size_t n = fread(buf, 1, CONF_MAX_BYTES + 1, f);
    bool bad = ferror(f);
    fclose(f);
    if (bad)
        return fail(err, "cannot read the config file %s", o->config);
    if (n > CONF_MAX_BYTES)
        return fail(err, "the config file %s is larger than %d bytes", o->config, CONF_MAX_BYTES);
    return cli_conf_parse(o, o->config, buf, n, err);
}

/* ---- the environment ---- */

/* The value of CRMBLOB_<NAME> in envp, or NULL (an empty one counts as not set). */
static const char *env_value(char *const *envp, const char *name)
{
    char key[128];
    env_name(name, key);
    size_t n = strlen(key);
    if (n + 2 > sizeof(key))
        return NULL;
    key[n++] = '=';
    key[n] = '\0';
    for (; envp != NULL && *envp != NULL; envp++)
        if (strncmp(*envp, key, n) == 0)
            return (*envp)[n] != '\0' ? *envp + n : NULL;
    return NULL;
}

/* A repeatable option's environment value: one setting per word. */
static int env_words(cli_opts *o, int k, const char *v, char err[CLI_ERR_MAX])
{
    while (*v) {
        size_t skip = strspn(v, " \t"), n = strcspn(v + skip, " \t");
        if (n > 0 && add_setting(o, k, arena_strndup(o->arena, v + skip, n), CLI_FROM_ENV, NULL, 0,
                                 err) != 0)
            return 2;
        v += skip + n;
    }
    return 0;
}

static int parse_env(cli_opts *o, char *const *envp, char err[CLI_ERR_MAX])
{
    for (size_t k = 0; k < NOPTS; k++) {
        const char *v = env_value(envp, OPTS[k].name);
        if (v == NULL || !is_setting(&OPTS[k]) || !takes(o, &OPTS[k]))
            continue;
        int rc = OPTS[k].flags & OF_REPEAT ? env_words(o, (int)k, v, err)
                                           : add_setting(o, (int)k, arena_strdup(o->arena, v),
                                                         CLI_FROM_ENV, NULL, 0, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- resolving ---- */

static cli_source winner(const cli_opts *o, int k)
{
    cli_source best = CLI_FROM_DEFAULT;
    for (size_t i = 0; i < o->nsettings; i++)
        if (o->settings[i].opt == k && o->settings[i].from > best)
            best = o->settings[i].from;
    return best;
}

static int bad_value(const cli_setting *s, char err[CLI_ERR_MAX])
{
    const optdef *d = &OPTS[s->opt];
    char where[512], buf[160];
    source_text(s, where, sizeof(where));
    const char *v = d->flags & (OF_SECRET | OF_DSN) ? "(not shown)" : s->value;
    if (s->from == CLI_FROM_FILE)
        return fail(err, "%s: bad value '%.200s' for %s: expected %s", where, v, d->name,
                    expected(d, buf, sizeof(buf)));
    return fail(err, "bad value '%.200s' for --%s (%s): expected %s", v, d->name, where,
                expected(d, buf, sizeof(buf)));
}

int cli_resolve(cli_opts *o, char err[CLI_ERR_MAX])
{
    for (size_t k = 0; k < NOPTS; k++) {
        const optdef *d = &OPTS[k];
        if (!takes(o, d))
            continue;
        if (d->dflt != NULL && !set_value(o, d, d->dflt))
            return fail(err, "internal: the default of --%s is not a value of it", d->name);
        cli_source best = winner(o, (int)k);
        for (size_t i = 0; i < o->nsettings && best != CLI_FROM_DEFAULT; i++) {
            const cli_setting *s = &o->settings[i];
            if (s->opt == (int)k && s->from == best && !set_value(o, d, s->value))
                return bad_value(s, err);
        }
    }
    return 0;
}

static int load(int argc, char **argv, char *const *envp, cli_opts *o, char err[CLI_ERR_MAX])
{
    int rc = cli_opts_init(o, argc > 0 ? argv[0] : "", err);
    if (rc == 0)
        rc = parse_argv(o, argc, argv, err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < o->nsettings; i++)
        if (strcmp(OPTS[o->settings[i].opt].name, "help") == 0)
            return o->help = true, 0; /* the help, whatever else is wrong */
    for (size_t i = 0; i < o->nsettings; i++)
        if (strcmp(OPTS[o->settings[i].opt].name, "config") == 0)
            o->config = o->settings[i].value;
    if (o->config == NULL && (C(o->cmd) & C_DB) && env_value(envp, "config") != NULL)
        o->config = arena_strdup(o->arena, env_value(envp, "config"));
    if (o->config != NULL && (rc = read_conf(o, err)) != 0)
        return rc;
    if ((rc = parse_env(o, envp, err)) != 0)
        return rc;
    return cli_resolve(o, err);
}

int cli_load(int argc, char **argv, char *const *envp, cli_opts *o, char err[CLI_ERR_MAX])
{
    char msg[CLI_ERR_MAX];
    int rc = load(argc, argv, envp, o, msg);
    if (rc != 0 && o->cmd != CLI_NCMD)
        snprintf(err, CLI_ERR_MAX, "crmblob %.20s: %.990s", o->cmd_name, msg);
    else if (rc != 0)
        snprintf(err, CLI_ERR_MAX, "crmblob: %.1000s", msg);
    return rc;
}

/* ---- help ---- */

#define HELP_WIDTH 79
#define HELP_INDENT 6

/* text on lines of at most HELP_WIDTH columns, each indented, broken at
 * spaces (a word longer than a line stays whole). */
static void put_wrapped(FILE *f, const char *text)
{
    size_t col = 0;
    while (*text != '\0') {
        size_t n = strcspn(text, " ");
        if (col > 0 && col + 1 + n > HELP_WIDTH) {
            fputc('\n', f);
            col = 0;
        }
        col += col == 0 ? (size_t)fprintf(f, "%*s", HELP_INDENT, "") : (size_t)fprintf(f, " ");
        col += fwrite(text, 1, n, f);
        text += n + (text[n] == ' ');
    }
    fputc('\n', f);
}

static void option_help(FILE *f, const optdef *d)
{
    char env[128], text[1024];
    if (d->flags & OF_NO_ARGV) /* not on the command line, where ps would show it */
        fprintf(f, "  %s=... or `%s = ...` (config file)\n", env_name(d->name, env), d->name);
    else
        fprintf(f, "  --%s%s%s\n", d->name, d->arg ? " " : "", d->arg ? d->arg : "");
    if (d->dflt != NULL || d->dflt_text != NULL)
        snprintf(text, sizeof(text), "%s (default: %s)", d->help,
                 d->dflt != NULL ? d->dflt : d->dflt_text);
    else
        snprintf(text, sizeof(text), "%s", d->help);
    put_wrapped(f, text);
}

static void exit_codes(FILE *f)
{
    fputs("exit codes: 0 done; 1 failed (the reason on stderr); 2 usage or configuration\n"
          "  error (an unknown command or option, a bad value, a bad config file line)\n",
          f);
}

static void overview(FILE *f)
{
    fputs("usage: crmblob COMMAND [OPTIONS] [ARGUMENTS]\n\ncommands:\n", f);
    for (int c = 0; c < CLI_NCMD; c++) {
        /* the synopsis is laid out after "usage: ", 7 columns: here after 2 */
        for (const char *p = CMDS[c].synopsis; *p != '\0';) {
            size_t n = strcspn(p, "\n"), skip = strspn(p, " ");
            skip = skip > 7 ? 7 : skip;
            fprintf(f, "  %.*s\n", (int)(n - skip), p + skip);
            p += n + (p[n] == '\n');
        }
    }
    fputs("\n`crmblob help COMMAND` or `crmblob COMMAND --help`: a command's options.\n"
          "serve's options are also read from CRMBLOB_<OPTION> environment variables and a\n"
          "--config FILE; precedence: command line, environment, file, default.\n",
          f);
    exit_codes(f);
}

void cli_help(FILE *f, const char *cmd)
{
    int c = 0;
    while (cmd != NULL && c < CLI_NCMD && strcmp(CMDS[c].name, cmd) != 0)
        c++;
    if (cmd == NULL || c == CLI_NCMD || c == CLI_HELP) {
        overview(f);
        return;
    }
    fprintf(f, "usage: %s\n\n%s\n\noptions:\n", CMDS[c].synopsis, CMDS[c].about);
    for (size_t k = 0; k < NOPTS; k++)
        if (OPTS[k].cmds & C(c))
            option_help(f, &OPTS[k]);
    if (c == CLI_SERVE)
        fputs("\nEvery option but --config and --print-config may also be given as an\n"
              "environment variable CRMBLOB_<OPTION> (upper case, dashes as underscores:\n"
              "CRMBLOB_MAX_CONNS_PER_IP=64; a flag: yes/no; a repeatable option: values\n"
              "separated by spaces) or as a line `option = value` in the --config file (a\n"
              "repeatable option on several lines). Precedence: the command line, then the\n"
              "environment, then the file, then the default. --no-FLAG turns off a flag\n"
              "the environment or the file turned on (--no-durable).\n",
              f);
    else if (C(c) & C_DB)
        fprintf(f,
                "\n--db and the options serve shares are also read from CRMBLOB_<OPTION> and\n"
                "the --config file, as serve reads them.%s\n",
                c == CLI_INIT ? ""
                              : " A database that does not exist is an\n"
                                "error: `crmblob init` (or the first start of serve) makes one.");
    fputc('\n', f);
    exit_codes(f);
}

/* ---- --print-config ---- */

static void print_value(FILE *f, const optdef *d, const char *v, const char *from)
{
    char shown[4096];
    if (d->flags & OF_SECRET)
        snprintf(shown, sizeof(shown), "********");
    else if (d->flags & OF_DSN)
        store_describe(v, shown, sizeof(shown));
    else
        snprintf(shown, sizeof(shown), "%s", v);
    size_t used = strlen(d->name) + strlen(shown) + 3;
    fprintf(f, "%s = %s%*s# %s%s\n", d->name, shown, used < 44 ? (int)(44 - used) : 1, "", from,
            (d->flags & OF_DSN) && strcmp(shown, v) != 0 ? " (password not shown)" : "");
}

void cli_print_config(const cli_opts *o, FILE *f)
{
    char from[512];
    fprintf(f, "# crmblob serve: the effective settings and where each came from\n");
    for (size_t k = 0; k < NOPTS; k++) {
        const optdef *d = &OPTS[k];
        if (!is_setting(d))
            continue;
        cli_source best = winner(o, (int)k);
        const cli_setting *last = NULL; /* of a single value: the one in effect */
        for (size_t i = 0; i < o->nsettings && best != CLI_FROM_DEFAULT; i++) {
            if (o->settings[i].opt != (int)k || o->settings[i].from != best)
                continue;
            last = &o->settings[i];
            source_text(last, from, sizeof(from));
            if (d->flags & OF_REPEAT)
                print_value(f, d, last->value, from);
        }
        if (last != NULL && !(d->flags & OF_REPEAT))
            print_value(f, d, last->value, from);
        if (best == CLI_FROM_DEFAULT && (d->dflt != NULL || d->k == K_FLAG))
            print_value(f, d, d->dflt != NULL ? d->dflt : "no", "default");
        else if (best == CLI_FROM_DEFAULT)
            fprintf(f, "# %s: not set (default: %s)\n", d->name,
                    d->dflt_text ? d->dflt_text : "none");
    }
}

/* The i-th value in force of setting k (the winning source's, in order;
 * the default as the only one), or NULL past the last. */
static const char *nth_value(const cli_opts *o, int k, size_t i)
{
    cli_source best = winner(o, k);
    if (best == CLI_FROM_DEFAULT)
        return i == 0 ? OPTS[k].dflt : NULL;
    for (size_t j = 0; j < o->nsettings; j++)
        if (o->settings[j].opt == k && o->settings[j].from == best && i-- == 0)
            return o->settings[j].value;
    return NULL;
}

static bool same_values(const cli_opts *a, const cli_opts *b, int k)
{
    const optdef *d = &OPTS[k];
    if (d->k == K_FLAG) /* yes, on, 1, the bare flag: compare what they set */
        return *(const bool *)((const char *)a + d->off) ==
               *(const bool *)((const char *)b + d->off);
    for (size_t i = 0;; i++) {
        const char *x = nth_value(a, k, i), *y = nth_value(b, k, i);
        if (x == NULL || y == NULL)
            return x == y;
        if (strcmp(x, y) != 0)
            return false;
    }
}

size_t cli_changed(const cli_opts *a, const cli_opts *b, const char *const *skip, char *out,
                   size_t cap)
{
    size_t n = 0, len = 0;
    out[0] = '\0';
    for (size_t k = 0; k < NOPTS; k++) {
        bool skipped = !is_setting(&OPTS[k]);
        for (size_t i = 0; skip[i] != NULL && !skipped; i++)
            skipped = strcmp(skip[i], OPTS[k].name) == 0;
        if (skipped || same_values(a, b, (int)k))
            continue;
        if (len < cap)
            len += (size_t)snprintf(out + len, cap - len, "%s%s", n ? ", " : "", OPTS[k].name);
        n++;
    }
    return n;
}

/* ---- running the other commands ---- */

/* crmblob help [COMMAND] */
static int help_command(const cli_opts *o)
{
    if (o->nargs > 1)
        return cli_usage_error(o, "unexpected argument '%s'", o->args[1]);
    int c = 0;
    while (o->nargs == 1 && c < CLI_NCMD && strcmp(CMDS[c].name, o->args[0]) != 0)
        c++;
    if (c == CLI_NCMD)
        return cli_usage_error(o, "unknown command '%s'", o->args[0]);
    cli_help(stdout, o->nargs == 1 ? o->args[0] : NULL);
    return 0;
}

int cli_run(const cli_opts *o)
{
    switch (o->cmd) {
    case CLI_INIT:
        return cli_init(o);
    case CLI_USER:
        return cli_user(o);
    case CLI_TICKET:
        return cli_ticket(o);
    case CLI_TOKEN:
        return cli_token(o);
    case CLI_APPTOKEN:
        return cli_apptoken(o);
    case CLI_KEYGEN:
        return cli_keygen(o);
    case CLI_REKEY:
        return cli_rekey(o);
    case CLI_MIGRATE:
        return cli_migrate(o);
    case CLI_BACKUP:
        return cli_backup(o);
    case CLI_RESTORE:
        return cli_restore(o);
    case CLI_CHECK:
        return cli_check(o);
    case CLI_EXPORT:
        return cli_export(o);
    case CLI_IMPORT:
        return cli_import(o);
    case CLI_HELP:
        return help_command(o);
    default:
        return cli_usage_error(o, "not a command to run here");
    }
}
