"""Integration tests of the walking skeleton: the real `partnerpulse` binary
against a real Kafka broker, observed only through Kafka.

Event-time ordering. The tests run with allowed_lateness 0s, so a day closes
as soon as the watermark reaches the next day. Records of three topics x three
partitions produced in one go are fetched in any interleaving; with a
watermark that is the largest time seen (the contract's wording) that would
close days early and dead-letter their stragglers as too late, and with a
per-partition watermark (what the binary implements: the minimum over active
partitions, idle ones released after processing.idle_timeout) the outcome
would still depend on timing. So the tests feed one event-time day at a time
and wait, between days, until the binary's consumer group (its
application_id) has committed offsets past everything produced so far
(`wait_consumed`): a barrier that depends on no timing and yields the exact,
hand-computed alert list under either watermark strategy.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from collections import defaultdict

from conftest import (
    INPUT_PARTITIONS,
    ItTopics,
    contract_view,
    day,
    days_between,
    decode_alert,
    deal_event,
    describe_alerts,
    describe_dlq,
    expected_surge_alert,
    license_event,
    render_config,
    support_event,
    ts_ms,
    wait_consumed,
    wire_header,
)

TENANT = "it"
WINDOW_DAYS = 7
THRESHOLD = 10
ALERT_DEADLINE_S = 60  # from the end of production until the expected alerts are read
GRACE_S = 3  # further reading, to catch alerts that should not be there
EXIT_DEADLINE_S = 15  # SIGTERM -> exit status

# One scenario: event-time day -> [(topic, kind, record, partition or None)].
Scenario = dict[dt.date, list[tuple[str, str, dict, "int | None"]]]


def play(scenario: Scenario, producer, group, topics: ItTopics, pp) -> None:
    """Produces the scenario one event-time day at a time, in date order,
    waiting after each day until the binary has consumed it (group: the
    GroupOffsets of its application_id)."""
    for d in sorted(scenario):
        for topic, kind, record, partition in scenario[d]:
            if kind == "raw":
                producer.send_raw(topic, record["value"], key=record.get("key"),
                                  partition=partition)
            else:
                producer.send(topic, kind, record, partition=partition)
        wait_consumed(group, producer, topics.inputs, pp)


def config_for(topics: ItTopics, bootstrap: str) -> str:
    # The day barrier (wait_consumed) watches the group's committed offsets;
    # a short auto-commit interval keeps each barrier short. Only a tuning
    # passed to librdkafka: correctness does not depend on it.
    return render_config(application_id=topics.application_id, tenant=TENANT, topics=topics,
                         bootstrap=bootstrap, allowed_lateness="0s", window_days=WINDOW_DAYS,
                         threshold=THRESHOLD, kafka={"auto.commit.interval.ms": "100"})


def read_alerts(reader, schemas, topics: ItTopics, expected_n: int):
    """Reads alerts (and the DLQ) until expected_n alerts arrived or the
    deadline passes, then GRACE_S more seconds; returns (alerts, dlq)."""
    r = reader([topics.alerts, topics.dlq])
    r.read_until(lambda rr: len(rr.of(topics.alerts)) >= expected_n, ALERT_DEADLINE_S)
    r.read_for(GRACE_S)
    alerts = [decode_alert(schemas, rec) for rec in r.of(topics.alerts)]
    return alerts, r.of(topics.dlq)


def assert_alerts(got: list[dict], expected: list[dict], dlq) -> None:
    got_view = [contract_view(a) for a in got]
    assert got_view == expected, (
        "alerts differ from the hand-computed list\n"
        f"expected:\n{describe_alerts(expected)}\n"
        f"got:\n{describe_alerts(got)}\n"
        f"dead-lettered:\n{describe_dlq(dlq)}"
    )
    for a in got:
        assert isinstance(a["summary"], str) and a["summary"].strip(), \
            f"alert {a['alert_id']} {a['status']} has an empty summary"


def assert_clean_exit(pp) -> None:
    rc = pp.stop(timeout=EXIT_DEADLINE_S)
    assert rc == 0, f"partnerpulse exited with status {rc} after SIGTERM, expected 0"


# ------------------------------------------------------------------ test 1


def surge_scenario(t: ItTopics) -> Scenario:
    """2025-07-01 .. 2025-08-02.

    Attribution (deals closed_won on 07-01): C-H1, C-H2 -> P-HOT;
    C-Q1, C-Q2 -> P-QUIET. C-L1's deal with P-LOST is closed_lost (no
    attribution); C-NOBODY has no deal at all.

    Tickets opened:
      P-HOT:   C-H1 and C-H2 each 3 per day on 07-10 .. 07-13 (6 per day).
               On 07-17 and 07-18 they each send 3 `resolved` events, and on
               07-17 one `escalated` each: not `opened`, so not counted.
      P-QUIET: C-Q1 and C-Q2 each 1 every other day from 07-02 to 08-01
               (07-02, 07-04, ...): any 7 days hold at most 4 such days, so
               at most 8 < 10. Never fires.
      C-L1:    12 on 07-22 (closed_lost deal: no partner, no alert).
      C-NOBODY: 15 on 07-25 (never attributed: no alert).
    Licence snapshots for C-H1 and C-Q1 every day 07-01 .. 08-02 (so every
    day has events, and 08-02's close 08-01 and everything before it).

    P-HOT's 7-day count (days D-6 .. D):
      07-10: 6   07-11: 12 -> FIRING (first seen 07-11, value 12)
      07-12: 18  07-13..07-16: 24  07-17: 18  07-18: 12
      07-19: 6  -> RESOLVED (value 6; same alert_id, first seen 07-11)
    """
    s: Scenario = defaultdict(list)
    first, last = day("2025-07-01"), day("2025-08-02")
    d0 = first
    # Deals: spread over the deals topic's partitions by key.
    for i, (partner, customer, etype) in enumerate([
        ("P-HOT", "C-H1", "closed_won"), ("P-HOT", "C-H2", "closed_won"),
        ("P-QUIET", "C-Q1", "closed_won"), ("P-QUIET", "C-Q2", "closed_won"),
        ("P-LOST", "C-L1", "closed_lost"),
    ]):
        s[d0].append((t.deals, "deal",
                      deal_event(f"deal-{customer}", ts_ms(d0, 9, i), partner, customer,
                                 event_type=etype, close_date=d0), i % INPUT_PARTITIONS))
    for d in days_between(first, last):
        iso = d.isoformat()
        for j, c in enumerate(("C-H1", "C-Q1")):
            s[d].append((t.licenses, "license_consumption",
                         license_event(f"lic-{c}-{iso}", ts_ms(d, 8, j), c), None))
        if d >= day("2025-07-02") and (d - day("2025-07-02")).days % 2 == 0 and d <= day("2025-08-01"):
            for j, c in enumerate(("C-Q1", "C-Q2")):
                s[d].append((t.support, "support",
                             support_event(f"sup-{c}-{iso}", ts_ms(d, 11, j), c), None))
        if day("2025-07-10") <= d <= day("2025-07-13"):
            for j, c in enumerate(("C-H1", "C-H2")):
                for k in range(3):
                    s[d].append((t.support, "support",
                                 support_event(f"sup-{c}-{iso}-{k}", ts_ms(d, 13, 10 * j + k), c),
                                 None))
        if d in (day("2025-07-17"), day("2025-07-18")):
            for j, c in enumerate(("C-H1", "C-H2")):
                for k in range(3):
                    # Closing the tickets opened on 07-10/07-11.
                    src = "2025-07-10" if d == day("2025-07-17") else "2025-07-11"
                    s[d].append((t.support, "support",
                                 support_event(f"sup-res-{c}-{iso}-{k}", ts_ms(d, 14, 10 * j + k),
                                               c, event_type="resolved",
                                               ticket_id=f"T-sup-{c}-{src}-{k}"), None))
                if d == day("2025-07-17"):
                    s[d].append((t.support, "support",
                                 support_event(f"sup-esc-{c}-{iso}", ts_ms(d, 15, j), c,
                                               event_type="escalated", severity=1), None))
        if d == day("2025-07-22"):
            for k in range(12):
                s[d].append((t.support, "support",
                             support_event(f"sup-C-L1-{iso}-{k}", ts_ms(d, 16, k), "C-L1"), None))
        if d == day("2025-07-25"):
            for k in range(15):
                s[d].append((t.support, "support",
                             support_event(f"sup-C-NOBODY-{iso}-{k}", ts_ms(d, 16, k), "C-NOBODY"),
                             None))
    return s


def test_surge_fires_and_resolves_exactly(pp_env, schemas, topics, producer, reader,
                                          partnerpulse, group_offsets):
    pp = partnerpulse(config_for(topics, pp_env.bootstrap))
    play(surge_scenario(topics), producer, group_offsets(topics.application_id), topics, pp)
    # Every input partition got records (keys spread them), so all three
    # partitions of all three topics were exercised.
    used = producer.end_offsets(topics.inputs)
    assert len(used) == 3 * INPUT_PARTITIONS, f"input partitions used: {sorted(used)}"

    expected = [
        expected_surge_alert(tenant=TENANT, partner="P-HOT", status="FIRING",
                             first_seen=day("2025-07-11"), evaluated=day("2025-07-11"),
                             value=12, threshold=THRESHOLD, window_days=WINDOW_DAYS),
        expected_surge_alert(tenant=TENANT, partner="P-HOT", status="RESOLVED",
                             first_seen=day("2025-07-11"), evaluated=day("2025-07-19"),
                             value=6, threshold=THRESHOLD, window_days=WINDOW_DAYS),
    ]
    alerts, dlq = read_alerts(reader, schemas, topics, len(expected))

    others = [a for a in alerts if a["partner_id"] != "P-HOT"]
    assert not others, f"alerts for other partners (P-QUIET, P-LOST, ...):\n{describe_alerts(others)}"
    assert_alerts(alerts, expected, dlq)
    assert not dlq, f"valid events were dead-lettered:\n{describe_dlq(dlq)}"
    pp.assert_running()
    assert_clean_exit(pp)


# ------------------------------------------------------------------ test 2


def test_malformed_records_go_to_dlq(pp_env, schemas, topics, producer, reader,
                                     partnerpulse, group_offsets):
    """Valid events: C-D1 -> P-DLQ (closed_won 07-01); C-D1 opens 9 tickets on
    07-03 and 1 on 07-04; licence snapshots daily 07-01 .. 07-11.
      07-03: 9   07-04 .. 07-09: 10 -> FIRING on 07-04 (value 10)
      07-10: 1 (window 07-04 .. 07-10) -> RESOLVED on 07-10 (value 1)
    A tenth 07-03 ticket with severity 9 is invalid: if it were counted, the
    alert would fire on 07-03 instead. Four bad records, one per DLQ reason,
    sit between valid records in their partitions; valid records follow them
    in the same partitions (no partition is stuck behind a bad record)."""
    pp = partnerpulse(config_for(topics, pp_env.bootstrap))
    s: Scenario = defaultdict(list)
    d1, d2, d3, d4 = (day(f"2025-07-0{i}") for i in (1, 2, 3, 4))
    s[d1].append((topics.deals, "deal",
                  deal_event("deal-C-D1", ts_ms(d1, 9), "P-DLQ", "C-D1"), None))

    valid_support_body = schemas.body("support", support_event("sup-bad-x", ts_ms(d3, 12), "C-D1"))
    bad = {
        # reason: (topic, partition, value)
        "bad_magic": (topics.licenses, 0,
                      b"\x01" + wire_header(2)[1:]
                      + schemas.body("license_consumption",
                                     license_event("lic-bad-magic", ts_ms(d2, 12), "C-D1"))),
        "malformed_avro": (topics.support, 1, wire_header(3) + b"\x02A"),
        "unknown_schema_id": (topics.deals, 2, wire_header(999) + valid_support_body),
        "invalid_value": (topics.support, 2,
                          schemas.encode("support", support_event("sup-sev9", ts_ms(d3, 12, 30),
                                                                  "C-D1", severity=9))),
    }
    for d in days_between(d1, day("2025-07-11")):
        for p in range(INPUT_PARTITIONS):
            # A licence snapshot on every partition of the licences topic, every day.
            s[d].append((topics.licenses, "license_consumption",
                         license_event(f"lic-{d}-{p}", ts_ms(d, 8, p), f"C-L{p}"), p))
    s[d2].append((topics.licenses, "raw", {"value": bad["bad_magic"][2], "key": b"bad-1"}, 0))
    s[d2].append((topics.licenses, "license_consumption",
                  license_event("lic-after-bad", ts_ms(d2, 13), "C-D1"), 0))
    for k in range(9):
        s[d3].append((topics.support, "support",
                      support_event(f"sup-D1-{k}", ts_ms(d3, 10, k), "C-D1"), k % INPUT_PARTITIONS))
        if k == 3:
            s[d3].append((topics.support, "raw",
                          {"value": bad["malformed_avro"][2], "key": b"bad-2"}, 1))
            s[d3].append((topics.deals, "raw",
                          {"value": bad["unknown_schema_id"][2], "key": b"bad-3"}, 2))
            s[d3].append((topics.support, "raw",
                          {"value": bad["invalid_value"][2], "key": b"bad-4"}, 2))
    # After the bad ones, in their partitions: valid records that must be processed.
    s[d3].append((topics.support, "support",
                  support_event("sup-D1-resolved", ts_ms(d3, 18), "C-D1", event_type="resolved",
                                ticket_id="T-sup-D1-0"), 1))
    s[d3].append((topics.deals, "deal",
                  deal_event("deal-C-D9", ts_ms(d3, 18), "P-OTHER", "C-D9"), 2))
    s[d4].append((topics.support, "support",
                  support_event("sup-D1-9", ts_ms(d4, 10), "C-D1"), 2))
    play(s, producer, group_offsets(topics.application_id), topics, pp)

    # Where each bad record landed (topic, partition, offset).
    landed = {}
    for reason, (topic, partition, value) in bad.items():
        ds = [d for d in producer.deliveries if d.value == value]
        assert len(ds) == 1 and ds[0].topic == topic and ds[0].partition == partition, ds
        landed[reason] = ds[0]

    expected = [
        expected_surge_alert(tenant=TENANT, partner="P-DLQ", status="FIRING",
                             first_seen=d4, evaluated=d4, value=10, threshold=THRESHOLD,
                             window_days=WINDOW_DAYS),
        expected_surge_alert(tenant=TENANT, partner="P-DLQ", status="RESOLVED",
                             first_seen=d4, evaluated=day("2025-07-10"), value=1,
                             threshold=THRESHOLD, window_days=WINDOW_DAYS),
    ]
    r = reader([topics.alerts, topics.dlq])
    r.read_until(lambda rr: len(rr.of(topics.alerts)) >= len(expected)
                 and len(rr.of(topics.dlq)) >= len(bad), ALERT_DEADLINE_S)
    r.read_for(GRACE_S)
    dlq = r.of(topics.dlq)
    alerts = [decode_alert(schemas, rec) for rec in r.of(topics.alerts)]

    problems = []
    by_value = {rec.value: rec for rec in dlq}
    for reason, d in landed.items():
        rec = by_value.get(d.value)
        if rec is None:
            problems.append(f"{reason}: record {d.topic}[{d.partition}]@{d.offset} not in the DLQ "
                            "(or its value was altered)")
            continue
        want = {"pp.reason": reason, "pp.topic": d.topic, "pp.partition": str(d.partition),
                "pp.offset": str(d.offset)}
        got = {k: rec.header(k) for k in want}
        if got != want:
            problems.append(f"{reason}: headers {got}, expected {want}")
        if not (rec.header("pp.detail") or "").strip():
            problems.append(f"{reason}: header pp.detail missing or empty")
    if len(dlq) != len(bad):
        problems.append(f"{len(dlq)} DLQ records, expected {len(bad)}")
    assert not problems, ("DLQ differs from the contract:\n  " + "\n  ".join(problems)
                          + f"\nDLQ records:\n{describe_dlq(dlq)}")

    assert_alerts(alerts, expected, dlq)
    pp.assert_running()
    assert_clean_exit(pp)


# ------------------------------------------------------------------ test 3


def run_binary(pp_env, *args, timeout: float = 15):
    try:
        return subprocess.run([str(pp_env.bin), *args], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(
            f"`partnerpulse {' '.join(args)}` still running after {timeout:.0f}s; "
            f"stderr so far:\n{(e.stderr or b'').decode(errors='replace')}") from None


def test_missing_config_exits_nonzero(pp_env, tmp_path):
    # 1. A configuration file that does not exist.
    missing = tmp_path / "nonexistent.yaml"
    res = run_binary(pp_env, "run", "--config", str(missing))
    err = res.stderr.decode(errors="replace")
    assert res.returncode != 0, f"exit status 0 for a missing config file; stderr:\n{err}"
    assert str(missing) in err, f"stderr does not name the missing file {missing}:\n{err}"

    # 2. A configuration with an unknown key on a known line. Everything else
    # in it is valid, so the unknown key is the one error to report.
    topics = ItTopics("pp-it-badkey", "d", "l", "s", "a", "q")
    text = render_config(application_id="pp-it-badkey", tenant=TENANT, topics=topics,
                         bootstrap=pp_env.bootstrap)
    lines = text.splitlines()
    at = lines.index("topics:") + 1
    lines.insert(at, "  dealz: x")
    bad_line = at + 1  # 1-based
    path = tmp_path / "unknown-key.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = run_binary(pp_env, "run", "--config", str(path))
    err = res.stderr.decode(errors="replace")
    assert res.returncode != 0, f"exit status 0 for a config with unknown key topics.dealz:\n{err}"
    assert "topics.dealz" in err, f"stderr does not name the key topics.dealz:\n{err}"
    assert f"{path}:{bad_line}" in err or f"line {bad_line}" in err, (
        f"stderr does not name line {bad_line} of {path}:\n{err}\n--- config ---\n"
        + "\n".join(f"{i + 1:3} {line}" for i, line in enumerate(lines)))
