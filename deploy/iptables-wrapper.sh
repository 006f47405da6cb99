#!/bin/sh
# iptables-wrapper: run the iptables variant (legacy or nft) whose rules the host already has, as
# flannel's image does with kubernetes-sigs/iptables-wrappers. A container with host networking shares
# the host's netfilter, so it must use the same backend as kubelet and kube-proxy on that host: rules
# written through the other one work, but sit in tables the host's tools never show.
#
#   iptables-wrapper install   (image build) make iptables, ip6tables and their -save/-restore this script
#   iptables ...               (first call) pick the variant, point the alternatives at it, run it
#
# The pick: kubelet's marker chains (KUBE-IPTABLES-HINT, KUBE-KUBELET-CANARY in mangle) in nft, then in
# legacy, as iptables-wrappers looks for them; without kubelet, the variant holding more rules; nft when
# neither holds any. Once picked, the alternatives point at the real binaries and this script is out of
# the way. On a read-only root the switch fails and each call picks again.
set -eu

sbin=${IPTABLES_WRAPPER_SBIN:-/usr/sbin}   # tests point it at fakes
marker='^:(KUBE-IPTABLES-HINT|KUBE-KUBELET-CANARY)'

rules() { # variant, then extra iptables-save arguments; both families' output
  variant=$1
  shift
  "$sbin/xtables-$variant-multi" iptables-save "$@" 2>/dev/null || true
  "$sbin/xtables-$variant-multi" ip6tables-save "$@" 2>/dev/null || true
}

pick() {
  # nft-save of one table is cheap and creates nothing; legacy-save of one table would create it.
  if rules nft -t mangle | grep -Eq "$marker"; then echo nft; return; fi
  legacy=$(rules legacy)
  if printf '%s\n' "$legacy" | grep -Eq "$marker"; then echo legacy; return; fi
  nlegacy=$(printf '%s\n' "$legacy" | grep -c '^-' || true)
  nnft=$(rules nft | grep -c '^-' || true)
  if [ "$nlegacy" -gt "$nnft" ]; then echo legacy; else echo nft; fi
}

case "$(basename "$0")" in
  iptables-wrapper | iptables-wrapper.sh)
    if [ "${1:-}" != install ]; then
      echo "usage: iptables-wrapper install   (then run iptables, ip6tables, ...-save, ...-restore)" >&2
      exit 2
    fi
    for family in iptables ip6tables; do
      for v in legacy nft; do
        [ -x "$sbin/$family-$v" ] || { echo "iptables-wrapper: $sbin/$family-$v missing (apt-get install iptables)" >&2; exit 1; }
      done
      update-alternatives --quiet --install "$sbin/$family" "$family" "$sbin/iptables-wrapper" 100 \
        --slave "$sbin/$family-restore" "$family-restore" "$sbin/iptables-wrapper" \
        --slave "$sbin/$family-save" "$family-save" "$sbin/iptables-wrapper"
    done
    exit 0
    ;;
esac

cmd=$(basename "$0")                   # iptables, ip6tables-restore, ...
family=${cmd%%-*}                      # iptables | ip6tables
case "$family" in iptables | ip6tables) ;; *) echo "iptables-wrapper: called as $cmd" >&2; exit 2 ;; esac
mode=$(pick)
if ! { update-alternatives --quiet --set iptables "$sbin/iptables-$mode" && update-alternatives --quiet --set ip6tables "$sbin/ip6tables-$mode"; } >/dev/null 2>&1; then
  echo "iptables-wrapper: could not point the iptables alternatives at iptables-$mode (read-only /usr/sbin or /etc?); running it directly" >&2
fi
exec "$sbin/$family-$mode${cmd#"$family"}" "$@"
