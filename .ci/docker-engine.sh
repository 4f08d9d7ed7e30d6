#!/usr/bin/env bash
# Installs and starts a Docker engine on the CI VM, idempotently.
#
# This VM quirk lives here, never in the product: the VM's capability bounding set lacks
# CAP_SYS_RESOURCE, so privileged containers (kind nodes) fail in runc's capset unless a
# runc wrapper drops that one capability from the OCI spec first. The wrapper is registered
# in dockerd as the default runtime before dockerd first starts, so no restart is needed.
# Measured recipe: ../shared/notes/docker-engine-on-ci-vm.md.
set -euo pipefail

log() { printf '[docker-engine] %s\n' "$*"; }

if docker info >/dev/null 2>&1; then
  log "engine already running"
  exit 0
fi

need_pkgs=()
for pkg in docker.io jq curl; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need_pkgs+=("$pkg")
done
if ((${#need_pkgs[@]})); then
  log "installing ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

wrapper=/usr/local/sbin/runc-nocapres
if ! [ -x "$wrapper" ]; then
  log "writing $wrapper"
  cat >"$wrapper" <<'WRAPPER'
#!/bin/sh
# runc wrapper for this VM: drop CAP_SYS_RESOURCE (outside the bounding set) from the OCI
# spec before runc applies it. Handles create/run (bundle config.json) and exec (--process).
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
  chmod 0755 "$wrapper"
fi

mkdir -p /etc/docker
if ! grep -q runc-nocapres /etc/docker/daemon.json 2>/dev/null; then
  log "registering the runc wrapper as dockerd's default runtime"
  cat >/etc/docker/daemon.json <<'JSON'
{
  "runtimes": { "runc-nocapres": { "path": "/usr/local/sbin/runc-nocapres" } },
  "default-runtime": "runc-nocapres"
}
JSON
fi

# PID 1 is not systemd here, so dockerd is started by hand and not supervised.
if [ -f /run/dockerd.pid ] && kill -0 "$(cat /run/dockerd.pid)" 2>/dev/null; then
  log "dockerd (pid $(cat /run/dockerd.pid)) is starting"
else
  log "starting dockerd (log: /var/log/dockerd.log)"
  setsid nohup /usr/sbin/dockerd >>/var/log/dockerd.log 2>&1 </dev/null &
  echo $! >/run/dockerd.pid
fi
for _ in $(seq 1 120); do
  docker info >/dev/null 2>&1 && { log "engine ready"; exit 0; }
  sleep 0.5
done
log "dockerd did not answer within 60 s; last log lines:"
tail -n 20 /var/log/dockerd.log >&2
exit 1
