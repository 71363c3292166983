/*
 * store_export.h — every BLOB record with its plain picture bytes, read in
 * one snapshot (`crmblob export`).
 *
 * Invariants:
 *  - the whole walk is ONE READ transaction (SQLite: one BEGIN; PostgreSQL:
 *    REPEATABLE READ READ ONLY), so the records, their links and their
 *    bytes are those of one moment: a server may keep writing meanwhile and
 *    none of it is seen;
 *  - memory is bounded whatever the data set: records come in batches of
 *    STORE_COPY_BATCH, picture bytes one STORE_PIECE at a time through the
 *    store's codec (decrypted, unzipped) to the caller's sink; only the
 *    map of links (12 bytes per linked record) is held whole.
 */
#ifndef CB_STORE_EXPORT_H
#define CB_STORE_EXPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"
#include "store/store.h"

/* One BLOB record as stored, with what links it. */
typedef struct {
    model_blob b;        /* every field; created_by/updated_by resolved (NULL: user gone) */
    int32_t created_by;  /* the user ids as stored (0: the server; -1: none) */
    int32_t updated_by;
    int64_t unlinked_ms; /* INT64_MIN while linked */
    int kind;            /* model_kind of the entity it belongs to; -1: none */
    int32_t entity_id;
    bool thumbnail;      /* the product's thumbnail record (not its image) */
    bool library;        /* in the project image library (kind -1) */
} store_export_rec;

typedef struct {
    /* Called once, before the first record, with the snapshot's count of
     * records. May be NULL. */
    void (*total)(void *ctx, int64_t records);
    /* A record; *want := true to be handed its bytes (only asked when it
     * holds some). A non-OK answer stops the walk with that error. */
    store_err (*record)(void *ctx, const store_export_rec *r, bool *want);
    /* Its plain bytes, in order, in pieces; an error stops that picture
     * (its end is then called with STORE_INTERNAL or STORE_NO_SPACE). */
    cb_err (*bytes)(void *ctx, const void *p, size_t n);
    /* The picture's bytes ended: STORE_OK when all were handed out and
     * match the record, STORE_CORRUPT when they do not decode or match
     * (damaged, another key's), STORE_UNAVAILABLE when encrypted and no
     * key is configured. A non-OK answer stops the walk with that error. */
    store_err (*end)(void *ctx, const store_export_rec *r, store_err rc);
    void *ctx;
} store_export_fns;

/* Walks every BLOB record in BlobId order. STORE_OK, or the first error
 * that stopped it (a database error, or a callback's). A failed picture
 * (end's rc) does not stop it unless end says so. */
store_err store_export_walk(store_t *s, const store_export_fns *f);

#endif
