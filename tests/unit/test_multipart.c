/*
 * test_multipart.c — unit tests of the streaming multipart/form-data reader.
 *
 * Every body is run through run_body(), which feeds it in a chosen chunking
 * and records what the sink received and how the reader ended; the chunking
 * tests check that any split (two chunks at every offset, one byte at a
 * time, pseudo-random sizes) gives exactly the result of a single feed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api/multipart.h"
#include "core/buf.h"

#define CT "multipart/form-data; boundary=XbOuNdArY"
#define B "--XbOuNdArY"

/* What a reader did with one body. */
struct result {
    bool created;
    cb_err feed;   /* first non-OK feed result, else CB_EOK */
    cb_err finish; /* multipart_finish (only when every feed succeeded) */
    bool found;
    buf_t out;         /* bytes the sink received */
    size_t sink_calls; /* how many times the sink was called */
    char filename[256];
    char type[128];
    char error[160];
};

/* Sink context: collects bytes, or fails on the call numbered fail_at. */
struct sink_ctx {
    struct result *r;
    size_t fail_at; /* 0 = never */
};

static cb_err collect(void *ctx, const char *data, size_t n)
{
    struct sink_ctx *s = ctx;
    assert_true(n > 0);
    if (++s->r->sink_calls == s->fail_at)
        return CB_ETOOLARGE;
    return buf_append(&s->r->out, data, n);
}

static void result_init(struct result *r)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->out, 1 << 20);
}

static void result_free(struct result *r)
{
    buf_free(&r->out);
}

/* Feeds body in chunks of the sizes in cuts (0-terminated, the last chunk
 * takes the rest), then finishes. */
static void run_cuts(struct result *r, const char *ct, const char *body, size_t len,
                     const size_t *cuts, size_t fail_at)
{
    struct sink_ctx s = {r, fail_at};
    multipart_t *m = multipart_create(ct, collect, &s);
    r->created = m != NULL;
    if (m == NULL)
        return;
    size_t off = 0;
    for (size_t i = 0; off < len && r->feed == CB_EOK; i++) {
        size_t n = cuts != NULL && cuts[i] != 0 && cuts[i] < len - off ? cuts[i] : len - off;
        r->feed = multipart_feed(m, body + off, n);
        off += n;
    }
    r->finish = r->feed == CB_EOK ? multipart_finish(m) : r->feed;
    r->found = multipart_found_file(m);
    snprintf(r->filename, sizeof(r->filename), "%s", multipart_filename(m));
    snprintf(r->type, sizeof(r->type), "%s", multipart_part_type(m));
    snprintf(r->error, sizeof(r->error), "%s", multipart_error(m));
    multipart_destroy(m);
}

static void run_body(struct result *r, const char *ct, const char *body, size_t len)
{
    result_init(r);
    run_cuts(r, ct, body, len, NULL, 0);
}

/* Feeds one byte at a time. */
static void run_bytes(struct result *r, const char *ct, const char *body, size_t len)
{
    struct sink_ctx s = {r, 0};
    result_init(r);
    multipart_t *m = multipart_create(ct, collect, &s);
    assert_non_null(m);
    r->created = true;
    for (size_t i = 0; i < len && r->feed == CB_EOK; i++)
        r->feed = multipart_feed(m, body + i, 1);
    r->finish = r->feed == CB_EOK ? multipart_finish(m) : r->feed;
    r->found = multipart_found_file(m);
    snprintf(r->filename, sizeof(r->filename), "%s", multipart_filename(m));
    snprintf(r->type, sizeof(r->type), "%s", multipart_part_type(m));
    snprintf(r->error, sizeof(r->error), "%s", multipart_error(m));
    multipart_destroy(m);
}

static void assert_same(const struct result *a, const struct result *b)
{
    assert_int_equal(a->created, b->created);
    assert_int_equal(a->feed, b->feed);
    assert_int_equal(a->finish, b->finish);
    assert_int_equal(a->found, b->found);
    assert_int_equal(a->out.len, b->out.len);
    assert_memory_equal(buf_str(&a->out), buf_str(&b->out), a->out.len);
    assert_string_equal(a->filename, b->filename);
    assert_string_equal(a->type, b->type);
    assert_string_equal(a->error, b->error);
}

/* The result of a body fed whole equals every other chunking of it. */
static void check_all_splits(const char *ct, const char *body, size_t len)
{
    struct result whole, other;
    run_body(&whole, ct, body, len);
    for (size_t k = 0; k <= len; k++) {
        size_t cuts[] = {k, 0};
        result_init(&other);
        run_cuts(&other, ct, body, len, k == 0 ? NULL : cuts, 0);
        assert_same(&whole, &other);
        result_free(&other);
    }
    run_bytes(&other, ct, body, len);
    assert_same(&whole, &other);
    result_free(&other);
    uint32_t seed = 12345;
    for (int round = 0; round < 50; round++) {
        size_t cuts[64];
        for (size_t i = 0; i < 63; i++) {
            seed = seed * 1103515245u + 12345u;
            cuts[i] = 1 + (seed >> 16) % 13;
        }
        cuts[63] = 0;
        result_init(&other);
        run_cuts(&other, ct, body, len, cuts, 0);
        assert_same(&whole, &other);
        result_free(&other);
    }
    result_free(&whole);
}

#define LIT(s) (s), sizeof(s) - 1

static const char simple_body[] = B "\r\n"
                                    "Content-Disposition: form-data; name=\"image\"; "
                                    "filename=\"a.png\"\r\n"
                                    "Content-Type: image/png\r\n"
                                    "\r\n"
                                    "\x89PNG\r\n\x1a\n-data-\r\n" B "--\r\n";

static void test_simple_file_part(void **state)
{
    (void)state;
    struct result r;
    run_body(&r, CT, LIT(simple_body));
    assert_true(r.created);
    assert_int_equal(r.feed, CB_EOK);
    assert_int_equal(r.finish, CB_EOK);
    assert_true(r.found);
    assert_int_equal(r.out.len, 14);
    assert_memory_equal(r.out.data, "\x89PNG\r\n\x1a\n-data-", 14);
    assert_string_equal(r.filename, "a.png");
    assert_string_equal(r.type, "image/png");
    assert_string_equal(r.error, "");
    result_free(&r);
}

/* The shape sent by the official clients and browsers (WebKit boundary). */
static const char projectimg_ct[] =
    "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW";
static const char projectimg_body[] =
    "------WebKitFormBoundary7MA4YWxkTrZu0gW\r\n"
    "Content-Disposition: form-data; name=\"projectimg\"; filename=\"project.jpg\"\r\n"
    "Content-Type: image/jpeg\r\n"
    "\r\n"
    "\xff\xd8\xff\xe0JFIF\r\n\r\n--\xff\xd9"
    "\r\n------WebKitFormBoundary7MA4YWxkTrZu0gW--\r\n";

static void test_projectimg_sample(void **state)
{
    (void)state;
    struct result r;
    run_body(&r, projectimg_ct, LIT(projectimg_body));
    assert_int_equal(r.finish, CB_EOK);
    assert_true(r.found);
    assert_int_equal(r.out.len, 16);
    assert_memory_equal(r.out.data, "\xff\xd8\xff\xe0JFIF\r\n\r\n--\xff\xd9", 16);
    assert_string_equal(r.filename, "project.jpg");
    assert_string_equal(r.type, "image/jpeg");
    result_free(&r);
}

static const char field_then_file[] =
    "This is the preamble; it is ignored.\r\n" B "\r\n"
    "Content-Disposition: form-data; name=\"description\"\r\n"
    "\r\n"
    "a plain text field with a filename=\"x\" in it\r\n" B "\r\n"
    "content-disposition: form-data; name=\"projectimg\"; filename=\"p.gif\"\r\n"
    "content-type: image/gif\r\n"
    "\r\n"
    "GIF89a..." B "\r\n--" /* no CRLF before: not a delimiter */
    "\r\n" B "--\r\nepilogue " B "\r\n garbage";

static void test_text_field_then_file(void **state)
{
    (void)state;
    struct result r;
    run_body(&r, CT, LIT(field_then_file));
    assert_int_equal(r.finish, CB_EOK);
    assert_true(r.found);
    assert_string_equal(buf_str(&r.out), "GIF89a..." B "\r\n--");
    assert_string_equal(r.filename, "p.gif");
    assert_string_equal(r.type, "image/gif");
    result_free(&r);
}

static const char two_files[] =
    B "\r\n"
      "Content-Disposition: form-data; name=\"a\"; filename=\"one.png\"\r\n"
      "Content-Type: image/png\r\n"
      "\r\n"
      "first\r\n" B "\r\n"
      "Content-Disposition: form-data; name=\"b\"; filename=\"two.jpg\"\r\n"
      "Content-Type: image/jpeg\r\n"
      "\r\n"
      "second\r\n" B "--";

static void test_two_file_parts(void **state)
{
    (void)state;
    struct result r;
    run_body(&r, CT, LIT(two_files));
    assert_int_equal(r.finish, CB_EOK);
    assert_true(r.found);
    assert_string_equal(buf_str(&r.out), "first");
    assert_string_equal(r.filename, "one.png");
    assert_string_equal(r.type, "image/png");
    result_free(&r);
}

static void check_boundary_ct(const char *ct, const char *boundary)
{
    char body[512];
    int n = snprintf(body, sizeof(body),
                     "--%s\r\nContent-Disposition: form-data; name=f; filename=x.tif\r\n\r\n"
                     "II*\\0\r\n--%s--\r\n",
                     boundary, boundary);
    assert_true(n > 0 && (size_t)n < sizeof(body));
    struct result r;
    run_body(&r, ct, body, (size_t)n);
    assert_true(r.created);
    assert_int_equal(r.finish, CB_EOK);
    assert_string_equal(buf_str(&r.out), "II*\\0");
    assert_string_equal(r.filename, "x.tif");
    assert_string_equal(r.type, "");
    result_free(&r);
}

static void test_boundary_forms(void **state)
{
    (void)state;
    check_boundary_ct("multipart/form-data; boundary=abc", "abc");
    check_boundary_ct("multipart/form-data; boundary=\"abc\"", "abc");
    check_boundary_ct("Multipart/Form-Data;BOUNDARY=abc", "abc");
    check_boundary_ct("multipart/form-data; charset=utf-8; BoUnDaRy=\"a b:c\"", "a b:c");
    check_boundary_ct("  multipart/form-data ;  boundary = abc ; x=\"y;z\" ;", "abc");
    check_boundary_ct("multipart/form-data; boundary=----=_Part_0_12.34", "----=_Part_0_12.34");
    char ct[128], b70[71];
    memset(b70, 'z', 70);
    b70[70] = '\0';
    snprintf(ct, sizeof(ct), "multipart/form-data; boundary=%s", b70);
    check_boundary_ct(ct, b70);
}

static void test_boundary_is_case_sensitive(void **state)
{
    (void)state;
    static const char body[] = "--abc\r\nContent-Disposition: form-data; filename=\"f\"\r\n\r\n"
                               "x\r\n--ABC\r\n--abC--\r\n--abc--";
    struct result r;
    run_body(&r, "multipart/form-data; boundary=abc", LIT(body));
    assert_int_equal(r.finish, CB_EOK);
    assert_string_equal(buf_str(&r.out), "x\r\n--ABC\r\n--abC--");
    result_free(&r);
}

static void test_not_multipart(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "application/json",
        "image/png",
        "multipart/mixed; boundary=abc",
        "multipart/form-data",
        "multipart/form-data;",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=\"\"",
        "multipart/form-data; boundary=\"abc",
        "multipart/form-data; boundary=\"abc \"",
        "multipart/form-data; boundary=ab@c",
        "multipart/form-data; boundary=\"ab\\\"c\"",
        "multipart/form-data; boundary=abc; boundary=abc",
        "multipart/form-data; boundary=abc def",
        "multipart/form-data; boundaryabc",
        "multipart/form-dataX; boundary=abc",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct result r;
        run_body(&r, bad[i], "", 0);
        if (r.created)
            fail_msg("accepted Content-Type %s", bad[i]);
        result_free(&r);
    }
    char ct[128], b71[72];
    memset(b71, 'z', 71);
    b71[71] = '\0';
    snprintf(ct, sizeof(ct), "multipart/form-data; boundary=%s", b71);
    assert_null(multipart_create(ct, collect, NULL));
    assert_null(multipart_create(NULL, collect, NULL));
}

/* Bodies whose results must not depend on how they are chunked. */
static const char lookalike_body[] =
    B "\r\nContent-Disposition: form-data; name=\"f\"; filename=\"f.bin\"\r\n\r\n"
      "\r\n--XbOuNd\r\n-\r\r\n--XbOuNdArX\r\r\r\n\r\n--XbOuNdAr\r\n" B "--";

static const char binary_body[] =
    "preamble\r\n--XbOuNdArY\t \r\n"
    "Content-Disposition: form-data; name=\"b\"; filename=\"b\"\r\n\r\n"
    "\0\0\r\n\0\r\r\n\n\r-\r\n-\0--XbOuNdArY\0\r\n"
    "\r\n--XbOuNdArY  \r\n\r\nskipped\r\n" B "--";

static void test_all_splits(void **state)
{
    (void)state;
    check_all_splits(CT, LIT(simple_body));
    check_all_splits(projectimg_ct, LIT(projectimg_body));
    check_all_splits(CT, LIT(field_then_file));
    check_all_splits(CT, LIT(two_files));
    check_all_splits(CT, LIT(lookalike_body));
    check_all_splits(CT, LIT(binary_body));
    check_all_splits(CT, LIT(B "\r\nX-Bad header\r\n\r\n"));
    check_all_splits(CT, LIT(B "\r\nContent-Disposition: form-data; filename=a\r\n\r\nabc"));
}

static void test_partial_boundary_in_content(void **state)
{
    (void)state;
    struct result r;
    run_body(&r, CT, LIT(lookalike_body));
    assert_int_equal(r.finish, CB_EOK);
    static const char want[] = "\r\n--XbOuNd\r\n-\r\r\n--XbOuNdArX\r\r\r\n\r\n--XbOuNdAr";
    assert_int_equal(r.out.len, sizeof(want) - 1);
    assert_memory_equal(r.out.data, want, sizeof(want) - 1);
    result_free(&r);
}

static void test_binary_content(void **state)
{
    (void)state;
    struct result r;
    run_body(&r, CT, LIT(binary_body));
    assert_int_equal(r.finish, CB_EOK);
    static const char want[] = "\0\0\r\n\0\r\r\n\n\r-\r\n-\0--XbOuNdArY\0\r\n";
    assert_int_equal(r.out.len, sizeof(want) - 1);
    assert_memory_equal(r.out.data, want, sizeof(want) - 1);
    result_free(&r);
}

/* A header block of `size` bytes: one filler header padded to fit. */
static size_t make_big_header(char *body, size_t cap, size_t size)
{
    static const char head[] = B "\r\nContent-Disposition: form-data; filename=\"h\"\r\nX-Pad: ";
    static const char tail[] = "\r\n\r\nhello\r\n" B "--";
    size_t hb = sizeof(head) - 1 - (sizeof(B) - 1) - 2; /* header bytes in head */
    size_t pad = size - hb - 4;                         /* minus CRLF CRLF */
    assert_true(sizeof(head) + pad + sizeof(tail) < cap);
    memcpy(body, head, sizeof(head) - 1);
    memset(body + sizeof(head) - 1, 'p', pad);
    memcpy(body + sizeof(head) - 1 + pad, tail, sizeof(tail) - 1);
    return sizeof(head) - 1 + pad + sizeof(tail) - 1;
}

static void test_header_too_large(void **state)
{
    (void)state;
    static char body[MULTIPART_MAX_HEADER + 256];
    struct result r;
    size_t n = make_big_header(body, sizeof(body), MULTIPART_MAX_HEADER);
    run_body(&r, CT, body, n);
    assert_int_equal(r.finish, CB_EOK);
    assert_string_equal(buf_str(&r.out), "hello");
    result_free(&r);

    n = make_big_header(body, sizeof(body), MULTIPART_MAX_HEADER + 1);
    run_body(&r, CT, body, n);
    assert_int_equal(r.feed, CB_EBADREQ);
    assert_non_null(strstr(r.error, "8192"));
    assert_false(r.found);
    result_free(&r);
}

static void test_truncated_body(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        B "\r\nContent-Disposition: form-data; filename=a\r\n\r\nabc",
        B "\r\nContent-Disposition: form-data; filename=a\r\n\r\nabc\r\n--XbOuNd",
        B "\r\nContent-Disposition: form-data; filename=a\r\n\r\nabc\r\n" B,
        B "\r\nContent-Disposition: form-data; filename=a\r\n\r\nabc\r\n" B "-",
        B "\r\nContent-Disposition: form-data; filename=a\r\n\r\nabc\r\n" B "\r\n",
        B "\r\nContent-Disposition: form-data; filename=a\r\n",
        B,
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct result r;
        run_body(&r, CT, bodies[i], strlen(bodies[i]));
        assert_int_equal(r.feed, CB_EOK);
        assert_int_equal(r.finish, CB_EBADREQ);
        assert_non_null(strstr(r.error, "truncated"));
        result_free(&r);
    }
}

static void test_no_boundary_at_all(void **state)
{
    (void)state;
    struct result r;
    run_body(&r, CT, LIT("just some bytes\r\n--XbOuNdAr\r\n-XbOuNdArY\r\n"));
    assert_int_equal(r.feed, CB_EOK);
    assert_int_equal(r.finish, CB_EBADREQ);
    assert_non_null(strstr(r.error, "no boundary"));
    result_free(&r);

    run_body(&r, CT, "", 0);
    assert_int_equal(r.finish, CB_EBADREQ);
    result_free(&r);
}

static void test_no_file_part(void **state)
{
    (void)state;
    struct result r;
    run_body(&r, CT,
             LIT(B "\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n" B "\r\n"
                   "Content-Disposition: form-data; name=\"filename\"\r\n\r\n2\r\n" B "--"));
    assert_int_equal(r.finish, CB_EOK);
    assert_false(r.found);
    assert_int_equal(r.out.len, 0);
    assert_int_equal(r.sink_calls, 0);
    assert_string_equal(r.filename, "");
    assert_string_equal(r.type, "");
    result_free(&r);

    run_body(&r, CT, LIT(B "--\r\n"));
    assert_int_equal(r.finish, CB_EOK);
    assert_false(r.found);
    result_free(&r);
}

static void test_empty_file_part(void **state)
{
    (void)state;
    struct result r;
    run_body(&r, CT,
             LIT(B "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"\"\r\n"
                   "Content-Type: application/octet-stream\r\n\r\n\r\n" B "\r\n"
                   "Content-Disposition: form-data; filename=\"late.png\"\r\n\r\nlate\r\n" B "--"));
    assert_int_equal(r.finish, CB_EOK);
    assert_true(r.found);
    assert_int_equal(r.out.len, 0);
    assert_int_equal(r.sink_calls, 0);
    assert_string_equal(r.filename, "");
    assert_string_equal(r.type, "application/octet-stream");
    result_free(&r);
}

static void test_sink_error(void **state)
{
    (void)state;
    struct result r;
    size_t ones[sizeof(simple_body)];
    for (size_t i = 0; i < sizeof(ones) / sizeof(ones[0]); i++)
        ones[i] = 1;
    ones[sizeof(ones) / sizeof(ones[0]) - 1] = 0;
    /* byte by byte, so that the file content takes several sink calls */
    result_init(&r);
    run_cuts(&r, CT, LIT(simple_body), ones, 2);
    assert_int_equal(r.feed, CB_ETOOLARGE);
    assert_int_equal(r.finish, CB_ETOOLARGE);
    assert_int_equal(r.sink_calls, 2);
    result_free(&r);

    /* the failure is sticky: later feeds and finish repeat it */
    struct sink_ctx s = {&r, 1};
    result_init(&r);
    multipart_t *m = multipart_create(CT, collect, &s);
    assert_non_null(m);
    assert_int_equal(multipart_feed(m, simple_body, sizeof(simple_body) - 1), CB_ETOOLARGE);
    assert_int_equal(multipart_feed(m, "x", 1), CB_ETOOLARGE);
    assert_int_equal(multipart_finish(m), CB_ETOOLARGE);
    multipart_destroy(m);
    result_free(&r);
}

static void check_bad(const char *body, const char *reason_part)
{
    struct result r;
    run_body(&r, CT, body, strlen(body));
    assert_int_equal(r.finish, CB_EBADREQ);
    if (strstr(r.error, reason_part) == NULL)
        fail_msg("reason \"%s\" lacks \"%s\" for %s", r.error, reason_part, body);
    result_free(&r);
}

static void test_malformed(void **state)
{
    (void)state;
    check_bad(B "\r\nNo colon here\r\n\r\nx\r\n" B "--", "header line");
    check_bad(B "\r\n: empty name\r\n\r\nx\r\n" B "--", "header line");
    check_bad(B "\r\nName : space before colon\r\n\r\nx\r\n" B "--", "header line");
    check_bad(B "\r\n folded first line\r\n\r\nx\r\n" B "--", "header line");
    check_bad(B "\r\nA: b\nC: d\r\n\r\nx\r\n" B "--", "bare");
    check_bad(B "\r\nA: b\rC: d\r\n\r\nx\r\n" B "--", "bare");
    check_bad(B "\r\nContent-Disposition: form-data; filename=\"x\r\n\r\nx\r\n" B "--",
              "Content-Disposition");
    check_bad(B "\r\nContent-Disposition: form-data; filename\r\n\r\nx\r\n" B "--",
              "Content-Disposition");
    check_bad(B "\r\nContent-Disposition: ; filename=a\r\n\r\nx\r\n" B "--", "Content-Disposition");
    check_bad(B "\r\nContent-Disposition: form-data; filename*=nope\r\n\r\nx\r\n" B "--",
              "filename");
    check_bad(B "\r\nContent-Disposition: form-data; filename*=UTF-8''a%2\r\n\r\nx\r\n" B "--",
              "filename");
    check_bad(B "\r\nContent-Disposition: form-data; filename*=UTF-8''a%00\r\n\r\nx\r\n" B "--",
              "filename");
    check_bad(B "\r\n\r\nx\r\n" B "X\r\n", "boundary line");
    check_bad(B "\r\n\r\nx\r\n" B "-X\r\n", "boundary line");
    check_bad(B "\r\n\r\nx\r\n" B " \tX\r\n", "boundary line");
    check_bad(B "\r\n\r\nx\r\n" B "\rX", "boundary line");
    static const char nul[] = B "\r\nA: \0\r\n\r\n";
    struct result r;
    run_body(&r, CT, LIT(nul));
    assert_int_equal(r.feed, CB_EBADREQ);
    assert_non_null(strstr(r.error, "NUL"));
    result_free(&r);
}

/* Whatever precedes the first delimiter line is preamble, even text that
 * looks like a delimiter followed by something else. */
static void test_preamble(void **state)
{
    (void)state;
    struct result r;
    run_body(&r, CT,
             LIT("--XbOuNdArYX\r\n" B "-\r\n" B " x\r\n" B "\rx\r\n\r\n" B "\r\n"
                 "Content-Disposition: form-data; filename=p\r\n\r\nok\r\n" B "--"));
    assert_int_equal(r.finish, CB_EOK);
    assert_string_equal(buf_str(&r.out), "ok");
    result_free(&r);
}

static void test_filename_forms(void **state)
{
    (void)state;
    static const struct {
        const char *disposition;
        const char *want;
    } cases[] = {
        {"form-data; name=\"f\"; filename=\"a\\\"b.png\"", "a\"b.png"},
        {"form-data; filename=\"C:\\dir\\x.png\"", "C:\\dir\\x.png"},
        {"form-data; filename=\"a\\\\b\"", "a\\b"},
        {"form-data; filename=\"semi;colon.png\"; name=x", "semi;colon.png"},
        {"form-data; filename*=UTF-8''na%C3%AFve%20pic.png", "na\xc3\xafve pic.png"},
        {"form-data; filename=\"fallback.png\"; filename*=utf-8'en'r%C3%A9el.png", "r\xc3\xa9"
                                                                                   "el.png"},
        {"form-data; FILENAME*=iso-8859-1''caf%E9.png", "caf\xc3\xa9.png"},
        {"attachment;filename=plain.png", "plain.png"},
        {"form-data;\r\n filename=\"folded.png\"", "folded.png"},
        {"form-data; name=\"x\"; filename=\"first\"; filename=\"second\"", "first"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[512];
        int n = snprintf(body, sizeof(body),
                         B "\r\nCONTENT-DISPOSITION: %s\r\ncontent-TYPE:  image/png ; q=1 \r\n"
                           "\r\nx\r\n" B "--",
                         cases[i].disposition);
        struct result r;
        run_body(&r, CT, body, (size_t)n);
        assert_int_equal(r.finish, CB_EOK);
        assert_true(r.found);
        assert_string_equal(r.filename, cases[i].want);
        assert_string_equal(r.type, "image/png ; q=1");
        assert_string_equal(buf_str(&r.out), "x");
        result_free(&r);
    }
}

/* Large content passes through in large pieces, not split at every CR. */
static void test_large_content_streams(void **state)
{
    (void)state;
    static char body[300000];
    static const char head[] = B "\r\nContent-Disposition: form-data; filename=big\r\n\r\n";
    size_t n = sizeof(head) - 1;
    memcpy(body, head, n);
    for (size_t i = 0; i < 250000; i++)
        body[n++] = (char)(i * 7 % 251);
    memcpy(body + n, "\r\n" B "--", sizeof(B) + 3);
    n += sizeof(B) + 3;
    struct result r;
    run_body(&r, CT, body, n);
    assert_int_equal(r.finish, CB_EOK);
    assert_int_equal(r.out.len, 250000);
    assert_memory_equal(r.out.data, body + sizeof(head) - 1, 250000);
    assert_int_equal(r.sink_calls, 1); /* fed whole: one call, CRs and all */
    result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_file_part),
        cmocka_unit_test(test_projectimg_sample),
        cmocka_unit_test(test_text_field_then_file),
        cmocka_unit_test(test_two_file_parts),
        cmocka_unit_test(test_boundary_forms),
        cmocka_unit_test(test_boundary_is_case_sensitive),
        cmocka_unit_test(test_not_multipart),
        cmocka_unit_test(test_all_splits),
        cmocka_unit_test(test_partial_boundary_in_content),
        cmocka_unit_test(test_binary_content),
        cmocka_unit_test(test_header_too_large),
        cmocka_unit_test(test_truncated_body),
        cmocka_unit_test(test_no_boundary_at_all),
        cmocka_unit_test(test_no_file_part),
        cmocka_unit_test(test_empty_file_part),
        cmocka_unit_test(test_sink_error),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_preamble),
        cmocka_unit_test(test_filename_forms),
        cmocka_unit_test(test_large_content_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
