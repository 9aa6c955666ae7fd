package dev.partnerpulse.peer;

import java.time.Duration;
import java.util.HashSet;
import java.util.Optional;
import java.util.Set;

import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.utils.Utils;
import org.apache.kafka.streams.processor.PunctuationType;
import org.apache.kafka.streams.processor.StreamPartitioner;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;

/**
 * The source side: re-keys every valid event by customer_id and, every
 * commit interval of wall-clock time, broadcasts a watermark tick -- the
 * stream time of each of this task's input partitions and whether it is
 * idle -- to every partition of the repartition topic.
 *
 * Why: Kafka Streams has no watermarks. Downstream of a repartition, a
 * task's stream time is the largest timestamp of records that several
 * upstream tasks interleave in whatever order they run, so closing days on
 * it drops events of slower upstream tasks as late (on a preloaded input, a
 * third of them in a small test). Even one source task does not read its
 * three input partitions in event-time order when some are not fetched yet.
 * partnerpulse's customers tasks take the minimum over input partitions of
 * their stream times (processors/watermark.c, runtime design), so the peer
 * does the same with Streams' own means: a wall-clock punctuator and a
 * multicasting StreamPartitioner (KIP-837).
 *
 * Idle = the partition has been read to its end (EndOffsets) for idleMs,
 * partnerpulse's "caught up": not "delivered nothing for idleMs", which a
 * Streams thread serving many tasks does to a partition with lag for
 * seconds at a time.
 */
public final class SourceTicks implements Processor<byte[], Event, String, Event> {
    private final long idleMs;
    private final java.util.List<String> inputs;
    private final int[] offsets;    /* source id of partition 0 of each input topic */
    private final int[] partitions; /* partition count of each input topic */
    private ProcessorContext<String, Event> ctx;
    private int task;
    private TopicPartition[] tps;   /* this task's input partitions */
    private int[] ids;
    private long[] streamTime, next, caughtUpSince;
    private boolean[] idle;
    private long[] sentTime;
    private boolean[] sentIdle;

    public SourceTicks(long idleMs, java.util.List<String> inputs, int[] offsets, int[] partitions) {
        this.idleMs = idleMs;
        this.inputs = inputs;
        this.offsets = offsets;
        this.partitions = partitions;
    }

    @Override
    public void init(ProcessorContext<String, Event> context) {
        ctx = context;
        task = context.taskId().partition();
        java.util.List<Integer> mine = new java.util.ArrayList<>();
        for (int i = 0; i < inputs.size(); i++) {
            if (task < partitions[i]) {
                mine.add(i);
            }
        }
        int n = mine.size();
        tps = new TopicPartition[n];
        ids = new int[n];
        for (int k = 0; k < n; k++) {
            tps[k] = new TopicPartition(inputs.get(mine.get(k)), task);
            ids[k] = offsets[mine.get(k)] + task;
        }
        streamTime = new long[n];
        next = new long[n];
        caughtUpSince = new long[n];
        idle = new boolean[n];
        sentTime = new long[n];
        sentIdle = new boolean[n];
        java.util.Arrays.fill(streamTime, Long.MIN_VALUE);
        java.util.Arrays.fill(caughtUpSince, -1);
        java.util.Arrays.fill(sentTime, Long.MIN_VALUE + 1); /* forces the first tick */
        context.schedule(Duration.ofMillis(100), PunctuationType.WALL_CLOCK_TIME, this::tick);
    }

    private int indexOf(String topic) {
        for (int k = 0; k < tps.length; k++) {
            if (tps[k].topic().equals(topic)) {
                return k;
            }
        }
        return -1;
    }

    @Override
    public void process(Record<byte[], Event> rec) {
        int k = ctx.recordMetadata().map(m -> {
            int i = indexOf(m.topic());
            if (i >= 0) {
                next[i] = m.offset() + 1;
            }
            return i;
        }).orElse(-1);
        Event ev = rec.value();
        if (ev == null) {
            return; /* invalid: partnerpulse dead-letters it */
        }
        if (k >= 0 && ev.occurredAtMs > streamTime[k]) {
            streamTime[k] = ev.occurredAtMs;
        }
        ctx.forward(rec.withKey(ev.customerId));
    }

    private void tick(long now) {
        boolean changed = false;
        for (int k = 0; k < tps.length; k++) {
            long end = EndOffsets.end(tps[k]);
            boolean caughtUp = end >= 0 && Math.max(next[k], EndOffsets.committed(tps[k])) >= end;
            if (!caughtUp) {
                caughtUpSince[k] = -1;
            } else if (caughtUpSince[k] < 0) {
                caughtUpSince[k] = now;
            }
            idle[k] = caughtUpSince[k] >= 0 && now - caughtUpSince[k] >= idleMs;
            changed |= idle[k] != sentIdle[k] || streamTime[k] != sentTime[k];
        }
        if (!changed) {
            return;
        }
        ctx.forward(new Record<>("", Event.tick(ids.clone(), streamTime.clone(), idle.clone()), now));
        System.arraycopy(streamTime, 0, sentTime, 0, tps.length);
        System.arraycopy(idle, 0, sentIdle, 0, tps.length);
    }

    /**
     * Events go to murmur2(customer_id) like Kafka's default partitioner
     * (and partnerpulse's runtime); ticks go to every partition.
     */
    public static final class Partitioner implements StreamPartitioner<String, Event> {
        @Override
        public Optional<Set<Integer>> partitions(String topic, String key, Event value, int n) {
            if (value != null && value.type == Event.TICK) {
                Set<Integer> all = new HashSet<>();
                for (int i = 0; i < n; i++) {
                    all.add(i);
                }
                return Optional.of(all);
            }
            byte[] k = key.getBytes(java.nio.charset.StandardCharsets.UTF_8);
            return Optional.of(Set.of(Utils.toPositive(Utils.murmur2(k)) % n));
        }
    }
}
