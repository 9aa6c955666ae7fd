"""An input partition handed over while idle keeps holding the watermark.

An input that is at its end and quiet for processing.idle_timeout is "idle":
its tick tells the customers tasks to stop waiting for it, so days close on
the other inputs alone. That claim is its owner's ("I see nothing new"); when
the partition moves to another instance (a cooperative rebalance revokes it
first and assigns it in a second round), nobody watches it until the next
owner reads it, and records appended meanwhile must not find their days
closed by the other inputs. The revoking owner therefore says "active at my
stream time" in the handover transaction (app/topology.c, tick_handover).

The test: instance A alone reads days 1-10 on every input partition, which
then go idle (checked on <app>-watermarks). Instance B joins; as soon as A has
revoked an input partition, days 11-30 are produced to every input partition
in one burst, then day 40 to close them. A reads the inputs it kept at once;
B reads the moved ones only after joining. Without the handover tick the
customers tasks close days 11-29 on A's inputs alone and B's records of
those days are dead-lettered as too_late; with it, nothing is dead-lettered.
The test fails if no input partition moved (the rebalance proved nothing).
"""

from __future__ import annotations

import re
import time

from conftest import (
    INPUT_PARTITIONS,
    TopicReader,
    day,
    deal_event,
    license_event,
    render_config,
    support_event,
    ts_ms,
    wait_consumed,
    wait_until,
)

import datetime as dt

REVOKED_RE = re.compile(r'msg="partition revoked" topic=(\S+) partition=(\d+)')
ASSIGNED_RE = re.compile(r'msg="partition assigned" topic=(\S+) partition=(\d+)')
START = day("2025-03-01")


def config(topics, bootstrap: str) -> str:
    text = render_config(application_id=topics.application_id, tenant="HAND", topics=topics,
                         bootstrap=bootstrap, allowed_lateness="0s", log_level="debug")
    return text.replace("  engine: ticket_surge\n", "  engine: model\n").replace(
        "processing:\n",
        "processing:\n  guarantee: exactly_once\n  commit_interval: 100ms\n"
        "  idle_timeout: 300ms\n", 1)


def produce_day(producer, topics, n: int) -> None:
    d = START + dt.timedelta(days=n - 1)
    for p in range(INPUT_PARTITIONS):
        c = f"C-H{p}"
        producer.send(topics.deals, "deal",
                      deal_event(f"HD-{n}-{p}", ts_ms(d, hour=9), f"P-H{p}", c), partition=p)
        producer.send(topics.licenses, "license_consumption",
                      license_event(f"HL-{n}-{p}", ts_ms(d, hour=10), c), partition=p)
        producer.send(topics.support, "support",
                      support_event(f"HS-{n}-{p}", ts_ms(d, hour=11), c), partition=p)


def last_ticks(admin, bootstrap: str, topics) -> dict[str, int]:
    """Each input's last committed tick state on <app>-watermarks
    (0 active, 1 idle, 2 caught up)."""
    r = TopicReader(admin, bootstrap, [f"{topics.application_id}-watermarks"])
    try:
        r.read_for(1.0)
        states = {}
        for rec in r.records:
            fields = (rec.value or b"").decode().split("\t")
            if rec.key and not rec.key.startswith(b"task:") and len(fields) >= 3:
                states[rec.key.decode()] = int(fields[2])
        return states
    finally:
        r.close()


def test_input_handed_over_while_idle_holds_the_watermark(pp_env, admin, topics, producer,
                                                          partnerpulse, group_offsets):
    a = partnerpulse(config(topics, pp_env.bootstrap), name="a")
    group = group_offsets(topics.application_id)
    for n in range(1, 11):
        produce_day(producer, topics, n)
        wait_consumed(group, producer, topics.inputs, a)
    inputs = {f"{t}/{p}" for t in topics.inputs for p in range(INPUT_PARTITIONS)}
    wait_until(lambda: all(last_ticks(admin, pp_env.bootstrap, topics).get(i) == 1
                           for i in inputs), 30,
               lambda: f"inputs not idle on the watermarks topic: "
                       f"{last_ticks(admin, pp_env.bootstrap, topics)}")

    b = partnerpulse(config(topics, pp_env.bootstrap), name="b")

    def revoked_inputs():
        a.assert_running()
        moved = {(m.group(1), int(m.group(2))) for m in REVOKED_RE.finditer(a.stderr())}
        return {x for x in moved if x[0] in topics.inputs} or None
    moved = wait_until(revoked_inputs, 60, lambda: "instance A revoked no input partition")

    for n in range(11, 31):
        produce_day(producer, topics, n)
    produce_day(producer, topics, 40)
    wait_consumed(group, producer, topics.inputs, b, timeout=90)

    taken = {(m.group(1), int(m.group(2))) for m in ASSIGNED_RE.finditer(b.stderr())}
    assert moved & taken, f"A revoked {sorted(moved)}, B was assigned {sorted(taken)}"

    dlq = TopicReader(admin, pp_env.bootstrap, [topics.dlq])
    try:
        dlq.read_for(3.0)
        dead = [f"{r.header('pp.reason')} {r.header('pp.topic')}[{r.header('pp.partition')}]"
                f"@{r.header('pp.offset')}" for r in dlq.records]
    finally:
        dlq.close()
    assert not dead, (f"{len(dead)} records dead-lettered after input partitions {sorted(moved)} "
                      f"moved from A to B:\n  " + "\n  ".join(dead[:20]))
    a.assert_running()
    b.assert_running()
    assert a.stop() == 0 and b.stop() == 0
