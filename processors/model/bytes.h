/*
 * bytes.h — the byte writer and reader of the stages' hand-written binary
 * records: store values and keys (serial.c) and exchange records (xrec.c).
 *
 * Little-endian throughout: a varint (7 bits a byte, low first) for counts
 * and integers, a zig-zag varint for signed days, doubles and floats as
 * their IEEE bits (so a reader computes with exactly the writer's values),
 * ids as a varint length and their bytes. Hand-written rather than Avro:
 * both formats are our own, read only by this code, and on the hot path
 * (serial.c and xrec.c say more).
 *
 * The writer either grows its buffer (store values: `struct pp_wbuf w =
 * {0}`) or writes into a fixed one and notes an overflow (exchange records:
 * PP_WBUF_FIXED). The reader checks every length and range; its first error
 * sticks (`err`), and every read after it returns 0.
 */
#ifndef PP_MODEL_BYTES_H
#define PP_MODEL_BYTES_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "palloc.h"
#include "stage.h" /* PP_ID_MAX */

struct pp_wbuf {
    uint8_t *p;
    size_t n, cap;
    bool fixed;    /* cap is the end: no growing */
    bool overflow; /* a fixed buffer was too small: what it holds is void */
};

#define PP_WBUF_FIXED(buf, cap) ((struct pp_wbuf){(buf), 0, (cap), true, false})

/* Room for more bytes: true, or false (and overflow noted) when fixed. */
static inline bool pp_wb_room(struct pp_wbuf *w, size_t more)
{
    if (w->n + more <= w->cap) {
        return true;
    }
    if (w->fixed) {
        w->overflow = true;
        return false;
    }
    w->cap = (w->n + more) * 2 + 64;
    w->p = pp_xrealloc(w->p, w->cap);
    return true;
}

static inline void pp_wb_u8(struct pp_wbuf *w, uint8_t v)
{
    if (pp_wb_room(w, 1)) {
        w->p[w->n++] = v;
    }
}

static inline void pp_wb_var(struct pp_wbuf *w, uint64_t v)
{
    while (v >= 0x80) {
        pp_wb_u8(w, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    pp_wb_u8(w, (uint8_t)v);
}

static inline void pp_wb_zz(struct pp_wbuf *w, int32_t v)
{
    pp_wb_var(w, ((uint32_t)v << 1) ^ (v < 0 ? UINT32_MAX : 0u));
}

static inline void pp_wb_le(struct pp_wbuf *w, uint64_t v, int bytes)
{
    if (pp_wb_room(w, (size_t)bytes)) {
        for (int i = 0; i < bytes; i++) {
            w->p[w->n++] = (uint8_t)(v >> (8 * i));
        }
    }
}

static inline void pp_wb_f64(struct pp_wbuf *w, double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof(v));
    pp_wb_le(w, v, 8);
}

static inline void pp_wb_f32(struct pp_wbuf *w, float f)
{
    uint32_t v;
    memcpy(&v, &f, sizeof(v));
    pp_wb_le(w, v, 4);
}

/* Raw bytes, no length. */
static inline void pp_wb_bytes(struct pp_wbuf *w, const void *b, size_t n)
{
    if (n > 0 && pp_wb_room(w, n)) {
        memcpy(w->p + w->n, b, n);
        w->n += n;
    }
}

/* An id (at most PP_ID_MAX - 1 bytes: what the reader takes). */
static inline void pp_wb_str(struct pp_wbuf *w, const char *s)
{
    size_t n = strnlen(s, PP_ID_MAX - 1);
    pp_wb_var(w, n);
    pp_wb_bytes(w, s, n);
}

struct pp_rbuf {
    const uint8_t *p;
    size_t n, pos;
    const char *err; /* the first error, NULL while fine */
};

static inline void pp_rb_fail(struct pp_rbuf *r, const char *what)
{
    if (r->err == NULL) {
        r->err = what;
    }
}

static inline uint8_t pp_rb_u8(struct pp_rbuf *r)
{
    if (r->err || r->pos >= r->n) {
        pp_rb_fail(r, "truncated");
        return 0;
    }
    return r->p[r->pos++];
}

static inline uint64_t pp_rb_var(struct pp_rbuf *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        uint8_t b = pp_rb_u8(r);
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
    pp_rb_fail(r, "varint too long");
    return 0;
}

/* A varint no larger than max. */
static inline uint32_t pp_rb_u32(struct pp_rbuf *r, uint32_t max)
{
    uint64_t v = pp_rb_var(r);
    if (v > max) {
        pp_rb_fail(r, "value out of range");
        return 0;
    }
    return (uint32_t)v;
}

static inline int32_t pp_rb_zz(struct pp_rbuf *r)
{
    uint32_t u = pp_rb_u32(r, UINT32_MAX);
    return (int32_t)((u >> 1) ^ (~(u & 1) + 1));
}

static inline uint64_t pp_rb_le(struct pp_rbuf *r, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) {
        v |= (uint64_t)pp_rb_u8(r) << (8 * i);
    }
    return v;
}

static inline double pp_rb_f64(struct pp_rbuf *r)
{
    uint64_t v = pp_rb_le(r, 8);
    double d;
    memcpy(&d, &v, sizeof(d));
    return d;
}

static inline float pp_rb_f32(struct pp_rbuf *r)
{
    uint32_t v = (uint32_t)pp_rb_le(r, 4);
    float f;
    memcpy(&f, &v, sizeof(f));
    return f;
}

/* An id into out (PP_ID_MAX bytes): no NUL inside, at most PP_ID_MAX - 1. */
static inline void pp_rb_str(struct pp_rbuf *r, char *out)
{
    uint64_t n = pp_rb_var(r);
    out[0] = '\0';
    if (r->err) {
        return;
    }
    if (n > PP_ID_MAX - 1) {
        pp_rb_fail(r, "id too long");
        return;
    }
    if (n > r->n - r->pos) {
        pp_rb_fail(r, "truncated");
        return;
    }
    if (memchr(r->p + r->pos, '\0', n) != NULL) {
        pp_rb_fail(r, "NUL inside an id");
        return;
    }
    memcpy(out, r->p + r->pos, n);
    out[n] = '\0';
    r->pos += n;
}

#endif
