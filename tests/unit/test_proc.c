/*
 * test_proc.c — the walking skeleton's processor (processors/proc.h) and its
 * TICKET_SURGE rule, with exact expectations.
 *
 * Events are built by hand (a closed-won deal, a support ticket opened at a
 * UTC day and hour) and fed the way a single ordered stream feeds them:
 * pp_proc_apply(), then pp_proc_advance() to the event's time. Covers the
 * firing and resolving days and every field of the alerts, silence below the
 * threshold, the allowed lateness and PP_APPLY_TOO_LATE, independence from
 * the arrival order within the lateness, attribution that starts at the
 * deal's close date, partner-id output order, a new alert id per episode,
 * skewed partitions, and watermark jumps far ahead (bounded catch-up that
 * still evaluates the days holding state).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proc.h"
#include "ptime.h"

#define N(a)       (sizeof(a) / sizeof((a)[0]))
#define HOUR_MS    INT64_C(3600000)
#define MAX_ALERTS 64

/* ---- helpers ------------------------------------------------------------ */

static unsigned seq;

static int64_t at(int32_t day, int hour)
{
    return pp_day_to_ms(day) + hour * HOUR_MS;
}

static int32_t base_day(void)
{
    return pp_day_from_civil(2025, 3, 1);
}

static struct pp_event deal_won(const char *partner, const char *customer, int32_t close_day,
                                int64_t at_ms)
{
    struct pp_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = PP_EV_DEAL;
    snprintf(ev.event_id, sizeof(ev.event_id), "E-%u", ++seq);
    ev.occurred_at_ms = at_ms;
    struct pp_deal *d = &ev.u.deal;
    snprintf(d->deal_id, sizeof(d->deal_id), "D-%s-%u", customer, seq);
    d->event_type = PP_DEAL_CLOSED_WON;
    snprintf(d->partner_id, sizeof(d->partner_id), "%s", partner);
    snprintf(d->customer_id, sizeof(d->customer_id), "%s", customer);
    snprintf(d->product_id, sizeof(d->product_id), "%s", "ACME-SUITE");
    d->kind = PP_KIND_NEW;
    d->close_date = close_day;
    d->term_months = 12;
    d->seats = 10;
    d->amount = 600000;
    memcpy(d->currency, "USD", 4);
    return ev;
}

static struct pp_event support(const char *customer, enum pp_support_event type, int32_t day,
                               int hour)
{
    struct pp_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = PP_EV_SUPPORT;
    snprintf(ev.event_id, sizeof(ev.event_id), "E-%u", ++seq);
    ev.occurred_at_ms = at(day, hour);
    struct pp_support *s = &ev.u.support;
    snprintf(s->ticket_id, sizeof(s->ticket_id), "T-%u", seq);
    snprintf(s->customer_id, sizeof(s->customer_id), "%s", customer);
    s->event_type = type;
    s->severity = 3;
    return ev;
}

static struct pp_event ticket(const char *customer, int32_t day, int hour)
{
    return support(customer, PP_TICKET_OPENED, day, hour);
}

struct collector {
    struct pp_alert alerts[MAX_ALERTS];
    size_t n;
};

static void collect(const struct pp_alert *alert, void *opaque)
{
    struct collector *col = opaque;
    if (col->n >= MAX_ALERTS) {
        fail_msg("more than %d alerts", MAX_ALERTS);
    }
    col->alerts[col->n++] = *alert;
}

/* Everything a case allocates is released by the teardown, so a failing
 * assertion (which leaves the case by longjmp) leaks nothing under ASan. */
#define MAX_OWNED 8
static struct pp_proc *owned_procs[MAX_OWNED];
static struct collector *owned_cols[MAX_OWNED];
static size_t owned_procs_n, owned_cols_n;

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < owned_procs_n; i++) {
        pp_proc_destroy(owned_procs[i]);
    }
    for (size_t i = 0; i < owned_cols_n; i++) {
        free(owned_cols[i]);
    }
    owned_procs_n = owned_cols_n = 0;
    return 0;
}

static struct collector *collector_new(void)
{
    assert_true(owned_cols_n < MAX_OWNED);
    struct collector *col = calloc(1, sizeof(*col));
    assert_non_null(col);
    owned_cols[owned_cols_n++] = col;
    return col;
}

/* Applies one event and advances to its time, as an ordered stream does. */
static enum pp_apply_result feed(struct pp_proc *ctx, const struct pp_event *ev,
                                 struct collector *col)
{
    enum pp_apply_result res = pp_proc_apply(ctx, ev);
    pp_proc_advance(ctx, ev->occurred_at_ms, collect, col);
    return res;
}

static void feed_ok(struct pp_proc *ctx, const struct pp_event *ev, struct collector *col)
{
    enum pp_apply_result res = feed(ctx, ev, col);
    if (res != PP_APPLY_OK) {
        fail_msg("event %s at %lld: apply result %d, expected OK", ev->event_id,
                 (long long)ev->occurred_at_ms, (int)res);
    }
}

static struct pp_proc *proc_new(const char *tenant, int64_t lateness_ms, uint32_t threshold,
                                uint32_t window)
{
    struct pp_proc_conf conf;
    pp_proc_conf_defaults(&conf);
    snprintf(conf.tenant, sizeof(conf.tenant), "%s", tenant);
    conf.allowed_lateness_ms = lateness_ms;
    conf.surge_threshold = threshold;
    conf.surge_window_days = window;
    assert_true(owned_procs_n < MAX_OWNED);
    struct pp_proc *ctx = pp_proc_new(&conf);
    owned_procs[owned_procs_n++] = ctx;
    return ctx;
}

struct expect {
    enum pp_alert_status status;
    const char *partner;
    int32_t eval_day;   /* relative to base_day() */
    int32_t first_seen; /* relative to base_day() */
    double value;
};

/* Checks every field of an alert of the TICKET_SURGE rule. */
static void check_alert(const struct pp_alert *a, const char *tenant, uint32_t threshold,
                        uint32_t window, const struct expect *e)
{
    int32_t d0 = base_day();
    char first[11], dedup[PP_ALERT_ID_MAX], id[PP_ALERT_ID_MAX + 16];
    pp_day_format(d0 + e->first_seen, first, sizeof(first));
    snprintf(dedup, sizeof(dedup), "cpi:v1:%s:TICKET_SURGE:%s:*", tenant, e->partner);
    snprintf(id, sizeof(id), "%s:%s", dedup, first);

    if (a->status != e->status || strcmp(a->partner_id, e->partner) != 0 ||
        a->eval_day != d0 + e->eval_day || a->value != e->value) {
        char got[11];
        pp_day_format(a->eval_day, got, sizeof(got));
        fail_msg("got %s %s eval %s value %g; expected %s %s eval day +%d value %g",
                 pp_alert_status_name(a->status), a->partner_id, got, a->value,
                 pp_alert_status_name(e->status), e->partner, e->eval_day, e->value);
    }
    assert_string_equal(a->alert_id, id);
    assert_string_equal(a->dedup_key, dedup);
    assert_string_equal(a->rule_id, "TICKET_SURGE");
    assert_string_equal(a->tenant, tenant);
    assert_string_equal(a->customer_id, "");
    assert_int_equal(a->severity, PP_SEV_WARNING);
    assert_int_equal(a->scope, PP_SCOPE_PARTNER);
    assert_int_equal(a->first_seen_day, d0 + e->first_seen);
    assert_int_equal(a->fired_day, d0 + e->first_seen);
    assert_int_equal(a->reopen_count, 0);
    assert_true(a->threshold == (double)threshold);
    assert_int_equal(a->window_days, window);
    assert_non_null(strstr(a->summary, e->partner));
}

static void check_alerts(const struct collector *col, const char *tenant, uint32_t threshold,
                         uint32_t window, const struct expect *e, size_t n)
{
    if (col->n != n) {
        for (size_t i = 0; i < col->n; i++) {
            char d[11];
            pp_day_format(col->alerts[i].eval_day, d, sizeof(d));
            print_message("  alert %zu: %s %s eval %s value %g\n", i,
                          pp_alert_status_name(col->alerts[i].status), col->alerts[i].partner_id, d,
                          col->alerts[i].value);
        }
        fail_msg("%zu alerts, expected %zu", col->n, n);
    }
    for (size_t i = 0; i < n; i++) {
        check_alert(&col->alerts[i], tenant, threshold, window, &e[i]);
    }
}

/* ---- (a) firing and resolving days -------------------------------------- */

static void test_fires_and_resolves_on_exact_days(void **state)
{
    (void)state;
    const int32_t d0 = base_day();
    struct pp_proc *ctx = proc_new("acme", 0, 5, 3);
    struct collector *col = collector_new();

    /* 3-day sums: D0 1, D1 3, D2 4, D3 5 (fires), D4 5, D5 5, D6 3 (resolves). */
    static const int per_day[] = {1, 2, 1, 2, 2, 1, 0};

    struct pp_event ev = deal_won("P-1", "C-1", d0, at(d0, 9));
    feed_ok(ctx, &ev, col);
    for (int k = 0; k < (int)N(per_day); k++) {
        for (int t = 0; t < per_day[k]; t++) {
            ev = ticket("C-1", d0 + k, 10 + t);
            feed_ok(ctx, &ev, col);
            /* The first event of D4 closes D3: the FIRING appears exactly then. */
            size_t want = k < 4 ? 0 : 1;
            if (col->n != want) {
                fail_msg("after a ticket of day +%d: %zu alerts, expected %zu", k, col->n, want);
            }
        }
    }
    pp_proc_advance(ctx, pp_day_to_ms(d0 + 7) - 1, collect, col);
    assert_int_equal(col->n, 1); /* D6 is not closed yet */
    pp_proc_advance(ctx, pp_day_to_ms(d0 + 7), collect, col);
    assert_int_equal(col->n, 2);
    pp_proc_advance(ctx, pp_day_to_ms(d0 + 12), collect, col);

    static const struct expect want[] = {
        {PP_ALERT_FIRING, "P-1", 3, 3, 5},
        {PP_ALERT_RESOLVED, "P-1", 6, 3, 3},
    };
    check_alerts(col, "acme", 5, 3, want, N(want));
    assert_string_equal(col->alerts[0].alert_id, "cpi:v1:acme:TICKET_SURGE:P-1:*:2025-03-04");
    assert_string_equal(col->alerts[0].alert_id, col->alerts[1].alert_id);
    assert_non_null(strstr(col->alerts[0].summary, "5 support tickets"));

    const struct pp_proc_stats *st = pp_proc_stats(ctx);
    /* D0 .. D9: from D9 (newest event D5 + window 3 + 1) every window is
     * empty, so D10 and D11 close without being evaluated. */
    assert_int_equal(st->days_evaluated, 10);
    assert_int_equal(st->alerts[PP_ALERT_FIRING], 1);
    assert_int_equal(st->alerts[PP_ALERT_RESOLVED], 1);
    assert_int_equal(st->events[PP_EV_DEAL], 1);
    assert_int_equal(st->events[PP_EV_SUPPORT], 9);
    assert_int_equal(st->too_late, 0);
    assert_int_equal(pp_proc_partner_count(ctx), 1);
    assert_true(pp_proc_watermark(ctx) == pp_day_to_ms(d0 + 12));
    /* The watermark never goes back. */
    pp_proc_advance(ctx, pp_day_to_ms(d0), collect, col);
    assert_true(pp_proc_watermark(ctx) == pp_day_to_ms(d0 + 12));
    assert_int_equal(col->n, 2);
}

static void test_fresh_processor(void **state)
{
    (void)state;
    struct pp_proc *ctx = proc_new("acme", 0, 5, 3);
    assert_true(pp_proc_watermark(ctx) == INT64_MIN);
    assert_int_equal(pp_proc_partner_count(ctx), 0);
    /* Advancing with no event evaluates nothing. */
    struct collector *col = collector_new();
    pp_proc_advance(ctx, pp_day_to_ms(base_day()), collect, col);
    assert_int_equal(pp_proc_stats(ctx)->days_evaluated, 0);
    assert_int_equal(col->n, 0);
    pp_proc_destroy(NULL);
}

/* ---- (b) below the threshold --------------------------------------------- */

static void test_below_threshold_is_silent(void **state)
{
    (void)state;
    const int32_t d0 = base_day();
    struct pp_proc *ctx = proc_new("acme", 0, 5, 3);
    struct collector *col = collector_new();

    struct pp_event ev = deal_won("P-1", "C-1", d0, at(d0, 1));
    feed_ok(ctx, &ev, col);
    ev = deal_won("P-2", "C-2", d0, at(d0, 2));
    feed_ok(ctx, &ev, col);
    /* A lost deal of another partner does not take C-1 over. */
    ev = deal_won("P-3", "C-1", d0, at(d0, 3));
    ev.u.deal.event_type = PP_DEAL_CLOSED_LOST;
    feed_ok(ctx, &ev, col);

    /* Every 3-day sum is at most 4. */
    static const int per_day[] = {1, 1, 2, 1, 1, 2, 1, 1, 2, 1};
    for (int k = 0; k < (int)N(per_day); k++) {
        for (int t = 0; t < per_day[k]; t++) {
            ev = ticket("C-1", d0 + k, 8 + t);
            feed_ok(ctx, &ev, col);
        }
        /* Other lifecycle steps are not "opened" and do not count. */
        static const enum pp_support_event others[] = {PP_TICKET_ESCALATED, PP_TICKET_RESOLVED,
                                                       PP_TICKET_REOPENED};
        for (size_t o = 0; o < N(others); o++) {
            ev = support("C-1", others[o], d0 + k, 12);
            feed_ok(ctx, &ev, col);
            ev = support("C-1", others[o], d0 + k, 13);
            feed_ok(ctx, &ev, col);
        }
    }
    /* A customer no partner sold to floods support: not attributed to anyone. */
    for (int t = 0; t < 10; t++) {
        ev = ticket("C-X", d0 + 9, 14);
        feed_ok(ctx, &ev, col);
    }
    pp_proc_advance(ctx, pp_day_to_ms(d0 + 12), collect, col);

    check_alerts(col, "acme", 5, 3, NULL, 0);
    const struct pp_proc_stats *st = pp_proc_stats(ctx);
    assert_int_equal(st->days_evaluated, 12);
    assert_int_equal(st->unattributed_tickets, 10);
    assert_int_equal(st->alerts[PP_ALERT_FIRING], 0);
    assert_int_equal(pp_proc_partner_count(ctx), 2); /* P-3's lost deal creates nothing */
}

/* ---- (c) allowed lateness ---------------------------------------------------- */

static void test_allowed_lateness(void **state)
{
    (void)state;
    const int32_t d0 = base_day();
    struct pp_proc *ctx = proc_new("acme", 24 * HOUR_MS, 4, 2);
    struct collector *col = collector_new();
    struct pp_event ev;

    ev = deal_won("P-1", "C-1", d0, at(d0, 8));
    feed_ok(ctx, &ev, col);
    ev = ticket("C-1", d0, 10);
    feed_ok(ctx, &ev, col);
    ev = ticket("C-1", d0, 11);
    feed_ok(ctx, &ev, col);
    ev = ticket("C-2", d0 + 1, 12); /* day D+1 seen: D is still open */
    feed_ok(ctx, &ev, col);
    pp_proc_advance(ctx, pp_day_to_ms(d0 + 2) - 1, collect, col);
    assert_int_equal(pp_proc_stats(ctx)->days_evaluated, 0);

    /* A ticket for D after events of D+1, before the watermark reaches D+2 00:00. */
    ev = ticket("C-1", d0, 23);
    feed_ok(ctx, &ev, col);
    pp_proc_advance(ctx, pp_day_to_ms(d0 + 2), collect, col);
    assert_int_equal(pp_proc_stats(ctx)->days_evaluated, 1); /* D closed: sum 3 < 4 */
    assert_int_equal(col->n, 0);

    /* Now D is closed: the same kind of event is too late and changes nothing. */
    uint64_t support_before = pp_proc_stats(ctx)->events[PP_EV_SUPPORT];
    ev = ticket("C-1", d0, 22);
    assert_int_equal(feed(ctx, &ev, col), PP_APPLY_TOO_LATE);
    assert_int_equal(pp_proc_stats(ctx)->too_late, 1);
    assert_int_equal(pp_proc_stats(ctx)->events[PP_EV_SUPPORT], support_before);
    ev = deal_won("P-2", "C-1", d0, at(d0, 23));
    assert_int_equal(feed(ctx, &ev, col), PP_APPLY_TOO_LATE);
    assert_int_equal(pp_proc_stats(ctx)->too_late, 2);
    assert_int_equal(pp_proc_partner_count(ctx), 1);

    /* D+1 is still open until D+3 00:00. Its window [D, D+1] holds the late
     * ticket of D but not the too-late one: 3 + 1 = 4 exactly. */
    ev = ticket("C-1", d0 + 1, 9);
    feed_ok(ctx, &ev, col);
    pp_proc_advance(ctx, pp_day_to_ms(d0 + 3), collect, col);

    static const struct expect want[] = {{PP_ALERT_FIRING, "P-1", 1, 1, 4}};
    check_alerts(col, "acme", 4, 2, want, N(want));
}

/* ---- (d) order independence ---------------------------------------------------- */

#define D_DAYS 6
static const struct {
    const char *customer;
    int per_day[D_DAYS];
} d_tickets[] = {
    {"C-1", {2, 2, 1, 3, 0, 0}},
    {"C-2", {0, 4, 0, 0, 1, 0}},
    {"C-3", {3, 3, 1, 1, 0, 0}}, /* its deal (P-2) closes on day 2 */
};

static size_t build_d_events(struct pp_event *evs, size_t cap)
{
    const int32_t d0 = base_day();
    size_t n = 0;
    evs[n++] = deal_won("P-1", "C-1", d0, at(d0, 6));
    evs[n++] = deal_won("P-2", "C-2", d0, at(d0, 7));
    evs[n++] = deal_won("P-2", "C-3", d0 + 2, at(d0 + 2, 6));
    for (size_t c = 0; c < N(d_tickets); c++) {
        for (int k = 0; k < D_DAYS; k++) {
            for (int t = 0; t < d_tickets[c].per_day[k]; t++) {
                assert_true(n < cap);
                evs[n++] = ticket(d_tickets[c].customer, d0 + k, 9 + (int)c * 4 + t);
            }
        }
    }
    return n;
}

static int cmp_time(const void *a, const void *b)
{
    const struct pp_event *x = a, *y = b;
    if (x->occurred_at_ms != y->occurred_at_ms) {
        return x->occurred_at_ms < y->occurred_at_ms ? -1 : 1;
    }
    return strcmp(x->event_id, y->event_id);
}

/* Two-day buckets, each delivered newest first: every event of day 2k comes
 * after those of day 2k+1, never after the watermark reaches 2k+2 00:00. */
static int cmp_shuffled(const void *a, const void *b)
{
    const struct pp_event *x = a, *y = b;
    int32_t d0 = base_day();
    int32_t bx = (pp_day_from_ms(x->occurred_at_ms) - d0) / 2;
    int32_t by = (pp_day_from_ms(y->occurred_at_ms) - d0) / 2;
    if (bx != by) {
        return bx < by ? -1 : 1;
    }
    return -cmp_time(a, b);
}

static void run_order(struct pp_event *evs, size_t n, struct collector *col)
{
    struct pp_proc *ctx = proc_new("acme", 24 * HOUR_MS, 4, 2);
    for (size_t i = 0; i < n; i++) {
        feed_ok(ctx, &evs[i], col);
    }
    pp_proc_advance(ctx, pp_day_to_ms(base_day() + 10), collect, col);
    assert_int_equal(pp_proc_stats(ctx)->too_late, 0);
    /* Every closed day up to a window past the newest event is evaluated;
     * later ones are empty and skipped. */
    assert_int_equal(pp_proc_stats(ctx)->days_evaluated, 8);
}

static void assert_alert_equal(const struct pp_alert *a, const struct pp_alert *b)
{
    assert_string_equal(a->alert_id, b->alert_id);
    assert_string_equal(a->dedup_key, b->dedup_key);
    assert_string_equal(a->rule_id, b->rule_id);
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->severity, b->severity);
    assert_int_equal(a->scope, b->scope);
    assert_string_equal(a->tenant, b->tenant);
    assert_string_equal(a->partner_id, b->partner_id);
    assert_string_equal(a->customer_id, b->customer_id);
    assert_int_equal(a->first_seen_day, b->first_seen_day);
    assert_int_equal(a->fired_day, b->fired_day);
    assert_int_equal(a->eval_day, b->eval_day);
    assert_int_equal(a->reopen_count, b->reopen_count);
    assert_true(a->value == b->value);
    assert_true(a->threshold == b->threshold);
    assert_int_equal(a->window_days, b->window_days);
    assert_string_equal(a->summary, b->summary);
}

static void test_order_independence(void **state)
{
    (void)state;
    struct pp_event evs[128];
    size_t n = build_d_events(evs, N(evs));

    qsort(evs, n, sizeof(evs[0]), cmp_time);
    struct collector *sorted = collector_new();
    run_order(evs, n, sorted);

    qsort(evs, n, sizeof(evs[0]), cmp_shuffled);
    /* The shuffle really delivers a deal after its customer's tickets. */
    size_t deal_c3 = n, first_c3 = n;
    for (size_t i = 0; i < n; i++) {
        if (evs[i].type == PP_EV_DEAL && strcmp(evs[i].u.deal.customer_id, "C-3") == 0) {
            deal_c3 = i;
        }
        if (evs[i].type == PP_EV_SUPPORT && strcmp(evs[i].u.support.customer_id, "C-3") == 0 &&
            first_c3 == n && pp_day_from_ms(evs[i].occurred_at_ms) == base_day() + 2) {
            first_c3 = i;
        }
    }
    assert_true(first_c3 < deal_c3);
    struct collector *shuffled = collector_new();
    run_order(evs, n, shuffled);

    /* Window 2, threshold 4: P-1 fires on D1 (2+2), resolves D2 (3), fires
     * again D3 (1+3), resolves D4 (3); P-2 fires D1 (C-2's 4), resolves D3
     * (C-3's 1+1: C-3 counts only from its close on D2). */
    static const struct expect want[] = {
        {PP_ALERT_FIRING, "P-1", 1, 1, 4},   {PP_ALERT_FIRING, "P-2", 1, 1, 4},
        {PP_ALERT_RESOLVED, "P-1", 2, 1, 3}, {PP_ALERT_FIRING, "P-1", 3, 3, 4},
        {PP_ALERT_RESOLVED, "P-2", 3, 1, 2}, {PP_ALERT_RESOLVED, "P-1", 4, 3, 3},
    };
    check_alerts(sorted, "acme", 4, 2, want, N(want));
    assert_int_equal(shuffled->n, sorted->n);
    for (size_t i = 0; i < sorted->n; i++) {
        assert_alert_equal(&shuffled->alerts[i], &sorted->alerts[i]);
    }
}

/* ---- (e) attribution starts at the close date ------------------------------------ */

static void test_attribution_starts_at_close_date(void **state)
{
    (void)state;
    const int32_t d0 = base_day();
    /* The deal (closing D1) arrives after the D0 tickets, or before them
     * with a close date ahead of its event time: D0 is not P-1's either way. */
    const int64_t deal_at[] = {at(d0 + 1, 20), at(d0, 1)};
    for (size_t v = 0; v < N(deal_at); v++) {
        struct pp_proc *ctx = proc_new("acme", 24 * HOUR_MS, 3, 1);
        struct collector *col = collector_new();
        struct pp_event evs[16];
        size_t n = 0;
        evs[n++] = deal_won("P-1", "C-1", d0 + 1, deal_at[v]);
        for (int t = 0; t < 5; t++) {
            evs[n++] = ticket("C-1", d0, 9 + t);
        }
        for (int t = 0; t < 3; t++) {
            evs[n++] = ticket("C-1", d0 + 1, 9 + t);
        }
        qsort(evs, n, sizeof(evs[0]), cmp_time);
        for (size_t i = 0; i < n; i++) {
            feed_ok(ctx, &evs[i], col);
        }
        pp_proc_advance(ctx, pp_day_to_ms(d0 + 5), collect, col);
        static const struct expect want[] = {
            {PP_ALERT_FIRING, "P-1", 1, 1, 3},
            {PP_ALERT_RESOLVED, "P-1", 2, 1, 0},
        };
        check_alerts(col, "acme", 3, 1, want, N(want));
    }
}

/* ---- (f) partner-id order ---------------------------------------------------- */

static void test_same_day_alerts_in_partner_id_order(void **state)
{
    (void)state;
    const int32_t d0 = base_day();
    struct pp_proc *ctx = proc_new("acme", 0, 2, 1);
    struct collector *col = collector_new();
    /* Interned in this order; strcmp order is P-10 < P-9 < P-a < P-b < P-c. */
    static const char *const partners[] = {"P-c", "P-9", "P-a", "P-10", "P-b"};
    char customer[16];
    struct pp_event ev;
    for (size_t i = 0; i < N(partners); i++) {
        snprintf(customer, sizeof(customer), "C-%zu", i);
        ev = deal_won(partners[i], customer, d0, at(d0, 1));
        feed_ok(ctx, &ev, col);
    }
    for (size_t i = 0; i < N(partners); i++) {
        snprintf(customer, sizeof(customer), "C-%zu", i);
        ev = ticket(customer, d0, 10);
        feed_ok(ctx, &ev, col);
        ev = ticket(customer, d0, 11);
        feed_ok(ctx, &ev, col);
    }
    /* A partner first seen after evaluations started still sorts first. */
    ev = deal_won("P-0", "C-new", d0 + 1, at(d0 + 1, 1));
    feed_ok(ctx, &ev, col);
    ev = ticket("C-new", d0 + 1, 2);
    feed_ok(ctx, &ev, col);
    ev = ticket("C-new", d0 + 1, 3);
    feed_ok(ctx, &ev, col);
    pp_proc_advance(ctx, pp_day_to_ms(d0 + 3), collect, col);

    static const struct expect want[] = {
        {PP_ALERT_FIRING, "P-10", 0, 0, 2},   {PP_ALERT_FIRING, "P-9", 0, 0, 2},
        {PP_ALERT_FIRING, "P-a", 0, 0, 2},    {PP_ALERT_FIRING, "P-b", 0, 0, 2},
        {PP_ALERT_FIRING, "P-c", 0, 0, 2},    {PP_ALERT_FIRING, "P-0", 1, 1, 2},
        {PP_ALERT_RESOLVED, "P-10", 1, 0, 0}, {PP_ALERT_RESOLVED, "P-9", 1, 0, 0},
        {PP_ALERT_RESOLVED, "P-a", 1, 0, 0},  {PP_ALERT_RESOLVED, "P-b", 1, 0, 0},
        {PP_ALERT_RESOLVED, "P-c", 1, 0, 0},  {PP_ALERT_RESOLVED, "P-0", 2, 1, 0},
    };
    check_alerts(col, "acme", 2, 1, want, N(want));
}

/* ---- (g) a new episode gets a new id ------------------------------------------ */

static void test_refire_gets_new_alert_id(void **state)
{
    (void)state;
    const int32_t d0 = base_day();
    struct pp_proc *ctx = proc_new("t1", 0, 2, 1);
    struct collector *col = collector_new();
    struct pp_event ev = deal_won("P-1", "C-1", d0, at(d0, 1));
    feed_ok(ctx, &ev, col);
    static const int per_day[] = {2, 0, 3, 0};
    for (int k = 0; k < (int)N(per_day); k++) {
        for (int t = 0; t < per_day[k]; t++) {
            ev = ticket("C-1", d0 + k, 10 + t);
            feed_ok(ctx, &ev, col);
        }
    }
    pp_proc_advance(ctx, pp_day_to_ms(d0 + 5), collect, col);
    static const struct expect want[] = {
        {PP_ALERT_FIRING, "P-1", 0, 0, 2},
        {PP_ALERT_RESOLVED, "P-1", 1, 0, 0},
        {PP_ALERT_FIRING, "P-1", 2, 2, 3},
        {PP_ALERT_RESOLVED, "P-1", 3, 2, 0},
    };
    check_alerts(col, "t1", 2, 1, want, N(want));
    assert_string_equal(col->alerts[0].alert_id, "cpi:v1:t1:TICKET_SURGE:P-1:*:2025-03-01");
    assert_string_equal(col->alerts[2].alert_id, "cpi:v1:t1:TICKET_SURGE:P-1:*:2025-03-03");
    assert_string_not_equal(col->alerts[0].alert_id, col->alerts[2].alert_id);
    assert_string_equal(col->alerts[0].dedup_key, col->alerts[2].dedup_key);
}

/* ---- skewed partitions ---------------------------------------------------------- */

static void test_skewed_partition(void **state)
{
    (void)state;
    const int32_t d0 = base_day();
    struct pp_proc *ctx = proc_new("acme", 0, 20, 7);
    /* The caller holds the watermark back (a slower partition): no advance. */
    struct pp_event ev = ticket("C-1", d0 + 100, 9);
    assert_int_equal(pp_proc_apply(ctx, &ev), PP_APPLY_OK);
    ev = ticket("C-1", d0 + 100 - PP_PROC_SKEW_DAYS, 9);
    assert_int_equal(pp_proc_apply(ctx, &ev), PP_APPLY_OK);
    ev = ticket("C-1", d0, 9);
    assert_int_equal(pp_proc_apply(ctx, &ev), PP_APPLY_SKEWED);
    assert_int_equal(pp_proc_stats(ctx)->skewed, 1);
    assert_int_equal(pp_proc_stats(ctx)->too_late, 0);
    assert_int_equal(pp_proc_stats(ctx)->events[PP_EV_SUPPORT], 2);
}

/* ---- (h) watermark jumps ------------------------------------------------------- */

#define JUMP 100000 /* days: about 274 years */

static void test_huge_jump_is_bounded_and_stays_correct_after(void **state)
{
    (void)state;
    const int32_t d0 = base_day();
    struct pp_proc *ctx = proc_new("acme", 0, 2, 1);
    struct collector *col = collector_new();
    struct pp_event ev = deal_won("P-1", "C-1", d0, at(d0, 1));
    feed_ok(ctx, &ev, col);
    ev = ticket("C-1", d0, 5);
    feed_ok(ctx, &ev, col);

    pp_proc_advance(ctx, pp_day_to_ms(d0 + JUMP), collect, col);
    /* Bounded catch-up: not one evaluation per skipped day. */
    assert_true(pp_proc_stats(ctx)->days_evaluated < 1000);
    assert_int_equal(col->n, 0); /* one ticket on D0: nothing to report */

    /* Life goes on after the jump: D0 is long closed, the new day is not. */
    ev = ticket("C-1", d0, 6);
    assert_int_equal(feed(ctx, &ev, col), PP_APPLY_TOO_LATE);
    ev = ticket("C-1", d0 + JUMP, 9);
    feed_ok(ctx, &ev, col);
    ev = ticket("C-1", d0 + JUMP, 10);
    feed_ok(ctx, &ev, col);
    assert_int_equal(col->n, 0);
    pp_proc_advance(ctx, pp_day_to_ms(d0 + JUMP + 2), collect, col);
    static const struct expect want[] = {
        {PP_ALERT_FIRING, "P-1", JUMP, JUMP, 2},
        {PP_ALERT_RESOLVED, "P-1", JUMP + 1, JUMP, 0},
    };
    check_alerts(col, "acme", 2, 1, want, N(want));
}

/* The days that hold state when the watermark jumps are the oldest ones: a
 * cap on catch-up must skip the empty days after them, not them. */
static void test_huge_jump_still_evaluates_pending_days(void **state)
{
    (void)state;
    const int32_t d0 = base_day();
    struct pp_proc *ctx = proc_new("acme", 0, 2, 1);
    struct collector *col = collector_new();
    struct pp_event ev = deal_won("P-1", "C-1", d0, at(d0, 1));
    feed_ok(ctx, &ev, col);
    ev = ticket("C-1", d0, 5);
    feed_ok(ctx, &ev, col);
    ev = ticket("C-1", d0, 6);
    feed_ok(ctx, &ev, col);
    assert_int_equal(col->n, 0); /* D0 is still open */

    pp_proc_advance(ctx, pp_day_to_ms(d0 + JUMP), collect, col);
    static const struct expect want[] = {
        {PP_ALERT_FIRING, "P-1", 0, 0, 2},
        {PP_ALERT_RESOLVED, "P-1", 1, 0, 0},
    };
    check_alerts(col, "acme", 2, 1, want, N(want));
}

static void test_huge_jump_resolves_on_first_quiet_day(void **state)
{
    (void)state;
    const int32_t d0 = base_day();
    struct pp_proc *ctx = proc_new("acme", 0, 2, 1);
    struct collector *col = collector_new();
    struct pp_event ev = deal_won("P-1", "C-1", d0, at(d0, 1));
    feed_ok(ctx, &ev, col);
    ev = ticket("C-1", d0, 5);
    feed_ok(ctx, &ev, col);
    ev = ticket("C-1", d0, 6);
    feed_ok(ctx, &ev, col);
    pp_proc_advance(ctx, pp_day_to_ms(d0 + 1), collect, col);
    assert_int_equal(col->n, 1); /* FIRING on D0 */

    pp_proc_advance(ctx, pp_day_to_ms(d0 + JUMP), collect, col);
    static const struct expect want[] = {
        {PP_ALERT_FIRING, "P-1", 0, 0, 2},
        {PP_ALERT_RESOLVED, "P-1", 1, 0, 0}, /* not a day the cap picked */
    };
    check_alerts(col, "acme", 2, 1, want, N(want));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_fresh_processor, teardown),
        cmocka_unit_test_teardown(test_fires_and_resolves_on_exact_days, teardown),
        cmocka_unit_test_teardown(test_below_threshold_is_silent, teardown),
        cmocka_unit_test_teardown(test_allowed_lateness, teardown),
        cmocka_unit_test_teardown(test_order_independence, teardown),
        cmocka_unit_test_teardown(test_attribution_starts_at_close_date, teardown),
        cmocka_unit_test_teardown(test_same_day_alerts_in_partner_id_order, teardown),
        cmocka_unit_test_teardown(test_refire_gets_new_alert_id, teardown),
        cmocka_unit_test_teardown(test_skewed_partition, teardown),
        cmocka_unit_test_teardown(test_huge_jump_is_bounded_and_stays_correct_after, teardown),
        cmocka_unit_test_teardown(test_huge_jump_still_evaluates_pending_days, teardown),
        cmocka_unit_test_teardown(test_huge_jump_resolves_on_first_quiet_day, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
