// Pure packet helpers from the native addon (native/base/ip_packet.*, native/engine/routes.*), exposed for unit
// tests and control-side checks. They run on the calling thread; no root needed.
import { addonFunctions } from './addon.js';
import type { PeerRoute } from './engine.js';

export type PacketKind = 'ipv4' | 'ipv6' | 'truncated' | 'bad_version' | 'bad_ihl' | 'length_mismatch';

export interface PacketClass {
  kind: PacketKind;
  /** Inner packet length from its header (only for ipv4/ipv6). */
  length?: number;
  src?: string;
  dst?: string;
}

export type TtlResult = 'ok' | 'expired' | 'malformed';

interface NativeRouteTable {
  set(routes: PeerRoute[]): void;
  lookup(ip: string): PeerRoute | null;
  isPeerAddress(ip: string): boolean;
  lookupMany(packedV4: Buffer): number;
}

interface PacketExports {
  classifyPacket(b: Buffer): PacketClass;
  decrementTTL(b: Buffer): TtlResult;
  icmpUnreachable(b: Buffer): Buffer | null;
  RouteTable: new () => NativeRouteTable;
  replyPollWindows(maxUs: number, outcomes: boolean[]): number[];
  threadModeNext(splitAtPercent: number, split: boolean, wallNs: number, cpuNs: number, tunBusyNs: number, sockBusyNs: number): boolean;
}

function exportsOf(): PacketExports {
  return addonFunctions<PacketExports>(['classifyPacket', 'decrementTTL', 'icmpUnreachable', 'RouteTable', 'replyPollWindows', 'threadModeNext']);
}

/** Validates an IP packet header and extracts addresses; never throws on bad bytes. */
export function classifyPacket(b: Buffer): PacketClass {
  return exportsOf().classifyPacket(b);
}

/** Decrements IPv4 TTL (incremental checksum) or IPv6 hop limit in place. 'expired' leaves b unchanged. */
export function decrementTTL(b: Buffer): TtlResult {
  return exportsOf().decrementTTL(b);
}

/** ICMPv4 net-unreachable / ICMPv6 no-route error for the offending packet, or null when none is due. */
export function icmpUnreachable(b: Buffer): Buffer | null {
  return exportsOf().icmpUnreachable(b);
}

/**
 * The engine's adaptive reply-polling window (native/engine/reply_poll.h) over a run of small sends: the
 * window each send polls for (0 = skipped), where outcomes[i] says whether send i's poll found an
 * answer (only read for sends that poll).
 */
export function replyPollWindows(maxUs: number, outcomes: boolean[]): number[] {
  return exportsOf().replyPollWindows(maxUs, outcomes);
}

/** The engine's longest-prefix-match table, standalone. */
export class RouteTable {
  private readonly native: NativeRouteTable;
  constructor(routes: PeerRoute[] = []) {
    this.native = new (exportsOf().RouteTable)();
    this.native.set(routes);
  }
  set(routes: PeerRoute[]): void {
    this.native.set(routes);
  }
  lookup(ip: string): PeerRoute | null {
    return this.native.lookup(ip);
  }
  isPeerAddress(ip: string): boolean {
    return this.native.isPeerAddress(ip);
  }
  /** Looks up every 4-byte IPv4 address packed in b; returns how many matched (benchmarks). */
  lookupMany(packedV4: Buffer): number {
    return this.native.lookupMany(packedV4);
  }
}

/**
 * The engine's thread-mode decision (native/engine/thread_mode.h): whether the next window runs the two
 * directions on two threads, given the current mode, one window's wall time, the CPU time the engine's
 * threads used in it, and the time spent on the TUN side and the socket side (nanoseconds).
 */
export function threadModeNext(splitAtPercent: number, split: boolean, wallNs: number, cpuNs: number, tunBusyNs: number, sockBusyNs: number): boolean {
  return exportsOf().threadModeNext(splitAtPercent, split, wallNs, cpuNs, tunBusyNs, sockBusyNs);
}
