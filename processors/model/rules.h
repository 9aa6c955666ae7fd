/*
 * rules.h — the three alert rules of MODEL.md §2.6 as explicit state
 * machines, stepped once per evaluated day.
 *
 * Each machine is a plain struct driven by per-day inputs (two CPIs, the
 * children's roll-up, or a boolean), so tests can feed hand-made sequences
 * without events, and the model embeds one per partner x customer (or per
 * partner). A step returns the transition it made, if any; the caller turns
 * transitions into alert records. Durations count consecutive evaluated
 * days; the day that completes a duration is the day of the transition.
 */
#ifndef PP_RULES_H
#define PP_RULES_H

#include <stdint.h>

#include "model.h"

#define PP_NO_DAY    INT32_MIN
#define PP_RULE_HIST 6

enum pp_rule_phase {
    PP_PHASE_OK = 0, /* inactive, or resolved */
    PP_PHASE_PENDING,
    PP_PHASE_FIRING,
};

enum pp_rule_tr {
    PP_TR_NONE = 0,
    PP_TR_FIRED,       /* pending -> firing (WARNING, or the partner's level) */
    PP_TR_ESCALATED,   /* WARNING -> CRITICAL */
    PP_TR_DEESCALATED, /* CRITICAL -> WARNING */
    PP_TR_RESOLVED,    /* firing -> resolved */
};

const char *pp_rule_tr_name(enum pp_rule_tr t);

struct pp_rule_state {
    uint8_t phase;    /* enum pp_rule_phase */
    uint8_t severity; /* enum pp_severity while firing */
    uint8_t hist_n;
    uint8_t hist_sev[PP_RULE_HIST];
    uint16_t run;         /* consecutive days of the entry condition */
    uint16_t crit_run;    /* consecutive days at the CRITICAL level */
    uint16_t deesc_run;   /* consecutive days below the de-escalation level */
    uint16_t resolve_run; /* consecutive days below the resolve level / false */
    uint16_t reopen_count;
    int32_t pending_start; /* first day of the current pending run */
    int32_t first_seen;    /* the episode's first day: alert_id = key + this */
    int32_t fired_day;
    int32_t changed_day;
    int32_t resolved_day; /* PP_NO_DAY while none */
    int32_t hist_day[PP_RULE_HIST];
};

void pp_rule_init(struct pp_rule_state *st);

/* CUSTOMER_PRESSURE for one P×C on `day`. */
enum pp_rule_tr pp_rule_customer_step(struct pp_rule_state *st, const struct pp_model_conf *conf,
                                      int32_t day, double cpi_short, double cpi_long);

/* PARTNER_PRESSURE: the children's roll-up on `day`. children_first_seen is
 * the earliest first_seen of the firing children (the episode start). */
struct pp_partner_rollup {
    uint32_t firing;
    uint32_t critical;
    double firing_acv;
    double critical_acv;
    double touched_acv;
    int32_t children_first_seen;
};
/* The level the roll-up asks for: 0 none, PP_SEV_WARNING, PP_SEV_CRITICAL. */
int pp_rule_partner_level(const struct pp_model_conf *conf, const struct pp_partner_rollup *r);
enum pp_rule_tr pp_rule_partner_step(struct pp_rule_state *st, const struct pp_model_conf *conf,
                                     int32_t day, const struct pp_partner_rollup *r);

/* STUFFING_PATTERN: the condition of §2.6 on `day` (capped at WARNING). */
enum pp_rule_tr pp_rule_stuffing_step(struct pp_rule_state *st, const struct pp_model_conf *conf,
                                      int32_t day, int condition);

#endif
