package dev.partnerpulse.peer;

import java.nio.charset.StandardCharsets;
import java.time.LocalDate;

/**
 * Day arithmetic and the id hash, exactly as processors/ptime.c,
 * processors/model/signals.c (quarters, months) and processors/idmap.c
 * (FNV-1a 64 over the UTF-8 bytes) compute them: the model's results
 * depend on these bit for bit.
 */
public final class PpTime {
    public static final long MS_PER_DAY = 86_400_000L;
    public static final int NO_DAY = Integer.MIN_VALUE; /* PP_NO_DAY */

    private PpTime() {}

    public static int dayFromMs(long ms) {
        return (int) Math.floorDiv(ms, MS_PER_DAY);
    }

    public static long dayToMs(int day) {
        return day * MS_PER_DAY;
    }

    /** year*4 + quarter (0..3), fiscal year = calendar year. */
    public static int quarterOf(int day) {
        LocalDate d = LocalDate.ofEpochDay(day);
        return d.getYear() * 4 + (d.getMonthValue() - 1) / 3;
    }

    public static int quarterFirstDay(int quarter) {
        int y = Math.floorDiv(quarter, 4);
        int q = quarter - y * 4;
        return (int) LocalDate.of(y, q * 3 + 1, 1).toEpochDay();
    }

    public static int quarterEndDay(int day) {
        return quarterFirstDay(quarterOf(day) + 1) - 1;
    }

    public static boolean isQuarterEnd(Conf conf, int day) {
        return quarterEndDay(day) - day < conf.qeWindowDays;
    }

    /** Adds months clamping the day of month (Jan 31 + 1 = Feb 28), like pp_add_months. */
    public static int addMonths(int day, int months) {
        return (int) LocalDate.ofEpochDay(day).plusMonths(months).toEpochDay();
    }

    /** FNV-1a 64 of the UTF-8 bytes (pp_hash_str). */
    public static long hashStr(String s) {
        long h = 0xcbf29ce484222325L;
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            h ^= (b & 0xff);
            h *= 0x100000001b3L;
        }
        return h;
    }

    public static String format(int day) {
        return LocalDate.ofEpochDay(day).toString();
    }
}
