/*
 * sdnotify.c — the sd_notify protocol (sdnotify.h), spoken directly: one
 * datagram of `KEY=value` lines to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or '@' and an abstract name), a protocol systemd
 * documents as stable for programs that do not link libsystemd. Linking
 * libsystemd instead costs the server 1 MiB of resident memory (it maps
 * libgcrypt, liblzma, liblz4, libcap with it: 13.9 -> 14.9 MiB idle),
 * for this one sendto.
 *
 * $NOTIFY_SOCKET stays in the environment (the server sends several
 * messages in its life); the image workers it starts inherit it but send
 * nothing, and systemd takes messages from the main process only
 * (NotifyAccess=main, the default). Main thread only.
 */
#include "cli/sdnotify.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

static bool warned; /* one warning for a socket that does not take them */

/* The socket's address from $NOTIFY_SOCKET: its length, 0 when unset,
 * -1 (errno set) when it cannot be an AF_UNIX address. */
static int notify_addr(struct sockaddr_un *sa, socklen_t *len)
{
    const char *name = getenv("NOTIFY_SOCKET");
    size_t n = name != NULL ? strlen(name) : 0;
    if (n == 0)
        return 0;
    if ((name[0] != '/' && name[0] != '@') || n >= sizeof(sa->sun_path)) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, name, n);
    if (name[0] == '@')
        sa->sun_path[0] = '\0'; /* abstract: the name is not NUL-terminated */
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (name[0] == '/'));
    return 1;
}

static void send_msg(const char *msg)
{
    struct sockaddr_un sa;
    socklen_t len = 0;
    int rc = notify_addr(&sa, &len);
    if (rc == 0)
        return;
    int fd = rc < 0 ? -1 : socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    size_t n = strlen(msg);
    if (fd >= 0 && sendto(fd, msg, n, MSG_NOSIGNAL, (struct sockaddr *)&sa, len) == (ssize_t)n)
        rc = 0;
    else
        rc = errno;
    if (fd >= 0)
        close(fd);
    if (rc != 0 && !warned) {
        warned = true;
        log_warn("cannot notify the service manager at $NOTIFY_SOCKET %s: %s",
                 getenv("NOTIFY_SOCKET"), strerror(rc));
    }
}

void sdnotify_ready(const char *status)
{
    char msg[512];
    snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
    send_msg(msg);
}

void sdnotify_reloading(void)
{
    struct timespec ts;
    char msg[96];
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    send_msg(msg);
}

void sdnotify_stopping(void)
{
    send_msg("STOPPING=1\nSTATUS=finishing requests in flight");
}
