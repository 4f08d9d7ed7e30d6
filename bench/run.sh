#!/usr/bin/env bash
# `make bench`: `kindlab up` against the lab's old shell-script way (bench/lab-scripts.sh), the
# peer tool's way (ctlptl, `lab-scripts.sh --via ctlptl`) and bare `kind create cluster`, plus
# kindlab's other verbs, same machine, same run, one thing at a time (never concurrently).
#
# Measured BENCH_RUNS times (medians reported; targets of issue 11):
#   cold     no cluster/registry/image/build cache   kindlab <= 0.8x script, <= 0.8x ctlptl,
#                                                    <= 1.15x bare `kind create cluster`
#   warm     `up` again on the healthy lab           kindlab <= 0.5x script warm
#   repair   `up` after `docker rm -f -v <registry>` kindlab <= 0.2x its cold
#   status   `kindlab status` vs `kubectl get pods -A`, 5 each per run       <= 0.5x
#   reset    `kindlab reset` of a broken lab (`lab start bad-image-tag`) vs `down` + `up`  <= 0.1x
#   detect   `lab run bad-image-tag --repeat`: kindlab noticing the kubelet's ErrImagePull vs an
#            independent watch receiving it (bench/kubelet-watch.py), 10 breaks   median <= 250 ms
#   rss      peak RSS of the cold `kindlab up` (/usr/bin/time -v, and kindlab's own VmHWM) <= 50 MB
# Beside results/latest.json: results/cold-phases.svg, run 1's cold phases of each way.
#
# Environment: KINDLAB (target/release/kindlab), BENCH_RUNS (1), BENCH_BREAKS (10: detection
# breaks over all runs), BENCH_STATUS_SAMPLES (5 per run), KINDLAB_CI_ENV
# (/var/cache/kindlab-ci/env: when present its kind/kubectl and offline node image are used),
# KINDLAB_NODE_IMAGE (node image when there is no CI env; kind's default when empty), CTLPTL_BIN
# (a ctlptl to use instead of building one), BENCH_{KL,SH,CT}_{CLUSTER,REGISTRY,PORT}
# (bench-kl/-sh/-ct, bench-kl/-sh/-ct-registry, 5101/5102/5103), BENCH_KIND_CLUSTER (bench-kind).
# Only those clusters, registries and localhost:<port>/orders-api images are ever deleted.
#
# Exit status: 0 when every measurement ran (met or unmet targets alike: the table says which),
# 1 when one failed (its log is named), also when a tool it needs is missing.
set -o errexit -o nounset -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=$ROOT/bench
RESULTS=$BENCH_DIR/results
LOGS=$RESULTS/logs
KINDLAB=${KINDLAB:-$ROOT/target/release/kindlab}
case "$KINDLAB" in /*) ;; */*) KINDLAB=$PWD/$KINDLAB ;; *) KINDLAB=$(command -v "$KINDLAB" || echo "$KINDLAB") ;; esac
RUNS=${BENCH_RUNS:-1}
BREAKS=${BENCH_BREAKS:-10}
STATUS_SAMPLES=${BENCH_STATUS_SAMPLES:-5}
CI_ENV=${KINDLAB_CI_ENV:-/var/cache/kindlab-ci/env}
APP=orders-api
NAMESPACE=dev
LAB=bad-image-tag

declare -A CLUSTER=([kl]=${BENCH_KL_CLUSTER:-bench-kl} [sh]=${BENCH_SH_CLUSTER:-bench-sh}
  [ct]=${BENCH_CT_CLUSTER:-bench-ct} [kind]=${BENCH_KIND_CLUSTER:-bench-kind})
declare -A REG=([kl]=${BENCH_KL_REGISTRY:-bench-kl-registry} [sh]=${BENCH_SH_REGISTRY:-bench-sh-registry}
  [ct]=${BENCH_CT_REGISTRY:-bench-ct-registry})
declare -A PORT=([kl]=${BENCH_KL_PORT:-5101} [sh]=${BENCH_SH_PORT:-5102} [ct]=${BENCH_CT_PORT:-5103})
declare -A LABEL=([kl]=kindlab [sh]=script [ct]=ctlptl [kind]="bare kind")
declare -A WS=()
declare -A FAILED=()    # "<measurement>.<side>" -> log file of the first failure

# Progress goes to the original stderr (fd 9), also from a trap that fires while a command's
# output is redirected into its log.
exec 9>&2
log() { printf '[bench] %s\n' "$*" >&9; }
die() { log "error: $*"; exit 1; }

# --- tools and node image --------------------------------------------------------------------
NODE_IMAGE=${KINDLAB_NODE_IMAGE:-}
if [ -f "$CI_ENV" ]; then
  # shellcheck source=/dev/null
  . "$CI_ENV"
  PATH="${KINDLAB_CI_BIN:?KINDLAB_CI_BIN missing from $CI_ENV}:$PATH"
  NODE_IMAGE=${KINDLAB_TEST_NODE_IMAGE:?KINDLAB_TEST_NODE_IMAGE missing from $CI_ENV}
  log "using $CI_ENV: kind/kubectl from $KINDLAB_CI_BIN, node image $NODE_IMAGE"
fi
export PATH
if [ -n "$NODE_IMAGE" ]; then
  export KINDLAB_NODE_IMAGE=$NODE_IMAGE
else
  unset KINDLAB_NODE_IMAGE
fi
unset KINDLAB_WORKSPACE
export KINDLAB_ATTENDEE=bench

for tool in docker kind kubectl awk curl python3; do
  command -v "$tool" >/dev/null || die "$tool is not on PATH"
done
[ -n "${EPOCHREALTIME:-}" ] || die "bash 5 or later is needed (EPOCHREALTIME)"
[ -x "$KINDLAB" ] || die "no kindlab at $KINDLAB (run 'make build' or set KINDLAB=path)"
for n in "$RUNS" "$BREAKS" "$STATUS_SAMPLES"; do
  case "$n" in '' | *[!0-9]* | 0) die "BENCH_RUNS, BENCH_BREAKS and BENCH_STATUS_SAMPLES must be positive integers, not '$n'" ;; esac
done
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (docker info)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kindlab-bench.XXXXXX")
# A kubeconfig of our own: kind's current-context switches never touch the user's.
export KUBECONFIG=$TMP/kubeconfig
# ctlptl's analytics stay off (its state directory is ours, with the opt-out choice).
export TILT_DEV_DIR=$TMP/tilt-dev
mkdir -p "$TILT_DEV_DIR/analytics/user" && echo opt-out >"$TILT_DEV_DIR/analytics/user/choice.txt"
mkdir -p "$LOGS"
rm -f "$LOGS"/*.log "$LOGS"/*.json "$LOGS"/*.time "$LOGS"/*.tsv
# Every number this run measures, one line each, for bench/report.py:
#   S <measurement.side> <run> <value>   a sample    F <measurement.side> <run> <log>  a failure
#   N <measurement.side> <why...>        not available here
RECORDS=$LOGS/records.tsv
: >"$RECORDS"
record() { printf '%s\n' "$*" >>"$RECORDS"; }
now() { printf '%s' "$EPOCHREALTIME"; }
secs_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }

# /usr/bin/time (GNU time, for -v), not the shell keyword.
TIME_BIN=""
if [ -x /usr/bin/time ] && /usr/bin/time -v true 2>/dev/null; then
  TIME_BIN=/usr/bin/time
else
  log "warning: no GNU time at /usr/bin/time (apt-get install time): peak RSS is measured by /proc only"
fi

# --- ctlptl: built from its Go module when missing; never committed ----------------------------
CTLPTL=""
if CTLPTL=$(bash "$BENCH_DIR/build-ctlptl.sh" 2>"$LOGS/ctlptl-build.log"); then
  CTLPTL_VERSION=$("$CTLPTL" version 2>/dev/null | head -1)
  log "ctlptl: $CTLPTL ($CTLPTL_VERSION)"
else
  CTLPTL="" CTLPTL_VERSION=""
  CT_WHY="ctlptl could not be built: $(tail -n 3 "$LOGS/ctlptl-build.log" | tr '\n' ' ' | cut -c1-300)"
  log "ctlptl way not available: $CT_WHY (full log: $LOGS/ctlptl-build.log)"
  record N cold.ct "$CT_WHY"
  record N warm.ct "$CT_WHY"
fi
SIDES=(kl sh)
[ -z "$CTLPTL" ] || SIDES+=(ct)

# --- cleanup: only what this harness names ----------------------------------------------------
remove_app_images() { # side
  local ref
  docker images --format '{{.Repository}}:{{.Tag}}' "localhost:${PORT[$1]}/$APP" |
    while read -r ref; do
      [ "$ref" = "localhost:${PORT[$1]}/$APP:<none>" ] && continue
      docker rmi "$ref" >/dev/null
    done
}

teardown() { # side
  if kind get clusters 2>/dev/null | grep -qx "${CLUSTER[$1]}"; then
    kind delete cluster --name "${CLUSTER[$1]}" >/dev/null 2>&1
  fi
  [ "$1" != kind ] || return 0
  if docker inspect "${REG[$1]}" >/dev/null 2>&1; then
    docker rm -f -v "${REG[$1]}" >/dev/null
  fi
  # kindlab keeps its registry's images on a named volume that `rm -v` leaves (and that
  # belongs to the workspace of the run that made it: a new run's workspace would refuse it).
  if docker volume inspect "${REG[$1]}-images" >/dev/null 2>&1; then
    docker volume rm "${REG[$1]}-images" >/dev/null
  fi
  remove_app_images "$1"
}

WATCH_PID=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$WATCH_PID" ]; then kill "$WATCH_PID" 2>/dev/null || true; fi
  log "cleaning up: clusters ${CLUSTER[*]}, registries ${REG[*]}"
  for side in kl sh ct kind; do
    teardown "$side" || log "warning: cleanup of the ${LABEL[$side]} side failed"
  done
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The ports must be free or held by our own registries (left over from an interrupted run).
for side in kl sh ct; do
  holder=$(docker ps --format '{{.Names}} {{.Ports}}' | awk -v p=":${PORT[$side]}->" 'index($0, p) { print $1 }')
  if [ -n "$holder" ] && [ "$holder" != "${REG[$side]}" ]; then
    die "port ${PORT[$side]} is held by container '$holder'; set BENCH_${side^^}_PORT"
  fi
done

# --- workspaces: `kindlab init`, then each side's names and port ------------------------------
for side in kl sh ct; do
  WS[$side]=$TMP/ws-$side
  "$KINDLAB" init "${WS[$side]}" >/dev/null 2>&1 || die "kindlab init ${WS[$side]} failed"
  cfg=${WS[$side]}/kindlab.yaml
  sed -i.orig \
    -e "s/^  name: kindlab\$/  name: ${CLUSTER[$side]}/" \
    -e "s/^  name: kind-registry\$/  name: ${REG[$side]}/" \
    -e "s/^  port: 5001\$/  port: ${PORT[$side]}/" "$cfg"
  sed -i.orig "s#localhost:5001/#localhost:${PORT[$side]}/#" \
    "${WS[$side]}/deploy/overlays/dev/kustomization.yaml"
  rm -f "$cfg.orig" "${WS[$side]}/deploy/overlays/dev/kustomization.yaml.orig"
  if ! grep -q "name: ${CLUSTER[$side]}\$" "$cfg" || ! grep -q "name: ${REG[$side]}\$" "$cfg" ||
    ! grep -q "port: ${PORT[$side]}\$" "$cfg" ||
    ! grep -q "localhost:${PORT[$side]}/$APP" "${WS[$side]}/deploy/overlays/dev/kustomization.yaml"; then
    die "could not point ${WS[$side]} at ${CLUSTER[$side]}/${REG[$side]}:${PORT[$side]} (kindlab init's sample changed?)"
  fi
done

# --- the ways of bringing the lab up -----------------------------------------------------------
SCRIPT_ARGS=()
script_argv() { # side: sets SCRIPT_ARGS, lab-scripts.sh's arguments for that side
  SCRIPT_ARGS=(up --workspace "${WS[$1]}" --cluster "${CLUSTER[$1]}"
    --registry-name "${REG[$1]}" --registry-port "${PORT[$1]}")
  [ -z "$NODE_IMAGE" ] || SCRIPT_ARGS+=(--node-image "$NODE_IMAGE")
  [ "$1" != ct ] || SCRIPT_ARGS+=(--via ctlptl)
}
script_args() { # side: the same, printed
  script_argv "$1"
  printf '%q ' "${SCRIPT_ARGS[@]}"
}

# kindlab's own peak RSS: VmHWM of its process (a high-water mark, so the last reading before
# it exits is its peak, up to the last 50 ms), read while it runs; /proc/<pid>/status of time's
# child. Prints KB.
own_peak_kb() { # pid of /usr/bin/time (or of kindlab itself)
  local outer=$1 pid="" hwm=0 key value _ i
  if [ -n "$TIME_BIN" ]; then
    for ((i = 0; i < 200; i++)); do
      read -r pid _ <"/proc/$outer/task/$outer/children" 2>/dev/null || true
      [ -z "$pid" ] || break
      sleep 0.01
    done
  else
    pid=$outer
  fi
  [ -n "$pid" ] || { echo 0; return; }
  while [ -e "/proc/$pid/status" ]; do
    while read -r key value _; do
      if [ "$key" = VmHWM: ]; then hwm=$value; fi
    done <"/proc/$pid/status" 2>/dev/null || true
    sleep 0.05
  done
  echo "$hwm"
}

side_up() { # side what run
  local side=$1 what=$2 run=$3
  case "$side" in
    kl)
      local out="$LOGS/kl-$what-$run.json" timef="$LOGS/kl-$what-$run.time" pid own rc=0
      if [ -n "$TIME_BIN" ]; then
        "$TIME_BIN" -v -o "$timef" "$KINDLAB" --workspace "${WS[kl]}" up --output json >"$out" &
      else
        "$KINDLAB" --workspace "${WS[kl]}" up --output json >"$out" &
      fi
      pid=$!
      own=$(own_peak_kb "$pid")
      wait "$pid" || rc=$?
      echo "kindlab's own peak RSS (VmHWM): $own kB" >&2
      if [ "$rc" = 0 ] && [ "$what" = cold ]; then
        record S rss_own.kl "$run" "$(awk -v k="$own" 'BEGIN { printf "%.1f", k / 1024 }')"
        [ -z "$TIME_BIN" ] || record S rss_timev.kl "$run" \
          "$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$timef")"
      fi
      return "$rc"
      ;;
    sh | ct)
      script_argv "$side"
      CTLPTL=$CTLPTL bash "$BENCH_DIR/lab-scripts.sh" "${SCRIPT_ARGS[@]}"
      ;;
    kind)
      local args=(create cluster --name "${CLUSTER[kind]}")
      [ -z "$NODE_IMAGE" ] || args+=(--image "$NODE_IMAGE")
      if [ -n "$TIME_BIN" ]; then
        "$TIME_BIN" -v -o "$LOGS/kind-$what-$run.time" kind "${args[@]}"
      else
        kind "${args[@]}"
      fi
      ;;
  esac
}

# Cold: no cluster, no registry, none of the app's images, empty build cache, and a build
# context no image on this engine was ever built from (a fresh file in www/), so neither the
# legacy builder's layer cache nor another workspace's image can serve the build.
cold_reset() { # side run
  teardown "$1"
  [ "$1" != kind ] || return 0
  docker builder prune -af >/dev/null 2>&1 || log "warning: docker builder prune -af failed"
  printf '%s %s %s\n' "$1" "$2" "$(date +%s.%N)" >"${WS[$1]}/apps/$APP/www/bench-nonce"
}

# The lab works: registry running and holding the deployed tag, rollout complete.
verify() { # side
  local ctx="kind-${CLUSTER[$1]}" image ready tag
  if [ "$1" = kind ]; then
    kubectl --context "$ctx" get nodes >/dev/null || return 1
    echo "verify: ok (API server answers)"
    return 0
  fi
  [ "$(docker inspect -f '{{.State.Running}}' "${REG[$1]}" 2>/dev/null)" = true ] ||
    { echo "verify: registry ${REG[$1]} is not running"; return 1; }
  image=$(kubectl --context "$ctx" -n "$NAMESPACE" get "deployment/$APP" \
    -o jsonpath='{.spec.template.spec.containers[0].image}') || return 1
  ready=$(kubectl --context "$ctx" -n "$NAMESPACE" get "deployment/$APP" \
    -o jsonpath='{.status.readyReplicas}/{.status.replicas}') || return 1
  case "$image" in
    "localhost:${PORT[$1]}/$APP:"*) tag=${image##*:} ;;
    *) echo "verify: deployment image is '$image', not localhost:${PORT[$1]}/$APP:<tag>"; return 1 ;;
  esac
  [ "$ready" = 1/1 ] || { echo "verify: deployment ready/replicas is '$ready'"; return 1; }
  curl -fsS "http://127.0.0.1:${PORT[$1]}/v2/$APP/tags/list" | grep -q "\"$tag\"" ||
    { echo "verify: registry localhost:${PORT[$1]} does not hold $APP:$tag"; return 1; }
  echo "verify: ok ($image, ready $ready)"
}

fail() { # key run logf message
  log "$4"
  FAILED[$1]=${FAILED[$1]:-$3}
  record F "$1" "$2" "$3"
  tail -n 25 "$3" | sed 's/^/    | /' >&9
  return 1
}

# A timed command (a function and its arguments) with its output in a log, then verify untimed.
timed_cmd() { # key run side logf command...
  local key=$1 run=$2 side=$3 logf=$4 start secs rc=0
  shift 4
  start=$(now)
  echo "start $start" >>"$logf"
  "$@" >>"$logf" 2>&1 || rc=$?
  secs=$(secs_since "$start")
  echo "end $(now)" >>"$logf"
  [ "$rc" = 0 ] || { fail "$key" "$run" "$logf" "$key run $run FAILED (exit $rc):"; return 1; }
  if verify "$side" >>"$logf" 2>&1; then
    record S "$key" "$run" "$secs"
    log "$(printf '%-24s run %d: %7.2f s' "$key (${LABEL[$side]})" "$run" "$secs")"
    return 0
  fi
  fail "$key" "$run" "$logf" "$key run $run: finished in $secs s but the lab is not right:"
}

timed() { # side what run
  local logf="$LOGS/$1-$2-$3.log"
  : >"$logf"
  timed_cmd "$2.$1" "$3" "$1" "$logf" side_up "$1" "$2" "$3"
}

# `kindlab status` (exits non-zero when anything is off) against `kubectl get pods -A`,
# alternating, on the same healthy lab.
measure_status() { # run
  local logf="$LOGS/kl-status-$1.log" i start secs
  : >"$logf"
  for ((i = 1; i <= STATUS_SAMPLES; i++)); do
    start=$(now)
    "$KINDLAB" --workspace "${WS[kl]}" status >>"$logf" 2>&1 ||
      { fail status.kl "$1" "$logf" "kindlab status run $1 FAILED:"; return 1; }
    record S status.kl "$1" "$(secs_since "$start")"
    start=$(now)
    kubectl --context "kind-${CLUSTER[kl]}" get pods -A >>"$logf" 2>&1 ||
      { fail status.kubectl "$1" "$logf" "kubectl get pods -A run $1 FAILED:"; return 1; }
    record S status.kubectl "$1" "$(secs_since "$start")"
  done
  log "status: $STATUS_SAMPLES x kindlab status, $STATUS_SAMPLES x kubectl get pods -A (log $logf)"
}

kl_cmd() { "$KINDLAB" --workspace "${WS[kl]}" "$@"; }
kl_down_up() { kl_cmd down && kl_cmd up; }

# A broken lab (the attendee's `lab start`, which waits until the break shows), then `reset`.
measure_reset() { # run
  local logf="$LOGS/kl-reset-$1.log"
  : >"$logf"
  if ! kl_cmd lab start "$LAB" >>"$logf" 2>&1; then
    fail reset.kl "$1" "$logf" "kindlab lab start $LAB (before reset) run $1 FAILED:"
    return 1
  fi
  timed_cmd reset.kl "$1" kl "$logf" kl_cmd reset
}

# Detection: an independent watch (bench/kubelet-watch.py) is the reference clock; kindlab's
# `lab run --repeat N --output json` says when it noticed each symptom. bench/report.py pairs
# them (per break: the first ErrImagePull the watch received for the pod kindlab named).
measure_detection() { # run breaks
  local run=$1 n=$2 logf="$LOGS/kl-detect-$1.log" watchf="$LOGS/kl-detect-$1-watch.tsv" i
  local out="$LOGS/kl-detect-$1.json"
  : >"$logf"
  python3 "$BENCH_DIR/kubelet-watch.py" --context "kind-${CLUSTER[kl]}" --namespace "$NAMESPACE" \
    >"$watchf" 2>>"$logf" &
  WATCH_PID=$!
  for ((i = 0; i < 100; i++)); do
    grep -q ' started ' "$watchf" 2>/dev/null && break
    sleep 0.1
  done
  sleep 2 # the watches' initial lists
  local rc=0
  kl_cmd lab run "$LAB" --repeat "$n" --output json >"$out" 2>>"$logf" || rc=$?
  sleep 1 # late arrivals on the watch
  kill "$WATCH_PID" 2>/dev/null || true
  wait "$WATCH_PID" 2>/dev/null || true
  WATCH_PID=""
  if [ "$rc" != 0 ]; then
    fail detect.kl "$run" "$logf" "kindlab lab run $LAB --repeat $n run $run FAILED (exit $rc):"
    return 1
  fi
  if ! python3 "$BENCH_DIR/report.py" detection --run "$run" --report "$out" --watch "$watchf" \
    >>"$RECORDS" 2>>"$logf"; then
    fail detect.kl "$run" "$logf" "pairing kindlab's noticing with the watch (run $run) FAILED:"
    return 1
  fi
  log "detection: $n breaks (report $out, watch $watchf)"
}

# The breaks spread over the runs: BREAKS in all (10 over 3 runs: 4, 3, 3).
breaks_in_run() { # run
  echo $(((BREAKS / RUNS) + ($1 <= BREAKS % RUNS ? 1 : 0)))
}

measure_side() { # side run
  local side=$1 run=$2
  log "${LABEL[$side]}: cold reset (${CLUSTER[$side]}${REG[$side]:+, ${REG[$side]}, localhost:${PORT[$side]}/$APP images, build cache})"
  cold_reset "$side" "$run"
  case "$side" in
    kind) timed kind cold "$run" || true ;;
    ct) if timed ct cold "$run"; then timed ct warm "$run" || true; fi ;;
    *)
      if timed "$side" cold "$run" && timed "$side" warm "$run"; then
        docker rm -f -v "${REG[$side]}" >/dev/null
        if timed "$side" repair "$run" && [ "$side" = kl ]; then
          measure_status "$run" || true
          measure_reset "$run" || true
          local n
          n=$(breaks_in_run "$run")
          if [ "$n" -gt 0 ] && verify kl >/dev/null 2>&1; then measure_detection "$run" "$n" || true; fi
          if verify kl >/dev/null 2>&1; then
            timed_cmd down_up.kl "$run" kl "$LOGS/kl-down_up-$run.log" kl_down_up || true
          fi
        fi
      fi
      ;;
  esac
  teardown "$side"
}

# --- facts and commands -----------------------------------------------------------------------
KIND_VERSION=$(kind version 2>/dev/null | awk '{ print $2 }')
KUBECTL_VERSION=$(kubectl version --client 2>/dev/null | awk '/Client Version/ { print $3 }')
DOCKER_VERSION=$(docker version --format '{{.Server.Version}}' 2>/dev/null)
KINDLAB_VERSION=$("$KINDLAB" --version 2>/dev/null | awk '{ print $2 }')
GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null | head -1)" ]; then GIT_REV="$GIT_REV+dirty"; fi
NPROC=$(nproc)
MEM=$(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo 2>/dev/null || echo unknown)
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
OTHER_CLUSTERS=$(kind get clusters 2>/dev/null | grep -cvx -e "${CLUSTER[kl]}" -e "${CLUSTER[sh]}" \
  -e "${CLUSTER[ct]}" -e "${CLUSTER[kind]}" || true)

cat <<EOF
kindlab bench: $DATE, $NPROC CPUs, $MEM, kind $KIND_VERSION, kubectl $KUBECTL_VERSION, docker $DOCKER_VERSION
node image: ${NODE_IMAGE:-the default of kind}; kindlab $KINDLAB_VERSION ($GIT_REV); ctlptl: ${CTLPTL_VERSION:-not available}
runs: $RUNS; detection breaks: $BREAKS; other kind clusters on this machine: $OTHER_CLUSTERS; load average at start: $LOAD_START

commands (KUBECONFIG=$KUBECONFIG${NODE_IMAGE:+, KINDLAB_NODE_IMAGE=$NODE_IMAGE}):
  kindlab up:  ${TIME_BIN:+$TIME_BIN -v }$KINDLAB --workspace ${WS[kl]} up --output json
  script up:   bash $BENCH_DIR/lab-scripts.sh $(script_args sh)
  ctlptl up:   $(if [ -n "$CTLPTL" ]; then echo "CTLPTL=$CTLPTL bash $BENCH_DIR/lab-scripts.sh $(script_args ct)"; else echo "not available"; fi)
  bare kind:   kind create cluster --name ${CLUSTER[kind]}${NODE_IMAGE:+ --image $NODE_IMAGE}
  cold reset:  kind delete cluster --name <cluster>; docker rm -f -v <registry>;
               docker rmi localhost:<port>/$APP:<tag>...; docker builder prune -af;
               a new file apps/$APP/www/bench-nonce in the workspace
  repair:      docker rm -f -v <registry>, then the same up command
  status:      kindlab status  vs  kubectl --context kind-${CLUSTER[kl]} get pods -A
  reset:       kindlab lab start $LAB (untimed), then kindlab reset  vs  kindlab down && kindlab up
  detection:   kindlab lab run $LAB --repeat N --output json, beside python3 bench/kubelet-watch.py
logs: $LOGS/<side>-<measurement>-<run>.log

EOF

# --- measure: the ways alternate which goes first, never overlap -------------------------------
ORDER=("${SIDES[@]}" kind)
for ((run = 1; run <= RUNS; run++)); do
  if ((run % 2)); then order=("${ORDER[@]}"); else order=(); for ((i = ${#ORDER[@]} - 1; i >= 0; i--)); do order+=("${ORDER[$i]}"); done; fi
  for side in "${order[@]}"; do
    measure_side "$side" "$run"
  done
done

# --- report: table, JSON and the picture (bench/report.py) -------------------------------------
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
python3 "$BENCH_DIR/report.py" report --records "$RECORDS" --logs "$LOGS" \
  --json "$RESULTS/latest.json" --svg "$RESULTS/cold-phases.svg" --runs "$RUNS" \
  --fact date="$DATE" --fact nproc="$NPROC" --fact memory="$MEM" --fact kernel="$(uname -r)" \
  --fact load_average_at_start="$LOAD_START" --fact load_average_at_end="$LOAD_END" \
  --fact other_kind_clusters="$OTHER_CLUSTERS" --fact kindlab="$KINDLAB_VERSION" \
  --fact git="$GIT_REV" --fact kind="$KIND_VERSION" --fact kubectl="$KUBECTL_VERSION" \
  --fact docker_engine="$DOCKER_VERSION" --fact ctlptl="${CTLPTL_VERSION:-not available}" \
  --fact node_image="${NODE_IMAGE:-kind default}" --fact time_bin="${TIME_BIN:-none}" \
  --fact names="kindlab ${CLUSTER[kl]}/${REG[kl]}:${PORT[kl]}, script ${CLUSTER[sh]}/${REG[sh]}:${PORT[sh]}, ctlptl ${CLUSTER[ct]}/${REG[ct]}:${PORT[ct]}, bare kind ${CLUSTER[kind]}" ||
  die "bench/report.py failed"

if [ "${#FAILED[@]}" -gt 0 ]; then
  log "some measurements failed; their logs: ${FAILED[*]}"
  exit 1
fi
