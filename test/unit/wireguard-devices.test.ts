// The wireguard backend's two device implementations without root: our userspace device over real
// engines on FakeTuns (loopback underlay) with its configuration model and UAPI socket, and the
// kernel device over doubles of rtnetlink and generic netlink; the timing test hook's parsing; lab exec.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatCIDR, parseCIDR } from '../../src/ip/index.js';
import { Engine, nativeDropReasons } from '../../src/native/engine.js';
import { wireguardNative } from '../../src/native/wireguard.js';
import type { WgDevice } from '../../src/backend/wireguard/device.js';
import { kernelWgFactory, type WgGenl } from '../../src/backend/wireguard/kernel-device.js';
import { WgPeerModel } from '../../src/backend/wireguard/peer-model.js';
import { wgTimingScale } from '../../src/backend/wireguard/platform.js';
import { parseGetReply, parseSet } from '../../src/backend/wireguard/uapi-codec.js';
import { userspaceWgFactory, type UserspaceWgDevice } from '../../src/backend/wireguard/userspace-device.js';
import { wgPublicKey } from '../../src/backend/wireguard/key-file.js';
import type { WgSetDevice } from '../../src/netlink/genl/wireguard.js';
import { execTarget, pickLab } from '../../src/lab/exec.js';
import { FakeTun } from '../helpers/fake-tun.js';
import { icmpEcho, ipv4 } from '../helpers/packets.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const net = (s: string) => parseCIDR(s)!;
const b64 = (b: Buffer) => b.toString('base64');

/** A userspace device on a FakeTun bound to `address`, its UAPI socket in a temp dir. */
/** The port the kernel chose for a device asked to listen on 0. */
const portOf = (d: { dev: WgDevice }) => (d.dev as UserspaceWgDevice).port;

async function userspace(address: string, port: number) {
  const tun = new FakeTun();
  const dir = mkdtempSync(join(tmpdir(), 'flannelts-wgdev-'));
  const mtus: number[] = [];
  const factory = userspaceWgFactory({
    newInterface: (o) => new (wireguardNative().Interface)(o),
    openEngine: (o) => Engine.open({ ...o, tunName: undefined, bindV4: address, tun: { fd: tun.fd, vnetHdr: false, tso: false, uso: false } }),
    dropReasons: nativeDropReasons,
    links: { findLink: () => undefined, deleteLink: () => undefined, setMtu: (_i, m) => void mtus.push(m) },
    uapiDir: dir,
  });
  const privateKey = randomBytes(32);
  const dev = await factory.create({ name: 'flannel-wg', mtu: 1420, privateKey, listenPort: port });
  cleanups.push(async () => {
    await dev.close();
    tun.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dev, tun, dir, publicKey: b64(wgPublicKey(privateKey)), mtus };
}

function uapi(dir: string, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(join(dir, 'flannel-wg.sock'));
    let out = '';
    s.on('data', (d) => {
      out += d.toString();
      if (out.endsWith('\n\n')) {
        s.end();
        resolve(out);
      }
    });
    s.on('error', reject);
    s.write(request);
  });
}

test('userspace device: peers as the backend sets them carry traffic; the UAPI socket shows the real state and takes a wg set', async () => {
  const a = await userspace('127.0.0.1', 0);
  assert.deepEqual(a.mtus, [1420], 'the TUN gets the device MTU');
  const b = await userspace('127.0.0.2', 0);
  await a.dev.setPeer({ publicKey: b.publicKey, endpoint: `127.0.0.2:${portOf(b)}`, persistentKeepalive: 0, allowedIPs: [net('198.19.2.0/24')] });
  await b.dev.setPeer({ publicKey: a.publicKey, endpoint: `127.0.0.1:${portOf(a)}`, persistentKeepalive: 0, allowedIPs: [net('198.19.1.0/24')] });
  const p = ipv4({ src: '198.19.1.2', dst: '198.19.2.3', proto: 1, payload: icmpEcho(8, 1, 1, Buffer.from('flannelts')) });
  a.tun.write(p);
  const [got] = await b.tun.take(1);
  assert.deepEqual(got, p);
  const [peer] = await a.dev.peers();
  assert.equal(peer!.publicKey, b.publicKey);
  assert.ok(peer!.lastHandshakeMs > 0 && peer!.txBytes > 0);
  const dp = a.dev.dataPlane!();
  assert.equal(dp.wireguard.response, 1);
  assert.equal(dp.engine.peers[0]!.subnet, '198.19.2.0/24');

  const got1 = parseGetReply(await uapi(a.dir, 'get=1\n\n'));
  assert.equal(got1.errno, 0);
  assert.equal(b64(got1.device.peers[0]!.publicKey), b.publicKey);
  assert.ok(got1.device.peers[0]!.lastHandshakeSec > 0 && got1.device.peers[0]!.txBytes > 0n);
  assert.deepEqual(got1.device.peers[0]!.allowedIPs.map(formatCIDR), ['198.19.2.0/24']);
  // wg set through the socket: a third peer, and an allowed IP moved to it (it leaves b, as in wireguard-go).
  const c = randomBytes(32).toString('hex');
  const r = await uapi(a.dir, `set=1\npublic_key=${c}\nendpoint=127.0.0.3:51820\nallowed_ip=198.19.3.0/24\nallowed_ip=198.19.2.0/24\n\n`);
  assert.equal(r, 'errno=0\n\n');
  const got2 = parseGetReply(await uapi(a.dir, 'get=1\n\n'));
  assert.deepEqual(got2.device.peers.map((x) => x.allowedIPs.map(formatCIDR).join(',')).sort(), ['', '198.19.3.0/24,198.19.2.0/24']);
  assert.deepEqual(a.dev.dataPlane!().engine.peers.map((x) => x.subnet).sort(), ['198.19.2.0/24', '198.19.3.0/24']);
  // What the device cannot do is refused with an errno, not half done.
  assert.match(await uapi(a.dir, 'set=1\nlisten_port=4444\n\n'), /^errno=-22\n\n$/);
  // Removal: routes first, then the peer.
  await a.dev.removePeer(Buffer.from(c, 'hex').toString('base64'));
  assert.deepEqual((await a.dev.peers()).map((x) => x.publicKey), [b.publicKey]);
  assert.deepEqual(a.dev.dataPlane!().engine.peers, []);
});

test('userspace device: an unchanged endpoint is not handed down again, so a roamed peer stays where it roamed', async () => {
  const a = await userspace('127.0.0.1', 0);
  const b = await userspace('127.0.0.2', 0);
  const cfg = { publicKey: b.publicKey, endpoint: `127.0.0.9:${portOf(b)}`, persistentKeepalive: 0, allowedIPs: [net('198.19.2.0/24')] };
  await a.dev.setPeer(cfg);
  // b knows a's real address and initiates: a learns b's real endpoint from the handshake.
  await b.dev.setPeer({ publicKey: a.publicKey, endpoint: `127.0.0.1:${portOf(a)}`, persistentKeepalive: 0, allowedIPs: [net('198.19.1.0/24')] });
  b.tun.write(ipv4({ src: '198.19.2.3', dst: '198.19.1.2', proto: 1, payload: icmpEcho(8, 1, 1, Buffer.from('x')) }));
  await a.tun.take(1);
  const roamed = `127.0.0.2:${portOf(b)}`;
  assert.equal((await a.dev.peers())[0]!.endpoint, roamed);
  await a.dev.setPeer(cfg); // reconcile sets the same configuration again
  const [p] = await a.dev.peers();
  assert.equal(p!.endpoint, roamed);
  assert.equal(p!.configuredEndpoint, cfg.endpoint);
});

test('peer model: wireguard-go semantics of a UAPI set (replace_peers, update_only, remove, allowed_ip -prefix, our own key ignored)', () => {
  const own = randomBytes(32);
  const m = new WgPeerModel(() => own);
  const k1 = randomBytes(32).toString('hex');
  const k2 = randomBytes(32).toString('hex');
  const set = (lines: string[]) => m.applyUapi(parseSet(lines));
  let c = set([`public_key=${k1}`, 'allowed_ip=198.19.1.0/24', 'allowed_ip=198.19.9.0/24', `public_key=${k2}`, 'update_only=true', 'allowed_ip=198.19.2.0/24', `public_key=${own.toString('hex')}`]);
  assert.deepEqual(m.list().map((p) => p.publicKey.toString('hex')), [k1], 'update_only skips an unknown peer; our own key is ignored');
  assert.equal(c.set.length, 1);
  assert.equal(c.routes, true);
  c = set([`public_key=${k1}`, 'allowed_ip=-198.19.9.0/24']);
  assert.deepEqual(m.get(Buffer.from(k1, 'hex'))!.allowedIPs.map(formatCIDR), ['198.19.1.0/24']);
  assert.deepEqual([c.set.length, c.routes], [0, true], 'only routes changed');
  c = set([`public_key=${k1}`, 'persistent_keepalive_interval=25']);
  assert.deepEqual([c.set.length, c.set[0]!.endpointChanged, c.routes], [1, false, false]);
  c = set(['replace_peers=true', `public_key=${k2}`, 'endpoint=[2001:db8::2]:51820', 'allowed_ip=2001:db8:100:2::/64']);
  assert.deepEqual(c.removed.map((k) => k.toString('hex')), [k1]);
  assert.deepEqual(m.routes(), [{ subnet: '2001:db8:100:2::/64', publicIP: '2001:db8::2', port: 51820, publicKey: k2 }]);
  c = set([`public_key=${k2}`, 'remove=true']);
  assert.deepEqual([m.list().length, c.removed.length], [0, 1]);
});

test('kernel device: created with rtnetlink, configured over generic netlink as flannel does, removed on close', async () => {
  const calls: WgSetDevice[] = [];
  const log: string[] = [];
  const genl: WgGenl = {
    setDevice: (d) => void calls.push(d),
    getDevice: () => ({ ifindex: 7, ifname: 'flannel-wg', listenPort: 51820, fwmark: 0, peers: [] }),
    close: () => void log.push('genl closed'),
  };
  const f = kernelWgFactory({
    links: {
      findLink: (name) => (name === 'flannel-wg' ? { index: 3, name, mtu: 1420, up: true, flags: 0 } as never : undefined),
      deleteLink: (i) => void log.push(`delete ${i}`),
      addWireguardLink: (name, mtu) => {
        log.push(`add ${name} mtu ${mtu}`);
        return { index: 7, name, mtu } as never;
      },
    },
    openGenl: () => genl,
  });
  const priv = randomBytes(32);
  const dev = await f.create({ name: 'flannel-wg', mtu: 1420, privateKey: priv, listenPort: 51820 });
  assert.deepEqual(log, ['delete 3', 'add flannel-wg mtu 1420'], 'an existing device is replaced');
  assert.deepEqual(calls[0], { ifindex: 7, privateKey: priv, listenPort: 51820, replacePeers: true });
  const key = b64(randomBytes(32));
  await dev.setPeer({ publicKey: key, presharedKey: b64(Buffer.alloc(32, 1)), endpoint: '[2001:db8::12]:51821', persistentKeepalive: 25, allowedIPs: [net('2001:db8:100:6::/64')] });
  const p = calls[1]!.peers![0]!;
  assert.equal(b64(p.publicKey), key);
  assert.deepEqual([p.endpoint?.port, p.persistentKeepalive, p.replaceAllowedIPs, p.allowedIPs!.map(formatCIDR)], [51821, 25, true, ['2001:db8:100:6::/64']]);
  await dev.removePeer(key);
  assert.equal(calls[2]!.peers![0]!.remove, true);
  await dev.close();
  assert.deepEqual(log.slice(2), ['delete 7', 'genl closed']);
  // A kernel without WireGuard refuses the link: the error leaves create() for device.ts's fallback.
  const refused = kernelWgFactory({
    links: { findLink: () => undefined, deleteLink: () => undefined, addWireguardLink: () => { throw Object.assign(new Error('add link flannel-wg type wireguard: EOPNOTSUPP'), { code: 'EOPNOTSUPP' }); } },
    openGenl: () => genl,
  });
  await assert.rejects(refused.create({ name: 'flannel-wg', mtu: 1420, privateKey: priv, listenPort: 51820 }), { code: 'EOPNOTSUPP' });
});

test('FLANNELTS_WG_TIMING_SCALE: unset or 1 is the protocol as specified; anything but 1..1000 is a one-line error', () => {
  assert.equal(wgTimingScale({}), undefined);
  assert.equal(wgTimingScale({ FLANNELTS_WG_TIMING_SCALE: '1' }), undefined);
  assert.equal(wgTimingScale({ FLANNELTS_WG_TIMING_SCALE: '12' }), 12);
  for (const bad of ['0', '1001', '2.5', 'x']) assert.throws(() => wgTimingScale({ FLANNELTS_WG_TIMING_SCALE: bad }), /FLANNELTS_WG_TIMING_SCALE=.*1 to 1000/);
});

test('lab exec: nodes through their daemon\'s namespaces, pods through theirs, the lab picked by namespace name', () => {
  const lab = { prefix: 'ftaaaaaa', dir: '/tmp/x', pids: [], namespaces: [], nodes: [{ name: 'n1', netns: 'ftaaaaaa-n1', pod: 'ftaaaaaa-p1', pid: 4242 }] };
  const other = { ...lab, prefix: 'ftbbbbbb', nodes: [] };
  assert.deepEqual(execTarget(lab, 'n1', ['wg', 'show'], () => true), { file: 'nsenter', args: ['-t', '4242', '-m', '-n', '--', 'wg', 'show'] });
  assert.match(execTarget(lab, 'n1', ['wg'], () => false).note!, /not running/);
  assert.deepEqual(execTarget(lab, 'p1', ['ip', 'a']), { file: 'ip', args: ['netns', 'exec', 'ftaaaaaa-p1', 'ip', 'a'] });
  assert.throws(() => execTarget(lab, 'n7', ['x']), /no node or pod n7 \(it has n1, p1\)/);
  assert.equal(pickLab([lab, other], 'ftaaaaaa-n1'), lab);
  assert.throws(() => pickLab([lab, other], 'n1'), /2 labs are kept .*: name the node by its namespace/);
  assert.throws(() => pickLab([], 'n1'), /no kept lab/);
});
