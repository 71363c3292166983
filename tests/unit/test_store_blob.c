/*
 * test_store_blob.c — unit tests of the BLOB records by BlobId (the BLOB
 * agent), store_image_link, store_blob_sweep and a product's thumbnail of
 * store.h against the SQLite backend, including schema migration v5.
 *
 * Every test gets a fresh database in its own temporary directory. Some
 * checks read the database file beside the store (row counts, unlinked_ms),
 * as test_store.c does: the store's answers alone cannot show that a row is
 * gone rather than hidden.
 */
#include <setjmp.h>
#include <stdarg.h>
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
#include "core/text.h"
#include "store/store.h"

#include "tmpdb.h"

typedef struct {
    tmpdb_store db;
    int32_t uid; /* a user to make changes as */
} fixture;

/* ---- fixture ----------------------------------------------------------- */

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL || tmpdb_store_open(&f->db, "blob", NULL) != 0)
        return -1;
    model_user u = {
        .name = "alice", .full_name = "Alice", .role = MODEL_ROLE_EDITOR, .pw_hash = "$argon2id$x"};
    if (store_user_add(f->db.s, &u) != STORE_OK)
        return -1;
    f->uid = u.id;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tmpdb_store_close(&f->db);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------ */

/* An unlinked temporary file in f->db.dir holding tmpdb_payload(seed, n), as a
 * store_content of that MIME type. The caller closes c->fd. */
static store_content content(fixture *f, int seed, size_t n, const char *mime)
{
    store_content c = tmpdb_content(f->db.dir, seed, n, mime);
    assert_true(c.fd >= 0);
    return c;
}

static int32_t create(fixture *f, model_kind k)
{
    int32_t id;
    assert_int_equal(tmpdb_entity(f->db.s, k, &id), STORE_OK);
    return id;
}

/* A new unlinked record holding tmpdb_payload(seed, n) as image/png. */
static int32_t new_blob(fixture *f, int seed, size_t n, model_blob *b)
{
    store_content c = content(f, seed, n, "image/png");
    assert_int_equal(store_blob_create(f->db.s, f->db.a, NULL, &c, f->uid, b), STORE_OK);
    close(c.fd);
    assert_true(b->blob_id > 0);
    return b->blob_id;
}

/* Stores tmpdb_payload(seed, n) as the image of (k, id). */
static model_blob image_put(fixture *f, model_kind k, int32_t id, int seed, size_t n)
{
    model_blob b;
    store_content c = content(f, seed, n, "image/jpeg");
    assert_int_equal(store_image_put(f->db.s, f->db.a, k, id, &c, f->uid, STORE_ANY, &b), STORE_OK);
    close(c.fd);
    return b;
}

/* Stores tmpdb_payload(seed, n) as the thumbnail of product `id`. */
static store_err thumb_put(fixture *f, int32_t id, int seed, size_t n, model_blob *b)
{
    store_content c = content(f, seed, n, "image/png");
    store_err rc = store_thumbnail_put(f->db.s, f->db.a, id, &c, f->uid, b);
    close(c.fd);
    return rc;
}

/* The bytes of record blob_id are tmpdb_payload(seed, n). */
static void assert_blob_bytes(fixture *f, int32_t blob_id, int seed, size_t n)
{
    model_blob b;
    void *got = NULL;
    size_t len = 0;
    unsigned char *want = tmpdb_payload(seed, n);
    assert_int_equal(store_blob_content_get(f->db.s, f->db.a, blob_id, &b, &got, &len), STORE_OK);
    assert_int_equal(b.blob_id, blob_id);
    assert_int_equal(len, n);
    assert_int_equal(b.blob_size, (int32_t)n);
    assert_memory_equal(got, want, n);
    free(got);
    free(want);
}

/* The image of (k, id) is record blob_id (0: none). */
static void assert_image_is(fixture *f, model_kind k, int32_t id, int32_t blob_id)
{
    model_blob b;
    assert_int_equal(store_image_info(f->db.s, f->db.a, k, id, &b), STORE_OK);
    assert_int_equal(b.blob_id, blob_id);
}

#define NULL_MS INT64_MIN /* tmpdb_int's answer for unlinked_ms NULL */

/* blob.unlinked_ms of record blob_id: NULL_MS while linked, -1 when gone. */
static int64_t unlinked_ms(const fixture *f, int32_t blob_id)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT unlinked_ms FROM blob WHERE id = %d", (int)blob_id);
    return tmpdb_int(f->db.path, sql, NULL_MS);
}

static int64_t sweep(fixture *f, int64_t cutoff_ms)
{
    int64_t n = -1;
    assert_int_equal(store_blob_sweep(f->db.s, cutoff_ms, &n), STORE_OK);
    return n;
}

static const store_variant_meta png_meta = {.mime = "image/png", .original_size = 3};

/* ---- schema ------------------------------------------------------------- */

static void test_schema_v5(void **state)
{
    TMPDB_SQLITE_ONLY("SQLite's pragma_table_info");
    fixture *f = *state;
    assert_true(tmpdb_schema_version(f->db.path) >= 5); /* later migrations add to it */
    assert_int_equal(tmpdb_int(f->db.path,
                             "SELECT count(*) FROM pragma_table_info('blob') "
                             "WHERE name = 'unlinked_ms'",
                             0),
                     1);
    assert_int_equal(tmpdb_int(f->db.path,
                             "SELECT count(*) FROM pragma_table_info('product') "
                             "WHERE name = 'thumb_blob_id'",
                             0),
                     1);
    /* the thumbnail link is a foreign key that clears itself */
    assert_int_equal(tmpdb_int(f->db.path,
                             "SELECT count(*) FROM pragma_foreign_key_list('product') "
                             "WHERE \"from\" = 'thumb_blob_id' AND \"table\" = 'blob' "
                             "AND on_delete = 'SET NULL'",
                             0),
                     1);
}

/* A database left at version 4 keeps its images linked: the new column is
 * NULL for them and no sweep ever takes them. */
static void test_migrate_from_v4(void **state)
{
    TMPDB_SQLITE_ONLY("an older SQLite schema made by hand (PostgreSQL starts at its own version)");
    fixture *f = *state;
    int32_t person = create(f, MODEL_PERSON), product = create(f, MODEL_PRODUCT);
    model_blob pb = image_put(f, MODEL_PERSON, person, 1, 300);
    model_blob rb = image_put(f, MODEL_PRODUCT, product, 2, 400);
    int64_t current = tmpdb_schema_version(f->db.path);
    store_close(f->db.s);
    f->db.s = NULL;
    /* what v5 and later versions (v6: paired credentials) created goes too */
    tmpdb_undo_v7_v10(f->db.path);
    tmpdb_exec(f->db.path, "DROP INDEX blob_unlinked_ms; ALTER TABLE blob DROP COLUMN unlinked_ms; "
                "DROP INDEX product_thumb_blob_id; ALTER TABLE product DROP COLUMN thumb_blob_id; "
                "DROP INDEX cred_pair_id; ALTER TABLE cred DROP COLUMN pair_id; "
                "PRAGMA user_version = 4");
    assert_int_equal(tmpdb_int(f->db.path,
                             "SELECT count(*) FROM pragma_table_info('blob') "
                             "WHERE name = 'unlinked_ms'",
                             0),
                     0);
    assert_int_equal(store_open(f->db.path, NULL, &f->db.s), STORE_OK);
    assert_int_equal(tmpdb_schema_version(f->db.path), current);
    assert_int_equal(unlinked_ms(f, pb.blob_id), NULL_MS);
    assert_int_equal(unlinked_ms(f, rb.blob_id), NULL_MS);
    assert_int_equal(sweep(f, INT64_MAX), 0);
    assert_image_is(f, MODEL_PERSON, person, pb.blob_id);
    assert_image_is(f, MODEL_PRODUCT, product, rb.blob_id);
    assert_blob_bytes(f, pb.blob_id, 1, 300);
    assert_blob_bytes(f, rb.blob_id, 2, 400);
    /* and the new columns work on the migrated file */
    model_blob t;
    assert_int_equal(thumb_put(f, product, 3, 50, &t), STORE_OK);
    assert_int_equal(store_image_link(f->db.s, MODEL_PERSON, person, 0, f->uid), STORE_OK);
    assert_true(unlinked_ms(f, pb.blob_id) > 0);
}

/* ---- records by BlobId ---------------------------------------------------- */

static void test_blob_create_round_trip(void **state)
{
    fixture *f = *state;
    int64_t before = text_now_ms();
    model_blob_edit edit = {.description = "a cat", .extra_info = "x=1"};
    store_content c = content(f, 7, 70000, "image/gif"); /* kept as given: no codec */
    model_blob b;
    assert_int_equal(store_blob_create(f->db.s, f->db.a, &edit, &c, f->uid, &b), STORE_OK);
    close(c.fd);
    assert_true(b.blob_id > 0);
    assert_string_equal(b.description, "a cat");
    assert_string_equal(b.extra_info, "x=1");
    assert_string_equal(b.conceptual_type, "PHOTO"); /* NULL member: the default */
    assert_string_equal(b.mime_type, "image/gif");
    assert_int_equal(b.blob_size, 70000);
    assert_int_equal(b.original_size, 70000);
    assert_false(b.is_zipped);
    assert_false(b.is_encrypted);
    assert_true(b.version >= 1 && b.info_version >= 1);
    assert_true(b.created_ms >= before && b.updated_ms >= b.created_ms);
    assert_non_null(b.created_by);
    assert_string_equal(b.created_by->name, "alice");
    assert_non_null(b.updated_by);
    assert_int_equal(b.updated_by->id, f->uid);
    /* created unlinked, since now */
    assert_true(unlinked_ms(f, b.blob_id) >= before);

    model_blob g;
    assert_int_equal(store_blob_get(f->db.s, f->db.a, b.blob_id, &g), STORE_OK);
    assert_int_equal(g.blob_id, b.blob_id);
    assert_string_equal(g.description, "a cat");
    assert_string_equal(g.mime_type, "image/gif");
    assert_int_equal(g.version, b.version);
    assert_int_equal(g.info_version, b.info_version);
    assert_blob_bytes(f, b.blob_id, 7, 70000);
}

/* No content: a record without bytes, every client field defaulted. */
static void test_blob_create_empty(void **state)
{
    fixture *f = *state;
    model_blob b, g;
    model_blob_edit edit = {.conceptual_type = "LOGO"};
    assert_int_equal(store_blob_create(f->db.s, f->db.a, NULL, NULL, f->uid, &b), STORE_OK);
    assert_true(b.blob_id > 0);
    assert_string_equal(b.description, "");
    assert_string_equal(b.extra_info, "");
    assert_string_equal(b.mime_type, "");
    assert_string_equal(b.conceptual_type, "PHOTO");
    assert_int_equal(b.blob_size, 0);
    assert_int_equal(b.version, 0);
    assert_true(b.info_version >= 1); /* "i0" means "no record" to the API */
    void *bytes = (void *)1;
    size_t len = 99;
    assert_int_equal(store_blob_content_get(f->db.s, f->db.a, b.blob_id, &g, &bytes, &len), STORE_ABSENT);
    assert_int_equal(g.blob_id, b.blob_id); /* the record is there, the bytes are not */
    assert_null(bytes);
    assert_int_equal(len, 0);

    assert_int_equal(store_blob_create(f->db.s, f->db.a, &edit, NULL, f->uid, &g), STORE_OK);
    assert_string_equal(g.conceptual_type, "LOGO");
    assert_true(g.blob_id > b.blob_id);
    assert_int_equal(tmpdb_count_stored(f->db.path), 0);
}

static void test_blob_missing(void **state)
{
    fixture *f = *state;
    model_blob b;
    model_blob_edit edit = {.description = "d"};
    void *bytes = NULL;
    size_t len = 0;
    assert_int_equal(store_blob_get(f->db.s, f->db.a, 4242, &b), STORE_ABSENT);
    assert_int_equal(store_blob_info_put(f->db.s, f->db.a, 4242, &edit, f->uid, &b), STORE_ABSENT);
    store_content c = content(f, 1, 10, "image/png");
    assert_int_equal(store_blob_content_put(f->db.s, f->db.a, 4242, &c, f->uid, &b), STORE_ABSENT);
    close(c.fd);
    b.blob_id = 77;
    assert_int_equal(store_blob_content_get(f->db.s, f->db.a, 4242, &b, &bytes, &len), STORE_ABSENT);
    assert_int_equal(b.blob_id, 0); /* no record at all */
    assert_null(bytes);
    assert_int_equal(store_blob_delete(f->db.s, 4242), STORE_OK);
    assert_int_equal(store_blob_delete(f->db.s, 0), STORE_OK);
    assert_int_equal(tmpdb_count(f->db.path, "blob"), 0);
    assert_int_equal(tmpdb_count_stored(f->db.path), 0);
}

static void test_blob_info_put(void **state)
{
    fixture *f = *state;
    model_blob b, u, g;
    int32_t id = new_blob(f, 1, 100, &b);
    int32_t bob;
    model_user user = {.name = "bob", .full_name = "Bob", .pw_hash = "$argon2id$y"};
    assert_int_equal(store_user_add(f->db.s, &user), STORE_OK);
    bob = user.id;
    model_blob_edit edit = {.description = "new", .conceptual_type = "LOGO"};
    assert_int_equal(store_blob_info_put(f->db.s, f->db.a, id, &edit, bob, &u), STORE_OK);
    assert_int_equal(u.blob_id, id);
    assert_string_equal(u.description, "new");
    assert_string_equal(u.conceptual_type, "LOGO");
    assert_string_equal(u.extra_info, ""); /* NULL member: unchanged */
    assert_string_equal(u.mime_type, "image/png");
    assert_int_equal(u.info_version, b.info_version + 1);
    assert_int_equal(u.version, b.version); /* the bytes did not change */
    assert_int_equal(u.updated_by->id, bob);
    assert_int_equal(u.created_by->id, f->uid);
    assert_true(u.updated_ms >= b.updated_ms);
    assert_int_equal(store_blob_get(f->db.s, f->db.a, id, &g), STORE_OK);
    assert_string_equal(g.description, "new");
    assert_int_equal(g.info_version, u.info_version);
    assert_blob_bytes(f, id, 1, 100);
    assert_true(unlinked_ms(f, id) > 0); /* editing does not link */
}

/* New bytes keep the client fields, move both versions and retire the
 * variants of the old ones. */
static void test_blob_content_put(void **state)
{
    fixture *f = *state;
    model_blob b, u;
    model_blob_edit edit = {.description = "kept", .extra_info = "also", .conceptual_type = "X"};
    store_content c = content(f, 1, 100, "image/png");
    assert_int_equal(store_blob_create(f->db.s, f->db.a, &edit, &c, f->uid, &b), STORE_OK);
    close(c.fd);
    assert_int_equal(
        store_variant_put(f->db.s, b.blob_id, b.version, "w=1", &png_meta, "abc", 3, false, 1000),
        STORE_OK);
    c = content(f, 2, 250, "image/jpeg");
    assert_int_equal(store_blob_content_put(f->db.s, f->db.a, b.blob_id, &c, f->uid, &u), STORE_OK);
    close(c.fd);
    assert_int_equal(u.blob_id, b.blob_id);
    assert_string_equal(u.description, "kept");
    assert_string_equal(u.extra_info, "also");
    assert_string_equal(u.conceptual_type, "X");
    assert_string_equal(u.mime_type, "image/jpeg");
    assert_int_equal(u.blob_size, 250);
    assert_int_equal(u.original_size, 250);
    assert_false(u.is_encrypted);
    assert_int_equal(u.version, b.version + 1);
    assert_int_equal(u.info_version, b.info_version + 1);
    assert_int_equal(u.created_ms, b.created_ms);
    assert_blob_bytes(f, b.blob_id, 2, 250);
    assert_int_equal(tmpdb_count(f->db.path, "variant"), 0);
    assert_int_equal(tmpdb_count(f->db.path, "variant_data"), 0);
    assert_int_equal(tmpdb_count_stored(f->db.path), 1);
}

/* Bytes that do not match their record (written around the store) are
 * STORE_CORRUPT, not handed out; an entity's image likewise. */
static void test_blob_corrupt(void **state)
{
    TMPDB_SQLITE_ONLY("damages blob_data with SQLite's zeroblob");
    fixture *f = *state;
    model_blob b, r;
    void *bytes = NULL;
    size_t len = 0;
    store_content c = content(f, 3, 100, "image/png");
    assert_int_equal(store_blob_create(f->db.s, f->db.a, NULL, &c, f->uid, &b), STORE_OK);
    close(c.fd);
    tmpdb_exec(f->db.path, "UPDATE blob_data SET content = zeroblob(10)");
    assert_int_equal(store_blob_content_get(f->db.s, f->db.a, b.blob_id, &r, &bytes, &len),
                     STORE_CORRUPT);
    assert_null(bytes);
    int32_t id = create(f, MODEL_PERSON);
    assert_int_equal(store_image_link(f->db.s, MODEL_PERSON, id, b.blob_id, f->uid), STORE_OK);
    assert_int_equal(store_image_get(f->db.s, f->db.a, MODEL_PERSON, id, &r, &bytes, &len),
                     STORE_CORRUPT);
    assert_null(bytes);
    assert_string_equal(store_err_name(STORE_CORRUPT), "CORRUPT");
}

static void test_blob_too_large(void **state)
{
    fixture *f = *state;
    model_blob b, t;
    int32_t product = create(f, MODEL_PRODUCT);
    int32_t id = new_blob(f, 1, 10, &b);
    store_content big = {.fd = -1, .size = (int64_t)INT32_MAX + 1, .original_size = 1};
    assert_int_equal(store_blob_create(f->db.s, f->db.a, NULL, &big, f->uid, &t), STORE_TOO_LARGE);
    assert_int_equal(store_blob_content_put(f->db.s, f->db.a, id, &big, f->uid, &t), STORE_TOO_LARGE);
    assert_int_equal(store_thumbnail_put(f->db.s, f->db.a, product, &big, f->uid, &t), STORE_TOO_LARGE);
    assert_int_equal(tmpdb_count(f->db.path, "blob"), 1); /* nothing was stored */
    assert_blob_bytes(f, id, 1, 10);
}

/* A failed copy (a file shorter than announced) leaves nothing behind. */
static void test_blob_create_atomic(void **state)
{
    fixture *f = *state;
    model_blob b;
    store_content c = content(f, 1, 10, "image/png");
    c.size = 20;
    assert_int_equal(store_blob_create(f->db.s, f->db.a, NULL, &c, f->uid, &b), STORE_INTERNAL);
    close(c.fd);
    assert_int_equal(tmpdb_count(f->db.path, "blob"), 0);
    assert_int_equal(tmpdb_count_stored(f->db.path), 0);
}

static void test_blob_ids_never_reused(void **state)
{
    fixture *f = *state;
    model_blob b;
    int32_t first = new_blob(f, 1, 10, &b);
    assert_int_equal(sweep(f, INT64_MAX), 1);
    assert_int_equal(tmpdb_count(f->db.path, "blob"), 0);
    assert_true(new_blob(f, 2, 10, &b) > first);
}

/* ---- linking ---------------------------------------------------------------- */

static void test_link_unlink(void **state)
{
    fixture *f = *state;
    model_blob a, b;
    int32_t person = create(f, MODEL_PERSON);
    int32_t ida = new_blob(f, 1, 100, &a), idb = new_blob(f, 2, 200, &b);

    assert_int_equal(store_image_link(f->db.s, MODEL_PERSON, person, ida, f->uid), STORE_OK);
    assert_image_is(f, MODEL_PERSON, person, ida);
    assert_int_equal(unlinked_ms(f, ida), NULL_MS);
    model_blob got;
    void *bytes = NULL;
    size_t len = 0;
    assert_int_equal(store_image_get(f->db.s, f->db.a, MODEL_PERSON, person, &got, &bytes, &len),
                     STORE_OK);
    assert_int_equal(len, 100);
    free(bytes);
    /* linking changes no field of the record */
    assert_int_equal(got.info_version, a.info_version);
    assert_int_equal(got.version, a.version);

    /* b replaces a: a is unlinked from now on, kept until the cutoff passes it */
    int64_t before = text_now_ms();
    assert_int_equal(store_image_link(f->db.s, MODEL_PERSON, person, idb, f->uid), STORE_OK);
    int64_t after = text_now_ms();
    assert_image_is(f, MODEL_PERSON, person, idb);
    int64_t since = unlinked_ms(f, ida);
    assert_true(since >= before && since <= after);
    assert_int_equal(unlinked_ms(f, idb), NULL_MS);
    assert_int_equal(sweep(f, since), 0); /* not unlinked *before* the cutoff */
    assert_int_equal(store_blob_get(f->db.s, f->db.a, ida, &got), STORE_OK);
    assert_int_equal(sweep(f, since + 1), 1);
    assert_int_equal(store_blob_get(f->db.s, f->db.a, ida, &got), STORE_ABSENT);
    assert_int_equal(tmpdb_count_stored(f->db.path), 1); /* a's bytes went with it */
    /* the linked one is never swept */
    assert_int_equal(sweep(f, INT64_MAX), 0);
    assert_image_is(f, MODEL_PERSON, person, idb);
    assert_blob_bytes(f, idb, 2, 200);

    /* 0: no image any more; b waits for the sweep */
    assert_int_equal(store_image_link(f->db.s, MODEL_PERSON, person, 0, f->uid), STORE_OK);
    assert_image_is(f, MODEL_PERSON, person, 0);
    assert_true(unlinked_ms(f, idb) >= since);
    assert_blob_bytes(f, idb, 2, 200);
    assert_int_equal(store_image_link(f->db.s, MODEL_PERSON, person, 0, f->uid), STORE_OK);
    assert_int_equal(sweep(f, INT64_MAX), 1);
    assert_int_equal(tmpdb_count(f->db.path, "blob"), 0);
    assert_int_equal(tmpdb_count_stored(f->db.path), 0);
}

/* An unlinked record that is linked again is no longer swept. */
static void test_relink(void **state)
{
    fixture *f = *state;
    model_blob a, b;
    int32_t p1 = create(f, MODEL_PROJECT), p2 = create(f, MODEL_CONTACT);
    int32_t ida = new_blob(f, 1, 10, &a), idb = new_blob(f, 2, 10, &b);
    assert_int_equal(store_image_link(f->db.s, MODEL_PROJECT, p1, ida, f->uid), STORE_OK);
    assert_int_equal(store_image_link(f->db.s, MODEL_PROJECT, p1, idb, f->uid), STORE_OK);
    assert_true(unlinked_ms(f, ida) > 0);
    /* a detached record may go to another entity, of another kind */
    assert_int_equal(store_image_link(f->db.s, MODEL_CONTACT, p2, ida, f->uid), STORE_OK);
    assert_int_equal(unlinked_ms(f, ida), NULL_MS);
    assert_int_equal(sweep(f, INT64_MAX), 0);
    assert_image_is(f, MODEL_CONTACT, p2, ida);
    assert_image_is(f, MODEL_PROJECT, p1, idb);
}

/* Images stored through the entity are linked from the start. */
static void test_image_put_is_linked(void **state)
{
    fixture *f = *state;
    int32_t person = create(f, MODEL_PERSON), contact = create(f, MODEL_CONTACT);
    model_blob b = image_put(f, MODEL_PERSON, person, 1, 100), i;
    model_blob_edit edit = {.description = "d"};
    assert_int_equal(
        store_image_info_put(f->db.s, f->db.a, MODEL_CONTACT, contact, &edit, f->uid, STORE_ANY, &i),
        STORE_OK);
    assert_int_equal(unlinked_ms(f, b.blob_id), NULL_MS);
    assert_int_equal(unlinked_ms(f, i.blob_id), NULL_MS);
    assert_int_equal(sweep(f, INT64_MAX), 0);
    assert_image_is(f, MODEL_PERSON, person, b.blob_id);
    assert_image_is(f, MODEL_CONTACT, contact, i.blob_id);
}

static void test_link_errors(void **state)
{
    fixture *f = *state;
    model_blob a, free_b;
    int32_t person = create(f, MODEL_PERSON), other = create(f, MODEL_PERSON);
    int32_t product = create(f, MODEL_PRODUCT);
    model_blob img = image_put(f, MODEL_PERSON, person, 1, 10);
    new_blob(f, 2, 10, &a);
    int32_t idfree = new_blob(f, 3, 10, &free_b);
    model_blob thumb;
    assert_int_equal(thumb_put(f, product, 4, 10, &thumb), STORE_OK);

    /* no entity */
    assert_int_equal(store_image_link(f->db.s, MODEL_PERSON, 999, idfree, f->uid), STORE_ABSENT);
    assert_int_equal(store_image_link(f->db.s, MODEL_CONTACT, person, idfree, f->uid), STORE_ABSENT);
    /* no record */
    assert_int_equal(store_image_link(f->db.s, MODEL_PERSON, other, 4242, f->uid), STORE_INVALID);
    /* another entity's image, of the same kind or another */
    assert_int_equal(store_image_link(f->db.s, MODEL_PERSON, other, img.blob_id, f->uid),
                     STORE_CONFLICT);
    assert_int_equal(store_image_link(f->db.s, MODEL_PRODUCT, product, img.blob_id, f->uid),
                     STORE_CONFLICT);
    /* a thumbnail, of another product or of this one */
    assert_int_equal(store_image_link(f->db.s, MODEL_PERSON, other, thumb.blob_id, f->uid),
                     STORE_CONFLICT);
    assert_int_equal(store_image_link(f->db.s, MODEL_PRODUCT, product, thumb.blob_id, f->uid),
                     STORE_CONFLICT);
    /* nothing moved */
    assert_image_is(f, MODEL_PERSON, person, img.blob_id);
    assert_image_is(f, MODEL_PERSON, other, 0);
    assert_image_is(f, MODEL_PRODUCT, product, 0);
    assert_int_equal(unlinked_ms(f, img.blob_id), NULL_MS);
    assert_int_equal(unlinked_ms(f, thumb.blob_id), NULL_MS);
    assert_true(unlinked_ms(f, idfree) > 0);
    model_blob t;
    void *bytes = NULL;
    size_t len = 0;
    assert_int_equal(store_thumbnail_get(f->db.s, f->db.a, product, &t, &bytes, &len), STORE_OK);
    free(bytes);
    /* an unlink of an entity that is not there */
    assert_int_equal(store_image_link(f->db.s, MODEL_PROJECT, 5, 0, f->uid), STORE_ABSENT);
}

/* Deleting a linked record by BlobId leaves its entity without image. */
static void test_blob_delete_linked(void **state)
{
    fixture *f = *state;
    model_blob a;
    int32_t person = create(f, MODEL_PERSON);
    int32_t ida = new_blob(f, 1, 100, &a);
    assert_int_equal(
        store_variant_put(f->db.s, ida, a.version, "w=1", &png_meta, "abc", 3, true, 1000), STORE_OK);
    assert_int_equal(store_image_link(f->db.s, MODEL_PERSON, person, ida, f->uid), STORE_OK);
    assert_int_equal(store_blob_delete(f->db.s, ida), STORE_OK);
    model_blob b;
    assert_int_equal(store_image_info(f->db.s, f->db.a, MODEL_PERSON, person, &b), STORE_OK);
    assert_int_equal(b.blob_id, 0);
    assert_null(b.created_by);
    assert_int_equal(store_blob_get(f->db.s, f->db.a, ida, &b), STORE_ABSENT);
    assert_int_equal(tmpdb_count(f->db.path, "blob"), 0);
    assert_int_equal(tmpdb_count_stored(f->db.path), 0);
    assert_int_equal(tmpdb_count(f->db.path, "variant"), 0);
    assert_int_equal(tmpdb_count(f->db.path, "variant_data"), 0);
    /* the entity can take an image again */
    model_blob n = image_put(f, MODEL_PERSON, person, 2, 20);
    assert_image_is(f, MODEL_PERSON, person, n.blob_id);
}

/* The sweep takes the unlinked records' bytes and variants with them,
 * and only those records. */
static void test_sweep_cascades(void **state)
{
    fixture *f = *state;
    model_blob a, b;
    int32_t person = create(f, MODEL_PERSON);
    int32_t ida = new_blob(f, 1, 100, &a), idb = new_blob(f, 2, 100, &b);
    assert_int_equal(
        store_variant_put(f->db.s, ida, a.version, "w=1", &png_meta, "abc", 3, false, 1000), STORE_OK);
    assert_int_equal(
        store_variant_put(f->db.s, idb, b.version, "w=1", &png_meta, "abc", 3, false, 1000), STORE_OK);
    assert_int_equal(store_image_link(f->db.s, MODEL_PERSON, person, idb, f->uid), STORE_OK);
    assert_int_equal(sweep(f, text_now_ms() + 1), 1);
    assert_int_equal(tmpdb_count(f->db.path, "blob"), 1);
    assert_int_equal(tmpdb_count_stored(f->db.path), 1);
    assert_int_equal(tmpdb_count(f->db.path, "variant"), 1);
    assert_int_equal(tmpdb_count(f->db.path, "variant_data"), 1);
    int64_t bytes = -1, n = -1;
    assert_int_equal(store_variant_total(f->db.s, &bytes, &n), STORE_OK);
    assert_int_equal(bytes, 3);
    assert_int_equal(n, 1);
    assert_image_is(f, MODEL_PERSON, person, idb);
}

/* Belt and braces: a record marked unlinked that a link names all the same
 * (which the store never writes) is not swept. */
static void test_sweep_checks_links(void **state)
{
    fixture *f = *state;
    int32_t person = create(f, MODEL_PERSON), product = create(f, MODEL_PRODUCT);
    model_blob img = image_put(f, MODEL_PERSON, person, 1, 10), thumb;
    assert_int_equal(thumb_put(f, product, 2, 10, &thumb), STORE_OK);
    store_close(f->db.s);
    f->db.s = NULL;
    tmpdb_exec(f->db.path, "UPDATE blob SET unlinked_ms = 1");
    assert_int_equal(store_open(f->db.path, NULL, &f->db.s), STORE_OK);
    assert_int_equal(sweep(f, INT64_MAX), 0);
    assert_image_is(f, MODEL_PERSON, person, img.blob_id);
    assert_int_equal(tmpdb_count(f->db.path, "blob"), 2);
}

/* ---- a product's thumbnail ------------------------------------------------ */

static void test_thumbnail_put_get(void **state)
{
    fixture *f = *state;
    int32_t product = create(f, MODEL_PRODUCT);
    model_blob t, g;
    void *bytes = (void *)1;
    size_t len = 5;

    assert_int_equal(thumb_put(f, 999, 1, 10, &t), STORE_ABSENT);
    assert_int_equal(tmpdb_count(f->db.path, "blob"), 0);
    g.blob_id = 7;
    assert_int_equal(store_thumbnail_get(f->db.s, f->db.a, 999, &g, &bytes, &len), STORE_ABSENT);
    assert_int_equal(g.blob_id, 0);
    assert_null(bytes);
    assert_int_equal(len, 0);
    assert_int_equal(store_thumbnail_get(f->db.s, f->db.a, product, &g, &bytes, &len), STORE_ABSENT);
    assert_int_equal(g.blob_id, 0);

    assert_int_equal(thumb_put(f, product, 1, 500, &t), STORE_OK);
    assert_true(t.blob_id > 0);
    assert_string_equal(t.conceptual_type, "THUMBNAIL");
    assert_string_equal(t.mime_type, "image/png");
    assert_int_equal(t.blob_size, 500);
    assert_int_equal(t.created_by->id, f->uid);
    assert_int_equal(t.version, 1);
    assert_int_equal(unlinked_ms(f, t.blob_id), NULL_MS);
    assert_image_is(f, MODEL_PRODUCT, product, 0); /* beside the image, not as it */

    assert_int_equal(store_thumbnail_get(f->db.s, f->db.a, product, &g, &bytes, &len), STORE_OK);
    assert_int_equal(g.blob_id, t.blob_id);
    assert_int_equal(len, 500);
    unsigned char *want = tmpdb_payload(1, 500);
    assert_memory_equal(bytes, want, 500);
    free(want);
    free(bytes);

    /* a second put replaces the bytes, keeping the record and its client fields */
    model_blob_edit edit = {.description = "small", .conceptual_type = "TINY"};
    assert_int_equal(store_blob_info_put(f->db.s, f->db.a, t.blob_id, &edit, f->uid, &g), STORE_OK);
    model_blob t2;
    assert_int_equal(thumb_put(f, product, 2, 300, &t2), STORE_OK);
    assert_int_equal(t2.blob_id, t.blob_id);
    assert_string_equal(t2.description, "small");
    assert_string_equal(t2.conceptual_type, "TINY");
    assert_int_equal(t2.blob_size, 300);
    assert_int_equal(t2.version, t.version + 1);
    assert_true(t2.info_version > g.info_version);
    assert_blob_bytes(f, t.blob_id, 2, 300);
    assert_int_equal(tmpdb_count(f->db.path, "blob"), 1);
    /* a thumbnail is linked: never swept */
    assert_int_equal(sweep(f, INT64_MAX), 0);
    /* deleted by BlobId: the product has no thumbnail afterwards */
    assert_int_equal(store_blob_delete(f->db.s, t.blob_id), STORE_OK);
    assert_int_equal(store_thumbnail_get(f->db.s, f->db.a, product, &g, &bytes, &len), STORE_ABSENT);
    assert_int_equal(g.blob_id, 0);
    assert_int_equal(thumb_put(f, product, 3, 30, &t2), STORE_OK);
    assert_true(t2.blob_id > t.blob_id);
}

/* A thumbnail record whose bytes were emptied by BlobId: found, no bytes. */
static void test_thumbnail_without_bytes(void **state)
{
    fixture *f = *state;
    int32_t product = create(f, MODEL_PRODUCT);
    model_blob t, g;
    void *bytes = NULL;
    size_t len = 0;
    assert_int_equal(thumb_put(f, product, 1, 0, &t), STORE_OK);
    assert_int_equal(store_thumbnail_get(f->db.s, f->db.a, product, &g, &bytes, &len), STORE_ABSENT);
    assert_int_equal(g.blob_id, t.blob_id);
    assert_null(bytes);
}

/* The thumbnail was made from the product's image: a new image (stored or
 * linked) deletes it; edits of the image's info and deleting the image
 * leave it. */
static void test_thumbnail_follows_image(void **state)
{
    fixture *f = *state;
    int32_t product = create(f, MODEL_PRODUCT), other = create(f, MODEL_PRODUCT);
    model_blob t, g, o;
    void *bytes = NULL;
    size_t len = 0;
    model_blob img = image_put(f, MODEL_PRODUCT, product, 1, 100);
    assert_int_equal(thumb_put(f, product, 2, 10, &t), STORE_OK);
    assert_int_equal(thumb_put(f, other, 3, 10, &o), STORE_OK);

    model_blob_edit edit = {.description = "d"};
    assert_int_equal(
        store_image_info_put(f->db.s, f->db.a, MODEL_PRODUCT, product, &edit, f->uid, STORE_ANY, &g),
        STORE_OK);
    assert_int_equal(store_image_link(f->db.s, MODEL_PRODUCT, product, img.blob_id, f->uid),
                     STORE_OK); /* the image it has: nothing changes */
    assert_int_equal(store_thumbnail_get(f->db.s, f->db.a, product, &g, &bytes, &len), STORE_OK);
    free(bytes);
    bytes = NULL;

    /* a new image through the entity */
    image_put(f, MODEL_PRODUCT, product, 4, 100);
    assert_int_equal(store_thumbnail_get(f->db.s, f->db.a, product, &g, &bytes, &len), STORE_ABSENT);
    assert_int_equal(g.blob_id, 0);
    assert_int_equal(store_blob_get(f->db.s, f->db.a, t.blob_id, &g), STORE_ABSENT);
    assert_int_equal(tmpdb_count(f->db.path, "blob"), 2); /* the image (same record) and o */
    assert_image_is(f, MODEL_PRODUCT, product, img.blob_id);

    /* a new image by linking a record */
    model_blob a;
    int32_t ida = new_blob(f, 5, 10, &a);
    assert_int_equal(thumb_put(f, product, 6, 10, &t), STORE_OK);
    assert_int_equal(store_image_link(f->db.s, MODEL_PRODUCT, product, ida, f->uid), STORE_OK);
    assert_int_equal(store_thumbnail_get(f->db.s, f->db.a, product, &g, &bytes, &len), STORE_ABSENT);
    assert_int_equal(store_blob_get(f->db.s, f->db.a, t.blob_id, &g), STORE_ABSENT);

    /* no image any more by linking 0 */
    assert_int_equal(thumb_put(f, product, 7, 10, &t), STORE_OK);
    assert_int_equal(store_image_link(f->db.s, MODEL_PRODUCT, product, 0, f->uid), STORE_OK);
    assert_int_equal(store_blob_get(f->db.s, f->db.a, t.blob_id, &g), STORE_ABSENT);

    /* deleting the image leaves the thumbnail */
    image_put(f, MODEL_PRODUCT, product, 8, 10);
    assert_int_equal(thumb_put(f, product, 9, 10, &t), STORE_OK);
    assert_int_equal(store_image_delete(f->db.s, MODEL_PRODUCT, product, STORE_ANY), STORE_OK);
    assert_int_equal(store_thumbnail_get(f->db.s, f->db.a, product, &g, &bytes, &len), STORE_OK);
    assert_int_equal(g.blob_id, t.blob_id);
    free(bytes);
    bytes = NULL;

    /* the other product's thumbnail was never touched */
    assert_int_equal(store_thumbnail_get(f->db.s, f->db.a, other, &g, &bytes, &len), STORE_OK);
    assert_int_equal(g.blob_id, o.blob_id);
    free(bytes);
}

/* A failed image put (precondition) deletes no thumbnail. */
static void test_thumbnail_kept_on_failed_put(void **state)
{
    fixture *f = *state;
    int32_t product = create(f, MODEL_PRODUCT);
    model_blob img = image_put(f, MODEL_PRODUCT, product, 1, 10), t, g;
    assert_int_equal(thumb_put(f, product, 2, 10, &t), STORE_OK);
    store_content c = content(f, 3, 10, "image/png");
    assert_int_equal(
        store_image_put(f->db.s, f->db.a, MODEL_PRODUCT, product, &c, f->uid, img.version + 5, &g),
        STORE_PRECONDITION);
    close(c.fd);
    assert_int_equal(store_blob_get(f->db.s, f->db.a, t.blob_id, &g), STORE_OK);
    assert_int_equal(store_image_link(f->db.s, MODEL_PRODUCT, product, 4242, f->uid), STORE_INVALID);
    assert_int_equal(store_blob_get(f->db.s, f->db.a, t.blob_id, &g), STORE_OK);
}

static void test_thumbnail_deleted_with_product(void **state)
{
    fixture *f = *state;
    int32_t product = create(f, MODEL_PRODUCT), other = create(f, MODEL_PRODUCT);
    model_blob t, o;
    image_put(f, MODEL_PRODUCT, product, 1, 10);
    assert_int_equal(thumb_put(f, product, 2, 10, &t), STORE_OK);
    assert_int_equal(thumb_put(f, other, 3, 10, &o), STORE_OK);
    assert_int_equal(
        store_variant_put(f->db.s, t.blob_id, t.version, "w=1", &png_meta, "abc", 3, true, 1000),
        STORE_OK);
    assert_int_equal(tmpdb_count(f->db.path, "blob"), 3);
    assert_int_equal(store_entity_delete(f->db.s, MODEL_PRODUCT, product, STORE_ANY), STORE_OK);
    assert_int_equal(tmpdb_count(f->db.path, "blob"), 1);
    assert_int_equal(tmpdb_count_stored(f->db.path), 1);
    assert_int_equal(tmpdb_count(f->db.path, "variant"), 0);
    model_blob g;
    assert_int_equal(store_blob_get(f->db.s, f->db.a, t.blob_id, &g), STORE_ABSENT);
    assert_int_equal(store_blob_get(f->db.s, f->db.a, o.blob_id, &g), STORE_OK);
    /* a product with a thumbnail and no image goes the same way */
    assert_int_equal(store_entity_delete(f->db.s, MODEL_PRODUCT, other, STORE_ANY), STORE_OK);
    assert_int_equal(tmpdb_count(f->db.path, "blob"), 0);
}

int main(void)
{
    log_set_level(LOG_WARN);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_schema_v5),
        T(test_migrate_from_v4),
        T(test_blob_create_round_trip),
        T(test_blob_corrupt),
        T(test_blob_create_empty),
        T(test_blob_missing),
        T(test_blob_info_put),
        T(test_blob_content_put),
        T(test_blob_too_large),
        T(test_blob_create_atomic),
        T(test_blob_ids_never_reused),
        T(test_link_unlink),
        T(test_relink),
        T(test_image_put_is_linked),
        T(test_link_errors),
        T(test_blob_delete_linked),
        T(test_sweep_cascades),
        T(test_sweep_checks_links),
        T(test_thumbnail_put_get),
        T(test_thumbnail_without_bytes),
        T(test_thumbnail_follows_image),
        T(test_thumbnail_kept_on_failed_put),
        T(test_thumbnail_deleted_with_product),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
