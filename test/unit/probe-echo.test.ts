// The prober's echo messages (native/probe/echo.*): our requests, and which received messages are
// ours. Replies and errors are built here with the test helpers' own checksum, independently of the
// native code; the ICMP errors also come from the engine's own unreachable builder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeEchoRequest, matchEcho } from '../../src/probe/echo-codec.js';
import { icmpUnreachable } from '../../src/native/packet.js';
import { icmpEcho, inetChecksum, ipv4, ipv6 } from '../helpers/packets.js';

const ID = 0x4d2f;
const COOKIE = Buffer.from('c00k1e!!');
const ME4 = '198.18.0.1';
const PEER4 = '198.18.0.2';
const ROUTER4 = '198.18.7.1';
const ME6 = '2001:db8::1';
const PEER6 = '2001:db8::2';
const ROUTER6 = '2001:db8:7::1';

/** The reply a host sends to our request: type 0/129, same identifier, sequence and payload. */
function replyTo(request: Buffer, v6: boolean, edit: (m: Buffer) => void = () => {}): Buffer {
  const m = Buffer.from(request);
  m[0] = v6 ? 129 : 0;
  edit(m);
  m.writeUInt16BE(0, 2);
  if (!v6) m.writeUInt16BE(inetChecksum(m), 2);
  return m;
}

/** An ICMP error: type, code, the 32-bit field after the checksum (MTU for too-big), the quote. */
function icmpError(type: number, code: number, rest: number, quote: Buffer): Buffer {
  const m = Buffer.alloc(8 + quote.length);
  m[0] = type;
  m[1] = code;
  m.writeUInt32BE(rest, 4);
  quote.copy(m, 8);
  m.writeUInt16BE(inetChecksum(m), 2);
  return m;
}

const request4 = (seq: number, id = ID, cookie = COOKIE): Buffer => encodeEchoRequest(PEER4, id, cookie, seq);
const request6 = (seq: number, id = ID, cookie = COOKIE): Buffer => encodeEchoRequest(PEER6, id, cookie, seq);
/** Our request as it left: IPv4 header + ICMP, or IPv6 header + ICMPv6. */
const sent4 = (seq: number, dst = PEER4, id = ID, cookie = COOKIE): Buffer => ipv4({ src: ME4, dst, proto: 1, payload: encodeEchoRequest(dst, id, cookie, seq) });
const sent6 = (seq: number, dst = PEER6, id = ID, cookie = COOKIE): Buffer => ipv6({ src: ME6, dst, next: 58, payload: encodeEchoRequest(dst, id, cookie, seq) });
/** A datagram as a raw IPv4 socket delivers it. */
const from4 = (src: string, icmp: Buffer): Buffer => ipv4({ src, dst: ME4, proto: 1, payload: icmp });

test('IPv4 echo request: type 8, identifier, sequence, cookie, 64 bytes, and a checksum that verifies', () => {
  for (const seq of [1, 2, 0x1234, 0xffff]) {
    const m = request4(seq);
    assert.equal(m.length, 64, 'ping -s 56 size');
    assert.deepEqual([m[0], m[1]], [8, 0]);
    assert.equal(m.readUInt16BE(4), ID);
    assert.equal(m.readUInt16BE(6), seq);
    assert.deepEqual(m.subarray(8, 16), COOKIE);
    assert.equal(inetChecksum(m), 0, `seq ${seq}: the checksum verifies`);
    // The same message built by the test helper (its own checksum code) is byte for byte the same.
    assert.deepEqual(m, icmpEcho(8, ID, seq, m.subarray(8)));
  }
  // The checksum moves with the sequence number and the identifier (no constant left in the field).
  assert.notEqual(request4(1).readUInt16BE(2), request4(2).readUInt16BE(2));
  assert.notEqual(request4(1).readUInt16BE(2), request4(1, ID + 1).readUInt16BE(2));
});

test('a size (ping -s) sets the data bytes after the header: 8 (the cookie alone) to 1472, odd lengths checksummed too', () => {
  for (const size of [8, 9, 100, 1472]) {
    const m = encodeEchoRequest(PEER4, ID, COOKIE, 3, size);
    assert.equal(m.length, 8 + size);
    assert.equal(inetChecksum(m), 0, `size ${size}: the checksum verifies`);
    assert.deepEqual(m, icmpEcho(8, ID, 3, m.subarray(8)));
    // The pattern after the cookie counts up like the default one, to the last byte.
    if (size > 8) assert.equal(m[m.length - 1], (m.length - 1) & 0xff);
    assert.equal(encodeEchoRequest(PEER6, ID, COOKIE, 3, size).length, 8 + size);
  }
  // The reply to a larger echo is matched like the default one.
  const big = ipv4({ src: PEER4, dst: ME4, proto: 1, payload: replyTo(encodeEchoRequest(PEER4, ID, COOKIE, 4, 1000), false) });
  assert.deepEqual(matchEcho(PEER4, ID, COOKIE, big), { kind: 'reply', seq: 4, type: 0, code: 0, mtu: 0, from: PEER4 });
  for (const size of [7, 1473]) assert.throws(() => encodeEchoRequest(PEER4, ID, COOKIE, 1, size), /size must be from 8 to 1472/);
});

test('ICMPv6 echo request: type 128 and checksum 0, left for the kernel to fill on a raw ICMPv6 socket', () => {
  const m = request6(7);
  assert.deepEqual([m[0], m[1], m.readUInt16BE(2)], [128, 0, 0]);
  assert.equal(m.readUInt16BE(4), ID);
  assert.equal(m.readUInt16BE(6), 7);
  assert.deepEqual(m.subarray(8, 16), COOKIE);
});

test('IPv4: the reply to our request matches by identifier and sequence, from the target', () => {
  for (const seq of [1, 300, 0xffff]) {
    const got = matchEcho(PEER4, ID, COOKIE, from4(PEER4, replyTo(request4(seq), false)));
    assert.deepEqual(got, { kind: 'reply', seq, type: 0, code: 0, mtu: 0, from: PEER4 });
  }
});

test('IPv4: replies to someone else, our own request, bad checksums and other protocols are ignored', () => {
  const ours = replyTo(request4(5), false);
  const cases: Array<[string, Buffer, string]> = [
    ['another prober (identifier)', from4(PEER4, replyTo(request4(5, ID ^ 1), false)), 'other identifier'],
    ['another prober with our identifier (cookie)', from4(PEER4, replyTo(request4(5, ID, Buffer.from('someone!')), false)), 'other cookie'],
    ['a reply from another host', from4(ROUTER4, ours), 'other sender'],
    ['our own request seen on the way out', from4(ME4, request4(5)), 'our own request'],
    ["someone else's request", from4(ME4, request4(5, ID ^ 2)), 'other request'],
    ['a damaged reply', from4(PEER4, Buffer.concat([ours.subarray(0, 20), Buffer.from([ours[20]! ^ 0x40]), ours.subarray(21)])), 'bad checksum'],
    ['a UDP datagram', ipv4({ src: PEER4, dst: ME4, proto: 17, payload: ours }), 'not ICMP'],
    ['an echo reply with a code', from4(PEER4, replyTo(request4(5), false, (m) => (m[1] = 1))), 'bad code'],
    ['a redirect', from4(ROUTER4, icmpError(5, 1, 0, sent4(5))), 'other type'],
  ];
  for (const [what, packet, why] of cases) {
    assert.deepEqual(matchEcho(PEER4, ID, COOKIE, packet), { kind: 'ignored', ignored: why }, what);
  }
});

test('IPv4: an ICMP error quoting our request is matched to its sequence, with type, code and sender', () => {
  // The engine's own destination-unreachable builder quotes the IP header + 8 bytes (no cookie).
  const engineError = icmpUnreachable(sent4(9));
  assert.ok(engineError);
  assert.deepEqual(matchEcho(PEER4, ID, COOKIE, engineError), { kind: 'error', seq: 9, type: 3, code: 0, mtu: 0, from: PEER4 });
  // A router on the way: host unreachable quoting the whole request (as Linux does).
  assert.deepEqual(matchEcho(PEER4, ID, COOKIE, from4(ROUTER4, icmpError(3, 1, 0, sent4(10)))), { kind: 'error', seq: 10, type: 3, code: 1, mtu: 0, from: ROUTER4 });
  // Time exceeded, quoting only the header + 8 bytes.
  assert.deepEqual(matchEcho(PEER4, ID, COOKIE, from4(ROUTER4, icmpError(11, 0, 0, sent4(11).subarray(0, 28)))), { kind: 'error', seq: 11, type: 11, code: 0, mtu: 0, from: ROUTER4 });
  // Fragmentation needed carries the next-hop MTU in the low 16 bits.
  assert.deepEqual(matchEcho(PEER4, ID, COOKIE, from4(ROUTER4, icmpError(3, 4, 1400, sent4(12)))), { kind: 'error', seq: 12, type: 3, code: 4, mtu: 1400, from: ROUTER4 });
});

test("IPv4: errors about someone else's packets are ignored", () => {
  const cases: Array<[string, Buffer, string]> = [
    ['a request to another destination', icmpError(3, 1, 0, sent4(3, '198.18.9.9')), 'other destination'],
    ['another prober (identifier)', icmpError(3, 1, 0, sent4(3, PEER4, ID ^ 1)), 'other identifier'],
    ['another prober with our identifier (cookie quoted)', icmpError(3, 1, 0, sent4(3, PEER4, ID, Buffer.from('someone!'))), 'other cookie'],
    ['a quoted UDP datagram', icmpError(3, 3, 0, ipv4({ src: ME4, dst: PEER4, proto: 17, payload: Buffer.alloc(8) })), 'quotes other protocol'],
    ['a quoted echo reply', icmpError(3, 1, 0, ipv4({ src: ME4, dst: PEER4, proto: 1, payload: replyTo(request4(3), false) })), 'quotes other message'],
    ['a quote cut inside the ICMP header', icmpError(3, 1, 0, sent4(3).subarray(0, 24)), 'truncated'],
  ];
  for (const [what, icmp, why] of cases) assert.deepEqual(matchEcho(PEER4, ID, COOKIE, from4(ROUTER4, icmp)), { kind: 'ignored', ignored: why }, what);
});

test('IPv6: replies, errors (with the MTU of packet too big) and our own requests', () => {
  assert.deepEqual(matchEcho(PEER6, ID, COOKIE, replyTo(request6(4), true), PEER6), { kind: 'reply', seq: 4, type: 129, code: 0, mtu: 0, from: PEER6 });
  assert.deepEqual(matchEcho(PEER6, ID, COOKIE, request6(4), ME6), { kind: 'ignored', ignored: 'our own request' });
  assert.deepEqual(matchEcho(PEER6, ID, COOKIE, replyTo(request6(4, ID ^ 1), true), PEER6), { kind: 'ignored', ignored: 'other identifier' });
  assert.deepEqual(matchEcho(PEER6, ID, COOKIE, replyTo(request6(4), true), ROUTER6), { kind: 'ignored', ignored: 'other sender' });
  // The engine's ICMPv6 no-route error (an IPv6 packet): a raw ICMPv6 socket delivers what follows the header.
  const engineError = icmpUnreachable(sent6(5));
  assert.ok(engineError);
  assert.deepEqual(matchEcho(PEER6, ID, COOKIE, engineError.subarray(40), PEER6), { kind: 'error', seq: 5, type: 1, code: 0, mtu: 0, from: PEER6 });
  assert.deepEqual(matchEcho(PEER6, ID, COOKIE, icmpError(2, 0, 1280, sent6(6)), ROUTER6), { kind: 'error', seq: 6, type: 2, code: 0, mtu: 1280, from: ROUTER6 });
  assert.deepEqual(matchEcho(PEER6, ID, COOKIE, icmpError(3, 0, 0, sent6(7).subarray(0, 48)), ROUTER6), { kind: 'error', seq: 7, type: 3, code: 0, mtu: 0, from: ROUTER6 });
  assert.deepEqual(matchEcho(PEER6, ID, COOKIE, icmpError(1, 3, 0, sent6(8, '2001:db8:9::9')), ROUTER6), { kind: 'ignored', ignored: 'other destination' });
  // A quoted IPv6 packet whose next header is not ICMPv6 (our requests carry no extension headers).
  const withExt = sent6(8);
  withExt[6] = 0; // hop-by-hop options
  assert.deepEqual(matchEcho(PEER6, ID, COOKIE, icmpError(1, 3, 0, withExt), ROUTER6), { kind: 'ignored', ignored: 'quotes other protocol' });
});

test('every cut of a reply or an error is read without a crash; cuts too short to be ours are ignored', () => {
  const v4 = [from4(PEER4, replyTo(request4(2), false)), from4(ROUTER4, icmpError(3, 1, 0, sent4(2)))];
  for (const whole of v4) {
    for (let n = 0; n < whole.length; n++) {
      const cut = Buffer.from(whole.subarray(0, n));
      const got = matchEcho(PEER4, ID, COOKIE, cut);
      // The IPv4 checksum covers the whole message: no cut of it passes.
      assert.equal(got.kind, 'ignored', `IPv4 cut at ${n}`);
    }
  }
  const reply6 = replyTo(request6(2), true);
  const error6 = icmpError(1, 0, 0, sent6(2));
  for (const [whole, shortest] of [[reply6, 16], [error6, 8 + 40 + 8]] as const) {
    for (let n = 0; n < whole.length; n++) {
      const got = matchEcho(PEER6, ID, COOKIE, Buffer.from(whole.subarray(0, n)), PEER6);
      // ICMPv6 has no checksum we can check here (the kernel verified it): a cut that still holds
      // the identifier, sequence and cookie is ours; anything shorter is not.
      assert.equal(got.kind === 'ignored', n < shortest, `IPv6 cut at ${n}: ${JSON.stringify(got)}`);
    }
  }
});
