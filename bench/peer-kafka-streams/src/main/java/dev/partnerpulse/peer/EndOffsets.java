package dev.partnerpulse.peer;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.common.TopicPartition;

/**
 * The end offsets of the input partitions, refreshed by a daemon thread
 * through the Admin client: what lets a source task tell "caught up" (its
 * partitions have nothing more to read: it may stop holding the watermark
 * back) from "starved" (Streams' thread has not fetched for it lately,
 * which on a preloaded input happens for seconds at a time).
 */
final class EndOffsets {
    private static final Map<TopicPartition, Long> ENDS = new ConcurrentHashMap<>();
    private static final Map<TopicPartition, Long> COMMITTED = new ConcurrentHashMap<>();
    private static volatile boolean started;

    private EndOffsets() {}

    static synchronized void start(Admin admin, List<String> topics, String group) {
        if (started) {
            return;
        }
        started = true;
        Thread t = new Thread(() -> {
            while (true) {
                try {
                    Map<TopicPartition, OffsetSpec> req = new HashMap<>();
                    for (var e : admin.describeTopics(topics).allTopicNames().get().entrySet()) {
                        for (var p : e.getValue().partitions()) {
                            req.put(new TopicPartition(e.getKey(), p.partition()), OffsetSpec.latest());
                        }
                    }
                    admin.listOffsets(req).all().get().forEach((tp, info) -> ENDS.put(tp, info.offset()));
                    admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get().forEach((tp, om) -> {
                        if (om != null) {
                            COMMITTED.put(tp, om.offset());
                        }
                    });
                    Thread.sleep(500);
                } catch (InterruptedException e) {
                    return;
                } catch (Exception e) {
                    System.err.println("peer: end offsets: " + e.getMessage());
                    try {
                        Thread.sleep(1000);
                    } catch (InterruptedException ie) {
                        return;
                    }
                }
            }
        }, "peer-end-offsets");
        t.setDaemon(true);
        t.start();
    }

    /**
     * The group's committed offset of the partition, 0 when none: after a
     * restart a partition read to its end before has nothing to deliver, and
     * is caught up without delivering anything.
     */
    static long committed(TopicPartition tp) {
        Long v = COMMITTED.get(tp);
        return v == null ? 0 : v;
    }

    /** The partition's end offset, or -1 while unknown (or when it does not exist). */
    static long end(TopicPartition tp) {
        Long v = ENDS.get(tp);
        return v == null ? -1 : v;
    }
}
