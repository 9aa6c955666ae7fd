/*
 * idmap.c — string → dense index map. See idmap.h for why it is hand-written.
 */
#include "idmap.h"

#include <stdlib.h>
#include <string.h>

#include "palloc.h"

#define EMPTY UINT32_MAX

struct pp_idmap {
    uint32_t *slots; /* index into keys, or EMPTY */
    uint32_t mask;   /* slot count - 1 (a power of two) */
    char **keys;
    uint32_t count;
    uint32_t keys_cap;
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
    map->slots = pp_xmalloc(nslots * sizeof(uint32_t));
    memset(map->slots, 0xff, nslots * sizeof(uint32_t));
    map->mask = nslots - 1;
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
    for (uint32_t i = 0; i < map->count; i++) {
        free(map->keys[i]);
    }
    free(map->keys);
    free(map->slots);
    free(map);
}

static uint32_t probe(const struct pp_idmap *map, const char *key, uint64_t h)
{
    uint32_t i = (uint32_t)h & map->mask;
    while (map->slots[i] != EMPTY && strcmp(map->keys[map->slots[i]], key) != 0) {
        i = (i + 1) & map->mask;
    }
    return i;
}

static void grow(struct pp_idmap *map)
{
    uint32_t *old = map->slots;
    uint32_t old_n = map->mask + 1;
    alloc_slots(map, old_n * 2);
    for (uint32_t i = 0; i < old_n; i++) {
        if (old[i] != EMPTY) {
            const char *k = map->keys[old[i]];
            map->slots[probe(map, k, pp_hash_str(k))] = old[i];
        }
    }
    free(old);
}

uint32_t pp_idmap_intern(struct pp_idmap *map, const char *key, bool *created)
{
    uint32_t i = probe(map, key, pp_hash_str(key));
    if (map->slots[i] != EMPTY) {
        if (created) {
            *created = false;
        }
        return map->slots[i];
    }
    if (map->count == map->keys_cap) {
        map->keys_cap = map->keys_cap ? map->keys_cap * 2 : 16;
        map->keys = pp_xrealloc(map->keys, map->keys_cap * sizeof(char *));
    }
    uint32_t idx = map->count++;
    map->keys[idx] = pp_xstrdup(key);
    map->slots[i] = idx;
    if ((uint64_t)map->count * 4 > (uint64_t)(map->mask + 1) * 3) {
        grow(map); /* keep the load factor under 3/4 */
    }
    if (created) {
        *created = true;
    }
    return idx;
}

int64_t pp_idmap_find(const struct pp_idmap *map, const char *key)
{
    uint32_t i = probe(map, key, pp_hash_str(key));
    return map->slots[i] == EMPTY ? -1 : (int64_t)map->slots[i];
}

const char *pp_idmap_key(const struct pp_idmap *map, uint32_t idx)
{
    return idx < map->count ? map->keys[idx] : NULL;
}

uint32_t pp_idmap_count(const struct pp_idmap *map)
{
    return map->count;
}
