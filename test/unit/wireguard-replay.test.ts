// The receive path's replay window (RFC 6479 with wireguard-go's 8128 packets): transport messages
// with chosen counters, sealed with the session keys of a handshake our test code did as the
// initiator (the low-level Noise functions), fed to a native Device as the responder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ping, wg } from '../helpers/wg-pair.js';
import type { WgDevice, WgTimingOptions } from '../../src/native/wireguard.js';

const from = { address: '198.18.0.1', port: 51820 };
const now = { mono: 1000, wall: Date.UTC(2025, 0, 2) };

interface Session {
  dev: WgDevice;
  send(counter: number | bigint, packet?: Buffer, tamper?: (msg: Buffer) => void): string;
}

function session(timing?: WgTimingOptions): Session {
  const ours = randomBytes(32);
  const theirs = randomBytes(32);
  const dev = new wg.Device({ privateKey: theirs, mtu: 1420, ...(timing ? { timing } : {}) });
  dev.setPeer({ publicKey: wg.x25519Public(ours)!, endpoint: from }, now);
  const ts = Buffer.alloc(12);
  ts.writeBigUInt64BE(0x400000000000000an + 1_700_000_000n);
  const opts = { staticPrivate: ours, peerPublic: dev.publicKey(), ephemeralPrivate: randomBytes(32), timestamp: ts, senderIndex: 77 };
  const init = wg.noiseInitiator(opts);
  const resp = dev.receive(init.initiation!, from, now);
  assert.equal(resp.reason, 'initiation');
  const keys = wg.noiseInitiator({ ...opts, response: resp.sends[0]!.data });
  assert.equal(keys.error, 'ok');
  return {
    dev,
    send(counter, packet = ping(), tamper) {
      const c = BigInt(counter);
      const header = Buffer.alloc(16);
      header.writeUInt32LE(4, 0);
      header.writeUInt32LE(keys.remoteIndex!, 4);
      header.writeBigUInt64LE(c, 8);
      const nonce = Buffer.alloc(12);
      nonce.writeBigUInt64LE(c, 4);
      const body = Buffer.concat([packet, Buffer.alloc((16 - (packet.length % 16)) % 16)]);
      const msg = Buffer.concat([header, wg.aead(true, keys.sendKey!, nonce, body, Buffer.alloc(0))!]);
      tamper?.(msg);
      return dev.receive(msg, from, now).reason;
    },
  };
}

test('replay window: in order, duplicates, out of order inside the window', () => {
  const s = session();
  assert.deepEqual([0, 1, 2, 3].map((c) => s.send(c)), ['data', 'data', 'data', 'data']);
  assert.equal(s.send(2), 'replay', 'a duplicate');
  assert.equal(s.send(0), 'replay');
  assert.equal(s.send(10), 'data', 'a gap');
  assert.deepEqual([7, 5, 9].map((c) => s.send(c)), ['data', 'data', 'data'], 'late but inside the window');
  assert.equal(s.send(7), 'replay');
  assert.equal(s.dev.counters().replay, 3);
});

test('replay window: far ahead is accepted; 8128 behind is the oldest still accepted, 8129 is too old', () => {
  const s = session();
  assert.equal(s.send(1), 'data');
  assert.equal(s.send(100_000), 'data', 'far ahead moves the window');
  assert.equal(s.send(100_000 - 8128), 'data', 'the window is 8128 counters');
  assert.equal(s.send(100_000 - 8129), 'replay', 'one older is outside');
  assert.equal(s.send(1), 'replay', 'long gone');
  assert.equal(s.send(99_999), 'data');
});

test('replay window: wrapping the 128-block ring forgets only what left the window', () => {
  const s = session();
  for (let c = 0; c <= 200; c++) assert.equal(s.send(c), 'data');
  assert.equal(s.send(8200), 'data', 'the ring wraps (block 128 reuses slot 0)');
  assert.equal(s.send(71), 'replay', '8129 behind: outside');
  assert.equal(s.send(72), 'replay', 'inside the window and seen before: still remembered');
  assert.equal(s.send(150), 'replay');
  assert.equal(s.send(201), 'data', 'inside and new');
  assert.equal(s.send(8199), 'data');
  assert.equal(s.send(8200), 'replay');
  // Counters walking across several full rings one by one.
  for (let c = 8201; c < 8201 + 3 * 8192; c += 61) assert.equal(s.send(c), 'data');
});

test('REJECT_AFTER_MESSAGES: a counter at the limit is refused like a replay', () => {
  const s = session({ rejectAfterMessages: 1000 });
  assert.equal(s.send(999), 'data');
  assert.equal(s.send(1000), 'replay');
  assert.equal(s.send(2n ** 64n - 1n), 'replay');
});

test('a forged or truncated transport message is rejected before the replay window sees it', () => {
  const s = session();
  assert.equal(s.send(5), 'data');
  const good = Buffer.alloc(48, 1);
  good.writeUInt32LE(4, 0);
  assert.equal(s.dev.receive(good, from, now).reason, 'unknown_receiver');
  assert.equal(s.dev.receive(Buffer.alloc(31, 4), from, now).reason, 'too_short');
  // Counter 6 with a flipped ciphertext bit: decrypt fails, and the genuine counter 6 stays usable.
  assert.equal(s.send(6, ping(), (m) => (m[20]! ^= 1)), 'decrypt_failed');
  assert.equal(s.send(6, ping(), (m) => (m[m.length - 1]! ^= 1)), 'decrypt_failed', 'a forged tag');
  assert.equal(s.send(6), 'data');
  assert.equal(s.dev.counters().decrypt_failed, 2);
});
