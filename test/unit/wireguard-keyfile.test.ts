// The node key file as flannel keeps it: created when missing (directory 0755, file 0400, bare base64
// without newline), read back with or without a trailing newline, bad content a clear error that
// never quotes the key, WIREGUARD_KEY_FILE honoured; the public key agrees with the native X25519.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_WG_KEY_FILE, loadOrCreateWgKey, parseWgKey, wgKeyFilePath } from '../../src/backend/wireguard/key-file.js';
import { wireguardNative } from '../../src/native/wireguard.js';

function tmp(): { dir: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'flannelts-wgkey-'));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

test('a missing key file is created 0400 in a new 0755 directory, bare base64 without newline', () => {
  const t = tmp();
  try {
    const path = join(t.dir, 'run', 'flannel', 'wgkey');
    const k = loadOrCreateWgKey(path);
    assert.equal(k.created, true);
    assert.equal(statSync(path).mode & 0o777, 0o400);
    assert.equal(statSync(join(t.dir, 'run', 'flannel')).mode & 0o777, 0o755);
    const text = readFileSync(path, 'utf8');
    assert.match(text, /^[A-Za-z0-9+/]{43}=$/, 'bare base64, no newline');
    assert.deepEqual(Buffer.from(text, 'base64'), k.privateKey);
    assert.equal(k.privateKey[0]! & 7, 0, 'clamped as wgtypes.GeneratePrivateKey does');
    assert.equal(k.privateKey[31]! & 0xc0, 0x40);
    assert.deepEqual(k.publicKey, wireguardNative().x25519Public(k.privateKey));
    const again = loadOrCreateWgKey(path);
    assert.equal(again.created, false);
    assert.deepEqual(again.privateKey, k.privateKey);
  } finally {
    t.done();
  }
});

test("both key forms read: flannel's bare key and `wg genkey`'s with a trailing newline (also CRLF)", () => {
  const t = tmp();
  try {
    const key = 'UFnPXqFLVhGIYGHBRtsQDRn9nuI4eI0z6X6uXuxNymM=';
    for (const [name, text] of [['bare', key], ['lf', key + '\n'], ['crlf', key + '\r\n']] as const) {
      writeFileSync(join(t.dir, name), text);
      assert.equal(loadOrCreateWgKey(join(t.dir, name)).privateKey.toString('base64'), key, name);
    }
  } finally {
    t.done();
  }
});

test('a bad key file is an error naming the file and the problem, never the content', () => {
  const t = tmp();
  try {
    const secretish = 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=';
    writeFileSync(join(t.dir, 'short'), secretish);
    assert.throws(() => loadOrCreateWgKey(join(t.dir, 'short')), (e: Error) => e.message.includes('could not parse private key from file') && e.message.includes('incorrect key size: 26') && !e.message.includes(secretish));
    writeFileSync(join(t.dir, 'junk'), 'not a key at all');
    assert.throws(() => loadOrCreateWgKey(join(t.dir, 'junk')), /illegal base64 data at input byte 3/);
  } finally {
    t.done();
  }
});

test('parseWgKey follows Go base64: padding required, line breaks skipped anywhere', () => {
  const key = 'UFnPXqFLVhGIYGHBRtsQDRn9nuI4eI0z6X6uXuxNymM=';
  assert.equal(parseWgKey(key.slice(0, 20) + '\n' + key.slice(20)).toString('base64'), key);
  assert.throws(() => parseWgKey(key.slice(0, -1)), /illegal base64/);
  assert.throws(() => parseWgKey(key.replace('=', 'A=')), /illegal base64/);
});

test('WIREGUARD_KEY_FILE chooses the file; unset means /run/flannel/wgkey', () => {
  assert.equal(wgKeyFilePath({}), DEFAULT_WG_KEY_FILE);
  assert.equal(DEFAULT_WG_KEY_FILE, '/run/flannel/wgkey');
  assert.equal(wgKeyFilePath({ WIREGUARD_KEY_FILE: '/etc/flannel/key' }), '/etc/flannel/key');
});
