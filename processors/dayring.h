/*
 * dayring.h — a ring buffer of daily counters over a fixed horizon.
 *
 * The rolling windows of the model (DESIGN.md §4) are sums over the last W
 * day buckets. A dayring holds `width` consecutive days ending at `head`;
 * adding to a day inside the horizon is O(1), moving the head forward clears
 * the days that fall out, and adding to a day older than the horizon is
 * refused (the caller counts it as too late). Memory is fixed at creation.
 */
#ifndef PP_DAYRING_H
#define PP_DAYRING_H

#include <stdbool.h>
#include <stdint.h>

#define PP_DAYRING_MAX_WIDTH 400

struct pp_dayring {
    int32_t head; /* newest day covered; INT32_MIN before the first add */
    uint16_t width;
    uint32_t counts[]; /* width slots, slot = day mod width */
};

/* Allocates a ring of `width` days (1..PP_DAYRING_MAX_WIDTH); NULL otherwise.
 * Free with pp_dayring_destroy(). */
struct pp_dayring *pp_dayring_new(uint16_t width);
void pp_dayring_destroy(struct pp_dayring *ring);

/* Moves the head forward to `day` (no-op when day <= head). */
void pp_dayring_advance(struct pp_dayring *ring, int32_t day);

/* Adds n to `day`, advancing the head when day is newer. Returns false, and
 * changes nothing, when day is older than the horizon. Counters saturate. */
bool pp_dayring_add(struct pp_dayring *ring, int32_t day, uint32_t n);

/* Sum of the days in [from, to] that the ring still covers. */
uint64_t pp_dayring_sum(const struct pp_dayring *ring, int32_t from, int32_t to);

#endif
