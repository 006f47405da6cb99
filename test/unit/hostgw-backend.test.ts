import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNetworkConfig } from '../../src/config/netconf.js';
import { mustParseIP, parseCIDR } from '../../src/ip/index.js';
import { hostGwBackendFactory } from '../../src/backend/hostgw.js';
import type { Lease } from '../../src/subnet/types.js';
import { setLogSink } from '../../src/log.js';
import { kernelWithEth0 } from '../helpers/fake-kernel.js';

const lease = (sub: string, pub: string, type = 'host-gw', sub6?: string, pub6?: string): Lease => ({
  subnet: parseCIDR(sub),
  ipv6Subnet: sub6 ? parseCIDR(sub6) : undefined,
  attrs: { publicIP: mustParseIP(pub), publicIPv6: pub6 ? mustParseIP(pub6) : undefined, backendType: type },
  expiration: new Date(Date.now() + 3600_000),
});

function setup(netConf = '{"Network":"198.19.0.0/16","Backend":{"Type":"host-gw"}}') {
  const { k, ext } = kernelWithEth0();
  const config = parseNetworkConfig(netConf);
  return { k, ext, config };
}

function capture(): { lines: string[]; restore: () => void } {
  const lines: string[] = [];
  const prev = setLogSink((l) => lines.push(l));
  return { lines, restore: () => setLogSink(prev) };
}

test('host-gw: a route per remote lease via its PublicIP on the external interface, MTU = external MTU, no BackendData', async () => {
  const { restore } = capture();
  try {
    const { k, ext, config } = setup();
    const be = await hostGwBackendFactory({ ops: () => k })({ config, extIface: ext });
    assert.equal(be.backendData(), undefined);
    const net = await be.start(lease('198.19.90.0/24', '198.18.0.11'));
    assert.equal(net.mtu, 1500);
    await net.handle([{ type: 'added', lease: lease('198.19.5.0/24', '198.18.0.12') }, { type: 'added', lease: lease('198.19.6.0/24', '198.18.0.13') }]);
    assert.deepEqual(k.routeLines(), ['198.19.5.0/24 via 198.18.0.12 dev eth0', '198.19.6.0/24 via 198.18.0.13 dev eth0']);
    await net.handle([{ type: 'removed', lease: lease('198.19.5.0/24', '198.18.0.12') }]);
    assert.deepEqual(k.routeLines(), ['198.19.6.0/24 via 198.18.0.13 dev eth0']);
    await net.close();
    assert.deepEqual(k.routeLines(), ['198.19.6.0/24 via 198.18.0.13 dev eth0'], 'routes stay on shutdown, as flannel leaves them');
  } finally {
    restore();
  }
});

test('host-gw: IPv6 routes via PublicIPv6', async () => {
  const { restore } = capture();
  try {
    const { k, ext, config } = setup('{"Network":"198.19.0.0/16","EnableIPv6":true,"IPv6Network":"2001:db8:100::/56","Backend":{"Type":"host-gw"}}');
    const net = await (await hostGwBackendFactory({ ops: () => k })({ config, extIface: ext })).start(lease('198.19.90.0/24', '198.18.0.11', 'host-gw', '2001:db8:100:5a::/64'));
    const peer = lease('198.19.5.0/24', '198.18.0.12', 'host-gw', '2001:db8:100:5::/64', '2001:db8::12');
    await net.handle([{ type: 'added', lease: peer }]);
    assert.deepEqual(k.routeLines(6), ['2001:db8:100:5::/64 via 2001:db8::12 dev eth0']);
    k.delRoute({ dst: parseCIDR('2001:db8:100:5::/64')! });
    assert.equal(await net.reconcile([peer]), 1);
    assert.deepEqual(k.routeLines(6), ['2001:db8:100:5::/64 via 2001:db8::12 dev eth0']);
  } finally {
    restore();
  }
});

test('host-gw: a peer that is not on our L2 segment is a clear error, logged once per peer and counted', async () => {
  const { lines, restore } = capture();
  try {
    const { k, ext, config } = setup();
    const net = await (await hostGwBackendFactory({ ops: () => k })({ config, extIface: ext })).start(lease('198.19.90.0/24', '198.18.0.11'));
    const far = lease('198.19.7.0/24', '198.18.1.12');
    await net.handle([{ type: 'added', lease: far }]);
    for (let i = 0; i < 5; i++) await net.reconcile([far]);
    const errs = lines.filter((l) => l.startsWith('E') && l.includes('peer 198.18.1.12'));
    assert.equal(errs.length, 1, errs.join('\n'));
    assert.match(errs[0]!, /host-gw: peer 198\.18\.1\.12 \(subnet 198\.19\.7\.0\/24\) is not directly reachable on eth0: the kernel routes it via 198\.18\.0\.1/);
    assert.equal(net.stats().unreachablePeers, 1);
    assert.deepEqual(k.routeLines(), []);
    // Other backend types are ignored with flannel's warning.
    await net.handle([{ type: 'added', lease: lease('198.19.8.0/24', '198.18.0.14', 'vxlan') }]);
    assert.ok(lines.some((l) => l.includes('Ignoring non-host-gw subnet: type=vxlan')));
  } finally {
    restore();
  }
});

test('host-gw reconcile: re-adds deleted routes, drops stale ones, replaces a route with another gateway, ignores foreign routes', async () => {
  const { lines, restore } = capture();
  try {
    const { k, ext, config } = setup();
    const net = await (await hostGwBackendFactory({ ops: () => k })({ config, extIface: ext })).start(lease('198.19.90.0/24', '198.18.0.11'));
    const peers = [lease('198.19.5.0/24', '198.18.0.12'), lease('198.19.6.0/24', '198.18.0.13')];
    await net.handle(peers.map((l) => ({ type: 'added' as const, lease: l })));
    k.delRoute({ dst: parseCIDR('198.19.5.0/24')! });
    k.replaceRoute({ dst: parseCIDR('198.19.6.0/24')!, gateway: mustParseIP('198.18.0.99'), oif: 2 });
    k.replaceRoute({ dst: parseCIDR('198.19.44.0/24')!, gateway: mustParseIP('198.18.0.44'), oif: 2 }); // stale, from before a restart
    k.replaceRoute({ dst: parseCIDR('198.19.90.0/24')!, oif: 2 }); // our own subnet: never touched
    k.routes.push({ family: 4, dst: parseCIDR('198.18.9.0/24')!, gateway: mustParseIP('198.18.0.1'), oif: 2, onlink: false, table: 254, scope: 0, protocol: 3, type: 1, flags: 0 });
    assert.equal(await net.reconcile(peers), 3);
    assert.deepEqual(k.routeLines(), ['198.18.9.0/24 via 198.18.0.1 dev eth0', '198.19.5.0/24 via 198.18.0.12 dev eth0', '198.19.6.0/24 via 198.18.0.13 dev eth0', '198.19.90.0/24 dev eth0']);
    assert.ok(lines.some((l) => l.includes('Replacing existing route to 198.19.6.0/24 via 198.18.0.99 dev eth0 with 198.19.6.0/24 via 198.18.0.13 dev eth0')));
    assert.equal(await net.reconcile(peers), 0);
  } finally {
    restore();
  }
});

test('host-gw refuses a PublicIP that differs from the interface address (NAT), as flannel does', async () => {
  const { k, ext, config } = setup();
  await assert.rejects(
    hostGwBackendFactory({ ops: () => k })({ config, extIface: { ...ext, publicIP: mustParseIP('198.18.0.200') } }),
    /your PublicIP differs from interface IP, meaning that probably you're on a NAT, which is not supported by host-gw backend/,
  );
});
