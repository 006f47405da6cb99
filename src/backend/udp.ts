// flannel's udp backend: a TUN device (flannel%d) whose packets travel as the raw inner IP packet in
// one UDP datagram (port 8285) to the peer's public address. TypeScript owns the device setup and the
// peer table; the native engine owns the packets.
import type { Backend, BackendContext, ExternalInterface, NetworkStats } from './types.js';
import type { NetworkConfig } from '../config/types.js';
import { formatCIDR, formatIP } from '../ip/index.js';
import { log } from '../log.js';
import type { Lease } from '../subnet/types.js';
import type { OffloadFlags } from '../native/engine.js';
import { optionBool, optionField, optionInt } from './backend-options.js';
import { bringUpOrClose, parseOffload, type LinkOps, type PeerRoute, type TunDataPlane, type TunPlatform } from './tun/data-plane.js';
import { TunNetwork } from './tun/tun-network.js';

export const UDP_DEFAULT_PORT = 8285;
const IPV4_UDP_OVERHEAD = 28; // 20-byte IPv4 header + 8-byte UDP header
const IPV6_UDP_OVERHEAD = 48; // 40-byte IPv6 header + 8-byte UDP header

export interface UdpOptions {
  port: number;
  allowUnknownSource: boolean;
  offload: boolean | Partial<OffloadFlags>;
}

/** Backend options of net-conf.json for udp: flannel's Port, plus our AllowUnknownSource for NATed peers. */
export function parseUdpOptions(raw: Readonly<Record<string, unknown>>): UdpOptions {
  // Go JSON keys (backend-options.ts): "port": 8290 is flannel's Port too, or stock peers and we split.
  const port = optionInt(raw, 'Port', 0, 0, 65535, ` (0 means ${UDP_DEFAULT_PORT})`);
  const allow = optionBool(raw, 'AllowUnknownSource', false);
  return { port: port === 0 ? UDP_DEFAULT_PORT : port, allowUnknownSource: allow, offload: parseOffload(optionField(raw, 'Offload')) };
}

/** IPv4 outer header whenever this node has an IPv4 public address; IPv6 outer only on IPv6-only nodes. */
export function udpMtu(ext: ExternalInterface): number {
  return ext.mtu - (ext.publicIP ? IPV4_UDP_OVERHEAD : IPV6_UDP_OVERHEAD);
}

/**
 * The engine's table for a set of peer leases. Both inner families ride on the IPv4 outer address
 * when both ends have one (flannel's udp is IPv4-only on the wire); IPv6 outer only when one side has
 * no IPv4 public address.
 */
export function peerRoutes(leases: Iterable<Lease>, port: number, ext: ExternalInterface, cache?: WeakMap<Lease, PeerRoute[]>): PeerRoute[] {
  const routes: PeerRoute[] = [];
  for (const l of leases) {
    let rows = cache?.get(l);
    if (!rows) {
      rows = leaseRoutes(l, port, ext);
      cache?.set(l, rows);
    }
    for (const r of rows) routes.push(r);
  }
  return routes;
}

function leaseRoutes(l: Lease, port: number, ext: ExternalInterface): PeerRoute[] {
  const outer = ext.publicIP && l.attrs.publicIP ? l.attrs.publicIP : ext.publicIPv6 ? l.attrs.publicIPv6 : undefined;
  if (!outer) {
    log.warning(`peer lease ${l.subnet ? formatCIDR(l.subnet) : ''} has no public address of a family this node can reach; skipped`);
    return [];
  }
  const rows: PeerRoute[] = [];
  if (l.subnet) rows.push({ subnet: formatCIDR(l.subnet), publicIP: formatIP(outer), port });
  if (l.ipv6Subnet) rows.push({ subnet: formatCIDR(l.ipv6Subnet), publicIP: formatIP(outer), port });
  return rows;
}

export class UdpNetwork extends TunNetwork {
  /**
   * Engine rows per lease object. Leases are immutable and the stores hand out the same object until the
   * lease changes, so each table push (every event batch, every reconcile pass) formats only new leases
   * instead of making two strings and an object per peer each time.
   */
  private readonly rows = new WeakMap<Lease, PeerRoute[]>();

  constructor(config: NetworkConfig, ext: ExternalInterface, lease: Lease, private readonly opts: UdpOptions, plane: TunDataPlane, links: LinkOps) {
    super(config, ext, lease, plane, links, udpMtu(ext));
  }

  protected describeUp(): string {
    return `udp: ${this.plane.tunName} up, MTU ${this.mtu}, port ${this.opts.port}`;
  }

  protected apply(): void {
    this.plane.setPeers(peerRoutes(this.peers.values(), this.opts.port, this.ext, this.rows));
  }

  protected ownStats(): NetworkStats {
    return { backend: 'udp', device: this.plane.tunName, mtu: this.mtu, port: this.opts.port };
  }
}

export function udpBackendFactory(platform: TunPlatform) {
  return async (ctx: BackendContext): Promise<Backend> => {
    const opts = parseUdpOptions(ctx.config.backend.raw);
    return {
      type: 'udp',
      backendData: () => undefined,
      backendV6Data: () => undefined,
      start: async (lease: Lease) => {
        const plane = platform.openDataPlane({
          tunName: 'flannel%d',
          bindV4: ctx.extIface.ifaceAddr ? formatIP(ctx.extIface.ifaceAddr) : undefined,
          bindV6: ctx.extIface.ifaceAddrV6 ? formatIP(ctx.extIface.ifaceAddrV6) : undefined,
          port: opts.port,
          allowUnknownSource: opts.allowUnknownSource,
          offload: opts.offload,
        });
        return bringUpOrClose(plane, new UdpNetwork(ctx.config, ctx.extIface, lease, opts, plane, platform.links()));
      },
    };
  };
}
