/*
 * bench/mhd_floor.c — the fastest a libmicrohttpd server can answer the
 * GET Image row: every request gets the same bytes from one response made
 * at start (no routing, no authentication, no store, no log), on one
 * epoll polling thread. bench/run.sh measures it beside nginx and crmblob,
 * so the report shows how much of the distance to nginx is libmicrohttpd
 * and the kernel rather than crmblob's own work.
 *
 * Usage: mhd_floor FILE PORT   (listens on 127.0.0.1:PORT until killed)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

/* As crmblob's connections (src/http/server.c). */
#define CONN_MEMORY (32 * 1024)
#define MAX_BYTES (16 * 1024 * 1024)

static struct MHD_Response *answer;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    static int seen;
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload;
    (void)upload_size;
    if (*state != &seen) { /* the head has arrived: answer on the next call */
        *state = &seen;
        return MHD_YES;
    }
    *state = NULL;
    return MHD_queue_response(c, MHD_HTTP_OK, answer);
}

/* Reads the whole file into a malloc'd buffer; NULL on failure. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = malloc(MAX_BYTES);
    *len = 0;
    if (f != NULL && buf != NULL)
        *len = fread(buf, 1, MAX_BYTES, f);
    if (f != NULL)
        fclose(f);
    if (*len == 0 || *len == MAX_BYTES) {
        free(buf);
        return NULL;
    }
    return buf;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    unsigned long port = argc == 3 ? strtoul(argv[2], &end, 10) : 0;
    if (argc != 3 || end == NULL || *end != '\0' || port == 0 || port > 65535) {
        fprintf(stderr, "usage: mhd_floor FILE PORT\n");
        return 2;
    }
    size_t len;
    char *bytes = slurp(argv[1], &len);
    if (bytes == NULL) {
        fprintf(stderr, "mhd_floor: cannot read %s\n", argv[1]);
        return 1;
    }
    answer = MHD_create_response_from_buffer(len, bytes, MHD_RESPMEM_PERSISTENT);
    if (answer == NULL || MHD_add_response_header(answer, "Content-Type", "image/jpeg") != MHD_YES)
        return 1;
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, NULL); /* before the daemon's thread: it inherits the mask */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO, 0, NULL,
                         NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "mhd_floor: cannot listen on 127.0.0.1:%lu\n", port);
        return 1;
    }
    int sig;
    sigwait(&stop, &sig);
    MHD_stop_daemon(d);
    MHD_destroy_response(answer);
    free(bytes);
    return 0;
}
