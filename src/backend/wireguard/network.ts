// A running wireguard network (flannel's wireguard_network.go + the device setup of device.go): the
// device address and the scope-link route for the whole network, one peer per remote lease keyed by
// its public key, peers removed with their lease, and the devices deleted on shutdown.
import type { NetworkConfig } from '../../config/types.js';
import { containsIP, formatCIDR, netAddr, netEqual, type Family, type IPAddr, type IPNet } from '../../ip/index.js';
import { log } from '../../log.js';
import { leaseKey } from '../../subnet/lease.js';
import type { Lease, LeaseEvent } from '../../subnet/types.js';
import type { NetworkStats, RunningNetwork, WgPeerReport } from '../types.js';
import type { CaptureSource } from '../../capture/session.js';
import { mergeEngineStats, sumCounters } from './stats-merge.js';
import type { WgDevice, WgPeerConfig } from './device.js';
import { planWgPeers, removedWgPeers, type WgDeviceSlot, type WgPeerContext, type WgPeerPlan } from './lease-data.js';
import { WG_OVERHEAD, type WireguardOptions } from './options.js';

/** The netlink operations on a WireGuard device's link (an in-memory double in unit tests). */
export interface WgLinkOps {
  listAddrs(index: number, family: Family): { addr: IPAddr; prefixLen: number }[];
  addAddr(index: number, addr: IPAddr, prefixLen: number): void;
  delAddr(index: number, addr: IPAddr, prefixLen: number): void;
  setUp(index: number): void;
  /** `ip route replace <dst> dev <index> scope link`. */
  replaceRoute(index: number, dst: IPNet): void;
}

export type WgDevices = Partial<Record<WgDeviceSlot, WgDevice>>;

/**
 * flannel's EnsureV4/V6AddressOnLink: the lease's network address as a host address on the device;
 * other addresses inside the flannel network are removed, anything else is left alone.
 */
export function ensureDeviceAddress(ops: WgLinkOps, dev: WgDevice, subnet: IPNet, network: IPNet | undefined): void {
  const want = netAddr(subnet);
  const hostLen = subnet.family === 4 ? 32 : 128;
  let present = false;
  for (const a of ops.listAddrs(dev.index, subnet.family)) {
    if (a.addr.value === want.value && a.prefixLen === hostLen) {
      present = true;
      continue;
    }
    if (network && containsIP(network, a.addr)) ops.delAddr(dev.index, a.addr, a.prefixLen);
  }
  if (!present) ops.addAddr(dev.index, want, hostLen);
}

export class WireguardNetwork implements RunningNetwork {
  readonly mtu: number;
  /** Peers we configured, per lease, to remove them with their lease (or a changed key). */
  private readonly installed = new Map<string, WgPeerPlan[]>();
  private readonly reported = new Map<string, string>();
  private readonly counters = { peersSet: 0, peersRemoved: 0, errors: 0, skippedLeases: 0, repairs: 0 };
  private closed = false;

  constructor(
    private readonly config: NetworkConfig,
    private readonly opts: WireguardOptions,
    private readonly ctx: WgPeerContext,
    private readonly devs: WgDevices,
    private readonly ops: WgLinkOps,
    underlayMtu: number,
  ) {
    this.mtu = underlayMtu - WG_OVERHEAD;
  }

  /** Address, link up and network route on each device (flannel's Configure / ConfigureV6). */
  configure(lease: Lease): void {
    const v4dev = this.devs.v4 ?? this.devs.single;
    const v6dev = this.devs.v6 ?? this.devs.single;
    if (this.config.enableIPv4 && v4dev) {
      if (!lease.subnet) throw new Error(`failed to configure wg interface: IPv4 is enabled but the lease has no IPv4`);
      ensureDeviceAddress(this.ops, v4dev, lease.subnet, this.config.network);
    }
    if (this.config.enableIPv6 && v6dev) {
      if (!lease.ipv6Subnet) throw new Error(`failed to configure wg interface: IPv6 is enabled but the lease has no IPv6`);
      ensureDeviceAddress(this.ops, v6dev, lease.ipv6Subnet, this.config.ipv6Network);
    }
    for (const d of Object.values(this.devs)) if (d) this.ops.setUp(d.index);
    this.assertRoutes();
  }

  /** The scope-link route for the whole network per family, as flannel re-asserts on every lease event. */
  private assertRoutes(): void {
    const pairs: [WgDevice | undefined, IPNet | undefined, boolean][] = [
      [this.devs.v4 ?? this.devs.single, this.config.network, this.config.enableIPv4],
      [this.devs.v6 ?? this.devs.single, this.config.ipv6Network, this.config.enableIPv6],
    ];
    for (const [dev, net, on] of pairs) {
      if (!dev || !net || !on) continue;
      try {
        this.ops.replaceRoute(dev.index, net);
      } catch (e) {
        this.counters.errors++;
        log.error(`failed to add route ${formatCIDR(net)} via ${dev.name}: ${(e as Error).message}`);
      }
    }
  }

  private peerConfig(p: WgPeerPlan): WgPeerConfig {
    return { publicKey: p.publicKey, presharedKey: this.opts.psk, endpoint: p.endpoint, persistentKeepalive: this.opts.persistentKeepalive, allowedIPs: p.allowedIPs };
  }

  private async setPeer(p: WgPeerPlan): Promise<boolean> {
    const dev = this.devs[p.slot];
    if (!dev) return false;
    try {
      await dev.setPeer(this.peerConfig(p));
      this.counters.peersSet++;
      return true;
    } catch (e) {
      this.counters.errors++;
      log.error(`failed to setup peer (${p.publicKey}) on ${dev.name}: ${(e as Error).message}`);
      return false;
    }
  }

  private async removePeer(slot: WgDeviceSlot, publicKey: string): Promise<void> {
    const dev = this.devs[slot];
    if (!dev) return;
    try {
      await dev.removePeer(publicKey);
      this.counters.peersRemoved++;
    } catch (e) {
      this.counters.errors++;
      log.error(`failed to remove peer (${publicKey}) from ${dev.name}: ${(e as Error).message}`);
    }
  }

  private report(key: string, kind: 'type' | 'data', reason: string): void {
    this.counters.skippedLeases++;
    if (this.reported.get(key) === reason) return;
    this.reported.set(key, reason);
    if (kind === 'type') log.warning(reason);
    else log.error(`lease ${key}: ${reason}`);
  }

  async handle(events: LeaseEvent[]): Promise<void> {
    if (this.closed) return;
    for (const ev of events) {
      const key = leaseKey(ev.lease);
      const old = this.installed.get(key) ?? [];
      if (ev.type === 'removed') {
        this.reported.delete(key);
        if (ev.lease.attrs.backendType !== 'wireguard' && old.length === 0) {
          log.warning(`Ignoring non-wireguard subnet: type=${ev.lease.attrs.backendType}`);
          continue;
        }
        log.info(`Subnet removed: ${key}`);
        const gone = [...old.map((p) => ({ slot: p.slot, publicKey: p.publicKey })), ...removedWgPeers(ev.lease, this.ctx)];
        const seen = new Set<string>();
        for (const g of gone) {
          if (seen.has(g.slot + g.publicKey)) continue;
          seen.add(g.slot + g.publicKey);
          await this.removePeer(g.slot, g.publicKey);
        }
        this.installed.delete(key);
        continue;
      }
      const r = planWgPeers(ev.lease, this.ctx);
      if (!r.ok) {
        this.report(key, r.kind, r.reason);
        continue;
      }
      this.reported.delete(key);
      // A lease whose key changed: the old peer goes (flannel would leave it behind).
      for (const o of old) if (!r.peers.some((n) => n.slot === o.slot && n.publicKey === o.publicKey)) await this.removePeer(o.slot, o.publicKey);
      const done: WgPeerPlan[] = [];
      for (const p of r.peers) {
        log.info(`Subnet(s) added: ${p.allowedIPs.map(formatCIDR).join(', ')} via ${p.endpoint ?? '(no endpoint)'}`);
        if (await this.setPeer(p)) done.push(p);
      }
      this.installed.set(key, done);
      this.assertRoutes();
    }
  }

  /** Desired peers from the full lease list against what the devices have; routes re-asserted. */
  async reconcile(leases: Lease[]): Promise<number> {
    if (this.closed) return 0;
    const desired = new Map<string, WgPeerPlan[]>();
    for (const l of leases) {
      const r = planWgPeers(l, this.ctx);
      if (r.ok) desired.set(leaseKey(l), r.peers);
    }
    let repairs = 0;
    for (const [slot, dev] of Object.entries(this.devs) as [WgDeviceSlot, WgDevice][]) {
      const want = [...desired.values()].flat().filter((p) => p.slot === slot);
      const have = await dev.peers();
      for (const h of have) {
        if (!want.some((w) => w.publicKey === h.publicKey)) {
          await this.removePeer(slot, h.publicKey);
          repairs++;
        }
      }
      for (const w of want) {
        const h = have.find((x) => x.publicKey === w.publicKey);
        // The configured endpoint: where the peer is now may differ (it roams), and that is no repair.
        const same = h && (h.configuredEndpoint ?? h.endpoint) === w.endpoint && h.allowedIPs.length === w.allowedIPs.length && w.allowedIPs.every((n) => h.allowedIPs.some((m) => netEqual(m, n)));
        if (!same && (await this.setPeer(w))) repairs++;
      }
    }
    this.installed.clear();
    for (const [k, v] of desired) this.installed.set(k, v);
    this.assertRoutes();
    this.counters.repairs += repairs;
    return repairs;
  }

  /** The first userspace device's capture tap (`flannelctl capture`); kernel devices have none. */
  get capture(): CaptureSource | undefined {
    return Object.values(this.devs).find((d) => d?.capture)?.capture;
  }

  stats(): NetworkStats {
    const devices = Object.values(this.devs).filter((d): d is WgDevice => d !== undefined);
    const planes = devices.flatMap((d) => (d.dataPlane ? [d.dataPlane()] : []));
    const peers: WgPeerReport[] = devices.flatMap((d) => {
      try {
        return d.peersNow().map((p) => ({ device: d.name, publicKey: p.publicKey, ...(p.endpoint ? { endpoint: p.endpoint } : {}), allowedIPs: p.allowedIPs.map(formatCIDR), lastHandshakeMs: p.lastHandshakeMs, rxBytes: p.rxBytes, txBytes: p.txBytes, persistentKeepalive: p.persistentKeepalive }));
      } catch (e) {
        log.v(2).info(`wireguard: cannot read the peers of ${d.name}: ${(e as Error).message}`);
        return [];
      }
    });
    return {
      backend: 'wireguard',
      mode: this.opts.mode,
      devices: devices.map((d) => ({ name: d.name, kind: d.kind })),
      mtu: this.mtu,
      peers: [...this.installed.values()].reduce((n, p) => n + p.length, 0),
      ...this.counters,
      ...(planes.length ? { engine: mergeEngineStats(planes.map((p) => p.engine)) } : {}),
      wireguard: { peers, ...(planes.length ? { counters: sumCounters(planes.map((p) => p.wireguard)) } : {}) },
    };
  }

  /** The devices go (flannel deletes them on shutdown); the key file and the lease stay. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const d of Object.values(this.devs)) {
      if (!d) continue;
      try {
        await d.close();
        log.info(`Removed wireguard device ${d.name}`);
      } catch (e) {
        log.error(`Error while removing device ${d.name}: ${(e as Error).message}`);
      }
    }
  }
}
