// An independent reader of the pcap files `flannelctl capture` writes (pcapng and classic pcap,
// little-endian), so the tests check the bytes rather than trust the writer.

export interface ReadPacket {
  /** ns since the epoch (µs precision for classic pcap). */
  timeNs: bigint;
  capturedLength: number;
  originalLength: number;
  data: Buffer;
  /** pcapng opt_comment, if any. */
  comment?: string;
  /** pcapng epb_flags, if any. */
  flags?: number;
}

export interface ReadCapture {
  format: 'pcapng' | 'pcap';
  linkType: number;
  snaplen: number;
  /** pcapng: if_name, if_tsresol, shb_userappl. */
  ifName?: string;
  tsresol?: number;
  application?: string;
  packets: ReadPacket[];
}

function options(b: Buffer, at: number, end: number): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  while (at + 4 <= end) {
    const code = b.readUInt16LE(at);
    const len = b.readUInt16LE(at + 2);
    if (code === 0) break;
    m.set(code, b.subarray(at + 4, at + 4 + len));
    at += 4 + ((len + 3) & ~3);
  }
  return m;
}

export function readPcap(b: Buffer): ReadCapture {
  const magic = b.readUInt32LE(0);
  if (magic === 0xa1b2c3d4) {
    if (b.readUInt16LE(4) !== 2 || b.readUInt16LE(6) !== 4) throw new Error('pcap: not v2.4');
    const cap: ReadCapture = { format: 'pcap', snaplen: b.readUInt32LE(16), linkType: b.readUInt32LE(20), packets: [] };
    for (let at = 24; at < b.length; ) {
      const incl = b.readUInt32LE(at + 8);
      cap.packets.push({
        timeNs: BigInt(b.readUInt32LE(at)) * 1_000_000_000n + BigInt(b.readUInt32LE(at + 4)) * 1000n,
        capturedLength: incl,
        originalLength: b.readUInt32LE(at + 12),
        data: b.subarray(at + 16, at + 16 + incl),
      });
      at += 16 + incl;
    }
    return cap;
  }
  if (magic !== 0x0a0d0d0a) throw new Error(`not a pcap or pcapng file (magic ${magic.toString(16)})`);
  const cap: ReadCapture = { format: 'pcapng', snaplen: 0, linkType: -1, packets: [] };
  for (let at = 0; at < b.length; ) {
    const type = b.readUInt32LE(at);
    const len = b.readUInt32LE(at + 4);
    if (len < 12 || at + len > b.length || b.readUInt32LE(at + len - 4) !== len) throw new Error(`pcapng: bad block at ${at}`);
    const body = at + 8;
    const end = at + len - 4;
    if (type === 0x0a0d0d0a) {
      if (b.readUInt32LE(body) !== 0x1a2b3c4d) throw new Error('pcapng: bad byte-order magic');
      cap.application = options(b, body + 16, end).get(4)?.toString();
    } else if (type === 1) {
      cap.linkType = b.readUInt16LE(body);
      cap.snaplen = b.readUInt32LE(body + 4);
      const o = options(b, body + 8, end);
      cap.ifName = o.get(2)?.toString();
      cap.tsresol = o.get(9)?.[0];
    } else if (type === 6) {
      const capLen = b.readUInt32LE(body + 12);
      const o = options(b, body + 20 + ((capLen + 3) & ~3), end);
      cap.packets.push({
        timeNs: (BigInt(b.readUInt32LE(body + 4)) << 32n) | BigInt(b.readUInt32LE(body + 8)),
        capturedLength: capLen,
        originalLength: b.readUInt32LE(body + 16),
        data: b.subarray(body + 20, body + 20 + capLen),
        comment: o.get(1)?.toString(),
        flags: o.get(2)?.readUInt32LE(0),
      });
    }
    at += len;
  }
  return cap;
}

export interface UnderlayFrame {
  outerFamily?: 4 | 6;
  udp?: { srcPort: number; dstPort: number; payload: Buffer };
}

/** Ethernet (LINKTYPE_EN10MB) records: the outer IP family and, for UDP, ports and payload. */
export function ethernetFrames(records: ReadonlyArray<{ data: Buffer }>): UnderlayFrame[] {
  return records.map(({ data: d }) => {
    if (d.length < 14) return {};
    const type = d.readUInt16BE(12);
    let l4: number;
    let proto: number;
    let family: 4 | 6;
    if (type === 0x0800 && d.length >= 34) {
      family = 4;
      l4 = 14 + (d[14]! & 0x0f) * 4;
      proto = d[23]!;
    } else if (type === 0x86dd && d.length >= 54) {
      family = 6;
      l4 = 54;
      proto = d[20]!;
    } else {
      return {};
    }
    if (proto !== 17 || d.length < l4 + 8) return { outerFamily: family };
    const len = d.readUInt16BE(l4 + 4);
    return { outerFamily: family, udp: { srcPort: d.readUInt16BE(l4), dstPort: d.readUInt16BE(l4 + 2), payload: d.subarray(l4 + 8, l4 + len) } };
  });
}
