#!/usr/bin/env bash
# ctlptl (the peer tool of issue 11's "ctlptl way"), built from its Go module when missing.
# Prints the binary's path on stdout; progress and errors on stderr; exit 1 when it cannot be
# built. Nothing of ctlptl is ever committed: the wrapper module and the binary live in
# KINDLAB_CI_CACHE (/var/cache/kindlab-ci), outside the repository.
#
#   bash bench/build-ctlptl.sh        # CTLPTL_VERSION (v0.9.3), CTLPTL_BIN to use a given binary
set -o errexit -o nounset -o pipefail

version=${CTLPTL_VERSION:-v0.9.3}
cache=${KINDLAB_CI_CACHE:-/var/cache/kindlab-ci}
bin=${CTLPTL_BIN:-$cache/bin/ctlptl}
src=$cache/ctlptl-src

if [ -x "$bin" ] && "$bin" version 2>/dev/null | grep -q "${version#v}"; then
  echo "$bin"
  exit 0
fi
if [ -n "${CTLPTL_BIN:-}" ]; then
  echo "CTLPTL_BIN=$bin is not an executable ctlptl $version" >&2
  exit 1
fi
command -v go >/dev/null || { echo "go is not on PATH: cannot build ctlptl $version" >&2; exit 1; }
echo "building ctlptl $version into $bin (wrapper module in $src)" >&2
mkdir -p "$src" "$(dirname "$bin")"
cd "$src"
[ -f go.mod ] || go mod init kindlab.bench/ctlptl-wrapper >&2
# The main package, not just the module, so its dependencies' sums land in go.sum.
go get "github.com/tilt-dev/ctlptl/cmd/ctlptl@$version" >&2
go build -ldflags "-X main.version=${version#v}" -o "$bin.tmp" github.com/tilt-dev/ctlptl/cmd/ctlptl >&2
mv "$bin.tmp" "$bin"
echo "$bin"
