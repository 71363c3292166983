/*
 * buf.h — a growable byte buffer with a hard cap.
 *
 * Every buffer a client can grow is a buf with a cap: appending past the cap
 * fails with CB_ETOOLARGE and leaves the buffer as it was (the model is curl's
 * dynbuf "toobig"). The contents are always NUL-terminated so they can be
 * handed to string parsers; the terminator is not counted in len nor the cap.
 *
 * A failed append must not be ignored: the compiler refuses an unchecked
 * result (warn_unused_result, an error under -Werror). A writer that makes
 * many appends and checks once at the end uses a buf_writer, whose first
 * failure sticks: every later append through it is skipped, so the buffer
 * holds a prefix of the text, never text with a hole in the middle.
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

/* The result of an append: checked by every caller. */
#define BUF_CHECK __attribute__((warn_unused_result))

void buf_init(buf_t *b, size_t max);
void buf_free(buf_t *b);
void buf_reset(buf_t *b);
/* Room for n more bytes without growing again (a writer that knows its
 * size skips the doublings); CB_ETOOLARGE past the cap. */
BUF_CHECK cb_err buf_reserve(buf_t *b, size_t n);
BUF_CHECK cb_err buf_append(buf_t *b, const void *p, size_t n);
BUF_CHECK cb_err buf_puts(buf_t *b, const char *s);
BUF_CHECK cb_err buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* v in decimal, as buf_printf("%lld") writes it, without the printf cost. */
BUF_CHECK cb_err buf_put_i64(buf_t *b, int64_t v);
/* Appends the n bytes b already holds at off (off + n <= len): safe when
 * growing moves them. */
BUF_CHECK cb_err buf_repeat(buf_t *b, size_t off, size_t n);
/* Gives up ownership of the bytes (malloc'd, NUL-terminated); b is reset. */
char *buf_steal(buf_t *b, size_t *len);
/* Never NULL: "" when empty. */
const char *buf_str(const buf_t *b);

/* Appends to b that keep the first failure in err (see the top). */
typedef struct {
    buf_t *b;
    cb_err err; /* CB_EOK until an append fails; then that append's error */
} buf_writer;

static inline buf_writer buf_writer_on(buf_t *b)
{
    return (buf_writer){.b = b, .err = CB_EOK};
}

void buf_w_append(buf_writer *w, const void *p, size_t n);
void buf_w_puts(buf_writer *w, const char *s);
void buf_w_printf(buf_writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_w_put_i64(buf_writer *w, int64_t v);
void buf_w_repeat(buf_writer *w, size_t off, size_t n);

#endif
