/*
 * reqid.c — request ids (see reqid.h).
 *
 * Invariant: what http_reqid_pick writes is NUL-terminated, 1..64 bytes,
 * and holds only the characters http_reqid_valid accepts.
 */
#include "http/reqid.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>

void http_reqid_init(http_reqid_gen *g)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
        seed = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull; /* still distinct per start */
    g->seed = seed;
    atomic_init(&g->next, 0);
}

static bool id_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("-._:+/=@", c) != NULL);
}

bool http_reqid_valid(const char *v)
{
    size_t n = 0;
    for (; v[n] != '\0'; n++)
        if (n >= HTTP_REQID_MAX - 1 || !id_char((unsigned char)v[n]))
            return false;
    return n > 0;
}

/* splitmix64's finalizer: a bijection of the 64-bit values. */
static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void http_reqid_pick(http_reqid_gen *g, const char *sent, char out[HTTP_REQID_MAX])
{
    static const char hex[] = "0123456789abcdef";
    if (sent != NULL && http_reqid_valid(sent)) {
        strcpy(out, sent); /* valid: shorter than HTTP_REQID_MAX */
        return;
    }
    uint64_t n = atomic_fetch_add_explicit(&g->next, 1, memory_order_relaxed);
    uint64_t v = mix(g->seed + n * 0x9E3779B97F4A7C15ull); /* odd step: distinct per n */
    for (int i = 15; i >= 0; i--, v >>= 4)
        out[i] = hex[v & 15];
    out[16] = '\0';
}
