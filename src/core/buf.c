/*
 * buf.c — capped growable buffer (see buf.h for the contract).
 */
#include "core/buf.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/text.h"

void buf_init(buf_t *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->max = max;
}

void buf_free(buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->alloc = 0;
}

void buf_reset(buf_t *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

cb_err buf_reserve(buf_t *b, size_t extra)
{
    if (extra > b->max - b->len)
        return CB_ETOOLARGE;
    size_t need = b->len + extra + 1;
    if (need <= b->alloc)
        return CB_EOK;
    size_t n = b->alloc ? b->alloc : 256;
    while (n < need)
        n = n > SIZE_MAX / 2 ? need : n * 2;
    if (n - 1 > b->max) /* not n > max + 1: that wraps to 0 for max == SIZE_MAX */
        n = b->max + 1;
    char *p = realloc(b->data, n);
    if (p == NULL)
        return CB_EINTERNAL;
    b->data = p;
    b->alloc = n;
    return CB_EOK;
}

cb_err buf_append(buf_t *b, const void *p, size_t n)
{
    cb_err e = buf_reserve(b, n);
    if (e != CB_EOK)
        return e;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return CB_EOK;
}

cb_err buf_puts(buf_t *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

/* Formats into the room already there; only when that is too small is the
 * buffer grown and the text formatted a second time. */
static cb_err buf_vprintf(buf_t *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static cb_err buf_vprintf(buf_t *b, const char *fmt, va_list ap)
{
    size_t room = b->alloc > b->len ? b->alloc - b->len : 0;
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(room > 0 ? b->data + b->len : NULL, room, fmt, ap);
    cb_err e = n < 0 ? CB_EINTERNAL : CB_EOK;
    if (e == CB_EOK && (size_t)n >= room) { /* (what fits the room is within the cap) */
        e = buf_reserve(b, (size_t)n);
        if (e == CB_EOK)
            vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
        else if (room > 0)
            b->data[b->len] = '\0'; /* as it was */
    }
    va_end(again);
    if (e == CB_EOK)
        b->len += (size_t)n;
    return e;
}

cb_err buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cb_err e = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return e;
}

cb_err buf_put_i64(buf_t *b, int64_t v)
{
    char digits[TEXT_U64_MAX + 1];
    digits[0] = '-';
    size_t n = text_format_u64(v < 0 ? 0 - (uint64_t)v : (uint64_t)v, digits + 1);
    return v < 0 ? buf_append(b, digits, n + 1) : buf_append(b, digits + 1, n);
}

cb_err buf_repeat(buf_t *b, size_t off, size_t n)
{
    assert(off <= b->len && n <= b->len - off);
    cb_err e = buf_reserve(b, n); /* may move the bytes: copied after */
    if (e != CB_EOK || n == 0)
        return e;
    memcpy(b->data + b->len, b->data + off, n);
    b->len += n;
    b->data[b->len] = '\0';
    return CB_EOK;
}

char *buf_steal(buf_t *b, size_t *len)
{
    if (b->data == NULL && buf_append(b, "", 0) != CB_EOK)
        return NULL;
    char *p = b->data;
    if (len != NULL)
        *len = b->len;
    b->data = NULL;
    b->len = b->alloc = 0;
    return p;
}

const char *buf_str(const buf_t *b)
{
    return b->data != NULL ? b->data : "";
}

/* ---- the writer: the first failure sticks ---- */

void buf_w_append(buf_writer *w, const void *p, size_t n)
{
    if (w->err == CB_EOK)
        w->err = buf_append(w->b, p, n);
}

void buf_w_puts(buf_writer *w, const char *s)
{
    if (w->err == CB_EOK)
        w->err = buf_puts(w->b, s);
}

void buf_w_printf(buf_writer *w, const char *fmt, ...)
{
    if (w->err != CB_EOK)
        return;
    va_list ap;
    va_start(ap, fmt);
    w->err = buf_vprintf(w->b, fmt, ap);
    va_end(ap);
}

void buf_w_put_i64(buf_writer *w, int64_t v)
{
    if (w->err == CB_EOK)
        w->err = buf_put_i64(w->b, v);
}

void buf_w_repeat(buf_writer *w, size_t off, size_t n)
{
    if (w->err == CB_EOK)
        w->err = buf_repeat(w->b, off, n);
}
