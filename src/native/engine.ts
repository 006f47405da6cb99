// Typed view of the native data-plane engine (native/engine/). TypeScript owns state and pushes
// whole peer tables down; the engine owns packets on its own threads and exposes counters.
import { loadAddon } from './addon.js';
import type { WgInterface } from './wireguard.js';

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
  /**
   * Offloads to try (each probed, and off when the kernel refuses it): `false` turns all off, an object
   * turns single ones off. Default: all on.
   */
  offload?: boolean | Partial<OffloadFlags>;
  /**
   * Wire format: 'flannel-udp' (default: the inner packet is the UDP payload) or 'vxlan' (a Linux vxlan
   * device's frames: VXLAN header + Ethernet; the userspace VTEP). With 'vxlan', vni and mac are required.
   */
  encap?: 'flannel-udp' | 'vxlan' | 'wireguard';
  /** VXLAN: our VNI. */
  vni?: number;
  /** VXLAN: our VTEP MAC (the lease's VtepMAC). */
  mac?: string;
  /** VXLAN: our VTEP IPv4 address (the lease's network address); ARP requests for it are answered. */
  vtep4?: string;
  /** VXLAN: send-only sockets (outer source ports) that inner flows are spread over; 0..64. */
  sendSockets?: number;
  /** VXLAN: the TUN MTU; larger inner TCP packets that arrive whole (GSO between namespaces) are re-segmented. */
  innerMtu?: number;
  /** WireGuard: the interface (keys, peers) this engine runs; every route then names a peer's publicKey. */
  wireguard?: WgInterface;
  /** WireGuard: another port the IPv6 socket pair also listens on (flannel's ListenPortV6 quirk); needs bindV6. */
  alsoPortV6?: number;
  /**
   * Microseconds the TX thread keeps polling for an answer after a small send (ping, request/response),
   * handling it without waking the sleeping RX thread; adaptive (shrinks while nothing answers).
   * 0..MAX_REPLY_POLL_US, 0 turns it off. Default DEFAULT_REPLY_POLL_US.
   */
  replyPollUs?: number;
  /**
   * Data-plane threads: 0 (default) one thread carries both directions and a second takes the TUN
   * side over while both directions are busy (native/engine/thread_mode.h); 1 or 2 fix the number.
   */
  dataThreads?: 0 | 1 | 2;
  /** Automatic threads: split at this much busy time per 100 ms window, 1..100 (default 80); tests lower it. */
  splitAtPercent?: number;
  /**
   * Test seam: run over an open, non-blocking TUN(-like) fd whose offloads were negotiated elsewhere,
   * instead of opening `tunName` (then tunName is '' and tunIndex 0). No ioctl is made on it. The
   * engine works on a dup() of the fd and closes only that: the caller still owns and closes its fd.
   */
  tun?: InjectedTun;
  /** Test seam: already bound, non-blocking UDP sockets instead of binding bindV4/bindV6:port (dup()ed like tun.fd). */
  sockets?: { fd4: number; fd6?: number };
}

/** An open TUN(-like) fd and the offloads negotiated on it (tso needs vnetHdr, uso needs tso). */
export interface InjectedTun {
  fd: number;
  vnetHdr: boolean;
  tso: boolean;
  uso: boolean;
}

export { DEFAULT_REPLY_POLL_US, MAX_REPLY_POLL_US } from '../config/dataplane.js';

/** Reply polling after small sends (see EngineOptions.replyPollUs). */
export interface ReplyPollStats {
  /** The configured (largest) window; 0 = off. */
  windowUs: number;
  /** Windows in which an answer (or more work) turned up and was handled by the polling thread. */
  hits: number;
  /** Windows that ran out with nothing to do. */
  misses: number;
  /** Small sends after which the window, shrunk by misses, said not to poll. */
  skipped: number;
}

/** The data-plane threads (see EngineOptions.dataThreads). */
export interface ThreadStats {
  /** What was asked for: 0 automatic, 1 or 2 fixed. */
  mode: number;
  /** Threads carrying packets now: 1 (both directions on one) or 2. */
  current: number;
  /** Automatic mode: switches to two threads, and back to one. */
  splits: number;
  merges: number;
}

/** The offloads of the udp data plane (see native/offload/). */
export interface OffloadFlags {
  /** IFF_VNET_HDR on the TUN: virtio headers on every read/write (needed by tso, uso and GRO to the TUN). */
  vnetHdr: boolean;
  /** TUNSETOFFLOAD TSO4/TSO6: TCP super-packets from the TUN, split in userspace. */
  tso: boolean;
  /** TUNSETOFFLOAD USO4/USO6: UDP super-packets from the TUN. */
  uso: boolean;
  /** UDP_SEGMENT: up to 64 wire datagrams per sendmsg. */
  udpGso: boolean;
  /** UDP_GRO: coalesced receive buffers from the socket. */
  udpGro: boolean;
}

export const OFFLOAD_FLAGS = ['vnetHdr', 'tso', 'uso', 'udpGso', 'udpGro'] as const satisfies ReadonlyArray<keyof OffloadFlags>;

export interface OffloadCounters {
  /** Super-packets from the TUN that were split, and the segments they made. */
  gsoPackets: number;
  gsoSegments: number;
  /** sendmsg calls that carried more than one segment (UDP_SEGMENT). */
  udpGsoSends: number;
  /** Super-packets written to the TUN, and the wire segments merged into them. */
  groPackets: number;
  groSegments: number;
  /** Receive buffers the kernel had coalesced (UDP_GRO). */
  udpGroBatches: number;
}

export interface PeerRoute {
  /** Peer subnet as CIDR, v4 or v6. */
  subnet: string;
  /** Peer public (underlay) address, v4 or v6. */
  publicIP: string;
  port: number;
  /** VXLAN: the peer's VTEP MAC (required with encap 'vxlan'). */
  mac?: string;
  /**
   * WireGuard: the peer's public key in hex (required with encap 'wireguard'; the peer must be set on
   * the interface first). publicIP may then be '' and port 0 (an endpoint not known yet).
   */
  publicKey?: string;
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
  'bad_vnet_hdr',
  'wrong_vni',
  'unknown_mac',
  'wrong_dst_mac',
  'bad_ethertype',
  'arp_ignored',
  'wg_no_endpoint',
  'wg_handshake_queue_full',
  'wg_unknown_receiver',
  'wg_decrypt_failed',
  'wg_replay',
  'wg_expired_keypair',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export interface PeerStats extends PeerRoute {
  /** TUN -> UDP (to this peer), inner packet bytes. */
  tx: DirectionStats;
  /** UDP -> TUN (from this peer), inner packet bytes. */
  rx: DirectionStats;
  /** Wall-clock ms of the last packet accepted from this peer (to within a second); 0 = never. */
  lastRxMs: number;
}

/** What startCapture records; every field optional (default: everything, 65535-byte snaplen). */
export interface CaptureFilter {
  /** Packets read from the TUN for a peer (and drops on that side). Default true. */
  tx?: boolean;
  /** Packets from peers written to the TUN (and drops on that side). Default true. */
  rx?: boolean;
  /** Packets actually moved; false records drops only. Default true. */
  traffic?: boolean;
  /** Drop reasons to record; absent = all, [] = none. */
  reasons?: string[];
  /** CIDRs or addresses: the peer's public address, its subnet or an inner address must fall in one. */
  peers?: string[];
  /** Bytes kept per packet (1..262144). Default 65535. */
  snaplen?: number;
  /** Stop recording after this many packets; 0 = no limit. */
  maxPackets?: number;
  /** The native buffer between two reads (64 KiB..256 MiB; twice that while capturing). Default 4 MiB. */
  bufferBytes?: number;
}

/** One poll of a running capture: the records since the last poll (layout in native/engine/capture_ring.h). */
export interface CaptureChunk {
  active: boolean;
  /** Records kept so far (all polls), and records the full buffer could not take. */
  recorded: number;
  lost: number;
  records: Buffer;
}

export interface EngineStats {
  tx: DirectionStats;
  rx: DirectionStats;
  drops: Record<DropReason, number>;
  /** VXLAN: ARP requests for our VTEP address that were answered. */
  arpReplies: number;
  /** Offloads in effect (asked for and accepted); udpGso can switch off later (EIO from a GSO send). */
  offloads: OffloadFlags;
  offload: OffloadCounters;
  replyPoll: ReplyPollStats;
  threads: ThreadStats;
  /** Why a requested offload is off, e.g. "uso: TUNSETOFFLOAD USO4|USO6 refused (EINVAL); "; empty when all are on. */
  offloadNotes: string;
  peers: PeerStats[];
  /** Whether a capture runs; records lost to a full capture buffer over every capture. */
  capture: { active: boolean; lost: number };
}

/** "vnetHdr+tso+uso+udpGso+udpGro" or "none", for the startup log. */
export function describeOffloads(o: OffloadFlags): string {
  const on = OFFLOAD_FLAGS.filter((k) => o[k]);
  return on.length ? on.join('+') : 'none';
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
  startCapture(f: CaptureFilter): void;
  readCapture(): CaptureChunk;
  stopCapture(): CaptureChunk;
}
type NativeEngineCtor = new (o: EngineOptions) => NativeEngine;

function nativeCtor(): NativeEngineCtor {
  const ctor = loadAddon()['Engine'];
  if (typeof ctor !== 'function') throw new Error('flannelts: native addon has no Engine export');
  return ctor as NativeEngineCtor;
}

/** The engine's drop reason names in its own order (capture records carry the index). */
export function nativeDropReasons(): readonly string[] {
  const r = loadAddon()['dropReasons'];
  if (!Array.isArray(r) || !r.every((x): x is string => typeof x === 'string')) throw new Error('flannelts: native addon has no dropReasons export');
  return r;
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

  /** Starts recording packets that match f (one capture at a time: throws while one runs). */
  startCapture(f: CaptureFilter): void {
    this.native.startCapture(f);
  }

  /** The records gathered since the last call; poll it, the engine never calls back. */
  readCapture(): CaptureChunk {
    return this.native.readCapture();
  }

  /** Stops recording and frees the buffer; returns the last records. Idempotent. */
  stopCapture(): CaptureChunk {
    return this.native.stopCapture();
  }

  /** Stops and joins the threads and closes the TUN and sockets. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.close();
  }
}
