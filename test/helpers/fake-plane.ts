// In-memory doubles of the native engine (TunDataPlane) and the TUN's link operations, for the udp
// backend and the userspace VXLAN VTEP unit tests.
import { formatCIDR, formatIP, type IPAddr, type IPNet } from '../../src/ip/index.js';
import type { LinkOps, PeerRoute, TunDataPlane } from '../../src/backend/tun/data-plane.js';
import { DROP_REASONS, type EngineStats } from '../../src/native/engine.js';

/** An engine that has moved nothing: every counter 0, every offload off. */
export function emptyEngineStats(): EngineStats {
  const none = { packets: 0, bytes: 0 };
  return {
    tx: { ...none },
    rx: { ...none },
    drops: Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as EngineStats['drops'],
    arpReplies: 0,
    offloads: { vnetHdr: false, tso: false, uso: false, udpGso: false, udpGro: false },
    offload: { gsoPackets: 0, gsoSegments: 0, udpGsoSends: 0, groPackets: 0, groSegments: 0, udpGroBatches: 0 },
    replyPoll: { windowUs: 0, hits: 0, misses: 0, skipped: 0 },
    threads: { mode: 0, current: 1, splits: 0, merges: 0 },
    offloadNotes: '',
    peers: [],
    capture: { active: false, lost: 0 },
  };
}

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
  stats(): EngineStats {
    return emptyEngineStats();
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

