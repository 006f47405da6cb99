// Three real flanneld processes in kube mode (-kube-subnet-mgr against the fake API server running in
// the lab's underlay namespace), udp backend, IPv4 + IPv6, with pods; all pairs must pass.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Lab } from '../../src/lab/lab.js';
import { isAlive } from '../../src/util/process.js';
import { need, rootAndNetns, suiteNeeds } from '../helpers/prereq.js';
import { useLab } from '../helpers/lab.js';
import { assertAllPairs } from '../helpers/lab-probe.js';
import { echoes, firstFailure, NET_UNREACHABLE } from '../helpers/echo.js';
import { sleep } from '../../src/util/sleep.js';

const P = 'flannel.alpha.coreos.com/';

interface NodeJson {
  metadata: { name: string; annotations?: Record<string, string> };
  status?: { conditions?: Array<Record<string, string>> };
}

describe('udp lab in kube mode: 3 nodes, IPv4 + IPv6', suiteNeeds(rootAndNetns()), () => {
  let lab: Lab;

  useLab({ nodes: 3, backend: 'udp', ipv6: true, store: 'kube', startTimeoutSec: 30 }, (l) => (lab = l));

  test('every node\'s lease is its podCIDRs', (t) => {
    if (!need(t, rootAndNetns())) return;
    lab.nodes.forEach((n, k) => {
      assert.equal(n.subnetEnv.FLANNEL_NETWORK, '198.19.0.0/16');
      assert.equal(n.subnetEnv.FLANNEL_SUBNET, `198.19.${k + 1}.1/24`);
      assert.equal(n.subnetEnv.FLANNEL_IPV6_SUBNET, `2001:db8:100:${k + 1}::1/64`);
      assert.equal(n.subnetEnv.FLANNEL_MTU, '1472');
    });
  });

  test('each daemon annotated its node like flannel and cleared NetworkUnavailable', async (t) => {
    if (!need(t, rootAndNetns())) return;
    let nodes: NodeJson[] = [];
    // CompleteLease runs after subnet.env is written; give it a moment.
    for (let i = 0; i < 50; i++) {
      nodes = (await lab.kubeCommand({ op: 'nodes' })).nodes as NodeJson[];
      if (nodes.every((n) => n.status?.conditions?.some((c) => c.type === 'NetworkUnavailable'))) break;
      await sleep(100);
    }
    for (const [k, n] of nodes.entries()) {
      const ann = n.metadata.annotations ?? {};
      assert.deepEqual(
        Object.fromEntries(Object.entries(ann).filter(([key]) => key.startsWith(P)).sort()),
        Object.fromEntries(Object.entries({
          [`${P}backend-data`]: 'null',
          [`${P}backend-type`]: 'udp',
          [`${P}backend-v6-data`]: 'null',
          [`${P}kube-subnet-manager`]: 'true',
          [`${P}public-ip`]: `198.18.0.${11 + k}`,
          [`${P}public-ipv6`]: `2001:db8::${(11 + k).toString(16)}`,
        }).sort()),
        n.metadata.name,
      );
      const cond = n.status?.conditions?.find((c) => c.type === 'NetworkUnavailable');
      assert.equal(cond?.status, 'False', n.metadata.name);
      assert.equal(cond?.reason, 'FlannelIsUp');
      assert.equal(cond?.message, 'Flannel is running on this node');
    }
  });

  test('all pod pairs reach each other over IPv4 and IPv6', async (t) => {
    if (!need(t, rootAndNetns())) return;
    await assertAllPairs(lab, 12);
  });

  test('an API server restart: no daemon crashes, and node changes after it still arrive', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [a, b, c] = lab.nodes as [typeof lab.nodes[0], typeof lab.nodes[0], typeof lab.nodes[0]];
    await lab.restartApiServer(1500);
    await sleep(500);
    for (const n of [a, b, c]) assert.ok(n.pid !== undefined && isAlive(n.pid), `${n.name} still running`);
    assert.match(lab.daemonLog(a), /Node watch failed|Failed to list nodes/, 'the daemon noticed the outage');
    // Traffic keeps flowing across the restart.
    assert.ok((await lab.ping(a, c, 4, c.podIP)).ok);
    // A change made after the restart reaches the other daemons through the re-established watch.
    await lab.stopDaemon(b, 'SIGTERM');
    await lab.kubeCommand({ op: 'delete', name: b.name });
    const deadline = Date.now() + 20_000;
    while (!/Lease removed: 198\.19\.2\.0\/24/.test(lab.daemonLog(c)) && Date.now() < deadline) await sleep(200);
    assert.match(lab.daemonLog(c), /Lease removed: 198\.19\.2\.0\/24/);
  });

  test('a node object deleted from the API removes its lease: the route goes, the sender gets net unreachable', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [a, , c] = lab.nodes as [typeof lab.nodes[0], typeof lab.nodes[0], typeof lab.nodes[0]];
    await lab.stopDaemon(c, 'SIGTERM');
    await lab.kubeCommand({ op: 'delete', name: c.name });
    let out = '';
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      out = firstFailure(await echoes(a.pod, c.podIP, { count: 1 }));
      if (NET_UNREACHABLE.test(out)) break;
      await sleep(300);
    }
    assert.match(out, NET_UNREACHABLE);
    assert.match(lab.daemonLog(a), /Lease removed: 198\.19\.3\.0\/24/);
  });
});
