/*
 * webhook.c — alert notifications to HTTP subscribers. See webhook.h and
 * docs/webhooks.md.
 *
 * Why a consumer of our own alerts topic rather than a hook in the
 * pipeline: the topic is the durable record of every transition, so reading
 * it with a separate group and committing only after delivery makes
 * notifications survive crashes and restarts without any state of ours.
 *
 * Flow: the consumer queue wakes the loop through a pipe (as consumer.c
 * does); we take ONE record at a time (the next is polled only when the
 * current one is finished), decode it, and start one delivery per matching
 * subscriber. A delivery is a libcurl easy handle on the shared multi handle,
 * whose sockets and timer are libevent events (curl_multi_socket_action), so
 * nothing blocks the loop. A failed attempt is retried after a backoff timer
 * (1 s doubling to 60 s); after max_attempts, or on a 4xx other than 408/429
 * (a request the receiver will never accept), the notification is written to
 * the log at level=error and given up. When every delivery of the record is
 * finished its offset is committed.
 */
#include "webhook.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "log.h"
#include "palloc.h"
#include "pipeline.h"

#define BACKOFF_FIRST_MS   1000
#define BACKOFF_MAX_MS     60000
#define REQUEST_TIMEOUT_MS 10000
#define CONNECT_TIMEOUT_MS 5000
#define MS_PER_DAY         INT64_C(86400000)

/* ------------------------------------------------------------ decoding */

struct rd {
    const unsigned char *p, *end;
};

static int rd_long(struct rd *r, int64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) {
            return -1;
        }
        unsigned char b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return 0;
        }
    }
    return -1;
}

static int rd_int(struct rd *r, int32_t *out)
{
    int64_t v;
    if (rd_long(r, &v) != 0 || v < INT32_MIN || v > INT32_MAX) {
        return -1;
    }
    *out = (int32_t)v;
    return 0;
}

/* A string into a fixed buffer (dst NULL: *heap gets a malloc'd copy). */
static int rd_str(struct rd *r, char *dst, size_t cap, char **heap)
{
    int64_t n;
    if (rd_long(r, &n) != 0 || n < 0 || n > r->end - r->p) {
        return -1;
    }
    if (heap) {
        *heap = pp_xmalloc((size_t)n + 1);
        memcpy(*heap, r->p, (size_t)n);
        (*heap)[n] = '\0';
    }
    else {
        if ((size_t)n >= cap) {
            return -1;
        }
        memcpy(dst, r->p, (size_t)n);
        dst[n] = '\0';
    }
    r->p += n;
    return 0;
}

/* ["null", "string"] */
static int rd_opt_str(struct rd *r, char *dst, size_t cap)
{
    int64_t branch;
    if (rd_long(r, &branch) != 0) {
        return -1;
    }
    if (branch == 0) {
        dst[0] = '\0';
        return 0;
    }
    return branch == 1 ? rd_str(r, dst, cap, NULL) : -1;
}

static int rd_double(struct rd *r, double *out)
{
    if (r->end - r->p < 8) {
        return -1;
    }
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--) {
        u = (u << 8) | r->p[i];
    }
    r->p += 8;
    memcpy(out, &u, sizeof(*out));
    return 0;
}

static int rd_enum(struct rd *r, int32_t nsym, int32_t *out)
{
    return rd_int(r, out) != 0 || *out < 0 || *out >= nsym ? -1 : 0;
}

void pp_webhook_alert_clear(struct pp_webhook_alert *wa)
{
    free(wa->details_json);
    wa->details_json = NULL;
}

int pp_webhook_decode_alert(const void *buf, size_t len, struct pp_webhook_alert *wa, char *errstr,
                            size_t errstr_size)
{
    memset(wa, 0, sizeof(*wa));
    const unsigned char *b = buf;
    if (len < 5 || b[0] != 0) {
        snprintf(errstr, errstr_size, "not a Confluent wire-format record");
        return -1;
    }
    /* The producer always writes schemas/alert.avsc (whatever id the
     * registry gave it), so the field order is known. */
    struct rd r = {b + 5, b + len};
    struct pp_alert *a = &wa->a;
    char model_version[64], parent[PP_ALERT_ID_MAX];
    int32_t status, severity, scope;
    double value, threshold;
    if (rd_str(&r, a->alert_id, sizeof(a->alert_id), NULL) ||
        rd_str(&r, a->dedup_key, sizeof(a->dedup_key), NULL) ||
        rd_str(&r, a->rule_id, sizeof(a->rule_id), NULL) ||
        rd_str(&r, model_version, sizeof(model_version), NULL) || rd_enum(&r, 3, &status) ||
        rd_enum(&r, 3, &severity) || rd_enum(&r, 2, &scope) ||
        rd_str(&r, a->tenant, sizeof(a->tenant), NULL) ||
        rd_str(&r, a->partner_id, sizeof(a->partner_id), NULL) ||
        rd_opt_str(&r, a->customer_id, sizeof(a->customer_id)) || rd_long(&r, &wa->first_seen_ms) ||
        rd_long(&r, &wa->fired_ms) || rd_long(&r, &wa->evaluated_ms) ||
        rd_int(&r, &a->reopen_count) || rd_opt_str(&r, parent, sizeof(parent)) ||
        rd_double(&r, &value) || rd_double(&r, &threshold) || rd_int(&r, &a->window_days) ||
        rd_str(&r, a->summary, sizeof(a->summary), NULL) ||
        rd_str(&r, NULL, 0, &wa->details_json) || r.p != r.end) {
        pp_webhook_alert_clear(wa);
        snprintf(errstr, errstr_size, "malformed alert record (%zu bytes)", len);
        return -1;
    }
    a->status = (enum pp_alert_status)status;
    a->severity = (enum pp_severity)severity;
    a->scope = (enum pp_scope)scope;
    a->value = value;
    a->threshold = threshold;
    snprintf(a->parent_alert_id, sizeof(a->parent_alert_id), "%s", parent);
    a->first_seen_day = (int32_t)(wa->first_seen_ms / MS_PER_DAY);
    a->fired_day = (int32_t)(wa->fired_ms / MS_PER_DAY);
    a->eval_day = (int32_t)(wa->evaluated_ms / MS_PER_DAY);
    return 0;
}

/* ------------------------------------------------------------ filters */

int pp_webhook_matches(const struct pp_webhook_sub_conf *sub, const struct pp_webhook_alert *wa)
{
    if (wa->a.status == PP_ALERT_PENDING || (uint32_t)wa->a.severity < sub->min_severity) {
        return 0;
    }
    if (sub->rules[0] == '\0') {
        return 1;
    }
    size_t rl = strlen(wa->a.rule_id);
    for (const char *p = sub->rules; *p;) {
        p += strspn(p, " ,");
        size_t n = strcspn(p, ",");
        size_t t = n;
        while (t > 0 && p[t - 1] == ' ') {
            t--;
        }
        if (t == rl && rl > 0 && memcmp(p, wa->a.rule_id, rl) == 0) {
            return 1;
        }
        p += n;
    }
    return 0;
}

/* ------------------------------------------------------------ payload */

void pp_webhook_fingerprint(const char *dedup_key, char out[17])
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (const unsigned char *p = (const unsigned char *)dedup_key; *p; p++) {
        h ^= *p;
        h *= UINT64_C(1099511628211);
    }
    snprintf(out, 17, "%016" PRIx64, h);
}

static void rfc3339(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(((ms % 1000) + 1000) % 1000));
}

static const char *severity_label(enum pp_severity s)
{
    return s == PP_SEV_CRITICAL ? "critical" : s == PP_SEV_WARNING ? "warning" : "info";
}

static json_t *labels_of(const struct pp_webhook_alert *wa)
{
    json_t *l = json_object();
    json_object_set_new(l, "alertname", json_string(wa->a.rule_id));
    json_object_set_new(l, "severity", json_string(severity_label(wa->a.severity)));
    json_object_set_new(l, "partner", json_string(wa->a.partner_id));
    if (wa->a.customer_id[0]) {
        json_object_set_new(l, "customer", json_string(wa->a.customer_id));
    }
    json_object_set_new(l, "tenant", json_string(wa->a.tenant));
    return l;
}

static json_t *annotations_of(const struct pp_webhook_alert *wa)
{
    json_t *an = json_object();
    json_object_set_new(an, "summary", json_string(wa->a.summary));
    json_object_set_new(an, "alert_id", json_string(wa->a.alert_id));
    /* The runbook hint lives in the explanation (schemas/alert_json.c). */
    json_t *d = wa->details_json ? json_loads(wa->details_json, 0, NULL) : NULL;
    json_t *hint = json_object_get(json_object_get(d, "runbook"), "hint");
    if (json_is_string(hint)) {
        json_object_set_new(an, "runbook", json_string(json_string_value(hint)));
    }
    json_decref(d);
    json_object_set_new(an, "details", json_string(wa->details_json ? wa->details_json : "{}"));
    return an;
}

char *pp_webhook_payload(const struct pp_webhook_alert *wa, const char *receiver,
                         const char *external_url)
{
    const char *status = wa->a.status == PP_ALERT_RESOLVED ? "resolved" : "firing";
    char fp[17], starts[32], ends[32];
    pp_webhook_fingerprint(wa->a.dedup_key, fp);
    rfc3339(wa->fired_ms ? wa->fired_ms : wa->first_seen_ms, starts);
    if (wa->a.status == PP_ALERT_RESOLVED) {
        rfc3339(wa->evaluated_ms + MS_PER_DAY, ends); /* the end of the day that resolved it */
    }
    else {
        snprintf(ends, sizeof(ends), "0001-01-01T00:00:00Z"); /* Alertmanager's "not ended" */
    }
    char *esc = curl_easy_escape(NULL, wa->a.partner_id, 0);
    size_t glen = strlen(external_url) + strlen(esc ? esc : "") + 32;
    char *gen = pp_xmalloc(glen);
    snprintf(gen, glen, "%s/v1/partners/%s", external_url, esc ? esc : "");
    curl_free(esc);

    json_t *alert = json_object();
    json_object_set_new(alert, "status", json_string(status));
    json_object_set_new(alert, "labels", labels_of(wa));
    json_object_set_new(alert, "annotations", annotations_of(wa));
    json_object_set_new(alert, "startsAt", json_string(starts));
    json_object_set_new(alert, "endsAt", json_string(ends));
    json_object_set_new(alert, "generatorURL", json_string(gen));
    json_object_set_new(alert, "fingerprint", json_string(fp));
    free(gen);

    json_t *group = json_object();
    json_object_set_new(group, "alertname", json_string(wa->a.rule_id));
    json_object_set_new(group, "partner", json_string(wa->a.partner_id));
    char *gk_labels = json_dumps(group, JSON_COMPACT | JSON_SORT_KEYS);
    size_t gklen = strlen(receiver) + (gk_labels ? strlen(gk_labels) : 0) + 16;
    char *gk = pp_xmalloc(gklen);
    snprintf(gk, gklen, "{}/%s:%s", receiver, gk_labels ? gk_labels : "{}");
    free(gk_labels);

    json_t *root = json_object();
    json_object_set_new(root, "version", json_string("4"));
    json_object_set_new(root, "groupKey", json_string(gk));
    json_object_set_new(root, "truncatedAlerts", json_integer(0));
    json_object_set_new(root, "status", json_string(status));
    json_object_set_new(root, "receiver", json_string(receiver));
    json_object_set_new(root, "groupLabels", group);
    json_object_set_new(root, "commonLabels", labels_of(wa));
    json_object_set_new(root, "commonAnnotations", annotations_of(wa));
    json_object_set_new(root, "externalURL", json_string(external_url));
    json_t *alerts = json_array();
    json_array_append_new(alerts, alert);
    json_object_set_new(root, "alerts", alerts);
    free(gk);
    char *out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return out;
}

/* ------------------------------------------------------------ the notifier */

struct delivery {
    struct pp_webhook *wh;
    size_t sub; /* index into wh->subs */
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    struct event *retry;
    uint32_t attempts;
    int done;
    char err[CURL_ERROR_SIZE];
};

struct pp_webhook {
    struct event_base *base;
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;
    int pipe_fds[2];
    struct event *ev_queue;
    CURLM *multi;
    struct event *ev_timer; /* libcurl's timeout */
    struct pp_webhook_sub_conf subs[PP_WEBHOOK_MAX];
    size_t subs_n;
    char external_url[PP_CONF_STR_MAX];
    pp_webhook_mute_fn *mute;
    void *mute_opaque;
    /* The record in flight. */
    rd_kafka_message_t *rkm;
    struct pp_webhook_alert cur;
    struct delivery dl[PP_WEBHOOK_MAX];
    size_t dl_n;
    size_t dl_pending;
    struct pp_webhook_stats stats;
};

static void finish_record(struct pp_webhook *wh)
{
    rd_kafka_resp_err_t err = rd_kafka_commit_message(wh->rk, wh->rkm, 1);
    if (err) {
        pp_log(PP_LOG_WARN,
               "msg=\"webhook offset commit failed\" partition=%d offset=%" PRId64 " error=\"%s\"",
               (int)wh->rkm->partition, wh->rkm->offset, rd_kafka_err2str(err));
    }
    wh->stats.alerts++;
    rd_kafka_message_destroy(wh->rkm);
    wh->rkm = NULL;
    pp_webhook_alert_clear(&wh->cur);
    for (size_t i = 0; i < wh->dl_n; i++) {
        free(wh->dl[i].body);
        wh->dl[i].body = NULL;
    }
    wh->dl_n = 0;
    /* The next record: deferred to the loop, so deep recursion is impossible. */
    event_active(wh->ev_queue, EV_READ, 0);
}

static void delivery_done(struct delivery *d)
{
    d->done = 1;
    if (--d->wh->dl_pending == 0) {
        finish_record(d->wh);
    }
}

static void start_attempt(struct delivery *d);

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    start_attempt(arg);
}

/* One attempt ended: http is the status (0 when no response), err the
 * transport error. */
static void attempt_ended(struct delivery *d, long http, const char *err)
{
    struct pp_webhook *wh = d->wh;
    const struct pp_webhook_sub_conf *sub = &wh->subs[d->sub];
    if (http >= 200 && http < 300) {
        wh->stats.delivered++;
        pp_log(PP_LOG_INFO,
               "msg=\"webhook delivered\" receiver=%s alert_id=%s status=%s attempts=%u http=%ld",
               sub->name, wh->cur.a.alert_id, pp_alert_status_name(wh->cur.a.status), d->attempts,
               http);
        delivery_done(d);
        return;
    }
    char why[CURL_ERROR_SIZE + 32];
    if (http) {
        snprintf(why, sizeof(why), "HTTP %ld", http);
    }
    else {
        snprintf(why, sizeof(why), "%s", err && err[0] ? err : "transport error");
    }
    int permanent = http >= 400 && http < 500 && http != 408 && http != 429;
    if (permanent || d->attempts >= sub->max_attempts) {
        wh->stats.dead_lettered++;
        pp_log(PP_LOG_ERROR,
               "msg=\"webhook dead letter\" receiver=%s alert_id=%s status=%s attempts=%u "
               "error=\"%s\"",
               sub->name, wh->cur.a.alert_id, pp_alert_status_name(wh->cur.a.status), d->attempts,
               why);
        delivery_done(d);
        return;
    }
    int64_t backoff = BACKOFF_FIRST_MS;
    for (uint32_t i = 1; i < d->attempts && backoff < BACKOFF_MAX_MS; i++) {
        backoff *= 2;
    }
    if (backoff > BACKOFF_MAX_MS) {
        backoff = BACKOFF_MAX_MS;
    }
    pp_log(PP_LOG_WARN,
           "msg=\"webhook attempt failed\" receiver=%s alert_id=%s attempt=%u error=\"%s\" "
           "retry_in_ms=%" PRId64,
           sub->name, wh->cur.a.alert_id, d->attempts, why, backoff);
    struct timeval tv = {(time_t)(backoff / 1000), (suseconds_t)((backoff % 1000) * 1000)};
    evtimer_add(d->retry, &tv);
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

static void start_attempt(struct delivery *d)
{
    struct pp_webhook *wh = d->wh;
    const struct pp_webhook_sub_conf *sub = &wh->subs[d->sub];
    d->attempts++;
    wh->stats.attempts++;
    d->err[0] = '\0';
    CURL *e = d->easy;
    curl_easy_reset(e);
    curl_slist_free_all(d->headers);
    d->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (sub->auth_header[0]) {
        char h[PP_CONF_STR_MAX + 32];
        snprintf(h, sizeof(h), "Authorization: %s", sub->auth_header);
        d->headers = curl_slist_append(d->headers, h);
    }
    curl_easy_setopt(e, CURLOPT_URL, sub->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, d->headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->body);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)REQUEST_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "partnerpulse-webhook");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, d->err);
    curl_easy_setopt(e, CURLOPT_PRIVATE, d);
    CURLMcode mc = curl_multi_add_handle(wh->multi, e);
    if (mc != CURLM_OK) {
        attempt_ended(d, 0, curl_multi_strerror(mc));
    }
}

/* Finished transfers. */
static void check_multi(struct pp_webhook *wh)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(wh->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        CURL *e = msg->easy_handle;
        CURLcode res = msg->data.result;
        void *priv = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
        struct delivery *d = priv;
        long http = 0;
        if (res == CURLE_OK) {
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &http);
        }
        curl_multi_remove_handle(wh->multi, e);
        char err[CURL_ERROR_SIZE];
        snprintf(err, sizeof(err), "%s", d->err[0] ? d->err : curl_easy_strerror(res));
        attempt_ended(d, http, err);
    }
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
    struct pp_webhook *wh = arg;
    int flags =
        ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(wh->multi, fd, flags, &running);
    check_multi(wh);
}

static void on_curl_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pp_webhook *wh = arg;
    int running;
    curl_multi_socket_action(wh->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi(wh);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    struct pp_webhook *wh = userp;
    struct event *ev = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (ev) {
            event_free(ev);
            curl_multi_assign(wh->multi, s, NULL);
        }
        return 0;
    }
    short kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
                         ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
    if (ev) {
        event_del(ev);
        event_assign(ev, wh->base, s, kind, on_socket, wh);
    }
    else {
        ev = event_new(wh->base, s, kind, on_socket, wh);
        curl_multi_assign(wh->multi, s, ev);
    }
    event_add(ev, NULL);
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct pp_webhook *wh = userp;
    if (timeout_ms < 0) {
        evtimer_del(wh->ev_timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(wh->ev_timer, &tv);
    return 0;
}

/* Takes rkm over and starts its deliveries (or finishes it at once). */
static void start_record(struct pp_webhook *wh, rd_kafka_message_t *rkm)
{
    wh->rkm = rkm;
    wh->dl_n = 0;
    char err[256];
    if (pp_webhook_decode_alert(rkm->payload, rkm->len, &wh->cur, err, sizeof(err)) != 0) {
        pp_log(PP_LOG_ERROR,
               "msg=\"webhook cannot decode alert, skipped\" partition=%d offset=%" PRId64
               " error=\"%s\"",
               (int)rkm->partition, rkm->offset, err);
        finish_record(wh);
        return;
    }
    char silence[128] = "";
    int muted = -1;
    for (size_t i = 0; i < wh->subs_n; i++) {
        if (!pp_webhook_matches(&wh->subs[i], &wh->cur)) {
            continue;
        }
        if (muted < 0) {
            muted = wh->mute && wh->mute(&wh->cur, silence, sizeof(silence), wh->mute_opaque);
        }
        if (muted) {
            wh->stats.muted++;
            pp_log(PP_LOG_INFO,
                   "msg=\"webhook muted by silence\" receiver=%s alert_id=%s "
                   "status=%s silence=%s",
                   wh->subs[i].name, wh->cur.a.alert_id, pp_alert_status_name(wh->cur.a.status),
                   silence);
            continue;
        }
        struct delivery *d = &wh->dl[wh->dl_n++];
        d->sub = i;
        d->attempts = 0;
        d->done = 0;
        d->body = pp_webhook_payload(&wh->cur, wh->subs[i].name, wh->external_url);
        if (d->body == NULL) {
            abort(); /* out of memory on a bounded document */
        }
    }
    if (wh->dl_n == 0) {
        finish_record(wh);
        return;
    }
    wh->dl_pending = wh->dl_n;
    /* Counted before starting, since an attempt may end synchronously. */
    size_t n = wh->dl_n;
    for (size_t i = 0; i < n && wh->rkm == rkm; i++) {
        start_attempt(&wh->dl[i]);
    }
}

static void pump(struct pp_webhook *wh)
{
    for (int budget = 64; budget > 0 && wh->rkm == NULL; budget--) {
        rd_kafka_message_t *rkm = rd_kafka_consume_queue(wh->queue, 0);
        if (rkm == NULL) {
            return;
        }
        if (rkm->err) {
            if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                pp_log(PP_LOG_WARN, "msg=\"webhook consumer error\" error=\"%s\"",
                       rd_kafka_message_errstr(rkm));
            }
            rd_kafka_message_destroy(rkm);
            continue;
        }
        start_record(wh, rkm);
    }
    if (wh->rkm == NULL) {
        event_active(wh->ev_queue, EV_READ, 0); /* budget spent, more may wait */
    }
}

static void on_queue(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    char drain[64];
    while (read(fd, drain, sizeof(drain)) > 0) {
    }
    pump(arg);
}

static int kset(rd_kafka_conf_t *kc, const char *k, const char *v, char *errstr, size_t n)
{
    return rd_kafka_conf_set(kc, k, v, errstr, n) == RD_KAFKA_CONF_OK ? 0 : -1;
}

struct pp_webhook *pp_webhook_new(const struct pp_app_conf *conf, struct event_base *base,
                                  char *errstr, size_t errstr_size)
{
    struct pp_webhook *wh = pp_xcalloc(1, sizeof(*wh));
    wh->base = base;
    wh->pipe_fds[0] = wh->pipe_fds[1] = -1;
    memcpy(wh->subs, conf->webhooks, sizeof(wh->subs));
    wh->subs_n = conf->webhooks_n;
    for (size_t i = 0; i < PP_WEBHOOK_MAX; i++) {
        wh->dl[i].wh = wh;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    wh->multi = curl_multi_init();
    wh->ev_timer = evtimer_new(base, on_curl_timer, wh);
    if (wh->multi == NULL) {
        snprintf(errstr, errstr_size, "webhooks: cannot initialise libcurl");
        goto fail;
    }
    curl_multi_setopt(wh->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(wh->multi, CURLMOPT_SOCKETDATA, wh);
    curl_multi_setopt(wh->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(wh->multi, CURLMOPT_TIMERDATA, wh);
    for (size_t i = 0; i < wh->subs_n; i++) {
        wh->dl[i].easy = curl_easy_init();
        wh->dl[i].retry = evtimer_new(base, on_retry, &wh->dl[i]);
        if (wh->dl[i].easy == NULL) {
            snprintf(errstr, errstr_size, "webhooks: cannot initialise libcurl");
            goto fail;
        }
    }

    rd_kafka_conf_t *kc = pp_app_kafka_conf(conf, 1, errstr, errstr_size);
    if (kc == NULL) {
        goto fail;
    }
    char group[PP_CONF_STR_MAX + 16];
    snprintf(group, sizeof(group), "%s-webhooks", conf->application_id);
    if (kset(kc, "group.id", group, errstr, errstr_size) ||
        kset(kc, "isolation.level", "read_committed", errstr, errstr_size) ||
        kset(kc, "enable.auto.commit", "false", errstr, errstr_size) ||
        kset(kc, "enable.partition.eof", "false", errstr, errstr_size) ||
        kset(kc, "statistics.interval.ms", "0", errstr, errstr_size)) {
        rd_kafka_conf_destroy(kc);
        goto fail;
    }
    wh->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, errstr_size);
    if (wh->rk == NULL) {
        rd_kafka_conf_destroy(kc);
        goto fail;
    }
    rd_kafka_poll_set_consumer(wh->rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, conf->topic_alerts, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(wh->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        snprintf(errstr, errstr_size, "webhooks: subscribe: %s", rd_kafka_err2str(err));
        goto fail;
    }
    wh->queue = rd_kafka_queue_get_consumer(wh->rk);
    if (pipe(wh->pipe_fds) != 0) {
        snprintf(errstr, errstr_size, "pipe: %s", strerror(errno));
        goto fail;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(wh->pipe_fds[i], F_SETFL, fcntl(wh->pipe_fds[i], F_GETFL) | O_NONBLOCK);
        fcntl(wh->pipe_fds[i], F_SETFD, FD_CLOEXEC);
    }
    rd_kafka_queue_io_event_enable(wh->queue, wh->pipe_fds[1], "1", 1);
    wh->ev_queue = event_new(base, wh->pipe_fds[0], EV_READ | EV_PERSIST, on_queue, wh);
    event_add(wh->ev_queue, NULL);
    event_active(wh->ev_queue, EV_READ, 0); /* anything queued before the pipe */
    pp_log(PP_LOG_INFO, "msg=\"webhooks started\" subscribers=%zu group=%s topic=%s", wh->subs_n,
           group, conf->topic_alerts);
    return wh;
fail:
    pp_webhook_destroy(wh);
    return NULL;
}

void pp_webhook_set_external_url(struct pp_webhook *wh, const char *url)
{
    snprintf(wh->external_url, sizeof(wh->external_url), "%s", url);
}

void pp_webhook_set_mute(struct pp_webhook *wh, pp_webhook_mute_fn *fn, void *opaque)
{
    wh->mute = fn;
    wh->mute_opaque = opaque;
}

int pp_webhook_set_subs(struct pp_webhook *wh, const struct pp_app_conf *conf, char *errstr,
                        size_t errstr_size)
{
    if (conf->webhooks_n != wh->subs_n) {
        snprintf(errstr, errstr_size,
                 "%s: key 'webhooks': subscribers cannot be added or removed on reload (restart)",
                 conf->path);
        return -1;
    }
    for (size_t i = 0; i < wh->subs_n; i++) {
        const struct pp_webhook_sub_conf *n = &conf->webhooks[i];
        if (strcmp(n->name, wh->subs[i].name) != 0 || strcmp(n->url, wh->subs[i].url) != 0) {
            snprintf(errstr, errstr_size,
                     "%s:%d: key 'webhooks.%s.url': subscribers cannot change on reload "
                     "(restart)",
                     conf->path, n->line, n->name);
            return -1;
        }
    }
    /* Deliveries in flight read their sub's fields at each attempt, so the
     * new filters and headers apply from the next attempt on. */
    memcpy(wh->subs, conf->webhooks, sizeof(wh->subs));
    return 0;
}

void pp_webhook_stats(const struct pp_webhook *wh, struct pp_webhook_stats *out)
{
    *out = wh->stats;
}

void pp_webhook_destroy(struct pp_webhook *wh)
{
    if (wh == NULL) {
        return;
    }
    for (size_t i = 0; i < PP_WEBHOOK_MAX; i++) {
        struct delivery *d = &wh->dl[i];
        if (d->easy) {
            if (wh->multi) {
                curl_multi_remove_handle(wh->multi, d->easy);
            }
            curl_easy_cleanup(d->easy);
        }
        if (d->retry) {
            event_free(d->retry);
        }
        curl_slist_free_all(d->headers);
        free(d->body);
    }
    if (wh->rkm) {
        pp_log(PP_LOG_INFO,
               "msg=\"webhook notification abandoned at shutdown, not committed\" "
               "alert_id=%s",
               wh->cur.a.alert_id);
        rd_kafka_message_destroy(wh->rkm);
    }
    pp_webhook_alert_clear(&wh->cur);
    if (wh->queue) {
        rd_kafka_queue_io_event_enable(wh->queue, -1, NULL, 0);
        rd_kafka_queue_destroy(wh->queue);
    }
    if (wh->rk) {
        rd_kafka_consumer_close(wh->rk);
        rd_kafka_destroy(wh->rk);
    }
    if (wh->ev_queue) {
        event_free(wh->ev_queue);
    }
    for (int i = 0; i < 2; i++) {
        if (wh->pipe_fds[i] >= 0) {
            close(wh->pipe_fds[i]);
        }
    }
    if (wh->multi) {
        curl_multi_cleanup(wh->multi);
    }
    if (wh->ev_timer) {
        event_free(wh->ev_timer);
    }
    free(wh);
}
