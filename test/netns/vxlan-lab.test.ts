// Three real flanneld processes with the vxlan backend (kernel VXLAN), IPv4 + IPv6, -ip-masq, in
// network namespaces; an external host on the underlay for masquerade checks.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, type LabNode } from '../../src/lab/lab.js';
import type { Namespace } from '../../src/lab/netns.js';
import { binary, need, rootAndNetns, suiteNeeds } from '../helpers/prereq.js';
import { assertAllPairs, deleteLease, eventually, fdbOn, flannelRules, leaseText, macOf, neighsOn, routesOn, subnetAddr } from '../helpers/lab-probe.js';
import { echoes, summary } from '../helpers/echo.js';

const reqs = [rootAndNetns(), binary('iptables-save'), binary('bridge')];
/** One reconcile pass is 10 s; allow for the pass that is already under way. */
const RECONCILE_MS = 15_000;
const EXTERNAL = '198.18.0.250';

describe('vxlan lab: 3 nodes, IPv4 + IPv6, -ip-masq', suiteNeeds(...reqs), () => {
  let lab: Lab;
  let ext: Namespace;
  let n1: LabNode, n2: LabNode, n3: LabNode;

  before(async () => {
    lab = new Lab({ nodes: 3, backend: 'vxlan', ipv6: true, daemonArgs: ['-ip-masq'], startTimeoutSec: 30 });
    try {
      await lab.up();
      ext = lab.addExternalHost('x', EXTERNAL);
      [n1, n2, n3] = lab.nodes as [LabNode, LabNode, LabNode];
    } catch (e) {
      await lab.down();
      throw e;
    }
  });
  after(async () => {
    await lab?.down();
  });

  test('flannel.1 / flannel-v6.1 carry flannel\'s settings and the lease address; the lease advertises the device MAC', (t) => {
    if (!need(t, ...reqs)) return;
    for (const n of lab.nodes) {
      // The kernel caps an IPv6-underlay vxlan device at 1500 - 70; pods get the smaller of the two.
      assert.equal(n.subnetEnv.FLANNEL_MTU, '1430');
      assert.equal(n.subnetEnv.FLANNEL_IPMASQ, 'true');
      const v4 = n.ns.ip('-d', '-o', 'link', 'show', 'flannel.1');
      assert.match(v4, new RegExp(`mtu 1450 .*vxlan id 1 local ${n.underlayIP.replace(/\./g, '\\.')} dev eth0 srcport 0 0 dstport 8472 nolearning ttl auto ageing 300 udpcsum`));
      const v6 = n.ns.ip('-d', '-o', 'link', 'show', 'flannel-v6.1');
      assert.match(v6, new RegExp(`mtu 1430 .*vxlan id 1 local ${n.underlayIPv6!} dev eth0 srcport 0 0 dstport 8472 nolearning ttl auto ageing 300 udpcsum`));
      assert.match(n.ns.ip('-o', 'addr', 'show', 'dev', 'flannel.1'), new RegExp(`inet ${subnetAddr(n.subnetEnv.FLANNEL_SUBNET!).replace(/\./g, '\\.')}/32`));
      assert.match(n.ns.ip('-o', 'addr', 'show', 'dev', 'flannel-v6.1'), new RegExp(`inet6 ${subnetAddr(n.subnetEnv.FLANNEL_IPV6_SUBNET!)}/128`));
      const lease = leaseText(lab, n);
      assert.ok(lease.includes(`"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${macOf(n, 'flannel.1')}"},"BackendV6Data":{"VNI":1,"VtepMAC":"${macOf(n, 'flannel-v6.1')}"}`), lease);
    }
  });

  test('all pod pairs reach each other over IPv4 and IPv6', async (t) => {
    if (!need(t, ...reqs)) return;
    await assertAllPairs(lab, 12);
  });

  /** The exact entries flannel keeps on `a` for its peers. */
  function expected(a: LabNode, peers: LabNode[]) {
    const v4 = peers.map((b) => ({ net: subnetAddr(b.subnetEnv.FLANNEL_SUBNET!), mac: macOf(b, 'flannel.1'), ip: b.underlayIP }));
    const v6 = peers.map((b) => ({ net: subnetAddr(b.subnetEnv.FLANNEL_IPV6_SUBNET!), mac: macOf(b, 'flannel-v6.1'), ip: b.underlayIPv6! }));
    return {
      routes4: v4.map((p) => `${p.net}/24 via ${p.net} onlink`).sort(),
      neighs4: v4.map((p) => `${p.net} lladdr ${p.mac} PERMANENT`).sort(),
      fdb4: v4.map((p) => `${p.mac} dst ${p.ip} self permanent`).sort(),
      routes6: v6.map((p) => `${p.net}/64 via ${p.net} onlink`).sort(),
      neighs6: v6.map((p) => `${p.net} lladdr ${p.mac} PERMANENT`).sort(),
      fdb6: v6.map((p) => `${p.mac} dst ${p.ip} self permanent`).sort(),
    };
  }
  function actual(a: LabNode) {
    return {
      routes4: routesOn(a, 'flannel.1').sort(),
      neighs4: neighsOn(a, 'flannel.1').sort(),
      fdb4: fdbOn(a, 'flannel.1').sort(),
      routes6: routesOn(a, 'flannel-v6.1', 6).filter((l) => !l.startsWith('fe80') && l.includes(' via ')).sort(),
      neighs6: neighsOn(a, 'flannel-v6.1', 6).filter((l) => l.includes('PERMANENT')).sort(),
      fdb6: fdbOn(a, 'flannel-v6.1').sort(),
    };
  }

  test('every node has exactly flannel\'s route, neighbour and FDB entry per peer (v4 and v6)', (t) => {
    if (!need(t, ...reqs)) return;
    for (const a of lab.nodes) assert.deepEqual(actual(a), expected(a, lab.nodes.filter((b) => b !== a)), `node ${a.name}`);
  });

  test('a route, a neighbour and an FDB entry deleted by hand are back within one reconcile pass', async (t) => {
    if (!need(t, ...reqs)) return;
    const want = expected(n1, [n2, n3]);
    const net2 = subnetAddr(n2.subnetEnv.FLANNEL_SUBNET!);
    const net3 = subnetAddr(n3.subnetEnv.FLANNEL_SUBNET!);
    n1.ns.ip('route', 'del', `${net2}/24`);
    n1.ns.ip('neigh', 'del', net3, 'dev', 'flannel.1');
    n1.ns.exec('bridge', ['fdb', 'del', macOf(n2, 'flannel.1'), 'dev', 'flannel.1', 'dst', n2.underlayIP, 'self']);
    n1.ns.ip('-6', 'route', 'del', `${subnetAddr(n2.subnetEnv.FLANNEL_IPV6_SUBNET!)}/64`, 'dev', 'flannel-v6.1');
    assert.notDeepEqual(actual(n1), want, 'the deletions took effect');
    assert.ok(await eventually(() => JSON.stringify(actual(n1)) === JSON.stringify(want), RECONCILE_MS), `not repaired: ${JSON.stringify(actual(n1))}`);
    assert.ok((await lab.ping(n1, n2, 4, n2.podIP)).ok);
    assert.ok((await lab.ping(n1, n3, 6, n3.podIPv6)).ok);
    assert.match(lab.daemonLog(n1), /Route recovered/);
  });

  test('entries that no lease explains (left from an earlier run) are removed', async (t) => {
    if (!need(t, ...reqs)) return;
    const want = expected(n1, [n2, n3]);
    n1.ns.ip('route', 'add', '198.19.250.0/24', 'via', '198.19.250.0', 'dev', 'flannel.1', 'onlink');
    n1.ns.ip('neigh', 'add', '198.19.250.0', 'lladdr', '0a:00:00:00:00:99', 'dev', 'flannel.1', 'nud', 'permanent');
    n1.ns.exec('bridge', ['fdb', 'append', '0a:00:00:00:00:99', 'dev', 'flannel.1', 'dst', '198.18.0.99', 'self', 'permanent']);
    assert.notDeepEqual(actual(n1), want);
    assert.ok(await eventually(() => JSON.stringify(actual(n1)) === JSON.stringify(want), RECONCILE_MS), `stale entries left: ${JSON.stringify(actual(n1))}`);
    assert.match(lab.daemonLog(n1), /Stale route removed 198\.19\.250\.0\/24/);
    // Nothing of the kernel's was taken for stale: the IPv6 device address keeps its own route.
    const removed = lab.daemonLog(n1).split('\n').filter((l) => /Stale route removed/.test(l));
    assert.ok(removed.every((l) => l.includes('198.19.250.0/24')), removed.join('\n'));
    assert.ok(routesOn(n1, 'flannel-v6.1', 6).includes(subnetAddr(n1.subnetEnv.FLANNEL_IPV6_SUBNET!)), routesOn(n1, 'flannel-v6.1', 6).join('\n'));
  });

  test('-ip-masq: flannel\'s rules in iptables-save; pod traffic to an outside host is masqueraded, pod-to-pod is not', async (t) => {
    if (!need(t, ...reqs)) return;
    const cluster = '198.19.0.0/16';
    const pod = `${subnetAddr(n1.subnetEnv.FLANNEL_SUBNET!)}/24`;
    const c = '-m comment --comment "flanneld masq"';
    assert.deepEqual(flannelRules(n1, 4, 'nat'), [
      ':FLANNEL-POSTRTG - [0:0]',
      `-A POSTROUTING ${c} -j FLANNEL-POSTRTG`,
      `-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 ${c} -j RETURN`,
      `-A FLANNEL-POSTRTG -s ${pod} -d ${cluster} ${c} -j RETURN`,
      `-A FLANNEL-POSTRTG -s ${cluster} -d ${pod} ${c} -j RETURN`,
      `-A FLANNEL-POSTRTG ! -s ${cluster} -d ${pod} ${c} -j RETURN`,
      `-A FLANNEL-POSTRTG -s ${cluster} ! -d 224.0.0.0/4 ${c} -j MASQUERADE --random-fully`,
      `-A FLANNEL-POSTRTG ! -s ${cluster} -d ${cluster} ${c} -j MASQUERADE --random-fully`,
    ]);
    assert.equal(flannelRules(n1, 6, 'nat').length, 8);
    const f = '-m comment --comment "flanneld forward"';
    assert.deepEqual(flannelRules(n1, 4, 'filter'), [':FLANNEL-FWD - [0:0]', `-A FORWARD ${f} -j FLANNEL-FWD`, `-A FLANNEL-FWD -s ${cluster} ${f} -j ACCEPT`, `-A FLANNEL-FWD -d ${cluster} ${f} -j ACCEPT`]);

    // The outside host has no route to the overlay: it can only answer a masqueraded ping.
    ext.exec('iptables', ['-A', 'INPUT', '-p', 'icmp', '-s', n1.underlayIP]);
    ext.exec('iptables', ['-A', 'INPUT', '-p', 'icmp', '-s', cluster]);
    const out = await echoes(n1.pod, EXTERNAL, { count: 2, intervalMs: 1000, timeoutMs: 2000 });
    assert.equal(out.received, 2, summary(out));
    const counters = ext.exec('iptables', ['-L', 'INPUT', '-v', '-x', '-n']);
    const pkts = (src: string): number => Number(new RegExp(`^\\s*(\\d+)\\s+\\d+\\s.*\\s${src.replace(/[./]/g, (m) => `\\${m}`)}\\s`, 'm').exec(counters)?.[1] ?? -1);
    assert.ok(pkts(n1.underlayIP) >= 2, counters);
    assert.equal(pkts(cluster), 0, 'no packet arrived with a pod source address');
    const saved = n1.ns.exec('iptables-save', ['-c', '-t', 'nat']);
    const masq = /^\[(\d+):\d+\] -A FLANNEL-POSTRTG -s 198\.19\.0\.0\/16 ! -d 224\.0\.0\.0\/4/m.exec(saved);
    assert.ok(masq && Number(masq[1]) >= 1, saved);

    // Pod to pod keeps the pod address (the RETURN rule matches, MASQUERADE does not run).
    const before = Number(masq[1]);
    assert.ok((await lab.ping(n1, n2, 4, n2.podIP)).ok);
    const saved2 = n1.ns.exec('iptables-save', ['-c', '-t', 'nat']);
    const ret = new RegExp(`^\\[(\\d+):\\d+\\] -A FLANNEL-POSTRTG -s ${pod.replace(/[./]/g, (m) => `\\${m}`)} -d 198\\.19\\.0\\.0/16`, 'm').exec(saved2);
    assert.ok(ret && Number(ret[1]) >= 1, saved2);
    assert.equal(Number(/^\[(\d+):\d+\] -A FLANNEL-POSTRTG -s 198\.19\.0\.0\/16 ! -d 224/m.exec(saved2)?.[1]), before);
  });

  test('iptables rules deleted by hand are re-applied within -iptables-resync (5 s)', async (t) => {
    if (!need(t, ...reqs)) return;
    const want = flannelRules(n2, 4, 'nat');
    n2.ns.exec('iptables', ['-t', 'nat', '-F', 'FLANNEL-POSTRTG']);
    assert.notDeepEqual(flannelRules(n2, 4, 'nat'), want);
    assert.ok(await eventually(() => JSON.stringify(flannelRules(n2, 4, 'nat')) === JSON.stringify(want), 10_000));
  });

  test('flannel.1 deleted by hand comes back within one reconcile pass, with the same MAC, and traffic resumes', async (t) => {
    if (!need(t, ...reqs)) return;
    const mac = macOf(n2, 'flannel.1');
    n2.ns.ip('link', 'del', 'flannel.1');
    assert.ok(await eventually(() => macOf(n2, 'flannel.1') === mac && JSON.stringify(actual(n2)) === JSON.stringify(expected(n2, [n1, n3])), RECONCILE_MS), `n2 after device deletion: ${JSON.stringify(actual(n2))}`);
    assert.ok((await lab.ping(n1, n2, 4, n2.podIP)).ok);
    assert.ok((await lab.ping(n2, n3, 4, n3.podIP)).ok);
  });

  test('a daemon killed with SIGKILL and restarted reuses its devices (same MACs) and drops entries left from before', async (t) => {
    if (!need(t, ...reqs)) return;
    const macs = [macOf(n1, 'flannel.1'), macOf(n1, 'flannel-v6.1')];
    await lab.stopDaemon(n1, 'SIGKILL');
    // While it is down: leftovers of a peer that went away.
    n1.ns.ip('route', 'add', '198.19.252.0/24', 'via', '198.19.252.0', 'dev', 'flannel.1', 'onlink');
    n1.ns.ip('neigh', 'add', '198.19.252.0', 'lladdr', '0a:00:00:00:00:98', 'dev', 'flannel.1', 'nud', 'permanent');
    n1.ns.exec('bridge', ['fdb', 'append', '0a:00:00:00:00:98', 'dev', 'flannel.1', 'dst', '198.18.0.98', 'self', 'permanent']);
    lab.startDaemon(n1);
    assert.ok(await eventually(() => JSON.stringify(actual(n1)) === JSON.stringify(expected(n1, [n2, n3])), RECONCILE_MS + 5000), `after restart: ${JSON.stringify(actual(n1))}`);
    assert.deepEqual([macOf(n1, 'flannel.1'), macOf(n1, 'flannel-v6.1')], macs);
    assert.ok((await lab.ping(n1, n3, 6, n3.podIPv6)).ok);
  });

  test('SIGTERM removes the iptables rules (the vxlan devices stay); a removed lease leaves no entries on the others', async (t) => {
    if (!need(t, ...reqs)) return;
    const mac3 = macOf(n3, 'flannel.1');
    const mac3v6 = macOf(n3, 'flannel-v6.1');
    const net3 = subnetAddr(n3.subnetEnv.FLANNEL_SUBNET!);
    const net3v6 = subnetAddr(n3.subnetEnv.FLANNEL_IPV6_SUBNET!);
    await lab.stopDaemon(n3, 'SIGTERM');
    for (const [fam, table] of [[4, 'nat'], [4, 'filter'], [6, 'nat'], [6, 'filter']] as const) {
      assert.deepEqual(flannelRules(n3, fam, table), [], `IPv${fam} ${table} after shutdown`);
    }
    assert.match(n3.ns.ip('-o', 'link', 'show', 'flannel.1'), /flannel\.1/, 'flannel leaves its device in place');
    assert.ok(deleteLease(lab, n3).length > 0);
    const gone = (a: LabNode): boolean => {
      const all = [...routesOn(a, 'flannel.1'), ...neighsOn(a, 'flannel.1'), ...fdbOn(a, 'flannel.1'), ...routesOn(a, 'flannel-v6.1', 6), ...neighsOn(a, 'flannel-v6.1', 6), ...fdbOn(a, 'flannel-v6.1')].join('\n');
      return !all.includes(net3) && !all.includes(mac3) && !all.includes(mac3v6) && !all.includes(net3v6) && !all.includes(n3.underlayIP);
    };
    assert.ok(await eventually(() => gone(n1) && gone(n2), RECONCILE_MS), `entries of ${n3.name} left on n1: ${JSON.stringify(actual(n1))}`);
    assert.deepEqual(actual(n1), expected(n1, [n2]));
  });
});
