#!/usr/bin/env bash
# Makes sure the images `make lab` and `make test` need can be had, saying where they come
# from: already in the engine; else from a bundle (BUNDLE=FILE, or ./kindlab-bundle.tar),
# loaded with `kindlab bundle load`; else pulled, when a registry answers (kind then pulls
# its node image itself); else built offline from package registries
# (`make offline-images`: kind, kubectl, a kind node image, registry and busybox stand-ins).
#
#   KINDLAB=path/to/kindlab BUNDLE=FILE bash .ci/lab-images.sh
# Knobs: KINDLAB_CI_CACHE (/var/cache/kindlab-ci), KINDLAB_NODE_IMAGE (the node image to
# expect; default: the offline build's, once there is one).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[images] %s\n' "$*"; }

CACHE=${KINDLAB_CI_CACHE:-/var/cache/kindlab-ci}
KINDLAB=${KINDLAB:-./target/release/kindlab}
# What the sample workspace (and the tests, which scaffold it) run: its registry image and
# the base image of its Dockerfile.
NEEDED=(registry:3 busybox:1.36)

node_image=${KINDLAB_NODE_IMAGE:-}
if [ -z "$node_image" ] && [ -f "$CACHE/env" ]; then
  node_image=$(sed -n 's/^KINDLAB_TEST_NODE_IMAGE=//p' "$CACHE/env")
fi
[ -n "$node_image" ] && NEEDED+=("$node_image")

have() { docker image inspect "$1" >/dev/null 2>&1; }
missing=()
for image in "${NEEDED[@]}"; do have "$image" || missing+=("$image"); done

# The offline test cluster's NetworkPolicy enforcer (kube-router's policy controller; see
# .ci/offline-images/NETWORKPOLICY.md): built once beside the offline images, under a second
# when cached.
netpol() {
  if [ -f "$CACHE/env" ]; then
    bash .ci/offline-images/netpol.sh
  fi
}

# GitOps mode's images (Flux's source- and kustomize-controller, the Git server; see
# .ci/offline-images/gitops.sh), built from package registries beside the offline images:
# cold about 25 min on 2 shared cores (the Go builds), under a second when cached.
gitops() {
  if [ -f "$CACHE/env" ]; then
    bash .ci/offline-images/gitops.sh
  fi
}

if [ ${#missing[@]} -eq 0 ] && [ -n "$node_image" ]; then
  log "in the engine: ${NEEDED[*]}"
  netpol
  gitops
  exit 0
fi

bundle=${BUNDLE:-}
[ -z "$bundle" ] && [ -f kindlab-bundle.tar ] && bundle=kindlab-bundle.tar
if [ -n "$bundle" ]; then
  log "loading the images from the bundle $bundle (kindlab bundle load)"
  "$KINDLAB" bundle load --no-registry "$bundle"
  exit 0
fi

# Can this engine pull? A machine with no route to a registry fails at once.
if [ ${#missing[@]} -eq 0 ]; then
  # Only kind's default node image is unknown (kind cannot be asked for it). A node image
  # already here (pulled before, or a loaded bundle's) is enough; else ask a registry.
  if [ -n "$(docker image ls -q kindest/node)$(docker image ls -q kindlab-bundle/node)" ]; then
    log "in the engine: ${NEEDED[*]} and a kind node image"
    exit 0
  fi
  missing=(registry:3)   # the probe: re-pulling an image only asks the registry
fi
pulled=1
for image in "${missing[@]}"; do
  log "pulling $image"
  if ! err=$(timeout 300 docker pull -q "$image" 2>&1 >/dev/null); then
    log "cannot pull $image: ${err##*$'\n'}"
    pulled=""
    break
  fi
done
if [ -n "$pulled" ]; then
  log "a registry answers: images pulled; kind pulls its node image itself"
  exit 0
fi

log "no image registry in reach and no bundle (BUNDLE=FILE or ./kindlab-bundle.tar):"
log "building kind, kubectl and the images offline from package registries (make offline-images;"
log "about 30 min the first time on 2 cores, under a second once built)"
bash .ci/offline-images/build.sh
netpol
gitops
