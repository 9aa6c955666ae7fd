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
};

const char *pp_alert_status_name(enum pp_alert_status s);
const char *pp_severity_name(enum pp_severity s);
const char *pp_scope_name(enum pp_scope s);

/* Called once per transition. The alert is borrowed for the call only. */
typedef void(pp_alert_cb)(const struct pp_alert *alert, void *opaque);

#endif
