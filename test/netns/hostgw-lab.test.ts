// host-gw with real flanneld processes: one segment (IPv4 + IPv6), and a routed lab where a peer
// behind the router cannot be reached by host-gw and is reported instead.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, type LabNode } from '../../src/lab/lab.js';
import { need, rootAndNetns, suiteNeeds } from '../helpers/prereq.js';
import { assertAllPairs, deleteLease, eventually, routesOn, subnetAddr } from '../helpers/lab-probe.js';
import { sleep } from '../../src/util/sleep.js';
import { useLab } from '../helpers/lab.js';

const reqs = [rootAndNetns()];
const RECONCILE_MS = 15_000;

const overlayRoutes = (n: LabNode, fam: 4 | 6 = 4): string[] =>
  routesOn(n, 'eth0', fam).filter((l) => (fam === 4 ? l.startsWith('198.19.') : l.startsWith('2001:db8:100:'))).sort();
const expectedRoutes = (a: LabNode, peers: LabNode[], fam: 4 | 6 = 4): string[] =>
  peers.map((b) => (fam === 4 ? `${subnetAddr(b.subnetEnv.FLANNEL_SUBNET!)}/24 via ${b.underlayIP}` : `${subnetAddr(b.subnetEnv.FLANNEL_IPV6_SUBNET!)}/64 via ${b.underlayIPv6!}`)).sort();

describe('host-gw lab: 3 nodes on one segment, IPv4 + IPv6', suiteNeeds(...reqs), () => {
  let lab: Lab;
  useLab({ nodes: 3, backend: 'host-gw', ipv6: true, startTimeoutSec: 30 }, (l) => (lab = l));

  test('MTU is the external MTU; each node routes every peer subnet via the peer\'s address on eth0', (t) => {
    if (!need(t, ...reqs)) return;
    for (const a of lab.nodes) {
      assert.equal(a.subnetEnv.FLANNEL_MTU, '1500');
      const peers = lab.nodes.filter((b) => b !== a);
      assert.deepEqual(overlayRoutes(a), expectedRoutes(a, peers), a.name);
      assert.deepEqual(overlayRoutes(a, 6), expectedRoutes(a, peers, 6), a.name);
    }
  });

  test('all pod pairs reach each other over IPv4 and IPv6', async (t) => {
    if (!need(t, ...reqs)) return;
    await assertAllPairs(lab, 12);
  });

  test('routes deleted or changed by hand are repaired within one reconcile pass', async (t) => {
    if (!need(t, ...reqs)) return;
    const [a, b, c] = lab.nodes as [LabNode, LabNode, LabNode];
    const want4 = expectedRoutes(a, [b, c]);
    const want6 = expectedRoutes(a, [b, c], 6);
    a.ns.ip('route', 'del', `${subnetAddr(b.subnetEnv.FLANNEL_SUBNET!)}/24`);
    a.ns.ip('route', 'replace', `${subnetAddr(c.subnetEnv.FLANNEL_SUBNET!)}/24`, 'via', '198.18.0.99', 'dev', 'eth0');
    a.ns.ip('-6', 'route', 'del', `${subnetAddr(b.subnetEnv.FLANNEL_IPV6_SUBNET!)}/64`);
    a.ns.ip('route', 'add', '198.19.251.0/24', 'via', '198.18.0.98', 'dev', 'eth0');
    assert.notDeepEqual(overlayRoutes(a), want4);
    assert.ok(await eventually(() => JSON.stringify([overlayRoutes(a), overlayRoutes(a, 6)]) === JSON.stringify([want4, want6]), RECONCILE_MS), JSON.stringify(overlayRoutes(a)));
    assert.match(lab.daemonLog(a), /Replacing existing route to .* via 198\.18\.0\.99 dev eth0/);
    assert.ok((await lab.ping(a, c, 4, c.podIP)).ok);
  });

  test('a removed lease leaves no route behind', async (t) => {
    if (!need(t, ...reqs)) return;
    const [a, b, c] = lab.nodes as [LabNode, LabNode, LabNode];
    await lab.stopDaemon(c, 'SIGTERM');
    assert.ok(deleteLease(lab, c).length > 0);
    assert.ok(await eventually(() => JSON.stringify(overlayRoutes(a)) === JSON.stringify(expectedRoutes(a, [b])) && !overlayRoutes(b).join().includes(c.underlayIP), RECONCILE_MS));
    assert.deepEqual(overlayRoutes(a, 6), expectedRoutes(a, [b], 6));
  });
});

describe('host-gw lab across a router: an unreachable peer is an error logged once', suiteNeeds(...reqs), () => {
  let lab: Lab;
  useLab({ nodes: 3, backend: 'host-gw', ipv6: false, routed: true, startTimeoutSec: 30 }, (l) => (lab = l));

  test('n1 and n2 share a segment and talk; n3 behind the router gets no route and one clear error', async (t) => {
    if (!need(t, ...reqs)) return;
    const [a, b, c] = lab.nodes as [LabNode, LabNode, LabNode];
    assert.equal(c.segment, 1);
    assert.ok((await lab.ping(a, b, 4, b.podIP)).ok);
    assert.deepEqual(overlayRoutes(a), expectedRoutes(a, [b]));
    // Let two reconcile passes run: the error must still have been logged only once.
    await sleep(21_000);
    const errors = lab.daemonLog(a).split('\n').filter((l) => l.includes(`host-gw: peer ${c.underlayIP}`));
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0]!, /^E.*is not directly reachable on eth0: the kernel routes it via 198\.18\.0\.254; host-gw needs every node on one L2 segment/);
  });
});
