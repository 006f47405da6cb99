// The prober's echo messages (native/probe/echo.*) as the unit tests see them: pure, no root.
import { addonFunctions } from '../native/addon.js';

export type EchoMatchKind = 'reply' | 'error' | 'ignored';

export interface EchoMatch {
  kind: EchoMatchKind;
  /** Why a message was not one of ours (only for 'ignored'): e.g. 'other identifier', 'our own request'. */
  ignored?: string;
  seq?: number;
  type?: number;
  code?: number;
  /** Next-hop MTU of fragmentation-needed / packet-too-big, else 0. */
  mtu?: number;
  from?: string;
}

interface EchoCodecClass {
  encodeRequest(target: string, id: number, cookie: Buffer, seq: number, size?: number): Buffer;
  matchEcho(target: string, id: number, cookie: Buffer, packet: Buffer, from6?: string): EchoMatch;
}

const codec = (): EchoCodecClass => addonFunctions<{ EchoProber: EchoCodecClass }>(['EchoProber']).EchoProber;

/** The ICMP(v6) echo request the prober sends: 8-byte header, then `size` data bytes (default 56): the 8-byte cookie and a counting pattern. */
export const encodeEchoRequest = (target: string, id: number, cookie: Buffer, seq: number, size?: number): Buffer => codec().encodeRequest(target, id, cookie, seq, size);

/**
 * What the prober makes of a received message: for IPv4 the whole datagram (a raw socket delivers the
 * IP header), for IPv6 the ICMPv6 message and its sender from6. Never throws on bad bytes.
 */
export const matchEcho = (target: string, id: number, cookie: Buffer, packet: Buffer, from6?: string): EchoMatch => codec().matchEcho(target, id, cookie, packet, from6);
