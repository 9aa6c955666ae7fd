package dev.partnerpulse.peer;

import java.util.ArrayList;
import java.util.List;

import dev.partnerpulse.peer.CustomerModel.Spans;
import dev.partnerpulse.peer.CustomerState.Tranche;
import dev.partnerpulse.peer.CustomerState.Wsum;

/**
 * The customer assessments of a closed day: customer_facts(), pxc_facts()
 * and assess_customer() of processors/model/cstage.c. One
 * {@link Xrec.Assess} per partner link with a visible deal, in link order,
 * carrying every customer-side fact and the customer's own window sums; what
 * needs cohort baselines or partner state is the partners sub-topology's.
 */
public final class Assessor {
    private final CustomerModel m;
    private final Conf cf;

    public Assessor(CustomerModel m) {
        this.m = m;
        this.cf = m.conf;
    }

    /** assess_customer: the assessments of one customer on `day`. */
    public List<Xrec.Assess> assess(String customerId, CustomerState c, int day) {
        List<Xrec.Assess> out = new ArrayList<>(c.links.size());
        if (c.links.isEmpty()) {
            return out;
        }
        Spans sp = m.trancheSpans(c, day);
        double[] entAcv = new double[2];
        Xrec.Assess tmpl = new Xrec.Assess();
        customerFacts(c, day, sp, entAcv, tmpl);
        for (int li = 0; li < c.links.size(); li++) {
            Xrec.Assess x = copyCustomerPart(tmpl);
            if (!pxcFacts(c, c.links.get(li), day, sp, entAcv[0], entAcv[1], x)) {
                continue;
            }
            x.customerId = customerId;
            x.partnerId = c.links.get(li);
            x.link = li;
            out.add(x);
        }
        return out;
    }

    private static Xrec.Assess copyCustomerPart(Xrec.Assess t) {
        Xrec.Assess x = new Xrec.Assess();
        x.productId = t.productId;
        x.band = t.band;
        x.hasSeats = t.hasSeats;
        x.shelf = t.shelf;
        x.expUtil0 = t.expUtil0;
        x.loadWdays = t.loadWdays;
        x.win = t.win;
        x.bandOwn = t.bandOwn;
        x.matureOwn = t.matureOwn;
        return x;
    }

    private void customerFacts(CustomerState c, int day, Spans sp, double[] entAcv, Xrec.Assess x) {
        double aged = 0.0, entitled = 0.0, totalAcv = 0.0;
        boolean hasSeats = false;
        for (int i = 0; i < c.tr.size(); i++) {
            Tranche t = c.tr.get(i);
            if (!sp.visible[i]) {
                continue;
            }
            if (CustomerModel.contractActive(t, day)) {
                totalAcv += t.acv;
            }
            if (sp.counts[i] && sp.activeOn(i, day)) {
                int seats = CustomerModel.seatsOn(t, day);
                hasSeats = true;
                entitled += seats;
                if (day - sp.start[i] >= cf.shelfAgedDays) {
                    aged += seats;
                }
            }
        }
        x.hasSeats = hasSeats;
        int snapAge = c.lastSnapDay != PpTime.NO_DAY ? day - c.lastSnapDay : -1;
        int[] wa = {m.wAdoptS, m.wAdoptL};
        int[] wl = {m.wLoadS, m.wLoadL};
        for (int k = 0; k < 2; k++) {
            /* expected and actual seat-days over the same days: those since the first snapshot */
            int from = day - m.win[wa[k]] + 1;
            if (c.firstSnapDay != PpTime.NO_DAY && c.firstSnapDay > from) {
                from = c.firstSnapDay;
            }
            double exp = 0.0, ent = 0.0;
            for (int i = 0; i < c.tr.size(); i++) {
                if (sp.counts[i]) {
                    exp += m.tranceSeatdays(c.tr.get(i), sp, i, from, day, true);
                    ent += m.tranceSeatdays(c.tr.get(i), sp, i, from, day, false);
                }
            }
            double act = (double) c.sums[wa[k]].active;
            x.shelf[k] = Xrec.Sig.of(Signals.shelf(cf, exp, act, entitled, aged, snapAge));
            if (k == 0) {
                x.expUtil0 = ent > 0.0 ? exp / ent : Double.NaN;
            }
            int wdays = m.win[wl[k]];
            if (c.firstSnapDay != PpTime.NO_DAY && day - c.firstSnapDay + 1 < wdays) {
                wdays = day - c.firstSnapDay + 1;
            }
            x.loadWdays[k] = wdays;
        }
        int[] ws = {m.wLoadS, m.wLoadL, m.wRatioS, m.wRatioL};
        boolean pooled = c.product != null && c.band >= 0;
        for (int i = 0; i < 4; i++) {
            x.win[i] = ownSince(c, ws[i], day, PpTime.NO_DAY);
            x.bandOwn[i] = pooled ? ownSince(c, ws[i], day, c.bandSince) : new Xrec.Own();
            x.matureOwn[i] = pooled && c.band >= 1 ? ownSince(c, ws[i], day, c.matureSince) : new Xrec.Own();
        }
        x.band = pooled ? c.band : -1;
        x.productId = pooled ? c.product : "";
        entAcv[0] = entitled;
        entAcv[1] = totalAcv;
    }

    /** own_since(): the customer's sums over window w from `since` on. */
    private Xrec.Own ownSince(CustomerState c, int w, int day, int since) {
        Xrec.Own out = new Xrec.Own();
        int from = day - m.win[w] + 1;
        if (since == PpTime.NO_DAY || since <= from) {
            Wsum s = c.sums[w];
            out.active = s.active;
            out.wt = s.wt;
            out.opened = s.opened;
            out.esc = s.esc;
            out.resp = s.resp;
            out.pos = s.pos;
            return out;
        }
        for (int d = since; d <= day; d++) {
            int s = m.slotOf(d);
            out.active += c.active[s] == CustomerState.NO_ACTIVE ? 0 : c.active[s];
            out.wt += c.wt[s];
            out.opened += c.cnt[s * 4];
            out.esc += c.cnt[s * 4 + 1];
            out.resp += c.cnt[s * 4 + 2];
            out.pos += c.cnt[s * 4 + 3];
        }
        return out;
    }

    /** pxc_facts(): false when no deal of the partner is visible (no assessment). */
    private boolean pxcFacts(CustomerState c, String partner, int day, Spans sp, double entitled, double totalAcv,
            Xrec.Assess x) {
        int from180 = day - cf.pushShortDays;
        int from365 = day - cf.pushLongDays;
        double s365 = 0.0, acv180 = 0.0, o = 0.0, oseats = 0.0, partnerAcv = 0.0;
        int odeals = 0;
        boolean anyVisible = false, touched = false;
        Signals.Sig[] gap = {Signals.Sig.none(), Signals.Sig.none()};
        Signals.Sig oversize = Signals.Sig.none();
        int[] wa = {m.wAdoptS, m.wAdoptL};
        x.nQedeal = 0;
        for (int i = 0; i < c.tr.size(); i++) {
            Tranche t = c.tr.get(i);
            if (!sp.visible[i] || !partner.equals(t.partner)) {
                continue;
            }
            anyVisible = true;
            boolean active = sp.activeOn(i, day);
            if (t.close > from365) {
                touched = true;
            }
            if (CustomerModel.contractActive(t, day)) {
                partnerAcv += t.acv;
                if (t.close > from180) {
                    acv180 += t.acv;
                }
            }
            if (active && t.close > from365 && t.kind != CustomerState.TR_COMMIT) {
                s365 += CustomerModel.seatsOn(t, day);
            }
            if (t.kind == CustomerState.TR_ADDON && t.close > from180 && t.uPre >= 0.0f) {
                o += t.seats * Signals.oversellFactor(cf, t.uPre);
                oseats += t.seats;
                odeals++;
            }
            if (t.close > from180 && !Float.isNaN(t.discount) && x.nQedeal < Xrec.MAX_QEDEAL) {
                x.qedealQe[x.nQedeal] = t.qe;
                x.qedealDisc[x.nQedeal] = t.discount;
                x.qedealClose[x.nQedeal] = t.close;
                x.nQedeal++;
            }
            if (t.kind == CustomerState.TR_COMMIT && active) {
                Signals.Sig ov = Signals.oversize(cf, t.commitK, sp.end[i] - t.start, t.b0);
                if (ov.present && (!oversize.present || ov.risk > oversize.risk)) {
                    oversize = ov;
                }
                if (!Double.isNaN(t.commitBase)) {
                    double cum = c.consCum - t.commitBase;
                    for (int k = 0; k < 2; k++) {
                        double rr = c.sums[wa[k]].cons / (double) m.win[wa[k]];
                        Signals.Sig g = Signals.commitGap(cf, t.commitK, cum, rr, t.start, sp.end[i], day);
                        if (g.present && (!gap[k].present || g.risk > gap[k].risk)) {
                            gap[k] = g;
                        }
                    }
                }
            }
        }
        if (!anyVisible) {
            return false;
        }
        x.touched = touched;
        x.s365 = entitled > 0.0 ? s365 / entitled : 0.0;
        x.s180 = totalAcv > 0.0 ? acv180 / totalAcv : 0.0;
        x.partnerAcv = partnerAcv;
        x.oversell = Xrec.Sig.of(Signals.oversell(cf, o, oseats, odeals));
        x.oversellO = o;
        x.oversellSeats = oseats;
        x.oversellDeals = odeals;
        x.gap[0] = Xrec.Sig.of(gap[0]);
        x.gap[1] = Xrec.Sig.of(gap[1]);
        x.oversize = Xrec.Sig.of(oversize);
        return true;
    }
}
