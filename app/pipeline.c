/*
 * pipeline.c — consumer → processors → producer on one event loop.
 */
#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "codec.h"
#include "consumer.h"
#include "log.h"
#include "palloc.h"
#include "proc.h"
#include "producer.h"
#include "watermark.h"

#define TICK_MS 100
/* A partition whose next event is this far ahead of the oldest event another
 * active partition may still deliver is paused until the others catch up
 * (event-time alignment): the state's day rings hold this much skew. */
#define ALIGN_MS ((int64_t)PP_PROC_SKEW_DAYS * 86400000)
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
    struct pp_codec *codec;
    struct pp_proc *proc;
    struct pp_watermark *wm;
    struct pp_consumer *consumer;
    struct pp_producer *producer;
    struct event *tick;
    struct held held[MAX_HELD];
    size_t held_n;
    uint64_t holds;
    int failed;
    uint64_t alerts_emitted;
};

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

rd_kafka_conf_t *pp_app_kafka_conf(const struct pp_app_conf *conf, int consumer, char *errstr,
                                   size_t errstr_size)
{
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    int rc = kset(kc, "client.id", conf->application_id, errstr, errstr_size);
    if (consumer) {
        rc = rc || kset(kc, "group.id", conf->application_id, errstr, errstr_size) ||
             kset(kc, "auto.offset.reset", "earliest", errstr, errstr_size) ||
             kset(kc, "enable.auto.offset.store", "false", errstr, errstr_size) ||
             kset(kc, "partition.assignment.strategy", "cooperative-sticky", errstr, errstr_size);
    }
    else {
        rc = rc || kset(kc, "enable.idempotence", "true", errstr, errstr_size) ||
             kset(kc, "linger.ms", "5", errstr, errstr_size);
    }
    for (size_t i = 0; !rc && i < conf->kafka_n; i++) {
        char kerr[256];
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
    pp_log(PP_LOG_WARN,
           "msg=\"record dead-lettered\" reason=%s topic=%s partition=%d offset=%lld "
           "detail=\"%s\"",
           reason, dl.topic, (int)rkm->partition, (long long)rkm->offset, detail);
    if (pp_producer_send_dead_letter(pl->producer, &dl, err, sizeof(err)) != 0) {
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
        pp_log(PP_LOG_DEBUG,
               "msg=\"partition ahead in event time, paused\" topic=%s "
               "partition=%d offset=%lld",
               topic, (int)rkm->partition, (long long)rkm->offset);
        return PP_CONSUMER_HOLD;
    }
    char key[300];
    source_key(key, sizeof(key), topic, rkm->partition);
    switch (pp_proc_apply(pl->proc, ev)) {
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
    pp_proc_advance(pl->proc, pp_watermark_get(pl->wm, now), on_alert, pl);
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
    if (pl->hooks.alert_delivered) {
        pl->hooks.alert_delivered(alert, err, pl->hooks.opaque);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct pp_pipeline *pl = arg;
    (void)fd;
    (void)what;
    /* Idle partitions stop holding the watermark back: days close even when
     * no new event arrives. */
    int64_t now = now_ms();
    pp_proc_advance(pl->proc, pp_watermark_get(pl->wm, now), on_alert, pl);
    release_held(pl, now);
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
    struct pp_codec_limits lim;
    pp_codec_limits_defaults(&lim);
    lim.max_message_bytes = conf->max_message_bytes;
    pl->codec = pp_codec_new(pl->cat, &lim);
    if (pl->codec == NULL) {
        snprintf(errstr, errstr_size, "the schema catalog does not match the codec tables");
        goto fail;
    }
    pl->proc = pp_proc_new(&conf->proc);
    pl->wm = pp_watermark_new(conf->idle_timeout_ms);

    rd_kafka_conf_t *pconf = pp_app_kafka_conf(conf, 0, errstr, errstr_size);
    if (pconf == NULL) {
        goto fail;
    }
    pl->producer = pp_producer_new(pconf, conf->topic_alerts, conf->topic_dlq, pl->codec,
                                   on_delivered, pl, errstr, errstr_size);
    if (pl->producer == NULL) {
        goto fail;
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
        .opaque = pl,
    };
    if (cc.rk_conf == NULL) {
        goto fail;
    }
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
    if (pl->tick) {
        event_del(pl->tick);
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
    pp_consumer_destroy(pl->consumer);
    pp_producer_destroy(pl->producer);
    pp_proc_destroy(pl->proc);
    pp_watermark_destroy(pl->wm);
    pp_codec_destroy(pl->codec);
    pp_schema_catalog_destroy(pl->cat);
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
    }
    const struct pp_proc_stats *ps = pp_proc_stats(pl->proc);
    out->too_late = ps->too_late;
    out->watermark_ms = pp_proc_watermark(pl->proc);
    out->alerts_emitted = pl->alerts_emitted;
    out->holds = pl->holds;
    if (pl->producer) {
        const struct pp_producer_stats *ps2 = pp_producer_stats(pl->producer);
        out->alerts_delivered = ps2->alerts_delivered;
        out->dead_letters = ps2->dead_letters;
    }
}
