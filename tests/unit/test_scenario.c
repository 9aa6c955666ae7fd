/*
 * test_scenario.c — the walking skeleton's generator (processors/scenario.h)
 * and its story end to end through the processor.
 *
 * Covers determinism per seed (a hash over every field of every event is the
 * same across runs and differs for another seed), event-time order of the
 * sink calls, early stop when the sink returns non-zero, and the alerts the
 * story yields through pp_proc over 90 days from 2025-07-01 with seed 1
 * (lateness 0, threshold 20, window 7): P-SURGE fires on 2025-07-31 and
 * resolves on 2025-08-25; P-CALM never fires. The expected values were
 * cross-checked against an independent count of the generated tickets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "idmap.h"
#include "proc.h"
#include "ptime.h"
#include "scenario.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- hashing every field --------------------------------------------------- */

struct digest {
    uint64_t hash;
    uint64_t count;
    int64_t last_ms;
    uint64_t out_of_order; /* sink calls whose time is before the previous one */
    char first_out_of_order[160];
};

static void mix(struct digest *dg, const char *line)
{
    dg->hash = (dg->hash ^ pp_hash_str(line)) * UINT64_C(0x100000001b3);
}

static void describe(const struct pp_event *ev, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%d|%s|%lld|", (int)ev->type, ev->event_id,
                     (long long)ev->occurred_at_ms);
    if (n < 0 || (size_t)n >= size) {
        return;
    }
    buf += n;
    size -= (size_t)n;
    switch (ev->type) {
    case PP_EV_DEAL: {
        const struct pp_deal *d = &ev->u.deal;
        snprintf(buf, size,
                 "%s|%d|%s|%s|%s|%d|%d|%d:%d|%d|%d|%lld|%d:%lld|%d:%.17g|%s|%d:%lld|%d:%d|%s",
                 d->deal_id, (int)d->event_type, d->partner_id, d->customer_id, d->product_id,
                 (int)d->kind, d->close_date, d->has_start_date, d->start_date, d->term_months,
                 d->seats, (long long)d->amount, d->has_list_amount, (long long)d->list_amount,
                 d->has_discount_pct, d->discount_pct, d->currency, d->has_commit_units,
                 (long long)d->commit_units, d->has_quarter_end, d->quarter_end, d->fiscal_quarter);
        break;
    }
    case PP_EV_CONSUMPTION: {
        const struct pp_consumption *c = &ev->u.consumption;
        snprintf(buf, size, "%s|%s|%d|%d|%d|%d:%.17g|%d:%d|%d:%d", c->customer_id, c->product_id,
                 c->as_of, c->licenses_entitled, c->licenses_active, c->has_consumption_units,
                 c->consumption_units, c->has_period_start, c->period_start, c->has_period_end,
                 c->period_end);
        break;
    }
    case PP_EV_SUPPORT: {
        const struct pp_support *s = &ev->u.support;
        snprintf(buf, size, "%s|%s|%d:%s|%d|%d|%d:%d|%d:%s", s->ticket_id, s->customer_id,
                 s->has_product_id, s->product_id, (int)s->event_type, s->severity,
                 s->has_csat_score, s->csat_score, s->has_vendor_incident_id,
                 s->vendor_incident_id);
        break;
    }
    }
}

static int digest_sink(const struct pp_event *ev, void *opaque)
{
    struct digest *dg = opaque;
    char line[1024];
    describe(ev, line, sizeof(line));
    mix(dg, line);
    if (dg->count > 0 && ev->occurred_at_ms < dg->last_ms) {
        if (dg->out_of_order++ == 0) {
            snprintf(dg->first_out_of_order, sizeof(dg->first_out_of_order),
                     "event %s (%s) at %lld after one at %lld", ev->event_id,
                     pp_event_type_name(ev->type), (long long)ev->occurred_at_ms,
                     (long long)dg->last_ms);
        }
    }
    dg->last_ms = ev->occurred_at_ms;
    dg->count++;
    return 0;
}

static struct pp_scenario_conf story(uint64_t seed)
{
    struct pp_scenario_conf conf = {
        .seed = seed, .start_day = pp_day_from_civil(2025, 7, 1), .days = 90};
    return conf;
}

static struct digest run_digest(uint64_t seed)
{
    struct digest dg = {.hash = UINT64_C(0xcbf29ce484222325)};
    struct pp_scenario_conf conf = story(seed);
    assert_int_equal(pp_scenario_skeleton(&conf, digest_sink, &dg), 0);
    return dg;
}

static void test_deterministic_per_seed(void **state)
{
    (void)state;
    struct digest a = run_digest(1), b = run_digest(1), c = run_digest(2);
    assert_true(a.count > 6 + 90 * 6); /* 6 deals, 6 snapshots a day, tickets */
    assert_int_equal(a.count, b.count);
    assert_true(a.hash == b.hash);
    assert_true(a.hash != c.hash);
}

static void test_events_in_event_time_order(void **state)
{
    (void)state;
    static const uint64_t seeds[] = {1, 2, 42};
    for (size_t i = 0; i < N(seeds); i++) {
        struct digest dg = run_digest(seeds[i]);
        if (dg.out_of_order != 0) {
            fail_msg("seed %llu: %llu events go back in time; first: %s",
                     (unsigned long long)seeds[i], (unsigned long long)dg.out_of_order,
                     dg.first_out_of_order);
        }
    }
}

struct stopper {
    int calls;
    int stop_at;
};

static int stop_sink(const struct pp_event *ev, void *opaque)
{
    (void)ev;
    struct stopper *st = opaque;
    return ++st->calls == st->stop_at ? 7 : 0;
}

static void test_sink_stops_early(void **state)
{
    (void)state;
    struct pp_scenario_conf conf = story(1);
    static const int stops[] = {1, 6, 7, 100};
    for (size_t i = 0; i < N(stops); i++) {
        struct stopper st = {0, stops[i]};
        assert_int_equal(pp_scenario_skeleton(&conf, stop_sink, &st), 7);
        assert_int_equal(st.calls, stops[i]);
    }
}

/* ---- the story through the processor ----------------------------------------- */

struct run {
    struct pp_proc *ctx;
    struct pp_alert alerts[16];
    size_t n;
    uint64_t not_ok;
    /* Independent count: tickets opened per surge partner customer per day. */
    uint32_t surge_tickets[90];
    int32_t start_day;
};

static void collect(const struct pp_alert *alert, void *opaque)
{
    struct run *r = opaque;
    if (r->n >= N(r->alerts)) {
        fail_msg("too many alerts");
    }
    r->alerts[r->n++] = *alert;
}

static int proc_sink(const struct pp_event *ev, void *opaque)
{
    struct run *r = opaque;
    if (ev->type == PP_EV_SUPPORT && ev->u.support.event_type == PP_TICKET_OPENED &&
        strncmp(ev->u.support.customer_id, "C-SG", 4) == 0) {
        int32_t k = pp_day_from_ms(ev->occurred_at_ms) - r->start_day;
        assert_in_range(k, 0, 89);
        r->surge_tickets[k]++;
    }
    if (pp_proc_apply(r->ctx, ev) != PP_APPLY_OK) {
        r->not_ok++;
    }
    pp_proc_advance(r->ctx, ev->occurred_at_ms, collect, r);
    return 0;
}

static uint32_t window_sum(const struct run *r, int32_t k)
{
    uint32_t sum = 0;
    for (int32_t j = k - 6; j <= k; j++) {
        sum += j >= 0 ? r->surge_tickets[j] : 0;
    }
    return sum;
}

static void test_story_through_processor(void **state)
{
    (void)state;
    struct pp_proc_conf pconf;
    pp_proc_conf_defaults(&pconf);
    pconf.allowed_lateness_ms = 0;
    pconf.surge_threshold = 20;
    pconf.surge_window_days = 7;
    struct run *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->ctx = pp_proc_new(&pconf);
    struct pp_scenario_conf conf = story(1);
    r->start_day = conf.start_day;
    assert_int_equal(pp_scenario_skeleton(&conf, proc_sink, r), 0);
    /* Close the last simulated day too. */
    pp_proc_advance(r->ctx, pp_day_to_ms(conf.start_day + conf.days), collect, r);

    assert_int_equal(r->not_ok, 0);
    assert_int_equal(pp_proc_stats(r->ctx)->days_evaluated, 90);
    assert_int_equal(pp_proc_partner_count(r->ctx), 2);

    int32_t fire = pp_day_from_civil(2025, 7, 31), resolve = pp_day_from_civil(2025, 8, 25);
    /* The independent count agrees: the first day at 20 or more, and the first
     * one below after it. */
    int32_t k_fire = -1, k_resolve = -1;
    for (int32_t k = 0; k < 90; k++) {
        if (k_fire < 0 && window_sum(r, k) >= 20) {
            k_fire = k;
        }
        else if (k_fire >= 0 && k_resolve < 0 && window_sum(r, k) < 20) {
            k_resolve = k;
        }
    }
    assert_int_equal(conf.start_day + k_fire, fire);
    assert_int_equal(conf.start_day + k_resolve, resolve);
    assert_int_equal(window_sum(r, k_fire), 21);
    assert_int_equal(window_sum(r, k_resolve), 10);

    assert_int_equal(r->n, 2);
    const struct pp_alert *a = &r->alerts[0];
    assert_int_equal(a->status, PP_ALERT_FIRING);
    assert_string_equal(a->partner_id, "P-SURGE");
    assert_int_equal(a->eval_day, fire);
    assert_int_equal(a->first_seen_day, fire);
    assert_true(a->value == 21.0);
    assert_true(a->threshold == 20.0);
    assert_int_equal(a->window_days, 7);
    assert_string_equal(a->alert_id, "cpi:v1:default:TICKET_SURGE:P-SURGE:*:2025-07-31");
    a = &r->alerts[1];
    assert_int_equal(a->status, PP_ALERT_RESOLVED);
    assert_string_equal(a->partner_id, "P-SURGE");
    assert_int_equal(a->eval_day, resolve);
    assert_int_equal(a->first_seen_day, fire);
    assert_true(a->value == 10.0);
    assert_string_equal(a->alert_id, "cpi:v1:default:TICKET_SURGE:P-SURGE:*:2025-07-31");
    for (size_t i = 0; i < r->n; i++) {
        assert_string_not_equal(r->alerts[i].partner_id, "P-CALM");
    }
    pp_proc_destroy(r->ctx);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic_per_seed),
        cmocka_unit_test(test_events_in_event_time_order),
        cmocka_unit_test(test_sink_stops_early),
        cmocka_unit_test(test_story_through_processor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
