// wireguard-go's timers on a fake clock: two native devices in memory, time moved by the test, and
// what each side sends on its own at Tick. Spec constants (REKEY_TIMEOUT 5 s + up to 334 ms jitter,
// KEEPALIVE 10 s, REKEY_AFTER_TIME 120 s, REJECT_AFTER_TIME 180 s, rekey on receive at 165 s,
// REKEY_ATTEMPT_TIME 90 s, key zeroing at 540 s) unless a test uses the scaled-timer hook.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pair, isKeepalive, typeOf } from '../helpers/wg-pair.js';

const S = 1000; // ms

test('retransmit: an unanswered initiation is resent every REKEY_TIMEOUT + jitter, 20 in all, then the queue is dropped', () => {
  const p = new Pair();
  p.seal(p.a);
  const start = p.t;
  let initiations = p.a.outbox.splice(0).filter((d) => typeOf(d) === 1).length;
  let last = p.t;
  for (let i = 0; i < 40; i++) {
    const due = p.a.dev.nextDeadline();
    assert.ok(due !== null);
    if (due > start + 200 * S) break; // only the key-zeroing timer is left
    p.t = due;
    const sent = p.tick(p.a).filter((d) => typeOf(d) === 1);
    p.a.outbox.length = 0;
    if (sent.length) {
      const gap = p.t - last;
      assert.ok(gap >= 5 * S && gap <= 5 * S + 334, `retry after ${gap} ms`);
      last = p.t;
    }
    initiations += sent.length;
  }
  assert.equal(initiations, 20, 'the first one and 19 retries (wireguard-go: MaxTimerHandshakes + 2 attempts)');
  assert.ok(last - start >= 90 * S, 'retried for REKEY_ATTEMPT_TIME');
  assert.equal(p.a.dev.counters().gave_up, 1, 'the queued packet is dropped when it gives up');
  assert.equal(p.a.dev.peerStats(p.b.pub)!.staged, 0);
});

test('a new packet while a handshake is in flight does not resend it before REKEY_TIMEOUT', () => {
  const p = new Pair();
  p.seal(p.a);
  p.t += 2 * S;
  const r = p.seal(p.a);
  assert.equal(r.verdict, 'queued');
  assert.equal(r.sends.length, 0);
  assert.equal(p.a.dev.peerStats(p.b.pub)!.staged, 2);
});

test('keepalive: data received and nothing sent back for KEEPALIVE_TIMEOUT makes the receiver send an empty packet', () => {
  const p = new Pair();
  p.handshake();
  p.b.outbox.length = 0;
  const at = p.t;
  p.t = at + 9.9 * S;
  assert.deepEqual(p.tick(p.b), []);
  p.t = at + 10 * S;
  const sent = p.tick(p.b);
  assert.equal(sent.length, 1);
  assert.ok(isKeepalive(sent[0]!));
  const [r] = p.deliver(p.b);
  assert.equal(r!.reason, 'keepalive');
  // Answered with data instead: no keepalive then.
  p.seal(p.a);
  p.deliver(p.a);
  p.seal(p.b);
  p.t += 11 * S;
  assert.equal(p.tick(p.b).filter(isKeepalive).length, 0);
});

test('new handshake: data sent and nothing heard for KEEPALIVE + REKEY_TIMEOUT (+ jitter) starts a handshake', () => {
  const p = new Pair();
  p.handshake();
  p.a.outbox.length = 0;
  p.b.outbox.length = 0;
  const at = p.t;
  p.seal(p.a); // B never hears it
  p.a.outbox.length = 0;
  p.t = at + 14.9 * S;
  assert.deepEqual(p.tick(p.a).map(typeOf), []);
  p.t = at + 15 * S + 334;
  assert.deepEqual(p.tick(p.a).map(typeOf), [1]);
});

test('the data path draws no bytes from the random source: the new-handshake timer\'s jitter comes from its own generator', () => {
  // OpenSSL's DRBG cost ~30 us per call on a thread that had slept, and every ping armed the timer
  // on both sides. The injected queue shows whether the device asked its random source for bytes.
  const p = new Pair();
  p.handshake();
  p.deliver(p.b); // A hears from B: the new-handshake timer is not pending
  const queued = p.a.dev.injectRandom(Buffer.alloc(64, 7));
  for (let i = 0; i < 5; i++) {
    p.t += 100;
    p.seal(p.a); // arms the timer (it was not pending): a jitter is drawn
    p.deliver(p.a);
    p.seal(p.b);
    p.deliver(p.b); // authenticated data received: the timer is cleared again
  }
  assert.ok((p.b.dev.counters().sent ?? 0) >= 5, 'the replies went out');
  assert.equal(p.a.dev.injectRandom(Buffer.alloc(0)), queued, 'no byte of the random source was used by the five armings');
});

test('REKEY_AFTER_TIME: the initiator rekeys when sending after 120 s; the responder does not', () => {
  const p = new Pair();
  p.handshake();
  p.t += 119 * S;
  assert.deepEqual(p.seal(p.a).sends.map((s) => typeOf(s.data)), []);
  assert.deepEqual(p.seal(p.b).sends.map((s) => typeOf(s.data)), []);
  p.t += 2 * S;
  const r = p.seal(p.a);
  assert.equal(r.verdict, 'send', 'the old key still sends');
  assert.deepEqual(r.sends.map((s) => typeOf(s.data)), [1], 'and a new handshake starts');
  assert.deepEqual(p.seal(p.b).sends.map((s) => typeOf(s.data)), [], 'the responder waits for the initiator');
});

test('REJECT_AFTER_TIME: after 180 s a keypair no longer sends (queued for a new handshake) nor receives', () => {
  const p = new Pair();
  p.handshake();
  const old = p.seal(p.b).datagram!;
  p.b.outbox.length = 0;
  p.t += 181 * S;
  const r = p.seal(p.a);
  assert.equal(r.verdict, 'queued');
  assert.deepEqual(r.sends.map((s) => typeOf(s.data)), [1]);
  assert.equal(p.a.dev.receive(old, p.b.ep, p.now()).reason, 'expired_keypair');
});

test('rekey on receive: the initiator whose key is older than 165 s starts a handshake when data arrives, once', () => {
  const p = new Pair();
  p.handshake();
  p.t += 164 * S;
  p.seal(p.b);
  assert.deepEqual(p.deliver(p.b).flatMap((r) => r.sends.map((s) => typeOf(s.data))), []);
  p.t += 2 * S;
  p.seal(p.b);
  assert.deepEqual(p.deliver(p.b).flatMap((r) => r.sends.map((s) => typeOf(s.data))), [1]);
  p.t += 6 * S;
  p.seal(p.b);
  assert.deepEqual(p.deliver(p.b).flatMap((r) => r.sends.map((s) => typeOf(s.data))), [], 'sent the last-minute handshake already');
});

test('a completed rekey rotates keypairs: the previous one still decrypts in-flight packets', () => {
  const p = new Pair();
  p.handshake();
  const inflight = p.seal(p.a).datagram!;
  p.a.outbox.length = 0;
  p.t += 121 * S;
  p.seal(p.a); // rekey: initiation out
  p.deliver(p.a); // B responds (new keypair in B's next)
  p.deliver(p.b); // A: response -> new current, old is previous; keepalive confirms
  p.deliver(p.a);
  assert.equal(p.b.dev.peerStats(p.a.pub)!.previous, true);
  assert.equal(p.b.dev.receive(inflight, p.a.ep, p.now()).verdict, 'inner', 'sent with the previous keypair');
});

test('key zeroing: 540 s after the last session was derived every key is wiped', () => {
  const p = new Pair();
  p.handshake();
  const at = p.t;
  p.t = at + 539 * S;
  p.tick(p.a);
  assert.equal(p.a.dev.peerStats(p.b.pub)!.current, true);
  p.t = at + 540 * S;
  p.tick(p.a);
  const s = p.a.dev.peerStats(p.b.pub)!;
  assert.equal(s.current || s.previous || s.next, false);
});

test('persistent keepalive: sent every interval without other traffic; turning it on sends one at once', () => {
  const p = new Pair({ keepalive: 25 });
  p.handshake();
  p.a.outbox.length = 0;
  const at = p.t;
  p.t = at + 10 * S;
  assert.equal(p.tick(p.b).filter(isKeepalive).length, 1, "B's keepalive for A's data");
  p.deliver(p.b); // A hears from B: its persistent keepalive now counts from here
  p.t = at + 34.9 * S;
  assert.equal(p.tick(p.a).filter(isKeepalive).length, 0);
  p.t = at + 35 * S;
  assert.equal(p.tick(p.a).filter(isKeepalive).length, 1);
  p.t = at + 60 * S;
  assert.equal(p.tick(p.a).filter(isKeepalive).length, 1, 'and again one interval later');
  const out = p.b.dev.setPeer({ publicKey: p.a.pub, psk: p.psk, endpoint: p.a.ep, persistentKeepalive: 10 }, p.now());
  assert.equal(out.sends.filter((s) => isKeepalive(s.data)).length, 1, 'on from off: one right away');
});

test('REKEY_AFTER_MESSAGES (lowered through the test hook): the sender rekeys after that many packets', () => {
  const p = new Pair({ timing: { rekeyAfterMessages: 4 } });
  p.handshake(); // one packet sent
  p.t += 6 * S; // past REKEY_TIMEOUT: initiations are at most one per 5 s
  const kinds = [];
  for (let i = 0; i < 5; i++) kinds.push(p.seal(p.a).sends.map((s) => typeOf(s.data)));
  assert.deepEqual(kinds.slice(0, 3), [[], [], []]);
  assert.deepEqual(kinds[3], [1], 'counter 4 > REKEY_AFTER_MESSAGES: handshake');
});

test('the scaled-timer hook divides every duration: a retransmit after 5 ms at scale 1000', () => {
  const p = new Pair({ timing: { scale: 1000 } });
  p.seal(p.a);
  const due = p.a.dev.nextDeadline()! - p.t;
  assert.ok(due >= 5 && due <= 5.334, `retransmit due in ${due} ms`);
  p.t += due;
  assert.deepEqual(p.tick(p.a).map(typeOf), [1]);
});
