/*
 * test_store.c — unit tests of store.h against the SQLite backend.
 *
 * Every test gets a fresh database in its own temporary directory (opened
 * through a not-yet-existing subdirectory, so that store_open has to create
 * it). Image contents are handed over as unlinked temporary files, as the
 * API layer does with spooled uploads.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/log.h"
#include "store/store.h"

#include "tmpdb.h"

typedef struct {
    char dir[64];   /* the temporary directory */
    char path[512]; /* dir/sub/crmblob.db, or a conninfo */
    store_t *s;
    arena_t *a;
} fixture;

/* ---- fixture ----------------------------------------------------------- */

/* The whole suite runs twice: default mode, then durable mode (where
 * writers share group commits). */
static store_options g_opt;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (tmpdb_make(f->dir, sizeof(f->dir), f->path, sizeof(f->path), "test",
                   "sub/dir/crmblob.db") != 0)
        return -1;
    if (store_open(f->path, &g_opt, &f->s) != STORE_OK)
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

static int32_t add_user(fixture *f, const char *name)
{
    model_user u = {.name = name,
                    .full_name = "Full Name",
                    .role = MODEL_ROLE_EDITOR,
                    .pw_hash = "$argon2id$x"};
    assert_int_equal(store_user_add(f->s, &u), STORE_OK);
    assert_true(u.id > 0);
    return u.id;
}

/* An entity of kind k with id `id` (0: assigned) whose strings are "<tag>N"
 * and whose ints are `num`. */
static model_entity_t entity(model_kind k, int32_t id, const char *tag, int32_t num)
{
    model_entity_t e = {.kind = k, .id = id};
    const model_entity_def *d = model_entity(k);
    for (int i = 0; i < d->nfields; i++) {
        if (d->fields[i].type == MODEL_FT_STRING)
            e.v[i].s = tag;
        else
            e.v[i].i = num;
    }
    return e;
}

static int32_t create(fixture *f, model_kind k, int32_t id)
{
    model_entity_t e = entity(k, id, "name", 0);
    assert_int_equal(store_entity_create(f->s, &e), STORE_OK);
    return e.id;
}

static store_err put_bytes(store_t *s, arena_t *a, const char *dir, model_kind k, int32_t id,
                           const void *bytes, size_t n, int32_t user, model_blob *out)
{
    int fd = tmpdb_content_fd(dir, bytes, n);
    if (fd < 0)
        return STORE_INTERNAL;
    store_content c = {
        .fd = fd, .size = (int64_t)n, .original_size = (int64_t)n, .mime_type = "image/png"};
    store_err rc = store_image_put(s, a, k, id, &c, user, STORE_ANY, out);
    close(fd);
    return rc;
}

static void assert_empty_carrier(const model_blob *b)
{
    assert_int_equal(b->blob_id, 0);
    assert_int_equal(b->blob_size, 0);
    assert_int_equal(b->original_size, 0);
    assert_string_equal(b->mime_type, "");
    assert_string_equal(b->description, "");
    assert_true(b->created_ms == INT64_MIN && b->updated_ms == INT64_MIN);
    assert_null(b->created_by);
    assert_null(b->updated_by);
}

static void assert_image(fixture *f, model_kind k, int32_t id, const void *bytes, size_t n)
{
    model_blob b;
    void *got = NULL;
    size_t len = 0;
    assert_int_equal(store_image_get(f->s, f->a, k, id, &b, &got, &len), STORE_OK);
    assert_int_equal(len, n);
    assert_int_equal(b.blob_size, (int32_t)n);
    assert_memory_equal(got, bytes, n);
    free(got);
}

/* ---- open --------------------------------------------------------------- */

static void test_open(void **state)
{
    TMPDB_SQLITE_ONLY("the database file and its directories");
    fixture *f = *state;
    struct stat st;
    store_t *pg = (store_t *)1;
    assert_int_equal(stat(f->path, &st), 0); /* parent directories were created */
    assert_int_equal(store_open("postgres://u@h/db", NULL, &pg), STORE_UNAVAILABLE);
    assert_null(pg);
    assert_int_equal(store_open("postgresql://u@h/db", NULL, &pg), STORE_UNAVAILABLE);
    store_close(NULL);
}

/* What logs may say of a database: a file as it is; PostgreSQL as libpq
 * reads it (URL or key=value), without any password. */
static void test_describe(void **state)
{
    TMPDB_SQLITE_ONLY("describes a file path");
    fixture *f = *state;
    char buf[256];
    store_describe(f->path, buf, sizeof(buf));
    assert_string_equal(buf, f->path);
    store_describe("postgresql://crm:s3cret@db.example:5432/crmblob", buf, sizeof(buf));
    assert_string_equal(buf, "user=crm dbname=crmblob host=db.example port=5432");
    store_describe("postgres://crm@db.example/crmblob?password=s3cret", buf, sizeof(buf));
    assert_string_equal(buf, "user=crm dbname=crmblob host=db.example");
    store_describe("host=db.example dbname=crmblob password='s3 cret'", buf, sizeof(buf));
    assert_string_equal(buf, "dbname=crmblob host=db.example");
    assert_null(strstr(buf, "s3"));
}

/* Uploads are spooled beside a database file unless told otherwise. */
static void test_spool_hint(void **state)
{
    TMPDB_SQLITE_ONLY("the database file's directory");
    fixture *f = *state;
    char want[160];
    snprintf(want, sizeof(want), "%s/sub/dir", f->dir);
    assert_string_equal(store_spool_hint(f->s), want);
}

/* Serving processes share the hold; rekey's exclusive hold excludes them
 * and is excluded by them, until the holder closes its store. Two opens in
 * one process stand for two processes (a flock belongs to the open file). */
static void test_hold(void **state)
{
    TMPDB_SQLITE_ONLY("the <db>.lock file (test_store_pg tests PostgreSQL's hold)");
    fixture *f = *state;
    store_t *other = NULL, *third = NULL;
    char lock[600];
    struct stat st;
    assert_int_equal(store_open(f->path, &g_opt, &other), STORE_OK);
    assert_int_equal(store_open(f->path, &g_opt, &third), STORE_OK);
    assert_int_equal(store_hold(f->s, STORE_HOLD_SERVE), STORE_OK);
    snprintf(lock, sizeof(lock), "%s.lock", f->path);
    assert_int_equal(stat(lock, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(store_hold(other, STORE_HOLD_SERVE), STORE_OK);
    assert_int_equal(store_hold(third, STORE_HOLD_EXCLUSIVE), STORE_UNAVAILABLE);
    store_close(third);
    store_close(other);
    assert_int_equal(store_open(f->path, &g_opt, &third), STORE_OK);
    assert_int_equal(store_hold(third, STORE_HOLD_EXCLUSIVE), STORE_UNAVAILABLE); /* f->s serves */
    store_close(third);
    store_close(f->s);
    assert_int_equal(store_open(f->path, &g_opt, &third), STORE_OK);
    assert_int_equal(store_hold(third, STORE_HOLD_EXCLUSIVE), STORE_OK);
    assert_int_equal(store_open(f->path, &g_opt, &f->s), STORE_OK);
    assert_int_equal(store_hold(f->s, STORE_HOLD_SERVE), STORE_UNAVAILABLE); /* being rekeyed */
    store_close(third);
}

/* store_ping answers while the database is usable, and names what is
 * wrong when its file was moved away under the open store. */
static void test_ping(void **state)
{
    TMPDB_SQLITE_ONLY("a database file moved away (test_pg_serve pauses PostgreSQL)");
    fixture *f = *state;
    char why[160], moved[600];
    assert_int_equal(store_ping(f->s, why, sizeof(why)), STORE_OK);
    assert_string_equal(why, "");
    snprintf(moved, sizeof(moved), "%s.moved", f->path);
    assert_int_equal(rename(f->path, moved), 0);
    assert_int_equal(store_ping(f->s, why, sizeof(why)), STORE_UNAVAILABLE);
    assert_non_null(strstr(why, "moved or deleted"));
    assert_int_equal(rename(moved, f->path), 0);
    assert_int_equal(store_ping(f->s, why, sizeof(why)), STORE_OK);
}

/* ---- users -------------------------------------------------------------- */

static void test_user_add_get(void **state)
{
    fixture *f = *state;
    model_user u;
    int32_t id = add_user(f, "Alice");
    assert_int_equal(store_user_get(f->s, f->a, id, &u), STORE_OK);
    assert_int_equal(u.id, id);
    assert_string_equal(u.name, "Alice");
    assert_string_equal(u.full_name, "Full Name");
    assert_int_equal(u.role, MODEL_ROLE_EDITOR);
    assert_false(u.disabled);
    assert_string_equal(u.pw_hash, "$argon2id$x");
    assert_true(u.created_ms > 0);

    assert_int_equal(store_user_by_name(f->s, f->a, "aLICE", &u), STORE_OK);
    assert_int_equal(u.id, id);
    assert_string_equal(u.name, "Alice");
    assert_int_equal(store_user_get(f->s, f->a, id + 1, &u), STORE_ABSENT);
    assert_int_equal(store_user_by_name(f->s, f->a, "bob", &u), STORE_ABSENT);
}

static void test_user_duplicate(void **state)
{
    fixture *f = *state;
    int64_t n;
    add_user(f, "Alice");
    model_user dup = {.name = "ALICE", .full_name = NULL, .pw_hash = NULL};
    assert_int_equal(store_user_add(f->s, &dup), STORE_CONFLICT);
    assert_int_equal(store_user_count(f->s, &n), STORE_OK);
    assert_int_equal(n, 1);
}

static void test_user_list_count(void **state)
{
    fixture *f = *state;
    model_user *v;
    size_t n = 99;
    int64_t count = -1;
    assert_int_equal(store_user_list(f->s, f->a, &v, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_user_count(f->s, &count), STORE_OK);
    assert_int_equal(count, 0);

    const char *names[] = {"carol", "alice", "bob"};
    int32_t ids[3];
    for (int i = 0; i < 3; i++)
        ids[i] = add_user(f, names[i]);
    assert_int_equal(store_user_list(f->s, f->a, &v, &n), STORE_OK);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) { /* ordered by id, i.e. by insertion */
        assert_int_equal(v[i].id, ids[i]);
        assert_string_equal(v[i].name, names[i]);
    }
    assert_int_equal(store_user_count(f->s, &count), STORE_OK);
    assert_int_equal(count, 3);
}

static void test_user_set(void **state)
{
    fixture *f = *state;
    model_user u;
    int32_t id = add_user(f, "Alice");
    assert_int_equal(store_user_set_password(f->s, "alice", "$argon2id$new"), STORE_OK);
    assert_int_equal(store_user_set_disabled(f->s, "ALICE", true), STORE_OK);
    assert_int_equal(store_user_get(f->s, f->a, id, &u), STORE_OK);
    assert_string_equal(u.pw_hash, "$argon2id$new");
    assert_true(u.disabled);
    assert_int_equal(store_user_set_disabled(f->s, "Alice", false), STORE_OK);
    assert_int_equal(store_user_get(f->s, f->a, id, &u), STORE_OK);
    assert_false(u.disabled);
    assert_int_equal(store_user_set_password(f->s, "nobody", "x"), STORE_ABSENT);
    assert_int_equal(store_user_set_disabled(f->s, "nobody", true), STORE_ABSENT);
}

/* ---- entities ----------------------------------------------------------- */

static void test_entity_create_ids(void **state)
{
    fixture *f = *state;
    for (model_kind k = 0; k < MODEL_KIND_COUNT; k++) {
        assert_int_equal(create(f, k, 0), 1);
        assert_int_equal(create(f, k, 0), 2);
        assert_int_equal(create(f, k, 100), 100); /* given and free */
        assert_int_equal(create(f, k, 0), 101);   /* max + 1 */
        assert_int_equal(create(f, k, 50), 50);
        model_entity_t e = entity(k, 100, "dup", 0);
        assert_int_equal(store_entity_create(f->s, &e), STORE_CONFLICT);
        assert_int_equal(e.id, 100);
        e.id = -1;
        assert_int_equal(store_entity_create(f->s, &e), STORE_INVALID);
    }
}

static void test_entity_get_update_delete(void **state)
{
    fixture *f = *state;
    for (model_kind k = 0; k < MODEL_KIND_COUNT; k++) {
        const model_entity_def *d = model_entity(k);
        model_entity_t e = entity(k, 0, NULL, 0), got;
        assert_int_equal(store_entity_create(f->s, &e), STORE_OK);
        assert_int_equal(store_entity_get(f->s, f->a, k, e.id, &got), STORE_OK);
        assert_int_equal(got.kind, k);
        assert_int_equal(got.id, e.id);
        for (int i = 0; i < d->nfields; i++) /* NULL strings are stored as "" */
            if (d->fields[i].type == MODEL_FT_STRING)
                assert_string_equal(got.v[i].s, "");

        model_entity_t upd = entity(k, e.id, "Ünïcode name", 0);
        assert_int_equal(store_entity_update(f->s, &upd, STORE_ANY), STORE_OK);
        assert_int_equal(store_entity_get(f->s, f->a, k, e.id, &got), STORE_OK);
        for (int i = 0; i < d->nfields; i++)
            if (d->fields[i].type == MODEL_FT_STRING)
                assert_string_equal(got.v[i].s, "Ünïcode name");

        assert_int_equal(store_entity_exists(f->s, k, e.id), STORE_OK);
        assert_int_equal(store_entity_delete(f->s, k, e.id, STORE_ANY), STORE_OK);
        assert_int_equal(store_entity_exists(f->s, k, e.id), STORE_ABSENT);
        assert_int_equal(store_entity_get(f->s, f->a, k, e.id, &got), STORE_ABSENT);
        assert_int_equal(store_entity_update(f->s, &upd, STORE_ANY), STORE_ABSENT);
        assert_int_equal(store_entity_delete(f->s, k, e.id, STORE_ANY), STORE_ABSENT);
    }
}

static void test_entity_reference(void **state)
{
    fixture *f = *state;
    model_entity_t p = entity(MODEL_PERSON, 0, "Ann", 7), got;
    assert_int_equal(store_entity_create(f->s, &p), STORE_INVALID); /* no contact 7 */
    assert_int_equal(store_entity_exists(f->s, MODEL_PERSON, 1), STORE_ABSENT);

    int32_t contact = create(f, MODEL_CONTACT, 7);
    assert_int_equal(store_entity_create(f->s, &p), STORE_OK);
    model_entity_t other = entity(MODEL_PERSON, 0, "Bob", 0); /* 0 = no contact */
    assert_int_equal(store_entity_create(f->s, &other), STORE_OK);

    model_entity_t bad = entity(MODEL_PERSON, p.id, "Ann", 8);
    assert_int_equal(store_entity_update(f->s, &bad, STORE_ANY), STORE_INVALID);
    assert_int_equal(store_entity_get(f->s, f->a, MODEL_PERSON, p.id, &got), STORE_OK);
    assert_int_equal(got.v[2].i, contact);

    assert_int_equal(store_entity_delete(f->s, MODEL_CONTACT, contact, STORE_ANY), STORE_OK);
    assert_int_equal(store_entity_get(f->s, f->a, MODEL_PERSON, p.id, &got), STORE_OK);
    assert_int_equal(got.v[2].i, 0);
    assert_string_equal(got.v[0].s, "Ann");
}

/* ---- images ------------------------------------------------------------- */

static void test_image_info_empty(void **state)
{
    fixture *f = *state;
    model_blob b;
    int32_t id = create(f, MODEL_PRODUCT, 0);
    assert_int_equal(store_image_info(f->s, f->a, MODEL_PRODUCT, id, &b), STORE_OK);
    assert_empty_carrier(&b);
    assert_string_equal(b.conceptual_type, "");
    assert_int_equal(store_image_info(f->s, f->a, MODEL_PRODUCT, id + 1, &b), STORE_ABSENT);
    assert_int_equal(store_image_info(f->s, f->a, MODEL_PERSON, id, &b), STORE_ABSENT);
}

static void test_image_info_put(void **state)
{
    fixture *f = *state;
    int32_t alice = add_user(f, "alice"), bob = add_user(f, "bob");
    model_blob b, b2;
    model_blob_edit none = {0}, edit = {.description = "desc", .extra_info = "extra"};
    for (model_kind k = 0; k < MODEL_KIND_COUNT; k++) {
        int32_t id = create(f, k, 0);
        assert_int_equal(store_image_info_put(f->s, f->a, k, id, &none, alice, STORE_ANY, &b),
                         STORE_OK);
        assert_true(b.blob_id > 0);
        assert_int_equal(b.blob_size, 0);
        assert_string_equal(b.mime_type, "");
        assert_string_equal(b.description, "");
        assert_string_equal(b.conceptual_type, k == MODEL_PERSON ? "PERSONPHOTO" : "PHOTO");
        assert_non_null(b.created_by);
        assert_int_equal(b.created_by->id, alice);
        assert_string_equal(b.created_by->name, "alice");
        assert_string_equal(b.created_by->pw_hash, "");
        assert_int_equal(b.updated_by->id, alice);
        assert_true(b.created_ms > 0 && b.updated_ms == b.created_ms);

        assert_int_equal(store_image_info_put(f->s, f->a, k, id, &edit, bob, STORE_ANY, &b2),
                         STORE_OK);
        assert_int_equal(b2.blob_id, b.blob_id);
        assert_string_equal(b2.description, "desc");
        assert_string_equal(b2.extra_info, "extra");
        assert_string_equal(b2.conceptual_type, b.conceptual_type); /* NULL: unchanged */
        assert_int_equal(b2.created_by->id, alice);
        assert_int_equal(b2.updated_by->id, bob);
        assert_int_equal(b2.created_ms, b.created_ms);
        assert_true(b2.info_version > b.info_version);
        assert_int_equal(b2.version, b.version);

        assert_int_equal(store_image_info(f->s, f->a, k, id, &b), STORE_OK);
        assert_int_equal(b.blob_id, b2.blob_id);
        assert_string_equal(b.description, "desc");
    }
    assert_int_equal(store_image_info_put(f->s, f->a, MODEL_PERSON, 999, &edit, bob, STORE_ANY, &b),
                     STORE_ABSENT);
}

static void test_image_info_put_conceptual_type(void **state)
{
    fixture *f = *state;
    model_blob b;
    model_blob_edit edit = {.conceptual_type = "LOGO"};
    int32_t id = create(f, MODEL_CONTACT, 0);
    assert_int_equal(store_image_info_put(f->s, f->a, MODEL_CONTACT, id, &edit, 0, STORE_ANY, &b),
                     STORE_OK);
    assert_string_equal(b.conceptual_type, "LOGO");
    assert_non_null(b.created_by); /* user 0: the server itself */
    assert_int_equal(b.created_by->id, 0);
    assert_string_equal(b.created_by->name, "crmblob");
    assert_string_equal(b.created_by->full_name, "crmblob server");
}

static void test_image_put_get(void **state)
{
    fixture *f = *state;
    int32_t alice = add_user(f, "alice");
    int32_t id = create(f, MODEL_PERSON, 0);
    const size_t n = 3 * 65536 + 4321; /* several copy chunks and a partial one */
    unsigned char *bytes = tmpdb_payload(1, n);
    model_blob b, info;
    assert_int_equal(put_bytes(f->s, f->a, f->dir, MODEL_PERSON, id, bytes, n, alice, &b),
                     STORE_OK);
    assert_true(b.blob_id > 0);
    assert_int_equal(b.blob_size, n);
    assert_int_equal(b.original_size, n);
    assert_string_equal(b.mime_type, "image/png");
    assert_string_equal(b.conceptual_type, "PERSONPHOTO");
    assert_int_equal(b.version, 1);
    assert_int_equal(b.created_by->id, alice);
    assert_int_equal(b.updated_by->id, alice);
    assert_image(f, MODEL_PERSON, id, bytes, n);

    assert_int_equal(store_image_info(f->s, f->a, MODEL_PERSON, id, &info), STORE_OK);
    assert_int_equal(info.blob_id, b.blob_id);
    assert_int_equal(info.blob_size, n);
    assert_int_equal(info.version, 1);
    free(bytes);
}

/* A picture of one piece is read in one image_read, a larger one again in
 * a READ transaction: both come back whole, at the edge and past it. */
static void test_image_get_piece_edge(void **state)
{
    fixture *f = *state;
    const size_t piece = 256 * 1024; /* STORE_PIECE */
    const size_t sizes[] = {1, piece - 1, piece, piece + 1, 2 * piece + 7};
    int32_t id = create(f, MODEL_PERSON, 0);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char *bytes = tmpdb_payload((int)i + 2, sizes[i]);
        model_blob b, info;
        assert_int_equal(put_bytes(f->s, f->a, f->dir, MODEL_PERSON, id, bytes, sizes[i], 0, &b),
                         STORE_OK);
        assert_image(f, MODEL_PERSON, id, bytes, sizes[i]);
        assert_int_equal(store_image_info(f->s, f->a, MODEL_PERSON, id, &info), STORE_OK);
        assert_int_equal(info.version, b.version);
        assert_int_equal(info.updated_by->id, 0); /* the server itself */
        free(bytes);
    }
}

/* A codec over a new key file in the fixture's directory. */
static codec_t *keyed_codec(fixture *f, const char *name, bool compress)
{
    char key[256];
    codec_t *c = NULL;
    snprintf(key, sizeof(key), "%s/%s", f->dir, name);
    assert_int_equal(codec_keygen(key), CB_EOK);
    codec_config cc = {.compress = compress, .key_file = key};
    assert_int_equal(codec_create(&cc, &c), CB_EOK);
    return c;
}

/* The store keeps a picture at rest through its codec and hands back the
 * plain bytes; the record says what was kept. A store without the key
 * cannot read it (UNAVAILABLE), one with another key finds it CORRUPT. */
static void test_image_put_flags(void **state)
{
    fixture *f = *state;
    int32_t id = create(f, MODEL_PROJECT, 0);
    size_t n = 300000;
    unsigned char *plain = calloc(1, n); /* compresses well */
    for (size_t i = 0; i < n; i++)
        plain[i] = (unsigned char)(i / 1000);
    codec_t *c1 = keyed_codec(f, "key1", true), *c2 = keyed_codec(f, "key2", false);
    store_options o = g_opt;
    store_t *s1 = NULL, *s2 = NULL;
    o.codec = c1;
    assert_int_equal(store_open(f->path, &o, &s1), STORE_OK);
    o.codec = c2;
    assert_int_equal(store_open(f->path, &o, &s2), STORE_OK);
    int fd = tmpdb_content_fd(f->dir, plain, n);
    store_content c = {.fd = fd, .size = (int64_t)n, .mime_type = "image/gif"};
    model_blob b;
    assert_int_equal(store_image_put(s1, f->a, MODEL_PROJECT, id, &c, 0, STORE_ANY, &b), STORE_OK);
    close(fd);
    assert_true(b.is_zipped && b.is_encrypted);
    assert_int_equal(b.original_size, (int32_t)n);
    assert_true(b.blob_size > 0 && b.blob_size < (int32_t)n / 2);
    assert_string_equal(b.mime_type, "image/gif");
    assert_int_equal(b.updated_by->id, 0);
    char sql[160];
    size_t len = 0;
    tmpdb_stored_sql(sql, sizeof(sql), b.blob_id);
    void *raw = tmpdb_bytes(f->path, sql, &len);
    assert_int_equal(len, (size_t)b.blob_size); /* kept encoded */
    free(raw);
    void *got = NULL;
    assert_int_equal(store_image_get(s1, f->a, MODEL_PROJECT, id, &b, &got, &len), STORE_OK);
    assert_int_equal(len, n);
    assert_memory_equal(got, plain, n);
    free(got);
    assert_int_equal(store_image_get(f->s, f->a, MODEL_PROJECT, id, &b, &got, &len),
                     STORE_UNAVAILABLE);
    assert_int_equal(store_image_get(s2, f->a, MODEL_PROJECT, id, &b, &got, &len), STORE_CORRUPT);
    assert_null(got);
    store_close(s1);
    store_close(s2);
    codec_destroy(c1);
    codec_destroy(c2);
    free(plain);
}

/* store_recode_all moves every picture to another key; compression stays
 * where it was; a second run (the new key already) changes nothing. */
static void test_recode_all(void **state)
{
    fixture *f = *state;
    int32_t zipped_id = create(f, MODEL_PROJECT, 0), plain_id = create(f, MODEL_PROJECT, 0);
    size_t n = 200000;
    unsigned char *flat = calloc(1, n), *noise = malloc(n);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) { /* xorshift: does not compress */
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        noise[i] = (unsigned char)(x >> 24);
    }
    codec_t *c1 = keyed_codec(f, "rk1", true), *c2 = keyed_codec(f, "rk2", false);
    codec_config zc = {.compress = true, .key_file = NULL};
    char key2[256];
    snprintf(key2, sizeof(key2), "%s/rk2", f->dir);
    zc.key_file = key2;
    codec_t *c2z = NULL;
    assert_int_equal(codec_create(&zc, &c2z), CB_EOK);
    store_options o = g_opt;
    store_t *s1 = NULL, *s2 = NULL;
    o.codec = c1;
    assert_int_equal(store_open(f->path, &o, &s1), STORE_OK);
    model_blob b;
    int fd = tmpdb_content_fd(f->dir, flat, n), fd2 = tmpdb_content_fd(f->dir, noise, n);
    store_content c = {.fd = fd, .size = (int64_t)n, .mime_type = "image/png"};
    assert_int_equal(store_image_put(s1, f->a, MODEL_PROJECT, zipped_id, &c, 0, STORE_ANY, &b),
                     STORE_OK);
    assert_true(b.is_zipped && b.is_encrypted);
    c.fd = fd2;
    assert_int_equal(store_image_put(s1, f->a, MODEL_PROJECT, plain_id, &c, 0, STORE_ANY, &b),
                     STORE_OK);
    assert_true(!b.is_zipped && b.is_encrypted); /* noise does not compress */
    close(fd);
    close(fd2);
    store_recode how = {.old = c1, .new_ = c2, .new_z = c2z};
    int64_t count = 0;
    assert_int_equal(store_recode_all(f->s, &how, &count), STORE_OK);
    assert_int_equal(count, 2);
    o.codec = c2;
    assert_int_equal(store_open(f->path, &o, &s2), STORE_OK);
    void *got = NULL;
    size_t len = 0;
    assert_int_equal(store_image_get(s2, f->a, MODEL_PROJECT, zipped_id, &b, &got, &len), STORE_OK);
    assert_true(b.is_zipped && b.is_encrypted); /* still compressed */
    assert_int_equal(len, n);
    assert_memory_equal(got, flat, n);
    free(got);
    assert_int_equal(store_image_get(s2, f->a, MODEL_PROJECT, plain_id, &b, &got, &len), STORE_OK);
    assert_memory_equal(got, noise, n);
    free(got);
    assert_int_equal(store_image_get(s1, f->a, MODEL_PROJECT, plain_id, &b, &got, &len),
                     STORE_CORRUPT); /* the old key no longer reads it */
    assert_int_equal(store_recode_all(f->s, &how, &count), STORE_OK); /* again: the new key */
    assert_int_equal(store_image_get(s2, f->a, MODEL_PROJECT, zipped_id, &b, &got, &len), STORE_OK);
    assert_memory_equal(got, flat, n);
    free(got);
    store_close(s1);
    store_close(s2);
    codec_destroy(c1);
    codec_destroy(c2);
    codec_destroy(c2z);
    free(flat);
    free(noise);
}

static void test_image_replace(void **state)
{
    fixture *f = *state;
    int32_t alice = add_user(f, "alice");
    int32_t id = create(f, MODEL_CONTACT, 0);
    model_blob_edit edit = {.description = "d", .extra_info = "e", .conceptual_type = "LOGO"};
    model_blob info, first, second;
    unsigned char *one = tmpdb_payload(1, 5000), *two = tmpdb_payload(2, 70000);
    assert_int_equal(
        store_image_info_put(f->s, f->a, MODEL_CONTACT, id, &edit, alice, STORE_ANY, &info),
        STORE_OK);
    assert_int_equal(put_bytes(f->s, f->a, f->dir, MODEL_CONTACT, id, one, 5000, alice, &first),
                     STORE_OK);
    assert_int_equal(first.blob_id, info.blob_id);
    usleep(5000); /* let the clock move */
    int fd = tmpdb_content_fd(f->dir, two, 70000);
    store_content c = {.fd = fd, .size = 70000, .original_size = 70000, .mime_type = "image/jpeg"};
    assert_int_equal(store_image_put(f->s, f->a, MODEL_CONTACT, id, &c, 0, STORE_ANY, &second),
                     STORE_OK);
    close(fd);

    assert_int_equal(second.blob_id, info.blob_id);
    assert_string_equal(second.description, "d");
    assert_string_equal(second.extra_info, "e");
    assert_string_equal(second.conceptual_type, "LOGO");
    assert_int_equal(second.created_ms, info.created_ms);
    assert_int_equal(second.created_by->id, alice);
    assert_int_equal(second.blob_size, 70000);
    assert_string_equal(second.mime_type, "image/jpeg");
    assert_int_equal(second.updated_by->id, 0);
    assert_string_equal(second.updated_by->name, "crmblob");
    assert_true(second.updated_ms > first.updated_ms);
    assert_int_equal(second.version, first.version + 1);
    assert_true(second.info_version > first.info_version);
    assert_image(f, MODEL_CONTACT, id, two, 70000);
    assert_int_equal(tmpdb_count(f->path, "blob"), 1);
    assert_int_equal(tmpdb_count_stored(f->path), 1);
    free(one);
    free(two);
}

static void test_image_get_missing(void **state)
{
    fixture *f = *state;
    model_blob b;
    void *bytes = (void *)1;
    size_t len = 1;
    model_blob_edit none = {0};
    int32_t id = create(f, MODEL_PRODUCT, 0);
    assert_int_equal(store_image_get(f->s, f->a, MODEL_PRODUCT, id, &b, &bytes, &len),
                     STORE_ABSENT);
    assert_int_equal(b.blob_id, 0); /* no record */
    assert_null(bytes);
    assert_int_equal(len, 0);

    assert_int_equal(store_image_info_put(f->s, f->a, MODEL_PRODUCT, id, &none, 0, STORE_ANY, &b),
                     STORE_OK);
    int32_t blob_id = b.blob_id;
    assert_int_equal(store_image_get(f->s, f->a, MODEL_PRODUCT, id, &b, &bytes, &len),
                     STORE_ABSENT);
    assert_int_equal(b.blob_id, blob_id); /* a record without bytes */
    assert_null(bytes);

    assert_int_equal(store_image_get(f->s, f->a, MODEL_PRODUCT, id + 1, &b, &bytes, &len),
                     STORE_ABSENT);
}

static void test_image_delete(void **state)
{
    fixture *f = *state;
    model_blob b;
    void *bytes;
    size_t len;
    unsigned char data[10] = {9};
    int32_t id = create(f, MODEL_PERSON, 0);
    assert_int_equal(store_image_delete(f->s, MODEL_PERSON, id, STORE_ANY),
                     STORE_OK); /* none yet */
    assert_int_equal(put_bytes(f->s, f->a, f->dir, MODEL_PERSON, id, data, 10, 0, &b), STORE_OK);
    assert_int_equal(tmpdb_count_stored(f->path), 1);
    assert_int_equal(store_image_delete(f->s, MODEL_PERSON, id, STORE_ANY), STORE_OK);
    assert_int_equal(tmpdb_count(f->path, "blob"), 0);
    assert_int_equal(tmpdb_count_stored(f->path), 0);
    assert_int_equal(store_image_info(f->s, f->a, MODEL_PERSON, id, &b), STORE_OK);
    assert_empty_carrier(&b);
    assert_int_equal(store_image_get(f->s, f->a, MODEL_PERSON, id, &b, &bytes, &len), STORE_ABSENT);
    assert_int_equal(b.blob_id, 0);
    assert_int_equal(store_image_delete(f->s, MODEL_PERSON, id, STORE_ANY), STORE_OK);
    assert_int_equal(store_image_delete(f->s, MODEL_PERSON, id + 1, STORE_ANY), STORE_ABSENT);
    assert_int_equal(store_entity_exists(f->s, MODEL_PERSON, id), STORE_OK);
}

static void test_entity_delete_removes_image(void **state)
{
    fixture *f = *state;
    model_blob b, again;
    unsigned char data[10] = {9};
    int32_t id = create(f, MODEL_PRODUCT, 0);
    assert_int_equal(put_bytes(f->s, f->a, f->dir, MODEL_PRODUCT, id, data, 10, 0, &b), STORE_OK);
    assert_int_equal(store_entity_delete(f->s, MODEL_PRODUCT, id, STORE_ANY), STORE_OK);
    assert_int_equal(tmpdb_count(f->path, "blob"), 0);
    assert_int_equal(tmpdb_count_stored(f->path), 0);
    assert_int_equal(store_image_info(f->s, f->a, MODEL_PRODUCT, id, &again), STORE_ABSENT);

    assert_int_equal(create(f, MODEL_PRODUCT, id), id); /* the same id, a new entity */
    assert_int_equal(store_image_info(f->s, f->a, MODEL_PRODUCT, id, &again), STORE_OK);
    assert_empty_carrier(&again);
    assert_int_equal(put_bytes(f->s, f->a, f->dir, MODEL_PRODUCT, id, data, 10, 0, &again),
                     STORE_OK);
    assert_true(again.blob_id > b.blob_id); /* BlobIds are never reused */
}

static void test_blob_ids_unique(void **state)
{
    fixture *f = *state;
    int32_t seen[MODEL_KIND_COUNT];
    unsigned char data[4] = {1, 2, 3, 4};
    for (model_kind k = 0; k < MODEL_KIND_COUNT; k++) {
        model_blob b;
        assert_int_equal(create(f, k, 1), 1); /* the same entity id in every kind */
        assert_int_equal(put_bytes(f->s, f->a, f->dir, k, 1, data, 4, 0, &b), STORE_OK);
        for (model_kind j = 0; j < k; j++)
            assert_int_not_equal(seen[j], b.blob_id);
        seen[k] = b.blob_id;
    }
}

static void test_image_put_errors(void **state)
{
    fixture *f = *state;
    model_blob b;
    unsigned char data[10] = {0};
    int32_t id = create(f, MODEL_CONTACT, 0);
    assert_int_equal(put_bytes(f->s, f->a, f->dir, MODEL_CONTACT, id + 1, data, 10, 0, &b),
                     STORE_ABSENT);

    int fd = tmpdb_content_fd(f->dir, data, sizeof(data));
    store_content big = {.fd = fd, .size = (int64_t)INT32_MAX + 1, .original_size = 1};
    assert_int_equal(store_image_put(f->s, f->a, MODEL_CONTACT, id, &big, 0, STORE_ANY, &b),
                     STORE_TOO_LARGE);

    /* a file shorter than announced fails and leaves nothing behind */
    store_content short_file = {.fd = fd, .size = 100000, .original_size = 100000};
    assert_int_equal(store_image_put(f->s, f->a, MODEL_CONTACT, id, &short_file, 0, STORE_ANY, &b),
                     STORE_INTERNAL);
    close(fd);
    assert_int_equal(store_image_info(f->s, f->a, MODEL_CONTACT, id, &b), STORE_OK);
    assert_empty_carrier(&b);
}

/* ---- persistence -------------------------------------------------------- */

static void test_reopen(void **state)
{
    fixture *f = *state;
    int32_t alice = add_user(f, "alice");
    int32_t contact = create(f, MODEL_CONTACT, 0);
    model_entity_t p = entity(MODEL_PERSON, 0, "Ann", contact), got;
    assert_int_equal(store_entity_create(f->s, &p), STORE_OK);
    unsigned char *bytes = tmpdb_payload(3, 100000);
    model_blob b, info;
    model_blob_edit edit = {.description = "kept"};
    assert_int_equal(
        store_image_info_put(f->s, f->a, MODEL_PERSON, p.id, &edit, alice, STORE_ANY, &b),
        STORE_OK);
    assert_int_equal(put_bytes(f->s, f->a, f->dir, MODEL_PERSON, p.id, bytes, 100000, alice, &b),
                     STORE_OK);

    store_close(f->s);
    store_options opt = {.durable = true, .pool_size = 1};
    assert_int_equal(store_open(f->path, &opt, &f->s), STORE_OK);

    model_user u;
    assert_int_equal(store_user_by_name(f->s, f->a, "ALICE", &u), STORE_OK);
    assert_int_equal(u.id, alice);
    assert_int_equal(store_entity_get(f->s, f->a, MODEL_PERSON, p.id, &got), STORE_OK);
    assert_string_equal(got.v[0].s, "Ann");
    assert_int_equal(got.v[2].i, contact);
    assert_int_equal(store_image_info(f->s, f->a, MODEL_PERSON, p.id, &info), STORE_OK);
    assert_int_equal(info.blob_id, b.blob_id);
    assert_string_equal(info.description, "kept");
    assert_int_equal(info.version, b.version);
    assert_int_equal(info.updated_by->id, alice);
    assert_image(f, MODEL_PERSON, p.id, bytes, 100000);
    assert_int_equal(create(f, MODEL_CONTACT, 0), contact + 1);
    free(bytes);
}

/* A committed write survives kill -9 of the writing process. */
static void test_survives_kill(void **state)
{
    fixture *f = *state;
    int32_t id = create(f, MODEL_PROJECT, 0);
    unsigned char *bytes = tmpdb_payload(4, 80000);
    store_close(f->s); /* SQLite connections must not cross a fork */
    f->s = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* the child writes through a store of its own, then dies */
        store_t *s = NULL;
        arena_t *a = arena_create();
        model_blob b;
        if (store_open(f->path, &g_opt, &s) != STORE_OK ||
            put_bytes(s, a, f->dir, MODEL_PROJECT, id, bytes, 80000, 0, &b) != STORE_OK)
            _exit(1);
        raise(SIGKILL);
        _exit(2);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    /* read it back through a fresh open, as after a restart */
    assert_int_equal(store_open(f->path, &g_opt, &f->s), STORE_OK);
    assert_image(f, MODEL_PROJECT, id, bytes, 80000);
    free(bytes);
}

/* ---- concurrency -------------------------------------------------------- */

#define WRITERS 8
#define PUTS 10
#define READERS 2

/* Payload number `seed` of the concurrent test has a size of its own. */
static size_t seed_size(int seed)
{
    return 1000 + (size_t)seed * 1237;
}

typedef struct {
    fixture *f;
    int32_t id;
    int index;
    atomic_int *writers_left; /* readers read until it is 0 */
    int reads;
    int failures; /* checked by the main thread: cmocka is not thread-safe */
} worker;

/* True when bytes[0, n) is one of the payloads the writers store. */
static bool is_written_payload(const void *bytes, size_t n)
{
    if (n < 1000 || (n - 1000) % 1237 != 0 || (n - 1000) / 1237 >= WRITERS * PUTS)
        return false;
    unsigned char *want = tmpdb_payload((int)((n - 1000) / 1237), n);
    bool same = memcmp(want, bytes, n) == 0;
    free(want);
    return same;
}

static void *writer(void *arg)
{
    worker *w = arg;
    arena_t *a = arena_create();
    for (int j = 0; j < PUTS; j++) {
        int seed = w->index * PUTS + j;
        size_t n = seed_size(seed);
        unsigned char *bytes = tmpdb_payload(seed, n);
        model_blob b;
        store_err rc = put_bytes(w->f->s, a, w->f->dir, MODEL_PERSON, w->id, bytes, n, 0, &b);
        if (rc != STORE_OK || b.blob_size != (int32_t)n)
            w->failures++;
        free(bytes);
        arena_reset(a);
    }
    arena_destroy(a);
    atomic_fetch_sub(w->writers_left, 1);
    return NULL;
}

/* Every read, all along the writes, sees a record whose sizes match its
 * bytes: record and bytes come from one snapshot. */
static void *reader(void *arg)
{
    worker *w = arg;
    arena_t *a = arena_create();
    for (; atomic_load(w->writers_left) > 0; w->reads++) {
        model_blob b;
        void *bytes = NULL;
        size_t len = 0;
        store_err rc = store_image_get(w->f->s, a, MODEL_PERSON, w->id, &b, &bytes, &len);
        if (rc == STORE_OK && (len != (size_t)b.blob_size || b.original_size != b.blob_size ||
                               !is_written_payload(bytes, len)))
            w->failures++;
        else if (rc != STORE_OK && rc != STORE_ABSENT)
            w->failures++;
        free(bytes);
        arena_reset(a);
    }
    arena_destroy(a);
    return NULL;
}

static void test_concurrent_puts(void **state)
{
    fixture *f = *state;
    int32_t id = create(f, MODEL_PERSON, 0);
    pthread_t th[WRITERS + READERS];
    worker w[WRITERS + READERS];
    atomic_int writers_left = WRITERS;
    for (int i = 0; i < WRITERS + READERS; i++) {
        w[i] = (worker){.f = f, .id = id, .index = i, .writers_left = &writers_left};
        assert_int_equal(pthread_create(&th[i], NULL, i < WRITERS ? writer : reader, &w[i]), 0);
    }
    for (int i = 0; i < WRITERS + READERS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
    }

    model_blob b;
    void *bytes = NULL;
    size_t len = 0;
    assert_int_equal(store_image_get(f->s, f->a, MODEL_PERSON, id, &b, &bytes, &len), STORE_OK);
    assert_int_equal(len, b.blob_size);
    assert_int_equal(b.blob_size, b.original_size);
    assert_true(is_written_payload(bytes, len));
    assert_int_equal(b.version, WRITERS * PUTS);
    free(bytes);
}

/* Many threads creating entities at once, each also making a create that
 * fails (an id taken): every success is stored, every failure undone on its
 * own -- in durable mode the writes share commits. */
#define CREATORS 8
#define CREATES 40

typedef struct {
    fixture *f;
    int index;
    int failures;
} creator;

static void *create_many(void *arg)
{
    creator *c = arg;
    for (int i = 0; i < CREATES; i++) {
        model_entity_t e = entity(MODEL_CONTACT, 100000 + c->index * CREATES + i, "c", 0);
        if (store_entity_create(c->f->s, &e) != STORE_OK)
            c->failures++;
        model_entity_t dup = entity(MODEL_CONTACT, 1, "dup", 0);
        if (store_entity_create(c->f->s, &dup) != STORE_CONFLICT)
            c->failures++;
    }
    return NULL;
}

static void test_concurrent_creates(void **state)
{
    fixture *f = *state;
    create(f, MODEL_CONTACT, 1);
    pthread_t th[CREATORS];
    creator c[CREATORS];
    for (int i = 0; i < CREATORS; i++) {
        c[i] = (creator){.f = f, .index = i};
        assert_int_equal(pthread_create(&th[i], NULL, create_many, &c[i]), 0);
    }
    for (int i = 0; i < CREATORS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(c[i].failures, 0);
    }
    store_close(f->s);
    assert_int_equal(store_open(f->path, &g_opt, &f->s), STORE_OK);
    for (int i = 0; i < CREATORS * CREATES; i++) {
        model_entity_t e;
        assert_int_equal(store_entity_get(f->s, f->a, MODEL_CONTACT, 100000 + i, &e), STORE_OK);
    }
    model_entity_t one;
    assert_int_equal(store_entity_get(f->s, f->a, MODEL_CONTACT, 1, &one), STORE_OK);
    assert_string_equal(one.v[0].s, "name");
}

/* Entity versions move on every change, and a write expecting an older
 * version is refused without effect. */
static void test_entity_versions(void **state)
{
    fixture *f = *state;
    model_entity_t e = entity(MODEL_CONTACT, 0, "v", 0), got;
    assert_int_equal(store_entity_create(f->s, &e), STORE_OK);
    assert_int_equal(e.version, 1);
    assert_true(e.updated_ms > 0);
    assert_int_equal(store_entity_update(f->s, &e, 1), STORE_OK);
    assert_int_equal(e.version, 2);
    assert_int_equal(store_entity_get(f->s, f->a, MODEL_CONTACT, e.id, &got), STORE_OK);
    assert_int_equal(got.version, 2);
    assert_int_equal(got.updated_ms, e.updated_ms);
    assert_int_equal(store_entity_update(f->s, &e, 1), STORE_PRECONDITION);
    assert_int_equal(store_entity_delete(f->s, MODEL_CONTACT, e.id, 1), STORE_PRECONDITION);
    assert_int_equal(store_entity_exists(f->s, MODEL_CONTACT, e.id), STORE_OK);
    assert_int_equal(store_entity_delete(f->s, MODEL_CONTACT, e.id, 2), STORE_OK);
}

/* Image writes check the bytes' version, ImageInfo writes the record's
 * info_version; 0 stands for "no record yet". */
static void test_image_expect(void **state)
{
    fixture *f = *state;
    int32_t id = create(f, MODEL_PERSON, 0);
    unsigned char *bytes = tmpdb_payload(3, 100);
    int fd = tmpdb_content_fd(f->dir, bytes, 100);
    store_content c = {.fd = fd, .size = 100, .original_size = 100, .mime_type = "image/png"};
    model_blob b, info;
    model_blob_edit edit = {.description = "x"};
    assert_int_equal(store_image_put(f->s, f->a, MODEL_PERSON, id, &c, 0, 5, &b),
                     STORE_PRECONDITION);
    assert_int_equal(store_image_put(f->s, f->a, MODEL_PERSON, id, &c, 0, 0, &b), STORE_OK);
    assert_int_equal(b.version, 1);
    assert_int_equal(store_image_put(f->s, f->a, MODEL_PERSON, id, &c, 0, 0, &info),
                     STORE_PRECONDITION);
    assert_int_equal(
        store_image_info_put(f->s, f->a, MODEL_PERSON, id, &edit, 0, b.info_version + 1, &info),
        STORE_PRECONDITION);
    assert_int_equal(
        store_image_info_put(f->s, f->a, MODEL_PERSON, id, &edit, 0, b.info_version, &info),
        STORE_OK);
    assert_string_equal(info.description, "x");
    assert_int_equal(store_image_delete(f->s, MODEL_PERSON, id, 7), STORE_PRECONDITION);
    assert_int_equal(store_image_delete(f->s, MODEL_PERSON, id, 1), STORE_OK);
    assert_int_equal(store_image_info(f->s, f->a, MODEL_PERSON, id, &info), STORE_OK);
    assert_int_equal(info.blob_id, 0);
    close(fd);
    free(bytes);
}

/* Once the largest id is taken, new entities get the lowest free ids. */
static void test_entity_ids_after_max(void **state)
{
    fixture *f = *state;
    assert_int_equal(create(f, MODEL_PROJECT, INT32_MAX), INT32_MAX);
    assert_int_equal(create(f, MODEL_PROJECT, 0), 1);
    assert_int_equal(create(f, MODEL_PROJECT, 0), 2);
    assert_int_equal(create(f, MODEL_PROJECT, 4), 4);
    assert_int_equal(create(f, MODEL_PROJECT, 0), 3);
    assert_int_equal(create(f, MODEL_PROJECT, 0), 5);
}

int main(void)
{
    log_set_level(LOG_WARN);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_open),
        T(test_ping),
        T(test_describe),
        T(test_spool_hint),
        T(test_hold),
        T(test_user_add_get),
        T(test_user_duplicate),
        T(test_user_list_count),
        T(test_user_set),
        T(test_entity_create_ids),
        T(test_entity_get_update_delete),
        T(test_entity_reference),
        T(test_image_info_empty),
        T(test_image_info_put),
        T(test_image_info_put_conceptual_type),
        T(test_image_put_get),
        T(test_image_get_piece_edge),
        T(test_image_put_flags),
        T(test_recode_all),
        T(test_image_replace),
        T(test_image_get_missing),
        T(test_image_delete),
        T(test_entity_delete_removes_image),
        T(test_blob_ids_unique),
        T(test_entity_versions),
        T(test_entity_ids_after_max),
        T(test_image_expect),
        T(test_image_put_errors),
        T(test_reopen),
        T(test_survives_kill),
        T(test_concurrent_puts),
        T(test_concurrent_creates),
    };
#undef T
    int failed = cmocka_run_group_tests_name("default mode", tests, NULL, NULL);
    g_opt.durable = true;
    return failed + cmocka_run_group_tests_name("durable mode (group commit)", tests, NULL, NULL);
}
