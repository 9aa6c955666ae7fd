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

#include "stage.h"

/* ---- writer ------------------------------------------------------------------ */

struct wbuf {
    uint8_t *p;
    size_t n, cap;
    bool overflow;
};

static void put_u8(struct wbuf *w, uint8_t v)
{
    if (w->n + 1 > w->cap) {
        w->overflow = true;
        return;
    }
    w->p[w->n++] = v;
}

static void put_var(struct wbuf *w, uint64_t v)
{
    while (v >= 0x80) {
        put_u8(w, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    put_u8(w, (uint8_t)v);
}

static void put_zz(struct wbuf *w, int32_t v)
{
    put_var(w, ((uint32_t)v << 1) ^ (v < 0 ? UINT32_MAX : 0u));
}

static void put_le(struct wbuf *w, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) {
        put_u8(w, (uint8_t)(v >> (8 * i)));
    }
}

static void put_f64(struct wbuf *w, double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof(v));
    put_le(w, v, 8);
}

static void put_f32(struct wbuf *w, float f)
{
    uint32_t v;
    memcpy(&v, &f, sizeof(v));
    put_le(w, v, 4);
}

static void put_str(struct wbuf *w, const char *s)
{
    size_t n = strnlen(s, PP_ID_MAX - 1);
    put_var(w, n);
    for (size_t i = 0; i < n; i++) {
        put_u8(w, (uint8_t)s[i]);
    }
}

static bool f64_zero(double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof(v));
    return v == 0; /* +0.0 only: -0.0 and NAN travel as bits */
}

/* A flag byte (bit i: value i is not +0.0), then the non-zero values. */
static void put_f64s(struct wbuf *w, const double *v, int n)
{
    uint8_t flags = 0;
    for (int i = 0; i < n; i++) {
        flags |= f64_zero(v[i]) ? 0 : (uint8_t)(1u << i);
    }
    put_u8(w, flags);
    for (int i = 0; i < n; i++) {
        if (!f64_zero(v[i])) {
            put_f64(w, v[i]);
        }
    }
}

static void put_sig(struct wbuf *w, const struct pp_xsig *s)
{
    double v[2] = {s->value, s->risk};
    put_u8(w, s->present ? 1 : 0);
    put_f64s(w, v, 2);
}

static void put_own(struct wbuf *w, const struct pp_xown *o)
{
    put_var(w, o->active);
    put_var(w, o->wt);
    put_var(w, o->opened);
    put_var(w, o->esc);
    put_var(w, o->resp);
    put_var(w, o->pos);
}

static bool own_eq(const struct pp_xown *a, const struct pp_xown *b)
{
    return a->active == b->active && a->wt == b->wt && a->opened == b->opened && a->esc == b->esc &&
           a->resp == b->resp && a->pos == b->pos;
}

static void put_assess(struct wbuf *w, const struct pp_xrec_assess *x)
{
    put_str(w, x->customer_id);
    put_str(w, x->partner_id);
    put_str(w, x->product_id);
    put_u8(w, x->link);
    put_u8(w, (uint8_t)x->band);
    put_u8(w, (uint8_t)((x->has_seats ? 1 : 0) | (x->touched ? 2 : 0)));
    put_sig(w, &x->shelf[0]);
    put_sig(w, &x->shelf[1]);
    put_sig(w, &x->gap[0]);
    put_sig(w, &x->gap[1]);
    put_sig(w, &x->oversell);
    put_sig(w, &x->oversize);
    double d[6] = {x->exp_util0,   x->s365,       x->s180,
                   x->partner_acv, x->oversell_o, x->oversell_seats};
    put_f64s(w, d, 6);
    put_var(w, x->oversell_deals);
    put_var(w, x->load_wdays[0]);
    put_var(w, x->load_wdays[1]);
    /* The own sums are usually the whole window's: a bit per copy says so. */
    uint8_t same = 0;
    for (int i = 0; i < PP_XW__COUNT; i++) {
        same |= own_eq(&x->band_own[i], &x->win[i]) ? (uint8_t)(1u << i) : 0;
        same |= own_eq(&x->mature_own[i], &x->win[i]) ? (uint8_t)(1u << (i + 4)) : 0;
    }
    put_u8(w, same);
    for (int i = 0; i < PP_XW__COUNT; i++) {
        put_own(w, &x->win[i]);
        if (!(same & (1u << i))) {
            put_own(w, &x->band_own[i]);
        }
        if (!(same & (1u << (i + 4)))) {
            put_own(w, &x->mature_own[i]);
        }
    }
    put_u8(w, x->n_qedeal);
    for (uint32_t i = 0; i < x->n_qedeal && i < PP_XREC_MAX_QEDEAL; i++) {
        put_u8(w, x->qedeal_qe[i]);
        put_f32(w, x->qedeal_disc[i]);
        put_zz(w, x->qedeal_close[i]);
    }
}

size_t pp_xrec_encode(const struct pp_xrec *x, uint8_t *buf, size_t cap)
{
    struct wbuf w = {buf, 0, cap, false};
    put_u8(&w, PP_XREC_VERSION);
    put_u8(&w, x->kind);
    put_var(&w, x->source);
    put_zz(&w, x->day);
    switch (x->kind) {
    case PP_XREC_DEAL:
        put_str(&w, x->u.deal.partner_id);
        put_str(&w, x->u.deal.customer_id);
        put_le(&w, x->u.deal.deal, 8);
        put_f64(&w, x->u.deal.acv);
        put_f32(&w, x->u.deal.discount);
        put_zz(&w, x->u.deal.close);
        put_zz(&w, x->u.deal.known);
        put_u8(&w, x->u.deal.qe);
        put_u8(&w, x->u.deal.kind);
        break;
    case PP_XREC_REVERSAL:
        put_str(&w, x->u.rev.partner_id);
        put_le(&w, x->u.rev.deal, 8);
        put_f64(&w, x->u.rev.acv);
        break;
    case PP_XREC_COHORT:
        put_str(&w, x->u.cohort.product_id);
        put_u8(&w, x->u.cohort.band);
        put_var(&w, x->u.cohort.customers);
        put_var(&w, x->u.cohort.wt);
        put_var(&w, x->u.cohort.active);
        put_var(&w, x->u.cohort.opened);
        put_var(&w, x->u.cohort.esc);
        put_var(&w, x->u.cohort.resp);
        put_var(&w, x->u.cohort.pos);
        break;
    case PP_XREC_ASSESS:
        put_assess(&w, &x->u.assess);
        break;
    case PP_XREC_EOD:
        put_u8(&w, x->u.eod.flags);
        break;
    default:
        return 0;
    }
    return w.overflow ? 0 : w.n;
}

/* ---- reader ------------------------------------------------------------------ */

struct rbuf {
    const uint8_t *p;
    size_t n, pos;
    const char *err; /* first error, NULL while fine */
};

static void fail(struct rbuf *r, const char *what)
{
    if (r->err == NULL) {
        r->err = what;
    }
}

static uint8_t get_u8(struct rbuf *r)
{
    if (r->err || r->pos >= r->n) {
        fail(r, "truncated");
        return 0;
    }
    return r->p[r->pos++];
}

static uint64_t get_var(struct rbuf *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        uint8_t b = get_u8(r);
        if (r->err) {
            return 0;
        }
        if (shift == 63 && b > 1) {
            break;
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            return v;
        }
    }
    fail(r, "varint too long");
    return 0;
}

static uint32_t get_u32(struct rbuf *r)
{
    uint64_t v = get_var(r);
    if (v > UINT32_MAX) {
        fail(r, "value out of range");
        return 0;
    }
    return (uint32_t)v;
}

static int32_t get_zz(struct rbuf *r)
{
    uint32_t u = get_u32(r);
    return (int32_t)((u >> 1) ^ (~(u & 1) + 1));
}

static uint64_t get_le(struct rbuf *r, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) {
        v |= (uint64_t)get_u8(r) << (8 * i);
    }
    return v;
}

static double get_f64(struct rbuf *r)
{
    uint64_t v = get_le(r, 8);
    double d;
    memcpy(&d, &v, sizeof(d));
    return d;
}

static float get_f32(struct rbuf *r)
{
    uint32_t v = (uint32_t)get_le(r, 4);
    float f;
    memcpy(&f, &v, sizeof(f));
    return f;
}

static void get_str(struct rbuf *r, char *out)
{
    uint64_t n = get_var(r);
    out[0] = '\0';
    if (r->err) {
        return;
    }
    if (n > PP_ID_MAX - 1) {
        fail(r, "id too long");
        return;
    }
    if (n > r->n - r->pos) {
        fail(r, "truncated");
        return;
    }
    if (memchr(r->p + r->pos, '\0', n) != NULL) {
        fail(r, "NUL inside an id");
        return;
    }
    memcpy(out, r->p + r->pos, n);
    out[n] = '\0';
    r->pos += n;
}

static void get_f64s(struct rbuf *r, double *v, int n)
{
    uint8_t flags = get_u8(r);
    if (flags >> n) {
        fail(r, "bad value flags");
        return;
    }
    for (int i = 0; i < n; i++) {
        v[i] = flags & (1u << i) ? get_f64(r) : 0.0;
    }
}

static void get_sig(struct rbuf *r, struct pp_xsig *s)
{
    uint8_t present = get_u8(r);
    if (present > 1) {
        fail(r, "bad signal flag");
    }
    double v[2];
    get_f64s(r, v, 2);
    s->present = present == 1;
    s->value = v[0];
    s->risk = v[1];
}

static void get_own(struct rbuf *r, struct pp_xown *o)
{
    o->active = get_var(r);
    o->wt = get_u32(r);
    o->opened = get_u32(r);
    o->esc = get_u32(r);
    o->resp = get_u32(r);
    o->pos = get_u32(r);
}

static void get_assess(struct rbuf *r, struct pp_xrec_assess *x)
{
    get_str(r, x->customer_id);
    get_str(r, x->partner_id);
    get_str(r, x->product_id);
    x->link = get_u8(r);
    x->band = (int8_t)get_u8(r);
    uint8_t flags = get_u8(r);
    if (x->link >= 4 || x->band < -1 || x->band > 2 || flags > 3) {
        fail(r, "assessment field out of range");
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
    x->oversell_deals = get_u32(r);
    x->load_wdays[0] = get_u32(r);
    x->load_wdays[1] = get_u32(r);
    uint8_t same = get_u8(r);
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
    x->n_qedeal = get_u8(r);
    if (x->n_qedeal > PP_XREC_MAX_QEDEAL) {
        fail(r, "too many QEDEAL candidates");
        x->n_qedeal = 0;
    }
    for (uint32_t i = 0; i < x->n_qedeal; i++) {
        x->qedeal_qe[i] = get_u8(r);
        x->qedeal_disc[i] = get_f32(r);
        x->qedeal_close[i] = get_zz(r);
    }
    x->hint_owner = 0;
    x->hint_customer = x->hint_partner = x->hint_product = UINT32_MAX;
}

int pp_xrec_decode(const uint8_t *buf, size_t len, struct pp_xrec *out, char *errstr,
                   size_t errstr_size)
{
    struct rbuf r = {buf, len, 0, NULL};
    memset(out, 0, sizeof(*out));
    uint8_t version = get_u8(&r);
    if (r.err == NULL && version != PP_XREC_VERSION) {
        snprintf(errstr, errstr_size, "exchange record: unknown version %u (this build reads %u)",
                 version, PP_XREC_VERSION);
        return -1;
    }
    out->kind = get_u8(&r);
    out->source = get_u32(&r);
    out->day = get_zz(&r);
    switch (r.err ? 0 : out->kind) {
    case 0:
        break;
    case PP_XREC_DEAL:
        get_str(&r, out->u.deal.partner_id);
        get_str(&r, out->u.deal.customer_id);
        out->u.deal.deal = get_le(&r, 8);
        out->u.deal.acv = get_f64(&r);
        out->u.deal.discount = get_f32(&r);
        out->u.deal.close = get_zz(&r);
        out->u.deal.known = get_zz(&r);
        out->u.deal.qe = get_u8(&r);
        out->u.deal.kind = get_u8(&r);
        out->u.deal.hint_partner = UINT32_MAX;
        if (out->u.deal.qe > 1 || out->u.deal.kind >= PP_KIND__COUNT) {
            fail(&r, "deal field out of range");
        }
        break;
    case PP_XREC_REVERSAL:
        get_str(&r, out->u.rev.partner_id);
        out->u.rev.deal = get_le(&r, 8);
        out->u.rev.acv = get_f64(&r);
        break;
    case PP_XREC_COHORT:
        get_str(&r, out->u.cohort.product_id);
        out->u.cohort.band = get_u8(&r);
        out->u.cohort.customers = get_u32(&r);
        out->u.cohort.wt = get_var(&r);
        out->u.cohort.active = get_var(&r);
        out->u.cohort.opened = get_var(&r);
        out->u.cohort.esc = get_var(&r);
        out->u.cohort.resp = get_var(&r);
        out->u.cohort.pos = get_var(&r);
        if (out->u.cohort.band > 2) {
            fail(&r, "cohort band out of range");
        }
        break;
    case PP_XREC_ASSESS:
        get_assess(&r, &out->u.assess);
        break;
    case PP_XREC_EOD:
        out->u.eod.flags = get_u8(&r);
        if (out->u.eod.flags > (PP_EOD_EVALUATED | PP_EOD_STARTED)) {
            fail(&r, "EOD flags out of range");
        }
        break;
    default:
        snprintf(errstr, errstr_size, "exchange record: unknown kind %u", out->kind);
        return -1;
    }
    if (r.err == NULL && r.pos != r.n) {
        fail(&r, "trailing bytes");
    }
    if (r.err != NULL) {
        snprintf(errstr, errstr_size, "exchange record (%zu bytes): %s at byte %zu", len, r.err,
                 r.pos);
        return -1;
    }
    return 0;
}
