/*
 * fuzz_decode.c — libFuzzer target for the wire-format decoder
 * (pp_codec_decode): whatever bytes a Kafka record carries must end in a
 * decoded, validated event or a reason, without a crash, a leak, an
 * out-of-bounds read or undefined behaviour (the target is built with ASan
 * and UBSan).
 *
 * The catalog holds the local schemas (ids 1-4) and the writer schemas of
 * tests/unit/vectors (ids 101-106: older and newer versions with skipped
 * records, arrays, maps, unions, fixed and promotions), so mutations of the
 * schema id reach every resolution path. Seeds: tests/fuzz/corpus (run.sh
 * writes them with `fuzz_decode --write-seeds DIR`, from valid encoded
 * events and the vectors).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "ptime.h"
#include "../unit/vectors/resolve_vectors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct pp_schema_catalog *cat;
static struct pp_codec *codec;

static void init(void)
{
    char err[256];
    cat = pp_schema_catalog_new(err, sizeof(err));
    if (cat == NULL) {
        fprintf(stderr, "catalog: %s\n", err);
        abort();
    }
    for (size_t i = 0; i < sizeof(resolve_vectors) / sizeof(resolve_vectors[0]); i++) {
        if (pp_schema_catalog_get(cat, resolve_vectors[i].id) == NULL &&
            pp_schema_catalog_add(cat, resolve_vectors[i].id, resolve_vectors[i].schema, err,
                                  sizeof(err)) != 0) {
            fprintf(stderr, "vector schema: %s\n", err);
            abort();
        }
    }
    struct pp_codec_limits lim;
    pp_codec_limits_defaults(&lim);
    lim.max_string_bytes = 4096; /* small limits: the fuzzer reaches them */
    lim.max_items = 1000;
    codec = pp_codec_new(cat, &lim);
    if (codec == NULL) {
        abort();
    }
}

static void write_seed(const char *dir, const char *name, const void *buf, size_t len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (fp == NULL || fwrite(buf, 1, len, fp) != len) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(fp);
}

/* Valid encoded events of every type (all optional fields present) and the
 * framed vectors. */
static void write_seeds(const char *dir)
{
    char err[256];
    struct pp_event ev;
    static const enum pp_event_type types[] = {PP_EV_DEAL, PP_EV_CONSUMPTION, PP_EV_SUPPORT};
    for (size_t t = 0; t < 3; t++) {
        memset(&ev, 0, sizeof(ev));
        ev.type = types[t];
        snprintf(ev.event_id, sizeof(ev.event_id), "E-seed-%zu", t);
        ev.occurred_at_ms = pp_day_to_ms(pp_day_from_civil(2025, 7, 1)) + 3600000;
        if (ev.type == PP_EV_DEAL) {
            struct pp_deal *d = &ev.u.deal;
            snprintf(d->deal_id, sizeof(d->deal_id), "D-1");
            snprintf(d->partner_id, sizeof(d->partner_id), "P-1");
            snprintf(d->customer_id, sizeof(d->customer_id), "C-1");
            snprintf(d->product_id, sizeof(d->product_id), "ACME-SUITE");
            snprintf(d->currency, sizeof(d->currency), "USD");
            snprintf(d->fiscal_quarter, sizeof(d->fiscal_quarter), "2025-Q3");
            d->event_type = PP_DEAL_CLOSED_WON;
            d->kind = PP_KIND_COMMIT;
            d->close_date = 20270;
            d->has_start_date = true;
            d->start_date = 20271;
            d->term_months = 12;
            d->seats = 10;
            d->amount = 100000;
            d->has_list_amount = true;
            d->list_amount = 120000;
            d->has_discount_pct = true;
            d->discount_pct = 0.2;
            d->has_commit_units = true;
            d->commit_units = 5000;
            d->has_quarter_end = true;
            d->quarter_end = true;
        }
        else if (ev.type == PP_EV_CONSUMPTION) {
            struct pp_consumption *c = &ev.u.consumption;
            snprintf(c->customer_id, sizeof(c->customer_id), "C-1");
            snprintf(c->product_id, sizeof(c->product_id), "ACME-DATA");
            c->as_of = 20270;
            c->licenses_entitled = 50;
            c->licenses_active = 40;
            c->has_consumption_units = true;
            c->consumption_units = 12.5;
            c->has_period_start = true;
            c->period_start = 20240;
            c->has_period_end = true;
            c->period_end = 20270;
        }
        else {
            struct pp_support *s = &ev.u.support;
            snprintf(s->ticket_id, sizeof(s->ticket_id), "T-1");
            snprintf(s->customer_id, sizeof(s->customer_id), "C-1");
            s->has_product_id = true;
            snprintf(s->product_id, sizeof(s->product_id), "ACME-SUITE");
            s->event_type = PP_TICKET_CSAT;
            s->severity = 2;
            s->has_csat_score = true;
            s->csat_score = 4;
            s->has_vendor_incident_id = true;
            snprintf(s->vendor_incident_id, sizeof(s->vendor_incident_id), "INC-1");
        }
        size_t len = 0;
        const void *wire = pp_codec_encode_event(codec, &ev, &len, err, sizeof(err));
        if (wire == NULL) {
            fprintf(stderr, "encode: %s\n", err);
            exit(1);
        }
        char name[64];
        snprintf(name, sizeof(name), "event-%s", pp_event_type_name(ev.type));
        write_seed(dir, name, wire, len);
    }
    for (size_t i = 0; i < sizeof(resolve_vectors) / sizeof(resolve_vectors[0]); i++) {
        const struct resolve_vector *v = &resolve_vectors[i];
        unsigned char buf[4096];
        buf[0] = 0;
        buf[1] = (unsigned char)((uint32_t)v->id >> 24);
        buf[2] = (unsigned char)((uint32_t)v->id >> 16);
        buf[3] = (unsigned char)((uint32_t)v->id >> 8);
        buf[4] = (unsigned char)v->id;
        memcpy(buf + 5, v->body, v->len);
        char name[96];
        snprintf(name, sizeof(name), "vector-%s", v->name);
        write_seed(dir, name, buf, v->len + 5);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    init();
    for (int i = 1; i + 1 < *argc; i++) {
        if (strcmp((*argv)[i], "--write-seeds") == 0) {
            write_seeds((*argv)[i + 1]);
            pp_codec_destroy(codec);
            pp_schema_catalog_destroy(cat);
            exit(0);
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pp_event ev;
    char detail[256];
    int32_t id;
    enum pp_decode_err err = pp_codec_decode(codec, data, size, &ev, &id, detail, sizeof(detail));
    if (err == PP_DECODE_SCHEMA_UNAVAILABLE) {
        abort(); /* no registry here: impossible */
    }
    if (err == PP_DECODE_OK) {
        /* What the processors rely on: terminated identifiers, a known type. */
        if (memchr(ev.event_id, '\0', sizeof(ev.event_id)) == NULL || ev.event_id[0] == '\0' ||
            (ev.type != PP_EV_DEAL && ev.type != PP_EV_CONSUMPTION && ev.type != PP_EV_SUPPORT)) {
            abort();
        }
    }
    else if (detail[0] == '\0' || memchr(detail, '\0', sizeof(detail)) == NULL) {
        abort(); /* every rejection says why */
    }
    return 0;
}
