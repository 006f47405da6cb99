// Two real engines speaking WireGuard without root (engine-rig.ts: FakeTuns, loopback underlay):
// A on 127.0.0.1 owns 198.19.1.0/24 + 2001:db8:100:1::/64, B on 127.0.0.2 owns 198.19.2.0/24 +
// 2001:db8:100:2::/64, each the other's peer with endpoint and allowed IPs, as the backend sets them.
import { randomBytes } from 'node:crypto';
import { wireguardNative, type WgInterface } from '../../src/native/wireguard.js';
import { EngineRig, NO_TUN_OFFLOADS, type RigOptions } from './engine-rig.js';

export interface WgNode {
  rig: EngineRig;
  wg: WgInterface;
  key: Buffer;
  address: string;
  subnets: string[];
}

export interface WgPairOptions {
  a?: Partial<RigOptions>;
  b?: Partial<RigOptions>;
  psk?: Buffer;
  keepalive?: number;
  /** Test hook: every protocol duration divided by this. */
  timingScale?: number;
  /** B has no endpoint for A (learns it from A's first handshake). */
  bKnowsA?: boolean;
  mtu?: number;
}

export function wgNode(address: string, subnets: string[], o: Partial<RigOptions> & { timingScale?: number; mtu?: number } = {}): WgNode {
  const { timingScale, mtu, ...rest } = o;
  const key = randomBytes(32);
  const wg = new (wireguardNative().Interface)({ privateKey: key, mtu: mtu ?? 1420, ...(timingScale ? { timingScale } : {}) });
  const rig = EngineRig.open({ tunOffloads: NO_TUN_OFFLOADS, address, encap: 'wireguard', wireguard: wg, ...rest });
  return { rig, wg, key, address, subnets };
}

/** A peer as another node configures it: its key, where it listens, its allowed IPs. */
export interface PeerDesc {
  publicKey: Buffer;
  address: string;
  port: number;
  subnets: string[];
}

export const descOf = (n: WgNode): PeerDesc => ({ publicKey: n.wg.publicKey(), address: n.address, port: n.rig.port, subnets: n.subnets });

/**
 * Configures `to` as a peer of `on` (endpoint unless withEndpoint is false) and pushes the routes of
 * every peer given so far (peers already configured stay: `others` are their descriptions).
 */
export function peer(on: WgNode, to: PeerDesc, o: { psk?: Buffer; keepalive?: number; withEndpoint?: boolean; others?: PeerDesc[] } = {}): void {
  const endpoint = o.withEndpoint === false ? undefined : { address: to.address, port: to.port };
  on.wg.setPeer({ publicKey: to.publicKey, ...(o.psk ? { psk: o.psk } : {}), ...(endpoint ? { endpoint } : {}), persistentKeepalive: o.keepalive ?? 0 });
  const routes = (d: PeerDesc, withEp: boolean) =>
    d.subnets.map((subnet) => ({ subnet, publicIP: withEp ? d.address : '', port: withEp ? d.port : 0, publicKey: d.publicKey.toString('hex') }));
  on.rig.engine.setPeers([...(o.others ?? []).flatMap((d) => routes(d, true)), ...routes(to, endpoint !== undefined)]);
}

export function wgPair(o: WgPairOptions = {}): [WgNode, WgNode] {
  const extra = { ...(o.timingScale ? { timingScale: o.timingScale } : {}), ...(o.mtu ? { mtu: o.mtu } : {}) };
  const A = wgNode('127.0.0.1', ['198.19.1.0/24', '2001:db8:100:1::/64'], { ...o.a, ...extra });
  const B = wgNode('127.0.0.2', ['198.19.2.0/24', '2001:db8:100:2::/64'], { port: A.rig.port, ...o.b, ...extra });
  peer(A, descOf(B), { psk: o.psk, keepalive: o.keepalive });
  peer(B, descOf(A), { psk: o.psk, keepalive: o.keepalive, withEndpoint: o.bKnowsA !== false });
  A.rig.engine.start();
  B.rig.engine.start();
  return [A, B];
}

export function closeNode(n: WgNode): void {
  n.rig.close();
  n.wg.close();
}
