#!/usr/bin/env bash
# Makes the container images a laptop would pull, locally, from Debian packages:
#   registry:3 (and registry:2)  <- Debian's docker-registry binary, FROM scratch
#   busybox:1.36                 <- Debian's busybox-static, FROM scratch
# An image is rebuilt only when the Debian package version it was made from changed
# (recorded in the label dev.kindlab.ci.source), so a warm run takes well under a second.
set -euo pipefail

log() { printf '[test-images] %s\n' "$*"; }

need_pkgs=()
for pkg in docker-registry busybox-static; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need_pkgs+=("$pkg")
done
if ((${#need_pkgs[@]})); then
  log "installing ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

pkg_version() { dpkg-query -W -f='${Version}' "$1"; }

# up_to_date IMAGE SOURCE: the image exists and was built from SOURCE.
up_to_date() {
  [ "$(docker image inspect -f '{{index .Config.Labels "dev.kindlab.ci.source"}}' "$1" 2>/dev/null)" = "$2" ]
}

build_registry() {
  local source
  source="docker-registry=$(pkg_version docker-registry)"
  if up_to_date registry:3 "$source" && up_to_date registry:2 "$source"; then
    log "registry:3 and registry:2 up to date ($source)"
    return
  fi
  local ctx
  ctx=$(mktemp -d)
  mkdir -p "$ctx"/rootfs/{bin,etc/docker/registry,var/lib/registry,tmp}
  chmod 1777 "$ctx/rootfs/tmp"
  cp /usr/bin/docker-registry "$ctx/rootfs/bin/registry"
  # Debian's build is dynamically linked against libc only.
  for lib in $(ldd /usr/bin/docker-registry | grep -oE '/[^ ]+'); do
    mkdir -p "$ctx/rootfs$(dirname "$lib")"
    cp -L "$lib" "$ctx/rootfs$lib"
  done
  # registry:2's own configuration: no auth, storage under /var/lib/registry, deletes allowed.
  cat >"$ctx/rootfs/etc/docker/registry/config.yml" <<'YAML'
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
YAML
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
VOLUME ["/var/lib/registry"]
EXPOSE 5000
LABEL dev.kindlab.ci.source="$source"
ENTRYPOINT ["/bin/registry"]
CMD ["serve", "/etc/docker/registry/config.yml"]
DOCKERFILE
  docker build -q -t registry:3 -t registry:2 "$ctx" >/dev/null
  rm -rf "$ctx"
  log "built registry:3 and registry:2 ($source)"
}

build_busybox() {
  local source
  source="busybox-static=$(pkg_version busybox-static)"
  if up_to_date busybox:1.36 "$source"; then
    log "busybox:1.36 up to date ($source)"
    return
  fi
  local ctx
  ctx=$(mktemp -d)
  mkdir -p "$ctx"/rootfs/{bin,etc,tmp,root,proc,sys,dev}
  chmod 1777 "$ctx/rootfs/tmp"
  cp /bin/busybox "$ctx/rootfs/bin/busybox"
  for applet in $("$ctx/rootfs/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$ctx/rootfs/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$ctx/rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$ctx/rootfs/etc/group"
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
ENV PATH=/bin
LABEL dev.kindlab.ci.source="$source"
CMD ["/bin/sh"]
DOCKERFILE
  docker build -q -t busybox:1.36 "$ctx" >/dev/null
  rm -rf "$ctx"
  log "built busybox:1.36 ($source)"
}

build_registry
build_busybox
