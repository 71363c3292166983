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

int fdatasync(int fd);
int fsync(int fd);

static int failing(void)
{
    const char *when = getenv("CRMBLOB_FAILSYNC_WHEN");
    return when != NULL && access(when, F_OK) == 0;
}

int fdatasync(int fd)
{
    static int (*real)(int);
    if (failing()) {
        errno = EIO;
        return -1;
    }
    if (real == NULL)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}

int fsync(int fd)
{
    static int (*real)(int);
    if (failing()) {
        errno = EIO;
        return -1;
    }
    if (real == NULL)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}
