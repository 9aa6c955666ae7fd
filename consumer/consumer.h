/*
 * consumer.h — the Kafka consumer: group membership, rebalancing, and the
 * librdkafka queue wired into the libevent loop.
 *
 * librdkafka signals "the queue became non-empty" by writing to a pipe
 * (rd_kafka_queue_io_event_enable); the loop watches the pipe and drains the
 * queue in bounded batches, so a busy partition never starves timers or the
 * HTTP server. Each record value is decoded (schemas/) and handed to the
 * caller as a validated event, or rejected with a reason for the DLQ.
 */
#ifndef PP_CONSUMER_H
#define PP_CONSUMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <librdkafka/rdkafka.h>

#include "codec.h"
#include "event.h"

/* Both callbacks borrow rkm for the duration of the call only. The event
 * callback returns PP_CONSUMER_DONE when the record is processed (its offset
 * is then stored for the next commit) or PP_CONSUMER_HOLD after calling
 * pp_consumer_hold() (the record will be delivered again after resume). */
enum pp_consumer_verdict { PP_CONSUMER_DONE = 0, PP_CONSUMER_HOLD = 1 };
typedef enum pp_consumer_verdict(pp_consumer_event_cb)(const struct pp_event *ev,
                                                       const rd_kafka_message_t *rkm, void *opaque);
typedef void(pp_consumer_reject_cb)(const rd_kafka_message_t *rkm, enum pp_decode_err err,
                                    const char *detail, void *opaque);
/* A partition was assigned (assigned = 1) or revoked/lost (0). */
typedef void(pp_consumer_assign_cb)(const char *topic, int32_t partition, int assigned,
                                    void *opaque);
/* The partition reached its end: everything written so far has been read.
 * end_offset is the partition's end at that moment (the next offset): a
 * later, larger high watermark (pp_consumer_caught_up) means more arrived. */
typedef void(pp_consumer_eof_cb)(const char *topic, int32_t partition, int64_t end_offset,
                                 void *opaque);
/* A consumer-level error: fatal ones mean the consumer cannot go on. */
typedef void(pp_consumer_error_cb)(rd_kafka_resp_err_t err, const char *reason, int fatal,
                                   void *opaque);
/* A record's schema cannot be fetched now (registry down): its partition is
 * paused and rewound to it, and retried with backoff. For the log. */
typedef void(pp_consumer_schema_wait_cb)(const rd_kafka_message_t *rkm, const char *detail,
                                         void *opaque);

/* Sees every record before it is decoded (may be NULL). Returns
 * PP_CONSUMER_RAW_DECODE to let the consumer decode it as an input event,
 * PP_CONSUMER_DONE when the record was handled raw (internal topics), or
 * PP_CONSUMER_HOLD after pp_consumer_hold(). */
#define PP_CONSUMER_RAW_DECODE 2
typedef int(pp_consumer_raw_cb)(const rd_kafka_message_t *rkm, void *opaque);
/* The whole set of partitions of one rebalance, before they are assigned
 * (assigned = 1) or before they are given up (0): a transactional caller
 * commits its work on revoked partitions here. lost = 1 when the partitions
 * were lost (session timeout): nothing may be committed for them. */
typedef void(pp_consumer_rebalance_cb)(const rd_kafka_topic_partition_list_t *parts, int assigned,
                                       int lost, void *opaque);
/* The priority of a topic's records: 0 (the default) .. PP_CONSUMER_LEVELS
 * - 1. A record of a higher level is handed out before any of a lower one
 * that librdkafka has fetched (per partition, order is kept): a pipeline
 * that reads its own downstream topics gives them precedence, so a record
 * on the critical path does not wait behind thousands of prefetched input
 * records. */
#define PP_CONSUMER_LEVELS 3
typedef int(pp_consumer_level_cb)(const char *topic, void *opaque);
/* Called after each batch of records handed out in one loop wake-up (up to
 * 1 000): a caller that defers work per record (a batched apply) finishes
 * it here, before any other event of the loop runs. */
typedef void(pp_consumer_batch_end_cb)(void *opaque);

struct pp_consumer_conf {
    rd_kafka_conf_t *rk_conf; /* taken over by pp_consumer_new, even on failure */
    const char *const *topics;
    size_t topics_n;
    struct event_base *base;
    struct pp_codec *codec; /* borrowed */
    pp_consumer_event_cb *on_event;
    pp_consumer_reject_cb *on_reject;
    pp_consumer_error_cb *on_error;
    pp_consumer_assign_cb *on_assign;           /* may be NULL */
    pp_consumer_eof_cb *on_eof;                 /* may be NULL; needs enable.partition.eof=true */
    pp_consumer_schema_wait_cb *on_schema_wait; /* may be NULL */
    pp_consumer_raw_cb *on_raw;                 /* may be NULL */
    pp_consumer_rebalance_cb *on_rebalance;     /* may be NULL */
    pp_consumer_level_cb *level;                /* may be NULL: every topic at level 0 */
    pp_consumer_batch_end_cb *on_batch_end;     /* may be NULL */
    void *opaque;
};

struct pp_consumer_stats {
    uint64_t records;
    uint64_t events;
    uint64_t rejected;
    uint64_t rebalances;
    int32_t assigned_partitions;
    /* Rejected (dead-lettered) records by reason, indexed by enum
     * pp_decode_err (pp_decode_reason() names them). */
    uint64_t rejected_by_reason[PP_DECODE__COUNT];
    uint64_t schema_waits; /* times a partition was held for an unavailable schema */
    int32_t schema_held;   /* partitions held for a schema right now */
};

struct pp_consumer;

/* Creates the consumer and subscribes. NULL with errstr filled on error. */
struct pp_consumer *pp_consumer_new(struct pp_consumer_conf *cc, char *errstr, size_t errstr_size);

/* Pauses rkm's partition and rewinds it to rkm, so that rkm is delivered
 * again after pp_consumer_resume(). Used to keep partitions aligned in event
 * time, and by the consumer itself while a record's schema cannot be fetched
 * (resumed by its own retry timer, 250 ms doubling to 10 s): nothing is lost,
 * nothing is buffered in memory. Records of a held partition that librdkafka
 * had fetched before the pause are not handed out (they come again). */
int pp_consumer_hold(struct pp_consumer *c, const rd_kafka_message_t *rkm);
/* Resumes one held partition. */
int pp_consumer_resume(struct pp_consumer *c, const char *topic, int32_t partition);

/* Leaves the group (commits offsets per the configuration). Idempotent. */
void pp_consumer_close(struct pp_consumer *c);
void pp_consumer_destroy(struct pp_consumer *c);

/* Records (and events) fetched but not handed out yet at from_level and
 * above (0: every level): 0 when the loop has handled everything librdkafka
 * has fetched so far for those topics. */
size_t pp_consumer_queued(struct pp_consumer *c, int from_level);
/* Whether the partition is still at end_offset (from its EOF): the high
 * watermark librdkafka last learnt from a fetch response has not moved past
 * it. False when nothing is known about the partition. Never blocks. */
bool pp_consumer_caught_up(struct pp_consumer *c, const char *topic, int32_t partition,
                           int64_t end_offset);

const struct pp_consumer_stats *pp_consumer_stats(const struct pp_consumer *c);
rd_kafka_t *pp_consumer_handle(struct pp_consumer *c);

#endif
