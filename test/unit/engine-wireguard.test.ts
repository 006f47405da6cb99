// The WireGuard encapsulation in the real engine without root: engines over FakeTuns on loopback
// (test/helpers/wg-rig.ts) configured as the backend configures them, and a third peer made of the
// protocol core's binding (wg-js-peer.ts) that forges, replays and reorders what it sends.
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { GSO, VNET_F_NEEDS_CSUM } from '../../src/native/offload.js';
import { unaccountedDatagrams } from '../../src/backend/wireguard/counters.js';
import { completePartialChecksum, icmpEcho, icmpv6Checksum, ipv4, ipv6, l4Checksum, pseudoHeaderForm, tcp, v6Bytes, withL4Checksum } from '../helpers/packets.js';
import { pattern } from '../helpers/golden-cases.js';
import { ALL_TUN_OFFLOADS, UdpPeer, until, type TunPacket } from '../helpers/engine-rig.js';
import { closeNode, descOf, peer, wgNode, wgPair, type WgNode } from '../helpers/wg-rig.js';
import { JsPeer } from '../helpers/wg-js-peer.js';
import { wg } from '../helpers/wg-pair.js';

const open: WgNode[] = [];
const others: Array<{ close(): void }> = [];
afterEach(() => {
  for (const n of open.splice(0)) closeNode(n);
  for (const o of others.splice(0)) o.close();
});

function pair(o: Parameters<typeof wgPair>[0] = {}): [WgNode, WgNode] {
  const p = wgPair(o);
  open.push(...p);
  return p;
}

function echo4(src: string, dst: string, seq: number, size = 48): Buffer {
  return ipv4({ src, dst, proto: 1, payload: icmpEcho(8, 0x42, seq, pattern(size, seq)) });
}

function echo6(src: string, dst: string, seq: number): Buffer {
  const m = icmpEcho(128, 0x42, seq, pattern(48, seq));
  m.writeUInt16BE(0, 2);
  m.writeUInt16BE(icmpv6Checksum(v6Bytes(src), v6Bytes(dst), m), 2);
  return ipv6({ src, dst, next: 58, payload: m });
}

/** A received TCP packet made whole: NEEDS_CSUM completed as the kernel would. */
function finished(t: TunPacket): Buffer {
  if (!t.vnet || !(t.vnet.flags & VNET_F_NEEDS_CSUM)) return t.packet;
  return completePartialChecksum(t.packet, t.vnet.csumStart, t.vnet.csumOffset);
}

/** MAC1 of a handshake message for the receiver's public key (the paper, 5.4.4). */
function withMac1(msg: Buffer, receiverPublic: Buffer): Buffer {
  const key = wg.blake2s(Buffer.concat([Buffer.from('mac1----'), receiverPublic]));
  const at = msg.length - 32;
  wg.blake2sMac(key, msg.subarray(0, at), 16)!.copy(msg, at);
  return msg;
}

describe('wireguard between two engines', () => {
  test('the first packets wait for the handshake (made off the data threads), then flow both ways, IPv4 and IPv6 inside', async () => {
    const [A, B] = pair();
    const there = [echo4('198.19.1.2', '198.19.2.3', 1), echo6('2001:db8:100:1::2', '2001:db8:100:2::3', 2), echo4('198.19.1.2', '198.19.2.3', 3)];
    for (const p of there) A.rig.send(p);
    assert.deepEqual((await B.rig.received(3)).map((t) => t.packet), there, 'queued while the handshake ran, in order');
    const back = [echo4('198.19.2.3', '198.19.1.2', 4), echo6('2001:db8:100:2::3', '2001:db8:100:1::2', 5)];
    for (const p of back) B.rig.send(p);
    assert.deepEqual((await A.rig.received(2)).map((t) => t.packet), back);
    const a = A.wg.counters();
    assert.equal(a.response, 1, 'A initiated; B responded');
    assert.ok(a.initiations_deferred >= 1, 'the data thread left the initiation to the worker');
    assert.equal(B.wg.counters().initiation, 1);
    const [pb] = A.wg.peers();
    assert.ok(pb!.current && pb!.lastHandshakeMs > Date.now() - 10_000);
    assert.ok(pb!.txBytes > 148 && pb!.rxBytes > 92);
    assert.deepEqual(pb!.endpoint, { address: '127.0.0.2', port: B.rig.port });
    const s = A.rig.stats();
    assert.equal(s.peers.find((p) => p.subnet === '198.19.2.0/24')!.rx.packets, 1);
    assert.ok(Object.values(s.drops).every((n) => n === 0), JSON.stringify(s.drops));
    assert.equal(unaccountedDatagrams(a), 0);
  });

  test('a peer without an endpoint is learnt from its handshake; the responder answers at the roamed address', async () => {
    const [A, B] = pair({ bKnowsA: false });
    const p = echo4('198.19.2.3', '198.19.1.2', 1);
    B.rig.send(p);
    assert.ok(await until(() => B.rig.stats().drops.wg_no_endpoint === 1), 'B cannot reach A yet');
    A.rig.send(echo4('198.19.1.2', '198.19.2.3', 2));
    await B.rig.received(1);
    B.rig.send(p);
    assert.deepEqual((await A.rig.received(1)).map((t) => t.packet), [p]);
  });

  test('TSO in, UDP_SEGMENT out with a tail per segment, GRO on the way in: a 64 KiB super-packet arrives whole', async () => {
    for (const v4 of [true, false]) {
      const [A, B] = pair({ a: { tunOffloads: ALL_TUN_OFFLOADS }, b: { tunOffloads: ALL_TUN_OFFLOADS } });
      A.rig.send(echo4('198.19.1.2', '198.19.2.3', 1));
      await B.rig.received(1);
      const l3 = v4 ? 20 : 40;
      const mss = v4 ? 1368 : 1348;
      const data = pattern(v4 ? 65_535 - 52 : 60_000, 7);
      const t = tcp({ srcPort: 40000, dstPort: 5201, seq: 1000, ack: 1, flags: 0x18, options: Buffer.from([1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 7]), data });
      const whole = withL4Checksum(v4 ? ipv4({ src: '198.19.1.2', dst: '198.19.2.3', proto: 6, payload: t }) : ipv6({ src: '2001:db8:100:1::2', dst: '2001:db8:100:2::3', next: 6, payload: t }));
      A.rig.send(pseudoHeaderForm(whole), { flags: VNET_F_NEEDS_CSUM, gsoType: v4 ? GSO.tcpv4 : GSO.tcpv6, hdrLen: l3 + 32, gsoSize: mss, csumStart: l3, csumOffset: 16 });
      const segs = Math.ceil(data.length / mss);
      assert.ok(await until(() => B.rig.stats().rx.packets === segs + 1), `B got ${B.rig.stats().rx.packets - 1} of ${segs} segments`);
      const got = await B.rig.drain(50);
      let payload = Buffer.alloc(0);
      for (const g of got) {
        const p = finished(g);
        assert.equal(p.readUInt16BE(l3 + 16), l4Checksum(p), 'TCP checksum valid once completed');
        payload = Buffer.concat([payload, p.subarray(l3 + 32)]);
      }
      assert.deepEqual(payload, data);
      assert.ok(got.length < segs / 4, `${got.length} TUN writes for ${segs} segments`);
      const a = A.rig.stats();
      assert.deepEqual([a.offload.gsoPackets, a.offload.gsoSegments], [1, segs]);
      assert.ok(a.offload.udpGsoSends >= 1, 'sealed segments left in UDP_SEGMENT sends');
      assert.ok(B.rig.stats().offload.udpGroBatches >= 1);
      assert.equal(A.wg.counters().sent, segs, 'every segment sealed by the data thread (the first packet went after the handshake)');
      for (const n of [A, B]) closeNode(n);
      open.length = 0;
    }
  });

  test('allowed IPs: a peer may only send from its own subnets (spoofed_source otherwise)', async () => {
    const [A, B] = pair();
    const C = await JsPeer.open('127.0.0.3', '198.19.3.0/24');
    others.push(C);
    C.pairWith(B, { others: [descOf(A)] });
    const good = echo4('198.19.3.2', '198.19.2.3', 1);
    await C.sendAll(C.seal(B.wg.publicKey(), good).out);
    await C.pump();
    assert.deepEqual((await B.rig.received(1)).map((t) => t.packet), [good]);
    const spoofed = C.seal(B.wg.publicKey(), echo4('198.19.1.9', '198.19.2.3', 2)).datagram!;
    const nowhere = C.seal(B.wg.publicKey(), echo4('198.19.9.9', '198.19.2.3', 3)).datagram!;
    for (const d of [spoofed, nowhere]) await C.sock.send(d, '127.0.0.2', B.rig.port);
    assert.ok(await until(() => B.rig.stats().drops.spoofed_source === 2));
    assert.deepEqual(await B.rig.drain(50), []);
  });

  test('bad input is counted by reason, never a crash: forged and truncated handshakes, wrong MAC1, unknown receiver, replayed and reordered data, random bytes', async () => {
    const [, B] = pair();
    const C = await JsPeer.open('127.0.0.3', '198.19.3.0/24');
    others.push(C);
    C.pairWith(B);
    const send = (d: Buffer) => C.sock.send(d, '127.0.0.2', B.rig.port);
    await C.sendAll(C.seal(B.wg.publicKey(), echo4('198.19.3.2', '198.19.2.3', 1)).out);
    await C.pump();
    await B.rig.received(1);
    const before = B.wg.counters();
    const d = [2, 3, 4].map((i) => C.seal(B.wg.publicKey(), echo4('198.19.3.2', '198.19.2.3', i)).datagram!);
    // Reordered inside the window: every one delivered; then replays of each.
    for (const x of [d[2]!, d[0]!, d[1]!, d[0]!, d[2]!]) await send(x);
    const flipped = Buffer.from(d[1]!);
    flipped[40]! ^= 1;
    const unknownReceiver = Buffer.from(d[1]!);
    unknownReceiver.writeUInt32LE((unknownReceiver.readUInt32LE(4) ^ 0x5a5a5a5a) >>> 0, 4);
    const initiation = Buffer.alloc(148);
    initiation.writeUInt32LE(1, 0);
    randomBytes(140).copy(initiation, 4);
    const forged = withMac1(Buffer.from(initiation), B.wg.publicKey()); // right MAC1, garbage inside
    const response = withMac1(Buffer.concat([Buffer.from([2, 0, 0, 0]), randomBytes(88)]), B.wg.publicKey());
    const cookie = Buffer.concat([Buffer.from([3, 0, 0, 0]), randomBytes(60)]);
    for (const x of [flipped, unknownReceiver, initiation, forged, response, cookie, initiation.subarray(0, 100), Buffer.from([1, 0, 0]), Buffer.alloc(0), Buffer.from([9, 0, 0, 0, ...randomBytes(60)])]) await send(x);
    await C.pump(300);
    assert.ok(await until(() => B.rig.stats().rx.packets === 4), 'three reordered packets after the first');
    assert.equal((await B.rig.received(3)).length, 3);
    const after = B.wg.counters();
    const delta = (k: keyof typeof after) => after[k] - before[k];
    assert.deepEqual(
      Object.fromEntries((['data', 'replay', 'decrypt_failed', 'unknown_receiver', 'bad_mac1', 'static_decrypt', 'cookie_unexpected', 'bad_length', 'too_short', 'unknown_type'] as const).map((k) => [k, delta(k)])),
      { data: 3, replay: 2, decrypt_failed: 1, unknown_receiver: 3, bad_mac1: 1, static_decrypt: 1, cookie_unexpected: 0, bad_length: 1, too_short: 2, unknown_type: 1 },
    );
    const drops = B.rig.stats().drops;
    assert.deepEqual([drops.wg_replay, drops.wg_decrypt_failed, drops.wg_unknown_receiver, drops.malformed], [2, 1, 1, 4]);
    assert.equal(unaccountedDatagrams(after), 0);
    // Still working.
    const p = echo4('198.19.3.2', '198.19.2.3', 9);
    await send(C.seal(B.wg.publicKey(), p).datagram!);
    assert.deepEqual((await B.rig.received(1)).map((t) => t.packet), [p]);
  });

  test('20,000 random and mutated datagrams while pods ping: no ping lost, every datagram accounted', async () => {
    const [A, B] = pair();
    const C = await JsPeer.open('127.0.0.3', '198.19.3.0/24');
    const X = await UdpPeer.bind('127.0.0.4', 0);
    others.push(C, X);
    C.pairWith(B, { others: [descOf(A)] });
    await C.sendAll(C.seal(B.wg.publicKey(), echo4('198.19.3.2', '198.19.2.3', 1)).out);
    await C.pump();
    await B.rig.received(1);
    const seeds = Array.from({ length: 16 }, (_, i) => C.seal(B.wg.publicKey(), echo4('198.19.3.2', '198.19.2.3', 100 + i, 200)).datagram!);
    // Delivered once as they are (so every later copy is a replay), out of the way of the pings.
    for (const d of seeds) await C.sock.send(d, '127.0.0.2', B.rig.port);
    assert.equal((await B.rig.received(16)).length, 16);
    const init = Buffer.alloc(148);
    init.writeUInt32LE(1, 0);
    const hs = withMac1(init, B.wg.publicKey());
    let sent = 0;
    const flood = (async () => {
      for (let i = 0; i < 20_000; i++) {
        const kind = i % 5;
        let d: Buffer;
        if (kind === 0) d = randomBytes(i % 300);
        else if (kind === 1) {
          d = Buffer.from(seeds[i % seeds.length]!);
          d[16 + (i % (d.length - 16))]! ^= 1 << (i % 8);
        } else if (kind === 2) d = seeds[i % seeds.length]!; // replays
        else if (kind === 3) {
          d = Buffer.from(hs);
          d[4 + (i % 144)]! ^= 0x80;
        } else d = Buffer.from(seeds[i % seeds.length]!.subarray(0, i % 48));
        await (kind === 0 || kind === 4 ? X : C.sock).send(d, '127.0.0.2', B.rig.port);
        sent++;
        if (i % 50 === 0) await sleep(1); // paced below what a loopback socket buffer holds: the kernel must not drop any
      }
    })();
    let lost = 0;
    for (let seq = 1; sent < 20_000; seq++) {
      const p = echo4('198.19.1.2', '198.19.2.3', seq);
      A.rig.send(p);
      const [got] = await B.rig.received(1, 2000);
      if (!got?.packet.equals(p)) lost++;
      await sleep(2);
    }
    await flood;
    assert.equal(lost, 0, 'every ping during the flood arrived');
    assert.ok(await until(() => unaccountedDatagrams(B.wg.counters()) === 0, 5000), JSON.stringify(B.wg.counters()));
    const c = B.wg.counters();
    assert.ok(c.rx_datagrams >= 20_000, `${c.rx_datagrams} datagrams seen`);
    assert.ok(c.replay > 0 && c.decrypt_failed + c.unknown_receiver > 0 && c.bad_mac1 > 0 && c.too_short > 0, JSON.stringify(c));
  });

  test('timers through the test hook: persistent keepalives, and a rekey that keeps the traffic flowing', async () => {
    const [A, B] = pair({ timingScale: 40, keepalive: 1 });
    A.rig.send(echo4('198.19.1.2', '198.19.2.3', 1));
    await B.rig.received(1);
    // REKEY_AFTER_TIME is 120 s / 40 = 3 s: keep sending for 4 s.
    let seq = 2;
    for (const end = Date.now() + 4000; Date.now() < end; seq++) {
      const p = echo4('198.19.1.2', '198.19.2.3', seq);
      A.rig.send(p);
      assert.deepEqual((await B.rig.received(1, 2000)).map((t) => t.packet), [p], `packet ${seq}`);
      await sleep(20);
    }
    const a = A.wg.counters();
    const b = B.wg.counters();
    assert.ok(b.initiation >= 2, `rekeyed: B saw ${b.initiation} initiations`);
    assert.ok(a.keepalive_sent > 0 && b.keepalive_sent > 0 && a.keepalive > 0, `keepalives ${a.keepalive_sent}/${b.keepalive_sent}`);
  });

  test('a removed peer: its routes go first, then the peer; its packets get ICMP unreachable', async () => {
    const [A, B] = pair();
    A.rig.send(echo4('198.19.1.2', '198.19.2.3', 1));
    await B.rig.received(1);
    A.rig.engine.setPeers([]);
    assert.equal(A.wg.removePeer(B.wg.publicKey()), true);
    assert.deepEqual(A.wg.peers(), []);
    A.rig.send(echo4('198.19.1.2', '198.19.2.3', 2));
    const [icmp] = await A.rig.received(1);
    assert.deepEqual([icmp!.packet[20], icmp!.packet[21]], [3, 0], 'net unreachable');
    // Configured again: a new peer object, a new session. (Its initiation's timestamp must be newer
    // than the last one B accepted, which TAI64N rounds to 2^24 ns.)
    await sleep(40);
    peer(A, descOf(B));
    const p = echo4('198.19.1.2', '198.19.2.3', 3);
    A.rig.send(p);
    assert.deepEqual((await B.rig.received(1)).map((t) => t.packet), [p]);
    assert.equal(B.wg.counters().initiation, 2);
  });

  test('routes name their peer: a route without a key, or with a key no peer has, is refused', () => {
    const A = wgNode('127.0.0.1', ['198.19.1.0/24']);
    open.push(A);
    assert.throws(() => A.rig.engine.setPeers([{ subnet: '198.19.2.0/24', publicIP: '127.0.0.2', port: 51820 }]), /peer\[0\]\.publicKey: a WireGuard route needs/);
    assert.throws(() => A.rig.engine.setPeers([{ subnet: '198.19.2.0/24', publicIP: '', port: 0, publicKey: randomBytes(32).toString('hex') }]), /no WireGuard peer with this key/);
  });
});
