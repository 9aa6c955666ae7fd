/*
 * producer.h — everything that leaves the process through Kafka: alert
 * records (Avro, keyed by partner id) and dead letters (the original key and
 * value, with headers saying why and where from).
 *
 * The walking skeleton's producer is idempotent (enable.idempotence=true,
 * acks=all): at-least-once. The exactly-once transaction of DESIGN.md §5
 * replaces it in the runtime issue.
 */
#ifndef PP_PRODUCER_H
#define PP_PRODUCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "alert.h"
#include "codec.h"

/* Called from pp_producer_poll() for every alert once the broker has
 * acknowledged it (err == 0) or it has definitely failed. */
typedef void(pp_producer_delivered_cb)(const struct pp_alert *alert, rd_kafka_resp_err_t err,
                                       void *opaque);

struct pp_dead_letter {
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    const char *reason; /* snake_case, e.g. "bad_magic", "too_late" */
    const char *detail;
    const char *topic; /* where the record came from */
    int32_t partition;
    int64_t offset;
    int has_schema_id; /* the value had a wire header: pp.schema_id is written */
    int32_t schema_id;
};

struct pp_producer_stats {
    uint64_t alerts_sent;
    uint64_t alerts_delivered;
    uint64_t alerts_failed;
    uint64_t dead_letters;
    uint64_t delivery_errors;
};

struct pp_producer;

/* rk_conf is taken over, even on failure. codec is borrowed. */
struct pp_producer *pp_producer_new(rd_kafka_conf_t *rk_conf, const char *alerts_topic,
                                    const char *dlq_topic, struct pp_codec *codec,
                                    pp_producer_delivered_cb *on_delivered, void *opaque,
                                    char *errstr, size_t errstr_size);
void pp_producer_destroy(struct pp_producer *p);

/* Queue an alert / a dead letter. Returns 0, or -1 with errstr filled. */
int pp_producer_send_alert(struct pp_producer *p, const struct pp_alert *alert, char *errstr,
                           size_t errstr_size);
int pp_producer_send_dead_letter(struct pp_producer *p, const struct pp_dead_letter *dl,
                                 char *errstr, size_t errstr_size);

/* Queues a record as it is (internal topics: repartition, exchange,
 * changelogs). partition -1 = the partitioner's choice (murmur2 of the key,
 * like Java clients); hdrs (may be NULL) is taken over. value NULL with
 * value_len 0 is a tombstone. Returns 0, or -1 with errstr filled. */
int pp_producer_send_raw(struct pp_producer *p, const char *topic, int32_t partition,
                         const void *key, size_t key_len, const void *value, size_t value_len,
                         rd_kafka_headers_t *hdrs, char *errstr, size_t errstr_size);

/* Whether the last failed produce was refused because the current
 * transaction is in an abortable error state (the runtime aborts it and
 * rewinds instead of stopping); pp_producer_clear_error after the abort. */
bool pp_producer_txn_failed(const struct pp_producer *p);
void pp_producer_clear_error(struct pp_producer *p);

/* The librdkafka handle (transactions are driven by the runtime). */
rd_kafka_t *pp_producer_handle(struct pp_producer *p);

/* Serves delivery reports; never blocks. */
void pp_producer_poll(struct pp_producer *p);
/* Waits up to timeout_ms for everything queued to be acknowledged. */
rd_kafka_resp_err_t pp_producer_flush(struct pp_producer *p, int timeout_ms);

const struct pp_producer_stats *pp_producer_stats(const struct pp_producer *p);

#endif
