/*
 * test_model.c — pp_model end to end on small hand-written stories, with
 * expectations computed independently from the §2 formulas (signals.h) day
 * by day: the right CUSTOMER_PRESSURE and PARTNER_PRESSURE transitions on the
 * right days, the alert ids and dedup keys (§2.7), parent_alert_id, the
 * emission order, and the event-time contract shared with proc.c: too-late
 * events, duplicates by event_id, independence from the arrival order within
 * the allowed lateness, and byte-identical replays (§3.5). Also the STUFFING
 * rule on a quarter-end deal ledger, a healthy big QE deal that must not fire
 * (aggression multiplies, never adds), and the partner view.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model.h"
#include "ptime.h"
#include "signals.h"

#define HOUR_MS    INT64_C(3600000)
#define MAX_EVENTS 4096
#define MAX_ALERTS 64

/* ---- story building ---------------------------------------------------------- */

struct story {
    struct pp_event ev[MAX_EVENTS];
    int n;
};

static struct pp_event *add(struct story *s, enum pp_event_type type, int32_t day, int hour,
                            const char *id_fmt, const char *a, int b)
{
    assert_true(s->n < MAX_EVENTS);
    struct pp_event *ev = &s->ev[s->n++];
    memset(ev, 0, sizeof(*ev));
    ev->type = type;
    ev->occurred_at_ms = pp_day_to_ms(day) + hour * HOUR_MS;
    snprintf(ev->event_id, sizeof(ev->event_id), id_fmt, a, b, day);
    return ev;
}

static void deal(struct story *s, const char *partner, const char *customer, const char *deal_id,
                 int32_t close, int32_t seats, double disc, bool qe, int term)
{
    struct pp_event *ev = add(s, PP_EV_DEAL, close, 9, "D-%s-%d-%d", deal_id, 0);
    struct pp_deal *d = &ev->u.deal;
    snprintf(d->deal_id, sizeof(d->deal_id), "%s", deal_id);
    d->event_type = PP_DEAL_CLOSED_WON;
    snprintf(d->partner_id, sizeof(d->partner_id), "%s", partner);
    snprintf(d->customer_id, sizeof(d->customer_id), "%s", customer);
    snprintf(d->product_id, sizeof(d->product_id), "%s", "ACME-SUITE");
    d->kind = PP_KIND_NEW;
    d->close_date = close;
    d->term_months = term;
    d->seats = seats;
    d->amount = (int64_t)llround(seats * 600.0 * (1.0 - disc) * term / 12.0 * 100.0);
    d->has_discount_pct = true;
    d->discount_pct = disc;
    d->has_quarter_end = true;
    d->quarter_end = qe;
    memcpy(d->currency, "USD", 4);
}

static void snapshot(struct story *s, const char *customer, int32_t day, int32_t active,
                     int32_t entitled)
{
    struct pp_event *ev = add(s, PP_EV_CONSUMPTION, day, 6, "U-%s-%d-%d", customer, 0);
    struct pp_consumption *c = &ev->u.consumption;
    snprintf(c->customer_id, sizeof(c->customer_id), "%s", customer);
    snprintf(c->product_id, sizeof(c->product_id), "%s", "ACME-SUITE");
    c->as_of = day;
    c->licenses_active = active;
    c->licenses_entitled = entitled;
}

static void ticket(struct story *s, const char *customer, int32_t day, int k,
                   enum pp_support_event type, int sev, int csat)
{
    struct pp_event *ev =
        add(s, PP_EV_SUPPORT, day, 10 + k % 10, "T-%s-%d-%d", customer, k * 8 + (int)type);
    struct pp_support *t = &ev->u.support;
    snprintf(t->ticket_id, sizeof(t->ticket_id), "TK-%s-%d-%d", customer, day, k);
    snprintf(t->customer_id, sizeof(t->customer_id), "%s", customer);
    t->event_type = type;
    t->severity = sev;
    if (type == PP_TICKET_CSAT) {
        t->has_csat_score = true;
        t->csat_score = csat;
    }
}

static int cmp_time(const void *a, const void *b)
{
    const struct pp_event *x = a, *y = b;
    if (x->occurred_at_ms != y->occurred_at_ms) {
        return x->occurred_at_ms < y->occurred_at_ms ? -1 : 1;
    }
    return strcmp(x->event_id, y->event_id);
}

/* ---- running ------------------------------------------------------------------ */

struct sink {
    struct pp_alert a[MAX_ALERTS];
    int n;
};

static void on_alert(const struct pp_alert *a, void *opaque)
{
    struct sink *k = opaque;
    assert_true(k->n < MAX_ALERTS);
    k->a[k->n++] = *a;
}

static struct pp_model_conf test_conf(int64_t lateness_ms)
{
    struct pp_model_conf c;
    pp_model_conf_defaults(&c);
    snprintf(c.tenant, sizeof(c.tenant), "%s", "acme");
    c.allowed_lateness_ms = lateness_ms;
    return c;
}

/* Feeds events in array order, advancing the watermark to each event's time
 * (a single ordered stream), then closes `end_day`. */
static void feed(struct pp_model *m, const struct pp_event *ev, int n, int32_t end_day,
                 struct sink *k)
{
    int64_t wm = INT64_MIN;
    for (int i = 0; i < n; i++) {
        assert_int_equal(pp_model_apply(m, &ev[i]), PP_APPLY_OK);
        if (ev[i].occurred_at_ms > wm) {
            wm = ev[i].occurred_at_ms;
        }
        pp_model_advance(m, wm, on_alert, k);
    }
    pp_model_advance(m, pp_day_to_ms(end_day + 1) + INT64_C(7) * 86400000, on_alert, k);
}

static const struct pp_alert *find(const struct sink *k, const char *rule, const char *customer,
                                   enum pp_alert_status st, enum pp_severity sev)
{
    for (int i = 0; i < k->n; i++) {
        if (strcmp(k->a[i].rule_id, rule) == 0 && strcmp(k->a[i].customer_id, customer) == 0 &&
            k->a[i].status == st && k->a[i].severity == sev) {
            return &k->a[i];
        }
    }
    return NULL;
}

/* ---- the support story --------------------------------------------------------- */

static int32_t d0(void)
{
    return pp_day_from_civil(2025, 3, 3); /* mid-quarter */
}

/* C-1 and C-2 bought 100 seats each from P-X on d0 (10% off, mid-quarter)
 * and use all of them; from d0+20 (C-2: d0+23) until d0+50 each opens two
 * Sev-1 tickets a day, escalates both and answers one CSAT survey at 1/5. */
static void support_story(struct story *s)
{
    memset(s, 0, sizeof(*s));
    deal(s, "P-X", "C-1", "DX-1", d0(), 100, 0.10, false, 12);
    deal(s, "P-X", "C-2", "DX-2", d0(), 100, 0.10, false, 12);
    for (int32_t d = d0(); d < d0() + 120; d++) {
        snapshot(s, "C-1", d, 100, 100);
        snapshot(s, "C-2", d, 100, 100);
        for (int c = 0; c < 2; c++) {
            const char *cust = c == 0 ? "C-1" : "C-2";
            if (d >= d0() + 20 + 3 * c && d < d0() + 50) {
                for (int k = 0; k < 2; k++) {
                    ticket(s, cust, d, k, PP_TICKET_OPENED, 1, 0);
                    ticket(s, cust, d, k, PP_TICKET_ESCALATED, 1, 0);
                }
                ticket(s, cust, d, 2, PP_TICKET_CSAT, 1, 1);
            }
        }
    }
    qsort(s->ev, (size_t)s->n, sizeof(s->ev[0]), cmp_time);
}

/* The same CPIs recomputed from the formulas alone: counts over windows of
 * the surge days, the configured fallbacks (two customers make no cohort),
 * onboarding x1.5, full exposure, no aggression, SHELF in its 60-day grace. */
static void reference_cpi(const struct pp_model_conf *cf, int32_t day, int32_t surge_from,
                          int32_t surge_to, double *cs, double *cl)
{
    const uint32_t wl[2] = {cf->load_short_days, cf->load_long_days};
    const uint32_t wr[2] = {cf->ratio_short_days, cf->ratio_long_days};
    double cpi[2];
    for (int k = 0; k < 2; k++) {
        int kl = 0, kr = 0;
        for (int32_t d = surge_from; d < surge_to; d++) {
            kl += d <= day && d > day - (int32_t)wl[k];
            kr += d <= day && d > day - (int32_t)wr[k];
        }
        uint32_t covered = (uint32_t)(day - d0() + 1) < wl[k] ? (uint32_t)(day - d0() + 1) : wl[k];
        struct pp_sig load =
            pp_sig_load(cf, 16.0 * kl, 100.0, cf->support_rate_fallback * 1.5, covered);
        struct pp_sig esc = pp_sig_esc(cf, 2.0 * kr, 2.0 * kr, cf->esc_prior);
        struct pp_sig csat = pp_sig_csat(cf, 0.0, kr, cf->csat_prior);
        bool present;
        double h = pp_support_harm(&load, &esc, &csat, &present);
        cpi[k] = pp_cpi(cf, h, 0.0);
    }
    *cs = cpi[0];
    *cl = cpi[1];
}

/* First day d with 7 consecutive days of min(CPI_s, CPI_l) >= 50 ending on d. */
static int32_t reference_fire_day(const struct pp_model_conf *cf, int32_t from, int32_t to)
{
    int run = 0;
    for (int32_t d = d0(); d < d0() + 120; d++) {
        double cs, cl;
        reference_cpi(cf, d, from, to, &cs, &cl);
        run = (cs < cl ? cs : cl) >= 50.0 ? run + 1 : 0;
        if (run == 7) {
            return d;
        }
    }
    return INT32_MIN;
}

static void test_support_story(void **state)
{
    (void)state;
    static struct story s;
    support_story(&s);
    struct pp_model_conf cf = test_conf(0);
    struct pp_model *m = pp_model_new(&cf);
    static struct sink k;
    memset(&k, 0, sizeof(k));
    feed(m, s.ev, s.n, d0() + 119, &k);

    int32_t fire1 = reference_fire_day(&cf, d0() + 20, d0() + 50);
    int32_t fire2 = reference_fire_day(&cf, d0() + 23, d0() + 50);
    assert_true(fire1 > d0() + 20 && fire1 < d0() + 50);
    const struct pp_alert *a1 =
        find(&k, "CUSTOMER_PRESSURE", "C-1", PP_ALERT_FIRING, PP_SEV_WARNING);
    const struct pp_alert *a2 =
        find(&k, "CUSTOMER_PRESSURE", "C-2", PP_ALERT_FIRING, PP_SEV_WARNING);
    assert_non_null(a1);
    assert_non_null(a2);
    assert_int_equal(a1->eval_day, fire1);
    assert_int_equal(a2->eval_day, fire2);
    assert_int_equal(a1->first_seen_day, fire1 - 6);
    char first[16], want[PP_ALERT_ID_MAX];
    pp_day_format(fire1 - 6, first, sizeof(first));
    snprintf(want, sizeof(want), "cpi:v1:acme:PXC:P-X:C-1:%s", first);
    assert_string_equal(a1->alert_id, want);
    assert_string_equal(a1->dedup_key, "cpi:v1:acme:PXC:P-X:C-1");
    /* the scores on the firing day are the formulas' */
    double cs, cl;
    reference_cpi(&cf, fire1, d0() + 20, d0() + 50, &cs, &cl);
    assert_true(fabs(a1->cpi_short - cs) < 1e-6 && fabs(a1->cpi_long - cl) < 1e-6);
    assert_true(a1->h_long >= 1.0 / 3.0); /* §3.5 */
    assert_true(a1->aggression == 0.0);
    assert_int_equal(a1->families[PP_ALERT_FAM_SUPPORT].present, 1);
    assert_int_equal(a1->families[PP_ALERT_FAM_ADOPT].present, 0); /* grace */
    assert_string_equal(a1->runbook_id, "RB-SUPPORT-02");
    assert_true(a1->n_signals >= 3);
    assert_string_equal(a1->signals[0].name, "LOAD");
    assert_string_equal(a1->parent_alert_id, "");

    /* PARTNER_PRESSURE fires the day the second child does, with the first
     * child's first_seen; the child's record of that day names it. */
    const struct pp_alert *p = find(&k, "PARTNER_PRESSURE", "", PP_ALERT_FIRING, PP_SEV_WARNING);
    assert_non_null(p);
    assert_int_equal(p->eval_day, fire2);
    assert_int_equal(p->first_seen_day, fire1 - 6);
    assert_string_equal(p->dedup_key, "cpi:v1:acme:PARTNER:P-X:*");
    char pid[PP_ALERT_ID_MAX];
    snprintf(pid, sizeof(pid), "cpi:v1:acme:PARTNER:P-X:*:%s", first);
    assert_string_equal(p->alert_id, pid);
    assert_string_equal(a2->parent_alert_id, pid);
    assert_int_equal(p->n_customers, 2);
    assert_int_equal(p->customers_firing, 2);
    assert_true(fabs(p->affected_acv_share - 1.0) < 1e-9);
    /* emission order within the day: CUSTOMER_PRESSURE before PARTNER_PRESSURE */
    assert_true(a2 < p);

    /* everything resolves, with the same alert ids, and the partner first */
    const struct pp_alert *r1 =
        find(&k, "CUSTOMER_PRESSURE", "C-1", PP_ALERT_RESOLVED, a1->severity);
    if (r1 == NULL) {
        r1 = find(&k, "CUSTOMER_PRESSURE", "C-1", PP_ALERT_RESOLVED, PP_SEV_WARNING);
    }
    assert_non_null(r1);
    assert_string_equal(r1->alert_id, a1->alert_id);
    assert_true(r1->eval_day >= d0() + 50 + 13);
    const struct pp_alert *pr = NULL;
    for (int i = 0; i < k.n; i++) {
        if (strcmp(k.a[i].rule_id, "PARTNER_PRESSURE") == 0 && k.a[i].status == PP_ALERT_RESOLVED) {
            pr = &k.a[i];
        }
        /* every transition of one key keeps its dedup key (§3.5) */
        if (strcmp(k.a[i].customer_id, "C-1") == 0) {
            assert_string_equal(k.a[i].alert_id, a1->alert_id);
        }
        /* nothing about stuffing: one mid-quarter deal per customer */
        assert_string_not_equal(k.a[i].rule_id, "STUFFING_PATTERN");
    }
    assert_non_null(pr);
    assert_true(pr->eval_day <= r1->eval_day);

    struct pp_model_pxc_view v;
    assert_int_equal(pp_model_pxc_view(m, "P-X", "C-1", &v), 0);
    assert_int_equal(v.alert_state, 0);
    assert_int_equal(pp_model_pxc_view(m, "P-X", "C-9", &v), -1);
    assert_int_equal(pp_model_partner_count(m), 1);
    struct pp_model_partner_view pv;
    assert_int_equal(pp_model_partner_view(m, 0, &pv), 0);
    assert_string_equal(pv.partner_id, "P-X");
    assert_int_equal(pv.customers_touched, 2);
    assert_int_equal(pp_model_partner_view(m, 1, &pv), -1);
    pp_model_destroy(m);
}

/* ---- event-time contract ------------------------------------------------------- */

static bool same_alerts(const struct sink *a, const struct sink *b)
{
    if (a->n != b->n) {
        return false;
    }
    for (int i = 0; i < a->n; i++) {
        /* byte-identical records (memset before fill: padding is zero) */
        if (memcmp(&a->a[i], &b->a[i], sizeof(a->a[i])) != 0) {
            return false;
        }
    }
    return true;
}

static void test_order_and_duplicates(void **state)
{
    (void)state;
    static struct story s, shuffled;
    support_story(&s);
    const int64_t late = INT64_C(2) * 86400000;
    struct pp_model_conf cf = test_conf(late);

    static struct sink base, other;
    memset(&base, 0, sizeof(base));
    struct pp_model *m = pp_model_new(&cf);
    feed(m, s.ev, s.n, d0() + 119, &base);
    assert_true(base.n >= 4);
    pp_model_destroy(m);

    /* Shuffle within windows of one day (well inside the 2-day lateness) and
     * deliver every event twice: the watermark is the time of the events
     * seen minus nothing, so each event is at most a day older than it. */
    shuffled = s;
    uint64_t x = 88172645463325252u;
    int i = 0;
    while (i < shuffled.n) {
        int32_t day = pp_day_from_ms(shuffled.ev[i].occurred_at_ms);
        int j = i;
        while (j < shuffled.n && pp_day_from_ms(shuffled.ev[j].occurred_at_ms) <= day + 1) {
            j++;
        }
        for (int a = j - 1; a > i; a--) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            int b = i + (int)(x % (uint64_t)(a - i + 1));
            struct pp_event t = shuffled.ev[a];
            shuffled.ev[a] = shuffled.ev[b];
            shuffled.ev[b] = t;
        }
        i = j;
    }
    memset(&other, 0, sizeof(other));
    m = pp_model_new(&cf);
    int64_t wm = INT64_MIN;
    for (i = 0; i < shuffled.n; i++) {
        for (int rep = 0; rep < 2; rep++) {
            assert_int_equal(pp_model_apply(m, &shuffled.ev[i]), PP_APPLY_OK);
        }
        if (shuffled.ev[i].occurred_at_ms > wm) {
            wm = shuffled.ev[i].occurred_at_ms;
        }
        pp_model_advance(m, wm, on_alert, &other);
    }
    pp_model_advance(m, pp_day_to_ms(d0() + 120) + INT64_C(7) * 86400000, on_alert, &other);
    assert_int_equal(pp_model_stats(m)->duplicates, (uint64_t)shuffled.n);
    assert_true(same_alerts(&base, &other));

    /* an event for an evaluated day is too late; a re-delivery of one is a
     * duplicate, not a dead letter */
    struct pp_event old = s.ev[s.n - 1];
    snprintf(old.event_id, sizeof(old.event_id), "%s", "never-seen");
    assert_int_equal(pp_model_apply(m, &old), PP_APPLY_TOO_LATE);
    assert_int_equal(pp_model_apply(m, &s.ev[s.n - 1]), PP_APPLY_OK);
    assert_int_equal(pp_model_stats(m)->too_late, 1);
    pp_model_destroy(m);
}

static void test_skew_bound(void **state)
{
    (void)state;
    struct pp_model_conf cf = test_conf(0);
    struct pp_model *m = pp_model_new(&cf);
    static struct story s;
    memset(&s, 0, sizeof(s));
    snapshot(&s, "C-1", d0(), 10, 10);
    snapshot(&s, "C-1", d0() + 30, 10, 10);
    snapshot(&s, "C-1", d0() + 200, 10, 10);
    assert_int_equal(pp_model_apply(m, &s.ev[0]), PP_APPLY_OK);
    assert_int_equal(pp_model_apply(m, &s.ev[1]), PP_APPLY_OK);
    /* the documented bound: 35 days with the defaults and no lateness... */
    assert_int_equal(pp_model_max_skew_days(&cf), 128 - 90 - 2);
    struct pp_model_conf late = test_conf(INT64_C(86400000));
    assert_int_equal(pp_model_max_skew_days(&late), 128 - 90 - 3);
    /* ... and 200 days ahead of anything evaluated would overwrite the rings */
    assert_int_equal(pp_model_apply(m, &s.ev[2]), PP_APPLY_SKEWED);
    assert_int_equal(pp_model_stats(m)->skewed, 1);
    pp_model_destroy(m);
}

/* ---- push: STUFFING and a healthy QE deal ------------------------------------- */

static void test_stuffing_and_healthy_qe(void **state)
{
    (void)state;
    static struct story s;
    memset(&s, 0, sizeof(s));
    int32_t q1 = pp_day_from_civil(2025, 1, 15);
    /* six mid-quarter deals at 14% over two quarters, then four QE deals at
     * 35% in the last days of June: QE share and discount both explode */
    const char *cust[10] = {"C-A", "C-B", "C-C", "C-D", "C-E", "C-F", "C-G", "C-H", "C-I", "C-J"};
    for (int i = 0; i < 6; i++) {
        char id[16];
        snprintf(id, sizeof(id), "DS-%d", i);
        deal(&s, "P-S", cust[i], id, q1 + 14 * i, 50, 0.14, false, 12);
    }
    int32_t qe = pp_day_from_civil(2025, 6, 20);
    for (int i = 6; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof(id), "DS-%d", i);
        deal(&s, "P-S", cust[i], id, qe + (i - 6), 150, 0.35, true, 12);
    }
    /* every customer uses its seats well: no harm anywhere */
    for (int32_t d = q1; d < qe + 60; d++) {
        for (int i = 0; i < 10; i++) {
            snapshot(&s, cust[i], d, i < 6 ? 45 : 140, i < 6 ? 50 : 150);
        }
    }
    qsort(s.ev, (size_t)s.n, sizeof(s.ev[0]), cmp_time);
    struct pp_model_conf cf = test_conf(0);
    struct pp_model *m = pp_model_new(&cf);
    static struct sink k;
    memset(&k, 0, sizeof(k));
    feed(m, s.ev, s.n, qe + 59, &k);
    /* QE share: ACV 4*150*.65 vs 6*50*.86 -> 0.75 >= 0.30 + 0.225 from the
     * third QE deal on; DISC far above the 0.15 peer fallback; fires after
     * 3 days and stays a WARNING */
    const struct pp_alert *st = find(&k, "STUFFING_PATTERN", "", PP_ALERT_FIRING, PP_SEV_WARNING);
    assert_non_null(st);
    assert_true(st->eval_day >= qe + 2 && st->eval_day <= qe + 5);
    assert_int_equal(st->first_seen_day, st->eval_day - 2);
    assert_string_equal(st->runbook_id, "RB-STUFF-01");
    assert_true(st->n_signals >= 2);
    /* healthy customers: aggression alone never makes pressure */
    for (int i = 0; i < k.n; i++) {
        assert_string_not_equal(k.a[i].rule_id, "CUSTOMER_PRESSURE");
        assert_string_not_equal(k.a[i].rule_id, "PARTNER_PRESSURE");
    }
    struct pp_model_pxc_view v;
    assert_int_equal(pp_model_pxc_view(m, "P-S", "C-G", &v), 0);
    assert_true(v.aggression > 0.5);
    assert_true(v.cpi_short == 0.0 && v.cpi_long == 0.0);
    assert_true(v.health >= 75);
    struct pp_model_partner_view pv;
    assert_int_equal(pp_model_partner_view(m, 0, &pv), 0);
    assert_true(pv.r_qec >= 0.5 && pv.r_disc >= 0.5);
    assert_int_equal(pv.stuffing_state, 2);
    pp_model_destroy(m);
}

/* ---- reversals and renewals ------------------------------------------------- */

static void reversal(struct story *s, enum pp_deal_event type, const char *partner,
                     const char *customer, const char *deal_id, int32_t day, int64_t amount,
                     int32_t seats)
{
    struct pp_event *ev = add(s, PP_EV_DEAL, day, 12, "R-%s-%d-%d", deal_id, (int)type);
    struct pp_deal *d = &ev->u.deal;
    snprintf(d->deal_id, sizeof(d->deal_id), "%s", deal_id);
    d->event_type = type;
    snprintf(d->partner_id, sizeof(d->partner_id), "%s", partner);
    snprintf(d->customer_id, sizeof(d->customer_id), "%s", customer);
    snprintf(d->product_id, sizeof(d->product_id), "%s", "ACME-SUITE");
    d->close_date = day;
    d->term_months = 12;
    d->amount = amount;
    d->seats = seats;
}

static void test_reversals_and_renewals(void **state)
{
    (void)state;
    static struct story s;
    memset(&s, 0, sizeof(s));
    int32_t t0 = pp_day_from_civil(2025, 1, 10);
    /* four 100-seat deals (ACV 54,000 each at 10% off) */
    const char *cust[4] = {"C-R1", "C-R2", "C-R3", "C-R4"};
    for (int i = 0; i < 4; i++) {
        char id[16];
        snprintf(id, sizeof(id), "DR-%d", i);
        deal(&s, "P-R", cust[i], id, t0 + i, 100, 0.10, false, 12);
    }
    /* a credit of half of DR-0 on day 40, sent before the deal it names
     * would not matter: it is matched when the day is evaluated */
    reversal(&s, PP_DEAL_CREDITED, "P-R", "C-R1", "DR-0", t0 + 40, -2700000, 0);
    /* DR-1 cancelled on day 100; DR-2 loses 40 seats on day 100 */
    reversal(&s, PP_DEAL_CANCELLED, "P-R", "C-R2", "DR-1", t0 + 100, 0, 0);
    reversal(&s, PP_DEAL_AMENDED, "P-R", "C-R3", "DR-2", t0 + 100, -1080000, -40);
    /* DR-3 renewed for 12 months at its end */
    struct pp_event *ev =
        add(&s, PP_EV_DEAL, pp_add_months(t0 + 3, 12) - 5, 9, "D-%s-%d-%d", "DR-3R", 0);
    struct pp_deal *d = &ev->u.deal;
    snprintf(d->deal_id, sizeof(d->deal_id), "%s", "DR-3R");
    d->event_type = PP_DEAL_CLOSED_WON;
    snprintf(d->partner_id, sizeof(d->partner_id), "%s", "P-R");
    snprintf(d->customer_id, sizeof(d->customer_id), "%s", "C-R4");
    snprintf(d->product_id, sizeof(d->product_id), "%s", "ACME-SUITE");
    d->kind = PP_KIND_RENEWAL;
    d->close_date = pp_add_months(t0 + 3, 12) - 5;
    d->term_months = 12;
    d->seats = 100;
    d->amount = 5400000;
    for (int32_t day = t0; day < t0 + 420; day += 7) {
        for (int i = 0; i < 4; i++) {
            snapshot(&s, cust[i], day, 80, 100);
        }
    }
    qsort(s.ev, (size_t)s.n, sizeof(s.ev[0]), cmp_time);

    struct pp_model_conf cf = test_conf(0);
    struct pp_model *m = pp_model_new(&cf);
    struct pp_model_partner_view pv;
    struct pp_model_pxc_view v;
    int i = 0;
    int32_t checkpoints[] = {t0 + 39, t0 + 45, t0 + 99, t0 + 101, t0 + 380};
    for (size_t c = 0; c < sizeof(checkpoints) / sizeof(checkpoints[0]); c++) {
        while (i < s.n && pp_day_from_ms(s.ev[i].occurred_at_ms) <= checkpoints[c]) {
            assert_int_equal(pp_model_apply(m, &s.ev[i]), PP_APPLY_OK);
            pp_model_advance(m, s.ev[i].occurred_at_ms, NULL, NULL);
            i++;
        }
        pp_model_advance(m, pp_day_to_ms(checkpoints[c] + 1), NULL, NULL);
        assert_int_equal(pp_model_last_day(m), checkpoints[c]);
        assert_int_equal(pp_model_partner_view(m, 0, &pv), 0);
        switch (c) {
        case 0: /* no reversal in the feed yet: REV is null, not zero */
            assert_true(pv.r_rev < 0.0);
            break;
        case 1: /* deals closed in [t-365, t-30]: all four; 27,000 of 216,000 = 12.5% */
            assert_true(fabs(pv.r_rev - 0.5) < 1e-6);
            break;
        case 2:
            assert_int_equal(pp_model_pxc_view(m, "P-R", "C-R2", &v), 0);
            assert_true(fabs(v.partner_acv - 54000.0) < 1e-6);
            break;
        case 3: /* cancelled: no active deal left; REV adds the whole deal */
            assert_int_equal(pp_model_pxc_view(m, "P-R", "C-R2", &v), 0);
            assert_true(v.partner_acv == 0.0);
            assert_true(pv.r_rev == 1.0);
            break;
        case 4: /* the renewal keeps C-R4 owned and active past the first term */
            assert_int_equal(pp_model_pxc_view(m, "P-R", "C-R4", &v), 0);
            assert_true(fabs(v.partner_acv - 54000.0) < 1e-6);
            assert_int_equal(pp_model_pxc_view(m, "P-R", "C-R1", &v), 0);
            assert_true(v.partner_acv == 0.0); /* DR-0 ended */
            break;
        }
    }
    pp_model_destroy(m);
}

/* A credit of half a 100-seat deal (closed 300 days before the evaluated
 * day, so the partner still owns its adoption) of a customer using 30 seats.
 * Money only: 30 of an expected 75% of 100 is a 56% gap, CPI_long 60.3.
 * Seats returned: 30 of 50 against 75% is a 12% gap, no risk. The default
 * mode returns them only when the licence feed shows the lower entitlement. */
static double credit_cpi(uint32_t mode, bool feed_confirms)
{
    static struct story s;
    memset(&s, 0, sizeof(s));
    int32_t t0 = pp_day_from_civil(2024, 11, 4);
    int32_t credit = t0 + 200;
    deal(&s, "P-C", "C-C1", "DC-1", t0, 100, 0.10, false, 24);
    reversal(&s, PP_DEAL_CREDITED, "P-C", "C-C1", "DC-1", credit, -2700000, 0);
    for (int32_t day = t0; day <= t0 + 300; day++) {
        snapshot(&s, "C-C1", day, 30, feed_confirms && day >= credit ? 50 : 100);
    }
    qsort(s.ev, (size_t)s.n, sizeof(s.ev[0]), cmp_time);
    struct pp_model_conf cf = test_conf(0);
    cf.credit_mode = mode;
    struct pp_model *m = pp_model_new(&cf);
    static struct sink k;
    memset(&k, 0, sizeof(k));
    /* an ordered stream up to t0 + 300, then read the pair as of that day */
    for (int i = 0; i < s.n; i++) {
        assert_int_equal(pp_model_apply(m, &s.ev[i]), PP_APPLY_OK);
        pp_model_advance(m, s.ev[i].occurred_at_ms, on_alert, &k);
    }
    pp_model_advance(m, pp_day_to_ms(t0 + 301), on_alert, &k);
    assert_int_equal(pp_model_last_day(m), t0 + 300);
    struct pp_model_pxc_view v;
    assert_int_equal(pp_model_pxc_view(m, "P-C", "C-C1", &v), 0);
    pp_model_destroy(m);
    return v.cpi_long;
}

static void test_credit_modes(void **state)
{
    (void)state;
    double expected = 100.0 * pp_ramp(1.0 - 2700.0 / (100 * (59 * 0.65 + 31 * 0.75)), 0.2, 0.8);
    assert_true(fabs(credit_cpi(0, true) - expected) < 0.05);  /* money only */
    assert_true(fabs(credit_cpi(2, false) - expected) < 0.05); /* not confirmed */
    assert_true(credit_cpi(2, true) == 0.0);                   /* confirmed */
    assert_true(credit_cpi(1, false) == 0.0);                  /* always returned */
}

/* ---- cohort pools across a band change ------------------------------------------ */

/* Three mature peers (P-M, closed 200 days before d0, 100 seats all active)
 * each open one Sev-4 ticket a day and answer one positive CSAT; no
 * escalations. C-N (P-X, closed on d0, all seats active) is quiet until
 * d0+60, then opens a Sev-3 ticket a day, escalates every other one and
 * answers a CSAT a day, one in three positive. On d0+90 C-N leaves the
 * onboarding band and joins its peers' band. Its cohort pools must hold the
 * peers only, before (mature pool, x1.5 for LOAD) and after (its own band
 * less its own days there): leave-one-out must take out the days C-N has
 * spent in the pool, not its whole window. */
static void band_story(struct story *s, int32_t from, int32_t to)
{
    memset(s, 0, sizeof(*s));
    const char *peers[3] = {"C-M1", "C-M2", "C-M3"};
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof(id), "DM-%d", i);
        deal(s, "P-M", peers[i], id, d0() - 200, 100, 0.15, false, 24);
        s->ev[s->n - 1].occurred_at_ms = pp_day_to_ms(from) + 9 * HOUR_MS;
    }
    deal(s, "P-X", "C-N", "DN-1", d0(), 100, 0.10, false, 12);
    for (int32_t d = from; d <= to; d++) {
        for (int i = 0; i < 3; i++) {
            snapshot(s, peers[i], d, 100, 100);
            ticket(s, peers[i], d, 0, PP_TICKET_OPENED, 4, 0);
            ticket(s, peers[i], d, 0, PP_TICKET_CSAT, 4, 5);
        }
        if (d >= d0()) {
            snapshot(s, "C-N", d, 100, 100);
        }
        if (d >= d0() + 60) {
            ticket(s, "C-N", d, 0, PP_TICKET_OPENED, 3, 0);
            if ((d - d0()) % 2 == 0) {
                ticket(s, "C-N", d, 0, PP_TICKET_ESCALATED, 3, 0);
            }
            ticket(s, "C-N", d, 0, PP_TICKET_CSAT, 3, (d - d0()) % 3 == 0 ? 5 : 1);
        }
    }
    qsort(s->ev, (size_t)s->n, sizeof(s->ev[0]), cmp_time);
}

/* C-N's CPI from the formulas: the peers' rates as baselines (30 weighted
 * tickets per 100 seats per 30 d, x1.5 while onboarding; p0 = 0; c0 = 1),
 * its own counts over each window; no shelfware, no aggression. */
static void band_reference(const struct pp_model_conf *cf, int32_t day, double cpi[2])
{
    const uint32_t wl[2] = {cf->load_short_days, cf->load_long_days};
    const uint32_t wr[2] = {cf->ratio_short_days, cf->ratio_long_days};
    bool onboarding = day - d0() < (int32_t)cf->onboarding_days;
    for (int k = 0; k < 2; k++) {
        double wt = 0, n = 0, e = 0, resp = 0, pos = 0;
        for (int32_t d = d0() + 60; d <= day; d++) {
            if (d > day - (int32_t)wl[k]) {
                wt += cf->sev_weight[2];
            }
            if (d > day - (int32_t)wr[k]) {
                n += 1;
                e += (d - d0()) % 2 == 0;
                resp += 1;
                pos += (d - d0()) % 3 == 0;
            }
        }
        double base = 30.0 * (onboarding ? cf->onboarding_factor : 1.0);
        struct pp_sig load = pp_sig_load(cf, wt, 100.0, base, wl[k]);
        struct pp_sig esc = pp_sig_esc(cf, e, n, 0.0);
        struct pp_sig csat = pp_sig_csat(cf, pos, resp, 1.0);
        bool present;
        cpi[k] = pp_cpi(cf, pp_support_harm(&load, &esc, &csat, &present), 0.0);
    }
}

static void test_band_change_pools(void **state)
{
    (void)state;
    static struct story s;
    int32_t from = d0() - 100, to = d0() + 120;
    band_story(&s, from, to);
    struct pp_model_conf cf = test_conf(0);
    cf.cohort_min_customers = 3;
    struct pp_model *m = pp_model_new(&cf);
    static struct sink k;
    memset(&k, 0, sizeof(k));
    int i = 0;
    int checked = 0;
    for (int32_t day = from; day <= to; day++) {
        for (; i < s.n && s.ev[i].occurred_at_ms < pp_day_to_ms(day + 1); i++) {
            assert_int_equal(pp_model_apply(m, &s.ev[i]), PP_APPLY_OK);
        }
        pp_model_advance(m, pp_day_to_ms(day + 1), on_alert, &k);
        assert_int_equal(pp_model_last_day(m), day);
        if (day < d0() + 75) {
            continue;
        }
        struct pp_model_pxc_view v;
        assert_int_equal(pp_model_pxc_view(m, "P-X", "C-N", &v), 0);
        double want[2];
        band_reference(&cf, day, want);
        /* the pair view keeps its scores as floats */
        if (fabs(v.cpi_short - want[0]) > 1e-3 || fabs(v.cpi_long - want[1]) > 1e-3) {
            char ds[16];
            pp_day_format(day, ds, sizeof(ds));
            fail_msg("%s (d0+%d): CPI %.4f / %.4f, formulas %.4f / %.4f", ds, day - d0(),
                     v.cpi_short, v.cpi_long, want[0], want[1]);
        }
        checked++;
    }
    assert_int_equal(checked, 46);
    pp_model_destroy(m);
}

/* A day's dedup table is reused by a later day once its own day is
 * forgotten (dedup_horizon_days after evaluation), and reused empty: the
 * same event ids on every day are new on every day, and a second delivery
 * on its own day is a duplicate, also on the days whose table was a
 * forgotten day's (from the 9th on with the default horizon of 7). */
static void test_dedup_table_reused_empty(void **state)
{
    (void)state;
    struct pp_model_conf cf = test_conf(0);
    struct pp_model *m = pp_model_new(&cf);
    struct pp_event ev;
    uint64_t dups = 0;
    for (int32_t day = d0(); day < d0() + 20; day++) {
        for (int rep = 0; rep < 2; rep++) {
            for (int k = 0; k < 300; k++) {
                memset(&ev, 0, sizeof(ev));
                ev.type = PP_EV_SUPPORT;
                ev.occurred_at_ms = pp_day_to_ms(day) + 10 * HOUR_MS + k;
                snprintf(ev.event_id, sizeof(ev.event_id), "T-%d", k); /* no day in it */
                snprintf(ev.u.support.ticket_id, sizeof(ev.u.support.ticket_id), "TK-%d", k);
                snprintf(ev.u.support.customer_id, sizeof(ev.u.support.customer_id), "C-%d", k % 7);
                ev.u.support.event_type = PP_TICKET_OPENED;
                ev.u.support.severity = 3;
                assert_int_equal(pp_model_apply(m, &ev), PP_APPLY_OK);
            }
            /* the first delivery of the day: all new; the second: all duplicates */
            dups += rep == 0 ? 0 : 300;
            assert_int_equal(pp_model_stats(m)->duplicates, dups);
        }
        pp_model_advance(m, pp_day_to_ms(day + 1), NULL, NULL);
    }
    assert_int_equal(pp_model_stats(m)->events[PP_EV_SUPPORT], (uint64_t)20 * 300);
    pp_model_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_support_story),
        cmocka_unit_test(test_order_and_duplicates),
        cmocka_unit_test(test_skew_bound),
        cmocka_unit_test(test_stuffing_and_healthy_qe),
        cmocka_unit_test(test_reversals_and_renewals),
        cmocka_unit_test(test_credit_modes),
        cmocka_unit_test(test_band_change_pools),
        cmocka_unit_test(test_dedup_table_reused_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
