#!/usr/bin/env bash
#
# kafka.sh - a real, single-node Apache Kafka 4.x broker (KRaft mode, no
# ZooKeeper, no Docker) for integration tests and local development.
#
# The broker's jars come from Maven Central: deploy/local/pom.xml lists them
# and `fetch` copies the whole runtime classpath into a cache directory outside
# the repo (keyed by a hash of pom.xml, so a version bump re-fetches). `start`
# writes server.properties and a log4j2 config into a fresh data directory,
# formats the KRaft storage, launches `kafka.Kafka` detached from the calling
# shell and waits (with a deadline) until the broker answers a metadata
# request listing broker 1. `stop` terminates it and removes the data dir.
# The broker listens on 127.0.0.1 only.
#
# Usage: deploy/local/kafka.sh fetch|start|stop|status|bootstrap
#
# Environment (all optional):
#   PP_KAFKA_PORT             client (PLAINTEXT) port           default 39092
#   PP_KAFKA_CONTROLLER_PORT  KRaft controller port             default PORT+1
#   PP_KAFKA_DIR              data/config/log dir, wiped on start
#                             default ${TMPDIR:-/tmp}/partnerpulse-kafka-$PORT
#   PP_KAFKA_CACHE            jar cache
#                             default ${XDG_CACHE_HOME:-$HOME/.cache}/partnerpulse/kafka
#   PP_KAFKA_START_TIMEOUT    seconds to wait for readiness     default 90
#   PP_KAFKA_KEEP=1           `stop` keeps the data dir (logs, segments)
#   PP_KAFKA_HEAP             JVM -Xmx                          default 512m
#
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM="$HERE/pom.xml"

CACHE=${PP_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/partnerpulse/kafka}
JARS="$CACHE/jars"
PORT=${PP_KAFKA_PORT:-39092}
CONTROLLER_PORT=${PP_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}
DIR=${PP_KAFKA_DIR:-${TMPDIR:-/tmp}/partnerpulse-kafka-$PORT}
START_TIMEOUT=${PP_KAFKA_START_TIMEOUT:-90}
HEAP=${PP_KAFKA_HEAP:-512m}

PIDFILE="$DIR/kafka.pid"
PROPS="$DIR/server.properties"
LOG4J="$DIR/log4j2.properties"
LOG="$DIR/kafka.log"
MARKER="$DIR/.partnerpulse-kafka"   # proves the dir is ours before rm -rf

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

now_ms() { date +%s%3N; }
elapsed() { # elapsed START_MS -> "12.3"
  local ms=$(( $(now_ms) - $1 ))
  printf '%d.%d' $((ms / 1000)) $(((ms % 1000) / 100))
}

# --------------------------------------------------------------------- fetch

pom_hash() { sha256sum "$POM" | cut -c1-16; }

cmd_fetch() {
  command -v mvn >/dev/null || die "mvn not found (needs Maven and Java 17+)"
  mkdir -p "$CACHE"
  # Subshell: the lock fd must not leak into the broker started afterwards.
  (
    # Serialise concurrent fetches (e.g. parallel test jobs) on one lock file.
    exec 9>"$CACHE/.fetch.lock"
    if command -v flock >/dev/null; then flock 9; fi
    want=$(pom_hash)
    if [[ -f "$JARS/.pom-hash" && $(cat "$JARS/.pom-hash") == "$want" ]]; then
      exit 0
    fi
    log "fetching Kafka jars from Maven Central into $JARS"
    fetch_t0=$(now_ms); tmp="$CACHE/jars.tmp.$$"
    rm -rf "$tmp"
    # Copy into a temp dir and swap it in, so an interrupted fetch never
    # leaves a half-populated, hash-stamped jar dir behind.
    # Maven's output is kept aside (it prints stray ANSI codes even with -q)
    # and shown only on failure.
    if ! mvn -B -q -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
        -DoutputDirectory="$tmp" -DincludeScope=runtime \
        </dev/null >"$tmp.log" 2>&1; then
      cat "$tmp.log" >&2; rm -rf "$tmp" "$tmp.log"
      die "mvn dependency:copy-dependencies failed"
    fi
    rm -f "$tmp.log"
    echo "$want" >"$tmp/.pom-hash"
    rm -rf "$JARS"
    mv "$tmp" "$JARS"
    log "fetched $(find "$JARS" -name '*.jar' | wc -l) jars in $(elapsed "$fetch_t0")s"
  )
}

# ------------------------------------------------------------------- helpers

# Pid of our broker if it is alive (checked against its command line so a
# recycled pid is not mistaken for Kafka), else empty.
broker_pid() {
  [[ -f "$PIDFILE" ]] || return 0
  local pid; pid=$(cat "$PIDFILE" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  if [[ -r "/proc/$pid/cmdline" ]] \
     && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$PROPS"; then
    echo "$pid"
  fi
}

# Serialise start/stop of one instance (e.g. parallel test jobs all calling
# `start`): take an exclusive lock on fd 8, held until the script exits. The
# lock file lives in the cache dir, not in $DIR, because $DIR gets wiped.
lock_instance() {
  mkdir -p "$CACHE/locks"
  exec 8>"$CACHE/locks/port-$PORT.lock"
  if command -v flock >/dev/null; then flock 8; fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# True when the broker answers a metadata request that lists broker id 1 at
# our advertised address. The client port only opens at the very end of
# broker startup, so a cheap TCP probe comes first. Without kcat, fall back
# to "port open and the log says the server started".
answering() {
  port_open "$PORT" || return 1
  if command -v kcat >/dev/null; then
    local md
    md=$(kcat -b "127.0.0.1:$PORT" -L -m 2 2>/dev/null) || return 1
    grep -qE "^ +broker 1 at 127\.0\.0\.1:$PORT( |\$)" <<<"$md"
  else
    grep -q 'Kafka Server started' "$LOG" 2>/dev/null
  fi
}

# Remove the data dir, but only if it is empty or was created by this script.
wipe_dir() {
  [[ -e "$DIR" ]] || return 0
  if [[ -f "$MARKER" ]] || [[ -d "$DIR" && -z "$(ls -A "$DIR")" ]]; then
    rm -rf "$DIR"
  else
    die "$DIR exists and was not made by kafka.sh; refusing to delete it"
  fi
}

# Wait until answering, the process dies, or START_TIMEOUT seconds after
# START_MS (the beginning of `start`) pass.
await_ready() { # await_ready PID START_MS
  local pid=$1 t0=$2
  local deadline=$(( t0 + START_TIMEOUT * 1000 ))
  until answering; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "broker process $pid exited during startup; last log lines:"
      tail -n 40 "$LOG" "$DIR/stdout.log" >&2 2>/dev/null || true
      return 1
    fi
    if (( $(now_ms) >= deadline )); then
      log "broker not ready after ${START_TIMEOUT}s; last log lines:"
      tail -n 40 "$LOG" "$DIR/stdout.log" >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.2
  done
  log "started in $(elapsed "$t0")s (pid=$pid port=$PORT)"
}

# --------------------------------------------------------------------- start

write_config() {
  cat >"$PROPS" <<EOF
# Generated by deploy/local/kafka.sh - single-node KRaft broker+controller.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$DIR/data

# One node: every internal topic gets replication factor / min ISR 1.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
default.replication.factor=1

# Test-friendly behaviour.
num.partitions=1
auto.create.topics.enable=true
group.initial.rebalance.delay.ms=0
EOF

  # log4j2 (Kafka 4.x logs via slf4j -> log4j2). WARN everywhere, plus the
  # INFO startup/shutdown lines of the server classes ("Kafka Server
  # started" is also the readiness signal when kcat is missing).
  cat >"$LOG4J" <<EOF
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $LOG
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = FILE
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = INFO
logger.broker.name = kafka.server.BrokerServer
logger.broker.level = INFO
EOF
}

cmd_start() {
  local t0; t0=$(now_ms)
  lock_instance

  local pid; pid=$(broker_pid)
  if [[ -n "$pid" ]]; then
    if answering; then
      log "already running (pid=$pid port=$PORT)"
      return 0
    fi
    # Alive but not answering yet: most likely another `start` is still
    # waiting for it. Wait with the same deadline instead of racing it.
    log "broker pid=$pid is alive but not answering yet; waiting"
    await_ready "$pid" "$t0" || die "broker pid=$pid never became ready; run '$0 stop'"
    return 0
  fi
  port_open "$PORT" && die "port $PORT is in use by another process"
  port_open "$CONTROLLER_PORT" && die "port $CONTROLLER_PORT is in use by another process"

  cmd_fetch
  command -v java >/dev/null || die "java not found (needs Java 17+)"
  local cp="$JARS/*"

  wipe_dir
  mkdir -p "$DIR/data"
  : >"$MARKER"
  write_config

  local jvm_common=(-Dlog4j2.configurationFile="$LOG4J" -Djava.awt.headless=true)
  local cluster_id
  cluster_id=$(java "${jvm_common[@]}" -cp "$cp" kafka.tools.StorageTool random-uuid)
  java "${jvm_common[@]}" -cp "$cp" kafka.tools.StorageTool format \
      --standalone -t "$cluster_id" -c "$PROPS" >>"$DIR/format.log" 2>&1 \
    || { cat "$DIR/format.log" >&2; die "storage format failed"; }

  # setsid: own session, so the broker survives the caller's shell/terminal
  # and a Ctrl-C in the caller does not reach it. The wrapper writes its own
  # pid and then execs java, so the pid file names the JVM itself.
  # shellcheck disable=SC2016  # $$ and $@ are for the inner bash
  setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PIDFILE" \
    java -Xms128m -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      "${jvm_common[@]}" -Dkafka.logs.dir="$DIR" \
      -cp "$cp" kafka.Kafka "$PROPS" \
    </dev/null >>"$DIR/stdout.log" 2>&1 8>&- &

  # Wait (briefly) for the wrapper to write the pid file.
  local _
  for _ in $(seq 50); do [[ -s "$PIDFILE" ]] && break; sleep 0.1; done
  pid=$(cat "$PIDFILE" 2>/dev/null || true)
  [[ -n "$pid" ]] || die "broker did not start (see $DIR/stdout.log)"

  if ! await_ready "$pid" "$t0"; then
    # Leave no half-started broker behind; keep its files for a post-mortem.
    kill_broker "$pid"
    rm -f "$PIDFILE"
    die "start failed; logs kept in $DIR ('$0 stop' removes it)"
  fi
}

# ---------------------------------------------------------------------- stop

# SIGTERM, poll up to 30 s for a clean shutdown, then SIGKILL.
kill_broker() { # kill_broker PID
  local pid=$1 t0; t0=$(now_ms)
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$(( $(date +%s) + 30 ))
  while kill -0 "$pid" 2>/dev/null && (( $(date +%s) < deadline )); do
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid=$pid still alive after 30s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  log "stopped pid=$pid in $(elapsed "$t0")s"
}

cmd_stop() {
  lock_instance
  local pid; pid=$(broker_pid)
  if [[ -n "$pid" ]]; then
    kill_broker "$pid"
  else
    log "not running (port $PORT)"
  fi
  rm -f "$PIDFILE"
  if [[ "${PP_KAFKA_KEEP:-0}" == 1 ]]; then
    if [[ -d "$DIR" ]]; then log "kept $DIR"; fi
  else
    wipe_dir
  fi
}

# -------------------------------------------------------------------- status

cmd_status() {
  local pid; pid=$(broker_pid)
  if [[ -n "$pid" ]] && answering; then
    echo "running pid=$pid port=$PORT"
    return 0
  fi
  if [[ -n "$pid" ]]; then
    echo "not answering pid=$pid port=$PORT"
  else
    echo "not running port=$PORT"
  fi
  return 1
}

# ---------------------------------------------------------------------- main

case "${1:-}" in
  fetch)     cmd_fetch ;;
  start)     cmd_start ;;
  stop)      cmd_stop ;;
  status)    cmd_status ;;
  bootstrap) echo "127.0.0.1:$PORT" ;;
  *)
    echo "usage: $0 fetch|start|stop|status|bootstrap" >&2
    exit 2
    ;;
esac
