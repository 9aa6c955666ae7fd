/*
 * test_restore.c — app/restore.c against the real broker (PP_BOOTSTRAP,
 * started by the `kafka` fixture).
 *
 * A transactional producer writes a changelog of three partitions:
 *   p0: commit(8 records, 2 tombstones), abort(4), commit(5, 1 tombstone)
 *       -> ends with a commit marker
 *   p1: nothing
 *   p2: commit(3), abort(3) -> ends with aborted records and an abort marker
 *   p3: commit(4), then the first two deleted (DeleteRecords): log start 2
 *   p4: commit(2), then a transaction left open while a restore runs: the
 *       restore reads up to the open transaction and is not done until it
 *       commits, then hands out its records too (they are below the end)
 * and the restores must hand out exactly the committed records, in order,
 * with their offsets, from the beginning and from offsets in the middle
 * (inside committed and inside aborted data), within their budget, and be
 * done at the end whatever the last offsets hold. Also: from the end (done,
 * nothing read), beyond the end (error), below the log start (error; from
 * the beginning follows the log start), a partition the topic does not
 * have (error), a callback that refuses a record.
 *
 * Waiting is on the restore's queue wake-up (a pipe), bounded by a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "restore.h"
#include "topics.h"

#define TMO     30000
#define MAX_REC 64

struct rec {
    char key[16];
    char val[16];
    int tomb;
    int32_t partition;
    int64_t offset;
    int committed;
};

static struct rec recs[MAX_REC];
static size_t nrecs;
static char topic[128];
static int64_t hwm[5];

static const char *bootstrap(void)
{
    const char *b = getenv("PP_BOOTSTRAP");
    if (b == NULL || b[0] == '\0') {
        fail_msg("PP_BOOTSTRAP is not set (the kafka fixture sets it)");
    }
    return b;
}

static rd_kafka_conf_t *base_conf(void);

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    (void)opaque;
    struct rec *r = rkm->_private;
    r->offset = rkm->err ? -1 : rkm->offset;
}

static void txn_ok(rd_kafka_error_t *error, const char *what)
{
    if (error) {
        fail_msg("%s: %s", what, rd_kafka_error_string(error));
    }
}

static void produce(rd_kafka_t *rk, int32_t partition, const char *key, const char *val,
                    int committed)
{
    assert_true(nrecs < MAX_REC);
    struct rec *r = &recs[nrecs++];
    snprintf(r->key, sizeof(r->key), "%s", key);
    r->tomb = val == NULL;
    snprintf(r->val, sizeof(r->val), "%s", val ? val : "");
    r->partition = partition;
    r->committed = committed;
    r->offset = -1;
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_KEY(r->key, strlen(r->key)),
        RD_KAFKA_V_VALUE(val ? r->val : NULL, val ? strlen(r->val) : 0),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(r), RD_KAFKA_V_END);
    assert_int_equal(err, RD_KAFKA_RESP_ERR_NO_ERROR);
}

static rd_kafka_t *txn_producer(const char *suffix)
{
    char e[512];
    rd_kafka_conf_t *conf = base_conf();
    char txid[160];
    snprintf(txid, sizeof(txid), "%s-%s", topic, suffix);
    assert_int_equal(rd_kafka_conf_set(conf, "transactional.id", txid, e, sizeof(e)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
    assert_non_null(rk);
    return rk;
}

static rd_kafka_conf_t *base_conf(void)
{
    char e[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap(), e, sizeof(e)),
                     RD_KAFKA_CONF_OK);
    return conf;
}

/* DeleteRecords: moves the log start of partition p to `before`. */
static void delete_before(rd_kafka_t *rk, int32_t p, int64_t before)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, p)->offset = before;
    rd_kafka_DeleteRecords_t *del = rd_kafka_DeleteRecords_new(parts);
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteRecords(rk, &del, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, TMO);
    assert_non_null(ev);
    if (rd_kafka_event_error(ev)) {
        fail_msg("DeleteRecords: %s", rd_kafka_event_error_string(ev));
    }
    const rd_kafka_topic_partition_list_t *res =
        rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(ev));
    assert_int_equal(res->cnt, 1);
    assert_int_equal(res->elems[0].err, RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteRecords_destroy(del);
}

static int setup(void **state)
{
    (void)state;
    char e[512];
    snprintf(topic, sizeof(topic), "pp-restore-%ld-%ld-changelog", (long)getpid(),
             (long)time(NULL));
    rd_kafka_t *rk = txn_producer("txn");

    /* cleanup.policy=delete: the reader does not depend on it, and the
     * broker refuses DeleteRecords (for p3's log start) on compacted topics. */
    struct pp_topic_spec spec = {topic, 5, 0, NULL};
    if (pp_topics_ensure(rk, &spec, 1, -1, TMO, e, sizeof(e)) != 0) {
        fail_msg("topics: %s", e);
    }
    txn_ok(rd_kafka_init_transactions(rk, TMO), "init");

    txn_ok(rd_kafka_begin_transaction(rk), "begin 1");
    for (int i = 0; i < 8; i++) {
        char k[16], v[16];
        snprintf(k, sizeof(k), "a%d", i);
        snprintf(v, sizeof(v), "va%d", i);
        produce(rk, 0, k, i == 2 || i == 5 ? NULL : v, 1);
    }
    txn_ok(rd_kafka_commit_transaction(rk, TMO), "commit 1");

    /* Flushed before the abort, so the aborted records are in the log. */
    txn_ok(rd_kafka_begin_transaction(rk), "begin 2");
    for (int i = 0; i < 4; i++) {
        char k[16];
        snprintf(k, sizeof(k), "x%d", i);
        produce(rk, 0, k, "aborted", 0);
    }
    assert_int_equal(rd_kafka_flush(rk, TMO), RD_KAFKA_RESP_ERR_NO_ERROR);
    txn_ok(rd_kafka_abort_transaction(rk, TMO), "abort 2");

    txn_ok(rd_kafka_begin_transaction(rk), "begin 3");
    for (int i = 0; i < 5; i++) {
        char k[16], v[16];
        snprintf(k, sizeof(k), "c%d", i);
        snprintf(v, sizeof(v), "vc%d", i);
        produce(rk, 0, k, i == 4 ? NULL : v, 1);
    }
    for (int i = 0; i < 3; i++) {
        char k[16], v[16];
        snprintf(k, sizeof(k), "p%d", i);
        snprintf(v, sizeof(v), "vp%d", i);
        produce(rk, 2, k, v, 1);
    }
    for (int i = 0; i < 4; i++) {
        char k[16], v[16];
        snprintf(k, sizeof(k), "d%d", i);
        snprintf(v, sizeof(v), "vd%d", i);
        produce(rk, 3, k, v, i >= 2); /* d0, d1: deleted below */
    }
    txn_ok(rd_kafka_commit_transaction(rk, TMO), "commit 3");

    txn_ok(rd_kafka_begin_transaction(rk), "begin 4");
    for (int i = 0; i < 3; i++) {
        char k[16];
        snprintf(k, sizeof(k), "q%d", i);
        produce(rk, 2, k, "aborted", 0);
    }
    assert_int_equal(rd_kafka_flush(rk, TMO), RD_KAFKA_RESP_ERR_NO_ERROR);
    txn_ok(rd_kafka_abort_transaction(rk, TMO), "abort 4");

    for (size_t i = 0; i < nrecs; i++) {
        assert_true(recs[i].offset >= 0);
    }
    delete_before(rk, 3, 2);
    for (int32_t p = 0; p < 5; p++) {
        int64_t lo, hi;
        assert_int_equal(rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, TMO),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        hwm[p] = hi;
    }
    rd_kafka_destroy(rk);
    return 0;
}

struct got {
    struct rec r[MAX_REC];
    size_t n;
    int in_call; /* callbacks in the current pp_restore_poll */
    int refuse_at;
};

static int collect(const void *k, size_t kl, const void *v, size_t vl, int64_t offset, void *opaque)
{
    struct got *g = opaque;
    g->in_call++;
    if (g->refuse_at >= 0 && (size_t)g->refuse_at == g->n) {
        return 5;
    }
    assert_true(g->n < MAX_REC);
    struct rec *r = &g->r[g->n++];
    assert_true(kl < sizeof(r->key) && vl < sizeof(r->val));
    memcpy(r->key, k, kl);
    r->key[kl] = '\0';
    r->tomb = v == NULL;
    if (v) {
        memcpy(r->val, v, vl);
    }
    r->val[vl] = '\0';
    r->offset = offset;
    return 0;
}

/* Runs a restore to its end: returns its last pp_restore_poll result. */
static int run(int32_t partition, int64_t from, int budget, struct got *g, int64_t *next, char *e,
               size_t en)
{
    rd_kafka_conf_t *conf = base_conf();
    /* As the service's kafka.* keys may carry it (static membership): the
     * restore consumer must not use it (nor need a group.id). */
    assert_int_equal(rd_kafka_conf_set(conf, "group.instance.id", "pp-test-1", e, en),
                     RD_KAFKA_CONF_OK);
    struct pp_restore *r = pp_restore_new(conf, topic, partition, from, e, en);
    rd_kafka_conf_destroy(conf);
    if (r == NULL) {
        fail_msg("pp_restore_new: %s", e);
    }
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    pp_restore_io_event_enable(r, fds[1], "1", 1);

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc;
    for (;;) {
        g->in_call = 0;
        rc = pp_restore_poll(r, budget, collect, g, e, en);
        assert_true(g->in_call <= budget);
        if (rc != 0) {
            break;
        }
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 30) {
            fail_msg("restore of partition %d from %lld not done in 30 s", (int)partition,
                     (long long)from);
        }
        if (g->in_call < budget) {
            /* Drained: wait for the queue's wake-up (bounded, in case the
             * wake-up was consumed by an earlier, partial drain). */
            struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
            poll(&pfd, 1, 200);
            char buf[64];
            while (read(fds[0], buf, sizeof(buf)) > 0) {
            }
        }
    }
    if (rc == 1) {
        int64_t done, total;
        pp_restore_progress(r, &done, &total);
        assert_true(done == total);
        assert_true(pp_restore_records(r) == (int64_t)g->n);
        /* Done is sticky. */
        assert_int_equal(pp_restore_poll(r, budget, collect, g, e, en), 1);
    }
    *next = pp_restore_next_offset(r);
    pp_restore_destroy(r);
    close(fds[0]);
    close(fds[1]);
    return rc;
}

/* The committed records of partition p at offsets >= from, in order. */
static void assert_committed(const struct got *g, int32_t p, int64_t from)
{
    size_t j = 0;
    for (size_t i = 0; i < nrecs; i++) {
        const struct rec *w = &recs[i];
        if (w->partition != p || !w->committed || w->offset < from) {
            continue;
        }
        if (j >= g->n) {
            fail_msg("partition %d from %lld: missing record %s at %lld", (int)p, (long long)from,
                     w->key, (long long)w->offset);
        }
        assert_string_equal(g->r[j].key, w->key);
        assert_int_equal(g->r[j].tomb, w->tomb);
        assert_string_equal(g->r[j].val, w->val);
        assert_true(g->r[j].offset == w->offset);
        j++;
    }
    assert_int_equal(g->n, j);
}

static int64_t offset_of(const char *key)
{
    for (size_t i = 0; i < nrecs; i++) {
        if (strcmp(recs[i].key, key) == 0) {
            return recs[i].offset;
        }
    }
    fail_msg("no record %s", key);
    return -1;
}

static void test_from_beginning(void **state)
{
    (void)state;
    char e[512];
    int64_t next;
    /* p0 ends with a commit marker: the last record is not the last offset. */
    assert_true(offset_of("c4") + 2 == hwm[0]);
    int budgets[] = {1, 3, 1000};
    for (size_t b = 0; b < 3; b++) {
        struct got g = {.refuse_at = -1};
        assert_int_equal(run(0, RD_KAFKA_OFFSET_BEGINNING, budgets[b], &g, &next, e, sizeof(e)), 1);
        assert_int_equal(g.n, 13);
        assert_committed(&g, 0, 0);
        assert_true(next == hwm[0]);
    }
}

static void test_from_middle(void **state)
{
    (void)state;
    char e[512];
    int64_t next;
    /* Inside the first transaction, at the first record after the aborted
     * one, and inside the aborted data. */
    const char *from_keys[] = {"a4", "c0", "x1", "c4"};
    size_t want[] = {4 + 5, 5, 5, 1};
    for (size_t i = 0; i < 4; i++) {
        struct got g = {.refuse_at = -1};
        int64_t from = offset_of(from_keys[i]);
        assert_int_equal(run(0, from, 2, &g, &next, e, sizeof(e)), 1);
        assert_int_equal(g.n, want[i]);
        assert_committed(&g, 0, from);
        assert_true(next == hwm[0]);
    }
}

static void test_empty_and_aborted_tail(void **state)
{
    (void)state;
    char e[512];
    int64_t next;
    struct got g = {.refuse_at = -1};
    assert_true(hwm[1] == 0);
    assert_int_equal(run(1, RD_KAFKA_OFFSET_BEGINNING, 10, &g, &next, e, sizeof(e)), 1);
    assert_int_equal(g.n, 0);
    assert_true(next == 0);
    assert_int_equal(run(1, 0, 10, &g, &next, e, sizeof(e)), 1);
    assert_int_equal(g.n, 0);

    /* p2: three committed records, then three aborted and the marker. */
    assert_true(offset_of("q2") + 2 == hwm[2]);
    assert_int_equal(run(2, RD_KAFKA_OFFSET_BEGINNING, 10, &g, &next, e, sizeof(e)), 1);
    assert_int_equal(g.n, 3);
    assert_committed(&g, 2, 0);
    assert_true(next == hwm[2]);

    /* From inside the aborted tail: nothing to read, still done. */
    struct got g2 = {.refuse_at = -1};
    assert_int_equal(run(2, offset_of("q0"), 10, &g2, &next, e, sizeof(e)), 1);
    assert_int_equal(g2.n, 0);
}

/* A log start above 0: the reader's offset-0 shortcut falls back to the
 * logical beginning. */
static void test_log_start(void **state)
{
    (void)state;
    char e[512];
    int64_t next;
    struct got g = {.refuse_at = -1};
    assert_int_equal(run(3, RD_KAFKA_OFFSET_BEGINNING, 10, &g, &next, e, sizeof(e)), 1);
    assert_int_equal(g.n, 2);
    assert_committed(&g, 3, 0);
    assert_true(next == hwm[3]);
    /* An explicit offset below the log start is an error, not a skip. */
    assert_int_equal(run(3, 0, 10, &g, &next, e, sizeof(e)), -1);
}

static void test_ends_and_errors(void **state)
{
    (void)state;
    char e[512];
    int64_t next;
    struct got g = {.refuse_at = -1};
    /* From the end (a snapshot taken after the last write): done at once. */
    assert_int_equal(run(0, hwm[0], 10, &g, &next, e, sizeof(e)), 1);
    assert_int_equal(g.n, 0);
    assert_true(next == hwm[0]);

    /* Beyond the end: the snapshot is newer than its changelog. */
    assert_int_equal(run(0, hwm[0] + 10, 10, &g, &next, e, sizeof(e)), -1);
    if (strstr(e, "beyond the end") == NULL && strstr(e, "out of range") == NULL) {
        fail_msg("unexpected error: %s", e);
    }

    /* The caller refuses the third record. */
    struct got r = {.refuse_at = 2};
    assert_int_equal(run(0, RD_KAFKA_OFFSET_BEGINNING, 10, &r, &next, e, sizeof(e)), -1);
    assert_non_null(strstr(e, "refused by the caller"));
    assert_int_equal(r.n, 2);

    /* A partition the topic does not have. */
    assert_int_equal(run(9, RD_KAFKA_OFFSET_BEGINNING, 10, &g, &next, e, sizeof(e)), -1);
    assert_non_null(strstr(e, "[9]"));

    rd_kafka_conf_t *conf = base_conf();
    assert_null(pp_restore_new(conf, topic, 0, -1 /* END */, e, sizeof(e)));
    rd_kafka_conf_destroy(conf);
}

/* Polls r (waiting on fd between drains) until pred holds; returns the last
 * pp_restore_poll result. */
static int poll_until(struct pp_restore *r, struct got *g, int fd, int64_t next_at, int until_done)
{
    char e[512];
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        g->in_call = 0;
        int rc = pp_restore_poll(r, 100, collect, g, e, sizeof(e));
        if (rc < 0) {
            fail_msg("restore: %s", e);
        }
        if (until_done ? rc == 1 : pp_restore_next_offset(r) >= next_at) {
            return rc;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 30) {
            fail_msg("restore: condition not reached in 30 s (next %lld)",
                     (long long)pp_restore_next_offset(r));
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        poll(&pfd, 1, 200);
        char buf[64];
        while (read(fd, buf, sizeof(buf)) > 0) {
        }
    }
}

static void test_open_transaction(void **state)
{
    (void)state;
    rd_kafka_t *rk = txn_producer("open");
    txn_ok(rd_kafka_init_transactions(rk, TMO), "init");
    txn_ok(rd_kafka_begin_transaction(rk), "begin");
    produce(rk, 4, "o0", "vo0", 1);
    produce(rk, 4, "o1", "vo1", 1);
    txn_ok(rd_kafka_commit_transaction(rk, TMO), "commit");
    txn_ok(rd_kafka_begin_transaction(rk), "begin open");
    produce(rk, 4, "t0", "vt0", 1);
    produce(rk, 4, "t1", NULL, 1);
    produce(rk, 4, "t2", "vt2", 1);
    assert_int_equal(rd_kafka_flush(rk, TMO), RD_KAFKA_RESP_ERR_NO_ERROR);
    int64_t lso = offset_of("t0");

    char e[512];
    rd_kafka_conf_t *conf = base_conf();
    struct pp_restore *r = pp_restore_new(conf, topic, 4, RD_KAFKA_OFFSET_BEGINNING, e, sizeof(e));
    rd_kafka_conf_destroy(conf);
    assert_non_null(r);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    pp_restore_io_event_enable(r, fds[1], "1", 1);

    /* Up to the open transaction (the EOF there moves the position). */
    struct got g = {.refuse_at = -1};
    assert_int_equal(poll_until(r, &g, fds[0], lso, 0), 0);
    assert_int_equal(g.n, 2);
    int64_t done, total;
    pp_restore_progress(r, &done, &total);
    assert_true(done == lso && total == offset_of("t2") + 1);

    /* Committed: its records are below the end, so they are restored. */
    txn_ok(rd_kafka_commit_transaction(rk, TMO), "commit open");
    assert_int_equal(poll_until(r, &g, fds[0], 0, 1), 1);
    assert_int_equal(g.n, 5);
    assert_committed(&g, 4, 0);
    assert_true(pp_restore_next_offset(r) >= offset_of("t2") + 1);

    pp_restore_destroy(r);
    close(fds[0]);
    close(fds[1]);
    rd_kafka_destroy(rk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_beginning),         cmocka_unit_test(test_from_middle),
        cmocka_unit_test(test_empty_and_aborted_tail), cmocka_unit_test(test_log_start),
        cmocka_unit_test(test_ends_and_errors),        cmocka_unit_test(test_open_transaction),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
