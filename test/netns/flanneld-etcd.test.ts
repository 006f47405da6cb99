// flanneld end to end on a real etcd (inside the lab's underlay namespace): flannel's keys and JSON,
// healthz, SIGTERM keeping the lease, a lease deleted from etcd removing the peer's route.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { Lab, LAB_ETCD_PREFIX } from '../../src/lab/lab.js';
import { binary, need, rootAndNetns, suiteNeeds } from '../helpers/prereq.js';
import { fetchStatus } from '../../src/status.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('flanneld on etcd', suiteNeeds(rootAndNetns(), binary('etcd', 'etcd-server'), binary('ping', 'iputils-ping')), () => {
  let lab: Lab;
  before(async () => {
    lab = new Lab({ nodes: 3, backend: 'udp', ipv6: false, store: 'etcd', daemonArgs: ['-healthz-port=10256', '-v=1'] });
    try {
      await lab.up();
    } catch (e) {
      await lab.down();
      throw e;
    }
  });
  after(async () => {
    await lab?.down();
  });

  test('leases are flannel keys with flannel JSON (udp writes no BackendData)', (t) => {
    if (!need(t, rootAndNetns(), binary('etcd', 'etcd-server'))) return;
    const kvs = lab.etcdList(`${LAB_ETCD_PREFIX}/subnets/`);
    assert.equal(kvs.length, 3);
    for (const n of lab.nodes) {
      const key = `${LAB_ETCD_PREFIX}/subnets/${n.subnetEnv.FLANNEL_SUBNET!.replace(/\.1\/24$/, '.0-24')}`;
      const kv = kvs.find((k) => k.key === key);
      assert.ok(kv, `${key} in ${kvs.map((k) => k.key).join(', ')}`);
      assert.equal(kv.value, `{"PublicIP":"${n.underlayIP}","PublicIPv6":null,"BackendType":"udp"}`);
    }
  });

  test('all pod pairs pass', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const results = await lab.checkAllPairs();
    assert.deepEqual(results.filter((r) => !r.ok), []);
  });

  test('healthz answers like flanneld', (t) => {
    if (!need(t, rootAndNetns())) return;
    const script = "fetch('http://127.0.0.1:10256/healthz').then(async r=>console.log(r.status, await r.text()))";
    const out = lab.nodes[0]!.ns.exec(process.execPath, ['-e', script]).trim();
    assert.equal(out, '200 flanneld is running');
  });

  test('status over the root-only socket matches the lab and counts real traffic per peer', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [a, b] = lab.nodes as [typeof lab.nodes[0], typeof lab.nodes[0]];
    const sock = lab.statusSocket(a);
    const { statSync } = await import('node:fs');
    assert.equal(statSync(sock).mode & 0o777, 0o600);
    const before = await fetchStatus(sock);
    a.pod.exec('ping', ['-c', '20', '-i', '0.01', '-q', b.podIP]);
    const s = await fetchStatus(sock);
    assert.equal(s.backend, 'udp');
    assert.equal(s.device, 'flannel0');
    assert.equal(s.mtu, 1472);
    assert.equal(s.lease?.subnet, a.subnetEnv.FLANNEL_SUBNET!.replace(/\.1\/24$/, '.0/24'));
    assert.equal(s.peers.length, 2);
    assert.deepEqual(s.routes, { expected: 2, installed: 2 });
    const peer = s.peers.find((p) => p.publicIP === b.underlayIP)!;
    const peerBefore = before.peers.find((p) => p.publicIP === b.underlayIP)!;
    assert.ok(peer.tx!.packets - peerBefore.tx!.packets >= 20, `tx ${peerBefore.tx!.packets} -> ${peer.tx!.packets}`);
    assert.ok(peer.rx!.packets - peerBefore.rx!.packets >= 20, `rx ${peerBefore.rx!.packets} -> ${peer.rx!.packets}`);
  });

  test('/metrics counts traffic and drops by reason', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [a, b] = lab.nodes as [typeof lab.nodes[0], typeof lab.nodes[0]];
    const scrape = (): string =>
      a.ns.exec(process.execPath, ['-e', "fetch('http://127.0.0.1:10256/metrics').then(async r=>process.stdout.write(await r.text()))"]);
    const value = (text: string, re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
    const peer = b.subnetEnv.FLANNEL_SUBNET!.replace(/\.1\/24$/, '.0/24');
    const txRe = new RegExp(`flannel_dataplane_packets_total\\{direction="tx",peer="${peer.replace(/\./g, '\\.')}"\\} (\\d+)`);
    const noRouteRe = /flannel_dataplane_drops_total\{reason="no_route"\} (\d+)/;
    const m0 = scrape();
    a.pod.exec('ping', ['-c', '10', '-i', '0.01', '-q', b.podIP]);
    // An overlay address no lease covers: the engine answers net unreachable and counts no_route.
    spawnSync('ip', ['netns', 'exec', a.pod.name, 'ping', '-c', '3', '-i', '0.01', '-W', '1', '198.19.255.254']);
    const m1 = scrape();
    assert.match(m1, /^flannel_leases 2$/m);
    assert.match(m1, /^flannel_lease_info\{subnet="198\.19\.\d+\.0\/24",ipv6_subnet="",backend="udp"\} 1$/m);
    assert.ok(value(m1, txRe) - value(m0, txRe) >= 10, `tx ${value(m0, txRe)} -> ${value(m1, txRe)}`);
    assert.ok(value(m1, noRouteRe) - value(m0, noRouteRe) >= 3, `no_route ${value(m0, noRouteRe)} -> ${value(m1, noRouteRe)}`);
  });

  test('logs are klog lines with flannel\'s milestones', (t) => {
    if (!need(t, rootAndNetns())) return;
    const lines = lab.daemonLog(lab.nodes[0]!).split('\n');
    for (const l of lines) assert.match(l, /^[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d{6} +\d+ [\w.-]+:\d+\] /, l);
    const text = lines.join('\n');
    assert.match(text, /Found network config - Backend type: udp/);
    assert.match(text, /Using interface with name eth0 and address 198\.18\.0\.11/);
    assert.match(text, /Allocated lease \(ip: 198\.19\.\d+\.0\/24 ipv6: ::\/0\) to current node \(198\.18\.0\.11\)/);
    assert.match(text, /Wrote subnet file to /);
  });

  test('a lease deleted from etcd disappears from the peers: ICMP net unreachable', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [a, , c] = lab.nodes as [typeof lab.nodes[0], typeof lab.nodes[0], typeof lab.nodes[0]];
    await lab.stopDaemon(c);
    await lab.etcdDelete(`${LAB_ETCD_PREFIX}/subnets/${c.subnetEnv.FLANNEL_SUBNET!.replace(/\.1\/24$/, '.0-24')}`);
    let out = '';
    for (let i = 0; i < 30 && !/Destination Net Unreachable/.test(out); i++) {
      const p = spawnSync('ip', ['netns', 'exec', a.pod.name, 'ping', '-4', '-c', '1', '-W', '1', c.podIP], { encoding: 'utf8' });
      out = p.stdout + p.stderr;
      if (!/Unreachable/.test(out)) await sleep(200);
    }
    assert.match(out, /Destination Net Unreachable/);
    assert.match(lab.daemonLog(a), /Lease removed: 198\.19\.\d+\.0\/24/);
  });

  test('SIGTERM: clean exit within 1 s, lease kept in etcd, TUN gone', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const b = lab.nodes[1]!;
    const pid = b.pid!;
    const start = Date.now();
    process.kill(pid, 'SIGTERM');
    let alive = true;
    while (alive && Date.now() - start < 3000) {
      try {
        process.kill(pid, 0);
        await sleep(20);
      } catch {
        alive = false;
      }
    }
    const took = Date.now() - start;
    assert.ok(!alive && took < 1000, `exited after ${took} ms`);
    b.pid = undefined;
    assert.match(readFileSync(join(b.dir, 'flanneld.log'), 'utf8'), /Exiting cleanly\.\.\./);
    const key = `${LAB_ETCD_PREFIX}/subnets/${b.subnetEnv.FLANNEL_SUBNET!.replace(/\.1\/24$/, '.0-24')}`;
    assert.ok(lab.etcdList(key).length === 1, 'lease still in etcd after a clean stop');
    assert.doesNotMatch(b.ns.ip('-o', 'link', 'show'), /flannel0/);
  });
});
