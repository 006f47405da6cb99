// The Kubernetes half of issue 10's outage item (the etcd half is etcd-outage.test.ts): the lab's API
// server is held down for ~60 s while pods ping across nodes. Forwarding must go on (the data plane
// does not depend on the API), the daemons must stay up and keep every lease they knew, and when the
// API returns, changes made while it was down (a node deleted, a node added) and right after it came
// back (another node added) must reach the daemons, with the nodes' flannel annotations intact.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, type LabKubeNode, type LabNode } from '../../src/lab/lab.js';
import { isAlive } from '../../src/util/process.js';
import { fetchStatus } from '../../src/status.js';
import { need, rootAndNetns, suiteNeeds } from '../helpers/prereq.js';
import { continuousEchoes, summary as echoSummary } from '../helpers/echo.js';
import type { ProbeResult } from '../../src/probe/prober.js';
import { sleep } from '../../src/util/sleep.js';
import { useLab } from '../helpers/lab.js';

const reqs = [rootAndNetns()];
const P = 'flannel.alpha.coreos.com/';
const OUTAGE_MS = 60_000;

/** A node object as a flannel daemon on another machine would have annotated it (no daemon runs for it). */
function fakeNode(i: number): LabKubeNode {
  return {
    name: `n${i}`,
    podCIDR: `198.19.${i}.0/24`,
    podCIDRs: [`198.19.${i}.0/24`],
    annotations: {
      [`${P}kube-subnet-manager`]: 'true',
      [`${P}backend-type`]: 'udp',
      [`${P}backend-data`]: 'null',
      [`${P}public-ip`]: `198.18.0.${10 + i}`,
    },
  };
}

/** The peer subnets a daemon's status lists, sorted; [] while the socket does not answer. */
async function peerSubnets(lab: Lab, n: LabNode): Promise<string[]> {
  const s = await fetchStatus(lab.statusSocket(n)).catch(() => undefined);
  return (s?.peers ?? []).map((p) => p.subnet ?? '').sort();
}

/** Polls until every node in `nodes` lists exactly `want` (as a function of the node); ms it took. */
async function waitPeers(lab: Lab, nodes: LabNode[], want: (n: LabNode) => string[], timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const got = await Promise.all(nodes.map((n) => peerSubnets(lab, n)));
    if (nodes.every((n, k) => JSON.stringify(got[k]) === JSON.stringify([...want(n)].sort()))) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) {
      throw new Error(`peers after ${timeoutMs} ms: ${nodes.map((n, k) => `${n.name}=[${got[k]!.join(' ')}] want [${want(n).join(' ')}]`).join('; ')}`);
    }
    await sleep(100);
  }
}

describe('Kubernetes API server outage during traffic (kube mode, udp, 3 nodes)', suiteNeeds(...reqs), () => {
  let lab: Lab;
  useLab({ nodes: 3, backend: 'udp', ipv6: false, store: 'kube' }, (l) => (lab = l));

  test('60 s without the API: forwarding goes on, leases kept; changes from during and after the outage arrive', { timeout: 300_000 }, async (t) => {
    if (!need(t, ...reqs)) return;
    const [a, b, c] = lab.nodes as [LabNode, LabNode, LabNode];
    const sub = (i: number): string => `198.19.${i}.0/24`;
    const others = (n: LabNode, extra: number[]): string[] => [...[a, b].filter((x) => x !== n).map((x) => sub(lab.nodes.indexOf(x) + 1)), ...extra.map(sub)];
    const survivors = [a, b];
    const env0 = survivors.map((n) => JSON.stringify(n.subnetEnv));

    // One echo every 200 ms from n1's pod to n2's pod, for the whole outage.
    const ping = continuousEchoes(a.pod, b.podIP, 200);
    let result: ProbeResult;
    let outageMs = 0;
    let recoveredMs = 0;
    try {
      await sleep(1000);
      await lab.stopApiServer();
      const down = Date.now();
      // n3 leaves the cluster while the API is down: its daemon stops, its node object will be gone.
      await lab.stopDaemon(c, 'SIGTERM');
      // Through the outage: daemons up, and no lease dropped for lack of an API (n3's included: only
      // the API can say it is gone).
      while (Date.now() - down < OUTAGE_MS) {
        await sleep(5000);
        for (const n of survivors) assert.ok(n.pid !== undefined && isAlive(n.pid), `${n.name} died during the outage:\n${lab.daemonLog(n, 20)}`);
        for (const n of survivors) assert.deepEqual(await peerSubnets(lab, n), others(n, [3]).sort(), `${n.name} kept its peers`);
      }
      outageMs = Date.now() - down;
      // Retries back off (1 s doubling to 30 s) instead of hammering the API server: a handful of
      // attempts in 60 s, with growing delays.
      const retries = lab.daemonLog(a).split('\n').filter((l) => /Node watch failed|Failed to list nodes/.test(l));
      const delays = retries.map((l) => /(?:retrying|listing again) in ([\d.]+)(m?s)/.exec(l)).map((d) => (d ? Number(d[1]) * (d[2] === 'ms' ? 1 : 1000) : NaN));
      t.diagnostic(`n1's retries during the outage, delays in s: ${delays.map((d) => d / 1000).join(' ')}`);
      assert.ok(retries.length >= 3 && retries.length <= 20, `${retries.length} retries in ${outageMs} ms:\n${retries.join('\n')}`);
      assert.ok(delays.at(-1)! > delays[0]!, `delays grow: ${delays.join(' ')}`);

      // The API returns with n3 deleted and n4 added meanwhile; right after it is back, n5 joins.
      await lab.resumeApiServer((nodes) => [...nodes.filter((n) => n.name !== c.name), fakeNode(4)]);
      const back = Date.now();
      await lab.kubeCommand({ op: 'add', ...fakeNode(5) });
      recoveredMs = await waitPeers(lab, survivors, (n) => others(n, [4, 5]), 90_000);
      t.diagnostic(`API down ${(outageMs / 1000).toFixed(0)} s; changes made during and right after it reached both daemons ${(recoveredMs / 1000).toFixed(1)} s after the API returned`);
      await sleep(Math.max(0, 2000 - (Date.now() - back)));
    } finally {
      result = await ping.stop();
    }
    const { sent, received } = result;
    const summary = echoSummary(result);
    t.diagnostic(`ping n1 pod -> n2 pod across the outage: ${received}/${sent} answered`);
    assert.ok(sent > 250, `ping ran throughout: ${summary}`);
    assert.ok(received >= sent - 2, `pod traffic lost during the API outage: ${summary}`);

    // Nothing about the survivors' own leases changed: same subnet.env, same annotations on their nodes.
    assert.deepEqual(survivors.map((n) => JSON.stringify(n.subnetEnv)), env0);
    const objects = (await lab.kubeCommand({ op: 'nodes' })).nodes as Array<{ metadata: { name: string; annotations?: Record<string, string> } }>;
    for (const [k, n] of survivors.entries()) {
      const ann = objects.find((o) => o.metadata.name === n.name)?.metadata.annotations ?? {};
      assert.equal(ann[`${P}kube-subnet-manager`], 'true', n.name);
      assert.equal(ann[`${P}backend-type`], 'udp', n.name);
      assert.equal(ann[`${P}public-ip`], `198.18.0.${11 + k}`, n.name);
      const s = await fetchStatus(lab.statusSocket(n));
      assert.equal(s.lease?.subnet, sub(k + 1), `${n.name}'s lease`);
      assert.deepEqual(s.routes, { expected: 3, installed: 3 }, `${n.name}'s data-plane routes`);
    }

    // The watch is live again: a node deleted now is gone from both daemons at once, not at a resync.
    await lab.kubeCommand({ op: 'delete', name: 'n5' });
    const liveMs = await waitPeers(lab, survivors, (n) => others(n, [4]), 20_000);
    t.diagnostic(`a node deleted after recovery left both daemons' peers in ${liveMs} ms`);
    for (const n of survivors) assert.ok(n.pid !== undefined && isAlive(n.pid), `${n.name} still running`);
  });
});
