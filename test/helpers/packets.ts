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

export interface TcpOpts {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack?: number;
  /** TCP flags byte; default ACK (0x10). */
  flags?: number;
  window?: number;
  /** Raw option bytes (padded to a multiple of 4 here). */
  options?: Buffer;
  data: Buffer;
}

/** A TCP segment with checksum 0 (fill it with l4Checksum once it sits in an IP packet). */
export function tcp(o: TcpOpts): Buffer {
  const opt = o.options ?? Buffer.alloc(0);
  const optLen = Math.ceil(opt.length / 4) * 4;
  const h = Buffer.alloc(20 + optLen);
  h.writeUInt16BE(o.srcPort, 0);
  h.writeUInt16BE(o.dstPort, 2);
  h.writeUInt32BE(o.seq >>> 0, 4);
  h.writeUInt32BE((o.ack ?? 0) >>> 0, 8);
  h[12] = ((20 + optLen) / 4) << 4;
  h[13] = o.flags ?? 0x10;
  h.writeUInt16BE(o.window ?? 65535, 14);
  opt.copy(h, 20);
  return Buffer.concat([h, o.data]);
}

/**
 * The TCP or UDP checksum a correct sender puts into IP packet p (v4 or v6, no IPv4 options beyond
 * IHL, no IPv6 extension headers), computed independently of the native code.
 */
export function l4Checksum(p: Buffer): number {
  const v4 = p[0]! >> 4 === 4;
  const l3 = v4 ? (p[0]! & 0x0f) * 4 : 40;
  const proto = v4 ? p[9]! : p[6]!;
  const l4 = Buffer.from(p.subarray(l3));
  const at = proto === 6 ? 16 : 6;
  l4.writeUInt16BE(0, at);
  const pseudo = v4 ? Buffer.alloc(12) : Buffer.alloc(40);
  if (v4) {
    p.copy(pseudo, 0, 12, 20);
    pseudo[9] = proto;
    pseudo.writeUInt16BE(l4.length, 10);
  } else {
    p.copy(pseudo, 0, 8, 40);
    pseudo.writeUInt32BE(l4.length, 32);
    pseudo[39] = proto;
  }
  const c = inetChecksum(Buffer.concat([pseudo, l4]));
  return proto === 17 && c === 0 ? 0xffff : c;
}

/** Writes l4Checksum(p) into p's TCP/UDP header and returns p. */
export function withL4Checksum(p: Buffer): Buffer {
  const v4 = p[0]! >> 4 === 4;
  const l3 = v4 ? (p[0]! & 0x0f) * 4 : 40;
  const proto = v4 ? p[9]! : p[6]!;
  p.writeUInt16BE(l4Checksum(p), l3 + (proto === 6 ? 16 : 6));
  return p;
}

/** "aa:bb:cc:dd:ee:ff" as 6 bytes. */
export function macBytes(mac: string): Buffer {
  const parts = mac.split(':').map((h) => parseInt(h, 16));
  if (parts.length !== 6 || parts.some((b) => !(b >= 0 && b <= 255))) throw new Error(`bad MAC ${mac}`);
  return Buffer.from(parts);
}

/**
 * A VXLAN datagram's payload as a Linux vxlan device sends it (RFC 7348): flags 0x08 (VNI valid), the
 * 24-bit VNI, then the inner Ethernet frame (dst, src, EtherType, payload).
 */
export function vxlanFrame(vni: number, dstMac: string, srcMac: string, etherType: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(22);
  h[0] = 0x08;
  h.writeUIntBE(vni, 4, 3);
  macBytes(dstMac).copy(h, 8);
  macBytes(srcMac).copy(h, 14);
  h.writeUInt16BE(etherType, 20);
  return Buffer.concat([h, payload]);
}

/** An Ethernet/IPv4 ARP request (28 bytes) from senderMac/senderIp for targetIp. */
export function arpRequest(senderMac: string, senderIp: string, targetIp: string): Buffer {
  const a = Buffer.alloc(28);
  a.writeUInt16BE(1, 0);
  a.writeUInt16BE(0x0800, 2);
  a[4] = 6;
  a[5] = 4;
  a.writeUInt16BE(1, 6);
  macBytes(senderMac).copy(a, 8);
  v4Bytes(senderIp).copy(a, 14);
  v4Bytes(targetIp).copy(a, 24);
  return a;
}

/**
 * Completes a CHECKSUM_PARTIAL checksum as the kernel would for a packet written to a TUN with
 * NEEDS_CSUM (the fake TUN does not): sums from csumStart to the end over the pseudo-header sum the
 * field holds and stores the complement. Returns a copy.
 */
export function completePartialChecksum(p: Buffer, csumStart: number, csumOffset: number): Buffer {
  const out = Buffer.from(p);
  let sum = 0;
  const region = out.subarray(csumStart);
  for (let i = 0; i + 1 < region.length; i += 2) sum += (region[i]! << 8) | region[i + 1]!;
  if (region.length % 2 === 1) sum += region[region.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  let c = ~sum & 0xffff;
  if (c === 0) c = 0xffff;
  out.writeUInt16BE(c, csumStart + csumOffset);
  return out;
}

/**
 * p (v4 with IHL 5, or v6 without extension headers) with its TCP/UDP checksum field holding the
 * folded pseudo-header sum, not complemented: how a TUN with offloads hands over a CHECKSUM_PARTIAL
 * packet. Returns a copy.
 */
export function pseudoHeaderForm(p: Buffer): Buffer {
  const out = Buffer.from(p);
  const v4 = out[0]! >> 4 === 4;
  const l3 = v4 ? 20 : 40;
  const proto = v4 ? out[9]! : out[6]!;
  const l4len = out.length - l3;
  let sum = proto + (l4len >>> 16) + (l4len & 0xffff);
  const addr = v4 ? out.subarray(12, 20) : out.subarray(8, 40);
  for (let i = 0; i < addr.length; i += 2) sum += addr.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  out.writeUInt16BE(sum, l3 + (proto === 6 ? 16 : 6));
  return out;
}
