/*
 * opts.c — parsing crmblob's command-line options into cli_opts.
 *
 * Numbers and durations are parsed strictly (no atoi): a malformed value is
 * a usage error, never a silent default.
 */
#include <getopt.h>
#include <string.h>

#include "cli/cli.h"
#include "core/text.h"

#define DEFAULT_DB "./data/crmblob.db"
#define DEFAULT_LISTEN "127.0.0.1:8080"
#define DEFAULT_BLOB_GRACE (24 * 3600) /* unlinked BLOBs are kept a day */
#define DEFAULT_CACHE_MB 16 /* the store's read cache: hot pictures, records, users */

enum {
    O_DB = 256, O_LISTEN, O_ROLE, O_FULL_NAME, O_THREADS, O_DURABLE, O_PW_STDIN, O_TTL, O_LABEL,
    O_AUTH, O_JWT_KEY, O_JWT_ISS, O_JWT_AUD, O_JWT_CLAIM, O_REQUIRE_APP, O_CORS, O_TICKET_TTL,
    O_TIMEOUT, O_MAX_PER_IP, O_FAIL_LIMIT, O_FAIL_WINDOW, O_LOCKOUT, O_KEY_FILE, O_NEW_KEY_FILE,
    O_COMPRESS, O_MODERN, O_PIXEL_LIMIT, O_VARIANT_MB, O_BLOB_GRACE, O_CACHE_MB, O_IMG_CPU,
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
    {"auth-fail-limit", required_argument, NULL, O_FAIL_LIMIT},
    {"auth-fail-window", required_argument, NULL, O_FAIL_WINDOW},
    {"auth-lockout", required_argument, NULL, O_LOCKOUT},
    {"encryption-key-file", required_argument, NULL, O_KEY_FILE},
    {"new-key-file", required_argument, NULL, O_NEW_KEY_FILE},
    {"compress", no_argument, NULL, O_COMPRESS},
    {"modern-formats", no_argument, NULL, O_MODERN},
    {"pixel-limit", required_argument, NULL, O_PIXEL_LIMIT},
    {"image-cpu-limit", required_argument, NULL, O_IMG_CPU},
    {"variant-cache-mb", required_argument, NULL, O_VARIANT_MB},
    {"blob-grace", required_argument, NULL, O_BLOB_GRACE},
    {"cache-mb", required_argument, NULL, O_CACHE_MB},
    {NULL, 0, NULL, 0},
};

void cli_usage(FILE *f)
{
    fputs("usage:\n"
          "  crmblob serve [--listen HOST:PORT] [--db PATH] [--threads N] [--durable]\n"
          "                [--auth basic,ticket,token,jwt,cookie] [--jwt-key ALG:FILE]...\n"
          "                [--jwt-issuer S] [--jwt-audience S] [--jwt-user-claim NAME]\n"
          "                [--require-app-token] [--cors-origin ORIGIN]... [--ticket-ttl 6h]\n"
          "                [--timeout SECONDS] [--max-conns-per-ip N]\n"
          "                [--auth-fail-limit N] [--auth-fail-window S] [--auth-lockout S]\n"
          "                [--compress] [--encryption-key-file FILE] [--pixel-limit N]\n"
          "                [--variant-cache-mb N] [--modern-formats] [--blob-grace 24h]\n"
          "                [--cache-mb N] [--image-cpu-limit 20s]\n"
          "  crmblob user add NAME --role admin|editor|viewer [--full-name TEXT] --password-stdin\n"
          "  crmblob user list | passwd NAME --password-stdin | disable NAME | enable NAME\n"
          "  crmblob ticket issue USER [--ttl 6h] | revoke TICKET\n"
          "  crmblob token issue USER [--expires 30d] [--label TEXT] | list | revoke ID|TOKEN\n"
          "  crmblob apptoken add NAME | list | revoke NAME\n"
          "  crmblob keygen FILE\n"
          "  crmblob rekey [--encryption-key-file OLD] [--new-key-file NEW] [--compress]\n"
          "every command takes --db PATH (default " DEFAULT_DB "); serve listens on " DEFAULT_LISTEN
          "\n",
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
    unsigned n;
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
    case O_FAIL_LIMIT:
        if (!parse_count(v, 1000000, &n))
            return false;
        a->fail_limit = (int)n;
        return true;
    case O_FAIL_WINDOW: return parse_seconds(v, &a->fail_window_s);
    case O_LOCKOUT: return parse_seconds(v, &a->lockout_s);
    default: return false;
    }
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
    case O_THREADS: return parse_count(v, 256, &o->threads);
    case O_TIMEOUT: return parse_count(v, 86400, &o->timeout_s);
    case O_MAX_PER_IP: return parse_count(v, 65536, &o->max_conns_per_ip);
    case O_CORS: return add_to(o->cors, &o->ncors, v);
    case O_KEY_FILE: o->key_file = v; return true;
    case O_NEW_KEY_FILE: o->new_key_file = v; return true;
    case O_COMPRESS: o->compress = true; return true;
    case O_MODERN: o->modern_formats = true; return true;
    case O_VARIANT_MB: return parse_count(v, 1u << 20, &o->variant_cache_mb);
    case O_CACHE_MB: /* 0 turns the cache off */
        return strcmp(v, "0") == 0 ? (o->cache_mb = 0, true) : parse_count(v, 1u << 16, &o->cache_mb);
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
                    .cache_mb = DEFAULT_CACHE_MB};
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
