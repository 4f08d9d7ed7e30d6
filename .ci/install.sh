#!/usr/bin/env bash
# `make install` and `make uninstall` (and `make lab`'s install step).
#
#   bash .ci/install.sh install | uninstall | can-install
#
# install: kindlab into $DESTDIR$BINDIR (BINDIR=$PREFIX/bin, PREFIX=/usr/local), and beside it
# the kind, kubectl and kustomize that make had to provide itself: the offline tool set of
# `make offline-images` ($KINDLAB_CI_CACHE/bin) or `make tools`' .bin/. A tool the PATH
# already had is not copied; a file in $BINDIR that kindlab did not put there is never
# replaced (it is kept, and named). What was installed is recorded with checksums in
# $PREFIX/share/kindlab/install-manifest; `uninstall` removes exactly those files, and keeps
# one that changed since. $PREFIX/share/kindlab/lab-tools names the kind and kubectl the lab
# was set up with (`kindlab doctor` compares the kubectl on PATH with it when no cluster
# answers). Installing twice is harmless: an unchanged file is left as it is.
# can-install: exits 0 when $DESTDIR$BINDIR can be written (or made) by this user.
#
# Knobs (env; make passes them): PREFIX, DESTDIR, BINDIR, KINDLAB (the binary to install,
# ./target/release/kindlab), TOOLS (0: kindlab only), BIN_DIR (make's .bin/),
# KINDLAB_CI_CACHE (/var/cache/kindlab-ci).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[install] %s\n' "$*"; }
die() { printf '[install] %s\n' "$1" >&2; exit "${2:-1}"; }

PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
BINDIR=${BINDIR:-$PREFIX/bin}
SHAREDIR=$PREFIX/share/kindlab
MANIFEST=$SHAREDIR/install-manifest
LAB_TOOLS=$SHAREDIR/lab-tools
KINDLAB=${KINDLAB:-./target/release/kindlab}
TOOLS=${TOOLS:-1}
BIN_DIR=${BIN_DIR:-$PWD/.bin}
CACHE=${KINDLAB_CI_CACHE:-/var/cache/kindlab-ci}
# What a new login shell starts from (the issue's clean environment).
CLEAN_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

for dir in "$PREFIX" "$BINDIR"; do
  case "$dir" in /*) ;; *) die "PREFIX and BINDIR must be absolute paths (got '$dir'), e.g. PREFIX=\$HOME/.local" 2 ;; esac
done

sha() { sha256sum "$1" | cut -d' ' -f1; }

# The directory a file would be written into exists and is writable, or can be made.
writable() {
  local d=$1
  while [ ! -e "$d" ]; do d=$(dirname "$d"); done
  [ -d "$d" ] && [ -w "$d" ]
}

fix_permissions() {
  die "cannot write $DESTDIR$BINDIR as $(id -un): run \`sudo make install\`, or install for yourself with \`make install PREFIX=\$HOME/.local\`" 4
}

# The version a tool prints, one word (`unknown` when it prints none).
tool_version() {
  local out=""
  case "${1##*/}" in
    kind) out=$("$1" version 2>/dev/null | awk '{print $2}') ;;
    kubectl) out=$("$1" version --client 2>/dev/null | sed -n 's/^Client Version: //p') ;;
    kustomize) out=$("$1" version 2>/dev/null | head -n1) ;;
    kindlab) out=$("$1" --version 2>/dev/null | awk '{print $2}') ;;
  esac
  printf '%s' "${out:-unknown}"
}

# The manifest: `<sha256>  <path as installed, without DESTDIR>` per line (sha256sum's format).
declare -A OWNED=()
read_manifest() {
  [ -f "$DESTDIR$MANIFEST" ] || return 0
  local sum path
  while read -r sum path; do
    [ -n "$path" ] && OWNED[$path]=$sum
  done < <(grep -v '^#' "$DESTDIR$MANIFEST")
}

# Did kindlab's install put this file there, unchanged since?
ours() {
  local path=$1
  [ -n "${OWNED[$path]:-}" ] && [ -f "$DESTDIR$path" ] && [ "$(sha "$DESTDIR$path")" = "${OWNED[$path]}" ]
}

write_manifest() {
  local tmp="$DESTDIR$MANIFEST.tmp" path
  mkdir -p "$DESTDIR$SHAREDIR"
  {
    echo "# What \`make install\` put here; \`make uninstall\` removes exactly these files (unless changed since)."
    while IFS= read -r path; do
      [ -n "$path" ] && printf '%s  %s\n' "${OWNED[$path]}" "$path"
    done < <(printf '%s\n' "${!OWNED[@]}" | sort)
  } >"$tmp"
  mv -f "$tmp" "$DESTDIR$MANIFEST"
}

# put SRC DEST [MODE]: DEST (without DESTDIR) becomes a copy of SRC, atomically, and is
# recorded.
put() {
  local src=$1 dest=$2 mode=${3:-0755} real="$DESTDIR$2"
  mkdir -p "$(dirname "$real")"
  install -m "$mode" "$src" "$real.kindlab-new"
  mv -f "$real.kindlab-new" "$real"
  OWNED[$dest]=$(sha "$real")
}

# The directories make puts tools into (the offline tool set, .bin/).
provided_dirs() {
  local ci_bin=""
  if [ -f "$CACHE/env" ]; then
    ci_bin=$(sed -n 's/^KINDLAB_CI_BIN=//p' "$CACHE/env")
  fi
  [ -n "$ci_bin" ] && printf '%s\n' "$ci_bin"
  printf '%s\n' "$BIN_DIR"
}

provided_by_make() {
  local dir d
  dir=$(cd "$(dirname "$1")" && pwd -P)
  while read -r d; do
    [ -d "$d" ] && [ "$dir" = "$(cd "$d" && pwd -P)" ] && return 0
  done < <(provided_dirs)
  return 1
}

install_tool() {
  local tool=$1 src dest real
  # As make's recipes see it (.ci/with-env.sh puts the offline tool set first, make .bin/).
  src=$(command -v "$tool" 2>/dev/null) || return 0
  dest="$BINDIR/$tool"
  real="$DESTDIR$dest"
  if ! provided_by_make "$src"; then
    return 0 # the user's own (or the system's): found on PATH without kindlab's help
  fi
  if [ -e "$real" ] && [ "$(readlink -f "$real")" = "$(readlink -f "$src")" ]; then
    return 0 # make's tool directory is the install directory
  fi
  if [ ! -e "$real" ] && [ ! -L "$real" ]; then
    put "$src" "$dest"
    log "installed $tool $(tool_version "$real") as $dest (from $src)"
  elif ours "$dest"; then
    if cmp -s "$src" "$real"; then
      log "$tool $(tool_version "$real") in $dest is up to date"
    else
      put "$src" "$dest"
      log "updated $dest to $tool $(tool_version "$real") (from $src)"
    fi
  elif cmp -s "$src" "$real"; then
    log "$dest is already the lab's $tool $(tool_version "$real") (not installed by kindlab: uninstall keeps it)"
  else
    log "kept $dest ($tool $(tool_version "$real")): kindlab did not install it, so it is not replaced;"
    log "  the lab's $tool is $src ($(tool_version "$src")); \`kindlab doctor\` warns when a kubectl is outside the cluster's version skew"
  fi
}

# lab-tools: the kind and kubectl make's recipes use (what the lab was set up with).
write_lab_tools() {
  local tmp="$DESTDIR$LAB_TOOLS.tmp" tool src
  mkdir -p "$DESTDIR$SHAREDIR"
  {
    echo "# The kind and kubectl \`make lab\` set this machine's lab up with (written by \`make install\`)."
    echo "# \`kindlab doctor\` compares the kubectl on PATH with this one when no cluster answers."
    for tool in kind kubectl; do
      src=$(command -v "$tool" 2>/dev/null) || continue
      local upper=${tool^^}
      # Where a new shell finds it: the copy installed beside kindlab, else where make found it.
      if [ -n "${OWNED[$BINDIR/$tool]:-}" ] && cmp -s "$src" "$DESTDIR$BINDIR/$tool"; then
        printf 'KINDLAB_LAB_%s=%s\n' "$upper" "$BINDIR/$tool"
      else
        printf 'KINDLAB_LAB_%s=%s\n' "$upper" "$src"
      fi
      printf 'KINDLAB_LAB_%s_VERSION=%s\n' "$upper" "$(tool_version "$src")"
    done
  } >"$tmp"
  mv -f "$tmp" "$DESTDIR$LAB_TOOLS"
  OWNED[$LAB_TOOLS]=$(sha "$DESTDIR$LAB_TOOLS")
}

# What a new login shell finds, said in one line when it is not what was installed.
new_shell() {
  env -i HOME="$HOME" USER="${USER:-$(id -un)}" PATH="$CLEAN_PATH" bash -lc "$1" 2>/dev/null </dev/null || true
}
check_new_shell() {
  [ -z "$DESTDIR" ] || return 0
  local tool found
  # shellcheck disable=SC2016 # expanded by the new shell
  case ":$(new_shell 'printf %s "$PATH"'):" in
    *":$BINDIR:"*) ;;
    *)
      log "a new shell does not look in $BINDIR: add it to your PATH, e.g."
      log "  echo 'export PATH=\"$BINDIR:\$PATH\"' >> ~/.profile   # then open a new shell"
      return 0
      ;;
  esac
  for tool in kindlab kind kubectl; do
    [ -n "${OWNED[$BINDIR/$tool]:-}" ] || continue
    found=$(new_shell "command -v $tool")
    if [ "$found" != "$BINDIR/$tool" ]; then
      log "a new shell finds ${found:-no $tool} before $BINDIR/$tool: remove it, or put $BINDIR first on your PATH"
    fi
  done
}

# put_doc SRC DEST: as put, mode 0644, but a file kindlab did not put there is kept.
put_doc() {
  local src=$1 dest=$2
  if [ -e "$DESTDIR$dest" ] && ! ours "$dest"; then
    cmp -s "$src" "$DESTDIR$dest" || log "kept $dest: kindlab did not install it"
    return 0
  fi
  if cmp -s "$src" "$DESTDIR$dest"; then
    OWNED[$dest]=$(sha "$DESTDIR$dest")
  else
    put "$src" "$dest" 0644
  fi
}

# Shell completions and man pages, generated by the kindlab being installed from its own
# command line definition, where bash-completion, zsh, fish and man look under $PREFIX.
install_docs() {
  local gen dest page shell
  gen=$(mktemp -d)
  if ! "$KINDLAB" man --dir "$gen/man1" >/dev/null 2>&1; then
    log "no completions or man pages: $KINDLAB cannot generate them (an older kindlab?)"
    rm -rf "$gen"
    return 0
  fi
  for page in "$gen"/man1/*.1; do
    [ -f "$page" ] || continue
    put_doc "$page" "$PREFIX/share/man/man1/$(basename "$page")"
  done
  for shell in bash zsh fish; do
    case $shell in
      bash) dest="$PREFIX/share/bash-completion/completions/kindlab" ;;
      zsh) dest="$PREFIX/share/zsh/site-functions/_kindlab" ;;
      fish) dest="$PREFIX/share/fish/vendor_completions.d/kindlab.fish" ;;
    esac
    "$KINDLAB" completion "$shell" >"$gen/$shell"
    put_doc "$gen/$shell" "$dest"
  done
  rm -rf "$gen"
  log "installed completions (bash, zsh, fish) and $(ls "$DESTDIR$PREFIX/share/man/man1"/kindlab*.1 | wc -l) man pages under $PREFIX/share"
}

do_install() {
  [ -x "$KINDLAB" ] || die "no kindlab binary at $KINDLAB: run \`make build\` first (as the user who has cargo), or \`cargo install --locked --path .\`" 4
  if ! writable "$DESTDIR$BINDIR" || ! writable "$DESTDIR$SHAREDIR"; then fix_permissions; fi
  read_manifest
  local dest="$BINDIR/kindlab"
  if [ -f "$DESTDIR$dest" ] && cmp -s "$KINDLAB" "$DESTDIR$dest"; then
    OWNED[$dest]=$(sha "$DESTDIR$dest")
    log "kindlab $(tool_version "$DESTDIR$dest") in $dest is up to date"
  else
    put "$KINDLAB" "$dest"
    log "installed kindlab $(tool_version "$DESTDIR$dest") as $dest"
  fi
  install_docs
  if [ "$TOOLS" != 0 ]; then
    local tool
    for tool in kind kubectl kustomize; do install_tool "$tool"; done
  fi
  write_lab_tools
  write_manifest
  check_new_shell
}

do_uninstall() {
  read_manifest
  if [ ${#OWNED[@]} -eq 0 ]; then
    log "nothing to uninstall: no $DESTDIR$MANIFEST"
    return 0
  fi
  writable "$DESTDIR$SHAREDIR" || fix_permissions
  local path
  while IFS= read -r path; do
    if [ ! -e "$DESTDIR$path" ]; then
      continue
    elif ours "$path"; then
      rm -f "$DESTDIR$path"
      log "removed $path"
    else
      log "kept $path: it changed since \`make install\` put it there"
    fi
  done < <(printf '%s\n' "${!OWNED[@]}" | sort)
  rm -f "$DESTDIR$MANIFEST"
  rmdir "$DESTDIR$SHAREDIR" 2>/dev/null || true
}

case "${1:-}" in
  install) do_install ;;
  uninstall) do_uninstall ;;
  can-install) writable "$DESTDIR$BINDIR" && writable "$DESTDIR$SHAREDIR" ;;
  *) die "usage: $0 install|uninstall|can-install" 2 ;;
esac
