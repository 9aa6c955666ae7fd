/*
 * test_signals.c — the MODEL.md §2.3–§2.5 formulas (processors/model/
 * signals.h), table-driven at and around every threshold: ramp() and its
 * warn/crit points, each signal's value, risk and null rule (minimum sample,
 * grace, missing data), the T(age) schedule and its seat-day sums, health
 * with its caps and coverage, the families, noisy-OR harm, aggression and the
 * CPI (including the §3.5 bound: CPI >= 50 needs H >= 1/3), and the quarter
 * calendar of §3.0.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ptime.h"
#include "signals.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define EPS  1e-9

static struct pp_model_conf conf;

static int setup(void **state)
{
    (void)state;
    pp_model_conf_defaults(&conf);
    return 0;
}

static void assert_close(double got, double want, double eps, const char *what)
{
    if (!(fabs(got - want) <= eps)) {
        fail_msg("%s: got %.9f, want %.9f", what, got, want);
    }
}

static int32_t day(int y, unsigned m, unsigned d)
{
    return pp_day_from_civil(y, m, d);
}

/* ---- ramp ------------------------------------------------------------------ */

static void test_ramp(void **state)
{
    (void)state;
    const struct {
        double x, g, b, want;
    } rows[] = {
        {0.20, 0.20, 0.80, 0.0},
        {0.50, 0.20, 0.80, 0.5},
        {0.71, 0.20, 0.80, 0.85},
        {0.80, 0.20, 0.80, 1.0},
        {0.95, 0.20, 0.80, 1.0},
        {0.10, 0.20, 0.80, 0.0},
        /* decreasing direction (CSAT, OVERSELL's utilisation) */
        {0.84, 0.84, 0.59, 0.0},
        {0.715, 0.84, 0.59, 0.5},
        {0.59, 0.84, 0.59, 1.0},
        {0.90, 0.84, 0.59, 0.0},
        {NAN, 0.0, 1.0, 0.0},
    };
    for (size_t i = 0; i < N(rows); i++) {
        char what[64];
        snprintf(what, sizeof(what), "ramp row %zu", i);
        assert_close(pp_ramp(rows[i].x, rows[i].g, rows[i].b), rows[i].want, 1e-9, what);
    }
    /* The warn/crit points of §2.3's table. */
    assert_close(pp_ramp_inverse(0.5, 0.20, 0.80), 0.50, EPS, "SHELF warn");
    assert_close(pp_ramp_inverse(0.85, 0.20, 0.80), 0.71, EPS, "SHELF crit");
    assert_close(pp_ramp_inverse(0.5, 1.5, 3.0), 2.25, EPS, "LOAD warn");
    assert_close(pp_ramp_inverse(0.85, 1.5, 3.0), 2.775, EPS, "LOAD crit");
    assert_close(pp_ramp_inverse(0.5, 0.10, 0.35), 0.225, EPS, "QEC warn");
    assert_close(pp_ramp_inverse(0.85, 0.05, 0.20), 0.1775, EPS, "DISC crit");
}

/* ---- S1 SHELF --------------------------------------------------------------- */

static void test_target_schedule(void **state)
{
    (void)state;
    const struct {
        int32_t age;
        double t;
    } rows[] = {{-1, 0},    {0, 0},      {29, 0},     {30, 0.25},  {59, 0.25},  {60, 0.5},
                {179, 0.5}, {180, 0.65}, {269, 0.65}, {270, 0.75}, {5000, 0.75}};
    for (size_t i = 0; i < N(rows); i++) {
        assert_close(pp_sig_target(&conf, rows[i].age), rows[i].t, EPS, "T(age)");
    }
    /* Seat-days: 10 seats started on day 0, window [25, 64]: ages 25..29 at 0,
     * 30..59 at .25 (30 days), 60..64 at .5 (5 days) = 10*(7.5+2.5) = 100. */
    assert_close(pp_sig_expected_seatdays(&conf, 10, 0, 1000, 25, 64), 100.0, EPS, "seatdays");
    /* Clipped by the tranche end (exclusive) and start. */
    assert_close(pp_sig_expected_seatdays(&conf, 10, 0, 61, 25, 64), 10 * (7.5 + 0.5), EPS, "end");
    assert_close(pp_sig_expected_seatdays(&conf, 10, 40, 1000, 0, 49), 0.0, EPS, "young");
    assert_close(pp_sig_expected_seatdays(&conf, 10, 0, 1000, 50, 40), 0.0, EPS, "empty");
}

static void test_shelf(void **state)
{
    (void)state;
    const struct {
        double exp, act, e, aged;
        int32_t snap_age;
        bool present;
        double gap, risk;
    } rows[] = {
        {1000, 800, 100, 100, 0, true, 0.20, 0.0},  /* at g */
        {1000, 500, 100, 100, 0, true, 0.50, 0.5},  /* warn */
        {1000, 290, 100, 100, 0, true, 0.71, 0.85}, /* crit */
        {1000, 200, 100, 100, 0, true, 0.80, 1.0},  /* at b */
        {1000, 1200, 100, 100, 0, true, 0.0, 0.0},  /* above target: gap 0 */
        {1000, 0, 9, 9, 0, false, 0, 0},            /* E < 10 */
        {1000, 0, 10, 10, 0, true, 1.0, 1.0},       /* E = 10 */
        {1000, 0, 100, 49, 0, false, 0, 0},         /* grace: < 50% aged 60 d */
        {1000, 0, 100, 50, 0, true, 1.0, 1.0},      /* exactly 50% aged */
        {1000, 0, 100, 100, 14, true, 1.0, 1.0},    /* 14-day-old snapshot */
        {1000, 0, 100, 100, 15, false, 0, 0},       /* gap > 14 days: null */
        {1000, 0, 100, 100, -1, false, 0, 0},       /* never a snapshot */
        {0, 0, 100, 100, 0, false, 0, 0},           /* nothing expected */
    };
    for (size_t i = 0; i < N(rows); i++) {
        struct pp_sig s = pp_sig_shelf(&conf, rows[i].exp, rows[i].act, rows[i].e, rows[i].aged,
                                       rows[i].snap_age);
        char what[64];
        snprintf(what, sizeof(what), "shelf row %zu", i);
        if (s.present != rows[i].present) {
            fail_msg("%s: present %d", what, s.present);
        }
        if (s.present) {
            assert_close(s.value, rows[i].gap, 1e-9, what);
            assert_close(s.risk, rows[i].risk, 1e-9, what);
        }
    }
}

/* ---- S2 OVERSELL ----------------------------------------------------------- */

static void test_oversell(void **state)
{
    (void)state;
    assert_close(pp_sig_oversell_factor(&conf, 0.80), 0.0, EPS, "U_pre 80%");
    assert_close(pp_sig_oversell_factor(&conf, 0.60), 0.5, EPS, "U_pre 60%");
    assert_close(pp_sig_oversell_factor(&conf, 0.40), 1.0, EPS, "U_pre 40%");
    assert_close(pp_sig_oversell_factor(&conf, 0.416), 0.96, EPS, "Apex C-AX2 (§2.7)");
    struct pp_sig s = pp_sig_oversell(&conf, 0, 0, 0);
    assert_false(s.present);
    const struct {
        double o, seats, risk;
    } rows[] = {{10, 100, 0.0}, {30, 100, 0.5}, {44, 100, 0.85}, {50, 100, 1.0}, {96, 100, 1.0}};
    for (size_t i = 0; i < N(rows); i++) {
        s = pp_sig_oversell(&conf, rows[i].o, rows[i].seats, 1);
        assert_true(s.present);
        assert_close(s.risk, rows[i].risk, 1e-9, "oversell");
    }
}

/* ---- S3 COMMIT_GAP and OVERSIZE ---------------------------------------------- */

static void test_commit_gap(void **state)
{
    (void)state;
    /* K = 3650 over 365 days from day 0; evaluated on day 99 (elapsed 100). */
    const struct {
        double cum, rr;
        int32_t t;
        bool present;
        double sf, risk;
    } rows[] = {
        {1000, 10, 99, true, 0.0, 0.0},           /* on pace: P_end = 1000+10*265 = 3650 */
        {1000, 8.622641509, 99, true, 0.10, 0.0}, /* shortfall 10%: at g */
        {500, 5, 99, true, 0.5, 1.0},             /* stalled: P_end 1825 */
        {1000, 10, 53, false, 0, 0},              /* elapsed 54 < 15% of 365 */
        {1000, 10, 54, true, 0.0, 0.0},           /* elapsed 55 */
        {1000, 10, 365, false, 0, 0},             /* expired */
    };
    for (size_t i = 0; i < N(rows); i++) {
        struct pp_sig s =
            pp_sig_commit_gap(&conf, 3650, rows[i].cum, rows[i].rr, 0, 365, rows[i].t);
        char what[64];
        snprintf(what, sizeof(what), "commit row %zu", i);
        if (s.present != rows[i].present) {
            fail_msg("%s: present %d", what, s.present);
        }
        if (s.present) {
            assert_close(s.value, rows[i].sf, 1e-3, what);
            assert_close(s.risk, rows[i].risk, 1e-3, what);
        }
    }
    /* The 45-day minimum beats 15% of a 200-day term (30 d)... */
    assert_false(pp_sig_commit_gap(&conf, 1000, 0, 0, 0, 200, 43).present);
    assert_true(pp_sig_commit_gap(&conf, 1000, 0, 0, 0, 200, 44).present);
    /* ... and 15% of a 3-year term (164 d) beats the 45-day minimum. */
    assert_false(pp_sig_commit_gap(&conf, 1000, 0, 0, 0, 1095, 150).present);
    assert_true(pp_sig_commit_gap(&conf, 1000, 0, 0, 0, 1095, 165).present);

    assert_false(pp_sig_oversize(&conf, 3650, 365, -1).present); /* new consumer */
    assert_close(pp_sig_oversize(&conf, 3650, 365, 8).risk, 0.0, EPS, "1.25x");
    assert_close(pp_sig_oversize(&conf, 3650, 365, 10 / 1.625).risk, 0.5, 1e-9, "1.625x");
    assert_close(pp_sig_oversize(&conf, 3650, 365, 5).risk, 1.0, EPS, "2x");
}

/* ---- S4 QEC, S5 DISC + QEDEAL, S9 REV -------------------------------------- */

static void test_push(void **state)
{
    (void)state;
    /* QEC: share - B through 0.10 .. 0.35, B = 0.30 */
    const double shares[][2] = {{0.40, 0.0}, {0.525, 0.5}, {0.61, 0.84}, {0.65, 1.0}};
    for (size_t i = 0; i < N(shares); i++) {
        struct pp_sig s = pp_sig_qec_share(&conf, shares[i][0] * 1000, 1000, 0.30);
        assert_true(s.present);
        assert_close(s.risk, shares[i][1], 1e-9, "qec");
    }
    /* Apex on 2025-10-10 (§2.7): 0.752 -> risk 1 */
    assert_close(pp_sig_qec_share(&conf, 800040, 1064520, 0.30).risk, 1.0, EPS, "apex qec");

    /* DISC: Orion (§3.4): D_180 0.218, M 0.15, no QE uplift sample -> 0.12 */
    struct pp_sig d = pp_sig_disc(&conf, true, 0.218, 0.15, false, 0.09);
    assert_close(d.risk, 0.12, 1e-9, "orion disc");
    assert_false(pp_sig_disc(&conf, false, 0.3, 0.15, false, 0).present);
    d = pp_sig_disc(&conf, true, 0.20, 0.15, true, 0.15); /* 0.05 + 0.075 */
    assert_close(d.value, 0.125, 1e-9, "disc with uplift");
    assert_close(d.risk, 0.5, 1e-9, "disc warn");
    d = pp_sig_disc(&conf, true, 0.10, 0.15, true, -0.05); /* below peers: 0 */
    assert_close(d.risk, 0.0, EPS, "disc below");
    /* QEDEAL: Orion's OR3 at 22% vs ref 15% -> 0.133; non-QE deals never count */
    assert_close(pp_sig_qedeal(&conf, true, 0.22, 0.15), 0.1333333333, 1e-9, "qedeal");
    assert_close(pp_sig_qedeal(&conf, false, 0.50, 0.15), 0.0, EPS, "qedeal non-QE");
    assert_close(pp_sig_qedeal(&conf, true, 0.36, 0.14), 1.0, EPS, "qedeal apex");

    /* REV: min sample 3 deals; null without reversal types in the feed */
    assert_false(pp_sig_rev(&conf, false, 10, 10, 100).present);
    assert_false(pp_sig_rev(&conf, true, 2, 10, 100).present);
    struct pp_sig r = pp_sig_rev(&conf, true, 3, 12.5, 100);
    assert_true(r.present);
    assert_close(r.risk, 0.5, 1e-9, "rev warn");
    assert_close(pp_sig_rev(&conf, true, 14, 55680, 919860).risk, 0.0701, 1e-3, "apex rev");
}

/* ---- S6 LOAD, S7 ESC, S8 CSAT --------------------------------------------- */

static void test_support(void **state)
{
    (void)state;
    /* Meridian C-MD1 on 2025-09-03 (§2.7): 29.3 weighted tickets in 14 d, mean
     * active ~166, cohort 5.94 -> R = 2.96, risk 0.97 */
    struct pp_sig l = pp_sig_load(&conf, 29.3, 166.0, 5.94, 14);
    assert_close(l.value, 2.96, 0.01, "md1 load");
    assert_close(l.risk, 0.97, 0.01, "md1 load risk");
    /* shrinkage: one Sev-1 on a 10-seat customer stays far from the threshold */
    l = pp_sig_load(&conf, 8, 3, 4.0, 14);
    assert_true(l.value < 1.5 * 1.6);
    /* the floor of 10 active seats */
    assert_close(pp_sig_load(&conf, 0, 0, 4.0, 30).value, 8.0 / (0.4 + 8.0), 1e-9, "floor");
    /* exactly at warn: N + 8 = 2.25 (B + 8) with B = 4 per 100 x 100 seats */
    assert_close(pp_sig_load(&conf, 2.25 * 12 - 8, 100, 4.0, 30).risk, 0.5, 1e-9, "load warn");

    /* ESC with p0 = 0.10: tau0 = 0.14, bad 0.32 (warn 0.23, crit 0.293) */
    assert_close(pp_sig_esc_tau(&conf, 0.10), 0.14, EPS, "tau0");
    assert_close(pp_sig_esc_tau(&conf, 0.05), 0.12, EPS, "tau0 floor");
    struct pp_sig e = pp_sig_esc(&conf, 5.6, 14.3, 0.10);
    assert_close(e.value, 0.287, 1e-3, "md1 esc");
    assert_close(e.risk, 0.82, 0.01, "md1 esc risk");
    e = pp_sig_esc(&conf, 0, 0, 0.10); /* no tickets: the prior, no risk */
    assert_close(e.value, 0.10, EPS, "esc prior");
    assert_close(e.risk, 0.0, EPS, "esc prior risk");
    /* k = 8: a single escalated ticket cannot reach warning */
    assert_true(pp_sig_esc(&conf, 1, 1, 0.10).risk < 0.5);

    /* CSAT with c0 = 0.86: tau 0.84, bad 0.59 (warn 0.715, crit 0.6275) */
    assert_close(pp_sig_csat_tau(&conf, 0.86), 0.84, EPS, "tau");
    assert_close(pp_sig_csat_tau(&conf, 0.95), 0.85, EPS, "tau ceiling");
    struct pp_sig c = pp_sig_csat(&conf, 2.9, 5.7, 0.86);
    assert_close(c.value, 0.673, 1e-3, "md1 csat");
    assert_close(c.risk, 0.67, 0.01, "md1 csat risk");
    assert_close(pp_sig_csat(&conf, 0, 0, 0.86).risk, 0.0, EPS, "csat prior");
    /* cohort-relative: during an incident c0 falls and so does the bar */
    assert_true(pp_sig_csat(&conf, 7, 10, 0.72).risk < pp_sig_csat(&conf, 7, 10, 0.86).risk);
}

/* ---- §2.4 health ----------------------------------------------------------- */

static void sigs_none(struct pp_sig s[PP_W__COUNT])
{
    memset(s, 0, sizeof(struct pp_sig) * PP_W__COUNT);
}

static void test_health(void **state)
{
    (void)state;
    struct pp_sig s[PP_W__COUNT];
    sigs_none(s);
    assert_int_equal(pp_health(&conf, s), -1);
    /* 3 signals but weight 35 < 40: unknown (Crossbeam) */
    s[PP_W_LOAD] = (struct pp_sig){true, 1, 0};
    s[PP_W_CSAT] = (struct pp_sig){true, 1, 0};
    s[PP_W_ESC] = (struct pp_sig){true, 1, 0};
    assert_int_equal(pp_health(&conf, s), -1);
    s[PP_W_DISC] = (struct pp_sig){true, 1, 0};
    assert_int_equal(pp_health(&conf, s), 100);
    /* redistribution: only the present weights count */
    s[PP_W_DISC].risk = 1.0;
    assert_int_equal(pp_health(&conf, s), (int)floor(100.0 * (1 - 7.0 / 42.0) + 0.5));
    /* a push signal at 1.0 does not cap */
    s[PP_W_DISC].risk = 1.0;
    assert_true(pp_health(&conf, s) > 74);
    /* harm at warn caps at 74, at crit at 49 */
    s[PP_W_DISC].risk = 0;
    s[PP_W_LOAD].risk = 0.5;
    assert_int_equal(pp_health(&conf, s), 74);
    s[PP_W_LOAD].risk = 0.85;
    assert_int_equal(pp_health(&conf, s), 49);
    /* Meridian-like: LOAD 1, ESC .8, CSAT .6, DISC 0 -> 31 */
    s[PP_W_LOAD].risk = 1.0;
    s[PP_W_ESC].risk = 0.8;
    s[PP_W_CSAT].risk = 0.6;
    assert_int_equal(pp_health(&conf, s), 31);
    assert_int_equal(pp_health_band(&conf, 75), PP_BAND_GREEN);
    assert_int_equal(pp_health_band(&conf, 74), PP_BAND_YELLOW);
    assert_int_equal(pp_health_band(&conf, 50), PP_BAND_YELLOW);
    assert_int_equal(pp_health_band(&conf, 49), PP_BAND_RED);
    assert_int_equal(pp_health_band(&conf, -1), PP_BAND_UNKNOWN);
}

/* ---- §2.5 families, H, A, CPI ---------------------------------------------- */

static void test_cpi(void **state)
{
    (void)state;
    struct pp_sig load = {true, 2.96, 0.973}, esc = {true, 0.287, 0.817},
                  csat = {true, 0.673, 0.668};
    bool present;
    double h = pp_support_harm(&load, &esc, &csat, &present);
    assert_true(present);
    assert_close(h, 0.841, 1e-3, "md1 h_SUPPORT");
    struct pp_sig null = {false, 0, 0};
    assert_close(pp_support_harm(&load, &null, &null, &present), 0.973, EPS, "load only");
    pp_support_harm(&null, &null, &null, &present);
    assert_false(present);

    assert_close(pp_exposure(&conf, 0.10), 0.5, EPS, "X 10%");
    assert_close(pp_exposure(&conf, 0.20), 1.0, EPS, "X 20%");
    assert_close(pp_exposure(&conf, 0.90), 1.0, EPS, "X saturates");

    struct pp_family_in fam[PP_FAM__COUNT] = {
        {true, 0.5, 1.0}, {false, 0.9, 1.0}, {true, 0.5, 0.5}};
    assert_close(pp_harm(fam), 1 - 0.5 * 0.75, EPS, "noisy-OR skips null families");
    fam[PP_FAM_ADOPT].present = false;
    fam[PP_FAM_SUPPORT].present = false;
    assert_close(pp_harm(fam), 0.0, EPS, "no family, no harm");

    /* Orion: QEDEAL .133, DISC .12 -> A = 0.185 */
    assert_close(pp_aggression(0.1333, 0, 0, 0.12, 0), 0.185, 1e-3, "orion A");
    assert_close(pp_aggression(1, 0, 0, 0, 0), 1.0, EPS, "A max");
    assert_close(pp_aggression(0, 0, 1, 1, 1), 1 - 0.125, EPS, "half weights");

    /* Aggression multiplies, never adds (§2.5) */
    assert_close(pp_cpi(&conf, 0.0, 1.0), 0.0, EPS, "no harm, no pressure");
    assert_close(pp_cpi(&conf, 0.841, 0.0), 84.1, 1e-9, "md1 cpi");
    assert_close(pp_cpi(&conf, 0.9, 1.0), 100.0, EPS, "capped");
    /* §3.5: CPI >= 50 needs H >= 1/3 */
    for (double a = 0.0; a <= 1.0; a += 0.125) {
        for (double hh = 0.0; hh <= 1.0; hh += 0.01) {
            if (pp_cpi(&conf, hh, a) >= 50.0) {
                assert_true(hh >= 1.0 / 3.0 - 1e-9);
            }
        }
    }
}

/* ---- calendar -------------------------------------------------------------- */

static void test_calendar(void **state)
{
    (void)state;
    const struct {
        int32_t d;
        bool qe;
    } rows[] = {
        {day(2025, 3, 17), false},  {day(2025, 3, 18), true},  {day(2025, 3, 31), true},
        {day(2025, 4, 1), false},   {day(2025, 6, 16), false}, {day(2025, 6, 17), true},
        {day(2025, 9, 17), true},   {day(2025, 9, 16), false}, {day(2025, 12, 18), true},
        {day(2025, 12, 17), false}, {day(2024, 12, 20), true},
    };
    for (size_t i = 0; i < N(rows); i++) {
        if (pp_is_quarter_end(&conf, rows[i].d) != rows[i].qe) {
            fail_msg("quarter-end row %zu", i);
        }
    }
    assert_int_equal(pp_quarter_of(day(2025, 6, 30)) - pp_quarter_of(day(2025, 4, 1)), 0);
    assert_int_equal(pp_quarter_of(day(2025, 7, 1)) - pp_quarter_of(day(2025, 6, 30)), 1);
    assert_int_equal(pp_quarter_of(day(2025, 1, 1)) - pp_quarter_of(day(2024, 12, 31)), 1);
    assert_int_equal(pp_quarter_end_day(day(2025, 5, 5)), day(2025, 6, 30));
    assert_int_equal(pp_add_months(day(2024, 10, 8), 24), day(2026, 10, 8));
    assert_int_equal(pp_add_months(day(2025, 1, 31), 1), day(2025, 2, 28));
    assert_int_equal(pp_add_months(day(2024, 1, 31), 1), day(2024, 2, 29));
    assert_int_equal(pp_add_months(day(2025, 11, 15), 3), day(2026, 2, 15));
}

static void test_conf_validate(void **state)
{
    (void)state;
    char err[160];
    struct pp_model_conf c;
    pp_model_conf_defaults(&c);
    assert_int_equal(pp_model_conf_validate(&c, err, sizeof(err)), 0);
    c.state_days = 60;
    assert_int_equal(pp_model_conf_validate(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "state_days"));
    pp_model_conf_defaults(&c);
    c.load_good = c.load_bad;
    assert_int_equal(pp_model_conf_validate(&c, err, sizeof(err)), -1);
    pp_model_conf_defaults(&c);
    c.cp_pending_days = 0;
    assert_int_equal(pp_model_conf_validate(&c, err, sizeof(err)), -1);
    pp_model_conf_defaults(&c);
    c.allowed_lateness_ms = INT64_C(40) * 86400000;
    assert_int_equal(pp_model_conf_validate(&c, err, sizeof(err)), -1);
    pp_model_conf_defaults(&c);
    c.credit_mode = 3;
    assert_int_equal(pp_model_conf_validate(&c, err, sizeof(err)), -1);
    c.credit_mode = 2;
    c.state_days = 104; /* the 1.5 KiB configuration is valid */
    assert_int_equal(pp_model_conf_validate(&c, err, sizeof(err)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_ramp, setup),
        cmocka_unit_test_setup(test_target_schedule, setup),
        cmocka_unit_test_setup(test_shelf, setup),
        cmocka_unit_test_setup(test_oversell, setup),
        cmocka_unit_test_setup(test_commit_gap, setup),
        cmocka_unit_test_setup(test_push, setup),
        cmocka_unit_test_setup(test_support, setup),
        cmocka_unit_test_setup(test_health, setup),
        cmocka_unit_test_setup(test_cpi, setup),
        cmocka_unit_test_setup(test_calendar, setup),
        cmocka_unit_test_setup(test_conf_validate, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
