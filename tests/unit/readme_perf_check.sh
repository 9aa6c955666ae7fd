#!/bin/sh
# readme_perf_check.sh — README.md's performance table must be exactly what
# bench/report.py makes of the saved benchmark output in bench/results/
# (bench/README.md). On failure it prints the difference; the fix is
# `bench/report.py --write` (and committing README.md), never a hand edit.
# ctest runs it in the unit tier (unit_readme_perf).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
exec python3 "$root/bench/report.py" --check
