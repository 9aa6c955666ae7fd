/*
 * demo.c — `partnerpulse demo`: the whole pipeline against librdkafka's
 * in-process mock cluster, fed by the scenario generator, one simulated day
 * at a time, printing alert transitions as the broker acknowledges them.
 * Nothing needs installing or running beside it.
 */
#include "demo.h"

#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "catalog.h"
#include "codec.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "palloc.h"
#include "pipeline.h"
#include "ptime.h"
#include "engine.h"
#include "scenario.h"
#include "scenarios.h"
#include "watchdog.h"

struct demo {
    struct event_base *base;
    struct pp_event *events;
    size_t n, cap, next;
    rd_kafka_t *feeder;
    struct pp_codec *codec;
    struct pp_app_conf conf;
    struct event *feed_ev;
    uint64_t printed;
    int quiet;
};

static int collect(const struct pp_event *ev, void *opaque)
{
    struct demo *d = opaque;
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 1024;
        d->events = pp_xrealloc(d->events, d->cap * sizeof(*d->events));
    }
    d->events[d->n++] = *ev;
    return 0;
}

/* Produces the next simulated day's events. */
static void on_feed(evutil_socket_t fd, short what, void *arg)
{
    struct demo *d = arg;
    (void)fd;
    (void)what;
    if (d->next >= d->n) {
        event_del(d->feed_ev);
        if (!d->quiet) {
            printf("-- all %zu events produced; Ctrl-C to stop --\n", d->n);
            fflush(stdout);
        }
        return;
    }
    int32_t day = pp_day_from_ms(d->events[d->next].occurred_at_ms);
    while (d->next < d->n && pp_day_from_ms(d->events[d->next].occurred_at_ms) == day) {
        const struct pp_event *ev = &d->events[d->next++];
        char err[256];
        size_t len;
        const void *buf = pp_codec_encode_event(d->codec, ev, &len, err, sizeof(err));
        if (buf == NULL) {
            pp_log(PP_LOG_ERROR, "msg=\"demo cannot encode event\" error=\"%s\"", err);
            continue;
        }
        const char *key = pp_event_customer_id(ev);
        rd_kafka_producev(d->feeder, RD_KAFKA_V_TOPIC(pp_app_conf_topic_for(&d->conf, ev->type)),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_KEY((void *)key, strlen(key)),
                          RD_KAFKA_V_VALUE((void *)buf, len), RD_KAFKA_V_END);
    }
    rd_kafka_poll(d->feeder, 0);
}

static void print_alert(const struct pp_alert *a, rd_kafka_resp_err_t err, void *opaque)
{
    struct demo *d = opaque;
    if (err) {
        return;
    }
    char day[11];
    pp_day_format(a->eval_day, day, sizeof(day));
    d->printed++;
    printf("[%s] %-8s %-8s %-17s %-11s %-7s %s\n", day, pp_alert_status_name(a->status),
           pp_severity_name(a->severity), a->rule_id, a->partner_id,
           a->customer_id[0] ? a->customer_id : "*", a->summary);
    fflush(stdout);
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopexit(arg, NULL);
}

/* The host part of HOST:PORT for the printed URL ("[::1]" kept whole). */
static const char *http_host(const char *listen)
{
    static char host[256];
    const char *colon = strrchr(listen, ':');
    size_t n = colon ? (size_t)(colon - listen) : strlen(listen);
    if (n >= sizeof(host)) {
        n = sizeof(host) - 1;
    }
    memcpy(host, listen, n);
    host[n] = '\0';
    if (strcmp(host, "0.0.0.0") == 0 || host[0] == '\0') {
        return "127.0.0.1";
    }
    return host;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: partnerpulse demo [--duration SECONDS] [--story model|skeleton] "
                 "[--days N] [--seed N]\n"
                 "                         [--day-ms MS] [--http ADDR] [--quiet]\n"
                 "  Runs the full pipeline against librdkafka's in-process mock cluster, fed by\n"
                 "  the scenario generator, and prints alert transitions as they fire.\n"
                 "  --duration S  stop after S seconds (default: run until Ctrl-C)\n"
                 "  --story S     model (default): MODEL.md's stories (Apex stuffs its quarter\n"
                 "                ends, Meridian's customers drown in tickets, NorthPeak and\n"
                 "                Orion stay healthy, ...) under the pressure model, with noise;\n"
                 "                skeleton: the walking skeleton's ticket surge and TICKET_SURGE\n"
                 "  --days N      simulated days to replay (default: the whole story)\n"
                 "  --seed N      generator seed (default 1)\n"
                 "  --day-ms MS   wall-clock milliseconds per simulated day (default 40)\n"
                 "  --http ADDR   serve the dashboard and API on HOST:PORT (default\n"
                 "                127.0.0.1:8080; port 0 picks a free port)\n"
                 "  --quiet       print only alerts and the final summary\n");
}

int pp_app_demo(int argc, char **argv)
{
    static const struct option opts[] = {
        {"duration", required_argument, 0, 'd'},
        {"days", required_argument, 0, 'n'},
        {"story", required_argument, 0, 'S'},
        {"seed", required_argument, 0, 's'},
        {"day-ms", required_argument, 0, 'm'},
        {"quiet", no_argument, 0, 'q'},
        {"http", required_argument, 0, 'H'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    double duration = 0;
    long days = 0, day_ms = 40; /* days 0: the whole story */
    int skeleton = 0;
    unsigned long long seed = 1;
    struct demo d = {0};
    int c;
    optind = 1;
    const char *http_listen = "127.0.0.1:8080";
    while ((c = getopt_long(argc, argv, "d:n:s:m:qH:h", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'd':
            duration = strtod(optarg, &end);
            break;
        case 'n':
            days = strtol(optarg, &end, 10);
            break;
        case 'S':
            if (strcmp(optarg, "model") == 0) {
                skeleton = 0;
            }
            else if (strcmp(optarg, "skeleton") == 0) {
                skeleton = 1;
            }
            else {
                fprintf(stderr, "partnerpulse demo: --story is model or skeleton\n");
                return 2;
            }
            break;
        case 's':
            seed = strtoull(optarg, &end, 10);
            break;
        case 'm':
            day_ms = strtol(optarg, &end, 10);
            break;
        case 'q':
            d.quiet = 1;
            break;
        case 'H':
            http_listen = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (end && (*end != '\0' || end == optarg)) {
            fprintf(stderr, "partnerpulse demo: bad number '%s'\n", optarg);
            return 2;
        }
    }
    if (duration < 0 || days < 0 || days > 3650 || day_ms < 0 || day_ms > 60000) {
        fprintf(stderr, "partnerpulse demo: value out of range\n");
        usage(stderr);
        return 2;
    }

    int rc = 1;
    char errstr[512];
    rd_kafka_t *mock_owner = NULL;
    rd_kafka_mock_cluster_t *mc = NULL;
    struct pp_schema_catalog *cat = NULL;
    struct pp_pipeline *pl = NULL;
    struct pp_http *http = NULL;
    struct event *sigint = NULL, *sigterm = NULL;

    pp_app_conf_defaults(&d.conf);
    d.conf.engine = skeleton ? PP_ENGINE_TICKET_SURGE : PP_ENGINE_MODEL;
    d.conf.mock_cluster = true;
    d.conf.proc.allowed_lateness_ms = 0;
    snprintf(d.conf.application_id, sizeof(d.conf.application_id), "%s", "partnerpulse-demo");
    snprintf(d.conf.proc.tenant, sizeof(d.conf.proc.tenant), "%s", "demo");
    if (d.quiet) {
        pp_log_threshold = PP_LOG_WARN;
    }

    /* The handle that owns the mock cluster never connects anywhere. */
    rd_kafka_conf_t *oconf = rd_kafka_conf_new();
    rd_kafka_conf_set(oconf, "log_level", "3", NULL, 0);
    mock_owner = rd_kafka_new(RD_KAFKA_PRODUCER, oconf, errstr, sizeof(errstr));
    if (mock_owner == NULL) {
        fprintf(stderr, "partnerpulse demo: %s\n", errstr);
        goto out;
    }
    mc = rd_kafka_mock_cluster_new(mock_owner, 1);
    if (mc == NULL) {
        fprintf(stderr, "partnerpulse demo: cannot start the mock cluster\n");
        goto out;
    }
    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    const char *topics[] = {d.conf.topic_deals, d.conf.topic_licenses, d.conf.topic_support,
                            d.conf.topic_alerts, d.conf.topic_dlq};
    for (size_t i = 0; i < 5; i++) {
        rd_kafka_mock_topic_create(mc, topics[i], 3, 1);
    }
    /* The task runtime's internal topics (docs/runtime.md): the mock cluster
     * does not implement CreateTopics. */
    static const struct {
        const char *suffix;
        int partitions;
    } internal[] = {{"repartition", 3},
                    {"exchange", 1},
                    {"customers-changelog", 3},
                    {"partners-changelog", 1},
                    {"watermarks", 1}};
    for (size_t i = 0; !skeleton && i < sizeof(internal) / sizeof(internal[0]); i++) {
        char name[PP_CONF_STR_MAX + 32];
        snprintf(name, sizeof(name), "%s-%s", d.conf.application_id, internal[i].suffix);
        rd_kafka_mock_topic_create(mc, name, internal[i].partitions, 1);
    }
    if (pp_app_conf_set(&d.conf, "kafka.bootstrap.servers", bootstraps, 0, errstr,
                        sizeof(errstr)) != 0) {
        fprintf(stderr, "partnerpulse demo: %s\n", errstr);
        goto out;
    }

    if (skeleton) {
        struct pp_scenario_conf sc = {.seed = seed,
                                      .start_day = pp_day_from_civil(2025, 7, 1),
                                      .days = days ? (int32_t)days : 90};
        pp_scenario_skeleton(&sc, collect, &d);
    }
    else {
        /* MODEL.md §3's stories with the background cohort, seeded noise. */
        struct pp_scen_conf sc;
        pp_scen_conf_defaults(&sc);
        sc.noise = true;
        sc.seed = seed;
        if (days) {
            sc.last_day = sc.first_day + (int32_t)days - 1;
        }
        pp_scen_generate(&sc, collect, &d);
    }
    char first_day[11] = "-";
    int32_t n_days = 0;
    if (d.n > 0) {
        int32_t d0 = pp_day_from_ms(d.events[0].occurred_at_ms);
        pp_day_format(d0, first_day, sizeof(first_day));
        n_days = pp_day_from_ms(d.events[d.n - 1].occurred_at_ms) - d0 + 1;
    }

    cat = pp_schema_catalog_new(errstr, sizeof(errstr));
    d.codec = cat ? pp_codec_new(cat, NULL) : NULL;
    rd_kafka_conf_t *fconf = pp_app_kafka_conf(&d.conf, 0, errstr, sizeof(errstr));
    d.feeder = fconf ? rd_kafka_new(RD_KAFKA_PRODUCER, fconf, errstr, sizeof(errstr)) : NULL;
    if (d.codec == NULL || d.feeder == NULL) {
        fprintf(stderr, "partnerpulse demo: %s\n", errstr);
        goto out;
    }

    d.base = event_base_new();
    struct pp_pipeline_hooks hooks = {.alert_delivered = print_alert, .opaque = &d};
    pl = pp_pipeline_new(&d.conf, d.base, &hooks, errstr, sizeof(errstr));
    if (pl == NULL) {
        fprintf(stderr, "partnerpulse demo: %s\n", errstr);
        goto out;
    }
    snprintf(d.conf.http_listen, sizeof(d.conf.http_listen), "%s", http_listen);
    struct pp_http_conf hconf;
    pp_http_conf_from_app(&hconf, &d.conf);
    http = pp_http_new(d.base, &hconf, pl, errstr, sizeof(errstr));
    if (http == NULL) {
        fprintf(stderr, "partnerpulse demo: %s (use --http HOST:PORT, port 0 for any)\n", errstr);
        rc = 2;
        goto out;
    }
    /* Always printed (also with --quiet): tests and users read the URL. */
    printf("partnerpulse demo: dashboard at http://%s:%d/\n", http_host(http_listen),
           pp_http_port(http));
    fflush(stdout);
    if (!d.quiet) {
        printf("partnerpulse demo: mock Kafka cluster at %s\n"
               "  inputs %s, %s, %s -> alerts %s (dead letters %s)\n"
               "  replaying %d simulated days from %s (%zu events), one day every %ld ms\n",
               bootstraps, d.conf.topic_deals, d.conf.topic_licenses, d.conf.topic_support,
               d.conf.topic_alerts, d.conf.topic_dlq, n_days, first_day, d.n, day_ms);
        if (skeleton) {
            printf("  rule TICKET_SURGE: >= %u tickets opened by a partner's customers in %u "
                   "days\n\n",
                   d.conf.proc.surge_threshold, d.conf.proc.surge_window_days);
        }
        else {
            printf("  the MODEL.md pressure model: CUSTOMER_PRESSURE, PARTNER_PRESSURE, "
                   "STUFFING_PATTERN\n  (quarter-end stuffing shows first, in the last days "
                   "of June 2025)\n\n");
        }
        fflush(stdout);
    }

    d.feed_ev = event_new(d.base, -1, EV_PERSIST, on_feed, &d);
    struct timeval feed_tv = {day_ms / 1000, (day_ms % 1000) * 1000};
    event_add(d.feed_ev, &feed_tv);
    sigint = evsignal_new(d.base, SIGINT, on_stop, d.base);
    sigterm = evsignal_new(d.base, SIGTERM, on_stop, d.base);
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    if (duration > 0) {
        struct timeval tv = {(time_t)duration, (suseconds_t)((duration - (time_t)duration) * 1e6)};
        event_base_loopexit(d.base, &tv);
    }

    event_base_dispatch(d.base);

    pp_watchdog_arm(d.conf.shutdown_timeout_ms, "processing.shutdown_timeout", 1);
    int flushed = pp_pipeline_shutdown(pl, (int)d.conf.shutdown_timeout_ms);
    struct pp_pipeline_stats st;
    pp_pipeline_stats(pl, &st);
    printf("\ndemo summary: %" PRIu64 " events processed, %" PRIu64 " alert transitions "
           "delivered, %" PRIu64 " dead letters, %zu of %zu generated events produced\n",
           st.events, st.alerts_delivered, st.dead_letters, d.next, d.n);
    rc = (pp_pipeline_failed(pl) || flushed != 0) ? 1 : 0;
out:
    pp_http_destroy(http);
    if (sigint) {
        event_free(sigint);
    }
    if (sigterm) {
        event_free(sigterm);
    }
    if (d.feed_ev) {
        event_free(d.feed_ev);
    }
    pp_pipeline_destroy(pl);
    if (d.feeder) {
        rd_kafka_flush(d.feeder, 2000);
        rd_kafka_destroy(d.feeder);
    }
    pp_codec_destroy(d.codec);
    pp_schema_catalog_destroy(cat);
    if (mc) {
        rd_kafka_mock_cluster_destroy(mc);
    }
    if (mock_owner) {
        rd_kafka_destroy(mock_owner);
    }
    if (d.base) {
        event_base_free(d.base);
    }
    pp_app_conf_free(&d.conf);
    free(d.events);
    return rc;
}
