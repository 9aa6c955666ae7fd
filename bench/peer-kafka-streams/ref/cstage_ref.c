/*
 * cstage_ref.c — the reference output for the Kafka Streams peer: runs
 * partnerpulse's own customers stages (processors/model/stage.h) over an
 * event file, partitioned like the peer's repartition topic (Kafka's
 * murmur2 of the customer id, N partitions), and prints every exchange
 * record they write except EOD markers, one per line as the hex of
 * pp_xrec_encode's bytes.
 *
 * Why a separate program and not the runtime: it gives the exact records
 * partnerpulse's customers stage writes for an input read in file order,
 * with the watermark at the newest event time so far (what a runtime whose
 * sources all keep pace sees), with no broker involved: run.sh compares the
 * peer's assessments with these record by record. EOD markers are left out
 * because their number depends on how often the watermark moves.
 *
 * Usage: cstage_ref EVENTFILE PARTITIONS
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventfile.h"
#include "ptime.h"
#include "stage.h"

/* Kafka's Utils.murmur2 (seed 0x9747b28c), as the Java default partitioner
 * and the peer's StreamPartitioner use it. */
static int32_t murmur2(const uint8_t *data, size_t length)
{
    const uint32_t m = 0x5bd1e995u;
    const int r = 24;
    uint32_t h = 0x9747b28cu ^ (uint32_t)length;
    size_t length4 = length / 4;
    for (size_t i = 0; i < length4; i++) {
        size_t i4 = i * 4;
        uint32_t k = (uint32_t)data[i4] | ((uint32_t)data[i4 + 1] << 8) |
                     ((uint32_t)data[i4 + 2] << 16) | ((uint32_t)data[i4 + 3] << 24);
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (length % 4) {
    case 3:
        h ^= (uint32_t)data[(length & ~(size_t)3) + 2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)data[(length & ~(size_t)3) + 1] << 8;
        /* fall through */
    case 1:
        h ^= (uint32_t)data[length & ~(size_t)3];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int32_t)h;
}

static void print_rec(const struct pp_xrec *x, void *opaque)
{
    (void)opaque;
    if (x->kind == PP_XREC_EOD) {
        return;
    }
    uint8_t buf[PP_XREC_MAX_BYTES];
    size_t n = pp_xrec_encode(x, buf, sizeof(buf));
    for (size_t i = 0; i < n; i++) {
        printf("%02x", buf[i]);
    }
    putchar('\n');
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: cstage_ref EVENTFILE PARTITIONS\n");
        return 2;
    }
    uint32_t n = (uint32_t)strtoul(argv[2], NULL, 10);
    if (n == 0 || n > 1024) {
        fprintf(stderr, "cstage_ref: PARTITIONS must be 1..1024\n");
        return 2;
    }
    char err[512];
    struct pp_eventfile_reader *rd = pp_eventfile_open(argv[1], err, sizeof(err));
    if (rd == NULL) {
        fprintf(stderr, "cstage_ref: %s\n", err);
        return 1;
    }
    struct pp_model_conf conf;
    pp_model_conf_defaults(&conf);
    struct pp_cstage **st = calloc(n, sizeof(*st));
    for (uint32_t i = 0; i < n; i++) {
        st[i] = pp_cstage_new(&conf, i, n);
    }
    struct pp_event ev;
    int64_t wm = INT64_MIN;
    unsigned long events = 0, bad = 0;
    for (;;) {
        enum pp_eventfile_rc rc = pp_eventfile_next(rd, &ev, err, sizeof(err));
        if (rc == PP_EVENTFILE_EOF) {
            break;
        }
        if (rc == PP_EVENTFILE_BAD_LINE) {
            bad++;
            continue;
        }
        if (rc != PP_EVENTFILE_OK) {
            fprintf(stderr, "cstage_ref: %s\n", err);
            return 1;
        }
        const char *cid = pp_event_customer_id(&ev);
        int32_t h = murmur2((const uint8_t *)cid, strlen(cid));
        uint32_t p = (uint32_t)(h & 0x7fffffff) % n;
        pp_cstage_apply(st[p], &ev);
        events++;
        if (ev.occurred_at_ms > wm) {
            wm = ev.occurred_at_ms;
            for (uint32_t i = 0; i < n; i++) {
                pp_cstage_advance(st[i], wm, print_rec, NULL);
            }
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        pp_cstage_advance(st[i], wm, print_rec, NULL);
        const struct pp_model_stats *s = pp_cstage_stats(st[i]);
        fprintf(stderr,
                "cstage_ref: partition %u: too_late %llu duplicates %llu skewed %llu days %llu\n",
                i, (unsigned long long)s->too_late, (unsigned long long)s->duplicates,
                (unsigned long long)s->skewed, (unsigned long long)s->days_evaluated);
        pp_cstage_destroy(st[i]);
    }
    fprintf(stderr, "cstage_ref: %lu events, %lu bad lines\n", events, bad);
    free(st);
    pp_eventfile_reader_destroy(rd);
    return 0;
}
