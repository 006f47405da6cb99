// The bench's readings of /proc: softnet_stat's per-CPU counters, /proc/stat's busy time and its
// arithmetic against an idle baseline, iperf3's JSON and ping's output, and the placement check built
// from them (which fails a row on a wrong affinity or on receive processing that was never steered).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addSoftnet, parseSoftnetStat, softnetDelta } from '../../src/bench/softnet.js';
import { busySecondsAboveBaseline, parseCpuLine } from '../../src/bench/procstat.js';
import { parseIperfJson } from '../../src/bench/iperf.js';
import { parsePingTimes } from '../../src/bench/rtt.js';
import { formatPlacementCheck, PlacementRecorder } from '../../src/bench/placement-verify.js';
import { planPlacement } from '../../src/lab/placement.js';
import type { Namespace } from '../../src/lab/netns.js';

// Kernel 6.18's format: 15 columns, the CPU number in column 13.
const SOFTNET_618 = [
  '0183811f 00000000 00000007 00000000 00000000 00000000 00000000 00000000 00000000 0000002a 00000000 00000000 00000000 00000000 00000000',
  '01e30d33 00000001 0000000c 00000000 00000000 00000000 00000000 00000000 00000000 ffffffff 00000000 00000000 00000002 00000000 00000000',
].join('\n');

test('softnet_stat: processed and received_rps per CPU, the CPU from column 13 or the line', () => {
  assert.deepEqual(parseSoftnetStat(SOFTNET_618), [
    { cpu: 0, processed: 0x183811f, receivedRps: 42 },
    { cpu: 2, processed: 0x1e30d33, receivedRps: 0xffffffff },
  ]);
  // An older kernel's 11 columns: no CPU column, the line index is the CPU.
  const old = '00000010 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000005 00000000\n' +
    '00000020 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000006 00000000\n';
  assert.deepEqual(parseSoftnetStat(old).map((c) => [c.cpu, c.processed, c.receivedRps]), [[0, 16, 5], [1, 32, 6]]);
  assert.deepEqual(parseSoftnetStat('garbage line\n00000001 2\n'), []);
  // 32-bit counters wrap: 0xffffffff -> 3 is 4 more.
  const before = parseSoftnetStat(SOFTNET_618);
  const after = before.map((c) => ({ ...c, processed: c.processed + 10, receivedRps: (c.receivedRps + 4) % 0x1_0000_0000 }));
  assert.deepEqual(softnetDelta(before, after), [{ cpu: 0, processed: 10, receivedRps: 4 }, { cpu: 2, processed: 10, receivedRps: 4 }]);
  assert.deepEqual(addSoftnet([{ cpu: 0, processed: 1, receivedRps: 2 }], [{ cpu: 1, processed: 3, receivedRps: 4 }, { cpu: 0, processed: 5, receivedRps: 6 }]), [
    { cpu: 0, processed: 6, receivedRps: 8 },
    { cpu: 1, processed: 3, receivedRps: 4 },
  ]);
});

test('/proc/stat: busy is user+nice+system+irq+softirq, not idle, iowait, steal or guest (in user already)', () => {
  const t = parseCpuLine('cpu  243590 10 70474 97931 800 5 9862 3184 1000 7');
  assert.equal(t.busy, 243590 + 10 + 70474 + 5 + 9862);
  assert.equal(t.idle, 97931 + 800);
  assert.equal(t.steal, 3184);
  assert.equal(t.total, t.busy + t.idle + t.steal);
  assert.throws(() => parseCpuLine('cpu0 1 2 3 4 5 6 7'), /expected the "cpu" line/);
  // 2 s window, 300 busy jiffies = 3.0 CPU-s, baseline 0.25 CPU-s per s -> 2.5 CPU-s ours.
  const a = parseCpuLine('cpu 1000 0 1000 5000 0 0 0 0 0 0');
  const b = parseCpuLine('cpu 1200 0 1080 5100 0 0 20 50 0 0');
  assert.equal(busySecondsAboveBaseline(a, b, 2, 0.25), 2.5);
  assert.equal(busySecondsAboveBaseline(a, b, 2, 0), 3);
  assert.equal(busySecondsAboveBaseline(a, b, 2, 5), 0, 'never below zero when others were busier before');
});

test('iperf3 JSON: received bytes, and the omitted warm-up counted in what the CPU paid for', () => {
  const j = {
    intervals: [{ sum: { bytes: 1000, omitted: true } }, { sum: { bytes: 2000, omitted: false } }, { sum: { bytes: 2100 } }],
    end: { sum_received: { bits_per_second: 8e9, bytes: 4000 } },
  };
  assert.deepEqual(parseIperfJson(JSON.stringify(j), false), { bps: 8e9, bytes: 4000, movedBytes: 5000 });
  const u = { end: { sum: { packets: 1000, lost_packets: 100, seconds: 2, bits_per_second: 1e6, bytes: 64000 } } };
  assert.deepEqual(parseIperfJson(JSON.stringify(u), true), { bps: 1e6, bytes: 64000, movedBytes: 64000, pps: 450 });
  assert.throws(() => parseIperfJson('{"error":"unable to connect to server"}', false), /iperf3: unable to connect/);
  assert.throws(() => parseIperfJson('{}', false), /no end.sum_received/);
  assert.throws(() => parseIperfJson('iperf3: error', false), /not JSON/);
  assert.deepEqual(parsePingTimes('64 bytes from 198.19.2.2: icmp_seq=1 ttl=62 time=0.105 ms\n64 bytes: time=1.5 ms\n'), [105, 1500]);
});

const ns = (name: string): Namespace => ({ name, exec: () => '', ip: () => '', spawn: () => { throw new Error('not in a unit test'); } });
const nodes = [{ name: 'n1', ns: ns('x-n1'), pod: ns('x-p1') }, { name: 'n2', ns: ns('x-n2'), pod: ns('x-p2') }];
const thread = (pid: number, tid: number, cpus: number[]) => ({ pid, tid, name: 'iperf3', cpus });

test('placement check: right affinity and RPS interrupts on both nodes pass; anything else fails, named', () => {
  const perNode = planPlacement('per-node', 2, [0, 1], { strict: true, canPin: true });
  const ok = new PlacementRecorder(perNode, nodes, ns('x-ul'));
  ok.threads(0, 'iperf3 client', [thread(5, 5, [0])]);
  ok.threads(1, 'iperf3 server', [thread(6, 6, [1])]);
  ok.softnet([{ cpu: 0, processed: 100, receivedRps: 7 }, { cpu: 1, processed: 200, receivedRps: 9 }]);
  const good = ok.finish();
  assert.equal(good.ok, true, good.problems.join('; '));
  assert.equal(good.threads, 2);
  assert.deepEqual(good.softnet.map((c) => c.node), ['n1', 'n2']);
  assert.match(formatPlacementCheck(good), /^verified: 2 threads \(iperf3 client, iperf3 server\) on their node's CPUs; .* CPU 0 \(n1\) 7, CPU 1 \(n2\) 9$/);

  const bad = new PlacementRecorder(perNode, nodes, ns('x-ul'));
  bad.threads(1, 'iperf3 server', [thread(6, 6, [0, 1])]);
  bad.threads(0, 'ping', []);
  bad.softnet([{ cpu: 0, processed: 100, receivedRps: 7 }, { cpu: 1, processed: 200, receivedRps: 0 }]);
  const wrong = bad.finish();
  assert.equal(wrong.ok, false);
  assert.deepEqual(wrong.problems, [
    'n2 iperf3 server: pid 6 thread 6 (iperf3) may run on CPU 0-1, want 1',
    'n1 ping: no thread could be read back (it exited before the first sample)',
    'n2 (CPU 1): no RPS interrupts received during the TCP tests (softnet_stat received_rps): its receive processing was not steered there',
  ]);
  assert.match(formatPlacementCheck(wrong), /^FAILED: n2 iperf3 server: .*; n1 ping: .*; n2 \(CPU 1\): no RPS/);

  // Shared: threads may run anywhere allowed, and no RPS interrupts are expected.
  const shared = new PlacementRecorder(planPlacement('shared', 2, [0, 1], { strict: true, canPin: true }), nodes, ns('x-ul'));
  shared.threads(0, 'ping', [thread(7, 7, [0, 1])]);
  shared.softnet([{ cpu: 0, processed: 100, receivedRps: 0 }]);
  assert.equal(shared.finish().ok, true);
});
