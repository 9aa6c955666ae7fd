/*
 * test_rules.c — the alert state machines of MODEL.md §2.6 (processors/model/
 * rules.h), driven directly with hand-made per-day inputs: CUSTOMER_PRESSURE
 * (7-day pending with reset, the multiwindow entry, CRITICAL after 3 days,
 * de-escalation after 7 days of CPI_short < 65, RESOLVED after 14 days of
 * CPI_short < 40, reopen within 30 days keeping the episode), PARTNER_PRESSURE
 * (roll-up levels, inherited first_seen, following the children) and
 * STUFFING_PATTERN (3-day pending, capped at WARNING, 14-day resolution), plus
 * the §3.5 invariants over pseudo-random CPI walks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "alert.h"
#include "rules.h"

static struct pp_model_conf conf;

static int setup(void **state)
{
    (void)state;
    pp_model_conf_defaults(&conf);
    return 0;
}

/* Steps the customer rule over days [d0, d0+n) with the same CPIs and
 * returns the last non-NONE transition and its day through *when. */
static enum pp_rule_tr run(struct pp_rule_state *st, int32_t d0, int n, double cs, double cl,
                           int32_t *when)
{
    enum pp_rule_tr last = PP_TR_NONE;
    for (int i = 0; i < n; i++) {
        enum pp_rule_tr tr = pp_rule_customer_step(st, &conf, d0 + i, cs, cl);
        if (tr != PP_TR_NONE) {
            last = tr;
            if (when) {
                *when = d0 + i;
            }
        }
    }
    return last;
}

static void test_customer_pending(void **state)
{
    (void)state;
    struct pp_rule_state st;
    pp_rule_init(&st);
    int32_t when = 0;
    /* six days at 60 are only pending */
    assert_int_equal(run(&st, 100, 6, 60, 60, &when), PP_TR_NONE);
    assert_int_equal(st.phase, PP_PHASE_PENDING);
    /* one day below 50 resets to OK */
    assert_int_equal(run(&st, 106, 1, 60, 49.9, &when), PP_TR_NONE);
    assert_int_equal(st.phase, PP_PHASE_OK);
    /* seven fresh consecutive days fire on the seventh */
    assert_int_equal(run(&st, 107, 6, 55, 52, &when), PP_TR_NONE);
    assert_int_equal(pp_rule_customer_step(&st, &conf, 113, 55, 52), PP_TR_FIRED);
    assert_int_equal(st.severity, PP_SEV_WARNING);
    assert_int_equal(st.first_seen, 107);
    assert_int_equal(st.fired_day, 113);
    /* §3.5: first_seen <= fired - 6 */
    assert_true(st.first_seen <= st.fired_day - 6);
}

static void test_customer_multiwindow(void **state)
{
    (void)state;
    struct pp_rule_state st;
    pp_rule_init(&st);
    /* a short spike with a quiet long window never enters (lo = min) */
    assert_int_equal(run(&st, 0, 30, 100, 49, NULL), PP_TR_NONE);
    assert_int_equal(st.phase, PP_PHASE_OK);
    assert_int_equal(run(&st, 30, 30, 49, 100, NULL), PP_TR_NONE);
    assert_int_equal(st.phase, PP_PHASE_OK);
    /* exactly 50 enters */
    assert_int_equal(run(&st, 60, 7, 50, 50, NULL), PP_TR_FIRED);
}

static void test_customer_escalation(void **state)
{
    (void)state;
    struct pp_rule_state st;
    pp_rule_init(&st);
    int32_t when = 0;
    /* lo >= 75 from the first day: fires WARNING on day 6, CRITICAL the day
     * after (the 3-day run already holds), never both on one day */
    assert_int_equal(run(&st, 0, 7, 90, 80, &when), PP_TR_FIRED);
    assert_int_equal(when, 6);
    assert_int_equal(pp_rule_customer_step(&st, &conf, 7, 90, 80), PP_TR_ESCALATED);
    assert_int_equal(st.severity, PP_SEV_CRITICAL);
    assert_int_equal(st.changed_day, 7);

    /* from WARNING, 2 days >= 75 then a dip: no escalation; 3 more: yes */
    pp_rule_init(&st);
    run(&st, 0, 7, 60, 60, NULL);
    assert_int_equal(run(&st, 7, 2, 80, 76, NULL), PP_TR_NONE);
    assert_int_equal(run(&st, 9, 1, 80, 74.9, NULL), PP_TR_NONE);
    assert_int_equal(run(&st, 10, 2, 80, 76, NULL), PP_TR_NONE);
    assert_int_equal(pp_rule_customer_step(&st, &conf, 12, 80, 76), PP_TR_ESCALATED);
    assert_int_equal(st.hist_n, 2);
    assert_int_equal(st.hist_sev[0], PP_SEV_WARNING);
    assert_int_equal(st.hist_sev[1], PP_SEV_CRITICAL);
    assert_int_equal(st.hist_day[1], 12);

    /* de-escalation: CPI_short < 65 for 7 days (long may stay high) */
    assert_int_equal(run(&st, 13, 6, 64.9, 90, NULL), PP_TR_NONE);
    assert_int_equal(run(&st, 19, 1, 65, 90, NULL), PP_TR_NONE); /* 65 is not < 65: reset */
    assert_int_equal(run(&st, 20, 6, 60, 90, NULL), PP_TR_NONE);
    assert_int_equal(pp_rule_customer_step(&st, &conf, 26, 60, 90), PP_TR_DEESCALATED);
    assert_int_equal(st.severity, PP_SEV_WARNING);
    assert_int_equal(st.first_seen, 0); /* the episode and its alert id are unchanged */
}

static void test_customer_resolve_and_reopen(void **state)
{
    (void)state;
    struct pp_rule_state st;
    pp_rule_init(&st);
    int32_t when = 0;
    run(&st, 0, 7, 60, 60, NULL); /* fires on day 6, first_seen 0 */
    /* 13 days < 40, one day at 40, then 14 days: resolved on the 14th */
    assert_int_equal(run(&st, 7, 13, 39, 70, NULL), PP_TR_NONE);
    assert_int_equal(run(&st, 20, 1, 40, 70, NULL), PP_TR_NONE);
    assert_int_equal(run(&st, 21, 14, 10, 45, &when), PP_TR_RESOLVED);
    assert_int_equal(when, 34);
    assert_int_equal(st.phase, PP_PHASE_OK);
    assert_int_equal(st.resolved_day, 34);
    /* re-entry within 30 days: same episode (first_seen 0), reopen_count 1 */
    assert_int_equal(run(&st, 60, 7, 60, 60, &when), PP_TR_FIRED);
    assert_int_equal(when, 66);
    assert_int_equal(st.first_seen, 0);
    assert_int_equal(st.reopen_count, 1);
    assert_int_equal(st.fired_day, 66);
    assert_int_equal(st.hist_n, 2);
    /* resolve again, re-enter 31 days later: a new episode */
    assert_int_equal(run(&st, 67, 14, 0, 0, &when), PP_TR_RESOLVED);
    assert_int_equal(when, 80);
    assert_int_equal(run(&st, 111, 7, 60, 60, &when), PP_TR_FIRED);
    assert_int_equal(st.first_seen, 111);
    assert_int_equal(st.reopen_count, 0);
    assert_int_equal(st.hist_n, 1);
    /* from CRITICAL, one quiet run de-escalates on its 7th day and resolves on its 14th */
    pp_rule_init(&st);
    run(&st, 0, 8, 90, 90, NULL);
    assert_int_equal(st.severity, PP_SEV_CRITICAL);
    assert_int_equal(run(&st, 8, 6, 30, 30, NULL), PP_TR_NONE);
    assert_int_equal(run(&st, 14, 1, 30, 30, NULL), PP_TR_DEESCALATED);
    assert_int_equal(run(&st, 15, 7, 30, 30, &when), PP_TR_RESOLVED);
    assert_int_equal(when, 21);
}

static void test_partner(void **state)
{
    (void)state;
    struct pp_rule_state st;
    pp_rule_init(&st);
    struct pp_partner_rollup r = {0};
    r.touched_acv = 1000;
    r.children_first_seen = PP_NO_DAY;
    /* one firing child: nothing, whatever its share */
    r.firing = 1;
    r.firing_acv = 900;
    r.children_first_seen = 40;
    assert_int_equal(pp_rule_partner_step(&st, &conf, 50, &r), PP_TR_NONE);
    /* two children under 20% of touched ACV: nothing */
    r.firing = 2;
    r.firing_acv = 199;
    assert_int_equal(pp_rule_partner_level(&conf, &r), 0);
    /* 20%: WARNING the same day, first_seen inherited from the children */
    r.firing_acv = 200;
    r.children_first_seen = 33;
    assert_int_equal(pp_rule_partner_step(&st, &conf, 51, &r), PP_TR_FIRED);
    assert_int_equal(st.severity, PP_SEV_WARNING);
    assert_int_equal(st.first_seen, 33);
    /* 2 CRITICAL under 40%: still WARNING; at 40%: CRITICAL */
    r.critical = 2;
    r.critical_acv = 399;
    assert_int_equal(pp_rule_partner_step(&st, &conf, 52, &r), PP_TR_NONE);
    r.critical_acv = 400;
    assert_int_equal(pp_rule_partner_step(&st, &conf, 53, &r), PP_TR_ESCALATED);
    /* 3 CRITICAL children whatever their share */
    r.critical = 3;
    r.critical_acv = 10;
    r.firing = 3;
    assert_int_equal(pp_rule_partner_step(&st, &conf, 54, &r), PP_TR_NONE);
    r.critical = 1;
    assert_int_equal(pp_rule_partner_step(&st, &conf, 55, &r), PP_TR_DEESCALATED);
    /* follows the children: condition false resolves at once */
    r.firing = 1;
    assert_int_equal(pp_rule_partner_step(&st, &conf, 56, &r), PP_TR_RESOLVED);
    assert_int_equal(st.phase, PP_PHASE_OK);
    /* nothing touched: never fires */
    struct pp_partner_rollup z = {0};
    z.firing = 5;
    z.critical = 5;
    assert_int_equal(pp_rule_partner_level(&conf, &z), 0);
}

static void test_stuffing(void **state)
{
    (void)state;
    struct pp_rule_state st;
    pp_rule_init(&st);
    int32_t d = 200;
    assert_int_equal(pp_rule_stuffing_step(&st, &conf, d++, 1), PP_TR_NONE);
    assert_int_equal(pp_rule_stuffing_step(&st, &conf, d++, 1), PP_TR_NONE);
    assert_int_equal(pp_rule_stuffing_step(&st, &conf, d++, 0), PP_TR_NONE); /* reset */
    assert_int_equal(pp_rule_stuffing_step(&st, &conf, d++, 1), PP_TR_NONE);
    assert_int_equal(pp_rule_stuffing_step(&st, &conf, d++, 1), PP_TR_NONE);
    assert_int_equal(pp_rule_stuffing_step(&st, &conf, d, 1), PP_TR_FIRED);
    assert_int_equal(st.first_seen, 203);
    assert_int_equal(st.fired_day, 205);
    assert_int_equal(st.severity, PP_SEV_WARNING);
    /* capped at WARNING however long it holds */
    for (int i = 1; i <= 30; i++) {
        assert_int_equal(pp_rule_stuffing_step(&st, &conf, d + i, 1), PP_TR_NONE);
    }
    d += 31;
    /* 13 false days, a true day, then 14 false days */
    for (int i = 0; i < 13; i++) {
        assert_int_equal(pp_rule_stuffing_step(&st, &conf, d++, 0), PP_TR_NONE);
    }
    assert_int_equal(pp_rule_stuffing_step(&st, &conf, d++, 1), PP_TR_NONE);
    for (int i = 0; i < 13; i++) {
        assert_int_equal(pp_rule_stuffing_step(&st, &conf, d++, 0), PP_TR_NONE);
    }
    assert_int_equal(pp_rule_stuffing_step(&st, &conf, d, 0), PP_TR_RESOLVED);
    assert_int_equal(st.severity, PP_SEV_WARNING);
}

/* §3.5 over pseudo-random CPI walks: every firing has first_seen <= fired -
 * 6, transitions alternate sensibly, CRITICAL only after 3 days >= 75, and a
 * reopen keeps the first_seen of the episode. */
static void test_invariants_random(void **state)
{
    (void)state;
    uint64_t x = 0x243F6A8885A308D3u;
    for (int walk = 0; walk < 200; walk++) {
        struct pp_rule_state st;
        pp_rule_init(&st);
        double cs = 30, cl = 30;
        int32_t episode = PP_NO_DAY;
        int above75 = 0;
        for (int32_t d = 0; d < 400; d++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            cs += (double)(int)(x % 21) - 10.0;
            cl += ((double)(int)((x >> 8) % 11) - 5.0) + (cs - cl) * 0.1;
            cs = cs < 0 ? 0 : (cs > 100 ? 100 : cs);
            cl = cl < 0 ? 0 : (cl > 100 ? 100 : cl);
            double lo = cs < cl ? cs : cl;
            above75 = lo >= 75 ? above75 + 1 : 0;
            int before = st.phase;
            enum pp_rule_tr tr = pp_rule_customer_step(&st, &conf, d, cs, cl);
            switch (tr) {
            case PP_TR_FIRED:
                assert_true(before != PP_PHASE_FIRING);
                assert_true(st.first_seen <= d - 6);
                if (st.reopen_count > 0) {
                    assert_int_equal(st.first_seen, episode);
                }
                episode = st.first_seen;
                break;
            case PP_TR_ESCALATED:
                assert_true(above75 >= 3);
                assert_int_equal(st.first_seen, episode);
                break;
            case PP_TR_DEESCALATED:
            case PP_TR_RESOLVED:
                assert_int_equal(before, PP_PHASE_FIRING);
                assert_true(cs < 65);
                assert_int_equal(st.first_seen, episode);
                break;
            case PP_TR_NONE:
                break;
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_customer_pending, setup),
        cmocka_unit_test_setup(test_customer_multiwindow, setup),
        cmocka_unit_test_setup(test_customer_escalation, setup),
        cmocka_unit_test_setup(test_customer_resolve_and_reopen, setup),
        cmocka_unit_test_setup(test_partner, setup),
        cmocka_unit_test_setup(test_stuffing, setup),
        cmocka_unit_test_setup(test_invariants_random, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
