#!/usr/bin/env bash
# Prints the path of a minimal Debian 12 root as a tarball (`mmdebstrap --variant=minbase bookworm`), kept
# in a cache CI owns so that only the first run fetches from Debian's mirror; later runs reuse it.
#   FLANNELTS_CI_CACHE     the cache directory (default /var/cache/flannelts-ci)
#   FLANNELTS_CI_MIRROR    the Debian mirror (default http://deb.debian.org/debian)
# Delete the tarball to refresh it. Progress goes to stderr; stdout is only the path.
set -euo pipefail
cache=${FLANNELTS_CI_CACHE:-/var/cache/flannelts-ci}
mirror=${FLANNELTS_CI_MIRROR:-http://deb.debian.org/debian}
out=$cache/debian-12-minbase.tar

if [ ! -s "$out" ]; then
  command -v mmdebstrap >/dev/null || { echo "debian-base: needs mmdebstrap (apt-get install mmdebstrap)" >&2; exit 1; }
  mkdir -p "$cache"
  # Built under a temporary name and renamed when complete, so an interrupted run leaves no half tarball.
  tmp=$(mktemp --suffix=.tar "$cache/.debian-12-minbase.XXXXXX")
  trap 'rm -f "$tmp"' EXIT
  echo "debian-base: creating $out from $mirror (first run only)" >&2
  start=$SECONDS
  mmdebstrap --quiet --variant=minbase bookworm "$tmp" "$mirror" >&2
  chmod 0644 "$tmp"
  mv "$tmp" "$out"
  trap - EXIT
  echo "debian-base: created in $((SECONDS - start)) s" >&2
fi
echo "$out"
