/*
 * bench_restore_state.c — time to ready for real model state: N partner x
 * customer pairs (the synthetic load, about 10 customers per partner, after
 * --days days of events) restored (a) from their changelogs on a real broker
 * and (b) from local snapshots, into fresh stages, exactly as a task does it
 * on assignment (app/restore.c, app/snapshot.c, processors/model serial.c).
 *
 * The state is built by one customers stage feeding one partners stage,
 * then every key of both is written, transactionally, to two fresh
 * compacted one-partition changelog topics (what the runtime's changelogs
 * hold after compaction) and to two snapshot files. Each run restores both
 * stores into new stages and checks that a dump of the restored stages is
 * byte-identical to the original (so the figure is for a correct restore).
 *
 * Prints changelog records/s and MB/s, time to ready from the changelog and
 * from the snapshot, median of --runs with min..max. Needs a broker
 * (deploy/local/kafka.sh start):
 *   bench_restore_state [--bootstrap HOST:PORT] [--pairs N] [--days N] [--runs N] [--dir DIR]
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

#include "model.h"
#include "ptime.h"
#include "restore.h"
#include "scenarios.h"
#include "snapshot.h"
#include "stage.h"
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
    fprintf(stderr, "bench_restore_state: %s: %s\n", what, e);
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double report(const char *what, double *v, int n, const char *unit)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    printf("  %-44s median %10.3f %s  (min %.3f, max %.3f, %d runs)\n", what, v[n / 2], unit, v[0],
           v[n - 1], n);
    return v[n / 2];
}

/* ---- building the state ------------------------------------------------- */

struct build {
    struct pp_cstage *cs;
    struct pp_pstage *ps;
    int32_t day;
    uint64_t events;
};

static void to_partners(const struct pp_xrec *x, void *opaque)
{
    struct build *b = opaque;
    char e[256];
    if (pp_pstage_offer(b->ps, x, NULL, NULL, e, sizeof(e)) < 0) {
        die("offer", e);
    }
}

static int sink(const struct pp_event *ev, void *opaque)
{
    struct build *b = opaque;
    int32_t d = pp_day_from_ms(ev->occurred_at_ms);
    if (d != b->day) {
        pp_cstage_advance(b->cs, ev->occurred_at_ms, to_partners, b);
        b->day = d;
    }
    pp_cstage_apply(b->cs, ev);
    b->events++;
    return 0;
}

/* ---- key/value lists ------------------------------------------------------ */

struct kvs {
    uint8_t *buf;
    size_t len, cap;
    uint64_t n;
};

static void kv_add(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *opaque)
{
    struct kvs *l = opaque;
    size_t need = 8 + kl + vl;
    if (l->len + need > l->cap) {
        l->cap = (l->len + need) * 2;
        l->buf = realloc(l->buf, l->cap);
        if (l->buf == NULL) {
            die("memory", "out of memory");
        }
    }
    uint32_t a = (uint32_t)kl, b = (uint32_t)vl;
    memcpy(l->buf + l->len, &a, 4);
    memcpy(l->buf + l->len + 4, &b, 4);
    memcpy(l->buf + l->len + 8, k, kl);
    memcpy(l->buf + l->len + 8 + kl, v, vl);
    l->len += need;
    l->n++;
}

typedef void(kv_fn)(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *opaque);

static void kv_each(const struct kvs *l, kv_fn *fn, void *opaque)
{
    for (size_t off = 0; off < l->len;) {
        uint32_t a, b;
        memcpy(&a, l->buf + off, 4);
        memcpy(&b, l->buf + off + 4, 4);
        fn(l->buf + off + 8, a, l->buf + off + 8 + a, b, opaque);
        off += 8 + (size_t)a + b;
    }
}

/* ---- the broker side ------------------------------------------------------ */

static rd_kafka_conf_t *base_conf(const char *bootstrap)
{
    char e[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
        die("bootstrap.servers", e);
    }
    return conf;
}

struct writer {
    rd_kafka_t *rk;
    const char *topic;
    uint64_t i;
};

static void txn(rd_kafka_error_t *error, const char *what)
{
    if (error) {
        die(what, rd_kafka_error_string(error));
    }
}

static void write_one(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *opaque)
{
    struct writer *w = opaque;
    if (w->i % TXN_RECORDS == 0) {
        if (w->i > 0) {
            txn(rd_kafka_commit_transaction(w->rk, 60000), "commit");
        }
        txn(rd_kafka_begin_transaction(w->rk), "begin");
    }
    rd_kafka_resp_err_t err;
    while ((err = rd_kafka_producev(w->rk, RD_KAFKA_V_TOPIC(w->topic), RD_KAFKA_V_PARTITION(0),
                                    RD_KAFKA_V_KEY((void *)k, kl), RD_KAFKA_V_VALUE((void *)v, vl),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(w->rk, 10);
    }
    if (err) {
        die("produce", rd_kafka_err2str(err));
    }
    w->i++;
}

static void write_changelog(const char *bootstrap, const char *topic, const struct kvs *l)
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
    struct writer w = {rk, topic, 0};
    kv_each(l, write_one, &w);
    txn(rd_kafka_commit_transaction(rk, 60000), "commit");
    rd_kafka_destroy(rk);
}

struct target {
    struct pp_cstage *cs;
    struct pp_pstage *ps;
    uint64_t records, bytes;
};

static int restore_kv(const void *k, size_t kl, const void *v, size_t vl, int64_t offset,
                      void *opaque)
{
    struct target *t = opaque;
    char e[256];
    (void)offset;
    int rc = t->cs ? pp_cstage_restore_kv(t->cs, k, kl, v, vl, e, sizeof(e))
                   : pp_pstage_restore_kv(t->ps, k, kl, v, vl, e, sizeof(e));
    if (rc != 0) {
        die("restore_kv", e);
    }
    t->records++;
    t->bytes += kl + vl;
    return 0;
}

static int snap_kv(const void *k, size_t kl, const void *v, size_t vl, void *opaque)
{
    return restore_kv(k, kl, v, vl, 0, opaque);
}

static void restore_topic(const char *bootstrap, const char *topic, struct target *t)
{
    char e[512];
    rd_kafka_conf_t *conf = base_conf(bootstrap);
    int fds[2];
    if (pipe(fds) != 0) {
        die("pipe", "failed");
    }
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    struct pp_restore *r = pp_restore_new(conf, topic, 0, RD_KAFKA_OFFSET_BEGINNING, e, sizeof(e));
    rd_kafka_conf_destroy(conf);
    if (r == NULL) {
        die("pp_restore_new", e);
    }
    pp_restore_io_event_enable(r, fds[1], "1", 1);
    const int budget = 10000;
    int rc;
    for (;;) {
        uint64_t before = t->records;
        rc = pp_restore_poll(r, budget, restore_kv, t, e, sizeof(e));
        if (rc != 0) {
            break;
        }
        if (t->records - before < (uint64_t)budget) {
            struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
            poll(&pfd, 1, 100);
            char buf[64];
            while (read(fds[0], buf, sizeof(buf)) > 0) {
            }
        }
    }
    if (rc < 0) {
        die("restore", e);
    }
    pp_restore_destroy(r);
    close(fds[0]);
    close(fds[1]);
}

static void write_snapshot(const char *dir, const char *task, const struct kvs *l)
{
    char e[512];
    struct pp_snapshot_writer *w = pp_snapshot_begin(dir, task, (int64_t)l->n, e, sizeof(e));
    if (w == NULL) {
        die("snapshot", e);
    }
    for (size_t off = 0; off < l->len;) {
        uint32_t a, b;
        memcpy(&a, l->buf + off, 4);
        memcpy(&b, l->buf + off + 4, 4);
        if (pp_snapshot_put(w, l->buf + off + 8, a, l->buf + off + 8 + a, b) != 0) {
            die("snapshot", "put");
        }
        off += 8 + (size_t)a + b;
    }
    if (pp_snapshot_commit(w, e, sizeof(e)) != 0) {
        die("snapshot", e);
    }
}

static void check_same(const struct kvs *want, struct target *t, const char *what)
{
    struct kvs got = {0};
    if (t->cs) {
        pp_cstage_dump(t->cs, kv_add, &got);
    }
    else {
        pp_pstage_dump(t->ps, kv_add, &got);
    }
    if (got.len != want->len || got.n != want->n || memcmp(got.buf, want->buf, got.len) != 0) {
        fprintf(stderr,
                "bench_restore_state: %s: restored state differs (%" PRIu64 " keys, %zu bytes; "
                "want %" PRIu64 ", %zu)\n",
                what, got.n, got.len, want->n, want->len);
        exit(1);
    }
    free(got.buf);
}

int main(int argc, char **argv)
{
    const char *bootstrap = getenv("PP_BOOTSTRAP") ? getenv("PP_BOOTSTRAP") : "127.0.0.1:39092";
    uint32_t pairs = 100000;
    int32_t days = 30;
    int runs = 3;
    const char *dir = "/tmp";
    static const struct option opts[] = {{"bootstrap", required_argument, NULL, 'b'},
                                         {"pairs", required_argument, NULL, 'p'},
                                         {"days", required_argument, NULL, 'd'},
                                         {"runs", required_argument, NULL, 'r'},
                                         {"dir", required_argument, NULL, 'D'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            bootstrap = optarg;
            break;
        case 'p':
            pairs = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'd':
            days = (int32_t)strtol(optarg, NULL, 10);
            break;
        case 'r':
            runs = (int)strtol(optarg, NULL, 10);
            break;
        case 'D':
            dir = optarg;
            break;
        default:
            printf("usage: bench_restore_state [--bootstrap HOST:PORT] [--pairs N] [--days N] "
                   "[--runs N] [--dir DIR]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (runs < 1 || runs > MAX_RUNS || pairs < 10 || days < 2) {
        die("arguments", "--runs 1..32, --pairs >= 10, --days >= 2");
    }

    struct pp_model_conf conf;
    pp_model_conf_defaults(&conf);
    struct build b = {pp_cstage_new(&conf, 0, 1), pp_pstage_new(&conf, 1), INT32_MIN, 0};
    struct pp_scen_load load = {
        .partners = pairs / 10, .customers = 10, .days = days, .first_day = 0, .seed = 1};
    load.first_day = pp_day_from_civil(2025, 1, 1);
    double t0 = now_s();
    pp_scen_generate_load(&load, sink, &b);
    pp_cstage_advance(b.cs, ((int64_t)(load.first_day + days) + 2) * 86400000, to_partners, &b);
    printf("state built: %" PRIu64 " events, %u partners x %u customers, %d days, in %.1f s\n",
           b.events, load.partners, load.customers, days, now_s() - t0);

    struct kvs ck = {0}, pk = {0};
    pp_cstage_dump(b.cs, kv_add, &ck);
    pp_pstage_dump(b.ps, kv_add, &pk);
    printf("customers store: %" PRIu64 " keys, %.1f MB (%.0f B/key); partners store: %" PRIu64
           " keys, %.1f MB (%.0f B/key)\n",
           ck.n, ck.len / 1e6, (double)ck.len / (double)ck.n, pk.n, pk.len / 1e6,
           (double)pk.len / (double)(pk.n ? pk.n : 1));

    char ctopic[128], ptopic[128];
    snprintf(ctopic, sizeof(ctopic), "bench-restore-state-%ld-customers", (long)time(NULL));
    snprintf(ptopic, sizeof(ptopic), "bench-restore-state-%ld-partners", (long)time(NULL));
    t0 = now_s();
    write_changelog(bootstrap, ctopic, &ck);
    write_changelog(bootstrap, ptopic, &pk);
    printf("changelogs written in %.1f s\n", now_s() - t0);
    write_snapshot(dir, "bench-state-customers", &ck);
    write_snapshot(dir, "bench-state-partners", &pk);

    double cl_s[MAX_RUNS], cl_rate[MAX_RUNS], cl_mb[MAX_RUNS], sn_s[MAX_RUNS];
    for (int r = 0; r < runs; r++) {
        /* (a) the changelog, from the beginning, into fresh stages */
        struct target tc = {pp_cstage_new(&conf, 0, 1), NULL, 0, 0};
        struct target tp = {NULL, pp_pstage_new(&conf, 1), 0, 0};
        double a0 = now_s();
        restore_topic(bootstrap, ctopic, &tc);
        restore_topic(bootstrap, ptopic, &tp);
        cl_s[r] = now_s() - a0;
        cl_rate[r] = (double)(tc.records + tp.records) / cl_s[r];
        cl_mb[r] = (double)(tc.bytes + tp.bytes) / 1e6 / cl_s[r];
        check_same(&ck, &tc, "changelog");
        check_same(&pk, &tp, "changelog");
        pp_cstage_destroy(tc.cs);
        pp_pstage_destroy(tp.ps);

        /* (b) the snapshots */
        struct target sc = {pp_cstage_new(&conf, 0, 1), NULL, 0, 0};
        struct target sp = {NULL, pp_pstage_new(&conf, 1), 0, 0};
        char e[512];
        int64_t off;
        double b0 = now_s();
        if (pp_snapshot_load(dir, "bench-state-customers", &off, snap_kv, &sc, e, sizeof(e)) != 1 ||
            pp_snapshot_load(dir, "bench-state-partners", &off, snap_kv, &sp, e, sizeof(e)) != 1) {
            die("snapshot load", e);
        }
        sn_s[r] = now_s() - b0;
        check_same(&ck, &sc, "snapshot");
        check_same(&pk, &sp, "snapshot");
        pp_cstage_destroy(sc.cs);
        pp_pstage_destroy(sp.ps);
    }
    printf("restore of %u partner x customer pairs (%" PRIu64 " changelog records, state "
           "verified byte-identical after each restore):\n",
           pairs, ck.n + pk.n);
    report("changelog records/s", cl_rate, runs, "rec/s");
    report("changelog MB/s", cl_mb, runs, "MB/s");
    report("time to ready from the changelog", cl_s, runs, "s");
    report("time to ready from a local snapshot", sn_s, runs, "s");
    pp_snapshot_remove(dir, "bench-state-customers");
    pp_snapshot_remove(dir, "bench-state-partners");
    free(ck.buf);
    free(pk.buf);
    pp_cstage_destroy(b.cs);
    pp_pstage_destroy(b.ps);
    return 0;
}
