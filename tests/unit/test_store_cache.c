/*
 * test_store_cache.c — the store's read cache: the bounded cache itself
 * (cache.h), and store.h reads through it: a cached answer equals the
 * database's, and a write by this store, by another handle on the same
 * file, or by another process (fork) is seen by the very next read.
 *
 * Every store test gets a fresh database in its own temporary directory;
 * `s` reads through a cache, `other` (no cache) plays the second process
 * (`crmblob user disable` while the server runs).
 */
#include <fcntl.h>
#include <setjmp.h>
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
#include "store/cache.h"
#include "store/store.h"

#include "tmpdb.h"

/* store_int.h's STORE_CHANGES_CHECK_US (private to src/store) */
#define STORE_CHANGES_CHECK_US_FOR_TEST 100000

/* ---- the cache alone ------------------------------------------------------ */

typedef struct {
    char seen[64];
    size_t len;
} sink;

static bool take(void *cls, const void *v, size_t n, store_cache_entry *e)
{
    (void)e;
    sink *k = cls;
    assert_true(n <= sizeof(k->seen));
    memcpy(k->seen, v, n);
    k->len = n;
    return true;
}

static bool refuse(void *cls, const void *v, size_t n, store_cache_entry *e)
{
    (void)cls, (void)v, (void)n, (void)e;
    return false;
}

typedef struct {
    const char *value;
    size_t len;
    store_cache_entry *held;
} lender;

static bool borrow(void *cls, const void *v, size_t n, store_cache_entry *e)
{
    lender *l = cls;
    store_cache_entry_hold(e);
    l->value = v;
    l->len = n;
    l->held = e;
    return true;
}

static void test_cache_hit_needs_same_changes(void **state)
{
    (void)state;
    store_cache *c = store_cache_create(1 << 20);
    sink k = {0};
    store_cache_put(c, 7, "key", 3, "val", 3, "ue", 2);
    assert_true(store_cache_get(c, 7, "key", 3, take, &k));
    assert_int_equal(k.len, 5);
    assert_memory_equal(k.seen, "value", 5);
    assert_false(store_cache_get(c, 7, "kez", 3, take, &k));
    assert_false(store_cache_get(c, 7, "ke", 2, take, &k));
    /* a write moved the count: the entry is dead and freed */
    assert_false(store_cache_get(c, 8, "key", 3, take, &k));
    store_cache_stats st;
    store_cache_stats_get(c, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 3);
    /* and it does not come back when the count would match again */
    assert_false(store_cache_get(c, 7, "key", 3, take, &k));
    store_cache_destroy(c);
}

static void test_cache_reader_refusal_is_a_miss(void **state)
{
    (void)state;
    store_cache *c = store_cache_create(1 << 20);
    store_cache_put(c, 1, "k", 1, "v", 1, NULL, 0);
    assert_false(store_cache_get(c, 1, "k", 1, refuse, NULL));
    store_cache_stats st;
    store_cache_stats_get(c, &st);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.hits, 0);
    store_cache_destroy(c);
}

/* A value lent out stays as it was while the entry is replaced, dies of a
 * write, or the cache goes away; the last drop frees it (ASan: no leak,
 * no use after free). */
static void test_cache_lent_value_outlives_entry(void **state)
{
    (void)state;
    store_cache *c = store_cache_create(1 << 20);
    store_cache_put(c, 1, "k", 1, "old", 3, NULL, 0);
    lender a = {0}, b = {0};
    assert_true(store_cache_get(c, 1, "k", 1, borrow, &a));
    assert_true(store_cache_get(c, 1, "k", 1, borrow, &b)); /* two holders */
    store_cache_put(c, 1, "k", 1, "new", 3, NULL, 0);       /* replaced */
    assert_memory_equal(a.value, "old", 3);
    store_cache_entry_drop(a.held);
    assert_memory_equal(b.value, "old", 3);
    sink k = {0};
    assert_true(store_cache_get(c, 1, "k", 1, take, &k));
    assert_memory_equal(k.seen, "new", 3);
    lender n = {0};
    assert_true(store_cache_get(c, 1, "k", 1, borrow, &n));
    store_cache_destroy(c); /* the holders outlive the cache */
    assert_memory_equal(n.value, "new", 3);
    assert_memory_equal(b.value, "old", 3);
    store_cache_entry_drop(n.held);
    store_cache_entry_drop(b.held);
}

static void test_cache_budget(void **state)
{
    (void)state;
    enum { BUDGET = 16 * 1024 };
    static char big[BUDGET];
    store_cache *c = store_cache_create(BUDGET);
    store_cache_stats st;
    /* over a sixteenth of the budget: never kept */
    store_cache_put(c, 1, "big", 3, big, BUDGET / 16 + 1, NULL, 0);
    store_cache_stats_get(c, &st);
    assert_int_equal(st.entries, 0);
    /* live entries fill the budget: more are not kept, the total holds */
    char key[16];
    for (int i = 0; i < 64; i++) {
        int n = snprintf(key, sizeof(key), "k%d", i);
        store_cache_put(c, 1, key, (size_t)n, big, BUDGET / 16, NULL, 0);
    }
    store_cache_stats_get(c, &st);
    assert_true(st.bytes <= BUDGET);
    assert_true(st.entries >= 8 && st.entries <= 16);
    /* after a write they are all dead: a new entry sweeps them away */
    store_cache_put(c, 2, "fresh", 5, big, BUDGET / 16, NULL, 0);
    store_cache_stats_get(c, &st);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.bytes, BUDGET / 16);
    sink k;
    assert_false(store_cache_get(c, 2, "k0", 2, refuse, &k));
    store_cache_destroy(c);
}

/* ---- reads through the store ------------------------------------------- */

typedef struct {
    char dir[64];
    char path[128];
    store_t *s;     /* with a read cache */
    store_t *other; /* the same file, no cache */
    arena_t *a;
    int32_t uid;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (tmpdb_make(f->dir, sizeof(f->dir), f->path, sizeof(f->path), "cache", "crmblob.db") != 0)
        return -1;
    store_options with_cache = {.cache_bytes = 1 << 20};
    if (store_open(f->path, &with_cache, &f->s) != STORE_OK ||
        store_open(f->path, NULL, &f->other) != STORE_OK)
        return -1;
    f->a = arena_create();
    model_user u = {
        .name = "Alice", .full_name = "Alice A.", .role = MODEL_ROLE_EDITOR, .pw_hash = "$h1"};
    if (store_user_add(f->other, &u) != STORE_OK)
        return -1;
    f->uid = u.id;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_close(f->s);
    store_close(f->other);
    arena_destroy(f->a);
    tmpdb_remove(f->dir);
    free(f);
    return 0;
}

static uint64_t hits(fixture *f)
{
    store_cache_stats st;
    store_stats(f->s, &st);
    return st.hits;
}

static int32_t person(store_t *s)
{
    int32_t id;
    assert_int_equal(tmpdb_entity(s, MODEL_PERSON, &id), STORE_OK);
    return id;
}

static void put_image(fixture *f, store_t *s, int32_t id, int seed, size_t n)
{
    model_blob b;
    store_content c = tmpdb_content(f->dir, seed, n, "image/jpeg");
    assert_true(c.fd >= 0);
    assert_int_equal(store_image_put(s, f->a, MODEL_PERSON, id, &c, f->uid, STORE_ANY, &b),
                     STORE_OK);
    close(c.fd);
}

/* The image of person id through s is tmpdb_payload(seed, n). */
static void assert_image(fixture *f, store_t *s, int32_t id, int seed, size_t n, model_blob *b)
{
    void *bytes = NULL;
    size_t len = 0;
    assert_int_equal(store_image_get(s, f->a, MODEL_PERSON, id, b, &bytes, &len), STORE_OK);
    unsigned char *want = tmpdb_payload(seed, n);
    assert_int_equal(len, n);
    assert_memory_equal(bytes, want, n);
    free(want);
    free(bytes);
}

static void assert_same_user(const model_user *x, const model_user *y)
{
    assert_int_equal(x->id, y->id);
    assert_string_equal(x->name, y->name);
    assert_string_equal(x->full_name, y->full_name);
    assert_string_equal(x->pw_hash, y->pw_hash);
    assert_int_equal(x->role, y->role);
    assert_int_equal(x->disabled, y->disabled);
    assert_int_equal(x->created_ms, y->created_ms);
}

static void assert_same_blob(const model_blob *x, const model_blob *y)
{
    assert_int_equal(x->blob_id, y->blob_id);
    assert_int_equal(x->blob_size, y->blob_size);
    assert_int_equal(x->original_size, y->original_size);
    assert_string_equal(x->description, y->description);
    assert_string_equal(x->extra_info, y->extra_info);
    assert_string_equal(x->mime_type, y->mime_type);
    assert_string_equal(x->conceptual_type, y->conceptual_type);
    assert_int_equal(x->created_ms, y->created_ms);
    assert_int_equal(x->updated_ms, y->updated_ms);
    assert_int_equal(x->version, y->version);
    assert_int_equal(x->info_version, y->info_version);
    assert_int_equal(x->created_by == NULL, y->created_by == NULL);
    if (x->created_by != NULL)
        assert_same_user(x->created_by, y->created_by);
    assert_int_equal(x->updated_by == NULL, y->updated_by == NULL);
    if (x->updated_by != NULL)
        assert_same_user(x->updated_by, y->updated_by);
}

static void test_user_hit_equals_database(void **state)
{
    fixture *f = *state;
    model_user db, first, second;
    assert_int_equal(store_user_by_name(f->other, f->a, "alice", &db), STORE_OK);
    uint64_t h = hits(f);
    assert_int_equal(store_user_by_name(f->s, f->a, "alice", &first), STORE_OK);
    assert_int_equal(store_user_by_name(f->s, f->a, "ALICE", &second), STORE_OK);
    assert_int_equal(hits(f), h + 1); /* names are one user case-insensitively */
    assert_same_user(&first, &db);
    assert_same_user(&second, &db);
    assert_int_equal(store_user_by_name(f->s, f->a, "bob", &first), STORE_ABSENT);
}

static void test_user_change_by_other_handle(void **state)
{
    fixture *f = *state;
    model_user u;
    assert_int_equal(store_user_by_name(f->s, f->a, "alice", &u), STORE_OK);
    assert_int_equal(store_user_by_name(f->s, f->a, "alice", &u), STORE_OK);
    assert_false(u.disabled);
    assert_int_equal(store_user_set_disabled(f->other, "alice", true), STORE_OK);
    assert_int_equal(store_user_by_name(f->s, f->a, "alice", &u), STORE_OK);
    assert_true(u.disabled);
    assert_int_equal(store_user_set_password(f->other, "alice", "$h2"), STORE_OK);
    assert_int_equal(store_user_by_name(f->s, f->a, "Alice", &u), STORE_OK);
    assert_string_equal(u.pw_hash, "$h2");
}

static void test_user_change_by_other_process(void **state)
{
    fixture *f = *state;
    model_user u;
    assert_int_equal(store_user_by_name(f->s, f->a, "alice", &u), STORE_OK);
    assert_int_equal(store_user_by_name(f->s, f->a, "alice", &u), STORE_OK);
    assert_false(u.disabled);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* what `crmblob user disable alice` does */
        store_t *cli = NULL;
        int ok = store_open(f->path, NULL, &cli) == STORE_OK &&
                 store_user_set_disabled(cli, "alice", true) == STORE_OK;
        store_close(cli);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(store_user_by_name(f->s, f->a, "alice", &u), STORE_OK);
    assert_true(u.disabled);
}

static void test_long_names_work_uncached(void **state)
{
    fixture *f = *state;
    char name[300];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    model_user u = {.name = name, .full_name = "", .role = MODEL_ROLE_VIEWER, .pw_hash = "$x"};
    assert_int_equal(store_user_add(f->other, &u), STORE_OK);
    model_user got;
    uint64_t h = hits(f);
    assert_int_equal(store_user_by_name(f->s, f->a, name, &got), STORE_OK);
    assert_int_equal(store_user_by_name(f->s, f->a, name, &got), STORE_OK);
    assert_int_equal(hits(f), h);
    assert_int_equal(got.id, u.id);
}

static void test_image_hit_equals_database(void **state)
{
    fixture *f = *state;
    int32_t id = person(f->s);
    put_image(f, f->s, id, 1, 5000);
    model_blob db, first, second;
    assert_image(f, f->other, id, 1, 5000, &db);
    uint64_t h = hits(f);
    assert_image(f, f->s, id, 1, 5000, &first);
    assert_image(f, f->s, id, 1, 5000, &second);
    assert_int_equal(hits(f), h + 1);
    assert_same_blob(&first, &db);
    assert_same_blob(&second, &db);
    assert_non_null(second.created_by);
    assert_string_equal(second.created_by->name, "Alice");
}

static void test_image_change_seen_next_read(void **state)
{
    fixture *f = *state;
    int32_t id = person(f->s);
    put_image(f, f->s, id, 1, 5000);
    model_blob b;
    assert_image(f, f->s, id, 1, 5000, &b);
    assert_image(f, f->s, id, 1, 5000, &b);
    int64_t v = b.version;
    put_image(f, f->other, id, 2, 7000); /* another process's write */
    assert_image(f, f->s, id, 2, 7000, &b);
    assert_true(b.version > v);
    put_image(f, f->s, id, 3, 100); /* this store's own */
    assert_image(f, f->s, id, 3, 100, &b);
    assert_int_equal(store_image_delete(f->other, MODEL_PERSON, id, STORE_ANY), STORE_OK);
    void *bytes = NULL;
    size_t len = 0;
    assert_int_equal(store_image_get(f->s, f->a, MODEL_PERSON, id, &b, &bytes, &len), STORE_ABSENT);
    free(bytes);
}

static void test_info_change_seen_next_read(void **state)
{
    fixture *f = *state;
    int32_t id = person(f->s);
    model_blob b, db;
    model_blob_edit edit = {.description = "first"};
    assert_int_equal(
        store_image_info_put(f->other, f->a, MODEL_PERSON, id, &edit, f->uid, STORE_ANY, &b),
        STORE_OK);
    assert_int_equal(store_image_info(f->s, f->a, MODEL_PERSON, id, &b), STORE_OK);
    assert_int_equal(store_image_info(f->s, f->a, MODEL_PERSON, id, &b), STORE_OK);
    assert_int_equal(store_image_info(f->other, f->a, MODEL_PERSON, id, &db), STORE_OK);
    assert_same_blob(&b, &db);
    edit.description = "second";
    assert_int_equal(
        store_image_info_put(f->other, f->a, MODEL_PERSON, id, &edit, f->uid, STORE_ANY, &db),
        STORE_OK);
    assert_int_equal(store_image_info(f->s, f->a, MODEL_PERSON, id, &b), STORE_OK);
    assert_string_equal(b.description, "second");
    assert_same_blob(&b, &db);
}

/* Users have a count of their own: pictures and records written at a
 * high rate do not push them out; a user written empties everything
 * (records show their users' names). */
static void test_picture_writes_keep_users(void **state)
{
    fixture *f = *state;
    int32_t id = person(f->s);
    model_user u;
    assert_int_equal(store_user_by_name(f->s, f->a, "alice", &u), STORE_OK);
    put_image(f, f->other, id, 1, 100);
    uint64_t h = hits(f);
    assert_int_equal(store_user_by_name(f->s, f->a, "alice", &u), STORE_OK);
    assert_int_equal(hits(f), h + 1);
    model_blob b, db;
    assert_image(f, f->s, id, 1, 100, &b);
    model_user v = {.name = "Bob", .full_name = "", .role = MODEL_ROLE_VIEWER, .pw_hash = "$b"};
    assert_int_equal(store_user_add(f->other, &v), STORE_OK);
    h = hits(f);
    assert_image(f, f->s, id, 1, 100, &b); /* refilled, not a hit */
    assert_int_equal(store_user_by_name(f->s, f->a, "alice", &u), STORE_OK);
    assert_int_equal(hits(f), h);
    assert_int_equal(store_image_info(f->other, f->a, MODEL_PERSON, id, &db), STORE_OK);
    assert_same_blob(&b, &db);
}

/* Bytes lent from the cache: the same as the database's, and unchanged
 * while a write replaces them, until released. */
static void test_image_shared(void **state)
{
    fixture *f = *state;
    int32_t id = person(f->s);
    put_image(f, f->s, id, 1, 6000);
    unsigned char *want = tmpdb_payload(1, 6000);
    model_blob b;
    store_pic_view v1, v2, v3;
    assert_int_equal(store_image_get_shared(f->s, f->a, MODEL_PERSON, id, &b, &v1), STORE_OK);
    assert_int_equal(v1.len, 6000);
    assert_int_equal(v1.fd, -1); /* small: in memory */
    assert_memory_equal(v1.bytes, want, 6000);
    uint64_t h = hits(f);
    assert_int_equal(store_image_get_shared(f->s, f->a, MODEL_PERSON, id, &b, &v2), STORE_OK);
    assert_int_equal(hits(f), h + 1);
    assert_memory_equal(v2.bytes, want, 6000);
    put_image(f, f->other, id, 2, 100); /* a write while the bytes are out */
    assert_memory_equal(v2.bytes, want, 6000);
    v1.rel.release(v1.rel.cls);
    v2.rel.release(v2.rel.cls);
    assert_image(f, f->s, id, 2, 100, &b);
    assert_int_equal(store_image_get_shared(f->s, f->a, MODEL_PERSON, 999, &b, &v3),
                     STORE_ABSENT);
    v3.rel.release(v3.rel.cls); /* always safe */
    free(want);
}

/* A picture larger than STORE_PIC_INLINE comes in an unnamed file, read
 * from its start, and is never kept by the cache (each read is a miss). */
static void test_image_large_spooled(void **state)
{
    fixture *f = *state;
    int32_t id = person(f->s);
    size_t n = STORE_PIC_INLINE + 70001;
    put_image(f, f->s, id, 3, n);
    unsigned char *want = tmpdb_payload(3, n), *got = malloc(n);
    model_blob b;
    for (int i = 0; i < 2; i++) {
        store_pic_view v;
        uint64_t h = hits(f);
        assert_int_equal(store_image_get_shared(f->s, f->a, MODEL_PERSON, id, &b, &v), STORE_OK);
        assert_int_equal(hits(f), h);
        assert_null(v.bytes);
        assert_true(v.fd >= 0);
        assert_int_equal(v.len, n);
        struct stat st;
        assert_int_equal(fstat(v.fd, &st), 0);
        assert_int_equal(st.st_nlink, 0);
        assert_int_equal(st.st_size, (off_t)n);
        assert_int_equal(pread(v.fd, got, n, 0), (ssize_t)n);
        assert_memory_equal(got, want, n);
        v.rel.release(v.rel.cls);
    }
    void *bytes = NULL; /* the whole-picture read: memory, however large */
    size_t len = 0;
    assert_int_equal(store_image_get(f->s, f->a, MODEL_PERSON, id, &b, &bytes, &len), STORE_OK);
    assert_int_equal(len, n);
    assert_memory_equal(bytes, want, n);
    free(bytes);
    free(got);
    free(want);
}

/* A write answers its record with the users it names; the store keeps
 * those users between writes, but a user changed by any process is read
 * again, and a name too long to keep is read every time. */
static void test_record_users_follow_user_changes(void **state)
{
    fixture *f = *state;
    int32_t id = person(f->s);
    model_blob b;
    model_blob_edit edit = {.description = "one"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(
            store_image_info_put(f->s, f->a, MODEL_PERSON, id, &edit, f->uid, STORE_ANY, &b),
            STORE_OK);
        assert_non_null(b.updated_by);
        assert_string_equal(b.updated_by->full_name, "Alice A.");
        assert_false(b.updated_by->disabled);
    }
    assert_int_equal(store_user_set_disabled(f->other, "alice", true), STORE_OK);
    assert_int_equal(
        store_image_info_put(f->s, f->a, MODEL_PERSON, id, &edit, f->uid, STORE_ANY, &b), STORE_OK);
    assert_true(b.updated_by->disabled);
    assert_true(b.created_by->disabled);
    char name[300];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    model_user u = {.name = name, .full_name = "", .role = MODEL_ROLE_EDITOR, .pw_hash = "$x"};
    assert_int_equal(store_user_add(f->other, &u), STORE_OK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(
            store_image_info_put(f->s, f->a, MODEL_PERSON, id, &edit, u.id, STORE_ANY, &b),
            STORE_OK);
        assert_string_equal(b.updated_by->name, name);
        assert_string_equal(b.created_by->name, "Alice");
        assert_true(b.created_by->disabled);
    }
}

/* The durable mode commits writers together: its commits count too. */
static void test_durable_writes_seen(void **state)
{
    fixture *f = *state;
    store_t *d = NULL;
    store_options durable = {.durable = true, .pool_size = 4, .cache_bytes = 1 << 20};
    assert_int_equal(store_open(f->path, &durable, &d), STORE_OK);
    int32_t id = person(d);
    put_image(f, d, id, 1, 3000);
    model_blob b;
    void *bytes = NULL;
    size_t len = 0;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(store_image_get(d, f->a, MODEL_PERSON, id, &b, &bytes, &len), STORE_OK);
        free(bytes);
    }
    put_image(f, d, id, 2, 4000);
    assert_image(f, d, id, 2, 4000, &b);
    store_cache_stats st;
    store_stats(d, &st);
    assert_true(st.hits >= 1);
    store_close(d);
}

/* Seconds until alice reads as disabled through s (polled every 10 ms),
 * or -1 after two seconds. */
static double until_disabled(fixture *f)
{
    model_user u;
    for (int i = 0; i < 200; i++) {
        assert_int_equal(store_user_by_name(f->s, f->a, "alice", &u), STORE_OK);
        if (u.disabled)
            return i * 0.01;
        usleep(10000);
    }
    return -1;
}

static void cache_alice(fixture *f)
{
    model_user u;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(store_user_by_name(f->s, f->a, "alice", &u), STORE_OK);
        assert_false(u.disabled);
    }
}

static void changes_name(const fixture *f, char *name, size_t n)
{
    assert_true((size_t)snprintf(name, n, "%s-changes", f->path) < n);
}

/* `crmblob user disable alice` from another process: a store opened,
 * written and closed there. */
static void cli_disables_alice(const fixture *f)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        store_t *cli = NULL;
        int ok = store_open(f->path, NULL, &cli) == STORE_OK &&
                 store_user_set_disabled(cli, "alice", true) == STORE_OK;
        store_close(cli);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* rm <db>-changes, then `crmblob user disable alice` (which makes a new
 * file): s sees it within STORE_CHANGES_CHECK_US and a little. */
static void test_user_change_after_counts_file_removed(void **state)
{
    fixture *f = *state;
    char name[160];
    changes_name(f, name, sizeof(name));
    cache_alice(f);
    assert_int_equal(unlink(name), 0);
    cli_disables_alice(f);
    double t = until_disabled(f);
    assert_true(t >= 0 && t <= 0.3);
    assert_int_equal(access(name, F_OK), 0);
}

/* A writer that had the old file mapped writes after the file was removed
 * and s moved to a new one: its close moves the new file's counts. */
static void test_write_counted_in_removed_file_is_seen(void **state)
{
    fixture *f = *state;
    char name[160];
    changes_name(f, name, sizeof(name));
    store_t *late = NULL;
    assert_int_equal(store_open(f->path, NULL, &late), STORE_OK); /* maps the old file */
    cache_alice(f);
    assert_int_equal(unlink(name), 0);
    usleep(STORE_CHANGES_CHECK_US_FOR_TEST + 20000);
    cache_alice(f); /* s notices, makes and maps a new file */
    assert_int_equal(access(name, F_OK), 0);
    assert_int_equal(store_user_set_disabled(late, "alice", true), STORE_OK);
    store_close(late);
    double t = until_disabled(f);
    assert_true(t >= 0 && t <= 0.3);
}

/* A file that cannot be made again (a directory in its way): every check
 * moves the counts, so a change is still seen within a check. */
static void test_counts_file_that_cannot_be_made(void **state)
{
    fixture *f = *state;
    char name[160];
    changes_name(f, name, sizeof(name));
    cache_alice(f);
    assert_int_equal(unlink(name), 0);
    assert_int_equal(mkdir(name, 0700), 0);
    cli_disables_alice(f); /* a writer that has no counts at all */
    double t = until_disabled(f);
    assert_true(t >= 0 && t <= 0.3);
    rmdir(name);
}

/* The counts file copied over in place from a backup: its counts go back,
 * and the next writes would bring them round to values that tag entries
 * read before. s notices the rewind at its next check and moves past. */
static void test_counts_file_copied_over(void **state)
{
    fixture *f = *state;
    char name[160], backup[4096];
    changes_name(f, name, sizeof(name));
    int fd = open(name, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, backup, sizeof(backup), 0), (ssize_t)sizeof(backup));
    model_user bob = {.name = "Bob", .full_name = "B", .role = MODEL_ROLE_EDITOR, .pw_hash = "$h"};
    assert_int_equal(store_user_add(f->other, &bob), STORE_OK); /* users + 1 */
    cache_alice(f); /* tagged with the count after Bob */
    assert_int_equal(pwrite(fd, backup, sizeof(backup), 0), (ssize_t)sizeof(backup));
    close(fd);
    usleep(STORE_CHANGES_CHECK_US_FOR_TEST + 20000);
    model_user u;
    assert_int_equal(store_user_by_name(f->s, f->a, "nobody", &u), STORE_ABSENT); /* a check */
    /* users + 1 again: without the rewind seen, alice's entry would match */
    assert_int_equal(store_user_set_disabled(f->other, "alice", true), STORE_OK);
    double t = until_disabled(f);
    assert_true(t >= 0 && t <= 0.3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_hit_needs_same_changes),
        cmocka_unit_test(test_cache_reader_refusal_is_a_miss),
        cmocka_unit_test(test_cache_lent_value_outlives_entry),
        cmocka_unit_test(test_cache_budget),
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_user_hit_equals_database),
        T(test_user_change_by_other_handle),
        T(test_user_change_by_other_process),
        T(test_long_names_work_uncached),
        T(test_image_hit_equals_database),
        T(test_image_change_seen_next_read),
        T(test_info_change_seen_next_read),
        T(test_picture_writes_keep_users),
        T(test_image_shared),
        T(test_image_large_spooled),
        T(test_record_users_follow_user_changes),
        T(test_counts_file_copied_over),
        T(test_durable_writes_seen),
        T(test_user_change_after_counts_file_removed),
        T(test_write_counted_in_removed_file_is_seen),
        T(test_counts_file_that_cannot_be_made),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
