/*
 * migrate.c — `crmblob migrate --from WHERE --to WHERE [--force]`: moves a
 * whole data set between a SQLite file and PostgreSQL (either way, or
 * between two of a kind), then proves the copy: every row of both sides
 * compared and the SHA-256 of every picture's stored bytes.
 * `--verify-only` runs the comparison alone.
 *
 * The work is store_copy.h's: one transaction of the target (a copy cut
 * short leaves it as it was; run again, it does the whole job), the source
 * read in one snapshot and held as a server holds it. This file prints:
 * progress on stderr (a bar on a terminal, a line every 10 s otherwise),
 * the summary on stdout, each difference on stderr. Exit codes as every
 * command's: 0 done and verified, 1 refused, failed or different, 2 usage.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/text.h"
#include "store/store_copy.h"

#define MAX_REPORT 20 /* differences printed one by one; then a count */

static void progress(void *ctx, int64_t rows, int64_t bytes)
{
    cli_progress_add(ctx, rows, bytes);
}

static void say(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "crmblob: differs: %s\n", line);
}

/* "3 users, 12 credentials, ..., 2500 BLOB records (2400 pictures, 12.3 MiB), 10 Person" */
static void summary(const store_copy_counts *c, char *buf, size_t cap)
{
    size_t used = 0;
    for (int t = 0; t < STORE_COPY_NTABLES && used < cap; t++) {
        int n = snprintf(buf + used, cap - used, "%s%lld %s", t ? ", " : "", (long long)c->rows[t],
                         store_copy_table_name(t));
        used += n > 0 ? (size_t)n : 0;
        if (t == 4 && used < cap) { /* the BLOB records: their pictures */
            n = snprintf(buf + used, cap - used, " (%lld pictures, %.1f MiB)",
                         (long long)c->pictures, (double)c->bytes / (1024.0 * 1024.0));
            used += n > 0 ? (size_t)n : 0;
        }
    }
}

/* What a verification found: 0 when both sides agree. */
static int verified(const store_copy_check *c, const char *fd, const char *td)
{
    char line[1024];
    if (c->differences > 0) {
        fprintf(stderr, "crmblob: verification FAILED: %lld differences between %s and %s\n",
                (long long)c->differences, fd, td);
        return 1;
    }
    summary(&c->seen, line, sizeof(line));
    printf("verified: every row and the SHA-256 of every picture agree (%s)\n", line);
    return 0;
}

static int verify(store_copy_end *from, store_copy_end *to, const char *fd, const char *td)
{
    store_copy_check c = {.say = say, .max_report = MAX_REPORT};
    store_err e = store_copy_verify(from, to, &c);
    if (e != STORE_OK) {
        fprintf(stderr, "crmblob: verification could not read the databases: %s\n",
                store_err_name(e));
        return 1;
    }
    return verified(&c, fd, td);
}

int cli_copy(store_copy_end *from, store_copy_end *to, bool force, const char *what, const char *fd,
             const char *td)
{
    int64_t rows = 0, bytes = 0;
    store_copy_counts done;
    store_copy_check c = {.say = say, .max_report = MAX_REPORT};
    cli_progress p;
    char line[1024];
    store_err e = store_copy_size(from, &rows, &bytes);
    if (e != STORE_OK) {
        fprintf(stderr, "crmblob: cannot read the source: %s\n", store_err_name(e));
        return 1;
    }
    uint64_t began = text_monotonic_us();
    cli_progress_start(&p, stderr, what, "records", rows, bytes);
    e = store_copy_run(from, to, force, progress, &p, &done, &c);
    cli_progress_end(&p);
    if (e == STORE_CONFLICT) {
        fprintf(stderr,
                "crmblob: nothing copied: %s is not empty (--force replaces what it holds)\n",
                td); /* logged why */
        return 1;
    }
    if (e != STORE_OK && done.committed) {
        fprintf(stderr, "crmblob: verification could not read the databases: %s\n",
                store_err_name(e));
        return 1;
    }
    if (e != STORE_OK) {
        fprintf(stderr, "crmblob: %s stopped: %s; %s is as it was before (run it again)\n", what,
                store_err_name(e), td);
        return 1;
    }
    summary(&done, line, sizeof(line));
    printf("copied in %.1f s: %s\n", (double)(text_monotonic_us() - began) / 1e6, line);
    printf("variants not copied (a cache: made again on use)\n");
    return verified(&c, fd, td);
}

int cli_migrate(const cli_opts *o)
{
    store_copy_end *from = NULL, *to = NULL;
    char fd[512], td[512];
    int rc = 1;
    if (o->nargs != 0)
        return cli_usage_error(o, "unexpected argument '%s'", o->args[0]);
    if (o->from == NULL || o->to == NULL)
        return cli_usage_error(o, "needs --from and --to");
    if (o->verify_only && o->force)
        return cli_usage_error(o, "--verify-only copies nothing: --force makes no sense with it");
    if (strcmp(o->from, o->to) == 0)
        return cli_usage_error(o, "--from and --to name the same database");
    log_set_level(LOG_WARN); /* the command prints its result, not the store's chatter */
    store_describe(o->from, fd, sizeof(fd));
    store_describe(o->to, td, sizeof(td));
    if (store_copy_open(o->from, false, &from) != STORE_OK) {
        fprintf(stderr, "crmblob: cannot open the source %s\n", fd);
        goto out;
    }
    if (store_copy_open(o->to, !o->verify_only, &to) != STORE_OK) {
        fprintf(stderr, "crmblob: cannot open the target %s\n", td);
        goto out;
    }
    rc =
        o->verify_only ? verify(from, to, fd, td) : cli_copy(from, to, o->force, "migrate", fd, td);
out:
    store_copy_close(to);
    store_copy_close(from);
    return rc;
}
