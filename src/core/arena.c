/*
 * arena.c — chunked bump allocator.
 *
 * Invariants: `head` is the chunk being carved; every chunk is linked from
 * it through `next`; requests larger than a quarter chunk get a chunk of
 * their own so that big allocations do not waste the current one.
 */
#include "core/arena.h"

#include <assert.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK 8192

struct chunk {
    struct chunk *next;
    size_t size; /* usable bytes in data[] */
    size_t used;
    alignas(max_align_t) unsigned char data[];
};

struct arena {
    struct chunk *head;
    size_t total;
};

static struct chunk *chunk_new(size_t size)
{
    struct chunk *c = malloc(sizeof(*c) + size);
    if (c == NULL) {
        fputs("crmblob: out of memory\n", stderr);
        abort();
    }
    c->next = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

arena_t *arena_create(void)
{
    arena_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        abort();
    a->head = chunk_new(ARENA_CHUNK);
    return a;
}

static void free_chain(struct chunk *c)
{
    while (c != NULL) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
}

void arena_destroy(arena_t *a)
{
    if (a == NULL)
        return;
    free_chain(a->head);
    free(a);
}

void arena_reset(arena_t *a)
{
    /* keep one standard-size chunk for reuse, free the rest */
    struct chunk *keep = NULL, *c = a->head;
    while (c != NULL) {
        struct chunk *next = c->next;
        if (keep == NULL && c->size == ARENA_CHUNK)
            keep = c;
        else
            free(c);
        c = next;
    }
    if (keep == NULL)
        keep = chunk_new(ARENA_CHUNK);
    keep->next = NULL;
    keep->used = 0;
    a->head = keep;
    a->total = 0;
}

void *arena_alloc(arena_t *a, size_t n)
{
    const size_t align = alignof(max_align_t);
    size_t need = (n + align - 1) & ~(align - 1);
    if (need == 0)
        need = align;
    struct chunk *c = a->head;
    if (need > c->size - c->used) {
        if (need > ARENA_CHUNK / 4) {
            /* oversized: own chunk, linked behind head so head keeps carving */
            struct chunk *big = chunk_new(need);
            big->used = need;
            big->next = c->next;
            c->next = big;
            a->total += need;
            memset(big->data, 0, need);
            return big->data;
        }
        c = chunk_new(ARENA_CHUNK);
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += need;
    a->total += need;
    memset(p, 0, need);
    return p;
}

char *arena_strndup(arena_t *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(arena_t *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

char *arena_vprintf(arena_t *a, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    assert(n >= 0);
    char *p = arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *arena_printf(arena_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = arena_vprintf(a, fmt, ap);
    va_end(ap);
    return p;
}

size_t arena_used(const arena_t *a)
{
    return a->total;
}
