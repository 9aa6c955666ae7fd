/*
 * watermark.h — stream time across input partitions.
 *
 * Records of different partitions (and topics) arrive interleaved in no
 * particular event-time order, so one "largest time seen" for the whole
 * process would close a day while a slower partition still holds events for
 * it. The watermark is therefore the smallest of the per-partition stream
 * times (each the largest event time seen on that partition), over the
 * partitions that are active. A partition that delivered nothing for
 * `idle_ms` of wall-clock time no longer holds the watermark back (the idle
 * timer of DESIGN.md §4); when every partition is idle — the input is caught
 * up — the watermark is the largest stream time of all, so the last days
 * close without new events. The watermark never goes backwards.
 *
 * Pure: wall-clock time is an argument, so tests drive it.
 */
#ifndef PP_WATERMARK_H
#define PP_WATERMARK_H

#include <stdint.h>

struct pp_watermark;

struct pp_watermark *pp_watermark_new(int64_t idle_ms);
void pp_watermark_destroy(struct pp_watermark *wm);

/* A partition was assigned (key: any stable name, e.g. "topic/3"). Until it
 * delivers or goes idle it holds the watermark where it is. */
void pp_watermark_assign(struct pp_watermark *wm, const char *key, int64_t now_ms);
/* A partition was revoked: it no longer counts. */
void pp_watermark_revoke(struct pp_watermark *wm, const char *key);
/* A record with event time event_ms arrived on the partition (assigning it
 * implicitly if needed). */
void pp_watermark_observe(struct pp_watermark *wm, const char *key, int64_t event_ms,
                          int64_t now_ms);
/* The partition reached its end (nothing more to read for now). */
void pp_watermark_caught_up(struct pp_watermark *wm, const char *key, int64_t now_ms);

/* The current watermark; INT64_MIN while nothing can be said. */
int64_t pp_watermark_get(struct pp_watermark *wm, int64_t now_ms);

/* The oldest event time an active partition may still deliver: the smallest
 * stream time over active partitions, where one that has delivered nothing
 * yet is assumed to start at the oldest event time seen anywhere. INT64_MAX
 * when no partition is active, INT64_MIN before any event. The runtime holds
 * back (pauses) partitions that run too far ahead of it. */
int64_t pp_watermark_floor(struct pp_watermark *wm, int64_t now_ms);

#endif
