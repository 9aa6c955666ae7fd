#!/usr/bin/env python3
"""End-to-end benchmark of `partnerpulse run` on a real Kafka broker (issue #7).

What it measures (README.md next to this file explains the choices):

1. Throughput, from a preloaded backlog: N events (default 2M) sit in 6-partition input
   topics; a fresh consumer group runs `partnerpulse run` from the beginning until its
   committed offsets reach the end of every input partition. Printed: sustained events/s
   (between 10 % and 90 % of the events, from /metrics), end-to-end events/s (first event
   to lag 0), CPU-seconds per million events (utime+stime of the process, /proc/PID/stat)
   and peak RSS (VmHWM). --runs N repeats it with new groups and prints the median.
2. Latency, paced: the same events replayed into fresh topics at half the measured
   sustained rate while partnerpulse runs, and a read_committed consumer on the alerts
   topic. An alert record says which day it evaluated (last_evaluated_at), not which
   event caused it; day D can only be evaluated once an event later than
   D+1 00:00 + allowed_lateness is in Kafka. Latency = the time the alert is read by the
   read_committed consumer - the time the broker acknowledged the first event past that
   boundary. p50 / p99 / max over every alert record (--latency-runs N pools N paced runs).
   Also from the *release* of each day: the moment every input partition had let it go
   under the watermark rule (its first record of the next day acknowledged, or idle for
   processing.idle_timeout): the replay's 17 event days per second make the idle rule
   weigh far more than live (README.md next to this file).

The data: `generate --load PxC` (the synthetic load: one deal per customer, a daily
licence snapshot, Poisson tickets; it never alerts) merged in event-time order with
`generate --scenario all` (MODEL.md §3's stories, which do alert), both from 2024-10-01.
Both are produced by `generate --kafka` into 1-partition staging topics, then merged by
timestamp (generate sets the Kafka timestamp to the event time) and copied, key and
value bytes unchanged, into the benchmark topics.

Usage: bench/e2e/run.py [--bin build/app/partnerpulse] [--guarantee exactly_once]
                        [--events 2000000] [--runs 3] [--port 39892]
                        [--rate EV_PER_S]   (latency run only, at that rate)
                        [--set SECTION.KEY=VALUE ...]
Needs Java + Maven (deploy/local/kafka.sh) and tests/integration/requirements.txt.
"""

from __future__ import annotations

import argparse
import heapq
import http.client
import io
import json
import os
import pathlib
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib

import fastavro
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = pathlib.Path(__file__).resolve().parents[2]
KINDS = ("deals", "licenses", "support")
START = "2024-10-01"
LOAD_CUSTOMERS = 10                      # customers per load partner
EVENTS_PER_CUSTOMER_DAY = 1.062          # measured: a snapshot + Poisson tickets
SCENARIO_DAYS = 457                      # 2024-10-01 .. 2025-12-31
DAY_MS = 86400 * 1000
PORT_RE = re.compile(r'msg="http listening" address=\S+ port=(\d+)')
LATENESS_MS = 24 * 3600 * 1000           # processing.allowed_lateness (the default)


def log(msg: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------ broker


class Broker:
    def __init__(self, port: int, bootstrap: str | None):
        self.port = port
        self.external = bootstrap is not None
        self.bootstrap = bootstrap or f"127.0.0.1:{port}"
        self.env = dict(os.environ, PP_KAFKA_PORT=str(port))

    def start(self) -> None:
        if not self.external:
            subprocess.run([str(ROOT / "deploy/local/kafka.sh"), "start"], env=self.env,
                           check=True)
        self.admin = AdminClient({"bootstrap.servers": self.bootstrap})
        self.before = set(self.admin.list_topics(timeout=30).topics)

    def delete_new_topics(self) -> None:
        """Deletes the topics this run created on a broker it did not start
        (a few hundred partitions a run: a long-lived broker runs out of file
        descriptors after a few dozen runs otherwise)."""
        new = [t for t in self.admin.list_topics(timeout=30).topics
               if t not in self.before and t.startswith("e2e-")]
        for f in self.admin.delete_topics(new).values() if new else []:
            try:
                f.result(60)
            except Exception as e:  # noqa: BLE001 - best effort, say why
                log(f"note: topic not deleted: {e}")

    def stop(self) -> None:
        self.admin = None  # no client left to log "connection refused"
        if not self.external:
            subprocess.run([str(ROOT / "deploy/local/kafka.sh"), "stop"], env=self.env)

    def check_count(self, topics: list[str], partitions: int, n: int) -> None:
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "e2e-count"})
        try:
            got = sum(c.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
                      for t in topics for p in range(partitions))
        finally:
            c.close()
        if got != n:
            raise RuntimeError(f"{got} records in {topics}, expected {n}")

    def create(self, topics: dict[str, int]) -> None:
        # retention.ms=-1: the records carry their event time (2024-2025) as
        # timestamp, and time-based retention (7 days by default) would let the
        # broker delete them at its next retention check, mid-benchmark.
        futs = self.admin.create_topics([NewTopic(t, num_partitions=n, replication_factor=1,
                                                  config={"retention.ms": "-1"})
                                         for t, n in topics.items()])
        for f in futs.values():
            f.result(60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            md = self.admin.list_topics(timeout=10)
            if all(t in md.topics and len(md.topics[t].partitions) == n
                   and all(p.leader >= 0 for p in md.topics[t].partitions.values())
                   for t, n in topics.items()):
                return
            time.sleep(0.2)
        raise RuntimeError(f"topics {list(topics)} not ready")


# -------------------------------------------------------------------- data


EXTRA: dict[str, dict[str, str]] = {}  # --set SECTION.KEY=VALUE


def config_text(app: str, topics: dict[str, str], bootstrap: str, guarantee: str | None,
                state_dir: str) -> str:
    sections = {
        "topics": {k: topics[k] for k in (*KINDS, "alerts", "dlq")},
        "processing": {"allowed_lateness": "24h"},
        "log": {"level": "warn"},
        "http": {"listen": "127.0.0.1:0"},
        "kafka": {"bootstrap.servers": bootstrap},
    }
    if guarantee:
        sections["processing"].update(guarantee=guarantee, commit_interval="100ms")
        sections["state"] = {"dir": state_dir}
    for sec, kv in EXTRA.items():
        sections.setdefault(sec, {}).update(kv)
    return f"application_id: {app}\n" + "".join(
        f"{sec}:\n" + "".join(f"  {k}: {v}\n" for k, v in kv.items())
        for sec, kv in sections.items())


def topic_set(prefix: str) -> dict[str, str]:
    return {k: f"{prefix}.{k}" for k in (*KINDS, "alerts", "dlq")}


def stage(args, broker: Broker, work: pathlib.Path) -> tuple[list[str], int]:
    """generate --kafka the load and the stories into 1-partition staging
    topics (one set each, each in event-time order). Returns the staging
    topics and the number of events."""
    # The load spans the stories' days; its size is set by the partner count.
    days = SCENARIO_DAYS
    partners = max(1, round((args.events - 21000) / (days * LOAD_CUSTOMERS
                                                      * EVENTS_PER_CUSTOMER_DAY)))
    run = uuid.uuid4().hex[:6]
    staged, total = [], 0
    for name, gen in (("load", ["--load", f"{partners}x{LOAD_CUSTOMERS}", "--days",
                                str(days), "--start", START]),
                      ("scen", ["--scenario", "all"])):
        t = topic_set(f"e2e-stage-{run}-{name}")
        broker.create({t[k]: 1 for k in KINDS})
        cfg = work / f"stage-{name}.yaml"
        cfg.write_text(config_text("stage", t, broker.bootstrap, None, ""))
        t0 = time.monotonic()
        out = subprocess.run([args.bin, "generate", *gen, "--kafka", broker.bootstrap,
                              "--config", str(cfg)], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"generate failed: {out.stderr}")
        m = re.search(r"(\d+) acknowledged, 0 failed \(done\)", out.stderr)
        if not m:
            raise RuntimeError(f"generate did not report its count: {out.stderr}")
        n = int(m.group(1))
        total += n
        log(f"staged {n} {name} events with generate --kafka in "
            f"{time.monotonic() - t0:.1f}s ({' '.join(gen)})")
        staged += [t[k] for k in KINDS]
    return staged, total


def merged(broker: Broker, staged: list[str]) -> list:
    """(timestamp, kind index, key, value) of every staged record, in
    timestamp order (a k-way merge of the sorted staging topics), in memory
    (about 250 bytes per event) so that replays are not limited by reading."""

    def stream(topic: str):
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "e2e-merge",
                      "enable.auto.commit": False, "enable.partition.eof": True,
                      "fetch.max.bytes": 52428800, "max.partition.fetch.bytes": 16777216,
                      "fetch.wait.max.ms": 10})
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        kind = next(i for i, k in enumerate(KINDS) if topic.endswith("." + k))
        stalled = time.monotonic()
        try:
            while True:
                # A short timeout: consume() otherwise waits for the whole
                # batch, which a small topic never fills.
                msgs = c.consume(10000, timeout=0.05)
                if not msgs:
                    if time.monotonic() - stalled > 30:
                        raise RuntimeError(f"no data from {topic} for 30 s")
                    continue
                stalled = time.monotonic()
                for m in msgs:
                    if m.error():
                        if m.error().code() == KafkaError._PARTITION_EOF:
                            return
                        raise RuntimeError(str(m.error()))
                    yield (m.timestamp()[1], kind, m.key(), m.value())
        finally:
            c.close()

    t0 = time.monotonic()
    out = list(heapq.merge(*(stream(t) for t in staged), key=lambda r: r[0]))
    log(f"merged {len(out)} staged events in event-time order in {time.monotonic() - t0:.1f}s")
    return out


class Replayer:
    """Copies the merged staging records into benchmark topics, optionally
    paced, and remembers when the broker acknowledged the first record past
    each day boundary D+1 00:00 + lateness (the latency reference)."""

    def __init__(self, broker: Broker, topics: dict[str, str], partitions: int,
                 idle_s: float = 0.5):
        self.producer = Producer({"bootstrap.servers": broker.bootstrap,
                                  "enable.idempotence": True, "linger.ms": 5,
                                  "batch.num.messages": 10000,
                                  "queue.buffering.max.messages": 1000000})
        self.topics = [topics[k] for k in KINDS]
        self.partitions = partitions
        self.idle_s = idle_s
        self.boundary_acked: dict[int, float] = {}  # day D -> ack time of first event past it
        # Per input partition (kind, p): day D -> the time the partition stopped
        # holding day D back under the watermark rule (docs/runtime.md): the ack
        # of its first record dated D+1 or later (caught up, its tick lets D
        # close), or, when that record came later than idle_timeout after the
        # one before, the moment it went idle (that one's produce time plus
        # idle_timeout; produce, not ack, time: a few ms early, so the figure
        # errs on the high side).
        self.released: dict[tuple[int, int], dict[int, float]] = {}
        self.errors = 0

    def release_times(self) -> dict[int, float]:
        """Day D -> the moment every input partition had released D: the
        earliest an alert about D is possible under the watermark rule."""
        out: dict[int, float] = {}
        for per_day in self.released.values():
            for d, t in per_day.items():
                out[d] = max(out.get(d, 0.0), t)
        # A partition with no record dated after D released it when idle.
        for d in list(out):
            for tp, per_day in self.released.items():
                if d not in per_day:
                    last = self.last_sent.get(tp)
                    if last is not None and last[0] <= d:
                        out[d] = max(out[d], last[1] + self.idle_s)
        return out

    def run(self, records: list, rate: float | None) -> tuple[int, float]:
        """Produces every record (paced at `rate` events/s when given) and
        returns (count, seconds). Only the records that pass a day boundary
        get a delivery callback (per-record callbacks would cap a Python
        producer well below the service's rate); completeness is checked on
        the topics' end offsets instead."""
        n, t0 = 0, time.monotonic()
        next_day = None  # smallest day D whose boundary has not been passed yet

        def on_ack(*marks):
            """A delivery callback: for each (per_day, days, cap), the days not
            marked yet get the acknowledgement time (at most cap)."""
            def cb(err, msg):
                if err is not None:
                    self.errors += 1
                    return
                now = time.time()
                for per_day, days, cap in marks:
                    t = now if cap is None else min(now, cap)
                    for d in days:
                        per_day.setdefault(d, t)
            return cb

        produce, poll = self.producer.produce, self.producer.poll
        topics = self.topics
        parts = self.partitions
        crc32 = zlib.crc32
        self.last_sent = last_sent = {}  # (kind, p) -> (record's day, produce time)
        for ts, kind, key, value in records:
            day = (ts - LATENESS_MS) // DAY_MS - 1  # the last day this event can close
            if next_day is None:
                next_day = day + 1  # days up to `day` hold no event: nothing to close
            marks = []
            if day >= next_day:
                marks.append((self.boundary_acked, range(next_day, day + 1), None))
                next_day = day + 1
            # The partition librdkafka's consistent partitioner picks (CRC32 of
            # the key), chosen here so that the release times are per partition.
            p = crc32(key) % parts if key else 0
            tp = (kind, p)
            rday = ts // DAY_MS
            prev = last_sent.get(tp)
            now = time.time()
            if prev is not None and rday > prev[0]:
                # The days prev[0] .. rday-1 are released by this record, or
                # by the partition turning idle if that came first.
                marks.append((self.released.setdefault(tp, {}), range(prev[0], rday),
                              prev[1] + self.idle_s))
            last_sent[tp] = (rday, now)
            kw = {"on_delivery": on_ack(*marks)} if marks else {}
            while True:
                try:
                    produce(topics[kind], key=key, value=value, timestamp=ts, partition=p, **kw)
                    break
                except BufferError:
                    poll(0.01)
            n += 1
            if n % 200 == 0:
                poll(0)
                if rate:
                    ahead = n / rate - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
        left = self.producer.flush(120)
        secs = time.monotonic() - t0
        self.producer = None  # destroyed now, not retrying after the broker stops
        if left or self.errors:
            raise RuntimeError(f"{left} records not delivered, {self.errors} failed")
        return n, secs


# ------------------------------------------------------------ the service


def http_get(port: int, path: str) -> tuple[int, str]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def metric_sum(text: str, name: str) -> float | None:
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
            seen = True
    return total if seen else None


class Service:
    def __init__(self, args, work: pathlib.Path, app: str, topics: dict[str, str],
                 bootstrap: str, guarantee: str | None):
        self.cfg = work / f"{app}.yaml"
        state = work / f"state-{app}"
        state.mkdir()
        self.cfg.write_text(config_text(app, topics, bootstrap, guarantee, str(state)))
        self.err = work / f"{app}.stderr.log"
        self.proc = subprocess.Popen([args.bin, "run", "--config", str(self.cfg)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.err, "wb"))
        self.port = None
        deadline = time.monotonic() + 30
        while self.port is None:
            self.alive()
            m = PORT_RE.search(self.err.read_text(errors="replace"))
            if m:
                self.port = int(m.group(1))
            elif time.monotonic() > deadline:
                raise RuntimeError("no 'http listening' line")
            else:
                time.sleep(0.05)

    def alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"partnerpulse exited {self.proc.returncode}:\n"
                               + self.err.read_text(errors="replace")[-3000:])

    def metrics(self) -> str:
        try:
            status, body = http_get(self.port, "/metrics")
            return body if status == 200 else ""
        except OSError:
            return ""

    def cpu_seconds(self) -> float:
        fields = pathlib.Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def vm_hwm_kib(self) -> int:
        for line in pathlib.Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return -1

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return -9
        return self.proc.returncode


class Lag:
    """The group's committed offsets against the high watermarks: of the
    input topics, and of the runtime's repartition topic (`<app>-repartition`,
    read by the same group) once it exists — with the exactly-once topology,
    input lag 0 only means every event was forwarded to it."""

    def __init__(self, broker: Broker, group: str, inputs: list[str], partitions: int):
        self.broker = broker
        self.c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                           "enable.auto.commit": False})
        self.tps = [TopicPartition(t, p) for t in inputs for p in range(partitions)]
        self.high = None
        self.internal = f"{group}-repartition"
        self.internal_tps: list[TopicPartition] = []
        self.looked = 0.0

    def lag(self) -> int:
        if self.high is None:
            self.high = {(tp.topic, tp.partition):
                         self.c.get_watermark_offsets(tp, timeout=10)[1] for tp in self.tps}
        committed = self.c.committed(self.tps, timeout=10)
        return sum(self.high[(tp.topic, tp.partition)] - max(tp.offset, 0) for tp in committed)

    def internal_lag(self) -> int:
        """Lag on the repartition topic (0 when there is none)."""
        if not self.internal_tps and time.monotonic() - self.looked > 1.0:
            self.looked = time.monotonic()
            md = self.broker.admin.list_topics(timeout=10).topics.get(self.internal)
            if md is not None:
                self.internal_tps = [TopicPartition(self.internal, p) for p in md.partitions]
        total = 0
        for tp in self.c.committed(self.internal_tps, timeout=10) if self.internal_tps else []:
            high = self.c.get_watermark_offsets(tp, timeout=10, cached=False)[1]
            # With transactions the end offset includes a commit marker per
            # transaction; a committed offset at most one short of it is caught up.
            total += max(0, high - max(tp.offset, 0) - 1)
        return total

    def close(self) -> None:
        self.c.close()


def supports_guarantee(binary: str) -> bool:
    ref = subprocess.run([binary, "config-reference"], capture_output=True, text=True).stdout
    return "processing.guarantee" in ref


def throughput_run(args, broker: Broker, work: pathlib.Path, topics: dict[str, str],
                   n: int, guarantee: str | None, i: int) -> dict:
    app = f"e2e-tput-{uuid.uuid4().hex[:6]}"
    t = dict(topics, alerts=f"{app}.alerts", dlq=f"{app}.dlq")
    broker.create({t["alerts"]: 1, t["dlq"]: 1})
    lag = Lag(broker, app, [topics[k] for k in KINDS], args.partitions)
    total_lag = lag.lag()
    svc = Service(args, work, app, t, broker.bootstrap, guarantee)
    t_start = time.monotonic()
    samples = []      # (t, events processed), from partnerpulse_events_total
    off_samples = []  # (t, records committed), from the group's offsets: the fallback
    done_at = None
    stuck = None  # (since, events_total) while lag is 0 but events are missing
    try:
        while True:
            svc.alive()
            ev = metric_sum(svc.metrics(), "partnerpulse_events_total")
            now = time.monotonic()
            if ev is not None:
                samples.append((now, ev))
            left = lag.lag()
            off_samples.append((now, total_lag - left))
            # Done: inputs consumed, the repartition topic consumed, and every
            # event counted (applied or dead-lettered) where the binary says so.
            if left == 0 and lag.internal_lag() == 0:
                dead = metric_sum(svc.metrics(), "partnerpulse_dead_letters_total") or 0
                if ev is None or ev + dead >= n:
                    done_at = now
                    break
                # Everything consumed but not every event counted: give the
                # count 10 s to move, then report it rather than wait forever.
                if stuck is None or stuck[1] != ev:
                    stuck = (now, ev)
                elif now - stuck[0] > 10:
                    log(f"WARNING run {i}: lag 0 but events_total stays at {ev:.0f} + {dead:.0f}"
                        f" dead letters of {n} events")
                    done_at = stuck[0]
                    break
            if now - t_start > args.timeout:
                raise RuntimeError(f"run {i}: not caught up in {args.timeout}s "
                                   f"(lag {lag.lag()} of {total_lag})")
            time.sleep(0.05)
        cpu = svc.cpu_seconds()
        hwm = svc.vm_hwm_kib()
        text = svc.metrics()
        ev_final = metric_sum(text, "partnerpulse_events_total")
        holds = metric_sum(text, "partnerpulse_partition_holds_total")
        records = metric_sum(text, "partnerpulse_records_total")
        dead = metric_sum(text, "partnerpulse_dead_letters_total")
    finally:
        rc = svc.stop()
        lag.close()

    source = "events_total"
    if not samples or samples[-1][1] < 0.9 * n:
        samples, source = off_samples, "committed offsets"

    def when(frac: float) -> float | None:
        """When `frac` of the events were processed (linear between samples)."""
        prev = None
        for ts, v in samples:
            if v >= frac * n:
                if prev is None or v == prev[1]:
                    return ts
                return prev[0] + (ts - prev[0]) * (frac * n - prev[1]) / (v - prev[1])
            prev = (ts, v)
        return None

    t10, t90 = when(0.1), when(0.9)
    first = next((ts for ts, v in samples if v > 0), t_start)
    sustained = 0.8 * n / (t90 - t10) if t10 and t90 and t90 > t10 else float("nan")
    r = {"run": i, "sustained_eps": sustained, "end_to_end_eps": n / (done_at - first),
         "wall_s": done_at - t_start, "cpu_s": cpu, "cpu_s_per_million": cpu / n * 1e6,
         "vm_hwm_mib": hwm / 1024, "events_metric": ev_final, "exit": rc, "source": source,
         "holds": holds, "records": records, "dead_letters": dead}
    log(f"throughput run {i}: sustained {sustained:,.0f} ev/s, first event to lag 0 "
        f"{r['end_to_end_eps']:,.0f} ev/s, {r['wall_s']:.1f}s wall (start included), "
        f"CPU {cpu:.1f}s = {r['cpu_s_per_million']:.2f} s/M events, VmHWM {r['vm_hwm_mib']:.0f} MiB"
        f" (progress from {source}; events_total {ev_final}, records_total {records}, "
        f"partition holds {holds}, dead letters {dead}, exit {rc})")
    return r


def strip_logical(node):
    if isinstance(node, dict):
        if "logicalType" in node and isinstance(node.get("type"), str):
            return node["type"]
        return {k: strip_logical(v) for k, v in node.items()}
    if isinstance(node, list):
        return [strip_logical(v) for v in node]
    return node


def latency_run(args, broker: Broker, work: pathlib.Path, records: list, rate: float,
                guarantee: str | None) -> dict:
    app = f"e2e-lat-{uuid.uuid4().hex[:6]}"
    t = topic_set(app)
    broker.create({**{t[k]: args.partitions for k in KINDS}, t["alerts"]: 1, t["dlq"]: 1})
    alert_schema = fastavro.parse_schema(strip_logical(json.loads(
        (ROOT / "schemas/alert.avsc").read_text())))
    seen: list[tuple[float, int]] = []  # (receive time, evaluated day)
    stop = threading.Event()

    def read_alerts():
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": app + "-reader",
                      "isolation.level": "read_committed", "enable.auto.commit": False,
                      "fetch.wait.max.ms": 10})
        c.assign([TopicPartition(t["alerts"], 0, OFFSET_BEGINNING)])
        while not stop.is_set():
            for m in c.consume(100, timeout=0.05):
                now = time.time()
                if m.error():
                    continue
                a = fastavro.schemaless_reader(io.BytesIO(m.value()[5:]), alert_schema)
                seen.append((now, a["last_evaluated_at"] // DAY_MS))
        c.close()

    reader = threading.Thread(target=read_alerts, daemon=True)
    reader.start()
    svc = Service(args, work, app, t, broker.bootstrap, guarantee)
    try:
        deadline = time.monotonic() + 60
        while http_get(svc.port, "/readyz")[0] != 200:
            svc.alive()
            if time.monotonic() > deadline:
                raise RuntimeError("partnerpulse not ready in 60s")
            time.sleep(0.1)
        rep = Replayer(broker, t, args.partitions, idle_seconds())
        n, secs = rep.run(records, rate)
        broker.check_count([t[k] for k in KINDS], args.partitions, n)
        log(f"paced replay: {n} events in {secs:.1f}s = {n / secs:,.0f} ev/s (target {rate:,.0f})")
        # The last alerts: wait until none arrive for 10 s.
        last = len(seen)
        quiet = time.monotonic()
        while time.monotonic() - quiet < 10:
            time.sleep(0.5)
            svc.alive()
            if len(seen) != last:
                last, quiet = len(seen), time.monotonic()
        cpu, hwm = svc.cpu_seconds(), svc.vm_hwm_kib()
        text = svc.metrics()
        txns = metric_sum(text, 'partnerpulse_transactions_total{result="committed"}')
        csum = metric_sum(text, "partnerpulse_commit_seconds_sum")
        ccount = metric_sum(text, "partnerpulse_commit_seconds_count")
        if ccount:
            log(f"commits: {ccount:.0f} in the run ({ccount / secs:.1f}/s during the replay), "
                f"mean {1000 * csum / ccount:.0f} ms; transactions committed: {txns or 0:.0f}")
    finally:
        stop.set()
        svc.stop()
        reader.join(10)
    released = rep.release_times()

    def pctl(ref_of) -> list[float]:
        out = []
        for recv, d in seen:
            ref = ref_of(d)
            if ref is not None:
                out.append((recv - ref) * 1000.0)
        return sorted(out)

    lat = pctl(rep.boundary_acked.get)
    pipe = pctl(released.get)
    if not lat or not pipe:
        raise RuntimeError(f"no alert with a reference time ({len(seen)} alerts read)")
    r = {"alerts": len(seen), "rate": n / secs, "cpu_s": cpu, "vm_hwm_mib": hwm / 1024,
         **quantiles(lat), **quantiles(pipe, "pipe_"), "lat": lat, "pipe": pipe}
    (work / f"latency-{app}.json").write_text(json.dumps(
        {"ref_ack": rep.boundary_acked, "released": released, "alerts": seen}, default=str))
    log(f"latency: {len(lat)} alert records (of {len(seen)}), p50 {r['p50_ms']:.0f} ms, "
        f"p99 {r['p99_ms']:.0f} ms, max {r['max_ms']:.0f} ms at {r['rate']:,.0f} ev/s")
    log(f"latency from release: {len(pipe)} alert records, p50 {r['pipe_p50_ms']:.0f} ms, "
        f"p99 {r['pipe_p99_ms']:.0f} ms, max {r['pipe_max_ms']:.0f} ms")
    return r


def quantiles(v: list[float], prefix: str = "") -> dict:
    """p50 / p99 / max of the sorted latencies v (p99 is the maximum below 100)."""
    q = lambda p: v[min(len(v) - 1, int(p * len(v)))]  # noqa: E731
    return {prefix + "measured": len(v), prefix + "p50_ms": q(0.5), prefix + "p99_ms": q(0.99),
            prefix + "max_ms": v[-1]}


def idle_seconds() -> float:
    """processing.idle_timeout of the measured service (--set, or the default)."""
    v = EXTRA.get("processing", {}).get("idle_timeout", "500ms")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)?", str(v))
    if not m:
        raise SystemExit(f"cannot read processing.idle_timeout={v!r}")
    return float(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=str(ROOT / "build/app/partnerpulse"))
    ap.add_argument("--guarantee", default="exactly_once",
                    choices=["exactly_once", "at_least_once"],
                    help="processing.guarantee (ignored, with a note, by a binary without it)")
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=3, help="throughput runs (median printed)")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--port", type=int, default=39892, help="port of the benchmark's own broker")
    ap.add_argument("--bootstrap", help="use this running broker instead of starting one")
    ap.add_argument("--no-latency", action="store_true", help="skip the paced latency run")
    ap.add_argument("--latency-runs", type=int, default=1,
                    help="paced runs; their alerts are pooled for the percentiles")
    ap.add_argument("--keep", action="store_true",
                    help="keep the work dir (configs, logs, state) instead of removing it")
    ap.add_argument("--rate", type=float, default=None,
                    help="skip the throughput runs; one paced latency run at this rate (events/s)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per throughput run")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="extra configuration of the measured service, e.g. "
                         "processing.idle_timeout=200ms or kafka.fetch.wait.max.ms=50")
    args = ap.parse_args()
    for item in args.set:
        key, _, value = item.partition("=")
        sec, _, k = key.partition(".")
        if not (sec and k and value):
            ap.error(f"--set {item}: expected SECTION.KEY=VALUE")
        EXTRA.setdefault(sec, {})[k] = value

    guarantee = args.guarantee if supports_guarantee(args.bin) else None
    if guarantee is None:
        log(f"note: {args.bin} has no processing.guarantee: running its at-least-once pipeline")
    broker = Broker(args.port, args.bootstrap)
    broker.start()
    work = pathlib.Path(tempfile.mkdtemp(prefix="pp-e2e-"))
    try:
        log(f"binary {args.bin}, guarantee {guarantee or 'at_least_once (only mode)'}, "
            f"{os.cpu_count()} CPUs, broker {broker.bootstrap}, work dir {work}")
        staged, n = stage(args, broker, work)
        topics = topic_set(f"e2e-in-{uuid.uuid4().hex[:6]}")
        broker.create({topics[k]: args.partitions for k in KINDS})
        records = merged(broker, staged)
        assert len(records) == n, (len(records), n)
        if not args.rate:
            rep = Replayer(broker, topics, args.partitions)
            copied, secs = rep.run(records, None)
            broker.check_count([topics[k] for k in KINDS], args.partitions, n)
            log(f"preloaded {n} events into {args.partitions}-partition topics in {secs:.1f}s")
        if args.rate:
            med = {"sustained_eps": 2 * args.rate}
        else:
            runs = [throughput_run(args, broker, work, topics, n, guarantee, i + 1)
                    for i in range(args.runs)]
            med = {k: statistics.median(r[k] for r in runs)
                   for k in ("sustained_eps", "end_to_end_eps", "cpu_s_per_million", "vm_hwm_mib")}
            log(f"THROUGHPUT (median of {len(runs)}, {n} events): sustained "
                f"{med['sustained_eps']:,.0f} ev/s; first event to lag 0 "
                f"{med['end_to_end_eps']:,.0f} ev/s; {med['cpu_s_per_million']:.2f} CPU-s per "
                f"million events; peak RSS {med['vm_hwm_mib']:.0f} MiB")
        if not args.no_latency:
            lruns = [latency_run(args, broker, work, records, med["sustained_eps"] / 2, guarantee)
                    for _ in range(args.latency_runs)]
            # Every alert of every paced run pooled: one run has ~32 alerts,
            # so its p99 is its maximum; pooled runs make p99 a percentile.
            lat = {"rate": statistics.median(r["rate"] for r in lruns),
                   **quantiles(sorted(x for r in lruns for x in r["lat"])),
                   **quantiles(sorted(x for r in lruns for x in r["pipe"]), "pipe_")}
            log(f"LATENCY (paced at {lat['rate']:,.0f} ev/s, {lat['measured']} alert records): "
                f"p50 {lat['p50_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms, max {lat['max_ms']:.0f} ms")
            log(f"LATENCY FROM RELEASE ({lat['pipe_measured']} alert records): "
                f"p50 {lat['pipe_p50_ms']:.0f} ms, p99 {lat['pipe_p99_ms']:.0f} ms, "
                f"max {lat['pipe_max_ms']:.0f} ms")
    finally:
        if broker.external and broker.admin is not None:
            broker.delete_new_topics()
        broker.stop()
        if args.keep:
            log(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
