/*
 * metrics.h — a small metrics registry rendered in the Prometheus text
 * exposition format (version 0.0.4): counters, gauges and histograms, each a
 * family with up to PP_METRICS_MAX_LABELS label names and any number of
 * labelled series (capped per family, so a label fed by input cannot grow
 * memory without bound).
 *
 * Single-threaded like the rest of the loop: the pipeline updates series on
 * the loop thread and the HTTP server renders them on the same thread, so
 * there are no atomics. Hot paths keep the series pointer returned by
 * pp_metrics_series() and update it with one addition.
 *
 * Ownership: the registry owns every family and series; pointers stay valid
 * until pp_metrics_destroy() (pp_metrics_family_reset() invalidates the
 * series of that family only).
 */
#ifndef PP_APP_METRICS_H
#define PP_APP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define PP_METRICS_MAX_LABELS  3
#define PP_METRICS_MAX_BUCKETS 24
/* Series per family beyond which new label sets are refused (NULL). */
#define PP_METRICS_MAX_SERIES 4096

enum pp_metric_type { PP_METRIC_COUNTER = 0, PP_METRIC_GAUGE, PP_METRIC_HISTOGRAM };

struct pp_metrics;
struct pp_metric_family;
struct pp_metric;

/* Never NULL (aborts on OOM only). */
struct pp_metrics *pp_metrics_new(void);
void pp_metrics_destroy(struct pp_metrics *m);

/* Declares a family. name and help are copied; label_names has n_labels
 * entries (0..PP_METRICS_MAX_LABELS); buckets (histograms only, ascending
 * upper bounds without +Inf, at most PP_METRICS_MAX_BUCKETS) is copied.
 * Declaring a name twice is a bug (assertion). */
struct pp_metric_family *pp_metrics_family(struct pp_metrics *m, enum pp_metric_type type,
                                           const char *name, const char *help,
                                           const char *const *label_names, size_t n_labels,
                                           const double *buckets, size_t n_buckets);

/* The series of fam with these label values (n_labels strings, copied), made
 * on first use. NULL when the family already holds PP_METRICS_MAX_SERIES. */
struct pp_metric *pp_metrics_series(struct pp_metric_family *fam, const char *const *label_values);

/* Drops every series of fam (for gauges rebuilt from a snapshot, such as the
 * consumer lag of the partitions assigned right now). */
void pp_metrics_family_reset(struct pp_metric_family *fam);

/* Counters: add (v >= 0) or set from a monotonic source. Gauges: set/add.
 * Histograms: observe. Each accepts a NULL series (a refused label set) and
 * does nothing, so callers need no check. */
void pp_metric_add(struct pp_metric *s, double v);
void pp_metric_set(struct pp_metric *s, double v);
void pp_metric_observe(struct pp_metric *s, double v);
double pp_metric_value(const struct pp_metric *s);   /* counter/gauge value, histogram sum */
uint64_t pp_metric_count(const struct pp_metric *s); /* histogram observations */

/* Renders every family in declaration order (series in creation order) as
 * the Prometheus text format. Returns a malloc'd NUL-terminated string the
 * caller frees; *len is its length. */
char *pp_metrics_render(const struct pp_metrics *m, size_t *len);

/* Exponential bucket bounds: start, start*factor, ... (n of them). */
void pp_metrics_exp_buckets(double *out, size_t n, double start, double factor);

#endif
