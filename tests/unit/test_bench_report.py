#!/usr/bin/env python3
"""Unit tests of bench/report.py, README's performance table from saved benchmark output.

The fixtures in vectors/bench/results/ are real output of the benchmarks (small runs, saved
with `bench/report.py --save`), vectors/bench/README.md what `--write` makes of them. These
tests pin the parsers to the benchmarks' current output (a benchmark that changes its output
breaks them), that a benchmark without a result says "not measured" and never a figure, that
`--check` fails on a README that differs, that `--write` touches only the text between the
markers, and that `--save` keeps a failed run apart.
"""

import io
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
VECTORS = HERE / "vectors" / "bench"
sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, str(ROOT / "bench"))
import report  # noqa: E402


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = report.main(list(args))
    return rc, out.getvalue(), err.getvalue()


def table(text: str) -> dict:
    """what (up to its first '(' or ',') -> the row's cells, from a generated section."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| what"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            rows[cells[0]] = cells
    return rows


class Fixtures(unittest.TestCase):
    def setUp(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="pp-bench-report-"))
        self.results = self.tmp / "results"
        shutil.copytree(VECTORS / "results", self.results)
        self.readme = self.tmp / "README.md"
        shutil.copy(VECTORS / "README.md", self.readme)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def test_committed_readme_is_what_write_makes(self):
        rc, out, err = run("--results", str(VECTORS / "results"), "--readme",
                           str(VECTORS / "README.md"), "--check")
        self.assertEqual(rc, 0, out + err)

    def test_parsers_read_the_figures_the_benchmarks_print(self):
        res = report.load(self.results)
        _, dec = res["decode"]
        deal = dec["rows"]["deal"]
        line = next(x for x in res["decode"][0].lines if x.startswith("deal "))
        self.assertEqual(line.split()[1:3], [f"{deal[0]:.0f}", f"{deal[1]:.0f}"])
        self.assertEqual(len(dec["rows"]), 4)

        _, p = res["processor"]
        self.assertEqual([s["customers"] for s in p["sizes"]], [10000, 20000])
        self.assertEqual(p["goals"]["daily tick <= 1 us per customer"][0], "met")
        self.assertEqual(p["goals"]["peak RSS <= 2 GiB at 1M customers"][0], "not measured")
        for s in p["sizes"]:
            self.assertLessEqual(s["ns_min"], s["ns"])
            self.assertLessEqual(s["ns"], s["ns_max"])
            self.assertAlmostEqual(s["eps"], 1e9 / s["ns"], delta=0.01 * s["eps"])

        _, e = res["e2e-exactly_once"]
        self.assertEqual(e["median"]["n"], len(e["runs"]))
        # Two paced runs of 32 alerts each, pooled (--latency-runs 2).
        self.assertEqual(e["latency"]["runs"], 2)
        self.assertEqual(e["latency"]["alerts"], 64)
        self.assertGreater(e["latency"]["p99"], 0)
        rel = e["latency"]["release"]
        self.assertEqual(rel["alerts"], 64)
        self.assertTrue(0 < rel["p50"] <= rel["p99"] <= rel["max"], rel)

        _, r = res["restore_state"]
        self.assertEqual(r["runs"], 5)
        for key in ("rate", "mbs", "changelog", "snapshot"):
            med, lo, hi = r[key]
            self.assertTrue(lo <= med <= hi, (key, r[key]))

        _, k = res["peer-kafka-streams"]
        self.assertTrue(k["vs"].startswith("identical"), k["vs"])
        self.assertAlmostEqual(k["cpu_ratio"], k["peer_cpu"] / k["pp_cpu"], delta=0.01)

    def test_missing_results_say_not_measured_and_show_the_command(self):
        for name in ("processor", "e2e-exactly_once"):
            (self.results / f"{name}.txt").unlink()
        rc, out, _ = run("--results", str(self.results))
        self.assertEqual(rc, 0)
        rows = table(out)
        tick = rows["daily tick per active customer (ns [min..max])"]
        self.assertEqual(tick[1], report.NOT_MEASURED)
        self.assertEqual(tick[3], f"`{report.RESULTS['processor']}`")
        self.assertEqual(tick[4], "—")
        lat = next(v for k, v in rows.items() if k.startswith("event → alert latency"))
        self.assertEqual(lat[1], report.NOT_MEASURED)
        self.assertNotRegex(lat[2], r"met|missed")
        # Nothing at all: every row says so, and no figure appears anywhere.
        rc, out, _ = run("--results", str(self.tmp / "none"))
        self.assertEqual(rc, 0)
        rows = table(out)
        self.assertEqual(len(rows), 10)
        self.assertTrue(all(r[1] == report.NOT_MEASURED and r[4] == "—" for r in rows.values()))
        self.assertNotRegex(out, r"\b(met|missed)\b")

    def test_measured_rows_say_when_and_with_which_command(self):
        rc, out, _ = run("--results", str(self.results))
        self.assertEqual(rc, 0)
        meta = json.loads((self.results / "restore_state.txt").read_text()
                          .splitlines()[0][len(report.HEADER):])
        row = next(v for k, v in table(out).items() if k.startswith("restore of"))
        self.assertEqual(row[3], f"`{meta['command']}`")
        self.assertIn(meta["commit"], row[4])
        self.assertIn(meta["date"][:10], row[4])

    def test_latency_goal_is_computed_from_p99(self):
        path = self.results / "e2e-exactly_once.txt"
        text = path.read_text()
        self.assertIn("LATENCY FROM RELEASE", text)
        fast = re.sub(r"(LATENCY \(paced.*?)p99 \d+ ms, max \d+ ms\n",
                      r"\1p99 240 ms, max 240 ms\n", text)
        fast = re.sub(r"(LATENCY FROM RELEASE.*?)p99 \d+ ms, max \d+ ms\n",
                      r"\1p99 180 ms, max 180 ms\n", fast)
        self.assertNotEqual(fast, text)
        path.write_text(fast)
        _, out, _ = run("--results", str(self.results))
        lat = next(v for k, v in table(out).items() if k.startswith("event → alert latency"))
        self.assertEqual(lat[2], "p99 ≤ 250 ms from the boundary event: met; from the release: met")
        path.write_text(fast.replace("p99 240 ms, max 240 ms", "p99 500 ms, max 500 ms"))
        _, out, _ = run("--results", str(self.results))
        lat = next(v for k, v in table(out).items() if k.startswith("event → alert latency"))
        self.assertEqual(lat[2], "p99 ≤ 250 ms from the boundary event: **missed** (2.0× the "
                                 "goal); from the release: met")
        self.assertIn("from the release (every input past the boundary or idle", lat[1])
        self.assertIn("p99 180 ms", lat[1])

    def test_processor_verdicts_are_the_benchmarks_own(self):
        path = self.results / "processor.txt"
        path.write_text(path.read_text().replace(
            "goal: daily tick <= 1 us per customer ....... met",
            "goal: daily tick <= 1 us per customer ....... NOT met"))
        _, out, _ = run("--results", str(self.results))
        tick = table(out)["daily tick per active customer (ns [min..max])"]
        self.assertTrue(tick[2].startswith("≤ 1 µs: **missed**"), tick[2])

    def test_check_fails_on_a_differing_readme_and_write_fixes_only_the_table(self):
        text = self.readme.read_text()
        before, after = text.split(report.BEGIN)[0], text.split(report.END)[1]
        edited = re.sub(r"\d+ MiB", "1 MiB", text, count=1)
        self.assertNotEqual(edited, text)
        self.readme.write_text(edited)
        args = ("--results", str(self.results), "--readme", str(self.readme))
        rc, out, err = run(*args, "--check")
        self.assertEqual(rc, 1)
        self.assertIn("+", out)
        self.assertIn("not what bench/report.py --write makes", err)
        self.assertEqual(run(*args, "--write")[0], 0)
        self.assertEqual(self.readme.read_text(), text)
        self.assertEqual(run(*args, "--check")[0], 0)
        new = self.readme.read_text()
        self.assertTrue(new.startswith(before) and new.endswith(after))

    def test_the_script_exits_1_on_check_failure(self):
        self.readme.write_text(self.readme.read_text().replace("| what |", "| What |"))
        p = subprocess.run([sys.executable, str(ROOT / "bench/report.py"), "--results",
                            str(self.results), "--readme", str(self.readme), "--check"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 1, p.stderr)

    def test_a_changed_output_format_is_an_error_not_a_blank_row(self):
        path = self.results / "restore_state.txt"
        path.write_text(path.read_text().replace("time to ready from a local snapshot",
                                                 "snapshot restore"))
        rc, _, err = run("--results", str(self.results))
        self.assertEqual(rc, 2)
        self.assertIn("restore_state.txt", err)
        self.assertIn("time to ready from a local snapshot", err)

    def test_a_file_without_header_or_unknown_name_is_an_error(self):
        (self.results / "decode.txt").write_text(
            "\n".join((self.results / "decode.txt").read_text().splitlines()[1:]))
        rc, _, err = run("--results", str(self.results))
        self.assertEqual(rc, 2)
        self.assertIn("header", err)
        shutil.copytree(VECTORS / "results", self.results, dirs_exist_ok=True)
        (self.results / "decoder.txt").write_text("x")
        rc, _, err = run("--results", str(self.results))
        self.assertEqual(rc, 2)
        self.assertIn("not a known result", err)

    def test_readme_without_markers_is_an_error(self):
        self.readme.write_text("# nothing here\n")
        rc, _, err = run("--results", str(self.results), "--readme", str(self.readme), "--write")
        self.assertEqual(rc, 2)
        self.assertIn(report.BEGIN, err)
        self.assertEqual(self.readme.read_text(), "# nothing here\n")

    def test_save_writes_header_and_output_and_keeps_failures_apart(self):
        out = self.tmp / "saved"
        rc, _, _ = run("--results", str(out), "--save", "decode", "--",
                       "sh", "-c", "echo one; echo two >&2")
        self.assertEqual(rc, 0)
        lines = (out / "decode.txt").read_text().splitlines()
        meta = json.loads(lines[0][len(report.HEADER):])
        self.assertEqual(meta["command"], "sh -c 'echo one; echo two >&2'")
        self.assertEqual(meta["exit"], 0)
        self.assertRegex(meta["date"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertRegex(meta["commit"], r"^[0-9a-f]{7,}$|^unknown$")
        self.assertEqual(lines[1:], ["one", "two"])
        rc, _, err = run("--results", str(out), "--save", "decode", "--", "sh", "-c", "exit 3")
        self.assertEqual(rc, 3)
        self.assertIn("not used by the report", err)
        self.assertEqual((out / "decode.txt").read_text().splitlines()[1:], ["one", "two"])
        self.assertTrue((out / "decode.failed").exists())
        rc, _, _ = run("--results", str(out), "--save", "nonsense", "--", "true")
        self.assertEqual(rc, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
