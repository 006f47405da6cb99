// Pure packet helpers of the native data plane, checked against packets and checksums built here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyPacket, decrementTTL, icmpUnreachable, RouteTable } from '../../src/native/packet.js';
import { icmpEcho, icmpv6Checksum, inetChecksum, ipv4, ipv6, udp, v4Bytes, v6Bytes } from '../helpers/packets.js';

const echo4 = (ttl = 64): Buffer =>
  ipv4({ src: '198.19.1.0', dst: '198.19.38.1', proto: 1, ttl, payload: icmpEcho(8, 0x77, 1, Buffer.from('flannelts ping!!')) });

test('IPv4 TTL decrement keeps the header checksum equal to a full recomputation', () => {
  // Sweep TTLs and IDs so the incremental update crosses carry and 0xffff edges.
  for (let ttl = 2; ttl <= 255; ttl += 1) {
    for (const id of [0x0000, 0x1234, 0xfeff, 0xffff, 0x8000]) {
      const p = ipv4({ src: '198.19.90.0', dst: '198.19.38.1', proto: 1, ttl, id, payload: Buffer.alloc(8, 0xab) });
      const before = Buffer.from(p);
      assert.equal(decrementTTL(p), 'ok');
      assert.equal(p[8], ttl - 1);
      const hdr = Buffer.from(p.subarray(0, 20));
      hdr.writeUInt16BE(0, 10);
      assert.equal(p.readUInt16BE(10), inetChecksum(hdr), `ttl ${ttl} id ${id}`);
      assert.equal(inetChecksum(p.subarray(0, 20)), 0, 'header verifies');
      // Nothing but TTL and checksum changed.
      for (let i = 0; i < p.length; i++) if (i !== 8 && i !== 10 && i !== 11) assert.equal(p[i], before[i]);
    }
  }
});

test('TTL 1 (and 0) is expired and the packet is left untouched; hop limit likewise', () => {
  for (const ttl of [0, 1]) {
    const p = echo4(ttl);
    const copy = Buffer.from(p);
    assert.equal(decrementTTL(p), 'expired');
    assert.deepEqual(p, copy);
  }
  const v6 = ipv6({ src: '2001:db8:100:1::1', dst: '2001:db8:100:2::1', hop: 1, payload: Buffer.alloc(4) });
  assert.equal(decrementTTL(v6), 'expired');
  assert.equal(v6[7], 1);
});

test('IPv6 hop limit decrement touches only the hop limit', () => {
  const p = ipv6({ src: '2001:db8:100:1::1', dst: '2001:db8:100:2::1', hop: 64, payload: udp(1, 2, Buffer.from('x')) });
  const before = Buffer.from(p);
  assert.equal(decrementTTL(p), 'ok');
  assert.equal(p[7], 63);
  before[7] = 63;
  assert.deepEqual(p, before);
});

test('classifyPacket: v4/v6 addresses and lengths, trailing padding trimmed', () => {
  const p = echo4();
  assert.deepEqual(classifyPacket(p), { kind: 'ipv4', length: p.length, src: '198.19.1.0', dst: '198.19.38.1' });
  assert.equal(classifyPacket(Buffer.concat([p, Buffer.alloc(6)])).length, p.length);
  const v6 = ipv6({ src: '2001:db8:100:1::1', dst: '2001:db8:100:2::5', payload: Buffer.alloc(10) });
  assert.deepEqual(classifyPacket(v6), { kind: 'ipv6', length: 50, src: '2001:db8:100:1::1', dst: '2001:db8:100:2::5' });
});

test('classifyPacket: every malformed class is recognised, and garbage never throws', () => {
  const good = echo4();
  assert.equal(classifyPacket(Buffer.alloc(0)).kind, 'truncated');
  assert.equal(classifyPacket(good.subarray(0, 19)).kind, 'truncated');
  const badVersion = Buffer.from(good);
  badVersion[0] = 0x55;
  assert.equal(classifyPacket(badVersion).kind, 'bad_version');
  const badIhl = Buffer.from(good);
  badIhl[0] = 0x44;
  assert.equal(classifyPacket(badIhl).kind, 'bad_ihl');
  const ihlPastEnd = Buffer.from(good.subarray(0, 24));
  ihlPastEnd[0] = 0x4f; // 60-byte header in a 24-byte datagram
  assert.equal(classifyPacket(ihlPastEnd).kind, 'truncated');
  assert.equal(classifyPacket(good.subarray(0, good.length - 1)).kind, 'length_mismatch'); // total > datagram
  const shortTotal = Buffer.from(good);
  shortTotal.writeUInt16BE(10, 2); // total length < header
  assert.equal(classifyPacket(shortTotal).kind, 'length_mismatch');
  const v6 = ipv6({ src: '2001:db8::1', dst: '2001:db8::2', payload: Buffer.alloc(20) });
  assert.equal(classifyPacket(v6.subarray(0, 39)).kind, 'truncated');
  assert.equal(classifyPacket(v6.subarray(0, 50)).kind, 'length_mismatch');
  assert.equal(decrementTTL(badIhl), 'malformed');
  assert.equal(icmpUnreachable(badIhl), null);
  // Random bytes of every small length: classified, never a crash.
  let seed = 12345;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
  for (let n = 0; n < 3000; n++) {
    const b = Buffer.from(Array.from({ length: n % 97 }, rnd));
    const c = classifyPacket(b);
    assert.ok(typeof c.kind === 'string');
    decrementTTL(b);
    icmpUnreachable(b);
  }
});

test('ICMPv4 net unreachable: addresses swapped, header + 8 bytes quoted, checksums correct', () => {
  const offender = ipv4({ src: '198.19.1.0', dst: '198.19.77.3', proto: 17, payload: udp(40000, 5001, Buffer.alloc(100, 7)) });
  const r = icmpUnreachable(offender);
  assert.ok(r);
  assert.equal(r.length, 20 + 8 + 28);
  assert.equal(r[0], 0x45);
  assert.equal(r.readUInt16BE(2), r.length);
  assert.equal(r[9], 1);
  assert.ok(r[8]! > 1);
  assert.deepEqual(r.subarray(12, 16), v4Bytes('198.19.77.3'));
  assert.deepEqual(r.subarray(16, 20), v4Bytes('198.19.1.0'));
  assert.equal(inetChecksum(r.subarray(0, 20)), 0, 'IP header checksum');
  const icmp = r.subarray(20);
  assert.equal(icmp[0], 3);
  assert.equal(icmp[1], 0);
  assert.equal(inetChecksum(icmp), 0, 'ICMP checksum');
  assert.deepEqual(icmp.subarray(8), offender.subarray(0, 28));
  // A short offender is quoted whole.
  const tiny = ipv4({ src: '198.19.1.0', dst: '198.19.77.3', proto: 17, payload: Buffer.alloc(3) });
  assert.deepEqual(icmpUnreachable(tiny)!.subarray(28), tiny);
  // No errors about errors, nor to unusable sources.
  assert.equal(icmpUnreachable(r), null);
  assert.equal(icmpUnreachable(ipv4({ src: '0.0.0.0', dst: '198.19.77.3' })), null);
});

test('ICMPv6 destination unreachable: pseudo-header checksum, quote capped at 1280 bytes total', () => {
  const src = '2001:db8:100:1::1';
  const dst = '2001:db8:100:99::7';
  const offender = ipv6({ src, dst, payload: udp(1, 2, Buffer.alloc(2000, 9)) });
  const r = icmpUnreachable(offender);
  assert.ok(r);
  assert.equal(r.length, 1280);
  assert.equal(r[0]! >> 4, 6);
  assert.equal(r.readUInt16BE(4), 1280 - 40);
  assert.equal(r[6], 58);
  assert.deepEqual(r.subarray(8, 24), v6Bytes(dst));
  assert.deepEqual(r.subarray(24, 40), v6Bytes(src));
  const m = r.subarray(40);
  assert.equal(m[0], 1);
  assert.equal(m[1], 0);
  const zeroed = Buffer.from(m);
  zeroed.writeUInt16BE(0, 2);
  assert.equal(m.readUInt16BE(2), icmpv6Checksum(v6Bytes(dst), v6Bytes(src), zeroed));
  assert.deepEqual(m.subarray(8), offender.subarray(0, 1280 - 48));
  const small = ipv6({ src, dst, payload: Buffer.alloc(8) });
  assert.equal(icmpUnreachable(small)!.length, 48 + small.length);
  assert.equal(icmpUnreachable(r), null, 'no error about an ICMPv6 error');
});

test('RouteTable: longest prefix wins across overlapping v4 and v6 prefixes', () => {
  const t = new RouteTable([
    { subnet: '198.19.0.0/16', publicIP: '198.18.0.16', port: 8285 },
    { subnet: '198.19.1.0/24', publicIP: '198.18.0.24', port: 8285 },
    { subnet: '198.19.1.7/32', publicIP: '198.18.0.32', port: 9000 },
    { subnet: '0.0.0.0/0', publicIP: '198.18.0.1', port: 8285 },
    { subnet: '::/0', publicIP: '2001:db8:1::1', port: 8285 },
    { subnet: '2001:db8:100::/56', publicIP: '2001:db8:1::56', port: 8285 },
    { subnet: '2001:db8:100:2::/64', publicIP: '198.18.0.64', port: 8285 },
    { subnet: '2001:db8:100:2::1/128', publicIP: '2001:db8:1::128', port: 8285 },
  ]);
  assert.equal(t.lookup('198.19.1.7')?.publicIP, '198.18.0.32');
  assert.equal(t.lookup('198.19.1.7')?.port, 9000);
  assert.equal(t.lookup('198.19.1.8')?.publicIP, '198.18.0.24');
  assert.equal(t.lookup('198.19.2.8')?.publicIP, '198.18.0.16');
  assert.equal(t.lookup('198.18.5.5')?.publicIP, '198.18.0.1');
  assert.equal(t.lookup('2001:db8:100:2::1')?.publicIP, '2001:db8:1::128');
  assert.equal(t.lookup('2001:db8:100:2::2')?.publicIP, '198.18.0.64');
  assert.equal(t.lookup('2001:db8:100:3::2')?.subnet, '2001:db8:100::/56');
  assert.equal(t.lookup('2001:db8:200::1')?.subnet, '::/0');
  assert.equal(t.isPeerAddress('198.18.0.24'), true);
  assert.equal(t.isPeerAddress('198.18.0.25'), false);
  t.set([{ subnet: '198.19.1.0/24', publicIP: '198.18.0.24', port: 8285 }]);
  assert.equal(t.lookup('198.19.2.1'), null);
  assert.equal(t.lookup('2001:db8:100:2::1'), null);
});

test('RouteTable rejects bad entries with the index and field', () => {
  const t = new RouteTable();
  assert.throws(() => t.set([{ subnet: '198.19.1.1/24', publicIP: '198.18.0.1', port: 8285 }]), /peer\[0\]\.subnet .*host bits set/);
  assert.throws(() => t.set([{ subnet: '198.19.1.0/33', publicIP: '198.18.0.1', port: 8285 }]), /bad prefix length/);
  assert.throws(
    () =>
      t.set([
        { subnet: '198.19.1.0/24', publicIP: '198.18.0.1', port: 8285 },
        { subnet: '198.19.1.0/24', publicIP: '198.18.0.2', port: 8285 },
      ]),
    /peer\[1\].*duplicate/,
  );
  assert.throws(() => t.set([{ subnet: '198.19.1.0/24', publicIP: 'nope', port: 8285 }]), /peer\[0\]\.publicIP/);
  assert.throws(() => t.set([{ subnet: '198.19.1.0/24', publicIP: '198.18.0.1', port: 0 }]), TypeError);
});

test('RouteTable lookup cost stays flat from 10 to 10,000 peers', () => {
  const timeLookups = (peers: number): number => {
    const routes = Array.from({ length: peers }, (_, i) => ({
      subnet: `198.19.${Math.floor(i / 64) % 256}.${(i % 64) * 4}/30`,
      publicIP: `198.18.${Math.floor(i / 250)}.${(i % 250) + 1}`,
      port: 8285,
    }));
    routes.push({ subnet: '198.19.0.0/16', publicIP: '198.18.0.1', port: 8285 });
    const t = new RouteTable(routes);
    const addrs = Array.from({ length: 1000 }, (_, i) => `198.19.${i % 256}.${(i * 7) % 256}`);
    for (const a of addrs) t.lookup(a); // warm up
    let best = Infinity;
    for (let r = 0; r < 5; r++) {
      const t0 = process.hrtime.bigint();
      for (let k = 0; k < 20; k++) for (const a of addrs) t.lookup(a);
      best = Math.min(best, Number(process.hrtime.bigint() - t0));
    }
    return best;
  };
  const small = timeLookups(10);
  const large = timeLookups(10_000);
  // Dominated by the JS->native call; a linear scan would be ~1000x slower at 10k peers.
  assert.ok(large < small * 3, `10 peers ${small} ns, 10k peers ${large} ns`);
});
