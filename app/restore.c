/*
 * restore.c — non-blocking changelog reader. See restore.h.
 *
 * Why the end comes from the first fetch response and not from a
 * ListOffsets request: librdkafka 2.0 has no asynchronous ListOffsets, and
 * rd_kafka_query_watermark_offsets blocks for a round trip, which the event
 * loop must not do once per task on every rebalance. The fetch response
 * carries the high watermark anyway, and rd_kafka_get_watermark_offsets
 * reads the cached value without I/O.
 *
 * Why partition EOF events: read_committed never delivers transaction
 * markers, so after the last committed record the position (last offset +
 * 1) can stay below the end forever — a partition that ends with a commit
 * marker, or with an aborted transaction. The EOF event carries the fetch
 * position, which the client has moved past those offsets.
 *
 * Why an error callback: librdkafka reports some partition problems (the
 * topic does not exist) as client error events, not as messages, and
 * without an error_cb it only logs them — the restore would wait forever.
 * The events are served inside rd_kafka_consume_batch_queue, i.e. on the
 * caller's thread during pp_restore_poll, so a thread-local pointer to the
 * restore being polled finds it without taking over the conf's opaque
 * (which belongs to the caller's callbacks).
 */
#include "restore.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "palloc.h"

#define BATCH 512

struct pp_restore;
static _Thread_local struct pp_restore *polling; /* the restore in pp_restore_poll */

struct pp_restore {
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    char *topic;
    int32_t partition;
    int64_t from;  /* as given: >= 0 or RD_KAFKA_OFFSET_BEGINNING */
    int64_t start; /* first offset of the range (from, or the log start); -1 unknown */
    int64_t end;   /* high watermark at start; -1 unknown */
    int64_t next;  /* position */
    int64_t records;
    int done;
    int reassigned; /* the one fallback to the logical beginning was done */
    char err[512];  /* sticky error */
};

static int kset(rd_kafka_conf_t *conf, const char *k, const char *v, char *errstr,
                size_t errstr_size)
{
    char e[256];
    if (rd_kafka_conf_set(conf, k, v, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, errstr_size, "restore consumer: %s: %s", k, e);
        return -1;
    }
    return 0;
}

static void fail_async(struct pp_restore *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Client error events (see the top). Broker connectivity problems are
 * retried by librdkafka: logged once each, the restore goes on; the rest
 * means this partition cannot be read. */
static void on_client_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)opaque;
    struct pp_restore *r = polling;
    switch (err) {
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
        pp_log(PP_LOG_WARN,
               "msg=\"restore consumer error (retried)\" client=%s error=\"%s\" reason=\"%s\"",
               rd_kafka_name(rk), rd_kafka_err2str((rd_kafka_resp_err_t)err), reason);
        return;
    default:
        break;
    }
    if (r == NULL) {
        return; /* not served by pp_restore_poll (destroy): nothing to fail */
    }
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char fe[256];
        rd_kafka_fatal_error(rk, fe, sizeof(fe));
        fail_async(r, "fatal client error: %s", fe);
    }
    else if (strncmp(reason, r->topic, strlen(r->topic)) == 0 && r->err[0] == '\0') {
        /* The reason names the partition already. */
        snprintf(r->err, sizeof(r->err), "restore %s", reason);
    }
    else {
        fail_async(r, "%s", reason);
    }
}

struct pp_restore *pp_restore_new(rd_kafka_conf_t *conf, const char *topic, int32_t partition,
                                  int64_t from, char *errstr, size_t errstr_size)
{
    if (from < 0 && from != RD_KAFKA_OFFSET_BEGINNING) {
        snprintf(errstr, errstr_size, "restore %s [%" PRId32 "]: bad start offset %" PRId64, topic,
                 partition, from);
        return NULL;
    }
    rd_kafka_conf_t *c = rd_kafka_conf_dup(conf);
    char group[256] = "";
    size_t gsz = sizeof(group);
    if (rd_kafka_conf_get(c, "group.id", group, &gsz) != RD_KAFKA_CONF_OK) {
        group[0] = '\0';
    }
    if (kset(c, "isolation.level", "read_committed", errstr, errstr_size) ||
        kset(c, "enable.auto.commit", "false", errstr, errstr_size) ||
        kset(c, "enable.auto.offset.store", "false", errstr, errstr_size) ||
        kset(c, "enable.partition.eof", "true", errstr, errstr_size) ||
        kset(c, "auto.offset.reset", "error", errstr, errstr_size) ||
        kset(c, "statistics.interval.ms", "0", errstr, errstr_size) ||
        /* The end of an EOS changelog is a commit marker, never delivered:
         * done-ness then needs the EOF that only the next fetch response
         * carries, which the broker holds back for fetch.wait.max.ms when
         * there is nothing to return (500 ms by default, per restore). */
        kset(c, "fetch.wait.max.ms", "10", errstr, errstr_size) ||
        /* NULL resets to the default (unset): a static member id shared with
         * the service's real consumer must not be used here. */
        kset(c, "group.instance.id", NULL, errstr, errstr_size) ||
        (group[0] == '\0' && kset(c, "group.id", "partnerpulse-restore", errstr, errstr_size))) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    rd_kafka_conf_set_error_cb(c, on_client_error);
    char e[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof(e));
    if (rk == NULL) {
        snprintf(errstr, errstr_size, "restore consumer: %s", e);
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    /* Client-level errors and logs (when log.queue is set) come through the
     * same queue as the records. */
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    /* From the beginning is asked as offset 0: a logical offset needs the
     * partition leader to be known at assign time, else librdkafka retries
     * its offset lookup on a 500 ms timer, which a fresh consumer always
     * pays. Offset 0 is the log start of a changelog unless records were
     * deleted; then the fetch fails out of range and poll assigns the
     * logical beginning (once). */
    rd_kafka_topic_partition_list_add(parts, topic, partition)->offset =
        from == RD_KAFKA_OFFSET_BEGINNING ? 0 : from;
    rd_kafka_resp_err_t err = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err) {
        snprintf(errstr, errstr_size, "restore %s [%" PRId32 "]: assign: %s", topic, partition,
                 rd_kafka_err2str(err));
        rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        return NULL;
    }
    struct pp_restore *r = pp_xcalloc(1, sizeof(*r));
    r->rk = rk;
    r->q = rd_kafka_queue_get_consumer(rk);
    r->topic = pp_xstrdup(topic);
    r->partition = partition;
    r->from = from;
    r->start = from >= 0 ? from : -1;
    r->end = -1;
    r->next = from;
    return r;
}

static int set_err(struct pp_restore *r, char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int set_err(struct pp_restore *r, char *errstr, size_t errstr_size, const char *fmt, ...)
{
    char m[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    snprintf(r->err, sizeof(r->err), "restore %s [%" PRId32 "]: %s", r->topic, r->partition, m);
    snprintf(errstr, errstr_size, "%s", r->err);
    return -1;
}

/* Records the first error of a callback; pp_restore_poll returns it. */
static void fail_async(struct pp_restore *r, const char *fmt, ...)
{
    if (r->err[0] != '\0') {
        return;
    }
    char m[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    snprintf(r->err, sizeof(r->err), "restore %s [%" PRId32 "]: %s", r->topic, r->partition, m);
}

/* Learns the end (and the log start) from the cached watermarks once the
 * first fetch response arrived; checks for done-ness. */
static int learn_end(struct pp_restore *r, char *errstr, size_t errstr_size)
{
    if (r->end < 0) {
        int64_t lo = RD_KAFKA_OFFSET_INVALID, hi = RD_KAFKA_OFFSET_INVALID;
        if (rd_kafka_get_watermark_offsets(r->rk, r->topic, r->partition, &lo, &hi) != 0 ||
            hi < 0) {
            return 0;
        }
        r->end = hi;
        if (r->from == RD_KAFKA_OFFSET_BEGINNING) {
            r->start = lo >= 0 ? lo : 0;
            if (r->next < r->start) {
                r->next = r->start;
            }
        }
        else if (r->from > r->end) {
            return set_err(r, errstr, errstr_size,
                           "start offset %" PRId64 " is beyond the end %" PRId64
                           " (a snapshot newer than its changelog: was the topic recreated?)",
                           r->from, r->end);
        }
    }
    if (r->next >= 0 && r->next >= r->end) {
        r->done = 1;
    }
    return 0;
}

/* Errors of the partition are final for the restore; client-level ones
 * (a broker down, a transport error) are retried by librdkafka, unless the
 * client says they are fatal. */
static int on_error(struct pp_restore *r, const rd_kafka_message_t *rkm, char *errstr,
                    size_t errstr_size)
{
    if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        /* rkm->offset is the fetch position, past markers and aborted data. */
        if (rkm->offset > r->next) {
            r->next = rkm->offset;
        }
        return learn_end(r, errstr, errstr_size);
    }
    if (rkm->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET && r->from == RD_KAFKA_OFFSET_BEGINNING &&
        r->records == 0 && !r->reassigned) {
        /* Offset 0 is below the log start (see pp_restore_new). */
        r->reassigned = 1;
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(parts, r->topic, r->partition)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
        /* Not a seek: after the reset error the partition no longer
         * fetches, and librdkafka refuses to seek it; assign it anew. */
        rd_kafka_resp_err_t err = rd_kafka_assign(r->rk, NULL);
        if (!err) {
            err = rd_kafka_assign(r->rk, parts);
        }
        rd_kafka_topic_partition_list_destroy(parts);
        if (err) {
            return set_err(r, errstr, errstr_size, "assign from the beginning: %s",
                           rd_kafka_err2str(err));
        }
        return 0;
    }
    char fe[256];
    if (rkm->err == RD_KAFKA_RESP_ERR__FATAL &&
        rd_kafka_fatal_error(r->rk, fe, sizeof(fe)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return set_err(r, errstr, errstr_size, "fatal client error: %s", fe);
    }
    if (rkm->rkt == NULL) {
        pp_log(PP_LOG_WARN,
               "msg=\"restore consumer error (retried)\" topic=%s partition=%" PRId32
               " error=\"%s\"",
               r->topic, r->partition, rd_kafka_message_errstr(rkm));
        return 0;
    }
    return set_err(r, errstr, errstr_size, "%s (offset %" PRId64 ")", rd_kafka_message_errstr(rkm),
                   rkm->offset);
}

int pp_restore_poll(struct pp_restore *r, int budget, pp_restore_cb *cb, void *opaque, char *errstr,
                    size_t errstr_size)
{
    if (r->err[0] != '\0') {
        snprintf(errstr, errstr_size, "%s", r->err);
        return -1;
    }
    if (r->done) {
        return 1;
    }
    if (learn_end(r, errstr, errstr_size) != 0) {
        return -1;
    }
    rd_kafka_message_t *batch[BATCH];
    int delivered = 0;
    int rc = 0;
    while (!r->done && rc == 0 && delivered < budget) {
        size_t want = (size_t)(budget - delivered) < BATCH ? (size_t)(budget - delivered) : BATCH;
        polling = r;
        ssize_t n = rd_kafka_consume_batch_queue(r->q, 0, batch, want);
        polling = NULL;
        if (r->err[0] != '\0') {
            rc = -1; /* from on_client_error */
            snprintf(errstr, errstr_size, "%s", r->err);
        }
        if (n <= 0) {
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *rkm = batch[i];
            if (rc != 0 || r->done) {
                /* after an error or the end: drop the rest of the batch */
            }
            else if (rkm->err) {
                rc = on_error(r, rkm, errstr, errstr_size);
            }
            else if (rkm->partition == r->partition && rkm->offset >= r->next) {
                if (r->end < 0) {
                    rc = learn_end(r, errstr, errstr_size);
                }
                if (rc == 0 && !r->done && rkm->offset < r->end) {
                    const void *v = rkm->payload;
                    size_t vl = v ? rkm->len : 0;
                    int stop = cb(rkm->key, rkm->key_len, v, vl, rkm->offset, opaque);
                    r->next = rkm->offset + 1;
                    r->records++;
                    delivered++;
                    if (stop != 0) {
                        rc = set_err(r, errstr, errstr_size,
                                     "record at offset %" PRId64 " refused by the caller (%d)",
                                     rkm->offset, stop);
                    }
                    else if (r->next >= r->end) {
                        r->done = 1;
                    }
                }
                else if (rc == 0 && rkm->offset >= r->end) {
                    r->done = 1; /* written after the restore started */
                }
            }
            rd_kafka_message_destroy(rkm);
        }
    }
    if (rc != 0) {
        return -1;
    }
    return r->done;
}

void pp_restore_io_event_enable(struct pp_restore *r, int fd, const void *payload, size_t size)
{
    rd_kafka_queue_io_event_enable(r->q, fd, payload, size);
}

void pp_restore_progress(const struct pp_restore *r, int64_t *done, int64_t *total)
{
    if (r->end < 0 || r->start < 0) {
        *done = 0;
        *total = 0;
        return;
    }
    *total = r->end > r->start ? r->end - r->start : 0;
    int64_t pos = r->next < r->start ? r->start : r->next;
    *done = pos - r->start;
    if (*done > *total) {
        *done = *total;
    }
}

int64_t pp_restore_records(const struct pp_restore *r)
{
    return r->records;
}

int64_t pp_restore_next_offset(const struct pp_restore *r)
{
    return r->next;
}

void pp_restore_destroy(struct pp_restore *r)
{
    if (r == NULL) {
        return;
    }
    rd_kafka_queue_destroy(r->q);
    /* Nothing to leave or commit: assign() only. */
    rd_kafka_destroy_flags(r->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    free(r->topic);
    free(r);
}
