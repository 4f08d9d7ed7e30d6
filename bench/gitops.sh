#!/usr/bin/env bash
# `make bench`, GitOps part (issue 18): in a fresh GitOps-mode workspace,
#   cold     `kindlab up` from nothing, and the share of it the gitops action takes (Git server,
#            Flux's controllers, push, first sync)
#   push     BENCH_PUSHES commits that each change the Deployment's pod template
#            (commonAnnotations), timed from `git push kindlab` until the new pods run:
#            - poll: the controller finds the commit on its own (GitRepository interval 30s)
#            - sync: `git push kindlab && kindlab sync`
# Medians in bench/results/gitops.json. Needs GitOps mode's images (.ci/offline-images/
# gitops.sh; run through .ci/with-env.sh). Only the cluster bench-gitops, its registry and its
# Git server are ever deleted.
#
# Environment: KINDLAB (target/release/kindlab), BENCH_PUSHES (5), BENCH_GITOPS_PORT (5104).
set -o errexit -o nounset -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KINDLAB=${KINDLAB:-$ROOT/target/release/kindlab}
case "$KINDLAB" in /*) ;; *) KINDLAB=$PWD/$KINDLAB ;; esac
PUSHES=${BENCH_PUSHES:-5}
CLUSTER=bench-gitops
REGISTRY=bench-gitops-registry
PORT=${BENCH_GITOPS_PORT:-5104}
OUT=$ROOT/bench/results/gitops.json

log() { printf '[bench-gitops] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
[ -x "$KINDLAB" ] || die "no kindlab at $KINDLAB (run 'make build' or set KINDLAB=path)"
[ -n "${KINDLAB_GITOPS_GIT_SERVER_IMAGE:-}" ] || die "GitOps images unknown: run through .ci/with-env.sh after .ci/offline-images/gitops.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kindlab-bench-gitops.XXXXXX")
export KUBECONFIG=$TMP/kubeconfig
WS=$TMP/ws
cleanup() {
  "$KINDLAB" --workspace "$WS" down --purge >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT

# leftovers of an earlier, interrupted run (only what this harness names)
kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
docker rm -f -v "$REGISTRY" "$CLUSTER-git" >/dev/null 2>&1 || true

"$KINDLAB" init "$WS" >/dev/null
cat >"$WS/kindlab.yaml" <<YAML
cluster:
  name: $CLUSTER
registry:
  name: $REGISTRY
  port: $PORT
  image: registry:3
images:
  - name: orders-api
    context: apps/orders-api
deploy:
  overlay: deploy/overlays/dev
gitops:
  enabled: true
YAML
K=$WS/deploy/overlays/dev/kustomization.yaml
sed -i "s|localhost:5001/|localhost:$PORT/|" "$K"
g() { git -C "$WS" -c user.name=bench -c user.email=bench@localhost "$@"; }
g add -A && g commit -qm "bench: GitOps mode"

log "cold up (GitOps mode)"
"$KINDLAB" --workspace "$WS" --output json up --timeout 600s >"$TMP/up.json" 2>"$TMP/up.log" \
  || { tail -20 "$TMP/up.log" >&2; die "cold up failed"; }
read -r total share < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
total = d["duration"]
g = next(a for a in d["actions"] if a["action"] == "gitops")
print(total, g["duration"])' "$TMP/up.json")
log "cold up ${total}s, of which gitops ${share}s"

running() { # value: the new pods of the annotation's value run
  local want=$1
  [ "$(kubectl --context "kind-$CLUSTER" -n dev get deploy/orders-api -o jsonpath='{.spec.template.metadata.annotations.bench/push}' 2>/dev/null)" = "$want" ] \
    && kubectl --context "kind-$CLUSTER" -n dev rollout status deploy/orders-api --timeout=1s >/dev/null 2>&1
}
push_change() { # value
  python3 - "$K" "$1" <<'PY'
import sys, re
path, value = sys.argv[1], sys.argv[2]
text = open(path).read()
text = re.sub(r'\ncommonAnnotations:\n  bench/push: "[^"]*"\n', "\n", text)
open(path, "w").write(text.rstrip("\n") + f'\ncommonAnnotations:\n  bench/push: "{value}"\n')
PY
  g commit -qam "bench: push $1"
}

poll=() sync=()
for i in $(seq 1 "$PUSHES"); do
  for way in poll sync; do
    value="$way-$i"
    push_change "$value"
    t0=$EPOCHREALTIME
    g push -q kindlab
    if [ "$way" = sync ]; then
      "$KINDLAB" --workspace "$WS" sync --timeout 200 >/dev/null 2>>"$TMP/sync.log" || die "kindlab sync failed (push $i)"
    fi
    deadline=$((SECONDS + 240))
    until running "$value"; do
      [ $SECONDS -lt $deadline ] || die "push $value never ran"
      sleep 0.2
    done
    secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
    log "push $value → running: ${secs}s"
    if [ "$way" = poll ]; then poll+=("$secs"); else sync+=("$secs"); fi
  done
done

python3 - "$OUT" "$total" "$share" "${poll[*]}" "${sync[*]}" <<'PY'
import json, statistics, sys
out, total, share, poll, sync = sys.argv[1:]
poll = [float(x) for x in poll.split()]
sync = [float(x) for x in sync.split()]
doc = {
    "cold_up_seconds": float(total),
    "gitops_action_seconds": float(share),
    "gitops_share_of_cold_up": round(float(share) / float(total), 3),
    "push_to_running_poll_median_seconds": statistics.median(poll),
    "push_to_running_sync_median_seconds": statistics.median(sync),
    "samples": {"poll": poll, "sync": sync},
}
json.dump(doc, open(out, "w"), indent=2)
print(json.dumps(doc, indent=2))
PY
