// The vxlan backend's userspace VTEP mode with in-memory doubles: what it advertises, how it sets up
// the TUN and the engine, the peer table built from kernel vxlan peers' leases, DirectRouting, and
// the fallback when the kernel cannot create VXLAN devices.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNetworkConfig } from '../../src/config/netconf.js';
import { mustParseIP, parseCIDR } from '../../src/ip/index.js';
import { vxlanBackendFactory, type VxlanPlatform } from '../../src/backend/vxlan/vxlan-backend.js';
import { userspaceVtepMac } from '../../src/backend/vxlan/vxlan-userspace.js';
import { withFailpoints } from '../../src/backend/kernel-ops.js';
import type { DataPlaneOptions } from '../../src/backend/tun/data-plane.js';
import type { Backend, RunningNetwork } from '../../src/backend/types.js';
import type { Lease } from '../../src/subnet/types.js';
import { setLogSink } from '../../src/log.js';
import { FakeKernel, kernelWithEth0 } from '../helpers/fake-kernel.js';
import { FakeLinks, FakePlane } from '../helpers/fake-plane.js';

const MAC_A = '0a:00:00:00:00:0a';
const MAC_B = '0a:00:00:00:00:0b';

function quietLogs(): { lines: string[]; restore: () => void } {
  const lines: string[] = [];
  const prev = setLogSink((l) => lines.push(l));
  return { lines, restore: () => setLogSink(prev) };
}

function setup(opts: { env?: NodeJS.ProcessEnv; force?: boolean; userspace?: boolean } = {}) {
  const { k, ext } = kernelWithEth0('2001:db8::b');
  const plane = new FakePlane('flannel.1', 9);
  const links = new FakeLinks();
  const opened: DataPlaneOptions[] = [];
  const platform: VxlanPlatform = {
    ops: () => withFailpoints(k, opts.env ?? {}),
    newMac: () => '0a:00:00:00:00:01',
    forceUserspace: opts.force,
    userspace: opts.userspace === false ? undefined : { openDataPlane: (o) => (opened.push(o), plane), links: () => links },
  };
  return { k, ext, plane, links, opened, platform };
}

async function backendFor(s: ReturnType<typeof setup>, backend: string, ipv6 = false): Promise<{ be: Backend; start: () => Promise<RunningNetwork> }> {
  const config = parseNetworkConfig(`{"Network":"198.19.0.0/16"${ipv6 ? ',"EnableIPv6":true,"IPv6Network":"2001:db8:100::/48"' : ''},"Backend":${backend}}`);
  const be = await vxlanBackendFactory(s.platform)({ config, extIface: s.ext });
  const lease: Lease = {
    subnet: parseCIDR('198.19.90.0/24'),
    ipv6Subnet: ipv6 ? parseCIDR('2001:db8:100:5a::/64') : undefined,
    attrs: { backendType: 'vxlan' },
    expiration: new Date(),
  };
  return { be, start: () => be.start(lease) };
}

const peer = (sub: string, pub: string, mac: string | undefined, extra: Partial<Lease['attrs']> = {}, sub6?: string): Lease => ({
  subnet: parseCIDR(sub),
  ipv6Subnet: sub6 ? parseCIDR(sub6) : undefined,
  attrs: { publicIP: mustParseIP(pub), backendType: 'vxlan', backendData: mac === undefined ? undefined : { VNI: 1, VtepMAC: mac }, ...extra },
  expiration: new Date(Date.now() + 3600_000),
});

test('Userspace: true advertises a vxlan lease with a stable VtepMAC and sets up the TUN and engine like flannel.1', async () => {
  const { restore } = quietLogs();
  try {
    const s = setup();
    const { be, start } = await backendFor(s, '{"Type":"vxlan","Userspace":true}');
    const mac = userspaceVtepMac(1, s.ext);
    assert.match(mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    assert.equal(parseInt(mac.slice(0, 2), 16) & 0x03, 0x02, 'locally administered unicast');
    assert.equal(be.type, 'vxlan');
    assert.deepEqual(be.backendData(), { VNI: 1, VtepMAC: mac });
    assert.equal(be.backendV6Data(), undefined);
    // Stable across restarts, different per node.
    assert.equal(userspaceVtepMac(1, s.ext), mac);
    assert.notEqual(userspaceVtepMac(1, { ...s.ext, publicIP: mustParseIP('198.18.0.12') }), mac);
    assert.notEqual(userspaceVtepMac(2, s.ext), mac);
    const net = await start();
    assert.equal([...s.k.links.values()].filter((l) => l.kind === 'vxlan').length, 0, 'no kernel vxlan device');
    assert.deepEqual(s.opened, [
      { tunName: 'flannel.1', bindV4: '198.18.0.11', bindV6: undefined, port: 8472, allowUnknownSource: false, offload: true, vxlan: { vni: 1, mac, vtep4: '198.19.90.0', sendSockets: 8, innerMtu: 1450 } },
    ]);
    assert.equal(net.mtu, 1450);
    assert.equal(s.links.mtu.get(9), 1450);
    assert.deepEqual([...s.links.addrs], ['9 198.19.90.0/32']);
    assert.deepEqual([...s.links.routes], ['9 198.19.0.0/16']);
    assert.ok(s.plane.started);
    assert.deepEqual(net.stats().mode, 'userspace');
    await net.close();
    assert.ok(s.plane.closed);
  } finally {
    restore();
  }
});

test('dual stack: v6 VtepMAC, /128 address and network route, MTU for the IPv6 underlay, Port and VNI reach the engine', async () => {
  const { restore } = quietLogs();
  try {
    const s = setup();
    const { be, start } = await backendFor(s, '{"Type":"vxlan","Userspace":true,"VNI":7,"Port":4789}', true);
    const mac = userspaceVtepMac(7, s.ext);
    assert.deepEqual(be.backendV6Data(), { VNI: 7, VtepMAC: mac });
    const net = await start();
    assert.equal(s.opened[0]?.tunName, 'flannel.7');
    assert.equal(s.opened[0]?.port, 4789);
    assert.equal(s.opened[0]?.bindV6, '2001:db8::b');
    assert.equal(s.opened[0]?.vxlan?.vni, 7);
    assert.equal(s.opened[0]?.vxlan?.innerMtu, 1430);
    assert.equal(net.mtu, 1430, 'IPv6 outer header: 70 bytes, as the kernel caps flannel-v6');
    assert.deepEqual([...s.links.addrs].sort(), ['9 198.19.90.0/32', '9 2001:db8:100:5a::/128']);
    assert.deepEqual([...s.links.routes].sort(), ['9 198.19.0.0/16', '9 2001:db8:100::/48']);
    // A kernel peer's lease: one engine row per family, to its public address of that family, with its MACs.
    await net.handle([
      {
        type: 'added',
        lease: peer('198.19.5.0/24', '198.18.0.12', MAC_A, { publicIPv6: mustParseIP('2001:db8::c'), backendV6Data: { VNI: 7, VtepMAC: MAC_B } }, '2001:db8:100:5::/64'),
      },
    ]);
    assert.deepEqual(s.plane.peers, [
      { subnet: '198.19.5.0/24', publicIP: '198.18.0.12', port: 4789, mac: MAC_A },
      { subnet: '2001:db8:100:5::/64', publicIP: '2001:db8::c', port: 4789, mac: MAC_B },
    ]);
  } finally {
    restore();
  }
});

test('peer leases: kernel vxlan peers become engine rows, others are skipped with flannel\'s log line, removal drops the row', async () => {
  const { lines, restore } = quietLogs();
  try {
    const s = setup();
    const net = await (await backendFor(s, '{"Type":"vxlan","Userspace":true}')).start();
    const a = peer('198.19.5.0/24', '198.18.0.12', MAC_A);
    const b = peer('198.19.6.0/24', '198.18.1.12', 'AA-00-00-00-00-0B');
    const udp = peer('198.19.7.0/24', '198.18.0.13', undefined, { backendType: 'udp' });
    const broken = peer('198.19.8.0/24', '198.18.0.14', 'not-a-mac');
    await net.handle(['added', 'added', 'added', 'added'].map((type, i) => ({ type: type as 'added', lease: [a, b, udp, broken][i]! })));
    assert.deepEqual(s.plane.peers, [
      { subnet: '198.19.5.0/24', publicIP: '198.18.0.12', port: 8472, mac: MAC_A },
      { subnet: '198.19.6.0/24', publicIP: '198.18.1.12', port: 8472, mac: 'aa:00:00:00:00:0b' },
    ]);
    assert.ok(lines.some((l) => l.includes('ignoring non-vxlan v4Subnet(198.19.7.0/24)')));
    assert.ok(lines.some((l) => l.includes('198.19.8.0/24') && l.includes('not a MAC address')));
    await net.handle([{ type: 'removed', lease: a }]);
    assert.deepEqual(s.plane.peers.map((p) => p.subnet), ['198.19.6.0/24']);
    // Reconcile rebuilds from the full lease set (a missed removal is repaired) and restores the TUN's routes.
    s.links.routes.clear();
    assert.equal(await net.reconcile([a]), 1);
    assert.deepEqual(s.plane.peers.map((p) => p.subnet), ['198.19.5.0/24']);
    assert.deepEqual(s.k.routeLines(), [], 'no kernel routes without DirectRouting');
  } finally {
    restore();
  }
});

test('DirectRouting: a peer on our segment gets a kernel route via its PublicIP instead of an engine row; reconcile repairs it', async () => {
  const { restore } = quietLogs();
  try {
    const s = setup();
    const net = await (await backendFor(s, '{"Type":"vxlan","Userspace":true,"DirectRouting":true}')).start();
    const near = peer('198.19.5.0/24', '198.18.0.12', MAC_A);
    const far = peer('198.19.6.0/24', '198.18.1.12', MAC_B);
    await net.handle([
      { type: 'added', lease: near },
      { type: 'added', lease: far },
    ]);
    assert.deepEqual(s.k.routeLines(), ['198.19.5.0/24 via 198.18.0.12 dev eth0']);
    assert.deepEqual(s.plane.peers.map((p) => p.subnet), ['198.19.6.0/24']);
    assert.equal(await net.reconcile([near, far]), 0);
    s.k.delRoute({ dst: parseCIDR('198.19.5.0/24')! });
    s.k.addRoute({ dst: parseCIDR('198.19.9.0/24')!, gateway: mustParseIP('198.18.0.99'), oif: 2 });
    assert.equal(await net.reconcile([near, far]), 2, 'one route re-added, one stale route removed');
    assert.deepEqual(s.k.routeLines(), ['198.19.5.0/24 via 198.18.0.12 dev eth0']);
    await net.handle([{ type: 'removed', lease: near }]);
    assert.deepEqual(s.k.routeLines(), []);
    assert.equal(net.stats().directPeers, 0);
  } finally {
    restore();
  }
});

test('fallback: a kernel without VXLAN (EOPNOTSUPP creating flannel.1) gets the userspace VTEP, logged; other errors stay fatal', async () => {
  const { lines, restore } = quietLogs();
  try {
    const s = setup({ env: { FLANNELTS_FAILPOINTS: 'vxlan-link-create=EOPNOTSUPP' } });
    const { be, start } = await backendFor(s, '{"Type":"vxlan"}');
    assert.deepEqual(be.backendData(), { VNI: 1, VtepMAC: userspaceVtepMac(1, s.ext) });
    assert.ok(lines.some((l) => l.includes('EOPNOTSUPP') && l.includes('falling back to the userspace VXLAN VTEP')), lines.join('\n'));
    const net = await start();
    assert.equal(net.stats().mode, 'userspace');
    assert.equal(s.opened.length, 1);
    // EPERM is not "no VXLAN in this kernel": no silent fallback.
    const denied = setup({ env: { FLANNELTS_FAILPOINTS: 'vxlan-link-create=EPERM' } });
    await assert.rejects(backendFor(denied, '{"Type":"vxlan"}'), /EPERM/);
    // Without the userspace parts (another platform) the kernel's error is the daemon's error.
    const bare = setup({ env: { FLANNELTS_FAILPOINTS: 'vxlan-link-create=EOPNOTSUPP' }, userspace: false });
    await assert.rejects(backendFor(bare, '{"Type":"vxlan"}'), /EOPNOTSUPP/);
  } finally {
    restore();
  }
});

test('-vxlan-userspace forces the VTEP whatever net-conf says, and removes a kernel flannel.1 left from an earlier run', async () => {
  const { lines, restore } = quietLogs();
  try {
    const s = setup({ force: true });
    const old = s.k.addVxlanLink({ name: 'flannel.1', vni: 1, port: 0, learning: false, gbp: false, link: 2, mtu: 1450, mac: MAC_A, udpCsum: true });
    const { start } = await backendFor(s, '{"Type":"vxlan"}');
    await start();
    assert.equal(s.k.findLink(old.index), undefined, 'the kernel device is gone');
    assert.ok(lines.some((l) => l.includes('-vxlan-userspace')));
    assert.ok(lines.some((l) => l.includes('removing vxlan device flannel.1')));
  } finally {
    restore();
  }
});

test('failpoints: unset or malformed FLANNELTS_FAILPOINTS leaves the kernel operations untouched', () => {
  const k = new FakeKernel();
  assert.equal(withFailpoints(k, {}), k);
  assert.equal(withFailpoints(k, { FLANNELTS_FAILPOINTS: 'garbage,=x,vxlan-link-create=' }), k);
  const failing = withFailpoints(k, { FLANNELTS_FAILPOINTS: 'other=1, vxlan-link-create=EOPNOTSUPP' });
  assert.throws(
    () => failing.addVxlanLink({ name: 'flannel.1', vni: 1, port: 0, learning: false, gbp: false, link: 2, mtu: 1450, mac: MAC_A, udpCsum: true }),
    (e: Error & { code?: string }) => e.code === 'EOPNOTSUPP' && /flannel\.1/.test(e.message),
  );
});
