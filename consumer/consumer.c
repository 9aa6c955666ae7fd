/*
 * consumer.c — librdkafka consumer on a libevent loop. See consumer.h.
 */
#include "consumer.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "palloc.h"

/* Records handled per loop wake-up before yielding to other events. */
#define BATCH 1000
/* Partitions held at once (event-time alignment and schema waits). */
#define MAX_HELD 1024
/* Retry of partitions waiting for a schema: doubles up to the maximum. */
#define SCHEMA_RETRY_MIN_MS 250
#define SCHEMA_RETRY_MAX_MS 10000

struct held {
    char topic[256];
    int32_t partition;
    bool for_schema; /* resumed by the consumer's retry timer */
};

struct pp_consumer {
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;
    /* The queues of levels 1.. (level 0 is the consumer queue): the fetch
     * queue of each partition of a higher-level topic is forwarded here. */
    rd_kafka_queue_t *lq[PP_CONSUMER_LEVELS];
    pp_consumer_level_cb *level;
    pp_consumer_batch_end_cb *on_batch_end;
    int pipe_fds[2];
    struct event *ev;
    struct pp_codec *codec;
    pp_consumer_event_cb *on_event;
    pp_consumer_reject_cb *on_reject;
    pp_consumer_error_cb *on_error;
    pp_consumer_assign_cb *on_assign;
    pp_consumer_eof_cb *on_eof;
    pp_consumer_schema_wait_cb *on_schema_wait;
    pp_consumer_raw_cb *on_raw;
    pp_consumer_rebalance_cb *on_rebalance;
    void *opaque;
    int closed;
    struct pp_consumer_stats stats;
    struct held held[MAX_HELD];
    size_t held_n;
    struct event *retry; /* resumes the partitions held for a schema */
    int64_t retry_ms;
};

static struct held *find_held(struct pp_consumer *c, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < c->held_n; i++) {
        if (c->held[i].partition == partition && strcmp(c->held[i].topic, topic) == 0) {
            return &c->held[i];
        }
    }
    return NULL;
}

static void drop_held(struct pp_consumer *c, struct held *h)
{
    if (h->for_schema) {
        c->stats.schema_held--;
    }
    *h = c->held[--c->held_n];
}

/* Routes each partition of a higher-level topic to its level's queue. Done
 * before the partitions are assigned: librdkafka forwards a partition's
 * fetch queue to the consumer queue when its fetcher starts, unless the
 * application set a forward of its own first (then it keeps that one), so
 * no record of the partition can reach the consumer queue. Kept across
 * revocations (the records of a revoked partition left in a level queue
 * are outdated and dropped by librdkafka when popped); set again on every
 * assignment. */
static void route_levels(struct pp_consumer *c, const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; c->level && i < parts->cnt; i++) {
        int lvl = c->level(parts->elems[i].topic, c->opaque);
        if (lvl <= 0 || lvl >= PP_CONSUMER_LEVELS) {
            continue;
        }
        rd_kafka_queue_t *pq =
            rd_kafka_queue_get_partition(c->rk, parts->elems[i].topic, parts->elems[i].partition);
        if (pq == NULL) {
            if (c->on_error) {
                c->on_error(RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION, "partition queue for priority", 0,
                            c->opaque);
            }
            continue; /* stays on the consumer queue: slower, nothing lost */
        }
        rd_kafka_queue_forward(pq, c->lq[lvl]);
        rd_kafka_queue_destroy(pq);
    }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct pp_consumer *c = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    c->stats.rebalances++;
    if (c->on_rebalance) {
        int lost = err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && rd_kafka_assignment_lost(rk);
        c->on_rebalance(parts, err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, lost, c->opaque);
    }
    for (int i = 0; err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && i < parts->cnt; i++) {
        struct held *h = find_held(c, parts->elems[i].topic, parts->elems[i].partition);
        if (h) {
            drop_held(c, h);
        }
    }
    for (int i = 0; c->on_assign && i < parts->cnt; i++) {
        c->on_assign(parts->elems[i].topic, parts->elems[i].partition,
                     err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, c->opaque);
    }
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        route_levels(c, parts);
        if (cooperative) {
            error = rd_kafka_incremental_assign(rk, parts);
        }
        else {
            aerr = rd_kafka_assign(rk, parts);
        }
        c->stats.assigned_partitions += parts->cnt;
    }
    else {
        /* librdkafka keeps a partition's pause across a revocation: given
         * back to this consumer later, it would stay paused with nobody
         * holding it (an input never read again, the watermark stuck).
         * Cleared before the unassign; not while closing (the handle goes,
         * and a resume racing the close's unassign can hold the close). */
        if (!c->closed) {
            rd_kafka_resp_err_t rerr = rd_kafka_resume_partitions(rk, parts);
            if (rerr && c->on_error) {
                c->on_error(rerr, "resume of revoked partitions", 0, c->opaque);
            }
        }
        if (cooperative) {
            error = rd_kafka_incremental_unassign(rk, parts);
        }
        else {
            aerr = rd_kafka_assign(rk, NULL);
        }
        c->stats.assigned_partitions -= parts->cnt;
        if (!cooperative || c->stats.assigned_partitions < 0) {
            c->stats.assigned_partitions = 0;
        }
    }
    if (error) {
        if (c->on_error) {
            c->on_error(rd_kafka_error_code(error), rd_kafka_error_string(error), 0, c->opaque);
        }
        rd_kafka_error_destroy(error);
    }
    else if (aerr && c->on_error) {
        c->on_error(aerr, rd_kafka_err2str(aerr), 0, c->opaque);
    }
}

/* Offsets are stored only for records that were processed or
 * dead-lettered (enable.auto.offset.store=false), so a held record is never
 * committed past. */
static void store_offset(struct pp_consumer *c, const rd_kafka_message_t *rkm)
{
    rd_kafka_resp_err_t err = rd_kafka_offset_store(rkm->rkt, rkm->partition, rkm->offset);
    if (err && c->on_error) {
        c->on_error(err, "offset store", 0, c->opaque);
    }
}

static int hold(struct pp_consumer *c, const rd_kafka_message_t *rkm, bool for_schema);

/* The registry cannot give rkm's schema now: hold the partition at rkm and
 * come back later. Dropping or dead-lettering the record would lose it. */
static void schema_wait(struct pp_consumer *c, const rd_kafka_message_t *rkm, const char *detail)
{
    if (hold(c, rkm, true) != 0) {
        /* Cannot pause: going on would commit past the record. Stop; a
         * restart resumes from the committed offsets. */
        if (c->on_error) {
            c->on_error(RD_KAFKA_RESP_ERR__FATAL, "cannot hold a partition for its schema", 1,
                        c->opaque);
        }
        return;
    }
    c->stats.schema_waits++;
    if (c->on_schema_wait) {
        c->on_schema_wait(rkm, detail, c->opaque);
    }
    if (!evtimer_pending(c->retry, NULL)) {
        struct timeval tv = {c->retry_ms / 1000, (c->retry_ms % 1000) * 1000};
        evtimer_add(c->retry, &tv);
        c->retry_ms = c->retry_ms * 2 > SCHEMA_RETRY_MAX_MS ? SCHEMA_RETRY_MAX_MS : c->retry_ms * 2;
    }
}

static int pause_or_resume(struct pp_consumer *c, const char *topic, int32_t partition,
                           int64_t seek_to);

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct pp_consumer *c = arg;
    (void)fd;
    (void)what;
    for (size_t i = 0; i < c->held_n;) {
        struct held *h = &c->held[i];
        if (h->for_schema) {
            pause_or_resume(c, h->topic, h->partition, -1);
            drop_held(c, h);
            continue;
        }
        i++;
    }
}

static void handle(struct pp_consumer *c, rd_kafka_message_t *rkm)
{
    if (rkm->err) {
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (c->on_eof) {
                c->on_eof(rd_kafka_topic_name(rkm->rkt), rkm->partition, rkm->offset, c->opaque);
            }
            return;
        }
        int fatal = rkm->err == RD_KAFKA_RESP_ERR__FATAL;
        char fatal_msg[512];
        const char *reason = rd_kafka_message_errstr(rkm);
        if (fatal) {
            rd_kafka_fatal_error(c->rk, fatal_msg, sizeof(fatal_msg));
            reason = fatal_msg;
        }
        if (c->on_error) {
            c->on_error(rkm->err, reason, fatal, c->opaque);
        }
        return;
    }
    if (c->held_n > 0 && find_held(c, rd_kafka_topic_name(rkm->rkt), rkm->partition) != NULL) {
        return; /* fetched before the pause: delivered again after resume */
    }
    if (c->on_raw) {
        int v = c->on_raw(rkm, c->opaque);
        if (v == PP_CONSUMER_DONE) {
            store_offset(c, rkm);
            return;
        }
        if (v == PP_CONSUMER_HOLD) {
            return;
        }
    }
    struct pp_event ev;
    char detail[256];
    enum pp_decode_err derr =
        pp_codec_decode_event(c->codec, rkm->payload, rkm->len, &ev, detail, sizeof(detail));
    if (derr == PP_DECODE_SCHEMA_UNAVAILABLE) {
        schema_wait(c, rkm, detail);
        return;
    }
    if (c->stats.schema_held == 0) {
        c->retry_ms = SCHEMA_RETRY_MIN_MS; /* the registry answers again */
    }
    c->stats.records++;
    if (derr != PP_DECODE_OK) {
        c->stats.rejected++;
        c->stats.rejected_by_reason[derr]++;
        c->on_reject(rkm, derr, detail, c->opaque);
        store_offset(c, rkm); /* dead-lettered: done with it */
        return;
    }
    c->stats.events++;
    if (c->on_event(&ev, rkm, c->opaque) == PP_CONSUMER_HOLD) {
        c->stats.events--;
        return;
    }
    store_offset(c, rkm);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct pp_consumer *c = arg;
    char drain[64];
    (void)what;
    while (read(fd, drain, sizeof(drain)) > 0) {
    }
    if (c->closed) {
        return;
    }
    int n = 0;
    bool polled = false, more = false;
    while (n < BATCH) {
        /* Strict priority, highest level first. The consumer queue is
         * polled at least once per batch even while the higher levels have
         * records: it also serves the rebalances. */
        bool force0 = !polled && n == BATCH - 1;
        rd_kafka_message_t *rkm = NULL;
        for (int lvl = PP_CONSUMER_LEVELS - 1; rkm == NULL && !force0 && lvl > 0; lvl--) {
            if (c->lq[lvl]) {
                rkm = rd_kafka_consume_queue(c->lq[lvl], 0);
            }
        }
        if (rkm == NULL) {
            rkm = rd_kafka_consumer_poll(c->rk, 0);
            polled = true;
            if (rkm == NULL) {
                more = force0; /* the levels may still hold records */
                break;
            }
        }
        handle(c, rkm);
        rd_kafka_message_destroy(rkm);
        n++;
    }
    if (n > 0 && c->on_batch_end) {
        c->on_batch_end(c->opaque);
    }
    if (n == BATCH || more) {
        /* More may be queued, and librdkafka only writes to the pipe when a
         * queue goes from empty to non-empty: come back after other events. */
        event_active(c->ev, EV_READ, 0);
    }
}

struct pp_consumer *pp_consumer_new(struct pp_consumer_conf *cc, char *errstr, size_t errstr_size)
{
    struct pp_consumer *c = pp_xcalloc(1, sizeof(*c));
    rd_kafka_conf_t *conf = cc->rk_conf;
    cc->rk_conf = NULL;
    c->pipe_fds[0] = c->pipe_fds[1] = -1;
    c->codec = cc->codec;
    c->on_event = cc->on_event;
    c->on_reject = cc->on_reject;
    c->on_error = cc->on_error;
    c->on_assign = cc->on_assign;
    c->on_eof = cc->on_eof;
    c->on_schema_wait = cc->on_schema_wait;
    c->on_raw = cc->on_raw;
    c->on_rebalance = cc->on_rebalance;
    c->level = cc->level;
    c->on_batch_end = cc->on_batch_end;
    c->opaque = cc->opaque;
    c->retry_ms = SCHEMA_RETRY_MIN_MS;
    c->retry = evtimer_new(cc->base, on_retry, c);

    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, c);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    if (c->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    rd_kafka_poll_set_consumer(c->rk);
    c->queue = rd_kafka_queue_get_consumer(c->rk);

    if (pipe(c->pipe_fds) != 0) {
        snprintf(errstr, errstr_size, "pipe: %s", strerror(errno));
        goto fail;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(c->pipe_fds[i], F_SETFL, fcntl(c->pipe_fds[i], F_GETFL) | O_NONBLOCK);
        fcntl(c->pipe_fds[i], F_SETFD, FD_CLOEXEC);
    }
    rd_kafka_queue_io_event_enable(c->queue, c->pipe_fds[1], "1", 1);
    for (int lvl = 1; c->level && lvl < PP_CONSUMER_LEVELS; lvl++) {
        c->lq[lvl] = rd_kafka_queue_new(c->rk);
        rd_kafka_queue_io_event_enable(c->lq[lvl], c->pipe_fds[1], "1", 1);
    }
    c->ev = event_new(cc->base, c->pipe_fds[0], EV_READ | EV_PERSIST, on_readable, c);
    if (c->ev == NULL || c->retry == NULL || event_add(c->ev, NULL) != 0) {
        snprintf(errstr, errstr_size, "cannot register the consumer with the event loop");
        goto fail;
    }

    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new((int)cc->topics_n);
    for (size_t i = 0; i < cc->topics_n; i++) {
        rd_kafka_topic_partition_list_add(subs, cc->topics[i], RD_KAFKA_PARTITION_UA);
    }
    rd_kafka_resp_err_t err = rd_kafka_subscribe(c->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (err) {
        snprintf(errstr, errstr_size, "subscribe: %s", rd_kafka_err2str(err));
        goto fail;
    }
    /* Anything queued before the pipe was attached must still be seen. */
    event_active(c->ev, EV_READ, 0);
    return c;
fail:
    pp_consumer_destroy(c);
    return NULL;
}

static int pause_or_resume(struct pp_consumer *c, const char *topic, int32_t partition,
                           int64_t seek_to)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, partition)->offset = seek_to;
    rd_kafka_resp_err_t err;
    if (seek_to >= 0) {
        err = rd_kafka_pause_partitions(c->rk, parts);
        if (!err) {
            rd_kafka_error_t *error = rd_kafka_seek_partitions(c->rk, parts, 0);
            if (error) {
                err = rd_kafka_error_code(error);
                rd_kafka_error_destroy(error);
            }
        }
    }
    else {
        err = rd_kafka_resume_partitions(c->rk, parts);
    }
    rd_kafka_topic_partition_list_destroy(parts);
    if (err && c->on_error) {
        c->on_error(err, seek_to >= 0 ? "pause" : "resume", 0, c->opaque);
    }
    return err ? -1 : 0;
}

static int hold(struct pp_consumer *c, const rd_kafka_message_t *rkm, bool for_schema)
{
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    struct held *h = find_held(c, topic, rkm->partition);
    if (h == NULL) {
        if (c->held_n >= MAX_HELD) {
            return -1;
        }
        h = &c->held[c->held_n++];
        snprintf(h->topic, sizeof(h->topic), "%s", topic);
        h->partition = rkm->partition;
        h->for_schema = false;
    }
    if (for_schema && !h->for_schema) {
        h->for_schema = true;
        c->stats.schema_held++;
    }
    if (pause_or_resume(c, topic, rkm->partition, rkm->offset) != 0) {
        drop_held(c, h);
        return -1;
    }
    return 0;
}

int pp_consumer_hold(struct pp_consumer *c, const rd_kafka_message_t *rkm)
{
    return hold(c, rkm, false);
}

int pp_consumer_resume(struct pp_consumer *c, const char *topic, int32_t partition)
{
    struct held *h = find_held(c, topic, partition);
    if (h) {
        drop_held(c, h);
    }
    return pause_or_resume(c, topic, partition, -1);
}

void pp_consumer_close(struct pp_consumer *c)
{
    if (c == NULL || c->closed || c->rk == NULL) {
        return;
    }
    c->closed = 1;
    /* librdkafka 2.0.2 asserts in the cooperative-sticky assignor when a
     * consumer that never completed a rebalance is destroyed
     * (rd_kafka_sticky_assignor_state_destroy, librdkafka#4312, fixed in
     * 2.3.0): a SIGTERM during the first join would abort the process. Wait
     * (bounded) for the first assignment; records polled meanwhile are not
     * processed and their offsets not committed, so nothing is lost. */
    for (int waited = 0; c->stats.rebalances == 0 && waited < 15000; waited += 100) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 100);
        if (m) {
            rd_kafka_message_destroy(m);
        }
    }
    /* The close serves the final rebalance through the consumer queue. */
    rd_kafka_consumer_close(c->rk);
}

void pp_consumer_destroy(struct pp_consumer *c)
{
    if (c == NULL) {
        return;
    }
    pp_consumer_close(c);
    if (c->ev) {
        event_free(c->ev);
    }
    if (c->retry) {
        event_free(c->retry);
    }
    if (c->queue) {
        rd_kafka_queue_io_event_enable(c->queue, -1, NULL, 0);
        rd_kafka_queue_destroy(c->queue);
    }
    for (int lvl = 1; lvl < PP_CONSUMER_LEVELS; lvl++) {
        if (c->lq[lvl]) { /* its records hold their partitions: purged here */
            rd_kafka_queue_io_event_enable(c->lq[lvl], -1, NULL, 0);
            rd_kafka_queue_destroy(c->lq[lvl]);
        }
    }
    if (c->rk) {
        rd_kafka_destroy(c->rk);
    }
    for (int i = 0; i < 2; i++) {
        if (c->pipe_fds[i] >= 0) {
            close(c->pipe_fds[i]);
        }
    }
    free(c);
}

const struct pp_consumer_stats *pp_consumer_stats(const struct pp_consumer *c)
{
    return &c->stats;
}

rd_kafka_t *pp_consumer_handle(struct pp_consumer *c)
{
    return c->rk;
}

size_t pp_consumer_queued(struct pp_consumer *c, int from_level)
{
    size_t n = from_level <= 0 ? rd_kafka_queue_length(c->queue) : 0;
    for (int lvl = from_level > 1 ? from_level : 1; lvl < PP_CONSUMER_LEVELS; lvl++) {
        if (c->lq[lvl]) {
            n += rd_kafka_queue_length(c->lq[lvl]);
        }
    }
    return n;
}

bool pp_consumer_caught_up(struct pp_consumer *c, const char *topic, int32_t partition,
                           int64_t end_offset)
{
    int64_t lo = -1, hi = -1;
    if (end_offset < 0 || rd_kafka_get_watermark_offsets(c->rk, topic, partition, &lo, &hi) != 0 ||
        hi < 0) {
        return false;
    }
    /* The cached high watermark is refreshed by every fetch response, on
     * librdkafka's own thread: it moves as soon as anything new is fetched,
     * even while the loop is busy and the records wait in the queue. */
    return hi <= end_offset;
}
