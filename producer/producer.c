/*
 * producer.c — alert and dead-letter producer. See producer.h.
 */
#include "producer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert_json.h"
#include "palloc.h"

/* When librdkafka's local queue is full we serve delivery reports and retry
 * for at most this long, rather than drop an alert. Sustained overload is
 * handled upstream by pausing input (the runtime issue). */
#define QUEUE_FULL_WAIT_MS 5000

struct pp_producer {
    rd_kafka_t *rk;
    char *alerts_topic;
    char *dlq_topic;
    struct pp_codec *codec;
    pp_producer_delivered_cb *on_delivered;
    void *opaque;
    struct pp_producer_stats stats;
    rd_kafka_resp_err_t last_err; /* of the last failed produce */
};

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    struct pp_producer *p = opaque;
    struct pp_alert *alert = rkm->_private;
    (void)rk;
    if (rkm->err) {
        p->stats.delivery_errors++;
    }
    if (alert == NULL) {
        return; /* a dead letter */
    }
    if (rkm->err) {
        p->stats.alerts_failed++;
    }
    else {
        p->stats.alerts_delivered++;
    }
    if (p->on_delivered) {
        p->on_delivered(alert, rkm->err, p->opaque);
    }
    free(alert);
}

struct pp_producer *pp_producer_new(rd_kafka_conf_t *conf, const char *alerts_topic,
                                    const char *dlq_topic, struct pp_codec *codec,
                                    pp_producer_delivered_cb *on_delivered, void *opaque,
                                    char *errstr, size_t errstr_size)
{
    struct pp_producer *p = pp_xcalloc(1, sizeof(*p));
    p->alerts_topic = pp_xstrdup(alerts_topic);
    p->dlq_topic = pp_xstrdup(dlq_topic);
    p->codec = codec;
    p->on_delivered = on_delivered;
    p->opaque = opaque;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_opaque(conf, p);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
    if (p->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        pp_producer_destroy(p);
        return NULL;
    }
    return p;
}

void pp_producer_destroy(struct pp_producer *p)
{
    if (p == NULL) {
        return;
    }
    if (p->rk) {
        /* Whatever was not flushed is abandoned here; serve its delivery
         * reports (without the user callback) so the alert copies are freed. */
        p->on_delivered = NULL;
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(p->rk, 1000);
        rd_kafka_destroy(p->rk);
    }
    free(p->alerts_topic);
    free(p->dlq_topic);
    free(p);
}

/* producev with a bounded wait when the local queue is full. */
static rd_kafka_resp_err_t produce_to(struct pp_producer *p, const char *topic, int32_t partition,
                                      const void *key, size_t key_len, const void *value,
                                      size_t value_len, rd_kafka_headers_t *hdrs, void *msg_opaque)
{
    rd_kafka_resp_err_t err;
    for (int waited = 0;; waited += 100) {
        err = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY((void *)key, key_len),
            RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_HEADERS(hdrs),
            RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || waited >= QUEUE_FULL_WAIT_MS) {
            break;
        }
        rd_kafka_poll(p->rk, 100);
    }
    if (err) {
        p->last_err = err;
    }
    return err;
}

static rd_kafka_resp_err_t produce(struct pp_producer *p, const char *topic, const void *key,
                                   size_t key_len, const void *value, size_t value_len,
                                   rd_kafka_headers_t *hdrs, void *msg_opaque)
{
    return produce_to(p, topic, RD_KAFKA_PARTITION_UA, key, key_len, value, value_len, hdrs,
                      msg_opaque);
}

int pp_producer_send_raw(struct pp_producer *p, const char *topic, int32_t partition,
                         const void *key, size_t key_len, const void *value, size_t value_len,
                         rd_kafka_headers_t *hdrs, char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t err =
        produce_to(p, topic, partition < 0 ? RD_KAFKA_PARTITION_UA : partition, key, key_len, value,
                   value_len, hdrs, NULL);
    if (err) {
        if (hdrs) {
            rd_kafka_headers_destroy(hdrs); /* ownership passes only on success */
        }
        snprintf(errstr, errstr_size, "produce to %s: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

bool pp_producer_txn_failed(const struct pp_producer *p)
{
    /* librdkafka refuses every produce once the current transaction is in
     * an abortable error state, until it is aborted. */
    return p->last_err == RD_KAFKA_RESP_ERR__STATE;
}

void pp_producer_clear_error(struct pp_producer *p)
{
    p->last_err = RD_KAFKA_RESP_ERR_NO_ERROR;
}

rd_kafka_t *pp_producer_handle(struct pp_producer *p)
{
    return p->rk;
}

int pp_producer_send_alert(struct pp_producer *p, const struct pp_alert *alert, char *errstr,
                           size_t errstr_size)
{
    size_t len;
    /* The full explanation (scores, signals, affected customers, runbook) as
     * MODEL.md §2.7's JSON document, in the record's details_json field. */
    char *details = NULL;
    if (pp_alert_to_json(alert, &details) != 0) {
        snprintf(errstr, errstr_size, "alert %s: cannot render details", alert->alert_id);
        return -1;
    }
    const void *buf = pp_codec_encode_alert(p->codec, alert, details, &len, errstr, errstr_size);
    free(details);
    if (buf == NULL) {
        return -1;
    }
    struct pp_alert *copy = pp_xmalloc(sizeof(*copy));
    *copy = *alert;
    rd_kafka_resp_err_t err = produce(p, p->alerts_topic, alert->partner_id,
                                      strlen(alert->partner_id), buf, len, NULL, copy);
    if (err) {
        free(copy);
        snprintf(errstr, errstr_size, "produce to %s: %s", p->alerts_topic, rd_kafka_err2str(err));
        return -1;
    }
    p->stats.alerts_sent++;
    return 0;
}

int pp_producer_send_dead_letter(struct pp_producer *p, const struct pp_dead_letter *dl,
                                 char *errstr, size_t errstr_size)
{
    char num[32];
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(6);
    rd_kafka_header_add(hdrs, "pp.reason", -1, dl->reason, -1);
    rd_kafka_header_add(hdrs, "pp.detail", -1, dl->detail ? dl->detail : "", -1);
    rd_kafka_header_add(hdrs, "pp.topic", -1, dl->topic ? dl->topic : "", -1);
    snprintf(num, sizeof(num), "%" PRId32, dl->partition);
    rd_kafka_header_add(hdrs, "pp.partition", -1, num, -1);
    snprintf(num, sizeof(num), "%" PRId64, dl->offset);
    rd_kafka_header_add(hdrs, "pp.offset", -1, num, -1);
    if (dl->has_schema_id) {
        snprintf(num, sizeof(num), "%" PRId32, dl->schema_id);
        rd_kafka_header_add(hdrs, "pp.schema_id", -1, num, -1);
    }
    rd_kafka_resp_err_t err =
        produce(p, p->dlq_topic, dl->key, dl->key_len, dl->value, dl->value_len, hdrs, NULL);
    if (err) {
        rd_kafka_headers_destroy(hdrs); /* ownership passes only on success */
        snprintf(errstr, errstr_size, "produce to %s: %s", p->dlq_topic, rd_kafka_err2str(err));
        return -1;
    }
    p->stats.dead_letters++;
    return 0;
}

void pp_producer_poll(struct pp_producer *p)
{
    rd_kafka_poll(p->rk, 0);
}

rd_kafka_resp_err_t pp_producer_flush(struct pp_producer *p, int timeout_ms)
{
    return rd_kafka_flush(p->rk, timeout_ms);
}

const struct pp_producer_stats *pp_producer_stats(const struct pp_producer *p)
{
    return &p->stats;
}
