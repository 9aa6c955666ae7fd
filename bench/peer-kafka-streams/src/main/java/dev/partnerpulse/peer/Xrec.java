package dev.partnerpulse.peer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * partnerpulse's exchange records (processors/model/stage.h) and their wire
 * form, byte for byte as pp_xrec_encode (processors/model/xrec.c) writes
 * them: version 1, kind, varint source, zig-zag day, then per kind
 * length-prefixed ids, varints, little-endian IEEE bits, and for doubles that
 * may be zero a flag byte and only the non-zero ones.
 *
 * Writing the very bytes partnerpulse's customers stage writes makes the
 * benchmark's comparison a plain byte comparison of two sorted record sets,
 * and lets partnerpulse's own decoder (pp_xrec_decode) read the peer's
 * output: nothing is rounded, no tolerance is needed.
 */
public final class Xrec {
    public static final int VERSION = 1;
    public static final int DEAL = 1, REVERSAL = 2, COHORT = 3, ASSESS = 4, EOD = 5;
    public static final int EOD_EVALUATED = 1, EOD_STARTED = 2;
    public static final int XW_LOAD_S = 0, XW_LOAD_L = 1, XW_RATIO_S = 2, XW_RATIO_L = 3;
    public static final int MAX_QEDEAL = 8;

    private Xrec() {}

    /** struct pp_xsig */
    public static final class Sig {
        public boolean present;
        public double value, risk;

        static Sig of(Signals.Sig s) {
            Sig x = new Sig();
            x.present = s.present;
            x.value = s.value;
            x.risk = s.risk;
            return x;
        }
    }

    /** struct pp_xown */
    public static final class Own {
        public long active;
        public int wt, opened, esc, resp, pos;

        boolean same(Own o) {
            return active == o.active && wt == o.wt && opened == o.opened && esc == o.esc && resp == o.resp
                    && pos == o.pos;
        }
    }

    /** struct pp_xrec_assess (without the in-process lookup hints). */
    public static final class Assess {
        public String customerId, partnerId, productId = "";
        public int link, band;
        public boolean hasSeats, touched;
        public Sig[] shelf = new Sig[2];
        public double expUtil0;
        public int[] loadWdays = new int[2];
        public Own[] win = new Own[4], bandOwn = new Own[4], matureOwn = new Own[4];
        public Sig[] gap = new Sig[2];
        public Sig oversell, oversize;
        public double s365, s180, partnerAcv;
        public double oversellO, oversellSeats;
        public int oversellDeals;
        public int nQedeal;
        public boolean[] qedealQe = new boolean[MAX_QEDEAL];
        public float[] qedealDisc = new float[MAX_QEDEAL];
        public int[] qedealClose = new int[MAX_QEDEAL];
    }

    /* ---- writer ---------------------------------------------------------- */

    static final class W {
        byte[] a = new byte[256];
        int n;

        void u8(int v) {
            if (n == a.length) {
                a = Arrays.copyOf(a, a.length * 2);
            }
            a[n++] = (byte) v;
        }

        void var(long v) {
            while (Long.compareUnsigned(v, 0x80) >= 0) {
                u8((int) (v | 0x80));
                v >>>= 7;
            }
            u8((int) v);
        }

        void zz(int v) {
            var(((v << 1) ^ (v >> 31)) & 0xFFFFFFFFL);
        }

        void le(long v, int bytes) {
            for (int i = 0; i < bytes; i++) {
                u8((int) (v >>> (8 * i)));
            }
        }

        void f64(double d) {
            le(Double.doubleToRawLongBits(d), 8);
        }

        void f32(float f) {
            le(Float.floatToRawIntBits(f) & 0xFFFFFFFFL, 4);
        }

        void str(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            int len = Math.min(b.length, 63); /* strnlen(s, PP_ID_MAX - 1) */
            var(len);
            for (int i = 0; i < len; i++) {
                u8(b[i]);
            }
        }

        /** A flag byte (bit i: value i is not +0.0), then the non-zero values. */
        void f64s(double... v) {
            int flags = 0;
            for (int i = 0; i < v.length; i++) {
                flags |= Double.doubleToRawLongBits(v[i]) == 0 ? 0 : 1 << i;
            }
            u8(flags);
            for (double d : v) {
                if (Double.doubleToRawLongBits(d) != 0) {
                    f64(d);
                }
            }
        }

        void sig(Sig s) {
            u8(s.present ? 1 : 0);
            f64s(s.value, s.risk);
        }

        void own(Own o) {
            var(o.active);
            var(o.wt & 0xFFFFFFFFL);
            var(o.opened & 0xFFFFFFFFL);
            var(o.esc & 0xFFFFFFFFL);
            var(o.resp & 0xFFFFFFFFL);
            var(o.pos & 0xFFFFFFFFL);
        }

        void head(int kind, int source, int day) {
            u8(VERSION);
            u8(kind);
            var(source & 0xFFFFFFFFL);
            zz(day);
        }

        byte[] bytes() {
            return Arrays.copyOf(a, n);
        }
    }

    public static byte[] deal(int source, int day, String partner, String customer, long deal, double acv,
            float discount, int close, int known, boolean qe, int kind) {
        W w = new W();
        w.head(DEAL, source, day);
        w.str(partner);
        w.str(customer);
        w.le(deal, 8);
        w.f64(acv);
        w.f32(discount);
        w.zz(close);
        w.zz(known);
        w.u8(qe ? 1 : 0);
        w.u8(kind);
        return w.bytes();
    }

    public static byte[] reversal(int source, int day, String partner, long deal, double acv) {
        W w = new W();
        w.head(REVERSAL, source, day);
        w.str(partner);
        w.le(deal, 8);
        w.f64(acv);
        return w.bytes();
    }

    public static byte[] cohort(int source, int day, String product, int band, CustomerModel.Cpart p) {
        W w = new W();
        w.head(COHORT, source, day);
        w.str(product);
        w.u8(band);
        w.var(p.customers & 0xFFFFFFFFL);
        w.var(p.wt);
        w.var(p.active);
        w.var(p.opened);
        w.var(p.esc);
        w.var(p.resp);
        w.var(p.pos);
        return w.bytes();
    }

    public static byte[] eod(int source, int day, int flags) {
        W w = new W();
        w.head(EOD, source, day);
        w.u8(flags);
        return w.bytes();
    }

    public static byte[] assess(int source, int day, Assess x) {
        W w = new W();
        w.head(ASSESS, source, day);
        w.str(x.customerId);
        w.str(x.partnerId);
        w.str(x.productId);
        w.u8(x.link);
        w.u8(x.band);
        w.u8((x.hasSeats ? 1 : 0) | (x.touched ? 2 : 0));
        w.sig(x.shelf[0]);
        w.sig(x.shelf[1]);
        w.sig(x.gap[0]);
        w.sig(x.gap[1]);
        w.sig(x.oversell);
        w.sig(x.oversize);
        w.f64s(x.expUtil0, x.s365, x.s180, x.partnerAcv, x.oversellO, x.oversellSeats);
        w.var(x.oversellDeals & 0xFFFFFFFFL);
        w.var(x.loadWdays[0] & 0xFFFFFFFFL);
        w.var(x.loadWdays[1] & 0xFFFFFFFFL);
        int same = 0;
        for (int i = 0; i < 4; i++) {
            same |= x.bandOwn[i].same(x.win[i]) ? 1 << i : 0;
            same |= x.matureOwn[i].same(x.win[i]) ? 1 << (i + 4) : 0;
        }
        w.u8(same);
        for (int i = 0; i < 4; i++) {
            w.own(x.win[i]);
            if ((same & (1 << i)) == 0) {
                w.own(x.bandOwn[i]);
            }
            if ((same & (1 << (i + 4))) == 0) {
                w.own(x.matureOwn[i]);
            }
        }
        w.u8(x.nQedeal);
        for (int i = 0; i < x.nQedeal && i < MAX_QEDEAL; i++) {
            w.u8(x.qedealQe[i] ? 1 : 0);
            w.f32(x.qedealDisc[i]);
            w.zz(x.qedealClose[i]);
        }
        return w.bytes();
    }
}
