/*
 * sink.c — where the export's pictures go (bulk.h): files under a
 * directory (`crmblob export DIR`), or members of a ustar archive on a
 * file (the export job's output).
 *
 * Why tar and not zip: a tar member is a 512-byte header and the bytes,
 * so an archive is written front to back a piece at a time (the size is
 * known before the bytes: the record's OriginalSize); zip would need each
 * member's CRC before or after it and a central directory at the end, and
 * its compression gains nothing on JPEG/PNG/GIF. Any `tar` reads it.
 *
 * Invariants: a directory member has its final name only once all its
 * bytes are written (".part" until then); a dropped tar member is cut off
 * the file again (ftruncate to its header), so the archive never holds a
 * member shorter than its header says.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bulk/bulk.h"
#include "core/io.h"

static store_err errno_err(void)
{
    return errno == ENOSPC || errno == EDQUOT ? STORE_NO_SPACE : STORE_INTERNAL;
}

static store_err dir_open(void *s, const char *rel, int64_t size)
{
    bulk_dir_sink *d = s;
    char path[sizeof(d->part)];
    (void)size;
    snprintf(d->rel, sizeof(d->rel), "%s", rel);
    snprintf(d->part, sizeof(d->part), "%s/%s.part", d->dir, rel);
    snprintf(path, sizeof(path), "%s", d->part);
    *strrchr(path, '/') = '\0';
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return errno_err();
    d->fd = open(d->part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    return d->fd < 0 ? errno_err() : STORE_OK;
}

static cb_err dir_write(void *s, const void *p, size_t n)
{
    bulk_dir_sink *d = s;
    if (io_write_full(d->fd, p, n) == 0)
        return CB_EOK;
    return errno == ENOSPC || errno == EDQUOT ? CB_ENOSPACE : CB_EINTERNAL;
}

static store_err dir_close(void *s, bool keep)
{
    bulk_dir_sink *d = s;
    char path[sizeof(d->part)];
    store_err e = STORE_OK;
    if (d->fd < 0)
        return STORE_OK;
    if (close(d->fd) != 0)
        e = errno_err();
    d->fd = -1;
    snprintf(path, sizeof(path), "%s/%s", d->dir, d->rel);
    if (keep && e == STORE_OK && rename(d->part, path) != 0)
        e = errno_err();
    if (!keep || e != STORE_OK)
        unlink(d->part);
    return e;
}

void bulk_dir_sink_init(bulk_dir_sink *d, const char *dir, bulk_sink *out)
{
    *d = (bulk_dir_sink){.dir = dir, .fd = -1};
    *out = (bulk_sink){dir_open, dir_write, dir_close, d};
}

#define TAR_SIZE_MAX 077777777777LL /* 11 octal digits: 8 GiB - 1 */

/* v in width-1 octal digits and a NUL, as ustar's numeric fields. */
static void octal(unsigned char *dst, size_t width, unsigned long long v)
{
    dst[width - 1] = '\0';
    for (size_t i = width - 1; i-- > 0; v >>= 3)
        dst[i] = (unsigned char)('0' + (v & 7));
}

/* A ustar header for a regular file of size bytes. */
static void tar_header(unsigned char h[512], const char *name, int64_t size)
{
    unsigned sum = 0;
    memset(h, 0, 512);
    snprintf((char *)h, 100, "%s", name);
    octal(h + 100, 8, 0644);
    octal(h + 108, 8, 0);
    octal(h + 116, 8, 0);
    octal(h + 124, 12, (unsigned long long)size);
    octal(h + 136, 12, 0);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    for (int i = 0; i < 512; i++)
        sum += h[i];
    octal(h + 148, 7, sum); /* six digits, a NUL, then the space left above */
}

static cb_err tar_put(bulk_tar_sink *t, const void *p, size_t n)
{
    if (io_write_full(t->fd, p, n) != 0)
        return errno == ENOSPC || errno == EDQUOT ? CB_ENOSPACE : CB_EINTERNAL;
    t->off += (int64_t)n;
    return CB_EOK;
}

static store_err tar_open(void *s, const char *rel, int64_t size)
{
    bulk_tar_sink *t = s;
    unsigned char h[512];
    if (strlen(rel) >= 100 || size < 0 || size > TAR_SIZE_MAX)
        return STORE_INTERNAL;
    tar_header(h, rel, size);
    t->member = t->off;
    t->left = size;
    cb_err e = tar_put(t, h, sizeof(h));
    return e == CB_EOK ? STORE_OK : e == CB_ENOSPACE ? STORE_NO_SPACE : STORE_INTERNAL;
}

static cb_err tar_write(void *s, const void *p, size_t n)
{
    bulk_tar_sink *t = s;
    if ((int64_t)n > t->left)
        return CB_EINTERNAL; /* more than its header says */
    t->left -= (int64_t)n;
    return tar_put(t, p, n);
}

/* Zeros up to the next 512-byte block. */
static cb_err tar_pad(bulk_tar_sink *t)
{
    static const unsigned char zero[512];
    size_t pad = (size_t)((512 - t->off % 512) % 512);
    return pad > 0 ? tar_put(t, zero, pad) : CB_EOK;
}

static store_err tar_close(void *s, bool keep)
{
    bulk_tar_sink *t = s;
    if (keep && t->left == 0) {
        cb_err e = tar_pad(t);
        if (e == CB_EOK)
            return STORE_OK;
    }
    /* dropped (or short): cut the member off */
    if (ftruncate(t->fd, t->member) != 0 || lseek(t->fd, t->member, SEEK_SET) < 0)
        return STORE_INTERNAL;
    t->off = t->member;
    return keep ? STORE_INTERNAL : STORE_OK;
}

void bulk_tar_sink_init(bulk_tar_sink *t, int fd, bulk_sink *out)
{
    *t = (bulk_tar_sink){.fd = fd};
    t->off = t->member = lseek(fd, 0, SEEK_CUR);
    *out = (bulk_sink){tar_open, tar_write, tar_close, t};
}

cb_err bulk_tar_finish(bulk_tar_sink *t, const char *name, int mfd)
{
    static const unsigned char zero[1024];
    unsigned char buf[64 * 1024];
    struct stat sb;
    ssize_t n;
    if (fstat(mfd, &sb) != 0 || lseek(mfd, 0, SEEK_SET) < 0 ||
        tar_open(t, name, sb.st_size) != STORE_OK)
        return CB_EINTERNAL;
    while ((n = read(mfd, buf, sizeof(buf))) > 0)
        if (tar_write(t, buf, (size_t)n) != CB_EOK)
            return CB_EINTERNAL;
    if (n < 0 || t->left != 0 || tar_pad(t) != CB_EOK)
        return CB_EINTERNAL;
    return tar_put(t, zero, sizeof(zero)); /* the end: two zero blocks */
}
