// vxlan with DirectRouting across two segments joined by a router: peers on our segment get a plain
// route via their address, the peer behind the router is reached over vxlan. And `flannelctl lab`
// with the kernel backends end to end.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, type LabNode } from '../../src/lab/lab.js';
import { run } from '../../src/lab/netns.js';
import { binary, need, rootAndNetns, suiteNeeds } from '../helpers/prereq.js';
import { assertAllPairs, fdbOn, macOf, routesOn, subnetAddr } from '../helpers/lab-probe.js';
import { useLab } from '../helpers/lab.js';

const reqs = [rootAndNetns(), binary('bridge')];
const here = dirname(fileURLToPath(import.meta.url));
const flannelctl = join(here, '..', '..', 'src', 'cli', 'flannelctl.js');

describe('vxlan DirectRouting across a router: 2 nodes on segment A, 1 behind the router, IPv4 + IPv6', suiteNeeds(...reqs), () => {
  let lab: Lab;
  useLab({ nodes: 3, backend: 'vxlan', ipv6: true, routed: true, backendOptions: { DirectRouting: true }, startTimeoutSec: 30 }, (l) => (lab = l));

  test('same segment: a direct route via the peer address; across the router: vxlan route, neighbour and FDB entry', (t) => {
    if (!need(t, ...reqs)) return;
    const [a, b, c] = lab.nodes as [LabNode, LabNode, LabNode];
    assert.deepEqual([a.segment, b.segment, c.segment], [0, 0, 1]);
    const net = (n: LabNode): string => subnetAddr(n.subnetEnv.FLANNEL_SUBNET!);
    const net6 = (n: LabNode): string => subnetAddr(n.subnetEnv.FLANNEL_IPV6_SUBNET!);
    assert.ok(routesOn(a, 'eth0').includes(`${net(b)}/24 via ${b.underlayIP}`), routesOn(a, 'eth0').join('\n'));
    assert.deepEqual(routesOn(a, 'flannel.1'), [`${net(c)}/24 via ${net(c)} onlink`]);
    assert.deepEqual(fdbOn(a, 'flannel.1'), [`${macOf(c, 'flannel.1')} dst ${c.underlayIP} self permanent`]);
    assert.ok(routesOn(a, 'eth0', 6).includes(`${net6(b)}/64 via ${b.underlayIPv6!}`), routesOn(a, 'eth0', 6).join('\n'));
    assert.ok(routesOn(a, 'flannel-v6.1', 6).includes(`${net6(c)}/64 via ${net6(c)} onlink`));
    // The node behind the router reaches both others over vxlan only.
    assert.deepEqual(routesOn(c, 'flannel.1').sort(), [`${net(a)}/24 via ${net(a)} onlink`, `${net(b)}/24 via ${net(b)} onlink`].sort());
    assert.ok(!routesOn(c, 'eth0').some((l) => l.startsWith('198.19.')));
  });

  test('all pod pairs reach each other over IPv4 and IPv6', async (t) => {
    if (!need(t, ...reqs)) return;
    await assertAllPairs(lab, 12);
  });
});

describe('vxlan lab on a real etcd: the lease value is flannel\'s JSON with the device MACs', suiteNeeds(...reqs, binary('etcd')), () => {
  let lab: Lab;
  useLab({ nodes: 2, backend: 'vxlan', ipv6: true, store: 'etcd', startTimeoutSec: 30 }, (l) => (lab = l));

  test('etcd holds {"PublicIP":…,"PublicIPv6":…,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":…},"BackendV6Data":…} per node', async (t) => {
    if (!need(t, ...reqs, binary('etcd'))) return;
    const kvs = lab.etcdList('/coreos.com/network/subnets/');
    assert.equal(kvs.length, 2);
    for (const n of lab.nodes) {
      const key = `/coreos.com/network/subnets/${subnetAddr(n.subnetEnv.FLANNEL_SUBNET!)}-24&${subnetAddr(n.subnetEnv.FLANNEL_IPV6_SUBNET!)}-64`;
      const kv = kvs.find((x) => x.key === key);
      assert.ok(kv, `${key} in ${kvs.map((x) => x.key).join(', ')}`);
      assert.equal(
        kv.value,
        `{"PublicIP":"${n.underlayIP}","PublicIPv6":"${n.underlayIPv6!}","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${macOf(n, 'flannel.1')}"},"BackendV6Data":{"VNI":1,"VtepMAC":"${macOf(n, 'flannel-v6.1')}"}}`,
      );
    }
    await assertAllPairs(lab);
  });
});

describe('flannelctl lab with kernel backends', suiteNeeds(...reqs), () => {
  const labNamespaces = (prefix: string): string[] => run('ip', ['netns', 'list']).split('\n').filter((l) => l.startsWith(prefix + '-'));

  for (const args of [['--backend', 'vxlan', '--ipv6'], ['--backend', 'host-gw'], ['--backend', 'vxlan', '--direct-routing', '--routed', '--ip-masq']]) {
    test(`flannelctl lab --nodes 3 ${args.join(' ')} passes all pairs and leaves nothing behind`, (t) => {
      // -ip-masq writes flanneld's masquerade rules with iptables-restore.
      if (!need(t, ...reqs, ...(args.includes('--ip-masq') ? [binary('iptables-restore')] : []))) return;
      const r = spawnSync(process.execPath, [flannelctl, 'lab', '--nodes', '3', ...args], { encoding: 'utf8', timeout: 120_000 });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      const pairs = args.includes('--ipv6') ? '12/12' : '6/6';
      assert.match(r.stdout, new RegExp(`${pairs} pod-to-pod pairs passed`));
      assert.match(r.stdout, new RegExp(`backend ${args[1]}`));
      const prefix = /prefix (ft\w+)/.exec(r.stdout)?.[1];
      assert.ok(prefix, r.stdout);
      assert.deepEqual(labNamespaces(prefix), []);
    });
  }
});
