import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNetworkConfig } from '../../src/config/netconf.js';
import { mustParseIP, parseCIDR } from '../../src/ip/index.js';
import { parseUdpOptions, peerRoutes, udpBackendFactory, udpMtu } from '../../src/backend/udp.js';
import type { DataPlaneOptions } from '../../src/backend/tun/data-plane.js';
import type { ExternalInterface } from '../../src/backend/types.js';
import type { Lease } from '../../src/subnet/types.js';
import { setLogSink } from '../../src/log.js';
import { FakeLinks, FakePlane } from '../helpers/fake-plane.js';

const ext4: ExternalInterface = { name: 'eth0', index: 2, mtu: 1500, ifaceAddr: mustParseIP('198.18.0.11'), publicIP: mustParseIP('198.18.0.11') };
const lease = (sub: string, pub: string, sub6?: string, pub6?: string): Lease => ({
  subnet: parseCIDR(sub),
  ipv6Subnet: sub6 ? parseCIDR(sub6) : undefined,
  attrs: { publicIP: mustParseIP(pub), publicIPv6: pub6 ? mustParseIP(pub6) : undefined, backendType: 'udp' },
  expiration: new Date(Date.now() + 3600_000),
});

test('udp options: Port default 8285, bad values are one-line errors naming the field', () => {
  assert.deepEqual(parseUdpOptions({ Type: 'udp' }), { port: 8285, allowUnknownSource: false, offload: true });
  assert.equal(parseUdpOptions({ Type: 'udp', Port: 9000 }).port, 9000);
  assert.throws(() => parseUdpOptions({ Port: '8285' }), /Backend.Port "8285" is invalid/);
  assert.throws(() => parseUdpOptions({ Port: 70000 }), /Backend.Port 70000/);
  assert.throws(() => parseUdpOptions({ AllowUnknownSource: 'yes' }), /Backend.AllowUnknownSource/);
});

test('udp options: Offload is all (default), none, or per feature; anything else is a one-line error', () => {
  assert.equal(parseUdpOptions({ Offload: true }).offload, true);
  assert.equal(parseUdpOptions({ Offload: false }).offload, false);
  assert.deepEqual(parseUdpOptions({ Offload: { TSO: false, UDPGRO: false } }).offload, { tso: false, udpGro: false });
  assert.deepEqual(parseUdpOptions({ Offload: { VnetHdr: true, USO: false, UDPGSO: true } }).offload, { vnetHdr: true, uso: false, udpGso: true });
  assert.throws(() => parseUdpOptions({ Offload: 'off' }), /Backend.Offload "off" is invalid/);
  assert.throws(() => parseUdpOptions({ Offload: { GSO: false } }), /Backend.Offload \{"GSO":false\} is invalid: .*VnetHdr\/TSO\/USO\/UDPGSO\/UDPGRO/);
  assert.throws(() => parseUdpOptions({ Offload: { TSO: 'no' } }), /Backend.Offload/);
});

test('MTU is external MTU - 28 with an IPv4 outer header, - 48 on IPv6-only nodes', () => {
  assert.equal(udpMtu(ext4), 1472);
  assert.equal(udpMtu({ name: 'eth0', index: 2, mtu: 9000, publicIPv6: mustParseIP('2001:db8::11') }), 8952);
});

test('peer table: each lease subnet maps to its public address; IPv6 inner rides the IPv4 outer when both have one', () => {
  const dual: ExternalInterface = { ...ext4, publicIPv6: mustParseIP('2001:db8::11') };
  const routes = peerRoutes([lease('198.19.5.0/24', '198.18.0.12', '2001:db8:100:5::/64', '2001:db8::12')], 8285, dual);
  assert.deepEqual(routes, [
    { subnet: '198.19.5.0/24', publicIP: '198.18.0.12', port: 8285 },
    { subnet: '2001:db8:100:5::/64', publicIP: '198.18.0.12', port: 8285 },
  ]);
  const v6only: ExternalInterface = { name: 'eth0', index: 2, mtu: 1500, publicIPv6: mustParseIP('2001:db8::11') };
  const l6: Lease = { ipv6Subnet: parseCIDR('2001:db8:100:6::/64'), attrs: { publicIPv6: mustParseIP('2001:db8::13'), backendType: 'udp' }, expiration: new Date() };
  assert.deepEqual(peerRoutes([l6], 8285, v6only), [{ subnet: '2001:db8:100:6::/64', publicIP: '2001:db8::13', port: 8285 }]);
});

test('peer table with a row cache: unchanged lease objects reuse their rows, a replaced lease is formatted anew', () => {
  const cache = new WeakMap<Lease, ReturnType<typeof peerRoutes>>();
  const a = lease('198.19.7.0/24', '198.18.0.14');
  const b = lease('198.19.8.0/24', '198.18.0.15', '2001:db8:8::/64');
  const first = peerRoutes([a, b], 8285, ext4, cache);
  assert.deepEqual(first, peerRoutes([a, b], 8285, ext4), 'same table as without a cache');
  const again = peerRoutes([a, b], 8285, ext4, cache);
  assert.deepEqual(again, first);
  assert.equal(again[0], first[0], 'row objects reused, not re-formatted');
  const moved = lease('198.19.7.0/24', '198.18.0.99');
  const after = peerRoutes([moved, b], 8285, ext4, cache);
  assert.deepEqual(after[0], { subnet: '198.19.7.0/24', publicIP: '198.18.0.99', port: 8285 });
  assert.equal(after[1], first[1]);
});

test('start configures the TUN (MTU, /32 address, up, network route), events update the engine table', async () => {
  const prev = setLogSink(() => {});
  const plane = new FakePlane();
  const links = new FakeLinks();
  let opened: DataPlaneOptions | undefined;
  try {
    const factory = udpBackendFactory({ openDataPlane: (o) => ((opened = o), plane), links: () => links });
    const config = parseNetworkConfig('{"Network":"198.19.0.0/16","Backend":{"Type":"udp","Port":8399}}');
    const backend = await factory({ config, extIface: ext4 });
    assert.equal(backend.backendData(), undefined, 'flannel writes no BackendData for udp');
    const net = await backend.start(lease('198.19.90.0/24', '198.18.0.11'));
    assert.deepEqual(opened, { tunName: 'flannel%d', bindV4: '198.18.0.11', bindV6: undefined, port: 8399, allowUnknownSource: false, offload: true });
    assert.equal(links.mtu.get(7), 1472);
    assert.ok(links.addrs.has('7 198.19.90.0/32'));
    assert.ok(links.routes.has('7 198.19.0.0/16'));
    assert.ok(links.up.has(7));
    assert.ok(plane.started);

    await net.handle([{ type: 'added', lease: lease('198.19.5.0/24', '198.18.0.12') }, { type: 'added', lease: lease('198.19.6.0/24', '198.18.0.13') }]);
    assert.deepEqual(plane.peers.map((p) => p.subnet), ['198.19.5.0/24', '198.19.6.0/24']);
    await net.handle([{ type: 'removed', lease: lease('198.19.5.0/24', '198.18.0.12') }]);
    assert.deepEqual(plane.peers, [{ subnet: '198.19.6.0/24', publicIP: '198.18.0.13', port: 8399 }]);

    // Someone deletes the overlay route; reconcile puts it back and rebuilds the table from the lease set.
    links.routes.clear();
    const repairs = await net.reconcile([lease('198.19.7.0/24', '198.18.0.14')]);
    assert.equal(repairs, 1);
    assert.ok(links.routes.has('7 198.19.0.0/16'));
    assert.deepEqual(plane.peers.map((p) => p.subnet), ['198.19.7.0/24']);
    assert.equal(await net.reconcile([lease('198.19.7.0/24', '198.18.0.14')]), 0, 'nothing to repair the second time');

    await net.close();
    assert.ok(plane.closed);
  } finally {
    setLogSink(prev);
  }
});

test('a failing device setup closes the data plane', async () => {
  const plane = new FakePlane();
  const links = new FakeLinks();
  links.setMtu = () => {
    throw new Error('set MTU of flannel0: EPERM');
  };
  const factory = udpBackendFactory({ openDataPlane: () => plane, links: () => links });
  const backend = await factory({ config: parseNetworkConfig('{"Network":"198.19.0.0/16"}'), extIface: ext4 });
  await assert.rejects(backend.start(lease('198.19.90.0/24', '198.18.0.11')), /EPERM/);
  assert.ok(plane.closed);
});
