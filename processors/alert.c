/*
 * alert.c — names of the alert enums, as written in alert records.
 */
#include "alert.h"

const char *pp_alert_status_name(enum pp_alert_status s)
{
    switch (s) {
    case PP_ALERT_PENDING:
        return "PENDING";
    case PP_ALERT_FIRING:
        return "FIRING";
    case PP_ALERT_RESOLVED:
        return "RESOLVED";
    }
    return "UNKNOWN";
}

const char *pp_severity_name(enum pp_severity s)
{
    switch (s) {
    case PP_SEV_INFO:
        return "INFO";
    case PP_SEV_WARNING:
        return "WARNING";
    case PP_SEV_CRITICAL:
        return "CRITICAL";
    }
    return "UNKNOWN";
}

const char *pp_scope_name(enum pp_scope s)
{
    return s == PP_SCOPE_PXC ? "PXC" : "PARTNER";
}
