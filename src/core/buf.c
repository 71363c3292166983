/*
 * buf.c — capped growable buffer (see buf.h for the contract).
 */
#include "core/buf.h"

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
cb_err buf_printf(buf_t *b, const char *fmt, ...)
{
    size_t room = b->alloc > b->len ? b->alloc - b->len : 0;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(room > 0 ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return CB_EINTERNAL;
    if ((size_t)n >= room) { /* (what fits the room is within the cap) */
        cb_err e = buf_reserve(b, (size_t)n);
        if (e != CB_EOK) {
            if (room > 0)
                b->data[b->len] = '\0'; /* as it was */
            return e;
        }
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
    return CB_EOK;
}

cb_err buf_put_i64(buf_t *b, int64_t v)
{
    char digits[TEXT_U64_MAX + 1];
    digits[0] = '-';
    size_t n = text_format_u64(v < 0 ? 0 - (uint64_t)v : (uint64_t)v, digits + 1);
    return v < 0 ? buf_append(b, digits, n + 1) : buf_append(b, digits + 1, n);
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
