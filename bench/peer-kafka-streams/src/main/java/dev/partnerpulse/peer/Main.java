package dev.partnerpulse.peer;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.LogAndContinueExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.processor.StateRestoreListener;
import org.apache.kafka.streams.processor.TimestampExtractor;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.StoreBuilder;
import org.apache.kafka.streams.state.Stores;

/**
 * The Kafka Streams peer of partnerpulse's customers sub-topology (MODEL.md
 * §1, issue #7): input topics (Confluent-framed Avro, any key) -> selectKey
 * (customer_id) -> repartition -> the customers processor with RocksDB
 * stores (changelogged) -> the assessments topic; exactly_once_v2, commit
 * interval 100 ms.
 *
 * Configuration: a properties file (--config FILE) and/or --key=value
 * arguments (later wins); see README.md for the keys. Keys starting with
 * "streams." are passed to StreamsConfig without the prefix.
 *
 * Benchmark hooks (used by run.sh), each printing one "PEER ..." line:
 * exit.when.caught.up=true exits once every input event is processed and
 * committed (events/s, CPU-seconds, VmHWM); report.restore=true prints the
 * time to RUNNING with every store restored.
 */
public final class Main {
    public static void main(String[] args) throws Exception {
        Properties cfg = new Properties();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--config") && i + 1 < args.length) {
                try (InputStream in = new FileInputStream(args[++i])) {
                    cfg.load(in);
                }
            } else if (a.startsWith("--") && a.contains("=")) {
                int eq = a.indexOf('=');
                cfg.setProperty(a.substring(2, eq), a.substring(eq + 1));
            } else if (a.equals("--help") || a.equals("-h")) {
                System.out.println("usage: peer [--config FILE] [--key=value ...]  (keys: README.md)");
                return;
            } else {
                System.err.println("peer: unknown argument '" + a + "' (expected --config FILE or --key=value)");
                System.exit(2);
            }
        }
        if (cfg.getProperty("mode") != null) {
            System.exit(Tools.run(cfg));
        }
        new Main(cfg).run();
    }

    private final Properties cfg;
    private final String app;
    private final List<String> inputs;
    private final String output;
    private final CustomersProcessor.Stats stats = new CustomersProcessor.Stats();
    private final WireAvro avro;
    private final Conf conf = new Conf();

    Main(Properties cfg) {
        this.cfg = cfg;
        this.app = get("application.id", "pp-peer");
        this.inputs = List.of(get("topics.deals", "deals"), get("topics.licenses", "license-consumption"),
                get("topics.support", "support"));
        this.output = get("output.topic", app + "-assessments");
        this.avro = new WireAvro(get("schema.registry.url", ""));
        conf.allowedLatenessMs = Long.parseLong(get("allowed.lateness.ms", "86400000"));
    }

    private String get(String key, String def) {
        return cfg.getProperty(key, def);
    }

    /** Event time for the whole topology: occurred_at of the decoded event. */
    static final class EventTime implements TimestampExtractor {
        @Override
        public long extract(ConsumerRecord<Object, Object> r, long partitionTime) {
            if (r.value() instanceof Event) {
                return ((Event) r.value()).occurredAtMs;
            }
            return partitionTime >= 0 ? partitionTime : Math.max(0, r.timestamp());
        }
    }

    Topology topology() throws Exception {
        int[] parts = new int[inputs.size()], offsets = new int[inputs.size()];
        int sources = 0;
        var described = admin().describeTopics(inputs).allTopicNames().get();
        for (int i = 0; i < inputs.size(); i++) {
            parts[i] = described.get(inputs.get(i)).partitions().size();
            offsets[i] = sources;
            sources += parts[i];
        }
        final int nSources = sources;
        long idleMs = Long.parseLong(get("idle.ms", "2000"));
        int alignDays = Integer.parseInt(get("align.days", "3"));
        StreamsBuilder b = new StreamsBuilder();
        CustomerModel shape = new CustomerModel(conf);
        StoreBuilder<KeyValueStore<String, CustomerState>> store = Stores.keyValueStoreBuilder(
                Stores.persistentKeyValueStore(CustomersProcessor.STORE), Serdes.String(),
                CustomerState.serde(shape.nwin(), shape.width)).withCachingEnabled();
        StoreBuilder<KeyValueStore<Bytes, byte[]>> dedup = Stores.keyValueStoreBuilder(
                Stores.persistentKeyValueStore(CustomersProcessor.DEDUP), Serdes.Bytes(), Serdes.ByteArray())
                .withCachingEnabled();
        StoreBuilder<KeyValueStore<String, byte[]>> meta = Stores.keyValueStoreBuilder(
                Stores.persistentKeyValueStore(CustomersProcessor.META), Serdes.String(), Serdes.ByteArray())
                .withCachingEnabled();
        b.addStateStore(store);
        b.addStateStore(dedup);
        b.addStateStore(meta);
        b.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(CustomersProcessor.AHEAD),
                Serdes.Bytes(), Serdes.ByteArray()).withCachingEnabled());

        org.apache.kafka.common.serialization.Serde<Event> events = Serdes.serdeFrom(WireAvro.serializer(),
                avro.deserializer(false));
        org.apache.kafka.common.serialization.Serde<Event> eventsAndTicks = Serdes.serdeFrom(WireAvro.serializer(),
                avro.deserializer(true));
        Repartitioned<String, Event> rep = Repartitioned.<String, Event>as("customers")
                .withKeySerde(Serdes.String()).withValueSerde(eventsAndTicks)
                .withStreamPartitioner(new SourceTicks.Partitioner());
        int n = Integer.parseInt(get("partitions", "0"));
        if (n > 0) {
            rep = rep.withNumberOfPartitions(n);
        }
        b.stream(inputs, Consumed.with(Serdes.ByteArray(), events).withTimestampExtractor(new EventTime()))
                .process(() -> new SourceTicks(idleMs, inputs, offsets, parts)) /* key = customer_id, plus watermark ticks */
                .repartition(rep)
                .process(() -> new CustomersProcessor(conf, nSources, stats, avro.deserializer(false), alignDays), CustomersProcessor.STORE,
                        CustomersProcessor.DEDUP, CustomersProcessor.META, CustomersProcessor.AHEAD)
                .to(output, Produced.with(Serdes.String(), Serdes.ByteArray()));
        return b.build();
    }

    Properties streamsProps() {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, app);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, get("bootstrap.servers", "127.0.0.1:39392"));
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, get("commit.interval.ms", "100"));
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, get("num.stream.threads", "1"));
        p.put(StreamsConfig.STATE_DIR_CONFIG, get("state.dir", "/tmp/pp-peer-state"));
        p.put(StreamsConfig.DESERIALIZATION_EXCEPTION_HANDLER_CLASS_CONFIG, LogAndContinueExceptionHandler.class);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        /* static membership: a restarted instance (kill -9, restore run) takes its place at once
         * instead of waiting out the dead member's session */
        p.put(StreamsConfig.mainConsumerPrefix(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG),
                get("group.instance.id", app + "-1"));
        for (String k : cfg.stringPropertyNames()) {
            if (k.startsWith("streams.")) {
                p.put(k.substring("streams.".length()), cfg.getProperty(k));
            }
        }
        return p;
    }

    /* ---- process figures from /proc (Linux) --------------------------- */

    static double cpuSeconds() {
        try {
            String s = Files.readString(Path.of("/proc/self/stat"));
            String[] f = s.substring(s.lastIndexOf(')') + 2).split(" ");
            long ticks = Long.parseLong(f[11]) + Long.parseLong(f[12]); /* utime, stime */
            return ticks / 100.0; /* USER_HZ is 100 on Linux */
        } catch (IOException | RuntimeException e) {
            return Double.NaN;
        }
    }

    static long vmHwmKb() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", ""));
                }
            }
        } catch (IOException | RuntimeException e) {
            /* not Linux */
        }
        return -1;
    }

    /* ---- run ------------------------------------------------------------ */

    void run() throws Exception {
        Topology topo = topology();
        if (Boolean.parseBoolean(get("print.topology", "false"))) {
            System.out.println(topo.describe());
        }
        KafkaStreams streams = new KafkaStreams(topo, streamsProps());
        AtomicInteger pending = new AtomicInteger();
        AtomicLong restoreStarts = new AtomicLong(), restored = new AtomicLong(), firstStart = new AtomicLong(),
                lastEnd = new AtomicLong();
        streams.setGlobalStateRestoreListener(new StateRestoreListener() {
            @Override
            public void onRestoreStart(TopicPartition tp, String store, long start, long end) {
                pending.incrementAndGet();
                restoreStarts.incrementAndGet();
                firstStart.compareAndSet(0, System.nanoTime());
            }

            @Override
            public void onBatchRestored(TopicPartition tp, String store, long batchEnd, long n) {}

            @Override
            public void onRestoreEnd(TopicPartition tp, String store, long total) {
                restored.addAndGet(total);
                lastEnd.set(System.nanoTime());
                pending.decrementAndGet();
            }
        });
        CountDownLatch stop = new CountDownLatch(1);
        AtomicLong runningAt = new AtomicLong();
        streams.setStateListener((now, old) -> {
            System.err.println("peer: state " + old + " -> " + now);
            if (now == KafkaStreams.State.RUNNING) {
                runningAt.set(System.nanoTime());
            }
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
                stop.countDown();
            }
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(java.time.Duration.ofSeconds(30));
            stop.countDown();
        }));
        if (Boolean.parseBoolean(get("reset", "false"))) {
            streams.cleanUp();
        }
        EndOffsets.start(admin(), inputs, app);
        long t0 = System.nanoTime();
        double cpu0 = cpuSeconds();
        streams.start();

        boolean exitWhenCaughtUp = Boolean.parseBoolean(get("exit.when.caught.up", "false"));
        boolean reportRestore = Boolean.parseBoolean(get("report.restore", "false"));
        boolean reportRunning = Boolean.parseBoolean(get("report.running", "false"));
        long inputTotal = exitWhenCaughtUp ? inputEventCount() : -1;
        if (exitWhenCaughtUp) {
            System.err.println("peer: " + inputTotal + " input events to process");
        }
        long lastLog = System.nanoTime();
        long settledAt = -1, settledDays = 0;
        long idleMs = Long.parseLong(get("idle.ms", "2000"));
        boolean restoreReported = false;
        double caughtElapsed = -1, caughtCpu = -1;
        long caughtHwm = -1;
        while (!stop.await(100, TimeUnit.MILLISECONDS)) {
            long now = System.nanoTime();
            if (now - lastLog > 5_000_000_000L) {
                lastLog = now;
                System.err.printf("peer: applied=%d late=%d dup=%d parked=%d invalid=%d days=%d assessments=%d%n",
                        stats.applied.get(), stats.tooLate.get(), stats.duplicates.get(), stats.parked.get(),
                        avro.invalid.get(), stats.daysEvaluated.get(), stats.assessments.get());
            }
            /* RUNNING with no restoration under way (the state updater restores every
             * changelog it has to before a task runs): report once */
            boolean ready = streams.state() == KafkaStreams.State.RUNNING && pending.get() == 0
                    && (restoreStarts.get() > 0 || now - runningAt.get() > 2_000_000_000L);
            if (ready && runningAt.get() > 0 && !restoreReported) {
                restoreReported = true;
                long readyAt = Math.max(runningAt.get(), lastEnd.get());
                if (reportRunning) {
                    System.out.printf("PEER running to_running_s=%.3f%n", (readyAt - t0) / 1e9);
                }
                if (reportRestore) {
                    double restoring = restoreStarts.get() > 0 ? (lastEnd.get() - firstStart.get()) / 1e9 : 0;
                    System.out.printf("PEER restored stores=%d records=%d restore_s=%.3f to_running_s=%.3f%n",
                            restoreStarts.get(), restored.get(), restoring, (readyAt - t0) / 1e9);
                }
                System.out.flush();
                if (Boolean.parseBoolean(get("exit.after.restore", "false"))) {
                    break;
                }
            }
            if (exitWhenCaughtUp && caughtElapsed < 0) {
                long seen = stats.applied.get() + stats.tooLate.get() + stats.duplicates.get()
                        + avro.invalid.get();
                if (seen >= inputTotal) {
                    caughtElapsed = (now - t0) / 1e9;
                    caughtCpu = cpuSeconds() - cpu0;
                    caughtHwm = vmHwmKb();
                }
            }
            if (exitWhenCaughtUp && caughtElapsed >= 0 && settledAt < 0 && inputsCommitted()) {
                settledAt = now;
                settledDays = stats.daysEvaluated.get();
            }
            if (settledAt >= 0 && stats.daysEvaluated.get() != settledDays) {
                settledAt = now; /* the sources went idle: the last days are closing */
                settledDays = stats.daysEvaluated.get();
            }
            /* the figures are taken when the last event was processed; the exit waits until the
             * sources have gone idle and closed the last days (idle.ms), so the output is complete */
            if (settledAt >= 0 && now - settledAt > (idleMs + 3000) * 1_000_000L) {
                System.out.printf("PEER caught_up events=%d elapsed_s=%.3f events_per_s=%.0f cpu_s=%.3f "
                        + "cpu_s_per_million=%.3f vmhwm_kb=%d applied=%d late=%d dup=%d parked=%d invalid=%d "
                        + "days=%d assessments=%d%n", inputTotal, caughtElapsed, inputTotal / caughtElapsed, caughtCpu,
                        caughtCpu / (inputTotal / 1e6), caughtHwm, stats.applied.get(), stats.tooLate.get(),
                        stats.duplicates.get(), stats.parked.get(), avro.invalid.get(), stats.daysEvaluated.get(),
                        stats.assessments.get());
                System.out.flush();
                break;
            }
        }
        streams.close(java.time.Duration.ofSeconds(30));
    }

    private Admin admin;

    private Admin admin() {
        if (admin == null) {
            Properties p = new Properties();
            p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, get("bootstrap.servers", "127.0.0.1:39392"));
            admin = Admin.create(p);
        }
        return admin;
    }

    private Map<TopicPartition, Long> endOffsets(List<String> topics) throws Exception {
        Map<TopicPartition, OffsetSpec> req = new HashMap<>();
        for (var e : admin().describeTopics(topics).allTopicNames().get().entrySet()) {
            for (var part : e.getValue().partitions()) {
                req.put(new TopicPartition(e.getKey(), part.partition()), OffsetSpec.latest());
            }
        }
        Map<TopicPartition, Long> out = new HashMap<>();
        for (var e : admin().listOffsets(req, new ListOffsetsOptions(IsolationLevel.READ_COMMITTED)).all().get()
                .entrySet()) {
            out.put(e.getKey(), e.getValue().offset());
        }
        return out;
    }

    /** Source tasks = the largest partition count of the input topics (they must exist). */
    int sourceTasks() throws Exception {
        int n = 0;
        for (var d : admin().describeTopics(inputs).allTopicNames().get().values()) {
            n = Math.max(n, d.partitions().size());
        }
        return n;
    }

    /**
     * Records in the input topics left to process: end offsets (the input is
     * preloaded and not transactional) less the group's committed offsets (0
     * on a first run).
     */
    long inputEventCount() throws Exception {
        Map<TopicPartition, OffsetAndMetadata> done = admin().listConsumerGroupOffsets(app)
                .partitionsToOffsetAndMetadata().get();
        long n = 0;
        for (var e : endOffsets(inputs).entrySet()) {
            OffsetAndMetadata c = done.get(e.getKey());
            n += e.getValue() - (c == null ? 0 : Math.min(c.offset(), e.getValue()));
        }
        return n;
    }

    /** Every input partition's committed offset has reached its end. */
    boolean inputsCommitted() {
        try {
            Map<TopicPartition, Long> ends = endOffsets(inputs);
            Map<TopicPartition, OffsetAndMetadata> done = admin().listConsumerGroupOffsets(app)
                    .partitionsToOffsetAndMetadata().get();
            for (var e : ends.entrySet()) {
                OffsetAndMetadata c = done.get(e.getKey());
                if (e.getValue() > 0 && (c == null || c.offset() < e.getValue())) {
                    return false;
                }
            }
            return true;
        } catch (Exception e) {
            return false;
        }
    }
}
