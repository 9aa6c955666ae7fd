"""Integration tests of the HTTP API (docs/http-api.md): the real
`partnerpulse run` against a real Kafka broker, observed through HTTP.

The binary binds `http.listen: 127.0.0.1:0` and logs the port it got
(`msg="http listening" ... port=N`). Every wait is a deadline on a condition.
The main test replays the skeleton scenario of test_skeleton.py (P-HOT fires
on 2025-07-11 and resolves on 2025-07-19; P-QUIET never fires) with two
malformed records, and checks each endpoint against what was produced.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import re
import threading
import time
from collections import Counter

import pytest

from conftest import day, render_config, wait_until, wire_header
from test_skeleton import TENANT, config_for, play, surge_scenario

PORT_RE = re.compile(r'msg="http listening" address=\S+ port=(\d+)')
TIMEOUT = 30


def http_config(topics, bootstrap, **http) -> str:
    """The skeleton test's configuration plus an http section (ephemeral
    port) and fast librdkafka statistics for the lag gauge."""
    base = config_for(topics, bootstrap) + "  statistics.interval.ms: 500\n"
    # render_config's own http section (listen on port 0) is replaced.
    default = "http:\n  listen: 127.0.0.1:0\n"
    assert default in base
    keys = {"listen": "127.0.0.1:0", **http}
    return base.replace(default, "http:\n" + "".join(f"  {k}: {v}\n" for k, v in keys.items()))


def http_port(pp) -> int:
    def found():
        pp.assert_running()
        m = PORT_RE.search(pp.stderr())
        return int(m.group(1)) if m else None

    return wait_until(found, TIMEOUT, lambda: "partnerpulse logged no 'http listening' line")


class Resp:
    def __init__(self, status: int, headers: dict, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        assert self.headers.get("content-type", "").startswith("application/json"), (
            f"status {self.status}: not JSON ({self.headers.get('content-type')}): {self.body[:200]!r}")
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


def request(port: int, path: str, *, method: str = "GET", headers: dict | None = None,
            body: bytes | None = None) -> Resp:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        c.close()


def parse_metrics(text: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus text format -> {(name, frozenset(labels)): value}; checks
    every sample belongs to a declared family."""
    out: dict[tuple[str, frozenset], float] = {}
    types: dict[str, str] = {}
    sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
    label = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        m = sample.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or family in types, f"sample {name} without a # TYPE line"
        out[(name, frozenset(label.findall(labels)))] = float(value)
    return out


def metric(ms, name: str, **labels) -> float | None:
    return ms.get((name, frozenset(labels.items())))


class SSE:
    """Reads /v1/stream in a thread; events are (id, event, data dict)."""

    def __init__(self, port: int, headers: dict | None = None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.conn.request("GET", "/v1/stream", headers=headers or {})
        self.resp = self.conn.getresponse()
        self.events: list[tuple[str, str, dict]] = []
        self.comments = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        block: dict[str, str] = {}
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    return
                line = line.decode().rstrip("\n")
                if line == "":
                    if "data" in block:
                        self.events.append((block.get("id"), block.get("event"),
                                            json.loads(block["data"])))
                    block = {}
                elif line.startswith(":"):
                    self.comments += 1
                else:
                    k, _, v = line.partition(": ")
                    block[k] = v
        except (OSError, ValueError, AttributeError):  # closed by close()
            return

    def close(self):
        self.conn.close()


# ------------------------------------------------------------------ the API


def test_endpoints_against_produced_records(pp_env, schemas, topics, producer, reader,
                                            partnerpulse, group_offsets):
    pp = partnerpulse(http_config(topics, pp_env.bootstrap))
    port = http_port(pp)

    r = request(port, "/healthz")
    assert r.status == 200 and r.json() == {"status": "ok"}, r
    # Ready once the consumer group assigned the input partitions.
    wait_until(lambda: request(port, "/readyz").status == 200, TIMEOUT,
               lambda: f"/readyz never 200: {request(port, '/readyz')}")
    assert request(port, "/readyz").json() == {"status": "ready"}

    stream = SSE(port)
    assert stream.resp.status == 200
    assert stream.resp.getheader("Content-Type") == "text/event-stream"

    scenario = surge_scenario(topics)
    # Two records that are not Confluent-framed Avro: dead letters.
    scenario[day("2025-07-20")] += [
        (topics.support, "raw", {"value": b"\x07not avro", "key": "bad-1"}, None),
        (topics.support, "raw", {"value": wire_header(3), "key": "bad-2"}, None),
    ]
    group = group_offsets(topics.application_id)
    first = {d: v for d, v in scenario.items() if d <= day("2025-07-13")}
    rest = {d: v for d, v in scenario.items() if d > day("2025-07-13")}

    # --- mid-way: P-HOT's alert is active
    play(first, producer, group, topics, pp)
    wait_until(lambda: len(stream.events) >= 1, TIMEOUT, lambda: f"no SSE event: {stream.events}")
    alerts = request(port, "/v1/alerts").json()
    assert [a["partner_id"] for a in alerts["active"]] == ["P-HOT"], alerts
    assert alerts["active"][0]["status"] == "FIRING"
    assert alerts["active"][0]["first_seen"] == "2025-07-11"

    # --- the rest: it resolves
    play(rest, producer, group, topics, pp)
    wait_until(lambda: len(stream.events) >= 2, TIMEOUT, lambda: f"SSE events: {stream.events}")

    # Kafka's alerts and the stream's agree, in order.
    k = reader([topics.alerts])
    k.read_until(lambda rr: len(rr.of(topics.alerts)) >= 2, TIMEOUT)
    kafka_alerts = [schemas.decode("alert", rec.value) for rec in k.of(topics.alerts)]
    got = [(e, d["status"], d["alert_id"]) for _, e, d in stream.events]
    assert got == [("alert", a["status"], a["alert_id"]) for a in kafka_alerts], got
    assert [d["status"] for _, _, d in stream.events] == ["FIRING", "RESOLVED"]
    # Event ids are the transitions' seq, consecutive; they start from the
    # clock (ms x 1000) so that they keep increasing across restarts.
    ids = [int(i) for i, _, _ in stream.events]
    assert ids[1] == ids[0] + 1 and ids[0] > 1_700_000_000_000_000, ids
    assert [d["seq"] for _, _, d in stream.events] == ids
    fired = stream.events[0][2]
    assert fired["partner_id"] == "P-HOT" and fired["tenant"] == TENANT
    assert fired["value"] == 12 and fired["evaluated"] == "2025-07-11"

    # A client reconnecting with Last-Event-ID gets only what it missed.
    again = SSE(port, {"Last-Event-ID": str(ids[0])})
    wait_until(lambda: len(again.events) >= 1, TIMEOUT, lambda: "no replay after Last-Event-ID")
    assert [(int(i), d["status"]) for i, _, d in again.events] == [(ids[1], "RESOLVED")]
    again.close()

    # --- /v1/alerts: nothing active, both transitions recent (newest first)
    alerts = request(port, "/v1/alerts").json()
    assert alerts["active"] == []
    assert [(a["status"], a["seq"]) for a in alerts["recent"]] == \
        [("RESOLVED", ids[1]), ("FIRING", ids[0])]
    assert request(port, "/v1/alerts?partner=P-QUIET").json()["recent"] == []
    assert len(request(port, "/v1/alerts?limit=1").json()["recent"]) == 1

    # --- /v1/partners: sorting and pagination
    by_id = request(port, "/v1/partners?sort=id").json()
    assert by_id["total"] == 2 and [p["partner_id"] for p in by_id["partners"]] == ["P-HOT", "P-QUIET"]
    assert by_id["evaluated_day"] == "2025-08-01"
    page = request(port, "/v1/partners?sort=id&limit=1&offset=1").json()
    assert [p["partner_id"] for p in page["partners"]] == ["P-QUIET"] and page["total"] == 2
    assert request(port, "/v1/partners?sort=id&offset=5").json()["partners"] == []
    by_pressure = request(port, "/v1/partners?sort=pressure").json()["partners"]
    pressures = [p["pressure"] for p in by_pressure]
    assert pressures == sorted(pressures, reverse=True), pressures
    health = request(port, "/v1/partners?sort=health").json()
    assert {p["partner_id"] for p in health["partners"]} == {"P-HOT", "P-QUIET"}
    for p in by_id["partners"]:
        # The model's fields exist and are null until the model provides them.
        assert p["cpi"] is None and p["health"] is None and p["signals"] == []
        assert p["rules"][0]["rule_id"] == "TICKET_SURGE" and p["rules"][0]["state"] == "inactive"

    # --- /v1/partners/{id}: state and history of evaluated days
    hot = request(port, "/v1/partners/P-HOT").json()
    assert hot["partner_id"] == "P-HOT"
    assert hot["rules"][0]["first_seen"] == "2025-07-11"
    days = [h["day"] for h in hot["history"]]
    assert days[0] == "2025-07-01" and days[-1] == "2025-08-01", days
    hist = {h["day"]: h["pressure"] for h in hot["history"]}
    # 24 tickets in the window on 07-13 = 240 % of the threshold (10).
    assert hist["2025-07-11"] == 120 and hist["2025-07-13"] == 240 and hist["2025-07-19"] == 60
    r = request(port, "/v1/partners/P-NOBODY")
    assert r.status == 404 and "P-NOBODY" in r.json()["error"]

    # --- /metrics against what was produced
    produced = Counter()
    for recs in scenario.values():
        for _, kind, _, _ in recs:
            produced[kind] += 1

    def scrape():
        r = request(port, "/metrics")
        assert r.status == 200
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        return parse_metrics(r.body.decode())

    def lag_settled():
        ms = scrape()
        lags = {dict(k[1])["partition"] + "@" + dict(k[1])["topic"]: v
                for k, v in ms.items() if k[0] == "partnerpulse_consumer_lag"}
        return ms if len(lags) == 9 and all(v == 0 for v in lags.values()) else None

    ms = wait_until(lag_settled, TIMEOUT,
                    lambda: "consumer lag never reported 0 for the 9 input partitions: " + str(
                        {k: v for k, v in scrape().items() if k[0] == "partnerpulse_consumer_lag"}))
    assert metric(ms, "partnerpulse_events_total", type="deal") == produced["deal"]
    assert metric(ms, "partnerpulse_events_total", type="support") == produced["support"]
    assert metric(ms, "partnerpulse_events_total", type="license_consumption") == \
        produced["license_consumption"]
    assert metric(ms, "partnerpulse_records_total") == sum(produced.values())
    assert metric(ms, "partnerpulse_dead_letters_total", reason="bad_magic") == 1
    assert metric(ms, "partnerpulse_dead_letters_total", reason="malformed_avro") == 1
    assert metric(ms, "partnerpulse_alerts_total", rule="TICKET_SURGE", status="FIRING") == 1
    assert metric(ms, "partnerpulse_alerts_total", rule="TICKET_SURGE", status="RESOLVED") == 1
    assert metric(ms, "partnerpulse_partners_tracked") == 2
    assert metric(ms, "partnerpulse_partitions_assigned") == 9
    assert metric(ms, "partnerpulse_partition_holds_total") == 0
    last_day = max(scenario)
    wm = metric(ms, "partnerpulse_watermark_seconds")
    assert wm is not None and dt.datetime.fromtimestamp(wm, dt.timezone.utc).date() == last_day
    n_events = produced["deal"] + produced["support"] + produced["license_consumption"]
    assert metric(ms, "partnerpulse_event_processing_seconds_count") == n_events
    assert metric(ms, "partnerpulse_event_processing_seconds_bucket", le="+Inf") == n_events
    assert metric(ms, "partnerpulse_http_stream_clients") == 1
    assert metric(ms, "partnerpulse_http_stream_events_total") >= 2

    stream.close()
    pp.assert_running()
    assert pp.stop(timeout=15) == 0


# ---------------------------------------------------- auth and bad requests

TOKEN = "s3cret-token"


def test_bearer_token_and_bad_requests(pp_env, topics, partnerpulse, monkeypatch):
    monkeypatch.setenv("PP_IT_HTTP_TOKEN", TOKEN)
    pp = partnerpulse(http_config(topics, pp_env.bootstrap, token="${PP_IT_HTTP_TOKEN}",
                                  max_body_bytes=1024))
    port = http_port(pp)
    auth = {"Authorization": f"Bearer {TOKEN}"}

    # Probes stay open; everything with data needs the token.
    assert request(port, "/healthz").status == 200
    assert request(port, "/readyz").status in (200, 503)
    for path in ("/metrics", "/v1/partners", "/v1/partners/P-X", "/v1/alerts", "/v1/stream"):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                        {"Authorization": f"Bearer {TOKEN}x"}):
            r = request(port, path, headers=headers)
            assert r.status == 401, (path, headers, r)
            assert "token" in r.json()["error"]
            assert r.headers.get("www-authenticate", "").startswith("Bearer")
    assert request(port, "/v1/partners", headers=auth).status == 200
    assert request(port, "/metrics", headers=auth).status == 200
    # The dashboard's files carry no data and load without the token.
    r = request(port, "/")
    assert r.status == 200 and r.headers["content-type"].startswith("text/html")
    assert b'<script src="/app.js">' in r.body
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert request(port, "/app.js").status == 200 and request(port, "/style.css").status == 200

    def bad(path, status, needle, **kw):
        r = request(port, path, headers={**auth, **kw.pop("headers", {})}, **kw)
        assert r.status == status, (path, r)
        msg = r.json()["error"]
        assert needle in msg, (path, msg)

    bad("/nope", 404, "no such endpoint")
    bad("/v1/partners/a/b", 404, "no such endpoint")
    bad("/v1/partners?sort=cpi", 400, "sort")
    bad("/v1/partners?limit=abc", 400, "limit")
    bad("/v1/partners?limit=0", 400, "limit")
    bad("/v1/partners?limit=1001", 400, "limit")
    bad("/v1/partners?limit=-1", 400, "limit")
    bad("/v1/partners?offset=-1", 400, "offset")
    bad("/v1/partners?offset=1e3", 400, "offset")
    bad("/v1/partners?sorting=id", 400, "unknown query parameter")
    bad("/v1/alerts?limit=x", 400, "limit")
    bad("/metrics?x=1", 400, "unknown query parameter")
    bad("/v1/stream", 400, "Last-Event-ID", headers={"Last-Event-ID": "abc"})
    bad("/v1/partners", 405, "read-only", method="POST", body=b"{}")
    bad("/v1/alerts", 405, "read-only", method="DELETE")
    # Bodies: over http.max_body_bytes -> our JSON 413; over 4x that, libevent
    # refuses it before reading it (still 413).
    bad("/v1/partners", 413, "max_body_bytes", body=b"x" * 2000)
    r = request(port, "/v1/partners", headers=auth, body=b"x" * 5000)
    assert r.status == 413, r
    # The server is still fine after all that.
    assert request(port, "/v1/partners", headers=auth).status == 200
    pp.assert_running()
    assert pp.stop(timeout=15) == 0


def test_bad_listen_address_is_a_config_error(pp_env, topics, partnerpulse):
    pp = partnerpulse(http_config(topics, pp_env.bootstrap, listen="127.0.0.1:99999"))
    rc = pp.proc.wait(timeout=TIMEOUT)
    assert rc == 2, f"exit status {rc}"
    assert "http.listen" in pp.stderr()
