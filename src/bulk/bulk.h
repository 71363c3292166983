/*
 * bulk.h — operations on a whole data set that both the command line
 * (`crmblob export`, ...) and the server's batch jobs run: the picture
 * export into a sink (a directory, or a tar archive on a file), with the
 * JSON-lines manifest of the BLOB records.
 *
 * Layering: core <- store, img <- bulk <- jobs (the batch jobs) <- api
 * <- http <- main (and src/cli). bulk needs only the store and the image
 * module, so the server's jobs (src/jobs, below api) and the commands call
 * the same code; what needs the upload path of PUT Image (the import's
 * api_image_import) is handed in by the caller as a function.
 *
 * Invariants: nothing here draws or prints; what a run has to say goes
 * through bulk_hooks (progress, problems) and it polls hooks->cancelled
 * between records, so a stopped run ends at the next record with
 * BULK_CANCELLED. Memory is bounded whatever the data set (pictures flow
 * a store piece at a time, store_export.h).
 */
#ifndef CB_BULK_H
#define CB_BULK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "core/arena.h"
#include "store/codec.h"
#include "store/store.h"
#include "store/store_copy.h"
#include "store/store_export.h"

typedef enum {
    BULK_OK = 0,
    BULK_PROBLEMS,  /* done, but some records could not be handled (said through problem) */
    BULK_CANCELLED, /* hooks->cancelled said so; what was written is to be dropped */
    BULK_FAILED,    /* stopped: the store or the output failed (said through problem) */
} bulk_rc;

typedef struct {
    /* The run's size once known (total -1: unknown), then each record
     * done with its bytes. May be NULL. */
    void (*start)(void *ctx, const char *what, int64_t total);
    void (*step)(void *ctx, int64_t items, int64_t bytes);
    /* A finding, one line without its newline ("BLOB 12: ..."). */
    void (*problem)(void *ctx, const char *line);
    /* A note on what could not be checked (not a problem). May be NULL. */
    void (*note)(void *ctx, const char *line);
    /* Polled between records; true stops the run. May be NULL. */
    bool (*cancelled)(void *ctx);
    void *ctx;
} bulk_hooks;

/* Where exported pictures go, one member at a time: open (size bytes
 * follow, known from the record's OriginalSize), write pieces, close
 * (keep false: the member is dropped, as if never opened). */
typedef struct {
    store_err (*open)(void *s, const char *rel, int64_t size);
    cb_err (*write)(void *s, const void *p, size_t n);
    store_err (*close)(void *s, bool keep);
    void *s;
} bulk_sink;

/* A sink of files under dir ("{rel}.part" until closed with keep). */
typedef struct {
    const char *dir;
    int fd;
    char part[4096 + 64], rel[64];
} bulk_dir_sink;
void bulk_dir_sink_init(bulk_dir_sink *d, const char *dir, bulk_sink *out);

/* A sink of ustar members appended to fd (a regular file: a dropped
 * member is cut off again). bulk_tar_finish adds the file mfd holds
 * (from its start) as member name, then the end of the archive. */
typedef struct {
    int fd;
    int64_t off, member, left;
} bulk_tar_sink;
void bulk_tar_sink_init(bulk_tar_sink *t, int fd, bulk_sink *out);
cb_err bulk_tar_finish(bulk_tar_sink *t, const char *name, int mfd);

typedef struct {
    int kind;       /* model_kind to export (its images and thumbnails); -1: every record */
    FILE *manifest; /* a line per record exported */
} bulk_export_opts;

typedef struct {
    int64_t pictures, bytes, records, problems;
} bulk_export_stats;

/* The file extension of a MIME type ("jpg"; "bin" when none of the four). */
const char *bulk_ext_of_mime(const char *mime);
/* Every BLOB record (of one kind) in one snapshot: its picture into sink
 * as "{entity}/{id}.{ext}", "product/{id}.thumbnail.{ext}" or
 * "blob/{BlobId}.{ext}", its line into the manifest. */
bulk_rc bulk_export(store_t *st, const bulk_export_opts *o, const bulk_sink *sink,
                    const bulk_hooks *h, bulk_export_stats *stats);

/* The integrity check (`crmblob check`, the check job) of the data set e
 * (store_copy_open(where, false)) in three passes: the database's own
 * check (quick: its quick one), every link, every BLOB record with its
 * bytes decoded with codec, validated by the image worker (img_init done
 * by the caller) and read as st (the same data set) serves it. Each
 * problem is one line through h->problem; *problems counts them. A pass
 * that cannot run is a problem and the others still run. BULK_OK (none),
 * BULK_PROBLEMS, or BULK_CANCELLED. */
bulk_rc bulk_check(store_copy_end *e, store_t *st, const codec_t *codec, bool quick,
                   const bulk_hooks *h, int64_t *problems);

/* The fingerprint recorded of the data set's key: 1 (into fp), 0 none
 * (not encrypted), -1 error. */
int bulk_key_recorded(store_t *st, unsigned char fp[CODEC_FINGERPRINT_BYTES]);
/* Records c's fingerprint (none: c NULL or not encrypting). */
store_err bulk_key_record(store_t *st, const codec_t *c);

typedef struct {
    const codec_t *old;   /* the key the pictures are kept with; NULL: none */
    const codec_t *new_;  /* the new key (NULL: none), compressing when asked */
    const codec_t *new_z; /* the new key, compressing: for what was compressed; never NULL */
} bulk_rekey_codecs;
/* Every picture and variant re-encoded from c->old to c->new_
 * (store_recode_all; each value in a transaction of its own, so servers go
 * on), then the new key's fingerprint recorded. *count: pictures
 * rewritten. A stop (hooks->cancelled) ends it between values: the
 * pictures rewritten stay so, the fingerprint stays the old key's, and a
 * run again finishes. BULK_OK, BULK_CANCELLED or BULK_FAILED. */
bulk_rc bulk_rekey(store_t *st, const bulk_rekey_codecs *c, const bulk_hooks *h, int64_t *count);

/* ---- reading a tar archive (tar.c) ----
 * A streaming reader: bulk_tar_next hands out the next member's header,
 * bulk_tar_read its bytes; what the caller does not read of a member is
 * skipped by the next bulk_tar_next. The reader allocates nothing; on
 * BULK_TAR_ERROR, why says what is wrong, naming the member. */
#define BULK_TAR_NAME_MAX 1023       /* a member's name (GNU 'L', pax path) */
#define BULK_TAR_PAX_MAX (64 * 1024) /* a pax header's records */

/* Pulls up to n bytes into buf; *got 0 at the end. 0, or -1 on an error. */
typedef int (*bulk_read_fn)(void *ctx, void *buf, size_t n, size_t *got);

enum { BULK_TAR_ERROR = -1, BULK_TAR_END = 0, BULK_TAR_MEMBER = 1 };
typedef enum { BULK_TAR_FILE, BULK_TAR_DIR, BULK_TAR_OTHER } bulk_tar_kind;

typedef struct {
    char name[BULK_TAR_NAME_MAX + 1]; /* relative, no '.', '..' or empty part */
    int64_t size;
    bulk_tar_kind kind;
    char type; /* the header's typeflag ('0', '5', '2'...) */
} bulk_tar_member;

typedef struct {
    bulk_read_fn read;
    void *ctx;
    int64_t max_member, offset, left, pad, members, next_size;
    bool failed, has_next_name, has_next_size;
    bulk_tar_member member;
    char next_name[BULK_TAR_NAME_MAX + 1];
    char ext[BULK_TAR_PAX_MAX];
    size_t ext_len;
    char why[BULK_TAR_NAME_MAX + 128];
} bulk_tar_reader;

/* t reads from read(ctx); members above max_member bytes are an error. */
void bulk_tar_reader_init(bulk_tar_reader *t, bulk_read_fn read, void *ctx, int64_t max_member);
/* Does the block h start a tar archive (a ustar or GNU header, its
 * checksum right)? What an upload of an archive is checked with. */
bool bulk_tar_looks_like(const unsigned char h[512]);
/* BULK_TAR_MEMBER (*m filled), BULK_TAR_END, or BULK_TAR_ERROR (t->why). */
int bulk_tar_next(bulk_tar_reader *t, bulk_tar_member *m);
/* Up to n bytes of the current member (*got 0: its end). 0, or -1 (t->why). */
int bulk_tar_read(bulk_tar_reader *t, void *buf, size_t n, size_t *got);

/* ---- what an import reads (manifest.c) ----
 * A file name "{id}.{ext}" (one dot, a
 * positive id in decimal without a leading zero): true and *id. */
bool bulk_id_of_name(const char *name, int32_t *id);
#define BULK_MANIFEST_LINE_MAX (64 * 1024) /* a record's line: its strings are <= 254 chars */
#define BULK_MANIFEST_FILE_MAX 1024
typedef enum {
    BULK_MANIFEST_IMAGE,   /* an entity's image with its file: to import */
    BULK_MANIFEST_LIBRARY, /* a picture of the project image library (Role "library") */
    BULK_MANIFEST_SKIP,    /* a thumbnail, an unlinked record, a record without a file */
    BULK_MANIFEST_BAD,     /* not a record (why says what is wrong) */
} bulk_manifest_kind;
typedef struct {
    model_kind kind;
    int32_t id;
    const char *file;                       /* relative to the export, checked to stay inside it */
    const char *sha256, *desc, *extra, *ct; /* NULL when absent */
} bulk_manifest_rec;
/* One line of manifest.jsonl (without its newline or with it); r's
 * strings live in *hold (json_decref it, also when BAD). */
bulk_manifest_kind bulk_manifest_parse(const char *line, size_t len, json_t **hold,
                                       bulk_manifest_rec *r, const char **why);

/* ---- the import (import.c) ---- */
#define BULK_IMPORT_MEMBER_MAX (1LL << 32) /* an archive member (the manifest of ~5M records) */

/* A picture to store through the upload path (PUT Image's, handed in by
 * the caller: bulk sits below api). */
typedef struct bulk_picture { /* tagged: api.h declares it */
    model_kind kind; /* the entity whose image it becomes */
    int32_t id;
    bool library; /* instead: a new record (for the project image library) with these: */
    const char *description, *extra_info, *conceptual_type; /* NULL: none */
    int fd; /* the plain picture bytes in fd[0, size) */
    int64_t size;
    /* Called once the picture is accepted, just before it is stored; its
     * error is returned as *se, nothing stored. May be NULL. */
    store_err (*accepted)(void *ctx);
    void *ctx;
} bulk_picture;
/* CB_EOK when the picture was accepted (*se: whether the store kept it,
 * *out the record), else why (the worker's reason, the byte limit...). */
typedef cb_err (*bulk_put_fn)(void *put_ctx, arena_t *a, const bulk_picture *p, model_blob *out,
                              store_err *se, char *why, size_t cap);

typedef struct {
    const char *dir; /* a directory; NULL: a tar archive from read */
    bulk_read_fn read;
    void *read_ctx;
} bulk_import_source;

typedef struct {
    int entity;       /* model_kind of a flat folder of {id}.{ext}; -1: an export */
    unsigned threads; /* pictures stored at a time (0: 2) */
    bulk_put_fn put;
    void *put_ctx;
    const char *spool_dir; /* where an archive is unpacked (NULL: /tmp) */
    int64_t max_member;    /* an archive member's bytes at most (0: BULK_IMPORT_MEMBER_MAX) */
} bulk_import_opts;

typedef struct {
    int64_t pictures; /* to import (known once the source is read) */
    int64_t imported, skipped, created, updated, library, left_out, problems;
} bulk_import_stats;

/* The pictures of src into st (hooks: start once the pictures are known,
 * a step per picture, a problem per picture that could not be imported).
 * BULK_OK, BULK_PROBLEMS (the others imported), BULK_CANCELLED (between
 * pictures), BULK_FAILED (the source cannot be read: a bad archive
 * imports nothing). */
bulk_rc bulk_import(store_t *st, const bulk_import_source *src, const bulk_import_opts *o,
                    const bulk_hooks *h, bulk_import_stats *s);

#endif
