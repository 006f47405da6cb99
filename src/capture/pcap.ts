// pcap writers for `flannelctl capture` (pure functions over bytes, unit-tested byte by byte).
// Default pcapng: every packet is an Enhanced Packet Block whose comment says direction, peer and,
// for a dropped packet, the engine's drop reason (Wireshark shows it as the packet comment, and
// tcpdump >= 4.99 reads the file). Classic pcap (magic 0xa1b2c3d4, v2.4) for older tools carries no
// per-packet annotations. Both use LINKTYPE_RAW: the inner packets are bare IPv4/IPv6.
import type { CaptureRecord } from './records.js';

export const LINKTYPE_RAW = 101;
export const CAPTURE_FORMATS = ['pcapng', 'pcap'] as const;
export type CaptureFormat = (typeof CAPTURE_FORMATS)[number];

const pad4 = (n: number): number => (n + 3) & ~3;

/** One pcapng option (code, length, value padded to 32 bits). */
function option(code: number, value: Buffer): Buffer {
  const b = Buffer.alloc(4 + pad4(value.length));
  b.writeUInt16LE(code, 0);
  b.writeUInt16LE(value.length, 2);
  value.copy(b, 4);
  return b;
}

const END_OF_OPTIONS = Buffer.alloc(4);

/** A pcapng block: type, total length, body, total length again. */
function block(type: number, body: Buffer): Buffer {
  const total = 12 + body.length;
  const b = Buffer.alloc(total);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(total, 4);
  body.copy(b, 8);
  b.writeUInt32LE(total, total - 4);
  return b;
}

/** Section Header Block + one Interface Description Block (raw IP, nanosecond timestamps). */
export function pcapngHeader(o: { snaplen: number; device: string; application: string }): Buffer {
  const shb = Buffer.alloc(16);
  shb.writeUInt32LE(0x1a2b3c4d, 0); // byte-order magic
  shb.writeUInt16LE(1, 4); // version 1.0
  shb.writeUInt16LE(0, 6);
  shb.writeBigInt64LE(-1n, 8); // section length unknown (streamed)
  const idb = Buffer.alloc(8);
  idb.writeUInt16LE(LINKTYPE_RAW, 0);
  idb.writeUInt32LE(o.snaplen, 4);
  return Buffer.concat([
    block(0x0a0d0d0a, Buffer.concat([shb, option(4, Buffer.from(o.application)), END_OF_OPTIONS])),
    // if_name, if_tsresol = 9 (10^-9 s)
    block(1, Buffer.concat([idb, option(2, Buffer.from(o.device)), option(9, Buffer.from([9])), END_OF_OPTIONS])),
  ]);
}

/** "dir=rx peer=198.19.2.0/24 via 198.18.0.12", prefixed by "drop reason=X " for a dropped packet. */
export function recordComment(r: CaptureRecord): string {
  const peer = r.peerSubnet ? ` peer=${r.peerSubnet}${r.peerIP ? ` via ${r.peerIP}` : ''}` : r.peerIP ? ` peer=${r.peerIP}` : '';
  return `${r.reason ? `drop reason=${r.reason} ` : ''}dir=${r.dir}${peer}`;
}

/** Enhanced Packet Block: interface 0, ns timestamp, the comment, epb_flags inbound (rx) / outbound (tx). */
export function pcapngPacket(r: CaptureRecord): Buffer {
  const head = Buffer.alloc(20);
  head.writeUInt32LE(0, 0);
  head.writeUInt32LE(Number(r.timeNs >> 32n), 4);
  head.writeUInt32LE(Number(r.timeNs & 0xffffffffn), 8);
  head.writeUInt32LE(r.data.length, 12);
  head.writeUInt32LE(r.originalLength, 16);
  const data = Buffer.alloc(pad4(r.data.length));
  r.data.copy(data);
  const flags = Buffer.alloc(4);
  flags.writeUInt32LE(r.dir === 'rx' ? 1 : 2, 0);
  return block(6, Buffer.concat([head, data, option(1, Buffer.from(recordComment(r))), option(2, flags), END_OF_OPTIONS]));
}

/** Classic libpcap global header: microsecond timestamps, v2.4, raw IP. */
export function pcapHeader(snaplen: number): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt32LE(0xa1b2c3d4, 0);
  b.writeUInt16LE(2, 4);
  b.writeUInt16LE(4, 6);
  b.writeUInt32LE(snaplen, 16); // thiszone and sigfigs stay 0
  b.writeUInt32LE(LINKTYPE_RAW, 20);
  return b;
}

export function pcapPacket(r: CaptureRecord): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32LE(Number(r.timeNs / 1_000_000_000n), 0);
  h.writeUInt32LE(Number((r.timeNs % 1_000_000_000n) / 1000n), 4);
  h.writeUInt32LE(r.data.length, 8);
  h.writeUInt32LE(r.originalLength, 12);
  return Buffer.concat([h, r.data]);
}

/** The file header and per-packet encoder of a format. */
export function pcapEncoder(format: CaptureFormat, o: { snaplen: number; device: string; application: string }): { header: Buffer; packet(r: CaptureRecord): Buffer } {
  return format === 'pcap' ? { header: pcapHeader(o.snaplen), packet: pcapPacket } : { header: pcapngHeader(o), packet: pcapngPacket };
}
