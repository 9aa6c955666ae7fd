package dev.partnerpulse.peer;

/**
 * One decoded, validated input event: the Java mirror of partnerpulse's
 * struct pp_event (processors/event.h). Plain mutable fields, like the C
 * struct, so the port of the model reads line by line against model.c.
 * Enums are kept as the C enum ordinals (Avro symbol index order).
 */
public final class Event {
    public static final int DEAL = 1, CONSUMPTION = 2, SUPPORT = 3;
    /** Not an input event: a source task's watermark tick (see SourceTicks). */
    public static final int TICK = 9;

    /* deal event types (enum pp_deal_event) */
    public static final int REGISTERED = 0, CLOSED_WON = 1, CLOSED_LOST = 2, AMENDED = 3,
            CANCELLED = 4, CREDITED = 5;
    /* deal kinds (enum pp_deal_kind) */
    public static final int KIND_NEW = 0, KIND_ADDON = 1, KIND_RENEWAL = 2, KIND_COMMIT = 3;
    /* support event types (enum pp_support_event) */
    public static final int OPENED = 0, ESCALATED = 1, RESOLVED = 2, REOPENED = 3, CSAT = 4;

    public int type;
    public String eventId;
    public long occurredAtMs;
    public String customerId;
    public String productId; /* support: null when absent */

    /* deal */
    public String dealId;
    public int eventType; /* deal or support event type */
    public String partnerId;
    public int kind;
    public int closeDate;
    public boolean hasStartDate;
    public int startDate;
    public int termMonths;
    public int seats;
    public long amount;
    public boolean hasListAmount;
    public long listAmount;
    public boolean hasDiscountPct;
    public double discountPct;
    public String currency;
    public boolean hasCommitUnits;
    public long commitUnits;
    public boolean hasQuarterEnd;
    public boolean quarterEnd;
    public String fiscalQuarter;

    /* licence consumption */
    public int asOf;
    public int licensesEntitled;
    public int licensesActive;
    public boolean hasConsumptionUnits;
    public double consumptionUnits;

    /* support */
    public String ticketId;
    public int severity;
    public boolean hasCsatScore;
    public int csatScore;
    public boolean hasVendorIncidentId;

    /** The schema id this event was read with (the local catalog's or a registry's). */
    public int schemaId;

    /** The record value it was decoded from (forwarded unchanged through the repartition topic). */
    public byte[] raw;

    /* tick: one entry per input partition of the source task that sent it */
    public int[] tickIds;
    public long[] tickTimes;
    public boolean[] tickIdle;

    /** Tick wire form: magic 1 (Confluent's is 0), count, then (source id int, stream time long, idle byte). */
    public static Event tick(int[] ids, long[] times, boolean[] idle) {
        Event t = new Event();
        t.type = TICK;
        t.tickIds = ids;
        t.tickTimes = times;
        t.tickIdle = idle;
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(5 + 13 * ids.length);
        b.put((byte) 1).putInt(ids.length);
        for (int i = 0; i < ids.length; i++) {
            b.putInt(ids[i]).putLong(times[i]).put((byte) (idle[i] ? 1 : 0));
        }
        t.raw = b.array();
        return t;
    }

    static boolean isTick(byte[] raw) {
        return raw != null && raw.length >= 5 && raw[0] == 1
                && raw.length == 5 + 13 * java.nio.ByteBuffer.wrap(raw, 1, 4).getInt();
    }

    static Event readTick(byte[] raw) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(raw);
        b.get();
        int n = b.getInt();
        int[] ids = new int[n];
        long[] times = new long[n];
        boolean[] idle = new boolean[n];
        for (int i = 0; i < n; i++) {
            ids[i] = b.getInt();
            times[i] = b.getLong();
            idle[i] = b.get() != 0;
        }
        return tick(ids, times, idle);
    }
}
