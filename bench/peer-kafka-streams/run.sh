#!/usr/bin/env bash
#
# run.sh - the Kafka Streams peer benchmark (issue #7): builds the peer,
# starts a broker, preloads `partnerpulse generate --load` events into
# 6-partition input topics, runs the peer from the beginning until every
# event is processed and committed, and prints events/s, CPU-seconds per
# million events, peak RSS (VmHWM of the JVM) and restore time (kill -9,
# delete the local state dir, restart: time until every store is restored).
# Then it checks the peer's exchange records, record by record, against
# partnerpulse's own customers stage run over the same events
# (ref/cstage_ref.c), and -- once the runtime lands -- against partnerpulse
# run on the same topics (the partnerpulse_side hook below).
#
# Usage: bench/peer-kafka-streams/run.sh [--quick]
#   --quick   a small load (300x10 for 30 days, ~95k events) for a smoke run
#
# Environment (all optional):
#   PP_KAFKA_PORT      broker port                           default 39392
#   PEER_LOAD          generate --load PxC                   default 3000x10 (30k customers)
#   PEER_DAYS          generate --days                       default 30 (~955k events with 3000x10)
#   PEER_PARTITIONS    input topic partitions                default 6
#   PEER_JAVA_OPTS     JVM options of the peer               default "-Xmx1g -XX:+UseG1GC"
#   PEER_THREADS       num.stream.threads                    default 1
#   PP_BUILD           partnerpulse build dir (for the generator and the reference)
#                                                            default <repo>/build
#   PARTNERPULSE       the partnerpulse binary               default $PP_BUILD/app/partnerpulse
#   PEER_KEEP_BROKER=1 leave the broker running at the end
#   PEER_OUT           where files go                        default ${TMPDIR:-/tmp}/pp-peer-bench
#
# Exit status: 0 when the run completed and every comparison that ran found
# identical records; 1 otherwise.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PORT=${PP_KAFKA_PORT:-39392}
BOOTSTRAP=127.0.0.1:$PORT
LOAD=${PEER_LOAD:-3000x10}
DAYS=${PEER_DAYS:-30}
PARTS=${PEER_PARTITIONS:-6}
JAVA_OPTS=${PEER_JAVA_OPTS:--Xmx1g -XX:+UseG1GC}
THREADS=${PEER_THREADS:-1}
PP_BUILD=${PP_BUILD:-$ROOT/build}
PARTNERPULSE=${PARTNERPULSE:-$PP_BUILD/app/partnerpulse}
OUT=${PEER_OUT:-${TMPDIR:-/tmp}/pp-peer-bench}
APP=peer-bench
STATE=$OUT/state
TOPICS=deals,license-consumption,support
if [[ ${1:-} == --quick ]]; then
  LOAD=300x10
fi

log() { printf 'run.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

RESULT=0
declare -A FIG

# ------------------------------------------------------------------ build

build_peer() {
  command -v mvn >/dev/null || die "mvn not found (Java 17+ and Maven needed)"
  log "building the peer (mvn package)"
  # Offline first: after one online resolve everything is in ~/.m2.
  (cd "$HERE" && { mvn -B -q -o package dependency:build-classpath -Dmdep.outputFile=target/classpath.txt \
      >"$OUT/mvn.log" 2>&1 || mvn -B -q package dependency:build-classpath \
      -Dmdep.outputFile=target/classpath.txt >"$OUT/mvn.log" 2>&1; }) || {
    cat "$OUT/mvn.log" >&2
    die "the peer does not build"
  }
  CP="$HERE/target/classes:$(cat "$HERE/target/classpath.txt")"
}

peer() { # peer ARGS... : the peer (or one of its tools) in the foreground
  # shellcheck disable=SC2086
  java $JAVA_OPTS -cp "$CP" dev.partnerpulse.peer.Main --bootstrap.servers="$BOOTSTRAP" "$@"
}

build_reference() {
  REF=$OUT/cstage_ref
  local libs=("$PP_BUILD/schemas/libpp_schema.a" "$PP_BUILD/processors/libpp_proc.a")
  for l in "${libs[@]}"; do
    [[ -f $l ]] || { log "no $l: reference comparison skipped (build partnerpulse in $PP_BUILD)"; REF=; return; }
  done
  # shellcheck disable=SC2046
  cc -O2 -std=c11 -I"$ROOT/processors" -I"$ROOT/processors/model" -I"$ROOT/schemas" \
    -o "$REF" "$HERE/ref/cstage_ref.c" "${libs[@]}" $(pkg-config --libs avro-c jansson libcurl) -lm ||
    { log "reference does not build: comparison skipped"; REF=; }
}

# ------------------------------------------------------------------ broker and input

start_broker() {
  log "starting a fresh broker on $BOOTSTRAP"
  PP_KAFKA_PORT=$PORT "$ROOT/deploy/local/kafka.sh" stop >/dev/null 2>&1 || true
  PP_KAFKA_PORT=$PORT "$ROOT/deploy/local/kafka.sh" start >&2
}

stop_broker() {
  if [[ ${PEER_KEEP_BROKER:-} != 1 ]]; then
    PP_KAFKA_PORT=$PORT "$ROOT/deploy/local/kafka.sh" stop >/dev/null 2>&1 || true
  fi
}

preload() {
  [[ -x $PARTNERPULSE ]] || die "no partnerpulse binary at $PARTNERPULSE (set PP_BUILD or PARTNERPULSE)"
  # retention.ms=-1: the records carry their event time (2025), which the
  # broker's 7-day retention would otherwise delete within minutes.
  peer --mode=create-topics --partitions="$PARTS" --topics="$TOPICS,$APP-assessments" 2>>"$OUT/peer-tools.log"
  log "preloading: partnerpulse generate --load $LOAD --days $DAYS"
  "$PARTNERPULSE" generate --load "$LOAD" --days "$DAYS" --kafka "$BOOTSTRAP" >&2
  # The same events as an event file for the reference (generate is deterministic).
  "$PARTNERPULSE" generate --load "$LOAD" --days "$DAYS" --out "$OUT/events.jsonl" 2>/dev/null
  FIG[events]=$(wc -l <"$OUT/events.jsonl")
}

# ------------------------------------------------------------------ the peer

field() { # field NAME LINE -> the value of NAME=... in a "PEER ..." line
  sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"
}

run_peer() {
  rm -rf "$STATE"
  log "peer: processing from the beginning (exactly_once_v2, commit.interval.ms=100)"
  local line
  line=$(peer --application.id=$APP --state.dir="$STATE" --num.stream.threads="$THREADS" \
    --exit.when.caught.up=true 2>"$OUT/peer-run.log" | grep '^PEER caught_up') ||
    { tail -20 "$OUT/peer-run.log" >&2; die "the peer did not finish"; }
  log "$line"
  FIG[peer_eps]=$(field events_per_s "$line")
  FIG[peer_cpu_per_m]=$(field cpu_s_per_million "$line")
  FIG[peer_hwm_kb]=$(field vmhwm_kb "$line")
  FIG[peer_late]=$(field late "$line")
  FIG[peer_parked]=$(field parked "$line")
}

# kill -9, delete the local state dir, restart: time until RUNNING with every
# store restored from its changelog.
restore_peer() {
  log "peer: restore (start, kill -9, delete $STATE, restart)"
  # shellcheck disable=SC2086
  java $JAVA_OPTS -cp "$CP" dev.partnerpulse.peer.Main --bootstrap.servers="$BOOTSTRAP" \
    --application.id=$APP --state.dir="$STATE" --num.stream.threads="$THREADS" --report.running=true \
    >"$OUT/peer-warm.out" 2>"$OUT/peer-warm.log" &
  local pid=$!
  local deadline=$((SECONDS + 120))
  until grep -q '^PEER running' "$OUT/peer-warm.out" 2>/dev/null; do
    ((SECONDS < deadline)) || { kill -9 $pid; die "the peer did not reach RUNNING"; }
    kill -0 $pid 2>/dev/null || die "the peer exited (see $OUT/peer-warm.log)"
    sleep 0.5
  done
  kill -9 $pid
  wait $pid 2>/dev/null || true
  rm -rf "$STATE"
  local line
  line=$(peer --application.id=$APP --state.dir="$STATE" --num.stream.threads="$THREADS" \
    --report.restore=true --exit.after.restore=true 2>"$OUT/peer-restore.log" | grep '^PEER restored') ||
    { tail -20 "$OUT/peer-restore.log" >&2; die "the peer did not restore"; }
  log "$line"
  FIG[peer_restore_s]=$(field to_running_s "$line")
  FIG[peer_restored_records]=$(field records "$line")
}

# ------------------------------------------------------------------ comparisons

# Exchange records minus EOD markers (their count depends on how often the
# watermark moved), one hex line each, sorted: equal files = identical records.
dump_sorted() { # dump_sorted TOPIC FILE
  peer --mode=dump --topic="$1" 2>>"$OUT/peer-tools.log" | cut -f2 | grep -v '^0105' | LC_ALL=C sort >"$2"
}

compare() { # compare NAME FILE_A FILE_B
  local a b
  a=$(wc -l <"$2")
  b=$(wc -l <"$3")
  if cmp -s "$2" "$3"; then
    log "$1: IDENTICAL ($a records)"
    FIG[$1]="identical ($a records)"
  else
    local d
    d=$(diff "$2" "$3" | grep -c '^[<>]' || true)
    log "$1: DIFFERENT: $a vs $b records, $d lines differ (diff $2 $3)"
    FIG[$1]="DIFFERENT ($a vs $b records, $d lines differ)"
    RESULT=1
  fi
}

compare_reference() {
  if [[ -z ${REF:-} ]]; then
    FIG[vs_reference]="not run (no partnerpulse libraries)"
    return
  fi
  log "reference: partnerpulse's customers stage over the same events ($PARTS partitions)"
  "$REF" "$OUT/events.jsonl" "$PARTS" 2>"$OUT/ref.log" | LC_ALL=C sort >"$OUT/ref.sorted"
  dump_sorted "$APP-assessments" "$OUT/peer.sorted"
  compare vs_reference "$OUT/peer.sorted" "$OUT/ref.sorted"
}

# HOOK for the lead: run partnerpulse (exactly-once, default commit interval,
# processing.partitions = $PARTS) on the same preloaded topics, from the
# beginning, until it has processed every event; set FIG[pp_eps],
# FIG[pp_cpu_per_m], FIG[pp_hwm_kb], FIG[pp_restore_s]; and leave its
# exchange topic's records in $OUT/pp.sorted with
#   dump_sorted <its application_id>-exchange "$OUT/pp.sorted"
# The exchange topic carries the same pp_xrec bytes the peer writes (the
# peer's source index = its repartition partition = partnerpulse's customers
# task index, both murmur2 of customer_id over $PARTS partitions).
partnerpulse_side() {
  log "partnerpulse side: not wired yet (hook partnerpulse_side in run.sh)"
  return 1
}

ratio() { # ratio A B -> A/B with 2 decimals, or "-"
  if [[ -n ${1:-} && -n ${2:-} ]]; then awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; else echo "-"; fi
}

report() {
  local hwm_mib="-"
  [[ -n ${FIG[peer_hwm_kb]:-} ]] && hwm_mib=$(awk -v k="${FIG[peer_hwm_kb]}" 'BEGIN { printf "%.0f", k / 1024 }')
  cat <<EOF

== Kafka Streams peer (customers sub-topology), $LOAD customers x $DAYS days, ${FIG[events]:-?} events, $PARTS partitions ==
peer events/s                    ${FIG[peer_eps]:-?}
peer CPU-seconds per 1M events   ${FIG[peer_cpu_per_m]:-?}
peer peak RSS (VmHWM)            ${hwm_mib} MiB
peer restore time                ${FIG[peer_restore_s]:-?} s (${FIG[peer_restored_records]:-?} changelog records)
peer late / parked events        ${FIG[peer_late]:-?} / ${FIG[peer_parked]:-?}
peer vs partnerpulse cstage ref  ${FIG[vs_reference]:-not run}
EOF
  if [[ -n ${FIG[pp_eps]:-} ]]; then
    cat <<EOF
partnerpulse events/s            ${FIG[pp_eps]}   (x$(ratio "${FIG[pp_eps]}" "${FIG[peer_eps]}") the peer)
partnerpulse CPU-s per 1M        ${FIG[pp_cpu_per_m]:-?}   (peer / partnerpulse: x$(ratio "${FIG[peer_cpu_per_m]}" "${FIG[pp_cpu_per_m]:-}"))
partnerpulse peak RSS            ${FIG[pp_hwm_kb]:-?} KiB   (peer / partnerpulse: x$(ratio "${FIG[peer_hwm_kb]}" "${FIG[pp_hwm_kb]:-}"))
partnerpulse restore time        ${FIG[pp_restore_s]:-?} s
peer vs partnerpulse             ${FIG[vs_partnerpulse]:-not compared}
EOF
  fi
}

main() {
  mkdir -p "$OUT"
  trap stop_broker EXIT
  build_peer
  build_reference
  start_broker
  preload
  run_peer
  restore_peer
  compare_reference
  if partnerpulse_side; then
    compare vs_partnerpulse "$OUT/peer.sorted" "$OUT/pp.sorted"
  fi
  report
  exit $RESULT
}

main "$@"
