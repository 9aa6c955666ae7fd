/*
 * topics.c — create-or-check of the runtime's internal topics. See topics.h.
 *
 * Metadata is always requested for all topics: a metadata request naming a
 * topic lets librdkafka ask the broker to auto-create it (the producer's
 * default, allow.auto.create.topics=true), which would create an internal
 * topic with the broker's default partition count and cleanup policy — the
 * very thing this module exists to prevent.
 *
 * Several instances start at once in a rolling deploy, so creation races are
 * normal: TOPIC_ALREADY_EXISTS means "someone else created it", and the topic
 * is then checked like any existing one (after it shows up in the metadata).
 */
#include "topics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "palloc.h"

/* Delay between metadata probes while a new topic propagates. */
#define PROBE_MS 50

enum tstate {
    T_MISSING, /* not in the metadata: to create */
    T_CREATED, /* created by us: wait until visible */
    T_EXISTS,  /* existed or created concurrently: check partitions and policy */
    T_READY    /* visible with leaders and checked */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remaining(int64_t deadline)
{
    int64_t r = deadline - now_ms();
    return r < 1 ? 1 : (int)(r > 60000 ? 60000 : r);
}

static void pause_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static const char *reason_of(const struct pp_topic_spec *spec)
{
    return spec->reason ? spec->reason : "processing.partitions";
}

static int fetch_metadata(rd_kafka_t *rk, int timeout_ms, const struct rd_kafka_metadata **md,
                          char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t err =
        rd_kafka_metadata(rk, 1 /* all topics: see the top */, NULL, md, timeout_ms);
    if (err) {
        snprintf(errstr, errstr_size, "cluster metadata: %s", rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

static const rd_kafka_metadata_topic_t *md_topic(const struct rd_kafka_metadata *md,
                                                 const char *name)
{
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, name) == 0) {
            return &md->topics[i];
        }
    }
    return NULL;
}

/* 1 when t is listed without error and every partition has a leader (a
 * topic just created reports LEADER_NOT_AVAILABLE for a moment). */
static int md_ready(const rd_kafka_metadata_topic_t *t)
{
    if (t == NULL || t->err || t->partition_cnt < 1) {
        return 0;
    }
    for (int p = 0; p < t->partition_cnt; p++) {
        if (t->partitions[p].err || t->partitions[p].leader < 0) {
            return 0;
        }
    }
    return 1;
}

static int check_count(const struct pp_topic_spec *spec, int have, char *errstr, size_t errstr_size)
{
    if (have != spec->partitions) {
        snprintf(errstr, errstr_size, "topic %s has %d partitions, partnerpulse needs %d (%s)",
                 spec->name, have, spec->partitions, reason_of(spec));
        return -1;
    }
    return 0;
}

int pp_topics_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, char *errstr,
                         size_t errstr_size)
{
    const struct rd_kafka_metadata *md = NULL;
    if (fetch_metadata(rk, timeout_ms, &md, errstr, errstr_size) != 0) {
        return -1;
    }
    const rd_kafka_metadata_topic_t *t = md_topic(md, topic);
    int rc = 0;
    if (t == NULL || t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        rc = 0;
    }
    else if (t->partition_cnt > 0) {
        rc = t->partition_cnt;
    }
    else {
        snprintf(errstr, errstr_size, "topic %s: %s", topic, rd_kafka_err2str(t->err));
        rc = -1;
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

/* One CreateTopics request for every T_MISSING spec; each becomes T_CREATED
 * or, when another instance won the race, T_EXISTS. */
static int create_missing(rd_kafka_t *rk, const struct pp_topic_spec *specs, size_t n,
                          enum tstate *st, int replication, int64_t deadline, char *errstr,
                          size_t errstr_size)
{
    rd_kafka_NewTopic_t **nts = pp_xcalloc(n, sizeof(*nts));
    size_t nn = 0;
    int rc = -1;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_AdminOptions_t *opt = NULL;
    rd_kafka_event_t *ev = NULL;

    for (size_t i = 0; i < n; i++) {
        if (st[i] != T_MISSING) {
            continue;
        }
        char e[256];
        nts[nn] =
            rd_kafka_NewTopic_new(specs[i].name, specs[i].partitions, replication, e, sizeof(e));
        if (nts[nn] == NULL) {
            snprintf(errstr, errstr_size, "topic %s: %s", specs[i].name, e);
            goto out;
        }
        if (specs[i].compact &&
            rd_kafka_NewTopic_set_config(nts[nn], "cleanup.policy", "compact") != 0) {
            nn++;
            snprintf(errstr, errstr_size, "topic %s: cannot set cleanup.policy", specs[i].name);
            goto out;
        }
        nn++;
    }
    if (nn == 0) {
        rc = 0;
        goto out;
    }
    q = rd_kafka_queue_new(rk);
    opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    int tmo = remaining(deadline);
    rd_kafka_AdminOptions_set_request_timeout(opt, tmo, NULL, 0);
    /* The broker answers once the topics exist on the controller, which
     * shortens the wait for them to show up in the metadata. */
    rd_kafka_AdminOptions_set_operation_timeout(opt, tmo, NULL, 0);
    rd_kafka_CreateTopics(rk, nts, nn, opt, q);
    ev = rd_kafka_queue_poll(q, tmo + 1000);
    if (ev == NULL) {
        snprintf(errstr, errstr_size, "creating topics: no answer from the cluster within %d ms",
                 tmo);
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        snprintf(errstr, errstr_size, "creating topics: %s", rd_kafka_event_error_string(ev));
        goto out;
    }
    size_t nres = 0;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &nres);
    for (size_t r = 0; r < nres; r++) {
        const char *name = rd_kafka_topic_result_name(res[r]);
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(res[r]);
        for (size_t i = 0; i < n; i++) {
            if (st[i] != T_MISSING || strcmp(specs[i].name, name) != 0) {
                continue;
            }
            if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                st[i] = T_CREATED;
            }
            else if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                st[i] = T_EXISTS;
            }
            else {
                const char *s = rd_kafka_topic_result_error_string(res[r]);
                snprintf(errstr, errstr_size, "cannot create topic %s: %s", name,
                         s ? s : rd_kafka_err2str(err));
                goto out;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (st[i] == T_MISSING) {
            snprintf(errstr, errstr_size, "cannot create topic %s: no result from the cluster",
                     specs[i].name);
            goto out;
        }
    }
    rc = 0;
out:
    if (ev) {
        rd_kafka_event_destroy(ev);
    }
    if (opt) {
        rd_kafka_AdminOptions_destroy(opt);
    }
    if (q) {
        rd_kafka_queue_destroy(q);
    }
    for (size_t i = 0; i < nn; i++) {
        rd_kafka_NewTopic_destroy(nts[i]);
    }
    free(nts);
    return rc;
}

/* Waits until every spec is visible with leaders, checking partition counts
 * on the way (a concurrently created topic may have another count). */
static int await_ready(rd_kafka_t *rk, const struct pp_topic_spec *specs, size_t n, enum tstate *st,
                       int64_t deadline, char *errstr, size_t errstr_size)
{
    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        if (fetch_metadata(rk, remaining(deadline), &md, errstr, errstr_size) != 0) {
            return -1;
        }
        size_t waiting = 0;
        const char *late = NULL;
        int rc = 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (st[i] == T_READY) {
                continue;
            }
            const rd_kafka_metadata_topic_t *t = md_topic(md, specs[i].name);
            if (t != NULL && t->partition_cnt > 0) {
                rc = check_count(&specs[i], t->partition_cnt, errstr, errstr_size);
            }
            if (rc == 0 && md_ready(t)) {
                st[i] = T_READY;
            }
            else if (rc == 0) {
                waiting++;
                late = specs[i].name;
            }
        }
        char late_name[256] = "";
        if (late) {
            snprintf(late_name, sizeof(late_name), "%s", late);
        }
        rd_kafka_metadata_destroy(md);
        if (rc != 0) {
            return -1;
        }
        if (waiting == 0) {
            return 0;
        }
        if (now_ms() >= deadline) {
            snprintf(errstr, errstr_size, "topic %s: not ready (no leader in the metadata) in time",
                     late_name);
            return -1;
        }
        pause_ms(PROBE_MS);
    }
}

/* 1 when the comma-separated policy list contains "compact". */
static int has_compact(const char *policy)
{
    const char *p = policy;
    while (p && *p) {
        while (*p == ' ' || *p == ',') {
            p++;
        }
        size_t len = strcspn(p, ", ");
        if (len == 7 && strncmp(p, "compact", 7) == 0) {
            return 1;
        }
        p += len;
    }
    return 0;
}

/* DescribeConfigs of the compact specs that we did not create ourselves. */
static int check_policies(rd_kafka_t *rk, const struct pp_topic_spec *specs, size_t n,
                          const int *check, int64_t deadline, char *errstr, size_t errstr_size)
{
    rd_kafka_ConfigResource_t **crs = pp_xcalloc(n, sizeof(*crs));
    size_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        if (check[i]) {
            crs[nc++] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, specs[i].name);
        }
    }
    int rc = -1;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_AdminOptions_t *opt = NULL;
    rd_kafka_event_t *ev = NULL;
    if (nc == 0) {
        rc = 0;
        goto out;
    }
    q = rd_kafka_queue_new(rk);
    opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    int tmo = remaining(deadline);
    rd_kafka_AdminOptions_set_request_timeout(opt, tmo, NULL, 0);
    rd_kafka_DescribeConfigs(rk, crs, nc, opt, q);
    ev = rd_kafka_queue_poll(q, tmo + 1000);
    if (ev == NULL) {
        snprintf(errstr, errstr_size,
                 "describing topic configs: no answer from the cluster within %d ms", tmo);
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        snprintf(errstr, errstr_size, "describing topic configs: %s",
                 rd_kafka_event_error_string(ev));
        goto out;
    }
    size_t nres = 0;
    const rd_kafka_ConfigResource_t **res =
        rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &nres);
    size_t seen = 0;
    for (size_t r = 0; r < nres; r++) {
        const char *name = rd_kafka_ConfigResource_name(res[r]);
        if (rd_kafka_ConfigResource_error(res[r])) {
            snprintf(errstr, errstr_size, "topic %s: describing its config: %s", name,
                     rd_kafka_ConfigResource_error_string(res[r]));
            goto out;
        }
        size_t ncfg = 0;
        const rd_kafka_ConfigEntry_t **cfg = rd_kafka_ConfigResource_configs(res[r], &ncfg);
        const char *policy = "delete"; /* Kafka's default when the entry is absent */
        for (size_t c = 0; c < ncfg; c++) {
            if (strcmp(rd_kafka_ConfigEntry_name(cfg[c]), "cleanup.policy") == 0) {
                const char *v = rd_kafka_ConfigEntry_value(cfg[c]);
                policy = v ? v : "";
            }
        }
        if (!has_compact(policy)) {
            snprintf(errstr, errstr_size,
                     "topic %s has cleanup.policy=%s, partnerpulse needs compact (changelog)", name,
                     policy);
            goto out;
        }
        seen++;
    }
    if (seen != nc) {
        snprintf(errstr, errstr_size, "describing topic configs: %zu of %zu answered", seen, nc);
        goto out;
    }
    rc = 0;
out:
    if (ev) {
        rd_kafka_event_destroy(ev);
    }
    if (opt) {
        rd_kafka_AdminOptions_destroy(opt);
    }
    if (q) {
        rd_kafka_queue_destroy(q);
    }
    for (size_t i = 0; i < nc; i++) {
        rd_kafka_ConfigResource_destroy(crs[i]);
    }
    free(crs);
    return rc;
}

int pp_topics_ensure(rd_kafka_t *rk, const struct pp_topic_spec *specs, size_t n, int replication,
                     int timeout_ms, char *errstr, size_t errstr_size)
{
    if (n == 0) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (specs[i].name == NULL || specs[i].name[0] == '\0' || specs[i].partitions < 1) {
            snprintf(errstr, errstr_size, "internal topic %zu: needs a name and >= 1 partition", i);
            return -1;
        }
    }
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 1);
    enum tstate *st = pp_xcalloc(n, sizeof(*st));
    int *check_policy = pp_xcalloc(n, sizeof(*check_policy));
    const struct rd_kafka_metadata *md = NULL;
    int rc = -1;

    if (fetch_metadata(rk, remaining(deadline), &md, errstr, errstr_size) != 0) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_metadata_topic_t *t = md_topic(md, specs[i].name);
        if (t == NULL ||
            (t->partition_cnt == 0 && t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)) {
            st[i] = T_MISSING;
        }
        else if (t->partition_cnt == 0 && t->err != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE) {
            snprintf(errstr, errstr_size, "topic %s: %s", specs[i].name, rd_kafka_err2str(t->err));
            goto out;
        }
        else {
            st[i] = T_EXISTS;
        }
    }
    rd_kafka_metadata_destroy(md);
    md = NULL;

    if (create_missing(rk, specs, n, st, replication, deadline, errstr, errstr_size) != 0) {
        goto out;
    }
    /* Topics that someone else created (before or concurrently) may carry any
     * policy; the ones we created have ours. */
    for (size_t i = 0; i < n; i++) {
        check_policy[i] = st[i] == T_EXISTS && specs[i].compact;
    }
    if (await_ready(rk, specs, n, st, deadline, errstr, errstr_size) != 0) {
        goto out;
    }
    if (check_policies(rk, specs, n, check_policy, deadline, errstr, errstr_size) != 0) {
        goto out;
    }
    rc = 0;
out:
    if (md) {
        rd_kafka_metadata_destroy(md);
    }
    free(check_policy);
    free(st);
    return rc;
}
