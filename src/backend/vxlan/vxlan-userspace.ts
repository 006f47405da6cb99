// The userspace VXLAN VTEP: the vxlan backend for a node whose kernel has no VXLAN. The node looks
// exactly like a kernel vxlan node to its peers (lease type "vxlan", VtepMAC in BackendData, the same
// port and VNI), so stock flanneld peers install their usual neighbour/FDB/route entries for it. Here a
// TUN device takes the place of flannel.<VNI> and the native engine speaks VXLAN on the wire: every
// inner packet becomes one Ethernet frame from our VtepMAC to the peer's, in one UDP datagram.
import { createHash } from 'node:crypto';
import type { Backend, BackendContext, ExternalInterface, NetworkStats, RunningNetwork } from '../types.js';
import type { NetworkConfig } from '../../config/types.js';
import { formatCIDR, formatIP, type IPAddr, type IPNet } from '../../ip/index.js';
import { log, RateLimitedLog } from '../../log.js';
import { leaseKey } from '../../subnet/lease.js';
import type { Lease, LeaseEvent } from '../../subnet/types.js';
import { applyPlans, installPeer, ownedRoute, removePeer, type SyncCounters } from '../entry-sync.js';
import type { RouteOps, VxlanOps } from '../kernel-ops.js';
import { entryKey, planRoutes, type PeerEntries, type RouteEntry } from '../peer-entries.js';
import { bringUpOrClose, type LinkOps, type PeerRoute, type TunDataPlane, type TunPlatform } from '../tun/data-plane.js';
import { TunNetwork } from '../tun/tun-network.js';
import { VXLAN_DEFAULT_PORT, VXLAN_ENCAP_OVERHEAD, vxlanBackendData, vxlanDeviceName, type VxlanOptions } from './vxlan-options.js';
import { vxlanPeerEntries, type PeerContext } from './vxlan-peers.js';

/** An IPv6 underlay costs 20 bytes more (the kernel caps flannel-v6.<VNI> at underlay - 70). */
const VXLAN_V6_ENCAP_OVERHEAD = 70;
/**
 * Outer source ports the engine spreads inner flows over (one send socket each). The kernel picks from
 * the whole ephemeral range; a handful already lets a peer's NIC/RPS spread flows over its queues.
 */
export const VTEP_SEND_SOCKETS = 8;

/**
 * Our VtepMAC: derived from the VNI and the public addresses, so it survives restarts (peers' FDB and
 * neighbour entries stay right, as they do for a kernel device that is reused) and differs per node.
 */
export function userspaceVtepMac(vni: number, ext: ExternalInterface): string {
  const seed = `flannelts-vtep/${vni}/${ext.publicIP ? formatIP(ext.publicIP) : ''}/${ext.publicIPv6 ? formatIP(ext.publicIPv6) : ''}`;
  const b = createHash('sha256').update(seed).digest();
  b[0] = ((b[0] ?? 0) & 0xfe) | 0x02; // locally administered unicast, like flannel's random MACs
  return [...b.subarray(0, 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/**
 * Pod MTU: what is left of the outgoing MTU after VXLAN's 50 bytes, or 70 when IPv6 inner packets
 * travel over an IPv6 underlay (as with kernel devices, where flannel-v6.<VNI> caps the pod MTU), so
 * no outer packet needs fragmenting.
 */
export function userspaceVxlanMtu(opts: VxlanOptions, ext: ExternalInterface, ipv6Underlay: boolean): number {
  return (opts.mtu ?? ext.mtu) - (ipv6Underlay || !ext.publicIP ? VXLAN_V6_ENCAP_OVERHEAD : VXLAN_ENCAP_OVERHEAD);
}

/** What the VTEP needs from the kernel besides the TUN: plain routes (DirectRouting) and route lookups. */
export type VtepRouteOps = RouteOps;

export interface VtepParts {
  plane: TunDataPlane;
  links: LinkOps;
  ops: VtepRouteOps;
}

/**
 * Closing it removes the TUN with its address and network routes; direct routes stay, as a kernel vxlan
 * node's entries stay across a restart (reconcile fixes them on the next start).
 */
export class UserspaceVxlanNetwork extends TunNetwork {
  /** DirectRouting routes installed per peer lease (the only kernel entries besides the TUN's). */
  private readonly direct = new Map<string, PeerEntries>();
  private readonly warned = new Set<string>();
  private readonly badData = new RateLimitedLog(5, 60_000);
  private readonly counters: SyncCounters & { skippedLeases: number; directPeers: number } = { repairs: 0, errors: 0, skippedLeases: 0, directPeers: 0 };
  private readonly ops: VtepRouteOps;

  constructor(
    config: NetworkConfig,
    ext: ExternalInterface,
    lease: Lease,
    private readonly opts: VxlanOptions,
    readonly mac: string,
    parts: VtepParts,
  ) {
    super(config, ext, lease, parts.plane, parts.links, userspaceVxlanMtu(opts, ext, config.enableIPv6 && ext.publicIPv6 !== undefined));
    this.ops = parts.ops;
  }

  private get port(): number {
    return this.opts.port || VXLAN_DEFAULT_PORT;
  }

  protected describeUp(): string {
    return `vxlan: userspace VTEP ${this.plane.tunName} up, MTU ${this.mtu}, VNI ${this.opts.vni}, port ${this.port}, VtepMAC ${this.mac}`;
  }

  /**
   * flannel's per-peer decision, reused: a peer reachable directly (DirectRouting) gets a kernel route
   * via its public IP; every other peer is an engine table row instead of neighbour + FDB + route.
   */
  private ctx(): PeerContext {
    const dev = { index: this.plane.tunIndex, name: this.plane.tunName, mac: this.mac, mtu: this.mtu };
    return {
      v4: this.config.enableIPv4 ? dev : undefined,
      v6: this.config.enableIPv6 ? dev : undefined,
      directRouting: this.opts.directRouting,
      directOif: (ip) => {
        try {
          const r = this.ops.routeGet(ip);
          return r.gateway === undefined && r.oif !== this.plane.tunIndex ? r.oif : undefined;
        } catch (e) {
          log.error(`couldn't lookup route to ${formatIP(ip)}: ${(e as Error).message}`);
          return undefined;
        }
      },
    };
  }

  private skip(key: string, kind: 'type' | 'data', reason: string, fromReconcile: boolean): void {
    this.counters.skippedLeases++;
    if (kind === 'data') this.badData.warning(reason);
    else if (!fromReconcile || !this.warned.has(key)) log.warning(reason);
    this.warned.add(key);
  }

  /** The engine rows (inner subnet -> peer VTEP) and direct routes for the current peer set. */
  private plan(fromReconcile: boolean): { rows: PeerRoute[]; direct: Map<string, PeerEntries> } {
    const ctx = this.ctx();
    const rows: PeerRoute[] = [];
    const direct = new Map<string, PeerEntries>();
    for (const [key, l] of this.peers) {
      const r = vxlanPeerEntries(l, ctx);
      if (!r.ok) {
        this.skip(key, r.kind, r.reason, fromReconcile);
        continue;
      }
      this.warned.delete(key);
      // Kernel flannel: neighbour (subnet address -> MAC) + FDB (MAC -> public IP) + route. Ours: one row.
      for (const n of r.entries.neighs) {
        const subnet = n.dst.family === 4 ? l.subnet : l.ipv6Subnet;
        const outer = r.entries.fdbs.find((f) => f.mac === n.mac && f.dst.family === n.dst.family)?.dst;
        if (subnet && outer) rows.push({ subnet: formatCIDR(subnet), publicIP: formatIP(outer), port: this.port, mac: n.mac });
      }
      const routes = r.entries.routes.filter((x) => !x.onlink);
      if (routes.length) direct.set(key, { routes, neighs: [], fdbs: [] });
    }
    return { rows, direct };
  }

  protected apply(fromReconcile: boolean): void {
    const { rows, direct } = this.plan(fromReconcile);
    this.plane.setPeers(rows);
    if (!fromReconcile) {
      for (const [key, e] of this.direct) if (!direct.has(key)) removePeer(this.ops, e, this.counters);
      for (const [key, e] of direct) if (entryKey(this.direct.get(key)) !== entryKey(e)) installPeer(this.ops, e, this.counters);
    }
    this.direct.clear();
    for (const [k, v] of direct) this.direct.set(k, v);
    this.counters.directPeers = [...direct.values()].reduce((n, e) => n + e.routes.length, 0);
  }

  protected override noteEvent(ev: LeaseEvent): void {
    const key = leaseKey(ev.lease);
    if (ev.type === 'added') {
      log.info(`Received Subnet Event with VxLan: ${key} type=${ev.lease.attrs.backendType}`);
    } else {
      log.info(`removing subnet: ${key} PublicIP: ${ev.lease.attrs.publicIP ? formatIP(ev.lease.attrs.publicIP) : '-'}`);
      this.warned.delete(key);
    }
  }

  /** Direct routes are planned against the kernel's table (the TUN's address and routes are the base's). */
  protected override afterReconcile(repairs: number): number {
    let changed = repairs;
    for (const k of this.warned) if (!this.peers.has(k)) this.warned.delete(k);
    const want: RouteEntry[] = [...this.direct.values()].flatMap((e) => e.routes);
    for (const [family, network, own] of [
      [4, this.config.network, this.lease.subnet],
      [6, this.config.ipv6Network, this.lease.ipv6Subnet],
    ] as const) {
      if (!network) continue;
      // Only gateway routes on the external interface are ours; the TUN's network route is the base's.
      const owned = ownedRoute(network, own, new Set([this.ext.index]), () => true);
      const plan = planRoutes(
        want.filter((r) => r.dst.family === family),
        this.ops.listRoutes(family),
        owned,
      );
      changed += applyPlans(this.ops, { route: plan }, (i) => (i === this.ext.index ? this.ext.name : `#${i}`), this.counters);
    }
    this.counters.repairs += changed;
    return changed;
  }

  protected ownStats(): NetworkStats {
    return {
      backend: 'vxlan',
      mode: 'userspace',
      device: this.plane.tunName,
      vni: this.opts.vni,
      vtepMAC: this.mac,
      mtu: this.mtu,
      port: this.port,
      peers: this.peers.size,
      ...this.counters,
    };
  }
}

/** The lease's subnet address as the VTEP's IPv4 address (ARP requests for it are answered). */
export function vtepAddress(subnet: IPNet | undefined): string | undefined {
  if (!subnet || subnet.family !== 4) return undefined;
  const a: IPAddr = { family: 4, value: subnet.value };
  return formatIP(a);
}

/** The vxlan backend as a userspace VTEP: the same lease data as a kernel node, a TUN in place of flannel.<VNI>. */
export function userspaceBackend(ctx: BackendContext, opts: VxlanOptions, ops: VxlanOps, parts: TunPlatform): Backend {
  const { config, extIface: ext } = ctx;
  const mac = userspaceVtepMac(opts.vni, ext);
  const data = vxlanBackendData(opts.vni, mac);
  return {
    type: 'vxlan',
    backendData: () => (config.enableIPv4 && ext.publicIP ? data : undefined),
    backendV6Data: () => (config.enableIPv6 && ext.publicIPv6 ? data : undefined),
    start: async (lease: Lease): Promise<RunningNetwork> => {
      if (config.enableIPv4 && !lease.subnet) throw new Error('userspace VTEP: IPv4 is enabled but the lease has no IPv4');
      if (config.enableIPv6 && !lease.ipv6Subnet) throw new Error('userspace VTEP: IPv6 is enabled but the lease has no IPv6');
      const name = vxlanDeviceName(opts.vni, 4);
      const ipv6Underlay = config.enableIPv6 && ext.publicIPv6 !== undefined;
      // A kernel device of ours from an earlier run holds the name (and would answer on the port).
      const old = ops.findLink(name);
      if (old) {
        log.warning(`removing ${old.kind ?? 'existing'} device ${name}: the userspace VTEP takes its name`);
        ops.deleteLink(old.index);
      }
      const v6old = ops.findLink(vxlanDeviceName(opts.vni, 6));
      if (v6old?.kind === 'vxlan') ops.deleteLink(v6old.index);
      const plane = parts.openDataPlane({
        tunName: name,
        bindV4: config.enableIPv4 && ext.ifaceAddr ? formatIP(ext.ifaceAddr) : undefined,
        bindV6: config.enableIPv6 && ext.ifaceAddrV6 ? formatIP(ext.ifaceAddrV6) : undefined,
        port: opts.port || VXLAN_DEFAULT_PORT,
        allowUnknownSource: false,
        offload: opts.offload,
        vxlan: { vni: opts.vni, mac, vtep4: vtepAddress(lease.subnet), sendSockets: VTEP_SEND_SOCKETS, innerMtu: userspaceVxlanMtu(opts, ext, ipv6Underlay) },
      });
      return bringUpOrClose(plane, new UserspaceVxlanNetwork(config, ext, lease, opts, mac, { plane, links: parts.links(), ops }));
    },
  };
}
