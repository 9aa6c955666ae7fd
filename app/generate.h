/*
 * generate.h — `partnerpulse generate` (see generate.c).
 */
#ifndef PP_APP_GENERATE_H
#define PP_APP_GENERATE_H

#include <stdio.h>

/* argv[0] is "generate". Returns the process exit status. */
int pp_app_generate(int argc, char **argv);
void pp_app_generate_usage(FILE *out);

#endif
