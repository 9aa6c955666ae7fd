/*
 * demo.h — `partnerpulse demo` (see demo.c).
 */
#ifndef PP_APP_DEMO_H
#define PP_APP_DEMO_H

int pp_app_demo(int argc, char **argv);

#endif
