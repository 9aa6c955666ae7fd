package dev.partnerpulse.peer;

import java.nio.ByteBuffer;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * The customers task: one per partition of the repartition topic (keyed by
 * customer_id), like partnerpulse's struct pp_cstage. Events are applied to
 * the customer's state in the RocksDB store {@value #STORE}. The task's
 * watermark is the minimum over the input partitions' ticks (SourceTicks;
 * the maximum once all are idle), kept in {@value #META}; day D closes once it
 * passes D+1 00:00 + allowed lateness, and each closed day walks every
 * customer of the task in id order (the store's byte order is strcmp order),
 * finalizes its day and forwards one assessment per partner link with a
 * visible deal, then the day's cohort partials and an end-of-day marker --
 * the records and bytes of pp_cstage_advance.
 *
 * Duplicates (same event type and id on the same event day) are remembered
 * in {@value #DEDUP} for dedup_horizon_days after the day is evaluated, as
 * pp_cstage_apply does; events that run ahead are parked in {@value #AHEAD}.
 */
public final class CustomersProcessor implements Processor<String, Event, String, byte[]> {
    public static final String STORE = "customers";
    public static final String DEDUP = "customers-dedup";
    public static final String META = "customers-meta";
    public static final String AHEAD = "customers-ahead";
    private static final String META_KEY = "meta";

    /** Process-wide counters, printed by Main. */
    public static final class Stats {
        public final AtomicLong applied = new AtomicLong(), tooLate = new AtomicLong(),
                duplicates = new AtomicLong(), parked = new AtomicLong(),
                daysEvaluated = new AtomicLong(),
                assessments = new AtomicLong();
    }

    private final CustomerModel model;
    private final Assessor assessor;
    private final Stats stats;
    private ProcessorContext<String, byte[]> ctx;
    private KeyValueStore<String, CustomerState> customers;
    private KeyValueStore<Bytes, byte[]> dedup;
    private KeyValueStore<String, byte[]> metaStore;
    private KeyValueStore<Bytes, byte[]> ahead;
    private final org.apache.kafka.common.serialization.Deserializer<Event> decoder;
    private long parkSeq;
    private final int alignDays;
    private int source;

    /* task meta (pp_model's watermark, min_day, max_day, last_eval, first_reversal_day) */
    private long watermark = Long.MIN_VALUE;
    private int minDay = PpTime.NO_DAY, maxDay = PpTime.NO_DAY, lastEval = PpTime.NO_DAY;
    private int firstReversalDay = PpTime.NO_DAY;
    private int eodSent = PpTime.NO_DAY;
    /* per source task: latest ticked stream time and idle flag (processors/watermark.c) */
    private final long[] srcTime;
    private final boolean[] srcIdle;

    public CustomersProcessor(Conf conf, int sources, Stats stats,
            org.apache.kafka.common.serialization.Deserializer<Event> decoder, int alignDays) {
        this.decoder = decoder;
        this.alignDays = alignDays;
        this.srcTime = new long[sources];
        this.srcIdle = new boolean[sources];
        java.util.Arrays.fill(srcTime, Long.MIN_VALUE);
        this.model = new CustomerModel(conf);
        this.assessor = new Assessor(model);
        this.stats = stats;
    }

    @Override
    public void init(ProcessorContext<String, byte[]> context) {
        ctx = context;
        customers = context.getStateStore(STORE);
        dedup = context.getStateStore(DEDUP);
        metaStore = context.getStateStore(META);
        ahead = context.getStateStore(AHEAD);
        source = context.taskId().partition();
        byte[] m = metaStore.get(META_KEY);
        if (m != null) {
            ByteBuffer b = ByteBuffer.wrap(m);
            watermark = b.getLong();
            minDay = b.getInt();
            maxDay = b.getInt();
            lastEval = b.getInt();
            firstReversalDay = b.getInt();
            eodSent = b.getInt();
            parkSeq = b.getLong();
            int n = b.getInt();
            for (int i = 0; i < n && i < srcTime.length; i++) {
                srcTime[i] = b.getLong();
                srcIdle[i] = b.get() != 0;
            }
        }
    }

    private void saveMeta() {
        ByteBuffer b = ByteBuffer.allocate(40 + 9 * srcTime.length);
        b.putLong(watermark).putInt(minDay).putInt(maxDay).putInt(lastEval).putInt(firstReversalDay).putInt(eodSent);
        b.putLong(parkSeq);
        b.putInt(srcTime.length);
        for (int i = 0; i < srcTime.length; i++) {
            b.putLong(srcTime[i]).put((byte) (srcIdle[i] ? 1 : 0));
        }
        metaStore.put(META_KEY, b.array());
    }

    /**
     * pp_watermark_get over the source tasks' ticks: the smallest stream time
     * of the active (not idle) sources, the largest of all when every one is
     * idle; never backwards. A source that has not ticked yet holds it.
     */
    private long sourceWatermark() {
        long minActive = Long.MAX_VALUE, maxAll = Long.MIN_VALUE;
        boolean anyActive = false;
        for (int i = 0; i < srcTime.length; i++) {
            maxAll = Math.max(maxAll, srcTime[i]);
            if (!srcIdle[i]) {
                anyActive = true;
                minActive = Math.min(minActive, srcTime[i]);
            }
        }
        return anyActive ? minActive : maxAll;
    }

    static long eventKey(Event ev) {
        long k = PpTime.hashStr(ev.eventId) ^ ((long) ev.type * 0x9E3779B97F4A7C15L);
        return k != 0 ? k : 1;
    }

    private static Bytes dedupKey(int day, long key) {
        /* day with the sign bit flipped first, so a day's keys are one byte range */
        return Bytes.wrap(ByteBuffer.allocate(12).putInt(day ^ Integer.MIN_VALUE).putLong(key).array());
    }

    /** Can an event of `day` be stored without overwriting history still read? (fits) */
    private boolean fits(int day) {
        long room = (long) model.width - model.span - 1;
        if (lastEval != PpTime.NO_DAY) {
            return (long) day - ((long) lastEval + 1) <= room;
        }
        if (minDay == PpTime.NO_DAY) {
            return true;
        }
        long lo = Math.min(minDay, day), hi = Math.max(maxDay, day);
        return hi - lo <= room;
    }

    private static final byte[] ONE = {1};
    private static final int BATCH = 512;

    /**
     * More than alignDays ahead of the next day to evaluate. The customer
     * state is exact for any arrival order only while no input runs that
     * far ahead (model.c's ent_remember keeps the four newest licence
     * snapshot days), and the reference -- partnerpulse's customers stage
     * over the input in event-time order -- never does on dense input;
     * Streams' source tasks drift days apart, so the peer parks what runs
     * ahead and applies it when the evaluation catches up.
     */
    private boolean runsAhead(int day) {
        if (alignDays < 0) {
            return false;
        }
        if (lastEval != PpTime.NO_DAY) {
            return (long) day - ((long) lastEval + 1) > alignDays;
        }
        return minDay != PpTime.NO_DAY && (long) day - minDay > alignDays;
    }

    @Override
    public void process(Record<String, Event> rec) {
        Event ev = rec.value();
        if (ev == null) {
            return;
        }
        if (ev.type != Event.TICK) {
            apply(ev);
            return;
        }
        boolean changed = false;
        for (int i = 0; i < ev.tickIds.length; i++) {
            int src = ev.tickIds[i];
            if (src < 0 || src >= srcTime.length) {
                throw new IllegalStateException("tick from input partition #" + src + " but there are "
                        + srcTime.length + ": did an input topic's partition count change?");
            }
            changed |= srcIdle[src] != ev.tickIdle[i] || ev.tickTimes[i] > srcTime[src];
            srcTime[src] = Math.max(srcTime[src], ev.tickTimes[i]);
            srcIdle[src] = ev.tickIdle[i];
        }
        replay(); /* the floor moved: parked events may be due, and belong before any new day */
        long w = sourceWatermark();
        if (w > watermark) {
            watermark = w;
            advance();
        }
        if (changed) {
            saveMeta();
        }
    }

    /**
     * An event too far ahead of the evaluation for the day rings
     * (PP_APPLY_SKEWED). partnerpulse pauses the input partition that runs
     * ahead and reads the event again later; Kafka Streams cannot pause one
     * input of a task, and its tasks drift days apart on a preloaded input
     * (hundreds of days on sparse data), so the event is parked in the
     * {@value #AHEAD} store, keyed by (day, arrival), and applied once the
     * evaluation has moved close enough ({@link #replay}).
     */
    private void park(Event ev, int day) {
        Bytes k = Bytes.wrap(ByteBuffer.allocate(12).putInt(day ^ Integer.MIN_VALUE).putLong(parkSeq++).array());
        ahead.put(k, ev.raw);
        stats.parked.incrementAndGet();
        saveMeta();
    }

    /**
     * pp_watermark_floor over the ticks: the oldest event time an active input
     * partition may still deliver. MIN while an active partition has not
     * delivered anything yet (pp_watermark_floor assumes it at the oldest time
     * seen anywhere; on a preloaded input a fast partition's first fetch can
     * then start the evaluation months after a slow partition's first events,
     * which become too old to apply), MAX when all are idle.
     */
    private long floorMs() {
        long floor = Long.MAX_VALUE;
        for (int i = 0; i < srcTime.length; i++) {
            if (!srcIdle[i]) {
                if (srcTime[i] == Long.MIN_VALUE) {
                    return Long.MIN_VALUE;
                }
                floor = Math.min(floor, srcTime[i]);
            }
        }
        return floor;
    }

    /**
     * Ahead of the slowest input: partnerpulse's pipeline pauses a partition
     * whose event is more than its alignment ahead of the floor, so that a
     * fast partition cannot start the evaluation days after a slow one's
     * first events (which would then be too old to apply).
     */
    private boolean aheadOfFloor(int day) {
        long f = floorMs();
        if (f == Long.MIN_VALUE) {
            return true; /* not every input has started: hold everything */
        }
        if (f == Long.MAX_VALUE) {
            return false;
        }
        long align = alignDays >= 0 ? alignDays : (long) model.width - model.span - 1;
        return (long) day - PpTime.dayFromMs(f) > align;
    }

    /** The last day whose parked events may be applied now, MIN when none. */
    private long replayLimit() {
        long room = (long) model.width - model.span - 1;
        long align = alignDays >= 0 ? Math.min(alignDays, room) : room;
        long lim = Integer.MAX_VALUE;
        if (lastEval != PpTime.NO_DAY) {
            lim = Math.min(lim, (long) lastEval + 1 + align);
        } else if (minDay != PpTime.NO_DAY) {
            lim = Math.min(lim, (long) minDay + align);
        }
        long f = floorMs();
        if (f == Long.MIN_VALUE) {
            return Long.MIN_VALUE;
        }
        if (f != Long.MAX_VALUE) {
            lim = Math.min(lim, (long) PpTime.dayFromMs(f) + align);
        }
        return lim;
    }

    /** The quiet jump must not skip the days of parked events (they count as seen). */
    private boolean nothingParked() {
        try (KeyValueIterator<Bytes, byte[]> it = ahead.all()) {
            return !it.hasNext();
        }
    }

    /** Applies the parked events whose day fits now, in (day, arrival) order. */
    private void replay() {
        long maxDay = replayLimit();
        if (maxDay == Long.MIN_VALUE) {
            return;
        }
        Bytes to = Bytes.wrap(ByteBuffer.allocate(12).putInt((int) maxDay ^ Integer.MIN_VALUE).putLong(-1L).array());
        java.util.List<KeyValue<Bytes, byte[]>> due = new java.util.ArrayList<>();
        try (KeyValueIterator<Bytes, byte[]> it = ahead.range(null, to)) {
            while (it.hasNext()) {
                due.add(it.next());
            }
        }
        for (KeyValue<Bytes, byte[]> kv : due) {
            ahead.delete(kv.key);
            Event ev = decoder.deserialize("", kv.value);
            if (ev != null) {
                ev.raw = kv.value;
                apply(ev);
            }
        }
    }

    /** pp_model_apply, customer side. */
    private void apply(Event ev) {
        int day = PpTime.dayFromMs(ev.occurredAtMs);
        long key = eventKey(ev);
        if (lastEval != PpTime.NO_DAY && day <= lastEval) {
            if ((long) day > (long) lastEval - model.conf.dedupHorizonDays && dedup.get(dedupKey(day, key)) != null) {
                stats.duplicates.incrementAndGet();
            } else {
                if (stats.tooLate.incrementAndGet() <= 5 && Boolean.getBoolean("peer.debug")) {
                    System.err.println("peer: late task=" + source + " day=" + PpTime.format(day) + " lastEval="
                            + PpTime.format(lastEval) + " customer=" + ev.customerId + " wm=" + watermark);
                }
            }
            return;
        }
        if (!fits(day)) {
            park(ev, day);
            return;
        }
        if (runsAhead(day) || aheadOfFloor(day)) {
            park(ev, day); /* partnerpulse's alignment pauses such an input (see runsAhead) */
            return;
        }
        if (dedup.putIfAbsent(dedupKey(day, key), ONE) != null) {
            stats.duplicates.incrementAndGet();
            return;
        }
        String id = ev.customerId;
        CustomerState c = customers.get(id);
        boolean created = c == null;
        if (created) {
            c = model.newCustomer();
        }
        /* model.c interns the customer only on these paths: keep the same set of customers */
        boolean store = true;
        switch (ev.type) {
        case Event.DEAL:
            if (ev.eventType == Event.CLOSED_WON) {
                model.applyClosedWon(c, ev, day, source, this::emitNow);
            } else if (ev.eventType == Event.CANCELLED || ev.eventType == Event.CREDITED
                    || ev.eventType == Event.AMENDED) {
                store = reversalTouchesCustomer(ev);
                if (model.applyReversal(c, ev, day, source, this::emitNow)
                        && (firstReversalDay == PpTime.NO_DAY || day < firstReversalDay)) {
                    firstReversalDay = day;
                }
            } else {
                store = false;
                model.ignored++;
            }
            break;
        case Event.CONSUMPTION:
            model.applyConsumption(c, ev, day);
            break;
        default:
            model.applySupport(c, ev, day);
            break;
        }
        if (store) {
            customers.put(id, c);
        }
        boolean metaChanged = false;
        if (minDay == PpTime.NO_DAY || day < minDay) {
            minDay = day;
            metaChanged = true;
        }
        if (maxDay == PpTime.NO_DAY || day > maxDay) {
            maxDay = day;
            metaChanged = true;
        }
        if (metaChanged) {
            saveMeta();
        }
        stats.applied.incrementAndGet();
    }

    private void emitNow(String key, byte[] value) {
        ctx.forward(new Record<>(key, value, Math.max(0, watermark)));
    }

    /** apply_reversal interns the customer only for a credit with money or a seat cut. */
    private static boolean reversalTouchesCustomer(Event d) {
        boolean negative = d.eventType != Event.AMENDED || d.seats < 0 || d.amount < 0;
        if (!negative) {
            return false;
        }
        if (d.eventType == Event.CREDITED) {
            return d.amount != 0; /* acv > 0 */
        }
        return d.eventType == Event.CANCELLED || (d.eventType == Event.AMENDED && d.seats < 0);
    }

    /** pp_model_advance: evaluates every day the stream time closed. */
    private void advance() {
        if (watermark == Long.MIN_VALUE) {
            return;
        }
        int closed = PpTime.dayFromMs(watermark - model.conf.allowedLatenessMs) - 1;
        if (minDay != PpTime.NO_DAY) {
            int start = lastEval == PpTime.NO_DAY ? minDay : lastEval + 1;
            /* a year after the newest event every window is empty: skip the rest */
            long quiet = (long) maxDay + model.conf.pushLongDays + model.conf.reopenDays;
            for (long d = start; d <= closed; d++) {
                if (d > quiet && nothingParked()) {
                    lastEval = closed;
                    break;
                }
                evaluateDay((int) d);
                replay(); /* what was parked may fit now, and belongs before the next day */
            }
        }
        /* every day up to `closed` is done here: say so even when nothing was evaluated */
        if (eodSent == PpTime.NO_DAY || closed > eodSent) {
            emitEod(closed, lastEval != PpTime.NO_DAY ? Xrec.EOD_STARTED : 0);
        }
    }

    private void emitEod(int day, int flags) {
        eodSent = day;
        ctx.forward(new Record<>("", Xrec.eod(source, day, flags), PpTime.dayToMs(day + 1) - 1));
    }

    private void evaluateDay(int day) {
        long ts = PpTime.dayToMs(day + 1) - 1;
        Map<String, CustomerModel.Cpart[]> partials = new TreeMap<>();
        /* Every customer in id order, a batch at a time: read a batch whole, close the
         * iterator, then write. Writing while iterating a caching store reads stale
         * values: a put can evict (flush) another customer's newer cached value, and
         * the iterator's RocksDB side is a snapshot taken before the flush -- that lost
         * one licence snapshot in ~2,000 customers on the 1M-event load. */
        String after = null;
        while (true) {
            java.util.List<KeyValue<String, CustomerState>> batch = new java.util.ArrayList<>(BATCH);
            try (KeyValueIterator<String, CustomerState> it = customers.range(after, null)) {
                while (it.hasNext() && batch.size() < BATCH) {
                    KeyValue<String, CustomerState> kv = it.next();
                    if (after != null && kv.key.equals(after)) {
                        continue; /* range() includes its lower bound */
                    }
                    batch.add(kv);
                }
            }
            for (KeyValue<String, CustomerState> kv : batch) {
                CustomerState c = kv.value;
                model.finalizeCustomer(c, day, partials);
                customers.put(kv.key, c);
                /* cstage's close_day sends the day's cohort partials first; a partners stage
                 * buffers a day until its EOD, so the order inside the day does not matter */
                for (Xrec.Assess x : assessor.assess(kv.key, c, day)) {
                    ctx.forward(new Record<>(x.partnerId, Xrec.assess(source, day, x), ts));
                    stats.assessments.incrementAndGet();
                }
            }
            if (batch.size() < BATCH) {
                break;
            }
            after = batch.get(batch.size() - 1).key;
        }
        for (Map.Entry<String, CustomerModel.Cpart[]> e : partials.entrySet()) {
            for (int band = 0; band < 3; band++) {
                if (e.getValue()[band] != null) {
                    ctx.forward(new Record<>("", Xrec.cohort(source, day, e.getKey(), band, e.getValue()[band]), ts));
                }
            }
        }
        lastEval = day;
        forgetDedup(day - model.conf.dedupHorizonDays);
        stats.daysEvaluated.incrementAndGet();
        emitEod(day, Xrec.EOD_EVALUATED | Xrec.EOD_STARTED);
    }

    private void forgetDedup(int day) {
        Bytes from = dedupKey(day, 0), to = dedupKey(day, -1L);
        java.util.List<Bytes> keys = new java.util.ArrayList<>();
        /* keys compare unsigned byte-wise: 0 .. 0xff..ff covers the day */
        try (KeyValueIterator<Bytes, byte[]> it = dedup.range(from, to)) {
            while (it.hasNext()) {
                keys.add(it.next().key);
            }
        }
        for (Bytes k : keys) {
            dedup.delete(k);
        }
    }
}
