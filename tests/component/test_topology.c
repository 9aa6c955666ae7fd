/*
 * test_topology.c — the model's task runtime (app/topology.c) in-process on
 * librdkafka's mock cluster: MODEL.md §3's stories go into the input topics
 * keyed by event id (so every event crosses the repartition topic), flow
 * through the source, customers and partners tasks, and the alert
 * transitions that come out must be exactly those of one pp_model fed the
 * same events (what `partnerpulse backtest` prints).
 *
 * The mock cluster accepts the transaction calls but writes no transaction
 * markers, so this checks the topology and its bookkeeping under both
 * guarantees; exactly-once across crashes is tested against the real broker
 * (tests/integration/test_eos_kill.py).
 */
#include <setjmp.h>
#include <stdbool.h>
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

#include "alert_json.h"
#include "catalog.h"
#include "codec.h"
#include "config.h"
#include "engine.h"
#include "log.h"
#include "metrics.h"
#include "model.h"
#include "pipeline.h"
#include "scenarios.h"
#include "mock_kafka.h"

struct list {
    char **items;
    size_t n, cap;
};

static void list_add(struct list *l, const struct pp_alert *a)
{
    char *json = NULL;
    assert_int_equal(pp_alert_to_json(a, &json), 0);
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->items = realloc(l->items, l->cap * sizeof(*l->items));
    }
    l->items[l->n++] = json;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_free(struct list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i]);
    }
    free(l->items);
}

struct fixture {
    rd_kafka_t *owner;
    rd_kafka_mock_cluster_t *mc;
    struct pp_app_conf conf;
    struct pp_schema_catalog *cat;
    struct pp_codec *codec;
    rd_kafka_t *feeder;
    struct pp_model *model; /* the reference: one monolithic model */
    int64_t last_ms;
    struct list want, got;
    struct pp_event first; /* the first event fed (the late event's model) */
    bool has_first;
};

static void ref_alert(const struct pp_alert *a, void *opaque)
{
    list_add(opaque, a);
}

static int feed(const struct pp_event *ev, void *opaque)
{
    struct fixture *f = opaque;
    if (!f->has_first) {
        f->first = *ev;
        f->has_first = true;
    }
    char err[256];
    size_t len;
    const void *buf = pp_codec_encode_event(f->codec, ev, &len, err, sizeof(err));
    assert_non_null(buf);
    /* keyed by event id: nothing arrives where its customer lives */
    rd_kafka_resp_err_t kerr =
        rd_kafka_producev(f->feeder, RD_KAFKA_V_TOPIC(pp_app_conf_topic_for(&f->conf, ev->type)),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_KEY((void *)ev->event_id, strlen(ev->event_id)),
                          RD_KAFKA_V_VALUE((void *)buf, len), RD_KAFKA_V_END);
    assert_int_equal(kerr, 0);
    /* the reference sees the events in order, its watermark at the newest */
    assert_int_equal(pp_model_apply(f->model, ev), PP_APPLY_OK);
    if (ev->occurred_at_ms > f->last_ms) {
        f->last_ms = ev->occurred_at_ms;
    }
    pp_model_advance(f->model, f->last_ms, ref_alert, &f->want);
    return 0;
}

static struct fixture *fixture_new(const char *guarantee)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[512];
    f->mc = mock_cluster_new(&f->owner);
    pp_app_conf_defaults(&f->conf);
    f->conf.engine = PP_ENGINE_MODEL;
    f->conf.mock_cluster = true;
    snprintf(f->conf.application_id, sizeof(f->conf.application_id), "topo-%s", guarantee);
    assert_int_equal(
        pp_app_conf_set(&f->conf, "processing.guarantee", guarantee, 0, err, sizeof(err)), 0);
    const char *topics[] = {f->conf.topic_deals, f->conf.topic_licenses, f->conf.topic_support,
                            f->conf.topic_alerts, f->conf.topic_dlq};
    for (int i = 0; i < 5; i++) {
        rd_kafka_mock_topic_create(f->mc, topics[i], 3, 1);
    }
    /* internal topics (the mock has no CreateTopics) */
    const char *suffix[] = {"repartition", "exchange", "customers-changelog", "partners-changelog",
                            "watermarks"};
    const int parts[] = {3, 1, 3, 1, 1};
    for (int i = 0; i < 5; i++) {
        char name[300];
        snprintf(name, sizeof(name), "%s-%s", f->conf.application_id, suffix[i]);
        rd_kafka_mock_topic_create(f->mc, name, parts[i], 1);
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
    struct pp_model_conf mc;
    pp_engine_model_conf(&f->conf, &mc);
    f->model = pp_model_new(&mc);
    f->last_ms = INT64_MIN;
    return f;
}

static void fixture_free(struct fixture *f)
{
    list_free(&f->want);
    list_free(&f->got);
    pp_model_destroy(f->model);
    rd_kafka_destroy(f->feeder);
    pp_codec_destroy(f->codec);
    pp_schema_catalog_destroy(f->cat);
    pp_app_conf_free(&f->conf);
    rd_kafka_mock_cluster_destroy(f->mc);
    rd_kafka_destroy(f->owner);
    free(f);
}

static void on_delivered(const struct pp_alert *a, rd_kafka_resp_err_t err, void *opaque)
{
    struct fixture *f = opaque;
    assert_int_equal(err, 0);
    list_add(&f->got, a);
}

struct run {
    struct fixture *f;
    struct event_base *base;
    time_t deadline;
    struct pp_pipeline *pl;
};

/* Kafka API keys (rdkafka_protocol.h is not installed). */
#define API_PRODUCE           0
#define API_TXN_OFFSET_COMMIT 28

/* A produce refused for good (the batch's records fail: the transaction
 * becomes abortable and librdkafka refuses further produces until it is
 * aborted) and a transactional offset commit refused for a stale generation
 * (a rebalance under way): both abort the transaction. */
static void inject_errors(evutil_socket_t fd, short what, void *arg)
{
    struct fixture *f = arg;
    (void)fd;
    (void)what;
    rd_kafka_mock_push_request_errors(f->mc, API_TXN_OFFSET_COMMIT, 1,
                                      RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION);
    rd_kafka_mock_push_request_errors(f->mc, API_PRODUCE, 1, RD_KAFKA_RESP_ERR_INVALID_RECORD);
}

/* The value of a series in the rendered metrics (-1 when absent). */
static double metric_value(struct pp_pipeline *pl, const char *series)
{
    size_t len;
    char *text = pp_metrics_render(pp_pipeline_metrics(pl), &len);
    const char *at = strstr(text, series);
    double v = at ? strtod(at + strlen(series), NULL) : -1.0;
    free(text);
    return v;
}

static void check_done(evutil_socket_t fd, short what, void *arg)
{
    struct run *r = arg;
    (void)fd;
    (void)what;
    /* Distinct alerts: aborted transactions' records are delivered too. */
    size_t distinct = 0;
    for (size_t i = 0; i < r->f->got.n; i++) {
        size_t j = 0;
        while (j < i && strcmp(r->f->got.items[j], r->f->got.items[i]) != 0) {
            j++;
        }
        distinct += j == i;
    }
    if (distinct >= r->f->want.n || time(NULL) > r->deadline) {
        event_base_loopexit(r->base, NULL);
    }
}

/* Stops the loop once a dead letter is counted (or at the deadline). */
static void check_dead(evutil_socket_t fd, short what, void *arg)
{
    struct run *r = arg;
    (void)fd;
    (void)what;
    if (metric_value(r->pl, "partnerpulse_dead_letters_total{reason=\"too_late\"} ") >= 1 ||
        time(NULL) > r->deadline) {
        event_base_loopexit(r->base, NULL);
    }
}

/* A copy of the first event, new id, months behind the watermark: produced
 * after every alert is out, it must be dead-lettered as too_late, with its
 * own bytes (the customers task applies events in batches and dead-letters
 * after the batch, from a copy of the record). */
static void produce_late(struct fixture *f, const char *id, const void **val, size_t *len)
{
    struct pp_event late = f->first;
    snprintf(late.event_id, sizeof(late.event_id), "%s", id);
    char err[256];
    const void *buf = pp_codec_encode_event(f->codec, &late, len, err, sizeof(err));
    assert_non_null(buf);
    void *copy = malloc(*len);
    memcpy(copy, buf, *len);
    *val = copy;
    assert_int_equal(rd_kafka_producev(f->feeder,
                                       RD_KAFKA_V_TOPIC(pp_app_conf_topic_for(&f->conf, late.type)),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_KEY((void *)id, strlen(id)),
                                       RD_KAFKA_V_VALUE(copy, *len), RD_KAFKA_V_END),
                     0);
    assert_int_equal(rd_kafka_flush(f->feeder, 10000), 0);
}

/* The dead-letter topic holds exactly one record, the late event's bytes,
 * reason too_late, from the repartition topic. */
struct bytes {
    const void *p;
    size_t n;
};

static void visit_dead_letter(const rd_kafka_message_t *m, int i, void *arg)
{
    const struct bytes *want = arg;
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t vs;
    (void)i;
    assert_int_equal(rd_kafka_message_headers(m, &h), 0);
    assert_int_equal(rd_kafka_header_get_last(h, "pp.reason", &v, &vs), 0);
    assert_int_equal(vs, strlen("too_late"));
    assert_memory_equal(v, "too_late", vs);
    assert_int_equal(m->len, want->n);
    assert_memory_equal(m->payload, want->p, want->n);
}

static void check_dead_letter(struct fixture *f, const void *val, size_t len)
{
    struct bytes want = {val, len};
    assert_int_equal(mock_read_topic(f->mc, f->conf.topic_dlq, 3, visit_dead_letter, &want, 8), 1);
}

static void run_story_ex2(const char *guarantee, bool faults, bool late);

static void run_story_ex(const char *guarantee, bool faults)
{
    run_story_ex2(guarantee, faults, false);
}

static void run_story_ex2(const char *guarantee, bool faults, bool late)
{
    struct fixture *f = fixture_new(guarantee);
    struct pp_scen_conf sc;
    pp_scen_conf_defaults(&sc);
    assert_int_equal(pp_scen_generate(&sc, feed, f), 0);
    assert_int_equal(rd_kafka_flush(f->feeder, 10000), 0);
    pp_model_advance(f->model, f->last_ms, ref_alert, &f->want);
    assert_true(f->want.n > 10); /* the stories fire, resolve and escalate */

    char err[512];
    struct event_base *base = event_base_new();
    struct pp_pipeline_hooks hooks = {.alert_delivered = on_delivered, .opaque = f};
    struct pp_pipeline *pl = pp_pipeline_new(&f->conf, base, &hooks, err, sizeof(err));
    if (pl == NULL) {
        fail_msg("pipeline: %s", err);
    }
    assert_true(pp_pipeline_tasks(pl));
    struct run r = {f, base, time(NULL) + 90, pl};
    struct event *ev = event_new(base, -1, EV_PERSIST, check_done, &r);
    struct timeval tv = {0, 100000};
    event_add(ev, &tv);
    struct event *inj = NULL;
    if (faults) {
        if (getenv("PP_TEST_DEBUG")) {
            pp_log_threshold = PP_LOG_DEBUG;
        }
        inj = evtimer_new(base, inject_errors, f);
        struct timeval at = {0, 600000};
        evtimer_add(inj, &at);
    }
    event_base_dispatch(base);
    assert_false(pp_pipeline_failed(pl));
    if (faults) {
        /* The aborted work was done again; records of aborted transactions
         * were delivered too (a read_committed reader skips them), so the
         * alerts compare as a set. */
        assert_true(metric_value(pl, "partnerpulse_transactions_total{result=\"aborted\"} ") >= 1);
        event_free(inj);
    }
    const void *late_val = NULL;
    size_t late_len = 0;
    if (late) {
        assert_true(metric_value(pl, "partnerpulse_dead_letters_total{reason=\"too_late\"} ") < 1);
        event_del(ev); /* every alert is in: check_done would stop at once */
        produce_late(f, "late-1", &late_val, &late_len);
        struct event *dead = event_new(base, -1, EV_PERSIST, check_dead, &r);
        r.deadline = time(NULL) + 30;
        event_add(dead, &tv);
        event_base_dispatch(base);
        event_free(dead);
        assert_false(pp_pipeline_failed(pl));
    }
    assert_int_equal(pp_pipeline_shutdown(pl, 10000), 0);
    if (late) {
        check_dead_letter(f, late_val, late_len);
        free((void *)late_val);
    }
    event_free(ev);
    pp_pipeline_destroy(pl);
    event_base_free(base);

    qsort(f->want.items, f->want.n, sizeof(char *), cmp_str);
    qsort(f->got.items, f->got.n, sizeof(char *), cmp_str);
    if (faults) {
        size_t n = 0;
        for (size_t i = 0; i < f->got.n; i++) {
            if (n > 0 && strcmp(f->got.items[n - 1], f->got.items[i]) == 0) {
                free(f->got.items[i]);
                continue;
            }
            f->got.items[n++] = f->got.items[i];
        }
        f->got.n = n;
    }
    for (size_t i = 0; i < f->want.n && i < f->got.n; i++) {
        if (strcmp(f->want.items[i], f->got.items[i]) != 0) {
            fail_msg("alert %zu differs:\n want %s\n  got %s", i, f->want.items[i],
                     f->got.items[i]);
        }
    }
    assert_int_equal(f->got.n, f->want.n);
    fixture_free(f);
}

static void run_story(const char *guarantee)
{
    run_story_ex(guarantee, false);
}

static void test_at_least_once(void **state)
{
    (void)state;
    run_story("at_least_once");
}

static void test_exactly_once_calls(void **state)
{
    (void)state;
    run_story("exactly_once");
}

/* An event months late, after every alert: dead-lettered too_late with its
 * own bytes, the alerts unchanged. */
static void test_late_event_dead_lettered(void **state)
{
    (void)state;
    run_story_ex2("exactly_once", false, true);
}

/* Transactional errors in the middle of the run: aborted, rewound, done
 * again; the instance keeps running and every alert is there. */
static void test_exactly_once_aborts(void **state)
{
    (void)state;
    run_story_ex("exactly_once", true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_at_least_once),
        cmocka_unit_test(test_exactly_once_calls),
        cmocka_unit_test(test_late_event_dead_lettered),
        cmocka_unit_test(test_exactly_once_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
