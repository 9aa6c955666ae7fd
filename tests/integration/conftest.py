"""Fixtures and helpers of the partnerpulse integration tests.

The tests run the real `partnerpulse` binary against a real Kafka broker and
talk to it only through Kafka, with independent clients (confluent-kafka and
fastavro), the way any user of the service would.

Environment (set by ctest; a missing one fails the tests, it never skips them):
  PP_BIN          path to the built `partnerpulse` binary
  PP_BOOTSTRAP    bootstrap servers of a running Kafka 4.x broker
                  (deploy/local/kafka.sh start; deploy/local/kafka.sh bootstrap)
  PP_SCHEMAS_DIR  the schemas/ directory (deal.avsc, license_consumption.avsc,
                  support.avsc, alert.avsc)

Optional:
  PP_IT_KEEP_TOPICS=1  do not delete the test's topics afterwards (post-mortem)

Synchronisation never relies on bare sleeps: every wait polls a condition
against a deadline and fails with what it saw.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import pathlib
import signal
import struct
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import fastavro
import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

# --------------------------------------------------------------------- time
# Every timestamp is computed in UTC explicitly; the local time zone of the
# machine running the tests never matters.

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
MS = dt.timedelta(milliseconds=1)


def day(iso: str) -> dt.date:
    """'2025-07-11' -> date."""
    return dt.date.fromisoformat(iso)


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every date from first to last, both included."""
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def ts_ms(d: dt.date, hour: int = 12, minute: int = 0, second: int = 0) -> int:
    """Milliseconds since the epoch of d at hour:minute:second UTC."""
    return (dt.datetime.combine(d, dt.time(hour, minute, second), tzinfo=UTC) - EPOCH) // MS


def midnight_ms(d: dt.date) -> int:
    """Milliseconds since the epoch of d 00:00 UTC."""
    return ts_ms(d, 0, 0, 0)


def epoch_day(d: dt.date) -> int:
    """Avro `date`: days since 1970-01-01."""
    return (d - dt.date(1970, 1, 1)).days


def fmt_ms(ms: int | None) -> str:
    if ms is None:
        return "None"
    return (EPOCH + ms * MS).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ------------------------------------------------------------------ schemas

SCHEMA_FILES = {
    "deal": "deal.avsc",
    "license_consumption": "license_consumption.avsc",
    "support": "support.avsc",
    "alert": "alert.avsc",
}
# The binary's LOCAL catalog ids (no Schema Registry configured).
SCHEMA_IDS = {"deal": 1, "license_consumption": 2, "support": 3, "alert": 4}

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def _strip_logical_types(node: Any) -> Any:
    """Removes logicalType annotations so that fastavro reads and writes the
    raw int/long (epoch days, epoch milliseconds) instead of date/datetime
    objects. The binary encoding is identical."""
    if isinstance(node, dict):
        if "logicalType" in node and node.get("type") in _PRIMITIVES:
            return node["type"]
        return {k: _strip_logical_types(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_strip_logical_types(v) for v in node]
    return node


def wire_header(schema_id: int) -> bytes:
    """Confluent wire format header: magic byte 0, then the big-endian id."""
    return struct.pack(">bI", 0, schema_id)


class Schemas:
    """The project's .avsc files, parsed for fastavro."""

    def __init__(self, schemas_dir: pathlib.Path):
        self.dir = schemas_dir
        self.parsed: dict[str, Any] = {}
        for kind, name in SCHEMA_FILES.items():
            path = schemas_dir / name
            if not path.is_file():
                pytest.fail(f"PP_SCHEMAS_DIR={schemas_dir}: {name} not found", pytrace=False)
            raw = json.loads(path.read_text(encoding="utf-8"))
            self.parsed[kind] = fastavro.parse_schema(_strip_logical_types(raw))

    def body(self, kind: str, record: dict) -> bytes:
        """The Avro binary body of record (no header)."""
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, self.parsed[kind], record)
        return buf.getvalue()

    def encode(self, kind: str, record: dict) -> bytes:
        """record in the Confluent wire format with the local catalog id."""
        return wire_header(SCHEMA_IDS[kind]) + self.body(kind, record)

    def decode(self, kind: str, value: bytes) -> dict:
        """Checks magic byte and schema id of value, then decodes the body;
        the whole value must be consumed."""
        assert value is not None and len(value) >= 5, f"value too short for the wire format: {value!r}"
        magic, schema_id = struct.unpack(">bI", value[:5])
        assert magic == 0, f"magic byte is {magic}, expected 0; value={value!r}"
        assert schema_id == SCHEMA_IDS[kind], (
            f"schema id is {schema_id}, expected {SCHEMA_IDS[kind]} ({SCHEMA_FILES[kind]})"
        )
        buf = io.BytesIO(value[5:])
        record = fastavro.schemaless_reader(buf, self.parsed[kind])
        rest = len(value) - 5 - buf.tell()
        assert rest == 0, f"{rest} trailing bytes after the {kind} record"
        return record


# ------------------------------------------------------------------- events
# Builders of valid events with every required field; keyword arguments
# override or add fields.


def deal_event(event_id: str, occurred_at: int, partner: str, customer: str, *,
               event_type: str = "closed_won", close_date: dt.date | None = None,
               **extra: Any) -> dict:
    if close_date is None:
        close_date = (EPOCH + occurred_at * MS).date()
    rec = {
        "event_id": event_id,
        "occurred_at": occurred_at,
        "deal_id": f"D-{event_id}",
        "event_type": event_type,
        "partner_id": partner,
        "customer_id": customer,
        "product_id": "ACME-SUITE",
        "kind": "new",
        "close_date": epoch_day(close_date),
        "term_months": 12,
        "seats": 50,
        "amount": 1_200_000,
        "currency": "USD",
        "fiscal_quarter": "2025-Q3",
    }
    rec.update(extra)
    return rec


def support_event(event_id: str, occurred_at: int, customer: str, *,
                  event_type: str = "opened", ticket_id: str | None = None,
                  severity: int = 3, **extra: Any) -> dict:
    rec = {
        "event_id": event_id,
        "occurred_at": occurred_at,
        "ticket_id": ticket_id or f"T-{event_id}",
        "customer_id": customer,
        "product_id": "ACME-SUITE",
        "event_type": event_type,
        "severity": severity,
        "csat_score": None,
        "vendor_incident_id": None,
    }
    rec.update(extra)
    return rec


def license_event(event_id: str, occurred_at: int, customer: str, *,
                  entitled: int = 50, active: int = 40, **extra: Any) -> dict:
    rec = {
        "event_id": event_id,
        "occurred_at": occurred_at,
        "customer_id": customer,
        "product_id": "ACME-SUITE",
        "as_of": epoch_day((EPOCH + occurred_at * MS).date()),
        "licenses_entitled": entitled,
        "licenses_active": active,
        "consumption_units": None,
        "period_start": None,
        "period_end": None,
    }
    rec.update(extra)
    return rec


# -------------------------------------------------------------- environment


@dataclass(frozen=True)
class PPEnv:
    bin: pathlib.Path
    bootstrap: str
    schemas_dir: pathlib.Path


@pytest.fixture(scope="session")
def pp_env() -> PPEnv:
    names = ("PP_BIN", "PP_BOOTSTRAP", "PP_SCHEMAS_DIR")
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        pytest.fail(
            "integration tests need the environment variable(s) " + ", ".join(missing)
            + " (ctest sets them). Example:\n"
            "  deploy/local/kafka.sh start\n"
            "  PP_BIN=build/app/partnerpulse PP_BOOTSTRAP=127.0.0.1:39092 "
            "PP_SCHEMAS_DIR=schemas python3 -m pytest -v tests/integration",
            pytrace=False,
        )
    binary = pathlib.Path(os.environ["PP_BIN"]).resolve()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(f"PP_BIN={os.environ['PP_BIN']}: not an executable file", pytrace=False)
    schemas_dir = pathlib.Path(os.environ["PP_SCHEMAS_DIR"]).resolve()
    if not schemas_dir.is_dir():
        pytest.fail(f"PP_SCHEMAS_DIR={schemas_dir}: not a directory", pytrace=False)
    return PPEnv(binary, os.environ["PP_BOOTSTRAP"], schemas_dir)


@pytest.fixture(scope="session")
def schemas(pp_env: PPEnv) -> Schemas:
    return Schemas(pp_env.schemas_dir)


@pytest.fixture(scope="session")
def admin(pp_env: PPEnv) -> AdminClient:
    client = AdminClient(client_conf(pp_env.bootstrap))
    try:
        md, problem = client.list_topics(timeout=15), None
    except KafkaException as e:
        md, problem = None, e
    if md is None:
        pytest.fail(
            f"no Kafka broker answers at PP_BOOTSTRAP={pp_env.bootstrap}: {problem}\n"
            "(start one with deploy/local/kafka.sh start)",
            pytrace=False,
        )
    if not md.brokers:
        pytest.fail(f"Kafka at {pp_env.bootstrap} lists no brokers", pytrace=False)
    return client


# librdkafka's own log lines (connection refused, ...) go to Python logging:
# pytest captures them and shows them only with a failing test.
RDKAFKA_LOG = logging.getLogger("rdkafka")


def client_conf(bootstrap: str, **extra: Any) -> dict:
    return {"bootstrap.servers": bootstrap, "logger": RDKAFKA_LOG, **extra}


# ------------------------------------------------------------------- topics


def unique_name(prefix: str) -> str:
    return f"{prefix}-{time.strftime('%H%M%S')}-{uuid.uuid4().hex[:8]}"


@dataclass
class ItTopics:
    application_id: str
    deals: str
    licenses: str
    support: str
    alerts: str
    dlq: str

    @property
    def inputs(self) -> list[str]:
        return [self.deals, self.licenses, self.support]

    @property
    def all(self) -> list[str]:
        return [self.deals, self.licenses, self.support, self.alerts, self.dlq]


INPUT_PARTITIONS = 3


def create_topics(admin: AdminClient, specs: dict[str, int], timeout: float = 30,
                  config: dict[str, str] | None = None) -> None:
    """Creates the topics {name: partitions} (with topic `config`, e.g.
    {"retention.ms": "-1"} for records timestamped with old event times,
    which time-based retention would otherwise delete at its next check) and
    waits until the metadata shows every partition with a leader."""
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=n, replication_factor=1, config=config or {})
         for name, n in specs.items()],
        operation_timeout=timeout,
    )
    for name, fut in futures.items():
        try:
            fut.result(timeout=timeout)
        except KafkaException as e:
            raise AssertionError(f"creating topic {name} failed: {e}") from e

    def ready() -> bool:
        md = admin.list_topics(timeout=5)
        for name, n in specs.items():
            t = md.topics.get(name)
            if t is None or t.error is not None or len(t.partitions) != n:
                return False
            if any(p.leader < 0 for p in t.partitions.values()):
                return False
        return True

    wait_until(ready, timeout, lambda: f"topics {sorted(specs)} not ready in the metadata")


@pytest.fixture
def topics(admin: AdminClient, request) -> Iterable[ItTopics]:
    """Fresh, uniquely named topics (3 partitions per input, 1 for alerts and
    DLQ so their order is total) and an application id of the test's own."""
    base = unique_name("pp-it-" + request.node.name.replace("test_", "")[:24].replace("_", "-"))
    t = ItTopics(
        application_id=base,
        deals=f"{base}.deals",
        licenses=f"{base}.licenses",
        support=f"{base}.support",
        alerts=f"{base}.alerts",
        dlq=f"{base}.dlq",
    )
    create_topics(admin, {**{name: INPUT_PARTITIONS for name in t.inputs}, t.alerts: 1, t.dlq: 1})
    yield t
    if os.environ.get("PP_IT_KEEP_TOPICS") == "1":
        return
    # Best effort: the binary may have created internal topics with the
    # application id as prefix; remove those too.
    try:
        md = admin.list_topics(timeout=10)
        names = [n for n in md.topics if n.startswith(base)]
        for fut in admin.delete_topics(names, operation_timeout=30).values():
            try:
                fut.result(timeout=30)
            except KafkaException:
                pass
    except KafkaException:
        pass


# ----------------------------------------------------------------- waiting


def wait_until(cond: Callable[[], Any], timeout: float, describe: Callable[[], str],
               interval: float = 0.05) -> Any:
    """Polls cond until it returns a truthy value (returned) or timeout
    seconds pass (AssertionError with describe())."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s: {describe()}")
        time.sleep(interval)


# ---------------------------------------------------------------- producing


@dataclass
class Delivery:
    topic: str
    value: bytes | None
    partition: int | None = None
    offset: int | None = None
    error: KafkaError | None = None


class EventProducer:
    """Produces wire-format events (or raw bytes) and records where each one
    landed. flush() fails the test on any delivery error."""

    def __init__(self, bootstrap: str, schemas: Schemas):
        self.schemas = schemas
        self.producer = Producer(client_conf(bootstrap, **{
            "enable.idempotence": True,
            "linger.ms": 2,
        }))
        self.deliveries: list[Delivery] = []

    def send_raw(self, topic: str, value: bytes, key: str | bytes | None = None,
                 partition: int | None = None) -> Delivery:
        d = Delivery(topic, value)

        def on_delivery(err, msg):
            d.error = err
            if err is None:
                d.partition, d.offset = msg.partition(), msg.offset()

        kwargs = {} if partition is None else {"partition": partition}
        self.producer.produce(topic, value=value, key=key, on_delivery=on_delivery, **kwargs)
        self.deliveries.append(d)
        self.producer.poll(0)
        return d

    def send(self, topic: str, kind: str, record: dict, key: str | None = None,
             partition: int | None = None) -> Delivery:
        """Encodes record (kind: deal, license_consumption, support) with its
        local schema id and produces it keyed by key (default: event_id)."""
        return self.send_raw(topic, self.schemas.encode(kind, record),
                             key=key if key is not None else record["event_id"],
                             partition=partition)

    def flush(self, timeout: float = 30) -> None:
        left = self.producer.flush(timeout)
        assert left == 0, f"{left} records still undelivered after {timeout}s"
        failed = [d for d in self.deliveries if d.error is not None]
        assert not failed, f"delivery failed: {[(d.topic, str(d.error)) for d in failed]}"

    def end_offsets(self, topics: Iterable[str]) -> dict[tuple[str, int], int]:
        """(topic, partition) -> offset after the last record we produced."""
        ends: dict[tuple[str, int], int] = {}
        wanted = set(topics)
        for d in self.deliveries:
            if d.topic in wanted and d.offset is not None:
                k = (d.topic, d.partition)
                ends[k] = max(ends.get(k, 0), d.offset + 1)
        return ends


@pytest.fixture
def producer(pp_env: PPEnv, schemas: Schemas) -> Iterable[EventProducer]:
    p = EventProducer(pp_env.bootstrap, schemas)
    yield p
    p.producer.flush(10)


# ------------------------------------------------------- the binary itself


def render_config(*, application_id: str, tenant: str, topics: ItTopics, bootstrap: str,
                  allowed_lateness: str = "0s", window_days: int = 7, threshold: int = 10,
                  log_level: str = "info", kafka: dict[str, str] | None = None,
                  http_listen: str = "127.0.0.1:0") -> str:
    """The YAML configuration of one test run. `kafka` adds kafka.* keys
    (passed to librdkafka by the binary). The HTTP API binds an ephemeral
    port by default, so that binaries running side by side never collide on
    8080 (the binary logs the port it got: `msg="http listening" ... port=N`)."""
    extra = "".join(f"  {k}: {v}\n" for k, v in (kafka or {}).items())
    return (
        f"application_id: {application_id}\n"
        f"tenant: {tenant}\n"
        "topics:\n"
        f"  deals: {topics.deals}\n"
        f"  licenses: {topics.licenses}\n"
        f"  support: {topics.support}\n"
        f"  alerts: {topics.alerts}\n"
        f"  dlq: {topics.dlq}\n"
        "processing:\n"
        f"  allowed_lateness: {allowed_lateness}\n"
        "rules:\n"
        "  engine: ticket_surge\n"
        "  ticket_surge:\n"
        f"    window_days: {window_days}\n"
        f"    threshold: {threshold}\n"
        "log:\n"
        f"  level: {log_level}\n"
        "http:\n"
        f"  listen: {http_listen}\n"
        "kafka:\n"
        f"  bootstrap.servers: {bootstrap}\n"
        + extra
    )


def _tail(path: pathlib.Path, limit: int = 20000) -> str:
    try:
        data = path.read_bytes()
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    text = data.decode("utf-8", errors="replace")
    if len(text) > limit:
        text = f"... ({len(text) - limit} earlier characters cut)\n" + text[-limit:]
    return text or "<empty>"


class PartnerPulse:
    """One `partnerpulse run` process with its output in files."""

    def __init__(self, binary: pathlib.Path, config_path: pathlib.Path, workdir: pathlib.Path,
                 name: str):
        self.binary = binary
        self.config_path = config_path
        self.name = name
        self.stdout_path = workdir / f"{name}.stdout.log"
        self.stderr_path = workdir / f"{name}.stderr.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "PartnerPulse":
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [str(self.binary), "run", "--config", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            )
        return self

    def stderr(self) -> str:
        return _tail(self.stderr_path)

    def stdout(self) -> str:
        return _tail(self.stdout_path)

    def assert_running(self) -> None:
        assert self.proc is not None, "partnerpulse was not started"
        rc = self.proc.poll()
        assert rc is None, (
            f"partnerpulse exited unexpectedly with status {rc}\n"
            f"--- stderr ({self.stderr_path}) ---\n{self.stderr()}"
        )

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, then waits up to timeout seconds; returns the exit status
        (AssertionError, and SIGKILL, if it does not exit in time)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(
                f"partnerpulse did not exit within {timeout:.0f}s of SIGTERM (killed)\n"
                f"--- stderr ({self.stderr_path}) ---\n{self.stderr()}"
            ) from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture
def partnerpulse(pp_env: PPEnv, tmp_path: pathlib.Path, request) -> Callable[..., PartnerPulse]:
    """Factory: partnerpulse(config_text) writes the config and starts the
    binary. Its stderr is attached to the report of a failing test; any
    process still running at teardown is terminated."""
    started: list[PartnerPulse] = []
    request.node._pp_processes = started

    def start(config_text: str, name: str | None = None) -> PartnerPulse:
        name = name or f"partnerpulse-{len(started) + 1}"
        config_path = tmp_path / f"{name}.yaml"
        config_path.write_text(config_text, encoding="utf-8")
        pp = PartnerPulse(pp_env.bin, config_path, tmp_path, name)
        started.append(pp)
        return pp.start()

    yield start
    for pp in started:
        pp.kill()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attaches the binary's output (and config) to the report of a failing
    test."""
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    for pp in getattr(item, "_pp_processes", []):
        status = "not started" if pp.proc is None else (
            "running" if pp.proc.poll() is None else f"exited {pp.proc.returncode}")
        rep.sections.append((f"{pp.name} config ({pp.config_path})",
                             _tail(pp.config_path)))
        rep.sections.append((f"{pp.name} stderr ({pp.stderr_path}, {status})", pp.stderr()))
        out = pp.stdout()
        if out != "<empty>":
            rep.sections.append((f"{pp.name} stdout ({pp.stdout_path})", out))


# ------------------------------------------------------------ consumer group


class GroupOffsets:
    """Reads the committed offsets of a consumer group (the binary's
    application_id) without joining it.

    Uses a Consumer configured with that group.id that never subscribes, and
    Consumer.committed(). Not AdminClient.list_consumer_group_offsets: in
    librdkafka (up to the 2.16 bundled with confluent-kafka 2.16.1) that call
    dereferences a NULL consumer-group handle when the broker answers
    NOT_COORDINATOR, which a freshly started broker does while it loads
    __consumer_offsets, and the whole test process dies of SIGSEGV
    (confluentinc/librdkafka#5040, confluent-kafka-python#1982)."""

    def __init__(self, bootstrap: str, group: str):
        self.group = group
        self.consumer = Consumer(client_conf(bootstrap, **{
            "group.id": group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
        }))

    def committed(self, partitions: list[tuple[str, int]],
                  timeout: float = 10) -> dict[tuple[str, int], int]:
        """{(topic, partition): committed offset}, -1001 where none."""
        tps = self.consumer.committed([TopicPartition(t, p) for t, p in partitions],
                                      timeout=timeout)
        return {(tp.topic, tp.partition): tp.offset for tp in tps}

    def close(self) -> None:
        self.consumer.close()


def wait_consumed(group: GroupOffsets, producer: EventProducer, topics: list[str],
                  pp: PartnerPulse, timeout: float = 30) -> None:
    """Waits until the group (the binary's application_id) has committed
    offsets at or past every record produced so far to `topics`: the binary
    has consumed, hence processed, them (its consumer loop is synchronous).

    This is the barrier the tests put between event-time days, so that the
    binary sees the days in order whatever the interleaving of partitions."""
    producer.flush()
    ends = producer.end_offsets(topics)
    if not ends:
        return
    parts = sorted(ends)
    last: dict[tuple[str, int], int] = {}

    def done() -> bool:
        pp.assert_running()
        try:
            last.update(group.committed(parts))
        except KafkaException:
            return False
        return all(last.get(k, -1001) >= end for k, end in ends.items())

    wait_until(done, timeout, lambda: (
        f"consumer group {group.group} did not commit offsets up to the records produced so "
        "far (partnerpulse should consume them and commit within its commit interval); "
        + ", ".join(f"{t}[{p}]: committed {last.get((t, p), 'none')} / end {ends[(t, p)]}"
                    for t, p in parts)
    ), interval=0.05)


@pytest.fixture
def group_offsets(pp_env: PPEnv) -> Callable[[str], GroupOffsets]:
    """Factory: group_offsets(group_id) -> GroupOffsets, closed at teardown."""
    made: list[GroupOffsets] = []

    def make(group: str) -> GroupOffsets:
        g = GroupOffsets(pp_env.bootstrap, group)
        made.append(g)
        return g

    yield make
    for g in made:
        g.close()


# ----------------------------------------------------------------- reading


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes | None] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        v = self.headers.get(name)
        return None if v is None else v.decode("utf-8", errors="replace")


class TopicReader:
    """A read_committed consumer of its own group, assigned to every
    partition of the given topics from the beginning."""

    def __init__(self, admin: AdminClient, bootstrap: str, topics: list[str]):
        self.consumer = Consumer(client_conf(bootstrap, **{
            "group.id": unique_name("pp-it-reader"),
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }))
        md = admin.list_topics(timeout=10)
        assignment = []
        for t in topics:
            tmd = md.topics.get(t)
            assert tmd is not None and tmd.error is None, f"topic {t} not found in the metadata"
            assignment += [TopicPartition(t, p, OFFSET_BEGINNING) for p in sorted(tmd.partitions)]
        self.consumer.assign(assignment)
        self.records: list[Record] = []

    def poll_once(self, timeout: float = 0.2) -> None:
        for msg in self.consumer.consume(num_messages=500, timeout=timeout):
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(f"reading {msg.topic()}: {msg.error()}")
            headers = {k: v for k, v in (msg.headers() or [])}
            self.records.append(Record(msg.topic(), msg.partition(), msg.offset(), msg.key(),
                                       msg.value(), headers))

    def of(self, topic: str) -> list[Record]:
        return [r for r in self.records if r.topic == topic]

    def read_until(self, cond: Callable[["TopicReader"], bool], timeout: float) -> bool:
        """Reads until cond(self) or timeout; returns cond's last value."""
        deadline = time.monotonic() + timeout
        while not cond(self):
            if time.monotonic() >= deadline:
                return False
            self.poll_once()
        return True

    def read_for(self, seconds: float) -> None:
        """Keeps reading for `seconds` (a grace period to catch extra output)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.poll_once(min(0.2, max(0.0, deadline - time.monotonic())))

    def close(self) -> None:
        self.consumer.close()


@pytest.fixture
def reader(admin: AdminClient, pp_env: PPEnv) -> Callable[[list[str]], TopicReader]:
    made: list[TopicReader] = []

    def make(topic_names: list[str]) -> TopicReader:
        r = TopicReader(admin, pp_env.bootstrap, topic_names)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


# ------------------------------------------------------------------ alerts


def decode_alert(schemas: Schemas, rec: Record) -> dict:
    """An alert record as a dict, with `key` (str) added."""
    alert = schemas.decode("alert", rec.value)
    alert["key"] = None if rec.key is None else rec.key.decode("utf-8")
    return alert


def describe_alerts(alerts: list[dict]) -> str:
    if not alerts:
        return "  (none)"
    return "\n".join(
        f"  key={a.get('key')} {a['status']} {a['partner_id']} value={a['value']} "
        f"first_seen={fmt_ms(a['first_seen_at'])} last_eval={fmt_ms(a['last_evaluated_at'])} "
        f"alert_id={a['alert_id']}"
        for a in alerts
    )


def describe_dlq(records: list[Record]) -> str:
    if not records:
        return "  (none)"
    return "\n".join(
        f"  reason={r.header('pp.reason')} detail={r.header('pp.detail')} "
        f"from={r.header('pp.topic')}[{r.header('pp.partition')}]@{r.header('pp.offset')} "
        f"value={r.value[:40]!r}"
        for r in records
    )


def expected_surge_alert(*, tenant: str, partner: str, status: str, first_seen: dt.date,
                         evaluated: dt.date, value: float, threshold: float,
                         window_days: int) -> dict:
    """The fields of a TICKET_SURGE alert fixed by the contract."""
    dedup = f"cpi:v1:{tenant}:TICKET_SURGE:{partner}:*"
    return {
        "key": partner,
        "alert_id": f"{dedup}:{first_seen.isoformat()}",
        "dedup_key": dedup,
        "rule_id": "TICKET_SURGE",
        "status": status,
        "severity": "WARNING",
        "scope": "PARTNER",
        "tenant": tenant,
        "partner_id": partner,
        "customer_id": None,
        "first_seen_at": midnight_ms(first_seen),
        "fired_at": midnight_ms(first_seen),
        "last_evaluated_at": midnight_ms(evaluated),
        "value": float(value),
        "threshold": float(threshold),
        "window_days": window_days,
    }


def contract_view(alert: dict) -> dict:
    """The part of a decoded alert the contract fixes (compared exactly)."""
    keys = ("key", "alert_id", "dedup_key", "rule_id", "status", "severity", "scope", "tenant",
            "partner_id", "customer_id", "first_seen_at", "fired_at", "last_evaluated_at",
            "value", "threshold", "window_days")
    return {k: alert.get(k) for k in keys}
