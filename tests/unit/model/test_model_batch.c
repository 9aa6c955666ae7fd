/*
 * test_model_batch.c — the batched apply path (pp_cstage_apply_batch,
 * pp_model_apply_batch) does exactly what applying the same events one by
 * one does.
 *
 * The batch path requests memory for events ahead of the one it applies;
 * it must change nothing else. Event streams from the synthetic load
 * (pp_scen_generate_load) and from MODEL.md §3's stories, deterministic and
 * with noise, are made rough: events delivered twice (a few positions
 * later, or days later when their day is evaluated), events held back for
 * days (some accepted with the day of lateness, most too late), customers
 * that first appear mid-stream (several events each, so that one batch
 * creates a customer and then finds it), events far ahead (skewed). Each
 * stream drives a customers stage feeding a partners stage, with the
 * watermark advanced at every new day and a changelog flush every so many
 * events, once applied event by event (pp_cstage_apply) and then in batches
 * of 1, 2, 3, 7 and 64 events and of random sizes (cut, as the runtime
 * would cut them, at every advance and flush). Every run must give the same
 * per-event results, exchange records, alert transitions, changelog
 * records, stats and final dumps of both stages (serial.c's bytes) as the
 * one-by-one run. The same for pp_model_apply_batch against pp_model_apply.
 */
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
#include "scenarios.h"
#include "stage.h"

/* ---- growable byte logs: everything a run emits, compared bytewise ---- */

struct buf {
    char *p;
    size_t n, cap;
};

static void buf_add(struct buf *b, const void *data, size_t len)
{
    if (b->n + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + len) {
            cap *= 2;
        }
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, len);
    b->n += len;
}

static void buf_printf(struct buf *b, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    assert_true(w > 0 && (size_t)w < sizeof(line));
    buf_add(b, line, (size_t)w);
}

static void expect_same(const struct buf *want, const struct buf *got, const char *what,
                        const char *run)
{
    size_t n = want->n < got->n ? want->n : got->n, i = 0;
    while (i < n && want->p[i] == got->p[i]) {
        i++;
    }
    if (i < n || want->n != got->n) {
        fail_msg("%s, %s: %zu vs %zu bytes, first difference at byte %zu", run, what, want->n,
                 got->n, i);
    }
}

static void stats_text(struct buf *b, const struct pp_model_stats *st)
{
    buf_printf(b,
               "ev %llu %llu %llu late %llu dup %llu skew %llu ign %llu tro %llu lko %llu "
               "ldo %llu days %llu al %llu %llu %llu cust %u part %u links %u bytes %zu\n",
               (unsigned long long)st->events[1], (unsigned long long)st->events[2],
               (unsigned long long)st->events[3], (unsigned long long)st->too_late,
               (unsigned long long)st->duplicates, (unsigned long long)st->skewed,
               (unsigned long long)st->ignored, (unsigned long long)st->tranche_overflow,
               (unsigned long long)st->link_overflow, (unsigned long long)st->ledger_overflow,
               (unsigned long long)st->days_evaluated, (unsigned long long)st->alerts[0],
               (unsigned long long)st->alerts[1], (unsigned long long)st->alerts[2], st->customers,
               st->partners, st->links, st->bytes_state);
}

/* ---- a rough stream: events and the points where the watermark moves ---- */

enum { IT_EVENT, IT_ADVANCE, IT_FLUSH };

struct item {
    int kind;
    size_t ev;  /* IT_EVENT: index into stream.ev */
    int64_t wm; /* IT_ADVANCE */
};

struct stream {
    struct pp_event *ev;
    size_t n_ev, cap_ev;
    struct item *it;
    size_t n_it, cap_it;
    int32_t last_day;
};

static size_t add_event(struct stream *s, const struct pp_event *ev)
{
    if (s->n_ev == s->cap_ev) {
        s->cap_ev = s->cap_ev ? s->cap_ev * 2 : 4096;
        s->ev = realloc(s->ev, s->cap_ev * sizeof(*s->ev));
        assert_non_null(s->ev);
    }
    s->ev[s->n_ev] = *ev;
    return s->n_ev++;
}

static void add_item(struct stream *s, int kind, size_t ev, int64_t wm)
{
    if (s->n_it == s->cap_it) {
        s->cap_it = s->cap_it ? s->cap_it * 2 : 4096;
        s->it = realloc(s->it, s->cap_it * sizeof(*s->it));
        assert_non_null(s->it);
    }
    s->it[s->n_it++] = (struct item){kind, ev, wm};
}

static void stream_free(struct stream *s)
{
    free(s->ev);
    free(s->it);
    memset(s, 0, sizeof(*s));
}

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* The generator's events, as they come (collected first). */
static int collect(const struct pp_event *ev, void *opaque)
{
    add_event(opaque, ev);
    return 0;
}

static void set_customer(struct pp_event *ev, const char *id)
{
    char *dst = ev->type == PP_EV_DEAL          ? ev->u.deal.customer_id
                : ev->type == PP_EV_CONSUMPTION ? ev->u.consumption.customer_id
                                                : ev->u.support.customer_id;
    assert_true(pp_id_set(dst, id, strlen(id)));
}

/* An event released when the base stream reaches position `at`. */
struct later {
    size_t at;
    struct pp_event ev;
};

static int cmp_later(const void *a, const void *b)
{
    const struct later *x = a, *y = b;
    return x->at < y->at ? -1 : x->at > y->at;
}

/* Makes the base events (in time order) rough, as the top says: the items
 * to run, the watermark advanced to the newest event at every new day. */
static void roughen(const struct stream *base, struct stream *out, uint64_t seed)
{
    uint64_t x = seed * UINT64_C(0x9E3779B97F4A7C15) + 1;
    struct later *lt = calloc(base->n_ev + 1, sizeof(*lt));
    assert_non_null(lt);
    size_t n_lt = 0;
    int32_t first = pp_day_from_ms(base->ev[0].occurred_at_ms);
    /* The events to release later, decided first. */
    bool *held = calloc(base->n_ev, sizeof(bool));
    assert_non_null(held);
    for (size_t i = 0; i < base->n_ev; i++) {
        uint64_t r = rng_next(&x) % 1000;
        if (r < 40) { /* delivered twice: a few events later, or days later */
            lt[n_lt].ev = base->ev[i];
            lt[n_lt++].at = i + 1 + (r < 8 ? 1000 + rng_next(&x) % 20000 : rng_next(&x) % 40);
        }
        else if (r < 70 && pp_day_from_ms(base->ev[i].occurred_at_ms) > first + 1) {
            held[i] = true; /* held back: about 0.3 to 5 days of the load */
            lt[n_lt].ev = base->ev[i];
            lt[n_lt++].at = i + 1000 + rng_next(&x) % 15000;
        }
    }
    qsort(lt, n_lt, sizeof(*lt), cmp_later);
    size_t next_lt = 0;
    int64_t newest = INT64_MIN;
    int32_t day = INT32_MIN;
    for (size_t i = 0; i <= base->n_ev; i++) {
        while (next_lt < n_lt && (lt[next_lt].at <= i || i == base->n_ev)) {
            add_item(out, IT_EVENT, add_event(out, &lt[next_lt++].ev), 0);
        }
        if (i == base->n_ev) {
            break;
        }
        struct pp_event ev = base->ev[i];
        int32_t d = pp_day_from_ms(ev.occurred_at_ms);
        if (d != day) {
            if (day != INT32_MIN) {
                add_item(out, IT_ADVANCE, 0, newest);
            }
            day = d;
        }
        if (i % 997 == 996) {
            add_item(out, IT_FLUSH, 0, 0);
        }
        if (held[i]) {
            continue;
        }
        uint64_t r = rng_next(&x) % 1000;
        char id[PP_ID_MAX];
        if (d > first + 2 && r < 20) { /* a customer of its own, first seen now */
            snprintf(id, sizeof(id), "NEW-%zu", i);
            set_customer(&ev, id);
        }
        else if (d > first + 2 && r < 35) { /* one of a few customers seen again and again */
            snprintf(id, sizeof(id), "AGAIN-%u", (unsigned)(rng_next(&x) % 40));
            set_customer(&ev, id);
        }
        else if (r < 37) { /* far ahead of the stage: skewed */
            ev.occurred_at_ms += 200 * INT64_C(86400000);
        }
        add_item(out, IT_EVENT, add_event(out, &ev), 0);
        if (ev.occurred_at_ms > newest && r >= 37) {
            newest = ev.occurred_at_ms;
        }
    }
    out->last_day = day;
    free(held);
    free(lt);
}

/* ---- a run: one customers stage feeding one partners stage -------------- */

struct run {
    struct pp_cstage *c;
    struct pp_pstage *p;
    struct buf results, xrecs, alerts, clog, plog, dump, stats;
};

static void conf_of(struct pp_model_conf *conf)
{
    pp_model_conf_defaults(conf);
    snprintf(conf->tenant, sizeof(conf->tenant), "%s", "acme");
    conf->allowed_lateness_ms = 24 * INT64_C(3600000); /* a day's events may come a day late */
}

static void on_alert(const struct pp_alert *a, void *opaque)
{
    buf_printf(opaque, "%s %d %d %s %.17g %.17g %s\n", a->alert_id, (int)a->status,
               (int)a->severity, a->parent_alert_id, a->value, a->threshold, a->summary);
}

static void to_partners(const struct pp_xrec *x, void *opaque)
{
    struct run *r = opaque;
    uint8_t b[PP_XREC_MAX_BYTES];
    size_t n = pp_xrec_encode(x, b, sizeof(b));
    assert_true(n > 0);
    buf_add(&r->xrecs, b, n);
    char err[128];
    assert_true(pp_pstage_offer(r->p, x, on_alert, &r->alerts, err, sizeof(err)) >= 0);
}

static void on_kv(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *opaque)
{
    struct buf *b = opaque;
    buf_add(b, &klen, sizeof(klen));
    buf_add(b, key, klen);
    buf_add(b, &vlen, sizeof(vlen));
    buf_add(b, val, vlen);
}

/* The events of a batch, copied contiguous as a caller would hand them. */
#define BATCH_MAX 128

struct pending {
    struct pp_event ev[BATCH_MAX];
    enum pp_apply_result res[BATCH_MAX];
    size_t n;
};

static void apply_pending(struct run *r, struct pending *pb)
{
    if (pb->n == 0) {
        return;
    }
    /* Poisoned: a result the batch path does not write shows. */
    memset(pb->res, 0x5a, sizeof(pb->res));
    pp_cstage_apply_batch(r->c, pb->ev, pb->n, pb->res);
    for (size_t i = 0; i < pb->n; i++) {
        buf_printf(&r->results, "%d\n", (int)pb->res[i]);
    }
    pb->n = 0;
}

/* batch 0: one pp_cstage_apply per event; > 0: batches of that size; < 0:
 * batches of random sizes 1..BATCH_MAX (seeded by -batch). */
static void run_stream(struct run *r, const struct stream *s, int batch)
{
    memset(r, 0, sizeof(*r));
    struct pp_model_conf conf;
    conf_of(&conf);
    r->c = pp_cstage_new(&conf, 0, 1);
    r->p = pp_pstage_new(&conf, 1);
    static struct pending pb;
    pb.n = 0;
    uint64_t x = (uint64_t)(batch < 0 ? -batch : 1) * 7919;
    size_t size = batch > 0 ? (size_t)batch : 1 + rng_next(&x) % BATCH_MAX;
    for (size_t i = 0; i < s->n_it; i++) {
        const struct item *it = &s->it[i];
        if (it->kind == IT_EVENT) {
            if (batch == 0) {
                buf_printf(&r->results, "%d\n", (int)pp_cstage_apply(r->c, &s->ev[it->ev]));
                continue;
            }
            pb.ev[pb.n++] = s->ev[it->ev];
            if (pb.n == size) {
                apply_pending(r, &pb);
                size = batch > 0 ? (size_t)batch : 1 + rng_next(&x) % BATCH_MAX;
            }
            continue;
        }
        apply_pending(r, &pb); /* an advance or a flush cuts the batch */
        if (it->kind == IT_ADVANCE) {
            pp_cstage_advance(r->c, it->wm, to_partners, r);
        }
        else {
            pp_cstage_drain(r->c, to_partners, r);
            pp_cstage_flush_dirty(r->c, on_kv, &r->clog);
            pp_pstage_flush_dirty(r->p, on_kv, &r->plog);
        }
    }
    apply_pending(r, &pb);
    pp_cstage_advance(r->c, pp_day_to_ms(s->last_day + 3), to_partners, r);
    pp_cstage_flush_dirty(r->c, on_kv, &r->clog);
    pp_pstage_flush_dirty(r->p, on_kv, &r->plog);
    pp_cstage_dump(r->c, on_kv, &r->dump);
    pp_pstage_dump(r->p, on_kv, &r->dump);
    stats_text(&r->stats, pp_cstage_stats(r->c));
    stats_text(&r->stats, pp_pstage_stats(r->p));
}

static void run_free(struct run *r)
{
    pp_cstage_destroy(r->c);
    pp_pstage_destroy(r->p);
    struct buf *all[] = {&r->results, &r->xrecs, &r->alerts, &r->clog,
                         &r->plog,    &r->dump,  &r->stats};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        free(all[i]->p);
    }
}

/* How often each result came, from a results log. */
static void count_results(const struct buf *b, size_t n[3])
{
    n[0] = n[1] = n[2] = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->p[i] >= '0' && b->p[i] <= '2') {
            n[b->p[i] - '0']++;
        }
    }
}

static void expect_batches_equal(const struct stream *s, const char *name)
{
    struct run ref;
    run_stream(&ref, s, 0);
    /* The stream is rough enough to mean something: every outcome occurs. */
    size_t n[3];
    count_results(&ref.results, n);
    const struct pp_model_stats *st = pp_cstage_stats(ref.c);
    print_message("%s: %zu events: ok %zu too_late %zu skewed %zu, duplicates %llu, "
                  "customers %u, %zu alert bytes\n",
                  name, n[0] + n[1] + n[2], n[0], n[1], n[2], (unsigned long long)st->duplicates,
                  st->customers, ref.alerts.n);
    assert_true(n[1] > 0 && n[2] > 0 && st->duplicates > 0);
    static const int batches[] = {1, 2, 3, 7, 64, -1, -2};
    for (size_t k = 0; k < sizeof(batches) / sizeof(batches[0]); k++) {
        struct run got;
        run_stream(&got, s, batches[k]);
        char what[64];
        snprintf(what, sizeof(what), "%s, batches of %d", name, batches[k]);
        expect_same(&ref.results, &got.results, "results", what);
        expect_same(&ref.xrecs, &got.xrecs, "exchange records", what);
        expect_same(&ref.alerts, &got.alerts, "alert transitions", what);
        expect_same(&ref.clog, &got.clog, "customers changelog", what);
        expect_same(&ref.plog, &got.plog, "partners changelog", what);
        expect_same(&ref.dump, &got.dump, "dumps", what);
        expect_same(&ref.stats, &got.stats, "stats", what);
        run_free(&got);
    }
    run_free(&ref);
}

static void test_load(void **state)
{
    (void)state;
    struct pp_scen_load load = {
        .partners = 150,
        .customers = 10,
        .days = 12,
        .first_day = pp_day_from_civil(2025, 1, 1),
        .seed = 7,
    };
    struct stream base = {0}, s = {0};
    assert_int_equal(pp_scen_generate_load(&load, collect, &base), 0);
    roughen(&base, &s, 1);
    expect_batches_equal(&s, "load");
    stream_free(&base);
    stream_free(&s);
}

static void test_scenarios(void **state)
{
    (void)state;
    struct pp_scen_conf sc;
    pp_scen_conf_defaults(&sc);
    for (int noise = 0; noise <= 1; noise++) {
        sc.noise = noise;
        sc.seed = 3;
        struct stream base = {0}, s = {0};
        assert_int_equal(pp_scen_generate(&sc, collect, &base), 0);
        roughen(&base, &s, 2 + (uint64_t)noise);
        expect_batches_equal(&s, noise ? "stories, noise" : "stories, deterministic");
        stream_free(&base);
        stream_free(&s);
    }
}

/* The cases spelled out, in one batch: a duplicate right behind its
 * original, a customer created and then found, an event of an evaluated
 * day, one far ahead. */
static void test_one_batch(void **state)
{
    (void)state;
    struct pp_model_conf conf;
    conf_of(&conf);
    struct pp_cstage *c = pp_cstage_new(&conf, 0, 1);
    int32_t d0 = pp_day_from_civil(2025, 3, 3);
    struct pp_event ev[6];
    memset(ev, 0, sizeof(ev));
    for (int i = 0; i < 6; i++) {
        ev[i].type = PP_EV_CONSUMPTION;
        ev[i].occurred_at_ms = pp_day_to_ms(d0 + 5) + i;
        snprintf(ev[i].event_id, sizeof(ev[i].event_id), "E%d", i);
        snprintf(ev[i].u.consumption.customer_id, PP_ID_MAX, "%s", i < 4 ? "C-1" : "C-2");
        snprintf(ev[i].u.consumption.product_id, PP_ID_MAX, "%s", "P");
        ev[i].u.consumption.as_of = d0 + 5;
        ev[i].u.consumption.licenses_active = 10 + i;
        ev[i].u.consumption.licenses_entitled = 20;
    }
    ev[1] = ev[0];                                     /* a duplicate */
    ev[2].occurred_at_ms = pp_day_to_ms(d0 + 1);       /* evaluated: too late */
    ev[3].occurred_at_ms = pp_day_to_ms(d0 + 5 + 400); /* skewed */
    ev[5].u.consumption.licenses_active = 99;          /* C-2 again */
    /* Days d0 .. d0 + 2 evaluated first. */
    struct pp_event first = ev[0];
    snprintf(first.event_id, sizeof(first.event_id), "%s", "F");
    first.occurred_at_ms = pp_day_to_ms(d0);
    assert_int_equal(pp_cstage_apply(c, &first), PP_APPLY_OK);
    pp_cstage_advance(c, pp_day_to_ms(d0 + 4), NULL, NULL);
    assert_true(pp_cstage_last_day(c) >= d0 + 1);
    enum pp_apply_result res[6];
    pp_cstage_apply_batch(c, ev, 6, res);
    const enum pp_apply_result want[6] = {PP_APPLY_OK,     PP_APPLY_OK, PP_APPLY_TOO_LATE,
                                          PP_APPLY_SKEWED, PP_APPLY_OK, PP_APPLY_OK};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(res[i], want[i]);
    }
    const struct pp_model_stats *st = pp_cstage_stats(c);
    assert_int_equal(st->duplicates, 1);
    assert_int_equal(st->too_late, 1);
    assert_int_equal(st->skewed, 1);
    assert_int_equal(st->customers, 2);
    assert_int_equal(st->events[PP_EV_CONSUMPTION], 4); /* with the first */
    pp_cstage_apply_batch(c, ev, 0, res);               /* nothing: allowed */
    pp_cstage_destroy(c);
}

/* pp_model_apply_batch against pp_model_apply: alerts, results, stats. */
struct mrun {
    struct buf results, alerts, stats;
};

static void model_run(const struct stream *s, int batch, struct mrun *out)
{
    memset(out, 0, sizeof(*out));
    struct pp_model_conf conf;
    conf_of(&conf);
    struct pp_model *m = pp_model_new(&conf);
    static struct pp_event evs[BATCH_MAX];
    enum pp_apply_result res[BATCH_MAX];
    size_t n = 0;
    for (size_t i = 0; i <= s->n_it; i++) {
        const struct item *it = i < s->n_it ? &s->it[i] : NULL;
        if (it && it->kind == IT_EVENT && batch == 0) {
            buf_printf(&out->results, "%d\n", (int)pp_model_apply(m, &s->ev[it->ev]));
            continue;
        }
        if (it && it->kind == IT_EVENT) {
            evs[n++] = s->ev[it->ev];
            if (n < (size_t)batch) {
                continue;
            }
        }
        pp_model_apply_batch(m, evs, n, res);
        for (size_t k = 0; k < n; k++) {
            buf_printf(&out->results, "%d\n", (int)res[k]);
        }
        n = 0;
        if (it && it->kind == IT_ADVANCE) {
            pp_model_advance(m, it->wm, on_alert, &out->alerts);
        }
    }
    pp_model_advance(m, pp_day_to_ms(s->last_day + 3), on_alert, &out->alerts);
    stats_text(&out->stats, pp_model_stats(m));
    pp_model_destroy(m);
}

static void test_model(void **state)
{
    (void)state;
    struct pp_scen_conf sc;
    pp_scen_conf_defaults(&sc);
    sc.noise = true;
    sc.seed = 5;
    struct stream base = {0}, s = {0};
    assert_int_equal(pp_scen_generate(&sc, collect, &base), 0);
    roughen(&base, &s, 9);
    struct mrun ref, got;
    model_run(&s, 0, &ref);
    assert_true(ref.alerts.n > 0);
    static const int batches[] = {1, 3, 64};
    for (size_t k = 0; k < sizeof(batches) / sizeof(batches[0]); k++) {
        model_run(&s, batches[k], &got);
        char what[64];
        snprintf(what, sizeof(what), "pp_model, batches of %d", batches[k]);
        expect_same(&ref.results, &got.results, "results", what);
        expect_same(&ref.alerts, &got.alerts, "alert transitions", what);
        expect_same(&ref.stats, &got.stats, "stats", what);
        free(got.results.p);
        free(got.alerts.p);
        free(got.stats.p);
    }
    free(ref.results.p);
    free(ref.alerts.p);
    free(ref.stats.p);
    stream_free(&base);
    stream_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_batch),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_scenarios),
        cmocka_unit_test(test_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
