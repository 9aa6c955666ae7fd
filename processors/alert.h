/*
 * alert.h — the alert transition record, as the rule engine emits it.
 *
 * Every state-machine transition (DESIGN.md §6) produces one of these; the
 * producer encodes it with schemas/alert.avsc and writes it to the alerts
 * topic keyed by partner id. `alert_id` is deterministic (dedup key + the
 * episode's first-seen date) so subscribers can de-duplicate, and
 * `dedup_key` is stable across severity changes (MODEL.md §2.7).
 */
#ifndef PP_ALERT_H
#define PP_ALERT_H

#include <stdint.h>

#include "event.h"

#define PP_ALERT_ID_MAX   224
#define PP_ALERT_TEXT_MAX 512
#define PP_MODEL_VERSION  "cpi-1.0.0"

enum pp_alert_status {
    PP_ALERT_PENDING = 0,
    PP_ALERT_FIRING,
    PP_ALERT_RESOLVED,
};

enum pp_severity {
    PP_SEV_INFO = 0,
    PP_SEV_WARNING,
    PP_SEV_CRITICAL,
};

enum pp_scope {
    PP_SCOPE_PARTNER = 0, /* customer_id is "" */
    PP_SCOPE_PXC,
};

/* The model's explanation fields (MODEL.md §2.7), added by pp_model; plain
 * numbers and fixed arrays so the JSON renderer needs no model headers.
 * Doubles that do not apply are NAN; counts say how much of an array is set. */
#define PP_ALERT_MAX_SIGNALS   6
#define PP_ALERT_MAX_CUSTOMERS 16
#define PP_ALERT_MAX_HISTORY   6
#define PP_ALERT_NAME_MAX      16

enum pp_alert_family {
    PP_ALERT_FAM_ADOPT = 0,
    PP_ALERT_FAM_COMMIT,
    PP_ALERT_FAM_SUPPORT,
    PP_ALERT_FAM__COUNT
};

/* One entry of top_contributing_signals: its main value, the risk ramp()
 * made of it, and the values at which risk reaches warn (0.5) and crit
 * (0.85), in the value's unit. `baseline` is the cohort/peer reference the
 * value was compared with (NAN when none); `contribution` orders the list. */
struct pp_alert_signal {
    char name[PP_ALERT_NAME_MAX]; /* SHELF, OVERSELL, COMMIT_GAP, OVERSIZE, LOAD, ESC, CSAT,
                                     QEC, DISC, QEDEAL, REV */
    double value;
    double risk;
    double warn_at;
    double crit_at;
    double baseline;
    double contribution;
};

struct pp_alert_family_score {
    int present; /* 0: null (e.g. SHELF grace), harm/exposure are NAN */
    double harm;
    double exposure;
};

/* A child of a PARTNER_PRESSURE alert. */
struct pp_alert_customer {
    char customer_id[PP_ID_MAX];
    int32_t severity; /* enum pp_severity */
    double cpi_short;
    double cpi_long;
    int32_t health; /* -1 unknown */
    double partner_acv;
};

struct pp_alert_history {
    int32_t day;
    int32_t severity; /* enum pp_severity */
};

struct pp_alert {
    char alert_id[PP_ALERT_ID_MAX];
    char dedup_key[PP_ALERT_ID_MAX - 24]; /* alert_id = dedup_key ":" YYYY-MM-DD */
    char rule_id[32];
    enum pp_alert_status status;
    enum pp_severity severity;
    enum pp_scope scope;
    char tenant[PP_ID_MAX];
    char partner_id[PP_ID_MAX];
    char customer_id[PP_ID_MAX];
    int32_t first_seen_day;
    int32_t fired_day;
    int32_t eval_day; /* the closed day whose evaluation made this transition */
    int32_t reopen_count;
    double value;     /* the rule's measured value on eval_day */
    double threshold; /* the threshold it was compared with */
    int32_t window_days;
    char summary[PP_ALERT_TEXT_MAX]; /* one human sentence: what and why */

    /* ---- pp_model explanation (MODEL.md §2.7); zero from the skeleton ---- */
    int32_t last_changed_day;              /* day of the latest severity/status change */
    char parent_alert_id[PP_ALERT_ID_MAX]; /* "" when none */
    /* PXC scores (NAN for partner-scope rules) */
    double cpi_short, cpi_long, h_short, h_long, aggression;
    int32_t health; /* PXC or partner health, -1 unknown */
    struct pp_alert_family_score families[PP_ALERT_FAM__COUNT]; /* short mode */
    /* partner scores (NAN for PXC) */
    double cpi_partner, touched_acv, affected_acv_share;
    uint32_t n_signals;
    struct pp_alert_signal signals[PP_ALERT_MAX_SIGNALS]; /* by contribution */
    uint32_t n_customers;                                 /* entries in customers[] */
    uint32_t customers_firing; /* all firing children (may exceed the array) */
    uint32_t customers_critical;
    struct pp_alert_customer customers[PP_ALERT_MAX_CUSTOMERS]; /* CRITICAL first, then CPI */
    uint32_t n_history;
    struct pp_alert_history history[PP_ALERT_MAX_HISTORY]; /* oldest first */
    char runbook_id[24];
    char runbook_hint[PP_ALERT_TEXT_MAX];
    char dominant[PP_ALERT_NAME_MAX]; /* family or signal that chose the runbook */
};

const char *pp_alert_status_name(enum pp_alert_status s);
const char *pp_severity_name(enum pp_severity s);
const char *pp_scope_name(enum pp_scope s);

/* Called once per transition. The alert is borrowed for the call only. */
typedef void(pp_alert_cb)(const struct pp_alert *alert, void *opaque);

#endif
