// -ip-blackhole-route: a blackhole route per enabled family for our own subnet, added at start and
// whenever missing on the resync tick, never removed; a persisting failure is logged once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlackholeRoutes } from '../../src/blackhole.js';
import { parseNetworkConfig } from '../../src/config/netconf.js';
import { formatCIDR, parseCIDR } from '../../src/ip/index.js';
import { nl } from '../../src/netlink/index.js';
import type { Lease } from '../../src/subnet/types.js';
import { sleep } from '../../src/util/sleep.js';
import { FakeKernel } from '../helpers/fake-kernel.js';
import { captureLogs } from '../helpers/logs.js';

const dual = parseNetworkConfig('{"Network":"198.19.0.0/16","EnableIPv6":true,"IPv6Network":"2001:db8:100::/56","Backend":{"Type":"vxlan"}}');
const lease: Lease = { subnet: parseCIDR('198.19.5.0/24'), ipv6Subnet: parseCIDR('2001:db8:100:5::/64'), attrs: { backendType: 'vxlan' }, expiration: new Date() };
const blackholes = (k: FakeKernel, f: 4 | 6): string[] => k.listRoutes(f).filter((r) => r.type === nl.RTN_BLACKHOLE).map((r) => formatCIDR(r.dst));

test('blackhole routes for both families at start, re-added on the tick after deletion, left in place at stop', async () => {
  const { lines, restore } = captureLogs();
  const k = new FakeKernel();
  const b = new BlackholeRoutes(k, 0.02);
  try {
    b.start(dual, lease);
    assert.deepEqual([blackholes(k, 4), blackholes(k, 6)], [['198.19.5.0/24'], ['2001:db8:100:5::/64']], 'added at start, not one period later');
    assert.equal(b.ensure(), 0, 'present: nothing to add');
    k.routes = k.routes.filter((r) => r.family !== 4);
    for (let i = 0; i < 100 && blackholes(k, 4).length === 0; i++) await sleep(10);
    assert.deepEqual(blackholes(k, 4), ['198.19.5.0/24'], 're-added by the periodic check');
    b.stop();
    assert.deepEqual(blackholes(k, 6), ['2001:db8:100:5::/64'], 'never removed');
    assert.ok(lines.some((l) => l.includes('Added blackhole route for 198.19.5.0/24')));
  } finally {
    b.stop();
    restore();
  }
});

test('only the enabled families; a route the kernel refuses is logged once while it persists', () => {
  const { lines, restore } = captureLogs();
  const k = new FakeKernel();
  // A unicast route for the whole subnet (a bridge address) makes the kernel answer EEXIST.
  k.addRoute({ dst: parseCIDR('198.19.5.0/24')!, oif: 7 });
  const b = new BlackholeRoutes(k, 3600);
  try {
    b.start(parseNetworkConfig('{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}'), lease);
    b.ensure();
    b.ensure();
    assert.deepEqual(blackholes(k, 6), []);
    const errs = lines.filter((l) => l.startsWith('E') && l.includes('Failed to setup blackhole route for 198.19.5.0/24'));
    assert.equal(errs.length, 1, lines.join('\n'));
    assert.match(errs[0]!, /EEXIST.*CNI bridge address/);
    assert.equal(b.counters.errors, 3);
  } finally {
    b.stop();
    restore();
  }
});
