/*
 * model.h — the health and pressure model of MODEL.md, as a pure processor.
 *
 * pp_model is the full model that replaces the walking skeleton's single
 * rule: per-customer state (seat tranches, commits, day buckets of usage and
 * support), per-partner state (the 365-day deal ledger and reversals), cohort
 * baselines, the nine signals, health, the Customer Pressure Index and the
 * three alert rules (CUSTOMER_PRESSURE, PARTNER_PRESSURE, STUFFING_PATTERN).
 *
 * The contract mirrors proc.h: events go in with pp_model_apply(), the caller
 * owns the watermark and moves it with pp_model_advance(); day D is evaluated
 * once the watermark passes D+1 00:00 + allowed_lateness, every closed day in
 * order, and alert transitions are reported through the callback in a
 * deterministic order (rule, partner id, customer id). Every join
 * (attribution, exposure, cohort) happens when a day is evaluated, never when
 * an event arrives, so results do not depend on the arrival order of events
 * within the lateness; duplicates (same event_id) are counted once.
 *
 * libc and libm only (DESIGN.md §2). docs/model.md explains every decision.
 */
#ifndef PP_MODEL_H
#define PP_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alert.h"
#include "event.h"
#include "proc.h"

/* Every threshold, weight, window, duration and fallback of MODEL.md §2 with
 * its default (pp_model_conf_defaults). Risks are in [0,1]; shares and
 * discounts are fractions; windows and durations are days. */
struct pp_model_conf {
    char tenant[PP_ID_MAX];
    int64_t allowed_lateness_ms; /* §2.2: 24 h */
    uint32_t dedup_horizon_days; /* evaluated days whose event ids are still remembered: 7 */
    uint32_t state_days;         /* width of the per-customer day rings: 128 (>= window_long + 2) */

    /* §2.2 windows: short and long per family */
    uint32_t adopt_short_days, adopt_long_days; /* SHELF and COMMIT run-rate: 30 / 90 */
    uint32_t load_short_days, load_long_days;   /* LOAD: 14 / 30 */
    uint32_t ratio_short_days, ratio_long_days; /* ESC, CSAT: 30 / 90 */
    uint32_t push_short_days, push_long_days;   /* DISC, OVERSELL, QEDEAL: 180; QEC, REV: 365 */

    double warn_risk; /* 0.5 */
    double crit_risk; /* 0.85 */

    /* S1 SHELF */
    double shelf_good, shelf_bad; /* gap 0.20 -> 0.80 */
    uint32_t shelf_min_seats;     /* E >= 10 */
    uint32_t shelf_aged_days;     /* seats aged >= 60 d ... */
    double shelf_aged_share;      /* ... hold >= 50% of E */
    uint32_t snapshot_gap_days;   /* no snapshot for > 14 d: null */
    uint32_t adopt_age[4];        /* T(age) steps: 30, 60, 180, 270 d */
    double adopt_target[5];       /* T: 0, .25, .50, .65, .75 */

    /* S2 OVERSELL */
    double oversell_util_good, oversell_util_bad; /* pre-deal utilisation 0.80 -> 0.40 */
    double oversell_good, oversell_bad;           /* share 0.10 -> 0.50 */
    uint32_t oversell_min_pre_seats;              /* E_pre >= 10 */

    /* S3 COMMIT_GAP and OVERSIZE */
    double gap_good, gap_bad;           /* shortfall 0.10 -> 0.40 */
    double oversize_good, oversize_bad; /* (K/term)/B0 1.25 -> 2.0 */
    uint32_t commit_min_elapsed_days;   /* 45 */
    double commit_min_elapsed_share;    /* 15% of the term */
    uint32_t oversize_pre_days;         /* 90 d of pre-deal consumption */

    /* S4 QEC */
    double qec_good, qec_bad;    /* excess over baseline +0.10 -> +0.35 */
    uint32_t qe_window_days;     /* last 14 days of the fiscal quarter */
    uint32_t qec_min_deals;      /* 6 deals in 365 d ... */
    uint32_t qec_min_quarters;   /* ... spanning >= 2 quarters */
    uint32_t qec_q_min_deals;    /* last-quarter variant: >= 4 deals */
    double qec_q_factor;         /* r_q x 0.8 */
    double qe_share_fallback;    /* B = 0.30: the vendor's own QE share (§2.9) */
    bool qe_baseline_from_peers; /* false: B is qe_share_fallback; true: the other
                                    partners' share over 365 d when >= peer_min_deals */

    /* S5 DISC and QEDEAL */
    double disc_good, disc_bad;     /* excess 0.05 -> 0.20 */
    uint32_t disc_qe_min_deals;     /* QE uplift: >= 3 QE and >= 3 non-QE in 365 d */
    double disc_qe_weight;          /* 0.5 */
    double peer_discount_fallback;  /* M = 0.15 */
    uint32_t peer_min_deals;        /* peer median needs >= 20 peer deals in 365 d */
    double qedeal_good, qedeal_bad; /* disc - ref 0.05 -> 0.20 */
    uint32_t qedeal_min_nonqe;      /* ref = P's non-QE median with >= 3 deals */

    /* S6 LOAD */
    double sev_weight[4];          /* Sev1..4: 8, 4, 2, 1 */
    double load_good, load_bad;    /* ratio 1.5 -> 3.0 */
    double load_k;                 /* shrinkage: 8 weighted tickets */
    double load_min_active;        /* A-bar floor: 10 seats */
    double support_rate_fallback;  /* 4.0 weighted tickets / 100 active seats / 30 d */
    double onboarding_factor;      /* onboarding band x1.5 */
    uint32_t onboarding_days;      /* age bands: < 90 d ... */
    uint32_t mature_days;          /* ... 90-365 d, > 365 d */
    uint32_t cohort_min_customers; /* 20 */

    /* S7 ESC */
    double esc_k, esc_prior;             /* 8, p0 = 0.10 */
    double esc_tau_floor, esc_tau_above; /* tau0 = max(0.12, p0 + 0.04) */
    double esc_span;                     /* bad = tau0 + 0.18 */

    /* S8 CSAT */
    double csat_k, csat_prior;            /* 5, c0 = 0.86 */
    double csat_tau_ceil, csat_tau_below; /* tau = min(0.85, c0 - 0.02) */
    double csat_span;                     /* bad = tau - 0.25 */
    int32_t csat_positive_min;            /* scores >= 4 are positive */

    /* S9 REV */
    double rev_good, rev_bad;  /* 0.05 -> 0.20 of ACV */
    uint32_t rev_min_deals;    /* 3 */
    uint32_t rev_lag_days;     /* deals closed in [t-365, t-30] */
    uint32_t rev_horizon_days; /* reversals <= 180 d after the close */
    /* 0: a credit is money only (REV); 1: it also returns the credited share
     * of the deal's seats (SHELF's E); 2 (default): returns the part of that
     * share the licence feed confirms (licences_entitled below seats sold) */
    uint32_t credit_mode;

    /* §2.4 health */
    double weight[9];            /* by enum pp_model_signal_w: 20 15 15 10 10 10 7 7 6 */
    uint32_t health_min_signals; /* 3 */
    double health_min_weight;    /* 40 */
    double health_cap_crit;      /* 49 */
    double health_cap_warn;      /* 74 */
    double health_green;         /* 75 */
    double health_yellow;        /* 50 */
    double partner_cap_share;    /* 25% of touched ACV */

    /* §2.5 CPI */
    double exposure_saturation; /* 0.20 */
    double aggression_gain;     /* 0.5 */

    /* §2.6 CUSTOMER_PRESSURE */
    double cp_enter;          /* lo >= 50 */
    uint32_t cp_pending_days; /* 7 */
    double cp_crit;           /* lo >= 75 ... */
    uint32_t cp_crit_days;    /* ... for 3 d */
    double cp_deesc;          /* CPI_short < 65 ... */
    uint32_t cp_deesc_days;   /* ... for 7 d */
    double cp_resolve;        /* CPI_short < 40 ... */
    uint32_t cp_resolve_days; /* ... for 14 d */
    uint32_t reopen_days;     /* 30: re-entry reuses the alert id */

    /* §2.6 PARTNER_PRESSURE */
    uint32_t pp_min_firing;    /* 2 firing children ... */
    double pp_min_share;       /* ... holding >= 20% of touched ACV */
    uint32_t pp_crit_children; /* >= 3 CRITICAL children, or ... */
    uint32_t pp_crit_min;      /* ... >= 2 CRITICAL ... */
    double pp_crit_share;      /* ... holding >= 40% */

    /* §2.6 STUFFING_PATTERN */
    uint32_t st_pending_days; /* 3 */
    uint32_t st_resolve_days; /* 14 */
};

void pp_model_conf_defaults(struct pp_model_conf *conf);

/* Checks ranges (windows inside state_days, g != b, ...). Returns 0, or -1
 * with a message naming the field in errstr. */
int pp_model_conf_validate(const struct pp_model_conf *conf, char *errstr, size_t errstr_size);

/* How many event-time days one input may run ahead of the next day to be
 * evaluated before its events are PP_APPLY_SKEWED: state_days - the longest
 * window - 2 - the lateness in days (35 with the defaults). The streaming
 * runtime's partition alignment must pause inputs before they get this far
 * ahead (proc.h's PP_PROC_SKEW_DAYS is 62: too far for the default rings). */
uint32_t pp_model_max_skew_days(const struct pp_model_conf *conf);

struct pp_model;

/* conf is copied and must be valid (pp_model_conf_validate); aborts on OOM
 * only. Free with pp_model_destroy(). */
struct pp_model *pp_model_new(const struct pp_model_conf *conf);
void pp_model_destroy(struct pp_model *m);

/* Swaps the configuration of a running model (SIGHUP reload) keeping its
 * state: thresholds, weights and rule parameters change from the next
 * evaluated day on. Refused (-1, errstr naming the key) when conf is invalid
 * or changes what sizes the state: state_days, the windows, the retention
 * horizons, the tenant or the allowed lateness. */
int pp_model_set_conf(struct pp_model *m, const struct pp_model_conf *conf, char *errstr,
                      size_t errstr_size);

/* Applies one validated event. PP_APPLY_TOO_LATE: its day is evaluated;
 * PP_APPLY_SKEWED: more than state_days - ratio_long_days - 1 days ahead of
 * the next day to evaluate (the caller pauses the input that runs ahead).
 * A duplicate (same event type and event_id on the same event day, within
 * dedup_horizon_days) is PP_APPLY_OK and changes nothing: re-delivery is
 * normal for at-least-once producers, not a dead letter; stats count it. */
enum pp_apply_result pp_model_apply(struct pp_model *m, const struct pp_event *ev);

/* Applies evs[0..n) in order, res[i] the result of evs[i]: the same results
 * and state as n calls of pp_model_apply (stage.h pp_cstage_apply_batch),
 * faster with many customers. The deals of the batch reach the partners'
 * ledger at the end of the call, in order. */
void pp_model_apply_batch(struct pp_model *m, const struct pp_event *evs, size_t n,
                          enum pp_apply_result *res);

/* Moves the watermark forward (never back) and evaluates every closed day in
 * order, calling cb (may be NULL) for each alert transition. The alert is
 * borrowed for the duration of the call. */
void pp_model_advance(struct pp_model *m, int64_t watermark_ms, pp_alert_cb *cb, void *opaque);

int64_t pp_model_watermark(const struct pp_model *m); /* INT64_MIN before any */
int32_t pp_model_last_day(const struct pp_model *m);

/* Called after each evaluated day, its alert transitions emitted: the views
 * then describe that day (the HTTP layer samples its history here). */
typedef void(pp_model_day_cb)(const struct pp_model *m, int32_t day, void *opaque);
void pp_model_set_day_cb(struct pp_model *m, pp_model_day_cb *cb,
                         void *opaque); /* last evaluated day or INT32_MIN */

/* ---- read access (HTTP API, backtest summary) -------------------------- */

enum pp_band {
    PP_BAND_UNKNOWN = -1,
    PP_BAND_RED = 0,
    PP_BAND_YELLOW = 1,
    PP_BAND_GREEN = 2,
};

/* As of the last evaluated day. Risks are -1 when the signal is null. */
struct pp_model_partner_view {
    char partner_id[PP_ID_MAX];
    double cpi; /* ACV-weighted mean CPI_long over touched customers */
    int health; /* 0..100, -1 unknown */
    int band;   /* enum pp_band */
    uint32_t customers_touched;
    uint32_t customers_firing;
    uint32_t customers_critical;
    double touched_acv;
    double affected_acv_share;
    double r_qec, r_disc, r_rev, r_oversell;
    double qe_share, disc_mean_180d;
    int pp_state;       /* 0 ok, 1 warning, 2 critical */
    int stuffing_state; /* 0 ok, 1 pending, 2 firing */
};

uint32_t pp_model_partner_count(const struct pp_model *m);
/* idx in [0, count) in partner-id order. Returns 0, or -1 when out of range. */
int pp_model_partner_view(const struct pp_model *m, uint32_t idx,
                          struct pp_model_partner_view *out);

/* One partner x customer pair as of the last evaluated day. */
struct pp_model_pxc_view {
    char partner_id[PP_ID_MAX];
    char customer_id[PP_ID_MAX];
    double cpi_short, cpi_long, h_short, h_long, aggression;
    int health;      /* -1 unknown */
    int alert_state; /* 0 ok, 1 pending, 2 warning, 3 critical */
    double partner_acv;
};
/* Looks the pair up by ids; returns 0, or -1 when unknown. */
int pp_model_pxc_view(const struct pp_model *m, const char *partner_id, const char *customer_id,
                      struct pp_model_pxc_view *out);

struct pp_model_stats {
    uint64_t events[4]; /* by enum pp_event_type */
    uint64_t too_late;
    uint64_t duplicates;
    uint64_t skewed;
    uint64_t ignored;          /* valid but unused (registered, closed_lost, ...) */
    uint64_t tranche_overflow; /* deals dropped: a customer already holds 8 live ones */
    uint64_t link_overflow;    /* a 5th partner for one customer: not evaluated */
    uint64_t ledger_overflow;
    uint64_t days_evaluated;
    uint64_t alerts[3]; /* by enum pp_alert_status */
    uint32_t customers;
    uint32_t partners;
    uint32_t links;
    size_t bytes_per_customer; /* fixed part + rings, as allocated */
    size_t bytes_per_tranche;  /* each deal a customer holds (up to 8) */
    size_t bytes_per_link;     /* each partner x customer pair (up to 4) */
    size_t bytes_per_partner;  /* fixed part, ledger excluded */
    size_t bytes_per_ledger_deal;
    size_t bytes_state; /* everything the model holds now */
};

const struct pp_model_stats *pp_model_stats(const struct pp_model *m);

#endif
