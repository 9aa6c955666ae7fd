/*
 * model_ref.c — the test oracle of unit_model_split: the monolithic
 * pp_model as it was before the model was split into the customers and
 * partners stages (processors/model/model.c at commit a63d576), frozen, with
 * its public functions renamed pp_mref_* so it links next to the real one.
 *
 * Why a frozen copy: the split must give exactly the monolith's alert
 * transitions, for one stage (pp_model) and for N customer stages; comparing
 * with this copy keeps that claim checked when the stages change, without a
 * second build of an old commit. Never edited except to follow a deliberate
 * change of the model's results, which must then be made here too.
 */
#define pp_model               pp_mref
#define pp_model_new           pp_mref_new
#define pp_model_destroy       pp_mref_destroy
#define pp_model_set_conf      pp_mref_set_conf
#define pp_model_apply         pp_mref_apply
#define pp_model_advance       pp_mref_advance
#define pp_model_watermark     pp_mref_watermark
#define pp_model_last_day      pp_mref_last_day
#define pp_model_set_day_cb    pp_mref_set_day_cb
#define pp_model_day_cb        pp_mref_day_cb
#define pp_model_partner_count pp_mref_partner_count
#define pp_model_partner_view  pp_mref_partner_view
#define pp_model_pxc_view      pp_mref_pxc_view
#define pp_model_stats         pp_mref_stats
#define pp_model_conf_defaults pp_mref_conf_defaults
#define pp_model_conf_validate pp_mref_conf_validate
#define pp_model_max_skew_days pp_mref_max_skew_days

#include "model.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idmap.h"
#include "palloc.h"
#include "ptime.h"
#include "rules.h"
#include "signals.h"

#define NO_DAY                PP_NO_DAY
#define NO_ACTIVE             UINT32_MAX
#define PP_MODEL_MAX_TRANCHES 8
#define PP_MODEL_MAX_LINKS    4
#define PP_MODEL_MAX_WINDOWS  6
#define PP_MODEL_MAX_PRODUCTS 64
#define PP_MODEL_LEDGER_MAX   16384
#define PP_MODEL_REV_MAX      4096
#define N_BANDS               3
#define DISC_BINS             1001 /* discounts in 0.1 pp bins, 0..100% */
#define CUT_ALL               INT32_MAX

/* ---- state types ---------------------------------------------------------- */

enum tranche_kind { TR_SEATS = 0, TR_ADDON, TR_RENEWAL, TR_COMMIT };

struct tranche {
    uint64_t deal; /* hash of deal_id */
    double acv;
    double commit_k;           /* committed units (TR_COMMIT) */
    double commit_base;        /* cumulative consumption before t0; NAN until known */
    double b0;                 /* mean daily consumption 90 d before close; NAN unknown, -1 n/a */
    float discount;            /* NAN when unknown */
    float u_pre;               /* pre-deal utilisation (add-ons); NAN unknown, -1 n/a */
    int32_t partner;           /* -1 for a placeholder (reversal seen before its deal) */
    int32_t close, start, end; /* end exclusive */
    int32_t known;             /* visible from this day: max(close, event day) */
    int32_t seats;
    int32_t cut_seats, cut_day; /* seats removed from cut_day on (CUT_ALL: cancelled) */
    int32_t credit_day;         /* first credit's day, NO_DAY when none */
    double credit_acv;          /* credited ACV: the same share of seats is returned */
    uint8_t kind;               /* enum tranche_kind */
    uint8_t qe;
    uint8_t credit_seats; /* a credit was applied (its seats may come back) */
    float credit_f;       /* share of the credit's seats returned today (0..1) */
};

struct link {
    int32_t partner;
    struct pp_rule_state rule;
    float cpi_s, cpi_l, h_s, h_l, a;
    float partner_acv;
    int16_t health;
    uint8_t touched;
};

/* Sums over one window of finalized days. */
struct wsum {
    uint64_t active;
    uint32_t wt, opened, esc, resp, pos;
    double cons;
};

struct customer {
    struct wsum *sums;  /* nwin windows */
    uint32_t *active;   /* width slots; NO_ACTIVE = no snapshot that day */
    uint16_t *wt;       /* severity-weighted tickets opened */
    uint8_t *cnt;       /* 4 per slot: opened, escalated, csat responses, positives */
    float *cons;        /* consumption units per slot; NULL until the first */
    double cons_cum;    /* all finalized consumption */
    struct tranche *tr; /* sorted by (close, deal) */
    struct link *links;
    uint32_t last_active;
    uint32_t ent_val[4]; /* the newest licences_entitled snapshots ... */
    int32_t ent_day[4];  /* ... and their days (credit_mode 2) */
    uint32_t ent_now;    /* entitled as of the evaluated day, UINT32_MAX unknown */
    int32_t last_snap_day;
    int32_t first_snap_day;
    int32_t first_cons_day;
    /* First day of the current unbroken run in today's band, and in the
     * mature bands (>= 90 d): the days this customer's sums sit in those
     * cohort pools, which is what leave-one-out must take out. */
    int32_t band_since, mature_since;
    int16_t product; /* cohort product, -1 unknown */
    int8_t band;     /* today's age band, -1 none */
    uint8_t n_tr, n_links, cap_tr, cap_links;
};

struct ledger_deal {
    uint64_t deal;
    double acv;
    float discount; /* NAN unknown */
    int32_t close;
    int32_t known;
    int32_t customer;
    int32_t quarter;
    int16_t product;
    uint8_t qe;
    uint8_t kind;
};

struct reversal {
    uint64_t deal;
    double acv; /* NAN: the whole deal (a cancellation without amount) */
    int32_t day;
};

struct child {
    const char *id;
    uint32_t customer;
    uint32_t link;
    int severity;
    double cpi_s;
    int dominant;
};

struct partner {
    struct ledger_deal *ledger;
    uint32_t n_ledger, cap_ledger;
    struct reversal *rev;
    uint32_t n_rev, cap_rev;
    bool dirty; /* ledger or reversals need sorting */
    struct pp_rule_state pp_rule, st_rule;
    /* push signals of the last evaluated day */
    struct pp_sig qec, disc, rev_sig, oversell;
    double qe_share, qe_baseline, d180, peer_median, dqe, ref_disc;
    bool has_dqe;
    double rev_value;
    /* roll-up of the day */
    double oversell_o, oversell_seats;
    uint32_t oversell_deals;
    struct pp_partner_rollup roll;
    double cpi_wsum, health_wsum, health_acv, red_acv, yellow_acv;
    uint32_t touched;
    double cpi;
    int health;
    struct child *children;
    uint32_t n_children, cap_children;
};

/* Cohort day partial (product × band) and its window sums. */
struct cpart {
    double wt, active, opened, esc, resp, pos;
    uint32_t customers;
};

struct dedup_day {
    int32_t day;
    uint32_t n, cap;
    uint64_t *keys;
};

struct pending_alert {
    struct pp_alert alert;
    int rule;        /* 0 CUSTOMER, 1 PARTNER, 2 STUFFING */
    int32_t partner; /* index, for parent lookup */
};

struct pp_model {
    struct pp_model_conf conf;
    uint32_t width; /* ring slots */
    uint32_t span;  /* history days the evaluation reads back */
    uint32_t nwin;
    uint32_t win[PP_MODEL_MAX_WINDOWS];
    /* window index of each use */
    uint32_t w_adopt_s, w_adopt_l, w_load_s, w_load_l, w_ratio_s, w_ratio_l;

    struct pp_idmap *customer_ids;
    struct customer *customers;
    uint32_t customers_cap;
    uint32_t *csorted;
    uint32_t csorted_n;

    struct pp_idmap *partner_ids;
    struct partner *partners;
    uint32_t partners_cap;
    uint32_t *psorted;
    uint32_t psorted_n;

    struct pp_idmap *product_ids;
    struct cpart *cday; /* [product][band][width] */
    struct cpart *cwin; /* [product][band][nwin] */

    struct dedup_day *dedup; /* width slots */

    int64_t watermark;
    int32_t min_day, max_day, last_eval;
    int32_t first_reversal_day;

    struct pending_alert *pend;
    uint32_t n_pend, cap_pend;

    /* day scratch: peer discount histogram and QE sums (all partners) */
    uint32_t *hist_all;
    uint32_t *hist_own;
    double all_acv, all_qe_acv;
    uint32_t all_deals, all_disc_deals;
    double *scratch;
    uint32_t scratch_cap;

    struct pp_model_stats stats;
    pp_model_day_cb *day_cb; /* after each evaluated day (pp_model_set_day_cb) */
    void *day_opaque;
};

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

static uint32_t max_u32(uint32_t a, uint32_t b)
{
    return a > b ? a : b;
}

static uint32_t history_span(const struct pp_model_conf *c)
{
    uint32_t s = max_u32(c->adopt_long_days, c->ratio_long_days);
    s = max_u32(s, max_u32(c->load_long_days, c->adopt_short_days));
    s = max_u32(s, max_u32(c->load_short_days, c->ratio_short_days));
    return max_u32(s, c->oversize_pre_days);
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
    if (c->state_days > 4096 || c->state_days < history_span(c) + 8) {
        snprintf(errstr, errstr_size,
                 "state_days must be in [longest window + 8, 4096] (longest window %u)",
                 history_span(c));
        return -1;
    }
    if (c->allowed_lateness_ms < 0) {
        snprintf(errstr, errstr_size, "%s", "allowed_lateness_ms must be >= 0");
        return -1;
    }
    int64_t late_days = (c->allowed_lateness_ms + PP_MS_PER_DAY - 1) / PP_MS_PER_DAY;
    if (late_days + 2 > (int64_t)(c->state_days - history_span(c))) {
        snprintf(errstr, errstr_size, "%s",
                 "allowed_lateness leaves no room in state_days: raise state_days");
        return -1;
    }
    /* The dedup sets share the rings' slots: remembered evaluated days and
     * the days ahead must fit in state_days together. */
    if (c->dedup_horizon_days > history_span(c)) {
        snprintf(errstr, errstr_size, "dedup_horizon_days must be <= the longest window (%u)",
                 history_span(c));
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
    int64_t room = (int64_t)conf->state_days - history_span(conf) - 2 - late_days;
    return room > 0 ? (uint32_t)room : 0;
}

/* ---- construction ----------------------------------------------------------- */

static uint32_t add_window(struct pp_model *m, uint32_t days)
{
    for (uint32_t i = 0; i < m->nwin; i++) {
        if (m->win[i] == days) {
            return i;
        }
    }
    m->win[m->nwin] = days;
    return m->nwin++;
}

static size_t customer_block_bytes(const struct pp_model *m)
{
    return m->nwin * sizeof(struct wsum) +
           m->width * (sizeof(uint32_t) + sizeof(uint16_t) + 4 * sizeof(uint8_t));
}

struct pp_model *pp_model_new(const struct pp_model_conf *conf)
{
    struct pp_model *m = pp_xcalloc(1, sizeof(*m));
    m->conf = *conf;
    m->width = conf->state_days;
    m->span = history_span(conf);
    m->w_adopt_s = add_window(m, conf->adopt_short_days);
    m->w_adopt_l = add_window(m, conf->adopt_long_days);
    m->w_load_s = add_window(m, conf->load_short_days);
    m->w_load_l = add_window(m, conf->load_long_days);
    m->w_ratio_s = add_window(m, conf->ratio_short_days);
    m->w_ratio_l = add_window(m, conf->ratio_long_days);
    m->customer_ids = pp_idmap_new();
    m->partner_ids = pp_idmap_new();
    m->product_ids = pp_idmap_new();
    m->cday = pp_xcalloc((size_t)PP_MODEL_MAX_PRODUCTS * N_BANDS * m->width, sizeof(struct cpart));
    m->cwin = pp_xcalloc((size_t)PP_MODEL_MAX_PRODUCTS * N_BANDS * m->nwin, sizeof(struct cpart));
    m->dedup = pp_xcalloc(m->width, sizeof(struct dedup_day));
    for (uint32_t i = 0; i < m->width; i++) {
        m->dedup[i].day = NO_DAY;
    }
    m->hist_all = pp_xcalloc(DISC_BINS, sizeof(uint32_t));
    m->hist_own = pp_xcalloc(DISC_BINS, sizeof(uint32_t));
    m->watermark = INT64_MIN;
    m->min_day = NO_DAY;
    m->max_day = NO_DAY;
    m->last_eval = NO_DAY;
    m->first_reversal_day = NO_DAY;
    m->stats.bytes_per_customer = sizeof(struct customer) + customer_block_bytes(m);
    m->stats.bytes_per_tranche = sizeof(struct tranche);
    m->stats.bytes_per_link = sizeof(struct link);
    m->stats.bytes_per_partner = sizeof(struct partner);
    m->stats.bytes_per_ledger_deal = sizeof(struct ledger_deal);
    return m;
}

/* Fields that size or index the state (rings, window sums, retention): a
 * running model cannot change them, only a restart can. */
static const struct {
    const char *key;
    size_t off;
} layout_fields[] = {
    {"model.state_days", offsetof(struct pp_model_conf, state_days)},
    {"model.dedup_horizon_days", offsetof(struct pp_model_conf, dedup_horizon_days)},
    {"model.adopt_short_days", offsetof(struct pp_model_conf, adopt_short_days)},
    {"model.adopt_long_days", offsetof(struct pp_model_conf, adopt_long_days)},
    {"model.load_short_days", offsetof(struct pp_model_conf, load_short_days)},
    {"model.load_long_days", offsetof(struct pp_model_conf, load_long_days)},
    {"model.ratio_short_days", offsetof(struct pp_model_conf, ratio_short_days)},
    {"model.ratio_long_days", offsetof(struct pp_model_conf, ratio_long_days)},
    {"model.push_short_days", offsetof(struct pp_model_conf, push_short_days)},
    {"model.push_long_days", offsetof(struct pp_model_conf, push_long_days)},
    {"model.oversize_pre_days", offsetof(struct pp_model_conf, oversize_pre_days)},
    {"model.rev_horizon_days", offsetof(struct pp_model_conf, rev_horizon_days)},
};

int pp_model_set_conf(struct pp_model *m, const struct pp_model_conf *conf, char *errstr,
                      size_t errstr_size)
{
    if (pp_model_conf_validate(conf, errstr, errstr_size) != 0) {
        return -1;
    }
    for (size_t i = 0; i < sizeof(layout_fields) / sizeof(layout_fields[0]); i++) {
        uint32_t a, b;
        memcpy(&a, (const char *)&m->conf + layout_fields[i].off, sizeof(a));
        memcpy(&b, (const char *)conf + layout_fields[i].off, sizeof(b));
        if (a != b) {
            snprintf(errstr, errstr_size,
                     "key '%s': cannot change from %u to %u while running (it sizes the state; "
                     "restart instead)",
                     layout_fields[i].key, a, b);
            return -1;
        }
    }
    if (strcmp(m->conf.tenant, conf->tenant) != 0 ||
        m->conf.allowed_lateness_ms != conf->allowed_lateness_ms) {
        snprintf(errstr, errstr_size, "key '%s': cannot change while running (restart instead)",
                 strcmp(m->conf.tenant, conf->tenant) != 0 ? "tenant"
                                                           : "processing.allowed_lateness");
        return -1;
    }
    m->conf = *conf;
    return 0;
}

void pp_model_destroy(struct pp_model *m)
{
    if (m == NULL) {
        return;
    }
    uint32_t nc = pp_idmap_count(m->customer_ids);
    for (uint32_t i = 0; i < nc; i++) {
        struct customer *c = &m->customers[i];
        free(c->sums);
        free(c->cons);
        free(c->tr);
        free(c->links);
    }
    uint32_t np = pp_idmap_count(m->partner_ids);
    for (uint32_t i = 0; i < np; i++) {
        free(m->partners[i].ledger);
        free(m->partners[i].rev);
        free(m->partners[i].children);
    }
    for (uint32_t i = 0; i < m->width; i++) {
        free(m->dedup[i].keys);
    }
    free(m->dedup);
    free(m->customers);
    free(m->partners);
    free(m->csorted);
    free(m->psorted);
    free(m->cday);
    free(m->cwin);
    free(m->pend);
    free(m->hist_all);
    free(m->hist_own);
    free(m->scratch);
    pp_idmap_destroy(m->customer_ids);
    pp_idmap_destroy(m->partner_ids);
    pp_idmap_destroy(m->product_ids);
    free(m);
}

static uint32_t slot_of(const struct pp_model *m, int32_t day)
{
    int64_t s = (int64_t)day % (int64_t)m->width;
    return (uint32_t)(s < 0 ? s + m->width : s);
}

static uint32_t customer_intern(struct pp_model *m, const char *id)
{
    bool created;
    uint32_t idx = pp_idmap_intern(m->customer_ids, id, &created);
    if (created) {
        if (idx == m->customers_cap) {
            m->customers_cap = m->customers_cap ? m->customers_cap * 2 : 64;
            m->customers = pp_xrealloc(m->customers, m->customers_cap * sizeof(*m->customers));
        }
        struct customer *c = &m->customers[idx];
        memset(c, 0, sizeof(*c));
        /* One block: window sums, then the rings (struct of arrays). */
        char *blk = pp_xcalloc(1, customer_block_bytes(m));
        c->sums = (struct wsum *)(void *)blk;
        c->active = (uint32_t *)(void *)(blk + m->nwin * sizeof(struct wsum));
        c->wt = (uint16_t *)(void *)(c->active + m->width);
        c->cnt = (uint8_t *)(void *)(c->wt + m->width);
        for (uint32_t i = 0; i < m->width; i++) {
            c->active[i] = NO_ACTIVE;
        }
        c->last_snap_day = NO_DAY;
        c->first_snap_day = NO_DAY;
        c->ent_now = UINT32_MAX;
        for (int i = 0; i < 4; i++) {
            c->ent_day[i] = NO_DAY;
        }
        c->first_cons_day = NO_DAY;
        c->product = -1;
        c->band = -1;
        c->band_since = NO_DAY;
        c->mature_since = NO_DAY;
        m->stats.customers = idx + 1;
    }
    return idx;
}

static uint32_t partner_intern(struct pp_model *m, const char *id)
{
    bool created;
    uint32_t idx = pp_idmap_intern(m->partner_ids, id, &created);
    if (created) {
        if (idx == m->partners_cap) {
            m->partners_cap = m->partners_cap ? m->partners_cap * 2 : 16;
            m->partners = pp_xrealloc(m->partners, m->partners_cap * sizeof(*m->partners));
        }
        struct partner *p = &m->partners[idx];
        memset(p, 0, sizeof(*p));
        pp_rule_init(&p->pp_rule);
        pp_rule_init(&p->st_rule);
        p->health = -1;
        m->stats.partners = idx + 1;
    }
    return idx;
}

static int16_t product_intern(struct pp_model *m, const char *id)
{
    if (id[0] == '\0') {
        return -1;
    }
    int64_t found = pp_idmap_find(m->product_ids, id);
    if (found >= 0) {
        return (int16_t)found;
    }
    if (pp_idmap_count(m->product_ids) >= PP_MODEL_MAX_PRODUCTS) {
        return -1; /* beyond the cohort table: fallbacks apply */
    }
    return (int16_t)pp_idmap_intern(m->product_ids, id, NULL);
}

/* ---- dedup ------------------------------------------------------------------ */

static uint64_t event_key(const struct pp_event *ev)
{
    uint64_t k = pp_hash_str(ev->event_id) ^ ((uint64_t)ev->type * UINT64_C(0x9E3779B97F4A7C15));
    return k ? k : 1;
}

/* Returns true when the key is new for `day` (and remembers it). */
static bool dedup_insert(struct pp_model *m, int32_t day, uint64_t key)
{
    struct dedup_day *dd = &m->dedup[slot_of(m, day)];
    if (dd->day != day) {
        if (dd->day != NO_DAY && dd->day > day) {
            return true; /* older than anything remembered */
        }
        dd->day = day;
        dd->n = 0;
        if (dd->keys) {
            memset(dd->keys, 0, dd->cap * sizeof(uint64_t));
        }
    }
    if (dd->cap == 0 || (dd->n + 1) * 4 > dd->cap * 3) {
        uint32_t ncap = dd->cap ? dd->cap * 2 : 64;
        uint64_t *nk = pp_xcalloc(ncap, sizeof(uint64_t));
        for (uint32_t i = 0; i < dd->cap; i++) {
            if (dd->keys[i]) {
                uint32_t j = (uint32_t)(dd->keys[i] & (ncap - 1));
                while (nk[j]) {
                    j = (j + 1) & (ncap - 1);
                }
                nk[j] = dd->keys[i];
            }
        }
        free(dd->keys);
        dd->keys = nk;
        dd->cap = ncap;
    }
    uint32_t j = (uint32_t)(key & (dd->cap - 1));
    while (dd->keys[j]) {
        if (dd->keys[j] == key) {
            return false;
        }
        j = (j + 1) & (dd->cap - 1);
    }
    dd->keys[j] = key;
    dd->n++;
    return true;
}

static bool dedup_seen(const struct pp_model *m, int32_t day, uint64_t key)
{
    const struct dedup_day *dd = &m->dedup[slot_of(m, day)];
    if (dd->day != day || dd->cap == 0) {
        return false;
    }
    uint32_t j = (uint32_t)(key & (dd->cap - 1));
    while (dd->keys[j]) {
        if (dd->keys[j] == key) {
            return true;
        }
        j = (j + 1) & (dd->cap - 1);
    }
    return false;
}

static void dedup_forget(struct pp_model *m, int32_t day)
{
    struct dedup_day *dd = &m->dedup[slot_of(m, day)];
    if (dd->day == day) {
        free(dd->keys);
        dd->keys = NULL;
        dd->cap = 0;
        dd->n = 0;
        dd->day = NO_DAY;
    }
}

/* qsort that accepts an empty (NULL) array: C leaves qsort(NULL, 0) undefined. */
static void sort_n(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1) {
        qsort(base, n, size, cmp);
    }
}

/* ---- applying events ------------------------------------------------------ */

static int32_t min_i32(int32_t a, int32_t b)
{
    return a < b ? a : b;
}

static int32_t max_i32(int32_t a, int32_t b)
{
    return a > b ? a : b;
}

static double deal_acv(int64_t amount_minor, int32_t term_months)
{
    double amount = (double)amount_minor / 100.0;
    if (term_months > 12) {
        amount *= 12.0 / (double)term_months;
    }
    return amount;
}

static int cmp_tranche(const void *a, const void *b)
{
    const struct tranche *x = a, *y = b;
    if (x->close != y->close) {
        return x->close < y->close ? -1 : 1;
    }
    return x->deal < y->deal ? -1 : (x->deal > y->deal ? 1 : 0);
}

static struct tranche *tranche_find(struct customer *c, uint64_t deal)
{
    for (uint32_t i = 0; i < c->n_tr; i++) {
        if (c->tr[i].deal == deal) {
            return &c->tr[i];
        }
    }
    return NULL;
}

/* A new tranche slot, evicting the longest-ended one when full. */
static struct tranche *tranche_add(struct pp_model *m, struct customer *c, uint64_t deal,
                                   int32_t today)
{
    if (c->n_tr == c->cap_tr && c->cap_tr < PP_MODEL_MAX_TRANCHES) {
        c->cap_tr = c->cap_tr ? (uint8_t)(c->cap_tr * 2) : 1; /* most customers hold one */
        c->tr = pp_xrealloc(c->tr, c->cap_tr * sizeof(*c->tr));
    }
    struct tranche *t = NULL;
    if (c->n_tr < PP_MODEL_MAX_TRANCHES) {
        t = &c->tr[c->n_tr++];
    }
    else {
        int32_t oldest_end = today;
        for (uint32_t i = 0; i < c->n_tr; i++) {
            if (c->tr[i].partner >= 0 &&
                c->tr[i].end < oldest_end - (int32_t)m->conf.push_long_days) {
                oldest_end = c->tr[i].end;
                t = &c->tr[i];
            }
        }
        if (t == NULL) {
            m->stats.tranche_overflow++;
            return NULL;
        }
    }
    memset(t, 0, sizeof(*t));
    t->deal = deal;
    t->partner = -1;
    t->close = NO_DAY;
    t->known = NO_DAY;
    t->cut_day = NO_DAY;
    t->credit_day = NO_DAY;
    t->commit_base = NAN;
    t->b0 = -1.0;
    t->u_pre = -1.0f;
    t->discount = NAN;
    return t;
}

static void link_ensure(struct pp_model *m, struct customer *c, int32_t partner)
{
    for (uint32_t i = 0; i < c->n_links; i++) {
        if (c->links[i].partner == partner) {
            return;
        }
    }
    if (c->n_links == c->cap_links && c->cap_links < PP_MODEL_MAX_LINKS) {
        c->cap_links = c->cap_links ? (uint8_t)(c->cap_links * 2) : 1;
        c->links = pp_xrealloc(c->links, c->cap_links * sizeof(*c->links));
    }
    if (c->n_links == PP_MODEL_MAX_LINKS) {
        m->stats.link_overflow++;
        return;
    }
    struct link *l = &c->links[c->n_links++];
    memset(l, 0, sizeof(*l));
    l->partner = partner;
    l->health = -1;
    pp_rule_init(&l->rule);
    m->stats.links++;
}

static void ledger_put(struct pp_model *m, struct partner *p, const struct ledger_deal *ld)
{
    for (uint32_t i = 0; i < p->n_ledger; i++) {
        if (p->ledger[i].deal == ld->deal) {
            p->ledger[i] = *ld; /* a corrected closed_won replaces the first */
            p->dirty = true;
            return;
        }
    }
    if (p->n_ledger == PP_MODEL_LEDGER_MAX) {
        m->stats.ledger_overflow++;
        return;
    }
    if (p->n_ledger == p->cap_ledger) {
        p->cap_ledger = p->cap_ledger ? p->cap_ledger * 2 : 16;
        p->ledger = pp_xrealloc(p->ledger, p->cap_ledger * sizeof(*p->ledger));
    }
    p->ledger[p->n_ledger++] = *ld;
    p->dirty = true;
}

static void apply_closed_won(struct pp_model *m, const struct pp_deal *d, int32_t day)
{
    uint32_t pi = partner_intern(m, d->partner_id);
    uint32_t ci = customer_intern(m, d->customer_id);
    struct customer *c = &m->customers[ci];
    uint64_t deal = pp_hash_str(d->deal_id);
    int32_t term = d->term_months >= 1 ? d->term_months : 12;
    int32_t start = d->has_start_date ? d->start_date : d->close_date;
    double discount = NAN;
    if (d->has_discount_pct) {
        discount = d->discount_pct;
    }
    else if (d->has_list_amount && d->list_amount > 0) {
        discount = 1.0 - (double)d->amount / (double)d->list_amount;
    }
    bool qe = d->has_quarter_end ? d->quarter_end : pp_is_quarter_end(&m->conf, d->close_date);
    int16_t product = product_intern(m, d->product_id);
    if (c->product < 0 && d->kind != PP_KIND_COMMIT) {
        c->product = product;
    }

    struct ledger_deal ld;
    memset(&ld, 0, sizeof(ld));
    ld.deal = deal;
    ld.acv = deal_acv(d->amount, term);
    ld.discount = (float)discount;
    ld.close = d->close_date;
    ld.known = max_i32(d->close_date, day);
    ld.customer = (int32_t)ci;
    ld.quarter = pp_quarter_of(d->close_date);
    ld.product = product;
    ld.qe = qe;
    ld.kind = (uint8_t)d->kind;
    ledger_put(m, &m->partners[pi], &ld);

    struct tranche *t = tranche_find(c, deal);
    if (t == NULL) {
        t = tranche_add(m, c, deal, ld.known);
        if (t == NULL) {
            return;
        }
    }
    t->partner = (int32_t)pi;
    t->acv = ld.acv;
    t->discount = (float)discount;
    t->close = d->close_date;
    t->known = ld.known;
    t->start = start;
    t->end = pp_add_months(start, term);
    t->seats = d->seats > 0 ? d->seats : 0;
    t->qe = qe;
    switch (d->kind) {
    case PP_KIND_ADDON:
        t->kind = TR_ADDON;
        t->u_pre = NAN;
        break;
    case PP_KIND_RENEWAL:
        t->kind = TR_RENEWAL;
        break;
    case PP_KIND_COMMIT:
        t->kind = TR_COMMIT;
        t->seats = 0;
        t->commit_k = d->has_commit_units ? (double)d->commit_units : (double)d->amount / 100.0;
        t->b0 = NAN;
        break;
    default:
        t->kind = TR_SEATS;
        break;
    }
    sort_n(c->tr, c->n_tr, sizeof(*c->tr), cmp_tranche);
    link_ensure(m, c, (int32_t)pi);
}

static void apply_reversal(struct pp_model *m, const struct pp_deal *d, int32_t day)
{
    bool negative = d->event_type != PP_DEAL_AMENDED || d->seats < 0 || d->amount < 0;
    if (!negative) {
        m->stats.ignored++; /* an upward amendment: the model counts sold deals only */
        return;
    }
    uint64_t deal = pp_hash_str(d->deal_id);
    uint32_t pi = partner_intern(m, d->partner_id);
    struct partner *p = &m->partners[pi];
    int32_t term = d->term_months >= 1 ? d->term_months : 12;
    double acv = 0.0;
    if (d->amount != 0) {
        acv = deal_acv(d->amount < 0 ? -d->amount : d->amount, term);
    }
    else if (d->event_type == PP_DEAL_CANCELLED) {
        acv = NAN; /* the whole deal, resolved against the ledger */
    }
    if (acv != 0.0) {
        if (p->n_rev < PP_MODEL_REV_MAX) {
            if (p->n_rev == p->cap_rev) {
                p->cap_rev = p->cap_rev ? p->cap_rev * 2 : 8;
                p->rev = pp_xrealloc(p->rev, p->cap_rev * sizeof(*p->rev));
            }
            p->rev[p->n_rev].deal = deal;
            p->rev[p->n_rev].acv = acv;
            p->rev[p->n_rev].day = day;
            p->n_rev++;
            p->dirty = true;
        }
        else {
            m->stats.ledger_overflow++;
        }
        if (m->first_reversal_day == NO_DAY || day < m->first_reversal_day) {
            m->first_reversal_day = day;
        }
    }
    if (d->event_type == PP_DEAL_CREDITED && acv > 0.0) {
        uint32_t ci = customer_intern(m, d->customer_id);
        struct customer *c = &m->customers[ci];
        struct tranche *t = tranche_find(c, deal);
        if (t == NULL) {
            t = tranche_add(m, c, deal, day);
        }
        if (t != NULL) {
            t->credit_acv += acv;
            t->credit_seats = m->conf.credit_mode != 0;
            t->credit_day = t->credit_day == NO_DAY ? day : min_i32(t->credit_day, day);
        }
        return;
    }
    int32_t cut = 0;
    if (d->event_type == PP_DEAL_CANCELLED) {
        cut = CUT_ALL;
    }
    else if (d->event_type == PP_DEAL_AMENDED && d->seats < 0) {
        cut = -d->seats;
    }
    if (cut == 0) {
        return;
    }
    uint32_t ci = customer_intern(m, d->customer_id);
    struct customer *c = &m->customers[ci];
    struct tranche *t = tranche_find(c, deal);
    if (t == NULL) {
        /* The reversal came first: a placeholder the deal fills in later. */
        t = tranche_add(m, c, deal, day);
        if (t == NULL) {
            return;
        }
    }
    if (cut == CUT_ALL || t->cut_seats == CUT_ALL) {
        t->cut_seats = CUT_ALL;
    }
    else {
        t->cut_seats += cut;
    }
    t->cut_day = t->cut_day == NO_DAY ? day : min_i32(t->cut_day, day);
}

/* Keeps the entitlement of the four newest snapshot days (the evaluation
 * reads the newest one not after the evaluated day; with inputs less than
 * four days ahead of the evaluation this is exact for any arrival order). */
static void ent_remember(struct customer *c, int32_t day, uint32_t entitled)
{
    for (int i = 0; i < 4; i++) {
        if (c->ent_day[i] == day) {
            if (entitled > c->ent_val[i]) {
                c->ent_val[i] = entitled;
            }
            return;
        }
    }
    int oldest = 0;
    for (int i = 1; i < 4; i++) {
        if (c->ent_day[i] == NO_DAY ||
            (c->ent_day[oldest] != NO_DAY && c->ent_day[i] < c->ent_day[oldest])) {
            oldest = i;
        }
    }
    if (c->ent_day[oldest] == NO_DAY || c->ent_day[oldest] < day) {
        c->ent_day[oldest] = day;
        c->ent_val[oldest] = entitled;
    }
}

static void apply_consumption(struct pp_model *m, const struct pp_consumption *cs, int32_t day)
{
    uint32_t ci = customer_intern(m, cs->customer_id);
    struct customer *c = &m->customers[ci];
    if (c->product < 0) {
        c->product = product_intern(m, cs->product_id);
    }
    uint32_t s = slot_of(m, day);
    uint32_t active = cs->licenses_active > 0 ? (uint32_t)cs->licenses_active : 0;
    /* Two snapshots for one day: the larger wins, whatever the order. */
    if (c->active[s] == NO_ACTIVE || active > c->active[s]) {
        c->active[s] = active;
    }
    ent_remember(c, day, cs->licenses_entitled > 0 ? (uint32_t)cs->licenses_entitled : 0);
    if (cs->has_consumption_units && cs->consumption_units > 0.0) {
        if (c->cons == NULL) {
            c->cons = pp_xcalloc(m->width, sizeof(float));
        }
        c->cons[s] += (float)cs->consumption_units;
        if (c->first_cons_day == NO_DAY || day < c->first_cons_day) {
            c->first_cons_day = day;
        }
    }
}

static uint8_t inc8(uint8_t v)
{
    return v == UINT8_MAX ? v : (uint8_t)(v + 1);
}

static void apply_support(struct pp_model *m, const struct pp_support *sp, int32_t day)
{
    uint32_t ci = customer_intern(m, sp->customer_id);
    struct customer *c = &m->customers[ci];
    if (c->product < 0 && sp->has_product_id) {
        c->product = product_intern(m, sp->product_id);
    }
    uint32_t s = slot_of(m, day);
    uint8_t *cnt = &c->cnt[s * 4];
    switch (sp->event_type) {
    case PP_TICKET_OPENED:
        cnt[0] = inc8(cnt[0]);
        if (!sp->has_vendor_incident_id) {
            int sev = sp->severity >= 1 && sp->severity <= 4 ? sp->severity : 3;
            uint32_t w = (uint32_t)lround(m->conf.sev_weight[sev - 1]);
            uint32_t v = c->wt[s] + w;
            c->wt[s] = (uint16_t)(v > UINT16_MAX ? UINT16_MAX : v);
        }
        break;
    case PP_TICKET_ESCALATED:
        cnt[1] = inc8(cnt[1]);
        break;
    case PP_TICKET_CSAT:
        if (sp->has_csat_score) {
            cnt[2] = inc8(cnt[2]);
            if (sp->csat_score >= m->conf.csat_positive_min) {
                cnt[3] = inc8(cnt[3]);
            }
        }
        break;
    default:
        m->stats.ignored++;
        break;
    }
}

/* Can an event of `day` be stored without overwriting history that the
 * evaluation still reads? */
static bool fits(const struct pp_model *m, int32_t day)
{
    int64_t room = (int64_t)m->width - m->span - 1;
    if (m->last_eval != NO_DAY) {
        return (int64_t)day - ((int64_t)m->last_eval + 1) <= room;
    }
    if (m->min_day == NO_DAY) {
        return true;
    }
    int64_t lo = min_i32(m->min_day, day), hi = max_i32(m->max_day, day);
    return hi - lo <= room;
}

enum pp_apply_result pp_model_apply(struct pp_model *m, const struct pp_event *ev)
{
    int32_t day = pp_day_from_ms(ev->occurred_at_ms);
    uint64_t key = event_key(ev);
    if (m->last_eval != NO_DAY && day <= m->last_eval) {
        if ((int64_t)day > (int64_t)m->last_eval - m->conf.dedup_horizon_days &&
            dedup_seen(m, day, key)) {
            m->stats.duplicates++;
            return PP_APPLY_OK;
        }
        m->stats.too_late++;
        return PP_APPLY_TOO_LATE;
    }
    if (!fits(m, day)) {
        m->stats.skewed++;
        return PP_APPLY_SKEWED;
    }
    if (!dedup_insert(m, day, key)) {
        m->stats.duplicates++;
        return PP_APPLY_OK;
    }
    switch (ev->type) {
    case PP_EV_DEAL:
        if (ev->u.deal.event_type == PP_DEAL_CLOSED_WON) {
            apply_closed_won(m, &ev->u.deal, day);
        }
        else if (ev->u.deal.event_type == PP_DEAL_CANCELLED ||
                 ev->u.deal.event_type == PP_DEAL_CREDITED ||
                 ev->u.deal.event_type == PP_DEAL_AMENDED) {
            apply_reversal(m, &ev->u.deal, day);
        }
        else {
            m->stats.ignored++;
        }
        break;
    case PP_EV_CONSUMPTION:
        apply_consumption(m, &ev->u.consumption, day);
        break;
    case PP_EV_SUPPORT:
        apply_support(m, &ev->u.support, day);
        break;
    }
    if ((unsigned)ev->type < 4) {
        m->stats.events[ev->type]++;
    }
    if (m->min_day == NO_DAY || day < m->min_day) {
        m->min_day = day;
    }
    if (m->max_day == NO_DAY || day > m->max_day) {
        m->max_day = day;
    }
    return PP_APPLY_OK;
}

/* ---- evaluation: tranches on a day ---------------------------------------- */

struct spans {
    int32_t start[PP_MODEL_MAX_TRANCHES];
    int32_t end[PP_MODEL_MAX_TRANCHES];
    bool visible[PP_MODEL_MAX_TRANCHES];
    bool counts[PP_MODEL_MAX_TRANCHES]; /* contributes entitled seats */
};

/* Seats a credit returns: the credited share of the deal's ACV. */
static int32_t credit_back(const struct tranche *t)
{
    double share = t->credit_acv / t->acv;
    return (int32_t)lround((share > 1.0 ? 1.0 : share) * t->seats);
}

static int32_t seats_on_f(const struct tranche *t, int32_t day, double f)
{
    int32_t seats = t->seats;
    if (t->cut_day != NO_DAY && day >= t->cut_day) {
        if (t->cut_seats == CUT_ALL) {
            return 0;
        }
        seats = seats > t->cut_seats ? seats - t->cut_seats : 0;
    }
    if (t->credit_seats && f > 0.0 && t->credit_day != NO_DAY && day >= t->credit_day &&
        t->acv > 0.0) {
        /* A credit on a seat deal returns the same share of its seats (or
         * the part of it the licence feed confirms): the tranche is net of
         * downsizes (§2.3 S1), whatever form they take. */
        int32_t back = (int32_t)lround(credit_back(t) * f);
        seats = seats > back ? seats - back : 0;
    }
    return seats;
}

static int32_t seats_on(const struct tranche *t, int32_t day)
{
    return seats_on_f(t, day, t->credit_f);
}

/* Which tranches hold seats on `day` and over which days. Renewals continue
 * the tranche they renew (its age is kept, its end extended); a renewal of
 * something before our history stands alone and counts as mature. */
static void tranche_spans(const struct pp_model *m, const struct customer *c, int32_t day,
                          struct spans *sp)
{
    for (uint32_t i = 0; i < c->n_tr; i++) {
        const struct tranche *t = &c->tr[i];
        bool vis = t->partner >= 0 && t->known != NO_DAY && t->known <= day;
        sp->visible[i] = vis;
        sp->start[i] = t->start;
        sp->end[i] = t->end;
        if (t->cut_seats == CUT_ALL && t->cut_day != NO_DAY && t->cut_day < sp->end[i]) {
            sp->end[i] = t->cut_day;
        }
        sp->counts[i] = vis && (t->kind == TR_SEATS || t->kind == TR_ADDON);
    }
    for (uint32_t i = 0; i < c->n_tr; i++) {
        const struct tranche *r = &c->tr[i];
        if (!sp->visible[i] || r->kind != TR_RENEWAL) {
            continue;
        }
        bool continued = false;
        for (uint32_t j = 0; j < c->n_tr; j++) {
            if (sp->counts[j] && c->tr[j].kind != TR_RENEWAL && abs(r->start - sp->end[j]) <= 90) {
                sp->end[j] = max_i32(sp->end[j], sp->end[i]);
                continued = true;
            }
        }
        if (!continued) {
            sp->counts[i] = true;
            sp->start[i] = r->start - (int32_t)m->conf.mature_days;
        }
    }
}

static bool active_on(const struct spans *sp, uint32_t i, int32_t day)
{
    return sp->start[i] <= day && day < sp->end[i];
}

/* The deal's own contract is running (ACV counts): renewals extend seats,
 * not the ACV of the deal they renew; a cancellation ends it. */
static bool contract_active(const struct tranche *t, int32_t day)
{
    int32_t end = t->end;
    if (t->cut_seats == CUT_ALL && t->cut_day != NO_DAY && t->cut_day < end) {
        end = t->cut_day;
    }
    return t->start <= day && day < end;
}

/* Seat-days of tranche i over [from, to]: expected (weighted by T(age)) or
 * entitled (target 1), split at a negative amendment. */
static double tranche_seatdays(const struct pp_model *m, const struct tranche *t,
                               const struct spans *sp, uint32_t i, int32_t from, int32_t to,
                               bool expected)
{
    int32_t start = sp->start[i], end = sp->end[i];
    /* Seats change only on the amendment and credit days: split there. */
    int32_t cuts[3] = {from, NO_DAY, NO_DAY};
    int ncuts = 1;
    int32_t c1 = t->cut_day != NO_DAY && t->cut_seats != CUT_ALL ? t->cut_day : NO_DAY;
    int32_t c2 = t->credit_day;
    if (c1 != NO_DAY && c2 != NO_DAY && c2 < c1) {
        int32_t x = c1;
        c1 = c2;
        c2 = x;
    }
    if (c1 != NO_DAY && c1 > from && c1 <= to) {
        cuts[ncuts++] = c1;
    }
    if (c2 != NO_DAY && c2 > cuts[ncuts - 1] && c2 <= to) {
        cuts[ncuts++] = c2;
    }
    double total = 0.0;
    for (int part = 0; part < ncuts; part++) {
        int32_t lo = cuts[part];
        int32_t hi = part + 1 < ncuts ? cuts[part + 1] - 1 : to;
        double seats = seats_on(t, lo);
        if (hi < lo) {
            continue;
        }
        if (expected) {
            total += pp_sig_expected_seatdays(&m->conf, seats, start, end, lo, hi);
        }
        else {
            int32_t a = max_i32(lo, start), b = min_i32(hi, end - 1);
            if (b >= a) {
                total += seats * (double)(b - a + 1);
            }
        }
    }
    return total;
}

/* ---- evaluation: step 1, finalize a customer's day ------------------------ */

static float upre_of(const struct pp_model *m, const struct customer *c, const struct spans *sp,
                     uint32_t i, int32_t day)
{
    const struct tranche *t = &c->tr[i];
    int32_t pre = t->close - 1;
    if ((int64_t)pre < (int64_t)day - m->span || c->first_snap_day == NO_DAY ||
        c->first_snap_day > pre) {
        return -1.0f; /* no pre-deal snapshot: not a qualifying add-on */
    }
    uint32_t a = c->active[slot_of(m, pre)];
    if (a == NO_ACTIVE) {
        return -1.0f;
    }
    double e_pre = 0.0;
    for (uint32_t j = 0; j < c->n_tr; j++) {
        if (j != i && sp->counts[j] && active_on(sp, j, pre) && c->tr[j].close <= pre) {
            e_pre += seats_on(&c->tr[j], pre);
        }
    }
    if (e_pre < m->conf.oversell_min_pre_seats) {
        return -1.0f;
    }
    return (float)((double)a / e_pre);
}

static double b0_of(const struct pp_model *m, const struct customer *c, const struct tranche *t,
                    int32_t day)
{
    int32_t from = t->close - (int32_t)m->conf.oversize_pre_days;
    if (c->cons == NULL || c->first_cons_day == NO_DAY || c->first_cons_day > from ||
        (int64_t)from < (int64_t)day - m->span) {
        return -1.0; /* a new consumer: OVERSIZE is null */
    }
    double sum = 0.0;
    for (int32_t d = from; d < t->close; d++) {
        sum += c->cons[slot_of(m, d)];
    }
    double b0 = sum / (double)m->conf.oversize_pre_days;
    return b0 > 0.0 ? b0 : -1.0;
}

static struct cpart *cday_at(struct pp_model *m, int p, int b, int32_t day)
{
    return &m->cday[((size_t)p * N_BANDS + (size_t)b) * m->width + slot_of(m, day)];
}

/* How much of the credited seats are gone on `day`: all (credit_mode 1),
 * none (0), or (2) the part the licence feed confirms — the entitlement it
 * reports below the seats sold. A price concession that leaves the seats
 * in place therefore stays money only. */
static void credit_shares(const struct pp_model *m, struct customer *c, const struct spans *sp,
                          int32_t day)
{
    double gross = 0.0, net = 0.0;
    bool any = false;
    for (uint32_t i = 0; i < c->n_tr; i++) {
        const struct tranche *t = &c->tr[i];
        if (!sp->counts[i] || !active_on(sp, i, day)) {
            continue;
        }
        gross += seats_on_f(t, day, 0.0);
        net += seats_on_f(t, day, 1.0);
        any = any || (t->credit_seats && t->credit_day != NO_DAY && t->credit_day <= day);
    }
    double f = 0.0;
    if (any && net < gross) {
        if (m->conf.credit_mode == 1) {
            f = 1.0;
        }
        else if (m->conf.credit_mode == 2 && c->ent_now != UINT32_MAX) {
            f = (gross - (double)c->ent_now) / (gross - net);
            f = f < 0.0 ? 0.0 : (f > 1.0 ? 1.0 : f);
        }
    }
    for (uint32_t i = 0; i < c->n_tr; i++) {
        c->tr[i].credit_f = (float)f;
    }
}

static void finalize_customer(struct pp_model *m, struct customer *c, int32_t day)
{
    uint32_t s = slot_of(m, day);
    if (c->active[s] == NO_ACTIVE) {
        c->active[s] = c->last_snap_day != NO_DAY ? c->last_active : 0; /* carried forward */
    }
    else {
        c->last_active = c->active[s];
        c->last_snap_day = day;
        if (c->first_snap_day == NO_DAY) {
            c->first_snap_day = day;
        }
    }
    const uint8_t *cnt = &c->cnt[s * 4];
    float cons = c->cons ? c->cons[s] : 0.0f;
    for (uint32_t w = 0; w < m->nwin; w++) {
        struct wsum *ws = &c->sums[w];
        uint32_t os = slot_of(m, day - (int32_t)m->win[w]);
        uint32_t old_active = c->active[os] == NO_ACTIVE ? 0 : c->active[os];
        const uint8_t *ocnt = &c->cnt[os * 4];
        ws->active += (uint64_t)c->active[s] - old_active;
        ws->wt += (uint32_t)c->wt[s] - c->wt[os];
        ws->opened += (uint32_t)cnt[0] - ocnt[0];
        ws->esc += (uint32_t)cnt[1] - ocnt[1];
        ws->resp += (uint32_t)cnt[2] - ocnt[2];
        ws->pos += (uint32_t)cnt[3] - ocnt[3];
        if (c->cons) {
            ws->cons += (double)cons - (double)c->cons[os];
        }
    }
    c->cons_cum += cons;

    int32_t best = NO_DAY;
    for (int i = 0; i < 4; i++) {
        if (c->ent_day[i] != NO_DAY && c->ent_day[i] <= day && c->ent_day[i] > best) {
            best = c->ent_day[i];
            c->ent_now = c->ent_val[i];
        }
    }
    struct spans sp;
    tranche_spans(m, c, day, &sp);
    credit_shares(m, c, &sp, day);
    int32_t first = NO_DAY;
    for (uint32_t i = 0; i < c->n_tr; i++) {
        struct tranche *t = &c->tr[i];
        if (!sp.visible[i]) {
            continue;
        }
        if (t->kind == TR_ADDON && isnan(t->u_pre)) {
            t->u_pre = upre_of(m, c, &sp, i, day);
        }
        if (t->kind == TR_COMMIT) {
            if (isnan(t->b0)) {
                t->b0 = b0_of(m, c, t, day);
            }
            if (isnan(t->commit_base) && t->start <= day) {
                double recent = 0.0;
                int32_t lo = max_i32(t->start, day - (int32_t)m->span + 1);
                for (int32_t d = lo; c->cons && d <= day; d++) {
                    recent += c->cons[slot_of(m, d)];
                }
                t->commit_base = c->cons_cum - recent;
            }
        }
        if (sp.counts[i] && active_on(&sp, i, day)) {
            first = first == NO_DAY ? sp.start[i] : min_i32(first, sp.start[i]);
        }
    }
    int8_t was = c->band;
    c->band = -1;
    if (first != NO_DAY) {
        int32_t age = day - first;
        c->band = (int8_t)(age < (int32_t)m->conf.onboarding_days
                               ? 0
                               : (age < (int32_t)m->conf.mature_days ? 1 : 2));
    }
    /* Today's values go to the cohort pool of (product, band) below, if
     * both are known: track since when the customer sits in its pools. */
    if (c->product < 0 || c->band < 0) {
        c->band_since = NO_DAY;
        c->mature_since = NO_DAY;
    }
    else {
        if (c->band != was || c->band_since == NO_DAY) {
            c->band_since = day;
        }
        if (c->band < 1) {
            c->mature_since = NO_DAY;
        }
        else if (was < 1 || c->mature_since == NO_DAY) {
            c->mature_since = day;
        }
    }
    if (c->product >= 0 && c->band >= 0) {
        struct cpart *cp = cday_at(m, c->product, c->band, day);
        cp->wt += c->wt[s];
        cp->active += c->active[s];
        cp->opened += cnt[0];
        cp->esc += cnt[1];
        cp->resp += cnt[2];
        cp->pos += cnt[3];
        cp->customers++;
    }
    /* The oldest slot the evaluation reads is now free for a future day. */
    uint32_t fs = slot_of(m, day - (int32_t)m->span);
    c->active[fs] = NO_ACTIVE;
    c->wt[fs] = 0;
    memset(&c->cnt[fs * 4], 0, 4);
    if (c->cons) {
        c->cons[fs] = 0.0f;
    }
}

/* ---- evaluation: step 2, cohort baselines -------------------------------- */

static struct cpart *cwin_at(struct pp_model *m, int p, int b, uint32_t w)
{
    return &m->cwin[((size_t)p * N_BANDS + (size_t)b) * m->nwin + w];
}

static void cohort_windows(struct pp_model *m, int32_t day)
{
    uint32_t np = pp_idmap_count(m->product_ids);
    for (uint32_t p = 0; p < np; p++) {
        for (int b = 0; b < N_BANDS; b++) {
            const struct cpart *today = cday_at(m, (int)p, b, day);
            for (uint32_t w = 0; w < m->nwin; w++) {
                struct cpart *cw = cwin_at(m, (int)p, b, w);
                const struct cpart *old = cday_at(m, (int)p, b, day - (int32_t)m->win[w]);
                cw->wt += today->wt - old->wt;
                cw->active += today->active - old->active;
                cw->opened += today->opened - old->opened;
                cw->esc += today->esc - old->esc;
                cw->resp += today->resp - old->resp;
                cw->pos += today->pos - old->pos;
            }
        }
    }
}

/* A cohort pool: the window sums of some bands of one product, less the
 * customer itself (leave-one-out: a customer is compared with its peers, so
 * one large surging customer does not raise its own baseline). */
struct pool {
    uint32_t customers;
    double wt, active, opened, esc, resp, pos;
};

static void pool_add(struct pp_model *m, struct pool *pl, int p, int b, uint32_t w, int32_t day)
{
    const struct cpart *x = cwin_at(m, p, b, w);
    pl->customers += cday_at(m, p, b, day)->customers;
    pl->wt += x->wt;
    pl->active += x->active;
    pl->opened += x->opened;
    pl->esc += x->esc;
    pl->resp += x->resp;
    pl->pos += x->pos;
}

static double nonneg(double x)
{
    return x > 0.0 ? x : 0.0;
}

/* The customer's own sums over the days of window w (ending on `day`) from
 * `since` on: the whole window when it has been in the pool all along (the
 * usual case, O(1)); after a band change only the days it has spent in the
 * pool since (read back from the rings, for at most one window's days). */
static void own_since(const struct pp_model *m, const struct customer *c, uint32_t w, int32_t day,
                      int32_t since, struct wsum *out)
{
    int32_t from = day - (int32_t)m->win[w] + 1;
    if (since == NO_DAY || since <= from) {
        *out = c->sums[w];
        return;
    }
    memset(out, 0, sizeof(*out));
    for (int32_t d = since; d <= day; d++) {
        uint32_t s = slot_of(m, d);
        const uint8_t *cnt = &c->cnt[s * 4];
        out->active += c->active[s] == NO_ACTIVE ? 0 : c->active[s];
        out->wt += c->wt[s];
        out->opened += cnt[0];
        out->esc += cnt[1];
        out->resp += cnt[2];
        out->pos += cnt[3];
    }
}

static void pool_less(struct pool *pl, const struct wsum *own)
{
    pl->customers = pl->customers ? pl->customers - 1 : 0;
    pl->wt = nonneg(pl->wt - own->wt);
    pl->active = nonneg(pl->active - (double)own->active);
    pl->opened = nonneg(pl->opened - own->opened);
    pl->esc = nonneg(pl->esc - own->esc);
    pl->resp = nonneg(pl->resp - own->resp);
    pl->pos = nonneg(pl->pos - own->pos);
}

/* The pools customer c is compared with: its own band of its product, then
 * the product's mature bands (90 d and older) pooled; each less the
 * customer's own days in it. A customer that has just changed band
 * contributed only its days since the change to its new band's pool: taking
 * its whole window out instead removed the surge of a customer that had
 * just left onboarding from a pool that never held it (C-MD2's baselines
 * jumped on its 90th day: RESOLVED on 11-26 instead of 11-24). */
static void pools_of(struct pp_model *m, const struct customer *c, uint32_t w, int32_t day,
                     struct pool *own_band, struct pool *mature)
{
    int p = c->product, band = c->band;
    memset(own_band, 0, sizeof(*own_band));
    memset(mature, 0, sizeof(*mature));
    if (p < 0 || band < 0) {
        return;
    }
    pool_add(m, own_band, p, band, w, day);
    pool_add(m, mature, p, 1, w, day);
    pool_add(m, mature, p, 2, w, day);
    struct wsum own;
    own_since(m, c, w, day, c->band_since, &own);
    pool_less(own_band, &own);
    if (band >= 1) {
        own_since(m, c, w, day, c->mature_since, &own);
        pool_less(mature, &own);
    }
}

/* Weighted tickets per 100 active seats per 30 d: the customer's own band
 * when it has enough customers, else the product's mature bands pooled (x1.5
 * for onboarding), else the configured fallback (x1.5 for onboarding). */
static double base_rate(struct pp_model *m, const struct customer *c, uint32_t w, int32_t day,
                        int *level)
{
    const struct pp_model_conf *cf = &m->conf;
    double mult = c->band == 0 ? cf->onboarding_factor : 1.0;
    struct pool ob, mat;
    pools_of(m, c, w, day, &ob, &mat);
    if (ob.customers >= cf->cohort_min_customers && ob.active > 0.0) {
        *level = 1;
        return ob.wt / ob.active * 3000.0;
    }
    if (mat.customers >= cf->cohort_min_customers && mat.active > 0.0) {
        *level = 2;
        return mat.wt / mat.active * 3000.0 * mult;
    }
    *level = 3;
    return cf->support_rate_fallback * mult;
}

/* p0 (which = 0) or c0 (which = 1): same tiers as base_rate, no multiplier. */
static double cohort_prior(struct pp_model *m, const struct customer *c, uint32_t w, int32_t day,
                           int which)
{
    const struct pp_model_conf *cf = &m->conf;
    struct pool ob, mat;
    pools_of(m, c, w, day, &ob, &mat);
    const struct pool *tiers[2] = {&ob, &mat};
    for (int i = 0; i < 2; i++) {
        const struct pool *pl = tiers[i];
        double num = which == 0 ? pl->esc : pl->pos;
        double den = which == 0 ? pl->opened : pl->resp;
        if (pl->customers >= cf->cohort_min_customers && den > 0.0) {
            return num / den;
        }
    }
    return which == 0 ? cf->esc_prior : cf->csat_prior;
}

/* ---- evaluation: step 3, partner push signals ----------------------------- */

static int cmp_ledger(const void *a, const void *b)
{
    const struct ledger_deal *x = a, *y = b;
    if (x->close != y->close) {
        return x->close < y->close ? -1 : 1;
    }
    return x->deal < y->deal ? -1 : (x->deal > y->deal ? 1 : 0);
}

static int cmp_rev(const void *a, const void *b)
{
    const struct reversal *x = a, *y = b;
    if (x->day != y->day) {
        return x->day < y->day ? -1 : 1;
    }
    if (x->deal != y->deal) {
        return x->deal < y->deal ? -1 : 1;
    }
    /* NAN (whole deal) sorts last; equal amounts are interchangeable */
    if (isnan(x->acv) || isnan(y->acv)) {
        return isnan(x->acv) - isnan(y->acv);
    }
    return x->acv < y->acv ? -1 : (x->acv > y->acv ? 1 : 0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

static void partner_prune(struct pp_model *m, struct partner *p, int32_t day)
{
    int32_t keep_from = day - (int32_t)m->conf.push_long_days;
    uint32_t n = 0;
    for (uint32_t i = 0; i < p->n_ledger; i++) {
        if (p->ledger[i].close >= keep_from) {
            p->ledger[n++] = p->ledger[i];
        }
    }
    p->n_ledger = n;
    int32_t rev_from = keep_from - (int32_t)m->conf.rev_horizon_days;
    n = 0;
    for (uint32_t i = 0; i < p->n_rev; i++) {
        if (p->rev[i].day >= rev_from) {
            p->rev[n++] = p->rev[i];
        }
    }
    p->n_rev = n;
    if (p->dirty) {
        sort_n(p->ledger, p->n_ledger, sizeof(*p->ledger), cmp_ledger);
        sort_n(p->rev, p->n_rev, sizeof(*p->rev), cmp_rev);
        p->dirty = false;
    }
}

static bool in_year(const struct pp_model *m, const struct ledger_deal *ld, int32_t day)
{
    return ld->known <= day && ld->close > day - (int32_t)m->conf.push_long_days;
}

static uint32_t disc_bin(float d)
{
    double x = d < 0.0f ? 0.0 : (d > 1.0f ? 1.0 : (double)d);
    return (uint32_t)lround(x * (DISC_BINS - 1));
}

/* Median of (all - own) from the two histograms; NAN when empty. */
static double hist_median(const uint32_t *all, const uint32_t *own, uint32_t n)
{
    if (n == 0) {
        return NAN;
    }
    uint32_t lo_rank = (n - 1) / 2, hi_rank = n / 2, seen = 0;
    double lo = NAN, hi = NAN;
    for (uint32_t b = 0; b < DISC_BINS; b++) {
        uint32_t k = all[b] - own[b];
        if (k == 0) {
            continue;
        }
        if (isnan(lo) && seen + k > lo_rank) {
            lo = (double)b / (DISC_BINS - 1);
        }
        if (seen + k > hi_rank) {
            hi = (double)b / (DISC_BINS - 1);
            break;
        }
        seen += k;
    }
    return (lo + hi) / 2.0;
}

static double *scratch_doubles(struct pp_model *m, uint32_t n);

static void partner_push(struct pp_model *m, struct partner *p, int32_t day)
{
    const struct pp_model_conf *cf = &m->conf;
    int32_t from180 = day - (int32_t)cf->push_short_days;
    int32_t lastq = pp_quarter_of(day) - 1;
    uint32_t n365 = 0, nd = 0, quarters = 0, nq = 0, n180 = 0, n_qe = 0, n_nonqe = 0;
    int32_t prev_q = INT32_MIN;
    double acv365 = 0, qe365 = 0, acv_q = 0, qe_q = 0;
    double d180_w = 0, d180_acv = 0, d180_sum = 0, qe_sum = 0, nonqe_sum = 0;
    double *nonqe = scratch_doubles(m, p->n_ledger);
    for (uint32_t i = 0; i < p->n_ledger; i++) {
        const struct ledger_deal *ld = &p->ledger[i];
        if (!in_year(m, ld, day)) {
            continue;
        }
        n365++;
        acv365 += ld->acv;
        qe365 += ld->qe ? ld->acv : 0.0;
        if (ld->quarter != prev_q) {
            quarters++;
            prev_q = ld->quarter;
        }
        if (ld->quarter == lastq) {
            nq++;
            acv_q += ld->acv;
            qe_q += ld->qe ? ld->acv : 0.0;
        }
        if (isnan(ld->discount)) {
            continue;
        }
        nd++;
        m->hist_own[disc_bin(ld->discount)]++;
        if (ld->qe) {
            qe_sum += ld->discount;
            n_qe++;
        }
        else {
            nonqe_sum += ld->discount;
            nonqe[n_nonqe++] = ld->discount;
        }
        if (ld->close > from180) {
            d180_w += ld->acv * ld->discount;
            d180_acv += ld->acv;
            d180_sum += ld->discount;
            n180++;
        }
    }
    /* Peers: every other partner's deals of the last 365 days. */
    uint32_t peer_disc = m->all_disc_deals - nd;
    double peer_median = peer_disc >= cf->peer_min_deals
                             ? hist_median(m->hist_all, m->hist_own, peer_disc)
                             : cf->peer_discount_fallback;
    for (uint32_t i = 0; i < p->n_ledger; i++) {
        const struct ledger_deal *ld = &p->ledger[i];
        if (in_year(m, ld, day) && !isnan(ld->discount)) {
            m->hist_own[disc_bin(ld->discount)]--;
        }
    }
    double peer_acv = m->all_acv - acv365;
    double baseline =
        (cf->qe_baseline_from_peers && m->all_deals - n365 >= cf->peer_min_deals && peer_acv > 0.0)
            ? (m->all_qe_acv - qe365) / peer_acv
            : cf->qe_share_fallback;
    p->qe_baseline = baseline;
    p->peer_median = peer_median;
    p->qe_share = acv365 > 0.0 ? qe365 / acv365 : NAN;

    /* S4 QEC */
    if (n365 >= cf->qec_min_deals && quarters >= cf->qec_min_quarters) {
        p->qec = pp_sig_qec_share(cf, qe365, acv365, baseline);
        if (p->qec.present && nq >= cf->qec_q_min_deals && acv_q > 0.0) {
            double rq =
                cf->qec_q_factor * pp_ramp(qe_q / acv_q - baseline, cf->qec_good, cf->qec_bad);
            if (rq > p->qec.risk) {
                p->qec.risk = rq;
            }
        }
    }
    else {
        p->qec = (struct pp_sig){false, 0.0, 0.0};
    }

    /* S5 DISC */
    p->d180 = d180_acv > 0.0 ? d180_w / d180_acv : (n180 ? d180_sum / n180 : NAN);
    p->has_dqe = n_qe >= cf->disc_qe_min_deals && n_nonqe >= cf->disc_qe_min_deals;
    p->dqe = p->has_dqe ? qe_sum / n_qe - nonqe_sum / n_nonqe : NAN;
    p->disc = pp_sig_disc(cf, n180 > 0, p->d180, peer_median, p->has_dqe, p->dqe);
    if (n_nonqe >= cf->qedeal_min_nonqe) {
        sort_n(nonqe, n_nonqe, sizeof(double), cmp_double);
        p->ref_disc = (nonqe[(n_nonqe - 1) / 2] + nonqe[n_nonqe / 2]) / 2.0;
    }
    else {
        p->ref_disc = peer_median;
    }

    /* S9 REV: deals closed in [t-365, t-30], reversals within 180 d of close */
    int32_t lo = day - (int32_t)cf->push_long_days, hi = day - (int32_t)cf->rev_lag_days;
    uint32_t nrev = 0;
    double closed = 0.0, reversed = 0.0;
    for (uint32_t i = 0; i < p->n_ledger; i++) {
        const struct ledger_deal *ld = &p->ledger[i];
        if (ld->known <= day && ld->close >= lo && ld->close <= hi) {
            nrev++;
            closed += ld->acv;
        }
    }
    for (uint32_t r = 0; r < p->n_rev; r++) {
        const struct reversal *rv = &p->rev[r];
        if (rv->day > day) {
            break; /* sorted by day */
        }
        for (uint32_t i = 0; i < p->n_ledger; i++) {
            const struct ledger_deal *ld = &p->ledger[i];
            if (ld->deal == rv->deal && ld->known <= day && ld->close >= lo && ld->close <= hi &&
                rv->day >= ld->close && rv->day - ld->close <= (int32_t)cf->rev_horizon_days) {
                reversed += isnan(rv->acv) ? ld->acv : rv->acv;
                break;
            }
        }
    }
    bool feed = m->first_reversal_day != NO_DAY && m->first_reversal_day <= day;
    p->rev_sig = pp_sig_rev(cf, feed, nrev, reversed, closed);
    p->rev_value = closed > 0.0 ? reversed / closed : NAN;

    /* reset the day's roll-up */
    p->oversell_o = p->oversell_seats = 0.0;
    p->oversell_deals = 0;
    memset(&p->roll, 0, sizeof(p->roll));
    p->roll.children_first_seen = NO_DAY;
    p->cpi_wsum = p->health_wsum = p->health_acv = p->red_acv = p->yellow_acv = 0.0;
    p->touched = 0;
    p->n_children = 0;
}

static void partners_global(struct pp_model *m, int32_t day)
{
    memset(m->hist_all, 0, DISC_BINS * sizeof(uint32_t));
    m->all_acv = m->all_qe_acv = 0.0;
    m->all_deals = m->all_disc_deals = 0;
    for (uint32_t k = 0; k < m->psorted_n; k++) {
        struct partner *p = &m->partners[m->psorted[k]];
        partner_prune(m, p, day);
        for (uint32_t i = 0; i < p->n_ledger; i++) {
            const struct ledger_deal *ld = &p->ledger[i];
            if (!in_year(m, ld, day)) {
                continue;
            }
            m->all_deals++;
            m->all_acv += ld->acv;
            m->all_qe_acv += ld->qe ? ld->acv : 0.0;
            if (!isnan(ld->discount)) {
                m->all_disc_deals++;
                m->hist_all[disc_bin(ld->discount)]++;
            }
        }
    }
}

static double *scratch_doubles(struct pp_model *m, uint32_t n)
{
    if (n > m->scratch_cap) {
        m->scratch_cap = n < 64 ? 64 : n;
        m->scratch = pp_xrealloc(m->scratch, m->scratch_cap * sizeof(double));
    }
    return m->scratch;
}

/* ---- evaluation: step 4, customers and their partner links ---------------- */

/* Customer-level facts, computed once per customer and day. Mode 0 is
 * short, 1 is long. */
struct cust_eval {
    struct spans sp;
    struct pp_sig shelf[2], load[2], esc[2], csat[2];
    double util[2], exp_util[2], base[2], p0[2], c0[2], mean_active[2], tickets_w[2];
    int base_level[2];
    double entitled, total_acv;
    bool has_seats;
};

struct pxc_eval {
    const struct cust_eval *ce;
    struct pp_sig gap[2], oversell, oversize;
    double r_qedeal, qedeal_disc;
    int32_t qedeal_close;
    double s365, s180, partner_acv;
    struct pp_family_in fam[2][PP_FAM__COUNT];
    double h[2], a, cpi[2];
    int health;
    int dominant; /* enum pp_family, or -1: push */
    bool touched, any_visible;
};

static void customer_facts(struct pp_model *m, const struct customer *c, int32_t day,
                           struct cust_eval *ce)
{
    const struct pp_model_conf *cf = &m->conf;
    memset(ce, 0, sizeof(*ce));
    tranche_spans(m, c, day, &ce->sp);
    double aged = 0.0;
    for (uint32_t i = 0; i < c->n_tr; i++) {
        const struct tranche *t = &c->tr[i];
        if (!ce->sp.visible[i]) {
            continue;
        }
        if (contract_active(t, day)) {
            ce->total_acv += t->acv;
        }
        if (ce->sp.counts[i] && active_on(&ce->sp, i, day)) {
            int32_t seats = seats_on(t, day);
            ce->has_seats = true;
            ce->entitled += seats;
            if (day - ce->sp.start[i] >= (int32_t)cf->shelf_aged_days) {
                aged += seats;
            }
        }
    }
    int32_t snap_age = c->last_snap_day != NO_DAY ? day - c->last_snap_day : -1;
    const uint32_t wa[2] = {m->w_adopt_s, m->w_adopt_l};
    const uint32_t wl[2] = {m->w_load_s, m->w_load_l};
    const uint32_t wr[2] = {m->w_ratio_s, m->w_ratio_l};
    for (int k = 0; k < 2; k++) {
        /* Expected and actual seat-days over the same days: those since the
         * first snapshot, so a customer whose usage feed starts mid-window is
         * not compared with days it could not report. */
        int32_t from = day - (int32_t)m->win[wa[k]] + 1;
        if (c->first_snap_day != NO_DAY && c->first_snap_day > from) {
            from = c->first_snap_day;
        }
        double exp = 0.0, ent = 0.0;
        for (uint32_t i = 0; i < c->n_tr; i++) {
            if (ce->sp.counts[i]) {
                exp += tranche_seatdays(m, &c->tr[i], &ce->sp, i, from, day, true);
                ent += tranche_seatdays(m, &c->tr[i], &ce->sp, i, from, day, false);
            }
        }
        double act = (double)c->sums[wa[k]].active;
        ce->shelf[k] = pp_sig_shelf(cf, exp, act, ce->entitled, aged, snap_age);
        ce->util[k] = ent > 0.0 ? act / ent : NAN;
        ce->exp_util[k] = ent > 0.0 ? exp / ent : NAN;

        uint32_t wdays = m->win[wl[k]];
        if (c->first_snap_day != NO_DAY && day - c->first_snap_day + 1 < (int32_t)wdays) {
            wdays = (uint32_t)(day - c->first_snap_day + 1); /* same reason */
        }
        ce->mean_active[k] = (double)c->sums[wl[k]].active / wdays;
        ce->tickets_w[k] = c->sums[wl[k]].wt;
        ce->base[k] = base_rate(m, c, wl[k], day, &ce->base_level[k]);
        if (ce->has_seats) {
            ce->load[k] = pp_sig_load(cf, ce->tickets_w[k], ce->mean_active[k], ce->base[k], wdays);
        }
        ce->p0[k] = cohort_prior(m, c, wr[k], day, 0);
        ce->c0[k] = cohort_prior(m, c, wr[k], day, 1);
        ce->esc[k] = pp_sig_esc(cf, c->sums[wr[k]].esc, c->sums[wr[k]].opened, ce->p0[k]);
        ce->csat[k] = pp_sig_csat(cf, c->sums[wr[k]].pos, c->sums[wr[k]].resp, ce->c0[k]);
    }
}

static double risk_or0(const struct pp_sig *s)
{
    return s->present ? s->risk : 0.0;
}

static void pxc_facts(struct pp_model *m, const struct customer *c, const struct link *l,
                      int32_t day, const struct cust_eval *ce, struct pxc_eval *pe)
{
    const struct pp_model_conf *cf = &m->conf;
    struct partner *p = &m->partners[l->partner];
    memset(pe, 0, sizeof(*pe));
    pe->ce = ce;
    pe->qedeal_close = NO_DAY;
    pe->qedeal_disc = NAN;
    int32_t from180 = day - (int32_t)cf->push_short_days;
    int32_t from365 = day - (int32_t)cf->push_long_days;
    double s365 = 0.0, acv180 = 0.0, o = 0.0, oseats = 0.0;
    uint32_t odeals = 0;
    const uint32_t wa[2] = {m->w_adopt_s, m->w_adopt_l};
    for (uint32_t i = 0; i < c->n_tr; i++) {
        const struct tranche *t = &c->tr[i];
        if (!ce->sp.visible[i] || t->partner != l->partner) {
            continue;
        }
        pe->any_visible = true;
        bool active = active_on(&ce->sp, i, day);
        if (t->close > from365) {
            pe->touched = true;
        }
        if (contract_active(t, day)) {
            pe->partner_acv += t->acv;
            if (t->close > from180) {
                acv180 += t->acv;
            }
        }
        if (active && t->close > from365 && t->kind != TR_COMMIT) {
            s365 += seats_on(t, day);
        }
        if (t->kind == TR_ADDON && t->close > from180 && t->u_pre >= 0.0f) {
            o += t->seats * pp_sig_oversell_factor(cf, t->u_pre);
            oseats += t->seats;
            odeals++;
        }
        if (t->close > from180 && !isnan(t->discount)) {
            double q = pp_sig_qedeal(cf, t->qe, t->discount, p->ref_disc);
            if (pe->qedeal_close == NO_DAY || q > pe->r_qedeal) {
                pe->r_qedeal = q;
                pe->qedeal_disc = t->discount;
                pe->qedeal_close = t->close;
            }
        }
        if (t->kind == TR_COMMIT && active) {
            struct pp_sig ov = pp_sig_oversize(cf, t->commit_k, ce->sp.end[i] - t->start, t->b0);
            if (ov.present && (!pe->oversize.present || ov.risk > pe->oversize.risk)) {
                pe->oversize = ov;
            }
            if (!isnan(t->commit_base)) {
                double cum = c->cons_cum - t->commit_base;
                for (int k = 0; k < 2; k++) {
                    double rr = c->sums[wa[k]].cons / (double)m->win[wa[k]];
                    struct pp_sig g =
                        pp_sig_commit_gap(cf, t->commit_k, cum, rr, t->start, ce->sp.end[i], day);
                    if (g.present && (!pe->gap[k].present || g.risk > pe->gap[k].risk)) {
                        pe->gap[k] = g;
                    }
                }
            }
        }
    }
    pe->s365 = ce->entitled > 0.0 ? s365 / ce->entitled : 0.0;
    pe->s180 = ce->total_acv > 0.0 ? acv180 / ce->total_acv : 0.0;
    pe->oversell = pp_sig_oversell(cf, o, oseats, odeals);
    p->oversell_o += o;
    p->oversell_seats += oseats;
    p->oversell_deals += odeals;

    double best = -1.0;
    pe->dominant = -1;
    for (int k = 0; k < 2; k++) {
        struct pp_family_in *f = pe->fam[k];
        f[PP_FAM_ADOPT].present = ce->shelf[k].present;
        f[PP_FAM_ADOPT].harm = ce->shelf[k].risk;
        double xa = pp_exposure(cf, pe->s365);
        if (pe->oversell.present && pe->oversell.risk > xa) {
            xa = pe->oversell.risk;
        }
        f[PP_FAM_ADOPT].exposure = xa;
        f[PP_FAM_COMMIT].present = pe->gap[k].present;
        f[PP_FAM_COMMIT].harm = pe->gap[k].risk;
        f[PP_FAM_COMMIT].exposure = 1.0;
        f[PP_FAM_SUPPORT].harm =
            pp_support_harm(&ce->load[k], &ce->esc[k], &ce->csat[k], &f[PP_FAM_SUPPORT].present);
        f[PP_FAM_SUPPORT].exposure = pp_exposure(cf, pe->s180);
        pe->h[k] = pp_harm(f);
        if (k == 0) {
            for (int x = 0; x < PP_FAM__COUNT; x++) {
                double cx = f[x].present ? f[x].harm * f[x].exposure : 0.0;
                if (cx > best && cx > 0.0) {
                    best = cx;
                    pe->dominant = x;
                }
            }
        }
    }
    pe->a = pp_aggression(pe->r_qedeal, risk_or0(&pe->oversize), risk_or0(&p->qec),
                          risk_or0(&p->disc), risk_or0(&p->rev_sig));
    for (int k = 0; k < 2; k++) {
        pe->cpi[k] = pp_cpi(cf, pe->h[k], pe->a);
    }
    struct pp_sig sig[PP_W__COUNT];
    sig[PP_W_SHELF] = ce->shelf[1];
    sig[PP_W_COMMIT_GAP] = pe->gap[1];
    sig[PP_W_LOAD] = ce->load[1];
    sig[PP_W_CSAT] = ce->csat[1];
    sig[PP_W_ESC] = ce->esc[1];
    sig[PP_W_OVERSELL] = pe->oversell;
    sig[PP_W_QEC] = p->qec;
    sig[PP_W_DISC] = p->disc;
    sig[PP_W_REV] = p->rev_sig;
    pe->health = pp_health(cf, sig);
}

/* ---- alert records ---------------------------------------------------------- */

enum { RULE_CUSTOMER = 0, RULE_PARTNER, RULE_STUFFING };
static const char *const rule_ids[3] = {"CUSTOMER_PRESSURE", "PARTNER_PRESSURE",
                                        "STUFFING_PATTERN"};
static const char *const scope_tags[3] = {"PXC", "PARTNER", "STUFFING"};

struct runbook {
    const char *id;
    const char *fmt; /* %s = partner id */
};

static const struct runbook runbooks[4] = {
    {"RB-ADOPT-01", "Adoption plan with %s's customers: stop add-on approvals until utilisation "
                    "recovers; seat reallocation or true-down at renewal."},
    {"RB-COMMIT-01", "Consumption plan and ramp re-shape for the commitment sold by %s; check its "
                     "sizing against trailing burn before approving more."},
    {"RB-SUPPORT-02", "Support pain after %s's go-live: partner delivery-quality review (certified "
                      "staff on the project?), joint remediation plan, vendor TAM engagement."},
    {"RB-STUFF-01", "Deal-desk review of %s's quarter-end deals and discounts; check return and "
                    "side-letter terms; claw-back gates on incentives; require activation evidence "
                    "before paying them."},
};

static void set_runbook(struct pp_alert *a, int dominant, const char *partner)
{
    int idx = dominant >= 0 && dominant < PP_FAM__COUNT ? dominant : 3;
    snprintf(a->runbook_id, sizeof(a->runbook_id), "%s", runbooks[idx].id);
    snprintf(a->runbook_hint, sizeof(a->runbook_hint), runbooks[idx].fmt, partner);
    snprintf(a->dominant, sizeof(a->dominant), "%s",
             idx < PP_FAM__COUNT ? pp_family_name((enum pp_family)idx) : "PUSH");
}

static void alert_init(struct pp_model *m, struct pp_alert *a, int rule, uint32_t pi, int64_t ci,
                       const struct pp_rule_state *st, int32_t day, enum pp_rule_tr tr)
{
    memset(a, 0, sizeof(*a));
    const char *pid = pp_idmap_key(m->partner_ids, pi);
    const char *cid = ci >= 0 ? pp_idmap_key(m->customer_ids, (uint32_t)ci) : "*";
    char first[16];
    pp_day_format(st->first_seen, first, sizeof(first));
    snprintf(a->dedup_key, sizeof(a->dedup_key), "cpi:v1:%s:%s:%s:%s", m->conf.tenant,
             scope_tags[rule], pid, cid);
    snprintf(a->alert_id, sizeof(a->alert_id), "%s:%s", a->dedup_key, first);
    snprintf(a->rule_id, sizeof(a->rule_id), "%s", rule_ids[rule]);
    snprintf(a->tenant, sizeof(a->tenant), "%s", m->conf.tenant);
    snprintf(a->partner_id, sizeof(a->partner_id), "%s", pid);
    if (ci >= 0) {
        snprintf(a->customer_id, sizeof(a->customer_id), "%s", cid);
    }
    a->scope = rule == RULE_CUSTOMER ? PP_SCOPE_PXC : PP_SCOPE_PARTNER;
    a->status = tr == PP_TR_RESOLVED ? PP_ALERT_RESOLVED : PP_ALERT_FIRING;
    a->severity = (enum pp_severity)st->severity;
    a->first_seen_day = st->first_seen;
    a->fired_day = st->fired_day;
    a->eval_day = day;
    a->last_changed_day = st->changed_day;
    a->reopen_count = st->reopen_count;
    a->n_history = st->hist_n;
    for (uint32_t i = 0; i < st->hist_n && i < PP_ALERT_MAX_HISTORY; i++) {
        a->history[i].day = st->hist_day[i];
        a->history[i].severity = st->hist_sev[i];
    }
    a->cpi_short = a->cpi_long = a->h_short = a->h_long = a->aggression = NAN;
    a->cpi_partner = a->touched_acv = a->affected_acv_share = NAN;
    a->health = -1;
    for (int f = 0; f < PP_ALERT_FAM__COUNT; f++) {
        a->families[f].present = 0;
        a->families[f].harm = NAN;
        a->families[f].exposure = NAN;
    }
}

struct cand {
    struct pp_alert_signal s;
    int harm;
};

static int cmp_cand(const void *x, const void *y)
{
    const struct cand *a = x, *b = y;
    if (a->harm != b->harm) {
        return b->harm - a->harm;
    }
    if (a->s.contribution != b->s.contribution) {
        return a->s.contribution > b->s.contribution ? -1 : 1;
    }
    return strcmp(a->s.name, b->s.name);
}

static void cand_add(struct cand *c, uint32_t *n, const char *name, int harm, double value,
                     double risk, double good, double bad, double baseline, double contribution)
{
    if (!(risk > 0.0) || *n >= 12) {
        return;
    }
    struct cand *x = &c[(*n)++];
    memset(x, 0, sizeof(*x));
    snprintf(x->s.name, sizeof(x->s.name), "%s", name);
    x->s.value = value;
    x->s.risk = risk;
    x->s.warn_at = pp_ramp_inverse(0.5, good, bad);
    x->s.crit_at = pp_ramp_inverse(0.85, good, bad);
    x->s.baseline = baseline;
    x->s.contribution = contribution;
    x->harm = harm;
}

static void cand_finish(struct pp_alert *a, struct cand *c, uint32_t n)
{
    sort_n(c, n, sizeof(*c), cmp_cand);
    a->n_signals = n < PP_ALERT_MAX_SIGNALS ? n : PP_ALERT_MAX_SIGNALS;
    for (uint32_t i = 0; i < a->n_signals; i++) {
        a->signals[i] = c[i].s;
    }
}

static void push_candidates(const struct pp_model *m, const struct partner *p, struct cand *c,
                            uint32_t *n)
{
    const struct pp_model_conf *cf = &m->conf;
    if (p->qec.present) {
        cand_add(c, n, "QEC", 0, p->qec.value, p->qec.risk, p->qe_baseline + cf->qec_good,
                 p->qe_baseline + cf->qec_bad, p->qe_baseline, p->qec.risk);
    }
    if (p->disc.present) {
        cand_add(c, n, "DISC", 0, p->disc.value, p->disc.risk, cf->disc_good, cf->disc_bad,
                 p->peer_median, p->disc.risk);
    }
    if (p->rev_sig.present) {
        cand_add(c, n, "REV", 0, p->rev_sig.value, p->rev_sig.risk, cf->rev_good, cf->rev_bad, NAN,
                 p->rev_sig.risk);
    }
}

static struct pending_alert *pend_new(struct pp_model *m, int rule, uint32_t pi)
{
    if (m->n_pend == m->cap_pend) {
        m->cap_pend = m->cap_pend ? m->cap_pend * 2 : 8;
        m->pend = pp_xrealloc(m->pend, m->cap_pend * sizeof(*m->pend));
    }
    struct pending_alert *pa = &m->pend[m->n_pend++];
    pa->rule = rule;
    pa->partner = (int32_t)pi;
    return pa;
}

static const char *tr_words(enum pp_rule_tr tr)
{
    switch (tr) {
    case PP_TR_FIRED:
        return "fires";
    case PP_TR_ESCALATED:
        return "escalates to CRITICAL";
    case PP_TR_DEESCALATED:
        return "de-escalates to WARNING";
    case PP_TR_RESOLVED:
        return "resolves";
    case PP_TR_NONE:
        break;
    }
    return "";
}

static void customer_alert(struct pp_model *m, uint32_t ci, const struct link *l,
                           const struct pxc_eval *pe, int32_t day, enum pp_rule_tr tr)
{
    const struct pp_model_conf *cf = &m->conf;
    const struct cust_eval *ce = pe->ce;
    const struct partner *p = &m->partners[l->partner];
    struct pending_alert *pa = pend_new(m, RULE_CUSTOMER, (uint32_t)l->partner);
    struct pp_alert *a = &pa->alert;
    alert_init(m, a, RULE_CUSTOMER, (uint32_t)l->partner, ci, &l->rule, day, tr);
    a->cpi_short = pe->cpi[0];
    a->cpi_long = pe->cpi[1];
    a->h_short = pe->h[0];
    a->h_long = pe->h[1];
    a->aggression = pe->a;
    a->health = pe->health;
    for (int f = 0; f < PP_FAM__COUNT; f++) {
        if (pe->fam[0][f].present) {
            a->families[f].present = 1;
            a->families[f].harm = pe->fam[0][f].harm;
            a->families[f].exposure = pe->fam[0][f].exposure;
        }
    }
    double lo = pe->cpi[0] < pe->cpi[1] ? pe->cpi[0] : pe->cpi[1];
    a->value = lo;
    a->threshold = a->severity == PP_SEV_CRITICAL ? cf->cp_crit : cf->cp_enter;
    a->window_days = (int32_t)cf->ratio_long_days;

    struct cand c[12];
    uint32_t n = 0;
    double xa = pe->fam[0][PP_FAM_ADOPT].exposure, xs = pe->fam[0][PP_FAM_SUPPORT].exposure;
    if (ce->shelf[0].present) {
        cand_add(c, &n, "SHELF", 1, ce->shelf[0].value, ce->shelf[0].risk, cf->shelf_good,
                 cf->shelf_bad, ce->exp_util[0], ce->shelf[0].risk * xa);
    }
    if (pe->gap[0].present) {
        cand_add(c, &n, "COMMIT_GAP", 1, pe->gap[0].value, pe->gap[0].risk, cf->gap_good,
                 cf->gap_bad, NAN, pe->gap[0].risk);
    }
    if (ce->load[0].present) {
        cand_add(c, &n, "LOAD", 1, ce->load[0].value, ce->load[0].risk, cf->load_good, cf->load_bad,
                 ce->base[0], xs * 15.0 * ce->load[0].risk / 35.0);
    }
    double tau = pp_sig_esc_tau(cf, ce->p0[0]);
    cand_add(c, &n, "ESC", 1, ce->esc[0].value, ce->esc[0].risk, tau, tau + cf->esc_span, ce->p0[0],
             xs * 10.0 * ce->esc[0].risk / 35.0);
    tau = pp_sig_csat_tau(cf, ce->c0[0]);
    cand_add(c, &n, "CSAT", 1, ce->csat[0].value, ce->csat[0].risk, tau, tau - cf->csat_span,
             ce->c0[0], xs * 10.0 * ce->csat[0].risk / 35.0);
    if (pe->oversell.present) {
        cand_add(c, &n, "OVERSELL", 0, pe->oversell.value, pe->oversell.risk, cf->oversell_good,
                 cf->oversell_bad, NAN, pe->oversell.risk);
    }
    cand_add(c, &n, "QEDEAL", 0, pe->qedeal_disc, pe->r_qedeal, p->ref_disc + cf->qedeal_good,
             p->ref_disc + cf->qedeal_bad, p->ref_disc, pe->r_qedeal);
    if (pe->oversize.present) {
        cand_add(c, &n, "OVERSIZE", 0, pe->oversize.value, pe->oversize.risk, cf->oversize_good,
                 cf->oversize_bad, NAN, pe->oversize.risk);
    }
    push_candidates(m, p, c, &n);
    cand_finish(a, c, n);
    set_runbook(a, pe->dominant, a->partner_id);
    snprintf(a->summary, sizeof(a->summary),
             "CUSTOMER_PRESSURE for %s at %s %s: CPI short %.1f / long %.1f (harm %.2f / %.2f, "
             "aggression %.2f), dominant %s",
             a->customer_id, a->partner_id, tr_words(tr), pe->cpi[0], pe->cpi[1], pe->h[0],
             pe->h[1], pe->a, a->dominant);
}

static int cmp_child(const void *x, const void *y)
{
    const struct child *a = x, *b = y;
    if (a->severity != b->severity) {
        return b->severity - a->severity;
    }
    if (a->cpi_s != b->cpi_s) {
        return a->cpi_s > b->cpi_s ? -1 : 1;
    }
    return strcmp(a->id, b->id);
}

static void partner_alert(struct pp_model *m, uint32_t pi, int rule, int32_t day,
                          enum pp_rule_tr tr)
{
    const struct pp_model_conf *cf = &m->conf;
    struct partner *p = &m->partners[pi];
    const struct pp_rule_state *st = rule == RULE_PARTNER ? &p->pp_rule : &p->st_rule;
    struct pending_alert *pa = pend_new(m, rule, pi);
    struct pp_alert *a = &pa->alert;
    alert_init(m, a, rule, pi, -1, st, day, tr);
    a->cpi_partner = p->cpi;
    a->health = p->health;
    a->touched_acv = p->roll.touched_acv;
    a->affected_acv_share =
        p->roll.touched_acv > 0.0 ? p->roll.firing_acv / p->roll.touched_acv : 0.0;
    a->customers_firing = p->roll.firing;
    a->customers_critical = p->roll.critical;
    sort_n(p->children, p->n_children, sizeof(*p->children), cmp_child);
    int fam_votes[PP_FAM__COUNT] = {0};
    for (uint32_t i = 0; i < p->n_children; i++) {
        const struct child *ch = &p->children[i];
        const struct link *l = &m->customers[ch->customer].links[ch->link];
        if (ch->dominant >= 0) {
            fam_votes[ch->dominant]++;
        }
        if (i >= PP_ALERT_MAX_CUSTOMERS) {
            continue;
        }
        struct pp_alert_customer *ac = &a->customers[a->n_customers++];
        snprintf(ac->customer_id, sizeof(ac->customer_id), "%s", ch->id);
        ac->severity = ch->severity;
        ac->cpi_short = l->cpi_s;
        ac->cpi_long = l->cpi_l;
        ac->health = l->health;
        ac->partner_acv = l->partner_acv;
    }
    struct cand c[12];
    uint32_t n = 0;
    push_candidates(m, p, c, &n);
    if (p->oversell.present) {
        cand_add(c, &n, "OVERSELL", 0, p->oversell.value, p->oversell.risk, cf->oversell_good,
                 cf->oversell_bad, NAN, p->oversell.risk);
    }
    cand_finish(a, c, n);
    int dominant = -1;
    bool push = (p->qec.present && p->qec.risk >= cf->warn_risk) ||
                (p->disc.present && p->disc.risk >= cf->warn_risk) ||
                (p->rev_sig.present && p->rev_sig.risk >= cf->warn_risk);
    if (rule == RULE_PARTNER && !push) {
        int best = 0;
        for (int f = 0; f < PP_FAM__COUNT; f++) {
            if (fam_votes[f] > best) {
                best = fam_votes[f];
                dominant = f;
            }
        }
    }
    set_runbook(a, dominant, a->partner_id);
    if (rule == RULE_PARTNER) {
        a->value = a->affected_acv_share;
        a->threshold = a->severity == PP_SEV_CRITICAL ? cf->pp_crit_share : cf->pp_min_share;
        a->window_days = (int32_t)cf->push_long_days;
        snprintf(a->summary, sizeof(a->summary),
                 "PARTNER_PRESSURE for %s %s: %u customers firing (%u critical) holding %.0f%% of "
                 "touched ACV; partner CPI %.1f",
                 a->partner_id, tr_words(tr), p->roll.firing, p->roll.critical,
                 100.0 * a->affected_acv_share, p->cpi);
    }
    else {
        a->value = p->qec.present ? p->qec.risk : 0.0;
        a->threshold = cf->warn_risk;
        a->window_days = (int32_t)cf->push_long_days;
        snprintf(a->summary, sizeof(a->summary),
                 "STUFFING_PATTERN for %s %s: quarter-end share %.0f%% (baseline %.0f%%, risk "
                 "%.2f), discount risk %.2f, reversal risk %.2f, oversell risk %.2f",
                 a->partner_id, tr_words(tr), 100.0 * (isnan(p->qe_share) ? 0.0 : p->qe_share),
                 100.0 * p->qe_baseline, risk_or0(&p->qec), risk_or0(&p->disc),
                 risk_or0(&p->rev_sig), risk_or0(&p->oversell));
    }
}

/* ---- evaluation: the day ---------------------------------------------------- */

struct keyed {
    const char *key;
    uint32_t idx;
};

static int cmp_keyed(const void *a, const void *b)
{
    return strcmp(((const struct keyed *)a)->key, ((const struct keyed *)b)->key);
}

/* Keeps `sorted` (indexes in id order) up to date with the map: the new ids
 * are sorted and merged in, O(n) per day with newcomers. */
static void sort_ids(const struct pp_idmap *ids, uint32_t **sorted, uint32_t *sorted_n)
{
    uint32_t n = pp_idmap_count(ids);
    if (n == *sorted_n) {
        return;
    }
    uint32_t fresh = n - *sorted_n;
    struct keyed *nk = pp_xmalloc(fresh * sizeof(*nk));
    for (uint32_t i = 0; i < fresh; i++) {
        nk[i].idx = *sorted_n + i;
        nk[i].key = pp_idmap_key(ids, nk[i].idx);
    }
    sort_n(nk, fresh, sizeof(*nk), cmp_keyed);
    uint32_t *out = pp_xmalloc(n * sizeof(uint32_t));
    uint32_t i = 0, j = 0, k = 0;
    while (i < *sorted_n || j < fresh) {
        if (j == fresh ||
            (i < *sorted_n && strcmp(pp_idmap_key(ids, (*sorted)[i]), nk[j].key) < 0)) {
            out[k++] = (*sorted)[i++];
        }
        else {
            out[k++] = nk[j++].idx;
        }
    }
    free(nk);
    free(*sorted);
    *sorted = out;
    *sorted_n = n;
}

static void child_add(struct partner *p, const char *id, uint32_t ci, uint32_t li,
                      const struct link *l, int dominant)
{
    if (p->n_children == p->cap_children) {
        p->cap_children = p->cap_children ? p->cap_children * 2 : 8;
        p->children = pp_xrealloc(p->children, p->cap_children * sizeof(*p->children));
    }
    struct child *ch = &p->children[p->n_children++];
    ch->id = id;
    ch->customer = ci;
    ch->link = li;
    ch->severity = l->rule.severity;
    ch->cpi_s = l->cpi_s;
    ch->dominant = dominant;
}

static void evaluate_customer(struct pp_model *m, uint32_t ci, int32_t day)
{
    const struct pp_model_conf *cf = &m->conf;
    struct customer *c = &m->customers[ci];
    struct cust_eval ce;
    customer_facts(m, c, day, &ce);
    for (uint32_t li = 0; li < c->n_links; li++) {
        struct link *l = &c->links[li];
        struct pxc_eval pe;
        pxc_facts(m, c, l, day, &ce, &pe);
        if (!pe.any_visible) {
            continue;
        }
        l->cpi_s = (float)pe.cpi[0];
        l->cpi_l = (float)pe.cpi[1];
        l->h_s = (float)pe.h[0];
        l->h_l = (float)pe.h[1];
        l->a = (float)pe.a;
        l->health = (int16_t)pe.health;
        l->partner_acv = (float)pe.partner_acv;
        l->touched = pe.touched;
        enum pp_rule_tr tr = pp_rule_customer_step(&l->rule, cf, day, pe.cpi[0], pe.cpi[1]);
        if (tr != PP_TR_NONE) {
            customer_alert(m, ci, l, &pe, day, tr);
            m->stats.alerts[tr == PP_TR_RESOLVED ? PP_ALERT_RESOLVED : PP_ALERT_FIRING]++;
        }
        struct partner *p = &m->partners[l->partner];
        if (pe.touched) {
            p->touched++;
            p->roll.touched_acv += pe.partner_acv;
            p->cpi_wsum += pe.partner_acv * pe.cpi[1];
            if (pe.health >= 0) {
                p->health_wsum += pe.partner_acv * pe.health;
                p->health_acv += pe.partner_acv;
                int band = pp_health_band(cf, pe.health);
                if (band == PP_BAND_RED) {
                    p->red_acv += pe.partner_acv;
                }
                if (band == PP_BAND_RED || band == PP_BAND_YELLOW) {
                    p->yellow_acv += pe.partner_acv;
                }
            }
        }
        if (l->rule.phase == PP_PHASE_FIRING) {
            p->roll.firing++;
            p->roll.firing_acv += pe.partner_acv;
            if (l->rule.severity == PP_SEV_CRITICAL) {
                p->roll.critical++;
                p->roll.critical_acv += pe.partner_acv;
            }
            if (p->roll.children_first_seen == NO_DAY ||
                l->rule.first_seen < p->roll.children_first_seen) {
                p->roll.children_first_seen = l->rule.first_seen;
            }
            child_add(p, pp_idmap_key(m->customer_ids, ci), ci, li, l, pe.dominant);
        }
    }
}

static void evaluate_partner(struct pp_model *m, uint32_t pi, int32_t day)
{
    const struct pp_model_conf *cf = &m->conf;
    struct partner *p = &m->partners[pi];
    p->oversell = pp_sig_oversell(cf, p->oversell_o, p->oversell_seats, p->oversell_deals);
    p->cpi = p->roll.touched_acv > 0.0 ? p->cpi_wsum / p->roll.touched_acv : 0.0;
    p->health = -1;
    if (p->health_acv > 0.0) {
        double h = p->health_wsum / p->health_acv;
        double touched = p->roll.touched_acv;
        if (p->red_acv >= cf->partner_cap_share * touched && h > cf->health_cap_crit) {
            h = cf->health_cap_crit;
        }
        else if (p->yellow_acv >= cf->partner_cap_share * touched && h > cf->health_cap_warn) {
            h = cf->health_cap_warn;
        }
        p->health = (int)floor(h + 0.5);
    }
    double other = 0.0;
    bool other_present = false;
    const struct pp_sig *others[3] = {&p->disc, &p->rev_sig, &p->oversell};
    for (int i = 0; i < 3; i++) {
        if (others[i]->present) {
            other_present = true;
            if (others[i]->risk > other) {
                other = others[i]->risk;
            }
        }
    }
    int cond =
        p->qec.present && p->qec.risk >= cf->warn_risk && other_present && other >= cf->warn_risk;
    enum pp_rule_tr tr = pp_rule_stuffing_step(&p->st_rule, cf, day, cond);
    if (tr != PP_TR_NONE) {
        partner_alert(m, pi, RULE_STUFFING, day, tr);
        m->stats.alerts[tr == PP_TR_RESOLVED ? PP_ALERT_RESOLVED : PP_ALERT_FIRING]++;
    }
    tr = pp_rule_partner_step(&p->pp_rule, cf, day, &p->roll);
    if (tr != PP_TR_NONE) {
        partner_alert(m, pi, RULE_PARTNER, day, tr);
        m->stats.alerts[tr == PP_TR_RESOLVED ? PP_ALERT_RESOLVED : PP_ALERT_FIRING]++;
    }
}

static int cmp_pending(const void *x, const void *y)
{
    const struct pending_alert *a = x, *b = y;
    if (a->rule != b->rule) {
        return a->rule - b->rule;
    }
    int c = strcmp(a->alert.partner_id, b->alert.partner_id);
    return c ? c : strcmp(a->alert.customer_id, b->alert.customer_id);
}

static void emit(struct pp_model *m, pp_alert_cb *cb, void *opaque)
{
    sort_n(m->pend, m->n_pend, sizeof(*m->pend), cmp_pending);
    for (uint32_t i = 0; i < m->n_pend; i++) {
        struct pending_alert *pa = &m->pend[i];
        if (pa->rule == RULE_CUSTOMER) {
            const struct partner *p = &m->partners[pa->partner];
            if (p->pp_rule.phase == PP_PHASE_FIRING) {
                char first[16];
                pp_day_format(p->pp_rule.first_seen, first, sizeof(first));
                snprintf(pa->alert.parent_alert_id, sizeof(pa->alert.parent_alert_id),
                         "cpi:v1:%s:%s:%s:*:%s", m->conf.tenant, scope_tags[RULE_PARTNER],
                         pa->alert.partner_id, first);
            }
        }
        if (cb) {
            cb(&pa->alert, opaque);
        }
    }
    m->n_pend = 0;
}

static void evaluate_day(struct pp_model *m, int32_t day, pp_alert_cb *cb, void *opaque)
{
    sort_ids(m->customer_ids, &m->csorted, &m->csorted_n);
    sort_ids(m->partner_ids, &m->psorted, &m->psorted_n);
    uint32_t np = pp_idmap_count(m->product_ids);
    for (uint32_t p = 0; p < np; p++) {
        for (int b = 0; b < N_BANDS; b++) {
            memset(cday_at(m, (int)p, b, day), 0, sizeof(struct cpart));
        }
    }
    for (uint32_t k = 0; k < m->csorted_n; k++) {
        finalize_customer(m, &m->customers[m->csorted[k]], day);
    }
    cohort_windows(m, day);
    partners_global(m, day);
    for (uint32_t k = 0; k < m->psorted_n; k++) {
        partner_push(m, &m->partners[m->psorted[k]], day);
    }
    for (uint32_t k = 0; k < m->csorted_n; k++) {
        if (m->customers[m->csorted[k]].n_links > 0) {
            evaluate_customer(m, m->csorted[k], day);
        }
    }
    for (uint32_t k = 0; k < m->psorted_n; k++) {
        evaluate_partner(m, m->psorted[k], day);
    }
    m->last_eval = day;
    emit(m, cb, opaque);
    dedup_forget(m, day - (int32_t)m->conf.dedup_horizon_days);
    m->stats.days_evaluated++;
    if (m->day_cb) {
        m->day_cb(m, day, m->day_opaque);
    }
}

void pp_model_set_day_cb(struct pp_model *m, pp_model_day_cb *cb, void *opaque)
{
    m->day_cb = cb;
    m->day_opaque = opaque;
}

void pp_model_advance(struct pp_model *m, int64_t watermark_ms, pp_alert_cb *cb, void *opaque)
{
    if (watermark_ms > m->watermark) {
        m->watermark = watermark_ms;
    }
    if (m->watermark == INT64_MIN || m->min_day == NO_DAY) {
        return;
    }
    int32_t closed = pp_day_from_ms(m->watermark - m->conf.allowed_lateness_ms) - 1;
    int32_t start = m->last_eval == NO_DAY ? m->min_day : m->last_eval + 1;
    /* A year after the newest event every window is empty and every alert
     * resolved: a long watermark jump evaluates up to there and skips the
     * rest, which would change nothing. */
    int64_t quiet = (int64_t)m->max_day + m->conf.push_long_days + m->conf.reopen_days;
    for (int64_t d = start; d <= closed; d++) {
        if (d > quiet) {
            m->last_eval = closed;
            break;
        }
        evaluate_day(m, (int32_t)d, cb, opaque);
    }
}

int64_t pp_model_watermark(const struct pp_model *m)
{
    return m->watermark;
}

int32_t pp_model_last_day(const struct pp_model *m)
{
    return m->last_eval;
}

/* ---- read access ------------------------------------------------------------ */

uint32_t pp_model_partner_count(const struct pp_model *m)
{
    return pp_idmap_count(m->partner_ids);
}

int pp_model_partner_view(const struct pp_model *m, uint32_t idx, struct pp_model_partner_view *out)
{
    if (idx >= pp_idmap_count(m->partner_ids)) {
        return -1;
    }
    /* idx is a position in id order; partners that arrived after the last
     * evaluation are not sorted yet and come last, in arrival order. */
    uint32_t pi = idx < m->psorted_n ? m->psorted[idx] : idx;
    const struct partner *p = &m->partners[pi];
    memset(out, 0, sizeof(*out));
    snprintf(out->partner_id, sizeof(out->partner_id), "%s", pp_idmap_key(m->partner_ids, pi));
    out->cpi = p->cpi;
    out->health = p->health;
    out->band = pp_health_band(&m->conf, p->health);
    out->customers_touched = p->touched;
    out->customers_firing = p->roll.firing;
    out->customers_critical = p->roll.critical;
    out->touched_acv = p->roll.touched_acv;
    out->affected_acv_share =
        p->roll.touched_acv > 0.0 ? p->roll.firing_acv / p->roll.touched_acv : 0.0;
    out->r_qec = p->qec.present ? p->qec.risk : -1.0;
    out->r_disc = p->disc.present ? p->disc.risk : -1.0;
    out->r_rev = p->rev_sig.present ? p->rev_sig.risk : -1.0;
    out->r_oversell = p->oversell.present ? p->oversell.risk : -1.0;
    out->qe_share = p->qe_share;
    out->disc_mean_180d = p->d180;
    out->pp_state = p->pp_rule.phase == PP_PHASE_FIRING ? p->pp_rule.severity : 0;
    out->stuffing_state = p->st_rule.phase;
    return 0;
}

int pp_model_pxc_view(const struct pp_model *m, const char *partner_id, const char *customer_id,
                      struct pp_model_pxc_view *out)
{
    int64_t pi = pp_idmap_find(m->partner_ids, partner_id);
    int64_t ci = pp_idmap_find(m->customer_ids, customer_id);
    if (pi < 0 || ci < 0) {
        return -1;
    }
    const struct customer *c = &m->customers[ci];
    for (uint32_t i = 0; i < c->n_links; i++) {
        const struct link *l = &c->links[i];
        if (l->partner != pi) {
            continue;
        }
        memset(out, 0, sizeof(*out));
        snprintf(out->partner_id, sizeof(out->partner_id), "%s", partner_id);
        snprintf(out->customer_id, sizeof(out->customer_id), "%s", customer_id);
        out->cpi_short = l->cpi_s;
        out->cpi_long = l->cpi_l;
        out->h_short = l->h_s;
        out->h_long = l->h_l;
        out->aggression = l->a;
        out->health = l->health;
        out->partner_acv = l->partner_acv;
        out->alert_state =
            l->rule.phase == PP_PHASE_FIRING ? 1 + l->rule.severity : (int)l->rule.phase;
        return 0;
    }
    return -1;
}

const struct pp_model_stats *pp_model_stats(const struct pp_model *m)
{
    struct pp_model_stats *st = (struct pp_model_stats *)&m->stats;
    size_t bytes = sizeof(*m) + (size_t)PP_MODEL_MAX_PRODUCTS * N_BANDS * (m->width + m->nwin) *
                                    sizeof(struct cpart);
    uint32_t nc = pp_idmap_count(m->customer_ids);
    bytes += (size_t)m->customers_cap * sizeof(struct customer) + nc * customer_block_bytes(m);
    for (uint32_t i = 0; i < nc; i++) {
        const struct customer *c = &m->customers[i];
        bytes += c->cons ? m->width * sizeof(float) : 0;
        bytes += c->cap_tr * sizeof(struct tranche) + c->cap_links * sizeof(struct link);
    }
    uint32_t np = pp_idmap_count(m->partner_ids);
    bytes += (size_t)m->partners_cap * sizeof(struct partner);
    for (uint32_t i = 0; i < np; i++) {
        const struct partner *p = &m->partners[i];
        bytes += p->cap_ledger * sizeof(struct ledger_deal) + p->cap_rev * sizeof(struct reversal) +
                 p->cap_children * sizeof(struct child);
    }
    st->bytes_state = bytes;
    return st;
}
