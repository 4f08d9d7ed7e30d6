#!/usr/bin/env bash
# `make bench-room`: a workshop room of ROOM_ATTENDEES (30) attendees on one kind cluster.
# The instructor provisions them (`kindlab workshop provision --count N`); every attendee, in a
# workspace copy of its own and with nothing but its own kubeconfig, starts the bad-image-tag
# lab at the same time; half fix it by hand (the lab text's `kubectl apply -k`, as the
# attendee), the rest `kindlab lab solve`; every one checks until fixed; then the instructor
# resets the whole room (`kindlab workshop reset --all`).
#
# Reports (stdout and bench/results/room.json): provision and reset-all wall times, p50/p95
# time to a live failure (lab start's own measure: break to first symptom), p50/p95 wall
# time of `lab start` and of one `lab check`, the API server's requests (apiserver_request_total
# before and after, less the idle rate measured for 20 s before) and 5xx answers, and sessions
# lost (an attendee whose lab did not end fixed).
#
# Environment: KINDLAB (target/release/kindlab), ROOM_ATTENDEES (30), ROOM_PARALLEL (how many
# attendees act at once; default all), BENCH_ROOM_CLUSTER (bench-room), BENCH_ROOM_PORT (5104),
# KINDLAB_CI_ENV (/var/cache/kindlab-ci/env: kind, kubectl and the offline node image).
# Only the bench-room cluster and its registry are ever deleted.
set -o errexit -o nounset -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KINDLAB=${KINDLAB:-$ROOT/target/release/kindlab}
case "$KINDLAB" in /*) ;; *) KINDLAB=$PWD/$KINDLAB ;; esac
N=${ROOM_ATTENDEES:-30}
PARALLEL=${ROOM_PARALLEL:-$N}
CLUSTER=${BENCH_ROOM_CLUSTER:-bench-room}
PORT=${BENCH_ROOM_PORT:-5104}
CI_ENV=${KINDLAB_CI_ENV:-/var/cache/kindlab-ci/env}
RESULTS=$ROOT/bench/results
if [ -f "$CI_ENV" ]; then
  set -a; . "$CI_ENV"; set +a
  export PATH="$KINDLAB_CI_BIN:$PATH"
  export KINDLAB_NODE_IMAGE="${KINDLAB_NODE_IMAGE:-$KINDLAB_TEST_NODE_IMAGE}"
fi
log() { printf '[room] %s\n' "$*" >&2; }
now() { echo "$EPOCHREALTIME"; }

WORK=$(mktemp -d /tmp/kindlab-room.XXXXXX)
INSTRUCTOR=$WORK/instructor
cleanup() {
  log "cleaning up: kindlab down --purge of $CLUSTER"
  "$KINDLAB" --workspace "$INSTRUCTOR" down --purge >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# kubectl as the instructor (the kind cluster's admin kubeconfig).
admin() { kubectl --kubeconfig "$WORK/admin.kubeconfig" "$@"; }
requests() {
  admin get --raw /metrics | python3 -c '
import re, sys
total = errors = 0
for line in sys.stdin:
    if line.startswith("apiserver_request_total{"):
        value = float(line.rsplit(" ", 1)[1])
        total += value
        if re.search(r"code=\"5\d\d\"", line):
            errors += value
print(int(total), int(errors))'
}

log "instructor's workspace and cluster $CLUSTER (registry on port $PORT)"
"$KINDLAB" init "$INSTRUCTOR" >/dev/null
sed -i "s/^  name: kindlab$/  name: $CLUSTER/; s/^  name: kind-registry$/  name: $CLUSTER-registry/; s/^  port: 5001$/  port: $PORT/" "$INSTRUCTOR/kindlab.yaml"
sed -i "s/localhost:5001\//localhost:$PORT\//" "$INSTRUCTOR/deploy/overlays/dev/kustomization.yaml"
"$KINDLAB" --workspace "$INSTRUCTOR" up --timeout 5m >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; exit 1; }
kind get kubeconfig --name "$CLUSTER" >"$WORK/admin.kubeconfig"

log "the API server's idle request rate (20 s)"
read -r idle0 _ < <(requests); t0=$(now); sleep 20; read -r idle1 _ < <(requests); t1=$(now)
idle_rate=$(python3 -c "print(($idle1-$idle0)/($t1-$t0))")
read -r req_before err_before < <(requests); bench_start=$(now)

log "provision $N attendees"
p0=$(now)
"$KINDLAB" --workspace "$INSTRUCTOR" workshop provision --count "$N" --room bench --parallel 8 \
  --out "$WORK/handout" -o json >"$WORK/provision.json" 2>"$WORK/provision.log" \
  || { tail -20 "$WORK/provision.log" >&2; exit 1; }
p1=$(now)

names=$(python3 -c "import json; print(' '.join(a['attendee'] for a in json.load(open('$WORK/provision.json'))['attendees']))")
for name in $names; do
  mkdir -p "$WORK/att/$name"
  (cd "$INSTRUCTOR" && tar --exclude=./.kindlab -cf - .) | tar -xf - -C "$WORK/att/$name"
done

# Runs "$@" for every attendee, at most PARALLEL at once; each run's stdout, stderr, exit
# code and wall seconds land in $WORK/att/<name>/<tag>.{out,err,code,secs}.
each() {
  local tag=$1; shift
  printf '%s\n' $names | xargs -P "$PARALLEL" -I{} bash -c '
    export name={}; dir='"$WORK"'/att/$name; tag='"$tag"'
    start=$EPOCHREALTIME
    KINDLAB_KUBECONFIG='"$WORK"'/handout/$name.kubeconfig KUBECONFIG='"$WORK"'/handout/$name.kubeconfig \
      "$@" >$dir/$tag.out 2>$dir/$tag.err; echo $? >$dir/$tag.code
    python3 -c "print($EPOCHREALTIME-$start)" >$dir/$tag.secs' _ "$@"
}

log "every attendee starts bad-image-tag at once"
s0=$(now)
each start bash -c 'cd '"$WORK"'/att/$name && '"$KINDLAB"' lab start bad-image-tag -o json'
s1=$(now)

log "half fix it by hand (kubectl apply -k), the others: kindlab lab solve"
i=0
for name in $names; do
  dir=$WORK/att/$name
  if [ $((i % 2)) -eq 0 ]; then
    (cd "$dir" && KUBECONFIG=$WORK/handout/$name.kubeconfig kubectl apply -k "deploy/overlays/$name" >"$dir/fix.out" 2>&1; echo $? >"$dir/fix.code") &
  else
    (cd "$dir" && KINDLAB_KUBECONFIG=$WORK/handout/$name.kubeconfig "$KINDLAB" lab solve >"$dir/fix.out" 2>&1; echo $? >"$dir/fix.code") &
  fi
  i=$((i + 1))
done
wait

log "every attendee checks until fixed"
each check bash -c '
  cd '"$WORK"'/att/$name
  for try in $(seq 240); do
    s=$EPOCHREALTIME
    '"$KINDLAB"' lab check -o json >check.last 2>&1; code=$?
    python3 -c "print($EPOCHREALTIME-$s)" >>check.latencies
    [ $code -eq 0 ] && { cat check.last; exit 0; }
    sleep 0.5
  done
  cat check.last; exit 1'

log "the instructor resets the whole room"
r0=$(now)
"$KINDLAB" --workspace "$INSTRUCTOR" workshop reset --all --room bench -o json >"$WORK/reset.json" 2>"$WORK/reset.log" \
  || { tail -20 "$WORK/reset.log" >&2; exit 1; }
r1=$(now)
read -r req_after err_after < <(requests); bench_end=$(now)

mkdir -p "$RESULTS"
python3 - "$WORK" "$N" "$PARALLEL" "$p0" "$p1" "$s0" "$s1" "$r0" "$r1" "$req_before" "$req_after" "$err_before" "$err_after" "$idle_rate" "$bench_start" "$bench_end" "$RESULTS/room.json" <<'EOF'
import json, os, statistics, sys
work, n, parallel = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
p0, p1, s0, s1, r0, r1 = map(float, sys.argv[4:10])
req_before, req_after, err_before, err_after = map(int, sys.argv[10:14])
idle_rate, t0, t1 = map(float, sys.argv[14:17])
out = sys.argv[17]

def pct(values, p):
    values = sorted(values)
    if not values:
        return None
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return round(values[lo] + (values[hi] - values[lo]) * (k - lo), 3)

names = sorted(os.listdir(os.path.join(work, "att")))
symptoms, start_walls, check_latencies, failures = [], [], [], []
lost = 0
for name in names:
    d = os.path.join(work, "att", name)
    read = lambda f: open(os.path.join(d, f)).read()
    if read("start.code").strip() != "0":
        failures.append(f"{name}: lab start: {read('start.err').strip().splitlines()[-1:]}")
        lost += 1
        continue
    started = json.loads(read("start.out"))
    symptoms.append(started["session"]["time_to_symptoms_s"])
    start_walls.append(float(read("start.secs")))
    if read("fix.code").strip() != "0":
        failures.append(f"{name}: fix: {read('fix.out').strip().splitlines()[-1:]}")
    check_latencies += [float(x) for x in read("check.latencies").split()]
    if read("check.code").strip() != "0":
        failures.append(f"{name}: never fixed")
        lost += 1
reset = json.load(open(os.path.join(work, "reset.json")))
requests = req_after - req_before
idle = idle_rate * (t1 - t0)
kindlab_requests = max(0, requests - idle)
result = {
    "attendees": n,
    "parallel": parallel,
    "provision_s": round(p1 - p0, 2),
    "start_all_s": round(s1 - s0, 2),
    "reset_all_s": round(r1 - r0, 2),
    "reset_attendees": len(reset["attendees"]),
    "time_to_live_failure_s": {"p50": pct(symptoms, 50), "p95": pct(symptoms, 95)},
    "lab_start_wall_s": {"p50": pct(start_walls, 50), "p95": pct(start_walls, 95)},
    "lab_check_s": {"p50": pct(check_latencies, 50), "p95": pct(check_latencies, 95), "samples": len(check_latencies)},
    "api_requests": requests,
    "api_requests_idle_estimate": round(idle),
    "api_requests_per_attendee_per_lab": round(kindlab_requests / n, 1),
    "api_5xx": err_after - err_before,
    "lost_sessions": lost,
    "failures": failures,
}
json.dump(result, open(out, "w"), indent=2)
print(json.dumps(result, indent=2))
if failures or lost or result["api_5xx"]:
    sys.exit(1)
EOF
