// In-memory doubles of the native engine (TunDataPlane) and the TUN's link operations, for the udp
// backend and the userspace VXLAN VTEP unit tests.
import { formatCIDR, formatIP, type IPAddr, type IPNet } from '../../src/ip/index.js';
import type { LinkOps, PeerRoute, TunDataPlane } from '../../src/backend/tun/data-plane.js';

export class FakePlane implements TunDataPlane {
  constructor(
    readonly tunName = 'flannel0',
    readonly tunIndex = 7,
  ) {}
  peers: PeerRoute[] = [];
  started = false;
  closed = false;
  setPeers(p: PeerRoute[]): void {
    this.peers = p;
  }
  start(): void {
    this.started = true;
  }
  stats(): object {
    return { txPackets: 0 };
  }
  close(): void {
    this.closed = true;
  }
}

/** A kernel stand-in: a set of addresses and routes per link, which a test can delete from. */
export class FakeLinks implements LinkOps {
  mtu = new Map<number, number>();
  up = new Set<number>();
  addrs = new Set<string>();
  routes = new Set<string>();
  setMtu(i: number, m: number): void {
    this.mtu.set(i, m);
  }
  setUp(i: number): void {
    this.up.add(i);
  }
  ensureAddr(i: number, a: IPAddr, len: number): boolean {
    const k = `${i} ${formatIP(a)}/${len}`;
    if (this.addrs.has(k)) return false;
    this.addrs.add(k);
    return true;
  }
  ensureRoute(i: number, dst: IPNet): boolean {
    const k = `${i} ${formatCIDR(dst)}`;
    if (this.routes.has(k)) return false;
    this.routes.add(k);
    return true;
  }
}

