// Three real flanneld processes (udp backend, embedded file store) in network namespaces, with pods.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { Lab } from '../../src/lab/lab.js';
import { SETTLED_PAIR } from '../../src/lab/checks.js';
import { formatLabReport } from '../../src/lab/report.js';
import { parseEnvFile } from '../../src/lab/daemons.js';
import { run } from '../../src/lab/netns.js';
import { binary, rootAndNetns, suiteNeeds, need } from '../helpers/prereq.js';
import { echoes, firstFailure, NET_UNREACHABLE } from '../helpers/echo.js';
import { useLab } from '../helpers/lab.js';
import { assertAllPairs, assertTcpTransfers, subnetAddr } from '../helpers/lab-probe.js';
import { sleep } from '../../src/util/sleep.js';

const here = dirname(fileURLToPath(import.meta.url));
const flannelctl = join(here, '..', '..', 'src', 'cli', 'flannelctl.js');
const netnsList = (): string[] => run('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);
/** Namespaces left by the flannelctl run whose output is `out` (it prints its per-run prefix). */
const leftovers = (out: string): string[] => {
  const prefix = /prefix (ft[0-9a-f]+)/.exec(out)?.[1];
  assert.ok(prefix, `no prefix in output: ${out}`);
  return netnsList().filter((n) => n.startsWith(prefix + '-'));
};

describe('udp lab: 3 nodes, IPv4 + IPv6', suiteNeeds(rootAndNetns()), () => {
  let lab: Lab;

  useLab({ nodes: 3, backend: 'udp', ipv6: true, startTimeoutSec: 30 }, (l) => (lab = l));

  test('every daemon wrote a flannel subnet.env with distinct subnets and MTU 1472', (t) => {
    if (!need(t, rootAndNetns())) return;
    const subnets = lab.nodes.map((n) => n.subnetEnv.FLANNEL_SUBNET);
    assert.equal(new Set(subnets).size, 3);
    for (const n of lab.nodes) {
      assert.equal(n.subnetEnv.FLANNEL_NETWORK, '198.19.0.0/16');
      assert.match(n.subnetEnv.FLANNEL_SUBNET ?? '', /^198\.19\.\d+\.1\/24$/);
      assert.match(n.subnetEnv.FLANNEL_IPV6_SUBNET ?? '', /^2001:db8:100:[0-9a-f]*::1\/64$/);
      assert.equal(n.subnetEnv.FLANNEL_MTU, '1472');
      assert.equal(n.subnetEnv.FLANNEL_IPMASQ, 'false');
      // The TUN carries the lease's network address and the route for the whole overlay.
      const addrs = n.ns.ip('-o', 'addr', 'show', 'dev', 'flannel0');
      assert.match(addrs, new RegExp(`inet ${n.subnetEnv.FLANNEL_SUBNET!.replace(/\.1\/24$/, '.0')}/32`));
      assert.match(n.ns.ip('route', 'show', '198.19.0.0/16'), /dev flannel0/);
    }
  });

  test('all pod pairs reach each other over IPv4 and IPv6', async (t) => {
    if (!need(t, rootAndNetns())) return;
    await assertAllPairs(lab, 12);
  });

  test('a TCP transfer keeps its content both ways, IPv4 and IPv6', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [a, b] = lab.nodes as [typeof lab.nodes[0], typeof lab.nodes[0]];
    await assertTcpTransfers([
      [a, b],
      [b, a],
    ]);
  });

  test('a failed pair says why (silence, an ICMP error and who sent it, no route); a refused one is settled after 5 refusals', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [a, b] = lab.nodes as [typeof lab.nodes[0], typeof lab.nodes[0]];
    const host = (i: number): string => b.subnetEnv.FLANNEL_SUBNET!.replace(/\.1\/24$/, `.${i}`);
    const [silent, refusing, routeless] = [host(77), host(78), host(79)];
    // b's node drops one address and refuses another; a's pod has no route for a third (a `throw`
    // route ends the lookup without a match, so sendto fails with ENETUNREACH).
    b.ns.ip('route', 'add', 'blackhole', `${silent}/32`);
    b.ns.ip('route', 'add', 'unreachable', `${refusing}/32`);
    a.pod.ip('route', 'add', 'throw', `${routeless}/32`);
    try {
      const [s, r, n] = await Promise.all([silent, refusing, routeless].map((x) => lab.ping(a, b, 4, x, 2, SETTLED_PAIR)));
      const esc = (x: string): string => x.replace(/\./g, '\\.');
      // Silence is tried for the whole 5 s: 21 echoes 200 ms apart, the last one's 1 s timeout ending at 5 s.
      assert.equal(s!.detail, `timeout: no reply from ${silent} within 1000 ms; 21 echoes, no reply`);
      assert.match(r!.detail, new RegExp(`^unreachable: ICMP destination unreachable \\(host unreachable\\) from ${esc(subnetAddr(b.subnetEnv.FLANNEL_SUBNET!))}; \\d+ echoes, no reply$`));
      assert.equal(n!.detail, `no-route: no route to ${routeless} (sendto: ENETUNREACH (Network is unreachable)); 5 echoes, no reply`);
      // The report prints each pair's reason after the matrix.
      const report = formatLabReport(lab, [s!, r!, n!]);
      assert.match(report, /^0\/3 pod-to-pod pairs passed$/m);
      for (const x of [s!, r!, n!]) assert.ok(report.includes(`\n  FAIL ${a.name} -> ${b.name} IPv4: ${x.detail}`), report);
    } finally {
      b.ns.ip('route', 'del', 'blackhole', `${silent}/32`);
      b.ns.ip('route', 'del', 'unreachable', `${refusing}/32`);
      a.pod.ip('route', 'del', 'throw', `${routeless}/32`);
    }
  });

  test('a daemon killed with SIGKILL and restarted gets the same subnet and traffic resumes', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [a, b] = lab.nodes as [typeof lab.nodes[0], typeof lab.nodes[0]];
    const before = b.subnetEnv.FLANNEL_SUBNET;
    await lab.stopDaemon(b, 'SIGKILL');
    rmSync(join(b.dir, 'subnet.env'));
    lab.startDaemon(b);
    const deadline = Date.now() + 20_000;
    let env: Record<string, string> = {};
    while (Date.now() < deadline) {
      try {
        env = parseEnvFile(readFileSync(join(b.dir, 'subnet.env'), 'utf8'));
        break;
      } catch {
        await sleep(100);
      }
    }
    assert.equal(env.FLANNEL_SUBNET, before, 'the restarted daemon re-attached its lease by public IP');
    const r = await lab.ping(a, b, 4, b.podIP, 2);
    assert.ok(r.ok, `ping after restart: ${r.detail}`);
  });

  test('a removed lease removes the route: the sender gets ICMP net unreachable', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [a, , c] = lab.nodes as [typeof lab.nodes[0], typeof lab.nodes[0], typeof lab.nodes[0]];
    // Stop c's daemon so nothing renews the lease, then delete its lease from the shared store.
    await lab.stopDaemon(c, 'SIGTERM');
    const key = c.subnetEnv.FLANNEL_SUBNET!.replace(/\.1\/24$/, '.0-24');
    const files = readdirSync(lab.storeDir).filter((f) => f.startsWith(key));
    assert.ok(files.length > 0, `lease file for ${key} in ${readdirSync(lab.storeDir).join(', ')}`);
    for (const f of files) rmSync(join(lab.storeDir, f));
    let out = '';
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      out = firstFailure(await echoes(a.pod, c.podIP, { count: 1, timeoutMs: 1000 }));
      if (NET_UNREACHABLE.test(out)) break;
      await sleep(300);
    }
    assert.match(out, NET_UNREACHABLE);
  });
});

describe('flannelctl lab', suiteNeeds(rootAndNetns()), () => {
  test('runs a 3-node udp lab end to end, exits 0 and leaves nothing behind', (t) => {
    if (!need(t, rootAndNetns())) return;
    const r = spawnSync(process.execPath, [flannelctl, 'lab', '--nodes', '3'], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /6\/6 pod-to-pod pairs passed/);
    assert.match(r.stdout, /n1 +ft\w+-n1 +198\.18\.0\.11 +198\.19\.\d+\.1\/24/);
    assert.deepEqual(leftovers(r.stdout), [], 'no namespace left behind');
  });

  test('exits non-zero when a daemon cannot start', (t) => {
    if (!need(t, rootAndNetns(), binary('etcd'))) return;
    const r = spawnSync(process.execPath, [flannelctl, 'lab', '--nodes', '2', '--timeout', '5', '--store', 'etcd', '--flanneld', '/bin/false'], { encoding: 'utf8', timeout: 60_000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /exited before writing subnet.env|no subnet.env/);
    assert.deepEqual(leftovers(r.stdout), []);
  });
});

describe('flannelctl lab --keep and lab down', suiteNeeds(rootAndNetns()), () => {
  test('a kept lab stays up until `lab down` removes its namespaces and daemons', (t) => {
    if (!need(t, rootAndNetns())) return;
    const r = spawnSync(process.execPath, [flannelctl, 'lab', '--nodes', '2', '--keep'], { encoding: 'utf8', timeout: 120_000 });
    const prefix = /prefix (ft[0-9a-f]+)/.exec(r.stdout)?.[1];
    try {
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.ok(prefix);
      const state = JSON.parse(readFileSync(`/run/flannelts-lab/${prefix}.json`, 'utf8')) as { pids: number[] };
      assert.equal(state.pids.length, 2);
      for (const pid of state.pids) process.kill(pid, 0); // throws if a daemon is gone
      assert.ok(netnsList().filter((n) => n.startsWith(prefix + '-')).length >= 5);
      const down = spawnSync(process.execPath, [flannelctl, 'lab', 'down', prefix], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(down.status, 0, down.stderr);
      assert.match(down.stdout, /removed /);
      for (const pid of state.pids) assert.throws(() => process.kill(pid, 0), 'daemon stopped');
      assert.deepEqual(leftovers(r.stdout), []);
    } finally {
      if (prefix) spawnSync(process.execPath, [flannelctl, 'lab', 'down', prefix]);
    }
  });
});
