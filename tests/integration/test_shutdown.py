"""SIGTERM with a broker that stops answering: the shutdown is bounded.

`partnerpulse run` under exactly_once commits the interval's transaction when it
is told to stop. When the cluster does not answer, each transaction call waits
for its own timeout (30 s) and the orchestrator's grace period would end it
with SIGKILL, without a word. processing.shutdown_timeout bounds the whole
shutdown (app/watchdog.h): past it the instance logs an error line naming the
key and exits 1.

The test freezes the test broker (SIGSTOP) while a transaction with records and
input progress is open (a long commit interval keeps it open), sends SIGTERM,
and expects exit status 1 with that line within the bound plus a margin — then
wakes the broker (SIGCONT) whatever happened. Without the bound the process
sits in the transaction call for 30 s or more.
"""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import time
import urllib.request

import pytest

from conftest import deal_event, render_config, support_event, ts_ms, day, wait_until

ROOT = pathlib.Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "deploy" / "local" / "kafka.sh"
PORT_RE = re.compile(r'msg="http listening" address=\S+ port=(\d+)')
SHUTDOWN_TIMEOUT_S = 3


def broker_pid(bootstrap: str) -> int:
    """The test broker's pid, from deploy/local/kafka.sh status (the broker the
    kafka fixture started on PP_BOOTSTRAP's port)."""
    port = bootstrap.rsplit(":", 1)[1]
    out = subprocess.run([str(KAFKA_SH), "status"], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "PP_KAFKA_PORT": port}).stdout
    m = re.search(r"running pid=(\d+)", out)
    assert m, f"kafka.sh status on port {port} does not show a running broker: {out!r}"
    return int(m.group(1))


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_sigterm_with_a_frozen_broker_exits_within_shutdown_timeout(pp_env, topics, producer,
                                                                   partnerpulse):
    config = render_config(application_id=topics.application_id, tenant="SHUT", topics=topics,
                           bootstrap=pp_env.bootstrap, log_level="debug")
    config = config.replace("  engine: ticket_surge\n", "  engine: model\n").replace(
        "processing:\n",
        "processing:\n  guarantee: exactly_once\n  commit_interval: 30s\n"
        f"  shutdown_timeout: {SHUTDOWN_TIMEOUT_S}s\n", 1)
    pp = partnerpulse(config)

    def port():
        pp.assert_running()
        m = PORT_RE.search(pp.stderr())
        return int(m.group(1)) if m else None
    http_port = wait_until(port, 60, lambda: "no `http listening` line")

    # Events of one day only: no day closes, so nothing asks for an early
    # commit; they sit in the open transaction (forwarded to the repartition
    # topic, input offsets advanced) until the 30 s interval ends. (An
    # instance starts forwarding once it has read <app>-watermarks to its end,
    # which its own first transaction holds back: about one interval.)
    t0 = ts_ms(day("2025-07-01"), hour=9)
    n = 0
    for i in range(30):
        producer.send(topics.deals, "deal",
                      deal_event(f"SD-{i}", t0 + i * 1000, f"P-{i % 3}", f"C-{i}"), key=f"k{i}")
        producer.send(topics.support, "support",
                      support_event(f"SS-{i}", t0 + i * 1000, f"C-{i}"), key=f"k{i}")
        n += 2
    producer.flush()
    wait_until(lambda: metric(http_port, "partnerpulse_records_total") >= n, 90,
               lambda: f"partnerpulse did not consume the {n} records")
    committed = metric(http_port, "partnerpulse_transactions_total")

    pid = broker_pid(pp_env.bootstrap)
    os.kill(pid, signal.SIGSTOP)
    try:
        # The records are in the open transaction: no commit since they were read.
        assert metric(http_port, "partnerpulse_transactions_total") == committed, \
            "a transaction was committed between reading the records and the freeze"
        started = time.monotonic()
        pp.proc.send_signal(signal.SIGTERM)
        try:
            rc = pp.proc.wait(timeout=SHUTDOWN_TIMEOUT_S + 10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {SHUTDOWN_TIMEOUT_S + 10} s after SIGTERM with "
                        f"processing.shutdown_timeout={SHUTDOWN_TIMEOUT_S}s\n{pp.stderr()}")
        took = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)

    log = pp.stderr()
    assert rc == 1, f"exit status {rc}, expected 1 (shutdown cut short)\n{log}"
    assert SHUTDOWN_TIMEOUT_S - 0.5 <= took <= SHUTDOWN_TIMEOUT_S + 5, f"exited after {took:.1f} s"
    assert re.search(r'level=error msg="shutdown did not finish in time[^"]*" '
                     r'bound=processing.shutdown_timeout timeout_ms=3000 exit=1', log), log
