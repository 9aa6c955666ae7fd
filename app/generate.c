/*
 * generate.c — `partnerpulse generate`: the MODEL.md §3 scenario stories
 * (processors/scenarios.h) or a synthetic benchmark load, written to an event
 * file (schemas/eventfile.h) or produced to Kafka.
 *
 * To Kafka, events are Confluent-framed Avro from the local catalog
 * (pp_codec_encode_event), one topic per event type as configured (--config)
 * or the defaults, keyed by customer id — the key the customers
 * sub-topology partitions by, so no repartition is needed. Progress goes to
 * stderr once a second; the exit status is 1 when any record was not
 * acknowledged by the broker.
 */
#include "generate.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "catalog.h"
#include "codec.h"
#include "config.h"
#include "eventfile.h"
#include "pipeline.h"
#include "ptime.h"
#include "scenarios.h"

void pp_app_generate_usage(FILE *out)
{
    fprintf(out,
            "usage: partnerpulse generate [--scenario LIST] [--deterministic | --noise --seed N]\n"
            "                             (--out FILE | --kafka BOOTSTRAP [--config FILE])\n"
            "       partnerpulse generate --load PARTNERSxCUSTOMERS [--days N] [--start DATE]\n"
            "                             [--rate N]\n"
            "                             [--seed N] (--out FILE | --kafka BOOTSTRAP)\n\n"
            "Writes scenario events (MODEL.md section 3, docs/scenarios.md) to an event file\n"
            "(JSON Lines, docs/event-files.md) or produces them to Kafka.\n\n"
            "  --scenario LIST    comma-separated: A (NorthPeak), B (Apex), C (Meridian),\n"
            "                     E (Orion), commit (Stratos, Cirrus), background (the\n"
            "                     30-customer cohort), all. Default: all.\n"
            "  --deterministic    no noise; counts from carried fractional expectations\n"
            "                     (the default)\n"
            "  --noise            Poisson/Bernoulli/normal noise from --seed\n"
            "  --seed N           noise seed (default 1)\n"
            "  --from DATE --to DATE   simulated days (default 2024-10-01 .. 2025-12-31)\n"
            "  --load PxC         synthetic load instead: P partners x C customers each, one\n"
            "                     deal per customer, a daily licence snapshot, Poisson tickets\n"
            "  --days N           load only: days to simulate (default 30)\n"
            "  --start DATE       load only: first day (default 2025-01-01)\n"
            "  --out FILE         write an event file ('-' is stdout)\n"
            "  --kafka BOOTSTRAP  produce Confluent-framed Avro to these brokers instead,\n"
            "                     keyed by customer id, to topics.deals / topics.licenses /\n"
            "                     topics.support of --config (else deals,\n"
            "                     license-consumption, support); kafka.* keys of --config\n"
            "                     apply (TLS, SASL, ...)\n"
            "  --config FILE      configuration file for topic names and kafka.* settings\n"
            "  --rate N           with --kafka: produce at most N events per second on\n"
            "                     average (default: as fast as the brokers take them)\n"
            "  --help             this text\n\n"
            "Exit status: 0 ok, 1 write or delivery failure, 2 usage error.\n");
}

struct gen {
    FILE *fp;
    /* kafka */
    rd_kafka_t *rk;
    struct pp_codec *codec;
    struct pp_app_conf conf;
    uint64_t produced, delivered, failed;
    time_t last_progress;
    double rate;    /* --rate: events per second, 0 = as fast as possible */
    double start_s; /* monotonic time of the first event */
    /* both */
    uint64_t events;
    int failed_write;
    char errstr[512];
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    struct gen *g = opaque;
    if (rkm->err) {
        if (g->failed++ == 0) {
            fprintf(stderr, "partnerpulse generate: delivery failed: %s\n",
                    rd_kafka_err2str(rkm->err));
        }
    }
    else {
        g->delivered++;
    }
}

static void progress(struct gen *g, int final)
{
    time_t now = time(NULL);
    if (!final && now == g->last_progress) {
        return;
    }
    g->last_progress = now;
    fprintf(stderr,
            "partnerpulse generate: %" PRIu64 " events produced, %" PRIu64 " acknowledged, %" PRIu64
            " failed%s\n",
            g->produced, g->delivered, g->failed, final ? " (done)" : "");
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* --rate: event n is produced no earlier than start + n/rate, so the average
 * rate holds however long a single produce call takes; delivery reports are
 * served while waiting. */
static void pace(struct gen *g)
{
    if (g->rate <= 0) {
        return;
    }
    double now = mono_s();
    if (g->produced == 0) {
        g->start_s = now;
    }
    double due = g->start_s + (double)g->produced / g->rate;
    while (now < due) {
        int ms = (int)((due - now) * 1000.0);
        rd_kafka_poll(g->rk, ms > 0 ? (ms < 100 ? ms : 100) : 0);
        now = mono_s();
        if (ms <= 0) {
            break;
        }
    }
}

static int kafka_sink(const struct pp_event *ev, void *opaque)
{
    struct gen *g = opaque;
    pace(g);
    size_t len;
    const void *buf = pp_codec_encode_event(g->codec, ev, &len, g->errstr, sizeof(g->errstr));
    if (buf == NULL) {
        return 1;
    }
    const char *topic = pp_app_conf_topic_for(&g->conf, ev->type);
    const char *key = pp_event_customer_id(ev);
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            g->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY((void *)key, strlen(key)), RD_KAFKA_V_VALUE((void *)buf, len),
            RD_KAFKA_V_TIMESTAMP(ev->occurred_at_ms), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            /* Backpressure: wait for deliveries rather than grow memory. */
            rd_kafka_poll(g->rk, 100);
            continue;
        }
        if (err) {
            snprintf(g->errstr, sizeof(g->errstr), "produce to %s: %s", topic,
                     rd_kafka_err2str(err));
            return 1;
        }
        break;
    }
    g->produced++;
    g->events++;
    rd_kafka_poll(g->rk, 0);
    progress(g, 0);
    return 0;
}

static int file_sink(const struct pp_event *ev, void *opaque)
{
    struct gen *g = opaque;
    if (pp_eventfile_write(g->fp, ev, g->errstr, sizeof(g->errstr)) != 0) {
        return 1;
    }
    g->events++;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end != '\0' || s[0] == '-') {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_load(const char *s, uint32_t *partners, uint32_t *customers)
{
    char *end;
    errno = 0;
    unsigned long p = strtoul(s, &end, 10);
    if (errno || end == s || s[0] == '-') {
        return -1;
    }
    const char *c;
    if (*end == 'x' || *end == 'X') {
        c = end + 1;
    }
    else if (strncmp(end, "\xc3\x97", 2) == 0) { /* "×" in UTF-8 */
        c = end + 2;
    }
    else {
        return -1;
    }
    unsigned long n = strtoul(c, &end, 10);
    if (errno || end == c || *end != '\0' || c[0] == '-' || p == 0 || n == 0 || p > 1000000 ||
        n > 1000000 || (unsigned long long)p * n > 100000000ULL) {
        return -1;
    }
    *partners = (uint32_t)p;
    *customers = (uint32_t)n;
    return 0;
}

int pp_app_generate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"scenario", required_argument, 0, 's'},
        {"seed", required_argument, 0, 'S'},
        {"noise", no_argument, 0, 'n'},
        {"deterministic", no_argument, 0, 'd'},
        {"out", required_argument, 0, 'o'},
        {"kafka", required_argument, 0, 'k'},
        {"config", required_argument, 0, 'c'},
        {"load", required_argument, 0, 'l'},
        {"days", required_argument, 0, 'D'},
        {"start", required_argument, 0, 'a'},
        {"from", required_argument, 0, 'f'},
        {"to", required_argument, 0, 't'},
        {"rate", required_argument, 0, 'r'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    struct pp_scen_conf sc;
    pp_scen_conf_defaults(&sc);
    struct pp_scen_load load = {0, 0, 30, 0, 1};
    pp_day_parse("2025-01-01", &load.first_day);
    const char *out = NULL, *kafka = NULL, *config = NULL;
    int is_load = 0, noise = -1;
    double rate = 0;
    char errstr[512];
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        uint64_t u;
        switch (c) {
        case 's':
            if (pp_scen_parse_stories(optarg, &sc.stories, errstr, sizeof(errstr)) != 0) {
                fprintf(stderr, "partnerpulse generate: --scenario: %s\n", errstr);
                return 2;
            }
            break;
        case 'S':
            if (parse_u64(optarg, &u) != 0) {
                fprintf(stderr, "partnerpulse generate: bad --seed '%s'\n", optarg);
                return 2;
            }
            sc.seed = load.seed = u;
            break;
        case 'n':
        case 'd':
            if (noise >= 0 && noise != (c == 'n')) {
                fprintf(stderr, "partnerpulse generate: --noise and --deterministic exclude "
                                "each other\n");
                return 2;
            }
            noise = c == 'n';
            break;
        case 'o':
            out = optarg;
            break;
        case 'k':
            kafka = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case 'l':
            if (parse_load(optarg, &load.partners, &load.customers) != 0) {
                fprintf(stderr,
                        "partnerpulse generate: bad --load '%s' (expected PARTNERSxCUSTOMERS, "
                        "e.g. 1000x10, at most 1e8 customers)\n",
                        optarg);
                return 2;
            }
            is_load = 1;
            break;
        case 'D':
            if (parse_u64(optarg, &u) != 0 || u < 1 || u > 3660) {
                fprintf(stderr, "partnerpulse generate: bad --days '%s' (1..3660)\n", optarg);
                return 2;
            }
            load.days = (int32_t)u;
            break;
        case 'a':
            if (!pp_day_parse(optarg, &load.first_day)) {
                fprintf(stderr, "partnerpulse generate: bad --start '%s' (YYYY-MM-DD)\n", optarg);
                return 2;
            }
            break;
        case 'f':
        case 't':
            if (!pp_day_parse(optarg, c == 'f' ? &sc.first_day : &sc.last_day)) {
                fprintf(stderr, "partnerpulse generate: bad --%s '%s' (YYYY-MM-DD)\n",
                        c == 'f' ? "from" : "to", optarg);
                return 2;
            }
            break;
        case 'r': {
            char *end;
            rate = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || !(rate > 0) || rate > 1e9) {
                fprintf(stderr, "partnerpulse generate: bad --rate '%s' (events per second)\n",
                        optarg);
                return 2;
            }
            break;
        }
        case 'h':
            pp_app_generate_usage(stdout);
            return 0;
        default:
            pp_app_generate_usage(stderr);
            return 2;
        }
    }
    if (optind != argc || (out == NULL) == (kafka == NULL)) {
        fprintf(stderr, "partnerpulse generate: exactly one of --out FILE and --kafka BOOTSTRAP "
                        "is required\n");
        return 2;
    }
    if (sc.last_day < sc.first_day) {
        fprintf(stderr, "partnerpulse generate: --to is before --from\n");
        return 2;
    }
    sc.noise = noise == 1;

    struct gen g;
    memset(&g, 0, sizeof(g));
    g.rate = rate;
    pp_app_conf_defaults(&g.conf);
    struct pp_schema_catalog *cat = NULL;
    int rc = 1;
    if (config && pp_app_conf_load(&g.conf, config, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "partnerpulse generate: configuration error: %s\n", errstr);
        rc = 2;
        goto out;
    }
    pp_event_sink *sink = file_sink;
    if (kafka) {
        cat = pp_schema_catalog_new(errstr, sizeof(errstr));
        struct pp_codec_limits lim;
        pp_codec_limits_defaults(&lim);
        g.codec = cat ? pp_codec_new(cat, &lim) : NULL;
        rd_kafka_conf_t *kc =
            g.codec ? pp_app_kafka_conf(&g.conf, 0, errstr, sizeof(errstr)) : NULL;
        if (kc == NULL) {
            fprintf(stderr, "partnerpulse generate: %s\n", errstr);
            rc = 2;
            goto out;
        }
        if (rd_kafka_conf_set(kc, "bootstrap.servers", kafka, errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(kc);
            fprintf(stderr, "partnerpulse generate: --kafka: %s\n", errstr);
            rc = 2;
            goto out;
        }
        rd_kafka_conf_set_dr_msg_cb(kc, dr_cb);
        rd_kafka_conf_set_opaque(kc, &g);
        g.rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr));
        if (g.rk == NULL) {
            rd_kafka_conf_destroy(kc);
            fprintf(stderr, "partnerpulse generate: %s\n", errstr);
            goto out;
        }
        sink = kafka_sink;
    }
    else if (strcmp(out, "-") == 0) {
        g.fp = stdout;
    }
    else if ((g.fp = fopen(out, "w")) == NULL) {
        fprintf(stderr, "partnerpulse generate: %s: %s\n", out, strerror(errno));
        goto out;
    }

    int grc = is_load ? pp_scen_generate_load(&load, sink, &g) : pp_scen_generate(&sc, sink, &g);
    if (grc != 0) {
        fprintf(stderr, "partnerpulse generate: %s\n", g.errstr);
        goto out;
    }
    if (g.rk) {
        /* Wait (bounded by message.timeout.ms) for every acknowledgement. */
        while (rd_kafka_outq_len(g.rk) > 0) {
            rd_kafka_poll(g.rk, 100);
            progress(&g, 0);
        }
        progress(&g, 1);
        rc = g.failed == 0 && g.delivered == g.produced ? 0 : 1;
    }
    else {
        rc = 0;
        if (fflush(g.fp) != 0 || ferror(g.fp)) {
            fprintf(stderr, "partnerpulse generate: %s: write failed: %s\n", out, strerror(errno));
            rc = 1;
        }
        fprintf(stderr, "partnerpulse generate: %" PRIu64 " events written to %s\n", g.events,
                strcmp(out, "-") == 0 ? "stdout" : out);
    }
out:
    if (g.fp && g.fp != stdout && fclose(g.fp) != 0 && rc == 0) {
        fprintf(stderr, "partnerpulse generate: %s: %s\n", out, strerror(errno));
        rc = 1;
    }
    if (g.rk) {
        rd_kafka_flush(g.rk, 10000);
        rd_kafka_destroy(g.rk);
    }
    pp_codec_destroy(g.codec);
    pp_schema_catalog_destroy(cat);
    pp_app_conf_free(&g.conf);
    return rc;
}
