// The userspace VTEP's VXLAN/ARP codec against frames a Linux vxlan device really sent (recorded on
// kernel 6.18, test/fixtures/vxlan/kernel-frames.json), every malformed class, and fuzzing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arpReply, flowHash, vxlanEncap, vxlanParse, type VxlanStatus } from '../../src/native/vxlan.js';
import { classifyPacket } from '../../src/native/packet.js';
import { ipv4, tcp, udp, v4Bytes } from '../helpers/packets.js';
import { prng } from '../helpers/hostile.js';

interface KernelFrame {
  family: 4 | 6;
  srcMac: string;
  dstMac: string;
  innerSrc: string;
  innerDst: string;
  udpPayloadHex: string;
}
const here = dirname(fileURLToPath(import.meta.url));
// Compiled tests run from dist/test/unit; the fixtures stay in the source tree.
const fixture = JSON.parse(readFileSync(join(here, '..', '..', '..', 'test', 'fixtures', 'vxlan', 'kernel-frames.json'), 'utf8')) as { vni: number; frames: KernelFrame[] };
const frames = fixture.frames.map((f) => ({ ...f, bytes: Buffer.from(f.udpPayloadHex, 'hex') }));

test('kernel vxlan frames parse as IP for the receiving VTEP: VNI, MACs, EtherType, inner packet', () => {
  assert.equal(frames.length, 2);
  for (const f of frames) {
    const r = vxlanParse(f.bytes, fixture.vni, f.dstMac);
    assert.deepEqual(r, { status: 'ip', vni: 1, src: f.srcMac, dst: f.dstMac, etherType: f.family === 4 ? 0x0800 : 0x86dd, payloadOffset: 22 });
    const inner = classifyPacket(f.bytes.subarray(22));
    assert.equal(inner.kind, f.family === 4 ? 'ipv4' : 'ipv6');
    assert.equal(inner.src, f.innerSrc);
    assert.equal(inner.dst, f.innerDst);
    assert.equal(inner.length, f.bytes.length - 22);
  }
});

test('our encapsulation of the same inner packet is byte-for-byte what the kernel sent', () => {
  for (const f of frames) {
    const ours = vxlanEncap(fixture.vni, f.dstMac, f.srcMac, f.bytes.subarray(22));
    assert.equal(ours.toString('hex'), f.udpPayloadHex);
  }
  // VNI bytes 4..6 big-endian, byte 7 reserved; flags 0x08 only.
  const big = vxlanEncap(0xabcdef, '02:00:00:00:00:02', '02:00:00:00:00:01', Buffer.from([0x45]));
  assert.equal(big.subarray(0, 8).toString('hex'), '08000000abcdef00');
});

test('every rejection class: truncated, no VNI flag, wrong VNI, wrong destination MAC, other EtherTypes', () => {
  const f = frames[0]!;
  const ours = f.dstMac;
  const cases: Array<[string, Buffer, VxlanStatus]> = [];
  for (let n = 0; n < 22; n++) cases.push([`${n} bytes`, f.bytes.subarray(0, n), 'truncated']);
  const noFlag = Buffer.from(f.bytes);
  noFlag[0] = 0x00;
  cases.push(['flags 0x00', noFlag, 'bad_flags']);
  const gpe = Buffer.from(f.bytes);
  gpe[0] = 0x0c; // I plus the GPE "next protocol" bit: still a VNI, accepted like the kernel without GPE
  cases.push(['flags 0x0c', gpe, 'ip']);
  cases.push(['VNI 2', vxlanEncap(2, ours, f.srcMac, f.bytes.subarray(22)), 'wrong_vni']);
  cases.push(['unicast to another MAC', vxlanEncap(1, '02:11:22:33:44:55', f.srcMac, f.bytes.subarray(22)), 'not_for_us']);
  cases.push(['IP to broadcast', vxlanEncap(1, 'ff:ff:ff:ff:ff:ff', f.srcMac, f.bytes.subarray(22)), 'not_for_us']);
  for (const type of [0x8100, 0x88cc, 0x0000, 0xffff]) {
    const b = Buffer.from(f.bytes);
    b.writeUInt16BE(type, 20);
    cases.push([`EtherType 0x${type.toString(16)}`, b, 'bad_ethertype']);
  }
  for (const [name, bytes, want] of cases) assert.equal(vxlanParse(bytes, 1, ours).status, want, name);
});

/** An Ethernet/IPv4 ARP payload. */
function arp(op: number, senderMac: string, senderIp: string, targetMac: string, targetIp: string): Buffer {
  const mac = (m: string): Buffer => Buffer.from(m.replace(/:/g, ''), 'hex');
  return Buffer.concat([Buffer.from([0, 1, 8, 0, 6, 4, 0, op]), mac(senderMac), v4Bytes(senderIp), mac(targetMac), v4Bytes(targetIp)]);
}

test('ARP: a request for our VTEP address gets exactly the reply; anything else gets none', () => {
  const our = '02:aa:bb:cc:dd:01';
  const peer = '02:aa:bb:cc:dd:02';
  const req = arp(1, peer, '198.19.2.0', '00:00:00:00:00:00', '198.19.1.0');
  assert.equal(arpReply(req, our, '198.19.1.0')?.toString('hex'), arp(2, our, '198.19.1.0', peer, '198.19.2.0').toString('hex'));
  // As a whole frame to broadcast it parses as ARP.
  assert.equal(vxlanParse(vxlanArp(req, 'ff:ff:ff:ff:ff:ff', peer), 1, our).status, 'arp');
  assert.equal(vxlanParse(vxlanArp(req, our, peer), 1, our).status, 'arp');
  assert.equal(vxlanParse(vxlanArp(req, '02:00:00:00:00:99', peer), 1, our).status, 'not_for_us');
  const none: Array<[string, Buffer]> = [
    ['request for another address', arp(1, peer, '198.19.2.0', '00:00:00:00:00:00', '198.19.3.0')],
    ['a reply', arp(2, peer, '198.19.2.0', our, '198.19.1.0')],
    ['27 bytes', req.subarray(0, 27)],
    ['empty', Buffer.alloc(0)],
    ['hardware type 6', Buffer.concat([Buffer.from([0, 6]), req.subarray(2)])],
    ['protocol IPv6', Buffer.concat([Buffer.from([0, 1, 0x86, 0xdd]), req.subarray(4)])],
    ['hlen 8', Buffer.concat([req.subarray(0, 4), Buffer.from([8]), req.subarray(5)])],
  ];
  for (const [name, b] of none) assert.equal(arpReply(b, our, '198.19.1.0'), null, name);
});

function vxlanArp(payload: Buffer, dst: string, src: string): Buffer {
  const b = vxlanEncap(1, dst, src, payload);
  b.writeUInt16BE(0x0806, 20);
  return b;
}

test('flow hash: one value per flow (payload and TTL do not matter), flows spread over the send sockets', () => {
  const seg = (sport: number, payload: string, ttl = 64): Buffer =>
    ipv4({ src: '198.19.1.2', dst: '198.19.2.2', proto: 6, ttl, payload: tcp({ srcPort: sport, dstPort: 5201, seq: 1, ack: 1, flags: 0x10, data: Buffer.from(payload) }) });
  assert.equal(flowHash(seg(40000, 'a')), flowHash(seg(40000, 'bbbb', 12)));
  const buckets = new Array<number>(8).fill(0);
  for (let p = 0; p < 512; p++) buckets[flowHash(seg(30000 + p, 'x')) % 8]!++;
  for (const n of buckets) assert.ok(n > 30 && n < 100, `uneven spread over 8 sockets: ${buckets.join(',')}`);
  // UDP ports count too; fragments (no ports) hash on addresses alone, all of them alike.
  const u = (sport: number): Buffer => ipv4({ src: '198.19.1.2', dst: '198.19.2.2', proto: 17, payload: udp(sport, 53, Buffer.from('q')) });
  assert.notEqual(flowHash(u(1000)), flowHash(u(1001)));
  const frag = (sport: number): Buffer => {
    const b = u(sport);
    b.writeUInt16BE(0x2000, 6); // more fragments
    return b;
  };
  assert.equal(flowHash(frag(1000)), flowHash(frag(1001)));
  for (let n = 0; n < 24; n++) assert.equal(typeof flowHash(seg(1, 'x').subarray(0, n)), 'number');
});

test('fuzz: 20,000 random and mutated datagrams never throw and always classify within bounds', () => {
  const r = prng(0x7e57);
  const statuses = new Set<VxlanStatus>(['ip', 'arp', 'truncated', 'bad_flags', 'wrong_vni', 'not_for_us', 'bad_ethertype']);
  const counts = new Map<string, number>();
  for (let i = 0; i < 20_000; i++) {
    let b: Buffer;
    if (i % 2 === 0) {
      b = Buffer.from(frames[i % frames.length]!.bytes);
      const flips = 1 + Math.floor(r() * 4);
      for (let k = 0; k < flips; k++) b[Math.floor(r() * Math.min(b.length, 40))] = Math.floor(r() * 256);
      if (r() < 0.2) b = b.subarray(0, Math.floor(r() * b.length));
    } else {
      b = Buffer.alloc(Math.floor(r() * 120));
      for (let k = 0; k < b.length; k++) b[k] = Math.floor(r() * 256);
    }
    const p = vxlanParse(b, 1, frames[0]!.dstMac);
    assert.ok(statuses.has(p.status), p.status);
    if (p.payloadOffset !== undefined) assert.ok(p.payloadOffset <= b.length);
    counts.set(p.status, (counts.get(p.status) ?? 0) + 1);
    const a = arpReply(b.subarray(Math.min(22, b.length)), '02:00:00:00:00:01', '198.19.1.0');
    if (a) assert.equal(a.length, 28);
    assert.equal(typeof flowHash(b), 'number');
  }
  // The mutations reach the accepting path and several rejection paths, not just "truncated".
  for (const s of ['ip', 'truncated', 'bad_flags', 'wrong_vni', 'not_for_us', 'bad_ethertype'] as const) assert.ok((counts.get(s) ?? 0) > 0, `${s}: ${JSON.stringify([...counts])}`);
});
