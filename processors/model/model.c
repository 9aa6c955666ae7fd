/*
 * model.c — the health and pressure model of MODEL.md §2 as one object
 * (model.h): its configuration, and pp_model itself, which is one customers
 * stage (source 0 of 1) feeding one partners stage directly (stage.h).
 *
 * The state, the event application and the daily evaluation live in the
 * stages (cstage.c, pstage.c), split along MODEL.md §1 so that the
 * exactly-once runtime can run N customers tasks and one partners task; one
 * pp_model is the N = 1 case without the exchange topic in between, so the
 * backtest, the scenario tests and the benchmark run the same code as the
 * service. Exchange records go from one stage to the other by callback,
 * never encoded, and the partners stage evaluates each assessment as it
 * arrives (stage.h): the split costs one struct copy per customer and day.
 *
 * See docs/model.md for every decision taken where MODEL.md is silent.
 */
#include "model.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "palloc.h"
#include "ptime.h"
#include "stage_int.h"

/* ---- configuration ---------------------------------------------------------- */

void pp_model_conf_defaults(struct pp_model_conf *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->tenant, sizeof(c->tenant), "%s", "default");
    c->allowed_lateness_ms = 24 * INT64_C(3600000);
    c->dedup_horizon_days = 7;
    c->state_days = 128;
    c->adopt_short_days = 30;
    c->adopt_long_days = 90;
    c->load_short_days = 14;
    c->load_long_days = 30;
    c->ratio_short_days = 30;
    c->ratio_long_days = 90;
    c->push_short_days = 180;
    c->push_long_days = 365;
    c->warn_risk = 0.5;
    c->crit_risk = 0.85;
    c->shelf_good = 0.20;
    c->shelf_bad = 0.80;
    c->shelf_min_seats = 10;
    c->shelf_aged_days = 60;
    c->shelf_aged_share = 0.5;
    c->snapshot_gap_days = 14;
    const uint32_t ages[4] = {30, 60, 180, 270};
    const double targets[5] = {0.0, 0.25, 0.50, 0.65, 0.75};
    memcpy(c->adopt_age, ages, sizeof(ages));
    memcpy(c->adopt_target, targets, sizeof(targets));
    c->oversell_util_good = 0.80;
    c->oversell_util_bad = 0.40;
    c->oversell_good = 0.10;
    c->oversell_bad = 0.50;
    c->oversell_min_pre_seats = 10;
    c->gap_good = 0.10;
    c->gap_bad = 0.40;
    c->oversize_good = 1.25;
    c->oversize_bad = 2.0;
    c->commit_min_elapsed_days = 45;
    c->commit_min_elapsed_share = 0.15;
    c->oversize_pre_days = 90;
    c->qec_good = 0.10;
    c->qec_bad = 0.35;
    c->qe_window_days = 14;
    c->qec_min_deals = 6;
    c->qec_min_quarters = 2;
    c->qec_q_min_deals = 4;
    c->qec_q_factor = 0.8;
    c->qe_share_fallback = 0.30;
    c->disc_good = 0.05;
    c->disc_bad = 0.20;
    c->disc_qe_min_deals = 3;
    c->disc_qe_weight = 0.5;
    c->peer_discount_fallback = 0.15;
    c->peer_min_deals = 20;
    c->qedeal_good = 0.05;
    c->qedeal_bad = 0.20;
    c->qedeal_min_nonqe = 3;
    const double sev[4] = {8.0, 4.0, 2.0, 1.0};
    memcpy(c->sev_weight, sev, sizeof(sev));
    c->load_good = 1.5;
    c->load_bad = 3.0;
    c->load_k = 8.0;
    c->load_min_active = 10.0;
    c->support_rate_fallback = 4.0;
    c->onboarding_factor = 1.5;
    c->onboarding_days = 90;
    c->mature_days = 365;
    c->cohort_min_customers = 20;
    c->esc_k = 8.0;
    c->esc_prior = 0.10;
    c->esc_tau_floor = 0.12;
    c->esc_tau_above = 0.04;
    c->esc_span = 0.18;
    c->csat_k = 5.0;
    c->csat_prior = 0.86;
    c->csat_tau_ceil = 0.85;
    c->csat_tau_below = 0.02;
    c->csat_span = 0.25;
    c->csat_positive_min = 4;
    c->rev_good = 0.05;
    c->rev_bad = 0.20;
    c->rev_min_deals = 3;
    c->rev_lag_days = 30;
    c->rev_horizon_days = 180;
    c->credit_mode = 2;
    const double w[9] = {20, 15, 15, 10, 10, 10, 7, 7, 6};
    memcpy(c->weight, w, sizeof(w));
    c->health_min_signals = 3;
    c->health_min_weight = 40.0;
    c->health_cap_crit = 49.0;
    c->health_cap_warn = 74.0;
    c->health_green = 75.0;
    c->health_yellow = 50.0;
    c->partner_cap_share = 0.25;
    c->exposure_saturation = 0.20;
    c->aggression_gain = 0.5;
    c->cp_enter = 50.0;
    c->cp_pending_days = 7;
    c->cp_crit = 75.0;
    c->cp_crit_days = 3;
    c->cp_deesc = 65.0;
    c->cp_deesc_days = 7;
    c->cp_resolve = 40.0;
    c->cp_resolve_days = 14;
    c->reopen_days = 30;
    c->pp_min_firing = 2;
    c->pp_min_share = 0.20;
    c->pp_crit_children = 3;
    c->pp_crit_min = 2;
    c->pp_crit_share = 0.40;
    c->st_pending_days = 3;
    c->st_resolve_days = 14;
}

int pp_model_conf_validate(const struct pp_model_conf *c, char *errstr, size_t errstr_size)
{
    const uint32_t wins[6] = {c->adopt_short_days, c->adopt_long_days,  c->load_short_days,
                              c->load_long_days,   c->ratio_short_days, c->ratio_long_days};
    const char *names[6] = {"adopt_short_days", "adopt_long_days",  "load_short_days",
                            "load_long_days",   "ratio_short_days", "ratio_long_days"};
    for (int i = 0; i < 6; i++) {
        if (wins[i] < 1) {
            snprintf(errstr, errstr_size, "%s must be >= 1", names[i]);
            return -1;
        }
    }
    if (c->state_days > 4096 || c->state_days < pp_history_span(c) + 8) {
        snprintf(errstr, errstr_size,
                 "state_days must be in [longest window + 8, 4096] (longest window %u)",
                 pp_history_span(c));
        return -1;
    }
    if (c->allowed_lateness_ms < 0) {
        snprintf(errstr, errstr_size, "%s", "allowed_lateness_ms must be >= 0");
        return -1;
    }
    int64_t late_days = (c->allowed_lateness_ms + PP_MS_PER_DAY - 1) / PP_MS_PER_DAY;
    if (late_days + 2 > (int64_t)(c->state_days - pp_history_span(c))) {
        snprintf(errstr, errstr_size, "%s",
                 "allowed_lateness leaves no room in state_days: raise state_days");
        return -1;
    }
    /* The dedup sets share the rings' slots: remembered evaluated days and
     * the days ahead must fit in state_days together. */
    if (c->dedup_horizon_days > pp_history_span(c)) {
        snprintf(errstr, errstr_size, "dedup_horizon_days must be <= the longest window (%u)",
                 pp_history_span(c));
        return -1;
    }
    const double *pairs[][2] = {
        {&c->shelf_good, &c->shelf_bad},   {&c->oversell_good, &c->oversell_bad},
        {&c->gap_good, &c->gap_bad},       {&c->oversize_good, &c->oversize_bad},
        {&c->qec_good, &c->qec_bad},       {&c->disc_good, &c->disc_bad},
        {&c->qedeal_good, &c->qedeal_bad}, {&c->load_good, &c->load_bad},
        {&c->rev_good, &c->rev_bad},       {&c->oversell_util_good, &c->oversell_util_bad},
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        if (!(*pairs[i][0] != *pairs[i][1])) {
            snprintf(errstr, errstr_size, "ramp %zu: good and bad points must differ", i);
            return -1;
        }
    }
    if (c->cp_pending_days < 1 || c->st_pending_days < 1 || c->cp_crit_days < 1 ||
        c->cp_deesc_days < 1 || c->cp_resolve_days < 1 || c->st_resolve_days < 1) {
        snprintf(errstr, errstr_size, "%s", "rule durations must be >= 1 day");
        return -1;
    }
    if (c->credit_mode > 2) {
        snprintf(errstr, errstr_size, "%s", "credit_mode must be 0, 1 or 2");
        return -1;
    }
    if (!(c->exposure_saturation > 0.0)) {
        snprintf(errstr, errstr_size, "%s", "exposure_saturation must be > 0");
        return -1;
    }
    return 0;
}

uint32_t pp_model_max_skew_days(const struct pp_model_conf *conf)
{
    int64_t late_days = (conf->allowed_lateness_ms + PP_MS_PER_DAY - 1) / PP_MS_PER_DAY;
    int64_t room = (int64_t)conf->state_days - pp_history_span(conf) - 2 - late_days;
    return room > 0 ? (uint32_t)room : 0;
}

/* ---- pp_model: one customers stage feeding one partners stage ---------------- */

struct pp_model {
    struct pp_cstage *c;
    struct pp_pstage *p;
    pp_alert_cb *cb; /* of the advance under way */
    void *cb_opaque;
    pp_model_day_cb *day_cb;
    void *day_opaque;
    struct pp_model_stats stats;
};

struct pp_model *pp_model_new(const struct pp_model_conf *conf)
{
    struct pp_model *m = pp_xcalloc(1, sizeof(*m));
    m->c = pp_cstage_new(conf, 0, 1);
    pp_cstage_set_ephemeral(m->c, true); /* pp_model is never persisted */
    m->p = pp_pstage_new(conf, 1);
    pp_pstage_set_stream(m->p, true);
    return m;
}

void pp_model_destroy(struct pp_model *m)
{
    if (m == NULL) {
        return;
    }
    pp_cstage_destroy(m->c);
    pp_pstage_destroy(m->p);
    free(m);
}

int pp_model_set_conf(struct pp_model *m, const struct pp_model_conf *conf, char *errstr,
                      size_t errstr_size)
{
    if (pp_cstage_set_conf(m->c, conf, errstr, errstr_size) != 0) {
        return -1;
    }
    return pp_pstage_set_conf(m->p, conf, errstr, errstr_size);
}

static void forward(const struct pp_xrec *x, void *opaque)
{
    struct pp_model *m = opaque;
    char err[128];
    /* Records of one stage to its own partner stage: never refused. */
    (void)pp_pstage_offer(m->p, x, m->cb, m->cb_opaque, err, sizeof(err));
}

enum pp_apply_result pp_model_apply(struct pp_model *m, const struct pp_event *ev)
{
    enum pp_apply_result r = pp_cstage_apply(m->c, ev);
    if (ev->type == PP_EV_DEAL) {
        /* The ledger and the partner list take a deal at once, as before. */
        m->cb = NULL;
        pp_cstage_drain(m->c, forward, m);
    }
    return r;
}

/* The stage queues a deal's records in apply order and nothing in it reads
 * the partners stage, so handing them over once, after the batch, gives the
 * ledger what a drain after each deal gives it. */
static void drain_deals(struct pp_model *m, const struct pp_event *evs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (evs[i].type == PP_EV_DEAL) {
            m->cb = NULL;
            pp_cstage_drain(m->c, forward, m);
            return;
        }
    }
}

void pp_model_apply_batch(struct pp_model *m, const struct pp_event *evs, size_t n,
                          enum pp_apply_result *res)
{
    pp_cstage_apply_batch(m->c, evs, n, res);
    drain_deals(m, evs, n);
}

void pp_model_apply_batch_d(struct pp_model *m, const struct pp_event *evs, size_t n,
                            enum pp_apply_result *res, unsigned d)
{
    pp_cstage_apply_batch_d(m->c, evs, n, res, d);
    drain_deals(m, evs, n);
}

void pp_model_advance(struct pp_model *m, int64_t watermark_ms, pp_alert_cb *cb, void *opaque)
{
    m->cb = cb;
    m->cb_opaque = opaque;
    pp_cstage_advance(m->c, watermark_ms, forward, m);
    m->cb = NULL;
    m->cb_opaque = NULL;
}

int64_t pp_model_watermark(const struct pp_model *m)
{
    return pp_cstage_watermark(m->c);
}

int32_t pp_model_last_day(const struct pp_model *m)
{
    /* The customers stage's: a partners stage with one source evaluates
     * exactly its days, and this keeps "nothing evaluated yet" before any
     * day closed on an event. */
    return pp_cstage_last_day(m->c);
}

static void on_day(const struct pp_pstage *p, int32_t day, void *opaque)
{
    (void)p;
    struct pp_model *m = opaque;
    if (m->day_cb) {
        m->day_cb(m, day, m->day_opaque);
    }
}

void pp_model_set_day_cb(struct pp_model *m, pp_model_day_cb *cb, void *opaque)
{
    m->day_cb = cb;
    m->day_opaque = opaque;
    pp_pstage_set_day_cb(m->p, cb ? on_day : NULL, m);
}

/* ---- read access ------------------------------------------------------------ */

uint32_t pp_model_partner_count(const struct pp_model *m)
{
    return pp_pstage_partner_count(m->p);
}

int pp_model_partner_view(const struct pp_model *m, uint32_t idx, struct pp_model_partner_view *out)
{
    return pp_pstage_partner_view(m->p, idx, out);
}

int pp_model_pxc_view(const struct pp_model *m, const char *partner_id, const char *customer_id,
                      struct pp_model_pxc_view *out)
{
    if (pp_pstage_pxc_view(m->p, partner_id, customer_id, out) == 0) {
        return 0;
    }
    /* A link whose deal is not visible yet has no pair on the partners
     * side: the view of a pair never evaluated. */
    if (!pp_cstage_has_link(m->c, partner_id, customer_id)) {
        return -1;
    }
    memset(out, 0, sizeof(*out));
    snprintf(out->partner_id, sizeof(out->partner_id), "%s", partner_id);
    snprintf(out->customer_id, sizeof(out->customer_id), "%s", customer_id);
    out->health = -1;
    return 0;
}

const struct pp_model_stats *pp_model_stats(const struct pp_model *m)
{
    const struct pp_model_stats *c = pp_cstage_stats(m->c);
    const struct pp_model_stats *p = pp_pstage_stats(m->p);
    struct pp_model_stats *st = (struct pp_model_stats *)&m->stats;
    *st = *c;
    st->ledger_overflow = p->ledger_overflow;
    st->days_evaluated = c->days_evaluated;
    memcpy(st->alerts, p->alerts, sizeof(st->alerts));
    st->partners = p->partners;
    st->bytes_per_partner = p->bytes_per_partner;
    st->bytes_per_ledger_deal = p->bytes_per_ledger_deal;
    st->bytes_state = sizeof(*m) + c->bytes_state + p->bytes_state;
    return st;
}
