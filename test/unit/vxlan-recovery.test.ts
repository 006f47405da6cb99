// vxlan device re-creation beyond flannel's: a deleted flannel.<VNI> / flannel-v6.<VNI>, or one the
// kernel deleted with its external interface, comes back with its MAC, address, routes, neighbours and
// FDB entries as soon as a link notification says so (and the interface is back), retried with backoff.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNetworkConfig } from '../../src/config/netconf.js';
import { formatIP, mustParseIP, parseCIDR } from '../../src/ip/index.js';
import { vxlanBackendFactory } from '../../src/backend/vxlan/vxlan-backend.js';
import { VxlanNetwork } from '../../src/backend/vxlan/vxlan-kernel.js';
import { concernsDevices, DeviceRecovery } from '../../src/backend/vxlan/vxlan-recovery.js';
import type { ExternalInterface } from '../../src/backend/types.js';
import type { LinkEvent, Link } from '../../src/netlink/index.js';
import type { Lease } from '../../src/subnet/types.js';
import { sleep } from '../../src/util/sleep.js';
import { FakeKernel } from '../helpers/fake-kernel.js';
import { captureLogs } from '../helpers/logs.js';

const OUR_MAC = '0a:00:00:00:00:01';
const OUR_MAC6 = '0a:00:00:00:00:02';
const PEER_MAC = '0a:00:00:00:00:0a';

function eth0(k: FakeKernel, index: number, v4 = '198.18.0.11', v6 = '2001:db8::b'): void {
  k.addPlainLink('eth0', 1500, index);
  k.addAddr(index, mustParseIP(v4), 24);
  k.addAddr(index, mustParseIP(v6), 64);
}

/** A dual-stack vxlan network on eth0 (index 2) with one peer, and a link-notification source the test drives. */
async function setup(): Promise<{ k: FakeKernel; ext: ExternalInterface; net: VxlanNetwork; peer: Lease; emit: (e: LinkEvent) => void }> {
  const k = new FakeKernel();
  eth0(k, 2);
  const ext: ExternalInterface = { name: 'eth0', index: 2, mtu: 1500, ifaceAddr: mustParseIP('198.18.0.11'), publicIP: mustParseIP('198.18.0.11'), ifaceAddrV6: mustParseIP('2001:db8::b'), publicIPv6: mustParseIP('2001:db8::b') };
  const config = parseNetworkConfig('{"Network":"198.19.0.0/16","EnableIPv6":true,"IPv6Network":"2001:db8:100::/56","Backend":{"Type":"vxlan"}}');
  const macs = [OUR_MAC, OUR_MAC6];
  let sink: (e: LinkEvent) => void = () => {};
  const be = await vxlanBackendFactory({ ops: () => k, newMac: () => macs.shift()!, watchLinks: (cb) => ((sink = cb), { close: () => {} }) })({ config, extIface: ext });
  const net = (await be.start({ subnet: parseCIDR('198.19.90.0/24'), ipv6Subnet: parseCIDR('2001:db8:100:5a::/64'), attrs: { backendType: 'vxlan' }, expiration: new Date() })) as VxlanNetwork;
  const peer: Lease = {
    subnet: parseCIDR('198.19.5.0/24'),
    ipv6Subnet: parseCIDR('2001:db8:100:5::/64'),
    attrs: { publicIP: mustParseIP('198.18.0.12'), publicIPv6: mustParseIP('2001:db8::c'), backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: PEER_MAC }, backendV6Data: { VNI: 1, VtepMAC: PEER_MAC } },
    expiration: new Date(Date.now() + 3600_000),
  };
  await net.handle([{ type: 'added', lease: peer }]);
  return { k, ext, net, peer, emit: (e) => sink(e) };
}

const state = (k: FakeKernel): string[][] => [[...k.routeLines(4), ...k.routeLines(6)], k.neighLines(), k.fdbLines()].map((x) => [...x].sort());
const linkEvent = (kind: 'new' | 'del', l: Pick<Link, 'name' | 'index'>): LinkEvent => ({ kind, link: { flags: 0, up: false, mtu: 1500, ...l } });

async function until(check: () => boolean, ms = 2000): Promise<boolean> {
  for (let t = 0; t < ms; t += 10) {
    if (check()) return true;
    await sleep(10);
  }
  return check();
}

test('flannel.1 and flannel-v6.1 deleted by hand: back on the notification with MAC, address and entries', async () => {
  const { restore } = captureLogs();
  const { k, net, emit } = await setup();
  try {
    const before = state(k);
    assert.equal(before[0]!.length, 2, 'a v4 and a v6 route');
    for (const name of ['flannel.1', 'flannel-v6.1']) {
      const dev = k.findLink(name)!;
      k.deleteLink(dev.index);
      emit(linkEvent('del', dev));
    }
    assert.ok(await until(() => k.findLink('flannel.1') !== undefined && k.findLink('flannel-v6.1') !== undefined && state(k)[2]!.length === 2));
    assert.equal(k.findLink('flannel.1')!.mac, OUR_MAC);
    assert.equal(k.findLink('flannel-v6.1')!.mac, OUR_MAC6);
    assert.deepEqual(state(k), before);
  } finally {
    await net.close();
    restore();
  }
});

test('the external interface deleted (taking the devices with it) and re-added: devices follow its new index, entries restored, retried meanwhile', async () => {
  const { lines, restore } = captureLogs();
  const { k, ext, net, emit } = await setup();
  try {
    const before = state(k);
    k.deleteLink(2);
    assert.equal(k.findLink('flannel.1'), undefined, 'the kernel deleted the vxlan devices with eth0');
    emit(linkEvent('del', { name: 'eth0', index: 2 }));
    assert.ok(await until(() => lines.some((l) => l.includes('could not restore the vxlan devices: external interface eth0 not found'))));
    eth0(k, 7);
    // The retry (backoff) finds it without another notification.
    assert.ok(await until(() => k.findLink('flannel.1')?.vxlan?.link === 7 && k.findLink('flannel-v6.1')?.vxlan?.link === 7, 3000), lines.join('\n') + JSON.stringify([...k.links.values()].map((l) => [l.name, l.index, l.vxlan?.link])));
    assert.equal(ext.index, 7);
    assert.equal(k.findLink('flannel.1')!.mac, OUR_MAC);
    assert.equal(formatIP(k.findLink('flannel.1')!.vxlan!.local!), '198.18.0.11');
    assert.ok(await until(() => state(k)[2]!.length === 2), JSON.stringify(state(k)) + lines.join('\n'));
    assert.deepEqual(state(k), before);
  } finally {
    await net.close();
    restore();
  }
});

test('the external interface back with another address: the device uses it, and says the lease is stale', async () => {
  const { lines, restore } = captureLogs();
  const { k, net, peer } = await setup();
  try {
    k.deleteLink(2);
    eth0(k, 8, '198.18.0.21', '2001:db8::15');
    await net.reconcile([peer]);
    assert.equal(formatIP(k.findLink('flannel.1')!.vxlan!.local!), '198.18.0.21');
    assert.equal(formatIP(k.findLink('flannel-v6.1')!.vxlan!.local!), '2001:db8::15');
    assert.ok(lines.some((l) => l.startsWith('W') && l.includes('came back without 198.18.0.11') && l.includes('lease still advertises')));
  } finally {
    await net.close();
    restore();
  }
});

test('which notifications matter: our devices deleted or replaced, the external interface gone or re-created, lost notifications', () => {
  const ext: ExternalInterface = { name: 'eth0', index: 2, mtu: 1500 };
  const devs = [{ name: 'flannel.1', index: 10, mac: OUR_MAC, mtu: 1450 }];
  assert.equal(concernsDevices(linkEvent('del', { name: 'flannel.1', index: 10 }), devs, ext), true);
  assert.equal(concernsDevices(linkEvent('new', { name: 'flannel.1', index: 10 }), devs, ext), false, 'our own device changing state');
  assert.equal(concernsDevices(linkEvent('new', { name: 'flannel.1', index: 11 }), devs, ext), true, 'replaced by someone');
  assert.equal(concernsDevices(linkEvent('del', { name: 'eth0', index: 2 }), devs, ext), true);
  assert.equal(concernsDevices(linkEvent('new', { name: 'eth0', index: 2 }), devs, ext), false);
  assert.equal(concernsDevices(linkEvent('new', { name: 'eth0', index: 9 }), devs, ext), true, 're-created');
  assert.equal(concernsDevices(linkEvent('del', { name: 'veth7', index: 30 }), devs, ext), false);
  assert.equal(concernsDevices({ kind: 'resync', reason: 'ENOBUFS' }, devs, ext), true);
});

test('recovery retries with doubling backoff until the repair succeeds, and stops on close', async () => {
  const { restore } = captureLogs();
  let sink: (e: LinkEvent) => void = () => {};
  let closed = false;
  const attempts: number[] = [];
  let okAfter = 3;
  const r = new DeviceRecovery(() => true, async () => (attempts.push(Date.now()), --okAfter <= 0), { settleMs: 1, initialBackoffMs: 20, maxBackoffMs: 40 });
  try {
    r.start((cb) => ((sink = cb), { close: () => (closed = true) }));
    sink({ kind: 'resync', reason: 'ENOBUFS' });
    assert.ok(await until(() => attempts.length === 3));
    await sleep(100);
    assert.equal(attempts.length, 3, 'no more attempts once healthy');
    assert.ok(attempts[2]! - attempts[1]! >= 35, 'the second wait is doubled');
    assert.equal(r.counters.retries, 2);
  } finally {
    r.close();
    restore();
  }
  assert.ok(closed);
});
