/*
 * img_serve.c — the image worker's side of imgw.h: runs each request
 * through the libvips pipeline (img_vips.c) and answers it. Linked only
 * into crmblob-img.
 *
 * Invariant: every request gets exactly one answer, unless the worker
 * dies doing it (the server then sees end of file and judges the input).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "img/imgw.h"

static void do_validate(const imgw_req *rq, int in, imgw_resp *rs)
{
    rs->err = img_validate_fd(in, rq->size, &rs->info, rs->reason, sizeof(rs->reason));
}

/* Runs a request whose output is bytes; *out malloc'd. */
static void do_bytes(const imgw_req *rq, int in, imgw_resp *rs, void **out, size_t *out_len)
{
    if (rq->op == IMGW_PLACEHOLDER) {
        rs->err = img_placeholder_render((img_blank)rq->blank, rq->w, rq->h, (img_type)rq->type,
                                         out, out_len);
        return;
    }
    void *bytes = rq->size > 0 ? imgw_slurp(in, (size_t)rq->size) : NULL;
    if (bytes == NULL) {
        rs->err = CB_EINTERNAL;
        snprintf(rs->reason, sizeof(rs->reason), "the worker could not read its input");
        return;
    }
    rs->err = img_variant(bytes, (size_t)rq->size, rq->w, rq->h, (img_type)rq->type, out, out_len,
                          rs->reason, sizeof(rs->reason));
    free(bytes);
}

/* Answers one request; false when the answer could not be sent. */
static bool serve_one(int sock, const imgw_req *rq, int in)
{
    imgw_resp rs;
    void *out = NULL;
    size_t out_len = 0;
    int out_fd = -1;
    memset(&rs, 0, sizeof(rs));
    if (rq->op == IMGW_VALIDATE)
        do_validate(rq, in, &rs);
    else if (rq->op == IMGW_VARIANT || rq->op == IMGW_PLACEHOLDER)
        do_bytes(rq, in, &rs, &out, &out_len);
    else
        rs.err = CB_EINTERNAL;
    if (rs.err == CB_EOK && out != NULL) {
        out_fd = imgw_memfd(out, out_len);
        rs.out_len = (int64_t)out_len;
        if (out_fd < 0) {
            rs.err = CB_EINTERNAL;
            rs.out_len = 0;
        }
    }
    free(out);
    bool sent = imgw_send(sock, &rs, sizeof(rs), out_fd) == 0;
    if (out_fd >= 0)
        close(out_fd);
    return sent;
}

int imgw_serve(int sock)
{
    for (;;) {
        imgw_req rq;
        int in = -1;
        int got = imgw_recv(sock, &rq, sizeof(rq), &in);
        if (got == 0)
            return 0;
        bool ok = got > 0 && serve_one(sock, &rq, in);
        if (in >= 0)
            close(in);
        if (!ok)
            return 1;
    }
}
