/*
 * snapshot.c — atomic local snapshots of a task's state. See snapshot.h for
 * the file format and the guarantees.
 *
 * Writing streams records through a 1 MiB buffer (one write(2) per MiB, crc
 * computed per flushed block). The record count is only known at the end,
 * so the header is written with count 0 first and rewritten in place by
 * commit; the crc of the final header is joined to the running crc of the
 * body with crc32_combine, so nothing is read back.
 *
 * Loading maps the file (MAP_POPULATE: the pages are read in one pass
 * rather than faulted one by one, ~1.5x faster on 30 MB) and checks it
 * completely (structure, then crc) before the first callback: the caller
 * builds state from the records and must not be left with half a corrupt
 * snapshot applied.
 */
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "palloc.h"

#define MAGIC     "PPSNAP\r\n"
#define MAGIC_LEN 8
#define BUF_CAP   (1u << 20)
#define REC_HDR   8u /* u32 key_len + u32 value_len */
#define TRAILER   4u /* u32 crc */
/* magic + version + task_len, then task, then offset + count */
#define HDR_FIXED (MAGIC_LEN + 4 + 4)
#define HDR_TAIL  (8 + 8)
#define PATH_CAP  4096

struct pp_snapshot_writer {
    int fd;
    char path[PATH_CAP];
    char tmp[PATH_CAP];
    char dir[PATH_CAP];
    char task[PP_SNAPSHOT_TASK_MAX + 1];
    int64_t offset;
    uint64_t count;
    size_t hdr_len;
    uLong crc_body;    /* crc of the body bytes written so far */
    uint64_t body_len; /* bytes after the header written so far */
    unsigned char *buf;
    size_t len;
    char err[PATH_CAP + 256]; /* first error, reported by commit */
};

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static int valid_task(const char *task)
{
    size_t n = strlen(task);
    if (n == 0 || n > PP_SNAPSHOT_TASK_MAX || task[0] == '.') {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = task[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            return 0;
        }
    }
    return 1;
}

static int make_paths(const char *dir, const char *task, char *path, char *tmp, char *errstr,
                      size_t errstr_size)
{
    if (!valid_task(task)) {
        snprintf(errstr, errstr_size,
                 "snapshot: task name '%s' is not a file name ([A-Za-z0-9._-], 1-%d chars)", task,
                 PP_SNAPSHOT_TASK_MAX);
        return -1;
    }
    int a = snprintf(path, PATH_CAP, "%s/%s.snap", dir, task);
    int b = snprintf(tmp, PATH_CAP, "%s/%s.snap.tmp", dir, task);
    if (a < 0 || b < 0 || a >= PATH_CAP || b >= PATH_CAP) {
        snprintf(errstr, errstr_size, "snapshot: path under %s too long", dir);
        return -1;
    }
    return 0;
}

/* Writes all of p (retrying short writes and EINTR). */
static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int pwrite_all(int fd, const unsigned char *p, size_t n, off_t at)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, at);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        n -= (size_t)w;
        at += w;
    }
    return 0;
}

static void fail(struct pp_snapshot_writer *w, const char *what)
{
    if (w->err[0] == '\0') {
        snprintf(w->err, sizeof(w->err), "snapshot %s: %s: %s", w->tmp, what, strerror(errno));
    }
}

/* Body bytes to the file, crc'd in file order. */
static int emit(struct pp_snapshot_writer *w, const unsigned char *p, size_t n)
{
    if (write_all(w->fd, p, n) != 0) {
        fail(w, "write");
        return -1;
    }
    /* crc32 takes a uInt length: feed huge direct writes in slices. */
    for (size_t off = 0; off < n;) {
        size_t k = n - off > (1u << 30) ? (1u << 30) : n - off;
        w->crc_body = crc32(w->crc_body, p + off, (uInt)k);
        off += k;
    }
    w->body_len += n;
    return 0;
}

static int flush_buf(struct pp_snapshot_writer *w)
{
    if (w->len == 0) {
        return 0;
    }
    int rc = emit(w, w->buf, w->len);
    w->len = 0;
    return rc;
}

static int append(struct pp_snapshot_writer *w, const void *p, size_t n)
{
    if (n > BUF_CAP - w->len) {
        if (flush_buf(w) != 0) {
            return -1;
        }
        if (n >= BUF_CAP) {
            return emit(w, p, n); /* a record bigger than the buffer goes straight out */
        }
    }
    if (n > 0) {
        memcpy(w->buf + w->len, p, n);
        w->len += n;
    }
    return 0;
}

/* Header bytes for w with its current count into out (hdr_len bytes). */
static void build_header(const struct pp_snapshot_writer *w, unsigned char *out)
{
    size_t tl = strlen(w->task);
    memcpy(out, MAGIC, MAGIC_LEN);
    put_u32(out + MAGIC_LEN, PP_SNAPSHOT_VERSION);
    put_u32(out + MAGIC_LEN + 4, (uint32_t)tl);
    memcpy(out + HDR_FIXED, w->task, tl);
    put_u64(out + HDR_FIXED + tl, (uint64_t)w->offset);
    put_u64(out + HDR_FIXED + tl + 8, w->count);
}

struct pp_snapshot_writer *pp_snapshot_begin(const char *dir, const char *task, int64_t offset,
                                             char *errstr, size_t errstr_size)
{
    struct pp_snapshot_writer *w = pp_xcalloc(1, sizeof(*w));
    w->fd = -1;
    if (make_paths(dir, task, w->path, w->tmp, errstr, errstr_size) != 0) {
        free(w);
        return NULL;
    }
    snprintf(w->dir, sizeof(w->dir), "%s", dir);
    snprintf(w->task, sizeof(w->task), "%s", task);
    w->offset = offset;
    w->hdr_len = HDR_FIXED + strlen(task) + HDR_TAIL;
    w->crc_body = crc32(0L, Z_NULL, 0);
    /* O_TRUNC: a .tmp left by a crash is simply overwritten. */
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        snprintf(errstr, errstr_size, "snapshot %s: %s", w->tmp, strerror(errno));
        free(w);
        return NULL;
    }
    unsigned char hdr[HDR_FIXED + PP_SNAPSHOT_TASK_MAX + HDR_TAIL];
    build_header(w, hdr);
    if (write_all(w->fd, hdr, w->hdr_len) != 0) {
        snprintf(errstr, errstr_size, "snapshot %s: write: %s", w->tmp, strerror(errno));
        pp_snapshot_abort(w);
        return NULL;
    }
    w->buf = pp_xmalloc(BUF_CAP);
    return w;
}

int pp_snapshot_put(struct pp_snapshot_writer *w, const void *k, size_t kl, const void *v,
                    size_t vl)
{
    if (w->err[0] != '\0') {
        return -1;
    }
    if (kl > UINT32_MAX || vl > UINT32_MAX) {
        snprintf(w->err, sizeof(w->err), "snapshot %s: record %" PRIu64 " over 4 GiB", w->tmp,
                 w->count);
        return -1;
    }
    unsigned char rh[REC_HDR];
    put_u32(rh, (uint32_t)kl);
    put_u32(rh + 4, (uint32_t)vl);
    if (append(w, rh, REC_HDR) != 0 || append(w, k, kl) != 0 || append(w, v, vl) != 0) {
        return -1;
    }
    w->count++;
    return 0;
}

static void writer_free(struct pp_snapshot_writer *w, int remove_tmp)
{
    if (w->fd >= 0) {
        close(w->fd);
    }
    if (remove_tmp) {
        unlink(w->tmp);
    }
    free(w->buf);
    free(w);
}

void pp_snapshot_abort(struct pp_snapshot_writer *w)
{
    if (w != NULL) {
        writer_free(w, 1);
    }
}

int pp_snapshot_commit(struct pp_snapshot_writer *w, char *errstr, size_t errstr_size)
{
    unsigned char hdr[HDR_FIXED + PP_SNAPSHOT_TASK_MAX + HDR_TAIL];
    unsigned char trailer[TRAILER];
    if (w->err[0] == '\0' && flush_buf(w) == 0) {
        build_header(w, hdr);
        uLong crc = crc32(crc32(0L, Z_NULL, 0), hdr, (uInt)w->hdr_len);
        crc = crc32_combine(crc, w->crc_body, (z_off_t)w->body_len);
        put_u32(trailer, (uint32_t)crc);
        if (pwrite_all(w->fd, hdr, w->hdr_len, 0) != 0) {
            fail(w, "write header");
        }
        else if (write_all(w->fd, trailer, TRAILER) != 0) {
            fail(w, "write crc");
        }
        else if (fsync(w->fd) != 0) {
            fail(w, "fsync");
        }
        else if (close(w->fd) != 0) {
            w->fd = -1;
            fail(w, "close");
        }
        else {
            w->fd = -1;
            if (rename(w->tmp, w->path) != 0) {
                fail(w, "rename");
            }
        }
    }
    if (w->err[0] != '\0') {
        snprintf(errstr, errstr_size, "%s", w->err);
        writer_free(w, 1);
        return -1;
    }
    /* The rename is durable only once the directory entry is on disk. */
    int rc = 0;
    int dfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        snprintf(errstr, errstr_size, "snapshot %s: fsync of the directory: %s", w->dir,
                 strerror(errno));
        rc = -1;
    }
    if (dfd >= 0) {
        close(dfd);
    }
    writer_free(w, 0);
    return rc;
}

/* Walks the records of a mapped file without calling anyone: -1 + errstr
 * when they do not exactly fill [body, end). */
static int check_structure(const unsigned char *p, size_t body, size_t end, uint64_t count,
                           const char *path, char *errstr, size_t errstr_size)
{
    size_t at = body;
    for (uint64_t i = 0; i < count; i++) {
        if (end - at < REC_HDR) {
            snprintf(errstr, errstr_size,
                     "snapshot %s: truncated (record %" PRIu64 " of %" PRIu64 ")", path, i, count);
            return -1;
        }
        uint64_t need = (uint64_t)get_u32(p + at) + get_u32(p + at + 4);
        at += REC_HDR;
        if ((uint64_t)(end - at) < need) {
            snprintf(errstr, errstr_size,
                     "snapshot %s: truncated (record %" PRIu64 " of %" PRIu64 ")", path, i, count);
            return -1;
        }
        at += (size_t)need;
    }
    if (at != end) {
        snprintf(errstr, errstr_size, "snapshot %s: %zu bytes after the last record", path,
                 end - at);
        return -1;
    }
    return 0;
}

static uLong crc_of(const unsigned char *p, size_t n)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t off = 0; off < n;) {
        size_t k = n - off > (1u << 30) ? (1u << 30) : n - off;
        crc = crc32(crc, p + off, (uInt)k);
        off += k;
    }
    return crc;
}

static int parse(const unsigned char *p, size_t size, const char *path, const char *task,
                 int64_t *offset, pp_snapshot_cb *cb, void *opaque, char *errstr,
                 size_t errstr_size)
{
    if (size < MAGIC_LEN && memcmp(p, MAGIC, size) == 0) {
        snprintf(errstr, errstr_size, "snapshot %s: truncated (magic)", path);
        return -1;
    }
    if (size < MAGIC_LEN || memcmp(p, MAGIC, MAGIC_LEN) != 0) {
        snprintf(errstr, errstr_size, "snapshot %s: bad magic (not a partnerpulse snapshot)", path);
        return -1;
    }
    if (size < HDR_FIXED) {
        snprintf(errstr, errstr_size, "snapshot %s: truncated (header)", path);
        return -1;
    }
    uint32_t version = get_u32(p + MAGIC_LEN);
    if (version != PP_SNAPSHOT_VERSION) {
        snprintf(errstr, errstr_size,
                 "snapshot %s: format version %" PRIu32 ", this build reads %d", path, version,
                 PP_SNAPSHOT_VERSION);
        return -1;
    }
    uint32_t tl = get_u32(p + MAGIC_LEN + 4);
    if (tl > PP_SNAPSHOT_TASK_MAX) {
        snprintf(errstr, errstr_size,
                 "snapshot %s: corrupt header (task name of %" PRIu32 " bytes)", path, tl);
        return -1;
    }
    size_t body = HDR_FIXED + tl + HDR_TAIL;
    if (size < body + TRAILER) {
        snprintf(errstr, errstr_size, "snapshot %s: truncated (header)", path);
        return -1;
    }
    uint64_t count = get_u64(p + HDR_FIXED + tl + 8);
    size_t end = size - TRAILER;
    if (check_structure(p, body, end, count, path, errstr, errstr_size) != 0) {
        return -1;
    }
    uint32_t want = get_u32(p + end);
    uint32_t got = (uint32_t)crc_of(p, end);
    if (want != got) {
        snprintf(errstr, errstr_size,
                 "snapshot %s: crc mismatch (file says %08" PRIx32 ", content is %08" PRIx32 ")",
                 path, want, got);
        return -1;
    }
    if (tl != strlen(task) || memcmp(p + HDR_FIXED, task, tl) != 0) {
        snprintf(errstr, errstr_size, "snapshot %s: task mismatch (the file is for task '%.*s')",
                 path, (int)tl, (const char *)(p + HDR_FIXED));
        return -1;
    }
    size_t at = body;
    for (uint64_t i = 0; i < count; i++) {
        size_t kl = get_u32(p + at);
        size_t vl = get_u32(p + at + 4);
        at += REC_HDR;
        int stop = cb ? cb(p + at, kl, p + at + kl, vl, opaque) : 0;
        if (stop != 0) {
            snprintf(errstr, errstr_size,
                     "snapshot %s: record %" PRIu64 " refused by the caller (%d)", path, i, stop);
            return -1;
        }
        at += kl + vl;
    }
    *offset = (int64_t)get_u64(p + HDR_FIXED + tl);
    return 1;
}

int pp_snapshot_load(const char *dir, const char *task, int64_t *offset, pp_snapshot_cb *cb,
                     void *opaque, char *errstr, size_t errstr_size)
{
    char path[PATH_CAP], tmp[PATH_CAP];
    if (make_paths(dir, task, path, tmp, errstr, errstr_size) != 0) {
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            return 0;
        }
        snprintf(errstr, errstr_size, "snapshot %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        snprintf(errstr, errstr_size, "snapshot %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (sb.st_size == 0) {
        snprintf(errstr, errstr_size, "snapshot %s: truncated (empty file)", path);
        close(fd);
        return -1;
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        snprintf(errstr, errstr_size, "snapshot %s: too large", path);
        close(fd);
        return -1;
    }
    size_t size = (size_t)sb.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        snprintf(errstr, errstr_size, "snapshot %s: mmap: %s", path, strerror(errno));
        return -1;
    }
    madvise(map, size, MADV_SEQUENTIAL);
    int rc = parse(map, size, path, task, offset, cb, opaque, errstr, errstr_size);
    munmap(map, size);
    return rc;
}

int pp_snapshot_remove(const char *dir, const char *task)
{
    char path[PATH_CAP], tmp[PATH_CAP], e[256];
    if (make_paths(dir, task, path, tmp, e, sizeof(e)) != 0) {
        return -1;
    }
    int rc = 0;
    if (unlink(path) != 0 && errno != ENOENT) {
        rc = -1;
    }
    if (unlink(tmp) != 0 && errno != ENOENT) {
        rc = -1;
    }
    return rc;
}
