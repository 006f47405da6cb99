// The bench's thread wake-up probe (native/host/wake_probe.cc): two pinned threads passing a token. Its
// figures are timings and are not judged; what it returns, and how it refuses bad input, is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { wakeLatency, wakeProbe } from '../../src/native/wake-probe.js';
import { formatWake } from '../../src/bench/report.js';
import { need, type Prereq } from '../helpers/prereq.js';

const twoCpus = (): Prereq => (cpus().length >= 2 ? { ok: true, reason: '' } : { ok: false, reason: 'needs two CPUs' });

const myCpus = (): string | undefined => /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync('/proc/thread-self/status', 'utf8'))?.[1];

test('one CPU and two: a median and a p90 per probe, median <= p90', (t) => {
  const before = myCpus();
  const same = wakeProbe(0, 0, 200);
  assert.ok(Number.isFinite(same.medianUs) && same.medianUs > 0 && same.medianUs <= same.p90Us, JSON.stringify(same));
  if (!need(t, twoCpus())) return;
  const cross = wakeProbe(0, 1, 200);
  assert.ok(Number.isFinite(cross.medianUs) && cross.medianUs > 0 && cross.medianUs <= cross.p90Us, JSON.stringify(cross));
  // The JS thread's own affinity is untouched (the probe pins threads of its own).
  assert.equal(myCpus(), before, 'the calling thread was not pinned');
});

test('a CPU that does not exist and a round count out of range are refused, naming them', () => {
  const n = cpus().length;
  assert.throws(() => wakeProbe(0, n, 10), { name: 'RangeError', message: new RegExp(`CPU ${n} does not exist \\(this machine has ${n}\\)`) });
  assert.throws(() => wakeProbe(-1, 0, 10), { name: 'RangeError', message: /CPU -1 does not exist/ });
  assert.throws(() => wakeProbe(0, 0, 0), { name: 'RangeError', message: /rounds must be 1\.\.100000/ });
  assert.throws(() => wakeProbe(0, 0, 100001), { name: 'RangeError', message: /rounds must be/ });
  assert.throws(() => (wakeProbe as unknown as (a: string) => unknown)('0'), { name: 'TypeError', message: /three numbers expected/ });
});

test('wakeLatency: both figures rounded to 0.1 us; one CPU leaves the cross figure null', () => {
  const one = wakeLatency(1, 100);
  assert.equal(one.crossCpuUs, null);
  assert.ok(one.sameCpuUs !== null && one.sameCpuUs > 0 && Math.round(one.sameCpuUs * 10) === one.sameCpuUs * 10, JSON.stringify(one));
  if (cpus().length < 2) return;
  const two = wakeLatency(2, 100);
  assert.ok(two.crossCpuUs !== null && two.crossCpuUs > 0, JSON.stringify(two));
});

test('the bench line names both figures, at start and end, or why they are missing', () => {
  assert.equal(
    formatWake({ sameCpuUs: 2, crossCpuUs: 90.5 }, { sameCpuUs: 2.1, crossCpuUs: 31 }),
    'thread wake-up round trip: 2.00 us on one CPU, 90.5 us across two at start; 2.10 us on one CPU, 31.0 us across two at end',
  );
  assert.equal(formatWake({ sameCpuUs: 2, crossCpuUs: null }), 'thread wake-up round trip: 2.00 us on one CPU, n/a across two at start');
  assert.equal(formatWake({ sameCpuUs: null, crossCpuUs: null, error: 'wakeProbe: pin to CPU 0/0: EINVAL' }), 'thread wake-up round trip: not measured (wakeProbe: pin to CPU 0/0: EINVAL) at start');
});
