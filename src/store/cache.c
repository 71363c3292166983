/*
 * cache.c — the store's read cache (cache.h).
 *
 * Layout: SLOTS slots, a key's slot chosen by its FNV-1a hash; SLOTS/
 * SLOTS_PER_LOCK mutexes, each guarding a run of slots, so that threads
 * reading different keys rarely wait on each other. An entry is one
 * malloc'd block: a reference count, then the key's bytes followed by the
 * value's. Its slot holds one reference, each holder (a picture being
 * sent) one more; the last to drop it frees it. `bytes` counts the values
 * in slots and is only changed under the lock of the slot whose entry
 * comes or goes.
 */
#include "store/cache.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 1024u
#define SLOTS_PER_LOCK 16u
#define LOCKS (SLOTS / SLOTS_PER_LOCK)

struct store_cache_entry {
    atomic_uint refs;
    unsigned char data[]; /* key then value */
};

typedef struct {
    store_cache_entry *block; /* NULL when empty */
    uint64_t hash;
    uint64_t changes;
    size_t klen, vlen;
} slot;

struct store_cache {
    size_t max_bytes;
    atomic_size_t bytes;
    atomic_size_t entries;
    atomic_uint_fast64_t hits, misses;
    pthread_mutex_t locks[LOCKS];
    slot slots[SLOTS];
};

static uint64_t key_hash(const void *key, size_t klen)
{
    const unsigned char *p = key;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < klen; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

store_cache *store_cache_create(size_t max_bytes)
{
    assert(max_bytes > 0);
    store_cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->max_bytes = max_bytes;
    for (unsigned i = 0; i < LOCKS; i++)
        pthread_mutex_init(&c->locks[i], NULL);
    return c;
}

void store_cache_entry_hold(store_cache_entry *e)
{
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
}

void store_cache_entry_drop(void *p)
{
    store_cache_entry *e = p;
    if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
        free(e);
}

/* Empties s. Under its lock. */
static void slot_clear(store_cache *c, slot *s)
{
    if (s->block == NULL)
        return;
    atomic_fetch_sub(&c->bytes, s->vlen);
    atomic_fetch_sub(&c->entries, 1);
    store_cache_entry_drop(s->block);
    *s = (slot){0};
}

void store_cache_destroy(store_cache *c)
{
    if (c == NULL)
        return;
    for (unsigned i = 0; i < SLOTS; i++)
        slot_clear(c, &c->slots[i]);
    for (unsigned i = 0; i < LOCKS; i++)
        pthread_mutex_destroy(&c->locks[i]);
    free(c);
}

static bool slot_holds(const slot *s, uint64_t hash, const void *key, size_t klen)
{
    return s->block != NULL && s->hash == hash && s->klen == klen &&
           memcmp(s->block->data, key, klen) == 0;
}

bool store_cache_get(store_cache *c, uint64_t changes, const void *key, size_t klen,
                     store_cache_read_fn read, void *cls)
{
    uint64_t h = key_hash(key, klen);
    unsigned i = (unsigned)(h % SLOTS);
    slot *s = &c->slots[i];
    bool hit = false;
    pthread_mutex_lock(&c->locks[i / SLOTS_PER_LOCK]);
    if (slot_holds(s, h, key, klen)) {
        if (s->changes == changes)
            hit = read(cls, s->block->data + klen, s->vlen, s->block);
        else
            slot_clear(c, s); /* dead: a write came after it */
    }
    pthread_mutex_unlock(&c->locks[i / SLOTS_PER_LOCK]);
    atomic_fetch_add_explicit(hit ? &c->hits : &c->misses, 1, memory_order_relaxed);
    return hit;
}

/* Frees every entry not made for `changes`: those are dead, or will be
 * at the next lookup. Takes each lock in turn. */
static void sweep_dead(store_cache *c, uint64_t changes)
{
    for (unsigned i = 0; i < SLOTS; i++) {
        pthread_mutex_lock(&c->locks[i / SLOTS_PER_LOCK]);
        if (c->slots[i].block != NULL && c->slots[i].changes != changes)
            slot_clear(c, &c->slots[i]);
        pthread_mutex_unlock(&c->locks[i / SLOTS_PER_LOCK]);
    }
}

void store_cache_clear(store_cache *c)
{
    for (unsigned i = 0; i < SLOTS; i++) {
        pthread_mutex_lock(&c->locks[i / SLOTS_PER_LOCK]);
        slot_clear(c, &c->slots[i]);
        pthread_mutex_unlock(&c->locks[i / SLOTS_PER_LOCK]);
    }
}

/* Puts entry e into its slot, replacing what was there, if the budget
 * allows; true when it did (the slot owns e's block then). */
static bool slot_fill(store_cache *c, const slot *e)
{
    unsigned i = (unsigned)(e->hash % SLOTS);
    bool kept = false;
    pthread_mutex_lock(&c->locks[i / SLOTS_PER_LOCK]);
    slot_clear(c, &c->slots[i]);
    if (atomic_load(&c->bytes) + e->vlen <= c->max_bytes) {
        c->slots[i] = *e;
        atomic_fetch_add(&c->bytes, e->vlen);
        atomic_fetch_add(&c->entries, 1);
        kept = true;
    }
    pthread_mutex_unlock(&c->locks[i / SLOTS_PER_LOCK]);
    return kept;
}

void store_cache_put(store_cache *c, uint64_t changes, const void *key, size_t klen,
                     const void *head, size_t hlen, const void *tail, size_t tlen)
{
    size_t vlen = hlen + tlen;
    if (vlen > c->max_bytes / 16)
        return;
    store_cache_entry *block = malloc(sizeof(*block) + klen + vlen);
    if (block == NULL)
        return;
    atomic_init(&block->refs, 1); /* the slot's */
    memcpy(block->data, key, klen);
    memcpy(block->data + klen, head, hlen);
    if (tlen > 0)
        memcpy(block->data + klen + hlen, tail, tlen);
    slot e = {block, key_hash(key, klen), changes, klen, vlen};
    if (slot_fill(c, &e))
        return;
    sweep_dead(c, changes); /* over budget: dead entries first */
    if (!slot_fill(c, &e))
        free(block); /* the live ones fill the budget: not kept */
}

void store_cache_stats_get(store_cache *c, store_cache_stats *out)
{
    *out = (store_cache_stats){
        .hits = atomic_load(&c->hits),
        .misses = atomic_load(&c->misses),
        .bytes = atomic_load(&c->bytes),
        .entries = atomic_load(&c->entries),
    };
}
