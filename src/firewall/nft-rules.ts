// flannel's nftables rules (pkg/trafficmngr/nftables on v0.28.9, written through knftables), as data,
// and the `nft -f` text knftables makes of them. Tables `ip flannel-ipv4` and `ip6 flannel-ipv6`,
// always both; per enabled family a base chain `forward` (filter hook, accepts overlay traffic) and a
// base chain `postrtg` (nat postrouting, masquerade). Pure; apply and read-back are nft.ts and
// nft-firewall.ts.
//
// One deliberate difference: flannel matches kube-proxy's mark as `meta mark 0x4000` (the whole mark
// equal to 0x4000); its iptables rule, and ours here, test the bit: `meta mark & 0x4000 == 0x4000`.
import { formatCIDR, type Family, type IPNet } from '../ip/index.js';

export type NftFamily = 'ip' | 'ip6';

export interface NftTable {
  family: NftFamily;
  name: string;
}

export const NFT_TABLES: Readonly<Record<Family, NftTable>> = {
  4: { family: 'ip', name: 'flannel-ipv4' },
  6: { family: 'ip6', name: 'flannel-ipv6' },
};

export type NftChainName = 'forward' | 'postrtg';
export const NFT_CHAINS: readonly NftChainName[] = ['forward', 'postrtg'];

export interface NftChain {
  table: NftTable;
  name: NftChainName | string;
  type: 'filter' | 'nat';
  hook: 'forward' | 'postrouting';
  /** knftables writes named priorities as numbers: filter 0, srcnat 100. */
  priority: number;
  comment: string;
  /** Rule bodies in order (what follows `add rule <family> <table> <chain>`). */
  rules: string[];
}

/** knftables quotes with Go's %q; flannel's comments are plain ASCII, so JSON quoting is identical. */
const q = (s: string): string => JSON.stringify(s);

export const KUBE_PROXY_MARK_NFT = 'meta mark & 0x4000 == 0x4000';

/** flannel's forward chain: accept anything from or to the overlay network. */
export function forwardChain(family: Family, network: IPNet): NftChain {
  const p = family === 4 ? 'ip' : 'ip6';
  const n = formatCIDR(network);
  return {
    table: NFT_TABLES[family],
    name: 'forward',
    type: 'filter',
    hook: 'forward',
    priority: 0,
    comment: 'chain to accept flannel traffic',
    rules: [`${p} saddr ${n} accept`, `${p} daddr ${n} accept`],
  };
}

/**
 * flannel's postrtg chain, in its order: kube-proxy's mark, no NAT inside the overlay (both ways), no NAT
 * for what comes from elsewhere to the cluster network, masquerade pod -> outside (not multicast),
 * masquerade host -> cluster. (The fourth rule is flannel's nftables rule, `saddr != <our subnet>`,
 * which differs from its iptables rule `! -s <network> -d <our subnet>`; we keep flannel's.)
 */
export function postrtgChain(family: Family, network: IPNet, subnet: IPNet, fullyRandom: boolean): NftChain {
  const p = family === 4 ? 'ip' : 'ip6';
  const cluster = formatCIDR(network);
  const pod = formatCIDR(subnet);
  const multicast = family === 4 ? '224.0.0.0/4' : 'ff00::/8';
  const masq = fullyRandom ? 'masquerade fully-random' : 'masquerade';
  return {
    table: NFT_TABLES[family],
    name: 'postrtg',
    type: 'nat',
    hook: 'postrouting',
    priority: 100,
    comment: 'chain to manage traffic masquerading by flannel',
    rules: [
      `${KUBE_PROXY_MARK_NFT} return`,
      `${p} saddr ${pod} ${p} daddr ${cluster} return`,
      `${p} saddr ${cluster} ${p} daddr ${pod} return`,
      `${p} saddr != ${pod} ${p} daddr ${cluster} return`,
      `${p} saddr ${cluster} ${p} daddr != ${multicast} ${masq}`,
      `${p} saddr != ${cluster} ${p} daddr ${cluster} ${masq}`,
    ],
  };
}

/** `add table` as knftables writes it (flannel's Init): a table comment "rules for <name>". */
export function addTableLine(t: NftTable): string {
  return `add table ${t.family} ${t.name} { comment ${q(`rules for ${t.name}`)} ; }`;
}

/** knftables' add-chain, flush, add-rules: one chain set up from scratch inside a transaction. */
export function chainLines(c: NftChain): string[] {
  const at = `${c.table.family} ${c.table.name} ${c.name}`;
  return [
    `add chain ${at} { type ${c.type} hook ${c.hook} priority ${c.priority} ; comment ${q(c.comment)} ; }`,
    `flush chain ${at}`,
    ...c.rules.map((r) => `add rule ${at} ${r}`),
  ];
}

export function deleteChainLine(t: NftTable, chain: string): string {
  return `delete chain ${t.family} ${t.name} ${chain}`;
}

export function deleteTableLine(t: NftTable): string {
  return `delete table ${t.family} ${t.name}`;
}

/**
 * flannel's probe for `masquerade fully-random` (checkRandomfully): a nat chain with one such rule in
 * the IPv4 table, only ever given to `nft --check`, so nothing is created.
 */
export function fullyRandomProbe(): string {
  const t = NFT_TABLES[4];
  const at = `${t.family} ${t.name} masqueradeTest`;
  return [
    addTableLine(t),
    `add chain ${at} { type nat hook postrouting priority 100 ; comment ${q('chain to test if masquerade random fully is supported')} ; }`,
    `flush chain ${at}`,
    `add rule ${at} ip saddr != 127.0.0.1 masquerade fully-random`,
  ].join('\n') + '\n';
}
