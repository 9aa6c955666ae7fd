"""Integration tests of the Schema Registry path (issue 3): the real
`partnerpulse` binary, a real Kafka broker, and the project's test registry
(deploy/local/registry/registry.py — ours, for tests; it speaks the documented
Confluent REST API).

Producers here are independent: Python confluent-kafka's AvroSerializer
registers each writer schema (TopicNameStrategy, `<topic>-value`) and frames
records with the registered id. Old and new versions of the event schemas are
mixed on the same topics; partnerpulse resolves each into its reader schema
(Avro rules), counts tickets for the skeleton's TICKET_SURGE rule, and writes
its alerts with the id of the alert schema it registered — read back here
with AvroDeserializer. A corpus of malformed records, one per DLQ reason,
lands in the DLQ while the valid records around it are processed. A
registry that fails for a while holds partitions; nothing is lost.

The registry: PP_REGISTRY_URL (set by ctest's `registry` fixture,
deploy/local/registry/registry.sh), or, when unset, one started here on a
free port for the session.
"""

from __future__ import annotations

import json
import os
import pathlib
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from conftest import (
    INPUT_PARTITIONS,
    contract_view,
    day,
    days_between,
    deal_event,
    describe_alerts,
    describe_dlq,
    expected_surge_alert,
    license_event,
    render_config,
    support_event,
    ts_ms,
    wait_consumed,
    wait_until,
)

TENANT = "it"
WINDOW_DAYS = 7
THRESHOLD = 10
ALERT_DEADLINE_S = 60
GRACE_S = 3
REPO = pathlib.Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ registry


@pytest.fixture(scope="session")
def registry_url():
    url = os.environ.get("PP_REGISTRY_URL")
    if url:
        yield url.rstrip("/")
        return
    port_file = pathlib.Path(tempfile.mkdtemp()) / "port"
    proc = subprocess.Popen([sys.executable, str(REPO / "deploy/local/registry/registry.py"),
                             "--port", "0", "--port-file", str(port_file)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: port_file.exists() or proc.poll() is not None, 20,
                   lambda: "the test registry did not report its port")
        assert proc.poll() is None, f"test registry exited: {proc.stderr.read()!r}"
        yield f"http://127.0.0.1:{port_file.read_text().strip()}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def control(url: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(url + path, data=data), timeout=5) as r:
        return json.loads(r.read())


@pytest.fixture
def sr(registry_url):
    return SchemaRegistryClient({"url": registry_url})


def load_schema(name: str) -> dict:
    return json.loads((REPO / "schemas" / name).read_text(encoding="utf-8"))


def support_v0() -> dict:
    """Support before csat_score and vendor_incident_id existed."""
    s = load_schema("support.avsc")
    s["fields"] = [f for f in s["fields"] if f["name"] not in ("csat_score", "vendor_incident_id")]
    return s


def deal_v2() -> dict:
    """Deal with an extra field and an extra enum symbol."""
    s = load_schema("deal.avsc")
    for f in s["fields"]:
        if f["name"] == "event_type":
            f["type"]["symbols"].append("renegotiated")
    s["fields"].append({"name": "channel_notes", "type": "string", "default": ""})
    return s


class Writers:
    """AvroSerializers per (topic, schema version), the way an application
    produces with confluent-kafka: registering under `<topic>-value`."""

    def __init__(self, sr: SchemaRegistryClient):
        self.sr = sr
        self.cache: dict[tuple[str, str], AvroSerializer] = {}

    def encode(self, topic: str, schema: dict, record: dict) -> bytes:
        key = (topic, json.dumps(schema, sort_keys=True))
        ser = self.cache.get(key)
        if ser is None:
            ser = AvroSerializer(self.sr, json.dumps(schema), conf={"auto.register.schemas": True})
            self.cache[key] = ser
        return ser(record, SerializationContext(topic, MessageField.VALUE))


def registry_config(topics, bootstrap: str, registry_url: str, **processing) -> str:
    text = render_config(application_id=topics.application_id, tenant=TENANT, topics=topics,
                         bootstrap=bootstrap, allowed_lateness="0s", window_days=WINDOW_DAYS,
                         threshold=THRESHOLD, kafka={"auto.commit.interval.ms": "100"})
    text = text.replace("processing:\n", "processing:\n" + "".join(
        f"  {k}: {v}\n" for k, v in processing.items()))
    return text + f"registry:\n  url: {registry_url}\n  timeout: 2s\n"


def schema_id(value: bytes) -> int:
    magic, sid = struct.unpack(">bI", value[:5])
    assert magic == 0, value[:5]
    return sid


def wait_started(pp, timeout: float = 30) -> None:
    """Waits until the binary logged its alert schema registration."""
    wait_until(lambda: pp.assert_running() or "alert schema registered" in pp.stderr(), timeout,
               lambda: "partnerpulse did not register its alert schema:\n" + pp.stderr())


def produce_days(days: dict, producer, group, topics, pp) -> None:
    """{date: [(topic, value bytes, key, partition)]}, one day at a time with
    the consumed-offsets barrier between days (see test_skeleton.py)."""
    for d in sorted(days):
        for topic, value, key, partition in days[d]:
            producer.send_raw(topic, value, key=key, partition=partition)
        wait_consumed(group, producer, topics.inputs, pp)


def read_alerts_and_dlq(reader, topics, n_alerts: int, n_dlq: int):
    r = reader([topics.alerts, topics.dlq])
    r.read_until(lambda rr: len(rr.of(topics.alerts)) >= n_alerts
                 and len(rr.of(topics.dlq)) >= n_dlq, ALERT_DEADLINE_S)
    r.read_for(GRACE_S)
    return r.of(topics.alerts), r.of(topics.dlq)


def deserialize_alerts(sr, topics, records) -> list[dict]:
    de = AvroDeserializer(sr)
    out = []
    for rec in records:
        a = de(rec.value, SerializationContext(topics.alerts, MessageField.VALUE))
        # AvroDeserializer gives datetimes for timestamp-millis; the contract
        # view compares epoch milliseconds.
        for k in ("first_seen_at", "fired_at", "last_evaluated_at"):
            if hasattr(a[k], "timestamp"):
                a[k] = int(round(a[k].timestamp() * 1000))
        a["key"] = None if rec.key is None else rec.key.decode()
        out.append(a)
    return out


# ------------------------------------------------------------------- tests


def strip_to(schema: dict, rec: dict) -> dict:
    """rec with only the fields the writer schema has."""
    names = {f["name"] for f in schema["fields"]}
    return {k: v for k, v in rec.items() if k in names}


def surge_days(topics, w: Writers, support_schemas: tuple[dict, dict] | None = None):
    """P-REG's customers C-R1 (a v2 deal) and C-R2 (a v1 deal) open 6 + 6
    tickets on 07-03, C-R1's written with Support v0 and C-R2's with the
    current Support (or the two given schemas): 12 >= 10 fires on 07-03 only
    if every version is counted. Licence snapshots every day up to 07-05
    close the days."""
    d1, d3 = day("2025-07-01"), day("2025-07-03")
    deal = load_schema("deal.avsc")
    lic = load_schema("license_consumption.avsc")
    schemas = support_schemas or (support_v0(), load_schema("support.avsc"))
    days = defaultdict(list)
    v2 = deal_event("deal-R1", ts_ms(d1, 9), "P-REG", "C-R1")
    v2["channel_notes"] = "from the v2 CRM"
    days[d1].append((topics.deals, w.encode(topics.deals, deal_v2(), v2), b"deal-R1", 0))
    days[d1].append((topics.deals, w.encode(topics.deals, deal,
                                            deal_event("deal-R2", ts_ms(d1, 9, 1), "P-REG", "C-R2")),
                     b"deal-R2", 1))
    for k in range(6):
        for c, schema in zip(("C-R1", "C-R2"), schemas):
            rec = strip_to(schema, support_event(f"sup-{c}-{k}", ts_ms(d3, 10, k), c))
            days[d3].append((topics.support, w.encode(topics.support, schema, rec),
                             rec["event_id"].encode(), k % INPUT_PARTITIONS))
    for d in days_between(d1, day("2025-07-05")):
        for p in range(INPUT_PARTITIONS):
            rec = license_event(f"lic-{d}-{p}", ts_ms(d, 8, p), f"C-L{p}")
            days[d].append((topics.licenses, w.encode(topics.licenses, lic, rec),
                            rec["event_id"].encode(), p))
    return days


def test_mixed_schema_versions_and_registered_alert_id(pp_env, topics, producer, reader,
                                                       partnerpulse, group_offsets, sr,
                                                       registry_url):
    w = Writers(sr)
    days = surge_days(topics, w)  # registers the writer schemas
    before = control(registry_url, "/_control/stats")
    pp = partnerpulse(registry_config(topics, pp_env.bootstrap, registry_url))
    wait_started(pp)
    produce_days(days, producer, group_offsets(topics.application_id), topics, pp)

    alerts, dlq = read_alerts_and_dlq(reader, topics, 1, 0)
    assert not dlq, f"valid records were dead-lettered:\n{describe_dlq(dlq)}"
    # Alerts carry the id registered under the alerts topic's subject.
    registered = sr.get_latest_version(f"{topics.alerts}-value")
    assert alerts, "no alert"
    assert {schema_id(a.value) for a in alerts} == {registered.schema_id}, (
        f"alert schema ids {[schema_id(a.value) for a in alerts]}, registered "
        f"{registered.schema_id}")
    got = deserialize_alerts(sr, topics, alerts)
    expected = [expected_surge_alert(tenant=TENANT, partner="P-REG", status="FIRING",
                                     first_seen=day("2025-07-03"), evaluated=day("2025-07-03"),
                                     value=12, threshold=THRESHOLD, window_days=WINDOW_DAYS)]
    assert [contract_view(a) for a in got] == expected, (
        f"expected:\n{describe_alerts(expected)}\ngot:\n{describe_alerts(got)}")
    # Each writer schema id was fetched once by the binary (the only reader
    # of input ids here), however many records used it.
    after = control(registry_url, "/_control/stats")
    ids = {schema_id(d.value) for d in producer.deliveries}
    fetched = {sid: after.get(f"GET /schemas/ids/{sid}", 0) - before.get(f"GET /schemas/ids/{sid}", 0)
               for sid in ids}
    assert all(n == 1 for n in fetched.values()), f"requests per writer schema id: {fetched}"
    pp.assert_running()
    assert pp.stop() == 0


def test_malformed_corpus_goes_to_dlq_with_reasons(pp_env, topics, producer, reader,
                                                   partnerpulse, group_offsets, sr,
                                                   registry_url):
    pp = partnerpulse(registry_config(topics, pp_env.bootstrap, registry_url,
                                      max_message_bytes=4096))
    wait_started(pp)
    w = Writers(sr)
    sup = load_schema("support.avsc")
    d1, d3 = day("2025-07-01"), day("2025-07-03")
    valid = w.encode(topics.support, sup, support_event("sup-x", ts_ms(d3, 9), "C-M1"))
    sup_id = schema_id(valid)
    # Writer schemas that do not resolve / are not events, registered by hand.
    no_amount = load_schema("deal.avsc")
    no_amount["fields"] = [f for f in no_amount["fields"] if f["name"] != "amount"]
    mismatch_id = sr.register_schema(f"{topics.deals}-broken-value",
                                     Schema(json.dumps(no_amount), "AVRO"))
    thing_id = sr.register_schema(f"{topics.deals}-thing-value", Schema(json.dumps(
        {"type": "record", "name": "Thing", "namespace": "com.example",
         "fields": [{"name": "x", "type": "long"}]}), "AVRO"))
    hdr = lambda sid: struct.pack(">bI", 0, sid)  # noqa: E731
    bad = {
        "too_short": b"\x00\x00\x01",
        "bad_magic": b"\x01" + valid[1:],
        "too_large": valid + b"\x00" * 5000,
        "unknown_schema_id": hdr(987654) + valid[5:],
        "malformed_avro": valid[:-3],
        "invalid_value": w.encode(topics.support, sup,
                                  support_event("sup-sev9", ts_ms(d3, 9, 1), "C-M1", severity=9)),
        "schema_mismatch": hdr(mismatch_id) + b"\x00" * 8,
        "not_an_event": hdr(thing_id) + b"\x02",
    }
    days = defaultdict(list)
    days[d1].append((topics.deals, w.encode(topics.deals, load_schema("deal.avsc"),
                                            deal_event("deal-M1", ts_ms(d1, 9), "P-BAD", "C-M1")),
                     b"deal-M1", 0))
    # 10 valid tickets on 07-03 in partition 1 of support, the bad records
    # between them (same partition): FIRING with value 10 only if every valid
    # one is counted and no bad one is.
    for k in range(10):
        days[d3].append((topics.support, w.encode(topics.support, sup,
                                                  support_event(f"sup-M1-{k}", ts_ms(d3, 10, k),
                                                                "C-M1")),
                         f"sup-M1-{k}".encode(), 1))
        if k < len(bad):
            reason = list(bad)[k]
            days[d3].append((topics.support, bad[reason], reason.encode(), 1))
    lic = load_schema("license_consumption.avsc")
    for d in days_between(d1, day("2025-07-05")):
        for p in range(INPUT_PARTITIONS):
            rec = license_event(f"lic-{d}-{p}", ts_ms(d, 8, p), f"C-L{p}")
            days[d].append((topics.licenses, w.encode(topics.licenses, lic, rec),
                            rec["event_id"].encode(), p))
    produce_days(days, producer, group_offsets(topics.application_id), topics, pp)

    alerts, dlq = read_alerts_and_dlq(reader, topics, 1, len(bad))
    problems = []
    by_key = {r.key.decode(): r for r in dlq if r.key}
    for reason, value in bad.items():
        sent = [d for d in producer.deliveries if d.value == value and d.topic == topics.support]
        rec = by_key.get(reason)
        if rec is None or not sent:
            problems.append(f"{reason}: not in the DLQ")
            continue
        want = {"pp.reason": reason, "pp.topic": topics.support,
                "pp.partition": str(sent[0].partition), "pp.offset": str(sent[0].offset)}
        if len(value) >= 5 and value[0] == 0:
            want["pp.schema_id"] = str(int.from_bytes(value[1:5], "big"))
        got = {k: rec.header(k) for k in want}
        if got != want:
            problems.append(f"{reason}: headers {got}, expected {want}")
        if rec.value != value:
            problems.append(f"{reason}: value altered")
    if len(dlq) != len(bad):
        problems.append(f"{len(dlq)} DLQ records, expected {len(bad)}")
    assert not problems, "\n".join(problems) + "\n" + describe_dlq(dlq)
    got = deserialize_alerts(sr, topics, alerts)
    expected = [expected_surge_alert(tenant=TENANT, partner="P-BAD", status="FIRING",
                                     first_seen=d3, evaluated=d3, value=10, threshold=THRESHOLD,
                                     window_days=WINDOW_DAYS)]
    assert [contract_view(a) for a in got] == expected, (
        f"expected:\n{describe_alerts(expected)}\ngot:\n{describe_alerts(got)}")
    pp.assert_running()
    assert pp.stop() == 0


def test_registry_outage_holds_partitions_and_loses_nothing(pp_env, topics, producer, reader,
                                                            partnerpulse, group_offsets, sr,
                                                            registry_url):
    # Start-up: the first registration attempts fail; the binary retries.
    control(registry_url, "/_control/fail", {"count": 2})
    pp = partnerpulse(registry_config(topics, pp_env.bootstrap, registry_url))
    wait_started(pp)
    assert "schema registry unavailable, retrying" in pp.stderr()

    # Everything is serialized (and its schemas registered) first; then the
    # registry fails the binary's first lookups of those ids, which are new
    # to it (a fresh Support version only this test uses among them).
    w = Writers(sr)
    fresh = support_v0()
    fresh["doc"] = f"outage test {topics.application_id}"
    days = surge_days(topics, w, (fresh, fresh))
    d3 = day("2025-07-03")
    control(registry_url, "/_control/fail", {"count": 3})
    produce_days(days, producer, group_offsets(topics.application_id), topics, pp)

    alerts, dlq = read_alerts_and_dlq(reader, topics, 1, 0)
    assert not dlq, f"records were dead-lettered during the outage:\n{describe_dlq(dlq)}"
    got = deserialize_alerts(sr, topics, alerts)
    expected = [expected_surge_alert(tenant=TENANT, partner="P-REG", status="FIRING",
                                     first_seen=d3, evaluated=d3, value=12, threshold=THRESHOLD,
                                     window_days=WINDOW_DAYS)]
    assert [contract_view(a) for a in got] == expected, (
        f"expected:\n{describe_alerts(expected)}\ngot:\n{describe_alerts(got)}")
    assert "schema unavailable, partition held and retried" in pp.stderr()
    pp.assert_running()
    assert pp.stop() == 0
