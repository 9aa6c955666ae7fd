#!/usr/bin/env bash
#
# registry.sh - start/stop the project's TEST Schema Registry (registry.py,
# a small Confluent-compatible REST server on Python's standard library; not
# Confluent's, not for production) on a fixed loopback port, for the
# integration tests' ctest fixture and for development.
#
# Usage: deploy/local/registry/registry.sh start|stop|url
#
# Environment:
#   PP_REGISTRY_PORT  port (default 38081)
#   PP_REGISTRY_ARGS  extra arguments for registry.py (e.g. --fail-first 3)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PORT=${PP_REGISTRY_PORT:-38081}
STATE=${TMPDIR:-/tmp}/pp-registry-$PORT
PIDFILE=$STATE/pid
LOG=$STATE/registry.log
URL=http://127.0.0.1:$PORT

alive() { [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

answers() {
  python3 - "$URL" <<'PY'
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1] + "/subjects", timeout=1).read()
except Exception:
    sys.exit(1)
PY
}

case "${1:-}" in
  start)
    mkdir -p "$STATE"
    if alive; then
      echo "registry: already running pid=$(cat "$PIDFILE") url=$URL"
      exit 0
    fi
    # shellcheck disable=SC2086
    nohup python3 "$HERE/registry.py" --port "$PORT" ${PP_REGISTRY_ARGS:-} >"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    deadline=$((SECONDS + 20))
    until answers; do
      if ! alive; then
        echo "registry: exited at start-up; log:" >&2
        cat "$LOG" >&2
        exit 1
      fi
      if ((SECONDS >= deadline)); then
        echo "registry: not answering on $URL after 20 s; log:" >&2
        cat "$LOG" >&2
        exit 1
      fi
      sleep 0.1
    done
    echo "registry: started pid=$(cat "$PIDFILE") url=$URL"
    ;;
  stop)
    if alive; then
      pid=$(cat "$PIDFILE")
      kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      echo "registry: stopped pid=$pid"
    else
      echo "registry: not running on port $PORT"
    fi
    rm -f "$PIDFILE"
    ;;
  url)
    echo "$URL"
    ;;
  *)
    sed -n '/^# Usage:/,/^#$/{/^#$/d;s/^# //;p}' "$0" >&2
    exit 2
    ;;
esac
