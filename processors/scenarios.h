/*
 * scenarios.h — the MODEL.md §3 scenario stories as an event generator, for
 * `partnerpulse generate`, the backtest, the demo and the scenario tests.
 *
 * The generator simulates 2024-10-01 → 2025-12-31 day by day under the §3.0
 * conventions (fiscal calendar, QE windows, ACME-SUITE seats at $600/seat/yr,
 * ACME-DATA credits at $1, adoption u(age) = Umax·(1 − e^(−age/τ)), support
 * Poisson with a severity mix, escalations, CSAT, the vendor-wide incident of
 * 2025-06-10..13) and emits the deal, licence-consumption and support events
 * of the selected stories through a sink, in non-decreasing event time.
 *
 * Two modes:
 *  - deterministic (noise off): ε = 0, and every count (tickets, incident
 *    tickets, escalations, positive and negative CSAT responses) is emitted
 *    as whole events from its running fractional expectation: the k-th event
 *    on the day that expectation reaches k − 0.5, so each running count is
 *    the nearest whole number to its expectation (§3.0 rounds licences the
 *    same way); severities go to the one furthest behind its expectation;
 *  - noise: Poisson tickets, categorical severities, Bernoulli escalations and
 *    CSAT, ε ~ N(0, 0.03) on active licences and N(0, 0.10) on daily
 *    consumption, all from pp_rng seeded per customer from the seed, so one
 *    story's events do not change when other stories are selected.
 *
 * Event ids are derived from content (deal id, ticket id, customer and day),
 * never from a running counter: unique, deterministic, and stable across story
 * selections. docs/scenarios.md tells every story and the two commit stories
 * designed here (not in MODEL.md).
 */
#ifndef PP_SCENARIOS_H
#define PP_SCENARIOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "scenario.h" /* pp_event_sink, pp_rng */

/* Story selection: a bitmask. */
enum pp_scen_story {
    PP_SCEN_A = 1u << 0,          /* NorthPeak: healthy growing reseller (must not fire) */
    PP_SCEN_B = 1u << 1,          /* Apex: quarter-end stuffer with credits (must fire) */
    PP_SCEN_C = 1u << 2,          /* Meridian: support surge, then remediation */
    PP_SCEN_E = 1u << 3,          /* Orion: one healthy large QE deal (must not fire) */
    PP_SCEN_COMMIT = 1u << 4,     /* Stratos (stalled oversized commit) + Cirrus (on pace) */
    PP_SCEN_BACKGROUND = 1u << 5, /* 30 ACME-SUITE customers under 6 partners: cohort */
    PP_SCEN_ALL = (1u << 6) - 1,
};

/* Parses a comma-separated list of "A", "B", "C", "E", "commit",
 * "background", "all" (case-insensitive). 0 with *mask set, or -1 with
 * errstr naming the bad item. */
int pp_scen_parse_stories(const char *list, unsigned *mask, char *errstr, size_t errstr_size);

struct pp_scen_conf {
    unsigned stories;  /* enum pp_scen_story bits */
    bool noise;        /* false: deterministic */
    uint64_t seed;     /* noise mode only */
    int32_t first_day; /* default 2024-10-01 */
    int32_t last_day;  /* default 2025-12-31, inclusive */
};

/* All stories, deterministic, seed 1, 2024-10-01 → 2025-12-31. */
void pp_scen_conf_defaults(struct pp_scen_conf *conf);

/* Simulates the selected stories and calls sink once per event, in
 * non-decreasing occurred_at order; the event is borrowed for the call. Stops
 * early and returns the sink's value when it returns non-zero; 0 otherwise. */
int pp_scen_generate(const struct pp_scen_conf *conf, pp_event_sink *sink, void *opaque);

/* Expected (fractional) totals of the deterministic simulation, for tests and
 * `generate --summary`: what the whole-event counts round. */
struct pp_scen_expect {
    double tickets;   /* opened, all customers */
    double escalated; /* escalated events */
    double csat;      /* csat responses */
    double positive;  /* csat responses scored 4-5 */
};

/* Runs the generator with a sink of the caller's and also returns the
 * expectations accumulated along the way (deterministic or not). */
int pp_scen_generate_ex(const struct pp_scen_conf *conf, pp_event_sink *sink, void *opaque,
                        struct pp_scen_expect *expect);

/* The synthetic load for benchmarks: `partners` × `customers` each with one
 * ACME-SUITE deal on the first day, a daily licence snapshot per customer and
 * Poisson tickets at the default rate, for `days` days from `first_day`. Fast
 * and simple, not a story. Same seed, same events. */
struct pp_scen_load {
    uint32_t partners;
    uint32_t customers; /* per partner */
    int32_t days;
    int32_t first_day;
    uint64_t seed;
};
int pp_scen_generate_load(const struct pp_scen_load *load, pp_event_sink *sink, void *opaque);

/* QE window (last 14 days of the calendar quarter) and "YYYY-Qn". */
bool pp_scen_is_quarter_end(int32_t day);
void pp_scen_fiscal_quarter(int32_t day, char *buf, size_t size);

#endif
