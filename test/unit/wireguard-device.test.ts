// The native WireGuard device between two in-memory peers: the session both ways, the cookie reply
// round trip under load (XChaCha20-Poly1305 through libsodium in TypeScript), and bad input — each
// rejected with its reason and counted, never a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { answerCookieJobs } from '../../src/backend/wireguard/cookie-crypto.js';
import { Pair, ping, typeOf, wg } from '../helpers/wg-pair.js';

test('a session both ways: the first packet waits for the handshake, then data flows in both directions', () => {
  const p = new Pair();
  const first = p.seal(p.a);
  assert.equal(first.verdict, 'queued');
  assert.deepEqual(first.sends.map((s) => typeOf(s.data)), [1]);
  const [init] = p.deliver(p.a);
  assert.equal(init!.reason, 'initiation');
  const [resp] = p.deliver(p.b);
  assert.equal(resp!.reason, 'response');
  const [data] = p.deliver(p.a);
  assert.equal(data!.verdict, 'inner');
  assert.ok(data!.inner!.includes(Buffer.from('flannelts')));
  assert.deepEqual(data!.peer, p.a.pub);
  const back = p.seal(p.b, ping('back'));
  assert.equal(back.verdict, 'send', 'the responder sends once the initiator used the new keys');
  const [got] = p.deliver(p.b);
  assert.ok(got!.inner!.includes(Buffer.from('back')));
  const sa = p.a.dev.peerStats(p.b.pub)!;
  assert.equal(sa.current, true);
  assert.ok(sa.txBytes > 148 && sa.rxBytes > 92);
  assert.ok(sa.lastHandshakeMs > 0);
  assert.deepEqual(p.b.dev.peerStats(p.a.pub)!.endpoint, p.a.ep);
});

test('crossed initiations (both sides send first): the greater key keeps its own, the other answers it, and both packets arrive without waiting 5 s', () => {
  const p = new Pair();
  p.seal(p.a, ping('from a'));
  p.seal(p.b, ping('from b'));
  const [initA] = p.a.outbox.splice(0);
  const [initB] = p.b.outbox.splice(0);
  assert.equal(typeOf(initA!), 1);
  assert.equal(typeOf(initB!), 1);
  // Both initiations are in flight before either arrives: the clock does not move.
  const atB = p.b.dev.receive(initA!, p.a.ep, p.now());
  p.collect(p.b, atB);
  const atA = p.a.dev.receive(initB!, p.b.ep, p.now());
  p.collect(p.a, atA);
  const aGreater = Buffer.compare(p.a.pub, p.b.pub) > 0;
  const [big, small] = aGreater ? [p.a, p.b] : [p.b, p.a];
  const [atBig, atSmall] = aGreater ? [atA, atB] : [atB, atA];
  assert.equal(atBig.reason, 'initiation_crossed', 'the greater key keeps its own initiation');
  assert.equal(atBig.sends.length, 0, 'and answers nothing');
  assert.equal(atSmall.reason, 'initiation', 'the smaller key answers the greater one');
  assert.deepEqual(atSmall.sends.map((s) => typeOf(s.data)), [2]);
  const [resp] = p.deliver(small);
  assert.equal(resp!.reason, 'response', 'the response matches the initiation the greater key kept');
  const dataFromBig = p.deliver(big);
  assert.ok(dataFromBig.some((r) => r.verdict === 'inner' && r.inner!.includes(Buffer.from(`from ${big === p.a ? 'a' : 'b'}`))));
  const dataFromSmall = p.deliver(small);
  assert.ok(dataFromSmall.some((r) => r.verdict === 'inner' && r.inner!.includes(Buffer.from(`from ${small === p.a ? 'a' : 'b'}`))), 'the smaller side sends its queued packet once confirmed');
  assert.equal(big.dev.counters().initiation_crossed, 1);
  assert.equal(small.dev.counters().initiation_crossed, 0);
  assert.equal(big.dev.peerStats(small.pub)!.current, true);
  assert.equal(small.dev.peerStats(big.pub)!.current, true);
});

/** Both sides initiate; the greater key's initiation is lost. Returns the smaller key's initiation. */
function crossedWithOursLost() {
  const p = new Pair();
  const [big, small] = Buffer.compare(p.a.pub, p.b.pub) > 0 ? [p.a, p.b] : [p.b, p.a];
  p.seal(big);
  p.seal(small);
  big.outbox.splice(0);
  const [initSmall] = small.outbox.splice(0);
  return { p, big, small, initSmall: initSmall! };
}

test('an initiation after ours went unanswered for REKEY_TIMEOUT is answered, even by the greater key', () => {
  const { p, big, small, initSmall } = crossedWithOursLost();
  p.t += 5000;
  const r = big.dev.receive(initSmall, small.ep, p.now());
  assert.equal(r.reason, 'initiation', 'ours is stale: answer theirs');
  assert.deepEqual(r.sends.map((s) => typeOf(s.data)), [2]);
});

test('a crossed initiation from another address than the one ours went to is answered, even by the greater key', () => {
  const { p, big, small, initSmall } = crossedWithOursLost();
  const moved = { address: '198.18.7.7', port: 40000 };
  const r = big.dev.receive(initSmall, moved, p.now());
  assert.equal(r.reason, 'initiation', 'the peer is not where ours went: answer it');
  assert.deepEqual(r.sends.map((s) => typeOf(s.data)), [2]);
  assert.deepEqual(big.dev.peerStats(small.pub)!.endpoint, moved);
});

test('roaming: an authenticated packet from a new address moves the endpoint; a forged one does not', () => {
  const p = new Pair();
  p.handshake();
  const r = p.seal(p.a);
  const moved = { address: '198.18.7.7', port: 40000 };
  assert.equal(p.b.dev.receive(r.datagram!, moved, p.now()).verdict, 'inner');
  assert.deepEqual(p.b.dev.peerStats(p.a.pub)!.endpoint, moved);
  const forged = Buffer.from(p.seal(p.a).datagram!);
  forged[30]! ^= 0xff;
  assert.equal(p.b.dev.receive(forged, { address: '198.18.9.9', port: 1 }, p.now()).reason, 'decrypt_failed');
  assert.deepEqual(p.b.dev.peerStats(p.a.pub)!.endpoint, moved);
});

test('cookie reply round trip: under load an initiation without MAC2 gets a cookie; the retry carries MAC2 and is accepted', () => {
  const p = new Pair({ timing: { scale: 1000 } });
  p.seal(p.a);
  const initiation = p.a.outbox.splice(0)[0]!;
  assert.equal(initiation.subarray(132).equals(Buffer.alloc(16)), true, 'no cookie yet: MAC2 is zero');
  const busy = p.b.dev.receive(initiation, p.a.ep, p.now(), true);
  assert.equal(busy.reason, 'cookie_sent');
  assert.equal(busy.sends.length, 0, 'no response while under load');
  assert.equal(busy.cookieSeals.length, 1);
  const sealed = answerCookieJobs(p.b.dev, busy, p.now());
  assert.equal(sealed.sends.length, 1);
  const reply = sealed.sends[0]!.data;
  assert.equal(typeOf(reply), 3);
  assert.equal(reply.length, 64);
  assert.equal(reply.readUInt32LE(4), initiation.readUInt32LE(4), 'addressed to the initiation sender index');

  // A forged cookie reply does not open.
  const forged = Buffer.from(reply);
  forged[40]! ^= 1;
  const f = p.a.dev.receive(forged, p.b.ep, p.now());
  assert.equal(f.reason, 'cookie_reply');
  assert.equal(answerCookieJobs(p.a.dev, f, p.now()).cookiesRejected, 1);

  const got = p.a.dev.receive(reply, p.b.ep, p.now());
  assert.equal(got.reason, 'cookie_reply');
  assert.equal(answerCookieJobs(p.a.dev, got, p.now()).cookiesTaken, 1);

  // The retransmit (REKEY_TIMEOUT later, scaled) carries MAC2; B, still under load, answers it.
  p.t += p.a.dev.nextDeadline()! - p.t + 1;
  const retry = p.tick(p.a);
  assert.deepEqual(retry.map(typeOf), [1]);
  assert.equal(retry[0]!.subarray(132).equals(Buffer.alloc(16)), false, 'MAC2 set');
  p.a.outbox.length = 0;
  const ok = p.b.dev.receive(retry[0]!, p.a.ep, p.now(), true);
  assert.equal(ok.reason, 'initiation');
  assert.deepEqual(ok.sends.map((s) => typeOf(s.data)), [2]);
  // The same MAC2 from another address is not a valid cookie there.
  const elsewhere = p.b.dev.receive(retry[0]!, { address: '198.18.5.5', port: 51820 }, p.now(), true);
  assert.equal(elsewhere.reason, 'cookie_sent');
});

test('bad handshake input: truncated, wrong MAC1, forged, unknown peer, replayed, flooded, unknown receiver', () => {
  const p = new Pair();
  p.seal(p.a);
  const init = p.a.outbox.splice(0)[0]!;
  const b = p.b.dev;
  const now = p.now();
  const rx = (d: Buffer) => b.receive(d, p.a.ep, now).reason;
  assert.equal(rx(init.subarray(0, 147)), 'bad_length');
  assert.equal(rx(Buffer.concat([init, Buffer.alloc(1)])), 'bad_length');
  const badMac = Buffer.from(init);
  badMac[120]! ^= 1;
  assert.equal(rx(badMac), 'bad_mac1');
  // Content changed and MAC1 recomputed (anyone can compute MAC1 from B's public key): the AEAD catches it.
  const forged = Buffer.from(init);
  forged[50]! ^= 1;
  wg.blake2sMac(wg.blake2s(Buffer.concat([Buffer.from('mac1----'), p.b.pub])), forged.subarray(0, 116), 16)!.copy(forged, 116);
  assert.equal(rx(forged), 'static_decrypt');
  // A well-formed initiation from a key B has no peer for.
  const stranger = new wg.Device({ privateKey: randomBytes(32) });
  stranger.setPeer({ publicKey: p.b.pub, endpoint: p.b.ep }, now);
  const strange = stranger.seal(p.b.pub, ping(), now).sends[0]!.data;
  assert.equal(rx(strange), 'unknown_peer');
  assert.equal(rx(init), 'initiation');
  assert.equal(rx(init), 'handshake_replay', 'the same timestamp again');
  // A newer initiation within 20 ms of the last one accepted is a flood; after 20 ms it is fine.
  const ts = Buffer.alloc(12);
  ts.writeBigUInt64BE(0x400000000000000an + BigInt(Math.floor(now.wall / 1000) + 60));
  const newer = wg.noiseInitiator({ staticPrivate: p.a.priv, peerPublic: p.b.pub, psk: p.psk, ephemeralPrivate: randomBytes(32), timestamp: ts, senderIndex: 5 }).initiation!;
  assert.equal(b.receive(newer, p.a.ep, { mono: now.mono + 15, wall: now.wall + 15 }).reason, 'handshake_flood');
  assert.equal(b.receive(newer, p.a.ep, { mono: now.mono + 25, wall: now.wall + 25 }).reason, 'initiation');
  // A response nobody waits for, a cookie reply for an unknown index.
  const resp = Buffer.alloc(92);
  resp.writeUInt32LE(2, 0);
  wg.blake2sMac(wg.blake2s(Buffer.concat([Buffer.from('mac1----'), p.b.pub])), resp.subarray(0, 60), 16)!.copy(resp, 60);
  assert.equal(rx(resp), 'unknown_receiver');
  const cookie = Buffer.alloc(64);
  cookie.writeUInt32LE(3, 0);
  assert.equal(rx(cookie), 'unknown_receiver');
  assert.equal(rx(Buffer.alloc(100, 9)), 'unknown_type');
  const c = b.counters();
  for (const k of ['bad_length', 'bad_mac1', 'static_decrypt', 'unknown_peer', 'handshake_replay', 'handshake_flood', 'unknown_receiver', 'unknown_type']) {
    assert.ok(c[k]! >= 1, `${k} counted`);
  }
});

test('random and mutated datagrams: every one rejected with a reason and counted, no crash, the session survives', () => {
  const p = new Pair();
  p.handshake();
  const valid = [p.seal(p.a).datagram!];
  p.a.outbox.length = 0;
  const before = p.b.dev.counters();
  const n = 3000;
  let seen = 0;
  for (let i = 0; i < n; i++) {
    let d: Buffer;
    if (i % 3 === 0) d = randomBytes(i % 200);
    else {
      d = Buffer.from(valid[0]!);
      d.writeUInt32LE([1, 2, 3, 4][i % 4]!, 0);
      d[(i * 7) % d.length]! ^= 1 + (i % 255);
      if (i % 5 === 0) d = d.subarray(0, i % d.length);
    }
    const r = p.b.dev.receive(d, p.a.ep, p.now());
    assert.notEqual(r.verdict, 'inner', `datagram ${i} must not pass`);
    seen++;
  }
  const after = p.b.dev.counters();
  const total = Object.keys(after).reduce((s, k) => s + (after[k]! - (before[k] ?? 0)), 0);
  assert.equal(total, seen, 'every datagram counted under exactly one reason');
  assert.equal(p.b.dev.receive(valid[0]!, p.a.ep, p.now()).verdict, 'inner', 'the genuine packet still opens');
});

test('a removed peer: its sessions are gone and its packets are unknown', () => {
  const p = new Pair();
  p.handshake();
  const d = p.seal(p.a).datagram!;
  assert.equal(p.b.dev.removePeer(p.a.pub), true);
  assert.equal(p.b.dev.receive(d, p.a.ep, p.now()).reason, 'unknown_receiver');
  assert.equal(p.b.dev.peerStats(p.a.pub), null);
  assert.equal(p.b.dev.removePeer(p.a.pub), false);
});
