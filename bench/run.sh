#!/usr/bin/env bash
# `make bench`: `kindlab up` against the lab's old shell-script way (bench/lab-scripts.sh),
# same machine, same run, one side after the other (never concurrently).
#
# Measured on each side, BENCH_RUNS times (median reported):
#   cold    no cluster, no registry, no image or build cache for the app     kindlab <= 0.8x script
#   warm    `up` again on the healthy lab                                    kindlab <= 3 s
#   repair  `up` after `docker rm -f -v <registry>`                          kindlab <= 0.2x its cold
#
# Environment: KINDLAB (target/release/kindlab), BENCH_RUNS (1), KINDLAB_CI_ENV
# (/var/cache/kindlab-ci/env: when present its kind/kubectl and offline node image are used),
# KINDLAB_NODE_IMAGE (node image when there is no CI env; kind's default when empty),
# BENCH_KL_CLUSTER/_REGISTRY/_PORT (bench-kl, bench-kl-registry, 5101) and
# BENCH_SH_CLUSTER/_REGISTRY/_PORT (bench-sh, bench-sh-registry, 5102).
# Only those clusters, registries and localhost:<port>/orders-api images are ever deleted.
set -o errexit -o nounset -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=$ROOT/bench
RESULTS=$BENCH_DIR/results
LOGS=$RESULTS/logs
KINDLAB=${KINDLAB:-$ROOT/target/release/kindlab}
case "$KINDLAB" in /*) ;; */*) KINDLAB=$PWD/$KINDLAB ;; *) KINDLAB=$(command -v "$KINDLAB" || echo "$KINDLAB") ;; esac
RUNS=${BENCH_RUNS:-1}
CI_ENV=${KINDLAB_CI_ENV:-/var/cache/kindlab-ci/env}
APP=orders-api
NAMESPACE=dev

declare -A CLUSTER=([kl]=${BENCH_KL_CLUSTER:-bench-kl} [sh]=${BENCH_SH_CLUSTER:-bench-sh})
declare -A REG=([kl]=${BENCH_KL_REGISTRY:-bench-kl-registry} [sh]=${BENCH_SH_REGISTRY:-bench-sh-registry})
declare -A PORT=([kl]=${BENCH_KL_PORT:-5101} [sh]=${BENCH_SH_PORT:-5102})
declare -A LABEL=([kl]=kindlab [sh]=script)
declare -A WS=()
declare -A SAMPLES=()   # "<side>.<measurement>" -> space-separated seconds
declare -A FAILED=()    # "<side>.<measurement>" -> "log file" of the first failure

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

for tool in docker kind kubectl awk; do
  command -v "$tool" >/dev/null || die "$tool is not on PATH"
done
[ -x "$KINDLAB" ] || die "no kindlab at $KINDLAB (run 'make build' or set KINDLAB=path)"
case "$RUNS" in '' | *[!0-9]* | 0) die "BENCH_RUNS must be a positive integer, not '$RUNS'" ;; esac
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (docker info)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kindlab-bench.XXXXXX")
# A kubeconfig of our own: kind's current-context switches never touch the user's.
export KUBECONFIG=$TMP/kubeconfig
mkdir -p "$LOGS"
rm -f "$LOGS"/*.log

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
  if docker inspect "${REG[$1]}" >/dev/null 2>&1; then
    docker rm -f -v "${REG[$1]}" >/dev/null
  fi
  remove_app_images "$1"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  log "cleaning up: clusters ${CLUSTER[kl]} ${CLUSTER[sh]}, registries ${REG[kl]} ${REG[sh]}"
  teardown kl || log "warning: cleanup of the kindlab side failed"
  teardown sh || log "warning: cleanup of the script side failed"
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The ports must be free or held by our own registries (left over from an interrupted run).
for side in kl sh; do
  holder=$(docker ps --format '{{.Names}} {{.Ports}}' | awk -v p=":${PORT[$side]}->" 'index($0, p) { print $1 }')
  if [ -n "$holder" ] && [ "$holder" != "${REG[$side]}" ]; then
    die "port ${PORT[$side]} is held by container '$holder'; set BENCH_${side^^}_PORT"
  fi
done

# --- workspaces: `kindlab init`, then each side's names and port ------------------------------
for side in kl sh; do
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

# --- the two ways of bringing the lab up ------------------------------------------------------
script_args() { # side
  local args=(up --workspace "${WS[$1]}" --cluster "${CLUSTER[$1]}"
    --registry-name "${REG[$1]}" --registry-port "${PORT[$1]}")
  [ -z "$NODE_IMAGE" ] || args+=(--node-image "$NODE_IMAGE")
  printf '%q ' "${args[@]}"
}

side_up() { # side
  if [ "$1" = kl ]; then
    "$KINDLAB" --workspace "${WS[kl]}" up
  else
    local args=(up --workspace "${WS[sh]}" --cluster "${CLUSTER[sh]}"
      --registry-name "${REG[sh]}" --registry-port "${PORT[sh]}")
    [ -z "$NODE_IMAGE" ] || args+=(--node-image "$NODE_IMAGE")
    bash "$BENCH_DIR/lab-scripts.sh" "${args[@]}"
  fi
}

# Cold: no cluster, no registry, none of the app's images, empty build cache, and a build
# context no image on this engine was ever built from (a fresh file in www/), so neither the
# legacy builder's layer cache nor another workspace's image can serve the build.
cold_reset() { # side run
  teardown "$1"
  docker builder prune -af >/dev/null 2>&1 || log "warning: docker builder prune -af failed"
  printf '%s %s %s\n' "$1" "$2" "$(date +%s.%N)" >"${WS[$1]}/apps/$APP/www/bench-nonce"
}

# The lab works: registry running and holding the deployed tag, rollout complete.
verify() { # side
  local ctx="kind-${CLUSTER[$1]}" image ready tag
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

# timed side measurement run: `up` with its output in a log; records seconds or the failure.
timed() {
  local side=$1 what=$2 run=$3 logf="$LOGS/$1-$2-$3.log" start end secs
  : >"$logf"
  start=$(date +%s.%N)
  if side_up "$side" >>"$logf" 2>&1; then
    end=$(date +%s.%N)
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
    if verify "$side" >>"$logf" 2>&1; then
      SAMPLES[$side.$what]="${SAMPLES[$side.$what]:-} $secs"
      log "$(printf '%-7s %-6s run %d: %7.2f s' "${LABEL[$side]}" "$what" "$run" "$secs")"
      return 0
    fi
    log "${LABEL[$side]} $what run $run: finished in $secs s but the lab is not right:"
  else
    log "${LABEL[$side]} $what run $run FAILED (exit $?):"
  fi
  FAILED[$side.$what]=${FAILED[$side.$what]:-$logf}
  tail -n 25 "$logf" | sed 's/^/    | /' >&9
  return 1
}

measure_side() { # side run
  local side=$1 run=$2
  log "${LABEL[$side]}: cold reset (${CLUSTER[$side]}, ${REG[$side]}, localhost:${PORT[$side]}/$APP images, build cache)"
  cold_reset "$side" "$run"
  if timed "$side" cold "$run" && timed "$side" warm "$run"; then
    docker rm -f -v "${REG[$side]}" >/dev/null
    timed "$side" repair "$run" || true
  fi
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
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
OTHER_CLUSTERS=$(kind get clusters 2>/dev/null | grep -cvx -e "${CLUSTER[kl]}" -e "${CLUSTER[sh]}" || true)

cat <<EOF
kindlab bench: $DATE, $NPROC CPUs, kind $KIND_VERSION, kubectl $KUBECTL_VERSION, docker $DOCKER_VERSION
node image: ${NODE_IMAGE:-the default of kind}; kindlab $KINDLAB_VERSION ($GIT_REV); runs: $RUNS
other kind clusters on this machine: $OTHER_CLUSTERS; load average at start: $LOAD_START

commands (KUBECONFIG=$KUBECONFIG${NODE_IMAGE:+, KINDLAB_NODE_IMAGE=$NODE_IMAGE}):
  kindlab up:  $KINDLAB --workspace ${WS[kl]} up
  script up:   bash $BENCH_DIR/lab-scripts.sh $(script_args sh)
  cold reset:  kind delete cluster --name <cluster>; docker rm -f -v <registry>;
               docker rmi localhost:<port>/$APP:<tag>...; docker builder prune -af;
               a new file apps/$APP/www/bench-nonce in the workspace
  repair:      docker rm -f -v <registry>, then the same up command
logs: $LOGS/<side>-<measurement>-<run>.log

EOF

# --- measure: sides alternate which goes first, never overlap ---------------------------------
for ((run = 1; run <= RUNS; run++)); do
  if ((run % 2)); then order=(kl sh); else order=(sh kl); fi
  for side in "${order[@]}"; do
    measure_side "$side" "$run"
  done
done

# --- report -----------------------------------------------------------------------------------
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
median() { # values...
  printf '%s\n' "$@" | sort -n | awk 'NF { a[++n] = $1 }
    END { if (!n) exit; if (n % 2) printf "%.2f", a[(n + 1) / 2]; else printf "%.2f", (a[n / 2] + a[n / 2 + 1]) / 2 }'
}
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }

declare -A MED=()
for key in kl.cold kl.warm kl.repair sh.cold sh.warm sh.repair; do
  # shellcheck disable=SC2086 # word splitting of the samples is the point
  MED[$key]=$(median ${SAMPLES[$key]:-})
done

json_samples() { # side measurement
  # shellcheck disable=SC2086 # word splitting of the samples is the point
  printf '%s\n' ${SAMPLES[$1.$2]:-} | awk 'NF { printf "%s%s", (n++ ? ", " : ""), $1 }'
}

rows=()
json_rows=()
all_met=true
for what in cold warm repair; do
  kl=${MED[kl.$what]} sh=${MED[sh.$what]} ratio="" measured="" met=n/a
  kl_shown=${kl:-$([ -n "${FAILED[kl.$what]:-}" ] && echo FAILED || echo "not run")}
  sh_shown=${sh:-$([ -n "${FAILED[sh.$what]:-}" ] && echo FAILED || echo "not run")}
  [ -n "$kl" ] && [ -n "$sh" ] && ratio=$(calc "$kl / $sh")
  case "$what" in
    cold) target="kindlab <= 0.8x script"; limit=0.80; measured=$ratio ;;
    warm) target="kindlab <= 3 s"; limit=3.00; measured=$kl ;;
    repair)
      target="kindlab <= 0.2x kindlab cold"; limit=0.20
      [ -n "$kl" ] && [ -n "${MED[kl.cold]}" ] && measured=$(calc "$kl / ${MED[kl.cold]}") ;;
  esac
  if [ -n "$measured" ]; then
    if le "$measured" "$limit"; then met=yes; else met=no; all_met=false; fi
  else
    all_met=false
  fi
  rows+=("$(printf '| %-11s | %10s | %9s | %14s | %-28s | %8s | %-4s |' "$what" \
    "$kl_shown" "$sh_shown" "${ratio:--}" "$target" "${measured:--}" "$met")")
  json_rows+=("$(printf '    "%s": {"kindlab_s": %s, "script_s": %s, "kindlab_over_script": %s, "target": "%s", "target_value": %s, "measured_vs_target": %s, "met": %s, "kindlab_samples_s": [%s], "script_samples_s": [%s], "kindlab_failed_log": %s, "script_failed_log": %s}' \
    "$what" "${kl:-null}" "${sh:-null}" "${ratio:-null}" "$target" "$limit" "${measured:-null}" \
    "$([ "$met" = yes ] && echo true || echo false)" "$(json_samples kl "$what")" "$(json_samples sh "$what")" \
    "$([ -n "${FAILED[kl.$what]:-}" ] && printf '"%s"' "${FAILED[kl.$what]}" || echo null)" \
    "$([ -n "${FAILED[sh.$what]:-}" ] && printf '"%s"' "${FAILED[sh.$what]}" || echo null)")")
done

echo
echo "medians of $RUNS run(s), wall seconds (load average at start $LOAD_START, at end $LOAD_END):"
printf '| %-11s | %10s | %9s | %14s | %-28s | %8s | %-4s |\n' measurement "kindlab s" "script s" \
  "kindlab/script" target measured met?
printf '|%s|%s|%s|%s|%s|%s|%s|\n' ------------- ------------ ----------- ---------------- \
  ------------------------------ ---------- ------
printf '%s\n' "${rows[@]}"

json_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
{
  echo "{"
  echo "  \"date\": $(json_str "$DATE"),"
  echo "  \"machine\": {\"nproc\": $NPROC, \"kernel\": $(json_str "$(uname -r)"), \"load_average_at_start\": $(json_str "$LOAD_START"), \"load_average_at_end\": $(json_str "$LOAD_END"), \"other_kind_clusters\": $OTHER_CLUSTERS},"
  echo "  \"versions\": {\"kindlab\": $(json_str "$KINDLAB_VERSION"), \"git\": $(json_str "$GIT_REV"), \"kind\": $(json_str "$KIND_VERSION"), \"kubectl\": $(json_str "$KUBECTL_VERSION"), \"docker_engine\": $(json_str "$DOCKER_VERSION")},"
  echo "  \"node_image\": $(json_str "${NODE_IMAGE:-kind default}"),"
  echo "  \"runs\": $RUNS,"
  echo "  \"commands\": {\"kindlab\": $(json_str "kindlab --workspace <ws> up"), \"script\": $(json_str "bash bench/lab-scripts.sh up --workspace <ws> --cluster ${CLUSTER[sh]} --registry-name ${REG[sh]} --registry-port ${PORT[sh]}${NODE_IMAGE:+ --node-image $NODE_IMAGE}"), \"repair_breakage\": \"docker rm -f -v <registry>\"},"
  echo "  \"names\": {\"kindlab\": {\"cluster\": \"${CLUSTER[kl]}\", \"registry\": \"${REG[kl]}\", \"port\": ${PORT[kl]}}, \"script\": {\"cluster\": \"${CLUSTER[sh]}\", \"registry\": \"${REG[sh]}\", \"port\": ${PORT[sh]}}},"
  echo "  \"measurements\": {"
  last=$((${#json_rows[@]} - 1))
  for i in "${!json_rows[@]}"; do
    if [ "$i" -lt "$last" ]; then echo "${json_rows[$i]},"; else echo "${json_rows[$i]}"; fi
  done
  echo "  },"
  echo "  \"all_targets_met\": $all_met"
  echo "}"
} >"$RESULTS/latest.json"
echo
echo "wrote $RESULTS/latest.json"

if [ "${#FAILED[@]}" -gt 0 ]; then
  log "some measurements failed; their logs: ${FAILED[*]}"
  exit 1
fi
