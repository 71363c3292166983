/*
 * io.c — pread retried when interrupted, and read in full (see io.h).
 */
#include "core/io.h"

#include <errno.h>
#include <unistd.h>

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
