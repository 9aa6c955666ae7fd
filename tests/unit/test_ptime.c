/*
 * test_ptime.c — day arithmetic of processors/ptime.h.
 *
 * Covers floor division of milliseconds into days (negative times land on
 * the earlier day), the civil-date conversions against an independent
 * day-by-day calendar walk from 1900-01-01 to 2200-12-31 (every date is
 * converted both ways, formatted and parsed back), the Gregorian leap rules,
 * and pp_day_parse's refusal of anything that is not exactly "YYYY-MM-DD".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ptime.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_day_from_ms_floors(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        int32_t day;
    } cases[] = {
        {0, 0},
        {1, 0},
        {PP_MS_PER_DAY - 1, 0},
        {PP_MS_PER_DAY, 1},
        {PP_MS_PER_DAY + 1, 1},
        {-1, -1},
        {-PP_MS_PER_DAY + 1, -1},
        {-PP_MS_PER_DAY, -1},
        {-PP_MS_PER_DAY - 1, -2},
        {-2 * PP_MS_PER_DAY, -2},
        {INT64_C(1735689600000), 20089},   /* 2025-01-01T00:00:00Z */
        {INT64_C(1735689599999), 20088},   /* 2024-12-31T23:59:59.999Z */
        {INT64_C(-2208988800000), -25567}, /* 1900-01-01T00:00:00Z */
        {INT64_C(-2208988800001), -25568}, /* 1899-12-31T23:59:59.999Z */
        {INT64_C(7258118400000), 84006},   /* 2200-01-01T00:00:00Z */
    };
    for (size_t i = 0; i < N(cases); i++) {
        int32_t got = pp_day_from_ms(cases[i].ms);
        if (got != cases[i].day) {
            fail_msg("pp_day_from_ms(%lld) = %d, expected %d", (long long)cases[i].ms, got,
                     cases[i].day);
        }
    }
}

static void test_day_to_ms_is_midnight(void **state)
{
    (void)state;
    static const int32_t days[] = {-25567, -2, -1, 0, 1, 20089, 84006};
    for (size_t i = 0; i < N(days); i++) {
        int64_t ms = pp_day_to_ms(days[i]);
        assert_true(ms == (int64_t)days[i] * PP_MS_PER_DAY);
        assert_int_equal(pp_day_from_ms(ms), days[i]);
        assert_int_equal(pp_day_from_ms(ms - 1), days[i] - 1);
        assert_int_equal(pp_day_from_ms(ms + PP_MS_PER_DAY - 1), days[i]);
    }
}

/* The reference calendar: written from the Gregorian rule, not from ptime.c. */
static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int y, unsigned m)
{
    static const unsigned len[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

static void test_civil_round_trip_1900_to_2200(void **state)
{
    (void)state;
    int32_t expect = -25567; /* 1900-01-01 */
    int checked = 0;
    for (int y = 1900; y <= 2200; y++) {
        for (unsigned m = 1; m <= 12; m++) {
            for (unsigned d = 1; d <= days_in_month(y, m); d++) {
                int32_t day = pp_day_from_civil(y, m, d);
                if (day != expect) {
                    fail_msg("pp_day_from_civil(%d, %u, %u) = %d, expected %d", y, m, d, day,
                             expect);
                }
                int y2;
                unsigned m2, d2;
                pp_day_to_civil(expect, &y2, &m2, &d2);
                if (y2 != y || m2 != m || d2 != d) {
                    fail_msg("pp_day_to_civil(%d) = %d-%u-%u, expected %d-%u-%u", expect, y2, m2,
                             d2, y, m, d);
                }
                char want[40], got[40];
                snprintf(want, sizeof(want), "%04d-%02u-%02u", y, m, d);
                pp_day_format(expect, got, sizeof(got));
                assert_string_equal(got, want);
                int32_t parsed = INT32_MIN;
                if (!pp_day_parse(want, &parsed) || parsed != expect) {
                    fail_msg("pp_day_parse(\"%s\") failed or gave %d, expected %d", want, parsed,
                             expect);
                }
                expect++;
                checked++;
            }
        }
    }
    /* 301 years, 73 of them leap (1900, 2100 and 2200 are not). */
    assert_int_equal(checked, 301 * 365 + 73);
    assert_int_equal(expect, pp_day_from_civil(2201, 1, 1));
    assert_int_equal(pp_day_from_civil(1970, 1, 1), 0);
    assert_int_equal(pp_day_from_civil(2000, 1, 1), 10957);
    assert_int_equal(pp_day_from_civil(2200, 1, 1), 84006);
}

static void test_day_format_small_buffer_terminates(void **state)
{
    (void)state;
    char buf[5];
    memset(buf, 'x', sizeof(buf));
    pp_day_format(20089, buf, sizeof(buf));
    assert_string_equal(buf, "2025");
}

static void test_leap_days(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool ok;
        int y;
        unsigned m, d;
    } cases[] = {
        {"2024-02-29", true, 2024, 2, 29}, {"2025-02-29", false, 0, 0, 0},
        {"1900-02-29", false, 0, 0, 0},    {"2000-02-29", true, 2000, 2, 29},
        {"2100-02-29", false, 0, 0, 0},    {"2400-02-29", true, 2400, 2, 29},
        {"2025-02-28", true, 2025, 2, 28}, {"2024-02-30", false, 0, 0, 0},
        {"2025-04-31", false, 0, 0, 0},    {"2025-12-31", true, 2025, 12, 31},
        {"2025-01-31", true, 2025, 1, 31}, {"2025-06-31", false, 0, 0, 0},
    };
    for (size_t i = 0; i < N(cases); i++) {
        int32_t day = 12345;
        bool ok = pp_day_parse(cases[i].s, &day);
        if (ok != cases[i].ok) {
            fail_msg("pp_day_parse(\"%s\") = %d, expected %d", cases[i].s, ok, cases[i].ok);
        }
        if (ok) {
            assert_int_equal(day, pp_day_from_civil(cases[i].y, cases[i].m, cases[i].d));
        }
        else {
            assert_int_equal(day, 12345); /* untouched on failure */
        }
    }
    /* Feb 29 and Mar 1 of a leap year are consecutive days, of a common year not. */
    assert_int_equal(pp_day_from_civil(2024, 3, 1) - pp_day_from_civil(2024, 2, 28), 2);
    assert_int_equal(pp_day_from_civil(2025, 3, 1) - pp_day_from_civil(2025, 2, 28), 1);
    assert_int_equal(pp_day_from_civil(2000, 3, 1) - pp_day_from_civil(2000, 2, 28), 2);
    assert_int_equal(pp_day_from_civil(1900, 3, 1) - pp_day_from_civil(1900, 2, 28), 1);
}

static void check_rejected(const char *const *junk, size_t n)
{
    int accepted = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t day = 777;
        if (pp_day_parse(junk[i], &day)) {
            char back[40];
            pp_day_format(day, back, sizeof(back));
            print_error("pp_day_parse(\"%s\") accepted it as %s\n", junk[i], back);
            accepted++;
        }
        else if (day != 777) {
            print_error("pp_day_parse(\"%s\") failed but wrote the output\n", junk[i]);
            accepted++;
        }
    }
    assert_int_equal(accepted, 0);
}

static void test_parse_rejects_junk(void **state)
{
    (void)state;
    static const char *const junk[] = {
        "2025-1-01",
        "2025-01-01x",
        "",
        "2025-13-01",
        "2025-00-10",
        "2025-01-00",
        "2025-01-32",
        "2025/01/01",
        "25-01-01",
        "2025-01-1",
        "2025-01-01 ",
        " 2025-01-01",
        "20250101",
        "2025-01",
        "abcd-ef-gh",
        "2025-01-01T00:00:00Z",
    };
    check_rejected(junk, N(junk));
}

/* "Exactly YYYY-MM-DD" means ten characters, all digits but the dashes:
 * signs and blanks inside the fields are not dates either. */
static void test_parse_rejects_non_digits_in_fields(void **state)
{
    (void)state;
    static const char *const junk[] = {
        "2025- 1-01", "2025-01- 1", "2025-+1-01", "2025-01-+1",
        " 202-01-01", "-202-01-01", "+202-01-01",
    };
    check_rejected(junk, N(junk));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_day_from_ms_floors),
        cmocka_unit_test(test_day_to_ms_is_midnight),
        cmocka_unit_test(test_civil_round_trip_1900_to_2200),
        cmocka_unit_test(test_day_format_small_buffer_terminates),
        cmocka_unit_test(test_leap_days),
        cmocka_unit_test(test_parse_rejects_junk),
        cmocka_unit_test(test_parse_rejects_non_digits_in_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
