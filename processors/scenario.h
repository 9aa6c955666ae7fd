/*
 * scenario.h — deterministic event generators for the demo, the tests and
 * `partnerpulse generate`.
 *
 * A generator calls the sink once per event, in event-time order, and stops
 * early when the sink returns non-zero. Same configuration and seed, same
 * events, byte for byte: the generator uses its own PRNG (splitmix64), never
 * rand().
 */
#ifndef PP_SCENARIO_H
#define PP_SCENARIO_H

#include <stdint.h>

#include "event.h"

struct pp_scenario_conf {
    uint64_t seed;
    int32_t start_day; /* days since epoch of the first simulated day */
    int32_t days;      /* how many days to simulate */
};

typedef int(pp_event_sink)(const struct pp_event *ev, void *opaque);

/* The walking skeleton's story: P-SURGE's three customers drown in tickets
 * between day 30 and day 50 (about 9 a day together), P-CALM's three stay at
 * about 1.5 a day. With the default TICKET_SURGE rule (20 tickets in 7 days)
 * P-SURGE fires around day 32 and resolves a few days after day 50; P-CALM
 * never fires. Returns the sink's non-zero value if it stopped early. */
int pp_scenario_skeleton(const struct pp_scenario_conf *conf, pp_event_sink *sink, void *opaque);

/* A small deterministic PRNG, exposed for generators and tests. */
struct pp_rng {
    uint64_t state;
};
void pp_rng_seed(struct pp_rng *rng, uint64_t seed);
uint64_t pp_rng_next(struct pp_rng *rng);
double pp_rng_uniform(struct pp_rng *rng);                /* [0, 1) */
uint32_t pp_rng_poisson(struct pp_rng *rng, double mean); /* Knuth; mean < ~30 */

#endif
