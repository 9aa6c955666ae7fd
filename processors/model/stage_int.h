/*
 * stage_int.h — the state of the two model stages (stage.h), shared by the
 * files that implement them: cstage.c (customers), pstage.c (partners) and
 * serial.c (their changelog and snapshot records). Not a public header:
 * nothing outside processors/model/ includes it.
 *
 * The layout is the monolith's (MODEL.md §2.8), cut along MODEL.md §1: a
 * customer keeps its rings, deals and the partner of each link; the partner
 * x customer pair (CUSTOMER_PRESSURE machine and the pair's last CPI) lives
 * on the partners side with the partner's ledger and cohort windows.
 */
#ifndef PP_STAGE_INT_H
#define PP_STAGE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "idmap.h"
#include "rules.h"
#include "signals.h"
#include "stage.h"

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

/* Window layout shared by both stages (same conf, same order). */
struct pp_windows {
    uint32_t width; /* ring slots */
    uint32_t span;  /* history days the evaluation reads back */
    uint32_t nwin;
    uint32_t win[PP_MODEL_MAX_WINDOWS];
    uint32_t w_adopt_s, w_adopt_l, w_load_s, w_load_l, w_ratio_s, w_ratio_l;
};

void pp_windows_init(struct pp_windows *w, const struct pp_model_conf *conf);
uint32_t pp_history_span(const struct pp_model_conf *c);
int pp_conf_layout_check(const struct pp_model_conf *old, const struct pp_model_conf *conf,
                         char *errstr, size_t errstr_size);

static inline uint32_t pp_slot_of(uint32_t width, int32_t day)
{
    int64_t s = (int64_t)day % (int64_t)width;
    return (uint32_t)(s < 0 ? s + width : s);
}

/* The next capacity of a per-customer table that must hold index idx:
 * a quarter more (at least 64, at least idx + 1). */
static inline uint32_t pp_grow_cap(uint32_t cap, uint32_t idx)
{
    uint64_t n = cap < 64 ? 64 : (uint64_t)cap + cap / 4;
    if (n <= idx) {
        n = (uint64_t)idx + 1;
    }
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

/* qsort that accepts an empty (NULL) array: C leaves qsort(NULL, 0) undefined. */
void pp_sort_n(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));

/* Keeps `sorted` (indexes in id order) up to date with the map. */
void pp_sort_ids(const struct pp_idmap *ids, uint32_t **sorted, uint32_t *sorted_n);

/* ---- customers stage ----------------------------------------------------- */

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

/* One remembered event (dedup) and its day. */
struct ckey {
    int32_t day;
    uint64_t key;
};

/* Sums over one window of finalized days (consumption's are in the
 * customer's consumption block: most customers have none). */
struct wsum {
    uint64_t active;
    uint32_t wt, opened, esc, resp, pos;
};

/* A licences_entitled snapshot of a day not finalized yet (credit_mode 2). */
struct ent_snap {
    int32_t day;
    uint32_t val;
};

/* The support values of one day: severity-weighted tickets opened and 4
 * counters (opened, escalated, CSAT responses, positives; u8 saturating). */
struct sday {
    int32_t day;
    uint16_t wt; /* saturating */
    uint8_t cnt[4];
};

/* Support days kept sparse up to this many; one more makes the rings dense
 * (48 x 12 bytes is about what the dense rings of 128 days cost). */
#define PP_SUP_SPARSE_MAX 48

/* A customer's window sums and day rings live in one block (cust_* below
 * read and write them):
 *
 *   nwin x struct wsum | 2 x struct wsum (the sums since band_since and since
 *   mature_since) | active seats, width slots | [dense support only:
 *   severity-weighted tickets opened, width slots | width x 4 counters]
 *
 * A ring cell is as narrow as the customer's values allow: active seats in
 * u16 (UINT16_MAX = no snapshot that day) and weighted tickets in u8 until
 * one value needs more, then the customer is widened for good to u32
 * (NO_ACTIVE = no snapshot) and u16 (saturating, as before).
 *
 * Support values are sparse first: a list of the days that have any (struct
 * sday, sorted by day), since most customers open a ticket on few days. A
 * customer with more than PP_SUP_SPARSE_MAX such days in its rings' span gets
 * the dense rings for good. A day without an entry holds zeros, as a
 * cleared ring slot does; finalizing day D drops the entries of days <= D -
 * span as it clears that slot. The values are the same in every form; only
 * the storage differs. */
struct customer {
    char *blk;            /* window sums and rings, see above */
    double *cblk;         /* consumption: nwin window sums, then width floats
                             (units per slot); NULL until the first */
    double cons_cum;      /* all finalized consumption */
    struct tranche *tr;   /* sorted by (close, deal) */
    int32_t *links;       /* partner (stage-local index) of each link, in link order */
    struct sday *sup;     /* sparse support days (see above), NULL when none or dense */
    struct ckey *keys;    /* its events' dedup keys of the remembered days (changelog) */
    struct ent_snap *ent; /* entitlement snapshots after the first (ent0) */
    uint32_t last_active;
    /* licences_entitled of the snapshot days after the last finalized one:
     * finalizing day D takes the newest entry <= D into ent_now and drops
     * them, so D never sees a later snapshot, however far ahead the inputs
     * run (events up to the alignment horizon may be applied before D is
     * evaluated) */
    struct ent_snap ent0;    /* the first inline: usually the only one (cust_ent) */
    uint16_t n_ent, cap_ent; /* cap_ent: of ent, the others */
    uint32_t ent_now;        /* entitled as of the evaluated day, UINT32_MAX unknown */
    int32_t last_snap_day;
    int32_t first_snap_day;
    int32_t first_cons_day;
    /* First day of the current unbroken run in today's band, and in the
     * mature bands (>= 90 d): the days this customer's sums sit in those
     * cohort pools, which is what leave-one-out must take out. */
    int32_t band_since, mature_since;
    int32_t done; /* the last day finalized for it: a restored record catches up */
    uint32_t n_keys, cap_keys;
    int16_t product; /* cohort product (stage-local index), -1 unknown */
    int8_t band;     /* today's age band, -1 none */
    uint8_t n_tr, n_links, cap_tr, cap_links;
    uint8_t n_sup, cap_sup;
    bool dirty;     /* changed since the last flush_dirty */
    bool wide;      /* the rings' cells are u32 / u16 (see above) */
    bool dense_sup; /* support values in rings, not in sup (see above) */
};

/* Entitlement snapshot i of the customer (i < n_ent): the first is inline,
 * as a customer seldom has more than one day's snapshot waiting. */
static inline struct ent_snap *cust_ent(struct customer *c, uint32_t i)
{
    return i == 0 ? &c->ent0 : &c->ent[i - 1];
}

/* The sums at the head of a customer's block: one per window, then the
 * sums of the days since band_since and since mature_since (cust_since). */
static inline size_t cust_sums_bytes(const struct pp_windows *w)
{
    return (w->nwin + 2) * sizeof(struct wsum);
}

/* Bytes of a customer's block of sums and rings. */
static inline size_t pp_cust_blk_bytes(const struct pp_windows *w, bool wide, bool dense_sup)
{
    size_t slot = wide ? 4 : 2;
    if (dense_sup) {
        slot += wide ? 6 : 5;
    }
    return cust_sums_bytes(w) + (size_t)w->width * slot;
}

static inline struct wsum *cust_sums(const struct pp_windows *w, const struct customer *c)
{
    (void)w;
    return (struct wsum *)(void *)c->blk;
}

/* The sums over [band_since, done] ([0]) and [mature_since, done] ([1]),
 * kept as days are finalized (zero while the customer has no such day):
 * what a window's own sums are when the customer joined its pool within the
 * window (cstage.c own_since). */
static inline struct wsum *cust_since(const struct pp_windows *w, const struct customer *c)
{
    return (struct wsum *)(void *)c->blk + w->nwin;
}

static inline uint32_t cust_active(const struct pp_windows *w, const struct customer *c,
                                   uint32_t sl)
{
    const char *r = c->blk + cust_sums_bytes(w);
    if (c->wide) {
        return ((const uint32_t *)(const void *)r)[sl];
    }
    uint16_t v = ((const uint16_t *)(const void *)r)[sl];
    return v == UINT16_MAX ? NO_ACTIVE : v;
}

/* Dense support only: weighted tickets of slot sl. */
static inline uint32_t cust_wt(const struct pp_windows *w, const struct customer *c, uint32_t sl)
{
    const char *r = c->blk + cust_sums_bytes(w) + (size_t)w->width * (c->wide ? 4 : 2);
    if (c->wide) {
        return ((const uint16_t *)(const void *)r)[sl];
    }
    return ((const uint8_t *)r)[sl];
}

/* Dense support only: the 4 counters of slot sl. */
static inline uint8_t *cust_cnt(const struct pp_windows *w, const struct customer *c, uint32_t sl)
{
    return (uint8_t *)c->blk + cust_sums_bytes(w) + (size_t)w->width * (c->wide ? 6 : 3) +
           (size_t)sl * 4;
}

/* The consumption ring (width floats, units per slot); only for a customer
 * with a consumption block. */
static inline float *cust_cons(const struct pp_windows *w, const struct customer *c)
{
    return (float *)(void *)(c->cblk + w->nwin);
}

/* Recomputes the customer's cust_since sums from its rings (a restored
 * record does not carry them). */
void pp_cust_since_rebuild(const struct pp_cstage *s, struct customer *c);

/* Moves the customer to wider cells and/or dense support rings (struct
 * customer; never back); values unchanged. */
void pp_cust_relayout(const struct pp_windows *w, struct customer *c, bool wide, bool dense_sup);

/* Active seats of slot sl (NO_ACTIVE: no snapshot), widening when needed. */
static inline void cust_set_active(const struct pp_windows *w, struct customer *c, uint32_t sl,
                                   uint32_t v)
{
    if (!c->wide && v != NO_ACTIVE && v >= UINT16_MAX) {
        pp_cust_relayout(w, c, true, c->dense_sup);
    }
    char *r = c->blk + cust_sums_bytes(w);
    if (c->wide) {
        ((uint32_t *)(void *)r)[sl] = v;
    }
    else {
        ((uint16_t *)(void *)r)[sl] = v == NO_ACTIVE ? UINT16_MAX : (uint16_t)v;
    }
}

/* Dense support only: weighted tickets of slot sl (<= UINT16_MAX),
 * widening when needed. */
static inline void cust_set_wt(const struct pp_windows *w, struct customer *c, uint32_t sl,
                               uint32_t v)
{
    if (!c->wide && v > UINT8_MAX) {
        pp_cust_relayout(w, c, true, true);
    }
    char *r = c->blk + cust_sums_bytes(w) + (size_t)w->width * (c->wide ? 4 : 2);
    if (c->wide) {
        ((uint16_t *)(void *)r)[sl] = (uint16_t)v;
    }
    else {
        ((uint8_t *)r)[sl] = (uint8_t)v;
    }
}

/* Support values of `day` into cnt, weighted tickets returned (zeros when
 * the day has none). */
static inline uint32_t cust_sup_get(const struct pp_windows *w, const struct customer *c,
                                    int32_t day, uint8_t cnt[4])
{
    if (c->dense_sup) {
        uint32_t sl = pp_slot_of(w->width, day);
        const uint8_t *r = cust_cnt(w, c, sl);
        cnt[0] = r[0];
        cnt[1] = r[1];
        cnt[2] = r[2];
        cnt[3] = r[3];
        return cust_wt(w, c, sl);
    }
    /* Newest last: the day being finalized is near the end. */
    for (uint32_t i = c->n_sup; i-- > 0;) {
        const struct sday *e = &c->sup[i];
        if (e->day == day) {
            cnt[0] = e->cnt[0];
            cnt[1] = e->cnt[1];
            cnt[2] = e->cnt[2];
            cnt[3] = e->cnt[3];
            return e->wt;
        }
        if (e->day < day) {
            break;
        }
    }
    cnt[0] = cnt[1] = cnt[2] = cnt[3] = 0;
    return 0;
}

struct cpart_int {
    uint64_t wt, active, opened, esc, resp, pos;
    uint32_t customers;
};

/* A day's remembered event ids (an open-addressing set), and the log of
 * who they belong to: appended in order when an event is applied (cheap),
 * handed out to the customers' key lists only when state is written
 * (pp_cstage_flush_dirty, pp_cstage_dump), so a stage that never persists
 * pays nothing for it. */
struct dlog {
    uint64_t key;
    uint32_t ci; /* the customer, UINT32_MAX: an event that touched none */
};

struct dedup_day {
    int32_t day;
    uint32_t n, cap;
    uint64_t *keys;
    struct dlog *log;
    uint32_t n_log, cap_log, handed; /* log[0, handed) is in the key lists */
};

struct pp_cstage {
    struct pp_model_conf conf;
    struct pp_windows w;
    uint32_t source, sources;
    uint64_t token; /* names this object in the assessments' hints */

    struct pp_idmap *customer_ids;
    struct customer *customers;
    uint32_t customers_cap;
    uint32_t *csorted;
    uint32_t csorted_n;

    struct pp_idmap *partner_ids; /* stage-local: the links' and deals' partners */
    struct pp_idmap *product_ids; /* stage-local: the cohort products */
    struct cpart_int *today;      /* [product][band] partials of the day being closed */

    struct dedup_day *dedup; /* width slots */
    uint64_t *spare_keys;    /* a forgotten day's table, kept for the next new day */
    uint32_t spare_cap;

    int64_t watermark;
    int32_t min_day, max_day, last_eval;
    int32_t eod_sent;    /* the newest EOD day emitted, NO_DAY before any */
    int32_t last_closed; /* the newest day close_day finalized (not a quiet jump's) */

    uint32_t last_ci;     /* the customer the event being applied touched, or UINT32_MAX */
    const char *pre_id;   /* the customer id of the event being applied, NULL between events */
    uint64_t pre_h;       /* ... and its hash (its id map slot was requested early) */
    struct ckey *orphans; /* dedup keys of events that touched no customer */
    uint32_t n_orphans, cap_orphans;

    struct pp_xrec *queue; /* DEAL / REVERSAL records not yet emitted */
    uint32_t n_queue, cap_queue;

    uint32_t *dirty_list; /* customers changed since the last flush */
    uint32_t n_dirty, cap_dirty;
    bool meta_dirty;
    bool ephemeral; /* never written: no dedup log, no dirty list (pp_model) */

    struct pp_model_stats stats;
};

/* ---- partners stage ------------------------------------------------------ */

struct ledger_deal {
    uint64_t deal;
    double acv;
    float discount; /* NAN unknown */
    int32_t close;
    int32_t known;
    int32_t quarter;
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
    uint32_t pair;
    int severity;
    double cpi_s;
    int dominant;
};

struct partner {
    struct ledger_deal *ledger;
    uint32_t n_ledger, cap_ledger;
    struct reversal *rev;
    uint32_t n_rev, cap_rev;
    bool dirty;   /* ledger or reversals need sorting */
    bool changed; /* changed since the last flush_dirty */
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

/* One partner x customer pair: its CUSTOMER_PRESSURE machine and the values
 * of the last day it was assessed. */
struct pair {
    int32_t partner;
    struct pp_rule_state rule;
    float cpi_s, cpi_l, h_s, h_l, a;
    float partner_acv;
    int16_t health;
    uint8_t touched;
};

struct pcust {
    struct pair *pairs; /* in link order: the first PP_MODEL_MAX_LINKS partners */
    uint8_t n, cap;
    bool changed; /* a pair changed since the last flush_dirty */
};

/* Cohort day partial (product x band) and its window sums. */
struct cpart {
    double wt, active, opened, esc, resp, pos;
    uint32_t customers;
};

struct pending_alert {
    struct pp_alert alert;
    int rule;        /* 0 CUSTOMER, 1 PARTNER, 2 STUFFING */
    int32_t partner; /* index, for parent lookup */
};

/* A day whose records are buffered until every source closed it. */
struct pday {
    int32_t day;
    bool marked; /* some source evaluated it */
    bool begun;  /* cohort windows and push signals done (streaming) */
    struct pp_xrec_cohort *cohort;
    uint32_t n_cohort, cap_cohort;
    struct pp_xrec_assess *assess;
    uint32_t n_assess, cap_assess;
};

/* Source index -> our index (+1, 0 unknown): the assessments' hints. */
struct hint_map {
    uint64_t owner; /* the customers stage object the indexes are of */
    uint32_t *v;
    uint32_t n;
};

struct pp_pstage {
    struct pp_model_conf conf;
    struct pp_windows w;
    uint32_t sources;
    struct hint_map *hints; /* 3 per source: customers, partners, products */
    int32_t *eod;           /* per source: its newest EOD day, NO_DAY before any */
    uint8_t *eflags;        /* per source: flags of that EOD */
    /* per source: left behind by pp_pstage_force (MODEL.md §1's maximum
     * wait): not waited for until its end-of-day reaches the last
     * evaluated day again. Not state: a restarted stage waits once more. */
    bool *absent;
    uint32_t n_absent;

    struct pp_idmap *customer_ids;
    struct pcust *customers;
    uint32_t customers_cap;

    struct pp_idmap *partner_ids;
    struct partner *partners;
    uint32_t partners_cap;
    uint32_t *psorted;
    uint32_t psorted_n;

    struct pp_idmap *product_ids;
    struct cpart *cday;       /* [product][band][width] */
    struct cpart *cwin;       /* [product][band][nwin] */
    uint32_t cohort_products; /* products cday and cwin hold rows for */

    int32_t last_eval;
    int32_t first_reversal_day;

    bool stream;       /* one source, evaluated as it arrives (pp_model only) */
    struct pday *days; /* pending days, sorted by day */
    uint32_t n_days, cap_days;

    struct pending_alert *pend;
    uint32_t n_pend, cap_pend;

    /* day scratch: peer discount histogram and QE sums (all partners) */
    uint32_t *hist_all;
    uint32_t *hist_own;
    double all_acv, all_qe_acv;
    uint32_t all_deals, all_disc_deals;
    double *scratch;
    uint32_t scratch_cap;

    /* changelog bookkeeping */
    uint32_t *dirty_partners;
    uint32_t n_dirty_p, cap_dirty_p;
    uint32_t *dirty_pairs; /* customers with a changed pair */
    uint32_t n_dirty_x, cap_dirty_x;
    bool meta_dirty;
    bool all_dirty; /* a day was evaluated since the last flush: every partner changed */

    struct pp_model_stats stats;
    pp_pstage_day_cb *day_cb;
    void *day_opaque;
};

/* pp_model's partners stage evaluates its one source's assessments as they
 * arrive instead of buffering the day. Not for a runtime: a flush in the
 * middle of a day would persist half of it. */
void pp_pstage_set_stream(struct pp_pstage *s, bool on);

/* pp_model's customers stage is never written (no changelog, no snapshot):
 * it keeps neither the dedup log nor the dirty list, which only serve the
 * writes — at 1M customers that is ~40 bytes per event of the remembered
 * days. pp_cstage_flush_dirty and pp_cstage_dump abort on such a stage. */
void pp_cstage_set_ephemeral(struct pp_cstage *s, bool on);

/* Appends a dedup key to a list (the customer's or the orphans'). */
void pp_ckey_add(struct ckey **keys, uint32_t *n, uint32_t *cap, int32_t day, uint64_t key);
bool pp_dedup_put(struct dedup_day *dd, uint64_t key);
void pp_cstage_customer_init(struct pp_cstage *s, uint32_t idx);
void pp_cstage_dedup_restore(struct pp_cstage *s, int32_t day, uint64_t key);
/* Whether the customer has a link to the partner (pp_model's pair view
 * before the pair's first evaluated day). */
bool pp_cstage_has_link(const struct pp_cstage *s, const char *partner_id, const char *customer_id);
/* Finalizes, for every customer whose record is older than the stage's
 * last closed day, the days in between (after a restore: a customer is
 * written only when an event changes it, and a day's finalization is a
 * function of the customer's own state, so replaying it is exact). */
void pp_cstage_settle(struct pp_cstage *s);
/* Hands the dedup logs' new entries to the customers' and orphans' lists. */
void pp_cstage_keys_handout(struct pp_cstage *s);
void pp_pstage_partner_init(struct pp_pstage *m, uint32_t idx);
/* Grows the cohort tables to every product the stage has interned. */
void pp_pstage_cohort_fit(struct pp_pstage *m);
void pp_pstage_customer_init(struct pp_pstage *m, uint32_t idx);
int pp_pstage_pair_get(struct pp_pstage *m, uint32_t ci, int32_t pi, bool create);

/* pp_cstage_apply_batch / pp_model_apply_batch with the look-ahead distance
 * d (0..21) instead of the one chosen: for bench_processor's --look-d, which
 * compares distances batch by batch within one run. */
void pp_cstage_apply_batch_d(struct pp_cstage *s, const struct pp_event *evs, size_t n,
                             enum pp_apply_result *res, unsigned d);
void pp_model_apply_batch_d(struct pp_model *m, const struct pp_event *evs, size_t n,
                            enum pp_apply_result *res, unsigned d);

#endif
