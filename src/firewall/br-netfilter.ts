// flannel's br_netfilter check (v0.26.0): in iptables mode the bridge-nf-call sysctls must exist, or
// traffic between pods on the node's bridge bypasses iptables (kubeadm >= 1.30 stopped checking it).
// nftables mode skips it, as flannel's does.
import { existsSync } from 'node:fs';
import type { NetworkConfig } from '../config/types.js';

export const BRIDGE_NF_CALL_IPTABLES = '/proc/sys/net/bridge/bridge-nf-call-iptables';
export const BRIDGE_NF_CALL_IP6TABLES = '/proc/sys/net/bridge/bridge-nf-call-ip6tables';

/** The one-line reason the check fails, or undefined when the module is loaded (or not needed). */
export function brNetfilterProblem(config: NetworkConfig, exists: (path: string) => boolean = existsSync): string | undefined {
  if (config.enableNFTables) return undefined;
  const missing = [config.enableIPv4 ? BRIDGE_NF_CALL_IPTABLES : undefined, config.enableIPv6 ? BRIDGE_NF_CALL_IP6TABLES : undefined].filter(
    (p): p is string => p !== undefined && !exists(p),
  );
  if (missing.length === 0) return undefined;
  return (
    `Failed to check br_netfilter: ${missing.join(' and ')} does not exist: the br_netfilter kernel module is not loaded. ` +
    'Load it (modprobe br_netfilter, and list it in /etc/modules-load.d/ for the next boot), or use net-conf EnableNFTables; ' +
    '-br-netfilter-check=false skips this check where pods are not on a Linux bridge'
  );
}
