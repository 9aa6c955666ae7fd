/*
 * serial.c — the stages' state as store keys and values (stage.h "state
 * serialisation"): what the runtime writes to its changelog topics and
 * snapshot files, and reads back on restore.
 *
 * One key per customer ('c' + id: everything the customers stage keeps for
 * it, its rings, deals, links and the dedup keys of its events), per partner
 * ('p' + id: ledger, reversals, rule machines and the last day's values the
 * views show), per partner x customer pair ('x' + partner + NUL + customer:
 * its CUSTOMER_PRESSURE machine and last CPI), per cohort product on the
 * partners side ('q' + product: its day ring and window sums), and one meta
 * key per stage ('m': last evaluated day, first reversal day, watermark,
 * per-source markers, dedup keys of events that touched no customer).
 *
 * A customer is written when an event changes it, not each time a closed
 * day moves its rings: its record carries the day it was finalized up to,
 * and pp_cstage_settle replays the days since on a restored stage.
 *
 * Values are hand-written compact binary, like the exchange records and
 * for the same reasons (our own store, written every commit interval):
 * a version byte first, varints for counts and integers, zig-zag varints
 * for days, zero runs in the rings, doubles and floats as their bits so a
 * restored stage computes exactly what the original would have. Ids are
 * stored as strings, never as indexes: indexes are the order of arrival,
 * which a restore does not repeat. The reader checks every length and range
 * and refuses what it does not fully consume.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "palloc.h"
#include "stage_int.h"

/* 2: a customer's support days are sparse or dense rings (struct customer);
 * 1 had dense rings always, and is still read (as dense rings). Every other
 * record is the same in both. */
#define SERIAL_VERSION     2
#define SERIAL_VERSION_MIN 1

/* ---- writer ------------------------------------------------------------------ */

/* A ring of n values: each value, and after a 0 the count of further 0s. */
static void w_ring(struct pp_wbuf *o, uint32_t n, uint64_t (*get)(const void *, uint32_t),
                   const void *ring)
{
    for (uint32_t i = 0; i < n;) {
        uint64_t v = get(ring, i);
        pp_wb_var(o, v);
        i++;
        if (v == 0) {
            uint32_t run = 0;
            while (i < n && get(ring, i) == 0) {
                run++;
                i++;
            }
            pp_wb_var(o, run);
        }
    }
}

static void w_rule(struct pp_wbuf *o, const struct pp_rule_state *st)
{
    pp_wb_u8(o, st->phase);
    pp_wb_u8(o, st->severity);
    pp_wb_u8(o, st->hist_n);
    pp_wb_var(o, st->run);
    pp_wb_var(o, st->crit_run);
    pp_wb_var(o, st->deesc_run);
    pp_wb_var(o, st->resolve_run);
    pp_wb_var(o, st->reopen_count);
    pp_wb_zz(o, st->pending_start);
    pp_wb_zz(o, st->first_seen);
    pp_wb_zz(o, st->fired_day);
    pp_wb_zz(o, st->changed_day);
    pp_wb_zz(o, st->resolved_day);
    for (int i = 0; i < PP_RULE_HIST; i++) {
        pp_wb_u8(o, st->hist_sev[i]);
        pp_wb_zz(o, st->hist_day[i]);
    }
}

static void w_sig(struct pp_wbuf *o, const struct pp_sig *s)
{
    pp_wb_u8(o, s->present ? 1 : 0);
    pp_wb_f64(o, s->value);
    pp_wb_f64(o, s->risk);
}

/* ---- reader ------------------------------------------------------------------ */

static void r_ring(struct pp_rbuf *r, uint32_t n, void (*set)(void *, uint32_t, uint64_t),
                   void *ring)
{
    for (uint32_t i = 0; i < n && !r->err;) {
        uint64_t v = pp_rb_var(r);
        set(ring, i++, v);
        if (v == 0) {
            uint32_t run = pp_rb_u32(r, n - i);
            for (uint32_t k = 0; k < run; k++) {
                set(ring, i++, 0);
            }
        }
    }
}

static void r_rule(struct pp_rbuf *r, struct pp_rule_state *st)
{
    st->phase = pp_rb_u8(r);
    st->severity = pp_rb_u8(r);
    st->hist_n = pp_rb_u8(r);
    if (st->phase > PP_PHASE_FIRING || st->hist_n > PP_RULE_HIST) {
        pp_rb_fail(r, "rule state out of range");
    }
    st->run = (uint16_t)pp_rb_u32(r, UINT16_MAX);
    st->crit_run = (uint16_t)pp_rb_u32(r, UINT16_MAX);
    st->deesc_run = (uint16_t)pp_rb_u32(r, UINT16_MAX);
    st->resolve_run = (uint16_t)pp_rb_u32(r, UINT16_MAX);
    st->reopen_count = (uint16_t)pp_rb_u32(r, UINT16_MAX);
    st->pending_start = pp_rb_zz(r);
    st->first_seen = pp_rb_zz(r);
    st->fired_day = pp_rb_zz(r);
    st->changed_day = pp_rb_zz(r);
    st->resolved_day = pp_rb_zz(r);
    for (int i = 0; i < PP_RULE_HIST; i++) {
        st->hist_sev[i] = pp_rb_u8(r);
        st->hist_day[i] = pp_rb_zz(r);
    }
}

static void r_sig(struct pp_rbuf *r, struct pp_sig *s)
{
    uint8_t present = pp_rb_u8(r);
    if (present > 1) {
        pp_rb_fail(r, "bad signal flag");
    }
    s->present = present == 1;
    s->value = pp_rb_f64(r);
    s->risk = pp_rb_f64(r);
}

static int r_done(struct pp_rbuf *r, const char *what, char *errstr, size_t errstr_size)
{
    if (r->err == NULL && r->pos != r->n) {
        pp_rb_fail(r, "trailing bytes");
    }
    if (r->err) {
        snprintf(errstr, errstr_size, "%s record (%zu bytes): %s at byte %zu", what, r->n, r->err,
                 r->pos);
        return -1;
    }
    return 0;
}

/* The record's version into *version (may be NULL); -1 when this build
 * cannot read it. */
static int r_version_of(struct pp_rbuf *r, const char *what, uint8_t *version, char *errstr,
                        size_t errstr_size)
{
    uint8_t v = pp_rb_u8(r);
    if (r->err) {
        snprintf(errstr, errstr_size, "%s record: empty", what);
        return -1;
    }
    if (v < SERIAL_VERSION_MIN || v > SERIAL_VERSION) {
        snprintf(errstr, errstr_size, "%s record: unknown version %u (this build reads %u..%u)",
                 what, v, SERIAL_VERSION_MIN, SERIAL_VERSION);
        return -1;
    }
    if (version) {
        *version = v;
    }
    return 0;
}

static int r_version(struct pp_rbuf *r, const char *what, char *errstr, size_t errstr_size)
{
    return r_version_of(r, what, NULL, errstr, errstr_size);
}

/* ---- keys ---------------------------------------------------------------------- */

static void key_of(struct pp_wbuf *k, char type, const char *a, const char *b)
{
    k->n = 0;
    pp_wb_u8(k, (uint8_t)type);
    pp_wb_bytes(k, a, strlen(a));
    if (b != NULL) {
        pp_wb_u8(k, 0);
        pp_wb_bytes(k, b, strlen(b));
    }
}

/* Splits a key into its type and id(s); -1 when malformed. */
static int key_parse(const uint8_t *key, size_t klen, char *type, char *a, char *b)
{
    if (klen < 1) {
        return -1;
    }
    *type = (char)key[0];
    a[0] = b[0] = '\0';
    const uint8_t *p = key + 1, *end = key + klen;
    const uint8_t *nul = memchr(p, '\0', (size_t)(end - p));
    size_t la = nul ? (size_t)(nul - p) : (size_t)(end - p);
    if (la > PP_ID_MAX - 1) {
        return -1;
    }
    memcpy(a, p, la);
    a[la] = '\0';
    if (nul != NULL) {
        size_t lb = (size_t)(end - nul - 1);
        if (lb > PP_ID_MAX - 1 || memchr(nul + 1, '\0', lb) != NULL) {
            return -1;
        }
        memcpy(b, nul + 1, lb);
        b[lb] = '\0';
    }
    return 0;
}

/* ---- customers stage ---------------------------------------------------------- */

/* A customer's ring as w_ring / r_ring see it: its cells are narrow or
 * wide (struct customer), the record holds the values either way, so the
 * layout of the record does not depend on it. */
struct cring {
    const struct pp_windows *w;
    struct customer *c;
};

static uint64_t get_active(const void *ring, uint32_t i)
{
    const struct cring *r = ring;
    uint32_t v = cust_active(r->w, r->c, i);
    return v == NO_ACTIVE ? 0 : (uint64_t)v + 1;
}

static void set_active(void *ring, uint32_t i, uint64_t v)
{
    struct cring *r = ring;
    cust_set_active(r->w, r->c, i, v == 0 ? NO_ACTIVE : (uint32_t)(v - 1));
}

static uint64_t get_wt(const void *ring, uint32_t i)
{
    const struct cring *r = ring;
    return cust_wt(r->w, r->c, i);
}

static void set_wt(void *ring, uint32_t i, uint64_t v)
{
    struct cring *r = ring;
    cust_set_wt(r->w, r->c, i, (uint16_t)v);
}

static uint64_t get_u8(const void *ring, uint32_t i)
{
    return ((const uint8_t *)ring)[i];
}

static void set_u8(void *ring, uint32_t i, uint64_t v)
{
    ((uint8_t *)ring)[i] = (uint8_t)v;
}

static uint64_t get_f32bits(const void *ring, uint32_t i)
{
    uint32_t v;
    memcpy(&v, &((const float *)ring)[i], sizeof(v));
    return v;
}

static void set_f32bits(void *ring, uint32_t i, uint64_t v)
{
    uint32_t b = (uint32_t)v;
    memcpy(&((float *)ring)[i], &b, sizeof(b));
}

static void write_customer(const struct pp_cstage *s, const struct customer *c, struct pp_wbuf *o)
{
    o->n = 0;
    pp_wb_u8(o, SERIAL_VERSION);
    pp_wb_str(o, c->product >= 0 ? pp_idmap_key(s->product_ids, (uint32_t)c->product) : "");
    pp_wb_u8(o, (uint8_t)c->band);
    pp_wb_zz(o, c->band_since);
    pp_wb_zz(o, c->mature_since);
    pp_wb_zz(o, c->last_snap_day);
    pp_wb_zz(o, c->first_snap_day);
    pp_wb_zz(o, c->first_cons_day);
    pp_wb_zz(o, c->done);
    pp_wb_var(o, c->last_active);
    pp_wb_var(o, c->ent_now);
    pp_wb_var(o, c->n_ent);
    for (uint16_t i = 0; i < c->n_ent; i++) {
        const struct ent_snap *e = cust_ent((struct customer *)c, i);
        pp_wb_zz(o, e->day);
        pp_wb_var(o, e->val);
    }
    pp_wb_f64(o, c->cons_cum);
    pp_wb_u8(o, c->n_links);
    for (uint32_t i = 0; i < c->n_links; i++) {
        pp_wb_str(o, pp_idmap_key(s->partner_ids, (uint32_t)c->links[i]));
    }
    pp_wb_u8(o, c->n_tr);
    for (uint32_t i = 0; i < c->n_tr; i++) {
        const struct tranche *t = &c->tr[i];
        pp_wb_le(o, t->deal, 8);
        pp_wb_str(o, t->partner >= 0 ? pp_idmap_key(s->partner_ids, (uint32_t)t->partner) : "");
        pp_wb_u8(o, t->partner >= 0 ? 1 : 0);
        pp_wb_f64(o, t->acv);
        pp_wb_f64(o, t->commit_k);
        pp_wb_f64(o, t->commit_base);
        pp_wb_f64(o, t->b0);
        pp_wb_f64(o, t->credit_acv);
        pp_wb_f32(o, t->discount);
        pp_wb_f32(o, t->u_pre);
        pp_wb_f32(o, t->credit_f);
        pp_wb_zz(o, t->close);
        pp_wb_zz(o, t->start);
        pp_wb_zz(o, t->end);
        pp_wb_zz(o, t->known);
        pp_wb_zz(o, t->seats);
        pp_wb_zz(o, t->cut_seats);
        pp_wb_zz(o, t->cut_day);
        pp_wb_zz(o, t->credit_day);
        pp_wb_u8(o, t->kind);
        pp_wb_u8(o, t->qe);
        pp_wb_u8(o, t->credit_seats);
    }
    for (uint32_t w = 0; w < s->w.nwin; w++) {
        const struct wsum *ws = &cust_sums(&s->w, c)[w];
        pp_wb_var(o, ws->active);
        pp_wb_var(o, ws->wt);
        pp_wb_var(o, ws->opened);
        pp_wb_var(o, ws->esc);
        pp_wb_var(o, ws->resp);
        pp_wb_var(o, ws->pos);
        pp_wb_f64(o, c->cblk ? c->cblk[w] : 0.0);
    }
    struct cring cr = {&s->w, (struct customer *)c};
    w_ring(o, s->w.width, get_active, &cr);
    pp_wb_u8(o, c->dense_sup);
    if (c->dense_sup) {
        w_ring(o, s->w.width, get_wt, &cr);
        w_ring(o, s->w.width * 4, get_u8, cust_cnt(&s->w, c, 0));
    }
    else {
        pp_wb_var(o, c->n_sup);
        for (uint32_t i = 0; i < c->n_sup; i++) {
            pp_wb_zz(o, c->sup[i].day);
            pp_wb_var(o, c->sup[i].wt);
            for (int k = 0; k < 4; k++) {
                pp_wb_u8(o, c->sup[i].cnt[k]);
            }
        }
    }
    pp_wb_u8(o, c->cblk != NULL);
    if (c->cblk != NULL) {
        w_ring(o, s->w.width, get_f32bits, cust_cons(&s->w, c));
    }
    /* Only the keys dedup still remembers. */
    int32_t forget =
        s->last_eval == NO_DAY ? NO_DAY : s->last_eval - (int32_t)s->conf.dedup_horizon_days;
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->n_keys; i++) {
        n += c->keys[i].day > forget;
    }
    pp_wb_var(o, n);
    for (uint32_t i = 0; i < c->n_keys; i++) {
        if (c->keys[i].day > forget) {
            pp_wb_zz(o, c->keys[i].day);
            pp_wb_le(o, c->keys[i].key, 8);
        }
    }
}

static void customer_free_parts(struct customer *c)
{
    free(c->blk);
    free(c->cblk);
    free(c->sup);
    free(c->tr);
    free(c->links);
    free(c->keys);
    free(c->ent);
    c->ent = NULL;
    c->n_ent = c->cap_ent = 0;
}

static int read_customer(struct pp_cstage *s, const char *id, const uint8_t *val, size_t vlen,
                         char *errstr, size_t errstr_size)
{
    struct pp_rbuf r = {val, vlen, 0, NULL};
    uint8_t version;
    if (r_version_of(&r, "customer", &version, errstr, errstr_size) != 0) {
        return -1;
    }
    bool created;
    uint32_t ci = pp_idmap_intern(s->customer_ids, id, &created);
    if (!created) {
        customer_free_parts(&s->customers[ci]); /* last write wins */
    }
    pp_cstage_customer_init(s, ci);
    struct customer *c = &s->customers[ci];
    char buf[PP_ID_MAX];
    pp_rb_str(&r, buf);
    if (buf[0] != '\0') {
        int64_t p = pp_idmap_find(s->product_ids, buf);
        if (p < 0 && pp_idmap_count(s->product_ids) < PP_MODEL_MAX_PRODUCTS) {
            p = pp_idmap_intern(s->product_ids, buf, NULL);
        }
        c->product = (int16_t)(p >= 0 ? p : -1);
    }
    c->band = (int8_t)pp_rb_u8(&r);
    if (c->band < -1 || c->band > 2) {
        pp_rb_fail(&r, "band out of range");
    }
    c->band_since = pp_rb_zz(&r);
    c->mature_since = pp_rb_zz(&r);
    c->last_snap_day = pp_rb_zz(&r);
    c->first_snap_day = pp_rb_zz(&r);
    c->first_cons_day = pp_rb_zz(&r);
    c->done = pp_rb_zz(&r);
    c->last_active = pp_rb_u32(&r, UINT32_MAX);
    c->ent_now = pp_rb_u32(&r, UINT32_MAX);
    uint32_t ne = pp_rb_u32(&r, UINT16_MAX);
    if (ne > 0 && r.err == NULL) {
        c->ent = ne > 1 ? pp_xcalloc(ne - 1, sizeof(*c->ent)) : NULL;
        c->cap_ent = (uint16_t)(ne - 1);
        c->n_ent = (uint16_t)ne;
        for (uint32_t i = 0; i < ne; i++) {
            cust_ent(c, i)->day = pp_rb_zz(&r);
            cust_ent(c, i)->val = pp_rb_u32(&r, UINT32_MAX);
        }
    }
    c->cons_cum = pp_rb_f64(&r);
    uint8_t nl = pp_rb_u8(&r);
    if (nl > PP_MODEL_MAX_LINKS) {
        pp_rb_fail(&r, "too many links");
        nl = 0;
    }
    c->cap_links = nl;
    c->links = nl ? pp_xcalloc(nl, sizeof(int32_t)) : NULL;
    for (uint32_t i = 0; i < nl && !r.err; i++) {
        pp_rb_str(&r, buf);
        c->links[c->n_links++] = (int32_t)pp_idmap_intern(s->partner_ids, buf, NULL);
    }
    s->stats.links += c->n_links;
    uint8_t nt = pp_rb_u8(&r);
    if (nt > PP_MODEL_MAX_TRANCHES) {
        pp_rb_fail(&r, "too many deals");
        nt = 0;
    }
    c->cap_tr = nt;
    c->tr = nt ? pp_xcalloc(nt, sizeof(struct tranche)) : NULL;
    for (uint32_t i = 0; i < nt && !r.err; i++) {
        struct tranche *t = &c->tr[c->n_tr++];
        t->deal = pp_rb_le(&r, 8);
        pp_rb_str(&r, buf);
        uint8_t has_partner = pp_rb_u8(&r);
        t->partner = has_partner ? (int32_t)pp_idmap_intern(s->partner_ids, buf, NULL) : -1;
        t->acv = pp_rb_f64(&r);
        t->commit_k = pp_rb_f64(&r);
        t->commit_base = pp_rb_f64(&r);
        t->b0 = pp_rb_f64(&r);
        t->credit_acv = pp_rb_f64(&r);
        t->discount = pp_rb_f32(&r);
        t->u_pre = pp_rb_f32(&r);
        t->credit_f = pp_rb_f32(&r);
        t->close = pp_rb_zz(&r);
        t->start = pp_rb_zz(&r);
        t->end = pp_rb_zz(&r);
        t->known = pp_rb_zz(&r);
        t->seats = pp_rb_zz(&r);
        t->cut_seats = pp_rb_zz(&r);
        t->cut_day = pp_rb_zz(&r);
        t->credit_day = pp_rb_zz(&r);
        t->kind = pp_rb_u8(&r);
        t->qe = pp_rb_u8(&r);
        t->credit_seats = pp_rb_u8(&r);
        if (t->kind > TR_COMMIT || has_partner > 1) {
            pp_rb_fail(&r, "deal field out of range");
        }
    }
    double csum[PP_MODEL_MAX_WINDOWS];
    bool csum_set = false;
    for (uint32_t w = 0; w < s->w.nwin; w++) {
        struct wsum *ws = &cust_sums(&s->w, c)[w];
        ws->active = pp_rb_var(&r);
        ws->wt = pp_rb_u32(&r, UINT32_MAX);
        ws->opened = pp_rb_u32(&r, UINT32_MAX);
        ws->esc = pp_rb_u32(&r, UINT32_MAX);
        ws->resp = pp_rb_u32(&r, UINT32_MAX);
        ws->pos = pp_rb_u32(&r, UINT32_MAX);
        csum[w] = pp_rb_f64(&r);
        csum_set = csum_set || csum[w] != 0.0;
    }
    /* Rings that need wide cells widen the customer as they are read. */
    struct cring cr = {&s->w, c};
    r_ring(&r, s->w.width, set_active, &cr);
    uint8_t dense = version < 2 ? 1 : pp_rb_u8(&r); /* version 1: dense rings */
    if (dense > 1) {
        pp_rb_fail(&r, "support form out of range");
    }
    else if (dense) {
        pp_cust_relayout(&s->w, c, c->wide, true);
        r_ring(&r, s->w.width, set_wt, &cr);
        r_ring(&r, s->w.width * 4, set_u8, cust_cnt(&s->w, c, 0));
    }
    else {
        uint32_t ns = pp_rb_u32(&r, PP_SUP_SPARSE_MAX);
        if (ns > 0 && r.err == NULL) {
            c->sup = pp_xcalloc(ns, sizeof(*c->sup));
            c->cap_sup = (uint8_t)ns;
        }
        for (uint32_t i = 0; i < ns && r.err == NULL; i++) {
            struct sday *e = &c->sup[c->n_sup++];
            e->day = pp_rb_zz(&r);
            e->wt = (uint16_t)pp_rb_u32(&r, UINT16_MAX);
            for (int k = 0; k < 4; k++) {
                e->cnt[k] = pp_rb_u8(&r);
            }
            if (i > 0 && e->day <= c->sup[i - 1].day) {
                pp_rb_fail(&r, "support days out of order");
            }
        }
    }
    uint8_t has_cons = pp_rb_u8(&r);
    if (has_cons || csum_set) {
        c->cblk = pp_xcalloc(1, s->w.nwin * sizeof(double) + s->w.width * sizeof(float));
        memcpy(c->cblk, csum, s->w.nwin * sizeof(double));
    }
    if (has_cons) {
        r_ring(&r, s->w.width, set_f32bits, cust_cons(&s->w, c));
    }
    uint32_t nk = pp_rb_u32(&r, (uint32_t)(vlen / 9));
    for (uint32_t i = 0; i < nk && !r.err; i++) {
        int32_t day = pp_rb_zz(&r);
        uint64_t key = pp_rb_le(&r, 8);
        if (!r.err) {
            pp_ckey_add(&c->keys, &c->n_keys, &c->cap_keys, day, key);
            pp_cstage_dedup_restore(s, day, key);
        }
    }
    if (r.err == NULL) {
        pp_cust_since_rebuild(s, c); /* not in the record: the rings hold them */
    }
    return r_done(&r, "customer", errstr, errstr_size);
}

static void write_cmeta(const struct pp_cstage *s, struct pp_wbuf *o)
{
    o->n = 0;
    pp_wb_u8(o, SERIAL_VERSION);
    pp_wb_le(o, (uint64_t)s->watermark, 8);
    pp_wb_zz(o, s->min_day);
    pp_wb_zz(o, s->max_day);
    pp_wb_zz(o, s->last_eval);
    pp_wb_zz(o, s->eod_sent);
    pp_wb_zz(o, s->last_closed);
    pp_wb_var(o, s->n_orphans);
    for (uint32_t i = 0; i < s->n_orphans; i++) {
        pp_wb_zz(o, s->orphans[i].day);
        pp_wb_le(o, s->orphans[i].key, 8);
    }
}

static int read_cmeta(struct pp_cstage *s, const uint8_t *val, size_t vlen, char *errstr,
                      size_t errstr_size)
{
    struct pp_rbuf r = {val, vlen, 0, NULL};
    if (r_version(&r, "customers meta", errstr, errstr_size) != 0) {
        return -1;
    }
    s->watermark = (int64_t)pp_rb_le(&r, 8);
    s->min_day = pp_rb_zz(&r);
    s->max_day = pp_rb_zz(&r);
    s->last_eval = pp_rb_zz(&r);
    s->eod_sent = pp_rb_zz(&r);
    s->last_closed = pp_rb_zz(&r);
    uint32_t n = pp_rb_u32(&r, (uint32_t)(vlen / 9));
    s->n_orphans = 0;
    for (uint32_t i = 0; i < n && !r.err; i++) {
        int32_t day = pp_rb_zz(&r);
        uint64_t key = pp_rb_le(&r, 8);
        if (!r.err) {
            pp_ckey_add(&s->orphans, &s->n_orphans, &s->cap_orphans, day, key);
            pp_cstage_dedup_restore(s, day, key);
        }
    }
    return r_done(&r, "customers meta", errstr, errstr_size);
}

static void emit_customer(const struct pp_cstage *s, uint32_t ci, struct pp_wbuf *k,
                          struct pp_wbuf *v, pp_kv_cb *cb, void *opaque)
{
    key_of(k, 'c', pp_idmap_key(s->customer_ids, ci), NULL);
    write_customer(s, &s->customers[ci], v);
    cb(k->p, k->n, v->p, v->n, opaque);
}

/* A bug, not bad input: the caller made the stage ephemeral. */
static void not_ephemeral(const struct pp_cstage *s)
{
    if (s->ephemeral) {
        fprintf(stderr, "level=fatal msg=\"customers stage written but made ephemeral\"\n");
        abort();
    }
}

void pp_cstage_dump(const struct pp_cstage *s, pp_kv_cb *cb, void *opaque)
{
    not_ephemeral(s);
    /* Handing the dedup log out to the key lists changes where the keys
     * are kept, not what the stage holds. */
    pp_cstage_keys_handout((struct pp_cstage *)s);
    pp_cstage_settle((struct pp_cstage *)s);
    struct pp_wbuf k = {0}, v = {0};
    uint32_t nc = pp_idmap_count(s->customer_ids);
    for (uint32_t ci = 0; ci < nc; ci++) {
        emit_customer(s, ci, &k, &v, cb, opaque);
    }
    key_of(&k, 'm', "", NULL);
    write_cmeta(s, &v);
    cb(k.p, k.n, v.p, v.n, opaque);
    free(k.p);
    free(v.p);
}

void pp_cstage_flush_dirty(struct pp_cstage *s, pp_kv_cb *cb, void *opaque)
{
    not_ephemeral(s);
    pp_cstage_keys_handout(s);
    /* Only customers an event changed: a closed day changes every customer's
     * rings, but replaying it from the older record is exact (settle), so
     * the changelog carries the active customers, not all of them. */
    pp_cstage_settle(s);
    struct pp_wbuf k = {0}, v = {0};
    for (uint32_t i = 0; i < s->n_dirty; i++) {
        emit_customer(s, s->dirty_list[i], &k, &v, cb, opaque);
        s->customers[s->dirty_list[i]].dirty = false;
    }
    s->n_dirty = 0;
    if (s->meta_dirty) {
        key_of(&k, 'm', "", NULL);
        write_cmeta(s, &v);
        cb(k.p, k.n, v.p, v.n, opaque);
        s->meta_dirty = false;
    }
    free(k.p);
    free(v.p);
}

int pp_cstage_restore_kv(struct pp_cstage *s, const uint8_t *key, size_t klen, const uint8_t *val,
                         size_t vlen, char *errstr, size_t errstr_size)
{
    char type, a[PP_ID_MAX], b[PP_ID_MAX];
    if (key_parse(key, klen, &type, a, b) != 0) {
        snprintf(errstr, errstr_size, "customers stage: malformed key (%zu bytes)", klen);
        return -1;
    }
    if (type == 'c') {
        if (vlen == 0) {
            /* Nothing deletes a customer; a tombstone resets it. */
            int64_t ci = pp_idmap_find(s->customer_ids, a);
            if (ci >= 0) {
                customer_free_parts(&s->customers[ci]);
                pp_cstage_customer_init(s, (uint32_t)ci);
            }
            return 0;
        }
        return read_customer(s, a, val, vlen, errstr, errstr_size);
    }
    if (type == 'm') {
        return vlen == 0 ? 0 : read_cmeta(s, val, vlen, errstr, errstr_size);
    }
    snprintf(errstr, errstr_size, "customers stage: key of unknown type 0x%02x", (unsigned)key[0]);
    return -1;
}

/* ---- partners stage ------------------------------------------------------------- */

static void write_partner(const struct pp_pstage *m, const struct partner *p, struct pp_wbuf *o)
{
    (void)m;
    o->n = 0;
    pp_wb_u8(o, SERIAL_VERSION);
    pp_wb_u8(o, p->dirty ? 1 : 0);
    pp_wb_var(o, p->n_ledger);
    for (uint32_t i = 0; i < p->n_ledger; i++) {
        const struct ledger_deal *ld = &p->ledger[i];
        pp_wb_le(o, ld->deal, 8);
        pp_wb_f64(o, ld->acv);
        pp_wb_f32(o, ld->discount);
        pp_wb_zz(o, ld->close);
        pp_wb_zz(o, ld->known);
        pp_wb_zz(o, ld->quarter);
        pp_wb_u8(o, ld->qe);
        pp_wb_u8(o, ld->kind);
    }
    pp_wb_var(o, p->n_rev);
    for (uint32_t i = 0; i < p->n_rev; i++) {
        pp_wb_le(o, p->rev[i].deal, 8);
        pp_wb_f64(o, p->rev[i].acv);
        pp_wb_zz(o, p->rev[i].day);
    }
    w_rule(o, &p->pp_rule);
    w_rule(o, &p->st_rule);
    /* The last evaluated day's values: what the views show. */
    w_sig(o, &p->qec);
    w_sig(o, &p->disc);
    w_sig(o, &p->rev_sig);
    w_sig(o, &p->oversell);
    const double d[] = {p->qe_share,
                        p->qe_baseline,
                        p->d180,
                        p->peer_median,
                        p->dqe,
                        p->ref_disc,
                        p->rev_value,
                        p->oversell_o,
                        p->oversell_seats,
                        p->roll.firing_acv,
                        p->roll.critical_acv,
                        p->roll.touched_acv,
                        p->cpi_wsum,
                        p->health_wsum,
                        p->health_acv,
                        p->red_acv,
                        p->yellow_acv,
                        p->cpi};
    for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
        pp_wb_f64(o, d[i]);
    }
    pp_wb_u8(o, p->has_dqe ? 1 : 0);
    pp_wb_var(o, p->oversell_deals);
    pp_wb_var(o, p->roll.firing);
    pp_wb_var(o, p->roll.critical);
    pp_wb_zz(o, p->roll.children_first_seen);
    pp_wb_var(o, p->touched);
    pp_wb_zz(o, p->health);
}

static int read_partner(struct pp_pstage *m, const char *id, const uint8_t *val, size_t vlen,
                        char *errstr, size_t errstr_size)
{
    struct pp_rbuf r = {val, vlen, 0, NULL};
    if (r_version(&r, "partner", errstr, errstr_size) != 0) {
        return -1;
    }
    bool created;
    uint32_t pi = pp_idmap_intern(m->partner_ids, id, &created);
    if (!created) {
        free(m->partners[pi].ledger);
        free(m->partners[pi].rev);
        free(m->partners[pi].children);
    }
    pp_pstage_partner_init(m, pi);
    struct partner *p = &m->partners[pi];
    p->dirty = pp_rb_u8(&r) != 0;
    uint32_t n = pp_rb_u32(&r, PP_MODEL_LEDGER_MAX);
    if (n > vlen / 20) {
        pp_rb_fail(&r, "ledger longer than the record");
        n = 0;
    }
    p->cap_ledger = n;
    p->ledger = n ? pp_xcalloc(n, sizeof(*p->ledger)) : NULL;
    for (uint32_t i = 0; i < n && !r.err; i++) {
        struct ledger_deal *ld = &p->ledger[p->n_ledger++];
        ld->deal = pp_rb_le(&r, 8);
        ld->acv = pp_rb_f64(&r);
        ld->discount = pp_rb_f32(&r);
        ld->close = pp_rb_zz(&r);
        ld->known = pp_rb_zz(&r);
        ld->quarter = pp_rb_zz(&r);
        ld->qe = pp_rb_u8(&r);
        ld->kind = pp_rb_u8(&r);
    }
    n = pp_rb_u32(&r, PP_MODEL_REV_MAX);
    if (n > vlen / 17) {
        pp_rb_fail(&r, "reversals longer than the record");
        n = 0;
    }
    p->cap_rev = n;
    p->rev = n ? pp_xcalloc(n, sizeof(*p->rev)) : NULL;
    for (uint32_t i = 0; i < n && !r.err; i++) {
        struct reversal *rv = &p->rev[p->n_rev++];
        rv->deal = pp_rb_le(&r, 8);
        rv->acv = pp_rb_f64(&r);
        rv->day = pp_rb_zz(&r);
    }
    r_rule(&r, &p->pp_rule);
    r_rule(&r, &p->st_rule);
    r_sig(&r, &p->qec);
    r_sig(&r, &p->disc);
    r_sig(&r, &p->rev_sig);
    r_sig(&r, &p->oversell);
    double *d[] = {&p->qe_share,
                   &p->qe_baseline,
                   &p->d180,
                   &p->peer_median,
                   &p->dqe,
                   &p->ref_disc,
                   &p->rev_value,
                   &p->oversell_o,
                   &p->oversell_seats,
                   &p->roll.firing_acv,
                   &p->roll.critical_acv,
                   &p->roll.touched_acv,
                   &p->cpi_wsum,
                   &p->health_wsum,
                   &p->health_acv,
                   &p->red_acv,
                   &p->yellow_acv,
                   &p->cpi};
    for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
        *d[i] = pp_rb_f64(&r);
    }
    p->has_dqe = pp_rb_u8(&r) != 0;
    p->oversell_deals = pp_rb_u32(&r, UINT32_MAX);
    p->roll.firing = pp_rb_u32(&r, UINT32_MAX);
    p->roll.critical = pp_rb_u32(&r, UINT32_MAX);
    p->roll.children_first_seen = pp_rb_zz(&r);
    p->touched = pp_rb_u32(&r, UINT32_MAX);
    p->health = pp_rb_zz(&r);
    return r_done(&r, "partner", errstr, errstr_size);
}

static void write_pair(const struct pair *l, struct pp_wbuf *o)
{
    o->n = 0;
    pp_wb_u8(o, SERIAL_VERSION);
    w_rule(o, &l->rule);
    pp_wb_f32(o, l->cpi_s);
    pp_wb_f32(o, l->cpi_l);
    pp_wb_f32(o, l->h_s);
    pp_wb_f32(o, l->h_l);
    pp_wb_f32(o, l->a);
    pp_wb_f32(o, l->partner_acv);
    pp_wb_zz(o, l->health);
    pp_wb_u8(o, l->touched);
}

static int read_pair(struct pp_pstage *m, const char *pid, const char *cid, const uint8_t *val,
                     size_t vlen, char *errstr, size_t errstr_size)
{
    struct pp_rbuf r = {val, vlen, 0, NULL};
    if (r_version(&r, "pair", errstr, errstr_size) != 0) {
        return -1;
    }
    bool created;
    uint32_t pi = pp_idmap_intern(m->partner_ids, pid, &created);
    if (created) {
        pp_pstage_partner_init(m, pi);
    }
    uint32_t ci = pp_idmap_intern(m->customer_ids, cid, &created);
    if (created) {
        pp_pstage_customer_init(m, ci);
    }
    int li = pp_pstage_pair_get(m, ci, (int32_t)pi, true);
    if (li < 0) {
        snprintf(errstr, errstr_size, "pair record %s/%s: the customer has 4 partners already", pid,
                 cid);
        return -1;
    }
    struct pair *l = &m->customers[ci].pairs[li];
    r_rule(&r, &l->rule);
    l->cpi_s = pp_rb_f32(&r);
    l->cpi_l = pp_rb_f32(&r);
    l->h_s = pp_rb_f32(&r);
    l->h_l = pp_rb_f32(&r);
    l->a = pp_rb_f32(&r);
    l->partner_acv = pp_rb_f32(&r);
    l->health = (int16_t)pp_rb_zz(&r);
    l->touched = pp_rb_u8(&r);
    return r_done(&r, "pair", errstr, errstr_size);
}

static struct cpart *cpart_at(const struct pp_pstage *m, int p, int b, uint32_t slot)
{
    return &m->cday[((size_t)p * N_BANDS + (size_t)b) * m->w.width + slot];
}

static struct cpart *cwin_of(const struct pp_pstage *m, int p, int b, uint32_t w)
{
    return &m->cwin[((size_t)p * N_BANDS + (size_t)b) * m->w.nwin + w];
}

/* A cohort cell: a flag byte of the non-zero fields, then those. */
static void w_cpart(struct pp_wbuf *o, const struct cpart *c)
{
    const double d[6] = {c->wt, c->active, c->opened, c->esc, c->resp, c->pos};
    uint8_t flags = c->customers ? 0x40 : 0;
    for (int i = 0; i < 6; i++) {
        flags |= d[i] != 0.0 || signbit(d[i]) ? (uint8_t)(1u << i) : 0;
    }
    pp_wb_u8(o, flags);
    for (int i = 0; i < 6; i++) {
        if (flags & (1u << i)) {
            pp_wb_f64(o, d[i]);
        }
    }
    if (c->customers) {
        pp_wb_var(o, c->customers);
    }
}

static void r_cpart(struct pp_rbuf *r, struct cpart *c)
{
    uint8_t flags = pp_rb_u8(r);
    if (flags & 0x80) {
        pp_rb_fail(r, "bad cohort flags");
    }
    double *d[6] = {&c->wt, &c->active, &c->opened, &c->esc, &c->resp, &c->pos};
    for (int i = 0; i < 6; i++) {
        *d[i] = flags & (1u << i) ? pp_rb_f64(r) : 0.0;
    }
    c->customers = flags & 0x40 ? pp_rb_u32(r, UINT32_MAX) : 0;
}

static void write_product(const struct pp_pstage *m, int p, struct pp_wbuf *o)
{
    o->n = 0;
    pp_wb_u8(o, SERIAL_VERSION);
    for (int b = 0; b < N_BANDS; b++) {
        for (uint32_t sl = 0; sl < m->w.width; sl++) {
            w_cpart(o, cpart_at(m, p, b, sl));
        }
        for (uint32_t w = 0; w < m->w.nwin; w++) {
            w_cpart(o, cwin_of(m, p, b, w));
        }
    }
}

static int read_product(struct pp_pstage *m, const char *id, const uint8_t *val, size_t vlen,
                        char *errstr, size_t errstr_size)
{
    struct pp_rbuf r = {val, vlen, 0, NULL};
    if (r_version(&r, "cohort", errstr, errstr_size) != 0) {
        return -1;
    }
    int64_t p = pp_idmap_find(m->product_ids, id);
    if (p < 0) {
        if (pp_idmap_count(m->product_ids) >= PP_MODEL_MAX_PRODUCTS) {
            snprintf(errstr, errstr_size, "cohort record %s: more than %d products", id,
                     PP_MODEL_MAX_PRODUCTS);
            return -1;
        }
        p = pp_idmap_intern(m->product_ids, id, NULL);
        pp_pstage_cohort_fit(m);
    }
    for (int b = 0; b < N_BANDS; b++) {
        for (uint32_t sl = 0; sl < m->w.width; sl++) {
            r_cpart(&r, cpart_at(m, (int)p, b, sl));
        }
        for (uint32_t w = 0; w < m->w.nwin; w++) {
            r_cpart(&r, cwin_of(m, (int)p, b, w));
        }
    }
    return r_done(&r, "cohort", errstr, errstr_size);
}

static void write_pmeta(const struct pp_pstage *m, struct pp_wbuf *o)
{
    o->n = 0;
    pp_wb_u8(o, SERIAL_VERSION);
    pp_wb_zz(o, m->last_eval);
    pp_wb_zz(o, m->first_reversal_day);
    pp_wb_var(o, m->sources);
    for (uint32_t i = 0; i < m->sources; i++) {
        pp_wb_zz(o, m->eod[i]);
        pp_wb_u8(o, m->eflags[i]);
    }
}

static int read_pmeta(struct pp_pstage *m, const uint8_t *val, size_t vlen, char *errstr,
                      size_t errstr_size)
{
    struct pp_rbuf r = {val, vlen, 0, NULL};
    if (r_version(&r, "partners meta", errstr, errstr_size) != 0) {
        return -1;
    }
    m->last_eval = pp_rb_zz(&r);
    m->first_reversal_day = pp_rb_zz(&r);
    uint32_t n = pp_rb_u32(&r, UINT32_MAX);
    if (!r.err && n != m->sources) {
        snprintf(errstr, errstr_size,
                 "partners meta record: written for %u sources, this stage has %u", n, m->sources);
        return -1;
    }
    for (uint32_t i = 0; i < n && !r.err; i++) {
        m->eod[i] = pp_rb_zz(&r);
        m->eflags[i] = pp_rb_u8(&r);
    }
    return r_done(&r, "partners meta", errstr, errstr_size);
}

struct pemit {
    struct pp_wbuf k, v;
    pp_kv_cb *cb;
    void *opaque;
};

static void emit_partner(const struct pp_pstage *m, uint32_t pi, struct pemit *e)
{
    key_of(&e->k, 'p', pp_idmap_key(m->partner_ids, pi), NULL);
    write_partner(m, &m->partners[pi], &e->v);
    e->cb(e->k.p, e->k.n, e->v.p, e->v.n, e->opaque);
}

static void emit_pairs(const struct pp_pstage *m, uint32_t ci, struct pemit *e)
{
    const struct pcust *c = &m->customers[ci];
    for (uint32_t i = 0; i < c->n; i++) {
        key_of(&e->k, 'x', pp_idmap_key(m->partner_ids, (uint32_t)c->pairs[i].partner),
               pp_idmap_key(m->customer_ids, ci));
        write_pair(&c->pairs[i], &e->v);
        e->cb(e->k.p, e->k.n, e->v.p, e->v.n, e->opaque);
    }
}

static void emit_products_meta(const struct pp_pstage *m, struct pemit *e)
{
    uint32_t np = pp_idmap_count(m->product_ids);
    for (uint32_t p = 0; p < np; p++) {
        key_of(&e->k, 'q', pp_idmap_key(m->product_ids, p), NULL);
        write_product(m, (int)p, &e->v);
        e->cb(e->k.p, e->k.n, e->v.p, e->v.n, e->opaque);
    }
}

static void emit_meta(const struct pp_pstage *m, struct pemit *e)
{
    key_of(&e->k, 'm', "", NULL);
    write_pmeta(m, &e->v);
    e->cb(e->k.p, e->k.n, e->v.p, e->v.n, e->opaque);
}

void pp_pstage_dump(const struct pp_pstage *m, pp_kv_cb *cb, void *opaque)
{
    struct pemit e = {{0}, {0}, cb, opaque};
    uint32_t np = pp_idmap_count(m->partner_ids);
    for (uint32_t pi = 0; pi < np; pi++) {
        emit_partner(m, pi, &e);
    }
    uint32_t nc = pp_idmap_count(m->customer_ids);
    for (uint32_t ci = 0; ci < nc; ci++) {
        emit_pairs(m, ci, &e);
    }
    emit_products_meta(m, &e);
    emit_meta(m, &e);
    free(e.k.p);
    free(e.v.p);
}

void pp_pstage_flush_dirty(struct pp_pstage *m, pp_kv_cb *cb, void *opaque)
{
    struct pemit e = {{0}, {0}, cb, opaque};
    uint32_t np = pp_idmap_count(m->partner_ids);
    if (m->all_dirty) {
        /* A day was evaluated: every partner's signals and roll-up moved,
         * and the cohort rings; pairs only where assessed. */
        for (uint32_t pi = 0; pi < np; pi++) {
            emit_partner(m, pi, &e);
        }
        emit_products_meta(m, &e);
    }
    else {
        for (uint32_t i = 0; i < m->n_dirty_p; i++) {
            emit_partner(m, m->dirty_partners[i], &e);
        }
    }
    for (uint32_t i = 0; i < m->n_dirty_p; i++) {
        m->partners[m->dirty_partners[i]].changed = false;
    }
    m->n_dirty_p = 0;
    for (uint32_t i = 0; i < m->n_dirty_x; i++) {
        emit_pairs(m, m->dirty_pairs[i], &e);
        m->customers[m->dirty_pairs[i]].changed = false;
    }
    m->n_dirty_x = 0;
    if (m->meta_dirty || m->all_dirty) {
        emit_meta(m, &e);
    }
    m->meta_dirty = false;
    m->all_dirty = false;
    free(e.k.p);
    free(e.v.p);
}

int pp_pstage_restore_kv(struct pp_pstage *m, const uint8_t *key, size_t klen, const uint8_t *val,
                         size_t vlen, char *errstr, size_t errstr_size)
{
    char type, a[PP_ID_MAX], b[PP_ID_MAX];
    if (key_parse(key, klen, &type, a, b) != 0) {
        snprintf(errstr, errstr_size, "partners stage: malformed key (%zu bytes)", klen);
        return -1;
    }
    if (vlen == 0) {
        return 0; /* nothing is ever deleted here: a tombstone changes nothing */
    }
    switch (type) {
    case 'p':
        return read_partner(m, a, val, vlen, errstr, errstr_size);
    case 'x':
        return read_pair(m, a, b, val, vlen, errstr, errstr_size);
    case 'q':
        return read_product(m, a, val, vlen, errstr, errstr_size);
    case 'm':
        return read_pmeta(m, val, vlen, errstr, errstr_size);
    default:
        break;
    }
    snprintf(errstr, errstr_size, "partners stage: key of unknown type 0x%02x", (unsigned)key[0]);
    return -1;
}
