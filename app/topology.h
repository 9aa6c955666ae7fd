/*
 * topology.h — the streaming runtime of the MODEL.md engine: the customers
 * and partners sub-topologies as Kafka tasks, exactly-once (DESIGN.md §1, §5;
 * docs/runtime.md).
 *
 * One consumer group (application_id) reads three kinds of partitions, and
 * each assigned partition is a task:
 *   - an input partition is a source task (stateless): it decodes and
 *     validates, dead-letters bad records, and forwards the original value to
 *     <app>-repartition keyed by customer id; every commit interval it sends
 *     its stream time (a watermark tick) to every repartition partition;
 *   - repartition partition i is customers task i (a pp_cstage): its
 *     watermark is the smallest tick over every input partition; closed days
 *     produce exchange records (deals, cohort partials, assessments, end of
 *     day) to <app>-exchange;
 *   - exchange partition 0 is the partners task (a pp_pstage): it evaluates
 *     day D once every customers task's end-of-day record for D arrived and
 *     writes the alert transitions.
 * Both stateful kinds write the keys that changed to compacted changelog
 * topics and restore from them (after a local snapshot when state.dir is
 * set) before their input is processed. With exactly_once every record and
 * the input offsets of a commit interval go in one transaction.
 *
 * The pipeline (pipeline.c) owns the codec, the producer, the metrics and the
 * HTTP-facing callbacks and hands them over in struct pp_topology_env.
 */
#ifndef PP_APP_TOPOLOGY_H
#define PP_APP_TOPOLOGY_H

#include <stdint.h>

#include <event2/event.h>
#include <librdkafka/rdkafka.h>

#include "alert.h"
#include "codec.h"
#include "config.h"
#include "consumer.h"
#include "metrics.h"
#include "producer.h"

struct pp_pstage;

struct pp_topology_env {
    struct event_base *base;
    struct pp_codec *codec;       /* borrowed */
    struct pp_producer *producer; /* borrowed; transactional when exactly_once */
    struct pp_metrics *metrics;   /* borrowed: the topology adds its series */
    /* An alert transition the partners task produced (already queued). */
    void (*alert)(const struct pp_alert *alert, void *opaque);
    /* A record to dead-letter (reason snake_case). */
    void (*dead_letter)(const rd_kafka_message_t *rkm, const char *reason, const char *detail,
                        void *opaque);
    /* The partners task evaluated `day`. */
    void (*day)(int32_t day, void *opaque);
    /* An event was applied (type) in `seconds`. */
    void (*event)(int type, double seconds, void *opaque);
    /* librdkafka statistics of the consumer (lag gauges); may be NULL. */
    int (*stats_cb)(rd_kafka_t *rk, char *json, size_t json_len, void *opaque);
    /* Cannot go on: the process must exit non-zero (code 3 when fenced). */
    void (*fatal)(int code, void *opaque);
    void *opaque;
};

struct pp_topology;

/* Creates the internal topics (or checks them), the consumer and its
 * subscription. conf is read during the call only. NULL + errstr. */
struct pp_topology *pp_topology_new(const struct pp_app_conf *conf,
                                    const struct pp_topology_env *env, char *errstr,
                                    size_t errstr_size);
/* Graceful stop: commit, snapshot, leave the group. 0 when all committed. */
int pp_topology_shutdown(struct pp_topology *t, int timeout_ms);
void pp_topology_destroy(struct pp_topology *t);

/* Sets what the runtime needs on the producer's configuration before the
 * producer is created: the murmur2 partitioner (Java-compatible keys) and,
 * under exactly_once, transactional.id = <app>-<group.instance.id, else
 * host-pid> and a 10 s transaction.timeout.ms unless kafka.* sets them. */
int pp_topology_producer_conf(const struct pp_app_conf *conf, rd_kafka_conf_t *pconf, char *errstr,
                              size_t errstr_size);

/* SIGHUP: new model parameters for every task (and the tasks to come). */
int pp_topology_set_conf(struct pp_topology *t, const struct pp_app_conf *conf, char *errstr,
                         size_t errstr_size);

struct pp_consumer *pp_topology_consumer(struct pp_topology *t);
/* After a refused produce: true when it was refused because the current
 * transaction is in an abortable error state (exactly_once). The
 * transaction is then aborted and every task rewound at the next commit,
 * so the record is written again; the caller must not stop. */
bool pp_topology_txn_refused(struct pp_topology *t);
void pp_topology_refresh_metrics(struct pp_topology *t);
/* Bytes of model state held by this instance's tasks (their own count). */
size_t pp_topology_state_bytes(const struct pp_topology *t);
/* Events the customers tasks processed (each input event once; the
 * consumer's own count sees it twice: on its input and on the repartition
 * topic). */
uint64_t pp_topology_events(const struct pp_topology *t);
/* Partners known to the partners task, 0 when another instance holds it. */
uint32_t pp_topology_partner_count(const struct pp_topology *t);
/* The partners task's stage when this instance holds it, else NULL (the
 * HTTP API's partner views). */
struct pp_pstage *pp_topology_pstage(const struct pp_topology *t);
/* Tasks restoring state now (readiness). */
uint32_t pp_topology_restoring(const struct pp_topology *t);
int64_t pp_topology_watermark(const struct pp_topology *t);
int32_t pp_topology_last_day(const struct pp_topology *t);

#endif
