// The soak's accounting as docs/reliability.md defines it, and the reading of ping's output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tallyEchoes, type Echo, type FaultWindow } from '../../src/bench/soak/ledger.js';
import { PingAccounting, type EchoResult } from '../../src/bench/soak/prober.js';

test('echoes are attributed by send time: fault, lost by design, settle (not counted), steady', () => {
  const windows: FaultWindow[] = [
    { kind: 'daemon-kill', node: 'n2', start: 1000, end: 2000, settleEnd: 3000 },
    { kind: 'partition', node: 'n1', start: 5000, end: 6000, settleEnd: 7000 },
  ];
  const e = (from: string, to: string, sentAt: number, ok: boolean): Echo => ({ from, to, sentAt, ok });
  const ledger = tallyEchoes(windows, [
    e('n1', 'n3', 500, true), // steady
    e('n1', 'n2', 1500, false), // by design: to the killed node while it was down
    e('n2', 'n3', 1600, false), // by design: from it
    e('n1', 'n3', 1700, false), // during the kill, between the others: counts
    e('n1', 'n2', 2500, false), // settling after the kill: reported only
    e('n1', 'n3', 4000, false), // steady, lost: counts
    e('n1', 'n3', 5500, true), // during the partition
    e('n3', 'n1', 6999, true), // settling
    e('n3', 'n1', 7000, true), // steady again
  ]);
  assert.deepEqual(ledger.byKind['daemon-kill'], { faults: 1, during: { sent: 1, lost: 1 }, byDesign: { sent: 2, lost: 2 }, settling: { sent: 1, lost: 1 } });
  assert.deepEqual(ledger.byKind.partition, { faults: 1, during: { sent: 1, lost: 0 }, byDesign: { sent: 0, lost: 0 }, settling: { sent: 1, lost: 0 } });
  assert.deepEqual(ledger.byKind['etcd-restart'].faults, 0);
  assert.deepEqual(ledger.steady, { sent: 3, lost: 1 });
  assert.equal(ledger.countedLost, 2);
});

test('ping -D -O output: replies, late replies, "no answer yet", unreachable and skipped sequence numbers', () => {
  const out: EchoResult[] = [];
  const acc = new PingAccounting(200, (r) => out.push(r));
  const at = (s: number): string => `[${(1_700_000_000 + s).toFixed(6)}]`;
  acc.line(`${at(0.001)} 64 bytes from 198.19.2.2: icmp_seq=1 ttl=63 time=1.00 ms`);
  acc.line(`${at(0.4)} no answer yet for icmp_seq=2`);
  acc.line(`${at(0.401)} 64 bytes from 198.19.2.2: icmp_seq=3 ttl=63 time=1.00 ms`);
  // seq 2 answered late, within the second: answered.
  acc.line(`${at(0.9)} 64 bytes from 198.19.2.2: icmp_seq=2 ttl=63 time=700 ms`);
  acc.line(`${at(0.8)} From 198.19.1.1 icmp_seq=4 Destination Host Unreachable`);
  // seq 5 and 6 never reported; seq 7 answered.
  acc.line(`${at(1.201)} 64 bytes from 198.19.2.2: icmp_seq=7 ttl=63 time=1.00 ms`);
  acc.line(`${at(3.001)} 64 bytes from 198.19.2.2: icmp_seq=16 ttl=63 time=1.00 ms`);
  acc.finish(1_700_000_003_001);
  const t0 = 1_700_000_000_000;
  const bySent = out.map((r) => [Math.round(r.sentAt - t0), r.ok]).sort((a, b) => Number(a[0]) - Number(b[0]));
  assert.deepEqual(bySent.slice(0, 7), [
    [0, true],
    [200, true],
    [400, true],
    [800, false],
    [800, false],
    [1000, false],
    [1200, true],
  ]);
  // seq 8..15 were skipped, interpolated from 1400 to 2800 ms: at the end those older than the 1 s
  // timeout (8..11) are lost, the younger ones (12..15) are not reported; 16 was answered.
  assert.deepEqual(out.filter((r) => !r.ok).map((r) => Math.round(r.sentAt - t0)).sort((a, b) => a - b), [800, 800, 1000, 1400, 1600, 1800, 2000]);
  assert.equal(out.length, 12);
});
