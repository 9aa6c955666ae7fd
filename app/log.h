/*
 * log.h — one key=value line per event on stderr (STYLE.md "Errors and logs").
 *
 * The level is checked before anything is formatted. librdkafka's log lines
 * are routed here too (pp_log_rdkafka), so an operator greps one format.
 */
#ifndef PP_APP_LOG_H
#define PP_APP_LOG_H

enum pp_log_level { PP_LOG_ERROR = 0, PP_LOG_WARN, PP_LOG_INFO, PP_LOG_DEBUG };

extern enum pp_log_level pp_log_threshold;

/* Returns -1 for an unknown name. */
int pp_log_level_from_name(const char *name);

void pp_log_write(enum pp_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* fmt continues the line: pp_log(PP_LOG_INFO, "msg=\"started\" port=%d", port) */
#define pp_log(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) <= pp_log_threshold) {                                                         \
            pp_log_write((level), __VA_ARGS__);                                                    \
        }                                                                                          \
    } while (0)

#endif
