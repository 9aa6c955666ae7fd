/*
 * metrics.c — the metrics registry and its Prometheus text rendering. See
 * metrics.h.
 *
 * Families and series are plain arrays searched linearly: a family has a
 * handful of series (event types, DLQ reasons, assigned partitions), lookups
 * happen when a label set is first seen, and the hot paths keep pointers.
 * Label values are escaped as the exposition format requires (backslash,
 * double quote, newline), so a partition of a topic named by an operator
 * cannot break the output.
 */
#include "metrics.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "palloc.h"

struct pp_metric {
    char *labels[PP_METRICS_MAX_LABELS];
    double value; /* counter/gauge; histogram: sum */
    uint64_t count;
    uint64_t buckets[PP_METRICS_MAX_BUCKETS]; /* non-cumulative per bucket */
    const struct pp_metric_family *fam;
};

struct pp_metric_family {
    enum pp_metric_type type;
    char *name;
    char *help;
    char *label_names[PP_METRICS_MAX_LABELS];
    size_t n_labels;
    double bounds[PP_METRICS_MAX_BUCKETS];
    size_t n_bounds;
    struct pp_metric **series;
    size_t n_series, cap_series;
};

struct pp_metrics {
    struct pp_metric_family **fams;
    size_t n, cap;
};

struct pp_metrics *pp_metrics_new(void)
{
    return pp_xcalloc(1, sizeof(struct pp_metrics));
}

static void series_free(struct pp_metric *s, size_t n_labels)
{
    for (size_t i = 0; i < n_labels; i++) {
        free(s->labels[i]);
    }
    free(s);
}

void pp_metrics_family_reset(struct pp_metric_family *fam)
{
    for (size_t i = 0; i < fam->n_series; i++) {
        series_free(fam->series[i], fam->n_labels);
    }
    fam->n_series = 0;
}

void pp_metrics_destroy(struct pp_metrics *m)
{
    if (m == NULL) {
        return;
    }
    for (size_t i = 0; i < m->n; i++) {
        struct pp_metric_family *f = m->fams[i];
        pp_metrics_family_reset(f);
        free(f->series);
        for (size_t j = 0; j < f->n_labels; j++) {
            free(f->label_names[j]);
        }
        free(f->name);
        free(f->help);
        free(f);
    }
    free(m->fams);
    free(m);
}

struct pp_metric_family *pp_metrics_family(struct pp_metrics *m, enum pp_metric_type type,
                                           const char *name, const char *help,
                                           const char *const *label_names, size_t n_labels,
                                           const double *buckets, size_t n_buckets)
{
    assert(n_labels <= PP_METRICS_MAX_LABELS);
    assert(n_buckets <= PP_METRICS_MAX_BUCKETS);
    assert(type == PP_METRIC_HISTOGRAM || n_buckets == 0);
    for (size_t i = 0; i < m->n; i++) {
        assert(strcmp(m->fams[i]->name, name) != 0);
    }
    struct pp_metric_family *f = pp_xcalloc(1, sizeof(*f));
    f->type = type;
    f->name = pp_xstrdup(name);
    f->help = pp_xstrdup(help);
    f->n_labels = n_labels;
    for (size_t i = 0; i < n_labels; i++) {
        f->label_names[i] = pp_xstrdup(label_names[i]);
    }
    f->n_bounds = n_buckets;
    for (size_t i = 0; i < n_buckets; i++) {
        assert(i == 0 || buckets[i] > buckets[i - 1]);
        f->bounds[i] = buckets[i];
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->fams = pp_xrealloc(m->fams, m->cap * sizeof(*m->fams));
    }
    m->fams[m->n++] = f;
    return f;
}

struct pp_metric *pp_metrics_series(struct pp_metric_family *fam, const char *const *label_values)
{
    for (size_t i = 0; i < fam->n_series; i++) {
        struct pp_metric *s = fam->series[i];
        size_t j = 0;
        while (j < fam->n_labels && strcmp(s->labels[j], label_values[j]) == 0) {
            j++;
        }
        if (j == fam->n_labels) {
            return s;
        }
    }
    if (fam->n_series >= PP_METRICS_MAX_SERIES) {
        return NULL;
    }
    struct pp_metric *s = pp_xcalloc(1, sizeof(*s));
    s->fam = fam;
    for (size_t j = 0; j < fam->n_labels; j++) {
        s->labels[j] = pp_xstrdup(label_values[j]);
    }
    if (fam->n_series == fam->cap_series) {
        fam->cap_series = fam->cap_series ? fam->cap_series * 2 : 8;
        fam->series = pp_xrealloc(fam->series, fam->cap_series * sizeof(*fam->series));
    }
    fam->series[fam->n_series++] = s;
    return s;
}

void pp_metric_add(struct pp_metric *s, double v)
{
    if (s == NULL) {
        return;
    }
    assert(s->fam->type != PP_METRIC_HISTOGRAM);
    assert(s->fam->type != PP_METRIC_COUNTER || v >= 0);
    s->value += v;
}

void pp_metric_set(struct pp_metric *s, double v)
{
    if (s == NULL) {
        return;
    }
    assert(s->fam->type != PP_METRIC_HISTOGRAM);
    s->value = v;
}

void pp_metric_observe(struct pp_metric *s, double v)
{
    if (s == NULL) {
        return;
    }
    const struct pp_metric_family *f = s->fam;
    assert(f->type == PP_METRIC_HISTOGRAM);
    size_t i = 0;
    while (i < f->n_bounds && v > f->bounds[i]) {
        i++;
    }
    if (i < f->n_bounds) {
        s->buckets[i]++;
    }
    s->count++;
    s->value += v;
}

double pp_metric_value(const struct pp_metric *s)
{
    return s ? s->value : 0;
}

uint64_t pp_metric_count(const struct pp_metric *s)
{
    return s ? s->count : 0;
}

void pp_metrics_exp_buckets(double *out, size_t n, double start, double factor)
{
    double v = start;
    for (size_t i = 0; i < n; i++) {
        out[i] = v;
        v *= factor;
    }
}

/* ------------------------------------------------------------- rendering */

struct buf {
    char *p;
    size_t len, cap;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        assert(n >= 0);
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)n + 1;
        b->p = pp_xrealloc(b->p, b->cap);
    }
}

static void put_escaped(struct buf *b, const char *s, int help)
{
    for (; *s; s++) {
        if (*s == '\\') {
            put(b, "\\\\");
        }
        else if (*s == '\n') {
            put(b, "\\n");
        }
        else if (*s == '"' && !help) {
            put(b, "\\\"");
        }
        else {
            put(b, "%c", *s);
        }
    }
}

/* Integral values print without a decimal point; +Inf/NaN as Prometheus
 * spells them. */
static void put_number(struct buf *b, double v)
{
    if (isnan(v)) {
        put(b, "NaN");
    }
    else if (isinf(v)) {
        put(b, v > 0 ? "+Inf" : "-Inf");
    }
    else if (v == floor(v) && fabs(v) < 1e15) {
        put(b, "%.0f", v);
    }
    else {
        put(b, "%.17g", v);
    }
}

/* name{l1="v1",l2="v2"[,le="x"]} */
static void put_series_name(struct buf *b, const struct pp_metric_family *f,
                            const struct pp_metric *s, const char *suffix, const char *le)
{
    put(b, "%s%s", f->name, suffix);
    if (f->n_labels == 0 && le == NULL) {
        return;
    }
    put(b, "{");
    for (size_t i = 0; i < f->n_labels; i++) {
        put(b, "%s%s=\"", i ? "," : "", f->label_names[i]);
        put_escaped(b, s->labels[i], 0);
        put(b, "\"");
    }
    if (le) {
        put(b, "%sle=\"%s\"", f->n_labels ? "," : "", le);
    }
    put(b, "}");
}

char *pp_metrics_render(const struct pp_metrics *m, size_t *len)
{
    static const char *const tnames[] = {"counter", "gauge", "histogram"};
    struct buf b = {pp_xmalloc(4096), 0, 4096};
    b.p[0] = '\0';
    for (size_t i = 0; i < m->n; i++) {
        const struct pp_metric_family *f = m->fams[i];
        put(&b, "# HELP %s ", f->name);
        put_escaped(&b, f->help, 1);
        put(&b, "\n# TYPE %s %s\n", f->name, tnames[f->type]);
        for (size_t j = 0; j < f->n_series; j++) {
            const struct pp_metric *s = f->series[j];
            if (f->type != PP_METRIC_HISTOGRAM) {
                put_series_name(&b, f, s, "", NULL);
                put(&b, " ");
                put_number(&b, s->value);
                put(&b, "\n");
                continue;
            }
            uint64_t cum = 0;
            for (size_t k = 0; k < f->n_bounds; k++) {
                char le[64];
                cum += s->buckets[k];
                snprintf(le, sizeof(le), "%.9g", f->bounds[k]);
                put_series_name(&b, f, s, "_bucket", le);
                put(&b, " %llu\n", (unsigned long long)cum);
            }
            put_series_name(&b, f, s, "_bucket", "+Inf");
            put(&b, " %llu\n", (unsigned long long)s->count);
            put_series_name(&b, f, s, "_sum", NULL);
            put(&b, " ");
            put_number(&b, s->value);
            put(&b, "\n");
            put_series_name(&b, f, s, "_count", NULL);
            put(&b, " %llu\n", (unsigned long long)s->count);
        }
    }
    *len = b.len;
    return b.p;
}
