#!/usr/bin/env bash
# End-to-end proof of the offline node image, with kind's documented local-registry wiring:
#   registry container -> kind cluster (offline image) -> certs.d/hosts.toml -> push an image ->
#   Deployment becomes Ready -> bad tag gives ErrImagePull then ImagePullBackOff ("not found")
# Everything it creates is removed on exit, also on failure.
#
#   bash .ci/offline-images/smoke.sh
# Knobs: SMOKE_CLUSTER (kindlab-smoke), SMOKE_REGISTRY (kindlab-smoke-registry),
#        SMOKE_REGISTRY_PORT (first free port from 5001), SMOKE_TIMEOUT (seconds, 180)
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
slog() { log "smoke: $*"; }

[ -f "$CACHE/env" ] || die "$CACHE/env missing: run build.sh first"
# shellcheck disable=SC1091
. "$CACHE/env"
export PATH="$KINDLAB_CI_BIN:$PATH"
IMAGE=$KINDLAB_TEST_NODE_IMAGE
REGISTRY_IMAGE=${KINDLAB_CI_REGISTRY_IMAGE:-registry:2}
BUSYBOX_IMAGE=${KINDLAB_CI_BUSYBOX_IMAGE:-busybox:1.36}
CLUSTER=${SMOKE_CLUSTER:-kindlab-smoke}
REG=${SMOKE_REGISTRY:-kindlab-smoke-registry}
TIMEOUT=${SMOKE_TIMEOUT:-180}
NS=default

port_in_use() {
  grep -qE "[:.]$1->" <<<"$(docker ps --format '{{.Ports}}')" && return 0
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
  return 1
}
if [ -n "${SMOKE_REGISTRY_PORT:-}" ]; then
  PORT=$SMOKE_REGISTRY_PORT
  port_in_use "$PORT" && die "SMOKE_REGISTRY_PORT=$PORT is already in use"
else
  PORT=5001
  while port_in_use "$PORT"; do PORT=$((PORT + 1)); [ "$PORT" -lt 5100 ] || die "no free port in 5001-5099"; done
fi
REF_GOOD="localhost:$PORT/smoke:good"
REF_BAD="localhost:$PORT/smoke:nope"

TMP=$(mktemp -d)
export KUBECONFIG="$TMP/kubeconfig"   # never touch the user's kubeconfig
STATUS=1

cleanup() {
  local rc=$?
  trap - EXIT ERR
  if [ "$STATUS" -ne 0 ]; then
    slog "FAILED (rc=$rc); diagnostics:"
    kubectl get nodes -o wide 2>&1 | sed 's/^/  /' || true
    kubectl get pods -A -o wide 2>&1 | sed 's/^/  /' || true
    kubectl get events -A --sort-by=.lastTimestamp 2>&1 | tail -25 | sed 's/^/  /' || true
    docker logs "$CLUSTER-control-plane" 2>&1 | tail -15 | sed 's/^/  /' || true
  fi
  slog "cleaning up"
  kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  docker rm -f -v "$REG" >/dev/null 2>&1 || true
  docker rmi "$REF_GOOD" >/dev/null 2>&1 || true
  rm -rf "$TMP"
  local left=""
  grep -qx "$CLUSTER" <<<"$(kind get clusters 2>/dev/null)" && left+=" cluster:$CLUSTER"
  grep -qxE "$CLUSTER-control-plane|$REG" <<<"$(docker ps -a --format '{{.Names}}')" && left+=" containers"
  [ -z "$left" ] || { slog "WARNING: leftovers:$left"; [ "$STATUS" -ne 0 ] || STATUS=1; }
  if [ "$STATUS" -eq 0 ]; then slog "PASS"; else slog "FAIL"; fi
  exit "$STATUS"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'die "failed at line $LINENO: $BASH_COMMAND"' ERR

t0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - t0 ))s"; }

have_image "$IMAGE" || die "node image $IMAGE not present: run build.sh"
if ! have_image "$REGISTRY_IMAGE" || ! have_image "$BUSYBOX_IMAGE"; then
  REGISTRY_IMAGE=$REGISTRY_IMAGE BUSYBOX_IMAGE=$BUSYBOX_IMAGE bash "$HERE/build.sh" aux
fi
# leftovers of an earlier interrupted run with the same names
kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
docker rm -f -v "$REG" >/dev/null 2>&1 || true

slog "registry $REG on 127.0.0.1:$PORT"
docker run -d --name "$REG" -p "127.0.0.1:$PORT:5000" "$REGISTRY_IMAGE" >/dev/null
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null && break; sleep 0.2; done
curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null || die "registry does not answer"

cat > "$TMP/kind.yaml" <<'EOF'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
containerdConfigPatches:
- |-
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"
EOF
slog "kind create cluster --name $CLUSTER --image $IMAGE"
kind create cluster --name "$CLUSTER" --image "$IMAGE" --config "$TMP/kind.yaml" --wait "${TIMEOUT}s"
slog "cluster created ($(elapsed))"

# kind's documented local-registry wiring, plus a `server` line: without it containerd falls
# back to the default host (https://localhost:PORT inside the node) after the registry's 404,
# and the pull error for a missing tag reads "connection refused" instead of "not found".
for node in $(kind get nodes --name "$CLUSTER"); do
  docker exec "$node" mkdir -p "/etc/containerd/certs.d/localhost:$PORT"
  printf 'server = "http://%s:5000"\n\n[host."http://%s:5000"]\n  capabilities = ["pull", "resolve"]\n' "$REG" "$REG" \
    | docker exec -i "$node" cp /dev/stdin "/etc/containerd/certs.d/localhost:$PORT/hosts.toml"
done
docker network connect kind "$REG"
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: "localhost:$PORT"
    help: "https://kind.sigs.k8s.io/docs/user/local-registry/"
EOF

kubectl wait --for=condition=Ready node --all --timeout="${TIMEOUT}s"
slog "node Ready ($(elapsed))"

# `kind load` (ctr import + crictl inspecti inside the node)
kind load docker-image "$BUSYBOX_IMAGE" --name "$CLUSTER" >/dev/null
docker exec "$CLUSTER-control-plane" crictl inspecti "$BUSYBOX_IMAGE" >/dev/null \
  || die "kind load: $BUSYBOX_IMAGE not visible to the CRI"
slog "kind load docker-image: ok ($(elapsed))"

# a small app image on the local busybox base, pushed to the local registry
mkdir -p "$TMP/app/www"
echo "kindlab smoke ok" > "$TMP/app/www/index.html"
printf 'FROM %s\nCOPY www/ /www/\nEXPOSE 8080\nCMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n' "$BUSYBOX_IMAGE" > "$TMP/app/Dockerfile"
docker build -q -t "$REF_GOOD" "$TMP/app" >/dev/null
docker push "$REF_GOOD" >/dev/null
slog "pushed $REF_GOOD"

kubectl -n "$NS" create deployment smoke --image="$REF_GOOD" --port=8080 >/dev/null
kubectl -n "$NS" rollout status deployment/smoke --timeout="${TIMEOUT}s"
kubectl -n "$NS" wait --for=condition=Ready pod -l app=smoke --timeout="${TIMEOUT}s" >/dev/null
slog "good tag: pod Ready ($(elapsed))"

# Services (kube-proxy) and cluster DNS (CoreDNS), from a second pod
kubectl -n kube-system rollout status deployment/coredns --timeout="${TIMEOUT}s" >/dev/null
kubectl -n "$NS" expose deployment smoke --port=8080 >/dev/null
# (busybox 1.35's `wget -T` segfaults: use the timeout applet instead)
# shellcheck disable=SC2016  # expanded by the pod's shell
kubectl -n "$NS" run smoke-client --image="$REF_GOOD" --restart=Never --command -- \
  sh -c 'for i in $(seq 1 30); do timeout 5 wget -q -O- http://smoke.default.svc.cluster.local:8080/ && exit 0; sleep 2; done; exit 1' >/dev/null
phase=""
for _ in $(seq 1 "$TIMEOUT"); do
  phase=$(kubectl -n "$NS" get pod smoke-client -o jsonpath='{.status.phase}' 2>/dev/null || true)
  case "$phase" in Succeeded|Failed) break ;; esac
  sleep 1
done
[ "$phase" = Succeeded ] \
  || die "pod could not reach the Service by DNS name (phase $phase): $(kubectl -n "$NS" logs smoke-client 2>&1 | tail -3)"
# (earlier attempts may have logged e.g. "bad address" while CoreDNS was starting)
grep -qx "kindlab smoke ok" <<<"$(kubectl -n "$NS" logs smoke-client)" \
  || die "unexpected answer through the Service: $(kubectl -n "$NS" logs smoke-client | tail -3)"
slog "Service + DNS: ok ($(elapsed))"

# a tag that does not exist: ErrImagePull, then ImagePullBackOff, event says "not found"
kubectl -n "$NS" set image deployment/smoke "smoke=$REF_BAD" >/dev/null
seen_err=""; seen_backoff=""
for _ in $(seq 1 $((TIMEOUT * 2))); do
  reasons=$(kubectl -n "$NS" get pods -l app=smoke \
    -o jsonpath='{range .items[*]}{.spec.containers[0].image} {.status.containerStatuses[0].state.waiting.reason}{"\n"}{end}' \
    | awk -v r="$REF_BAD" '$1==r {print $2}' || true)
  case "$reasons" in *ErrImagePull*) seen_err=status ;; esac
  case "$reasons" in *ImagePullBackOff*) seen_backoff=1; break ;; esac
  sleep 0.5
done
[ -n "$seen_backoff" ] || die "bad tag never reached ImagePullBackOff"
events=$(kubectl -n "$NS" get events --field-selector involvedObject.kind=Pod -o jsonpath='{range .items[*]}{.reason}|{.message}{"\n"}{end}')
if [ -z "$seen_err" ] && grep -q 'Error: ErrImagePull' <<<"$events"; then seen_err=event; fi
[ -n "$seen_err" ] || die "ErrImagePull was never observed"
notfound=$(grep -F "$REF_BAD" <<<"$events" | grep -m1 'not found' || true)
[ -n "$notfound" ] || die "no event says the reference was not found; events: $(grep -F "$REF_BAD" <<<"$events" | head -3)"
slog "bad tag: ErrImagePull (seen in $seen_err) then ImagePullBackOff ($(elapsed))"
slog "event: ${notfound:0:240}"
# the good ReplicaSet keeps serving during the failed rollout
kubectl -n "$NS" get pods -l app=smoke -o wide

STATUS=0
slog "all checks passed in $(elapsed)"
