// flannel's host-gw backend (pkg/backend/hostgw + route_network.go): per remote lease a route
// `<subnet> via <peer PublicIP> dev <external interface>`. Peers must be on our L2 segment; one that
// is not is an error logged once per peer and counted, not a crash.
import type { Backend, BackendContext, ExternalInterface, NetworkStats, RunningNetwork } from './types.js';
import type { NetworkConfig } from '../config/types.js';
import { formatCIDR, formatIP, ipEqual, type IPAddr, type IPNet } from '../ip/index.js';
import { log } from '../log.js';
import type { Lease, LeaseEvent } from '../subnet/types.js';
import { applyPlans, installPeer, ownedRoute, removePeer, type SyncCounters } from './entry-sync.js';
import type { RouteOps } from './kernel-ops.js';
import { emptyEntries, planRoutes, type PeerEntries } from './peer-entries.js';
import { leaseKey } from '../subnet/lease.js';

export interface HostGwPeerContext {
  extIndex: number;
  extName: string;
  /** Why `ip` is not reachable on the external interface without a gateway, or undefined when it is. */
  notDirect(ip: IPAddr): string | undefined;
}

export type HostGwResult = { ok: true; entries: PeerEntries } | { ok: false; kind: 'type' | 'unreachable' | 'data'; reason: string };

/** The route(s) flannel adds for one remote lease, or why none. */
export function hostGwPeerEntries(l: Lease, config: NetworkConfig, ctx: HostGwPeerContext): HostGwResult {
  if (l.attrs.backendType !== 'host-gw') return { ok: false, kind: 'type', reason: `Ignoring non-host-gw subnet: type=${l.attrs.backendType}` };
  const entries = emptyEntries();
  const fam = (enabled: boolean, subnet: IPNet | undefined, gw: IPAddr | undefined): HostGwResult | undefined => {
    if (!enabled || !subnet) return undefined;
    if (!gw) return { ok: false, kind: 'data', reason: `lease ${formatCIDR(subnet)} has no public address of its family; skipped` };
    const why = ctx.notDirect(gw);
    if (why) {
      return {
        ok: false,
        kind: 'unreachable',
        reason: `host-gw: peer ${formatIP(gw)} (subnet ${formatCIDR(subnet)}) is not directly reachable on ${ctx.extName}: ${why}; host-gw needs every node on one L2 segment (use vxlan, optionally with DirectRouting)`,
      };
    }
    entries.routes.push({ dst: subnet, gateway: gw, oif: ctx.extIndex, onlink: false });
    return undefined;
  };
  const e4 = fam(config.enableIPv4, l.subnet, l.attrs.publicIP);
  if (e4) return e4;
  const e6 = fam(config.enableIPv6, l.ipv6Subnet, l.attrs.publicIPv6);
  if (e6) return e6;
  return { ok: true, entries };
}

export class HostGwNetwork implements RunningNetwork {
  readonly mtu: number;
  private readonly installed = new Map<string, PeerEntries>();
  /** Peers already reported (unreachable, wrong type): logged once, until their lease changes or goes. */
  private readonly reported = new Map<string, string>();
  private readonly counters: SyncCounters & { unreachablePeers: number; skippedLeases: number } = { repairs: 0, errors: 0, unreachablePeers: 0, skippedLeases: 0 };
  private closed = false;

  constructor(
    private readonly config: NetworkConfig,
    private readonly ext: ExternalInterface,
    private readonly lease: Lease,
    private readonly ops: RouteOps,
  ) {
    this.mtu = ext.mtu;
  }

  private ctx(): HostGwPeerContext {
    return {
      extIndex: this.ext.index,
      extName: this.ext.name,
      notDirect: (ip) => {
        try {
          const r = this.ops.routeGet(ip);
          if (r.gateway) return `the kernel routes it via ${formatIP(r.gateway)}`;
          if (r.oif !== this.ext.index) return `the kernel routes it through interface #${r.oif ?? '?'}, not ${this.ext.name}`;
          return undefined;
        } catch (e) {
          return `no route to it (${(e as Error).message})`;
        }
      },
    };
  }

  private devName = (i: number): string => (i === this.ext.index ? this.ext.name : `#${i}`);

  private report(key: string, r: Extract<HostGwResult, { ok: false }>): void {
    this.counters.skippedLeases++;
    if (this.reported.get(key) === r.reason) return;
    this.reported.set(key, r.reason);
    if (r.kind === 'unreachable') {
      this.counters.unreachablePeers++;
      log.error(r.reason);
    } else log.warning(r.reason);
  }

  async handle(events: LeaseEvent[]): Promise<void> {
    if (this.closed) return;
    const ctx = this.ctx();
    for (const ev of events) {
      const key = leaseKey(ev.lease);
      const old = this.installed.get(key);
      if (ev.type === 'removed') {
        this.reported.delete(key);
        if (ev.lease.attrs.backendType !== 'host-gw' && !old) {
          log.warning(`Ignoring non-host-gw subnet: type=${ev.lease.attrs.backendType}`);
          continue;
        }
        log.info(`Subnet removed: ${key}`);
        if (old) removePeer(this.ops, old, this.counters);
        this.installed.delete(key);
        continue;
      }
      const r = hostGwPeerEntries(ev.lease, this.config, ctx);
      if (!r.ok) {
        this.reported.delete(key);
        this.report(key, r);
        if (old) removePeer(this.ops, old, this.counters);
        this.installed.delete(key);
        continue;
      }
      log.info(`Subnet added: ${key} via ${ev.lease.attrs.publicIP ? formatIP(ev.lease.attrs.publicIP) : '-'}`);
      if (old) removePeer(this.ops, { ...emptyEntries(), routes: old.routes.filter((o) => !r.entries.routes.some((n) => ipEqual(n.gateway, o.gateway) && formatCIDR(n.dst) === formatCIDR(o.dst))) }, this.counters);
      installPeer(this.ops, r.entries, this.counters);
      this.installed.set(key, r.entries);
    }
  }

  async reconcile(leases: Lease[]): Promise<number> {
    if (this.closed) return 0;
    const ctx = this.ctx();
    const desired = new Map<string, PeerEntries>();
    for (const l of leases) {
      const key = leaseKey(l);
      const r = hostGwPeerEntries(l, this.config, ctx);
      if (r.ok) {
        desired.set(key, r.entries);
        this.reported.delete(key);
      } else this.report(key, r);
    }
    for (const k of [...this.reported.keys()]) if (!leases.some((l) => leaseKey(l) === k)) this.reported.delete(k);
    const routes = [...desired.values()].flatMap((e) => e.routes);
    let changed = 0;
    for (const [family, enabled, network, own] of [
      [4, this.config.enableIPv4, this.config.network, this.lease.subnet],
      [6, this.config.enableIPv6, this.config.ipv6Network, this.lease.ipv6Subnet],
    ] as const) {
      if (!enabled) continue;
      const owned = ownedRoute(network, own, new Set([this.ext.index]), () => true);
      const plan = planRoutes(routes.filter((r) => r.dst.family === family), this.ops.listRoutes(family), owned);
      changed += applyPlans(this.ops, { route: plan }, this.devName, this.counters);
    }
    this.installed.clear();
    for (const [k, v] of desired) this.installed.set(k, v);
    this.counters.repairs += changed;
    return changed;
  }

  stats(): NetworkStats {
    return { backend: 'host-gw', device: this.ext.name, mtu: this.mtu, peers: this.installed.size, ...this.counters };
  }

  /** Routes stay on shutdown, as flannel leaves them: pods keep working across a restart. */
  async close(): Promise<void> {
    this.closed = true;
  }
}

export function hostGwBackendFactory(platform: { ops(): RouteOps }) {
  return async (ctx: BackendContext): Promise<Backend> => {
    const ext = ctx.extIface;
    const differs = (a?: IPAddr, b?: IPAddr): boolean => a !== undefined && b !== undefined && !ipEqual(a, b);
    if (differs(ext.publicIP, ext.ifaceAddr) || differs(ext.publicIPv6, ext.ifaceAddrV6)) {
      throw new Error("your PublicIP differs from interface IP, meaning that probably you're on a NAT, which is not supported by host-gw backend");
    }
    const ops = platform.ops();
    return {
      type: 'host-gw',
      backendData: () => undefined,
      backendV6Data: () => undefined,
      start: async (lease: Lease) => {
        const net = new HostGwNetwork(ctx.config, ext, lease, ops);
        log.info(`host-gw: routes via ${ext.name}, MTU ${net.mtu}`);
        return net;
      },
    };
  };
}
