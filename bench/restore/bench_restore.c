/*
 * bench_restore.c — how fast a task's state comes back after a restart:
 *   (a) changelog records/s through pp_restore_poll (app/restore.c) from a
 *       real broker, read_committed, from the beginning to the end;
 *   (b) pp_snapshot_load (app/snapshot.c) of the same records from a local
 *       snapshot file (plus the time to write that snapshot).
 *
 * The changelog is written first, transactionally (transactions of 10,000
 * records, as the runtime's commit intervals would), to a fresh one-
 * partition compacted topic: --records records with distinct keys
 * ("customer-00000042", like a store keyed by customer) and values of
 * --size bytes. The callbacks only sum lengths and touch the bytes; the
 * lead plugs real model state (deserialisation) in later, so these figures
 * are the I/O path's ceiling, not a restore of real state.
 *
 * Median of --runs runs, with min..max. Needs a broker (deploy/local/kafka.sh):
 *   bench_restore [--bootstrap HOST:PORT] [--records N] [--size BYTES] [--runs N] [--dir DIR]
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "restore.h"
#include "snapshot.h"
#include "topics.h"

#define TXN_RECORDS 10000
#define MAX_RUNS    32

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, const char *e)
{
    fprintf(stderr, "bench_restore: %s: %s\n", what, e);
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, int n, const char *unit)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    printf("%-34s median %12.0f %s  (min %.0f .. max %.0f, %d runs)\n", what, v[n / 2], unit, v[0],
           v[n - 1], n);
}

/* Values are slices of one pseudo-random pool, so that making them costs
 * nothing in the timed loops. */
#define POOL (1u << 20)
static unsigned char pool[POOL];

static void fill_pool(void)
{
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t j = 0; j < POOL; j++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        pool[j] = (unsigned char)x;
    }
}

static const unsigned char *value_of(uint64_t i, size_t size)
{
    return pool + (i * 4099) % (POOL - size);
}

struct sum {
    uint64_t records, bytes, touch;
};

static int on_changelog(const void *k, size_t kl, const void *v, size_t vl, int64_t offset,
                        void *opaque)
{
    (void)offset;
    struct sum *s = opaque;
    s->records++;
    s->bytes += kl + vl;
    s->touch += (kl ? ((const unsigned char *)k)[kl - 1] : 0) +
                (vl ? ((const unsigned char *)v)[vl - 1] : 0);
    return 0;
}

static int on_snapshot(const void *k, size_t kl, const void *v, size_t vl, void *opaque)
{
    return on_changelog(k, kl, v, vl, 0, opaque);
}

static rd_kafka_conf_t *base_conf(const char *bootstrap)
{
    char e[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
        die("bootstrap.servers", e);
    }
    return conf;
}

static void txn(rd_kafka_error_t *error, const char *what)
{
    if (error) {
        die(what, rd_kafka_error_string(error));
    }
}

static void write_changelog(const char *bootstrap, const char *topic, uint64_t n, size_t size)
{
    char e[512];
    rd_kafka_conf_t *conf = base_conf(bootstrap);
    char txid[300];
    snprintf(txid, sizeof(txid), "%s-writer", topic);
    if (rd_kafka_conf_set(conf, "transactional.id", txid, e, sizeof(e)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "linger.ms", "20", e, sizeof(e)) != RD_KAFKA_CONF_OK) {
        die("producer config", e);
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
    if (rk == NULL) {
        die("producer", e);
    }
    struct pp_topic_spec spec = {topic, 1, 1, "bench"};
    if (pp_topics_ensure(rk, &spec, 1, -1, 30000, e, sizeof(e)) != 0) {
        die("topic", e);
    }
    txn(rd_kafka_init_transactions(rk, 30000), "init_transactions");
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++) {
        if (i % TXN_RECORDS == 0) {
            txn(rd_kafka_begin_transaction(rk), "begin");
        }
        char k[32];
        int kl = snprintf(k, sizeof(k), "customer-%08" PRIu64, i);
        const unsigned char *v = value_of(i, size);
        rd_kafka_resp_err_t err;
        while ((err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                        RD_KAFKA_V_KEY(k, (size_t)kl),
                                        RD_KAFKA_V_VALUE((void *)v, size),
                                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                        RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(rk, 10); /* backpressure: let deliveries drain */
        }
        if (err) {
            die("produce", rd_kafka_err2str(err));
        }
        if (i % TXN_RECORDS == TXN_RECORDS - 1 || i == n - 1) {
            txn(rd_kafka_commit_transaction(rk, 60000), "commit");
        }
    }
    double t = now_s() - t0;
    rd_kafka_destroy(rk);
    printf("changelog written: %" PRIu64 " records x %zu B in %.2f s (%.0f records/s, "
           "transactions of %d)\n",
           n, size, t, (double)n / t, TXN_RECORDS);
}

/* One restore from the beginning to the end; returns seconds. */
static double restore_once(const char *bootstrap, const char *topic, uint64_t n)
{
    char e[512];
    rd_kafka_conf_t *conf = base_conf(bootstrap);
    int fds[2];
    if (pipe(fds) != 0) {
        die("pipe", "failed");
    }
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    struct sum s = {0, 0, 0};
    double t0 = now_s();
    struct pp_restore *r = pp_restore_new(conf, topic, 0, RD_KAFKA_OFFSET_BEGINNING, e, sizeof(e));
    rd_kafka_conf_destroy(conf);
    if (r == NULL) {
        die("pp_restore_new", e);
    }
    pp_restore_io_event_enable(r, fds[1], "1", 1);
    const int budget = 10000;
    int rc;
    for (;;) {
        uint64_t before = s.records;
        rc = pp_restore_poll(r, budget, on_changelog, &s, e, sizeof(e));
        if (rc != 0) {
            break;
        }
        if (s.records - before < (uint64_t)budget) {
            struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
            poll(&pfd, 1, 100);
            char buf[64];
            while (read(fds[0], buf, sizeof(buf)) > 0) {
            }
        }
    }
    double t = now_s() - t0;
    if (rc < 0) {
        die("restore", e);
    }
    if (s.records != n) {
        fprintf(stderr, "bench_restore: restored %" PRIu64 " records, wrote %" PRIu64 "\n",
                s.records, n);
        exit(1);
    }
    pp_restore_destroy(r);
    close(fds[0]);
    close(fds[1]);
    return t;
}

int main(int argc, char **argv)
{
    const char *bootstrap = getenv("PP_BOOTSTRAP") ? getenv("PP_BOOTSTRAP") : "127.0.0.1:39092";
    uint64_t n = 100000;
    size_t size = 300;
    int runs = 5;
    const char *dir = NULL;
    static const struct option opts[] = {{"bootstrap", required_argument, NULL, 'b'},
                                         {"records", required_argument, NULL, 'n'},
                                         {"size", required_argument, NULL, 's'},
                                         {"runs", required_argument, NULL, 'r'},
                                         {"dir", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            bootstrap = optarg;
            break;
        case 'n':
            n = strtoull(optarg, NULL, 10);
            break;
        case 's':
            size = strtoull(optarg, NULL, 10);
            break;
        case 'r':
            runs = (int)strtol(optarg, NULL, 10);
            break;
        case 'd':
            dir = optarg;
            break;
        default:
            fprintf(stderr,
                    "usage: %s [--bootstrap HOST:PORT] [--records N] [--size BYTES] "
                    "[--runs N] [--dir DIR]\n",
                    argv[0]);
            return c == 'h' ? 0 : 2;
        }
    }
    if (n == 0 || size == 0 || size > POOL / 2 || runs < 1 || runs > MAX_RUNS) {
        fprintf(stderr, "bench_restore: --records > 0, --size 1..%u, --runs 1..%d\n", POOL / 2,
                MAX_RUNS);
        return 2;
    }
    char tmpdir[] = "/tmp/pp-bench-restore-XXXXXX";
    if (dir == NULL) {
        if (mkdtemp(tmpdir) == NULL) {
            die("mkdtemp", "failed");
        }
        dir = tmpdir;
    }
    char topic[128];
    snprintf(topic, sizeof(topic), "pp-bench-restore-%ld-%ld", (long)getpid(), (long)time(NULL));
    printf("bench_restore: %" PRIu64 " records of %zu B (key ~17 B), broker %s, %d runs\n", n, size,
           bootstrap, runs);

    fill_pool();

    /* (a) changelog -> pp_restore_poll */
    write_changelog(bootstrap, topic, n, size);
    double rate[MAX_RUNS], mbs[MAX_RUNS];
    for (int i = 0; i < runs; i++) {
        double t = restore_once(bootstrap, topic, n);
        rate[i] = (double)n / t;
        mbs[i] = (double)n * (double)(size + 17) / t / 1e6;
    }
    report("(a) changelog restore", rate, runs, "records/s");
    report("    (payload MB/s)", mbs, runs, "MB/s     ");

    /* (b) snapshot write + pp_snapshot_load */
    char e[512];
    double wrate[MAX_RUNS], lrate[MAX_RUNS];
    for (int i = 0; i < runs; i++) {
        double t0 = now_s();
        struct pp_snapshot_writer *w = pp_snapshot_begin(dir, "bench-0", (int64_t)n, e, sizeof(e));
        if (w == NULL) {
            die("snapshot", e);
        }
        for (uint64_t j = 0; j < n; j++) {
            char k[32];
            int kl = snprintf(k, sizeof(k), "customer-%08" PRIu64, j);
            pp_snapshot_put(w, k, (size_t)kl, value_of(j, size), size);
        }
        if (pp_snapshot_commit(w, e, sizeof(e)) != 0) {
            die("snapshot commit", e);
        }
        wrate[i] = (double)n / (now_s() - t0);
    }
    for (int i = 0; i < runs; i++) {
        struct sum s = {0, 0, 0};
        int64_t off;
        double t0 = now_s();
        if (pp_snapshot_load(dir, "bench-0", &off, on_snapshot, &s, e, sizeof(e)) != 1 ||
            s.records != n) {
            die("snapshot load", e);
        }
        lrate[i] = (double)n / (now_s() - t0);
    }
    char path[600];
    snprintf(path, sizeof(path), "%s/bench-0.snap", dir);
    struct stat sb;
    stat(path, &sb);
    report("(b) snapshot load", lrate, runs, "records/s");
    report("    snapshot write (with fsync)", wrate, runs, "records/s");
    printf("    snapshot file: %.1f MB (page cache warm: the load is CPU + memory bound)\n",
           (double)sb.st_size / 1e6);
    pp_snapshot_remove(dir, "bench-0");
    if (dir == tmpdir) {
        rmdir(tmpdir);
    }
    printf("topic %s left on the broker (the local broker is wiped on stop)\n", topic);
    return 0;
}
