#!/usr/bin/env python3
"""README's performance table, generated from the saved output of the benchmarks (issue #7).

Each benchmark's latest output is saved, exactly as it printed it, in bench/results/NAME.txt
(one file per benchmark or variant, RESULTS below) with a first line that says when, on which
commit and with which command it ran:

    #bench {"name": "decode", "date": "2026-11-27T01:40:12Z", "commit": "a48ca2d", ...}

`--save NAME -- COMMAND...` runs a benchmark and writes that file. `--write` parses every
result file and rewrites the part of README.md between `<!-- perf:begin -->` and
`<!-- perf:end -->`; `--check` exits 1 when README.md differs from what `--write` would write
(and prints the difference). A benchmark without a result file gets a row that says
"not measured": no figure is ever made up. A result file that does not parse (the benchmark's
output changed) is an error naming the file and the line that was expected, never a silent
"not measured".

Verdicts: the benchmark's own where it prints one (bench_processor's "goal: ... met"), else
computed here from the figures against the goals of issue #7 as docs/performance.md lists them
("Goals of issue #7"; GOALS below must say the same).

Usage:
    bench/report.py [--results DIR] [--readme FILE] [--write | --check]   (default: print)
    bench/report.py --save NAME [--keep-failed] -- COMMAND [ARG...]
Python 3.11, standard library only. bench/README.md has the command of every benchmark.
"""

from __future__ import annotations

import argparse
import datetime
import difflib
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BEGIN = "<!-- perf:begin -->"
END = "<!-- perf:end -->"
HEADER = "#bench "

# Every result file the report reads: name -> the command that produces it (relative to the
# repository root, a Release build in build/). bench/README.md documents the same commands;
# a row that is "not measured" shows this command.
RESULTS = {
    "decode": "build/bench/decode/bench_decode",
    "processor": "build/bench/processor/bench_processor --sizes 10000,100000,1000000",
    "processor-120d": "build/bench/processor/bench_processor --sizes 100000 --days 120",
    "e2e-exactly_once": "bench/e2e/run.py --bin build/app/partnerpulse --guarantee exactly_once "
                        "--events 1000000 --runs 3",
    "e2e-at_least_once": "bench/e2e/run.py --bin build/app/partnerpulse --guarantee at_least_once "
                         "--events 1000000 --runs 3 --no-latency",
    "peer-kafka-streams": "env PP_BUILD=build bench/peer-kafka-streams/run.sh",
    "restore_state": "build/bench/restore/bench_restore_state --bootstrap 127.0.0.1:39092 --runs 5",
}

# The goals of issue #7 that no benchmark judges itself (docs/performance.md, "Goals of issue
# #7"). bench_processor prints its own verdicts for the processor-core goals.
GOALS = {
    "avro_share": 0.40,        # decode (and the whole core) >= 40 % of avro-c's raw decode
    "latency_p99_ms": 250.0,   # p99 event -> alert <= 250 ms at half the sustained rate, EOS
    "peer_cpu_ratio": 5.0,     # >= 5x Kafka Streams' events per CPU-second
    "peer_rss_ratio": 5.0,     # <= 1/5 of Kafka Streams' peak RSS
}

NOT_MEASURED = "not measured (see docs/performance.md)"


class ReportError(Exception):
    """A result file that does not say what its parser expects."""


# ---------------------------------------------------------------------------------------------
# Number formatting: the README's style (thin groups of three, "M" for millions).

def num(x: float, decimals: int = 0) -> str:
    s = f"{x:,.{decimals}f}"
    return s.replace(",", " ")


def mega(x: float) -> str:
    return f"{x / 1e6:.2f} M"


def rng(lo: float, hi: float, decimals: int = 0) -> str:
    """" [lo..hi]" with its leading space, or nothing when they are one figure (one run)."""
    if num(lo, decimals) == num(hi, decimals):
        return ""
    return f" [{num(lo, decimals)}..{num(hi, decimals)}]"


def runs_of(n: int) -> str:
    return "one run" if n == 1 else f"median of {n} runs"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def size_name(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


# ---------------------------------------------------------------------------------------------
# Result files.

class Result:
    """One saved run: its header (date, commit, command, exit) and the benchmark's text."""

    def __init__(self, path: pathlib.Path):
        self.path = path
        text = path.read_text(encoding="utf-8", errors="replace")
        first, _, rest = text.partition("\n")
        if not first.startswith(HEADER):
            raise ReportError(f"{path}: the first line is not a '{HEADER.strip()} {{...}}' header "
                              f"(save results with bench/report.py --save, bench/README.md)")
        try:
            self.meta = json.loads(first[len(HEADER):])
        except json.JSONDecodeError as e:
            raise ReportError(f"{path}: header is not JSON: {e}") from None
        for key in ("date", "commit", "command"):
            if not self.meta.get(key):
                raise ReportError(f"{path}: header has no '{key}'")
        self.text = rest
        self.lines = rest.splitlines()

    def need(self, pattern: str, what: str) -> re.Match:
        """The first match of pattern in the output, or an error saying what was expected."""
        m = re.search(pattern, self.text, re.M)
        if m is None:
            raise ReportError(f"{self.path}: no {what} (expected a line matching /{pattern}/); "
                              f"did the benchmark's output change? update bench/report.py")
        return m

    def when(self) -> str:
        date = self.meta["date"].replace("T", " ")
        date = re.sub(r":\d\dZ$", " UTC", date)
        commit = self.meta["commit"] + (" + uncommitted changes" if self.meta.get("dirty") else "")
        s = f"{date}, {commit}"
        if self.meta.get("load1") is not None:
            s += f", load {self.meta['load1']:.1f}"
        if self.meta.get("exit"):
            s += f", **exited {self.meta['exit']}**"
        return s


# ---------------------------------------------------------------------------------------------
# Parsers: one per benchmark, against the lines it prints today. Each returns plain figures.

def parse_decode(r: Result) -> dict:
    runs = int(r.need(r"^decode throughput, one core, median of (\d+) runs", "title line").group(1))
    rows = {}
    for line in r.lines:
        m = re.match(r"^(\S.*?)\s+(\d+)\s+(\d+)\s+([\d.]+)x\s*$", line)
        if m:
            rows[m.group(1)] = (float(m.group(2)), float(m.group(3)), float(m.group(4)))
    for name in ("deal", "license_consumption", "support"):
        if name not in rows:
            raise ReportError(f"{r.path}: no '{name}' row in bench_decode's table")
    return {"runs": runs, "rows": rows}


def parse_processor(r: Result) -> dict:
    m = r.need(r"^processor core benchmark: (.*), (\d+) event days, median of (\d+) runs",
               "title line")
    out = {"mode": m.group(1), "days": int(m.group(2)), "runs": int(m.group(3)), "sizes": []}
    for line in r.lines:
        f = line.split()
        if len(f) == 11 and f[0].isdigit() and ".." in f[4] and ".." in f[6]:
            lo, hi = f[4].split("..")
            tlo, thi = f[6].split("..")
            out["sizes"].append({
                "customers": int(f[0]), "events": int(f[1]), "eps": float(f[2]),
                "ns": float(f[3]), "ns_min": float(lo), "ns_max": float(hi),
                "tick": float(f[5]), "tick_min": float(tlo), "tick_max": float(thi),
                "b_cust": float(f[7]), "alloc_b": float(f[8]), "b_part": float(f[9]),
                "b_link": float(f[10])})
    if not out["sizes"]:
        raise ReportError(f"{r.path}: no size rows in bench_processor's table")
    m = r.need(r"^peak RSS: ([\d.]+) MiB \(largest size (\d+) customers\)", "peak RSS line")
    out["rss_mib"], out["rss_size"] = float(m.group(1)), int(m.group(2))
    m = re.search(r"^avro-c raw avro_value_read over (\d+) of the same encoded events: (\d+) "
                  r"records/s", r.text, re.M)
    out["avro_raw"] = float(m.group(2)) if m else None
    goals = {}
    for line in r.lines:
        g = re.match(r"^goal: (.*?) \.+ (met|NOT met|not measured) \((.*)\)\s*$", line)
        if g:
            goals[g.group(1).strip()] = (g.group(2), g.group(3))
    for key in (">= 2,000,000 events/s per core", "cost at largest size <= 1.5x smallest",
                "daily tick <= 1 us per customer", "state <= 1.5 KiB per customer"):
        if key not in goals:
            raise ReportError(f"{r.path}: no 'goal: {key} ... met|NOT met' line")
    out["goals"] = goals
    return out


def parse_e2e(r: Result) -> dict:
    out: dict = {"runs": [], "median": None, "latency": None, "events": None}
    m = re.search(r"binary (\S+), guarantee (\S+)", r.text)
    out["guarantee"] = m.group(2).rstrip(",") if m else None
    for m in re.finditer(r"throughput run (\d+): sustained ([\d,.na]+) ev/s, first event to lag 0 "
                         r"([\d,.]+) ev/s, .*?CPU ([\d.]+)s = ([\d.]+) s/M events, VmHWM (\d+) MiB",
                         r.text):
        out["runs"].append({"sustained": _f(m.group(2)), "e2e": _f(m.group(3)),
                            "cpu_per_m": float(m.group(5)), "hwm": float(m.group(6))})
    m = re.search(r"THROUGHPUT \(median of (\d+), (\d+) events\): sustained ([\d,.na]+) ev/s; "
                  r"first event to lag 0 ([\d,.]+) ev/s; ([\d.]+) CPU-s per million events; "
                  r"peak RSS (\d+) MiB", r.text)
    if m:
        out["events"] = int(m.group(2))
        out["median"] = {"n": int(m.group(1)), "sustained": _f(m.group(3)), "e2e": _f(m.group(4)),
                         "cpu_per_m": float(m.group(5)), "hwm": float(m.group(6))}
        if len(out["runs"]) != out["median"]["n"]:
            raise ReportError(f"{r.path}: THROUGHPUT says {out['median']['n']} runs, "
                              f"{len(out['runs'])} 'throughput run' lines")
    m = re.search(r"LATENCY \(paced at ([\d,.]+) ev/s, (\d+) alert records\): p50 (\d+) ms, "
                  r"p99 (\d+) ms, max (\d+) ms", r.text)
    if m:
        out["latency"] = {"rate": _f(m.group(1)), "alerts": int(m.group(2)),
                          "p50": float(m.group(3)), "p99": float(m.group(4)),
                          "max": float(m.group(5))}
    m = re.search(r"LATENCY FROM RELEASE \((\d+) alert records\): p50 (\d+) ms, p99 (\d+) ms, "
                  r"max (\d+) ms", r.text)
    if m and out["latency"]:
        out["latency"]["release"] = {"alerts": int(m.group(1)), "p50": float(m.group(2)),
                                     "p99": float(m.group(3)), "max": float(m.group(4))}
    m = re.search(r"--latency-runs (\d+)", r.meta["command"])
    if out["latency"]:
        out["latency"]["runs"] = int(m.group(1)) if m else 1
    if out["median"] is None and out["latency"] is None:
        raise ReportError(f"{r.path}: neither a 'THROUGHPUT (median of ...' nor a 'LATENCY "
                          f"(paced at ...' line from bench/e2e/run.py")
    return out


def parse_peer(r: Result) -> dict:
    m = r.need(r"^== Kafka Streams peer .*?, (\S+) customers x (\d+) days, (\d+) events, "
               r"(\d+) partitions ==", "'== Kafka Streams peer ... ==' line")
    out = {"load": m.group(1), "days": int(m.group(2)), "events": int(m.group(3))}

    def fig(label: str, pattern: str) -> re.Match:
        # run.sh aligns its figures two or more spaces after the label, which tells "peer vs
        # partnerpulse  identical" from "peer vs partnerpulse cstage ref  identical".
        return r.need(r"^" + re.escape(label) + r" {2,}" + pattern, f"'{label}' line")

    out["peer_eps"] = float(fig("peer events/s", r"([\d.]+)").group(1))
    out["peer_cpu"] = float(fig("peer CPU-seconds per 1M events", r"([\d.]+)").group(1))
    out["peer_rss"] = float(fig("peer peak RSS (VmHWM)", r"([\d.]+) MiB").group(1))
    out["peer_restore"] = float(fig("peer restore time", r"([\d.]+) s").group(1))
    out["pp_eps"] = float(fig("partnerpulse events/s", r"([\d.]+)").group(1))
    m = fig("partnerpulse CPU-s per 1M", r"([\d.]+)\s+\(peer / partnerpulse: x([\d.]+)\)")
    out["pp_cpu"], out["cpu_ratio"] = float(m.group(1)), float(m.group(2))
    m = fig("partnerpulse peak RSS", r"([\d.]+) MiB\s+\(peer / partnerpulse: x([\d.]+)\)")
    out["pp_rss"], out["rss_ratio"] = float(m.group(1)), float(m.group(2))
    out["pp_restore"] = float(fig("partnerpulse restore time", r"([\d.]+) s").group(1))
    out["vs"] = fig("peer vs partnerpulse", r"(.*?)\s*$").group(1)
    out["vs_ref"] = fig("peer vs partnerpulse cstage ref", r"(.*?)\s*$").group(1)
    return out


def parse_restore(r: Result) -> dict:
    m = r.need(r"^restore of (\d+) partner x customer pairs \((\d+) changelog records",
               "'restore of N partner x customer pairs' line")
    out = {"pairs": int(m.group(1)), "records": int(m.group(2))}
    for key, label in (("rate", "changelog records/s"), ("mbs", "changelog MB/s"),
                       ("changelog", "time to ready from the changelog"),
                       ("snapshot", "time to ready from a local snapshot")):
        m = r.need(r"^\s+" + re.escape(label) + r"\s+median\s+([\d.]+) \S+\s+\(min ([\d.]+), "
                   r"max ([\d.]+), (\d+) runs\)", f"'{label}' line")
        out[key] = (float(m.group(1)), float(m.group(2)), float(m.group(3)))
        out["runs"] = int(m.group(4))
    return out


def _f(s: str) -> float:
    return float(s.replace(",", ""))


PARSERS = {
    "decode": parse_decode,
    "processor": parse_processor,
    "processor-120d": parse_processor,
    "e2e-exactly_once": parse_e2e,
    "e2e-at_least_once": parse_e2e,
    "peer-kafka-streams": parse_peer,
    "restore_state": parse_restore,
}


def load(results: pathlib.Path) -> dict:
    """name -> (Result, figures) for every result file present; unknown files are errors."""
    out = {}
    if results.is_dir():
        for path in sorted(results.glob("*.txt")):
            name = path.stem
            if name not in PARSERS:
                raise ReportError(f"{path}: not a known result ({', '.join(RESULTS)})")
            r = Result(path)
            out[name] = (r, PARSERS[name](r))
    return out


# ---------------------------------------------------------------------------------------------
# Rows.

def proc_goal(fig: dict, key: str, label: str) -> str:
    word, detail = fig["goals"][key]
    if word == "not measured":
        return f"{label}: not measured ({detail})"
    detail = re.sub(r"\b\d{5,}\b", lambda m: num(int(m.group())), detail)
    return f"{label}: {verdict(word == 'met')} ({detail})"


def rows(res: dict) -> list[tuple[str, str, str, str, str]]:
    """(what, figure, goal, command, measured) for every row, in the README's order."""
    out = []

    def row(name, what, figure, goal):
        if name in res:
            r, _ = res[name]
            out.append((what, figure, goal, f"`{r.meta['command']}`", r.when()))
        else:
            out.append((what, NOT_MEASURED, goal, f"`{RESULTS[name]}`", "—"))

    # 1. decode
    what = "decode + validation, per core"
    goal = f"≥ {GOALS['avro_share'] * 100:.0f} % of avro-c's raw decode"
    if "decode" in res:
        _, f = res["decode"]
        names = {"deal": "deal", "license_consumption": "licence", "support": "support",
                 "deal (v2 writer, resolved)": "deal from a v2 writer"}
        parts = [f"{names.get(k, k)} {mega(v[0])}" for k, v in f["rows"].items()]
        ratios = [v[2] for v in f["rows"].values()]
        figure = (f"{', '.join(parts)} records/s ({runs_of(f['runs'])}): "
                  f"{min(ratios):.2f}–{max(ratios):.2f}× avro-c's raw `avro_value_read` "
                  f"on the same bytes")
        goal += f": {verdict(min(ratios) >= GOALS['avro_share'])} ({min(ratios) * 100:.0f} % worst)"
        row("decode", what, figure, goal)
    else:
        row("decode", what, None, goal)

    # 2-4. processor core, 14 days
    p = res.get("processor", (None, None))[1]
    sizes = p["sizes"] if p else []
    runs = runs_of(p["runs"]) if p else ""
    what = (f"Confluent-framed Avro → decode → model, per core ({p['days']} event days, "
            f"CPU time, {runs}, ns/event [min..max])" if p else
            "Confluent-framed Avro → decode → model, per core")
    if p:
        figure = "; ".join(f"{size_name(s['customers'])} customers {mega(s['eps'])} events/s "
                           f"({num(s['ns'], 1)} ns{rng(s['ns_min'], s['ns_max'], 1)})"
                           for s in sizes)
        if p["avro_raw"]:
            figure += f"; avro-c's raw decode of the same events {mega(p['avro_raw'])} records/s"
        goal = "; ".join([
            proc_goal(p, ">= 2,000,000 events/s per core", "≥ 2 M events/s"),
            proc_goal(p, ">= 40 % of raw avro-c decode speed", "≥ 40 % of avro-c's raw decode")
            if ">= 40 % of raw avro-c decode speed" in p["goals"] else
            "≥ 40 % of avro-c's raw decode: not measured",
            (proc_goal(p, "cost at largest size <= 1.5x smallest",
                       f"cost per event at {size_name(sizes[-1]['customers'])} ≤ 1.5× "
                       f"{size_name(sizes[0]['customers'])}")
             if len(sizes) > 1 else "cost at 1M ≤ 1.5× 10k: not measured (one size)")])
    else:
        figure, goal = None, ("≥ 2 M events/s; ≥ 40 % of avro-c's raw decode; "
                              "cost per event at 1M ≤ 1.5× 10k")
    row("processor", what, figure, goal)

    what = "daily tick per active customer (ns [min..max])"
    if p:
        figure = "; ".join(f"{size_name(s['customers'])} {num(s['tick'])} ns"
                           f"{rng(s['tick_min'], s['tick_max'])}" for s in sizes)
        goal = proc_goal(p, "daily tick <= 1 us per customer", "≤ 1 µs")
    else:
        figure, goal = None, "≤ 1 µs"
    row("processor", what, figure, goal)

    what = "model state"
    if p:
        figure = "; ".join(f"{size_name(s['customers'])} {num(s['b_cust'])} B per customer "
                           f"(model's count), {num(s['alloc_b'])} B (allocator's)" for s in sizes)
        figure += (f"; {num(sizes[-1]['b_part'])} B per partner, {num(sizes[-1]['b_link'])} B per "
                   f"partner×customer link; peak RSS {num(p['rss_mib'])} MiB with "
                   f"{size_name(p['rss_size'])} customers")
        goal = proc_goal(p, "state <= 1.5 KiB per customer", "≤ 1.5 KiB per customer")
        goal += "; " + (proc_goal(p, "peak RSS <= 2 GiB at 1M customers", "peak RSS ≤ 2 GiB at 1M")
                        if "peak RSS <= 2 GiB at 1M customers" in p["goals"]
                        else "peak RSS ≤ 2 GiB at 1M: not measured")
    else:
        figure, goal = None, "≤ 1.5 KiB per customer; peak RSS ≤ 2 GiB at 1M customers"
    row("processor", what, figure, goal)

    # 5. processor core, steady state
    q = res.get("processor-120d", (None, None))[1]
    what = (f"the same over {q['days']} event days (steady state, {runs_of(q['runs'])})" if q else
            "the same over 120 event days (steady state)")
    if q:
        figure = "; ".join(f"{size_name(s['customers'])} customers {mega(s['eps'])} events/s "
                           f"({num(s['ns'], 1)} ns{rng(s['ns_min'], s['ns_max'], 1)}), tick "
                           f"{num(s['tick'])} ns{rng(s['tick_min'], s['tick_max'])}, "
                           f"{num(s['b_cust'])} B per customer ({num(s['alloc_b'])} allocator's)"
                           for s in q["sizes"])
        goal = "; ".join([proc_goal(q, ">= 2,000,000 events/s per core", "≥ 2 M events/s"),
                          proc_goal(q, "daily tick <= 1 us per customer", "tick ≤ 1 µs"),
                          proc_goal(q, "state <= 1.5 KiB per customer", "≤ 1.5 KiB")])
    else:
        figure, goal = None, "≥ 2 M events/s; tick ≤ 1 µs; ≤ 1.5 KiB per customer"
    row("processor-120d", what, figure, goal)

    # 6-8. end to end on the broker
    for name, mode in (("e2e-exactly_once", "exactly_once"),
                       ("e2e-at_least_once", "at_least_once")):
        e = res.get(name, (None, None))[1]
        what = f"end to end on the broker, {mode}"
        if e and e["median"]:
            med, rs = e["median"], e["runs"]
            what += f" ({num(e['events'])} preloaded events, {runs_of(med['n'])})"

            def mm(k, d=0, rs=rs):
                return rng(min(x[k] for x in rs), max(x[k] for x in rs), d)
            figure = (f"{num(med['sustained'])} events/s sustained{mm('sustained')}; first event "
                      f"→ lag 0 {num(med['e2e'])} events/s{mm('e2e')}; "
                      f"{med['cpu_per_m']:.2f} CPU-s per 1M events{mm('cpu_per_m', 2)}; "
                      f"peak RSS {num(med['hwm'])} MiB{mm('hwm')}")
            if mode == "at_least_once" and e["latency"]:
                la = e["latency"]
                figure += (f"; paced at {num(la['rate'])} events/s, event → alert p50 "
                           f"{num(la['p50'])} ms, p99 {num(la['p99'])} ms ({la['alerts']} alerts)")
            row(name, what, figure, "—")
        elif e:
            row(name, what, "not measured (the saved run has no throughput runs)", "—")
        else:
            row(name, what, None, "—")

    e = res.get("e2e-exactly_once", (None, None))[1]
    what = "event → alert latency, exactly_once, paced at half the sustained rate"
    goal = f"p99 ≤ {num(GOALS['latency_p99_ms'])} ms"
    if e and e["latency"]:
        la = e["latency"]
        what += (" (one paced run)" if la["runs"] == 1 else
                 f" ({la['runs']} paced runs, their alerts pooled)")
        figure = (f"from the first event past the day's boundary: p50 {num(la['p50'])} ms, "
                  f"p99 {num(la['p99'])} ms, max {num(la['max'])} ms "
                  f"({la['alerts']} alert records, paced at {num(la['rate'])} events/s)")

        def judged(p99: float, how: str) -> str:
            ok = p99 <= GOALS["latency_p99_ms"]
            return (f"{how}: {verdict(ok)}" +
                    ("" if ok else f" ({p99 / GOALS['latency_p99_ms']:.1f}× the goal)"))
        goal += " " + judged(la["p99"], "from the boundary event")
        rel = la.get("release")
        if rel:
            figure += (f"; from the release (every input past the boundary or idle, "
                       f"bench/e2e/README.md): p50 {num(rel['p50'])} ms, p99 {num(rel['p99'])} "
                       f"ms, max {num(rel['max'])} ms")
            goal += "; " + judged(rel["p99"], "from the release")
        row("e2e-exactly_once", what, figure, goal)
    elif e:
        row("e2e-exactly_once", what, "not measured (the saved run has no paced run)", goal)
    else:
        row("e2e-exactly_once", what, None, goal)

    # 9. Kafka Streams peer
    k = res.get("peer-kafka-streams", (None, None))[1]
    what = "vs Kafka Streams 4.4 (`exactly_once_v2`, RocksDB) on the same topics"
    goal_c = f"≥ {GOALS['peer_cpu_ratio']:.0f}× events per CPU-second"
    goal_r = f"≤ 1/{GOALS['peer_rss_ratio']:.0f} peak RSS"
    if k:
        what += f", {num(k['events'])} events, one run"
        identical = k["vs"].startswith("identical")
        figure = (f"partnerpulse {num(k['pp_eps'])} vs {num(k['peer_eps'])} events/s "
                  f"({k['pp_eps'] / k['peer_eps']:.2f}×); {k['pp_cpu']:.2f} vs {k['peer_cpu']:.2f} "
                  f"CPU-s per 1M events ({k['cpu_ratio']:.2f}×); peak RSS {num(k['pp_rss'])} vs "
                  f"{num(k['peer_rss'])} MiB (1/{k['rss_ratio']:.2f}); restore with the state dir "
                  f"deleted {k['pp_restore']:.2f} s vs {k['peer_restore']:.2f} s; output: {k['vs']}; "
                  f"the peer's vs partnerpulse's customers stage run directly: {k['vs_ref']}")
        goal = (f"{goal_c}: {verdict(k['cpu_ratio'] >= GOALS['peer_cpu_ratio'])}; "
                f"{goal_r}: {verdict(k['rss_ratio'] >= GOALS['peer_rss_ratio'])}; "
                f"identical output: {verdict(identical)}")
    else:
        figure, goal = None, f"{goal_c}; {goal_r}; identical output"
    row("peer-kafka-streams", what, figure, goal)

    # 10. restore
    s = res.get("restore_state", (None, None))[1]
    what = "restore of model state (one local broker)"
    if s:
        what = (f"restore of {num(s['pairs'])} partner×customer pairs ({num(s['records'])} "
                f"changelog records, {runs_of(s['runs'])})")
        figure = (f"from the changelog {s['changelog'][0]:.2f} s{rng(*s['changelog'][1:], 2)} "
                  f"({num(s['rate'][0])} records/s{rng(*s['rate'][1:])}, {s['mbs'][0]:.1f} MB/s); "
                  f"from a local snapshot {s['snapshot'][0]:.2f} s{rng(*s['snapshot'][1:], 2)}")
    else:
        figure = None
    row("restore_state", what, figure, "—")
    return [(w, f if f is not None else NOT_MEASURED, g, c, m) for w, f, g, c, m in out]


def section(res: dict) -> str:
    """The text between the markers (without them)."""
    cell = lambda s: s.replace("|", "\\|")  # noqa: E731
    lines = [
        "",
        "Generated by `bench/report.py --write` from the latest saved output of each benchmark "
        "(bench/results/, how to save: bench/README.md); figures are medians with [min..max] "
        "where the benchmark prints them. This 2-core machine is shared with other builds and "
        "tests: run-to-run spread is up to ±25 %.",
        "",
        "| what | figure | goal of issue #7 | command | measured |",
        "|---|---|---|---|---|",
    ]
    for r in rows(res):
        lines.append("| " + " | ".join(cell(x) for x in r) + " |")
    lines.append("")
    return "\n".join(lines) + "\n"


def splice(readme: str, body: str, path: pathlib.Path) -> str:
    b, e = readme.find(BEGIN), readme.find(END)
    if b < 0 or e < b or readme.count(BEGIN) != 1 or readme.count(END) != 1:
        raise ReportError(f"{path}: needs exactly one '{BEGIN}' followed by one '{END}'")
    return readme[:b + len(BEGIN)] + "\n" + body + readme[e:]


# ---------------------------------------------------------------------------------------------
# --save

def git(*args: str) -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True,
                              text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def save(name: str, argv: list[str], results: pathlib.Path, keep_failed: bool) -> int:
    """Runs argv from the repository root, shows its output as it comes, then writes
    results/NAME.txt: the header line and everything it printed (stdout and stderr)."""
    if name not in RESULTS:
        print(f"report.py: --save {name}: not a known result ({', '.join(RESULTS)})",
              file=sys.stderr)
        return 2
    if not argv:
        print("report.py: --save NAME -- COMMAND [ARG...]", file=sys.stderr)
        return 2
    start = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    load1 = os.getloadavg()[0]
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = [ln[3:] for ln in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    dirty = bool(changed)
    results.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile("w+b") as buf:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert proc.stdout is not None
        echo = getattr(sys.stdout, "buffer", None)
        for chunk in iter(lambda: proc.stdout.read1(65536), b""):
            if echo is not None:
                echo.write(chunk)
                echo.flush()
            else:
                sys.stdout.write(chunk.decode(errors="replace"))
            buf.write(chunk)
        rc = proc.wait()
        meta = {"name": name, "date": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "commit": commit,
                "dirty": dirty, "changed": changed[:20], "exit": rc, "seconds": round(time.monotonic() - t0, 1),
                "load1": round(load1, 2), "cpus": os.cpu_count(), "command": shlex.join(argv)}
        target = results / f"{name}.txt"
        if rc != 0 and not keep_failed:
            target = results / f"{name}.failed"
        buf.seek(0)
        target.write_bytes((HEADER + json.dumps(meta) + "\n").encode() + buf.read())
    print(f"report.py: saved {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}"
          + (f" (exit {rc}: not used by the report; --keep-failed to keep it as the result)"
             if rc != 0 and not keep_failed else ""), file=sys.stderr)
    return rc


# ---------------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    cmd: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, cmd = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="bench/README.md: the command of every benchmark")
    ap.add_argument("--results", type=pathlib.Path, default=ROOT / "bench/results",
                    help="folder of the saved outputs (default bench/results)")
    ap.add_argument("--readme", type=pathlib.Path, default=ROOT / "README.md")
    act = ap.add_mutually_exclusive_group()
    act.add_argument("--write", action="store_true", help="rewrite README's table")
    act.add_argument("--check", action="store_true",
                     help="exit 1 if README's table differs from what --write would write")
    act.add_argument("--save", metavar="NAME",
                     help=f"run -- COMMAND and save its output as NAME ({', '.join(RESULTS)})")
    ap.add_argument("--keep-failed", action="store_true",
                    help="with --save: keep a run that exited non-zero as the result")
    args = ap.parse_args(argv)
    if args.save:
        return save(args.save, cmd, args.results, args.keep_failed)
    if cmd:
        ap.error("a command after -- only goes with --save")
    try:
        body = section(load(args.results))
        if not (args.write or args.check):
            sys.stdout.write(body)
            return 0
        old = args.readme.read_text(encoding="utf-8")
        new = splice(old, body, args.readme)
    except (ReportError, OSError) as e:
        print(f"report.py: {e}", file=sys.stderr)
        return 2
    if args.check:
        if old == new:
            return 0
        sys.stdout.writelines(difflib.unified_diff(
            old.splitlines(True), new.splitlines(True), str(args.readme),
            f"{args.readme} (bench/report.py --write)"))
        print(f"report.py: {args.readme}'s performance table is not what bench/report.py --write "
              f"makes of {args.results}", file=sys.stderr)
        return 1
    if new != old:
        args.readme.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
