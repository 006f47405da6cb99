// Typed view of the native data-plane engine (native/engine.*). TypeScript owns state and pushes
// whole peer tables down; the engine owns packets on its own threads and exposes counters.
import { loadAddon } from './addon.js';

export interface EngineOptions {
  /** TUN name; `%d` lets the kernel pick the number. Default 'flannel%d'. */
  tunName?: string;
  /** IPv4 address to bind the underlay socket to (the external address). Default 0.0.0.0. */
  bindV4?: string;
  /** IPv6 address for a second underlay socket; none when absent. */
  bindV6?: string;
  /** UDP port (flannel Backend.Port). Default 8285; 0 picks an ephemeral port (tests). */
  port?: number;
  /** Accept datagrams from any outer source (peers behind NAT); inner source must still be a peer subnet. */
  allowUnknownSource?: boolean;
}

export interface PeerRoute {
  /** Peer subnet as CIDR, v4 or v6. */
  subnet: string;
  /** Peer public (underlay) address, v4 or v6. */
  publicIP: string;
  port: number;
}

export interface DirectionStats {
  packets: number;
  bytes: number;
}

export const DROP_REASONS = [
  'no_route',
  'ttl_expired',
  'malformed',
  'spoofed_source',
  'unknown_peer',
  'tun_write_error',
  'tun_read_error',
  'socket_send_error',
  'socket_recv_error',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export interface PeerStats extends PeerRoute {
  /** TUN -> UDP (to this peer), inner packet bytes. */
  tx: DirectionStats;
  /** UDP -> TUN (from this peer), inner packet bytes. */
  rx: DirectionStats;
}

export interface EngineStats {
  tx: DirectionStats;
  rx: DirectionStats;
  drops: Record<DropReason, number>;
  peers: PeerStats[];
}

/** The native object as the addon exports it. */
interface NativeEngine {
  readonly tunName: string;
  readonly tunIndex: number;
  readonly port: number;
  setPeers(peers: PeerRoute[]): void;
  start(): void;
  stats(): EngineStats;
  close(): void;
}
type NativeEngineCtor = new (o: EngineOptions) => NativeEngine;

function nativeCtor(): NativeEngineCtor {
  const ctor = loadAddon()['Engine'];
  if (typeof ctor !== 'function') throw new Error('flannelts: native addon has no Engine export');
  return ctor as NativeEngineCtor;
}

export class Engine {
  private closed = false;

  private constructor(private readonly native: NativeEngine) {}

  /**
   * Creates the TUN device and binds the underlay sockets. Throws an Error whose `code` is the errno
   * name, e.g. "open TUN flannel%d: EPERM (needs CAP_NET_ADMIN)".
   */
  static open(o: EngineOptions = {}): Engine {
    const Ctor = nativeCtor();
    return new Engine(new Ctor(o));
  }

  get tunName(): string {
    return this.native.tunName;
  }
  get tunIndex(): number {
    return this.native.tunIndex;
  }
  /** The bound UDP port (useful with port 0). */
  get port(): number {
    return this.native.port;
  }

  /** Replaces the whole peer table; lookups switch atomically. Counters survive for unchanged subnets. */
  setPeers(peers: PeerRoute[]): void {
    this.native.setPeers(peers);
  }

  /** Starts the TUN->UDP and UDP->TUN threads. No-op when already started. */
  start(): void {
    this.native.start();
  }

  stats(): EngineStats {
    return this.native.stats();
  }

  /** Stops and joins the threads and closes the TUN and sockets. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.close();
  }
}
