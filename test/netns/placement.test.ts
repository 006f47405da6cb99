// Per-node placement in a real 2-node udp lab: every daemon thread pinned to its node's CPU, every
// interface of the node's namespaces (the daemon's flannel0 included) steered there, the underlay not;
// threads a pinned process creates later inherit the pin; and a placement that is wrong somewhere is
// named by the read-back, not hidden.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Lab } from '../../src/lab/lab.js';
import { allowedCpus, planPlacement } from '../../src/lab/placement.js';
import { readThreadAffinity } from '../../src/lab/affinity.js';
import { run } from '../../src/lab/netns.js';
import { runWatched } from '../../src/lab/watched-run.js';
import { steerReceive } from '../../src/lab/rps.js';
import { binary, need, rootAndNetns, suiteNeeds, type Prereq } from '../helpers/prereq.js';
import { useLab } from '../helpers/lab.js';

const twoCpus = (): Prereq => (allowedCpus().length >= 2 ? { ok: true, reason: '' } : { ok: false, reason: 'per-node placement of 2 nodes needs 2 CPUs' });
const placement = planPlacement('per-node', 2, allowedCpus(), { strict: false, canPin: true });

describe('per-node placement: 2-node udp lab', suiteNeeds(rootAndNetns(), twoCpus(), binary('taskset')), () => {
  let lab: Lab;
  useLab({ nodes: 2, backend: 'udp', ipv6: false, placement }, (l) => (lab = l));
  const [cpu1, cpu2] = placement.nodes as [number[], number[]];

  test('daemon threads on their node CPU, node and pod interfaces steered there, the underlay not', (t) => {
    if (!need(t, rootAndNetns(), twoCpus())) return;
    const r = lab.checkPlacement();
    assert.deepEqual(r.problems, []);
    for (const [i, want] of [[0, cpu1], [1, cpu2]] as const) {
      const own = r.threads.filter((x) => x.pid === lab.nodes[i]!.pid);
      // Node's main thread, libuv and V8 workers, the data-plane engine: all of them.
      assert.ok(own.length >= 5, `n${i + 1}: ${own.length} threads`);
      assert.ok(own.every((x) => x.cpus.join() === want.join()), JSON.stringify(own));
    }
    const q = (ns: string, dev: string): number[] | undefined => r.queues.find((x) => x.namespace === ns && x.device === dev)?.cpus;
    const [n1, n2] = lab.nodes as [(typeof lab.nodes)[0], (typeof lab.nodes)[0]];
    assert.deepEqual(q(n1.ns.name, 'flannel0'), cpu1, 'the TUN the daemon made is steered too');
    assert.deepEqual(q(n1.ns.name, 'eth0'), cpu1);
    assert.deepEqual(q(n2.pod.name, 'eth0'), cpu2);
    assert.deepEqual(q(n2.ns.name, 'pod0'), cpu2);
    assert.deepEqual(q(lab.underlayNs().name, 'v1'), [], 'the underlay forwards on the sender CPU');
  });

  test("a process started in a node's pod is pinned, and so are threads it creates later", async (t) => {
    if (!need(t, rootAndNetns(), twoCpus())) return;
    const script = "setTimeout(() => new (require('node:worker_threads').Worker)('setTimeout(() => {}, 600)', { eval: true }), 200); setTimeout(() => {}, 1000)";
    const r = await runWatched(lab.nodes[1]!.pod, process.execPath, ['-e', script], { timeoutMs: 10_000 });
    assert.equal(r.code, 0, r.stderr);
    // node's own threads plus the worker's (created 200 ms in, after the process got its mask).
    assert.ok(r.threads.length >= 6, `threads seen: ${r.threads.length}`);
    assert.ok(r.threads.every((x) => x.cpus.join() === cpu2.join()), JSON.stringify(r.threads));
  });

  test('a wrong placement is named: a re-steered interface and a re-pinned daemon thread', (t) => {
    if (!need(t, rootAndNetns(), twoCpus())) return;
    const n1 = lab.nodes[0]!;
    const victim = readThreadAffinity(n1.pid!).at(-1)!;
    steerReceive(n1.pod, cpu2);
    run('taskset', ['-p', '-c', cpu2.join(','), String(victim.tid)]);
    try {
      const problems = lab.checkPlacement().problems;
      assert.ok(problems.some((p) => p.startsWith(`${n1.pod.name} eth0 rx-0 rps_cpus is CPU ${cpu2.join(',')}, want CPU ${cpu1.join(',')}`)), problems.join('\n'));
      assert.ok(problems.some((p) => p.startsWith(`n1 daemon: pid ${n1.pid} thread ${victim.tid} (`) && p.endsWith(`may run on CPU ${cpu2.join(',')}, want ${cpu1.join(',')}`)), problems.join('\n'));
      // The pod's two interfaces (eth0 and lo) and the one thread; nothing else.
      assert.equal(problems.length, 3, problems.join('\n'));
    } finally {
      steerReceive(n1.pod, cpu1);
      run('taskset', ['-p', '-c', cpu1.join(','), String(victim.tid)]);
    }
    assert.deepEqual(lab.checkPlacement().problems, []);
  });
});
