/*
 * img.h — the image pipeline on libvips (SPEC §8, issue "image pipeline"):
 * validating uploads, making scaled and converted variants, and drawing the
 * built-in placeholder pictures.
 *
 * Two implementations: img_vips.c does the work with libvips (in the
 * image workers and the unit tests); img_remote.c, linked into the server,
 * hands each call to a crmblob-img worker process (imgw.h), so that no
 * decoder ever runs, crashes or grows inside the server.
 *
 * Safety: only the PNG, JPEG, GIF and TIFF loaders are usable (every other
 * loader and every operation libvips marks untrusted is blocked at
 * img_init); the pixel limit is checked from the header before any pixel
 * is decoded; libvips' operation cache and thread pool are bounded. All
 * functions are thread-safe after img_init.
 */
#ifndef CB_IMG_H
#define CB_IMG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/metrics.h"
#include "img/placeholder.h"
#include "img/sniff.h"

/* Output formats beyond the four stored ones, for Accept-driven answers. */
#define IMG_WEBP ((img_type)100)
#define IMG_AVIF ((img_type)101)

/* CPU seconds one call may use in a worker, unless img_config says. The
 * largest legal picture (50 MP) converted whole to PNG takes about 8 s. */
#define IMG_DEFAULT_CPU_LIMIT_S 20

typedef struct {
    int64_t pixel_limit; /* width × height; 0 = 50 000 000 */
    int cache_mb;        /* libvips operation cache; 0 = 16 */
    int threads;         /* libvips worker threads per operation; 0 = 1 */
    const char *worker;  /* img_remote.c: the crmblob-img program to run */
    int cpu_limit_s;     /* img_remote.c: CPU seconds per call; 0 = IMG_DEFAULT_CPU_LIMIT_S */
    /* src/img only: a worker of the small lane (img_remote.c) answers
     * CB_ETOOLARGE, from the header, for a picture of more pixels than
     * this, so that it is run by another worker; 0 = no lane */
    int64_t lane_pixels;
    /* img_remote.c: counts calls, failures, worker starts and validation
     * time (metrics.h); NULL: nowhere */
    metrics_t *metrics;
} img_config;

/* Starts libvips; call once before any thread uses this module. */
cb_err img_init(const img_config *cfg);
void img_shutdown(void);
/* Does an image worker answer (GET /ready)? In process (img_vips.c) the
 * answer is yes. In the server (img_remote.c) it asks a free worker,
 * starting one when none runs (it is kept for the next call, as a call's
 * would be), for an empty answer within
 * IMG_PING_TIMEOUT_MS. CB_EOK when one answers, or when every worker is
 * taken by a call (they are answering those); else CB_EUNAVAILABLE with
 * why (English, for an operator) in why[0, why_cap). Never waits behind
 * a call. */
#define IMG_PING_TIMEOUT_MS 2000
cb_err img_ping(char *why, size_t why_cap);

typedef struct {
    img_type type;
    int width, height;   /* as stored, before EXIF orientation */
    int orientation;     /* EXIF 1..8, 1 when absent */
} img_info;

/* Checks a whole image read from fd[0, size): a supported format whose
 * header decodes, width × height within the pixel limit (checked before
 * decoding pixels), and every pixel decodes (a truncated or corrupt file
 * fails). CB_EBADREQ with a short English reason otherwise; CB_EWORK when
 * the picture needs more work than allowed: a JPEG of more than
 * JPEGSCAN_MAX_SCANS scans, a TIFF of more than TIFFPAGES_MAX pages (both
 * counted before decoding), or, through img_remote.c, more than the CPU
 * limit in the worker; CB_EUNAVAILABLE (img_remote.c) when the worker
 * died or could not be started: the picture is not to blame. */
cb_err img_validate_fd(int fd, int64_t size, img_info *out, char *reason, size_t reason_cap);
cb_err img_validate(const void *bytes, size_t len, img_info *out, char *reason, size_t reason_cap);

/* A variant of an image: scaled to fit inside w × h keeping the aspect
 * ratio (0 = no bound on that side), never enlarged, EXIF orientation
 * applied, shrink-on-load where the format allows; written as out_type
 * (IMG_UNKNOWN = the input's type; also IMG_WEBP, IMG_AVIF). *out is
 * malloc'd. Errors as img_validate_fd's. */
cb_err img_variant(const void *bytes, size_t len, int w, int h, img_type out_type, void **out,
                   size_t *out_len, char *reason, size_t reason_cap);

/* A built-in placeholder picture (SrNoPhoto, SrNoPhotoWithBorder,
 * GenericFileIcon, drawn by crmblob itself; ClearPixel, fully transparent)
 * fitted in w × h (0 = no bound on that side; both 0 = its natural size:
 * 128 × 128, ClearPixel 1 × 1) as type (IMG_UNKNOWN = PNG). *out is
 * malloc'd. CB_ENOTFOUND for Default and Null. */
cb_err img_placeholder_render(img_blank kind, int w, int h, img_type type, void **out,
                              size_t *out_len);

/* "image/webp", "image/avif", or img_mime() for the four. */
const char *img_mime_any(img_type t);

#endif
