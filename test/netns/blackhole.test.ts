// -ip-blackhole-route on a real node: a blackhole route for the node's own IPv4 and IPv6 subnet in the
// kernel's route dump as soon as the daemon is up, put back within one -iptables-resync period after
// someone deletes it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Lab, LabNode } from '../../src/lab/lab.js';
import { need, rootAndNetns, suiteNeeds } from '../helpers/prereq.js';
import { eventually, subnetAddr } from '../helpers/lab-probe.js';
import { useLab } from '../helpers/lab.js';

const reqs = [rootAndNetns()];

/** `ip -j route show type blackhole`: the kernel's route dump, blackhole routes only. */
function blackholes(n: LabNode, family: 4 | 6): string[] {
  const rows = JSON.parse(n.ns.ip('-j', `-${family}`, 'route', 'show', 'table', 'main', 'type', 'blackhole')) as Array<{ dst: string }>;
  return rows.map((r) => r.dst).sort();
}

describe('-ip-blackhole-route', suiteNeeds(...reqs), () => {
  let lab: Lab;
  useLab({ nodes: 1, backend: 'vxlan', ipv6: true, daemonArgs: ['-ip-blackhole-route', '-iptables-resync=1'] }, (l) => (lab = l));

  test('present at start for both families, re-added after deletion', async (t) => {
    if (!need(t, ...reqs)) return;
    const n = lab.nodes[0]!;
    const v4 = `${subnetAddr(n.subnetEnv.FLANNEL_SUBNET!)}/24`;
    const v6 = `${subnetAddr(n.subnetEnv.FLANNEL_IPV6_SUBNET!)}/64`;
    assert.deepEqual(blackholes(n, 4), [v4]);
    assert.deepEqual(blackholes(n, 6), [v6]);
    // The lab's pod address on pod0 stands for flannel's CNI bridge: its IPv4 prefix route has the
    // blackhole's metric, so the kernel refuses a blackhole added after it (EEXIST, as for flannel).
    // The flag is for nodes without that bridge: take the address away, as such a node has none.
    n.ns.ip('-4', 'addr', 'flush', 'dev', 'pod0');
    // `ip route del` fails unless the route was there; the daemon may put it back within the second.
    n.ns.ip('-4', 'route', 'del', 'blackhole', v4);
    // IPv6 deletes by destination and metric, not type: name the metric, or pod0's route goes instead.
    n.ns.ip('-6', 'route', 'del', 'blackhole', v6, 'metric', '1024');
    const added = (net: string): number => lab.daemonLog(n).split('\n').filter((l) => l.endsWith(`Added blackhole route for ${net}`)).length;
    assert.ok(await eventually(() => added(v4) === 2 && added(v6) === 2, 5000, 100), lab.daemonLog(n, 20));
    assert.deepEqual([blackholes(n, 4), blackholes(n, 6)], [[v4], [v6]]);
  });
});
