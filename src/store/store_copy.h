/*
 * store_copy.h — moving a data set from one database to another
 * (`crmblob migrate`): SQLite file or PostgreSQL, either way round.
 *
 * Everything the server keeps is copied as stored: users, credentials
 * (revoked and expired ones too, with their pairs), partner apps,
 * metadata (the key's fingerprint), BLOB records with every field, their
 * pictures' bytes in their at-rest form (compressed/encrypted as they
 * are: the same key serves them afterwards) and the entities; ids stay
 * what they were (clients know BlobIds), and the target's id sequences
 * are moved past the source's. Variants are not copied: a cache, made
 * again on use.
 *
 * Invariants:
 *  - the source is only read, in one snapshot (one READ transaction), and
 *    held as a server holds it (store_hold SERVE), so no rekey runs meanwhile;
 *  - the target is held alone (EXCLUSIVE: no server, no other copy) and
 *    written in ONE transaction, emptying (--force) included: a copy cut
 *    short (Ctrl-C, kill -9, a failure) leaves the target as it was, and
 *    running it again does the whole job;
 *  - memory is bounded whatever the data set: rows go in batches of
 *    STORE_COPY_BATCH, picture bytes one STORE_PIECE at a time.
 */
#ifndef CB_STORE_COPY_H
#define CB_STORE_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Rows read or written per statement batch. */
#define STORE_COPY_BATCH 256

/* One side of a copy: a database opened for it. */
typedef struct store_copy_end store_copy_end;

/* Opens `where` (a SQLite file or a PostgreSQL conninfo) as the source
 * (must exist; held SERVE) or the target (created when missing; held
 * EXCLUSIVE). UNAVAILABLE when the hold is refused (logged: a server runs,
 * a rekey runs); ABSENT when a source file does not exist. */
store_err store_copy_open(const char *where, bool target, store_copy_end **out);
void store_copy_close(store_copy_end *e);

/* What was copied or compared; per table of store_backend.h's
 * store_copy_table, then the pictures. */
#define STORE_COPY_NTABLES (6 + MODEL_KIND_COUNT) /* store_copy_table's count */
typedef struct {
    int64_t rows[STORE_COPY_NTABLES]; /* indexed by store_copy_table */
    int64_t pictures, bytes;
    bool committed; /* store_copy_run: the copy is in the target */
} store_copy_counts;

/* The records (rows) and picture bytes a copy of `from` will move, for a
 * progress display's totals. */
store_err store_copy_size(store_copy_end *from, int64_t *rows, int64_t *bytes);

/* Called after each batch of rows or picture with what it moved. */
typedef void (*store_copy_progress)(void *ctx, int64_t rows, int64_t bytes);

/* A verification: where its differences go, and what it found. */
typedef struct {
    void (*say)(void *ctx, const char *line); /* one difference, for people */
    void *ctx;
    int max_report;         /* differences said one by one; then a count of the rest */
    int64_t differences;    /* out */
    store_copy_counts seen; /* out: the rows and pictures of the first side */
} store_copy_check;

/* Copies everything of `from` into `to` in one transaction of `to`. A
 * target holding any row is refused (CONFLICT, nothing written) unless
 * force: then its tables are emptied first, in the same transaction.
 * With check, once committed, the target is compared with the snapshot of
 * the source it was copied from (as store_copy_verify). */
store_err store_copy_run(store_copy_end *from, store_copy_end *to, bool force,
                         store_copy_progress fn, void *ctx, store_copy_counts *done,
                         store_copy_check *check);

/* Compares `a` and `b`, each in a snapshot: every table row by row (every
 * column) and the SHA-256 of every picture's stored bytes; each difference
 * goes to c->say. STORE_OK also when they differ (c->differences): an
 * error is only a database that could not be read. */
store_err store_copy_verify(store_copy_end *a, store_copy_end *b, store_copy_check *c);

/* The name of table t for people ("users", "BLOB records", "Person"...). */
const char *store_copy_table_name(int t);

#endif
