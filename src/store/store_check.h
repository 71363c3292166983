/*
 * store_check.h — keeping a data set safe: a consistent backup of it
 * while servers run (`crmblob backup`), and the walks `crmblob check`
 * is made of (the database's own check, every link, every BLOB record
 * with its stored bytes). Restoring is a copy (store_copy.h).
 *
 * Everything here works on a data set opened by store_copy_open(where,
 * false, ...): held as a server holds it (no rekey, restore or migrate
 * into it meanwhile; servers go on), never created when missing, and
 * only read.
 *
 * Invariants:
 *  - a backup is whole or absent: it is written to "<path>.part" and
 *    renamed to path only once complete, checked and on disk;
 *  - each walk reads in READ transactions (one snapshot each): a link
 *    check sees every entity and record in one snapshot, so a server
 *    writing meanwhile never makes it report a problem that was not one;
 *  - memory: a link check keeps 12 bytes per link; a record walk one
 *    picture's stored bytes at a time.
 */
#ifndef CB_STORE_CHECK_H
#define CB_STORE_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "store/codec.h"
#include "store/model.h"
#include "store/store_copy.h"

/* One finding, for people: problem true for damage (the check fails),
 * false for a note on what could not be checked. */
typedef void (*store_check_say)(void *ctx, bool problem, const char *line);

/* ---- backup ---- */

/* How far a backup is: done out of total (unit: "pages" for a page copy,
 * "records" for a row copy), called often; cumulative. */
typedef void (*store_backup_progress)(void *ctx, const char *unit, int64_t done, int64_t total);

typedef struct {
    bool pages;             /* SQLite's online backup (else a row copy, verified) */
    int64_t file_bytes;     /* the backup file's size */
    store_copy_counts rows; /* a row copy: what it copied */
} store_backup_info;

/* A consistent copy of `from` as a new crmblob SQLite database at path:
 * from a SQLite file the online backup API's page copy of one snapshot
 * (variants included); from PostgreSQL a row copy of one snapshot, as
 * `crmblob migrate` makes it, then verified against that snapshot
 * (variants, a cache, not copied). STORE_CONFLICT when path exists and
 * !replace (nothing written); STORE_UNAVAILABLE when path is a database a
 * process holds (a server's: never replaced); STORE_CORRUPT when a row
 * copy does not verify (nothing at path). */
store_err store_backup(store_copy_end *from, const char *path, bool replace,
                       store_backup_progress fn, void *ctx, store_backup_info *info);

/* The encryption key's fingerprint recorded in the data set (*has false
 * when its pictures are not encrypted). */
store_err store_check_key(store_copy_end *e, unsigned char fp[CODEC_FINGERPRINT_BYTES], bool *has);

/* ---- check ---- */

/* The database's own check of what it stores (SQLite: integrity_check,
 * or quick_check when quick, and foreign_key_check; PostgreSQL: amcheck
 * of its indexes when installed, notes on what it cannot check). */
store_err store_check_db(store_copy_end *e, bool quick, store_check_say say, void *ctx);

/* Every link, in one snapshot: an entity's image or a product's
 * thumbnail naming a missing record, a record linked twice, a record
 * marked linked that nothing links (never swept), a record marked
 * unlinked that an entity links. *links: how many links were seen. */
store_err store_check_links(store_copy_end *e, store_check_say say, void *ctx, int64_t *links);

/* ---- walking every BLOB record ---- */

typedef struct {
    const model_blob *rec; /* as stored; created_by/updated_by NULL */
    bool linked;           /* unlinked_ms is not set */
    bool has_bytes;        /* a stored picture exists (it may be empty) */
    const void *stored;    /* its bytes as kept (codec-encoded), len of them */
    size_t len;
    /* STORE_OK, or why the record or its bytes could not be read (a
     * damaged page): then rec holds only blob_id and there are no bytes */
    store_err read_rc;
} store_walk_item;

/* Called for each record; STORE_OK to go on, anything else stops the walk
 * with that answer. Runs inside a READ transaction: must not call the
 * store. */
typedef store_err (*store_walk_fn)(void *ctx, const store_walk_item *it);

/* Records (and their pictures' bytes) in the data set: for a progress
 * display's totals. */
store_err store_walk_size(store_copy_end *e, int64_t *records, int64_t *bytes);

/* fn for every BLOB record in id order, STORE_WALK_BATCH records per READ
 * transaction (a record and its bytes always from one snapshot). */
#define STORE_WALK_BATCH 32
store_err store_blob_walk(store_copy_end *e, store_walk_fn fn, void *ctx);

#endif
