"""Exactly-once under SIGKILL: the kill test of the runtime issue.

A fixed scenario (`partnerpulse generate --scenario all`, deterministic: MODEL.md §3's
stories, about 21k events over 15 months, 32 alert transitions) is produced to three input
topics of 3 partitions each, keyed by EVENT ID (not by customer), so a customer's events are
spread over every partition and the runtime's repartitioning is exercised. Every topic takes
every event type (the service accepts any type on any input topic): the topic too is chosen
by event id, so that no partition sits empty for weeks of event time (Feed.topic_for says
why that matters). The feed is one event-time day per chunk, paced, in file order.

1. `test_backtest_does_not_depend_on_lateness` — offline: backtest at the test's
   allowed_lateness (48h) and at 240h give the same transitions. The file is in event-time
   order, so lateness only changes how many LATER events the model has seen when it
   evaluates a day; if that changes a day's result, a live run cannot match backtest
   (it applies other partitions' events up to the alignment horizon ahead).
2. `test_clean_run_matches_backtest` — one `partnerpulse run`, no faults: its
   read_committed alerts topic must equal `partnerpulse backtest` on the same events.
3. `test_kill[dynamic]` / `test_kill[static]` — rounds of chaos on another application id:
   2–3 instances, after a random 1–6 s a random one is SIGKILLed (now and then SIGTERMed,
   which must exit 0), sometimes a fresh instance is started at once, while the input is
   fed; then the survivors run to the end. `static` gives every instance slot a
   group.instance.id and its own state.dir, reused by the instance restarted in that slot.
   The read_committed alerts topic must equal the clean run's and backtest's as a multiset
   (no transition missing, none duplicated), and the partner state served by
   `GET /v1/partners` (every page) by the one instance holding the partners must equal the
   clean run's.

Every decision of the chaos comes from one seed: `PP_KILL_SEED` or a random one, printed
first together with a timeline of every start, kill and stop, and every instance's
partition assignments and revocations from its log (shown with a failing test, or always
with `pytest -s`), so a failure can be replayed with the same decisions (`PP_KILL_SEED=N`;
wall-clock timing still differs run to run).

"Done" is never a sleep: the group's committed offsets reach the high watermark of every
input partition, the event-time watermark on /metrics reaches the last event (and
partnerpulse_last_evaluated_day, when exported, the last closable day), and the
read_committed alerts topic then stays unchanged for QUIET_S seconds.

The service can only evaluate the days the final watermark (the last event's time, once
every input is idle) has closed, i.e. every day D with D+1 00:00 + allowed_lateness <= that
time; backtest also closes the last event days. Expectations are therefore backtest's
transitions up to the last day the service can close (printed as `closable_through`).

Environment (on top of conftest's): PP_KILL_SEED (int) fixes the seed; PP_KILL_ROUNDS
(default 6) is the number of chaos rounds; PP_EOS_FEED_SECONDS (default 4 s per round) how
long the chaos run's feed takes; PP_EOS_LOG_LEVEL (default info) is the instances' log level
(debug adds the runtime's status line every 5 s); PP_EOS_KEY=customer_id and PP_EOS_SPREAD=0 key
and route the input like `generate --kafka` (diagnosis only). Runtime keys
(processing.guarantee: exactly_once, commit_interval 100ms, state.dir) are written only when
the binary knows them (`config-reference`); otherwise the at-least-once pipeline runs and
the kill tests are expected to fail.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import pathlib
import random
import re
import signal
import subprocess
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from conftest import (
    EPOCH,
    MS,
    PartnerPulse,
    TopicReader,
    client_conf,
    create_topics,
    unique_name,
    wait_until,
)
from test_backtest import file_to_avro

SCENARIO_ARGS = ["--scenario", "all", "--deterministic"]
TENANT = "eos"
ALLOWED_LATENESS_MS = 48 * 3600 * 1000
ALLOWED_LATENESS = "48h"
INPUT_PARTITIONS = 3
QUIET_S = 5.0  # the alerts topic must stay unchanged this long at the end
COMPLETE_TIMEOUT_S = 75  # after the feed: bounds a failing run (the file must stay < 6 min)
PORT_RE = re.compile(r'msg="http listening" address=\S+ port=(\d+)')
ASSIGN_RE = re.compile(r'msg="partition (assigned|revoked)" topic=(\S+) partition=(\d+)')
DAY_MS = 86400 * 1000


def log(msg: str) -> None:
    """Timeline output: captured by pytest, shown with a failing test."""
    print(f"[eos-kill {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------- the events


@dataclass
class Scenario:
    path: pathlib.Path
    events: list[tuple[str, dict]]  # (kind, Avro record), file order
    last_event_ms: int

    @property
    def closable_through(self) -> dt.date:
        """The last day the service can evaluate: its final watermark is the
        last event time (every input idle), and day D closes at D+1 00:00 +
        allowed lateness."""
        last = (EPOCH + (self.last_event_ms - ALLOWED_LATENESS_MS) * MS).date()
        return last - dt.timedelta(days=1)


@pytest.fixture(scope="module")
def scenario(pp_env, tmp_path_factory) -> Scenario:
    path = tmp_path_factory.mktemp("eos-events") / "events.jsonl"
    subprocess.run([str(pp_env.bin), "generate", *SCENARIO_ARGS, "--out", str(path)],
                   check=True, capture_output=True, timeout=120)
    events = [file_to_avro(json.loads(line))
              for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    times = [rec["occurred_at"] for _, rec in events]
    # The chunked production below relies on it: a chunk never goes back in
    # event time, so no event can arrive behind a watermark an idle partition
    # let advance (docs/architecture.md#event-time).
    assert times == sorted(times), "generate wrote events out of event-time order"
    return Scenario(path, events, max(times))


# The partition key of the input records. event_id spreads a customer's
# events over every partition (the point of the test); PP_EOS_KEY=customer_id
# keys them like `generate --kafka` does, to tell a repartitioning problem
# from another when diagnosing.
KEY_FIELD = os.environ.get("PP_EOS_KEY", "event_id")
# PP_EOS_SPREAD=0 sends each event type to its own topic (see Feed.topic_for).
SPREAD_TOPICS = os.environ.get("PP_EOS_SPREAD", "1") != "0"


@dataclass
class RunTopics:
    """One run's topics: its own inputs (so a run can be fed in chunks while
    it runs) and outputs."""
    application_id: str
    deals: str
    licenses: str
    support: str
    alerts: str
    dlq: str

    @property
    def inputs(self) -> list[str]:
        return [self.deals, self.licenses, self.support]


def make_run_topics(admin, label: str) -> RunTopics:
    base = unique_name(f"pp-eos-{label}")
    t = RunTopics(base, f"{base}.deals", f"{base}.licenses", f"{base}.support",
                  f"{base}.alerts", f"{base}.dlq")
    # Input records are timestamped with their event time (2024-2025):
    # without retention.ms=-1 the broker's retention check (every 5 min, 7
    # days) may delete them before they are consumed.
    create_topics(admin, {n: INPUT_PARTITIONS for n in t.inputs},
                  config={"retention.ms": "-1"})
    create_topics(admin, {t.alerts: 1, t.dlq: 1})
    return t


def delete_run_topics(admin, t: RunTopics) -> None:
    if os.environ.get("PP_IT_KEEP_TOPICS") == "1":
        return
    try:
        names = [n for n in admin.list_topics(timeout=10).topics
                 if n.startswith(t.application_id)]
        for fut in admin.delete_topics(names, operation_timeout=30).values():
            try:
                fut.result(timeout=30)
            except KafkaException:
                pass
    except KafkaException:
        pass


class Feed:
    """Produces the scenario's events to a run's input topics, keyed by
    event_id, Kafka timestamp = occurred_at, in file order, in chunks. The
    producer is idempotent, so a chunk lands exactly once and in order."""

    def __init__(self, bootstrap: str, schemas, scenario: Scenario, t: RunTopics):
        self.schemas = schemas
        self.scenario = scenario
        self.topic = {"deal": t.deals, "license_consumption": t.licenses, "support": t.support}
        self.inputs = t.inputs
        self.producer = Producer(client_conf(bootstrap, **{
            "enable.idempotence": True, "linger.ms": 5}))
        self.sent = 0
        self.errors: list[str] = []
        self.thread: threading.Thread | None = None
        self.failure: BaseException | None = None

    def topic_for(self, kind: str, rec: dict) -> str:
        """Every input topic takes every event type (docs/configuration.md):
        spreading all events over the three topics by event id gives every
        input partition a steady share of every day. A topic of its own for
        the few dozen deals would leave its partitions empty for weeks of
        event time, idle by the watermark's rule, and a deal arriving on an
        idle partition can land behind the watermark and be dead-lettered
        (too_late, partition_skew) depending on fetch timing: a property of
        event-time idleness, not what this test is about."""
        if not SPREAD_TOPICS:
            return self.topic[kind]
        return self.inputs[zlib.crc32(rec["event_id"].encode()) % len(self.inputs)]

    def _on_delivery(self, err, msg) -> None:
        if err is not None:
            self.errors.append(f"{msg.topic()}: {err}")

    def produce(self, upto: int) -> None:
        """Produces events [sent, upto) and waits until all are acknowledged."""
        for kind, rec in self.scenario.events[self.sent:upto]:
            while True:
                try:
                    self.producer.produce(self.topic_for(kind, rec), key=rec[KEY_FIELD],
                                          value=self.schemas.encode(kind, rec),
                                          timestamp=rec["occurred_at"],
                                          on_delivery=self._on_delivery)
                    break
                except BufferError:
                    self.producer.poll(0.05)
            self.producer.poll(0)
        left = self.producer.flush(60)
        assert left == 0, f"{left} input records not acknowledged after 60 s"
        assert not self.errors, f"input delivery failed: {self.errors[:5]}"
        self.sent = max(self.sent, upto)

    @property
    def done(self) -> bool:
        return self.sent >= len(self.scenario.events)

    def start_paced(self, seconds: float) -> None:
        """Produces the whole scenario in a thread, one event-time day per
        chunk, spread over about `seconds` (so kills land while events
        flow). Day-sized chunks bound how far one partition's records can
        trail another's: less than the allowed lateness, so no event is late
        whatever partition the consumer serves first (module docstring)."""
        ev = self.scenario.events
        bounds = [i for i in range(1, len(ev))
                  if ev[i][1]["occurred_at"] // DAY_MS != ev[i - 1][1]["occurred_at"] // DAY_MS]
        bounds.append(len(ev))
        interval_s = seconds / len(bounds)
        self.chunks = len(bounds)

        def run() -> None:
            try:
                for b in bounds:
                    t0 = time.monotonic()
                    self.produce(b)
                    time.sleep(max(0.0, interval_s - (time.monotonic() - t0)))
            except BaseException as e:  # reported by join()
                self.failure = e

        self.thread = threading.Thread(target=run, name="eos-feed", daemon=True)
        self.thread.start()

    def join(self, timeout: float) -> None:
        if self.thread is not None:
            self.thread.join(timeout)
            assert not self.thread.is_alive(), "the input feed did not finish"
        if self.failure is not None:
            raise AssertionError(f"producing the input failed: {self.failure}")
        assert self.done, f"only {self.sent} of {len(self.scenario.events)} events produced"


# ----------------------------------------------------------------- alerts


def iso_ms(s: str | None) -> int | None:
    if s is None:
        return None
    t = dt.datetime.strptime(s.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S%z")
    return (t - EPOCH) // MS


def day_of_ms(ms: int) -> str:
    return (EPOCH + ms * MS).date().isoformat()


# The compared part of a transition: everything the alert record carries but
# details_json (compared separately, it is the whole explanation document).
VIEW_FIELDS = ("evaluated", "alert_id", "status", "severity", "rule_id", "scope", "partner_id",
               "customer_id", "first_seen_at", "fired_at", "reopen_count", "parent_alert_id",
               "value", "threshold", "window_days", "summary")


def view_of_record(a: dict) -> tuple:
    """A decoded alert record -> its comparable tuple."""
    v = dict(a, evaluated=day_of_ms(a["last_evaluated_at"]))
    return tuple(v[f] for f in VIEW_FIELDS)


def view_of_backtest(doc: dict) -> tuple:
    """A backtest jsonl document (the same document as details_json) -> the
    same tuple as view_of_record."""
    v = dict(doc, evaluated=day_of_ms(iso_ms(doc["last_evaluated_at"])),
             first_seen_at=iso_ms(doc["first_seen_at"]), fired_at=iso_ms(doc["fired_at"]))
    return tuple(v[f] for f in VIEW_FIELDS)


def transition_id(view: tuple) -> tuple:
    """What makes one transition unique: alert, status, severity, day."""
    d = dict(zip(VIEW_FIELDS, view))
    return (d["alert_id"], d["status"], d["severity"], d["evaluated"])


def describe_view(view: tuple) -> str:
    d = dict(zip(VIEW_FIELDS, view))
    return (f"{d['evaluated']} {d['status']:<8} {d['severity']:<8} {d['rule_id']:<18} "
            f"{d['partner_id']}/{d['customer_id'] or '*'} value={d['value']!r} "
            f"threshold={d['threshold']!r} reopen={d['reopen_count']} "
            f"alert_id={d['alert_id']}")


def multiset_diff(expected: list[tuple], got: list[tuple], exp_name: str,
                  got_name: str) -> str:
    """'' when equal as multisets, else a readable account: transitions
    present on both sides with different fields (only those fields shown),
    then those missing from got, then those extra in it."""
    e, g = Counter(expected), Counter(got)
    missing, extra = e - g, g - e
    if not missing and not extra:
        return ""
    lines = [f"{got_name} ({len(got)} transitions) != {exp_name} ({len(expected)}):"]
    by_tid = {}
    for v in extra.elements():
        by_tid.setdefault(transition_id(v), []).append(v)
    changed = []
    for v in sorted(missing.elements()):
        cands = by_tid.get(transition_id(v))
        if cands:
            w = cands.pop(0)
            changed.append((v, w))
            missing[v] -= 1
            extra[w] -= 1
    missing, extra = +missing, +extra
    if changed:
        lines.append(f"  same transition, different fields: {len(changed)}")
        for v, w in changed:
            a, b = dict(zip(VIEW_FIELDS, v)), dict(zip(VIEW_FIELDS, w))
            lines.append(f"    {describe_view(v)}")
            for k in VIEW_FIELDS:
                if a[k] != b[k]:
                    lines.append(f"        {k}: {exp_name} {a[k]!r} / {got_name} {b[k]!r}")
    for title, c in ((f"missing from {got_name}", missing), (f"extra in {got_name}", extra)):
        if c:
            lines.append(f"  {title}: {sum(c.values())}")
            for v in sorted(c):
                lines.append(f"    {'%dx ' % c[v] if c[v] > 1 else ''}{describe_view(v)}")
    return "\n".join(lines)


def duplicates(views: list[tuple]) -> list[str]:
    c = Counter(transition_id(v) for v in views)
    return [f"{n}x {tid}" for tid, n in sorted(c.items()) if n > 1]


def backtest(pp_env, scenario: Scenario, config: pathlib.Path) -> list[dict]:
    run = subprocess.run([str(pp_env.bin), "backtest", "--events", str(scenario.path),
                          "--config", str(config), "--format", "jsonl"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"backtest failed ({run.returncode}): {run.stderr}"
    return [json.loads(line) for line in run.stdout.splitlines() if line.strip()]


@dataclass
class Expected:
    docs: list[dict]          # backtest documents up to closable_through
    views: list[tuple]
    closable_through: dt.date
    dropped: int              # backtest transitions on later days


@pytest.fixture(scope="module")
def expected(pp_env, scenario: Scenario, tmp_path_factory) -> Expected:
    cfg = tmp_path_factory.mktemp("eos-backtest") / "backtest.yaml"
    cfg.write_text(render_eos_config(
        application_id="backtest", topics=RunTopics("backtest", "d", "l", "s", "a", "q"),
        bootstrap="127.0.0.1:1", state_dir=None, guarantee=None), encoding="utf-8")
    docs = backtest(pp_env, scenario, cfg)
    last = scenario.closable_through.isoformat()
    kept = [d for d in docs if d["last_evaluated_at"][:10] <= last]
    log(f"backtest: {len(docs)} transitions, {len(kept)} on days the service can close "
        f"(closable_through={last}, last event {day_of_ms(scenario.last_event_ms)})")
    assert len(kept) >= 10, "the scenario should give a meaningful number of transitions"
    return Expected(kept, [view_of_backtest(d) for d in kept], scenario.closable_through,
                    len(docs) - len(kept))


# ------------------------------------------------------------ the instances


def runtime_keys_supported(pp_env) -> bool:
    """Whether this binary knows processing.guarantee / state.dir (the
    exactly-once runtime). Without them the harness still runs, at-least-once."""
    ref = subprocess.run([str(pp_env.bin), "config-reference"], capture_output=True, text=True,
                         timeout=30).stdout
    return "processing.guarantee" in ref and "state.dir" in ref


def render_eos_config(*, application_id: str, topics: RunTopics, bootstrap: str,
                      state_dir: pathlib.Path | None, guarantee: str | None,
                      kafka: dict[str, str] | None = None) -> str:
    processing = f"  allowed_lateness: {ALLOWED_LATENESS}\n"
    state = ""
    if guarantee is not None:
        processing += f"  guarantee: {guarantee}\n  commit_interval: 100ms\n"
        state = f"state:\n  dir: {state_dir}\n"
    extra = "".join(f"  {k}: {v}\n" for k, v in (kafka or {}).items())
    return (
        f"application_id: {application_id}\n"
        f"tenant: {TENANT}\n"
        "topics:\n"
        f"  deals: {topics.deals}\n"
        f"  licenses: {topics.licenses}\n"
        f"  support: {topics.support}\n"
        f"  alerts: {topics.alerts}\n"
        f"  dlq: {topics.dlq}\n"
        "processing:\n" + processing + state +
        "rules:\n  engine: model\n"
        f"log:\n  level: {os.environ.get('PP_EOS_LOG_LEVEL', 'info')}\n"
        "http:\n  listen: 127.0.0.1:0\n"
        "kafka:\n"
        f"  bootstrap.servers: {bootstrap}\n"
        "  statistics.interval.ms: 1000\n" + extra
    )


def http_get(port: int, path: str, timeout: float = 5) -> tuple[int, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def scrape(port: int) -> dict[str, float]:
    """/metrics -> {sample name with labels: value} (only what we read)."""
    status, body = http_get(port, "/metrics")
    assert status == 200, f"/metrics answered {status}"
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


@dataclass
class Instance:
    pp: PartnerPulse
    slot: str
    port: int | None = None
    killed: bool = False

    @property
    def alive(self) -> bool:
        return self.pp.proc is not None and self.pp.proc.poll() is None

    def log_text(self) -> str:
        """The whole stderr (conftest's stderr() keeps only the tail)."""
        try:
            return self.pp.stderr_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def http_port(self, timeout: float = 30) -> int:
        if self.port is None:
            def found():
                assert self.alive, f"{self.pp.name} exited ({self.pp.proc.returncode}):\n" \
                                   f"{self.pp.stderr()}"
                m = PORT_RE.search(self.log_text())
                return int(m.group(1)) if m else None
            self.port = wait_until(found, timeout, lambda: f"{self.pp.name}: no port logged")
        return self.port


class Fleet:
    """The `partnerpulse run` processes of one run (one application id)."""

    def __init__(self, pp_env, workdir: pathlib.Path, topics: RunTopics, guarantee: str | None,
                 static: bool, started: list, label: str):
        self.pp_env = pp_env
        self.label = label
        self.workdir = workdir
        self.topics = topics
        self.guarantee = guarantee
        self.static = static
        self.started = started  # conftest's report hook shows their stderr
        self.instances: list[Instance] = []
        self.t0 = time.monotonic()

    def event(self, msg: str) -> None:
        log(f"t={time.monotonic() - self.t0:6.1f}s {msg}")

    def live(self) -> list[Instance]:
        return [i for i in self.instances if i.alive]

    def start(self, slot: str | None = None) -> Instance:
        n = len(self.instances) + 1
        name = f"{self.label}-{n}"
        slot = slot or f"s{n}"
        # state.dir per process; under static membership per slot (a restarted
        # member finds its snapshot where it left it).
        state_dir = self.workdir / f"state-{slot if self.static else name}"
        state_dir.mkdir(exist_ok=True)
        # A SIGKILLed member leaves the group only when its session times out:
        # the broker's minimum (6 s) keeps the test short.
        kafka = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"}
        if self.static:
            kafka["group.instance.id"] = f"{self.topics.application_id}-{slot}"
        cfg = self.workdir / f"{name}.yaml"
        cfg.write_text(render_eos_config(application_id=self.topics.application_id,
                                         topics=self.topics, bootstrap=self.pp_env.bootstrap,
                                         state_dir=state_dir, guarantee=self.guarantee,
                                         kafka=kafka), encoding="utf-8")
        pp = PartnerPulse(self.pp_env.bin, cfg, self.workdir, name)
        self.started.append(pp)
        pp.start()
        inst = Instance(pp, slot)
        self.instances.append(inst)
        inst.http_port()  # logged at start-up, before the group is joined
        self.event(f"start {name} pid={pp.proc.pid} slot={slot} (live: "
                   f"{', '.join(i.pp.name for i in self.live())})")
        return inst

    def sigkill(self, inst: Instance) -> None:
        if inst.alive:
            inst.pp.proc.send_signal(signal.SIGKILL)
            inst.pp.proc.wait(timeout=10)
        inst.killed = True
        self.event(f"SIGKILL {inst.pp.name} pid={inst.pp.proc.pid} (live: "
                   f"{', '.join(i.pp.name for i in self.live()) or 'none'})")

    def sigterm(self, inst: Instance) -> None:
        """A graceful stop: must exit 0 (docs/runtime.md: finish the
        transaction, snapshot, leave the group)."""
        rc = inst.pp.stop(timeout=30)
        inst.killed = True
        self.event(f"SIGTERM {inst.pp.name} pid={inst.pp.proc.pid}: exit {rc} (live: "
                   f"{', '.join(i.pp.name for i in self.live()) or 'none'})")
        assert rc == 0, f"{inst.pp.name} exited {rc} on SIGTERM:\n{inst.pp.stderr()}"

    def check_no_crash(self) -> None:
        """Every instance not killed by us is alive."""
        for i in self.instances:
            if not i.killed and not i.alive:
                raise AssertionError(f"{i.pp.name} exited by itself with status "
                                     f"{i.pp.proc.returncode}:\n{i.pp.stderr()}")

    def stop_all(self) -> None:
        for i in self.live():
            i.pp.stop(timeout=30)

    def logs(self, limit: int = 4000) -> str:
        return "\n".join(f"--- {i.pp.name} stderr (last {limit} chars) ---\n"
                         f"{i.pp.stderr()[-limit:]}" for i in self.instances)

    def rebalances(self) -> str:
        """Every instance's assignment changes, from its log."""
        lines = []
        for i in self.instances:
            got = Counter()
            for m in ASSIGN_RE.finditer(i.log_text()):
                got[m.group(1)] += 1
            state = "killed" if i.killed else ("running" if i.alive else
                                               f"exited {i.pp.proc.returncode}")
            lines.append(f"  {i.pp.name}: {got['assigned']} partition assignments, "
                         f"{got['revoked']} revocations ({state})")
        return "\n".join(lines)


# --------------------------------------------------------------- completion


class Completion:
    """Observes a run: the group's committed input offsets against the high
    watermarks, the live instances' watermark, and the read_committed alerts
    topic (kept open: the records read are the run's output)."""

    def __init__(self, admin, bootstrap: str, schemas, topics: RunTopics, scenario: Scenario):
        self.schemas = schemas
        self.topics = topics
        self.scenario = scenario
        self.group = Consumer(client_conf(bootstrap, **{
            "group.id": topics.application_id, "enable.auto.commit": False}))
        self.alerts = TopicReader(admin, bootstrap, [topics.alerts])
        self.parts = [(t, p) for t in topics.inputs for p in range(INPUT_PARTITIONS)]
        self.lag: dict[tuple[str, int], int] = {}
        self.watermark_s: float | None = None
        self.last_day: dt.date | None = None  # partnerpulse_last_evaluated_day, if exported

    def input_lag(self) -> int:
        committed = self.group.committed([TopicPartition(t, p) for t, p in self.parts],
                                         timeout=10)
        total = 0
        for tp in committed:
            _, high = self.group.get_watermark_offsets(tp, timeout=10)
            lag = high - max(tp.offset, 0)
            self.lag[(tp.topic, tp.partition)] = lag
            total += lag
        return total

    def observe_watermark(self, fleet: Fleet) -> None:
        """The largest event-time watermark and last evaluated day on the
        live instances' /metrics (the partners task's holder has the
        furthest). partnerpulse_last_evaluated_day is read as epoch days, or
        as Unix seconds when it is that large."""
        best, day = None, None
        for i in fleet.live():
            try:
                m = scrape(i.http_port())
            except (OSError, AssertionError):
                continue
            wm = m.get("partnerpulse_watermark_seconds")
            if wm is not None and (best is None or wm > best):
                best = wm
            led = m.get("partnerpulse_last_evaluated_day")
            if led is not None:
                d = dt.date(1970, 1, 1) + dt.timedelta(
                    days=int(led // 86400) if led > 1e6 else int(led))
                day = d if day is None or d > day else day
        self.watermark_s, self.last_day = best, day

    def records(self) -> list[dict]:
        return [self.schemas.decode("alert", r.value) for r in self.alerts.records]

    def wait(self, fleet: Fleet, timeout: float = COMPLETE_TIMEOUT_S) -> None:
        want_wm = self.scenario.last_event_ms / 1000.0
        deadline = time.monotonic() + timeout
        quiet_since = None
        caught_since = None  # caught up since (the quiet period counts from then too)
        seen = -1
        state = "starting"
        while True:
            fleet.check_no_crash()
            self.alerts.poll_once(0.5)
            n = len(self.alerts.records)
            if n != seen:
                seen, quiet_since = n, time.monotonic()
            try:
                lag = self.input_lag()
            except KafkaException as e:
                lag, state = None, f"offsets unavailable: {e}"
            self.observe_watermark(fleet)
            caught_up = (lag == 0 and self.watermark_s is not None
                         and self.watermark_s >= want_wm
                         and (self.last_day is None
                              or self.last_day >= self.scenario.closable_through))
            # Quiet for QUIET_S since the last alert AND since catching up: the
            # last day's evaluation can come after a long quiet stretch (a
            # partners task restored far behind, evaluating months at once),
            # and its alerts' transaction commits just after it.
            if not caught_up:
                caught_since = None
            elif caught_since is None:
                caught_since = time.monotonic()
            if caught_up and time.monotonic() - max(quiet_since, caught_since) >= QUIET_S:
                fleet.event(f"complete: input lag 0, watermark "
                            f"{fmt_s(self.watermark_s)}, {n} alert records, unchanged "
                            f"for {QUIET_S:.0f}s")
                return
            lagging = ", ".join(f"{tp[0].rsplit('.', 1)[1]}[{tp[1]}]={v}"
                                for tp, v in sorted(self.lag.items()) if v)
            state = (f"input lag {lag} ({lagging or 'none'}), "
                     f"watermark {fmt_s(self.watermark_s)} (want {fmt_s(want_wm)}), "
                     f"last evaluated day {self.last_day or 'not exported'} "
                     f"(want {self.scenario.closable_through}), "
                     f"{n} alert records, last change {time.monotonic() - quiet_since:.1f}s ago")
            if time.monotonic() >= deadline:
                raise AssertionError(f"run did not complete in {timeout:.0f}s: {state}\n"
                                     f"{fleet.rebalances()}")

    def close(self) -> None:
        self.alerts.close()
        self.group.close()


def fmt_s(s: float | None) -> str:
    if s is None:
        return "none"
    try:
        return (EPOCH + dt.timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError):
        return f"{s!r} (out of range)"


# -------------------------------------------------------------------- state


def partners_state(port: int) -> dict:
    """Every page of GET /v1/partners?sort=id -> {evaluated_day, partners}."""
    partners, offset, total, day = [], 0, None, None
    while total is None or offset < total:
        status, body = http_get(port, f"/v1/partners?sort=id&limit=1000&offset={offset}")
        assert status == 200, f"/v1/partners answered {status}: {body[:300]!r}"
        page = json.loads(body)
        total, day = page["total"], page.get("evaluated_day")
        partners += page["partners"]
        if not page["partners"]:
            break
        offset += len(page["partners"])
    assert len(partners) == total, f"/v1/partners: {len(partners)} partners read, total {total}"
    return {"evaluated_day": day, "partners": partners}


def partner_task_state(fleet: Fleet) -> tuple[str, dict, str]:
    """(holder, state, problem) of the instance holding the partners: the one
    live instance whose /v1/partners is not empty. Several non-empty ones is
    a problem (the partners task is one task), reported with the rest of the
    comparison rather than raised, so the alerts are still compared."""
    holders, notes = [], []
    for i in fleet.live():
        try:
            st = partners_state(i.http_port())
        except AssertionError as e:
            notes.append(f"{i.pp.name}: {e}")
            continue
        if st["partners"]:
            holders.append((i.pp.name, st))
    if not holders:
        return "nobody", {"evaluated_day": None, "partners": []}, (
            "no live instance serves any partner" + (": " + "; ".join(notes) if notes else ""))
    problem = ""
    if len(holders) > 1:
        problem = ("more than one instance serves partners (the partners task is one task): "
                   + ", ".join(f"{n} ({len(s['partners'])} partners)" for n, s in holders))
    return holders[0][0], holders[0][1], problem


def state_diff(clean: dict, got: dict) -> str:
    if clean == got:
        return ""
    lines = []
    if clean["evaluated_day"] != got["evaluated_day"]:
        lines.append(f"  evaluated_day: clean {clean['evaluated_day']} vs {got['evaluated_day']}")
    a = {p["partner_id"]: p for p in clean["partners"]}
    b = {p["partner_id"]: p for p in got["partners"]}
    for pid in sorted(a.keys() | b.keys()):
        if pid not in b:
            lines.append(f"  {pid}: missing")
        elif pid not in a:
            lines.append(f"  {pid}: extra")
        elif a[pid] != b[pid]:
            for k in sorted(a[pid].keys() | b[pid].keys()):
                if a[pid].get(k) != b[pid].get(k):
                    lines.append(f"  {pid}.{k}: clean {json.dumps(a[pid].get(k))[:300]} vs "
                                 f"{json.dumps(b[pid].get(k))[:300]}")
    return "\n".join(lines)


# ----------------------------------------------------------------- the runs


@dataclass
class RunResult:
    name: str
    records: list[dict]
    views: list[tuple]
    holder: str
    state: dict
    state_problem: str
    dlq: int


def dlq_forensics(fleet: Fleet, admin, bootstrap: str, dead: list[Record]) -> None:
    """Writes <workdir>/dlq-forensics.txt for a run that dead-lettered records
    (the topics are deleted after the test): each dead letter's headers and
    where its event sits in the input topics, then the whole committed
    <app>-watermarks topic (every tick with its input's forwarded offset) in
    offset order."""
    t = fleet.topics
    wm_topic = f"{t.application_id}-watermarks"
    rd = TopicReader(admin, bootstrap, t.inputs + [wm_topic])
    try:
        rd.read_for(3.0)
        where: dict[bytes, list[str]] = {}
        for r in rd.records:
            if r.topic != wm_topic and r.value is not None:
                where.setdefault(r.value, []).append(f"{r.topic}[{r.partition}]@{r.offset}")
        lines = [f"{len(dead)} dead letters of {t.application_id}:"]
        for d in dead:
            hdr = " ".join(f"{k}={d.header(k)}" for k in sorted(d.headers))
            lines.append(f"  dlq@{d.offset} {hdr} input={where.get(d.value, ['?'])}")
        lines.append(f"{wm_topic} (committed, offset order):")
        for r in rd.of(wm_topic):
            val = (r.value or b"").decode("utf-8", errors="replace").replace("\t", " | ")
            lines.append(f"  @{r.offset} {val}")
        path = fleet.workdir / "dlq-forensics.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        log(f"dead letters: forensics in {path}")
    finally:
        rd.close()


def collect(fleet: Fleet, completion: Completion, admin, bootstrap: str, name: str) -> RunResult:
    records = completion.records()
    holder, state, problem = partner_task_state(fleet)
    dlq = TopicReader(admin, bootstrap, [fleet.topics.dlq])
    try:
        dlq.read_for(1.0)
        n_dlq = len(dlq.records)
        if dlq.records:
            dlq_forensics(fleet, admin, bootstrap, dlq.records)
    finally:
        dlq.close()
    return RunResult(name, records, [view_of_record(r) for r in records], holder, state, problem,
                     n_dlq)


def details_diff(records: list[dict], docs: list[dict]) -> str:
    """details_json of each record against backtest's document for the same
    transition ('' when all equal)."""
    by_id = {}
    for d in docs:
        by_id[(d["alert_id"], d["status"], d["severity"], d["last_evaluated_at"][:10])] = d
    bad = []
    for r in records:
        doc = by_id.get((r["alert_id"], r["status"], r["severity"],
                         day_of_ms(r["last_evaluated_at"])))
        if doc is None:
            continue  # reported by the multiset comparison
        got = json.loads(r["details_json"])
        if got != doc:
            keys = sorted(k for k in got.keys() | doc.keys() if got.get(k) != doc.get(k))
            bad.append(f"  {r['alert_id']} {r['status']} {day_of_ms(r['last_evaluated_at'])}: "
                       + "; ".join(f"{k}: record {json.dumps(got.get(k))[:200]} vs backtest "
                                   f"{json.dumps(doc.get(k))[:200]}" for k in keys))
    return "\n".join(bad)


def run_clean(pp_env, admin, schemas, scenario, workdir, guarantee, started) -> RunResult:
    t = make_run_topics(admin, "clean")
    log(f"clean run: application_id={t.application_id}, guarantee={guarantee or 'binary default'}")
    fleet = Fleet(pp_env, workdir, t, guarantee, static=False, started=started,
                  label="clean")
    completion = Completion(admin, pp_env.bootstrap, schemas, t, scenario)
    try:
        fleet.start()
        feed = Feed(pp_env.bootstrap, schemas, scenario, t)
        # Fed while it runs, day by day, like the chaos run's feed.
        feed.start_paced(seconds=10)
        feed.join(120)
        completion.wait(fleet)
        result = collect(fleet, completion, admin, pp_env.bootstrap, "clean run")
        fleet.stop_all()
        return result
    except AssertionError as e:
        # A module fixture's failure is a setup error: conftest's report hook
        # does not see these processes, so their logs go with the error.
        raise AssertionError(f"{e}\n{fleet.logs()}") from None
    finally:
        for i in fleet.live():
            i.pp.kill()
        completion.close()
        delete_run_topics(admin, t)


@pytest.fixture(scope="module")
def guarantee(pp_env) -> str | None:
    if runtime_keys_supported(pp_env):
        return "exactly_once"
    log("this binary has no processing.guarantee/state.dir keys: the runtime has not landed, "
        "instances run the at-least-once pipeline")
    return None


@pytest.fixture(scope="module")
def module_started() -> list:
    return []


@pytest.fixture(scope="module")
def clean(pp_env, admin, schemas, scenario, guarantee, tmp_path_factory,
          module_started) -> RunResult:
    return run_clean(pp_env, admin, schemas, scenario, tmp_path_factory.mktemp("eos-clean"),
                     guarantee, module_started)


@pytest.fixture
def attach_started(request, module_started):
    """Hands the processes started by module fixtures and the test to
    conftest's report hook, which attaches their logs to a failure."""
    procs: list = []
    request.node._pp_processes = procs
    procs.extend(module_started)
    yield procs
    for pp in procs:
        if pp.proc is not None and pp.proc.poll() is None:
            pp.kill()


def assert_matches(result: RunResult, expected: Expected, clean: RunResult | None) -> None:
    problems = []
    dups = duplicates(result.views)
    if dups:
        problems.append(f"duplicated transitions in {result.name}:\n  " + "\n  ".join(dups))
    d = multiset_diff(expected.views, result.views, "backtest", result.name)
    if d:
        problems.append(d)
    d = details_diff(result.records, expected.docs)
    if d:
        problems.append(f"details_json differs from backtest's document:\n{d}")
    if clean is not None:
        d = multiset_diff(clean.views, result.views, "the clean run", result.name)
        if d:
            problems.append(d)
        d = state_diff(clean.state, result.state)
        if d:
            problems.append(f"partner state of {result.holder} != the clean run's "
                            f"({clean.holder}):\n{d}")
    if result.state_problem:
        problems.append(f"partner state of {result.name}: {result.state_problem}")
    if result.dlq:
        problems.append(f"{result.dlq} records dead-lettered in {result.name}")
    assert not problems, "\n\n".join(problems)


LONG_LATENESS_H = 240


def test_backtest_does_not_depend_on_lateness(pp_env, scenario: Scenario, expected: Expected,
                                              tmp_path: pathlib.Path):
    """The oracle the kill test relies on, checked offline: the file is in
    event-time order, so allowed_lateness only changes how many later events
    are applied before a day is evaluated, never which events belong to it.
    A day's transitions must not change. If they do, the model reads state
    newer than the evaluated day, and a live run (which applies other
    partitions' events up to the alignment horizon ahead, docs/architecture.md)
    differs from backtest depending on how partitions interleave."""
    cfg = tmp_path / "long.yaml"
    cfg.write_text(render_eos_config(
        application_id="backtest", topics=RunTopics("backtest", "d", "l", "s", "a", "q"),
        bootstrap="127.0.0.1:1", state_dir=None, guarantee=None).replace(
            f"allowed_lateness: {ALLOWED_LATENESS}", f"allowed_lateness: {LONG_LATENESS_H}h"),
        encoding="utf-8")
    long_docs = backtest(pp_env, scenario, cfg)
    through = ((EPOCH + (scenario.last_event_ms - LONG_LATENESS_H * 3600 * 1000) * MS).date()
               - dt.timedelta(days=1)).isoformat()
    short = [v for v in expected.views if v[0] <= through]
    long_ = [view_of_backtest(d) for d in long_docs if d["last_evaluated_at"][:10] <= through]
    d = multiset_diff(short, long_, f"backtest at {ALLOWED_LATENESS}",
                      f"backtest at {LONG_LATENESS_H}h")
    assert not d, ("the model's evaluation of a day depends on events after it "
                   f"(transitions through {through}):\n{d}")


def test_clean_run_matches_backtest(clean: RunResult, expected: Expected, attach_started):
    log(f"clean run: {len(clean.views)} transitions, partners served by {clean.holder} "
        f"(evaluated_day {clean.state['evaluated_day']})")
    assert_matches(clean, expected, None)
    assert clean.state["evaluated_day"] == expected.closable_through.isoformat()


def chaos_run(pp_env, admin, schemas, scenario, workdir, guarantee, started, *,
              static: bool) -> RunResult:
    seed_env = os.environ.get("PP_KILL_SEED")
    seed = int(seed_env) if seed_env else random.SystemRandom().randrange(1, 2**31)
    rounds = int(os.environ.get("PP_KILL_ROUNDS", "6"))
    rng = random.Random(seed)
    log(f"PP_KILL_SEED={seed} rounds={rounds} membership={'static' if static else 'dynamic'} "
        f"(replay: PP_KILL_SEED={seed} pytest ... -k {'static' if static else 'dynamic'})")
    t = make_run_topics(admin, "static" if static else "dynamic")
    fleet = Fleet(pp_env, workdir, t, guarantee, static=static, started=started,
                  label="static" if static else "dynamic")
    completion = Completion(admin, pp_env.bootstrap, schemas, t, scenario)
    slots = ["a", "b", "c"]
    try:
        for _ in range(rng.choice((2, 3))):
            fleet.start(slots[len(fleet.live())])
        feed = Feed(pp_env.bootstrap, schemas, scenario, t)
        # The feed spans roughly the chaos rounds (mean 3.5 s each plus start-up):
        # ~19 event days per second. A killed member's source partitions then
        # stall for session.timeout.ms (6 s), ~100 event days, while the others
        # go on: the runtime must cope with that skew (a replay or a catch-up
        # after downtime looks the same). PP_EOS_FEED_SECONDS stretches it.
        feed_s = float(os.environ.get("PP_EOS_FEED_SECONDS", rounds * 4.0))
        feed.start_paced(seconds=feed_s)
        fleet.event(f"feeding {len(scenario.events)} events in {feed.chunks} day chunks over "
                    f"~{feed_s:.0f}s")
        for r in range(rounds):
            target = rng.choice((2, 3))
            while len(fleet.live()) < target:
                used = {i.slot for i in fleet.live()}
                fleet.start(next(s for s in slots if s not in used))
            wait_s = rng.uniform(1.0, 6.0)
            victim_idx = rng.randrange(len(fleet.live()))
            restart = rng.random() < 0.5
            graceful = rng.random() < 0.15  # now and then a clean leave (SIGTERM)
            how = "SIGTERM" if graceful else "SIGKILL"
            fleet.event(f"round {r + 1}/{rounds}: {len(fleet.live())} live, {how} in "
                        f"{wait_s:.1f}s, {'restart at once' if restart else 'no restart'} "
                        f"(fed {feed.sent}/{len(scenario.events)})")
            time.sleep(wait_s)  # the chaos itself: kill at a random moment
            fleet.check_no_crash()
            victim = fleet.live()[victim_idx]
            if graceful:
                fleet.sigterm(victim)
            else:
                fleet.sigkill(victim)
            if restart:
                fleet.start(victim.slot if static else None)
        # Survivors (at least one) run to the end.
        if not fleet.live():
            fleet.start(slots[0])
        feed.join(180)
        fleet.event(f"feed done ({feed.sent} events); waiting for completion with "
                    f"{', '.join(i.pp.name for i in fleet.live())}")
        completion.wait(fleet)
        result = collect(fleet, completion, admin, pp_env.bootstrap,
                         f"the chaos run (seed {seed})")
        log("rebalances (from the instances' logs):\n" + fleet.rebalances())
        fleet.stop_all()
        return result
    except AssertionError:
        log("rebalances (from the instances' logs):\n" + fleet.rebalances())
        raise
    finally:
        for i in fleet.live():  # before their topics go
            i.pp.kill()
        completion.close()
        delete_run_topics(admin, t)


@pytest.mark.parametrize("membership", ["dynamic", "static"])
def test_kill(membership, pp_env, admin, schemas, scenario, guarantee, expected, clean,
              tmp_path, attach_started):
    if guarantee is None:
        log("NOTE: at-least-once pipeline (no runtime keys): this test is expected to fail")
    result = chaos_run(pp_env, admin, schemas, scenario, tmp_path, guarantee, attach_started,
                       static=membership == "static")
    assert_matches(result, expected, clean)
