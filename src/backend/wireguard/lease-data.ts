// What a wireguard lease carries and what we make of a peer's lease, as flannel's
// wireguard_network.go does: BackendData / BackendV6Data {"PublicKey","Port"}, the endpoint per Mode
// (auto: flannel's selectMode), allowed IPs per device, and the peer key a removed lease takes away.
import { formatIP, type Family, type IPAddr, type IPNet } from '../../ip/index.js';
import type { Lease } from '../../subnet/types.js';
import { optionField } from '../backend-options.js';
import type { WgMode } from './options.js';

/** Key order PublicKey, Port: what Go's json.Marshal of flannel's wireguardLeaseAttrs writes. */
export interface WgBackendData {
  PublicKey: string;
  Port: number;
}

export function wgBackendData(publicKey: string, port: number): WgBackendData {
  return { PublicKey: publicKey, Port: port };
}

export type DecodedWgData = { ok: true; publicKey: string; port: number } | { ok: false; error: string };

/**
 * A peer's BackendData as Go's json.Unmarshal fills wireguardLeaseAttrs{PublicKey string; Port uint16}:
 * keys case-insensitive, absent fields zero, wrong types errors. Absent data decodes to zeros, as
 * flannel skips the Unmarshal then.
 */
export function decodeWgBackendData(data: unknown): DecodedWgData {
  if (data === undefined || data === null) return { ok: true, publicKey: '', port: 0 };
  if (typeof data !== 'object' || Array.isArray(data)) return { ok: false, error: `BackendData is not a JSON object: ${JSON.stringify(data)?.slice(0, 60)}` };
  const rec = data as Record<string, unknown>;
  const pick = (name: string): unknown => optionField(rec, name);
  const key = pick('PublicKey');
  if (key !== undefined && key !== null && typeof key !== 'string') return { ok: false, error: `BackendData.PublicKey ${JSON.stringify(key)} is not a string` };
  const port = pick('Port');
  if (port !== undefined && port !== null && (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535)) {
    return { ok: false, error: `BackendData.Port ${JSON.stringify(port)} is not a uint16` };
  }
  return { ok: true, publicKey: typeof key === 'string' ? key : '', port: typeof port === 'number' ? port : 0 };
}

/** flannel's ip.IP4.IsPrivate: RFC 1918. */
export function isRfc1918(ip: IPAddr): boolean {
  const v = Number(ip.value);
  const a = v >>> 24;
  const b = (v >>> 16) & 0xff;
  return a === 10 || (a === 172 && (b & 0xf0) === 16) || (a === 192 && b === 168);
}

/**
 * flannel's ip.IP6.IsPrivate: RFC 4193 (fc00::/7), tested on the first byte of the address as a
 * big.Int, i.e. the first non-zero byte (flannel's own quirk, kept).
 */
export function isUla(ip: IPAddr): boolean {
  let v = ip.value;
  if (v === 0n) return false;
  while (v >= 256n) v >>= 8n;
  return (Number(v) & 0xfe) === 0xfc;
}

/**
 * Mode auto (flannel's selectMode): IPv4 unless the peer's IPv4 is private (RFC 1918) or we have no
 * IPv4, and both the peer and we have an IPv6 that is not ULA; IPv4 otherwise too.
 */
export function selectEndpointFamily(peerV4: IPAddr | undefined, peerV6: IPAddr | undefined, ourV4: IPAddr | undefined, ourV6: IPAddr | undefined): Family {
  if (!peerV6) return 4;
  if (peerV4 && !isRfc1918(peerV4) && ourV4) return 4;
  if (!isUla(peerV6) && ourV6 && !isUla(ourV6)) return 6;
  return 4;
}

export const formatEndpoint = (ip: IPAddr, port: number): string => (ip.family === 4 ? `${formatIP(ip)}:${port}` : `[${formatIP(ip)}]:${port}`);

/** Which of our devices a peer goes on: separate mode has one per family, the others one for both. */
export type WgDeviceSlot = 'v4' | 'v6' | 'single';

export interface WgPeerPlan {
  slot: WgDeviceSlot;
  publicKey: string;
  /** "ip:port" / "[ip6]:port"; undefined when the lease has no address of the chosen family. */
  endpoint?: string;
  allowedIPs: IPNet[];
}

export interface WgPeerContext {
  mode: WgMode;
  /** Our devices' families: separate mode may have either or both. */
  enableIPv4: boolean;
  enableIPv6: boolean;
  /** Our listen ports, for a lease without Port (flannel before v0.26.6). */
  listenPort: number;
  listenPortV6: number;
  /** Our addresses (the external interface's), for auto's choice. */
  ourV4?: IPAddr;
  ourV6?: IPAddr;
}

export type WgPlanResult = { ok: true; peers: WgPeerPlan[] } | { ok: false; kind: 'type' | 'data'; reason: string };

/** flannel's handleSubnetEvents for an added lease: the peers to configure on our device(s). */
export function planWgPeers(l: Lease, ctx: WgPeerContext): WgPlanResult {
  if (l.attrs.backendType !== 'wireguard') return { ok: false, kind: 'type', reason: `Ignoring non-wireguard subnet: type=${l.attrs.backendType}` };
  const v4 = ctx.enableIPv4 && l.subnet ? decodeWgBackendData(l.attrs.backendData) : undefined;
  const v6 = ctx.enableIPv6 && l.ipv6Subnet ? decodeWgBackendData(l.attrs.backendV6Data) : undefined;
  for (const d of [v4, v6]) if (d && !d.ok) return { ok: false, kind: 'data', reason: `failed to unmarshal BackendData: ${d.error}` };
  const d4 = v4 as Extract<DecodedWgData, { ok: true }> | undefined;
  const d6 = v6 as Extract<DecodedWgData, { ok: true }> | undefined;
  const single = ctx.mode !== 'separate';
  // A lease without Port means the reader's own listen port; in the single-device modes that is
  // ListenPort for both families (flannel leaves 0 there for IPv6, an endpoint nobody listens on).
  const v4Port = d4?.port || ctx.listenPort;
  const v6Port = d6?.port || (single ? ctx.listenPort : ctx.listenPortV6);
  const ep4 = l.attrs.publicIP ? formatEndpoint(l.attrs.publicIP, v4Port) : undefined;
  const ep6 = l.attrs.publicIPv6 ? formatEndpoint(l.attrs.publicIPv6, v6Port) : undefined;
  const need = (d: { publicKey: string }): WgPlanResult | undefined =>
    d.publicKey ? undefined : { ok: false, kind: 'data', reason: 'lease has no BackendData.PublicKey' };
  if (!single) {
    const peers: WgPeerPlan[] = [];
    if (d4) peers.push({ slot: 'v4', publicKey: d4.publicKey, endpoint: ep4, allowedIPs: [l.subnet!] });
    if (d6) peers.push({ slot: 'v6', publicKey: d6.publicKey, endpoint: ep6, allowedIPs: [l.ipv6Subnet!] });
    for (const p of peers) {
      const bad = need(p);
      if (bad) return bad;
    }
    return { ok: true, peers };
  }
  // One device: the key of the last family decoded (flannel overwrites v4's with v6's), all subnets.
  const data = d6 ?? d4;
  if (!data) return { ok: true, peers: [] };
  const bad = need(data);
  if (bad) return bad;
  const family = ctx.mode === 'ipv4' ? 4 : ctx.mode === 'ipv6' ? 6 : selectEndpointFamily(l.attrs.publicIP, l.attrs.publicIPv6, ctx.ourV4, ctx.ourV6);
  const allowedIPs = [d4 ? l.subnet : undefined, d6 ? l.ipv6Subnet : undefined].filter((n): n is IPNet => n !== undefined);
  return { ok: true, peers: [{ slot: 'single', publicKey: data.publicKey, endpoint: family === 4 ? ep4 : ep6, allowedIPs }] };
}

/** flannel's EventRemoved: the (device, key) pairs a removed lease takes away. */
export function removedWgPeers(l: Lease, ctx: Pick<WgPeerContext, 'mode' | 'enableIPv4' | 'enableIPv6'>): { slot: WgDeviceSlot; publicKey: string }[] {
  if (l.attrs.backendType !== 'wireguard') return [];
  const out: { slot: WgDeviceSlot; publicKey: string }[] = [];
  const single = ctx.mode !== 'separate';
  const add = (slot: WgDeviceSlot, data: unknown) => {
    const d = decodeWgBackendData(data);
    if (d.ok && d.publicKey && !out.some((o) => o.slot === slot && o.publicKey === d.publicKey)) out.push({ slot, publicKey: d.publicKey });
  };
  if (ctx.enableIPv4 && l.subnet) add(single ? 'single' : 'v4', l.attrs.backendData);
  if (ctx.enableIPv6 && l.ipv6Subnet) add(single ? 'single' : 'v6', l.attrs.backendV6Data);
  return out;
}
