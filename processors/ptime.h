/*
 * ptime.h — event-time arithmetic: days since the Unix epoch, civil dates.
 *
 * Everything in the model is evaluated on UTC day boundaries (MODEL.md §2.2),
 * so the processors count in whole days; these helpers convert between
 * milliseconds, day numbers and "YYYY-MM-DD" without touching the C library's
 * time zone machinery (pure, thread-safe, identical on every host).
 */
#ifndef PP_PTIME_H
#define PP_PTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PP_MS_PER_DAY INT64_C(86400000)

/* Floor division: events before 1970 still land on the right day. */
int32_t pp_day_from_ms(int64_t ms);
int64_t pp_day_to_ms(int32_t day);

/* Proleptic Gregorian conversions (Howard Hinnant's days_from_civil). */
int32_t pp_day_from_civil(int y, unsigned m, unsigned d);
void pp_day_to_civil(int32_t day, int *y, unsigned *m, unsigned *d);

/* Writes "YYYY-MM-DD" (needs 11 bytes). */
void pp_day_format(int32_t day, char *buf, size_t size);

/* Parses exactly "YYYY-MM-DD"; false on anything else (incl. Feb 30). */
bool pp_day_parse(const char *s, int32_t *day);

#endif
