/*
 * signals.h — the formulas of MODEL.md §2.3–§2.5 as pure functions of
 * sufficient statistics (sums over a window, counts, shares).
 *
 * The model keeps the statistics (day buckets, ledgers) and calls these to
 * turn them into risks; tests call them directly, at and around every
 * threshold. A signal that is null (minimum sample not met, missing field)
 * has present == false and is skipped by health and CPI, its weight
 * redistributed (§2.4).
 */
#ifndef PP_SIGNALS_H
#define PP_SIGNALS_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"

/* The nine signals of the health score, in the order of their weights. */
enum pp_sig_w {
    PP_W_SHELF = 0,
    PP_W_COMMIT_GAP,
    PP_W_LOAD,
    PP_W_CSAT,
    PP_W_ESC,
    PP_W_OVERSELL,
    PP_W_QEC,
    PP_W_DISC,
    PP_W_REV,
    PP_W__COUNT
};

/* Which of the nine are harm signals (health caps look only at those). */
bool pp_sig_is_harm(enum pp_sig_w s);
const char *pp_sig_name(enum pp_sig_w s);

struct pp_sig {
    bool present;
    double value; /* the measured value (gap, ratio, share, smoothed rate...) */
    double risk;  /* ramp() of value, in [0,1] */
};

/* ramp(x; g, b) = clamp((x - g)/(b - g), 0, 1); works in either direction. */
double pp_ramp(double x, double good, double bad);

/* The value at which ramp(.; g, b) reaches risk r (display thresholds). */
double pp_ramp_inverse(double r, double good, double bad);

/* T(age): the expected utilisation of a tranche aged `age` days. */
double pp_sig_target(const struct pp_model_conf *conf, int32_t age);

/* seats x sum of T(d - start) over days d in [from, to] ∩ [start, end). */
double pp_sig_expected_seatdays(const struct pp_model_conf *conf, double seats, int32_t start,
                                int32_t end, int32_t from, int32_t to);

/* S1 from the window sums. `entitled` is E on the evaluated day, `aged` the
 * seats aged >= shelf_aged_days, `snap_age` days since the last snapshot
 * (negative: never). */
struct pp_sig pp_sig_shelf(const struct pp_model_conf *conf, double exp_seatdays,
                           double act_seatdays, double entitled, double aged, int32_t snap_age);

/* S2 per add-on: o_d / seats_d = ramp(U_pre; 0.80, 0.40). */
double pp_sig_oversell_factor(const struct pp_model_conf *conf, double u_pre);
/* S2 from sums (sum_o = Σ o_d, sum_seats = Σ seats_d; null when no deal). */
struct pp_sig pp_sig_oversell(const struct pp_model_conf *conf, double sum_o, double sum_seats,
                              uint32_t deals);

/* S3 COMMIT_GAP for one commit of K units over [t0, t1): cum consumed so
 * far, rr = run-rate over the mode's window, t the evaluated day. */
struct pp_sig pp_sig_commit_gap(const struct pp_model_conf *conf, double k, double cum, double rr,
                                int32_t t0, int32_t t1, int32_t t);
/* S3 OVERSIZE: (K/term_days)/B0; null when b0 <= 0 (a new consumer). */
struct pp_sig pp_sig_oversize(const struct pp_model_conf *conf, double k, int32_t term_days,
                              double b0);

/* S4 QEC: share of ACV closed in the QE window vs baseline B. */
struct pp_sig pp_sig_qec_share(const struct pp_model_conf *conf, double qe_acv, double acv,
                               double baseline);

/* S5 DISC from D_180, the peer median M and, when has_dqe, Δ_QE. */
struct pp_sig pp_sig_disc(const struct pp_model_conf *conf, bool any_deal, double d180,
                          double peer_median, bool has_dqe, double dqe);
/* S5 QEDEAL for one deal: 1[qe]·ramp(disc - ref; 0.05, 0.20). */
double pp_sig_qedeal(const struct pp_model_conf *conf, bool qe, double disc, double ref);

/* S6 LOAD. n_w = weighted tickets in W, mean_active = mean active seats,
 * base = cohort weighted tickets per 100 active seats per 30 d. */
struct pp_sig pp_sig_load(const struct pp_model_conf *conf, double n_w, double mean_active,
                          double base, uint32_t window_days);

/* S7 ESC (e escalated of n opened, prior p0) and S8 CSAT (pos of resp). */
struct pp_sig pp_sig_esc(const struct pp_model_conf *conf, double e, double n, double p0);
struct pp_sig pp_sig_csat(const struct pp_model_conf *conf, double pos, double resp, double c0);
double pp_sig_esc_tau(const struct pp_model_conf *conf, double p0);
double pp_sig_csat_tau(const struct pp_model_conf *conf, double c0);

/* S9 REV: reversed ACV over closed ACV; null below rev_min_deals or when
 * the feed carries no reversals. */
struct pp_sig pp_sig_rev(const struct pp_model_conf *conf, bool feed_has_reversals, uint32_t deals,
                         double reversed_acv, double closed_acv);

/* §2.4: health from the nine signals; -1 when coverage is too thin. */
int pp_health(const struct pp_model_conf *conf, const struct pp_sig sig[PP_W__COUNT]);
int pp_health_band(const struct pp_model_conf *conf, int health); /* enum pp_band */

/* §2.5 families */
enum pp_family { PP_FAM_ADOPT = 0, PP_FAM_COMMIT, PP_FAM_SUPPORT, PP_FAM__COUNT };
const char *pp_family_name(enum pp_family f);

struct pp_family_in {
    bool present;
    double harm;     /* h_f */
    double exposure; /* X_f */
};

/* h_SUPPORT = (15 r_LOAD + 10 r_ESC + 10 r_CSAT) / 35 over the present ones. */
double pp_support_harm(const struct pp_sig *load, const struct pp_sig *esc,
                       const struct pp_sig *csat, bool *present);
/* X = min(1, share / saturation). */
double pp_exposure(const struct pp_model_conf *conf, double share);
/* H = 1 - Π (1 - h_f X_f) over present families. */
double pp_harm(const struct pp_family_in fam[PP_FAM__COUNT]);
/* A = 1 - (1-r_QEDEAL)(1-r_OVERSIZE)(1-½r_QEC)(1-½r_DISC)(1-½r_REV); null
 * risks count as 0. */
double pp_aggression(double r_qedeal, double r_oversize, double r_qec, double r_disc, double r_rev);
/* CPI = 100 min(1, H (1 + gain A)). */
double pp_cpi(const struct pp_model_conf *conf, double h, double a);

/* Quarter helpers (fiscal year = calendar year, MODEL §3.0). */
int32_t pp_quarter_of(int32_t day);      /* year*4 + q (q 0..3) */
int32_t pp_quarter_end_day(int32_t day); /* last day of day's quarter */
int32_t pp_quarter_first_day(int32_t quarter);
bool pp_is_quarter_end(const struct pp_model_conf *conf, int32_t day);
/* Adds months to a day, clamping the day of month (Jan 31 + 1 = Feb 28). */
int32_t pp_add_months(int32_t day, int32_t months);

#endif
