// The handshake against real wireguard-go, from a fixture (test/fixtures/wireguard/, made by
// test/helpers/wg-interop.ts in two network namespaces with Debian's wireguard-go and wg): with the
// fixture's static keys, PSK, ephemeral keys, indices and clock, our code produces wireguard-go's
// accepted messages byte for byte, derives the same transport keys (it decrypts what wireguard-go
// and its kernel sent back) and seals data exactly as it went on the wire. No root needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { wireguardNative, type WgDevice } from '../../src/native/wireguard.js';
import type { InteropRecord } from '../helpers/wg-interop.js';

const wg = wireguardNative();
const fx = JSON.parse(readFileSync(new URL('../../../test/fixtures/wireguard/wireguard-go-handshake.json', import.meta.url), 'utf8')) as InteropRecord;
const b64 = (s: string): Buffer => Buffer.from(s, 'base64');
const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const ours = { priv: b64(fx.keys.ours.private), pub: b64(fx.keys.ours.public) };
const theirs = { priv: b64(fx.keys.theirs.private), pub: b64(fx.keys.theirs.public) };
const psk = b64(fx.keys.psk);
const them = { address: '198.18.0.2', port: 51821 };

/** TAI64N as WireGuard writes it: 2^62 + 10 + seconds, then nanoseconds rounded down to 2^24 ns. */
function tai64n(wallMs: number): Buffer {
  const t = Buffer.alloc(12);
  t.writeBigUInt64BE(0x400000000000000an + BigInt(Math.floor(wallMs / 1000)));
  t.writeUInt32BE(((wallMs % 1000) * 1e6) & ~0xffffff, 8);
  return t;
}

function nonce(counter: bigint): Buffer {
  const n = Buffer.alloc(12);
  n.writeBigUInt64LE(counter, 4);
  return n;
}

/** Opens a transport message with a receive key; checks the header fields on the way. */
function openData(msg: Buffer, key: Buffer, receiver: number): Buffer {
  assert.equal(msg.readUInt32LE(0), 4, 'a transport message');
  assert.equal(msg.readUInt32LE(4), receiver, 'addressed to our index');
  const plain = wg.aead(false, key, nonce(msg.readBigUInt64LE(8)), msg.subarray(16), Buffer.alloc(0));
  assert.ok(plain, 'decrypts and authenticates');
  return plain;
}

test('fixture: the keys match (public keys are X25519 of the private ones)', () => {
  assert.deepEqual(wg.x25519Public(ours.priv), ours.pub);
  assert.deepEqual(wg.x25519Public(theirs.priv), theirs.pub);
});

test('we initiate: our initiation is byte-identical, wireguard-go answered it, and both sides decrypt each other', () => {
  const [initiation, data] = fx.initiate.sent.map(hex);
  const [response, reply] = fx.initiate.received.map(hex);
  const r = wg.noiseInitiator({
    staticPrivate: ours.priv,
    peerPublic: theirs.pub,
    psk,
    ephemeralPrivate: hex(fx.keys.initiateEphemeral),
    timestamp: tai64n(fx.keys.wallMs),
    senderIndex: fx.keys.initiateIndex,
    response: response!,
  });
  assert.equal(r.error, 'ok');
  assert.deepEqual(r.initiation, initiation, 'the initiation wireguard-go accepted, MAC1 included');
  assert.ok(wg.mac1Valid(initiation!, theirs.pub));
  // Their view of it: the responder decrypts our static key and timestamp with their private key.
  const seen = wg.noiseResponder({ staticPrivate: theirs.priv, psk, initiation: initiation!, ephemeralPrivate: Buffer.alloc(32, 1), senderIndex: 1 });
  assert.deepEqual(seen.peerStatic, ours.pub);
  assert.deepEqual(seen.timestamp, tai64n(fx.keys.wallMs));
  // Our first data packet (the queued ICMP echo request), sealed with the derived send key, counter 0.
  const packet = hex(fx.initiate.packet);
  const padded = Buffer.concat([packet, Buffer.alloc((16 - (packet.length % 16)) % 16)]);
  const header = Buffer.alloc(16);
  header.writeUInt32LE(4, 0);
  header.writeUInt32LE(r.remoteIndex!, 4);
  assert.deepEqual(Buffer.concat([header, wg.aead(true, r.sendKey!, nonce(0n), padded, Buffer.alloc(0))!]), data);
  // Their kernel's echo reply, encrypted by wireguard-go: our receive key opens it.
  const inner = openData(reply!, r.recvKey!, fx.keys.initiateIndex);
  assert.equal(inner[9], 1, 'ICMP');
  assert.equal(inner[20], 0, 'echo reply');
  assert.equal(inner.subarray(12, 16).join('.'), '198.19.2.1');
  assert.ok(inner.includes(Buffer.from('flannelts wireguard fixture')));
  assert.deepEqual(inner, hex(fx.initiate.inner[0]!));
});

test('they initiate: our response is byte-identical, and the data wireguard-go sent with the new keys decrypts', () => {
  const [initiation, data] = fx.respond.received.map(hex);
  const r = wg.noiseResponder({
    staticPrivate: ours.priv,
    psk,
    initiation: initiation!,
    ephemeralPrivate: hex(fx.keys.respondEphemeral),
    senderIndex: fx.keys.respondIndex,
  });
  assert.equal(r.error, 'ok');
  assert.deepEqual(r.peerStatic, theirs.pub, 'their static key, decrypted');
  assert.deepEqual(r.response, hex(fx.respond.sent[0]!), 'the response wireguard-go accepted');
  assert.ok(wg.mac1Valid(initiation!, ours.pub), "their MAC1 under our key");
  const inner = openData(data!, r.recvKey!, fx.keys.respondIndex);
  assert.equal(inner[9], 17, 'UDP');
  assert.equal(inner.readUInt16BE(22), 9999);
  assert.ok(inner.includes(hex(fx.respond.trigger)));
  // The wrong PSK or the wrong static key cannot open the same initiation.
  assert.equal(
    wg.noiseResponder({ staticPrivate: theirs.priv, initiation: initiation!, ephemeralPrivate: Buffer.alloc(32, 2), senderIndex: 2 }).error,
    'static_decrypt',
  );
  const noPsk = wg.noiseResponder({ staticPrivate: ours.priv, initiation: initiation!, ephemeralPrivate: hex(fx.keys.respondEphemeral), senderIndex: 3 });
  assert.equal(noPsk.error, 'ok', 'the PSK only enters at the response');
  assert.notDeepEqual(noPsk.response, r.response);
});

function device(): WgDevice {
  const d = new wg.Device({ privateKey: ours.priv, mtu: 1420 });
  d.setPeer({ publicKey: theirs.pub, psk, endpoint: them }, { mono: 0, wall: fx.keys.wallMs });
  return d;
}

const index = (i: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(i);
  return b;
};

test('the Device replays the captured exchange: same bytes out, same packets in', () => {
  const now = { mono: 1000, wall: fx.keys.wallMs };
  const d = device();
  d.injectRandom(Buffer.concat([hex(fx.keys.initiateEphemeral), index(fx.keys.initiateIndex)]));
  const s = d.seal(theirs.pub, hex(fx.initiate.packet), now);
  assert.equal(s.verdict, 'queued');
  assert.deepEqual(s.sends.map((x) => x.data.toString('hex')), [fx.initiate.sent[0]]);
  const resp = d.receive(hex(fx.initiate.received[0]!), them, now);
  assert.equal(resp.reason, 'response');
  assert.deepEqual(resp.sends.map((x) => x.data.toString('hex')), [fx.initiate.sent[1]], 'the queued packet, sealed as on the wire');
  const reply = d.receive(hex(fx.initiate.received[1]!), them, now);
  assert.equal(reply.verdict, 'inner');
  assert.equal(reply.inner!.toString('hex'), fx.initiate.inner[0]);

  const r = device();
  r.injectRandom(Buffer.concat([hex(fx.keys.respondEphemeral), index(fx.keys.respondIndex)]));
  const init = r.receive(hex(fx.respond.received[0]!), them, now);
  assert.equal(init.reason, 'initiation');
  assert.deepEqual(init.sends.map((x) => x.data.toString('hex')), fx.respond.sent);
  const data = r.receive(hex(fx.respond.received[1]!), them, now);
  assert.equal(data.reason, 'data');
  assert.equal(data.inner!.toString('hex'), fx.respond.inner[0]);
  assert.equal(r.peerStats(theirs.pub)!.current, true, 'their first data confirmed our keypair');
});
