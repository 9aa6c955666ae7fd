/*
 * silences.h — silences: partner (and optionally rule) mutes of webhook
 * notifications until a time (docs/webhooks.md, docs/http-api.md).
 *
 * Silences live in a compacted Kafka topic (`topics.silences`; key = silence
 * id, value = the silence as JSON, a tombstone on delete). Every instance
 * reads the whole topic at start and then follows it on the event loop, so a
 * silence created through any instance's API is honoured by all of them.
 * They mute webhook notifications only: evaluation and the alerts topic are
 * unchanged.
 */
#ifndef PP_APP_SILENCES_H
#define PP_APP_SILENCES_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "config.h"

#define PP_SILENCE_ID_MAX 40

struct pp_silences;

/* Creates the topic when missing (compacted), reads it whole (bounded by
 * load_timeout_ms: blocking, at start only), then follows it on base.
 * conf is read during the call only. NULL + errstr on failure. */
struct pp_silences *pp_silences_new(const struct pp_app_conf *conf, struct event_base *base,
                                    int load_timeout_ms, char *errstr, size_t errstr_size);
/* A table in memory only, without Kafka (unit tests). */
struct pp_silences *pp_silences_new_local(void);
void pp_silences_destroy(struct pp_silences *s);

/* 1 when an active silence (until > now_ms) covers partner and rule, with
 * its id in id. */
int pp_silences_muted(const struct pp_silences *s, const char *partner, const char *rule,
                      int64_t now_ms, char *id, size_t id_size);

/* Applies one record of the topic (value NULL = tombstone). For tests and
 * the follower. Returns 0, or -1 when the value is not a valid silence. */
int pp_silences_apply(struct pp_silences *s, const char *key, size_t key_len, const char *value,
                      size_t value_len);

/* The HTTP API (app/http.c calls it for /v1/silences and /v1/silences/{id}):
 * method is "GET", "POST" or "DELETE"; id is NULL for the collection. Returns
 * the HTTP status with *out a malloc'd JSON document (NULL for 204). */
int pp_silences_http(void *opaque, const char *method, const char *id, const char *body,
                     size_t body_len, char **out);

/* "2026-01-02T03:04:05Z", with optional fraction and ±HH:MM offset, to epoch
 * ms; -1 when malformed. */
int pp_parse_rfc3339(const char *s, int64_t *ms);

#endif
