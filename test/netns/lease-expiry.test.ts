// Issue 10: "a peer whose lease expires disappears from routes", end to end with a lease that really
// expires. The peer's daemon is stopped (SIGTERM keeps its lease, as flannel does), then its lease is
// rewritten to run out a few seconds later:
//  - etcd: the key is attached to a fresh etcd lease with a 4 s TTL, so etcd itself deletes it and the
//    watch reports a delete, as for a flannel node that stopped renewing its 24 h lease;
//  - file store: the lease file's Expiration is set 4 s ahead; the store's periodic re-scan drops it.
// The remaining nodes must forget the peer (status, the udp engine's routes, or vxlan's kernel route,
// neighbour and FDB entry) and a pod sending to it must get ICMP unreachable.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, type LabNode } from '../../src/lab/lab.js';
import { LAB_ETCD_PREFIX } from '../../src/lab/lab-etcd.js';
import { fetchStatus } from '../../src/status.js';
import { decodeLeaseFile, encodeLeaseFile } from '../../src/subnet/file/lease-file.js';
import { writeFileAtomic } from '../../src/subnet/subnetenv.js';
import { binary, need, rootAndNetns, suiteNeeds, type Prereq } from '../helpers/prereq.js';
import { fdbOn, macOf, neighsOn, routesOn, subnetAddr } from '../helpers/lab-probe.js';
import { sleep } from '../../src/util/sleep.js';
import { useLab } from '../helpers/lab.js';
import { echoes, firstFailure, NET_UNREACHABLE, summary } from '../helpers/echo.js';
import type { ProbeResult } from '../../src/probe/prober.js';

const TTL_S = 4;
const etcd = [binary('etcd')];

const key = (n: LabNode): string => `${subnetAddr(n.subnetEnv.FLANNEL_SUBNET!)}-24`;
const net = (n: LabNode): string => `${subnetAddr(n.subnetEnv.FLANNEL_SUBNET!)}/24`;

/** Peer subnets and data-plane route counts as a node's daemon reports them. */
async function view(lab: Lab, n: LabNode): Promise<{ peers: string[]; routes?: { expected: number; installed: number } }> {
  const s = await fetchStatus(lab.statusSocket(n));
  return { peers: s.peers.map((p) => p.subnet ?? '').sort(), routes: s.routes };
}

/** One echo from a's pod to `target`, waiting waitSec for its answer. */
const pingOnce = (a: LabNode, target: string, waitSec: number): Promise<ProbeResult> => echoes(a.pod, target, { count: 1, timeoutMs: waitSec * 1000 });

/**
 * Stops c, makes its lease expire `TTL_S` seconds from now with `expire`, checks that a and b still
 * route to it until then, then waits until `gone(n)` holds on a and b. Returns ms from expiry to that.
 */
async function expireAndWait(t: TestContext, lab: Lab, expire: (c: LabNode) => Promise<void>, gone: (n: LabNode) => Promise<boolean>): Promise<number> {
  const [a, b, c] = lab.nodes as [LabNode, LabNode, LabNode];
  await lab.stopDaemon(c, 'SIGTERM');
  const expiresAt = Date.now() + TTL_S * 1000;
  await expire(c);
  // Not expired yet: the rewrite must not look like a removal.
  await sleep((TTL_S * 1000) / 2);
  for (const n of [a, b]) assert.ok((await view(lab, n)).peers.includes(net(c)), `${n.name} still knows ${c.name} before its lease expires`);
  const deadline = expiresAt + 30_000;
  for (;;) {
    if ((await gone(a)) && (await gone(b))) break;
    if (Date.now() > deadline) throw new Error(`${c.name} still known 30 s after its lease expired: ${JSON.stringify(await view(lab, a))}\n${lab.daemonLog(a, 10)}`);
    await sleep(100);
  }
  const ms = Date.now() - expiresAt;
  t.diagnostic(`${lab.opts.store ?? 'file'} store, ${lab.opts.backend}: ${c.name}'s lease expired; both other nodes dropped it ${ms} ms later`);
  assert.ok(ms >= -500, `removed ${-ms} ms before the lease expired`);
  for (const n of [a, b]) assert.match(lab.daemonLog(n), new RegExp(`Lease removed: ${net(c).replace(/\./g, '\\.')}`), n.name);
  return ms;
}

/** udp: the peer is gone from status and from the engine's route table, and the sender gets net unreachable. */
const udpGone = (lab: Lab, c: LabNode) => async (n: LabNode): Promise<boolean> => {
  const v = await view(lab, n);
  return !v.peers.includes(net(c)) && v.routes?.expected === 1 && v.routes.installed === 1;
};

function etcdExpire(lab: Lab): (c: LabNode) => Promise<void> {
  return async (c) => {
    const k = `${LAB_ETCD_PREFIX}/subnets/${key(c)}`;
    const kv = lab.etcdList(k).find((x) => x.key === k);
    assert.ok(kv, `${k} in etcd`);
    await lab.etcdPut(k, kv.value, TTL_S);
  };
}

function assertEtcdKeyGone(lab: Lab, c: LabNode): void {
  assert.deepEqual(lab.etcdList(`${LAB_ETCD_PREFIX}/subnets/`).map((x) => x.key).filter((x) => x.endsWith(key(c))), [], 'etcd deleted the key');
}

describe('lease expiry in etcd (real TTL): udp, 3 nodes', suiteNeeds(rootAndNetns(), ...etcd), () => {
  let lab: Lab;
  useLab({ nodes: 3, backend: 'udp', ipv6: false, store: 'etcd' }, (l) => (lab = l));

  test('the expired peer leaves status and the engine routes; pods get net unreachable', async (t) => {
    if (!need(t, rootAndNetns(), ...etcd)) return;
    const [a, , c] = lab.nodes as [LabNode, LabNode, LabNode];
    assert.equal((await pingOnce(a, c.podIP, 2)).received, 1, 'c reachable before');
    await expireAndWait(t, lab, etcdExpire(lab), udpGone(lab, c));
    assertEtcdKeyGone(lab, c);
    assert.match(firstFailure(await pingOnce(a, c.podIP, 2)), NET_UNREACHABLE);
  });
});

describe('lease expiry in etcd (real TTL): vxlan, 3 nodes', suiteNeeds(rootAndNetns(), ...etcd, binary('bridge')), () => {
  let lab: Lab;
  useLab({ nodes: 3, backend: 'vxlan', ipv6: false, store: 'etcd' }, (l) => (lab = l));

  test('the expired peer\'s route, neighbour and FDB entry go; pods get unreachable', async (t) => {
    const reqs: Prereq[] = [rootAndNetns(), ...etcd, binary('bridge')];
    if (!need(t, ...reqs)) return;
    const [a, , c] = lab.nodes as [LabNode, LabNode, LabNode];
    const mac = macOf(c, 'flannel.1');
    const entries = (n: LabNode): string => [...routesOn(n, 'flannel.1'), ...neighsOn(n, 'flannel.1'), ...fdbOn(n, 'flannel.1')].join('\n');
    for (const n of lab.nodes.filter((x) => x !== c)) {
      assert.ok(entries(n).includes(subnetAddr(c.subnetEnv.FLANNEL_SUBNET!)) && entries(n).includes(mac), `${n.name} has c's entries before:\n${entries(n)}`);
    }
    await expireAndWait(t, lab, etcdExpire(lab), async (n) => {
      const e = entries(n);
      return !e.includes(subnetAddr(c.subnetEnv.FLANNEL_SUBNET!)) && !e.includes(mac) && !e.includes(c.underlayIP);
    });
    assertEtcdKeyGone(lab, c);
    // No route to c's subnet any more: the node answers its pod with ICMP (host) unreachable.
    const gone = await pingOnce(a, c.podIP, 5);
    assert.equal(gone.failures[0]?.reason, 'unreachable', summary(gone));
  });
});

describe('lease expiry in the file store (Expiration passes): udp, 3 nodes', suiteNeeds(rootAndNetns()), () => {
  let lab: Lab;
  useLab({ nodes: 3, backend: 'udp', ipv6: false }, (l) => (lab = l));

  test('the expired peer leaves status and the engine routes; pods get net unreachable', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [a, , c] = lab.nodes as [LabNode, LabNode, LabNode];
    await expireAndWait(
      t,
      lab,
      async (n) => {
        const path = join(lab.storeDir, key(n));
        const lease = decodeLeaseFile(key(n), readFileSync(path, 'utf8'));
        writeFileAtomic(path, encodeLeaseFile(lease.attrs, new Date(Date.now() + TTL_S * 1000)));
      },
      udpGone(lab, c),
    );
    assert.match(firstFailure(await pingOnce(a, c.podIP, 2)), NET_UNREACHABLE);
  });
});
