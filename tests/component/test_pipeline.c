/*
 * test_pipeline.c — the whole pipeline in-process against librdkafka's mock
 * cluster: generated events in, Avro alert records and dead letters out.
 *
 * The alert records are read back from the alerts topic with a separate
 * consumer and decoded with avro-c against schemas/alert.avsc, so the test
 * checks what a subscriber would see, not the pipeline's own bookkeeping.
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

#include <avro.h>
#include <event2/event.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "catalog.h"
#include "codec.h"
#include "config.h"
#include "engine.h"
#include "pipeline.h"
#include "ptime.h"
#include "scenario.h"
#include "mock_kafka.h"

struct fixture {
    rd_kafka_t *owner;
    rd_kafka_mock_cluster_t *mc;
    struct pp_app_conf conf;
    struct pp_schema_catalog *cat;
    struct pp_codec *codec;
    rd_kafka_t *feeder;
    int delivered;
    uint64_t fed; /* valid events produced by feed() */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[512];
    f->mc = mock_cluster_new(&f->owner);
    pp_app_conf_defaults(&f->conf);
    f->conf.engine = PP_ENGINE_TICKET_SURGE; /* the skeleton story's rule */
    f->conf.proc.allowed_lateness_ms = 0;
    f->conf.idle_timeout_ms = 500;
    snprintf(f->conf.application_id, sizeof(f->conf.application_id), "component-%ld",
             (long)time(NULL));
    const char *topics[] = {f->conf.topic_deals, f->conf.topic_licenses, f->conf.topic_support,
                            f->conf.topic_alerts, f->conf.topic_dlq};
    for (int i = 0; i < 5; i++) {
        rd_kafka_mock_topic_create(f->mc, topics[i], 3, 1);
    }
    assert_int_equal(pp_app_conf_set(&f->conf, "kafka.bootstrap.servers",
                                     rd_kafka_mock_cluster_bootstraps(f->mc), 0, err, sizeof(err)),
                     0);
    f->cat = pp_schema_catalog_new(err, sizeof(err));
    assert_non_null(f->cat);
    f->codec = pp_codec_new(f->cat, NULL);
    assert_non_null(f->codec);
    rd_kafka_conf_t *fc = pp_app_kafka_conf(&f->conf, 0, err, sizeof(err));
    assert_non_null(fc);
    f->feeder = rd_kafka_new(RD_KAFKA_PRODUCER, fc, err, sizeof(err));
    assert_non_null(f->feeder);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rd_kafka_destroy(f->feeder);
    pp_codec_destroy(f->codec);
    pp_schema_catalog_destroy(f->cat);
    pp_app_conf_free(&f->conf);
    rd_kafka_mock_cluster_destroy(f->mc);
    rd_kafka_destroy(f->owner);
    free(f);
    return 0;
}

static void produce(struct fixture *f, const char *topic, const void *key, size_t klen,
                    const void *val, size_t vlen)
{
    rd_kafka_resp_err_t err = rd_kafka_producev(
        f->feeder, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY((void *)key, klen), RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_END);
    assert_int_equal(err, 0);
}

static int feed(const struct pp_event *ev, void *opaque)
{
    struct fixture *f = opaque;
    char err[256];
    size_t len;
    const void *buf = pp_codec_encode_event(f->codec, ev, &len, err, sizeof(err));
    assert_non_null(buf);
    produce(f, pp_app_conf_topic_for(&f->conf, ev->type), ev->event_id, strlen(ev->event_id), buf,
            len);
    f->fed++;
    return 0;
}

static void on_delivered(const struct pp_alert *a, rd_kafka_resp_err_t err, void *opaque)
{
    struct fixture *f = opaque;
    (void)a;
    assert_int_equal(err, 0);
    f->delivered++;
}

struct run_until {
    struct fixture *f;
    struct pp_pipeline *pl;
    struct event_base *base;
    int want_alerts;
    uint64_t want_dead;
    uint64_t want_events; /* decoded events to wait for (a loaded machine is slow) */
    time_t deadline;
};

static void check_done(evutil_socket_t fd, short what, void *arg)
{
    struct run_until *r = arg;
    struct pp_pipeline_stats st;
    (void)fd;
    (void)what;
    pp_pipeline_stats(r->pl, &st);
    if ((r->f->delivered >= r->want_alerts && st.dead_letters >= r->want_dead &&
         st.events >= r->want_events) ||
        time(NULL) > r->deadline) {
        event_base_loopexit(r->base, NULL);
    }
}

static void run_pipeline(struct fixture *f, int want_alerts, uint64_t want_dead,
                         uint64_t want_events, struct pp_pipeline_stats *st)
{
    char err[512];
    struct event_base *base = event_base_new();
    struct pp_pipeline_hooks hooks = {.alert_delivered = on_delivered, .opaque = f};
    struct pp_pipeline *pl = pp_pipeline_new(&f->conf, base, &hooks, err, sizeof(err));
    assert_non_null(pl);
    struct run_until r = {f, pl, base, want_alerts, want_dead, want_events, time(NULL) + 60};
    struct event *ev = event_new(base, -1, EV_PERSIST, check_done, &r);
    struct timeval tv = {0, 50000};
    event_add(ev, &tv);
    event_base_dispatch(base);
    assert_int_equal(pp_pipeline_shutdown(pl, 5000), 0);
    assert_false(pp_pipeline_failed(pl));
    pp_pipeline_stats(pl, st);
    event_free(ev);
    pp_pipeline_destroy(pl);
    event_base_free(base);
}

/* Reads every record of `topic` (its 3 partitions, from the start), calling
 * visit for each of the first max (mock_read_topic). */
typedef void(visit_fn)(struct fixture *f, const rd_kafka_message_t *m, int i, void *arg);

struct visit_ctx {
    struct fixture *f;
    visit_fn *visit;
    void *arg;
};

static void visit_with_fixture(const rd_kafka_message_t *m, int i, void *arg)
{
    struct visit_ctx *v = arg;
    v->visit(v->f, m, i, v->arg);
}

static int read_topic(struct fixture *f, const char *topic, visit_fn *visit, void *arg, int max)
{
    struct visit_ctx v = {f, visit, arg};
    return mock_read_topic(f->mc, topic, 3, visit_with_fixture, &v, max);
}

struct decoded_alert {
    char partner[64], status[16], alert_id[256];
    int64_t first_seen_at, last_evaluated_at;
    double value;
};

static void decode_alert(struct fixture *f, const rd_kafka_message_t *m, struct decoded_alert *a)
{
    struct pp_schema_entry *e = pp_schema_catalog_by_kind(f->cat, PP_SCHEMA_ALERT);
    const unsigned char *p = m->payload;
    assert_true(m->len > 5);
    assert_int_equal(p[0], 0);
    assert_int_equal((p[1] << 24) | (p[2] << 16) | (p[3] << 8) | p[4], PP_SCHEMA_ID_ALERT);
    avro_reader_t rd = avro_reader_memory((const char *)p + 5, (int64_t)m->len - 5);
    avro_value_t v, fld;
    avro_generic_value_new(e->iface, &v);
    assert_int_equal(avro_value_read(rd, &v), 0);
    const char *s;
    size_t n;
    int idx;
    avro_value_get_by_name(&v, "partner_id", &fld, NULL);
    avro_value_get_string(&fld, &s, &n);
    snprintf(a->partner, sizeof(a->partner), "%s", s);
    avro_value_get_by_name(&v, "alert_id", &fld, NULL);
    avro_value_get_string(&fld, &s, &n);
    snprintf(a->alert_id, sizeof(a->alert_id), "%s", s);
    avro_value_get_by_name(&v, "status", &fld, NULL);
    avro_value_get_enum(&fld, &idx);
    snprintf(a->status, sizeof(a->status), "%s",
             avro_schema_enum_get(avro_value_get_schema(&fld), idx));
    avro_value_get_by_name(&v, "first_seen_at", &fld, NULL);
    avro_value_get_long(&fld, &a->first_seen_at);
    avro_value_get_by_name(&v, "last_evaluated_at", &fld, NULL);
    avro_value_get_long(&fld, &a->last_evaluated_at);
    avro_value_get_by_name(&v, "value", &fld, NULL);
    avro_value_get_double(&fld, &a->value);
    avro_value_decref(&v);
    avro_reader_free(rd);
    assert_int_equal(m->key_len, strlen(a->partner));
    assert_memory_equal(m->key, a->partner, m->key_len);
}

static void visit_alert(struct fixture *f, const rd_kafka_message_t *m, int i, void *arg)
{
    decode_alert(f, m, &((struct decoded_alert *)arg)[i]);
}

static void visit_dead_letter(struct fixture *f, const rd_kafka_message_t *m, int i, void *arg)
{
    static const char *const want[] = {"bad_magic", "malformed_avro", "unknown_schema_id"};
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t vs;
    (void)arg;
    assert_true(i < 3);
    assert_int_equal(rd_kafka_message_headers(m, &h), 0);
    assert_int_equal(rd_kafka_header_get_last(h, "pp.reason", &v, &vs), 0);
    assert_int_equal(vs, strlen(want[i]));
    assert_memory_equal(v, want[i], vs);
    assert_int_equal(rd_kafka_header_get_last(h, "pp.topic", &v, &vs), 0);
    assert_memory_equal(v, f->conf.topic_support, vs);
    assert_int_equal(m->key_len, 2);
}

/* The skeleton story end to end: P-SURGE fires on 2025-07-31 and resolves on
 * 2025-08-25 (the same days the processor gives offline, see
 * tests/unit/test_scenario.c); P-CALM stays silent. */
static void test_alerts_round_trip(void **state)
{
    struct fixture *f = *state;
    struct pp_scenario_conf sc = {1, pp_day_from_civil(2025, 7, 1), 90};
    assert_int_equal(pp_scenario_skeleton(&sc, feed, f), 0);
    assert_int_equal(rd_kafka_flush(f->feeder, 10000), 0);

    struct pp_pipeline_stats st;
    run_pipeline(f, 2, 0, 0, &st);
    /* Keyed by event id, each customer's events are spread over partitions
     * that the mock cluster serves whole: the pipeline must pause those that
     * run ahead, or the old days of the slow ones would not fit the state. */
    assert_true(st.holds > 0);
    assert_int_equal(st.dead_letters, 0);
    assert_int_equal(st.rejected, 0);
    assert_int_equal(st.alerts_delivered, 2);

    struct decoded_alert a[8];
    int n = read_topic(f, f->conf.topic_alerts, visit_alert, a, 8);
    assert_int_equal(n, 2);
    /* Same key, same partition: FIRING comes before RESOLVED. */
    assert_string_equal(a[0].partner, "P-SURGE");
    assert_string_equal(a[0].status, "FIRING");
    assert_string_equal(a[0].alert_id, "cpi:v1:default:TICKET_SURGE:P-SURGE:*:2025-07-31");
    assert_true(a[0].last_evaluated_at == pp_day_to_ms(pp_day_from_civil(2025, 7, 31)));
    assert_true(a[0].value >= 20.0);
    assert_string_equal(a[1].partner, "P-SURGE");
    assert_string_equal(a[1].status, "RESOLVED");
    assert_string_equal(a[1].alert_id, a[0].alert_id);
    assert_true(a[1].first_seen_at == a[0].first_seen_at);
    assert_true(a[1].last_evaluated_at == pp_day_to_ms(pp_day_from_civil(2025, 8, 25)));
    assert_true(a[1].value < 20.0);
}

/* Undecodable records go to the DLQ with their reason and origin, and the
 * valid records around them are still processed. */
static void test_bad_records_dead_lettered(void **state)
{
    struct fixture *f = *state;
    struct pp_scenario_conf sc = {7, pp_day_from_civil(2025, 1, 1), 5};
    assert_int_equal(pp_scenario_skeleton(&sc, feed, f), 0);
    const unsigned char bad_magic[] = {1, 0, 0, 0, 3, 0};
    const unsigned char truncated[] = {0, 0, 0, 0, 3, 0x10};
    const unsigned char unknown[] = {0, 0, 0, 3, 0xe7, 0};
    produce(f, f->conf.topic_support, "k1", 2, bad_magic, sizeof(bad_magic));
    produce(f, f->conf.topic_support, "k1", 2, truncated, sizeof(truncated));
    produce(f, f->conf.topic_support, "k1", 2, unknown, sizeof(unknown));
    assert_int_equal(rd_kafka_flush(f->feeder, 10000), 0);

    struct pp_pipeline_stats st;
    /* Until every valid event is decoded too: the three bad records may be
     * dead-lettered before the other partitions are read. */
    assert_true(f->fed > 30);
    run_pipeline(f, 0, 3, f->fed, &st);
    assert_int_equal(st.dead_letters, 3);
    assert_int_equal(st.rejected, 3);
    assert_true(st.events >= f->fed);

    int n = read_topic(f, f->conf.topic_dlq, visit_dead_letter, NULL, 8);
    assert_int_equal(n, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_alerts_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_records_dead_lettered, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
