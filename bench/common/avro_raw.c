/*
 * avro_raw.c — raw avro-c decode speed (avro_raw.h), shared by the
 * benchmarks so that each compares with the same yardstick.
 */
#include "avro_raw.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "codec.h"

#define MAX_WRITERS 16

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double pp_bench_avro_raw_rate(const struct pp_bench_rec *recs, size_t n, double secs)
{
    /* One generic value per distinct writer schema, made before timing:
     * a consumer keeps one per schema as well. */
    avro_schema_t writers[MAX_WRITERS];
    avro_value_iface_t *ifaces[MAX_WRITERS];
    avro_value_t values[MAX_WRITERS];
    size_t nw = 0;
    size_t *which = malloc((n ? n : 1) * sizeof(size_t));
    if (which == NULL) {
        fprintf(stderr, "avro_raw: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        size_t w = 0;
        while (w < nw && writers[w] != recs[i].writer) {
            w++;
        }
        if (w == nw) {
            if (nw == MAX_WRITERS) {
                fprintf(stderr, "avro_raw: more than %d writer schemas\n", MAX_WRITERS);
                exit(1);
            }
            writers[nw] = recs[i].writer;
            ifaces[nw] = avro_generic_class_from_schema(recs[i].writer);
            avro_generic_value_new(ifaces[nw], &values[nw]);
            nw++;
        }
        which[i] = w;
    }
    avro_reader_t reader = avro_reader_memory("", 0);
    size_t done = 0;
    double t0 = now_s(), t;
    do {
        for (size_t i = 0; i < n; i++) {
            avro_value_t *v = &values[which[i]];
            avro_value_reset(v);
            avro_reader_memory_set_source(reader, (const char *)recs[i].buf + PP_WIRE_HEADER,
                                          (int64_t)(recs[i].len - PP_WIRE_HEADER));
            if (avro_value_read(reader, v) != 0) {
                fprintf(stderr, "avro-c cannot read record %zu: %s\n", i, avro_strerror());
                exit(1);
            }
        }
        done += n;
        t = now_s();
    } while (t - t0 < secs && n > 0);
    avro_reader_free(reader);
    for (size_t w = 0; w < nw; w++) {
        avro_value_decref(&values[w]);
        avro_value_iface_decref(ifaces[w]);
    }
    free(which);
    return t > t0 ? (double)done / (t - t0) : 0.0;
}
