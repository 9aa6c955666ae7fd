/* Shared by the component tests: librdkafka's in-process mock cluster
 * (rdkafka_mock.h) and reading a topic of it back. Header-only; include it
 * after <cmocka.h> (it asserts with cmocka). */
#ifndef PP_TEST_MOCK_KAFKA_H
#define PP_TEST_MOCK_KAFKA_H

#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* A one-broker mock cluster; *owner is the handle that owns it: destroy the
 * cluster, then the owner. */
static inline rd_kafka_mock_cluster_t *mock_cluster_new(rd_kafka_t **owner)
{
    char err[512];
    rd_kafka_conf_t *oc = rd_kafka_conf_new();
    rd_kafka_conf_set(oc, "log_level", "3", NULL, 0);
    *owner = rd_kafka_new(RD_KAFKA_PRODUCER, oc, err, sizeof(err));
    assert_non_null(*owner);
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(*owner, 1);
    assert_non_null(mc);
    return mc;
}

/* Record i of a topic read back (mock_read_topic). */
typedef void(mock_visit_fn)(const rd_kafka_message_t *m, int i, void *arg);

/* Reads `topic` (its partitions 0..partitions-1) from the start to its end,
 * which every partition must reach within 20 s, calling visit for each of
 * the first `max` records; returns how many it visited. A message does not
 * outlive the call. */
static inline int mock_read_topic(rd_kafka_mock_cluster_t *mc, const char *topic, int partitions,
                                  mock_visit_fn *visit, void *arg, int max)
{
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mc), NULL, 0);
    rd_kafka_conf_set(c, "group.id", "component-reader", NULL, 0);
    rd_kafka_conf_set(c, "enable.partition.eof", "true", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++) {
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    assert_int_equal(rd_kafka_assign(rk, parts), 0);
    rd_kafka_topic_partition_list_destroy(parts);
    int n = 0, eofs = 0;
    time_t deadline = time(NULL) + 20;
    while (eofs < partitions && time(NULL) < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL) {
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        }
        else if (!m->err && n < max) {
            visit(m, n++, arg);
        }
        rd_kafka_message_destroy(m);
    }
    assert_int_equal(eofs, partitions);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

#endif
