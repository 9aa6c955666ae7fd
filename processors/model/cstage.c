/*
 * cstage.c — the customers stage of the split model (stage.h): per-customer
 * state, event application and the customer half of the daily evaluation.
 *
 * This is the monolith's customer code (MODEL.md §2.8: seat tranches,
 * commits, day rings of usage and support, dedup of event ids) unchanged in
 * substance; what changed is where the results go. Instead of reading
 * cohort baselines and partner signals that live elsewhere, a closed day
 * ends in exchange records: the stage's cohort partials, and per customer x
 * partner link an assessment with every fact that needs only this
 * customer's data, plus the customer's own window sums the partners side
 * needs for LOAD, ESC, CSAT and the leave-one-out pools. Deals and reversals
 * go to the partners side as they are applied (queued, emitted at the next
 * advance or drain), as the monolith put them in the ledger on arrival.
 *
 * Determinism: customers are walked in id order and deals in (close, deal
 * id hash) order, as before, so every double an assessment carries is the
 * one the monolith computed.
 */
#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "palloc.h"
#include "ptime.h"
#include "stage_int.h"

/* A hint to start loading *p (pp_cstage_apply); nothing where unsupported. */
#if defined(__GNUC__)
#define PREFETCH(p) __builtin_prefetch((p), 0, 3)
#else
#define PREFETCH(p) ((void)(p))
#endif

/* ---- shared helpers ---------------------------------------------------------- */

static uint32_t max_u32(uint32_t a, uint32_t b)
{
    return a > b ? a : b;
}

uint32_t pp_history_span(const struct pp_model_conf *c)
{
    uint32_t s = max_u32(c->adopt_long_days, c->ratio_long_days);
    s = max_u32(s, max_u32(c->load_long_days, c->adopt_short_days));
    s = max_u32(s, max_u32(c->load_short_days, c->ratio_short_days));
    return max_u32(s, c->oversize_pre_days);
}

static uint32_t add_window(struct pp_windows *w, uint32_t days)
{
    for (uint32_t i = 0; i < w->nwin; i++) {
        if (w->win[i] == days) {
            return i;
        }
    }
    w->win[w->nwin] = days;
    return w->nwin++;
}

void pp_windows_init(struct pp_windows *w, const struct pp_model_conf *conf)
{
    memset(w, 0, sizeof(*w));
    w->width = conf->state_days;
    w->span = pp_history_span(conf);
    w->w_adopt_s = add_window(w, conf->adopt_short_days);
    w->w_adopt_l = add_window(w, conf->adopt_long_days);
    w->w_load_s = add_window(w, conf->load_short_days);
    w->w_load_l = add_window(w, conf->load_long_days);
    w->w_ratio_s = add_window(w, conf->ratio_short_days);
    w->w_ratio_l = add_window(w, conf->ratio_long_days);
}

void pp_sort_n(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1) {
        qsort(base, n, size, cmp);
    }
}

struct keyed {
    const char *key;
    uint32_t idx;
};

static int cmp_keyed(const void *a, const void *b)
{
    return strcmp(((const struct keyed *)a)->key, ((const struct keyed *)b)->key);
}

/* The new ids are sorted and merged in, O(n) per day with newcomers. */
void pp_sort_ids(const struct pp_idmap *ids, uint32_t **sorted, uint32_t *sorted_n)
{
    uint32_t n = pp_idmap_count(ids);
    if (n == *sorted_n) {
        return;
    }
    uint32_t fresh = n - *sorted_n;
    struct keyed *nk = pp_xmalloc(fresh * sizeof(*nk));
    for (uint32_t i = 0; i < fresh; i++) {
        nk[i].idx = *sorted_n + i;
        nk[i].key = pp_idmap_key(ids, nk[i].idx);
    }
    pp_sort_n(nk, fresh, sizeof(*nk), cmp_keyed);
    uint32_t *out = pp_xmalloc(n * sizeof(uint32_t));
    uint32_t i = 0, j = 0, k = 0;
    while (i < *sorted_n || j < fresh) {
        if (j == fresh ||
            (i < *sorted_n && strcmp(pp_idmap_key(ids, (*sorted)[i]), nk[j].key) < 0)) {
            out[k++] = (*sorted)[i++];
        }
        else {
            out[k++] = nk[j++].idx;
        }
    }
    free(nk);
    free(*sorted);
    *sorted = out;
    *sorted_n = n;
}

/* Fields that size or index the state (rings, window sums, retention): a
 * running model cannot change them, only a restart can. */
static const struct {
    const char *key;
    size_t off;
} layout_fields[] = {
    {"model.state_days", offsetof(struct pp_model_conf, state_days)},
    {"model.dedup_horizon_days", offsetof(struct pp_model_conf, dedup_horizon_days)},
    {"model.adopt_short_days", offsetof(struct pp_model_conf, adopt_short_days)},
    {"model.adopt_long_days", offsetof(struct pp_model_conf, adopt_long_days)},
    {"model.load_short_days", offsetof(struct pp_model_conf, load_short_days)},
    {"model.load_long_days", offsetof(struct pp_model_conf, load_long_days)},
    {"model.ratio_short_days", offsetof(struct pp_model_conf, ratio_short_days)},
    {"model.ratio_long_days", offsetof(struct pp_model_conf, ratio_long_days)},
    {"model.push_short_days", offsetof(struct pp_model_conf, push_short_days)},
    {"model.push_long_days", offsetof(struct pp_model_conf, push_long_days)},
    {"model.oversize_pre_days", offsetof(struct pp_model_conf, oversize_pre_days)},
    {"model.rev_horizon_days", offsetof(struct pp_model_conf, rev_horizon_days)},
};

int pp_conf_layout_check(const struct pp_model_conf *old, const struct pp_model_conf *conf,
                         char *errstr, size_t errstr_size)
{
    if (pp_model_conf_validate(conf, errstr, errstr_size) != 0) {
        return -1;
    }
    for (size_t i = 0; i < sizeof(layout_fields) / sizeof(layout_fields[0]); i++) {
        uint32_t a, b;
        memcpy(&a, (const char *)old + layout_fields[i].off, sizeof(a));
        memcpy(&b, (const char *)conf + layout_fields[i].off, sizeof(b));
        if (a != b) {
            snprintf(errstr, errstr_size,
                     "key '%s': cannot change from %u to %u while running (it sizes the state; "
                     "restart instead)",
                     layout_fields[i].key, a, b);
            return -1;
        }
    }
    if (strcmp(old->tenant, conf->tenant) != 0 ||
        old->allowed_lateness_ms != conf->allowed_lateness_ms) {
        snprintf(errstr, errstr_size, "key '%s': cannot change while running (restart instead)",
                 strcmp(old->tenant, conf->tenant) != 0 ? "tenant" : "processing.allowed_lateness");
        return -1;
    }
    return 0;
}

/* ---- construction ----------------------------------------------------------- */

/* A new customer's block: narrow cells, sparse support (struct customer). */
static size_t customer_block_bytes(const struct pp_cstage *s)
{
    return pp_cust_blk_bytes(&s->w, false, false);
}

static size_t cons_block_bytes(const struct pp_cstage *s)
{
    return s->w.nwin * sizeof(double) + s->w.width * sizeof(float);
}

void pp_cust_relayout(const struct pp_windows *w, struct customer *c, bool wide, bool dense_sup)
{
    wide = wide || c->wide;
    dense_sup = dense_sup || c->dense_sup;
    for (uint32_t i = 0; dense_sup && !c->dense_sup && i < c->n_sup; i++) {
        wide = wide || c->sup[i].wt > UINT8_MAX; /* the dense rings' cells must hold it */
    }
    if (wide == c->wide && dense_sup == c->dense_sup) {
        return;
    }
    struct customer n = *c;
    n.wide = wide;
    n.dense_sup = dense_sup;
    n.blk = pp_xcalloc(1, pp_cust_blk_bytes(w, wide, dense_sup));
    memcpy(n.blk, c->blk, cust_sums_bytes(w));
    for (uint32_t i = 0; i < w->width; i++) {
        cust_set_active(w, &n, i, cust_active(w, c, i));
    }
    if (c->dense_sup) {
        for (uint32_t i = 0; i < w->width; i++) {
            cust_set_wt(w, &n, i, cust_wt(w, c, i));
        }
        memcpy(cust_cnt(w, &n, 0), cust_cnt(w, c, 0), (size_t)w->width * 4);
    }
    else if (dense_sup) {
        /* The entries' days are distinct slots: they lie within the span
         * the rings hold (older ones are dropped as their slot is cleared). */
        for (uint32_t i = 0; i < c->n_sup; i++) {
            uint32_t sl = pp_slot_of(w->width, c->sup[i].day);
            cust_set_wt(w, &n, sl, c->sup[i].wt);
            memcpy(cust_cnt(w, &n, sl), c->sup[i].cnt, 4);
        }
        free(n.sup);
        n.sup = NULL;
        n.n_sup = n.cap_sup = 0;
    }
    free(c->blk);
    *c = n;
}

struct pp_cstage *pp_cstage_new(const struct pp_model_conf *conf, uint32_t source, uint32_t sources)
{
    struct pp_cstage *s = pp_xcalloc(1, sizeof(*s));
    s->conf = *conf;
    pp_windows_init(&s->w, conf);
    static atomic_uint_fast64_t tokens;
    s->source = source;
    s->sources = sources;
    s->token = (uint64_t)atomic_fetch_add(&tokens, 1) + 1;
    s->customer_ids = pp_idmap_new();
    s->partner_ids = pp_idmap_new();
    s->product_ids = pp_idmap_new();
    s->today = pp_xcalloc((size_t)PP_MODEL_MAX_PRODUCTS * N_BANDS, sizeof(struct cpart_int));
    s->dedup = pp_xcalloc(s->w.width, sizeof(struct dedup_day));
    for (uint32_t i = 0; i < s->w.width; i++) {
        s->dedup[i].day = NO_DAY;
    }
    s->watermark = INT64_MIN;
    s->min_day = NO_DAY;
    s->max_day = NO_DAY;
    s->last_eval = NO_DAY;
    s->eod_sent = NO_DAY;
    s->last_closed = NO_DAY;
    s->stats.bytes_per_customer = sizeof(struct customer) + customer_block_bytes(s);
    s->stats.bytes_per_tranche = sizeof(struct tranche);
    s->stats.bytes_per_link = sizeof(int32_t) + sizeof(struct pair);
    return s;
}

int pp_cstage_set_conf(struct pp_cstage *s, const struct pp_model_conf *conf, char *errstr,
                       size_t errstr_size)
{
    if (pp_conf_layout_check(&s->conf, conf, errstr, errstr_size) != 0) {
        return -1;
    }
    s->conf = *conf;
    return 0;
}

void pp_cstage_destroy(struct pp_cstage *s)
{
    if (s == NULL) {
        return;
    }
    uint32_t nc = pp_idmap_count(s->customer_ids);
    for (uint32_t i = 0; i < nc; i++) {
        struct customer *c = &s->customers[i];
        free(c->blk);
        free(c->cblk);
        free(c->sup);
        free(c->tr);
        free(c->links);
        free(c->keys);
        free(c->ent);
    }
    free(s->orphans);
    for (uint32_t i = 0; i < s->w.width; i++) {
        free(s->dedup[i].keys);
        free(s->dedup[i].log);
    }
    free(s->dedup);
    free(s->spare_keys);
    free(s->customers);
    free(s->csorted);
    free(s->today);
    free(s->queue);
    free(s->dirty_list);
    pp_idmap_destroy(s->customer_ids);
    pp_idmap_destroy(s->partner_ids);
    pp_idmap_destroy(s->product_ids);
    free(s);
}

static uint32_t slot_of(const struct pp_cstage *s, int32_t day)
{
    return pp_slot_of(s->w.width, day);
}

static void customer_touch(struct pp_cstage *s, uint32_t ci)
{
    struct customer *c = &s->customers[ci];
    if (c->dirty || s->ephemeral) {
        return;
    }
    c->dirty = true;
    if (s->n_dirty == s->cap_dirty) {
        s->cap_dirty = s->cap_dirty ? s->cap_dirty * 2 : 256;
        s->dirty_list = pp_xrealloc(s->dirty_list, s->cap_dirty * sizeof(uint32_t));
    }
    s->dirty_list[s->n_dirty++] = ci;
}

/* A fresh customer record at index idx (used by restore too). */
void pp_cstage_customer_init(struct pp_cstage *s, uint32_t idx)
{
    if (idx >= s->customers_cap) {
        /* Grown by a quarter, not doubled: the slack of a large table is
         * memory held for nobody (at most 25 % here, 50 % on average when
         * doubling); a customer is created once, the copies are rare. */
        s->customers_cap = pp_grow_cap(s->customers_cap, idx);
        s->customers = pp_xrealloc(s->customers, s->customers_cap * sizeof(*s->customers));
    }
    struct customer *c = &s->customers[idx];
    memset(c, 0, sizeof(*c));
    /* One block: window sums, then the rings (struct of arrays), narrow
     * until a value needs more (struct customer). */
    c->blk = pp_xcalloc(1, customer_block_bytes(s));
    for (uint32_t i = 0; i < s->w.width; i++) {
        cust_set_active(&s->w, c, i, NO_ACTIVE);
    }
    c->last_snap_day = NO_DAY;
    c->first_snap_day = NO_DAY;
    c->ent_now = UINT32_MAX;
    c->first_cons_day = NO_DAY;
    c->product = -1;
    c->band = -1;
    c->band_since = NO_DAY;
    c->mature_since = NO_DAY;
    c->done = NO_DAY;
    s->stats.customers = idx + 1 > s->stats.customers ? idx + 1 : s->stats.customers;
}

static void catch_up(struct pp_cstage *s, struct customer *c);

static uint32_t customer_intern(struct pp_cstage *s, const char *id)
{
    bool created;
    uint64_t h = id == s->pre_id ? s->pre_h : pp_hash_str(id);
    uint32_t idx = pp_idmap_intern_h(s->customer_ids, id, h, &created);
    if (created) {
        pp_cstage_customer_init(s, idx);
        /* Nothing to finalize up to the last evaluated day (its events are
         * later): a record of it written before its first close_day must
         * not catch up on days the live stage never finalized for it. */
        s->customers[idx].done = s->last_eval;
    }
    else {
        /* A restored record may be days behind the stage (closing days does
         * not rewrite it): finalize them before this event lands in a slot
         * that catching up later would read as an older day and clear. */
        catch_up(s, &s->customers[idx]);
    }
    customer_touch(s, idx);
    s->last_ci = idx;
    return idx;
}

static uint32_t partner_intern(struct pp_cstage *s, const char *id)
{
    return pp_idmap_intern(s->partner_ids, id, NULL);
}

static int16_t product_intern(struct pp_cstage *s, const char *id)
{
    if (id[0] == '\0') {
        return -1;
    }
    int64_t found = pp_idmap_find(s->product_ids, id);
    if (found >= 0) {
        return (int16_t)found;
    }
    if (pp_idmap_count(s->product_ids) >= PP_MODEL_MAX_PRODUCTS) {
        return -1; /* beyond the cohort table: fallbacks apply */
    }
    return (int16_t)pp_idmap_intern(s->product_ids, id, NULL);
}

/* ---- dedup ------------------------------------------------------------------ */

static uint64_t event_key(const struct pp_event *ev)
{
    uint64_t k = pp_hash_str(ev->event_id) ^ ((uint64_t)ev->type * UINT64_C(0x9E3779B97F4A7C15));
    return k ? k : 1;
}

/* Inserts key into a day's set; false when it was there already. */
bool pp_dedup_put(struct dedup_day *dd, uint64_t key)
{
    if (dd->cap == 0 || (dd->n + 1) * 4 > dd->cap * 3) {
        uint32_t ncap = dd->cap ? dd->cap * 2 : 64;
        uint64_t *nk = pp_xcalloc_table(ncap, sizeof(uint64_t));
        for (uint32_t i = 0; i < dd->cap; i++) {
            if (dd->keys[i]) {
                uint32_t j = (uint32_t)(dd->keys[i] & (ncap - 1));
                while (nk[j]) {
                    j = (j + 1) & (ncap - 1);
                }
                nk[j] = dd->keys[i];
            }
        }
        free(dd->keys);
        dd->keys = nk;
        dd->cap = ncap;
    }
    uint32_t j = (uint32_t)(key & (dd->cap - 1));
    while (dd->keys[j]) {
        if (dd->keys[j] == key) {
            return false;
        }
        j = (j + 1) & (dd->cap - 1);
    }
    dd->keys[j] = key;
    dd->n++;
    return true;
}

/* Returns true when the key is new for `day` (and remembers it). */
static bool dedup_insert(struct pp_cstage *s, int32_t day, uint64_t key)
{
    struct dedup_day *dd = &s->dedup[slot_of(s, day)];
    if (dd->day != day) {
        if (dd->day != NO_DAY && dd->day > day) {
            return true; /* older than anything remembered */
        }
        dd->day = day;
        dd->n = 0;
        dd->n_log = 0;
        dd->handed = 0;
        if (dd->keys == NULL && s->spare_keys != NULL) {
            /* A forgotten day's table: the new day will need about as many
             * slots, and memory already touched costs no page faults and no
             * rehashing (with a million customers, growing a fresh table
             * every day was ~10 huge-page faults and a rehash through every
             * size from 64 to 2M slots: docs/performance.md). */
            dd->keys = s->spare_keys;
            dd->cap = s->spare_cap;
            s->spare_keys = NULL;
            s->spare_cap = 0;
        }
        if (dd->keys) {
            memset(dd->keys, 0, dd->cap * sizeof(uint64_t));
        }
    }
    return pp_dedup_put(dd, key);
}

static bool dedup_seen(const struct pp_cstage *s, int32_t day, uint64_t key)
{
    const struct dedup_day *dd = &s->dedup[slot_of(s, day)];
    if (dd->day != day || dd->cap == 0) {
        return false;
    }
    uint32_t j = (uint32_t)(key & (dd->cap - 1));
    while (dd->keys[j]) {
        if (dd->keys[j] == key) {
            return true;
        }
        j = (j + 1) & (dd->cap - 1);
    }
    return false;
}

void pp_ckey_add(struct ckey **keys, uint32_t *n, uint32_t *cap, int32_t day, uint64_t key)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        *keys = pp_xrealloc(*keys, *cap * sizeof(**keys));
    }
    (*keys)[*n].day = day;
    (*keys)[*n].key = key;
    (*n)++;
}

/* Drops the keys of days <= `upto` (forgotten by dedup). */
static void ckey_prune(struct ckey *keys, uint32_t *n, int32_t upto)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < *n; i++) {
        if (keys[i].day > upto) {
            keys[k++] = keys[i];
        }
    }
    *n = k;
}

void pp_cstage_keys_handout(struct pp_cstage *s)
{
    int32_t forget =
        s->last_eval == NO_DAY ? NO_DAY : s->last_eval - (int32_t)s->conf.dedup_horizon_days;
    for (uint32_t i = 0; i < s->w.width; i++) {
        struct dedup_day *dd = &s->dedup[i];
        for (uint32_t j = dd->handed; j < dd->n_log; j++) {
            const struct dlog *e = &dd->log[j];
            struct ckey **keys = &s->orphans;
            uint32_t *n = &s->n_orphans, *cap = &s->cap_orphans;
            if (e->ci != UINT32_MAX) {
                struct customer *c = &s->customers[e->ci];
                keys = &c->keys;
                n = &c->n_keys;
                cap = &c->cap_keys;
            }
            if (*n == *cap) {
                ckey_prune(*keys, n, forget); /* forgotten days first */
            }
            pp_ckey_add(keys, n, cap, dd->day, e->key);
        }
        /* Handed entries are never read again: the log restarts, so it holds
         * the events since the last write, not the whole day's. */
        dd->n_log = 0;
        dd->handed = 0;
    }
}

void pp_cstage_set_ephemeral(struct pp_cstage *s, bool on)
{
    s->ephemeral = on;
}

/* Restore: a remembered key goes back into its day's set. */
void pp_cstage_dedup_restore(struct pp_cstage *s, int32_t day, uint64_t key)
{
    dedup_insert(s, day, key);
}

static void dedup_forget(struct pp_cstage *s, int32_t day)
{
    struct dedup_day *dd = &s->dedup[slot_of(s, day)];
    if (dd->day == day) {
        /* The table becomes the spare (dedup_insert) when it was at least a
         * quarter full: a day as busy as the next ones will be. One spare:
         * a new day starts about as often as one is forgotten. */
        if (dd->keys != NULL && (uint64_t)dd->n * 4 >= dd->cap && dd->cap > s->spare_cap) {
            free(s->spare_keys);
            s->spare_keys = dd->keys;
            s->spare_cap = dd->cap;
        }
        else {
            free(dd->keys);
        }
        free(dd->log);
        memset(dd, 0, sizeof(*dd));
        dd->day = NO_DAY;
    }
}

/* ---- the exchange queue ------------------------------------------------------ */

static struct pp_xrec *queue_new(struct pp_cstage *s, uint8_t kind, int32_t day)
{
    if (s->n_queue == s->cap_queue) {
        s->cap_queue = s->cap_queue ? s->cap_queue * 2 : 16;
        s->queue = pp_xrealloc(s->queue, s->cap_queue * sizeof(*s->queue));
    }
    struct pp_xrec *x = &s->queue[s->n_queue++];
    memset(x, 0, sizeof(*x));
    x->kind = kind;
    x->source = s->source;
    x->day = day;
    return x;
}

static void copy_id(char *dst, const char *src)
{
    size_t n = strnlen(src, PP_ID_MAX - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void pp_cstage_drain(struct pp_cstage *s, pp_xrec_cb *cb, void *opaque)
{
    if (cb) {
        for (uint32_t i = 0; i < s->n_queue; i++) {
            cb(&s->queue[i], opaque);
        }
    }
    s->n_queue = 0;
}

/* ---- applying events ------------------------------------------------------ */

static int32_t min_i32(int32_t a, int32_t b)
{
    return a < b ? a : b;
}

static int32_t max_i32(int32_t a, int32_t b)
{
    return a > b ? a : b;
}

static double deal_acv(int64_t amount_minor, int32_t term_months)
{
    double amount = (double)amount_minor / 100.0;
    if (term_months > 12) {
        amount *= 12.0 / (double)term_months;
    }
    return amount;
}

static int cmp_tranche(const void *a, const void *b)
{
    const struct tranche *x = a, *y = b;
    if (x->close != y->close) {
        return x->close < y->close ? -1 : 1;
    }
    return x->deal < y->deal ? -1 : (x->deal > y->deal ? 1 : 0);
}

static struct tranche *tranche_find(struct customer *c, uint64_t deal)
{
    for (uint32_t i = 0; i < c->n_tr; i++) {
        if (c->tr[i].deal == deal) {
            return &c->tr[i];
        }
    }
    return NULL;
}

/* A new tranche slot, evicting the longest-ended one when full. */
static struct tranche *tranche_add(struct pp_cstage *s, struct customer *c, uint64_t deal,
                                   int32_t today)
{
    if (c->n_tr == c->cap_tr && c->cap_tr < PP_MODEL_MAX_TRANCHES) {
        c->cap_tr = c->cap_tr ? (uint8_t)(c->cap_tr * 2) : 1; /* most customers hold one */
        c->tr = pp_xrealloc(c->tr, c->cap_tr * sizeof(*c->tr));
    }
    struct tranche *t = NULL;
    if (c->n_tr < PP_MODEL_MAX_TRANCHES) {
        t = &c->tr[c->n_tr++];
    }
    else {
        int32_t oldest_end = today;
        for (uint32_t i = 0; i < c->n_tr; i++) {
            if (c->tr[i].partner >= 0 &&
                c->tr[i].end < oldest_end - (int32_t)s->conf.push_long_days) {
                oldest_end = c->tr[i].end;
                t = &c->tr[i];
            }
        }
        if (t == NULL) {
            s->stats.tranche_overflow++;
            return NULL;
        }
    }
    memset(t, 0, sizeof(*t));
    t->deal = deal;
    t->partner = -1;
    t->close = NO_DAY;
    t->known = NO_DAY;
    t->cut_day = NO_DAY;
    t->credit_day = NO_DAY;
    t->commit_base = NAN;
    t->b0 = -1.0;
    t->u_pre = -1.0f;
    t->discount = NAN;
    return t;
}

static void link_ensure(struct pp_cstage *s, struct customer *c, int32_t partner)
{
    for (uint32_t i = 0; i < c->n_links; i++) {
        if (c->links[i] == partner) {
            return;
        }
    }
    if (c->n_links == c->cap_links && c->cap_links < PP_MODEL_MAX_LINKS) {
        c->cap_links = c->cap_links ? (uint8_t)(c->cap_links * 2) : 1;
        c->links = pp_xrealloc(c->links, c->cap_links * sizeof(*c->links));
    }
    if (c->n_links == PP_MODEL_MAX_LINKS) {
        s->stats.link_overflow++;
        return;
    }
    c->links[c->n_links++] = partner;
    s->stats.links++;
}

static void apply_closed_won(struct pp_cstage *s, const struct pp_deal *d, int32_t day)
{
    uint32_t pi = partner_intern(s, d->partner_id);
    uint32_t ci = customer_intern(s, d->customer_id);
    struct customer *c = &s->customers[ci];
    uint64_t deal = pp_hash_str(d->deal_id);
    int32_t term = d->term_months >= 1 ? d->term_months : 12;
    int32_t start = d->has_start_date ? d->start_date : d->close_date;
    double discount = NAN;
    if (d->has_discount_pct) {
        discount = d->discount_pct;
    }
    else if (d->has_list_amount && d->list_amount > 0) {
        discount = 1.0 - (double)d->amount / (double)d->list_amount;
    }
    bool qe = d->has_quarter_end ? d->quarter_end : pp_is_quarter_end(&s->conf, d->close_date);
    int16_t product = product_intern(s, d->product_id);
    if (c->product < 0 && d->kind != PP_KIND_COMMIT) {
        c->product = product;
    }

    /* The partner's ledger entry goes to the partners side. */
    struct pp_xrec *x = queue_new(s, PP_XREC_DEAL, day);
    struct pp_xrec_deal *ld = &x->u.deal;
    copy_id(ld->partner_id, d->partner_id);
    copy_id(ld->customer_id, d->customer_id);
    ld->hint_owner = s->token;
    ld->hint_partner = pi;
    ld->deal = deal;
    ld->acv = deal_acv(d->amount, term);
    ld->discount = (float)discount;
    ld->close = d->close_date;
    ld->known = max_i32(d->close_date, day);
    ld->qe = qe;
    ld->kind = (uint8_t)d->kind;

    struct tranche *t = tranche_find(c, deal);
    if (t == NULL) {
        t = tranche_add(s, c, deal, ld->known);
        if (t == NULL) {
            return;
        }
    }
    t->partner = (int32_t)pi;
    t->acv = ld->acv;
    t->discount = (float)discount;
    t->close = d->close_date;
    t->known = ld->known;
    t->start = start;
    t->end = pp_add_months(start, term);
    t->seats = d->seats > 0 ? d->seats : 0;
    t->qe = qe;
    switch (d->kind) {
    case PP_KIND_ADDON:
        t->kind = TR_ADDON;
        t->u_pre = NAN;
        break;
    case PP_KIND_RENEWAL:
        t->kind = TR_RENEWAL;
        break;
    case PP_KIND_COMMIT:
        t->kind = TR_COMMIT;
        t->seats = 0;
        t->commit_k = d->has_commit_units ? (double)d->commit_units : (double)d->amount / 100.0;
        t->b0 = NAN;
        break;
    default:
        t->kind = TR_SEATS;
        break;
    }
    pp_sort_n(c->tr, c->n_tr, sizeof(*c->tr), cmp_tranche);
    link_ensure(s, c, (int32_t)pi);
}

static void apply_reversal(struct pp_cstage *s, const struct pp_deal *d, int32_t day)
{
    bool negative = d->event_type != PP_DEAL_AMENDED || d->seats < 0 || d->amount < 0;
    if (!negative) {
        s->stats.ignored++; /* an upward amendment: the model counts sold deals only */
        return;
    }
    uint64_t deal = pp_hash_str(d->deal_id);
    int32_t term = d->term_months >= 1 ? d->term_months : 12;
    double acv = 0.0;
    if (d->amount != 0) {
        acv = deal_acv(d->amount < 0 ? -d->amount : d->amount, term);
    }
    else if (d->event_type == PP_DEAL_CANCELLED) {
        acv = NAN; /* the whole deal, resolved against the ledger */
    }
    /* Always forwarded: even without an amount it registers the partner. */
    struct pp_xrec *x = queue_new(s, PP_XREC_REVERSAL, day);
    copy_id(x->u.rev.partner_id, d->partner_id);
    x->u.rev.deal = deal;
    x->u.rev.acv = acv;
    if (d->event_type == PP_DEAL_CREDITED && acv > 0.0) {
        uint32_t ci = customer_intern(s, d->customer_id);
        struct customer *c = &s->customers[ci];
        struct tranche *t = tranche_find(c, deal);
        if (t == NULL) {
            t = tranche_add(s, c, deal, day);
        }
        if (t != NULL) {
            t->credit_acv += acv;
            t->credit_seats = s->conf.credit_mode != 0;
            t->credit_day = t->credit_day == NO_DAY ? day : min_i32(t->credit_day, day);
        }
        return;
    }
    int32_t cut = 0;
    if (d->event_type == PP_DEAL_CANCELLED) {
        cut = CUT_ALL;
    }
    else if (d->event_type == PP_DEAL_AMENDED && d->seats < 0) {
        cut = -d->seats;
    }
    if (cut == 0) {
        return;
    }
    uint32_t ci = customer_intern(s, d->customer_id);
    struct customer *c = &s->customers[ci];
    struct tranche *t = tranche_find(c, deal);
    if (t == NULL) {
        /* The reversal came first: a placeholder the deal fills in later. */
        t = tranche_add(s, c, deal, day);
        if (t == NULL) {
            return;
        }
    }
    if (cut == CUT_ALL || t->cut_seats == CUT_ALL) {
        t->cut_seats = CUT_ALL;
    }
    else {
        t->cut_seats += cut;
    }
    t->cut_day = t->cut_day == NO_DAY ? day : min_i32(t->cut_day, day);
}

/* Remembers a snapshot day's entitlement until that day is finalized (two
 * snapshots for one day: the larger wins, whatever the order). The list
 * holds only days not finalized yet: at most the alignment horizon. */
static void ent_remember(struct customer *c, int32_t day, uint32_t entitled)
{
    for (uint16_t i = 0; i < c->n_ent; i++) {
        struct ent_snap *e = cust_ent(c, i);
        if (e->day == day) {
            if (entitled > e->val) {
                e->val = entitled;
            }
            return;
        }
    }
    if (c->n_ent == UINT16_MAX) {
        return; /* unreachable: the rings hold fewer days */
    }
    if (c->n_ent > 0 && c->n_ent - 1 == c->cap_ent) {
        c->cap_ent = c->cap_ent ? (uint16_t)(c->cap_ent * 2) : 2;
        c->ent = pp_xrealloc(c->ent, c->cap_ent * sizeof(*c->ent));
    }
    *cust_ent(c, c->n_ent++) = (struct ent_snap){day, entitled};
}

static void apply_consumption(struct pp_cstage *s, const struct pp_consumption *cs, int32_t day)
{
    uint32_t ci = customer_intern(s, cs->customer_id);
    struct customer *c = &s->customers[ci];
    if (c->product < 0) {
        c->product = product_intern(s, cs->product_id);
    }
    uint32_t sl = slot_of(s, day);
    uint32_t active = cs->licenses_active > 0 ? (uint32_t)cs->licenses_active : 0;
    /* Two snapshots for one day: the larger wins, whatever the order. */
    uint32_t had = cust_active(&s->w, c, sl);
    if (had == NO_ACTIVE || active > had) {
        cust_set_active(&s->w, c, sl, active);
    }
    ent_remember(c, day, cs->licenses_entitled > 0 ? (uint32_t)cs->licenses_entitled : 0);
    if (cs->has_consumption_units && cs->consumption_units > 0.0) {
        if (c->cblk == NULL) {
            c->cblk = pp_xcalloc(1, cons_block_bytes(s));
        }
        cust_cons(&s->w, c)[sl] += (float)cs->consumption_units;
        if (c->first_cons_day == NO_DAY || day < c->first_cons_day) {
            c->first_cons_day = day;
        }
    }
}

static uint8_t inc8(uint8_t v)
{
    return v == UINT8_MAX ? v : (uint8_t)(v + 1);
}

/* The sparse entry of `day`, made when absent; NULL when the customer's
 * support is dense (made so here when the list is full). */
static struct sday *sup_entry(struct pp_cstage *s, struct customer *c, int32_t day)
{
    if (c->dense_sup) {
        return NULL;
    }
    uint32_t i = c->n_sup;
    while (i > 0 && c->sup[i - 1].day > day) {
        i--;
    }
    if (i > 0 && c->sup[i - 1].day == day) {
        return &c->sup[i - 1];
    }
    if (c->n_sup == PP_SUP_SPARSE_MAX) {
        pp_cust_relayout(&s->w, c, c->wide, true);
        return NULL;
    }
    if (c->n_sup == c->cap_sup) {
        uint32_t cap = c->cap_sup ? c->cap_sup * 2u : 2u;
        c->cap_sup = (uint8_t)(cap > PP_SUP_SPARSE_MAX ? PP_SUP_SPARSE_MAX : cap);
        c->sup = pp_xrealloc(c->sup, c->cap_sup * sizeof(*c->sup));
    }
    memmove(&c->sup[i + 1], &c->sup[i], (c->n_sup - i) * sizeof(*c->sup));
    memset(&c->sup[i], 0, sizeof(*c->sup));
    c->sup[i].day = day;
    c->n_sup++;
    return &c->sup[i];
}

static void apply_support(struct pp_cstage *s, const struct pp_support *sp, int32_t day)
{
    uint32_t ci = customer_intern(s, sp->customer_id);
    struct customer *c = &s->customers[ci];
    if (c->product < 0 && sp->has_product_id) {
        c->product = product_intern(s, sp->product_id);
    }
    /* What the event adds: one to up to two counters, and a weight. */
    int k1 = -1, k2 = -1;
    uint32_t w = 0;
    switch (sp->event_type) {
    case PP_TICKET_OPENED:
        k1 = 0;
        if (!sp->has_vendor_incident_id) {
            int sev = sp->severity >= 1 && sp->severity <= 4 ? sp->severity : 3;
            w = (uint32_t)lround(s->conf.sev_weight[sev - 1]);
        }
        break;
    case PP_TICKET_ESCALATED:
        k1 = 1;
        break;
    case PP_TICKET_CSAT:
        if (sp->has_csat_score) {
            k1 = 2;
            if (sp->csat_score >= s->conf.csat_positive_min) {
                k2 = 3;
            }
        }
        break;
    default:
        s->stats.ignored++;
        break;
    }
    if (k1 < 0) {
        return;
    }
    struct sday *e = sup_entry(s, c, day);
    if (e != NULL) {
        e->cnt[k1] = inc8(e->cnt[k1]);
        if (k2 >= 0) {
            e->cnt[k2] = inc8(e->cnt[k2]);
        }
        uint32_t v = e->wt + w;
        e->wt = (uint16_t)(v > UINT16_MAX ? UINT16_MAX : v);
        return;
    }
    uint32_t sl = slot_of(s, day);
    uint8_t *cnt = cust_cnt(&s->w, c, sl);
    cnt[k1] = inc8(cnt[k1]);
    if (k2 >= 0) {
        cnt[k2] = inc8(cnt[k2]);
    }
    if (k1 == 0 && !sp->has_vendor_incident_id) {
        /* Last: widening moves the block `cnt` points into. */
        uint32_t v = cust_wt(&s->w, c, sl) + w;
        cust_set_wt(&s->w, c, sl, v > UINT16_MAX ? UINT16_MAX : v);
    }
}

/* Can an event of `day` be stored without overwriting history that the
 * evaluation still reads? */
static bool fits(const struct pp_cstage *s, int32_t day)
{
    int64_t room = pp_cstage_room_days(&s->conf);
    if (s->last_eval != NO_DAY) {
        return (int64_t)day - ((int64_t)s->last_eval + 1) <= room;
    }
    if (s->min_day == NO_DAY) {
        return true;
    }
    int64_t lo = min_i32(s->min_day, day), hi = max_i32(s->max_day, day);
    return hi - lo <= room;
}

static enum pp_apply_result apply_event(struct pp_cstage *s, const struct pp_event *ev, int32_t day,
                                        uint64_t key)
{
    if (s->last_eval != NO_DAY && day <= s->last_eval) {
        if ((int64_t)day > (int64_t)s->last_eval - s->conf.dedup_horizon_days &&
            dedup_seen(s, day, key)) {
            s->stats.duplicates++;
            return PP_APPLY_OK;
        }
        s->stats.too_late++;
        return PP_APPLY_TOO_LATE;
    }
    if (!fits(s, day)) {
        s->stats.skewed++;
        return PP_APPLY_SKEWED;
    }
    if (!dedup_insert(s, day, key)) {
        s->stats.duplicates++;
        return PP_APPLY_OK;
    }
    s->last_ci = UINT32_MAX;
    switch (ev->type) {
    case PP_EV_DEAL:
        if (ev->u.deal.event_type == PP_DEAL_CLOSED_WON) {
            apply_closed_won(s, &ev->u.deal, day);
        }
        else if (ev->u.deal.event_type == PP_DEAL_CANCELLED ||
                 ev->u.deal.event_type == PP_DEAL_CREDITED ||
                 ev->u.deal.event_type == PP_DEAL_AMENDED) {
            apply_reversal(s, &ev->u.deal, day);
        }
        else {
            s->stats.ignored++;
        }
        break;
    case PP_EV_CONSUMPTION:
        apply_consumption(s, &ev->u.consumption, day);
        break;
    case PP_EV_SUPPORT:
        apply_support(s, &ev->u.support, day);
        break;
    }
    /* The key goes with the customer's changelog record (or the meta
     * record), so that a restored stage still refuses the duplicate: logged
     * here, handed to the customer when state is written. */
    struct dedup_day *dd = &s->dedup[slot_of(s, day)];
    if (dd->day == day && !s->ephemeral) {
        if (dd->n_log == dd->cap_log) {
            dd->cap_log = dd->cap_log ? dd->cap_log * 2 : 64;
            dd->log = pp_xrealloc(dd->log, dd->cap_log * sizeof(*dd->log));
        }
        dd->log[dd->n_log].key = key;
        dd->log[dd->n_log].ci = s->last_ci;
        dd->n_log++;
    }
    if ((unsigned)ev->type < 4) {
        s->stats.events[ev->type]++;
    }
    if (s->min_day == NO_DAY || day < s->min_day) {
        s->min_day = day;
    }
    if (s->max_day == NO_DAY || day > s->max_day) {
        s->max_day = day;
    }
    s->meta_dirty = true;
    return PP_APPLY_OK;
}

enum pp_apply_result pp_cstage_apply(struct pp_cstage *s, const struct pp_event *ev)
{
    /* With many customers the day's dedup set and the customer id map are
     * tables of megabytes, each probed at a random slot: two misses to
     * memory per event. Both slots are requested here, before either is
     * read, so that the two misses overlap instead of following one another
     * (and the hashing of the customer id overlaps them); customer_intern
     * takes the hash from s->pre_h. A hint only: nothing else changes. */
    int32_t day = pp_day_from_ms(ev->occurred_at_ms);
    uint64_t key = event_key(ev);
    const struct dedup_day *dd = &s->dedup[slot_of(s, day)];
    if (dd->day == day && dd->cap > 0) {
        PREFETCH(&dd->keys[key & (dd->cap - 1)]);
    }
    s->pre_id = pp_event_customer_id(ev);
    s->pre_h = pp_hash_str(s->pre_id);
    pp_idmap_prefetch(s->customer_ids, s->pre_h);
    enum pp_apply_result r = apply_event(s, ev, day, key);
    s->pre_id = NULL;
    return r;
}

/* ---- applying a batch: software pipelining -------------------------------- */

/* pp_cstage_apply requests the dedup slot and the id map slot of the event it
 * is about to apply: the two misses overlap, but the event still waits for
 * one memory latency, and its customer's record can only be requested once
 * the id map slot has arrived (it names the record). With the events of a
 * batch at hand, each of those loads is requested several events before the
 * event is applied, so that it has arrived by then:
 *   - LOOK_D * 3 events ahead (look_hash): the event's day, dedup key and
 *     customer id hash; its dedup slot and id map slot are requested;
 *   - LOOK_D * 2 ahead (look_slot): the id map slot, arrived meanwhile, names
 *     the customer (a guess: pp_idmap_peek does not compare the key); its
 *     record and its key's pointer are requested;
 *   - LOOK_D ahead (look_cust): the record has arrived: the parts this
 *     event's apply will touch (its ring cell, support days or tranches and
 *     links) and the key string are requested.
 * Every one of these only reads and prefetches; whatever the batch's earlier
 * events change in between (a new customer, a grown table, a day started)
 * makes a hint useless at worst, never wrong: the events are then applied
 * one by one by apply_event, exactly as pp_cstage_apply applies them.
 * LOOK_D was chosen by measurement (bench_processor --look-d,
 * docs/performance.md "The batched path"). */
#define LOOK_D    4
#define LOOK_RING 64 /* a power of two > 3 * the largest distance (pp_cstage_apply_batch_d) */

_Static_assert(LOOK_RING > 3 * LOOK_D && (LOOK_RING & (LOOK_RING - 1)) == 0, "look-ahead ring");

struct look {
    const char *cid; /* the event's customer id, and its hash */
    uint64_t h;
    uint64_t key; /* event_key */
    int32_t day;
    uint32_t ci; /* the customer as peeked, UINT32_MAX unknown */
};

static void look_hash(const struct pp_cstage *s, const struct pp_event *ev, struct look *lk)
{
    lk->day = pp_day_from_ms(ev->occurred_at_ms);
    lk->key = event_key(ev);
    const struct dedup_day *dd = &s->dedup[slot_of(s, lk->day)];
    if (dd->day == lk->day && dd->cap > 0) {
        PREFETCH(&dd->keys[lk->key & (dd->cap - 1)]);
    }
    lk->cid = pp_event_customer_id(ev);
    lk->h = pp_hash_str(lk->cid);
    pp_idmap_prefetch(s->customer_ids, lk->h);
}

static void look_slot(const struct pp_cstage *s, struct look *lk)
{
    lk->ci = pp_idmap_peek(s->customer_ids, lk->h);
    if (lk->ci < pp_idmap_count(s->customer_ids)) {
        const char *c = (const char *)&s->customers[lk->ci];
        PREFETCH(c);
        PREFETCH(c + sizeof(struct customer) - 1);
        pp_idmap_prefetch_key(s->customer_ids, lk->ci);
    }
}

static void look_cust(const struct pp_cstage *s, const struct pp_event *ev, const struct look *lk)
{
    /* Every index below count has its record (customer_intern, restore). */
    if (lk->ci >= pp_idmap_count(s->customer_ids)) {
        return;
    }
    const struct customer *c = &s->customers[lk->ci];
    PREFETCH(pp_idmap_key(s->customer_ids, lk->ci));
    switch (ev->type) {
    case PP_EV_CONSUMPTION:
        PREFETCH(c->blk + cust_sums_bytes(&s->w) + (size_t)slot_of(s, lk->day) * (c->wide ? 4 : 2));
        break;
    case PP_EV_SUPPORT:
        if (c->sup != NULL) {
            PREFETCH(c->sup);
        }
        else {
            PREFETCH(c->blk + cust_sums_bytes(&s->w));
        }
        break;
    default:
        if (c->tr != NULL) {
            PREFETCH(c->tr);
        }
        if (c->links != NULL) {
            PREFETCH(c->links);
        }
        break;
    }
}

/* The loop of both entry points below; d, a constant in
 * pp_cstage_apply_batch, is folded in where this is inlined. */
static inline void apply_batch(struct pp_cstage *s, const struct pp_event *evs, size_t n,
                               enum pp_apply_result *res, size_t d)
{
    struct look ring[LOOK_RING];
    size_t a = 0, b = 0, c = 0; /* the next event of each look-ahead stage */
    for (size_t i = 0; i < n; i++) {
        size_t lim = n - i > 3 * d ? i + 3 * d + 1 : n;
        for (; a < lim; a++) {
            look_hash(s, &evs[a], &ring[a % LOOK_RING]);
        }
        lim = n - i > 2 * d ? i + 2 * d + 1 : n;
        for (; b < lim; b++) {
            look_slot(s, &ring[b % LOOK_RING]);
        }
        lim = n - i > d ? i + d + 1 : n;
        for (; c < lim; c++) {
            look_cust(s, &evs[c], &ring[c % LOOK_RING]);
        }
        /* As pp_cstage_apply: customer_intern takes the hash from pre_h. */
        const struct look *lk = &ring[i % LOOK_RING];
        s->pre_id = lk->cid;
        s->pre_h = lk->h;
        res[i] = apply_event(s, &evs[i], lk->day, lk->key);
        s->pre_id = NULL;
    }
}

void pp_cstage_apply_batch(struct pp_cstage *s, const struct pp_event *evs, size_t n,
                           enum pp_apply_result *res)
{
    apply_batch(s, evs, n, res, LOOK_D);
}

void pp_cstage_apply_batch_d(struct pp_cstage *s, const struct pp_event *evs, size_t n,
                             enum pp_apply_result *res, unsigned d)
{
    /* d = 0 still looks at each event just before applying it. */
    apply_batch(s, evs, n, res, d * 3 < LOOK_RING ? d : (LOOK_RING - 1) / 3);
}

/* ---- evaluation: tranches on a day ---------------------------------------- */

struct spans {
    int32_t start[PP_MODEL_MAX_TRANCHES];
    int32_t end[PP_MODEL_MAX_TRANCHES];
    bool visible[PP_MODEL_MAX_TRANCHES];
    bool counts[PP_MODEL_MAX_TRANCHES]; /* contributes entitled seats */
};

/* Seats a credit returns: the credited share of the deal's ACV. */
static int32_t credit_back(const struct tranche *t)
{
    double share = t->credit_acv / t->acv;
    return (int32_t)lround((share > 1.0 ? 1.0 : share) * t->seats);
}

static int32_t seats_on_f(const struct tranche *t, int32_t day, double f)
{
    int32_t seats = t->seats;
    if (t->cut_day != NO_DAY && day >= t->cut_day) {
        if (t->cut_seats == CUT_ALL) {
            return 0;
        }
        seats = seats > t->cut_seats ? seats - t->cut_seats : 0;
    }
    if (t->credit_seats && f > 0.0 && t->credit_day != NO_DAY && day >= t->credit_day &&
        t->acv > 0.0) {
        /* A credit on a seat deal returns the same share of its seats (or
         * the part of it the licence feed confirms): the tranche is net of
         * downsizes (§2.3 S1), whatever form they take. */
        int32_t back = (int32_t)lround(credit_back(t) * f);
        seats = seats > back ? seats - back : 0;
    }
    return seats;
}

static int32_t seats_on(const struct tranche *t, int32_t day)
{
    return seats_on_f(t, day, t->credit_f);
}

/* Which tranches hold seats on `day` and over which days. Renewals continue
 * the tranche they renew (its age is kept, its end extended); a renewal of
 * something before our history stands alone and counts as mature. */
static void tranche_spans(const struct pp_cstage *s, const struct customer *c, int32_t day,
                          struct spans *sp)
{
    for (uint32_t i = 0; i < c->n_tr; i++) {
        const struct tranche *t = &c->tr[i];
        bool vis = t->partner >= 0 && t->known != NO_DAY && t->known <= day;
        sp->visible[i] = vis;
        sp->start[i] = t->start;
        sp->end[i] = t->end;
        if (t->cut_seats == CUT_ALL && t->cut_day != NO_DAY && t->cut_day < sp->end[i]) {
            sp->end[i] = t->cut_day;
        }
        sp->counts[i] = vis && (t->kind == TR_SEATS || t->kind == TR_ADDON);
    }
    for (uint32_t i = 0; i < c->n_tr; i++) {
        const struct tranche *r = &c->tr[i];
        if (!sp->visible[i] || r->kind != TR_RENEWAL) {
            continue;
        }
        bool continued = false;
        for (uint32_t j = 0; j < c->n_tr; j++) {
            if (sp->counts[j] && c->tr[j].kind != TR_RENEWAL && abs(r->start - sp->end[j]) <= 90) {
                sp->end[j] = max_i32(sp->end[j], sp->end[i]);
                continued = true;
            }
        }
        if (!continued) {
            sp->counts[i] = true;
            sp->start[i] = r->start - (int32_t)s->conf.mature_days;
        }
    }
}

static bool active_on(const struct spans *sp, uint32_t i, int32_t day)
{
    return sp->start[i] <= day && day < sp->end[i];
}

/* The deal's own contract is running (ACV counts): renewals extend seats,
 * not the ACV of the deal they renew; a cancellation ends it. */
static bool contract_active(const struct tranche *t, int32_t day)
{
    int32_t end = t->end;
    if (t->cut_seats == CUT_ALL && t->cut_day != NO_DAY && t->cut_day < end) {
        end = t->cut_day;
    }
    return t->start <= day && day < end;
}

/* Seat-days of tranche i over [from, to]: expected (weighted by T(age)) or
 * entitled (target 1), split at a negative amendment. */
static double tranche_seatdays(const struct pp_cstage *s, const struct tranche *t,
                               const struct spans *sp, uint32_t i, int32_t from, int32_t to,
                               bool expected)
{
    int32_t start = sp->start[i], end = sp->end[i];
    /* Seats change only on the amendment and credit days: split there. */
    int32_t cuts[3] = {from, NO_DAY, NO_DAY};
    int ncuts = 1;
    int32_t c1 = t->cut_day != NO_DAY && t->cut_seats != CUT_ALL ? t->cut_day : NO_DAY;
    int32_t c2 = t->credit_day;
    if (c1 != NO_DAY && c2 != NO_DAY && c2 < c1) {
        int32_t x = c1;
        c1 = c2;
        c2 = x;
    }
    if (c1 != NO_DAY && c1 > from && c1 <= to) {
        cuts[ncuts++] = c1;
    }
    if (c2 != NO_DAY && c2 > cuts[ncuts - 1] && c2 <= to) {
        cuts[ncuts++] = c2;
    }
    double total = 0.0;
    for (int part = 0; part < ncuts; part++) {
        int32_t lo = cuts[part];
        int32_t hi = part + 1 < ncuts ? cuts[part + 1] - 1 : to;
        double seats = seats_on(t, lo);
        if (hi < lo) {
            continue;
        }
        if (expected) {
            total += pp_sig_expected_seatdays(&s->conf, seats, start, end, lo, hi);
        }
        else {
            int32_t a = max_i32(lo, start), b = min_i32(hi, end - 1);
            if (b >= a) {
                total += seats * (double)(b - a + 1);
            }
        }
    }
    return total;
}

/* ---- evaluation: step 1, finalize a customer's day ------------------------ */

static float upre_of(const struct pp_cstage *s, const struct customer *c, const struct spans *sp,
                     uint32_t i, int32_t day)
{
    const struct tranche *t = &c->tr[i];
    int32_t pre = t->close - 1;
    if ((int64_t)pre < (int64_t)day - s->w.span || c->first_snap_day == NO_DAY ||
        c->first_snap_day > pre) {
        return -1.0f; /* no pre-deal snapshot: not a qualifying add-on */
    }
    uint32_t a = cust_active(&s->w, c, slot_of(s, pre));
    if (a == NO_ACTIVE) {
        return -1.0f;
    }
    double e_pre = 0.0;
    for (uint32_t j = 0; j < c->n_tr; j++) {
        if (j != i && sp->counts[j] && active_on(sp, j, pre) && c->tr[j].close <= pre) {
            e_pre += seats_on(&c->tr[j], pre);
        }
    }
    if (e_pre < s->conf.oversell_min_pre_seats) {
        return -1.0f;
    }
    return (float)((double)a / e_pre);
}

static double b0_of(const struct pp_cstage *s, const struct customer *c, const struct tranche *t,
                    int32_t day)
{
    int32_t from = t->close - (int32_t)s->conf.oversize_pre_days;
    if (c->cblk == NULL || c->first_cons_day == NO_DAY || c->first_cons_day > from ||
        (int64_t)from < (int64_t)day - s->w.span) {
        return -1.0; /* a new consumer: OVERSIZE is null */
    }
    double sum = 0.0;
    for (int32_t d = from; d < t->close; d++) {
        sum += cust_cons(&s->w, c)[slot_of(s, d)];
    }
    double b0 = sum / (double)s->conf.oversize_pre_days;
    return b0 > 0.0 ? b0 : -1.0;
}

/* How much of the credited seats are gone on `day`: all (credit_mode 1),
 * none (0), or (2) the part the licence feed confirms — the entitlement it
 * reports below the seats sold. A price concession that leaves the seats
 * in place therefore stays money only. */
static void credit_shares(const struct pp_cstage *s, struct customer *c, const struct spans *sp,
                          int32_t day)
{
    double gross = 0.0, net = 0.0;
    bool any = false;
    for (uint32_t i = 0; i < c->n_tr; i++) {
        const struct tranche *t = &c->tr[i];
        if (!sp->counts[i] || !active_on(sp, i, day)) {
            continue;
        }
        gross += seats_on_f(t, day, 0.0);
        net += seats_on_f(t, day, 1.0);
        any = any || (t->credit_seats && t->credit_day != NO_DAY && t->credit_day <= day);
    }
    double f = 0.0;
    if (any && net < gross) {
        if (s->conf.credit_mode == 1) {
            f = 1.0;
        }
        else if (s->conf.credit_mode == 2 && c->ent_now != UINT32_MAX) {
            f = (gross - (double)c->ent_now) / (gross - net);
            f = f < 0.0 ? 0.0 : (f > 1.0 ? 1.0 : f);
        }
    }
    for (uint32_t i = 0; i < c->n_tr; i++) {
        c->tr[i].credit_f = (float)f;
    }
}

/* The sums since `since` (cust_since) after finalizing `day` with these
 * values: restarted on the first day, nothing without one. */
static void since_add(struct wsum *ws, int32_t since, int32_t day, uint32_t act, uint32_t wt,
                      const uint8_t cnt[4])
{
    if (since == NO_DAY || since == day) {
        memset(ws, 0, sizeof(*ws));
    }
    if (since == NO_DAY) {
        return;
    }
    ws->active += act;
    ws->wt += wt;
    ws->opened += cnt[0];
    ws->esc += cnt[1];
    ws->resp += cnt[2];
    ws->pos += cnt[3];
}

/* pool: add the day to today's cohort partial (false when catching up a
 * restored customer: that day's partials were sent long ago). */
static void finalize_customer(struct pp_cstage *s, struct customer *c, int32_t day, bool pool)
{
    uint32_t sl = slot_of(s, day);
    uint32_t act = cust_active(&s->w, c, sl);
    if (act == NO_ACTIVE) {
        act = c->last_snap_day != NO_DAY ? c->last_active : 0; /* carried forward */
        cust_set_active(&s->w, c, sl, act);
    }
    else {
        c->last_active = act;
        c->last_snap_day = day;
        if (c->first_snap_day == NO_DAY) {
            c->first_snap_day = day;
        }
    }
    uint8_t cnt[4];
    uint32_t wt = cust_sup_get(&s->w, c, day, cnt);
    const float *cring = c->cblk ? cust_cons(&s->w, c) : NULL;
    float cons = cring ? cring[sl] : 0.0f;
    struct wsum *sums = cust_sums(&s->w, c);
    for (uint32_t w = 0; w < s->w.nwin; w++) {
        struct wsum *ws = &sums[w];
        uint32_t os = slot_of(s, day - (int32_t)s->w.win[w]);
        uint32_t oa = cust_active(&s->w, c, os);
        uint32_t old_active = oa == NO_ACTIVE ? 0 : oa;
        uint8_t ocnt[4];
        uint32_t owt = cust_sup_get(&s->w, c, day - (int32_t)s->w.win[w], ocnt);
        ws->active += (uint64_t)act - old_active;
        ws->wt += wt - owt;
        ws->opened += (uint32_t)cnt[0] - ocnt[0];
        ws->esc += (uint32_t)cnt[1] - ocnt[1];
        ws->resp += (uint32_t)cnt[2] - ocnt[2];
        ws->pos += (uint32_t)cnt[3] - ocnt[3];
        if (cring) {
            c->cblk[w] += (double)cons - (double)cring[os];
        }
    }
    c->cons_cum += cons;

    int32_t best = NO_DAY;
    for (uint16_t i = 0; i < c->n_ent;) {
        struct ent_snap *e = cust_ent(c, i);
        if (e->day > day) {
            i++;
            continue;
        }
        if (e->day > best) {
            best = e->day;
            c->ent_now = e->val;
        }
        *e = *cust_ent(c, --c->n_ent);
    }
    struct spans sp;
    tranche_spans(s, c, day, &sp);
    credit_shares(s, c, &sp, day);
    int32_t first = NO_DAY;
    for (uint32_t i = 0; i < c->n_tr; i++) {
        struct tranche *t = &c->tr[i];
        if (!sp.visible[i]) {
            continue;
        }
        if (t->kind == TR_ADDON && isnan(t->u_pre)) {
            t->u_pre = upre_of(s, c, &sp, i, day);
        }
        if (t->kind == TR_COMMIT) {
            if (isnan(t->b0)) {
                t->b0 = b0_of(s, c, t, day);
            }
            if (isnan(t->commit_base) && t->start <= day) {
                double recent = 0.0;
                int32_t lo = max_i32(t->start, day - (int32_t)s->w.span + 1);
                for (int32_t d = lo; c->cblk && d <= day; d++) {
                    recent += cust_cons(&s->w, c)[slot_of(s, d)];
                }
                t->commit_base = c->cons_cum - recent;
            }
        }
        if (sp.counts[i] && active_on(&sp, i, day)) {
            first = first == NO_DAY ? sp.start[i] : min_i32(first, sp.start[i]);
        }
    }
    int8_t was = c->band;
    c->band = -1;
    if (first != NO_DAY) {
        int32_t age = day - first;
        c->band = (int8_t)(age < (int32_t)s->conf.onboarding_days
                               ? 0
                               : (age < (int32_t)s->conf.mature_days ? 1 : 2));
    }
    /* Today's values go to the cohort pool of (product, band) below, if
     * both are known: track since when the customer sits in its pools. */
    if (c->product < 0 || c->band < 0) {
        c->band_since = NO_DAY;
        c->mature_since = NO_DAY;
    }
    else {
        if (c->band != was || c->band_since == NO_DAY) {
            c->band_since = day;
        }
        if (c->band < 1) {
            c->mature_since = NO_DAY;
        }
        else if (was < 1 || c->mature_since == NO_DAY) {
            c->mature_since = day;
        }
    }
    struct wsum *since = cust_since(&s->w, c);
    since_add(&since[0], c->band_since, day, act, wt, cnt);
    since_add(&since[1], c->mature_since, day, act, wt, cnt);
    if (pool && c->product >= 0 && c->band >= 0) {
        struct cpart_int *cp = &s->today[(size_t)c->product * N_BANDS + (size_t)c->band];
        cp->wt += wt;
        cp->active += act;
        cp->opened += cnt[0];
        cp->esc += cnt[1];
        cp->resp += cnt[2];
        cp->pos += cnt[3];
        cp->customers++;
    }
    /* The oldest slot the evaluation reads is now free for a future day. */
    uint32_t fs = slot_of(s, day - (int32_t)s->w.span);
    cust_set_active(&s->w, c, fs, NO_ACTIVE);
    if (c->dense_sup) {
        cust_set_wt(&s->w, c, fs, 0);
        memset(cust_cnt(&s->w, c, fs), 0, 4);
    }
    else if (c->n_sup > 0) {
        /* The entries of days <= day - span: their slot is cleared. */
        int32_t fday = day - (int32_t)s->w.span;
        uint32_t k = 0;
        while (k < c->n_sup && c->sup[k].day <= fday) {
            k++;
        }
        if (k == c->n_sup) {
            free(c->sup); /* none left: a quiet customer holds nothing */
            c->sup = NULL;
            c->n_sup = c->cap_sup = 0;
        }
        else if (k > 0) {
            memmove(c->sup, c->sup + k, (c->n_sup - k) * sizeof(*c->sup));
            c->n_sup = (uint8_t)(c->n_sup - k);
        }
    }
    if (c->cblk) {
        cust_cons(&s->w, c)[fs] = 0.0f;
    }
    c->done = day;
}

static void catch_up(struct pp_cstage *s, struct customer *c)
{
    if (s->last_closed == NO_DAY) {
        return;
    }
    /* A record written before its first finalize: the customer came before
     * the stage closed any day (customer_intern gives later ones the last
     * evaluated day), so the stage's first closed day, min_day (no event
     * older than it is taken once a day is closed), is its first one too. */
    int32_t from = c->done != NO_DAY ? c->done + 1 : s->min_day;
    for (int32_t d = from; d <= s->last_closed; d++) {
        finalize_customer(s, c, d, false);
    }
}

void pp_cstage_settle(struct pp_cstage *s)
{
    uint32_t nc = pp_idmap_count(s->customer_ids);
    for (uint32_t ci = 0; ci < nc; ci++) {
        catch_up(s, &s->customers[ci]);
    }
}

/* ---- evaluation: step 2, the assessments ----------------------------------- */

/* The sums over the finalized days [from, to] read back from the rings
 * (days the rings still hold). */
static void scan_days(const struct pp_cstage *s, const struct customer *c, int32_t from, int32_t to,
                      struct wsum *out)
{
    /* Locals: out may alias the byte rings as far as C knows. */
    uint64_t active = 0;
    uint32_t wt = 0, opened = 0, esc = 0, resp = 0, pos = 0;
    for (int32_t d = from; d <= to; d++) {
        uint32_t sl = slot_of(s, d);
        uint32_t a = cust_active(&s->w, c, sl);
        active += a == NO_ACTIVE ? 0 : a;
        if (c->dense_sup) {
            const uint8_t *cnt = cust_cnt(&s->w, c, sl);
            wt += cust_wt(&s->w, c, sl);
            opened += cnt[0];
            esc += cnt[1];
            resp += cnt[2];
            pos += cnt[3];
        }
    }
    for (uint32_t i = 0; !c->dense_sup && i < c->n_sup; i++) {
        const struct sday *e = &c->sup[i];
        if (e->day >= from && e->day <= to) {
            wt += e->wt;
            opened += e->cnt[0];
            esc += e->cnt[1];
            resp += e->cnt[2];
            pos += e->cnt[3];
        }
    }
    *out = (struct wsum){active, wt, opened, esc, resp, pos};
}

void pp_cust_since_rebuild(const struct pp_cstage *s, struct customer *c)
{
    struct wsum *since = cust_since(&s->w, c);
    const int32_t days[2] = {c->band_since, c->mature_since};
    for (int i = 0; i < 2; i++) {
        memset(&since[i], 0, sizeof(since[i]));
        if (days[i] == NO_DAY || c->done == NO_DAY || days[i] > c->done) {
            continue;
        }
        /* Days older than the rings' span are gone: own_since reads these
         * sums only while `since` is within the longest window, which the
         * span covers, so a sum that starts earlier is never read. */
        int32_t from = days[i];
        if (from < c->done - (int32_t)s->w.span + 1) {
            from = c->done - (int32_t)s->w.span + 1;
        }
        scan_days(s, c, from, c->done, &since[i]);
    }
}

/* The customer's own sums over the days of window w (ending on `day`) from
 * `since` on: the whole window when it has been in the pool all along (the
 * usual case); after a band change only the days it has spent in the pool
 * since: [since, day] whatever the window, kept as the days are finalized
 * (cust_since: `since_sum`), so both cases are O(1). */
static void own_since(const struct pp_cstage *s, const struct customer *c, uint32_t w, int32_t day,
                      int32_t since, const struct wsum *since_sum, struct pp_xown *out)
{
    int32_t from = day - (int32_t)s->w.win[w] + 1;
    const struct wsum *ws = since != NO_DAY && since > from ? since_sum : &cust_sums(&s->w, c)[w];
    out->active = ws->active;
    out->wt = ws->wt;
    out->opened = ws->opened;
    out->esc = ws->esc;
    out->resp = ws->resp;
    out->pos = ws->pos;
}

static void xsig_set(struct pp_xsig *x, struct pp_sig s)
{
    x->present = s.present;
    x->value = s.value;
    x->risk = s.risk;
}

/* Customer-level facts, once per customer and day, into the assessment
 * template x (its customer part). */
static void customer_facts(const struct pp_cstage *s, const struct customer *c, int32_t day,
                           struct spans *sp, double *entitled_out, double *total_acv_out,
                           struct pp_xrec_assess *x)
{
    const struct pp_model_conf *cf = &s->conf;
    tranche_spans(s, c, day, sp);
    double aged = 0.0, entitled = 0.0, total_acv = 0.0;
    bool has_seats = false;
    for (uint32_t i = 0; i < c->n_tr; i++) {
        const struct tranche *t = &c->tr[i];
        if (!sp->visible[i]) {
            continue;
        }
        if (contract_active(t, day)) {
            total_acv += t->acv;
        }
        if (sp->counts[i] && active_on(sp, i, day)) {
            int32_t seats = seats_on(t, day);
            has_seats = true;
            entitled += seats;
            if (day - sp->start[i] >= (int32_t)cf->shelf_aged_days) {
                aged += seats;
            }
        }
    }
    x->has_seats = has_seats;
    int32_t snap_age = c->last_snap_day != NO_DAY ? day - c->last_snap_day : -1;
    const uint32_t wa[2] = {s->w.w_adopt_s, s->w.w_adopt_l};
    const uint32_t wl[2] = {s->w.w_load_s, s->w.w_load_l};
    for (int k = 0; k < 2; k++) {
        /* Expected and actual seat-days over the same days: those since the
         * first snapshot, so a customer whose usage feed starts mid-window is
         * not compared with days it could not report. */
        int32_t from = day - (int32_t)s->w.win[wa[k]] + 1;
        if (c->first_snap_day != NO_DAY && c->first_snap_day > from) {
            from = c->first_snap_day;
        }
        double exp = 0.0, ent = 0.0;
        for (uint32_t i = 0; i < c->n_tr; i++) {
            if (sp->counts[i]) {
                exp += tranche_seatdays(s, &c->tr[i], sp, i, from, day, true);
                ent += tranche_seatdays(s, &c->tr[i], sp, i, from, day, false);
            }
        }
        double act = (double)cust_sums(&s->w, c)[wa[k]].active;
        xsig_set(&x->shelf[k], pp_sig_shelf(cf, exp, act, entitled, aged, snap_age));
        if (k == 0) {
            x->exp_util0 = ent > 0.0 ? exp / ent : NAN;
        }
        uint32_t wdays = s->w.win[wl[k]];
        if (c->first_snap_day != NO_DAY && day - c->first_snap_day + 1 < (int32_t)wdays) {
            wdays = (uint32_t)(day - c->first_snap_day + 1); /* same reason */
        }
        x->load_wdays[k] = wdays;
    }
    const uint32_t ws[PP_XW__COUNT] = {s->w.w_load_s, s->w.w_load_l, s->w.w_ratio_s,
                                       s->w.w_ratio_l};
    bool pooled = c->product >= 0 && c->band >= 0;
    const struct wsum *since = cust_since(&s->w, c);
    for (int i = 0; i < PP_XW__COUNT; i++) {
        own_since(s, c, ws[i], day, NO_DAY, NULL, &x->win[i]);
        if (pooled) {
            own_since(s, c, ws[i], day, c->band_since, &since[0], &x->band_own[i]);
        }
        else {
            memset(&x->band_own[i], 0, sizeof(x->band_own[i]));
        }
        if (pooled && c->band >= 1) {
            own_since(s, c, ws[i], day, c->mature_since, &since[1], &x->mature_own[i]);
        }
        else {
            memset(&x->mature_own[i], 0, sizeof(x->mature_own[i]));
        }
    }
    x->band = pooled ? c->band : -1;
    if (pooled) {
        copy_id(x->product_id, pp_idmap_key(s->product_ids, (uint32_t)c->product));
        x->hint_product = (uint32_t)c->product;
    }
    else {
        x->product_id[0] = '\0';
        x->hint_product = UINT32_MAX;
    }
    *entitled_out = entitled;
    *total_acv_out = total_acv;
}

/* The partner x customer facts of link li into x; false when no deal of the
 * partner is visible (no assessment, as the monolith skipped the pair). */
static bool pxc_facts(const struct pp_cstage *s, const struct customer *c, int32_t partner,
                      int32_t day, const struct spans *sp, double entitled, double total_acv,
                      struct pp_xrec_assess *x)
{
    const struct pp_model_conf *cf = &s->conf;
    int32_t from180 = day - (int32_t)cf->push_short_days;
    int32_t from365 = day - (int32_t)cf->push_long_days;
    double s365 = 0.0, acv180 = 0.0, o = 0.0, oseats = 0.0, partner_acv = 0.0;
    uint32_t odeals = 0;
    bool any_visible = false, touched = false;
    struct pp_sig gap[2] = {{false, 0.0, 0.0}, {false, 0.0, 0.0}};
    struct pp_sig oversize = {false, 0.0, 0.0};
    const uint32_t wa[2] = {s->w.w_adopt_s, s->w.w_adopt_l};
    x->n_qedeal = 0;
    for (uint32_t i = 0; i < c->n_tr; i++) {
        const struct tranche *t = &c->tr[i];
        if (!sp->visible[i] || t->partner != partner) {
            continue;
        }
        any_visible = true;
        bool active = active_on(sp, i, day);
        if (t->close > from365) {
            touched = true;
        }
        if (contract_active(t, day)) {
            partner_acv += t->acv;
            if (t->close > from180) {
                acv180 += t->acv;
            }
        }
        if (active && t->close > from365 && t->kind != TR_COMMIT) {
            s365 += seats_on(t, day);
        }
        if (t->kind == TR_ADDON && t->close > from180 && t->u_pre >= 0.0f) {
            o += t->seats * pp_sig_oversell_factor(cf, t->u_pre);
            oseats += t->seats;
            odeals++;
        }
        if (t->close > from180 && !isnan(t->discount) && x->n_qedeal < PP_XREC_MAX_QEDEAL) {
            /* QEDEAL needs the partner's reference discount: the partners
             * side picks the riskiest of these, in this order. */
            x->qedeal_qe[x->n_qedeal] = t->qe;
            x->qedeal_disc[x->n_qedeal] = t->discount;
            x->qedeal_close[x->n_qedeal] = t->close;
            x->n_qedeal++;
        }
        if (t->kind == TR_COMMIT && active) {
            struct pp_sig ov = pp_sig_oversize(cf, t->commit_k, sp->end[i] - t->start, t->b0);
            if (ov.present && (!oversize.present || ov.risk > oversize.risk)) {
                oversize = ov;
            }
            if (!isnan(t->commit_base)) {
                double cum = c->cons_cum - t->commit_base;
                for (int k = 0; k < 2; k++) {
                    double rr = (c->cblk ? c->cblk[wa[k]] : 0.0) / (double)s->w.win[wa[k]];
                    struct pp_sig g =
                        pp_sig_commit_gap(cf, t->commit_k, cum, rr, t->start, sp->end[i], day);
                    if (g.present && (!gap[k].present || g.risk > gap[k].risk)) {
                        gap[k] = g;
                    }
                }
            }
        }
    }
    if (!any_visible) {
        return false;
    }
    x->touched = touched;
    x->s365 = entitled > 0.0 ? s365 / entitled : 0.0;
    x->s180 = total_acv > 0.0 ? acv180 / total_acv : 0.0;
    x->partner_acv = partner_acv;
    xsig_set(&x->oversell, pp_sig_oversell(cf, o, oseats, odeals));
    x->oversell_o = o;
    x->oversell_seats = oseats;
    x->oversell_deals = odeals;
    xsig_set(&x->gap[0], gap[0]);
    xsig_set(&x->gap[1], gap[1]);
    xsig_set(&x->oversize, oversize);
    return true;
}

static void assess_customer(struct pp_cstage *s, uint32_t ci, int32_t day, struct pp_xrec *xr,
                            pp_xrec_cb *cb, void *opaque)
{
    const struct customer *c = &s->customers[ci];
    struct pp_xrec_assess *x = &xr->u.assess;
    struct spans sp;
    double entitled, total_acv;
    customer_facts(s, c, day, &sp, &entitled, &total_acv, x);
    bool named = false;
    for (uint32_t li = 0; li < c->n_links; li++) {
        if (!pxc_facts(s, c, c->links[li], day, &sp, entitled, total_acv, x)) {
            continue;
        }
        if (!named) {
            copy_id(x->customer_id, pp_idmap_key(s->customer_ids, ci));
            x->hint_customer = ci;
            x->hint_owner = s->token;
            named = true;
        }
        copy_id(x->partner_id, pp_idmap_key(s->partner_ids, (uint32_t)c->links[li]));
        x->hint_partner = (uint32_t)c->links[li];
        x->link = (uint8_t)li;
        if (cb) {
            cb(xr, opaque);
        }
    }
}

static void emit_eod(struct pp_cstage *s, int32_t day, uint8_t flags, pp_xrec_cb *cb, void *opaque)
{
    struct pp_xrec x;
    memset(&x, 0, sizeof(x));
    x.kind = PP_XREC_EOD;
    x.source = s->source;
    x.day = day;
    x.u.eod.flags = flags;
    s->eod_sent = day;
    s->meta_dirty = true;
    if (cb) {
        cb(&x, opaque);
    }
}

static void close_day(struct pp_cstage *s, int32_t day, struct pp_xrec *xr, pp_xrec_cb *cb,
                      void *opaque)
{
    pp_sort_ids(s->customer_ids, &s->csorted, &s->csorted_n);
    uint32_t np = pp_idmap_count(s->product_ids);
    memset(s->today, 0, (size_t)np * N_BANDS * sizeof(struct cpart_int));
    for (uint32_t k = 0; k < s->csorted_n; k++) {
        struct customer *c = &s->customers[s->csorted[k]];
        catch_up(s, c);
        finalize_customer(s, c, day, true);
    }
    /* Not written to the changelog for that: a restored record catches up
     * (pp_cstage_settle), so a customer is written only when an event
     * changed it. */
    s->last_closed = day;
    /* The stage's cohort partials: only pools somebody sits in. */
    memset(xr, 0, offsetof(struct pp_xrec, u));
    xr->kind = PP_XREC_COHORT;
    xr->source = s->source;
    xr->day = day;
    for (uint32_t p = 0; p < np; p++) {
        for (int b = 0; b < N_BANDS; b++) {
            const struct cpart_int *cp = &s->today[(size_t)p * N_BANDS + (size_t)b];
            if (cp->customers == 0) {
                continue;
            }
            struct pp_xrec_cohort *x = &xr->u.cohort;
            copy_id(x->product_id, pp_idmap_key(s->product_ids, p));
            x->band = (uint8_t)b;
            x->customers = cp->customers;
            x->wt = cp->wt;
            x->active = cp->active;
            x->opened = cp->opened;
            x->esc = cp->esc;
            x->resp = cp->resp;
            x->pos = cp->pos;
            if (cb) {
                cb(xr, opaque);
            }
        }
    }
    xr->kind = PP_XREC_ASSESS;
    for (uint32_t k = 0; k < s->csorted_n; k++) {
        if (s->customers[s->csorted[k]].n_links > 0) {
            assess_customer(s, s->csorted[k], day, xr, cb, opaque);
        }
    }
    s->last_eval = day;
    dedup_forget(s, day - (int32_t)s->conf.dedup_horizon_days);
    s->stats.days_evaluated++;
    emit_eod(s, day, PP_EOD_EVALUATED | PP_EOD_STARTED, cb, opaque);
}

void pp_cstage_advance(struct pp_cstage *s, int64_t watermark_ms, pp_xrec_cb *cb, void *opaque)
{
    pp_cstage_drain(s, cb, opaque);
    if (watermark_ms > s->watermark) {
        s->watermark = watermark_ms;
        s->meta_dirty = true;
    }
    if (s->watermark == INT64_MIN) {
        return;
    }
    int32_t closed = pp_day_from_ms(s->watermark - s->conf.allowed_lateness_ms) - 1;
    if (s->min_day != NO_DAY) {
        int32_t start = s->last_eval == NO_DAY ? s->min_day : s->last_eval + 1;
        /* A year after the newest event every window is empty and every
         * alert resolved: a long watermark jump evaluates up to there and
         * skips the rest, which would change nothing. */
        int64_t quiet = (int64_t)s->max_day + s->conf.push_long_days + s->conf.reopen_days;
        struct pp_xrec *xr = NULL;
        for (int64_t d = start; d <= closed; d++) {
            if (d > quiet) {
                s->last_eval = closed;
                s->meta_dirty = true;
                break;
            }
            if (xr == NULL) {
                xr = pp_xcalloc(1, sizeof(*xr));
            }
            close_day(s, (int32_t)d, xr, cb, opaque);
        }
        free(xr);
    }
    /* Every day up to `closed` is done here: say so even when nothing was
     * evaluated (no event yet, or a quiet jump), or the partners side would
     * wait for this stage forever. Before the stage has a last evaluated day
     * the promise is soft: an event of an older day is still accepted, as
     * one pp_model accepts it. */
    if (s->eod_sent == NO_DAY || closed > s->eod_sent) {
        emit_eod(s, closed, s->last_eval != NO_DAY ? PP_EOD_STARTED : 0, cb, opaque);
    }
}

int64_t pp_cstage_watermark(const struct pp_cstage *s)
{
    return s->watermark;
}

int32_t pp_cstage_last_day(const struct pp_cstage *s)
{
    return s->last_eval;
}

int32_t pp_cstage_first_day(const struct pp_cstage *s)
{
    return s->min_day;
}

int32_t pp_cstage_room_days(const struct pp_model_conf *conf)
{
    /* fits(): the rings' width less the history the evaluation reads back */
    return (int32_t)conf->state_days - (int32_t)pp_history_span(conf) - 1;
}

bool pp_cstage_has_link(const struct pp_cstage *s, const char *partner_id, const char *customer_id)
{
    int64_t ci = pp_idmap_find(s->customer_ids, customer_id);
    int64_t pi = pp_idmap_find(s->partner_ids, partner_id);
    if (ci < 0 || pi < 0) {
        return false;
    }
    const struct customer *c = &s->customers[ci];
    for (uint32_t i = 0; i < c->n_links; i++) {
        if (c->links[i] == pi) {
            return true;
        }
    }
    return false;
}

uint32_t pp_cstage_source(const struct pp_cstage *s)
{
    return s->source;
}

const struct pp_model_stats *pp_cstage_stats(const struct pp_cstage *s)
{
    struct pp_model_stats *st = (struct pp_model_stats *)&s->stats;
    size_t bytes = sizeof(*s) + (size_t)PP_MODEL_MAX_PRODUCTS * N_BANDS * sizeof(struct cpart_int);
    uint32_t nc = pp_idmap_count(s->customer_ids);
    bytes += (size_t)s->customers_cap * sizeof(struct customer);
    for (uint32_t i = 0; i < nc; i++) {
        const struct customer *c = &s->customers[i];
        bytes += pp_cust_blk_bytes(&s->w, c->wide, c->dense_sup);
        bytes += c->cap_sup * sizeof(struct sday);
        bytes += c->cblk ? cons_block_bytes(s) : 0;
        bytes += c->cap_tr * sizeof(struct tranche) + c->cap_links * sizeof(int32_t);
    }
    st->bytes_state = bytes;
    return st;
}
