/*
 * stage.h — the model of MODEL.md §1 split into its two sub-topologies: the
 * customers stage (one per customers task, each holding the customers that
 * hash to its partition) and the partners stage (one task), joined by
 * exchange records (struct pp_xrec) that the runtime carries on the internal
 * exchange topic.
 *
 * Why a split and not one object: the exactly-once runtime
 * (docs/runtime.md) runs N customers tasks and one partners task in
 * different consumer-group members. N customer stages feeding one partner
 * stage produce exactly the alert transitions of one pp_model (which is now
 * itself one customers stage feeding one partners stage directly).
 *
 * Data flow per closed event-time day D (customers stage, in this order):
 *   - DEAL / REVERSAL records: every closed_won and every negative
 *     amendment, cancellation or credit applied since the last advance (or
 *     pp_cstage_drain), in apply order; the partners stage applies them to
 *     its ledger when offered (they are not buffered by day, exactly as the
 *     monolith applied them when the event arrived);
 *   - COHORT records: the stage's partial sums for D per product x age band
 *     (integers: summed across stages they are exact in any order);
 *   - ASSESS records: one per customer x partner link that has a visible
 *     deal, in customer-id then link order, carrying every customer-side
 *     fact (SHELF, COMMIT_GAP, OVERSIZE, OVERSELL, exposure shares, QEDEAL
 *     candidates) and the customer's own window sums (for LOAD, ESC, CSAT and
 *     the leave-one-out cohort pools, computed on the partners side);
 *   - EOD(D): the stage has sent everything for every day <= D.
 * After the days, one more EOD(closed) without PP_EOD_EVALUATED closes the
 * days the stage skipped (MODEL's quiet jump: a year after its newest event
 * every window is empty) or had nothing for.
 *
 * The partners stage evaluates day D once the newest EOD of every source is
 * >= D and some source evaluated D: cohort windows from the summed partials,
 * the partner push signals, every assessment in customer-id then link order
 * (LOAD, ESC, CSAT, CPI, health, CUSTOMER_PRESSURE), every partner
 * (PARTNER_PRESSURE, STUFFING_PATTERN), then its alert transitions sorted as
 * pp_model sorts them.
 *
 * libc and libm only (DESIGN.md §2). docs/model.md "Sub-topologies" tells the
 * edge cases where N > 1 stages can differ from one pp_model.
 */
#ifndef PP_STAGE_H
#define PP_STAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alert.h"
#include "event.h"
#include "model.h"

/* ---- exchange records ---------------------------------------------------- */

#define PP_XREC_VERSION    1
#define PP_XREC_MAX_QEDEAL 8    /* a customer holds at most 8 deals */
#define PP_XREC_MAX_BYTES  1024 /* pp_xrec_encode never needs more */

enum pp_xrec_kind {
    PP_XREC_DEAL = 1,     /* a closed_won for the partner's ledger */
    PP_XREC_REVERSAL = 2, /* a cancellation, credit or negative amendment */
    PP_XREC_COHORT = 3,   /* one product x band partial of day D */
    PP_XREC_ASSESS = 4,   /* one customer x partner assessment of day D */
    PP_XREC_EOD = 5,      /* end of day D from one source */
};

/* A risk signal as the customers side computed it (struct pp_sig). */
struct pp_xsig {
    bool present;
    double value;
    double risk;
};

struct pp_xrec_deal {
    char partner_id[PP_ID_MAX];
    char customer_id[PP_ID_MAX]; /* the customer it was sold to */
    uint64_t deal;               /* pp_hash_str(deal_id) */
    double acv;                  /* annualised contract value */
    float discount;              /* NAN when unknown */
    int32_t close;               /* close date (day) */
    int32_t known;               /* visible from: max(close, event day) */
    uint8_t qe;                  /* closed in a quarter-end window */
    uint8_t kind;                /* enum pp_deal_kind */
    uint64_t hint_owner;         /* as in pp_xrec_assess: not on the wire */
    uint32_t hint_partner;
};

struct pp_xrec_reversal {
    char partner_id[PP_ID_MAX];
    uint64_t deal;
    /* NAN: the whole deal (a cancellation without amount); 0: none (the
     * partner is only registered, as the monolith did) */
    double acv;
};

struct pp_xrec_cohort {
    char product_id[PP_ID_MAX];
    uint8_t band; /* 0 onboarding, 1 ramping, 2 mature */
    uint32_t customers;
    uint64_t wt, active, opened, esc, resp, pos;
};

/* A customer's own sums over one window: what leave-one-out takes out of a
 * cohort pool, and the inputs of LOAD (wt, active) and ESC/CSAT. */
struct pp_xown {
    uint64_t active;
    uint32_t wt, opened, esc, resp, pos;
};

/* Windows of an assessment's sums, short then long. */
enum { PP_XW_LOAD_S = 0, PP_XW_LOAD_L, PP_XW_RATIO_S, PP_XW_RATIO_L, PP_XW__COUNT };

struct pp_xrec_assess {
    char customer_id[PP_ID_MAX];
    char partner_id[PP_ID_MAX];
    char product_id[PP_ID_MAX]; /* "" when unknown (no cohort) */
    uint8_t link;               /* the link's index in the customer (evaluation order) */
    int8_t band;                /* today's age band, -1 none */
    bool has_seats;             /* LOAD is computed only then */
    bool touched;               /* a deal closed in the last 365 d */
    /* customer level, both modes (0 short, 1 long) */
    struct pp_xsig shelf[2];
    double exp_util0;                        /* SHELF's baseline in the alert */
    uint32_t load_wdays[2];                  /* days LOAD's mean active seats is over */
    struct pp_xown win[PP_XW__COUNT];        /* the customer's whole-window sums */
    struct pp_xown band_own[PP_XW__COUNT];   /* its days in today's band pool */
    struct pp_xown mature_own[PP_XW__COUNT]; /* its days in the mature pool (band >= 1) */
    /* partner x customer */
    struct pp_xsig gap[2], oversell, oversize;
    double s365, s180, partner_acv;
    double oversell_o, oversell_seats; /* the partner's OVERSELL roll-up */
    uint32_t oversell_deals;
    uint8_t n_qedeal; /* deals of the last 180 d with a discount: QEDEAL candidates */
    uint8_t qedeal_qe[PP_XREC_MAX_QEDEAL];
    float qedeal_disc[PP_XREC_MAX_QEDEAL];
    int32_t qedeal_close[PP_XREC_MAX_QEDEAL];
    /* The source's own indexes of the customer, the partner and the
     * product, and a token naming the customers stage object that wrote
     * them: a lookup cache for a partners stage fed directly (pp_model),
     * valid while that object lives. Not on the wire: a decoded record has
     * hint_owner 0 (no hints) and the ids are looked up. */
    uint64_t hint_owner;
    uint32_t hint_customer, hint_partner, hint_product;
};

/* EOD(D) from a source: it has sent everything it has for every day <= D.
 * EVALUATED: it evaluated D itself (its COHORT and ASSESS records for D
 * precede the marker). STARTED: the source has a last evaluated day, so it
 * refuses events of days <= D from now on (PP_APPLY_TOO_LATE); without it
 * the promise is soft (no event yet: an older first event is still taken, as
 * pp_model takes it, and the partners side drops its records for days it has
 * evaluated already). A source's markers only grow, except from soft to a
 * first evaluated day. */
#define PP_EOD_EVALUATED 1u
#define PP_EOD_STARTED   2u

struct pp_xrec_eod {
    uint8_t flags;
};

struct pp_xrec {
    uint8_t kind;    /* enum pp_xrec_kind */
    uint32_t source; /* the customers stage (partition) that wrote it */
    int32_t day;     /* the event day (DEAL, REVERSAL) or the evaluated day */
    union {
        struct pp_xrec_deal deal;
        struct pp_xrec_reversal rev;
        struct pp_xrec_cohort cohort;
        struct pp_xrec_assess assess;
        struct pp_xrec_eod eod;
    } u;
};

typedef void(pp_xrec_cb)(const struct pp_xrec *x, void *opaque);

/* Compact little-endian binary, a version byte first (PP_XREC_VERSION).
 * Returns the bytes written, or 0 when cap is too small (PP_XREC_MAX_BYTES
 * always suffices). */
size_t pp_xrec_encode(const struct pp_xrec *x, uint8_t *buf, size_t cap);
/* Bounds-checked: 0, or -1 with errstr for truncated input, trailing bytes,
 * an unknown version or kind, or out-of-range values. */
int pp_xrec_decode(const uint8_t *buf, size_t len, struct pp_xrec *out, char *errstr,
                   size_t errstr_size);

/* ---- customers stage ------------------------------------------------------ */

struct pp_cstage;

/* source: this stage's partition in [0, sources). conf must be valid. */
struct pp_cstage *pp_cstage_new(const struct pp_model_conf *conf, uint32_t source,
                                uint32_t sources);
void pp_cstage_destroy(struct pp_cstage *s);
/* As pp_model_set_conf. */
int pp_cstage_set_conf(struct pp_cstage *s, const struct pp_model_conf *conf, char *errstr,
                       size_t errstr_size);

/* As pp_model_apply (dedup, PP_APPLY_TOO_LATE, PP_APPLY_SKEWED). */
enum pp_apply_result pp_cstage_apply(struct pp_cstage *s, const struct pp_event *ev);

/* Applies evs[0..n) in order, res[i] the result of evs[i]: exactly what n
 * calls of pp_cstage_apply return and do (state, stats, dedup, the records
 * queued, the order new customers are numbered in), only faster with large
 * state, as the memory an event needs is requested a few events before it
 * is applied. The events are borrowed for the call; nothing else may use
 * the stage during it. Batches of 16..128 events hide nearly all of it; a
 * batch may end anywhere (a commit, a tick, a rebalance cut it): the next
 * simply starts without lookahead. */
void pp_cstage_apply_batch(struct pp_cstage *s, const struct pp_event *evs, size_t n,
                           enum pp_apply_result *res);

/* Emits the queued DEAL and REVERSAL records now (advance does it first
 * anyway). */
void pp_cstage_drain(struct pp_cstage *s, pp_xrec_cb *cb, void *opaque);

/* Moves the watermark (never back), closes every day it closed and emits the
 * records described at the top, then EOD(closed). The record is borrowed for
 * the duration of the call. */
void pp_cstage_advance(struct pp_cstage *s, int64_t watermark_ms, pp_xrec_cb *cb, void *opaque);

int64_t pp_cstage_watermark(const struct pp_cstage *s); /* INT64_MIN before any */
int32_t pp_cstage_last_day(const struct pp_cstage *s);  /* INT32_MIN before any */
/* The oldest event day held before the first evaluation (INT32_MIN none),
 * and how many days past the next day to evaluate (or past that oldest day)
 * an event may be before it is PP_APPLY_SKEWED: the runtime's alignment keeps
 * every input inside this. */
int32_t pp_cstage_first_day(const struct pp_cstage *s);
int32_t pp_cstage_room_days(const struct pp_model_conf *conf);
uint32_t pp_cstage_source(const struct pp_cstage *s);

/* The customer-side counters of pp_model_stats: events, too_late,
 * duplicates, skewed, ignored, tranche_overflow, link_overflow,
 * days_evaluated, customers, links, bytes_per_customer/tranche/link and
 * bytes_state. The others are 0. */
const struct pp_model_stats *pp_cstage_stats(const struct pp_cstage *s);

/* ---- partners stage ------------------------------------------------------- */

struct pp_pstage;

/* sources: the number of customers stages feeding it. */
struct pp_pstage *pp_pstage_new(const struct pp_model_conf *conf, uint32_t sources);
void pp_pstage_destroy(struct pp_pstage *s);
int pp_pstage_set_conf(struct pp_pstage *s, const struct pp_model_conf *conf, char *errstr,
                       size_t errstr_size);

/* Takes one exchange record (borrowed). DEAL and REVERSAL records are applied
 * at once; the others are buffered under their day. Every day that becomes
 * ready is evaluated inside the call, in order, its alert transitions
 * reported through cb (may be NULL). Returns 0; 1 when the record was
 * ignored because its day is already evaluated (a source that started late,
 * or a re-read record); -1 with errstr for a source out of range or an
 * unknown kind. The stage's state changes only when a DEAL or REVERSAL is
 * applied, an EOD is taken, or a whole day is evaluated inside one call, so
 * a changelog flush between two offers is always consistent; the buffered
 * records of pending days are not state (the runtime reads them again from
 * the exchange topic, from the first record of pp_pstage_pending_day()). */
int pp_pstage_offer(struct pp_pstage *s, const struct pp_xrec *x, pp_alert_cb *cb, void *opaque,
                    char *errstr, size_t errstr_size);

/* The oldest day with buffered records not yet evaluated, or INT32_MIN when
 * nothing is buffered (the runtime commits the exchange offset of that
 * day's first record). */
int32_t pp_pstage_pending_day(const struct pp_pstage *s);
int32_t pp_pstage_last_day(const struct pp_pstage *s); /* INT32_MIN before any */
/* After a restore: forget every source's end-of-day beyond the last evaluated
 * day. The runtime re-reads the exchange topic from the first record of the
 * oldest day not evaluated (end-of-day records included), so those markers
 * come again after the day's records; a restored marker would let a day be
 * evaluated before all its re-read records are back. */
void pp_pstage_rewind_sources(struct pp_pstage *s);

/* MODEL.md §1's maximum wait, run out: evaluates the oldest pending day now
 * without the sources that have not closed it (cb as in pp_pstage_offer).
 * Those are left behind: not waited for until their end-of-day reaches the
 * last evaluated day again (their records of evaluated days are ignored).
 * While any source is left behind, cohort baselines are the configured
 * fallbacks and every alert transition says so in its summary. Returns the
 * number of sources left behind now (0: nothing to force). */
uint32_t pp_pstage_force(struct pp_pstage *s, pp_alert_cb *cb, void *opaque);
/* Sources left behind by pp_pstage_force and not caught up yet. */
uint32_t pp_pstage_absent(const struct pp_pstage *s);

/* Called after each evaluated day, its alert transitions emitted. */
typedef void(pp_pstage_day_cb)(const struct pp_pstage *s, int32_t day, void *opaque);
void pp_pstage_set_day_cb(struct pp_pstage *s, pp_pstage_day_cb *cb, void *opaque);

/* The views of model.h, as of the last evaluated day. */
uint32_t pp_pstage_partner_count(const struct pp_pstage *s);
int pp_pstage_partner_view(const struct pp_pstage *s, uint32_t idx,
                           struct pp_model_partner_view *out);
int pp_pstage_pxc_view(const struct pp_pstage *s, const char *partner_id, const char *customer_id,
                       struct pp_model_pxc_view *out);
/* The partner-side counters: ledger_overflow, days_evaluated, alerts,
 * partners, bytes_per_partner/ledger_deal, bytes_state. */
const struct pp_model_stats *pp_pstage_stats(const struct pp_pstage *s);

/* ---- state serialisation (changelogs, snapshots) ------------------------- */

/* One store key and its value; vlen 0 is a tombstone (the key is gone).
 * Keys start with a type byte: 'c' + customer id (a customer stage's
 * customer), 'p' + partner id (a partner), 'x' + partner id + '\0' +
 * customer id (a partner x customer pair), 'm' (the stage's meta record).
 * The partners stage also has 'q' + product id (a cohort product's day ring
 * and window sums). Keys starting with '_' are never used by the stages:
 * the runtime keeps its own records (offsets, per-source watermarks) there.
 * Values are versioned compact binary (serial.c); both are borrowed for the
 * duration of the call. */
typedef void(pp_kv_cb)(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
                       void *opaque);

/* Every key changed since the last flush (value or tombstone; the stages
 * never delete a key today, so they write no tombstone). Call it after
 * pp_cstage_advance/drain, when no DEAL record is queued. A customer is
 * written when an event changed it (~0.5 KB in the scenarios), not when a
 * closed day only moved its rings: its record says which day it was
 * finalized up to, and a restored stage replays the days since (a day's
 * finalization depends on the customer's own state only). */
void pp_cstage_flush_dirty(struct pp_cstage *s, pp_kv_cb *cb, void *opaque);
/* Every key (a snapshot). Does not clear the dirty set. */
void pp_cstage_dump(const struct pp_cstage *s, pp_kv_cb *cb, void *opaque);
/* Restores one key into a stage built with the same conf and sources
 * (fresh, or being restored): last write wins. A tombstone resets a
 * customer to empty and is ignored by the partners stage (nothing there is
 * ever deleted). 0, or -1 with errstr for a malformed key, or a malformed,
 * truncated or unknown-version value (the key may then be half restored:
 * treat the stage as lost and rebuild it). */
int pp_cstage_restore_kv(struct pp_cstage *s, const uint8_t *key, size_t klen, const uint8_t *val,
                         size_t vlen, char *errstr, size_t errstr_size);

void pp_pstage_flush_dirty(struct pp_pstage *s, pp_kv_cb *cb, void *opaque);
void pp_pstage_dump(const struct pp_pstage *s, pp_kv_cb *cb, void *opaque);
int pp_pstage_restore_kv(struct pp_pstage *s, const uint8_t *key, size_t klen, const uint8_t *val,
                         size_t vlen, char *errstr, size_t errstr_size);

#endif
