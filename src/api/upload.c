/*
 * upload.c — spools an uploaded image to an unnamed temporary file while it
 * arrives, so no body is ever held whole in memory and a half-received
 * upload can never become visible: the file has no name and vanishes with
 * the request (or the process).
 *
 * Raw bodies are spooled as they come; multipart/form-data bodies go
 * through the streaming multipart reader, which hands over the first file
 * part only. The first IMG_SNIFF_BYTES bytes are kept to recognise the
 * format. The image-byte cap is enforced here for both forms; an archive
 * for a batch task (BODY_ARCHIVE) has its own cap (archive_max) and must
 * start with a tar header instead.
 *
 * The spools in flight share a bound (api_config.spool_max, and half the
 * free space their file system would have without them), so that uploads
 * left half-sent cannot fill the disk the database needs: an upload
 * reserves SPOOL_STEP bytes at a time as its bytes come (a declared length
 * that could never fit is refused before the first byte is read), so that
 * what an upload holds is what it has sent plus one step. Past the bound
 * it is answered 503 with Retry-After while others
 * hold the room, 507 when it could not fit even alone; a full disk met
 * while writing is 507 too. The last eighth of the bound is kept for the
 * first SPOOL_STEP bytes of each upload, so that big uploads held open
 * cannot shut out the small pictures of others.
 *
 * Archives for batch tasks (BODY_ARCHIVE) have a budget of their own and
 * take nothing of the pictures' bound: at most ARCHIVES_AT_ONCE in flight
 * (from the first byte until the exchange ends, i.e. its store too, which
 * holds an offload thread: 503 with Retry-After beyond), each within
 * archive_max, and twice its bytes (the spool, and the store's encoded
 * copy) within half the free space its file system would have without
 * it: 507 otherwise, by Content-Length before the first byte, else as the
 * bytes come.
 *
 * Invariant: api->spool_reserved is the sum of the spools' `reserved`,
 * api->spool_written that of the pictures' `size` (size <= reserved);
 * api->archives counts the archive uploads whose exchange has not ended.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "api/api_int.h"
#include "api/multipart.h"
#include "core/io.h"
#include "core/log.h"

#define SPOOL_STEP (1 << 20)  /* reserved at a time as an upload's bytes come */
#define SPOOL_RETRY_AFTER_S 5 /* told when the bound is reached for now */
#define ARCHIVES_AT_ONCE 1    /* archive uploads (and stores) in flight */

struct upload {
    api_t *api;
    int fd;
    int64_t size;
    int64_t reserved; /* of the bound; size <= reserved */
    int64_t max;
    unsigned char head[IMG_SNIFF_BYTES];
    multipart_t *mp; /* NULL for a raw body */
    bool archive;    /* an archive for a batch task (BODY_ARCHIVE), not a picture */
    bool counted;    /* one of api->archives */
};

static int open_spool(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != ENOENT))
        return fd;
    char path[4096];
    snprintf(path, sizeof(path), "%s/crmblob-upload-XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0)
        unlink(path);
    return fd;
}

/* The bytes the spools in flight may hold together now. */
static int64_t spool_room(api_t *api)
{
    struct statvfs fs;
    int64_t room = api->cfg.spool_max;
    if (statvfs(api->cfg.spool_dir, &fs) == 0) {
        int64_t free_bytes = (int64_t)fs.f_bavail * (int64_t)fs.f_frsize;
        int64_t half = (free_bytes + atomic_load(&api->spool_written)) / 2;
        room = half < room ? half : room;
    }
    return room;
}

/* Reserves n more bytes of the bound for u: CB_EUNAVAILABLE when the
 * others' reservations leave too little, CB_ENOSPACE when even u's own
 * would not fit. */
static cb_err spool_reserve(upload_t *u, int64_t n)
{
    api_t *api = u->api;
    int64_t total = atomic_fetch_add(&api->spool_reserved, n) + n;
    int64_t room = spool_room(api);
    int64_t limit = u->reserved + n > SPOOL_STEP ? room - room / 8 : room;
    if (total <= limit) {
        u->reserved += n;
        return CB_EOK;
    }
    atomic_fetch_sub(&api->spool_reserved, n);
    log_warn("upload spools: %lld bytes more refused (%lld reserved of %lld now allowed)",
             (long long)n, (long long)(total - n), (long long)limit);
    return u->reserved + n <= limit ? CB_EUNAVAILABLE : CB_ENOSPACE;
}

/* Room for an archive of total bytes (its spool and its store copy within
 * half of what is free without its spool): CB_EOK, or CB_ENOSPACE. */
static cb_err archive_room(upload_t *u, int64_t total)
{
    struct statvfs fs;
    if (statvfs(u->api->cfg.spool_dir, &fs) != 0)
        return CB_EOK; /* a full disk met while writing is 507 still */
    int64_t free_bytes = (int64_t)fs.f_bavail * (int64_t)fs.f_frsize + u->size;
    if (2 * total <= free_bytes / 2)
        return CB_EOK;
    log_warn("archive upload: %lld bytes would leave less than half of the %lld free "
             "(counting the store's copy)",
             (long long)total, (long long)free_bytes);
    return CB_ENOSPACE;
}

/* An archive upload announcing expect bytes (0: not said): one of
 * api->archives, or CB_EUNAVAILABLE / CB_ENOSPACE. */
static cb_err archive_admit(upload_t *u, int64_t expect)
{
    if (atomic_fetch_add(&u->api->archives, 1) >= ARCHIVES_AT_ONCE) {
        atomic_fetch_sub(&u->api->archives, 1);
        return CB_EUNAVAILABLE;
    }
    u->counted = true;
    return expect > 0 ? archive_room(u, expect) : CB_EOK;
}

/* An upload that announces `expect` bytes: CB_ENOSPACE when they could
 * never fit; else its first step is reserved, and the rest step by step
 * as bytes arrive (spool_write). Reserving the whole announced length up
 * front let a few uploads trickled at the minimum body rate hold the
 * bound for hours while sending almost nothing. */
static cb_err spool_admit(upload_t *u, int64_t expect)
{
    int64_t room = spool_room(u->api);
    if (expect > SPOOL_STEP)
        room -= room / 8; /* what spool_reserve lets an upload hold past its first step */
    if (expect > room) {
        log_warn("upload spools: %lld bytes announced, %lld allowed in all", (long long)expect,
                 (long long)room);
        return CB_ENOSPACE;
    }
    return spool_reserve(u, expect < SPOOL_STEP ? expect : SPOOL_STEP);
}

/* write(2) of all n bytes; CB_ENOSPACE on a full disk or quota. */
static cb_err spool_put(upload_t *u, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t w = write(u->fd, data, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            bool full = w < 0 && (errno == ENOSPC || errno == EDQUOT);
            log_warn("upload spool write failed: %s", w < 0 ? strerror(errno) : "wrote nothing");
            return full ? CB_ENOSPACE : CB_EINTERNAL;
        }
        data += w;
        n -= (size_t)w;
        u->size += w;
        if (!u->archive)
            atomic_fetch_add(&u->api->spool_written, (int64_t)w);
    }
    return CB_EOK;
}

/* Appends image bytes to the spool. */
static cb_err spool_write(void *ctx, const char *data, size_t n)
{
    upload_t *u = ctx;
    if ((int64_t)n > u->max - u->size)
        return CB_ETOOLARGE;
    if (u->archive) { /* its own budget: the free space checked every step */
        cb_err a = u->size / SPOOL_STEP != (u->size + (int64_t)n) / SPOOL_STEP
                       ? archive_room(u, u->size + (int64_t)n)
                       : CB_EOK;
        return a != CB_EOK ? a : spool_put(u, data, n);
    }
    int64_t need = u->size + (int64_t)n - u->reserved;
    cb_err e = need > 0 ? spool_reserve(u, need > SPOOL_STEP ? need : SPOOL_STEP) : CB_EOK;
    if (e != CB_EOK)
        return e;
    for (size_t i = 0; i < n && u->size + (int64_t)i < IMG_SNIFF_BYTES; i++)
        u->head[u->size + (int64_t)i] = (unsigned char)data[i];
    return spool_put(u, data, n);
}

void upload_fail(api_exchange *x, cb_err e)
{
    x->resp.close = true; /* the rest of the body is not wanted */
    if (e == CB_EUNAVAILABLE) {
        api_add_header(x, "Retry-After", arena_printf(x->arena, "%d", SPOOL_RETRY_AFTER_S));
        API_FAIL(x, e, MSG_UPLOADS_BUSY, MSG_N(SPOOL_RETRY_AFTER_S));
    } else if (e == CB_ENOSPACE) {
        API_FAIL0(x, e, MSG_NO_SPACE);
    } else {
        API_FAIL0(x, CB_EINTERNAL, MSG_UPLOAD_FAILED);
    }
}

upload_t *upload_create(api_exchange *x, const char *content_type, int64_t expect)
{
    upload_t *u = calloc(1, sizeof(*u));
    cb_err e = CB_EINTERNAL;
    if (u == NULL)
        goto fail;
    u->api = x->api;
    u->archive = x->rm != NULL && x->rm->body == BODY_ARCHIVE;
    u->max = (int64_t)(u->archive ? x->api->cfg.archive_max : x->api->cfg.image_max);
    u->fd = -1;
    if (u->archive ? (e = archive_admit(u, expect)) != CB_EOK
                   : expect > 0 && (e = spool_admit(u, expect)) != CB_EOK)
        goto fail;
    e = CB_EINTERNAL;
    u->fd = open_spool(x->api->cfg.spool_dir);
    if (u->fd < 0) {
        log_error("cannot create upload spool in %s: %s", x->api->cfg.spool_dir, strerror(errno));
        goto fail;
    }
    if (content_type != NULL && strncasecmp(content_type, "multipart/", 10) == 0) {
        u->mp = multipart_create(content_type, spool_write, u);
        if (u->mp == NULL) {
            API_FAIL(x, CB_EBADREQ, MSG_MULTIPART,
                     MSG_S("the Content-Type has no valid boundary parameter"));
            upload_destroy(u);
            return NULL;
        }
    }
    return u;
fail:
    upload_destroy(u);
    upload_fail(x, e);
    return NULL;
}

cb_err upload_feed(upload_t *u, const char *data, size_t n)
{
    return u->mp != NULL ? multipart_feed(u->mp, data, n) : spool_write(u, data, n);
}

bool upload_finish(api_exchange *x, upload_t *u)
{
    if (u->mp != NULL) {
        if (multipart_finish(u->mp) != CB_EOK) {
            API_FAIL(x, CB_EBADREQ, MSG_MULTIPART, MSG_S(multipart_error(u->mp)));
            return false;
        }
        if (!multipart_found_file(u->mp)) {
            API_FAIL0(x, CB_EBADREQ, MSG_NO_FILE_PART);
            return false;
        }
    }
    if (u->size == 0) {
        API_FAIL0(x, CB_EBADREQ, u->archive ? MSG_ARCHIVE_NOT_TAR : MSG_IMAGE_MISSING);
        return false;
    }
    if (u->archive) {
        unsigned char h[512];
        bool tar = io_pread_full(u->fd, h, sizeof(h), 0) == sizeof(h) && bulk_tar_looks_like(h);
        if (!tar)
            API_FAIL0(x, CB_EBADREQ, MSG_ARCHIVE_NOT_TAR);
        return tar;
    }
    if (upload_type(u) == IMG_UNKNOWN) {
        API_FAIL0(x, CB_EBADREQ, MSG_IMAGE_UNSUPPORTED);
        return false;
    }
    return true;
}

int upload_fd(const upload_t *u)
{
    return u->fd;
}

int64_t upload_size(const upload_t *u)
{
    return u->size;
}

img_type upload_type(const upload_t *u)
{
    size_t n = u->size < IMG_SNIFF_BYTES ? (size_t)u->size : IMG_SNIFF_BYTES;
    return img_sniff(u->head, n);
}

const char *upload_error(const upload_t *u)
{
    return u != NULL && u->mp != NULL ? multipart_error(u->mp) : "";
}

void upload_destroy(upload_t *u)
{
    if (u == NULL)
        return;
    if (u->mp != NULL)
        multipart_destroy(u->mp);
    if (u->fd >= 0)
        close(u->fd);
    if (u->counted)
        atomic_fetch_sub(&u->api->archives, 1);
    if (!u->archive)
        atomic_fetch_sub(&u->api->spool_written, u->size);
    atomic_fetch_sub(&u->api->spool_reserved, u->reserved);
    free(u);
}
