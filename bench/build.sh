#!/usr/bin/env bash
# `make bench` (after bench/run.sh), or alone: kindlab's image build against `docker build` of
# the same context on the same engine, same run, one at a time (never concurrently).
#
# Measured BENCH_BUILD_RUNS times (medians reported; targets of issue 20):
#   cold    `kindlab build` of the sample app, no layer of it cached (a new file copied first
#           makes every later step miss the cache; the base image is local, as offline)
#   warm    `kindlab build` after a one-file change (www/healthz)   <= 1.0x docker's
#   docker  `docker build` of the same context after the same one-file change, alone and
#           with its `docker push` (kindlab's number includes hashing, pushing and the
#           registry digest check); the `docker` CLI here has no buildx plug-in, so its build
#           is the classic builder (DOCKER_BUILDKIT=0), kindlab's is the engine's BuildKit.
#
# Environment: KINDLAB (target/release/kindlab), BENCH_BUILD_RUNS (3), BENCH_BUILD_PORT (5104),
# BENCH_BUILD_REGISTRY (bench-build-registry). Only that registry container and the
# localhost:<port>/orders-api* images are ever deleted.
#
# Output: bench/results/build.json and a table on stdout. Exit 1 when a measurement failed.
set -o errexit -o nounset -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS=$ROOT/bench/results
KINDLAB=${KINDLAB:-$ROOT/target/release/kindlab}
case "$KINDLAB" in /*) ;; */*) KINDLAB=$PWD/$KINDLAB ;; esac
RUNS=${BENCH_BUILD_RUNS:-3}
PORT=${BENCH_BUILD_PORT:-5104}
REGISTRY=${BENCH_BUILD_REGISTRY:-bench-build-registry}
APP=orders-api

log() { printf '[bench-build] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
[ -x "$KINDLAB" ] || die "no kindlab at $KINDLAB (run 'make build' or set KINDLAB=path)"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (docker info)"
case "$RUNS" in '' | *[!0-9]* | 0) die "BENCH_BUILD_RUNS must be a positive integer" ;; esac

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kindlab-bench-build.XXXXXX")
LOG=$TMP/bench.log
cleanup() {
  docker rm -f -v "$REGISTRY" >/dev/null 2>&1 || true
  docker volume rm -f "$REGISTRY-images" >/dev/null 2>&1 || true
  docker images --format '{{.Repository}}:{{.Tag}}' | grep -E "^localhost:$PORT/$APP(-docker)?:" |
    xargs -r docker rmi >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT

now() { printf '%s' "$EPOCHREALTIME"; }
secs_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }
# timed NAME CMD...: runs CMD with its output in the log; prints the seconds it took.
timed() {
  local name=$1 start
  shift
  start=$(now)
  if ! "$@" >>"$LOG" 2>&1; then
    log "$name failed; its output:"
    tail -n 20 "$LOG" >&2
    exit 1
  fi
  secs_since "$start"
}

WS=$TMP/ws
"$KINDLAB" init "$WS" >>"$LOG" 2>&1
sed -i "s/^  name: kind-registry$/  name: $REGISTRY/; s/port: 5001/port: $PORT/" "$WS/kindlab.yaml"
sed -i "s/localhost:5001/localhost:$PORT/" "$WS/deploy/overlays/dev/kustomization.yaml"
"$KINDLAB" --workspace "$WS" registry up >>"$LOG" 2>&1 || die "registry up failed (log: $LOG)"
CTX=$WS/apps/$APP
# The same context for docker, in its own copy (its builds must not warm kindlab's).
DCTX=$TMP/docker-ctx
# A first step unique to each build series: nothing after it can come from the cache.
cold_dockerfile() { # dir nonce
  printf '%s\n' "$2" >"$1/NONCE"
  awk 'NR==1 { print; print "COPY NONCE /NONCE"; next } { print }' "$ROOT/templates/workspace/apps/$APP/Dockerfile" >"$1/Dockerfile"
}

declare -a COLD WARM DOCKER DOCKER_PUSH
for run in $(seq 1 "$RUNS"); do
  nonce="$(date +%s%N)-$run"
  cold_dockerfile "$CTX" "kindlab-$nonce"
  COLD+=("$(timed "cold kindlab build" "$KINDLAB" --workspace "$WS" build)")
  echo "changed $nonce" >"$CTX/www/healthz"
  WARM+=("$(timed "warm kindlab build" "$KINDLAB" --workspace "$WS" build)")

  rm -rf "$DCTX" && cp -r "$CTX" "$DCTX"
  cold_dockerfile "$DCTX" "docker-$nonce"
  timed "cold docker build" env DOCKER_BUILDKIT=0 docker build -q -t "localhost:$PORT/$APP-docker:cold-$run" "$DCTX" >/dev/null
  echo "docker changed $nonce" >"$DCTX/www/healthz"
  DOCKER+=("$(timed "warm docker build" env DOCKER_BUILDKIT=0 docker build -q -t "localhost:$PORT/$APP-docker:warm-$run" "$DCTX")")
  DOCKER_PUSH+=("$(timed "docker push" docker push -q "localhost:$PORT/$APP-docker:warm-$run")")
  log "run $run: cold ${COLD[-1]}s, warm ${WARM[-1]}s; docker build ${DOCKER[-1]}s (+ push ${DOCKER_PUSH[-1]}s)"
done

python3 - "$RESULTS/build.json" "${COLD[*]}" "${WARM[*]}" "${DOCKER[*]}" "${DOCKER_PUSH[*]}" \
  "$(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')" <<'PY'
import json, statistics, sys
path, cold, warm, docker, push, engine = sys.argv[1:7]
nums = lambda s: [float(x) for x in s.split()]
cold, warm, docker, push = map(nums, (cold, warm, docker, push))
med = statistics.median
docker_and_push = [d + p for d, p in zip(docker, push)]
doc = {
    "engine": engine,
    "runs": len(cold),
    "cold_kindlab_build_s": {"median": med(cold), "samples": cold},
    "warm_kindlab_build_s": {"median": med(warm), "samples": warm},
    "warm_docker_build_s": {"median": med(docker), "samples": docker, "builder": "classic (no buildx plug-in)"},
    "warm_docker_build_and_push_s": {"median": med(docker_and_push), "samples": docker_and_push},
    "ratio_warm_vs_docker_build": round(med(warm) / med(docker), 2),
    "ratio_warm_vs_docker_build_and_push": round(med(warm) / med(docker_and_push), 2),
    "target": "warm kindlab build <= 1.0x docker build",
}
doc["met"] = doc["ratio_warm_vs_docker_build"] <= 1.0
with open(path, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
print(f"{'measurement':<40} {'median':>8}")
print(f"{'cold kindlab build (sample)':<40} {med(cold):>7.2f}s")
print(f"{'warm kindlab build (one file changed)':<40} {med(warm):>7.2f}s")
print(f"{'warm docker build (same change)':<40} {med(docker):>7.2f}s")
print(f"{'warm docker build + docker push':<40} {med(docker_and_push):>7.2f}s")
print(f"kindlab warm / docker build = {doc['ratio_warm_vs_docker_build']}x "
      f"(target <= 1.0x: {'met' if doc['met'] else 'NOT met'}); "
      f"/ docker build + push = {doc['ratio_warm_vs_docker_build_and_push']}x")
PY
