// Known-answer tests of each WireGuard primitive as the native core calls OpenSSL, and of the
// XChaCha20-Poly1305 the cookie path takes from libsodium. Vectors: RFC 7748 (X25519), RFC 8439
// (ChaCha20-Poly1305), RFC 7693 and the BLAKE2 reference KAT (BLAKE2s), draft-irtf-cfrg-xchacha-03
// A.3.1 (XChaCha20-Poly1305); keyed BLAKE2s-128 and HMAC-BLAKE2s values from Python's hashlib/hmac
// (an independent BLAKE2 implementation); WireGuard's initial chain key and hash from the paper.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { wireguardNative } from '../../src/native/wireguard.js';
import { libsodiumXChaCha } from '../../src/backend/wireguard/cookie-crypto.js';

const wg = wireguardNative();
const h = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const seq = (n: number, from = 0): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (from + i) & 0xff));
const sunscreen = Buffer.from("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");

test('X25519: RFC 7748 5.2 scalar multiplication vectors', () => {
  assert.equal(
    wg.x25519(h('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4'), h('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c'))!.toString('hex'),
    'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552',
  );
  assert.equal(
    wg.x25519(h('4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d'), h('e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493'))!.toString('hex'),
    '95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957',
  );
});

test('X25519: RFC 7748 6.1 Diffie-Hellman (both public keys and the shared secret)', () => {
  const alice = h('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
  const bob = h('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
  const alicePub = wg.x25519Public(alice)!;
  const bobPub = wg.x25519Public(bob)!;
  assert.equal(alicePub.toString('hex'), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
  assert.equal(bobPub.toString('hex'), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
  const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
  assert.equal(wg.x25519(alice, bobPub)!.toString('hex'), shared);
  assert.equal(wg.x25519(bob, alicePub)!.toString('hex'), shared);
});

test('X25519: a low-order public key gives no shared secret (WireGuard rejects the all-zero result)', () => {
  assert.equal(wg.x25519(seq(32, 1), Buffer.alloc(32)), null);
  const order1 = Buffer.alloc(32);
  order1[0] = 1;
  assert.equal(wg.x25519(seq(32, 1), order1), null);
});

test('ChaCha20-Poly1305: RFC 8439 2.8.2 AEAD vector, and a flipped bit fails to open', () => {
  const key = seq(32, 0x80);
  const nonce = h('070000004041424344454647');
  const aad = h('50515253c0c1c2c3c4c5c6c7');
  const sealed = wg.aead(true, key, nonce, sunscreen, aad)!;
  assert.equal(
    sealed.toString('hex'),
    'd31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116' +
      '1ae10b594f09e26a7e902ecbd0600691',
  );
  assert.deepEqual(wg.aead(false, key, nonce, sealed, aad), sunscreen);
  const bad = Buffer.from(sealed);
  bad[10]! ^= 1;
  assert.equal(wg.aead(false, key, nonce, bad, aad), null);
  assert.equal(wg.aead(false, key, nonce, sealed, Buffer.from('other aad')), null);
  assert.equal(wg.aead(false, key, nonce, sealed.subarray(0, 15), aad), null);
});

test('BLAKE2s-256: RFC 7693 "abc", the reference keyed KAT, and WireGuard initial chain key and hash', () => {
  assert.equal(wg.blake2s(Buffer.from('abc')).toString('hex'), '508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982');
  const key = seq(32);
  assert.equal(wg.blake2sMac(key, Buffer.alloc(0))!.toString('hex'), '48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49');
  assert.equal(wg.blake2sMac(key, seq(3))!.toString('hex'), '1d220dbe2ee134661fdf6d9e74b41704710556f2f6e5a091b227697445dbea6b');
  assert.equal(wg.blake2sMac(key, seq(64))!.toString('hex'), '8975b0577fd35566d750b362b0897a26c399136df07bababbde6203ff2954ed4');
  const ck = wg.blake2s(Buffer.from('Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s'));
  assert.equal(ck.toString('hex'), '60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36');
  assert.equal(
    wg.blake2s(Buffer.concat([ck, Buffer.from('WireGuard v1 zx2c4 Jason@zx2c4.com')])).toString('hex'),
    '2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3',
  );
});

test('keyed BLAKE2s-128 is its own function, not a truncated BLAKE2s-256 (MAC1, MAC2, cookies)', () => {
  const m = wg.blake2sMac(seq(32), Buffer.from('mac1 input'), 16)!;
  assert.equal(m.toString('hex'), '01d9e4fac8db151c5cf943a5507bf053');
  assert.notEqual(m.toString('hex'), wg.blake2sMac(seq(32), Buffer.from('mac1 input'), 32)!.subarray(0, 16).toString('hex'));
  assert.equal(wg.blake2sMac(seq(16), seq(100), 16)!.toString('hex'), '56301549e674c3b72a0e1dafb7a2c620');
});

test('HMAC-BLAKE2s and the Noise HKDF built from it', () => {
  assert.equal(wg.hmacBlake2s(seq(32), Buffer.from('The quick brown fox')).toString('hex'), '22bcaf49c813868721c17ffc23f598e97283f564a578996cb149fad35ed8d00c');
  // A key longer than the 64-byte block is hashed first (RFC 2104).
  assert.equal(wg.hmacBlake2s(seq(80), Buffer.alloc(0)).toString('hex'), 'd6e6ca7b6fbe0fcdd2c413123a28cfaabec632c48e69a3b7e7cd7b6d69dbacfb');
  // HKDF: prk = HMAC(ck, in); t1 = HMAC(prk, 1); t2 = HMAC(prk, t1 || 2); t3 = HMAC(prk, t2 || 3).
  const ck = seq(32, 7);
  const input = Buffer.from('input key material');
  const [t1, t2, t3] = wg.hkdf(ck, input);
  const prk = wg.hmacBlake2s(ck, input);
  assert.deepEqual(t1, wg.hmacBlake2s(prk, Buffer.from([1])));
  assert.deepEqual(t2, wg.hmacBlake2s(prk, Buffer.concat([t1, Buffer.from([2])])));
  assert.deepEqual(t3, wg.hmacBlake2s(prk, Buffer.concat([t2, Buffer.from([3])])));
});

test('XChaCha20-Poly1305 (libsodium): draft-irtf-cfrg-xchacha-03 A.3.1, and a forged tag does not open', () => {
  const key = seq(32, 0x80);
  const nonce = seq(24, 0x40);
  const aad = h('50515253c0c1c2c3c4c5c6c7');
  const sealed = libsodiumXChaCha.seal(key, nonce, sunscreen, aad);
  assert.equal(
    sealed.toString('hex'),
    'bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e' +
      'c0875924c1c7987947deafd8780acf49',
  );
  assert.deepEqual(libsodiumXChaCha.open(key, nonce, sealed, aad), sunscreen);
  const bad = Buffer.from(sealed);
  bad[bad.length - 1]! ^= 0x80;
  assert.equal(libsodiumXChaCha.open(key, nonce, bad, aad), null);
  assert.equal(libsodiumXChaCha.open(key, nonce, sealed.subarray(0, 8), aad), null);
});

test('primitives reject wrong-sized keys and nonces with a TypeError, never a crash', () => {
  assert.throws(() => wg.x25519(Buffer.alloc(31), Buffer.alloc(32)), TypeError);
  assert.throws(() => wg.aead(true, Buffer.alloc(32), Buffer.alloc(8), Buffer.alloc(1), Buffer.alloc(0)), TypeError);
  assert.equal(wg.blake2sMac(Buffer.alloc(0), Buffer.from('x'), 16), null);
  assert.equal(wg.blake2sMac(Buffer.alloc(33), Buffer.from('x'), 16), null);
});
