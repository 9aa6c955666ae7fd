/*
 * snapshot.h — local snapshots of a task's state, so that a restart restores
 * from the snapshot's changelog offset instead of the changelog's start.
 *
 * One file per task, `<dir>/<task>.snap`, replaced atomically: written to
 * `<task>.snap.tmp`, fsync'd, renamed over the old file, and the directory
 * fsync'd. A crash at any point leaves either the old snapshot or the new
 * one, never a mix; a leftover .tmp is ignored by the loader and truncated by
 * the next writer.
 *
 * The file (integers little-endian):
 *   "PPSNAP\r\n"  magic, 8 bytes (the CR/LF catches text-mode mangling)
 *   u32 version   PP_SNAPSHOT_VERSION
 *   u32 task_len, task bytes
 *   i64 offset    changelog offset to resume the restore from
 *   u64 count     number of records
 *   count x { u32 key_len, u32 value_len, key bytes, value bytes }
 *   u32 crc       zlib crc32 of every byte before it
 * Records are opaque bytes (the stores' serialised keys and values).
 *
 * A snapshot is an optimisation: any error on load means "restore from the
 * changelog's start", so the loader verifies the whole file before handing
 * out a single record.
 */
#ifndef PP_APP_SNAPSHOT_H
#define PP_APP_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#define PP_SNAPSHOT_VERSION 1
/* Task names become file names: [A-Za-z0-9._-], not starting with '.'. */
#define PP_SNAPSHOT_TASK_MAX 200

struct pp_snapshot_writer;

/* Starts `<dir>/<task>.snap.tmp` (dir must exist). NULL + errstr on failure
 * (bad task name, cannot create the file). */
struct pp_snapshot_writer *pp_snapshot_begin(const char *dir, const char *task, int64_t offset,
                                             char *errstr, size_t errstr_size);

/* Appends one record (copied into the writer's buffer; k and v are only read
 * during the call). Buffered: most calls do no I/O. Returns 0, or -1 after a
 * write error or a key/value over 4 GiB; the error is then reported by
 * pp_snapshot_commit, which fails. */
int pp_snapshot_put(struct pp_snapshot_writer *w, const void *k, size_t kl, const void *v,
                    size_t vl);

/* Completes the file and replaces `<task>.snap` atomically (durably: fsync
 * of the file and the directory). Frees w, whatever the result. Returns 0,
 * or -1 + errstr (the old snapshot, if any, is then untouched and the .tmp
 * removed). */
int pp_snapshot_commit(struct pp_snapshot_writer *w, char *errstr, size_t errstr_size);

/* Drops the snapshot being written: frees w and removes the .tmp. NULL ok. */
void pp_snapshot_abort(struct pp_snapshot_writer *w);

/* Called once per record in file order; k and v point into the loader's
 * mapping of the file and are valid during the call only. Nonzero stops. */
typedef int(pp_snapshot_cb)(const void *k, size_t kl, const void *v, size_t vl, void *opaque);

/* Loads `<dir>/<task>.snap`. Returns 1 when loaded (every record passed to
 * cb, *offset set), 0 when there is no snapshot, -1 when it is unreadable or
 * corrupt (errstr says why: bad magic, version, crc, truncated, task
 * mismatch) or cb stopped the load. The whole file is checked (crc,
 * structure) before cb sees the first record, so on a corrupt file cb is
 * never called. */
int pp_snapshot_load(const char *dir, const char *task, int64_t *offset, pp_snapshot_cb *cb,
                     void *opaque, char *errstr, size_t errstr_size);

/* Removes `<task>.snap` and any leftover .tmp. 0 (also when there was
 * none), -1 on another error. */
int pp_snapshot_remove(const char *dir, const char *task);

#endif
