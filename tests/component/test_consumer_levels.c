/*
 * test_consumer_levels.c — the consumer's priority levels (consumer.h)
 * against librdkafka's mock cluster.
 *
 * A pipeline that reads its own downstream topics (the runtime's exchange
 * and repartition topics) must not let their records wait behind thousands
 * of prefetched input records. Here a "low" topic holds 20 000 records that
 * the handler works through slowly (20 us each, ~0.4 s); once the first of
 * them is handed out, 10 records are produced to a "high" topic. With the
 * levels they are handed out as soon as librdkafka has fetched them; without
 * (the same test with no level callback, run as the control) they come after
 * every low record fetched before them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <event2/event.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "consumer.h"
#include "mock_kafka.h"

#define LOW_N  20000
#define HIGH_N 10

struct fixture {
    rd_kafka_t *owner;
    rd_kafka_mock_cluster_t *mc;
    rd_kafka_t *producer;
    struct event_base *base;
    struct pp_consumer *consumer;
    int low_seen;
    int high_seen;
    int low_seen_at_last_high; /* low records handed out before the last high one */
    int high_produced;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[512];
    f->mc = mock_cluster_new(&f->owner);
    rd_kafka_mock_topic_create(f->mc, "low", 1, 1);
    rd_kafka_mock_topic_create(f->mc, "high", 1, 1);
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    rd_kafka_conf_set(pc, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(f->mc), NULL, 0);
    rd_kafka_conf_set(pc, "linger.ms", "0", NULL, 0);
    f->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
    assert_non_null(f->producer);
    f->base = event_base_new();
    assert_non_null(f->base);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    pp_consumer_destroy(f->consumer);
    event_base_free(f->base);
    rd_kafka_destroy(f->producer);
    rd_kafka_mock_cluster_destroy(f->mc);
    rd_kafka_destroy(f->owner);
    free(f);
    return 0;
}

static void produce(struct fixture *f, const char *topic, int i)
{
    char val[32];
    int n = snprintf(val, sizeof(val), "%s-%d", topic, i);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        f->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(val, (size_t)n), RD_KAFKA_V_END);
    assert_int_equal(err, 0);
}

static int level(const char *topic, void *opaque)
{
    (void)opaque;
    return strcmp(topic, "high") == 0 ? 2 : 0;
}

static void spin_us(long us)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do {
        clock_gettime(CLOCK_MONOTONIC, &b);
    } while ((b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000 < us);
}

static void seen(struct fixture *f)
{
    if (f->low_seen == LOW_N && f->high_seen == HIGH_N) {
        event_base_loopbreak(f->base);
    }
}

static int on_raw(const rd_kafka_message_t *rkm, void *opaque)
{
    struct fixture *f = opaque;
    if (strcmp(rd_kafka_topic_name(rkm->rkt), "high") == 0) {
        f->high_seen++;
        f->low_seen_at_last_high = f->low_seen;
        seen(f);
        return PP_CONSUMER_DONE;
    }
    f->low_seen++;
    if (!f->high_produced) {
        /* The low records are being handed out (and most are prefetched):
         * now the high ones arrive. */
        f->high_produced = 1;
        for (int i = 0; i < HIGH_N; i++) {
            produce(f, "high", i);
        }
        rd_kafka_flush(f->producer, 5000);
    }
    spin_us(20);
    seen(f);
    return PP_CONSUMER_DONE;
}

static enum pp_consumer_verdict on_event(const struct pp_event *ev, const rd_kafka_message_t *rkm,
                                         void *opaque)
{
    (void)ev;
    (void)rkm;
    (void)opaque;
    fail_msg("every record is handled raw");
    return PP_CONSUMER_DONE;
}

static void on_reject(const rd_kafka_message_t *rkm, enum pp_decode_err err, const char *detail,
                      void *opaque)
{
    (void)rkm;
    (void)err;
    (void)detail;
    (void)opaque;
    fail_msg("nothing is decoded");
}

static void on_error(rd_kafka_resp_err_t err, const char *reason, int fatal, void *opaque)
{
    (void)opaque;
    if (fatal) {
        fail_msg("consumer error %s: %s", rd_kafka_err2name(err), reason);
    }
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

/* Runs the consumer until every record is handed out (or 30 s). */
static void run(struct fixture *f, bool levels)
{
    for (int i = 0; i < LOW_N; i++) {
        produce(f, "low", i);
    }
    assert_int_equal(rd_kafka_flush(f->producer, 10000), 0);
    char err[512];
    rd_kafka_conf_t *cc = rd_kafka_conf_new();
    rd_kafka_conf_set(cc, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(f->mc), NULL, 0);
    rd_kafka_conf_set(cc, "group.id", levels ? "levels" : "control", NULL, 0);
    rd_kafka_conf_set(cc, "auto.offset.reset", "earliest", NULL, 0);
    rd_kafka_conf_set(cc, "enable.auto.offset.store", "false", NULL, 0);
    rd_kafka_conf_set(cc, "fetch.wait.max.ms", "10", NULL, 0);
    rd_kafka_conf_set(cc, "log_level", "3", NULL, 0);
    const char *topics[] = {"low", "high"};
    struct pp_consumer_conf conf = {
        .rk_conf = cc,
        .topics = topics,
        .topics_n = 2,
        .base = f->base,
        .on_event = on_event,
        .on_reject = on_reject,
        .on_error = on_error,
        .on_raw = on_raw,
        .level = levels ? level : NULL,
        .opaque = f,
    };
    f->consumer = pp_consumer_new(&conf, err, sizeof(err));
    assert_non_null(f->consumer);
    struct event *timeout = evtimer_new(f->base, on_timeout, f->base);
    struct timeval tv = {30, 0};
    evtimer_add(timeout, &tv);
    event_base_dispatch(f->base);
    event_free(timeout);
    pp_consumer_close(f->consumer);
    assert_int_equal(f->low_seen, LOW_N);
    assert_int_equal(f->high_seen, HIGH_N);
}

static void test_high_level_overtakes_prefetched_records(void **state)
{
    struct fixture *f = *state;
    run(f, true);
    /* Fetched within tens of ms, while the low records take ~0.4 s. */
    printf("levels: last high record after %d of %d low records\n", f->low_seen_at_last_high,
           LOW_N);
    assert_true(f->low_seen_at_last_high < LOW_N / 2);
}

static void test_control_without_levels_waits_behind(void **state)
{
    struct fixture *f = *state;
    run(f, false);
    /* The control: the same records, one queue. If this fails the test
     * above proves nothing (the high records would overtake anyway). */
    printf("no levels: last high record after %d of %d low records\n", f->low_seen_at_last_high,
           LOW_N);
    assert_true(f->low_seen_at_last_high >= LOW_N / 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_high_level_overtakes_prefetched_records, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_control_without_levels_waits_behind, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
