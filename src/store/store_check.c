/*
 * store_check.c — backup and the check walks of a whole data set
 * (store_check.h), above the backend interface: the page copy is the
 * backend's (backup_to), a row copy is store_copy.c's, and the walks use
 * the copy primitives (raw rows in key order) with the typed record and
 * picture reads.
 *
 * The files of batch tasks are no pictures: the BLOB table's copy rows
 * leave them out (store_copy_def.only), so no walk here sees them.
 *
 * Invariants: every transaction here is READ and ends without a COMMIT;
 * a backup appears at its path only complete, checked and on disk; a
 * failure to read one picture is a finding about that record, not the
 * end of the walk (a damaged page spoils a record, not the check).
 */
#include "store/store_check.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/io.h"
#include "core/log.h"
#include "store/store_backend.h"
#include "store/store_int.h"

#define FINGERPRINT_META "key_fingerprint" /* as cli/keys.c records it */
#define MAX_DIFFERENCES 20                 /* a row copy's differences logged one by one */

/* A READ transaction on e's backend. */
static store_err begin_read(store_copy_end *e, store_tx **tx)
{
    store_be *be = store_copy_be(e);
    return be->ops->begin(be, NULL, STORE_TX_READ, tx);
}

static void end_read(store_tx *tx)
{
    (void)tx->be->ops->end(tx, STORE_ABSENT); /* read only: never a COMMIT */
}

/* ---- backup ------------------------------------------------------------- */

typedef struct {
    store_backup_progress fn;
    void *ctx;
    int64_t done, total;
} backup_job;

static void pages_progress(void *ctx, int64_t done, int64_t total)
{
    backup_job *j = ctx;
    if (j->fn != NULL)
        j->fn(j->ctx, "pages", done, total);
}

static void rows_progress(void *ctx, int64_t rows, int64_t bytes)
{
    backup_job *j = ctx;
    (void)bytes;
    j->done += rows;
    if (j->fn != NULL)
        j->fn(j->ctx, "records", j->done, j->total);
}

/* SQLite: the page copy of one snapshot into tmp. */
static store_err backup_pages(store_copy_end *from, const char *tmp, backup_job *j)
{
    store_tx *tx = NULL;
    store_err rc = begin_read(from, &tx);
    if (rc != STORE_OK)
        return rc;
    rc = tx->be->ops->backup_to(tx, tmp, pages_progress, j);
    end_read(tx);
    return rc;
}

static void say_difference(void *ctx, const char *line)
{
    (void)ctx;
    log_error("backup: the copy differs from its source: %s", line);
}

/* Any other backend: a row copy of one snapshot into a new SQLite file
 * tmp, verified against that snapshot. */
static store_err backup_rows(store_copy_end *from, const char *tmp, backup_job *j,
                             store_backup_info *info)
{
    store_copy_end *to = NULL;
    store_copy_check check = {.say = say_difference, .max_report = MAX_DIFFERENCES};
    int64_t bytes = 0;
    store_err rc = store_copy_size(from, &j->total, &bytes);
    if (rc == STORE_OK)
        rc = store_copy_open(tmp, true, &to);
    if (rc == STORE_OK)
        rc = store_copy_run(from, to, false, rows_progress, j, &info->rows, &check);
    if (rc == STORE_OK && check.differences > 0)
        rc = STORE_CORRUPT;
    store_copy_close(to);
    store_sqlite_remove(tmp, false); /* the copy's lock and counts: not part of a backup */
    return rc;
}

/* tmp, complete, becomes path: on disk first, then renamed, then the
 * directory entry on disk. */
static store_err backup_publish(const char *tmp, const char *path, bool replace)
{
    if (io_fsync_path(tmp) != 0) {
        log_error("backup: cannot flush %s to disk: %s", tmp, strerror(errno));
        return STORE_INTERNAL;
    }
    if (replace) /* an old database there: its journals must not meet the new file */
        store_sqlite_remove(path, true);
    if (rename(tmp, path) != 0) {
        log_error("backup: cannot rename %s to %s: %s", tmp, path, strerror(errno));
        return STORE_INTERNAL;
    }
    return store_sync_parent(path);
}

store_err store_backup(store_copy_end *from, const char *path, bool replace,
                       store_backup_progress fn, void *ctx, store_backup_info *info)
{
    backup_job j = {.fn = fn, .ctx = ctx};
    char tmp[4096];
    struct stat st;
    *info = (store_backup_info){0};
    if (!replace && stat(path, &st) == 0) {
        log_error("backup: %s exists (--force replaces it)", path);
        return STORE_CONFLICT;
    }
    if (replace && store_sqlite_in_use(path)) {
        log_error("backup: %s is a database in use: not replaced", path);
        return STORE_UNAVAILABLE;
    }
    if (snprintf(tmp, sizeof(tmp), "%s.part", path) >= (int)sizeof(tmp))
        return STORE_INVALID;
    store_sqlite_remove(tmp, true); /* what a backup cut short left */
    info->pages = store_copy_be(from)->ops->backup_to != NULL;
    store_err rc = info->pages ? backup_pages(from, tmp, &j) : backup_rows(from, tmp, &j, info);
    if (rc == STORE_OK)
        rc = backup_publish(tmp, path, replace);
    if (rc != STORE_OK)
        store_sqlite_remove(tmp, true);
    else if (stat(path, &st) == 0)
        info->file_bytes = st.st_size;
    return rc;
}

store_err store_check_key(store_copy_end *e, unsigned char fp[CODEC_FINGERPRINT_BYTES], bool *has)
{
    store_tx *tx = NULL;
    arena_t *a = arena_create();
    void *v = NULL;
    size_t n = 0;
    *has = false;
    store_err rc = a != NULL ? begin_read(e, &tx) : STORE_INTERNAL;
    if (rc != STORE_OK)
        goto out;
    rc = tx->be->ops->meta_get(tx, a, FINGERPRINT_META, &v, &n);
    end_read(tx);
    if (rc == STORE_OK && n == CODEC_FINGERPRINT_BYTES) {
        memcpy(fp, v, CODEC_FINGERPRINT_BYTES);
        *has = true;
    }
    if (rc == STORE_ABSENT) /* never recorded: no key */
        rc = STORE_OK;
out:
    arena_destroy(a);
    return rc;
}

/* ---- the database's own check ----------------------------------------- */

store_err store_check_db(store_copy_end *e, bool quick, store_check_say say, void *ctx)
{
    store_tx *tx = NULL;
    store_err rc = begin_read(e, &tx);
    if (rc != STORE_OK)
        return rc;
    rc = tx->be->ops->integrity(tx, quick, say, ctx);
    end_read(tx);
    return rc;
}

/* ---- rows in key order ---------------------------------------------------- */

typedef store_err (*row_fn)(void *ctx, const store_copy_def *d, const store_copy_row *r);

/* fn for every row of table t (an integer key), in key order. */
static store_err each_row(store_tx *tx, store_copy_table t, row_fn fn, void *ctx)
{
    const store_copy_def *d = store_copy_def_of(t);
    store_copy_row *rows = malloc(STORE_COPY_BATCH * sizeof(*rows));
    arena_t *a = arena_create();
    store_copy_val after = {0};
    int n = 0;
    store_err rc = rows != NULL && a != NULL ? STORE_OK : STORE_INTERNAL;
    for (bool first = true; rc == STORE_OK && (first || n == STORE_COPY_BATCH); first = false) {
        arena_reset(a);
        rc = tx->be->ops->copy_next(tx, t, first ? NULL : &after, a, rows, STORE_COPY_BATCH, &n);
        for (int i = 0; rc == STORE_OK && i < n; i++)
            rc = fn(ctx, d, &rows[i]);
        if (n > 0)
            after = (store_copy_val){.i = rows[n - 1].v[0].i};
    }
    arena_destroy(a);
    free(rows);
    return rc;
}

/* The index of column `name` in d; -1 when d has none. */
static int col_of(const store_copy_def *d, const char *name)
{
    for (int i = 0; i < d->ncols; i++)
        if (strcmp(d->col[i], name) == 0)
            return i;
    return -1;
}

/* ---- links ---------------------------------------------------------------- */

typedef struct {
    int32_t blob, id; /* the record linked, the entity linking it */
    int16_t table;    /* the entity's store_copy_table */
    bool thumb;       /* a product's thumbnail, else an image */
} blob_link;

typedef struct {
    blob_link *v;
    size_t n, cap;
    store_check_say say;
    void *ctx;
    size_t next; /* the merge's position in v (sorted) */
    int16_t table;
} link_job;

static store_err link_add(link_job *j, blob_link l)
{
    if (j->n == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 1024;
        blob_link *v = realloc(j->v, cap * sizeof(*v));
        if (v == NULL)
            return STORE_INTERNAL;
        j->v = v;
        j->cap = cap;
    }
    j->v[j->n++] = l;
    return STORE_OK;
}

static store_err entity_links(void *ctx, const store_copy_def *d, const store_copy_row *r)
{
    link_job *j = ctx;
    int img = col_of(d, "image_blob_id"), th = col_of(d, "thumb_blob_id");
    int32_t id = (int32_t)r->v[0].i;
    store_err rc = STORE_OK;
    if (img >= 0 && !r->v[img].null)
        rc = link_add(j, (blob_link){(int32_t)r->v[img].i, id, j->table, false});
    if (rc == STORE_OK && th >= 0 && !r->v[th].null)
        rc = link_add(j, (blob_link){(int32_t)r->v[th].i, id, j->table, true});
    return rc;
}

/* A record of the project image library: linked by its membership. */
static store_err library_links(void *ctx, const store_copy_def *d, const store_copy_row *r)
{
    (void)d;
    link_job *j = ctx;
    int32_t id = (int32_t)r->v[0].i;
    return link_add(j, (blob_link){id, id, STORE_COPY_LIBRARY, false});
}

static int link_cmp(const void *pa, const void *pb)
{
    const blob_link *a = pa, *b = pb;
    if (a->blob != b->blob)
        return a->blob < b->blob ? -1 : 1;
    if (a->table != b->table)
        return a->table < b->table ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static void problem(link_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(link_job *j, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    j->say(j->ctx, true, line);
}

static const char *link_what(const blob_link *l)
{
    return l->thumb ? "thumbnail" : "image";
}

/* Links in the merge below record id that no record answered: dangling. */
static void dangling_before(link_job *j, int64_t id)
{
    for (; j->next < j->n && j->v[j->next].blob < id; j->next++) {
        const blob_link *l = &j->v[j->next];
        problem(j, "%s %d: its %s names BLOB %d, which does not exist",
                store_copy_table_name(l->table), l->id, link_what(l), l->blob);
    }
}

/* One BLOB record against the links that name it. */
static store_err record_links(void *ctx, const store_copy_def *d, const store_copy_row *r)
{
    link_job *j = ctx;
    int32_t id = (int32_t)r->v[0].i;
    bool linked = r->v[col_of(d, "unlinked_ms")].null;
    dangling_before(j, id);
    size_t first = j->next;
    while (j->next < j->n && j->v[j->next].blob == id)
        j->next++;
    size_t count = j->next - first;
    const blob_link *l = count > 0 ? &j->v[first] : NULL;
    if (count == 0 && linked)
        problem(j, "BLOB %d: marked linked, yet nothing links it (it is never swept)", id);
    if (count > 0 && !linked)
        problem(j, "BLOB %d: marked unlinked, yet %s %d links it as its %s", id,
                store_copy_table_name(l->table), l->id, link_what(l));
    if (count > 1)
        problem(j, "BLOB %d: linked twice, by %s %d (%s) and %s %d (%s)", id,
                store_copy_table_name(l[0].table), l[0].id, link_what(&l[0]),
                store_copy_table_name(l[1].table), l[1].id, link_what(&l[1]));
    return STORE_OK;
}

store_err store_check_links(store_copy_end *e, store_check_say say, void *ctx, int64_t *links)
{
    link_job j = {.say = say, .ctx = ctx};
    store_tx *tx = NULL;
    store_err rc = begin_read(e, &tx);
    if (rc != STORE_OK)
        return rc;
    for (int k = 0; rc == STORE_OK && k < MODEL_KIND_COUNT; k++) {
        j.table = (int16_t)(STORE_COPY_ENTITY + k);
        rc = each_row(tx, (store_copy_table)j.table, entity_links, &j);
    }
    if (rc == STORE_OK) {
        j.table = STORE_COPY_LIBRARY;
        rc = each_row(tx, STORE_COPY_LIBRARY, library_links, &j);
    }
    if (rc == STORE_OK && j.n > 0)
        qsort(j.v, j.n, sizeof(*j.v), link_cmp);
    if (rc == STORE_OK)
        rc = each_row(tx, STORE_COPY_BLOB, record_links, &j);
    if (rc == STORE_OK)
        dangling_before(&j, INT64_MAX);
    end_read(tx);
    *links = (int64_t)j.n;
    free(j.v);
    return rc;
}

/* ---- every record with its bytes -------------------------------------- */

static store_err size_row(void *ctx, const store_copy_def *d, const store_copy_row *r)
{
    *(int64_t *)ctx += r->v[col_of(d, "blob_size")].i;
    return STORE_OK;
}

store_err store_walk_size(store_copy_end *e, int64_t *records, int64_t *bytes)
{
    store_tx *tx = NULL;
    *bytes = 0;
    store_err rc = begin_read(e, &tx);
    if (rc != STORE_OK)
        return rc;
    rc = tx->be->ops->copy_count(tx, STORE_COPY_BLOB, records);
    if (rc == STORE_OK)
        rc = each_row(tx, STORE_COPY_BLOB, size_row, bytes);
    end_read(tx);
    return rc;
}

/* Record id's stored picture into *out (malloc'd; NULL with *has false
 * when it has none). */
static store_err read_stored(store_tx *tx, int32_t id, void **out, size_t *len, bool *has)
{
    const struct store_be_ops *o = tx->be->ops;
    store_pic_r *r = NULL;
    int64_t size = 0;
    *out = NULL;
    *len = 0;
    *has = false;
    store_err rc = o->pic_read_open(tx, id, &size, &r);
    if (rc != STORE_OK)
        return rc == STORE_ABSENT ? STORE_OK : rc;
    *has = true;
    unsigned char *buf = malloc(size > 0 ? (size_t)size : 1);
    if (buf == NULL)
        rc = STORE_INTERNAL;
    for (int64_t off = 0; rc == STORE_OK && off < size; off += STORE_PIECE) {
        size_t n = size - off < STORE_PIECE ? (size_t)(size - off) : STORE_PIECE;
        rc = o->pic_read(r, off, buf + off, n);
    }
    o->pic_read_close(r);
    if (rc != STORE_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = (size_t)size;
    return STORE_OK;
}

/* One record and its bytes to fn. *spoiled: a read failed (the finding
 * went to fn as an item without bytes; the transaction may be over). */
static store_err walk_one(store_tx *tx, arena_t *a, int32_t id, store_walk_fn fn, void *ctx,
                          bool *spoiled)
{
    store_blob_row row = {0};
    store_walk_item it = {.rec = &row.b};
    void *buf = NULL;
    store_err rc = tx->be->ops->blob_read(tx, a, id, STORE_ROW_PLAIN, &row);
    if (rc == STORE_ABSENT)
        return STORE_OK; /* not in this snapshot */
    if (rc == STORE_OK)
        rc = read_stored(tx, id, &buf, &it.len, &it.has_bytes);
    it.linked = row.unlinked_ms == INT64_MIN;
    it.stored = buf;
    if (rc != STORE_OK) {
        row.b.blob_id = id;
        it.read_rc = rc;
        *spoiled = true;
    }
    rc = fn(ctx, &it);
    free(buf);
    return rc;
}

/* A batch of records after *after, in a READ transaction of its own;
 * *more false past the last one. */
static store_err walk_batch(store_copy_end *e, int64_t *after, bool *more, store_walk_fn fn,
                            void *ctx)
{
    store_copy_row rows[STORE_WALK_BATCH];
    store_copy_val key = {.i = *after};
    store_tx *tx = NULL;
    arena_t *a = arena_create();
    int n = 0;
    bool spoiled = false;
    store_err rc = a != NULL ? begin_read(e, &tx) : STORE_INTERNAL;
    if (rc == STORE_OK) {
        rc = tx->be->ops->copy_next(tx, STORE_COPY_BLOB, *after > 0 ? &key : NULL, a, rows,
                                    STORE_WALK_BATCH, &n);
        int i = 0;
        for (; rc == STORE_OK && i < n && !spoiled; i++)
            rc = walk_one(tx, a, (int32_t)rows[i].v[0].i, fn, ctx, &spoiled);
        *more = spoiled || n == STORE_WALK_BATCH; /* after a spoiled read: a new transaction */
        if (i > 0)
            *after = rows[i - 1].v[0].i;
        end_read(tx);
    }
    arena_destroy(a);
    return rc;
}

store_err store_blob_walk(store_copy_end *e, store_walk_fn fn, void *ctx)
{
    int64_t after = 0; /* BlobIds start at 1 */
    bool more = true;
    store_err rc = STORE_OK;
    while (rc == STORE_OK && more)
        rc = walk_batch(e, &after, &more, fn, ctx);
    return rc;
}
