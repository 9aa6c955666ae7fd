package dev.partnerpulse.peer;

import java.util.Comparator;
import java.util.Map;

import dev.partnerpulse.peer.CustomerState.Tranche;
import dev.partnerpulse.peer.CustomerState.Wsum;

/**
 * The customer side of partnerpulse's model (processors/model/model.c),
 * ported function by function so that every number comes out bit for bit
 * the same: applying events to one customer's state, and finalizing a
 * closed day (window sums, cohort partial, band tracking). The per-day facts
 * that go into the assessment are computed by {@link Assessor}.
 *
 * Function names follow model.c (apply_closed_won -> applyClosedWon, ...),
 * so the two can be read side by side. What model.c keeps per partner (the
 * ledger, reversals) belongs to the partners sub-topology and is not here.
 */
public final class CustomerModel {
    public static final int NO_DAY = PpTime.NO_DAY;

    public final Conf conf;
    public final int width;
    public final int span;
    public final int[] win;     /* the distinct windows, in add_window order */
    public final int wAdoptS, wAdoptL, wLoadS, wLoadL, wRatioS, wRatioL;

    /* counters (struct pp_model_stats, the part this stage can see) */
    public long trancheOverflow, linkOverflow, ignored;

    public CustomerModel(Conf conf) {
        this.conf = conf;
        this.width = conf.stateDays;
        this.span = conf.span();
        int[] w = new int[6];
        int n = 0;
        int[] uses = {conf.adoptShortDays, conf.adoptLongDays, conf.loadShortDays, conf.loadLongDays,
                conf.ratioShortDays, conf.ratioLongDays};
        int[] idx = new int[6];
        for (int u = 0; u < 6; u++) {
            int found = -1;
            for (int i = 0; i < n; i++) {
                if (w[i] == uses[u]) {
                    found = i;
                }
            }
            if (found < 0) {
                w[n] = uses[u];
                found = n++;
            }
            idx[u] = found;
        }
        this.win = java.util.Arrays.copyOf(w, n);
        wAdoptS = idx[0];
        wAdoptL = idx[1];
        wLoadS = idx[2];
        wLoadL = idx[3];
        wRatioS = idx[4];
        wRatioL = idx[5];
    }

    public int nwin() {
        return win.length;
    }

    public CustomerState newCustomer() {
        return new CustomerState(win.length, width);
    }

    public int slotOf(int day) {
        return Math.floorMod(day, width);
    }

    /* ---- applying events --------------------------------------------- */

    static double dealAcv(long amountMinor, int termMonths) {
        double amount = (double) amountMinor / 100.0;
        if (termMonths > 12) {
            amount *= 12.0 / (double) termMonths;
        }
        return amount;
    }

    private static final Comparator<Tranche> BY_CLOSE_DEAL = (x, y) -> {
        if (x.close != y.close) {
            return x.close < y.close ? -1 : 1;
        }
        return Long.compareUnsigned(x.deal, y.deal);
    };

    static Tranche trancheFind(CustomerState c, long deal) {
        for (Tranche t : c.tr) {
            if (t.deal == deal) {
                return t;
            }
        }
        return null;
    }

    /** A new tranche slot, evicting the longest-ended one when full (tranche_add). */
    Tranche trancheAdd(CustomerState c, long deal, int today) {
        Tranche t = null;
        if (c.tr.size() < CustomerState.MAX_TRANCHES) {
            t = new Tranche();
            c.tr.add(t);
        } else {
            int oldestEnd = today;
            int at = -1;
            for (int i = 0; i < c.tr.size(); i++) {
                Tranche x = c.tr.get(i);
                if (x.partner != null && x.end < oldestEnd - conf.pushLongDays) {
                    oldestEnd = x.end;
                    at = i;
                }
            }
            if (at < 0) {
                trancheOverflow++;
                return null;
            }
            t = new Tranche();
            c.tr.set(at, t);
        }
        t.deal = deal;
        return t;
    }

    void linkEnsure(CustomerState c, String partner) {
        if (c.links.contains(partner)) {
            return;
        }
        if (c.links.size() == CustomerState.MAX_LINKS) {
            linkOverflow++;
            return;
        }
        c.links.add(partner);
    }

    /** The event's product, or null: product_intern's -1 for "". */
    static String product(String id) {
        return id == null || id.isEmpty() ? null : id;
    }

    /** Where DEAL and REVERSAL exchange records go (key = partner id). */
    public interface Emitter {
        void emit(String key, byte[] value);
    }

    void applyClosedWon(CustomerState c, Event d, int day, int source, Emitter out) {
        long deal = PpTime.hashStr(d.dealId);
        int term = d.termMonths >= 1 ? d.termMonths : 12;
        int start = d.hasStartDate ? d.startDate : d.closeDate;
        double discount = Double.NaN;
        if (d.hasDiscountPct) {
            discount = d.discountPct;
        } else if (d.hasListAmount && d.listAmount > 0) {
            discount = 1.0 - (double) d.amount / (double) d.listAmount;
        }
        boolean qe = d.hasQuarterEnd ? d.quarterEnd : PpTime.isQuarterEnd(conf, d.closeDate);
        String product = product(d.productId);
        if (c.product == null && d.kind != Event.KIND_COMMIT) {
            c.product = product;
        }
        double acv = dealAcv(d.amount, term);
        int known = Math.max(d.closeDate, day);
        /* the partner's ledger entry goes to the partners side */
        out.emit(d.partnerId, Xrec.deal(source, day, d.partnerId, d.customerId, PpTime.hashStr(d.dealId), acv,
                (float) discount, d.closeDate, known, qe, d.kind));

        Tranche t = trancheFind(c, deal);
        if (t == null) {
            t = trancheAdd(c, deal, known);
            if (t == null) {
                return;
            }
        }
        /* the fields tranche_add resets (memset + defaults) that apply_closed_won
         * does not overwrite keep their values on a corrected closed_won */
        t.partner = d.partnerId;
        t.acv = acv;
        t.discount = (float) discount;
        t.close = d.closeDate;
        t.known = known;
        t.start = start;
        t.end = PpTime.addMonths(start, term);
        t.seats = d.seats > 0 ? d.seats : 0;
        t.qe = qe;
        switch (d.kind) {
        case Event.KIND_ADDON:
            t.kind = CustomerState.TR_ADDON;
            t.uPre = Float.NaN;
            break;
        case Event.KIND_RENEWAL:
            t.kind = CustomerState.TR_RENEWAL;
            break;
        case Event.KIND_COMMIT:
            t.kind = CustomerState.TR_COMMIT;
            t.seats = 0;
            t.commitK = d.hasCommitUnits ? (double) d.commitUnits : (double) d.amount / 100.0;
            t.b0 = Double.NaN;
            break;
        default:
            t.kind = CustomerState.TR_SEATS;
            break;
        }
        c.tr.sort(BY_CLOSE_DEAL);
        linkEnsure(c, d.partnerId);
    }

    /** Returns true when it was a reversal with money (first_reversal_day moves). */
    boolean applyReversal(CustomerState c, Event d, int day, int source, Emitter out) {
        boolean negative = d.eventType != Event.AMENDED || d.seats < 0 || d.amount < 0;
        if (!negative) {
            ignored++;
            return false;
        }
        long deal = PpTime.hashStr(d.dealId);
        int term = d.termMonths >= 1 ? d.termMonths : 12;
        double acv = 0.0;
        if (d.amount != 0) {
            acv = dealAcv(d.amount < 0 ? -d.amount : d.amount, term);
        } else if (d.eventType == Event.CANCELLED) {
            acv = Double.NaN;
        }
        boolean money = acv != 0.0; /* NaN counts, as in C */
        /* always forwarded: even without an amount it registers the partner */
        out.emit(d.partnerId, Xrec.reversal(source, day, d.partnerId, deal, acv));
        if (d.eventType == Event.CREDITED && acv > 0.0) {
            Tranche t = trancheFind(c, deal);
            if (t == null) {
                t = trancheAdd(c, deal, day);
            }
            if (t != null) {
                t.creditAcv += acv;
                t.creditSeats = conf.creditMode != 0;
                t.creditDay = t.creditDay == NO_DAY ? day : Math.min(t.creditDay, day);
            }
            return money;
        }
        int cut = 0;
        if (d.eventType == Event.CANCELLED) {
            cut = CustomerState.CUT_ALL;
        } else if (d.eventType == Event.AMENDED && d.seats < 0) {
            cut = -d.seats;
        }
        if (cut == 0) {
            return money;
        }
        Tranche t = trancheFind(c, deal);
        if (t == null) {
            t = trancheAdd(c, deal, day);
            if (t == null) {
                return money;
            }
        }
        if (cut == CustomerState.CUT_ALL || t.cutSeats == CustomerState.CUT_ALL) {
            t.cutSeats = CustomerState.CUT_ALL;
        } else {
            t.cutSeats += cut;
        }
        t.cutDay = t.cutDay == NO_DAY ? day : Math.min(t.cutDay, day);
        return money;
    }

    static void entRemember(CustomerState c, int day, int entitled) {
        for (int i = 0; i < 4; i++) {
            if (c.entDay[i] == day) {
                if (Integer.compareUnsigned(entitled, c.entVal[i]) > 0) {
                    c.entVal[i] = entitled;
                }
                return;
            }
        }
        int oldest = 0;
        for (int i = 1; i < 4; i++) {
            if (c.entDay[i] == NO_DAY || (c.entDay[oldest] != NO_DAY && c.entDay[i] < c.entDay[oldest])) {
                oldest = i;
            }
        }
        if (c.entDay[oldest] == NO_DAY || c.entDay[oldest] < day) {
            c.entDay[oldest] = day;
            c.entVal[oldest] = entitled;
        }
    }

    void applyConsumption(CustomerState c, Event cs, int day) {
        if (c.product == null) {
            c.product = product(cs.productId);
        }
        int s = slotOf(day);
        int active = cs.licensesActive > 0 ? cs.licensesActive : 0;
        if (c.active[s] == CustomerState.NO_ACTIVE || active > c.active[s]) {
            c.active[s] = active;
        }
        entRemember(c, day, cs.licensesEntitled > 0 ? cs.licensesEntitled : 0);
        if (cs.hasConsumptionUnits && cs.consumptionUnits > 0.0) {
            if (c.cons == null) {
                c.cons = new float[width];
            }
            c.cons[s] += (float) cs.consumptionUnits;
            if (c.firstConsDay == NO_DAY || day < c.firstConsDay) {
                c.firstConsDay = day;
            }
        }
    }

    private static int inc8(int v) {
        return v == 255 ? v : v + 1;
    }

    void applySupport(CustomerState c, Event sp, int day) {
        if (c.product == null && sp.productId != null) {
            c.product = product(sp.productId);
        }
        int s = slotOf(day);
        int b = s * 4;
        switch (sp.eventType) {
        case Event.OPENED:
            c.cnt[b] = inc8(c.cnt[b]);
            if (!sp.hasVendorIncidentId) {
                int sev = sp.severity >= 1 && sp.severity <= 4 ? sp.severity : 3;
                int w = (int) Math.round(conf.sevWeight[sev - 1]);
                int v = c.wt[s] + w;
                c.wt[s] = Math.min(v, 65535);
            }
            break;
        case Event.ESCALATED:
            c.cnt[b + 1] = inc8(c.cnt[b + 1]);
            break;
        case Event.CSAT:
            if (sp.hasCsatScore) {
                c.cnt[b + 2] = inc8(c.cnt[b + 2]);
                if (sp.csatScore >= conf.csatPositiveMin) {
                    c.cnt[b + 3] = inc8(c.cnt[b + 3]);
                }
            }
            break;
        default:
            ignored++;
            break;
        }
    }

    /* ---- tranches on a day ------------------------------------------- */

    /** struct spans: which tranches hold seats on a day and over which days. */
    public static final class Spans {
        final int[] start, end;
        final boolean[] visible, counts;

        Spans(int n) {
            start = new int[n];
            end = new int[n];
            visible = new boolean[n];
            counts = new boolean[n];
        }

        boolean activeOn(int i, int day) {
            return start[i] <= day && day < end[i];
        }
    }

    static int creditBack(Tranche t) {
        double share = t.creditAcv / t.acv;
        return (int) lround((share > 1.0 ? 1.0 : share) * t.seats);
    }

    /** C lround: half away from zero. */
    static long lround(double x) {
        return x < 0 ? -Math.round(-x) : Math.round(x);
    }

    static int seatsOnF(Tranche t, int day, double f) {
        int seats = t.seats;
        if (t.cutDay != NO_DAY && day >= t.cutDay) {
            if (t.cutSeats == CustomerState.CUT_ALL) {
                return 0;
            }
            seats = seats > t.cutSeats ? seats - t.cutSeats : 0;
        }
        if (t.creditSeats && f > 0.0 && t.creditDay != NO_DAY && day >= t.creditDay && t.acv > 0.0) {
            int back = (int) lround(creditBack(t) * f);
            seats = seats > back ? seats - back : 0;
        }
        return seats;
    }

    static int seatsOn(Tranche t, int day) {
        return seatsOnF(t, day, t.creditF);
    }

    Spans trancheSpans(CustomerState c, int day) {
        int n = c.tr.size();
        Spans sp = new Spans(n);
        for (int i = 0; i < n; i++) {
            Tranche t = c.tr.get(i);
            boolean vis = t.partner != null && t.known != NO_DAY && t.known <= day;
            sp.visible[i] = vis;
            sp.start[i] = t.start;
            sp.end[i] = t.end;
            if (t.cutSeats == CustomerState.CUT_ALL && t.cutDay != NO_DAY && t.cutDay < sp.end[i]) {
                sp.end[i] = t.cutDay;
            }
            sp.counts[i] = vis && (t.kind == CustomerState.TR_SEATS || t.kind == CustomerState.TR_ADDON);
        }
        for (int i = 0; i < n; i++) {
            Tranche r = c.tr.get(i);
            if (!sp.visible[i] || r.kind != CustomerState.TR_RENEWAL) {
                continue;
            }
            boolean continued = false;
            for (int j = 0; j < n; j++) {
                if (sp.counts[j] && c.tr.get(j).kind != CustomerState.TR_RENEWAL
                        && Math.abs(r.start - sp.end[j]) <= 90) {
                    sp.end[j] = Math.max(sp.end[j], sp.end[i]);
                    continued = true;
                }
            }
            if (!continued) {
                sp.counts[i] = true;
                sp.start[i] = r.start - conf.matureDays;
            }
        }
        return sp;
    }

    static boolean contractActive(Tranche t, int day) {
        int end = t.end;
        if (t.cutSeats == CustomerState.CUT_ALL && t.cutDay != NO_DAY && t.cutDay < end) {
            end = t.cutDay;
        }
        return t.start <= day && day < end;
    }

    double tranceSeatdays(Tranche t, Spans sp, int i, int from, int to, boolean expected) {
        int start = sp.start[i], end = sp.end[i];
        int[] cuts = {from, NO_DAY, NO_DAY};
        int ncuts = 1;
        int c1 = t.cutDay != NO_DAY && t.cutSeats != CustomerState.CUT_ALL ? t.cutDay : NO_DAY;
        int c2 = t.creditDay;
        if (c1 != NO_DAY && c2 != NO_DAY && c2 < c1) {
            int x = c1;
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
            int lo = cuts[part];
            int hi = part + 1 < ncuts ? cuts[part + 1] - 1 : to;
            double seats = seatsOn(t, lo);
            if (hi < lo) {
                continue;
            }
            if (expected) {
                total += Signals.expectedSeatdays(conf, seats, start, end, lo, hi);
            } else {
                int a = Math.max(lo, start), b = Math.min(hi, end - 1);
                if (b >= a) {
                    total += seats * (double) (b - a + 1);
                }
            }
        }
        return total;
    }

    /* ---- finalize a customer's day ----------------------------------- */

    float upreOf(CustomerState c, Spans sp, int i, int day) {
        Tranche t = c.tr.get(i);
        int pre = t.close - 1;
        if ((long) pre < (long) day - span || c.firstSnapDay == NO_DAY || c.firstSnapDay > pre) {
            return -1.0f;
        }
        int a = c.active[slotOf(pre)];
        if (a == CustomerState.NO_ACTIVE) {
            return -1.0f;
        }
        double ePre = 0.0;
        for (int j = 0; j < c.tr.size(); j++) {
            if (j != i && sp.counts[j] && sp.activeOn(j, pre) && c.tr.get(j).close <= pre) {
                ePre += seatsOn(c.tr.get(j), pre);
            }
        }
        if (ePre < conf.oversellMinPreSeats) {
            return -1.0f;
        }
        return (float) ((double) a / ePre);
    }

    double b0Of(CustomerState c, Tranche t, int day) {
        int from = t.close - conf.oversizePreDays;
        if (c.cons == null || c.firstConsDay == NO_DAY || c.firstConsDay > from || (long) from < (long) day - span) {
            return -1.0;
        }
        double sum = 0.0;
        for (int d = from; d < t.close; d++) {
            sum += c.cons[slotOf(d)];
        }
        double b0 = sum / (double) conf.oversizePreDays;
        return b0 > 0.0 ? b0 : -1.0;
    }

    void creditShares(CustomerState c, Spans sp, int day) {
        double gross = 0.0, net = 0.0;
        boolean any = false;
        for (int i = 0; i < c.tr.size(); i++) {
            Tranche t = c.tr.get(i);
            if (!sp.counts[i] || !sp.activeOn(i, day)) {
                continue;
            }
            gross += seatsOnF(t, day, 0.0);
            net += seatsOnF(t, day, 1.0);
            any = any || (t.creditSeats && t.creditDay != NO_DAY && t.creditDay <= day);
        }
        double f = 0.0;
        if (any && net < gross) {
            if (conf.creditMode == 1) {
                f = 1.0;
            } else if (conf.creditMode == 2 && c.entNow != -1) {
                f = (gross - (double) c.entNow) / (gross - net);
                f = f < 0.0 ? 0.0 : (f > 1.0 ? 1.0 : f);
            }
        }
        for (Tranche t : c.tr) {
            t.creditF = (float) f;
        }
    }

    /** Cohort day partial of one (product, band): struct cpart. */
    public static final class Cpart {
        public long wt, active, opened, esc, resp, pos; /* integers: exact when summed across stages */
        public int customers;
    }

    /** finalize_customer; adds the customer's day to partials[(product, band)]. */
    void finalizeCustomer(CustomerState c, int day, Map<String, Cpart[]> partials) {
        int s = slotOf(day);
        if (c.active[s] == CustomerState.NO_ACTIVE) {
            c.active[s] = c.lastSnapDay != NO_DAY ? c.lastActive : 0;
        } else {
            c.lastActive = c.active[s];
            c.lastSnapDay = day;
            if (c.firstSnapDay == NO_DAY) {
                c.firstSnapDay = day;
            }
        }
        int b = s * 4;
        float cons = c.cons != null ? c.cons[s] : 0.0f;
        for (int w = 0; w < win.length; w++) {
            Wsum ws = c.sums[w];
            int os = slotOf(day - win[w]);
            int oldActive = c.active[os] == CustomerState.NO_ACTIVE ? 0 : c.active[os];
            int ob = os * 4;
            ws.active += (long) c.active[s] - oldActive;
            ws.wt += c.wt[s] - c.wt[os];
            ws.opened += c.cnt[b] - c.cnt[ob];
            ws.esc += c.cnt[b + 1] - c.cnt[ob + 1];
            ws.resp += c.cnt[b + 2] - c.cnt[ob + 2];
            ws.pos += c.cnt[b + 3] - c.cnt[ob + 3];
            if (c.cons != null) {
                ws.cons += (double) cons - (double) c.cons[os];
            }
        }
        c.consCum += cons;

        int best = NO_DAY;
        for (int i = 0; i < 4; i++) {
            if (c.entDay[i] != NO_DAY && c.entDay[i] <= day && c.entDay[i] > best) {
                best = c.entDay[i];
                c.entNow = c.entVal[i] & 0xFFFFFFFFL;
            }
        }
        Spans sp = trancheSpans(c, day);
        creditShares(c, sp, day);
        int first = NO_DAY;
        for (int i = 0; i < c.tr.size(); i++) {
            Tranche t = c.tr.get(i);
            if (!sp.visible[i]) {
                continue;
            }
            if (t.kind == CustomerState.TR_ADDON && Float.isNaN(t.uPre)) {
                t.uPre = upreOf(c, sp, i, day);
            }
            if (t.kind == CustomerState.TR_COMMIT) {
                if (Double.isNaN(t.b0)) {
                    t.b0 = b0Of(c, t, day);
                }
                if (Double.isNaN(t.commitBase) && t.start <= day) {
                    double recent = 0.0;
                    int lo = Math.max(t.start, day - span + 1);
                    for (int d = lo; c.cons != null && d <= day; d++) {
                        recent += c.cons[slotOf(d)];
                    }
                    t.commitBase = c.consCum - recent;
                }
            }
            if (sp.counts[i] && sp.activeOn(i, day)) {
                first = first == NO_DAY ? sp.start[i] : Math.min(first, sp.start[i]);
            }
        }
        int was = c.band;
        c.band = -1;
        if (first != NO_DAY) {
            int age = day - first;
            c.band = age < conf.onboardingDays ? 0 : (age < conf.matureDays ? 1 : 2);
        }
        if (c.product == null || c.band < 0) {
            c.bandSince = NO_DAY;
            c.matureSince = NO_DAY;
        } else {
            if (c.band != was || c.bandSince == NO_DAY) {
                c.bandSince = day;
            }
            if (c.band < 1) {
                c.matureSince = NO_DAY;
            } else if (was < 1 || c.matureSince == NO_DAY) {
                c.matureSince = day;
            }
        }
        if (c.product != null && c.band >= 0 && partials != null) {
            Cpart cp = partials.computeIfAbsent(c.product, k -> new Cpart[3])[c.band];
            if (cp == null) {
                cp = new Cpart();
                partials.get(c.product)[c.band] = cp;
            }
            cp.wt += c.wt[s];
            cp.active += c.active[s];
            cp.opened += c.cnt[b];
            cp.esc += c.cnt[b + 1];
            cp.resp += c.cnt[b + 2];
            cp.pos += c.cnt[b + 3];
            cp.customers++;
        }
        int fs = slotOf(day - span);
        c.active[fs] = CustomerState.NO_ACTIVE;
        c.wt[fs] = 0;
        c.cnt[fs * 4] = 0;
        c.cnt[fs * 4 + 1] = 0;
        c.cnt[fs * 4 + 2] = 0;
        c.cnt[fs * 4 + 3] = 0;
        if (c.cons != null) {
            c.cons[fs] = 0.0f;
        }
    }
}
