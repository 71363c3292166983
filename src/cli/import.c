/*
 * import.c — `crmblob import DIR`: pictures from files into the data set,
 * each stored exactly as PUT Image stores an upload (api_image_import: the
 * same byte limit, the same validation by the image worker with the same
 * pixel and work limits, the same store_image_put and product thumbnail).
 *
 * What DIR may hold:
 *  - an export (DIR/manifest.jsonl): each record of Role "image" is
 *    imported from its File, and its client fields (Description,
 *    ExtraInfo, ConceptualType) are restored; the file must match the
 *    manifest's Sha256. The system fields (BlobId, dates, users, versions,
 *    sizes, flags) are the importing data set's own: BlobIds are unique
 *    in it, and an import adds to what it holds. Thumbnail and unlinked
 *    records are counted, not imported (a product's image makes its
 *    thumbnail again);
 *  - the export's layout without a manifest: DIR/{person,contact,product,
 *    project}/{id}.{ext};
 *  - with --entity KIND, a flat folder of {id}.{ext} files.
 * A missing SQLite database is created (and said to be): an export
 * brought into a new data set. An entity that does not exist is created with that id and empty fields
 * (strings "", references 0): the picture is what the import is for, and
 * the entity's fields are not in the files.
 *
 * Invariants: a file is never held whole in memory (it is read with
 * pread by the image worker and the store; the hash is taken a piece at a
 * time); per-file problems are collected and the import goes on (exit 1
 * when there were any); a rerun skips a picture the entity already has
 * with the same bytes (same size and SHA-256), so running it again after
 * an interruption finishes the job. Files are imported by --threads
 * threads (default 2), each with its own arena, through one store and one
 * pool of image workers.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "api/api.h"
#include "cli/cli.h"
#include "core/io.h"
#include "core/log.h"
#include "core/text.h"
#include "img/img.h"

#define MAX_REPORT 100      /* problems printed one by one; then a count */
#define DEFAULT_THREADS 2
#define HASH_PIECE (256 * 1024)

typedef struct {
    model_kind kind;
    int32_t id;
    char *path;   /* the file */
    char *sha256; /* hex, from the manifest; NULL: none */
    char *desc, *extra, *ct; /* the manifest's client fields; NULL: none */
} job;

typedef struct {
    job *jobs;
    size_t n, cap;
    _Atomic size_t next;
    api_t *api;
    store_t *st;
    pthread_mutex_t mu; /* problems, progress, counts */
    cli_progress prog;
    int64_t imported, skipped, created, failed, left_out, updated;
} importer;

/* ---- problems ------------------------------------------------------------ */

static void problem(importer *im, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(importer *im, const char *path, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&im->mu);
    if (im->failed++ < MAX_REPORT)
        fprintf(stderr, "crmblob: import: %s: %s\n", path, why);
    if (im->prog.f != NULL) /* a file's problem: it is done with */
        cli_progress_add(&im->prog, 1, 0);
    pthread_mutex_unlock(&im->mu);
}

/* ---- the list of files ----------------------------------------------------- */

static int job_add(importer *im, const job *j)
{
    if (im->n == im->cap) {
        size_t cap = im->cap ? im->cap * 2 : 256;
        job *p = realloc(im->jobs, cap * sizeof(*p));
        if (p == NULL)
            return -1;
        im->jobs = p;
        im->cap = cap;
    }
    im->jobs[im->n++] = *j;
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static void job_free(job *j);

static void jobs_free(importer *im)
{
    for (size_t i = 0; i < im->n; i++)
        job_free(&im->jobs[i]);
    free(im->jobs);
}

/* Every regular file of dir as a picture of kind k; a name that is not
 * {id}.{ext} is a problem. -1 only when dir cannot be read at all. */
static int scan_flat(importer *im, const char *dir, model_kind k)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[PATH_MAX];
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        int32_t id;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (!cli_id_of_name(e->d_name, &id)) {
            problem(im, path, "not named {id}.{ext} (a positive %s id)", model_entity(k)->name);
            continue;
        }
        job j = {.kind = k, .id = id, .path = strdup(path)};
        if (j.path == NULL || job_add(im, &j) != 0) {
            free(j.path);
            closedir(d);
            return -1;
        }
    }
    closedir(d);
    return 0;
}

/* The export's layout without a manifest: DIR/{entity}/; at least one. */
static int scan_layout(importer *im, const char *dir)
{
    int found = 0;
    char sub[PATH_MAX];
    for (int k = 0; k < MODEL_KIND_COUNT; k++) {
        snprintf(sub, sizeof(sub), "%s/%s", dir, model_entity((model_kind)k)->table);
        if (scan_flat(im, sub, (model_kind)k) == 0)
            found++;
        else if (errno != ENOENT) {
            fprintf(stderr, "crmblob: import: %s: %s\n", sub, strerror(errno));
            return -1;
        }
    }
    if (found == 0)
        fprintf(stderr,
                "crmblob: import: %s holds no manifest.jsonl and no person/, contact/, product/ "
                "or project/ folder (for a flat folder of {id}.{ext} files give --entity KIND)\n",
                dir);
    return found > 0 ? 0 : -1;
}

/* One manifest line as a job (*add) or nothing: a record not imported is
 * counted, a line that is not a record is a problem. -1: no memory. */
static int manifest_job(importer *im, const char *dir, const char *line, size_t len, int no)
{
    json_t *hold = NULL;
    cli_manifest_rec r;
    const char *why;
    char where[64], path[PATH_MAX + CLI_MANIFEST_FILE_MAX];
    int rc = 0;
    switch (cli_manifest_parse(line, len, &hold, &r, &why)) {
    case CLI_MANIFEST_SKIP: im->left_out++; break;
    case CLI_MANIFEST_BAD:
        snprintf(where, sizeof(where), "manifest.jsonl line %d", no);
        problem(im, where, "%s", why);
        break;
    case CLI_MANIFEST_IMAGE: {
        snprintf(path, sizeof(path), "%s/%s", dir, r.file);
        job j = {.kind = r.kind, .id = r.id, .path = strdup(path),
                 .sha256 = dup_or_null(r.sha256), .desc = dup_or_null(r.desc),
                 .extra = dup_or_null(r.extra), .ct = dup_or_null(r.ct)};
        if (j.path == NULL || job_add(im, &j) != 0)
            rc = -1;
        break;
    }
    }
    json_decref(hold);
    return rc;
}

/* The rest of a line too long to read (never held: memory stays bounded
 * whatever the file holds). */
static void skip_line(FILE *f)
{
    int c;
    while ((c = getc(f)) != EOF && c != '\n')
        ;
}

static int scan_manifest(importer *im, const char *dir, FILE *f)
{
    char *line = malloc(CLI_MANIFEST_LINE_MAX + 2);
    int no = 0, rc = line == NULL ? -1 : 0;
    while (rc == 0 && fgets(line, CLI_MANIFEST_LINE_MAX + 2, f) != NULL) {
        size_t len = strlen(line); /* a NUL inside ends it: jansson refuses the rest anyway */
        if (len == CLI_MANIFEST_LINE_MAX + 1 && line[len - 1] != '\n')
            skip_line(f); /* cli_manifest_parse refuses it by its length */
        rc = manifest_job(im, dir, line, len, ++no);
    }
    free(line);
    return rc;
}

static int job_cmp(const void *a, const void *b)
{
    const job *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return strcmp(x->path, y->path);
}

static void job_free(job *j)
{
    free(j->path);
    free(j->sha256);
    free(j->desc);
    free(j->extra);
    free(j->ct);
}

/* Files that name the same entity (person/6.jpg and person/6.png) are
 * problems, and none of them is imported: which one would win depends on
 * the order the threads take them. The jobs end sorted by entity. */
static void drop_twins(importer *im)
{
    size_t out = 0;
    qsort(im->jobs, im->n, sizeof(*im->jobs), job_cmp);
    for (size_t i = 0, end; i < im->n; i = end) {
        for (end = i + 1; end < im->n && im->jobs[end].kind == im->jobs[i].kind &&
                          im->jobs[end].id == im->jobs[i].id;
             end++)
            ;
        for (size_t t = i; end - i > 1 && t < end; t++) {
            problem(im, im->jobs[t].path, "%zu files name %s %d; none is imported", end - i,
                    model_entity(im->jobs[t].kind)->name, im->jobs[t].id);
            job_free(&im->jobs[t]);
        }
        if (end - i == 1)
            im->jobs[out++] = im->jobs[i];
    }
    im->n = out;
}

/* Fills im's jobs from DIR: 0, or 1 (said why). */
static int scan(importer *im, const char *dir, int entity)
{
    char mpath[PATH_MAX];
    snprintf(mpath, sizeof(mpath), "%s/manifest.jsonl", dir);
    FILE *m = entity < 0 ? fopen(mpath, "re") : NULL;
    int rc;
    if (m != NULL) {
        rc = scan_manifest(im, dir, m);
        fclose(m);
    } else if (entity >= 0) {
        if ((rc = scan_flat(im, dir, (model_kind)entity)) != 0)
            fprintf(stderr, "crmblob: import: %s: %s\n", dir, strerror(errno));
    } else
        rc = scan_layout(im, dir);
    drop_twins(im);
    return rc == 0 ? 0 : 1;
}

/* ---- one file ---------------------------------------------------------------- */

/* SHA-256 of fd[0, size) as hex; false when it cannot be read. */
static bool hash_fd(int fd, int64_t size, char hex[2 * crypto_hash_sha256_BYTES + 1])
{
    crypto_hash_sha256_state st;
    unsigned char h[crypto_hash_sha256_BYTES];
    unsigned char *buf = malloc(HASH_PIECE);
    bool ok = buf != NULL;
    crypto_hash_sha256_init(&st);
    for (int64_t off = 0; ok && off < size; off += HASH_PIECE) {
        size_t n = size - off < HASH_PIECE ? (size_t)(size - off) : HASH_PIECE;
        ok = io_pread_full(fd, buf, n, off) == n;
        if (ok)
            crypto_hash_sha256_update(&st, buf, n);
    }
    free(buf);
    crypto_hash_sha256_final(&st, h);
    sodium_bin2hex(hex, 2 * sizeof(h) + 1, h, sizeof(h));
    return ok;
}

/* The SHA-256 (hex) of the picture entity (k, id) has now, when it has one
 * of `size` plain bytes; false otherwise (or when it cannot be read: the
 * import then stores the file, which replaces it). */
static bool stored_hash(importer *im, arena_t *a, const job *j, int64_t size, char *hex)
{
    model_blob b;
    store_pic_view v = {.fd = -1};
    if (store_image_info(im->st, a, j->kind, j->id, &b) != STORE_OK || b.blob_id == 0 ||
        b.blob_size <= 0 || b.original_size != size)
        return false;
    bool ok = store_image_get_shared(im->st, a, j->kind, j->id, &b, &v) == STORE_OK &&
              v.len == (size_t)size;
    if (ok && v.bytes != NULL) {
        unsigned char h[crypto_hash_sha256_BYTES];
        crypto_hash_sha256(h, v.bytes, v.len);
        sodium_bin2hex(hex, 2 * sizeof(h) + 1, h, sizeof(h));
    } else if (ok)
        ok = hash_fd(v.fd, size, hex);
    if (v.rel.release != NULL)
        v.rel.release(v.rel.cls);
    return ok;
}

typedef struct {
    importer *im;
    arena_t *a;
    const job *j;
    bool failed; /* the entity could not be made: rc says why */
    store_err rc;
} entity_ctx;

/* Job's entity created when missing, with empty fields (api_import's
 * `accepted`: the picture passed validation). */
static store_err ensure_entity_of(importer *im, arena_t *a, const job *j)
{
    model_entity_t e = {.kind = j->kind, .id = j->id};
    const model_entity_def *d = model_entity(j->kind);
    store_err rc = store_entity_get(im->st, a, j->kind, j->id, &e);
    if (rc != STORE_ABSENT)
        return rc;
    e = (model_entity_t){.kind = j->kind, .id = j->id};
    for (int i = 0; i < d->nfields; i++)
        if (d->fields[i].type == MODEL_FT_STRING)
            e.v[i].s = "";
    rc = store_entity_create(im->st, &e);
    if (rc == STORE_OK) {
        pthread_mutex_lock(&im->mu);
        im->created++;
        pthread_mutex_unlock(&im->mu);
    }
    return rc == STORE_CONFLICT ? STORE_OK : rc; /* made meanwhile by another */
}

static store_err ensure_entity(void *ctx)
{
    entity_ctx *c = ctx;
    c->rc = ensure_entity_of(c->im, c->a, c->j);
    c->failed = c->rc != STORE_OK;
    return c->rc;
}

static bool differs(const char *want, const char *have)
{
    return want != NULL && strcmp(want, have) != 0;
}

/* The manifest's client fields onto the record, where they differ. */
static store_err restore_fields(importer *im, arena_t *a, const job *j)
{
    model_blob b;
    store_err rc = store_image_info(im->st, a, j->kind, j->id, &b);
    if (rc != STORE_OK || !(differs(j->desc, b.description) || differs(j->extra, b.extra_info) ||
                            differs(j->ct, b.conceptual_type)))
        return rc;
    model_blob_edit ed = {j->desc, j->extra, j->ct};
    pthread_mutex_lock(&im->mu);
    im->updated++;
    pthread_mutex_unlock(&im->mu);
    return store_image_info_put(im->st, a, j->kind, j->id, &ed, 0, STORE_ANY, &b);
}

static void count(importer *im, int64_t *what, int64_t bytes)
{
    pthread_mutex_lock(&im->mu);
    (*what)++;
    cli_progress_add(&im->prog, 1, bytes);
    pthread_mutex_unlock(&im->mu);
}

/* The picture of open file fd (size bytes) stored as j's entity's image,
 * or skipped when it has it already. */
static void store_one(importer *im, arena_t *a, const job *j, int fd, int64_t size)
{
    char have[2 * crypto_hash_sha256_BYTES + 1], mine[sizeof(have)], why[256];
    model_blob out;
    store_err se = STORE_OK;
    if (!hash_fd(fd, size, mine)) {
        problem(im, j->path, "cannot read: %s", strerror(errno));
        return;
    }
    if (j->sha256 != NULL && strcmp(j->sha256, mine) != 0) {
        problem(im, j->path, "its SHA-256 is not the manifest's (changed or damaged)");
        return;
    }
    bool same = stored_hash(im, a, j, size, have) && strcmp(have, mine) == 0;
    entity_ctx ec = {.im = im, .a = a, .j = j};
    api_import in = {.kind = j->kind, .id = j->id, .fd = fd, .size = size, .user_id = 0,
                     .accepted = ensure_entity, .ctx = &ec};
    cb_err e = same ? CB_EOK : api_image_import(im->api, a, &in, &out, &se, why, sizeof(why));
    if (e != CB_EOK) {
        problem(im, j->path, "refused as an upload would be: %s", why);
        return;
    }
    if (se == STORE_OK && ec.failed) {
        problem(im, j->path, "%s %d cannot be created: %s", model_entity(j->kind)->name, j->id,
                store_err_name(ec.rc));
        return;
    }
    if (se == STORE_OK)
        se = restore_fields(im, a, j);
    if (se != STORE_OK) {
        problem(im, j->path, "the store failed: %s", store_err_name(se));
        return;
    }
    count(im, same ? &im->skipped : &im->imported, size);
}

static void import_one(importer *im, arena_t *a, const job *j)
{
    struct stat sb;
    int fd = open(j->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        problem(im, j->path, "cannot open: %s", strerror(errno));
    else if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        problem(im, j->path, "not a regular file");
    else if (sb.st_size == 0)
        problem(im, j->path, "empty");
    else
        store_one(im, a, j, fd, sb.st_size);
    if (fd >= 0)
        close(fd);
}

static void *worker(void *arg)
{
    importer *im = arg;
    arena_t *a = arena_create();
    size_t i;
    while (a != NULL && (i = atomic_fetch_add(&im->next, 1)) < im->n) {
        arena_reset(a);
        import_one(im, a, &im->jobs[i]);
    }
    arena_destroy(a);
    return NULL;
}

/* ---- the command --------------------------------------------------------------- */

static int run_threads(importer *im, unsigned n)
{
    pthread_t t[256];
    unsigned started = 0;
    cli_progress_start(&im->prog, stderr, "import", "pictures", (int64_t)im->n, -1);
    while (started < n && pthread_create(&t[started], NULL, worker, im) == 0)
        started++;
    if (started == 0)
        worker(im);
    for (unsigned i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    cli_progress_end(&im->prog);
    return 0;
}

static int report(const importer *im)
{
    printf("imported %lld pictures, skipped %lld already there, created %lld entities, "
           "restored the fields of %lld records; %lld records not imported (thumbnails, "
           "unlinked or without bytes); %lld problems\n",
           (long long)im->imported, (long long)im->skipped, (long long)im->created,
           (long long)im->updated, (long long)im->left_out, (long long)im->failed);
    if (im->failed > MAX_REPORT)
        fprintf(stderr, "crmblob: import: %lld more problems\n",
                (long long)(im->failed - MAX_REPORT));
    return im->failed > 0 ? 1 : 0;
}

/* The image worker and the API handle the import stores through. */
static int start_pipeline(const cli_opts *o, importer *im)
{
    char worker_buf[PATH_MAX];
    img_config ic = {.pixel_limit = o->pixel_limit,
                     .cpu_limit_s = o->image_cpu_limit_s,
                     .worker = cli_worker_path(worker_buf, sizeof(worker_buf))};
    if (img_init(&ic) != CB_EOK) {
        fprintf(stderr, "crmblob: cannot use the image worker %s (set CRMBLOB_IMG_WORKER)\n",
                worker_buf);
        return 1;
    }
    api_config ac = {.spool_dir = store_spool_hint(im->st),
                     .variant_cache_bytes = (int64_t)o->variant_cache_mb * 1024 * 1024};
    return api_create(im->st, NULL, &ac, &im->api) == CB_EOK ? 0 : 1;
}

int cli_import(const cli_opts *o)
{
    importer im = {.mu = PTHREAD_MUTEX_INITIALIZER};
    codec_t *codec = NULL;
    int rc = 1, entity = -1;
    bool img = false;
    if (o->nargs != 1)
        return cli_usage_error(o, "needs one DIR");
    if (o->entity != NULL &&
        (entity = model_kind_from_name(o->entity, strlen(o->entity))) < 0) {
        fprintf(stderr, "crmblob: --entity: '%s' is not person, contact, product or project\n",
                o->entity);
        return 2;
    }
    log_set_level(LOG_WARN);
    if (scan(&im, o->args[0], entity) != 0 || cli_make_codec(o, &codec) != 0 ||
        cli_open_data_set(o, codec, true, &im.st) != 0)
        goto out;
    if ((img = start_pipeline(o, &im) == 0))
        run_threads(&im, o->threads ? o->threads : DEFAULT_THREADS);
    rc = img ? report(&im) : 1;
out:
    api_destroy(im.api);
    if (img)
        img_shutdown();
    store_close(im.st);
    codec_destroy(codec);
    jobs_free(&im);
    return rc;
}
