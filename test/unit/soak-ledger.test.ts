// The soak's accounting as docs/reliability.md defines it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tallyEchoes, type Echo, type FaultWindow } from '../../src/bench/soak/ledger.js';

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
