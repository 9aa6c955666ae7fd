/*
 * backtest.h — `partnerpulse backtest` (see backtest.c).
 */
#ifndef PP_APP_BACKTEST_H
#define PP_APP_BACKTEST_H

#include <stdio.h>

/* argv[0] is "backtest". Returns the process exit status. */
int pp_app_backtest(int argc, char **argv);
void pp_app_backtest_usage(FILE *out);

#endif
