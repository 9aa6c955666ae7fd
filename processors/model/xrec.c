/*
 * xrec.c — the wire form of exchange records (stage.h): what the runtime
 * puts on the <app>-exchange topic between the customers and the partners
 * tasks.
 *
 * Hand-written rather than Avro or a generated codec: it is our own internal
 * topic, read only by this code, and on the hot path (one assessment per
 * customer link and day), so it is a plain compact little-endian layout —
 * a version byte, the kind, varints for counts and sums, zig-zag varints for
 * days, length-prefixed ids, and 8-byte IEEE doubles only where a value is
 * not zero (a flag byte says which) — with a decoder that checks every
 * length and range and refuses anything it does not fully consume.
 * Doubles travel as their bits, so the partners side computes with exactly
 * the values the customers side had.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bytes.h"
#include "stage.h"

/* ---- writer ------------------------------------------------------------------ */

static bool f64_zero(double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof(v));
    return v == 0; /* +0.0 only: -0.0 and NAN travel as bits */
}

/* A flag byte (bit i: value i is not +0.0), then the non-zero values. */
static void put_f64s(struct pp_wbuf *w, const double *v, int n)
{
    uint8_t flags = 0;
    for (int i = 0; i < n; i++) {
        flags |= f64_zero(v[i]) ? 0 : (uint8_t)(1u << i);
    }
    pp_wb_u8(w, flags);
    for (int i = 0; i < n; i++) {
        if (!f64_zero(v[i])) {
            pp_wb_f64(w, v[i]);
        }
    }
}

static void put_sig(struct pp_wbuf *w, const struct pp_xsig *s)
{
    double v[2] = {s->value, s->risk};
    pp_wb_u8(w, s->present ? 1 : 0);
    put_f64s(w, v, 2);
}

static void put_own(struct pp_wbuf *w, const struct pp_xown *o)
{
    pp_wb_var(w, o->active);
    pp_wb_var(w, o->wt);
    pp_wb_var(w, o->opened);
    pp_wb_var(w, o->esc);
    pp_wb_var(w, o->resp);
    pp_wb_var(w, o->pos);
}

static bool own_eq(const struct pp_xown *a, const struct pp_xown *b)
{
    return a->active == b->active && a->wt == b->wt && a->opened == b->opened && a->esc == b->esc &&
           a->resp == b->resp && a->pos == b->pos;
}

static void put_assess(struct pp_wbuf *w, const struct pp_xrec_assess *x)
{
    pp_wb_str(w, x->customer_id);
    pp_wb_str(w, x->partner_id);
    pp_wb_str(w, x->product_id);
    pp_wb_u8(w, x->link);
    pp_wb_u8(w, (uint8_t)x->band);
    pp_wb_u8(w, (uint8_t)((x->has_seats ? 1 : 0) | (x->touched ? 2 : 0)));
    put_sig(w, &x->shelf[0]);
    put_sig(w, &x->shelf[1]);
    put_sig(w, &x->gap[0]);
    put_sig(w, &x->gap[1]);
    put_sig(w, &x->oversell);
    put_sig(w, &x->oversize);
    double d[6] = {x->exp_util0,   x->s365,       x->s180,
                   x->partner_acv, x->oversell_o, x->oversell_seats};
    put_f64s(w, d, 6);
    pp_wb_var(w, x->oversell_deals);
    pp_wb_var(w, x->load_wdays[0]);
    pp_wb_var(w, x->load_wdays[1]);
    /* The own sums are usually the whole window's: a bit per copy says so. */
    uint8_t same = 0;
    for (int i = 0; i < PP_XW__COUNT; i++) {
        same |= own_eq(&x->band_own[i], &x->win[i]) ? (uint8_t)(1u << i) : 0;
        same |= own_eq(&x->mature_own[i], &x->win[i]) ? (uint8_t)(1u << (i + 4)) : 0;
    }
    pp_wb_u8(w, same);
    for (int i = 0; i < PP_XW__COUNT; i++) {
        put_own(w, &x->win[i]);
        if (!(same & (1u << i))) {
            put_own(w, &x->band_own[i]);
        }
        if (!(same & (1u << (i + 4)))) {
            put_own(w, &x->mature_own[i]);
        }
    }
    pp_wb_u8(w, x->n_qedeal);
    for (uint32_t i = 0; i < x->n_qedeal && i < PP_XREC_MAX_QEDEAL; i++) {
        pp_wb_u8(w, x->qedeal_qe[i]);
        pp_wb_f32(w, x->qedeal_disc[i]);
        pp_wb_zz(w, x->qedeal_close[i]);
    }
}

size_t pp_xrec_encode(const struct pp_xrec *x, uint8_t *buf, size_t cap)
{
    struct pp_wbuf w = PP_WBUF_FIXED(buf, cap);
    pp_wb_u8(&w, PP_XREC_VERSION);
    pp_wb_u8(&w, x->kind);
    pp_wb_var(&w, x->source);
    pp_wb_zz(&w, x->day);
    switch (x->kind) {
    case PP_XREC_DEAL:
        pp_wb_str(&w, x->u.deal.partner_id);
        pp_wb_str(&w, x->u.deal.customer_id);
        pp_wb_le(&w, x->u.deal.deal, 8);
        pp_wb_f64(&w, x->u.deal.acv);
        pp_wb_f32(&w, x->u.deal.discount);
        pp_wb_zz(&w, x->u.deal.close);
        pp_wb_zz(&w, x->u.deal.known);
        pp_wb_u8(&w, x->u.deal.qe);
        pp_wb_u8(&w, x->u.deal.kind);
        break;
    case PP_XREC_REVERSAL:
        pp_wb_str(&w, x->u.rev.partner_id);
        pp_wb_le(&w, x->u.rev.deal, 8);
        pp_wb_f64(&w, x->u.rev.acv);
        break;
    case PP_XREC_COHORT:
        pp_wb_str(&w, x->u.cohort.product_id);
        pp_wb_u8(&w, x->u.cohort.band);
        pp_wb_var(&w, x->u.cohort.customers);
        pp_wb_var(&w, x->u.cohort.wt);
        pp_wb_var(&w, x->u.cohort.active);
        pp_wb_var(&w, x->u.cohort.opened);
        pp_wb_var(&w, x->u.cohort.esc);
        pp_wb_var(&w, x->u.cohort.resp);
        pp_wb_var(&w, x->u.cohort.pos);
        break;
    case PP_XREC_ASSESS:
        put_assess(&w, &x->u.assess);
        break;
    case PP_XREC_EOD:
        pp_wb_u8(&w, x->u.eod.flags);
        break;
    default:
        return 0;
    }
    return w.overflow ? 0 : w.n;
}

/* ---- reader ------------------------------------------------------------------ */

static void get_f64s(struct pp_rbuf *r, double *v, int n)
{
    uint8_t flags = pp_rb_u8(r);
    if (flags >> n) {
        pp_rb_fail(r, "bad value flags");
        return;
    }
    for (int i = 0; i < n; i++) {
        v[i] = flags & (1u << i) ? pp_rb_f64(r) : 0.0;
    }
}

static void get_sig(struct pp_rbuf *r, struct pp_xsig *s)
{
    uint8_t present = pp_rb_u8(r);
    if (present > 1) {
        pp_rb_fail(r, "bad signal flag");
    }
    double v[2];
    get_f64s(r, v, 2);
    s->present = present == 1;
    s->value = v[0];
    s->risk = v[1];
}

static void get_own(struct pp_rbuf *r, struct pp_xown *o)
{
    o->active = pp_rb_var(r);
    o->wt = pp_rb_u32(r, UINT32_MAX);
    o->opened = pp_rb_u32(r, UINT32_MAX);
    o->esc = pp_rb_u32(r, UINT32_MAX);
    o->resp = pp_rb_u32(r, UINT32_MAX);
    o->pos = pp_rb_u32(r, UINT32_MAX);
}

static void get_assess(struct pp_rbuf *r, struct pp_xrec_assess *x)
{
    pp_rb_str(r, x->customer_id);
    pp_rb_str(r, x->partner_id);
    pp_rb_str(r, x->product_id);
    x->link = pp_rb_u8(r);
    x->band = (int8_t)pp_rb_u8(r);
    uint8_t flags = pp_rb_u8(r);
    if (x->link >= 4 || x->band < -1 || x->band > 2 || flags > 3) {
        pp_rb_fail(r, "assessment field out of range");
    }
    x->has_seats = flags & 1;
    x->touched = (flags & 2) != 0;
    get_sig(r, &x->shelf[0]);
    get_sig(r, &x->shelf[1]);
    get_sig(r, &x->gap[0]);
    get_sig(r, &x->gap[1]);
    get_sig(r, &x->oversell);
    get_sig(r, &x->oversize);
    double d[6];
    get_f64s(r, d, 6);
    x->exp_util0 = d[0];
    x->s365 = d[1];
    x->s180 = d[2];
    x->partner_acv = d[3];
    x->oversell_o = d[4];
    x->oversell_seats = d[5];
    x->oversell_deals = pp_rb_u32(r, UINT32_MAX);
    x->load_wdays[0] = pp_rb_u32(r, UINT32_MAX);
    x->load_wdays[1] = pp_rb_u32(r, UINT32_MAX);
    uint8_t same = pp_rb_u8(r);
    for (int i = 0; i < PP_XW__COUNT; i++) {
        get_own(r, &x->win[i]);
        if (same & (1u << i)) {
            x->band_own[i] = x->win[i];
        }
        else {
            get_own(r, &x->band_own[i]);
        }
        if (same & (1u << (i + 4))) {
            x->mature_own[i] = x->win[i];
        }
        else {
            get_own(r, &x->mature_own[i]);
        }
    }
    x->n_qedeal = pp_rb_u8(r);
    if (x->n_qedeal > PP_XREC_MAX_QEDEAL) {
        pp_rb_fail(r, "too many QEDEAL candidates");
        x->n_qedeal = 0;
    }
    for (uint32_t i = 0; i < x->n_qedeal; i++) {
        x->qedeal_qe[i] = pp_rb_u8(r);
        x->qedeal_disc[i] = pp_rb_f32(r);
        x->qedeal_close[i] = pp_rb_zz(r);
    }
    x->hint_owner = 0;
    x->hint_customer = x->hint_partner = x->hint_product = UINT32_MAX;
}

int pp_xrec_decode(const uint8_t *buf, size_t len, struct pp_xrec *out, char *errstr,
                   size_t errstr_size)
{
    struct pp_rbuf r = {buf, len, 0, NULL};
    memset(out, 0, sizeof(*out));
    uint8_t version = pp_rb_u8(&r);
    if (r.err == NULL && version != PP_XREC_VERSION) {
        snprintf(errstr, errstr_size, "exchange record: unknown version %u (this build reads %u)",
                 version, PP_XREC_VERSION);
        return -1;
    }
    out->kind = pp_rb_u8(&r);
    out->source = pp_rb_u32(&r, UINT32_MAX);
    out->day = pp_rb_zz(&r);
    switch (r.err ? 0 : out->kind) {
    case 0:
        break;
    case PP_XREC_DEAL:
        pp_rb_str(&r, out->u.deal.partner_id);
        pp_rb_str(&r, out->u.deal.customer_id);
        out->u.deal.deal = pp_rb_le(&r, 8);
        out->u.deal.acv = pp_rb_f64(&r);
        out->u.deal.discount = pp_rb_f32(&r);
        out->u.deal.close = pp_rb_zz(&r);
        out->u.deal.known = pp_rb_zz(&r);
        out->u.deal.qe = pp_rb_u8(&r);
        out->u.deal.kind = pp_rb_u8(&r);
        out->u.deal.hint_partner = UINT32_MAX;
        if (out->u.deal.qe > 1 || out->u.deal.kind >= PP_KIND__COUNT) {
            pp_rb_fail(&r, "deal field out of range");
        }
        break;
    case PP_XREC_REVERSAL:
        pp_rb_str(&r, out->u.rev.partner_id);
        out->u.rev.deal = pp_rb_le(&r, 8);
        out->u.rev.acv = pp_rb_f64(&r);
        break;
    case PP_XREC_COHORT:
        pp_rb_str(&r, out->u.cohort.product_id);
        out->u.cohort.band = pp_rb_u8(&r);
        out->u.cohort.customers = pp_rb_u32(&r, UINT32_MAX);
        out->u.cohort.wt = pp_rb_var(&r);
        out->u.cohort.active = pp_rb_var(&r);
        out->u.cohort.opened = pp_rb_var(&r);
        out->u.cohort.esc = pp_rb_var(&r);
        out->u.cohort.resp = pp_rb_var(&r);
        out->u.cohort.pos = pp_rb_var(&r);
        if (out->u.cohort.band > 2) {
            pp_rb_fail(&r, "cohort band out of range");
        }
        break;
    case PP_XREC_ASSESS:
        get_assess(&r, &out->u.assess);
        break;
    case PP_XREC_EOD:
        out->u.eod.flags = pp_rb_u8(&r);
        if (out->u.eod.flags > (PP_EOD_EVALUATED | PP_EOD_STARTED)) {
            pp_rb_fail(&r, "EOD flags out of range");
        }
        break;
    default:
        snprintf(errstr, errstr_size, "exchange record: unknown kind %u", out->kind);
        return -1;
    }
    if (r.err == NULL && r.pos != r.n) {
        pp_rb_fail(&r, "trailing bytes");
    }
    if (r.err != NULL) {
        snprintf(errstr, errstr_size, "exchange record (%zu bytes): %s at byte %zu", len, r.err,
                 r.pos);
        return -1;
    }
    return 0;
}
