#!/usr/bin/env bash
# The fresh-machine check: README's commands on a Debian 12 root that has only README's requirements
# (test/fresh/root.sh), with Node, its headers and npm copied from this machine, as a new user would run
# them: `npm install`, `npx flannelctl lab` (every pair must pass) and `npm test` (no failure; every skip
# names a package of system-packages.tsv). Run as root; .ci/run runs it after the README test command.
#
# Isolation: the check runs in its own mount and PID namespaces (unshare), so its mounts never reach the
# host's and every process it started dies with it. The root is an overlay over the cached one (each run
# starts clean, and / is a mount point as `ip netns exec` needs) with /proc (of the new PID namespace),
# /sys and /dev, and a fresh /run and /tmp. The source is `git archive` of the commit under test (HEAD,
# or FRESH_REF). Each phase prints its time; the exit status is non-zero when any phase failed.
# FRESH_LOGS=DIR keeps the install, lab and test logs there.
set -euo pipefail

say() { echo "fresh: $*"; }
fail=0
phase() { # phase NAME FUNCTION...: runs it in a subshell with set -e, prints its time and result, records a failure.
  local name=$1 start=$SECONDS rc
  shift
  # Not `"$@" || rc=$?`: inside a || list bash ignores set -e, and a failed step would go unnoticed.
  set +e
  (set -e; "$@")
  rc=$?
  set -e
  if [ $rc = 0 ]; then say "$name: ok, $((SECONDS - start)) s"; else say "$name: FAILED (exit $rc), $((SECONDS - start)) s"; fail=1; fi
  return 0
}

# ---------------------------------------------------------------------------------------------------------
# Inside the namespaces (PID 1 of the new PID namespace): mount, copy, run the phases, tear down.
if [ "${1:-}" = --inside ]; then
  lower=$2 work=$3 repo=$4
  root=$work/root logs=$work/logs
  mkdir -p "$work/upper" "$work/overlay-work" "$root" "$logs"

  teardown() {
    # Every other process in this PID namespace was started by this check: end each by its PID.
    local p
    for p in /proc/[0-9]*; do
      p=${p#/proc/}
      [ "$p" = 1 ] || [ "$p" = "$BASHPID" ] || kill -KILL "$p" 2>/dev/null || true
    done
    if [ -d "$root/run/netns" ]; then
      for ns in "$root"/run/netns/*; do
        [ -e "$ns" ] && chroot "$root" ip netns delete "${ns##*/}" 2>/dev/null || true
      done
    fi
    umount -R "$root" 2>/dev/null || umount -R -l "$root" 2>/dev/null || true
  }
  trap teardown EXIT

  in_root() { # runs a command line in the root with a clean environment (CI unset: a skip stays a skip)
    local env=(HOME=/root "PATH=$node_bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" LANG=C.UTF-8 TERM=dumb)
    local v
    for v in NODE_EXTRA_CA_CERTS http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
      [ -n "${!v:-}" ] && env+=("$v=${!v}")
    done
    chroot "$root" /usr/bin/env -i "${env[@]}" bash -c "$1"
  }

  copy_into_root() { # copy_into_root PATH...: the same absolute paths inside the root
    local f
    for f in "$@"; do
      mkdir -p "$root$(dirname "$f")"
      cp -a --dereference "$f" "$root$f"
    done
  }

  mount_root() {
    mount -t overlay fresh -o "lowerdir=$lower,upperdir=$work/upper,workdir=$work/overlay-work" "$root"
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs -o mode=0755 tmpfs "$root/run"
    mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
  }

  node=$(readlink -f "$(command -v node)")
  node_bin=$(dirname "$node")

  copy_machine() {
    # Node with its headers and npm where this machine has them (npm's nodedir may point at them).
    local npm_dir
    npm_dir=$(npm root -g)/npm
    copy_into_root "$node" "$(dirname "$node_bin")/include/node"
    mkdir -p "$root$(dirname "$npm_dir")"
    cp -a "$npm_dir" "$root$npm_dir"
    cp -a "$node_bin/npm" "$node_bin/npx" "$root$node_bin/"
    # What makes the registry reachable: resolver, CA bundles, npm's settings (global and the user's).
    local files=(/etc/resolv.conf /etc/ssl/certs/ca-certificates.crt) f
    for f in "${NODE_EXTRA_CA_CERTS:-}" "$(npm config get cafile)" "$(npm config get globalconfig)"; do
      [ -n "$f" ] && [ "$f" != null ] && [ -f "$f" ] && files+=("$f")
    done
    copy_into_root "${files[@]}"
    local userconfig
    userconfig=$(npm config get userconfig)
    [ -f "$userconfig" ] && cp "$userconfig" "$root/root/.npmrc"
    mkdir -p "$root/root/flannelts"
    tar -xf "$work/source.tar" -C "$root/root/flannelts"
    in_root 'node --version && npm --version' | tr '\n' ' '
    echo "(node, npm)"
  }

  netns_works() { # the lab and the tests need `ip netns add` and `ip netns exec` inside the root
    in_root 'ns=fresh-check-$$; ip netns add $ns && ip netns exec $ns ip link set lo up && ip netns delete $ns'
  }

  npm_install() {
    in_root 'cd /root/flannelts && npm install' >"$logs/install.log" 2>&1 || { tail -n 40 "$logs/install.log"; return 1; }
    grep -E '^(added|up to date)' "$logs/install.log" || true
  }

  lab() {
    local rc=0
    in_root 'cd /root/flannelts && npx flannelctl lab' >"$logs/lab.log" 2>&1 || rc=$?
    sed 's/^/  lab | /' "$logs/lab.log"
    return $rc
  }

  npm_test() {
    local rc=0
    in_root 'cd /root/flannelts && npm test' >"$logs/test.log" 2>&1 || rc=$?
    # Each failure with its YAML block (the error and stack), then the summary lines.
    awk '/^ *not ok / { on = 1; n = 0 } on && n++ < 60 { print "  test | " $0 } on && /^ *\.\.\.$/ { on = 0 }' "$logs/test.log"
    grep -E '^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) |^# skipped by missing package' "$logs/test.log" | sed 's/^/  test | /' || true
    [ $rc = 0 ] || return $rc
    # Every skip names a package of system-packages.tsv.
    local known bad
    known=" $("$repo/.ci/system-packages" required optional ci | tr '\n' ' ') "
    bad=$(grep -oE '# SKIP.*' "$logs/test.log" | sort | uniq -c | while read -r n reason; do
      pkgs=$(grep -oE '\(apt-get install [a-z0-9.+-]+\)' <<<"$reason" | sed -E 's/\(apt-get install (.*)\)/\1/')
      ok=${pkgs:+yes}
      for p in $pkgs; do [[ $known == *" $p "* ]] || ok=; done
      [ -n "$ok" ] || echo "  test | skip naming no package of system-packages.tsv ($n x): $reason"
    done)
    [ -z "$bad" ] || { echo "$bad"; return 1; }
  }

  phase "root (overlay, /proc /sys /dev, fresh /run /tmp)" mount_root
  [ $fail = 0 ] || exit 1
  phase "copy node, npm, resolver, CA, npm settings, source" copy_machine
  phase "ip netns add/exec inside the root" netns_works
  [ $fail = 0 ] || exit 1
  phase "npm install" npm_install
  [ $fail = 0 ] || exit 1
  phase "npx flannelctl lab" lab
  phase "npm test" npm_test
  exit $fail
fi

# ---------------------------------------------------------------------------------------------------------
# Outside: the cached root, the source, then the namespaces; the work directory is removed also on failure.
[ "$(id -u)" = 0 ] || { echo "fresh: needs root (chroot, mounts, namespaces)" >&2; exit 1; }
repo=$(cd "$(dirname "$0")/../.." && pwd)
total=$SECONDS

start=$SECONDS
lower=$("$repo/test/fresh/root.sh")
say "cached root $lower: $((SECONDS - start)) s"

work=$(mktemp -d /var/tmp/flannelts-fresh.XXXXXX)
cleanup() {
  if [ -n "${FRESH_LOGS:-}" ] && [ -d "$work/logs" ]; then mkdir -p "$FRESH_LOGS" && cp "$work"/logs/*.log "$FRESH_LOGS"/ && say "logs kept in $FRESH_LOGS"; fi
  # The mounts lived in the check's own mount namespace; refuse to delete anything still mounted here.
  if grep -qF " $work/" /proc/self/mountinfo; then
    say "left $work in place: something is still mounted under it"
  else
    rm -rf --one-file-system "$work"
  fi
}
trap cleanup EXIT

ref=${FRESH_REF:-HEAD}
git -C "$repo" diff --quiet HEAD 2>/dev/null || say "note: the worktree has changes that are not committed; checking $ref"
git -C "$repo" archive --format=tar -o "$work/source.tar" "$ref"
say "source: $(git -C "$repo" rev-parse --short "$ref")"

rc=0
unshare --mount --propagation private --pid --fork --mount-proc --kill-child "$0" --inside "$lower" "$work" "$repo" || rc=$?
say "total $((SECONDS - total)) s, $([ $rc = 0 ] && echo passed || echo "FAILED (exit $rc)")"
exit $rc
