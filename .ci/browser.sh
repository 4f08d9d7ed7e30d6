#!/usr/bin/env bash
# A headless browser for the HTML report's test (tests/it/report.rs): Chromium, or on
# Debian/Ubuntu as root, Debian's chromium installed. Nothing is downloaded from anywhere else.
set -euo pipefail

log() { printf '[browser] %s\n' "$*"; }

for b in chromium chromium-browser; do
  if command -v "$b" >/dev/null 2>&1; then
    exit 0
  fi
done
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  log "installing Debian's chromium (for the HTML report's test)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  exit 0
fi
log "the HTML report's test needs Chromium: install it (Debian/Ubuntu: apt-get install chromium)"
exit 4
