/*
 * imgw.h — the protocol between the server and its image workers
 * (img_remote.c in the server, img_serve.c in crmblob-img); private to
 * src/img.
 *
 * A worker serves one request at a time on a SOCK_SEQPACKET socket (fd
 * IMGW_FD in the worker): a request message carrying its input as a file
 * descriptor (the upload spool itself, or a memfd holding the bytes), then
 * an answer message carrying its output, if any, as a memfd. A request
 * that uses more CPU than the worker's limit is answered CB_EWORK with
 * `exiting` set, and the worker exits right after that answer (a decoder
 * cannot be stopped cleanly half-way). Descriptors
 * travel as SCM_RIGHTS, so picture bytes are never copied through the
 * socket. The worker exits at end of file: when the server closes the
 * socket, exits or dies.
 */
#ifndef CB_IMGW_H
#define CB_IMGW_H

#include <stdint.h>
#include <sys/types.h>

#include "img/img.h"

#define IMGW_FD 3 /* the worker's end of the socket */
#define IMGW_REASON_MAX 256

/* IMGW_PING: no input, no output; answered CB_EOK at once (the worker
 * is alive and reads its socket). */
enum { IMGW_VALIDATE = 1, IMGW_VARIANT, IMGW_PLACEHOLDER, IMGW_PING };

typedef struct {
    uint32_t op;
    int32_t w, h;   /* VARIANT, PLACEHOLDER */
    int32_t type;   /* VARIANT, PLACEHOLDER: img_type of the output */
    int32_t blank;  /* PLACEHOLDER: img_blank */
    int64_t size;   /* bytes of the input descriptor (VALIDATE, VARIANT) */
} imgw_req;

typedef struct {
    int32_t err;    /* cb_err */
    int32_t exiting; /* the worker exits after this answer */
    img_info info;  /* VALIDATE */
    int64_t out_len; /* bytes of the output descriptor; 0: none sent */
    char reason[IMGW_REASON_MAX];
} imgw_resp;

/* One message of len bytes, with descriptor fd attached unless fd < 0.
 * 0 or -1 (errno set). */
int imgw_send(int sock, const void *msg, size_t len, int fd);
/* One message of exactly len bytes into msg, and its descriptor into *fd
 * (-1 when none). 1 on success, 0 at end of file, -1 on error (errno set;
 * EPROTO for a message of another size). */
int imgw_recv(int sock, void *msg, size_t len, int *fd);
/* A memfd holding bytes[0, len), or -1. */
int imgw_memfd(const void *bytes, size_t len);
/* Reads fd[0, len) into a malloc'd buffer; NULL on failure. */
void *imgw_slurp(int fd, size_t len);

/* The worker's main loop: serves requests on sock until end of file, each
 * within cpu_limit_s seconds of the process's CPU time (0 = no limit). 0
 * at a clean end, 1 on a protocol error. Needs img_init (the libvips one). */
int imgw_serve(int sock, int cpu_limit_s);

#endif
