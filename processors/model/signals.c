/*
 * signals.c — MODEL.md §2.3–§2.5 formulas on sufficient statistics. See
 * signals.h. Each function is the table row of §2.3 it implements; the null
 * rules live here too, so tests of a signal's minimum sample need no model.
 */
#include "signals.h"

#include <math.h>

#include "ptime.h"

static double clamp01(double x)
{
    if (!(x > 0.0)) {
        return 0.0; /* also NaN */
    }
    return x > 1.0 ? 1.0 : x;
}

double pp_ramp(double x, double good, double bad)
{
    if (good == bad) {
        return x >= bad ? 1.0 : 0.0;
    }
    return clamp01((x - good) / (bad - good));
}

double pp_ramp_inverse(double r, double good, double bad)
{
    return good + r * (bad - good);
}

static const char *const sig_names[PP_W__COUNT] = {
    "SHELF", "COMMIT_GAP", "LOAD", "CSAT", "ESC", "OVERSELL", "QEC", "DISC", "REV",
};

const char *pp_sig_name(enum pp_sig_w s)
{
    return (unsigned)s < PP_W__COUNT ? sig_names[s] : "UNKNOWN";
}

bool pp_sig_is_harm(enum pp_sig_w s)
{
    return s == PP_W_SHELF || s == PP_W_COMMIT_GAP || s == PP_W_LOAD || s == PP_W_CSAT ||
           s == PP_W_ESC;
}

static struct pp_sig sig_null(void)
{
    struct pp_sig s = {false, 0.0, 0.0};
    return s;
}

static struct pp_sig sig_make(double value, double risk)
{
    struct pp_sig s = {true, value, risk};
    return s;
}

double pp_sig_target(const struct pp_model_conf *conf, int32_t age)
{
    if (age < 0) {
        return 0.0;
    }
    for (int i = 0; i < 4; i++) {
        if ((uint32_t)age < conf->adopt_age[i]) {
            return conf->adopt_target[i];
        }
    }
    return conf->adopt_target[4];
}

double pp_sig_expected_seatdays(const struct pp_model_conf *conf, double seats, int32_t start,
                                int32_t end, int32_t from, int32_t to)
{
    int64_t lo = from > start ? from : start;
    int64_t hi = to < end - 1 ? to : (int64_t)end - 1;
    if (hi < lo || seats <= 0.0) {
        return 0.0;
    }
    /* T is piecewise constant in age: sum piece by piece, O(5). */
    int64_t a0 = lo - start, a1 = hi - start;
    double sum = 0.0;
    int64_t piece_lo = 0;
    for (int i = 0; i < 5; i++) {
        int64_t piece_hi = i < 4 ? (int64_t)conf->adopt_age[i] - 1 : INT64_MAX;
        int64_t x0 = a0 > piece_lo ? a0 : piece_lo;
        int64_t x1 = a1 < piece_hi ? a1 : piece_hi;
        if (x1 >= x0) {
            sum += (double)(x1 - x0 + 1) * conf->adopt_target[i];
        }
        if (i < 4) {
            piece_lo = conf->adopt_age[i];
        }
    }
    return seats * sum;
}

struct pp_sig pp_sig_shelf(const struct pp_model_conf *conf, double exp_seatdays,
                           double act_seatdays, double entitled, double aged, int32_t snap_age)
{
    if (entitled < conf->shelf_min_seats || aged < conf->shelf_aged_share * entitled ||
        snap_age < 0 || (uint32_t)snap_age > conf->snapshot_gap_days || exp_seatdays <= 0.0) {
        return sig_null();
    }
    double gap = (exp_seatdays - act_seatdays) / exp_seatdays;
    if (gap < 0.0) {
        gap = 0.0;
    }
    return sig_make(gap, pp_ramp(gap, conf->shelf_good, conf->shelf_bad));
}

double pp_sig_oversell_factor(const struct pp_model_conf *conf, double u_pre)
{
    return pp_ramp(u_pre, conf->oversell_util_good, conf->oversell_util_bad);
}

struct pp_sig pp_sig_oversell(const struct pp_model_conf *conf, double sum_o, double sum_seats,
                              uint32_t deals)
{
    if (deals == 0 || sum_seats <= 0.0) {
        return sig_null();
    }
    double v = sum_o / sum_seats;
    return sig_make(v, pp_ramp(v, conf->oversell_good, conf->oversell_bad));
}

struct pp_sig pp_sig_commit_gap(const struct pp_model_conf *conf, double k, double cum, double rr,
                                int32_t t0, int32_t t1, int32_t t)
{
    int32_t term = t1 - t0;
    int32_t elapsed = t - t0 + 1;
    double min_elapsed = conf->commit_min_elapsed_share * term;
    if (min_elapsed < conf->commit_min_elapsed_days) {
        min_elapsed = conf->commit_min_elapsed_days;
    }
    if (k <= 0.0 || term <= 0 || t >= t1 || elapsed < min_elapsed) {
        return sig_null();
    }
    double p_end = cum + rr * (double)(t1 - 1 - t);
    double sf = (k - p_end) / k;
    if (sf < 0.0) {
        sf = 0.0;
    }
    return sig_make(sf, pp_ramp(sf, conf->gap_good, conf->gap_bad));
}

struct pp_sig pp_sig_oversize(const struct pp_model_conf *conf, double k, int32_t term_days,
                              double b0)
{
    if (!(b0 > 0.0) || term_days <= 0 || k <= 0.0) {
        return sig_null();
    }
    double ratio = (k / term_days) / b0;
    return sig_make(ratio, pp_ramp(ratio, conf->oversize_good, conf->oversize_bad));
}

struct pp_sig pp_sig_qec_share(const struct pp_model_conf *conf, double qe_acv, double acv,
                               double baseline)
{
    if (!(acv > 0.0)) {
        return sig_null();
    }
    double share = qe_acv / acv;
    return sig_make(share, pp_ramp(share - baseline, conf->qec_good, conf->qec_bad));
}

struct pp_sig pp_sig_disc(const struct pp_model_conf *conf, bool any_deal, double d180,
                          double peer_median, bool has_dqe, double dqe)
{
    if (!any_deal) {
        return sig_null();
    }
    double x = d180 - peer_median;
    if (x < 0.0) {
        x = 0.0;
    }
    if (has_dqe && dqe > 0.0) {
        x += conf->disc_qe_weight * dqe;
    }
    return sig_make(x, pp_ramp(x, conf->disc_good, conf->disc_bad));
}

double pp_sig_qedeal(const struct pp_model_conf *conf, bool qe, double disc, double ref)
{
    return qe ? pp_ramp(disc - ref, conf->qedeal_good, conf->qedeal_bad) : 0.0;
}

struct pp_sig pp_sig_load(const struct pp_model_conf *conf, double n_w, double mean_active,
                          double base, uint32_t window_days)
{
    double a = mean_active > conf->load_min_active ? mean_active : conf->load_min_active;
    double b_exp = base * a / 100.0 * (double)window_days / 30.0;
    double r = (n_w + conf->load_k) / (b_exp + conf->load_k);
    return sig_make(r, pp_ramp(r, conf->load_good, conf->load_bad));
}

double pp_sig_esc_tau(const struct pp_model_conf *conf, double p0)
{
    double t = p0 + conf->esc_tau_above;
    return t > conf->esc_tau_floor ? t : conf->esc_tau_floor;
}

double pp_sig_csat_tau(const struct pp_model_conf *conf, double c0)
{
    double t = c0 - conf->csat_tau_below;
    return t < conf->csat_tau_ceil ? t : conf->csat_tau_ceil;
}

struct pp_sig pp_sig_esc(const struct pp_model_conf *conf, double e, double n, double p0)
{
    double s = (e + conf->esc_k * p0) / (n + conf->esc_k);
    double tau = pp_sig_esc_tau(conf, p0);
    return sig_make(s, pp_ramp(s, tau, tau + conf->esc_span));
}

struct pp_sig pp_sig_csat(const struct pp_model_conf *conf, double pos, double resp, double c0)
{
    double s = (pos + conf->csat_k * c0) / (resp + conf->csat_k);
    double tau = pp_sig_csat_tau(conf, c0);
    return sig_make(s, pp_ramp(s, tau, tau - conf->csat_span));
}

struct pp_sig pp_sig_rev(const struct pp_model_conf *conf, bool feed_has_reversals, uint32_t deals,
                         double reversed_acv, double closed_acv)
{
    if (!feed_has_reversals || deals < conf->rev_min_deals || !(closed_acv > 0.0)) {
        return sig_null();
    }
    double v = reversed_acv / closed_acv;
    return sig_make(v, pp_ramp(v, conf->rev_good, conf->rev_bad));
}

int pp_health(const struct pp_model_conf *conf, const struct pp_sig sig[PP_W__COUNT])
{
    double sw = 0.0, swr = 0.0, max_harm = 0.0;
    uint32_t n = 0;
    for (int i = 0; i < PP_W__COUNT; i++) {
        if (!sig[i].present) {
            continue;
        }
        n++;
        sw += conf->weight[i];
        swr += conf->weight[i] * sig[i].risk;
        if (pp_sig_is_harm((enum pp_sig_w)i) && sig[i].risk > max_harm) {
            max_harm = sig[i].risk;
        }
    }
    if (n < conf->health_min_signals || sw < conf->health_min_weight || sw <= 0.0) {
        return -1;
    }
    double s = 100.0 * (1.0 - swr / sw);
    if (max_harm >= conf->crit_risk && s > conf->health_cap_crit) {
        s = conf->health_cap_crit;
    }
    else if (max_harm >= conf->warn_risk && s > conf->health_cap_warn) {
        s = conf->health_cap_warn;
    }
    return (int)floor(s + 0.5);
}

int pp_health_band(const struct pp_model_conf *conf, int health)
{
    if (health < 0) {
        return PP_BAND_UNKNOWN;
    }
    if (health >= conf->health_green) {
        return PP_BAND_GREEN;
    }
    return health >= conf->health_yellow ? PP_BAND_YELLOW : PP_BAND_RED;
}

const char *pp_family_name(enum pp_family f)
{
    switch (f) {
    case PP_FAM_ADOPT:
        return "ADOPT";
    case PP_FAM_COMMIT:
        return "COMMIT";
    case PP_FAM_SUPPORT:
        return "SUPPORT";
    case PP_FAM__COUNT:
        break;
    }
    return "UNKNOWN";
}

double pp_support_harm(const struct pp_sig *load, const struct pp_sig *esc,
                       const struct pp_sig *csat, bool *present)
{
    /* §2.5: the SUPPORT family weighs its signals 15/10/10 like health. */
    double sw = 0.0, swr = 0.0;
    if (load->present) {
        sw += 15.0;
        swr += 15.0 * load->risk;
    }
    if (esc->present) {
        sw += 10.0;
        swr += 10.0 * esc->risk;
    }
    if (csat->present) {
        sw += 10.0;
        swr += 10.0 * csat->risk;
    }
    *present = sw > 0.0;
    return sw > 0.0 ? swr / sw : 0.0;
}

double pp_exposure(const struct pp_model_conf *conf, double share)
{
    return clamp01(share / conf->exposure_saturation);
}

double pp_harm(const struct pp_family_in fam[PP_FAM__COUNT])
{
    double keep = 1.0;
    for (int f = 0; f < PP_FAM__COUNT; f++) {
        if (fam[f].present) {
            keep *= 1.0 - clamp01(fam[f].harm) * clamp01(fam[f].exposure);
        }
    }
    return 1.0 - keep;
}

double pp_aggression(double r_qedeal, double r_oversize, double r_qec, double r_disc, double r_rev)
{
    double keep = (1.0 - clamp01(r_qedeal)) * (1.0 - clamp01(r_oversize)) *
                  (1.0 - 0.5 * clamp01(r_qec)) * (1.0 - 0.5 * clamp01(r_disc)) *
                  (1.0 - 0.5 * clamp01(r_rev));
    return 1.0 - keep;
}

double pp_cpi(const struct pp_model_conf *conf, double h, double a)
{
    double v = h * (1.0 + conf->aggression_gain * a);
    return 100.0 * (v > 1.0 ? 1.0 : (v < 0.0 ? 0.0 : v));
}

int32_t pp_quarter_of(int32_t day)
{
    int y;
    unsigned m, d;
    pp_day_to_civil(day, &y, &m, &d);
    return (int32_t)(y * 4 + (int)((m - 1) / 3));
}

int32_t pp_quarter_first_day(int32_t quarter)
{
    int y = quarter >= 0 ? quarter / 4 : (quarter - 3) / 4;
    int q = quarter - y * 4;
    return pp_day_from_civil(y, (unsigned)(q * 3 + 1), 1);
}

int32_t pp_quarter_end_day(int32_t day)
{
    return pp_quarter_first_day(pp_quarter_of(day) + 1) - 1;
}

bool pp_is_quarter_end(const struct pp_model_conf *conf, int32_t day)
{
    return pp_quarter_end_day(day) - day < (int32_t)conf->qe_window_days;
}

int32_t pp_add_months(int32_t day, int32_t months)
{
    int y;
    unsigned m, d;
    pp_day_to_civil(day, &y, &m, &d);
    int64_t mi = (int64_t)y * 12 + (m - 1) + months;
    int ny = (int)(mi >= 0 ? mi / 12 : (mi - 11) / 12);
    unsigned nm = (unsigned)(mi - (int64_t)ny * 12) + 1;
    static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    unsigned maxd = mdays[nm - 1];
    if (nm == 2 && ((ny % 4 == 0 && ny % 100 != 0) || ny % 400 == 0)) {
        maxd = 29;
    }
    return pp_day_from_civil(ny, nm, d > maxd ? maxd : d);
}
