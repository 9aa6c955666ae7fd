package dev.partnerpulse.peer;

/**
 * The formulas of processors/model/signals.c that the customers stage
 * evaluates (MODEL.md §2.3), same operations in the same order.
 */
public final class Signals {
    private Signals() {}

    /** struct pp_sig: a null signal has present == false. */
    public static final class Sig {
        public boolean present;
        public double value, risk;

        static Sig none() {
            return new Sig();
        }

        static Sig of(double value, double risk) {
            Sig s = new Sig();
            s.present = true;
            s.value = value;
            s.risk = risk;
            return s;
        }
    }

    static double clamp01(double x) {
        if (!(x > 0.0)) {
            return 0.0;
        }
        return x > 1.0 ? 1.0 : x;
    }

    public static double ramp(double x, double good, double bad) {
        if (good == bad) {
            return x >= bad ? 1.0 : 0.0;
        }
        return clamp01((x - good) / (bad - good));
    }

    public static double expectedSeatdays(Conf conf, double seats, int start, int end, int from, int to) {
        long lo = Math.max(from, start);
        long hi = Math.min((long) to, (long) end - 1);
        if (hi < lo || seats <= 0.0) {
            return 0.0;
        }
        long a0 = lo - start, a1 = hi - start;
        double sum = 0.0;
        long pieceLo = 0;
        for (int i = 0; i < 5; i++) {
            long pieceHi = i < 4 ? (long) conf.adoptAge[i] - 1 : Long.MAX_VALUE;
            long x0 = Math.max(a0, pieceLo);
            long x1 = Math.min(a1, pieceHi);
            if (x1 >= x0) {
                sum += (double) (x1 - x0 + 1) * conf.adoptTarget[i];
            }
            if (i < 4) {
                pieceLo = conf.adoptAge[i];
            }
        }
        return seats * sum;
    }

    public static Sig shelf(Conf conf, double exp, double act, double entitled, double aged, int snapAge) {
        if (entitled < conf.shelfMinSeats || aged < conf.shelfAgedShare * entitled || snapAge < 0
                || snapAge > conf.snapshotGapDays || exp <= 0.0) {
            return Sig.none();
        }
        double gap = (exp - act) / exp;
        if (gap < 0.0) {
            gap = 0.0;
        }
        return Sig.of(gap, ramp(gap, conf.shelfGood, conf.shelfBad));
    }

    public static double oversellFactor(Conf conf, double uPre) {
        return ramp(uPre, conf.oversellUtilGood, conf.oversellUtilBad);
    }

    public static Sig oversell(Conf conf, double sumO, double sumSeats, int deals) {
        if (deals == 0 || sumSeats <= 0.0) {
            return Sig.none();
        }
        double v = sumO / sumSeats;
        return Sig.of(v, ramp(v, conf.oversellGood, conf.oversellBad));
    }

    public static Sig commitGap(Conf conf, double k, double cum, double rr, int t0, int t1, int t) {
        int term = t1 - t0;
        int elapsed = t - t0 + 1;
        double minElapsed = conf.commitMinElapsedShare * term;
        if (minElapsed < conf.commitMinElapsedDays) {
            minElapsed = conf.commitMinElapsedDays;
        }
        if (k <= 0.0 || term <= 0 || t >= t1 || elapsed < minElapsed) {
            return Sig.none();
        }
        double pEnd = cum + rr * (double) (t1 - 1 - t);
        double sf = (k - pEnd) / k;
        if (sf < 0.0) {
            sf = 0.0;
        }
        return Sig.of(sf, ramp(sf, conf.gapGood, conf.gapBad));
    }

    public static Sig oversize(Conf conf, double k, int termDays, double b0) {
        if (!(b0 > 0.0) || termDays <= 0 || k <= 0.0) {
            return Sig.none();
        }
        double ratio = (k / termDays) / b0;
        return Sig.of(ratio, ramp(ratio, conf.oversizeGood, conf.oversizeBad));
    }
}
