/*
 * config.h — the service configuration: one YAML file, validated against a
 * table of keys (name, type, default, range, description) from which the
 * reference in docs/configuration.md is generated (`partnerpulse
 * config-reference`).
 *
 * Nested YAML mappings flatten to dotted keys (`topics: {alerts: x}` is
 * `topics.alerts`). Every `kafka.*` key is handed to librdkafka untouched, so
 * TLS, SASL and client tuning work as Kafka users expect. `${VAR}` in a value
 * is replaced by the environment variable VAR (for secrets); `${VAR:-text}`
 * falls back to text when VAR is unset or empty. Unknown keys,
 * wrong types and out-of-range values are errors naming file, line and key.
 */
#ifndef PP_APP_CONFIG_H
#define PP_APP_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "model.h"
#include "proc.h"

#define PP_CONF_STR_MAX 256

/* Webhook subscribers (`webhooks.<name>.*`, app/webhook.c). */
#define PP_WEBHOOK_MAX      16
#define PP_WEBHOOK_NAME_MAX 64
struct pp_webhook_sub_conf {
    char name[PP_WEBHOOK_NAME_MAX];
    char url[PP_CONF_STR_MAX];         /* required: http:// or https:// */
    char auth_header[PP_CONF_STR_MAX]; /* "" = none; else the Authorization value */
    char rules[PP_CONF_STR_MAX];       /* comma-separated rule ids; "" = every rule */
    uint32_t min_severity;             /* enum pp_severity (alert.h) */
    uint32_t max_attempts;             /* delivery attempts before the dead-letter log */
    int line;                          /* where the subscriber is first named */
};

enum pp_guarantee { PP_GUARANTEE_EXACTLY_ONCE = 0, PP_GUARANTEE_AT_LEAST_ONCE = 1 };

struct pp_kv {
    char *key; /* without the "kafka." prefix */
    char *value;
    int line;
};

struct pp_app_conf {
    char path[PP_CONF_STR_MAX];
    char application_id[PP_CONF_STR_MAX];
    char topic_deals[PP_CONF_STR_MAX];
    char topic_licenses[PP_CONF_STR_MAX];
    char topic_support[PP_CONF_STR_MAX];
    char topic_alerts[PP_CONF_STR_MAX];
    char topic_dlq[PP_CONF_STR_MAX];
    char topic_silences[PP_CONF_STR_MAX];
    struct pp_proc_conf proc;   /* the TICKET_SURGE engine (tenant, lateness live here) */
    struct pp_model_conf model; /* the MODEL.md engine: every `model.*` key */
    uint64_t engine;            /* enum pp_engine_kind (engine.h) */
    uint64_t max_message_bytes;
    uint32_t max_string_bytes; /* processing.max_string_bytes */
    uint32_t max_items;        /* processing.max_items */
    /* Schema Registry; registry_url "" = the local schema catalog. */
    char registry_url[PP_CONF_STR_MAX];
    char registry_user[PP_CONF_STR_MAX];
    char registry_password[PP_CONF_STR_MAX];
    char registry_ca_location[PP_CONF_STR_MAX];
    int64_t registry_timeout_ms;
    char registry_alert_subject[PP_CONF_STR_MAX]; /* "" = <topics.alerts>-value */
    int64_t idle_timeout_ms;
    int64_t cohort_max_wait_ms;      /* processing.cohort_max_wait; 0 = wait for ever */
    uint64_t guarantee;              /* enum pp_guarantee */
    int64_t commit_interval_ms;      /* processing.commit_interval */
    int64_t shutdown_timeout_ms;     /* processing.shutdown_timeout */
    uint32_t partitions;             /* processing.partitions; 0 = the inputs' largest count */
    uint32_t replication_factor;     /* processing.replication_factor; 0 = broker default */
    char state_dir[PP_CONF_STR_MAX]; /* state.dir; "" = no snapshots */
    int64_t snapshot_interval_ms;
    uint64_t log_level;                /* enum pp_log_level */
    char http_listen[PP_CONF_STR_MAX]; /* HOST:PORT of the HTTP API; port 0 = ephemeral */
    char http_token[PP_CONF_STR_MAX];  /* bearer token; "" = no authentication */
    uint32_t http_max_body_bytes;
    int64_t http_timeout_ms;
    struct pp_kv *kafka;
    size_t kafka_n;
    /* Not a key: set by the demo and the component tests, whose librdkafka
     * mock cluster answers no DescribeConfigs (the changelogs' cleanup.policy
     * is then not checked) and has the internal topics created up front. */
    bool mock_cluster;
    struct pp_webhook_sub_conf webhooks[PP_WEBHOOK_MAX];
    size_t webhooks_n;
};

void pp_app_conf_defaults(struct pp_app_conf *conf);
void pp_app_conf_free(struct pp_app_conf *conf);

/* Loads and validates `path` over the defaults. Returns 0, or -1 with errstr
 * as "FILE:LINE: key 'K': what is wrong". */
int pp_app_conf_load(struct pp_app_conf *conf, const char *path, char *errstr, size_t errstr_size);

/* Sets one key from a string, as the file does (line is for messages). */
int pp_app_conf_set(struct pp_app_conf *conf, const char *key, const char *value, int line,
                    char *errstr, size_t errstr_size);

/* Writes the configuration reference (Markdown) generated from the table. */
void pp_app_conf_reference(FILE *out);

/* The input topic an event of this type is produced to (generate, demo). */
const char *pp_app_conf_topic_for(const struct pp_app_conf *conf, enum pp_event_type type);

/* Parses "250ms", "30s", "5m", "24h", "7d" or "0". */
int pp_parse_duration_ms(const char *s, int64_t *ms);

/* partnerpulse's memory bounds on librdkafka (kafka.* keys override them):
 * the consumers' prefetch in KiB and the size of one fetch response, and the
 * producer's queue. (A smaller queued.min.messages saved little more and
 * cost a third of the throughput on a backlog: the prefetch is what keeps
 * the loop fed while a commit stalls it.) */
#define PP_KAFKA_PREFETCH_KBYTES       "16384"
#define PP_KAFKA_FETCH_MAX_BYTES       "16777216"
#define PP_KAFKA_PRODUCER_QUEUE_KBYTES "65536"

#endif
