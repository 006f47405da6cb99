import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNetworkConfig } from '../../src/config/netconf.js';
import { mustParseIP, parseCIDR } from '../../src/ip/index.js';
import { decodeVxlanBackendData, parseVxlanOptions, vxlanBackendData } from '../../src/backend/vxlan/vxlan-options.js';
import { vxlanBackendFactory } from '../../src/backend/vxlan/vxlan-backend.js';
import { encodeLeaseAttrs } from '../../src/subnet/lease.js';
import type { ExternalInterface, RunningNetwork } from '../../src/backend/types.js';
import type { Lease } from '../../src/subnet/types.js';
import { setLogSink } from '../../src/log.js';
import { nl } from '../../src/netlink/index.js';
import { FakeKernel } from '../helpers/fake-kernel.js';

const MAC_A = '0a:00:00:00:00:0a';
const MAC_B = '0a:00:00:00:00:0b';
const OUR_MAC = '0a:00:00:00:00:01';

function quietLogs(): { lines: string[]; restore: () => void } {
  const lines: string[] = [];
  const prev = setLogSink((l) => lines.push(l));
  return { lines, restore: () => setLogSink(prev) };
}

const vxLease = (sub: string, pub: string, mac: string | undefined, extra: Partial<Lease['attrs']> = {}): Lease => ({
  subnet: parseCIDR(sub),
  attrs: { publicIP: mustParseIP(pub), backendType: 'vxlan', backendData: mac === undefined ? undefined : { VNI: 1, VtepMAC: mac }, ...extra },
  expiration: new Date(Date.now() + 3600_000),
});

function kernelWithEth0(): { k: FakeKernel; ext: ExternalInterface } {
  const k = new FakeKernel();
  const eth0 = k.addPlainLink('eth0', 1500, 2);
  k.direct.push({ net: parseCIDR('198.18.0.0/24')!, oif: eth0.index });
  k.gatewayFor.push({ net: parseCIDR('198.18.1.0/24')!, gateway: mustParseIP('198.18.0.1'), oif: eth0.index });
  const ext: ExternalInterface = { name: 'eth0', index: 2, mtu: 1500, ifaceAddr: mustParseIP('198.18.0.11'), publicIP: mustParseIP('198.18.0.11') };
  return { k, ext };
}

async function startVxlan(k: FakeKernel, ext: ExternalInterface, backend = '{"Type":"vxlan"}', extra = ''): Promise<RunningNetwork> {
  const config = parseNetworkConfig(`{"Network":"198.19.0.0/16"${extra},"Backend":${backend}}`);
  const be = await vxlanBackendFactory({ ops: () => k, newMac: () => OUR_MAC })({ config, extIface: ext });
  return be.start({ subnet: parseCIDR('198.19.90.0/24'), ipv6Subnet: extra ? parseCIDR('2001:db8:100:5a::/64') : undefined, attrs: { backendType: 'vxlan' }, expiration: new Date() });
}

test('vxlan options: flannel defaults, Go-style case-insensitive keys, one-line errors naming the field', () => {
  assert.deepEqual(parseVxlanOptions({ Type: 'vxlan' }), { vni: 1, port: 0, gbp: false, learning: false, directRouting: false, mtu: undefined, macPrefix: undefined, userspace: false, offload: true });
  assert.deepEqual(parseVxlanOptions({ vni: 4096, port: 4789, GBP: true, directRouting: true, MTU: 9000, MacPrefix: '0E-2A', userspace: true }), {
    vni: 4096,
    port: 4789,
    gbp: true,
    learning: false,
    directRouting: true,
    mtu: 9000,
    macPrefix: '0E-2A',
    userspace: true,
    offload: true,
  });
  assert.deepEqual(parseVxlanOptions({ Offload: { TSO: false } }).offload, { tso: false });
  assert.throws(() => parseVxlanOptions({ Offload: 'fast' }), /Backend.Offload "fast" is invalid/);
  assert.throws(() => parseVxlanOptions({ Userspace: 'yes' }), /Backend.Userspace "yes" is invalid: must be true or false/);
  assert.throws(() => parseVxlanOptions({ VNI: '1' }), /Backend.VNI "1" is invalid/);
  assert.throws(() => parseVxlanOptions({ VNI: 1 << 24 }), /Backend.VNI 16777216 is invalid: must be a whole number from 0 to 16777215/);
  assert.throws(() => parseVxlanOptions({ Port: 70000 }), /Backend.Port 70000/);
  assert.throws(() => parseVxlanOptions({ DirectRouting: 'yes' }), /Backend.DirectRouting "yes" is invalid: must be true or false/);
  assert.throws(() => parseVxlanOptions({ MTU: 100 }), /Backend.MTU 100 is invalid/);
  assert.throws(() => parseVxlanOptions({ MacPrefix: '0E2A' }), /MacPrefix "0E2A" is invalid: prefix must be of the format xx-xx/);
});

test('BackendData is {"VNI":1,"VtepMAC":"<mac>"} in that key order, inside flannel\'s lease JSON', () => {
  assert.equal(JSON.stringify(vxlanBackendData(1, 'd2:5e:7f:06:2e:52')), '{"VNI":1,"VtepMAC":"d2:5e:7f:06:2e:52"}');
  const text = encodeLeaseAttrs({ publicIP: mustParseIP('198.18.0.11'), backendType: 'vxlan', backendData: vxlanBackendData(1, 'd2:5e:7f:06:2e:52') });
  assert.equal(text, '{"PublicIP":"198.18.0.11","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"d2:5e:7f:06:2e:52"}}');
});

test('peer BackendData decoding never throws: every malformed shape is an error value', () => {
  assert.deepEqual(decodeVxlanBackendData({ VNI: 1, VtepMAC: 'D2-5E-7F-06-2E-52' }), { ok: true, vni: 1, mac: 'd2:5e:7f:06:2e:52' });
  assert.deepEqual(decodeVxlanBackendData({ vtepmac: 'd25e.7f06.2e52' }), { ok: true, vni: undefined, mac: 'd2:5e:7f:06:2e:52' });
  for (const bad of [undefined, null, 'x', [], 7, { VNI: 1 }, { VtepMAC: 'zz:00:00:00:00:00' }, { VtepMAC: 5 }, { VNI: -1, VtepMAC: MAC_A }, { VNI: 1.5, VtepMAC: MAC_A }]) {
    const r = decodeVxlanBackendData(bad);
    assert.equal(r.ok, false, JSON.stringify(bad));
  }
});

test('start: flannel.1 with flannel settings, MTU external-50, /32 address, up; BackendData carries the device MAC', async () => {
  const { restore } = quietLogs();
  try {
    const { k, ext } = kernelWithEth0();
    const config = parseNetworkConfig('{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}');
    const be = await vxlanBackendFactory({ ops: () => k, newMac: () => OUR_MAC })({ config, extIface: ext });
    const dev = k.findLink('flannel.1')!;
    assert.deepEqual(dev.vxlan, { vni: 1, local: mustParseIP('198.18.0.11'), port: 8472, learning: false, gbp: false, link: 2, udpCsum: true });
    assert.equal(dev.mtu, 1450);
    assert.deepEqual(be.backendData(), { VNI: 1, VtepMAC: OUR_MAC });
    assert.equal(be.backendV6Data(), undefined);
    // A stale overlay address from an earlier lease is dropped; the lease's network address is added.
    k.addAddr(dev.index, mustParseIP('198.19.7.0'), 32);
    const net = await be.start({ subnet: parseCIDR('198.19.90.0/24'), attrs: { backendType: 'vxlan' }, expiration: new Date() });
    assert.equal(net.mtu, 1450);
    assert.deepEqual(k.listAddrs(4, dev.index).map((a) => `${a.addr.value === mustParseIP('198.19.90.0').value ? '198.19.90.0' : 'other'}/${a.prefixLen}`), ['198.19.90.0/32']);
    assert.ok(dev.up);
    assert.deepEqual(k.acceptRaOff, ['flannel.1']);
  } finally {
    restore();
  }
});

test('MTU option is the outer MTU (device gets MTU-50); Port, GBP and VNI reach the device; IPv6 gets flannel-v6.<VNI> and /128', async () => {
  const { restore } = quietLogs();
  try {
    const { k, ext } = kernelWithEth0();
    const ext6 = { ...ext, ifaceAddrV6: mustParseIP('2001:db8::11'), publicIPv6: mustParseIP('2001:db8::11') };
    const net = await startVxlan(k, ext6, '{"Type":"vxlan","VNI":7,"Port":4789,"GBP":true,"MTU":1400}', ',"EnableIPv6":true,"IPv6Network":"2001:db8:100::/56"');
    assert.equal(net.mtu, 1350);
    const v4 = k.findLink('flannel.7')!;
    const v6 = k.findLink('flannel-v6.7')!;
    assert.equal(v4.vxlan?.port, 4789);
    assert.equal(v4.vxlan?.gbp, true);
    assert.equal(v6.mtu, 1350);
    assert.deepEqual(v6.vxlan?.local, mustParseIP('2001:db8::11'));
    assert.equal(k.listAddrs(6, v6.index)[0]?.prefixLen, 128);

    // Without an MTU option the IPv6-underlay device ends up at 1430: pods get the smaller MTU.
    const k2 = kernelWithEth0().k;
    const dual = await startVxlan(k2, ext6, '{"Type":"vxlan"}', ',"EnableIPv6":true,"IPv6Network":"2001:db8:100::/56"');
    assert.equal(k2.findLink('flannel.1')?.mtu, 1450);
    assert.equal(k2.findLink('flannel-v6.1')?.mtu, 1430);
    assert.equal(dual.mtu, 1430);
    // A restart reuses both devices; the capped IPv6 device is not asked for more than the kernel allows.
    const again = await startVxlan(k2, ext6, '{"Type":"vxlan"}', ',"EnableIPv6":true,"IPv6Network":"2001:db8:100::/56"');
    assert.equal(again.mtu, 1430);
    assert.ok(!k2.calls.includes('link del flannel-v6.1'));
  } finally {
    restore();
  }
});

test('an existing compatible device is reused (same MAC); an incompatible one is deleted and recreated', async () => {
  const { lines, restore } = quietLogs();
  try {
    const { k, ext } = kernelWithEth0();
    k.addVxlanLink({ name: 'flannel.1', vni: 1, local: mustParseIP('198.18.0.11'), link: 2, mtu: 1450, mac: MAC_A });
    const config = parseNetworkConfig('{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}');
    let be = await vxlanBackendFactory({ ops: () => k, newMac: () => OUR_MAC })({ config, extIface: ext });
    assert.deepEqual(be.backendData(), { VNI: 1, VtepMAC: MAC_A }, 'kept the MAC peers already know');
    assert.ok(!k.calls.includes('link del flannel.1'));

    // Same name, other local address: flannel logs and recreates.
    k.calls.length = 0;
    be = await vxlanBackendFactory({ ops: () => k, newMac: () => OUR_MAC })({ config, extIface: { ...ext, ifaceAddr: mustParseIP('198.18.0.99'), publicIP: mustParseIP('198.18.0.99') } });
    assert.deepEqual(k.calls, ['link del flannel.1', 'link add flannel.1']);
    assert.deepEqual(be.backendData(), { VNI: 1, VtepMAC: OUR_MAC });
    assert.ok(lines.some((l) => l.includes('"flannel.1" already exists with incompatible configuration: vtep (external) IP: 198.18.0.99 vs 198.18.0.11; recreating device')));
  } finally {
    restore();
  }
});

test('a lease added: neighbour, FDB, then the onlink route (flannel order); removed: all three go', async () => {
  const { restore } = quietLogs();
  try {
    const { k, ext } = kernelWithEth0();
    const net = await startVxlan(k, ext);
    k.calls.length = 0;
    await net.handle([{ type: 'added', lease: vxLease('198.19.5.0/24', '198.18.0.12', MAC_A) }]);
    assert.deepEqual(k.calls, ['neigh replace 198.19.5.0', `fdb replace ${MAC_A}`, 'route replace 198.19.5.0/24']);
    assert.deepEqual(k.routeLines(), ['198.19.5.0/24 via 198.19.5.0 dev flannel.1 onlink']);
    assert.deepEqual(k.neighLines(), [`198.19.5.0 dev flannel.1 lladdr ${MAC_A} PERMANENT`]);
    assert.deepEqual(k.fdbLines(), [`${MAC_A} dev flannel.1 dst 198.18.0.12 self permanent`]);
    assert.equal(k.fdb[0]?.flags, nl.NTF_SELF);

    // The same lease again (a store resync) is not an error and changes nothing.
    await net.handle([{ type: 'added', lease: vxLease('198.19.5.0/24', '198.18.0.12', MAC_A) }]);
    assert.equal(net.stats().errors, 0);

    // A removal event from a store that no longer has the lease's data still removes everything.
    await net.handle([{ type: 'removed', lease: vxLease('198.19.5.0/24', '198.18.0.12', undefined) }]);
    assert.deepEqual([k.routeLines(), k.neighLines(), k.fdbLines()], [[], [], []]);
  } finally {
    restore();
  }
});

test('a peer whose VtepMAC changed (it recreated its device) gets the new entries and loses the old FDB entry', async () => {
  const { restore } = quietLogs();
  try {
    const { k, ext } = kernelWithEth0();
    const net = await startVxlan(k, ext);
    await net.handle([{ type: 'added', lease: vxLease('198.19.5.0/24', '198.18.0.12', MAC_A) }]);
    await net.handle([{ type: 'added', lease: vxLease('198.19.5.0/24', '198.18.0.12', MAC_B) }]);
    assert.deepEqual(k.fdbLines(), [`${MAC_B} dev flannel.1 dst 198.18.0.12 self permanent`]);
    assert.deepEqual(k.neighLines(), [`198.19.5.0 dev flannel.1 lladdr ${MAC_B} PERMANENT`]);
    assert.deepEqual(k.routeLines(), ['198.19.5.0/24 via 198.19.5.0 dev flannel.1 onlink']);
  } finally {
    restore();
  }
});

test('other backend types are ignored with flannel\'s log line; malformed BackendData is skipped with a rate-limited log', async () => {
  const { lines, restore } = quietLogs();
  try {
    const { k, ext } = kernelWithEth0();
    const net = await startVxlan(k, ext);
    await net.handle([{ type: 'added', lease: { ...vxLease('198.19.6.0/24', '198.18.0.13', MAC_A), attrs: { publicIP: mustParseIP('198.18.0.13'), backendType: 'udp' } } }]);
    assert.ok(lines.some((l) => l.includes('ignoring non-vxlan v4Subnet(198.19.6.0/24) v6Subnet(<nil>): type=udp')));
    const bad = Array.from({ length: 20 }, (_, i) => ({ type: 'added' as const, lease: vxLease(`198.19.${100 + i}.0/24`, '198.18.0.14', 'not-a-mac') }));
    lines.length = 0;
    await net.handle(bad);
    const warned = lines.filter((l) => l.includes('error decoding subnet lease JSON'));
    assert.ok(warned.length >= 1 && warned.length <= 5, `${warned.length} lines for 20 bad leases`);
    assert.deepEqual(k.routeLines(), []);
    assert.equal(net.stats().skippedLeases, 21);
  } finally {
    restore();
  }
});

test('reconcile re-adds entries deleted by hand, removes stale ones no lease explains, replaces a route with another gateway', async () => {
  const { lines, restore } = quietLogs();
  try {
    const { k, ext } = kernelWithEth0();
    const net = await startVxlan(k, ext);
    const dev = k.findLink('flannel.1')!;
    const leases = [vxLease('198.19.5.0/24', '198.18.0.12', MAC_A), vxLease('198.19.6.0/24', '198.18.0.13', MAC_B)];
    await net.handle(leases.map((lease) => ({ type: 'added' as const, lease })));
    assert.equal(await net.reconcile(leases), 0, 'nothing to repair');

    // Someone deletes one of each by hand.
    k.delRoute({ dst: parseCIDR('198.19.5.0/24')! });
    k.delNeigh(dev.index, mustParseIP('198.19.6.0'));
    k.delFdb({ index: dev.index, lladdr: MAC_A, dst: mustParseIP('198.18.0.12') });
    // Leftovers from before a restart: a peer that is gone, and a non-overlay route on eth0 that is not ours.
    k.replaceNeigh({ index: dev.index, dst: mustParseIP('198.19.9.0'), lladdr: '0a:00:00:00:00:99' });
    k.replaceFdb({ index: dev.index, lladdr: '0a:00:00:00:00:99', dst: mustParseIP('198.18.0.19') });
    k.replaceRoute({ dst: parseCIDR('198.19.9.0/24')!, gateway: mustParseIP('198.19.9.0'), oif: dev.index, onlink: true });
    k.routes.push({ family: 4, dst: parseCIDR('198.18.5.0/24')!, gateway: mustParseIP('198.18.0.1'), oif: 2, onlink: false, table: 254, scope: 0, protocol: 3, type: 1, flags: 0 });
    // Routes that are not ours although on our device: the kernel's route for an address, one inside our own subnet.
    k.routes.push({ family: 4, dst: parseCIDR('198.19.77.5/32')!, oif: dev.index, onlink: false, table: 254, scope: 253, protocol: 2, type: 1, flags: 0 });
    k.routes.push({ family: 4, dst: parseCIDR('198.19.90.0/32')!, oif: dev.index, onlink: false, table: 254, scope: 253, protocol: 3, type: 1, flags: 0 });
    // And a route to a peer subnet pointing somewhere else.
    k.delRoute({ dst: parseCIDR('198.19.6.0/24')! });
    k.routes.push({ family: 4, dst: parseCIDR('198.19.6.0/24')!, gateway: mustParseIP('198.18.0.1'), oif: 2, onlink: false, table: 254, scope: 0, protocol: 3, type: 1, flags: 0 });

    const repairs = await net.reconcile(leases);
    assert.equal(repairs, 7);
    assert.deepEqual(k.routeLines(), [
      '198.18.5.0/24 via 198.18.0.1 dev eth0',
      '198.19.5.0/24 via 198.19.5.0 dev flannel.1 onlink',
      '198.19.6.0/24 via 198.19.6.0 dev flannel.1 onlink',
      '198.19.77.5/32 dev flannel.1',
      '198.19.90.0/32 dev flannel.1',
    ]);
    assert.deepEqual(k.neighLines(), [`198.19.5.0 dev flannel.1 lladdr ${MAC_A} PERMANENT`, `198.19.6.0 dev flannel.1 lladdr ${MAC_B} PERMANENT`]);
    assert.deepEqual(k.fdbLines(), [`${MAC_A} dev flannel.1 dst 198.18.0.12 self permanent`, `${MAC_B} dev flannel.1 dst 198.18.0.13 self permanent`]);
    assert.ok(lines.some((l) => l.includes('Replacing existing route to 198.19.6.0/24 via 198.18.0.1 dev eth0 with 198.19.6.0/24 via 198.19.6.0 dev flannel.1 onlink')));
    assert.equal(await net.reconcile(leases), 0, 'converged');

    // A lease that disappeared without an event: reconcile with the smaller set removes its entries.
    assert.equal(await net.reconcile([leases[0]!]), 3);
    assert.deepEqual(k.routeLines(), ['198.18.5.0/24 via 198.18.0.1 dev eth0', '198.19.5.0/24 via 198.19.5.0 dev flannel.1 onlink', '198.19.77.5/32 dev flannel.1', '198.19.90.0/32 dev flannel.1']);
    assert.equal(net.stats().errors, 0);
  } finally {
    restore();
  }
});

test('DirectRouting: a peer on our segment gets a plain route via its PublicIP; one behind a router gets vxlan entries', async () => {
  const { restore } = quietLogs();
  try {
    const { k, ext } = kernelWithEth0();
    const net = await startVxlan(k, ext, '{"Type":"vxlan","DirectRouting":true}');
    const near = vxLease('198.19.5.0/24', '198.18.0.12', MAC_A);
    const far = vxLease('198.19.6.0/24', '198.18.1.12', MAC_B);
    await net.handle([{ type: 'added', lease: near }, { type: 'added', lease: far }]);
    assert.deepEqual(k.routeLines(), ['198.19.5.0/24 via 198.18.0.12 dev eth0', '198.19.6.0/24 via 198.19.6.0 dev flannel.1 onlink']);
    assert.deepEqual(k.neighLines(), [`198.19.6.0 dev flannel.1 lladdr ${MAC_B} PERMANENT`]);
    assert.deepEqual(k.fdbLines(), [`${MAC_B} dev flannel.1 dst 198.18.1.12 self permanent`]);
    assert.equal(await net.reconcile([near, far]), 0);
    k.delRoute({ dst: parseCIDR('198.19.5.0/24')! });
    assert.equal(await net.reconcile([near, far]), 1);
    assert.equal(net.stats().directPeers, 1);
    await net.handle([{ type: 'removed', lease: near }]);
    assert.deepEqual(k.routeLines(), ['198.19.6.0/24 via 198.19.6.0 dev flannel.1 onlink']);
    // Without DirectRouting the same near peer is reached over vxlan.
    const { k: k2, ext: ext2 } = kernelWithEth0();
    const net2 = await startVxlan(k2, ext2);
    await net2.handle([{ type: 'added', lease: near }]);
    assert.deepEqual(k2.routeLines(), ['198.19.5.0/24 via 198.19.5.0 dev flannel.1 onlink']);
  } finally {
    restore();
  }
});

test('reconcile recreates a deleted vxlan device with the same MAC and address, then restores the peer entries', async () => {
  const { lines, restore } = quietLogs();
  try {
    const { k, ext } = kernelWithEth0();
    const net = await startVxlan(k, ext);
    const peer = vxLease('198.19.5.0/24', '198.18.0.12', MAC_A);
    await net.handle([{ type: 'added', lease: peer }]);
    k.deleteLink(k.findLink('flannel.1')!.index);
    assert.deepEqual([k.routeLines(), k.neighLines(), k.fdbLines()], [[], [], []]);
    const repairs = await net.reconcile([peer]);
    const dev = k.findLink('flannel.1')!;
    assert.equal(dev.mac, OUR_MAC, 'peers keep reaching us: same VtepMAC');
    assert.ok(dev.up);
    assert.equal(k.listAddrs(4, dev.index).length, 1);
    assert.deepEqual(k.routeLines(), ['198.19.5.0/24 via 198.19.5.0 dev flannel.1 onlink']);
    assert.deepEqual(k.fdbLines(), [`${MAC_A} dev flannel.1 dst 198.18.0.12 self permanent`]);
    assert.equal(repairs, 5, 'device, its address, neighbour, FDB entry, route');
    assert.ok(lines.some((l) => l.includes('vxlan device flannel.1 is missing or was changed; recreating it with MAC')));
    assert.equal(await net.reconcile([peer]), 0);
  } finally {
    restore();
  }
});
