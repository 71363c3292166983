/*
 * io.c — pread retried when interrupted, and read in full (see io.h).
 */
#include "core/io.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

ssize_t io_pread(int fd, void *p, size_t n, int64_t off)
{
    ssize_t r;
    do
        r = pread(fd, p, n, (off_t)off);
    while (r < 0 && errno == EINTR);
    return r;
}

size_t io_pread_full(int fd, void *p, size_t n, int64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = io_pread(fd, (char *)p + got, n - got, off + (int64_t)got);
        if (r <= 0) {
            if (r == 0)
                errno = 0; /* the file ends early */
            break;
        }
        got += (size_t)r;
    }
    return got;
}

int io_write_full(int fd, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

int io_open_tmp(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == ENOENT)) {
        char path[4096];
        int n = snprintf(path, sizeof(path), "%s/crmblob-tmp-XXXXXX", dir);
        if (n > 0 && (size_t)n < sizeof(path) && (fd = mkostemp(path, O_CLOEXEC)) >= 0)
            unlink(path);
    }
    if (fd < 0) {
        int err = errno;
        log_error("cannot create a temporary file in %s: %s", dir, strerror(err));
        errno = err;
    }
    return fd;
}

int io_fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    errno = err;
    return rc;
}

const char *io_beside_self(const char *env, const char *name, char *buf, size_t cap)
{
    const char *set = getenv(env);
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (set != NULL && *set)
        snprintf(buf, cap, "%s", set);
    else if (n > 0) {
        self[n] = '\0';
        snprintf(buf, cap, "%s/%s", dirname(self), name);
    } else
        snprintf(buf, cap, "%s", name);
    return buf;
}
