/*
 * import.c — pictures from an export (a directory, or a tar archive read
 * front to back) into the data set, each stored through the upload path
 * the caller hands in (bulk_put_fn: `crmblob import` and the server pass
 * api_image_import, PUT Image's path: the same byte limit, the same
 * validation by the image worker, the same store_image_put and product
 * thumbnail). The code `crmblob import` and the job crmblob.import share.
 *
 * What a source may hold:
 *  - an export (manifest.jsonl): each record of Role "image" is imported
 *    from its File and its client fields (Description, ExtraInfo,
 *    ConceptualType) restored; Role "library" records go back into the
 *    project image library; the file must match the manifest's Sha256.
 *    System fields (BlobId, dates, users, versions) are the importing data
 *    set's own. Thumbnail and unlinked records are counted, not imported;
 *  - the export's layout without a manifest: {person,contact,product,
 *    project}/{id}.{ext};
 *  - with an entity kind given, a flat folder of {id}.{ext} files.
 * An entity that does not exist is created with that id and empty fields
 * once its picture was accepted (a refused picture leaves nothing).
 *
 * A tar archive is unpacked into a spool directory first, then imported as
 * a directory, and the spool removed. Why not read the manifest first: our
 * archives carry manifest.jsonl as their LAST member (the export writes it
 * while it walks), and the job's source (a store_reader of an uploaded
 * record or a task's output) reads front to back only; a seek-first path
 * for files would be a second way of doing the same with its own bugs.
 * The spool costs disk about the archive's size, never memory (members
 * stream through a 64 KiB buffer), and the checks and rerun semantics are
 * the directory's, once. What unpacking may create is bounded so that a
 * small archive cannot grow the spool beyond its own size: a member's name
 * has at most NAME_PARTS_MAX parts and NAME_LEN_MAX characters, at most
 * DIRS_MAX folders are made, empty members are not created (but the
 * manifest), at most ODD_MAX members make nothing, and before each file
 * the spool's file system must keep half of the bytes and inodes it had
 * free when the unpack began; past any bound the import fails naming the
 * member. The spool is a folder per import in this user's private folder
 * under the spool directory (see "the spool folders").
 *
 * Invariants: a picture is never held whole in memory (the worker and the
 * store pread it; its hash is taken a piece at a time); a manifest's
 * pictures are held CHUNK at a time (a small entry each: kind, id, path,
 * the manifest's short fields), so memory is bounded whatever the export's
 * size; a folder without manifest is listed whole (an entry per file: two
 * files naming one entity are refused, wherever they are; an archive's at
 * most FLAT_ARCHIVE_MAX); per-picture
 * problems are reported through hooks->problem and the rest imported; a
 * rerun skips a picture the entity already has with the same size and
 * SHA-256; hooks->cancelled is polled before each picture and each member
 * (and every COUNT_POLL manifest lines of the first, counting pass),
 * so a stop ends the run between pictures (BULK_CANCELLED). Pictures are
 * stored by o->threads threads, each with its own arena; the hooks are
 * called under one mutex, never from two threads at once.
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
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <sodium.h>

#include "bulk/bulk.h"
#include "core/io.h"

#define DEFAULT_THREADS 2
#define MAX_THREADS 64
#define HASH_PIECE (256 * 1024)
#define COPY_PIECE (64 * 1024)
#define CHUNK 4096 /* pictures of a manifest held at a time */
/* Pictures of an archive without manifest (listed whole: an entry per
 * file); our exports carry a manifest, read CHUNK at a time. */
#define FLAT_ARCHIVE_MAX 50000

typedef struct {
    model_kind kind;
    int32_t id;
    bool library;
    char *path;              /* the file */
    char *sha256;            /* hex, from the manifest; NULL: none */
    char *desc, *extra, *ct; /* the manifest's client fields; NULL: none */
} pic;

typedef struct {
    pic *pics;
    size_t n, cap;
    _Atomic size_t next;
    atomic_bool stop;
    store_t *st;
    const bulk_import_opts *o;
    const bulk_hooks *h;
    size_t strip;       /* characters of a spool path not shown in problems */
    pthread_mutex_t mu; /* the hooks, the counts */
    bool started;
    bulk_import_stats *s;
} importer;

/* ---- problems ------------------------------------------------------------ */

/* A problem with path; item: it is one of the pictures counted in the
 * run's total, done with now (a step). */
static void say(importer *im, bool item, const char *path, const char *why)
{
    char line[PATH_MAX + 600];
    snprintf(line, sizeof(line), "%s: %s", strlen(path) > im->strip ? path + im->strip : path, why);
    pthread_mutex_lock(&im->mu);
    im->s->problems++;
    if (im->h->problem != NULL)
        im->h->problem(im->h->ctx, line);
    if (item && im->started && im->h->step != NULL)
        im->h->step(im->h->ctx, 1, 0);
    pthread_mutex_unlock(&im->mu);
}

static void problem(importer *im, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A picture's problem (or, before the run starts, the source's). */
static void problem(importer *im, const char *path, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    say(im, true, path, why);
}

static void note(importer *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(importer *im, const char *fmt, ...)
{
    char line[BULK_TAR_NAME_MAX + 200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&im->mu);
    if (im->h->note != NULL)
        im->h->note(im->h->ctx, line);
    pthread_mutex_unlock(&im->mu);
}

static bool cancelled(importer *im)
{
    if (atomic_load(&im->stop))
        return true;
    pthread_mutex_lock(&im->mu);
    bool c = im->h->cancelled != NULL && im->h->cancelled(im->h->ctx);
    pthread_mutex_unlock(&im->mu);
    if (c)
        atomic_store(&im->stop, true);
    return c;
}

/* ---- the list of pictures ------------------------------------------------------ */

static int pic_add(importer *im, const pic *p)
{
    if (im->n == im->cap) {
        size_t cap = im->cap ? im->cap * 2 : 256;
        pic *q = realloc(im->pics, cap * sizeof(*q));
        if (q == NULL)
            return -1;
        im->pics = q;
        im->cap = cap;
    }
    im->pics[im->n++] = *p;
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static void pic_free(pic *p)
{
    free(p->path);
    free(p->sha256);
    free(p->desc);
    free(p->extra);
    free(p->ct);
}

static void pics_free(importer *im)
{
    for (size_t i = 0; i < im->n; i++)
        pic_free(&im->pics[i]);
    free(im->pics);
}

/* Every regular file of dir as a picture of kind k; a name that is not
 * {id}.{ext} is a problem. -1 only when dir cannot be read at all; -2
 * (said why) past FLAT_ARCHIVE_MAX pictures of an archive. */
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
        if (!bulk_id_of_name(e->d_name, &id)) {
            problem(im, path, "not named {id}.{ext} (a positive %s id)", model_entity(k)->name);
            continue;
        }
        if (im->strip > 0 && im->n >= FLAT_ARCHIVE_MAX) {
            problem(im, "the archive",
                    "more than %d pictures without a manifest.jsonl: import it with the "
                    "export's manifest, or in parts",
                    FLAT_ARCHIVE_MAX);
            closedir(d);
            return -2;
        }
        pic p = {.kind = k, .id = id, .path = strdup(path)};
        if (p.path == NULL || pic_add(im, &p) != 0) {
            free(p.path);
            closedir(d);
            return -1;
        }
    }
    closedir(d);
    return 0;
}

/* The export's layout without a manifest: {entity}/; at least one. */
static int scan_layout(importer *im, const char *dir)
{
    int found = 0;
    char sub[PATH_MAX];
    for (int k = 0; k < MODEL_KIND_COUNT; k++) {
        snprintf(sub, sizeof(sub), "%s/%s", dir, model_entity((model_kind)k)->table);
        int rc = scan_flat(im, sub, (model_kind)k);
        if (rc == 0)
            found++;
        else if (rc == -2)
            return -1;
        else if (errno != ENOENT) {
            problem(im, sub, "%s", strerror(errno));
            return -1;
        }
    }
    if (found == 0)
        problem(im, strlen(dir) >= im->strip ? dir : "the archive",
                "holds no manifest.jsonl and no person/, contact/, product/ or project/ folder "
                "(for a flat folder of {id}.{ext} files give the entity kind)");
    return found > 0 ? 0 : -1;
}

/* One manifest line as a picture, or nothing: a record not imported is
 * counted, a line that is not a record is a problem. -1: no memory. */
static int manifest_pic(importer *im, const char *dir, const char *line, size_t len, int no)
{
    json_t *hold = NULL;
    bulk_manifest_rec r;
    const char *why;
    char where[64], path[PATH_MAX + BULK_MANIFEST_FILE_MAX];
    int rc = 0;
    bulk_manifest_kind k = bulk_manifest_parse(line, len, &hold, &r, &why);
    switch (k) {
    case BULK_MANIFEST_SKIP:
        im->s->left_out++;
        break;
    case BULK_MANIFEST_BAD:
        snprintf(where, sizeof(where), "manifest.jsonl line %d", no);
        say(im, false, where, why); /* no picture of the total */
        break;
    case BULK_MANIFEST_IMAGE:
    case BULK_MANIFEST_LIBRARY: {
        snprintf(path, sizeof(path), "%s/%s", dir, r.file);
        pic p = {.kind = r.kind,
                 .id = r.id,
                 .library = k == BULK_MANIFEST_LIBRARY,
                 .path = strdup(path),
                 .sha256 = dup_or_null(r.sha256),
                 .desc = dup_or_null(r.desc),
                 .extra = dup_or_null(r.extra),
                 .ct = dup_or_null(r.ct)};
        if (p.path == NULL || pic_add(im, &p) != 0) {
            pic_free(&p);
            rc = -1;
        }
        break;
    }
    }
    json_decref(hold);
    return rc;
}

/* The rest of a line too long to read (never held). */
static void skip_line(FILE *f)
{
    int c;
    while ((c = getc_unlocked(f)) != EOF && c != '\n')
        ;
}

/* The next line of f into line (its length, counted as read: a NUL inside
 * is a byte of it, which the record's parse refuses), or -1 at the end. A
 * line longer than a record's is cut (and refused by bulk_manifest_parse
 * by its length), its rest skipped unread. */
static ssize_t next_line(FILE *f, char *line)
{
    size_t len = 0;
    int c = EOF;
    while (len < BULK_MANIFEST_LINE_MAX + 1 && (c = getc_unlocked(f)) != EOF) {
        line[len++] = (char)c;
        if (c == '\n')
            break;
    }
    if (len == 0)
        return -1;
    line[len] = '\0';
    if (len == BULK_MANIFEST_LINE_MAX + 1 && line[len - 1] != '\n')
        skip_line(f);
    return (ssize_t)len;
}

#define COUNT_POLL 4096 /* manifest lines counted between two polls of a stop */

/* The pictures f names (a first pass, for the run's total); a stop ends
 * it early (the run then ends before its first picture). */
static int64_t count_manifest(importer *im, FILE *f, char *line)
{
    int64_t n = 0, lines = 0;
    ssize_t len;
    while ((++lines % COUNT_POLL != 0 || !cancelled(im)) && (len = next_line(f, line)) >= 0) {
        json_t *hold = NULL;
        bulk_manifest_rec r;
        const char *why;
        bulk_manifest_kind k = bulk_manifest_parse(line, (size_t)len, &hold, &r, &why);
        n += k == BULK_MANIFEST_IMAGE || k == BULK_MANIFEST_LIBRARY;
        json_decref(hold);
    }
    return n;
}

/* Up to CHUNK pictures of f into im->pics (*eof: f is read). -1: no memory. */
static int scan_manifest(importer *im, const char *dir, FILE *f, char *line, int *no, bool *eof)
{
    ssize_t len = 0;
    int rc = 0;
    while (rc == 0 && im->n < CHUNK && (len = next_line(f, line)) >= 0)
        rc = manifest_pic(im, dir, line, (size_t)len, ++*no);
    *eof = len < 0;
    return rc;
}

static int pic_cmp(const void *a, const void *b)
{
    const pic *x = a, *y = b;
    if (x->library != y->library)
        return x->library ? 1 : -1;
    if (!x->library && x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    if (!x->library && x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return strcmp(x->path, y->path);
}

static bool twins(const pic *a, const pic *b)
{
    return !a->library && !b->library && a->kind == b->kind && a->id == b->id;
}

/* Files that name the same entity (person/6.jpg and person/6.png) are
 * problems, and none of them is imported: which one would win would
 * depend on the order the threads take them. */
static void drop_twins(importer *im)
{
    size_t out = 0;
    if (im->n > 1)
        qsort(im->pics, im->n, sizeof(*im->pics), pic_cmp);
    for (size_t i = 0, end; i < im->n; i = end) {
        for (end = i + 1; end < im->n && twins(&im->pics[end], &im->pics[i]); end++)
            ;
        for (size_t t = i; end - i > 1 && t < end; t++) {
            problem(im, im->pics[t].path, "%zu files name %s %d; none is imported", end - i,
                    model_entity(im->pics[t].kind)->name, im->pics[t].id);
            pic_free(&im->pics[t]);
        }
        if (end - i == 1)
            im->pics[out++] = im->pics[i];
    }
    im->n = out;
}

/* Fills im's pictures from a folder without manifest: 0, or -1 (said why). */
static int scan(importer *im, const char *dir)
{
    int rc;
    if (im->o->entity >= 0) {
        if ((rc = scan_flat(im, dir, (model_kind)im->o->entity)) == -1)
            problem(im, strlen(dir) >= im->strip ? dir : "the archive", "%s", strerror(errno));
        rc = rc != 0 ? -1 : 0;
    } else
        rc = scan_layout(im, dir);
    drop_twins(im);
    return rc;
}

/* ---- one picture ---------------------------------------------------------------- */

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

/* The SHA-256 (hex) of the picture of p's entity now, when it has one of
 * `size` plain bytes; false otherwise (or when it cannot be read: the
 * import then stores the file, which replaces it). */
static bool stored_hash(importer *im, arena_t *a, const pic *p, int64_t size, char *hex)
{
    model_blob b;
    store_pic_view v = {.fd = -1};
    if (store_image_info(im->st, a, p->kind, p->id, &b) != STORE_OK || b.blob_id == 0 ||
        b.blob_size <= 0 || b.original_size != size)
        return false;
    bool ok = store_image_get_shared(im->st, a, p->kind, p->id, &b, &v) == STORE_OK &&
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
    const pic *p;
    bool failed; /* the entity could not be made: rc says why */
    store_err rc;
} entity_ctx;

static void add_count(importer *im, int64_t *what)
{
    pthread_mutex_lock(&im->mu);
    (*what)++;
    pthread_mutex_unlock(&im->mu);
}

/* The picture's entity created when missing, with empty fields (the
 * put's `accepted`: the picture passed validation). */
static store_err ensure_entity_of(importer *im, arena_t *a, const pic *p)
{
    model_entity_t e = {.kind = p->kind, .id = p->id};
    const model_entity_def *d = model_entity(p->kind);
    store_err rc = store_entity_get(im->st, a, p->kind, p->id, &e);
    if (rc != STORE_ABSENT)
        return rc;
    e = (model_entity_t){.kind = p->kind, .id = p->id};
    for (int i = 0; i < d->nfields; i++)
        if (d->fields[i].type == MODEL_FT_STRING)
            e.v[i].s = "";
    rc = store_entity_create(im->st, &e);
    if (rc == STORE_OK)
        add_count(im, &im->s->created);
    return rc == STORE_CONFLICT ? STORE_OK : rc; /* made meanwhile by another */
}

static store_err ensure_entity(void *ctx)
{
    entity_ctx *c = ctx;
    c->rc = ensure_entity_of(c->im, c->a, c->p);
    c->failed = c->rc != STORE_OK;
    return c->rc;
}

static bool differs(const char *want, const char *have)
{
    return want != NULL && strcmp(want, have) != 0;
}

/* The manifest's client fields onto the record, where they differ. */
static store_err restore_fields(importer *im, arena_t *a, const pic *p)
{
    model_blob b;
    store_err rc = store_image_info(im->st, a, p->kind, p->id, &b);
    if (rc != STORE_OK || !(differs(p->desc, b.description) || differs(p->extra, b.extra_info) ||
                            differs(p->ct, b.conceptual_type)))
        return rc;
    model_blob_edit ed = {p->desc, p->extra, p->ct};
    add_count(im, &im->s->updated);
    return store_image_info_put(im->st, a, p->kind, p->id, &ed, 0, STORE_ANY, &b);
}

static void done(importer *im, int64_t *what, int64_t bytes)
{
    pthread_mutex_lock(&im->mu);
    (*what)++;
    if (im->h->step != NULL)
        im->h->step(im->h->ctx, 1, bytes);
    pthread_mutex_unlock(&im->mu);
}

/* The library has a record of these bytes (size and SHA-256) already. */
static bool in_library(importer *im, arena_t *a, int64_t size, const char *hex)
{
    int32_t after = 0;
    model_blob *page;
    size_t n;
    bool more = true;
    while (more && store_library_list(im->st, a, after, 100, &page, &n, &more) == STORE_OK) {
        for (size_t i = 0; i < n; i++) {
            void *bytes = NULL;
            size_t len = 0;
            model_blob b;
            unsigned char h[crypto_hash_sha256_BYTES];
            char mine[2 * sizeof(h) + 1];
            after = page[i].blob_id;
            if (page[i].original_size != size ||
                store_blob_content_get(im->st, a, page[i].blob_id, &b, &bytes, &len) != STORE_OK)
                continue;
            crypto_hash_sha256(h, bytes, len);
            free(bytes);
            sodium_bin2hex(mine, sizeof(mine), h, sizeof(h));
            if (strcmp(mine, hex) == 0)
                return true;
        }
    }
    return false;
}

/* A library picture: a new record through the upload path, then into
 * the library (taken out again when it cannot join). */
static void store_library_pic(importer *im, arena_t *a, const pic *p, int fd, int64_t size,
                              const char *hex)
{
    char why[256];
    model_blob out;
    store_err se = STORE_OK;
    if (in_library(im, a, size, hex)) {
        done(im, &im->s->skipped, size);
        return;
    }
    bulk_picture in = {.library = true,
                       .fd = fd,
                       .size = size,
                       .description = p->desc,
                       .extra_info = p->extra,
                       .conceptual_type = p->ct};
    if (im->o->put(im->o->put_ctx, a, &in, &out, &se, why, sizeof(why)) != CB_EOK) {
        problem(im, p->path, "refused as an upload would be: %s", why);
        return;
    }
    if (se == STORE_OK && (se = store_library_add(im->st, out.blob_id)) != STORE_OK)
        (void)store_blob_delete(im->st, out.blob_id);
    if (se != STORE_OK) {
        problem(im, p->path, "the store failed: %s", store_err_name(se));
        return;
    }
    done(im, &im->s->library, size);
}

/* The picture of open file fd (size bytes) stored as p's entity's image,
 * or skipped when it has it already. */
static void store_one(importer *im, arena_t *a, const pic *p, int fd, int64_t size)
{
    char have[2 * crypto_hash_sha256_BYTES + 1], mine[sizeof(have)], why[256];
    model_blob out;
    store_err se = STORE_OK;
    if (!hash_fd(fd, size, mine)) {
        problem(im, p->path, "cannot read: %s", strerror(errno));
        return;
    }
    if (p->sha256 != NULL && strcmp(p->sha256, mine) != 0) {
        problem(im, p->path, "its SHA-256 is not the manifest's (changed or damaged)");
        return;
    }
    if (p->library) {
        store_library_pic(im, a, p, fd, size, mine);
        return;
    }
    bool same = stored_hash(im, a, p, size, have) && strcmp(have, mine) == 0;
    entity_ctx ec = {.im = im, .a = a, .p = p};
    bulk_picture in = {.kind = p->kind,
                       .id = p->id,
                       .fd = fd,
                       .size = size,
                       .accepted = ensure_entity,
                       .ctx = &ec};
    cb_err e = same ? CB_EOK : im->o->put(im->o->put_ctx, a, &in, &out, &se, why, sizeof(why));
    if (e != CB_EOK) {
        problem(im, p->path, "refused as an upload would be: %s", why);
        return;
    }
    if (se == STORE_OK && ec.failed) {
        problem(im, p->path, "%s %d cannot be created: %s", model_entity(p->kind)->name, p->id,
                store_err_name(ec.rc));
        return;
    }
    if (se == STORE_OK)
        se = restore_fields(im, a, p);
    if (se != STORE_OK) {
        problem(im, p->path, "the store failed: %s", store_err_name(se));
        return;
    }
    done(im, same ? &im->s->skipped : &im->s->imported, size);
}

static void import_one(importer *im, arena_t *a, const pic *p)
{
    struct stat sb;
    int fd = open(p->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        problem(im, p->path, "cannot open: %s", strerror(errno));
    else if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        problem(im, p->path, "not a regular file");
    else if (sb.st_size == 0)
        problem(im, p->path, "empty");
    else
        store_one(im, a, p, fd, sb.st_size);
    if (fd >= 0)
        close(fd);
}

static void *worker(void *arg)
{
    importer *im = arg;
    arena_t *a = arena_create();
    size_t i;
    while (a != NULL && !cancelled(im) && (i = atomic_fetch_add(&im->next, 1)) < im->n) {
        arena_reset(a);
        import_one(im, a, &im->pics[i]);
    }
    arena_destroy(a);
    return NULL;
}

/* The run's total is known: the hooks hear it. */
static void start_run(importer *im, int64_t total)
{
    im->s->pictures = total;
    pthread_mutex_lock(&im->mu);
    if (im->h->start != NULL)
        im->h->start(im->h->ctx, "import", total);
    im->started = true;
    pthread_mutex_unlock(&im->mu);
}

/* im->pics stored by the threads. */
static void run_threads(importer *im)
{
    pthread_t t[MAX_THREADS];
    unsigned n = im->o->threads ? im->o->threads : DEFAULT_THREADS, started = 0;
    if (n > MAX_THREADS)
        n = MAX_THREADS;
    atomic_store(&im->next, 0);
    while (started < n && pthread_create(&t[started], NULL, worker, im) == 0)
        started++;
    if (started == 0)
        worker(im);
    for (unsigned i = 0; i < started; i++)
        pthread_join(t[i], NULL);
}

static void pics_clear(importer *im)
{
    for (size_t i = 0; i < im->n; i++)
        pic_free(&im->pics[i]);
    im->n = 0;
}

/* An export's pictures, CHUNK at a time (memory bounded whatever the
 * manifest's length; the first pass counts them for the progress). Files
 * naming one entity are refused within a chunk; our exports never write
 * two image records for one entity. 0, or -1 (said why). */
static int import_manifest(importer *im, const char *dir, FILE *f)
{
    char *line = malloc(BULK_MANIFEST_LINE_MAX + 2);
    int no = 0, rc = line == NULL ? -1 : 0;
    bool eof = false;
    if (rc == 0) {
        start_run(im, count_manifest(im, f, line));
        rewind(f);
    }
    while (rc == 0 && !eof && !cancelled(im)) {
        rc = scan_manifest(im, dir, f, line, &no, &eof);
        drop_twins(im);
        run_threads(im);
        pics_clear(im);
    }
    free(line);
    if (rc != 0)
        problem(im, "manifest.jsonl", "no memory to read it");
    return rc;
}

static bulk_rc import_dir(importer *im, const char *dir)
{
    char mpath[PATH_MAX];
    snprintf(mpath, sizeof(mpath), "%s/manifest.jsonl", dir);
    FILE *m = im->o->entity < 0 ? fopen(mpath, "re") : NULL;
    int rc = 0;
    if (m != NULL) {
        rc = import_manifest(im, dir, m);
        fclose(m);
    } else if ((rc = scan(im, dir)) == 0) {
        start_run(im, (int64_t)im->n);
        run_threads(im);
    }
    if (rc != 0)
        return BULK_FAILED;
    if (atomic_load(&im->stop))
        return BULK_CANCELLED;
    return im->s->problems > 0 ? BULK_PROBLEMS : BULK_OK;
}

/* ---- a tar archive: unpacked into a spool directory ---------------------------- */

/* What unpacking may create, so that a small archive cannot grow the spool
 * far beyond its own size (a deep name makes a folder per part, an empty
 * member an inode for 512 bytes of archive). Our exports hold
 * manifest.jsonl, {kind}/{id}.{ext} and library/{id}.{ext}: two parts (the
 * import reads nothing deeper; one more is allowed and left unread). */
#define NAME_PARTS_MAX 3 /* parts of a member's name */
#define NAME_LEN_MAX 255 /* characters of a member's name */
#define DIRS_MAX 64      /* folders made in all */
#define ODD_MAX 1000     /* members that make nothing: empty files, folders, other types */
#define BLOCK 4096       /* a file's disk use is counted in blocks of this */

typedef struct {
    char *buf; /* COPY_PIECE */
    int dirs, odd;
    uint64_t floor_bytes, floor_inodes; /* half of what was free when it began */
    bool inodes;                        /* the file system counts them (not btrfs) */
} unpacking;

static int count_parts(const char *name)
{
    int n = 1;
    for (; *name; name++)
        n += *name == '/';
    return n;
}

/* The free space of root's file system: true and *bytes, *inodes set. */
static bool free_space(const char *root, uint64_t *bytes, uint64_t *inodes, bool *counted)
{
    struct statvfs v;
    if (statvfs(root, &v) != 0)
        return false;
    *bytes = (uint64_t)v.f_bavail * v.f_frsize;
    *inodes = v.f_favail;
    *counted = v.f_files > 0;
    return true;
}

/* Room for a file of size (and its folders) on root's file system, leaving
 * at least half of what was free when the unpack began (the upload rule):
 * 0, or -1 with the problem said (the import fails as a full disk would). */
static int room_for(importer *im, unpacking *u, const char *root, const char *name, int64_t size)
{
    uint64_t bytes, inodes,
        need = ((uint64_t)size + BLOCK - 1) / BLOCK * BLOCK + NAME_PARTS_MAX * BLOCK;
    bool counted;
    if (!free_space(root, &bytes, &inodes, &counted)) {
        problem(im, name, "cannot be unpacked: %s", strerror(errno));
        return -1;
    }
    if (bytes >= u->floor_bytes + need &&
        (!u->inodes || inodes >= u->floor_inodes + NAME_PARTS_MAX))
        return 0;
    problem(im, "the archive",
            "member %s: unpacking it would leave less than half of the disk space the spool "
            "folder had (%llu MiB, %llu inodes free; the archive needs free disk about its "
            "size)",
            name, (unsigned long long)(bytes >> 20), (unsigned long long)inodes);
    return -1;
}

/* The directories above rel, below root (each one counted). */
static int make_parents(unpacking *u, const char *root, const char *rel)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", root, rel);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -1;
    for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (mkdir(path, 0700) == 0)
            u->dirs++;
        else if (errno != EEXIST)
            return -1;
        *p = '/';
    }
    return 0;
}

/* The member's bytes into root/name (a new file). */
static int unpack_file(importer *im, unpacking *u, bulk_tar_reader *t, const char *root,
                       const bulk_tar_member *m)
{
    char path[PATH_MAX];
    const char *name = m->name;
    size_t got;
    int rc = 0, len = snprintf(path, sizeof(path), "%s/%s", root, name);
    if (len < 0 || (size_t)len >= sizeof(path)) {
        problem(im, name, "cannot be unpacked: its name is too long here");
        return 0;
    }
    if (room_for(im, u, root, name, m->size) != 0)
        return -1;
    if (make_parents(u, root, name) != 0) {
        problem(im, name, "cannot be unpacked: %s", strerror(errno));
        return 0;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            problem(im, name,
                    "is in the archive twice (or is a folder's name); only the first "
                    "is kept");
        else
            problem(im, name, "cannot be unpacked: %s", strerror(errno));
        return 0;
    }
    while ((rc = bulk_tar_read(t, u->buf, COPY_PIECE, &got)) == 0 && got > 0)
        if (io_write_full(fd, u->buf, got) != 0) {
            problem(im, name, "cannot be unpacked: %s", strerror(errno));
            rc = -1;
            break;
        }
    close(fd);
    return rc;
}

/* A member's name within the bounds: 0, or -1 with the problem said. */
static int name_ok(importer *im, const char *name)
{
    if (strlen(name) > NAME_LEN_MAX)
        problem(im, "the archive",
                "member %.80s...: a name longer than %d characters (an "
                "export's are short)",
                name, NAME_LEN_MAX);
    else if (count_parts(name) > NAME_PARTS_MAX)
        problem(im, "the archive",
                "member %s: a name of more than %d parts (too deep; an "
                "export's have at most 2)",
                name, NAME_PARTS_MAX);
    else
        return 0;
    return -1;
}

/* Past a bound of what unpacking makes: -1 with the problem said. */
static int over_bounds(importer *im, const unpacking *u, const char *name)
{
    if (u->dirs > DIRS_MAX)
        problem(im, "the archive", "member %s: more than %d folders (an export has 5)", name,
                DIRS_MAX);
    else if (u->odd > ODD_MAX)
        problem(im, "the archive",
                "member %s: more than %d members that are empty, folders "
                "or not files (not an export)",
                name, ODD_MAX);
    else
        return 0;
    return -1;
}

/* One member: a file is unpacked (an empty one only when it is the
 * manifest: an empty picture would be refused anyway, and an empty member
 * costs the archive 512 bytes but the disk an inode: noted); folders are
 * made for the files under them; other types noted. 0, or -1 (said why). */
static int unpack_member(importer *im, unpacking *u, bulk_tar_reader *t, const char *root,
                         const bulk_tar_member *m)
{
    if (name_ok(im, m->name) != 0)
        return -1;
    if (m->kind == BULK_TAR_FILE && (m->size > 0 || strcmp(m->name, "manifest.jsonl") == 0))
        return unpack_file(im, u, t, root, m) != 0 ? -1 : over_bounds(im, u, m->name);
    u->odd++;
    if (m->kind == BULK_TAR_FILE)
        note(im, "archive member %s: empty, skipped", m->name);
    else if (m->kind != BULK_TAR_DIR)
        note(im, "archive member %s: of type '%c', skipped (only files and folders are read)",
             m->name, m->type > ' ' && m->type < 127 ? m->type : '?');
    return over_bounds(im, u, m->name);
}

/* Every member of the archive into root: 0, or -1 (said why). */
static int unpack(importer *im, bulk_tar_reader *t, const char *root)
{
    bulk_tar_member m;
    unpacking u = {.buf = malloc(COPY_PIECE)};
    uint64_t bytes = 0, inodes = 0;
    int rc = 0;
    if (u.buf == NULL || !free_space(root, &bytes, &inodes, &u.inodes)) {
        problem(im, "the archive", "cannot unpack it: %s", strerror(errno ? errno : ENOMEM));
        rc = -1;
    }
    u.floor_bytes = bytes / 2;
    u.floor_inodes = inodes / 2;
    while (rc == 0 && !cancelled(im) && (rc = bulk_tar_next(t, &m)) == BULK_TAR_MEMBER)
        rc = unpack_member(im, &u, t, root, &m);
    free(u.buf);
    if (rc == BULK_TAR_ERROR && t->failed)
        problem(im, "the archive", "%s", t->why);
    return rc == BULK_TAR_END || (rc == 0 && atomic_load(&im->stop)) ? 0 : -1;
}

/* ---- the spool folders ---------------------------------------------------------- */

/* Imports spool in a folder of their own under the spool directory
 * (SPOOL_HOME, made 0700 and checked to be this user's, never a link: the
 * spool directory may be a shared /tmp), each import in a folder
 * SPOOL_PREFIX* locked (flock on LOCK_NAME inside it) while its import
 * runs; the lock file gets its name only once locked, so a folder whose lock
 * can be taken is one whose import was killed (kill -9, a crash): removed
 * by the next import. Removal goes by folder descriptors (openat/unlinkat,
 * O_NOFOLLOW): a link found inside is removed, never followed. */
#define SPOOL_HOME "crmblob-imports-"
#define SPOOL_PREFIX "crmblob-import-"
#define LOCK_NAME ".crmblob-import-lock"
#define RM_DEPTH_MAX 32 /* unpacked names have NAME_PARTS_MAX parts */

/* Removes name below the folder at and all in it: 0, or -1. */
static int rm_at(int at, const char *name, int depth)
{
    if (unlinkat(at, name, 0) == 0 || errno == ENOENT)
        return 0;
    if ((errno != EISDIR && errno != EPERM) || depth > RM_DEPTH_MAX)
        return -1;
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    struct dirent *e;
    int rc = d == NULL ? -1 : 0;
    if (d == NULL && fd >= 0)
        close(fd);
    while (d != NULL && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            rc |= rm_at(fd, e->d_name, depth + 1);
    if (d != NULL)
        closedir(d);
    return rc == 0 && unlinkat(at, name, AT_REMOVEDIR) == 0 ? 0 : -1;
}

/* This user's folder of import spools under spool (made when missing, made
 * 0700 when it is this user's but open to others): its descriptor and
 * path, or -1 with the problem said. */
static int spool_home(importer *im, const char *spool, char *path, size_t cap)
{
    struct stat sb;
    int fd = -1, n = snprintf(path, cap, "%s/" SPOOL_HOME "%lu", spool, (unsigned long)geteuid());
    if (n < 0 || (size_t)n >= cap || (mkdir(path, 0700) != 0 && errno != EEXIST) ||
        (fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
        fstat(fd, &sb) != 0) {
        problem(im, "the archive", "cannot make a spool folder under %s: %s", spool,
                strerror(errno));
    } else if (sb.st_uid != geteuid() || ((sb.st_mode & 077) != 0 && fchmod(fd, 0700) != 0)) {
        problem(im, "the archive",
                "%s is not this user's private folder (owner %lu, mode %03o): "
                "refused as a spool folder",
                path, (unsigned long)sb.st_uid, (unsigned)(sb.st_mode & 0777));
    } else {
        return fd;
    }
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Removes the spool folder name below home whose import was killed. */
static void sweep_one(importer *im, int home, const char *path, const char *name)
{
    struct stat sb;
    int dir = -1, fd = -1;
    if (fstatat(home, name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(sb.st_mode) ||
        sb.st_uid != geteuid() ||
        (dir = openat(home, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
        (fd = openat(dir, LOCK_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
        flock(fd, LOCK_EX | LOCK_NB) != 0)
        goto out; /* not ours, no lock file yet, or its import runs */
    if (rm_at(home, name, 0) == 0)
        note(im, "removed %s/%s, left by an import that was killed", path, name);
out:
    if (fd >= 0)
        close(fd);
    if (dir >= 0)
        close(dir);
}

static void sweep_stale(importer *im, int home, const char *path)
{
    int fd = dup(home);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    struct dirent *e;
    if (d == NULL && fd >= 0)
        close(fd);
    while (d != NULL && (e = readdir(d)) != NULL)
        if (strncmp(e->d_name, SPOOL_PREFIX, strlen(SPOOL_PREFIX)) == 0)
            sweep_one(im, home, path, e->d_name);
    if (d != NULL)
        closedir(d);
}

/* Locks the new folder root: the lock fd, or -1. */
static int lock_spool(const char *root)
{
    char tmp[PATH_MAX + 64], path[PATH_MAX + 64];
    if (snprintf(tmp, sizeof(tmp), "%s/" LOCK_NAME ".new", root) >= (int)sizeof(tmp) ||
        snprintf(path, sizeof(path), "%s/" LOCK_NAME, root) >= (int)sizeof(path))
        return -1;
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0 && (flock(fd, LOCK_EX) != 0 || rename(tmp, path) != 0)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* A new locked import folder under home (path): its path in root, the
 * lock's descriptor; -1 said why. */
static int make_spool(importer *im, int home, const char *path, char *root, size_t cap)
{
    int lock = -1;
    bool made = (size_t)snprintf(root, cap, "%s/" SPOOL_PREFIX "XXXXXX", path) < cap &&
                mkdtemp(root) != NULL;
    if (made)
        lock = lock_spool(root);
    if (lock >= 0)
        return lock;
    int err = errno;
    if (made)
        (void)rm_at(home, strrchr(root, '/') + 1, 0);
    problem(im, "the archive", "cannot make a spool folder under %s: %s", path, strerror(err));
    return -1;
}

static bulk_rc import_tar(importer *im, const bulk_import_source *src)
{
    bulk_tar_reader *t = malloc(sizeof(*t));
    char root[PATH_MAX], path[PATH_MAX];
    bulk_rc rc = BULK_FAILED;
    const char *spool = im->o->spool_dir ? im->o->spool_dir : "/tmp";
    int lock = -1, home = t == NULL ? -1 : spool_home(im, spool, path, sizeof(path) - 32);
    if (home >= 0) {
        sweep_stale(im, home, path);
        lock = make_spool(im, home, path, root, sizeof(root));
    }
    if (lock < 0)
        goto out;
    im->strip = strlen(root) + 1;
    bulk_tar_reader_init(t, src->read, src->read_ctx,
                         im->o->max_member > 0 ? im->o->max_member : BULK_IMPORT_MEMBER_MAX);
    if (unpack(im, t, root) == 0)
        rc = atomic_load(&im->stop) ? BULK_CANCELLED : import_dir(im, root);
    if (rm_at(home, strrchr(root, '/') + 1, 0) != 0)
        note(im, "the spool folder %s could not be removed", root);
    close(lock);
out:
    if (home >= 0)
        close(home);
    free(t);
    return rc;
}

bulk_rc bulk_import(store_t *st, const bulk_import_source *src, const bulk_import_opts *o,
                    const bulk_hooks *h, bulk_import_stats *s)
{
    importer im = {.st = st, .o = o, .h = h, .s = s, .mu = PTHREAD_MUTEX_INITIALIZER};
    *s = (bulk_import_stats){0};
    bulk_rc rc = src->dir != NULL ? import_dir(&im, src->dir) : import_tar(&im, src);
    pics_free(&im);
    pthread_mutex_destroy(&im.mu);
    return rc;
}
