/*
 * pipeline.c — consumer → processors → producer on one event loop.
 */
#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "catalog.h"
#include "codec.h"
#include "consumer.h"
#include "log.h"
#include "notify.h"
#include "palloc.h"
#include "engine.h"
#include "proc.h"
#include "producer.h"
#include "registry.h"
#include "topology.h"
#include "watermark.h"

#define TICK_MS 100
/* A partition whose next event is this far ahead of the oldest event another
 * active partition may still deliver is paused until the others catch up
 * (event-time alignment): the state's day rings hold this much skew. */
#define ALIGN_MS (pp_engine_max_skew_ms(pl->engine))
#define MAX_HELD 1024

struct held {
    char topic[256];
    int32_t partition;
    int64_t event_ms;
};

struct pp_pipeline {
    struct event_base *base;
    struct pp_pipeline_hooks hooks;
    struct pp_schema_catalog *cat;
    struct pp_registry *reg; /* NULL: the local schema catalog */
    struct pp_codec *codec;
    struct pp_engine *engine; /* rules.engine: the model or TICKET_SURGE */
    int64_t watermark_ms;     /* the last watermark given to the engine */
    struct pp_watermark *wm;
    struct pp_consumer *consumer;
    struct pp_producer *producer;
    struct pp_topology *topo; /* the model's task runtime; NULL: single-task (ticket_surge) */
    struct event *tick;
    struct held held[MAX_HELD];
    size_t held_n;
    uint64_t holds;
    int failed;
    uint64_t alerts_emitted;
    struct pp_pipeline_listener listener;
    uint32_t restoring;
    /* Metrics (docs/metrics.md): series kept for the hot paths. */
    struct pp_metrics *metrics;
    struct pp_metric *m_events[4]; /* by enum pp_event_type */
    struct pp_metric *m_records, *m_holds, *m_latency;
    struct pp_metric *m_partners, *m_watermark, *m_assigned, *m_state_bytes;
    struct pp_metric_family *f_dead, *f_alerts, *f_lag, *f_watermark;
};

/* The pipelines alive in this process, so that librdkafka's statistics
 * callback (whose opaque is the consumer's) finds its pipeline. All on the
 * loop thread; a process runs one pipeline, the tests a few. */
#define MAX_LIVE 16
static struct pp_pipeline *live[MAX_LIVE];

static void fail(struct pp_pipeline *pl)
{
    pl->failed = 1;
    event_base_loopexit(pl->base, NULL);
}

static void rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enum pp_log_level l = level <= 3   ? PP_LOG_ERROR
                          : level <= 4 ? PP_LOG_WARN
                          : level <= 6 ? PP_LOG_INFO
                                       : PP_LOG_DEBUG;
    pp_log(l, "component=librdkafka client=%s facility=%s msg=\"%s\"", rd_kafka_name(rk), fac, buf);
}

static int kset(rd_kafka_conf_t *kc, const char *k, const char *v, char *errstr, size_t sz)
{
    return rd_kafka_conf_set(kc, k, v, errstr, sz) == RD_KAFKA_CONF_OK ? 0 : -1;
}

/* Consumer properties a user commonly sets under kafka.* (static membership,
 * session tuning): not given to the producers, which only log that they
 * ignore them (CONFWARN) at every start. */
static int consumer_only(const char *key)
{
    static const char *const keys[] = {"group.instance.id",
                                       "session.timeout.ms",
                                       "heartbeat.interval.ms",
                                       "max.poll.interval.ms",
                                       "partition.assignment.strategy",
                                       "auto.offset.reset",
                                       "enable.auto.commit",
                                       "auto.commit.interval.ms",
                                       "enable.auto.offset.store",
                                       "isolation.level",
                                       "fetch.wait.max.ms",
                                       "fetch.min.bytes",
                                       "fetch.max.bytes",
                                       "max.partition.fetch.bytes",
                                       "queued.min.messages",
                                       "queued.max.messages.kbytes",
                                       "enable.partition.eof",
                                       "check.crcs"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(key, keys[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Memory bounds (issue #7: peak RSS). librdkafka's defaults let a consumer
 * prefetch up to 64 MiB ahead of the loop, a fetch response carry 50 MiB
 * and a producer queue 1 GiB; on a backlog they fill up, by how much
 * depends on timing. Measured on the peer benchmark's backlog: 16 MiB fetch
 * responses alone took the peak RSS from 409-449 MiB to 288 at the same
 * throughput. User kafka.* keys, set after these, override them
 * (docs/configuration.md). */
static int bound_consumer(rd_kafka_conf_t *kc, char *errstr, size_t sz)
{
    return kset(kc, "queued.max.messages.kbytes", PP_KAFKA_PREFETCH_KBYTES, errstr, sz) ||
           kset(kc, "fetch.max.bytes", PP_KAFKA_FETCH_MAX_BYTES, errstr, sz);
}

rd_kafka_conf_t *pp_app_kafka_conf(const struct pp_app_conf *conf, int consumer, char *errstr,
                                   size_t errstr_size)
{
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    int rc = kset(kc, "client.id", conf->application_id, errstr, errstr_size);
    if (consumer == 2) {
        /* a plain client (restore readers): the user's kafka.* keys and the
         * prefetch bounds */
        rc = rc || bound_consumer(kc, errstr, errstr_size);
    }
    else if (consumer) {
        /* Statistics feed partnerpulse_consumer_lag; kafka.statistics.interval.ms
         * overrides the period (0 turns them off). */
        rc = rc || kset(kc, "group.id", conf->application_id, errstr, errstr_size) ||
             kset(kc, "statistics.interval.ms", "5000", errstr, errstr_size) ||
             kset(kc, "auto.offset.reset", "earliest", errstr, errstr_size) ||
             kset(kc, "enable.auto.offset.store", "false", errstr, errstr_size) ||
             kset(kc, "enable.partition.eof", "true", errstr, errstr_size) ||
             kset(kc, "partition.assignment.strategy", "cooperative-sticky", errstr, errstr_size) ||
             bound_consumer(kc, errstr, errstr_size);
    }
    else {
        rc = rc || kset(kc, "enable.idempotence", "true", errstr, errstr_size) ||
             kset(kc, "linger.ms", "5", errstr, errstr_size) ||
             kset(kc, "queue.buffering.max.kbytes", PP_KAFKA_PRODUCER_QUEUE_KBYTES, errstr,
                  errstr_size);
    }
    for (size_t i = 0; !rc && i < conf->kafka_n; i++) {
        char kerr[256];
        if (!consumer && consumer_only(conf->kafka[i].key)) {
            continue; /* librdkafka would warn that a producer ignores it */
        }
        if (kset(kc, conf->kafka[i].key, conf->kafka[i].value, kerr, sizeof(kerr)) != 0) {
            snprintf(errstr, errstr_size, "%s:%d: key 'kafka.%s': %s", conf->path,
                     conf->kafka[i].line, conf->kafka[i].key, kerr);
            rc = -1;
        }
    }
    if (rc) {
        rd_kafka_conf_destroy(kc);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(kc, rdkafka_log);
    return kc;
}

static void on_alert(const struct pp_alert *alert, void *opaque)
{
    struct pp_pipeline *pl = opaque;
    char err[256];
    pl->alerts_emitted++;
    pp_log(PP_LOG_INFO, "msg=\"alert transition\" rule=%s partner=%s status=%s alert_id=%s",
           alert->rule_id, alert->partner_id, pp_alert_status_name(alert->status), alert->alert_id);
    if (pp_producer_send_alert(pl->producer, alert, err, sizeof(err)) != 0) {
        if (pl->topo && pp_topology_txn_refused(pl->topo)) {
            return; /* the transaction is aborted and the work done again */
        }
        /* Losing an alert silently is worse than stopping: exit non-zero so
         * the orchestrator restarts us from the last committed offsets. */
        pp_log(PP_LOG_ERROR, "msg=\"cannot queue alert\" alert_id=%s error=\"%s\"", alert->alert_id,
               err);
        fail(pl);
    }
}

static void dead_letter(struct pp_pipeline *pl, const rd_kafka_message_t *rkm, const char *reason,
                        const char *detail)
{
    char err[256];
    struct pp_dead_letter dl = {
        .key = rkm->key,
        .key_len = rkm->key_len,
        .value = rkm->payload,
        .value_len = rkm->len,
        .reason = reason,
        .detail = detail,
        .topic = rd_kafka_topic_name(rkm->rkt),
        .partition = rkm->partition,
        .offset = rkm->offset,
    };
    /* The writer's schema id, when the value has a wire header at all. */
    dl.has_schema_id = pp_wire_schema_id(rkm->payload, rkm->len, &dl.schema_id);
    pp_log(PP_LOG_WARN,
           "msg=\"record dead-lettered\" reason=%s topic=%s partition=%d offset=%lld "
           "detail=\"%s\"",
           reason, dl.topic, (int)rkm->partition, (long long)rkm->offset, detail);
    pp_metric_add(pp_metrics_series(pl->f_dead, &reason), 1);
    if (pp_producer_send_dead_letter(pl->producer, &dl, err, sizeof(err)) != 0) {
        if (pl->topo && pp_topology_txn_refused(pl->topo)) {
            return; /* the transaction is aborted and the work done again */
        }
        pp_log(PP_LOG_ERROR, "msg=\"cannot queue dead letter\" error=\"%s\"", err);
        fail(pl);
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void source_key(char *buf, size_t size, const char *topic, int32_t partition)
{
    snprintf(buf, size, "%s/%d", topic, (int)partition);
}

/* Gives the engine the current watermark: every day that closes is
 * evaluated (alert transitions go to on_alert; on_day tells the listener). */
static void advance(struct pp_pipeline *pl, int64_t now)
{
    int64_t wm = pp_watermark_get(pl->wm, now);
    if (wm > pl->watermark_ms) {
        pl->watermark_ms = wm;
    }
    pp_engine_advance(pl->engine, wm, on_alert, pl);
}

static void on_day(int32_t day, void *opaque)
{
    struct pp_pipeline *pl = opaque;
    if (pl->listener.day_evaluated) {
        pl->listener.day_evaluated(day, pl->listener.opaque);
    }
}

static struct held *find_held(struct pp_pipeline *pl, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < pl->held_n; i++) {
        if (pl->held[i].partition == partition && strcmp(pl->held[i].topic, topic) == 0) {
            return &pl->held[i];
        }
    }
    return NULL;
}

static void drop_held(struct pp_pipeline *pl, struct held *h)
{
    *h = pl->held[--pl->held_n];
}

static enum pp_consumer_verdict on_event(const struct pp_event *ev, const rd_kafka_message_t *rkm,
                                         void *opaque)
{
    struct pp_pipeline *pl = opaque;
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    int64_t now = now_ms();
    char key[300];
    source_key(key, sizeof(key), topic, rkm->partition);
    if (pl->held_n > 0 && find_held(pl, topic, rkm->partition) != NULL) {
        return PP_CONSUMER_HOLD; /* fetched before the pause: it comes again */
    }
    int64_t floor = pp_watermark_floor(pl->wm, now);
    if (floor != INT64_MIN && floor != INT64_MAX && ev->occurred_at_ms - floor > ALIGN_MS &&
        pl->held_n < MAX_HELD && pp_consumer_hold(pl->consumer, rkm) == 0) {
        struct held *h = &pl->held[pl->held_n++];
        snprintf(h->topic, sizeof(h->topic), "%s", topic);
        h->partition = rkm->partition;
        h->event_ms = ev->occurred_at_ms;
        pl->holds++;
        /* The partition delivers in order: nothing older than this record
         * will come from it, so this is its stream time for the watermark
         * (and a gap in a sparse partition cannot deadlock the floor). */
        pp_watermark_observe(pl->wm, key, ev->occurred_at_ms, now);
        pp_log(PP_LOG_DEBUG,
               "msg=\"partition ahead in event time, paused\" topic=%s "
               "partition=%d offset=%lld",
               topic, (int)rkm->partition, (long long)rkm->offset);
        return PP_CONSUMER_HOLD;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    switch (pp_engine_apply(pl->engine, ev)) {
    case PP_APPLY_OK:
        break;
    case PP_APPLY_TOO_LATE:
        dead_letter(pl, rkm, "too_late", "event day already evaluated (beyond allowed lateness)");
        break;
    case PP_APPLY_SKEWED:
        dead_letter(pl, rkm, "partition_skew",
                    "older than the state horizon behind a faster input partition");
        break;
    }
    pp_watermark_observe(pl->wm, key, ev->occurred_at_ms, now);
    advance(pl, now);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pp_metric_observe(pl->m_latency,
                      (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
    if ((unsigned)ev->type < 4) {
        pp_metric_add(pl->m_events[ev->type], 1);
    }
    return PP_CONSUMER_DONE;
}

/* Resumes the held partitions that the others have caught up with. */
static void release_held(struct pp_pipeline *pl, int64_t now)
{
    int64_t floor = pp_watermark_floor(pl->wm, now);
    for (size_t i = 0; i < pl->held_n;) {
        struct held *h = &pl->held[i];
        if (floor == INT64_MAX || h->event_ms - floor <= ALIGN_MS) {
            pp_consumer_resume(pl->consumer, h->topic, h->partition);
            drop_held(pl, h);
            continue;
        }
        i++;
    }
}

/* A partition at its end may go idle and stop holding the watermark. */
static void on_eof(const char *topic, int32_t partition, int64_t end_offset, void *opaque)
{
    struct pp_pipeline *pl = opaque;
    char key[300];
    (void)end_offset;
    source_key(key, sizeof(key), topic, partition);
    pp_watermark_caught_up(pl->wm, key, now_ms());
}

static void on_assign(const char *topic, int32_t partition, int assigned, void *opaque)
{
    struct pp_pipeline *pl = opaque;
    char key[300];
    source_key(key, sizeof(key), topic, partition);
    pp_log(PP_LOG_INFO, "msg=\"partition %s\" topic=%s partition=%d",
           assigned ? "assigned" : "revoked", topic, (int)partition);
    if (assigned) {
        pp_watermark_assign(pl->wm, key, now_ms());
    }
    else {
        pp_watermark_revoke(pl->wm, key);
        struct held *h = find_held(pl, topic, partition);
        if (h) {
            drop_held(pl, h);
        }
    }
}

static void on_schema_wait(const rd_kafka_message_t *rkm, const char *detail, void *opaque)
{
    (void)opaque;
    pp_log(PP_LOG_WARN,
           "msg=\"schema unavailable, partition held and retried\" topic=%s partition=%d "
           "offset=%lld detail=\"%s\"",
           rd_kafka_topic_name(rkm->rkt), (int)rkm->partition, (long long)rkm->offset, detail);
}

/* Connects the catalog to the Schema Registry and registers the alert schema
 * under its subject, so alerts carry a registered id. At start-up a
 * registry that answers 5xx or not at all is retried a few times (blocking:
 * nothing else runs yet); then start-up fails with the registry's error. */
static int registry_init(struct pp_pipeline *pl, const struct pp_app_conf *conf, char *errstr,
                         size_t errstr_size)
{
    struct pp_registry_conf rc = {
        .url = conf->registry_url,
        .user = conf->registry_user,
        .password = conf->registry_password,
        .ca_location = conf->registry_ca_location,
        .timeout_ms = conf->registry_timeout_ms,
    };
    pl->reg = pp_registry_new(&rc, errstr, errstr_size);
    if (pl->reg == NULL) {
        return -1;
    }
    pp_schema_catalog_set_registry(pl->cat, pl->reg);
    char subject[PP_CONF_STR_MAX + 8];
    if (conf->registry_alert_subject[0]) {
        snprintf(subject, sizeof(subject), "%s", conf->registry_alert_subject);
    }
    else {
        snprintf(subject, sizeof(subject), "%s-value", conf->topic_alerts);
    }
    char err[512] = "";
    int32_t id = -1;
    enum pp_registry_err rerr = PP_REGISTRY_UNAVAILABLE;
    for (int attempt = 0, wait_ms = 200; attempt < 6; attempt++, wait_ms *= 2) {
        rerr = pp_registry_register(pl->reg, subject, pp_schema_json(PP_SCHEMA_ALERT), &id, err,
                                    sizeof(err));
        if (rerr != PP_REGISTRY_UNAVAILABLE) {
            break;
        }
        if (attempt == 5) {
            break;
        }
        pp_log(PP_LOG_WARN,
               "msg=\"schema registry unavailable, retrying\" url=%s attempt=%d error=\"%s\"",
               pp_registry_url(pl->reg), attempt + 1, err);
        struct timespec ts = {wait_ms / 1000, (long)(wait_ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    if (rerr != PP_REGISTRY_OK) {
        snprintf(errstr, errstr_size,
                 "schema registry %s: cannot register the alert schema under subject '%s': %s",
                 pp_registry_url(pl->reg), subject, err);
        return -1;
    }
    pp_schema_catalog_set_id(pl->cat, PP_SCHEMA_ALERT, id);
    pp_log(PP_LOG_INFO, "msg=\"alert schema registered\" url=%s subject=%s id=%d",
           pp_registry_url(pl->reg), subject, (int)id);
    return 0;
}

static void on_reject(const rd_kafka_message_t *rkm, enum pp_decode_err err, const char *detail,
                      void *opaque)
{
    dead_letter(opaque, rkm, pp_decode_reason(err), detail);
}

static void on_consumer_error(rd_kafka_resp_err_t err, const char *reason, int fatal, void *opaque)
{
    struct pp_pipeline *pl = opaque;
    pp_log(fatal ? PP_LOG_ERROR : PP_LOG_WARN,
           "msg=\"consumer error\" error=%s fatal=%d "
           "detail=\"%s\"",
           rd_kafka_err2name(err), fatal, reason);
    if (fatal) {
        fail(pl);
    }
}

static void on_delivered(const struct pp_alert *alert, rd_kafka_resp_err_t err, void *opaque)
{
    struct pp_pipeline *pl = opaque;
    if (err) {
        pp_log(PP_LOG_ERROR, "msg=\"alert delivery failed\" alert_id=%s error=\"%s\"",
               alert->alert_id, rd_kafka_err2str(err));
        fail(pl);
    }
    else {
        const char *labels[] = {alert->rule_id, pp_alert_status_name(alert->status)};
        pp_metric_add(pp_metrics_series(pl->f_alerts, labels), 1);
    }
    if (pl->hooks.alert_delivered) {
        pl->hooks.alert_delivered(alert, err, pl->hooks.opaque);
    }
    if (!err && pl->listener.alert_delivered) {
        pl->listener.alert_delivered(alert, pl->listener.opaque);
    }
}

/* librdkafka statistics (statistics.interval.ms), on the loop thread: the
 * consumer queue serves them. Rebuilds the lag gauges from the partitions
 * librdkafka fetches for us; partitions whose lag is unknown (-1) are left
 * out rather than exported as a made-up number. */
static int on_stats(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
    (void)opaque;
    struct pp_pipeline *pl = NULL;
    for (size_t i = 0; i < MAX_LIVE && pl == NULL; i++) {
        if (live[i] && live[i]->consumer && pp_consumer_handle(live[i]->consumer) == rk) {
            pl = live[i];
        }
    }
    if (pl == NULL) {
        return 0;
    }
    json_error_t jerr;
    json_t *root = json_loadb(json, json_len, 0, &jerr);
    json_t *topics = json_object_get(root, "topics");
    if (!json_is_object(topics)) {
        json_decref(root);
        return 0;
    }
    pp_metrics_family_reset(pl->f_lag);
    const char *tname;
    json_t *topic;
    json_object_foreach(topics, tname, topic)
    {
        const char *pname;
        json_t *part;
        json_object_foreach(json_object_get(topic, "partitions"), pname, part)
        {
            json_t *lag = json_object_get(part, "consumer_lag");
            if (strcmp(pname, "-1") == 0 || !json_is_integer(lag) || json_integer_value(lag) < 0 ||
                !json_is_true(json_object_get(part, "desired"))) {
                continue;
            }
            const char *labels[] = {tname, pname};
            pp_metric_set(pp_metrics_series(pl->f_lag, labels), (double)json_integer_value(lag));
        }
    }
    json_decref(root);
    return 0; /* librdkafka frees json */
}

static void metrics_init(struct pp_pipeline *pl)
{
    struct pp_metrics *m = pp_metrics_new();
    pl->metrics = m;
    static const char *const type_l[] = {"type"};
    struct pp_metric_family *f = pp_metrics_family(
        m, PP_METRIC_COUNTER, "partnerpulse_events_total",
        "Decoded events processed (applied or dead-lettered as too late), by event type.", type_l,
        1, NULL, 0);
    for (int t = PP_EV_DEAL; t <= PP_EV_SUPPORT; t++) {
        const char *name = pp_event_type_name((enum pp_event_type)t);
        pl->m_events[t] = pp_metrics_series(f, &name);
    }
    f = pp_metrics_family(m, PP_METRIC_COUNTER, "partnerpulse_records_total",
                          "Input records consumed (decoded or not).", NULL, 0, NULL, 0);
    pl->m_records = pp_metrics_series(f, NULL);
    static const char *const reason_l[] = {"reason"};
    pl->f_dead = pp_metrics_family(m, PP_METRIC_COUNTER, "partnerpulse_dead_letters_total",
                                   "Records sent to the dead-letter topic, by reason.", reason_l, 1,
                                   NULL, 0);
    static const char *const alert_l[] = {"rule", "status"};
    pl->f_alerts = pp_metrics_family(
        m, PP_METRIC_COUNTER, "partnerpulse_alerts_total",
        "Alert transitions acknowledged by the broker, by rule and status.", alert_l, 2, NULL, 0);
    f = pp_metrics_family(m, PP_METRIC_GAUGE, "partnerpulse_partners_tracked",
                          "Partners with state in this instance.", NULL, 0, NULL, 0);
    pl->m_partners = pp_metrics_series(f, NULL);
    f = pp_metrics_family(m, PP_METRIC_GAUGE, "partnerpulse_state_bytes",
                          "Bytes of processor state held by this instance (the model's own "
                          "accounting; 0 for the ticket_surge engine).",
                          NULL, 0, NULL, 0);
    pl->m_state_bytes = pp_metrics_series(f, NULL);
    pl->f_watermark =
        pp_metrics_family(m, PP_METRIC_GAUGE, "partnerpulse_watermark_seconds",
                          "Event-time watermark of the processor (Unix seconds); absent before "
                          "the first event.",
                          NULL, 0, NULL, 0);
    f = pp_metrics_family(m, PP_METRIC_GAUGE, "partnerpulse_partitions_assigned",
                          "Input partitions assigned to this instance's consumer.", NULL, 0, NULL,
                          0);
    pl->m_assigned = pp_metrics_series(f, NULL);
    f = pp_metrics_family(m, PP_METRIC_COUNTER, "partnerpulse_partition_holds_total",
                          "Times an input partition was paused for running ahead in event time.",
                          NULL, 0, NULL, 0);
    pl->m_holds = pp_metrics_series(f, NULL);
    /* 1 us .. 1 s in 1-2.5-5 steps: an event usually costs microseconds, the
     * one that closes a day (and evaluates every partner) much more. */
    static const double bounds[] = {1e-6,   2.5e-6, 5e-6, 1e-5,   2.5e-5, 5e-5, 1e-4,
                                    2.5e-4, 5e-4,   1e-3, 2.5e-3, 5e-3,   1e-2, 2.5e-2,
                                    5e-2,   0.1,    0.25, 0.5,    1};
    f = pp_metrics_family(m, PP_METRIC_HISTOGRAM, "partnerpulse_event_processing_seconds",
                          "Time to apply one event to the state and evaluate the days it closes "
                          "(alert encoding and queueing included).",
                          NULL, 0, bounds, sizeof(bounds) / sizeof(bounds[0]));
    pl->m_latency = pp_metrics_series(f, NULL);
    static const char *const lag_l[] = {"topic", "partition"};
    pl->f_lag = pp_metrics_family(m, PP_METRIC_GAUGE, "partnerpulse_consumer_lag",
                                  "Records between the partition's high watermark and the group's "
                                  "committed offset (librdkafka statistics, every "
                                  "statistics.interval.ms); absent while unknown.",
                                  lag_l, 2, NULL, 0);
}

static void topo_dead_letter(const rd_kafka_message_t *rkm, const char *reason, const char *detail,
                             void *opaque)
{
    dead_letter(opaque, rkm, reason, detail);
}

static void topo_event(int type, double seconds, void *opaque)
{
    struct pp_pipeline *pl = opaque;
    pp_metric_observe(pl->m_latency, seconds);
    if ((unsigned)type < 4) {
        pp_metric_add(pl->m_events[type], 1);
    }
}

static void topo_fatal(int code, void *opaque)
{
    struct pp_pipeline *pl = opaque;
    pl->failed = code ? code : 1;
    event_base_loopexit(pl->base, NULL);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct pp_pipeline *pl = arg;
    (void)fd;
    (void)what;
    /* Idle partitions stop holding the watermark back: days close even when
     * no new event arrives. */
    int64_t now = now_ms();
    if (pl->topo == NULL) {
        advance(pl, now);
        release_held(pl, now);
    }
    /* systemd Type=notify: ready once the partitions are held (a no-op when
     * not started by systemd). */
    char why[128];
    if (pp_pipeline_ready(pl, why, sizeof(why))) {
        pp_app_notify_ready("consuming");
    }
    pp_producer_poll(pl->producer);
}

struct pp_pipeline *pp_pipeline_new(const struct pp_app_conf *conf, struct event_base *base,
                                    const struct pp_pipeline_hooks *hooks, char *errstr,
                                    size_t errstr_size)
{
    struct pp_pipeline *pl = pp_xcalloc(1, sizeof(*pl));
    pl->base = base;
    if (hooks) {
        pl->hooks = *hooks;
    }
    pl->cat = pp_schema_catalog_new(errstr, errstr_size);
    if (pl->cat == NULL) {
        goto fail;
    }
    if (conf->registry_url[0] && registry_init(pl, conf, errstr, errstr_size) != 0) {
        goto fail;
    }
    struct pp_codec_limits lim;
    pp_codec_limits_defaults(&lim);
    lim.max_message_bytes = conf->max_message_bytes;
    lim.max_string_bytes = conf->max_string_bytes;
    lim.max_items = conf->max_items;
    pl->codec = pp_codec_new(pl->cat, &lim);
    if (pl->codec == NULL) {
        snprintf(errstr, errstr_size, "the schema catalog does not match the codec tables");
        goto fail;
    }
    pl->engine = pp_engine_new(conf);
    pp_engine_set_day_cb(pl->engine, on_day, pl);
    pl->watermark_ms = INT64_MIN;
    pl->wm = pp_watermark_new(conf->idle_timeout_ms);
    metrics_init(pl);
    for (size_t i = 0; i < MAX_LIVE; i++) {
        if (live[i] == NULL) {
            live[i] = pl;
            break;
        }
    }

    rd_kafka_conf_t *pconf = pp_app_kafka_conf(conf, 0, errstr, errstr_size);
    if (pconf == NULL) {
        goto fail;
    }
    bool tasks = conf->engine == PP_ENGINE_MODEL;
    if (tasks && pp_topology_producer_conf(conf, pconf, errstr, errstr_size) != 0) {
        rd_kafka_conf_destroy(pconf);
        goto fail;
    }
    pl->producer = pp_producer_new(pconf, conf->topic_alerts, conf->topic_dlq, pl->codec,
                                   on_delivered, pl, errstr, errstr_size);
    if (pl->producer == NULL) {
        goto fail;
    }
    if (tasks) {
        struct pp_topology_env env = {
            .base = base,
            .codec = pl->codec,
            .producer = pl->producer,
            .metrics = pl->metrics,
            .alert = on_alert,
            .dead_letter = topo_dead_letter,
            .day = on_day,
            .event = topo_event,
            .stats_cb = on_stats,
            .fatal = topo_fatal,
            .opaque = pl,
        };
        pl->topo = pp_topology_new(conf, &env, errstr, errstr_size);
        if (pl->topo == NULL) {
            goto fail;
        }
        pl->consumer = pp_topology_consumer(pl->topo);
        pl->tick = event_new(base, -1, EV_PERSIST, on_tick, pl);
        struct timeval tv = {0, TICK_MS * 1000};
        event_add(pl->tick, &tv);
        return pl;
    }

    const char *topics[] = {conf->topic_deals, conf->topic_licenses, conf->topic_support};
    struct pp_consumer_conf cc = {
        .rk_conf = pp_app_kafka_conf(conf, 1, errstr, errstr_size),
        .topics = topics,
        .topics_n = 3,
        .base = base,
        .codec = pl->codec,
        .on_event = on_event,
        .on_reject = on_reject,
        .on_error = on_consumer_error,
        .on_assign = on_assign,
        .on_eof = on_eof,
        .on_schema_wait = on_schema_wait,
        .opaque = pl,
    };
    if (cc.rk_conf == NULL) {
        goto fail;
    }
    rd_kafka_conf_set_stats_cb(cc.rk_conf, on_stats);
    pl->consumer = pp_consumer_new(&cc, errstr, errstr_size);
    if (pl->consumer == NULL) {
        goto fail;
    }
    pl->tick = event_new(base, -1, EV_PERSIST, on_tick, pl);
    struct timeval tv = {0, TICK_MS * 1000};
    event_add(pl->tick, &tv);
    return pl;
fail:
    pp_pipeline_destroy(pl);
    return NULL;
}

int pp_pipeline_shutdown(struct pp_pipeline *pl, int timeout_ms)
{
    pp_app_notify_stopping();
    if (pl->tick) {
        event_del(pl->tick);
    }
    if (pl->topo) {
        int rc = pp_topology_shutdown(pl->topo, timeout_ms);
        rd_kafka_resp_err_t err = pp_producer_flush(pl->producer, timeout_ms);
        return rc == 0 && err == 0 ? 0 : -1;
    }
    pp_consumer_close(pl->consumer);
    rd_kafka_resp_err_t err = pp_producer_flush(pl->producer, timeout_ms);
    if (err) {
        pp_log(PP_LOG_ERROR, "msg=\"records not acknowledged at shutdown\" error=\"%s\"",
               rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

void pp_pipeline_destroy(struct pp_pipeline *pl)
{
    if (pl == NULL) {
        return;
    }
    if (pl->tick) {
        event_free(pl->tick);
    }
    for (size_t i = 0; i < MAX_LIVE; i++) {
        if (live[i] == pl) {
            live[i] = NULL;
        }
    }
    if (pl->topo) {
        pp_topology_destroy(pl->topo); /* owns the consumer */
    }
    else {
        pp_consumer_destroy(pl->consumer);
    }
    pp_producer_destroy(pl->producer);
    pp_engine_destroy(pl->engine);
    pp_watermark_destroy(pl->wm);
    pp_codec_destroy(pl->codec);
    pp_schema_catalog_destroy(pl->cat);
    pp_registry_destroy(pl->reg);
    pp_metrics_destroy(pl->metrics);
    free(pl);
}

int pp_pipeline_failed(const struct pp_pipeline *pl)
{
    return pl->failed;
}

void pp_pipeline_stats(const struct pp_pipeline *pl, struct pp_pipeline_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (pl->consumer) {
        const struct pp_consumer_stats *cs = pp_consumer_stats(pl->consumer);
        out->records = cs->records;
        out->events = cs->events;
        out->rejected = cs->rejected;
        out->assigned_partitions = cs->assigned_partitions;
    }
    if (pl->topo) {
        out->events = pp_topology_events(pl->topo);
    }
    out->too_late = pp_engine_too_late(pl->engine);
    out->watermark_ms = pl->topo ? pp_topology_watermark(pl->topo) : pl->watermark_ms;
    out->alerts_emitted = pl->alerts_emitted;
    out->holds = pl->holds;
    if (pl->producer) {
        const struct pp_producer_stats *ps2 = pp_producer_stats(pl->producer);
        out->alerts_delivered = ps2->alerts_delivered;
        out->dead_letters = ps2->dead_letters;
    }
}

void pp_pipeline_set_listener(struct pp_pipeline *pl, const struct pp_pipeline_listener *l)
{
    if (l) {
        pl->listener = *l;
    }
    else {
        memset(&pl->listener, 0, sizeof(pl->listener));
    }
}

struct pp_metrics *pp_pipeline_metrics(struct pp_pipeline *pl)
{
    struct pp_pipeline_stats st;
    pp_pipeline_stats(pl, &st);
    pp_metric_set(pl->m_records, (double)st.records);
    pp_metric_set(pl->m_holds, (double)st.holds);
    pp_metric_set(pl->m_assigned, (double)st.assigned_partitions);
    pp_metric_set(pl->m_partners, (double)pp_engine_partner_count(pl->engine));
    struct pp_model *model = pp_engine_model(pl->engine);
    pp_metric_set(pl->m_state_bytes, model ? (double)pp_model_stats(model)->bytes_state : 0.0);
    if (pl->topo) {
        pp_topology_refresh_metrics(pl->topo);
        pp_metric_set(pl->m_partners, (double)pp_topology_partner_count(pl->topo));
        pp_metric_set(pl->m_state_bytes, (double)pp_topology_state_bytes(pl->topo));
    }
    if (st.watermark_ms != INT64_MIN && pl->m_watermark == NULL) {
        /* Declared in metrics_init; looked up here so that no made-up value is
         * exported before the first event. */
        pl->m_watermark = pp_metrics_series(pl->f_watermark, NULL);
    }
    if (pl->m_watermark && st.watermark_ms != INT64_MIN) {
        /* An instance left without customers tasks keeps its last value. */
        pp_metric_set(pl->m_watermark, (double)st.watermark_ms / 1000.0);
    }
    return pl->metrics;
}

struct pp_engine *pp_pipeline_engine(const struct pp_pipeline *pl)
{
    return pl->engine;
}

int pp_pipeline_ready(const struct pp_pipeline *pl, char *why, size_t why_size)
{
    if (pl->failed) {
        snprintf(why, why_size, "the pipeline stopped after a fatal error");
        return 0;
    }
    if (pl->consumer == NULL || pp_consumer_stats(pl->consumer)->assigned_partitions <= 0) {
        snprintf(why, why_size, "no input partition assigned yet");
        return 0;
    }
    uint32_t restoring = pl->topo ? pp_topology_restoring(pl->topo) : pl->restoring;
    if (restoring > 0) {
        snprintf(why, why_size, "%u task(s) restoring state", restoring);
        return 0;
    }
    snprintf(why, why_size, "ok");
    return 1;
}

void pp_pipeline_set_restoring(struct pp_pipeline *pl, uint32_t partitions_restoring)
{
    pl->restoring = partitions_restoring;
}

int pp_pipeline_tasks(const struct pp_pipeline *pl)
{
    return pl->topo != NULL;
}

struct pp_pstage *pp_pipeline_pstage(const struct pp_pipeline *pl)
{
    return pl->topo ? pp_topology_pstage(pl->topo) : NULL;
}

int pp_pipeline_set_conf(struct pp_pipeline *pl, const struct pp_app_conf *conf, char *errstr,
                         size_t errstr_size)
{
    return pl->topo ? pp_topology_set_conf(pl->topo, conf, errstr, errstr_size) : 0;
}
