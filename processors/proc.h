/*
 * proc.h — the processor: event-time bookkeeping, per-partner state and the
 * alert rules, as a pure function of the events it is given.
 *
 * The caller (the consumer loop, the backtest, a test) hands events in with
 * pp_proc_apply() and moves the watermark with pp_proc_advance(); every time
 * the watermark passes the end of a day plus the allowed lateness the
 * processor evaluates that day — "the daily tick" of MODEL.md §2.2 —
 * and reports alert transitions through the callback, in a deterministic
 * order (by rule, then partner id).
 *
 * This is the walking skeleton's model: it attributes each customer to the
 * partner of its latest closed-won deal and runs one rule, TICKET_SURGE
 * (support tickets opened by a partner's customers in the last N event days
 * at or above a threshold). The full model of MODEL.md replaces it.
 */
#ifndef PP_PROC_H
#define PP_PROC_H

#include <stddef.h>
#include <stdint.h>

#include "alert.h"
#include "event.h"

struct pp_proc_conf {
    char tenant[PP_ID_MAX];
    int64_t allowed_lateness_ms; /* MODEL.md §2.2: 24 h by default */
    uint32_t surge_window_days;  /* TICKET_SURGE window, 1..90 */
    uint32_t surge_threshold;    /* fire when tickets in window >= this */
};

/* MODEL.md's defaults (and the skeleton rule's). */
void pp_proc_conf_defaults(struct pp_proc_conf *conf);

enum pp_apply_result {
    PP_APPLY_OK = 0,
    PP_APPLY_TOO_LATE, /* its day was already evaluated: dead-letter it */
    PP_APPLY_SKEWED,   /* older than the state's horizon behind a faster input
                          partition (PP_PROC_SKEW_DAYS): dead-letter it */
};

/* How far (in event-time days) one input partition may run ahead of another
 * before the older one's events no longer fit the day rings. Partitions are
 * consumed concurrently, so one can be weeks ahead during a replay; the
 * streaming runtime bounds this by pausing partitions that run ahead. */
#define PP_PROC_SKEW_DAYS 62

struct pp_proc_stats {
    uint64_t events[4]; /* by enum pp_event_type */
    uint64_t too_late;
    uint64_t skewed;
    uint64_t unattributed_tickets;
    uint64_t days_evaluated;
    uint64_t alerts[3]; /* by enum pp_alert_status */
};

struct pp_proc;

/* conf is copied. Never NULL (aborts on OOM). Free with pp_proc_destroy(). */
struct pp_proc *pp_proc_new(const struct pp_proc_conf *conf);
void pp_proc_destroy(struct pp_proc *ctx);
/* Swaps the configuration of a running processor (SIGHUP reload), keeping
 * its state: the threshold applies from the next evaluated day. Refused (-1,
 * errstr naming the key) when the window, tenant or lateness changes. */
int pp_proc_set_conf(struct pp_proc *ctx, const struct pp_proc_conf *conf, char *errstr,
                     size_t errstr_size);

/* Applies one validated event to the state. Evaluation happens only in
 * pp_proc_advance(): the caller owns the watermark (see watermark.h). */
enum pp_apply_result pp_proc_apply(struct pp_proc *ctx, const struct pp_event *ev);

/* Moves the watermark forward (never back) and evaluates every day that
 * closes, calling cb for each alert transition. A single ordered stream (a
 * backtest, a test) simply advances to each event's time after applying it. */
void pp_proc_advance(struct pp_proc *ctx, int64_t watermark_ms, pp_alert_cb *cb, void *opaque);

int64_t pp_proc_watermark(const struct pp_proc *ctx); /* INT64_MIN before any event */
const struct pp_proc_stats *pp_proc_stats(const struct pp_proc *ctx);
uint32_t pp_proc_partner_count(const struct pp_proc *ctx);

/* Read-only view of one partner's state for the HTTP API (idx in
 * 0..pp_proc_partner_count()-1; dense, stable for the processor's life). The
 * values are those of the last evaluated day. Returns 0, or -1 for a bad idx. */
struct pp_proc_partner_view {
    char partner_id[PP_ID_MAX];
    uint64_t tickets_in_window; /* TICKET_SURGE count on the last evaluated day */
    int firing;                 /* TICKET_SURGE state machine is FIRING */
    int32_t first_seen_day;     /* of the current or last episode; INT32_MIN if none */
};
int pp_proc_partner_view(const struct pp_proc *ctx, uint32_t idx, struct pp_proc_partner_view *out);
int32_t pp_proc_last_eval_day(const struct pp_proc *ctx); /* INT32_MIN before the first */

/* Called after each evaluated day (once every partner's rule ran), so an
 * observer can sample per-partner views day by day (the HTTP history).
 * Borrowed ctx: read-only, for the call only. cb NULL to remove. */
typedef void(pp_proc_day_cb)(const struct pp_proc *ctx, int32_t day, void *opaque);
void pp_proc_set_day_cb(struct pp_proc *ctx, pp_proc_day_cb *cb, void *opaque);

#endif
