/*
 * test_store_race.c — two stores on one database, raced from threads on
 * the same entity (doc/store-reshaping.md, plan step 13): what two crmblob
 * servers sharing one database do to each other. On SQLite the two stores
 * are two opens of one file; with CRMBLOB_TEST_DB=pg (make unit-pg) they
 * are two pools on one PostgreSQL schema, where the recipes' row locks,
 * conditional writes and claims are what keeps the rules (R1-R6).
 *
 * Each case gives 8 threads (4 per store) the same start (a barrier) and
 * records every answer; the threads assert nothing (cmocka's asserts jump
 * on the main thread's stack), the main thread checks afterwards:
 *  - the record agrees with the stored picture (sizes = stored bytes, the
 *    bytes are those of the last acknowledged PUT);
 *  - no acknowledged write is lost: every write bumps its version by one,
 *    so the versions the writes were told are distinct and consecutive, and
 *    the record carries the highest;
 *  - of conditional writes on one version, exactly one wins;
 *  - ids (entities, BlobIds) are unique, and a record is linked at most
 *    once, and linked exactly when unlinked_ms is NULL (the sweep's rule);
 *  - variants are kept only of the bytes' current version, the cache's
 *    running totals are true and within its bound.
 * Each case fails on PostgreSQL when its recipe loses what keeps it (tried
 * one at a time when this test was written): R1 the id lock (create),
 * R2 the WHERE expect (conditional writes), R3 the links RETURNED by the
 * delete (delete), R4 the entity row lock (PUT picture and ImageInfo),
 * R5 the claim's unlinked_ms condition (claims), R7 the variant put's share
 * lock of the BLOB row (variants). On SQLite one writer at a
 * time serialises the recipes, so there it checks the rules only.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/text.h"
#include "store/store.h"

#include "tmpdb.h"

#define NT 8     /* racing threads, NT / 2 per store */
#define ITERS 12 /* writes per thread in the unconditional race */

typedef struct {
    char dir[256], path[512];
    store_t *s[2];
} race_db;

/* One racing thread: its store, its number, the shared start, what it
 * did (filled by the case's body). */
typedef struct worker worker;
typedef void (*race_fn)(worker *w);
struct worker {
    race_db *db;
    store_t *s;
    arena_t *a;
    int no;
    pthread_barrier_t *start;
    race_fn fn;
    void *arg; /* the case's shared input */
    store_err rc[ITERS * 2];
    int64_t v[ITERS * 2], iv[ITERS * 2]; /* versions told */
    int32_t id[ITERS * 2];               /* ids told */
    int n;                               /* answers recorded */
};

/* ---- fixture ----------------------------------------------------------- */

/* The cases run twice: stores in default mode, then durable (on SQLite two
 * group committers on one file). */
static bool g_durable;

static int setup(void **state)
{
    race_db *db = calloc(1, sizeof(*db));
    if (db == NULL ||
        tmpdb_make(db->dir, sizeof(db->dir), db->path, sizeof(db->path), "race", "crmblob.db") != 0)
        return -1;
    store_options o = {.durable = g_durable, .pool_size = NT / 2, .spool_dir = db->dir};
    for (int i = 0; i < 2; i++)
        if (store_open(db->path, &o, &db->s[i]) != STORE_OK)
            return -1;
    *state = db;
    return 0;
}

static int teardown(void **state)
{
    race_db *db = *state;
    store_close(db->s[0]);
    store_close(db->s[1]);
    tmpdb_remove(db->dir);
    free(db);
    return 0;
}

/* ---- racing ------------------------------------------------------------ */

static void *worker_main(void *p)
{
    worker *w = p;
    pthread_barrier_wait(w->start);
    w->fn(w);
    return NULL;
}

/* Runs fn on NT threads, thread i on store i % 2, all released at once;
 * w[] holds what each did. */
static void race(race_db *db, race_fn fn, void *arg, worker w[NT])
{
    pthread_barrier_t start;
    pthread_t th[NT];
    assert_int_equal(pthread_barrier_init(&start, NULL, NT), 0);
    for (int i = 0; i < NT; i++) {
        w[i] = (worker){.db = db,
                        .s = db->s[i % 2],
                        .a = arena_create(),
                        .no = i,
                        .start = &start,
                        .fn = fn,
                        .arg = arg};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        arena_destroy(w[i].a);
    }
    pthread_barrier_destroy(&start);
}

static void record(worker *w, store_err rc, int64_t v, int64_t iv, int32_t id)
{
    w->rc[w->n] = rc, w->v[w->n] = v, w->iv[w->n] = iv, w->id[w->n] = id;
    w->n++;
}

/* The size of picture number seed (a few KiB, varied). */
static size_t pic_size(int seed)
{
    return 1024 + (size_t)(seed * 37 % 4096);
}

/* Stores picture number seed as the image of (k, id) on w's store. */
static store_err put_pic(worker *w, model_kind k, int32_t id, int seed, int64_t expect,
                         model_blob *out)
{
    store_content c = tmpdb_content(w->db->dir, seed, pic_size(seed), "image/png");
    if (c.fd < 0)
        return STORE_INTERNAL;
    store_err rc = store_image_put(w->s, w->a, k, id, &c, 0, expect, out);
    close(c.fd);
    return rc;
}

/* The description written by thread no's write i. */
static const char *desc(arena_t *a, int no, int i)
{
    return arena_printf(a, "d-%d-%d", no, i);
}

static store_err put_info(worker *w, model_kind k, int32_t id, int i, int64_t expect,
                          model_blob *out)
{
    model_blob_edit e = {.description = desc(w->a, w->no, i)};
    return store_image_info_put(w->s, w->a, k, id, &e, 0, expect, out);
}

/* ---- checks -------------------------------------------------------------- */

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* v[0, n) are distinct and consecutive (every write bumped by one, none
 * lost, none told twice); returns the highest. */
static int64_t assert_consecutive(int64_t *v, size_t n)
{
    assert_true(n > 0);
    qsort(v, n, sizeof(*v), cmp_i64);
    for (size_t i = 1; i < n; i++)
        if (v[i] != v[i - 1] + 1) {
            fprintf(stderr, "versions told: %lld then %lld\n", (long long)v[i - 1],
                    (long long)v[i]);
            fail();
        }
    return v[n - 1];
}

/* ids[0, n) are distinct. */
static void assert_unique(int64_t *ids, size_t n)
{
    qsort(ids, n, sizeof(*ids), cmp_i64);
    for (size_t i = 1; i < n; i++)
        if (ids[i] == ids[i - 1]) {
            fprintf(stderr, "id %lld told twice\n", (long long)ids[i]);
            fail();
        }
}

/* How many places link record b (every entity's image, a product's
 * thumbnail), as SQL over the blob row b. */
static const char *linked_sql(arena_t *a)
{
    const char *sum = "(SELECT count(*) FROM product WHERE thumb_blob_id = b.id)";
    for (int k = 0; k < MODEL_KIND_COUNT; k++)
        sum = arena_printf(a, "%s + (SELECT count(*) FROM %s WHERE image_blob_id = b.id)", sum,
                           model_entity((model_kind)k)->table);
    return sum;
}

/* Every record is linked at most once and linked exactly when its
 * unlinked_ms is NULL, and its BlobSize is what its stored bytes are. */
static void assert_records_sound(race_db *db)
{
    arena_t *a = arena_create();
    const char *n = linked_sql(a);
    const char *bad = arena_printf(
        a, "SELECT count(*) FROM blob b WHERE (%s) > 1 OR ((b.unlinked_ms IS NULL) <> ((%s) > 0))",
        n, n);
    assert_int_equal(tmpdb_int(db->path, bad, 0), 0);
    const char *stored = tmpdb_pg()
                             ? "(SELECT sum(length(bytes)) FROM blob_piece WHERE blob_id = b.id)"
                             : "(SELECT length(content) FROM blob_data WHERE blob_id = b.id)";
    assert_int_equal(
        tmpdb_int(db->path,
                  arena_printf(a,
                               "SELECT count(*) FROM blob b WHERE b.blob_size <> coalesce(%s, 0)",
                               stored),
                  0),
        0);
    arena_destroy(a);
}

/* The picture of (k, id), read through store s, is picture number seed. */
static void assert_picture(store_t *s, model_kind k, int32_t id, int seed)
{
    arena_t *a = arena_create();
    model_blob b;
    void *bytes = NULL;
    size_t len = 0;
    assert_int_equal(store_image_get(s, a, k, id, &b, &bytes, &len), STORE_OK);
    unsigned char *want = tmpdb_payload(seed, pic_size(seed));
    assert_int_equal(len, pic_size(seed));
    assert_int_equal(b.blob_size, (int32_t)len);
    assert_memory_equal(bytes, want, len);
    free(want);
    free(bytes);
    arena_destroy(a);
}

static int32_t new_entity(store_t *s, model_kind k)
{
    int32_t id;
    assert_int_equal(tmpdb_entity(s, k, &id), STORE_OK);
    return id;
}

/* ---- PUT picture and PUT ImageInfo, unconditional ---------------------- */

/* Even threads PUT pictures, odd ones PUT ImageInfo, all on one person
 * that has no record yet: the first writes race to make it (R4). */
static void put_loop(worker *w)
{
    int32_t id = *(int32_t *)w->arg;
    for (int i = 0; i < ITERS; i++) {
        model_blob b = {0};
        store_err rc = w->no % 2 == 0 ? put_pic(w, MODEL_PERSON, id, w->no * 100 + i, STORE_ANY, &b)
                                      : put_info(w, MODEL_PERSON, id, i, STORE_ANY, &b);
        record(w, rc, b.version, b.info_version, b.blob_id);
    }
}

static void race_put_picture_and_info(void **state)
{
    race_db *db = *state;
    int32_t id = new_entity(db->s[0], MODEL_PERSON);
    worker w[NT];
    race(db, put_loop, &id, w);

    int64_t pics[NT * ITERS], infos[NT * ITERS];
    size_t np = 0, ni = 0;
    int last_pic = -1, last_info = -1;
    int64_t top_pic = -1, top_info = -1;
    for (int t = 0; t < NT; t++)
        for (int i = 0; i < w[t].n; i++) {
            assert_int_equal(w[t].rc[i], STORE_OK);
            assert_int_equal(w[t].id[i], w[0].id[0]); /* one record, made once */
            infos[ni++] = w[t].iv[i];
            if (t % 2 == 0) {
                pics[np++] = w[t].v[i];
                if (w[t].v[i] > top_pic)
                    top_pic = w[t].v[i], last_pic = t * 100 + i;
            } else if (w[t].iv[i] > top_info) {
                top_info = w[t].iv[i], last_info = t * 100 + i;
            }
        }
    int64_t v = assert_consecutive(pics, np), iv = assert_consecutive(infos, ni);
    assert_int_equal(tmpdb_count(db->path, "blob"), 1);

    arena_t *a = arena_create();
    model_blob b;
    assert_int_equal(store_image_info(db->s[1], a, MODEL_PERSON, id, &b), STORE_OK);
    assert_int_equal(b.version, v);
    assert_int_equal(b.info_version, iv);
    assert_string_equal(b.description, desc(a, last_info / 100, last_info % 100));
    arena_destroy(a);
    assert_picture(db->s[0], MODEL_PERSON, id, last_pic);
    assert_records_sound(db);
}

/* ---- conditional writes: exactly one winner ------------------------------ */

#define ROUNDS 9

typedef struct {
    int32_t id;
    int round;
    int64_t v, iv, ev; /* the versions every thread expects */
} cond_round;

/* Round r % 3: 0 PUT picture If-Match the picture's version, 1 PUT
 * ImageInfo on the record's info_version, 2 PUT of the entity. */
static void cond_write(worker *w)
{
    cond_round *r = w->arg;
    model_blob b = {0};
    int seed = r->round * 100 + w->no;
    store_err rc;
    if (r->round % 3 == 0) {
        rc = put_pic(w, MODEL_PERSON, r->id, seed, r->v, &b);
    } else if (r->round % 3 == 1) {
        rc = put_info(w, MODEL_PERSON, r->id, r->round, r->iv, &b);
    } else {
        model_entity_t e = {.kind = MODEL_PERSON, .id = r->id};
        e.v[0].s = desc(w->a, w->no, r->round), e.v[1].s = "x";
        rc = store_entity_update(w->s, &e, r->ev);
        b.version = e.version;
    }
    record(w, rc, b.version, b.info_version, 0);
}

static void race_conditional_writes(void **state)
{
    race_db *db = *state;
    arena_t *a = arena_create();
    cond_round r = {.id = new_entity(db->s[0], MODEL_PERSON)};
    worker probe = {.db = db, .s = db->s[0], .a = a};
    model_blob b;
    assert_int_equal(put_pic(&probe, MODEL_PERSON, r.id, 1, STORE_ANY, &b), STORE_OK);
    for (r.round = 0; r.round < ROUNDS; r.round++) {
        model_entity_t e;
        assert_int_equal(store_image_info(db->s[1], a, MODEL_PERSON, r.id, &b), STORE_OK);
        assert_int_equal(store_entity_get(db->s[1], a, MODEL_PERSON, r.id, &e), STORE_OK);
        r.v = b.version, r.iv = b.info_version, r.ev = e.version;
        worker w[NT];
        race(db, cond_write, &r, w);
        int winner = -1;
        for (int t = 0; t < NT; t++) {
            if (w[t].rc[0] == STORE_OK) {
                assert_int_equal(winner, -1); /* exactly one winner */
                winner = t;
            } else {
                assert_int_equal(w[t].rc[0], STORE_PRECONDITION);
            }
        }
        assert_true(winner >= 0);
        if (r.round % 3 == 0) {
            assert_int_equal(w[winner].v[0], r.v + 1);
            assert_picture(db->s[1], MODEL_PERSON, r.id, r.round * 100 + winner);
        } else if (r.round % 3 == 1) {
            assert_int_equal(store_image_info(db->s[0], a, MODEL_PERSON, r.id, &b), STORE_OK);
            assert_int_equal(b.info_version, r.iv + 1);
            assert_string_equal(b.description, desc(a, winner, r.round));
        } else {
            assert_int_equal(store_entity_get(db->s[0], a, MODEL_PERSON, r.id, &e), STORE_OK);
            assert_int_equal(e.version, r.ev + 1);
            assert_string_equal(e.v[0].s, desc(a, winner, r.round));
        }
    }
    arena_destroy(a);
    assert_records_sound(db);
}

/* ---- creation: unique ids ---------------------------------------------- */

#define CREATES 10

/* Each thread makes CREATES persons (automatic ids, R1) and as many
 * unlinked records. */
static void create_loop(worker *w)
{
    for (int i = 0; i < CREATES; i++) {
        int32_t id = 0;
        store_err rc = tmpdb_entity(w->s, MODEL_PERSON, &id);
        record(w, rc, 0, 0, id);
        store_content c = tmpdb_content(w->db->dir, i, 100, "image/png");
        model_blob b = {0};
        rc = c.fd < 0 ? STORE_INTERNAL : store_blob_create(w->s, w->a, NULL, &c, 0, &b);
        close(c.fd);
        record(w, rc, 0, 0, b.blob_id);
    }
}

static void race_create_ids(void **state)
{
    race_db *db = *state;
    worker w[NT];
    race(db, create_loop, NULL, w);
    int64_t people[NT * CREATES], blobs[NT * CREATES];
    size_t n = 0;
    for (int t = 0; t < NT; t++)
        for (int i = 0; i < w[t].n; i += 2, n++) {
            assert_int_equal(w[t].rc[i], STORE_OK); /* an automatic id is never taken */
            assert_int_equal(w[t].rc[i + 1], STORE_OK);
            people[n] = w[t].id[i], blobs[n] = w[t].id[i + 1];
        }
    assert_unique(people, n);
    assert_unique(blobs, n);
    assert_int_equal(tmpdb_count(db->path, "person"), NT * CREATES);
    assert_int_equal(tmpdb_count(db->path, "blob"), NT * CREATES);
    assert_records_sound(db);
}

/* ---- delete against the writes of the entity's picture ------------------ */

typedef struct {
    int32_t id, spare[2]; /* the entity; unlinked records to link to it */
} del_round;

/* Thread 0 deletes the entity, 1 deletes its image, 2-3 link a spare
 * record, 4-5 PUT pictures, 6-7 PUT ImageInfo. */
static void delete_mix(worker *w)
{
    del_round *r = w->arg;
    model_blob b = {0};
    store_err rc;
    switch (w->no) {
    case 0:
        rc = store_entity_delete(w->s, MODEL_PERSON, r->id, STORE_ANY);
        break;
    case 1:
        rc = store_image_delete(w->s, MODEL_PERSON, r->id, STORE_ANY);
        break;
    case 2:
    case 3:
        rc = store_image_link(w->s, MODEL_PERSON, r->id, r->spare[w->no - 2], 0);
        break;
    case 4:
    case 5:
        rc = put_pic(w, MODEL_PERSON, r->id, w->no, STORE_ANY, &b);
        break;
    default:
        rc = put_info(w, MODEL_PERSON, r->id, 0, STORE_ANY, &b);
        break;
    }
    record(w, rc, b.version, b.info_version, b.blob_id);
}

static void race_delete(void **state)
{
    race_db *db = *state;
    arena_t *a = arena_create();
    worker probe = {.db = db, .s = db->s[0], .a = a};
    for (int round = 0; round < ROUNDS; round++) {
        del_round r = {.id = new_entity(db->s[0], MODEL_PERSON)};
        model_blob b;
        assert_int_equal(put_pic(&probe, MODEL_PERSON, r.id, 1, STORE_ANY, &b), STORE_OK);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(store_blob_create(db->s[1], a, NULL, NULL, 0, &b), STORE_OK);
            r.spare[i] = b.blob_id;
        }
        worker w[NT];
        race(db, delete_mix, &r, w);
        assert_int_equal(w[0].rc[0], STORE_OK);
        assert_true(w[1].rc[0] == STORE_OK || w[1].rc[0] == STORE_ABSENT);
        for (int t = 2; t < NT; t++) /* before the delete, or after it */
            assert_true(w[t].rc[0] == STORE_OK || w[t].rc[0] == STORE_ABSENT);
        assert_int_equal(store_entity_exists(db->s[1], MODEL_PERSON, r.id), STORE_ABSENT);
        assert_records_sound(db);
    }
    /* Every entity is gone: what is left is unlinked, and the sweep takes it all. */
    int64_t swept = 0;
    assert_int_equal(store_blob_sweep(db->s[1], text_now_ms() + 3600000, &swept), STORE_OK);
    assert_int_equal(tmpdb_count(db->path, "blob"), 0);
    arena_destroy(a);
}

/* ---- claims: one record, linked by many, swept by one ------------------- */

typedef struct {
    int32_t blob, ent[NT];
    int64_t swept;
} claim_round;

/* Threads 0-6 link the record to an entity of their own (of every kind);
 * thread 7 sweeps every unlinked record. */
static void claim(worker *w)
{
    claim_round *r = w->arg;
    if (w->no == NT - 1) {
        record(w, store_blob_sweep(w->s, text_now_ms() + 3600000, &r->swept), 0, 0, 0);
        return;
    }
    record(
        w,
        store_image_link(w->s, (model_kind)(w->no % MODEL_KIND_COUNT), r->ent[w->no], r->blob, 0),
        0, 0, 0);
}

static void race_link_claims(void **state)
{
    race_db *db = *state;
    arena_t *a = arena_create();
    for (int round = 0; round < ROUNDS * 2; round++) {
        claim_round r = {0};
        model_blob b;
        assert_int_equal(store_blob_create(db->s[round % 2], a, NULL, NULL, 0, &b), STORE_OK);
        r.blob = b.blob_id;
        for (int t = 0; t < NT - 1; t++)
            r.ent[t] = new_entity(db->s[t % 2], (model_kind)(t % MODEL_KIND_COUNT));
        worker w[NT];
        race(db, claim, &r, w);
        assert_int_equal(w[NT - 1].rc[0], STORE_OK);
        int ok = 0, conflict = 0, invalid = 0;
        for (int t = 0; t < NT - 1; t++) {
            ok += w[t].rc[0] == STORE_OK;
            conflict += w[t].rc[0] == STORE_CONFLICT;
            invalid += w[t].rc[0] == STORE_INVALID;
        }
        /* Either one linker claimed it (the others are told it is linked,
         * the sweep passed it by), or the sweep took it first. */
        if (r.swept == 0) {
            assert_int_equal(ok, 1);
            assert_int_equal(conflict, NT - 2);
        } else {
            assert_int_equal(r.swept, 1);
            assert_int_equal(invalid, NT - 1);
        }
        assert_int_equal(store_blob_get(db->s[round % 2], a, r.blob, &b),
                         ok == 1 ? STORE_OK : STORE_ABSENT);
        assert_records_sound(db);
    }
    arena_destroy(a);
}

/* ---- variants against the bytes they were made from -------------------- */

#define VARIANT_BYTES 300
#define CACHE_MAX (24 * VARIANT_BYTES)

/* Threads 0-1 PUT new pictures; 2-7 put variants of the version they just
 * read, each under a key of its own (threads 2-3 pinned ones, which are
 * never evicted), in a cache of 24 unpinned variants. */
static void variant_loop(worker *w)
{
    int32_t id = *(int32_t *)w->arg;
    unsigned char bytes[VARIANT_BYTES];
    memset(bytes, w->no, sizeof(bytes));
    store_variant_meta m = {.mime = "image/png", .original_size = VARIANT_BYTES};
    for (int i = 0; i < ITERS; i++) {
        model_blob b = {0};
        store_err rc = w->no < 2 ? put_pic(w, MODEL_PERSON, id, w->no * 100 + i, STORE_ANY, &b)
                                 : store_image_info(w->s, w->a, MODEL_PERSON, id, &b);
        if (rc == STORE_OK && w->no >= 2)
            rc = store_variant_put(w->s, b.blob_id, b.version, desc(w->a, w->no, i), &m, bytes,
                                   sizeof(bytes), w->no < 4, CACHE_MAX);
        record(w, rc, b.version, 0, b.blob_id);
        arena_reset(w->a);
    }
}

static void race_variants(void **state)
{
    race_db *db = *state;
    int32_t id = new_entity(db->s[0], MODEL_PERSON);
    worker w[NT], probe = {.db = db, .s = db->s[1], .a = arena_create()};
    model_blob b;
    assert_int_equal(put_pic(&probe, MODEL_PERSON, id, 1, STORE_ANY, &b), STORE_OK);
    arena_destroy(probe.a);
    race(db, variant_loop, &id, w);
    int kept = 0;
    for (int t = 0; t < NT; t++)
        for (int i = 0; i < w[t].n; i++) {
            /* ABSENT: the picture moved on between the read and the put */
            assert_true(w[t].rc[i] == STORE_OK || (t >= 2 && w[t].rc[i] == STORE_ABSENT));
            kept += t >= 2 && w[t].rc[i] == STORE_OK;
        }
    /* Durable: a read sees what is committed, a put's check also what the
     * open group holds, where the next picture often is already (ABSENT). */
    assert_true(kept > 0 || g_durable);
    /* Variants only of the current version, the running totals true, the
     * cache within its bound. */
    assert_int_equal(tmpdb_int(db->path,
                               "SELECT count(*) FROM variant v JOIN blob b ON b.id = v.blob_id "
                               "WHERE v.version <> b.version",
                               0),
                     0);
    assert_int_equal(
        tmpdb_int(
            db->path,
            "SELECT count(*) FROM variant_total t WHERE t.bytes <> (SELECT coalesce(sum(size), "
            "0) FROM variant WHERE pinned = 0) OR t.count <> (SELECT count(*) FROM variant "
            "WHERE pinned = 0)",
            0),
        0);
    int64_t bytes = 0, count = 0;
    assert_int_equal(store_variant_total(db->s[0], &bytes, &count), STORE_OK);
    assert_true(bytes <= CACHE_MAX);
    assert_records_sound(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(race_put_picture_and_info, setup, teardown),
        cmocka_unit_test_setup_teardown(race_conditional_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(race_create_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(race_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(race_link_claims, setup, teardown),
        cmocka_unit_test_setup_teardown(race_variants, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name("default mode", tests, NULL, NULL);
    g_durable = true;
    return failed + cmocka_run_group_tests_name("durable mode", tests, NULL, NULL);
}
