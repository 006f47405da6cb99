// The kube retry pacing: exponential, capped, and jittered so a cluster's nodes do not retry in step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay } from '../../src/util/backoff.js';

test('backoffDelay doubles from the initial delay up to the cap, within [cap/2, cap]', () => {
  const hi = (a: number): number => backoffDelay(a, 1000, 30_000, () => 1);
  const lo = (a: number): number => backoffDelay(a, 1000, 30_000, () => 0);
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 40].map(hi), [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  assert.deepEqual([0, 1, 5, 40].map(lo), [500, 1000, 15_000, 15_000]);
  for (let a = 0; a < 50; a++) {
    const d = backoffDelay(a, 1000, 30_000);
    assert.ok(d >= lo(a) && d <= hi(a), `attempt ${a}: ${d}`);
  }
});

test('backoffDelay: nodes that failed together spread their retries', () => {
  const delays = Array.from({ length: 20 }, () => backoffDelay(5, 1000, 30_000));
  assert.ok(new Set(delays.map((d) => Math.round(d / 100))).size > 5, delays.join(' '));
});
