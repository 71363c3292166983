/*
 * img_vips.c — the image pipeline on libvips (see img.h), as it runs in
 * the image workers (crmblob-img, img_serve.c) and the unit tests; the
 * server itself reaches it through img_remote.c.
 *
 * Invariants:
 * - After img_init only the PNG, JPEG, GIF and TIFF loader families can run;
 *   every other loader and every operation libvips marks untrusted is
 *   blocked process-wide. On top of that the first bytes must sniff as one
 *   of the four, and validation calls that format's own loader (for a
 *   JPEG's data, jpegscan: libjpeg, the decoder that loader uses), so the
 *   bytes and the decoder always agree.
 * - The pixel limit is checked on a header-only open (libvips loads lazily)
 *   before anything asks for pixels, in img_validate* and img_variant alike;
 *   before that, a JPEG's scans and a TIFF's pages are counted from the
 *   bytes (jpegscan.h, tiffpages.h) and too many refused (CB_EWORK), so
 *   no decoder ever starts on such a picture.
 * - In a worker of the small lane (img_config.lane_pixels), a picture of
 *   more pixels than that is answered CB_ETOOLARGE from its header.
 * - Descriptors are read with pread over exactly [0, size): the caller's file
 *   offset is never moved and no descriptor is duplicated (nothing leaks into
 *   a child after fork/exec, and concurrent readers of one spool file agree).
 * - Every VipsImage/VipsSource made here is unreffed on every path; libvips'
 *   g_malloc'd output buffers are copied into malloc'd ones for the caller.
 * - Placeholder PNGs at natural size are rendered once, under a mutex, and
 *   never freed before img_shutdown.
 */
#include "img/img.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vips/vips.h>

#include "core/io.h"
#include "core/log.h"
#include "img/jpegscan.h"
#include "img/tiffpages.h"

#define DEFAULT_PIXEL_LIMIT 50000000
#define DEFAULT_CACHE_MB 16
#define CACHE_MAX_OPS 100
#define NATURAL_SIDE 128
#define PLACEHOLDER_MAX_SIDE 1024 /* asked placeholder sizes are clamped to this */
#define SUPERSAMPLE_MAX_SIDE 1024 /* placeholders are drawn at up to this, then shrunk */

static const char REASON_TYPE[] = "not a PNG, JPEG, GIF or TIFF image";
static const char REASON_HEADER[] = "image header cannot be decoded";
static const char REASON_DATA[] = "image data is truncated or corrupt";

/* The loader families left usable; every subclass of each is unblocked. */
static const char *const allowed_loaders[] = {
    "VipsForeignLoadPng",
    "VipsForeignLoadJpeg",
    "VipsForeignLoadNsgif",
    "VipsForeignLoadTiff",
};

typedef int (*source_loader)(VipsSource *source, VipsImage **out, ...);

static struct {
    bool started;
    int64_t pixel_limit; /* read-only after img_init */
    int64_t lane_pixels; /* 0: not a small-lane worker */
} state;

static struct {
    pthread_mutex_t lock;
    unsigned char *png[IMG_BLANK__COUNT]; /* natural-size PNGs, rendered on first use */
    size_t len[IMG_BLANK__COUNT];
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t avif_once = PTHREAD_ONCE_INIT;
static bool avif_ok;

/* ---- errors ---- */

static cb_err fail(cb_err e, char *reason, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes the reason (when the caller gave room for one) and returns e. */
static cb_err fail(cb_err e, char *reason, size_t cap, const char *fmt, ...)
{
    assert(e != CB_EOK);
    if (reason != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, cap, fmt, ap);
        va_end(ap);
    }
    return e;
}

/* libvips keeps one process-wide error buffer: copy it to the debug log and
 * clear it so that old messages do not pile up. The client's reason never
 * comes from it (another thread's failure may share one copy). */
static void note_vips_error(const char *what)
{
    char *msg = vips_error_buffer_copy();
    log_debug("img: %s: %s", what, msg != NULL ? msg : "");
    g_free(msg);
    vips_error_clear();
}

/* libvips messages (g_log in the "VIPS" domain) go to the process log
 * instead of raw stderr lines: criticals as warnings, the per-image
 * warnings (bad metadata, ignored profiles) as debug. */
static void route_vips_log(const gchar *domain, GLogLevelFlags level, const gchar *msg,
                           gpointer user)
{
    (void)domain;
    (void)user;
    bool serious = (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) != 0;
    log_msg(serious ? LOG_WARN : LOG_DEBUG, "libvips: %s", msg);
}

/* ---- init ---- */

static void block_loaders(void)
{
    vips_block_untrusted_set(TRUE);
    vips_operation_block_set("VipsForeignLoad", TRUE);
    for (size_t i = 0; i < sizeof(allowed_loaders) / sizeof(allowed_loaders[0]); i++)
        vips_operation_block_set(allowed_loaders[i], FALSE);
}

cb_err img_init(const img_config *cfg)
{
    img_config c = cfg != NULL ? *cfg : (img_config){0};
    if (c.pixel_limit < 0 || c.cache_mb < 0 || c.threads < 0)
        return CB_EINTERNAL;
    state.pixel_limit = c.pixel_limit > 0 ? c.pixel_limit : DEFAULT_PIXEL_LIMIT;
    state.lane_pixels = c.lane_pixels > 0 ? c.lane_pixels : 0;
    if (!state.started) {
        if (vips_init("crmblob") != 0) {
            note_vips_error("vips_init");
            return CB_EINTERNAL;
        }
        g_log_set_handler("VIPS", G_LOG_LEVEL_MASK, route_vips_log, NULL);
        state.started = true;
    }
    vips_leak_set(FALSE);
    block_loaders();
    vips_cache_set_max_mem((size_t)(c.cache_mb > 0 ? c.cache_mb : DEFAULT_CACHE_MB) << 20);
    vips_cache_set_max(CACHE_MAX_OPS);
    vips_concurrency_set(c.threads > 0 ? c.threads : 1);
    return CB_EOK;
}

/* In process (the worker itself, the unit tests): the pipeline is this
 * process, which is answering. */
cb_err img_ping(char *why, size_t why_cap)
{
    (void)why;
    (void)why_cap;
    return CB_EOK;
}

void img_shutdown(void)
{
    pthread_mutex_lock(&cache.lock);
    for (int i = 0; i < IMG_BLANK__COUNT; i++) {
        free(cache.png[i]);
        cache.png[i] = NULL;
        cache.len[i] = 0;
    }
    pthread_mutex_unlock(&cache.lock);
    if (state.started)
        vips_shutdown();
    state.started = false;
}

/* ---- reading a descriptor range ---- */

/* A libvips source over fd[0, size), read with pread. */
struct fd_range {
    int fd;
    int64_t size;
    int64_t pos;
};

static gint64 range_read(VipsSourceCustom *src, void *buf, gint64 len, gpointer user)
{
    struct fd_range *r = user;
    (void)src;
    assert(r->pos >= 0 && r->pos <= r->size);
    size_t want = (size_t)(len < r->size - r->pos ? len : r->size - r->pos);
    ssize_t n = io_pread(r->fd, buf, want, r->pos);
    if (n < 0)
        return -1;
    r->pos += n;
    return n;
}

static gint64 range_seek(VipsSourceCustom *src, gint64 off, int whence, gpointer user)
{
    struct fd_range *r = user;
    (void)src;
    int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? r->pos : r->size;
    if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END)
        return -1;
    if (off < -base || off > r->size - base)
        return -1;
    r->pos = base + off;
    return r->pos;
}

static VipsSource *range_source(struct fd_range *r)
{
    VipsSourceCustom *src = vips_source_custom_new();
    if (src == NULL)
        return NULL;
    g_signal_connect(src, "read", G_CALLBACK(range_read), r);
    g_signal_connect(src, "seek", G_CALLBACK(range_seek), r);
    return VIPS_SOURCE(src);
}

/* ---- header and validation ---- */

static source_loader loader_for(img_type t)
{
    switch (t) {
    case IMG_PNG:
        return vips_pngload_source;
    case IMG_JPEG:
        return vips_jpegload_source;
    case IMG_GIF:
        return vips_gifload_source;
    case IMG_TIFF:
        return vips_tiffload_source;
    case IMG_UNKNOWN:
        break;
    }
    return NULL;
}

/* Opens the header only (libvips decodes pixels lazily) with the loader of
 * the sniffed type; truncation is an error once pixels are asked for.
 * GIF and TIFF open every frame/page stacked, so that a damaged second
 * frame is found too and the pixel limit counts them all. */
static cb_err open_header(VipsSource *src, img_type type, VipsImage **img, char *reason, size_t cap)
{
    source_loader load = loader_for(type);
    assert(load != NULL);
    int rc = type == IMG_GIF || type == IMG_TIFF
                 ? load(src, img, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                        VIPS_FAIL_ON_TRUNCATED, "n", -1, NULL)
                 : load(src, img, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                        VIPS_FAIL_ON_TRUNCATED, NULL);
    if (rc != 0) {
        note_vips_error("header");
        *img = NULL;
        return fail(CB_EBADREQ, reason, cap, "%s", REASON_HEADER);
    }
    return CB_EOK;
}

static cb_err check_pixels(const VipsImage *img, char *reason, size_t cap)
{
    int64_t w = img->Xsize, h = img->Ysize;
    if (state.lane_pixels > 0 && w * h > state.lane_pixels)
        return fail(CB_ETOOLARGE, reason, cap, "too large for the small lane");
    if (w * h <= state.pixel_limit)
        return CB_EOK;
    return fail(CB_EBADREQ, reason, cap,
                "image is %" PRId64 "\u00d7%" PRId64 " = %" PRId64
                " pixels, more than the limit of %" PRId64,
                w, h, w * h, state.pixel_limit);
}

/* The sink's write callback: the pixels were decoded, nothing to keep. */
static int discard_region(VipsRegion *region, VipsRect *area, void *user)
{
    (void)region;
    (void)area;
    (void)user;
    return 0;
}

static void fill_info(VipsImage *img, img_type type, img_info *out)
{
    int o = 1;
    if (vips_image_get_typeof(img, VIPS_META_ORIENTATION) != 0 &&
        vips_image_get_int(img, VIPS_META_ORIENTATION, &o) != 0)
        o = 1;
    int page_height = vips_image_get_page_height(img); /* one frame of a stack */
    out->type = type;
    out->width = img->Xsize;
    out->height = page_height > 0 ? page_height : img->Ysize;
    out->orientation = o >= 1 && o <= 8 ? o : 1;
}

static bool gif_complete(const unsigned char *g, size_t n);

/* The work a decoder would do, bounded from the bytes alone: a JPEG's
 * scans (each one a pass over every block) and a TIFF's pages (libtiff
 * walks the chain from the start for each). */
static cb_err check_work(const void *bytes, size_t len, img_type type, char *reason, size_t cap)
{
    if (type == IMG_JPEG &&
        jpegscan_count_scans(bytes, len, JPEGSCAN_MAX_SCANS) > JPEGSCAN_MAX_SCANS)
        return fail(CB_EWORK, reason, cap, "the JPEG has more than %d scans", JPEGSCAN_MAX_SCANS);
    if (type == IMG_TIFF && tiffpages_count(bytes, len, TIFFPAGES_MAX) > TIFFPAGES_MAX)
        return fail(CB_EWORK, reason, cap, "the TIFF has more than %d pages", TIFFPAGES_MAX);
    return CB_EOK;
}

/* fd[0, size) in a malloc'd buffer, or NULL. */
static unsigned char *read_all(int fd, int64_t size)
{
    unsigned char *b = malloc(size > 0 ? (size_t)size : 1);
    if (b != NULL && io_pread_full(fd, b, (size_t)size, 0) != (size_t)size) {
        free(b);
        return NULL;
    }
    return b;
}

/* What the bytes of fd[0, size) tell before any decoder runs: the GIF's
 * block structure whole, the JPEG's scans and the TIFF's pages not too
 * many. */
static cb_err check_bytes_fd(int fd, int64_t size, img_type type, char *reason, size_t cap)
{
    if (type != IMG_GIF && type != IMG_JPEG && type != IMG_TIFF)
        return CB_EOK;
    unsigned char *b = read_all(fd, size);
    cb_err e = CB_EOK;
    if (b == NULL)
        e = fail(CB_EINTERNAL, reason, cap, "cannot read the image");
    else if (type == IMG_GIF && !gif_complete(b, (size_t)size))
        e = fail(CB_EBADREQ, reason, cap, "%s", REASON_DATA);
    else
        e = check_work(b, (size_t)size, type, reason, cap);
    free(b);
    return e;
}

/* Where the picture's bytes are: fd[0, size) when fd >= 0, else bytes[0, size). */
struct input {
    int fd;
    int64_t size;
    const void *bytes;
};

/* Every pixel decoded: a JPEG's data by jpegscan (on this thread, at 1/8
 * scale: see jpegscan.h), the other formats' pixels into a no-op sink. */
static bool decodes_whole(VipsImage *img, img_type type, const struct input *in)
{
    if (type != IMG_JPEG)
        return vips_sink_disc(img, discard_region, NULL) == 0;
    if (in->fd >= 0)
        return jpegscan_fd(in->fd, in->size);
    return jpegscan_mem(in->bytes, (size_t)in->size);
}

/* Header, pixel limit, then every pixel decoded. */
static cb_err validate_source(VipsSource *src, img_type type, const struct input *in, img_info *out,
                              char *reason, size_t cap)
{
    VipsImage *img = NULL;
    cb_err e = open_header(src, type, &img, reason, cap);
    if (e != CB_EOK)
        goto out;
    e = check_pixels(img, reason, cap);
    if (e != CB_EOK)
        goto out;
    if (!decodes_whole(img, type, in)) {
        note_vips_error("decode");
        e = fail(CB_EBADREQ, reason, cap, "%s", REASON_DATA);
        goto out;
    }
    if (out != NULL)
        fill_info(img, type, out);
out:
    if (img != NULL)
        g_object_unref(img);
    return e;
}

static img_type sniff_fd(int fd, int64_t size)
{
    unsigned char head[IMG_SNIFF_BYTES];
    size_t want = size < IMG_SNIFF_BYTES ? (size_t)size : IMG_SNIFF_BYTES;
    ssize_t n = io_pread(fd, head, want, 0);
    return n > 0 ? img_sniff(head, (size_t)n) : IMG_UNKNOWN;
}

/* libvips' GIF decoder quietly shows fewer frames of an animation cut
 * short, so the GIF's own block structure is walked: header, screen
 * descriptor and colour table, then extensions and images made of
 * sub-blocks, up to the trailer. Bytes after the trailer are ignored. */
#define GIF_TRAILER 0x3B
#define GIF_EXTENSION 0x21
#define GIF_IMAGE 0x2C

/* Skips sub-blocks (length byte, data) up to the empty one; 0 if cut. */
static size_t gif_skip_blocks(const unsigned char *g, size_t n, size_t i)
{
    while (i < n && g[i] != 0)
        i += 1u + g[i];
    return i < n ? i + 1 : 0;
}

/* Size of the colour table announced by a flags byte. */
static size_t gif_table(unsigned char flags)
{
    return (flags & 0x80) ? 3u * (2u << (flags & 7)) : 0;
}

static bool gif_complete(const unsigned char *g, size_t n)
{
    size_t i = 13;
    if (n < 13)
        return false;
    i += gif_table(g[10]);
    while (i < n) {
        if (g[i] == GIF_TRAILER)
            return true;
        if (g[i] == GIF_EXTENSION && i + 2 <= n)
            i = gif_skip_blocks(g, n, i + 2);
        else if (g[i] == GIF_IMAGE && i + 10 < n)
            i = gif_skip_blocks(g, n, i + 10 + gif_table(g[i + 9]) + 1);
        else
            return false;
        if (i == 0)
            return false;
    }
    return false;
}

cb_err img_validate_fd(int fd, int64_t size, img_info *out, char *reason, size_t reason_cap)
{
    assert(state.started);
    assert(fd >= 0 && size >= 0);
    img_type type = sniff_fd(fd, size);
    if (type == IMG_UNKNOWN)
        return fail(CB_EBADREQ, reason, reason_cap, "%s", REASON_TYPE);
    cb_err e = check_bytes_fd(fd, size, type, reason, reason_cap);
    if (e != CB_EOK)
        return e;
    struct fd_range range = {.fd = fd, .size = size, .pos = 0};
    VipsSource *src = range_source(&range);
    if (src == NULL)
        return fail(CB_EINTERNAL, reason, reason_cap, "cannot read the image");
    struct input in = {.fd = fd, .size = size};
    e = validate_source(src, type, &in, out, reason, reason_cap);
    g_object_unref(src);
    return e;
}

cb_err img_validate(const void *bytes, size_t len, img_info *out, char *reason, size_t reason_cap)
{
    assert(state.started);
    assert(bytes != NULL || len == 0);
    img_type type = img_sniff(bytes, len);
    if (type == IMG_UNKNOWN)
        return fail(CB_EBADREQ, reason, reason_cap, "%s", REASON_TYPE);
    if (type == IMG_GIF && !gif_complete(bytes, len))
        return fail(CB_EBADREQ, reason, reason_cap, "%s", REASON_DATA);
    cb_err e = check_work(bytes, len, type, reason, reason_cap);
    if (e != CB_EOK)
        return e;
    VipsSource *src = vips_source_new_from_memory(bytes, len);
    if (src == NULL)
        return fail(CB_EINTERNAL, reason, reason_cap, "cannot read the image");
    struct input in = {.fd = -1, .size = (int64_t)len, .bytes = bytes};
    e = validate_source(src, type, &in, out, reason, reason_cap);
    g_object_unref(src);
    return e;
}

/* ---- encoding ---- */

/* Replaces *img by next (the result of one step of a pipeline). */
static void advance(VipsImage **img, VipsImage *next)
{
    g_object_unref(*img);
    *img = next;
}

/* 16-bit and float images down to 8 bits per sample, for the 8-bit formats. */
static int to_8bit(VipsImage **img)
{
    VipsImage *next = NULL;
    int rc;
    if ((*img)->BandFmt == VIPS_FORMAT_UCHAR)
        return 0;
    if ((*img)->Type == VIPS_INTERPRETATION_RGB16)
        rc = vips_colourspace(*img, &next, VIPS_INTERPRETATION_sRGB, NULL);
    else if ((*img)->Type == VIPS_INTERPRETATION_GREY16)
        rc = vips_colourspace(*img, &next, VIPS_INTERPRETATION_B_W, NULL);
    else
        rc = vips_cast_uchar(*img, &next, NULL);
    if (rc == 0)
        advance(img, next);
    return rc;
}

/* Alpha composed onto white, for formats without transparency. */
static int flatten_white(VipsImage **img)
{
    double white[3] = {255, 255, 255};
    VipsImage *next = NULL;
    if (!vips_image_hasalpha(*img))
        return 0;
    int colour_bands = (*img)->Bands - 1;
    assert(colour_bands >= 1);
    VipsArrayDouble *bg = vips_array_double_new(white, colour_bands < 3 ? colour_bands : 3);
    int rc = vips_flatten(*img, &next, "background", bg, NULL);
    vips_area_unref(VIPS_AREA(bg));
    if (rc == 0)
        advance(img, next);
    return rc;
}

static int save_jpeg(VipsImage *img, void **buf, size_t *len)
{
    return vips_jpegsave_buffer(img, buf, len, "Q", 85, "strip", TRUE, "optimize_coding", TRUE,
                                NULL);
}

static int save_png(VipsImage *img, void **buf, size_t *len)
{
    return vips_pngsave_buffer(img, buf, len, "compression", 6, "strip", TRUE, NULL);
}

static int save_gif(VipsImage *img, void **buf, size_t *len)
{
    return vips_gifsave_buffer(img, buf, len, "strip", TRUE, NULL);
}

static int save_tiff(VipsImage *img, void **buf, size_t *len)
{
    return vips_tiffsave_buffer(img, buf, len, "compression", VIPS_FOREIGN_TIFF_COMPRESSION_DEFLATE,
                                "strip", TRUE, NULL);
}

static int save_webp(VipsImage *img, void **buf, size_t *len)
{
    return vips_webpsave_buffer(img, buf, len, "Q", 80, "strip", TRUE, NULL);
}

static int save_avif(VipsImage *img, void **buf, size_t *len)
{
    return vips_heifsave_buffer(img, buf, len, "compression", VIPS_FOREIGN_HEIF_COMPRESSION_AV1,
                                "bitdepth", 8, "strip", TRUE, NULL);
}

struct encoder {
    img_type type;
    const char *name;
    int (*save)(VipsImage *img, void **buf, size_t *len);
    bool eight_bit; /* the format holds 8 bits per sample at most */
    bool flatten;   /* the format has no alpha */
};

static const struct encoder encoders[] = {
    {IMG_JPEG, "JPEG", save_jpeg, true, true},  {IMG_PNG, "PNG", save_png, false, false},
    {IMG_GIF, "GIF", save_gif, true, false},    {IMG_TIFF, "TIFF", save_tiff, false, false},
    {IMG_WEBP, "WebP", save_webp, true, false}, {IMG_AVIF, "AVIF", save_avif, true, false},
};

static const struct encoder *encoder_for(img_type t)
{
    for (size_t i = 0; i < sizeof(encoders) / sizeof(encoders[0]); i++) {
        if (encoders[i].type == t)
            return &encoders[i];
    }
    return NULL;
}

/* Whether libheif can encode AV1 here: one tiny encode, tried once. */
static void probe_avif(void)
{
    VipsImage *img = NULL;
    void *buf = NULL;
    size_t len = 0;
    avif_ok = vips_black(&img, 16, 16, "bands", 3, NULL) == 0 && save_avif(img, &buf, &len) == 0;
    if (!avif_ok)
        note_vips_error("AVIF probe");
    g_free(buf);
    if (img != NULL)
        g_object_unref(img);
}

/* Moves a g_malloc'd libvips buffer into a malloc'd one. */
static cb_err take_buffer(void *gbuf, size_t len, void **out, size_t *out_len)
{
    void *p = malloc(len > 0 ? len : 1);
    if (p != NULL)
        memcpy(p, gbuf, len);
    g_free(gbuf);
    if (p == NULL)
        return CB_EINTERNAL;
    *out = p;
    *out_len = len;
    return CB_EOK;
}

/* Writes in (not consumed) as type t into a malloc'd *out. */
static cb_err encode(VipsImage *in, img_type t, void **out, size_t *out_len, char *reason,
                     size_t cap)
{
    const struct encoder *enc = encoder_for(t);
    VipsImage *img = in;
    void *buf = NULL;
    size_t len = 0;
    cb_err e = CB_EOK;
    if (enc == NULL)
        return fail(CB_EBADREQ, reason, cap, "unsupported output format");
    if (t == IMG_AVIF)
        pthread_once(&avif_once, probe_avif);
    if (t == IMG_AVIF && !avif_ok)
        return fail(CB_EUNAVAILABLE, reason, cap, "AVIF encoding is not available");
    g_object_ref(img);
    if ((enc->eight_bit && to_8bit(&img) != 0) || (enc->flatten && flatten_white(&img) != 0) ||
        enc->save(img, &buf, &len) != 0) {
        note_vips_error(enc->name);
        e = fail(CB_EINTERNAL, reason, cap, "cannot write the image as %s", enc->name);
        goto out;
    }
    e = take_buffer(buf, len, out, out_len);
    if (e != CB_EOK)
        fail(e, reason, cap, "out of memory");
out:
    g_object_unref(img);
    return e;
}

/* ---- variants ---- */

static int bound(int side)
{
    return side == 0 || side > VIPS_MAX_COORD ? VIPS_MAX_COORD : side;
}

/* Scans or pages, header and pixel limit of bytes, without decoding pixels. */
static cb_err check_header(const void *bytes, size_t len, img_type type, char *reason, size_t cap)
{
    VipsImage *img = NULL;
    cb_err e = check_work(bytes, len, type, reason, cap);
    if (e != CB_EOK)
        return e;
    VipsSource *src = vips_source_new_from_memory(bytes, len);
    if (src == NULL)
        return fail(CB_EINTERNAL, reason, cap, "cannot read the image");
    e = open_header(src, type, &img, reason, cap);
    if (e == CB_EOK)
        e = check_pixels(img, reason, cap);
    if (img != NULL)
        g_object_unref(img);
    g_object_unref(src);
    return e;
}

cb_err img_variant(const void *bytes, size_t len, int w, int h, img_type out_type, void **out,
                   size_t *out_len, char *reason, size_t reason_cap)
{
    assert(state.started);
    assert(bytes != NULL || len == 0);
    assert(out != NULL && out_len != NULL);
    VipsImage *img = NULL;
    img_type in_type = img_sniff(bytes, len);
    if (in_type == IMG_UNKNOWN)
        return fail(CB_EBADREQ, reason, reason_cap, "%s", REASON_TYPE);
    if (w < 0 || h < 0)
        return fail(CB_EBADREQ, reason, reason_cap, "width and height must not be negative");
    cb_err e = check_header(bytes, len, in_type, reason, reason_cap);
    if (e != CB_EOK)
        return e;
    /* Shrink-on-load, EXIF auto-rotation (the 8.14 default), never enlarge;
     * with no bound at all this is decode + rotate + re-encode. */
    if (vips_thumbnail_buffer((void *)bytes, len, &img, bound(w), "height", bound(h), "size",
                              VIPS_SIZE_DOWN, NULL) != 0) {
        note_vips_error("thumbnail");
        return fail(CB_EBADREQ, reason, reason_cap, "%s", REASON_DATA);
    }
    e = encode(img, out_type == IMG_UNKNOWN ? in_type : out_type, out, out_len, reason, reason_cap);
    g_object_unref(img);
    return e;
}

/* ---- placeholders ---- */

/* Drawing happens on an RGBA canvas in memory; coordinates below are
 * fractions of the canvas side so that any size draws the same picture. */
static const double ink_light[4] = {232, 235, 238, 255};  /* SrNoPhoto background */
static const double ink_person[4] = {160, 166, 173, 255}; /* the silhouette */
static const double ink_border[4] = {112, 118, 125, 255};
static const double ink_clear[4] = {0, 0, 0, 0};
static const double ink_outline[4] = {122, 128, 136, 255}; /* document strokes */
static const double ink_paper[4] = {255, 255, 255, 255};
static const double ink_fold[4] = {213, 217, 222, 255};
static const double ink_text[4] = {184, 190, 198, 255};

#define SQRT2 1.41421356237309504880

static double min_d(double a, double b)
{
    return a < b ? a : b;
}

/* Canvas coordinates are never negative, so adding ½ and truncating rounds. */
static int px(double v)
{
    assert(v >= 0);
    return (int)(v + 0.5);
}

static int fill(VipsImage *c, const double ink[4], double x0, double y0, double x1, double y1)
{
    int l = px(x0), t = px(y0), r = px(x1), b = px(y1);
    if (r <= l || b <= t)
        return 0;
    return vips_draw_rect(c, (double *)ink, 4, l, t, r - l, b - t, "fill", TRUE, NULL);
}

static int disc(VipsImage *c, const double ink[4], double cx, double cy, double r)
{
    return vips_draw_circle(c, (double *)ink, 4, px(cx), px(cy), px(r), "fill", TRUE, NULL);
}

/* Head and rounded shoulders (the top of a large disc cut by the bottom
 * edge), grey on a light background. */
static int draw_person(VipsImage *c)
{
    double s = c->Xsize;
    if (fill(c, ink_light, 0, 0, s, s) != 0 ||
        disc(c, ink_person, 0.5 * s, 0.98 * s, 0.40 * s) != 0)
        return -1;
    return disc(c, ink_person, 0.5 * s, 0.36 * s, 0.17 * s);
}

/* The page outline with its top-right corner cut along a 45° diagonal,
 * inset by `in`: row by row where the diagonal runs, one rectangle below. */
static int draw_page(VipsImage *c, const double ink[4], double x0, double y0, double x1, double y1,
                     double cut, double in)
{
    double top = y0 + in, bottom = y1 - in, left = x0 + in;
    double diag_end = y0 + cut;
    for (double y = top; y < diag_end && y < bottom; y += 1) {
        double right = min_d(x1 - in, x1 - cut + (y - y0) - in * SQRT2);
        if (fill(c, ink, left, y, right, y + 1) != 0)
            return -1;
    }
    return fill(c, ink, left, top > diag_end ? top : diag_end, x1 - in, bottom);
}

/* The folded-over corner: the triangle under the diagonal, inset by `in`. */
static int draw_fold(VipsImage *c, const double ink[4], double xl, double yt, double f, double in)
{
    for (double y = yt; y < yt + f - in; y += 1) {
        double right = xl + (y - yt) - in * SQRT2;
        if (fill(c, ink, xl + in, y, right, y + 1) != 0)
            return -1;
    }
    return 0;
}

/* A sheet of paper with a folded corner and four lines of "text", on a
 * transparent background. */
static int draw_document(VipsImage *c)
{
    double s = c->Xsize;
    double x0 = 0.2 * s, x1 = 0.8 * s, y0 = 0.08 * s, y1 = 0.92 * s, f = 0.18 * s;
    double t = 0.028 * s; /* stroke */
    if (fill(c, ink_clear, 0, 0, s, s) != 0 ||
        draw_page(c, ink_outline, x0, y0, x1, y1, f, 0) != 0 ||
        draw_page(c, ink_paper, x0, y0, x1, y1, f, t) != 0 ||
        draw_fold(c, ink_outline, x1 - f, y0, f, 0) != 0 ||
        draw_fold(c, ink_fold, x1 - f, y0, f, t) != 0)
        return -1;
    for (int i = 0; i < 4; i++) {
        double y = (0.42 + 0.11 * i) * s, right = i == 3 ? 0.56 * s : x1 - 0.1 * s;
        if (fill(c, ink_text, x0 + 0.1 * s, y, right, y + 0.04 * s) != 0)
            return -1;
    }
    return 0;
}

/* A w × h RGBA sRGB image in memory, all zero (transparent). */
static VipsImage *canvas(int w, int h)
{
    VipsImage *black = NULL, *srgb = NULL, *mem = NULL;
    if (vips_black(&black, w, h, "bands", 4, NULL) == 0 &&
        vips_copy(black, &srgb, "interpretation", VIPS_INTERPRETATION_sRGB, NULL) == 0)
        mem = vips_image_copy_memory(srgb);
    if (black != NULL)
        g_object_unref(black);
    if (srgb != NULL)
        g_object_unref(srgb);
    return mem;
}

/* Box-filters a supersampled canvas down by an integer factor; premultiplied
 * so that transparent pixels do not darken the edges. */
static int shrink_by(VipsImage **img, int factor)
{
    VipsImage *next = NULL;
    if (factor == 1)
        return 0;
    if (vips_premultiply(*img, &next, NULL) != 0)
        return -1;
    advance(img, next);
    if (vips_shrink(*img, &next, factor, factor, NULL) != 0)
        return -1;
    advance(img, next);
    if (vips_unpremultiply(*img, &next, NULL) != 0)
        return -1;
    advance(img, next);
    if (vips_cast_uchar(*img, &next, NULL) != 0)
        return -1;
    advance(img, next);
    return 0;
}

/* A darker frame, `width` pixels wide, drawn at final resolution so it is crisp. */
static int add_border(VipsImage **img, int width)
{
    VipsImage *mem = vips_image_copy_memory(*img);
    if (mem == NULL)
        return -1;
    advance(img, mem);
    int s = mem->Xsize;
    for (int i = 0; i < width; i++) {
        if (vips_draw_rect(mem, (double *)ink_border, 4, i, i, s - 2 * i, s - 2 * i, "fill", FALSE,
                           NULL) != 0)
            return -1;
    }
    return 0;
}

static int drop_alpha(VipsImage **img)
{
    VipsImage *next = NULL;
    if (vips_extract_band(*img, &next, 0, "n", 3, NULL) != 0)
        return -1;
    advance(img, next);
    return 0;
}

/* One of the drawn kinds as a side × side image. */
static VipsImage *draw_kind(img_blank kind, int side)
{
    int factor = SUPERSAMPLE_MAX_SIDE / side;
    factor = factor < 1 ? 1 : factor > 4 ? 4 : factor;
    VipsImage *img = canvas(side * factor, side * factor);
    if (img == NULL)
        return NULL;
    bool person = kind != IMG_BLANK_GENERIC_FILE_ICON;
    int rc = person ? draw_person(img) : draw_document(img);
    if (rc == 0)
        rc = shrink_by(&img, factor);
    if (rc == 0 && kind == IMG_BLANK_SR_NO_PHOTO_WITH_BORDER)
        rc = add_border(&img, side >= 96 ? 2 : 1);
    if (rc == 0 && person)
        rc = drop_alpha(&img);
    if (rc != 0) {
        note_vips_error("placeholder");
        g_object_unref(img);
        return NULL;
    }
    return img;
}

static int clamp_side(int v)
{
    return v < 1 ? 1 : v > PLACEHOLDER_MAX_SIDE ? PLACEHOLDER_MAX_SIDE : v;
}

/* The picture of kind fitted inside w × h (0 = unbounded; both 0 = 128). */
static VipsImage *render_kind(img_blank kind, int w, int h)
{
    if (kind == IMG_BLANK_CLEAR_PIXEL) {
        if (w == 0 && h == 0)
            return canvas(1, 1);
        return canvas(clamp_side(w > 0 ? w : h), clamp_side(h > 0 ? h : w));
    }
    int side = w == 0 && h == 0 ? NATURAL_SIDE : w == 0 ? h : h == 0 ? w : w < h ? w : h;
    return draw_kind(kind, clamp_side(side));
}

static cb_err copy_out(const unsigned char *p, size_t len, void **out, size_t *out_len)
{
    void *q = malloc(len);
    if (q == NULL)
        return CB_EINTERNAL;
    memcpy(q, p, len);
    *out = q;
    *out_len = len;
    return CB_EOK;
}

static cb_err render_encoded(img_blank kind, int w, int h, img_type type, void **out,
                             size_t *out_len)
{
    VipsImage *img = render_kind(kind, w, h);
    if (img == NULL)
        return CB_EINTERNAL;
    cb_err e = encode(img, type, out, out_len, NULL, 0);
    g_object_unref(img);
    return e;
}

/* The natural-size PNG of kind, rendered on first use; the lock makes
 * concurrent first uses render once. ClearPixel is placeholder.c's bytes. */
static cb_err cached_png(img_blank kind, void **out, size_t *out_len)
{
    const unsigned char *constant;
    const char *mime;
    size_t len;
    if (kind == IMG_BLANK_CLEAR_PIXEL && img_placeholder(kind, &constant, &len, &mime))
        return copy_out(constant, len, out, out_len);
    cb_err e = CB_EOK;
    pthread_mutex_lock(&cache.lock);
    if (cache.png[kind] == NULL) {
        void *png = NULL;
        e = render_encoded(kind, 0, 0, IMG_PNG, &png, &len);
        cache.png[kind] = png;
        cache.len[kind] = e == CB_EOK ? len : 0;
    }
    if (e == CB_EOK)
        e = copy_out(cache.png[kind], cache.len[kind], out, out_len);
    pthread_mutex_unlock(&cache.lock);
    return e;
}

cb_err img_placeholder_render(img_blank kind, int w, int h, img_type type, void **out,
                              size_t *out_len)
{
    assert(state.started);
    assert(out != NULL && out_len != NULL);
    if (kind <= IMG_BLANK_NULL || kind >= IMG_BLANK__COUNT)
        return CB_ENOTFOUND;
    if (w < 0 || h < 0)
        return CB_EBADREQ;
    if (type == IMG_UNKNOWN)
        type = IMG_PNG;
    if (w == 0 && h == 0 && type == IMG_PNG)
        return cached_png(kind, out, out_len);
    return render_encoded(kind, w, h, type, out, out_len);
}
