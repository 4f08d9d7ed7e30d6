#!/usr/bin/env bash
# Makes sure a Docker engine answers, saying what it does: nothing when one runs; else it
# starts the installed engine; else, on Debian or Ubuntu as root, installs Debian's
# docker.io and starts it. Anywhere else it says how to get one and exits 4.
# Run by `make lab` and `make test` (and so by CI); idempotent.
#
# One machine quirk is handled here and only where it is detected: when this kernel's
# capability bounding set lacks CAP_SYS_RESOURCE (seen on a Firecracker CI VM), runc
# cannot start privileged containers such as kind's nodes, so a runc wrapper that drops
# that one capability is registered as dockerd's default runtime, with a message. On a
# machine that has the capability (every laptop), nothing of it is installed.
# Measured recipe: /work/shared/notes/docker-engine-on-ci-vm.md.
set -euo pipefail

log() { printf '[docker-engine] %s\n' "$*"; }
die() { printf '[docker-engine] %s\n' "$1" >&2; exit "${2:-1}"; }

WRAPPER=/usr/local/sbin/runc-nocapres
DAEMON_JSON=/etc/docker/daemon.json
PIDFILE=/run/dockerd.pid

# cap_missing: true when CAP_SYS_RESOURCE (bit 24) is outside this process's bounding set.
cap_missing() {
  local bnd
  bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status 2>/dev/null) || return 1
  [ -n "$bnd" ] || return 1
  (( (16#$bnd >> 24 & 1) == 0 ))
}

is_root() { [ "$(id -u)" = 0 ]; }

debian_like() {
  [ -r /etc/os-release ] || return 1
  # shellcheck disable=SC1091
  . /etc/os-release
  case " ${ID:-} ${ID_LIKE:-} " in *" debian "*|*" ubuntu "*) return 0 ;; esac
  return 1
}

# Is the running engine using the wrapper when this machine needs it?
check_running_engine() {
  cap_missing || return 0
  local runtime
  runtime=$(docker info --format '{{.DefaultRuntime}}' 2>/dev/null || true)
  [ "$runtime" = runc-nocapres ] && return 0
  log "WARNING: this machine lacks CAP_SYS_RESOURCE and the running engine's default runtime is '$runtime':"
  log "  kind's privileged node containers will fail to start. Stop dockerd and run this script as root"
  log "  to register the runc wrapper ($WRAPPER), then start it again."
}

if docker info >/dev/null 2>&1; then
  log "engine running ($(docker info --format '{{.ServerVersion}}' 2>/dev/null), $(docker context show 2>/dev/null || echo default))"
  check_running_engine
  exit 0
fi

case "$(uname -s)" in
  Darwin) die "no Docker engine answers: start Docker Desktop (or \`colima start\`, or OrbStack), then run make again" 4 ;;
esac

if ! command -v dockerd >/dev/null 2>&1 && ! [ -x /usr/sbin/dockerd ]; then
  if is_root && debian_like && command -v apt-get >/dev/null; then
    log "no Docker engine installed: installing Debian's docker.io (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
  elif debian_like; then
    die "no Docker engine installed: run \`sudo apt-get install docker.io\` (or \`sudo make lab\`), or install Docker Engine: https://docs.docker.com/engine/install/" 4
  else
    die "no Docker engine installed: install Docker Engine (https://docs.docker.com/engine/install/) or Docker Desktop, then run make again" 4
  fi
fi

registered=""
wrapper_in_place() { [ -x "$WRAPPER" ] && grep -q runc-nocapres "$DAEMON_JSON" 2>/dev/null; }
if cap_missing && ! wrapper_in_place; then
  is_root || die "this machine lacks CAP_SYS_RESOURCE, so dockerd needs a runc wrapper before it starts: run this as root (sudo make ...)" 4
  command -v jq >/dev/null || {
    log "installing jq (the runc wrapper edits the OCI spec with it)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends jq >/dev/null
  }
  if ! [ -x "$WRAPPER" ]; then
    log "this machine lacks CAP_SYS_RESOURCE (a VM quirk): writing the runc wrapper $WRAPPER"
    cat >"$WRAPPER" <<'WRAPPER'
#!/bin/sh
# runc wrapper for machines whose capability bounding set lacks CAP_SYS_RESOURCE: drop that
# capability from the OCI spec before runc applies it, or runc's capset fails for privileged
# containers. Handles create/run (bundle config.json) and exec (--process).
REAL_RUNC=${REAL_RUNC:-/usr/sbin/runc}
DROP=CAP_SYS_RESOURCE
strip() {
  [ -f "$1" ] || return 0
  tmp="$1.nocap.$$"
  /usr/bin/jq --arg c "$DROP" '
    def s: if type=="object" then with_entries(if (.value|type)=="array" then .value |= map(select(. != $c)) else . end) else . end;
    if has("process") and (.process|type)=="object" and (.process|has("capabilities")) then .process.capabilities |= s
    elif has("capabilities") then .capabilities |= s else . end' "$1" >"$tmp" && mv "$tmp" "$1" || rm -f "$tmp"
}
cmd=""; bundle="."; process=""; prev=""
for a in "$@"; do
  case "$prev" in
    --bundle|-b) bundle="$a" ;;
    --process|-p) process="$a" ;;
    --root|--log|--log-format|--criu) prev=""; continue ;;
  esac
  case "$a" in
    --bundle=*) bundle="${a#--bundle=}" ;;
    --process=*) process="${a#--process=}" ;;
    -*) ;;
    *) [ -z "$cmd" ] && cmd="$a" ;;
  esac
  prev="$a"
done
case "$cmd" in
  create|run) strip "$bundle/config.json" ;;
  exec) [ -n "$process" ] && strip "$process" ;;
esac
exec "$REAL_RUNC" "$@"
WRAPPER
    chmod 0755 "$WRAPPER"
  fi
  mkdir -p "$(dirname "$DAEMON_JSON")"
  if ! grep -q runc-nocapres "$DAEMON_JSON" 2>/dev/null; then
    log "registering the runc wrapper as dockerd's default runtime in $DAEMON_JSON (other settings kept)"
    existing='{}'
    [ -s "$DAEMON_JSON" ] && existing=$(cat "$DAEMON_JSON")
    jq --arg path "$WRAPPER" '.runtimes["runc-nocapres"] = {path: $path} | ."default-runtime" = "runc-nocapres"' \
      <<<"$existing" >"$DAEMON_JSON.tmp"
    mv "$DAEMON_JSON.tmp" "$DAEMON_JSON"
    registered=1
  fi
fi

is_root || die "the Docker engine is installed but not running: start it (\`sudo systemctl start docker\`, or \`sudo make ...\`)" 4

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  if [ -n "$registered" ]; then
    log "restarting the Docker engine for its new default runtime (systemctl restart docker)"
    systemctl restart docker
  else
    log "starting the Docker engine (systemctl start docker)"
    systemctl start docker
  fi
elif [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  log "dockerd (pid $(cat "$PIDFILE")) is starting"
else
  # No systemd (containers, CI VMs): started by hand, unsupervised.
  log "starting dockerd (no systemd here; log: /var/log/dockerd.log)"
  setsid nohup "$(command -v dockerd || echo /usr/sbin/dockerd)" >>/var/log/dockerd.log 2>&1 </dev/null &
  echo $! >"$PIDFILE"
fi
for _ in $(seq 1 120); do
  if docker info >/dev/null 2>&1; then
    log "engine ready ($(docker info --format '{{.ServerVersion}}'))"
    exit 0
  fi
  sleep 0.5
done
log "dockerd did not answer within 60 s; last log lines:"
tail -n 20 /var/log/dockerd.log >&2 2>/dev/null || true
exit 1
