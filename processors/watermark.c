/*
 * watermark.c — minimum over active partitions of their stream time. See
 * watermark.h.
 */
#include "watermark.h"

#include <stdbool.h>
#include <stdlib.h>

#include "idmap.h"
#include "palloc.h"

struct source {
    int64_t stream_ms; /* largest event time seen, INT64_MIN before any */
    int64_t last_active_ms;
    bool assigned;
    bool caught_up; /* at the end of the partition: only then may it go idle */
};

struct pp_watermark {
    int64_t idle_ms;
    int64_t last; /* what get() last returned: the watermark is monotonic */
    int64_t oldest_seen;
    struct pp_idmap *ids;
    struct source *src;
    uint32_t cap;
};

struct pp_watermark *pp_watermark_new(int64_t idle_ms)
{
    struct pp_watermark *wm = pp_xcalloc(1, sizeof(*wm));
    wm->idle_ms = idle_ms;
    wm->last = INT64_MIN;
    wm->oldest_seen = INT64_MAX;
    wm->ids = pp_idmap_new();
    return wm;
}

void pp_watermark_destroy(struct pp_watermark *wm)
{
    if (wm == NULL) {
        return;
    }
    pp_idmap_destroy(wm->ids);
    free(wm->src);
    free(wm);
}

static struct source *source(struct pp_watermark *wm, const char *key)
{
    bool created;
    uint32_t i = pp_idmap_intern(wm->ids, key, &created);
    if (created) {
        if (i == wm->cap) {
            wm->cap = wm->cap ? wm->cap * 2 : 16;
            wm->src = pp_xrealloc(wm->src, wm->cap * sizeof(*wm->src));
        }
        wm->src[i] = (struct source){INT64_MIN, INT64_MIN, false, false};
    }
    return &wm->src[i];
}

void pp_watermark_assign(struct pp_watermark *wm, const char *key, int64_t now_ms)
{
    struct source *s = source(wm, key);
    s->assigned = true;
    s->caught_up = false;
    s->last_active_ms = now_ms;
}

void pp_watermark_caught_up(struct pp_watermark *wm, const char *key, int64_t now_ms)
{
    struct source *s = source(wm, key);
    s->assigned = true;
    if (!s->caught_up) {
        s->caught_up = true;
        s->last_active_ms = now_ms;
    }
}

/* A partition holds the watermark back unless it is at its end and has
 * delivered nothing for idle_ms: one that is merely slow to be served (a
 * replay's backlog) still has older events to deliver. */
static bool active(const struct pp_watermark *wm, const struct source *s, int64_t now_ms)
{
    return !s->caught_up || now_ms - s->last_active_ms < wm->idle_ms;
}

void pp_watermark_revoke(struct pp_watermark *wm, const char *key)
{
    int64_t i = pp_idmap_find(wm->ids, key);
    if (i >= 0) {
        wm->src[i].assigned = false;
    }
}

void pp_watermark_observe(struct pp_watermark *wm, const char *key, int64_t event_ms,
                          int64_t now_ms)
{
    struct source *s = source(wm, key);
    s->assigned = true;
    s->caught_up = false;
    s->last_active_ms = now_ms;
    if (event_ms > s->stream_ms) {
        s->stream_ms = event_ms;
    }
    if (event_ms < wm->oldest_seen) {
        wm->oldest_seen = event_ms;
    }
}

int64_t pp_watermark_floor(struct pp_watermark *wm, int64_t now_ms)
{
    if (wm->oldest_seen == INT64_MAX) {
        return INT64_MIN;
    }
    int64_t floor = INT64_MAX;
    for (uint32_t i = 0; i < pp_idmap_count(wm->ids); i++) {
        const struct source *s = &wm->src[i];
        if (!s->assigned || !active(wm, s, now_ms)) {
            continue;
        }
        int64_t t = s->stream_ms == INT64_MIN ? wm->oldest_seen : s->stream_ms;
        if (t < floor) {
            floor = t;
        }
    }
    return floor;
}

int64_t pp_watermark_get(struct pp_watermark *wm, int64_t now_ms)
{
    int64_t min_active = INT64_MAX, max_all = INT64_MIN;
    bool any_active = false;
    for (uint32_t i = 0; i < pp_idmap_count(wm->ids); i++) {
        const struct source *s = &wm->src[i];
        if (!s->assigned) {
            continue;
        }
        if (s->stream_ms > max_all) {
            max_all = s->stream_ms;
        }
        if (active(wm, s, now_ms)) {
            any_active = true;
            if (s->stream_ms < min_active) {
                min_active = s->stream_ms;
            }
        }
    }
    int64_t w = any_active ? min_active : max_all;
    if (w > wm->last) {
        wm->last = w;
    }
    return wm->last;
}
