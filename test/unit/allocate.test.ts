import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseNetworkConfig } from '../../src/config/netconf.js';
import { formatCIDR, mustParseIP, parseCIDR } from '../../src/ip/index.js';
import type { IPNet } from '../../src/ip/index.js';
import { acquireFromStore, NoSubnetsLeftError, planAcquisition } from '../../src/subnet/allocate.js';
import type { LeaseStoreOps } from '../../src/subnet/allocate.js';
import type { Lease, LeaseAttrs } from '../../src/subnet/types.js';

const cidr = (s: string): IPNet => {
  const n = parseCIDR(s);
  assert.ok(n);
  return n;
};
const config = parseNetworkConfig('{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}');
const me: LeaseAttrs = { publicIP: mustParseIP('198.18.0.11'), backendType: 'vxlan' };
const lease = (sn: string, pub: string): Lease => ({
  subnet: cidr(sn),
  attrs: { publicIP: mustParseIP(pub), backendType: 'vxlan' },
  expiration: new Date(Date.now() + 60_000),
});

describe('planAcquisition', () => {
  test('previous subnet, free → create it', () => {
    const { plan } = planAcquisition({ config, leases: [lease('198.19.5.0/24', '198.18.0.12')], attrs: me, previousSubnet: cidr('198.19.90.0/24') });
    assert.equal(plan.kind, 'create');
    assert.equal(plan.kind === 'create' && plan.subnet && formatCIDR(plan.subnet), '198.19.90.0/24');
  });
  test('previous subnet held by us → re-attach', () => {
    const { plan } = planAcquisition({ config, leases: [lease('198.19.90.0/24', '198.18.0.11')], attrs: me, previousSubnet: cidr('198.19.90.0/24') });
    assert.equal(plan.kind, 'reattach');
    assert.equal(plan.kind === 'reattach' && plan.reason, 'previous subnet');
  });
  test('previous subnet held by another node → our public-IP lease', () => {
    const leases = [lease('198.19.90.0/24', '198.18.0.12'), lease('198.19.7.0/24', '198.18.0.11')];
    const { plan } = planAcquisition({ config, leases, attrs: me, previousSubnet: cidr('198.19.90.0/24') });
    assert.equal(plan.kind, 'reattach');
    assert.equal(plan.kind === 'reattach' && plan.lease.subnet && formatCIDR(plan.lease.subnet), '198.19.7.0/24');
  });
  test("flannel's order: our public-IP lease wins over a free previous subnet (no second lease)", () => {
    const { plan } = planAcquisition({ config, leases: [lease('198.19.7.0/24', '198.18.0.11')], attrs: me, previousSubnet: cidr('198.19.90.0/24') });
    assert.equal(plan.kind, 'reattach');
    assert.equal(plan.kind === 'reattach' && plan.reason, 'same public IP');
    assert.equal(plan.kind === 'reattach' && plan.lease.subnet && formatCIDR(plan.lease.subnet), '198.19.7.0/24');
  });
  test('several leases with our IP: the one from subnet.env is preferred', () => {
    const leases = [lease('198.19.7.0/24', '198.18.0.11'), lease('198.19.90.0/24', '198.18.0.11')];
    const { plan } = planAcquisition({ config, leases, attrs: me, previousSubnet: cidr('198.19.90.0/24') });
    assert.equal(plan.kind === 'reattach' && plan.lease.subnet && formatCIDR(plan.lease.subnet), '198.19.90.0/24');
  });
  test('previous subnet outside the range is ignored', () => {
    const { plan } = planAcquisition({ config, leases: [], attrs: me, previousSubnet: cidr('198.19.0.0/24'), random: () => 0 });
    assert.equal(plan.kind === 'create' && plan.reason, 'free subnet');
    assert.equal(plan.kind === 'create' && plan.subnet && formatCIDR(plan.subnet), '198.19.1.0/24');
  });
  test('own lease that no longer fits the config is reported for deletion', () => {
    const r = planAcquisition({ config, leases: [lease('198.19.0.0/25', '198.18.0.11')], attrs: me, random: () => 0 });
    assert.equal(r.incompatibleOwn.length, 1);
    assert.equal(r.plan.kind, 'create');
  });
  test('random pick skips taken subnets', () => {
    const { plan } = planAcquisition({ config, leases: [lease('198.19.1.0/24', '198.18.0.12')], attrs: me, random: () => 0 });
    assert.equal(plan.kind === 'create' && plan.subnet && formatCIDR(plan.subnet), '198.19.2.0/24');
  });
  test('full range is a clear error', () => {
    const small = parseNetworkConfig('{"Network":"198.19.0.0/28"}');
    const leases = ['198.19.0.4/30', '198.19.0.8/30', '198.19.0.12/30'].map((s, i) => lease(s, `198.18.0.${20 + i}`));
    assert.throws(() => planAcquisition({ config: small, leases, attrs: me }), (e: unknown) => {
      assert.ok(e instanceof NoSubnetsLeftError);
      assert.equal(e.message, 'no subnets left in 198.19.0.0/28 between 198.19.0.4 and 198.19.0.12 (/30, 3 leases held): widen the network or SubnetMin/SubnetMax, or remove stale leases');
      return true;
    });
  });
  test('dual stack picks both families', () => {
    const ds = parseNetworkConfig('{"Network":"198.19.0.0/16","EnableIPv6":true,"IPv6Network":"2001:db8:1::/48"}');
    const { plan } = planAcquisition({ config: ds, leases: [], attrs: { ...me, publicIPv6: mustParseIP('2001:db8::11') }, random: () => 0 });
    assert.equal(plan.kind === 'create' && plan.ipv6Subnet && formatCIDR(plan.ipv6Subnet), '2001:db8:1:1::/64');
  });
});

describe('acquireFromStore', () => {
  test('a lost race picks again', async () => {
    const held: Lease[] = [];
    let races = 2;
    const store: LeaseStoreOps = {
      list: async () => [...held],
      createIfAbsent: async (subnet, _v6, attrs) => {
        if (races-- > 0) {
          // Another node takes exactly this subnet just before us.
          held.push({ subnet, attrs: { publicIP: mustParseIP('198.18.0.99'), backendType: 'vxlan' }, expiration: new Date() });
          return undefined;
        }
        const l: Lease = { subnet, attrs, expiration: new Date() };
        held.push(l);
        return l;
      },
      reattach: async (l) => l,
      remove: async () => {},
    };
    const got = await acquireFromStore(store, config, me, {}, () => 0);
    assert.equal(got.subnet && formatCIDR(got.subnet), '198.19.3.0/24');
  });
  test('gives up after the retry limit', async () => {
    const store: LeaseStoreOps = { list: async () => [], createIfAbsent: async () => undefined, reattach: async (l) => l, remove: async () => {} };
    await assert.rejects(acquireFromStore(store, config, me), /max retries \(10\)/);
  });
});
