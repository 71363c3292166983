/*
 * backup.c — `crmblob backup --to FILE` and `crmblob restore --from FILE`.
 *
 * backup: a consistent copy of --db while servers go on (store_backup:
 * SQLite's online backup API over one snapshot, or from PostgreSQL a
 * verified row copy of one snapshot), always a crmblob SQLite file, made
 * for the owner alone, whole or not at all. restore: a backup (or any
 * data set) copied into --db as `crmblob migrate` copies, verified; the
 * target is held alone, so a running server makes it refuse.
 *
 * The encryption key is never in a backup: both commands say so, with the
 * fingerprint of the key the pictures need. Output: progress on stderr (a
 * bar on a terminal), the result on stdout, failures on stderr. Exit
 * codes: 0 done, 1 refused or failed, 2 usage.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/text.h"
#include "store/store_check.h"

/* Do a and b name one file (however spelt)? A PostgreSQL conninfo names none. */
static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (strcmp(a, b) == 0)
        return true;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

typedef struct {
    cli_progress p;
    bool started;
    int64_t done;
} backup_view;

/* The display starts at the first report, when the total is known. */
static void backup_progress(void *ctx, const char *unit, int64_t done, int64_t total)
{
    backup_view *v = ctx;
    if (!v->started) {
        cli_progress_start(&v->p, stderr, "backup", unit, total, -1);
        v->started = true;
    }
    cli_progress_add(&v->p, done - v->done, 0);
    v->done = done;
}

/* What the pictures of e need to be read: said on stdout. */
static void key_story(store_copy_end *e, const char *verb)
{
    unsigned char fp[CODEC_FINGERPRINT_BYTES];
    char hex[2 * CODEC_FINGERPRINT_BYTES + 1];
    bool has = false;
    if (store_check_key(e, fp, &has) != STORE_OK) {
        printf("the encryption key's fingerprint could not be read\n");
        return;
    }
    if (!has) {
        printf("pictures are not encrypted: no key is needed to read them (keep the %s as "
               "private as the database: it holds password hashes)\n",
               verb);
        return;
    }
    for (int i = 0; i < CODEC_FINGERPRINT_BYTES; i++)
        snprintf(hex + 2 * i, 3, "%02x", fp[i]);
    printf("pictures are encrypted with the key of fingerprint %s: the key file is NOT in the "
           "%s; serve it with that --encryption-key-file (keep the key apart from the backup)\n",
           hex, verb);
}

static int backup_done(store_err e, const store_backup_info *in, const char *fd, const char *to,
                       double secs)
{
    if (e == STORE_CONFLICT) {
        fprintf(stderr, "crmblob: %s exists: nothing written (--force replaces it)\n", to);
        return 1;
    }
    if (e == STORE_UNAVAILABLE) {
        fprintf(stderr, "crmblob: %s is a database in use (a server): not replaced\n", to);
        return 1;
    }
    if (e != STORE_OK) {
        fprintf(stderr, "crmblob: backup failed: %s; nothing written to %s\n", store_err_name(e),
                to);
        return 1;
    }
    printf("backup of %s written to %s in %.1f s (%.1f MiB)\n", fd, to, secs,
           (double)in->file_bytes / (1024.0 * 1024.0));
    if (in->pages)
        printf("a page copy of one snapshot (SQLite online backup), checked with quick_check\n");
    else
        printf("a row copy of one snapshot, verified row by row and picture by picture "
               "(variants, a cache, not copied)\n");
    return 0;
}

int cli_backup(const cli_opts *o)
{
    store_copy_end *from = NULL;
    store_backup_info info;
    backup_view v = {0};
    char fd[512];
    int rc = 1;
    if (o->nargs != 0)
        return cli_usage_error(o, "unexpected argument '%s'", o->args[0]);
    if (o->to == NULL)
        return cli_usage_error(o, "needs --to FILE");
    if (same_file(o->to, o->db)) {
        fprintf(stderr, "crmblob: --to names the database itself\n");
        return 2;
    }
    log_set_level(LOG_WARN); /* the command prints its result, not the store's chatter */
    store_describe(o->db, fd, sizeof(fd));
    if (store_copy_open(o->db, false, &from) != STORE_OK) {
        fprintf(stderr, "crmblob: cannot open the database %s\n", fd);
        return 1;
    }
    uint64_t began = text_monotonic_us();
    store_err e = store_backup(from, o->to, o->force, backup_progress, &v, &info);
    if (v.started)
        cli_progress_end(&v.p);
    rc = backup_done(e, &info, fd, o->to, (double)(text_monotonic_us() - began) / 1e6);
    if (rc == 0)
        key_story(from, "backup");
    store_copy_close(from);
    return rc;
}

int cli_restore(const cli_opts *o)
{
    store_copy_end *from = NULL, *to = NULL;
    char fd[512], td[512];
    int rc = 1;
    if (o->nargs != 0)
        return cli_usage_error(o, "unexpected argument '%s'", o->args[0]);
    if (o->from == NULL)
        return cli_usage_error(o, "needs --from FILE");
    if (same_file(o->from, o->db)) {
        fprintf(stderr, "crmblob: --from names the database itself\n");
        return 2;
    }
    log_set_level(LOG_WARN);
    store_describe(o->from, fd, sizeof(fd));
    store_describe(o->db, td, sizeof(td));
    if (store_copy_open(o->from, false, &from) != STORE_OK) {
        fprintf(stderr, "crmblob: cannot open the backup %s\n", fd);
        goto out;
    }
    store_err e = store_copy_open(o->db, true, &to);
    if (e == STORE_UNAVAILABLE)
        fprintf(stderr, "crmblob: nothing restored: %s is in use (stop its servers first)\n", td);
    else if (e != STORE_OK)
        fprintf(stderr, "crmblob: cannot open the database %s\n", td);
    if (e != STORE_OK)
        goto out;
    rc = cli_copy(from, to, o->force, "restore", fd, td);
    if (rc == 0)
        key_story(from, "restored data set");
out:
    store_copy_close(to);
    store_copy_close(from);
    return rc;
}
