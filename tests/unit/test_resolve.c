/*
 * test_resolve.c — Avro schema resolution (writer → reader) of the codec,
 * against records written by an independent implementation.
 *
 * The records in vectors/resolve_vectors.h were written by fastavro with
 * older and newer versions of the event schemas (gen_resolve_vectors.py says
 * which). Each writer schema is added to the catalog under its own id, as a
 * registry lookup would, and each record must decode to exactly the event
 * the Avro specification says: reader defaults for missing fields, unknown
 * writer fields skipped, enums by name with the reader's enum default,
 * promotions, unions on either side — or fail with `schema_mismatch` when
 * the schemas do not resolve. Also: limits (string length, item counts) on
 * skipped fields, and that a writer's compiled plan is reused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"
#include "vectors/resolve_vectors.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define MS   INT64_C(1751371200000)
#define DAY  20270

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
    for (size_t i = 0; i < N(resolve_vectors); i++) {
        if (pp_schema_catalog_get(fx->cat, resolve_vectors[i].id) == NULL &&
            pp_schema_catalog_add(fx->cat, resolve_vectors[i].id, resolve_vectors[i].schema, err,
                                  sizeof(err)) != 0) {
            fprintf(stderr, "add %s: %s\n", resolve_vectors[i].name, err);
            return -1;
        }
    }
    fx->codec = pp_codec_new(fx->cat, NULL);
    *state = fx;
    return fx->codec ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    pp_codec_destroy(fx->codec);
    pp_schema_catalog_destroy(fx->cat);
    free(fx);
    return 0;
}

static const struct resolve_vector *vec(const char *name)
{
    for (size_t i = 0; i < N(resolve_vectors); i++) {
        if (strcmp(resolve_vectors[i].name, name) == 0) {
            return &resolve_vectors[i];
        }
    }
    fail_msg("no vector %s", name);
    return NULL;
}

/* Frames a vector's body with its id. */
static size_t frame(const struct resolve_vector *v, unsigned char *out, size_t cap)
{
    assert_true(v->len + 5 <= cap);
    out[0] = 0;
    out[1] = (unsigned char)((uint32_t)v->id >> 24);
    out[2] = (unsigned char)((uint32_t)v->id >> 16);
    out[3] = (unsigned char)((uint32_t)v->id >> 8);
    out[4] = (unsigned char)v->id;
    memcpy(out + 5, v->body, v->len);
    return v->len + 5;
}

static enum pp_decode_err decode_vec(struct fixture *fx, const char *name, struct pp_event *ev,
                                     char *detail, size_t detail_size)
{
    unsigned char wire[2048];
    size_t len = frame(vec(name), wire, sizeof(wire));
    int32_t id = 0;
    enum pp_decode_err err = pp_codec_decode(fx->codec, wire, len, ev, &id, detail, detail_size);
    assert_int_equal(id, vec(name)->id);
    return err;
}

static void expect_ok(struct fixture *fx, const char *name, struct pp_event *ev)
{
    char detail[256] = "";
    enum pp_decode_err err = decode_vec(fx, name, ev, detail, sizeof(detail));
    if (err != PP_DECODE_OK) {
        fail_msg("%s: %s (%s)", name, pp_decode_reason(err), detail);
    }
}

static void test_support_v0_gets_reader_defaults(void **state)
{
    struct fixture *fx = *state;
    struct pp_event ev;
    expect_ok(fx, "support_v0", &ev);
    assert_int_equal(ev.type, PP_EV_SUPPORT);
    assert_string_equal(ev.event_id, "E-s0");
    assert_true(ev.occurred_at_ms == MS);
    const struct pp_support *s = &ev.u.support;
    assert_string_equal(s->ticket_id, "T-1");
    assert_string_equal(s->customer_id, "C-1");
    assert_false(s->has_product_id);
    /* The writer's symbols are in another order: by name, not position. */
    assert_int_equal(s->event_type, PP_TICKET_OPENED);
    assert_int_equal(s->severity, 2);
    /* Not in the writer: the reader's defaults (null). */
    assert_false(s->has_csat_score);
    assert_false(s->has_vendor_incident_id);
    assert_string_equal(s->vendor_incident_id, "");

    expect_ok(fx, "support_v0_csat_symbol", &ev);
    assert_int_equal(ev.u.support.event_type, PP_TICKET_ESCALATED);
    assert_true(ev.u.support.has_product_id);
    assert_string_equal(ev.u.support.product_id, "ACME-SUITE");
}

static void test_deal_v2_skips_new_fields_and_defaults_symbols(void **state)
{
    struct fixture *fx = *state;
    struct pp_event ev;
    expect_ok(fx, "deal_v2", &ev);
    assert_int_equal(ev.type, PP_EV_DEAL);
    const struct pp_deal *d = &ev.u.deal;
    assert_string_equal(ev.event_id, "E-d2");
    assert_string_equal(d->deal_id, "D-2");
    /* Unknown symbols: the reader enums' defaults (registered, new). */
    assert_int_equal(d->event_type, PP_DEAL_REGISTERED);
    assert_int_equal(d->kind, PP_KIND_NEW);
    assert_string_equal(d->partner_id, "P-1");
    assert_string_equal(d->customer_id, "C-2");
    assert_int_equal(d->close_date, DAY);
    assert_int_equal(d->seats, 40);
    /* int -> long, ["null","int"] -> ["null","long"], ["null","float"] -> ["null","double"] */
    assert_true(d->amount == 120000);
    assert_true(d->has_list_amount && d->list_amount == 150000);
    assert_true(d->has_discount_pct && d->discount_pct == 0.25);
    /* Not in the writer: the reader's defaults. */
    assert_int_equal(d->term_months, 12);
    assert_string_equal(d->currency, "USD");
    assert_false(d->has_start_date);
    assert_false(d->has_commit_units);
    assert_true(d->has_quarter_end && d->quarter_end);
    assert_string_equal(d->fiscal_quarter, "2025-Q3");

    expect_ok(fx, "deal_v2_known_symbols", &ev);
    assert_int_equal(ev.u.deal.event_type, PP_DEAL_CLOSED_WON);
    assert_int_equal(ev.u.deal.kind, PP_KIND_RENEWAL);
    assert_true(ev.u.deal.amount == -100);
    assert_false(ev.u.deal.has_list_amount);
    assert_false(ev.u.deal.has_discount_pct);
    assert_false(ev.u.deal.has_quarter_end);
}

static void test_license_promotions_and_unions(void **state)
{
    struct fixture *fx = *state;
    struct pp_event ev;
    expect_ok(fx, "license_alt", &ev);
    assert_int_equal(ev.type, PP_EV_CONSUMPTION);
    const struct pp_consumption *c = &ev.u.consumption;
    assert_string_equal(c->customer_id, "C-4");      /* ["null","string"] -> string */
    assert_string_equal(c->product_id, "ACME-DATA"); /* bytes -> string */
    assert_int_equal(c->as_of, DAY);
    assert_int_equal(c->licenses_entitled, 50);
    assert_int_equal(c->licenses_active, 42);
    assert_true(c->has_consumption_units && c->consumption_units == 12345.0); /* long -> double */
    assert_false(c->has_period_start);                                        /* default */
    assert_true(c->has_period_end && c->period_end == DAY + 30);

    expect_ok(fx, "license_alt_float", &ev);
    assert_true(ev.u.consumption.has_consumption_units &&
                ev.u.consumption.consumption_units == 2.5); /* float -> double */
    assert_false(ev.u.consumption.has_period_end);

    /* The null branch of a writer union cannot go into a required field. */
    char detail[256] = "";
    assert_int_equal(decode_vec(fx, "license_alt_null_customer", &ev, detail, sizeof(detail)),
                     PP_DECODE_SCHEMA_MISMATCH);
    assert_non_null(strstr(detail, "customer_id"));
}

static void test_unresolvable_writers(void **state)
{
    struct fixture *fx = *state;
    struct pp_event ev;
    char detail[256] = "";
    assert_int_equal(decode_vec(fx, "deal_no_amount", &ev, detail, sizeof(detail)),
                     PP_DECODE_SCHEMA_MISMATCH);
    assert_non_null(strstr(detail, "amount"));
    assert_int_equal(decode_vec(fx, "deal_string_seats", &ev, detail, sizeof(detail)),
                     PP_DECODE_SCHEMA_MISMATCH);
    assert_non_null(strstr(detail, "seats"));
    assert_int_equal(decode_vec(fx, "other_record", &ev, detail, sizeof(detail)),
                     PP_DECODE_NOT_AN_EVENT);
    assert_non_null(strstr(detail, "com.example.Thing"));
    /* A mismatch is cached, not a state: valid records still decode. */
    expect_ok(fx, "deal_v2", &ev);
}

static void test_every_prefix_of_every_vector_fails_cleanly(void **state)
{
    struct fixture *fx = *state;
    for (size_t i = 0; i < N(resolve_vectors); i++) {
        unsigned char wire[2048];
        size_t len = frame(&resolve_vectors[i], wire, sizeof(wire));
        for (size_t cut = 5; cut < len; cut++) {
            struct pp_event ev;
            char detail[256] = "";
            enum pp_decode_err err =
                pp_codec_decode(fx->codec, wire, cut, &ev, NULL, detail, sizeof(detail));
            if (err == PP_DECODE_OK) {
                fail_msg("%s cut at %zu decoded", resolve_vectors[i].name, cut);
            }
            assert_true(detail[0] != '\0');
        }
    }
}

static void test_limits_apply_to_skipped_fields(void **state)
{
    struct fixture *fx = *state;
    struct pp_codec_limits lim;
    pp_codec_limits_defaults(&lim);
    struct pp_event ev;
    unsigned char wire[2048];
    size_t len = frame(vec("deal_v2"), wire, sizeof(wire));
    char detail[256] = "";

    /* channel_notes (300 bytes, skipped) is over a 200-byte limit. */
    lim.max_string_bytes = 200;
    struct pp_codec *small = pp_codec_new(fx->cat, &lim);
    assert_int_equal(pp_codec_decode(small, wire, len, &ev, NULL, detail, sizeof(detail)),
                     PP_DECODE_TOO_LARGE);
    assert_non_null(strstr(detail, "channel_notes"));
    pp_codec_destroy(small);

    /* 3 tags + 3 attrs = 6 items. */
    pp_codec_limits_defaults(&lim);
    lim.max_items = 5;
    small = pp_codec_new(fx->cat, &lim);
    assert_int_equal(pp_codec_decode(small, wire, len, &ev, NULL, detail, sizeof(detail)),
                     PP_DECODE_TOO_LARGE);
    pp_codec_destroy(small);
    lim.max_items = 6;
    small = pp_codec_new(fx->cat, &lim);
    assert_int_equal(pp_codec_decode(small, wire, len, &ev, NULL, detail, sizeof(detail)),
                     PP_DECODE_OK);
    pp_codec_destroy(small);
}

static void test_plan_is_compiled_once(void **state)
{
    struct fixture *fx = *state;
    struct pp_event ev;
    expect_ok(fx, "deal_v2", &ev);
    struct pp_schema_entry *e = pp_schema_catalog_get(fx->cat, vec("deal_v2")->id);
    assert_non_null(e);
    void *plan = e->plan;
    assert_non_null(plan);
    for (int i = 0; i < 100; i++) {
        expect_ok(fx, "deal_v2", &ev);
    }
    assert_ptr_equal(e->plan, plan);
}

static void test_catalog_add_refuses(void **state)
{
    struct fixture *fx = *state;
    char err[256];
    assert_int_equal(pp_schema_catalog_add(fx->cat, 101, "\"long\"", err, sizeof(err)), -1);
    assert_int_equal(pp_schema_catalog_add(fx->cat, 999, "{not json", err, sizeof(err)), -1);
    assert_null(pp_schema_catalog_get(fx->cat, 999));
    /* Without a registry an unknown id is unknown at once. */
    struct pp_schema_entry *e = NULL;
    assert_int_equal(pp_schema_catalog_lookup(fx->cat, 12345, &e, err, sizeof(err)),
                     PP_SCHEMA_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_support_v0_gets_reader_defaults),
        cmocka_unit_test(test_deal_v2_skips_new_fields_and_defaults_symbols),
        cmocka_unit_test(test_license_promotions_and_unions),
        cmocka_unit_test(test_unresolvable_writers),
        cmocka_unit_test(test_every_prefix_of_every_vector_fails_cleanly),
        cmocka_unit_test(test_limits_apply_to_skipped_fields),
        cmocka_unit_test(test_plan_is_compiled_once),
        cmocka_unit_test(test_catalog_add_refuses),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
