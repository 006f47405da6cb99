// flannel's per-peer decision of the vxlan backend (handleSubnetEvents), shared by the kernel devices
// and the userspace VTEP: a remote lease becomes a neighbour (subnet address -> VtepMAC), an FDB entry
// (VtepMAC -> public IP) and an onlink route, or with DirectRouting a plain route via its public IP.
import { formatCIDR, type IPAddr, type IPNet } from '../../ip/index.js';
import type { Lease } from '../../subnet/types.js';
import { emptyEntries, entryKey, type PeerEntries } from '../peer-entries.js';
import { decodeVxlanBackendData } from './vxlan-options.js';
import type { VxlanDeviceSpec } from './vxlan-device.js';

export interface VxlanDev {
  index: number;
  name: string;
  mac: string;
  mtu: number;
  /** How it was created, to recreate it identically if it disappears. */
  spec?: VxlanDeviceSpec;
}

export interface PeerContext {
  v4?: VxlanDev;
  v6?: VxlanDev;
  directRouting: boolean;
  /** The underlay device index when `ip` is directly connected (route get: no gateway), else undefined. */
  directOif(ip: IPAddr): number | undefined;
}

export type PeerResult = { ok: true; entries: PeerEntries; direct: number } | { ok: false; kind: 'type' | 'data'; reason: string };

export const subnetAddr = (n: IPNet): IPAddr => ({ family: n.family, value: n.value });

/** Exactly flannel's entries for one remote lease (handleSubnetEvents), or why it is skipped. */
export function vxlanPeerEntries(l: Lease, ctx: PeerContext): PeerResult {
  if (l.attrs.backendType !== 'vxlan') {
    return { ok: false, kind: 'type', reason: `ignoring non-vxlan v4Subnet(${l.subnet ? formatCIDR(l.subnet) : '<nil>'}) v6Subnet(${l.ipv6Subnet ? formatCIDR(l.ipv6Subnet) : '<nil>'}): type=${l.attrs.backendType}` };
  }
  const entries = emptyEntries();
  let direct = 0;
  const family = (dev: VxlanDev | undefined, subnet: IPNet | undefined, publicIP: IPAddr | undefined, data: unknown, label: string): string | undefined => {
    if (!dev || !subnet) return undefined;
    const d = decodeVxlanBackendData(data);
    if (!d.ok) return `error decoding ${label}subnet lease JSON for ${formatCIDR(subnet)}: ${d.error}`;
    if (!publicIP) return `lease ${formatCIDR(subnet)} has no ${label === '' ? 'PublicIP' : 'PublicIPv6'}`;
    const oif = ctx.directRouting ? ctx.directOif(publicIP) : undefined;
    if (oif !== undefined) {
      direct++;
      entries.routes.push({ dst: subnet, gateway: publicIP, oif, onlink: false });
      return undefined;
    }
    entries.neighs.push({ index: dev.index, dst: subnetAddr(subnet), mac: d.mac });
    entries.fdbs.push({ index: dev.index, mac: d.mac, dst: publicIP });
    entries.routes.push({ dst: subnet, gateway: subnetAddr(subnet), oif: dev.index, onlink: true });
    return undefined;
  };
  // flannel skips the whole lease when either family's data does not decode.
  const e4 = family(ctx.v4, l.subnet, l.attrs.publicIP, l.attrs.backendData, '');
  if (e4) return { ok: false, kind: 'data', reason: e4 };
  const e6 = family(ctx.v6, l.ipv6Subnet, l.attrs.publicIPv6, l.attrs.backendV6Data, 'v6 ');
  if (e6) return { ok: false, kind: 'data', reason: e6 };
  return { ok: true, entries, direct };
}

/** Entries of `a` that `b` does not have identically (what to remove when a peer's lease changes). */
export function entriesMinus(a: PeerEntries, b: PeerEntries): PeerEntries {
  const has = new Set([...b.routes, ...b.neighs, ...b.fdbs].map(entryKey));
  return { routes: a.routes.filter((x) => !has.has(entryKey(x))), neighs: a.neighs.filter((x) => !has.has(entryKey(x))), fdbs: a.fdbs.filter((x) => !has.has(entryKey(x))) };
}
