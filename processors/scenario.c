/*
 * scenario.c — the walking skeleton's event generator. See scenario.h.
 */
#include "scenario.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ptime.h"

void pp_rng_seed(struct pp_rng *rng, uint64_t seed)
{
    rng->state = seed;
}

uint64_t pp_rng_next(struct pp_rng *rng)
{
    uint64_t z = (rng->state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

double pp_rng_uniform(struct pp_rng *rng)
{
    return (double)(pp_rng_next(rng) >> 11) * 0x1.0p-53;
}

uint32_t pp_rng_poisson(struct pp_rng *rng, double mean)
{
    double limit = exp(-mean), p = 1.0;
    uint32_t k = 0;
    do {
        k++;
        p *= pp_rng_uniform(rng);
    } while (p > limit && k < 1000);
    return k - 1;
}

struct gen {
    struct pp_rng rng;
    uint64_t seq;
    pp_event_sink *sink;
    void *opaque;
};

static void base_event(struct gen *g, struct pp_event *ev, enum pp_event_type type, int32_t day,
                       int minute)
{
    memset(ev, 0, sizeof(*ev));
    ev->type = type;
    snprintf(ev->event_id, sizeof(ev->event_id), "E-%08llu", (unsigned long long)++g->seq);
    ev->occurred_at_ms = pp_day_to_ms(day) + (int64_t)(8 * 60 + minute) * 60000;
}

struct cast {
    const char *partner;
    const char *customer;
    int32_t seats;
    bool surges;
};

static const struct cast skeleton_cast[] = {
    {"P-CALM", "C-CM1", 120, false}, {"P-CALM", "C-CM2", 200, false},
    {"P-CALM", "C-CM3", 80, false},  {"P-SURGE", "C-SG1", 150, true},
    {"P-SURGE", "C-SG2", 250, true}, {"P-SURGE", "C-SG3", 100, true},
};
#define CAST_N (sizeof(skeleton_cast) / sizeof(skeleton_cast[0]))

int pp_scenario_skeleton(const struct pp_scenario_conf *conf, pp_event_sink *sink, void *opaque)
{
    struct gen g = {.sink = sink, .opaque = opaque};
    pp_rng_seed(&g.rng, conf->seed);
    struct pp_event ev;
    int rc;

    for (size_t i = 0; i < CAST_N; i++) {
        const struct cast *c = &skeleton_cast[i];
        base_event(&g, &ev, PP_EV_DEAL, conf->start_day, (int)i);
        struct pp_deal *d = &ev.u.deal;
        snprintf(d->deal_id, sizeof(d->deal_id), "D-%s-1", c->customer);
        d->event_type = PP_DEAL_CLOSED_WON;
        snprintf(d->partner_id, sizeof(d->partner_id), "%s", c->partner);
        snprintf(d->customer_id, sizeof(d->customer_id), "%s", c->customer);
        snprintf(d->product_id, sizeof(d->product_id), "%s", "ACME-SUITE");
        d->kind = PP_KIND_NEW;
        d->close_date = conf->start_day;
        d->has_start_date = true;
        d->start_date = conf->start_day;
        d->term_months = 12;
        d->seats = c->seats;
        d->amount = (int64_t)c->seats * 600 * 85; /* $600/seat/year at 15% off, cents */
        d->has_discount_pct = true;
        d->discount_pct = 0.15;
        memcpy(d->currency, "USD", 4);
        int y;
        unsigned m, dd;
        pp_day_to_civil(conf->start_day, &y, &m, &dd);
        snprintf(d->fiscal_quarter, sizeof(d->fiscal_quarter), "%04d-Q%d", y % 10000,
                 (int)((m - 1) / 3 + 1) % 10);
        if ((rc = sink(&ev, opaque)) != 0) {
            return rc;
        }
    }

    for (int32_t k = 0; k < conf->days; k++) {
        int32_t day = conf->start_day + k;
        int minute = 60;
        for (size_t i = 0; i < CAST_N; i++) {
            const struct cast *c = &skeleton_cast[i];
            double mean = (c->surges && k >= 30 && k < 50) ? 3.0 : 0.5;
            uint32_t n = pp_rng_poisson(&g.rng, mean);
            for (uint32_t t = 0; t < n; t++) {
                base_event(&g, &ev, PP_EV_SUPPORT, day, minute++);
                struct pp_support *s = &ev.u.support;
                snprintf(s->ticket_id, sizeof(s->ticket_id), "T-%llu", (unsigned long long)g.seq);
                snprintf(s->customer_id, sizeof(s->customer_id), "%s", c->customer);
                s->has_product_id = true;
                snprintf(s->product_id, sizeof(s->product_id), "%s", "ACME-SUITE");
                s->event_type = PP_TICKET_OPENED;
                s->severity = 1 + (int32_t)(pp_rng_next(&g.rng) % 4);
                if ((rc = sink(&ev, opaque)) != 0) {
                    return rc;
                }
            }
        }
        /* Usage snapshots at 18:00, after the day's tickets: events stay in
         * event-time order. */
        for (size_t i = 0; i < CAST_N; i++) {
            const struct cast *c = &skeleton_cast[i];
            base_event(&g, &ev, PP_EV_CONSUMPTION, day, 600 + (int)i);
            struct pp_consumption *u = &ev.u.consumption;
            snprintf(u->customer_id, sizeof(u->customer_id), "%s", c->customer);
            snprintf(u->product_id, sizeof(u->product_id), "%s", "ACME-SUITE");
            u->as_of = day;
            u->licenses_entitled = c->seats;
            double util = 0.75 * (1.0 - exp(-(double)k / 45.0));
            u->licenses_active = (int32_t)lround(c->seats * util);
            if ((rc = sink(&ev, opaque)) != 0) {
                return rc;
            }
        }
    }
    return 0;
}
