#!/usr/bin/env bash
# `make lab`'s next steps, run as a new user runs them: each in a new login shell with a clean
# environment (env -i HOME=$HOME PATH=<a fresh login's PATH> bash -lc '...'), in the lab's
# workspace. Fails, naming the step and the fix, when one does not work there:
#   kindlab --version, kindlab lab list   kindlab is installed on the PATH
#   kind version                          kind is found
#   kubectl version --client              names the lab's kubectl version (the one make's
#                                         recipes use, or LAB_KUBECTL_VERSION); without
#                                         --exact a kubectl the user had passes when within
#                                         kubectl's skew of it (one minor version)
#   kubectl get pods -n dev               when the workspace's cluster is up (--cluster: it
#                                         must be), against it (the current context)
# --use-context first makes the workspace's cluster kubectl's current context when it is up and
# another is current (as kind does when it creates a cluster), saying so: `make lab` does.
# --attendee also does the lab as its text says (lab 5, bad-image-tag): `kindlab lab start`,
# the text's kubectl commands, `kindlab lab check` (not fixed yet: 10), the fix the text names
# (`kubectl apply -k`), `kindlab lab check` (fixed: 0), then `kindlab reset`.
#
#   bash .ci/clean-env-check.sh [--use-context] [--cluster] [--exact] [--attendee] [LAB_DIR]
# Run by `make lab` (--use-context --cluster) and by CI (.ci/run, --exact --attendee) after
# `make install`.
set -euo pipefail

log() { printf '[clean-env] %s\n' "$*"; }

need_cluster="" attendee="" use_context="" exact=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cluster) need_cluster=1 ;;
    --use-context) use_context=1 ;;
    --exact) exact=1 ;;
    --attendee) attendee=1; need_cluster=1 ;;
    -*) log "usage: $0 [--use-context] [--cluster] [--exact] [--attendee] [LAB_DIR]"; exit 2 ;;
    *) break ;;
  esac
  shift
done
LAB_DIR=$(cd "${1:-.lab}" && pwd) || { log "no workspace ${1:-.lab}"; exit 2; }
[ -f "$LAB_DIR/kindlab.yaml" ] || { log "$LAB_DIR has no kindlab.yaml"; exit 2; }

CLEAN_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
failures=0

# clean CMD: runs CMD in the workspace, in a new login shell with nothing of this one's
# environment but HOME and USER (so ~/.profile applies, as it would for the user).
clean() {
  env -i HOME="$HOME" USER="${USER:-$(id -un)}" LOGNAME="${USER:-$(id -un)}" TERM=dumb \
    PATH="$CLEAN_PATH" bash -lc "cd '$LAB_DIR' && $1" </dev/null 2>&1
}

# step CODE CMD [TEXT]: CMD exits CODE in a clean shell (and prints TEXT).
step() {
  local want=$1 cmd=$2 text=${3:-} out code=0
  out=$(clean "$cmd") || code=$?
  if [ "$code" = "$want" ] && { [ -z "$text" ] || grep -qF -- "$text" <<<"$out"; }; then
    printf ' ✓ %-58s %s\n' "$cmd" "$(grep -v '^\s*$' <<<"$out" | head -n1 | cut -c1-70)"
    return 0
  fi
  failures=$((failures + 1))
  printf ' ✗ %s\n' "$cmd"
  if [ "$code" != "$want" ]; then
    printf '   exit %s (expected %s)\n' "$code" "$want"
  else
    printf '   its output does not name %s\n' "$text"
  fi
  sed 's/^/   | /' <<<"$out" | head -n 15
  return 1
}

# The kubectl the lab was set up with: the one this script's caller (make, through
# .ci/with-env.sh) runs.
lab_kubectl=${LAB_KUBECTL_VERSION:-}
if [ -z "$lab_kubectl" ] && command -v kubectl >/dev/null; then
  lab_kubectl=$(kubectl version --client 2>/dev/null | sed -n 's/^Client Version: //p')
fi
# The workspace's cluster: kindlab.yaml's cluster.name (kindlab's default: kindlab).
cluster=$(awk '/^cluster:/ {c=1; next} /^[^ #]/ {c=0} c && $1 == "name:" {print $2; exit}' "$LAB_DIR/kindlab.yaml")
cluster=${cluster:-kindlab}

up=""
if command -v kind >/dev/null && kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  up=1
fi
if [ -n "$use_context" ] && [ -n "$up" ] && command -v kubectl >/dev/null; then
  current=$(kubectl config current-context 2>/dev/null || true)
  if [ "$current" != "kind-$cluster" ]; then
    log "kubectl's current context is ${current:-unset}: switching to the lab's, kind-$cluster (the lab text's kubectl commands use it)"
    # kind's own command when the kubeconfig lacks the context (it writes it, and selects it).
    kubectl config use-context "kind-$cluster" >/dev/null 2>&1 || kind export kubeconfig --name "$cluster"
  fi
fi

log "in a new login shell (env -i HOME=$HOME PATH=$CLEAN_PATH bash -l), in $LAB_DIR:"
# shellcheck disable=SC2016 # expanded by the clean shell
where=$(clean 'for t in kindlab kind kubectl; do printf "%s=%s " $t "$(command -v $t || echo missing)"; done')
log "  found: $where"
step 0 "kindlab --version" "kindlab" || log "  fix: make install (or sudo make install); see the README's Install section"
step 0 "kindlab lab list" "bad-image-tag" || true
step 0 "kind version" "kind v" || log "  fix: make install installs the kind the lab was made with beside kindlab"
# kubectl: the lab's version; with --exact (CI) nothing else, else also one the user had,
# within kubectl's skew of it (one minor version).
minor() { sed -nE 's/^v?([0-9]+)\.([0-9]+).*/\1 \2/p' <<<"$1"; }
within_skew() {
  local a b
  read -r -a a <<<"$(minor "$1")"; read -r -a b <<<"$(minor "$2")"
  [ ${#a[@]} = 2 ] && [ ${#b[@]} = 2 ] && [ "${a[0]}" = "${b[0]}" ] \
    && [ $(( a[1] > b[1] ? a[1] - b[1] : b[1] - a[1] )) -le 1 ]
}
client=$(clean "kubectl version --client" | sed -n 's/^Client Version: //p')
if [ -z "$lab_kubectl" ]; then
  step 0 "kubectl version --client" "Client Version:" || true
elif [ "$client" = "$lab_kubectl" ] || [ -n "$exact" ]; then
  step 0 "kubectl version --client" "Client Version: $lab_kubectl" \
    || log "  fix: the lab was set up with kubectl $lab_kubectl: make install puts it beside kindlab (a kubectl kindlab did not install is kept: put the lab's first on PATH)"
elif [ -n "$client" ] && within_skew "$client" "$lab_kubectl"; then
  printf ' ✓ %-58s %s\n' "kubectl version --client" "Client Version: $client (the lab's is $lab_kubectl: within kubectl's skew)"
else
  failures=$((failures + 1))
  found=$(clean 'command -v kubectl' || true)
  printf ' ✗ %s\n   %s\n' "kubectl version --client" "${client:-no kubectl}${found:+ at $found}: the lab was set up with kubectl $lab_kubectl ($(command -v kubectl)), and kubectl supports one minor version either way"
  if [ -n "$found" ]; then
    log "  fix: make install never replaces a kubectl it did not put there: remove $found and run make install again, or put $(dirname "$(command -v kubectl)") first on PATH"
  else
    log "  fix: make install puts the lab's kubectl beside kindlab"
  fi
fi

if [ -n "$up" ]; then
  step 0 "kubectl config current-context" "kind-$cluster" \
    || log "  fix: kubectl config use-context kind-$cluster (the lab text's kubectl commands use the current context)"
  step 0 "kubectl get pods -n dev" "orders-api" || true
elif [ -n "$need_cluster" ]; then
  failures=$((failures + 1))
  log " ✗ the workspace's cluster kind-$cluster is not up: run \`kindlab up\` in $LAB_DIR"
else
  log "  (cluster kind-$cluster is not up: kubectl get pods -n dev not tried)"
fi

if [ -n "$attendee" ] && [ -n "$up" ] && [ "$failures" = 0 ]; then
  log "the lab as an attendee does it (labs/bad-image-tag.yaml):"
  step 0 "kindlab lab start bad-image-tag" || true
  step 0 "kubectl get pods -n dev -l app=orders-api" "orders-api" || true
  step 0 "kubectl describe pod -n dev -l app=orders-api" "nonexistent" || true
  step 10 "kindlab lab check" || true
  step 0 "kubectl apply -k deploy/overlays/dev" "deployment.apps/orders-api" || true
  step 0 "kubectl rollout status deployment/orders-api -n dev --timeout=180s" "successfully rolled out" || true
  step 0 "kindlab lab check" || true
  step 0 "kindlab reset" || true
fi

if [ "$failures" -gt 0 ]; then
  log "$failures step(s) failed in a clean environment"
  exit 1
fi
log "every step works in a new shell"
