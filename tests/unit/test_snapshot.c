/*
 * test_snapshot.c — app/snapshot.c: round trips (empty, many records, a
 * record bigger than the write buffer), every corruption class refused
 * before the caller sees a record (each single-byte flip of a file, cuts at
 * every boundary, wrong magic, version and task), a crash before the rename
 * leaving the old snapshot intact, abort, remove, and bad task names.
 *
 * I/O: files in a fresh directory under /tmp, removed at the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snapshot.h"

struct rec {
    unsigned char *k, *v;
    size_t kl, vl;
};

struct recs {
    struct rec *r;
    size_t n, cap;
    size_t stop_at; /* cb returns nonzero at this index; SIZE_MAX = never */
};

static int collect(const void *k, size_t kl, const void *v, size_t vl, void *opaque)
{
    struct recs *rs = opaque;
    if (rs->n == rs->stop_at) {
        return 7;
    }
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 64;
        rs->r = realloc(rs->r, rs->cap * sizeof(*rs->r));
        assert_non_null(rs->r);
    }
    struct rec *r = &rs->r[rs->n++];
    r->kl = kl;
    r->vl = vl;
    r->k = malloc(kl + 1);
    r->v = malloc(vl + 1);
    assert_non_null(r->k);
    assert_non_null(r->v);
    memcpy(r->k, k, kl);
    memcpy(r->v, v, vl);
    return 0;
}

static void recs_free(struct recs *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        free(rs->r[i].k);
        free(rs->r[i].v);
    }
    free(rs->r);
    memset(rs, 0, sizeof(*rs));
    rs->stop_at = SIZE_MAX;
}

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/pp-test-snapshot-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] != '.') {
                char p[512];
                snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
                unlink(p);
            }
        }
        closedir(d);
    }
    rmdir(dir);
    return 0;
}

/* Record i of a deterministic data set: key "k<i>", value of i % 97 bytes
 * (some empty), every 10th key empty. */
static size_t make_rec(size_t i, char *k, size_t kcap, unsigned char *v)
{
    if (i % 10 == 3) {
        k[0] = '\0';
    }
    else {
        snprintf(k, kcap, "k%zu", i);
    }
    size_t vl = i % 97;
    for (size_t j = 0; j < vl; j++) {
        v[j] = (unsigned char)(i * 31 + j);
    }
    return vl;
}

static void write_snapshot(const char *task, int64_t offset, size_t n)
{
    char e[512];
    struct pp_snapshot_writer *w = pp_snapshot_begin(dir, task, offset, e, sizeof(e));
    assert_non_null(w);
    for (size_t i = 0; i < n; i++) {
        char k[32];
        unsigned char v[128];
        size_t vl = make_rec(i, k, sizeof(k), v);
        assert_int_equal(pp_snapshot_put(w, k, strlen(k), v, vl), 0);
    }
    assert_int_equal(pp_snapshot_commit(w, e, sizeof(e)), 0);
}

static void assert_data_set(const struct recs *rs, size_t n)
{
    assert_int_equal(rs->n, n);
    for (size_t i = 0; i < n; i++) {
        char k[32];
        unsigned char v[128];
        size_t vl = make_rec(i, k, sizeof(k), v);
        assert_int_equal(rs->r[i].kl, strlen(k));
        assert_memory_equal(rs->r[i].k, k, strlen(k));
        assert_int_equal(rs->r[i].vl, vl);
        if (vl) {
            assert_memory_equal(rs->r[i].v, v, vl);
        }
    }
}

static int file_exists(const char *name)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    struct stat sb;
    return stat(p, &sb) == 0;
}

static unsigned char *read_file(const char *name, size_t *size)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return b;
}

static void write_file(const char *name, const unsigned char *b, size_t n)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* Loads task and expects -1 with errstr containing why, cb never called. */
static void assert_refused(const char *task, const char *why)
{
    struct recs rs = {.stop_at = SIZE_MAX};
    char e[512] = "";
    int64_t off = 12345;
    int rc = pp_snapshot_load(dir, task, &off, collect, &rs, e, sizeof(e));
    if (rc != -1 || (why && strstr(e, why) == NULL)) {
        fail_msg("load of %s: rc=%d errstr='%s', wanted -1 and '%s'", task, rc, e, why ? why : "");
    }
    assert_int_equal(rs.n, 0);
    assert_true(off == 12345);
    recs_free(&rs);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct recs rs = {.stop_at = SIZE_MAX};
    char e[512];
    int64_t off = 0;

    write_snapshot("customers-0", 424242, 5000);
    assert_int_equal(pp_snapshot_load(dir, "customers-0", &off, collect, &rs, e, sizeof(e)), 1);
    assert_true(off == 424242);
    assert_data_set(&rs, 5000);
    assert_false(file_exists("customers-0.snap.tmp"));
    recs_free(&rs);

    /* Empty state, the "beginning" logical offset. */
    write_snapshot("partners-0", -2, 0);
    assert_int_equal(pp_snapshot_load(dir, "partners-0", &off, collect, &rs, e, sizeof(e)), 1);
    assert_true(off == -2);
    assert_int_equal(rs.n, 0);

    /* Replacing an existing snapshot. */
    write_snapshot("customers-0", 7, 3);
    assert_int_equal(pp_snapshot_load(dir, "customers-0", &off, collect, &rs, e, sizeof(e)), 1);
    assert_true(off == 7);
    assert_data_set(&rs, 3);
    recs_free(&rs);
}

static void test_big_record(void **state)
{
    (void)state;
    /* Bigger than the writer's 1 MiB buffer, between small ones. */
    size_t big = (5u << 20) / 2;
    unsigned char *v = malloc(big);
    assert_non_null(v);
    for (size_t i = 0; i < big; i++) {
        v[i] = (unsigned char)(i * 7 + 3);
    }
    char e[512];
    struct pp_snapshot_writer *w = pp_snapshot_begin(dir, "t", 1, e, sizeof(e));
    assert_non_null(w);
    assert_int_equal(pp_snapshot_put(w, "a", 1, "x", 1), 0);
    assert_int_equal(pp_snapshot_put(w, "big", 3, v, big), 0);
    assert_int_equal(pp_snapshot_put(w, "z", 1, "", 0), 0);
    assert_int_equal(pp_snapshot_commit(w, e, sizeof(e)), 0);

    struct recs rs = {.stop_at = SIZE_MAX};
    int64_t off;
    assert_int_equal(pp_snapshot_load(dir, "t", &off, collect, &rs, e, sizeof(e)), 1);
    assert_int_equal(rs.n, 3);
    assert_int_equal(rs.r[1].vl, big);
    assert_memory_equal(rs.r[1].v, v, big);
    assert_memory_equal(rs.r[2].k, "z", 1);
    assert_int_equal(rs.r[2].vl, 0);
    recs_free(&rs);
    free(v);
}

static void test_missing(void **state)
{
    (void)state;
    char e[512];
    int64_t off = 99;
    assert_int_equal(pp_snapshot_load(dir, "nothing-here", &off, collect, NULL, e, sizeof(e)), 0);
    assert_int_equal(pp_snapshot_load("/nonexistent/dir", "t", &off, collect, NULL, e, sizeof(e)),
                     0);
    assert_true(off == 99);
}

static void test_every_byte_flip(void **state)
{
    (void)state;
    write_snapshot("flip", 1000, 4);
    size_t n;
    unsigned char *orig = read_file("flip.snap", &n);
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            unsigned char *b = malloc(n);
            assert_non_null(b);
            memcpy(b, orig, n);
            b[i] ^= (unsigned char)(1u << bit);
            write_file("flip.snap", b, n);
            free(b);
            assert_refused("flip", NULL);
        }
    }
    /* And the classes by name. */
    unsigned char *b = malloc(n);
    assert_non_null(b);
    memcpy(b, orig, n);
    b[55] ^= 0x10; /* record 1's key "k1": only the crc sees it */
    write_file("flip.snap", b, n);
    assert_refused("flip", "crc mismatch");

    memcpy(b, orig, n);
    b[0] = 'X';
    write_file("flip.snap", b, n);
    assert_refused("flip", "bad magic");

    memcpy(b, orig, n);
    b[8] = 2; /* version 2 */
    write_file("flip.snap", b, n);
    assert_refused("flip", "format version 2");

    write_file("flip.snap", orig, n);
    struct recs rs = {.stop_at = SIZE_MAX};
    char e[512];
    int64_t off;
    assert_int_equal(pp_snapshot_load(dir, "flip", &off, collect, &rs, e, sizeof(e)), 1);
    recs_free(&rs);
    free(b);
    free(orig);
}

static void test_truncated(void **state)
{
    (void)state;
    write_snapshot("cut", 5, 20);
    size_t n;
    unsigned char *orig = read_file("cut.snap", &n);
    /* Header: magic 8, version 4, task_len 4, "cut" 3, offset 8, count 8 = 35. */
    size_t cuts[] = {0,  1,  7,  8,  11,    15,    18,    26,    34,
                     35, 36, 43, 44, n / 2, n - 5, n - 4, n - 3, n - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        write_file("cut.snap", orig, cuts[i]);
        assert_refused("cut", "truncated");
    }
    /* Garbage appended after a valid file. */
    unsigned char *b = malloc(n + 3);
    assert_non_null(b);
    memcpy(b, orig, n);
    memcpy(b + n, "abc", 3);
    write_file("cut.snap", b, n + 3);
    assert_refused("cut", NULL);
    free(b);
    free(orig);
}

static void test_task_mismatch(void **state)
{
    (void)state;
    write_snapshot("customers-1", 5, 2);
    size_t n;
    unsigned char *b = read_file("customers-1.snap", &n);
    write_file("customers-2.snap", b, n);
    assert_refused("customers-2", "task mismatch");
    free(b);
}

static void test_crash_before_rename(void **state)
{
    (void)state;
    char e[512];
    struct recs rs = {.stop_at = SIZE_MAX};
    int64_t off;
    write_snapshot("crash", 100, 50);

    /* A writer killed mid-way (after several buffer flushes). */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct pp_snapshot_writer *w = pp_snapshot_begin(dir, "crash", 200, e, sizeof(e));
        if (w == NULL) {
            _exit(1);
        }
        static unsigned char v[300];
        for (int i = 0; i < 20000; i++) {
            pp_snapshot_put(w, "key", 3, v, sizeof(v));
        }
        raise(SIGKILL);
        _exit(2);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_true(file_exists("crash.snap.tmp"));
    assert_int_equal(pp_snapshot_load(dir, "crash", &off, collect, &rs, e, sizeof(e)), 1);
    assert_true(off == 100);
    assert_data_set(&rs, 50);
    recs_free(&rs);

    /* A crash after the new file was complete but before the rename: the
     * .tmp is a whole, valid snapshot, and still the old one is loaded. */
    write_snapshot("other", 300, 9);
    size_t n;
    unsigned char *b = read_file("other.snap", &n);
    write_file("crash.snap.tmp", b, n);
    free(b);
    assert_int_equal(pp_snapshot_load(dir, "crash", &off, collect, &rs, e, sizeof(e)), 1);
    assert_true(off == 100);
    recs_free(&rs);

    /* The next writer replaces the leftover .tmp. */
    write_snapshot("crash", 400, 11);
    assert_false(file_exists("crash.snap.tmp"));
    assert_int_equal(pp_snapshot_load(dir, "crash", &off, collect, &rs, e, sizeof(e)), 1);
    assert_true(off == 400);
    assert_data_set(&rs, 11);
    recs_free(&rs);
}

static void test_abort_and_remove(void **state)
{
    (void)state;
    char e[512];
    struct recs rs = {.stop_at = SIZE_MAX};
    int64_t off;
    write_snapshot("ab", 1, 5);
    struct pp_snapshot_writer *w = pp_snapshot_begin(dir, "ab", 2, e, sizeof(e));
    assert_non_null(w);
    assert_int_equal(pp_snapshot_put(w, "k", 1, "v", 1), 0);
    assert_true(file_exists("ab.snap.tmp"));
    pp_snapshot_abort(w);
    pp_snapshot_abort(NULL);
    assert_false(file_exists("ab.snap.tmp"));
    assert_int_equal(pp_snapshot_load(dir, "ab", &off, collect, &rs, e, sizeof(e)), 1);
    assert_true(off == 1);
    assert_data_set(&rs, 5);
    recs_free(&rs);

    /* A callback that stops: -1, offset untouched. */
    rs.stop_at = 2;
    off = -9;
    assert_int_equal(pp_snapshot_load(dir, "ab", &off, collect, &rs, e, sizeof(e)), -1);
    assert_non_null(strstr(e, "refused by the caller"));
    assert_true(off == -9);
    assert_int_equal(rs.n, 2);
    recs_free(&rs);

    assert_int_equal(pp_snapshot_remove(dir, "ab"), 0);
    assert_int_equal(pp_snapshot_load(dir, "ab", &off, collect, &rs, e, sizeof(e)), 0);
    assert_int_equal(pp_snapshot_remove(dir, "ab"), 0);
}

static void test_bad_names(void **state)
{
    (void)state;
    char e[512];
    const char *bad[] = {"", ".hidden", "a/b", "../x", "sp ace", "tab\t"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_null(pp_snapshot_begin(dir, bad[i], 0, e, sizeof(e)));
        assert_non_null(strstr(e, "not a file name"));
        int64_t off;
        assert_int_equal(pp_snapshot_load(dir, bad[i], &off, collect, NULL, e, sizeof(e)), -1);
    }
    assert_null(pp_snapshot_begin("/nonexistent/dir", "t", 0, e, sizeof(e)));
    assert_non_null(strstr(e, "No such file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_byte_flip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_before_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_and_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
