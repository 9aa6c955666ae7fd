/*
 * test_watchdog.c — the shutdown bound (app/watchdog.h), in child
 * processes: an armed watchdog ends a blocked process with its exit code
 * and one error line naming the bound; a disarmed one does nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "watchdog.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Runs the child with stderr into a pipe; returns its wait status, the
 * seconds it took and what it wrote. */
static int run_child(void (*body)(void), double *took, char *out, size_t out_size)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    double t0 = now_s();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], STDERR_FILENO);
        close(fd[0]);
        body();
        _exit(0);
    }
    close(fd[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < out_size && (r = read(fd[0], out + n, out_size - 1 - n)) > 0) {
        n += (size_t)r;
    }
    out[n] = '\0';
    close(fd[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    *took = now_s() - t0;
    return status;
}

static void blocked_past_the_bound(void)
{
    pp_watchdog_arm(200, "processing.shutdown_timeout", 7);
    sleep(5); /* a transaction call that does not return */
}

static void disarmed_in_time(void)
{
    pp_watchdog_arm(200, "processing.shutdown_timeout", 7);
    pp_watchdog_disarm();
    usleep(400 * 1000);
}

static void test_fires(void **state)
{
    (void)state;
    char out[1024];
    double took;
    int status = run_child(blocked_past_the_bound, &took, out, sizeof(out));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 7);
    assert_true(took >= 0.19 && took < 3.0);
    assert_non_null(strstr(out, "level=error msg=\"shutdown did not finish in time"));
    assert_non_null(strstr(out, "bound=processing.shutdown_timeout timeout_ms=200 exit=7\n"));
    assert_int_equal(strncmp(out, "ts=", 3), 0);
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1); /* one line */
}

static void test_disarmed(void **state)
{
    (void)state;
    char out[1024];
    double took;
    int status = run_child(disarmed_in_time, &took, out, sizeof(out));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fires),
        cmocka_unit_test(test_disarmed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
