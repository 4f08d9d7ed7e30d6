#!/usr/bin/env bash
# The GitOps mode's images, offline (issue 18): Flux's source-controller and
# kustomize-controller, pinned, built from the Go module proxy, and a Git server the cluster
# reaches over smart HTTP (Debian's `git http-backend` behind a stdlib-only Go CGI front,
# gitserver/main.go). No image is pulled: the controllers go FROM build.sh's
# kindlab-ci/static-base:1 (FROM scratch); the Git server's rootfs comes from mmdebstrap,
# then `docker import`, like the kube-proxy base.
#
#   bash .ci/offline-images/gitops.sh        # build (idempotent; cold: see README.md, warm < 1 s)
#
# Why these steps (verified on this machine, Go 1.26.8):
# - v1.9.6 is the newest release that declares Go 1.26 (v1.10.x declares go 1.27.0).
# - `go install module@version` refuses both: each go.mod replaces its own `/api` module with
#   `./api`. The module zip is copied out of the module cache, the replace dropped (the /api
#   module of the same version is on the proxy), then `go build` at the module root.
# - source-controller v1.9.6 requires github.com/fluxcd/pkg/artifact v0.18.3, which the
#   proxy answers "403: not available"; v0.18.0 is served and compiles.
# - Their CRDs, RBAC and Deployments are each module's config/; kindlab renders them at `up`
#   from the module cache (FLUX_CONFIG_DIR below), so nothing of Flux is copied into this repo.
#
# GOMODCACHE and GOCACHE live under $CACHE/go so CI reuses them; builds run `nice -n 10`.
# Writes $CACHE/gitops.env:
#   KINDLAB_GITOPS_SOURCE_CONTROLLER_IMAGE=kindlab-ci/flux-source-controller:v1.9.6
#   KINDLAB_GITOPS_KUSTOMIZE_CONTROLLER_IMAGE=kindlab-ci/flux-kustomize-controller:v1.9.6
#   KINDLAB_GITOPS_GIT_SERVER_IMAGE=kindlab-ci/git-server:<key>
#   KINDLAB_GITOPS_FLUX_CONFIG=$CACHE/flux-v1.9.6/config   (source-controller/, kustomize-controller/)
# Knobs: FLUX_VERSION, KINDLAB_CI_CACHE, KINDLAB_CI_REBUILD_IMAGES=1.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

FLUX_VERSION=${FLUX_VERSION:-v1.9.6}
ARTIFACT_VERSION=v0.18.0   # source-controller's v0.18.3 is not on the module proxy
CONTROLLERS=(source-controller kustomize-controller)
DIR=$CACHE/flux-$FLUX_VERSION
REBUILD=${KINDLAB_CI_REBUILD_IMAGES:-}
STATIC_BASE=kindlab-ci/static-base:1
DEBIAN_SUITE=${DEBIAN_SUITE:-bookworm}

export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build GOFLAGS="-trimpath -mod=mod" CGO_ENABLED=0

# build_controller NAME: the static binary $DIR/NAME, and its config/ beside it
build_controller() {
  local name=$1 module=github.com/fluxcd/$1 src work date t0
  if [ -x "$DIR/bin/$name" ] && [ -d "$DIR/config/$name" ]; then log "gitops: $name $FLUX_VERSION: cached"; return 0; fi
  command -v go >/dev/null || die "go toolchain not found on PATH"
  t0=$(date +%s)
  log "gitops: $name $FLUX_VERSION: go build (cold: several minutes on 2 cores)"
  src=$(go mod download -json "$module@$FLUX_VERSION" | jq -r .Dir) && [ -d "$src" ] \
    || die "$module@$FLUX_VERSION not on the module proxy"
  date=$(go list -m -json "$module@$FLUX_VERSION" | jq -r .Time)
  work=$DIR/src/$name
  rm -rf "$work"; mkdir -p "$DIR/src" "$DIR/bin" "$DIR/config"
  cp -r "$src" "$work"; chmod -R u+w "$work"
  (
    cd "$work"
    go mod edit -dropreplace "$module/api"
    if [ "$name" = source-controller ]; then
      go mod edit -require "github.com/fluxcd/pkg/artifact@$ARTIFACT_VERSION"
    fi
    nice -n 10 go build -ldflags "-s -w" -o "$DIR/bin/$name.tmp" .
  ) || die "go build $module@$FLUX_VERSION failed"
  mv "$DIR/bin/$name.tmp" "$DIR/bin/$name"
  rm -rf "$DIR/config/$name"; cp -r "$work/config" "$DIR/config/$name"
  rm -rf "$work"
  log "gitops: $name built in $(( $(date +%s) - t0 ))s (module time $date)"
}

# image_key NAME EXTRA...: what an image is made of; a changed key rebuilds it
image_key() { { declare -f "$1"; shift; printf '%s\n' "$@"; } | sha256sum | cut -c1-12; }

image_current() { # IMAGE KEY
  [ -z "$REBUILD" ] && [ "$(docker image inspect -f '{{index .Config.Labels "kindlab.ci/gitops"}}' "$1" 2>/dev/null || true)" = "$2" ]
}

# replace_image IMAGE DIR: docker build DIR as IMAGE, dropping the image it replaces
replace_image() {
  local old; old=$(docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true)
  docker build -q -t "$1" "$2" >/dev/null || die "docker build $1 failed"
  if [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "$1")" ]; then
    docker rmi "$old" >/dev/null 2>&1 || true
  fi
}

controller_image() { # NAME
  local name=$1 image=kindlab-ci/flux-$1:$FLUX_VERSION key c
  have_image "$STATIC_BASE" || die "$STATIC_BASE missing: run build.sh first"
  key=$(image_key controller_image "$name" "$FLUX_VERSION" "$(docker image inspect -f '{{.Id}}' "$STATIC_BASE")")
  if image_current "$image" "$key" && [ -x "$DIR/bin/$name" ]; then log "gitops: image $image: current"; return 0; fi
  build_controller "$name"
  c=$(mktemp -d)
  cp "$DIR/bin/$name" "$c/$name"; chmod 0755 "$c/$name"
  # Flux's Deployments run as non-root with a read-only root: a numeric USER, /tmp from an emptyDir
  printf 'FROM %s\nCOPY %s /usr/local/bin/%s\nUSER 65534:65534\nENTRYPOINT ["/usr/local/bin/%s"]\nLABEL kindlab.ci/gitops=%s\n' \
    "$STATIC_BASE" "$name" "$name" "$name" "$key" > "$c/Dockerfile"
  replace_image "$image" "$c"
  rm -rf "$c"
  log "gitops: image $image"
}

# The Git server: Debian's git (its git-http-backend is Git's own smart-HTTP server) in a
# bookworm minbase rootfs, fronted by gitserver/main.go (Go standard library: net/http/cgi).
# Why not a pure-Go server: go-git's server-side HTTP backend exists only in v6
# pre-releases, and every maintained Go server (Gitea, Soft Serve, gitkit) shells out to
# git anyway; git-http-backend speaks every protocol version and thin pack a client sends.
git_server_image() {
  local key image d c t0
  key=$(image_key git_server_image "$DEBIAN_SUITE" "$(cat "$HERE/gitserver/main.go" "$HERE/gitserver/go.mod")")
  image=kindlab-ci/git-server:$key
  GIT_SERVER_IMAGE=$image
  if image_current "$image" "$key"; then log "gitops: image $image: current"; return 0; fi
  t0=$(date +%s)
  d=$CACHE/rootfs-git-$key
  if [ ! -s "$d/rootfs.tar" ]; then
    for f in "$CACHE"/rootfs-git-*; do [ "$f" = "$d" ] || rm_tree "$f"; done
    mkdir -p "$d"
    log "gitops: mmdebstrap $DEBIAN_SUITE rootfs with git"
    # shellcheck disable=SC2016  # the hook is expanded by mmdebstrap ($1 = the rootfs)
    nice -n 10 mmdebstrap --variant=minbase --aptopt='Apt::Install-Recommends "false"' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --format=tar --include=git \
      --customize-hook='chroot "$1" apt-get clean; rm -rf "$1"/var/lib/apt/lists/* "$1"/var/log/* "$1"/var/cache/debconf/*-old; mkdir -p "$1/srv/git"' \
      "$DEBIAN_SUITE" "$d/rootfs.tar.tmp" "$(debian_sources)" > "$d/mmdebstrap.log" 2>&1 \
      || { tail -20 "$d/mmdebstrap.log" >&2; die "mmdebstrap (git server rootfs) failed; log: $d/mmdebstrap.log"; }
    mv "$d/rootfs.tar.tmp" "$d/rootfs.tar"
  fi
  docker import "$d/rootfs.tar" "kindlab-ci/git-server-base:$key" >/dev/null || die "docker import (git server) failed"
  c=$(mktemp -d)
  ( cd "$HERE/gitserver" && nice -n 10 go build -ldflags "-s -w" -o "$c/gitserver" . ) || die "go build gitserver failed"
  printf 'FROM %s\nCOPY gitserver /usr/local/bin/gitserver\nENV GIT_PROJECT_ROOT=/srv/git LISTEN=:8080\nEXPOSE 8080\nVOLUME /srv/git\nENTRYPOINT ["/usr/local/bin/gitserver"]\nLABEL kindlab.ci/gitops=%s\n' \
    "kindlab-ci/git-server-base:$key" "$key" > "$c/Dockerfile"
  replace_image "$image" "$c"
  rm -rf "$c"
  docker rmi "kindlab-ci/git-server-base:$key" >/dev/null 2>&1 || true
  # older keys' images
  docker image ls --format '{{.Repository}}:{{.Tag}}' kindlab-ci/git-server | grep -vxF "$image" | xargs -r docker rmi >/dev/null 2>&1 || true
  log "gitops: image $image in $(( $(date +%s) - t0 ))s"
}

debian_sources() {
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then echo /etc/apt/sources.list.d/debian.sources
  else echo "deb $(debian_mirror) $DEBIAN_SUITE main"; fi
}

write_env() {
  local want
  want=$(printf 'KINDLAB_GITOPS_SOURCE_CONTROLLER_IMAGE=%s\nKINDLAB_GITOPS_KUSTOMIZE_CONTROLLER_IMAGE=%s\nKINDLAB_GITOPS_GIT_SERVER_IMAGE=%s\nKINDLAB_GITOPS_FLUX_CONFIG=%s\n' \
    "kindlab-ci/flux-source-controller:$FLUX_VERSION" "kindlab-ci/flux-kustomize-controller:$FLUX_VERSION" \
    "$GIT_SERVER_IMAGE" "$DIR/config")
  [ "$(cat "$CACHE/gitops.env" 2>/dev/null)" = "$want" ] && return 0
  echo "$want" > "$CACHE/gitops.env.tmp" && mv "$CACHE/gitops.env.tmp" "$CACHE/gitops.env"
  log "gitops: wrote $CACHE/gitops.env"
}

build() {
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.gitops.lock"
  flock -n 8 || { log "gitops: another gitops.sh is building; waiting"; flock 8; }
  local n
  for n in "${CONTROLLERS[@]}"; do controller_image "$n"; done
  git_server_image
  write_env
}

t0=$(date +%s%N)
case "${1:-build}" in
  build) build ;;
  controllers) for n in "${CONTROLLERS[@]}"; do build_controller "$n"; done ;;
  git-server) git_server_image ;;
  *) die "usage: gitops.sh [build | controllers | git-server]" ;;
esac
log "gitops: done in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
