// Decodes the engine's capture records (one Buffer per poll; layout in native/capture.h) into plain
// objects for the pcap writers. Pure: the unit tests feed it hand-built bytes.
import { formatCIDR, formatIP, type Family } from '../ip/index.js';

export type CaptureDirection = 'tx' | 'rx';

export interface CaptureRecord {
  /** Wall-clock time the engine saw the packet, ns since the Unix epoch. */
  timeNs: bigint;
  /** tx: read from the TUN for a peer; rx: from a peer for the TUN (drops belong to one side too). */
  dir: CaptureDirection;
  /** Drop reason; absent for a packet the engine moved. */
  reason?: string;
  /** The peer's public (underlay) address, when the engine knew it. */
  peerIP?: string;
  /** The peer's subnet, when the packet was routed to or accepted from one. */
  peerSubnet?: string;
  /** Length of the packet before truncation to the snaplen. */
  originalLength: number;
  /** The inner IP packet (truncated to the snaplen). */
  data: Buffer;
}

export const RECORD_HEADER_BYTES = 64;
const NO_REASON = 0xff;

function addrValue(b: Buffer, at: number, family: Family): bigint {
  let v = 0n;
  for (let i = 0; i < (family === 4 ? 4 : 16); i++) v = (v << 8n) | BigInt(b[at + i]!);
  return v;
}

const familyOf = (n: number): Family | undefined => (n === 4 || n === 6 ? n : undefined);

/**
 * Splits one poll's bytes into records. `reasons` maps the engine's drop index to its name
 * (nativeDropReasons()); an index it does not know is shown as reason_<n>. Throws on a record that
 * runs past the end (a layout mismatch between addon and TypeScript, not a runtime condition).
 */
export function decodeRecords(buf: Buffer, reasons: readonly string[]): CaptureRecord[] {
  const out: CaptureRecord[] = [];
  let at = 0;
  while (at < buf.length) {
    if (buf.length - at < RECORD_HEADER_BYTES) throw new Error(`capture record at ${at}: truncated header`);
    const size = buf.readUInt32LE(at);
    const capLen = buf.readUInt32LE(at + 4);
    if (size < RECORD_HEADER_BYTES + capLen || at + size > buf.length) throw new Error(`capture record at ${at}: bad size ${size}`);
    const reasonIdx = buf[at + 13]!;
    const peerFamily = familyOf(buf[at + 14]!);
    const subnetFamily = familyOf(buf[at + 15]!);
    const rec: CaptureRecord = {
      timeNs: buf.readBigUInt64LE(at + 24),
      dir: buf[at + 12] === 0 ? 'tx' : 'rx',
      originalLength: buf.readUInt32LE(at + 8),
      data: Buffer.from(buf.subarray(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + capLen)),
    };
    if (reasonIdx !== NO_REASON) rec.reason = reasons[reasonIdx] ?? `reason_${reasonIdx}`;
    if (peerFamily) rec.peerIP = formatIP({ family: peerFamily, value: addrValue(buf, at + 32, peerFamily) });
    if (subnetFamily) rec.peerSubnet = formatCIDR({ family: subnetFamily, value: addrValue(buf, at + 48, subnetFamily), prefixLen: buf[at + 16]! });
    out.push(rec);
    at += size;
  }
  return out;
}
