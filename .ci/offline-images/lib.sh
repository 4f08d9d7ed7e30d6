# shellcheck shell=bash
# Helpers shared by build.sh and smoke.sh (sourced, not executed).

# shellcheck disable=SC2034  # used by the scripts that source this file
CACHE=${KINDLAB_CI_CACHE:-/var/cache/kindlab-ci}

log() { printf '[offline-images] %s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# apt_ensure PKG...: install the packages that are not installed yet (no-op when all are)
apt_ensure() {
  local missing=() p
  for p in "$@"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}

# debian_mirror: the host's first Debian archive URI (deb822 or one-line sources)
debian_mirror() {
  local m=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1=="deb"{for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
  fi
  [ -n "$m" ] || die "cannot find the Debian mirror in the host's apt sources"
  echo "$m"
}

# rm_tree DIR: rm -rf that first unmounts anything still mounted below DIR (a failed
# mmdebstrap can leave its bind mounts behind) and never crosses into other file systems
rm_tree() {
  local d=$1 m
  [ -e "$d" ] || return 0
  d=$(realpath "$d")
  awk -v d="$d/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r \
    | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$d"
}

# have_image REF: true if the docker image exists locally
have_image() { docker image inspect "$1" >/dev/null 2>&1; }
