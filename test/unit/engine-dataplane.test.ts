// The real engine without root: two engines over FakeTuns, their underlay on loopback (A on
// 127.0.0.1, B on 127.0.0.2, same port as flannel nodes have), for flannel-udp and VXLAN. Inner
// addresses: A owns 198.19.1.0/24 + 2001:db8:100:1::/64, B 198.19.2.0/24 + 2001:db8:100:2::/64.
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GSO, VNET_F_NEEDS_CSUM, type VnetHeader } from '../../src/native/offload.js';
import { ALL_TUN_OFFLOADS, EngineRig, NO_TUN_OFFLOADS, UdpPeer, until, type RigOptions, type TunPacket } from '../helpers/engine-rig.js';
import { completePartialChecksum, icmpEcho, icmpv6Checksum, ipv4, ipv6, l4Checksum, pseudoHeaderForm, tcp, udp, v6Bytes, vxlanFrame, withL4Checksum } from '../helpers/packets.js';
import { pattern } from '../helpers/golden-cases.js';

type Encap = 'flannel-udp' | 'vxlan';
const MAC_A = '0e:00:00:00:00:0a';
const MAC_B = '0e:00:00:00:00:0b';

const open: EngineRig[] = [];
const peers: UdpPeer[] = [];
afterEach(() => {
  for (const r of open.splice(0)) r.close();
  for (const p of peers.splice(0)) p.close();
});

function rig(encap: Encap, address: string, mac: string, o: Partial<RigOptions>): EngineRig {
  const r = EngineRig.open({
    tunOffloads: NO_TUN_OFFLOADS,
    address,
    ...(encap === 'vxlan' ? { encap, vni: 7, mac, innerMtu: 1450, sendSockets: 2 } : {}),
    ...o,
  });
  open.push(r);
  return r;
}

/** A and B, peered with each other and started. */
function pair(encap: Encap, a: Partial<RigOptions> = {}, b: Partial<RigOptions> = {}): [EngineRig, EngineRig] {
  const A = rig(encap, '127.0.0.1', MAC_A, a);
  const B = rig(encap, '127.0.0.2', MAC_B, { port: A.port, ...b });
  const mac = (m: string): string | undefined => (encap === 'vxlan' ? m : undefined);
  A.engine.setPeers([B.route('198.19.2.0/24', mac(MAC_B)), B.route('2001:db8:100:2::/64', mac(MAC_B))]);
  B.engine.setPeers([A.route('198.19.1.0/24', mac(MAC_A)), A.route('2001:db8:100:1::/64', mac(MAC_A))]);
  A.engine.start();
  B.engine.start();
  return [A, B];
}

function echo4(src: string, dst: string, seq: number, ttl = 64): Buffer {
  return ipv4({ src, dst, proto: 1, ttl, payload: icmpEcho(8, 0x42, seq, pattern(48, seq)) });
}

function echo6(src: string, dst: string, seq: number): Buffer {
  const m = icmpEcho(128, 0x42, seq, pattern(48, seq));
  m.writeUInt16BE(0, 2);
  m.writeUInt16BE(icmpv6Checksum(v6Bytes(src), v6Bytes(dst), m), 2);
  return ipv6({ src, dst, next: 58, payload: m });
}

/** p as it should come out: TTL (hop limit) lowered by hops, IPv4 header checksum fixed. */
function aged(p: Buffer, hops: number): Buffer {
  const out = Buffer.from(p);
  if (out[0]! >> 4 === 6) {
    out[7] = out[7]! - hops;
    return out;
  }
  out[8] = out[8]! - hops;
  out.writeUInt16BE(0, 10);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += out.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  out.writeUInt16BE(~sum & 0xffff, 10);
  return out;
}

function tcpFlow(v4: boolean, seq: number, data: Buffer, flags = 0x10): Buffer {
  const t = tcp({ srcPort: 40000, dstPort: 5201, seq, ack: 1, flags, options: Buffer.from([1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 7]), data });
  return withL4Checksum(v4 ? ipv4({ src: '198.19.1.2', dst: '198.19.2.3', proto: 6, payload: t }) : ipv6({ src: '2001:db8:100:1::2', dst: '2001:db8:100:2::3', next: 6, payload: t }));
}

/** The super-packet of data as a TSO TUN read: checksum field = pseudo-header sum, virtio header set. */
function tsoRead(v4: boolean, data: Buffer, mss: number): { packet: Buffer; vnet: Partial<VnetHeader> } {
  const l3 = v4 ? 20 : 40;
  const packet = pseudoHeaderForm(tcpFlow(v4, 1000, data, 0x18));
  return { packet, vnet: { flags: VNET_F_NEEDS_CSUM, gsoType: v4 ? GSO.tcpv4 : GSO.tcpv6, hdrLen: l3 + 32, gsoSize: mss, csumStart: l3, csumOffset: 16 } };
}

/** A received TCP packet made whole: NEEDS_CSUM completed (as the kernel would), offsets checked. */
function finished(t: TunPacket): Buffer {
  if (!t.vnet || !(t.vnet.flags & VNET_F_NEEDS_CSUM)) return t.packet;
  const l3 = t.packet[0]! >> 4 === 4 ? 20 : 40;
  assert.equal(t.vnet.csumStart, l3, 'csum_start is the TCP header');
  assert.equal(t.vnet.csumOffset, 16, 'csum_offset is the TCP checksum field');
  return completePartialChecksum(t.packet, t.vnet.csumStart, t.vnet.csumOffset);
}

for (const encap of ['flannel-udp', 'vxlan'] as const) {
  const hops = encap === 'flannel-udp' ? 2 : 0; // flannel's proxy is a router at both ends; a VTEP is a device
  describe(`${encap} between two engines`, () => {
    for (const profile of ['plain', 'offload'] as const) {
      const o: Partial<RigOptions> = profile === 'offload' ? { tunOffloads: ALL_TUN_OFFLOADS } : { tunOffloads: NO_TUN_OFFLOADS, offload: { udpGso: false, udpGro: false } };
      test(`${profile}: ICMP both ways, IPv4 and IPv6 inside, per-peer counters`, async () => {
        const [A, B] = pair(encap, o, o);
        const there = [echo4('198.19.1.2', '198.19.2.3', 1), echo6('2001:db8:100:1::2', '2001:db8:100:2::3', 2)];
        const back = [echo4('198.19.2.3', '198.19.1.2', 3), echo6('2001:db8:100:2::3', '2001:db8:100:1::2', 4)];
        for (const p of there) A.send(p);
        for (const p of back) B.send(p);
        const atB = await B.received(2);
        const atA = await A.received(2);
        assert.deepEqual(atB.map((t) => t.packet), there.map((p) => aged(p, hops)));
        assert.deepEqual(atA.map((t) => t.packet), back.map((p) => aged(p, hops)));
        if (profile === 'offload') assert.ok(atB.every((t) => t.vnet?.gsoType === GSO.none));
        const a = A.stats();
        assert.equal(a.tx.packets, 2);
        assert.equal(a.rx.packets, 2);
        const toB4 = a.peers.find((p) => p.subnet === '198.19.2.0/24')!;
        assert.equal(toB4.tx.packets, 1);
        assert.equal(toB4.rx.packets, 1);
        assert.ok(toB4.lastRxMs > 0);
        assert.ok(Object.values(a.drops).every((n) => n === 0), JSON.stringify(a.drops));
      });
    }

    test('no route: ICMP net unreachable (v4) / no route (v6) back into the sender\'s TUN', async () => {
      const [A] = pair(encap);
      const lost4 = echo4('198.19.1.2', '198.19.9.9', 5);
      const lost6 = echo6('2001:db8:100:1::2', '2001:db8:100:9::9', 6);
      A.send(lost4);
      A.send(lost6);
      const [e4, e6] = await A.received(2);
      const p4 = e4!.packet;
      assert.equal(p4.subarray(12, 16).join('.'), '198.19.9.9', 'from the unreachable destination');
      assert.equal(p4.subarray(16, 20).join('.'), '198.19.1.2', 'to the sender');
      assert.deepEqual([p4[20], p4[21]], [3, 0]);
      assert.deepEqual(p4.subarray(28), lost4.subarray(0, 28), 'quotes the header and 8 bytes');
      const p6 = e6!.packet;
      assert.deepEqual([p6[6], p6[40], p6[41]], [58, 1, 0]);
      assert.deepEqual(p6.subarray(48), lost6);
      assert.equal(A.stats().drops.no_route, 2);
    });

    test('GSO split and GRO coalesce: a 64 KiB TSO super-packet arrives whole, in as few writes as batches allow', async () => {
      for (const v4 of [true, false]) {
        const [A, B] = pair(encap, { tunOffloads: ALL_TUN_OFFLOADS }, { tunOffloads: ALL_TUN_OFFLOADS });
        const mss = v4 ? 1388 : 1368;
        const data = pattern(v4 ? 65_535 - 52 : 60_000, 3);
        const read = tsoRead(v4, data, mss);
        A.send(read.packet, read.vnet);
        const segs = Math.ceil(data.length / mss);
        assert.ok(await until(() => B.stats().rx.packets === segs), `B got ${B.stats().rx.packets} of ${segs} segments`);
        const got = await B.drain(50);
        let payload = Buffer.alloc(0);
        let merged = 0;
        const hl = v4 ? 52 : 72;
        for (const t of got) {
          const p = finished(t);
          assert.equal(p.readUInt16BE(hl - 16), l4Checksum(p), 'TCP checksum valid once completed');
          if (t.vnet!.gsoType === GSO.none) {
            merged += 1;
          } else {
            assert.equal(t.vnet!.gsoType, v4 ? GSO.tcpv4 : GSO.tcpv6);
            assert.equal(t.vnet!.gsoSize, mss);
            assert.equal(t.vnet!.hdrLen, hl);
            merged += Math.ceil((p.length - hl) / mss);
          }
          payload = Buffer.concat([payload, p.subarray(hl)]);
        }
        assert.equal(merged, segs);
        assert.ok(got.length < segs / 8, `${got.length} TUN writes for ${segs} segments`);
        assert.deepEqual(payload, data);
        const a = A.stats().offload;
        const b = B.stats().offload;
        assert.deepEqual([a.gsoPackets, a.gsoSegments], [1, segs]);
        assert.ok(a.udpGsoSends >= 1);
        assert.ok(b.udpGroBatches >= 1 && b.groSegments === segs - got.filter((t) => t.vnet!.gsoType === GSO.none).length);
        for (const r of [A, B]) r.close();
      }
    });

    test('GSO split to a receiver without offloads: every segment a whole packet with its own checksums', async () => {
      const [A, B] = pair(encap, { tunOffloads: ALL_TUN_OFFLOADS }, { tunOffloads: NO_TUN_OFFLOADS, offload: { udpGro: false } });
      const data = pattern(20_000, 4);
      const read = tsoRead(true, data, 1388);
      A.send(read.packet, read.vnet);
      const segs = Math.ceil(data.length / 1388);
      const got = await B.received(segs);
      assert.equal(got.length, segs);
      let seq = 1000;
      got.forEach((t, i) => {
        const p = t.packet;
        assert.equal(p.readUInt16BE(36), l4Checksum(p), `segment ${i} TCP checksum`);
        assert.equal(p.readUInt32BE(24), seq, `segment ${i} sequence`);
        assert.equal(p[33]! & 0x08, i === segs - 1 ? 0x08 : 0, 'PSH only on the last');
        seq += p.length - 52;
      });
      assert.deepEqual(Buffer.concat(got.map((t) => t.packet.subarray(52))), data);
    });

    test('a USO super-packet leaves as UDP datagrams, each with its UDP length and checksum', async () => {
      const [A, B] = pair(encap, { tunOffloads: ALL_TUN_OFFLOADS }, { offload: { udpGro: false } });
      const data = pattern(5_000, 5);
      const whole = pseudoHeaderForm(ipv4({ src: '198.19.1.2', dst: '198.19.2.3', proto: 17, payload: udp(5000, 6000, data) }));
      A.send(whole, { flags: VNET_F_NEEDS_CSUM, gsoType: GSO.udpL4, hdrLen: 28, gsoSize: 1200, csumStart: 20, csumOffset: 6 });
      const got = await B.received(5);
      assert.equal(got.length, 5);
      for (const t of got) {
        assert.equal(t.packet.readUInt16BE(24), t.packet.length - 20, 'UDP length');
        assert.equal(t.packet.readUInt16BE(26), l4Checksum(t.packet));
      }
      assert.deepEqual(Buffer.concat(got.map((t) => t.packet.subarray(28))), data);
    });

    test('anti-spoofing: unknown outer source and inner sources outside the sending peer\'s subnet are dropped', async () => {
      const [A] = pair(encap);
      const C = await UdpPeer.bind('127.0.0.3', A.port);
      const D = await UdpPeer.bind('127.0.0.4', A.port);
      peers.push(C, D);
      // D is a known peer (owns 198.19.4.0/24); C is not.
      const mac = encap === 'vxlan' ? { mac: '0e:00:00:00:00:0d' } : {};
      A.engine.setPeers([
        { subnet: '198.19.2.0/24', publicIP: '127.0.0.2', port: A.port, ...(encap === 'vxlan' ? { mac: MAC_B } : {}) },
        { subnet: '198.19.4.0/24', publicIP: '127.0.0.4', port: A.port, ...mac },
      ]);
      const wrap = (p: Buffer, srcMac = '0e:00:00:00:00:0d'): Buffer => (encap === 'vxlan' ? vxlanFrame(7, MAC_A, srcMac, 0x0800, p) : p);
      await C.send(wrap(echo4('198.19.4.9', '198.19.1.2', 1)), '127.0.0.1', A.port); // unknown outer
      await D.send(wrap(echo4('198.19.7.7', '198.19.1.2', 2)), '127.0.0.1', A.port); // inner source in no subnet
      await D.send(wrap(echo4('198.19.2.9', '198.19.1.2', 3)), '127.0.0.1', A.port); // inner source of another peer
      if (encap === 'vxlan') await D.send(wrap(echo4('198.19.4.9', '198.19.1.2', 4), MAC_B), '127.0.0.1', A.port); // wrong VTEP MAC
      await D.send(wrap(echo4('198.19.4.9', '198.19.1.2', 5)), '127.0.0.1', A.port); // fine
      const [ok] = await A.received(1);
      assert.equal(ok!.packet.readUInt16BE(26), 5, 'only the legitimate packet is written');
      const d = A.stats().drops;
      assert.deepEqual([d.unknown_peer, d.spoofed_source, d.unknown_mac], [1, 2, encap === 'vxlan' ? 1 : 0]);
      assert.deepEqual(await A.drain(50), []);
    });

    test('allowUnknownSource: any outer source, but the inner source must still be in a peer subnet', async () => {
      const A = rig(encap, '127.0.0.1', MAC_A, { allowUnknownSource: true });
      const C = await UdpPeer.bind('127.0.0.3', A.port);
      peers.push(C);
      A.engine.setPeers([{ subnet: '198.19.2.0/24', publicIP: '127.0.0.2', port: A.port, ...(encap === 'vxlan' ? { mac: MAC_B } : {}) }]);
      A.engine.start();
      const wrap = (p: Buffer): Buffer => (encap === 'vxlan' ? vxlanFrame(7, MAC_A, MAC_B, 0x0800, p) : p);
      await C.send(wrap(echo4('198.19.7.7', '198.19.1.2', 1)), '127.0.0.1', A.port);
      await C.send(wrap(echo4('198.19.2.9', '198.19.1.2', 2)), '127.0.0.1', A.port);
      const [got] = await A.received(1);
      assert.equal(got!.packet.readUInt16BE(26), 2);
      assert.equal(A.stats().drops.spoofed_source, 1);
    });
  });
}

describe('a TUN that refuses writes', () => {
  for (const profile of ['plain', 'offload'] as const) {
    test(`${profile}: rx counts only packets that reached the TUN; each refused one is a tun_write_error`, async () => {
      // Two fixed threads: only the TX thread watches the TUN, and it stops at the hang-up; the RX
      // thread goes on receiving and its writes fail (EPIPE), coalesced by GRO or not.
      const o: Partial<RigOptions> =
        profile === 'offload' ? { tunOffloads: ALL_TUN_OFFLOADS, dataThreads: 2 } : { tunOffloads: NO_TUN_OFFLOADS, offload: { udpGso: false, udpGro: false }, dataThreads: 2 };
      const B = rig('flannel-udp', '127.0.0.1', MAC_A, o);
      const peer = await UdpPeer.bind('127.0.0.2', B.port);
      peers.push(peer);
      B.engine.setPeers([{ subnet: '198.19.2.0/24', publicIP: '127.0.0.2', port: B.port }]);
      B.engine.start();
      B.tun.close();
      assert.ok(await until(() => B.stats().drops.tun_read_error === 1), 'the TX thread saw the hang-up');
      const run: Buffer[] = [];
      for (let i = 0; i < 12; i++) {
        const t = tcp({ srcPort: 40000, dstPort: 5201, seq: i * 1000, ack: 1, flags: 0x10, data: pattern(1000, i) });
        run.push(withL4Checksum(ipv4({ src: '198.19.2.3', dst: '198.19.1.2', proto: 6, payload: t })));
      }
      for (const p of run) await peer.send(p, '127.0.0.1', B.port);
      assert.ok(await until(() => B.stats().drops.tun_write_error === 12), `tun_write_error ${B.stats().drops.tun_write_error}`);
      const s = B.stats();
      assert.deepEqual([s.rx.packets, s.rx.bytes], [0, 0]);
      assert.deepEqual([s.peers[0]!.rx.packets, s.peers[0]!.rx.bytes], [0, 0]);
    });
  }
});
