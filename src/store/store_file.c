/*
 * store_file.c — the files of batch tasks (store.h): outputs in parts,
 * import inputs, and the front-to-back reader of any record's bytes.
 *
 * Writing a file: the plain bytes are encoded (codec.h: compressed only
 * up to 64 MiB, encrypted at any size) into a spool before any
 * transaction; then one write transaction makes the record (unlinked
 * since now) and its batch_file row (not done), each next one refreshes
 * the record's unlinked_ms and puts up to PIECES_PER_TX pieces, and the
 * last one sets the record's sizes and flags and marks the file done. So
 * the database's writer is never held for more than a few MiB of copy,
 * a file is readable only once whole, and a writer that dies leaves an
 * unlinked record the sweep deletes after its grace period (its pieces
 * go by cascade; the sweep deletes a file's pieces a few at a time first,
 * store_file_purge, as does the delete of a task: SQLite frees a large
 * value only by walking all its pages). A task's output is bound (task_id) from its first
 * transaction; store_task_finish links its parts (never swept), an
 * input is linked when a task takes it (store_task_add).
 *
 * Reading (store_reader): one piece per short READ transaction (a file's
 * piece by piece_get; a picture's bytes by pic_read at the piece's
 * offset, its version checked in the same transaction, as its bytes may
 * be replaced), through the streaming decoder carried in the reader. A
 * piece gone means the record went (STORE_ABSENT); a part that does not
 * end with exactly its BlobSize stored and OriginalSize plain bytes is
 * STORE_CORRUPT.
 *
 * Scopes: every transaction here runs on the root store, also when the
 * caller hands a view (store_scope_open, durable mode): a file is written
 * and deleted in many transactions, each final when it returns, and a
 * reader outlives the request that opened it (it is read while the answer
 * is sent, after the view's scope has ended).
 *
 * Memory: one stored piece and what the decoder made of
 * it (at most a piece when not zipped; zipped values are pictures of at
 * most 64 MiB, fed in small slices).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/io.h"
#include "core/log.h"
#include "core/text.h"
#include "store/store_backend.h"
#include "store/store_int.h"

#define PIECES_PER_TX 8     /* 2 MiB of copy per write transaction */
#define TURN_NS 1000000L    /* a pause between them: other writers' turn */
#define PURGE_PIECES 4      /* pieces deleted per write transaction (SQLite walks their pages) */
#define ZIP_SLICE 4096      /* stored bytes fed to a zipped value's decoder at once */
#define FILE_CT "BATCHFILE" /* ConceptualType of a task's file */

static const struct store_be_ops *ops(store_tx *tx)
{
    return tx->be->ops;
}

/* ---- writing a file ------------------------------------------------------- */

typedef struct {
    store_t *s;
    arena_t *a;
    int64_t task;
    int kind, part;
    int32_t user;
    const store_content *enc; /* the stored bytes: fd at base, size, flags */
    int64_t base;
    unsigned char *buf; /* one piece */
    int32_t blob_id;
    int64_t off; /* stored bytes put so far */
    model_blob out;
} fwrite_ctx;

static store_err fcreate_fn(store_tx *tx, void *ctx)
{
    fwrite_ctx *w = ctx;
    int64_t now = text_now_ms();
    store_err rc = ops(tx)->blob_insert(tx, FILE_CT, w->user, now, now, &w->blob_id);
    if (rc == STORE_OK)
        rc = ops(tx)->file_insert(tx, w->blob_id, w->task, w->kind, w->part);
    return rc;
}

/* Up to PIECES_PER_TX pieces from w->off; the record kept from the sweep. */
static store_err fpieces_fn(store_tx *tx, void *ctx)
{
    fwrite_ctx *w = ctx;
    int64_t off = w->off;
    store_err rc = ops(tx)->blob_unlink(tx, w->blob_id, text_now_ms());
    if (rc == STORE_NOMATCH)
        return STORE_ABSENT; /* deleted meanwhile (a cleanup, the sweep) */
    for (int i = 0; rc == STORE_OK && i < PIECES_PER_TX && off < w->enc->size; i++) {
        size_t n = w->enc->size - off < STORE_PIECE ? (size_t)(w->enc->size - off) : STORE_PIECE;
        if (io_pread_full(w->enc->fd, w->buf, n, w->base + off) != n) {
            log_error("store: reading a file to store at %lld: %s", (long long)off,
                      strerror(errno));
            return STORE_INTERNAL;
        }
        rc = ops(tx)->piece_put(tx, w->blob_id, off / STORE_PIECE, w->buf, n);
        off += (int64_t)n;
    }
    if (rc == STORE_OK)
        w->off = off; /* only once committed: a retried run starts over */
    return rc;
}

static store_err fdone_fn(store_tx *tx, void *ctx)
{
    fwrite_ctx *w = ctx;
    int64_t now = text_now_ms();
    const store_content *c = w->enc;
    store_pic_meta m = {.mime = c->mime_type,
                        .size = c->size,
                        .original_size = c->original_size,
                        .zipped = c->is_zipped,
                        .encrypted = c->is_encrypted};
    store_blob_row row;
    store_err rc = ops(tx)->blob_unlink(tx, w->blob_id, now);
    if (rc == STORE_OK)
        rc = ops(tx)->blob_set_content(tx, w->a, w->blob_id, &m, w->user, now, STORE_ANY, &row);
    if (rc == STORE_OK)
        rc = ops(tx)->file_done(tx, w->blob_id);
    if (rc == STORE_OK)
        rc = store_blob_out(w->s, tx, w->a, &row, &w->out);
    return rc == STORE_NOMATCH ? STORE_ABSENT : rc;
}

typedef struct {
    int32_t id;
    int64_t n; /* pieces the last step deleted */
} purge_ctx;

static store_err purge_step_fn(store_tx *tx, void *ctx)
{
    purge_ctx *p = ctx;
    return ops(tx)->piece_drop(tx, p->id, PURGE_PIECES, &p->n);
}

static store_err purge_end_fn(store_tx *tx, void *ctx)
{
    return ops(tx)->blob_delete(tx, ((purge_ctx *)ctx)->id);
}

store_err store_file_purge(store_t *s, int32_t id)
{
    s = s->root; /* see "Scopes" above */
    purge_ctx p = {.id = id, .n = 1};
    store_err rc = STORE_OK;
    for (bool first = true; rc == STORE_OK && p.n > 0; first = false) {
        if (!first)
            nanosleep(&(struct timespec){0, TURN_NS}, NULL);
        rc = store_run(s, STORE_TX_WRITE, purge_step_fn, &p);
    }
    return rc == STORE_OK ? store_run(s, STORE_TX_WRITE, purge_end_fn, &p) : rc;
}

typedef struct {
    int64_t cutoff;
    int32_t id, *ids;
    int max, *n;
    bool kept; /* release_stale_fn: no longer stale (a task bound it) */
} stale_ctx;

static store_err stale_fn(store_tx *tx, void *ctx)
{
    stale_ctx *c = ctx;
    return ops(tx)->file_stale(tx, c->cutoff, c->ids, c->max, c->n);
}

store_err store_file_stale(store_t *s, int64_t cutoff, int32_t *ids, int max, int *n)
{
    stale_ctx c = {.cutoff = cutoff, .ids = ids, .max = max, .n = n};
    return store_run(s->root, STORE_TX_READ1, stale_fn, &c);
}

static store_err release_stale_fn(store_tx *tx, void *ctx)
{
    stale_ctx *c = ctx;
    store_err rc = ops(tx)->file_release_stale(tx, c->id, c->cutoff);
    c->kept = rc == STORE_NOMATCH;
    return c->kept ? STORE_OK : rc;
}

/* Released first, in one write with the check that it is still stale:
 * from then on no task can bind it (file_bind wants done = 1). */
store_err store_file_sweep(store_t *s, int32_t id, int64_t cutoff)
{
    stale_ctx c = {.cutoff = cutoff, .id = id};
    store_err rc = store_run(s->root, STORE_TX_WRITE, release_stale_fn, &c);
    if (rc == STORE_OK && c.kept)
        return STORE_NOMATCH;
    return rc == STORE_OK ? store_file_purge(s, id) : rc;
}

/* Deletes file record id (a failed write's; store_blob_delete leaves
 * files alone); what is left, the sweep takes. */
static void file_drop(store_t *s, int32_t id)
{
    (void)store_file_purge(s, id);
}

/* fpieces_fn's commit sets w->off; store_run may run it again only after
 * a rollback, so w->off is what is stored. Between two transactions the
 * writer pauses: the writers of requests wait for the database's writer
 * (SQLite: a mutex, then BEGIN IMMEDIATE), and a mutex taken again at
 * once by the thread that just let it go would keep them waiting for the
 * whole file (measured: PUT ImageInfo stalled up to 1.9 s without it). */
static store_err file_copy(fwrite_ctx *w)
{
    store_err rc = store_run(w->s, STORE_TX_WRITE, fcreate_fn, w);
    while (rc == STORE_OK && w->off < w->enc->size) {
        nanosleep(&(struct timespec){0, TURN_NS}, NULL);
        rc = store_run(w->s, STORE_TX_WRITE, fpieces_fn, w);
    }
    if (rc == STORE_OK)
        rc = store_run(w->s, STORE_TX_WRITE, fdone_fn, w);
    if (rc != STORE_OK && w->blob_id > 0)
        file_drop(w->s, w->blob_id); /* else the sweep takes it */
    return rc;
}

static store_err enc_err(cb_err e)
{
    return e == CB_ENOSPACE ? STORE_NO_SPACE : e == CB_ETOOLARGE ? STORE_TOO_LARGE : STORE_INTERNAL;
}

/* Copies fd[off, off + len) into a new spool file (*out, its offset 0). */
static store_err slice_fd(store_t *s, int fd, int64_t off, int64_t len, unsigned char *buf,
                          int *out)
{
    int t = io_open_tmp(s->root->spool_dir);
    store_err rc = t < 0 ? (errno == ENOSPC ? STORE_NO_SPACE : STORE_INTERNAL) : STORE_OK;
    for (int64_t done = 0; rc == STORE_OK && done < len; done += STORE_PIECE) {
        size_t n = len - done < STORE_PIECE ? (size_t)(len - done) : STORE_PIECE;
        if (io_pread_full(fd, buf, n, off + done) != n || io_write_full(t, buf, n) != 0)
            rc = errno == ENOSPC ? STORE_NO_SPACE : STORE_INTERNAL;
    }
    if (rc != STORE_OK && t >= 0)
        close(t);
    *out = rc == STORE_OK ? t : -1;
    return rc;
}

/* Stores plain fd[off, off + len) as a file (task, kind, part); *blob_id.
 * Encoded into a spool first when the store has a codec (a slice of a
 * larger output copied out first: the codec reads from offset 0). */
static store_err file_write(store_t *s, arena_t *a, int64_t task, int kind, int part, int32_t user,
                            const store_content *c, int64_t off, int64_t len, int32_t *blob_id,
                            model_blob *out)
{
    s = s->root; /* see "Scopes" above */
    const codec_t *codec = s->root->codec;
    store_content enc = {.fd = c->fd, .size = len, .mime_type = c->mime_type, .original_size = len};
    arena_t *own = a == NULL ? arena_create() : NULL;
    fwrite_ctx w = {.s = s,
                    .a = a != NULL ? a : own,
                    .task = task,
                    .kind = kind,
                    .part = part,
                    .user = user,
                    .base = off};
    int sfd = -1, efd = -1;
    store_err rc = w.a == NULL || (w.buf = malloc(STORE_PIECE)) == NULL ? STORE_INTERNAL : STORE_OK;
    if (rc == STORE_OK && codec != NULL && (off != 0 || len != c->size))
        rc = slice_fd(s, c->fd, off, len, w.buf, &sfd);
    if (rc == STORE_OK && codec != NULL) {
        int64_t esize = len;
        cb_err e = codec_encode_fd(codec, sfd >= 0 ? sfd : c->fd, len, s->root->spool_dir, &efd,
                                   &esize, &enc.is_zipped, &enc.is_encrypted);
        rc = e == CB_EOK ? STORE_OK : enc_err(e);
        enc.fd = efd >= 0 ? efd : sfd >= 0 ? sfd : c->fd;
        enc.size = esize;
        w.base = efd >= 0 || sfd >= 0 ? 0 : off;
    }
    if (rc == STORE_OK && (enc.size > INT32_MAX || len > INT32_MAX))
        rc = STORE_TOO_LARGE;
    w.enc = &enc;
    if (rc == STORE_OK)
        rc = file_copy(&w);
    if (rc == STORE_OK) {
        *blob_id = w.blob_id;
        if (out != NULL)
            *out = w.out;
    }
    free(w.buf);
    arena_destroy(own);
    if (sfd >= 0)
        close(sfd);
    if (efd >= 0)
        close(efd);
    return rc;
}

store_err store_batch_input_create(store_t *s, arena_t *a, const store_content *c,
                                   int32_t associate_id, model_blob *out)
{
    assert(s != NULL && a != NULL && c != NULL && out != NULL && c->size >= 0);
    int32_t id = 0;
    model_blob_empty(out);
    if (c->size > INT32_MAX)
        return STORE_TOO_LARGE;
    return file_write(s, a, 0, STORE_FILE_INPUT, 0, associate_id, c, 0, c->size, &id, out);
}

store_err store_task_output_put(store_t *s, int64_t task_id, const store_content *c,
                                int64_t part_max, int32_t *first)
{
    assert(s != NULL && c != NULL && first != NULL && c->size >= 0);
    int64_t pm = part_max > 0 && part_max < STORE_PART_MAX ? part_max : STORE_PART_MAX;
    int32_t ids[STORE_FILE_PARTS_MAX];
    int n = 0;
    store_err rc = (c->size + pm - 1) / pm > STORE_FILE_PARTS_MAX ? STORE_TOO_LARGE : STORE_OK;
    *first = 0;
    for (int64_t off = 0; rc == STORE_OK && (off < c->size || n == 0); off += pm, n++) {
        int64_t len = c->size - off < pm ? c->size - off : pm;
        rc = file_write(s, NULL, task_id, STORE_FILE_OUTPUT, n, 0, c, off, len, &ids[n], NULL);
        if (rc != STORE_OK)
            break;
    }
    for (int i = 0; rc != STORE_OK && i < n; i++)
        file_drop(s, ids[i]); /* nothing is left of a failed output */
    if (rc == STORE_OK)
        *first = ids[0];
    return rc;
}

/* ---- reading -------------------------------------------------------------- */

struct store_reader {
    store_t *s;
    bool file;             /* pieces of a task's file; else a picture's bytes (pic_read) */
    store_file_row *parts; /* one per record read, in order */
    int nparts, cur;
    /* the current part */
    int64_t next;  /* its next stored offset to fetch */
    int64_t plain; /* plain bytes it gave */
    codec_dec *dec;
    unsigned char *stored; /* the last piece fetched, stored bytes */
    size_t stored_len, stored_pos;
    unsigned char *out; /* plain bytes not handed out yet */
    size_t out_len, out_pos, out_cap;
    store_err failed; /* sticky */
};

/* The decoder's sink: appends to r->out (grown as needed). */
static cb_err out_put(void *ctx, const void *p, size_t n)
{
    store_reader *r = ctx;
    if (r->out_len + n > r->out_cap) {
        size_t cap = r->out_cap * 2 > r->out_len + n ? r->out_cap * 2 : r->out_len + n;
        unsigned char *o = realloc(r->out, cap);
        if (o == NULL)
            return CB_EINTERNAL;
        r->out = o;
        r->out_cap = cap;
    }
    memcpy(r->out + r->out_len, p, n);
    r->out_len += n;
    return CB_EOK;
}

typedef struct {
    store_reader *r;
    const store_file_row *f;
    int64_t off;
    size_t n, got;
} piece_ctx;

/* A file's piece: gone with its record, or with a record being deleted
 * (ABSENT), or missing from one that is whole (CORRUPT). */
static store_err file_piece_fn(store_tx *tx, void *ctx)
{
    piece_ctx *p = ctx;
    store_file_row f;
    store_err rc = ops(tx)->piece_get(tx, p->f->blob_id, p->off / STORE_PIECE, p->r->stored,
                                      STORE_PIECE, &p->got);
    if (rc == STORE_ABSENT && ops(tx)->file_read(tx, p->f->blob_id, &f) == STORE_OK && f.done) {
        log_error("store: BLOB %d lacks its piece %lld", p->f->blob_id,
                  (long long)(p->off / STORE_PIECE));
        rc = STORE_CORRUPT;
    }
    return rc;
}

/* A picture's bytes at p->off, while they are still of the version opened. */
static store_err pic_piece_fn(store_tx *tx, void *ctx)
{
    piece_ctx *p = ctx;
    store_blob_row row;
    store_pic_r *pr = NULL;
    int64_t size = 0;
    store_err rc = ops(tx)->blob_read(tx, NULL, p->f->blob_id, STORE_ROW_PLAIN, &row);
    if (rc == STORE_OK && row.b.version != p->f->version)
        rc = STORE_ABSENT; /* its bytes were replaced: the record read is gone */
    if (rc == STORE_OK)
        rc = ops(tx)->pic_read_open(tx, p->f->blob_id, &size, &pr);
    if (rc == STORE_OK && size != p->f->size)
        rc = STORE_CORRUPT;
    if (rc == STORE_OK)
        rc = ops(tx)->pic_read(pr, p->off, p->r->stored, p->n);
    if (pr != NULL)
        ops(tx)->pic_read_close(pr);
    p->got = rc == STORE_OK ? p->n : 0;
    return rc;
}

/* Fetches the current part's next stored piece into r->stored. */
static store_err fetch_piece(store_reader *r)
{
    const store_file_row *f = &r->parts[r->cur];
    piece_ctx p = {.r = r, .f = f, .off = r->next};
    p.n = f->size - r->next < STORE_PIECE ? (size_t)(f->size - r->next) : STORE_PIECE;
    store_err rc = store_run(r->s, STORE_TX_READ, r->file ? file_piece_fn : pic_piece_fn, &p);
    if (rc == STORE_OK && p.got != p.n) {
        log_error("store: BLOB %d holds %zu bytes at %lld, %zu expected", f->blob_id, p.got,
                  (long long)r->next, p.n);
        rc = STORE_CORRUPT;
    }
    if (rc == STORE_OK) {
        r->next += (int64_t)p.n;
        r->stored_len = p.n;
        r->stored_pos = 0;
    }
    return rc;
}

static store_err dec_err(cb_err e)
{
    return e == CB_EUNAVAILABLE ? STORE_UNAVAILABLE : STORE_CORRUPT;
}

/* Starts part r->cur: its decoder when it is coded. */
static store_err part_open(store_reader *r)
{
    const store_file_row *f = &r->parts[r->cur];
    r->next = r->plain = 0;
    r->stored_len = r->stored_pos = 0;
    if (!f->zipped && !f->encrypted)
        return f->size == f->original_size ? STORE_OK : STORE_CORRUPT;
    cb_err e = codec_dec_open(r->s->root->decoder, f->zipped, f->encrypted, out_put, r, &r->dec);
    return e == CB_EOK ? STORE_OK : dec_err(e);
}

/* Plain bytes beyond a part's OriginalSize are damage. */
static store_err count_plain(store_reader *r, size_t n)
{
    const store_file_row *f = &r->parts[r->cur];
    r->plain += (int64_t)n;
    if (r->plain <= f->original_size)
        return STORE_OK;
    log_error("store: BLOB %d decodes to more than its %lld bytes", f->blob_id,
              (long long)f->original_size);
    return STORE_CORRUPT;
}

/* Ends part r->cur (its stored bytes all fed): the decoder's end (which
 * may still hand out bytes, into r->out) and the plain size; then the
 * next part's start. */
static store_err part_close(store_reader *r)
{
    const store_file_row *f = &r->parts[r->cur];
    store_err rc = STORE_OK;
    if (r->dec != NULL) {
        cb_err e = codec_dec_finish(r->dec, NULL);
        codec_dec_close(r->dec);
        r->dec = NULL;
        rc = e == CB_EOK ? count_plain(r, r->out_len) : dec_err(e);
    }
    if (rc == STORE_OK && r->plain != f->original_size) {
        log_error("store: BLOB %d decodes to %lld bytes, its record says %lld", f->blob_id,
                  (long long)r->plain, (long long)f->original_size);
        rc = STORE_CORRUPT;
    }
    if (rc == STORE_OK && ++r->cur < r->nparts)
        rc = part_open(r);
    return rc;
}

/* More plain bytes of the current part into r->out (empty before). */
static store_err refill(store_reader *r)
{
    const store_file_row *f = &r->parts[r->cur];
    store_err rc = STORE_OK;
    if (r->stored_pos == r->stored_len && (rc = fetch_piece(r)) != STORE_OK)
        return rc;
    size_t n = r->stored_len - r->stored_pos;
    if (f->zipped && n > ZIP_SLICE)
        n = ZIP_SLICE; /* what a slice inflates to is handed out before the next */
    cb_err e = r->dec != NULL ? codec_dec_feed(r->dec, r->stored + r->stored_pos, n)
                              : out_put(r, r->stored + r->stored_pos, n);
    r->stored_pos += n;
    if (e != CB_EOK)
        return r->dec != NULL ? dec_err(e) : STORE_INTERNAL;
    return count_plain(r, r->out_len);
}

store_err store_reader_read(store_reader *r, void *buf, size_t n, size_t *got)
{
    assert(r != NULL && (buf != NULL || n == 0) && got != NULL);
    unsigned char *b = buf;
    *got = 0;
    while (r->failed == STORE_OK && *got < n) {
        if (r->out_pos < r->out_len) {
            size_t k = r->out_len - r->out_pos < n - *got ? r->out_len - r->out_pos : n - *got;
            memcpy(b + *got, r->out + r->out_pos, k);
            r->out_pos += k;
            *got += k;
            continue;
        }
        if (r->cur >= r->nparts)
            break; /* the end */
        const store_file_row *f = &r->parts[r->cur];
        r->out_len = r->out_pos = 0;
        if (r->stored_pos == r->stored_len && r->next == f->size)
            r->failed = part_close(r);
        else
            r->failed = refill(r);
    }
    if (r->failed != STORE_OK)
        *got = 0;
    return r->failed;
}

void store_reader_close(store_reader *r)
{
    if (r == NULL)
        return;
    codec_dec_close(r->dec);
    free(r->stored);
    free(r->out);
    free(r->parts);
    free(r);
}

/* A reader of the n parts (taken), of files or of a picture. */
static store_err reader_new(store_t *s, store_file_row *parts, int n, bool file, store_reader **out)
{
    store_reader *r = calloc(1, sizeof(*r));
    if (r != NULL)
        r->stored = malloc(STORE_PIECE);
    if (r == NULL || r->stored == NULL) {
        free(parts);
        store_reader_close(r);
        return STORE_INTERNAL;
    }
    r->s = s;
    r->file = file;
    r->parts = parts;
    r->nparts = n;
    store_err rc = n > 0 ? part_open(r) : STORE_OK;
    if (rc != STORE_OK) {
        store_reader_close(r);
        return rc;
    }
    *out = r;
    return STORE_OK;
}

typedef struct {
    store_t *s;
    arena_t *a;
    int32_t blob_id;
    int64_t task;
    model_blob *rec;
    store_file_row *parts;
    int n;
    bool file;
} open_ctx;

static store_err blob_open_fn(store_tx *tx, void *ctx)
{
    open_ctx *o = ctx;
    store_blob_row row;
    store_err rc = ops(tx)->blob_read(tx, o->a, o->blob_id, STORE_ROW_PLAIN, &row);
    if (rc == STORE_OK && o->rec != NULL)
        rc = store_blob_out(o->s, tx, o->a, &row, o->rec);
    if (rc != STORE_OK)
        return rc;
    rc = ops(tx)->file_read(tx, o->blob_id, &o->parts[0]);
    o->file = rc == STORE_OK;
    if (rc == STORE_OK && !o->parts[0].done)
        return STORE_ABSENT; /* still being written, or its writer died */
    if (rc == STORE_ABSENT && row.b.blob_size == 0 && row.b.version == 0)
        return STORE_ABSENT; /* a record without bytes */
    if (rc == STORE_ABSENT)
        o->parts[0] = (store_file_row){.blob_id = o->blob_id,
                                       .done = true,
                                       .size = row.b.blob_size,
                                       .original_size = row.b.original_size,
                                       .zipped = row.b.is_zipped,
                                       .encrypted = row.b.is_encrypted,
                                       .version = row.b.version};
    return rc == STORE_ABSENT ? STORE_OK : rc;
}

store_err store_blob_reader_open(store_t *s, arena_t *a, int32_t blob_id, model_blob *rec,
                                 store_reader **out)
{
    s = s->root; /* see "Scopes" above */
    assert(s != NULL && out != NULL && (a != NULL || rec == NULL));
    arena_t *own = a == NULL ? arena_create() : NULL;
    open_ctx o = {.s = s, .a = a != NULL ? a : own, .blob_id = blob_id, .rec = rec};
    *out = NULL;
    if (rec != NULL)
        model_blob_empty(rec);
    if (o.a == NULL || (o.parts = calloc(1, sizeof(*o.parts))) == NULL) {
        arena_destroy(own);
        return STORE_INTERNAL;
    }
    store_err rc = store_run(s, STORE_TX_READ, blob_open_fn, &o);
    arena_destroy(own);
    if (rc != STORE_OK) {
        free(o.parts);
        return rc;
    }
    return reader_new(s, o.parts, 1, o.file, out);
}

/* The task's output parts, all written; or its output record of before
 * parts (schema v9: one picture-like record). */
static store_err output_open_fn(store_tx *tx, void *ctx)
{
    open_ctx *o = ctx;
    store_task t;
    o->file = true;
    store_err rc = ops(tx)->task_read(tx, o->a, o->task, &t);
    if (rc != STORE_OK)
        return rc; /* t is not read */
    o->blob_id = t.output_blob;
    if (t.output_blob == 0)
        rc = STORE_ABSENT;
    if (rc == STORE_OK)
        rc = ops(tx)->file_list(tx, o->task, STORE_FILE_OUTPUT, o->parts, STORE_FILE_PARTS_MAX,
                                &o->n);
    for (int i = 0; rc == STORE_OK && i < o->n; i++)
        if (!o->parts[i].done || o->parts[i].part != i)
            rc = STORE_ABSENT;
    return rc;
}

store_err store_task_output_open(store_t *s, int64_t task_id, int64_t *size, store_reader **out)
{
    s = s->root; /* see "Scopes" above */
    assert(s != NULL && size != NULL && out != NULL);
    open_ctx o = {.s = s, .task = task_id, .a = arena_create()};
    *out = NULL;
    *size = 0;
    if (o.a == NULL || (o.parts = calloc(STORE_FILE_PARTS_MAX, sizeof(*o.parts))) == NULL) {
        arena_destroy(o.a);
        return STORE_INTERNAL;
    }
    store_err rc = store_run(s, STORE_TX_READ, output_open_fn, &o);
    arena_destroy(o.a);
    if (rc == STORE_OK && o.n == 0) { /* an output of before parts */
        free(o.parts);
        rc = store_blob_reader_open(s, NULL, o.blob_id, NULL, out);
        if (rc == STORE_OK)
            *size = (*out)->parts[0].original_size;
        return rc;
    }
    if (rc != STORE_OK) {
        free(o.parts);
        return rc;
    }
    for (int i = 0; i < o.n; i++)
        *size += o.parts[i].original_size;
    return reader_new(s, o.parts, o.n, true, out);
}
