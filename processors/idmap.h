/*
 * idmap.h — interning of string identifiers (partner, customer ids) to dense
 * indexes.
 *
 * State lives in arrays indexed by these dense ids, so the hot path does one
 * hash lookup per event and no allocation once a key has been seen. Written
 * by hand because processors/ may depend on libc only (DESIGN.md §2) and this
 * lookup is on the per-event path: open addressing, linear probing, FNV-1a.
 */
#ifndef PP_IDMAP_H
#define PP_IDMAP_H

#include <stdbool.h>
#include <stdint.h>

struct pp_idmap;

struct pp_idmap *pp_idmap_new(void);
void pp_idmap_destroy(struct pp_idmap *map);

/* Returns the index of `key`, inserting it (a copy) with the next index when
 * absent; *created tells which (may be NULL). Indexes are 0..count-1 in
 * insertion order and never change. */
uint32_t pp_idmap_intern(struct pp_idmap *map, const char *key, bool *created);

/* As pp_idmap_intern, with h = pp_hash_str(key) computed by the caller. */
uint32_t pp_idmap_intern_h(struct pp_idmap *map, const char *key, uint64_t h, bool *created);

/* Asks the CPU to start loading the slot where a lookup of a key hashing to
 * h begins (h = pp_hash_str(key)), so that a lookup issued a little later,
 * after other work, does not wait for memory in a large map. A hint only:
 * changes nothing. */
void pp_idmap_prefetch(const struct pp_idmap *map, uint64_t h);

/* A guess at the index of a key hashing to h, for prefetching only: the
 * first entry of its probe run whose stored hash bits agree (the key itself
 * is not compared), or UINT32_MAX when the run ends first. Reads the map,
 * never changes it; a wrong guess costs a useless prefetch, nothing else. */
uint32_t pp_idmap_peek(const struct pp_idmap *map, uint64_t h);

/* Asks the CPU to start loading where the key of index idx is found (the
 * pointer to it; pass the pointer's target to a prefetch once that has
 * arrived: pp_idmap_key). idx >= count is ignored. A hint only. */
void pp_idmap_prefetch_key(const struct pp_idmap *map, uint32_t idx);

/* Returns the index of `key`, or -1 when absent. */
int64_t pp_idmap_find(const struct pp_idmap *map, const char *key);

/* The key of index idx (borrowed; lives as long as the map). */
const char *pp_idmap_key(const struct pp_idmap *map, uint32_t idx);
uint32_t pp_idmap_count(const struct pp_idmap *map);

/* 64-bit FNV-1a over a NUL-terminated string. */
uint64_t pp_hash_str(const char *s);

#endif
