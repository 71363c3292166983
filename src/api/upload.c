/*
 * upload.c — spools an uploaded image to an unnamed temporary file while it
 * arrives, so no body is ever held whole in memory and a half-received
 * upload can never become visible: the file has no name and vanishes with
 * the request (or the process).
 *
 * Raw bodies are spooled as they come; multipart/form-data bodies go
 * through the streaming multipart reader, which hands over the first file
 * part only. The first IMG_SNIFF_BYTES bytes are kept to recognise the
 * format. The image-byte cap is enforced here for both forms.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api/api_int.h"
#include "api/multipart.h"
#include "core/log.h"

struct upload {
    int fd;
    int64_t size;
    int64_t max;
    unsigned char head[IMG_SNIFF_BYTES];
    multipart_t *mp; /* NULL for a raw body */
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

/* Appends image bytes to the spool. */
static cb_err spool_write(void *ctx, const char *data, size_t n)
{
    upload_t *u = ctx;
    if ((int64_t)n > u->max - u->size)
        return CB_ETOOLARGE;
    for (size_t i = 0; i < n && u->size + (int64_t)i < IMG_SNIFF_BYTES; i++)
        u->head[u->size + (int64_t)i] = (unsigned char)data[i];
    while (n > 0) {
        ssize_t w = write(u->fd, data, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            log_error("upload spool write failed: %s", strerror(errno));
            return CB_EINTERNAL;
        }
        data += w;
        n -= (size_t)w;
        u->size += w;
    }
    return CB_EOK;
}

upload_t *upload_create(api_exchange *x, const char *content_type)
{
    upload_t *u = calloc(1, sizeof(*u));
    if (u == NULL)
        goto fail;
    u->max = (int64_t)x->api->cfg.image_max;
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
    API_FAIL0(x, CB_EINTERNAL, MSG_UPLOAD_FAILED);
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
        API_FAIL0(x, CB_EBADREQ, MSG_IMAGE_MISSING);
        return false;
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
    free(u);
}
