/*
 * test_dayring.c — the fixed-horizon daily counters of processors/dayring.h.
 *
 * Covers adding and summing inside the window (including negative day
 * numbers), clearing of the days that fall out when the head advances (a
 * slot reused for a newer day must not keep the old count), refusal of days
 * older than the horizon without any change, jumps wider than the ring,
 * sums over ranges only partly covered, counter saturation at UINT32_MAX,
 * and the accepted widths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dayring.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_width_limits(void **state)
{
    (void)state;
    assert_null(pp_dayring_new(0));
    assert_null(pp_dayring_new(PP_DAYRING_MAX_WIDTH + 1));
    assert_null(pp_dayring_new(UINT16_MAX));
    static const uint16_t ok[] = {1, 2, 7, PP_DAYRING_MAX_WIDTH};
    for (size_t i = 0; i < N(ok); i++) {
        struct pp_dayring *ring = pp_dayring_new(ok[i]);
        assert_non_null(ring);
        assert_int_equal(ring->width, ok[i]);
        assert_int_equal(ring->head, INT32_MIN);
        assert_int_equal(pp_dayring_sum(ring, INT32_MIN, INT32_MAX), 0);
        pp_dayring_destroy(ring);
    }
    pp_dayring_destroy(NULL);
}

static void test_add_and_sum_within_window(void **state)
{
    (void)state;
    struct pp_dayring *ring = pp_dayring_new(10);
    /* Out of order but all inside the horizon. */
    assert_true(pp_dayring_add(ring, 100, 1));
    assert_true(pp_dayring_add(ring, 105, 2));
    assert_true(pp_dayring_add(ring, 103, 4));
    assert_true(pp_dayring_add(ring, 105, 8));
    assert_true(pp_dayring_add(ring, 96, 16)); /* head 105, oldest covered 96 */
    assert_int_equal(ring->head, 105);

    static const struct {
        int32_t from, to;
        uint64_t sum;
    } cases[] = {
        {100, 100, 1},  {105, 105, 10}, {103, 103, 4},  {96, 96, 16},  {96, 105, 31},
        {100, 105, 15}, {101, 102, 0},  {104, 105, 10}, {106, 200, 0}, {105, 100, 0},
    };
    for (size_t i = 0; i < N(cases); i++) {
        uint64_t got = pp_dayring_sum(ring, cases[i].from, cases[i].to);
        if (got != cases[i].sum) {
            fail_msg("sum(%d, %d) = %llu, expected %llu", cases[i].from, cases[i].to,
                     (unsigned long long)got, (unsigned long long)cases[i].sum);
        }
    }
    pp_dayring_destroy(ring);
}

static void test_negative_days(void **state)
{
    (void)state;
    struct pp_dayring *ring = pp_dayring_new(7);
    assert_true(pp_dayring_add(ring, -10, 1));
    assert_true(pp_dayring_add(ring, -7, 2));
    assert_true(pp_dayring_add(ring, -4, 4));
    assert_int_equal(pp_dayring_sum(ring, -10, -4), 7);
    assert_int_equal(pp_dayring_sum(ring, -7, -7), 2);
    assert_true(pp_dayring_add(ring, 1, 8)); /* crosses zero: -10 .. -6 fall out */
    assert_int_equal(pp_dayring_sum(ring, -100, 100), 12);
    assert_int_equal(pp_dayring_sum(ring, -4, 1), 12);
    assert_int_equal(pp_dayring_sum(ring, -10, -7), 0);
    pp_dayring_destroy(ring);
}

static void test_advance_clears_expired_days(void **state)
{
    (void)state;
    struct pp_dayring *ring = pp_dayring_new(10);
    for (int32_t d = 0; d < 10; d++) {
        assert_true(pp_dayring_add(ring, d, (uint32_t)d + 1)); /* day d holds d+1 */
    }
    assert_int_equal(pp_dayring_sum(ring, 0, 9), 55);

    pp_dayring_advance(ring, 12); /* days 0, 1, 2 fall out; their slots are reused */
    assert_int_equal(ring->head, 12);
    assert_int_equal(pp_dayring_sum(ring, 10, 12), 0);
    assert_int_equal(pp_dayring_sum(ring, 0, 2), 0);
    assert_int_equal(pp_dayring_sum(ring, 3, 9), 55 - 6);
    assert_int_equal(pp_dayring_sum(ring, INT32_MIN, INT32_MAX), 49);

    /* Advancing backwards or to the head is a no-op. */
    pp_dayring_advance(ring, 5);
    pp_dayring_advance(ring, 12);
    assert_int_equal(ring->head, 12);
    assert_int_equal(pp_dayring_sum(ring, 3, 12), 49);

    /* A width-1 jump past the head keeps the oldest day exactly at the edge. */
    pp_dayring_advance(ring, 13);
    assert_int_equal(pp_dayring_sum(ring, 4, 13), 49 - 4);
    assert_int_equal(pp_dayring_sum(ring, 3, 3), 0);
    pp_dayring_destroy(ring);
}

static void test_jump_of_width_minus_one_keeps_head_day(void **state)
{
    (void)state;
    struct pp_dayring *ring = pp_dayring_new(10);
    assert_true(pp_dayring_add(ring, 100, 3));
    pp_dayring_advance(ring, 109); /* 100 is the oldest covered day */
    assert_int_equal(pp_dayring_sum(ring, 100, 100), 3);
    assert_int_equal(pp_dayring_sum(ring, 101, 109), 0);
    pp_dayring_advance(ring, 110);
    assert_int_equal(pp_dayring_sum(ring, 0, 200), 0);
    pp_dayring_destroy(ring);
}

static void test_big_jumps_clear_everything(void **state)
{
    (void)state;
    static const int32_t jumps[] = {10, 11, 25, 1000, 1000000};
    for (size_t i = 0; i < N(jumps); i++) {
        struct pp_dayring *ring = pp_dayring_new(10);
        for (int32_t d = 0; d < 10; d++) {
            assert_true(pp_dayring_add(ring, d, 5));
        }
        int32_t to = 9 + jumps[i];
        assert_true(pp_dayring_add(ring, to, 1));
        assert_int_equal(ring->head, to);
        assert_int_equal(pp_dayring_sum(ring, INT32_MIN, INT32_MAX), 1);
        /* Every slot reads zero for the days now covered. */
        for (int32_t d = to - 9; d < to; d++) {
            assert_int_equal(pp_dayring_sum(ring, d, d), 0);
        }
        pp_dayring_destroy(ring);
    }
}

static void test_too_old_is_refused_without_change(void **state)
{
    (void)state;
    struct pp_dayring *ring = pp_dayring_new(10);
    assert_true(pp_dayring_add(ring, 100, 7));
    assert_true(pp_dayring_add(ring, 91, 2)); /* the oldest covered day */
    static const int32_t old[] = {90, 89, 0, -5, INT32_MIN + 1};
    for (size_t i = 0; i < N(old); i++) {
        if (pp_dayring_add(ring, old[i], 1000)) {
            fail_msg("add to day %d accepted with head 100 and width 10", old[i]);
        }
        assert_int_equal(ring->head, 100);
        assert_int_equal(pp_dayring_sum(ring, INT32_MIN, INT32_MAX), 9);
        assert_int_equal(pp_dayring_sum(ring, 91, 91), 2);
        assert_int_equal(pp_dayring_sum(ring, 100, 100), 7);
    }
    pp_dayring_destroy(ring);
}

static void test_sum_partly_outside_coverage(void **state)
{
    (void)state;
    struct pp_dayring *ring = pp_dayring_new(10);
    for (int32_t d = 11; d <= 20; d++) {
        assert_true(pp_dayring_add(ring, d, 1));
    }
    static const struct {
        int32_t from, to;
        uint64_t sum;
    } cases[] = {
        {5, 15, 5},   {15, 30, 6},        {0, 10, 0},         {21, 40, 0},
        {11, 20, 10}, {INT32_MIN, 12, 2}, {19, INT32_MAX, 2}, {INT32_MIN, INT32_MAX, 10},
    };
    for (size_t i = 0; i < N(cases); i++) {
        uint64_t got = pp_dayring_sum(ring, cases[i].from, cases[i].to);
        if (got != cases[i].sum) {
            fail_msg("sum(%d, %d) = %llu, expected %llu", cases[i].from, cases[i].to,
                     (unsigned long long)got, (unsigned long long)cases[i].sum);
        }
    }
    pp_dayring_destroy(ring);
}

static void test_saturation(void **state)
{
    (void)state;
    struct pp_dayring *ring = pp_dayring_new(3);
    assert_true(pp_dayring_add(ring, 1, UINT32_MAX - 1));
    assert_true(pp_dayring_add(ring, 1, 5));
    assert_int_equal(pp_dayring_sum(ring, 1, 1), UINT32_MAX);
    assert_true(pp_dayring_add(ring, 1, 1));
    assert_true(pp_dayring_add(ring, 1, UINT32_MAX));
    assert_int_equal(pp_dayring_sum(ring, 1, 1), UINT32_MAX);
    /* Exactly reaching the maximum is not an overflow. */
    assert_true(pp_dayring_add(ring, 2, UINT32_MAX - 3));
    assert_true(pp_dayring_add(ring, 2, 3));
    assert_int_equal(pp_dayring_sum(ring, 2, 2), UINT32_MAX);
    assert_true(pp_dayring_add(ring, 3, UINT32_MAX));
    /* The sum is 64-bit: three saturated days do not wrap. */
    assert_true(pp_dayring_sum(ring, 1, 3) == 3 * (uint64_t)UINT32_MAX);
    pp_dayring_destroy(ring);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_width_limits),
        cmocka_unit_test(test_add_and_sum_within_window),
        cmocka_unit_test(test_negative_days),
        cmocka_unit_test(test_advance_clears_expired_days),
        cmocka_unit_test(test_jump_of_width_minus_one_keeps_head_day),
        cmocka_unit_test(test_big_jumps_clear_everything),
        cmocka_unit_test(test_too_old_is_refused_without_change),
        cmocka_unit_test(test_sum_partly_outside_coverage),
        cmocka_unit_test(test_saturation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
