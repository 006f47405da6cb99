// flannel's udp backend: a TUN device (flannel%d) whose packets travel as the raw inner IP packet in
// one UDP datagram (port 8285) to the peer's public address. TypeScript owns the device setup and the
// peer table; the native engine owns the packets.
import type { Backend, BackendContext, ExternalInterface, RunningNetwork } from './types.js';
import type { NetworkConfig } from '../config/types.js';
import { formatCIDR, formatIP, type IPAddr, type IPNet } from '../ip/index.js';
import { log } from '../log.js';
import { leaseKey } from '../subnet/lease.js';
import type { Lease, LeaseEvent } from '../subnet/types.js';
import type { OffloadFlags } from '../native/engine.js';
import type { CaptureSource } from '../capture/session.js';

export const UDP_DEFAULT_PORT = 8285;
const IPV4_UDP_OVERHEAD = 28; // 20-byte IPv4 header + 8-byte UDP header
const IPV6_UDP_OVERHEAD = 48; // 40-byte IPv6 header + 8-byte UDP header

/** One row of the engine's table: inner destination subnet -> peer's outer address and port. */
export interface PeerRoute {
  subnet: string;
  publicIP: string;
  port: number;
  /** Userspace VXLAN: the peer's VTEP MAC. */
  mac?: string;
}

/** What the udp backend needs from the native engine (an in-memory double in unit tests). */
export interface UdpDataPlane {
  readonly tunName: string;
  readonly tunIndex: number;
  setPeers(peers: PeerRoute[]): void;
  start(): void;
  /** Engine counters (totals, per peer, drops by reason), read on demand. */
  stats(): object;
  close(): void;
  /** One line saying which offloads are on and why others are off, for the startup log. */
  offloadReport?(): string;
  /** The engine's capture tap. */
  readonly capture?: CaptureSource;
}

export interface DataPlaneOptions {
  tunName: string;
  bindV4?: string;
  bindV6?: string;
  port: number;
  allowUnknownSource: boolean;
  /** Backend.Offload: false = all off; an object turns single offloads off. */
  offload: boolean | Partial<OffloadFlags>;
  /** The userspace VXLAN VTEP (vxlan backend without kernel VXLAN): VXLAN frames instead of flannel-udp. */
  vxlan?: { vni: number; mac: string; vtep4?: string; sendSockets: number; innerMtu: number };
}

/** What the udp backend needs from netlink (an in-memory double in unit tests). */
export interface LinkOps {
  setMtu(index: number, mtu: number): void;
  setUp(index: number): void;
  /** Adds addr/prefixLen on the link; an identical existing address is not an error. */
  ensureAddr(index: number, addr: IPAddr, prefixLen: number): boolean;
  /** Adds a route for dst via the link; returns true when it had to be added (false: already there). */
  ensureRoute(index: number, dst: IPNet): boolean;
}

export interface UdpOptions {
  port: number;
  allowUnknownSource: boolean;
  offload: boolean | Partial<OffloadFlags>;
}

/** net-conf key -> engine offload name, for Backend.Offload objects. */
const OFFLOAD_KEYS: Record<string, keyof OffloadFlags> = { VnetHdr: 'vnetHdr', TSO: 'tso', USO: 'uso', UDPGSO: 'udpGso', UDPGRO: 'udpGro' };

/**
 * Backend.Offload: absent/true (all offloads, each probed), false (none), or per feature, e.g.
 * {"TSO": false, "UDPGRO": false}. Our extension; stock flanneld ignores unknown Backend keys.
 */
export function parseOffload(raw: unknown): boolean | Partial<OffloadFlags> {
  if (raw === undefined || raw === true) return true;
  if (raw === false) return false;
  const bad = (): never => {
    throw new Error(`net-conf: Backend.Offload ${JSON.stringify(raw)} is invalid: must be true, false or an object of ${Object.keys(OFFLOAD_KEYS).join('/')} booleans`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad();
  const out: Partial<OffloadFlags> = {};
  for (const [k, v] of Object.entries(raw)) {
    const name = OFFLOAD_KEYS[k];
    if (!name || typeof v !== 'boolean') return bad();
    out[name] = v;
  }
  return out;
}

/** Backend options of net-conf.json for udp: flannel's Port, plus our AllowUnknownSource for NATed peers. */
export function parseUdpOptions(raw: Readonly<Record<string, unknown>>): UdpOptions {
  const port = raw.Port ?? 0;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`net-conf: Backend.Port ${JSON.stringify(port)} is invalid: must be a whole number from 0 to 65535 (0 means ${UDP_DEFAULT_PORT})`);
  }
  const allow = raw.AllowUnknownSource ?? false;
  if (typeof allow !== 'boolean') throw new Error(`net-conf: Backend.AllowUnknownSource ${JSON.stringify(allow)} is invalid: must be true or false`);
  return { port: port === 0 ? UDP_DEFAULT_PORT : port, allowUnknownSource: allow, offload: parseOffload(raw.Offload) };
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

export class UdpNetwork implements RunningNetwork {
  readonly mtu: number;
  private readonly peers = new Map<string, Lease>();
  /**
   * Engine rows per lease object. Leases are immutable and the stores hand out the same object until the
   * lease changes, so each table push (every event batch, every reconcile pass) formats only new leases
   * instead of making two strings and an object per peer each time.
   */
  private readonly rows = new WeakMap<Lease, PeerRoute[]>();
  private closed = false;

  constructor(
    private readonly config: NetworkConfig,
    private readonly ext: ExternalInterface,
    private readonly lease: Lease,
    private readonly opts: UdpOptions,
    private readonly plane: UdpDataPlane,
    private readonly links: LinkOps,
  ) {
    this.mtu = udpMtu(ext);
  }

  /** Configures the TUN: MTU, lease network address (/32, /128), up, a route for each overlay network. */
  bringUp(): void {
    const idx = this.plane.tunIndex;
    this.links.setMtu(idx, this.mtu);
    this.ensureDevice();
    this.links.setUp(idx);
    this.ensureRoutes();
    this.plane.start();
    log.info(`udp: ${this.plane.tunName} up, MTU ${this.mtu}, port ${this.opts.port}${this.plane.offloadReport ? ', ' + this.plane.offloadReport() : ''}`);
  }

  private ensureDevice(): number {
    let repairs = 0;
    const idx = this.plane.tunIndex;
    if (this.lease.subnet && this.links.ensureAddr(idx, { family: 4, value: this.lease.subnet.value }, 32)) repairs++;
    if (this.lease.ipv6Subnet && this.links.ensureAddr(idx, { family: 6, value: this.lease.ipv6Subnet.value }, 128)) repairs++;
    return repairs;
  }

  private ensureRoutes(): number {
    let repairs = 0;
    const idx = this.plane.tunIndex;
    if (this.config.enableIPv4 && this.config.network && this.links.ensureRoute(idx, this.config.network)) repairs++;
    if (this.config.enableIPv6 && this.config.ipv6Network && this.links.ensureRoute(idx, this.config.ipv6Network)) repairs++;
    return repairs;
  }

  private push(): void {
    this.plane.setPeers(peerRoutes(this.peers.values(), this.opts.port, this.ext, this.rows));
  }

  async handle(events: LeaseEvent[]): Promise<void> {
    for (const ev of events) {
      const key = leaseKey(ev.lease);
      if (ev.type === 'added') this.peers.set(key, ev.lease);
      else this.peers.delete(key);
    }
    this.push();
  }

  async reconcile(leases: Lease[]): Promise<number> {
    if (this.closed) return 0;
    // Routes or the address deleted by hand come back; the table is rebuilt from the full lease set,
    // which drops peers whose removal event was missed.
    const repairs = this.ensureDevice() + this.ensureRoutes();
    this.peers.clear();
    for (const l of leases) this.peers.set(leaseKey(l), l);
    this.push();
    return repairs;
  }

  get capture(): CaptureSource | undefined {
    return this.plane.capture;
  }

  stats(): Record<string, unknown> {
    return { backend: 'udp', device: this.plane.tunName, mtu: this.mtu, port: this.opts.port, engine: this.plane.stats() };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Closing the TUN fd removes the non-persistent device and with it its address and routes.
    this.plane.close();
  }
}

/** Brings a TUN-based network up; if that fails the data plane is closed, so no TUN or socket stays behind. */
export function bringUpOrClose<N extends { bringUp(): void }>(plane: UdpDataPlane, net: N): N {
  try {
    net.bringUp();
  } catch (e) {
    plane.close();
    throw e;
  }
  return net;
}

export interface UdpPlatform {
  openDataPlane(o: DataPlaneOptions): UdpDataPlane;
  links(): LinkOps;
}

export function udpBackendFactory(platform: UdpPlatform) {
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
