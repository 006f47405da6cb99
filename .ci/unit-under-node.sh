#!/usr/bin/env bash
# .ci/unit-under-node.sh VERSION: builds the addon and the TypeScript and runs the unit tests under
# Node VERSION (from .ci/node-dist.sh), in a copy of the checked-out tree so this checkout's build/
# and dist/ (made by the machine's Node) stay as they are. npm is the machine's npm run by that Node;
# node-gyp builds against that Node's headers (nodedir), without downloading.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?usage: unit-under-node.sh VERSION}
dist=$(.ci/node-dist.sh "$version")
work=$(mktemp -d "/tmp/flannelts-node$version.XXXXXX")
trap 'rm -rf "$work"' EXIT
git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - | tar -xf - -C "$work"
cd "$work"
export PATH="$dist/bin:$PATH" npm_config_nodedir="$dist" JOBS=max
[ "$(node --version)" = "v$version" ] || { echo "unit-under-node.sh: node on PATH is $(node --version), not v$version" >&2; exit 1; }
npm ci --no-audit --no-fund --loglevel=error
node -e "const a=require('./build/Release/flannelts.node'); if (typeof a.sdNotify !== 'function') throw new Error('addon without exports')"
node --test dist/test/unit/*.test.js
