/*
 * test_model_lookahead.c — a day's evaluation must not depend on how far
 * ahead the inputs have run when the day closes.
 *
 * The streaming runtime applies events up to the alignment horizon (weeks)
 * ahead of the day it evaluates next, offline backtest almost none; both
 * must give the same alert transitions. The same events go through one
 * model that closes each day as soon as it can (allowed lateness 1 day) and
 * one that holds 20 days of later events before it closes a day (lateness
 * 20 days); the transitions, in full JSON, must be identical. Found live:
 * the licence entitlement used by credit_mode 2 was read from the four
 * newest snapshots, so a day saw later days' entitlement.
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
#include "scenarios.h"

struct out {
    char buf[1 << 20];
    size_t len;
    unsigned n;
};

static void on_alert(const struct pp_alert *a, void *opaque)
{
    struct out *o = opaque;
    int w = snprintf(o->buf + o->len, sizeof(o->buf) - o->len, "%s %d %d %s %.9g %.9g %s\n",
                     a->alert_id, (int)a->status, (int)a->severity, a->parent_alert_id, a->value,
                     a->threshold, a->summary);
    assert_true(w > 0 && (size_t)w < sizeof(o->buf) - o->len);
    o->len += (size_t)w;
    o->n++;
}

struct run {
    struct pp_model *m;
    struct out *out;
    int64_t newest;
};

static int sink(const struct pp_event *ev, void *opaque)
{
    struct run *r = opaque;
    assert_int_equal(pp_model_apply(r->m, ev), PP_APPLY_OK);
    if (ev->occurred_at_ms > r->newest) {
        r->newest = ev->occurred_at_ms;
    }
    pp_model_advance(r->m, r->newest, on_alert, r->out);
    return 0;
}

static void run(const struct pp_scen_conf *sc, int64_t lateness_ms, struct out *out)
{
    struct pp_model_conf conf;
    pp_model_conf_defaults(&conf);
    conf.allowed_lateness_ms = lateness_ms;
    char err[256];
    assert_int_equal(pp_model_conf_validate(&conf, err, sizeof(err)), 0);
    struct run r = {pp_model_new(&conf), out, INT64_MIN};
    assert_int_equal(pp_scen_generate(sc, sink, &r), 0);
    /* close the same days in both: up to the day before the last event's */
    pp_model_advance(r.m, r.newest + lateness_ms, on_alert, out);
    pp_model_destroy(r.m);
}

static void check(const struct pp_scen_conf *sc)
{
    static struct out near, far;
    memset(&near, 0, sizeof(near));
    memset(&far, 0, sizeof(far));
    run(sc, INT64_C(86400000), &near);
    run(sc, 20 * INT64_C(86400000), &far);
    assert_true(near.n > 10);
    if (strcmp(near.buf, far.buf) != 0) {
        fail_msg("lateness 1 d gives\n%s\nlateness 20 d gives\n%s", near.buf, far.buf);
    }
}

static void test_deterministic(void **state)
{
    (void)state;
    struct pp_scen_conf sc;
    pp_scen_conf_defaults(&sc);
    check(&sc);
}

static void test_noise(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        struct pp_scen_conf sc;
        pp_scen_conf_defaults(&sc);
        sc.noise = true;
        sc.seed = seed;
        check(&sc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_noise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
