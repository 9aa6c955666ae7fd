/*
 * event.c — names of the event enums, shared by the Avro decoder, the event
 * file reader and the alert explanations so that one spelling is used
 * everywhere.
 */
#include "event.h"

#include <string.h>

static const char *const deal_event_names[] = {
    "registered", "closed_won", "closed_lost", "amended", "cancelled", "credited",
};
static const char *const deal_kind_names[] = {"new", "addon", "renewal", "commit"};
static const char *const support_event_names[] = {
    "opened", "escalated", "resolved", "reopened", "csat",
};

#define NAME_OR_UNKNOWN(tab, i)                                                                    \
    ((unsigned)(i) < sizeof(tab) / sizeof((tab)[0]) ? (tab)[(i)] : "unknown")

const char *pp_deal_event_name(int e)
{
    return NAME_OR_UNKNOWN(deal_event_names, e);
}

const char *pp_deal_kind_name(int k)
{
    return NAME_OR_UNKNOWN(deal_kind_names, k);
}

const char *pp_support_event_name(int e)
{
    return NAME_OR_UNKNOWN(support_event_names, e);
}

const char *pp_event_type_name(enum pp_event_type t)
{
    switch (t) {
    case PP_EV_DEAL:
        return "deal";
    case PP_EV_CONSUMPTION:
        return "license_consumption";
    case PP_EV_SUPPORT:
        return "support";
    }
    return "unknown";
}

static int lookup(const char *const *tab, int n, const char *s)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(tab[i], s) == 0) {
            return i;
        }
    }
    return -1;
}

const char *pp_event_customer_id(const struct pp_event *ev)
{
    return ev->type == PP_EV_DEAL      ? ev->u.deal.customer_id
           : ev->type == PP_EV_SUPPORT ? ev->u.support.customer_id
                                       : ev->u.consumption.customer_id;
}

int pp_deal_event_from_name(const char *s)
{
    return lookup(deal_event_names, PP_DEAL_EVENT__COUNT, s);
}

int pp_deal_kind_from_name(const char *s)
{
    return lookup(deal_kind_names, PP_KIND__COUNT, s);
}

int pp_support_event_from_name(const char *s)
{
    return lookup(support_event_names, PP_TICKET_EVENT__COUNT, s);
}

bool pp_id_set(char dst[PP_ID_MAX], const char *src, size_t len)
{
    if (len >= PP_ID_MAX || memchr(src, '\0', len) != NULL) {
        dst[0] = '\0';
        return false;
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
    return true;
}
