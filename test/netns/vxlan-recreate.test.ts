// vxlan devices re-created with traffic restored, in etcd and kube mode, both families: after
// flannel.1 / flannel-v6.1 are deleted by hand, and after the node's external veth is deleted (the
// kernel deletes the vxlan devices with it) and re-added. The VtepMAC stays, so the lease in the store
// and every peer's neighbour and FDB entries stay right. Kube mode also: a daemon restarted after its
// device was deleted creates the new device with the VtepMAC stored in its node's annotations.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Lab, LabNode } from '../../src/lab/lab.js';
import { binary, need, rootAndNetns, suiteNeeds } from '../helpers/prereq.js';
import { eventually, fdbOn, macOf, neighsOn, routesOn } from '../helpers/lab-probe.js';
import { useLab } from '../helpers/lab.js';

const P = 'flannel.alpha.coreos.com/';
const reqs = [rootAndNetns()];

/** Both pod addresses of `to` answer `from`'s pod (IPv4 and IPv6), within the time given. */
async function podsTalk(lab: Lab, from: LabNode, to: LabNode, timeoutMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (const [family, target] of [[4, to.podIP], [6, to.podIPv6]] as const) {
    for (;;) {
      if ((await lab.ping(from, to, family, target, 1)).ok) break;
      if (Date.now() > deadline) return false;
    }
  }
  return true;
}

/** What the kernel has for the overlay on a node: devices' MACs, routes, neighbours, FDB entries. */
function overlayState(n: LabNode): Record<string, unknown> {
  return {
    mac4: macOf(n, 'flannel.1'),
    mac6: macOf(n, 'flannel-v6.1'),
    routes4: routesOn(n, 'flannel.1', 4),
    routes6: routesOn(n, 'flannel-v6.1', 6),
    neigh4: neighsOn(n, 'flannel.1', 4),
    neigh6: neighsOn(n, 'flannel-v6.1', 6),
    fdb: [...fdbOn(n, 'flannel.1'), ...fdbOn(n, 'flannel-v6.1')].filter((l) => l.includes(' dst ')).sort(),
  };
}

/** Waits until the node's overlay state is `want` again (devices back with their entries). */
async function restored(n: LabNode, want: Record<string, unknown>): Promise<boolean> {
  return eventually(() => JSON.stringify(overlayState(n)) === JSON.stringify(want), 15_000, 200);
}

function recreationTests(store: 'etcd' | 'kube', reqs: ReturnType<typeof rootAndNetns>[]): void {
  let lab: Lab;
  useLab({ nodes: 2, backend: 'vxlan', ipv6: true, store, startTimeoutSec: 40 }, (l) => (lab = l));

  test('flannel.1 and flannel-v6.1 deleted by hand: re-created with their MACs and entries, traffic back', async (t) => {
    if (!need(t, ...reqs)) return;
    const [a, b] = lab.nodes as [LabNode, LabNode];
    assert.ok(await podsTalk(lab, a, b), 'traffic before');
    const before = overlayState(a);
    a.ns.ip('link', 'del', 'flannel.1');
    a.ns.ip('link', 'del', 'flannel-v6.1');
    assert.ok(await restored(a, before), `${JSON.stringify(overlayState(a))}\n${lab.daemonLog(a, 30)}`);
    // Repaired on the kernel's RTM_DELLINK, not only by the periodic reconcile.
    assert.match(lab.daemonLog(a), /Interface flannel\.1 deleted; checking the vxlan devices/);
    assert.ok(await podsTalk(lab, a, b), 'a -> b after re-creation');
    assert.ok(await podsTalk(lab, b, a), 'b -> a after re-creation: its entries for a still hold');
  });

  test('the external veth deleted and re-added: the devices follow it with their MACs and entries, traffic back', async (t) => {
    if (!need(t, ...reqs)) return;
    const [a, b] = lab.nodes as [LabNode, LabNode];
    const before = overlayState(a);
    lab.unplug(a);
    assert.throws(() => a.ns.ip('link', 'show', 'flannel.1'), 'the kernel deleted flannel.1 with eth0');
    lab.replug(a);
    assert.ok(await restored(a, before), `${JSON.stringify(overlayState(a))}\n${lab.daemonLog(a, 30)}`);
    assert.ok(await podsTalk(lab, a, b), 'a -> b after the veth came back');
    assert.ok(await podsTalk(lab, b, a), 'b -> a after the veth came back');
  });

  if (store === 'kube') {
    test('a restart after the device was deleted: the new devices take the VtepMACs of the node annotations', async (t) => {
      if (!need(t, ...reqs)) return;
      const [a, b] = lab.nodes as [LabNode, LabNode];
      const mac4 = macOf(a, 'flannel.1');
      const mac6 = macOf(a, 'flannel-v6.1');
      const nodes = (await lab.kubeCommand({ op: 'nodes' })).nodes as Array<{ metadata: { name: string; annotations?: Record<string, string> } }>;
      const ann = nodes.find((n) => n.metadata.name === a.name)!.metadata.annotations ?? {};
      assert.equal(JSON.parse(ann[`${P}backend-data`]!).VtepMAC, mac4);
      assert.equal(JSON.parse(ann[`${P}backend-v6-data`]!).VtepMAC, mac6);
      await lab.stopDaemon(a);
      a.ns.ip('link', 'del', 'flannel.1');
      a.ns.ip('link', 'del', 'flannel-v6.1');
      lab.startDaemon(a);
      assert.ok(await eventually(() => macOf(a, 'flannel.1') === mac4 && macOf(a, 'flannel-v6.1') === mac6, 20_000, 200), lab.daemonLog(a, 30));
      assert.match(lab.daemonLog(a), new RegExp(`Interface flannel.1 mac address set to: ${mac4}`));
      assert.ok(await podsTalk(lab, b, a, 20_000), 'b reaches a with the entries it had');
    });
  }
}

describe('vxlan device re-creation, etcd mode (IPv4 + IPv6)', suiteNeeds(...reqs, binary('etcd')), () => {
  recreationTests('etcd', [...reqs, binary('etcd')]);
});

describe('vxlan device re-creation and the stored VtepMAC, kube mode (IPv4 + IPv6)', suiteNeeds(...reqs), () => {
  recreationTests('kube', reqs);
});
