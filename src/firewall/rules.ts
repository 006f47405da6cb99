// flannel's iptables rules (pkg/trafficmngr/iptables/iptables.go on main), as data: the masquerade
// chain FLANNEL-POSTRTG in nat (jumped to from POSTROUTING) and the forward-accept chain FLANNEL-FWD in
// filter (jumped to from FORWARD). Pure functions; the text is byte-for-byte what flannel feeds to
// iptables-restore and what iptables-save prints back.
import { formatCIDR, type Family, type IPNet } from '../ip/index.js';

export type Table = 'filter' | 'nat';

export interface Rule {
  table: Table;
  chain: string;
  /** Everything after `-A <chain>`. */
  spec: readonly string[];
}

export const MASQ_CHAIN = 'FLANNEL-POSTRTG';
export const FORWARD_CHAIN = 'FLANNEL-FWD';
/** kube-proxy's masquerade mark: traffic it already marked is not masqueraded twice. */
export const KUBE_PROXY_MARK = '0x4000/0x4000';
const MASQ_COMMENT = ['-m', 'comment', '--comment', 'flanneld masq'];
const FWD_COMMENT = ['-m', 'comment', '--comment', 'flanneld forward'];

/** Multicast is never masqueraded. */
const multicast = (family: Family): string => (family === 4 ? '224.0.0.0/4' : 'ff00::/8');

/**
 * Masquerade rules for one family, in flannel's order: jump, kube-proxy mark RETURN, pod<->cluster
 * RETURNs, no NAT for outside traffic to our pods, MASQUERADE pod -> outside (not multicast),
 * MASQUERADE host -> cluster.
 */
export function masqRules(network: IPNet, subnet: IPNet, randomFully: boolean): Rule[] {
  const cluster = formatCIDR(network);
  const pod = formatCIDR(subnet);
  const masq = randomFully ? ['-j', 'MASQUERADE', '--random-fully'] : ['-j', 'MASQUERADE'];
  const r = (chain: string, spec: string[]): Rule => ({ table: 'nat', chain, spec });
  return [
    r('POSTROUTING', [...MASQ_COMMENT, '-j', MASQ_CHAIN]),
    r(MASQ_CHAIN, ['-m', 'mark', '--mark', KUBE_PROXY_MARK, ...MASQ_COMMENT, '-j', 'RETURN']),
    r(MASQ_CHAIN, ['-s', pod, '-d', cluster, ...MASQ_COMMENT, '-j', 'RETURN']),
    r(MASQ_CHAIN, ['-s', cluster, '-d', pod, ...MASQ_COMMENT, '-j', 'RETURN']),
    r(MASQ_CHAIN, ['!', '-s', cluster, '-d', pod, ...MASQ_COMMENT, '-j', 'RETURN']),
    r(MASQ_CHAIN, ['-s', cluster, '!', '-d', multicast(network.family), ...MASQ_COMMENT, ...masq]),
    r(MASQ_CHAIN, ['!', '-s', cluster, '-d', cluster, ...MASQ_COMMENT, ...masq]),
  ];
}

/** Forward rules: accept anything from or to the overlay network (Docker >= 1.13 sets FORWARD to DROP). */
export function forwardRules(network: IPNet): Rule[] {
  const n = formatCIDR(network);
  return [
    { table: 'filter', chain: 'FORWARD', spec: [...FWD_COMMENT, '-j', FORWARD_CHAIN] },
    { table: 'filter', chain: FORWARD_CHAIN, spec: ['-s', n, ...FWD_COMMENT, '-j', 'ACCEPT'] },
    { table: 'filter', chain: FORWARD_CHAIN, spec: ['-d', n, ...FWD_COMMENT, '-j', 'ACCEPT'] },
  ];
}

/** The chains flannel owns (created, flushed and removed by us); everything else is a built-in chain. */
export const OWN_CHAINS: ReadonlySet<string> = new Set([MASQ_CHAIN, FORWARD_CHAIN]);

/** One iptables-restore line; the argument after --comment is quoted, as flannel's payload builder does. */
export function ruleLine(action: '-A' | '-D', r: Rule): string {
  const args = r.spec.map((a, i) => (i > 0 && r.spec[i - 1] === '--comment' ? `"${a}"` : a));
  return [action, r.chain, ...args].join(' ');
}
