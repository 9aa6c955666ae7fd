/*
 * backtest.c — `partnerpulse backtest`: replays an event file through the
 * processor offline and prints every alert transition it would have made.
 *
 * This is how a user tunes thresholds before going live, so the output must
 * depend on the events only, never on how the file happens to be ordered or
 * repeated: events are de-duplicated by event_id (first occurrence wins; the
 * upstream producers are at-least-once), then sorted by (event time,
 * event_id) — a total order, so any shuffle of the same lines gives the same
 * sequence — and applied one by one with the watermark at each event's time,
 * then a final advance closes the last event day. Alert transitions are
 * printed as they are emitted: one text line each, or the JSON of
 * pp_alert_to_json (--format jsonl). docs/backtest.md is the user's page.
 */
#include "backtest.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alert_json.h"
#include "config.h"
#include "engine.h"
#include "eventfile.h"
#include "idmap.h"
#include "palloc.h"
#include "proc.h"
#include "ptime.h"

/* ---- the processor under test ---------------------------------------------
 * The same engine the live service runs (rules.engine: the MODEL.md model by
 * default, or the TICKET_SURGE skeleton rule), configured from --config. */
#define BT_MODEL struct pp_engine

static BT_MODEL *bt_new(const struct pp_app_conf *conf)
{
    return pp_engine_new(conf);
}

/* Returns false when the engine refused the event (too late, or beyond its
 * state horizon): it cannot be, after sorting; counted as a defect. */
static bool bt_apply(BT_MODEL *m, const struct pp_event *ev)
{
    return pp_engine_apply(m, ev) == PP_APPLY_OK;
}

static void bt_advance(BT_MODEL *m, int64_t watermark_ms, pp_alert_cb *cb, void *opaque)
{
    pp_engine_advance(m, watermark_ms, cb, opaque);
}

static void bt_destroy(BT_MODEL *m)
{
    pp_engine_destroy(m);
}

/* --------------------------------------------------------------------------- */

void pp_app_backtest_usage(FILE *out)
{
    fprintf(out,
            "usage: partnerpulse backtest --events FILE [--config FILE] [--format text|jsonl]\n"
            "                             [--summary] [--skip-invalid]\n\n"
            "Replays an event file (JSON Lines, docs/event-files.md) through the processor\n"
            "in event time, offline and deterministic, and prints every alert transition\n"
            "it would have emitted (docs/backtest.md).\n\n"
            "  --events FILE     the event file ('-' is stdin)\n"
            "  --config FILE     rules, tenant and processing.allowed_lateness from a\n"
            "                    configuration file (kafka.* keys are ignored); defaults\n"
            "                    otherwise\n"
            "  --format FMT      text (default): one line per transition;\n"
            "                    jsonl: one alert JSON document per line\n"
            "  --summary         after the transitions, one line per partner: transitions\n"
            "                    by status, first firing day, last status\n"
            "  --skip-invalid    report invalid lines and go on (default: report them all\n"
            "                    and stop before replaying)\n"
            "  --help            this text\n\n"
            "Events are de-duplicated by event_id (first occurrence wins) and sorted by\n"
            "(event time, event_id), so a shuffled or repeated file gives the same output.\n"
            "Exit status: 0 ok, 1 runtime failure, 2 usage error or invalid input.\n");
}

struct partner_sum {
    uint64_t by_status[3];
    int32_t first_fired;
    enum pp_alert_status last;
};

struct bt {
    int jsonl;
    FILE *out;
    uint64_t transitions;
    int failed;
    struct pp_idmap *partners;
    struct partner_sum *sums;
    size_t sums_cap;
};

static void on_alert(const struct pp_alert *a, void *opaque)
{
    struct bt *b = opaque;
    b->transitions++;

    uint32_t i = pp_idmap_intern(b->partners, a->partner_id, NULL);
    if (i >= b->sums_cap) {
        size_t cap = b->sums_cap ? b->sums_cap * 2 : 64;
        while (cap <= i) {
            cap *= 2;
        }
        b->sums = pp_xrealloc(b->sums, cap * sizeof(*b->sums));
        for (size_t k = b->sums_cap; k < cap; k++) {
            b->sums[k] = (struct partner_sum){{0, 0, 0}, INT32_MIN, PP_ALERT_PENDING};
        }
        b->sums_cap = cap;
    }
    struct partner_sum *s = &b->sums[i];
    if ((unsigned)a->status < 3) {
        s->by_status[a->status]++;
    }
    if (a->status == PP_ALERT_FIRING && s->first_fired == INT32_MIN) {
        s->first_fired = a->eval_day;
    }
    s->last = a->status;

    if (b->jsonl) {
        char *json;
        if (pp_alert_to_json(a, &json) != 0) {
            fprintf(stderr, "partnerpulse backtest: cannot render alert %s as JSON\n", a->alert_id);
            b->failed = 1;
            return;
        }
        fprintf(b->out, "%s\n", json);
        free(json);
        return;
    }
    char day[16];
    pp_day_format(a->eval_day, day, sizeof(day));
    fprintf(b->out,
            "%s %-8s %-8s %-16s %-12s %-10s value=%g threshold=%g window=%dd alert_id=%s  %s\n",
            day, pp_alert_status_name(a->status), pp_severity_name(a->severity), a->rule_id,
            a->partner_id, a->customer_id[0] ? a->customer_id : "*", a->value, a->threshold,
            a->window_days, a->alert_id, a->summary);
}

static int by_time_then_id(const void *x, const void *y)
{
    const struct pp_event *a = x, *b = y;
    if (a->occurred_at_ms != b->occurred_at_ms) {
        return a->occurred_at_ms < b->occurred_at_ms ? -1 : 1;
    }
    return strcmp(a->event_id, b->event_id);
}

static int by_name(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static void print_summary(struct bt *b)
{
    uint32_t n = pp_idmap_count(b->partners);
    const char **names = pp_xmalloc((n ? n : 1) * sizeof(*names));
    for (uint32_t i = 0; i < n; i++) {
        names[i] = pp_idmap_key(b->partners, i);
    }
    qsort(names, n, sizeof(*names), by_name);
    if (!b->jsonl) {
        fprintf(b->out, "# partner        pending  firing  resolved  first_fired  last_status\n");
    }
    for (uint32_t k = 0; k < n; k++) {
        const struct partner_sum *s = &b->sums[pp_idmap_find(b->partners, names[k])];
        char first[16] = "-";
        if (s->first_fired != INT32_MIN) {
            pp_day_format(s->first_fired, first, sizeof(first));
        }
        if (b->jsonl) {
            json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:o, s:s}", "type", "partner_summary",
                                  "partner", names[k], "pending", (json_int_t)s->by_status[0],
                                  "firing", (json_int_t)s->by_status[1], "resolved",
                                  (json_int_t)s->by_status[2], "first_fired",
                                  s->first_fired == INT32_MIN ? json_null() : json_string(first),
                                  "last_status", pp_alert_status_name(s->last));
            char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
            if (line == NULL) {
                b->failed = 1;
            }
            else {
                fprintf(b->out, "%s\n", line);
            }
            free(line);
            json_decref(o);
        }
        else {
            fprintf(b->out, "# %-14s %7" PRIu64 " %7" PRIu64 " %9" PRIu64 "  %-11s  %s\n", names[k],
                    s->by_status[0], s->by_status[1], s->by_status[2], first,
                    pp_alert_status_name(s->last));
        }
    }
    if (n == 0 && !b->jsonl) {
        fprintf(b->out, "# (no alert transitions)\n");
    }
    free(names);
}

int pp_app_backtest(int argc, char **argv)
{
    static const struct option opts[] = {
        {"events", required_argument, 0, 'e'},
        {"config", required_argument, 0, 'c'},
        {"format", required_argument, 0, 'f'},
        {"summary", no_argument, 0, 's'},
        {"skip-invalid", no_argument, 0, 'k'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *events = NULL, *config = NULL;
    int summary = 0, skip_invalid = 0, c;
    struct bt b;
    memset(&b, 0, sizeof(b));
    b.out = stdout;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'e':
            events = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "text") == 0) {
                b.jsonl = 0;
            }
            else if (strcmp(optarg, "jsonl") == 0) {
                b.jsonl = 1;
            }
            else {
                fprintf(stderr, "partnerpulse backtest: bad --format '%s' (text or jsonl)\n",
                        optarg);
                return 2;
            }
            break;
        case 's':
            summary = 1;
            break;
        case 'k':
            skip_invalid = 1;
            break;
        case 'h':
            pp_app_backtest_usage(stdout);
            return 0;
        default:
            pp_app_backtest_usage(stderr);
            return 2;
        }
    }
    if (events == NULL || optind != argc) {
        fprintf(stderr, "partnerpulse backtest: --events FILE is required\n");
        return 2;
    }

    struct pp_app_conf conf;
    pp_app_conf_defaults(&conf);
    char errstr[1024];
    int rc = 2;
    struct pp_eventfile_reader *rd = NULL;
    struct pp_idmap *ids = NULL;
    struct pp_event *evs = NULL;
    size_t n = 0, cap = 0;
    uint64_t dups = 0, invalid = 0;
    BT_MODEL *m = NULL;
    b.partners = pp_idmap_new();

    if (config && pp_app_conf_load(&conf, config, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "partnerpulse backtest: configuration error: %s\n", errstr);
        goto out;
    }
    rd = pp_eventfile_open(events, errstr, sizeof(errstr));
    if (rd == NULL) {
        fprintf(stderr, "partnerpulse backtest: %s\n", errstr);
        goto out;
    }
    ids = pp_idmap_new();
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            evs = pp_xrealloc(evs, cap * sizeof(*evs));
        }
        enum pp_eventfile_rc r = pp_eventfile_next(rd, &evs[n], errstr, sizeof(errstr));
        if (r == PP_EVENTFILE_EOF) {
            break;
        }
        if (r == PP_EVENTFILE_IO) {
            fprintf(stderr, "partnerpulse backtest: %s\n", errstr);
            rc = 1;
            goto out;
        }
        if (r == PP_EVENTFILE_BAD_LINE) {
            if (invalid++ < 20) {
                fprintf(stderr, "partnerpulse backtest: %s\n", errstr);
            }
            continue;
        }
        /* At-least-once upstream: the same event_id twice is one event. The
         * model will de-duplicate itself (DESIGN.md §4); until then, here. */
        bool created;
        pp_idmap_intern(ids, evs[n].event_id, &created);
        if (!created) {
            dups++;
            continue;
        }
        n++;
    }
    if (invalid > 0) {
        fprintf(stderr, "partnerpulse backtest: %" PRIu64 " invalid line%s in %s%s\n", invalid,
                invalid == 1 ? "" : "s", events,
                skip_invalid ? " (skipped)" : "; nothing replayed (--skip-invalid to go on)");
        if (!skip_invalid) {
            goto out;
        }
    }

    qsort(evs, n, sizeof(*evs), by_time_then_id);
    m = bt_new(&conf);
    uint64_t refused = 0;
    for (size_t i = 0; i < n; i++) {
        if (!bt_apply(m, &evs[i])) {
            refused++;
        }
        bt_advance(m, evs[i].occurred_at_ms, on_alert, &b);
    }
    if (n > 0) {
        /* Close the last event day: its evaluation waits for the lateness. */
        int32_t last = pp_day_from_ms(evs[n - 1].occurred_at_ms);
        bt_advance(m, pp_day_to_ms(last + 1) + conf.proc.allowed_lateness_ms, on_alert, &b);
    }
    if (summary) {
        print_summary(&b);
    }
    if (fflush(b.out) != 0 || ferror(b.out)) {
        fprintf(stderr, "partnerpulse backtest: writing the output failed: %s\n", strerror(errno));
        rc = 1;
        goto out;
    }
    char first[16] = "-", last[16] = "-";
    if (n > 0) {
        pp_day_format(pp_day_from_ms(evs[0].occurred_at_ms), first, sizeof(first));
        pp_day_format(pp_day_from_ms(evs[n - 1].occurred_at_ms), last, sizeof(last));
    }
    fprintf(stderr,
            "partnerpulse backtest: %zu events %s..%s from %s (%" PRIu64
            " duplicate event_ids dropped, %" PRIu64 " invalid lines), %" PRIu64
            " alert transitions\n",
            n, first, last, events, dups, invalid, b.transitions);
    if (refused > 0) {
        fprintf(stderr, "partnerpulse backtest: the model refused %" PRIu64 " sorted events\n",
                refused);
    }
    rc = b.failed ? 1 : 0;
out:
    bt_destroy(m);
    pp_eventfile_reader_destroy(rd);
    pp_idmap_destroy(ids);
    pp_idmap_destroy(b.partners);
    free(b.sums);
    free(evs);
    pp_app_conf_free(&conf);
    return rc;
}
