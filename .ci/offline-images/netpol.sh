#!/usr/bin/env bash
# NetworkPolicy enforcement for the offline test cluster (issue 16, item 3).
#
# The offline node image's static ptp CNI ignores NetworkPolicy, and kind's own enforcer
# (kube-network-policies, inside kindnetd) needs nftables' `queue` statement, which this
# kernel lacks (CONFIG_NFT_QUEUE unset; see NETWORKPOLICY.md). kube-router's network policy
# controller needs only iptables + ipset + the conntrack/set/mark/comment matches, which the
# kernel has. So this script builds kube-router, pinned, from the Go module proxy and runs
# ONLY its policy controller (--run-firewall; no router, no service proxy, no CNI) as a
# DaemonSet. Its image is FROM the offline kube-proxy image: same Debian iptables/ipset and
# the same iptables-wrapper, so it always picks the iptables backend kube-proxy uses.
#
#   bash .ci/offline-images/netpol.sh                   # build (idempotent; cold ~3 min, warm < 1 s)
#   bash .ci/offline-images/netpol.sh install CLUSTER   # kind load + apply + wait until Ready
#
# Needs build.sh's output ($CACHE/env and the kube-proxy image). Writes $CACHE/netpol.env:
#   KINDLAB_CI_NETPOL_IMAGE=kindlab-ci/kube-router-netpol:v2.1.0
#   KINDLAB_CI_NETPOL_MANIFEST=<this directory>/netpol.yaml
# Knobs: KUBE_ROUTER_VERSION, KINDLAB_CI_CACHE, KINDLAB_CI_REBUILD_IMAGES=1.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

KUBE_ROUTER_VERSION=${KUBE_ROUTER_VERSION:-v2.1.0}   # the only kube-router/v2 version the module proxy serves
MODULE=github.com/cloudnativelabs/kube-router/v2
IMAGE=kindlab-ci/kube-router-netpol:$KUBE_ROUTER_VERSION
MANIFEST=$HERE/netpol.yaml
DIR=$CACHE/kube-router-$KUBE_ROUTER_VERSION
REBUILD=${KINDLAB_CI_REBUILD_IMAGES:-}

[ -f "$CACHE/env" ] || die "$CACHE/env missing: run build.sh first"
# shellcheck disable=SC1091
. "$CACHE/env"

# the kube-proxy image build.sh made, under the name kubeadm gives it
proxy_image() {
  local f="$CACHE/k8s-$KINDLAB_CI_K8S_VERSION/images.txt" r
  r=$(grep -m1 '/kube-proxy:' "$f" 2>/dev/null || true)
  [ -n "$r" ] && have_image "$r" || die "kube-proxy image not found (from $f): run build.sh"
  echo "$r"
}

build_binary() {
  if [ -x "$DIR/kube-router" ]; then log "netpol: kube-router $KUBE_ROUTER_VERSION: cached"; return 0; fi
  command -v go >/dev/null || die "go toolchain not found on PATH"
  log "netpol: kube-router $KUBE_ROUTER_VERSION: go install (cold: about 3 min)"
  local t0 date; t0=$(date +%s)
  date=$(go list -m -json "$MODULE@$KUBE_ROUTER_VERSION" | jq -r .Time) \
    || die "$MODULE@$KUBE_ROUTER_VERSION not on the module proxy"
  mkdir -p "$DIR"; rm -rf "$DIR/.gobin"
  # go install pkg@version: the module has no replace directives; static, stripped
  GOBIN="$DIR/.gobin" CGO_ENABLED=0 GOFLAGS= nice -n 10 go install -trimpath \
    -ldflags "-s -w -X $MODULE/pkg/version.Version=$KUBE_ROUTER_VERSION -X $MODULE/pkg/version.BuildDate=$date" \
    "$MODULE/cmd/kube-router@$KUBE_ROUTER_VERSION" || die "go install $MODULE/cmd/kube-router@$KUBE_ROUTER_VERSION failed"
  mv "$DIR/.gobin/kube-router" "$DIR/kube-router"; rmdir "$DIR/.gobin"
  log "netpol: built in $(( $(date +%s) - t0 ))s: $("$DIR/kube-router" --version 2>&1 | head -1)"
}

build_image() {
  local base key cur c
  base=$(proxy_image)
  key=$( { cat "$HERE/netpol.sh"; echo "$KUBE_ROUTER_VERSION"; docker image inspect -f '{{.Id}}' "$base"; } | sha256sum | cut -c1-12)
  cur=$(docker image inspect -f '{{index .Config.Labels "kindlab.ci/netpol"}}' "$IMAGE" 2>/dev/null || true)
  if [ -z "$REBUILD" ] && [ "$cur" = "$key" ]; then log "netpol: image $IMAGE: current"; return 0; fi
  build_binary
  log "netpol: image $IMAGE FROM $base"
  c=$(mktemp -d)
  cp "$DIR/kube-router" "$c/kube-router"; chmod 0755 "$c/kube-router"
  printf 'FROM %s\nCOPY kube-router /usr/local/bin/kube-router\nENTRYPOINT ["/usr/local/bin/kube-router"]\nLABEL kindlab.ci/netpol=%s\n' \
    "$base" "$key" > "$c/Dockerfile"
  local old; old=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
  docker build -q -t "$IMAGE" "$c" >/dev/null || die "docker build $IMAGE failed"
  if [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "$IMAGE")" ]; then
    docker rmi "$old" >/dev/null 2>&1 || true
  fi
  rm -rf "$c"
}

write_env() {
  local want; want=$(printf 'KINDLAB_CI_NETPOL_IMAGE=%s\nKINDLAB_CI_NETPOL_MANIFEST=%s\n' "$IMAGE" "$MANIFEST")
  [ "$(cat "$CACHE/netpol.env" 2>/dev/null)" = "$want" ] && return 0
  echo "$want" > "$CACHE/netpol.env.tmp" && mv "$CACHE/netpol.env.tmp" "$CACHE/netpol.env"
  log "netpol: wrote $CACHE/netpol.env"
}

build() {
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.netpol.lock"
  flock -n 8 || { log "netpol: another netpol.sh is building; waiting"; flock 8; }
  build_image
  write_env
}

# install CLUSTER: load the image into the kind cluster, apply the DaemonSet, wait for it
install() {
  local cluster=${1:?usage: netpol.sh install CLUSTER}
  export PATH="$KINDLAB_CI_BIN:$PATH"
  build
  kind load docker-image --name "$cluster" "$IMAGE" >/dev/null || die "kind load docker-image $IMAGE failed"
  # (the manifest names v2.1.0; follow KUBE_ROUTER_VERSION)
  sed "s|image: kindlab-ci/kube-router-netpol:.*|image: $IMAGE|" "$MANIFEST" \
    | kubectl --context "kind-$cluster" apply -f - >/dev/null || die "kubectl apply $MANIFEST failed"
  kubectl --context "kind-$cluster" -n kube-system rollout status ds/kube-router-netpol --timeout=120s >/dev/null \
    || die "the kube-router-netpol DaemonSet did not become ready"
  log "netpol: enforcing NetworkPolicy in kind-$cluster"
}

t0=$(date +%s%N)
case "${1:-build}" in
  build) build ;;
  install) shift; install "$@" ;;
  *) die "usage: netpol.sh [build | install CLUSTER]" ;;
esac
log "netpol: done in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
