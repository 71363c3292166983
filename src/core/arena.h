/*
 * arena.h — a bump allocator for one request's short-lived data.
 *
 * Everything allocated from an arena is freed at once by arena_destroy (or
 * arena_reset). Nothing that must outlive the request may live here: such
 * objects have their own create/destroy pair. Allocation never fails
 * silently: on out-of-memory the process aborts, as a partially built answer
 * cannot be recovered anyway.
 */
#ifndef CB_ARENA_H
#define CB_ARENA_H

#include <stdarg.h>
#include <stddef.h>

typedef struct arena arena_t;

arena_t *arena_create(void);
void arena_destroy(arena_t *a);
/* Frees every allocation but keeps the first chunk for reuse. */
void arena_reset(arena_t *a);

/* Zeroed, max_align_t-aligned memory; n may be 0. */
void *arena_alloc(arena_t *a, size_t n);
char *arena_strdup(arena_t *a, const char *s);
char *arena_strndup(arena_t *a, const char *s, size_t n);
char *arena_printf(arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *arena_vprintf(arena_t *a, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Bytes handed out so far (for tests and diagnostics). */
size_t arena_used(const arena_t *a);

#endif
