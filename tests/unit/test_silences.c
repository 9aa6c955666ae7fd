/*
 * test_silences.c — the Kafka-free parts of app/silences.c: RFC 3339
 * parsing, the HTTP handler's validation and answers (201 with an id, list
 * of active silences, 404 and 204 on delete, 405), muting by partner and
 * rule until a time, and applying topic records (upsert, tombstone, bad
 * values ignored).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "silences.h"

static void test_rfc3339(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(pp_parse_rfc3339("2025-07-10T00:00:00Z", &ms), 0);
    assert_true(ms == INT64_C(20279) * 86400000);
    assert_int_equal(pp_parse_rfc3339("2025-07-10T02:00:00.5+02:00", &ms), 0);
    assert_true(ms == INT64_C(20279) * 86400000 + 500);
    assert_int_equal(pp_parse_rfc3339("2025-07-09T23:00:00-01:00", &ms), 0);
    assert_true(ms == INT64_C(20279) * 86400000);
    const char *bad[] = {"",
                         "2025-07-10",
                         "2025-07-10T00:00:00",
                         "2025-13-10T00:00:00Z",
                         "2025-07-10T00:00:00Zx",
                         "2025-07-10T00:00:00.Z",
                         "tomorrow"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(pp_parse_rfc3339(bad[i], &ms), -1);
    }
}

static int post(struct pp_silences *s, const char *body, char **out)
{
    return pp_silences_http(s, "POST", NULL, body, strlen(body), out);
}

static void test_http_and_mute(void **state)
{
    (void)state;
    struct pp_silences *s = pp_silences_new_local();
    char *out = NULL;
    static const char *const bad[] = {
        "{\"until\":\"2999-01-01T00:00:00Z\",\"reason\":\"r\"}",
        "{\"partner\":\"P\",\"until\":\"2999-01-01T00:00:00Z\"}",
        "{\"partner\":\"P\",\"until\":\"2000-01-01T00:00:00Z\",\"reason\":\"r\"}",
        "{\"partner\":\"P\",\"until\":\"2999-01-01T00:00:00Z\",\"reason\":\"r\",\"x\":1}",
        "{\"partner\":7,\"until\":\"2999-01-01T00:00:00Z\",\"reason\":\"r\"}",
        "[1]",
        "{",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(post(s, bad[i], &out), 400);
        json_t *e = json_loads(out, 0, NULL);
        assert_non_null(json_string_value(json_object_get(e, "error")));
        json_decref(e);
        free(out);
    }
    assert_int_equal(
        post(s,
             "{\"partner\":\"P-1\",\"rule\":\"TICKET_SURGE\",\"until\":\"2999-01-01T00:00:00Z\","
             "\"reason\":\"maintenance\"}",
             &out),
        201);
    json_t *j = json_loads(out, 0, NULL);
    free(out);
    char id[PP_SILENCE_ID_MAX];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    assert_int_equal(strlen(id), 32);

    char got[PP_SILENCE_ID_MAX];
    assert_true(pp_silences_muted(s, "P-1", "TICKET_SURGE", 0, got, sizeof(got)));
    assert_string_equal(got, id);
    assert_false(pp_silences_muted(s, "P-1", "CUSTOMER_PRESSURE", 0, got, sizeof(got)));
    assert_false(pp_silences_muted(s, "P-2", "TICKET_SURGE", 0, got, sizeof(got)));
    assert_false(pp_silences_muted(s, "P-1", "TICKET_SURGE", INT64_C(40000000000000), got,
                                   sizeof(got))); /* after until */

    assert_int_equal(pp_silences_http(s, "GET", NULL, "", 0, &out), 200);
    j = json_loads(out, 0, NULL);
    free(out);
    assert_int_equal(json_array_size(json_object_get(j, "silences")), 1);
    json_decref(j);
    assert_int_equal(pp_silences_http(s, "GET", id, "", 0, &out), 200);
    free(out);
    assert_int_equal(pp_silences_http(s, "PUT", NULL, "", 0, &out), 405);
    free(out);
    assert_int_equal(pp_silences_http(s, "DELETE", "nope", "", 0, &out), 404);
    free(out);
    assert_int_equal(pp_silences_http(s, "DELETE", id, "", 0, &out), 204);
    assert_null(out);
    assert_false(pp_silences_muted(s, "P-1", "TICKET_SURGE", 0, got, sizeof(got)));
    pp_silences_destroy(s);
}

static void test_apply(void **state)
{
    (void)state;
    struct pp_silences *s = pp_silences_new_local();
    const char *v = "{\"id\":\"abc\",\"partner\":\"P-9\",\"rule\":null,\"until\":"
                    "\"2999-01-01T00:00:00.000Z\",\"reason\":\"r\",\"created_by\":null,"
                    "\"created_at\":\"2025-01-01T00:00:00.000Z\"}";
    assert_int_equal(pp_silences_apply(s, "abc", 3, v, strlen(v)), 0);
    char got[PP_SILENCE_ID_MAX];
    assert_true(pp_silences_muted(s, "P-9", "ANY_RULE", 0, got, sizeof(got)));
    assert_int_equal(pp_silences_apply(s, "abd", 3, v, strlen(v)), -1); /* key != id */
    assert_int_equal(pp_silences_apply(s, "abc", 3, "{", 1), -1);
    assert_true(pp_silences_muted(s, "P-9", "ANY_RULE", 0, got, sizeof(got)));
    assert_int_equal(pp_silences_apply(s, "abc", 3, NULL, 0), 0); /* tombstone */
    assert_false(pp_silences_muted(s, "P-9", "ANY_RULE", 0, got, sizeof(got)));
    pp_silences_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_http_and_mute),
        cmocka_unit_test(test_apply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
