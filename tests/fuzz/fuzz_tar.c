/*
 * fuzz_tar.c — the streaming tar reader of the import (src/bulk/tar.c):
 * bulk_tar_next and bulk_tar_read over the input, handed out in chunks
 * whose sizes the input's first byte picks (a short read must change
 * nothing).
 *
 * Input: byte 0 the chunk size seed, the rest the archive.
 *
 * Invariants beyond "no crash":
 *  - every member handed out has a name that is relative, shorter than
 *    BULK_TAR_NAME_MAX, with no empty, "." or ".." part, no NUL inside,
 *    and a size in 0..max_member;
 *  - reading a member gives exactly its size in bytes, never more;
 *  - an error says why (a non-empty text) and stays an error;
 *  - the reader never reads past the input, and the same input read in
 *    one go gives the same members and the same end.
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bulk/bulk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MEMBER (1 << 20)

typedef struct {
    const uint8_t *p;
    size_t n, off, chunk;
} src;

static int feed(void *ctx, void *buf, size_t n, size_t *got)
{
    src *s = ctx;
    size_t k = s->n - s->off;
    if (k > n)
        k = n;
    if (k > s->chunk)
        k = s->chunk;
    memcpy(buf, s->p + s->off, k);
    s->off += k;
    *got = k;
    return 0;
}

static void check_name(const char *f)
{
    assert(f[0] != '\0' && f[0] != '/' && strlen(f) <= BULK_TAR_NAME_MAX);
    for (const char *p = f;;) {
        size_t len = strcspn(p, "/");
        assert(len > 0 && !(len == 1 && p[0] == '.') && !(len == 2 && memcmp(p, "..", 2) == 0));
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
}

/* Reads the whole archive; a hash of what was handed out, and the end. */
static uint64_t walk(src *s, bulk_tar_reader *t, int *end)
{
    bulk_tar_member m;
    uint64_t h = 1469598103934665603ULL;
    unsigned char buf[700];
    int rc;
    bulk_tar_reader_init(t, feed, s, MAX_MEMBER);
    while ((rc = bulk_tar_next(t, &m)) == BULK_TAR_MEMBER) {
        check_name(m.name);
        assert(m.size >= 0 && m.size <= MAX_MEMBER);
        for (const char *c = m.name; *c; c++)
            h = (h ^ (uint8_t)*c) * 1099511628211ULL;
        int64_t total = 0;
        size_t got;
        if (m.kind == BULK_TAR_FILE && m.name[0] != 's') /* some left for next to skip */
            while (bulk_tar_read(t, buf, sizeof(buf), &got) == 0 && got > 0) {
                total += (int64_t)got;
                assert(total <= m.size);
            }
        h = (h ^ (uint64_t)total) * 1099511628211ULL;
        assert(s->off <= s->n);
    }
    if (rc == BULK_TAR_ERROR) {
        assert(t->why[0] != '\0' && t->failed);
        assert(bulk_tar_next(t, &m) == BULK_TAR_ERROR);
    }
    *end = rc;
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bulk_tar_reader t; /* 66 KiB: not on the stack */
    if (size < 1)
        return 0;
    src a = {data + 1, size - 1, 0, (size_t)data[0] * 7 + 1};
    src b = {data + 1, size - 1, 0, SIZE_MAX};
    int end_a, end_b;
    uint64_t ha = walk(&a, &t, &end_a);
    uint64_t hb = walk(&b, &t, &end_b);
    assert(end_a == end_b);
    if (end_a != BULK_TAR_ERROR)
        assert(ha == hb);
    return 0;
}
