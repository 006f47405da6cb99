// The UAPI codec against bytes Debian's `wg` really sent to and got from wireguard-go's socket
// (test/fixtures/wireguard/uapi-wg.json, made by test/helpers/wg-uapi-capture.ts), and our server on
// a Unix socket in a temporary directory: framing, errors, socket mode. `wg` itself against our
// server is the netns test wireguard-uapi-wg.test.ts (it needs a mount namespace).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatCIDR, formatIP } from '../../src/ip/index.js';
import { formatErrno, formatGet, parseGetReply, parseSet, UapiFramer, type UapiSet } from '../../src/backend/wireguard/uapi-codec.js';
import { UapiServer } from '../../src/backend/wireguard/uapi-server.js';
import { MemoryUapiDevice } from '../helpers/uapi-memory.js';
import type { UapiExchange } from '../helpers/wg-uapi-capture.js';

const fx = JSON.parse(readFileSync(new URL('../../../test/fixtures/wireguard/uapi-wg.json', import.meta.url), 'utf8')) as UapiExchange[];
const text = (hex: string): string => Buffer.from(hex, 'hex').toString();
const byCommand = (prefix: string[]): UapiExchange => fx.find((x) => prefix.every((p, i) => x.command[i] === p))!;

/** Feeds a captured request through the framer and returns the parsed set requests. */
function framedSets(hex: string): UapiSet[] {
  return new UapiFramer().push(text(hex)).map((r) => {
    assert.equal(r.op, 'set');
    return parseSet((r as { lines: string[] }).lines);
  });
}

test("wg's set requests parse: private key and port; a peer with PSK, endpoint, keepalive, replaced allowed IPs; removal", () => {
  const [dev] = framedSets(byCommand(['set', 'wgu', 'private-key']).request);
  assert.equal(dev!.listenPort, 51820);
  assert.equal(dev!.privateKey!.toString('base64'), '6Owjd6r1kk7qS3M9hk8w+2o0mYnTPyNQm1A7hjQSDnM=');
  assert.deepEqual(dev!.peers, []);
  const [p] = framedSets(byCommand(['set', 'wgu', 'peer']).request);
  const peer = p!.peers[0]!;
  assert.equal(peer.publicKey.toString('base64'), 'lAM4ZMYSMRsgiyGDk543qo3w9+vm1VpyGBczYXY1234=');
  assert.equal(peer.presharedKey!.toString('base64'), '9qyPTtxTrXRVX7Ojs8n8/dnU/g8pH21rt1bNF5HvLRs=');
  assert.equal(`${formatIP(peer.endpoint!.ip)}:${peer.endpoint!.port}`, '198.18.0.2:51821');
  assert.equal(peer.persistentKeepalive, 25);
  assert.equal(peer.replaceAllowedIPs, true);
  assert.deepEqual(peer.allowedIPs.map((a) => formatCIDR(a.net)), ['198.19.2.0/24', '2001:db8:100:2::/64']);
  const [r] = framedSets(fx.find((x) => x.command.includes('remove'))!.request);
  assert.equal(r!.peers[0]!.remove, true);
  for (const x of fx.filter((e) => e.command[0] === 'set')) assert.equal(text(x.reply), 'errno=0\n\n');
});

test("our get reply is byte-identical to wireguard-go's for the same device, and parses back", () => {
  const dev = new MemoryUapiDevice();
  for (const x of fx.filter((e) => e.command[0] === 'set' && !e.command.includes('remove'))) for (const s of framedSets(x.request)) dev.set(s);
  const dump = byCommand(['show', 'wgu', 'dump']);
  assert.equal(text(dump.request), 'get=1\n\n');
  assert.equal(formatGet(dev.get()) + formatErrno(0), text(dump.reply));
  const back = parseGetReply(text(dump.reply));
  assert.equal(back.errno, 0);
  assert.equal(back.device.listenPort, 51820);
  assert.equal(back.device.peers[0]!.persistentKeepalive, 25);
  assert.deepEqual(back.device.peers[0]!.allowedIPs.map(formatCIDR), ['198.19.2.0/24', '2001:db8:100:2::/64']);
});

test('set errors carry wireguard-go errnos: bad line EPROTO, unknown key / bad value EINVAL', () => {
  const err = (lines: string[]) => {
    try {
      parseSet(lines);
      return 0;
    } catch (e) {
      return (e as { errno: number }).errno;
    }
  };
  assert.equal(err(['listen_port']), -71);
  assert.equal(err(['listen_port=65536']), -22);
  assert.equal(err(['listen_port=0x10']), -22);
  assert.equal(err(['bogus=1']), -22);
  assert.equal(err(['private_key=abcd']), -22);
  assert.equal(err([`public_key=${'ab'.repeat(32)}`, 'protocol_version=2']), -22);
  assert.equal(err([`public_key=${'ab'.repeat(32)}`, 'endpoint=198.18.0.2']), -22);
  assert.equal(err([`public_key=${'ab'.repeat(32)}`, 'remove=yes']), -22);
  assert.equal(err([`public_key=${'ab'.repeat(32)}`, 'allowed_ip=-198.19.1.7/24', 'allowed_ip=2001:db8::1/64']), 0, 'host bits are masked, - removes');
  assert.equal(err([`public_key=${'ab'.repeat(32)}`, 'endpoint=[198.18.0.2]:1']), -22);
});

test('framing: get needs its blank line, several requests per connection, an unknown operation ends the connection', () => {
  const f = new UapiFramer();
  assert.deepEqual(f.push('get=1\n'), []);
  assert.deepEqual(f.push('\nset=1\nlisten_port=1\n'), [{ op: 'get' }]);
  assert.deepEqual(f.push('\nget=1\nx'), [{ op: 'set', lines: ['listen_port=1'] }, { op: 'bad', errno: -22, message: 'trailing character in UAPI get: "x"', close: false }]);
  const g = new UapiFramer();
  assert.equal(g.push('hello\n')[0]!.op, 'bad');
});

function ask(path: string, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let got = '';
    s.on('data', (d) => {
      got += d.toString();
      if (got.endsWith('\n\n') && got.split('errno=').length - 1 === request.split(/get=1\n\n|\n\n/).length - 1) s.end();
    });
    s.on('end', () => resolve(got));
    s.on('close', () => resolve(got));
    s.on('error', reject);
    s.write(request);
  });
}

test('the server: <dir>/<iface>.sock with the directory 0755 and the socket under umask 077; get and set; errors as errno', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flannelts-uapi-'));
  const dev = new MemoryUapiDevice();
  dev.busyPort = 4444;
  const srv = await UapiServer.open('flannel-wg', dev, join(dir, 'wireguard'));
  try {
    assert.equal(srv.path, join(dir, 'wireguard', 'flannel-wg.sock'));
    assert.equal(statSync(join(dir, 'wireguard')).mode & 0o777, 0o755);
    assert.equal(statSync(srv.path).mode & 0o077, 0, 'nobody but the owner');
    assert.equal(await ask(srv.path, `set=1\nlisten_port=51820\n\n`), 'errno=0\n\n');
    assert.equal(await ask(srv.path, 'get=1\n\n'), 'listen_port=51820\nerrno=0\n\n');
    assert.equal(await ask(srv.path, `set=1\nlisten_port=4444\n\n`), 'errno=-98\n\n');
    assert.equal(await ask(srv.path, `set=1\nwhat\n\n`), 'errno=-71\n\n');
    assert.equal(await ask(srv.path, 'nonsense\n'), '', 'closed without a reply');
    // A second server on the same live socket is refused; after close a new one replaces the file.
    await assert.rejects(UapiServer.open('flannel-wg', dev, join(dir, 'wireguard')), /in use/);
  } finally {
    await srv.close();
  }
  const again = await UapiServer.open('flannel-wg', dev, join(dir, 'wireguard'));
  assert.equal(await ask(again.path, 'get=1\n\n'), 'listen_port=51820\nerrno=0\n\n');
  await again.close();
  rmSync(dir, { recursive: true, force: true });
});
