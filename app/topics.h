/*
 * topics.h — the runtime's internal topics (repartition, exchange,
 * changelogs): created at start-up when missing, checked when they exist.
 *
 * A partition-count mismatch is refused rather than "fixed": the customers
 * tasks are the partitions of the repartition topic and of the changelog,
 * and records are routed by partition, so a topic with a different count
 * would silently scatter a customer's state over tasks. Likewise a changelog
 * that Kafka may delete by age instead of compacting loses state.
 *
 * Blocking (admin requests and metadata, bounded by timeout_ms): call at
 * start-up, before the event loop runs.
 */
#ifndef PP_APP_TOPICS_H
#define PP_APP_TOPICS_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

struct pp_topic_spec {
    const char *name;
    int partitions; /* >= 1 */
    int compact;    /* 1: cleanup.policy=compact when created, and required when it exists */
    /* Optional: what the partition count comes from, for the mismatch message;
     * NULL = "processing.partitions". */
    const char *reason;
};

/* Creates the missing topics of specs[0..n) (one CreateTopics request;
 * replication factor `replication`, or -1 for the broker's default) and
 * checks the existing ones: the partition count must equal the spec's, and a
 * compact spec needs a cleanup.policy that includes compact. A topic created
 * concurrently by another instance (TOPIC_ALREADY_EXISTS) is checked like an
 * existing one. Returns once every topic is visible in the metadata with a
 * leader for each partition, so the caller can produce and assign at once.
 * rk is any handle (producer or consumer) and is borrowed for the call.
 * Returns 0, or -1 with errstr, e.g. "topic app-repartition has 3
 * partitions, partnerpulse needs 6 (processing.partitions)". */
int pp_topics_ensure(rd_kafka_t *rk, const struct pp_topic_spec *specs, size_t n, int replication,
                     int timeout_ms, char *errstr, size_t errstr_size);

/* Partition count of an existing topic from the cluster's metadata; 0 when
 * the topic does not exist; -1 + errstr on error. Never creates the topic
 * (a producer's per-topic metadata request would auto-create it). */
int pp_topics_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, char *errstr,
                         size_t errstr_size);

#endif
