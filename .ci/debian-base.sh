#!/usr/bin/env bash
# Prints the path of a cached Debian 12 (bookworm) minbase root file system tarball
# (`mmdebstrap --variant=minbase bookworm`) under /var/cache/flannelts-ci/, making it when missing.
# The fresh-machine check and the image test's local base (deploy/test-image.sh) start from it.
set -euo pipefail
cache=/var/cache/flannelts-ci
tarball=$cache/debian-bookworm-minbase.tar
if [ ! -s "$tarball" ]; then
  command -v mmdebstrap >/dev/null || { echo "debian-base.sh: needs mmdebstrap (apt-get install mmdebstrap)" >&2; exit 1; }
  mkdir -p "$cache"
  tmp=$(mktemp "$cache/.debian-bookworm-minbase.XXXXXX.tar")
  trap 'rm -f "$tmp"' EXIT
  mmdebstrap --variant=minbase --quiet bookworm "$tmp" >&2
  chmod 0644 "$tmp"
  mv "$tmp" "$tarball"
  trap - EXIT
fi
echo "$tarball"
