/*
 * test_jobs.c — the batch jobs of src/jobs run on a real store (SQLite, or
 * PostgreSQL with CRMBLOB_TEST_DB=pg) with a job_ctx filled as the runner
 * fills it: the export's tar archive (members, bytes, manifest last), one
 * entity kind only, a bad parameter, and a stop that leaves no output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bulk/bulk.h"
#include "img/img.h"
#include "jobs/jobs_int.h"
#include "tmpdb.h"

#define PIC_N 3000 /* bytes of each test picture */

extern const job_def job_export;
extern const job_def job_check;
extern const job_def job_rekey;

typedef struct {
    tmpdb_store db;
    int32_t uid, person[2], product;
    job_ctx ctx;
    codec_t *codec; /* the server's (rekey fixture); NULL: none */
    char key_a[300], key_b[300];
} fixture;

static void image_put(fixture *f, model_kind k, int32_t id, int seed)
{
    model_blob b;
    store_content c = tmpdb_content(f->db.dir, seed, PIC_N, "image/jpeg");
    assert_true(c.fd >= 0);
    assert_int_equal(store_image_put(f->db.s, f->db.a, k, id, &c, f->uid, STORE_ANY, &b), STORE_OK);
    close(c.fd);
}

#define JPEG "tests/data/images/exif_1.jpg" /* a whole picture (1100 bytes) */

/* JPEG as the picture of (k, id): its BlobId. */
static int32_t jpeg_put(fixture *f, model_kind k, int32_t id)
{
    unsigned char p[4096];
    FILE *in = fopen(JPEG, "rb");
    assert_non_null(in);
    size_t n = fread(p, 1, sizeof(p), in);
    fclose(in);
    model_blob b;
    store_content c = {.fd = tmpdb_content_fd(f->db.dir, p, n),
                       .size = (int64_t)n,
                       .original_size = (int64_t)n,
                       .mime_type = "image/jpeg"};
    assert_true(c.fd >= 0);
    assert_int_equal(store_image_put(f->db.s, f->db.a, k, id, &c, f->uid, STORE_ANY, &b), STORE_OK);
    close(c.fd);
    return b.blob_id;
}

static int setup_with(void **state, fixture *f, const store_options *o)
{
    if (f == NULL || tmpdb_store_open(&f->db, "jobs", o) != 0)
        return -1;
    model_user u = {
        .name = "admin", .full_name = "Admin", .role = MODEL_ROLE_ADMIN, .pw_hash = "$argon2id$x"};
    if (store_user_add(f->db.s, &u) != STORE_OK)
        return -1;
    f->uid = u.id;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(tmpdb_entity(f->db.s, MODEL_PERSON, &f->person[i]), STORE_OK);
        image_put(f, MODEL_PERSON, f->person[i], 10 + i);
    }
    assert_int_equal(tmpdb_entity(f->db.s, MODEL_PRODUCT, &f->product), STORE_OK);
    image_put(f, MODEL_PRODUCT, f->product, 20);
    f->ctx.store = f->db.s;
    f->ctx.out = tmpfile();
    pthread_mutex_init(&f->ctx.mu, NULL);
    *state = f;
    return f->ctx.out != NULL ? 0 : -1;
}

static int setup(void **state)
{
    return setup_with(state, calloc(1, sizeof(fixture)), NULL);
}

/* A server's store encrypting with key A (a file beside the database);
 * key B made for the rekey. */
static int setup_keyed(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    char dir[] = "/tmp/crmblob-jobkeys-XXXXXX";
    if (f == NULL || mkdtemp(dir) == NULL)
        return -1;
    snprintf(f->key_a, sizeof(f->key_a), "%s/a.key", dir);
    snprintf(f->key_b, sizeof(f->key_b), "%s/b.key", dir);
    if (codec_keygen(f->key_a) != CB_EOK || codec_keygen(f->key_b) != CB_EOK ||
        codec_create(&(codec_config){.key_file = f->key_a}, &f->codec) != CB_EOK)
        return -1;
    return setup_with(state, f, &(store_options){.codec = f->codec});
}

static int teardown(void **state)
{
    fixture *f = *state;
    fclose(f->ctx.out);
    free(f->ctx.response);
    pthread_mutex_destroy(&f->ctx.mu);
    tmpdb_store_close(&f->db); /* before the codec it borrows */
    codec_destroy(f->codec);
    if (f->key_a[0] != '\0') {
        unlink(f->key_a);
        unlink(f->key_b);
        *strrchr(f->key_a, '/') = '\0';
        rmdir(f->key_a);
    }
    free(f);
    return 0;
}

/* The output file whole (*n bytes). */
static unsigned char *output(fixture *f, size_t *n)
{
    long end;
    assert_int_equal(fflush(f->ctx.out), 0);
    assert_true((end = lseek(fileno(f->ctx.out), 0, SEEK_END)) >= 0);
    unsigned char *p = malloc((size_t)end + 1);
    assert_int_equal(pread(fileno(f->ctx.out), p, (size_t)end, 0), end);
    *n = (size_t)end;
    return p;
}

typedef struct {
    char name[100];
    const unsigned char *bytes;
    size_t len;
} member;

/* The members of a ustar archive (at most cap), checked: header sums,
 * sizes inside it, two zero blocks at the end. */
static size_t members(const unsigned char *p, size_t n, member *m, size_t cap)
{
    size_t off = 0, k = 0;
    static const unsigned char zero[512];
    while (off + 512 <= n && memcmp(p + off, zero, 512) != 0) {
        unsigned sum = 0;
        for (int i = 0; i < 512; i++)
            sum += (i >= 148 && i < 156) ? ' ' : p[off + i];
        assert_int_equal(strtoul((const char *)p + off + 148, NULL, 8), sum);
        assert_memory_equal(p + off + 257, "ustar", 6);
        assert_true(k < cap);
        snprintf(m[k].name, sizeof(m[k].name), "%s", (const char *)p + off);
        m[k].len = strtoull((const char *)p + off + 124, NULL, 8);
        m[k].bytes = p + off + 512;
        off += 512 + (m[k].len + 511) / 512 * 512;
        assert_true(off <= n);
        k++;
    }
    assert_int_equal(n, off + 1024); /* the end of the archive */
    return k;
}

static size_t lines(const member *m)
{
    size_t k = 0;
    for (size_t i = 0; i < m->len; i++)
        k += m->bytes[i] == '\n';
    return k;
}

static void test_export_all(void **state)
{
    fixture *f = *state;
    json_t *params = json_object();
    assert_int_equal(job_export.run(&f->ctx, params), JOB_OK);
    json_decref(params);
    size_t n;
    unsigned char *p = output(f, &n);
    member m[8];
    assert_int_equal(members(p, n, m, 8), 4);
    char want[64];
    snprintf(want, sizeof(want), "person/%d.jpg", f->person[1]);
    assert_string_equal(m[1].name, want);
    unsigned char *pic = tmpdb_payload(11, PIC_N);
    assert_int_equal(m[1].len, PIC_N);
    assert_memory_equal(m[1].bytes, pic, PIC_N);
    free(pic);
    assert_string_equal(m[3].name, "manifest.jsonl");
    assert_int_equal(lines(&m[3]), 3);
    assert_string_equal(f->ctx.file_name, "export.tar");
    assert_int_equal(f->ctx.percent, 100);
    assert_non_null(strstr(f->ctx.result, "3 pictures"));
    free(p);
}

static void test_export_one_kind(void **state)
{
    fixture *f = *state;
    json_t *params = json_pack("{ss}", "Entity", "product");
    assert_int_equal(job_export.run(&f->ctx, params), JOB_OK);
    json_decref(params);
    size_t n;
    unsigned char *p = output(f, &n);
    member m[8];
    assert_int_equal(members(p, n, m, 8), 2);
    char want[64];
    snprintf(want, sizeof(want), "product/%d.jpg", f->product);
    assert_string_equal(m[0].name, want);
    assert_int_equal(lines(&m[1]), 1);
    free(p);
}

static void test_export_bad_entity(void **state)
{
    fixture *f = *state;
    json_t *params = json_pack("{ss}", "Entity", "ship");
    assert_int_equal(job_export.run(&f->ctx, params), JOB_FAILED);
    json_decref(params);
    assert_non_null(strstr(f->ctx.result, "Entity"));
}

static void test_export_stopped_leaves_nothing(void **state)
{
    fixture *f = *state;
    json_t *params = json_object();
    atomic_store(&f->ctx.cancel, true);
    assert_int_equal(job_export.run(&f->ctx, params), JOB_CANCELLED);
    json_decref(params);
    size_t n;
    free(output(f, &n));
    assert_int_equal(n, 0);
    assert_non_null(strstr(f->ctx.result, "Stopped"));
    assert_string_equal(f->ctx.file_name, "");
}

/* The report: a line per damaged picture (the test payloads are no
 * pictures), none for the one whose bytes are a JPEG. */
static void test_check_reports_damaged(void **state)
{
    fixture *f = *state;
    int32_t good = jpeg_put(f, MODEL_PERSON, f->person[0]);
    json_t *params = json_object();
    assert_int_equal(job_check.run(&f->ctx, params), JOB_OK);
    json_decref(params);
    size_t n;
    unsigned char *p = output(f, &n);
    member report = {.bytes = p, .len = n};
    assert_int_equal(lines(&report), 2);
    char *text = strndup((const char *)p, n), not_good[32];
    assert_non_null(strstr(text, "do not decode to a picture"));
    assert_true(strncmp(text, "BLOB ", 5) == 0);
    snprintf(not_good, sizeof(not_good), "BLOB %d:", good);
    assert_null(strstr(text, not_good));
    assert_string_equal(f->ctx.result, "2 problem(s) found");
    assert_string_equal(f->ctx.file_name, "check.txt");
    free(text);
    free(p);
}

static void test_check_stopped(void **state)
{
    fixture *f = *state;
    json_t *params = json_object();
    atomic_store(&f->ctx.cancel, true);
    assert_int_equal(job_check.run(&f->ctx, params), JOB_CANCELLED);
    json_decref(params);
    assert_string_equal(f->ctx.file_name, "");
}

/* Every picture as the store serves it (GET Image's read): the payloads
 * put in setup. */
static void assert_served(fixture *f)
{
    int32_t ids[3] = {f->person[0], f->person[1], f->product};
    model_kind kinds[3] = {MODEL_PERSON, MODEL_PERSON, MODEL_PRODUCT};
    int seeds[3] = {10, 11, 20};
    for (int i = 0; i < 3; i++) {
        model_blob b;
        void *bytes = NULL;
        size_t len = 0;
        assert_int_equal(store_image_get(f->db.s, f->db.a, kinds[i], ids[i], &b, &bytes, &len),
                         STORE_OK);
        unsigned char *want = tmpdb_payload(seeds[i], PIC_N);
        assert_int_equal(len, PIC_N);
        assert_memory_equal(bytes, want, PIC_N);
        free(want);
        free(bytes);
    }
}

/* The fingerprint recorded is key's. */
static void assert_recorded(fixture *f, const char *key)
{
    codec_t *c = NULL;
    unsigned char want[CODEC_FINGERPRINT_BYTES], have[CODEC_FINGERPRINT_BYTES];
    assert_int_equal(codec_create(&(codec_config){.key_file = key}, &c), CB_EOK);
    codec_fingerprint(c, want);
    codec_destroy(c);
    assert_int_equal(bulk_key_recorded(f->db.s, have), 1);
    assert_memory_equal(have, want, sizeof(want));
}

static void test_rekey_serves_every_picture(void **state)
{
    fixture *f = *state;
    assert_int_equal(bulk_key_record(f->db.s, f->codec), STORE_OK); /* as serve does */
    json_t *params = json_pack("{ss}", "NewKeyFile", f->key_b);
    assert_int_equal(job_rekey.run(&f->ctx, params), JOB_OK);
    json_decref(params);
    assert_non_null(strstr(f->ctx.result, "3 pictures rewritten"));
    assert_served(f); /* the running server, its codec changed */
    assert_recorded(f, f->key_b);
    /* a server started with key B alone reads every picture */
    store_t *s2 = NULL;
    codec_t *b = NULL;
    assert_int_equal(codec_create(&(codec_config){.key_file = f->key_b}, &b), CB_EOK);
    assert_int_equal(store_open(f->db.path, &(store_options){.codec = b}, &s2), STORE_OK);
    store_t *mine = f->db.s;
    f->db.s = s2;
    assert_served(f);
    f->db.s = mine;
    store_close(s2);
    codec_destroy(b);
}

static void test_rekey_stopped_still_serves(void **state)
{
    fixture *f = *state;
    assert_int_equal(bulk_key_record(f->db.s, f->codec), STORE_OK);
    json_t *params = json_pack("{ss}", "NewKeyFile", f->key_b);
    atomic_store(&f->ctx.cancel, true);
    assert_int_equal(job_rekey.run(&f->ctx, params), JOB_CANCELLED);
    json_decref(params);
    assert_served(f);
    assert_recorded(f, f->key_a); /* not done: the old key's still */
}

static void test_rekey_needs_a_key_file(void **state)
{
    fixture *f = *state;
    json_t *params = json_pack("{ss}", "NewKeyFile", "/nonexistent/new.key");
    assert_int_equal(job_rekey.run(&f->ctx, params), JOB_FAILED);
    json_decref(params);
    assert_non_null(strstr(f->ctx.result, "NewKeyFile"));
    assert_served(f);
}

/* Nothing rewritten: no fingerprint yet, or key A's. */
static void assert_recorded_none_or_a(fixture *f)
{
    unsigned char fp[CODEC_FINGERPRINT_BYTES];
    if (bulk_key_recorded(f->db.s, fp) == 1)
        assert_recorded(f, f->key_a);
}

/* The rekey job's serving codec: the new key's, decrypting what the
 * previous key encrypted too (the pictures not rewritten yet), while the
 * new key alone does not. */
static void test_codec_after_reads_both(void **state)
{
    fixture *f = *state;
    codec_t *b = NULL, *after = NULL;
    codec_config cb = {.key_file = f->key_b};
    assert_int_equal(codec_create(&cb, &b), CB_EOK);
    assert_int_equal(codec_create_after(&cb, f->codec, &after), CB_EOK);
    unsigned char *pic = tmpdb_payload(40, 200000); /* several chunks */
    void *under_a = NULL, *under_after = NULL, *plain = NULL;
    size_t na, nb, np;
    bool z, e;
    assert_int_equal(codec_encode(f->codec, pic, 200000, &under_a, &na, &z, &e), CB_EOK);
    assert_true(e);
    assert_int_equal(codec_encode(after, pic, 200000, &under_after, &nb, &z, &e), CB_EOK);
    assert_int_equal(codec_decode(after, under_a, na, false, true, &plain, &np), CB_EOK);
    assert_int_equal(np, 200000);
    assert_memory_equal(plain, pic, np);
    free(plain);
    assert_int_equal(codec_decode(b, under_after, nb, false, true, &plain, &np), CB_EOK);
    free(plain);
    assert_int_not_equal(codec_decode(b, under_a, na, false, true, &plain, &np), CB_EOK);
    free(under_a);
    free(under_after);
    free(pic);
    codec_destroy(after);
    codec_destroy(b);
}

/* A rekey Started elsewhere (another server's task): this one refuses. */
static void test_rekey_one_at_a_time(void **state)
{
    fixture *f = *state;
    store_task t = {.name = "crmblob.rekey", .description = "", .params = "{}"};
    store_task claimed;
    assert_int_equal(store_task_add(f->db.s, &t), STORE_OK);
    assert_int_equal(store_task_claim(f->db.s, f->db.a, "other-server", 1, INT64_MAX / 2, &claimed),
                     STORE_OK);
    f->ctx.task_id = t.id + 1; /* not that task */
    json_t *params = json_pack("{ss}", "NewKeyFile", f->key_b);
    assert_int_equal(job_rekey.run(&f->ctx, params), JOB_FAILED);
    json_decref(params);
    assert_non_null(strstr(f->ctx.result, "another rekey runs"));
    assert_recorded_none_or_a(f);
    assert_served(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_export_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_one_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_bad_entity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_stopped_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_reports_damaged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_stopped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rekey_serves_every_picture, setup_keyed, teardown),
        cmocka_unit_test_setup_teardown(test_rekey_stopped_still_serves, setup_keyed, teardown),
        cmocka_unit_test_setup_teardown(test_rekey_needs_a_key_file, setup_keyed, teardown),
        cmocka_unit_test_setup_teardown(test_codec_after_reads_both, setup_keyed, teardown),
        cmocka_unit_test_setup_teardown(test_rekey_one_at_a_time, setup_keyed, teardown),
    };
    /* the check validates pictures with the image module, as the server
     * has it running (in process here, as test_img runs it) */
    if (img_init(&(img_config){0}) != CB_EOK)
        return 1;
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    img_shutdown();
    return rc;
}
