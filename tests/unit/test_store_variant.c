/*
 * test_store_variant.c — unit tests of the variant cache, the server
 * metadata and store_rewrite_all of store.h against the SQLite backend,
 * including schema migration v4.
 *
 * Every test gets a fresh database in its own temporary directory. Some
 * checks read the database file beside the store (row counts), as
 * test_store.c does: the store's answers alone cannot show that a row is
 * gone rather than hidden.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/log.h"
#include "store/store.h"

#include "tmpdb.h"

typedef struct {
    char dir[64];
    char path[512];
    store_t *s;
    arena_t *a;
} fixture;

/* ---- fixture ----------------------------------------------------------- */

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (tmpdb_make(f->dir, sizeof(f->dir), f->path, sizeof(f->path), "variant",
                   "crmblob.db") != 0)
        return -1;
    if (store_open(f->path, NULL, &f->s) != STORE_OK)
        return -1;
    f->a = arena_create();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_close(f->s);
    arena_destroy(f->a);
    tmpdb_remove(f->dir);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------ */

/* A new entity of kind k with the image bytes tmpdb_payload(seed, n); *b is its
 * BLOB record. */
static int32_t entity_with_image(fixture *f, model_kind k, int seed, size_t n, model_blob *b)
{
    int32_t id;
    assert_int_equal(tmpdb_entity(f->s, k, &id), STORE_OK);
    store_content c = tmpdb_content(f->dir, seed, n, "image/png");
    assert_true(c.fd >= 0);
    assert_int_equal(store_image_put(f->s, f->a, k, id, &c, 0, STORE_ANY, b), STORE_OK);
    close(c.fd);
    return id;
}

/* Replaces the image of (k, id) with tmpdb_payload(seed, n). */
static void replace_image(fixture *f, model_kind k, int32_t id, int seed, size_t n, model_blob *b)
{
    store_content c = tmpdb_content(f->dir, seed, n, "image/jpeg");
    assert_true(c.fd >= 0);
    assert_int_equal(store_image_put(f->s, f->a, k, id, &c, 0, STORE_ANY, b), STORE_OK);
    close(c.fd);
}

static const store_variant_meta png_meta = {
    .mime = "image/png", .is_zipped = false, .is_encrypted = false, .original_size = 0};

/* Stores variant `key` of b's current version as tmpdb_payload(seed, n). */
static store_err put_variant(fixture *f, const model_blob *b, const char *key, int seed, size_t n,
                             bool pinned, int64_t max)
{
    unsigned char *bytes = tmpdb_payload(seed, n);
    store_err rc =
        store_variant_put(f->s, b->blob_id, b->version, key, &png_meta, bytes, n, pinned, max);
    free(bytes);
    return rc;
}

/* True when variant `key` of b's current version is there (and, when it
 * is, that it holds tmpdb_payload(seed, n)). */
static bool has_variant(fixture *f, const model_blob *b, const char *key, int seed, size_t n)
{
    store_variant_meta m;
    void *got = NULL;
    size_t len = 0;
    store_err rc = store_variant_get(f->s, f->a, b->blob_id, b->version, key, &m, &got, &len);
    if (rc == STORE_ABSENT) {
        assert_null(got);
        return false;
    }
    assert_int_equal(rc, STORE_OK);
    unsigned char *want = tmpdb_payload(seed, n);
    assert_int_equal(len, n);
    assert_memory_equal(got, want, n);
    free(want);
    free(got);
    return true;
}

/* The store's running total agrees with the table, and is (bytes, n). */
static void assert_total(fixture *f, int64_t bytes, int64_t n)
{
    int64_t got_bytes = -1, got_n = -1;
    assert_int_equal(store_variant_total(f->s, &got_bytes, &got_n), STORE_OK);
    assert_int_equal(got_bytes, bytes);
    assert_int_equal(got_n, n);
    assert_int_equal(
        tmpdb_int(f->path, "SELECT coalesce(sum(size), 0) FROM variant WHERE pinned = 0", 0), bytes);
    assert_int_equal(tmpdb_int(f->path, "SELECT count(*) FROM variant WHERE pinned = 0", 0), n);
}

/* ---- schema ------------------------------------------------------------- */

static void test_schema_v4(void **state)
{
    fixture *f = *state;
    assert_true(tmpdb_schema_version(f->path) >= 4); /* later migrations add to it */
    assert_int_equal(tmpdb_count(f->path, "variant"), 0);
    assert_int_equal(tmpdb_count(f->path, "meta"), 0);
    assert_total(f, 0, 0);
}

/* A database left at version 3 (before variants) is migrated on open. */
static void test_migrate_from_v3(void **state)
{
    TMPDB_SQLITE_ONLY("an older SQLite schema made by hand (PostgreSQL starts at its own version)");
    fixture *f = *state;
    model_blob b;
    int32_t id = entity_with_image(f, MODEL_PERSON, 1, 100, &b);
    store_close(f->s);
    f->s = NULL;
    int64_t current = tmpdb_schema_version(f->path);
    /* what v4 and later versions (v5: the BLOB agent's columns, v6: paired credentials) made goes too */
    tmpdb_undo_v7_v10(f->path);
    tmpdb_exec(f->path, "DROP TABLE variant_data; DROP TABLE variant; DROP TABLE variant_total; "
                "DROP TABLE meta; DROP INDEX blob_unlinked_ms; "
                "ALTER TABLE blob DROP COLUMN unlinked_ms; DROP INDEX product_thumb_blob_id; "
                "ALTER TABLE product DROP COLUMN thumb_blob_id; DROP INDEX cred_pair_id; "
                "ALTER TABLE cred DROP COLUMN pair_id; PRAGMA user_version = 3");
    assert_int_equal(store_open(f->path, NULL, &f->s), STORE_OK);
    assert_int_equal(tmpdb_schema_version(f->path), current);
    assert_int_equal(put_variant(f, &b, "w=10", 2, 50, false, 1000), STORE_OK);
    assert_true(has_variant(f, &b, "w=10", 2, 50));
    assert_int_equal(store_image_info(f->s, f->a, MODEL_PERSON, id, &b), STORE_OK); /* data kept */
    assert_int_equal(b.blob_size, 100);
}

/* ---- variants ------------------------------------------------------------ */

static void test_variant_round_trip(void **state)
{
    fixture *f = *state;
    model_blob b;
    store_variant_meta meta = { /* the flags and size are the store's to fill */
        .mime = "image/webp", .is_zipped = true, .is_encrypted = true, .original_size = 4321};
    store_variant_meta got;
    void *bytes = NULL;
    size_t len = 0;
    unsigned char *want = tmpdb_payload(7, 3000);
    entity_with_image(f, MODEL_PRODUCT, 1, 5000, &b);
    assert_int_equal(store_variant_put(f->s, b.blob_id, b.version, "w=64,h=64,type=WEBP", &meta,
                                       want, 3000, false, 1 << 20),
                     STORE_OK);
    assert_int_equal(store_variant_get(f->s, f->a, b.blob_id, b.version, "w=64,h=64,type=WEBP",
                                       &got, &bytes, &len),
                     STORE_OK);
    assert_string_equal(got.mime, "image/webp");
    assert_false(got.is_zipped || got.is_encrypted); /* no codec: kept as given */
    assert_int_equal(got.original_size, 3000);
    assert_int_equal(len, 3000);
    assert_memory_equal(bytes, want, 3000);
    free(bytes);
    assert_total(f, 3000, 1);

    /* the same key again replaces the row */
    assert_int_equal(put_variant(f, &b, "w=64,h=64,type=WEBP", 8, 1000, false, 1 << 20), STORE_OK);
    assert_true(has_variant(f, &b, "w=64,h=64,type=WEBP", 8, 1000));
    assert_int_equal(store_variant_get(f->s, f->a, b.blob_id, b.version, "w=64,h=64,type=WEBP",
                                       &got, &bytes, &len),
                     STORE_OK);
    assert_string_equal(got.mime, "image/png");
    assert_false(got.is_zipped || got.is_encrypted);
    free(bytes);
    assert_int_equal(tmpdb_count(f->path, "variant"), 1);
    assert_total(f, 1000, 1);

    /* other keys are other variants; an unknown key is not found */
    assert_int_equal(put_variant(f, &b, "w=32", 9, 10, false, 1 << 20), STORE_OK);
    assert_true(has_variant(f, &b, "w=32", 9, 10));
    assert_false(has_variant(f, &b, "w=33", 0, 0));
    assert_total(f, 1010, 2);
    free(want);
}

/* Variants of any version but the BLOB's current one are neither returned
 * nor stored. */
static void test_variant_stale_version(void **state)
{
    fixture *f = *state;
    model_blob b, stale;
    store_variant_meta m;
    void *bytes = (void *)1;
    size_t len = 1;
    entity_with_image(f, MODEL_PERSON, 1, 100, &b);
    stale = b;
    stale.version = b.version + 1;
    assert_int_equal(put_variant(f, &stale, "w=1", 1, 10, false, 1000), STORE_ABSENT);
    stale.version = b.version - 1;
    assert_int_equal(put_variant(f, &stale, "w=1", 1, 10, true, 1000), STORE_ABSENT);
    stale = b;
    stale.blob_id = b.blob_id + 100; /* no such BLOB */
    assert_int_equal(put_variant(f, &stale, "w=1", 1, 10, false, 1000), STORE_ABSENT);
    assert_int_equal(tmpdb_count(f->path, "variant"), 0);
    assert_total(f, 0, 0);

    assert_int_equal(put_variant(f, &b, "w=1", 1, 10, false, 1000), STORE_OK);
    assert_int_equal(
        store_variant_get(f->s, f->a, b.blob_id, b.version + 1, "w=1", &m, &bytes, &len),
        STORE_ABSENT);
    assert_null(bytes);
    assert_int_equal(len, 0);
    assert_int_equal(
        store_variant_get(f->s, f->a, b.blob_id + 100, b.version, "w=1", &m, &bytes, &len),
        STORE_ABSENT);
    assert_true(has_variant(f, &b, "w=1", 1, 10));

    /* white-box: a row that (against the invariant) disagrees with its BLOB */
    tmpdb_exec(f->path, "UPDATE variant SET version = version + 1");
    assert_false(has_variant(f, &b, "w=1", 0, 0));
    b.version++;
    assert_false(has_variant(f, &b, "w=1", 0, 0));
}

/* New image bytes delete the variants of the old ones in the same
 * transaction; a change of ImageInfo alone keeps them. */
static void test_variant_invalidated_by_image_put(void **state)
{
    fixture *f = *state;
    model_blob b, other, next;
    model_blob_edit edit = {.description = "new text"};
    int32_t id = entity_with_image(f, MODEL_CONTACT, 1, 500, &b);
    entity_with_image(f, MODEL_CONTACT, 2, 600, &other);
    assert_int_equal(put_variant(f, &b, "w=1", 1, 100, false, 1 << 20), STORE_OK);
    assert_int_equal(put_variant(f, &b, "w=2", 2, 200, false, 1 << 20), STORE_OK);
    assert_int_equal(put_variant(f, &b, "thumb", 3, 300, true, 1 << 20), STORE_OK);
    assert_int_equal(put_variant(f, &other, "w=1", 4, 400, false, 1 << 20), STORE_OK);
    assert_int_equal(tmpdb_count(f->path, "variant"), 4);
    assert_total(f, 700, 3);

    assert_int_equal(
        store_image_info_put(f->s, f->a, MODEL_CONTACT, id, &edit, 0, STORE_ANY, &next), STORE_OK);
    assert_int_equal(next.version, b.version);
    assert_true(has_variant(f, &b, "w=1", 1, 100));

    replace_image(f, MODEL_CONTACT, id, 5, 700, &next);
    assert_int_equal(next.version, b.version + 1);
    assert_int_equal(tmpdb_count(f->path, "variant"), 1); /* the pinned one went too */
    assert_int_equal(tmpdb_count(f->path, "variant_data"), 1);
    assert_total(f, 400, 1);
    assert_false(has_variant(f, &b, "w=1", 0, 0));
    assert_false(has_variant(f, &b, "thumb", 0, 0));
    assert_false(has_variant(f, &next, "w=1", 0, 0));
    assert_true(has_variant(f, &other, "w=1", 4, 400));
    assert_int_equal(put_variant(f, &next, "w=1", 6, 50, false, 1 << 20), STORE_OK);
    assert_true(has_variant(f, &next, "w=1", 6, 50));
}

/* Deleting the image or the whole entity removes its variants. */
static void test_variant_removed_with_image(void **state)
{
    fixture *f = *state;
    model_blob b1, b2, b3;
    int32_t id1 = entity_with_image(f, MODEL_PERSON, 1, 100, &b1);
    int32_t id2 = entity_with_image(f, MODEL_PRODUCT, 2, 100, &b2);
    entity_with_image(f, MODEL_PROJECT, 3, 100, &b3);
    assert_int_equal(put_variant(f, &b1, "a", 1, 10, false, 1 << 20), STORE_OK);
    assert_int_equal(put_variant(f, &b1, "b", 2, 20, true, 1 << 20), STORE_OK);
    assert_int_equal(put_variant(f, &b2, "a", 3, 30, false, 1 << 20), STORE_OK);
    assert_int_equal(put_variant(f, &b2, "thumb", 4, 40, true, 1 << 20), STORE_OK);
    assert_int_equal(put_variant(f, &b3, "a", 5, 50, false, 1 << 20), STORE_OK);
    assert_int_equal(tmpdb_count(f->path, "variant"), 5);
    assert_total(f, 90, 3);

    assert_int_equal(store_image_delete(f->s, MODEL_PERSON, id1, STORE_ANY), STORE_OK);
    assert_int_equal(tmpdb_count(f->path, "variant"), 3);
    assert_total(f, 80, 2);
    assert_false(has_variant(f, &b1, "a", 0, 0));

    assert_int_equal(store_entity_delete(f->s, MODEL_PRODUCT, id2, STORE_ANY), STORE_OK);
    assert_int_equal(tmpdb_count(f->path, "variant"), 1);
    assert_int_equal(tmpdb_count(f->path, "variant_data"), 1);
    assert_total(f, 50, 1);
    assert_false(has_variant(f, &b2, "thumb", 0, 0));
    assert_true(has_variant(f, &b3, "a", 5, 50));
}

/* Unpinned variants are evicted least recently used first, a read counting
 * as a use, until they fit. */
static void test_variant_eviction_lru(void **state)
{
    fixture *f = *state;
    model_blob b, c;
    const int64_t max = 3000;
    entity_with_image(f, MODEL_PERSON, 1, 100, &b);
    entity_with_image(f, MODEL_PERSON, 2, 100, &c);
    assert_int_equal(put_variant(f, &b, "A", 1, 1000, false, max), STORE_OK);
    usleep(2000); /* distinct use times */
    assert_int_equal(put_variant(f, &c, "B", 2, 1000, false, max), STORE_OK);
    usleep(2000);
    assert_int_equal(put_variant(f, &b, "C", 3, 1000, false, max), STORE_OK);
    usleep(2000);
    assert_total(f, 3000, 3);
    assert_true(has_variant(f, &b, "A", 1, 1000)); /* A is now the most recent */
    usleep(2000);

    assert_int_equal(put_variant(f, &c, "D", 4, 1000, false, max), STORE_OK); /* B goes */
    assert_total(f, 3000, 3);
    assert_false(has_variant(f, &c, "B", 0, 0));
    usleep(2000);
    assert_int_equal(put_variant(f, &b, "E", 5, 1500, false, max), STORE_OK); /* C and A go */
    assert_total(f, 2500, 2);
    assert_false(has_variant(f, &b, "C", 0, 0));
    assert_false(has_variant(f, &b, "A", 0, 0));
    assert_true(has_variant(f, &c, "D", 4, 1000));
    assert_true(has_variant(f, &b, "E", 5, 1500));

    /* one larger than the whole cache stays alone, until the next put */
    usleep(2000);
    assert_int_equal(put_variant(f, &c, "huge", 6, 5000, false, max), STORE_OK);
    assert_total(f, 5000, 1);
    assert_true(has_variant(f, &c, "huge", 6, 5000));
    usleep(2000);
    assert_int_equal(put_variant(f, &b, "F", 7, 100, false, max), STORE_OK);
    assert_total(f, 100, 1);
    assert_true(has_variant(f, &b, "F", 7, 100));
}

/* Pinned variants are neither counted nor evicted. */
static void test_variant_pinned(void **state)
{
    fixture *f = *state;
    model_blob b;
    entity_with_image(f, MODEL_PRODUCT, 1, 100, &b);
    assert_int_equal(put_variant(f, &b, "thumb", 1, 5000, true, 1000), STORE_OK);
    assert_total(f, 0, 0);
    for (int i = 0; i < 10; i++) {
        char key[16];
        snprintf(key, sizeof(key), "w=%d", i);
        assert_int_equal(put_variant(f, &b, key, 10 + i, 400, false, 1000), STORE_OK);
        usleep(2000);
    }
    assert_total(f, 800, 2);
    assert_true(has_variant(f, &b, "thumb", 1, 5000));
    assert_true(has_variant(f, &b, "w=9", 19, 400));
    assert_false(has_variant(f, &b, "w=7", 0, 0));
    assert_int_equal(put_variant(f, &b, "thumb2", 2, 100, true, 0), STORE_OK); /* evicts nothing */
    assert_total(f, 800, 2);
    usleep(2000);

    /* put again unpinned, it counts; then w=8 and w=9, the oldest, make room */
    assert_int_equal(put_variant(f, &b, "thumb2", 2, 100, false, 1000), STORE_OK);
    assert_total(f, 900, 3);
    usleep(2000);
    assert_int_equal(put_variant(f, &b, "w=10", 20, 600, false, 1000), STORE_OK);
    assert_total(f, 700, 2);
    assert_true(has_variant(f, &b, "thumb", 1, 5000));
    assert_true(has_variant(f, &b, "thumb2", 2, 100));
    assert_false(has_variant(f, &b, "w=9", 0, 0));
    assert_int_equal(tmpdb_count(f->path, "variant"), 3);
    assert_int_equal(tmpdb_count(f->path, "variant_data"), 3); /* evicted bytes went too */
}

/* Uses remembered in memory survive a close and reopen. */
static void test_variant_use_survives_reopen(void **state)
{
    fixture *f = *state;
    model_blob b;
    entity_with_image(f, MODEL_PERSON, 1, 100, &b);
    assert_int_equal(put_variant(f, &b, "A", 1, 100, false, 1000), STORE_OK);
    int64_t before = tmpdb_int(f->path, "SELECT last_used_ms FROM variant", 0);
    usleep(3000);
    assert_true(has_variant(f, &b, "A", 1, 100));
    store_close(f->s);
    assert_int_equal(store_open(f->path, NULL, &f->s), STORE_OK);
    assert_true(tmpdb_int(f->path, "SELECT last_used_ms FROM variant", 0) > before);
}

/* Readers write their uses themselves once enough are pending (and no
 * writer is busy), without waiting for a put or the close. */
static void test_variant_uses_written_by_readers(void **state)
{
    fixture *f = *state;
    model_blob b;
    entity_with_image(f, MODEL_PERSON, 1, 100, &b);
    for (int i = 0; i < 100; i++) {
        char key[16];
        snprintf(key, sizeof(key), "w=%d", i);
        assert_int_equal(put_variant(f, &b, key, i, 10, false, 1 << 20), STORE_OK);
    }
    int64_t before = tmpdb_int(f->path, "SELECT max(last_used_ms) FROM variant", 0);
    usleep(3000);
    for (int i = 0; i < 70; i++) {
        char key[16];
        snprintf(key, sizeof(key), "w=%d", i);
        assert_true(has_variant(f, &b, key, i, 10));
    }
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM variant WHERE last_used_ms > %lld",
             (long long)before);
    int64_t written = tmpdb_int(f->path, sql, 0);
    assert_true(written >= 32 && written < 70); /* the last few are still pending */
}

/* ---- metadata ----------------------------------------------------------- */

static void test_meta(void **state)
{
    fixture *f = *state;
    void *v = (void *)1;
    size_t len = 1;
    const unsigned char fp[16] = {1, 2, 3, 0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    assert_int_equal(store_meta_get(f->s, f->a, "key_fingerprint", &v, &len), STORE_ABSENT);
    assert_null(v);
    assert_int_equal(len, 0);

    assert_int_equal(store_meta_put(f->s, "key_fingerprint", fp, sizeof(fp)), STORE_OK);
    assert_int_equal(store_meta_get(f->s, f->a, "key_fingerprint", &v, &len), STORE_OK);
    assert_int_equal(len, sizeof(fp));
    assert_memory_equal(v, fp, sizeof(fp));

    assert_int_equal(store_meta_put(f->s, "key_fingerprint", "xyz", 3), STORE_OK);
    assert_int_equal(store_meta_get(f->s, f->a, "key_fingerprint", &v, &len), STORE_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(v, "xyz", 3);
    assert_int_equal(tmpdb_count(f->path, "meta"), 1);

    assert_int_equal(store_meta_put(f->s, "empty", NULL, 0), STORE_OK);
    assert_int_equal(store_meta_get(f->s, f->a, "empty", &v, &len), STORE_OK);
    assert_int_equal(len, 0);
    assert_non_null(v);
    assert_int_equal(store_meta_get(f->s, f->a, "Key_Fingerprint", &v, &len), STORE_ABSENT);
}

/* ---- rewrite_all -------------------------------------------------------- */

typedef struct {
    int calls;
    int fail_at;    /* the call (1-based) that fails, 0: none */
    store_err fail_rc; /* what it returns */
    bool keep_odd;  /* keep (NULL) values whose first byte is odd */
} rewriter;

/* The test's "re-encoding": a marker byte 0xEE, then every byte XOR 0x5A;
 * flags: zipped flipped, encrypted set. Values already encrypted are kept,
 * as rekey would find them readable with the new key. */
static store_err rewrite_fn(void *ctx, const void *in, size_t len, bool zipped, bool encrypted,
                            void **out, size_t *out_len, bool *out_zipped, bool *out_encrypted)
{
    rewriter *r = ctx;
    const unsigned char *p = in;
    if (++r->calls == r->fail_at)
        return r->fail_rc;
    if (encrypted || (r->keep_odd && len > 0 && (p[0] & 1)))
        return STORE_OK; /* *out stays NULL: keep */
    unsigned char *q = malloc(len + 1);
    q[0] = 0xEE;
    for (size_t i = 0; i < len; i++)
        q[i + 1] = p[i] ^ 0x5A;
    *out = q;
    *out_len = len + 1;
    *out_zipped = !zipped;
    *out_encrypted = true;
    return STORE_OK;
}

/* tmpdb_payload(seed, n) as rewrite_fn turns it. */
static unsigned char *rewritten_payload(int seed, size_t n)
{
    unsigned char *p = tmpdb_payload(seed, n), *q = malloc(n + 1);
    q[0] = 0xEE;
    for (size_t i = 0; i < n; i++)
        q[i + 1] = p[i] ^ 0x5A;
    free(p);
    return q;
}

/* The image of (k, id) is rewritten_payload(seed, n), with the record
 * matching it and its version and dates those of `before`. */
static void assert_rewritten_image(fixture *f, model_kind k, int32_t id, int seed, size_t n,
                                   const model_blob *before)
{
    model_blob b;
    void *bytes = NULL;
    size_t len = 0;
    unsigned char *want = rewritten_payload(seed, n);
    char sql[160];
    assert_int_equal(store_image_info(f->s, f->a, k, id, &b), STORE_OK); /* the stored bytes: */
    tmpdb_stored_sql(sql, sizeof(sql), b.blob_id);
    bytes = tmpdb_bytes(f->path, sql, &len); /* not decodable, so not read through the store */
    assert_int_equal(len, n + 1);
    assert_memory_equal(bytes, want, n + 1);
    assert_int_equal(b.blob_size, (int32_t)n + 1);
    assert_int_equal(b.original_size, before->original_size);
    assert_true(b.is_encrypted);
    assert_int_equal(b.is_zipped, !before->is_zipped);
    assert_int_equal(b.version, before->version);
    assert_int_equal(b.info_version, before->info_version + 1);
    assert_int_equal(b.created_ms, before->created_ms);
    assert_int_equal(b.updated_ms, before->updated_ms);
    free(bytes);
    free(want);
}

/* Variant `key` of b is rewritten_payload(seed, n) with rewritten flags. */
static void assert_rewritten_variant(fixture *f, const model_blob *b, const char *key, int seed,
                                     size_t n)
{
    void *bytes = NULL;
    size_t len = 0;
    unsigned char *want = rewritten_payload(seed, n);
    char sql[256]; /* kept bytes that do not decode: read around the store */
    snprintf(sql, sizeof(sql),
             "SELECT d.bytes FROM variant v JOIN variant_data d ON d.variant_id = v.id "
             "WHERE v.blob_id = %d AND v.version = %lld AND v.key = '%s'",
             b->blob_id, (long long)b->version, key);
    bytes = tmpdb_bytes(f->path, sql, &len);
    assert_int_equal(len, n + 1);
    assert_memory_equal(bytes, want, n + 1);
    snprintf(sql, sizeof(sql),
             "SELECT is_encrypted + 2 * is_zipped FROM variant WHERE blob_id = %d AND key = '%s'",
             b->blob_id, key);
    assert_int_equal(tmpdb_int(f->path, sql, -1), 3);
    free(bytes);
    free(want);
}

static void test_rewrite_all(void **state)
{
    fixture *f = *state;
    model_blob b1, b2, b3, none;
    model_blob_edit edit = {.description = "no bytes"};
    rewriter r = {0};
    int64_t count = -1;
    int32_t id1 = entity_with_image(f, MODEL_PERSON, 1, 1000, &b1);
    int32_t id2 = entity_with_image(f, MODEL_CONTACT, 2, 70000, &b2);
    int32_t id3 = entity_with_image(f, MODEL_PRODUCT, 3, 10, &b3);
    int32_t id4 = entity_with_image(f, MODEL_PROJECT, 4, 10, &none);
    assert_int_equal(store_image_delete(f->s, MODEL_PROJECT, id4, STORE_ANY), STORE_OK);
    assert_int_equal(
        store_image_info_put(f->s, f->a, MODEL_PROJECT, id4, &edit, 0, STORE_ANY, &none),
        STORE_OK); /* a record without bytes: skipped */
    assert_int_equal(put_variant(f, &b1, "a", 11, 100, false, 1 << 20), STORE_OK);
    assert_int_equal(put_variant(f, &b1, "b", 12, 200, true, 1 << 20), STORE_OK);
    assert_int_equal(put_variant(f, &b3, "a", 13, 300, false, 1 << 20), STORE_OK);

    assert_int_equal(store_rewrite_all(f->s, rewrite_fn, &r, &count), STORE_OK);
    assert_int_equal(count, 3);
    assert_int_equal(r.calls, 3 + 3);
    assert_rewritten_image(f, MODEL_PERSON, id1, 1, 1000, &b1);
    assert_rewritten_image(f, MODEL_CONTACT, id2, 2, 70000, &b2);
    assert_rewritten_image(f, MODEL_PRODUCT, id3, 3, 10, &b3);
    assert_rewritten_variant(f, &b1, "a", 11, 100);
    assert_rewritten_variant(f, &b1, "b", 12, 200);
    assert_rewritten_variant(f, &b3, "a", 13, 300);
    assert_total(f, 101 + 301, 2); /* sizes follow the new bytes */
    assert_int_equal(store_image_info(f->s, f->a, MODEL_PROJECT, id4, &none), STORE_OK);
    assert_int_equal(none.blob_size, 0);

    /* a second run finds everything done and changes nothing */
    r = (rewriter){0};
    assert_int_equal(store_rewrite_all(f->s, rewrite_fn, &r, &count), STORE_OK);
    assert_int_equal(count, 0);
    assert_int_equal(r.calls, 6);
    assert_rewritten_image(f, MODEL_PERSON, id1, 1, 1000, &b1);
}

/* Values fn keeps are left as they are and not counted. */
static void test_rewrite_keep(void **state)
{
    fixture *f = *state;
    model_blob b;
    int32_t id[4];
    rewriter r = {.keep_odd = true};
    int64_t count = -1, kept = 0;
    for (int i = 0; i < 4; i++) /* first byte seed * 131: odd for 1 and 3 */
        id[i] = entity_with_image(f, MODEL_PERSON, i, 50, &b);
    assert_int_equal(store_rewrite_all(f->s, rewrite_fn, &r, &count), STORE_OK);
    assert_int_equal(count, 2);
    for (int i = 0; i < 4; i++) {
        model_blob now;
        assert_int_equal(store_image_info(f->s, f->a, MODEL_PERSON, id[i], &now), STORE_OK);
        kept += !now.is_encrypted;
        assert_int_equal(now.blob_size, i % 2 ? 50 : 51);
    }
    assert_int_equal(kept, 2);
}

/* An error of fn stops the run and is returned; what was committed before
 * stays rewritten, the failing BLOB (variants included) is untouched, and
 * running again completes the work. */
static void test_rewrite_error(void **state)
{
    fixture *f = *state;
    model_blob b1, b2, b3, now;
    rewriter r = {.fail_at = 3, .fail_rc = STORE_UNAVAILABLE}; /* b2's variant */
    int64_t count = -1;
    int32_t id1 = entity_with_image(f, MODEL_PERSON, 1, 100, &b1);
    int32_t id2 = entity_with_image(f, MODEL_PERSON, 2, 200, &b2);
    int32_t id3 = entity_with_image(f, MODEL_PERSON, 3, 300, &b3);
    assert_int_equal(put_variant(f, &b2, "a", 12, 20, false, 1 << 20), STORE_OK);

    assert_int_equal(store_rewrite_all(f->s, rewrite_fn, &r, &count), STORE_UNAVAILABLE);
    assert_int_equal(count, 1);
    assert_int_equal(r.calls, 3);
    assert_rewritten_image(f, MODEL_PERSON, id1, 1, 100, &b1);
    assert_int_equal(store_image_info(f->s, f->a, MODEL_PERSON, id2, &now), STORE_OK);
    assert_int_equal(now.blob_size, 200);
    assert_false(now.is_encrypted);
    assert_true(has_variant(f, &b2, "a", 12, 20));
    assert_int_equal(store_image_info(f->s, f->a, MODEL_PERSON, id3, &now), STORE_OK);
    assert_int_equal(now.blob_size, 300);

    r = (rewriter){0};
    assert_int_equal(store_rewrite_all(f->s, rewrite_fn, &r, &count), STORE_OK);
    assert_int_equal(count, 2);
    assert_rewritten_image(f, MODEL_PERSON, id1, 1, 100, &b1);
    assert_rewritten_image(f, MODEL_PERSON, id2, 2, 200, &b2);
    assert_rewritten_image(f, MODEL_PERSON, id3, 3, 300, &b3);
    assert_rewritten_variant(f, &b2, "a", 12, 20);

    /* a failure on the very first call rewrites nothing */
    r = (rewriter){.fail_at = 1, .fail_rc = STORE_INTERNAL};
    assert_int_equal(store_rewrite_all(f->s, rewrite_fn, &r, &count), STORE_INTERNAL);
    assert_int_equal(count, 0);
}

/* ---- concurrency -------------------------------------------------------- */

#define VWRITERS 2
#define VREADERS 4
#define VKEYS 40
#define VPUTS 120

/* Variant number i: its key, seed and size. */
static void vkey(int i, char *key, size_t n)
{
    snprintf(key, n, "w=%d", i);
}

static size_t vsize(int i)
{
    return 200 + (size_t)i * 37;
}

typedef struct {
    fixture *f;
    model_blob b;
    int index;
    atomic_int *writers_left;
    int reads, hits;
    int failures; /* checked by the main thread: cmocka is not thread-safe */
} vworker;

/* Puts variants round-robin into a cache too small for all of them. */
static void *vwriter(void *arg)
{
    vworker *w = arg;
    for (int j = 0; j < VPUTS; j++) {
        int i = (j * VWRITERS + w->index) % VKEYS;
        char key[16];
        size_t n = vsize(i);
        unsigned char *bytes = tmpdb_payload(i, n);
        vkey(i, key, sizeof(key));
        if (store_variant_put(w->f->s, w->b.blob_id, w->b.version, key, &png_meta, bytes, n, false,
                              4000) != STORE_OK)
            w->failures++;
        free(bytes);
    }
    atomic_fetch_sub(w->writers_left, 1);
    return NULL;
}

/* Every read finds either nothing or exactly the bytes of that key; the
 * pinned thumbnail is always there. */
static void *vreader(void *arg)
{
    vworker *w = arg;
    arena_t *a = arena_create();
    for (; atomic_load(w->writers_left) > 0; w->reads++) {
        int i = (w->reads * 7 + w->index) % (VKEYS + 1);
        char key[16];
        size_t n = i < VKEYS ? vsize(i) : 999;
        store_variant_meta m;
        void *got = NULL;
        size_t len = 0;
        vkey(i, key, sizeof(key));
        store_err rc = store_variant_get(w->f->s, a, w->b.blob_id, w->b.version,
                                         i < VKEYS ? key : "thumb", &m, &got, &len);
        unsigned char *want = tmpdb_payload(i < VKEYS ? i : 99, n);
        if (rc == STORE_OK && (len != n || memcmp(got, want, n) != 0))
            w->failures++;
        else if (rc != STORE_OK && (rc != STORE_ABSENT || i == VKEYS))
            w->failures++;
        w->hits += rc == STORE_OK;
        free(want);
        free(got);
        arena_reset(a);
    }
    arena_destroy(a);
    return NULL;
}

static void test_variant_concurrent(void **state)
{
    fixture *f = *state;
    model_blob b;
    pthread_t th[VWRITERS + VREADERS];
    vworker w[VWRITERS + VREADERS];
    atomic_int writers_left = VWRITERS;
    entity_with_image(f, MODEL_PRODUCT, 1, 100, &b);
    assert_int_equal(put_variant(f, &b, "thumb", 99, 999, true, 4000), STORE_OK);
    for (int i = 0; i < VWRITERS + VREADERS; i++) {
        w[i] = (vworker){.f = f, .b = b, .index = i, .writers_left = &writers_left};
        assert_int_equal(pthread_create(&th[i], NULL, i < VWRITERS ? vwriter : vreader, &w[i]), 0);
    }
    int hits = 0;
    for (int i = 0; i < VWRITERS + VREADERS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
        hits += w[i].hits;
    }
    assert_true(hits > VREADERS); /* the readers did read something */
    int64_t bytes = 0, n = 0;
    assert_int_equal(store_variant_total(f->s, &bytes, &n), STORE_OK);
    assert_true(bytes <= 4000 && n > 0);
    assert_total(f, bytes, n);
    assert_true(has_variant(f, &b, "thumb", 99, 999));
}

/* R7: a variant put races content puts from another store on the same
 * database (as two servers do). The put holds the BLOB row from its
 * version check to its commit, so the content put's deletion of stale
 * variants always sees it: at no point is a variant, the pinned thumbnail
 * included, stored at a version its BLOB no longer has. */
#define R7_CONTENT_PUTS 40
#define STALE_SQL                                                                                  \
    "SELECT count(*) FROM variant v JOIN blob b ON b.id = v.blob_id WHERE v.version <> b.version"

typedef struct {
    fixture *f;
    store_t *s;
    int32_t product;
    atomic_int *content_left;
    int stored, absent;
    int failures; /* checked by the main thread: cmocka is not thread-safe */
} r7worker;

/* New image bytes, again and again, through the second store. */
static void *r7_content(void *arg)
{
    r7worker *w = arg;
    arena_t *a = arena_create();
    for (int i = 0; i < R7_CONTENT_PUTS; i++) {
        model_blob b;
        store_content c = tmpdb_content(w->f->dir, 100 + i, 300 + (size_t)i, "image/jpeg");
        if (c.fd < 0 ||
            store_image_put(w->s, a, MODEL_PRODUCT, w->product, &c, 0, STORE_ANY, &b) != STORE_OK)
            w->failures++;
        if (c.fd >= 0)
            close(c.fd);
        arena_reset(a);
        usleep(500);
    }
    atomic_store(w->content_left, 0);
    arena_destroy(a);
    return NULL;
}

/* The pinned thumbnail and an unpinned variant of the version just read,
 * stored while the content keeps changing: each is stored or ABSENT. */
static void *r7_variants(void *arg)
{
    r7worker *w = arg;
    arena_t *a = arena_create();
    unsigned char *bytes = tmpdb_payload(5, 64);
    while (atomic_load(w->content_left) > 0) {
        model_blob b;
        if (store_image_info(w->s, a, MODEL_PRODUCT, w->product, &b) != STORE_OK) {
            w->failures++;
            break;
        }
        for (int pinned = 0; pinned < 2; pinned++) {
            store_err rc = store_variant_put(w->s, b.blob_id, b.version, pinned ? "thumb" : "w=8",
                                             &png_meta, bytes, 64, pinned, 1 << 20);
            w->stored += rc == STORE_OK;
            w->absent += rc == STORE_ABSENT;
            w->failures += rc != STORE_OK && rc != STORE_ABSENT;
        }
        arena_reset(a);
    }
    free(bytes);
    arena_destroy(a);
    return NULL;
}

static void test_variant_put_races_content_put(void **state)
{
    fixture *f = *state;
    model_blob b;
    store_t *s2 = NULL;
    atomic_int content_left = 1;
    pthread_t th[2];
    int32_t product = entity_with_image(f, MODEL_PRODUCT, 1, 100, &b);
    assert_int_equal(store_open(f->path, NULL, &s2), STORE_OK);
    r7worker w[2] = {
        {.f = f, .s = s2, .product = product, .content_left = &content_left},
        {.f = f, .s = f->s, .product = product, .content_left = &content_left},
    };
    assert_int_equal(pthread_create(&th[0], NULL, r7_content, &w[0]), 0);
    assert_int_equal(pthread_create(&th[1], NULL, r7_variants, &w[1]), 0);
    /* every committed state keeps the invariant, not only the last one
     * (the next content put would delete a stale row) */
    int64_t stale = 0, looks = 0;
    for (; atomic_load(&content_left) > 0; looks++)
        stale += tmpdb_int(f->path, STALE_SQL, 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
    }
    assert_int_equal(stale, 0);
    assert_true(looks > 0);
    store_close(s2);
    assert_true(w[1].stored > 0); /* the race did run */
    assert_int_equal(tmpdb_int(f->path, STALE_SQL, 0), 0);
    /* what is left is of the current version, and served */
    assert_int_equal(store_image_info(f->s, f->a, MODEL_PRODUCT, product, &b), STORE_OK);
    if (tmpdb_count(f->path, "variant") > 0)
        assert_true(has_variant(f, &b, "thumb", 5, 64) || has_variant(f, &b, "w=8", 5, 64));
}

int main(void)
{
    log_set_level(LOG_WARN);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_schema_v4),
        T(test_migrate_from_v3),
        T(test_variant_round_trip),
        T(test_variant_stale_version),
        T(test_variant_invalidated_by_image_put),
        T(test_variant_removed_with_image),
        T(test_variant_eviction_lru),
        T(test_variant_pinned),
        T(test_variant_use_survives_reopen),
        T(test_variant_uses_written_by_readers),
        T(test_meta),
        T(test_rewrite_all),
        T(test_rewrite_keep),
        T(test_rewrite_error),
        T(test_variant_concurrent),
        T(test_variant_put_races_content_put),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
