/*
 * cache.h — a bounded cache of recent reads in front of a backend (private
 * to src/store; store.c decides what goes in).
 *
 * An entry is a key and a value, both bytes, tagged with the database's
 * change count read before the value was read from the database. It is
 * handed out only while the count is still the same: any write by any
 * process moves the count, and every entry older than it is dead from then
 * on. So a hit is never older than the last write that had ended before
 * the lookup began.
 *
 * Bounds: a fixed number of slots, one entry per slot (a new key replaces
 * whatever was there), values larger than a sixteenth of the budget are
 * not kept, and the bytes of all values stay within the budget.
 */
#ifndef CB_STORE_CACHE_H
#define CB_STORE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef struct store_cache store_cache;

/* NULL when out of memory; max_bytes > 0. */
store_cache *store_cache_create(size_t max_bytes);
void store_cache_destroy(store_cache *c);

/* An entry's memory: it lives while its slot or any holder has it. */
typedef struct store_cache_entry store_cache_entry;

/* Called with a hit's value while the entry cannot change; false when
 * the value could not be used (out of memory), which counts as a miss.
 * The reader may keep using the value after the call if it holds e. */
typedef bool (*store_cache_read_fn)(void *cls, const void *value, size_t len,
                                    store_cache_entry *e);

/* Keeps e's value valid (and unchanged) until store_cache_entry_drop(e),
 * even once the entry is dead or replaced. Only inside a read callback. */
void store_cache_entry_hold(store_cache_entry *e);
/* void * so that it can serve as a release callback. */
void store_cache_entry_drop(void *e);

/* True when key has a live entry for `changes` and read() accepted it. */
bool store_cache_get(store_cache *c, uint64_t changes, const void *key, size_t klen,
                     store_cache_read_fn read, void *cls);
/* Keeps a copy of key and the value head ++ tail (tail may be NULL). */
void store_cache_put(store_cache *c, uint64_t changes, const void *key, size_t klen,
                     const void *head, size_t hlen, const void *tail, size_t tlen);

/* Frees every entry (held ones live on until dropped). */
void store_cache_clear(store_cache *c);

/* bytes and entries count live and dead entries held. */
void store_cache_stats_get(store_cache *c, store_cache_stats *out);

#endif
