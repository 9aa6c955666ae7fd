#!/usr/bin/env bash
#
# run-all.sh - THE test command of partnerpulse (CI runs exactly this).
#
#   1. install-deps  deploy/local/install-deps.sh (apt, pip, Kafka jars)
#   2. build         build/       -DPP_WERROR=ON
#   3. test          ctest -L 'unit|component|integration' in build/
#                    (the `kafka` fixture starts/stops a real broker)
#   4. asan-build    build-asan/  -DPP_SANITIZE=ON -DPP_WERROR=ON
#   5. asan-test     ctest -L 'unit|component' in build-asan/
#   6. fuzz          tests/fuzz/run.sh: the wire-format decoder under
#                    libFuzzer + ASan + UBSan for PP_FUZZ_SECONDS (clang)
#
# Stops at the first failure, prints per-phase timings and PASS/FAIL, and
# exits non-zero on failure. Works from any directory.
#
# Usage: tests/run-all.sh [--no-install] [--no-asan] [--no-fuzz] [-L REGEX]
#   --no-install  skip step 1
#   --no-asan     skip steps 4-5
#   --no-fuzz     skip step 6
#   -L REGEX      ctest label filter (default 'unit|component|integration');
#                 the ASan run uses the same filter minus `integration`
#
# Environment:
#   PP_KAFKA_PORT         port of the test broker (default 39092; passed to
#                         CMake as -DPP_KAFKA_PORT)
#   PP_REGISTRY_PORT      port of the test Schema Registry (default 38081;
#                         passed to CMake as -DPP_REGISTRY_PORT)
#   PP_FUZZ_SECONDS       fuzzing time of step 6 (default 60)
#   PP_JOBS               build parallelism (default: nproc)
#   CTEST_PARALLEL_LEVEL  ctest parallelism (default 1, i.e. sequential)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() { sed -n '/^# Usage:/,/^#$/{/^#$/d;s/^# //;p}' "$0"; }

install=1 asan=1 fuzz=1 labels='unit|component|integration'
while (($#)); do
  case "$1" in
    --no-install) install=0 ;;
    --no-asan)    asan=0 ;;
    --no-fuzz)    fuzz=0 ;;
    -L)           (($# >= 2)) || { usage >&2; exit 2; }; labels=$2; shift ;;
    -L?*)         labels=${1#-L} ;;
    -h|--help)    usage; exit 0 ;;
    *)            echo "run-all: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

export PP_KAFKA_PORT=${PP_KAFKA_PORT:-39092}
jobs=${PP_JOBS:-$(nproc)}
export PP_REGISTRY_PORT=${PP_REGISTRY_PORT:-38081}
cmake_common=(-DPP_WERROR=ON -DPP_KAFKA_PORT="$PP_KAFKA_PORT" -DPP_REGISTRY_PORT="$PP_REGISTRY_PORT")

log() { printf '\n=== run-all: %s\n' "$*" >&2; }

# ------------------------------------------------------------- phase timing

phase_names=() phase_secs=() current='' current_t0=0 broker_maybe_up=0
t_start=$(date +%s)

begin() { current=$1; current_t0=$(date +%s); log "$1"; }
end() {
  phase_names+=("$current"); phase_secs+=($(($(date +%s) - current_t0)))
  current=''
}

# At exit: stop a broker a crashed/interrupted ctest may have left running,
# then print the timing summary and the verdict.
finish() {
  local rc=$?
  trap - EXIT INT TERM
  if ((broker_maybe_up)); then
    local out
    out=$(deploy/local/kafka.sh stop 2>&1) || true
    if grep -q 'stopped pid=' <<<"$out"; then
      echo "run-all: stopped a broker left running on port $PP_KAFKA_PORT: $out" >&2
    fi
    out=$(deploy/local/registry/registry.sh stop 2>&1) || true
    if grep -q 'stopped pid=' <<<"$out"; then
      echo "run-all: stopped a test registry left running on port $PP_REGISTRY_PORT" >&2
    fi
  fi
  if [[ -n "$current" ]]; then
    phase_names+=("$current (failed)"); phase_secs+=($(($(date +%s) - current_t0)))
  fi
  {
    echo
    echo "=== run-all: timings (s)"
    local i
    for i in "${!phase_names[@]}"; do
      printf '  %-22s %5d\n' "${phase_names[$i]}" "${phase_secs[$i]}"
    done
    printf '  %-22s %5d\n' total $(($(date +%s) - t_start))
    if ((rc == 0)); then
      echo "run-all: PASS"
    else
      echo "run-all: FAIL (exit $rc${current:+, phase $current})"
    fi
  } >&2
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------- phases

if ((install)); then
  begin install-deps
  deploy/local/install-deps.sh
  end
fi

begin build
PP_JOBS=$jobs deploy/build.sh build -- "${cmake_common[@]}"
end

begin test
broker_maybe_up=1
ctest --test-dir build --output-on-failure --no-tests=error -L "$labels"
end

if ((asan)); then
  # Same label filter, never the integration tier. Skip (rather than fail)
  # when the filter selects integration tests only.
  n=$(ctest --test-dir build -N -L "$labels" -LE '^integration$' \
        | sed -n 's/^Total Tests: //p')
  if [[ "${n:-0}" == 0 ]]; then
    log "asan: no unit/component tests match -L '$labels'; skipped"
  else
    begin asan-build
    PP_JOBS=$jobs deploy/build.sh build-asan -- -DPP_SANITIZE=ON "${cmake_common[@]}"
    end

    begin asan-test
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      ctest --test-dir build-asan --output-on-failure --no-tests=error \
        -L "$labels" -LE '^integration$'
    end
  fi
fi

if ((fuzz)); then
  begin fuzz
  tests/fuzz/run.sh "${PP_FUZZ_SECONDS:-60}"
  end
fi
