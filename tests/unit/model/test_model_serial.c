/*
 * test_model_serial.c — the stages' changelog and snapshot records
 * (stage.h "state serialisation").
 *
 * MODEL.md §3's scenarios run through K customers stages and one partners
 * stage, exchange records encoded and decoded on the way, every stage's
 * dirty keys flushed after each event (the runtime flushes every commit
 * interval). Half-way through, the run is cut and continued in fresh
 * stages restored (a) from a dump of every key and (b) from the flushed
 * records replayed in order (last write wins): both must report exactly the
 * uninterrupted run's alert transitions, and the restored stages must dump
 * exactly the bytes the originals dumped. Malformed values are refused.
 * Prints the bytes per key of each kind (docs/model.md quotes them).
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
#include "../vectors/cstage_v1_vectors.h"

#define MAX_K 3

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

/* A key-value log (flushed records, or a dump). */
struct kv {
    uint8_t *key, *val;
    size_t klen, vlen;
};

struct kvlog {
    struct kv *r;
    size_t n, cap;
};

static void collect_kv(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
                       void *opaque)
{
    struct kvlog *l = opaque;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->r = realloc(l->r, l->cap * sizeof(*l->r));
        assert_non_null(l->r);
    }
    struct kv *x = &l->r[l->n++];
    x->key = malloc(klen);
    x->val = malloc(vlen ? vlen : 1);
    assert_true(x->key && x->val);
    memcpy(x->key, key, klen);
    memcpy(x->val, val, vlen);
    x->klen = klen;
    x->vlen = vlen;
}

static void kvlog_free(struct kvlog *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->r[i].key);
        free(l->r[i].val);
    }
    free(l->r);
    memset(l, 0, sizeof(*l));
}

static int cmp_kv(const void *a, const void *b)
{
    const struct kv *x = a, *y = b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->key, y->key, n);
    return c ? c : (x->klen < y->klen ? -1 : x->klen > y->klen);
}

/* Two dumps hold the same keys with the same bytes (in any order). */
static void expect_same_dump(struct kvlog *a, struct kvlog *b, const char *what)
{
    qsort(a->r, a->n, sizeof(*a->r), cmp_kv);
    qsort(b->r, b->n, sizeof(*b->r), cmp_kv);
    if (a->n != b->n) {
        fail_msg("%s: %zu keys vs %zu", what, a->n, b->n);
    }
    for (size_t i = 0; i < a->n; i++) {
        if (cmp_kv(&a->r[i], &b->r[i]) != 0 || a->r[i].vlen != b->r[i].vlen ||
            memcmp(a->r[i].val, b->r[i].val, a->r[i].vlen) != 0) {
            fail_msg("%s: key %zu ('%c%.*s') differs", what, i, a->r[i].key[0],
                     (int)a->r[i].klen - 1, (const char *)a->r[i].key + 1);
        }
    }
}

/* ---- a run: K customers stages, one partners stage ---------------------- */

struct run {
    uint32_t k;
    struct pp_cstage *cs[MAX_K];
    struct pp_pstage *p;
    struct alerts *out;
    struct kvlog clog[MAX_K], plog; /* flushed records */
    bool flush;
};

/* Values that need the rings' wide cells (stage_int.h: active seats above
 * UINT16_MAX - 1, weighted tickets above UINT8_MAX): every seat count x 1000
 * and (scen_conf) ticket weights x 100. */
static bool g_wide;
static bool g_late; /* a day of lateness: snapshots of two days wait to be finalized */

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

static void conf_of(struct pp_model_conf *conf)
{
    pp_model_conf_defaults(conf);
    snprintf(conf->tenant, sizeof(conf->tenant), "%s", "acme");
    conf->allowed_lateness_ms = g_late ? 24 * INT64_C(3600000) : 0;
    for (int i = 0; g_wide && i < 4; i++) {
        conf->sev_weight[i] *= 100.0;
    }
}

static void run_new(struct run *r, uint32_t k, struct alerts *out)
{
    memset(r, 0, sizeof(*r));
    struct pp_model_conf conf;
    conf_of(&conf);
    r->k = k;
    for (uint32_t j = 0; j < k; j++) {
        r->cs[j] = pp_cstage_new(&conf, j, k);
    }
    r->p = pp_pstage_new(&conf, k);
    r->out = out;
}

static void run_free(struct run *r)
{
    for (uint32_t j = 0; j < r->k; j++) {
        pp_cstage_destroy(r->cs[j]);
        kvlog_free(&r->clog[j]);
    }
    pp_pstage_destroy(r->p);
    kvlog_free(&r->plog);
}

/* Exchange records go through the wire form to the partners stage. */
static void to_partners(const struct pp_xrec *x, void *opaque)
{
    struct run *r = opaque;
    uint8_t buf[PP_XREC_MAX_BYTES];
    size_t n = pp_xrec_encode(x, buf, sizeof(buf));
    assert_true(n > 0);
    struct pp_xrec y;
    char err[128];
    assert_int_equal(pp_xrec_decode(buf, n, &y, err, sizeof(err)), 0);
    assert_int_equal(pp_pstage_offer(r->p, &y, collect_alert, r->out, err, sizeof(err)), 0);
}

static void step(struct run *r, const struct pp_event *ev)
{
    uint32_t j = (uint32_t)(pp_hash_str(pp_event_customer_id(ev)) % r->k);
    pp_cstage_apply(r->cs[j], ev);
    for (uint32_t x = 0; x < r->k; x++) {
        pp_cstage_advance(r->cs[x], ev->occurred_at_ms, to_partners, r);
    }
    if (r->flush) {
        for (uint32_t x = 0; x < r->k; x++) {
            pp_cstage_flush_dirty(r->cs[x], collect_kv, &r->clog[x]);
        }
        pp_pstage_flush_dirty(r->p, collect_kv, &r->plog);
    }
}

static void finish(struct run *r, int32_t last_day)
{
    for (uint32_t x = 0; x < r->k; x++) {
        pp_cstage_advance(r->cs[x], pp_day_to_ms(last_day + 2), to_partners, r);
    }
}

static void restore_c(struct pp_cstage *s, const struct kvlog *l)
{
    char err[160];
    for (size_t i = 0; i < l->n; i++) {
        const struct kv *x = &l->r[i];
        if (pp_cstage_restore_kv(s, x->key, x->klen, x->val, x->vlen, err, sizeof(err)) != 0) {
            fail_msg("restore: %s", err);
        }
    }
}

static void restore_p(struct pp_pstage *s, const struct kvlog *l)
{
    char err[160];
    for (size_t i = 0; i < l->n; i++) {
        const struct kv *x = &l->r[i];
        if (pp_pstage_restore_kv(s, x->key, x->klen, x->val, x->vlen, err, sizeof(err)) != 0) {
            fail_msg("restore: %s", err);
        }
    }
}

static void expect_same_alerts(const struct alerts *want, const struct alerts *got,
                               const char *what)
{
    for (size_t i = 0; i < want->n && i < got->n; i++) {
        if (memcmp(&want->a[i], &got->a[i], sizeof(struct pp_alert)) != 0) {
            fail_msg("%s: alert %zu differs: want %s got %s", what, i, want->a[i].alert_id,
                     got->a[i].alert_id);
        }
    }
    if (want->n != got->n) {
        fail_msg("%s: %zu alert transitions, uninterrupted %zu", what, got->n, want->n);
    }
}

/* Bytes per key kind, over the dumps of a run. */
static void print_sizes(const struct kvlog *l, const char *stage)
{
    const char kinds[] = "cpxqm";
    for (const char *k = kinds; *k; k++) {
        size_t n = 0, sum = 0, max = 0;
        for (size_t i = 0; i < l->n; i++) {
            if (l->r[i].key[0] == (uint8_t)*k) {
                n++;
                sum += l->r[i].vlen;
                max = l->r[i].vlen > max ? l->r[i].vlen : max;
            }
        }
        if (n) {
            printf("%s '%c' keys: %zu, value bytes mean %.0f max %zu\n", stage, *k, n,
                   (double)sum / (double)n, max);
        }
    }
}

static void serial_case(bool noise, uint64_t seed, uint32_t k)
{
    struct pp_scen_conf sc;
    pp_scen_conf_defaults(&sc);
    sc.noise = noise;
    sc.seed = seed;
    struct events e = {0};
    assert_int_equal(pp_scen_generate(&sc, collect_event, &e), 0);
    if (g_wide) {
        widen_events(&e);
    }
    size_t cut = e.n / 2;

    /* Uninterrupted, flushing every step. */
    struct alerts full = {0};
    struct run a;
    run_new(&a, k, &full);
    a.flush = true;
    struct alerts at_cut = {0};
    struct kvlog dump_c[MAX_K] = {{0}}, dump_p = {0};
    struct kvlog log_c[MAX_K] = {{0}}, log_p = {0};
    for (size_t i = 0; i < e.n; i++) {
        if (i == cut) {
            /* The cut: no day half-buffered on the partners side. */
            assert_int_equal(pp_pstage_pending_day(a.p), INT32_MIN);
            for (uint32_t j = 0; j < k; j++) {
                pp_cstage_dump(a.cs[j], collect_kv, &dump_c[j]);
                log_c[j] = a.clog[j];
                memset(&a.clog[j], 0, sizeof(a.clog[j]));
            }
            pp_pstage_dump(a.p, collect_kv, &dump_p);
            log_p = a.plog;
            memset(&a.plog, 0, sizeof(a.plog));
            a.flush = false;
            at_cut = full;
            at_cut.a = malloc((full.n ? full.n : 1) * sizeof(struct pp_alert));
            memcpy(at_cut.a, full.a, full.n * sizeof(struct pp_alert));
            at_cut.cap = full.n ? full.n : 1;
        }
        step(&a, &e.ev[i]);
    }
    finish(&a, sc.last_day);
    assert_true(full.n > 10);
    assert_true(at_cut.n > 0 && at_cut.n < full.n); /* the cut is mid-story */

    for (int how = 0; how < 2; how++) {
        struct alerts got = at_cut;
        got.a = malloc(at_cut.cap * sizeof(struct pp_alert));
        memcpy(got.a, at_cut.a, at_cut.n * sizeof(struct pp_alert));
        struct run b;
        run_new(&b, k, &got);
        for (uint32_t j = 0; j < k; j++) {
            restore_c(b.cs[j], how == 0 ? &dump_c[j] : &log_c[j]);
        }
        restore_p(b.p, how == 0 ? &dump_p : &log_p);
        /* The restored stages hold exactly the originals' state. */
        for (uint32_t j = 0; j < k; j++) {
            struct kvlog again = {0};
            pp_cstage_dump(b.cs[j], collect_kv, &again);
            expect_same_dump(&dump_c[j], &again, how == 0 ? "customers dump" : "customers log");
            kvlog_free(&again);
        }
        struct kvlog again = {0};
        pp_pstage_dump(b.p, collect_kv, &again);
        expect_same_dump(&dump_p, &again, how == 0 ? "partners dump" : "partners log");
        kvlog_free(&again);
        /* The events just before the cut, delivered again (a producer's
         * retry across the restart): the restored dedup keys refuse them. */
        size_t redo = cut > 200 ? 200 : cut;
        for (size_t i = cut - redo; i < cut; i++) {
            const struct pp_event *ev = &e.ev[i];
            uint32_t j = (uint32_t)(pp_hash_str(pp_event_customer_id(ev)) % k);
            assert_int_equal(pp_cstage_apply(b.cs[j], ev), PP_APPLY_OK);
        }
        uint64_t dups = 0;
        for (uint32_t j = 0; j < k; j++) {
            dups += pp_cstage_stats(b.cs[j])->duplicates;
        }
        assert_int_equal(dups, redo);
        for (size_t i = cut; i < e.n; i++) {
            step(&b, &e.ev[i]);
        }
        finish(&b, sc.last_day);
        expect_same_alerts(&full, &got,
                           how == 0 ? "restored from a dump" : "restored from the log");
        run_free(&b);
        free(got.a);
    }
    if (!noise && k == 1) {
        print_sizes(&dump_c[0], "customers stage");
        print_sizes(&dump_p, "partners stage");
        size_t recs = 0, bytes = 0;
        for (size_t i = 0; i < log_c[0].n; i++) {
            bytes += log_c[0].r[i].klen + log_c[0].r[i].vlen;
        }
        recs += log_c[0].n;
        printf("customers changelog, first half of the run: %zu records, %zu bytes\n", recs, bytes);
    }
    for (uint32_t j = 0; j < k; j++) {
        kvlog_free(&dump_c[j]);
        kvlog_free(&log_c[j]);
    }
    kvlog_free(&dump_p);
    kvlog_free(&log_p);
    run_free(&a);
    free(full.a);
    free(at_cut.a);
    free(e.ev);
}

static void test_restore_det(void **state)
{
    (void)state;
    serial_case(false, 1, 1);
    serial_case(false, 1, 3);
}

static void test_restore_noise(void **state)
{
    (void)state;
    serial_case(true, 2, 1);
    serial_case(true, 3, 3);
}

/* ---- a record written before the stage closed its first day -------------- */

/* Encoded exchange records, in order. */
static void collect_xrec(const struct pp_xrec *x, void *opaque)
{
    uint8_t buf[PP_XREC_MAX_BYTES];
    size_t n = pp_xrec_encode(x, buf, sizeof(buf));
    assert_true(n > 0);
    collect_kv(buf, n, buf, 0, opaque); /* the value unused: empty, never NULL */
}

/* Inputs skewed by a slow partition: a month of events is applied before
 * the stage closes its first day, the records are written, then days close
 * with no new event for those customers (nothing rewrites them). A stage
 * restored from that changelog must finalize those days for them as the
 * live stage did (it skipped them: consumption of a month was lost, a
 * commitment's shortfall came out too large in the chaos test). */
static void test_restore_before_first_close(void **state)
{
    (void)state;
    struct pp_scen_conf sc;
    pp_scen_conf_defaults(&sc);
    struct events e = {0};
    assert_int_equal(pp_scen_generate(&sc, collect_event, &e), 0);
    struct pp_model_conf conf;
    conf_of(&conf);
    struct pp_cstage *a = pp_cstage_new(&conf, 0, 1);
    struct kvlog log = {0}, xa = {0}, xb = {0};
    int64_t t0 = e.ev[0].occurred_at_ms, ahead = t0 + 30 * PP_MS_PER_DAY;
    size_t i = 0;
    for (; i < e.n && e.ev[i].occurred_at_ms < ahead; i++) {
        assert_int_equal(pp_cstage_apply(a, &e.ev[i]), PP_APPLY_OK);
    }
    assert_int_equal(pp_cstage_last_day(a), INT32_MIN);
    pp_cstage_flush_dirty(a, collect_kv, &log);
    pp_cstage_advance(a, t0 + 20 * PP_MS_PER_DAY, collect_xrec, &xa);
    assert_true(pp_cstage_last_day(a) > pp_day_from_ms(t0) + 10);
    pp_cstage_flush_dirty(a, collect_kv, &log);

    struct pp_cstage *b = pp_cstage_new(&conf, 0, 1);
    restore_c(b, &log);
    struct kvlog da = {0}, db = {0};
    pp_cstage_dump(a, collect_kv, &da);
    pp_cstage_dump(b, collect_kv, &db);
    expect_same_dump(&da, &db, "restored before its customers' first close");
    /* and the same assessments from there on */
    kvlog_free(&xa);
    for (; i < e.n; i++) {
        assert_int_equal(pp_cstage_apply(a, &e.ev[i]), pp_cstage_apply(b, &e.ev[i]));
        pp_cstage_advance(a, e.ev[i].occurred_at_ms - 10 * PP_MS_PER_DAY, collect_xrec, &xa);
        pp_cstage_advance(b, e.ev[i].occurred_at_ms - 10 * PP_MS_PER_DAY, collect_xrec, &xb);
    }
    assert_true(xa.n > 1000);
    assert_int_equal(xa.n, xb.n);
    for (size_t j = 0; j < xa.n; j++) {
        if (xa.r[j].klen != xb.r[j].klen || memcmp(xa.r[j].key, xb.r[j].key, xa.r[j].klen)) {
            fail_msg("exchange record %zu differs after the restore", j);
        }
    }
    kvlog_free(&log);
    kvlog_free(&xa);
    kvlog_free(&xb);
    kvlog_free(&da);
    kvlog_free(&db);
    pp_cstage_destroy(a);
    pp_cstage_destroy(b);
    free(e.ev);
}

/* Customers with wide ring cells (stage_int.h) restore to the same state
 * and the same transitions; their records are the same layout. */
static void test_restore_wide(void **state)
{
    (void)state;
    g_wide = true;
    serial_case(true, 2, 1);
    serial_case(false, 1, 3);
    g_wide = false;
}

/* With a day of lateness, customers hold the entitlement snapshots of two
 * days not finalized yet (the second out of line): restored the same. */
static void test_restore_late(void **state)
{
    (void)state;
    g_late = true;
    serial_case(true, 2, 1);
    serial_case(false, 1, 3);
    g_late = false;
}

/* Exchange records as bytes, in order. */
struct xbytes {
    uint8_t *buf;
    size_t len, cap;
    size_t n;
};

static void collect_xbytes(const struct pp_xrec *x, void *opaque)
{
    struct xbytes *b = opaque;
    uint8_t tmp[PP_XREC_MAX_BYTES];
    size_t len = pp_xrec_encode(x, tmp, sizeof(tmp));
    assert_true(len > 0);
    if (b->len + len > b->cap) {
        b->cap = (b->cap + len) * 2;
        b->buf = realloc(b->buf, b->cap);
        assert_non_null(b->buf);
    }
    memcpy(b->buf + b->len, tmp, len);
    b->len += len;
    b->n++;
}

/* Version-1 records (dense support rings, written by the last version-1
 * build: tests/unit/vectors/cstage_v1_vectors.h) are read, and the stage
 * goes on exactly as one that never stopped: the same exchange records,
 * byte for byte, over the next 40 days. */
static void test_reads_version_1(void **state)
{
    (void)state;
    struct pp_model_conf conf;
    conf_of(&conf);
    struct pp_cstage *a = pp_cstage_new(&conf, 0, 1);
    v1_story(a, 0, 100, NULL, NULL);
    struct xbytes want = {0}, got = {0};
    v1_story(a, 100, 140, collect_xbytes, &want);

    struct pp_cstage *b = pp_cstage_new(&conf, 0, 1);
    char err[160];
    for (size_t i = 0; i < sizeof(v1_records) / sizeof(v1_records[0]); i++) {
        const struct v1_record *r = &v1_records[i];
        assert_int_equal(r->val[0], 1);
        int rc = pp_cstage_restore_kv(b, (const uint8_t *)r->key, r->klen, r->val, r->vlen, err,
                                      sizeof(err));
        if (rc != 0) {
            fail_msg("version-1 record %zu: %s", i, err);
        }
    }
    v1_story(b, 100, 140, collect_xbytes, &got);
    assert_true(want.n > 40);
    assert_int_equal(got.n, want.n);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.buf, want.buf, want.len);
    /* And what it writes now is the current version. */
    struct kvlog d = {0};
    pp_cstage_dump(b, collect_kv, &d);
    for (size_t i = 0; i < d.n; i++) {
        assert_int_equal(d.r[i].val[0], 2);
    }
    kvlog_free(&d);
    free(want.buf);
    free(got.buf);
    pp_cstage_destroy(a);
    pp_cstage_destroy(b);
}

/* A customer quiet for 100 days after its record was last written: the
 * restored stage holds it 110 days behind (closing days does not rewrite a
 * record). Its next event, applied before any day closes, must land after it
 * has caught up, or the catch-up reads that event's day as an old one and
 * clears its slot (the rings wrap). */
static void test_restore_quiet_customer(void **state)
{
    (void)state;
    struct pp_scen_conf sc;
    pp_scen_conf_defaults(&sc);
    struct events all = {0}, e = {0};
    assert_int_equal(pp_scen_generate(&sc, collect_event, &all), 0);
    const char *quiet = "C-BG01";
    int64_t from = all.ev[0].occurred_at_ms + 120 * PP_MS_PER_DAY;
    int64_t to = from + 100 * PP_MS_PER_DAY;
    for (size_t i = 0; i < all.n; i++) {
        int64_t t = all.ev[i].occurred_at_ms;
        if (t >= from && t < to && strcmp(pp_event_customer_id(&all.ev[i]), quiet) == 0) {
            continue;
        }
        collect_event(&all.ev[i], &e);
    }
    struct pp_model_conf conf;
    conf_of(&conf);
    struct pp_cstage *a = pp_cstage_new(&conf, 0, 1);
    struct kvlog log = {0}, xa = {0}, xb = {0};
    size_t i = 0;
    for (; i < e.n && e.ev[i].occurred_at_ms < to; i++) {
        pp_cstage_apply(a, &e.ev[i]);
        pp_cstage_advance(a, e.ev[i].occurred_at_ms - 10 * PP_MS_PER_DAY, collect_xrec, &xa);
        pp_cstage_flush_dirty(a, collect_kv, &log);
    }
    struct pp_cstage *b = pp_cstage_new(&conf, 0, 1);
    restore_c(b, &log);
    kvlog_free(&xa);
    /* Its first event after the gap goes first: before any day closes. */
    size_t first = i;
    while (first < e.n && strcmp(pp_event_customer_id(&e.ev[first]), quiet) != 0) {
        first++;
    }
    assert_true(first < e.n);
    assert_int_equal(pp_cstage_apply(a, &e.ev[first]), PP_APPLY_OK);
    assert_int_equal(pp_cstage_apply(b, &e.ev[first]), PP_APPLY_OK);
    size_t quiet_events = 0;
    for (; i < e.n; i++) {
        if (i == first) {
            continue;
        }
        quiet_events += strcmp(pp_event_customer_id(&e.ev[i]), quiet) == 0;
        assert_int_equal(pp_cstage_apply(a, &e.ev[i]), pp_cstage_apply(b, &e.ev[i]));
        pp_cstage_advance(a, e.ev[i].occurred_at_ms - 10 * PP_MS_PER_DAY, collect_xrec, &xa);
        pp_cstage_advance(b, e.ev[i].occurred_at_ms - 10 * PP_MS_PER_DAY, collect_xrec, &xb);
    }
    assert_true(quiet_events > 10);
    assert_int_equal(xa.n, xb.n);
    for (size_t j = 0; j < xa.n; j++) {
        if (xa.r[j].klen != xb.r[j].klen || memcmp(xa.r[j].key, xb.r[j].key, xa.r[j].klen)) {
            fail_msg("exchange record %zu differs after the restore", j);
        }
    }
    struct kvlog da = {0}, db = {0};
    pp_cstage_dump(a, collect_kv, &da);
    pp_cstage_dump(b, collect_kv, &db);
    expect_same_dump(&da, &db, "restored with a customer 80 days behind");
    kvlog_free(&log);
    kvlog_free(&xa);
    kvlog_free(&xb);
    kvlog_free(&da);
    kvlog_free(&db);
    pp_cstage_destroy(a);
    pp_cstage_destroy(b);
    free(all.ev);
    free(e.ev);
}

/* ---- malformed values ------------------------------------------------------- */

static void test_malformed(void **state)
{
    (void)state;
    struct pp_model_conf conf;
    conf_of(&conf);
    struct pp_scen_conf sc;
    pp_scen_conf_defaults(&sc);
    sc.last_day = sc.first_day + 120;
    struct events e = {0};
    assert_int_equal(pp_scen_generate(&sc, collect_event, &e), 0);
    struct alerts out = {0};
    struct run a;
    run_new(&a, 1, &out);
    for (size_t i = 0; i < e.n; i++) {
        step(&a, &e.ev[i]);
    }
    struct kvlog dc = {0}, dp = {0};
    pp_cstage_dump(a.cs[0], collect_kv, &dc);
    pp_pstage_dump(a.p, collect_kv, &dp);
    struct pp_cstage *c = pp_cstage_new(&conf, 0, 1);
    struct pp_pstage *p = pp_pstage_new(&conf, 1);
    char err[160];
    /* Every value: each truncation, a bad version and a trailing byte are
     * refused; the whole value is taken. */
    const struct kvlog *logs[2] = {&dc, &dp};
    for (int s = 0; s < 2; s++) {
        for (size_t i = 0; i < logs[s]->n; i++) {
            const struct kv *x = &logs[s]->r[i];
            uint8_t *v = malloc(x->vlen + 1);
            assert_non_null(v);
            memcpy(v, x->val, x->vlen);
            for (size_t cut = 1; cut < x->vlen; cut += 1 + cut / 8) {
                int rc = s == 0
                             ? pp_cstage_restore_kv(c, x->key, x->klen, v, cut, err, sizeof(err))
                             : pp_pstage_restore_kv(p, x->key, x->klen, v, cut, err, sizeof(err));
                assert_int_equal(rc, -1);
            }
            v[x->vlen] = 0;
            int rc =
                s == 0 ? pp_cstage_restore_kv(c, x->key, x->klen, v, x->vlen + 1, err, sizeof(err))
                       : pp_pstage_restore_kv(p, x->key, x->klen, v, x->vlen + 1, err, sizeof(err));
            assert_int_equal(rc, -1);
            v[0] = 99;
            rc = s == 0 ? pp_cstage_restore_kv(c, x->key, x->klen, v, x->vlen, err, sizeof(err))
                        : pp_pstage_restore_kv(p, x->key, x->klen, v, x->vlen, err, sizeof(err));
            assert_int_equal(rc, -1);
            assert_non_null(strstr(err, "version"));
            rc = s == 0
                     ? pp_cstage_restore_kv(c, x->key, x->klen, x->val, x->vlen, err, sizeof(err))
                     : pp_pstage_restore_kv(p, x->key, x->klen, x->val, x->vlen, err, sizeof(err));
            assert_int_equal(rc, 0);
            free(v);
        }
    }
    const uint8_t bad[] = {'z', 'a'};
    const uint8_t one[] = {1};
    assert_int_equal(pp_cstage_restore_kv(c, bad, 2, one, 1, err, sizeof(err)), -1);
    assert_int_equal(pp_pstage_restore_kv(p, bad, 2, one, 1, err, sizeof(err)), -1);
    assert_int_equal(pp_cstage_restore_kv(c, bad, 0, one, 1, err, sizeof(err)), -1);
    /* Random bytes under a valid key never crash. */
    uint64_t rng = 99;
    for (int i = 0; i < 5000; i++) {
        uint8_t v[200];
        size_t len = 1 + (size_t)(rng % (sizeof(v) - 1));
        for (size_t j = 0; j < len; j++) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            v[j] = (uint8_t)rng;
        }
        v[0] = (uint8_t)(1 + (i / 4) % 2); /* both versions this build reads */
        const uint8_t *keys[] = {(const uint8_t *)"cX", (const uint8_t *)"m", (const uint8_t *)"pX",
                                 (const uint8_t *)"qX"};
        const size_t klens[] = {2, 1, 2, 2};
        int w = i % 4;
        if (w < 2) {
            pp_cstage_restore_kv(c, keys[w], klens[w], v, len, err, sizeof(err));
        }
        else {
            pp_pstage_restore_kv(p, keys[w], klens[w], v, len, err, sizeof(err));
        }
    }
    pp_cstage_destroy(c);
    pp_pstage_destroy(p);
    kvlog_free(&dc);
    kvlog_free(&dp);
    run_free(&a);
    free(out.a);
    free(e.ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restore_det),
        cmocka_unit_test(test_restore_noise),
        cmocka_unit_test(test_restore_before_first_close),
        cmocka_unit_test(test_restore_quiet_customer),
        cmocka_unit_test(test_restore_wide),
        cmocka_unit_test(test_reads_version_1),
        cmocka_unit_test(test_restore_late),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
