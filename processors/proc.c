/*
 * proc.c — the walking skeleton's processor: event time, attribution, one
 * rule. See proc.h for the contract.
 *
 * Event time: the watermark is given by the caller; day D is closed
 * (evaluated, then frozen) once watermark >= D+1 00:00 + allowed_lateness. An
 * event for a day already evaluated is reported PP_APPLY_TOO_LATE and changes
 * nothing, which keeps every emitted transition final.
 *
 * State per customer: its attribution (the partner of its latest closed-won
 * deal) and a dayring of tickets opened, wide enough for the rule window plus
 * the lateness. Attribution is applied when a day is evaluated, not when a
 * ticket arrives, so the result does not depend on whether the deal or the
 * tickets were consumed first (different topics and partitions arrive in no
 * particular order). State per partner: the rule's state machine.
 */
#include "proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dayring.h"
#include "idmap.h"
#include "palloc.h"
#include "ptime.h"

#define NO_DAY INT32_MIN

struct customer {
    int32_t partner; /* index into partners, or -1 */
    int32_t attributed_day;
    struct pp_dayring *tickets; /* NULL until the first ticket */
};

enum rule_state { RULE_INACTIVE = 0, RULE_FIRING };

struct partner {
    uint64_t window_sum; /* scratch for the day being evaluated */
    enum rule_state state;
    int32_t first_seen_day;
};

struct pp_proc {
    struct pp_proc_conf conf;
    struct pp_idmap *customer_ids;
    struct customer *customers;
    uint32_t customers_cap;
    struct pp_idmap *partner_ids;
    struct partner *partners;
    uint32_t partners_cap;
    uint32_t *sorted; /* partner indexes by id, for deterministic output */
    uint32_t sorted_n;
    uint16_t ring_width;
    int64_t watermark;
    int32_t min_day;
    int32_t max_day; /* newest event day applied */
    int32_t last_eval_day;
    struct pp_proc_stats stats;
    pp_proc_day_cb *day_cb;
    void *day_opaque;
};

void pp_proc_conf_defaults(struct pp_proc_conf *conf)
{
    memset(conf, 0, sizeof(*conf));
    snprintf(conf->tenant, sizeof(conf->tenant), "%s", "default");
    conf->allowed_lateness_ms = 24 * INT64_C(3600000);
    conf->surge_window_days = 7;
    conf->surge_threshold = 20;
}

struct pp_proc *pp_proc_new(const struct pp_proc_conf *conf)
{
    struct pp_proc *ctx = pp_xcalloc(1, sizeof(*ctx));
    ctx->conf = *conf;
    ctx->customer_ids = pp_idmap_new();
    ctx->partner_ids = pp_idmap_new();
    int64_t lateness_days = (conf->allowed_lateness_ms + PP_MS_PER_DAY - 1) / PP_MS_PER_DAY;
    int64_t width = (int64_t)conf->surge_window_days + lateness_days + PP_PROC_SKEW_DAYS + 2;
    ctx->ring_width = (uint16_t)(width > PP_DAYRING_MAX_WIDTH ? PP_DAYRING_MAX_WIDTH : width);
    ctx->watermark = INT64_MIN;
    ctx->min_day = NO_DAY;
    ctx->max_day = NO_DAY;
    ctx->last_eval_day = NO_DAY;
    return ctx;
}

int pp_proc_set_conf(struct pp_proc *ctx, const struct pp_proc_conf *conf, char *errstr,
                     size_t errstr_size)
{
    const char *key =
        ctx->conf.surge_window_days != conf->surge_window_days ? "rules.ticket_surge.window_days"
        : strcmp(ctx->conf.tenant, conf->tenant) != 0          ? "tenant"
        : ctx->conf.allowed_lateness_ms != conf->allowed_lateness_ms ? "processing.allowed_lateness"
                                                                     : NULL;
    if (key) {
        snprintf(errstr, errstr_size, "key '%s': cannot change while running (restart instead)",
                 key);
        return -1;
    }
    ctx->conf = *conf;
    return 0;
}

void pp_proc_destroy(struct pp_proc *ctx)
{
    if (ctx == NULL) {
        return;
    }
    for (uint32_t i = 0; i < pp_idmap_count(ctx->customer_ids); i++) {
        pp_dayring_destroy(ctx->customers[i].tickets);
    }
    free(ctx->partners);
    free(ctx->customers);
    free(ctx->sorted);
    pp_idmap_destroy(ctx->partner_ids);
    pp_idmap_destroy(ctx->customer_ids);
    free(ctx);
}

static uint32_t partner_intern(struct pp_proc *ctx, const char *id)
{
    bool created;
    uint32_t idx = pp_idmap_intern(ctx->partner_ids, id, &created);
    if (created) {
        if (idx == ctx->partners_cap) {
            ctx->partners_cap = ctx->partners_cap ? ctx->partners_cap * 2 : 16;
            ctx->partners = pp_xrealloc(ctx->partners, ctx->partners_cap * sizeof(*ctx->partners));
        }
        struct partner *p = &ctx->partners[idx];
        memset(p, 0, sizeof(*p));
        p->first_seen_day = NO_DAY;
    }
    return idx;
}

static struct customer *customer_intern(struct pp_proc *ctx, const char *id)
{
    bool created;
    uint32_t idx = pp_idmap_intern(ctx->customer_ids, id, &created);
    if (created) {
        if (idx == ctx->customers_cap) {
            ctx->customers_cap = ctx->customers_cap ? ctx->customers_cap * 2 : 64;
            ctx->customers =
                pp_xrealloc(ctx->customers, ctx->customers_cap * sizeof(*ctx->customers));
        }
        ctx->customers[idx].partner = -1;
        ctx->customers[idx].attributed_day = NO_DAY;
        ctx->customers[idx].tickets = NULL;
    }
    return &ctx->customers[idx];
}

static void apply_deal(struct pp_proc *ctx, const struct pp_deal *deal)
{
    if (deal->event_type != PP_DEAL_CLOSED_WON) {
        return;
    }
    uint32_t p = partner_intern(ctx, deal->partner_id);
    struct customer *c = customer_intern(ctx, deal->customer_id);
    /* The latest closed-won deal owns the customer; a late-arriving older
     * deal does not take it back. */
    if (c->attributed_day == NO_DAY || deal->close_date >= c->attributed_day) {
        c->partner = (int32_t)p;
        c->attributed_day = deal->close_date;
    }
}

static enum pp_apply_result apply_support(struct pp_proc *ctx, const struct pp_support *sup,
                                          int32_t day)
{
    if (sup->event_type != PP_TICKET_OPENED) {
        return PP_APPLY_OK;
    }
    struct customer *c = customer_intern(ctx, sup->customer_id);
    if (c->tickets == NULL) {
        c->tickets = pp_dayring_new(ctx->ring_width);
    }
    if (!pp_dayring_add(c->tickets, day, 1)) {
        ctx->stats.skewed++;
        return PP_APPLY_SKEWED;
    }
    return PP_APPLY_OK;
}

static int cmp_partner(const void *a, const void *b, void *arg)
{
    const struct pp_idmap *ids = arg;
    return strcmp(pp_idmap_key(ids, *(const uint32_t *)a), pp_idmap_key(ids, *(const uint32_t *)b));
}

/* qsort has no context argument in C11; the partner count changes rarely, so
 * an insertion into the already-sorted array is enough. */
static void sort_partners(struct pp_proc *ctx)
{
    uint32_t n = pp_idmap_count(ctx->partner_ids);
    if (n == ctx->sorted_n) {
        return;
    }
    ctx->sorted = pp_xrealloc(ctx->sorted, n * sizeof(uint32_t));
    for (uint32_t idx = ctx->sorted_n; idx < n; idx++) {
        uint32_t pos = idx;
        while (pos > 0 && cmp_partner(&ctx->sorted[pos - 1], &idx, ctx->partner_ids) > 0) {
            ctx->sorted[pos] = ctx->sorted[pos - 1];
            pos--;
        }
        ctx->sorted[pos] = idx;
    }
    ctx->sorted_n = n;
}

static void fill_alert(const struct pp_proc *ctx, uint32_t pidx, const struct partner *p,
                       int32_t day, uint64_t count, struct pp_alert *a)
{
    const char *pid = pp_idmap_key(ctx->partner_ids, pidx);
    char first[11], today[11];
    pp_day_format(p->first_seen_day, first, sizeof(first));
    pp_day_format(day, today, sizeof(today));

    memset(a, 0, sizeof(*a));
    snprintf(a->rule_id, sizeof(a->rule_id), "%s", "TICKET_SURGE");
    snprintf(a->dedup_key, sizeof(a->dedup_key), "cpi:v1:%s:TICKET_SURGE:%s:*", ctx->conf.tenant,
             pid);
    snprintf(a->alert_id, sizeof(a->alert_id), "%s:%s", a->dedup_key, first);
    snprintf(a->tenant, sizeof(a->tenant), "%s", ctx->conf.tenant);
    snprintf(a->partner_id, sizeof(a->partner_id), "%s", pid);
    a->scope = PP_SCOPE_PARTNER;
    a->severity = PP_SEV_WARNING;
    a->first_seen_day = p->first_seen_day;
    a->fired_day = p->first_seen_day;
    a->eval_day = day;
    a->value = (double)count;
    a->threshold = (double)ctx->conf.surge_threshold;
    a->window_days = (int32_t)ctx->conf.surge_window_days;
    snprintf(a->summary, sizeof(a->summary),
             "%llu support tickets opened by %s's customers in the %u days to %s "
             "(threshold %u)",
             (unsigned long long)count, pid, ctx->conf.surge_window_days, today,
             ctx->conf.surge_threshold);
}

static void evaluate_day(struct pp_proc *ctx, int32_t day, pp_alert_cb *cb, void *opaque)
{
    sort_partners(ctx);
    int32_t from = day - (int32_t)ctx->conf.surge_window_days + 1;
    for (uint32_t i = 0; i < ctx->sorted_n; i++) {
        ctx->partners[i].window_sum = 0;
    }
    for (uint32_t i = 0; i < pp_idmap_count(ctx->customer_ids); i++) {
        const struct customer *c = &ctx->customers[i];
        if (c->tickets == NULL) {
            continue;
        }
        if (c->partner < 0 || c->attributed_day > day) {
            if (c->partner < 0) {
                ctx->stats.unattributed_tickets += pp_dayring_sum(c->tickets, day, day);
            }
            continue;
        }
        ctx->partners[c->partner].window_sum += pp_dayring_sum(c->tickets, from, day);
    }
    for (uint32_t i = 0; i < ctx->sorted_n; i++) {
        uint32_t pidx = ctx->sorted[i];
        struct partner *p = &ctx->partners[pidx];
        uint64_t count = p->window_sum;
        bool breach = count >= ctx->conf.surge_threshold;
        struct pp_alert alert;
        if (p->state == RULE_INACTIVE && breach) {
            p->state = RULE_FIRING;
            p->first_seen_day = day;
            fill_alert(ctx, pidx, p, day, count, &alert);
            alert.status = PP_ALERT_FIRING;
        }
        else if (p->state == RULE_FIRING && !breach) {
            p->state = RULE_INACTIVE;
            fill_alert(ctx, pidx, p, day, count, &alert);
            alert.status = PP_ALERT_RESOLVED;
        }
        else {
            continue;
        }
        ctx->stats.alerts[alert.status]++;
        if (cb) {
            cb(&alert, opaque);
        }
    }
    ctx->stats.days_evaluated++;
    ctx->last_eval_day = day;
    if (ctx->day_cb) {
        ctx->day_cb(ctx, day, ctx->day_opaque);
    }
}

static void evaluate_closed(struct pp_proc *ctx, pp_alert_cb *cb, void *opaque)
{
    if (ctx->watermark == INT64_MIN || ctx->min_day == NO_DAY) {
        return;
    }
    int32_t closed = pp_day_from_ms(ctx->watermark - ctx->conf.allowed_lateness_ms) - 1;
    int32_t start = ctx->last_eval_day == NO_DAY ? ctx->min_day : ctx->last_eval_day + 1;
    /* A day more than a window after the newest event has every window
     * empty, and every firing alert resolved on the first such day: a long
     * watermark jump (an idle timer after a pause) evaluates up to there and
     * then skips the rest, which would change nothing. */
    int64_t quiet = (int64_t)ctx->max_day + ctx->conf.surge_window_days + 1;
    for (int64_t d = start; d <= closed; d++) {
        if (d > quiet) {
            ctx->last_eval_day = closed;
            break;
        }
        evaluate_day(ctx, (int32_t)d, cb, opaque);
    }
}

enum pp_apply_result pp_proc_apply(struct pp_proc *ctx, const struct pp_event *ev)
{
    int32_t day = pp_day_from_ms(ev->occurred_at_ms);
    if (ctx->last_eval_day != NO_DAY && day <= ctx->last_eval_day) {
        ctx->stats.too_late++;
        return PP_APPLY_TOO_LATE;
    }
    enum pp_apply_result res = PP_APPLY_OK;
    switch (ev->type) {
    case PP_EV_DEAL:
        apply_deal(ctx, &ev->u.deal);
        break;
    case PP_EV_SUPPORT:
        res = apply_support(ctx, &ev->u.support, day);
        break;
    case PP_EV_CONSUMPTION:
        break; /* not used by the skeleton rule */
    }
    if (res != PP_APPLY_OK) {
        return res;
    }
    if ((unsigned)ev->type < 4) {
        ctx->stats.events[ev->type]++;
    }
    if (ctx->min_day == NO_DAY || day < ctx->min_day) {
        ctx->min_day = day;
    }
    if (ctx->max_day == NO_DAY || day > ctx->max_day) {
        ctx->max_day = day;
    }
    return PP_APPLY_OK;
}

void pp_proc_advance(struct pp_proc *ctx, int64_t watermark_ms, pp_alert_cb *cb, void *opaque)
{
    if (watermark_ms > ctx->watermark) {
        ctx->watermark = watermark_ms;
    }
    evaluate_closed(ctx, cb, opaque);
}

int64_t pp_proc_watermark(const struct pp_proc *ctx)
{
    return ctx->watermark;
}

const struct pp_proc_stats *pp_proc_stats(const struct pp_proc *ctx)
{
    return &ctx->stats;
}

uint32_t pp_proc_partner_count(const struct pp_proc *ctx)
{
    return pp_idmap_count(ctx->partner_ids);
}

int pp_proc_partner_view(const struct pp_proc *ctx, uint32_t idx, struct pp_proc_partner_view *out)
{
    if (idx >= pp_idmap_count(ctx->partner_ids)) {
        return -1;
    }
    const struct partner *p = &ctx->partners[idx];
    snprintf(out->partner_id, sizeof(out->partner_id), "%s", pp_idmap_key(ctx->partner_ids, idx));
    /* window_sum is the scratch of evaluate_day(): after it, the count of
     * the last evaluated day (0 for a partner created since). */
    out->tickets_in_window = p->window_sum;
    out->firing = p->state == RULE_FIRING;
    out->first_seen_day = p->first_seen_day;
    return 0;
}

int32_t pp_proc_last_eval_day(const struct pp_proc *ctx)
{
    return ctx->last_eval_day;
}

void pp_proc_set_day_cb(struct pp_proc *ctx, pp_proc_day_cb *cb, void *opaque)
{
    ctx->day_cb = cb;
    ctx->day_opaque = opaque;
}
