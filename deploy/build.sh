#!/usr/bin/env bash
#
# build.sh - configure and build partnerpulse. One script for every place
# that builds it: README's first command, tests/run-all.sh (CI) and the
# container image's build stage, so CI exercises the image's build steps.
#
# Usage: deploy/build.sh [BUILD_DIR] [-- extra cmake arguments]
#   BUILD_DIR defaults to build/. Parallelism: PP_JOBS (default: nproc).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=build
if (($# > 0)) && [[ $1 != -- ]]; then
  dir=$1
  shift
fi
[[ ${1:-} == -- ]] && shift
jobs=${PP_JOBS:-$(nproc 2>/dev/null || echo 2)}

cd "$ROOT"
cmake -S . -B "$dir" "$@"
cmake --build "$dir" -j"$jobs"
echo "build.sh: built $dir/app/partnerpulse"
