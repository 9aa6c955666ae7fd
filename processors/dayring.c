/*
 * dayring.c — fixed-horizon daily counters. See dayring.h.
 */
#include "dayring.h"

#include <stdlib.h>
#include <string.h>

#include "palloc.h"

static uint32_t slot(const struct pp_dayring *ring, int32_t day)
{
    int32_t s = day % (int32_t)ring->width;
    return (uint32_t)(s < 0 ? s + ring->width : s);
}

struct pp_dayring *pp_dayring_new(uint16_t width)
{
    if (width == 0 || width > PP_DAYRING_MAX_WIDTH) {
        return NULL;
    }
    struct pp_dayring *ring = pp_xcalloc(1, sizeof(*ring) + width * sizeof(uint32_t));
    ring->head = INT32_MIN;
    ring->width = width;
    return ring;
}

void pp_dayring_destroy(struct pp_dayring *ring)
{
    free(ring);
}

void pp_dayring_advance(struct pp_dayring *ring, int32_t day)
{
    if (ring->head == INT32_MIN) {
        ring->head = day;
        return;
    }
    if (day <= ring->head) {
        return;
    }
    if ((int64_t)day - ring->head >= ring->width) {
        memset(ring->counts, 0, ring->width * sizeof(uint32_t));
    }
    else {
        for (int64_t d = (int64_t)ring->head + 1; d <= day; d++) {
            ring->counts[slot(ring, (int32_t)d)] = 0;
        }
    }
    ring->head = day;
}

bool pp_dayring_add(struct pp_dayring *ring, int32_t day, uint32_t n)
{
    pp_dayring_advance(ring, day);
    if ((int64_t)ring->head - day >= ring->width) {
        return false;
    }
    uint32_t *c = &ring->counts[slot(ring, day)];
    *c = (UINT32_MAX - *c < n) ? UINT32_MAX : *c + n;
    return true;
}

uint64_t pp_dayring_sum(const struct pp_dayring *ring, int32_t from, int32_t to)
{
    if (ring->head == INT32_MIN) {
        return 0;
    }
    int64_t oldest = (int64_t)ring->head - ring->width + 1;
    int64_t lo = from > oldest ? from : oldest;
    int64_t hi = to < ring->head ? to : ring->head;
    uint64_t sum = 0;
    for (int64_t d = lo; d <= hi; d++) {
        sum += ring->counts[slot(ring, (int32_t)d)];
    }
    return sum;
}
