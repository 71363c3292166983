/*
 * io.h — reading a descriptor at an offset (the upload spool, a picture's
 * bytes in the image worker), with pread retried when a signal interrupts it.
 *
 * Invariant: neither call moves the descriptor's file offset, so one
 * descriptor can be read by several readers at once.
 */
#ifndef CB_IO_H
#define CB_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One pread of at most n bytes of fd at off, again when interrupted
 * (EINTR); otherwise what pread returns: the bytes read (0 at the end of
 * the file) or -1 with errno set. */
ssize_t io_pread(int fd, void *p, size_t n, int64_t off);
/* Reads n bytes of fd at off, over as many preads as it takes: the bytes
 * read, n unless the file ends first (errno is then 0) or a pread fails
 * (errno says why). */
size_t io_pread_full(int fd, void *p, size_t n, int64_t off);

#endif
