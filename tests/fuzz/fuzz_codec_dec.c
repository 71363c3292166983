/*
 * fuzz_codec_dec.c — the streaming decoder of stored picture bytes
 * (codec_dec_*, codec.h) on arbitrary input. The stored bytes come from
 * the database, not a client, but a damaged or foreign database must
 * never crash the server nor yield bytes.
 *
 * Input: byte 0 chooses zipped (bit 0), encrypted (bit 1) and the piece
 * size the rest is fed in (bits 2-7: 1 << 0..15 bytes, and 0: one piece);
 * the rest is the stored value. Encrypted values are opened with a fixed
 * key (a zero key, written to a temporary key file once).
 *
 * Invariants beyond "no crash":
 *  - the outcome and the plain bytes do not depend on how the stored bytes
 *    are cut into pieces (fed in one piece, then in the chosen ones);
 *  - never more than 64 MiB come out (the decoder's cap);
 *  - codec_decode (memory) agrees with the stream.
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "store/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    unsigned char *p;
    size_t len, cap;
} collected;

static cb_err collect(void *ctx, const void *p, size_t n)
{
    collected *c = ctx;
    assert(n > 0 && c->len + n <= ((size_t)64 << 20));
    if (c->len + n > c->cap) {
        c->cap = 2 * (c->len + n);
        c->p = realloc(c->p, c->cap);
        assert(c->p != NULL);
    }
    memcpy(c->p + c->len, p, n);
    c->len += n;
    return CB_EOK;
}

static cb_err run(const codec_t *c, const uint8_t *p, size_t n, bool z, bool e, size_t piece,
                  collected *out)
{
    codec_dec *d = NULL;
    *out = (collected){0};
    cb_err r = codec_dec_open(c, z, e, collect, out, &d);
    for (size_t off = 0; r == CB_EOK && off < n; off += piece)
        r = codec_dec_feed(d, p + off, n - off < piece ? n - off : piece);
    if (r == CB_EOK)
        r = codec_dec_finish(d, NULL);
    codec_dec_close(d);
    return r;
}

static const codec_t *keyed(void)
{
    static codec_t *c;
    if (c != NULL)
        return c;
    char path[] = "/tmp/crmblob-fuzz-key-XXXXXX";
    int fd = mkstemp(path);
    unsigned char zero[CODEC_KEY_BYTES] = {0};
    assert(fd >= 0 && write(fd, zero, sizeof(zero)) == (ssize_t)sizeof(zero));
    close(fd);
    codec_config cfg = {.key_file = path};
    assert(codec_create(&cfg, &c) == CB_EOK);
    unlink(path);
    log_set_level(LOG_ERROR + 1); /* every damaged input logs: keep the run quiet */
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const codec_t *c = keyed();
    bool z = data[0] & 1, e = (data[0] >> 1) & 1;
    unsigned shift = (data[0] >> 2) & 63;
    size_t piece = shift == 0 || shift > 15 ? size : (size_t)1 << (shift - 1);
    collected whole, cut;
    cb_err r1 = run(c, data + 1, size - 1, z, e, size, &whole);
    cb_err r2 = run(c, data + 1, size - 1, z, e, piece, &cut);
    assert((r1 == CB_EOK) == (r2 == CB_EOK));
    if (r1 == CB_EOK) {
        assert(whole.len == cut.len && (whole.len == 0 || memcmp(whole.p, cut.p, whole.len) == 0));
        void *mem = NULL;
        size_t mem_len = 0;
        assert(codec_decode(c, data + 1, size - 1, z, e, &mem, &mem_len) == CB_EOK);
        assert(mem_len == whole.len && (mem_len == 0 || memcmp(mem, whole.p, mem_len) == 0));
        free(mem);
    }
    free(whole.p);
    free(cut.p);
    return 0;
}
