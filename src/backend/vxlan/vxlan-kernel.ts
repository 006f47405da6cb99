// flannel's vxlan backend on kernel devices (pkg/backend/vxlan): flannel.<VNI> / flannel-v6.<VNI> and
// per remote lease a neighbour, an FDB entry and an onlink route (vxlan-peers.ts), installed and
// reconciled through VxlanOps; tested with an in-memory kernel.
import type { ExternalInterface, NetworkStats, RunningNetwork } from '../types.js';
import type { NetworkConfig } from '../../config/types.js';
import { formatIP, type IPAddr } from '../../ip/index.js';
import { log, RateLimitedLog } from '../../log.js';
import type { Lease, LeaseEvent } from '../../subnet/types.js';
import { leaseKey } from '../../subnet/lease.js';
import { applyPlans, installPeer, ownedRoute, removePeer, type SyncCounters } from '../entry-sync.js';
import type { VxlanOps } from '../kernel-ops.js';
import { planFdb, planNeighs, planRoutes, type PeerEntries, type RouteEntry } from '../peer-entries.js';
import { configureVxlanDevice, ensureVxlanDevice, vxlanIncompat } from './vxlan-device.js';
import type { VxlanOptions } from './vxlan-options.js';
import { entriesMinus, vxlanPeerEntries, type PeerContext, type PeerResult, type VxlanDev } from './vxlan-peers.js';
import { concernsDevices, DeviceRecovery, followUnderlay, type LinkWatchFn, type RecoveryOptions } from './vxlan-recovery.js';

export class VxlanNetwork implements RunningNetwork {
  readonly mtu: number;
  /** What we installed per peer lease, so a removal needs no backend data. */
  private readonly installed = new Map<string, PeerEntries>();
  /** The peer leases as last handed to us, so a device re-created between passes gets its entries back. */
  private readonly peerLeases = new Map<string, Lease>();
  private recovery?: DeviceRecovery;
  private readonly warned = new Set<string>();
  private readonly badData = new RateLimitedLog(5, 60_000);
  private readonly counters: SyncCounters & { skippedLeases: number; directPeers: number } = { repairs: 0, errors: 0, skippedLeases: 0, directPeers: 0 };
  private closed = false;

  constructor(
    private readonly config: NetworkConfig,
    private readonly ext: ExternalInterface,
    private readonly lease: Lease,
    private readonly opts: VxlanOptions,
    private readonly ops: VxlanOps,
    private readonly devs: { v4?: VxlanDev; v6?: VxlanDev },
  ) {
    // One MTU for the pod interface: with both devices it must fit the smaller one (the kernel caps an
    // IPv6-underlay device at underlay - 70, below flannel's configured MTU - 50).
    this.mtu = Math.min(...[devs.v4?.mtu, devs.v6?.mtu].filter((m): m is number => m !== undefined));
  }

  private ctx(): PeerContext {
    return {
      ...this.devs,
      directRouting: this.opts.directRouting,
      directOif: (ip) => {
        try {
          const r = this.ops.routeGet(ip);
          return r.gateway === undefined ? r.oif : undefined;
        } catch (e) {
          log.error(`couldn't lookup route to ${formatIP(ip)}: ${(e as Error).message}`);
          return undefined;
        }
      },
    };
  }

  private devName = (i: number): string =>
    i === this.devs.v4?.index ? this.devs.v4.name : i === this.devs.v6?.index ? this.devs.v6.name : i === this.ext.index ? this.ext.name : `#${i}`;

  private skip(key: string, r: Extract<PeerResult, { ok: false }>, fromReconcile: boolean): void {
    this.counters.skippedLeases++;
    if (r.kind === 'data') this.badData.warning(r.reason);
    else if (!fromReconcile || !this.warned.has(key)) log.warning(r.reason);
    this.warned.add(key);
  }

  async handle(events: LeaseEvent[]): Promise<void> {
    if (this.closed) return;
    const ctx = this.ctx();
    for (const ev of events) {
      const key = leaseKey(ev.lease);
      if (ev.type === 'added') this.peerLeases.set(key, ev.lease);
      else this.peerLeases.delete(key);
      const old = this.installed.get(key);
      if (ev.type === 'removed') {
        const computed = vxlanPeerEntries(ev.lease, ctx);
        const e = old ?? (computed.ok ? computed.entries : undefined);
        if (!e) {
          if (!computed.ok) this.skip(key, computed, false);
          continue;
        }
        log.info(`removing subnet: ${key} PublicIP: ${ev.lease.attrs.publicIP ? formatIP(ev.lease.attrs.publicIP) : '-'}`);
        removePeer(this.ops, e, this.counters);
        this.installed.delete(key);
        this.warned.delete(key);
        continue;
      }
      log.info(`Received Subnet Event with VxLan: ${key} type=${ev.lease.attrs.backendType}`);
      const r = vxlanPeerEntries(ev.lease, ctx);
      if (!r.ok) {
        this.skip(key, r, false);
        if (old) {
          removePeer(this.ops, old, this.counters);
          this.installed.delete(key);
        }
        continue;
      }
      if (old) removePeer(this.ops, entriesMinus(old, r.entries), this.counters);
      installPeer(this.ops, r.entries, this.counters);
      // Recorded even when the kernel refused: the next reconcile pass retries what is missing.
      this.installed.set(key, r.entries);
    }
  }

  /**
   * Returns the repairs made, or -1 when the devices cannot be restored yet (no external interface).
   * A device someone deleted or replaced comes back with the same MAC, so the VtepMAC in our lease and
   * in every peer's FDB stays right; a device that lost its address or went down gets them back; after
   * the external interface was re-created the devices follow it (vxlan-recovery.ts). (flannel main
   * recreates a deleted IPv4 device too, #2247, but in etcd mode with a new MAC, and without its entries.)
   */
  private ensureDevices(): number {
    let repaired = 0;
    try {
      followUnderlay(this.ops, this.ext, [this.devs.v4, this.devs.v6]);
    } catch (e) {
      this.counters.errors++;
      log.error(`could not restore the vxlan devices: ${(e as Error).message}`);
      return -1;
    }
    for (const [family, dev, subnet, network] of [
      [4, this.devs.v4, this.lease.subnet, this.config.network],
      [6, this.devs.v6, this.lease.ipv6Subnet, this.config.ipv6Network],
    ] as const) {
      if (!dev?.spec || !subnet) continue;
      try {
        let link = this.ops.findLink(dev.name);
        if (!link || link.index !== dev.index || vxlanIncompat(dev.spec, link) !== '' || link.mac !== dev.mac) {
          log.warning(`vxlan device ${dev.name} is missing or was changed; recreating it with MAC ${dev.mac}`);
          if (link && link.kind !== 'vxlan') this.ops.deleteLink(link.index);
          link = ensureVxlanDevice(this.ops, dev.spec, () => dev.mac);
          if (link.mac !== dev.mac) {
            this.ops.deleteLink(link.index);
            link = ensureVxlanDevice(this.ops, dev.spec, () => dev.mac);
          }
          dev.index = link.index;
          repaired++;
        }
        const addr: IPAddr = { family, value: subnet.value };
        const hasAddr = this.ops.listAddrs(family, dev.index).some((a) => a.addr.value === addr.value);
        if (!link.up || !hasAddr) {
          configureVxlanDevice(this.ops, dev, addr, network, dev.mac);
          log.info(`vxlan device ${dev.name}: address and link state restored`);
          repaired++;
        }
      } catch (e) {
        this.counters.errors++;
        log.error(`could not restore vxlan device ${dev.name}: ${(e as Error).message}`);
      }
    }
    return repaired;
  }

  async reconcile(leases: Lease[]): Promise<number> {
    if (this.closed) return 0;
    this.peerLeases.clear();
    for (const l of leases) this.peerLeases.set(leaseKey(l), l);
    const deviceRepairs = this.ensureDevices();
    // Without the devices there is nowhere to put entries; the recovery (or the next pass) retries.
    if (deviceRepairs < 0) return 0;
    const ctx = this.ctx();
    const desired = new Map<string, PeerEntries>();
    for (const l of leases) {
      const key = leaseKey(l);
      const r = vxlanPeerEntries(l, ctx);
      if (r.ok) {
        desired.set(key, r.entries);
        this.warned.delete(key);
      } else this.skip(key, r, true);
    }
    for (const k of this.warned) if (!leases.some((l) => leaseKey(l) === k)) this.warned.delete(k);
    const all = [...desired.values()];
    const routes = all.flatMap((e) => e.routes);
    let changed = 0;
    for (const [family, dev, network] of [
      [4, this.devs.v4, this.config.network],
      [6, this.devs.v6, this.config.ipv6Network],
    ] as const) {
      if (!dev) continue;
      const own = family === 4 ? this.lease.subnet : this.lease.ipv6Subnet;
      const owned = ownedRoute(network, own, new Set([dev.index, this.ext.index]), (oif) => oif !== dev.index);
      const wantRoutes: RouteEntry[] = routes.filter((r) => r.dst.family === family);
      const plans = {
        neigh: planNeighs(all.flatMap((e) => e.neighs).filter((n) => n.index === dev.index), this.ops.listNeighs(family, dev.index), network),
        fdb: planFdb(all.flatMap((e) => e.fdbs).filter((f) => f.index === dev.index), this.ops.listFdb(dev.index)),
        route: planRoutes(wantRoutes, this.ops.listRoutes(family), owned),
      };
      changed += applyPlans(this.ops, plans, this.devName, this.counters);
    }
    this.installed.clear();
    for (const [k, v] of desired) this.installed.set(k, v);
    this.counters.directPeers = all.reduce((n, e) => n + e.routes.filter((r) => !r.onlink).length, 0);
    changed += deviceRepairs;
    this.counters.repairs += changed;
    return changed;
  }

  stats(): NetworkStats {
    return {
      backend: 'vxlan',
      device: this.devs.v4?.name,
      deviceV6: this.devs.v6?.name,
      vni: this.opts.vni,
      mtu: this.mtu,
      peers: this.installed.size,
      ...this.counters,
    };
  }

  /** Every device exists as recorded and is up. */
  private healthy(): boolean {
    return [this.devs.v4, this.devs.v6].every((d) => {
      if (!d) return true;
      const l = this.ops.findLink(d.name);
      return l !== undefined && l.index === d.index && l.up;
    });
  }

  /** Repairs at once (not at the next reconcile pass) when a device or the external interface goes away. */
  watchDevices(watchLinks: LinkWatchFn, opts?: RecoveryOptions): void {
    this.recovery = new DeviceRecovery(
      (e) => concernsDevices(e, [this.devs.v4, this.devs.v6], this.ext),
      async () => {
        const repairs = await this.reconcile([...this.peerLeases.values()]);
        if (repairs > 0) log.info(`vxlan: restored ${repairs} devices and entries after a link change`);
        return this.healthy();
      },
      opts,
    );
    this.recovery.start(watchLinks);
  }

  /** Like flannel, the devices and entries stay: pods keep working across a restart, reconcile fixes the rest. */
  async close(): Promise<void> {
    this.closed = true;
    this.recovery?.close();
  }
}
