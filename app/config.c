/*
 * config.c — YAML configuration with a declarative key table. See config.h.
 *
 * The YAML is read with libyaml's event parser; we only accept what a
 * configuration needs (nested mappings of scalars), so sequences, anchors and
 * aliases are refused with their line rather than half-supported.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <yaml.h>

#include "log.h"
#include "model_keys.h"
#include "palloc.h"

enum ctype { C_STR, C_UINT, C_DURATION, C_LOGLEVEL, C_OPTSTR, C_ENGINE, C_GUARANTEE };

struct ckey {
    const char *key;
    enum ctype type;
    const char *def;
    uint64_t min, max; /* C_UINT: value range; C_DURATION: milliseconds */
    size_t off;
    size_t size; /* C_STR capacity */
    const char *desc;
};

#define OFF(m) offsetof(struct pp_app_conf, m)
#define SZ(m)  sizeof(((struct pp_app_conf *)0)->m)

static const struct ckey keys[] = {
    {"application_id", C_STR, "partnerpulse", 0, 0, OFF(application_id), SZ(application_id),
     "Consumer group id of the service (and prefix of its internal names). Instances with the "
     "same id share the work."},
    {"tenant", C_STR, "default", 0, 0, OFF(proc.tenant), SZ(proc.tenant),
     "Vendor tenant name; part of every alert's dedup key."},
    {"topics.deals", C_STR, "deals", 0, 0, OFF(topic_deals), SZ(topic_deals),
     "Input topic of deal events (any event type is accepted on any input topic)."},
    {"topics.licenses", C_STR, "license-consumption", 0, 0, OFF(topic_licenses), SZ(topic_licenses),
     "Input topic of licence-consumption snapshots."},
    {"topics.support", C_STR, "support", 0, 0, OFF(topic_support), SZ(topic_support),
     "Input topic of support ticket events."},
    {"topics.alerts", C_STR, "partnerpulse-alerts", 0, 0, OFF(topic_alerts), SZ(topic_alerts),
     "Output topic of alert transitions (Avro, Confluent wire format, keyed by partner id)."},
    {"topics.dlq", C_STR, "partnerpulse-dlq", 0, 0, OFF(topic_dlq), SZ(topic_dlq),
     "Dead-letter topic: records that cannot be decoded or validated, or arrive too late, with "
     "headers pp.reason, pp.detail, pp.topic, pp.partition, pp.offset (and pp.schema_id)."},
    {"topics.silences", C_STR, "partnerpulse-silences", 0, 0, OFF(topic_silences),
     SZ(topic_silences),
     "Compacted topic of webhook silences (key = silence id, JSON value, tombstone on delete); "
     "created when missing, read whole at start by every instance that has webhooks "
     "(docs/webhooks.md)."},
    {"processing.allowed_lateness", C_DURATION, "24h", 0, 30 * UINT64_C(86400000),
     OFF(proc.allowed_lateness_ms), 0,
     "How long after the end of an event-time day events for it are still accepted; the day is "
     "evaluated when the watermark passes its end plus this (MODEL.md §2.2)."},
    {"processing.idle_timeout", C_DURATION, "500ms", 0, 3600 * UINT64_C(1000), OFF(idle_timeout_ms),
     0,
     "An input partition that is caught up (at its end) and delivers nothing for this long (wall "
     "clock) stops holding the watermark back, so days still close on quiet inputs; until then "
     "a caught-up partition holds it back by its newest event time plus "
     "processing.allowed_lateness only. An input whose producer lags the others by more than the "
     "allowed lateness in event time after being quiet this long has its late records "
     "dead-lettered (docs/runtime.md)."},
    {"processing.cohort_max_wait", C_DURATION, "5m", 0, 24 * 3600 * UINT64_C(1000),
     OFF(cohort_max_wait_ms), 0,
     "How long the partners task waits for a day's assessments and cohort partials from every "
     "customers partition before it evaluates the day without the late ones, with the "
     "configured fallback baselines, saying so in each alert (MODEL.md §1); 0 waits for ever. "
     "Below the time a task takes to move after a crash, alerts may differ from backtest."},
    {"processing.shutdown_timeout", C_DURATION, "20s", 1000, 600 * UINT64_C(1000),
     OFF(shutdown_timeout_ms), 0,
     "How long SIGTERM/SIGINT may take: the interval's transaction (or offsets) committed, every "
     "task snapshotted, the group left. Past it the instance logs an error and exits 1 without "
     "finishing (exactly_once loses nothing: the open transaction is aborted and the next owner "
     "resumes from the committed offsets). Keep it below the orchestrator's grace period "
     "(deploy/: 45 s for Kubernetes and systemd, 30 s for compose)."},
    {"processing.max_message_bytes", C_UINT, "1048576", 64, 64 * UINT64_C(1048576),
     OFF(max_message_bytes), 0,
     "Largest input record value accepted; larger ones are dead-lettered."},
    {"processing.max_string_bytes", C_UINT, "65536", 16, 64 * UINT64_C(1048576),
     OFF(max_string_bytes), 0,
     "Longest string or bytes value accepted in an input record, in fields partnerpulse reads "
     "and in those it skips; a longer one dead-letters the record as too_large."},
    {"processing.max_items", C_UINT, "100000", 1, 100000000, OFF(max_items), 0,
     "Most array and map items accepted in one input record (all collections together); more "
     "dead-letters the record as too_large."},
    {"processing.guarantee", C_GUARANTEE, "exactly_once", 0, 0, OFF(guarantee), 0,
     "exactly_once: every record written (repartition, exchange, changelog, alerts, dead letters) "
     "and the input offsets go in one Kafka transaction per commit interval; a read_committed "
     "reader sees each alert once across crashes (docs/runtime.md). at_least_once: idempotent "
     "producer, offsets committed after delivery; a crash may repeat alert transitions (same "
     "alert_id)."},
    {"processing.commit_interval", C_DURATION, "100ms", 10, 60 * UINT64_C(1000),
     OFF(commit_interval_ms), 0,
     "How often the transaction (exactly_once) or the offsets (at_least_once) are committed; "
     "also how often watermark ticks flow to the customers tasks."},
    {"processing.partitions", C_UINT, "0", 0, 10000, OFF(partitions), 0,
     "Partitions of the internal repartition topic and the customers changelog, i.e. the number "
     "of customers tasks; 0 = the largest input topic's partition count at first start. Fixed "
     "once the internal topics exist (a mismatch is refused at start-up)."},
    {"processing.replication_factor", C_UINT, "0", 0, 32, OFF(replication_factor), 0,
     "Replication factor of the internal topics partnerpulse creates; 0 = the broker's "
     "default.replication.factor."},
    {"state.dir", C_OPTSTR, "", 0, 0, OFF(state_dir), SZ(state_dir),
     "Directory for local snapshots of task state (one file per task, written atomically); a "
     "restart then restores from the snapshot plus the changelog's tail. Empty: no snapshots, "
     "state is restored from the changelog topics alone."},
    {"state.snapshot_interval", C_DURATION, "60s", 1000, 24 * UINT64_C(3600000),
     OFF(snapshot_interval_ms), 0,
     "How often each task's state is snapshotted to state.dir (also on revocation and "
     "shutdown)."},
    {"registry.url", C_OPTSTR, "", 0, 0, OFF(registry_url), SZ(registry_url),
     "Confluent-compatible Schema Registry, e.g. http://registry:8081. Empty: the local catalog "
     "(ids 1-4 compiled from schemas/*.avsc). With a registry, writer schemas are fetched by id "
     "(GET /schemas/ids/{id}, once per id) and the alert schema is registered (docs/schemas.md)."},
    {"registry.basic_auth_user", C_OPTSTR, "", 0, 0, OFF(registry_user), SZ(registry_user),
     "User for HTTP basic authentication with the registry; empty = none."},
    {"registry.basic_auth_password", C_OPTSTR, "", 0, 0, OFF(registry_password),
     SZ(registry_password),
     "Password for basic authentication; use ${VAR} to read it from the environment."},
    {"registry.ca_location", C_OPTSTR, "", 0, 0, OFF(registry_ca_location),
     SZ(registry_ca_location),
     "CA certificate bundle (PEM file) to verify an https registry; empty = the system's."},
    {"registry.timeout", C_DURATION, "2s", 100, 60 * UINT64_C(1000), OFF(registry_timeout_ms), 0,
     "Bound of one registry request (connect included). The first record with an unseen schema "
     "id waits for it on the event loop; when the registry is down its partition is paused and "
     "retried with backoff, nothing is dropped."},
    {"registry.alert_subject", C_OPTSTR, "", 0, 0, OFF(registry_alert_subject),
     SZ(registry_alert_subject),
     "Subject under which the alert schema is registered; empty = TopicNameStrategy, "
     "`<topics.alerts>-value`."},
    {"rules.ticket_surge.window_days", C_UINT, "7", 1, 90, OFF(proc.surge_window_days), 0,
     "TICKET_SURGE: event-time days counted, ending with the evaluated day."},
    {"rules.ticket_surge.threshold", C_UINT, "20", 1, 1000000000, OFF(proc.surge_threshold), 0,
     "TICKET_SURGE: tickets opened by a partner's customers in the window at which it fires."},
    {"log.level", C_LOGLEVEL, "info", 0, 0, OFF(log_level), 0, "error, warn, info or debug."},
    {"rules.engine", C_ENGINE, "model", 0, 0, OFF(engine), 0,
     "model: the health and pressure model of MODEL.md (CUSTOMER_PRESSURE, PARTNER_PRESSURE, "
     "STUFFING_PATTERN; tuned with the model.* keys); ticket_surge: the walking skeleton's "
     "single TICKET_SURGE rule (rules.ticket_surge.*), kept for tests and demos."},
    {"http.listen", C_STR, "127.0.0.1:8080", 0, 0, OFF(http_listen), SZ(http_listen),
     "HOST:PORT of the HTTP API, metrics, probes and dashboard (docs/http-api.md). Port 0 "
     "picks a free port (logged). Bind 0.0.0.0 only behind a token or a trusted network."},
    {"http.token", C_OPTSTR, "", 0, 0, OFF(http_token), SZ(http_token),
     "Bearer token required on every HTTP endpoint except /healthz and /readyz; empty = none. "
     "Use ${VAR} to read it from the environment."},
    {"http.max_body_bytes", C_UINT, "65536", 0, 16 * UINT64_C(1048576), OFF(http_max_body_bytes), 0,
     "Largest HTTP request body accepted (413 above)."},
    {"http.timeout", C_DURATION, "30s", 1000, 3600 * UINT64_C(1000), OFF(http_timeout_ms), 0,
     "An HTTP connection idle or stalled this long is closed (the event stream sends "
     "heartbeats, so it stays open)."},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

int pp_parse_duration_ms(const char *s, int64_t *ms)
{
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || errno != 0 || !(v >= 0) || !isfinite(v)) {
        return -1; /* also NaN, which compares false with everything */
    }
    double mult;
    if (strcmp(end, "ms") == 0) {
        mult = 1;
    }
    else if (strcmp(end, "s") == 0) {
        mult = 1e3;
    }
    else if (strcmp(end, "m") == 0) {
        mult = 60e3;
    }
    else if (strcmp(end, "h") == 0) {
        mult = 3600e3;
    }
    else if (strcmp(end, "d") == 0) {
        mult = 86400e3;
    }
    else if (*end == '\0' && v == 0) {
        mult = 0;
    }
    else {
        return -1;
    }
    if (v * mult > 9e15) {
        return -1;
    }
    *ms = (int64_t)(v * mult + 0.5);
    return 0;
}

static int set_value(struct pp_app_conf *conf, const struct ckey *k, const char *value, int line,
                     char *errstr, size_t errstr_size)
{
    char *base = (char *)conf;
    const char *file = conf->path[0] ? conf->path : "(defaults)";
    switch (k->type) {
    case C_STR:
    case C_OPTSTR: {
        size_t n = strlen(value);
        if ((n == 0 && k->type == C_STR) || n >= k->size) {
            snprintf(errstr, errstr_size,
                     "%s:%d: key '%s': expected a non-empty string of at "
                     "most %zu bytes",
                     file, line, k->key, k->size - 1);
            return -1;
        }
        memcpy(base + k->off, value, n + 1);
        return 0;
    }
    case C_UINT: {
        errno = 0;
        char *end;
        unsigned long long v = strtoull(value, &end, 10);
        if (end == value || *end != '\0' || errno != 0 || value[0] == '-' || v < k->min ||
            v > k->max) {
            snprintf(errstr, errstr_size,
                     "%s:%d: key '%s': '%s' is not an integer in [%" PRIu64 ", %" PRIu64 "]", file,
                     line, k->key, value, k->min, k->max);
            return -1;
        }
        if (k->off == OFF(max_message_bytes) || k->off == OFF(log_level)) {
            uint64_t u = v;
            memcpy(base + k->off, &u, sizeof(u));
        }
        else {
            uint32_t u = (uint32_t)v;
            memcpy(base + k->off, &u, sizeof(u));
        }
        return 0;
    }
    case C_DURATION: {
        int64_t ms;
        if (pp_parse_duration_ms(value, &ms) != 0 || (uint64_t)ms < k->min ||
            (uint64_t)ms > k->max) {
            snprintf(errstr, errstr_size,
                     "%s:%d: key '%s': '%s' is not a duration like 30s, "
                     "15m, 24h or 7d within [%" PRIu64 "ms, %" PRIu64 "ms]",
                     file, line, k->key, value, k->min, k->max);
            return -1;
        }
        memcpy(base + k->off, &ms, sizeof(ms));
        return 0;
    }
    case C_ENGINE: {
        uint64_t u;
        if (strcmp(value, "model") == 0) {
            u = 0;
        }
        else if (strcmp(value, "ticket_surge") == 0) {
            u = 1;
        }
        else {
            snprintf(errstr, errstr_size, "%s:%d: key '%s': '%s' is not one of model, ticket_surge",
                     file, line, k->key, value);
            return -1;
        }
        memcpy(base + k->off, &u, sizeof(u));
        return 0;
    }
    case C_GUARANTEE: {
        uint64_t u;
        if (strcmp(value, "exactly_once") == 0) {
            u = PP_GUARANTEE_EXACTLY_ONCE;
        }
        else if (strcmp(value, "at_least_once") == 0) {
            u = PP_GUARANTEE_AT_LEAST_ONCE;
        }
        else {
            snprintf(errstr, errstr_size,
                     "%s:%d: key '%s': '%s' is not one of exactly_once, at_least_once", file, line,
                     k->key, value);
            return -1;
        }
        memcpy(base + k->off, &u, sizeof(u));
        return 0;
    }
    case C_LOGLEVEL: {
        int lvl = pp_log_level_from_name(value);
        if (lvl < 0) {
            snprintf(errstr, errstr_size,
                     "%s:%d: key '%s': '%s' is not one of error, warn, "
                     "info, debug",
                     file, line, k->key, value);
            return -1;
        }
        uint64_t u = (uint64_t)lvl;
        memcpy(base + k->off, &u, sizeof(u));
        return 0;
    }
    }
    return -1;
}

/* A `model.*` key: a field of struct pp_model_conf. Ranges and consistency
 * are checked as a whole by pp_model_conf_validate() after loading. */
static int set_model_key(struct pp_app_conf *conf, const char *key, const char *value,
                         const char *file, int line, char *errstr, size_t errstr_size)
{
    const struct pp_model_key *k = pp_model_keys;
    while (k->key && strcmp(k->key, key) != 0) {
        k++;
    }
    if (k->key == NULL) {
        snprintf(errstr, errstr_size,
                 "%s:%d: key '%s': unknown key (see `partnerpulse config-reference`)", file, line,
                 key);
        return -1;
    }
    char *base = (char *)&conf->model + k->off;
    char *end;
    errno = 0;
    switch (k->type) {
    case MK_DOUBLE: {
        double v = strtod(value, &end);
        if (end == value || *end != '\0' || errno != 0 || !isfinite(v)) {
            break;
        }
        memcpy(base, &v, sizeof(v));
        return 0;
    }
    case MK_U32:
    case MK_I32: {
        long long v = strtoll(value, &end, 10);
        if (end == value || *end != '\0' || errno != 0 ||
            (k->type == MK_U32 ? (v < 0 || v > (long long)UINT32_MAX)
                               : (v < INT32_MIN || v > INT32_MAX))) {
            break;
        }
        if (k->type == MK_U32) {
            uint32_t u = (uint32_t)v;
            memcpy(base, &u, sizeof(u));
        }
        else {
            int32_t i = (int32_t)v;
            memcpy(base, &i, sizeof(i));
        }
        return 0;
    }
    case MK_BOOL: {
        bool b;
        if (strcmp(value, "true") == 0) {
            b = true;
        }
        else if (strcmp(value, "false") == 0) {
            b = false;
        }
        else {
            break;
        }
        memcpy(base, &b, sizeof(b));
        return 0;
    }
    }
    static const char *const what[] = {"a number", "a non-negative integer", "an integer",
                                       "true or false"};
    snprintf(errstr, errstr_size, "%s:%d: key '%s': '%s' is not %s", file, line, key, value,
             what[k->type]);
    return -1;
}

/* A `webhooks.<name>.<sub-key>` key: one named subscriber (app/webhook.c).
 * The url is checked once the whole file is read (it is required). */
static int set_webhook_key(struct pp_app_conf *conf, const char *key, const char *value,
                           const char *file, int line, char *errstr, size_t errstr_size)
{
    const char *name = key + 9;
    const char *dot = strchr(name, '.');
    size_t nlen = dot ? (size_t)(dot - name) : strlen(name);
    if (dot == NULL || nlen == 0 || nlen >= PP_WEBHOOK_NAME_MAX ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != nlen) {
        snprintf(errstr, errstr_size,
                 "%s:%d: key '%s': expected webhooks.<name>.url|auth_header|rules|min_severity|"
                 "max_attempts with a name of letters, digits, _ and - (at most %d)",
                 file, line, key, PP_WEBHOOK_NAME_MAX - 1);
        return -1;
    }
    struct pp_webhook_sub_conf *w = NULL;
    for (size_t i = 0; i < conf->webhooks_n; i++) {
        if (strlen(conf->webhooks[i].name) == nlen &&
            memcmp(conf->webhooks[i].name, name, nlen) == 0) {
            w = &conf->webhooks[i];
        }
    }
    if (w == NULL) {
        if (conf->webhooks_n == PP_WEBHOOK_MAX) {
            snprintf(errstr, errstr_size, "%s:%d: key '%s': at most %d webhook subscribers", file,
                     line, key, PP_WEBHOOK_MAX);
            return -1;
        }
        w = &conf->webhooks[conf->webhooks_n++];
        memset(w, 0, sizeof(*w));
        memcpy(w->name, name, nlen);
        w->name[nlen] = '\0';
        w->min_severity = 1; /* WARNING */
        w->max_attempts = 8;
        w->line = line;
    }
    const char *sub = dot + 1;
    char *dst = NULL;
    size_t cap = 0;
    if (strcmp(sub, "url") == 0) {
        if (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0) {
            snprintf(errstr, errstr_size, "%s:%d: key '%s': '%s' is not an http:// or https:// URL",
                     file, line, key, value);
            return -1;
        }
        dst = w->url;
        cap = sizeof(w->url);
    }
    else if (strcmp(sub, "auth_header") == 0) {
        dst = w->auth_header;
        cap = sizeof(w->auth_header);
    }
    else if (strcmp(sub, "rules") == 0) {
        dst = w->rules;
        cap = sizeof(w->rules);
    }
    else if (strcmp(sub, "min_severity") == 0) {
        static const char *const sev[] = {"INFO", "WARNING", "CRITICAL"};
        for (uint32_t i = 0; i < 3; i++) {
            if (strcmp(value, sev[i]) == 0) {
                w->min_severity = i;
                return 0;
            }
        }
        snprintf(errstr, errstr_size, "%s:%d: key '%s': '%s' is not one of INFO, WARNING, CRITICAL",
                 file, line, key, value);
        return -1;
    }
    else if (strcmp(sub, "max_attempts") == 0) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(value, &end, 10);
        if (end == value || *end != '\0' || errno != 0 || value[0] == '-' || v < 1 || v > 100) {
            snprintf(errstr, errstr_size, "%s:%d: key '%s': '%s' is not an integer in [1, 100]",
                     file, line, key, value);
            return -1;
        }
        w->max_attempts = (uint32_t)v;
        return 0;
    }
    else {
        snprintf(errstr, errstr_size,
                 "%s:%d: key '%s': unknown key (see `partnerpulse config-reference`)", file, line,
                 key);
        return -1;
    }
    size_t n = strlen(value);
    if (n >= cap) {
        snprintf(errstr, errstr_size, "%s:%d: key '%s': longer than %zu bytes", file, line, key,
                 cap - 1);
        return -1;
    }
    memcpy(dst, value, n + 1);
    return 0;
}

int pp_app_conf_set(struct pp_app_conf *conf, const char *key, const char *value, int line,
                    char *errstr, size_t errstr_size)
{
    const char *file = conf->path[0] ? conf->path : "(command line)";
    if (strncmp(key, "model.", 6) == 0) {
        return set_model_key(conf, key, value, file, line, errstr, errstr_size);
    }
    if (strncmp(key, "webhooks.", 9) == 0) {
        return set_webhook_key(conf, key, value, file, line, errstr, errstr_size);
    }
    if (strncmp(key, "kafka.", 6) == 0 && key[6] != '\0') {
        /* Validated by librdkafka itself, so its own message names the problem. */
        rd_kafka_conf_t *scratch = rd_kafka_conf_new();
        char kerr[256];
        rd_kafka_conf_res_t res = rd_kafka_conf_set(scratch, key + 6, value, kerr, sizeof(kerr));
        rd_kafka_conf_destroy(scratch);
        if (res != RD_KAFKA_CONF_OK) {
            snprintf(errstr, errstr_size, "%s:%d: key '%s': %s", file, line, key, kerr);
            return -1;
        }
        for (size_t i = 0; i < conf->kafka_n; i++) {
            if (strcmp(conf->kafka[i].key, key + 6) == 0) {
                free(conf->kafka[i].value);
                conf->kafka[i].value = pp_xstrdup(value);
                conf->kafka[i].line = line;
                return 0;
            }
        }
        conf->kafka = pp_xrealloc(conf->kafka, (conf->kafka_n + 1) * sizeof(*conf->kafka));
        conf->kafka[conf->kafka_n++] = (struct pp_kv){pp_xstrdup(key + 6), pp_xstrdup(value), line};
        return 0;
    }
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(keys[i].key, key) == 0) {
            return set_value(conf, &keys[i], value, line, errstr, errstr_size);
        }
    }
    snprintf(errstr, errstr_size,
             "%s:%d: key '%s': unknown key (see `partnerpulse "
             "config-reference`)",
             file, line, key);
    return -1;
}

void pp_app_conf_defaults(struct pp_app_conf *conf)
{
    memset(conf, 0, sizeof(*conf));
    pp_proc_conf_defaults(&conf->proc);
    pp_model_conf_defaults(&conf->model);
    char err[2 * PP_CONF_STR_MAX + 256]; /* room for any message (-Wformat-truncation) */
    for (size_t i = 0; i < NKEYS; i++) {
        int rc = set_value(conf, &keys[i], keys[i].def, 0, err, sizeof(err));
        if (rc != 0) {
            fprintf(stderr, "bad default: %s\n", err);
            abort(); /* a defect in the table, caught by every test */
        }
    }
}

void pp_app_conf_free(struct pp_app_conf *conf)
{
    for (size_t i = 0; i < conf->kafka_n; i++) {
        free(conf->kafka[i].key);
        free(conf->kafka[i].value);
    }
    free(conf->kafka);
    conf->kafka = NULL;
    conf->kafka_n = 0;
}

/* Replaces ${VAR} (or ${VAR:-default}) with the environment's value. */
static int expand_env(const char *in, char *out, size_t out_size, char *missing, size_t msize)
{
    size_t o = 0;
    for (const char *p = in; *p;) {
        if (p[0] == '$' && p[1] == '{') {
            const char *close = strchr(p + 2, '}');
            if (close == NULL) {
                snprintf(missing, msize, "unterminated ${ in value");
                return -1;
            }
            char name[128];
            size_t n = (size_t)(close - (p + 2));
            if (n == 0 || n >= sizeof(name)) {
                snprintf(missing, msize, "bad variable name in value");
                return -1;
            }
            memcpy(name, p + 2, n);
            name[n] = '\0';
            /* ${VAR:-default}: the default when VAR is unset or empty. */
            char *dflt = strstr(name, ":-");
            if (dflt) {
                *dflt = '\0';
                dflt += 2;
            }
            const char *v = getenv(name);
            if ((v == NULL || v[0] == '\0') && dflt) {
                v = dflt;
            }
            if (v == NULL) {
                snprintf(missing, msize, "environment variable %s is not set", name);
                return -1;
            }
            size_t vl = strlen(v);
            if (o + vl >= out_size) {
                snprintf(missing, msize, "value too long after expansion");
                return -1;
            }
            memcpy(out + o, v, vl);
            o += vl;
            p = close + 1;
            continue;
        }
        if (o + 1 >= out_size) {
            snprintf(missing, msize, "value too long");
            return -1;
        }
        out[o++] = *p++;
    }
    out[o] = '\0';
    return 0;
}

#define MAX_DEPTH 8

int pp_app_conf_load(struct pp_app_conf *conf, const char *path, char *errstr, size_t errstr_size)
{
    snprintf(conf->path, sizeof(conf->path), "%s", path);
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        snprintf(errstr, errstr_size, "%s: cannot open configuration file: %s", path,
                 strerror(errno));
        return -1;
    }
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, fp);

    char prefix[MAX_DEPTH][PP_CONF_STR_MAX]; /* key path of each open mapping */
    int depth = -1;
    char key[PP_CONF_STR_MAX] = "";
    int have_key = 0;
    int rc = -1;
    int done = 0;

    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            snprintf(errstr, errstr_size, "%s:%zu: YAML syntax error: %s", path,
                     parser.problem_mark.line + 1, parser.problem ? parser.problem : "?");
            goto out;
        }
        int line = (int)ev.start_mark.line + 1;
        switch (ev.type) {
        case YAML_MAPPING_START_EVENT:
            if (depth + 1 >= MAX_DEPTH) {
                snprintf(errstr, errstr_size, "%s:%d: nesting too deep", path, line);
                yaml_event_delete(&ev);
                goto out;
            }
            if (depth >= 0 && !have_key) {
                snprintf(errstr, errstr_size, "%s:%d: a mapping cannot be a key", path, line);
                yaml_event_delete(&ev);
                goto out;
            }
            depth++;
            if (depth == 0) {
                prefix[0][0] = '\0';
            }
            else {
                snprintf(prefix[depth], sizeof(prefix[depth]), "%s", key);
            }
            have_key = 0;
            break;
        case YAML_MAPPING_END_EVENT:
            depth--;
            have_key = 0;
            break;
        case YAML_SCALAR_EVENT: {
            const char *text = (const char *)ev.data.scalar.value;
            if (depth < 0) {
                if (text[0] == '\0') {
                    break; /* an empty document */
                }
                snprintf(errstr, errstr_size, "%s:%d: expected a mapping of keys at the top", path,
                         line);
                yaml_event_delete(&ev);
                goto out;
            }
            if (!have_key) {
                int n = depth == 0 ? snprintf(key, sizeof(key), "%s", text)
                                   : snprintf(key, sizeof(key), "%s.%s", prefix[depth], text);
                if (n < 0 || (size_t)n >= sizeof(key)) {
                    snprintf(errstr, errstr_size, "%s:%d: key too long", path, line);
                    yaml_event_delete(&ev);
                    goto out;
                }
                have_key = 1;
                break;
            }
            char value[4096], why[160];
            if (expand_env(text, value, sizeof(value), why, sizeof(why)) != 0) {
                snprintf(errstr, errstr_size, "%s:%d: key '%s': %s", path, line, key, why);
                yaml_event_delete(&ev);
                goto out;
            }
            if (pp_app_conf_set(conf, key, value, line, errstr, errstr_size) != 0) {
                yaml_event_delete(&ev);
                goto out;
            }
            have_key = 0;
            break;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_ALIAS_EVENT:
            snprintf(errstr, errstr_size,
                     "%s:%d: key '%s': lists and aliases are not supported "
                     "in the configuration",
                     path, line, have_key ? key : "?");
            yaml_event_delete(&ev);
            goto out;
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    /* The model's keys are checked together: windows against ring sizes,
     * good/bad points apart, weights positive (pp_model_conf_validate). */
    struct pp_model_conf mc = conf->model;
    mc.allowed_lateness_ms = conf->proc.allowed_lateness_ms;
    char why[256];
    if (pp_model_conf_validate(&mc, why, sizeof(why)) != 0) {
        snprintf(errstr, errstr_size, "%s: model keys: %s", path, why);
        goto out;
    }
    for (size_t i = 0; i < conf->webhooks_n; i++) {
        if (conf->webhooks[i].url[0] == '\0') {
            snprintf(errstr, errstr_size, "%s:%d: key 'webhooks.%s.url': is required", path,
                     conf->webhooks[i].line, conf->webhooks[i].name);
            goto out;
        }
    }
    rc = 0;
out:
    yaml_parser_delete(&parser);
    fclose(fp);
    return rc;
}

static void print_md(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|') {
            fputc('\\', out);
        }
        fputc(*s, out);
    }
}

void pp_app_conf_reference(FILE *out)
{
    fprintf(out, "# Configuration reference\n\n"
                 "Generated by `partnerpulse config-reference` from the key table in "
                 "app/config.c. Keys are dotted paths into the YAML file. `${VAR}` in a value "
                 "is replaced by the environment variable VAR.\n\n"
                 "| key | type | default | range | description |\n|---|---|---|---|---|\n");
    static const char *const tnames[] = {"string", "integer", "duration", "log level",
                                         "string", "engine",  "guarantee"};
    for (size_t i = 0; i < NKEYS; i++) {
        const struct ckey *k = &keys[i];
        fprintf(out, "| `%s` | %s | `%s` | ", k->key, tnames[k->type], k->def);
        if (k->type == C_UINT) {
            fprintf(out, "%" PRIu64 " .. %" PRIu64, k->min, k->max);
        }
        else if (k->type == C_DURATION) {
            fprintf(out, "%" PRIu64 "ms .. %" PRIu64 "ms", k->min, k->max);
        }
        fprintf(out, " | ");
        print_md(out, k->desc);
        fprintf(out, " |\n");
    }
    fprintf(out, "| `kafka.*` | string | | | Passed to librdkafka unchanged (the consumers and the "
                 "producer; consumer-only properties such as `group.instance.id` or "
                 "`session.timeout.ms` are not given to the producer), e.g. "
                 "`kafka.bootstrap.servers`, `kafka.security.protocol`, "
                 "`kafka.sasl.password: ${KAFKA_PASSWORD}`. Checked by librdkafka at load "
                 "time. They override partnerpulse's own defaults, which bound memory "
                 "(docs/runtime.md, \"Backpressure and memory\"): consumers "
                 "`queued.max.messages.kbytes` " PP_KAFKA_PREFETCH_KBYTES
                 " and `fetch.max.bytes` " PP_KAFKA_FETCH_MAX_BYTES
                 "; producer `queue.buffering.max.kbytes` " PP_KAFKA_PRODUCER_QUEUE_KBYTES
                 ", `linger.ms` 5, `enable.idempotence` true. |\n");
    fprintf(out,
            "| `webhooks.<name>.url` | string | | | A webhook subscriber (at most %d, any name of "
            "letters, digits, _ and -): alert transitions are POSTed to this http(s) URL in "
            "Prometheus Alertmanager's webhook format (docs/webhooks.md). Required. |\n"
            "| `webhooks.<name>.auth_header` | string | | | Value of the Authorization header, "
            "e.g. `Bearer ${WEBHOOK_TOKEN}`; empty = none. |\n"
            "| `webhooks.<name>.rules` | string | | | Comma-separated rule ids to notify "
            "(e.g. `CUSTOMER_PRESSURE,PARTNER_PRESSURE`); empty = every rule. |\n"
            "| `webhooks.<name>.min_severity` | string | `WARNING` | INFO, WARNING, CRITICAL | "
            "Lowest severity notified (the severity the FIRING or RESOLVED record carries; PENDING "
            "transitions are never notified). |\n"
            "| `webhooks.<name>.max_attempts` | integer | `8` | 1 .. 100 | Delivery attempts "
            "(backoff 1 s doubling to 60 s) before the notification is dead-lettered to the "
            "log and skipped. |\n",
            PP_WEBHOOK_MAX);

    /* The model's keys, with the model's own defaults. */
    struct pp_model_conf d;
    pp_model_conf_defaults(&d);
    fprintf(out, "\n## Model keys (`rules.engine: model`)\n\n"
                 "One per parameter of MODEL.md; docs/model.md explains them. Ranges and "
                 "consistency are checked together when the file is loaded.\n\n"
                 "| key | type | default | description |\n|---|---|---|---|\n");
    static const char *const mnames[] = {"number", "integer", "integer", "boolean"};
    for (const struct pp_model_key *k = pp_model_keys; k->key; k++) {
        const char *p = (const char *)&d + k->off;
        char def[64];
        if (k->type == MK_DOUBLE) {
            double v;
            memcpy(&v, p, sizeof(v));
            snprintf(def, sizeof(def), "%g", v);
        }
        else if (k->type == MK_U32) {
            uint32_t v;
            memcpy(&v, p, sizeof(v));
            snprintf(def, sizeof(def), "%u", v);
        }
        else if (k->type == MK_I32) {
            int32_t v;
            memcpy(&v, p, sizeof(v));
            snprintf(def, sizeof(def), "%d", v);
        }
        else {
            bool v;
            memcpy(&v, p, sizeof(v));
            snprintf(def, sizeof(def), "%s", v ? "true" : "false");
        }
        fprintf(out, "| `%s` | %s | `%s` | ", k->key, mnames[k->type], def);
        print_md(out, k->desc);
        fprintf(out, " |\n");
    }
}

const char *pp_app_conf_topic_for(const struct pp_app_conf *conf, enum pp_event_type type)
{
    return type == PP_EV_DEAL      ? conf->topic_deals
           : type == PP_EV_SUPPORT ? conf->topic_support
                                   : conf->topic_licenses;
}
