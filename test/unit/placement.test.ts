// The placement model's pure parts: CPU lists and masks in the kernel's spellings, the plan for N nodes
// on M CPUs (with its refusal and its fallback), and the readers of what the kernel reports back
// (Cpus_allowed_list, rps_cpus) with the problems they name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatCpuList, formatCpuMask, parseCpuList, parseCpuMask, sameCpus } from '../../src/lab/cpuset.js';
import { describePlacement, expectedNodeCpus, nodeCpus, planPlacement, PlacementError, serviceCpus } from '../../src/lab/placement.js';
import { parseRpsReadback, steeringProblems } from '../../src/lab/rps.js';
import { affinityProblems, parseTaskStatus } from '../../src/lab/affinity.js';

test('CPU lists: parsed and formatted as Cpus_allowed_list and taskset -c spell them', () => {
  assert.deepEqual(parseCpuList('0-2,5'), [0, 1, 2, 5]);
  assert.deepEqual(parseCpuList(' 7 '), [7]);
  assert.deepEqual(parseCpuList('3,1,1-2'), [1, 2, 3]);
  assert.deepEqual(parseCpuList(''), []);
  assert.equal(formatCpuList([5, 0, 1, 2]), '0-2,5');
  assert.equal(formatCpuList([1, 3, 4, 5, 7]), '1,3-5,7');
  assert.equal(formatCpuList([]), '');
  for (const s of ['0', '0-1', '0,2,4', '0-3,8-11,63']) assert.equal(formatCpuList(parseCpuList(s)), s);
  assert.throws(() => parseCpuList('0-'), /bad CPU list "0-"/);
  assert.throws(() => parseCpuList('3-1'), /runs backwards/);
  assert.throws(() => parseCpuList('a'), /expected e\.g\./);
  assert.ok(sameCpus([1, 0], [0, 1]) && !sameCpus([0], [0, 1]));
});

test('CPU masks: rps_cpus hexadecimal words, most significant first', () => {
  assert.equal(formatCpuMask([0]), '1');
  assert.equal(formatCpuMask([0, 1]), '3');
  assert.equal(formatCpuMask([0, 2, 5]), '25');
  assert.equal(formatCpuMask([]), '0');
  assert.equal(formatCpuMask([32]), '1,00000000');
  assert.equal(formatCpuMask([1, 40]), '100,00000002');
  assert.deepEqual(parseCpuMask('00000000,00000003'), [0, 1]);
  assert.deepEqual(parseCpuMask('0'), []);
  assert.deepEqual(parseCpuMask('00000100,00000002\n'), [1, 40]);
  for (const set of [[0], [1], [3, 4], [0, 31, 32, 63, 64]]) assert.deepEqual(parseCpuMask(formatCpuMask(set)), set);
  assert.throws(() => parseCpuMask('xyz'), /bad CPU mask "xyz"/);
});

test('per-node plan: equal consecutive sets per node, the remainder spare', () => {
  const two = planPlacement('per-node', 2, [0, 1], { strict: true, canPin: true });
  assert.deepEqual({ mode: two.mode, nodes: two.nodes, spare: two.spare, allowed: two.allowed }, { mode: 'per-node', nodes: [[0], [1]], spare: [], allowed: [0, 1] });
  assert.equal(two.fallback, undefined);
  const five = planPlacement('per-node', 2, [4, 0, 1, 2, 3], { strict: true, canPin: true });
  assert.deepEqual(five.nodes, [[0, 1], [2, 3]]);
  assert.deepEqual(five.spare, [4]);
  // A cpuset with holes: sets follow the allowed CPUs, not CPU numbers.
  const holes = planPlacement('per-node', 3, [2, 3, 6, 7, 9, 11, 12], { strict: true, canPin: true });
  assert.deepEqual(holes.nodes, [[2, 3], [6, 7], [9, 11]]);
  assert.deepEqual(holes.spare, [12]);
  assert.deepEqual(nodeCpus(holes, 1), [6, 7]);
  assert.deepEqual(serviceCpus(holes), [12]);
  assert.deepEqual(expectedNodeCpus(holes, 2), [9, 11]);
  assert.equal(serviceCpus(two), undefined, 'no spare CPU: services run anywhere');
  assert.throws(() => nodeCpus(two, 2), /planned for 2 nodes; node 3 has no CPU set/);
  assert.match(describePlacement(two), /^per-node: n1 CPU 0, n2 CPU 1 \(.*; .*on any CPU \(no spare CPU/);
  assert.match(describePlacement(five), /n1 CPU 0-1, n2 CPU 2-3 .*on spare CPU 4/);
});

test('fewer CPUs than nodes: refused when asked for, shared with the reason by default', () => {
  assert.throws(() => planPlacement('per-node', 3, [0, 1], { strict: true, canPin: true }), (e: Error) => {
    assert.ok(e instanceof PlacementError);
    assert.equal(e.message, '--placement per-node: 3 nodes need at least 3 CPUs (one per node); this process may run on 2 (CPU 0-1). Use --placement shared.');
    return true;
  });
  const fb = planPlacement('per-node', 2, [3], { strict: false, canPin: true });
  assert.equal(fb.requested, 'per-node');
  assert.equal(fb.mode, 'shared');
  assert.deepEqual(fb.nodes, []);
  assert.match(fb.fallback ?? '', /2 nodes need at least 2 CPUs .* may run on 1 \(CPU 3\); fell back to shared$/);
  assert.match(describePlacement(fb), /^shared: every node's processes on any of CPUs 3 .*fell back to shared\)$/);
  assert.equal(nodeCpus(fb, 0), undefined, 'shared: nothing pinned');
  assert.deepEqual(expectedNodeCpus(fb, 1), [3], 'shared: threads may run on every allowed CPU');
  // No taskset: nothing can be pinned, whatever the CPU count.
  assert.throws(() => planPlacement('per-node', 2, [0, 1, 2, 3], { strict: true, canPin: false }), /taskset \(Debian package util-linux\) is not on PATH/);
  assert.equal(planPlacement('per-node', 2, [0, 1, 2, 3], { strict: false, canPin: false }).mode, 'shared');
  // Shared asked for: shared, without a fallback note, on any machine.
  const sh = planPlacement('shared', 5, [0], { strict: true, canPin: false });
  assert.deepEqual([sh.mode, sh.fallback, sh.allowed], ['shared', undefined, [0]]);
});

test('thread status and rps_cpus read-backs, and the problems they name', () => {
  const status = 'Name:\tflanneld-udp\nUmask:\t0022\nState:\tS (sleeping)\nCpus_allowed:\t1\nCpus_allowed_list:\t0\nMems_allowed_list:\t0\n';
  assert.deepEqual(parseTaskStatus(status), { name: 'flanneld-udp', cpus: [0] });
  assert.equal(parseTaskStatus('Name:\tx\n'), undefined);
  const threads = [
    { pid: 10, tid: 10, name: 'node', cpus: [0] },
    { pid: 10, tid: 12, name: 'udp-engine', cpus: [0, 1] },
  ];
  assert.deepEqual(affinityProblems('n1 daemon', threads, [0]), ['n1 daemon: pid 10 thread 12 (udp-engine) may run on CPU 0-1, want 0']);
  assert.deepEqual(affinityProblems('n1 daemon', threads.slice(0, 1), [0]), []);

  const text = [
    '/sys/class/net/eth0/queues/rx-0/rps_cpus:2',
    '/sys/class/net/flannel0/queues/rx-0/rps_cpus:00000000,00000002',
    '/sys/class/net/lo/queues/rx-0/rps_cpus:0',
    'grep: /sys/class/net/x/queues/rx-0/rps_cpus: No such file or directory',
  ].join('\n');
  const q = parseRpsReadback('ft1-n2', text);
  assert.deepEqual(q, [
    { namespace: 'ft1-n2', device: 'eth0', queue: 'rx-0', cpus: [1] },
    { namespace: 'ft1-n2', device: 'flannel0', queue: 'rx-0', cpus: [1] },
    { namespace: 'ft1-n2', device: 'lo', queue: 'rx-0', cpus: [] },
  ]);
  assert.deepEqual(steeringProblems(q, [1]), ['ft1-n2 lo rx-0 rps_cpus is none, want CPU 1']);
  assert.deepEqual(steeringProblems(q, []), ['ft1-n2 eth0 rx-0 rps_cpus is CPU 1, want none', 'ft1-n2 flannel0 rx-0 rps_cpus is CPU 1, want none']);
});
