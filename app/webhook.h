/*
 * webhook.h — alert notifications to HTTP subscribers (docs/webhooks.md).
 *
 * The notifier consumes the alerts topic with its own consumer group
 * (`<application_id>-webhooks`, read_committed) and POSTs every FIRING and
 * RESOLVED transition that a subscriber's filters select, in Prometheus
 * Alertmanager's webhook format, to that subscriber. The offset of an alert
 * is committed only once every matching subscriber acknowledged it (2xx) or
 * it was dead-lettered to the log after the retry bound, so a crash never
 * loses a notification (it may repeat one: receivers de-duplicate on the
 * fingerprint). Alerts are handled one at a time, in parallel across
 * subscribers, with libcurl's multi interface on the libevent loop.
 */
#ifndef PP_APP_WEBHOOK_H
#define PP_APP_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "alert.h"
#include "config.h"

/* An alert record as read back from the alerts topic. details_json is
 * malloc'd (free with pp_webhook_alert_clear). Times are epoch ms. */
struct pp_webhook_alert {
    struct pp_alert a; /* ids, rule, status, severity, scope, partner, customer, summary */
    int64_t first_seen_ms, fired_ms, evaluated_ms;
    char *details_json;
};
void pp_webhook_alert_clear(struct pp_webhook_alert *wa);

/* Decodes a Confluent-framed alert record written with schemas/alert.avsc.
 * Returns 0, or -1 with errstr (malformed, truncated, trailing bytes). */
int pp_webhook_decode_alert(const void *buf, size_t len, struct pp_webhook_alert *wa, char *errstr,
                            size_t errstr_size);

/* 1 when the subscriber's rules and min_severity select this transition
 * (PENDING never is). */
int pp_webhook_matches(const struct pp_webhook_sub_conf *sub, const struct pp_webhook_alert *wa);

/* The Alertmanager-format body for one subscriber: a malloc'd JSON string
 * (free()), or NULL on out of memory. external_url is the service's base
 * URL ("" for none). */
char *pp_webhook_payload(const struct pp_webhook_alert *wa, const char *receiver,
                         const char *external_url);

/* The fingerprint: 16 hex digits of FNV-1a 64 over the dedup key. */
void pp_webhook_fingerprint(const char *dedup_key, char out[17]);

/* A silence check (app/silences.c): returns 1 when the alert must not be
 * notified, with the silence id in id. */
typedef int(pp_webhook_mute_fn)(const struct pp_webhook_alert *wa, char *id, size_t id_size,
                                void *opaque);

struct pp_webhook;

/* Starts the notifier for conf->webhooks (conf is copied). NULL + errstr on
 * a bad kafka.* value or a libcurl failure. */
struct pp_webhook *pp_webhook_new(const struct pp_app_conf *conf, struct event_base *base,
                                  char *errstr, size_t errstr_size);

/* Base of generatorURL and externalURL, e.g. http://127.0.0.1:8080. */
void pp_webhook_set_external_url(struct pp_webhook *wh, const char *url);

/* Installs the silence check (NULL removes it). */
void pp_webhook_set_mute(struct pp_webhook *wh, pp_webhook_mute_fn *fn, void *opaque);

/* Replaces the subscribers' filters (rules, min_severity, max_attempts,
 * auth_header) on reload. The set of subscribers (names and urls) must be
 * unchanged: returns -1 with errstr naming the key otherwise. */
int pp_webhook_set_subs(struct pp_webhook *wh, const struct pp_app_conf *conf, char *errstr,
                        size_t errstr_size);

/* Counters for the log and tests. */
struct pp_webhook_stats {
    uint64_t delivered;     /* notifications acknowledged with 2xx */
    uint64_t attempts;      /* HTTP requests made */
    uint64_t dead_lettered; /* notifications given up */
    uint64_t muted;         /* notifications suppressed by a silence */
    uint64_t alerts;        /* alert records handled and committed */
};
void pp_webhook_stats(const struct pp_webhook *wh, struct pp_webhook_stats *out);

/* Abandons a notification in flight (not committed: it is sent again after
 * a restart), commits what was acknowledged, leaves the group. NULL is ok. */
void pp_webhook_destroy(struct pp_webhook *wh);

#endif
