/*
 * test_watermark.c — stream time across partitions of processors/watermark.h.
 *
 * Wall-clock time is an argument, so every case drives it explicitly.
 * Covers the minimum over active partitions, an assigned partition that
 * never delivers holding the watermark at INT64_MIN until idle_ms has
 * passed (and exactly when it stops), idle partitions no longer holding it,
 * the maximum when every partition is idle, revocation, and monotonicity
 * when a new partition shows up with older data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "watermark.h"

#define IDLE 1000

static void test_empty_is_unknown(void **state)
{
    (void)state;
    struct pp_watermark *wm = pp_watermark_new(IDLE);
    assert_true(pp_watermark_get(wm, 0) == INT64_MIN);
    assert_true(pp_watermark_get(wm, 1000000) == INT64_MIN);
    pp_watermark_revoke(wm, "never-seen"); /* harmless */
    assert_true(pp_watermark_get(wm, 1000001) == INT64_MIN);
    pp_watermark_destroy(wm);
    pp_watermark_destroy(NULL);
}

static void test_min_over_active_partitions(void **state)
{
    (void)state;
    struct pp_watermark *wm = pp_watermark_new(IDLE);
    pp_watermark_observe(wm, "deals/0", 5000, 0);
    pp_watermark_observe(wm, "deals/1", 3000, 0);
    pp_watermark_observe(wm, "support/0", 4000, 0);
    assert_int_equal(pp_watermark_get(wm, 10), 3000);
    /* A partition's stream time is its largest event time, not its latest. */
    pp_watermark_observe(wm, "deals/1", 4500, 20);
    pp_watermark_observe(wm, "deals/1", 1000, 30);
    assert_int_equal(pp_watermark_get(wm, 40), 4000);
    pp_watermark_observe(wm, "support/0", 6000, 50);
    assert_int_equal(pp_watermark_get(wm, 60), 4500);
    pp_watermark_destroy(wm);
}

static void test_silent_assigned_partition_holds_until_idle(void **state)
{
    (void)state;
    struct pp_watermark *wm = pp_watermark_new(IDLE);
    pp_watermark_assign(wm, "support/2", 0);
    pp_watermark_caught_up(wm, "support/2", 0); /* empty: at its end at once */
    pp_watermark_observe(wm, "deals/0", 5000, 0);
    assert_true(pp_watermark_get(wm, 0) == INT64_MIN);
    pp_watermark_observe(wm, "deals/0", 6000, 900);
    assert_true(pp_watermark_get(wm, IDLE - 1) == INT64_MIN);
    /* Exactly idle_ms after its assignment it no longer holds. */
    assert_int_equal(pp_watermark_get(wm, IDLE), 6000);
    pp_watermark_observe(wm, "deals/0", 7000, 1500);
    assert_int_equal(pp_watermark_get(wm, 1600), 7000);
    pp_watermark_destroy(wm);
}

static void test_idle_partition_stops_holding(void **state)
{
    (void)state;
    struct pp_watermark *wm = pp_watermark_new(IDLE);
    pp_watermark_observe(wm, "a", 100, 0);
    pp_watermark_caught_up(wm, "a", 0);
    pp_watermark_observe(wm, "b", 500, 0);
    assert_int_equal(pp_watermark_get(wm, 1), 100);
    pp_watermark_observe(wm, "b", 800, 999);
    assert_int_equal(pp_watermark_get(wm, 999), 100);  /* a still active */
    assert_int_equal(pp_watermark_get(wm, 1000), 800); /* a idle, b active */
    /* a delivers again: it is active and holds the minimum again, but the
     * watermark does not go back. */
    pp_watermark_observe(wm, "a", 300, 1100);
    assert_int_equal(pp_watermark_get(wm, 1100), 800);
    pp_watermark_observe(wm, "a", 900, 1200);
    pp_watermark_observe(wm, "b", 1000, 1200);
    assert_int_equal(pp_watermark_get(wm, 1200), 900);
    pp_watermark_destroy(wm);
}

static void test_all_idle_is_max(void **state)
{
    (void)state;
    struct pp_watermark *wm = pp_watermark_new(IDLE);
    pp_watermark_observe(wm, "a", 100, 0);
    pp_watermark_observe(wm, "b", 500, 0);
    pp_watermark_observe(wm, "c", 300, 0);
    pp_watermark_assign(wm, "d", 0); /* never delivers */
    const char *all[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        pp_watermark_caught_up(wm, all[i], 0);
    }
    assert_true(pp_watermark_get(wm, 999) == INT64_MIN);
    assert_int_equal(pp_watermark_get(wm, 5000), 500);
    pp_watermark_destroy(wm);
}

/* A replay: a partition with a backlog that the consumer has not served for
 * a while is slow, not idle. Until it reaches its end it holds the
 * watermark, however long it stays silent; then idle_ms later it no longer
 * does. */
static void test_partition_with_backlog_is_not_idle(void **state)
{
    (void)state;
    struct pp_watermark *wm = pp_watermark_new(IDLE);
    pp_watermark_observe(wm, "slow", 100, 0);
    pp_watermark_observe(wm, "fast", 90000, 0);
    pp_watermark_observe(wm, "fast", 95000, 60000);
    assert_int_equal(pp_watermark_get(wm, 60000), 100);
    assert_int_equal(pp_watermark_floor(wm, 60000), 100);
    pp_watermark_caught_up(wm, "slow", 60000);
    assert_int_equal(pp_watermark_get(wm, 60000 + IDLE - 1), 100);
    assert_int_equal(pp_watermark_get(wm, 60000 + IDLE), 95000);
    /* New data on the slow partition makes it hold again (from where the
     * watermark is: it never goes back). */
    pp_watermark_observe(wm, "slow", 96000, 62000);
    pp_watermark_observe(wm, "fast", 99000, 62000);
    assert_int_equal(pp_watermark_get(wm, 62000), 96000);
    pp_watermark_destroy(wm);
}

static void test_revoke_removes(void **state)
{
    (void)state;
    struct pp_watermark *wm = pp_watermark_new(IDLE);
    pp_watermark_observe(wm, "a", 100, 0);
    pp_watermark_observe(wm, "b", 500, 0);
    pp_watermark_revoke(wm, "a");
    assert_int_equal(pp_watermark_get(wm, 10), 500);
    pp_watermark_destroy(wm);

    /* A revoked partition does not count for the all-idle maximum either. */
    wm = pp_watermark_new(IDLE);
    pp_watermark_observe(wm, "a", 100, 0);
    pp_watermark_observe(wm, "b", 900, 0);
    pp_watermark_revoke(wm, "b");
    assert_int_equal(pp_watermark_get(wm, 5000), 100);
    pp_watermark_destroy(wm);

    /* A revoked silent partition no longer holds the watermark at INT64_MIN. */
    wm = pp_watermark_new(IDLE);
    pp_watermark_assign(wm, "silent", 0);
    pp_watermark_observe(wm, "a", 100, 0);
    assert_true(pp_watermark_get(wm, 1) == INT64_MIN);
    pp_watermark_revoke(wm, "silent");
    assert_int_equal(pp_watermark_get(wm, 2), 100);
    pp_watermark_destroy(wm);
}

static void test_monotonic(void **state)
{
    (void)state;
    struct pp_watermark *wm = pp_watermark_new(IDLE);
    pp_watermark_observe(wm, "a", 500, 0);
    assert_int_equal(pp_watermark_get(wm, 1), 500);
    /* A new partition (a rebalance) appears with older data. */
    pp_watermark_observe(wm, "b", 100, 10);
    assert_int_equal(pp_watermark_get(wm, 20), 500);
    pp_watermark_assign(wm, "c", 30);
    assert_int_equal(pp_watermark_get(wm, 40), 500);
    /* Revoking the partition that was ahead does not pull it back either. */
    pp_watermark_revoke(wm, "a");
    assert_int_equal(pp_watermark_get(wm, 50), 500);
    pp_watermark_observe(wm, "b", 700, 60);
    pp_watermark_observe(wm, "c", 650, 60);
    assert_int_equal(pp_watermark_get(wm, 70), 650);
    pp_watermark_destroy(wm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_is_unknown),
        cmocka_unit_test(test_min_over_active_partitions),
        cmocka_unit_test(test_silent_assigned_partition_holds_until_idle),
        cmocka_unit_test(test_idle_partition_stops_holding),
        cmocka_unit_test(test_all_idle_is_max),
        cmocka_unit_test(test_partition_with_backlog_is_not_idle),
        cmocka_unit_test(test_revoke_removes),
        cmocka_unit_test(test_monotonic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
