/*
 * test_eventfile.c — JSON Lines event files (schemas/eventfile.h) and the
 * alert JSON (schemas/alert_json.h).
 *
 * Covers: the round trip (write, read back, field-for-field equal) of every
 * event type with all optional fields present and all absent, and of every
 * event the scenario generator produces; the accepted time spellings (Z,
 * fraction, offsets, epoch millis) and date spellings; defaults of omitted
 * fields; one case per malformed-line class, each reported as FILE:LINE with
 * a reason while the reader goes on to the next line; random junk and
 * mutations of a valid line never crash the reader (ASan run); the writer
 * refusing what JSON cannot carry; and the alert JSON's shape.
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
#include <jansson.h>

#include "alert_json.h"
#include "eventfile.h"
#include "ptime.h"
#include "scenarios.h"

#define N(a)         (sizeof(a) / sizeof((a)[0]))
#define DAY(y, m, d) pp_day_from_civil((y), (m), (d))
#define MS(y, m, d)  pp_day_to_ms(DAY((y), (m), (d)))

/* A reader over an in-memory "file". */
struct mem {
    FILE *fp;
    struct pp_eventfile_reader *rd;
};

static void mem_open(struct mem *m, const char *text)
{
    m->fp = tmpfile();
    assert_non_null(m->fp);
    fputs(text, m->fp);
    rewind(m->fp);
    char err[256];
    m->rd = pp_eventfile_reader_new(m->fp, "test.jsonl", err, sizeof(err));
    assert_non_null(m->rd);
}

static void mem_close(struct mem *m)
{
    pp_eventfile_reader_destroy(m->rd);
    fclose(m->fp);
}

static void full_deal(struct pp_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->type = PP_EV_DEAL;
    snprintf(ev->event_id, sizeof(ev->event_id), "E-1");
    ev->occurred_at_ms = MS(2025, 6, 19) + 9 * 3600000 + 123;
    struct pp_deal *d = &ev->u.deal;
    snprintf(d->deal_id, sizeof(d->deal_id), "D-AX1-2025-06-19");
    d->event_type = PP_DEAL_CLOSED_WON;
    snprintf(d->partner_id, sizeof(d->partner_id), "P-APEX");
    snprintf(d->customer_id, sizeof(d->customer_id), "C-AX1 \"quoted\" é");
    snprintf(d->product_id, sizeof(d->product_id), "ACME-SUITE");
    d->kind = PP_KIND_ADDON;
    d->close_date = DAY(2025, 6, 19);
    d->has_start_date = true;
    d->start_date = DAY(2025, 7, 1);
    d->term_months = 12;
    d->seats = 150;
    d->amount = 5940000;
    d->has_list_amount = true;
    d->list_amount = 9000000;
    d->has_discount_pct = true;
    d->discount_pct = 0.34;
    memcpy(d->currency, "EUR", 4);
    d->has_commit_units = true;
    d->commit_units = 1234567890123LL;
    d->has_quarter_end = true;
    d->quarter_end = true;
    snprintf(d->fiscal_quarter, sizeof(d->fiscal_quarter), "2025-Q2");
}

static void bare_deal(struct pp_event *ev)
{
    full_deal(ev);
    struct pp_deal *d = &ev->u.deal;
    d->has_start_date = d->has_list_amount = d->has_discount_pct = false;
    d->has_commit_units = d->has_quarter_end = false;
    d->start_date = 0;
    d->list_amount = d->commit_units = 0;
    d->discount_pct = 0;
    d->quarter_end = false;
    d->event_type = PP_DEAL_CREDITED;
    d->amount = -2448000;
    d->seats = 0;
}

static void full_consumption(struct pp_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->type = PP_EV_CONSUMPTION;
    snprintf(ev->event_id, sizeof(ev->event_id), "E-2");
    ev->occurred_at_ms = MS(2025, 1, 2) + 23 * 3600000;
    struct pp_consumption *c = &ev->u.consumption;
    snprintf(c->customer_id, sizeof(c->customer_id), "C-STALL1");
    snprintf(c->product_id, sizeof(c->product_id), "ACME-DATA");
    c->as_of = DAY(2025, 1, 2);
    c->licenses_entitled = 10;
    c->licenses_active = 7;
    c->has_consumption_units = true;
    c->consumption_units = 0.1 + 0.2; /* needs 17 digits */
    c->has_period_start = c->has_period_end = true;
    c->period_start = DAY(2025, 1, 1);
    c->period_end = DAY(2025, 1, 2);
}

static void bare_consumption(struct pp_event *ev)
{
    full_consumption(ev);
    struct pp_consumption *c = &ev->u.consumption;
    c->has_consumption_units = c->has_period_start = c->has_period_end = false;
    c->consumption_units = 0;
    c->period_start = c->period_end = 0;
}

static void full_support(struct pp_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->type = PP_EV_SUPPORT;
    snprintf(ev->event_id, sizeof(ev->event_id), "E-3");
    ev->occurred_at_ms = MS(2025, 6, 11) + 1;
    struct pp_support *s = &ev->u.support;
    snprintf(s->ticket_id, sizeof(s->ticket_id), "T-1");
    snprintf(s->customer_id, sizeof(s->customer_id), "C-MD1");
    s->has_product_id = true;
    snprintf(s->product_id, sizeof(s->product_id), "ACME-SUITE");
    s->event_type = PP_TICKET_CSAT;
    s->severity = 2;
    s->has_csat_score = true;
    s->csat_score = 5;
    s->has_vendor_incident_id = true;
    snprintf(s->vendor_incident_id, sizeof(s->vendor_incident_id), "INC-42");
}

static void bare_support(struct pp_event *ev)
{
    full_support(ev);
    struct pp_support *s = &ev->u.support;
    s->has_product_id = s->has_csat_score = s->has_vendor_incident_id = false;
    memset(s->product_id, 0, sizeof(s->product_id));
    memset(s->vendor_incident_id, 0, sizeof(s->vendor_incident_id));
    s->csat_score = 0;
    s->event_type = PP_TICKET_OPENED;
}

static void assert_round_trip(const struct pp_event *ev)
{
    char *line = pp_eventfile_format(ev);
    assert_non_null(line);
    struct mem m;
    mem_open(&m, "");
    struct pp_event back;
    char what[256] = "";
    int rc = pp_eventfile_parse(m.rd, line, strlen(line), &back, what, sizeof(what));
    if (rc != 0) {
        fail_msg("%s: %s", line, what);
    }
    assert_memory_equal(ev, &back, sizeof(back));
    /* And the line written again is the same bytes. */
    char *again = pp_eventfile_format(&back);
    assert_string_equal(line, again);
    free(again);
    free(line);
    mem_close(&m);
}

static void test_round_trip_all_types(void **state)
{
    (void)state;
    void (*makers[])(struct pp_event *) = {full_deal,        bare_deal,    full_consumption,
                                           bare_consumption, full_support, bare_support};
    for (size_t i = 0; i < N(makers); i++) {
        struct pp_event ev;
        makers[i](&ev);
        assert_round_trip(&ev);
    }
    /* Optional members are omitted when absent, present when set. */
    struct pp_event ev;
    bare_deal(&ev);
    char *line = pp_eventfile_format(&ev);
    assert_null(strstr(line, "discount_pct"));
    assert_null(strstr(line, "null"));
    free(line);
    full_deal(&ev);
    line = pp_eventfile_format(&ev);
    assert_non_null(strstr(line, "\"discount_pct\":0.34,"));
    assert_non_null(strstr(line, "\"occurred_at\":\"2025-06-19T09:00:00.123Z\""));
    assert_non_null(strstr(line, "\"close_date\":\"2025-06-19\""));
    assert_non_null(strstr(line, "{\"type\":\"deal\","));
    free(line);
}

static int round_trip_sink(const struct pp_event *ev, void *opaque)
{
    (*(size_t *)opaque)++;
    assert_round_trip(ev);
    return 0;
}

static void test_round_trip_generated(void **state)
{
    (void)state;
    struct pp_scen_conf sc;
    pp_scen_conf_defaults(&sc);
    sc.noise = true;
    sc.seed = 3;
    sc.first_day = DAY(2025, 6, 1);
    sc.last_day = DAY(2025, 7, 15);
    size_t n = 0;
    assert_int_equal(pp_scen_generate(&sc, round_trip_sink, &n), 0);
    assert_true(n > 1000);
}

static void test_write_and_read_file(void **state)
{
    (void)state;
    FILE *fp = tmpfile();
    char err[256];
    struct pp_event evs[3];
    full_deal(&evs[0]);
    bare_consumption(&evs[1]);
    full_support(&evs[2]);
    for (size_t i = 0; i < N(evs); i++) {
        assert_int_equal(pp_eventfile_write(fp, &evs[i], err, sizeof(err)), 0);
    }
    fputs("\n   \n", fp); /* blank lines are skipped */
    rewind(fp);
    struct pp_eventfile_reader *rd = pp_eventfile_reader_new(fp, "f", err, sizeof(err));
    struct pp_event ev;
    for (size_t i = 0; i < N(evs); i++) {
        assert_int_equal(pp_eventfile_next(rd, &ev, err, sizeof(err)), PP_EVENTFILE_OK);
        assert_memory_equal(&ev, &evs[i], sizeof(ev));
        assert_int_equal(pp_eventfile_line(rd), i + 1);
    }
    assert_int_equal(pp_eventfile_next(rd, &ev, err, sizeof(err)), PP_EVENTFILE_EOF);
    pp_eventfile_reader_destroy(rd);
    fclose(fp);
}

static void test_open_missing_file(void **state)
{
    (void)state;
    char err[256];
    assert_null(pp_eventfile_open("/nonexistent/dir/events.jsonl", err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/dir/events.jsonl"));
}

#define SUPPORT_HEAD                                                                               \
    "{\"type\":\"support\",\"event_id\":\"E\",\"ticket_id\":\"T\",\"customer_id\":\"C\","          \
    "\"event_type\":\"opened\",\"occurred_at\":"

static int64_t parse_time_ok(const char *spelling)
{
    char line[256];
    snprintf(line, sizeof(line), SUPPORT_HEAD "%s}", spelling);
    struct mem m;
    mem_open(&m, "");
    struct pp_event ev;
    char what[256] = "";
    int rc = pp_eventfile_parse(m.rd, line, strlen(line), &ev, what, sizeof(what));
    mem_close(&m);
    if (rc != 0) {
        fail_msg("%s: %s", spelling, what);
    }
    return ev.occurred_at_ms;
}

static void test_time_spellings(void **state)
{
    (void)state;
    int64_t t = MS(2025, 6, 19) + 9 * 3600000;
    assert_int_equal(parse_time_ok("\"2025-06-19T09:00:00Z\""), t);
    assert_int_equal(parse_time_ok("\"2025-06-19T09:00:00.000Z\""), t);
    assert_int_equal(parse_time_ok("\"2025-06-19T09:00:00.5Z\""), t + 500);
    assert_int_equal(parse_time_ok("\"2025-06-19T09:00:00.123456789Z\""), t + 123);
    assert_int_equal(parse_time_ok("\"2025-06-19T11:00:00+02:00\""), t);
    assert_int_equal(parse_time_ok("\"2025-06-19T04:30:00-04:30\""), t);
    char ms[32];
    snprintf(ms, sizeof(ms), "%lld", (long long)t);
    assert_int_equal(parse_time_ok(ms), t);
}

static void test_defaults_and_dates(void **state)
{
    (void)state;
    /* Fields with an Avro default may be omitted; dates may be day numbers. */
    const char *line = "{\"type\":\"deal\",\"event_id\":\"E\",\"occurred_at\":1750323600000,"
                       "\"deal_id\":\"D\",\"event_type\":\"closed_won\",\"partner_id\":\"P\","
                       "\"customer_id\":\"C\",\"product_id\":\"X\",\"kind\":\"new\","
                       "\"close_date\":20258,\"amount\":100,\"discount_pct\":null}";
    struct mem m;
    mem_open(&m, "");
    struct pp_event ev;
    char what[256] = "";
    assert_int_equal(pp_eventfile_parse(m.rd, line, strlen(line), &ev, what, sizeof(what)), 0);
    assert_int_equal(ev.u.deal.term_months, 12);
    assert_int_equal(ev.u.deal.seats, 0);
    assert_string_equal(ev.u.deal.currency, "USD");
    assert_string_equal(ev.u.deal.fiscal_quarter, "");
    assert_int_equal(ev.u.deal.close_date, 20258);
    assert_false(ev.u.deal.has_discount_pct);
    const char *sup = SUPPORT_HEAD "\"2025-01-01T00:00:00Z\"}";
    assert_int_equal(pp_eventfile_parse(m.rd, sup, strlen(sup), &ev, what, sizeof(what)), 0);
    assert_int_equal(ev.u.support.severity, 3);
    mem_close(&m);
}

/* One malformed line per class, each between valid lines. */
static const struct {
    const char *line;
    const char *reason; /* a substring of the message */
} bad_lines[] = {
    {"{\"type\":\"support\",", "invalid JSON"},
    {"not json at all", "invalid JSON"},
    {"[1,2,3]", "expected a JSON object"},
    {"{\"event_id\":\"E\"}", "missing \"type\""},
    {"{\"type\":\"refund\",\"event_id\":\"E\"}", "unknown event type"},
    {SUPPORT_HEAD "\"2025-01-01T00:00:00Z\",\"severty\":2}", "unknown field \"severty\""},
    {"{\"type\":\"support\",\"event_id\":\"E\",\"ticket_id\":\"T\",\"event_type\":\"opened\","
     "\"occurred_at\":\"2025-01-01T00:00:00Z\"}",
     "customer_id: missing"},
    {SUPPORT_HEAD "\"2025-01-01T00:00:00Z\",\"severity\":\"high\"}",
     "severity: expected an integer"},
    {SUPPORT_HEAD "\"2025-01-01T00:00:00Z\",\"severity\":4294967297}", "does not fit"},
    {SUPPORT_HEAD "\"2025-01-01T00:00:00Z\",\"severity\":9}", "severity: 9"},
    {"{\"type\":\"support\",\"event_id\":\"E\",\"ticket_id\":\"T\",\"customer_id\":\"C\","
     "\"event_type\":\"closed\",\"occurred_at\":0}",
     "event_type: expected one of the symbols"},
    {SUPPORT_HEAD "\"2025-13-01T00:00:00Z\"}", "occurred_at: expected an ISO-8601"},
    {SUPPORT_HEAD "\"2025-01-01 00:00:00\"}", "occurred_at: expected an ISO-8601"},
    {SUPPORT_HEAD "631152000000}", "occurred_at"}, /* 1990: outside the accepted range */
    {SUPPORT_HEAD "\"2025-01-01T00:00:00Z\",\"severity\":null}", "null is not allowed"},
    {SUPPORT_HEAD "\"2025-01-01T00:00:00Z\",\"event_type\":\"csat\"}", "duplicate"},
    {"{\"type\":\"support\",\"event_id\":\"E\",\"ticket_id\":\"T\",\"customer_id\":\"C\","
     "\"event_type\":\"csat\",\"occurred_at\":\"2025-01-01T00:00:00Z\"}",
     "csat_score"},
    {"{\"type\":\"support\",\"event_id\":\"\",\"ticket_id\":\"T\",\"customer_id\":\"C\","
     "\"event_type\":\"opened\",\"occurred_at\":\"2025-01-01T00:00:00Z\"}",
     "event_id"},
    {"{\"type\":\"support\",\"event_id\":\"E\",\"ticket_id\":\"T\",\"customer_id\":"
     "\"C-0123456789012345678901234567890123456789012345678901234567890123\","
     "\"event_type\":\"opened\",\"occurred_at\":\"2025-01-01T00:00:00Z\"}",
     "customer_id: longer than 63 bytes"},
    {"{\"type\":\"deal\",\"event_id\":\"E\",\"occurred_at\":\"2025-01-01T00:00:00Z\","
     "\"deal_id\":\"D\",\"event_type\":\"closed_won\",\"partner_id\":\"P\",\"customer_id\":\"C\","
     "\"product_id\":\"X\",\"kind\":\"new\",\"close_date\":\"2025-02-30\",\"amount\":1}",
     "close_date: expected a date"},
    {"{\"type\":\"deal\",\"event_id\":\"E\",\"occurred_at\":\"2025-01-01T00:00:00Z\","
     "\"deal_id\":\"D\",\"event_type\":\"closed_won\",\"partner_id\":\"P\",\"customer_id\":\"C\","
     "\"product_id\":\"X\",\"kind\":\"new\",\"close_date\":\"2025-01-01\",\"amount\":1,"
     "\"discount_pct\":1.5}",
     "discount_pct"},
    {"{\"type\":\"deal\",\"event_id\":\"E\",\"occurred_at\":\"2025-01-01T00:00:00Z\","
     "\"deal_id\":\"D\",\"event_type\":\"closed_won\",\"partner_id\":\"P\",\"customer_id\":\"C\","
     "\"product_id\":\"X\",\"kind\":\"new\",\"close_date\":\"2025-01-01\",\"amount\":1.5}",
     "amount: expected an integer"},
    {"{\"type\":\"deal\",\"event_id\":\"E\",\"occurred_at\":\"2025-01-01T00:00:00Z\","
     "\"deal_id\":\"D\",\"event_type\":\"closed_won\",\"partner_id\":\"P\",\"customer_id\":\"C\","
     "\"product_id\":\"X\",\"kind\":\"new\",\"close_date\":\"2025-01-01\",\"amount\":1,"
     "\"quarter_end\":\"yes\"}",
     "quarter_end: expected true or false"},
    {"{\"type\":\"license_consumption\",\"event_id\":\"E\",\"occurred_at\":\"2025-01-01T00:00:"
     "00Z\","
     "\"customer_id\":\"C\",\"product_id\":\"X\",\"as_of\":\"2025-01-01\",\"licenses_active\":-1}",
     "licenses"},
    {"{\"type\":\"license_consumption\",\"event_id\":\"E\",\"occurred_at\":\"2025-01-01T00:00:"
     "00Z\","
     "\"customer_id\":\"C\",\"product_id\":\"X\",\"as_of\":\"2025-01-01\","
     "\"consumption_units\":\"many\"}",
     "consumption_units: expected a number"},
    {"{\"type\":\"support\",\"event_id\":\"E\\u0000x\",\"ticket_id\":\"T\",\"customer_id\":\"C\","
     "\"event_type\":\"opened\",\"occurred_at\":0}",
     "invalid JSON"},
    {"{\"type\":\"license_consumption\",\"event_id\":\"E\",\"occurred_at\":0,"
     "\"customer_id\":\"C\",\"product_id\":\"X\",\"as_of\":3000000}",
     "as_of: 3000000 days is outside years 0000..9999"},
};

static size_t append(char *dst, size_t at, const char *s)
{
    size_t n = strlen(s);
    memcpy(dst + at, s, n + 1);
    return at + n;
}

static void test_malformed_lines(void **state)
{
    (void)state;
    const char *valid = SUPPORT_HEAD "\"2025-01-01T00:00:00Z\"}\n";
    size_t size = strlen(valid) * (N(bad_lines) + 1) + 1;
    for (size_t i = 0; i < N(bad_lines); i++) {
        size += strlen(bad_lines[i].line) + 1;
    }
    char *text = calloc(1, size);
    size_t at = 0;
    at = append(text, at, valid);
    for (size_t i = 0; i < N(bad_lines); i++) {
        at = append(text, at, bad_lines[i].line);
        at = append(text, at, "\n");
    }
    append(text, at, valid);
    struct mem m;
    mem_open(&m, text);
    struct pp_event ev;
    char err[512];
    assert_int_equal(pp_eventfile_next(m.rd, &ev, err, sizeof(err)), PP_EVENTFILE_OK);
    for (size_t i = 0; i < N(bad_lines); i++) {
        enum pp_eventfile_rc rc = pp_eventfile_next(m.rd, &ev, err, sizeof(err));
        if (rc != PP_EVENTFILE_BAD_LINE) {
            fail_msg("line %zu accepted: %s", i + 2, bad_lines[i].line);
        }
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "test.jsonl:%zu: ", i + 2);
        if (strncmp(err, prefix, strlen(prefix)) != 0 || strstr(err, bad_lines[i].reason) == NULL) {
            fail_msg("line %zu: got \"%s\", expected \"%s\" and \"%s\"", i + 2, err, prefix,
                     bad_lines[i].reason);
        }
    }
    assert_int_equal(pp_eventfile_next(m.rd, &ev, err, sizeof(err)), PP_EVENTFILE_OK);
    assert_int_equal(pp_eventfile_line(m.rd), N(bad_lines) + 2);
    assert_int_equal(pp_eventfile_next(m.rd, &ev, err, sizeof(err)), PP_EVENTFILE_EOF);
    mem_close(&m);
    free(text);
}

static void test_overlong_line(void **state)
{
    (void)state;
    size_t n = PP_EVENTFILE_MAX_LINE + 100;
    char *text = malloc(n + 2);
    memset(text, ' ', n);
    text[0] = '{';
    text[n - 1] = '}';
    text[n] = '\n';
    text[n + 1] = '\0';
    struct mem m;
    mem_open(&m, text);
    struct pp_event ev;
    char err[256];
    assert_int_equal(pp_eventfile_next(m.rd, &ev, err, sizeof(err)), PP_EVENTFILE_BAD_LINE);
    assert_non_null(strstr(err, "test.jsonl:1: line is longer than"));
    mem_close(&m);
    free(text);
}

static void test_junk_never_crashes(void **state)
{
    (void)state;
    struct pp_event ev;
    full_deal(&ev);
    char *valid = pp_eventfile_format(&ev);
    size_t len = strlen(valid);
    struct mem m;
    mem_open(&m, "");
    struct pp_rng rng;
    pp_rng_seed(&rng, 42);
    char *buf = malloc(len + 1);
    char what[256];
    int accepted = 0;
    for (int i = 0; i < 20000; i++) {
        memcpy(buf, valid, len + 1);
        size_t cut = len;
        int edits = 1 + (int)(pp_rng_next(&rng) % 4);
        for (int k = 0; k < edits; k++) {
            size_t at = pp_rng_next(&rng) % len;
            switch (pp_rng_next(&rng) % 3) {
            case 0:
                buf[at] = (char)(pp_rng_next(&rng) & 0xff);
                break;
            case 1:
                cut = at;
                break;
            default:
                buf[at] = "{}[]\":,0-e.\\"[pp_rng_next(&rng) % 12];
            }
        }
        accepted += pp_eventfile_parse(m.rd, buf, cut, &ev, what, sizeof(what)) == 0;
    }
    /* Some mutations stay valid (a digit in an amount); most are refused. */
    assert_true(accepted < 20000);
    for (int i = 0; i < 2000; i++) {
        size_t n = pp_rng_next(&rng) % len;
        for (size_t k = 0; k < n; k++) {
            buf[k] = (char)(pp_rng_next(&rng) & 0xff);
        }
        assert_int_equal(pp_eventfile_parse(m.rd, buf, n, &ev, what, sizeof(what)), -1);
    }
    free(buf);
    free(valid);
    mem_close(&m);
}

static void test_writer_refuses_non_json(void **state)
{
    (void)state;
    struct pp_event ev;
    full_consumption(&ev);
    ev.u.consumption.consumption_units = NAN;
    char err[256];
    FILE *fp = tmpfile();
    assert_int_equal(pp_eventfile_write(fp, &ev, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "E-2"));
    full_support(&ev);
    ev.u.support.event_type = (enum pp_support_event)77;
    assert_int_equal(pp_eventfile_write(fp, &ev, err, sizeof(err)), -1);
    full_support(&ev);
    snprintf(ev.u.support.ticket_id, sizeof(ev.u.support.ticket_id), "\xff\xfe");
    assert_int_equal(pp_eventfile_write(fp, &ev, err, sizeof(err)), -1);
    fclose(fp);
}

static void test_alert_json(void **state)
{
    (void)state;
    struct pp_alert a;
    memset(&a, 0, sizeof(a));
    snprintf(a.alert_id, sizeof(a.alert_id), "cpi:v1:acme:PXC:P-MERIDIAN:C-MD1:2025-08-25");
    snprintf(a.dedup_key, sizeof(a.dedup_key), "cpi:v1:acme:PXC:P-MERIDIAN:C-MD1");
    snprintf(a.rule_id, sizeof(a.rule_id), "CUSTOMER_PRESSURE");
    a.status = PP_ALERT_FIRING;
    a.severity = PP_SEV_CRITICAL;
    a.scope = PP_SCOPE_PXC;
    snprintf(a.tenant, sizeof(a.tenant), "acme");
    snprintf(a.partner_id, sizeof(a.partner_id), "P-MERIDIAN");
    snprintf(a.customer_id, sizeof(a.customer_id), "C-MD1");
    a.first_seen_day = DAY(2025, 8, 25);
    a.fired_day = DAY(2025, 8, 31);
    a.eval_day = DAY(2025, 9, 3);
    a.value = 84.1;
    a.threshold = 75;
    a.window_days = 14;
    snprintf(a.summary, sizeof(a.summary), "C-MD1 \"drowns\" in tickets");
    char *s;
    assert_int_equal(pp_alert_to_json(&a, &s), 0);
    assert_string_equal(
        s, "{\"alert_id\":\"cpi:v1:acme:PXC:P-MERIDIAN:C-MD1:2025-08-25\","
           "\"dedup_key\":\"cpi:v1:acme:PXC:P-MERIDIAN:C-MD1\",\"rule_id\":\"CUSTOMER_PRESSURE\","
           "\"model_version\":\"cpi-1.0.0\",\"status\":\"FIRING\",\"severity\":\"CRITICAL\","
           "\"scope\":\"PXC\",\"tenant\":\"acme\",\"partner_id\":\"P-MERIDIAN\","
           "\"customer_id\":\"C-MD1\",\"partner\":{\"id\":\"P-MERIDIAN\"},"
           "\"customer\":{\"id\":\"C-MD1\"},\"first_seen_at\":\"2025-08-25T00:00:00Z\","
           "\"fired_at\":\"2025-08-31T00:00:00Z\",\"last_evaluated_at\":\"2025-09-03T00:00:00Z\","
           "\"data_through\":\"2025-09-03T23:59:59Z\",\"reopen_count\":0,\"value\":84.1,"
           "\"threshold\":75.0,\"window_days\":14,"
           "\"summary\":\"C-MD1 \\\"drowns\\\" in tickets\"}");
    free(s);
    /* Partner scope: customer null; a day not reached yet is null. */
    a.customer_id[0] = '\0';
    a.scope = PP_SCOPE_PARTNER;
    a.fired_day = INT32_MIN;
    assert_int_equal(pp_alert_to_json(&a, &s), 0);
    json_error_t jerr;
    json_t *o = json_loads(s, 0, &jerr);
    assert_non_null(o);
    assert_true(json_is_null(json_object_get(o, "customer")));
    assert_true(json_is_null(json_object_get(o, "customer_id")));
    assert_null(json_object_get(o, "scores")); /* the skeleton has no explanation */
    assert_true(json_is_null(json_object_get(o, "fired_at")));
    json_decref(o);
    free(s);
    /* The model's explanation, when present: NAN renders as null. */
    a.scope = PP_SCOPE_PXC;
    snprintf(a.customer_id, sizeof(a.customer_id), "C-MD1");
    a.cpi_short = 84.1;
    a.cpi_long = 80.6;
    a.h_short = 0.841;
    a.h_long = 0.806;
    a.aggression = 0;
    a.health = 33;
    a.families[PP_ALERT_FAM_SUPPORT].present = 1;
    a.families[PP_ALERT_FAM_SUPPORT].harm = 0.841;
    a.families[PP_ALERT_FAM_SUPPORT].exposure = 1.0;
    a.n_signals = 1;
    snprintf(a.signals[0].name, sizeof(a.signals[0].name), "LOAD");
    a.signals[0].value = 2.96;
    a.signals[0].risk = 0.97;
    a.signals[0].warn_at = 2.25;
    a.signals[0].crit_at = 2.78;
    a.signals[0].baseline = NAN;
    a.signals[0].contribution = 0.4;
    a.n_history = 2;
    a.history[0].day = DAY(2025, 8, 31);
    a.history[0].severity = PP_SEV_WARNING;
    a.history[1].day = DAY(2025, 9, 3);
    a.history[1].severity = PP_SEV_CRITICAL;
    a.last_changed_day = DAY(2025, 9, 3);
    snprintf(a.runbook_id, sizeof(a.runbook_id), "RB-SUPPORT-02");
    assert_int_equal(pp_alert_to_json(&a, &s), 0);
    o = json_loads(s, 0, &jerr);
    assert_non_null(o);
    json_t *sc = json_object_get(o, "scores");
    assert_true(json_real_value(json_object_get(sc, "H_long")) == 0.806);
    assert_int_equal(json_integer_value(json_object_get(sc, "health")), 33);
    assert_true(json_is_null(json_object_get(json_object_get(sc, "families"), "ADOPT")));
    json_t *sig = json_array_get(json_object_get(o, "top_contributing_signals"), 0);
    assert_string_equal(json_string_value(json_object_get(sig, "signal")), "LOAD");
    assert_true(json_is_null(json_object_get(sig, "baseline")));
    json_t *h = json_array_get(json_object_get(o, "severity_history"), 1);
    assert_string_equal(json_string_value(json_object_get(h, "at")), "2025-09-03");
    assert_string_equal(json_string_value(json_object_get(h, "severity")), "CRITICAL");
    assert_string_equal(json_string_value(json_object_get(o, "last_changed_at")),
                        "2025-09-03T00:00:00Z");
    assert_true(json_is_null(json_object_get(o, "parent_alert_id")));
    assert_null(json_object_get(o, "customers_affected")); /* partner scope only */
    assert_non_null(strstr(s, "\"cpi_short\":84.1,"));
    json_decref(o);
    free(s);
    /* Not UTF-8: refused, nothing leaked. */
    snprintf(a.summary, sizeof(a.summary), "\xff");
    assert_int_equal(pp_alert_to_json(&a, &s), -1);
    assert_null(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_all_types), cmocka_unit_test(test_round_trip_generated),
        cmocka_unit_test(test_write_and_read_file),  cmocka_unit_test(test_open_missing_file),
        cmocka_unit_test(test_time_spellings),       cmocka_unit_test(test_defaults_and_dates),
        cmocka_unit_test(test_malformed_lines),      cmocka_unit_test(test_overlong_line),
        cmocka_unit_test(test_junk_never_crashes),   cmocka_unit_test(test_writer_refuses_non_json),
        cmocka_unit_test(test_alert_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
