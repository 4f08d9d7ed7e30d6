#!/usr/bin/env bash
# Build an offline kind node image (Kubernetes v1.34.x) from package registries only:
# Go module proxy (kind, kubernetes, etcd, coredns) and Debian apt (rootfs, containerd,
# runc, CNI plugins, iptables). No container image is pulled.
#
#   bash .ci/offline-images/build.sh            # all stages (idempotent, resumable)
#   bash .ci/offline-images/build.sh k8s etcd   # only the named stages (debugging)
#
# Everything is cached by version under $KINDLAB_CI_CACHE (default /var/cache/kindlab-ci).
# On success it writes $KINDLAB_CI_CACHE/env (KINDLAB_CI_BIN, KINDLAB_TEST_NODE_IMAGE, ...).
# Knobs (env): K8S_VERSION, KIND_VERSION, NODE_IMAGE, KINDLAB_CI_CACHE,
#   KINDLAB_CI_REBUILD_IMAGES=1 (rebuild the docker images even when present). See README.md.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

K8S_VERSION=${K8S_VERSION:-v1.34.12}     # newest v1.34.x on the module proxy (v1.34.13+ not available)
KIND_VERSION=${KIND_VERSION:-v0.33.0}
DEBIAN_SUITE=bookworm                     # trixie's systemd refuses cgroup v1
CONTAINERD_SUITE=${CONTAINERD_SUITE:-trixie}   # containerd 1.7.24 .deb (needs only libc6 >= 2.34);
                                               # trixie's runc needs libc6 2.38, so runc is bookworm's 1.1.5
NODE_IMAGE=${NODE_IMAGE:-kindest/node:${K8S_VERSION}-offline}
REBUILD=${KINDLAB_CI_REBUILD_IMAGES:-}    # non-empty: rebuild every docker image even if present

K8S_MINOR=${K8S_VERSION#v}; K8S_MINOR=${K8S_MINOR%.*}        # 1.34
STAGING_VERSION=v0.${K8S_VERSION#v1.}                        # v0.34.12
K8S_DIR=$CACHE/k8s-$K8S_VERSION
KIND_DIR=$CACHE/kind-$KIND_VERSION

export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -mod=mod"

# ---------------------------------------------------------------------------
stage_host() {
  # docker engine (idempotent script owned by the repo), apt packages
  if ! docker info >/dev/null 2>&1; then
    log "docker engine not answering; running .ci/docker-engine.sh"
    bash "$HERE/../docker-engine.sh" || die "docker engine setup failed"
    docker info >/dev/null 2>&1 || die "docker still not answering after docker-engine.sh"
  fi
  command -v go >/dev/null || die "go toolchain not found on PATH"
  apt_ensure mmdebstrap jq curl docker-registry busybox-static ca-certificates
}

# ---------------------------------------------------------------------------
stage_kind() {
  if [ -x "$KIND_DIR/kind" ] && [ -d "$KIND_DIR/files" ]; then
    log "kind $KIND_VERSION: cached"; return 0
  fi
  log "kind $KIND_VERSION: go install"
  mkdir -p "$KIND_DIR"
  GOBIN="$KIND_DIR/.gobin" nice -n 10 go install "sigs.k8s.io/kind@$KIND_VERSION" \
    || die "go install sigs.k8s.io/kind@$KIND_VERSION failed"
  local dir
  dir=$(go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | jq -r .Dir)
  [ -d "$dir/images/base/files" ] || die "kind module has no images/base/files ($dir)"
  rm -rf "$KIND_DIR/files.tmp"
  cp -r "$dir/images/base/files" "$KIND_DIR/files.tmp"
  chmod -R u+w "$KIND_DIR/files.tmp"
  # module zips drop exec bits: restore them for scripts
  find "$KIND_DIR/files.tmp" -type f \( -path '*/bin/*' -o -path '*/sbin/*' \) -exec chmod 0755 {} +
  mv "$KIND_DIR/.gobin/kind" "$KIND_DIR/kind"
  rmdir "$KIND_DIR/.gobin"
  mv "$KIND_DIR/files.tmp" "$KIND_DIR/files"
  log "kind: $("$KIND_DIR/kind" version)"
}

# ---------------------------------------------------------------------------
K8S_CMDS="kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy"

stage_k8s() {
  if [ -f "$K8S_DIR/bin/.done" ]; then
    log "kubernetes $K8S_VERSION binaries: cached"; return 0
  fi
  local w="$K8S_DIR/wrapper" info gomod date
  mkdir -p "$w"
  log "kubernetes $K8S_VERSION: downloading module, generating wrapper module"
  info=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION") || die "k8s.io/kubernetes@$K8S_VERSION not on the module proxy"
  gomod=$(jq -r .GoMod <<<"$info")
  date=$(jq -r .Time "$(jq -r .Info <<<"$info")")
  {
    echo "module kindlab.local/k8s-build"
    echo
    grep -E '^(go|godebug) ' "$gomod"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    # every staging module k/k maps to ./staging/src/...: use its published v0.x.y
    awk '$2=="=>" && $3 ~ /^\.\/staging\// {print "\t" $1 " => " $1 " '"$STAGING_VERSION"'"}' "$gomod"
    echo ")"
  } > "$w/go.mod"
  local n; n=$(grep -c " => .* $STAGING_VERSION" "$w/go.mod")
  [ "$n" -gt 20 ] || die "found only $n staging replaces in k/k go.mod"
  log "kubernetes: $n staging modules replaced with $STAGING_VERSION; compiling (long: ~20-35 min cold on 2 cores)"
  local pkgs=() c x=""
  for c in $K8S_CMDS; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    x+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=${K8S_MINOR#1.}"
    x+=" -X $p.gitTreeState=clean -X $p.buildDate=$date -X $p.gitCommit="
  done
  rm -rf "$K8S_DIR/bin.tmp"; mkdir -p "$K8S_DIR/bin.tmp"
  (cd "$w" && nice -n 10 go build -trimpath -ldflags "-s -w$x" -o "$K8S_DIR/bin.tmp/" "${pkgs[@]}") \
    || die "go build of kubernetes $K8S_VERSION failed (if the toolchain is the cause, retry with GOTOOLCHAIN=go1.25.x)"
  local v; v=$("$K8S_DIR/bin.tmp/kubeadm" version -o short)
  [ "$v" = "$K8S_VERSION" ] || die "kubeadm reports version '$v', expected $K8S_VERSION"
  rm -rf "${K8S_DIR:?}/bin"; mv "$K8S_DIR/bin.tmp" "$K8S_DIR/bin"; touch "$K8S_DIR/bin/.done"
  log "kubernetes binaries: $(cd "$K8S_DIR/bin" && du -sh . | cut -f1) in $K8S_DIR/bin"
}


# k8s_images: the image list kubeadm itself asks for (works offline), cached next to the binaries
k8s_images() {
  local f="$K8S_DIR/images.txt"
  if [ ! -s "$f" ]; then
    "$K8S_DIR/bin/kubeadm" config images list --kubernetes-version "$K8S_VERSION" > "$f.tmp" \
      || die "kubeadm config images list failed"
    mv "$f.tmp" "$f"
  fi
  cat "$f"
}
# image_ref NAME: the full reference kubeadm lists for NAME (kube-apiserver, etcd, pause, coredns, ...)
image_ref() {
  local r; r=$(k8s_images | awk -v n="$1" '{split($0,a,":"); k=a[1]; sub(/.*\//,"",k)} k==n {print; exit}')
  [ -n "$r" ] || die "kubeadm lists no '$1' image"
  echo "$r"
}

# ---------------------------------------------------------------------------
CRICTL_VERSION=${CRICTL_VERSION:-v1.34.0}   # crictl is only needed by `kind load` / `kind export logs`

stage_crictl() {
  local d="$CACHE/crictl-$CRICTL_VERSION"
  [ -x "$d/crictl" ] && { log "crictl $CRICTL_VERSION: cached"; return 0; }
  log "crictl $CRICTL_VERSION: go install"
  mkdir -p "$d"
  GOBIN="$d/.gobin" nice -n 10 go install -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" \
    "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" || die "go install crictl failed"
  mv "$d/.gobin/crictl" "$d/crictl"; rmdir "$d/.gobin"
}

# ---------------------------------------------------------------------------
etcd_version() { local t; t=$(image_ref etcd); t=${t##*:}; echo "v${t%-*}"; }   # 3.6.5-0 -> v3.6.5

stage_etcd() {
  local v d w info gomod
  v=$(etcd_version); d="$CACHE/etcd-$v"; w="$d/wrapper"
  [ -x "$d/etcd" ] && { log "etcd $v: cached"; return 0; }
  log "etcd $v (tag kubeadm lists: $(image_ref etcd)): wrapper module + go build"
  mkdir -p "$w"
  info=$(go mod download -json "go.etcd.io/etcd/server/v3@$v") || die "go.etcd.io/etcd/server/v3@$v not on the module proxy"
  gomod=$(jq -r .GoMod <<<"$info")
  {
    echo "module kindlab.local/etcd-build"
    echo
    grep -E '^go ' "$gomod"
    echo
    echo "require go.etcd.io/etcd/server/v3 $v"
    echo
    echo "replace ("
    # server's replaces point at sibling dirs of the etcd repo: use the published modules
    awk '$2=="=>" && $3 ~ /^\.\.\// {print "\t" $1 " => " $1 " '"$v"'"}' "$gomod"
    echo ")"
  } > "$w/go.mod"
  (cd "$w" && nice -n 10 go build -trimpath -ldflags "-s -w" -o "$d/etcd.tmp" go.etcd.io/etcd/server/v3) \
    || die "go build etcd $v failed"
  # (no `cmd | grep -q` under pipefail: grep's early exit can SIGPIPE the writer)
  grep -q "etcd Version: ${v#v}" <<<"$("$d/etcd.tmp" --version)" || die "built etcd does not report ${v#v}"
  mv "$d/etcd.tmp" "$d/etcd"
}

# ---------------------------------------------------------------------------
coredns_version() { local t; t=$(image_ref coredns); echo "${t##*:}"; }

stage_coredns() {
  local v d; v=$(coredns_version); d="$CACHE/coredns-$v"
  [ -x "$d/coredns" ] && { log "coredns $v: cached"; return 0; }
  log "coredns $v: go install"
  mkdir -p "$d"
  GOBIN="$d/.gobin" nice -n 10 go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$v" \
    || die "go install github.com/coredns/coredns@$v failed"
  mv "$d/.gobin/coredns" "$d/coredns"; rmdir "$d/.gobin"
}

# ---------------------------------------------------------------------------
pause_dir() { echo "$CACHE/pause-$(cat "$HERE/pause/go.mod" "$HERE/pause/main.go" | sha256sum | cut -c1-12)"; }

stage_pause() {
  local d; d=$(pause_dir)
  [ -x "$d/pause" ] && { log "pause: cached"; return 0; }
  log "pause: go build (our own program, $HERE/pause)"
  mkdir -p "$d"
  (cd "$HERE/pause" && go build -trimpath -ldflags "-s -w" -o "$d/pause.tmp" .) || die "go build pause failed"
  mv "$d/pause.tmp" "$d/pause"
}

# ---------------------------------------------------------------------------
# Debian root filesystems (mmdebstrap, host's own apt sources). Keyed by a hash of the
# function that builds them, so editing the recipe rebuilds them.
recipe_key() { { declare -f "$@"; echo "$KIND_VERSION $CONTAINERD_SUITE $DEBIAN_SUITE"; } | sha256sum | cut -c1-12; }

MMDEBSTRAP_OPTS=(
  --variant=minbase --aptopt='Apt::Install-Recommends "false"'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/info/*'
)

debian_sources() {
  # a sources list for mmdebstrap: the host's own deb822 file when it exists, else the mirror URI
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then echo /etc/apt/sources.list.d/debian.sources
  else echo "deb $(debian_mirror) $DEBIAN_SUITE main"; fi
}

# the containerd .deb from $CONTAINERD_SUITE, downloaded with a private apt state dir
# (the host's apt configuration is not touched)
fetch_runtime_debs() {
  local a="$CACHE/apt-$CONTAINERD_SUITE" mirror out="$CACHE/apt-$CONTAINERD_SUITE/debs"
  if compgen -G "$out/containerd_*.deb" >/dev/null; then return 0; fi
  mirror=$(debian_mirror)
  mkdir -p "$a/lists/partial" "$a/archives/partial" "$a/sources.list.d" "$out"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $CONTAINERD_SUITE main" > "$a/sources.list"
  local o=(-o "Dir::Etc::SourceList=$a/sources.list" -o "Dir::Etc::SourceParts=$a/sources.list.d"
           -o "Dir::State::Lists=$a/lists" -o "Dir::Cache::Archives=$a/archives"
           -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "APT::Sandbox::User=root")
  log "downloading the containerd .deb from $CONTAINERD_SUITE"
  apt-get "${o[@]}" update -qq || return 1
  (cd "$out" && apt-get "${o[@]}" download containerd) || return 1
}

NODE_PACKAGES="systemd,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,e2fsprogs,bash,ca-certificates,curl,jq,procps,containernetworking-plugins,tar,gzip,findutils"

stage_rootfs_node() {
  local key; key=$(recipe_key stage_rootfs_node node_customize fetch_runtime_debs)
  NODE_BASE_IMAGE="kindlab-ci/node-base:$key"
  if [ -z "$REBUILD" ] && have_image "$NODE_BASE_IMAGE"; then log "node base image $NODE_BASE_IMAGE: present"; return 0; fi
  local d="$CACHE/rootfs-node-$key"
  if [ ! -s "$d/rootfs.tar" ]; then
    local inc=() f
    # other (stale) node rootfs builds are no longer needed
    for f in "$CACHE"/rootfs-node-*; do [ "$f" = "$d" ] || rm_tree "$f"; done
    if fetch_runtime_debs; then
      for f in "$CACHE/apt-$CONTAINERD_SUITE"/debs/containerd_*.deb; do inc+=("--include=$f"); done
      inc+=("--include=runc")
    else
      log "WARNING: $CONTAINERD_SUITE containerd .deb unavailable; falling back to $DEBIAN_SUITE's containerd 1.6"
      inc+=("--include=containerd" "--include=runc")
    fi
    rm_tree "$d/rootfs"; mkdir -p "$d/rootfs"
    log "mmdebstrap $DEBIAN_SUITE node rootfs"
    nice -n 10 mmdebstrap "${MMDEBSTRAP_OPTS[@]}" --include="$NODE_PACKAGES" "${inc[@]}" \
      --hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount \
      "$DEBIAN_SUITE" "$d/rootfs" "$(debian_sources)" > "$d/mmdebstrap.log" 2>&1 \
      || { tail -20 "$d/mmdebstrap.log" >&2; die "mmdebstrap (node rootfs) failed; log: $d/mmdebstrap.log"; }
    node_customize "$d/rootfs"
    tar -C "$d/rootfs" --numeric-owner -cf "$d/rootfs.tar.tmp" . && mv "$d/rootfs.tar.tmp" "$d/rootfs.tar"
    rm_tree "$d/rootfs"
  fi
  log "importing node base image $NODE_BASE_IMAGE"
  docker import -c 'ENV container=docker' -c 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
    "$d/rootfs.tar" "$NODE_BASE_IMAGE.raw" >/dev/null || die "docker import failed"
  # neither docker import nor commit accept STOPSIGNAL: add it with a tiny Dockerfile
  printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\n' "$NODE_BASE_IMAGE.raw" \
    | docker build -q -t "$NODE_BASE_IMAGE" - >/dev/null || die "docker build (STOPSIGNAL) failed"
  docker rmi "$NODE_BASE_IMAGE.raw" >/dev/null
  prune_tags kindlab-ci/node-base "$NODE_BASE_IMAGE"
}

# prune_tags REPO KEEP: remove the other (stale) tags of one of our own image repositories
prune_tags() {
  docker image ls --format '{{.Repository}}:{{.Tag}}' "$1" | grep -vxF "$2" | xargs -r docker rmi >/dev/null 2>&1 || true
}

# node_customize ROOTFS: what kind's images/base/Dockerfile does, on a bookworm rootfs
node_customize() {
  local r=$1 f="$KIND_DIR/files"
  log "customizing node rootfs with kind $KIND_VERSION node files"
  cp -a "$f/usr/local/bin/." "$r/usr/local/bin/"
  mkdir -p "$r/kind/bin" "$r/LICENSES"
  cp -a "$f/kind/." "$r/kind/"
  cp -a "$f/LICENSES/." "$r/LICENSES/"
  cp -a "$f/etc/." "$r/etc/"
  chmod 0755 "$r/kind" "$r/kind/bin" "$r"/kind/bin/* "$r"/usr/local/bin/*
  # Debian installs containerd in /usr/bin; kind's unit runs /usr/local/bin/containerd
  ln -sf /usr/bin/containerd "$r/usr/local/bin/containerd"
  install -m 0755 "$CACHE/crictl-$CRICTL_VERSION/crictl" "$r/usr/local/bin/crictl"
  # CNI plugins: Debian ships them in /usr/lib/cni; also expose them at the upstream default
  mkdir -p "$r/opt/cni" "$r/etc/cni/net.d"; ln -sfn /usr/lib/cni "$r/opt/cni/bin"
  cat > "$r/etc/cni/net.d/10-kindlab-ptp.conflist" <<'JSON'
{
  "cniVersion": "0.4.0",
  "name": "kindlab-ptp",
  "plugins": [
    {
      "type": "ptp",
      "ipMasq": true,
      "mtu": 1500,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "10.244.0.0/24" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
JSON
  # containerd: no oom_score_adj below our own (this VM has no CAP_SYS_RESOURCE); the
  # sandbox_image is set at node assembly (it depends on the Kubernetes version)
  local cfg="$r/etc/containerd/config.toml"
  sed -i -e 's|^\([[:space:]]*restrict_oom_score_adj = \).*|\1true|' "$cfg"
  grep -q 'restrict_oom_score_adj = true' "$cfg" || die "could not patch $cfg"
  chroot "$r" ctr oci spec \
    | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
    | jq 'del(.process.rlimits)' > "$r/etc/containerd/cri-base.json"
  jq -e .hooks "$r/etc/containerd/cri-base.json" >/dev/null || die "cri-base.json generation failed"
  # systemd trimming, as kind's Dockerfile
  find "$r/lib/systemd/system/sysinit.target.wants/" -name "systemd-tmpfiles-setup.service" -delete
  rm -f "$r"/lib/systemd/system/multi-user.target.wants/* "$r"/etc/systemd/system/*.wants/* \
        "$r"/lib/systemd/system/local-fs.target.wants/* "$r"/lib/systemd/system/sockets.target.wants/*udev* \
        "$r"/lib/systemd/system/sockets.target.wants/*initctl* "$r"/lib/systemd/system/basic.target.wants/*
  echo "ReadKMsg=no" >> "$r/etc/systemd/journald.conf"
  ln -sf /usr/lib/systemd/systemd "$r/sbin/init"
  chroot "$r" systemctl enable kubelet.service containerd.service undo-mount-hacks.service >/dev/null 2>&1 \
    || die "systemctl enable in the node rootfs failed"
  chroot "$r" systemctl mask systemd-binfmt.service >/dev/null 2>&1 || true
  mkdir -p "$r/etc/kubernetes/manifests" "$r/kind/manifests"
  cat > "$r/kind/manifests/default-cni.yaml" <<'YAML'
# kindlab offline node image: pod networking is a static CNI config baked into the node
# (/etc/cni/net.d/10-kindlab-ptp.conflist, Debian containernetworking-plugins), so kind's
# default CNI step only needs to create something harmless.
apiVersion: v1
kind: ConfigMap
metadata:
  name: kindlab-offline-cni
  namespace: kube-system
data:
  cni: "static ptp + host-local 10.244.0.0/24 + portmap (/etc/cni/net.d)"
YAML
  # slim down
  chroot "$r" apt-get clean
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/log/* "$r"/var/cache/debconf/*-old "$r"/tmp/* "$r"/var/tmp/*
  : > "$r/etc/machine-id"
}

# ---------------------------------------------------------------------------
# Component images. A tiny FROM-scratch base for the static binaries; a Debian minbase
# (iptables, nftables, conntrack) for kube-proxy.
STATIC_BASE=kindlab-ci/static-base:1

build_static_base() {
  if [ -z "$REBUILD" ] && have_image "$STATIC_BASE"; then return 0; fi
  local c; c=$(mktemp -d -p "$WORK")
  mkdir -p "$c/rootfs/etc" "$c/rootfs/tmp" "$c/rootfs/var/run"; chmod 1777 "$c/rootfs/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$c/rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\nnonroot:x:65532:\n' > "$c/rootfs/etc/group"
  echo 'hosts: files dns' > "$c/rootfs/etc/nsswitch.conf"
  cp /etc/ssl/certs/ca-certificates.crt "$c/rootfs/etc/ca-certificates.crt" 2>/dev/null || true
  mkdir -p "$c/rootfs/etc/ssl/certs"
  [ -f "$c/rootfs/etc/ca-certificates.crt" ] && mv "$c/rootfs/etc/ca-certificates.crt" "$c/rootfs/etc/ssl/certs/"
  printf 'FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/bin:/usr/bin:/bin\n' > "$c/Dockerfile"
  docker build -q -t "$STATIC_BASE" "$c" >/dev/null || die "docker build $STATIC_BASE failed"
  rm -rf "$c"
}

build_proxy_base() {
  local key; key=$( { declare -f build_proxy_base; cat "$HERE/iptables-wrapper"; echo "$DEBIAN_SUITE"; } | sha256sum | cut -c1-12)
  PROXY_BASE="kindlab-ci/proxy-base:$key"
  if [ -z "$REBUILD" ] && have_image "$PROXY_BASE"; then return 0; fi
  local d="$CACHE/rootfs-proxy-$key" f
  if [ ! -s "$d/rootfs.tar" ]; then
    for f in "$CACHE"/rootfs-proxy-*; do [ "$f" = "$d" ] || rm_tree "$f"; done
    mkdir -p "$d"
    log "mmdebstrap $DEBIAN_SUITE kube-proxy rootfs"
    # shellcheck disable=SC2016  # the hooks are expanded by mmdebstrap ($1 = the rootfs)
    nice -n 10 mmdebstrap "${MMDEBSTRAP_OPTS[@]}" --format=tar --include=iptables,nftables,conntrack,kmod,ipset \
      --customize-hook='chroot "$1" apt-get clean; rm -rf "$1"/var/lib/apt/lists/* "$1"/var/log/* "$1"/var/cache/debconf/*-old' \
      --customize-hook='upload '"$HERE/iptables-wrapper"' /usr/sbin/iptables-wrapper' \
      --customize-hook='chmod 0755 "$1/usr/sbin/iptables-wrapper"' \
      --customize-hook='for t in iptables ip6tables; do for s in "" -save -restore; do ln -sf iptables-wrapper "$1/usr/sbin/$t$s"; done; done' \
      "$DEBIAN_SUITE" "$d/rootfs.tar.tmp" "$(debian_sources)" > "$d/mmdebstrap.log" 2>&1 \
      || { tail -20 "$d/mmdebstrap.log" >&2; die "mmdebstrap (kube-proxy rootfs) failed; log: $d/mmdebstrap.log"; }
    mv "$d/rootfs.tar.tmp" "$d/rootfs.tar"
  fi
  docker import "$d/rootfs.tar" "$PROXY_BASE" >/dev/null || die "docker import $PROXY_BASE failed"
  prune_tags kindlab-ci/proxy-base "$PROXY_BASE"
}

stage_proxy_base() { build_proxy_base; }

# build_image REF BASE CONTEXT_FILE:DEST... -- ENTRYPOINT_JSON
build_image() {
  local ref=$1 base=$2; shift 2
  local c; c=$(mktemp -d -p "$WORK")
  { echo "FROM $base"
    while [ "$1" != "--" ]; do
      local src=${1%%:*} dst=${1#*:}
      cp "$src" "$c/$(basename "$dst")"; chmod 0755 "$c/$(basename "$dst")"
      echo "COPY $(basename "$dst") $dst"
      shift
    done
    shift
    [ -n "${1:-}" ] && echo "ENTRYPOINT $1"
    echo "LABEL kindlab.ci/recipe=$RECIPE"
  } > "$c/Dockerfile"
  local old; old=$(docker image inspect -f '{{.Id}}' "$ref" 2>/dev/null || true)
  docker build -q -t "$ref" "$c" >/dev/null || die "docker build $ref failed"
  if [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "$ref")" ]; then
    docker rmi "$old" >/dev/null 2>&1 || true
  fi
}

# image_current REF: present and built by this recipe
image_current() {
  [ -z "$REBUILD" ] && [ "$(docker image inspect -f '{{index .Config.Labels "kindlab.ci/recipe"}}' "$1" 2>/dev/null)" = "$RECIPE" ]
}

stage_images() {
  local b="$K8S_DIR/bin" ref c n=0
  build_static_base
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    ref=$(image_ref "$c"); image_current "$ref" && continue
    build_image "$ref" "$STATIC_BASE" "$b/$c:/usr/local/bin/$c" -- ""; n=$((n+1))
  done
  ref=$(image_ref kube-proxy)
  if ! image_current "$ref"; then
    [ -n "${PROXY_BASE:-}" ] || build_proxy_base
    build_image "$ref" "$PROXY_BASE" "$b/kube-proxy:/usr/local/bin/kube-proxy" -- ""; n=$((n+1))
  fi
  ref=$(image_ref etcd)
  image_current "$ref" || { build_image "$ref" "$STATIC_BASE" "$CACHE/etcd-$(etcd_version)/etcd:/usr/local/bin/etcd" -- ""; n=$((n+1)); }
  ref=$(image_ref coredns)
  image_current "$ref" || { build_image "$ref" "$STATIC_BASE" "$CACHE/coredns-$(coredns_version)/coredns:/coredns" -- '["/coredns"]'; n=$((n+1)); }
  ref=$(image_ref pause)
  image_current "$ref" || { build_image "$ref" scratch "$(pause_dir)/pause:/pause" -- '["/pause"]'; n=$((n+1)); }
  log "component images: $n built, $(( $(k8s_images | wc -l) - n )) already current"
}

# ---------------------------------------------------------------------------
stage_node() {
  [ -n "${NODE_BASE_IMAGE:-}" ] || stage_rootfs_node
  local key; key=$(echo "$RECIPE $(docker image inspect -f '{{.Id}}' "$NODE_BASE_IMAGE") $(k8s_images | xargs docker image inspect -f '{{.Id}}')" | sha256sum | cut -c1-12)
  local old; old=$(docker image inspect -f '{{.Id}}' "$NODE_IMAGE" 2>/dev/null || true)
  if [ -z "$REBUILD" ] && [ "$(docker image inspect -f '{{index .Config.Labels "kindlab.ci/node"}}' "$NODE_IMAGE" 2>/dev/null)" = "$key" ]; then
    log "node image $NODE_IMAGE: current"; return 0
  fi
  log "assembling node image $NODE_IMAGE from $NODE_BASE_IMAGE"
  local name="kindlab-ci-assemble-$$" tmp; tmp=$(mktemp -d -p "$WORK")
  ASSEMBLE_CONTAINER=$name   # removed by the EXIT trap, even on failure
  # containers of an earlier killed run (the build lock means none can be live)
  docker ps -aq --filter name=kindlab-ci-assemble- | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker run -d --name "$name" --privileged --tmpfs /run --tmpfs /tmp --entrypoint=sleep \
    "$NODE_BASE_IMAGE" infinity >/dev/null || die "could not start the assembly container"
  mkdir -p "$tmp/bin"
  cp "$K8S_DIR/bin/kubeadm" "$K8S_DIR/bin/kubelet" "$K8S_DIR/bin/kubectl" "$tmp/bin/"
  docker cp "$tmp/bin/." "$name:/usr/bin/" >/dev/null
  echo "$K8S_VERSION" > "$tmp/version"
  docker cp "$tmp/version" "$name:/kind/version" >/dev/null
  docker exec "$name" sh -c 'chmod 0755 /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl; chmod 0644 /kind/version'
  # containerd must find its sandbox (pause) image preloaded under exactly this name
  local pause; pause=$(image_ref pause)
  docker exec "$name" sed -i "s|^\([[:space:]]*sandbox_image = \).*|\1\"$pause\"|" /etc/containerd/config.toml
  docker exec "$name" grep -q "sandbox_image = \"$pause\"" /etc/containerd/config.toml \
    || die "could not set sandbox_image in the node's containerd config"
  docker exec -d "$name" sh -c 'containerd > /tmp/containerd.log 2>&1'
  for _ in $(seq 1 100); do
    docker exec "$name" ctr version >/dev/null 2>&1 && break; sleep 0.2
  done
  docker exec "$name" ctr version >/dev/null 2>&1 || { docker exec "$name" cat /tmp/containerd.log >&2; die "containerd did not start in the assembly container"; }
  local ref
  for ref in $(k8s_images); do
    docker save "$ref" | docker exec -i "$name" ctr -n k8s.io images import \
      --all-platforms --no-unpack --digests - >/dev/null || die "ctr import of $ref failed"
    # ctr 1.7 has no import --label: pin afterwards, so the kubelet's image GC keeps them
    docker exec "$name" ctr -n k8s.io images label "$ref" io.cri-containerd.pinned=pinned >/dev/null \
      || die "could not pin $ref"
  done
  local have; have=$(docker exec "$name" ctr -n k8s.io images ls -q)
  for ref in $(k8s_images); do grep -qx "$ref" <<<"$have" || die "$ref missing from the node's containerd"; done
  docker exec "$name" sh -c 'pkill containerd; while pgrep -x containerd >/dev/null; do sleep 0.1; done; rm -rf /var/lib/containerd/tmpmounts/*' || true
  docker commit -c 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' -c 'CMD []' \
    -c "LABEL kindlab.ci/node=$key" -c 'ENV container=docker' \
    "$name" "$NODE_IMAGE" >/dev/null || die "docker commit failed"
  [ "$(docker image inspect -f '{{.Config.StopSignal}}' "$NODE_IMAGE")" = "SIGRTMIN+3" ] \
    || die "node image lost its STOPSIGNAL"
  docker rm -f "$name" >/dev/null; ASSEMBLE_CONTAINER=""
  # drop the previous build of this tag (fails harmlessly while a cluster still uses it)
  if [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "$NODE_IMAGE")" ]; then
    docker rmi "$old" >/dev/null 2>&1 || true
  fi
  log "node image $NODE_IMAGE: $(docker image inspect -f '{{.Size}}' "$NODE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
}

# ---------------------------------------------------------------------------
# Local stand-ins for registry:2/registry:3 and busybox:1.36 (used by smoke.sh and kindlab's
# tests): one recipe for them, in .ci/test-images.sh.
REGISTRY_IMAGE=registry:2
BUSYBOX_IMAGE=busybox:1.36

stage_aux() {
  bash "$HERE/../test-images.sh"
}

# ---------------------------------------------------------------------------
stage_env() {
  local bin="$CACHE/bin"
  mkdir -p "$bin"
  local src
  for src in "$KIND_DIR/kind" "$K8S_DIR/bin/kubectl"; do
    cmp -s "$src" "$bin/${src##*/}" && continue
    install -m 0755 "$src" "$bin/${src##*/}.tmp" && mv "$bin/${src##*/}.tmp" "$bin/${src##*/}"
  done
  cat > "$CACHE/env.tmp" <<ENV
KINDLAB_CI_BIN=$bin
KINDLAB_CI_CACHE=$CACHE
KINDLAB_TEST_NODE_IMAGE=$NODE_IMAGE
KINDLAB_CI_K8S_VERSION=$K8S_VERSION
KINDLAB_CI_KIND_VERSION=$KIND_VERSION
KINDLAB_CI_REGISTRY_IMAGE=$REGISTRY_IMAGE
KINDLAB_CI_BUSYBOX_IMAGE=$BUSYBOX_IMAGE
ENV
  mv "$CACHE/env.tmp" "$CACHE/env"
  log "wrote $CACHE/env"
}

# ---------------------------------------------------------------------------
main() {
  local stages=("$@")
  [ ${#stages[@]} -gt 0 ] || stages=(host kind k8s crictl etcd coredns pause rootfs_node proxy_base images node aux env)
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.build.lock"
  flock -n 9 || { log "another build.sh holds $CACHE/.build.lock; waiting"; flock 9; }
  RECIPE=$( { cat "$HERE/build.sh" "$HERE/lib.sh" "$HERE/iptables-wrapper"; echo "$K8S_VERSION"; } | sha256sum | cut -c1-12)
  local s t0 all0; all0=$(date +%s)
  log "start: kubernetes $K8S_VERSION, kind $KIND_VERSION, cache $CACHE, stages: ${stages[*]}"
  for s in "${stages[@]}"; do
    declare -F "stage_$s" >/dev/null || die "unknown stage '$s'"
    t0=$(date +%s)
    "stage_$s"
    log "stage $s: $(( $(date +%s) - t0 ))s"
  done
  log "done in $(( $(date +%s) - all0 ))s"
}

WORK=$(mktemp -d)
ASSEMBLE_CONTAINER=""
cleanup() {
  [ -n "$ASSEMBLE_CONTAINER" ] && docker rm -f "$ASSEMBLE_CONTAINER" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'die "failed at line $LINENO: $BASH_COMMAND"' ERR
main "$@"
