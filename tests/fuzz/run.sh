#!/usr/bin/env bash
#
# run.sh - build the libFuzzer targets with clang under ASan + UBSan in
# build-fuzz/ and fuzz the wire-format decoder for a bounded time.
#
# Usage: tests/fuzz/run.sh [SECONDS]     (default 60)
#
# The seed corpus is written fresh from valid encoded events and the schema
# resolution vectors (fuzz_decode --write-seeds) into build-fuzz/corpus/, which
# also keeps what the fuzzer finds between runs. A crash leaves its input in
# build-fuzz/artifacts/ and makes this script exit non-zero.
#
# Environment: PP_FUZZ_BUILD (default <repo>/build-fuzz), PP_JOBS.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
secs=${1:-60}
[[ $secs =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS]" >&2; exit 2; }
build=${PP_FUZZ_BUILD:-$PWD/build-fuzz}
command -v clang >/dev/null || { echo "fuzz: clang not found (deploy/local/install-deps.sh)" >&2; exit 1; }

CC=clang cmake -S . -B "$build" -DPP_FUZZ=ON -DPP_SANITIZE=ON -DPP_TESTS=OFF >/dev/null
cmake --build "$build" -j"${PP_JOBS:-$(nproc)}" --target fuzz_decode

mkdir -p "$build/corpus" "$build/seeds" "$build/artifacts"
"$build/tests/fuzz/fuzz_decode" --write-seeds "$build/seeds"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
"$build/tests/fuzz/fuzz_decode" -max_total_time="$secs" -max_len=4096 -timeout=10 \
  -print_final_stats=1 -artifact_prefix="$build/artifacts/" \
  "$build/corpus" "$build/seeds"
