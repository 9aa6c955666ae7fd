/*
 * watchdog.h — the bound on a shutdown (processing.shutdown_timeout).
 *
 * A shutdown commits the interval's transaction, snapshots the tasks and
 * leaves the group; each step talks to the cluster and can block (a
 * transaction call waits up to its own 30 s timeout for an unreachable
 * coordinator, a consumer close for the group). The orchestrator's grace
 * period ends in SIGKILL, which says nothing; the watchdog ends the process
 * first, with a log line saying why. Exactly-once loses nothing either way:
 * the open transaction is aborted by the coordinator and the next owner
 * resumes from the committed offsets and changelogs.
 */
#ifndef PP_APP_WATCHDOG_H
#define PP_APP_WATCHDOG_H

#include <stdint.h>

/* After timeout_ms (> 0), unless disarmed: writes one error line naming
 * what it bounds (`what`, e.g. "processing.shutdown_timeout") to stderr and
 * _exit()s with status exit_code. Uses SIGALRM and ITIMER_REAL (nothing else
 * in the process does). Returns 0, or -1 when the timer cannot be set. */
int pp_watchdog_arm(int64_t timeout_ms, const char *what, int exit_code);

void pp_watchdog_disarm(void);

#endif
