#!/usr/bin/env bash
# The lab's old shell-script way of doing what `kindlab up` does, one step after the other:
# kind's documented local-registry script (https://kind.sigs.k8s.io/docs/user/local-registry/),
# then `docker build` + `docker push`, `kubectl apply -k` and `kubectl rollout status`.
# It is the baseline of `make bench` (bench/run.sh); it never edits the workspace.
#
#   bash bench/lab-scripts.sh [up|down] [--workspace DIR] [--cluster NAME]
#                             [--registry-name NAME] [--registry-port PORT] [--node-image IMAGE]
#                             [--via script|ctlptl]
#
# --via ctlptl is the peer tool's way (bench's "ctlptl" side): `ctlptl apply` of a Registry and
# a kind Cluster (ctlptl connects the registry to the kind network, writes hosts.toml on the
# nodes and the local-registry-hosting ConfigMap itself), then the same build, push, apply and
# rollout as the script. Needs CTLPTL (the binary; bench/build-ctlptl.sh builds it).
#
# Each step prints `==> <epoch> <what>` when it starts and `phase <name> <start> <end>` (epoch
# seconds) when it ends, for bench/run.sh's picture of where the time goes.
#
# Environment (flags win): WORKSPACE (.), CLUSTER_NAME (kind), REG_NAME (kind-registry),
# REG_PORT (5001), NODE_IMAGE (kind's default when empty), APP (orders-api),
# APP_DIR (apps/$APP), OVERLAY (deploy/overlays/dev), NAMESPACE (dev), ROLLOUT_TIMEOUT (300s).
#
# Re-running `up` repeats every step; each one is idempotent where kind's script makes it so
# (registry and network connect are checked first). `kind create cluster` is skipped when the
# cluster already exists, so a re-run repairs instead of failing.
set -o errexit -o nounset -o pipefail

action=up
workspace=${WORKSPACE:-.}
cluster=${CLUSTER_NAME:-kind}
reg_name=${REG_NAME:-kind-registry}
reg_port=${REG_PORT:-5001}
node_image=${NODE_IMAGE:-}
via=script

usage() {
  sed -n '7,9p' "$0" | sed 's/^# *//' >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    up | down) action=$1 ;;
    --workspace) workspace=${2:?--workspace needs a value}; shift ;;
    --cluster) cluster=${2:?--cluster needs a value}; shift ;;
    --registry-name) reg_name=${2:?--registry-name needs a value}; shift ;;
    --registry-port) reg_port=${2:?--registry-port needs a value}; shift ;;
    --node-image) node_image=${2?--node-image needs a value}; shift ;;
    --via) via=${2:?--via needs a value}; shift ;;
    -h | --help) usage ;;
    *) echo "lab-scripts.sh: unknown argument: $1" >&2; usage ;;
  esac
  shift
done

app=${APP:-orders-api}
app_dir=${APP_DIR:-apps/$app}
overlay=${OVERLAY:-deploy/overlays/dev}
namespace=${NAMESPACE:-dev}
rollout_timeout=${ROLLOUT_TIMEOUT:-300s}
context="kind-${cluster}"

case "$via" in script | ctlptl) ;; *) echo "lab-scripts.sh: --via is script or ctlptl, not $via" >&2; usage ;; esac

# Each step stamped with the wall clock (bash 5's EPOCHREALTIME, no fork) for the bench logs:
# `step PHASE what...` ends the phase before it (a `phase NAME START END` line) and starts PHASE.
phase_name="" phase_start=""
step() {
  local now=${EPOCHREALTIME:-}
  if [ -n "$phase_name" ]; then
    printf 'phase %s %s %s\n' "$phase_name" "$phase_start" "$now" >&2
  fi
  phase_name=$1 phase_start=$now
  shift
  printf '==> %s %s\n' "$now" "$*" >&2
}

if [ "$action" = down ]; then
  step delete "delete cluster ${cluster}"
  if kind get clusters 2>/dev/null | grep -qx "${cluster}"; then
    kind delete cluster --name "${cluster}"
  fi
  step delete "delete registry ${reg_name}"
  if docker inspect "${reg_name}" >/dev/null 2>&1; then
    docker rm -f -v "${reg_name}" >/dev/null
  fi
  exit 0
fi

cd "${workspace}"

if [ "$via" = ctlptl ]; then
  ctlptl=${CTLPTL:?CTLPTL must name the ctlptl binary (bench/build-ctlptl.sh builds it)}
  # ctlptl's docker client is newer than some engines; pin the API version they all speak.
  export DOCKER_API_VERSION=${DOCKER_API_VERSION:-1.41}
  # Registry first, then the cluster that uses it: two applies, so each gets its phase line.
  step registry "ctlptl apply: Registry ${reg_name} on 127.0.0.1:${reg_port}"
  "${ctlptl}" apply -f - <<EOF
apiVersion: ctlptl.dev/v1alpha1
kind: Registry
name: ${reg_name}
port: ${reg_port}
image: registry:3
EOF
  step cluster "ctlptl apply: kind Cluster kind-${cluster} with registry ${reg_name}"
  node_yaml=""
  if [ -n "${node_image}" ]; then
    node_yaml="kindV1Alpha4Cluster:
  nodes:
  - role: control-plane
    image: ${node_image}"
  fi
  "${ctlptl}" apply -f - <<EOF
apiVersion: ctlptl.dev/v1alpha1
kind: Cluster
product: kind
name: kind-${cluster}
registry: ${reg_name}
${node_yaml}
EOF
else # the script: kind's documented steps 1-5

# 1. Create the registry container unless it already exists (kind's script, verbatim logic).
step registry "registry ${reg_name} on 127.0.0.1:${reg_port}"
if [ "$(docker inspect -f '{{.State.Running}}' "${reg_name}" 2>/dev/null || true)" != 'true' ]; then
  docker run \
    -d --restart=always -p "127.0.0.1:${reg_port}:5000" --network bridge --name "${reg_name}" \
    registry:3
fi

# 2. Create the kind cluster with containerd's registry config dir enabled.
step cluster "kind cluster ${cluster}"
if kind get clusters 2>/dev/null | grep -qx "${cluster}"; then
  echo "cluster ${cluster} exists" >&2
else
  image_args=()
  if [ -n "${node_image}" ]; then
    image_args=(--image "${node_image}")
  fi
  cat <<EOF | kind create cluster --name "${cluster}" "${image_args[@]}" --config=-
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
containerdConfigPatches:
- |-
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"
EOF
fi

# 3. Add the registry config to the nodes: localhost:${reg_port} is the registry container
# over the kind network.
step wiring "hosts.toml on every node"
REGISTRY_DIR="/etc/containerd/certs.d/localhost:${reg_port}"
for node in $(kind get nodes --name "${cluster}"); do
  docker exec "${node}" mkdir -p "${REGISTRY_DIR}"
  cat <<EOF | docker exec -i "${node}" cp /dev/stdin "${REGISTRY_DIR}/hosts.toml"
[host."http://${reg_name}:5000"]
EOF
done

# 4. Connect the registry to the cluster network if not already connected.
step wiring "connect ${reg_name} to the kind network"
if [ "$(docker inspect -f '{{json .NetworkSettings.Networks.kind}}' "${reg_name}")" = 'null' ]; then
  docker network connect "kind" "${reg_name}"
fi

# 5. Document the local registry (KEP-1755).
step wiring "local-registry-hosting ConfigMap"
kubectl --context "${context}" apply -f - <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: "localhost:${reg_port}"
    hostFromContainerRuntime: "${reg_name}:5000"
    hostFromClusterNetwork: "${reg_name}:5000"
    help: "https://kind.sigs.k8s.io/docs/user/local-registry/"
EOF
fi # --via

# 6. Build and push the app. The tag is a hash of the build context, so an unchanged app keeps
# its tag (and its running pods) on a re-run.
tag=$(cd "${app_dir}" && find . -type f ! -name README.md -print0 | LC_ALL=C sort -z \
  | xargs -0 sha256sum | sha256sum | cut -c1-12)
image="localhost:${reg_port}/${app}:${tag}"
step build "docker build ${image}"
docker build -t "${image}" "${app_dir}"
step push "docker push ${image}"
docker push "${image}"

# 7. Apply the overlay with the image pointed at that tag: a throwaway kustomization on top of
# the workspace's overlay (the workspace itself is never edited).
step apply "kubectl apply -k ${overlay} (image ${image})"
overlay_abs=$(cd "${overlay}" && pwd -P)
tmp=$(mktemp -d)
trap 'rm -rf "${tmp}"' EXIT
# kustomize refuses absolute resource paths: climb from the temp dir to / first (a `..` too
# many stays at /, so count the components of both spellings of the temp dir).
up_to_root=""
for part in $(printf '%s/%s' "${tmp}" "$(cd "${tmp}" && pwd -P)" | tr '/' ' '); do
  up_to_root="../${up_to_root}"
  : "${part}"
done
cat >"${tmp}/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ${up_to_root}${overlay_abs#/}
images:
  - name: localhost:${reg_port}/${app}
    newTag: "${tag}"
EOF
kubectl --context "${context}" apply -k "${tmp}"

# 8. Wait for the rollout.
step rollout "kubectl rollout status deployment/${app} -n ${namespace}"
kubectl --context "${context}" rollout status "deployment/${app}" -n "${namespace}" \
  --timeout="${rollout_timeout}"
step finished "done"
