/*
 * test_config.c — the YAML configuration of app/config.h.
 *
 * Each case writes its YAML to a mkstemp file under /tmp, removed by the
 * teardown. Covers the defaults against the key table, a full valid file
 * (nested mappings flatten, kafka.* keys kept with their lines, durations),
 * error messages "FILE:LINE: key 'K': ..." for unknown keys, wrong types,
 * out-of-range values, bad durations, sequences and aliases, kafka.* keys
 * that librdkafka rejects, a missing file, ${VAR} expansion (and an unset
 * variable), and pp_parse_duration_ms's edge cases.
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

#include "config.h"
#include "log.h"

#define N(a)   (sizeof(a) / sizeof((a)[0]))
#define DAY_MS INT64_C(86400000)

struct tcase {
    char path[64];
    struct pp_app_conf conf;
    char err[512];
};

static int setup(void **state)
{
    struct tcase *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return -1;
    }
    pp_app_conf_defaults(&t->conf);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct tcase *t = *state;
    if (t->path[0]) {
        unlink(t->path);
    }
    pp_app_conf_free(&t->conf);
    free(t);
    return 0;
}

/* Writes yaml to a fresh temporary file (replacing the previous one) and
 * loads it over fresh defaults. */
static int load(struct tcase *t, const char *yaml)
{
    if (t->path[0]) {
        unlink(t->path);
    }
    snprintf(t->path, sizeof(t->path), "%s", "/tmp/pp-unit-config-XXXXXX");
    int fd = mkstemp(t->path);
    assert_true(fd >= 0);
    size_t len = strlen(yaml);
    assert_int_equal(write(fd, yaml, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
    pp_app_conf_free(&t->conf);
    pp_app_conf_defaults(&t->conf);
    t->err[0] = '\0';
    return pp_app_conf_load(&t->conf, t->path, t->err, sizeof(t->err));
}

static void load_ok(struct tcase *t, const char *yaml)
{
    if (load(t, yaml) != 0) {
        fail_msg("load failed: %s\n--- yaml:\n%s", t->err, yaml);
    }
}

/* The load fails and the message starts with "FILE:LINE: key 'KEY'" and
 * contains `also` (when not NULL). */
static void load_fails(struct tcase *t, const char *yaml, int line, const char *key,
                       const char *also)
{
    if (load(t, yaml) == 0) {
        fail_msg("load succeeded, expected an error about '%s'\n--- yaml:\n%s", key, yaml);
    }
    char prefix[256];
    snprintf(prefix, sizeof(prefix), "%s:%d: key '%s'", t->path, line, key);
    if (strncmp(t->err, prefix, strlen(prefix)) != 0) {
        fail_msg("error \"%s\" does not start with \"%s\"", t->err, prefix);
    }
    if (also != NULL && strstr(t->err, also) == NULL) {
        fail_msg("error \"%s\" does not mention \"%s\"", t->err, also);
    }
}

static const char *kafka_value(const struct pp_app_conf *conf, const char *key, int *line)
{
    for (size_t i = 0; i < conf->kafka_n; i++) {
        if (strcmp(conf->kafka[i].key, key) == 0) {
            if (line) {
                *line = conf->kafka[i].line;
            }
            return conf->kafka[i].value;
        }
    }
    return NULL;
}

/* ---- defaults ---------------------------------------------------------------- */

static void test_defaults(void **state)
{
    struct tcase *t = *state;
    const struct pp_app_conf *c = &t->conf;
    assert_string_equal(c->path, "");
    assert_string_equal(c->application_id, "partnerpulse");
    assert_string_equal(c->proc.tenant, "default");
    assert_string_equal(c->topic_deals, "deals");
    assert_string_equal(c->topic_licenses, "license-consumption");
    assert_string_equal(c->topic_support, "support");
    assert_string_equal(c->topic_alerts, "partnerpulse-alerts");
    assert_string_equal(c->topic_dlq, "partnerpulse-dlq");
    assert_true(c->proc.allowed_lateness_ms == DAY_MS);
    assert_true(c->idle_timeout_ms == 500);
    assert_true(c->max_message_bytes == 1048576);
    assert_int_equal(c->proc.surge_window_days, 7);
    assert_int_equal(c->proc.surge_threshold, 20);
    assert_true(c->log_level == PP_LOG_INFO);
    assert_int_equal(c->kafka_n, 0);
    assert_null(c->kafka);

    /* The processor defaults agree with the configuration's. */
    struct pp_proc_conf p;
    pp_proc_conf_defaults(&p);
    assert_string_equal(p.tenant, c->proc.tenant);
    assert_true(p.allowed_lateness_ms == c->proc.allowed_lateness_ms);
    assert_int_equal(p.surge_window_days, c->proc.surge_window_days);
    assert_int_equal(p.surge_threshold, c->proc.surge_threshold);
}

static void test_empty_file_keeps_defaults(void **state)
{
    struct tcase *t = *state;
    load_ok(t, "");
    assert_string_equal(t->conf.path, t->path);
    assert_string_equal(t->conf.application_id, "partnerpulse");
    load_ok(t, "# only a comment\n");
    assert_int_equal(t->conf.proc.surge_threshold, 20);
}

/* ---- a full file ---------------------------------------------------------------- */

static void test_full_file(void **state)
{
    struct tcase *t = *state;
    load_ok(t, "# partnerpulse\n"                          /* 1 */
               "application_id: pp-test\n"                 /* 2 */
               "tenant: acme\n"                            /* 3 */
               "topics:\n"                                 /* 4 */
               "  deals: in-deals\n"                       /* 5 */
               "  licenses: in-licenses\n"                 /* 6 */
               "  support: in-support\n"                   /* 7 */
               "  alerts: out-alerts\n"                    /* 8 */
               "  dlq: out-dlq\n"                          /* 9 */
               "processing:\n"                             /* 10 */
               "  allowed_lateness: 0s\n"                  /* 11 */
               "  idle_timeout: 250ms\n"                   /* 12 */
               "  max_message_bytes: 65536\n"              /* 13 */
               "rules:\n"                                  /* 14 */
               "  ticket_surge:\n"                         /* 15 */
               "    window_days: 14\n"                     /* 16 */
               "    threshold: 5\n"                        /* 17 */
               "log: {level: debug}\n"                     /* 18 */
               "kafka:\n"                                  /* 19 */
               "  bootstrap.servers: \"localhost:9092\"\n" /* 20 */
               "  client.id: pp\n"                         /* 21 */
               "  security.protocol: plaintext\n");        /* 22 */
    const struct pp_app_conf *c = &t->conf;
    assert_string_equal(c->path, t->path);
    assert_string_equal(c->application_id, "pp-test");
    assert_string_equal(c->proc.tenant, "acme");
    assert_string_equal(c->topic_deals, "in-deals");
    assert_string_equal(c->topic_licenses, "in-licenses");
    assert_string_equal(c->topic_support, "in-support");
    assert_string_equal(c->topic_alerts, "out-alerts");
    assert_string_equal(c->topic_dlq, "out-dlq");
    assert_true(c->proc.allowed_lateness_ms == 0);
    assert_true(c->idle_timeout_ms == 250);
    assert_true(c->max_message_bytes == 65536);
    assert_int_equal(c->proc.surge_window_days, 14);
    assert_int_equal(c->proc.surge_threshold, 5);
    assert_true(c->log_level == PP_LOG_DEBUG);

    assert_int_equal(c->kafka_n, 3);
    static const struct {
        const char *key, *value;
        int line;
    } kafka[] = {
        {"bootstrap.servers", "localhost:9092", 20},
        {"client.id", "pp", 21},
        {"security.protocol", "plaintext", 22},
    };
    for (size_t i = 0; i < N(kafka); i++) {
        int line = 0;
        const char *v = kafka_value(c, kafka[i].key, &line);
        assert_non_null(v);
        assert_string_equal(v, kafka[i].value);
        assert_int_equal(line, kafka[i].line);
    }
}

static void test_durations_in_file(void **state)
{
    struct tcase *t = *state;
    static const struct {
        const char *text;
        int64_t ms;
    } cases[] = {
        {"0s", 0},          {"0", 0},
        {"250ms", 250},     {"90s", 90000},
        {"15m", 900000},    {"24h", DAY_MS},
        {"7d", 7 * DAY_MS}, {"30d", 30 * DAY_MS},
        {"1.5h", 5400000},  {"\"36h\"", 36 * 3600000},
    };
    for (size_t i = 0; i < N(cases); i++) {
        char yaml[128];
        snprintf(yaml, sizeof(yaml), "processing:\n  allowed_lateness: %s\n", cases[i].text);
        load_ok(t, yaml);
        if (t->conf.proc.allowed_lateness_ms != cases[i].ms) {
            fail_msg("allowed_lateness %s = %lld ms, expected %lld", cases[i].text,
                     (long long)t->conf.proc.allowed_lateness_ms, (long long)cases[i].ms);
        }
    }
}

/* ---- errors ---------------------------------------------------------------------- */

static void test_unknown_key(void **state)
{
    struct tcase *t = *state;
    load_fails(t, "tenant: acme\n# the next line is wrong\ntopics: {dealz: x}\n", 3, "topics.dealz",
               "unknown key");
    load_fails(t, "topics:\n  deals: a\n  dealz: b\n", 3, "topics.dealz", "unknown key");
    load_fails(t, "rules:\n  ticket_surge:\n    windows_days: 3\n", 3,
               "rules.ticket_surge.windows_days", NULL);
    load_fails(t, "Tenant: acme\n", 1, "Tenant", NULL);
    /* A known prefix is not a key. */
    load_fails(t, "topics: x\n", 1, "topics", NULL);
}

static void test_wrong_type(void **state)
{
    struct tcase *t = *state;
    load_fails(t, "rules: {ticket_surge: {threshold: abc}}\n", 1, "rules.ticket_surge.threshold",
               "abc");
    load_fails(t, "\nrules:\n  ticket_surge:\n    threshold: 12x\n", 4,
               "rules.ticket_surge.threshold", NULL);
    load_fails(t, "rules: {ticket_surge: {threshold: -3}}\n", 1, "rules.ticket_surge.threshold",
               NULL);
    load_fails(t, "rules: {ticket_surge: {threshold: 2.5}}\n", 1, "rules.ticket_surge.threshold",
               NULL);
    load_fails(t, "log: {level: verbose}\n", 1, "log.level", "verbose");
    load_fails(t, "tenant: \"\"\n", 1, "tenant", NULL);
}

static void test_out_of_range(void **state)
{
    struct tcase *t = *state;
    static const struct {
        const char *yaml;
        const char *key;
        bool ok;
    } cases[] = {
        {"rules: {ticket_surge: {window_days: 0}}\n", "rules.ticket_surge.window_days", false},
        {"rules: {ticket_surge: {window_days: 91}}\n", "rules.ticket_surge.window_days", false},
        {"rules: {ticket_surge: {window_days: 1}}\n", "rules.ticket_surge.window_days", true},
        {"rules: {ticket_surge: {window_days: 90}}\n", "rules.ticket_surge.window_days", true},
        {"rules: {ticket_surge: {window_days: 4294967297}}\n", "rules.ticket_surge.window_days",
         false},
        {"rules: {ticket_surge: {threshold: 0}}\n", "rules.ticket_surge.threshold", false},
        {"rules: {ticket_surge: {threshold: 1000000001}}\n", "rules.ticket_surge.threshold", false},
        {"processing: {max_message_bytes: 63}\n", "processing.max_message_bytes", false},
        {"processing: {max_message_bytes: 64}\n", "processing.max_message_bytes", true},
        {"processing: {allowed_lateness: 31d}\n", "processing.allowed_lateness", false},
        {"processing: {idle_timeout: 2h}\n", "processing.idle_timeout", false},
        {"processing: {idle_timeout: 1h}\n", "processing.idle_timeout", true},
    };
    for (size_t i = 0; i < N(cases); i++) {
        if (cases[i].ok) {
            load_ok(t, cases[i].yaml);
        }
        else {
            load_fails(t, cases[i].yaml, 1, cases[i].key, NULL);
        }
    }
    load_ok(t, "rules: {ticket_surge: {window_days: 90}}\n");
    assert_int_equal(t->conf.proc.surge_window_days, 90);
}

static void test_bad_duration(void **state)
{
    struct tcase *t = *state;
    load_fails(t, "processing:\n  allowed_lateness: 5 parsecs\n", 2, "processing.allowed_lateness",
               "5 parsecs");
    load_fails(t, "processing:\n  idle_timeout: 5\n", 2, "processing.idle_timeout", NULL);
    load_fails(t, "processing:\n  idle_timeout: -1s\n", 2, "processing.idle_timeout", NULL);
}

static void test_sequences_and_aliases(void **state)
{
    struct tcase *t = *state;
    load_fails(t, "topics: {deals: [a, b]}\n", 1, "topics.deals", "lists");
    load_fails(t, "tenant: acme\ntopics:\n  deals:\n    - a\n    - b\n", 4, "topics.deals", NULL);
    load_fails(t, "tenant: &t acme\napplication_id: *t\n", 2, "application_id", NULL);
}

static void test_kafka_keys(void **state)
{
    struct tcase *t = *state;
    load_fails(t, "kafka: {no.such.property: 1}\n", 1, "kafka.no.such.property",
               "No such configuration property");
    load_fails(t, "kafka:\n  client.id: x\n  session.timeout.ms: soon\n", 3,
               "kafka.session.timeout.ms", NULL);

    /* pp_app_conf_set: a repeated key replaces the value, it is not added twice. */
    struct pp_app_conf conf;
    pp_app_conf_defaults(&conf);
    char err[256] = "";
    assert_int_equal(pp_app_conf_set(&conf, "kafka.client.id", "a", 1, err, sizeof(err)), 0);
    assert_int_equal(pp_app_conf_set(&conf, "kafka.linger.ms", "5", 2, err, sizeof(err)), 0);
    assert_int_equal(pp_app_conf_set(&conf, "kafka.client.id", "b", 3, err, sizeof(err)), 0);
    assert_int_equal(conf.kafka_n, 2);
    int line = 0;
    assert_string_equal(kafka_value(&conf, "client.id", &line), "b");
    assert_int_equal(line, 3);
    /* "kafka." alone is not a kafka key. */
    assert_int_not_equal(pp_app_conf_set(&conf, "kafka.", "x", 4, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "(command line):4: key 'kafka.'"));
    pp_app_conf_free(&conf);
    assert_int_equal(conf.kafka_n, 0);
}

static void test_missing_file(void **state)
{
    struct tcase *t = *state;
    const char *path = "/tmp/pp-unit-no-such-dir/partnerpulse.yaml";
    t->err[0] = '\0';
    assert_int_not_equal(pp_app_conf_load(&t->conf, path, t->err, sizeof(t->err)), 0);
    assert_non_null(strstr(t->err, path));
}

static void test_yaml_syntax_error_names_file_and_line(void **state)
{
    struct tcase *t = *state;
    assert_int_not_equal(load(t, "tenant: acme\ntopics: {deals: x\n"), 0);
    char prefix[96];
    snprintf(prefix, sizeof(prefix), "%s:", t->path);
    assert_true(strncmp(t->err, prefix, strlen(prefix)) == 0);
    assert_non_null(strstr(t->err, "YAML"));
}

static void test_env_expansion(void **state)
{
    struct tcase *t = *state;
    assert_int_equal(setenv("PP_UNIT_TENANT", "envco", 1), 0);
    assert_int_equal(setenv("PP_UNIT_SECRET", "s3cr3t", 1), 0);
    load_ok(t, "tenant: ${PP_UNIT_TENANT}\n"
               "application_id: \"pre-${PP_UNIT_TENANT}-${PP_UNIT_TENANT}\"\n"
               "kafka:\n"
               "  sasl.password: \"${PP_UNIT_SECRET}\"\n");
    assert_string_equal(t->conf.proc.tenant, "envco");
    assert_string_equal(t->conf.application_id, "pre-envco-envco");
    assert_string_equal(kafka_value(&t->conf, "sasl.password", NULL), "s3cr3t");

    assert_int_equal(unsetenv("NOPE_UNSET"), 0);
    load_fails(t, "application_id: x\ntenant: ${NOPE_UNSET}\n", 2, "tenant", "NOPE_UNSET");
    load_fails(t, "tenant: \"${PP_UNIT_TENANT\"\n", 1, "tenant", NULL);
    load_fails(t, "tenant: \"${}\"\n", 1, "tenant", NULL);

    /* ${VAR:-default}: the default when unset or empty, the value otherwise. */
    load_ok(t, "tenant: ${NOPE_UNSET:-fallback}\n");
    assert_string_equal(t->conf.proc.tenant, "fallback");
    assert_int_equal(setenv("PP_UNIT_EMPTY", "", 1), 0);
    load_ok(t, "tenant: ${PP_UNIT_EMPTY:-fallback2}\n");
    assert_string_equal(t->conf.proc.tenant, "fallback2");
    load_ok(t, "tenant: ${PP_UNIT_TENANT:-unused}\n");
    assert_string_equal(t->conf.proc.tenant, "envco");
    unsetenv("PP_UNIT_EMPTY");
    unsetenv("PP_UNIT_TENANT");
    unsetenv("PP_UNIT_SECRET");
}

/* ---- pp_parse_duration_ms ------------------------------------------------------ */

static void test_parse_duration(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t ms;
    } ok[] = {
        {"0", 0},          {"0s", 0},
        {"0ms", 0},        {"0d", 0},
        {"1ms", 1},        {"250ms", 250},
        {"1s", 1000},      {"1.5s", 1500},
        {"30s", 30000},    {"5m", 300000},
        {"24h", 86400000}, {"7d", 604800000},
        {"0.25s", 250},    {"100000d", 100000 * DAY_MS},
    };
    for (size_t i = 0; i < N(ok); i++) {
        int64_t ms = -42;
        if (pp_parse_duration_ms(ok[i].s, &ms) != 0 || ms != ok[i].ms) {
            fail_msg("pp_parse_duration_ms(\"%s\") failed or gave %lld, expected %lld", ok[i].s,
                     (long long)ms, (long long)ok[i].ms);
        }
    }
    static const char *const bad[] = {
        "",     "s",         "ms",     "5",      "-1s",        "-5m",  "5x",   "5 s",   "5S",
        "5sec", "5 parsecs", "1e400s", "1e300d", "200000000d", "infs", "nans", "nanms", "NANd",
    };
    int accepted = 0;
    for (size_t i = 0; i < N(bad); i++) {
        int64_t ms = -42;
        if (pp_parse_duration_ms(bad[i], &ms) == 0) {
            print_error("pp_parse_duration_ms(\"%s\") accepted it as %lld ms\n", bad[i],
                        (long long)ms);
            accepted++;
        }
        else if (ms != -42) {
            print_error("pp_parse_duration_ms(\"%s\") failed but wrote the output\n", bad[i]);
            accepted++;
        }
    }
    assert_int_equal(accepted, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file_keeps_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durations_in_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_duration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequences_and_aliases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kafka_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_syntax_error_names_file_and_line, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_env_expansion, setup, teardown),
        cmocka_unit_test(test_parse_duration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
