/*
 * idmap.c — string → dense index map. See idmap.h for why it is hand-written.
 */
#include "idmap.h"

#include <stdlib.h>
#include <string.h>

#include "palloc.h"

#define EMPTY UINT32_MAX

/* The keys live in blocks that never move (pp_idmap_key's pointers stay
 * valid), packed one after the other: no allocation and no malloc header
 * per key. Blocks double from 256 bytes to 64 KiB. */
#define BLK_MIN 256
#define BLK_MAX 65536

struct kblk {
    struct kblk *next;
    size_t used, cap;
    char data[];
};

/* A slot: the key's index in the low half, the high half of its hash in the
 * high half, so that a probe compares strings only when the hashes agree
 * (one cache miss per lookup, not one per probed slot). */
struct pp_idmap {
    uint64_t *slots; /* EMPTY index = free */
    uint32_t mask;   /* slot count - 1 (a power of two) */
    const char **keys;
    uint32_t count;
    uint32_t keys_cap;
    struct kblk *blk; /* newest first */
};

uint64_t pp_hash_str(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static void alloc_slots(struct pp_idmap *map, uint32_t nslots)
{
    map->slots = pp_xcalloc_table(nslots, sizeof(uint64_t));
    memset(map->slots, 0xff, nslots * sizeof(uint64_t));
    map->mask = nslots - 1;
}

static uint32_t slot_idx(uint64_t v)
{
    return (uint32_t)v;
}

static uint64_t slot_make(uint32_t idx, uint64_t h)
{
    return (h & UINT64_C(0xffffffff00000000)) | idx;
}

struct pp_idmap *pp_idmap_new(void)
{
    struct pp_idmap *map = pp_xcalloc(1, sizeof(*map));
    alloc_slots(map, 16);
    return map;
}

void pp_idmap_destroy(struct pp_idmap *map)
{
    if (map == NULL) {
        return;
    }
    while (map->blk) {
        struct kblk *next = map->blk->next;
        free(map->blk);
        map->blk = next;
    }
    free(map->keys);
    free(map->slots);
    free(map);
}

/* The slot holding key, or the free slot where it would go. */
static uint32_t probe(const struct pp_idmap *map, const char *key, uint64_t h)
{
    uint32_t i = (uint32_t)h & map->mask;
    uint64_t tag = h & UINT64_C(0xffffffff00000000);
    for (;;) {
        uint64_t v = map->slots[i];
        if (slot_idx(v) == EMPTY) {
            return i;
        }
        if ((v & UINT64_C(0xffffffff00000000)) == tag && strcmp(map->keys[slot_idx(v)], key) == 0) {
            return i;
        }
        i = (i + 1) & map->mask;
    }
}

/* Keys rehashed per round of grow(): their new slots are all requested
 * before the first is written. */
#define GROW_ROUND 16

static void grow(struct pp_idmap *map)
{
    uint32_t n_slots = (map->mask + 1) * 2;
    free(map->slots);
    alloc_slots(map, n_slots);
    /* Rebuilt from the keys in index order, which is the order they are
     * stored in: the key pointers and the strings are read one after the
     * other, not at random as a walk of the old slots would (two misses per
     * key with a million of them). The new slots are random: a round's are
     * requested together so that their misses overlap. Keys are distinct:
     * each takes the first free slot of its probe run. */
    uint64_t h[GROW_ROUND];
    for (uint32_t base = 0; base < map->count; base += GROW_ROUND) {
        uint32_t n = map->count - base < GROW_ROUND ? map->count - base : GROW_ROUND;
        for (uint32_t i = 0; i < n; i++) {
            h[i] = pp_hash_str(map->keys[base + i]);
            pp_idmap_prefetch(map, h[i]);
        }
        for (uint32_t i = 0; i < n; i++) {
            uint32_t j = (uint32_t)h[i] & map->mask;
            while (slot_idx(map->slots[j]) != EMPTY) {
                j = (j + 1) & map->mask;
            }
            map->slots[j] = slot_make(base + i, h[i]);
        }
    }
}

static const char *key_store(struct pp_idmap *map, const char *key)
{
    size_t n = strlen(key) + 1;
    struct kblk *b = map->blk;
    if (b == NULL || b->cap - b->used < n) {
        size_t cap = b ? b->cap * 2 : BLK_MIN;
        cap = cap > BLK_MAX ? BLK_MAX : cap;
        cap = cap < n ? n : cap;
        struct kblk *nb = pp_xmalloc(sizeof(*nb) + cap);
        nb->next = b;
        nb->used = 0;
        nb->cap = cap;
        map->blk = b = nb;
    }
    char *dst = b->data + b->used;
    memcpy(dst, key, n);
    b->used += n;
    return dst;
}

uint32_t pp_idmap_intern(struct pp_idmap *map, const char *key, bool *created)
{
    return pp_idmap_intern_h(map, key, pp_hash_str(key), created);
}

void pp_idmap_prefetch(const struct pp_idmap *map, uint64_t h)
{
#if defined(__GNUC__)
    __builtin_prefetch(&map->slots[(uint32_t)h & map->mask], 0, 3);
#else
    (void)map;
    (void)h;
#endif
}

uint32_t pp_idmap_intern_h(struct pp_idmap *map, const char *key, uint64_t h, bool *created)
{
    uint32_t i = probe(map, key, h);
    if (slot_idx(map->slots[i]) != EMPTY) {
        if (created) {
            *created = false;
        }
        return slot_idx(map->slots[i]);
    }
    if (map->count == map->keys_cap) {
        map->keys_cap = map->keys_cap ? map->keys_cap * 2 : 16;
        map->keys = pp_xrealloc(map->keys, map->keys_cap * sizeof(char *));
    }
    uint32_t idx = map->count++;
    map->keys[idx] = key_store(map, key);
    map->slots[i] = slot_make(idx, h);
    if ((uint64_t)map->count * 4 > (uint64_t)(map->mask + 1) * 3) {
        grow(map); /* keep the load factor under 3/4 */
    }
    if (created) {
        *created = true;
    }
    return idx;
}

uint32_t pp_idmap_peek(const struct pp_idmap *map, uint64_t h)
{
    uint32_t i = (uint32_t)h & map->mask;
    uint64_t tag = h & UINT64_C(0xffffffff00000000);
    for (;;) {
        uint64_t v = map->slots[i];
        if (slot_idx(v) == EMPTY || (v & UINT64_C(0xffffffff00000000)) == tag) {
            return slot_idx(v);
        }
        i = (i + 1) & map->mask;
    }
}

void pp_idmap_prefetch_key(const struct pp_idmap *map, uint32_t idx)
{
#if defined(__GNUC__)
    if (idx < map->count) {
        __builtin_prefetch(&map->keys[idx], 0, 3);
    }
#else
    (void)map;
    (void)idx;
#endif
}

int64_t pp_idmap_find(const struct pp_idmap *map, const char *key)
{
    uint32_t i = probe(map, key, pp_hash_str(key));
    return slot_idx(map->slots[i]) == EMPTY ? -1 : (int64_t)slot_idx(map->slots[i]);
}

const char *pp_idmap_key(const struct pp_idmap *map, uint32_t idx)
{
    return idx < map->count ? map->keys[idx] : NULL;
}

uint32_t pp_idmap_count(const struct pp_idmap *map)
{
    return map->count;
}
