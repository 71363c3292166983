/*
 * failsync.c — a test shim (LD_PRELOAD) that makes fdatasync and fsync
 * fail with EIO while the file named by $CRMBLOB_FAILSYNC_WHEN exists, so
 * that the black-box tests can see what a client is told when the disk
 * refuses a durable write. Otherwise the real calls run.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

typedef int (*sync_fn)(int fd);

int fdatasync(int fd);
int fsync(int fd);

/* The real call named `name`, unless the disk is to refuse it. */
static int sync_or_fail(sync_fn *real, const char *name, int fd)
{
    const char *when = getenv("CRMBLOB_FAILSYNC_WHEN");
    if (when != NULL && access(when, F_OK) == 0) {
        errno = EIO;
        return -1;
    }
    if (*real == NULL)
        *real = (sync_fn)dlsym(RTLD_NEXT, name);
    return (*real)(fd);
}

int fdatasync(int fd)
{
    static sync_fn real;
    return sync_or_fail(&real, "fdatasync", fd);
}

int fsync(int fd)
{
    static sync_fn real;
    return sync_or_fail(&real, "fsync", fd);
}
