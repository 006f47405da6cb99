// A minimal reader of classic pcap files (what `tcpdump -w` writes) for asserting on captured frames.
export interface PcapRecord {
  tsSec: number;
  data: Buffer;
}

export function readPcap(b: Buffer): PcapRecord[] {
  if (b.length < 24) throw new Error(`pcap: ${b.length} bytes, shorter than the file header`);
  const magic = b.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && b.readUInt32BE(0) !== 0xa1b2c3d4 && b.readUInt32BE(0) !== 0xa1b23c4d) throw new Error(`pcap: bad magic 0x${magic.toString(16)}`);
  const u32 = (o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const out: PcapRecord[] = [];
  for (let off = 24; off + 16 <= b.length; ) {
    const incl = u32(off + 8);
    out.push({ tsSec: u32(off), data: b.subarray(off + 16, off + 16 + incl) });
    off += 16 + incl;
  }
  return out;
}

export interface UnderlayFrame {
  outerFamily?: 4 | 6;
  udp?: { srcPort: number; dstPort: number; payload: Buffer };
}

/** Ethernet (LINKTYPE_EN10MB) records: the outer IP family and, for UDP, ports and payload. */
export function ethernetFrames(records: PcapRecord[]): UnderlayFrame[] {
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
