#!/usr/bin/env bash
#
# install-deps.sh - install everything partnerpulse needs to build and test
# on Debian 12 (bookworm): the C toolchain and libraries (apt), the Python
# packages of the integration tests (pip) and the Kafka broker's jars (Maven
# Central, via deploy/local/kafka.sh fetch).
#
# Idempotent and cheap to re-run: apt is skipped entirely (no `apt-get
# update`) when every package is already installed, pip only checks the
# pinned requirements, and the jar fetch is a no-op once cached.
#
# Runs as root, or as a user with sudo (used only for apt, only when needed).
# Java 17+ and Maven are taken from PATH when present (CI images preinstall
# them); otherwise openjdk-17-jre-headless and maven are installed from apt.
#
# Usage: deploy/local/install-deps.sh [--build-only]
#   --build-only  only what building needs (the container image's build stage):
#                 no test tools, no Python packages, no Kafka jars
set -euo pipefail

build_only=0
case "${1:-}" in
  --build-only) build_only=1 ;;
  "") ;;
  *) echo "usage: $0 [--build-only]" >&2; exit 2 ;;
esac

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
REQS="$ROOT/tests/integration/requirements.txt"

log() { printf 'install-deps: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ----------------------------------------------------------------------- apt

packages=(
  build-essential cmake pkg-config
  librdkafka-dev libavro-dev libevent-dev libjansson-dev libyaml-dev
  libcmocka-dev libsystemd-dev libcurl4-openssl-dev zlib1g-dev
  kcat clang-format valgrind
  chromium wrk
  clang libclang-rt-14-dev openssl
  systemd
)
if ((build_only)); then
  # Keep only what compiling and linking partnerpulse needs: the toolchain
  # and the -dev libraries, not the test harness or test tools.
  all=("${packages[@]}")
  packages=()
  for p in "${all[@]}"; do
    case "$p" in
      build-essential | cmake | pkg-config) packages+=("$p") ;;
      libcmocka-dev) ;;
      lib*-dev) packages+=("$p") ;;
    esac
  done
fi
((build_only)) || command -v java >/dev/null || packages+=(openjdk-17-jre-headless)
((build_only)) || command -v mvn >/dev/null || packages+=(maven)
if ((build_only)); then
  :
elif ! command -v python3 >/dev/null; then
  packages+=(python3 python3-pip)
elif ! python3 -m pip --version >/dev/null 2>&1; then
  packages+=(python3-pip)
fi

is_installed() {
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

missing=()
for p in "${packages[@]}"; do
  is_installed "$p" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  log "apt: all ${#packages[@]} packages already installed"
else
  command -v apt-get >/dev/null || die "apt-get not found (this script targets Debian 12)"
  sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "not root and sudo not found; cannot install: ${missing[*]}"
    sudo=(sudo)
  fi
  log "apt: installing ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ((build_only)); then
  log "done (build dependencies only)"
  exit 0
fi

# Kafka 4.x brokers need Java 17+; say so early rather than at broker start.
java_major=$(java -version 2>&1 | sed -nE '1s/.*version "(1\.)?([0-9]+).*/\2/p')
if [[ -n "$java_major" ]] && ((java_major < 17)); then
  log "warning: 'java' on PATH is Java $java_major; the Kafka broker needs Java 17+"
fi

# ----------------------------------------------------------------------- pip

pip_args=(--disable-pip-version-check -q)
# A distro Python outside a virtualenv refuses pip installs (PEP 668).
if [[ $(python3 -c 'import sys; print(sys.prefix != sys.base_prefix)') == False ]] \
   && [[ -f $(python3 -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')/EXTERNALLY-MANAGED ]]; then
  log "pip: externally managed system Python; using --break-system-packages"
  pip_args+=(--break-system-packages)
fi
log "pip: $(python3 --version 2>&1) <- ${REQS#"$ROOT"/}"
PIP_ROOT_USER_ACTION=ignore python3 -m pip install "${pip_args[@]}" -r "$REQS"

# --------------------------------------------------------------------- kafka

log "kafka: fetching broker jars (no-op when cached)"
"$HERE/kafka.sh" fetch

log "done"
