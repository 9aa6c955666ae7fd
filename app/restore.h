/*
 * restore.h — a non-blocking reader of one changelog partition, from an
 * offset (a snapshot's) or the beginning up to the partition's end as it is
 * when the restore starts. The runtime rebuilds a task's state with it
 * before resuming the task's input partition.
 *
 * Only committed data is read (isolation.level=read_committed): records of
 * aborted transactions are skipped by the client, and the transaction
 * markers (control records) are never delivered, so the reader's position
 * can jump past offsets no record carries. The restore is done when the
 * position reaches the end offset, whether the last offsets were records,
 * markers or aborted data.
 *
 * The end is the partition's high watermark from the first fetch response
 * (so pp_restore_new does no blocking request). Reading the end of an open
 * transaction waits for it to be committed or aborted, as read_committed
 * consumers of the task's input do too.
 *
 * Each restore has its own consumer: assign() only, never a group join,
 * never an offset commit. One thread (the caller's).
 */
#ifndef PP_APP_RESTORE_H
#define PP_APP_RESTORE_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

struct pp_restore;

/* conf: the service's consumer configuration (kafka.* keys, callbacks); it
 * is duplicated, the caller keeps and frees its own. On the copy this sets
 * isolation.level=read_committed, enable.auto.commit=false,
 * enable.auto.offset.store=false, enable.partition.eof=true,
 * auto.offset.reset=error, statistics.interval.ms=0 (the restore consumer
 * must not feed the service's lag metrics), clears group.instance.id, and
 * sets group.id=partnerpulse-restore when none is set (librdkafka's assign()
 * needs one; no group is joined). from: an offset >= 0, or
 * RD_KAFKA_OFFSET_BEGINNING. NULL + errstr on failure. */
struct pp_restore *pp_restore_new(rd_kafka_conf_t *conf, const char *topic, int32_t partition,
                                  int64_t from, char *errstr, size_t errstr_size);

/* Called once per committed record in offset order. A tombstone has v ==
 * NULL and vl == 0. k and v live until the callback returns. Nonzero stops
 * the restore with an error. */
typedef int(pp_restore_cb)(const void *k, size_t kl, const void *v, size_t vl, int64_t offset,
                           void *opaque);

/* Hands up to `budget` records to cb from what the consumer has already
 * fetched, without waiting (timeout 0). Returns 1 when done (position >=
 * end; records past the end are not delivered; later calls return 1 at
 * once), 0 when there is more to do, -1 on error with errstr: offset out of
 * range (e.g. `from` beyond the end: a snapshot newer than its changelog),
 * unknown topic or partition, authorisation, a fatal client error, or cb
 * refusing a record. Transient broker errors are retried by the client and
 * do not fail the restore. When it returns 0 after budget records, more may
 * be queued already: call again without waiting for a wake-up. */
int pp_restore_poll(struct pp_restore *r, int budget, pp_restore_cb *cb, void *opaque, char *errstr,
                    size_t errstr_size);

/* Wakes an event loop: writes payload to fd when the restore's queue turns
 * non-empty (rd_kafka_queue_io_event_enable on its queue). fd = -1 turns it
 * off. */
void pp_restore_io_event_enable(struct pp_restore *r, int fd, const void *payload, size_t size);

/* Progress in offsets from the start (from, or the log start) to the end:
 * *done <= *total; both 0 until the end is known (first fetch response). */
void pp_restore_progress(const struct pp_restore *r, int64_t *done, int64_t *total);

/* Records handed to the callback so far. */
int64_t pp_restore_records(const struct pp_restore *r);

/* The position: the offset after the last record read, or past the
 * transaction markers and aborted records that follow it once the reader
 * got beyond them (at the end of a done restore: >= the end). The offset a
 * snapshot of the restored state resumes from. Before anything was read:
 * `from` (RD_KAFKA_OFFSET_BEGINNING until the log start is known). */
int64_t pp_restore_next_offset(const struct pp_restore *r);

/* Closes the consumer (no group to leave: quick). NULL ok. */
void pp_restore_destroy(struct pp_restore *r);

#endif
