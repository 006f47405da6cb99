// CIDR math over bigint addresses: the subnet arithmetic flannel's pkg/ip does for IP4Net and IP6Net.
import { familyBits, formatIP, parseIP } from './addr.js';
import type { Family, IPAddr, IPNet } from './types.js';

/** An address together with the prefix written after it (host bits kept), e.g. 198.19.90.1/24. */
export interface IPWithPrefix {
  readonly ip: IPAddr;
  readonly prefixLen: number;
}

/** Mask with the top `prefixLen` bits set. */
export function prefixMask(family: Family, prefixLen: number): bigint {
  const bits = BigInt(familyBits(family));
  const all = (1n << bits) - 1n;
  return all ^ ((1n << (bits - BigInt(prefixLen))) - 1n);
}

/** Number of addresses in one network of this prefix length. */
export function blockSize(family: Family, prefixLen: number): bigint {
  return 1n << BigInt(familyBits(family) - prefixLen);
}

/**
 * Parses `addr/len` keeping the host bits (Go's net.ParseCIDR first result). The address family comes
 * from the text: anything with `:` is IPv6 (a mapped IPv4 in CIDR form stays IPv6, 128-bit prefix).
 */
export function parseIPWithPrefix(s: string): IPWithPrefix | undefined {
  const slash = s.indexOf('/');
  if (slash < 0 || slash !== s.lastIndexOf('/')) return undefined;
  const addrText = s.slice(0, slash);
  const lenText = s.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText)) return undefined;
  const prefixLen = Number(lenText);
  let ip = parseIP(addrText);
  if (!ip) return undefined;
  if (addrText.includes(':') && ip.family === 4) ip = { family: 6, value: ip.value | (0xffffn << 32n) };
  if (prefixLen > familyBits(ip.family)) return undefined;
  return { ip, prefixLen };
}

/** Parses `addr/len` and zeroes the host bits, as Go's net.ParseCIDR network result does. */
export function parseCIDR(s: string): IPNet | undefined {
  const p = parseIPWithPrefix(s);
  return p ? networkOf(p.ip, p.prefixLen) : undefined;
}

/** The network of the given length containing `ip`. */
export function networkOf(ip: IPAddr, prefixLen: number): IPNet {
  return { family: ip.family, value: ip.value & prefixMask(ip.family, prefixLen), prefixLen };
}

/** Same as mask(): the network `n` with host bits cleared for a (possibly different) length. */
export function maskNet(n: IPNet, prefixLen = n.prefixLen): IPNet {
  return networkOf({ family: n.family, value: n.value }, prefixLen);
}

export function formatCIDR(n: IPNet): string {
  return `${formatIP({ family: n.family, value: n.value })}/${n.prefixLen}`;
}

export function netEqual(a: IPNet, b: IPNet): boolean {
  return a.family === b.family && a.value === b.value && a.prefixLen === b.prefixLen;
}

/** The network address as an IPAddr. */
export function netAddr(n: IPNet): IPAddr {
  return { family: n.family, value: n.value };
}

export function lastAddr(n: IPNet): IPAddr {
  return { family: n.family, value: n.value + blockSize(n.family, n.prefixLen) - 1n };
}

export function containsIP(n: IPNet, ip: IPAddr): boolean {
  return n.family === ip.family && (ip.value & prefixMask(n.family, n.prefixLen)) === n.value;
}

/** True when `inner` lies entirely inside `outer`. */
export function containsNet(outer: IPNet, inner: IPNet): boolean {
  return inner.prefixLen >= outer.prefixLen && containsIP(outer, netAddr(inner));
}

export function overlaps(a: IPNet, b: IPNet): boolean {
  if (a.family !== b.family) return false;
  const shorter = Math.min(a.prefixLen, b.prefixLen);
  const m = prefixMask(a.family, shorter);
  return (a.value & m) === (b.value & m);
}

/** Network + 1: the address flannel gives the bridge/TUN and writes as FLANNEL_SUBNET. */
export function firstUsable(n: IPNet): IPAddr {
  return { family: n.family, value: n.value + 1n };
}

/** The next network of the same length; undefined past the end of the address space. */
export function nextSubnet(n: IPNet): IPNet | undefined {
  const value = n.value + blockSize(n.family, n.prefixLen);
  if (value >> BigInt(familyBits(n.family)) !== 0n) return undefined;
  return { family: n.family, value, prefixLen: n.prefixLen };
}

/** How many `subnetLen` networks lie between first and last (inclusive network addresses). */
export function countSubnets(first: IPAddr, last: IPAddr, subnetLen: number): bigint {
  if (last.value < first.value) return 0n;
  return (last.value - first.value) / blockSize(first.family, subnetLen) + 1n;
}

/** The subnets of length `subnetLen` from min to max inclusive, in order; lazy (IPv6 ranges are huge). */
export function* iterateSubnets(min: IPAddr, max: IPAddr, subnetLen: number): Generator<IPNet> {
  const step = blockSize(min.family, subnetLen);
  for (let v = min.value & prefixMask(min.family, subnetLen); v <= max.value; v += step) {
    yield { family: min.family, value: v, prefixLen: subnetLen };
  }
}

/** Random integer in [0, n); injectable so tests are deterministic. */
export type RandomInt = (n: number) => number;
export const mathRandomInt: RandomInt = (n) => Math.floor(Math.random() * n);

/**
 * flannel's pick: walk from min, collect the first `candidates` subnets that overlap nothing taken,
 * then choose one at random. Undefined when none is free.
 */
export function pickFreeSubnet(
  min: IPAddr,
  max: IPAddr,
  subnetLen: number,
  taken: readonly IPNet[],
  random: RandomInt = mathRandomInt,
  candidates = 100,
): IPNet | undefined {
  const sameFamily = taken.filter((t) => t.family === min.family);
  // Exact-length leases are the common case: a set lookup keeps a full /16 of /30s fast.
  const takenExact = new Set(sameFamily.filter((t) => t.prefixLen === subnetLen).map((t) => t.value));
  const takenOther = sameFamily.filter((t) => t.prefixLen !== subnetLen);
  const free: IPNet[] = [];
  for (const sn of iterateSubnets(min, max, subnetLen)) {
    if (free.length >= candidates) break;
    if (takenExact.has(sn.value) || takenOther.some((t) => overlaps(t, sn))) continue;
    free.push(sn);
  }
  if (free.length === 0) return undefined;
  const i = random(free.length);
  return free[Math.min(Math.max(0, i), free.length - 1)];
}
