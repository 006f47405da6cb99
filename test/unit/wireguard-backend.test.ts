// The wireguard backend against in-memory doubles of "a WireGuard device" and its link: net-conf
// options as flannel reads them, the lease data byte for byte, devices per Mode, addresses and routes,
// one peer per lease keyed by public key, endpoint choice per Mode, removal, shutdown, and the
// kernel -> userspace fallback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNetworkConfig } from '../../src/config/netconf.js';
import { mustParseIP, parseCIDR } from '../../src/ip/index.js';
import { captureLog } from '../helpers/log-capture.js';
import { encodeLeaseAttrs } from '../../src/subnet/lease.js';
import type { Lease } from '../../src/subnet/types.js';
import { wireguardBackendFactory } from '../../src/backend/wireguard/backend.js';
import { parseWireguardOptions } from '../../src/backend/wireguard/options.js';
import { planWgPeers, selectEndpointFamily } from '../../src/backend/wireguard/lease-data.js';
import { kernelWithEth0 } from '../helpers/fake-kernel.js';
import { FakeWgFactory, FakeWgLinks } from '../helpers/fake-wg.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const KEY_B = 'lAM4ZMYSMRsgiyGDk543qo3w9+vm1VpyGBczYXY1234=';
const KEY_C = 'fhnUaCFXIXSJOyNid8wJeMN58egG1tnalvJvFi7EDw4=';
const PSK = '9qyPTtxTrXRVX7Ojs8n8/dnU/g8pH21rt1bNF5HvLRs=';

const capture = captureLog;

function wgLease(o: { sub?: string; sub6?: string; pub?: string; pub6?: string; data?: unknown; data6?: unknown; type?: string }): Lease {
  return {
    subnet: o.sub ? parseCIDR(o.sub) : undefined,
    ipv6Subnet: o.sub6 ? parseCIDR(o.sub6) : undefined,
    attrs: {
      publicIP: o.pub ? mustParseIP(o.pub) : undefined,
      publicIPv6: o.pub6 ? mustParseIP(o.pub6) : undefined,
      backendType: o.type ?? 'wireguard',
      backendData: o.data,
      backendV6Data: o.data6,
    },
    expiration: new Date(Date.now() + 3600_000),
  };
}

async function setup(backend: string, v6 = false, opts: { kernelFails?: string; force?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'flannelts-wgb-'));
  const { ext } = kernelWithEth0();
  const config = parseNetworkConfig(
    JSON.stringify({ Network: '198.19.0.0/16', ...(v6 ? { EnableIPv6: true, IPv6Network: '2001:db8:100::/48' } : {}), Backend: JSON.parse(backend) }),
  );
  const kernel = new FakeWgFactory('kernel');
  if (opts.kernelFails) kernel.failWith = opts.kernelFails;
  const userspace = new FakeWgFactory('userspace');
  const links = new FakeWgLinks();
  const be = await wireguardBackendFactory({ kernel, userspace, forceUserspace: opts.force ?? false, links: () => links, keyFile: join(dir, 'wgkey') })({ config, extIface: ext });
  return { be, kernel, userspace, links, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

test('options: flannel defaults, Go JSON keys case-insensitive, Mode case-sensitive', () => {
  assert.deepEqual(parseWireguardOptions({ Type: 'wireguard' }), { listenPort: 51820, listenPortV6: 51821, mtu: undefined, psk: undefined, persistentKeepalive: 0, mode: 'separate' });
  const o = parseWireguardOptions({ listenport: 4000, LISTENPORTV6: 4001, mtu: 9000, psk: PSK, persistentkeepaliveinterval: 25, mode: 'auto' });
  assert.deepEqual(o, { listenPort: 4000, listenPortV6: 4001, mtu: 9000, psk: PSK, persistentKeepalive: 25, mode: 'auto' });
  for (const mode of ['Separate', 'AUTO', 'IPv4', '', 'dual', 4]) {
    assert.throws(() => parseWireguardOptions({ Mode: mode }), /^Error: no valid Mode configured/);
  }
  assert.throws(() => parseWireguardOptions({ PersistentKeepaliveInterval: 2.5 }), /PersistentKeepaliveInterval 2.5 is invalid/);
  assert.throws(() => parseWireguardOptions({ PersistentKeepaliveInterval: '25s' }), /PersistentKeepaliveInterval/);
  assert.throws(() => parseWireguardOptions({ ListenPort: 70000 }), /ListenPort 70000/);
  assert.throws(() => parseWireguardOptions({ PSK: 'not-a-key' }), /Backend.PSK is invalid: could not parse psk/);
  assert.throws(() => parseWireguardOptions({ PSK: Buffer.alloc(16).toString('base64') }), /incorrect key size: 16/);
  assert.throws(() => parseWireguardOptions({ MTU: 100 }), /MTU 100/);
});

test('separate mode (IPv4 + IPv6): two devices with one key, MTU - 80, lease data exactly as flannel writes it', async () => {
  const { restore, lines } = capture();
  const s = await setup(`{"Type":"wireguard","PSK":"${PSK}","PersistentKeepaliveInterval":25}`, true);
  try {
    assert.deepEqual(s.kernel.created.map((d) => [d.name, d.spec.mtu, d.spec.listenPort]), [['flannel-wg', 1420, 51820], ['flannel-wg-v6', 1420, 51821]]);
    const [a, b] = s.kernel.created;
    assert.deepEqual(a!.spec.privateKey, b!.spec.privateKey);
    const pub = (s.be.backendData() as { PublicKey: string }).PublicKey;
    assert.equal(Buffer.from(pub, 'base64').length, 32);
    const text = encodeLeaseAttrs({ publicIP: mustParseIP('198.18.0.11'), publicIPv6: mustParseIP('2001:db8::11'), backendType: 'wireguard', backendData: s.be.backendData(), backendV6Data: s.be.backendV6Data() });
    assert.ok(text.includes(`"BackendType":"wireguard","BackendData":{"PublicKey":"${pub}","Port":51820},"BackendV6Data":{"PublicKey":"${pub}","Port":51821}`), text);
    const net = await s.be.start(wgLease({ sub: '198.19.5.0/24', sub6: '2001:db8:100:5::/64' }));
    assert.equal(net.mtu, 1420);
    assert.deepEqual(s.links.addrLines(a!.index), ['198.19.5.0/32']);
    assert.deepEqual(s.links.addrLines(b!.index), ['2001:db8:100:5::/128']);
    assert.deepEqual(s.links.routeLines(), [`198.19.0.0/16 dev #${a!.index} scope link`, `2001:db8:100::/48 dev #${b!.index} scope link`]);
    await net.handle([
      { type: 'added', lease: wgLease({ sub: '198.19.6.0/24', sub6: '2001:db8:100:6::/64', pub: '198.18.0.12', pub6: '2001:db8::12', data: { PublicKey: KEY_B, Port: 51820 }, data6: { PublicKey: KEY_B, Port: 51821 } }) },
    ]);
    assert.deepEqual(a!.lines(), [`${KEY_B} 198.18.0.12:51820 198.19.6.0/24`]);
    assert.deepEqual(b!.lines(), [`${KEY_B} [2001:db8::12]:51821 2001:db8:100:6::/64`]);
    const peer = a!.peerMap.get(KEY_B)!;
    assert.equal(peer.presharedKey, PSK);
    assert.equal(peer.persistentKeepalive, 25);
    await net.handle([{ type: 'removed', lease: wgLease({ sub: '198.19.6.0/24', sub6: '2001:db8:100:6::/64', data: { PublicKey: KEY_B, Port: 51820 }, data6: { PublicKey: KEY_B, Port: 51821 } }) }]);
    assert.deepEqual([a!.lines(), b!.lines()], [[], []]);
    await net.close();
    assert.equal(a!.closed && b!.closed, true, 'devices removed on shutdown');
    assert.equal(lines.some((l) => l.includes(s.kernel.created[0]!.spec.privateKey.toString('base64'))), false, 'the private key is never logged');
  } finally {
    restore();
    s.cleanup();
  }
});

test('single-device modes: one flannel-wg for both families; BackendV6Data.Port is ListenPortV6 and the device answers there too', async () => {
  const { restore } = capture();
  const s = await setup('{"Type":"wireguard","Mode":"ipv6"}', true);
  try {
    assert.deepEqual(s.kernel.created.map((d) => [d.name, d.spec.listenPort, d.spec.alsoListenPort]), [['flannel-wg', 51820, 51821]]);
    assert.deepEqual(s.be.backendV6Data(), { PublicKey: (s.be.backendData() as { PublicKey: string }).PublicKey, Port: 51821 });
    const net = await s.be.start(wgLease({ sub: '198.19.5.0/24', sub6: '2001:db8:100:5::/64' }));
    const dev = s.kernel.created[0]!;
    assert.deepEqual(s.links.addrLines(dev.index).sort(), ['198.19.5.0/32', '2001:db8:100:5::/128']);
    assert.equal(s.links.routeLines().length, 2, 'both networks via flannel-wg');
    await net.handle([
      { type: 'added', lease: wgLease({ sub: '198.19.6.0/24', sub6: '2001:db8:100:6::/64', pub: '198.18.0.12', pub6: '2001:db8::12', data: { PublicKey: KEY_B, Port: 51820 }, data6: { PublicKey: KEY_B, Port: 51821 } }) },
      { type: 'added', lease: wgLease({ sub: '198.19.7.0/24', sub6: '2001:db8:100:7::/64', pub: '198.18.0.13', pub6: '2001:db8::13', data: { PublicKey: KEY_C }, data6: { PublicKey: KEY_C } }) },
      { type: 'added', lease: wgLease({ sub: '198.19.8.0/24', pub: '198.18.0.14', type: 'vxlan', data: { VNI: 1, VtepMAC: '0e:00:00:00:00:01' } }) },
    ]);
    assert.deepEqual(dev.lines(), [
      // No Port (flannel before v0.26.6): our own listen port.
      `${KEY_C} [2001:db8::13]:51820 198.19.7.0/24,2001:db8:100:7::/64`,
      `${KEY_B} [2001:db8::12]:51821 198.19.6.0/24,2001:db8:100:6::/64`,
    ]);
    await net.close();
  } finally {
    restore();
    s.cleanup();
  }
});

test('ipv4 mode and a bad lease: wrong BackendData types are logged and skipped, the others configured', async () => {
  const { restore, lines } = capture();
  const s = await setup('{"Type":"wireguard","Mode":"ipv4"}');
  try {
    const net = await s.be.start(wgLease({ sub: '198.19.5.0/24' }));
    await net.handle([
      { type: 'added', lease: wgLease({ sub: '198.19.6.0/24', pub: '198.18.0.12', data: { PublicKey: KEY_B, Port: '51820' } }) },
      { type: 'added', lease: wgLease({ sub: '198.19.7.0/24', pub: '198.18.0.13', data: { PublicKey: KEY_C, Port: 4500 } }) },
    ]);
    assert.deepEqual(s.kernel.created[0]!.lines(), [`${KEY_C} 198.18.0.13:4500 198.19.7.0/24`]);
    assert.ok(lines.some((l) => l.includes('failed to unmarshal BackendData') && l.includes('Port "51820"')));
    assert.equal(await net.reconcile([wgLease({ sub: '198.19.7.0/24', pub: '198.18.0.13', data: { PublicKey: KEY_C, Port: 4500 } })]), 0, 'nothing to repair');
    await s.kernel.created[0]!.removePeer(KEY_C);
    assert.equal(await net.reconcile([wgLease({ sub: '198.19.7.0/24', pub: '198.18.0.13', data: { PublicKey: KEY_C, Port: 4500 } })]), 1, 'a lost peer is put back');
    await net.close();
  } finally {
    restore();
    s.cleanup();
  }
});

test('auto mode picks IPv4 unless the peer IPv4 is private and both sides have non-ULA IPv6 (addresses as data only)', () => {
  const v4 = (s: string) => mustParseIP(s);
  // Private (RFC 1918) and ULA addresses appear here only as values: nothing is sent anywhere.
  const ourV4 = v4('198.18.0.11');
  const ourV6 = v4('2001:db8::11');
  assert.equal(selectEndpointFamily(v4('198.18.0.12'), v4('2001:db8::12'), ourV4, ourV6), 4, 'public-looking IPv4: IPv4');
  assert.equal(selectEndpointFamily(v4('10.1.2.3'), v4('2001:db8::12'), ourV4, ourV6), 6, 'RFC 1918 peer, both global IPv6: IPv6');
  assert.equal(selectEndpointFamily(v4('172.20.0.1'), v4('2001:db8::12'), ourV4, ourV6), 6);
  assert.equal(selectEndpointFamily(v4('192.168.1.1'), v4('fd00::12'), ourV4, ourV6), 4, 'peer IPv6 is ULA');
  assert.equal(selectEndpointFamily(v4('192.168.1.1'), v4('2001:db8::12'), ourV4, v4('fdaa::1')), 4, 'our IPv6 is ULA');
  assert.equal(selectEndpointFamily(v4('192.168.1.1'), v4('2001:db8::12'), ourV4, undefined), 4, 'we have no IPv6');
  assert.equal(selectEndpointFamily(v4('10.1.2.3'), undefined, ourV4, ourV6), 4, 'the peer has no IPv6');
  assert.equal(selectEndpointFamily(v4('198.18.0.12'), v4('2001:db8::12'), undefined, ourV6), 6, 'we have no IPv4');
  const plan = planWgPeers(wgLease({ sub: '198.19.6.0/24', sub6: '2001:db8:100:6::/64', pub: '10.1.2.3', pub6: '2001:db8::12', data: { PublicKey: KEY_B, Port: 51820 }, data6: { PublicKey: KEY_B, Port: 51821 } }), {
    mode: 'auto',
    enableIPv4: true,
    enableIPv6: true,
    listenPort: 51820,
    listenPortV6: 51821,
    ourV4,
    ourV6,
  });
  assert.ok(plan.ok);
  assert.equal(plan.peers[0]!.endpoint, '[2001:db8::12]:51821');
});

test('fallback: EOPNOTSUPP creating a kernel device -> userspace, logged; -wireguard-userspace forces userspace; other errors stay errors', async () => {
  let { restore, lines } = capture();
  let s = await setup('{"Type":"wireguard"}', false, { kernelFails: 'EOPNOTSUPP' });
  restore();
  assert.deepEqual(s.userspace.created.map((d) => d.name), ['flannel-wg']);
  assert.ok(lines.some((l) => l.includes('the kernel cannot create WireGuard devices') && l.includes('falls back to userspace')));
  s.cleanup();
  ({ restore, lines } = capture());
  s = await setup('{"Type":"wireguard"}', false, { force: true });
  restore();
  assert.equal(s.kernel.created.length, 0);
  assert.deepEqual(s.userspace.created.map((d) => d.kind), ['userspace']);
  assert.ok(lines.some((l) => l.includes('-wireguard-userspace')));
  s.cleanup();
  ({ restore } = capture());
  await assert.rejects(setup('{"Type":"wireguard"}', false, { kernelFails: 'EPERM' }), /could not create wireguard interface flannel-wg: .*EPERM/);
  restore();
});
