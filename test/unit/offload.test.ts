// Userspace GSO split and GRO coalesce (native/offload/), table-driven over hand-built packets whose
// checksums are computed here independently of the native code.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeVnetHeader, encodeVnetHeader, groCoalesce, gsoSplit, GSO, VNET_F_NEEDS_CSUM, VNET_HDR_LEN, type VnetHeader } from '../../src/native/offload.js';
import { inetChecksum, ipv4, ipv6, l4Checksum, tcp, udp, v4Bytes, v6Bytes, withL4Checksum } from '../helpers/packets.js';

const SRC4 = '198.19.1.2', DST4 = '198.19.2.2';
const SRC6 = '2001:db8:100:1::2', DST6 = '2001:db8:100:2::2';
const FIN = 0x01, PSH = 0x08, ACK = 0x10, CWR = 0x80, SYN = 0x02;
/** Timestamps option (NOP NOP TS), as Linux sends on every segment. */
const TS_OPT = Buffer.from([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);

const pattern = (n: number, seed = 0): Buffer => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
};

function tcpPacket(v: 4 | 6, o: { seq: number; ack?: number; flags?: number; data: Buffer; id?: number; options?: Buffer; srcPort?: number }): Buffer {
  const seg = tcp({ srcPort: o.srcPort ?? 40000, dstPort: 5201, seq: o.seq, ack: o.ack ?? 7777, flags: o.flags ?? ACK, options: o.options ?? TS_OPT, data: o.data });
  const p = v === 4 ? ipv4({ src: SRC4, dst: DST4, proto: 6, payload: seg, id: o.id ?? 100 }) : ipv6({ src: SRC6, dst: DST6, next: 6, payload: seg });
  return withL4Checksum(p);
}

function udpPacket(v: 4 | 6, data: Buffer): Buffer {
  const seg = udp(5353, 9999, data);
  return withL4Checksum(v === 4 ? ipv4({ src: SRC4, dst: DST4, proto: 17, payload: seg, id: 100 }) : ipv6({ src: SRC6, dst: DST6, next: 17, payload: seg }));
}

/** What the kernel hands a TUN with TSO/USO: checksum field = folded pseudo-header sum (CHECKSUM_PARTIAL). */
function partial(p: Buffer): Buffer {
  const v4 = p[0]! >> 4 === 4;
  const l3 = v4 ? 20 : 40;
  const proto = v4 ? p[9]! : p[6]!;
  const at = l3 + (proto === 6 ? 16 : 6);
  const pseudo = v4 ? Buffer.concat([p.subarray(12, 20), Buffer.from([0, proto]), u16(p.length - l3)]) : Buffer.concat([p.subarray(8, 40), Buffer.from([0, 0]), u16(p.length - l3), Buffer.from([0, 0, 0, proto])]);
  const q = Buffer.from(p);
  q.writeUInt16BE(~inetChecksum(pseudo) & 0xffff, at);
  return q;
}
const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};

function tunRead(h: Partial<VnetHeader>, p: Buffer): Buffer {
  return Buffer.concat([encodeVnetHeader(h), p]);
}

function tsoHeader(v: 4 | 6, mss: number, proto: 'tcp' | 'udp' = 'tcp'): Partial<VnetHeader> {
  const l3 = v === 4 ? 20 : 40;
  return {
    flags: VNET_F_NEEDS_CSUM,
    gsoType: proto === 'udp' ? GSO.udpL4 : v === 4 ? GSO.tcpv4 : GSO.tcpv6,
    hdrLen: l3 + (proto === 'udp' ? 8 : 32),
    gsoSize: mss,
    csumStart: l3,
    csumOffset: proto === 'udp' ? 6 : 16,
  };
}

/** Every wire segment must be a complete, valid packet a stock flanneld can forward as is. */
function assertValidSegment(s: Buffer, v: 4 | 6): void {
  if (v === 4) {
    assert.equal(s.readUInt16BE(2), s.length, 'IPv4 total length');
    assert.equal(inetChecksum(s.subarray(0, 20)), 0, 'IPv4 header checksum');
  } else {
    assert.equal(s.readUInt16BE(4) + 40, s.length, 'IPv6 payload length');
  }
  const l3 = v === 4 ? 20 : 40;
  const proto = v === 4 ? s[9]! : s[6]!;
  assert.equal(s.readUInt16BE(l3 + (proto === 6 ? 16 : 6)), l4Checksum(s), 'L4 checksum complete and correct');
}

describe('GSO split (TUN super-packet -> wire packets)', () => {
  const MSS = 1400;
  const cases: Array<{ name: string; v: 4 | 6; payload: number; mss?: number; flags?: number; segs: number }> = [
    { name: 'TCPv4 payload exactly one MSS', v: 4, payload: MSS, segs: 1 },
    { name: 'TCPv4 payload MSS+1', v: 4, payload: MSS + 1, segs: 2 },
    { name: 'TCPv4 64 segments', v: 4, payload: 64 * 1000, mss: 1000, segs: 64 },
    { name: 'TCPv4 FIN|PSH|CWR super-packet', v: 4, payload: 3 * MSS + 10, flags: ACK | PSH | FIN | CWR, segs: 4 },
    { name: 'TCPv6 payload exactly one MSS', v: 6, payload: MSS, segs: 1 },
    { name: 'TCPv6 MSS+1', v: 6, payload: MSS + 1, segs: 2 },
    { name: 'TCPv6 45 segments of a 63 KiB write', v: 6, payload: 63000, segs: 45 },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const mss = c.mss ?? MSS;
      const data = pattern(c.payload, 3);
      const flags = c.flags ?? ACK | PSH;
      const whole = tcpPacket(c.v, { seq: 0xfffff000, flags, data, id: 0xfffe });
      const r = gsoSplit(tunRead(tsoHeader(c.v, mss), partial(whole)));
      assert.equal(r.error, null);
      assert.equal(r.segments.length, c.segs);
      const l3 = c.v === 4 ? 20 : 40;
      const hl = l3 + 32;
      let seq = 0xfffff000;
      r.segments.forEach((s, i) => {
        assertValidSegment(s, c.v);
        const last = i === r.segments.length - 1;
        assert.equal(s.length - hl, last ? c.payload - i * mss : mss, `segment ${i} payload length`);
        assert.equal(s.readUInt32BE(l3 + 4), seq >>> 0, `segment ${i} sequence number (wraps)`);
        seq += mss;
        if (c.v === 4) assert.equal(s.readUInt16BE(4), (0xfffe + i) & 0xffff, `segment ${i} IP ID`);
        const f = s[l3 + 13]!;
        assert.equal(f & (FIN | PSH), last ? flags & (FIN | PSH) : 0, `FIN/PSH only on the last segment (${i})`);
        assert.equal(f & CWR, i === 0 ? flags & CWR : 0, `CWR only on the first segment (${i})`);
        assert.equal(f & ACK, ACK);
        assert.deepEqual(s.subarray(l3 + 20, hl), TS_OPT, 'options copied');
      });
      assert.deepEqual(Buffer.concat(r.segments.map((s) => s.subarray(hl))), data, 'payload in order, nothing lost');
    });
  }

  for (const v of [4, 6] as const) {
    test(`UDP (USO) v${v}: each segment its own UDP datagram with length and checksum`, () => {
      const data = pattern(3000, 7);
      const whole = udpPacket(v, data);
      const r = gsoSplit(tunRead(tsoHeader(v, 1200, 'udp'), partial(whole)));
      assert.equal(r.error, null);
      assert.deepEqual(r.segments.map((s) => s.length - (v === 4 ? 28 : 48)), [1200, 1200, 600]);
      for (const s of r.segments) {
        assertValidSegment(s, v);
        assert.equal(s.readUInt16BE((v === 4 ? 20 : 40) + 4), s.length - (v === 4 ? 20 : 40), 'UDP length');
      }
      assert.deepEqual(Buffer.concat(r.segments.map((s) => s.subarray(v === 4 ? 28 : 48))), data);
    });
  }

  test('no GSO, CHECKSUM_PARTIAL: one packet with the checksum completed', () => {
    for (const p of [tcpPacket(4, { seq: 1, data: pattern(333) }), tcpPacket(6, { seq: 1, data: pattern(100) }), udpPacket(4, pattern(51)), udpPacket(6, pattern(1))]) {
      const v = (p[0]! >> 4) as 4 | 6;
      const h = tsoHeader(v, 0, p[v === 4 ? 9 : 6] === 17 ? 'udp' : 'tcp');
      const r = gsoSplit(tunRead({ flags: VNET_F_NEEDS_CSUM, csumStart: h.csumStart, csumOffset: h.csumOffset }, partial(p)));
      assert.equal(r.error, null);
      assert.deepEqual(r.segments, [p]);
    }
  });

  test('no GSO, no flags: copied unchanged', () => {
    const p = tcpPacket(4, { seq: 9, data: pattern(10) });
    assert.deepEqual(gsoSplit(tunRead({}, p)).segments, [p]);
  });

  // The native sum has a vector path (>= 256 bytes, 64-byte steps), a scalar tail and odd lengths;
  // the segment checksums are built from per-packet sums plus per-segment fields. Random and all-ones
  // payloads (every word 0xffff: the most end-around carries) over every length class and MSS.
  test('checksums stay exact over random and all-ones payloads of every length class', () => {
    let seed = 12345;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 8;
    const lengths = [...Array.from({ length: 300 }, (_, i) => i + 1), 511, 512, 513, 1023, 1400, 1401, 4097, 9000, 20001, 63001];
    for (const n of lengths) {
      for (const fill of ['random', 'ones'] as const) {
        const data = fill === 'ones' ? Buffer.alloc(n, 0xff) : Buffer.from(Array.from({ length: n }, () => rnd() & 0xff));
        for (const v of [4, 6] as const) {
          const u = udpPacket(v, data);
          const single = gsoSplit(tunRead({ flags: VNET_F_NEEDS_CSUM, csumStart: v === 4 ? 20 : 40, csumOffset: 6 }, partial(u)));
          assert.equal(single.error, null);
          assertValidSegment(single.segments[0]!, v);
          if (n < 2) continue;
          const mss = 1 + (rnd() % Math.min(n - 1, 1500));
          if (Math.ceil(n / mss) > 64) continue;
          const flags = ACK | (rnd() & 1 ? PSH : 0) | (rnd() & 1 ? CWR : 0);
          const t = tcpPacket(v, { seq: rnd() * 97, flags, data, id: rnd() & 0xffff });
          const r = gsoSplit(tunRead(tsoHeader(v, mss), partial(t)));
          assert.equal(r.error, null, `TCPv${v} ${fill} n=${n} mss=${mss}`);
          for (const s of r.segments) assertValidSegment(s, v);
          const hl = (v === 4 ? 20 : 40) + 32;
          assert.deepEqual(Buffer.concat(r.segments.map((s) => s.subarray(hl))), data);
        }
      }
    }
  });

  const p4 = partial(tcpPacket(4, { seq: 1, data: pattern(5000) }));
  const p6 = partial(tcpPacket(6, { seq: 1, data: pattern(5000) }));
  const bad: Array<{ name: string; read: Buffer; error: string }> = [
    { name: 'shorter than a virtio header', read: Buffer.alloc(VNET_HDR_LEN - 1), error: 'bad_vnet_hdr' },
    { name: 'truncated IP packet behind the header', read: tunRead(tsoHeader(4, 1400), p4.subarray(0, 30)), error: 'malformed' },
    { name: 'unknown gso_type', read: tunRead({ ...tsoHeader(4, 1400), gsoType: 9 }, p4), error: 'bad_gso_type' },
    { name: 'legacy UFO', read: tunRead({ ...tsoHeader(4, 1400), gsoType: GSO.udp }, p4), error: 'bad_gso_type' },
    { name: 'TCPV4 on an IPv6 packet', read: tunRead({ ...tsoHeader(6, 1400), gsoType: GSO.tcpv4 }, p6), error: 'bad_gso_type' },
    { name: 'TCPV6 on an IPv4 packet', read: tunRead({ ...tsoHeader(4, 1400), gsoType: GSO.tcpv6 }, p4), error: 'bad_gso_type' },
    { name: 'UDP_L4 on a TCP packet', read: tunRead({ ...tsoHeader(4, 1400, 'udp') }, p4), error: 'bad_gso_type' },
    { name: 'gso_size 0', read: tunRead(tsoHeader(4, 0), p4), error: 'bad_gso_size' },
    { name: 'gso_size 1: more segments than allowed', read: tunRead(tsoHeader(4, 1), p4), error: 'bad_gso_size' },
    { name: 'csum_start not at the TCP header', read: tunRead({ ...tsoHeader(4, 1400), csumStart: 24 }, p4), error: 'bad_csum_offsets' },
    { name: 'csum_offset not the TCP checksum', read: tunRead({ ...tsoHeader(4, 1400), csumOffset: 6 }, p4), error: 'bad_csum_offsets' },
    { name: 'no GSO, csum offsets beyond the packet', read: tunRead({ flags: VNET_F_NEEDS_CSUM, csumStart: 60000, csumOffset: 16 }, p4), error: 'bad_csum_offsets' },
    { name: 'GSO without payload', read: tunRead(tsoHeader(4, 1400), partial(tcpPacket(4, { seq: 1, data: Buffer.alloc(0) }))), error: 'bad_headers' },
    {
      name: 'TCP data offset beyond the packet',
      read: (() => {
        const q = Buffer.from(p4.subarray(0, 60));
        q.writeUInt16BE(60, 2);
        q[20 + 12] = 0xf0;
        return tunRead(tsoHeader(4, 1400), q);
      })(),
      error: 'bad_headers',
    },
    {
      name: 'IPv4 fragment',
      read: (() => {
        const q = Buffer.from(p4);
        q.writeUInt16BE(0x2000, 6);
        return tunRead(tsoHeader(4, 1400), q);
      })(),
      error: 'bad_headers',
    },
  ];
  for (const b of bad) {
    test(`bad input is refused with a reason, never a crash: ${b.name}`, () => {
      const r = gsoSplit(b.read);
      assert.equal(r.error, b.error);
      assert.deepEqual(r.segments, []);
    });
  }

  test('random virtio headers over random bytes never crash', () => {
    let seed = 12345;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (let i = 0; i < 3000; i++) {
      const base = i % 2 ? p4 : p6;
      const read = tunRead({ flags: rnd() & 3, gsoType: [0, 1, 3, 4, 5, 0x81, rnd() & 0xff][rnd() % 7], gsoSize: rnd() & 0xffff, csumStart: rnd() % 80, csumOffset: rnd() % 20 }, base.subarray(0, rnd() % (base.length + 1)));
      const r = gsoSplit(read);
      assert.ok(r.error === null || typeof r.error === 'string');
    }
  });
});

describe('GRO coalesce (wire packets -> TUN super-packets)', () => {
  const seqOf = (n: number, size: number): number => 1000 + n * size;
  const train = (v: 4 | 6, n: number, size: number, o: { lastFlags?: number; ack?: number; srcPort?: number; start?: number } = {}): Buffer[] =>
    Array.from({ length: n }, (_, i) =>
      tcpPacket(v, { seq: seqOf((o.start ?? 0) + i, size), data: pattern(size, i), id: 100 + i, flags: i === n - 1 && o.lastFlags !== undefined ? o.lastFlags : ACK, ack: o.ack, srcPort: o.srcPort }),
    );

  /** The output packet with its CHECKSUM_PARTIAL completed, as the kernel would. */
  function completed(out: Buffer): { h: VnetHeader; pkt: Buffer } {
    const h = decodeVnetHeader(out);
    const pkt = Buffer.from(out.subarray(VNET_HDR_LEN));
    if (h.flags & VNET_F_NEEDS_CSUM) {
      const at = h.csumStart + h.csumOffset;
      const c = inetChecksum(pkt.subarray(h.csumStart));
      pkt.writeUInt16BE(c, at);
    }
    return { h, pkt };
  }

  for (const v of [4, 6] as const) {
    test(`TCPv${v}: 10 in-order segments become one super-packet`, () => {
      const input = train(v, 10, 1400);
      const r = groCoalesce(input);
      assert.deepEqual(r.segments, [10]);
      assert.equal(r.coalesced, 9);
      const { h, pkt } = completed(r.packets[0]!);
      const l3 = v === 4 ? 20 : 40;
      assert.deepEqual(h, { flags: VNET_F_NEEDS_CSUM, gsoType: v === 4 ? GSO.tcpv4 : GSO.tcpv6, hdrLen: l3 + 32, gsoSize: 1400, csumStart: l3, csumOffset: 16 });
      assertValidSegment(pkt, v);
      assert.deepEqual(pkt.subarray(l3 + 32), Buffer.concat(input.map((p) => p.subarray(l3 + 32))));
      assert.equal(pkt.readUInt32BE(l3 + 4), seqOf(0, 1400));
      // And back: the kernel (or our GSO) splitting it again gives the original wire packets.
      const again = gsoSplit(r.packets[0]!);
      assert.equal(again.error, null);
      assert.deepEqual(again.segments, input);
    });
  }

  test('a short last segment ends the super-packet; the next one starts a new one', () => {
    const a = train(4, 3, 1400);
    const short = tcpPacket(4, { seq: seqOf(3, 1400), data: pattern(500) });
    const next = tcpPacket(4, { seq: seqOf(3, 1400) + 500, data: pattern(1400) });
    assert.deepEqual(groCoalesce([...a, short, next]).segments, [4, 1]);
  });

  test('PSH merges as the last segment and keeps its flag; FIN never merges and keeps order', () => {
    const r = groCoalesce(train(4, 4, 1400, { lastFlags: ACK | PSH }));
    assert.deepEqual(r.segments, [4]);
    assert.equal(completed(r.packets[0]!).pkt[20 + 13]! & PSH, PSH);
    const withFin = train(4, 4, 1400, { lastFlags: ACK | FIN });
    const f = groCoalesce(withFin);
    assert.deepEqual(f.segments, [3, 1]);
    assert.deepEqual(f.packets[1]!.subarray(VNET_HDR_LEN), withFin[3]);
  });

  test('out-of-order, different ACK, SYN and pure ACKs are not merged', () => {
    const t = train(4, 4, 1400);
    // Each arrival breaks the open flow's sequence, so every packet goes out on its own, in arrival order.
    const ooo = groCoalesce([t[0]!, t[2]!, t[1]!, t[3]!]);
    assert.deepEqual(ooo.segments, [1, 1, 1, 1]);
    assert.deepEqual(ooo.packets.map((p) => p.subarray(VNET_HDR_LEN)), [t[0], t[2], t[1], t[3]]);
    const other = tcpPacket(4, { seq: seqOf(1, 1400), data: pattern(1400), ack: 9999 });
    assert.deepEqual(groCoalesce([t[0]!, other]).segments, [1, 1]);
    const syn = tcpPacket(4, { seq: 5, flags: SYN, data: Buffer.alloc(0) });
    const pureAck = tcpPacket(4, { seq: 5, data: Buffer.alloc(0) });
    assert.deepEqual(groCoalesce([syn, pureAck]).segments, [1, 1]);
  });

  test('interleaved flows coalesce separately', () => {
    const a = train(4, 5, 1400, { srcPort: 1111 });
    const b = train(4, 5, 1400, { srcPort: 2222 });
    const mixed = a.flatMap((p, i) => [p, b[i]!]);
    assert.deepEqual(groCoalesce(mixed).segments.sort(), [5, 5]);
  });

  test('at most 64 segments and 64 KiB per super-packet', () => {
    assert.deepEqual(groCoalesce(train(4, 70, 900)).segments, [64, 6]);
    const big = groCoalesce(train(6, 50, 1400));
    // 40 + 32 + 46 * 1400 = 64472 fits; a 47th segment would pass 65535.
    assert.deepEqual(big.segments, [46, 4]);
    for (const p of big.packets) assert.ok(p.length - VNET_HDR_LEN <= 65535);
  });

  test('UDP and ICMP pass through unchanged with a plain virtio header', () => {
    const u = udpPacket(4, pattern(100));
    const u6 = udpPacket(6, pattern(100));
    const r = groCoalesce([u, u6]);
    assert.deepEqual(r.segments, [1, 1]);
    assert.deepEqual(decodeVnetHeader(r.packets[0]!), { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 });
    assert.deepEqual(r.packets[0]!.subarray(VNET_HDR_LEN), u);
  });

  test('malformed input is counted, the rest still flows', () => {
    const r = groCoalesce([Buffer.from([0x45, 0, 0]), Buffer.alloc(40), ...train(4, 2, 1400)]);
    assert.equal(r.malformed, 2);
    assert.deepEqual(r.segments, [2]);
  });

  test('v4 addresses in the helpers are the lab overlay (network rule)', () => {
    assert.equal(v4Bytes(SRC4)[0], 198);
    assert.equal(v6Bytes(SRC6).readUInt16BE(0), 0x2001);
  });
});
