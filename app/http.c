/*
 * http.c — the HTTP API on libevent's evhttp, sharing the pipeline's loop.
 * See http.h for the contract and docs/http-api.md for the endpoints.
 *
 * Every answer is JSON (errors are {"error": "..."} with a 4xx/5xx status)
 * except /metrics (Prometheus text), the event stream and the dashboard's
 * files. Limits: request headers 8 KiB, bodies http.max_body_bytes (our own
 * JSON 413 up to four times that; past it libevent answers 413 itself
 * without reading the body), http.timeout for idle or stalled connections,
 * a bounded number of event-stream clients each with a bounded output
 * buffer. libevent 2.1 offers no hook for its own transport errors
 * (malformed request line, oversized headers or bodies past the hard cap):
 * those keep libevent's status code and its small HTML body.
 *
 * State kept here, all bounded: the last `alerts_recent` transitions (a
 * ring; they number the event stream's ids, so a reconnecting client sends
 * Last-Event-ID and gets what it missed), the active alerts (latest
 * transition FIRING or PENDING per dedup key), and a per-partner history of
 * evaluated days for the dashboard's chart.
 */
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "stage.h"
#include "http_assets.h"
#include "idmap.h"
#include "log.h"
#include "metrics.h"
#include "model.h"
#include "palloc.h"
#include "engine.h"
#include "proc.h"
#include "ptime.h"

#define MAX_ACTIVE      4096
#define MAX_HEADERS     8192
#define MAX_PAGE        1000
#define DEFAULT_PAGE    50
#define HARD_BODY_RATIO 4

struct sse_client {
    struct pp_http *h;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct sse_client *next;
};

struct recent {
    uint64_t seq;
    int64_t received_ms; /* wall clock */
    struct pp_alert alert;
};

struct hist_point {
    int32_t day;
    float pressure;
};

struct hist {
    uint32_t n, head; /* ring of conf.history_days points */
    struct hist_point *points;
};

struct skel_src {
    const struct pp_pipeline *pl;
    uint32_t threshold;
    uint32_t window_days;
};

struct pp_http {
    struct event_base *base;
    struct pp_http_conf conf;
    char listen[256];
    char token[256];
    struct evhttp *http;
    int port;
    struct pp_pipeline *pl;
    struct pp_http_provider provider;
    struct skel_src skel;

    struct recent *ring;
    size_t ring_n, ring_head; /* head: next slot to write */
    uint64_t seq;
    struct recent *active; /* latest transition per dedup key, not RESOLVED */
    size_t active_n;

    struct pp_idmap *hist_ids; /* partner id -> index into hist */
    struct hist *hist;
    size_t hist_n;

    struct sse_client *clients;
    size_t n_clients;
    struct event *heartbeat;

    struct pp_metrics *metrics;
    struct pp_metric_family *f_requests;
    struct pp_metric *m_sse_clients, *m_sse_dropped, *m_sse_events;

    pp_http_silences_fn *silences; /* /v1/silences (app/silences.c); NULL = 404 */
    void *silences_opaque;
};

void pp_http_conf_defaults(struct pp_http_conf *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->listen = "127.0.0.1:8080";
    conf->max_body_bytes = 65536;
    conf->timeout_ms = 30000;
    conf->sse_heartbeat_ms = 15000;
    conf->sse_max_clients = 64;
    conf->sse_client_buffer = 256 * 1024;
    conf->alerts_recent = 1000;
    conf->history_days = 180;
    conf->history_partners = 10000;
    conf->surge_threshold = 20;
    conf->surge_window_days = 7;
}

void pp_http_conf_from_app(struct pp_http_conf *out, const struct pp_app_conf *conf)
{
    pp_http_conf_defaults(out);
    out->listen = conf->http_listen;
    out->token = conf->http_token;
    out->max_body_bytes = conf->http_max_body_bytes;
    out->timeout_ms = conf->http_timeout_ms;
    out->surge_threshold = conf->proc.surge_threshold;
    out->surge_window_days = conf->proc.surge_window_days;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------- the skeleton provider */

static uint32_t skel_count(const void *src)
{
    const struct skel_src *s = src;
    return s->pl ? pp_proc_partner_count(pp_engine_proc(pp_pipeline_engine(s->pl))) : 0;
}

static int skel_view(const void *src, uint32_t idx, struct pp_http_partner *out)
{
    const struct skel_src *s = src;
    struct pp_proc_partner_view v;
    if (s->pl == NULL ||
        pp_proc_partner_view(pp_engine_proc(pp_pipeline_engine(s->pl)), idx, &v) != 0) {
        return -1;
    }
    snprintf(out->partner_id, sizeof(out->partner_id), "%s", v.partner_id);
    /* Until the model's CPI arrives, pressure is the TICKET_SURGE count as a
     * percentage of its threshold: 100 = at the firing threshold. */
    out->pressure = s->threshold ? 100.0 * (double)v.tickets_in_window / s->threshold : 0;
    out->n_rules = 1;
    struct pp_http_rule *r = &out->rules[0];
    snprintf(r->rule_id, sizeof(r->rule_id), "%s", "TICKET_SURGE");
    snprintf(r->state, sizeof(r->state), "%s", v.firing ? "firing" : "inactive");
    r->value = (double)v.tickets_in_window;
    r->threshold = s->threshold;
    r->window_days = (int32_t)s->window_days;
    r->first_seen_day = v.first_seen_day;
    return 0;
}

static int32_t skel_day(const void *src)
{
    const struct skel_src *s = src;
    return s->pl ? pp_proc_last_eval_day(pp_engine_proc(pp_pipeline_engine(s->pl))) : INT32_MIN;
}

/* ---------------------------------------------------- the model provider */

static uint32_t model_count(const void *src)
{
    return pp_model_partner_count(src);
}

static double risk_or_null(double r)
{
    return r < 0 ? NAN : r; /* the model's views say -1 for a null signal */
}

static void model_view_fill(const struct pp_model_partner_view *vp, struct pp_http_partner *out);

static int model_view(const void *src, uint32_t idx, struct pp_http_partner *out)
{
    struct pp_model_partner_view v;
    if (pp_model_partner_view(src, idx, &v) != 0) {
        return -1;
    }
    model_view_fill(&v, out);
    return 0;
}

/* The task runtime: the partners task's stage, when this instance holds it
 * (another instance answers for the partners otherwise: an empty list). */
static uint32_t topo_count(const void *src)
{
    const struct pp_pstage *ps = pp_pipeline_pstage(src);
    return ps ? pp_pstage_partner_count(ps) : 0;
}

static int topo_view(const void *src, uint32_t idx, struct pp_http_partner *out)
{
    const struct pp_pstage *ps = pp_pipeline_pstage(src);
    struct pp_model_partner_view v;
    if (ps == NULL || pp_pstage_partner_view(ps, idx, &v) != 0) {
        return -1;
    }
    model_view_fill(&v, out);
    return 0;
}

static int32_t topo_day(const void *src)
{
    const struct pp_pstage *ps = pp_pipeline_pstage(src);
    return ps ? pp_pstage_last_day(ps) : INT32_MIN;
}

static void model_view_fill(const struct pp_model_partner_view *vp, struct pp_http_partner *out)
{
    struct pp_model_partner_view v = *vp;
    static const char *const pp_states[] = {"inactive", "firing", "firing"};
    static const char *const st_states[] = {"inactive", "pending", "firing"};
    snprintf(out->partner_id, sizeof(out->partner_id), "%s", v.partner_id);
    out->cpi = v.cpi;
    out->pressure = v.cpi;
    out->health = v.health < 0 ? NAN : v.health;
    out->band = v.band < 0 ? -1 : v.band;
    out->customers_touched = (int32_t)v.customers_touched;
    out->customers_firing = (int32_t)v.customers_firing;
    const struct {
        const char *name;
        double risk;
    } sig[] = {{"QEC", v.r_qec}, {"DISC", v.r_disc}, {"REV", v.r_rev}, {"OVERSELL", v.r_oversell}};
    for (size_t i = 0; i < sizeof(sig) / sizeof(sig[0]); i++) {
        struct pp_http_signal *s = &out->signals[out->n_signals++];
        snprintf(s->name, sizeof(s->name), "%s", sig[i].name);
        s->value = NAN;
        s->risk = risk_or_null(sig[i].risk);
    }
    struct pp_http_rule *r = &out->rules[out->n_rules++];
    snprintf(r->rule_id, sizeof(r->rule_id), "%s", "PARTNER_PRESSURE");
    snprintf(r->state, sizeof(r->state), "%s",
             pp_states[v.pp_state >= 0 && v.pp_state < 3 ? v.pp_state : 0]);
    r->value = v.cpi;
    r->threshold = NAN;
    r->first_seen_day = INT32_MIN;
    r = &out->rules[out->n_rules++];
    snprintf(r->rule_id, sizeof(r->rule_id), "%s", "STUFFING_PATTERN");
    snprintf(r->state, sizeof(r->state), "%s",
             st_states[v.stuffing_state >= 0 && v.stuffing_state < 3 ? v.stuffing_state : 0]);
    r->value = NAN;
    r->threshold = NAN;
    r->first_seen_day = INT32_MIN;
}

static int32_t model_day(const void *src)
{
    return pp_model_last_day(src);
}

void pp_http_model_provider(struct pp_http_provider *out, const struct pp_model *m)
{
    *out = (struct pp_http_provider){model_count, model_view, model_day, m};
}

static void clear_partner(struct pp_http_partner *p)
{
    memset(p, 0, sizeof(*p));
    p->pressure = NAN;
    p->cpi = NAN;
    p->health = NAN;
    p->band = -1;
    p->customers_touched = -1;
    p->customers_firing = -1;
}

static int provider_view(const struct pp_http *h, uint32_t idx, struct pp_http_partner *out)
{
    clear_partner(out);
    return h->provider.view(h->provider.src, idx, out);
}

/* ------------------------------------------------------------ JSON bits */

/* A JSON string of s. Ids and summaries come from Kafka records and URLs,
 * i.e. from other systems, and may not be UTF-8: invalid bytes become '?'
 * rather than making the whole response fail. */
static json_t *jstr(const char *s)
{
    json_t *j = json_string(s);
    if (j) {
        return j;
    }
    size_t n = strlen(s);
    char *copy = pp_xmalloc(n + 1);
    for (size_t i = 0; i <= n; i++) {
        copy[i] = (unsigned char)s[i] >= 0x80 ? '?' : s[i];
    }
    j = json_string(copy);
    free(copy);
    return j;
}

static json_t *jnum(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *jday(int32_t day)
{
    if (day == INT32_MIN) {
        return json_null();
    }
    char buf[16];
    pp_day_format(day, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *jcount(int32_t v)
{
    return v < 0 ? json_null() : json_integer(v);
}

static json_t *partner_json(const struct pp_http_partner *p)
{
    json_t *o = json_object();
    json_object_set_new(o, "partner_id", jstr(p->partner_id));
    json_object_set_new(o, "pressure", jnum(p->pressure));
    json_object_set_new(o, "cpi", jnum(p->cpi));
    json_object_set_new(o, "health", jnum(p->health));
    json_object_set_new(o, "band", p->band < 0 ? json_null() : json_integer(p->band));
    json_object_set_new(o, "customers_touched", jcount(p->customers_touched));
    json_object_set_new(o, "customers_firing", jcount(p->customers_firing));
    json_t *sig = json_array();
    for (size_t i = 0; i < p->n_signals && i < PP_HTTP_MAX_SIGNALS; i++) {
        json_array_append_new(sig, json_pack("{s:o, s:o, s:o}", "name", jstr(p->signals[i].name),
                                             "value", jnum(p->signals[i].value), "risk",
                                             jnum(p->signals[i].risk)));
    }
    json_object_set_new(o, "signals", sig);
    json_t *rules = json_array();
    for (size_t i = 0; i < p->n_rules && i < PP_HTTP_MAX_RULES; i++) {
        const struct pp_http_rule *r = &p->rules[i];
        json_array_append_new(rules, json_pack("{s:o, s:o, s:o, s:o, s:i, s:o}", "rule_id",
                                               jstr(r->rule_id), "state", jstr(r->state), "value",
                                               jnum(r->value), "threshold", jnum(r->threshold),
                                               "window_days", (int)r->window_days, "first_seen",
                                               jday(r->first_seen_day)));
    }
    json_object_set_new(o, "rules", rules);
    return o;
}

static json_t *alert_json(const struct pp_alert *a, uint64_t seq, int64_t received_ms)
{
    json_t *o = json_object();
    json_object_set_new(o, "seq", json_integer((json_int_t)seq));
    json_object_set_new(o, "alert_id", jstr(a->alert_id));
    json_object_set_new(o, "dedup_key", jstr(a->dedup_key));
    json_object_set_new(o, "rule_id", jstr(a->rule_id));
    json_object_set_new(o, "status", json_string(pp_alert_status_name(a->status)));
    json_object_set_new(o, "severity", json_string(pp_severity_name(a->severity)));
    json_object_set_new(o, "scope", json_string(pp_scope_name(a->scope)));
    json_object_set_new(o, "tenant", jstr(a->tenant));
    json_object_set_new(o, "partner_id", jstr(a->partner_id));
    json_object_set_new(o, "customer_id", a->customer_id[0] ? jstr(a->customer_id) : json_null());
    json_object_set_new(o, "first_seen", jday(a->first_seen_day));
    json_object_set_new(o, "fired", jday(a->fired_day));
    json_object_set_new(o, "evaluated", jday(a->eval_day));
    json_object_set_new(o, "reopen_count", json_integer(a->reopen_count));
    json_object_set_new(o, "value", jnum(a->value));
    json_object_set_new(o, "threshold", jnum(a->threshold));
    json_object_set_new(o, "window_days", json_integer(a->window_days));
    json_object_set_new(o, "summary", jstr(a->summary));
    json_object_set_new(o, "received_at_ms", json_integer((json_int_t)received_ms));
    return o;
}

/* ------------------------------------------------------------ responses */

static const char *reason_phrase(int code)
{
    switch (code) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 409:
        return "Conflict";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

static void count_request(struct pp_http *h, const char *handler, int code)
{
    char c[8];
    snprintf(c, sizeof(c), "%d", code);
    const char *labels[] = {handler, c};
    pp_metric_add(pp_metrics_series(h->f_requests, labels), 1);
}

static void common_headers(struct evhttp_request *req, const char *type)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Content-Type", type);
    evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(out, "Cache-Control", "no-store");
}

static void send_body(struct pp_http *h, struct evhttp_request *req, const char *handler, int code,
                      const char *type, const char *body, size_t len)
{
    common_headers(req, type);
    struct evbuffer *buf = evbuffer_new();
    evbuffer_add(buf, body, len);
    evhttp_send_reply(req, code, reason_phrase(code), buf);
    evbuffer_free(buf);
    count_request(h, handler, code);
}

/* Steals o. */
static void send_json(struct pp_http *h, struct evhttp_request *req, const char *handler, int code,
                      json_t *o)
{
    char *text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    if (text == NULL) {
        text = pp_xstrdup("{\"error\":\"cannot render the response\"}");
        code = 500;
    }
    size_t n = strlen(text);
    char *withnl = pp_xmalloc(n + 2);
    memcpy(withnl, text, n);
    withnl[n] = '\n';
    withnl[n + 1] = '\0';
    free(text);
    send_body(h, req, handler, code, "application/json", withnl, n + 1);
    free(withnl);
}

static void send_error(struct pp_http *h, struct evhttp_request *req, const char *handler, int code,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void send_error(struct pp_http *h, struct evhttp_request *req, const char *handler, int code,
                       const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (code == 401) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"partnerpulse\"");
    }
    send_json(h, req, handler, code, json_pack("{s:o}", "error", jstr(msg)));
}

/* ------------------------------------------------------ query parameters */

/* Rejects parameters other than those in `allowed` (NULL-terminated): a typo
 * in `?sort` should not silently give the default order. */
static int check_params(struct pp_http *h, struct evhttp_request *req, const char *handler,
                        struct evkeyvalq *q, const char *const *allowed)
{
    for (struct evkeyval *kv = q->tqh_first; kv; kv = kv->next.tqe_next) {
        int ok = 0;
        for (size_t i = 0; allowed[i] && !ok; i++) {
            ok = strcmp(kv->key, allowed[i]) == 0;
        }
        if (!ok) {
            send_error(h, req, handler, 400, "unknown query parameter '%.64s'", kv->key);
            return -1;
        }
    }
    return 0;
}

/* Strict non-negative integer in [min, max]; absent = def. */
static int int_param(struct pp_http *h, struct evhttp_request *req, const char *handler,
                     struct evkeyvalq *q, const char *name, long def, long min, long max, long *out)
{
    const char *v = evhttp_find_header(q, name);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    errno = 0;
    char *end;
    long n = strtol(v, &end, 10);
    if (end == v || *end != '\0' || errno != 0 || !isdigit((unsigned char)v[0]) || n < min ||
        n > max) {
        send_error(h, req, handler, 400, "query parameter '%s' must be an integer in [%ld, %ld]",
                   name, min, max);
        return -1;
    }
    *out = n;
    return 0;
}

/* ------------------------------------------------------------- handlers */

static void h_healthz(struct pp_http *h, struct evhttp_request *req)
{
    /* Answering at all proves the loop runs; a pipeline that stopped on a
     * fatal error is about to exit and should be restarted. */
    if (h->pl && pp_pipeline_failed(h->pl)) {
        send_json(h, req, "healthz", 503,
                  json_pack("{s:s, s:s}", "status", "failed", "reason",
                            "the pipeline stopped after a fatal error"));
        return;
    }
    send_json(h, req, "healthz", 200, json_pack("{s:s}", "status", "ok"));
}

static void h_readyz(struct pp_http *h, struct evhttp_request *req)
{
    char why[256] = "no pipeline";
    int ready = h->pl && pp_pipeline_ready(h->pl, why, sizeof(why));
    if (ready) {
        send_json(h, req, "readyz", 200, json_pack("{s:s}", "status", "ready"));
    }
    else {
        send_json(h, req, "readyz", 503,
                  json_pack("{s:s, s:s}", "status", "not_ready", "reason", why));
    }
}

static void h_metrics(struct pp_http *h, struct evhttp_request *req)
{
    pp_metric_set(h->m_sse_clients, (double)h->n_clients);
    size_t a_len = 0, b_len;
    char *a = h->pl ? pp_metrics_render(pp_pipeline_metrics(h->pl), &a_len) : NULL;
    /* Counted before rendering so that this scrape appears in itself. */
    count_request(h, "metrics", 200);
    char *b = pp_metrics_render(h->metrics, &b_len);
    char *all = pp_xmalloc(a_len + b_len + 1);
    if (a) {
        memcpy(all, a, a_len);
    }
    memcpy(all + a_len, b, b_len + 1);
    common_headers(req, "text/plain; version=0.0.4; charset=utf-8");
    struct evbuffer *buf = evbuffer_new();
    evbuffer_add(buf, all, a_len + b_len);
    evhttp_send_reply(req, 200, "OK", buf);
    evbuffer_free(buf);
    free(a);
    free(b);
    free(all);
}

enum sort_key { SORT_PRESSURE, SORT_HEALTH, SORT_ID };

static int cmp_nan_last(double a, double b, int desc)
{
    int an = !isfinite(a), bn = !isfinite(b);
    if (an || bn) {
        return an - bn;
    }
    if (a == b) {
        return 0;
    }
    return (a < b) == desc ? 1 : -1;
}

static enum sort_key g_sort; /* qsort has no context argument; the loop is single-threaded */

static int cmp_partner(const void *pa, const void *pb)
{
    const struct pp_http_partner *a = pa, *b = pb;
    int c = 0;
    if (g_sort == SORT_PRESSURE) {
        c = cmp_nan_last(a->pressure, b->pressure, 1);
    }
    else if (g_sort == SORT_HEALTH) {
        c = cmp_nan_last(a->health, b->health, 0); /* least healthy first */
    }
    return c ? c : strcmp(a->partner_id, b->partner_id);
}

static void h_partners(struct pp_http *h, struct evhttp_request *req, struct evkeyvalq *q)
{
    static const char *const allowed[] = {"sort", "limit", "offset", NULL};
    long limit, offset;
    if (check_params(h, req, "partners", q, allowed) != 0 ||
        int_param(h, req, "partners", q, "limit", DEFAULT_PAGE, 1, MAX_PAGE, &limit) != 0 ||
        int_param(h, req, "partners", q, "offset", 0, 0, 1000000000, &offset) != 0) {
        return;
    }
    const char *sort = evhttp_find_header(q, "sort");
    enum sort_key key = SORT_PRESSURE;
    if (sort == NULL || strcmp(sort, "pressure") == 0) {
        sort = "pressure";
    }
    else if (strcmp(sort, "health") == 0) {
        key = SORT_HEALTH;
    }
    else if (strcmp(sort, "id") == 0) {
        key = SORT_ID;
    }
    else {
        send_error(h, req, "partners", 400,
                   "query parameter 'sort' must be pressure, health or id");
        return;
    }
    uint32_t n = h->provider.count(h->provider.src);
    struct pp_http_partner *all = pp_xmalloc((n ? n : 1) * sizeof(*all));
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (provider_view(h, i, &all[m]) == 0) {
            m++;
        }
    }
    g_sort = key;
    qsort(all, m, sizeof(*all), cmp_partner);
    json_t *list = json_array();
    for (long i = offset; i < (long)m && i < offset + limit; i++) {
        json_array_append_new(list, partner_json(&all[i]));
    }
    free(all);
    json_t *o =
        json_pack("{s:I, s:I, s:I, s:s, s:o, s:o}", "total", (json_int_t)m, "limit",
                  (json_int_t)limit, "offset", (json_int_t)offset, "sort", sort, "evaluated_day",
                  jday(h->provider.evaluated_day(h->provider.src)), "partners", list);
    send_json(h, req, "partners", 200, o);
}

static const struct hist *find_hist(const struct pp_http *h, const char *partner_id)
{
    int64_t i = pp_idmap_find(h->hist_ids, partner_id);
    return i < 0 ? NULL : &h->hist[i];
}

static void h_partner(struct pp_http *h, struct evhttp_request *req, struct evkeyvalq *q,
                      const char *enc_id)
{
    static const char *const allowed[] = {NULL};
    if (check_params(h, req, "partner", q, allowed) != 0) {
        return;
    }
    char *id = evhttp_uridecode(enc_id, 0, NULL);
    if (id == NULL || id[0] == '\0' || strlen(id) >= PP_ID_MAX) {
        send_error(h, req, "partner", 400, "bad partner id");
        free(id);
        return;
    }
    uint32_t n = h->provider.count(h->provider.src);
    struct pp_http_partner p;
    int found = 0;
    for (uint32_t i = 0; i < n && !found; i++) {
        found = provider_view(h, i, &p) == 0 && strcmp(p.partner_id, id) == 0;
    }
    if (!found) {
        send_error(h, req, "partner", 404, "no partner '%s' in this instance", id);
        free(id);
        return;
    }
    json_t *o = partner_json(&p);
    json_object_set_new(o, "evaluated_day", jday(h->provider.evaluated_day(h->provider.src)));
    json_t *hist = json_array();
    const struct hist *hs = find_hist(h, id);
    for (uint32_t i = 0; hs && i < hs->n; i++) {
        size_t cap = h->conf.history_days;
        const struct hist_point *pt = &hs->points[(hs->head + cap - hs->n + i) % cap];
        json_array_append_new(
            hist, json_pack("{s:o, s:o}", "day", jday(pt->day), "pressure", jnum(pt->pressure)));
    }
    json_object_set_new(o, "history", hist);
    json_t *active = json_array();
    for (size_t i = 0; i < h->active_n; i++) {
        const struct recent *r = &h->active[i];
        if (strcmp(r->alert.partner_id, id) == 0) {
            json_array_append_new(active, alert_json(&r->alert, r->seq, r->received_ms));
        }
    }
    json_object_set_new(o, "active_alerts", active);
    free(id);
    send_json(h, req, "partner", 200, o);
}

static const struct recent *ring_at(const struct pp_http *h, size_t i) /* 0 = oldest */
{
    size_t cap = h->conf.alerts_recent;
    return &h->ring[(h->ring_head + cap - h->ring_n + i) % cap];
}

static void h_alerts(struct pp_http *h, struct evhttp_request *req, struct evkeyvalq *q)
{
    static const char *const allowed[] = {"limit", "partner", NULL};
    long limit;
    if (check_params(h, req, "alerts", q, allowed) != 0 ||
        int_param(h, req, "alerts", q, "limit", 100, 1, MAX_PAGE, &limit) != 0) {
        return;
    }
    const char *partner = evhttp_find_header(q, "partner");
    json_t *active = json_array();
    for (size_t i = 0; i < h->active_n; i++) {
        const struct recent *r = &h->active[i];
        if (partner == NULL || strcmp(r->alert.partner_id, partner) == 0) {
            json_array_append_new(active, alert_json(&r->alert, r->seq, r->received_ms));
        }
    }
    json_t *recent = json_array();
    for (size_t i = h->ring_n; i-- > 0 && (long)json_array_size(recent) < limit;) {
        const struct recent *r = ring_at(h, i);
        if (partner == NULL || strcmp(r->alert.partner_id, partner) == 0) {
            json_array_append_new(recent, alert_json(&r->alert, r->seq, r->received_ms));
        }
    }
    send_json(h, req, "alerts", 200,
              json_pack("{s:o, s:o, s:I}", "active", active, "recent", recent, "recent_capacity",
                        (json_int_t)h->conf.alerts_recent));
}

/* ----------------------------------------------------- server-sent events */

static void sse_remove(struct pp_http *h, struct sse_client *c)
{
    for (struct sse_client **pp = &h->clients; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            h->n_clients--;
            free(c);
            return;
        }
    }
}

static void on_sse_close(struct evhttp_connection *evcon, void *arg)
{
    struct sse_client *c = arg;
    (void)evcon;
    pp_log(PP_LOG_DEBUG, "msg=\"event stream client left\"");
    /* When the client went away (EOF, error) libevent 2.1 detaches a request
     * whose reply is still streaming instead of freeing it, and leaves it to
     * us; when the connection is freed for any other reason the request is
     * still attached and libevent frees it with the connection. */
    if (evhttp_request_get_connection(c->req) == NULL) {
        evhttp_request_free(c->req);
    }
    sse_remove(c->h, c);
}

/* Queues text for one client, or drops the client when its unsent output
 * passed the bound: a reader that stalls must cost bounded memory and never
 * hold up the loop. Returns -1 when the client was dropped (c is freed). */
static int sse_write(struct sse_client *c, const char *text, size_t len)
{
    struct pp_http *h = c->h;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
    size_t pending = evbuffer_get_length(bufferevent_get_output(bev));
    if (pending + len > h->conf.sse_client_buffer) {
        pp_log(PP_LOG_WARN, "msg=\"event stream client too slow, dropped\" pending_bytes=%zu",
               pending);
        pp_metric_add(h->m_sse_dropped, 1);
        struct evhttp_connection *evcon = c->evcon;
        evhttp_connection_set_closecb(evcon, NULL, NULL);
        sse_remove(h, c);
        evhttp_connection_free(evcon);
        return -1;
    }
    struct evbuffer *buf = evbuffer_new();
    evbuffer_add(buf, text, len);
    evhttp_send_reply_chunk(c->req, buf);
    evbuffer_free(buf);
    return 0;
}

static char *sse_frame_of(const struct recent *r, size_t *len)
{
    json_t *o = alert_json(&r->alert, r->seq, r->received_ms);
    char *data = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    if (data == NULL) {
        return NULL;
    }
    size_t n = strlen(data) + 64;
    char *frame = pp_xmalloc(n);
    int w = snprintf(frame, n, "id: %llu\nevent: alert\ndata: %s\n\n", (unsigned long long)r->seq,
                     data);
    free(data);
    *len = (size_t)w;
    return frame;
}

static void h_stream(struct pp_http *h, struct evhttp_request *req, struct evkeyvalq *q)
{
    static const char *const allowed[] = {NULL};
    if (check_params(h, req, "stream", q, allowed) != 0) {
        return;
    }
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        /* The headers a GET would get, and no stream to hold open. */
        send_body(h, req, "stream", 200, "text/event-stream", "", 0);
        return;
    }
    if (h->n_clients >= h->conf.sse_max_clients) {
        send_error(h, req, "stream", 503, "too many event-stream clients (limit %zu)",
                   h->conf.sse_max_clients);
        return;
    }
    /* Replay what a reconnecting client missed, from the recent ring. */
    uint64_t last = 0;
    const char *lei = evhttp_find_header(evhttp_request_get_input_headers(req), "Last-Event-ID");
    if (lei) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(lei, &end, 10);
        if (end == lei || *end != '\0' || errno != 0) {
            send_error(h, req, "stream", 400, "Last-Event-ID must be an event id of this stream");
            return;
        }
        last = v;
    }
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Content-Type", "text/event-stream");
    evhttp_add_header(out, "Cache-Control", "no-store");
    evhttp_add_header(out, "X-Accel-Buffering", "no");
    evhttp_send_reply_start(req, 200, "OK");
    count_request(h, "stream", 200);

    struct sse_client *c = pp_xcalloc(1, sizeof(*c));
    c->h = h;
    c->req = req;
    c->evcon = evhttp_request_get_connection(req);
    c->next = h->clients;
    h->clients = c;
    h->n_clients++;
    evhttp_connection_set_closecb(c->evcon, on_sse_close, c);
    /* A stream is quiet by nature: no read timeout (the client sends
     * nothing), but a write that stalls for http.timeout still ends it. */
    struct timeval wt = {(time_t)(h->conf.timeout_ms / 1000),
                         (suseconds_t)(h->conf.timeout_ms % 1000) * 1000};
    bufferevent_set_timeouts(evhttp_connection_get_bufferevent(c->evcon), NULL, &wt);

    static const char hello[] = "retry: 3000\n: partnerpulse alert stream\n\n";
    if (sse_write(c, hello, sizeof(hello) - 1) != 0) {
        return;
    }
    for (size_t i = 0; lei && i < h->ring_n; i++) {
        const struct recent *r = ring_at(h, i);
        if (r->seq <= last) {
            continue;
        }
        size_t len;
        char *frame = sse_frame_of(r, &len);
        int rc = frame ? sse_write(c, frame, len) : 0;
        free(frame);
        if (rc != 0) {
            return;
        }
    }
}

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    struct pp_http *h = arg;
    (void)fd;
    (void)what;
    char line[64];
    int n = snprintf(line, sizeof(line), ": heartbeat %lld\n\n", (long long)(wall_ms() / 1000));
    for (struct sse_client *c = h->clients, *next; c; c = next) {
        next = c->next;
        sse_write(c, line, (size_t)n);
    }
}

/* ------------------------------------------------------- alert bookkeeping */

void pp_http_publish_alert(struct pp_http *h, const struct pp_alert *alert)
{
    size_t cap = h->conf.alerts_recent;
    struct recent *r = &h->ring[h->ring_head];
    r->seq = ++h->seq;
    r->received_ms = wall_ms();
    r->alert = *alert;
    h->ring_head = (h->ring_head + 1) % cap;
    if (h->ring_n < cap) {
        h->ring_n++;
    }

    size_t i = 0;
    while (i < h->active_n && strcmp(h->active[i].alert.dedup_key, alert->dedup_key) != 0) {
        i++;
    }
    if (alert->status == PP_ALERT_RESOLVED) {
        if (i < h->active_n) {
            h->active[i] = h->active[--h->active_n];
        }
    }
    else if (i < h->active_n) {
        h->active[i] = *r;
    }
    else if (h->active_n < MAX_ACTIVE) {
        h->active[h->active_n++] = *r;
    }
    else {
        pp_log(PP_LOG_WARN, "msg=\"active alert table full; not listed\" alert_id=%s",
               alert->alert_id);
    }

    size_t len;
    char *frame = sse_frame_of(r, &len);
    if (frame == NULL) {
        return;
    }
    for (struct sse_client *c = h->clients, *next; c; c = next) {
        next = c->next;
        if (sse_write(c, frame, len) == 0) {
            pp_metric_add(h->m_sse_events, 1);
        }
    }
    free(frame);
}

void pp_http_sample_day(struct pp_http *h, int32_t day)
{
    uint32_t n = h->provider.count(h->provider.src);
    size_t cap = h->conf.history_days;
    for (uint32_t idx = 0; idx < n; idx++) {
        struct pp_http_partner p;
        if (provider_view(h, idx, &p) != 0 || (h->hist_n >= h->conf.history_partners &&
                                               pp_idmap_find(h->hist_ids, p.partner_id) < 0)) {
            continue;
        }
        /* By id, not by the provider's index: the model's indexes follow the
         * id order and shift when a partner is added. */
        bool created;
        uint32_t hi = pp_idmap_intern(h->hist_ids, p.partner_id, &created);
        if (created) {
            h->hist = pp_xrealloc(h->hist, (h->hist_n + 1) * sizeof(*h->hist));
            h->hist[h->hist_n] = (struct hist){0, 0, pp_xcalloc(cap, sizeof(struct hist_point))};
            h->hist_n++;
        }
        struct hist *hs = &h->hist[hi];
        hs->points[hs->head] = (struct hist_point){day, (float)p.pressure};
        hs->head = (uint32_t)((hs->head + 1) % cap);
        if (hs->n < cap) {
            hs->n++;
        }
    }
}

static void on_delivered(const struct pp_alert *alert, void *opaque)
{
    pp_http_publish_alert(opaque, alert);
}

static void on_day(int32_t day, void *opaque)
{
    pp_http_sample_day(opaque, day);
}

/* /v1/silences[/{id}]: the body goes to the silences module, which answers
 * with a status and a JSON document (app/silences.c). */
static void h_silences(struct pp_http *h, struct evhttp_request *req, const char *id)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const char *method = cmd == EVHTTP_REQ_GET      ? "GET"
                         : cmd == EVHTTP_REQ_POST   ? "POST"
                         : cmd == EVHTTP_REQ_DELETE ? "DELETE"
                                                    : "OTHER";
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, (ev_ssize_t)len) : "";
    char *out = NULL;
    int code = h->silences(h->silences_opaque, method, id, body, len, &out);
    if (code == 405) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          id ? "GET, DELETE" : "GET, POST");
    }
    if (out == NULL) {
        common_headers(req, "application/json");
        evhttp_send_reply(req, code, reason_phrase(code), NULL);
        count_request(h, "silences", code);
        return;
    }
    send_body(h, req, "silences", code, "application/json", out, strlen(out));
    free(out);
}

/* ----------------------------------------------------------------- router */

static int authorized(const struct pp_http *h, struct evhttp_request *req)
{
    if (h->token[0] == '\0') {
        return 1;
    }
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0) {
        return 0;
    }
    const char *given = auth + 7;
    size_t gl = strlen(given), tl = strlen(h->token);
    /* Constant time in the token's content: no early exit on a mismatch. */
    unsigned char diff = gl != tl;
    for (size_t i = 0; i < tl; i++) {
        diff |= (unsigned char)(h->token[i] ^ (i < gl ? given[i] : 0));
    }
    return diff == 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct pp_http *h = arg;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (path == NULL || path[0] != '/') {
        send_error(h, req, "other", 400, "bad request target");
        return;
    }
    pp_log(PP_LOG_DEBUG, "msg=\"http request\" method=%d path=\"%.200s\"", (int)cmd, path);
    int silences_path = h->silences && (strcmp(path, "/v1/silences") == 0 ||
                                        (strncmp(path, "/v1/silences/", 13) == 0 &&
                                         path[13] != '\0' && strchr(path + 13, '/') == NULL));
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD && !silences_path) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        send_error(h, req, "other", 405, "method not allowed: this API is read-only (GET, HEAD)");
        return;
    }
    if (evbuffer_get_length(evhttp_request_get_input_buffer(req)) > h->conf.max_body_bytes) {
        send_error(h, req, "other", 413, "request body larger than http.max_body_bytes (%zu)",
                   h->conf.max_body_bytes);
        return;
    }
    if (strcmp(path, "/healthz") == 0) {
        h_healthz(h, req);
        return;
    }
    if (strcmp(path, "/readyz") == 0) {
        h_readyz(h, req);
        return;
    }
    /* The dashboard's static files carry no data: open, so a browser can load
     * the page that then asks for the token. */
    for (const struct pp_http_asset *a = pp_http_assets; a->path; a++) {
        if (strcmp(path, a->path) == 0) {
            struct evkeyvalq *out = evhttp_request_get_output_headers(req);
            evhttp_add_header(out, "Content-Security-Policy",
                              "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
            send_body(h, req, "dashboard", 200, a->content_type, (const char *)a->data, a->len);
            return;
        }
    }
    if (!authorized(h, req)) {
        send_error(h, req, "other", 401,
                   "missing or wrong bearer token (Authorization: Bearer ...)");
        return;
    }
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    const char *query = evhttp_uri_get_query(uri);
    if (query && evhttp_parse_query_str(query, &q) != 0) {
        send_error(h, req, "other", 400, "malformed query string");
        evhttp_clear_headers(&q);
        return;
    }
    static const char *const none[] = {NULL};
    if (strcmp(path, "/metrics") == 0) {
        if (check_params(h, req, "metrics", &q, none) == 0) {
            h_metrics(h, req);
        }
    }
    else if (strcmp(path, "/v1/partners") == 0) {
        h_partners(h, req, &q);
    }
    else if (strncmp(path, "/v1/partners/", 13) == 0 && path[13] != '\0' &&
             strchr(path + 13, '/') == NULL) {
        h_partner(h, req, &q, path + 13);
    }
    else if (strcmp(path, "/v1/alerts") == 0) {
        h_alerts(h, req, &q);
    }
    else if (strcmp(path, "/v1/stream") == 0) {
        h_stream(h, req, &q);
    }
    else if (silences_path) {
        h_silences(h, req, path[12] == '/' ? path + 13 : NULL);
    }
    else {
        send_error(h, req, "other", 404, "no such endpoint: %.200s (see docs/http-api.md)", path);
    }
    evhttp_clear_headers(&q);
}

/* ---------------------------------------------------------- construction */

/* libevent's own messages (evhttp's included) in our log format instead of
 * its bare stderr lines. Process-wide; set by the first server. */
static void libevent_log(int severity, const char *msg)
{
    enum pp_log_level l = severity >= EVENT_LOG_ERR    ? PP_LOG_ERROR
                          : severity >= EVENT_LOG_WARN ? PP_LOG_WARN
                          : severity >= EVENT_LOG_MSG  ? PP_LOG_INFO
                                                       : PP_LOG_DEBUG;
    pp_log(l, "component=libevent msg=\"%s\"", msg);
}

/* "host:port", "[v6]:port". */
static int parse_listen(const char *s, char *host, size_t host_size, int *port)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s) {
        return -1;
    }
    const char *h0 = s, *h1 = colon;
    if (s[0] == '[') {
        if (colon[-1] != ']') {
            return -1;
        }
        h0 = s + 1;
        h1 = colon - 1;
    }
    size_t hl = (size_t)(h1 - h0);
    if (hl == 0 || hl >= host_size) {
        return -1;
    }
    memcpy(host, h0, hl);
    host[hl] = '\0';
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || errno != 0 || p < 0 || p > 65535) {
        return -1;
    }
    *port = (int)p;
    return 0;
}

struct pp_http *pp_http_new(struct event_base *base, const struct pp_http_conf *conf,
                            struct pp_pipeline *pl, char *errstr, size_t errstr_size)
{
    struct pp_http *h = pp_xcalloc(1, sizeof(*h));
    h->base = base;
    h->conf = *conf;
    snprintf(h->listen, sizeof(h->listen), "%s", conf->listen ? conf->listen : "127.0.0.1:8080");
    snprintf(h->token, sizeof(h->token), "%s", conf->token ? conf->token : "");
    h->conf.listen = h->listen;
    h->conf.token = h->token;
    if (h->conf.alerts_recent == 0) {
        h->conf.alerts_recent = 1;
    }
    if (h->conf.history_days == 0) {
        h->conf.history_days = 1;
    }
    h->pl = pl;
    /* Event ids start from the clock: a client that reconnects to a
     * restarted process with an older Last-Event-ID then replays everything
     * the new process holds instead of skipping its first ids. 1000 ids per
     * millisecond of the previous run's uptime; within JavaScript's 2^53. */
    h->seq = conf->first_event_id ? conf->first_event_id - 1 : (uint64_t)wall_ms() * 1000;
    h->ring = pp_xcalloc(h->conf.alerts_recent, sizeof(*h->ring));
    h->hist_ids = pp_idmap_new();
    h->active = pp_xcalloc(MAX_ACTIVE, sizeof(*h->active));
    h->skel = (struct skel_src){pl, conf->surge_threshold, conf->surge_window_days};
    h->provider = (struct pp_http_provider){skel_count, skel_view, skel_day, &h->skel};
    /* The partner data comes from whichever engine the pipeline runs. */
    struct pp_model *model = pl ? pp_engine_model(pp_pipeline_engine(pl)) : NULL;
    if (pl && pp_pipeline_tasks(pl)) {
        h->provider = (struct pp_http_provider){topo_count, topo_view, topo_day, pl};
    }
    else if (model) {
        pp_http_model_provider(&h->provider, model);
    }

    h->metrics = pp_metrics_new();
    static const char *const req_l[] = {"handler", "code"};
    h->f_requests =
        pp_metrics_family(h->metrics, PP_METRIC_COUNTER, "partnerpulse_http_requests_total",
                          "HTTP requests answered, by handler and status code.", req_l, 2, NULL, 0);
    h->m_sse_clients = pp_metrics_series(
        pp_metrics_family(h->metrics, PP_METRIC_GAUGE, "partnerpulse_http_stream_clients",
                          "Clients connected to /v1/stream.", NULL, 0, NULL, 0),
        NULL);
    h->m_sse_events = pp_metrics_series(
        pp_metrics_family(h->metrics, PP_METRIC_COUNTER, "partnerpulse_http_stream_events_total",
                          "Alert events queued to /v1/stream clients.", NULL, 0, NULL, 0),
        NULL);
    h->m_sse_dropped = pp_metrics_series(
        pp_metrics_family(h->metrics, PP_METRIC_COUNTER, "partnerpulse_http_stream_dropped_total",
                          "/v1/stream clients dropped for not reading fast enough.", NULL, 0, NULL,
                          0),
        NULL);

    char host[256];
    int port;
    if (parse_listen(h->listen, host, sizeof(host), &port) != 0) {
        snprintf(errstr, errstr_size, "http.listen '%s' is not HOST:PORT (port 0..65535)",
                 h->listen);
        goto fail;
    }
    event_set_log_callback(libevent_log);
    h->http = evhttp_new(base);
    if (h->http == NULL) {
        snprintf(errstr, errstr_size, "cannot create the HTTP server");
        goto fail;
    }
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_max_headers_size(h->http, MAX_HEADERS);
    evhttp_set_max_body_size(h->http, (ev_ssize_t)(h->conf.max_body_bytes * HARD_BODY_RATIO));
    struct timeval tv = {(time_t)(h->conf.timeout_ms / 1000),
                         (suseconds_t)(h->conf.timeout_ms % 1000) * 1000};
    evhttp_set_timeout_tv(h->http, &tv);
    evhttp_set_gencb(h->http, on_request, h);
    struct evhttp_bound_socket *bound =
        evhttp_bind_socket_with_handle(h->http, host, (ev_uint16_t)port);
    if (bound == NULL) {
        snprintf(errstr, errstr_size, "http.listen '%s': cannot bind: %s", h->listen,
                 strerror(errno));
        goto fail;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sl) == 0) {
        h->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    h->heartbeat = event_new(base, -1, EV_PERSIST, on_heartbeat, h);
    struct timeval hb = {(time_t)(h->conf.sse_heartbeat_ms / 1000),
                         (suseconds_t)(h->conf.sse_heartbeat_ms % 1000) * 1000};
    event_add(h->heartbeat, &hb);
    if (pl) {
        struct pp_pipeline_listener l = {on_delivered, on_day, h};
        pp_pipeline_set_listener(pl, &l);
    }
    if (port == 0) {
        /* An ephemeral port is useless unless told: logged whatever the level. */
        pp_log_write(PP_LOG_INFO, "msg=\"http listening\" address=%s port=%d auth=%s", host,
                     h->port, h->token[0] ? "bearer" : "none");
    }
    else {
        pp_log(PP_LOG_INFO, "msg=\"http listening\" address=%s port=%d auth=%s", host, h->port,
               h->token[0] ? "bearer" : "none");
    }
    return h;
fail:
    pp_http_destroy(h);
    return NULL;
}

void pp_http_destroy(struct pp_http *h)
{
    if (h == NULL) {
        return;
    }
    if (h->pl) {
        pp_pipeline_set_listener(h->pl, NULL);
    }
    if (h->heartbeat) {
        event_free(h->heartbeat);
    }
    /* evhttp_free closes every connection; the stream clients' close
     * callbacks must not run into freed state. */
    for (struct sse_client *c = h->clients; c; c = c->next) {
        evhttp_connection_set_closecb(c->evcon, NULL, NULL);
    }
    while (h->clients) {
        struct sse_client *c = h->clients;
        h->clients = c->next;
        free(c);
    }
    if (h->http) {
        evhttp_free(h->http);
    }
    for (size_t i = 0; i < h->hist_n; i++) {
        free(h->hist[i].points);
    }
    free(h->hist);
    pp_idmap_destroy(h->hist_ids);
    free(h->ring);
    free(h->active);
    pp_metrics_destroy(h->metrics);
    free(h);
}

int pp_http_port(const struct pp_http *h)
{
    return h->port;
}

void pp_http_set_silences(struct pp_http *h, pp_http_silences_fn *fn, void *opaque)
{
    h->silences = fn;
    h->silences_opaque = opaque;
}

void pp_http_set_provider(struct pp_http *h, const struct pp_http_provider *p)
{
    h->provider = *p;
}
