// Hand-built IP packets for tests, with checksums computed here independently of the native code.

/** RFC 1071 Internet checksum over b (plus an optional initial 32-bit partial sum). */
export function inetChecksum(b: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < b.length; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (b.length % 2 === 1) sum += b[b.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

export function v4Bytes(ip: string): Buffer {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) throw new Error(`bad IPv4 ${ip}`);
  return Buffer.from(parts);
}

export function v6Bytes(ip: string): Buffer {
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8) throw new Error(`bad IPv6 ${ip}`);
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

export interface V4Opts {
  src: string;
  dst: string;
  proto?: number;
  ttl?: number;
  id?: number;
  payload?: Buffer;
}

/** IPv4 header (IHL 5) + payload with a correct header checksum. */
export function ipv4(o: V4Opts): Buffer {
  const payload = o.payload ?? Buffer.alloc(0);
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payload.length, 2);
  h.writeUInt16BE(o.id ?? 0x1234, 4);
  h[8] = o.ttl ?? 64;
  h[9] = o.proto ?? 17;
  v4Bytes(o.src).copy(h, 12);
  v4Bytes(o.dst).copy(h, 16);
  h.writeUInt16BE(inetChecksum(h), 10);
  return Buffer.concat([h, payload]);
}

export interface V6Opts {
  src: string;
  dst: string;
  next?: number;
  hop?: number;
  payload?: Buffer;
}

export function ipv6(o: V6Opts): Buffer {
  const payload = o.payload ?? Buffer.alloc(0);
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h.writeUInt16BE(payload.length, 4);
  h[6] = o.next ?? 17;
  h[7] = o.hop ?? 64;
  v6Bytes(o.src).copy(h, 8);
  v6Bytes(o.dst).copy(h, 24);
  return Buffer.concat([h, payload]);
}

/** UDP header + data (checksum 0, allowed for IPv4). */
export function udp(srcPort: number, dstPort: number, data: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(srcPort, 0);
  h.writeUInt16BE(dstPort, 2);
  h.writeUInt16BE(8 + data.length, 4);
  return Buffer.concat([h, data]);
}

/** ICMP echo request (v4 type 8 with checksum; for v6 pass type 128 and fix the checksum separately). */
export function icmpEcho(type: number, id: number, seq: number, data: Buffer): Buffer {
  const m = Buffer.alloc(8 + data.length);
  m[0] = type;
  m.writeUInt16BE(id, 4);
  m.writeUInt16BE(seq, 6);
  data.copy(m, 8);
  m.writeUInt16BE(inetChecksum(m), 2);
  return m;
}

/** ICMPv6 checksum of message m between src and dst (pseudo-header per RFC 8200 8.1). */
export function icmpv6Checksum(src: Buffer, dst: Buffer, m: Buffer): number {
  const pseudo = Buffer.alloc(40);
  src.copy(pseudo, 0);
  dst.copy(pseudo, 16);
  pseudo.writeUInt32BE(m.length, 32);
  pseudo[39] = 58;
  return inetChecksum(Buffer.concat([pseudo, m]));
}
