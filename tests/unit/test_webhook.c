/*
 * test_webhook.c — the pure parts of app/webhook.c: reading an alert record
 * back from the wire format the producer writes (round trip through
 * pp_codec_encode_alert), the subscriber filters, the Alertmanager payload,
 * and the `webhooks.<name>.*` configuration keys (required url, defaults,
 * unknown sub-keys and the subscriber limit named with file:line:key).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "codec.h"
#include "config.h"
#include "webhook.h"

#define DAY_MS INT64_C(86400000)

static void sample_alert(struct pp_alert *a, enum pp_alert_status st)
{
    memset(a, 0, sizeof(*a));
    snprintf(a->dedup_key, sizeof(a->dedup_key), "cpi:v1:acme:PARTNER:p-1:*");
    snprintf(a->alert_id, sizeof(a->alert_id), "%s:2025-07-10", a->dedup_key);
    snprintf(a->rule_id, sizeof(a->rule_id), "TICKET_SURGE");
    a->status = st;
    a->severity = PP_SEV_WARNING;
    a->scope = PP_SCOPE_PARTNER;
    snprintf(a->tenant, sizeof(a->tenant), "acme");
    snprintf(a->partner_id, sizeof(a->partner_id), "p-1");
    a->first_seen_day = 20279; /* 2025-07-10 */
    a->fired_day = 20279;
    a->eval_day = 20281;
    a->value = 12;
    a->threshold = 10;
    a->window_days = 7;
    snprintf(a->summary, sizeof(a->summary), "12 tickets in 7 days");
}

/* Encodes with the producer's codec and decodes with the notifier. */
static void roundtrip(const struct pp_alert *a, const char *details, struct pp_webhook_alert *wa)
{
    char err[256];
    struct pp_schema_catalog *cat = pp_schema_catalog_new(err, sizeof(err));
    assert_non_null(cat);
    struct pp_codec *codec = pp_codec_new(cat, NULL);
    size_t len;
    const void *buf = pp_codec_encode_alert(codec, a, details, &len, err, sizeof(err));
    assert_non_null(buf);
    assert_int_equal(pp_webhook_decode_alert(buf, len, wa, err, sizeof(err)), 0);
    /* Truncations and trailing bytes are errors, never crashes. */
    struct pp_webhook_alert bad;
    for (size_t cut = 0; cut < len; cut++) {
        assert_int_equal(pp_webhook_decode_alert(buf, cut, &bad, err, sizeof(err)), -1);
    }
    unsigned char *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    assert_int_equal(pp_webhook_decode_alert(longer, len + 1, &bad, err, sizeof(err)), -1);
    free(longer);
    pp_codec_destroy(codec);
    pp_schema_catalog_destroy(cat);
}

static void test_decode_roundtrip(void **state)
{
    (void)state;
    struct pp_alert a;
    sample_alert(&a, PP_ALERT_FIRING);
    snprintf(a.customer_id, sizeof(a.customer_id), "c-9");
    a.scope = PP_SCOPE_PXC;
    struct pp_webhook_alert wa;
    roundtrip(&a, "{\"runbook\":{\"id\":\"RB\",\"hint\":\"call them\"}}", &wa);
    assert_string_equal(wa.a.alert_id, a.alert_id);
    assert_string_equal(wa.a.dedup_key, a.dedup_key);
    assert_string_equal(wa.a.rule_id, "TICKET_SURGE");
    assert_int_equal(wa.a.status, PP_ALERT_FIRING);
    assert_int_equal(wa.a.severity, PP_SEV_WARNING);
    assert_int_equal(wa.a.scope, PP_SCOPE_PXC);
    assert_string_equal(wa.a.partner_id, "p-1");
    assert_string_equal(wa.a.customer_id, "c-9");
    assert_string_equal(wa.a.tenant, "acme");
    assert_true(wa.fired_ms == 20279 * DAY_MS);
    assert_true(wa.evaluated_ms == 20281 * DAY_MS);
    assert_string_equal(wa.a.summary, a.summary);
    assert_string_equal(wa.details_json, "{\"runbook\":{\"id\":\"RB\",\"hint\":\"call them\"}}");
    pp_webhook_alert_clear(&wa);
}

static void test_filters(void **state)
{
    (void)state;
    struct pp_webhook_alert wa = {0};
    sample_alert(&wa.a, PP_ALERT_FIRING);
    struct pp_webhook_sub_conf sub = {.min_severity = PP_SEV_WARNING, .max_attempts = 8};
    assert_true(pp_webhook_matches(&sub, &wa));
    wa.a.status = PP_ALERT_PENDING;
    assert_false(pp_webhook_matches(&sub, &wa));
    wa.a.status = PP_ALERT_RESOLVED;
    assert_true(pp_webhook_matches(&sub, &wa));
    sub.min_severity = PP_SEV_CRITICAL;
    assert_false(pp_webhook_matches(&sub, &wa));
    sub.min_severity = PP_SEV_INFO;
    snprintf(sub.rules, sizeof(sub.rules), "CUSTOMER_PRESSURE, TICKET_SURGE");
    assert_true(pp_webhook_matches(&sub, &wa));
    snprintf(sub.rules, sizeof(sub.rules), "CUSTOMER_PRESSURE,TICKET_SURGEX,TICKET");
    assert_false(pp_webhook_matches(&sub, &wa));
}

static void test_payload(void **state)
{
    (void)state;
    struct pp_webhook_alert wa = {0};
    sample_alert(&wa.a, PP_ALERT_RESOLVED);
    wa.fired_ms = 20279 * DAY_MS;
    wa.evaluated_ms = 20281 * DAY_MS;
    wa.details_json = strdup("{\"runbook\":{\"hint\":\"call the partner\"}}");
    char *body = pp_webhook_payload(&wa, "ops", "http://127.0.0.1:8080");
    assert_non_null(body);
    json_error_t jerr;
    json_t *root = json_loads(body, 0, &jerr);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "version")), "4");
    assert_string_equal(json_string_value(json_object_get(root, "status")), "resolved");
    assert_string_equal(json_string_value(json_object_get(root, "receiver")), "ops");
    assert_non_null(json_string_value(json_object_get(root, "groupKey")));
    json_t *al = json_array_get(json_object_get(root, "alerts"), 0);
    json_t *labels = json_object_get(al, "labels");
    assert_string_equal(json_string_value(json_object_get(labels, "alertname")), "TICKET_SURGE");
    assert_string_equal(json_string_value(json_object_get(labels, "severity")), "warning");
    assert_string_equal(json_string_value(json_object_get(labels, "partner")), "p-1");
    assert_string_equal(json_string_value(json_object_get(labels, "tenant")), "acme");
    assert_null(json_object_get(labels, "customer"));
    json_t *ann = json_object_get(al, "annotations");
    assert_string_equal(json_string_value(json_object_get(ann, "runbook")), "call the partner");
    assert_string_equal(json_string_value(json_object_get(ann, "details")), wa.details_json);
    assert_string_equal(json_string_value(json_object_get(al, "startsAt")),
                        "2025-07-10T00:00:00.000Z");
    assert_string_equal(json_string_value(json_object_get(al, "endsAt")),
                        "2025-07-13T00:00:00.000Z");
    assert_string_equal(json_string_value(json_object_get(al, "generatorURL")),
                        "http://127.0.0.1:8080/v1/partners/p-1");
    char fp[17];
    pp_webhook_fingerprint(wa.a.dedup_key, fp);
    assert_string_equal(json_string_value(json_object_get(al, "fingerprint")), fp);
    assert_int_equal(strlen(fp), 16);
    json_decref(root);
    free(body);

    /* A firing record has Alertmanager's zero endsAt and the same fingerprint. */
    wa.a.status = PP_ALERT_FIRING;
    body = pp_webhook_payload(&wa, "ops", "");
    root = json_loads(body, 0, &jerr);
    al = json_array_get(json_object_get(root, "alerts"), 0);
    assert_string_equal(json_string_value(json_object_get(al, "status")), "firing");
    assert_string_equal(json_string_value(json_object_get(al, "endsAt")), "0001-01-01T00:00:00Z");
    assert_string_equal(json_string_value(json_object_get(al, "fingerprint")), fp);
    json_decref(root);
    free(body);
    pp_webhook_alert_clear(&wa);
}

static int load_text(struct pp_app_conf *conf, const char *text, char *err, size_t errn)
{
    char path[] = "/tmp/pp-test-webhook-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "w");
    fputs(text, fp);
    fclose(fp);
    pp_app_conf_defaults(conf);
    int rc = pp_app_conf_load(conf, path, err, errn);
    unlink(path);
    pp_app_conf_free(conf);
    return rc;
}

static void test_config_keys(void **state)
{
    (void)state;
    struct pp_app_conf conf;
    char err[512];
    assert_int_equal(load_text(&conf,
                               "webhooks:\n"
                               "  ops:\n"
                               "    url: http://127.0.0.1:9/hook\n"
                               "    rules: TICKET_SURGE\n"
                               "  pager:\n"
                               "    url: https://pager.example/x\n"
                               "    min_severity: CRITICAL\n"
                               "    max_attempts: 3\n"
                               "    auth_header: Bearer abc\n",
                               err, sizeof(err)),
                     0);
    assert_int_equal(conf.webhooks_n, 2);
    assert_string_equal(conf.webhooks[0].name, "ops");
    assert_string_equal(conf.webhooks[0].rules, "TICKET_SURGE");
    assert_int_equal(conf.webhooks[0].min_severity, 1);
    assert_int_equal(conf.webhooks[0].max_attempts, 8);
    assert_string_equal(conf.webhooks[1].auth_header, "Bearer abc");
    assert_int_equal(conf.webhooks[1].min_severity, 2);
    assert_int_equal(conf.webhooks[1].max_attempts, 3);

    assert_int_equal(load_text(&conf, "webhooks:\n  ops:\n    rules: X\n", err, sizeof(err)), -1);
    assert_non_null(strstr(err, ":3: key 'webhooks.ops.url': is required"));
    assert_int_equal(load_text(&conf, "webhooks:\n  ops:\n    url: http://x/\n    colour: red\n",
                               err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, ":4: key 'webhooks.ops.colour': unknown key"));
    assert_int_equal(load_text(&conf, "webhooks:\n  ops:\n    url: ftp://x/\n", err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "key 'webhooks.ops.url'"));
    assert_int_equal(load_text(&conf,
                               "webhooks:\n  ops:\n    url: http://x/\n    min_severity: LOUD\n",
                               err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, ":4: key 'webhooks.ops.min_severity'"));

    char big[4096];
    size_t o = (size_t)snprintf(big, sizeof(big), "webhooks:\n");
    for (int i = 0; i <= PP_WEBHOOK_MAX; i++) {
        o += (size_t)snprintf(big + o, sizeof(big) - o, "  w%d:\n    url: http://x/%d\n", i, i);
    }
    assert_int_equal(load_text(&conf, big, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "at most 16 webhook subscribers"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_roundtrip),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_payload),
        cmocka_unit_test(test_config_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
