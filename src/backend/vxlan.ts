// flannel's vxlan backend (pkg/backend/vxlan): kernel VXLAN devices flannel.<VNI> / flannel-v6.<VNI>
// and per remote lease a neighbour (subnet address -> peer VtepMAC), an FDB entry (VtepMAC -> peer
// public IP) and an onlink route via the subnet address; with DirectRouting a peer on our L2 segment
// gets a plain route via its public IP instead. Pure logic over VxlanOps; tested with an in-memory kernel.
import type { Backend, BackendContext, ExternalInterface, RunningNetwork } from './types.js';
import type { NetworkConfig } from '../config/types.js';
import { formatCIDR, formatIP, type Family, type IPAddr, type IPNet } from '../ip/index.js';
import { log, RateLimitedLog } from '../log.js';
import type { Link } from '../netlink/index.js';
import type { Lease, LeaseEvent } from '../subnet/types.js';
import { optionBool, optionField, optionInt, optionString } from './backend-options.js';
import { applyPlans, installPeer, ownedRoute, removePeer, type SyncCounters } from './entry-sync.js';
import type { VxlanOps } from './kernel-ops.js';
import { emptyEntries, entryKey, planFdb, planNeighs, planRoutes, type PeerEntries, type RouteEntry } from './peer-entries.js';
import { configureVxlanDevice, ensureVxlanDevice, randomMac, vxlanIncompat, type VxlanDeviceSpec } from './vxlan-device.js';
import { leaseKey } from '../subnet/lease.js';
import { bringUpOrClose, parseOffload, type DataPlaneOptions, type LinkOps, type UdpDataPlane } from './udp.js';
import type { OffloadFlags } from '../native/engine.js';
import { UserspaceVxlanNetwork, userspaceVtepMac, userspaceVxlanMtu, VTEP_SEND_SOCKETS, vtepAddress, VXLAN_DEFAULT_PORT } from './vxlan-userspace.js';

/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14), as flannel subtracts. */
export const VXLAN_ENCAP_OVERHEAD = 50;
const MAX_VNI = 0xffffff;

export interface VxlanOptions {
  vni: number;
  /** 0: the kernel default port (8472). */
  port: number;
  gbp: boolean;
  learning: boolean;
  directRouting: boolean;
  /** MTU of the outgoing (encapsulated) packets; absent: the external interface's MTU. */
  mtu?: number;
  /** Accepted for net-conf compatibility; flannel uses it on Windows only. */
  macPrefix?: string;
  /** flannelts: the userspace VXLAN VTEP instead of a kernel device (stock flanneld ignores the key). */
  userspace: boolean;
  /** flannelts: the userspace VTEP's offloads, as udp's Backend.Offload (true: all, each probed). */
  offload: boolean | Partial<OffloadFlags>;
}

/** Backend options of net-conf.json, read like flannel's VXLANConfig (Go JSON: case-insensitive keys). */
export function parseVxlanOptions(raw: Readonly<Record<string, unknown>>): VxlanOptions {
  const vni = optionInt(raw, 'VNI', 1, 0, MAX_VNI);
  const port = optionInt(raw, 'Port', 0, 0, 65535, ' (0 means the kernel default 8472)');
  const mtuRaw = optionInt(raw, 'MTU', 0, 0, 65535);
  if (mtuRaw !== 0 && mtuRaw < 68 + VXLAN_ENCAP_OVERHEAD) {
    throw new Error(`net-conf: Backend.MTU ${mtuRaw} is invalid: must leave at least 68 bytes after the ${VXLAN_ENCAP_OVERHEAD}-byte VXLAN overhead`);
  }
  const macPrefix = optionString(raw, 'MacPrefix');
  if (macPrefix !== undefined && !/^[0-9a-fA-F]{2}-[0-9a-fA-F]{2}$/.test(macPrefix)) {
    throw new Error(`net-conf: Backend.MacPrefix ${JSON.stringify(macPrefix)} is invalid: prefix must be of the format xx-xx e.g. 0E-2A`);
  }
  return {
    vni,
    port,
    gbp: optionBool(raw, 'GBP', false),
    learning: optionBool(raw, 'Learning', false),
    directRouting: optionBool(raw, 'DirectRouting', false),
    mtu: mtuRaw === 0 ? undefined : mtuRaw,
    macPrefix,
    userspace: optionBool(raw, 'Userspace', false),
    offload: parseOffload(optionField(raw, 'Offload')),
  };
}

export const vxlanDeviceName = (vni: number, family: Family): string => (family === 4 ? `flannel.${vni}` : `flannel-v6.${vni}`);

export interface VxlanBackendData {
  VNI: number;
  VtepMAC: string;
}

/** The lease's BackendData; key order VNI, VtepMAC is what Go's json.Marshal writes. */
export function vxlanBackendData(vni: number, mac: string): VxlanBackendData {
  return { VNI: vni, VtepMAC: mac };
}

/** Go's net.ParseMAC for the 6-byte forms flannel peers write; lowercase colon form out. */
export function normalizeMac(s: string): string | undefined {
  const m = /^([0-9a-fA-F]{2})([:-])([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})$/.exec(s);
  if (m) return [m[1], m[3], m[4], m[5], m[6], m[7]].join(':').toLowerCase();
  const d = /^([0-9a-fA-F]{4})\.([0-9a-fA-F]{4})\.([0-9a-fA-F]{4})$/.exec(s);
  if (d) return (d[1]! + d[2]! + d[3]!).toLowerCase().replace(/(..)(?!$)/g, '$1:');
  return undefined;
}

export type DecodedBackendData = { ok: true; vni?: number; mac: string } | { ok: false; error: string };

/** A peer's BackendData (already JSON-parsed); every malformed shape is an error value, never a throw. */
export function decodeVxlanBackendData(data: unknown): DecodedBackendData {
  if (data === undefined || data === null) return { ok: false, error: 'no BackendData' };
  if (typeof data !== 'object' || Array.isArray(data)) return { ok: false, error: `BackendData is not a JSON object: ${JSON.stringify(data)?.slice(0, 60)}` };
  const rec = data as Record<string, unknown>;
  const pick = (name: string): unknown => {
    if (Object.prototype.hasOwnProperty.call(rec, name)) return rec[name];
    const k = Object.keys(rec).filter((x) => x.toLowerCase() === name.toLowerCase()).pop();
    return k === undefined ? undefined : rec[k];
  };
  const vni = pick('VNI');
  if (vni !== undefined && vni !== null && (typeof vni !== 'number' || !Number.isInteger(vni) || vni < 0 || vni > 0xffffffff)) {
    return { ok: false, error: `BackendData.VNI ${JSON.stringify(vni)} is not a uint32` };
  }
  const macRaw = pick('VtepMAC');
  if (typeof macRaw !== 'string') return { ok: false, error: `BackendData.VtepMAC ${JSON.stringify(macRaw)} is not a MAC address string` };
  const mac = normalizeMac(macRaw);
  if (!mac) return { ok: false, error: `BackendData.VtepMAC ${JSON.stringify(macRaw)} is not a MAC address` };
  return { ok: true, vni: typeof vni === 'number' ? vni : undefined, mac };
}

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

const subnetAddr = (n: IPNet): IPAddr => ({ family: n.family, value: n.value });

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
function entriesMinus(a: PeerEntries, b: PeerEntries): PeerEntries {
  const has = new Set([...b.routes, ...b.neighs, ...b.fdbs].map(entryKey));
  return { routes: a.routes.filter((x) => !has.has(entryKey(x))), neighs: a.neighs.filter((x) => !has.has(entryKey(x))), fdbs: a.fdbs.filter((x) => !has.has(entryKey(x))) };
}

export class VxlanNetwork implements RunningNetwork {
  readonly mtu: number;
  /** What we installed per peer lease, so a removal needs no backend data. */
  private readonly installed = new Map<string, PeerEntries>();
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
   * A device someone deleted or replaced comes back with the same MAC, so the VtepMAC in our lease and
   * in every peer's FDB stays right; a device that lost its address or went down gets them back.
   * (flannel main recreates a deleted device too, #2247, but with a new MAC.)
   */
  private ensureDevices(): number {
    let repaired = 0;
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
    const deviceRepairs = this.ensureDevices();
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

  stats(): Record<string, unknown> {
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

  /** Like flannel, the devices and entries stay: pods keep working across a restart, reconcile fixes the rest. */
  async close(): Promise<void> {
    this.closed = true;
  }
}

export interface VxlanPlatform {
  ops(): VxlanOps;
  /** MAC generator for new devices (tests pin it). */
  newMac?: () => string;
  /** The userspace VTEP's parts: without them there is no fallback when the kernel lacks VXLAN. */
  userspace?: { openDataPlane(o: DataPlaneOptions): UdpDataPlane; links(): LinkOps };
  /** -vxlan-userspace: this node uses the userspace VTEP whatever net-conf says. */
  forceUserspace?: boolean;
}

/**
 * The errno of a kernel without VXLAN: rtnetlink answers EOPNOTSUPP for a link kind it has no driver
 * for (and cannot load a module for).
 */
export function isKernelWithoutVxlan(e: unknown): boolean {
  const code = (e as { code?: unknown } | undefined)?.code;
  return code === 'EOPNOTSUPP' || code === 'ENOTSUP';
}

/** Starts the userspace VTEP in place of the kernel devices (see vxlan-userspace.ts). */
function userspaceBackend(ctx: BackendContext, opts: VxlanOptions, ops: VxlanOps, parts: NonNullable<VxlanPlatform['userspace']>): Backend {
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

function toDev(l: Link): VxlanDev {
  return { index: l.index, name: l.name, mac: l.mac ?? '', mtu: l.mtu };
}

export function vxlanBackendFactory(platform: VxlanPlatform) {
  return async (ctx: BackendContext): Promise<Backend> => {
    const { config, extIface: ext } = ctx;
    const opts = parseVxlanOptions(config.backend.raw);
    log.info(`VXLAN config: VNI=${opts.vni} Port=${opts.port} GBP=${opts.gbp} Learning=${opts.learning} DirectRouting=${opts.directRouting}`);
    if (opts.macPrefix) log.info(`Backend.MacPrefix ${opts.macPrefix} is a Windows-only option in flannel; Linux devices get a random locally administered MAC`);
    const ops = platform.ops();
    if ((opts.userspace || platform.forceUserspace) && platform.userspace) {
      log.info(`vxlan: userspace VTEP (${opts.userspace ? 'Backend.Userspace' : '-vxlan-userspace'})`);
      return userspaceBackend(ctx, opts, ops, platform.userspace);
    }
    const deviceMtu = (opts.mtu ?? ext.mtu) - VXLAN_ENCAP_OVERHEAD;
    const make = (family: Family, local: IPAddr | undefined): VxlanDev => {
      const name = vxlanDeviceName(opts.vni, family);
      if (!local) throw new Error(`failed to create vxlan device ${name}: interface ${ext.name} has no IPv${family} address`);
      const spec: VxlanDeviceSpec = { name, vni: opts.vni, link: ext.index, local, port: opts.port, gbp: opts.gbp, learning: opts.learning, mtu: deviceMtu };
      const link = ensureVxlanDevice(ops, spec, platform.newMac ?? randomMac);
      if (link.mtu !== deviceMtu) log.warning(`${name}: the kernel set MTU ${link.mtu}, not ${deviceMtu}`);
      return { ...toDev(link), spec };
    };
    const devs: { v4?: VxlanDev; v6?: VxlanDev } = {};
    try {
      // flannel uses the external (public) address as the VTEP source; it is the interface address unless -public-ip says otherwise.
      if (config.enableIPv4) devs.v4 = make(4, ext.publicIP ?? ext.ifaceAddr);
      if (config.enableIPv6) devs.v6 = make(6, ext.publicIPv6 ?? ext.ifaceAddrV6);
    } catch (e) {
      if (!isKernelWithoutVxlan(e) || !platform.userspace) throw e;
      log.warning(`the kernel cannot create VXLAN devices (${(e as Error).message}); falling back to the userspace VXLAN VTEP`);
      return userspaceBackend(ctx, opts, ops, platform.userspace);
    }
    return {
      type: 'vxlan',
      backendData: () => (devs.v4 && ext.publicIP ? vxlanBackendData(opts.vni, devs.v4.mac) : undefined),
      backendV6Data: () => (devs.v6 && ext.publicIPv6 ? vxlanBackendData(opts.vni, devs.v6.mac) : undefined),
      start: async (lease: Lease): Promise<RunningNetwork> => {
        if (devs.v4) {
          if (!lease.subnet) throw new Error(`failed to configure interface ${devs.v4.name}: IPv4 is enabled but the lease has no IPv4`);
          configureVxlanDevice(ops, devs.v4, subnetAddr(lease.subnet), config.network, devs.v4.mac);
        }
        if (devs.v6) {
          if (!lease.ipv6Subnet) throw new Error(`failed to configure interface ${devs.v6.name}: IPv6 is enabled but the lease has no IPv6`);
          configureVxlanDevice(ops, devs.v6, subnetAddr(lease.ipv6Subnet), config.ipv6Network, devs.v6.mac);
        }
        const net = new VxlanNetwork(config, ext, lease, opts, ops, devs);
        log.info(`vxlan: ${[devs.v4?.name, devs.v6?.name].filter(Boolean).join(', ')} up, MTU ${net.mtu}`);
        return net;
      },
    };
  };
}
