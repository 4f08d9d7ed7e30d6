#!/usr/bin/env bash
# End-to-end proof that the offline test cluster enforces NetworkPolicy with netpol.sh's agent:
#   kind cluster (offline node image) -> two namespaces, a web Service in np-a, a client pod
#   in each -> a "same namespace only" ingress policy in np-a is IGNORED by the bare ptp CNI ->
#   netpol.sh install -> the np-b client is refused (Service and pod IP), the np-a client is
#   not -> policy deleted -> the np-b client gets through again.
# Everything it creates is removed on exit, also on failure.
#
#   bash .ci/offline-images/netpol-smoke.sh
# Knobs: NP_CLUSTER (np-test), NP_TIMEOUT (seconds, 180)
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
slog() { log "netpol-smoke: $*"; }

[ -f "$CACHE/env" ] || die "$CACHE/env missing: run build.sh first"
# shellcheck disable=SC1091
. "$CACHE/env"
export PATH="$KINDLAB_CI_BIN:$PATH"
IMAGE=$KINDLAB_TEST_NODE_IMAGE
BUSYBOX_IMAGE=${KINDLAB_CI_BUSYBOX_IMAGE:-busybox:1.36}
CLUSTER=${NP_CLUSTER:-np-test}
TIMEOUT=${NP_TIMEOUT:-180}

TMP=$(mktemp -d)
export KUBECONFIG="$TMP/kubeconfig"   # never touch the user's kubeconfig
STATUS=1
cleanup() {
  local rc=$?
  trap - EXIT ERR
  if [ "$STATUS" -ne 0 ]; then
    slog "FAILED (rc=$rc); diagnostics:"
    kubectl get pods -A -o wide 2>&1 | sed 's/^/  /' || true
    kubectl -n kube-system logs ds/kube-router-netpol --tail=30 2>&1 | sed 's/^/  /' || true
  fi
  kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  rm -rf "$TMP"
  grep -qx "$CLUSTER" <<<"$(kind get clusters 2>/dev/null)" && { slog "WARNING: cluster $CLUSTER left"; STATUS=1; }
  if [ "$STATUS" -eq 0 ]; then slog "PASS"; else slog "FAIL"; fi
  exit "$STATUS"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'die "failed at line $LINENO: $BASH_COMMAND"' ERR

ms() { echo $(( $(date +%s%N) / 1000000 )); }
t0=$(ms)
elapsed() { echo "$(( ($(ms) - t0) / 1000 )).$(( ($(ms) - t0) % 1000 / 100 ))s"; }

have_image "$IMAGE" || die "node image $IMAGE not present: run build.sh"
have_image "$BUSYBOX_IMAGE" || bash "$HERE/build.sh" aux
bash "$HERE/netpol.sh"          # build (warm: < 1 s)
slog "netpol image ready ($(elapsed))"

kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
kind create cluster --name "$CLUSTER" --image "$IMAGE" --wait "${TIMEOUT}s"
slog "cluster created ($(elapsed))"
kind load docker-image "$BUSYBOX_IMAGE" --name "$CLUSTER" >/dev/null

# web server + Service in np-a; a long-running client in np-a and one in np-b
for ns in np-a np-b; do kubectl create namespace "$ns" >/dev/null; done
kubectl -n np-a run web --image="$BUSYBOX_IMAGE" --labels=app=web --port=8080 --command -- \
  sh -c 'mkdir -p /www && echo netpol-ok > /www/index.html && exec httpd -f -p 8080 -h /www' >/dev/null
kubectl -n np-a expose pod web --port=8080 >/dev/null
for ns in np-a np-b; do
  kubectl -n "$ns" run client --image="$BUSYBOX_IMAGE" --command -- sleep 100000 >/dev/null
done
kubectl -n np-a wait --for=condition=Ready pod/web pod/client --timeout="${TIMEOUT}s" >/dev/null
kubectl -n np-b wait --for=condition=Ready pod/client --timeout="${TIMEOUT}s" >/dev/null
SVC=$(kubectl -n np-a get svc web -o jsonpath='{.spec.clusterIP}')
POD=$(kubectl -n np-a get pod web -o jsonpath='{.status.podIP}')
slog "web: Service $SVC, pod $POD ($(elapsed))"

# reach NS TARGET: 0 if the client in NS gets the page within 3 s
# (busybox 1.35's `wget -T` segfaults: use the timeout applet instead)
reach() { kubectl -n "$1" exec client -- timeout 3 wget -q -O- "http://$2:8080/" 2>/dev/null | grep -qx netpol-ok; }
# expect NS TARGET yes|no: poll until the answer is as expected (policy updates are async)
expect() {
  local ns=$1 target=$2 want=$3 i s
  s=$(ms)
  for i in $(seq 1 30); do
    if reach "$ns" "$target"; then [ "$want" = yes ] && break; else [ "$want" = no ] && break; fi
    [ "$i" -lt 30 ] || die "$ns -> $target: expected reachable=$want, still not after 30 tries"
    sleep 1
  done
  slog "  $ns -> $target: reachable=$want (after $(( $(ms) - s )) ms)"
}

slog "1. no policy: everything reachable"
expect np-a "$SVC" yes; expect np-b "$SVC" yes; expect np-b web.np-a.svc.cluster.local yes

cat > "$TMP/policy.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: same-namespace-only
  namespace: np-a
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
    - from:
        - podSelector: {}
EOF
kubectl apply -f "$TMP/policy.yaml" >/dev/null
slog "2. policy applied, no enforcing agent yet: the ptp CNI ignores it"
sleep 3
reach np-b "$SVC" || die "np-b could not reach np-a before the agent ran"
slog "  np-b -> $SVC: reachable=yes (policy ignored)"

s=$(ms)
bash "$HERE/netpol.sh" install "$CLUSTER"
slog "3. agent installed in $(( $(ms) - s )) ms (kind load + apply + Ready) ($(elapsed))"
expect np-b "$SVC" no
expect np-b "$POD" no
expect np-b web.np-a.svc.cluster.local no
expect np-a "$SVC" yes
expect np-a "$POD" yes
err=$(kubectl -n np-b exec client -- timeout 3 wget -q -O- "http://$SVC:8080/" 2>&1 || true)
slog "  np-b's wget says: ${err//$'\n'/ }"
for b in legacy nft; do
  n=$(docker exec "$CLUSTER-control-plane" sh -c "iptables-$b-save 2>/dev/null | grep -cE '^-A KUBE-(ROUTER|POD-FW|NWPLCY)' || true")
  slog "  node's iptables-$b: $n kube-router policy rules"
done
kubectl -n np-a delete networkpolicy same-namespace-only >/dev/null
slog "4. policy deleted: np-b gets through again"
expect np-b "$SVC" yes
expect np-a "$SVC" yes

slog "5. policy applied again with the agent running: time until np-b is refused"
kubectl apply -f "$TMP/policy.yaml" >/dev/null
expect np-b "$SVC" no
expect np-a "$SVC" yes
errors=$(kubectl -n kube-system logs ds/kube-router-netpol 2>&1 | grep -c '^E' || true)
slog "  kube-router error log lines: $errors"
[ "$errors" = 0 ] || kubectl -n kube-system logs ds/kube-router-netpol 2>&1 | grep '^E' | head -5 | sed 's/^/  /'

STATUS=0
slog "all checks passed in $(elapsed)"
