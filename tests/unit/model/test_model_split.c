/*
 * test_model_split.c — the split model (stage.h) against the monolith.
 *
 * MODEL.md §3's scenarios (deterministic and three noise seeds) run through
 * the frozen monolith (model_ref.c), through pp_model (one customers stage
 * wired to one partners stage) and through K = 1, 2, 3 and 7 customers
 * stages (customer -> stage by a hash of its id) whose exchange records are
 * encoded, decoded and offered to one partners stage in a shuffled order:
 * within each day any interleaving of the sources (each source's own order
 * kept), and for K > 1 also a free interleaving of the whole streams. Every
 * run must report exactly the monolith's alert transitions, byte for byte.
 * Plus the wire form of exchange records: round trips of every kind and
 * refusals of truncated, unknown-version, unknown-kind, trailing-byte and
 * out-of-range input, and random bytes that must never crash the decoder.
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

#include "idmap.h"
#include "model.h"
#include "ptime.h"
#include "scenarios.h"
#include "stage.h"

/* The frozen monolith (model_ref.c). */
struct pp_mref;
struct pp_mref *pp_mref_new(const struct pp_model_conf *conf);
void pp_mref_destroy(struct pp_mref *m);
enum pp_apply_result pp_mref_apply(struct pp_mref *m, const struct pp_event *ev);
void pp_mref_advance(struct pp_mref *m, int64_t watermark_ms, pp_alert_cb *cb, void *opaque);

/* ---- collections ------------------------------------------------------------- */

struct events {
    struct pp_event *ev;
    size_t n, cap;
};

static int collect_event(const struct pp_event *ev, void *opaque)
{
    struct events *e = opaque;
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 4096;
        e->ev = realloc(e->ev, e->cap * sizeof(*e->ev));
        assert_non_null(e->ev);
    }
    e->ev[e->n++] = *ev;
    return 0;
}

struct alerts {
    struct pp_alert *a;
    size_t n, cap;
};

static void collect_alert(const struct pp_alert *a, void *opaque)
{
    struct alerts *l = opaque;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->a = realloc(l->a, l->cap * sizeof(*l->a));
        assert_non_null(l->a);
    }
    l->a[l->n++] = *a;
}

/* One source's exchange records, encoded. */
struct stream {
    uint8_t *buf;
    size_t len, cap;
    size_t *off; /* record i is buf[off[i] .. off[i+1]) */
    uint8_t *kind;
    int32_t *day;
    size_t n, cap_n;
};

static void on_xrec(const struct pp_xrec *x, void *opaque)
{
    struct stream *s = opaque;
    uint8_t tmp[PP_XREC_MAX_BYTES];
    size_t len = pp_xrec_encode(x, tmp, sizeof(tmp));
    assert_true(len > 0);
    /* The decoded record encodes to the same bytes. */
    struct pp_xrec back;
    char err[128];
    assert_int_equal(pp_xrec_decode(tmp, len, &back, err, sizeof(err)), 0);
    uint8_t again[PP_XREC_MAX_BYTES];
    assert_int_equal(pp_xrec_encode(&back, again, sizeof(again)), len);
    assert_memory_equal(tmp, again, len);
    if (s->len + len > s->cap) {
        s->cap = (s->cap + len) * 2;
        s->buf = realloc(s->buf, s->cap);
        assert_non_null(s->buf);
    }
    if (s->n + 2 > s->cap_n) {
        s->cap_n = s->cap_n ? s->cap_n * 2 : 1024;
        s->off = realloc(s->off, s->cap_n * sizeof(size_t));
        s->kind = realloc(s->kind, s->cap_n);
        s->day = realloc(s->day, s->cap_n * sizeof(int32_t));
        assert_true(s->off && s->kind && s->day);
    }
    memcpy(s->buf + s->len, tmp, len);
    s->off[s->n] = s->len;
    s->kind[s->n] = x->kind;
    s->day[s->n] = x->day;
    s->len += len;
    s->n++;
    s->off[s->n] = s->len;
}

/* Encoded bytes and counts per kind over a stream (printed once). */
static void stream_sizes(const struct stream *s)
{
    static const char *const names[6] = {"", "deal", "reversal", "cohort", "assessment", "eod"};
    size_t bytes[6] = {0}, n[6] = {0};
    for (size_t i = 0; i < s->n; i++) {
        if (s->kind[i] < 6) {
            bytes[s->kind[i]] += s->off[i + 1] - s->off[i];
            n[s->kind[i]]++;
        }
    }
    for (int k = 1; k < 6; k++) {
        if (n[k]) {
            printf("exchange %-10s records: %zu, mean %.0f bytes\n", names[k], n[k],
                   (double)bytes[k] / (double)n[k]);
        }
    }
}

static void stream_free(struct stream *s)
{
    free(s->buf);
    free(s->off);
    free(s->kind);
    free(s->day);
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* ---- the runs ------------------------------------------------------------------ */

static int64_t g_lateness_ms; /* the runs' allowed lateness */
/* Values that need the rings' wide cells (stage_int.h: active seats above
 * UINT16_MAX - 1, weighted tickets above UINT8_MAX): every seat count x 1000
 * and (scen_conf) ticket weights x 100. */
static bool g_wide;

static void widen_events(struct events *e)
{
    for (size_t i = 0; i < e->n; i++) {
        struct pp_event *ev = &e->ev[i];
        if (ev->type == PP_EV_CONSUMPTION) {
            ev->u.consumption.licenses_active *= 1000;
            ev->u.consumption.licenses_entitled *= 1000;
        }
        else if (ev->type == PP_EV_DEAL) {
            ev->u.deal.seats *= 1000;
        }
    }
}

static bool g_print_sizes; /* print the record sizes of the next K = 1 run */

static void scen_conf(struct pp_model_conf *conf)
{
    pp_model_conf_defaults(conf);
    snprintf(conf->tenant, sizeof(conf->tenant), "%s", "acme");
    conf->allowed_lateness_ms = g_lateness_ms;
    for (int i = 0; g_wide && i < 4; i++) {
        conf->sev_weight[i] *= 100.0;
    }
}

static void run_ref(const struct events *e, int32_t last_day, struct alerts *out)
{
    struct pp_model_conf conf;
    scen_conf(&conf);
    struct pp_mref *m = pp_mref_new(&conf);
    for (size_t i = 0; i < e->n; i++) {
        pp_mref_apply(m, &e->ev[i]);
        pp_mref_advance(m, e->ev[i].occurred_at_ms, collect_alert, out);
    }
    pp_mref_advance(m, pp_day_to_ms(last_day + 2), collect_alert, out);
    pp_mref_destroy(m);
}

static void run_model(const struct events *e, int32_t last_day, struct alerts *out)
{
    struct pp_model_conf conf;
    scen_conf(&conf);
    struct pp_model *m = pp_model_new(&conf);
    for (size_t i = 0; i < e->n; i++) {
        pp_model_apply(m, &e->ev[i]);
        pp_model_advance(m, e->ev[i].occurred_at_ms, collect_alert, out);
    }
    pp_model_advance(m, pp_day_to_ms(last_day + 2), collect_alert, out);
    pp_model_destroy(m);
}

enum merge { MERGE_BY_DAY, MERGE_FREE };

static void offer(struct pp_pstage *p, const struct stream *s, size_t i, struct alerts *out)
{
    struct pp_xrec x;
    char err[128];
    assert_int_equal(
        pp_xrec_decode(s->buf + s->off[i], s->off[i + 1] - s->off[i], &x, err, sizeof(err)), 0);
    int rc = pp_pstage_offer(p, &x, collect_alert, out, err, sizeof(err));
    if (rc != 0) {
        fail_msg("offer refused record %zu (kind %u day %d): rc %d %s", i, x.kind, x.day, rc, err);
    }
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : (x > y);
}

/* Offers the K streams to p: per day (MERGE_BY_DAY: every source's records
 * up to its first EOD >= D, randomly interleaved) or freely. */
static void merge(struct pp_pstage *p, struct stream *st, uint32_t k, enum merge mode,
                  uint64_t seed, struct alerts *out)
{
    size_t cur[8] = {0}, end[8];
    uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 1;
    if (mode == MERGE_FREE) {
        for (uint32_t j = 0; j < k; j++) {
            end[j] = st[j].n;
        }
    }
    size_t ndays = 0;
    int32_t *days = NULL;
    if (mode == MERGE_BY_DAY) {
        for (uint32_t j = 0; j < k; j++) {
            for (size_t i = 0; i < st[j].n; i++) {
                if (st[j].kind[i] == PP_XREC_EOD) {
                    days = realloc(days, (ndays + 1) * sizeof(int32_t));
                    days[ndays++] = st[j].day[i];
                }
            }
        }
        qsort(days, ndays, sizeof(int32_t), cmp_i32);
    }
    size_t di = 0;
    for (;;) {
        if (mode == MERGE_BY_DAY) {
            while (di < ndays && di > 0 && days[di] == days[di - 1]) {
                di++;
            }
            if (di == ndays) {
                break;
            }
            int32_t d = days[di++];
            for (uint32_t j = 0; j < k; j++) {
                end[j] = cur[j];
                while (end[j] < st[j].n) {
                    bool eod = st[j].kind[end[j]] == PP_XREC_EOD && st[j].day[end[j]] >= d;
                    end[j]++;
                    if (eod) {
                        break;
                    }
                }
            }
        }
        for (;;) {
            uint32_t left = 0;
            for (uint32_t j = 0; j < k; j++) {
                left += cur[j] < end[j];
            }
            if (left == 0) {
                break;
            }
            uint32_t pick = (uint32_t)(rng_next(&rng) % left);
            for (uint32_t j = 0; j < k; j++) {
                if (cur[j] < end[j] && pick-- == 0) {
                    offer(p, &st[j], cur[j]++, out);
                    break;
                }
            }
        }
        if (mode == MERGE_FREE) {
            break;
        }
    }
    for (uint32_t j = 0; j < k; j++) {
        assert_int_equal(cur[j], st[j].n);
    }
    free(days);
}

/* k stages; customers go to the first `used` of them (the others never see
 * an event and only send end-of-day markers). */
static void run_split_used(const struct events *e, int32_t last_day, uint32_t k, uint32_t used,
                           enum merge mode, uint64_t seed, struct alerts *out)
{
    struct pp_model_conf conf;
    scen_conf(&conf);
    struct pp_cstage *cs[8];
    struct stream st[8];
    memset(st, 0, sizeof(st));
    for (uint32_t j = 0; j < k; j++) {
        cs[j] = pp_cstage_new(&conf, j, k);
    }
    for (size_t i = 0; i < e->n; i++) {
        const struct pp_event *ev = &e->ev[i];
        uint32_t j = (uint32_t)(pp_hash_str(pp_event_customer_id(ev)) % used);
        pp_cstage_apply(cs[j], ev);
        /* One watermark for every customers task, as the runtime's. */
        for (uint32_t x = 0; x < k; x++) {
            pp_cstage_advance(cs[x], ev->occurred_at_ms, on_xrec, &st[x]);
        }
    }
    for (uint32_t x = 0; x < k; x++) {
        pp_cstage_advance(cs[x], pp_day_to_ms(last_day + 2), on_xrec, &st[x]);
    }
    struct pp_pstage *p = pp_pstage_new(&conf, k);
    merge(p, st, k, mode, seed, out);
    assert_int_equal(pp_pstage_pending_day(p), INT32_MIN);
    pp_pstage_destroy(p);
    if (k == 1 && g_print_sizes) {
        stream_sizes(&st[0]);
        g_print_sizes = false;
    }
    for (uint32_t j = 0; j < k; j++) {
        pp_cstage_destroy(cs[j]);
        stream_free(&st[j]);
    }
}

static void run_split(const struct events *e, int32_t last_day, uint32_t k, enum merge mode,
                      uint64_t seed, struct alerts *out)
{
    run_split_used(e, last_day, k, k, mode, seed, out);
}

static void expect_same(const struct alerts *want, const struct alerts *got, const char *what)
{
    for (size_t i = 0; i < want->n && i < got->n; i++) {
        if (memcmp(&want->a[i], &got->a[i], sizeof(struct pp_alert)) != 0) {
            char d[16];
            pp_day_format(got->a[i].eval_day, d, sizeof(d));
            fail_msg("%s: alert %zu differs: want %s got %s (%s)", what, i, want->a[i].alert_id,
                     got->a[i].alert_id, d);
        }
    }
    if (want->n != got->n) {
        fail_msg("%s: %zu alert transitions, the monolith %zu", what, got->n, want->n);
    }
}

static void scenario_case(bool noise, uint64_t seed)
{
    struct pp_scen_conf sc;
    pp_scen_conf_defaults(&sc);
    sc.noise = noise;
    sc.seed = seed;
    struct events e = {0};
    assert_int_equal(pp_scen_generate(&sc, collect_event, &e), 0);
    struct alerts ref = {0};
    run_ref(&e, sc.last_day, &ref);
    assert_true(ref.n > 10); /* the scenarios fire and resolve */

    struct alerts got = {0};
    run_model(&e, sc.last_day, &got);
    expect_same(&ref, &got, "pp_model");
    g_print_sizes = !noise;
    const uint32_t ks[4] = {1, 2, 3, 7};
    for (int i = 0; i < 4; i++) {
        for (int mode = MERGE_BY_DAY; mode <= MERGE_FREE; mode++) {
            if (ks[i] == 1 && mode == MERGE_FREE) {
                continue; /* one source: nothing to interleave */
            }
            got.n = 0;
            run_split(&e, sc.last_day, ks[i], (enum merge)mode, seed + ks[i], &got);
            char what[64];
            snprintf(what, sizeof(what), "K=%u %s seed=%llu%s", ks[i],
                     mode == MERGE_BY_DAY ? "by-day" : "free", (unsigned long long)seed,
                     noise ? "" : " (det)");
            expect_same(&ref, &got, what);
        }
    }
    if (!noise) {
        /* A customers task whose partition holds no customer at all. */
        got.n = 0;
        run_split_used(&e, sc.last_day, 3, 2, MERGE_FREE, seed, &got);
        expect_same(&ref, &got, "K=3, one stage without customers");
    }
    free(got.a);
    free(ref.a);
    free(e.ev);
}

/* A day of lateness and every day's events shuffled (and the watermark
 * following each event's time, as in the backtest): events of a day arrive
 * after later ones, deals reach the ledger out of order. */
static void test_scenarios_late(void **state)
{
    (void)state;
    struct pp_scen_conf sc;
    pp_scen_conf_defaults(&sc);
    sc.noise = true;
    sc.seed = 5;
    struct events e = {0};
    assert_int_equal(pp_scen_generate(&sc, collect_event, &e), 0);
    uint64_t rng = 77;
    for (size_t lo = 0; lo < e.n;) {
        int32_t day = pp_day_from_ms(e.ev[lo].occurred_at_ms);
        size_t hi = lo;
        while (hi < e.n && pp_day_from_ms(e.ev[hi].occurred_at_ms) <= day + 1) {
            hi++; /* two days at a time: within the lateness */
        }
        for (size_t i = hi - 1; i > lo; i--) {
            size_t j = lo + (size_t)(rng_next(&rng) % (i - lo + 1));
            struct pp_event t = e.ev[i];
            e.ev[i] = e.ev[j];
            e.ev[j] = t;
        }
        lo = hi;
    }
    g_lateness_ms = 24 * INT64_C(3600000);
    struct alerts ref = {0}, got = {0};
    run_ref(&e, sc.last_day, &ref);
    assert_true(ref.n > 10);
    run_model(&e, sc.last_day, &got);
    expect_same(&ref, &got, "late: pp_model");
    for (uint32_t k = 2; k <= 7; k += 5) {
        got.n = 0;
        run_split(&e, sc.last_day, k, MERGE_FREE, k, &got);
        expect_same(&ref, &got, k == 2 ? "late: K=2" : "late: K=7");
    }
    g_lateness_ms = 0;
    free(got.a);
    free(ref.a);
    free(e.ev);
}

/* Customers whose ring cells are widened (seats and ticket weights beyond
 * the narrow cells), some from their first event and some later: the same
 * transitions as the monolith, whose rings are always wide. */
static void test_scenarios_wide(void **state)
{
    (void)state;
    struct pp_scen_conf sc;
    pp_scen_conf_defaults(&sc);
    sc.noise = true;
    sc.seed = 4;
    struct events e = {0};
    assert_int_equal(pp_scen_generate(&sc, collect_event, &e), 0);
    widen_events(&e);
    g_wide = true;
    struct alerts ref = {0}, got = {0};
    run_ref(&e, sc.last_day, &ref);
    assert_true(ref.n > 0);
    run_model(&e, sc.last_day, &got);
    expect_same(&ref, &got, "wide: pp_model");
    got.n = 0;
    run_split(&e, sc.last_day, 3, MERGE_FREE, 3, &got);
    expect_same(&ref, &got, "wide: K=3");
    g_wide = false;
    free(got.a);
    free(ref.a);
    free(e.ev);
}

static void test_scenarios_det(void **state)
{
    (void)state;
    scenario_case(false, 1);
}

static void test_scenarios_noise(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        scenario_case(true, seed);
    }
}

/* ---- MODEL.md §1's maximum wait: a source left behind ---------------------- */

/* Offers stream s from *cur while its records are of days <= upto (its EOD
 * for upto included); returns how many the stage ignored (rc 1). */
static size_t offer_upto(struct pp_pstage *p, const struct stream *s, size_t *cur, int32_t upto,
                         struct alerts *out)
{
    size_t ignored = 0;
    while (*cur < s->n && s->day[*cur] <= upto) {
        struct pp_xrec x;
        char err[128];
        assert_int_equal(pp_xrec_decode(s->buf + s->off[*cur], s->off[*cur + 1] - s->off[*cur], &x,
                                        err, sizeof(err)),
                         0);
        int rc = pp_pstage_offer(p, &x, collect_alert, out, err, sizeof(err));
        assert_true(rc == 0 || rc == 1);
        ignored += rc == 1;
        (*cur)++;
    }
    return ignored;
}

static void test_force_leaves_source_behind(void **state)
{
    (void)state;
    struct pp_scen_conf sc;
    pp_scen_conf_defaults(&sc);
    struct events e = {0};
    assert_int_equal(pp_scen_generate(&sc, collect_event, &e), 0);
    struct pp_model_conf conf;
    scen_conf(&conf);
    enum { K = 3 };
    struct pp_cstage *cs[K];
    struct stream st[K];
    memset(st, 0, sizeof(st));
    for (uint32_t j = 0; j < K; j++) {
        cs[j] = pp_cstage_new(&conf, j, K);
    }
    for (size_t i = 0; i < e.n; i++) {
        uint32_t j = (uint32_t)(pp_hash_str(pp_event_customer_id(&e.ev[i])) % K);
        pp_cstage_apply(cs[j], &e.ev[i]);
        for (uint32_t x = 0; x < K; x++) {
            pp_cstage_advance(cs[x], e.ev[i].occurred_at_ms, on_xrec, &st[x]);
        }
    }
    for (uint32_t x = 0; x < K; x++) {
        pp_cstage_advance(cs[x], pp_day_to_ms(sc.last_day + 2), on_xrec, &st[x]);
    }
    int32_t first = st[2].day[0], d0 = first + 100, d1 = sc.last_day - 60;
    struct pp_pstage *p = pp_pstage_new(&conf, K);
    struct alerts out = {0};
    size_t cur[K] = {0};
    /* Source 2 stops at d0, the others go on to d1: the stage waits. */
    offer_upto(p, &st[2], &cur[2], d0, &out);
    offer_upto(p, &st[0], &cur[0], d1, &out);
    offer_upto(p, &st[1], &cur[1], d1, &out);
    assert_int_equal(pp_pstage_last_day(p), d0);
    assert_int_equal(pp_pstage_absent(p), 0);
    size_t before = out.n;
    /* The maximum wait runs out: source 2 is left behind, every day the
     * others closed is evaluated, and the transitions say why. */
    assert_int_equal(pp_pstage_force(p, collect_alert, &out), 1);
    assert_int_equal(pp_pstage_absent(p), 1);
    assert_int_equal(pp_pstage_last_day(p), d1);
    assert_int_equal(pp_pstage_pending_day(p), INT32_MIN);
    assert_true(out.n > before);
    for (size_t i = before; i < out.n; i++) {
        assert_non_null(strstr(out.a[i].summary, "cohort baselines: configured fallbacks, 1 of 3"));
    }
    assert_int_equal(pp_pstage_force(p, collect_alert, &out), 0); /* nothing pending */
    /* Source 2 comes back: its records of evaluated days are ignored, its
     * end-of-day for d1 makes it a member again. */
    assert_true(offer_upto(p, &st[2], &cur[2], d1, &out) > 0);
    assert_int_equal(pp_pstage_absent(p), 0);
    size_t rejoined = out.n;
    for (uint32_t j = 0; j < K; j++) {
        offer_upto(p, &st[j], &cur[j], INT32_MAX, &out);
        assert_int_equal(cur[j], st[j].n);
    }
    assert_int_equal(pp_pstage_last_day(p), sc.last_day + 1);
    for (size_t i = rejoined; i < out.n; i++) {
        assert_null(strstr(out.a[i].summary, "cohort baselines"));
    }
    pp_pstage_destroy(p);
    for (uint32_t j = 0; j < K; j++) {
        pp_cstage_destroy(cs[j]);
        stream_free(&st[j]);
    }
    free(out.a);
    free(e.ev);
}

/* ---- the wire form ------------------------------------------------------------- */

static size_t enc(const struct pp_xrec *x, uint8_t *buf)
{
    size_t n = pp_xrec_encode(x, buf, PP_XREC_MAX_BYTES);
    assert_true(n > 0);
    return n;
}

static void roundtrip(const struct pp_xrec *x)
{
    uint8_t buf[PP_XREC_MAX_BYTES];
    size_t n = enc(x, buf);
    struct pp_xrec y;
    char err[128];
    assert_int_equal(pp_xrec_decode(buf, n, &y, err, sizeof(err)), 0);
    /* x was zeroed before its fields were set: the structs compare whole. */
    assert_memory_equal(x, &y, sizeof(y));
    /* Every shorter prefix is refused, and one byte more too. */
    for (size_t cut = 0; cut < n; cut++) {
        assert_int_equal(pp_xrec_decode(buf, cut, &y, err, sizeof(err)), -1);
    }
    uint8_t longer[PP_XREC_MAX_BYTES + 1];
    memcpy(longer, buf, n);
    longer[n] = 0;
    assert_int_equal(pp_xrec_decode(longer, n + 1, &y, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "trailing"));
    /* And a buffer one byte short is refused by the encoder. */
    assert_int_equal(pp_xrec_encode(x, buf, n - 1), 0);
}

static void set_sig(struct pp_xsig *s, bool present, double value, double risk)
{
    s->present = present;
    s->value = value;
    s->risk = risk;
}

static void fill_own(struct pp_xown *o, uint64_t base)
{
    o->active = base * 1000003u + UINT32_MAX;
    o->wt = (uint32_t)base * 7u;
    o->opened = (uint32_t)base + 1;
    o->esc = (uint32_t)base + 2;
    o->resp = (uint32_t)base + 3;
    o->pos = UINT32_MAX;
}

static void test_xrec_roundtrip(void **state)
{
    (void)state;
    struct pp_xrec x;
    memset(&x, 0, sizeof(x));
    x.kind = PP_XREC_DEAL;
    x.source = 6;
    x.day = -3;
    snprintf(x.u.deal.partner_id, PP_ID_MAX, "%s", "P-\xc3\xa9t\xc3\xa9");
    snprintf(x.u.deal.customer_id, PP_ID_MAX, "%063d", 7);
    x.u.deal.deal = UINT64_MAX - 5;
    x.u.deal.acv = 123456.78;
    x.u.deal.discount = NAN;
    x.u.deal.close = INT32_MIN;
    x.u.deal.known = INT32_MAX;
    x.u.deal.qe = 1;
    x.u.deal.kind = PP_KIND_COMMIT;
    x.u.deal.hint_partner = UINT32_MAX;
    roundtrip(&x);

    memset(&x, 0, sizeof(x));
    x.kind = PP_XREC_REVERSAL;
    x.source = UINT32_MAX;
    x.day = 20000;
    snprintf(x.u.rev.partner_id, PP_ID_MAX, "%s", "P-1");
    x.u.rev.deal = 42;
    x.u.rev.acv = -0.0;
    roundtrip(&x);
    x.u.rev.acv = NAN;
    roundtrip(&x);

    memset(&x, 0, sizeof(x));
    x.kind = PP_XREC_COHORT;
    x.day = 20001;
    snprintf(x.u.cohort.product_id, PP_ID_MAX, "%s", "ACME-SUITE");
    x.u.cohort.band = 2;
    x.u.cohort.customers = 31;
    x.u.cohort.wt = UINT64_MAX;
    x.u.cohort.active = 1ull << 40;
    x.u.cohort.opened = 0;
    x.u.cohort.esc = 1;
    x.u.cohort.resp = 127;
    x.u.cohort.pos = 128;
    roundtrip(&x);

    memset(&x, 0, sizeof(x));
    x.kind = PP_XREC_ASSESS;
    x.source = 2;
    x.day = 20002;
    struct pp_xrec_assess *a = &x.u.assess;
    snprintf(a->customer_id, PP_ID_MAX, "%063d", 1);
    snprintf(a->partner_id, PP_ID_MAX, "%063d", 2);
    snprintf(a->product_id, PP_ID_MAX, "%063d", 3);
    a->link = 3;
    a->band = -1;
    a->has_seats = true;
    a->touched = true;
    set_sig(&a->shelf[0], true, 0.25, 0.5);
    set_sig(&a->shelf[1], false, -0.0, NAN);
    set_sig(&a->gap[1], true, 1e300, 1.0);
    set_sig(&a->oversell, true, 0.0, 0.75);
    a->exp_util0 = NAN;
    a->s365 = 1.0;
    a->s180 = 0.0;
    a->partner_acv = 98765.4321;
    a->oversell_o = 3.5;
    a->oversell_seats = 10;
    a->oversell_deals = UINT32_MAX;
    a->load_wdays[0] = 14;
    a->load_wdays[1] = 30;
    for (int i = 0; i < PP_XW__COUNT; i++) {
        fill_own(&a->win[i], (uint64_t)i);
        fill_own(&a->band_own[i], (uint64_t)(i % 2 ? i : i + 10)); /* some equal the window */
        fill_own(&a->mature_own[i], (uint64_t)(i + 20));
    }
    a->hint_owner = 0;
    a->hint_customer = a->hint_partner = a->hint_product = UINT32_MAX;
    a->n_qedeal = PP_XREC_MAX_QEDEAL;
    for (int i = 0; i < PP_XREC_MAX_QEDEAL; i++) {
        a->qedeal_qe[i] = (uint8_t)(i & 1);
        a->qedeal_disc[i] = i == 3 ? NAN : 0.05f * (float)i;
        a->qedeal_close[i] = i == 0 ? INT32_MIN : 20000 - 10 * i;
    }
    uint8_t buf[PP_XREC_MAX_BYTES];
    printf("assessment, every field at its widest: %zu bytes\n", enc(&x, buf));
    roundtrip(&x);
    a->band = 2;
    a->n_qedeal = 0;
    memset(a->qedeal_qe, 0, sizeof(a->qedeal_qe));
    memset(a->qedeal_disc, 0, sizeof(a->qedeal_disc));
    memset(a->qedeal_close, 0, sizeof(a->qedeal_close));
    memset(a->customer_id, 0, sizeof(a->customer_id));
    roundtrip(&x);

    memset(&x, 0, sizeof(x));
    x.kind = PP_XREC_EOD;
    x.source = 1;
    x.day = INT32_MIN;
    x.u.eod.flags = PP_EOD_EVALUATED | PP_EOD_STARTED;
    roundtrip(&x);
}

static void expect_refused(const uint8_t *buf, size_t n, const char *needle)
{
    struct pp_xrec y;
    char err[160] = "";
    assert_int_equal(pp_xrec_decode(buf, n, &y, err, sizeof(err)), -1);
    if (strstr(err, needle) == NULL) {
        fail_msg("error '%s' does not say '%s'", err, needle);
    }
}

static void test_xrec_malformed(void **state)
{
    (void)state;
    struct pp_xrec x;
    memset(&x, 0, sizeof(x));
    x.kind = PP_XREC_COHORT;
    x.day = 5;
    snprintf(x.u.cohort.product_id, PP_ID_MAX, "%s", "ACME");
    x.u.cohort.band = 1;
    uint8_t buf[PP_XREC_MAX_BYTES];
    size_t n = enc(&x, buf);

    expect_refused(buf, 0, "truncated");
    buf[0] = PP_XREC_VERSION + 1;
    expect_refused(buf, n, "unknown version");
    buf[0] = PP_XREC_VERSION;
    buf[1] = 99;
    expect_refused(buf, n, "unknown kind");
    buf[1] = PP_XREC_COHORT;
    /* product id length (byte 4, after version, kind, source, day) too long */
    assert_int_equal(buf[4], 4);
    buf[4] = PP_ID_MAX;
    expect_refused(buf, n, "id too long");
    buf[4] = 4;
    buf[5] = '\0';
    expect_refused(buf, n, "NUL");
    buf[5] = 'A';
    buf[9] = 3; /* band */
    expect_refused(buf, n, "band");
    buf[9] = 1;
    struct pp_xrec y;
    char err[128];
    assert_int_equal(pp_xrec_decode(buf, n, &y, err, sizeof(err)), 0);

    /* A varint that never ends. */
    uint8_t endless[16] = {PP_XREC_VERSION, PP_XREC_EOD};
    memset(endless + 2, 0xff, sizeof(endless) - 2);
    expect_refused(endless, sizeof(endless), "varint");
    /* EOD flags beyond the defined ones. */
    uint8_t eod[] = {PP_XREC_VERSION, PP_XREC_EOD, 0, 0, 8};
    expect_refused(eod, sizeof(eod), "flags");

    /* Random input never crashes (ASan) and a success re-encodes to itself. */
    uint64_t rng = 12345;
    for (int i = 0; i < 20000; i++) {
        uint8_t r[96];
        size_t len = (size_t)(rng_next(&rng) % sizeof(r));
        for (size_t j = 0; j < len; j++) {
            r[j] = (uint8_t)rng_next(&rng);
        }
        if (len > 1) {
            r[0] = PP_XREC_VERSION;
            r[1] = (uint8_t)(1 + rng_next(&rng) % 5);
        }
        if (pp_xrec_decode(r, len, &y, err, sizeof(err)) == 0) {
            uint8_t again[PP_XREC_MAX_BYTES];
            size_t m = pp_xrec_encode(&y, again, sizeof(again));
            assert_true(m > 0);
        }
    }
}

static void test_offer_refuses(void **state)
{
    (void)state;
    struct pp_model_conf conf;
    scen_conf(&conf);
    struct pp_pstage *p = pp_pstage_new(&conf, 2);
    struct pp_xrec x;
    memset(&x, 0, sizeof(x));
    x.kind = PP_XREC_EOD;
    x.source = 2;
    char err[128];
    assert_int_equal(pp_pstage_offer(p, &x, NULL, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "source 2"));
    x.source = 1;
    x.kind = 42;
    assert_int_equal(pp_pstage_offer(p, &x, NULL, NULL, err, sizeof(err)), -1);
    /* A day waits for every source's EOD. */
    x.kind = PP_XREC_EOD;
    x.day = 100;
    x.u.eod.flags = PP_EOD_EVALUATED | PP_EOD_STARTED;
    x.source = 0;
    assert_int_equal(pp_pstage_offer(p, &x, NULL, NULL, err, sizeof(err)), 0);
    assert_int_equal(pp_pstage_pending_day(p), 100);
    assert_int_equal(pp_pstage_last_day(p), INT32_MIN);
    x.source = 1;
    assert_int_equal(pp_pstage_offer(p, &x, NULL, NULL, err, sizeof(err)), 0);
    assert_int_equal(pp_pstage_pending_day(p), INT32_MIN);
    assert_int_equal(pp_pstage_last_day(p), 100);
    /* A record of an evaluated day is ignored. */
    x.kind = PP_XREC_COHORT;
    assert_int_equal(pp_pstage_offer(p, &x, NULL, NULL, err, sizeof(err)), 1);
    pp_pstage_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xrec_roundtrip),  cmocka_unit_test(test_xrec_malformed),
        cmocka_unit_test(test_offer_refuses),   cmocka_unit_test(test_scenarios_det),
        cmocka_unit_test(test_scenarios_noise), cmocka_unit_test(test_scenarios_late),
        cmocka_unit_test(test_scenarios_wide),  cmocka_unit_test(test_force_leaves_source_behind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
