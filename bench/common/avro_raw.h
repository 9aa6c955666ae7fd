/*
 * avro_raw.h — avro-c's raw decode speed over a set of Confluent-framed
 * records: the yardstick both bench_decode and bench_processor hold
 * partnerpulse's decode against (issue #7: >= 40 % of it). One reused
 * generic value per writer schema, avro_value_read of each body, no
 * validation and no mapping: the least any consumer of these bytes does.
 */
#ifndef PP_BENCH_AVRO_RAW_H
#define PP_BENCH_AVRO_RAW_H

#include <stddef.h>

#include <avro.h>

/* One framed record (wire header included) and its writer's schema. */
struct pp_bench_rec {
    const unsigned char *buf;
    size_t len;
    avro_schema_t writer;
};

/* Records per second that avro_value_read reaches over recs[0, n), read
 * round-robin for about `secs` seconds. Exits the process with a message
 * when avro-c cannot read a record (the benchmark's input is broken). */
double pp_bench_avro_raw_rate(const struct pp_bench_rec *recs, size_t n, double secs);

#endif
