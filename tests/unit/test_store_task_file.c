/*
 * test_store_task_file.c — the files of batch tasks (store_file.c) on the
 * backend under test (SQLite, or PostgreSQL with CRMBLOB_TEST_DB=pg): an
 * output stored in parts reads back as one stream, plain and through the
 * codec (compressed and encrypted); a reader of a record deleted meanwhile
 * answers STORE_ABSENT; an input is bound to one task only, deleted with
 * it, and swept when no task takes it; a picture record reads back too.
 */
#include "tmpdb.h"

#include <fcntl.h>
#include <unistd.h>

#include "store/codec.h"
#include "store/store_int.h"

/* A fixture with a store that encodes (zstd + a key) when `coded`. */
typedef struct {
    tmpdb_store db;
    codec_t *codec;
    char key[600];
} fx;

static int setup_with(void **state, bool coded)
{
    fx *f = calloc(1, sizeof(*f));
    store_options o = {.pool_size = 4};
    if (f == NULL)
        return -1;
    if (coded) {
        snprintf(f->key, sizeof(f->key), "/tmp/crmblob-filekey-%d", (int)getpid());
        codec_config cfg = {.compress = true, .key_file = f->key};
        if (codec_keygen(f->key) != CB_EOK || codec_create(&cfg, &f->codec) != CB_EOK)
            return -1;
        o.codec = f->codec;
    }
    if (tmpdb_store_open(&f->db, "file", &o) != 0)
        return -1;
    *state = f;
    return 0;
}

static int setup_plain(void **state)
{
    return setup_with(state, false);
}

static int setup_coded(void **state)
{
    return setup_with(state, true);
}

static int teardown(void **state)
{
    fx *f = *state;
    tmpdb_store_close(&f->db);
    codec_destroy(f->codec);
    if (f->key[0] != '\0')
        unlink(f->key);
    free(f);
    return 0;
}

/* n bytes that do not repeat (and half of them compress). */
static unsigned char *make_bytes(size_t n)
{
    unsigned char *p = malloc(n);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        p[i] = i % 2 ? (unsigned char)x : (unsigned char)(i / 1000);
    }
    return p;
}

static int spool(const unsigned char *p, size_t n)
{
    FILE *t = tmpfile();
    assert_non_null(t);
    int fd = dup(fileno(t));
    fclose(t);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    return fd;
}

/* Everything r reads, in reads of `step` bytes, compared with want. */
static void read_all(store_reader *r, const unsigned char *want, size_t n, size_t step)
{
    unsigned char *got = malloc(n + step);
    size_t total = 0, k = 0;
    do {
        assert_int_equal(store_reader_read(r, got + total, step, &k), STORE_OK);
        total += k;
        assert_true(total <= n);
    } while (k > 0);
    assert_int_equal(total, n);
    assert_memory_equal(got, want, n);
    free(got);
}

/* A Started task of server "a". */
static store_task started(tmpdb_store *d)
{
    store_task t = {.name = "j", .params = "{}", .associate_id = 7};
    assert_int_equal(store_task_add(d->s, &t), STORE_OK);
    assert_int_equal(store_task_claim(d->s, d->a, "a", 1000, 6000, &t), STORE_OK);
    return t;
}

static void finish(tmpdb_store *d, store_task *t, int32_t first)
{
    t->state = STORE_TASK_SUCCEEDED;
    t->output_blob = first;
    t->file_name = "out.bin";
    assert_int_equal(store_task_finish(d->s, t, "a", 2000), STORE_OK);
}

/* 1.3 MiB in parts of 512 KiB + 3: three parts, read as one stream. */
static void test_output_parts(void **state)
{
    fx *f = *state;
    tmpdb_store *d = &f->db;
    size_t n = 1300 * 1024;
    unsigned char *bytes = make_bytes(n);
    int fd = spool(bytes, n);
    store_task t = started(d);
    store_content c = {.fd = fd, .size = (int64_t)n, .mime_type = "application/x-tar"};
    int32_t first = 0;
    int64_t size = 0;
    store_reader *r = NULL;
    assert_int_equal(store_task_output_put(d->s, t.id, &c, 512 * 1024 + 3, &first), STORE_OK);
    assert_true(first > 0);
    /* not the task's output before it ends */
    assert_int_equal(store_task_output_open(d->s, t.id, &size, &r), STORE_ABSENT);
    finish(d, &t, first);
    assert_int_equal(store_task_output_open(d->s, t.id, &size, &r), STORE_OK);
    assert_int_equal(size, (int64_t)n);
    read_all(r, bytes, n, 100003);
    store_reader_close(r);
    /* the sweep of unlinked records leaves a task's parts alone */
    int64_t swept = -1;
    assert_int_equal(store_blob_sweep(d->s, INT64_MAX, &swept), STORE_OK);
    assert_int_equal(swept, 0);
    assert_int_equal(store_task_output_open(d->s, t.id, &size, &r), STORE_OK);
    read_all(r, bytes, n, 1 << 20);
    store_reader_close(r);
    model_blob b;
    assert_int_equal(store_task_delete(d->s, t.id), STORE_OK);
    assert_int_equal(store_blob_get(d->s, d->a, first, &b), STORE_ABSENT);
    assert_int_equal(store_task_output_open(d->s, t.id, &size, &r), STORE_ABSENT);
    close(fd);
    free(bytes);
}

/* An empty output is one part of 0 bytes. */
static void test_output_empty(void **state)
{
    fx *f = *state;
    tmpdb_store *d = &f->db;
    int fd = spool((const unsigned char *)"", 0);
    store_task t = started(d);
    store_content c = {.fd = fd, .size = 0, .mime_type = "text/plain"};
    int32_t first = 0;
    int64_t size = -1;
    store_reader *r = NULL;
    unsigned char buf[16];
    size_t got = 1;
    assert_int_equal(store_task_output_put(d->s, t.id, &c, 0, &first), STORE_OK);
    finish(d, &t, first);
    assert_int_equal(store_task_output_open(d->s, t.id, &size, &r), STORE_OK);
    assert_int_equal(size, 0);
    assert_int_equal(store_reader_read(r, buf, sizeof(buf), &got), STORE_OK);
    assert_int_equal(got, 0);
    store_reader_close(r);
    close(fd);
}

/* A reader whose record goes meanwhile answers ABSENT, not bytes. */
static void test_deleted_meanwhile(void **state)
{
    fx *f = *state;
    tmpdb_store *d = &f->db;
    size_t n = 3 * (256 * 1024);
    unsigned char *bytes = make_bytes(n), buf[1000];
    int fd = spool(bytes, n);
    store_task t = started(d);
    store_content c = {.fd = fd, .size = (int64_t)n, .mime_type = "application/x-tar"};
    int32_t first = 0;
    int64_t size = 0;
    size_t got = 0;
    store_reader *r = NULL;
    assert_int_equal(store_task_output_put(d->s, t.id, &c, 0, &first), STORE_OK);
    finish(d, &t, first);
    assert_int_equal(store_task_output_open(d->s, t.id, &size, &r), STORE_OK);
    assert_int_equal(store_reader_read(r, buf, sizeof(buf), &got), STORE_OK);
    assert_int_equal(got, sizeof(buf));
    assert_memory_equal(buf, bytes, sizeof(buf));
    assert_int_equal(store_task_delete(d->s, t.id), STORE_OK);
    store_err rc = STORE_OK;
    for (int i = 0; i < 2000 && rc == STORE_OK && got > 0; i++)
        rc = store_reader_read(r, buf, sizeof(buf), &got);
    assert_int_equal(rc, STORE_ABSENT);
    store_reader_close(r);
    close(fd);
    free(bytes);
}

/* An input: readable by BlobId through a reader, bound to one task,
 * deleted with it; an unbound one is swept. */
static void test_input(void **state)
{
    fx *f = *state;
    tmpdb_store *d = &f->db;
    size_t n = 700 * 1024;
    unsigned char *bytes = make_bytes(n);
    int fd = spool(bytes, n);
    store_content c = {.fd = fd, .size = (int64_t)n, .mime_type = "application/x-tar"};
    model_blob in, other, rec;
    store_reader *r = NULL;
    assert_int_equal(store_batch_input_create(d->s, d->a, &c, 7, &in), STORE_OK);
    assert_true(in.blob_id > 0);
    assert_int_equal(in.original_size, (int32_t)n);
    assert_string_equal(in.mime_type, "application/x-tar");
    assert_int_equal(store_blob_reader_open(d->s, d->a, in.blob_id, &rec, &r), STORE_OK);
    assert_int_equal(rec.blob_id, in.blob_id);
    read_all(r, bytes, n, 65536);
    store_reader_close(r);
    store_task t = {.name = "imp", .params = "{}", .associate_id = 7, .input_blob = in.blob_id};
    assert_int_equal(store_task_add(d->s, &t), STORE_OK);
    assert_int_equal(store_task_get(d->s, d->a, t.id, &t), STORE_OK);
    assert_int_equal(t.input_blob, in.blob_id);
    store_task t2 = {.name = "imp", .params = "{}", .associate_id = 7, .input_blob = in.blob_id};
    assert_int_equal(store_task_add(d->s, &t2), STORE_CONFLICT);
    t2.input_blob = 999999;
    assert_int_equal(store_task_add(d->s, &t2), STORE_ABSENT);
    assert_int_equal(store_blob_create(d->s, d->a, NULL, NULL, 7, &other), STORE_OK);
    t2.input_blob = other.blob_id; /* a record, but no input */
    assert_int_equal(store_task_add(d->s, &t2), STORE_ABSENT);
    /* a bound input is not swept; an unbound one is */
    model_blob loose;
    assert_int_equal(store_batch_input_create(d->s, d->a, &c, 7, &loose), STORE_OK);
    int64_t swept = 0;
    assert_int_equal(store_blob_sweep(d->s, INT64_MAX, &swept), STORE_OK);
    assert_int_equal(swept, 2); /* `loose` and `other` */
    assert_int_equal(store_blob_reader_open(d->s, d->a, loose.blob_id, NULL, &r), STORE_ABSENT);
    assert_int_equal(store_blob_reader_open(d->s, d->a, in.blob_id, NULL, &r), STORE_OK);
    store_reader_close(r);
    assert_int_equal(store_task_delete(d->s, t.id), STORE_OK);
    assert_int_equal(store_blob_reader_open(d->s, d->a, in.blob_id, NULL, &r), STORE_ABSENT);
    close(fd);
    free(bytes);
}

/* The sweep lists an unbound input as stale; a task binds it before the
 * sweep purges it: the purge leaves it alone (its release is conditional
 * on the input being still stale, in one write), the task reads it, and
 * it goes with the task. One still unbound is swept by the same step, and
 * can no longer be bound. */
static void test_sweep_leaves_an_input_bound_meanwhile(void **state)
{
    fx *f = *state;
    tmpdb_store *d = &f->db;
    size_t n = 300 * 1024;
    unsigned char *bytes = make_bytes(n);
    int fd = spool(bytes, n);
    store_content c = {.fd = fd, .size = (int64_t)n, .mime_type = "application/x-tar"};
    model_blob in, loose;
    store_reader *r = NULL;
    int32_t ids[16];
    int k = 0;
    assert_int_equal(store_batch_input_create(d->s, d->a, &c, 7, &in), STORE_OK);
    assert_int_equal(store_batch_input_create(d->s, d->a, &c, 7, &loose), STORE_OK);
    assert_int_equal(store_file_stale(d->s, INT64_MAX, ids, 16, &k), STORE_OK);
    assert_int_equal(k, 2);
    assert_true(ids[0] == in.blob_id && ids[1] == loose.blob_id);
    store_task t = {.name = "imp", .params = "{}", .associate_id = 7, .input_blob = in.blob_id};
    assert_int_equal(store_task_add(d->s, &t), STORE_OK); /* between the list and the purge */
    assert_int_equal(store_file_sweep(d->s, in.blob_id, INT64_MAX), STORE_NOMATCH);
    assert_int_equal(store_file_sweep(d->s, loose.blob_id, INT64_MAX), STORE_OK);
    assert_int_equal(store_task_get(d->s, d->a, t.id, &t), STORE_OK);
    assert_int_equal(t.input_blob, in.blob_id);
    assert_int_equal(store_blob_reader_open(d->s, d->a, in.blob_id, NULL, &r), STORE_OK);
    read_all(r, bytes, n, 65536);
    store_reader_close(r);
    assert_int_equal(store_blob_reader_open(d->s, d->a, loose.blob_id, NULL, &r), STORE_ABSENT);
    store_task t2 = {.name = "imp", .params = "{}", .associate_id = 7, .input_blob = loose.blob_id};
    assert_int_equal(store_task_add(d->s, &t2), STORE_ABSENT);
    assert_int_equal(store_task_delete(d->s, t.id), STORE_OK);
    assert_int_equal(store_blob_reader_open(d->s, d->a, in.blob_id, NULL, &r), STORE_ABSENT);
    close(fd);
    free(bytes);
}

/* An input of n zeros (sparse): its record as kept, and read back whole. */
static model_blob zeros_input(tmpdb_store *d, size_t n)
{
    int fd = spool((const unsigned char *)"", 0);
    assert_int_equal(ftruncate(fd, (off_t)n), 0);
    store_content c = {.fd = fd, .size = (int64_t)n, .mime_type = "application/x-tar"};
    model_blob in, rec;
    store_reader *r = NULL;
    assert_int_equal(store_batch_input_create(d->s, d->a, &c, 7, &in), STORE_OK);
    assert_int_equal(store_blob_reader_open(d->s, d->a, in.blob_id, &rec, &r), STORE_OK);
    unsigned char *buf = malloc(1 << 20);
    size_t total = 0, got = 0;
    do {
        assert_int_equal(store_reader_read(r, buf, 1 << 20, &got), STORE_OK);
        for (size_t i = 0; i < got; i++)
            assert_int_equal(buf[i], 0);
        total += got;
    } while (got > 0);
    assert_int_equal(total, n);
    free(buf);
    store_reader_close(r);
    close(fd);
    return rec;
}

/* Compression is tried up to the decoder's 64 MiB cap, never above it;
 * encryption at any size. */
static void test_zip_cap(void **state)
{
    fx *f = *state;
    model_blob small = zeros_input(&f->db, 8 << 20), big = zeros_input(&f->db, (64 << 20) + 1);
    assert_int_equal(small.is_zipped, f->codec != NULL);
    assert_false(big.is_zipped);
    assert_int_equal(big.is_encrypted, f->codec != NULL);
    assert_int_equal(big.original_size, (64 << 20) + 1);
    assert_true(big.blob_size >= big.original_size);
}

/* A picture record reads back through a reader too. */
static void test_picture_reader(void **state)
{
    fx *f = *state;
    tmpdb_store *d = &f->db;
    size_t n = 600 * 1024;
    unsigned char *bytes = make_bytes(n);
    int fd = spool(bytes, n);
    store_content c = {.fd = fd, .size = (int64_t)n, .mime_type = "image/png"};
    model_blob b;
    store_reader *r = NULL;
    assert_int_equal(store_blob_create(d->s, d->a, NULL, &c, 7, &b), STORE_OK);
    assert_int_equal(store_blob_reader_open(d->s, d->a, b.blob_id, NULL, &r), STORE_OK);
    read_all(r, bytes, n, 4096);
    store_reader_close(r);
    close(fd);
    free(bytes);
}

/* A picture whose bytes are replaced while it is read: the record read
 * went (STORE_ABSENT), never a mix of old and new bytes. */
static void test_picture_replaced_meanwhile(void **state)
{
    fx *f = *state;
    tmpdb_store *d = &f->db;
    size_t n = 600 * 1024;
    unsigned char *bytes = make_bytes(n), buf[1000];
    int fd = spool(bytes, n);
    store_content c = {.fd = fd, .size = (int64_t)n, .mime_type = "image/png"};
    model_blob b;
    store_reader *r = NULL;
    size_t got = 0;
    assert_int_equal(store_blob_create(d->s, d->a, NULL, &c, 7, &b), STORE_OK);
    assert_int_equal(store_blob_reader_open(d->s, d->a, b.blob_id, NULL, &r), STORE_OK);
    assert_int_equal(store_reader_read(r, buf, sizeof(buf), &got), STORE_OK);
    assert_memory_equal(buf, bytes, sizeof(buf));
    assert_int_equal(store_blob_content_put(d->s, d->a, b.blob_id, &c, 7, &b), STORE_OK);
    store_err rc = STORE_OK;
    for (int i = 0; i < 1000 && rc == STORE_OK && got > 0; i++)
        rc = store_reader_read(r, buf, sizeof(buf), &got);
    assert_int_equal(rc, STORE_ABSENT);
    store_reader_close(r);
    close(fd);
    free(bytes);
}

#define PLAIN(t) cmocka_unit_test_setup_teardown(t, setup_plain, teardown)
#define CODED(t) cmocka_unit_test_setup_teardown(t, setup_coded, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        PLAIN(test_output_parts),
        CODED(test_output_parts),
        PLAIN(test_output_empty),
        CODED(test_output_empty),
        PLAIN(test_deleted_meanwhile),
        CODED(test_deleted_meanwhile),
        PLAIN(test_input),
        CODED(test_input),
        PLAIN(test_sweep_leaves_an_input_bound_meanwhile),
        PLAIN(test_picture_reader),
        CODED(test_picture_reader),
        PLAIN(test_zip_cap),
        CODED(test_zip_cap),
        PLAIN(test_picture_replaced_meanwhile),
        CODED(test_picture_replaced_meanwhile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
