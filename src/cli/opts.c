/*
 * opts.c — parsing crmblob's command-line options into cli_opts.
 *
 * Numbers and durations are parsed strictly (no atoi): a malformed value is
 * a usage error, never a silent default.
 */
#include <getopt.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/text.h"

#define DEFAULT_DB "./data/crmblob.db"
#define DEFAULT_LISTEN "127.0.0.1:8080"
#define DEFAULT_BLOB_GRACE (24 * 3600) /* unlinked BLOBs are kept a day */
#define DEFAULT_CACHE_MB 16 /* the store's read cache: hot pictures, records, users */
#define DEFAULT_SPOOL_MB 256 /* upload spools in flight, together */
/* A body's minimum rate, bytes/s averaged over each 10 s: a phone uploading
 * 10 MB over a poor link (tens of KiB/s) passes with room to spare. */
#define DEFAULT_MIN_BODY_RATE 1024

enum {
    O_DB = 256, O_LISTEN, O_ROLE, O_FULL_NAME, O_THREADS, O_DURABLE, O_PW_STDIN, O_TTL, O_LABEL,
    O_AUTH, O_JWT_KEY, O_JWT_ISS, O_JWT_AUD, O_JWT_CLAIM, O_REQUIRE_APP, O_CORS, O_TICKET_TTL,
    O_TIMEOUT, O_MAX_PER_IP, O_ADDR_LIMIT, O_ADDR_WINDOW, O_ACCOUNT_LIMIT, O_ACCOUNT_LOCKOUT,
    O_KEEP_SESSIONS, O_KEY_FILE, O_NEW_KEY_FILE, O_COMPRESS, O_MODERN, O_PIXEL_LIMIT,
    O_VARIANT_MB, O_BLOB_GRACE, O_CACHE_MB, O_SPOOL_MB,
    O_TRUSTED_PROXY, O_LOG_LIMIT,
    O_HEAD_TIMEOUT, O_MIN_BODY_RATE, O_MAX_CONNS,
    O_IMG_CPU, O_LOG_PROBES, O_SPOOL_DIR, O_DB_POOL, O_DB_WAIT, O_FROM, O_TO, O_FORCE, O_VERIFY_ONLY,
    O_TLS_CERT, O_TLS_KEY, O_ENTITY,
};

static const struct option longopts[] = {
    {"db", required_argument, NULL, O_DB},
    {"listen", required_argument, NULL, O_LISTEN},
    {"role", required_argument, NULL, O_ROLE},
    {"full-name", required_argument, NULL, O_FULL_NAME},
    {"threads", required_argument, NULL, O_THREADS},
    {"durable", no_argument, NULL, O_DURABLE},
    {"password-stdin", no_argument, NULL, O_PW_STDIN},
    {"ttl", required_argument, NULL, O_TTL},
    {"expires", required_argument, NULL, O_TTL},
    {"label", required_argument, NULL, O_LABEL},
    {"auth", required_argument, NULL, O_AUTH},
    {"jwt-key", required_argument, NULL, O_JWT_KEY},
    {"jwt-issuer", required_argument, NULL, O_JWT_ISS},
    {"jwt-audience", required_argument, NULL, O_JWT_AUD},
    {"jwt-user-claim", required_argument, NULL, O_JWT_CLAIM},
    {"require-app-token", no_argument, NULL, O_REQUIRE_APP},
    {"cors-origin", required_argument, NULL, O_CORS},
    {"ticket-ttl", required_argument, NULL, O_TICKET_TTL},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"max-conns-per-ip", required_argument, NULL, O_MAX_PER_IP},
    {"head-timeout", required_argument, NULL, O_HEAD_TIMEOUT},
    {"min-body-rate", required_argument, NULL, O_MIN_BODY_RATE},
    {"max-conns", required_argument, NULL, O_MAX_CONNS},
    {"auth-address-limit", required_argument, NULL, O_ADDR_LIMIT},
    {"auth-address-window", required_argument, NULL, O_ADDR_WINDOW},
    {"auth-account-limit", required_argument, NULL, O_ACCOUNT_LIMIT},
    {"auth-account-lockout", required_argument, NULL, O_ACCOUNT_LOCKOUT},
    /* the names before the limits were split (an address was locked out) */
    {"auth-fail-limit", required_argument, NULL, O_ADDR_LIMIT},
    {"auth-fail-window", required_argument, NULL, O_ADDR_WINDOW},
    {"auth-lockout", required_argument, NULL, O_ACCOUNT_LOCKOUT},
    {"keep-sessions", no_argument, NULL, O_KEEP_SESSIONS},
    {"encryption-key-file", required_argument, NULL, O_KEY_FILE},
    {"new-key-file", required_argument, NULL, O_NEW_KEY_FILE},
    {"compress", no_argument, NULL, O_COMPRESS},
    {"modern-formats", no_argument, NULL, O_MODERN},
    {"pixel-limit", required_argument, NULL, O_PIXEL_LIMIT},
    {"image-cpu-limit", required_argument, NULL, O_IMG_CPU},
    {"variant-cache-mb", required_argument, NULL, O_VARIANT_MB},
    {"blob-grace", required_argument, NULL, O_BLOB_GRACE},
    {"cache-mb", required_argument, NULL, O_CACHE_MB},
    {"spool-mb", required_argument, NULL, O_SPOOL_MB},
    {"trusted-proxy", required_argument, NULL, O_TRUSTED_PROXY},
    {"log-limit", required_argument, NULL, O_LOG_LIMIT},
    {"log-probes", no_argument, NULL, O_LOG_PROBES},
    {"spool-dir", required_argument, NULL, O_SPOOL_DIR},
    {"db-pool", required_argument, NULL, O_DB_POOL},
    {"db-wait", required_argument, NULL, O_DB_WAIT},
    {"from", required_argument, NULL, O_FROM},
    {"to", required_argument, NULL, O_TO},
    {"force", no_argument, NULL, O_FORCE},
    {"verify-only", no_argument, NULL, O_VERIFY_ONLY},
    {"tls-cert", required_argument, NULL, O_TLS_CERT},
    {"tls-key", required_argument, NULL, O_TLS_KEY},
    {"entity", required_argument, NULL, O_ENTITY},
    {NULL, 0, NULL, 0},
};

void cli_usage(FILE *f)
{
    fputs("usage:\n"
          "  crmblob serve [--listen HOST:PORT] [--db PATH] [--threads N] [--durable]\n"
          "                [--auth basic,ticket,token,jwt,cookie] [--jwt-key ALG:FILE]...\n"
          "                [--jwt-issuer S] [--jwt-audience S] [--jwt-user-claim NAME]\n"
          "                [--require-app-token] [--cors-origin ORIGIN]... [--ticket-ttl 6h]\n"
          "                [--timeout SECONDS] [--head-timeout SECONDS] [--min-body-rate BYTES]\n"
          "                [--max-conns N] [--max-conns-per-ip N]\n"
          "                [--auth-address-limit N] [--auth-address-window 60s]\n"
          "                [--auth-account-limit N] [--auth-account-lockout 5m]\n"
          "                [--compress] [--encryption-key-file FILE] [--pixel-limit N]\n"
          "                [--variant-cache-mb N] [--modern-formats] [--blob-grace 24h]\n"
          "                [--cache-mb N] [--spool-mb N] [--trusted-proxy CIDR[,CIDR...]]...\n"
          "                [--log-limit N] [--image-cpu-limit 20s] [--log-probes]\n"
          "                [--spool-dir DIR] [--db-pool N] [--db-wait SECONDS]\n"
          "                [--tls-cert FILE --tls-key FILE]\n"
          "  crmblob user add NAME --role admin|editor|viewer [--full-name TEXT] --password-stdin\n"
          "  crmblob user list | passwd NAME --password-stdin [--keep-sessions]\n"
          "             | disable NAME [--keep-sessions] | enable NAME\n"
          "  crmblob ticket issue USER [--ttl 6h] | revoke TICKET\n"
          "  crmblob token issue USER [--expires 30d] [--label TEXT] | list | revoke ID|TOKEN\n"
          "  crmblob apptoken add NAME | list | revoke NAME\n"
          "  crmblob keygen FILE\n"
          "  crmblob rekey [--encryption-key-file OLD] [--new-key-file NEW] [--compress]\n"
          "  crmblob migrate --from WHERE --to WHERE [--force] | --verify-only\n"
          "  crmblob export DIR [--encryption-key-file FILE]\n"
          "  crmblob import DIR [--entity person|contact|product|project] [--threads N]\n"
          "                 [--encryption-key-file FILE] [--compress] [--pixel-limit N]\n"
          "every command takes --db PATH (default " DEFAULT_DB ") or a PostgreSQL URL\n"
          "  (postgresql://user@host/db, or libpq key=value words); serve listens on " DEFAULT_LISTEN
          "\n"
          "--from, --to: a SQLite file, or a PostgreSQL URL (postgresql://...) or conninfo\n"
          "migrate copies a whole data set (users, credentials, apps, metadata, BLOB records\n"
          "  with their pictures as stored, entities; ids kept; variants are a cache and not\n"
          "  copied) in one transaction of the target, then compares both sides (every row,\n"
          "  SHA-256 of every picture). A target holding anything is refused unless --force\n"
          "  (which replaces what it holds, in the same transaction). --verify-only compares.\n"
          "export writes every picture, as uploaded (decrypted, unzipped), to DIR/{entity}/{id}.{ext}\n"
          "  (a product's thumbnail record product/{id}.thumbnail.{ext}, a record no entity links\n"
          "  blob/{BlobId}.{ext}) and every BLOB record, with every field, its entity, file and\n"
          "  SHA-256, as a line of DIR/manifest.jsonl; from one read snapshot, while serve runs.\n"
          "  DIR must be empty or missing. Exit 1 when a picture could not be read (listed).\n"
          "import stores each picture of DIR as PUT Image would (same size, pixel and work limits,\n"
          "  same image worker): an export (manifest.jsonl: the records' Description, ExtraInfo\n"
          "  and ConceptualType restored; BlobIds, dates and users are the new data set's), its\n"
          "  layout without manifest, or with --entity KIND a flat folder of {id}.{ext} files.\n"
          "  A missing entity is created with that id and empty fields. A picture the entity\n"
          "  already has (same size and SHA-256) is skipped, so a rerun finishes the job.\n"
          "  --threads N files at a time (default 2). Problems are listed; exit 1 if any.\n"
          "failed sign-ins: an address may fail --auth-address-limit times (default 30) in a\n"
          "burst, then that many per --auth-address-window (default 60s); past that its failures\n"
          "are answered 429 and its passwords not remembered are not checked. --auth-account-limit\n"
          "wrong passwords (default 5) for one user from one address lock that user's password\n"
          "from there for --auth-account-lockout (default 5m). 0 turns a limit off. Valid\n"
          "tickets, tokens and sessions are never refused. user passwd and user disable end the\n"
          "user's sessions, tickets and tokens unless --keep-sessions is given.\n"
          "serve's connection limits (defaults): --timeout 30 (idle seconds), --head-timeout 10\n"
          "  (seconds for a whole request head), --min-body-rate 1024 (bytes/s over each 10 s\n"
          "  of a body; 0 = none), --max-conns 8192, --max-conns-per-ip 128 (an IPv6 /64 counts\n"
          "  as one address; trusted proxies are not counted)\n"
          "serve answers GET /health (alive) and GET /ready (database and image worker answer;\n"
          "  else 503) without credentials and without an access line unless --log-probes.\n"
          "  --spool-dir DIR: where uploads are spooled (default: the database's directory;\n"
          "  with PostgreSQL $TMPDIR, else /tmp)\n"
          "serve's database: --db-pool N connections (default 8 for SQLite, 16 for PostgreSQL);\n"
          "  --db-wait SECONDS keeps trying to reach PostgreSQL at start (default 0: exit 1 at\n"
          "  once). While PostgreSQL is down, /ready and requests answer 503 with Retry-After;\n"
          "  the server reconnects by itself.\n"
          "serve's TLS: --tls-cert FILE (PEM: the certificate, then its chain) and --tls-key FILE\n"
          "  (its PEM private key, unencrypted), both or neither: serve then speaks https only,\n"
          "  TLS 1.2 and 1.3. Both files are read at start (a bad one stops it) and again on SIGHUP.\n"
          "SIGHUP reloads what can be reloaded (the TLS certificate and key, the --jwt-key files);\n"
          "  an item that fails keeps its old configuration and the log says why. SIGTERM and\n"
          "  SIGINT stop serve after the requests in flight.\n",
          f);
}

static bool parse_count(const char *s, unsigned max, unsigned *out)
{
    int32_t n;
    if (!text_parse_pos_i32(s, strlen(s), &n) || (unsigned)n > max)
        return false;
    *out = (unsigned)n;
    return true;
}

static bool parse_seconds(const char *s, int *out)
{
    int64_t secs;
    if (!text_parse_duration(s, &secs) || secs > 365 * 86400)
        return false;
    *out = (int)secs;
    return true;
}

/* A failure limit: a count, or 0 for none (auth_config's -1). */
static bool parse_limit(const char *s, int *out)
{
    unsigned n;
    if (strcmp(s, "0") == 0) {
        *out = -1;
        return true;
    }
    if (!parse_count(s, 1000000, &n))
        return false;
    *out = (int)n;
    return true;
}

static bool add_to(const char **list, size_t *n, const char *v)
{
    if (*n >= CLI_MAX_LIST)
        return false;
    list[(*n)++] = v;
    return true;
}

/* One option of `serve` about authentication; false when malformed. */
static bool auth_option(cli_opts *o, int c, const char *v)
{
    auth_config *a = &o->auth;
    int secs;
    switch (c) {
    case O_AUTH: return auth_parse_schemes(v, &a->schemes);
    case O_JWT_KEY: return add_to(o->jwt_keys, &a->njwt_keys, v);
    case O_JWT_ISS: a->jwt_issuer = v; return true;
    case O_JWT_AUD: a->jwt_audience = v; return true;
    case O_JWT_CLAIM: a->jwt_user_claim = v; return true;
    case O_REQUIRE_APP: a->require_app_token = true; return true;
    case O_TICKET_TTL:
        if (!parse_seconds(v, &secs))
            return false;
        a->ticket_ttl_s = secs;
        return true;
    case O_ADDR_LIMIT: return parse_limit(v, &a->addr_limit);
    case O_ADDR_WINDOW: return parse_seconds(v, &a->addr_window_s) && a->addr_window_s > 0;
    case O_ACCOUNT_LIMIT: return parse_limit(v, &a->account_limit);
    case O_ACCOUNT_LOCKOUT:
        return parse_seconds(v, &a->account_lockout_s) && a->account_lockout_s > 0;
    default: return false;
    }
}

/* --trusted-proxy: at least one range (an empty value is a mistake, not "none"). */
static bool trusted_proxy_option(net_cidr_list *l, const char *v)
{
    size_t before = l->n;
    return net_cidr_list_parse(l, v) == CB_EOK && l->n > before;
}

static bool one_option(cli_opts *o, int c, const char *v)
{
    switch (c) {
    case O_DB: o->db = v; return true;
    case O_LISTEN: o->listen = v; return true;
    case O_ROLE: o->role = v; return true;
    case O_FULL_NAME: o->full_name = v; return true;
    case O_TTL: o->ttl = v; return true;
    case O_LABEL: o->label = v; return true;
    case O_DURABLE: o->durable = true; return true;
    case O_PW_STDIN: o->password_stdin = true; return true;
    case O_KEEP_SESSIONS: o->keep_sessions = true; return true;
    case O_LOG_PROBES: o->log_probes = true; return true;
    case O_SPOOL_DIR: o->spool_dir = v; return *v != '\0';
    case O_TLS_CERT: o->tls_cert = v; return *v != '\0';
    case O_TLS_KEY: o->tls_key = v; return *v != '\0';
    case O_DB_POOL: return parse_count(v, 1024, &o->db_pool);
    case O_DB_WAIT: /* 0: no wait */
        return strcmp(v, "0") == 0 ? (o->db_wait_s = 0, true) : parse_seconds(v, &o->db_wait_s);
    case O_FROM: o->from = v; return *v != '\0';
    case O_TO: o->to = v; return *v != '\0';
    case O_FORCE: o->force = true; return true;
    case O_VERIFY_ONLY: o->verify_only = true; return true;
    case O_ENTITY: o->entity = v; return *v != '\0';
    case O_THREADS: return parse_count(v, 256, &o->threads);
    case O_TIMEOUT: return parse_count(v, 86400, &o->timeout_s);
    case O_MAX_PER_IP: return parse_count(v, 65536, &o->max_conns_per_ip);
    case O_HEAD_TIMEOUT: return parse_count(v, 3600, &o->head_timeout_s);
    case O_MAX_CONNS: return parse_count(v, 1u << 20, &o->max_conns);
    case O_MIN_BODY_RATE: /* 0 turns the minimum off */
        return strcmp(v, "0") == 0 ? (o->min_body_rate = 0, true)
                                   : parse_count(v, 1u << 30, &o->min_body_rate);
    case O_CORS: return add_to(o->cors, &o->ncors, v);
    case O_KEY_FILE: o->key_file = v; return true;
    case O_NEW_KEY_FILE: o->new_key_file = v; return true;
    case O_COMPRESS: o->compress = true; return true;
    case O_MODERN: o->modern_formats = true; return true;
    case O_VARIANT_MB: return parse_count(v, 1u << 20, &o->variant_cache_mb);
    case O_SPOOL_MB: return parse_count(v, 1u << 20, &o->spool_mb);
    case O_CACHE_MB: /* 0 turns the cache off */
        return strcmp(v, "0") == 0 ? (o->cache_mb = 0, true) : parse_count(v, 1u << 16, &o->cache_mb);
    case O_TRUSTED_PROXY: return trusted_proxy_option(&o->trusted_proxies, v);
    case O_LOG_LIMIT: /* 0: no limit */
        return strcmp(v, "0") == 0 ? (o->log_limit = 0, true) : parse_count(v, 1000000, &o->log_limit);
    case O_BLOB_GRACE: return parse_seconds(v, &o->blob_grace_s) && o->blob_grace_s > 0;
    case O_IMG_CPU: /* at most an hour: the wall-clock limit is twice it */
        return parse_seconds(v, &o->image_cpu_limit_s) && o->image_cpu_limit_s > 0 &&
               o->image_cpu_limit_s <= 3600;
    case O_PIXEL_LIMIT: {
        unsigned n;
        if (!parse_count(v, 2000000000u, &n))
            return false;
        o->pixel_limit = n;
        return true;
    }
    default: return auth_option(o, c, v);
    }
}

int cli_parse(int argc, char **argv, cli_opts *o)
{
    int c;
    *o = (cli_opts){.db = DEFAULT_DB, .listen = DEFAULT_LISTEN, .blob_grace_s = DEFAULT_BLOB_GRACE,
                    .cache_mb = DEFAULT_CACHE_MB, .spool_mb = DEFAULT_SPOOL_MB,
                    .log_limit = LOG_LIMIT_LINES, .min_body_rate = DEFAULT_MIN_BODY_RATE};
    o->auth.jwt_keys = o->jwt_keys;
    optind = 1;
    opterr = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == '?' || !one_option(o, c, optarg)) {
            if (c != '?')
                fprintf(stderr, "crmblob: bad value '%s' for an option\n", optarg ? optarg : "");
            return 2;
        }
    }
    o->nargs = argc - optind;
    o->args = argv + optind;
    return 0;
}
