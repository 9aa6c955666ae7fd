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
# (ref/cstage_ref.c), and against partnerpulse's runtime run on the same
# topics (partnerpulse_side below: its figures, the ratios, and its
# <app>-exchange records compared with the peer's).
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

# partnerpulse on the same preloaded topics: `partnerpulse run` (exactly_once,
# commit_interval 100ms, the peer's allowed lateness, processing.partitions =
# $PARTS, a fresh application_id, static membership as the peer has) from the
# beginning until the group's committed offsets reach the end of every input
# partition and of <app>-repartition. Sets FIG[pp_eps] (events / wall time from
# the process start to that moment, start-up and group join included, as the
# peer's figure includes its rebalance), FIG[pp_cpu_per_m] (utime + stime of
# the process at that moment), FIG[pp_hwm_kb] (VmHWM then) and FIG[pp_restore_s]
# (SIGKILL, delete state.dir, restart with the same application_id: seconds
# until /readyz answers 200), and leaves its <app>-exchange records, EOD markers
# excluded, sorted in $OUT/pp.sorted. The exchange topic carries the same
# pp_xrec bytes the peer writes (the peer's source index = its repartition
# partition = partnerpulse's customers task index, both murmur2 of
# customer_id over $PARTS partitions).
PP_APP=pp-bench-$(date +%s)

# A poller (python3 + confluent_kafka, as bench/e2e uses): prints one line
# "caught_up t=... cpu_s=... vmhwm_kb=..." the moment both lags are 0 (read
# from /proc/PID while it still runs), then waits until the exchange topic's
# end offset has not moved for SETTLE seconds (the sources go idle after
# processing.idle_timeout and close the last days) and prints "settled".
pp_poller() { # pp_poller PID GROUP SETTLE_S
  python3 - "$BOOTSTRAP" "$2" "$TOPICS" "$PARTS" "$1" "$3" <<'PY'
import os, sys, time
from confluent_kafka import Consumer, TopicPartition
boot, group, topics, parts = sys.argv[1], sys.argv[2], sys.argv[3].split(","), int(sys.argv[4])
pid, settle = int(sys.argv[5]), float(sys.argv[6])
c = Consumer({"bootstrap.servers": boot, "group.id": group, "enable.auto.commit": False})
inputs = [TopicPartition(t, p) for t in topics for p in range(parts)]
high = {(tp.topic, tp.partition): c.get_watermark_offsets(tp, timeout=10)[1] for tp in inputs}
rep = [TopicPartition(group + "-repartition", p) for p in range(parts)]
exch = TopicPartition(group + "-exchange", 0)


def alive():
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def input_lag():
    return sum(high[(tp.topic, tp.partition)] - max(tp.offset, 0)
               for tp in c.committed(inputs, timeout=10))


def rep_lag():
    # With transactions the end offset includes a commit marker per
    # transaction: a committed offset one short of it is caught up.
    n = 0
    for tp in c.committed(rep, timeout=10):
        if tp.offset < 0:
            return -1
        n += max(0, c.get_watermark_offsets(tp, timeout=10, cached=False)[1] - tp.offset - 1)
    return n


t0 = time.monotonic()
while True:
    if not alive():
        print("exited", flush=True)
        sys.exit(1)
    try:
        if input_lag() == 0 and rep_lag() == 0:
            break
    except Exception:  # the repartition topic does not exist yet
        pass
    if time.monotonic() - t0 > 1800:
        print("timeout", flush=True)
        sys.exit(1)
    time.sleep(0.05)
now = time.time()
f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
cpu = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
hwm = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM:"))
print(f"caught_up t={now:.3f} cpu_s={cpu:.2f} vmhwm_kb={hwm}", flush=True)
last, since = None, time.monotonic()
while time.monotonic() - since < settle:
    if not alive():
        print("exited", flush=True)
        sys.exit(1)
    end = c.get_watermark_offsets(exch, timeout=10, cached=False)[1]
    if end != last or input_lag() != 0 or rep_lag() != 0:
        last, since = end, time.monotonic()
    time.sleep(0.2)
print(f"settled exchange_end={last}", flush=True)
c.close()
PY
}

pp_config() { # pp_config STATE_DIR
  cat <<EOF
application_id: $PP_APP
topics:
  deals: deals
  licenses: license-consumption
  support: support
  alerts: $PP_APP.alerts
  dlq: $PP_APP.dlq
processing:
  guarantee: exactly_once
  commit_interval: 100ms
  allowed_lateness: 24h
  partitions: $PARTS
state:
  dir: $1
log:
  level: warn
http:
  listen: 127.0.0.1:0
kafka:
  bootstrap.servers: $BOOTSTRAP
  group.instance.id: $PP_APP-1
EOF
}

partnerpulse_side() {
  [[ -x $PARTNERPULSE ]] || { log "no partnerpulse binary at $PARTNERPULSE"; return 1; }
  python3 -c 'import confluent_kafka' 2>/dev/null ||
    { log "the partnerpulse side needs python3 with confluent_kafka (tests/integration/requirements.txt)"; return 1; }
  local state cfg pid poller line t0 t1 port deadline
  state=$(mktemp -d "$OUT/pp-state.XXXXXX")
  cfg=$OUT/pp.yaml
  pp_config "$state" >"$cfg"
  peer --mode=create-topics --partitions=1 --topics="$PP_APP.alerts,$PP_APP.dlq" 2>>"$OUT/peer-tools.log"
  log "partnerpulse: processing from the beginning ($PP_APP, exactly_once, commit_interval 100ms)"
  t0=$(date +%s.%N)
  "$PARTNERPULSE" run --config "$cfg" </dev/null >/dev/null 2>"$OUT/pp-run.log" &
  pid=$!
  # settle: 5 s, more than processing.idle_timeout (500 ms) + a commit, as the peer waits before it exits
  pp_poller $pid "$PP_APP" 5 >"$OUT/pp-poller.out" &
  poller=$!
  until grep -q '^caught_up' "$OUT/pp-poller.out" 2>/dev/null; do
    kill -0 $poller 2>/dev/null || {
      tail -20 "$OUT/pp-run.log" >&2
      kill -9 $pid 2>/dev/null || true
      log "partnerpulse did not catch up ($(cat "$OUT/pp-poller.out"))"
      return 1
    }
    sleep 0.2
  done
  line=$(grep '^caught_up' "$OUT/pp-poller.out")
  log "partnerpulse $line"
  t1=$(sed -n 's/.* t=\([^ ]*\).*/\1/p' <<<"$line")
  FIG[pp_eps]=$(awk -v n="${FIG[events]}" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
  FIG[pp_cpu_per_m]=$(awk -v n="${FIG[events]}" -v c="$(field cpu_s "$line")" 'BEGIN { printf "%.3f", c / n * 1e6 }')
  FIG[pp_hwm_kb]=$(field vmhwm_kb "$line")
  wait $poller || {
    tail -20 "$OUT/pp-run.log" >&2
    kill -9 $pid 2>/dev/null || true
    log "partnerpulse's exchange topic did not settle"
    return 1
  }
  log "partnerpulse $(tail -1 "$OUT/pp-poller.out")"
  dump_sorted "$PP_APP-exchange" "$OUT/pp.sorted"

  # Restore: SIGKILL the running instance, delete its state.dir, restart with
  # the same application_id (and group.instance.id, so the new instance
  # replaces the killed one at once and aborts its open transaction).
  log "partnerpulse: restore (kill -9, delete $state, restart)"
  kill -9 $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  rm -rf "$state"
  mkdir -p "$state"
  t0=$(date +%s.%N)
  "$PARTNERPULSE" run --config "$cfg" </dev/null >/dev/null 2>"$OUT/pp-restore.log" &
  pid=$!
  deadline=$((SECONDS + 300))
  port=
  until [[ -n $port ]]; do
    port=$(sed -n 's/.*msg="http listening" address=[^ ]* port=\([0-9]*\).*/\1/p' "$OUT/pp-restore.log" | head -1)
    if ((SECONDS > deadline)) || ! kill -0 $pid 2>/dev/null; then
      tail -20 "$OUT/pp-restore.log" >&2
      log "partnerpulse restart failed"
      return 1
    fi
    [[ -n $port ]] || sleep 0.02
  done
  until [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz") == 200 ]]; do
    if ((SECONDS > deadline)) || ! kill -0 $pid 2>/dev/null; then
      tail -20 "$OUT/pp-restore.log" >&2
      kill -9 $pid 2>/dev/null || true
      log "partnerpulse did not become ready"
      return 1
    fi
    sleep 0.02
  done
  t1=$(date +%s.%N)
  FIG[pp_restore_s]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  FIG[pp_restored_records]=$(curl -s "http://127.0.0.1:$port/metrics" |
    awk '/^partnerpulse_restore_records_total/ { s += $NF } END { printf "%.0f", s }')
  log "partnerpulse ready after ${FIG[pp_restore_s]} s (${FIG[pp_restored_records]} changelog records restored)"
  kill -TERM $pid 2>/dev/null || true
  wait $pid || log "partnerpulse exited $? on SIGTERM (see $OUT/pp-restore.log)"
  return 0
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
partnerpulse peak RSS            $(awk -v k="${FIG[pp_hwm_kb]:-0}" 'BEGIN { printf "%.0f", k / 1024 }') MiB   (peer / partnerpulse: x$(ratio "${FIG[peer_hwm_kb]}" "${FIG[pp_hwm_kb]:-}"))
partnerpulse restore time        ${FIG[pp_restore_s]:-?} s (${FIG[pp_restored_records]:-?} changelog records)   (peer / partnerpulse: x$(ratio "${FIG[peer_restore_s]:-}" "${FIG[pp_restore_s]:-}"))
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
