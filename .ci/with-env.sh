#!/usr/bin/env bash
# Runs a command with the offline tool set's environment when `make offline-images` made
# one: kind and kubectl on PATH, KINDLAB_TEST_NODE_IMAGE for the tests, and the same image
# as KINDLAB_NODE_IMAGE for `kindlab up`. Read when the command runs, not when make starts,
# because the set-up just before it may have written it.
set -euo pipefail
CACHE=${KINDLAB_CI_CACHE:-/var/cache/kindlab-ci}
if [ -f "$CACHE/env" ]; then
  set -a
  # shellcheck disable=SC1091
  . "$CACHE/env"
  set +a
  export PATH="$KINDLAB_CI_BIN:$PATH"
  export KINDLAB_NODE_IMAGE="${KINDLAB_NODE_IMAGE:-$KINDLAB_TEST_NODE_IMAGE}"
  # The NetworkPolicy enforcer the tests install into their cluster (netpol.sh).
  if [ -f "$CACHE/netpol.env" ]; then
    set -a
    # shellcheck disable=SC1091
    . "$CACHE/netpol.env"
    set +a
  fi
  # GitOps mode's controller and Git server images, and Flux's manifests (gitops.sh).
  if [ -f "$CACHE/gitops.env" ]; then
    set -a
    # shellcheck disable=SC1091
    . "$CACHE/gitops.env"
    set +a
  fi
fi
exec "$@"
