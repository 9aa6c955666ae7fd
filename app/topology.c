/*
 * topology.c — source, customers and partners tasks on one consumer group,
 * changelogs, snapshots, restore and transactions. See topology.h and
 * docs/runtime.md.
 *
 * Everything runs on the event loop thread: records are handled as the
 * consumer hands them out, and a timer every processing.commit_interval
 * sends the watermark ticks, writes the changed state keys to the changelogs
 * and commits (one transaction with the input offsets under exactly_once).
 * Restores are time-sliced on the same loop so /healthz and /readyz answer
 * while a task rebuilds its state.
 */
#include "topology.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "engine.h"
#include "palloc.h"
#include "pipeline.h"
#include "ptime.h"
#include "restore.h"
#include "snapshot.h"
#include "stage.h"
#include "topics.h"

#define MAX_SOURCES   4096
#define MAX_TASKS     4096
#define RESTORE_SLICE 5000 /* changelog records per loop turn while restoring */
/* Backpressure: records queued in the producer above which input partitions
 * pause until the broker has taken half of them (memory stays bounded
 * whatever the input rate). Before that, the producer's own bounds
 * (queue.buffering.max.messages, 100 000 by default, and max.kbytes) make a
 * send wait for room (pp_producer_send_raw): measured, pausing at half of
 * those cost a third of the throughput on a backlog for no memory saved. */
#define OUTQ_HIGH   200000
#define MAX_BP      4096
#define TXN_TIMEOUT 30000
/* A customers task closes no day more than this many days past the slowest
 * customers task's next day: the partners task can evaluate a day only
 * once every customers task has ended it, and buffers the records of the
 * days it cannot evaluate yet. Unbounded, a preloaded backlog of 30 000
 * customers had customers tasks 40 days apart and 380 MB in that buffer.
 * The slowest task is never held back, so nothing waits for ever; events of
 * later days are applied meanwhile (the input alignment keeps them within
 * the rings). Another instance's task is known by what it last published on
 * the watermarks topic, a commit and a fetch late: it counts XSKEW_REMOTE_DAYS
 * ahead of that, else a backlog would close days no faster than one per
 * round trip between instances. */
#define XSKEW_DAYS        0
#define XSKEW_REMOTE_DAYS 7
/* The key the runtime keeps in a task's changelog next to the stage's own
 * (stage.h: the stages never use keys starting with '_'). */
static const uint8_t RT_KEY[] = {'_', 'r', 't'};
#define RT_KEY_LEN 3

enum task_kind { TK_CUSTOMERS = 0, TK_PARTNERS = 1 };

struct source {
    char topic[256];
    int32_t partition;
    bool held;         /* paused: it runs too far ahead of the slowest input */
    int64_t held_ms;   /* event time of the record it is held at */
    int64_t next;      /* offset after the last record handled; -1 none */
    int64_t stream_ms; /* largest event time seen; INT64_MIN none */
    int64_t quiet_since_ms;
    int64_t eof_off; /* the partition's end offset at its last EOF */
    bool eof;
    bool sent, sent_idle, sent_caught;
    int64_t sent_ms;
    int64_t sent_off;   /* next offset last written to the watermarks topic */
    int64_t skip_below; /* records below were forwarded already (-2: not looked up) */
};

/* A tick's third field: 0 active, 1 idle, 2 caught up (source_tick_state). */
enum { TICK_ACTIVE = 0, TICK_IDLE = 1, TICK_CAUGHT_UP = 2 };

struct wm_src {
    char key[300];
    int64_t ms;
    bool idle;
    int64_t off; /* watermarks topic: the input's next offset to forward, -1 unknown */
    bool caught; /* caught up: holds the watermark back by ms + the lateness only */
};

struct pend_day {
    int32_t day;
    int64_t first; /* offset of the day's first record */
};

/* Events of a customers task are applied in batches of up to APPLY_BATCH
 * (pp_cstage_apply_batch: with many customers, the memory an event needs is
 * requested a few events ahead; one by one, each event waited for its
 * customer's state in turn). A batch never outlives the consumer's wake-up:
 * it is applied at its end (on_batch_end), and before anything else that
 * reads or moves a stage (a tick, an exchange or input record, a rebalance,
 * a commit). */
#define APPLY_BATCH 64

struct brec {
    int64_t offset;
    size_t key_off, key_len, val_off, val_len;
};

struct task {
    struct pp_topology *top;
    enum task_kind kind;
    int32_t partition;
    char name[300]; /* snapshot file name */
    bool restoring;
    bool held;          /* its input partition is paused until the restore ends */
    bool from_snapshot; /* the restore started at a snapshot's offset */
    struct pp_restore *rs;
    int64_t restore_started_ms;
    uint64_t restored;
    struct pp_cstage *cs;
    struct pp_pstage *ps;
    int64_t next; /* input offset after the last record handled; -1 none */
    /* customers: the latest tick of every source partition */
    struct wm_src *wm;
    size_t wm_n, wm_cap;
    bool rt_dirty;
    int64_t watermark;
    /* customers: the base of the state horizon last published to the
     * watermarks topic */
    int64_t sent_base;
    /* partners */
    int64_t applied_upto;
    /* customers: the input offset the state holds every record below (in the
     * changelog with it), so a lost committed offset cannot apply twice */
    int64_t applied_next;
    int32_t blocked_day; /* the pending day last seen waiting, and since when */
    int64_t blocked_since_ms;
    struct pend_day *pend;
    size_t pend_n, pend_cap;
    int64_t last_snap_ms;
    /* customers: decoded events not applied yet (apply_later), with what a
     * dead letter needs of their records: the key and value bytes copied */
    struct pp_event *bev;
    struct brec *brec;
    size_t bn;
    uint8_t *bbytes;
    size_t bbytes_n, bbytes_cap;
};

struct pp_topology {
    struct pp_topology_env env;
    struct pp_model_conf mconf;
    bool eos;
    char app[PP_CONF_STR_MAX];
    char inputs[3][PP_CONF_STR_MAX];
    char repart[PP_CONF_STR_MAX + 32], exchange[PP_CONF_STR_MAX + 32];
    char cchangelog[PP_CONF_STR_MAX + 32], pchangelog[PP_CONF_STR_MAX + 32];
    char state_dir[PP_CONF_STR_MAX];
    int64_t commit_ms, snapshot_ms;
    int64_t idle_ms;        /* processing.idle_timeout */
    int64_t cohort_wait_ms; /* processing.cohort_max_wait; 0 = for ever */
    int64_t skew_ms;        /* how far an input may run ahead of the slowest (the rings' slack) */
    int64_t room_ms;        /* how far past a customers task's base an event fits (a day spare) */
    int64_t oldest_ms;      /* the oldest event time any local input delivered; INT64_MAX none */
    /* Every input's latest tick, from <app>-watermarks (read whole by every
     * instance): the global view the event-time alignment needs. */
    char wmtopic[PP_CONF_STR_MAX + 32];
    rd_kafka_t *wmrk;
    bool wm_ready; /* read to the end once: the global view below is whole */
    /* librdkafka's mock cluster hands aborted transactions' records to
     * read_committed readers: its forwarded offsets cannot be trusted */
    bool mock;
    struct wm_src *gwm;
    size_t gwm_n, gwm_cap;
    /* Every customers task's horizon base (its next day to evaluate, as ms),
     * from the same topic: how far ahead any input may be forwarded. */
    struct wm_src *gtask;
    size_t gtask_n, gtask_cap;
    uint32_t n;                   /* customers tasks = repartition partitions */
    uint32_t sources_total;       /* partitions of the input topics */
    rd_kafka_t *prk;              /* the producer's handle */
    rd_kafka_topic_t *repart_rkt; /* dead letters of batched events name it */
    rd_kafka_conf_t *plain;       /* template for restore consumers */
    struct pp_consumer *consumer;
    struct event *tick, *restore_ev;
    struct source *src[MAX_SOURCES];
    size_t src_n;
    struct task *task[MAX_TASKS];
    size_t task_n;
    bool txn_open;
    bool txn_failed; /* a produce was refused: the transaction must be aborted */
    uint64_t txn_records;
    uint64_t applied; /* events given to the customers tasks (input events, counted once) */
    bool progress;    /* records handled since the last commit */
    /* Early commit: something downstream waits for this interval's records
     * (docs/runtime.md "Latency"). */
    struct event *early;
    struct event *idle_ev; /* when the next caught-up input turns idle */
    int64_t idle_at;       /* idle_ev's deadline (mono ms), 0: not armed */
    bool urgent;
    int64_t last_commit_ms;
    bool stopping;
    bool releasing; /* in release_capped */
    int64_t last_status_ms;
    /* partitions paused for backpressure */
    struct {
        char topic[256];
        int32_t partition;
    } bp[MAX_BP];
    size_t bp_n;
    struct pp_metric *m_bp;
    uint8_t *xbuf;
    /* metrics */
    struct pp_metric *m_restored, *m_restoring, *m_commit, *m_tasks[2], *m_last_day;
    struct pp_metric *m_txn_ok, *m_txn_abort, *m_holds, *m_fallbacks;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fatal(struct pp_topology *t, int code)
{
    if (t->env.fatal) {
        t->env.fatal(code, t->env.opaque);
    }
}

/* ------------------------------------------------------------ lookups */

/* An input's name in ticks and on the watermarks topic: "<topic>/<partition>". */
static void source_key(const struct source *s, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%d", s->topic, (int)s->partition);
}

static struct source *source_find(struct pp_topology *t, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < t->src_n; i++) {
        if (t->src[i]->partition == partition && strcmp(t->src[i]->topic, topic) == 0) {
            return t->src[i];
        }
    }
    return NULL;
}

static struct task *task_find(struct pp_topology *t, enum task_kind kind, int32_t partition)
{
    for (size_t i = 0; i < t->task_n; i++) {
        if (t->task[i]->kind == kind && t->task[i]->partition == partition) {
            return t->task[i];
        }
    }
    return NULL;
}

static bool is_input(const struct pp_topology *t, const char *topic)
{
    for (int i = 0; i < 3; i++) {
        if (strcmp(t->inputs[i], topic) == 0) {
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------ runtime meta */

/* Customers: "wm\t<source>\t<ms>\t<idle>\n" per source. Partners:
 * "applied\t<offset>\n". Text: a few hundred bytes per task. */
static size_t rt_encode(const struct task *k, char *buf, size_t cap)
{
    size_t n = 0;
    if (k->kind == TK_PARTNERS) {
        int w = snprintf(buf, cap, "applied\t%" PRId64 "\n", k->applied_upto);
        return w > 0 && (size_t)w < cap ? (size_t)w : 0;
    }
    int w0 = snprintf(buf, cap, "next\t%" PRId64 "\n", k->applied_next);
    if (w0 < 0 || (size_t)w0 >= cap) {
        return 0;
    }
    n = (size_t)w0;
    for (size_t i = 0; i < k->wm_n; i++) {
        int w = snprintf(buf + n, cap - n, "wm\t%s\t%" PRId64 "\t%d\n", k->wm[i].key, k->wm[i].ms,
                         k->wm[i].idle     ? TICK_IDLE
                         : k->wm[i].caught ? TICK_CAUGHT_UP
                                           : TICK_ACTIVE);
        if (w < 0 || (size_t)w >= cap - n) {
            return 0;
        }
        n += (size_t)w;
    }
    return n;
}

static void wm_set(struct task *k, const char *key, int64_t ms, int state)
{
    bool idle = state == TICK_IDLE, caught = state == TICK_CAUGHT_UP;
    for (size_t i = 0; i < k->wm_n; i++) {
        if (strcmp(k->wm[i].key, key) == 0) {
            if (ms == INT64_MIN && !idle) {
                /* A new owner that has read nothing yet knows nothing: the
                 * input stays idle (or not) until it has read something or
                 * gone quiet itself; else every move of an empty partition
                 * would hold every watermark back. */
                return;
            }
            if (ms > k->wm[i].ms) {
                k->wm[i].ms = ms;
            }
            k->wm[i].idle = idle;
            k->wm[i].caught = caught;
            return;
        }
    }
    if (k->wm_n == k->wm_cap) {
        k->wm_cap = k->wm_cap ? 2 * k->wm_cap : 16;
        k->wm = pp_xrealloc(k->wm, k->wm_cap * sizeof(*k->wm));
    }
    struct wm_src *w = &k->wm[k->wm_n++];
    snprintf(w->key, sizeof(w->key), "%s", key);
    w->ms = ms;
    w->idle = idle;
    w->off = -1;
    w->caught = caught;
}

static int rt_decode(struct task *k, const char *buf, size_t len)
{
    char line[512];
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && buf[j] != '\n') {
            j++;
        }
        size_t l = j - i < sizeof(line) - 1 ? j - i : sizeof(line) - 1;
        memcpy(line, buf + i, l);
        line[l] = '\0';
        i = j + 1;
        char *f1 = strchr(line, '\t');
        if (f1 == NULL) {
            return -1;
        }
        *f1++ = '\0';
        if (strcmp(line, "applied") == 0) {
            k->applied_upto = strtoll(f1, NULL, 10);
            continue;
        }
        if (strcmp(line, "next") == 0) {
            k->applied_next = strtoll(f1, NULL, 10);
            continue;
        }
        char *f2 = strchr(f1, '\t');
        char *f3 = f2 ? strchr(f2 + 1, '\t') : NULL;
        if (strcmp(line, "wm") != 0 || f2 == NULL || f3 == NULL) {
            return -1;
        }
        *f2++ = '\0';
        *f3++ = '\0';
        wm_set(k, f1, strtoll(f2, NULL, 10), f3[0] - '0');
    }
    return 0;
}

/* ------------------------------------------------------------ tasks */

static int restore_kv(struct task *k, const uint8_t *key, size_t kl, const uint8_t *val, size_t vl,
                      char *err, size_t errsz)
{
    if (kl == RT_KEY_LEN && memcmp(key, RT_KEY, RT_KEY_LEN) == 0) {
        if (vl == 0) {
            return 0;
        }
        if (rt_decode(k, (const char *)val, vl) != 0) {
            snprintf(err, errsz, "bad runtime meta record");
            return -1;
        }
        return 0;
    }
    return k->kind == TK_CUSTOMERS ? pp_cstage_restore_kv(k->cs, key, kl, val, vl, err, errsz)
                                   : pp_pstage_restore_kv(k->ps, key, kl, val, vl, err, errsz);
}

static void stage_fresh(struct pp_topology *t, struct task *k)
{
    pp_cstage_destroy(k->cs);
    pp_pstage_destroy(k->ps);
    k->cs = NULL;
    k->ps = NULL;
    if (k->kind == TK_CUSTOMERS) {
        k->cs = pp_cstage_new(&t->mconf, (uint32_t)k->partition, t->n);
    }
    else {
        k->ps = pp_pstage_new(&t->mconf, t->n);
    }
    k->wm_n = 0;
    k->watermark = INT64_MIN;
    k->sent_base = INT64_MIN;
    k->applied_upto = -1;
    k->applied_next = -1;
    k->pend_n = 0;
    k->rt_dirty = false;
    k->bn = 0; /* not applied: read again from the committed offsets */
    k->bbytes_n = 0;
}

static int snap_cb(const void *key, size_t kl, const void *val, size_t vl, void *opaque)
{
    struct task *k = opaque;
    char err[256];
    if (restore_kv(k, key, kl, val, vl, err, sizeof(err)) != 0) {
        pp_log(PP_LOG_WARN, "msg=\"snapshot record rejected\" task=%s error=\"%s\"", k->name, err);
        return -1;
    }
    return 0;
}

/* Loads the snapshot when there is a valid one, and starts reading the
 * changelog from its offset (else from the beginning). */
static void restore_start(struct pp_topology *t, struct task *k)
{
    char err[512];
    stage_fresh(t, k);
    k->restoring = true;
    k->restored = 0;
    k->restore_started_ms = mono_ms();
    int64_t from = RD_KAFKA_OFFSET_BEGINNING;
    if (t->state_dir[0]) {
        int64_t off = -1;
        int rc = pp_snapshot_load(t->state_dir, k->name, &off, snap_cb, k, err, sizeof(err));
        if (rc == 1) {
            from = off;
            pp_log(PP_LOG_INFO, "msg=\"snapshot loaded\" task=%s changelog_offset=%" PRId64,
                   k->name, off);
        }
        else if (rc < 0) {
            pp_log(PP_LOG_WARN,
                   "msg=\"snapshot unusable, restoring from the whole changelog\" task=%s "
                   "error=\"%s\"",
                   k->name, err);
            stage_fresh(t, k);
        }
    }
    const char *cl = k->kind == TK_CUSTOMERS ? t->cchangelog : t->pchangelog;
    k->rs = pp_restore_new(t->plain, cl, k->partition, from, err, sizeof(err));
    k->from_snapshot = from != RD_KAFKA_OFFSET_BEGINNING;
    if (k->rs == NULL) {
        pp_log(PP_LOG_ERROR, "msg=\"cannot start the restore\" task=%s error=\"%s\"", k->name, err);
        fatal(t, 1);
        return;
    }
    event_active(t->restore_ev, EV_TIMEOUT, 0);
}

static struct task *task_new(struct pp_topology *t, enum task_kind kind, int32_t partition)
{
    if (t->task_n == MAX_TASKS) {
        return NULL;
    }
    struct task *k = pp_xcalloc(1, sizeof(*k));
    k->top = t;
    k->kind = kind;
    k->partition = partition;
    k->next = -1;
    k->last_snap_ms = mono_ms();
    snprintf(k->name, sizeof(k->name), "%s-%s-%d", t->app,
             kind == TK_CUSTOMERS ? "customers" : "partners", (int)partition);
    t->task[t->task_n++] = k;
    restore_start(t, k);
    return k;
}

static void task_free(struct task *k)
{
    pp_restore_destroy(k->rs);
    pp_cstage_destroy(k->cs);
    pp_pstage_destroy(k->ps);
    free(k->wm);
    free(k->pend);
    free(k->bev);
    free(k->brec);
    free(k->bbytes);
    free(k);
}

static void task_remove(struct pp_topology *t, struct task *k)
{
    for (size_t i = 0; i < t->task_n; i++) {
        if (t->task[i] == k) {
            t->task[i] = t->task[--t->task_n];
            break;
        }
    }
    task_free(k);
}

/* ------------------------------------------------------ early commit */

/* Something downstream waits for what this interval wrote: an input passed
 * a day boundary (its tick may close a day), a customers task ended a day
 * (the partners task waits for it), an alert. Under exactly_once nothing is
 * readable before the commit, so on_early commits as soon as the loop has
 * handled what librdkafka fetched (never more often than every quarter of
 * the interval), instead of at the end of the interval. */
static void want_commit(struct pp_topology *t)
{
    if (t->urgent || t->early == NULL || t->stopping) {
        return; /* on_early is already due */
    }
    t->urgent = true;
    event_active(t->early, EV_TIMEOUT, 0);
}

/* The event-time day an input at ms lets close (the watermark's rule). */
static int32_t closing_day(const struct pp_topology *t, int64_t ms)
{
    return pp_day_from_ms(ms - (int64_t)t->mconf.allowed_lateness_ms) - 1;
}

/* An input's stream time moves to ms: a day boundary passed is worth an
 * early tick and commit. */
static void source_advanced(struct pp_topology *t, const struct source *s, int64_t ms)
{
    if (s->stream_ms != INT64_MIN && ms > s->stream_ms &&
        closing_day(t, ms) > closing_day(t, s->stream_ms)) {
        want_commit(t);
    }
}

/* -------------------------------------------------------- producing */

static int send_raw(struct pp_topology *t, const char *topic, int32_t partition, const void *key,
                    size_t kl, const void *val, size_t vl, rd_kafka_headers_t *hdrs)
{
    char err[512];
    if (pp_producer_send_raw(t->env.producer, topic, partition, key, kl, val, vl, hdrs, err,
                             sizeof(err)) != 0) {
        if (pp_topology_txn_refused(t)) {
            return -1;
        }
        char fe[256];
        if (rd_kafka_fatal_error(t->prk, fe, sizeof(fe)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            pp_log(PP_LOG_ERROR,
                   "msg=\"producer fatal error: exiting so the orchestrator restarts us\" "
                   "error=\"%s\"",
                   fe);
            fatal(t, 3);
            return -1;
        }
        pp_log(PP_LOG_ERROR, "msg=\"cannot queue record\" error=\"%s\"", err);
        fatal(t, 1);
        return -1;
    }
    t->txn_records++;
    return 0;
}

/* Exchange records of a customers task go to the one partners task. */
static void emit_x(const struct pp_xrec *x, void *opaque)
{
    struct task *k = opaque;
    struct pp_topology *t = k->top;
    size_t len = pp_xrec_encode(x, t->xbuf, PP_XREC_MAX_BYTES);
    if (len == 0) {
        pp_log(PP_LOG_ERROR, "msg=\"exchange record does not encode\" task=%s", k->name);
        fatal(t, 1);
        return;
    }
    send_raw(t, t->exchange, 0, NULL, 0, t->xbuf, len, NULL);
    if (x->kind == PP_XREC_EOD) {
        want_commit(t);
    }
}

static void on_alert_x(const struct pp_alert *alert, void *opaque)
{
    struct task *k = opaque;
    k->top->txn_records++;
    k->top->env.alert(alert, k->top->env.opaque);
    want_commit(k->top);
}

/* How far a (non-idle) input's tick lets the watermark go: its event time,
 * plus the allowed lateness while it is caught up (source_tick_state). */
static int64_t tick_holds(const struct pp_topology *t, const struct wm_src *w)
{
    int64_t late = (int64_t)t->mconf.allowed_lateness_ms;
    if (!w->caught || w->ms == INT64_MIN || w->ms > INT64_MAX - late) {
        return w->ms;
    }
    return w->ms + late;
}

/* The smallest tick over every input partition (caught-up ones count their
 * time plus the allowed lateness, at most the largest); the largest when all
 * are idle; INT64_MIN until every input partition has ticked. */
static int64_t task_watermark(const struct pp_topology *t, const struct task *k)
{
    if (k->wm_n < t->sources_total || k->wm_n == 0) {
        return INT64_MIN;
    }
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < k->wm_n; i++) {
        if (k->wm[i].ms > hi) {
            hi = k->wm[i].ms;
        }
        int64_t held = tick_holds(t, &k->wm[i]);
        if (!k->wm[i].idle && held < lo) {
            lo = held;
        }
    }
    /* Caught-up inputs never take the watermark past the newest event of
     * any input (what it is once every input is idle). */
    return lo == INT64_MAX || lo > hi ? hi : lo;
}

/* The first day a customers task has not evaluated yet, as ms: events more
 * than the rings' slack after it are PP_APPLY_SKEWED. INT64_MAX when the task
 * holds nothing yet. */
static int64_t task_base(const struct task *k)
{
    int32_t last = pp_cstage_last_day(k->cs);
    if (last != INT32_MIN) {
        return ((int64_t)last + 1) * 86400000;
    }
    int32_t first = pp_cstage_first_day(k->cs);
    return first == INT32_MIN ? INT64_MAX : (int64_t)first * 86400000;
}

/* The smallest next day to evaluate over every customers task: live for
 * this instance's tasks, as published on the watermarks topic plus
 * XSKEW_REMOTE_DAYS for the others (and for a local one still restoring).
 * INT64_MAX when none holds anything yet. */
static int64_t slowest_base(struct pp_topology *t)
{
    int64_t lo = INT64_MAX;
    for (size_t i = 0; i < t->gtask_n; i++) {
        const struct wm_src *w = &t->gtask[i];
        int p = -1;
        if (sscanf(w->key, "task:%d", &p) == 1) {
            const struct task *k = task_find(t, TK_CUSTOMERS, p);
            if (k && !k->restoring) {
                continue; /* below, live */
            }
        }
        int64_t ahead = (int64_t)XSKEW_REMOTE_DAYS * 86400000;
        if (w->ms != INT64_MIN && w->ms <= INT64_MAX - ahead && w->ms + ahead < lo) {
            lo = w->ms + ahead;
        }
    }
    for (size_t i = 0; i < t->task_n; i++) {
        const struct task *k = t->task[i];
        if (k->kind == TK_CUSTOMERS && !k->restoring) {
            int64_t b = task_base(k);
            lo = b < lo ? b : lo;
        }
    }
    return lo;
}

/* The watermark a customers task may advance to: no day more than
 * XSKEW_DAYS past the slowest customers task's next day (slowest_base). */
static int64_t advance_cap(struct pp_topology *t)
{
    int64_t base = slowest_base(t);
    int64_t span = (XSKEW_DAYS + 2) * (int64_t)86400000 + (int64_t)t->mconf.allowed_lateness_ms - 1;
    return base == INT64_MAX || base > INT64_MAX - span ? INT64_MAX : base + span;
}

static void release_capped(struct pp_topology *t);

static void customers_advance(struct pp_topology *t, struct task *k)
{
    int64_t wm = task_watermark(t, k);
    int64_t cap = advance_cap(t);
    if (wm > cap) {
        wm = cap; /* see XSKEW_DAYS */
    }
    if (wm > k->watermark) {
        int64_t base = task_base(k);
        k->watermark = wm;
        pp_cstage_advance(k->cs, wm, emit_x, k);
        if (task_base(k) != base) {
            release_capped(t);
        }
    }
}

/* A customers task closed days: the tasks it held back may go on. */
static void release_capped(struct pp_topology *t)
{
    if (t->releasing) {
        return;
    }
    t->releasing = true;
    for (bool again = true; again;) {
        again = false;
        for (size_t i = 0; i < t->task_n; i++) {
            struct task *k = t->task[i];
            if (k->kind == TK_CUSTOMERS && !k->restoring) {
                int64_t before = k->watermark;
                customers_advance(t, k);
                again |= k->watermark != before;
            }
        }
    }
    t->releasing = false;
}

/* --------------------------------------------------------- records */

static void dead_letter(struct pp_topology *t, const rd_kafka_message_t *rkm, const char *reason,
                        const char *detail)
{
    t->txn_records++;
    t->env.dead_letter(rkm, reason, detail, t->env.opaque);
}

static int hold_restoring(struct pp_topology *t, struct task *k, const rd_kafka_message_t *rkm)
{
    if (pp_consumer_hold(t->consumer, rkm) != 0) {
        pp_log(PP_LOG_ERROR, "msg=\"cannot pause a restoring task's input\" task=%s", k->name);
        fatal(t, 1);
        return PP_CONSUMER_DONE;
    }
    k->held = true;
    return PP_CONSUMER_HOLD;
}

static const char *header(const rd_kafka_message_t *rkm, const char *name, size_t *len)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *v = NULL;
    if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, name, &v, len) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return NULL;
    }
    return v;
}

static void on_tick_record(struct pp_topology *t, struct task *k, const rd_kafka_message_t *rkm)
{
    char buf[512];
    size_t n = rkm->len < sizeof(buf) - 1 ? rkm->len : sizeof(buf) - 1;
    memcpy(buf, rkm->payload, n);
    buf[n] = '\0';
    char *f2 = strchr(buf, '\t');
    char *f3 = f2 ? strchr(f2 + 1, '\t') : NULL;
    if (f3 == NULL) {
        pp_log(PP_LOG_WARN, "msg=\"malformed watermark tick ignored\" task=%s offset=%" PRId64,
               k->name, rkm->offset);
        return;
    }
    *f2++ = '\0';
    *f3++ = '\0';
    wm_set(k, buf, strtoll(f2, NULL, 10), f3[0] - '0');
    k->rt_dirty = true;
    customers_advance(t, k);
}

/* Records of evaluated days need not be read again; those of any later day
 * (end-of-day markers included: a restore forgets them, see
 * pp_pstage_rewind_sources) must. */
static void partners_evaluated(struct pp_topology *t, struct task *k, int32_t last)
{
    int32_t now = pp_pstage_last_day(k->ps);
    for (size_t i = 0; now != INT32_MIN && i < k->pend_n;) {
        if (k->pend[i].day <= now) {
            k->pend[i] = k->pend[--k->pend_n];
            continue;
        }
        i++;
    }
    if (now != last && t->env.day) {
        t->env.day(now, t->env.opaque);
    }
}

static void partners_offer(struct pp_topology *t, struct task *k, const rd_kafka_message_t *rkm)
{
    struct pp_xrec x;
    char err[256];
    if (pp_xrec_decode(rkm->payload, rkm->len, &x, err, sizeof(err)) != 0) {
        dead_letter(t, rkm, "bad_internal_record", err);
        return;
    }
    int32_t last = pp_pstage_last_day(k->ps);
    bool replay = rkm->offset < k->applied_upto;
    bool ledger = x.kind == PP_XREC_DEAL || x.kind == PP_XREC_REVERSAL;
    /* A source left behind (partners_wait) rejoins on its end-of-day for
     * the last evaluated day: the stage must see it. */
    bool rejoin = x.kind == PP_XREC_EOD && pp_pstage_absent(k->ps) > 0;
    if (!rejoin && (ledger ? replay : (last != INT32_MIN && x.day <= last))) {
        return; /* already in the restored state */
    }
    if (!ledger && (last == INT32_MIN || x.day > last)) {
        size_t i = 0;
        while (i < k->pend_n && k->pend[i].day != x.day) {
            i++;
        }
        if (i == k->pend_n) {
            if (k->pend_n == k->pend_cap) {
                k->pend_cap = k->pend_cap ? 2 * k->pend_cap : 16;
                k->pend = pp_xrealloc(k->pend, k->pend_cap * sizeof(*k->pend));
            }
            k->pend[k->pend_n++] = (struct pend_day){x.day, rkm->offset};
        }
    }
    if (pp_pstage_offer(k->ps, &x, on_alert_x, k, err, sizeof(err)) < 0) {
        dead_letter(t, rkm, "bad_internal_record", err);
        return;
    }
    partners_evaluated(t, k, last);
}

/* MODEL.md §1's maximum wait: a day that has waited processing.cohort_max_wait
 * for a customers partition is evaluated without it (fallback baselines; the
 * alerts say so). Wall clock: a crashed task's partitions normally move and
 * catch up well within it. */
static void partners_wait(struct pp_topology *t, int64_t now)
{
    for (size_t i = 0; t->cohort_wait_ms > 0 && i < t->task_n; i++) {
        struct task *k = t->task[i];
        if (k->kind != TK_PARTNERS || k->restoring) {
            continue;
        }
        int32_t day = pp_pstage_pending_day(k->ps);
        if (day == INT32_MIN || day != k->blocked_day) {
            k->blocked_day = day;
            k->blocked_since_ms = now;
            continue;
        }
        if (now - k->blocked_since_ms < t->cohort_wait_ms) {
            continue;
        }
        int32_t last = pp_pstage_last_day(k->ps);
        uint32_t left = pp_pstage_force(k->ps, on_alert_x, k);
        k->blocked_since_ms = now;
        if (left == 0) {
            continue;
        }
        char d[16];
        pp_day_format(day, d, sizeof(d));
        pp_log(PP_LOG_WARN,
               "msg=\"cohort wait ran out: day evaluated without late customers partitions, "
               "fallback baselines\" day=%s partitions_late=%u of=%u waited_ms=%" PRId64,
               d, left, t->n, t->cohort_wait_ms);
        pp_metric_add(t->m_fallbacks, 1);
        t->progress = true;
        partners_evaluated(t, k, last);
    }
}

/* The oldest event time an input may still deliver: the smallest latest
 * tick over every input partition (idle ones aside), from the watermarks
 * topic that every instance reads whole. While an input has not delivered
 * anything yet (or not ticked), it is assumed to start at the oldest event
 * known, like the single-task watermark's floor. INT64_MIN when nothing is
 * known yet. */
static int64_t input_floor(const struct pp_topology *t)
{
    int64_t lo = INT64_MAX, oldest = t->oldest_ms;
    bool unknown = t->gwm_n < t->sources_total;
    for (size_t j = 0; j < t->gwm_n; j++) {
        const struct wm_src *w = &t->gwm[j];
        if (w->ms != INT64_MIN && w->ms < oldest) {
            oldest = w->ms;
        }
        if (w->idle) {
            continue;
        }
        if (w->ms == INT64_MIN) {
            unknown = true;
        }
        else if (tick_holds(t, w) < lo) {
            lo = tick_holds(t, w);
        }
    }
    for (size_t i = 0; i < t->src_n; i++) {
        /* our own inputs, ahead of their ticks */
        const struct source *s = t->src[i];
        if (s->stream_ms != INT64_MIN && s->stream_ms < oldest) {
            oldest = s->stream_ms;
        }
    }
    if (unknown && oldest < lo) {
        lo = oldest;
    }
    return lo == INT64_MAX ? INT64_MIN : lo;
}

/* Reads what arrived on the watermarks topic (never blocks). */
static void poll_watermarks(struct pp_topology *t)
{
    if (t->wmrk == NULL) {
        return;
    }
    rd_kafka_message_t *m;
    for (int n = 0; n < 10000 && (m = rd_kafka_consumer_poll(t->wmrk, 0)) != NULL; n++) {
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && !t->wm_ready) {
            /* Everything committed when we started is read. */
            t->wm_ready = true;
            pp_log(PP_LOG_DEBUG, "msg=\"watermarks topic read\" inputs=%zu tasks=%zu", t->gwm_n,
                   t->gtask_n);
        }
        if (!m->err && m->key && m->key_len > 0 && m->key_len < 300 && m->payload) {
            char buf[512];
            size_t len = m->len < sizeof(buf) - 1 ? m->len : sizeof(buf) - 1;
            memcpy(buf, m->payload, len);
            buf[len] = '\0';
            char *f2 = strchr(buf, '\t');
            char *f3 = f2 ? strchr(f2 + 1, '\t') : NULL;
            if (f3) {
                *f2++ = '\0';
                *f3++ = '\0';
                bool base = strncmp(buf, "task:", 5) == 0;
                struct task tmp = {.wm = base ? t->gtask : t->gwm,
                                   .wm_n = base ? t->gtask_n : t->gwm_n,
                                   .wm_cap = base ? t->gtask_cap : t->gwm_cap};
                wm_set(&tmp, buf, strtoll(f2, NULL, 10), f3[0] - '0');
                char *f4 = strchr(f3, '\t');
                for (size_t j = 0; !base && f4 && j < tmp.wm_n; j++) {
                    if (strcmp(tmp.wm[j].key, buf) == 0) {
                        int64_t off = strtoll(f4 + 1, NULL, 10);
                        if (off > tmp.wm[j].off) {
                            tmp.wm[j].off = off;
                        }
                        break;
                    }
                }
                if (base) {
                    t->gtask = tmp.wm;
                    t->gtask_n = tmp.wm_n;
                    t->gtask_cap = tmp.wm_cap;
                }
                else {
                    t->gwm = tmp.wm;
                    t->gwm_n = tmp.wm_n;
                    t->gwm_cap = tmp.wm_cap;
                }
            }
        }
        rd_kafka_message_destroy(m);
    }
}

/* The smallest horizon base published by any customers task (INT64_MAX
 * when none holds anything yet). */
static int64_t tasks_base(const struct pp_topology *t)
{
    int64_t lo = INT64_MAX;
    for (size_t i = 0; i < t->gtask_n; i++) {
        if (t->gtask[i].ms != INT64_MIN && t->gtask[i].ms < lo) {
            lo = t->gtask[i].ms;
        }
    }
    return lo;
}

/* Whether an event at ev_ms must wait: more than half the rings' slack
 * ahead of the slowest input (so the ticks in flight still fit), or beyond
 * what the slowest customers task can hold (its next day to evaluate plus
 * the slack, a day spare). */
static bool too_far_ahead(const struct pp_topology *t, int64_t ev_ms)
{
    if (t->wmrk != NULL && !t->wm_ready) {
        /* Until the watermarks topic is read to its end, the inputs and
         * tasks this instance does not know of look like nothing holds it
         * back: an instance just started would forward far ahead. */
        return true;
    }
    int64_t floor = input_floor(t);
    if (floor != INT64_MIN && ev_ms - floor > t->skew_ms / 2) {
        return true;
    }
    int64_t base = tasks_base(t);
    return base != INT64_MAX && ev_ms - base > t->room_ms;
}

static void release_held(struct pp_topology *t)
{
    for (size_t i = 0; i < t->src_n; i++) {
        struct source *s = t->src[i];
        if (s->held && !too_far_ahead(t, s->held_ms)) {
            pp_consumer_resume(t->consumer, s->topic, s->partition);
            s->held = false;
        }
    }
}

/* The producer holds too much: pause this record's partition (it is read
 * again from this record after the resume). */
static bool backpressure(struct pp_topology *t, const rd_kafka_message_t *rkm)
{
    if (rd_kafka_outq_len(t->prk) < OUTQ_HIGH || t->bp_n == MAX_BP ||
        pp_consumer_hold(t->consumer, rkm) != 0) {
        return false;
    }
    struct source *src = source_find(t, rd_kafka_topic_name(rkm->rkt), rkm->partition);
    if (src) {
        src->eof = false; /* records are waiting: not idle */
    }
    snprintf(t->bp[t->bp_n].topic, sizeof(t->bp[0].topic), "%s", rd_kafka_topic_name(rkm->rkt));
    t->bp[t->bp_n].partition = rkm->partition;
    t->bp_n++;
    pp_metric_add(t->m_bp, 1);
    return true;
}

static void release_backpressure(struct pp_topology *t)
{
    if (t->bp_n == 0 || rd_kafka_outq_len(t->prk) > OUTQ_HIGH / 2) {
        return;
    }
    for (size_t i = 0; i < t->bp_n; i++) {
        pp_consumer_resume(t->consumer, t->bp[i].topic, t->bp[i].partition);
    }
    t->bp_n = 0;
}

/* The next offset of s that its owners have forwarded, from the watermarks
 * topic (written in the same transaction as the forwarded records and the
 * input offsets), -1 unknown. Guards against a committed offset found behind
 * it: re-forwarding would dead-letter or double-count what was forwarded. */
static int64_t forwarded_upto(const struct pp_topology *t, const struct source *s)
{
    char key[300];
    source_key(s, key, sizeof(key));
    for (size_t j = 0; j < t->gwm_n; j++) {
        if (strcmp(t->gwm[j].key, key) == 0) {
            return t->gwm[j].off;
        }
    }
    return -1;
}

/* Applies a customers task's batch (APPLY_BATCH). */
static void apply_batch(struct pp_topology *t, struct task *k)
{
    size_t n = k->bn;
    if (n == 0) {
        return;
    }
    enum pp_apply_result res[APPLY_BATCH];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pp_cstage_apply_batch(k->cs, k->bev, n, res);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double per_event =
        ((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9) / (double)n;
    k->bn = 0;
    for (size_t i = 0; i < n; i++) {
        const struct brec *b = &k->brec[i];
        t->applied++;
        if (res[i] != PP_APPLY_OK) {
            /* The record as the consumer handed it out (dead_letter reads
             * its topic, partition, offset, key and value). */
            rd_kafka_message_t m = {
                .rkt = t->repart_rkt,
                .partition = k->partition,
                .offset = b->offset,
                .payload = k->bbytes + b->val_off,
                .len = b->val_len,
                .key = b->key_len ? k->bbytes + b->key_off : NULL,
                .key_len = b->key_len,
            };
            if (res[i] == PP_APPLY_TOO_LATE) {
                dead_letter(t, &m, "too_late",
                            "event day already evaluated (beyond allowed lateness)");
            }
            else {
                char why[160];
                snprintf(why, sizeof(why),
                         "event day %d is beyond the state horizon of task %d (last evaluated "
                         "day %d, watermark day %" PRId64 ")",
                         (int)(k->bev[i].occurred_at_ms / 86400000), (int)k->partition,
                         (int)pp_cstage_last_day(k->cs),
                         k->watermark == INT64_MIN ? (int64_t)-1 : k->watermark / 86400000);
                dead_letter(t, &m, "partition_skew", why);
            }
        }
        if (t->env.event) {
            t->env.event((int)k->bev[i].type, per_event, t->env.opaque);
        }
    }
    k->next = k->brec[n - 1].offset + 1;
    k->bbytes_n = 0;
}

/* Applies every pending batch: before anything reads or moves a stage. */
static void apply_all(struct pp_topology *t)
{
    for (size_t i = 0; i < t->task_n; i++) {
        if (t->task[i]->bn > 0) {
            apply_batch(t, t->task[i]);
        }
    }
}

static void on_batch_end(void *opaque)
{
    apply_all(opaque);
}

static void bytes_put(struct task *k, const void *p, size_t n, size_t *off)
{
    if (k->bbytes_n + n > k->bbytes_cap) {
        size_t cap = k->bbytes_cap ? k->bbytes_cap : 16384;
        while (cap < k->bbytes_n + n) {
            cap *= 2;
        }
        k->bbytes = pp_xrealloc(k->bbytes, cap);
        k->bbytes_cap = cap;
    }
    *off = k->bbytes_n;
    if (n > 0) {
        memcpy(k->bbytes + k->bbytes_n, p, n);
    }
    k->bbytes_n += n;
}

/* Queues a decoded event of a customers task for the next batch. */
static void apply_later(struct pp_topology *t, struct task *k, const struct pp_event *ev,
                        const rd_kafka_message_t *rkm)
{
    if (k->bev == NULL) {
        k->bev = pp_xmalloc(APPLY_BATCH * sizeof(*k->bev));
        k->brec = pp_xmalloc(APPLY_BATCH * sizeof(*k->brec));
    }
    if (k->bn == APPLY_BATCH) {
        apply_batch(t, k);
    }
    struct brec *b = &k->brec[k->bn];
    k->bev[k->bn] = *ev;
    b->offset = rkm->offset;
    b->key_len = rkm->key_len;
    b->val_len = rkm->len;
    bytes_put(k, rkm->key, rkm->key_len, &b->key_off);
    bytes_put(k, rkm->payload, rkm->len, &b->val_off);
    k->bn++;
}

/* The consumer hands out the internal topics first (consumer.h levels): the
 * exchange (end-of-day records, the partners task's input), then the
 * repartition topic (events and ticks for the customers tasks), then the
 * inputs. An alert's path is input -> repartition -> exchange, one
 * transaction per hop; without the levels, an end-of-day record committed
 * by the previous transaction waited behind every input record librdkafka
 * had prefetched meanwhile (5 000-24 000 at the paced benchmark's rate, up
 * to 180 ms). Downstream first also bounds the work in flight. */
static int topic_level(const char *topic, void *opaque)
{
    const struct pp_topology *t = opaque;
    if (strcmp(topic, t->exchange) == 0) {
        return 2;
    }
    return strcmp(topic, t->repart) == 0 ? 1 : 0;
}

static int on_raw(const rd_kafka_message_t *rkm, void *opaque)
{
    struct pp_topology *t = opaque;
    if (backpressure(t, rkm)) {
        return PP_CONSUMER_HOLD;
    }
    t->progress = true;
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    bool repart = strcmp(topic, t->repart) == 0; /* most records: compared once */
    if (!repart) {
        apply_all(t); /* an exchange or input record: the stages as they are */
    }
    if (strcmp(topic, t->exchange) == 0) {
        struct task *k = task_find(t, TK_PARTNERS, rkm->partition);
        if (k == NULL) {
            return PP_CONSUMER_DONE; /* revoked meanwhile */
        }
        if (k->restoring) {
            return hold_restoring(t, k, rkm);
        }
        partners_offer(t, k, rkm);
        k->next = rkm->offset + 1;
        return PP_CONSUMER_DONE;
    }
    if (repart) {
        struct task *k = task_find(t, TK_CUSTOMERS, rkm->partition);
        if (k == NULL) {
            return PP_CONSUMER_DONE;
        }
        if (k->restoring) {
            return hold_restoring(t, k, rkm);
        }
        if (rkm->offset < k->applied_next) {
            /* Below what the restored state holds: the committed offset of
             * this partition was behind its changelog (seen after an owner
             * was killed mid-commit); applying it again would count twice. */
            if (k->next < 0) {
                pp_log(PP_LOG_WARN,
                       "msg=\"input starts below the task's state: skipping what it holds\" "
                       "task=%s offset=%" PRId64 " state_offset=%" PRId64,
                       k->name, rkm->offset, k->applied_next);
            }
            k->next = rkm->offset + 1;
            return PP_CONSUMER_DONE;
        }
        size_t hl;
        const char *kind = header(rkm, "pp.kind", &hl);
        if (kind && hl == 2 && memcmp(kind, "wm", 2) == 0) {
            apply_all(t); /* a tick may close days, of any task (release_capped) */
            on_tick_record(t, k, rkm);
            k->next = rkm->offset + 1;
            return PP_CONSUMER_DONE;
        }
    }
    return PP_CONSUMER_RAW_DECODE;
}

static enum pp_consumer_verdict on_event(const struct pp_event *ev, const rd_kafka_message_t *rkm,
                                         void *opaque)
{
    struct pp_topology *t = opaque;
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    if (strcmp(topic, t->repart) == 0) {
        struct task *k = task_find(t, TK_CUSTOMERS, rkm->partition);
        if (k != NULL) {
            apply_later(t, k, ev, rkm);
        }
        return PP_CONSUMER_DONE;
    }
    struct source *s = source_find(t, topic, rkm->partition);
    if (s == NULL) {
        return PP_CONSUMER_DONE;
    }
    if (ev->occurred_at_ms < t->oldest_ms) {
        t->oldest_ms = ev->occurred_at_ms;
    }
    if (too_far_ahead(t, ev->occurred_at_ms)) {
        /* Event-time alignment: the customers tasks' day rings hold this
         * much skew; wait for the slowest input rather than dead-letter. */
        if (pp_consumer_hold(t->consumer, rkm) == 0) {
            s->held = true;
            s->eof = false;
            s->held_ms = ev->occurred_at_ms;
            if (ev->occurred_at_ms > s->stream_ms) {
                s->stream_ms = ev->occurred_at_ms; /* nothing older comes from it */
            }
            pp_metric_add(t->m_holds, 1);
            return PP_CONSUMER_HOLD;
        }
    }
    if (s->skip_below == -2) {
        s->skip_below = t->mock ? -1 : forwarded_upto(t, s);
        if (s->skip_below > rkm->offset) {
            pp_log(PP_LOG_WARN,
                   "msg=\"input starts below what was forwarded: skipping it\" topic=%s "
                   "partition=%d offset=%" PRId64 " forwarded_to=%" PRId64,
                   topic, (int)rkm->partition, rkm->offset, s->skip_below);
        }
    }
    if (rkm->offset < s->skip_below) {
        s->next = rkm->offset + 1;
        return PP_CONSUMER_DONE;
    }
    const char *cust = pp_event_customer_id(ev);
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(1);
    rd_kafka_header_add(hdrs, "pp.src", -1, topic, -1);
    if (send_raw(t, t->repart, -1, cust, strlen(cust), rkm->payload, rkm->len, hdrs) != 0) {
        return PP_CONSUMER_DONE;
    }
    s->next = rkm->offset + 1;
    source_advanced(t, s, ev->occurred_at_ms);
    if (ev->occurred_at_ms > s->stream_ms) {
        s->stream_ms = ev->occurred_at_ms;
    }
    s->eof = false;
    return PP_CONSUMER_DONE;
}

static void on_reject(const rd_kafka_message_t *rkm, enum pp_decode_err err, const char *detail,
                      void *opaque)
{
    struct pp_topology *t = opaque;
    dead_letter(t, rkm, pp_decode_reason(err), detail);
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    struct source *s = source_find(t, topic, rkm->partition);
    if (s) {
        s->next = rkm->offset + 1;
    }
    else if (strcmp(topic, t->repart) == 0) {
        struct task *k = task_find(t, TK_CUSTOMERS, rkm->partition);
        if (k) {
            k->next = rkm->offset + 1;
        }
    }
}

static bool source_idle(struct pp_topology *t, const struct source *s, int64_t now,
                        int64_t idle_ms);

/* An input turning idle releases the watermark as surely as a record does,
 * but nothing happens at that moment: without a timer its idle tick waited
 * for the next regular commit (half an interval on average, on every day
 * released that way: measured 107 ms median from the release to the tick's
 * commit at 20 000 events/s). Armed for the earliest moment a caught-up
 * input not idle yet can turn idle. */
static void arm_idle(struct pp_topology *t)
{
    if (t->idle_ev == NULL || t->stopping) {
        return;
    }
    int64_t now = mono_ms(), next = INT64_MAX;
    for (size_t i = 0; i < t->src_n; i++) {
        const struct source *s = t->src[i];
        int64_t at = s->quiet_since_ms + t->idle_ms;
        if (s->eof && !s->held && !s->sent_idle && at >= now && at < next) {
            next = at;
        }
    }
    if (next == INT64_MAX || (t->idle_at != 0 && t->idle_at <= next)) {
        return;
    }
    t->idle_at = next;
    int64_t wait = next - now + 1;
    struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)((wait % 1000) * 1000)};
    evtimer_add(t->idle_ev, &tv);
}

static void on_idle(evutil_socket_t fd, short what, void *arg)
{
    struct pp_topology *t = arg;
    (void)fd;
    (void)what;
    t->idle_at = 0;
    int64_t now = mono_ms();
    for (size_t i = 0; i < t->src_n; i++) {
        const struct source *s = t->src[i];
        if (!s->sent_idle && source_idle(t, s, now, t->idle_ms)) {
            want_commit(t); /* its idle tick goes out with it */
            break;
        }
    }
    arm_idle(t);
}

static void on_eof(const char *topic, int32_t partition, int64_t end_offset, void *opaque)
{
    struct pp_topology *t = opaque;
    struct source *s = source_find(t, topic, partition);
    if (s && !s->eof) {
        s->eof = true;
        s->quiet_since_ms = mono_ms();
    }
    if (s) {
        s->eof_off = end_offset;
        /* Caught up: its tick lets the watermark on by the lateness
         * (source_tick_state), which may close a day: tick now rather than
         * at the end of the interval. */
        if (s->sent && !s->sent_idle && !s->sent_caught) {
            want_commit(t);
        }
        arm_idle(t);
    }
}

static void on_consumer_error(rd_kafka_resp_err_t err, const char *reason, int is_fatal,
                              void *opaque)
{
    struct pp_topology *t = opaque;
    pp_log(is_fatal ? PP_LOG_ERROR : PP_LOG_WARN,
           "msg=\"consumer error\" error=%s fatal=%d detail=\"%s\"", rd_kafka_err2name(err),
           is_fatal, reason);
    if (is_fatal) {
        fatal(t, 1);
    }
}

/* ---------------------------------------------------- watermark ticks */

/* Whether an input stops holding the watermark: it reached its end (EOF),
 * is still there by the high watermark librdkafka last fetched (an EOF
 * handled while newer records wait in the queue, or while the loop was
 * busy, says nothing about now), and has been quiet for idle_ms. A held
 * (paused) input has records waiting: never idle. */
static bool source_idle(struct pp_topology *t, const struct source *s, int64_t now, int64_t idle_ms)
{
    if (!s->eof || s->held || now - s->quiet_since_ms < idle_ms) {
        return false;
    }
    return pp_consumer_caught_up(t->consumer, s->topic, s->partition, s->eof_off);
}

/* The state an input's tick gives: idle, caught up (at its end by the high
 * watermark, not idle yet) or active. A caught-up input holds the
 * watermark back by its stream time plus the allowed lateness only: that
 * closes only days before the day of its newest record, so no record it
 * delivers later in event-time order can be late, while a quiet input stops
 * holding the others back at once. It is ignored entirely once idle
 * (processing.idle_timeout; docs/runtime.md, "Event time across tasks"). */
static int source_tick_state(struct pp_topology *t, const struct source *s, bool idle)
{
    if (idle) {
        return TICK_IDLE;
    }
    if (s->stream_ms == INT64_MIN || !s->eof || s->held ||
        !pp_consumer_caught_up(t->consumer, s->topic, s->partition, s->eof_off)) {
        return TICK_ACTIVE;
    }
    return TICK_CAUGHT_UP;
}

/* Sends s's tick in state `state`: to every customers task (when
 * to_tasks: its value changed) and to the watermarks topic (with the
 * input's next offset to forward). -1 when a send failed. */
static int tick_source(struct pp_topology *t, struct source *s, int state, bool to_tasks)
{
    char key[300], val[400];
    source_key(s, key, sizeof(key));
    int n = snprintf(val, sizeof(val), "%s\t%" PRId64 "\t%d", key, s->stream_ms, state);
    for (uint32_t p = 0; to_tasks && p < t->n; p++) {
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(1);
        rd_kafka_header_add(hdrs, "pp.kind", -1, "wm", 2);
        if (send_raw(t, t->repart, (int32_t)p, NULL, 0, val, (size_t)n, hdrs) != 0) {
            return -1;
        }
    }
    /* The same tick for every instance's alignment, with the input's
     * next offset to forward (same transaction as the records and the
     * input offsets: forwarded_upto). */
    int n2 = snprintf(val + n, sizeof(val) - (size_t)n, "\t%" PRId64, s->next);
    if (send_raw(t, t->wmtopic, 0, key, strlen(key), val, (size_t)(n + n2), NULL) != 0) {
        return -1;
    }
    if (s->next >= 0) {
        s->sent_off = s->next;
    }
    s->sent = true;
    s->sent_ms = s->stream_ms;
    s->sent_idle = state == TICK_IDLE;
    s->sent_caught = state == TICK_CAUGHT_UP;
    return 0;
}

/* An input leaving this instance (cooperative revocation, shutdown): if
 * its last tick said idle or caught up, it now says active at its stream
 * time, in the transaction that commits the handover. "Idle" is a claim
 * that its owner sees nothing new; nobody watches the partition until the
 * next owner reads it (a cooperative rebalance revokes before it assigns;
 * up to the session timeout after a crash), and records appended
 * meanwhile must not find their days closed by the other inputs. The next
 * owner's own ticks take over once it has read something or seen the
 * partition quiet itself. (A crashed owner cannot do this: see
 * docs/runtime.md, "Known problems".) */
static void tick_handover(struct pp_topology *t, const rd_kafka_topic_partition_list_t *parts)
{
    if (t->eos && (!t->txn_open || t->txn_failed)) {
        return;
    }
    for (int i = 0; i < parts->cnt; i++) {
        struct source *s = source_find(t, parts->elems[i].topic, parts->elems[i].partition);
        if (s == NULL || !s->sent || (!s->sent_idle && !s->sent_caught) ||
            s->stream_ms == INT64_MIN) {
            continue;
        }
        if (tick_source(t, s, TICK_ACTIVE, true) != 0) {
            return;
        }
        pp_log(PP_LOG_DEBUG, "msg=\"input handed over: active tick\" topic=%s partition=%d",
               s->topic, (int)s->partition);
    }
}

/* Each source sends its stream time to every customers task when it
 * changed: the tasks' watermarks are the minimum over all inputs, whichever
 * instance reads them. */
static void send_ticks(struct pp_topology *t, int64_t now)
{
    int64_t idle_ms = t->idle_ms;
    for (size_t i = 0; i < t->src_n; i++) {
        struct source *s = t->src[i];
        bool idle = source_idle(t, s, now, idle_ms);
        int state = source_tick_state(t, s, idle);
        bool caught = state == TICK_CAUGHT_UP;
        bool tick = !s->sent || s->sent_ms != s->stream_ms || s->sent_idle != idle ||
                    s->sent_caught != caught;
        if (!tick && (s->next < 0 || s->next == s->sent_off)) {
            continue;
        }
        if (s->stream_ms == INT64_MIN && !idle) {
            /* A new owner that has read nothing knows nothing: its tick
             * would claim nothing yet replace what the last owner said
             * (the watermarks topic keeps one value per input), and an
             * instance starting then would take the input for unknown. */
            continue;
        }
        if (tick_source(t, s, state, tick) != 0) {
            return;
        }
    }
    /* Tasks held back by another instance's task (XSKEW_DAYS) go on once
     * its new base has arrived on the watermarks topic: no tick of ours may
     * come to wake them. */
    release_capped(t);
    for (size_t i = 0; i < t->task_n; i++) {
        struct task *k = t->task[i];
        if (k->kind != TK_CUSTOMERS || k->restoring) {
            continue;
        }
        int64_t base = task_base(k);
        if (base == INT64_MAX || base == k->sent_base) {
            continue;
        }
        char key[64], val[128];
        snprintf(key, sizeof(key), "task:%d", (int)k->partition);
        int n = snprintf(val, sizeof(val), "%s\t%" PRId64 "\t0", key, base);
        if (send_raw(t, t->wmtopic, 0, key, strlen(key), val, (size_t)n, NULL) != 0) {
            return;
        }
        k->sent_base = base;
    }
}

/* ------------------------------------------------------- changelogs */

struct flush_ctx {
    struct pp_topology *t;
    const char *topic;
    int32_t partition;
};

static void flush_cb(const uint8_t *key, size_t kl, const uint8_t *val, size_t vl, void *opaque)
{
    struct flush_ctx *f = opaque;
    send_raw(f->t, f->topic, f->partition, key, kl, vl ? val : NULL, vl, NULL);
}

static void flush_changelogs(struct pp_topology *t)
{
    char buf[16384];
    for (size_t i = 0; i < t->task_n; i++) {
        struct task *k = t->task[i];
        if (k->restoring) {
            continue;
        }
        struct flush_ctx f = {t, k->kind == TK_CUSTOMERS ? t->cchangelog : t->pchangelog,
                              k->partition};
        if (k->kind == TK_CUSTOMERS) {
            /* Deals applied since the last day closed go to the partners
             * task in the same transaction as the state holding them. */
            pp_cstage_drain(k->cs, emit_x, k);
            pp_cstage_flush_dirty(k->cs, flush_cb, &f);
            if (k->next > k->applied_next) {
                k->applied_next = k->next;
                k->rt_dirty = true;
            }
        }
        else {
            pp_pstage_flush_dirty(k->ps, flush_cb, &f);
            if (k->next > k->applied_upto) {
                k->applied_upto = k->next;
                k->rt_dirty = true;
            }
        }
        if (k->rt_dirty) {
            size_t n = rt_encode(k, buf, sizeof(buf));
            if (n > 0) {
                flush_cb(RT_KEY, RT_KEY_LEN, (const uint8_t *)buf, n, &f);
            }
            k->rt_dirty = false;
        }
    }
}

/* ---------------------------------------------------------- commit */

static void add_offset(rd_kafka_topic_partition_list_t *l, const char *topic, int32_t p,
                       int64_t off)
{
    if (off >= 0) {
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = off;
    }
}

static rd_kafka_topic_partition_list_t *offsets_now(struct pp_topology *t)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < t->src_n; i++) {
        add_offset(l, t->src[i]->topic, t->src[i]->partition, t->src[i]->next);
    }
    for (size_t i = 0; i < t->task_n; i++) {
        struct task *k = t->task[i];
        if (k->restoring) {
            continue;
        }
        int64_t off = k->next;
        if (k->kind == TK_PARTNERS) {
            /* Records of days not evaluated yet are read again after a
             * crash: commit no further than the oldest one. */
            for (size_t j = 0; j < k->pend_n; j++) {
                if (off < 0 || k->pend[j].first < off) {
                    off = k->pend[j].first;
                }
            }
        }
        add_offset(l, k->kind == TK_CUSTOMERS ? t->repart : t->exchange, k->partition, off);
    }
    return l;
}

static void reset_all(struct pp_topology *t);

static void txn_begin(struct pp_topology *t)
{
    if (!t->eos || t->txn_open) {
        return;
    }
    rd_kafka_error_t *e = rd_kafka_begin_transaction(t->prk);
    if (e) {
        pp_log(PP_LOG_ERROR, "msg=\"cannot begin a transaction\" error=\"%s\"",
               rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        fatal(t, 3);
        return;
    }
    t->txn_open = true;
    t->txn_records = 0;
}

/* Aborts the current transaction and starts every task over from the
 * committed offsets (an abortable error, or a produce it refused). -1 when
 * the abort failed (the instance exits). */
static int abort_and_rewind(struct pp_topology *t)
{
    rd_kafka_error_t *e = rd_kafka_abort_transaction(t->prk, TXN_TIMEOUT);
    if (e) {
        pp_log(PP_LOG_ERROR, "msg=\"abort failed\" error=\"%s\"", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        fatal(t, 3);
        return -1;
    }
    t->txn_open = false;
    t->txn_failed = false;
    pp_producer_clear_error(t->env.producer);
    pp_metric_add(t->m_txn_abort, 1);
    reset_all(t);
    return 0;
}

/* Handles a transactional error: fatal (fenced: another instance owns our
 * work) exits, abortable aborts and rewinds every task. Returns 0 when the
 * error was retriable (the caller retries). */
static int txn_error(struct pp_topology *t, rd_kafka_error_t *e, const char *what)
{
    int retriable = rd_kafka_error_is_retriable(e);
    if (rd_kafka_error_is_fatal(e)) {
        pp_log(PP_LOG_ERROR,
               "msg=\"transaction fatal error: exiting so the orchestrator restarts us\" step=%s "
               "error=%s detail=\"%s\"",
               what, rd_kafka_error_name(e), rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        fatal(t, 3);
        return -1;
    }
    if (retriable) {
        pp_log(PP_LOG_WARN, "msg=\"transaction step retried\" step=%s error=\"%s\"", what,
               rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return 0;
    }
    pp_log(PP_LOG_WARN,
           "msg=\"transaction aborted: rewinding to the committed offsets\" step=%s "
           "error=\"%s\"",
           what, rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    abort_and_rewind(t);
    return -1;
}

bool pp_topology_txn_refused(struct pp_topology *t)
{
    if (!t->eos || !pp_producer_txn_failed(t->env.producer)) {
        return false;
    }
    if (!t->txn_failed) {
        pp_log(PP_LOG_WARN, "msg=\"transaction failed while producing: aborting it at the next "
                            "commit and rewinding\"");
        t->txn_failed = true;
    }
    return true;
}

/* Commits the interval's work. Returns 0 when committed. */
static int commit_now(struct pp_topology *t)
{
    int64_t t0 = mono_ms();
    if (t->txn_failed) {
        pp_log(PP_LOG_WARN, "msg=\"transaction aborted: rewinding to the committed offsets\" "
                            "step=produce");
        if (abort_and_rewind(t) == 0) {
            txn_begin(t);
        }
        return -1;
    }
    apply_all(t);
    flush_changelogs(t);
    rd_kafka_topic_partition_list_t *offs = offsets_now(t);
    int rc = 0;
    if (t->eos) {
        if (!t->txn_open) {
            rd_kafka_topic_partition_list_destroy(offs);
            txn_begin(t);
            return -1;
        }
        if ((offs->cnt == 0 || !t->progress) && t->txn_records == 0) {
            rd_kafka_topic_partition_list_destroy(offs);
            return 0; /* nothing happened: keep the transaction open */
        }
        for (int attempt = 0;; attempt++) {
            rd_kafka_error_t *e = NULL;
            if (offs->cnt > 0) {
                rd_kafka_consumer_group_metadata_t *md =
                    rd_kafka_consumer_group_metadata(pp_consumer_handle(t->consumer));
                e = rd_kafka_send_offsets_to_transaction(t->prk, offs, md, TXN_TIMEOUT);
                rd_kafka_consumer_group_metadata_destroy(md);
            }
            if (e == NULL) {
                e = rd_kafka_commit_transaction(t->prk, TXN_TIMEOUT);
            }
            if (e == NULL) {
                break;
            }
            if (txn_error(t, e, "commit") != 0 || attempt >= 3) {
                rc = -1;
                break;
            }
        }
        if (rc == 0) {
            t->txn_open = false;
            t->progress = false;
            t->urgent = false;
            t->last_commit_ms = mono_ms();
            pp_metric_add(t->m_txn_ok, 1);
        }
        txn_begin(t);
    }
    else {
        rd_kafka_resp_err_t err = rd_kafka_flush(t->prk, TXN_TIMEOUT);
        if (err) {
            pp_log(PP_LOG_ERROR,
                   "msg=\"records not acknowledged; offsets not committed\" "
                   "error=\"%s\"",
                   rd_kafka_err2str(err));
            rc = -1;
        }
        else if (offs->cnt > 0 && t->progress) {
            t->progress = false;
            err = rd_kafka_commit(pp_consumer_handle(t->consumer), offs, 0);
            if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
                pp_log(PP_LOG_WARN, "msg=\"offset commit failed\" error=\"%s\"",
                       rd_kafka_err2str(err));
                rc = -1;
            }
        }
        t->txn_records = 0;
    }
    rd_kafka_topic_partition_list_destroy(offs);
    pp_metric_observe(t->m_commit, (double)(mono_ms() - t0) / 1000.0);
    return rc;
}

/* -------------------------------------------------------- snapshots */

struct snap_ctx {
    struct pp_snapshot_writer *w;
    int err;
};

static void snap_put(const uint8_t *key, size_t kl, const uint8_t *val, size_t vl, void *opaque)
{
    struct snap_ctx *c = opaque;
    if (!c->err && pp_snapshot_put(c->w, key, kl, val, vl) != 0) {
        c->err = 1;
    }
}

/* After a commit: the state is what the changelog holds up to its end. */
static void snapshot(struct pp_topology *t, struct task *k)
{
    if (!t->state_dir[0] || k->restoring) {
        return;
    }
    char err[512];
    int64_t lo, hi;
    const char *cl = k->kind == TK_CUSTOMERS ? t->cchangelog : t->pchangelog;
    rd_kafka_resp_err_t kerr =
        rd_kafka_query_watermark_offsets(t->prk, cl, k->partition, &lo, &hi, 5000);
    if (kerr) {
        pp_log(PP_LOG_WARN, "msg=\"snapshot skipped\" task=%s error=\"%s\"", k->name,
               rd_kafka_err2str(kerr));
        return;
    }
    struct snap_ctx c = {pp_snapshot_begin(t->state_dir, k->name, hi, err, sizeof(err)), 0};
    if (c.w == NULL) {
        pp_log(PP_LOG_WARN, "msg=\"snapshot failed\" task=%s error=\"%s\"", k->name, err);
        return;
    }
    if (k->kind == TK_CUSTOMERS) {
        pp_cstage_dump(k->cs, snap_put, &c);
    }
    else {
        pp_pstage_dump(k->ps, snap_put, &c);
    }
    char buf[16384];
    size_t n = rt_encode(k, buf, sizeof(buf));
    snap_put(RT_KEY, RT_KEY_LEN, (const uint8_t *)buf, n, &c);
    if (c.err) {
        pp_snapshot_abort(c.w);
        pp_log(PP_LOG_WARN, "msg=\"snapshot failed\" task=%s error=\"write\"", k->name);
        return;
    }
    if (pp_snapshot_commit(c.w, err, sizeof(err)) != 0) {
        pp_log(PP_LOG_WARN, "msg=\"snapshot failed\" task=%s error=\"%s\"", k->name, err);
        return;
    }
    k->last_snap_ms = mono_ms();
    pp_log(PP_LOG_DEBUG, "msg=\"snapshot written\" task=%s changelog_offset=%" PRId64, k->name, hi);
}

/* ------------------------------------------------------ rebalancing */

/* Every task starts over from its changelog and every assigned partition
 * from its committed offset (after an aborted transaction or lost
 * partitions). */
static void reset_all(struct pp_topology *t)
{
    rd_kafka_t *crk = pp_consumer_handle(t->consumer);
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(crk, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR && parts->cnt > 0) {
        rd_kafka_resp_err_t err = rd_kafka_committed(crk, parts, 10000);
        if (err) {
            pp_log(PP_LOG_ERROR, "msg=\"cannot read committed offsets\" error=\"%s\"",
                   rd_kafka_err2str(err));
            fatal(t, 1);
        }
        for (int i = 0; i < parts->cnt; i++) {
            if (parts->elems[i].offset < 0) {
                parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
            }
        }
        rd_kafka_error_t *e = rd_kafka_seek_partitions(crk, parts, 10000);
        if (e) {
            pp_log(PP_LOG_ERROR, "msg=\"cannot rewind\" error=\"%s\"", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            fatal(t, 1);
        }
    }
    if (parts) {
        rd_kafka_topic_partition_list_destroy(parts);
    }
    for (size_t i = 0; i < t->src_n; i++) {
        /* A hold was at a record after the committed offset: the input
         * starts over there, and the alignment decides again (left held, an
         * input would wait for a record it no longer delivers). */
        if (t->src[i]->held) {
            pp_consumer_resume(t->consumer, t->src[i]->topic, t->src[i]->partition);
            t->src[i]->held = false;
        }
        /* Its stream time came from records whose forwarding was aborted:
         * a tick must not claim them before they are forwarded again. */
        t->src[i]->next = -1;
        t->src[i]->stream_ms = INT64_MIN;
        t->src[i]->eof = false;
        t->src[i]->sent = false;
        t->src[i]->skip_below = -2; /* looked up again at the first record */
    }
    for (size_t i = 0; i < t->bp_n; i++) {
        pp_consumer_resume(t->consumer, t->bp[i].topic, t->bp[i].partition);
    }
    t->bp_n = 0;
    for (size_t i = 0; i < t->task_n; i++) {
        struct task *k = t->task[i];
        pp_restore_destroy(k->rs);
        k->rs = NULL;
        k->next = -1;
        restore_start(t, k);
    }
}

static void on_rebalance(const rd_kafka_topic_partition_list_t *parts, int assigned, int lost,
                         void *opaque)
{
    struct pp_topology *t = opaque;
    apply_all(t);
    if (!assigned && !lost) {
        /* Cooperative revocation: the work on these partitions is committed
         * before another instance may take them over. */
        tick_handover(t, parts);
        commit_now(t);
    }
    if (!assigned && lost && t->eos && t->txn_open) {
        rd_kafka_error_t *e = rd_kafka_abort_transaction(t->prk, TXN_TIMEOUT);
        if (e) {
            rd_kafka_error_destroy(e);
        }
        t->txn_open = false;
        t->txn_failed = false;
        pp_producer_clear_error(t->env.producer);
    }
    for (int i = 0; i < parts->cnt; i++) {
        const char *topic = parts->elems[i].topic;
        int32_t p = parts->elems[i].partition;
        enum task_kind kind = TK_CUSTOMERS;
        bool stateful = false;
        if (strcmp(topic, t->repart) == 0) {
            stateful = true;
        }
        else if (strcmp(topic, t->exchange) == 0) {
            kind = TK_PARTNERS;
            stateful = true;
        }
        if (assigned) {
            pp_log(PP_LOG_INFO, "msg=\"partition assigned\" topic=%s partition=%d", topic, (int)p);
            if (stateful) {
                if (task_find(t, kind, p) == NULL && task_new(t, kind, p) == NULL) {
                    fatal(t, 1);
                }
            }
            else if (is_input(t, topic) && source_find(t, topic, p) == NULL &&
                     t->src_n < MAX_SOURCES) {
                struct source *s = pp_xcalloc(1, sizeof(*s));
                snprintf(s->topic, sizeof(s->topic), "%s", topic);
                s->partition = p;
                s->next = -1;
                s->stream_ms = INT64_MIN;
                s->sent_off = -1;
                s->skip_below = -2;
                t->src[t->src_n++] = s;
            }
            continue;
        }
        pp_log(PP_LOG_INFO, "msg=\"partition %s\" topic=%s partition=%d", lost ? "lost" : "revoked",
               topic, (int)p);
        for (size_t j = 0; j < t->bp_n; j++) {
            if (t->bp[j].partition == p && strcmp(t->bp[j].topic, topic) == 0) {
                t->bp[j] = t->bp[--t->bp_n];
                break;
            }
        }
        if (stateful) {
            struct task *k = task_find(t, kind, p);
            if (k) {
                if (!lost) {
                    snapshot(t, k);
                }
                task_remove(t, k);
            }
        }
        else {
            for (size_t j = 0; j < t->src_n; j++) {
                if (t->src[j]->partition == p && strcmp(t->src[j]->topic, topic) == 0) {
                    free(t->src[j]);
                    t->src[j] = t->src[--t->src_n];
                    break;
                }
            }
        }
    }
    if (!assigned && lost && t->eos) {
        txn_begin(t);
        reset_all(t);
    }
}

/* ---------------------------------------------------------- loops */

static int restore_cb(const void *key, size_t kl, const void *val, size_t vl, int64_t offset,
                      void *opaque)
{
    struct task *k = opaque;
    char err[256];
    (void)offset;
    k->restored++;
    if (restore_kv(k, key, kl, val, vl, err, sizeof(err)) != 0) {
        pp_log(PP_LOG_ERROR,
               "msg=\"changelog record rejected\" task=%s offset=%" PRId64 " error=\"%s\"", k->name,
               offset, err);
        return -1;
    }
    return 0;
}

static void on_restore(evutil_socket_t fd, short what, void *arg)
{
    struct pp_topology *t = arg;
    (void)fd;
    (void)what;
    bool more = false, busy = false;
    for (size_t i = 0; i < t->task_n; i++) {
        struct task *k = t->task[i];
        if (!k->restoring || k->rs == NULL) {
            continue;
        }
        char err[512];
        uint64_t before = k->restored;
        int rc = pp_restore_poll(k->rs, RESTORE_SLICE, restore_cb, k, err, sizeof(err));
        pp_metric_add(t->m_restored, (double)(k->restored - before));
        if (rc < 0 && k->from_snapshot) {
            /* The changelog no longer matches the snapshot (recreated,
             * truncated): forget the snapshot and read the whole changelog. */
            pp_log(PP_LOG_WARN,
                   "msg=\"snapshot offset unusable, restoring from the whole changelog\" "
                   "task=%s error=\"%s\"",
                   k->name, err);
            pp_snapshot_remove(t->state_dir, k->name);
            pp_restore_destroy(k->rs);
            k->rs = NULL;
            restore_start(t, k);
            more = true;
            continue;
        }
        if (rc < 0) {
            pp_log(PP_LOG_ERROR, "msg=\"restore failed\" task=%s error=\"%s\"", k->name, err);
            fatal(t, 1);
            return;
        }
        if (rc == 0) {
            more = true;
            busy |= k->restored - before >= RESTORE_SLICE;
            continue;
        }
        int64_t done, total;
        pp_restore_progress(k->rs, &done, &total);
        pp_restore_destroy(k->rs);
        k->rs = NULL;
        k->restoring = false;
        int64_t wm = task_watermark(t, k);
        pp_log(PP_LOG_INFO,
               "msg=\"task restored\" task=%s records=%" PRIu64 " ms=%" PRId64
               " last_day=%d watermark_day=%" PRId64 " inputs_ticked=%zu/%u",
               k->name, k->restored, mono_ms() - k->restore_started_ms,
               k->cs ? (int)pp_cstage_last_day(k->cs) : (int)pp_pstage_last_day(k->ps),
               wm == INT64_MIN ? (int64_t)-1 : wm / 86400000, k->wm_n, t->sources_total);
        if (k->held) {
            pp_consumer_resume(t->consumer, k->kind == TK_CUSTOMERS ? t->repart : t->exchange,
                               k->partition);
            k->held = false;
        }
        if (k->kind == TK_CUSTOMERS) {
            customers_advance(t, k);
        }
        else {
            pp_pstage_rewind_sources(k->ps);
        }
    }
    if (busy) {
        event_active(t->restore_ev, EV_TIMEOUT, 0); /* records are waiting */
    }
    else if (more) {
        struct timeval tv = {0, 5000}; /* waiting for the broker: do not spin */
        evtimer_add(t->restore_ev, &tv);
    }
}

/* Every 5 s at debug level: where every task and input stands (the first
 * thing to read when days stop closing). */
static void log_status(struct pp_topology *t)
{
    if (pp_log_threshold < PP_LOG_DEBUG) {
        return;
    }
    char buf[4096];
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < t->src_n && n < sizeof(buf) - 200; i++) {
        const struct source *s = t->src[i];
        int w =
            snprintf(buf + n, sizeof(buf) - n, " %s/%d:%" PRId64 "%s%s", s->topic,
                     (int)s->partition, s->stream_ms == INT64_MIN ? -1 : s->stream_ms / 86400000,
                     s->held ? "H" : "", s->eof ? "E" : "");
        n += w > 0 ? (size_t)w : 0;
    }
    for (size_t i = 0; i < t->task_n && n < sizeof(buf) - 200; i++) {
        const struct task *k = t->task[i];
        int w = snprintf(buf + n, sizeof(buf) - n, " task:%s%s wm=%" PRId64 " ticks=%zu/%u day=%d",
                         k->name, k->restoring ? "(R)" : "",
                         k->watermark == INT64_MIN ? -1 : k->watermark / 86400000, k->wm_n,
                         t->sources_total,
                         k->cs ? pp_cstage_last_day(k->cs) : pp_pstage_last_day(k->ps));
        n += w > 0 ? (size_t)w : 0;
        for (size_t j = 0; k->kind == TK_CUSTOMERS && j < k->wm_n && n < sizeof(buf) - 200; j++) {
            w = snprintf(buf + n, sizeof(buf) - n, " [%s=%" PRId64 "%s]", k->wm[j].key,
                         k->wm[j].ms == INT64_MIN ? -1 : k->wm[j].ms / 86400000,
                         k->wm[j].idle     ? "i"
                         : k->wm[j].caught ? "c"
                                           : "");
            n += w > 0 ? (size_t)w : 0;
        }
    }
    int64_t floor = input_floor(t);
    pp_log(PP_LOG_DEBUG, "msg=\"topology status\" floor_day=%" PRId64 " oldest_day=%" PRId64 "%s",
           floor == INT64_MIN ? -1 : floor / 86400000,
           t->oldest_ms == INT64_MAX ? -1 : t->oldest_ms / 86400000, buf);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct pp_topology *t = arg;
    (void)fd;
    (void)what;
    if (t->stopping) {
        return;
    }
    int64_t now = mono_ms();
    txn_begin(t);
    poll_watermarks(t);
    release_backpressure(t);
    release_held(t);
    partners_wait(t, now);
    send_ticks(t, now);
    if (now - t->last_status_ms >= 5000) {
        t->last_status_ms = now;
        log_status(t);
    }
    if (commit_now(t) == 0) {
        for (size_t i = 0; i < t->task_n; i++) {
            if (now - t->task[i]->last_snap_ms >= t->snapshot_ms) {
                snapshot(t, t->task[i]);
            }
        }
    }
    pp_producer_poll(t->env.producer);
}

/* Commits early (want_commit): once the records of the internal topics that
 * librdkafka fetched are handled (they are on an alert's path: an end-of-day
 * record waiting would go in the same transaction; a few input records
 * waiting go in the next one), and a quarter interval after the last
 * commit. Not while more than EARLY_MAX_BACKLOG input records wait: that is
 * a backlog, better served by whole intervals (a commit stops the loop for
 * tens of ms). The next regular commit is then a whole interval later. */
#define EARLY_MAX_BACKLOG 5000
static void on_early(evutil_socket_t fd, short what, void *arg)
{
    struct pp_topology *t = arg;
    (void)fd;
    (void)what;
    if (!t->urgent || t->stopping) {
        return;
    }
    int64_t now = mono_ms();
    if (!t->eos) {
        /* at_least_once: records are readable once delivered; only the
         * ticks wait for the interval */
        send_ticks(t, now);
        t->urgent = false;
        return;
    }
    int64_t wait = t->last_commit_ms + t->commit_ms / 4 - now;
    if (wait <= 0 && (pp_consumer_queued(t->consumer, 1) > 0 ||
                      pp_consumer_queued(t->consumer, 0) > EARLY_MAX_BACKLOG)) {
        wait = 2;
    }
    if (wait > 0) {
        struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)((wait % 1000) * 1000)};
        evtimer_add(t->early, &tv);
        return;
    }
    on_tick(-1, 0, t);
    t->urgent = false;
    struct timeval tv = {t->commit_ms / 1000, (t->commit_ms % 1000) * 1000};
    event_add(t->tick, &tv);
}

/* ------------------------------------------------------------- setup */

/* A series of a metric without labels. */
static struct pp_metric *metric0(struct pp_metrics *m, enum pp_metric_type type, const char *name,
                                 const char *help)
{
    return pp_metrics_series(pp_metrics_family(m, type, name, help, NULL, 0, NULL, 0), NULL);
}

static void metrics_init(struct pp_topology *t)
{
    struct pp_metrics *m = t->env.metrics;
    static const char *const kind_l[] = {"kind"};
    struct pp_metric_family *f = pp_metrics_family(
        m, PP_METRIC_GAUGE, "partnerpulse_tasks",
        "Stateful tasks this instance runs, by sub-topology.", kind_l, 1, NULL, 0);
    static const char *const kinds[] = {"customers", "partners"};
    for (int i = 0; i < 2; i++) {
        t->m_tasks[i] = pp_metrics_series(f, &kinds[i]);
    }
    t->m_restoring =
        metric0(m, PP_METRIC_GAUGE, "partnerpulse_restoring_tasks",
                "Tasks rebuilding their state from snapshot and changelog now (/readyz "
                "is false meanwhile).");
    t->m_restored = metric0(m, PP_METRIC_COUNTER, "partnerpulse_restore_records_total",
                            "Changelog records applied while restoring tasks.");
    static const char *const res_l[] = {"result"};
    f = pp_metrics_family(m, PP_METRIC_COUNTER, "partnerpulse_transactions_total",
                          "Kafka transactions ended, by result (committed, aborted).", res_l, 1,
                          NULL, 0);
    static const char *const ok[] = {"committed"}, *const ab[] = {"aborted"};
    t->m_txn_ok = pp_metrics_series(f, ok);
    t->m_txn_abort = pp_metrics_series(f, ab);
    static const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,   0.25,   0.5,   1,    2.5,   5};
    t->m_commit = pp_metrics_series(
        pp_metrics_family(m, PP_METRIC_HISTOGRAM, "partnerpulse_commit_seconds",
                          "Time to write the changelogs and commit one interval (the "
                          "transaction under exactly_once, the offsets under at_least_once).",
                          NULL, 0, bounds, sizeof(bounds) / sizeof(bounds[0])),
        NULL);
    t->m_holds = metric0(m, PP_METRIC_COUNTER, "partnerpulse_input_holds_total",
                         "Times an input partition was paused for running ahead of the slowest "
                         "input in event time (the customers tasks' rings hold "
                         "model.state_days minus the longest window of skew).");
    t->m_fallbacks =
        metric0(m, PP_METRIC_COUNTER, "partnerpulse_cohort_fallbacks_total",
                "Days the partners task evaluated without a late customers partition "
                "after processing.cohort_max_wait, with the fallback cohort baselines.");
    t->m_bp = metric0(m, PP_METRIC_COUNTER, "partnerpulse_backpressure_pauses_total",
                      "Times an input partition was paused because the producer held too "
                      "many unacknowledged records (resumed when half were acknowledged).");
    t->m_last_day = metric0(m, PP_METRIC_GAUGE, "partnerpulse_last_evaluated_day",
                            "Last event-time day the partners task evaluated, as days since "
                            "1970-01-01; -1 when this instance does not hold the partners task or "
                            "no day closed yet.");
}

/* Waits (bounded) for an input topic's metadata: 0 when it does not exist. */
static int input_partitions(rd_kafka_t *rk, const char *topic, char *errstr, size_t errsz)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        int n = pp_topics_partitions(rk, topic, 5000, errstr, errsz);
        if (n != 0) {
            return n;
        }
        struct timespec ts = {0, 500 * 1000000L};
        nanosleep(&ts, NULL);
    }
    snprintf(errstr, errsz, "input topic '%s' does not exist (create it, or set the topics.* keys)",
             topic);
    return -1;
}

int pp_topology_producer_conf(const struct pp_app_conf *conf, rd_kafka_conf_t *pconf, char *errstr,
                              size_t errstr_size)
{
    char buf[512];
    size_t sz = sizeof(buf);
    if (rd_kafka_conf_set(pconf, "partitioner", "murmur2_random", errstr, errstr_size) !=
        RD_KAFKA_CONF_OK) {
        return -1;
    }
    if (conf->guarantee != PP_GUARANTEE_EXACTLY_ONCE) {
        return 0;
    }
    if (rd_kafka_conf_get(pconf, "transactional.id", buf, &sz) == RD_KAFKA_CONF_OK && buf[0]) {
        return 0; /* the user's own choice */
    }
    /* A stable id per instance lets a restarted instance abort its
     * predecessor's open transaction at once (init_transactions) instead
     * of readers waiting for transaction.timeout.ms. */
    char id[256] = "";
    sz = sizeof(buf);
    for (size_t i = 0; i < conf->kafka_n; i++) {
        if (strcmp(conf->kafka[i].key, "group.instance.id") == 0) {
            snprintf(id, sizeof(id), "%s", conf->kafka[i].value);
        }
    }
    if (id[0] == '\0') {
        char host[128] = "host";
        gethostname(host, sizeof(host) - 1);
        snprintf(id, sizeof(id), "%s-%ld", host, (long)getpid());
    }
    snprintf(buf, sizeof(buf), "%s-%s", conf->application_id, id);
    if (rd_kafka_conf_set(pconf, "transactional.id", buf, errstr, errstr_size) !=
        RD_KAFKA_CONF_OK) {
        return -1;
    }
    bool user_timeout = false;
    for (size_t i = 0; i < conf->kafka_n; i++) {
        user_timeout |= strcmp(conf->kafka[i].key, "transaction.timeout.ms") == 0;
    }
    /* An instance killed mid-transaction holds read_committed readers back
     * until the broker aborts its transaction: keep that short. */
    if (!user_timeout && rd_kafka_conf_set(pconf, "transaction.timeout.ms", "10000", errstr,
                                           errstr_size) != RD_KAFKA_CONF_OK) {
        return -1;
    }
    return 0;
}

struct pp_topology *pp_topology_new(const struct pp_app_conf *conf,
                                    const struct pp_topology_env *env, char *errstr,
                                    size_t errstr_size)
{
    struct pp_topology *t = pp_xcalloc(1, sizeof(*t));
    t->env = *env;
    t->eos = conf->guarantee == PP_GUARANTEE_EXACTLY_ONCE;
    t->commit_ms = conf->commit_interval_ms;
    t->snapshot_ms = conf->snapshot_interval_ms;
    t->idle_ms = conf->idle_timeout_ms;
    t->cohort_wait_ms = conf->cohort_max_wait_ms;
    t->mock = conf->mock_cluster;
    t->xbuf = pp_xmalloc(PP_XREC_MAX_BYTES);
    snprintf(t->app, sizeof(t->app), "%s", conf->application_id);
    snprintf(t->state_dir, sizeof(t->state_dir), "%s", conf->state_dir);
    snprintf(t->inputs[0], sizeof(t->inputs[0]), "%s", conf->topic_deals);
    snprintf(t->inputs[1], sizeof(t->inputs[1]), "%s", conf->topic_licenses);
    snprintf(t->inputs[2], sizeof(t->inputs[2]), "%s", conf->topic_support);
    snprintf(t->repart, sizeof(t->repart), "%s-repartition", t->app);
    snprintf(t->exchange, sizeof(t->exchange), "%s-exchange", t->app);
    snprintf(t->cchangelog, sizeof(t->cchangelog), "%s-customers-changelog", t->app);
    snprintf(t->pchangelog, sizeof(t->pchangelog), "%s-partners-changelog", t->app);
    snprintf(t->wmtopic, sizeof(t->wmtopic), "%s-watermarks", t->app);
    pp_engine_model_conf(conf, &t->mconf);
    t->skew_ms = (int64_t)pp_model_max_skew_days(&t->mconf) * 86400000;
    t->room_ms = ((int64_t)pp_cstage_room_days(&t->mconf) - 1) * 86400000;
    t->oldest_ms = INT64_MAX;
    t->prk = pp_producer_handle(env->producer);
    metrics_init(t);

    /* Inputs: their partitions are the watermark's sources. */
    int maxp = 0;
    const char *uniq[3];
    size_t nu = 0;
    for (int i = 0; i < 3; i++) {
        bool dup = false;
        for (size_t j = 0; j < nu; j++) {
            dup |= strcmp(uniq[j], t->inputs[i]) == 0;
        }
        if (dup) {
            continue;
        }
        uniq[nu++] = t->inputs[i];
        int n = input_partitions(t->prk, t->inputs[i], errstr, errstr_size);
        if (n < 0) {
            goto fail;
        }
        t->sources_total += (uint32_t)n;
        maxp = n > maxp ? n : maxp;
    }
    int existing = pp_topics_partitions(t->prk, t->repart, 5000, errstr, errstr_size);
    if (existing < 0) {
        goto fail;
    }
    t->n = conf->partitions ? conf->partitions : existing > 0 ? (uint32_t)existing : (uint32_t)maxp;
    const char *why_n = conf->partitions ? "processing.partitions"
                        : existing > 0   ? "the existing repartition topic"
                                         : "the largest input topic's partition count";
    struct pp_topic_spec specs[] = {
        {t->repart, (int)t->n, 0, why_n},
        {t->exchange, 1, 0, "one partners task"},
        {t->cchangelog, (int)t->n, conf->mock_cluster ? 0 : 1, why_n},
        {t->pchangelog, 1, conf->mock_cluster ? 0 : 1, "one partners task"},
        {t->wmtopic, 1, conf->mock_cluster ? 0 : 1, "read whole by every instance"},
    };
    if (pp_topics_ensure(t->prk, specs, 5,
                         conf->replication_factor ? (int)conf->replication_factor : -1, 30000,
                         errstr, errstr_size) != 0) {
        goto fail;
    }
    pp_log(PP_LOG_INFO,
           "msg=\"topology\" guarantee=%s customers_tasks=%u input_partitions=%u repartition=%s "
           "exchange=%s",
           t->eos ? "exactly_once" : "at_least_once", t->n, t->sources_total, t->repart,
           t->exchange);

    t->plain = pp_app_kafka_conf(conf, 2, errstr, errstr_size);
    if (t->plain == NULL) {
        goto fail;
    }
    /* The watermarks reader: no group membership, the whole partition. */
    rd_kafka_conf_t *wc = rd_kafka_conf_dup(t->plain);
    char gid[PP_CONF_STR_MAX + 32];
    snprintf(gid, sizeof(gid), "%s-watermarks-reader", t->app);
    if (rd_kafka_conf_set(wc, "group.id", gid, errstr, errstr_size) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(wc, "enable.auto.commit", "false", errstr, errstr_size) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(wc, "isolation.level", "read_committed", errstr, errstr_size) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(wc, "fetch.wait.max.ms", "50", errstr, errstr_size) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(wc, "enable.partition.eof", "true", errstr, errstr_size) !=
            RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(wc);
        goto fail;
    }
    t->wmrk = rd_kafka_new(RD_KAFKA_CONSUMER, wc, errstr, errstr_size);
    if (t->wmrk == NULL) {
        rd_kafka_conf_destroy(wc);
        goto fail;
    }
    rd_kafka_topic_partition_list_t *wparts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(wparts, t->wmtopic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t aerr = rd_kafka_assign(t->wmrk, wparts);
    rd_kafka_topic_partition_list_destroy(wparts);
    if (aerr) {
        snprintf(errstr, errstr_size, "cannot read %s: %s", t->wmtopic, rd_kafka_err2str(aerr));
        goto fail;
    }
    if (t->eos) {
        rd_kafka_error_t *e = rd_kafka_init_transactions(t->prk, 60000);
        if (e) {
            snprintf(errstr, errstr_size, "cannot initialise transactions: %s",
                     rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            goto fail;
        }
        txn_begin(t);
    }

    const char *topics[] = {uniq[0], nu > 1 ? uniq[1] : t->repart, nu > 2 ? uniq[2] : t->repart,
                            t->repart, t->exchange};
    struct pp_consumer_conf cc = {
        .rk_conf = pp_app_kafka_conf(conf, 1, errstr, errstr_size),
        .topics = topics,
        .topics_n = 5,
        .base = env->base,
        .codec = env->codec,
        .on_event = on_event,
        .on_reject = on_reject,
        .on_error = on_consumer_error,
        .on_eof = on_eof,
        .on_raw = on_raw,
        .on_rebalance = on_rebalance,
        .level = topic_level,
        .on_batch_end = on_batch_end,
        .opaque = t,
    };
    if (cc.rk_conf == NULL ||
        rd_kafka_conf_set(cc.rk_conf, "enable.auto.commit", "false", errstr, errstr_size) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(cc.rk_conf, "isolation.level", "read_committed", errstr, errstr_size) !=
            RD_KAFKA_CONF_OK) {
        if (cc.rk_conf) {
            rd_kafka_conf_destroy(cc.rk_conf);
        }
        goto fail;
    }
    if (env->stats_cb) {
        rd_kafka_conf_set_stats_cb(cc.rk_conf, env->stats_cb);
    }
    t->consumer = pp_consumer_new(&cc, errstr, errstr_size);
    if (t->consumer == NULL) {
        goto fail;
    }
    t->repart_rkt = rd_kafka_topic_new(pp_consumer_handle(t->consumer), t->repart, NULL);
    if (t->repart_rkt == NULL) {
        snprintf(errstr, errstr_size, "cannot open topic %s: %s", t->repart,
                 rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    t->tick = event_new(env->base, -1, EV_PERSIST, on_tick, t);
    t->restore_ev = event_new(env->base, -1, 0, on_restore, t);
    t->early = event_new(env->base, -1, 0, on_early, t);
    t->idle_ev = event_new(env->base, -1, 0, on_idle, t);
    struct timeval tv = {t->commit_ms / 1000, (t->commit_ms % 1000) * 1000};
    event_add(t->tick, &tv);
    return t;
fail:
    pp_topology_destroy(t);
    return NULL;
}

int pp_topology_shutdown(struct pp_topology *t, int timeout_ms)
{
    /* The bound is the process's watchdog (app/watchdog.h): the
     * transaction calls keep their own timeouts. */
    (void)timeout_ms;
    if (t->tick) {
        event_del(t->tick);
    }
    if (t->early) {
        event_del(t->early);
    }
    if (t->idle_ev) {
        event_del(t->idle_ev);
    }
    int rc = commit_now(t);
    for (size_t i = 0; rc == 0 && i < t->task_n; i++) {
        snapshot(t, t->task[i]);
    }
    /* Leaving the group revokes everything: the rebalance callback commits
     * (nothing left) and releases the tasks. */
    pp_consumer_close(t->consumer);
    t->stopping = true;
    if (t->eos && t->txn_open) {
        rd_kafka_error_t *e = rd_kafka_abort_transaction(t->prk, 5000);
        if (e) {
            rd_kafka_error_destroy(e);
        }
        t->txn_open = false;
    }
    return rc;
}

void pp_topology_destroy(struct pp_topology *t)
{
    if (t == NULL) {
        return;
    }
    if (t->tick) {
        event_free(t->tick);
    }
    if (t->restore_ev) {
        event_free(t->restore_ev);
    }
    if (t->early) {
        event_free(t->early);
    }
    if (t->idle_ev) {
        event_free(t->idle_ev);
    }
    if (t->repart_rkt) {
        rd_kafka_topic_destroy(t->repart_rkt);
    }
    pp_consumer_destroy(t->consumer);
    if (t->wmrk) {
        rd_kafka_consumer_close(t->wmrk);
        rd_kafka_destroy(t->wmrk);
    }
    free(t->gwm);
    free(t->gtask);
    for (size_t i = 0; i < t->task_n; i++) {
        task_free(t->task[i]);
    }
    for (size_t i = 0; i < t->src_n; i++) {
        free(t->src[i]);
    }
    if (t->plain) {
        rd_kafka_conf_destroy(t->plain);
    }
    free(t->xbuf);
    free(t);
}

struct pp_consumer *pp_topology_consumer(struct pp_topology *t)
{
    return t->consumer;
}

struct pp_pstage *pp_topology_pstage(const struct pp_topology *t)
{
    struct task *k = task_find((struct pp_topology *)t, TK_PARTNERS, 0);
    return k && !k->restoring ? k->ps : NULL;
}

uint32_t pp_topology_restoring(const struct pp_topology *t)
{
    uint32_t n = 0;
    for (size_t i = 0; i < t->task_n; i++) {
        n += t->task[i]->restoring;
    }
    return n;
}

int64_t pp_topology_watermark(const struct pp_topology *t)
{
    int64_t wm = INT64_MIN;
    for (size_t i = 0; i < t->task_n; i++) {
        const struct task *k = t->task[i];
        if (k->kind == TK_CUSTOMERS && k->watermark != INT64_MIN &&
            (wm == INT64_MIN || k->watermark < wm)) {
            wm = k->watermark;
        }
    }
    return wm;
}

int32_t pp_topology_last_day(const struct pp_topology *t)
{
    struct pp_pstage *ps = pp_topology_pstage(t);
    return ps ? pp_pstage_last_day(ps) : INT32_MIN;
}

void pp_topology_refresh_metrics(struct pp_topology *t)
{
    uint32_t kinds[2] = {0, 0};
    for (size_t i = 0; i < t->task_n; i++) {
        kinds[t->task[i]->kind]++;
    }
    pp_metric_set(t->m_tasks[0], kinds[0]);
    pp_metric_set(t->m_tasks[1], kinds[1]);
    pp_metric_set(t->m_restoring, pp_topology_restoring(t));
    int32_t d = pp_topology_last_day(t);
    pp_metric_set(t->m_last_day, d == INT32_MIN ? -1.0 : (double)d);
}

int pp_topology_set_conf(struct pp_topology *t, const struct pp_app_conf *conf, char *errstr,
                         size_t errstr_size)
{
    struct pp_model_conf mc;
    pp_engine_model_conf(conf, &mc);
    for (size_t i = 0; i < t->task_n; i++) {
        struct task *k = t->task[i];
        int rc = k->cs ? pp_cstage_set_conf(k->cs, &mc, errstr, errstr_size)
                       : pp_pstage_set_conf(k->ps, &mc, errstr, errstr_size);
        if (rc != 0) {
            return -1; /* refused before anything changed: the engine checked the same */
        }
    }
    t->mconf = mc;
    return 0;
}

size_t pp_topology_state_bytes(const struct pp_topology *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->task_n; i++) {
        const struct task *k = t->task[i];
        n += k->cs ? pp_cstage_stats(k->cs)->bytes_state : pp_pstage_stats(k->ps)->bytes_state;
    }
    return n;
}

uint32_t pp_topology_partner_count(const struct pp_topology *t)
{
    const struct pp_pstage *ps = pp_topology_pstage(t);
    return ps ? pp_pstage_partner_count(ps) : 0;
}

uint64_t pp_topology_events(const struct pp_topology *t)
{
    return t->applied;
}
