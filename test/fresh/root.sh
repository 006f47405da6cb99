#!/usr/bin/env bash
# Prints the path of a cached Debian 12 root for the fresh-machine check: the minbase tarball of
# .ci/debian-base.sh plus exactly README's requirements (system-packages.tsv's "required" rows) and what
# design.md's fresh machine also has (ca-certificates, curl, procps), installed with apt inside. Cached as a
# directory under the same cache, keyed by the base tarball and the package list; test/fresh/run.sh only
# ever mounts it as an overlay's read-only lower layer. Progress goes to stderr; stdout is only the path.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${FLANNELTS_CI_CACHE:-/var/cache/flannelts-ci}
base=$("$repo/.ci/debian-base.sh")
pkgs="$("$repo/.ci/system-packages" required | tr '\n' ' ')ca-certificates curl procps"
key=$( { echo "$pkgs"; stat -c '%s %Y' "$base"; } | sha256sum | cut -c1-12)
root=$cache/fresh-root-$key

if [ ! -d "$root" ]; then
  echo "fresh root: installing $pkgs into a copy of $base" >&2
  tmp=$(mktemp -d "$cache/.fresh-root.XXXXXX")
  # The mounts below live in their own mount namespace and are gone when it exits, so this removes files only.
  trap 'rm -rf --one-file-system "$tmp"' EXIT
  tar -xf "$base" -C "$tmp"
  cp -L /etc/resolv.conf "$tmp/etc/resolv.conf"
  unshare -m --propagation private bash -euc '
    mount -t proc proc "$1/proc"
    mount --rbind /dev "$1/dev"
    chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 \
      sh -euc "apt-get update -qq; apt-get install -y -qq --no-install-recommends $2 >/dev/null; apt-get clean; rm -rf /var/lib/apt/lists/*"
  ' fresh-root "$tmp" "$pkgs" >&2
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$tmp/etc/hosts"
  rm -f "$tmp/etc/resolv.conf" # run.sh copies the machine's resolver each run
  for old in "$cache"/fresh-root-*; do [ -d "$old" ] && rm -rf --one-file-system "$old"; done
  # Renamed only when complete; a concurrent run that got there first wins and this copy is dropped.
  mv -T "$tmp" "$root" 2>/dev/null || rm -rf --one-file-system "$tmp"
  trap - EXIT
fi
echo "$root"
