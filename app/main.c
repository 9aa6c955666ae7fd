/*
 * main.c — the `partnerpulse` command line: run, demo, check-config,
 * config-reference, --help, --version.
 *
 * Exit status: 0 success, 1 a runtime failure (the log says which), 2 a usage
 * or configuration error (the message names the file, line and key), 3 fenced
 * by a newer instance under exactly_once.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <librdkafka/rdkafka.h>

#include "config.h"
#include "backtest.h"
#include "demo.h"
#include "engine.h"
#include "generate.h"
#include "http.h"
#include "log.h"
#include "pipeline.h"
#include "silences.h"
#include "watchdog.h"
#include "webhook.h"

#ifndef PP_VERSION
#define PP_VERSION "0.0.0"
#endif

static void usage(FILE *out)
{
    fprintf(out,
            "partnerpulse %s — channel-partner pressure alerts from Kafka event streams\n\n"
            "usage:\n"
            "  partnerpulse run --config FILE [--duration SECONDS]\n"
            "      Run the service: consume deal, licence and support events, evaluate the\n"
            "      model (rules.engine) per event-time day, write alert transitions to the\n"
            "      alerts topic.\n"
            "      Stops cleanly on SIGINT/SIGTERM (or after --duration); SIGHUP re-reads\n"
            "      FILE and applies new model.*/rules.* thresholds and webhook filters\n"
            "      without losing state (an invalid file keeps the old one). Serves the HTTP\n"
            "      API, /metrics, /healthz, /readyz and the dashboard on http.listen\n"
            "      (default 127.0.0.1:8080; docs/http-api.md). With webhooks.<name>.url\n"
            "      keys, POSTs alert transitions to subscribers in Alertmanager's format\n"
            "      (docs/webhooks.md). With rules.engine: model (the default) the model\n"
            "      runs as Kafka tasks, exactly-once by default (processing.guarantee),\n"
            "      state in changelog topics and state.dir snapshots (docs/runtime.md):\n"
            "      run as many instances with the same application_id as you like.\n"
            "  partnerpulse demo [--duration S] [--story model|skeleton] [--days N] [--seed N]\n"
            "                    [--day-ms MS] [--http ADDR] [--quiet]\n"
            "      Everything in one process against librdkafka's in-process mock cluster:\n"
            "      MODEL.md's stories through the pressure model, alerts printed as they fire,\n"
            "      with the dashboard at http://127.0.0.1:8080/ (or --http HOST:PORT).\n"
            "  partnerpulse check-config FILE\n"
            "      Validate a configuration file; errors name the file, line and key.\n"
            "  partnerpulse generate [--scenario LIST] [--noise --seed N]\n"
            "                        (--out FILE | --kafka BOOTSTRAP [--config FILE])\n"
            "      Write scenario events (or --load PxC --days N) to an event file or Kafka.\n"
            "  partnerpulse backtest --events FILE [--config FILE] [--format text|jsonl]\n"
            "                        [--summary]\n"
            "      Replay an event file offline and print the alert transitions it yields.\n"
            "  partnerpulse config-reference\n"
            "      Print every configuration key with its default and meaning (Markdown).\n"
            "  partnerpulse --help | --version\n\n"
            "Exit status: 0 ok, 1 runtime failure (or a shutdown cut short by\n"
            "processing.shutdown_timeout), 2 usage or configuration error,\n"
            "3 fenced by another instance (exactly_once): restart it.\n"
            "Docs: README.md and docs/ in the source tree.\n",
            PP_VERSION);
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    pp_log(PP_LOG_INFO, "msg=\"signal received, shutting down\" signal=%d", (int)sig);
    event_base_loopexit(arg, NULL);
}

/* A webhook notification is muted by an active silence (wall clock). */
static int mute_by_silence(const struct pp_webhook_alert *wa, char *id, size_t id_size,
                           void *opaque)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return pp_silences_muted(opaque, wa->a.partner_id, wa->a.rule_id, now, id, id_size);
}

static int load_config(struct pp_app_conf *conf, const char *path)
{
    char errstr[1024];
    pp_app_conf_defaults(conf);
    if (pp_app_conf_load(conf, path, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "partnerpulse: configuration error: %s\n", errstr);
        return -1;
    }
    int has_bootstrap = 0;
    for (size_t i = 0; i < conf->kafka_n; i++) {
        has_bootstrap |= strcmp(conf->kafka[i].key, "bootstrap.servers") == 0;
    }
    if (!has_bootstrap) {
        fprintf(stderr,
                "partnerpulse: configuration error: %s: key 'kafka.bootstrap.servers' "
                "is required\n",
                path);
        return -1;
    }
    return 0;
}

/* SIGHUP: re-read the configuration file and apply what can change while
 * running (model.* and rules.* parameters, webhook filters, log.level). All
 * or nothing: an invalid file, or a change that needs a restart, keeps the
 * old configuration and is logged at level=error with the key. */
struct reload_ctx {
    struct pp_app_conf *conf;
    const char *path;
    struct pp_pipeline *pl;
    struct pp_webhook *wh;
};

static void on_reload(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct reload_ctx *rc = arg;
    struct pp_app_conf next;
    char errstr[1024];
    pp_app_conf_defaults(&next);
    int bad = pp_app_conf_load(&next, rc->path, errstr, sizeof(errstr));
    if (!bad && next.webhooks_n != rc->conf->webhooks_n) {
        snprintf(errstr, sizeof(errstr),
                 "%s: key 'webhooks': subscribers cannot be added or removed on reload (restart)",
                 rc->path);
        bad = 1;
    }
    for (size_t i = 0; !bad && i < next.webhooks_n; i++) {
        if (strcmp(next.webhooks[i].name, rc->conf->webhooks[i].name) != 0 ||
            strcmp(next.webhooks[i].url, rc->conf->webhooks[i].url) != 0) {
            snprintf(errstr, sizeof(errstr),
                     "%s:%d: key 'webhooks.%s.url': subscribers cannot change on reload (restart)",
                     rc->path, next.webhooks[i].line, next.webhooks[i].name);
            bad = 1;
        }
    }
    if (!bad) {
        char why[512];
        bad = pp_engine_set_conf(pp_pipeline_engine(rc->pl), &next, why, sizeof(why));
        if (!bad) {
            /* the model's tasks, when the model runs as Kafka tasks */
            bad = pp_pipeline_set_conf(rc->pl, &next, why, sizeof(why));
        }
        if (bad) {
            snprintf(errstr, sizeof(errstr), "%s: %s", rc->path, why);
        }
    }
    if (!bad && rc->wh) {
        bad = pp_webhook_set_subs(rc->wh, &next, errstr, sizeof(errstr));
    }
    if (bad) {
        pp_log(PP_LOG_ERROR,
               "msg=\"reload failed, keeping the running configuration\" error=\"%s\"", errstr);
        pp_app_conf_free(&next);
        return;
    }
    pp_log_threshold = (enum pp_log_level)next.log_level;
    pp_app_conf_free(rc->conf);
    *rc->conf = next;
    pp_log(PP_LOG_INFO, "msg=\"configuration reloaded\" path=%s", rc->path);
}

static int cmd_check_config(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: partnerpulse check-config FILE\n");
        return 2;
    }
    struct pp_app_conf conf;
    int rc = load_config(&conf, argv[1]);
    if (rc == 0) {
        printf("%s: OK (application_id=%s, inputs %s %s %s, alerts %s)\n", argv[1],
               conf.application_id, conf.topic_deals, conf.topic_licenses, conf.topic_support,
               conf.topic_alerts);
    }
    pp_app_conf_free(&conf);
    return rc == 0 ? 0 : 2;
}

static int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},
        {"duration", required_argument, 0, 'd'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *path = NULL;
    double duration = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:d:h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'd':
            duration = strtod(optarg, &end);
            if (*end != '\0' || end == optarg || duration < 0) {
                fprintf(stderr, "partnerpulse run: bad --duration '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (path == NULL || optind != argc) {
        fprintf(stderr, "partnerpulse run: --config FILE is required\n");
        return 2;
    }
    struct pp_app_conf conf;
    if (load_config(&conf, path) != 0) {
        pp_app_conf_free(&conf);
        return 2;
    }
    pp_log_threshold = (enum pp_log_level)conf.log_level;

    int rc = 1;
    char errstr[1024];
    struct event_base *base = event_base_new();
    struct event *sigint = evsignal_new(base, SIGINT, on_stop, base);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_stop, base);
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    struct reload_ctx reload = {&conf, path, NULL, NULL};
    struct event *sighup = evsignal_new(base, SIGHUP, on_reload, &reload);
    signal(SIGPIPE, SIG_IGN);

    struct pp_http *http = NULL;
    struct pp_webhook *wh = NULL;
    struct pp_silences *silences = NULL;
    struct pp_pipeline *pl = pp_pipeline_new(&conf, base, NULL, errstr, sizeof(errstr));
    if (pl == NULL) {
        fprintf(stderr, "partnerpulse: cannot start: %s\n", errstr);
        rc = 2;
        goto out;
    }
    struct pp_http_conf hconf;
    pp_http_conf_from_app(&hconf, &conf);
    http = pp_http_new(base, &hconf, pl, errstr, sizeof(errstr));
    if (http == NULL) {
        fprintf(stderr, "partnerpulse: cannot start: %s\n", errstr);
        rc = 2;
        goto out;
    }
    if (conf.webhooks_n > 0) {
        /* Silences first: no notification before the ones muting it are known. */
        silences = pp_silences_new(&conf, base, 15000, errstr, sizeof(errstr));
        if (silences == NULL) {
            fprintf(stderr, "partnerpulse: cannot start silences: %s\n", errstr);
            rc = 1;
            goto out;
        }
        pp_http_set_silences(http, pp_silences_http, silences);
        wh = pp_webhook_new(&conf, base, errstr, sizeof(errstr));
        if (wh == NULL) {
            fprintf(stderr, "partnerpulse: cannot start webhooks: %s\n", errstr);
            rc = 2;
            goto out;
        }
        /* generatorURL points at this instance's HTTP API. */
        char ext[PP_CONF_STR_MAX + 32];
        const char *colon = strrchr(conf.http_listen, ':');
        int hostlen = colon ? (int)(colon - conf.http_listen) : 0;
        snprintf(ext, sizeof(ext), "http://%.*s:%d", hostlen, conf.http_listen, pp_http_port(http));
        pp_webhook_set_external_url(wh, ext);
        pp_webhook_set_mute(wh, mute_by_silence, silences);
    }
    reload.pl = pl;
    reload.wh = wh;
    event_add(sighup, NULL);
    pp_log(PP_LOG_INFO, "msg=\"started\" version=%s application_id=%s librdkafka=%s", PP_VERSION,
           conf.application_id, rd_kafka_version_str());
    if (duration > 0) {
        struct timeval tv = {(time_t)duration, (suseconds_t)((duration - (time_t)duration) * 1e6)};
        event_base_loopexit(base, &tv);
    }
    event_base_dispatch(base);

    /* Bounded (processing.shutdown_timeout): see watchdog.h. */
    pp_watchdog_arm(conf.shutdown_timeout_ms, "processing.shutdown_timeout", 1);
    int flushed = pp_pipeline_shutdown(pl, (int)conf.shutdown_timeout_ms);
    struct pp_pipeline_stats st;
    pp_pipeline_stats(pl, &st);
    pp_log(PP_LOG_INFO, "msg=\"stopped\" records=%llu events=%llu dead_letters=%llu alerts=%llu",
           (unsigned long long)st.records, (unsigned long long)st.events,
           (unsigned long long)st.dead_letters, (unsigned long long)st.alerts_delivered);
    /* 3: fenced by a newer instance (exactly_once); the orchestrator restarts us. */
    rc = pp_pipeline_failed(pl) == 3 ? 3 : (pp_pipeline_failed(pl) || flushed != 0) ? 1 : 0;
out:
    pp_webhook_destroy(wh);
    pp_http_destroy(http);
    pp_silences_destroy(silences);
    pp_pipeline_destroy(pl);
    event_free(sigint);
    event_free(sigterm);
    event_free(sighup);
    event_base_free(base);
    pp_app_conf_free(&conf);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("partnerpulse %s (librdkafka %s)\n", PP_VERSION, rd_kafka_version_str());
        return 0;
    }
    if (strcmp(cmd, "run") == 0) {
        return cmd_run(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "demo") == 0) {
        return pp_app_demo(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "check-config") == 0) {
        return cmd_check_config(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "generate") == 0) {
        return pp_app_generate(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "backtest") == 0) {
        return pp_app_backtest(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "config-reference") == 0) {
        pp_app_conf_reference(stdout);
        return 0;
    }
    fprintf(stderr, "partnerpulse: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
