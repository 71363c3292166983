/*
 * test_tar.c — the import's streaming tar reader (src/bulk/tar.c): each
 * header field it checks, one case a test: ustar with a prefix, GNU long
 * names, pax path and size, base-256 sizes, signed checksums, what is
 * skipped, and the refusals (names, checksums, numbers, truncation, the
 * member size bound), each saying why.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "bulk/bulk.h"

typedef struct {
    unsigned char buf[64 * 1024];
    size_t len, off, chunk;
} src;

static int feed(void *ctx, void *out, size_t n, size_t *got)
{
    src *s = ctx;
    size_t k = s->len - s->off;
    k = k < n ? k : n;
    k = s->chunk && k > s->chunk ? s->chunk : k;
    memcpy(out, s->buf + s->off, k);
    s->off += k;
    *got = k;
    return 0;
}

static void sum(unsigned char *h, bool as_signed)
{
    long v = 0;
    memset(h + 148, ' ', 8);
    for (int i = 0; i < 512; i++)
        v += as_signed ? (signed char)h[i] : h[i];
    snprintf((char *)h + 148, 8, "%06lo", (unsigned long)v);
    h[155] = ' ';
}

/* A header for name (prefix when not NULL) of size bytes and type t. */
static unsigned char *header(src *s, const char *name, const char *prefix, int64_t size, char t)
{
    unsigned char *h = s->buf + s->len;
    memset(h, 0, 512);
    memcpy(h, name, strlen(name));
    memcpy(h + 100, "0000644", 8);
    char num[32];
    snprintf(num, sizeof(num), "%011llo", (unsigned long long)size & 077777777777ULL);
    memcpy(h + 124, num, 12);
    h[156] = (unsigned char)t;
    memcpy(h + 257,
           "ustar\0"
           "00",
           8);
    if (prefix)
        memcpy(h + 345, prefix, strlen(prefix));
    sum(h, false);
    s->len += 512;
    return h;
}

static void body(src *s, const void *p, size_t n)
{
    memcpy(s->buf + s->len, p, n);
    s->len += n + (512 - n % 512) % 512;
}

static void end(src *s)
{
    memset(s->buf + s->len, 0, 1024);
    s->len += 1024;
}

static void member(src *s, const char *name, const char *data)
{
    header(s, name, NULL, (int64_t)strlen(data), '0');
    body(s, data, strlen(data));
}

static bulk_tar_reader t;

static void start(src *s)
{
    bulk_tar_reader_init(&t, feed, s, 1 << 20);
}

static void read_all(char *out, size_t cap)
{
    size_t got, have = 0;
    while (bulk_tar_read(&t, out + have, cap - 1 - have, &got) == 0 && got > 0)
        have += got;
    out[have] = '\0';
}

static void expect_error(src *s, const char *why)
{
    bulk_tar_member m;
    start(s);
    int rc;
    while ((rc = bulk_tar_next(&t, &m)) == BULK_TAR_MEMBER)
        ;
    assert_int_equal(rc, BULK_TAR_ERROR);
    if (strstr(t.why, why) == NULL)
        fail_msg("'%s' does not say '%s'", t.why, why);
}

static void test_ustar_members_read_in_any_chunks(void **state)
{
    (void)state;
    static src s;
    for (size_t chunk = 0; chunk < 600; chunk += 37) {
        memset(&s, 0, sizeof(s));
        s.chunk = chunk;
        member(&s, "person/1.jpg", "one");
        header(&s, "2.png", "contact", 3, '0');
        body(&s, "two", 3);
        header(&s, "./person/", NULL, 0, '5');
        end(&s);
        bulk_tar_member m;
        char got[64];
        start(&s);
        assert_int_equal(bulk_tar_next(&t, &m), BULK_TAR_MEMBER);
        assert_string_equal(m.name, "person/1.jpg");
        assert_int_equal(m.kind, BULK_TAR_FILE);
        read_all(got, sizeof(got));
        assert_string_equal(got, "one");
        assert_int_equal(bulk_tar_next(&t, &m), BULK_TAR_MEMBER); /* unread: skipped */
        assert_string_equal(m.name, "contact/2.png");
        assert_int_equal(bulk_tar_next(&t, &m), BULK_TAR_MEMBER);
        assert_string_equal(m.name, "person");
        assert_int_equal(m.kind, BULK_TAR_DIR);
        assert_int_equal(bulk_tar_next(&t, &m), BULK_TAR_END);
    }
}

static void test_gnu_long_name_and_pax_records(void **state)
{
    (void)state;
    static src s;
    char longname[300], pax[600], got[64];
    memset(&s, 0, sizeof(s));
    memset(longname, 'a', sizeof(longname));
    memcpy(longname, "person/", 7);
    strcpy(longname + 290, "/1.jpg");
    header(&s, "././@LongLink", NULL, (int64_t)strlen(longname) + 1, 'L');
    body(&s, longname, strlen(longname) + 1);
    member(&s, "cut-short", "L");
    /* pax: a path and a size that override the header's */
    snprintf(pax, sizeof(pax), "%s%s", "22 path=project/7.png\n", "10 size=5\n");
    header(&s, "PaxHeaders/x", NULL, (int64_t)strlen(pax), 'x');
    body(&s, pax, strlen(pax));
    header(&s, "ignored", NULL, 99, '0');
    body(&s, "seven", 5);
    header(&s, "link", NULL, 0, '2');
    end(&s);
    bulk_tar_member m;
    start(&s);
    assert_int_equal(bulk_tar_next(&t, &m), BULK_TAR_MEMBER);
    assert_string_equal(m.name, longname);
    assert_int_equal(bulk_tar_next(&t, &m), BULK_TAR_MEMBER);
    assert_string_equal(m.name, "project/7.png");
    assert_int_equal(m.size, 5);
    read_all(got, sizeof(got));
    assert_string_equal(got, "seven");
    assert_int_equal(bulk_tar_next(&t, &m), BULK_TAR_MEMBER);
    assert_int_equal(m.kind, BULK_TAR_OTHER);
    assert_int_equal(m.type, '2');
    assert_int_equal(bulk_tar_next(&t, &m), BULK_TAR_END);
}

/* A GNU 'K' (long link name) or pax 'g' (global record) between a long
 * name or a pax path and its member is read over: the name stays the
 * member's (it was taken by the 'K'/'g' as an OTHER member's). */
static void test_link_names_and_global_records_keep_the_pending_name(void **state)
{
    (void)state;
    static src s;
    char longname[200];
    const char *pax = "22 path=project/7.png\n", *global = "15 comment=hi\n";
    memset(&s, 0, sizeof(s));
    memset(longname, 'b', sizeof(longname));
    memcpy(longname, "person/", 7);
    strcpy(longname + 190, "/1.jpg");
    header(&s, "././@LongLink", NULL, (int64_t)strlen(longname) + 1, 'L');
    body(&s, longname, strlen(longname) + 1);
    header(&s, "././@LongLink", NULL, 7, 'K');
    body(&s, "target", 7);
    member(&s, "cut-short", "L");
    header(&s, "PaxHeaders/x", NULL, (int64_t)strlen(pax), 'x');
    body(&s, pax, strlen(pax));
    header(&s, "PaxHeaders/g", NULL, (int64_t)strlen(global), 'g');
    body(&s, global, strlen(global));
    member(&s, "ignored", "P");
    end(&s);
    bulk_tar_member m;
    start(&s);
    assert_int_equal(bulk_tar_next(&t, &m), BULK_TAR_MEMBER);
    assert_string_equal(m.name, longname);
    assert_int_equal(m.kind, BULK_TAR_FILE);
    assert_int_equal(bulk_tar_next(&t, &m), BULK_TAR_MEMBER);
    assert_string_equal(m.name, "project/7.png");
    assert_int_equal(m.kind, BULK_TAR_FILE);
    assert_int_equal(bulk_tar_next(&t, &m), BULK_TAR_END);
}

static void test_base256_size_and_signed_checksum(void **state)
{
    (void)state;
    static src s;
    memset(&s, 0, sizeof(s));
    unsigned char *h = header(&s, "person/\xe9.jpg", NULL, 0, '0');
    memset(h + 124, 0, 12);
    h[124] = 0x80;
    h[135] = 4;   /* base-256: 4 bytes */
    sum(h, true); /* 0xe9 counted as negative, as some old tars did */
    body(&s, "abcd", 4);
    end(&s);
    bulk_tar_member m;
    char got[16];
    start(&s);
    assert_int_equal(bulk_tar_next(&t, &m), BULK_TAR_MEMBER);
    assert_int_equal(m.size, 4);
    read_all(got, sizeof(got));
    assert_string_equal(got, "abcd");
    assert_int_equal(bulk_tar_next(&t, &m), BULK_TAR_END);
}

static void test_names_refused(void **state)
{
    (void)state;
    static src s;
    const char *bad[] = {"/etc/passwd", "../x.jpg",       "person/../../x",
                         "a//b",        "person/./1.jpg", ".."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&s, 0, sizeof(s));
        member(&s, bad[i], "x");
        end(&s);
        expect_error(&s, "not a name inside the archive");
    }
    memset(&s, 0, sizeof(s)); /* bytes after the name's NUL */
    unsigned char *h = header(&s, "person/1.jpg", NULL, 0, '0');
    memcpy(h + 20, "../../x", 7);
    sum(h, false);
    end(&s);
    expect_error(&s, "whose name has bytes after its end");
    memset(&s, 0, sizeof(s)); /* a long name with a NUL inside */
    header(&s, "././@LongLink", NULL, 12, 'L');
    body(&s, "person\0/1.jpg", 12);
    member(&s, "x", "x");
    end(&s);
    expect_error(&s, "a long name with a NUL inside it");
    memset(&s, 0, sizeof(s)); /* a pax path with a NUL inside */
    header(&s, "PaxHeaders/x", NULL, 15, 'x');
    body(&s, "15 path=a\0b.jp\n", 15);
    member(&s, "x", "x");
    end(&s);
    expect_error(&s, "a pax path that is empty, too long or holds a NUL");
}

static void test_fields_refused(void **state)
{
    (void)state;
    static src s;
    memset(&s, 0, sizeof(s));
    unsigned char *h = header(&s, "person/1.jpg", NULL, 0, '0');
    h[0] = 'q';
    end(&s);
    expect_error(&s, "wrong checksum");
    memset(&s, 0, sizeof(s));
    h = header(&s, "person/1.jpg", NULL, 0, '0');
    memcpy(h + 124, "00000000x12", 11);
    sum(h, false);
    end(&s);
    expect_error(&s, "a size that is not a number");
    memset(&s, 0, sizeof(s));
    h = header(&s, "person/1.jpg", NULL, 0, '0');
    memset(h + 257, 0, 8);
    sum(h, false);
    end(&s);
    expect_error(&s, "not a ustar or GNU tar header");
    memset(&s, 0, sizeof(s)); /* bigger than the bound */
    header(&s, "person/1.jpg", NULL, (1 << 20) + 1, '0');
    expect_error(&s, "member person/1.jpg: 1048577 bytes (at most 1048576)");
    memset(&s, 0, sizeof(s));
    header(&s, "PaxHeaders/x", NULL, 11, 'x');
    body(&s, "11 size=-5\n", 11);
    member(&s, "x", "x");
    end(&s);
    expect_error(&s, "a pax size that is not a decimal number");
    memset(&s, 0, sizeof(s));
    header(&s, "PaxHeaders/x", NULL, 9, 'x');
    body(&s, "99 path=\n", 9);
    member(&s, "x", "x");
    end(&s);
    expect_error(&s, "a pax header record that is not");
}

static void test_truncation_names_the_member(void **state)
{
    (void)state;
    static src s;
    memset(&s, 0, sizeof(s));
    member(&s, "person/1.jpg", "one");
    header(&s, "manifest.jsonl", NULL, 700, '0');
    s.len += 100; /* 100 of its 700 bytes */
    expect_error(&s, "member manifest.jsonl: the archive ends inside it (truncated)");
    memset(&s, 0, sizeof(s));
    member(&s, "person/1.jpg", "one");
    expect_error(&s, "ends without its end marker (truncated after person/1.jpg)");
    memset(&s, 0, sizeof(s));
    member(&s, "person/1.jpg", "one");
    s.len += 200; /* half a header */
    expect_error(&s, "ends inside a header");
    memset(&s, 0, sizeof(s)); /* one zero block then the end: accepted, as GNU tar does */
    member(&s, "person/1.jpg", "one");
    s.len += 512;
    bulk_tar_member m;
    start(&s);
    assert_int_equal(bulk_tar_next(&t, &m), BULK_TAR_MEMBER);
    assert_int_equal(bulk_tar_next(&t, &m), BULK_TAR_END);
    memset(&s, 0, sizeof(s)); /* a zero block, then a header */
    member(&s, "person/1.jpg", "one");
    s.len += 512;
    member(&s, "person/2.jpg", "two");
    expect_error(&s, "a zero block inside the archive");
}

static void test_looks_like(void **state)
{
    (void)state;
    static src s;
    memset(&s, 0, sizeof(s));
    member(&s, "person/1.jpg", "one");
    assert_true(bulk_tar_looks_like(s.buf));
    s.buf[3] ^= 1;
    assert_false(bulk_tar_looks_like(s.buf));
    memset(s.buf, 0, 512);
    assert_false(bulk_tar_looks_like(s.buf));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ustar_members_read_in_any_chunks),
        cmocka_unit_test(test_gnu_long_name_and_pax_records),
        cmocka_unit_test(test_link_names_and_global_records_keep_the_pending_name),
        cmocka_unit_test(test_base256_size_and_signed_checksum),
        cmocka_unit_test(test_names_refused),
        cmocka_unit_test(test_fields_refused),
        cmocka_unit_test(test_truncation_names_the_member),
        cmocka_unit_test(test_looks_like),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
