/*
 * fuzz_multipart.c — the streaming multipart/form-data reader: a body fed
 * in random chunks, as upload bodies arrive from the network.
 *
 * Input: byte 0 seeds the chunk sizes; when its top bit is set, the input
 * up to the first '\n' is the Content-Type (so the boundary parameter
 * parser is fuzzed too), otherwise the Content-Type is fixed with the
 * boundary "XbOuNdArY" (the one the unit tests use). The rest is the body.
 *
 * Invariants beyond "no crash":
 *  - chunking does not matter: fed whole, or in random chunks (1 byte up
 *    to a few hundred), the reader ends the same way (feed and finish
 *    results, file found, filename, part type, error text) and the sink
 *    receives exactly the same bytes;
 *  - the sink is never called with 0 bytes, receives at most as many
 *    bytes as the body has, and nothing unless a file part was found;
 *  - an error is sticky: feeding more after a failed feed fails the same.
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/multipart.h"
#include "core/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIXED_CT "multipart/form-data; boundary=XbOuNdArY"

/* How one reader ended. */
typedef struct {
    bool created;
    cb_err feed, finish;
    bool found;
    buf_t out;
    char filename[MULTIPART_MAX_HEADER];
    char type[MULTIPART_MAX_HEADER];
    char error[256];
} result;

static cb_err sink(void *ctx, const char *p, size_t n)
{
    assert(n > 0);
    return buf_append(&((result *)ctx)->out, p, n);
}

/* A small deterministic generator for the chunk sizes. */
static uint32_t next_rand(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

/* Feeds body in chunks (seed 0: all at once), then finishes. */
static void run(result *r, const char *ct, const char *body, size_t len, uint32_t seed)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->out, len + 1);
    multipart_t *m = multipart_create(ct, sink, r);
    r->created = m != NULL;
    if (m == NULL)
        return;
    size_t off = 0;
    while (off < len && r->feed == CB_EOK) {
        size_t n = len - off;
        if (seed != 0) {
            uint32_t k = next_rand(&seed);
            size_t want = k % 4 == 0 ? 1 : 1 + k % 300; /* single bytes are the nastiest */
            n = want < n ? want : n;
        }
        r->feed = multipart_feed(m, body + off, n);
        off += n;
    }
    if (r->feed != CB_EOK) /* sticky */
        assert(multipart_feed(m, "x", 1) == r->feed);
    r->finish = r->feed == CB_EOK ? multipart_finish(m) : r->feed;
    r->found = multipart_found_file(m);
    snprintf(r->filename, sizeof(r->filename), "%s", multipart_filename(m));
    snprintf(r->type, sizeof(r->type), "%s", multipart_part_type(m));
    const char *e = multipart_error(m);
    snprintf(r->error, sizeof(r->error), "%s", e != NULL ? e : "");
    multipart_destroy(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char *ct = NULL;
    if (data[0] & 0x80) {
        const char *nl = memchr(body, '\n', len);
        if (nl == NULL)
            return 0;
        ct = strndup(body, (size_t)(nl - body));
        len -= (size_t)(nl + 1 - body);
        body = nl + 1;
    }
    result whole, cut;
    run(&whole, ct != NULL ? ct : FIXED_CT, body, len, 0);
    run(&cut, ct != NULL ? ct : FIXED_CT, body, len, data[0] + 1u);

    assert(whole.created == cut.created && whole.feed == cut.feed && whole.finish == cut.finish);
    assert(whole.found == cut.found);
    assert(strcmp(whole.filename, cut.filename) == 0 && strcmp(whole.type, cut.type) == 0);
    assert(strcmp(whole.error, cut.error) == 0);
    assert(whole.out.len == cut.out.len && whole.out.len <= len);
    assert(whole.out.len == 0 || memcmp(whole.out.data, cut.out.data, whole.out.len) == 0);
    assert(whole.found || whole.out.len == 0);

    buf_free(&whole.out);
    buf_free(&cut.out);
    free(ct);
    return 0;
}
