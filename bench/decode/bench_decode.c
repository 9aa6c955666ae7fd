/*
 * bench_decode.c — decode throughput per core: records/s through
 * partnerpulse's full decode (wire header, schema lookup, resolution into
 * struct pp_event, bounds and domain validation) beside avro-c's raw
 * avro_value_read of the same bodies into a reused generic value (no
 * validation, no mapping), for each event type and for a newer writer
 * schema that needs resolution (skipped fields, enum defaults, promotions).
 *
 * Usage: bench_decode [SECONDS_PER_RUN] [RUNS]   (defaults 0.5 and 5)
 * Prints the median of RUNS runs. Built with the project, never run by the
 * tests (docs/schemas.md has figures).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <avro.h>

#include "avro_raw.h"
#include "codec.h"
#include "ptime.h"
#include "../../tests/unit/vectors/resolve_vectors.h"

#define NREC 1024

struct corpus {
    const char *name;
    unsigned char *buf[NREC];
    size_t len[NREC];
    avro_schema_t writer; /* for the raw avro-c reads */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void make_event(struct pp_event *ev, enum pp_event_type type, int i)
{
    memset(ev, 0, sizeof(*ev));
    ev->type = type;
    snprintf(ev->event_id, sizeof(ev->event_id), "evt-%08d-%s", i, pp_event_type_name(type));
    ev->occurred_at_ms = pp_day_to_ms(pp_day_from_civil(2025, 7, 1)) + (int64_t)i * 60000;
    switch (type) {
    case PP_EV_DEAL: {
        struct pp_deal *d = &ev->u.deal;
        snprintf(d->deal_id, sizeof(d->deal_id), "D-%06d", i);
        snprintf(d->partner_id, sizeof(d->partner_id), "P-%04d", i % 500);
        snprintf(d->customer_id, sizeof(d->customer_id), "C-%06d", i);
        snprintf(d->product_id, sizeof(d->product_id), "ACME-SUITE");
        snprintf(d->currency, sizeof(d->currency), "USD");
        snprintf(d->fiscal_quarter, sizeof(d->fiscal_quarter), "2025-Q3");
        d->event_type = PP_DEAL_CLOSED_WON;
        d->kind = (enum pp_deal_kind)(i % PP_KIND__COUNT);
        d->close_date = 20270;
        d->term_months = 12;
        d->seats = 10 + i % 90;
        d->amount = 100000 + i;
        d->has_list_amount = true;
        d->list_amount = 150000;
        d->has_discount_pct = i % 2;
        d->discount_pct = 0.1;
        break;
    }
    case PP_EV_CONSUMPTION: {
        struct pp_consumption *c = &ev->u.consumption;
        snprintf(c->customer_id, sizeof(c->customer_id), "C-%06d", i);
        snprintf(c->product_id, sizeof(c->product_id), "ACME-SUITE");
        c->as_of = 20270;
        c->licenses_entitled = 100;
        c->licenses_active = i % 100;
        break;
    }
    case PP_EV_SUPPORT: {
        struct pp_support *s = &ev->u.support;
        snprintf(s->ticket_id, sizeof(s->ticket_id), "T-%07d", i);
        snprintf(s->customer_id, sizeof(s->customer_id), "C-%06d", i);
        s->has_product_id = true;
        snprintf(s->product_id, sizeof(s->product_id), "ACME-SUITE");
        s->event_type = PP_TICKET_OPENED;
        s->severity = 1 + i % 4;
        break;
    }
    }
}

/* Records decoded per second over about `secs`, full decode. */
static double run_ours(struct pp_codec *codec, const struct corpus *c, double secs)
{
    struct pp_event ev;
    size_t n = 0;
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < NREC; i++) {
            if (pp_codec_decode_event(codec, c->buf[i], c->len[i], &ev, NULL, 0) != PP_DECODE_OK) {
                fprintf(stderr, "%s: record %d does not decode\n", c->name, i);
                exit(1);
            }
        }
        n += NREC;
        t = now_s();
    } while (t - t0 < secs);
    return (double)n / (t - t0);
}

static double run_avro(const struct corpus *c, double secs)
{
    struct pp_bench_rec recs[NREC];
    for (int i = 0; i < NREC; i++) {
        recs[i] = (struct pp_bench_rec){c->buf[i], c->len[i], c->writer};
    }
    return pp_bench_avro_raw_rate(recs, NREC, secs);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? strtod(argv[1], NULL) : 0.5;
    int runs = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 5;
    if (!(secs > 0) || runs < 1 || runs > 101) {
        fprintf(stderr, "usage: bench_decode [SECONDS_PER_RUN] [RUNS]\n");
        return 2;
    }
    char err[256];
    struct pp_schema_catalog *cat = pp_schema_catalog_new(err, sizeof(err));
    if (cat == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const struct resolve_vector *v2 = NULL;
    for (size_t i = 0; i < sizeof(resolve_vectors) / sizeof(resolve_vectors[0]); i++) {
        if (strcmp(resolve_vectors[i].name, "deal_v2_known_symbols") == 0) {
            v2 = &resolve_vectors[i];
        }
    }
    if (v2 == NULL || pp_schema_catalog_add(cat, v2->id, v2->schema, err, sizeof(err)) != 0) {
        fprintf(stderr, "deal v2: %s\n", err);
        return 1;
    }
    struct pp_codec *codec = pp_codec_new(cat, NULL);

    struct corpus corpora[4] = {{.name = "deal"},
                                {.name = "license_consumption"},
                                {.name = "support"},
                                {.name = "deal (v2 writer, resolved)"}};
    static const enum pp_event_type types[] = {PP_EV_DEAL, PP_EV_CONSUMPTION, PP_EV_SUPPORT};
    for (int t = 0; t < 3; t++) {
        corpora[t].writer = pp_schema_catalog_get(cat, (int32_t)types[t])->schema;
        for (int i = 0; i < NREC; i++) {
            struct pp_event ev;
            make_event(&ev, types[t], i);
            size_t len;
            const void *wire = pp_codec_encode_event(codec, &ev, &len, err, sizeof(err));
            if (wire == NULL) {
                fprintf(stderr, "encode: %s\n", err);
                return 1;
            }
            corpora[t].buf[i] = malloc(len);
            memcpy(corpora[t].buf[i], wire, len);
            corpora[t].len[i] = len;
        }
    }
    corpora[3].writer = pp_schema_catalog_get(cat, v2->id)->schema;
    for (int i = 0; i < NREC; i++) {
        corpora[3].len[i] = v2->len + PP_WIRE_HEADER;
        corpora[3].buf[i] = malloc(corpora[3].len[i]);
        unsigned char *p = corpora[3].buf[i];
        p[0] = 0;
        p[1] = (unsigned char)((uint32_t)v2->id >> 24);
        p[2] = (unsigned char)((uint32_t)v2->id >> 16);
        p[3] = (unsigned char)((uint32_t)v2->id >> 8);
        p[4] = (unsigned char)v2->id;
        memcpy(p + PP_WIRE_HEADER, v2->body, v2->len);
    }

    printf("decode throughput, one core, median of %d runs of %.2f s (records/s)\n", runs, secs);
    printf("%-28s %14s %14s %8s\n", "event type", "partnerpulse", "avro-c raw", "ratio");
    for (int c = 0; c < 4; c++) {
        double ours[101], raw[101];
        for (int r = 0; r < runs; r++) {
            ours[r] = run_ours(codec, &corpora[c], secs);
            raw[r] = run_avro(&corpora[c], secs);
        }
        qsort(ours, (size_t)runs, sizeof(double), cmp_double);
        qsort(raw, (size_t)runs, sizeof(double), cmp_double);
        double mo = ours[runs / 2], mr = raw[runs / 2];
        printf("%-28s %14.0f %14.0f %7.2fx\n", corpora[c].name, mo, mr, mo / mr);
        for (int i = 0; i < NREC; i++) {
            free(corpora[c].buf[i]);
        }
    }
    pp_codec_destroy(codec);
    pp_schema_catalog_destroy(cat);
    return 0;
}
