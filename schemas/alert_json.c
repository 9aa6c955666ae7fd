/*
 * alert_json.c — struct pp_alert → compact JSON (see alert_json.h), built
 * with jansson so that escaping and number formatting are a library's, not
 * ours.
 *
 * Days are written as UTC timestamps like the Avro record's timestamp-millis
 * fields; a day the alert does not have yet is null, and so is a double that
 * does not apply (NAN). The model's explanation (scores, signals, affected
 * customers, severity history, runbook) is rendered only when the alert
 * carries one: the skeleton's alerts leave those fields zero, and a page of
 * zero scores would read as a measurement.
 */
#include "alert_json.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ptime.h"

/* Rendering state: the first allocation failure sticks, and the number of
 * significant digits grows to what the doubles need to read back exactly. */
struct out {
    int failed;
    int prec;
};

static json_t *chk(struct out *o, json_t *v)
{
    if (v == NULL) {
        o->failed = 1;
    }
    return v;
}

static void put(struct out *o, json_t *obj, const char *key, json_t *v)
{
    if (v == NULL || obj == NULL) {
        o->failed = 1;
        json_decref(v);
        return;
    }
    if (json_object_set_new(obj, key, v) != 0) { /* the reference is taken even on failure */
        o->failed = 1;
    }
}

static json_t *str(struct out *o, const char *s)
{
    return chk(o, json_string(s));
}

static json_t *str_or_null(struct out *o, const char *s)
{
    return s[0] ? str(o, s) : chk(o, json_null());
}

/* A double, or null when it does not apply (NAN, infinities). */
static json_t *num(struct out *o, double x)
{
    if (!isfinite(x)) {
        return chk(o, json_null());
    }
    for (int p = o->prec; p < 17; p++) {
        char tmp[40];
        snprintf(tmp, sizeof(tmp), "%.*g", p, x);
        if (strtod(tmp, NULL) == x) {
            break;
        }
        o->prec = p + 1;
    }
    return chk(o, json_real(x));
}

static json_t *day_ts(struct out *o, int32_t day, const char *time_of_day)
{
    if (day == INT32_MIN || day == INT32_MAX) {
        return chk(o, json_null());
    }
    char date[16], buf[40];
    pp_day_format(day, date, sizeof(date));
    snprintf(buf, sizeof(buf), "%sT%sZ", date, time_of_day);
    return str(o, buf);
}

static json_t *day_str(struct out *o, int32_t day)
{
    char date[16];
    pp_day_format(day, date, sizeof(date));
    return str(o, date);
}

static const char *family_name(int f)
{
    return f == PP_ALERT_FAM_ADOPT ? "ADOPT" : f == PP_ALERT_FAM_COMMIT ? "COMMIT" : "SUPPORT";
}

/* Whether the model filled the explanation (the skeleton leaves it zero). */
static int has_explanation(const struct pp_alert *a)
{
    if (a->n_signals || a->n_customers || a->n_history || a->runbook_id[0] ||
        a->parent_alert_id[0]) {
        return 1;
    }
    for (int f = 0; f < PP_ALERT_FAM__COUNT; f++) {
        if (a->families[f].present) {
            return 1;
        }
    }
    const double scores[] = {a->cpi_short,  a->cpi_long,    a->h_short,     a->h_long,
                             a->aggression, a->cpi_partner, a->touched_acv, a->affected_acv_share};
    for (size_t i = 0; i < sizeof(scores) / sizeof(scores[0]); i++) {
        if (isfinite(scores[i]) && scores[i] != 0) {
            return 1;
        }
    }
    return 0;
}

static json_t *scores(struct out *o, const struct pp_alert *a)
{
    json_t *s = chk(o, json_object());
    if (a->scope == PP_SCOPE_PARTNER) {
        put(o, s, "cpi_partner", num(o, a->cpi_partner));
        put(o, s, "health_partner",
            a->health >= 0 ? chk(o, json_integer(a->health)) : chk(o, json_null()));
        put(o, s, "touched_acv", num(o, a->touched_acv));
        put(o, s, "affected_acv_share", num(o, a->affected_acv_share));
        return s;
    }
    put(o, s, "cpi_short", num(o, a->cpi_short));
    put(o, s, "cpi_long", num(o, a->cpi_long));
    put(o, s, "H_short", num(o, a->h_short));
    put(o, s, "H_long", num(o, a->h_long));
    put(o, s, "A", num(o, a->aggression));
    put(o, s, "health", a->health >= 0 ? chk(o, json_integer(a->health)) : chk(o, json_null()));
    json_t *fam = chk(o, json_object());
    for (int f = 0; f < PP_ALERT_FAM__COUNT; f++) {
        const struct pp_alert_family_score *fs = &a->families[f];
        json_t *v;
        if (fs->present) {
            v = chk(o, json_object());
            put(o, v, "harm", num(o, fs->harm));
            put(o, v, "exposure", num(o, fs->exposure));
        }
        else {
            v = chk(o, json_null());
        }
        put(o, fam, family_name(f), v);
    }
    put(o, s, "families", fam);
    return s;
}

static void explanation(struct out *o, json_t *root, const struct pp_alert *a)
{
    put(o, root, "scores", scores(o, a));

    json_t *sig = chk(o, json_array());
    uint32_t ns = a->n_signals < PP_ALERT_MAX_SIGNALS ? a->n_signals : PP_ALERT_MAX_SIGNALS;
    for (uint32_t i = 0; i < ns; i++) {
        const struct pp_alert_signal *s = &a->signals[i];
        json_t *v = chk(o, json_object());
        put(o, v, "signal", str(o, s->name));
        put(o, v, "value", num(o, s->value));
        put(o, v, "risk", num(o, s->risk));
        put(o, v, "warn_at", num(o, s->warn_at));
        put(o, v, "crit_at", num(o, s->crit_at));
        put(o, v, "baseline", num(o, s->baseline));
        put(o, v, "contribution", num(o, s->contribution));
        if (sig && v && json_array_append_new(sig, v) != 0) {
            o->failed = 1;
        }
    }
    put(o, root, "top_contributing_signals", sig);

    if (a->scope == PP_SCOPE_PARTNER) {
        json_t *cs = chk(o, json_array());
        uint32_t nc =
            a->n_customers < PP_ALERT_MAX_CUSTOMERS ? a->n_customers : PP_ALERT_MAX_CUSTOMERS;
        for (uint32_t i = 0; i < nc; i++) {
            const struct pp_alert_customer *c = &a->customers[i];
            json_t *v = chk(o, json_object());
            put(o, v, "customer_id", str(o, c->customer_id));
            put(o, v, "severity", str(o, pp_severity_name((enum pp_severity)c->severity)));
            put(o, v, "cpi_short", num(o, c->cpi_short));
            put(o, v, "cpi_long", num(o, c->cpi_long));
            put(o, v, "health",
                c->health >= 0 ? chk(o, json_integer(c->health)) : chk(o, json_null()));
            put(o, v, "partner_acv", num(o, c->partner_acv));
            if (cs && v && json_array_append_new(cs, v) != 0) {
                o->failed = 1;
            }
        }
        put(o, root, "customers_affected", cs);
        put(o, root, "customers_firing", chk(o, json_integer(a->customers_firing)));
        put(o, root, "customers_critical", chk(o, json_integer(a->customers_critical)));
    }

    json_t *hist = chk(o, json_array());
    uint32_t nh = a->n_history < PP_ALERT_MAX_HISTORY ? a->n_history : PP_ALERT_MAX_HISTORY;
    for (uint32_t i = 0; i < nh; i++) {
        json_t *v = chk(o, json_object());
        put(o, v, "at", day_str(o, a->history[i].day));
        put(o, v, "severity", str(o, pp_severity_name((enum pp_severity)a->history[i].severity)));
        if (hist && v && json_array_append_new(hist, v) != 0) {
            o->failed = 1;
        }
    }
    put(o, root, "severity_history", hist);

    json_t *rb = chk(o, json_object());
    put(o, rb, "id", str_or_null(o, a->runbook_id));
    put(o, rb, "hint", str_or_null(o, a->runbook_hint));
    put(o, rb, "dominant", str_or_null(o, a->dominant));
    put(o, root, "runbook", rb);
}

int pp_alert_to_json(const struct pp_alert *a, char **out)
{
    *out = NULL;
    struct out o = {0, 15};
    json_t *root = chk(&o, json_object());
    bool pxc = a->customer_id[0] != '\0';

    /* Fixed member order: the same alert always renders to the same bytes. */
    put(&o, root, "alert_id", str(&o, a->alert_id));
    put(&o, root, "dedup_key", str(&o, a->dedup_key));
    put(&o, root, "rule_id", str(&o, a->rule_id));
    put(&o, root, "model_version", str(&o, PP_MODEL_VERSION));
    put(&o, root, "status", str(&o, pp_alert_status_name(a->status)));
    put(&o, root, "severity", str(&o, pp_severity_name(a->severity)));
    put(&o, root, "scope", str(&o, pp_scope_name(a->scope)));
    put(&o, root, "tenant", str(&o, a->tenant));
    /* Flat ids as in the Avro record, and MODEL.md §2.7's nested objects. */
    put(&o, root, "partner_id", str(&o, a->partner_id));
    put(&o, root, "customer_id", str_or_null(&o, a->customer_id));
    json_t *partner = chk(&o, json_object());
    put(&o, partner, "id", str(&o, a->partner_id));
    put(&o, root, "partner", partner);
    json_t *customer = chk(&o, pxc ? json_object() : json_null());
    if (pxc) {
        put(&o, customer, "id", str(&o, a->customer_id));
    }
    put(&o, root, "customer", customer);
    put(&o, root, "first_seen_at", day_ts(&o, a->first_seen_day, "00:00:00"));
    put(&o, root, "fired_at", day_ts(&o, a->fired_day, "00:00:00"));
    put(&o, root, "last_evaluated_at", day_ts(&o, a->eval_day, "00:00:00"));
    put(&o, root, "data_through", day_ts(&o, a->eval_day, "23:59:59"));
    put(&o, root, "reopen_count", chk(&o, json_integer(a->reopen_count)));
    put(&o, root, "value", num(&o, a->value));
    put(&o, root, "threshold", num(&o, a->threshold));
    put(&o, root, "window_days", chk(&o, json_integer(a->window_days)));
    put(&o, root, "summary", str(&o, a->summary));
    if (has_explanation(a)) {
        put(&o, root, "last_changed_at", day_ts(&o, a->last_changed_day, "00:00:00"));
        put(&o, root, "parent_alert_id", str_or_null(&o, a->parent_alert_id));
        explanation(&o, root, a);
    }
    if (!o.failed) {
        *out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(o.prec));
    }
    json_decref(root);
    return *out ? 0 : -1;
}
