// Debian's real `wg` against our UAPI server. wg has /var/run/wireguard compiled in, so each wg runs
// in its own mount namespace (unshare -m) with a tmpfs /run and our temporary socket directory bound
// on /run/wireguard: the host's /var/run/wireguard is never touched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { formatCIDR } from '../../src/ip/index.js';
import { UapiServer } from '../../src/backend/wireguard/uapi-server.js';
import { binary, isRoot, need } from '../helpers/prereq.js';
import { MemoryUapiDevice } from '../helpers/uapi-memory.js';

const exec = promisify(execFile);
const KEY = '6Owjd6r1kk7qS3M9hk8w+2o0mYnTPyNQm1A7hjQSDnM=';
const PEER = 'lAM4ZMYSMRsgiyGDk543qo3w9+vm1VpyGBczYXY1234=';
const PSK = '9qyPTtxTrXRVX7Ojs8n8/dnU/g8pH21rt1bNF5HvLRs=';

/** `wg args` seeing only `dir` as /var/run/wireguard; asynchronous, so our server can answer meanwhile. */
async function wg(dir: string, args: string[]): Promise<string> {
  const quoted = args.map((a) => `'${a}'`).join(' ');
  const script = `mount -t tmpfs flannelts-uapi /run && mkdir -p /run/wireguard && mount --bind '${dir}' /run/wireguard && exec wg ${quoted}`;
  const { stdout } = await exec('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { timeout: 10_000 });
  return stdout;
}

test('wg set / wg show against our UAPI socket', async (t) => {
  if (!need(t, { ok: isRoot(), reason: 'needs root (mount namespace)' }, binary('wg'), binary('unshare'))) return;
  const tmp = mkdtempSync(join(tmpdir(), 'flannelts-wguapi-'));
  const dir = join(tmp, 'wireguard');
  const dev = new MemoryUapiDevice();
  const srv = await UapiServer.open('flannel-wg', dev, dir);
  try {
    writeFileSync(join(tmp, 'key'), KEY + '\n', { mode: 0o600 });
    writeFileSync(join(tmp, 'psk'), PSK + '\n', { mode: 0o600 });
    await wg(dir, ['set', 'flannel-wg', 'private-key', join(tmp, 'key'), 'listen-port', '51820']);
    await wg(dir, ['set', 'flannel-wg', 'peer', PEER, 'preshared-key', join(tmp, 'psk'), 'endpoint', '[2001:db8::12]:51821', 'persistent-keepalive', '25', 'allowed-ips', '198.19.6.0/24,2001:db8:100:6::/64']);
    assert.equal(dev.state.listenPort, 51820);
    assert.equal(dev.state.privateKey!.toString('base64'), KEY);
    assert.deepEqual(dev.state.peers[0]!.allowedIPs.map(formatCIDR), ['198.19.6.0/24', '2001:db8:100:6::/64']);
    dev.state.peers[0]!.lastHandshakeSec = 1735732800;
    dev.state.peers[0]!.rxBytes = 92n;
    dev.state.peers[0]!.txBytes = 212n;

    const dump = (await wg(dir, ['show', 'flannel-wg', 'dump'])).trim().split('\n').map((l) => l.split('\t'));
    assert.equal(dump[0]![0], KEY);
    assert.equal(dump[0]![2], '51820');
    assert.deepEqual(dump[1], [PEER, PSK, '[2001:db8::12]:51821', '198.19.6.0/24,2001:db8:100:6::/64', '1735732800', '92', '212', '25']);
    const show = await wg(dir, ['show', 'flannel-wg']);
    assert.match(show, /interface: flannel-wg/);
    assert.match(show, /listening port: 51820/);
    assert.match(show, /latest handshake: /);
    assert.match(show, /transfer: 92 B received, 212 B sent/);
    assert.match(show, /persistent keepalive: every 25 seconds/);
    assert.equal((await wg(dir, ['show', 'interfaces'])).trim(), 'flannel-wg', 'wg finds it by its socket');

    await wg(dir, ['set', 'flannel-wg', 'peer', PEER, 'remove']);
    assert.equal(dev.state.peers.length, 0);
    dev.busyPort = 4444;
    await assert.rejects(wg(dir, ['set', 'flannel-wg', 'listen-port', '4444']), /Unable to modify interface|Address already in use/);
  } finally {
    await srv.close();
    rmSync(tmp, { recursive: true, force: true });
  }
});
