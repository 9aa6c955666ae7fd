/*
 * rules.c — CUSTOMER_PRESSURE, PARTNER_PRESSURE and STUFFING_PATTERN state
 * machines (MODEL.md §2.6). See rules.h.
 *
 * Decisions where §2.6 is terse (docs/model.md has the full list):
 * - pending needs N consecutive days of the entry condition; the N-th day
 *   fires, so first_seen = fired - (N - 1) (§3.5: first_seen <= fired - 6);
 * - the CRITICAL run counts every day with lo >= 75, pending days included,
 *   but escalation happens at the earliest the day after firing, so each
 *   severity has its own record;
 * - de-escalation and resolution count CPI_short only, from the first firing
 *   day; resolution may come from either severity;
 * - re-entering (a new pending run starting) within reopen_days of the
 *   resolution reuses the episode's first_seen, hence its alert_id, and
 *   counts a reopen.
 */
#include "rules.h"

#include <string.h>

#include "alert.h"

const char *pp_rule_tr_name(enum pp_rule_tr t)
{
    switch (t) {
    case PP_TR_NONE:
        return "NONE";
    case PP_TR_FIRED:
        return "FIRED";
    case PP_TR_ESCALATED:
        return "ESCALATED";
    case PP_TR_DEESCALATED:
        return "DEESCALATED";
    case PP_TR_RESOLVED:
        return "RESOLVED";
    }
    return "UNKNOWN";
}

void pp_rule_init(struct pp_rule_state *st)
{
    memset(st, 0, sizeof(*st));
    st->pending_start = PP_NO_DAY;
    st->first_seen = PP_NO_DAY;
    st->fired_day = PP_NO_DAY;
    st->changed_day = PP_NO_DAY;
    st->resolved_day = PP_NO_DAY;
}

static uint16_t inc(uint16_t v)
{
    return v == UINT16_MAX ? v : (uint16_t)(v + 1);
}

static void hist_push(struct pp_rule_state *st, int32_t day, int sev)
{
    if (st->hist_n == PP_RULE_HIST) {
        memmove(&st->hist_day[0], &st->hist_day[1], (PP_RULE_HIST - 1) * sizeof(st->hist_day[0]));
        memmove(&st->hist_sev[0], &st->hist_sev[1], (PP_RULE_HIST - 1) * sizeof(st->hist_sev[0]));
        st->hist_n--;
    }
    st->hist_day[st->hist_n] = day;
    st->hist_sev[st->hist_n] = (uint8_t)sev;
    st->hist_n++;
}

static void fire(struct pp_rule_state *st, const struct pp_model_conf *conf, int32_t day,
                 int32_t first_seen, int sev)
{
    if (st->resolved_day != PP_NO_DAY &&
        (int64_t)first_seen <= (int64_t)st->resolved_day + conf->reopen_days) {
        st->reopen_count = inc(st->reopen_count); /* same episode, same alert_id */
    }
    else {
        st->first_seen = first_seen;
        st->reopen_count = 0;
        st->hist_n = 0;
    }
    st->phase = PP_PHASE_FIRING;
    st->severity = (uint8_t)sev;
    st->fired_day = day;
    st->changed_day = day;
    st->deesc_run = 0;
    st->resolve_run = 0;
    hist_push(st, day, sev);
}

static void resolve(struct pp_rule_state *st, int32_t day)
{
    st->phase = PP_PHASE_OK;
    st->resolved_day = day;
    st->changed_day = day;
    st->run = 0;
    st->pending_start = PP_NO_DAY;
}

static void set_severity(struct pp_rule_state *st, int32_t day, int sev)
{
    st->severity = (uint8_t)sev;
    st->changed_day = day;
    hist_push(st, day, sev);
}

/* OK/PENDING part shared by the two rules with a pending period. Returns
 * true when the pending period completes today. */
static bool pend(struct pp_rule_state *st, int32_t day, bool enter, uint32_t pending_days)
{
    if (!enter) {
        st->phase = PP_PHASE_OK;
        st->run = 0;
        st->pending_start = PP_NO_DAY;
        return false;
    }
    if (st->phase == PP_PHASE_OK) {
        st->phase = PP_PHASE_PENDING;
        st->pending_start = day;
        st->run = 0;
    }
    st->run = inc(st->run);
    return st->run >= pending_days;
}

enum pp_rule_tr pp_rule_customer_step(struct pp_rule_state *st, const struct pp_model_conf *conf,
                                      int32_t day, double cpi_short, double cpi_long)
{
    double lo = cpi_short < cpi_long ? cpi_short : cpi_long;
    bool was_firing = st->phase == PP_PHASE_FIRING;
    st->crit_run = lo >= conf->cp_crit ? inc(st->crit_run) : 0;
    if (!was_firing) {
        if (pend(st, day, lo >= conf->cp_enter, conf->cp_pending_days)) {
            fire(st, conf, day, st->pending_start, PP_SEV_WARNING);
            return PP_TR_FIRED;
        }
        return PP_TR_NONE;
    }
    st->deesc_run = cpi_short < conf->cp_deesc ? inc(st->deesc_run) : 0;
    st->resolve_run = cpi_short < conf->cp_resolve ? inc(st->resolve_run) : 0;
    if (st->resolve_run >= conf->cp_resolve_days) {
        resolve(st, day);
        return PP_TR_RESOLVED;
    }
    if (st->severity == PP_SEV_CRITICAL && st->deesc_run >= conf->cp_deesc_days) {
        set_severity(st, day, PP_SEV_WARNING);
        st->deesc_run = 0;
        return PP_TR_DEESCALATED;
    }
    if (st->severity == PP_SEV_WARNING && st->crit_run >= conf->cp_crit_days) {
        set_severity(st, day, PP_SEV_CRITICAL);
        st->deesc_run = 0;
        return PP_TR_ESCALATED;
    }
    return PP_TR_NONE;
}

int pp_rule_partner_level(const struct pp_model_conf *conf, const struct pp_partner_rollup *r)
{
    if (!(r->touched_acv > 0.0)) {
        return 0;
    }
    bool crit = r->critical >= conf->pp_crit_children ||
                (r->critical >= conf->pp_crit_min &&
                 r->critical_acv >= conf->pp_crit_share * r->touched_acv);
    if (crit) {
        return PP_SEV_CRITICAL;
    }
    bool warn =
        r->firing >= conf->pp_min_firing && r->firing_acv >= conf->pp_min_share * r->touched_acv;
    return warn ? PP_SEV_WARNING : 0;
}

enum pp_rule_tr pp_rule_partner_step(struct pp_rule_state *st, const struct pp_model_conf *conf,
                                     int32_t day, const struct pp_partner_rollup *r)
{
    /* The pending period is the children's: the roll-up fires the day its
     * condition holds, and resolves the day it stops holding. */
    int level = pp_rule_partner_level(conf, r);
    if (st->phase != PP_PHASE_FIRING) {
        if (level == 0) {
            return PP_TR_NONE;
        }
        int32_t first = r->children_first_seen != PP_NO_DAY ? r->children_first_seen : day;
        fire(st, conf, day, first, level);
        return PP_TR_FIRED;
    }
    if (level == 0) {
        resolve(st, day);
        return PP_TR_RESOLVED;
    }
    if (level != st->severity) {
        set_severity(st, day, level);
        return level == PP_SEV_CRITICAL ? PP_TR_ESCALATED : PP_TR_DEESCALATED;
    }
    return PP_TR_NONE;
}

enum pp_rule_tr pp_rule_stuffing_step(struct pp_rule_state *st, const struct pp_model_conf *conf,
                                      int32_t day, int condition)
{
    if (st->phase != PP_PHASE_FIRING) {
        if (pend(st, day, condition != 0, conf->st_pending_days)) {
            fire(st, conf, day, st->pending_start, PP_SEV_WARNING);
            return PP_TR_FIRED;
        }
        return PP_TR_NONE;
    }
    st->resolve_run = condition ? 0 : inc(st->resolve_run);
    if (st->resolve_run >= conf->st_resolve_days) {
        resolve(st, day);
        return PP_TR_RESOLVED;
    }
    return PP_TR_NONE;
}
