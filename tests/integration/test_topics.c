/*
 * test_topics.c — app/topics.c against the real broker (PP_BOOTSTRAP, started
 * by the `kafka` fixture): creation with partitions and compaction,
 * idempotent re-runs, a partition-count mismatch and a non-compacted
 * changelog refused with the message the operator sees, the metadata probe
 * never auto-creating a topic, and several instances creating the same
 * topics at once.
 *
 * Each run uses its own topic names (pid + time), so reruns against one
 * broker do not collide.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "topics.h"

#define TMO 30000

static char prefix[64];

static const char *bootstrap(void)
{
    const char *b = getenv("PP_BOOTSTRAP");
    if (b == NULL || b[0] == '\0') {
        fail_msg("PP_BOOTSTRAP is not set (the kafka fixture sets it)");
    }
    return b;
}

static rd_kafka_t *client(rd_kafka_type_t type)
{
    char e[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap(), e, sizeof(e)),
                     RD_KAFKA_CONF_OK);
    if (type == RD_KAFKA_CONSUMER) {
        assert_int_equal(rd_kafka_conf_set(conf, "group.id", prefix, e, sizeof(e)),
                         RD_KAFKA_CONF_OK);
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, e, sizeof(e));
    if (rk == NULL) {
        fail_msg("rd_kafka_new: %s", e);
    }
    return rk;
}

static void name(char *out, size_t n, const char *suffix)
{
    snprintf(out, n, "%s-%s", prefix, suffix);
}

static void test_create_and_check(void **state)
{
    (void)state;
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER);
    char e[512] = "";
    char rep[128], chg[128], exch[128];
    name(rep, sizeof(rep), "repartition");
    name(chg, sizeof(chg), "customers-changelog");
    name(exch, sizeof(exch), "exchange");
    struct pp_topic_spec specs[] = {
        {rep, 6, 0, NULL},
        {chg, 6, 1, NULL},
        {exch, 1, 0, "the exchange has one partition"},
    };
    /* The probe never creates (a producer's per-topic metadata would). */
    assert_int_equal(pp_topics_partitions(rk, rep, TMO, e, sizeof(e)), 0);
    assert_int_equal(pp_topics_partitions(rk, rep, TMO, e, sizeof(e)), 0);

    if (pp_topics_ensure(rk, specs, 3, -1, TMO, e, sizeof(e)) != 0) {
        fail_msg("ensure: %s", e);
    }
    assert_int_equal(pp_topics_partitions(rk, rep, TMO, e, sizeof(e)), 6);
    assert_int_equal(pp_topics_partitions(rk, chg, TMO, e, sizeof(e)), 6);
    assert_int_equal(pp_topics_partitions(rk, exch, TMO, e, sizeof(e)), 1);

    /* Idempotent: everything exists and matches, compaction included (the
     * changelog is checked with DescribeConfigs now that it exists). */
    for (int i = 0; i < 2; i++) {
        if (pp_topics_ensure(rk, specs, 3, -1, TMO, e, sizeof(e)) != 0) {
            fail_msg("ensure again: %s", e);
        }
    }

    /* processing.partitions changed between deploys: refused, named. */
    struct pp_topic_spec changed = {rep, 3, 0, NULL};
    assert_int_equal(pp_topics_ensure(rk, &changed, 1, -1, TMO, e, sizeof(e)), -1);
    char want[512];
    snprintf(want, sizeof(want),
             "topic %s has 6 partitions, partnerpulse needs 3 (processing.partitions)", rep);
    assert_string_equal(e, want);

    struct pp_topic_spec exch2 = {exch, 2, 0, "the exchange has one partition"};
    assert_int_equal(pp_topics_ensure(rk, &exch2, 1, -1, TMO, e, sizeof(e)), -1);
    snprintf(want, sizeof(want),
             "topic %s has 1 partitions, partnerpulse needs 2 (the exchange has one partition)",
             exch);
    assert_string_equal(e, want);

    /* A changelog that exists with cleanup.policy=delete (created by hand,
     * or by auto-creation) would lose state: refused. */
    struct pp_topic_spec not_compact = {rep, 6, 1, NULL};
    assert_int_equal(pp_topics_ensure(rk, &not_compact, 1, -1, TMO, e, sizeof(e)), -1);
    snprintf(want, sizeof(want),
             "topic %s has cleanup.policy=delete, partnerpulse needs compact (changelog)", rep);
    assert_string_equal(e, want);

    /* A mix: one missing topic is created even when listed with existing
     * ones, and a failing spec fails the whole call. */
    char extra[128];
    name(extra, sizeof(extra), "extra");
    struct pp_topic_spec mix[] = {{rep, 6, 0, NULL}, {extra, 2, 1, NULL}};
    if (pp_topics_ensure(rk, mix, 2, 1, TMO, e, sizeof(e)) != 0) {
        fail_msg("ensure mix: %s", e);
    }
    assert_int_equal(pp_topics_partitions(rk, extra, TMO, e, sizeof(e)), 2);

    struct pp_topic_spec bad = {rep, 0, 0, NULL};
    assert_int_equal(pp_topics_ensure(rk, &bad, 1, -1, TMO, e, sizeof(e)), -1);
    rd_kafka_destroy(rk);
}

struct racer {
    pthread_barrier_t *barrier;
    rd_kafka_t *rk;
    struct pp_topic_spec *specs;
    size_t n;
    int rc;
    char e[512];
};

static void *race(void *arg)
{
    struct racer *r = arg;
    pthread_barrier_wait(r->barrier);
    r->rc = pp_topics_ensure(r->rk, r->specs, r->n, -1, TMO, r->e, sizeof(r->e));
    return NULL;
}

/* One client per "instance", created (and connected, by a first metadata
 * request) before the barrier so that the creations really overlap; no
 * cmocka assertion runs on the racing threads. */
static void run_race(struct racer *rs, size_t n)
{
    pthread_barrier_t b;
    pthread_t th[8];
    char e[512];
    assert_true(n <= 8);
    pthread_barrier_init(&b, NULL, (unsigned)n);
    for (size_t i = 0; i < n; i++) {
        rs[i].barrier = &b;
        rs[i].rk = client(i % 2 ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER);
        assert_true(pp_topics_partitions(rs[i].rk, "none", TMO, e, sizeof(e)) >= 0);
    }
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, race, &rs[i]), 0);
    }
    for (size_t i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        rd_kafka_destroy(rs[i].rk);
    }
    pthread_barrier_destroy(&b);
}

static void test_concurrent_creation(void **state)
{
    (void)state;
    /* Four instances start at once with the same topology: all succeed
     * (whoever loses a CreateTopics race re-checks the winner's topic). */
    for (int round = 0; round < 3; round++) {
        char a[128], c[128], suffix[32];
        snprintf(suffix, sizeof(suffix), "race%d-rep", round);
        name(a, sizeof(a), suffix);
        snprintf(suffix, sizeof(suffix), "race%d-chg", round);
        name(c, sizeof(c), suffix);
        struct pp_topic_spec specs[] = {{a, 4, 0, NULL}, {c, 4, 1, NULL}};
        struct racer rs[4];
        memset(rs, 0, sizeof(rs));
        for (size_t i = 0; i < 4; i++) {
            rs[i].specs = specs;
            rs[i].n = 2;
        }
        run_race(rs, 4);
        for (size_t i = 0; i < 4; i++) {
            if (rs[i].rc != 0) {
                fail_msg("round %d instance %zu: %s", round, i, rs[i].e);
            }
        }
    }

    /* Two instances disagree on the count: exactly one wins, the other is
     * refused with the winner's count named. */
    char t[128];
    name(t, sizeof(t), "race-disagree");
    struct pp_topic_spec four = {t, 4, 0, NULL}, two = {t, 2, 0, NULL};
    struct racer rs[2];
    memset(rs, 0, sizeof(rs));
    rs[0].specs = &four;
    rs[0].n = 1;
    rs[1].specs = &two;
    rs[1].n = 1;
    run_race(rs, 2);
    assert_int_equal(rs[0].rc + rs[1].rc, -1);
    const char *err = rs[0].rc ? rs[0].e : rs[1].e;
    assert_non_null(strstr(err, rs[0].rc ? "has 2 partitions, partnerpulse needs 4"
                                         : "has 4 partitions, partnerpulse needs 2"));
}

int main(void)
{
    snprintf(prefix, sizeof(prefix), "pp-topics-%ld-%ld", (long)getpid(), (long)time(NULL));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_check),
        cmocka_unit_test(test_concurrent_creation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
