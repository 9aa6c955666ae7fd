/*
 * watchdog.c — see watchdog.h.
 *
 * The line is formatted when the watchdog is armed (with the time it will
 * fire) because the signal handler may only call async-signal-safe
 * functions: write(2) and _exit(2).
 */
#include "watchdog.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char line[512];
static size_t line_len;
static volatile sig_atomic_t code = 1;

static void on_alarm(int sig)
{
    (void)sig;
    ssize_t w = write(STDERR_FILENO, line, line_len);
    (void)w;
    _exit(code);
}

int pp_watchdog_arm(int64_t timeout_ms, const char *what, int exit_code)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    time_t at_s = now.tv_sec + (time_t)(timeout_ms / 1000);
    long at_ms = now.tv_nsec / 1000000 + (long)(timeout_ms % 1000);
    if (at_ms >= 1000) {
        at_s++;
        at_ms -= 1000;
    }
    struct tm tm;
    gmtime_r(&at_s, &tm);
    int n = snprintf(line, sizeof(line),
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=error msg=\"shutdown did not "
                     "finish in time: exiting without finishing it (nothing is lost under "
                     "exactly_once: the open transaction is aborted and the next owner resumes "
                     "from the committed offsets)\" bound=%s timeout_ms=%lld exit=%d\n",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     at_ms, what, (long long)timeout_ms, exit_code);
    line_len = n > 0 && (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    code = exit_code;

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGALRM, &sa, NULL) != 0) {
        return -1;
    }
    struct itimerval it = {{0, 0},
                           {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000}};
    return setitimer(ITIMER_REAL, &it, NULL) == 0 ? 0 : -1;
}

void pp_watchdog_disarm(void)
{
    struct itimerval it = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &it, NULL);
}
