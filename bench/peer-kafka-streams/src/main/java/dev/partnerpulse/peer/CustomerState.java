package dev.partnerpulse.peer;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;

/**
 * Everything the customers stage keeps for one customer: the Java mirror of
 * struct customer, struct tranche and struct link in
 * processors/model/model.c, and its serde for the RocksDB store and its
 * changelog (a compact versioned binary with varints; the rings are written
 * whole because finalization touches every slot over time).
 *
 * Sentinels follow the C code: NO_DAY for missing days, -1 for "no snapshot
 * that day" (NO_ACTIVE) and for an unknown entitlement (UINT32_MAX there).
 */
public final class CustomerState {
    public static final int NO_ACTIVE = -1;
    public static final int TR_SEATS = 0, TR_ADDON = 1, TR_RENEWAL = 2, TR_COMMIT = 3;
    public static final int CUT_ALL = Integer.MAX_VALUE;
    public static final int MAX_TRANCHES = 8, MAX_LINKS = 4;

    /** Sums over one window of finalized days (struct wsum). */
    public static final class Wsum {
        public long active;
        public int wt, opened, esc, resp, pos;
        public double cons;

        Wsum copy() {
            Wsum w = new Wsum();
            w.active = active;
            w.wt = wt;
            w.opened = opened;
            w.esc = esc;
            w.resp = resp;
            w.pos = pos;
            w.cons = cons;
            return w;
        }
    }

    /** One deal a customer holds (struct tranche). partner == null: a placeholder. */
    public static final class Tranche {
        public long deal; /* FNV-1a of deal_id, compared unsigned */
        public double acv;
        public double commitK;
        public double commitBase = Double.NaN;
        public double b0 = -1.0;
        public float discount = Float.NaN;
        public float uPre = -1.0f;
        public String partner;
        public int close = PpTime.NO_DAY, start, end, known = PpTime.NO_DAY;
        public int seats;
        public int cutSeats, cutDay = PpTime.NO_DAY;
        public int creditDay = PpTime.NO_DAY;
        public double creditAcv;
        public int kind;
        public boolean qe;
        public boolean creditSeats;
        public float creditF;
    }

    public Wsum[] sums;
    public int[] active; /* width slots, NO_ACTIVE = no snapshot that day */
    public int[] wt;     /* severity-weighted tickets opened (uint16, saturating) */
    public int[] cnt;    /* 4 per slot: opened, escalated, csat responses, positives (uint8) */
    public float[] cons; /* null until the first consumption */
    public double consCum;
    public List<Tranche> tr = new ArrayList<>(1);  /* sorted by (close, deal unsigned) */
    public List<String> links = new ArrayList<>(1); /* partner ids, in link order */
    public int lastActive;
    public int[] entVal = new int[4];
    public int[] entDay = {PpTime.NO_DAY, PpTime.NO_DAY, PpTime.NO_DAY, PpTime.NO_DAY};
    public long entNow = -1; /* -1 unknown */
    public int lastSnapDay = PpTime.NO_DAY;
    public int firstSnapDay = PpTime.NO_DAY;
    public int firstConsDay = PpTime.NO_DAY;
    public int bandSince = PpTime.NO_DAY, matureSince = PpTime.NO_DAY;
    public String product; /* cohort product, null unknown */
    public int band = -1;

    public CustomerState(int nwin, int width) {
        sums = new Wsum[nwin];
        for (int i = 0; i < nwin; i++) {
            sums[i] = new Wsum();
        }
        active = new int[width];
        java.util.Arrays.fill(active, NO_ACTIVE);
        wt = new int[width];
        cnt = new int[width * 4];
    }

    /* ---- serialisation ------------------------------------------------- */

    private static final byte VERSION = 1;

    public static final class Codec implements Serializer<CustomerState>, Deserializer<CustomerState> {
        private final int nwin, width;

        public Codec(int nwin, int width) {
            this.nwin = nwin;
            this.width = width;
        }

        @Override
        public void configure(java.util.Map<String, ?> configs, boolean isKey) {}

        @Override
        public void close() {}

        @Override
        public byte[] serialize(String topic, CustomerState c) {
            if (c == null) {
                return null;
            }
            Buf b = new Buf(256 + width * 8);
            b.u8(VERSION);
            for (Wsum w : c.sums) {
                b.vlong(w.active);
                b.vint(w.wt);
                b.vint(w.opened);
                b.vint(w.esc);
                b.vint(w.resp);
                b.vint(w.pos);
                b.f64(w.cons);
            }
            for (int i = 0; i < width; i++) {
                b.vint(c.active[i] + 1); /* NO_ACTIVE -> 0 */
            }
            for (int i = 0; i < width; i++) {
                b.vint(c.wt[i]);
            }
            for (int i = 0; i < width * 4; i++) {
                b.u8(c.cnt[i]);
            }
            b.u8(c.cons == null ? 0 : 1);
            if (c.cons != null) {
                for (int i = 0; i < width; i++) {
                    b.f32(c.cons[i]);
                }
            }
            b.f64(c.consCum);
            b.u8(c.tr.size());
            for (Tranche t : c.tr) {
                b.i64(t.deal);
                b.f64(t.acv);
                b.f64(t.commitK);
                b.f64(t.commitBase);
                b.f64(t.b0);
                b.f32(t.discount);
                b.f32(t.uPre);
                b.str(t.partner);
                b.zint(t.close);
                b.zint(t.start);
                b.zint(t.end);
                b.zint(t.known);
                b.zint(t.seats);
                b.zint(t.cutSeats);
                b.zint(t.cutDay);
                b.zint(t.creditDay);
                b.f64(t.creditAcv);
                b.u8(t.kind);
                b.u8((t.qe ? 1 : 0) | (t.creditSeats ? 2 : 0));
                b.f32(t.creditF);
            }
            b.u8(c.links.size());
            for (String l : c.links) {
                b.str(l);
            }
            b.zint(c.lastActive);
            for (int i = 0; i < 4; i++) {
                b.zint(c.entVal[i]);
                b.zint(c.entDay[i]);
            }
            b.vlong(c.entNow + 1);
            b.zint(c.lastSnapDay);
            b.zint(c.firstSnapDay);
            b.zint(c.firstConsDay);
            b.zint(c.bandSince);
            b.zint(c.matureSince);
            b.str(c.product);
            b.zint(c.band);
            return b.bytes();
        }

        @Override
        public CustomerState deserialize(String topic, byte[] data) {
            if (data == null) {
                return null;
            }
            ByteBuffer in = ByteBuffer.wrap(data);
            int v = in.get();
            if (v != VERSION) {
                throw new IllegalStateException("customer state: unknown version " + v);
            }
            CustomerState c = new CustomerState(nwin, width);
            for (Wsum w : c.sums) {
                w.active = Buf.vlong(in);
                w.wt = Buf.vint(in);
                w.opened = Buf.vint(in);
                w.esc = Buf.vint(in);
                w.resp = Buf.vint(in);
                w.pos = Buf.vint(in);
                w.cons = in.getDouble();
            }
            for (int i = 0; i < width; i++) {
                c.active[i] = Buf.vint(in) - 1;
            }
            for (int i = 0; i < width; i++) {
                c.wt[i] = Buf.vint(in);
            }
            for (int i = 0; i < width * 4; i++) {
                c.cnt[i] = in.get() & 0xff;
            }
            if (in.get() != 0) {
                c.cons = new float[width];
                for (int i = 0; i < width; i++) {
                    c.cons[i] = in.getFloat();
                }
            }
            c.consCum = in.getDouble();
            int ntr = in.get() & 0xff;
            for (int k = 0; k < ntr; k++) {
                Tranche t = new Tranche();
                t.deal = in.getLong();
                t.acv = in.getDouble();
                t.commitK = in.getDouble();
                t.commitBase = in.getDouble();
                t.b0 = in.getDouble();
                t.discount = in.getFloat();
                t.uPre = in.getFloat();
                t.partner = Buf.str(in);
                t.close = Buf.zint(in);
                t.start = Buf.zint(in);
                t.end = Buf.zint(in);
                t.known = Buf.zint(in);
                t.seats = Buf.zint(in);
                t.cutSeats = Buf.zint(in);
                t.cutDay = Buf.zint(in);
                t.creditDay = Buf.zint(in);
                t.creditAcv = in.getDouble();
                t.kind = in.get() & 0xff;
                int flags = in.get() & 0xff;
                t.qe = (flags & 1) != 0;
                t.creditSeats = (flags & 2) != 0;
                t.creditF = in.getFloat();
                c.tr.add(t);
            }
            int nl = in.get() & 0xff;
            for (int k = 0; k < nl; k++) {
                c.links.add(Buf.str(in));
            }
            c.lastActive = Buf.zint(in);
            for (int i = 0; i < 4; i++) {
                c.entVal[i] = Buf.zint(in);
                c.entDay[i] = Buf.zint(in);
            }
            c.entNow = Buf.vlong(in) - 1;
            c.lastSnapDay = Buf.zint(in);
            c.firstSnapDay = Buf.zint(in);
            c.firstConsDay = Buf.zint(in);
            c.bandSince = Buf.zint(in);
            c.matureSince = Buf.zint(in);
            c.product = Buf.str(in);
            c.band = Buf.zint(in);
            return c;
        }
    }

    public static Serde<CustomerState> serde(int nwin, int width) {
        Codec codec = new Codec(nwin, width);
        return Serdes.serdeFrom(codec, codec);
    }
}
