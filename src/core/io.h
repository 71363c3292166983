/*
 * io.h — reading a descriptor at an offset (the upload spool, a picture's
 * bytes in the image worker), with pread retried when a signal interrupts
 * it; writing all of a buffer; unnamed temporary files.
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
/* Writes all n bytes (again after EINTR or a short write): 0, or -1 with
 * errno set (EIO when the system made no progress). */
int io_write_full(int fd, const void *p, size_t n);
/* A new unnamed file in dir for reading and writing (O_TMPFILE, else a
 * unique name unlinked at once): nothing half-written is ever visible and
 * it vanishes when closed. -1 with errno set (and logged) when it cannot. */
int io_open_tmp(const char *dir);
/* fsync of the file at path (its data on disk): 0, or -1 with errno set. */
int io_fsync_path(const char *path);

/* A program file that ships beside this one (crmblob-img, crmblob-pg.so):
 * the value of the environment variable env when set and not empty, else
 * `name` in the directory of /proc/self/exe, else `name` alone; into buf,
 * returned. */
const char *io_beside_self(const char *env, const char *name, char *buf, size_t cap);

#endif
