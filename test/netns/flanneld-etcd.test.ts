// flanneld end to end on a real etcd (inside the lab's underlay namespace): flannel's keys and JSON,
// healthz, SIGTERM keeping the lease, a lease deleted from etcd removing the peer's route.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { Lab, LAB_ETCD_PREFIX } from '../../src/lab/lab.js';
import { binary, need, rootAndNetns, suiteNeeds } from '../helpers/prereq.js';

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
