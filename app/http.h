/*
 * http.h — the HTTP API, metrics endpoint, health probes, server-sent event
 * stream and embedded dashboard (DESIGN.md §7, docs/http-api.md).
 *
 * It is libevent's evhttp on the pipeline's own event_base: a request is
 * served between two batches of Kafka records, never concurrently with
 * them, so it reads the processor's state without locks. Nothing here
 * blocks: slow event-stream clients are dropped when their output buffer
 * passes a bound, never waited for.
 *
 * Partner data comes through a provider (struct pp_http_provider): today the
 * walking skeleton's processor (pp_proc), tomorrow the model
 * (processors/model/) — switching is a new pair of functions, not a change
 * to the endpoints or the JSON, whose fields for the model's scores (cpi,
 * health, band, signals) are already there and null until a provider fills
 * them.
 */
#ifndef PP_APP_HTTP_H
#define PP_APP_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "alert.h"
#include "event.h"
#include "pipeline.h"

struct pp_http_conf {
    const char *listen;         /* "HOST:PORT"; "[v6]:PORT"; port 0 = ephemeral */
    const char *token;          /* bearer token; NULL or "" = open */
    size_t max_body_bytes;      /* larger request bodies: 413 */
    int64_t timeout_ms;         /* idle/stalled connection timeout */
    int64_t sse_heartbeat_ms;   /* comment line on every stream this often */
    size_t sse_max_clients;     /* more: 503 */
    size_t sse_client_buffer;   /* unsent bytes beyond which a client is dropped */
    size_t alerts_recent;       /* transitions kept for /v1/alerts and replay */
    size_t history_days;        /* evaluated days kept per partner */
    size_t history_partners;    /* partners with a history (the first seen) */
    uint64_t first_event_id;    /* id of the first transition; 0 = wall-clock ms x 1000,
                                   so ids keep increasing across restarts */
    uint32_t surge_threshold;   /* skeleton provider: TICKET_SURGE threshold */
    uint32_t surge_window_days; /* skeleton provider: TICKET_SURGE window */
};

/* Defaults for everything but listen/token (see docs/http-api.md). */
void pp_http_conf_defaults(struct pp_http_conf *conf);
/* Defaults, then the http.* keys and the rule parameters of the service's
 * configuration (borrowed strings: conf must outlive the call to
 * pp_http_new, which copies them). */
void pp_http_conf_from_app(struct pp_http_conf *out, const struct pp_app_conf *conf);

/* ------------------------------------------------------------- provider */

#define PP_HTTP_MAX_SIGNALS 12
#define PP_HTTP_MAX_RULES   4

struct pp_http_signal {
    char name[32];
    double value; /* NAN = null */
    double risk;  /* NAN = null */
};

struct pp_http_rule {
    char rule_id[32];
    char state[16]; /* "inactive", "pending", "firing" */
    double value;
    double threshold;
    int32_t window_days;
    int32_t first_seen_day; /* INT32_MIN = none */
};

/* One partner as the API shows it. Unknown numbers are NAN (JSON null),
 * unknown counts -1, so a provider fills only what it has. */
struct pp_http_partner {
    char partner_id[PP_ID_MAX];
    double pressure; /* the sort key: CPI when known, else the provider's own 0..100+ scale */
    double cpi;
    double health;
    int band; /* -1 unknown */
    int32_t customers_touched;
    int32_t customers_firing;
    size_t n_signals;
    struct pp_http_signal signals[PP_HTTP_MAX_SIGNALS];
    size_t n_rules;
    struct pp_http_rule rules[PP_HTTP_MAX_RULES];
};

struct pp_http_provider {
    uint32_t (*count)(const void *src);
    /* idx in 0..count-1, dense and stable; 0 or -1. out is pre-cleared to
     * "unknown" by the caller. */
    int (*view)(const void *src, uint32_t idx, struct pp_http_partner *out);
    int32_t (*evaluated_day)(const void *src); /* INT32_MIN before the first */
    const void *src;
};

struct pp_model;
/* The provider over the model (processors/model/): pressure = partner CPI,
 * health, band, customers touched/firing, the partner-level signal risks
 * and the PARTNER_PRESSURE / STUFFING_PATTERN rule states. m is borrowed for
 * the server's life. Switching the API to the model is
 * `pp_http_model_provider(&p, model); pp_http_set_provider(http, &p);`. */
void pp_http_model_provider(struct pp_http_provider *out, const struct pp_model *m);

/* --------------------------------------------------------------- server */

struct pp_http;

/* Binds conf->listen on base and serves. pl (may be NULL in tests) supplies
 * metrics, readiness, alert transitions and, through the skeleton
 * provider, the partners; the server registers itself as the pipeline's
 * listener. conf is copied. NULL + errstr when the address is bad or taken. */
struct pp_http *pp_http_new(struct event_base *base, const struct pp_http_conf *conf,
                            struct pp_pipeline *pl, char *errstr, size_t errstr_size);
/* Detaches from the pipeline, closes every connection. NULL is fine. */
void pp_http_destroy(struct pp_http *h);

/* The bound port (useful with port 0). */
int pp_http_port(const struct pp_http *h);

/* Serves /v1/silences and /v1/silences/{id} (GET, POST, DELETE) through fn
 * (app/silences.c's pp_silences_http): method "GET", "POST", "DELETE" (else
 * "OTHER"), id NULL for the collection; fn returns the status and *out, a
 * malloc'd JSON document or NULL (no body). Without it those paths are 404. */
typedef int(pp_http_silences_fn)(void *opaque, const char *method, const char *id, const char *body,
                                 size_t body_len, char **out);
void pp_http_set_silences(struct pp_http *h, pp_http_silences_fn *fn, void *opaque);

/* Replaces the partner data source (copied; src borrowed for the server's
 * life). */
void pp_http_set_provider(struct pp_http *h, const struct pp_http_provider *p);

/* Records one alert transition: the recent ring, the active set and every
 * event-stream client. The pipeline listener calls it for each acknowledged
 * transition; tests may call it directly. */
void pp_http_publish_alert(struct pp_http *h, const struct pp_alert *alert);

/* Appends the evaluated day's pressure of every partner to their history
 * (called by the pipeline listener after each closed day). */
void pp_http_sample_day(struct pp_http *h, int32_t day);

#endif
