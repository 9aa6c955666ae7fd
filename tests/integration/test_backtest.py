"""`partnerpulse generate --kafka` against a real broker, checked by
independent clients: every record the binary produces decodes with fastavro
against the project's .avsc files (Confluent framing, local catalog ids), is
keyed by its customer id, carries the event time as the Kafka timestamp, and
equals, field for field, the same event in the event file that
`generate --out` writes for the same arguments. So the two outputs of
`generate` — the file a backtest replays and the stream the service
consumes — are the same events.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import subprocess
import time
from collections import Counter

from confluent_kafka import Consumer

from conftest import (
    EPOCH,
    MS,
    client_conf,
    render_config,
    wait_until,
)

SCENARIO_ARGS = ["--scenario", "C,commit", "--noise", "--seed", "3",
                 "--from", "2025-07-01", "--to", "2025-09-30"]
CONSUME_DEADLINE_S = 60

DATE_FIELDS = {"close_date", "start_date", "as_of", "period_start", "period_end"}
OPTIONAL_FIELDS = {
    "deal": {"start_date", "list_amount", "discount_pct", "commit_units", "quarter_end"},
    "license_consumption": {"consumption_units", "period_start", "period_end"},
    "support": {"product_id", "csat_score", "vendor_incident_id"},
}


def iso_to_ms(s: str) -> int:
    t = dt.datetime.strptime(s.replace("Z", "+0000"),
                             "%Y-%m-%dT%H:%M:%S.%f%z" if "." in s else "%Y-%m-%dT%H:%M:%S%z")
    return (t - EPOCH) // MS


def file_to_avro(line: dict) -> tuple[str, dict]:
    """An event-file line as the Avro record fastavro decodes (logical types
    stripped: dates as epoch days, times as epoch millis, absent optional
    fields as None)."""
    kind = line.pop("type")
    rec = {}
    for k, v in line.items():
        if k == "occurred_at":
            v = iso_to_ms(v)
        elif k in DATE_FIELDS:
            v = (dt.date.fromisoformat(v) - dt.date(1970, 1, 1)).days
        rec[k] = v
    for k in OPTIONAL_FIELDS[kind]:
        rec.setdefault(k, None)
    return kind, rec


def test_generate_kafka_matches_event_file(pp_env, schemas, topics, tmp_path: pathlib.Path):
    cfg = tmp_path / "pp.yaml"
    cfg.write_text(render_config(application_id=topics.application_id, tenant="it",
                                 topics=topics, bootstrap=pp_env.bootstrap))
    events = tmp_path / "events.jsonl"
    subprocess.run([str(pp_env.bin), "generate", *SCENARIO_ARGS, "--out", str(events)],
                   check=True, capture_output=True, timeout=60)
    expected: dict[str, dict] = {}
    kinds: Counter = Counter()
    for text in events.read_text(encoding="utf-8").splitlines():
        kind, rec = file_to_avro(json.loads(text))
        expected[rec["event_id"]] = (kind, rec)
        kinds[kind] += 1
    assert kinds["deal"] >= 3 and kinds["support"] > 100 and kinds["license_consumption"] > 300

    run = subprocess.run([str(pp_env.bin), "generate", *SCENARIO_ARGS,
                          "--kafka", pp_env.bootstrap, "--config", str(cfg)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert f"{len(expected)} acknowledged, 0 failed (done)" in run.stderr, run.stderr

    topic_kind = {topics.deals: "deal", topics.licenses: "license_consumption",
                  topics.support: "support"}
    consumer = Consumer(client_conf(pp_env.bootstrap, **{
        "group.id": topics.application_id + "-reader", "auto.offset.reset": "earliest",
        "enable.auto.commit": False}))
    consumer.subscribe(list(topic_kind))
    seen: dict[str, dict] = {}
    problems: list[str] = []

    def drained() -> bool:
        for msg in consumer.consume(num_messages=1000, timeout=0.5):
            if msg.error():
                problems.append(str(msg.error()))
                continue
            kind = topic_kind[msg.topic()]
            rec = schemas.decode(kind, msg.value())
            key = msg.key().decode()
            if key != rec["customer_id"]:
                problems.append(f"{rec['event_id']}: key {key!r} != customer {rec['customer_id']!r}")
            if msg.timestamp()[1] != rec["occurred_at"]:
                problems.append(f"{rec['event_id']}: timestamp {msg.timestamp()} != occurred_at")
            seen[rec["event_id"]] = (kind, rec)
        return len(seen) >= len(expected)

    try:
        wait_until(drained, CONSUME_DEADLINE_S,
                   lambda: f"read {len(seen)} of {len(expected)} generated records")
    finally:
        consumer.close()
    assert not problems, problems[:10]
    assert seen.keys() == expected.keys()
    for event_id, (kind, rec) in expected.items():
        got_kind, got = seen[event_id]
        assert got_kind == kind, event_id
        # Doubles: the file holds the shortest exact spelling, so equality is exact.
        assert got == rec, f"{event_id}:\n kafka {got}\n file  {rec}"


def test_generate_kafka_rate_is_paced(pp_env, topics, tmp_path: pathlib.Path):
    """--rate N: the average production rate does not exceed N events/s."""
    cfg = tmp_path / "pp.yaml"
    cfg.write_text(render_config(application_id=topics.application_id, tenant="it",
                                 topics=topics, bootstrap=pp_env.bootstrap))
    args = ["--load", "5x4", "--days", "10"]
    events = tmp_path / "load.jsonl"
    subprocess.run([str(pp_env.bin), "generate", *args, "--out", str(events)],
                   check=True, capture_output=True, timeout=60)
    n = len(events.read_text(encoding="utf-8").splitlines())
    assert n > 200
    rate = 400.0
    t0 = time.monotonic()
    run = subprocess.run([str(pp_env.bin), "generate", *args, "--rate", str(rate),
                          "--kafka", pp_env.bootstrap, "--config", str(cfg)],
                         capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - t0
    assert run.returncode == 0, run.stderr
    assert f"{n} acknowledged, 0 failed (done)" in run.stderr, run.stderr
    # Event i is sent no earlier than i/rate after the first.
    assert elapsed >= (n - 1) / rate, (elapsed, n)
