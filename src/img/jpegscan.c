/*
 * jpegscan.c — the JPEG data check of jpegscan.h on libjpeg.
 *
 * Invariants:
 * - libjpeg's errors leave through longjmp back into scan(); everything
 *   libjpeg allocates lives in its own pools and is freed by
 *   jpeg_destroy_decompress on both paths; nothing of ours is allocated
 *   between setjmp and longjmp.
 * - Data that ends early, or cannot be read, makes the source warn
 *   JWRN_JPEG_EOF (as libjpeg's own sources do); that warning ends the
 *   check at once with a failure, other warnings when there are 100.
 * - The progress monitor ends the check (longjmp, as an error does) once
 *   the decoder reaches scan JPEGSCAN_MAX_SCANS + 1.
 */
#include "img/jpegscan.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jerror.h>
#include <jpeglib.h>

#include "core/io.h"

/* 1/8: each 8×8 block becomes one pixel. */
#define SCAN_DENOM 8
#define READ_CHUNK (64 * 1024)
#define MAX_WARNINGS 100

struct scan_err {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
};

/* libjpeg calls this at least once per row of blocks, also while it
 * absorbs the scans of a progressive picture. */
struct scan_progress {
    struct jpeg_progress_mgr pub;
    struct scan_err *err;
};

static void on_error(j_common_ptr c)
{
    longjmp(((struct scan_err *)c->err)->jump, 1);
}

/* Warnings (level < 0): the early end fails the check, and so does a
 * hundredth warning (libvips' loader stops there too: damaged data can
 * warn once per block). Trace messages (level > 0) are ignored; nothing
 * is printed. */
static void on_message(j_common_ptr c, int level)
{
    if (level >= 0)
        return;
    if (c->err->msg_code == JWRN_JPEG_EOF || ++c->err->num_warnings >= MAX_WARNINGS)
        longjmp(((struct scan_err *)c->err)->jump, 1);
}

static void on_progress(j_common_ptr c)
{
    j_decompress_ptr d = (j_decompress_ptr)c;
    if (d->input_scan_number > JPEGSCAN_MAX_SCANS)
        longjmp(((struct scan_progress *)c->progress)->err->jump, 1);
}

/* Attaches the data source to a decompressor just created. */
typedef void (*attach_fn)(j_decompress_ptr d, void *ctx);

/* Reads the whole scan at 1/SCAN_DENOM from the source attach sets up. */
static bool scan(attach_fn attach, void *ctx)
{
    struct jpeg_decompress_struct d;
    struct scan_err e;
    struct scan_progress p = {.pub.progress_monitor = on_progress, .err = &e};
    volatile bool ok = false;
    memset(&d, 0, sizeof(d)); /* destroying it is safe even if creating it fails */
    d.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = on_error;
    e.pub.emit_message = on_message;
    if (setjmp(e.jump) != 0)
        goto out;
    jpeg_create_decompress(&d);
    d.progress = &p.pub;
    attach(&d, ctx);
    jpeg_read_header(&d, TRUE);
    d.scale_num = 1;
    d.scale_denom = SCAN_DENOM;
    d.dct_method = JDCT_IFAST;
    d.do_fancy_upsampling = FALSE;
    jpeg_start_decompress(&d);
    JSAMPARRAY row = (*d.mem->alloc_sarray)((j_common_ptr)&d, JPOOL_IMAGE,
                                            d.output_width * (JDIMENSION)d.output_components, 1);
    while (d.output_scanline < d.output_height)
        jpeg_read_scanlines(&d, row, 1);
    ok = true;
out:
    jpeg_destroy_decompress(&d);
    return ok;
}

/* ---- a source over fd[0, size) read with pread ---- */

struct fd_src {
    struct jpeg_source_mgr pub;
    int fd;
    int64_t size, pos;
    JOCTET buf[READ_CHUNK];
};

static const JOCTET fake_eoi[2] = {0xFF, JPEG_EOI};

static void src_init(j_decompress_ptr d)
{
    (void)d;
}

static void src_term(j_decompress_ptr d)
{
    (void)d;
}

static boolean src_fill(j_decompress_ptr d)
{
    struct fd_src *s = (struct fd_src *)d->src;
    int64_t left = s->size - s->pos;
    size_t want = left < READ_CHUNK ? (size_t)left : READ_CHUNK;
    ssize_t n = want > 0 ? io_pread(s->fd, s->buf, want, s->pos) : 0;
    if (n <= 0) {
        /* The warning ends the check (on_message); the marker keeps the
         * source well-formed for any error manager, as libjpeg's own do. */
        s->pub.next_input_byte = fake_eoi;
        s->pub.bytes_in_buffer = sizeof(fake_eoi);
        WARNMS(d, JWRN_JPEG_EOF);
        return TRUE;
    }
    s->pos += n;
    s->pub.next_input_byte = s->buf;
    s->pub.bytes_in_buffer = (size_t)n;
    return TRUE;
}

/* Skips within the buffer, else moves the read position (past the end
 * is clamped: the next fill then reports the early end). */
static void src_skip(j_decompress_ptr d, long n)
{
    struct fd_src *s = (struct fd_src *)d->src;
    if (n <= 0)
        return;
    if ((size_t)n <= s->pub.bytes_in_buffer) {
        s->pub.next_input_byte += n;
        s->pub.bytes_in_buffer -= (size_t)n;
        return;
    }
    int64_t ahead = (int64_t)n - (int64_t)s->pub.bytes_in_buffer;
    s->pos = ahead < s->size - s->pos ? s->pos + ahead : s->size;
    s->pub.bytes_in_buffer = 0;
}

static void attach_fd(j_decompress_ptr d, void *ctx)
{
    struct fd_src *s = ctx;
    s->pub.init_source = src_init;
    s->pub.fill_input_buffer = src_fill;
    s->pub.skip_input_data = src_skip;
    s->pub.resync_to_restart = jpeg_resync_to_restart;
    s->pub.term_source = src_term;
    d->src = &s->pub;
}

bool jpegscan_fd(int fd, int64_t size)
{
    struct fd_src *s = malloc(sizeof(*s)); /* 64 KiB: not on the stack */
    if (s == NULL)
        return false;
    *s = (struct fd_src){.fd = fd, .size = size < 0 ? 0 : size};
    bool ok = scan(attach_fd, s);
    free(s);
    return ok;
}

struct mem_ctx {
    const unsigned char *bytes;
    size_t len;
};

/* libjpeg's own memory source; it warns JWRN_JPEG_EOF at an early end. */
static void attach_mem(j_decompress_ptr d, void *ctx)
{
    struct mem_ctx *m = ctx;
    jpeg_mem_src(d, m->bytes, (unsigned long)m->len);
}

bool jpegscan_mem(const void *bytes, size_t len)
{
    struct mem_ctx m = {.bytes = bytes, .len = len};
    return scan(attach_mem, &m);
}

/* ---- counting scans from the markers ---- */

#define M_SOI 0xD8
#define M_EOI 0xD9
#define M_SOS 0xDA

/* Markers that stand alone (no length): TEM, RST0..7; 0x00 is a stuffed
 * 0xFF inside entropy-coded data. */
static bool standalone(unsigned char m)
{
    return m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD7);
}

/* Outside a marker segment every byte up to the next 0xFF is skipped:
 * that is entropy-coded data (where 0xFF is always stuffed or a restart
 * marker) or garbage, which libjpeg skips too. */
int jpegscan_count_scans(const void *bytes, size_t len, int stop_after)
{
    const unsigned char *p = bytes;
    size_t i = 2;
    int scans = 0;
    if (len < 2 || p[0] != 0xFF || p[1] != M_SOI)
        return 0;
    while (i + 1 < len && scans <= stop_after) {
        unsigned char m = p[i + 1];
        if (p[i] != 0xFF || m == 0xFF) {
            i++;
            continue;
        }
        if (m == M_EOI)
            break;
        if (standalone(m)) {
            i += 2;
            continue;
        }
        if (m == M_SOS)
            scans++;
        if (i + 3 >= len)
            break;
        i += 2 + (((size_t)p[i + 2] << 8) | p[i + 3]); /* the segment */
    }
    return scans;
}
