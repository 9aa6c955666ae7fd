/*
 * pipeline.h — the running service: consumer → decode → processors →
 * producer, wired on one libevent loop (DESIGN.md §1).
 *
 * `partnerpulse run`, the demo and the component tests all build exactly this
 * object; only where the Kafka cluster is (a real one or the mock) differs.
 */
#ifndef PP_APP_PIPELINE_H
#define PP_APP_PIPELINE_H

#include <stdint.h>

#include <event2/event.h>
#include <librdkafka/rdkafka.h>

#include "alert.h"
#include "config.h"
#include "metrics.h"
#include "proc.h"

struct pp_pipeline_hooks {
    /* An alert transition acknowledged by the broker (err == 0) or failed. */
    void (*alert_delivered)(const struct pp_alert *alert, rd_kafka_resp_err_t err, void *opaque);
    void *opaque;
};

struct pp_pipeline_stats {
    uint64_t records;
    uint64_t events;
    uint64_t rejected;
    uint64_t too_late;
    uint64_t alerts_emitted;
    uint64_t alerts_delivered;
    uint64_t dead_letters;
    int64_t watermark_ms;
    uint64_t holds; /* times a partition was paused for running ahead */
    int32_t assigned_partitions;
};

struct pp_pipeline;
struct pp_pstage;

/* conf is read during the call only; hooks may be NULL. NULL + errstr on
 * failure (bad kafka.* values, ...). */
struct pp_pipeline *pp_pipeline_new(const struct pp_app_conf *conf, struct event_base *base,
                                    const struct pp_pipeline_hooks *hooks, char *errstr,
                                    size_t errstr_size);

/* Graceful stop: leave the group, wait (bounded) for outstanding records to
 * be acknowledged. Returns 0 when everything was delivered. */
int pp_pipeline_shutdown(struct pp_pipeline *pl, int timeout_ms);
void pp_pipeline_destroy(struct pp_pipeline *pl);

/* Non-zero once a fatal error happened; the loop has been asked to exit. */
int pp_pipeline_failed(const struct pp_pipeline *pl);
void pp_pipeline_stats(const struct pp_pipeline *pl, struct pp_pipeline_stats *out);

/* Observers for the HTTP layer (app/http.c), set after construction; any
 * callback may be NULL. alert_delivered: a transition acknowledged by the
 * broker. day_evaluated: the processor closed `day` (read its per-partner
 * views through pp_pipeline_engine()). */
struct pp_pipeline_listener {
    void (*alert_delivered)(const struct pp_alert *alert, void *opaque);
    void (*day_evaluated)(int32_t day, void *opaque);
    void *opaque;
};
void pp_pipeline_set_listener(struct pp_pipeline *pl, const struct pp_pipeline_listener *l);

/* The metrics registry of this pipeline with its gauges refreshed (for
 * rendering now). Owned by the pipeline. */
struct pp_metrics *pp_pipeline_metrics(struct pp_pipeline *pl);

/* The processor, read-only, for the HTTP API's partner views. */
/* The engine the pipeline runs (views for the HTTP API). */
struct pp_engine *pp_pipeline_engine(const struct pp_pipeline *pl);

/* SIGHUP reload of the model's parameters into the running tasks (after
 * pp_engine_set_conf accepted them). 0, or -1 with errstr. */
int pp_pipeline_set_conf(struct pp_pipeline *pl, const struct pp_app_conf *conf, char *errstr,
                         size_t errstr_size);

/* 1 when the pipeline runs the model as Kafka tasks (app/topology.h). */
int pp_pipeline_tasks(const struct pp_pipeline *pl);
/* The partners task's stage when this instance holds it (else NULL). */
struct pp_pstage *pp_pipeline_pstage(const struct pp_pipeline *pl);

/* Readiness (/readyz): the consumer holds an assignment and no assigned
 * partition is restoring state. Returns 1 when ready, else 0 with the reason
 * in why. The state-restore runtime reports restoring partitions through
 * pp_pipeline_set_restoring(). */
int pp_pipeline_ready(const struct pp_pipeline *pl, char *why, size_t why_size);
void pp_pipeline_set_restoring(struct pp_pipeline *pl, uint32_t partitions_restoring);

/* Builds a librdkafka configuration: our defaults, then every kafka.* key of
 * the configuration. NULL + errstr on a bad value. */
rd_kafka_conf_t *pp_app_kafka_conf(const struct pp_app_conf *conf, int consumer, char *errstr,
                                   size_t errstr_size);

#endif
