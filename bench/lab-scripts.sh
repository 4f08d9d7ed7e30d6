#!/usr/bin/env bash
# The lab's old shell-script way of doing what `kindlab up` does, one step after the other:
# kind's documented local-registry script (https://kind.sigs.k8s.io/docs/user/local-registry/),
# then `docker build` + `docker push`, `kubectl apply -k` and `kubectl rollout status`.
# It is the baseline of `make bench` (bench/run.sh); it never edits the workspace.
#
#   bash bench/lab-scripts.sh [up|down] [--workspace DIR] [--cluster NAME]
#                             [--registry-name NAME] [--registry-port PORT] [--node-image IMAGE]
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

usage() {
  sed -n '7,8p' "$0" | sed 's/^# *//' >&2
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

# Each step stamped with the wall clock (bash 5's EPOCHREALTIME, no fork) for the bench logs.
step() { printf '==> %s %s\n' "${EPOCHREALTIME:-}" "$*" >&2; }

if [ "$action" = down ]; then
  step "delete cluster ${cluster}"
  if kind get clusters 2>/dev/null | grep -qx "${cluster}"; then
    kind delete cluster --name "${cluster}"
  fi
  step "delete registry ${reg_name}"
  if docker inspect "${reg_name}" >/dev/null 2>&1; then
    docker rm -f -v "${reg_name}" >/dev/null
  fi
  exit 0
fi

cd "${workspace}"

# 1. Create the registry container unless it already exists (kind's script, verbatim logic).
step "registry ${reg_name} on 127.0.0.1:${reg_port}"
if [ "$(docker inspect -f '{{.State.Running}}' "${reg_name}" 2>/dev/null || true)" != 'true' ]; then
  docker run \
    -d --restart=always -p "127.0.0.1:${reg_port}:5000" --network bridge --name "${reg_name}" \
    registry:3
fi

# 2. Create the kind cluster with containerd's registry config dir enabled.
step "kind cluster ${cluster}"
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
step "hosts.toml on every node"
REGISTRY_DIR="/etc/containerd/certs.d/localhost:${reg_port}"
for node in $(kind get nodes --name "${cluster}"); do
  docker exec "${node}" mkdir -p "${REGISTRY_DIR}"
  cat <<EOF | docker exec -i "${node}" cp /dev/stdin "${REGISTRY_DIR}/hosts.toml"
[host."http://${reg_name}:5000"]
EOF
done

# 4. Connect the registry to the cluster network if not already connected.
step "connect ${reg_name} to the kind network"
if [ "$(docker inspect -f '{{json .NetworkSettings.Networks.kind}}' "${reg_name}")" = 'null' ]; then
  docker network connect "kind" "${reg_name}"
fi

# 5. Document the local registry (KEP-1755).
step "local-registry-hosting ConfigMap"
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

# 6. Build and push the app. The tag is a hash of the build context, so an unchanged app keeps
# its tag (and its running pods) on a re-run.
tag=$(cd "${app_dir}" && find . -type f ! -name README.md -print0 | LC_ALL=C sort -z \
  | xargs -0 sha256sum | sha256sum | cut -c1-12)
image="localhost:${reg_port}/${app}:${tag}"
step "docker build ${image}"
docker build -t "${image}" "${app_dir}"
step "docker push ${image}"
docker push "${image}"

# 7. Apply the overlay with the image pointed at that tag: a throwaway kustomization on top of
# the workspace's overlay (the workspace itself is never edited).
step "kubectl apply -k ${overlay} (image ${image})"
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
step "kubectl rollout status deployment/${app} -n ${namespace}"
kubectl --context "${context}" rollout status "deployment/${app}" -n "${namespace}" \
  --timeout="${rollout_timeout}"
step "done"
