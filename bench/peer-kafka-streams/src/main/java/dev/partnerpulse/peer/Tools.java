package dev.partnerpulse.peer;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Helpers for run.sh that need no other Kafka tooling than this jar:
 * mode=create-topics (topics=a,b,c partitions=N) and mode=dump (topic=X:
 * every committed record, one line each: key TAB value, the value as text
 * when it is printable, else hex; in partition then offset order).
 */
final class Tools {
    private Tools() {}

    static List<String> csv(String s) {
        List<String> l = new ArrayList<>();
        for (String x : s.split(",")) {
            if (!x.isBlank()) {
                l.add(x.trim());
            }
        }
        return l;
    }

    static int run(Properties cfg) throws Exception {
        String bootstrap = cfg.getProperty("bootstrap.servers", "127.0.0.1:39392");
        switch (cfg.getProperty("mode")) {
        case "create-topics": {
            Properties p = new Properties();
            p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            int n = Integer.parseInt(cfg.getProperty("partitions", "6"));
            try (Admin admin = Admin.create(p)) {
                for (String t : csv(cfg.getProperty("topics", "deals,license-consumption,support"))) {
                    try {
                        /* retention.ms=-1: records carry their event time (2025 in the generated
                         * load), which the broker's 7-day time retention would delete within minutes */
                        admin.createTopics(List.of(new NewTopic(t, n, (short) 1)
                                .configs(Map.of("retention.ms", "-1")))).all().get();
                    } catch (ExecutionException e) {
                        if (!(e.getCause() instanceof TopicExistsException)) {
                            throw e;
                        }
                        System.err.println("peer: topic " + t + " exists");
                    }
                }
            }
            return 0;
        }
        case "dump": {
            String topic = cfg.getProperty("topic");
            Properties p = new Properties();
            p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
            p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p, new ByteArrayDeserializer(),
                    new ByteArrayDeserializer())) {
                List<TopicPartition> parts = new ArrayList<>();
                c.partitionsFor(topic).forEach(pi -> parts.add(new TopicPartition(topic, pi.partition())));
                c.assign(parts);
                c.seekToBeginning(parts);
                Map<TopicPartition, Long> end = new HashMap<>(c.endOffsets(parts));
                StringBuilder out = new StringBuilder();
                HexFormat hex = HexFormat.of();
                while (true) {
                    boolean done = true;
                    for (TopicPartition tp : parts) {
                        if (c.position(tp) < end.get(tp)) {
                            done = false;
                        }
                    }
                    if (done) {
                        break;
                    }
                    for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
                        out.append(r.key() == null ? "" : new String(r.key(), java.nio.charset.StandardCharsets.UTF_8));
                        out.append('\t').append(printable(r.value()) ? new String(r.value(),
                                java.nio.charset.StandardCharsets.UTF_8) : hex.formatHex(r.value())).append('\n');
                    }
                    if (out.length() > 1 << 20) {
                        System.out.print(out);
                        out.setLength(0);
                    }
                }
                System.out.print(out);
                System.out.flush();
            }
            return 0;
        }
        default:
            System.err.println("peer: unknown mode '" + cfg.getProperty("mode") + "'");
            return 2;
        }
    }

    static boolean printable(byte[] v) {
        if (v == null) {
            return true;
        }
        for (byte b : v) {
            if ((b < 0x20 && b != '\t') || b == 0x7f) {
                return false;
            }
        }
        return true;
    }
}
