// Pure offload helpers from the native addon (native/offload/): userspace GSO split and GRO coalesce,
// exposed for table-driven unit tests and micro benchmarks. No root needed.
import { addonFunctions } from './addon.js';

/** struct virtio_net_hdr, host byte order (little-endian on every platform flannelts builds for). */
export interface VnetHeader {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

export const VNET_HDR_LEN = 10;
export const VNET_F_NEEDS_CSUM = 1;
export const GSO = { none: 0, tcpv4: 1, udp: 3, tcpv6: 4, udpL4: 5, ecn: 0x80 } as const;

export function encodeVnetHeader(h: Partial<VnetHeader>): Buffer {
  const b = Buffer.alloc(VNET_HDR_LEN);
  b[0] = h.flags ?? 0;
  b[1] = h.gsoType ?? 0;
  b.writeUInt16LE(h.hdrLen ?? 0, 2);
  b.writeUInt16LE(h.gsoSize ?? 0, 4);
  b.writeUInt16LE(h.csumStart ?? 0, 6);
  b.writeUInt16LE(h.csumOffset ?? 0, 8);
  return b;
}

export function decodeVnetHeader(b: Buffer): VnetHeader {
  return { flags: b[0]!, gsoType: b[1]!, hdrLen: b.readUInt16LE(2), gsoSize: b.readUInt16LE(4), csumStart: b.readUInt16LE(6), csumOffset: b.readUInt16LE(8) };
}

export interface SplitOutput {
  /** null, or why the packet was refused: bad_vnet_hdr, malformed, bad_gso_type, bad_csum_offsets, bad_headers, bad_gso_size, no_room. */
  error: string | null;
  segments: Buffer[];
  segLen?: number;
  lastLen?: number;
}

export interface CoalesceOutput {
  /** Each: virtio header (10 bytes) + IP packet, as written to the TUN. */
  packets: Buffer[];
  /** Wire segments in each output packet (1 = passed through unchanged). */
  segments: number[];
  malformed: number;
  coalesced: number;
}

interface OffloadExports {
  gsoSplit(tunRead: Buffer): SplitOutput;
  gsoSplitInto(tunRead: Buffer, out: Buffer): number;
  groCoalesce(packets: Buffer[]): CoalesceOutput;
  groCoalesceCount(packed: Buffer, packetLen: number): number;
}

function exportsOf(): OffloadExports {
  return addonFunctions<OffloadExports>(['gsoSplit', 'gsoSplitInto', 'groCoalesce', 'groCoalesceCount']);
}

/** Splits a TUN read (virtio header + IP packet) into wire packets, as the engine's TX thread does. */
export function gsoSplit(tunRead: Buffer): SplitOutput {
  return exportsOf().gsoSplit(tunRead);
}

/** gsoSplit into a caller buffer; returns the segment count or -1 (benchmarks: no allocation). */
export function gsoSplitInto(tunRead: Buffer, out: Buffer): number {
  return exportsOf().gsoSplitInto(tunRead, out);
}

/** Coalesces wire packets (arrival order) into what the engine's RX thread writes to the TUN. */
export function groCoalesce(packets: Buffer[]): CoalesceOutput {
  return exportsOf().groCoalesce(packets);
}

/** groCoalesce over back-to-back packets of one length; returns the number of TUN writes. */
export function groCoalesceCount(packed: Buffer, packetLen: number): number {
  return exportsOf().groCoalesceCount(packed, packetLen);
}
