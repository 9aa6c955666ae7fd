/*
 * ptime.c — day arithmetic for event time. See ptime.h.
 */
#include "ptime.h"

#include <stdio.h>
#include <string.h>

int32_t pp_day_from_ms(int64_t ms)
{
    int64_t q = ms / PP_MS_PER_DAY;
    if (ms % PP_MS_PER_DAY < 0) {
        q--;
    }
    return (int32_t)q;
}

int64_t pp_day_to_ms(int32_t day)
{
    return (int64_t)day * PP_MS_PER_DAY;
}

/* Eras of 400 years make the Gregorian cycle exact; see
 * https://howardhinnant.github.io/date_algorithms.html for the derivation. */
int32_t pp_day_from_civil(int y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int32_t)(era * 146097 + (int)doe - 719468);
}

void pp_day_to_civil(int32_t day, int *y, unsigned *m, unsigned *d)
{
    const int z = day + 719468;
    const int era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)yoe + era * 400 + (*m <= 2);
}

void pp_day_format(int32_t day, char *buf, size_t size)
{
    int y;
    unsigned m, d;
    pp_day_to_civil(day, &y, &m, &d);
    snprintf(buf, size, "%04d-%02u-%02u", y, m, d);
}

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

bool pp_day_parse(const char *s, int32_t *day)
{
    /* Exactly YYYY-MM-DD: no signs, blanks or short fields (sscanf allows them). */
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-') {
        return false;
    }
    int y = digits(s, 4), mi = digits(s + 5, 2), di = digits(s + 8, 2);
    if (y < 0 || mi < 0 || di < 0) {
        return false;
    }
    unsigned m = (unsigned)mi, d = (unsigned)di;
    if (m < 1 || m > 12 || d < 1 || d > 31) {
        return false;
    }
    int32_t v = pp_day_from_civil(y, m, d);
    int y2;
    unsigned m2, d2;
    pp_day_to_civil(v, &y2, &m2, &d2);
    if (y2 != y || m2 != m || d2 != d) {
        return false; /* e.g. 2025-02-30 normalised to March */
    }
    *day = v;
    return true;
}
