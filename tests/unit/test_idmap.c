/*
 * test_idmap.c — string interning of processors/idmap.h.
 *
 * Covers dense indexes in insertion order with the created flag, lookups of
 * absent keys, copies of the caller's key, growth to 100k keys with every
 * key and index still found (and every absent one still absent), key
 * pointers that stay valid across growth, and the FNV-1a reference vectors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "idmap.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_dense_indexes_in_insertion_order(void **state)
{
    (void)state;
    struct pp_idmap *map = pp_idmap_new();
    assert_int_equal(pp_idmap_count(map), 0);
    assert_null(pp_idmap_key(map, 0));

    /* Repeats interleaved with new keys: (key, expected index, created). */
    static const struct {
        const char *key;
        uint32_t idx;
        bool created;
    } steps[] = {
        {"P-1", 0, true}, {"P-2", 1, true},  {"P-1", 0, false}, {"", 2, true},
        {"p-1", 3, true}, {"P-2", 1, false}, {"", 2, false},    {"P-10", 4, true},
    };
    for (size_t i = 0; i < N(steps); i++) {
        bool created = !steps[i].created;
        uint32_t idx = pp_idmap_intern(map, steps[i].key, &created);
        if (idx != steps[i].idx || created != steps[i].created) {
            fail_msg("step %zu: intern(\"%s\") = %u created=%d, expected %u created=%d", i,
                     steps[i].key, idx, created, steps[i].idx, steps[i].created);
        }
    }
    assert_int_equal(pp_idmap_count(map), 5);
    static const char *const order[] = {"P-1", "P-2", "", "p-1", "P-10"};
    for (uint32_t i = 0; i < N(order); i++) {
        assert_string_equal(pp_idmap_key(map, i), order[i]);
        assert_int_equal(pp_idmap_find(map, order[i]), i);
    }
    assert_null(pp_idmap_key(map, 5));
    assert_null(pp_idmap_key(map, UINT32_MAX));
    /* created may be NULL. */
    assert_int_equal(pp_idmap_intern(map, "P-3", NULL), 5);
    assert_int_equal(pp_idmap_intern(map, "P-3", NULL), 5);
    pp_idmap_destroy(map);
    pp_idmap_destroy(NULL);
}

static void test_find_absent(void **state)
{
    (void)state;
    struct pp_idmap *map = pp_idmap_new();
    assert_int_equal(pp_idmap_find(map, "x"), -1);
    assert_int_equal(pp_idmap_find(map, ""), -1);
    pp_idmap_intern(map, "abc", NULL);
    static const char *const absent[] = {"ab", "abcd", "ABC", "", "abc "};
    for (size_t i = 0; i < N(absent); i++) {
        assert_int_equal(pp_idmap_find(map, absent[i]), -1);
    }
    assert_int_equal(pp_idmap_count(map), 1);
    pp_idmap_destroy(map);
}

static void test_key_is_copied(void **state)
{
    (void)state;
    struct pp_idmap *map = pp_idmap_new();
    char buf[16];
    snprintf(buf, sizeof(buf), "%s", "C-42");
    uint32_t idx = pp_idmap_intern(map, buf, NULL);
    snprintf(buf, sizeof(buf), "%s", "C-99");
    assert_string_equal(pp_idmap_key(map, idx), "C-42");
    assert_int_equal(pp_idmap_find(map, "C-42"), idx);
    assert_int_equal(pp_idmap_find(map, "C-99"), -1);
    pp_idmap_destroy(map);
}

#define MANY 100000

static void test_growth_to_100k_keys(void **state)
{
    (void)state;
    struct pp_idmap *map = pp_idmap_new();
    char key[32];
    const char *first = NULL;
    for (uint32_t i = 0; i < MANY; i++) {
        snprintf(key, sizeof(key), "customer-%u", i);
        bool created = false;
        uint32_t idx = pp_idmap_intern(map, key, &created);
        if (idx != i || !created) {
            fail_msg("intern(\"%s\") = %u created=%d, expected %u created=1", key, idx, created, i);
        }
        if (i == 0) {
            first = pp_idmap_key(map, 0); /* borrowed: must survive every growth */
        }
    }
    assert_int_equal(pp_idmap_count(map), MANY);
    assert_ptr_equal(pp_idmap_key(map, 0), first);
    assert_string_equal(first, "customer-0");

    for (uint32_t i = 0; i < MANY; i++) {
        snprintf(key, sizeof(key), "customer-%u", i);
        int64_t found = pp_idmap_find(map, key);
        if (found != (int64_t)i) {
            fail_msg("find(\"%s\") = %lld after growth, expected %u", key, (long long)found, i);
        }
        const char *k = pp_idmap_key(map, i);
        if (k == NULL || strcmp(k, key) != 0) {
            fail_msg("key(%u) = \"%s\", expected \"%s\"", i, k ? k : "(null)", key);
        }
        /* Re-interning never creates. */
        if (i % 997 == 0) {
            bool created = true;
            assert_int_equal(pp_idmap_intern(map, key, &created), i);
            assert_false(created);
        }
    }
    for (uint32_t i = MANY; i < MANY + 1000; i++) {
        snprintf(key, sizeof(key), "customer-%u", i);
        assert_int_equal(pp_idmap_find(map, key), -1);
        snprintf(key, sizeof(key), "Customer-%u", i - MANY);
        assert_int_equal(pp_idmap_find(map, key), -1);
    }
    assert_int_equal(pp_idmap_count(map), MANY);
    pp_idmap_destroy(map);
}

static void test_fnv1a_vectors(void **state)
{
    (void)state;
    /* Reference values of 64-bit FNV-1a (offset basis 0xcbf29ce484222325,
     * prime 0x100000001b3). */
    assert_true(pp_hash_str("") == UINT64_C(0xcbf29ce484222325));
    assert_true(pp_hash_str("a") == UINT64_C(0xaf63dc4c8601ec8c));
    assert_true(pp_hash_str("foobar") == UINT64_C(0x85944171f73967e8));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_indexes_in_insertion_order),
        cmocka_unit_test(test_find_absent),
        cmocka_unit_test(test_key_is_copied),
        cmocka_unit_test(test_growth_to_100k_keys),
        cmocka_unit_test(test_fnv1a_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
