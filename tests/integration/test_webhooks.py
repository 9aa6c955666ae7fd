"""Integration tests of webhook notifications (docs/webhooks.md): the real
`partnerpulse run` against a real Kafka broker, observed by a Python HTTP
receiver (http.server in a thread, port 0).

The main test replays test_skeleton.py's TICKET_SURGE scenario (P-HOT fires on
2025-07-11 and resolves on 2025-07-19) with three subscribers: `ops` (its
receiver fails the first two requests with 500), `crit` (min_severity
CRITICAL: TICKET_SURGE is WARNING, so never notified) and `other` (rules:
CUSTOMER_PRESSURE only). It then restarts the binary and writes one more
alert record to the alerts topic: alerts are notified in offset order, so
when that one arrives, anything already committed would have been re-sent
before it.

Every wait is a deadline on a condition: the receiver's requests, or the
committed offset of the notifier's group `<application_id>-webhooks`.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import re
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from confluent_kafka import Consumer, TopicPartition

from conftest import client_conf, day, midnight_ms, render_config, wait_until
from test_skeleton import TENANT, config_for, play, surge_scenario

TIMEOUT = 60


class Receiver:
    """Records every POST as (path, headers, body, status it answered);
    fail[path] = n answers the first n requests to path with 500."""

    def __init__(self, fail: dict[str, int] | None = None):
        self.requests: list[tuple[str, dict, dict, int]] = []
        self.fail = dict(fail or {})
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n) or b"null")
                with outer.lock:
                    left = outer.fail.get(self.path, 0)
                    code = 500 if left > 0 else 200
                    outer.fail[self.path] = max(0, left - 1)
                    outer.requests.append((self.path, {k.lower(): v for k, v in
                                                       self.headers.items()}, body, code))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def of(self, path: str) -> list[tuple[str, dict, dict, int]]:
        with self.lock:
            return [r for r in self.requests if r[0] == path]

    def accepted(self, path: str) -> list[dict]:
        return [body for _, _, body, code in self.of(path) if code == 200]

    def describe(self) -> str:
        with self.lock:
            return "\n".join(f"  {p} -> {code}: {b.get('status')} "
                             f"{[a['labels'] for a in b.get('alerts', [])]}"
                             for p, _, b, code in self.requests) or "  (none)"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def webhooks_yaml(subs: dict[str, dict[str, str]]) -> str:
    out = "webhooks:\n"
    for name, keys in subs.items():
        out += f"  {name}:\n" + "".join(f"    {k}: {v}\n" for k, v in keys.items())
    return out


def own_silences_topic(cfg: str, topics) -> str:
    """Gives the run a silences topic of its own (deleted with the test's topics)."""
    dlq = f"  dlq: {topics.dlq}\n"
    assert dlq in cfg
    return cfg.replace(dlq, dlq + f"  silences: {topics.application_id}.silences\n")


def wait_webhook_committed(group_offsets, topics, offset: int, pp) -> None:
    """Waits until the notifier group committed the alerts topic up to offset."""
    g = group_offsets(f"{topics.application_id}-webhooks")
    seen = {}

    def done():
        pp.assert_running()
        seen.update(g.committed([(topics.alerts, 0)]))
        return seen.get((topics.alerts, 0), -1001) >= offset

    wait_until(done, TIMEOUT, lambda: f"webhook group committed {seen}, expected >= {offset}")


def alert_record(partner: str, status: str, first_seen: str, evaluated: str,
                 severity: str = "WARNING", rule: str = "TICKET_SURGE") -> dict:
    dedup = f"cpi:v1:{TENANT}:{rule}:{partner}:*"
    return {
        "alert_id": f"{dedup}:{first_seen}", "dedup_key": dedup, "rule_id": rule,
        "model_version": "cpi-1.0.0", "status": status, "severity": severity,
        "scope": "PARTNER", "tenant": TENANT, "partner_id": partner, "customer_id": None,
        "first_seen_at": midnight_ms(day(first_seen)), "fired_at": midnight_ms(day(first_seen)),
        "last_evaluated_at": midnight_ms(day(evaluated)), "reopen_count": 0,
        "parent_alert_id": None, "value": 12.0, "threshold": 10.0, "window_days": 7,
        "summary": f"{partner} {status.lower()}", "details_json": "{}",
    }


def check_alertmanager(body: dict, *, receiver: str, status: str, partner: str) -> dict:
    """Checks the Alertmanager webhook shape; returns the single alert."""
    for k in ("version", "groupKey", "status", "receiver", "groupLabels", "commonLabels",
              "commonAnnotations", "externalURL", "alerts"):
        assert k in body, f"payload lacks {k}: {body}"
    assert body["version"] == "4"
    assert body["status"] == status
    assert body["receiver"] == receiver
    assert len(body["alerts"]) == 1
    a = body["alerts"][0]
    assert a["status"] == status
    assert a["labels"] == {"alertname": "TICKET_SURGE", "severity": "warning",
                           "partner": partner, "tenant": TENANT}, a["labels"]
    assert body["commonLabels"] == a["labels"]
    assert a["annotations"]["summary"].strip()
    json.loads(a["annotations"]["details"])  # the explanation, as a JSON string
    assert len(a["fingerprint"]) == 16 and int(a["fingerprint"], 16) >= 0
    assert a["generatorURL"].endswith(f"/v1/partners/{partner}")
    return a


def test_webhooks_retry_filter_and_restart(pp_env, schemas, topics, producer, group_offsets,
                                           partnerpulse):
    rx = Receiver(fail={"/ops": 2})
    try:
        cfg = own_silences_topic(config_for(topics, pp_env.bootstrap), topics) + webhooks_yaml({
            "ops": {"url": rx.url("/ops"), "auth_header": "Bearer s3cret",
                    "rules": "TICKET_SURGE,CUSTOMER_PRESSURE"},
            "crit": {"url": rx.url("/crit"), "min_severity": "CRITICAL"},
            "other": {"url": rx.url("/other"), "rules": "CUSTOMER_PRESSURE"},
        })
        pp = partnerpulse(cfg, name="first")
        play(surge_scenario(topics), producer, group_offsets(topics.application_id), topics, pp)

        wait_until(lambda: len(rx.accepted("/ops")) >= 2, TIMEOUT,
                   lambda: "ops did not accept a FIRING and a RESOLVED:\n" + rx.describe())
        # Both alert records (offsets 0 and 1) handled and committed.
        wait_webhook_committed(group_offsets, topics, 2, pp)

        ops = rx.of("/ops")
        assert [code for *_, code in ops] == [500, 500, 200, 200], rx.describe()
        assert all(h.get("authorization") == "Bearer s3cret" for _, h, _, _ in ops)
        assert all(h.get("content-type") == "application/json" for _, h, _, _ in ops)
        firing, resolved = rx.accepted("/ops")
        assert [b["status"] for _, _, b, _ in ops[:3]] == ["firing"] * 3, "retries resend it"
        fa = check_alertmanager(firing, receiver="ops", status="firing", partner="P-HOT")
        ra = check_alertmanager(resolved, receiver="ops", status="resolved", partner="P-HOT")
        assert fa["fingerprint"] == ra["fingerprint"]
        assert fa["startsAt"] == ra["startsAt"] == "2025-07-11T00:00:00.000Z"
        assert fa["endsAt"] == "0001-01-01T00:00:00Z"
        assert ra["endsAt"] == "2025-07-20T00:00:00.000Z"  # end of the day that resolved it
        # Filters: CRITICAL-only and CUSTOMER_PRESSURE-only subscribers got nothing.
        assert rx.of("/crit") == [] and rx.of("/other") == [], rx.describe()
        assert pp.stop() == 0

        # Restart: the committed alerts are not notified again. One new alert
        # record is the barrier (offset order, one partition).
        pp2 = partnerpulse(cfg, name="second")
        producer.send_raw(topics.alerts, schemas.encode(
            "alert", alert_record("P-NEW", "FIRING", "2025-08-01", "2025-08-01")), key="P-NEW")
        producer.flush()
        wait_until(lambda: len(rx.accepted("/ops")) >= 3, TIMEOUT,
                   lambda: "ops did not get P-NEW after the restart:\n" + rx.describe())
        wait_webhook_committed(group_offsets, topics, 3, pp2)
        after = rx.of("/ops")[4:]
        assert [(b["alerts"][0]["labels"]["partner"], code) for _, _, b, code in after] == \
            [("P-NEW", 200)], "re-delivered after a committed offset:\n" + rx.describe()
        assert rx.of("/crit") == [] and rx.of("/other") == [], rx.describe()
        assert pp2.stop() == 0
        assert 'msg="webhook attempt failed" receiver=ops' in pp.stderr()
    finally:
        rx.close()


def test_webhook_dead_letter_after_max_attempts(pp_env, schemas, topics, producer,
                                               group_offsets, partnerpulse):
    """A receiver that always fails: after max_attempts the notification is
    logged at level=error with its alert_id and last error, the offset is
    committed, and the next alert is delivered to the healthy subscriber."""
    rx = Receiver(fail={"/down": 10**6})
    try:
        cfg = own_silences_topic(render_config(
            application_id=topics.application_id, tenant=TENANT, topics=topics,
            bootstrap=pp_env.bootstrap), topics) + webhooks_yaml({
                                "down": {"url": rx.url("/down"), "max_attempts": "2"},
                                "up": {"url": rx.url("/up")},
                            })
        pp = partnerpulse(cfg)
        for i, p in enumerate(("P-A", "P-B")):
            producer.send_raw(topics.alerts, schemas.encode(
                "alert", alert_record(p, "FIRING", "2025-08-01", "2025-08-01")), key=p)
        producer.flush()
        wait_webhook_committed(group_offsets, topics, 2, pp)
        assert [b["alerts"][0]["labels"]["partner"] for b in rx.accepted("/up")] == \
            ["P-A", "P-B"], rx.describe()
        assert len(rx.of("/down")) == 4, rx.describe()  # 2 attempts per alert
        err = pp.stderr()
        for p in ("P-A", "P-B"):
            assert (f'msg="webhook dead letter" receiver=down alert_id=cpi:v1:{TENANT}:'
                    f'TICKET_SURGE:{p}:*:2025-08-01') in err, err
        assert 'error="HTTP 500"' in err
        assert pp.stop() == 0
    finally:
        rx.close()


# ------------------------------------------------------------------ silences

PORT_RE = re.compile(r'msg="http listening" address=\S+ port=(\d+)')


def http_port(pp) -> int:
    def found():
        pp.assert_running()
        m = PORT_RE.search(pp.stderr())
        return int(m.group(1)) if m else None

    return wait_until(found, TIMEOUT, lambda: "partnerpulse logged no 'http listening' line")


def call(port: int, method: str, path: str, body=None) -> tuple[int, dict | None, dict]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        c.request(method, path, body=data,
                  headers={"Content-Type": "application/json"} if data is not None else {})
        r = c.getresponse()
        raw = r.read()
        headers = {k.lower(): v for k, v in r.getheaders()}
        return r.status, (json.loads(raw) if raw else None), headers
    finally:
        c.close()


def silences_config(topics, bootstrap: str, application_id: str, subs) -> str:
    return own_silences_topic(render_config(application_id=application_id, tenant=TENANT,
                                            topics=topics, bootstrap=bootstrap),
                              topics) + webhooks_yaml(subs)


def topic_end(bootstrap: str, topic: str) -> int:
    c = Consumer(client_conf(bootstrap, **{"group.id": "pp-it-watermarks"}))
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    finally:
        c.close()


def partners_of(bodies: list[dict]) -> list[tuple[str, str]]:
    return [(b["alerts"][0]["labels"]["partner"], b["status"]) for b in bodies]


def test_silences_mute_one_partner_across_instances(pp_env, schemas, topics, producer,
                                                    group_offsets, partnerpulse):
    rx = Receiver()
    try:
        pp = partnerpulse(silences_config(topics, pp_env.bootstrap, topics.application_id,
                                          {"ops": {"url": rx.url("/ops")}}), name="a")
        port = http_port(pp)
        until = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).strftime(
            "%Y-%m-%dT%H:%M:%SZ")

        # Bad requests: 4xx with a JSON message.
        past = "2020-01-01T00:00:00Z"
        for body, why in [
            ({"until": until, "reason": "x"}, "'partner' is required"),
            ({"partner": "P", "until": until}, "'reason' is required"),
            ({"partner": "P", "reason": "x"}, "'until' is required"),
            ({"partner": "P", "until": past, "reason": "x"}, "in the future"),
            ({"partner": "P", "until": "tomorrow", "reason": "x"}, "RFC 3339"),
            ({"partner": "P", "until": until, "reason": "x", "colour": "red"}, "unknown member"),
            (b"{not json", "not JSON"),
        ]:
            code, resp, _ = call(port, "POST", "/v1/silences", body)
            assert code == 400 and why in resp["error"], (body, code, resp)
        code, resp, _ = call(port, "DELETE", "/v1/silences/0123456789abcdef")
        assert code == 404 and resp["error"], resp
        code, _, headers = call(port, "PUT", "/v1/silences")
        assert code == 405 and headers.get("allow") == "GET, POST"

        code, created, _ = call(port, "POST", "/v1/silences", {
            "partner": "P-MUTE", "until": until, "reason": "maintenance", "created_by": "it"})
        assert code == 201, created
        sid = created["id"]
        assert created["partner"] == "P-MUTE" and created["rule"] is None
        code, listed, _ = call(port, "GET", "/v1/silences")
        assert code == 200 and [s["id"] for s in listed["silences"]] == [sid], listed

        for p in ("P-MUTE", "P-OK"):
            producer.send_raw(topics.alerts, schemas.encode(
                "alert", alert_record(p, "FIRING", "2025-08-01", "2025-08-01")), key=p)
        producer.flush()
        wait_webhook_committed(group_offsets, topics, 2, pp)
        assert partners_of(rx.accepted("/ops")) == [("P-OK", "firing")], rx.describe()
        assert 'msg="webhook muted by silence" receiver=ops' in pp.stderr()
        assert f"silence={sid}" in pp.stderr()

        # A second instance (its own application id, so its own notifier
        # group) reads the silence from the topic at start.
        wait_until(lambda: topic_end(pp_env.bootstrap, f"{topics.application_id}.silences") >= 1,
                   TIMEOUT, lambda: "the silence was not written to the silences topic")
        app_b = topics.application_id + "-b"
        pp_b = partnerpulse(silences_config(topics, pp_env.bootstrap, app_b,
                                            {"ops": {"url": rx.url("/ops-b")}}), name="b")
        g = group_offsets(f"{app_b}-webhooks")
        wait_until(lambda: (pp_b.assert_running(), g.committed([(topics.alerts, 0)]))[1]
                   .get((topics.alerts, 0), -1) >= 2, TIMEOUT,
                   lambda: "instance b did not handle the alerts:\n" + rx.describe())
        assert partners_of(rx.accepted("/ops-b")) == [("P-OK", "firing")], rx.describe()
        code, listed, _ = call(http_port(pp_b), "GET", "/v1/silences")
        assert [s["id"] for s in listed["silences"]] == [sid], listed
        assert pp_b.stop() == 0

        # DELETE restores delivery.
        code, resp, _ = call(port, "DELETE", f"/v1/silences/{sid}")
        assert code == 204 and resp is None
        code, listed, _ = call(port, "GET", "/v1/silences")
        assert listed["silences"] == []
        producer.send_raw(topics.alerts, schemas.encode(
            "alert", alert_record("P-MUTE", "RESOLVED", "2025-08-01", "2025-08-03")), key="P-MUTE")
        producer.flush()
        wait_webhook_committed(group_offsets, topics, 3, pp)
        assert partners_of(rx.accepted("/ops")) == [("P-OK", "firing"), ("P-MUTE", "resolved")], \
            rx.describe()
        assert pp.stop() == 0
    finally:
        rx.close()


# ------------------------------------------------------------------- SIGHUP


def test_sighup_reload_applies_thresholds_and_keeps_old_on_error(
        pp_env, schemas, topics, producer, group_offsets, reader, partnerpulse):
    """Starts with TICKET_SURGE threshold 1000 and a CRITICAL-only webhook;
    after the quiet days, SIGHUP with threshold 10 and min_severity WARNING,
    then SIGHUP with a broken file (and one changing the window, which needs
    a restart): both refused with file:line:key, the binary keeps running
    with threshold 10, so P-HOT fires and resolves and is notified."""
    rx = Receiver()
    try:
        def cfg(threshold: int, severity: str, window: int = 7, extra: str = "") -> str:
            base = render_config(application_id=topics.application_id, tenant=TENANT,
                                 topics=topics, bootstrap=pp_env.bootstrap, allowed_lateness="0s",
                                 window_days=window, threshold=threshold,
                                 kafka={"auto.commit.interval.ms": "100"})
            return own_silences_topic(base, topics) + webhooks_yaml(
                {"ops": {"url": rx.url("/ops"), "min_severity": severity}}) + extra

        pp = partnerpulse(cfg(1000, "CRITICAL"))
        group = group_offsets(topics.application_id)
        scenario = surge_scenario(topics)
        cut = day("2025-07-10")
        play({d: v for d, v in scenario.items() if d < cut}, producer, group, topics, pp)

        def hup(text: str, expect: str) -> None:
            before = pp.stderr().count(expect)
            pp.config_path.write_text(text, encoding="utf-8")
            pp.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: (pp.assert_running(), pp.stderr().count(expect) > before)[1],
                       TIMEOUT, lambda: f"no {expect!r} after SIGHUP:\n{pp.stderr()}")

        hup(cfg(10, "WARNING"), 'msg="configuration reloaded"')
        hup(cfg(1000, "CRITICAL", extra="bogus: 1\n"),
            'level=error msg="reload failed, keeping the running configuration"')
        assert f"{pp.config_path}:" in pp.stderr() and "key 'bogus': unknown key" in pp.stderr()
        hup(cfg(10, "WARNING", window=8),
            "key 'rules.ticket_surge.window_days': cannot change while running")

        play({d: v for d, v in scenario.items() if d >= cut}, producer, group, topics, pp)
        r = reader([topics.alerts])
        r.read_until(lambda rr: len(rr.of(topics.alerts)) >= 2, TIMEOUT)
        alerts = [schemas.decode("alert", rec.value) for rec in r.of(topics.alerts)]
        assert [(a["partner_id"], a["status"], a["threshold"]) for a in alerts] == \
            [("P-HOT", "FIRING", 10.0), ("P-HOT", "RESOLVED", 10.0)], alerts
        wait_until(lambda: len(rx.accepted("/ops")) >= 2, TIMEOUT, rx.describe)
        assert partners_of(rx.accepted("/ops")) == [("P-HOT", "firing"), ("P-HOT", "resolved")]
        assert pp.stop() == 0
    finally:
        rx.close()
