/*
 * pstage.c — the partners stage of the split model (stage.h): the partner
 * ledgers and push signals, the cohort windows, the partner x customer
 * pairs with their CUSTOMER_PRESSURE machines, the partner rules and the
 * alert records.
 *
 * It takes exchange records from N customers stages. Deals and reversals go
 * into the ledger when offered; cohort partials and assessments wait under
 * their day until every source's end-of-day marker has passed it. Day D then
 * runs the monolith's steps 2-4 in the monolith's order: cohort windows from
 * the summed partials, partners_global and the push signals, every
 * assessment in customer-id then link order (what customer_facts and
 * pxc_facts did with cohort and partner data: LOAD, ESC, CSAT, QEDEAL,
 * aggression, CPI, health, the rule step and the partner roll-up), then
 * every partner, then the sorted alert transitions. The code of those
 * steps is the monolith's, moved, so the doubles and the records are the
 * same bit for bit.
 *
 * pp_model (one source wired directly: the backtest, the benchmark) turns
 * on streaming: its source sends a day's records in evaluation order, so
 * the assessments are evaluated as they come and never buffered. A runtime
 * task never streams: its state must only change when a whole day is
 * evaluated, or a changelog flush in the middle of a day would persist half
 * of it.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "palloc.h"
#include "ptime.h"
#include "stage_int.h"

/* ---- construction ----------------------------------------------------------- */

struct pp_pstage *pp_pstage_new(const struct pp_model_conf *conf, uint32_t sources)
{
    struct pp_pstage *m = pp_xcalloc(1, sizeof(*m));
    m->conf = *conf;
    pp_windows_init(&m->w, conf);
    m->sources = sources ? sources : 1;
    m->eod = pp_xcalloc(m->sources, sizeof(int32_t));
    m->eflags = pp_xcalloc(m->sources, 1);
    m->absent = pp_xcalloc(m->sources, sizeof(bool));
    m->hints = pp_xcalloc((size_t)m->sources * 3, sizeof(struct hint_map));
    for (uint32_t i = 0; i < m->sources; i++) {
        m->eod[i] = NO_DAY;
    }
    m->customer_ids = pp_idmap_new();
    m->partner_ids = pp_idmap_new();
    m->product_ids = pp_idmap_new();
    m->hist_all = pp_xcalloc(DISC_BINS, sizeof(uint32_t));
    m->hist_own = pp_xcalloc(DISC_BINS, sizeof(uint32_t));
    m->last_eval = NO_DAY;
    m->first_reversal_day = NO_DAY;
    m->stats.bytes_per_partner = sizeof(struct partner);
    m->stats.bytes_per_ledger_deal = sizeof(struct ledger_deal);
    return m;
}

int pp_pstage_set_conf(struct pp_pstage *m, const struct pp_model_conf *conf, char *errstr,
                       size_t errstr_size)
{
    if (pp_conf_layout_check(&m->conf, conf, errstr, errstr_size) != 0) {
        return -1;
    }
    m->conf = *conf;
    return 0;
}

static void pday_free(struct pday *pd)
{
    free(pd->cohort);
    free(pd->assess);
}

void pp_pstage_destroy(struct pp_pstage *m)
{
    if (m == NULL) {
        return;
    }
    uint32_t nc = pp_idmap_count(m->customer_ids);
    for (uint32_t i = 0; i < nc; i++) {
        free(m->customers[i].pairs);
    }
    uint32_t np = pp_idmap_count(m->partner_ids);
    for (uint32_t i = 0; i < np; i++) {
        free(m->partners[i].ledger);
        free(m->partners[i].rev);
        free(m->partners[i].children);
    }
    for (uint32_t i = 0; i < m->n_days; i++) {
        pday_free(&m->days[i]);
    }
    free(m->days);
    for (uint32_t i = 0; i < m->sources * 3; i++) {
        free(m->hints[i].v);
    }
    free(m->hints);
    free(m->eod);
    free(m->eflags);
    free(m->absent);
    free(m->customers);
    free(m->partners);
    free(m->psorted);
    free(m->cday);
    free(m->cwin);
    free(m->pend);
    free(m->hist_all);
    free(m->hist_own);
    free(m->scratch);
    free(m->dirty_partners);
    free(m->dirty_pairs);
    pp_idmap_destroy(m->customer_ids);
    pp_idmap_destroy(m->partner_ids);
    pp_idmap_destroy(m->product_ids);
    free(m);
}

/* ---- keys ----------------------------------------------------------------------- */

static void partner_touch(struct pp_pstage *m, uint32_t pi)
{
    struct partner *p = &m->partners[pi];
    if (p->changed) {
        return;
    }
    p->changed = true;
    if (m->n_dirty_p == m->cap_dirty_p) {
        m->cap_dirty_p = m->cap_dirty_p ? m->cap_dirty_p * 2 : 64;
        m->dirty_partners = pp_xrealloc(m->dirty_partners, m->cap_dirty_p * sizeof(uint32_t));
    }
    m->dirty_partners[m->n_dirty_p++] = pi;
}

static void pair_touch(struct pp_pstage *m, uint32_t ci)
{
    struct pcust *c = &m->customers[ci];
    if (c->changed) {
        return;
    }
    c->changed = true;
    if (m->n_dirty_x == m->cap_dirty_x) {
        m->cap_dirty_x = m->cap_dirty_x ? m->cap_dirty_x * 2 : 256;
        m->dirty_pairs = pp_xrealloc(m->dirty_pairs, m->cap_dirty_x * sizeof(uint32_t));
    }
    m->dirty_pairs[m->n_dirty_x++] = ci;
}

/* A fresh partner at index idx (used by restore too). */
void pp_pstage_partner_init(struct pp_pstage *m, uint32_t idx)
{
    while (idx >= m->partners_cap) {
        m->partners_cap = m->partners_cap ? m->partners_cap * 2 : 16;
        m->partners = pp_xrealloc(m->partners, m->partners_cap * sizeof(*m->partners));
    }
    struct partner *p = &m->partners[idx];
    memset(p, 0, sizeof(*p));
    pp_rule_init(&p->pp_rule);
    pp_rule_init(&p->st_rule);
    p->health = -1;
    m->stats.partners = idx + 1 > m->stats.partners ? idx + 1 : m->stats.partners;
}

static uint32_t partner_intern(struct pp_pstage *m, const char *id)
{
    bool created;
    uint32_t idx = pp_idmap_intern(m->partner_ids, id, &created);
    if (created) {
        pp_pstage_partner_init(m, idx);
    }
    return idx;
}

/* A fresh customer (its pairs) at index idx (used by restore too). */
void pp_pstage_customer_init(struct pp_pstage *m, uint32_t idx)
{
    if (idx >= m->customers_cap) {
        m->customers_cap = pp_grow_cap(m->customers_cap, idx); /* as the customers stage */
        m->customers = pp_xrealloc(m->customers, m->customers_cap * sizeof(*m->customers));
    }
    memset(&m->customers[idx], 0, sizeof(m->customers[idx]));
}

static uint32_t customer_intern(struct pp_pstage *m, const char *id)
{
    bool created;
    uint32_t idx = pp_idmap_intern(m->customer_ids, id, &created);
    if (created) {
        pp_pstage_customer_init(m, idx);
    }
    return idx;
}

/* The pair (customer ci, partner pi): its index, or -1 when unknown. With
 * create, a new pair is made as the customers side makes a link: for the
 * first PP_MODEL_MAX_LINKS partners of a customer only. */
int pp_pstage_pair_get(struct pp_pstage *m, uint32_t ci, int32_t pi, bool create)
{
    struct pcust *c = &m->customers[ci];
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->pairs[i].partner == pi) {
            return (int)i;
        }
    }
    if (!create || c->n == PP_MODEL_MAX_LINKS) {
        return -1;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? (uint8_t)(c->cap * 2) : 1;
        c->pairs = pp_xrealloc(c->pairs, c->cap * sizeof(*c->pairs));
    }
    struct pair *l = &c->pairs[c->n];
    memset(l, 0, sizeof(*l));
    l->partner = pi;
    l->health = -1;
    pp_rule_init(&l->rule);
    m->stats.links++;
    pair_touch(m, ci);
    return c->n++;
}

static int16_t product_intern(struct pp_pstage *m, const char *id)
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
    int16_t p = (int16_t)pp_idmap_intern(m->product_ids, id, NULL);
    pp_pstage_cohort_fit(m);
    return p;
}

/* The cohort tables grow by one product at a time (at most
 * PP_MODEL_MAX_PRODUCTS): a stage holds the products it has seen, not the
 * table's limit (1.4 MB with the default 128-day width). A product's rows
 * are contiguous ([product][band][slot]), so growing keeps every index. */
void pp_pstage_cohort_fit(struct pp_pstage *m)
{
    uint32_t np = pp_idmap_count(m->product_ids);
    if (np <= m->cohort_products) {
        return;
    }
    size_t day_row = (size_t)N_BANDS * m->w.width, win_row = (size_t)N_BANDS * m->w.nwin;
    m->cday = pp_xrealloc(m->cday, np * day_row * sizeof(struct cpart));
    m->cwin = pp_xrealloc(m->cwin, np * win_row * sizeof(struct cpart));
    memset(m->cday + m->cohort_products * day_row, 0,
           (np - m->cohort_products) * day_row * sizeof(struct cpart));
    memset(m->cwin + m->cohort_products * win_row, 0,
           (np - m->cohort_products) * win_row * sizeof(struct cpart));
    m->cohort_products = np;
}

/* The index of `id` in `ids`, through the hint of a directly fed record:
 * the writer's index `hint` maps to ours while the same writer object
 * (`owner`) lives, so no string is hashed or compared. Without hints, a
 * plain lookup (interned when intern). -1 when absent and not interned. */
static int64_t hinted(struct pp_pstage *m, struct hint_map *h, uint64_t owner, uint32_t hint,
                      struct pp_idmap *ids, const char *id,
                      uint32_t (*intern)(struct pp_pstage *, const char *))
{
    bool use = owner != 0 && hint != UINT32_MAX;
    if (use) {
        if (h->owner != owner) {
            if (h->n > 0) {
                memset(h->v, 0, h->n * sizeof(uint32_t));
            }
            h->owner = owner;
        }
        if (hint < h->n && h->v[hint] != 0) {
            return h->v[hint] - 1;
        }
    }
    int64_t idx = intern ? (int64_t)intern(m, id) : pp_idmap_find(ids, id);
    if (idx >= 0 && use) {
        if (hint >= h->n) {
            uint32_t n = h->n ? h->n : 64;
            while (n <= hint) {
                n *= 2;
            }
            h->v = pp_xrealloc(h->v, n * sizeof(uint32_t));
            memset(h->v + h->n, 0, (n - h->n) * sizeof(uint32_t));
            h->n = n;
        }
        h->v[hint] = (uint32_t)idx + 1;
    }
    return idx;
}

/* ---- ledger -------------------------------------------------------------------- */

static void ledger_put(struct pp_pstage *m, struct partner *p, const struct ledger_deal *ld)
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

static void apply_deal(struct pp_pstage *m, const struct pp_xrec *x)
{
    const struct pp_xrec_deal *d = &x->u.deal;
    uint32_t pi = (uint32_t)hinted(m, &m->hints[(size_t)x->source * 3 + 1], d->hint_owner,
                                   d->hint_partner, m->partner_ids, d->partner_id, partner_intern);
    struct ledger_deal ld;
    memset(&ld, 0, sizeof(ld));
    ld.deal = d->deal;
    ld.acv = d->acv;
    ld.discount = d->discount;
    ld.close = d->close;
    ld.known = d->known;
    ld.quarter = pp_quarter_of(d->close);
    ld.qe = d->qe;
    ld.kind = d->kind;
    ledger_put(m, &m->partners[pi], &ld);
    partner_touch(m, pi);
}

static void apply_reversal(struct pp_pstage *m, const struct pp_xrec *x)
{
    uint32_t pi = partner_intern(m, x->u.rev.partner_id);
    struct partner *p = &m->partners[pi];
    double acv = x->u.rev.acv;
    int32_t day = x->day;
    partner_touch(m, pi);
    if (acv == 0.0) {
        return;
    }
    if (p->n_rev < PP_MODEL_REV_MAX) {
        if (p->n_rev == p->cap_rev) {
            p->cap_rev = p->cap_rev ? p->cap_rev * 2 : 8;
            p->rev = pp_xrealloc(p->rev, p->cap_rev * sizeof(*p->rev));
        }
        p->rev[p->n_rev].deal = x->u.rev.deal;
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
        m->meta_dirty = true;
    }
}

static struct cpart *cday_at(struct pp_pstage *m, int p, int b, int32_t day)
{
    return &m->cday[((size_t)p * N_BANDS + (size_t)b) * m->w.width + pp_slot_of(m->w.width, day)];
}

/* ---- evaluation: step 2, cohort baselines -------------------------------- */

static struct cpart *cwin_at(struct pp_pstage *m, int p, int b, uint32_t w)
{
    return &m->cwin[((size_t)p * N_BANDS + (size_t)b) * m->w.nwin + w];
}

static void cohort_windows(struct pp_pstage *m, int32_t day)
{
    uint32_t np = pp_idmap_count(m->product_ids);
    for (uint32_t p = 0; p < np; p++) {
        for (int b = 0; b < N_BANDS; b++) {
            const struct cpart *today = cday_at(m, (int)p, b, day);
            for (uint32_t w = 0; w < m->w.nwin; w++) {
                struct cpart *cw = cwin_at(m, (int)p, b, w);
                const struct cpart *old = cday_at(m, (int)p, b, day - (int32_t)m->w.win[w]);
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

static void pool_add(struct pp_pstage *m, struct pool *pl, int p, int b, uint32_t w, int32_t day)
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

static void pool_less(struct pool *pl, const struct pp_xown *own)
{
    pl->customers = pl->customers ? pl->customers - 1 : 0;
    pl->wt = nonneg(pl->wt - own->wt);
    pl->active = nonneg(pl->active - (double)own->active);
    pl->opened = nonneg(pl->opened - own->opened);
    pl->esc = nonneg(pl->esc - own->esc);
    pl->resp = nonneg(pl->resp - own->resp);
    pl->pos = nonneg(pl->pos - own->pos);
}

/* The pools customer x is compared with: its own band of its product, then
 * the product's mature bands (90 d and older) pooled; each less the
 * customer's own days in it (the assessment carries them: its days in
 * today's band pool and in the mature pool, see cstage.c own_since). */
static void pools_of(struct pp_pstage *m, const struct pp_xrec_assess *x, int product, int xw,
                     uint32_t w, int32_t day, struct pool *own_band, struct pool *mature)
{
    int p = product, band = x->band;
    memset(own_band, 0, sizeof(*own_band));
    memset(mature, 0, sizeof(*mature));
    if (p < 0 || band < 0) {
        return;
    }
    pool_add(m, own_band, p, band, w, day);
    pool_add(m, mature, p, 1, w, day);
    pool_add(m, mature, p, 2, w, day);
    pool_less(own_band, &x->band_own[xw]);
    if (band >= 1) {
        pool_less(mature, &x->mature_own[xw]);
    }
}

/* Weighted tickets per 100 active seats per 30 d: the customer's own band
 * when it has enough customers, else the product's mature bands pooled (x1.5
 * for onboarding), else the configured fallback (x1.5 for onboarding). */
static double base_rate(struct pp_pstage *m, const struct pp_xrec_assess *x, int product, int xw,
                        uint32_t w, int32_t day, int *level)
{
    const struct pp_model_conf *cf = &m->conf;
    double mult = x->band == 0 ? cf->onboarding_factor : 1.0;
    if (m->n_absent > 0) {
        /* Some customers tasks' partials are missing (MODEL.md §1). */
        *level = 3;
        return cf->support_rate_fallback * mult;
    }
    struct pool ob, mat;
    pools_of(m, x, product, xw, w, day, &ob, &mat);
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
static double cohort_prior(struct pp_pstage *m, const struct pp_xrec_assess *x, int product, int xw,
                           uint32_t w, int32_t day, int which)
{
    const struct pp_model_conf *cf = &m->conf;
    struct pool ob, mat;
    pools_of(m, x, product, xw, w, day, &ob, &mat);
    const struct pool *tiers[2] = {&ob, &mat};
    for (int i = 0; m->n_absent == 0 && i < 2; i++) {
        const struct pool *pl = tiers[i];
        double num = which == 0 ? pl->esc : pl->pos;
        double den = which == 0 ? pl->opened : pl->resp;
        if (pl->customers >= cf->cohort_min_customers && den > 0.0) {
            return num / den;
        }
    }
    return which == 0 ? cf->esc_prior : cf->csat_prior;
}

/* Customer-level facts of an assessment. Mode 0 is short, 1 is long. */
struct cust_eval {
    struct pp_sig shelf[2], load[2], esc[2], csat[2];
    double exp_util[2], base[2], p0[2], c0[2], mean_active[2], tickets_w[2];
    int base_level[2];
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

static void partner_prune(struct pp_pstage *m, struct partner *p, int32_t day)
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
        pp_sort_n(p->ledger, p->n_ledger, sizeof(*p->ledger), cmp_ledger);
        pp_sort_n(p->rev, p->n_rev, sizeof(*p->rev), cmp_rev);
        p->dirty = false;
    }
}

static bool in_year(const struct pp_pstage *m, const struct ledger_deal *ld, int32_t day)
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

static double *scratch_doubles(struct pp_pstage *m, uint32_t n);

static void partner_push(struct pp_pstage *m, struct partner *p, int32_t day)
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
        pp_sort_n(nonqe, n_nonqe, sizeof(double), cmp_double);
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

static void partners_global(struct pp_pstage *m, int32_t day)
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

static double *scratch_doubles(struct pp_pstage *m, uint32_t n)
{
    if (n > m->scratch_cap) {
        m->scratch_cap = n < 64 ? 64 : n;
        m->scratch = pp_xrealloc(m->scratch, m->scratch_cap * sizeof(double));
    }
    return m->scratch;
}

static double risk_or0(const struct pp_sig *s)
{
    return s->present ? s->risk : 0.0;
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

static void alert_init(struct pp_pstage *m, struct pp_alert *a, int rule, uint32_t pi, int64_t ci,
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
    pp_sort_n(c, n, sizeof(*c), cmp_cand);
    a->n_signals = n < PP_ALERT_MAX_SIGNALS ? n : PP_ALERT_MAX_SIGNALS;
    for (uint32_t i = 0; i < a->n_signals; i++) {
        a->signals[i] = c[i].s;
    }
}

static void push_candidates(const struct pp_pstage *m, const struct partner *p, struct cand *c,
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

static struct pending_alert *pend_new(struct pp_pstage *m, int rule, uint32_t pi)
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

static void customer_alert(struct pp_pstage *m, uint32_t ci, const struct pair *l,
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

static void partner_alert(struct pp_pstage *m, uint32_t pi, int rule, int32_t day,
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
    pp_sort_n(p->children, p->n_children, sizeof(*p->children), cmp_child);
    int fam_votes[PP_FAM__COUNT] = {0};
    for (uint32_t i = 0; i < p->n_children; i++) {
        const struct child *ch = &p->children[i];
        const struct pair *l = &m->customers[ch->customer].pairs[ch->pair];
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

static void child_add(struct partner *p, const char *id, uint32_t ci, uint32_t li,
                      const struct pair *l, int dominant)
{
    if (p->n_children == p->cap_children) {
        p->cap_children = p->cap_children ? p->cap_children * 2 : 8;
        p->children = pp_xrealloc(p->children, p->cap_children * sizeof(*p->children));
    }
    struct child *ch = &p->children[p->n_children++];
    ch->id = id;
    ch->customer = ci;
    ch->pair = li;
    ch->severity = l->rule.severity;
    ch->cpi_s = l->cpi_s;
    ch->dominant = dominant;
}

static void evaluate_partner(struct pp_pstage *m, uint32_t pi, int32_t day)
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

static void emit(struct pp_pstage *m, pp_alert_cb *cb, void *opaque)
{
    pp_sort_n(m->pend, m->n_pend, sizeof(*m->pend), cmp_pending);
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
        if (m->n_absent > 0) {
            /* The alert says its cohort baselines are the configured
             * fallbacks (MODEL.md §1). */
            size_t n = strlen(pa->alert.summary);
            snprintf(
                pa->alert.summary + n, sizeof(pa->alert.summary) - n,
                " [cohort baselines: configured fallbacks, %u of %u customers partitions late]",
                m->n_absent, m->sources);
        }
        if (cb) {
            cb(&pa->alert, opaque);
        }
    }
    m->n_pend = 0;
}

/* ---- evaluation: one assessment -------------------------------------------- */

static struct pp_sig sig_of(const struct pp_xsig *x)
{
    struct pp_sig s = {x->present, x->value, x->risk};
    return s;
}

static void customer_facts(struct pp_pstage *m, const struct pp_xrec_assess *x, int product,
                           int32_t day, struct cust_eval *ce)
{
    const struct pp_model_conf *cf = &m->conf;
    memset(ce, 0, sizeof(*ce));
    const uint32_t wl[2] = {m->w.w_load_s, m->w.w_load_l};
    const uint32_t wr[2] = {m->w.w_ratio_s, m->w.w_ratio_l};
    const int xl[2] = {PP_XW_LOAD_S, PP_XW_LOAD_L};
    const int xr[2] = {PP_XW_RATIO_S, PP_XW_RATIO_L};
    ce->exp_util[0] = x->exp_util0;
    for (int k = 0; k < 2; k++) {
        ce->shelf[k] = sig_of(&x->shelf[k]);
        uint32_t wdays = x->load_wdays[k];
        const struct pp_xown *lw = &x->win[xl[k]], *rw = &x->win[xr[k]];
        ce->mean_active[k] = (double)lw->active / wdays;
        ce->tickets_w[k] = lw->wt;
        ce->base[k] = base_rate(m, x, product, xl[k], wl[k], day, &ce->base_level[k]);
        if (x->has_seats) {
            ce->load[k] = pp_sig_load(cf, ce->tickets_w[k], ce->mean_active[k], ce->base[k], wdays);
        }
        ce->p0[k] = cohort_prior(m, x, product, xr[k], wr[k], day, 0);
        ce->c0[k] = cohort_prior(m, x, product, xr[k], wr[k], day, 1);
        ce->esc[k] = pp_sig_esc(cf, rw->esc, rw->opened, ce->p0[k]);
        ce->csat[k] = pp_sig_csat(cf, rw->pos, rw->resp, ce->c0[k]);
    }
}

static void pxc_facts(struct pp_pstage *m, const struct pp_xrec_assess *x, struct partner *p,
                      const struct cust_eval *ce, struct pxc_eval *pe)
{
    const struct pp_model_conf *cf = &m->conf;
    memset(pe, 0, sizeof(*pe));
    pe->ce = ce;
    pe->qedeal_close = NO_DAY;
    pe->qedeal_disc = NAN;
    pe->any_visible = true;
    pe->touched = x->touched;
    pe->partner_acv = x->partner_acv;
    for (uint32_t i = 0; i < x->n_qedeal; i++) {
        double q = pp_sig_qedeal(cf, x->qedeal_qe[i], x->qedeal_disc[i], p->ref_disc);
        if (pe->qedeal_close == NO_DAY || q > pe->r_qedeal) {
            pe->r_qedeal = q;
            pe->qedeal_disc = x->qedeal_disc[i];
            pe->qedeal_close = x->qedeal_close[i];
        }
    }
    pe->oversize = sig_of(&x->oversize);
    pe->gap[0] = sig_of(&x->gap[0]);
    pe->gap[1] = sig_of(&x->gap[1]);
    pe->s365 = x->s365;
    pe->s180 = x->s180;
    pe->oversell = sig_of(&x->oversell);
    p->oversell_o += x->oversell_o;
    p->oversell_seats += x->oversell_seats;
    p->oversell_deals += x->oversell_deals;

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
            for (int fx = 0; fx < PP_FAM__COUNT; fx++) {
                double cx = f[fx].present ? f[fx].harm * f[fx].exposure : 0.0;
                if (cx > best && cx > 0.0) {
                    best = cx;
                    pe->dominant = fx;
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

/* The monolith's evaluate_customer for one link. */
static void evaluate_assess(struct pp_pstage *m, uint32_t src, const struct pp_xrec_assess *x,
                            int32_t day)
{
    const struct pp_model_conf *cf = &m->conf;
    struct hint_map *h = &m->hints[(size_t)src * 3];
    int product = -1;
    if (x->product_id[0] != '\0') {
        product = (int)hinted(m, &h[2], x->hint_owner, x->hint_product, m->product_ids,
                              x->product_id, NULL);
    }
    uint32_t pi = (uint32_t)hinted(m, &h[1], x->hint_owner, x->hint_partner, m->partner_ids,
                                   x->partner_id, partner_intern);
    uint32_t ci = (uint32_t)hinted(m, &h[0], x->hint_owner, x->hint_customer, m->customer_ids,
                                   x->customer_id, customer_intern);
    struct partner *p = &m->partners[pi];
    int found = pp_pstage_pair_get(m, ci, (int32_t)pi, true);
    if (found < 0) {
        /* Not a link of the customers side (its 5th partner): the monolith
         * never assessed it; a customers stage does not send it. */
        m->stats.link_overflow++;
        return;
    }
    uint32_t li = (uint32_t)found;
    struct cust_eval ce;
    customer_facts(m, x, product, day, &ce);
    struct pxc_eval pe;
    pxc_facts(m, x, p, &ce, &pe);
    struct pair *l = &m->customers[ci].pairs[li];
    pair_touch(m, ci);
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

/* ---- evaluation: the day ------------------------------------------------------ */

/* Cohort windows and partner push signals of the day: everything the
 * assessments read. */
static void begin_day(struct pp_pstage *m, struct pday *pd)
{
    int32_t day = pd->day;
    pp_sort_ids(m->partner_ids, &m->psorted, &m->psorted_n);
    uint32_t np = pp_idmap_count(m->product_ids);
    for (uint32_t p = 0; p < np; p++) {
        for (int b = 0; b < N_BANDS; b++) {
            memset(cday_at(m, (int)p, b, day), 0, sizeof(struct cpart));
        }
    }
    /* Integer partials: their sum is exact whatever the order of sources. */
    for (uint32_t i = 0; i < pd->n_cohort; i++) {
        const struct pp_xrec_cohort *x = &pd->cohort[i];
        int p = product_intern(m, x->product_id);
        if (p < 0 || x->band >= N_BANDS) {
            continue;
        }
        struct cpart *cp = cday_at(m, p, x->band, day);
        cp->wt += (double)x->wt;
        cp->active += (double)x->active;
        cp->opened += (double)x->opened;
        cp->esc += (double)x->esc;
        cp->resp += (double)x->resp;
        cp->pos += (double)x->pos;
        cp->customers += x->customers;
    }
    cohort_windows(m, day);
    partners_global(m, day);
    for (uint32_t k = 0; k < m->psorted_n; k++) {
        partner_push(m, &m->partners[m->psorted[k]], day);
    }
    pd->begun = true;
}

static int cmp_assess(const void *a, const void *b)
{
    const struct pp_xrec_assess *x = a, *y = b;
    int c = strcmp(x->customer_id, y->customer_id);
    if (c != 0) {
        return c;
    }
    return (int)x->link - (int)y->link;
}

static void end_day(struct pp_pstage *m, struct pday *pd, pp_alert_cb *cb, void *opaque)
{
    int32_t day = pd->day;
    if (!pd->begun) {
        begin_day(m, pd);
    }
    /* Buffered assessments (several sources): the monolith's order. */
    bool sorted = true;
    for (uint32_t i = 1; i < pd->n_assess && sorted; i++) {
        sorted = cmp_assess(&pd->assess[i - 1], &pd->assess[i]) <= 0;
    }
    if (!sorted) {
        pp_sort_n(pd->assess, pd->n_assess, sizeof(*pd->assess), cmp_assess);
    }
    for (uint32_t i = 0; i < pd->n_assess; i++) {
        evaluate_assess(m, 0, &pd->assess[i], day);
    }
    for (uint32_t k = 0; k < m->psorted_n; k++) {
        evaluate_partner(m, m->psorted[k], day);
    }
    m->last_eval = day;
    m->meta_dirty = true;
    m->all_dirty = true;
    emit(m, cb, opaque);
    m->stats.days_evaluated++;
    if (m->day_cb) {
        m->day_cb(m, day, m->day_opaque);
    }
}

/* The pending day `day`, created in order. */
static struct pday *pday_get(struct pp_pstage *m, int32_t day)
{
    uint32_t i = 0;
    while (i < m->n_days && m->days[i].day < day) {
        i++;
    }
    if (i < m->n_days && m->days[i].day == day) {
        return &m->days[i];
    }
    if (m->n_days == m->cap_days) {
        m->cap_days = m->cap_days ? m->cap_days * 2 : 8;
        m->days = pp_xrealloc(m->days, m->cap_days * sizeof(*m->days));
    }
    memmove(&m->days[i + 1], &m->days[i], (m->n_days - i) * sizeof(*m->days));
    m->n_days++;
    struct pday *pd = &m->days[i];
    memset(pd, 0, sizeof(*pd));
    pd->day = day;
    return pd;
}

static void pday_pop(struct pp_pstage *m)
{
    pday_free(&m->days[0]);
    m->n_days--;
    memmove(&m->days[0], &m->days[1], m->n_days * sizeof(*m->days));
}

/* The newest day every source has closed, NO_DAY while one is silent. */
static int32_t horizon(const struct pp_pstage *m)
{
    int32_t h = INT32_MAX;
    for (uint32_t i = 0; i < m->sources; i++) {
        if (m->absent[i]) {
            continue;
        }
        if (m->eod[i] == NO_DAY) {
            return NO_DAY;
        }
        if (m->eod[i] < h) {
            h = m->eod[i];
        }
    }
    return h;
}

static void evaluate_ready(struct pp_pstage *m, pp_alert_cb *cb, void *opaque)
{
    int32_t h = horizon(m);
    while (h != NO_DAY && m->n_days > 0 && m->days[0].day <= h) {
        struct pday *pd = &m->days[0];
        if (pd->marked) {
            end_day(m, pd, cb, opaque);
        }
        else {
            /* Records without any source's evaluated marker cannot occur from
             * a customers stage; count them and move on. */
            m->stats.ignored += pd->n_cohort + pd->n_assess;
        }
        pday_pop(m);
    }
}

int pp_pstage_offer(struct pp_pstage *m, const struct pp_xrec *x, pp_alert_cb *cb, void *opaque,
                    char *errstr, size_t errstr_size)
{
    if (x->source >= m->sources) {
        snprintf(errstr, errstr_size, "exchange record from source %u: this stage has %u",
                 x->source, m->sources);
        return -1;
    }
    switch (x->kind) {
    case PP_XREC_DEAL:
        apply_deal(m, x);
        return 0;
    case PP_XREC_REVERSAL:
        apply_reversal(m, x);
        return 0;
    case PP_XREC_COHORT:
    case PP_XREC_ASSESS:
    case PP_XREC_EOD:
        break;
    default:
        snprintf(errstr, errstr_size, "exchange record of unknown kind %u", x->kind);
        return -1;
    }
    if (x->kind == PP_XREC_EOD) {
        m->eod[x->source] = x->day;
        m->eflags[x->source] = x->u.eod.flags;
        m->meta_dirty = true;
        if (m->absent[x->source] && m->last_eval != NO_DAY && x->day >= m->last_eval) {
            m->absent[x->source] = false; /* caught up: waited for again */
            m->n_absent--;
        }
        int rc = 0;
        if (x->u.eod.flags & PP_EOD_EVALUATED) {
            if (m->last_eval != NO_DAY && x->day <= m->last_eval) {
                m->stats.too_late++;
                rc = 1;
            }
            else {
                pday_get(m, x->day)->marked = true;
            }
        }
        evaluate_ready(m, cb, opaque);
        return rc;
    }
    if (m->last_eval != NO_DAY && x->day <= m->last_eval) {
        m->stats.too_late++;
        return 1;
    }
    struct pday *pd = pday_get(m, x->day);
    if (x->kind == PP_XREC_COHORT) {
        if (pd->n_cohort == pd->cap_cohort) {
            pd->cap_cohort = pd->cap_cohort ? pd->cap_cohort * 2 : 8;
            pd->cohort = pp_xrealloc(pd->cohort, pd->cap_cohort * sizeof(*pd->cohort));
        }
        pd->cohort[pd->n_cohort++] = x->u.cohort;
        return 0;
    }
    /* One source sends a day's records in evaluation order, after every
     * cohort partial and deal the day needs: evaluate as they come. */
    if (m->stream && pd == &m->days[0]) {
        if (!pd->begun) {
            begin_day(m, pd);
        }
        evaluate_assess(m, x->source, &x->u.assess, pd->day);
        return 0;
    }
    if (pd->n_assess == pd->cap_assess) {
        pd->cap_assess = pd->cap_assess ? pd->cap_assess * 2 : 64;
        pd->assess = pp_xrealloc(pd->assess, pd->cap_assess * sizeof(*pd->assess));
    }
    struct pp_xrec_assess *a = &pd->assess[pd->n_assess++];
    *a = x->u.assess;
    /* Hints are per source and these wait for every source: drop them. */
    a->hint_owner = 0;
    return 0;
}

void pp_pstage_set_stream(struct pp_pstage *m, bool on)
{
    m->stream = on && m->sources == 1;
}

int32_t pp_pstage_pending_day(const struct pp_pstage *m)
{
    return m->n_days > 0 ? m->days[0].day : NO_DAY;
}

int32_t pp_pstage_last_day(const struct pp_pstage *m)
{
    return m->last_eval;
}

uint32_t pp_pstage_force(struct pp_pstage *m, pp_alert_cb *cb, void *opaque)
{
    if (m->n_days == 0 || !m->days[0].marked) {
        return 0; /* nothing any source has evaluated is waiting */
    }
    int32_t day = m->days[0].day;
    uint32_t left = 0;
    for (uint32_t i = 0; i < m->sources; i++) {
        if (!m->absent[i] && (m->eod[i] == NO_DAY || m->eod[i] < day)) {
            m->absent[i] = true;
            m->n_absent++;
            left++;
        }
    }
    if (left > 0) {
        evaluate_ready(m, cb, opaque);
    }
    return left;
}

uint32_t pp_pstage_absent(const struct pp_pstage *m)
{
    return m->n_absent;
}

void pp_pstage_rewind_sources(struct pp_pstage *m)
{
    for (uint32_t i = 0; i < m->sources; i++) {
        if (m->eod[i] != NO_DAY && (m->last_eval == NO_DAY || m->eod[i] > m->last_eval)) {
            m->eod[i] = m->last_eval;
            m->eflags[i] = 0;
        }
    }
}

void pp_pstage_set_day_cb(struct pp_pstage *m, pp_pstage_day_cb *cb, void *opaque)
{
    m->day_cb = cb;
    m->day_opaque = opaque;
}

/* ---- read access ------------------------------------------------------------ */

uint32_t pp_pstage_partner_count(const struct pp_pstage *m)
{
    return pp_idmap_count(m->partner_ids);
}

int pp_pstage_partner_view(const struct pp_pstage *m, uint32_t idx,
                           struct pp_model_partner_view *out)
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

int pp_pstage_pxc_view(const struct pp_pstage *m, const char *partner_id, const char *customer_id,
                       struct pp_model_pxc_view *out)
{
    int64_t pi = pp_idmap_find(m->partner_ids, partner_id);
    int64_t ci = pp_idmap_find(m->customer_ids, customer_id);
    if (pi < 0 || ci < 0) {
        return -1;
    }
    const struct pcust *c = &m->customers[ci];
    for (uint32_t i = 0; i < c->n; i++) {
        const struct pair *l = &c->pairs[i];
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

const struct pp_model_stats *pp_pstage_stats(const struct pp_pstage *m)
{
    struct pp_model_stats *st = (struct pp_model_stats *)&m->stats;
    size_t bytes = sizeof(*m) + (size_t)m->cohort_products * N_BANDS * (m->w.width + m->w.nwin) *
                                    sizeof(struct cpart);
    uint32_t nc = pp_idmap_count(m->customer_ids);
    bytes += (size_t)m->customers_cap * sizeof(struct pcust);
    for (uint32_t i = 0; i < nc; i++) {
        bytes += m->customers[i].cap * sizeof(struct pair);
    }
    uint32_t np = pp_idmap_count(m->partner_ids);
    bytes += (size_t)m->partners_cap * sizeof(struct partner);
    for (uint32_t i = 0; i < np; i++) {
        const struct partner *p = &m->partners[i];
        bytes += p->cap_ledger * sizeof(struct ledger_deal) + p->cap_rev * sizeof(struct reversal) +
                 p->cap_children * sizeof(struct child);
    }
    for (uint32_t i = 0; i < m->n_days; i++) {
        bytes += m->days[i].cap_cohort * sizeof(struct pp_xrec_cohort) +
                 m->days[i].cap_assess * sizeof(struct pp_xrec_assess);
    }
    st->bytes_state = bytes;
    return st;
}
