/*
 * silences.c — webhook silences kept in a compacted Kafka topic. See
 * silences.h and docs/webhooks.md.
 *
 * Why a topic and not a file or a database: every instance already talks to
 * Kafka, and a compacted topic keyed by silence id is a replicated table that
 * each instance can rebuild by reading it from the beginning. The table is
 * small (at most MAX_SILENCES), so a linear scan per notification is fine.
 *
 * Start-up reads the topic whole before returning (blocking, bounded, like
 * the registry's first fetch) so that no notification is sent before the
 * silences that should mute it are known; afterwards a consumer assigned to
 * every partition (no group: each instance reads everything) wakes the loop
 * through a pipe and applies new records. Writes from the API are applied
 * locally at once (this instance honours them immediately) and produced to
 * the topic for the others; a failed write is logged at level=error.
 */
#define _GNU_SOURCE /* timegm */
#include "silences.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "event.h"
#include "log.h"
#include "palloc.h"
#include "pipeline.h"

#define MAX_SILENCES  10000
#define REASON_MAX    512
#define WHO_MAX       128
#define RULE_MAX      32
#define POLL_EVERY_MS 200

struct silence {
    char id[PP_SILENCE_ID_MAX];
    char partner[PP_ID_MAX];
    char rule[RULE_MAX]; /* "" = every rule */
    int64_t until_ms;
    int64_t created_ms;
    char reason[REASON_MAX];
    char created_by[WHO_MAX];
};

struct pp_silences {
    struct silence *v;
    size_t n;
    struct event_base *base;
    char topic[PP_CONF_STR_MAX];
    rd_kafka_t *producer;
    rd_kafka_t *consumer;
    rd_kafka_queue_t *queue;
    int pipe_fds[2];
    struct event *ev_queue;
    struct event *ev_poll; /* serves the producer's delivery reports */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int pp_parse_rfc3339(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, se;
    if (strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) ||
        s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &se) ||
        mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) {
        return -1;
    }
    const char *p = s + 19;
    int frac_ms = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n < 3) {
                frac_ms = frac_ms * 10 + (*p - '0');
            }
            n++;
            p++;
        }
        if (n == 0) {
            return -1;
        }
        for (; n < 3; n++) {
            frac_ms *= 10;
        }
    }
    int off_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    }
    else if (*p == '+' || *p == '-') {
        int oh, om;
        if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59) {
            return -1;
        }
        off_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    }
    else {
        return -1;
    }
    if (*p != '\0') {
        return -1;
    }
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = se};
    time_t t = timegm(&tm);
    *ms = ((int64_t)t - off_min * 60) * 1000 + frac_ms;
    return 0;
}

static void fmt_rfc3339(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

static json_t *silence_json(const struct silence *x)
{
    char until[32], created[32];
    fmt_rfc3339(x->until_ms, until);
    fmt_rfc3339(x->created_ms, created);
    return json_pack("{s:s, s:s, s:o, s:s, s:s, s:o, s:s}", "id", x->id, "partner", x->partner,
                     "rule", x->rule[0] ? json_string(x->rule) : json_null(), "until", until,
                     "reason", x->reason, "created_by",
                     x->created_by[0] ? json_string(x->created_by) : json_null(), "created_at",
                     created);
}

static struct silence *find(const struct pp_silences *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->v[i].id, id) == 0) {
            return &s->v[i];
        }
    }
    return NULL;
}

static void remove_id(struct pp_silences *s, const char *id)
{
    struct silence *x = find(s, id);
    if (x) {
        *x = s->v[--s->n];
    }
}

static int upsert(struct pp_silences *s, const struct silence *x)
{
    struct silence *old = find(s, x->id);
    if (old) {
        *old = *x;
        return 0;
    }
    if (s->n == MAX_SILENCES) {
        return -1;
    }
    s->v = pp_xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
    s->v[s->n++] = *x;
    return 0;
}

/* Copies a JSON string member; absent/null ok when optional. */
static int str_member(json_t *o, const char *name, int required, char *dst, size_t cap, char *why,
                      size_t why_size)
{
    json_t *v = json_object_get(o, name);
    if (v == NULL || json_is_null(v)) {
        dst[0] = '\0';
        if (required) {
            snprintf(why, why_size, "'%s' is required", name);
            return -1;
        }
        return 0;
    }
    const char *t = json_string_value(v);
    if (t == NULL || (required && t[0] == '\0') || strlen(t) >= cap) {
        snprintf(why, why_size, "'%s' must be a%s string of at most %zu bytes", name,
                 required ? " non-empty" : "", cap - 1);
        return -1;
    }
    memcpy(dst, t, strlen(t) + 1);
    return 0;
}

/* The JSON of a silence (topic value or request body) into x. */
static int parse_silence(json_t *o, struct silence *x, int from_api, char *why, size_t why_size)
{
    memset(x, 0, sizeof(*x));
    if (!json_is_object(o)) {
        snprintf(why, why_size, "expected a JSON object");
        return -1;
    }
    static const char *const api_keys[] = {"partner", "rule",       "until",
                                           "reason",  "created_by", NULL};
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        int known = 0;
        for (size_t i = 0; api_keys[i] && !known; i++) {
            known = strcmp(k, api_keys[i]) == 0;
        }
        known |= !from_api && (strcmp(k, "id") == 0 || strcmp(k, "created_at") == 0);
        if (!known) {
            snprintf(why, why_size, "unknown member '%.64s'", k);
            return -1;
        }
    }
    char until[64], created[64];
    if (str_member(o, "partner", 1, x->partner, sizeof(x->partner), why, why_size) ||
        str_member(o, "rule", 0, x->rule, sizeof(x->rule), why, why_size) ||
        str_member(o, "until", 1, until, sizeof(until), why, why_size) ||
        str_member(o, "reason", 1, x->reason, sizeof(x->reason), why, why_size) ||
        str_member(o, "created_by", 0, x->created_by, sizeof(x->created_by), why, why_size)) {
        return -1;
    }
    if (pp_parse_rfc3339(until, &x->until_ms) != 0) {
        snprintf(why, why_size, "'until' must be an RFC 3339 time like 2026-01-31T18:00:00Z");
        return -1;
    }
    if (!from_api) {
        if (str_member(o, "id", 1, x->id, sizeof(x->id), why, why_size) ||
            str_member(o, "created_at", 1, created, sizeof(created), why, why_size) ||
            pp_parse_rfc3339(created, &x->created_ms) != 0) {
            snprintf(why, why_size, "bad id or created_at");
            return -1;
        }
    }
    return 0;
}

int pp_silences_apply(struct pp_silences *s, const char *key, size_t key_len, const char *value,
                      size_t value_len)
{
    char id[PP_SILENCE_ID_MAX];
    if (key == NULL || key_len == 0 || key_len >= sizeof(id)) {
        return -1;
    }
    memcpy(id, key, key_len);
    id[key_len] = '\0';
    if (value == NULL) {
        remove_id(s, id);
        return 0;
    }
    json_t *o = json_loadb(value, value_len, 0, NULL);
    struct silence x;
    char why[160];
    int rc = parse_silence(o, &x, 0, why, sizeof(why));
    json_decref(o);
    if (rc != 0 || strcmp(x.id, id) != 0) {
        pp_log(PP_LOG_WARN, "msg=\"ignoring bad silence record\" id=%s error=\"%s\"", id,
               rc ? why : "id differs from the key");
        return -1;
    }
    if (upsert(s, &x) != 0) {
        pp_log(PP_LOG_ERROR, "msg=\"too many silences, record ignored\" id=%s max=%d", id,
               MAX_SILENCES);
        return -1;
    }
    return 0;
}

int pp_silences_muted(const struct pp_silences *s, const char *partner, const char *rule,
                      int64_t at_ms, char *id, size_t id_size)
{
    for (size_t i = 0; s && i < s->n; i++) {
        const struct silence *x = &s->v[i];
        if (x->until_ms > at_ms && strcmp(x->partner, partner) == 0 &&
            (x->rule[0] == '\0' || strcmp(x->rule, rule) == 0)) {
            snprintf(id, id_size, "%s", x->id);
            return 1;
        }
    }
    return 0;
}

/* ----------------------------------------------------------------- HTTP */

static void produce(struct pp_silences *s, const char *id, const char *value)
{
    if (s->producer == NULL) {
        return; /* tests without Kafka */
    }
    rd_kafka_resp_err_t err =
        rd_kafka_producev(s->producer, RD_KAFKA_V_TOPIC(s->topic), RD_KAFKA_V_KEY(id, strlen(id)),
                          RD_KAFKA_V_VALUE((void *)value, value ? strlen(value) : 0),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err) {
        pp_log(PP_LOG_ERROR, "msg=\"cannot write silence\" id=%s error=\"%s\"", id,
               rd_kafka_err2str(err));
    }
}

static int error_out(int code, char **out, const char *msg)
{
    json_t *o = json_pack("{s:s}", "error", msg);
    *out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return code;
}

int pp_silences_http(void *opaque, const char *method, const char *id, const char *body,
                     size_t body_len, char **out)
{
    struct pp_silences *s = opaque;
    *out = NULL;
    int64_t now = now_ms();
    if (id == NULL && strcmp(method, "GET") == 0) {
        json_t *arr = json_array();
        for (size_t i = 0; i < s->n; i++) {
            if (s->v[i].until_ms > now) {
                json_array_append_new(arr, silence_json(&s->v[i]));
            }
        }
        json_t *o = json_pack("{s:o}", "silences", arr);
        *out = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return 200;
    }
    if (id == NULL && strcmp(method, "POST") == 0) {
        json_error_t jerr;
        json_t *o = json_loadb(body ? body : "", body_len, 0, &jerr);
        if (o == NULL) {
            char msg[256];
            snprintf(msg, sizeof(msg), "body is not JSON: %s", jerr.text);
            return error_out(400, out, msg);
        }
        struct silence x;
        char why[160];
        int rc = parse_silence(o, &x, 1, why, sizeof(why));
        json_decref(o);
        if (rc != 0) {
            return error_out(400, out, why);
        }
        if (x.until_ms <= now) {
            return error_out(400, out, "'until' must be in the future");
        }
        if (s->n >= MAX_SILENCES) {
            return error_out(409, out, "too many silences");
        }
        unsigned char rnd[16];
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
            return error_out(500, out, "no randomness for the silence id");
        }
        for (size_t i = 0; i < sizeof(rnd); i++) {
            snprintf(x.id + 2 * i, 3, "%02x", rnd[i]);
        }
        x.created_ms = now;
        upsert(s, &x);
        json_t *j = silence_json(&x);
        char *value = json_dumps(j, JSON_COMPACT);
        produce(s, x.id, value);
        pp_log(PP_LOG_INFO, "msg=\"silence created\" id=%s partner=%s rule=%s until_ms=%" PRId64,
               x.id, x.partner, x.rule[0] ? x.rule : "*", x.until_ms);
        free(value);
        *out = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        return 201;
    }
    if (id != NULL && strcmp(method, "GET") == 0) {
        const struct silence *x = find(s, id);
        if (x == NULL) {
            return error_out(404, out, "no such silence");
        }
        json_t *j = silence_json(x);
        *out = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        return 200;
    }
    if (id != NULL && strcmp(method, "DELETE") == 0) {
        if (find(s, id) == NULL) {
            return error_out(404, out, "no such silence");
        }
        remove_id(s, id);
        produce(s, id, NULL); /* the tombstone */
        pp_log(PP_LOG_INFO, "msg=\"silence deleted\" id=%s", id);
        return 204;
    }
    return error_out(405, out,
                     id ? "method not allowed (GET, DELETE)" : "method not allowed (GET, POST)");
}

/* ---------------------------------------------------------------- Kafka */

static void apply_message(struct pp_silences *s, rd_kafka_message_t *rkm)
{
    if (rkm->err) {
        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            pp_log(PP_LOG_WARN, "msg=\"silences consumer error\" error=\"%s\"",
                   rd_kafka_message_errstr(rkm));
        }
        return;
    }
    pp_silences_apply(s, rkm->key, rkm->key_len, rkm->payload, rkm->len);
}

static void on_queue(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct pp_silences *s = arg;
    char drain[64];
    while (read(fd, drain, sizeof(drain)) > 0) {
    }
    for (int budget = 256; budget > 0; budget--) {
        rd_kafka_message_t *rkm = rd_kafka_consume_queue(s->queue, 0);
        if (rkm == NULL) {
            return;
        }
        apply_message(s, rkm);
        rd_kafka_message_destroy(rkm);
    }
    event_active(s->ev_queue, EV_READ, 0);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pp_silences *s = arg;
    rd_kafka_poll(s->producer, 0);
}

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (rkm->err) {
        pp_log(PP_LOG_ERROR, "msg=\"silence not written to the topic\" id=%.*s error=\"%s\"",
               (int)rkm->key_len, (const char *)rkm->key, rd_kafka_err2str(rkm->err));
    }
}

/* Creates the compacted topic; "already exists" is fine. */
static int create_topic(struct pp_silences *s, int timeout_ms, char *errstr, size_t errstr_size)
{
    char e[256];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(s->topic, 1, -1, e, sizeof(e));
    if (nt == NULL) {
        snprintf(errstr, errstr_size, "silences topic %s: %s", s->topic, e);
        return -1;
    }
    rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
    rd_kafka_queue_t *q = rd_kafka_queue_new(s->producer);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(s->producer, RD_KAFKA_ADMIN_OP_ANY);
    rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, NULL, 0);
    rd_kafka_CreateTopics(s->producer, &nt, 1, opt, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    int rc = -1;
    if (ev == NULL) {
        snprintf(errstr, errstr_size, "silences topic %s: no answer from the cluster", s->topic);
    }
    else if (rd_kafka_event_error(ev)) {
        snprintf(errstr, errstr_size, "silences topic %s: %s", s->topic,
                 rd_kafka_event_error_string(ev));
    }
    else {
        size_t n;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        rd_kafka_resp_err_t err = n ? rd_kafka_topic_result_error(res[0]) : 0;
        if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            snprintf(errstr, errstr_size, "silences topic %s: %s", s->topic,
                     rd_kafka_topic_result_error_string(res[0]));
        }
        else {
            rc = 0;
        }
    }
    if (ev) {
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* Assigns every partition from the beginning and reads up to the high
 * watermarks seen now. */
static int load(struct pp_silences *s, int timeout_ms, char *errstr, size_t errstr_size)
{
    /* A topic just created takes a moment to appear in the metadata with a
     * leader for each partition: retry (start-up only) until the deadline. */
    int64_t deadline = now_ms() + timeout_ms;
    rd_kafka_resp_err_t err;
    int np = 0;
    for (;;) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(s->consumer, s->topic, NULL);
        const struct rd_kafka_metadata *md = NULL;
        err = rd_kafka_metadata(s->consumer, 0, rkt, &md, 2000);
        rd_kafka_topic_destroy(rkt);
        if (!err) {
            err = md->topic_cnt != 1 ? RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC : md->topics[0].err;
        }
        if (!err) {
            np = md->topics[0].partition_cnt;
            for (int p = 0; p < np && !err; p++) {
                err = md->topics[0].partitions[p].leader < 0
                          ? RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE
                          : 0;
            }
            if (np < 1) {
                err = RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
            }
        }
        if (md) {
            rd_kafka_metadata_destroy(md);
        }
        if (!err) {
            break;
        }
        if (now_ms() >= deadline) {
            snprintf(errstr, errstr_size, "silences topic %s: no metadata within %d ms (%s)",
                     s->topic, timeout_ms, rd_kafka_err2str(err));
            return -1;
        }
        rd_kafka_poll(s->producer, 100); /* a short wait that also serves callbacks */
    }
    int64_t *high = pp_xcalloc((size_t)np, sizeof(*high));
    int64_t *next = pp_xcalloc((size_t)np, sizeof(*next));
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(np);
    int rc = -1;
    for (int p = 0; p < np; p++) {
        int64_t low;
        while ((err = rd_kafka_query_watermark_offsets(s->consumer, s->topic, p, &low, &high[p],
                                                       2000)) != 0 &&
               now_ms() < deadline) {
            rd_kafka_poll(s->producer, 100);
        }
        if (err) {
            snprintf(errstr, errstr_size, "silences topic %s[%d]: %s", s->topic, p,
                     rd_kafka_err2str(err));
            goto out;
        }
        next[p] = low;
        rd_kafka_topic_partition_list_add(parts, s->topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    err = rd_kafka_assign(s->consumer, parts);
    if (err) {
        snprintf(errstr, errstr_size, "silences: assign: %s", rd_kafka_err2str(err));
        goto out;
    }
    for (;;) {
        int done = 1;
        for (int p = 0; p < np; p++) {
            done &= next[p] >= high[p];
        }
        if (done) {
            break;
        }
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            snprintf(errstr, errstr_size, "silences topic %s: not read within %d ms", s->topic,
                     timeout_ms);
            goto out;
        }
        rd_kafka_message_t *rkm =
            rd_kafka_consumer_poll(s->consumer, (int)(left < 100 ? left : 100));
        if (rkm == NULL) {
            continue;
        }
        if (rkm->partition >= 0 && rkm->partition < np) {
            if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                next[rkm->partition] = high[rkm->partition];
            }
            else if (!rkm->err) {
                next[rkm->partition] = rkm->offset + 1;
            }
        }
        apply_message(s, rkm);
        rd_kafka_message_destroy(rkm);
    }
    rc = 0;
out:
    rd_kafka_topic_partition_list_destroy(parts);
    free(high);
    free(next);
    return rc;
}

struct pp_silences *pp_silences_new(const struct pp_app_conf *conf, struct event_base *base,
                                    int load_timeout_ms, char *errstr, size_t errstr_size)
{
    struct pp_silences *s = pp_xcalloc(1, sizeof(*s));
    s->base = base;
    s->pipe_fds[0] = s->pipe_fds[1] = -1;
    snprintf(s->topic, sizeof(s->topic), "%s", conf->topic_silences);
    rd_kafka_conf_t *pc = pp_app_kafka_conf(conf, 0, errstr, errstr_size);
    if (pc == NULL) {
        goto fail;
    }
    rd_kafka_conf_set_dr_msg_cb(pc, on_dr);
    s->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, errstr_size);
    if (s->producer == NULL) {
        rd_kafka_conf_destroy(pc);
        goto fail;
    }
    if (create_topic(s, load_timeout_ms, errstr, errstr_size) != 0) {
        goto fail;
    }
    rd_kafka_conf_t *cc = pp_app_kafka_conf(conf, 1, errstr, errstr_size);
    if (cc == NULL) {
        goto fail;
    }
    /* No group work: assign() only, never commit; each instance reads all. */
    char group[PP_CONF_STR_MAX + 16];
    snprintf(group, sizeof(group), "%s-silences", conf->application_id);
    if (rd_kafka_conf_set(cc, "group.id", group, errstr, errstr_size) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(cc, "enable.auto.commit", "false", errstr, errstr_size) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(cc, "statistics.interval.ms", "0", errstr, errstr_size) !=
            RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(cc);
        goto fail;
    }
    s->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, errstr_size);
    if (s->consumer == NULL) {
        rd_kafka_conf_destroy(cc);
        goto fail;
    }
    rd_kafka_poll_set_consumer(s->consumer);
    if (load(s, load_timeout_ms, errstr, errstr_size) != 0) {
        goto fail;
    }
    s->queue = rd_kafka_queue_get_consumer(s->consumer);
    if (pipe(s->pipe_fds) != 0) {
        snprintf(errstr, errstr_size, "pipe: %s", strerror(errno));
        goto fail;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(s->pipe_fds[i], F_SETFL, fcntl(s->pipe_fds[i], F_GETFL) | O_NONBLOCK);
        fcntl(s->pipe_fds[i], F_SETFD, FD_CLOEXEC);
    }
    rd_kafka_queue_io_event_enable(s->queue, s->pipe_fds[1], "1", 1);
    s->ev_queue = event_new(base, s->pipe_fds[0], EV_READ | EV_PERSIST, on_queue, s);
    event_add(s->ev_queue, NULL);
    event_active(s->ev_queue, EV_READ, 0);
    s->ev_poll = event_new(base, -1, EV_PERSIST, on_poll, s);
    struct timeval tv = {0, POLL_EVERY_MS * 1000};
    event_add(s->ev_poll, &tv);
    pp_log(PP_LOG_INFO, "msg=\"silences loaded\" topic=%s silences=%zu", s->topic, s->n);
    return s;
fail:
    pp_silences_destroy(s);
    return NULL;
}

struct pp_silences *pp_silences_new_local(void)
{
    struct pp_silences *s = pp_xcalloc(1, sizeof(*s));
    s->pipe_fds[0] = s->pipe_fds[1] = -1;
    return s;
}

void pp_silences_destroy(struct pp_silences *s)
{
    if (s == NULL) {
        return;
    }
    if (s->ev_poll) {
        event_free(s->ev_poll);
    }
    if (s->queue) {
        rd_kafka_queue_io_event_enable(s->queue, -1, NULL, 0);
        rd_kafka_queue_destroy(s->queue);
    }
    if (s->consumer) {
        rd_kafka_consumer_close(s->consumer);
        rd_kafka_destroy(s->consumer);
    }
    if (s->ev_queue) {
        event_free(s->ev_queue);
    }
    for (int i = 0; i < 2; i++) {
        if (s->pipe_fds[i] >= 0) {
            close(s->pipe_fds[i]);
        }
    }
    if (s->producer) {
        if (rd_kafka_flush(s->producer, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            pp_log(PP_LOG_ERROR, "msg=\"silence writes not flushed at shutdown\" pending=%d",
                   rd_kafka_outq_len(s->producer));
        }
        rd_kafka_destroy(s->producer);
    }
    free(s->v);
    free(s);
}
