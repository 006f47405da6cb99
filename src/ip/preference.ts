// Which of an interface's addresses flannel advertises, as v0.28's pkg/ip (GetInterfaceIP4Addrs /
// GetInterfaceIP6Addrs) picks them: global-unicast or link-local-unicast only, deprecated ones skipped,
// then global before link-local, permanent (configured) before dynamic, non-temporary before temporary
// (RFC 4941 privacy addresses). flannel sorts with an unstable sort; ties here keep the kernel's dump
// order (for IPv4 the primary address first), so the same machine always gives the same answer.
import type { Family, IPAddr } from './types.js';

/** IFA_F_* bits of an address (linux/if_addr.h); ip/ stays below netlink/, so they are spelled here. */
export const IFA_F_TEMPORARY = 0x01;
export const IFA_F_DEPRECATED = 0x20;
export const IFA_F_PERMANENT = 0x80;

export interface FlaggedAddr {
  addr: IPAddr;
  /** IFA_F_* flags; absent counts as none (dynamic, not deprecated, not temporary). */
  flags?: number;
}

const v4 = (a: number, b: number, c: number, d: number): bigint => BigInt(((a << 24) >>> 0) + (b << 16) + (c << 8) + d);
const inNet = (ip: IPAddr, net: bigint, prefix: number, bits: number): boolean => ip.value >> BigInt(bits - prefix) === net >> BigInt(bits - prefix);

/** Go's net.IP.IsLinkLocalUnicast: 169.254.0.0/16, fe80::/10. */
export function isLinkLocalUnicast(ip: IPAddr): boolean {
  return ip.family === 4 ? inNet(ip, v4(169, 254, 0, 0), 16, 32) : inNet(ip, 0xfe80n << 112n, 10, 128);
}

/** Go's net.IP.IsGlobalUnicast: not unspecified, loopback, multicast, link-local or the IPv4 broadcast. */
export function isGlobalUnicast(ip: IPAddr): boolean {
  if (ip.value === 0n || isLinkLocalUnicast(ip)) return false;
  if (ip.family === 4) return ip.value !== v4(255, 255, 255, 255) && !inNet(ip, v4(127, 0, 0, 0), 8, 32) && !inNet(ip, v4(224, 0, 0, 0), 4, 32);
  return ip.value !== 1n && !inNet(ip, 0xffn << 120n, 8, 128);
}

/** flannel's compareAddrs: < 0 when `a` is preferred. */
function compare(a: FlaggedAddr, b: FlaggedAddr): number {
  const rank = (x: FlaggedAddr): number[] => {
    const f = x.flags ?? 0;
    return [isGlobalUnicast(x.addr) ? 0 : 1, f & IFA_F_PERMANENT ? 0 : 1, f & IFA_F_TEMPORARY ? 1 : 0];
  };
  const ra = rank(a);
  const rb = rank(b);
  for (let i = 0; i < ra.length; i++) if (ra[i] !== rb[i]) return ra[i]! - rb[i]!;
  return 0;
}

/** The usable addresses of one family in the order flannel prefers them; the first is the one it uses. */
export function preferredAddrs<T extends FlaggedAddr>(addrs: readonly T[], family: Family): T[] {
  return addrs
    .filter((a) => a.addr.family === family && (isGlobalUnicast(a.addr) || isLinkLocalUnicast(a.addr)) && ((a.flags ?? 0) & IFA_F_DEPRECATED) === 0)
    .map((a, i) => ({ a, i }))
    .sort((x, y) => compare(x.a, y.a) || x.i - y.i)
    .map((x) => x.a);
}
