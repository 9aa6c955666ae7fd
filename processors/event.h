/*
 * event.h — the domain event types partnerpulse consumes.
 *
 * These are the decoded, validated forms of the three Avro event schemas in
 * schemas/ (deal, license consumption, support). Identifiers are fixed-size,
 * NUL-terminated arrays so that decoding an event allocates nothing and an
 * event can be copied by value; the decoder rejects identifiers longer than
 * PP_ID_MAX - 1 bytes instead of truncating them.
 *
 * Times: `occurred_at_ms` is event time in milliseconds since the Unix epoch
 * (UTC). Calendar dates (close_date, as_of, ...) are days since 1970-01-01.
 * Money is in minor units of `currency` (cents for USD).
 */
#ifndef PP_EVENT_H
#define PP_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PP_ID_MAX 64 /* bytes, NUL included */

enum pp_event_type {
    PP_EV_DEAL = 1,
    PP_EV_CONSUMPTION = 2,
    PP_EV_SUPPORT = 3,
};

enum pp_deal_event {
    PP_DEAL_REGISTERED = 0,
    PP_DEAL_CLOSED_WON,
    PP_DEAL_CLOSED_LOST,
    PP_DEAL_AMENDED,
    PP_DEAL_CANCELLED,
    PP_DEAL_CREDITED,
    PP_DEAL_EVENT__COUNT
};

enum pp_deal_kind {
    PP_KIND_NEW = 0,
    PP_KIND_ADDON,
    PP_KIND_RENEWAL,
    PP_KIND_COMMIT,
    PP_KIND__COUNT
};

enum pp_support_event {
    PP_TICKET_OPENED = 0,
    PP_TICKET_ESCALATED,
    PP_TICKET_RESOLVED,
    PP_TICKET_REOPENED,
    PP_TICKET_CSAT,
    PP_TICKET_EVENT__COUNT
};

/* Optional numeric fields carry a presence flag; absent ones are null in the
 * model (MODEL.md §2.1: a missing optional field turns its signal null). */
struct pp_deal {
    char deal_id[PP_ID_MAX];
    enum pp_deal_event event_type;
    char partner_id[PP_ID_MAX];
    char customer_id[PP_ID_MAX];
    char product_id[PP_ID_MAX];
    enum pp_deal_kind kind;
    int32_t close_date; /* days since epoch */
    bool has_start_date;
    int32_t start_date;
    int32_t term_months;
    int32_t seats;  /* a delta for add-ons */
    int64_t amount; /* minor units */
    bool has_list_amount;
    int64_t list_amount;
    bool has_discount_pct;
    double discount_pct; /* 0..1 */
    char currency[4];
    bool has_commit_units;
    int64_t commit_units;
    bool has_quarter_end;
    bool quarter_end;
    char fiscal_quarter[16]; /* "2025-Q2" */
};

struct pp_consumption {
    char customer_id[PP_ID_MAX];
    char product_id[PP_ID_MAX];
    int32_t as_of; /* days since epoch */
    int32_t licenses_entitled;
    int32_t licenses_active;
    bool has_consumption_units;
    double consumption_units;
    bool has_period_start;
    int32_t period_start;
    bool has_period_end;
    int32_t period_end;
};

struct pp_support {
    char ticket_id[PP_ID_MAX];
    char customer_id[PP_ID_MAX];
    bool has_product_id;
    char product_id[PP_ID_MAX];
    enum pp_support_event event_type;
    int32_t severity; /* 1..4 */
    bool has_csat_score;
    int32_t csat_score; /* 1..5 */
    bool has_vendor_incident_id;
    char vendor_incident_id[PP_ID_MAX];
};

struct pp_event {
    enum pp_event_type type;
    char event_id[PP_ID_MAX];
    int64_t occurred_at_ms;
    union {
        struct pp_deal deal;
        struct pp_consumption consumption;
        struct pp_support support;
    } u;
};

/* Names as they appear in the Avro enums and in event files ("unknown" out
 * of range). They take int so that the field tables of the Avro codec and
 * of event files can hold them directly. */
const char *pp_deal_event_name(int e);
const char *pp_deal_kind_name(int k);
const char *pp_support_event_name(int e);
const char *pp_event_type_name(enum pp_event_type t);

/* Reverse lookups; return -1 for an unknown name. */
int pp_deal_event_from_name(const char *s);
int pp_deal_kind_from_name(const char *s);
int pp_support_event_from_name(const char *s);

/* The customer an event is about (every event type names one). */
const char *pp_event_customer_id(const struct pp_event *ev);

/* Copies `src` into a PP_ID_MAX field. Returns false (and writes "") when it
 * does not fit: identifiers are never silently truncated. */
bool pp_id_set(char dst[PP_ID_MAX], const char *src, size_t len);

#endif
