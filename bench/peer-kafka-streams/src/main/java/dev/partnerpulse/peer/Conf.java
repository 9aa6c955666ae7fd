package dev.partnerpulse.peer;

/**
 * The part of partnerpulse's struct pp_model_conf (processors/model/model.h)
 * that the customers stage reads, with pp_model_conf_defaults' values.
 * The peer runs with the defaults; allowed lateness is configurable because
 * the runtime's processing.allowed_lateness is.
 */
public final class Conf {
    public long allowedLatenessMs = 24L * 3_600_000L;
    public int dedupHorizonDays = 7;
    public int stateDays = 128;
    public int adoptShortDays = 30, adoptLongDays = 90;
    public int loadShortDays = 14, loadLongDays = 30;
    public int ratioShortDays = 30, ratioLongDays = 90;
    public int pushShortDays = 180, pushLongDays = 365;

    public double shelfGood = 0.20, shelfBad = 0.80;
    public int shelfMinSeats = 10;
    public int shelfAgedDays = 60;
    public double shelfAgedShare = 0.5;
    public int snapshotGapDays = 14;
    public int[] adoptAge = {30, 60, 180, 270};
    public double[] adoptTarget = {0.0, 0.25, 0.50, 0.65, 0.75};

    public double oversellUtilGood = 0.80, oversellUtilBad = 0.40;
    public double oversellGood = 0.10, oversellBad = 0.50;
    public int oversellMinPreSeats = 10;

    public double gapGood = 0.10, gapBad = 0.40;
    public double oversizeGood = 1.25, oversizeBad = 2.0;
    public int commitMinElapsedDays = 45;
    public double commitMinElapsedShare = 0.15;
    public int oversizePreDays = 90;

    public int qeWindowDays = 14;

    public double[] sevWeight = {8.0, 4.0, 2.0, 1.0};
    public int onboardingDays = 90;
    public int matureDays = 365;
    public int csatPositiveMin = 4;
    public int creditMode = 2;
    public int reopenDays = 30;

    /** history_span(): the oldest day back the evaluation reads. */
    public int span() {
        int s = Math.max(adoptLongDays, ratioLongDays);
        s = Math.max(s, Math.max(loadLongDays, adoptShortDays));
        s = Math.max(s, Math.max(loadShortDays, ratioShortDays));
        return Math.max(s, oversizePreDays);
    }
}
