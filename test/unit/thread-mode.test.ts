// The engine's data-plane thread mode: the decision (native/engine/thread_mode.h) through the addon's pure
// helper, the options' validation, the -udp-threads flag and how status shows it. The switch itself
// (a two-way transfer split onto two threads and merged back, intact) is in test/netns/engine.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlagError, parseFlags, toOptions } from '../../src/config/flags.js';
import { formatStatus } from '../../src/cli/status-format.js';
import { Engine } from '../../src/native/engine.js';
import { threadModeNext } from '../../src/native/packet.js';
import type { StatusSnapshot } from '../../src/status.js';

const MS = 1_000_000;
const WINDOW = 100 * MS;

test('thread mode: split when the threads use 80 % of a window in CPU and each direction does a quarter of the work; merge below half', () => {
  // One thread, saturated by both directions.
  assert.equal(threadModeNext(80, false, WINDOW, 80 * MS, 40 * MS, 40 * MS), true);
  assert.equal(threadModeNext(80, false, WINDOW, 95 * MS, 60 * MS, 20 * MS), true, 'the smaller direction at exactly a quarter of the work');
  // Saturated, but (nearly) one way: a second thread would have next to nothing to take over.
  assert.equal(threadModeNext(80, false, WINDOW, 100 * MS, 95 * MS, 5 * MS), false);
  assert.equal(threadModeNext(80, false, WINDOW, 100 * MS, 61 * MS, 19 * MS), false);
  // Both directions, but CPU to spare: time inside the handlers counts a thread preempted by the pod it
  // woke as busy, CPU time does not.
  assert.equal(threadModeNext(80, false, WINDOW, 79 * MS, 50 * MS, 50 * MS), false);
  assert.equal(threadModeNext(80, false, WINDOW, 90 * MS, 0, 0), false, 'no work measured: nothing to split');
  // Two threads: stay while both together use 40 % of the window, merge below.
  assert.equal(threadModeNext(80, true, WINDOW, 40 * MS, 30 * MS, 0), true);
  assert.equal(threadModeNext(80, true, WINDOW, 39 * MS, 20 * MS, 20 * MS), false);
  assert.equal(threadModeNext(80, true, WINDOW, 180 * MS, 90 * MS, 90 * MS), true, 'two threads use up to twice the wall time');
  // A long idle stretch is one window: it merges.
  assert.equal(threadModeNext(80, true, 60_000 * MS, 100 * MS, 50 * MS, 50 * MS), false);
  // No time passed: keep the mode.
  assert.equal(threadModeNext(80, true, 0, 0, 0, 0), true);
  assert.equal(threadModeNext(80, false, 0, 0, 0, 0), false);
  // The threshold is clamped to 1..100 (tests use 1 to force a split).
  assert.equal(threadModeNext(1, false, WINDOW, 1 * MS, 0.5 * MS, 0.5 * MS), true);
  assert.equal(threadModeNext(0, false, WINDOW, 1 * MS, 0.5 * MS, 0.5 * MS), true);
  assert.equal(threadModeNext(500, false, WINDOW, 99 * MS, 50 * MS, 50 * MS), false, 'at most 100 %');
  assert.equal(threadModeNext(500, false, WINDOW, 100 * MS, 50 * MS, 50 * MS), true);
});

test('EngineOptions.dataThreads and splitAtPercent are checked before anything is opened', () => {
  for (const bad of [-1, 3, 1.5, '2', Number.NaN]) {
    assert.throws(() => Engine.open({ dataThreads: bad as 0 }), (e: Error) => e instanceof TypeError && /dataThreads must be an integer from 0 \(automatic\) to 2/.test(e.message), String(bad));
  }
  for (const bad of [0, 101, 50.5]) {
    assert.throws(() => Engine.open({ splitAtPercent: bad }), (e: Error) => e instanceof TypeError && /splitAtPercent must be an integer from 1 to 100/.test(e.message), String(bad));
  }
});

test('-udp-threads: auto by default, 1 or 2 fixed, anything else a one-line error', () => {
  const opts = (argv: string[], env: Record<string, string> = {}) => toOptions(parseFlags(argv, env));
  assert.equal(opts([]).dataThreads, 0);
  assert.equal(opts(['-udp-threads=1']).dataThreads, 1);
  assert.equal(opts(['-udp-threads', '2']).dataThreads, 2);
  assert.equal(opts([], { FLANNELD_UDP_THREADS: '1' }).dataThreads, 1);
  assert.throws(() => opts(['-udp-threads=4']), (e: Error) => e instanceof FlagError && e.message === 'invalid -udp-threads "4": use "auto", "1" or "2"');
  assert.throws(() => opts(['-udp-threads=many']), FlagError);
});

test('status: the thread mode is shown in one line', () => {
  const auto = { mode: 0, current: 2, splits: 3, merges: 2 };
  const base: StatusSnapshot = { version: '0', pid: 1, uptimeSeconds: 1, peers: [], daemon: { leaseEvents: 0, renewals: 0, renewErrors: 0, reconcileRepairs: 0, reconcileErrors: 0 } };
  assert.match(formatStatus({ ...base, threads: auto }), /^data-plane threads: 2 \(TUN side, socket side\); automatic: split 3x, merged 2x$/m);
  assert.match(formatStatus({ ...base, threads: { mode: 1, current: 1, splits: 0, merges: 0 } }), /^data-plane threads: 1 \(both directions\); fixed$/m);
  assert.doesNotMatch(formatStatus(base), /data-plane threads/);
});
