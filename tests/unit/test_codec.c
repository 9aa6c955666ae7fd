/*
 * test_codec.c — the Confluent wire format and Avro mapping of
 * schemas/codec.h.
 *
 * Covers the round trip of every event type with all optional fields present
 * and all absent (field by field), the wire header of encoded events and
 * alerts (and the alert's Avro body), one case per decode error class
 * (too short, bad magic, too large, unknown schema, not an event, malformed,
 * invalid), every truncated prefix of valid records failing cleanly,
 * hand-encoded bodies for what the encoder cannot produce (oversized and
 * NUL-carrying ids, out-of-range enum symbols and union branches, absurd
 * string lengths), the string length limit, the DLQ reason names, and a
 * decoder that decodes valid records correctly after any failure. Schema
 * resolution (older and newer writers) is test_resolve.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>

#include <cmocka.h>

#include "codec.h"
#include "ptime.h"

#define N(a)         (sizeof(a) / sizeof((a)[0]))
#define DAY(y, m, d) pp_day_from_civil((y), (m), (d))
#define MS(y, m, d)  pp_day_to_ms(DAY((y), (m), (d)))

struct fixture {
    struct pp_schema_catalog *cat;
    struct pp_codec *codec;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char err[256];
    fx->cat = pp_schema_catalog_new(err, sizeof(err));
    if (fx->cat == NULL) {
        fprintf(stderr, "catalog: %s\n", err);
        free(fx);
        return -1;
    }
    fx->codec = pp_codec_new(fx->cat, NULL);
    if (fx->codec == NULL) {
        pp_schema_catalog_destroy(fx->cat);
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    pp_codec_destroy(fx->codec);
    pp_schema_catalog_destroy(fx->cat);
    free(fx);
    return 0;
}

/* ---- events ------------------------------------------------------------ */

static void base(struct pp_event *ev, enum pp_event_type type)
{
    memset(ev, 0, sizeof(*ev));
    ev->type = type;
    snprintf(ev->event_id, sizeof(ev->event_id), "%s", "E-0001");
    ev->occurred_at_ms = MS(2025, 7, 1) + 12345678;
}

static void full_deal(struct pp_event *ev)
{
    base(ev, PP_EV_DEAL);
    struct pp_deal *d = &ev->u.deal;
    snprintf(d->deal_id, sizeof(d->deal_id), "%s", "D-77");
    d->event_type = PP_DEAL_CREDITED;
    snprintf(d->partner_id, sizeof(d->partner_id), "%s", "P-ÄCME"); /* UTF-8 */
    snprintf(d->customer_id, sizeof(d->customer_id), "%s", "C-9");
    snprintf(d->product_id, sizeof(d->product_id), "%s", "ACME-DATA");
    d->kind = PP_KIND_COMMIT;
    d->close_date = DAY(2025, 6, 30);
    d->has_start_date = true;
    d->start_date = DAY(2025, 7, 1);
    d->term_months = 36;
    d->seats = 250;
    d->amount = -123456789012;
    d->has_list_amount = true;
    d->list_amount = 987654321098;
    d->has_discount_pct = true;
    d->discount_pct = 0.125;
    memcpy(d->currency, "EUR", 4);
    d->has_commit_units = true;
    d->commit_units = INT64_C(5000000000);
    d->has_quarter_end = true;
    d->quarter_end = true;
    snprintf(d->fiscal_quarter, sizeof(d->fiscal_quarter), "%s", "2025-Q2");
}

static void bare_deal(struct pp_event *ev)
{
    base(ev, PP_EV_DEAL);
    struct pp_deal *d = &ev->u.deal;
    snprintf(d->deal_id, sizeof(d->deal_id), "%s", "D-1");
    d->event_type = PP_DEAL_CLOSED_WON;
    snprintf(d->partner_id, sizeof(d->partner_id), "%s", "P-1");
    snprintf(d->customer_id, sizeof(d->customer_id), "%s", "C-1");
    snprintf(d->product_id, sizeof(d->product_id), "%s", "ACME-SUITE");
    d->kind = PP_KIND_RENEWAL;
    d->close_date = DAY(2025, 6, 30);
    d->term_months = 12;
    d->seats = 0;
    d->amount = 0;
    memcpy(d->currency, "USD", 4);
    /* fiscal_quarter is "" (allowed), every optional field absent. */
}

static void full_consumption(struct pp_event *ev)
{
    base(ev, PP_EV_CONSUMPTION);
    struct pp_consumption *c = &ev->u.consumption;
    snprintf(c->customer_id, sizeof(c->customer_id), "%s", "C-2");
    snprintf(c->product_id, sizeof(c->product_id), "%s", "ACME-DATA");
    c->as_of = DAY(2025, 6, 30);
    c->licenses_entitled = 100;
    c->licenses_active = 73;
    c->has_consumption_units = true;
    c->consumption_units = 1234.5678;
    c->has_period_start = true;
    c->period_start = DAY(2025, 6, 1);
    c->has_period_end = true;
    c->period_end = DAY(2025, 6, 30);
}

static void bare_consumption(struct pp_event *ev)
{
    base(ev, PP_EV_CONSUMPTION);
    struct pp_consumption *c = &ev->u.consumption;
    snprintf(c->customer_id, sizeof(c->customer_id), "%s", "C-2");
    snprintf(c->product_id, sizeof(c->product_id), "%s", "ACME-SUITE");
    c->as_of = DAY(2025, 6, 30);
}

static void full_support(struct pp_event *ev)
{
    base(ev, PP_EV_SUPPORT);
    struct pp_support *s = &ev->u.support;
    snprintf(s->ticket_id, sizeof(s->ticket_id), "%s", "T-5");
    snprintf(s->customer_id, sizeof(s->customer_id), "%s", "C-3");
    s->has_product_id = true;
    snprintf(s->product_id, sizeof(s->product_id), "%s", "ACME-SUITE");
    s->event_type = PP_TICKET_CSAT;
    s->severity = 4;
    s->has_csat_score = true;
    s->csat_score = 5;
    s->has_vendor_incident_id = true;
    snprintf(s->vendor_incident_id, sizeof(s->vendor_incident_id), "%s", "INC-2025-001");
}

static void bare_support(struct pp_event *ev)
{
    base(ev, PP_EV_SUPPORT);
    struct pp_support *s = &ev->u.support;
    snprintf(s->ticket_id, sizeof(s->ticket_id), "%s", "T-6");
    snprintf(s->customer_id, sizeof(s->customer_id), "%s", "C-3");
    s->event_type = PP_TICKET_OPENED;
    s->severity = 1;
}

typedef void(builder)(struct pp_event *ev);

static const struct {
    const char *name;
    builder *build;
    int32_t schema_id;
} builders[] = {
    {"full deal", full_deal, PP_SCHEMA_ID_DEAL},
    {"bare deal", bare_deal, PP_SCHEMA_ID_DEAL},
    {"full consumption", full_consumption, PP_SCHEMA_ID_CONSUMPTION},
    {"bare consumption", bare_consumption, PP_SCHEMA_ID_CONSUMPTION},
    {"full support", full_support, PP_SCHEMA_ID_SUPPORT},
    {"bare support", bare_support, PP_SCHEMA_ID_SUPPORT},
};

static void assert_event_equal(const struct pp_event *a, const struct pp_event *b)
{
    assert_int_equal(a->type, b->type);
    assert_string_equal(a->event_id, b->event_id);
    assert_true(a->occurred_at_ms == b->occurred_at_ms);
    switch (a->type) {
    case PP_EV_DEAL: {
        const struct pp_deal *x = &a->u.deal, *y = &b->u.deal;
        assert_string_equal(x->deal_id, y->deal_id);
        assert_int_equal(x->event_type, y->event_type);
        assert_string_equal(x->partner_id, y->partner_id);
        assert_string_equal(x->customer_id, y->customer_id);
        assert_string_equal(x->product_id, y->product_id);
        assert_int_equal(x->kind, y->kind);
        assert_int_equal(x->close_date, y->close_date);
        assert_int_equal(x->has_start_date, y->has_start_date);
        if (x->has_start_date) {
            assert_int_equal(x->start_date, y->start_date);
        }
        assert_int_equal(x->term_months, y->term_months);
        assert_int_equal(x->seats, y->seats);
        assert_true(x->amount == y->amount);
        assert_int_equal(x->has_list_amount, y->has_list_amount);
        if (x->has_list_amount) {
            assert_true(x->list_amount == y->list_amount);
        }
        assert_int_equal(x->has_discount_pct, y->has_discount_pct);
        if (x->has_discount_pct) {
            assert_true(x->discount_pct == y->discount_pct);
        }
        assert_string_equal(x->currency, y->currency);
        assert_int_equal(x->has_commit_units, y->has_commit_units);
        if (x->has_commit_units) {
            assert_true(x->commit_units == y->commit_units);
        }
        assert_int_equal(x->has_quarter_end, y->has_quarter_end);
        if (x->has_quarter_end) {
            assert_int_equal(x->quarter_end, y->quarter_end);
        }
        assert_string_equal(x->fiscal_quarter, y->fiscal_quarter);
        break;
    }
    case PP_EV_CONSUMPTION: {
        const struct pp_consumption *x = &a->u.consumption, *y = &b->u.consumption;
        assert_string_equal(x->customer_id, y->customer_id);
        assert_string_equal(x->product_id, y->product_id);
        assert_int_equal(x->as_of, y->as_of);
        assert_int_equal(x->licenses_entitled, y->licenses_entitled);
        assert_int_equal(x->licenses_active, y->licenses_active);
        assert_int_equal(x->has_consumption_units, y->has_consumption_units);
        if (x->has_consumption_units) {
            assert_true(x->consumption_units == y->consumption_units);
        }
        assert_int_equal(x->has_period_start, y->has_period_start);
        if (x->has_period_start) {
            assert_int_equal(x->period_start, y->period_start);
        }
        assert_int_equal(x->has_period_end, y->has_period_end);
        if (x->has_period_end) {
            assert_int_equal(x->period_end, y->period_end);
        }
        break;
    }
    case PP_EV_SUPPORT: {
        const struct pp_support *x = &a->u.support, *y = &b->u.support;
        assert_string_equal(x->ticket_id, y->ticket_id);
        assert_string_equal(x->customer_id, y->customer_id);
        assert_int_equal(x->has_product_id, y->has_product_id);
        if (x->has_product_id) {
            assert_string_equal(x->product_id, y->product_id);
        }
        assert_int_equal(x->event_type, y->event_type);
        assert_int_equal(x->severity, y->severity);
        assert_int_equal(x->has_csat_score, y->has_csat_score);
        if (x->has_csat_score) {
            assert_int_equal(x->csat_score, y->csat_score);
        }
        assert_int_equal(x->has_vendor_incident_id, y->has_vendor_incident_id);
        if (x->has_vendor_incident_id) {
            assert_string_equal(x->vendor_incident_id, y->vendor_incident_id);
        }
        break;
    }
    }
}

/* Encodes into a caller-owned copy (the codec's buffer dies with the next
 * encode). Returns the length. */
static size_t encode(struct pp_codec *codec, const struct pp_event *ev, unsigned char *out,
                     size_t cap)
{
    char err[256] = "";
    size_t len = 0;
    const void *wire = pp_codec_encode_event(codec, ev, &len, err, sizeof(err));
    if (wire == NULL) {
        fail_msg("encode: %s", err);
    }
    assert_true(len <= cap);
    memcpy(out, wire, len);
    return len;
}

static enum pp_decode_err decode(struct pp_codec *codec, const void *buf, size_t len,
                                 struct pp_event *ev)
{
    char detail[256];
    enum pp_decode_err err = pp_codec_decode_event(codec, buf, len, ev, detail, sizeof(detail));
    if (err != PP_DECODE_OK && detail[0] == '\0') {
        fail_msg("decode error %s without a detail", pp_decode_reason(err));
    }
    return err;
}

static void expect_decode(struct pp_codec *codec, const void *buf, size_t len,
                          enum pp_decode_err want, const char *what)
{
    struct pp_event ev;
    enum pp_decode_err err = decode(codec, buf, len, &ev);
    if (err != want) {
        fail_msg("%s: decode = %s, expected %s", what, pp_decode_reason(err),
                 pp_decode_reason(want));
    }
}

/* ---- round trips --------------------------------------------------------- */

static void test_round_trip_every_type(void **state)
{
    struct fixture *fx = *state;
    for (size_t i = 0; i < N(builders); i++) {
        struct pp_event in, out;
        unsigned char wire[4096];
        builders[i].build(&in);
        size_t len = encode(fx->codec, &in, wire, sizeof(wire));
        assert_true(len > PP_WIRE_HEADER);
        assert_int_equal(wire[0], 0);
        int32_t id = -1;
        assert_true(pp_wire_schema_id(wire, len, &id));
        assert_int_equal(id, builders[i].schema_id);
        memset(&out, 0x5a, sizeof(out));
        enum pp_decode_err err = decode(fx->codec, wire, len, &out);
        if (err != PP_DECODE_OK) {
            fail_msg("%s: decode = %s", builders[i].name, pp_decode_reason(err));
        }
        assert_event_equal(&out, &in);
        /* detail may be NULL. */
        assert_int_equal(pp_codec_decode_event(fx->codec, wire, len, &out, NULL, 0), PP_DECODE_OK);
    }
}

static void test_round_trip_every_enum_symbol(void **state)
{
    struct fixture *fx = *state;
    struct pp_event in, out;
    unsigned char wire[4096];
    for (int e = 0; e < PP_DEAL_EVENT__COUNT; e++) {
        for (int k = 0; k < PP_KIND__COUNT; k++) {
            bare_deal(&in);
            in.u.deal.event_type = (enum pp_deal_event)e;
            in.u.deal.kind = (enum pp_deal_kind)k;
            size_t len = encode(fx->codec, &in, wire, sizeof(wire));
            assert_int_equal(decode(fx->codec, wire, len, &out), PP_DECODE_OK);
            assert_event_equal(&out, &in);
        }
    }
    for (int e = 0; e < PP_TICKET_EVENT__COUNT; e++) {
        full_support(&in);
        in.u.support.event_type = (enum pp_support_event)e;
        size_t len = encode(fx->codec, &in, wire, sizeof(wire));
        assert_int_equal(decode(fx->codec, wire, len, &out), PP_DECODE_OK);
        assert_event_equal(&out, &in);
    }
}

/* ---- alerts ---------------------------------------------------------------- */

static void test_alert_encode(void **state)
{
    struct fixture *fx = *state;
    struct pp_alert a;
    memset(&a, 0, sizeof(a));
    snprintf(a.dedup_key, sizeof(a.dedup_key), "%s", "cpi:v1:acme:TICKET_SURGE:P-1:*");
    snprintf(a.alert_id, sizeof(a.alert_id), "%s", "cpi:v1:acme:TICKET_SURGE:P-1:*:2025-03-04");
    snprintf(a.rule_id, sizeof(a.rule_id), "%s", "TICKET_SURGE");
    a.status = PP_ALERT_RESOLVED;
    a.severity = PP_SEV_WARNING;
    a.scope = PP_SCOPE_PARTNER;
    snprintf(a.tenant, sizeof(a.tenant), "%s", "acme");
    snprintf(a.partner_id, sizeof(a.partner_id), "%s", "P-1");
    a.first_seen_day = DAY(2025, 3, 4);
    a.fired_day = DAY(2025, 3, 4);
    a.eval_day = DAY(2025, 3, 7);
    a.value = 3;
    a.threshold = 5;
    a.window_days = 3;
    snprintf(a.summary, sizeof(a.summary), "%s", "3 support tickets");
    snprintf(a.parent_alert_id, sizeof(a.parent_alert_id), "%s",
             "cpi:v1:acme:PARTNER:P-1:*:2025-03-01");

    char err[256] = "";
    size_t len = 0;
    const unsigned char *wire =
        pp_codec_encode_alert(fx->codec, &a, "{\"k\":1}", &len, err, sizeof(err));
    if (wire == NULL) {
        fail_msg("encode alert: %s", err);
    }
    assert_true(len > PP_WIRE_HEADER);
    static const unsigned char header[] = {0, 0, 0, 0, 4};
    assert_memory_equal(wire, header, sizeof(header));
    int32_t id = 0;
    assert_true(pp_wire_schema_id(wire, len, &id));
    assert_int_equal(id, PP_SCHEMA_ID_ALERT);

    /* The body is the alert record: read it back with the catalog's schema. */
    struct pp_schema_entry *e = pp_schema_catalog_get(fx->cat, PP_SCHEMA_ID_ALERT);
    assert_non_null(e);
    avro_value_t rec, f, branch;
    assert_int_equal(avro_generic_value_new(e->iface, &rec), 0);
    avro_reader_t rd =
        avro_reader_memory((const char *)wire + PP_WIRE_HEADER, (int64_t)(len - PP_WIRE_HEADER));
    assert_int_equal(avro_value_read(rd, &rec), 0);
    const char *s;
    size_t n;
    int idx;
    int64_t l;
    double dv;
    assert_int_equal(avro_value_get_by_name(&rec, "alert_id", &f, NULL), 0);
    assert_int_equal(avro_value_get_string(&f, &s, &n), 0);
    assert_string_equal(s, a.alert_id);
    assert_int_equal(avro_value_get_by_name(&rec, "model_version", &f, NULL), 0);
    assert_int_equal(avro_value_get_string(&f, &s, &n), 0);
    assert_string_equal(s, PP_MODEL_VERSION);
    assert_int_equal(avro_value_get_by_name(&rec, "status", &f, NULL), 0);
    assert_int_equal(avro_value_get_enum(&f, &idx), 0);
    assert_string_equal(avro_schema_enum_get(avro_value_get_schema(&f), idx), "RESOLVED");
    assert_int_equal(avro_value_get_by_name(&rec, "customer_id", &f, NULL), 0);
    assert_int_equal(avro_value_get_current_branch(&f, &branch), 0);
    assert_int_equal(avro_value_get_type(&branch), AVRO_NULL);
    /* the grouping PARTNER_PRESSURE episode travels in the record too */
    assert_int_equal(avro_value_get_by_name(&rec, "parent_alert_id", &f, NULL), 0);
    assert_int_equal(avro_value_get_current_branch(&f, &branch), 0);
    assert_int_equal(avro_value_get_string(&branch, &s, &n), 0);
    assert_string_equal(s, a.parent_alert_id);
    assert_int_equal(avro_value_get_by_name(&rec, "first_seen_at", &f, NULL), 0);
    assert_int_equal(avro_value_get_long(&f, &l), 0);
    assert_true(l == MS(2025, 3, 4));
    assert_int_equal(avro_value_get_by_name(&rec, "last_evaluated_at", &f, NULL), 0);
    assert_int_equal(avro_value_get_long(&f, &l), 0);
    assert_true(l == MS(2025, 3, 7));
    assert_int_equal(avro_value_get_by_name(&rec, "value", &f, NULL), 0);
    assert_int_equal(avro_value_get_double(&f, &dv), 0);
    assert_true(dv == 3.0);
    assert_int_equal(avro_value_get_by_name(&rec, "details_json", &f, NULL), 0);
    assert_int_equal(avro_value_get_string(&f, &s, &n), 0);
    assert_string_equal(s, "{\"k\":1}");
    avro_reader_free(rd);
    avro_value_decref(&rec);

    /* An alert on an input topic is not an event. */
    expect_decode(fx->codec, wire, len, PP_DECODE_NOT_AN_EVENT, "alert record");
}

/* ---- decode errors ---------------------------------------------------------- */

typedef size_t(mutator)(unsigned char *buf, size_t len);

static size_t m_empty(unsigned char *buf, size_t len)
{
    (void)buf, (void)len;
    return 0;
}
static size_t m_four(unsigned char *buf, size_t len)
{
    (void)buf, (void)len;
    return 4;
}
static size_t m_header_only(unsigned char *buf, size_t len)
{
    (void)buf, (void)len;
    return PP_WIRE_HEADER;
}
static size_t m_magic1(unsigned char *buf, size_t len)
{
    buf[0] = 1;
    return len;
}
static size_t m_magic_ff(unsigned char *buf, size_t len)
{
    buf[0] = 0xff;
    return len;
}
static size_t set_id(unsigned char *buf, size_t len, uint32_t id)
{
    buf[1] = (unsigned char)(id >> 24);
    buf[2] = (unsigned char)(id >> 16);
    buf[3] = (unsigned char)(id >> 8);
    buf[4] = (unsigned char)id;
    return len;
}
static size_t m_id999(unsigned char *buf, size_t len)
{
    return set_id(buf, len, 999);
}
static size_t m_id0(unsigned char *buf, size_t len)
{
    return set_id(buf, len, 0);
}
static size_t m_id_minus1(unsigned char *buf, size_t len)
{
    return set_id(buf, len, UINT32_MAX);
}
static size_t m_id_high(unsigned char *buf, size_t len)
{
    return set_id(buf, len, 0x01000001); /* 1 in the low byte only */
}
static size_t m_trailing_zero(unsigned char *buf, size_t len)
{
    buf[len] = 0;
    return len + 1;
}
static size_t m_trailing_text(unsigned char *buf, size_t len)
{
    memcpy(buf + len, "garbage", 7);
    return len + 7;
}

static const struct {
    const char *name;
    mutator *mutate;
    enum pp_decode_err want;
} mutations[] = {
    {"empty", m_empty, PP_DECODE_TOO_SHORT},
    {"4 bytes", m_four, PP_DECODE_TOO_SHORT},
    {"header only", m_header_only, PP_DECODE_MALFORMED},
    {"magic 1", m_magic1, PP_DECODE_BAD_MAGIC},
    {"magic 0xff", m_magic_ff, PP_DECODE_BAD_MAGIC},
    {"schema id 999", m_id999, PP_DECODE_UNKNOWN_SCHEMA},
    {"schema id 0", m_id0, PP_DECODE_UNKNOWN_SCHEMA},
    {"schema id -1", m_id_minus1, PP_DECODE_UNKNOWN_SCHEMA},
    {"schema id 0x01000001", m_id_high, PP_DECODE_UNKNOWN_SCHEMA},
    {"trailing zero byte", m_trailing_zero, PP_DECODE_MALFORMED},
    {"trailing text", m_trailing_text, PP_DECODE_MALFORMED},
};

static void test_error_classes(void **state)
{
    struct fixture *fx = *state;
    for (size_t b = 0; b < N(builders); b++) {
        for (size_t m = 0; m < N(mutations); m++) {
            struct pp_event ev;
            unsigned char wire[4096];
            builders[b].build(&ev);
            size_t len = encode(fx->codec, &ev, wire, sizeof(wire) - 16);
            len = mutations[m].mutate(wire, len);
            char what[96];
            snprintf(what, sizeof(what), "%s, %s", builders[b].name, mutations[m].name);
            expect_decode(fx->codec, wire, len, mutations[m].want, what);
        }
    }
    expect_decode(fx->codec, NULL, 0, PP_DECODE_TOO_SHORT, "NULL buffer");
}

static void test_too_large(void **state)
{
    struct fixture *fx = *state;
    struct pp_event ev, out;
    unsigned char wire[4096];
    full_deal(&ev);
    size_t len = encode(fx->codec, &ev, wire, sizeof(wire));

    struct pp_codec_limits lim;
    pp_codec_limits_defaults(&lim);
    assert_int_equal(lim.max_message_bytes, 1024 * 1024);
    lim.max_message_bytes = len - 1;
    struct pp_codec *small = pp_codec_new(fx->cat, &lim);
    assert_non_null(small);
    expect_decode(small, wire, len, PP_DECODE_TOO_LARGE, "one byte over the limit");
    pp_codec_destroy(small);
    lim.max_message_bytes = len;
    small = pp_codec_new(fx->cat, &lim);
    assert_int_equal(decode(small, wire, len, &out), PP_DECODE_OK);
    assert_event_equal(&out, &ev);
    pp_codec_destroy(small);

    /* The default limit: 1 MiB + 1 bytes are refused before anything else. */
    size_t big = 1024 * 1024 + 1;
    unsigned char *huge = calloc(1, big);
    assert_non_null(huge);
    memcpy(huge, wire, len);
    expect_decode(fx->codec, huge, big, PP_DECODE_TOO_LARGE, "1 MiB + 1");
    huge[0] = 7;
    expect_decode(fx->codec, huge, big, PP_DECODE_TOO_LARGE, "1 MiB + 1, bad magic");
    free(huge);
}

static void test_every_prefix_fails_cleanly(void **state)
{
    struct fixture *fx = *state;
    for (size_t b = 0; b < N(builders); b++) {
        struct pp_event ev;
        unsigned char wire[4096];
        builders[b].build(&ev);
        size_t len = encode(fx->codec, &ev, wire, sizeof(wire));
        for (size_t cut = 0; cut < len; cut++) {
            /* A heap copy of exactly `cut` bytes, so ASan sees any over-read. */
            unsigned char *prefix = malloc(cut ? cut : 1);
            assert_non_null(prefix);
            memcpy(prefix, wire, cut);
            struct pp_event out;
            enum pp_decode_err err = decode(fx->codec, prefix, cut, &out);
            enum pp_decode_err want =
                cut < PP_WIRE_HEADER ? PP_DECODE_TOO_SHORT : PP_DECODE_MALFORMED;
            if (err != want) {
                fail_msg("%s cut to %zu of %zu bytes: %s, expected %s", builders[b].name, cut, len,
                         pp_decode_reason(err), pp_decode_reason(want));
            }
            free(prefix);
        }
    }
}

/* Domain checks: each case edits one valid event. */
static void inv_severity9(struct pp_event *ev)
{
    bare_support(ev);
    ev->u.support.severity = 9;
}
static void inv_severity0(struct pp_event *ev)
{
    bare_support(ev);
    ev->u.support.severity = 0;
}
static void inv_csat6(struct pp_event *ev)
{
    full_support(ev);
    ev->u.support.csat_score = 6;
}
static void inv_csat_missing(struct pp_event *ev)
{
    full_support(ev);
    ev->u.support.has_csat_score = false;
}
static void inv_seats_closed_won(struct pp_event *ev)
{
    bare_deal(ev);
    ev->u.deal.event_type = PP_DEAL_CLOSED_WON;
    ev->u.deal.seats = -1;
}
static void inv_discount_15(struct pp_event *ev)
{
    full_deal(ev);
    ev->u.deal.discount_pct = 1.5;
}
static void inv_discount_1(struct pp_event *ev)
{
    full_deal(ev);
    ev->u.deal.discount_pct = 1.0;
}
static void inv_discount_neg(struct pp_event *ev)
{
    full_deal(ev);
    ev->u.deal.discount_pct = -0.01;
}
static void inv_discount_nan(struct pp_event *ev)
{
    full_deal(ev);
    ev->u.deal.discount_pct = NAN;
}
static void inv_term0(struct pp_event *ev)
{
    bare_deal(ev);
    ev->u.deal.term_months = 0;
}
static void inv_list_amount_neg(struct pp_event *ev)
{
    full_deal(ev);
    ev->u.deal.list_amount = -1;
}
static void inv_units_nan(struct pp_event *ev)
{
    full_consumption(ev);
    ev->u.consumption.consumption_units = NAN;
}
static void inv_units_inf(struct pp_event *ev)
{
    full_consumption(ev);
    ev->u.consumption.consumption_units = INFINITY;
}
static void inv_units_neg(struct pp_event *ev)
{
    full_consumption(ev);
    ev->u.consumption.consumption_units = -1;
}
static void inv_active_neg(struct pp_event *ev)
{
    bare_consumption(ev);
    ev->u.consumption.licenses_active = -1;
}
static void inv_year_2200(struct pp_event *ev)
{
    bare_support(ev);
    ev->occurred_at_ms = MS(2200, 1, 1);
}
static void inv_before_2000(struct pp_event *ev)
{
    full_deal(ev);
    ev->occurred_at_ms = MS(2000, 1, 1) - 1;
}
static void inv_after_2100(struct pp_event *ev)
{
    full_consumption(ev);
    ev->occurred_at_ms = MS(2100, 1, 1) + 1;
}
static void inv_empty_event_id(struct pp_event *ev)
{
    bare_support(ev);
    ev->event_id[0] = '\0';
}
static void inv_empty_customer(struct pp_event *ev)
{
    bare_deal(ev);
    ev->u.deal.customer_id[0] = '\0';
}
static void inv_empty_currency(struct pp_event *ev)
{
    bare_deal(ev);
    ev->u.deal.currency[0] = '\0';
}
/* Controls: the edges that are valid. */
static void ok_seats_amended(struct pp_event *ev)
{
    bare_deal(ev);
    ev->u.deal.event_type = PP_DEAL_AMENDED;
    ev->u.deal.seats = -5;
}
static void ok_discount_0(struct pp_event *ev)
{
    full_deal(ev);
    ev->u.deal.discount_pct = 0.0;
}
static void ok_at_2000(struct pp_event *ev)
{
    full_deal(ev);
    ev->occurred_at_ms = MS(2000, 1, 1);
}
static void ok_at_2100(struct pp_event *ev)
{
    full_support(ev);
    ev->occurred_at_ms = MS(2100, 1, 1);
}
static void ok_units_zero(struct pp_event *ev)
{
    full_consumption(ev);
    ev->u.consumption.consumption_units = 0.0;
}

static const struct {
    const char *name;
    builder *build;
    enum pp_decode_err want;
} validations[] = {
    {"severity 9", inv_severity9, PP_DECODE_INVALID},
    {"severity 0", inv_severity0, PP_DECODE_INVALID},
    {"csat 6", inv_csat6, PP_DECODE_INVALID},
    {"csat event without score", inv_csat_missing, PP_DECODE_INVALID},
    {"negative seats on closed_won", inv_seats_closed_won, PP_DECODE_INVALID},
    {"discount 1.5", inv_discount_15, PP_DECODE_INVALID},
    {"discount 1.0", inv_discount_1, PP_DECODE_INVALID},
    {"discount -0.01", inv_discount_neg, PP_DECODE_INVALID},
    {"discount NaN", inv_discount_nan, PP_DECODE_INVALID},
    {"term_months 0", inv_term0, PP_DECODE_INVALID},
    {"negative list_amount", inv_list_amount_neg, PP_DECODE_INVALID},
    {"consumption_units NaN", inv_units_nan, PP_DECODE_INVALID},
    {"consumption_units inf", inv_units_inf, PP_DECODE_INVALID},
    {"consumption_units -1", inv_units_neg, PP_DECODE_INVALID},
    {"licenses_active -1", inv_active_neg, PP_DECODE_INVALID},
    {"occurred_at in 2200", inv_year_2200, PP_DECODE_INVALID},
    {"occurred_at 1 ms before 2000", inv_before_2000, PP_DECODE_INVALID},
    {"occurred_at 1 ms after 2100", inv_after_2100, PP_DECODE_INVALID},
    {"empty event_id", inv_empty_event_id, PP_DECODE_INVALID},
    {"empty customer_id", inv_empty_customer, PP_DECODE_INVALID},
    {"empty currency", inv_empty_currency, PP_DECODE_INVALID},
    {"negative seats on an amendment", ok_seats_amended, PP_DECODE_OK},
    {"discount 0", ok_discount_0, PP_DECODE_OK},
    {"occurred_at 2000-01-01", ok_at_2000, PP_DECODE_OK},
    {"occurred_at 2100-01-01", ok_at_2100, PP_DECODE_OK},
    {"consumption_units 0", ok_units_zero, PP_DECODE_OK},
};

static void test_invalid_values(void **state)
{
    struct fixture *fx = *state;
    for (size_t i = 0; i < N(validations); i++) {
        struct pp_event ev, out;
        unsigned char wire[4096];
        validations[i].build(&ev);
        size_t len = encode(fx->codec, &ev, wire, sizeof(wire));
        enum pp_decode_err err = decode(fx->codec, wire, len, &out);
        if (err != validations[i].want) {
            fail_msg("%s: decode = %s, expected %s", validations[i].name, pp_decode_reason(err),
                     pp_decode_reason(validations[i].want));
        }
        if (err == PP_DECODE_OK) {
            assert_event_equal(&out, &ev);
        }
    }
}

/* ---- hand-encoded bodies ------------------------------------------------------ */

struct body {
    unsigned char b[8192];
    size_t n;
};

static void put_header(struct body *w, uint32_t id)
{
    w->n = 0;
    w->b[w->n++] = 0;
    set_id(w->b, 0, id);
    w->n = PP_WIRE_HEADER;
}

/* Avro long: zig-zag, then base-128 varint. */
static void put_long(struct body *w, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    do {
        unsigned char c = z & 0x7f;
        z >>= 7;
        w->b[w->n++] = (unsigned char)(c | (z ? 0x80 : 0));
    } while (z);
}

static void put_bytes(struct body *w, const char *s, size_t len)
{
    put_long(w, (int64_t)len);
    assert_true(w->n + len <= sizeof(w->b));
    memcpy(w->b + w->n, s, len);
    w->n += len;
}

static void put_str(struct body *w, const char *s)
{
    put_bytes(w, s, strlen(s));
}

/* A support record, field by field as support.avsc orders them. */
static void support_body(struct body *w, const char *event_id, size_t event_id_len,
                         int64_t event_type, int64_t product_branch)
{
    put_header(w, PP_SCHEMA_ID_SUPPORT);
    put_bytes(w, event_id, event_id_len);
    put_long(w, MS(2025, 7, 1) + 1000);
    put_str(w, "T-1");
    put_str(w, "C-1");
    put_long(w, product_branch);
    if (product_branch == 1) {
        put_str(w, "ACME-SUITE");
    }
    put_long(w, event_type);
    put_long(w, 3); /* severity */
    put_long(w, 0); /* csat_score: null */
    put_long(w, 0); /* vendor_incident_id: null */
}

static void test_hand_encoded_body_matches_encoder(void **state)
{
    struct fixture *fx = *state;
    struct body w;
    support_body(&w, "E-1", 3, PP_TICKET_ESCALATED, 1);
    struct pp_event out;
    assert_int_equal(decode(fx->codec, w.b, w.n, &out), PP_DECODE_OK);
    assert_int_equal(out.type, PP_EV_SUPPORT);
    assert_string_equal(out.event_id, "E-1");
    assert_string_equal(out.u.support.customer_id, "C-1");
    assert_true(out.u.support.has_product_id);
    assert_string_equal(out.u.support.product_id, "ACME-SUITE");
    assert_int_equal(out.u.support.event_type, PP_TICKET_ESCALATED);
    assert_int_equal(out.u.support.severity, 3);

    /* And the encoder writes the same bytes. */
    unsigned char wire[4096];
    size_t len = encode(fx->codec, &out, wire, sizeof(wire));
    assert_int_equal(len, w.n);
    assert_memory_equal(wire, w.b, len);
}

static void test_identifier_lengths(void **state)
{
    struct fixture *fx = *state;
    static const struct {
        size_t len;
        enum pp_decode_err want;
    } cases[] = {
        {1, PP_DECODE_OK},
        {PP_ID_MAX - 1, PP_DECODE_OK}, /* 63 bytes fit with the NUL */
        {PP_ID_MAX, PP_DECODE_INVALID},
        {PP_ID_MAX + 1, PP_DECODE_INVALID},
        {200, PP_DECODE_INVALID},
        {5000, PP_DECODE_INVALID},
    };
    char id[5001];
    memset(id, 'x', sizeof(id));
    for (size_t i = 0; i < N(cases); i++) {
        struct body w;
        support_body(&w, id, cases[i].len, PP_TICKET_OPENED, 0);
        struct pp_event out;
        enum pp_decode_err err = decode(fx->codec, w.b, w.n, &out);
        if (err != cases[i].want) {
            fail_msg("event_id of %zu bytes: %s, expected %s", cases[i].len, pp_decode_reason(err),
                     pp_decode_reason(cases[i].want));
        }
        if (err == PP_DECODE_OK) {
            assert_int_equal(strlen(out.event_id), cases[i].len);
        }
    }
    /* An embedded NUL would silently shorten the id. */
    struct body w;
    support_body(&w, "E\0-1", 4, PP_TICKET_OPENED, 0);
    expect_decode(fx->codec, w.b, w.n, PP_DECODE_INVALID, "event_id with a NUL");
}

/* processing.max_string_bytes: a read field over the limit is too_large
 * (not merely invalid), at the limit it is judged by its field. A malformed
 * record beyond it stays malformed. */
static void test_string_limit(void **state)
{
    struct fixture *fx = *state;
    struct pp_codec_limits lim;
    pp_codec_limits_defaults(&lim);
    lim.max_string_bytes = 40;
    struct pp_codec *small = pp_codec_new(fx->cat, &lim);
    char id[64];
    memset(id, 'x', sizeof(id));
    struct body w;
    support_body(&w, id, 40, PP_TICKET_OPENED, 0);
    expect_decode(small, w.b, w.n, PP_DECODE_OK, "event_id of 40 bytes, limit 40");
    support_body(&w, id, 41, PP_TICKET_OPENED, 0);
    expect_decode(small, w.b, w.n, PP_DECODE_TOO_LARGE, "event_id of 41 bytes, limit 40");
    /* Declared longer than what remains: malformed, whatever the limit. */
    support_body(&w, id, 41, PP_TICKET_OPENED, 0);
    w.n = PP_WIRE_HEADER + 10;
    expect_decode(small, w.b, w.n, PP_DECODE_MALFORMED, "truncated 41-byte event_id");
    /* The defaults: 64 KiB strings, 100000 items. */
    pp_codec_limits_defaults(&lim);
    assert_int_equal(lim.max_string_bytes, 64 * 1024);
    assert_int_equal(lim.max_items, 100000);
    pp_codec_destroy(small);
}

static void test_bad_union_branch(void **state)
{
    struct fixture *fx = *state;
    static const int64_t branches[] = {2, 3, -1, 1000};
    for (size_t i = 0; i < N(branches); i++) {
        struct body w;
        support_body(&w, "E-1", 3, PP_TICKET_OPENED, branches[i]);
        char what[64];
        snprintf(what, sizeof(what), "product_id union branch %lld", (long long)branches[i]);
        expect_decode(fx->codec, w.b, w.n, PP_DECODE_MALFORMED, what);
    }
}

/* The support event_type enum has five symbols (0..4). An index outside
 * must be refused as a bad record, not looked up. */
static void test_enum_index_out_of_range(void **state)
{
    struct fixture *fx = *state;
    static const int64_t bad[] = {5, 6, 100, -1, INT32_MAX};
    for (size_t i = 0; i < N(bad); i++) {
        struct body w;
        support_body(&w, "E-1", 3, bad[i], 0);
        struct pp_event out;
        enum pp_decode_err err = decode(fx->codec, w.b, w.n, &out);
        if (err != PP_DECODE_INVALID && err != PP_DECODE_MALFORMED) {
            fail_msg("event_type index %lld: %s, expected invalid_value or malformed_avro",
                     (long long)bad[i], pp_decode_reason(err));
        }
    }
}

/* A few bytes declaring an enormous string must fail as malformed without
 * the decoder trying to allocate what the input declares (DESIGN.md §3:
 * every decode is bounded). */
static void test_absurd_string_length(void **state)
{
    struct fixture *fx = *state;
    static const int64_t lengths[] = {-1, -1000, INT64_C(1) << 40, INT64_MAX};
    for (size_t i = 0; i < N(lengths); i++) {
        struct body w;
        put_header(&w, PP_SCHEMA_ID_SUPPORT);
        put_long(&w, lengths[i]);
        memcpy(w.b + w.n, "abcdefgh", 8);
        w.n += 8;
        char what[64];
        snprintf(what, sizeof(what), "event_id declared as %lld bytes", (long long)lengths[i]);
        expect_decode(fx->codec, w.b, w.n, PP_DECODE_MALFORMED, what);
    }
}

/* ---- names and state ---------------------------------------------------------- */

static void test_reason_names(void **state)
{
    (void)state;
    static const struct {
        enum pp_decode_err err;
        const char *name;
    } names[] = {
        {PP_DECODE_OK, "ok"},
        {PP_DECODE_TOO_SHORT, "too_short"},
        {PP_DECODE_BAD_MAGIC, "bad_magic"},
        {PP_DECODE_TOO_LARGE, "too_large"},
        {PP_DECODE_UNKNOWN_SCHEMA, "unknown_schema_id"},
        {PP_DECODE_NOT_AN_EVENT, "not_an_event"},
        {PP_DECODE_MALFORMED, "malformed_avro"},
        {PP_DECODE_INVALID, "invalid_value"},
        {PP_DECODE_SCHEMA_MISMATCH, "schema_mismatch"},
        {PP_DECODE_SCHEMA_UNAVAILABLE, "schema_unavailable"},
        {PP_DECODE__COUNT, "unknown"},
        {(enum pp_decode_err) - 1, "unknown"},
        {(enum pp_decode_err)1000, "unknown"},
    };
    assert_int_equal(N(names), PP_DECODE__COUNT + 3);
    for (size_t i = 0; i < N(names); i++) {
        assert_string_equal(pp_decode_reason(names[i].err), names[i].name);
    }
}

static void test_valid_after_failure(void **state)
{
    struct fixture *fx = *state;
    struct pp_event ok_ev[N(builders)];
    unsigned char ok_wire[N(builders)][4096];
    size_t ok_len[N(builders)];
    for (size_t b = 0; b < N(builders); b++) {
        builders[b].build(&ok_ev[b]);
        ok_len[b] = encode(fx->codec, &ok_ev[b], ok_wire[b], sizeof(ok_wire[b]));
    }
    for (size_t b = 0; b < N(builders); b++) {
        /* Failures of every class on this schema: truncations at every third
         * byte, mutations, invalid values. */
        for (size_t cut = 0; cut < ok_len[b]; cut += 3) {
            struct pp_event out;
            assert_int_not_equal(decode(fx->codec, ok_wire[b], cut, &out), PP_DECODE_OK);
            for (size_t v = 0; v < N(builders); v++) {
                assert_int_equal(decode(fx->codec, ok_wire[v], ok_len[v], &out), PP_DECODE_OK);
                assert_event_equal(&out, &ok_ev[v]);
            }
        }
        for (size_t m = 0; m < N(mutations); m++) {
            unsigned char wire[4096];
            memcpy(wire, ok_wire[b], ok_len[b]);
            size_t len = mutations[m].mutate(wire, ok_len[b]);
            struct pp_event out;
            assert_int_not_equal(decode(fx->codec, wire, len, &out), PP_DECODE_OK);
            assert_int_equal(decode(fx->codec, ok_wire[b], ok_len[b], &out), PP_DECODE_OK);
            assert_event_equal(&out, &ok_ev[b]);
        }
    }
    for (size_t i = 0; i < N(validations); i++) {
        struct pp_event ev, out;
        unsigned char wire[4096];
        validations[i].build(&ev);
        size_t len = encode(fx->codec, &ev, wire, sizeof(wire));
        (void)decode(fx->codec, wire, len, &out);
        for (size_t v = 0; v < N(builders); v++) {
            assert_int_equal(decode(fx->codec, ok_wire[v], ok_len[v], &out), PP_DECODE_OK);
            assert_event_equal(&out, &ok_ev[v]);
        }
    }
}

static void test_wire_schema_id(void **state)
{
    (void)state;
    static const unsigned char ok[] = {0, 0x12, 0x34, 0x56, 0x78};
    int32_t id = 0;
    assert_true(pp_wire_schema_id(ok, sizeof(ok), &id));
    assert_int_equal(id, 0x12345678);
    static const unsigned char neg[] = {0, 0xff, 0xff, 0xff, 0xfe, 9};
    assert_true(pp_wire_schema_id(neg, sizeof(neg), &id));
    assert_int_equal(id, -2);
    id = 55;
    assert_false(pp_wire_schema_id(ok, 4, &id));
    static const unsigned char magic[] = {1, 0, 0, 0, 1};
    assert_false(pp_wire_schema_id(magic, sizeof(magic), &id));
    assert_int_equal(id, 55);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_round_trip_every_enum_symbol),
        cmocka_unit_test(test_alert_encode),
        cmocka_unit_test(test_error_classes),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_every_prefix_fails_cleanly),
        cmocka_unit_test(test_invalid_values),
        cmocka_unit_test(test_hand_encoded_body_matches_encoder),
        cmocka_unit_test(test_identifier_lengths),
        cmocka_unit_test(test_string_limit),
        cmocka_unit_test(test_bad_union_branch),
        cmocka_unit_test(test_enum_index_out_of_range),
        cmocka_unit_test(test_reason_names),
        cmocka_unit_test(test_valid_after_failure),
        cmocka_unit_test(test_wire_schema_id),
        /* Last: under ASan the allocation it provokes aborts the process. */
        cmocka_unit_test(test_absurd_string_length),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
