/*
 * buf.h — a growable byte buffer with a hard cap.
 *
 * Every buffer a client can grow is a buf with a cap: appending past the cap
 * fails with CB_ETOOLARGE and leaves the buffer as it was (the model is curl's
 * dynbuf "toobig"). The contents are always NUL-terminated so they can be
 * handed to string parsers; the terminator is not counted in len nor the cap.
 */
#ifndef CB_BUF_H
#define CB_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct {
    char *data; /* NULL until the first append */
    size_t len;
    size_t alloc;
    size_t max; /* cap on len */
} buf_t;

void buf_init(buf_t *b, size_t max);
void buf_free(buf_t *b);
void buf_reset(buf_t *b);
/* Room for n more bytes without growing again (a writer that knows its
 * size skips the doublings); CB_ETOOLARGE past the cap. */
cb_err buf_reserve(buf_t *b, size_t n);
cb_err buf_append(buf_t *b, const void *p, size_t n);
cb_err buf_puts(buf_t *b, const char *s);
cb_err buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* v in decimal, as buf_printf("%lld") writes it, without the printf cost. */
cb_err buf_put_i64(buf_t *b, int64_t v);
/* Gives up ownership of the bytes (malloc'd, NUL-terminated); b is reset. */
char *buf_steal(buf_t *b, size_t *len);
/* Never NULL: "" when empty. */
const char *buf_str(const buf_t *b);

#endif
