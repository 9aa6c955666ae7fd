/*
 * alert_json.h — an alert transition as JSON text.
 *
 * Used for the alert record's `details_json` field (schemas/alert.avsc) and
 * for `partnerpulse backtest --format jsonl`. The members follow MODEL.md §2.7
 * where struct pp_alert has the data (ids, rule, status, severity, scope,
 * partner, customer, dates, the measured value against its threshold, the
 * summary); the full model's scores and signals join when struct pp_alert
 * grows them. Output is compact, one line, members in a fixed order, so the
 * same alert always renders to the same bytes.
 */
#ifndef PP_SCHEMA_ALERT_JSON_H
#define PP_SCHEMA_ALERT_JSON_H

#include "alert.h"

/* Renders `alert`. Returns 0 with *out a malloc'd NUL-terminated string (the
 * caller frees it with free()), or -1 (out of memory, or a string that is not
 * UTF-8) with *out NULL. */
int pp_alert_to_json(const struct pp_alert *alert, char **out);

#endif
